# SPDX-License-Identifier: MIT
"""Shared fixture for the rotation tests: a user with the usual S3-only policy, a
state directory with a fresh master key, an inventory, and helpers to run
keyrotd/keyrotctl and check the invariants of docs/DESIGN.md §1 with boto3."""

import configparser
import json
import os

from rig import RigTestCase, Creds, build_path

USER = 'app-bot'
BUCKET = 'app-bucket'


def yaml_scalar(v):
    if isinstance(v, bool):
        return 'true' if v else 'false'
    if isinstance(v, (int, float)):
        return str(v)
    return json.dumps(v)  # a JSON string is a valid YAML scalar


def to_yaml(obj, indent=0):
    """Enough YAML for inventories: dicts, lists, scalars."""
    pad = ' ' * indent
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, (dict, list)) and v:
                out.append('%s%s:' % (pad, k))
                out.append(to_yaml(v, indent + 2))
            elif isinstance(v, list):
                out.append('%s%s: []' % (pad, k))
            else:
                out.append('%s%s: %s' % (pad, k, yaml_scalar(v)))
    elif isinstance(obj, list):
        for v in obj:
            if isinstance(v, dict):
                inner = to_yaml(v, indent + 2).lstrip()
                out.append('%s- %s' % (pad, inner))
            else:
                out.append('%s- %s' % (pad, yaml_scalar(v)))
    return '\n'.join(out)


class RotationCase(RigTestCase):
    users = (USER,)

    def setUp(self):
        super().setUp()
        r = self.rig
        self.bucket = r.create_bucket(BUCKET)
        self.other_bucket = r.create_bucket('other-bucket')
        self.state = os.path.join(r.tmp, 'state')
        os.mkdir(self.state, 0o700)
        self.key_file = os.path.join(r.tmp, 'store.key')
        self.appdir = os.path.join(r.tmp, 'app')
        os.mkdir(self.appdir, 0o755)
        self.inventory = os.path.join(r.tmp, 'inventory.yaml')
        self.initial = {}
        for u in self.users:
            self.initial[u] = r.create_s3_user(u, [BUCKET])
        self.endpoint = r.endpoint
        self.write_inventory()
        p = self.ctl('init-store', '--key-file', self.key_file)
        self.assertEqual(p.returncode, 0, p.stderr)

    # ------------------------------------------------------------ config

    def targets_for(self, user):
        return [
            {'type': 'credentials-file', 'path': os.path.join(self.appdir, user + '.credentials'),
             'profile': 'default'},
            {'type': 'env-file', 'path': os.path.join(self.appdir, user + '.env')},
            {'type': 'json-file', 'path': os.path.join(self.appdir, user + '.json')},
        ]

    def user_entry(self, user, **over):
        entry = {'name': user, 'verify': {'bucket': BUCKET, 'interval': '0', 'consecutive': 2},
                 'targets': self.targets_for(user)}
        for k, v in over.items():
            if k == 'verify':
                entry['verify'].update(v)
            else:
                entry[k] = v
        return entry

    def write_inventory(self, defaults=None, **per_user):
        # drain is on by default (the old key waits minutes for consumers to
        # leave it); the tests that are about it turn it on themselves.
        d = {'max_age': '90d', 'grace': '0', 'max_parallel': 8, 'drain': False}
        d.update(defaults or {})
        inv = {
            'version': 1,
            'aws': {'region': 'us-east-1'},
            'defaults': d,
            'store': {'path': os.path.join(self.state, 'store.sealed'), 'key_file': self.key_file},
            'users': [self.user_entry(u, **per_user.get(u, {})) for u in self.users],
        }
        with open(self.inventory, 'w') as f:
            f.write(to_yaml(inv) + '\n')
        os.chmod(self.inventory, 0o644)

    # ------------------------------------------------------------ running

    def env(self, endpoint=None, **extra):
        return self.rig.env(None, endpoint or self.endpoint, **extra)

    def ctl(self, *args, endpoint=None, env=None):
        argv = [build_path('src/keyrotctl'), '--config', self.inventory, '--state-dir', self.state] + list(args)
        return self.rig.run(argv, env=env or self.env(endpoint))

    def keyrotd(self, *args, endpoint=None, env=None, timeout=120):
        argv = [build_path('src/keyrotd'), '--config', self.inventory, '--state-dir', self.state,
                '--log-target', 'stderr'] + list(args)
        return self.rig.run(argv, env=env or self.env(endpoint), timeout=timeout)

    def adopt(self, user=USER):
        path = os.path.join(self.rig.tmp, user + '.adopt')
        c = self.initial[user]
        with open(path, 'w') as f:
            f.write('[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n'
                    % (c.access_key_id, c.secret_access_key))
        p = self.ctl('adopt', user, '--from-credentials', path)
        os.unlink(path)
        self.assertEqual(p.returncode, 0, p.stderr)

    def held(self, user=USER):
        p = self.ctl('get', user, '--format', 'json')
        self.assertEqual(p.returncode, 0, p.stderr)
        d = json.loads(p.stdout)
        return Creds(d['AccessKeyId'], d['SecretAccessKey'])

    def write_app_targets(self, user=USER, creds=None):
        """The application's files as it had them before keyrotd: creds
        (default: the user's first key) in every target, mode 0600."""
        c = creds or self.initial[user]
        t = self.targets_for(user)
        with open(t[0]['path'], 'w') as f:
            f.write('[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n'
                    % (c.access_key_id, c.secret_access_key))
        with open(t[1]['path'], 'w') as f:
            f.write('AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n' % (c.access_key_id, c.secret_access_key))
        with open(t[2]['path'], 'w') as f:
            f.write('{"Version":1,"AccessKeyId":"%s","SecretAccessKey":"%s"}\n'
                    % (c.access_key_id, c.secret_access_key))
        for x in t:
            os.chmod(x['path'], 0o600)

    # ------------------------------------------------------------ checks

    def target_keys(self, user=USER):
        """The key id and secret each target file holds."""
        t = self.targets_for(user)
        out = []
        cp = configparser.ConfigParser()
        cp.read(t[0]['path'])
        out.append(Creds(cp['default']['aws_access_key_id'], cp['default']['aws_secret_access_key']))
        with open(t[1]['path']) as f:
            env = dict(l.split('=', 1) for l in f.read().split('\n') if '=' in l)
        out.append(Creds(env['AWS_ACCESS_KEY_ID'], env['AWS_SECRET_ACCESS_KEY']))
        with open(t[2]['path']) as f:
            j = json.load(f)
        self.assertEqual(j['Version'], 1)
        out.append(Creds(j['AccessKeyId'], j['SecretAccessKey']))
        return out

    def assert_invariants(self, user=USER, in_grace_ok=False, targets_written=True):
        """docs/DESIGN.md §1: an Active key that keyrotd holds and that works;
        targets hold a working key; nothing keyrotd created left unheld."""
        keys = self.rig.list_keys(user)
        active = [k for k in keys if k['status'] == 'Active']
        self.assertEqual(len(active), 1, 'exactly one Active key: %r' % keys)
        held = self.held(user)
        self.assertEqual(held.access_key_id, active[0]['id'], 'keyrotd holds the Active key')
        self.assertTrue(self.rig.key_works_on_s3(held, BUCKET), 'the held key works on S3')
        inactive = [k for k in keys if k['status'] != 'Active']
        if not in_grace_ok:
            self.assertEqual(inactive, [], 'no Inactive key left behind')
        if targets_written:
            for c in self.target_keys(user):
                self.assertTrue(self.rig.key_works_on_s3(c, BUCKET), 'a target holds a working key')
                self.assertIn(c.access_key_id, [k['id'] for k in active],
                              'targets hold an Active key')
        return held

    def audit_events(self, stderr):
        events = []
        for line in stderr.splitlines():
            if line.startswith('time=') and line.partition(' ')[2].startswith('event='):
                fields = {}
                for part in line.split(' '):
                    if '=' in part:
                        k, v = part.split('=', 1)
                        fields.setdefault(k, v.strip('"'))
                events.append(fields)
        return events

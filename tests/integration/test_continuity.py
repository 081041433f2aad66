# SPDX-License-Identifier: MIT
"""Consumers never break (docs/DESIGN.md §1): four long-running boto3
applications keep working while the daemon rotates their key again and
again and rolls it back once, through a peer as strict as AWS.

The fault proxy in front of moto refuses Inactive keys and refuses a new
key for its first seconds (always for 1 s, then 90 % of requests until
3 s), as AWS does. Each consumer lists the bucket every 200 ms with
retries off, so one refusal is one failed call:

  (a) credential_process = keyrotctl get --format json, run as a local
      user listed in `readers:` (setpriv; nothing secret in argv or env);
      credentials_ttl 5s, so botocore runs it again at every call;
  (b) reads the credentials-file target again when it changes;
  (c) takes the env-file target at start and is restarted by on_rotate
      (the hook stops it and waits for the new process, as
      `systemctl restart` would);
  (d) keeps the key it started with, for good.

(a), (b) and (c) share the user app-bot, which is rotated three times
and rolled back once, each step one `keyrotctl rotate USER --wait` or
`keyrotctl rollback USER` through the control socket. (d) has a user of
its own, legacy-bot: a consumer that never moves keeps the old key in use,
so its drain parks (on_timeout: keep) and rotate-now for that user is
refused while it does — three rotations of one user cannot coexist with
(d). keyrotd's verification is left at its defaults (3 checks 1 s apart):
the streak's last check comes at least 2 s after its first, which comes
after the refusals of the first second, so a new key reaches the consumers
only once the proxy accepts it every time.

`Continuity` sets the scene up for this test and for tests/bench/consumers.
Run as root: python3 tests/rig/taprun.py tests/integration/test_continuity.py
"""

import json
import os
import pwd
import shlex
import shutil
import subprocess
import sys
import threading
import time
import unittest

from rig import Creds, RigTestCase, TapNotes, build_path, source_path, wait_until, stop_process
from rotation_rig import to_yaml

READER = 'krt-consumer'
APP = 'app-bot'
LEGACY = 'legacy-bot'
BUCKET = 'app-bucket'
KINDS = ('a', 'b', 'c', 'd')
DESCRIPTION = {
    'a': 'credential_process (keyrotctl get as a reader)',
    'b': 're-reads the credentials file',
    'c': 'env file, restarted by on_rotate',
    'd': 'static key, never re-read (drain)',
}

# on_rotate for (c): stop the consumer, wait for its successor to be ready.
RESTART_HOOK = ('pid=$(cat "$1") || exit 1; kill -TERM "$pid" || exit 1; n=0; '
                'while [ "$(cat "$1" 2>/dev/null)" = "$pid" ]; do '
                'n=$((n + 1)); [ "$n" -le 400 ] || exit 1; sleep 0.05; done')


def _run(*argv):
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=60)


def remove_reader():
    try:
        pwd.getpwnam(READER)
    except KeyError:
        return
    _run('userdel', READER)


def add_reader():
    """The local user (a)'s keyrotctl runs as; a reason string if it cannot be made."""
    if os.geteuid() != 0:
        return 'needs root (a local user as the reader)'
    for tool in ('useradd', 'userdel', 'setpriv'):
        if not shutil.which(tool):
            return '%s not available' % tool
    remove_reader()  # left over from an interrupted run
    p = _run('useradd', '--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent',
             '--shell', '/usr/sbin/nologin', READER)
    return None if p.returncode == 0 else 'useradd failed: %s' % p.stderr.strip()


def parse_calls(paths):
    """[(time, ok, key_id, code)] of a consumer's output files, in order."""
    calls = []
    for path in paths:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) < 3 or parts[1] not in ('ok', 'fail'):
                    continue
                calls.append((float(parts[0]), parts[1] == 'ok', parts[2], parts[3] if len(parts) > 3 else None))
    calls.sort(key=lambda c: c[0])
    return calls


def runs(keys):
    """The sequence with repeats collapsed: [K0, K0, K1] -> [K0, K1]."""
    out = []
    for k in keys:
        if not out or out[-1] != k:
            out.append(k)
    return out


def audit_events(text):
    """The audit lines of keyrotd --log-target stderr, as dicts."""
    events = []
    for line in text.splitlines():
        if line.startswith('time=') and line.partition(' ')[2].startswith('event='):
            fields = {}
            for part in shlex.split(line):
                k, sep, v = part.partition('=')
                if sep:
                    fields.setdefault(k, v)
            events.append(fields)
    return events


class Restarter(threading.Thread):
    """A service manager for (c): starts the consumer with the env file's
    variables in its environment (EnvironmentFile=), and again whenever it
    exits, until stop()."""

    def __init__(self, scene, argv, env_file):
        super().__init__(daemon=True)
        self.scene, self.argv, self.env_file = scene, argv, env_file
        self.lock = threading.Lock()
        self.stopping = False
        self.proc = None
        self.procs = []
        self.bad_exits = []

    def environment(self):
        env = self.scene.consumer_env()
        with open(self.env_file) as f:
            for line in f:
                k, sep, v = line.rstrip('\n').partition('=')
                if sep and k.startswith('AWS_'):
                    env[k] = v
        return env

    def run(self):
        while True:
            with self.lock:
                if self.stopping:
                    return
                self.proc = self.scene.rig.spawn(self.argv, env=self.environment(), name='consumer-c')
                self.procs.append(self.proc)
            rc = self.proc.wait()
            if rc != 0 and not self.stopping:
                self.bad_exits.append(rc)

    def stop(self):
        with self.lock:
            self.stopping = True
            proc = self.proc
        if proc is not None:
            stop_process(proc, timeout=10)
        self.join(20)


class Continuity:
    """The scene: moto behind a strict proxy, keyrotd with its control and
    credentials sockets, two users, four consumers. Call setup(), start(),
    then rotate()/rollback() as often as wanted, then finish()."""

    def __init__(self, rig, interval=0.2, propagation=3.0, propagation_p=0.9, propagation_always=1.0,
                 drain_wait='6s', verify=None, restart_delay=0):
        self.rig = rig
        self.interval = interval
        self.build = os.path.abspath(build_path('src'))
        self.tmp = rig.tmp
        os.chmod(self.tmp, 0o755)  # the reader reaches the sockets as it would reach /run/keyrotd
        self.state = os.path.join(self.tmp, 'state')
        os.mkdir(self.state, 0o700)
        self.key_file = os.path.join(self.tmp, 'store.key')
        self.appdir = os.path.join(self.tmp, 'app')
        os.mkdir(self.appdir, 0o755)
        self.inventory = os.path.join(self.tmp, 'inventory.yaml')
        self.sock = os.path.join(self.tmp, 'control.sock')
        self.pidfile = os.path.join(self.tmp, 'consumer-c.pid')
        self.creds_file = os.path.join(self.appdir, APP + '.credentials')
        self.env_file = os.path.join(self.appdir, APP + '.env')
        self.legacy_file = os.path.join(self.appdir, LEGACY + '.credentials')
        self.drain_wait = drain_wait
        self.verify = verify or {}
        # How long (c) goes on with the old key once on_rotate has begun
        # (an application finishing its requests before it restarts).
        self.restart_delay = restart_delay
        self.proxy_settings = dict(refuse_inactive=True, propagation=propagation, propagation_p=propagation_p,
                                   propagation_always=propagation_always, seed=1)
        self.daemon = None
        self.proxy = None
        self.consumers = {}
        self.restarter = None
        self.initial = {}
        self.held_keys = []  # app-bot's key after each step, from the first
        self.keys = {}       # key id -> Creds, of every key the daemon handed out
        self.steps = []      # (what, seconds, exit status, output)

    # ------------------------------------------------------------ setup

    def user_entry(self, name, targets, **over):
        verify = {'bucket': BUCKET}
        verify.update(self.verify)
        entry = {'name': name, 'verify': verify, 'targets': targets}
        entry.update(over)
        return entry

    def restart_hook(self):
        if not self.restart_delay:
            return RESTART_HOOK
        return 'sleep %s; %s' % (self.restart_delay, RESTART_HOOK)

    def write_inventory(self):
        inv = {
            'version': 1,
            'aws': {'region': 'us-east-1'},
            'defaults': {'max_age': '90d', 'splay': '0', 'grace': '20s', 'max_parallel': 8},
            'store': {'path': os.path.join(self.state, 'store.sealed'), 'key_file': self.key_file},
            'users': [
                self.user_entry(APP, [{'type': 'credentials-file', 'path': self.creds_file, 'profile': 'default'},
                                      {'type': 'env-file', 'path': self.env_file}],
                                readers=[READER], credentials_ttl='5s',
                                drain={'wait': '20s', 'settle': '2s'},
                                on_rotate=['/bin/sh', '-c', self.restart_hook(), 'on_rotate', self.pidfile]),
                self.user_entry(LEGACY, [{'type': 'credentials-file', 'path': self.legacy_file}],
                                drain={'wait': self.drain_wait, 'settle': '2s', 'on_timeout': 'keep'}),
            ],
        }
        with open(self.inventory, 'w') as f:
            f.write(to_yaml(inv) + '\n')
        os.chmod(self.inventory, 0o644)

    def ctl(self, *args, endpoint=None, timeout=300):
        argv = [os.path.join(self.build, 'keyrotctl'), '--config', self.inventory, '--state-dir', self.state,
                '--socket', self.sock] + list(args)
        return self.rig.run(argv, env=self.rig.env(None, endpoint or self.rig.endpoint), timeout=timeout)

    def adopt(self, user):
        path = os.path.join(self.tmp, user + '.adopt')
        c = self.initial[user]
        with open(path, 'w') as f:
            f.write('[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n'
                    % (c.access_key_id, c.secret_access_key))
        p = self.ctl('adopt', user, '--from-credentials', path)
        os.unlink(path)
        if p.returncode != 0:
            raise RuntimeError('adopt %s: %s' % (user, p.stderr))

    def setup(self):
        r = self.rig
        r.create_bucket(BUCKET)
        for u in (APP, LEGACY):
            self.initial[u] = r.create_s3_user(u, [BUCKET])
        self.write_inventory()
        p = self.ctl('init-store', '--key-file', self.key_file)
        if p.returncode != 0:
            raise RuntimeError('init-store: %s' % p.stderr)
        for u in (APP, LEGACY):
            self.adopt(u)
        # The application's files as they were before keyrotd.
        c = self.initial[APP]
        with open(self.creds_file, 'w') as f:
            f.write('[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n'
                    % (c.access_key_id, c.secret_access_key))
        with open(self.env_file, 'w') as f:
            f.write('AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n' % (c.access_key_id, c.secret_access_key))
        for path in (self.creds_file, self.env_file):
            os.chmod(path, 0o600)
        self.proxy = r.start_proxy(**self.proxy_settings)

    # ------------------------------------------------------------ running

    def start_daemon(self):
        argv = [os.path.join(self.build, 'keyrotd'), '--config', self.inventory, '--state-dir', self.state,
                '--socket', self.sock, '--log-target', 'stderr']
        self.daemon = self.rig.spawn(argv, env=self.rig.env(None, self.proxy.endpoint), name='keyrotd')

        def ready():
            if self.daemon.poll() is not None:
                raise RuntimeError('keyrotd exited with %s:\n%s' % (self.daemon.returncode, self.daemon_log()))
            return os.path.exists(os.path.join(self.tmp, 'credentials.sock')) and \
                self.ctl('status').returncode == 0
        wait_until(ready, timeout=30, interval=0.1, message='keyrotd answering on its sockets')

    def stop_daemon(self):
        """SIGTERM; keyrotd's exit status (a sanitizer's report makes it non-zero)."""
        return stop_process(self.daemon, timeout=30)

    def daemon_log(self):
        with open(self.daemon.err_path) as f:
            return f.read()

    def consumer_env(self, **extra):
        """A consumer's environment: no key, no real ~/.aws, files it may
        not use pointed nowhere."""
        nowhere = os.path.join(self.tmp, 'nowhere')
        env = self.rig.env(False, self.proxy.endpoint, AWS_CONFIG_FILE=nowhere,
                           AWS_SHARED_CREDENTIALS_FILE=nowhere)
        env.update(extra)
        return env

    def consumer_argv(self, kind, *extra):
        return [sys.executable, source_path('tests/rig/consumer.py'), kind, '--endpoint', self.proxy.endpoint,
                '--bucket', BUCKET, '--interval', str(self.interval)] + list(extra)

    def start_consumers(self):
        # (a): keyrotctl as the reader; setpriv drops to its uid, gid and groups.
        get = ['/usr/bin/setpriv', '--reuid=' + READER, '--regid=' + READER, '--init-groups',
               os.path.join(self.build, 'keyrotctl'), '--socket', self.sock, '--config', self.inventory,
               'get', APP, '--format', 'json']
        config = os.path.join(self.tmp, 'aws-config')
        with open(config, 'w') as f:
            f.write('[profile app]\ncredential_process = %s\n' % ' '.join(shlex.quote(a) for a in get))
        self.consumers['a'] = self.rig.spawn(self.consumer_argv('process', '--profile', 'app'),
                                             env=self.consumer_env(AWS_CONFIG_FILE=config), name='consumer-a')
        self.consumers['b'] = self.rig.spawn(self.consumer_argv('file'),
                                             env=self.consumer_env(AWS_SHARED_CREDENTIALS_FILE=self.creds_file),
                                             name='consumer-b')
        self.restarter = Restarter(self, self.consumer_argv('static', '--ready-file', self.pidfile), self.env_file)
        self.restarter.start()
        c = self.initial[LEGACY]
        self.consumers['d'] = self.rig.spawn(self.consumer_argv('static'),
                                             env=self.consumer_env(AWS_ACCESS_KEY_ID=c.access_key_id,
                                                                   AWS_SECRET_ACCESS_KEY=c.secret_access_key),
                                             name='consumer-d')
        # Every consumer at work before the first step.
        wait_until(lambda: all(len(self.calls(k)) >= 3 for k in KINDS), timeout=60, interval=0.2,
                   message='every consumer making calls')

    def start(self):
        self.start_daemon()
        self.start_consumers()
        self.held_keys.append(self.held(APP))

    def out_paths(self, kind):
        if kind == 'c':
            return [p.out_path for p in self.restarter.procs]
        return [self.consumers[kind].out_path]

    def calls(self, kind):
        return parse_calls(self.out_paths(kind))

    def held(self, user):
        """The key the daemon hands out now (as root, over the control socket)."""
        p = self.ctl('get', user, '--format', 'json')
        if p.returncode != 0:
            raise RuntimeError('get %s: %s' % (user, p.stderr))
        d = json.loads(p.stdout)
        self.keys[d['AccessKeyId']] = Creds(d['AccessKeyId'], d['SecretAccessKey'])
        return d['AccessKeyId']

    def step(self, what, *args):
        t = time.monotonic()
        p = self.ctl(*args)
        self.steps.append((what, time.monotonic() - t, p.returncode, p.stdout + p.stderr))
        return p

    def rotate(self, user=APP):
        p = self.step('rotate %s' % user, 'rotate', user, '--wait')
        if user == APP:
            self.held_keys.append(self.held(APP))
        return p

    def rollback(self):
        p = self.step('rollback %s' % APP, 'rollback', APP)
        self.held_keys.append(self.held(APP))
        return p

    def run_steps(self, rotations):
        """legacy-bot once (its drain parks), then app-bot: `rotations`
        rotations with the rollback after the last but one (after the
        first when there is only one). Returns the first step that failed
        as (what, output), or None."""
        steps = [('rotate', LEGACY)]
        for i in range(rotations):
            steps.append(('rotate', APP))
            if i == max(0, rotations - 2):
                steps.append(('rollback', APP))
        for verb, user in steps:
            p = self.rotate(user) if verb == 'rotate' else self.rollback()
            if p.returncode != 0:
                return ('%s %s' % (verb, user), p.stdout + p.stderr)
        return None

    def status(self):
        p = self.ctl('status', '--json')
        if p.returncode != 0:
            raise RuntimeError('status: %s' % p.stderr)
        st = json.loads(p.stdout.splitlines()[-1])
        return {u['name']: u for u in st['users']}

    def stop_consumers(self):
        """Stop every consumer (safe to call again, or after a failed start)."""
        if self.restarter is not None:
            self.restarter.stop()
        for proc in self.consumers.values():
            stop_process(proc, timeout=10)

    def tally(self):
        """Per kind: calls, failures, the failed calls, the keys in order."""
        out = {}
        for kind in KINDS:
            calls = self.calls(kind)
            out[kind] = {
                'calls': len(calls),
                'failed': sum(1 for c in calls if not c[1]),
                'failures': [c for c in calls if not c[1]][:10],
                'keys': runs(c[2] for c in calls if c[1]),
            }
        out['c']['starts'] = len(self.restarter.procs)
        out['c']['bad_exits'] = list(self.restarter.bad_exits)
        return out


class TestConsumersNeverBreak(TapNotes, RigTestCase):
    @classmethod
    def setUpClass(cls):
        why = add_reader()
        if why:
            raise unittest.SkipTest(why)
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        remove_reader()
        super().tearDownClass()

    def scene(self, **settings):
        scene = Continuity(self.rig, **settings)
        self.addCleanup(scene.stop_consumers)
        scene.setup()
        scene.start()
        return scene

    def test_rotations_and_a_rollback_under_four_consumers(self):
        scene = self.scene()
        started = time.monotonic()
        failed_step = scene.run_steps(3)
        st = scene.status()
        scene.stop_consumers()
        wall = time.monotonic() - started
        t = scene.tally()
        log = scene.daemon_log()
        self.tap_note('steps: ' + ', '.join('%s %.1fs' % (w, s) for w, s, _, _ in scene.steps))
        self.tap_note('consumers over %.0fs: ' % wall +
                      '; '.join('%s %d calls %d failed' % (k, t[k]['calls'], t[k]['failed']) for k in KINDS))
        self.assertIsNone(failed_step, failed_step)

        # Every consumer worked throughout, with no failure at all.
        for kind in KINDS:
            self.assertEqual(t[kind]['failed'], 0, '(%s) %s failed: %r' % (kind, DESCRIPTION[kind],
                                                                             t[kind]['failures']))
            # A call every 200 ms at best; (a) runs keyrotctl for each, and (c)
            # pauses while it restarts.
            self.assertGreater(t[kind]['calls'], 0.25 * wall / scene.interval, '(%s) kept calling' % kind)
        # (a), (b) and (c) followed every step, in order: K0 K1 K2, back to
        # K1, then K3 (no consumer went back to a key it had left).
        expected = scene.held_keys
        self.assertEqual(len(runs(expected)), 5, expected)
        for kind in 'abc':
            self.assertEqual(t[kind]['keys'], expected, '(%s) %s' % (kind, DESCRIPTION[kind]))
        self.assertEqual(t['c']['starts'], 5, 'on_rotate restarted (c) once per step')
        self.assertEqual(t['c']['bad_exits'], [])
        self.assertEqual(t['d']['keys'], [self.initial_of(scene, LEGACY)])
        # (a)'s command line carries no secret (nor does its environment:
        # consumer_env() holds no key).
        with open(os.path.join(scene.tmp, 'aws-config')) as f:
            config = f.read()
        for c in scene.keys.values():
            self.assertNotIn(c.secret_access_key, config)

        # The proxy was as strict as AWS: new keys were refused at first,
        # and the key the last rotation deactivated, Inactive in its grace,
        # is refused, though moto alone would take it.
        self.assertGreater(scene.proxy.stats()['faults'].get('propagation', 0), 0)
        app_keys = {k['id']: k['status'] for k in self.rig.list_keys(APP)}
        self.assertEqual(app_keys, {expected[-1]: 'Active', expected[-2]: 'Inactive'})
        inactive = scene.keys[expected[-2]]
        self.assertFalse(self.rig.key_works_on_s3(inactive, BUCKET, endpoint=scene.proxy.endpoint))
        self.assertTrue(self.rig.key_works_on_s3(inactive, BUCKET))

        # app-bot's drains saw (a), (b) and (c) leave each old key.
        drains = [e for e in audit_events(log) if e.get('event') == 'drain' and e.get('user') == APP]
        self.assertEqual([(e.get('result'), e.get('msg')) for e in drains],
                         [('ok', 'consumers have left the old key')] * 4)

        # (d)'s old key is parked in its drain: still Active, in use.
        old, new = self.initial_of(scene, LEGACY), st[LEGACY].get('current_key_id')
        self.assertNotEqual(new, old)
        legacy_keys = {k['id']: k['status'] for k in self.rig.list_keys(LEGACY)}
        self.assertEqual(legacy_keys, {old: 'Active', new: 'Active'})
        self.assertEqual(st[LEGACY]['phase'], 'notified')
        self.assertEqual(st[LEGACY]['next_action'], 'drain')
        self.assertIn('waits for its consumers to leave it', st[LEGACY]['next_reason'])
        self.assertIn(old, st[LEGACY]['next_reason'])
        drains = [e for e in audit_events(log) if e.get('event') == 'drain' and e.get('user') == LEGACY]
        self.assertTrue(drains, 'a drain audit record for %s' % LEGACY)
        self.assertEqual((drains[-1].get('result'), drains[-1].get('error'), drains[-1].get('priority')),
                         ('warning', 'OldKeyInUse', '4'), drains[-1])
        p = scene.ctl('rotate', LEGACY, '--wait')
        self.assertEqual(p.returncode, 1, 'rotate-now refuses while the drain is parked')
        self.assertIn('still drains', p.stdout + p.stderr)
        self.assertEqual(scene.status()[APP]['failures'], 0)
        self.assertEqual(scene.stop_daemon(), 0, scene.daemon_log()[-3000:])

    def test_a_consumer_that_leaves_late_lets_the_drain_end(self):
        """(c) goes on with the old key for 1.5 s after on_rotate began,
        then restarts onto the new one. Once it has left, the drain sees the
        old key unused, it is deactivated, and the next rotation starts."""
        scene = self.scene(restart_delay=1.5)
        p = scene.rotate(APP)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        old, new = scene.held_keys
        keys = {k['id']: k['status'] for k in self.rig.list_keys(APP)}
        self.assertEqual(keys, {new: 'Active', old: 'Inactive'}, scene.steps[-1][3])
        p = scene.rotate(APP)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        scene.stop_consumers()
        t = scene.tally()
        for kind in 'abc':
            self.assertEqual(t[kind]['failed'], 0, '(%s) %r' % (kind, t[kind]['failures']))
            self.assertEqual(t[kind]['keys'], scene.held_keys, kind)

    @staticmethod
    def initial_of(scene, user):
        return scene.initial[user].access_key_id

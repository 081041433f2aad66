# SPDX-License-Identifier: MIT
"""Trust boundaries (docs/DESIGN.md §6): nothing a hostile local user
controls redirects a secret or a write.

Each test reproduces one attack with real local users, made here with
useradd (and removed with userdel): the application's user, who owns its
home and the target in it, and another user. keyrotd runs as root, as
`keyrotd --once` does. Every attack must fail closed:

* nothing written: the victim's files byte for byte, no file added;
* nothing leaked: no secret-shaped string in any file of the test but the
  old key's secret where it was and the victim's own secret in the
  victim's file;
* the old key still held and working (boto3), the only key of the user;
* the new key, if one was made, deleted.

Run as root: python3 tests/rig/taprun.py tests/integration/test_trust.py
"""

import base64
import configparser
import os
import pwd
import re
import shutil
import stat
import subprocess
import unittest

from rig import build_path, wait_until
from rotation_rig import RotationCase, USER, BUCKET

APP = 'krt-app'      # the application's user: owns its home and its key
OTHER = 'krt-other'  # another local user

#: An AWS secret access key: 40 characters of base64's alphabet, alone.
SECRET_SHAPE = re.compile(rb'(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])')


def _user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def _userdel(name):
    if _user_exists(name):
        subprocess.run(['userdel', name], capture_output=True, timeout=60)


class TrustCase(RotationCase):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest('needs root (local users, root-owned victims)')
        if not shutil.which('useradd') or not shutil.which('userdel'):
            raise unittest.SkipTest('useradd/userdel not available')
        super().setUpClass()
        for name in (APP, OTHER):
            _userdel(name)  # left over from an interrupted run
            p = subprocess.run(['useradd', '--system', '--user-group', '--no-create-home',
                                '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', name],
                               capture_output=True, text=True, timeout=60)
            if p.returncode != 0:
                cls.tearDownClass()
                raise unittest.SkipTest('useradd %s failed: %s' % (name, p.stderr.strip()))
        cls.app = pwd.getpwnam(APP)
        cls.other = pwd.getpwnam(OTHER)

    @classmethod
    def tearDownClass(cls):
        for name in (APP, OTHER):
            _userdel(name)
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        # The users walk the test's tree like they would /home and /srv.
        os.chmod(self.rig.tmp, 0o755)
        self.proxy = self.rig.start_proxy()
        self.homes = self.mkdir('users', 0o755)
        self.home = self.mkdir('users/' + APP, 0o755, owner=self.app)
        self.victim_secret = base64.b64encode(os.urandom(30)).decode()

    # ------------------------------------------------------------ helpers

    def mkdir(self, rel, mode, owner=None):
        path = os.path.join(self.rig.tmp, rel)
        os.mkdir(path)
        os.chmod(path, mode)
        if owner:
            os.chown(path, owner.pw_uid, owner.pw_gid)
        return path

    def as_user(self, user, *argv):
        """Run argv as @user (a pwd entry): the attacker's own hands."""
        def drop():
            os.setgroups([])
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
        p = subprocess.run(list(argv), preexec_fn=drop, capture_output=True, text=True, timeout=60, cwd='/')
        self.assertEqual(p.returncode, 0, '%s as %s: %s' % (argv, user.pw_name, p.stderr))

    def make_victim(self, rel):
        """A root-only directory with root's credentials file: other
        profiles of root's, which must never reach anybody else."""
        d = self.mkdir(rel, 0o700)
        path = os.path.join(d, 'credentials')
        with open(path, 'w') as f:
            f.write('[default]\naws_access_key_id = AKIAROOTDEFAULT00000\naws_secret_access_key = %s\n'
                    '[prod-admin]\naws_access_key_id = AKIAROOTPRODADMIN000\naws_secret_access_key = %s\n'
                    % (self.victim_secret[::-1], self.victim_secret))
        os.chmod(path, 0o600)
        return d

    def snapshot(self, *dirs):
        """Every name under @dirs with its bytes (or link text), owner, mode."""
        out = {}
        for top in dirs:
            for dirpath, dirnames, filenames in os.walk(top):
                for n in dirnames + filenames:
                    p = os.path.join(dirpath, n)
                    st = os.lstat(p)
                    data = None
                    if stat.S_ISLNK(st.st_mode):
                        data = os.readlink(p)
                    elif stat.S_ISREG(st.st_mode):
                        with open(p, 'rb') as f:
                            data = f.read()
                    out[p] = (data, st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode))
        return out

    def set_targets(self, targets, **more):
        self.write_inventory(**{USER: dict(targets=targets, **more)})

    def once(self, *args, env=None):
        """keyrotd --once --force as root, through the proxy (which
        counts the keys it creates)."""
        self.created_before = len(self.proxy.created_keys())
        return self.keyrotd('--once', '--force', *args, endpoint=self.proxy.endpoint, env=env)

    def read_credentials(self, path, profile='default'):
        cp = configparser.ConfigParser()
        cp.read(path)
        return cp[profile]['aws_access_key_id'], cp[profile]['aws_secret_access_key']

    def assert_fail_closed(self, p, old, dirs=(), before=None, reason=None, exit_code=1):
        """@p, a finished once(), changed nothing but for an attempt (see
        the module's docstring). @before: snapshot(*@dirs) taken before."""
        out = p.stdout + p.stderr
        self.assertEqual(p.returncode, exit_code, out)
        if reason:
            self.assertIn(reason, out)
        self.assertNotIn(old.secret_access_key, out, 'a secret was printed')
        self.assertNotIn(self.victim_secret, out, "root's secret was printed")
        # Nothing written, nothing added, nothing removed.
        if dirs:
            self.assertEqual(self.snapshot(*dirs), before, 'the victim changed')
        # The old key: held, working, the only one; a new one deleted.
        self.assertEqual(self.held(), old, 'keyrotd still holds the old key')
        self.assertTrue(self.rig.key_works_on_s3(old, BUCKET), 'the old key works')
        keys = self.rig.list_keys(USER)
        self.assertEqual([(k['id'], k['status']) for k in keys], [(old.access_key_id, 'Active')], keys)
        for key_id in self.proxy.created_keys()[self.created_before:]:
            self.assertNotIn(key_id, [k['id'] for k in keys], 'the new key %s was deleted' % key_id)
        self.assert_nothing_leaked(old, before or {})

    def assert_nothing_leaked(self, old, victims):
        """No secret-shaped string in any file of the test but the old
        key's secret, and root's secret only in the victim's files."""
        known = {old.secret_access_key.encode(), self.victim_secret.encode(), self.victim_secret[::-1].encode()}
        for dirpath, dirnames, filenames in os.walk(self.rig.tmp):
            for n in filenames:
                path = os.path.join(dirpath, n)
                if not os.path.isfile(path) or os.path.islink(path):
                    continue
                with open(path, 'rb') as f:
                    data = f.read()
                for m in SECRET_SHAPE.findall(data):
                    self.assertIn(m, known, 'an unknown secret-shaped string in %s' % path)
                    if m != old.secret_access_key.encode():
                        self.assertIn(path, victims, "root's secret in %s" % path)


class TestTargets(TrustCase):
    """Attacks on the path of a target, by the users who own a part of it."""

    def aws_target(self, directory):
        return [{'type': 'credentials-file', 'path': os.path.join(directory, 'credentials'),
                 'profile': 'default', 'owner': APP, 'mode': '0600'}]

    def test_owners_home_works_then_symlinked_dot_aws_is_refused(self):
        # The man page's own example: ~/.aws/credentials, owner: the
        # application's user, who owns ~. It works...
        aws = self.mkdir('users/%s/.aws' % APP, 0o700, owner=self.app)
        path = os.path.join(aws, 'credentials')
        self.set_targets(self.aws_target(aws))
        self.adopt()
        p = self.once()
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        st = os.lstat(path)
        self.assertEqual((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)), (self.app.pw_uid, 0, 0o600))
        old = self.held()
        self.assertEqual(self.read_credentials(path), tuple(old))
        self.assertTrue(self.rig.key_works_on_s3(old, BUCKET))

        # ... until that user swaps ~/.aws for a link to root's directory.
        victim = self.make_victim('etc-victim')
        self.as_user(self.app, 'mv', aws, aws + '.old')
        self.as_user(self.app, 'ln', '-s', victim, aws)
        before = self.snapshot(victim)

        dry = self.keyrotd('--once', '--dry-run', '--force', endpoint=self.proxy.endpoint)
        self.assertEqual(dry.returncode, 1, dry.stdout + dry.stderr)
        self.assertIn('blocked', dry.stdout)
        self.assertIn('%s is a symbolic link' % aws, dry.stdout)

        p = self.once()
        self.assert_fail_closed(p, old, [victim], before, reason='%s is a symbolic link' % aws)
        self.assertEqual(self.read_credentials(os.path.join(aws + '.old', 'credentials')), tuple(old),
                         "the application's real file still holds the old key")

    def test_symlinked_directory_deeper_in_the_path(self):
        conf = self.mkdir('users/%s/app' % APP, 0o755, owner=self.app)
        conf = self.mkdir('users/%s/app/conf' % APP, 0o755, owner=self.app)
        aws = self.mkdir('users/%s/app/conf/aws' % APP, 0o700, owner=self.app)
        self.set_targets(self.aws_target(aws))
        self.adopt()
        old = self.held()
        victim = self.make_victim('srv-victim')
        os.mkdir(os.path.join(victim, 'aws'), 0o700)
        shutil.copy(os.path.join(victim, 'credentials'), os.path.join(victim, 'aws', 'credentials'))
        self.as_user(self.app, 'mv', conf, conf + '.old')
        self.as_user(self.app, 'ln', '-s', victim, conf)
        before = self.snapshot(victim)
        p = self.once()
        self.assert_fail_closed(p, old, [victim], before, reason='%s is a symbolic link' % conf)

    def test_file_precreated_in_a_sticky_directory(self):
        # A target directly in a /tmp-like directory, no owner given:
        # another user makes the file first, readable by all.
        sticky = self.mkdir('sticky', 0o1777)
        path = os.path.join(sticky, 'app.env')
        self.set_targets([{'type': 'env-file', 'path': path}])
        self.adopt()
        old = self.held()
        self.as_user(self.other, 'sh', '-c', 'umask 022; printf "# mine\\n" > %s' % path)
        before = self.snapshot(sticky)
        p = self.once()
        self.assert_fail_closed(p, old, [sticky], before, reason='%s is a sticky directory' % sticky)
        self.assertEqual(os.stat(path).st_uid, self.other.pw_uid)

    def test_directory_planted_in_a_sticky_directory(self):
        # One level down: the other user makes the directory the target
        # is to be written in.
        sticky = self.mkdir('sticky', 0o1777)
        planted = os.path.join(sticky, 'app')
        self.set_targets([{'type': 'json-file', 'path': os.path.join(planted, 'aws.json')}])
        self.adopt()
        old = self.held()
        self.as_user(self.other, 'mkdir', '-m', '0777', planted)
        before = self.snapshot(sticky)
        p = self.once()
        self.assert_fail_closed(p, old, [sticky], before, reason='%s is owned by uid %u inside the sticky directory %s'
                                % (planted, self.other.pw_uid, sticky))

    def test_existing_file_of_another_user_is_not_written_into(self):
        # The owner's directory holds a file another user made (root
        # stands in for however it got there): its owner would keep it.
        aws = self.mkdir('users/%s/.aws' % APP, 0o755, owner=self.app)
        path = os.path.join(aws, 'credentials')
        with open(path, 'w') as f:
            f.write('[other]\nregion = us-east-1\n')
        os.chown(path, self.other.pw_uid, self.other.pw_gid)
        os.chmod(path, 0o644)
        self.set_targets(self.aws_target(aws))
        self.adopt()
        old = self.held()
        before = self.snapshot(aws)
        p = self.once()
        self.assert_fail_closed(p, old, [aws], before,
                                reason='the existing file is owned by uid %u' % self.other.pw_uid)

    def test_group_writable_ancestor(self):
        srv = self.mkdir('srv', 0o775)
        os.chown(srv, 0, self.other.pw_gid)
        app = self.mkdir('srv/app', 0o755)
        self.set_targets([{'type': 'env-file', 'path': os.path.join(app, 'aws.env')}])
        self.adopt()
        old = self.held()
        before = self.snapshot(srv)
        dry = self.keyrotd('--once', '--dry-run', '--force', endpoint=self.proxy.endpoint)
        self.assertIn('%s is writable by group' % srv, dry.stdout)
        p = self.once()
        self.assert_fail_closed(p, old, [srv], before, reason='%s is writable by group' % srv)


class TestConfiguration(TrustCase):
    """Refused when the inventory is loaded: nothing runs at all."""

    def write_hook(self, rel, mode, owner=None):
        path = os.path.join(self.rig.tmp, rel)
        marker = os.path.join(self.rig.tmp, 'hook-ran')
        with open(path, 'w') as f:
            f.write('#!/bin/sh\ntouch %s\n' % marker)
        os.chmod(path, mode)
        if owner:
            os.chown(path, owner.pw_uid, owner.pw_gid)
        return path, marker

    def assert_refused_at_load(self, pattern, old):
        """--check-config names the problem at FILE:LINE:COL, and a run
        stops before anything happens."""
        check = self.keyrotd('--check-config')
        self.assertEqual(check.returncode, 2, check.stderr)
        self.assertRegex(check.stderr, re.escape(self.inventory) + r':\d+:\d+: (.*: )?' + pattern)
        before = self.snapshot(self.appdir)
        p = self.once()
        self.assertEqual(self.proxy.log(), [], 'nothing was asked of AWS')
        self.write_inventory()  # keyrotctl, which reads the store for the checks, loads it too
        self.assert_fail_closed(p, old, [self.appdir], before, exit_code=2)

    def test_hook_of_another_user(self):
        self.mkdir('hooks', 0o755)
        hook, marker = self.write_hook('hooks/notify', 0o755, owner=self.other)
        self.adopt()
        old = self.held()
        self.write_app_targets(creds=old)
        self.set_targets(self.targets_for(USER), on_rotate=[hook])
        self.assert_refused_at_load(re.escape("command '%s' of on_rotate is refused: %s is owned by uid %u, not by "
                                              "root" % (hook, hook, self.other.pw_uid)), old)
        self.assertFalse(os.path.exists(marker), 'the hook ran')

    def test_hook_mode_0777(self):
        self.mkdir('hooks', 0o755)
        hook, marker = self.write_hook('hooks/notify', 0o777)
        self.adopt()
        old = self.held()
        self.write_app_targets(creds=old)
        self.set_targets(self.targets_for(USER), on_failure=[hook, 'x'])
        self.assert_refused_at_load(re.escape("command '%s' of on_failure is refused: %s is writable by group and "
                                              "others" % (hook, hook)), old)
        self.assertFalse(os.path.exists(marker), 'the hook ran')

    def test_hook_in_a_directory_of_another_user(self):
        hooks = self.mkdir('hooks', 0o755, owner=self.other)
        hook, marker = self.write_hook('hooks/notify', 0o755)
        self.adopt()
        old = self.held()
        self.set_targets(self.targets_for(USER), on_rotate=[hook])
        self.assert_refused_at_load(re.escape('%s is owned by uid %u' % (hooks, self.other.pw_uid)), old)
        self.assertFalse(os.path.exists(marker), 'the hook ran')

    def test_bare_hook_name(self):
        self.adopt()
        old = self.held()
        self.set_targets(self.targets_for(USER), on_rotate=['systemctl', 'restart', 'app.service'])
        self.assert_refused_at_load(re.escape("command 'systemctl' of on_rotate is not an absolute path"), old)

    def test_target_mode_0666(self):
        self.adopt()
        old = self.held()
        targets = self.targets_for(USER)
        targets[1]['mode'] = '0666'
        self.set_targets(targets)
        self.assert_refused_at_load(re.escape('mode 0666 is wider than 0640'), old)

    def test_plain_http_endpoint_in_the_inventory(self):
        self.adopt()
        old = self.held()
        with open(self.inventory) as f:
            text = f.read()
        self.assertIn('  region: "us-east-1"\n', text)
        with open(self.inventory, 'w') as f:
            f.write(text.replace('  region: "us-east-1"\n',
                                 '  region: "us-east-1"\n  endpoint_url: "http://10.1.2.3:5000"\n', 1))
        self.assert_refused_at_load(re.escape("endpoint_url 'http://10.1.2.3:5000' uses http:// to a host that is "
                                              "not a loopback address"), old)

    def test_plain_http_endpoint_in_the_environment(self):
        self.adopt()
        old = self.held()
        for var in ('AWS_ENDPOINT_URL', 'AWS_ENDPOINT_URL_IAM', 'AWS_ENDPOINT_URL_S3'):
            with self.subTest(var=var):
                p = self.once(env=self.env(self.proxy.endpoint, **{var: 'http://10.1.2.3:5000'}))
                self.assertNotEqual(p.returncode, 0, p.stderr)
                self.assertIn('%s=http://10.1.2.3:5000 uses http:// to a host that is not a loopback address'
                              % var, p.stderr)
                self.assertEqual(self.proxy.log(), [], 'nothing was asked of AWS')
                self.assert_fail_closed(p, old, exit_code=p.returncode)

    def test_store_of_another_user(self):
        self.adopt()
        old = self.held()
        self.write_app_targets(creds=old)
        before = self.snapshot(self.appdir)
        store = os.path.join(self.state, 'store.sealed')
        os.chown(store, self.app.pw_uid, self.app.pw_gid)
        p = self.once()
        self.assertNotEqual(p.returncode, 0, p.stderr)
        self.assertIn('%s is owned by uid %u' % (store, self.app.pw_uid), p.stderr)
        self.assertEqual(self.proxy.log(), [], 'nothing was asked of AWS')
        os.chown(store, 0, 0)  # to read what it holds
        self.assert_fail_closed(p, old, [self.appdir], before, exit_code=p.returncode)

    def test_key_of_another_user(self):
        self.adopt()
        old = self.held()
        self.write_app_targets(creds=old)
        before = self.snapshot(self.appdir)
        os.chown(self.key_file, self.other.pw_uid, self.other.pw_gid)
        p = self.once()
        self.assertNotEqual(p.returncode, 0, p.stderr)
        self.assertIn('%s is owned by uid %u' % (self.key_file, self.other.pw_uid), p.stderr)
        self.assertEqual(self.proxy.log(), [], 'nothing was asked of AWS')
        os.chown(self.key_file, 0, 0)
        self.assert_fail_closed(p, old, [self.appdir], before, exit_code=p.returncode)


class TestHookChangedAfterLoad(TrustCase):
    """The daemon loaded a good hook; another user then gets to change it.
    The check before each start refuses it, as a failed hook."""

    def test_hook_made_writable_after_load_is_not_run(self):
        self.mkdir('hooks', 0o755)
        hook = os.path.join(self.rig.tmp, 'hooks', 'notify')
        marker = os.path.join(self.rig.tmp, 'hook-ran')
        with open(hook, 'w') as f:
            f.write('#!/bin/sh\nexit 0\n')
        os.chmod(hook, 0o755)
        self.set_targets(self.targets_for(USER), on_rotate=[hook])
        self.adopt()
        old = self.held()
        sock = os.path.join(self.rig.tmp, 'control.sock')
        daemon = self.rig.spawn([build_path('src/keyrotd'), '--config', self.inventory, '--state-dir', self.state,
                                 '--socket', sock, '--log-target', 'stderr'],
                                env=self.env(self.proxy.endpoint), name='keyrotd')
        wait_until(lambda: os.path.exists(sock), timeout=20, message='the control socket')

        os.chmod(hook, 0o777)
        self.as_user(self.other, 'sh', '-c', 'printf "#!/bin/sh\\ntouch %s\\n" > %s' % (marker, hook))
        p = self.rig.run([build_path('src/keyrotctl'), '--socket', sock, 'rotate', USER, '--wait'],
                         env=self.env(self.proxy.endpoint), timeout=120)
        self.assertNotEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertFalse(os.path.exists(marker), "the other user's hook ran as root")

        def logged():
            with open(daemon.err_path) as f:
                text = f.read()
            return 'Refusing to run %s: %s is writable by group and others' % (hook, hook) in text \
                and 'on_rotate hook failed' in text
        wait_until(logged, timeout=20, message='the refusal and the failed hook in the log')
        # A failed hook stops the rotation before the old key is touched.
        keys = {k['id']: k['status'] for k in self.rig.list_keys(USER)}
        self.assertEqual(keys.get(old.access_key_id), 'Active', keys)
        self.assertTrue(self.rig.key_works_on_s3(old, BUCKET))


if __name__ == '__main__':
    unittest.main()

# SPDX-License-Identifier: MIT
"""Live credentials: `keyrotctl get` answered by the daemon, with an
Expiration, for the inventory's readers through the credentials socket.

The readers are real local users and a group, made here with useradd and
groupadd (removed again): the application's user `krt-reader`, a member
`krt-member` of the group `krt-readers`, and `krt-stranger`, who is
neither. Each runs keyrotctl with its own uid and groups; the daemon runs
as root.

Run as root: python3 tests/rig/taprun.py tests/integration/test_get.py
"""

import datetime
import grp
import json
import os
import pwd
import shutil
import socket
import stat
import subprocess
import time
import unittest

from rig import Creds, wait_until
from test_daemon import DaemonCase

READER = 'krt-reader'
MEMBER = 'krt-member'
STRANGER = 'krt-stranger'
GROUP = 'krt-readers'

def _run(*argv):
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=60)


def _remove_accounts():
    for name in (READER, MEMBER, STRANGER):
        try:
            pwd.getpwnam(name)
            _run('userdel', name)
        except KeyError:
            pass
    try:
        grp.getgrnam(GROUP)
        _run('groupdel', GROUP)
    except KeyError:
        pass


def parse_instant(s):
    return datetime.datetime.strptime(s, '%Y-%m-%dT%H:%M:%SZ').replace(
        tzinfo=datetime.timezone.utc).timestamp()


def as_user(name):
    """preexec_fn: become the local user @name, with its groups."""
    pw = pwd.getpwnam(name)
    groups = sorted({g.gr_gid for g in grp.getgrall() if name in g.gr_mem} | {pw.pw_gid})

    def drop():
        os.setgroups(groups)
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)
    return drop


class GetCase(DaemonCase):
    users = ('bot-a', 'bot-b')

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest('needs root (local users and groups)')
        for tool in ('useradd', 'userdel', 'usermod', 'groupadd', 'groupdel'):
            if not shutil.which(tool):
                raise unittest.SkipTest('%s not available' % tool)
        super().setUpClass()
        _remove_accounts()  # left over from an interrupted run
        steps = [('groupadd', '--system', GROUP)]
        for name in (READER, MEMBER, STRANGER):
            steps.append(('useradd', '--system', '--user-group', '--no-create-home', '--home-dir',
                          '/nonexistent', '--shell', '/usr/sbin/nologin', name))
        steps.append(('usermod', '--append', '--groups', GROUP, MEMBER))
        for argv in steps:
            p = _run(*argv)
            if p.returncode != 0:
                _remove_accounts()
                raise unittest.SkipTest('%s failed: %s' % (' '.join(argv), p.stderr.strip()))

    @classmethod
    def tearDownClass(cls):
        _remove_accounts()
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        # The readers reach the sockets in the test's directory as they
        # would reach /run/keyrotd.
        os.chmod(self.rig.tmp, 0o755)
        self.cred_path = os.path.join(self.rig.tmp, 'credentials.sock')

    def start(self, ttl='1h', **per_user):
        users = {'bot-a': {'readers': [READER, '@' + GROUP]}}
        for u, over in per_user.items():
            users.setdefault(u, {}).update(over)
        self.write_inventory(defaults={'credentials_ttl': ttl}, **users)
        self.adopt_all()
        self.start_daemon()

    def get_as(self, name, user, fmt='json'):
        """keyrotctl get as the local user @name (None: root)."""
        argv = [self.rig.build_path('src/keyrotctl'), '--socket', self.sock_path, '--config', self.inventory,
                '--state-dir', self.state, 'get', user, '--format', fmt]
        return subprocess.run(argv, preexec_fn=as_user(name) if name else None, capture_output=True, text=True,
                              timeout=60, cwd='/', env=self.env())

    def get_json(self, name, user):
        p = self.get_as(name, user)
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    def raw(self, path, line, name=None):
        """One request line to the socket at @path as the local user @name
        (None: root), from a child that drops to it; the answer, parsed."""
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns into the test
            status = 1
            try:
                os.close(rfd)
                if name:
                    as_user(name)()
                with socket.socket(socket.AF_UNIX) as s:
                    s.settimeout(30)
                    s.connect(path)
                    s.sendall(line.encode() + b'\n')
                    buf = b''
                    while not buf.endswith(b'\n'):
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        buf += chunk
                os.write(wfd, buf)
                status = 0
            finally:
                os._exit(status)
        os.close(wfd)
        with os.fdopen(rfd, 'rb') as f:
            out = f.read()
        _, status = os.waitpid(pid, 0)
        self.assertEqual(status, 0, 'the client as %s failed' % name)
        return json.loads(out)

    def assert_refused(self, p):
        """A refusal: exit 1, nothing on stdout, no key in the message."""
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual(p.stdout, '')
        for c in self.initial.values():
            self.assertNotIn(c.secret_access_key, p.stderr)


class TestLiveCredentials(GetCase):
    def test_daemon_answers_with_expiration(self):
        """Root through the control socket: the held key, with an Expiration
        of now + credentials_ttl; the other formats carry none."""
        self.start(ttl='10m')
        before = time.time()
        d = self.get_json(None, 'bot-b')
        after = time.time()
        self.assertEqual(sorted(d), ['AccessKeyId', 'Expiration', 'SecretAccessKey', 'Version'])
        self.assertEqual(d['AccessKeyId'], self.initial['bot-b'].access_key_id)
        self.assertEqual(d['SecretAccessKey'], self.initial['bot-b'].secret_access_key)
        exp = parse_instant(d['Expiration'])
        self.assertGreaterEqual(exp, int(before) + 600)
        self.assertLessEqual(exp, after + 601)
        p = self.get_as(None, 'bot-b', fmt='credentials')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn('aws_secret_access_key = %s' % self.initial['bot-b'].secret_access_key, p.stdout)
        self.assertNotIn('Expiration', p.stdout)
        p = self.get_as(None, 'bot-b', fmt='env')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn('AWS_SECRET_ACCESS_KEY=%s' % self.initial['bot-b'].secret_access_key, p.stdout)

    def test_without_daemon_the_store_answers_without_expiration(self):
        self.start()
        self.stop_daemon()
        d = self.get_json(None, 'bot-a')
        self.assertEqual(d['AccessKeyId'], self.initial['bot-a'].access_key_id)
        self.assertNotIn('Expiration', d)

    def test_old_key_outlives_the_expiration_it_was_handed_out_with(self):
        """A key handed out until T is not deactivated before T, even with
        drain off and no grace: an SDK may use it until then."""
        self.start(ttl='6s')
        old = self.initial['bot-a'].access_key_id
        d = self.get_json(READER, 'bot-a')
        self.assertEqual(d['AccessKeyId'], old)
        until = parse_instant(d['Expiration'])
        p = self.ctl_socket('rotate', 'bot-a', '--wait')
        self.assertEqual(p.returncode, 0, p.stderr + p.stdout)
        done = time.time()
        self.assertGreaterEqual(done, until, 'the rotation ended only after the Expiration handed out')
        keys = {k['id']: k['status'] for k in self.rig.list_keys('bot-a')}
        self.assertNotIn(old, keys, 'grace 0: the old key is gone once its Expiration passed')
        # The new key is what the reader gets now, and the deactivation
        # was audited after the Expiration.
        self.assertNotEqual(self.get_json(READER, 'bot-a')['AccessKeyId'], old)
        events = [e for e in self.audit_events(self.stderr())
                  if e.get('event') == 'old_key_deactivated' and e.get('result') == 'ok']
        self.assertEqual(len(events), 1, events)
        self.assertGreaterEqual(parse_instant(events[0]['time']), until)

    def test_expiration_survives_a_restart(self):
        """The Expiration is in the store before the key goes out: a
        daemon started again still waits for it."""
        self.start(ttl='8s')
        until = parse_instant(self.get_json(READER, 'bot-a')['Expiration'])
        self.daemon.kill()  # no chance to write anything more
        self.daemon.wait(timeout=30)
        self.start_daemon()
        p = self.ctl_socket('rotate', 'bot-a', '--wait')
        self.assertEqual(p.returncode, 0, p.stderr + p.stdout)
        self.assertGreaterEqual(time.time(), until)


class TestReaders(GetCase):
    def test_reader_user_and_group_member_get_the_key(self):
        self.start()
        for name in (READER, MEMBER):
            d = self.get_json(name, 'bot-a')
            self.assertEqual(Creds(d['AccessKeyId'], d['SecretAccessKey']), self.initial['bot-a'])
            self.assertIn('Expiration', d)
        st = os.stat(self.cred_path)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o666)

    def test_stranger_learns_nothing(self):
        """Not a reader: refused; the answer is the same whether the user
        exists or not."""
        self.start()
        p = self.get_as(STRANGER, 'bot-a')
        self.assert_refused(p)
        self.assertIn('may not read the key of bot-a', p.stderr)
        uid = pwd.getpwnam(STRANGER).pw_uid
        a = self.raw(self.cred_path, json.dumps({'cmd': 'get', 'user': 'bot-a'}), STRANGER)
        b = self.raw(self.cred_path, json.dumps({'cmd': 'get', 'user': 'no-such-user'}), STRANGER)
        self.assertEqual(a, {'ok': False, 'error': 'permission denied: uid %d may not read the key of bot-a' % uid})
        self.assertEqual(b, {'ok': False,
                             'error': 'permission denied: uid %d may not read the key of no-such-user' % uid})

    def test_reader_of_one_user_cannot_read_another(self):
        self.start()
        p = self.get_as(READER, 'bot-b')
        self.assert_refused(p)
        self.assertIn('may not read the key of bot-b', p.stderr)
        self.assertNotIn(self.initial['bot-b'].access_key_id, p.stderr)

    def test_credentials_socket_answers_only_get(self):
        self.start()
        for cmd in ({'cmd': 'status'}, {'cmd': 'rotate', 'all': True}, {'cmd': 'reload'},
                    {'cmd': 'rollback', 'user': 'bot-a'}):
            a = self.raw(self.cred_path, json.dumps(cmd), READER)
            self.assertEqual(a, {'ok': False, 'error': 'permission denied: the credentials socket answers only get'},
                             cmd)
        # Nothing was rotated or reloaded.
        self.assertEqual(self.key_of('bot-a'), [self.initial['bot-a'].access_key_id])

    def test_readers_follow_a_reload(self):
        """readers: is read at every reload: a reader removed is refused at once."""
        self.start()
        self.assertEqual(self.get_as(READER, 'bot-a').returncode, 0)
        self.write_inventory(defaults={'credentials_ttl': '1h'}, **{'bot-a': {'readers': ['@' + GROUP]}})
        p = self.ctl_socket('reload')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assert_refused(self.get_as(READER, 'bot-a'))
        self.assertEqual(self.get_as(MEMBER, 'bot-a').returncode, 0)

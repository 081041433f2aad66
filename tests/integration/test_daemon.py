# SPDX-License-Identifier: MIT
"""The long-running keyrotd: scheduler, signals, control socket, sd_notify.

The real daemon runs against moto; a datagram socket stands in for
systemd's NOTIFY_SOCKET; clients are keyrotctl and raw sockets."""

import concurrent.futures
import json
import os
import pwd
import shutil
import signal
import socket
import threading
import time
import unittest

from faultproxy import Fault
from rig import requires_test_hooks, wait_until, stop_process
from rotation_rig import RotationCase, USER, BUCKET


class Notify:
    """A NOTIFY_SOCKET that records what the daemon tells systemd."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.messages = []
        self._stop = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            self.messages.append(data.decode(errors='replace'))

    def seen(self, text):
        return any(text in m for m in self.messages)

    def close(self):
        self._stop = True
        self.thread.join()
        self.sock.close()


class DaemonCase(RotationCase):
    users = ('bot-a', 'bot-b')

    def setUp(self):
        super().setUp()
        self.sock_path = os.path.join(self.rig.tmp, 'control.sock')
        self.notify = Notify(os.path.join(self.rig.tmp, 'notify.sock'))
        self.addCleanup(self.notify.close)
        self.daemon = None

    def adopt_all(self):
        for u in self.users:
            self.adopt(u)

    def start_daemon(self, endpoint=None, wrapper=()):
        """keyrotd in the background, once it said READY=1; wrapper: argv
        to run it under (prlimit ... --)."""
        env = self.env(endpoint, NOTIFY_SOCKET=self.notify.path)
        self.notify.messages.clear()  # READY=1 must come from this start
        self.daemon = self.rig.spawn(list(wrapper) + [self.rig.build_path('src/keyrotd'), '--config', self.inventory,
                                                      '--state-dir', self.state, '--socket', self.sock_path,
                                                      '--log-target', 'stderr'], env=env, name='keyrotd')
        wait_until(lambda: self.notify.seen('READY=1'), timeout=20, message='READY=1 from keyrotd')
        return self.daemon

    def stop_daemon(self):
        self.daemon.send_signal(signal.SIGTERM)
        self.assertEqual(self.daemon.wait(timeout=60), 0)

    def stderr(self):
        with open(self.daemon.err_path) as f:
            return f.read()

    def request(self, obj, raw=None):
        """One request over the socket; returns every line of the answer."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(60)
        s.connect(self.sock_path)
        s.sendall(raw if raw is not None else (json.dumps(obj) + '\n').encode())
        lines, buf = [], b''
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
            while b'\n' in buf:
                line, buf = buf.split(b'\n', 1)
                lines.append(json.loads(line))
                if 'ok' in lines[-1]:
                    s.close()
                    return lines
        s.close()
        return lines

    def ctl_socket(self, *args, user=None):
        argv = [self.rig.build_path('src/keyrotctl'), '--socket', self.sock_path] + list(args)
        return self.rig.run(argv, env=self.env())

    def key_of(self, user):
        return [k['id'] for k in self.rig.list_keys(user) if k['status'] == 'Active']


class TestScheduler(DaemonCase):
    users = ('bot-a',)

    def test_short_max_age_rotates_on_its_own_repeatedly(self):
        self.write_inventory(defaults={'splay': '0'}, **{'bot-a': {'max_age': '2s'}})
        self.adopt_all()
        first = self.key_of('bot-a')
        self.start_daemon()
        seen = set(first)
        def rotated_twice():
            seen.update(self.key_of('bot-a'))
            return len(seen) >= 3
        wait_until(rotated_twice, timeout=60, interval=0.5, message='two scheduled rotations')
        self.stop_daemon()
        # SIGTERM may have parked a rotation with both keys Active (a safe
        # point); the next start finishes it.
        self.write_inventory(defaults={'splay': '0'})
        r = self.keyrotd('--once')
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assert_invariants('bot-a')
        self.assertIn('trigger=schedule', self.stderr())
        self.assertTrue(self.notify.seen('STATUS='))

    def test_failing_user_backs_off(self):
        self.write_inventory(defaults={'splay': '0', 'alert_after': 2},
                             **{'bot-a': {'max_age': '1s', 'verify': {'bucket': 'other-bucket'}}})
        # adopt checks the verify bucket: seal the key with a valid inventory first.
        inv = open(self.inventory).read()
        self.write_inventory(defaults={'splay': '0'})
        self.adopt_all()
        with open(self.inventory, 'w') as f:
            f.write(inv)
        self.start_daemon()
        def failed():
            st = self.request({'cmd': 'status'})[-1]
            u = st['users'][0]
            return u if u['failures'] >= 1 and not u['in_flight'] else None
        u = wait_until(failed, timeout=60, interval=0.5, message='a failed scheduled rotation')
        # The retry waits about a minute (1 min doubling to 6 h), not max_age.
        self.assertGreater(u['next_due_sec'], 30)
        self.assertLessEqual(u['next_due_sec'], 60)
        self.assertEqual(self.key_of('bot-a'), [self.initial['bot-a'].access_key_id])
        self.stop_daemon()


class TestControl(DaemonCase):
    def test_rotate_wait_rotates_exactly_that_user(self):
        self.adopt_all()
        self.start_daemon()
        p = self.ctl_socket('rotate', 'bot-a', '--wait')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertNotEqual(self.key_of('bot-a'), [self.initial['bot-a'].access_key_id])
        self.assertEqual(self.key_of('bot-b'), [self.initial['bot-b'].access_key_id])
        self.assert_invariants('bot-a')
        self.stop_daemon()

    def test_status_json(self):
        self.adopt_all()
        self.start_daemon()
        p = self.ctl_socket('status', '--json')
        self.assertEqual(p.returncode, 0, p.stderr)
        st = json.loads(p.stdout.splitlines()[-1])
        self.assertTrue(st['ok'])
        self.assertEqual(sorted(u['name'] for u in st['users']), ['bot-a', 'bot-b'])
        for u in st['users']:
            self.assertEqual(u['phase'], 'idle')
            self.assertEqual(u['current_key_id'], self.initial[u['name']].access_key_id)
            self.assertGreater(u['next_due_sec'], 80 * 86400)
            self.assertEqual(u['next_action'], 'none', 'decide() on the store: not due')
            self.assertIn('not due: due in', u['next_reason'])
        p = self.ctl_socket('status')
        self.assertEqual(p.returncode, 0)
        self.assertIn('bot-a', p.stdout)
        self.assertRegex(p.stdout, r'(?m)^USER +PHASE +KEY +AGE +NEXT DUE +ACTION +LAST +FAILURES$')
        self.stop_daemon()

    def test_sigusr1_rotates_everyone(self):
        self.adopt_all()
        self.start_daemon()
        self.daemon.send_signal(signal.SIGUSR1)
        for u in self.users:
            wait_until(lambda: self.key_of(u) != [self.initial[u].access_key_id]
                       and len(self.rig.list_keys(u)) == 1, timeout=60, interval=0.3)
        self.stop_daemon()
        for u in self.users:
            self.assert_invariants(u)

    def test_sighup_reload_good_and_bad(self):
        self.adopt_all()
        self.start_daemon()
        self.users = ('bot-a',)
        self.write_inventory()
        self.daemon.send_signal(signal.SIGHUP)
        wait_until(lambda: [u['name'] for u in self.request({'cmd': 'status'})[-1]['users']] == ['bot-a'],
                   timeout=20, interval=0.2, message='bot-b removed by reload')
        with open(self.inventory, 'a') as f:
            f.write('this is: [not valid\n')
        self.daemon.send_signal(signal.SIGHUP)
        wait_until(lambda: 'reload rejected' in self.stderr(), timeout=20, interval=0.2)
        st = self.request({'cmd': 'status'})[-1]
        self.assertEqual([u['name'] for u in st['users']], ['bot-a'], 'the old inventory stays in force')
        self.assertEqual(self.request({'cmd': 'reload'})[-1]['ok'], False)
        self.stop_daemon()
        self.assertEqual(self.key_of('bot-b'), [self.initial['bot-b'].access_key_id], 'keys of removed users untouched')

    def test_unprivileged_client_is_refused(self):
        if os.geteuid() != 0:
            self.skipTest('needs root to run a client as nobody')
        self.adopt_all()
        self.start_daemon()
        nobody = pwd.getpwnam('nobody')
        os.chmod(self.rig.tmp, 0o755)
        os.chmod(self.sock_path, 0o666)  # so the refusal comes from SO_PEERCRED, not the mode
        def as_nobody():
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
        import subprocess
        code = ('import socket,json;s=socket.socket(socket.AF_UNIX);s.connect(%r);'
                's.sendall(b\'{"cmd":"rotate","all":true}\\n\');print(s.recv(4096).decode())' % self.sock_path)
        out = subprocess.run(['python3', '-c', code], preexec_fn=as_nobody, capture_output=True, text=True,
                             timeout=30)
        self.assertIn('"ok":false', out.stdout.replace(' ', ''), out.stderr)
        self.assertIn('permission denied', out.stdout)
        time.sleep(0.5)  # give a wrongly accepted request the chance to start (it must not)
        for u in self.users:
            self.assertEqual(self.key_of(u), [self.initial[u].access_key_id])
        self.stop_daemon()

    def test_many_clients_and_garbage(self):
        self.adopt_all()
        self.start_daemon()
        self.assertEqual(self.request(None, raw=b'{not json\n')[-1]['ok'], False)
        self.assertEqual(self.request(None, raw=b'x' * (65 * 1024))[-1]['ok'], False)
        self.assertEqual(self.request({'cmd': 'frobnicate'})[-1]['ok'], False)
        self.assertEqual(self.request({'cmd': 'rotate', 'users': 'bot-a'})[-1]['ok'], False)
        with concurrent.futures.ThreadPoolExecutor(max_workers=50) as ex:
            answers = list(ex.map(lambda _: self.request({'cmd': 'status'})[-1], range(200)))
        self.assertEqual(len(answers), 200)
        self.assertTrue(all(a['ok'] for a in answers))
        self.assertTrue(self.request({'cmd': 'status'})[-1]['ok'], 'still serving')
        self.stop_daemon()


class TestParkedDrain(DaemonCase):
    users = ('bot-a',)

    def test_status_shows_the_old_key_kept_for_its_consumers(self):
        """A drain that must wait longer than a minute parks: status names
        the old key kept Active, in JSON and in the table."""
        self.write_inventory(**{'bot-a': {'drain': {'settle': '10m'}}})
        self.adopt_all()
        self.start_daemon()
        old = self.initial['bot-a'].access_key_id
        p = self.ctl_socket('rotate', 'bot-a', '--wait')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        p = self.ctl_socket('status', '--json')
        self.assertEqual(p.returncode, 0, p.stderr)
        u = json.loads(p.stdout)['users'][0]
        self.assertEqual((u['phase'], u['next_action'], u['draining_key_id']), ('notified', 'drain', old), u)
        self.assertEqual(u['drain_warnings'], 0)
        self.assertGreater(u['drain_next_sec'], 500)
        self.assertNotEqual(u['current_key_id'], old)
        self.assertEqual(sorted(self.key_of('bot-a')), sorted([old, u['current_key_id']]))
        p = self.ctl_socket('status')
        self.assertRegex(p.stdout, r'draining: the old key %s stays Active while consumers use it \(0 warnings\); '
                                   r'next look in \d+m' % old)


class TestShutdown(DaemonCase):
    users = ('bot-a', 'bot-b', 'bot-c')

    def test_sigterm_mid_rotation_then_restart_completes(self):
        self.write_inventory(**{u: {'verify': {'consecutive': 3, 'interval': '1s'}} for u in self.users})
        self.adopt_all()
        self.start_daemon()
        self.daemon.send_signal(signal.SIGUSR1)
        wait_until(lambda: 'event=key_created' in self.stderr(), timeout=30, interval=0.05)
        self.daemon.send_signal(signal.SIGTERM)
        self.assertEqual(self.daemon.wait(timeout=60), 0)
        self.assertTrue(self.notify.seen('STOPPING=1'))
        # Restart: recovery finishes or undoes; a forced rotation then succeeds for all.
        self.start_daemon()
        p = self.ctl_socket('rotate', '--all', '--wait')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.stop_daemon()
        for u in self.users:
            self.assert_invariants(u)

    @requires_test_hooks
    def test_rotate_asked_during_recovery_rotates_after_it(self):
        # An interrupted rotation (sealed, not verified) for the recovery
        # at the next start to undo.
        self.write_inventory(**{u: {'verify': {'consecutive': 1}} for u in self.users})
        self.adopt_all()
        before = {u: self.key_of(u) for u in self.users}
        p = self.keyrotd('--once', '--force', env=self.env(KEYROTD_CRASH_AT='after-commit-pending'))
        self.assertEqual(p.returncode, -signal.SIGKILL, p.stderr[-500:])
        # The recovery's first call is slow, so the request below arrives
        # while it runs: the client must get the rotation it asked for,
        # after the recovery, not the recovery's "nothing to do".
        proxy = self.rig.start_proxy(slow=Fault(next=len(self.users), action='ListAccessKeys', seconds=2))
        self.start_daemon(endpoint=proxy.endpoint)
        p = self.ctl_socket('rotate', '--all', '--wait')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn('%d completed, 0 not due, 0 failed' % len(self.users), p.stdout)
        self.assertIn('interrupted before verification; undoing', self.stderr())
        self.stop_daemon()
        for u in self.users:
            self.assertNotEqual(self.key_of(u), before[u])
            self.assert_invariants(u, targets_written=True)

    def test_no_secret_outside_the_sealed_store(self):
        self.adopt_all()
        self.start_daemon()
        p = self.ctl_socket('rotate', '--all', '--wait')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.stop_daemon()
        secrets = [self.rig.admin.secret_access_key]
        for u in self.users:
            secrets += [self.initial[u].secret_access_key, self.held(u).secret_access_key]
        blobs = [self.stderr(), open(self.daemon.out_path).read(), p.stdout, p.stderr]
        for name in os.listdir(self.state):
            if name != 'store.sealed':
                with open(os.path.join(self.state, name), 'rb') as f:
                    blobs.append(f.read().decode('latin-1'))
        for s in secrets:
            for b in blobs:
                self.assertNotIn(s, b)


class TestSocketActivation(DaemonCase):
    """keyrotd.socket's way: the socket exists before the daemon, the first
    client starts it, and it serves the descriptor named "control" it was
    handed. systemd-socket-activate plays systemd: it listens, and on the
    first connection execs keyrotd with LISTEN_FDS/LISTEN_FDNAMES."""
    users = ('bot-a',)

    @unittest.skipUnless(shutil.which('systemd-socket-activate'), 'systemd-socket-activate missing')
    def test_first_client_starts_the_daemon_on_the_passed_socket(self):
        self.adopt_all()
        # keyrotd's own identity from a file: the activator passes only the
        # variables it is told to, and a secret has no place in argv.
        creds = os.path.join(self.rig.tmp, 'aws-credentials')
        with open(creds, 'w') as f:
            f.write('[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n'
                    % (self.rig.admin.access_key_id, self.rig.admin.secret_access_key))
        os.chmod(creds, 0o600)
        env = self.env(AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None, AWS_SHARED_CREDENTIALS_FILE=creds,
                       NOTIFY_SOCKET=self.notify.path)
        passed = [k for k in env if k.startswith(('AWS_', 'ASAN_', 'UBSAN_', 'LSAN_'))] + ['NOTIFY_SOCKET', 'HOME']
        # No --socket: without the passed descriptor keyrotd would make
        # /run/keyrotd/control.sock, and nothing would answer below.
        argv = ['systemd-socket-activate', '-l', self.sock_path, '--fdname=control']
        for k in passed:
            argv += ['-E', '%s=%s' % (k, env[k])]
        argv += [self.rig.build_path('src/keyrotd'), '--config', self.inventory, '--state-dir', self.state,
                 '--log-target', 'stderr']
        self.daemon = self.rig.spawn(argv, env=env, name='keyrotd')
        wait_until(lambda: os.path.exists(self.sock_path), timeout=10, message='the activator listening')
        inode = os.stat(self.sock_path).st_ino
        self.assertFalse(self.notify.seen('READY=1'), 'not started before a client comes')

        # The first client's request waits in the backlog while keyrotd
        # starts, and is answered by it.
        p = self.ctl_socket('status', '--json')
        self.assertEqual(p.returncode, 0, p.stderr + self.stderr())
        self.assertEqual([u['name'] for u in json.loads(p.stdout)['users']], ['bot-a'])
        self.assertTrue(self.notify.seen('READY=1'))
        self.assertEqual(os.stat(self.sock_path).st_ino, inode, 'keyrotd serves the socket it was handed')

        before = self.key_of('bot-a')
        p = self.ctl_socket('rotate', 'bot-a', '--wait')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertNotEqual(self.key_of('bot-a'), before)

        self.stop_daemon()
        # The socket is systemd's (RemoveOnStop=): keyrotd leaves it alone.
        self.assertTrue(os.path.exists(self.sock_path))
        self.assertEqual(os.stat(self.sock_path).st_ino, inode)


if __name__ == '__main__':
    unittest.main()

# SPDX-License-Identifier: MIT
"""What a hostile client or a restored store cannot take from the daemon.

- Descriptors: a flood of idle connections from an allowed client (this
  test's own uid is allowed) leaves keyrotd its reserve: a rotation still
  reaches AWS and runs its hook, and status still answers within 1 s.
- Deadlines: clients that write a request one byte a second, or send
  nothing at all, are dropped within the deadline (keyrotd(8), LIMITS).
- A store restored from an older copy: status shows the user lost with the
  command that fixes it, keyrotctl get refuses, and neither the daemon nor
  keyrotd --once writes the stale key anywhere.
- Text from AWS reaches stdout without its control characters (U+009B, the
  8-bit CSI, in an error code).
"""

import json
import os
import resource
import shutil
import signal
import socket
import time
import unittest

from rig import Fault, requires_test_hooks, wait_until
from test_daemon import DaemonCase

#: keyrotd's deadlines (src/daemon/control.h)
LINE_TIMEOUT = 10.0
IDLE_TIMEOUT = 30.0
#: timer accuracy and scheduling slack on a loaded machine
SLACK = 3.0

#: An AWS error code with C1 controls in it: U+009B (CSI), U+0085 (NEL).
#: (XML has no place for C0 controls such as ESC: expat refuses them.)
EVIL_CODE = 'Evil\u009b31mCode\u0085x'


def raise_own_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need and (hard == resource.RLIM_INFINITY or hard >= need):
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= need


class BudgetCase(DaemonCase):
    users = ('bot-a',)

    def connect_idle(self, n):
        """n connections that never send a byte."""
        socks = []
        self.addCleanup(lambda: [s.close() for s in socks])

        def connect():
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                s.connect(self.sock_path)
            except BlockingIOError:  # the backlog is full: keyrotd is accepting
                s.close()
                return None
            return s
        for _ in range(n):
            socks.append(wait_until(connect, timeout=10, interval=0.01, message='a place in the backlog'))
        return socks

    def status_within(self, seconds):
        """A status request, answered in full before the deadline."""
        deadline = time.monotonic() + seconds
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(seconds)
            s.connect(self.sock_path)
            s.sendall(b'{"cmd":"status"}\n')
            buf = b''
            while b'\n' not in buf:
                left = deadline - time.monotonic()
                self.assertGreater(left, 0, 'status not answered within %.1fs' % seconds)
                s.settimeout(left)
                chunk = s.recv(65536)
                self.assertTrue(chunk, 'connection closed before the status answer')
                buf += chunk
            self.assertLess(time.monotonic(), deadline)
            return json.loads(buf.split(b'\n', 1)[0])
        finally:
            s.close()


def closed(s):
    """True once the daemon closed this connection."""
    try:
        return s.recv(4096, socket.MSG_DONTWAIT) == b''
    except BlockingIOError:
        return False
    except OSError:
        return True


class TestDescriptors(BudgetCase):
    def test_idle_flood_leaves_room_for_rotations_hooks_and_status(self):
        n = 1100
        if not raise_own_nofile(n + 200):
            self.skipTest('cannot open %d descriptors in the test' % (n + 200))
        hook_mark = os.path.join(self.rig.tmp, 'hook-ran')
        self.write_inventory(**{'bot-a': {'on_rotate': ['/usr/bin/touch', hook_mark]}})
        self.adopt_all()
        # The descriptors the adversarial review found keyrotd with.
        self.start_daemon(wrapper=['prlimit', '--nofile=1024:1024', '--'])
        wait_until(lambda: 'file descriptors: limit 1024' in self.stderr(), timeout=10,
                   message='the limit logged at start')

        flood = self.connect_idle(n)
        # Every one of them reached keyrotd: accepted, or in the place of one
        # idle longer (which is closed).
        wait_until(lambda: 'client uid %d' % os.geteuid() in self.stderr(), timeout=20,
                   message='idle clients dropped to make room')

        st = self.status_within(1.0)
        self.assertTrue(st['ok'], st)

        before = self.key_of('bot-a')
        p = self.ctl_socket('rotate', 'bot-a', '--wait')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr + self.stderr()[-3000:])
        self.assertNotEqual(self.key_of('bot-a'), before)
        self.assertTrue(os.path.exists(hook_mark), 'on_rotate ran')
        self.assertNotIn('Too many open files', self.stderr())

        st = self.status_within(1.0)
        self.assertTrue(st['ok'], st)
        self.assertTrue(any(not closed(s) for s in flood), 'the cap keeps many clients, not a handful')
        self.stop_daemon()
        self.assert_invariants('bot-a')


class TestDeadlines(BudgetCase):
    def test_slow_writers_and_idle_clients_are_dropped(self):
        self.adopt_all()
        self.start_daemon()
        request = b'{"cmd":"status"}\n'
        writers = []
        for _ in range(50):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(self.sock_path)
            s.setblocking(False)
            writers.append(s)
        self.addCleanup(lambda: [s.close() for s in writers])
        idle = self.connect_idle(5)

        start = time.monotonic()
        dropped_at = {}
        tick = 0
        # One byte a second to every writer still connected: a request line
        # takes 17 s that way, longer than the deadline.
        while len(dropped_at) < len(writers) and time.monotonic() < start + LINE_TIMEOUT + SLACK:
            i_byte = min(tick, len(request) - 2)  # never the "\n"
            for i, s in enumerate(writers):
                if i in dropped_at:
                    continue
                if closed(s):
                    dropped_at[i] = time.monotonic() - start
                    continue
                try:
                    s.send(request[i_byte:i_byte + 1])
                except OSError:
                    dropped_at[i] = time.monotonic() - start
            tick += 1
            # Checked every 50 ms, written every second.
            wait_until(lambda: time.monotonic() >= start + tick or all(closed(s) for s in writers),
                       timeout=2, interval=0.05)
        self.assertEqual(len(dropped_at), len(writers), 'every slow writer dropped within %.0fs' % (LINE_TIMEOUT + SLACK))
        self.assertGreaterEqual(min(dropped_at.values()), LINE_TIMEOUT - 1, 'not before the deadline')
        self.assertIn('too slow, a request line not complete within 10s', self.stderr())
        self.assertTrue(self.status_within(1.0)['ok'], 'serving the others meanwhile')

        wait_until(lambda: all(closed(s) for s in idle), timeout=IDLE_TIMEOUT + SLACK - (time.monotonic() - start),
                   interval=0.2, message='idle clients dropped after %.0fs' % IDLE_TIMEOUT)
        self.assertGreaterEqual(time.monotonic() - start, IDLE_TIMEOUT - 1)
        self.assertIn('idle, no request within 30s', self.stderr())
        self.stop_daemon()


class TestRestoredStore(BudgetCase):
    """An older copy of the store over the current one."""

    def store_path(self):
        return os.path.join(self.state, 'store.sealed')

    def snapshot(self):
        path = os.path.join(self.rig.tmp, 'store.backup')
        shutil.copy2(self.store_path(), path)
        return path

    def restore(self, backup):
        shutil.copy2(backup, self.store_path())
        os.chmod(self.store_path(), 0o600)

    def assert_targets_hold(self, key_id):
        for c in self.target_keys('bot-a'):
            self.assertEqual(c.access_key_id, key_id, 'targets keep the key in service')

    def test_lost_user_status_get_once_and_the_fix(self):
        self.adopt_all()
        backup = self.snapshot()
        stale = self.initial['bot-a'].access_key_id
        r = self.keyrotd('--once', '--force')
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        current = self.key_of('bot-a')[0]
        self.assertNotIn(stale, [k['id'] for k in self.rig.list_keys('bot-a')], 'grace 0: the old key is gone')
        self.restore(backup)

        # get asks IAM before it prints.
        g = self.ctl('get', 'bot-a', '--format', 'json')
        self.assertEqual(g.returncode, 1, g.stdout + g.stderr)
        self.assertEqual(g.stdout, '')
        self.assertIn("keyrotctl rotate bot-a --replace-lost", g.stderr)
        self.assertIn(stale, g.stderr)

        # --once hands the stale key to nobody.
        r = self.keyrotd('--once', '--force')
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn('bot-a: FAILED', r.stdout)
        self.assert_targets_hold(current)
        self.assertEqual(self.key_of('bot-a'), [current], 'nothing in IAM touched')

        # The daemon: lost in status, with the fix; not rotated unasked.
        self.start_daemon()
        def lost():
            u = self.request({'cmd': 'status'})[-1]['users'][0]
            return u if u.get('lost') else None
        u = wait_until(lost, timeout=20, interval=0.2, message='bot-a shown lost')
        self.assertIn('--replace-lost', u['next_reason'])
        self.assertNotIn('next_due_sec', u, 'a lost user is not scheduled')
        p = self.ctl_socket('status')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r'(?m)^bot-a +lost ')
        self.assertIn("run 'keyrotctl rotate bot-a --replace-lost'", p.stdout)
        p = self.ctl_socket('rotate', 'bot-a', '--wait')
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn('lost', p.stderr)
        self.assert_targets_hold(current)

        # The fix, through the daemon: the key in service is replaced.
        p = self.rig.run([self.rig.build_path('src/keyrotctl'), '--config', self.inventory, '--state-dir',
                          self.state, '--socket', self.sock_path, 'rotate', 'bot-a', '--replace-lost'],
                         env=self.env())
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        u = self.request({'cmd': 'status'})[-1]['users'][0]
        self.assertNotIn('lost', u)
        self.stop_daemon()
        held = self.assert_invariants('bot-a')
        self.assertNotIn(held.access_key_id, (stale, current))

    @requires_test_hooks
    def test_restored_mid_rotation_record_is_not_recovered(self):
        # A snapshot taken while a rotation was between verification and
        # distribution: recovering it later would write its old current key
        # back to the targets.
        self.write_app_targets('bot-a')
        self.adopt_all()
        p = self.keyrotd('--once', '--force', env=self.env(KEYROTD_CRASH_AT='after-commit-verified'))
        self.assertEqual(p.returncode, -signal.SIGKILL, p.stderr[-500:])
        backup = self.snapshot()
        for args in (['--once'], ['--once', '--force']):
            r = self.keyrotd(*args)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        current = self.key_of('bot-a')[0]
        self.assert_targets_hold(current)
        self.restore(backup)

        self.start_daemon()
        wait_until(lambda: "bot-a: lost:" in self.stderr(), timeout=20, interval=0.2,
                   message='the daemon finds bot-a lost')
        self.assertIn('its interrupted rotation is not recovered', self.stderr())
        st = self.request({'cmd': 'status'})[-1]['users'][0]
        self.assertTrue(st.get('lost'), st)
        self.assertEqual(st['phase'], 'verified')
        self.stop_daemon()
        self.assert_targets_hold(current)

        r = self.keyrotd('--once')
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn('bot-a: FAILED: lost:', r.stdout)
        self.assertIn('--replace-lost', r.stdout)
        self.assert_targets_hold(current)
        self.assertEqual(self.key_of('bot-a'), [current])


class TestSanitised(BudgetCase):
    def test_c1_control_in_an_aws_error_code(self):
        self.adopt_all()
        proxy = self.rig.start_proxy(error500=Fault(rate=1.0, action='ListAccessKeys', status=400, code=EVIL_CODE))

        def assert_clean(text, what):
            for c in ('\u009b', '\u0085', '\x1b', '\ufffd'):
                self.assertNotIn(c, text, what)

        r = self.keyrotd('--once', '--force', endpoint=proxy.endpoint)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn('bot-a: FAILED', r.stdout)
        self.assertIn('Evil', r.stdout, 'the code is shown, without its controls')
        assert_clean(r.stdout, '--once stdout')
        assert_clean(r.stderr, '--once stderr')

        r = self.keyrotd('--once', '--dry-run', endpoint=proxy.endpoint)
        self.assertIn('Evil', r.stdout)
        assert_clean(r.stdout, '--dry-run table')

        self.start_daemon(endpoint=proxy.endpoint)
        p = self.ctl_socket('rotate', 'bot-a', '--wait')
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn('Evil', p.stdout)
        assert_clean(p.stdout + p.stderr, 'rotate --wait')
        for args in (['status'], ['status', '--json']):
            p = self.ctl_socket(*args)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn('Evil', p.stdout)
            assert_clean(p.stdout, ' '.join(args))
        self.stop_daemon()
        assert_clean(self.stderr(), 'the daemon log')
        self.assertEqual(self.key_of('bot-a'), [self.initial['bot-a'].access_key_id])


if __name__ == '__main__':
    unittest.main()

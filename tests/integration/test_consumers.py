# SPDX-License-Identifier: MIT
"""The continuity promises of docs/DESIGN.md §7 as consumers and operators
meet them: rotate-now inside a grace (keyrotctl rotate, SIGUSR1, keyrotd
--once --force), rotate-now refused while a drain is parked, a parked drain
that survives a crash of the daemon, failure counters cleared by a success,
and a rollback that consumers survive.

The real keyrotd and keyrotctl run against moto (through the fault proxy
where an Inactive key must really fail, as on AWS); outcomes are checked
with boto3, the audit records keyrotd writes, and what the commands print."""

import calendar
import json
import os
import re
import signal
import threading
import time
import unittest

from faultproxy import Fault
from rig import requires_test_hooks, wait_until
from rotation_rig import USER, BUCKET
from test_daemon import DaemonCase

_FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')


def audit_records(text):
    """The audit records of a log, each a dict of its logfmt fields (msg whole)."""
    out = []
    for line in text.splitlines():
        if not line.startswith('time=') or not line.partition(' ')[2].startswith('event='):
            continue
        fields = {}
        for k, v in _FIELD.findall(line):
            if v.startswith('"'):
                v = re.sub(r'\\(.)', r'\1', v[1:-1])
            fields.setdefault(k, v)
        out.append(fields)
    return out


def instant(s):
    """RFC 3339 UTC in whole seconds, as keyrotd writes it, to epoch seconds."""
    return calendar.timegm(time.strptime(s, '%Y-%m-%dT%H:%M:%SZ'))


def index_of(records, **match):
    """Indexes of the records whose fields have these values."""
    return [i for i, r in enumerate(records) if all(r.get(k) == v for k, v in match.items())]


class Consumer(threading.Thread):
    """An application at work: lists the bucket every 0.2 s with the key its
    credentials file holds now (or always with one fixed key), through
    @endpoint. Each call is kept as (wall-clock start, key id, worked)."""

    def __init__(self, case, creds=None, endpoint=None):
        super().__init__(daemon=True)
        self.case, self.fixed, self.endpoint = case, creds, endpoint
        self.stop = threading.Event()
        self.calls = []

    def run(self):
        while not self.stop.wait(0.2):
            try:
                c = self.fixed or self.case.target_keys()[0]
            except Exception:  # a target being replaced: read it again
                continue
            start = time.time()
            try:
                ok = self.case.rig.key_works_on_s3(c, BUCKET, endpoint=self.endpoint)
            except Exception:  # no verdict on the key (a connection reset)
                continue
            self.calls.append((start, c.access_key_id, ok))

    def refused(self):
        return [c for c in self.calls if not c[2]]

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.join(10)


class ConsumerCase(DaemonCase):
    users = (USER,)

    def write_inventory(self, defaults=None, **per_user):
        # No splay: the daemon acts when the store says, not minutes later.
        d = {'splay': '0'}
        d.update(defaults or {})
        super().write_inventory(defaults=d, **per_user)

    def keys(self, user=USER):
        return {k['id']: k['status'] for k in self.rig.list_keys(user)}

    def records(self):
        return audit_records(self.stderr())

    def ctl_args(self):
        return ['--config', self.inventory, '--state-dir', self.state]

    def status(self, user=USER):
        """The user's entry of `keyrotctl status --json`."""
        p = self.ctl_socket('status', '--json')
        self.assertEqual(p.returncode, 0, p.stderr)
        users = {u['name']: u for u in json.loads(p.stdout.splitlines()[-1])['users']}
        return users[user]

    def status_table(self, user=USER):
        """`keyrotctl status`: the user's row as {column: cell}, and the whole text."""
        p = self.ctl_socket('status')
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        head = next(l for l in lines if l.startswith('USER '))
        columns = re.split(r'\s{2,}', head.strip())
        row = next(l for l in lines if l.split(' ', 1)[0] == user)
        return dict(zip(columns, re.split(r'\s{2,}', row.strip()))), p.stdout

    def assert_targets_hold(self, key_id, user=USER):
        for c in self.target_keys(user):
            self.assertEqual(c.access_key_id, key_id, 'every target holds %s' % key_id)


class TestRotateNowInGrace(ConsumerCase):
    """Rotate now means now: inside the previous rotation's grace, its
    Inactive key is deleted first (ending its rollback window, audited),
    then a new rotation runs."""

    def rotate_into_grace(self):
        """A rotates to B; A waits Inactive in a long grace."""
        self.write_inventory(defaults={'grace': '1h'})
        self.adopt()
        self.write_app_targets()
        p = self.keyrotd('--once', '--force')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        a, b = self.initial[USER].access_key_id, self.held().access_key_id
        self.assertEqual(self.keys(), {a: 'Inactive', b: 'Active'})
        return a, b

    def assert_rotated_through_grace(self, records, a, b, trigger):
        """A is gone, its rollback window ended on the record before it went,
        and B was rotated to a new key C: every target holds C, B waits
        Inactive in its own grace. Returns C."""
        c = self.held().access_key_id
        self.assertNotIn(c, (a, b), 'a new key')
        self.assertEqual(self.keys(), {b: 'Inactive', c: 'Active'})
        self.assert_targets_hold(c)
        self.assertTrue(self.rig.key_works_on_s3(self.held(), BUCKET))
        window = [i for i in index_of(records, event='old_key_deleted', old_key_id=a)
                  if 'rollback window ends' in records[i].get('msg', '')]
        self.assertEqual(len(window), 1, 'the end of the rollback window is audited: %r' % records)
        deleted = index_of(records, event='old_key_deleted', old_key_id=a, result='ok')
        started = index_of(records, event='rotation_started', old_key_id=b, trigger=trigger)
        created = index_of(records, event='key_created', new_key_id=c)
        self.assertEqual((len(deleted), len(started), len(created)), (1, 1, 1), records)
        self.assertLess(window[0], deleted[0])
        self.assertLess(deleted[0], started[0], 'the previous old key goes first, then the new rotation')
        self.assertLess(started[0], created[0])
        return c

    def test_rotate_wait_to_the_daemon(self):
        a, b = self.rotate_into_grace()
        self.start_daemon()
        p = self.ctl_socket('rotate', USER, '--wait')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        c = self.assert_rotated_through_grace(self.records(), a, b, 'socket')
        self.assertEqual(p.stdout.splitlines(), ['%s: completed (%s -> %s)' % (USER, b, c),
                                                 '1 completed, 0 not due, 0 failed'])
        self.stop_daemon()

    def test_sigusr1_to_the_daemon(self):
        a, b = self.rotate_into_grace()
        self.start_daemon()
        self.daemon.send_signal(signal.SIGUSR1)
        # Its end: B deactivated (the rotation then waits out B's grace).
        wait_until(lambda: index_of(self.records(), event='old_key_deactivated', old_key_id=b, result='ok'),
                   timeout=60, interval=0.2, message='the rotation SIGUSR1 asked for')
        self.assert_rotated_through_grace(self.records(), a, b, 'signal')
        self.stop_daemon()

    def test_once_force(self):
        a, b = self.rotate_into_grace()
        p = self.keyrotd('--once', '--force')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        c = self.assert_rotated_through_grace(audit_records(p.stderr), a, b, 'once')
        lines = p.stdout.splitlines()
        self.assertEqual(len(lines), 1, p.stdout)
        self.assertTrue(lines[0].startswith('%s: rotated %s -> %s' % (USER, b, c)), p.stdout)


class TestOnceJustAfterGrace(ConsumerCase):
    """keyrotd --once just after a grace ended prints, per user, what it did:
    the rotation it made, or that it finished an earlier one, never a
    rotation for the deletion of the previous old key."""
    users = ('bot-a', 'bot-b')

    def rotate_and_outlive_grace(self):
        """Every user rotated A -> B with a grace of 2 s, now over."""
        self.write_inventory(defaults={'grace': '2s'})
        for u in self.users:
            self.adopt(u)
        p = self.keyrotd('--once', '--force')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        rotated = time.time()  # after every old key was deactivated
        a = {u: self.initial[u].access_key_id for u in self.users}
        b = {u: self.held(u).access_key_id for u in self.users}
        for u in self.users:
            self.assertEqual(self.keys(u), {a[u]: 'Inactive', b[u]: 'Active'})
        wait_until(lambda: time.time() > rotated + 2.2, timeout=10, interval=0.1)
        return a, b

    def test_force_names_the_rotation_it_made(self):
        a, b = self.rotate_and_outlive_grace()
        p = self.keyrotd('--once', '--force')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        lines = p.stdout.splitlines()
        self.assertEqual(len(lines), len(self.users), 'one line per user: %r' % lines)
        for u in self.users:
            c = self.held(u).access_key_id
            self.assertEqual(self.keys(u), {b[u]: 'Inactive', c: 'Active'}, 'A deleted, B in its grace')
            mine = [l for l in lines if l.startswith(u + ': ')]
            self.assertEqual(len(mine), 1, lines)
            self.assertTrue(mine[0].startswith('%s: rotated %s -> %s' % (u, b[u], c)), mine[0])
            self.assertNotIn(a[u], mine[0], 'the deleted previous old key is not named as a rotation')
        records = audit_records(p.stderr)
        self.assertFalse([r for r in records if 'rollback window' in r.get('msg', '')],
                         'the grace had ended: no rollback window was cut short')

    def test_plain_run_says_it_finished(self):
        a, b = self.rotate_and_outlive_grace()
        p = self.keyrotd('--once')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        lines = p.stdout.splitlines()
        self.assertEqual(sorted(lines), sorted('%s: finished an earlier rotation %s -> %s' % (u, a[u], b[u])
                                               for u in self.users))
        for u in self.users:
            self.assertEqual(self.keys(u), {b[u]: 'Active'})
        self.assertNotIn('rotation_started', [r['event'] for r in audit_records(p.stderr)])


class TestRotateNowWhileDraining(ConsumerCase):
    """While the previous rotation's drain is parked (its old key Active and
    maybe in use), rotate-now refuses with that reason and changes nothing."""

    def park_a_drain(self):
        self.write_inventory(**{USER: {'drain': {'settle': '10m'}}})
        self.adopt()
        self.write_app_targets()
        p = self.keyrotd('--once', '--force')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn('the old key stays Active while consumers use it', p.stdout)
        a, b = self.initial[USER].access_key_id, self.held().access_key_id
        self.assertEqual(self.keys(), {a: 'Active', b: 'Active'})
        return a, b

    def assert_refused_and_untouched(self, a, b):
        records = self.records()
        failed = index_of(records, event='rotation_failed')
        self.assertEqual(len(failed), 1, records)
        self.assertEqual(records[failed[0]].get('error'), 'Draining', records[failed[0]])
        for event in ('rotation_started', 'key_created', 'old_key_deactivated', 'old_key_deleted'):
            self.assertFalse(index_of(records, event=event), '%s after a refusal: %r' % (event, records))
        self.assertEqual(self.keys(), {a: 'Active', b: 'Active'}, 'nothing deactivated, nothing created')
        self.assertEqual(self.held().access_key_id, b)
        self.assert_targets_hold(b)
        u = self.status()
        self.assertEqual((u['phase'], u['next_action']), ('notified', 'drain'), u)
        # A refusal, not a failure: no count, no backoff, no last error.
        self.assertEqual(u['failures'], 0, u)
        self.assertNotIn('last_error', u)

    def test_rotate_wait_is_refused(self):
        a, b = self.park_a_drain()
        self.start_daemon()
        p = self.ctl_socket('rotate', USER, '--wait')
        # keyrotctl(1): status 1 when a rotation --wait waited for failed.
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r'(?m)^%s: failed: the previous rotation still drains: its old key %s stays '
                                   r'Active' % (USER, a))
        self.assertIn('0 completed, 0 not due, 1 failed', p.stdout)
        self.assert_refused_and_untouched(a, b)
        self.stop_daemon()

    def test_sigusr1_is_refused(self):
        a, b = self.park_a_drain()
        self.start_daemon()
        self.daemon.send_signal(signal.SIGUSR1)
        wait_until(lambda: index_of(self.records(), event='rotation_failed'), timeout=60, interval=0.2,
                   message='the end of the rotation SIGUSR1 asked for')
        self.assert_refused_and_untouched(a, b)
        self.stop_daemon()


    @requires_test_hooks
    def test_once_force_that_finishes_into_a_drain_says_it_did_not_rotate(self):
        """An earlier rotation interrupted after its distribution: --once
        --force finishes it, its drain parks, and the rotation asked for
        cannot start. It says so and exits 1; no new key is made."""
        self.write_inventory(**{USER: {'drain': {'settle': '10m'}}})
        self.adopt()
        self.write_app_targets()
        p = self.keyrotd('--once', '--force', env=self.env(KEYROTD_CRASH_AT='after-commit-distributed'))
        self.assertEqual(p.returncode, -signal.SIGKILL, p.stdout + p.stderr)
        a, b = self.initial[USER].access_key_id, self.held().access_key_id
        self.assertNotEqual(a, b)
        p = self.keyrotd('--once', '--force')
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn('the previous rotation now drains: its old key %s stays Active' % a, p.stdout)
        self.assertNotIn('rotated', p.stdout)
        records = audit_records(p.stderr)
        refused = index_of(records, event='rotation_failed', result='refused', error='Draining')
        self.assertEqual(len(refused), 1, records)
        self.assertFalse(index_of(records, event='key_created'), records)
        self.assertEqual(self.keys(), {a: 'Active', b: 'Active'})


class TestParkedDrainSurvivesACrash(ConsumerCase):
    """kill -9 of the daemon while a drain is parked: the next daemon shows
    the user still draining, both keys Active, the targets on the new key,
    and finishes the rotation when it may. The application, which follows
    its credentials file, never meets a refused key."""

    def park_then_crash(self, settle):
        self.write_inventory(defaults={'grace': '2s'}, **{USER: {'drain': {'settle': settle}}})
        self.adopt()
        self.write_app_targets()
        # The application reaches S3 through a proxy that refuses Inactive
        # keys, as AWS does (moto would not).
        consumer = Consumer(self, endpoint=self.rig.start_proxy(refuse_inactive=True).endpoint)
        consumer.start()
        self.addCleanup(consumer.__exit__)
        self.start_daemon()
        p = self.ctl_socket('rotate', USER, '--wait')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn('the old key stays Active while consumers use it', p.stdout)
        a, b = self.initial[USER].access_key_id, self.held().access_key_id
        self.daemon.kill()
        self.daemon.wait(timeout=30)
        self.start_daemon()
        u = self.status()
        self.assertEqual(u['phase'], 'notified', u)
        self.assertEqual(u['next_action'], 'drain', u)
        self.assertIn('the old key waits for its consumers to leave it', u['next_reason'])
        self.assertFalse(u['in_flight'], u)
        self.assertEqual(u['current_key_id'], b)
        row, _ = self.status_table()
        self.assertEqual((row['PHASE'], row['ACTION']), ('notified', 'drain'), row)
        self.assertEqual(self.keys(), {a: 'Active', b: 'Active'})
        self.assert_targets_hold(b)
        return a, b, consumer

    def assert_finished(self, a, b, consumer):
        for what, done in (('deactivated', lambda: self.keys().get(a) != 'Active'),
                           ('deleted after grace', lambda: a not in self.keys())):
            try:
                wait_until(done, timeout=30, interval=0.3)
            except AssertionError:
                self.fail('the old key %s was not %s; keyrotctl status: %r' % (a, what, self.status()))
        self.assert_invariants()
        self.assertEqual(self.held().access_key_id, b)
        records = self.records()
        deactivated = index_of(records, event='old_key_deactivated', old_key_id=a, result='ok')
        deleted = index_of(records, event='old_key_deleted', old_key_id=a, result='ok')
        self.assertEqual((len(deactivated), len(deleted)), (1, 1), records)
        self.assertLess(deactivated[0], deleted[0])
        consumer.__exit__()
        self.assertEqual(consumer.refused(), [], 'the application never met a refused key')
        self.assertTrue(any(k == b for _, k, _ in consumer.calls), 'the application moved to the new key')
        self.stop_daemon()

    def test_drain_turned_off_and_reloaded_finishes(self):
        a, b, consumer = self.park_then_crash('10m')
        self.write_inventory(defaults={'grace': '2s'})  # drain: false
        p = self.ctl_socket('reload')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assert_finished(a, b, consumer)

    def test_resumes_and_finishes_once_consumers_left(self):
        # A settle just over what keyrotd waits for inline (a minute), so
        # the drain is parked, then looks at the old key a few seconds after
        # the restart: the consumer left it at the distribution.
        a, b, consumer = self.park_then_crash('65s')
        wait_until(lambda: index_of(self.records(), event='drain', result='ok'), timeout=120, interval=1,
                   message='the drain resumed by the restarted daemon')
        self.assert_finished(a, b, consumer)
        ok = [r for r in self.records() if r['event'] == 'drain' and r.get('result') == 'ok']
        self.assertIn('consumers have left the old key', ok[0].get('msg', ''))


class TestSuccessClearsFailures(ConsumerCase):
    def test_counters_after_a_success(self):
        proxy = self.rig.start_proxy(error500=Fault(rate=1.0, action='CreateAccessKey', status=409,
                                                    code='LimitExceeded'))
        self.write_inventory(defaults={'grace': '1h'})
        self.adopt()
        a = self.initial[USER].access_key_id
        self.start_daemon(endpoint=proxy.endpoint)
        for n in (1, 2):
            p = self.ctl_socket('rotate', USER, '--wait')
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            u = self.status()
            self.assertEqual((u['failures'], u['last_result']), (n, 'failed'), u)
            self.assertIn('LimitExceeded', u.get('last_error', ''))
        row, text = self.status_table()
        self.assertEqual((row['LAST'], row['FAILURES']), ('failed', '2'), text)
        self.assertRegex(text, r'(?m)^  last error: .*LimitExceeded')
        self.assertEqual(self.keys(), {a: 'Active'})

        proxy.configure(error500=None)
        p = self.ctl_socket('rotate', USER, '--wait')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        b = self.held().access_key_id
        self.assertEqual(self.keys(), {a: 'Inactive', b: 'Active'}, 'the old key waits in its grace')
        u = self.status()
        self.assertEqual((u['phase'], u['next_action']), ('deactivated', 'wait'), u)
        self.assertEqual((u['failures'], u['last_result']), (0, 'rotated'), u)
        self.assertNotIn('last_error', u)
        row, text = self.status_table()
        self.assertEqual((row['LAST'], row['FAILURES']), ('rotated', '0'), text)
        self.assertNotIn('last error', text)
        self.stop_daemon()


class TestRollback(ConsumerCase):
    """Rollback (docs/DESIGN.md §7): the old key Active again and in every
    target, on_rotate run, then the rolled-back key retired like an old
    key: deactivated when drain and the Expiration it was handed out with
    allow, deleted after grace. A client that had moved to it keeps working
    until it is deactivated; the fault proxy refuses Inactive keys, as AWS."""

    def setUp(self):
        super().setUp()
        self.proxy = self.rig.start_proxy(refuse_inactive=True)
        self.marker = os.path.join(self.rig.tmp, 'on_rotate.log')
        self.release = os.path.join(self.rig.tmp, 'release')

    def hook(self):
        """on_rotate: note what it is told; in a rollback, wait (20 s at most)
        until the test lets it go."""
        return ['/bin/sh', '-c',
                'echo "$KEYROTD_RESULT $KEYROTD_OLD_KEY_ID $KEYROTD_NEW_KEY_ID" >> %s; '
                '[ "$KEYROTD_RESULT" = rolled-back ] || exit 0; i=0; '
                'while [ ! -e %s ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done' % (self.marker, self.release)]

    def marker_lines(self):
        if not os.path.exists(self.marker):
            return []
        with open(self.marker) as f:
            return [l.split() for l in f.read().splitlines()]

    def rotate(self, defaults, **user):
        self.write_inventory(defaults=defaults, **{USER: user})
        self.adopt()
        self.write_app_targets()
        self.start_daemon(endpoint=self.proxy.endpoint)
        p = self.ctl_socket('rotate', USER, '--wait')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        a, b = self.initial[USER].access_key_id, self.held().access_key_id
        self.assertEqual(self.keys(), {a: 'Inactive', b: 'Active'})
        self.assert_targets_hold(b)
        return a, b

    def test_rollback_restores_the_old_key_and_retires_the_new_one(self):
        a, b = self.rotate({'grace': '1h'}, on_rotate=self.hook())
        held_b = self.held()
        # The rolled-back key is deleted after a grace short enough to watch.
        self.write_inventory(defaults={'grace': '3s'}, **{USER: {'on_rotate': self.hook()}})
        self.assertEqual(self.ctl_socket('reload').returncode, 0)
        with Consumer(self, creds=held_b, endpoint=self.proxy.endpoint) as moved:
            rollback = self.rig.spawn([self.rig.build_path('src/keyrotctl'), '--socket', self.sock_path]
                                      + self.ctl_args() + ['rollback', USER], env=self.env(), name='rollback')
            wait_until(lambda: ['rolled-back', b, a] in self.marker_lines(), timeout=60, interval=0.1,
                       message='on_rotate run by the rollback')
            hooked = time.time()
            # on_rotate runs with the old key back: Active, held, in every target.
            self.assertEqual(self.keys(), {a: 'Active', b: 'Active'})
            self.assertEqual(self.held().access_key_id, a)
            self.assert_targets_hold(a)
            # The client on the rolled-back key still works meanwhile.
            self.assertTrue(self.rig.key_works_on_s3(held_b, BUCKET, endpoint=self.proxy.endpoint))
            wait_until(lambda: any(t > hooked and ok for t, _, ok in moved.calls), timeout=20,
                       message='the moved client at work during on_rotate')
            released = time.time()
            open(self.release, 'w').close()
            self.assertEqual(rollback.wait(timeout=60), 0)
        with open(rollback.out_path) as f:
            out = f.read()
        # Drain off and nothing handed out: deactivated in the same run, in grace.
        self.assertEqual(self.keys(), {a: 'Active', b: 'Inactive'})
        self.assertFalse(self.rig.key_works_on_s3(held_b, BUCKET, endpoint=self.proxy.endpoint),
                         'the rolled-back key is refused once Inactive')
        self.assertTrue(out.startswith('rolled back %s: %s is current again' % (USER, a)), out)
        self.assertNotIn('%s deleted' % b, out, '%s is still in IAM (Inactive, in its grace)' % b)
        self.assertEqual([c for c in moved.refused() if c[0] < released], [],
                         'the moved client worked until the rolled-back key was deactivated')
        u = self.status()
        self.assertEqual((u['current_key_id'], u['last_result'], u['failures']), (a, 'rolled back', 0), u)

        wait_until(lambda: b not in self.keys(), timeout=30, interval=0.3,
                   message='the rolled-back key deleted after grace')
        self.assertEqual(self.keys(), {a: 'Active'})
        self.assertEqual(self.held().access_key_id, a)
        self.assert_targets_hold(a)
        records = self.records()
        back = index_of(records, event='rollback', result='ok')
        hook = index_of(records, event='hook_run', result='ok')
        deactivated = index_of(records, event='old_key_deactivated', old_key_id=b, result='ok')
        deleted = index_of(records, event='old_key_deleted', old_key_id=b, result='ok')
        self.assertTrue(back and deactivated and deleted, records)
        self.assertTrue([i for i in hook if back[0] < i < deactivated[0]], 'on_rotate between: %r' % records)
        self.assertLess(deactivated[0], deleted[0])
        self.stop_daemon()

    def test_rolled_back_key_outlives_the_expiration_it_was_handed_out_with(self):
        a, b = self.rotate({'grace': '1h', 'credentials_ttl': '6s'})
        p = self.ctl_socket('get', USER, '--format', 'json', *self.ctl_args())
        self.assertEqual(p.returncode, 0, p.stderr)
        got = json.loads(p.stdout)
        self.assertEqual(got['AccessKeyId'], b)
        until = instant(got['Expiration'])
        held_b = self.held()
        with Consumer(self, creds=held_b, endpoint=self.proxy.endpoint) as sdk:
            start = time.time()
            p = self.ctl_socket('rollback', USER, *self.ctl_args())
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertGreaterEqual(time.time(), until, 'the rollback retired the key only after its Expiration')
        self.assertTrue(p.stdout.startswith('rolled back %s: %s is current again' % (USER, a)), p.stdout)
        self.assertEqual(self.keys(), {a: 'Active', b: 'Inactive'})
        self.assert_targets_hold(a)
        deactivated = [r for r in self.records() if r['event'] == 'old_key_deactivated'
                       and r.get('old_key_id') == b and r.get('result') == 'ok']
        self.assertEqual(len(deactivated), 1)
        self.assertGreaterEqual(instant(deactivated[0]['time']), until)
        before = [c for c in sdk.calls if start <= c[0] < until - 0.5]
        self.assertTrue(before, 'the client was at work during the rollback')
        self.assertTrue(all(ok for _, _, ok in before), 'it worked until its Expiration: %r' % before)
        self.stop_daemon()


if __name__ == '__main__':
    unittest.main()

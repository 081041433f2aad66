# SPDX-License-Identifier: MIT
"""Faults never orphan a key: an answer lost after IAM acted is an unknown
outcome, resolved by listing the user's keys; calls that did nothing are
retried; the transport never sends a create twice on its own.

moto sits behind the fault proxy, which speaks HTTP/1.1 keep-alive to
keyrotd as AWS does, so libcurl reuses connections, and can reset a
connection after moto carried a request out (the answer is lost)."""

import json
import unittest

from faultproxy import Next, Rate
from rotation_rig import BUCKET, USER, RotationCase


class TestLostAnswers(RotationCase):
    def keys(self, user=USER):
        return [(k['id'], k['status']) for k in self.rig.list_keys(user)]

    def assert_no_orphan(self, user=USER):
        """Every key of the user is one keyrotd holds (current, or the old
        one in its grace)."""
        held = self.held(user).access_key_id
        for key_id, status in self.keys(user):
            if key_id != held:
                self.assertEqual(status, 'Inactive', 'an Active key keyrotd does not hold: %s' % key_id)

    def test_create_answer_lost_on_a_reused_connection(self):
        """libcurl resends a request when a reused keep-alive connection
        dies before any answer byte; for CreateAccessKey that made a second
        key (or LimitExceeded) and left the first one orphaned."""
        proxy = self.rig.start_proxy(reset=Next(1, action='CreateAccessKey', phase='after'))
        self.adopt()
        old = self.initial[USER].access_key_id
        p = self.keyrotd('--once', '--force', endpoint=proxy.endpoint)
        self.assertGreater(proxy.stats()['connections'], 0)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assert_no_orphan()
        new = self.assert_invariants()
        self.assertNotEqual(new.access_key_id, old, 'the rotation went through after the lost answer')
        events = self.audit_events(p.stderr)
        self.assertIn('new_key_deleted', [e['event'] for e in events], 'the orphan was deleted, audited')

    def test_create_answer_lost_by_a_timeout_or_5xx(self):
        for fault in ({'error500': Next(1, action='CreateAccessKey', phase='after')},
                      {'error503': Next(1, action='CreateAccessKey', phase='after')}):
            with self.subTest(fault=list(fault)):
                proxy = self.rig.start_proxy(**fault)
                if not hasattr(self, '_adopted'):
                    self.adopt()
                    self._adopted = True
                before = self.held().access_key_id
                p = self.keyrotd('--once', '--force', endpoint=proxy.endpoint)
                self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
                self.assert_no_orphan()
                self.assertNotEqual(self.assert_invariants().access_key_id, before)

    def test_limit_exceeded_after_a_lost_create_is_resolved(self):
        """The create went through, its answer was lost, and the retry is
        refused with LimitExceeded: that contradicts the intent, so the keys
        are listed, the orphan deleted and the create tried again."""
        proxy = self.rig.start_proxy(reset=Next(1, action='CreateAccessKey', phase='after'))
        self.adopt()
        p = self.keyrotd('--once', '--force', endpoint=proxy.endpoint)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertLessEqual(proxy.count(action='CreateAccessKey', forwarded=True), 2)
        self.assert_no_orphan()

    def test_throttled_create_is_retried(self):
        proxy = self.rig.start_proxy(throttle=Next(2, action='CreateAccessKey'))
        self.adopt()
        p = self.keyrotd('--once', '--force', endpoint=proxy.endpoint)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(proxy.count(action='CreateAccessKey'), 3, 'two throttled, then created')
        self.assertEqual(proxy.count(action='CreateAccessKey', forwarded=True), 1, 'moto saw one create')
        self.assert_invariants()

    def test_failed_step_audits_its_own_error_code(self):
        """KEYROTD_ERROR is the code of this failure, not a leftover."""
        proxy = self.rig.start_proxy(propagation=1.0, propagation_always=1.0)
        self.write_inventory(defaults={'grace': '0', 'verify': {'timeout': '30s', 'consecutive': 1, 'interval': '0'}})
        self.adopt()
        # Verification meets InvalidAccessKeyId first; then deleting the old
        # key is throttled until the attempts run out.
        proxy.configure(throttle=Rate(1.0, action='DeleteAccessKey'))
        p = self.keyrotd('--once', '--force', endpoint=proxy.endpoint)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        failed = [e for e in self.audit_events(p.stderr) if e['event'] == 'rotation_failed']
        self.assertEqual(len(failed), 1, p.stderr)
        self.assertEqual(failed[0].get('error'), 'Throttling', failed[0])


if __name__ == '__main__':
    unittest.main()


#: The storm: a quarter of IAM requests throttled, 5 % failing with 500,
#: 503 or SlowDown, 2 % of connections reset (half of them after moto
#: carried the request out), and new keys refused for their first seconds.
def storm(admin_key_id, seed):
    from faultproxy import Fault
    return dict(
        seed=seed,
        throttle=Rate(0.25, service='iam'),
        error500=Rate(0.02, service='iam'),
        error503=[Fault(rate=0.02, service='iam'), Fault(rate=0.01, service='s3', code='SlowDown')],
        reset=[Fault(rate=0.01), Fault(rate=0.01, phase='after')],
        propagation=3.0, propagation_p=0.5, propagation_always=1.0,
        refuse_inactive=True,
    )


#: KEYROTD_ERROR values a failed rotation may carry besides AWS's codes.
LOCAL_CODES = {'Timeout', 'ConnectionFailed', 'MalformedResponse', 'StoreCommit', 'TargetWrite', 'HookFailed',
               'OutOfMemory', 'Internal', 'OverPrivileged'}


def storm_users():
    return tuple('storm-%02d' % i for i in range(20))


from test_daemon import DaemonCase  # noqa: E402 (after the helpers it does not need)


class TestStorm(DaemonCase):
    users = storm_users()

    def assert_failures_coded(self, stderr):
        for e in self.audit_events(stderr):
            if e['event'] != 'rotation_failed':
                continue
            self.assertTrue(e.get('error'), 'a failed rotation without KEYROTD_ERROR: %r' % e)

    def rotated(self):
        return [u for u in self.users if self.held(u).access_key_id != self.initial[u].access_key_id]

    def assert_no_orphan_after(self, before):
        """What a storm may leave is a rotation stopped half-way (its old key
        not yet deactivated or deleted after every attempt of that call
        failed), which the next run resumes: every key a user has is the one
        keyrotd holds now or the one it held before; the held key works and
        is in every target; nothing else, ever."""
        for u in self.users:
            held = self.held(u)
            keys = {k['id']: k['status'] for k in self.rig.list_keys(u)}
            self.assertEqual(keys.get(held.access_key_id), 'Active', '%s: the held key is Active' % u)
            self.assertTrue(self.rig.key_works_on_s3(held, BUCKET), '%s: the held key works' % u)
            self.assertLessEqual(set(keys), {held.access_key_id, before[u]}, '%s: a key nobody holds: %r' % (u, keys))
            try:
                targets = self.target_keys(u)
            except FileNotFoundError:
                targets = []  # never distributed yet: keyrotd wrote nothing for this user
            for c in targets:
                self.assertIn(c.access_key_id, (held.access_key_id, before[u]), '%s: a target holds a held key' % u)
                self.assertTrue(self.rig.key_works_on_s3(c, BUCKET), '%s: a target holds a working key' % u)

    def test_storm_once_twice_then_the_daemon(self):
        self.adopt_all()
        proxy = self.rig.start_proxy(**storm(self.rig.admin.access_key_id, seed=5))
        before = {u: self.initial[u].access_key_id for u in self.users}
        p = self.keyrotd('--once', '--force', endpoint=proxy.endpoint, timeout=600)
        self.assert_failures_coded(p.stderr)
        first = self.rotated()
        self.assertGreaterEqual(len(first), 19, 'at least 95 %% rotated in the first pass:\n%s' % p.stdout)
        self.assert_no_orphan_after(before)

        failed = [u for u in self.users if u not in first]
        before = {u: self.held(u).access_key_id for u in self.users}
        p = self.keyrotd('--once', '--force', endpoint=proxy.endpoint, timeout=600)
        self.assert_failures_coded(p.stderr)
        self.assertEqual([u for u in self.users if self.held(u).access_key_id == self.initial[u].access_key_id],
                         [], 'every user rotated after the second pass (first pass failed: %s)' % failed)
        self.assert_no_orphan_after(before)

        held = {u: self.held(u).access_key_id for u in self.users}
        self.start_daemon(endpoint=proxy.endpoint)
        p = self.ctl_socket('rotate', '--all', '--wait')
        self.stop_daemon()
        self.assert_failures_coded(self.stderr())
        self.assert_no_orphan_after(held)

        # Without the storm, one more run leaves every user on exactly one key.
        proxy.configure(throttle=0, error500=0, error503=0, reset=0, propagation=0)
        p = self.keyrotd('--once', endpoint=proxy.endpoint, timeout=600)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        for u in self.users:
            self.assert_invariants(u)
        moved = [u for u in self.users if self.held(u).access_key_id != held[u]]
        self.assertGreaterEqual(len(moved), 19, 'the daemon rotated at least 95 %%:\n%s' % p.stdout)
        self.assertEqual(proxy.stats()['errors'], [])

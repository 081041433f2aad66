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

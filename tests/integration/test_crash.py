# SPDX-License-Identifier: MIT
"""A crash at any instant is harmless (docs/DESIGN.md §1).

keyrotd is killed (SIGKILL, from inside at named points compiled into test
builds, and from outside at random instants); the next run recovers; then
the user must have exactly one Active key, which keyrotd holds, which works
on S3 and which every target holds, and no key keyrotd created may be left
in IAM unheld."""

import os
import random
import signal
import time
import unittest

from rig import Creds, requires_test_hooks, wait_until, stop_process
from rotation_rig import RotationCase, USER, BUCKET

# Every crash point of one successful rotation, in order (src/rotation/rotation.c).
POINTS = [
    'before-commit-creating', 'after-commit-creating', 'after-create',
    'before-commit-pending', 'after-commit-pending',
    'before-commit-verified', 'after-commit-verified',
    'before-target-0', 'before-target-1', 'before-target-2',
    'before-commit-distributed', 'after-commit-distributed',
    'before-commit-notified', 'after-commit-notified',
    'before-deactivate', 'after-deactivate',
    'before-commit-deactivated', 'after-commit-deactivated',
    'before-delete-old', 'after-delete-old',
    'before-commit-idle', 'after-commit-idle',
]


class CrashCase(RotationCase):
    def seed_targets(self):
        """The application already has its first key in every target."""
        self.adopt()
        for user in self.users:
            self.write_app_targets(user)

    def adopt(self, user=None):
        for u in ([user] if user else self.users):
            super().adopt(u)

    def assert_all_invariants(self):
        for u in self.users:
            self.assert_invariants(u)
            held = {self.held(u).access_key_id}
            in_iam = {k['id'] for k in self.rig.list_keys(u)}
            self.assertLessEqual(in_iam, held, 'no key in IAM that keyrotd does not hold (%s)' % u)


@requires_test_hooks
class TestCrashAtEveryPoint(CrashCase):
    def test_crash_points(self):
        self.write_inventory(**{USER: {'on_rotate': ['/bin/true']}})
        self.seed_targets()
        for i, point in enumerate(POINTS):
            with self.subTest(point=point):
                before = self.held().access_key_id
                p = self.keyrotd('--once', '--force', env=self.env(KEYROTD_CRASH_AT=point))
                self.assertEqual(p.returncode, -signal.SIGKILL,
                                 'keyrotd must die at %s: rc=%s %s' % (point, p.returncode, p.stderr[-500:]))
                self.assertIn('crash_point: dying at %s' % point, p.stderr)
                # Recovery: a plain run finishes or undoes what was interrupted.
                r = self.keyrotd('--once')
                self.assertEqual(r.returncode, 0, '%s: recovery failed: %s %s' % (point, r.stdout, r.stderr))
                self.assert_all_invariants()
                after = self.held().access_key_id
                # Up to the seal the rotation is undone; from distribution on it is finished.
                if POINTS.index(point) >= POINTS.index('after-commit-distributed'):
                    self.assertNotEqual(before, after, '%s: the distributed key stays' % point)
                # And the next forced rotation works from the recovered state.
                r = self.keyrotd('--once', '--force')
                self.assertEqual(r.returncode, 0, '%s: rotation after recovery failed: %s' % (point, r.stdout))
                self.assert_all_invariants()


@requires_test_hooks
class TestOutOfBandChanges(CrashCase):
    def test_new_key_deleted_after_distribution_rolls_back(self):
        self.seed_targets()
        old = self.initial[USER]
        p = self.keyrotd('--once', '--force', env=self.env(KEYROTD_CRASH_AT='after-commit-distributed'))
        self.assertEqual(p.returncode, -signal.SIGKILL)
        new = [k['id'] for k in self.rig.list_keys(USER) if k['id'] != old.access_key_id][0]
        self.rig.iam().delete_access_key(UserName=USER, AccessKeyId=new)
        r = self.keyrotd('--once')
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn('rolling back', r.stderr)
        self.assertEqual(self.held().access_key_id, old.access_key_id, 'the old key is current again')
        self.assert_all_invariants()

    def test_unknown_key_without_recorded_intent_is_never_touched(self):
        self.seed_targets()
        # Killed before the intent to create was committed: the store is idle.
        p = self.keyrotd('--once', '--force', env=self.env(KEYROTD_CRASH_AT='before-commit-creating'))
        self.assertEqual(p.returncode, -signal.SIGKILL)
        extra = self.rig.iam().create_access_key(UserName=USER)['AccessKey']['AccessKeyId']
        r = self.keyrotd('--once')
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(extra, [k['id'] for k in self.rig.list_keys(USER)], 'an Active key we do not hold stays')
        r = self.keyrotd('--once', '--force')
        self.assertEqual(r.returncode, 1, 'and a rotation refuses to run beside it')
        self.assertIn(extra, r.stdout)


    def test_someone_elses_key_in_the_create_window_is_never_deleted(self):
        self.seed_targets()
        # The intent to create is committed, then keyrotd dies before
        # calling CreateAccessKey; meanwhile someone else creates a key and
        # uses it. It is dated inside the window, but a key whose secret
        # keyrotd never saw cannot have been used: not keyrotd's.
        p = self.keyrotd('--once', '--force', env=self.env(KEYROTD_CRASH_AT='after-commit-creating'))
        self.assertEqual(p.returncode, -signal.SIGKILL)
        k = self.rig.iam().create_access_key(UserName=USER)['AccessKey']
        theirs = Creds(k['AccessKeyId'], k['SecretAccessKey'])
        self.assertTrue(self.rig.key_works_on_s3(theirs, BUCKET))
        r = self.keyrotd('--once')
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn('has been used', r.stdout)
        keys = {k['id']: k['status'] for k in self.rig.list_keys(USER)}
        self.assertEqual(keys.get(theirs.access_key_id), 'Active', 'their key stays, Active')
        self.assertTrue(self.rig.key_works_on_s3(self.held(), BUCKET), 'ours still works')
        # Once they remove it, recovery completes and rotation works again.
        self.rig.iam().delete_access_key(UserName=USER, AccessKeyId=theirs.access_key_id)
        r = self.keyrotd('--once', '--force')
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assert_all_invariants()


class TestRandomKills(CrashCase):
    users = ('bot-a', 'bot-b', 'bot-c', 'bot-d', 'bot-e')

    def test_random_sigkill_during_forced_rotations(self):
        self.seed_targets()
        rng = random.Random(20261128)
        # How long one undisturbed forced run takes here: kills land inside it.
        t0 = time.monotonic()
        self.assertEqual(self.keyrotd('--once', '--force').returncode, 0)
        span = time.monotonic() - t0
        kills = 0
        for i in range(120):
            if kills >= 32:
                break
            started = time.monotonic()
            p = self.rig.spawn([self.rig.build_path('src/keyrotd'), '--config', self.inventory,
                                '--state-dir', self.state, '--once', '--force'], env=self.env(), name='keyrotd')
            time.sleep(rng.uniform(0.0, span))  # the random instant of the kill, not a wait for an outcome
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                kills += 1
            else:
                # It finished first: runs go faster now than the measured
                # one (the machine's load changed), so aim inside this one.
                span = min(span, time.monotonic() - started)
            p.wait(timeout=30)
            r = self.keyrotd('--once')
            self.assertEqual(r.returncode, 0, 'iteration %d: recovery failed: %s %s' % (i, r.stdout, r.stderr))
            self.assert_all_invariants()
        self.assertGreaterEqual(kills, 30, 'most runs were killed mid-flight')


if __name__ == '__main__':
    unittest.main()

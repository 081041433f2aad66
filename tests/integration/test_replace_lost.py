# SPDX-License-Identifier: MIT
"""keyrotctl rotate USER --replace-lost (keys whose secret was lost).

The store no longer holds the secret of a user's Active key (a lost store,
or a key never adopted). keyrotd creates a new key, verifies it, writes it
to every target, and only then deactivates and deletes the lost one; a
failure on the way leaves the application's key (the lost one) untouched.
Outcomes are checked with boto3 against moto with authentication on."""

import json
import os
import signal
import unittest

from rig import Creds, requires_test_hooks, wait_until
from rotation_rig import RotationCase, USER, BUCKET
from test_daemon import DaemonCase


class ReplaceLostCase(RotationCase):
    def setUp(self):
        super().setUp()
        # The application runs with its first key; keyrotd holds nothing.
        self.write_app_targets()
        self.lost = self.initial[USER]

    def key_ids(self, user=USER):
        return sorted((k['id'], k['status']) for k in self.rig.list_keys(user))

    def replace_lost(self, *extra, **kw):
        return self.ctl('rotate', USER, '--replace-lost', *extra, **kw)


class TestReplaceLost(ReplaceLostCase):
    def test_lost_store_is_replaced(self):
        p = self.replace_lost()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn('%s replaced by' % self.lost.access_key_id, p.stdout)
        held = self.assert_invariants()
        self.assertNotEqual(held.access_key_id, self.lost.access_key_id)
        # grace 0: the lost key is gone once the new one is in service.
        self.assertEqual([k[0] for k in self.key_ids()], [held.access_key_id])
        self.assertFalse(self.rig.key_works_on_s3(self.lost, BUCKET))
        events = [e['event'] for e in self.audit_events(p.stderr)]
        self.assertLess(events.index('key_verified'), events.index('targets_written'))
        self.assertLess(events.index('targets_written'), events.index('old_key_deactivated'))
        self.assertIn('replacing a key whose secret keyrotd does not hold', p.stderr)
        # From here on it is an ordinary user: a plain rotation works.
        r = self.keyrotd('--once', '--force')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotEqual(self.assert_invariants().access_key_id, held.access_key_id)

    def test_deleted_store_plain_rotation_says_what_to_do(self):
        self.adopt()
        os.unlink(os.path.join(self.state, 'store.sealed'))
        before = self.key_ids()
        p = self.keyrotd('--once', '--force')
        self.assertEqual(p.returncode, 1)
        self.assertIn('--replace-lost', p.stderr)
        self.assertEqual(self.key_ids(), before, 'a plain rotation touches nothing')
        p = self.replace_lost()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assert_invariants()

    def test_no_key_at_all_gets_its_first(self):
        self.rig.iam().delete_access_key(UserName=USER, AccessKeyId=self.lost.access_key_id)
        p = self.replace_lost()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn('no key replaced by', p.stdout)
        self.assert_invariants()

    def test_nothing_lost_is_refused(self):
        self.adopt()
        before = self.key_ids()
        p = self.replace_lost()
        self.assertEqual(p.returncode, 1)
        self.assertIn('nothing is lost', p.stderr)
        self.assertEqual(self.key_ids(), before)
        self.assertEqual(self.held().access_key_id, self.lost.access_key_id)

    def test_two_unheld_active_keys_are_refused(self):
        second = self.rig.iam().create_access_key(UserName=USER)['AccessKey']['AccessKeyId']
        before = self.key_ids()
        p = self.replace_lost()
        self.assertEqual(p.returncode, 1)
        self.assertIn('2 Active keys keyrotd holds no secret for', p.stderr)
        self.assertEqual(self.key_ids(), before, 'neither key touched, none created')
        self.assertIn(second, [k[0] for k in before])

    def test_usage_errors(self):
        for args in (['rotate', '--replace-lost'], ['rotate', '--all', '--replace-lost'],
                     ['rotate', USER, 'other', '--replace-lost'], ['status', '--replace-lost']):
            p = self.ctl(*args)
            self.assertEqual(p.returncode, 2, '%r: %s' % (args, p.stderr))
        self.assertEqual(self.key_ids(), [(self.lost.access_key_id, 'Active')])

    def test_failed_verification_leaves_the_lost_key_alone(self):
        # other-bucket is outside the user's policy: AccessDenied, fast.
        self.write_inventory(**{USER: {'verify': {'bucket': 'other-bucket'}}})
        p = self.replace_lost()
        self.assertEqual(p.returncode, 1)
        self.assertIn('AccessDenied', p.stderr)
        self.assertEqual(self.key_ids(), [(self.lost.access_key_id, 'Active')], 'new key deleted, lost one kept')
        for c in self.target_keys():
            self.assertEqual(c, self.lost, 'targets untouched')

    def test_grace_keeps_the_lost_key_inactive_and_refuses_rollback(self):
        self.write_inventory(defaults={'grace': '1h'})
        p = self.replace_lost()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn('Inactive until its grace ends', p.stdout)
        held = self.assert_invariants(in_grace_ok=True)
        self.assertIn((self.lost.access_key_id, 'Inactive'), self.key_ids())
        r = self.ctl('rollback', USER)
        self.assertEqual(r.returncode, 1)
        self.assertIn('never held the secret', r.stderr)
        self.assertEqual(self.held(), held, 'the new key stays current')
        self.assertIn((self.lost.access_key_id, 'Inactive'), self.key_ids())

    def test_target_failure_keeps_the_verified_key_and_resumes(self):
        # The second target's directory is missing: every target is judged
        # before the first is written, so none is, and distribution stops.
        t = self.targets_for(USER)
        broken_dir = os.path.join(self.appdir, 'missing')
        t1 = os.path.join(broken_dir, 'app.env')
        self.write_inventory(**{USER: {'targets': [t[0], {'type': 'env-file', 'path': t1}]}})
        p = self.replace_lost()
        self.assertEqual(p.returncode, 1)
        self.assertIn('distribution resumes', p.stderr)
        keys = self.key_ids()
        self.assertEqual(len(keys), 2, keys)
        self.assertTrue(all(s == 'Active' for _, s in keys), 'both keys stay Active: %r' % keys)
        self.assertTrue(self.rig.key_works_on_s3(self.lost, BUCKET), 'the lost key still works')
        self.assertEqual(self.target_keys()[0].access_key_id, self.lost.access_key_id, 'no target was written')
        new = [k for k, _ in keys if k != self.lost.access_key_id][0]

        os.mkdir(broken_dir, 0o755)
        r = self.keyrotd('--once')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('resuming distribution', r.stderr)
        self.assertEqual(self.key_ids(), [(new, 'Active')])
        written = self.held()
        self.assertEqual(written.access_key_id, new)
        self.assertEqual(self.target_keys()[0], written)
        with open(t1) as f:
            self.assertIn('AWS_ACCESS_KEY_ID=%s\n' % written.access_key_id, f.read())


# Crash points of a replace-lost rotation; the same engine steps as a
# rotation, so a sample across the phases suffices (test_crash runs all).
CRASH_POINTS = ['after-commit-creating', 'after-create', 'after-commit-pending', 'after-commit-verified',
                'before-target-1', 'after-commit-distributed', 'after-deactivate', 'after-commit-deactivated',
                'after-delete-old']


@requires_test_hooks
class TestReplaceLostCrash(ReplaceLostCase):
    def test_crash_then_recover(self):
        for point in CRASH_POINTS:
            with self.subTest(point=point):
                # Start from a lost key again: a fresh state directory, the
                # application on whatever key it now has.
                store = os.path.join(self.state, 'store.sealed')
                if os.path.exists(store):
                    os.unlink(store)
                app = self.target_keys()[0]
                p = self.replace_lost(env=self.env(KEYROTD_CRASH_AT=point))
                self.assertEqual(p.returncode, -signal.SIGKILL, '%s: %s' % (point, p.stderr[-400:]))
                r = self.keyrotd('--once')
                # Undone, the key is still lost: the run says so and fails.
                self.assertTrue(r.returncode == 0 or (r.returncode == 1 and '--replace-lost' in r.stderr),
                                '%s: recovery failed: %s' % (point, r.stderr[-800:]))
                keys = self.rig.list_keys(USER)
                active = [k['id'] for k in keys if k['status'] == 'Active']
                held = None
                g = self.ctl('get', USER, '--format', 'json')
                if g.returncode == 0:
                    d = json.loads(g.stdout)
                    held = Creds(d['AccessKeyId'], d['SecretAccessKey'])
                if held and held.access_key_id != app.access_key_id:
                    # Finished: the new key is in service and the lost one gone.
                    self.assert_invariants()
                else:
                    # Undone: the application's key is untouched and Active,
                    # nothing keyrotd created is left in IAM.
                    self.assertEqual(active, [app.access_key_id], '%s: %r' % (point, keys))
                    for c in self.target_keys():
                        self.assertEqual(c, app, '%s: targets untouched' % point)
                    self.assertTrue(self.rig.key_works_on_s3(app, BUCKET))


class TestReplaceLostThroughDaemon(DaemonCase):
    users = (USER,)

    def test_via_socket(self):
        self.write_app_targets()
        lost = self.initial[USER]
        self.start_daemon()
        # keyrotctl talks to the daemon because it holds the state lock.
        p = self.rig.run([self.rig.build_path('src/keyrotctl'), '--config', self.inventory, '--state-dir',
                          self.state, '--socket', self.sock_path, 'rotate', USER, '--replace-lost'],
                         env=self.env())
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn('%s: completed (%s ->' % (USER, lost.access_key_id), p.stdout)
        wait_until(lambda: len(self.key_of(USER)) == 1 and self.key_of(USER)[0] != lost.access_key_id,
                   timeout=30, message='the lost key replaced')
        self.stop_daemon()
        self.assert_invariants()


if __name__ == '__main__':
    unittest.main()

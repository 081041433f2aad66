# SPDX-License-Identifier: MIT
"""keyrotd --once against moto and the fault proxy: the rotation state
machine of docs/DESIGN.md §1, outcomes checked with boto3."""

import json
import os
import pwd
import re
import signal
import stat
import subprocess
import threading
import time
import unittest

from rig import Creds, build_path, requires_test_hooks, wait_until
from faultproxy import Fault, Next, Rate
from rotation_rig import RotationCase, USER, BUCKET


class TestRotation(RotationCase):
    def test_forced_rotation_end_to_end(self):
        self.adopt()
        old = self.initial[USER]
        p = self.keyrotd('--once', '--force')
        self.assertEqual(p.returncode, 0, p.stderr)
        new = self.assert_invariants()
        self.assertNotEqual(new.access_key_id, old.access_key_id)
        self.assertFalse(self.rig.key_works_on_s3(old, BUCKET), 'the old key is gone')
        self.assertIn('%s: rotated %s -> %s' % (USER, old.access_key_id, new.access_key_id), p.stdout)
        events = [e['event'] for e in self.audit_events(p.stderr)]
        self.assertEqual(events, ['rotation_started', 'key_created', 'key_verified', 'targets_written',
                                  'old_key_deactivated', 'old_key_deleted', 'rotation_completed'])
        for e in self.audit_events(p.stderr):
            self.assertEqual(e['user'], USER)
        for path in (t['path'] for t in self.targets_for(USER)):
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600, path)
        # No secret on stdout or stderr, ever.
        for secret in (old.secret_access_key, new.secret_access_key):
            self.assertNotIn(secret, p.stdout + p.stderr)

    def test_not_due_changes_nothing(self):
        self.adopt()
        p = self.keyrotd('--once')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn('%s: not due' % USER, p.stdout)
        self.assertEqual([k['id'] for k in self.rig.list_keys(USER)], [self.initial[USER].access_key_id])

    def test_due_by_max_age(self):
        self.write_inventory(**{USER: {'max_age': '1s'}})
        self.adopt()
        time.sleep(1.1)  # the key must be older than max_age; IAM dates it to the second
        p = self.keyrotd('--once')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn('rotated', p.stdout)
        self.assert_invariants()

    def test_grace_keeps_old_key_inactive_then_deletes(self):
        self.write_inventory(defaults={'grace': '3s'})
        self.adopt()
        old = self.initial[USER]
        p = self.keyrotd('--once', '--force')
        self.assertEqual(p.returncode, 0, p.stderr)
        keys = {k['id']: k['status'] for k in self.rig.list_keys(USER)}
        self.assertEqual(keys[old.access_key_id], 'Inactive')
        self.assert_invariants(in_grace_ok=True)
        # Later runs delete it once grace has passed.
        def deleted():
            self.assertEqual(self.keyrotd('--once').returncode, 0)
            return old.access_key_id not in [k['id'] for k in self.rig.list_keys(USER)]
        wait_until(deleted, timeout=20, interval=0.5)
        self.assert_invariants()

    def test_propagation_delay_is_waited_out(self):
        # Up to 20 s of refusals, intermittent after the first 2 s: one
        # lucky success inside the window must not end verification.
        proxy = self.rig.start_proxy(propagation=20.0, propagation_p=0.5, propagation_always=2.0, seed=3)
        self.write_inventory(**{USER: {'verify': {'consecutive': 3, 'interval': '1s', 'timeout': '90s'}}})
        self.adopt()
        p = self.keyrotd('--once', '--force', endpoint=proxy.endpoint)
        self.assertEqual(p.returncode, 0, p.stderr)
        new = self.assert_invariants()
        s3 = [e for e in proxy.log(service='s3', key_id=new.access_key_id)]
        self.assertTrue(any(e.fault == 'propagation' for e in s3), 'the new key was refused at first')
        # The last `consecutive` checks with the new key all succeeded.
        self.assertTrue(all(e.status == 200 for e in s3[-3:]), [(e.status, e.fault) for e in s3])
        # A success inside the window was followed by a refusal: it did not count.
        statuses = [e.status for e in s3]
        last_refusal = max(i for i, st in enumerate(statuses) if st != 200)
        self.assertGreaterEqual(len(statuses) - 1 - last_refusal, 3, 'three in a row after the last refusal')
        for i, st in enumerate(statuses[:last_refusal]):
            if st == 200:  # a lucky success inside the window: verification went on
                self.assertGreater(len(statuses), i + 3, statuses)

    def test_checks_are_interval_apart_and_the_probe_runs_between_them(self):
        proxy = self.rig.start_proxy()
        self.write_inventory(**{USER: {'verify': {'consecutive': 3, 'interval': '1s'}}})
        self.adopt()
        p = self.keyrotd('--once', '--force', endpoint=proxy.endpoint)
        self.assertEqual(p.returncode, 0, p.stderr)
        new = self.assert_invariants()
        used = proxy.log(key_id=new.access_key_id)
        checks = [e.time for e in used if e.service == 's3']
        probes = [e for e in used if e.service == 'iam']
        self.assertEqual(len(checks), 3, used)
        # Spaced by their starts; the proxy sees each a little after its
        # start, so allow the jitter of one loopback connection.
        for a, b in zip(checks, checks[1:]):
            self.assertGreaterEqual(b - a, 0.9, checks)
        self.assertEqual([(e.action, e.status) for e in probes], [('ListAccessKeys', 403)])
        # The deny probe waits in the interval, not after the last check.
        self.assertTrue(checks[0] < probes[0].time < checks[-1], (checks, probes[0].time))
        events = [e['event'] for e in self.audit_events(p.stderr)]
        self.assertLess(events.index('key_verified'), events.index('targets_written'), events)

    def test_a_refused_probe_restarts_the_streak(self):
        # The new key's deny probe meets one propagation refusal: that is not
        # a denial, so the streak starts again and the probe is asked again.
        proxy = self.rig.start_proxy(throttle=Fault(
            next=1, service='iam', action='ListAccessKeys', not_key_id=self.rig.admin.access_key_id,
            status=403, code='InvalidClientTokenId'))
        self.write_inventory(**{USER: {'verify': {'consecutive': 2, 'interval': '0'}}})
        self.adopt()
        p = self.keyrotd('--once', '--force', endpoint=proxy.endpoint)
        self.assertEqual(p.returncode, 0, p.stderr)
        new = self.assert_invariants()
        seen = [(e.service, e.status) for e in proxy.log(key_id=new.access_key_id)]
        refused = seen.index(('iam', 403))
        self.assertEqual(proxy.log(key_id=new.access_key_id)[refused].fault, 'throttle')
        after = seen[refused + 1:]
        self.assertEqual(after.count(('iam', 403)), 1, seen)
        self.assertGreaterEqual(sum(1 for s in after if s == ('s3', 200)), 2, seen)
        self.assertEqual(after[-1], ('s3', 200), seen)

    def test_verification_timeout_deletes_new_key(self):
        proxy = self.rig.start_proxy(propagation_always=60.0)
        self.write_inventory(**{USER: {'verify': {'timeout': '3s'}}})
        self.adopt()
        old = self.initial[USER]
        p = self.keyrotd('--once', '--force', endpoint=proxy.endpoint)
        self.assertEqual(p.returncode, 1)
        self.assertIn('did not verify', p.stdout)
        self.assertEqual([k['id'] for k in self.rig.list_keys(USER)], [old.access_key_id])
        self.assertEqual(self.held().access_key_id, old.access_key_id)
        for path in (t['path'] for t in self.targets_for(USER)):
            self.assertFalse(os.path.exists(path), 'nothing was distributed')
        events = [e['event'] for e in self.audit_events(p.stderr)]
        self.assertIn('new_key_deleted', events)
        self.assertEqual(events[-1], 'rotation_failed')

    def test_access_denied_fails_fast(self):
        self.write_inventory(**{USER: {'verify': {'bucket': 'other-bucket', 'timeout': '60s'}}})
        self.adopt_anyway()
        t0 = time.monotonic()
        p = self.keyrotd('--once', '--force')
        self.assertEqual(p.returncode, 1)
        self.assertLess(time.monotonic() - t0, 30, 'AccessDenied does not wait for the timeout')
        self.assertIn('policy', p.stdout)
        self.assertEqual([k['id'] for k in self.rig.list_keys(USER)], [self.initial[USER].access_key_id])

    def adopt_anyway(self):
        # adopt checks the verify bucket; seal via a valid inventory first.
        inv = open(self.inventory).read()
        self.write_inventory()
        self.adopt()
        with open(self.inventory, 'w') as f:
            f.write(inv)

    def test_unknown_active_key_is_refused(self):
        self.adopt()
        extra = self.rig.iam().create_access_key(UserName=USER)['AccessKey']['AccessKeyId']
        p = self.keyrotd('--once', '--force')
        self.assertEqual(p.returncode, 1)
        self.assertIn(extra, p.stdout)
        self.assertEqual(sorted(k['id'] for k in self.rig.list_keys(USER)),
                         sorted([extra, self.initial[USER].access_key_id]))

    def test_stale_inactive_key_is_deleted_and_audited(self):
        self.adopt()
        extra = self.rig.iam().create_access_key(UserName=USER)['AccessKey']['AccessKeyId']
        self.rig.iam().update_access_key(UserName=USER, AccessKeyId=extra, Status='Inactive')
        p = self.keyrotd('--once', '--force')
        self.assertEqual(p.returncode, 0, p.stderr)
        stale = [e for e in self.audit_events(p.stderr) if e['event'] == 'stale_key_deleted']
        self.assertEqual([e['old_key_id'] for e in stale], [extra])
        self.assert_invariants()

    def test_failing_hook_keeps_old_key_active(self):
        self.write_inventory(**{USER: {'on_rotate': ['/bin/sh', '-c', 'exit 3']}})
        self.adopt()
        old = self.initial[USER]
        p = self.keyrotd('--once', '--force')
        self.assertEqual(p.returncode, 1)
        self.assertIn('on_rotate hook failed', p.stdout)
        keys = {k['id']: k['status'] for k in self.rig.list_keys(USER)}
        self.assertEqual(keys[old.access_key_id], 'Active', 'the old key is untouched')
        self.assertEqual(len(keys), 2)
        self.assertTrue(self.rig.key_works_on_s3(old, BUCKET))
        # A fixed hook lets the next run finish from where it stopped.
        self.write_inventory(**{USER: {'on_rotate': ['/bin/true']}})
        p = self.keyrotd('--once')
        self.assertEqual(p.returncode, 0, p.stderr + p.stdout)
        self.assert_invariants()

    def test_hook_environment_has_ids_and_no_secret(self):
        out = os.path.join(self.rig.tmp, 'hook.env')
        self.write_inventory(**{USER: {'on_rotate': ['/bin/sh', '-c', 'env > ' + out]}})
        self.adopt()
        p = self.keyrotd('--once', '--force')
        self.assertEqual(p.returncode, 0, p.stderr)
        env = dict(l.split('=', 1) for l in open(out).read().splitlines() if '=' in l)
        new = self.held()
        self.assertEqual(env['KEYROTD_USER'], USER)
        self.assertEqual(env['KEYROTD_OLD_KEY_ID'], self.initial[USER].access_key_id)
        self.assertEqual(env['KEYROTD_NEW_KEY_ID'], new.access_key_id)
        self.assertNotIn('AWS_SECRET_ACCESS_KEY', env, 'keyrotd\'s own environment is not inherited')
        blob = open(out).read()
        for secret in (new.secret_access_key, self.rig.admin.secret_access_key):
            self.assertNotIn(secret, blob)

    def test_over_privileged_key_fails_deny_probe(self):
        self.rig.iam().put_user_policy(UserName=USER, PolicyName='too-much', PolicyDocument=json.dumps({
            'Version': '2012-10-17',
            'Statement': [{'Effect': 'Allow', 'Action': 'iam:ListAccessKeys', 'Resource': '*'}]}))
        self.adopt()
        p = self.keyrotd('--once', '--force')
        self.assertEqual(p.returncode, 1)
        self.assertIn('over-privileged', p.stdout)
        self.assertEqual([k['id'] for k in self.rig.list_keys(USER)], [self.initial[USER].access_key_id])
        self.assertTrue(self.rig.key_works_on_s3(self.initial[USER], BUCKET))

    def test_credentials_file_keeps_other_profiles(self):
        path = self.targets_for(USER)[0]['path']
        original = '# managed by hand\n[other]\naws_access_key_id = AKIAOTHER\naws_secret_access_key = keep/me\n\n' \
                   '[default]\naws_access_key_id = OLD\naws_secret_access_key = OLD\naws_session_token = T\n'
        with open(path, 'w') as f:
            f.write(original)
        self.adopt()
        self.assertEqual(self.keyrotd('--once', '--force').returncode, 0)
        new = self.held()
        text = open(path).read()
        self.assertTrue(text.startswith('# managed by hand\n[other]\naws_access_key_id = AKIAOTHER\n'
                                        'aws_secret_access_key = keep/me\n\n[default]\n'), text)
        self.assertIn('aws_access_key_id = %s' % new.access_key_id, text)
        self.assertNotIn('aws_session_token', text)

    def test_symlinked_target_is_refused(self):
        victim = os.path.join(self.rig.tmp, 'victim')
        with open(victim, 'w') as f:
            f.write('untouched\n')
        os.symlink(victim, self.targets_for(USER)[1]['path'])
        self.adopt()
        p = self.keyrotd('--once', '--force')
        self.assertEqual(p.returncode, 1)
        self.assertEqual(open(victim).read(), 'untouched\n')
        self.assertEqual([k['id'] for k in self.rig.list_keys(USER)], [self.initial[USER].access_key_id])

    def test_two_keyrotd_on_one_state_dir(self):
        self.adopt()
        import fcntl
        with open(os.path.join(self.state, 'lock'), 'a+') as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            p = self.keyrotd('--once', '--force')
        self.assertEqual(p.returncode, 1)
        self.assertIn('in use', p.stderr)

    def test_throttling_and_resets_are_survived(self):
        proxy = self.rig.start_proxy(throttle=Rate(0.2, service='iam'), reset=Rate(0.1, service='iam'), seed=11)
        self.adopt()
        p = self.keyrotd('--once', '--force', endpoint=proxy.endpoint)
        self.assertEqual(p.returncode, 0, p.stderr + p.stdout)
        self.assert_invariants()


class TestRollback(RotationCase):
    def test_rollback_within_grace_restores_the_old_key(self):
        self.write_inventory(defaults={'grace': '1h'})
        self.adopt()
        old = self.initial[USER]
        self.assertEqual(self.keyrotd('--once', '--force').returncode, 0)
        new = self.held()
        self.assertNotEqual(new.access_key_id, old.access_key_id)
        p = self.ctl('rollback', USER)
        self.assertEqual(p.returncode, 0, p.stderr)
        # The rolled-back key is retired like an old key: Inactive, in
        # grace, deleted when the grace ends.
        self.assertEqual([(k['id'], k['status']) for k in self.rig.list_keys(USER)],
                         [(old.access_key_id, 'Active'), (new.access_key_id, 'Inactive')])
        self.assertEqual(self.held().access_key_id, old.access_key_id)
        self.assert_invariants(in_grace_ok=True)
        for c in self.target_keys():
            self.assertEqual(c.access_key_id, old.access_key_id, 'every target holds the old key again')

    @requires_test_hooks
    def test_crash_during_rollback_is_finished_by_recovery(self):
        self.write_inventory(defaults={'grace': '1h'})
        self.adopt()
        self.assertEqual(self.keyrotd('--once', '--force').returncode, 0)
        for point in ('after-commit-rolling-back', 'before-rollback-targets', 'after-commit-distributed'):
            with self.subTest(point=point):
                inactive = [k['id'] for k in self.rig.list_keys(USER) if k['status'] == 'Inactive']
                if not inactive:  # the previous round rolled back: rotate again, into grace
                    self.assertEqual(self.keyrotd('--once', '--force').returncode, 0)
                    inactive = [k['id'] for k in self.rig.list_keys(USER) if k['status'] == 'Inactive']
                prev = inactive[0]
                p = self.ctl('rollback', USER, env=self.env(KEYROTD_CRASH_AT=point))
                self.assertEqual(p.returncode, -signal.SIGKILL, p.stderr)
                r = self.keyrotd('--once')
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                self.assertEqual(self.held().access_key_id, prev, 'recovery finished the rollback')
                self.assert_invariants(in_grace_ok=True)


class TestStoreFailures(RotationCase):
    @requires_test_hooks
    def test_seal_failure_deletes_the_new_key(self):
        # The filesystem fills up between CreateAccessKey and the seal.
        self.adopt()
        old = self.initial[USER]
        p = self.keyrotd('--once', '--force', env=self.env(KEYROTD_FAIL_AT='before-commit-pending'))
        self.assertEqual(p.returncode, 1)
        self.assertIn('cannot seal the new key', p.stdout)
        self.assertEqual([k['id'] for k in self.rig.list_keys(USER)], [old.access_key_id])
        self.assertEqual(self.held().access_key_id, old.access_key_id)
        self.assertTrue(self.rig.key_works_on_s3(old, BUCKET))
        events = [e['event'] for e in self.audit_events(p.stderr)]
        self.assertIn('new_key_deleted', events)

    def test_full_filesystem_refuses_before_creating(self):
        self.adopt()
        mnt = os.path.join(self.rig.tmp, 'small')
        os.mkdir(mnt, 0o700)
        r = self.rig.run(['mount', '-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', mnt])
        if r.returncode != 0:
            self.skipTest('cannot mount a tmpfs here: %s' % r.stderr.strip())
        self.addCleanup(lambda: self.rig.run(['umount', '-l', mnt]))
        # Move the state onto the small filesystem, then fill it.
        import shutil
        for name in os.listdir(self.state):
            shutil.copy2(os.path.join(self.state, name), mnt)
        self.state = mnt
        self.write_inventory()
        with open(os.path.join(self.state, 'store.sealed'), 'rb') as f:
            original = f.read()
        filler = os.path.join(mnt, 'filler')
        with open(filler, 'wb', buffering=0) as f:
            try:
                while True:
                    f.write(b'\0' * 512)
            except OSError:
                pass
        p = self.keyrotd('--once', '--force')
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn('cannot commit the store', p.stdout)
        self.assertEqual([k['id'] for k in self.rig.list_keys(USER)], [self.initial[USER].access_key_id],
                         'no key was created that could not be sealed')
        with open(os.path.join(self.state, 'store.sealed'), 'rb') as f:
            self.assertEqual(f.read(), original, 'the store is intact')

    def test_tampered_store_is_refused(self):
        self.adopt()
        path = os.path.join(self.state, 'store.sealed')
        with open(path, 'r+b') as f:
            data = bytearray(f.read())
            data[len(data) // 2] ^= 0x01
            f.seek(0)
            f.write(data)
        p = self.keyrotd('--once', '--force')
        self.assertNotEqual(p.returncode, 0)
        self.assertIn('tampered', p.stderr)
        self.assertEqual([k['id'] for k in self.rig.list_keys(USER)], [self.initial[USER].access_key_id])

    def test_limit_exceeded_is_resolved_by_listing(self):
        """LimitExceeded although the user had room: an earlier create may
        have made a key. The keys are listed (none appeared) and the create
        is tried again."""
        from faultproxy import Fault
        proxy = self.rig.start_proxy(error500=Fault(next=1, action='CreateAccessKey', status=409,
                                                    code='LimitExceeded'))
        self.adopt()
        p = self.keyrotd('--once', '--force', endpoint=proxy.endpoint)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(proxy.count(action='CreateAccessKey'), 2, 'refused once, then created')
        self.assertEqual(proxy.count(action='CreateAccessKey', forwarded=True), 1)
        self.assertEqual(proxy.count(action='ListAccessKeys', key_id=self.rig.admin.access_key_id), 2,
                         'the keys listed before the second create')
        self.assert_invariants()

    def test_limit_exceeded_every_time_is_a_clean_failure(self):
        from faultproxy import Fault
        proxy = self.rig.start_proxy(error500=Fault(rate=1.0, action='CreateAccessKey', status=409,
                                                    code='LimitExceeded'))
        self.adopt()
        p = self.keyrotd('--once', '--force', endpoint=proxy.endpoint)
        self.assertEqual(p.returncode, 1)
        self.assertIn('LimitExceeded', p.stdout)
        self.assertEqual(proxy.count(action='CreateAccessKey'), 3, 'three creates, each resolved by listing')
        self.assertEqual([k['id'] for k in self.rig.list_keys(USER)], [self.initial[USER].access_key_id])
        # The failure left the store idle: the next run rotates.
        self.assertEqual(self.keyrotd('--once', '--force').returncode, 0)
        self.assert_invariants()


class Consumer(threading.Thread):
    """An application at work: lists the bucket every 0.3 s with the key
    its credentials file holds now (or always with one fixed key)."""

    def __init__(self, case, creds=None):
        super().__init__(daemon=True)
        self.case, self.fixed, self.stop = case, creds, threading.Event()

    def run(self):
        while not self.stop.wait(0.3):
            try:
                c = self.fixed or self.case.target_keys()[0]
                self.case.rig.key_works_on_s3(c, BUCKET)
            except Exception:  # a file being replaced, a deleted key: try again
                pass

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.join(5)


class TestDrain(RotationCase):
    """drain: the old key is deactivated only once GetAccessKeyLastUsed
    shows no use of it since the distribution (moto records a use at once,
    so a settle of 2 s, long enough for a consumer at 0.3 s to have been
    seen, stands in for AWS's minutes); after drain.wait, on_timeout
    decides."""

    def drain_events(self, stderr):
        events = self.audit_events(stderr)
        names = [e['event'] for e in events]
        self.assertIn('drain', names)
        self.assertLess(names.index('targets_written'), names.index('drain'))
        return [e for e in events if e['event'] == 'drain']

    def active(self):
        return [k['id'] for k in self.rig.list_keys(USER) if k['status'] == 'Active']

    def test_deactivates_once_consumers_left_the_old_key(self):
        self.write_inventory(**{USER: {'drain': {'wait': '60s', 'settle': '2s'}}})
        self.adopt()
        self.write_app_targets()
        with Consumer(self):  # re-reads the file: moves to the new key
            p = self.keyrotd('--once', '--force')
        self.assertEqual(p.returncode, 0, p.stderr)
        e = self.drain_events(p.stderr)[-1]
        self.assertEqual((e['result'], e.get('error')), ('ok', None), e)
        self.assertIn('consumers have left the old key', p.stderr)
        names = [x['event'] for x in self.audit_events(p.stderr)]
        self.assertLess(names.index('drain'), names.index('old_key_deactivated'))
        self.assert_invariants()

    def test_old_key_still_in_use_is_kept_active(self):
        """on_timeout keep (the default): the old key stays Active, a warning,
        and the run says so rather than claiming the old key is gone."""
        self.write_inventory(**{USER: {'drain': {'wait': '5s', 'settle': '2s'}}})
        self.adopt()
        self.write_app_targets()
        start = time.monotonic()
        with Consumer(self, creds=self.initial[USER]):  # never reads the new file
            p = self.keyrotd('--once', '--force')
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertGreaterEqual(time.monotonic() - start, 5, 'waited for the drain')
            e = self.drain_events(p.stderr)[-1]
            self.assertEqual((e['result'], e.get('error'), e.get('priority')), ('warning', 'OldKeyInUse', '4'), e)
            self.assertIn('it stays Active', p.stderr)
            self.assertIn('the old key stays Active while consumers use it', p.stdout)
            self.assertNotIn('old_key_deactivated', [x['event'] for x in self.audit_events(p.stderr)])
            self.assertEqual(sorted(self.active()), sorted([self.initial[USER].access_key_id,
                                                            self.held().access_key_id]))
            self.assertTrue(self.rig.key_works_on_s3(self.initial[USER], BUCKET), 'the consumer still works')
        # Once the consumer is gone, a run without drain finishes it.
        self.write_inventory()
        p = self.keyrotd('--once')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn('finished an earlier rotation', p.stdout)
        self.assert_invariants()

    def test_on_timeout_deactivate_goes_ahead(self):
        self.write_inventory(**{USER: {'drain': {'wait': '4s', 'settle': '2s', 'on_timeout': 'deactivate'}}})
        self.adopt()
        with Consumer(self, creds=self.initial[USER]):
            p = self.keyrotd('--once', '--force')
        self.assertEqual(p.returncode, 0, p.stderr)
        e = self.drain_events(p.stderr)[-1]
        self.assertEqual((e['result'], e.get('error')), ('warning', 'OldKeyInUse'), e)
        self.assertIn('deactivating it anyway', p.stderr)
        self.assert_invariants()

    def test_settle_parks_and_the_schedule_resumes(self):
        """A drain that must wait longer than a minute is parked in the
        store: the run ends, the old key still Active, and says so."""
        self.write_inventory(**{USER: {'drain': {'settle': '10m'}}})
        self.adopt()
        p = self.keyrotd('--once', '--force')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn('the old key stays Active while consumers use it', p.stdout)
        self.assertEqual(len(self.active()), 2)
        p = self.keyrotd('--once', '--dry-run')
        self.assertIn('waits for its consumers to leave it', p.stdout)
        p = self.keyrotd('--once', '--force')
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn('still drains', p.stdout, 'rotate-now never deactivates a key in use')

    def test_sigterm_during_drain_parks_and_the_next_run_finishes(self):
        self.write_inventory(**{USER: {'drain': {'wait': '10m', 'settle': '2s'}}})
        self.adopt()
        self.write_app_targets()
        consumer = Consumer(self, creds=self.initial[USER])
        consumer.start()
        self.addCleanup(consumer.__exit__)
        argv = [build_path('src/keyrotd'), '--config', self.inventory, '--state-dir', self.state,
                '--log-target', 'stderr', '--once', '--force']
        proc = self.rig.spawn(argv, env=self.env(), name='keyrotd-drain')
        wait_until(lambda: self._seen(proc, 'event=targets_written'), timeout=60,
                   message='the rotation reaching its drain')
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(timeout=20), 0)
        with open(proc.out_path) as f:
            self.assertIn('stopped at a safe point', f.read())
        # Both keys Active, the targets on the new one: then a run without
        # drain finishes the rotation.
        self.assertEqual(len([k for k in self.rig.list_keys(USER) if k['status'] == 'Active']), 2)
        self.write_inventory()
        p = self.keyrotd('--once')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assert_invariants()

    @staticmethod
    def _seen(proc, text):
        with open(proc.err_path) as f:
            return text in f.read()


class TestRootBesideTheService(RotationCase):
    """The service runs as its own user; the operator's commands run as root
    beside it. What root writes into the state directory must stay usable
    by the service: here "nobody" plays the keyrotd user."""

    def test_root_adopt_leaves_the_store_to_the_service_user(self):
        if os.geteuid() != 0:
            self.skipTest('needs root')
        nobody = pwd.getpwnam('nobody')
        os.chmod(self.rig.tmp, 0o755)
        for path in (self.state, self.key_file, self.appdir):
            os.chown(path, nobody.pw_uid, nobody.pw_gid)
        # The service's user owns the files it writes; root, which trusts
        # a directory of another user only for that user's targets, is
        # told so.
        self.write_inventory(**{USER: {'targets': [dict(t, owner='nobody') for t in self.targets_for(USER)]}})
        self.adopt()  # as root
        for name in ('store.sealed', 'lock'):
            st = os.stat(os.path.join(self.state, name))
            self.assertEqual((st.st_uid, st.st_gid), (nobody.pw_uid, nobody.pw_gid), name)
            self.assertEqual(st.st_mode & 0o777, 0o600, name)

        def as_nobody():
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
        argv = [build_path('src/keyrotd'), '--config', self.inventory, '--state-dir', self.state,
                '--log-target', 'stderr', '--once', '--force']
        p = subprocess.run(argv, env=self.env(HOME=self.state), preexec_fn=as_nobody, capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertNotEqual(self.assert_invariants().access_key_id, self.initial[USER].access_key_id)
        # And root again (keyrotd --once), after the service user wrote it.
        r = self.keyrotd('--once', '--force')
        self.assertEqual(r.returncode, 0, r.stderr)
        st = os.stat(os.path.join(self.state, 'store.sealed'))
        self.assertEqual(st.st_uid, nobody.pw_uid)


class TestCheckConfig(RotationCase):
    def test_good_inventory(self):
        p = self.keyrotd('--check-config')
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_bad_inventory_reports_line_and_column(self):
        with open(self.inventory, 'a') as f:
            f.write('bogus_key: 1\n')
        p = self.keyrotd('--check-config')
        self.assertEqual(p.returncode, 2)
        self.assertRegex(p.stderr, r'inventory\.yaml:\d+:\d+: ')

    def test_bucket_names_s3_refuses(self):
        # Refused by --check-config, naming the rule, instead of failing
        # every verification at run time.
        for bucket, rule in (('123', 'digits and dots only'), ('a.-b', '".-" or "-."')):
            with self.subTest(bucket=bucket):
                self.write_inventory(**{USER: {'verify': {'bucket': bucket}}})
                p = self.keyrotd('--check-config')
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertRegex(p.stderr, r"inventory\.yaml:\d+:\d+: invalid S3 bucket name '%s' for bucket: "
                                           r"it must not .*%s" % (re.escape(bucket), re.escape(rule)))

    def test_example_inventory_parses(self):
        from rig import source_path
        p = self.rig.run([self.rig.build_path('src/keyrotd'), '--check-config', '--config',
                          source_path('conf/inventory.yaml')])
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_usage_errors_exit_2(self):
        self.assertEqual(self.keyrotd('--force').returncode, 2)
        self.assertEqual(self.keyrotd('--no-such-option').returncode, 2)
        self.assertEqual(self.ctl('frobnicate').returncode, 2)


if __name__ == '__main__':
    unittest.main()

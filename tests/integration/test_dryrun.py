# SPDX-License-Identifier: MIT
"""keyrotd --once --dry-run (docs/DESIGN.md §2): read-only calls only, through
the fault proxy, which proves that no mutating call reached moto; IAM,
the state directory and the targets are compared before and after; the
plan lines say what a real run would do."""

import fcntl
import os
import shutil
import signal
import time
import unittest

from rig import requires_test_hooks, wait_until
from rotation_rig import RotationCase, USER, BUCKET

OTHER = 'web-bot'
COLUMNS = ('USER', 'CURRENT KEY', 'AGE', 'LAST USED', 'ACTION', 'REASON')


def parse_plan(text):
    """{user: {column: cell}} from the aligned table; checks the header."""
    lines = text.splitlines()
    header = lines[0]
    starts = [header.index(c) for c in COLUMNS]
    assert starts == sorted(starts) and starts[0] == 0, header
    rows = {}
    for line in lines[1:]:
        cells = {}
        for i, c in enumerate(COLUMNS):
            end = starts[i + 1] if i + 1 < len(COLUMNS) else len(line)
            cell = line[starts[i]:end]
            # Aligned: every cell but the last ends in padding.
            if i + 1 < len(COLUMNS):
                assert cell.endswith('  '), (c, line)
            cells[c] = cell.strip()
        rows[cells['USER']] = cells
    return rows


class DryRunCase(RotationCase):
    def setUp(self):
        super().setUp()
        self.proxy = self.rig.start_proxy()

    # ------------------------------------------------------------ helpers

    def snapshot_files(self):
        """Every file under the state dir and the app dir: bytes, mtime, mode."""
        paths = [self.state, self.appdir, self.key_file, self.inventory]
        for top in (self.state, self.appdir):
            for dirpath, dirnames, filenames in os.walk(top):
                paths += [os.path.join(dirpath, n) for n in dirnames + filenames]
        out = {}
        for p in paths:
            st = os.lstat(p)
            data = None
            if os.path.islink(p):
                data = os.readlink(p)
            elif os.path.isfile(p):
                with open(p, 'rb') as f:
                    data = f.read()
            out[p] = (data, st.st_mtime_ns, st.st_mode, st.st_ino)
        return out

    def snapshot(self):
        return (self.snapshot_files(),
                {u: self.rig.list_keys(u) for u in self.users})

    def dry(self, *args, argv_prefix=(), env=None):
        self.proxy_before = len(self.proxy.log())
        if argv_prefix:
            from rig import build_path
            argv = list(argv_prefix) + [build_path('src/keyrotd'), '--config', self.inventory,
                                        '--state-dir', self.state, '--log-target', 'stderr',
                                        '--once', '--dry-run'] + list(args)
            p = self.rig.run(argv, env=env or self.env(self.proxy.endpoint))
        else:
            p = self.keyrotd('--once', '--dry-run', *args, endpoint=self.proxy.endpoint, env=env)
        for secret in [c.secret_access_key for c in self.initial.values()] + [self.rig.admin.secret_access_key]:
            self.assertNotIn(secret, p.stdout + p.stderr, 'a secret was printed')
        return p

    def plan(self, p):
        self.assertTrue(p.stdout.startswith('USER '), p.stdout + p.stderr)
        rows = parse_plan(p.stdout)
        self.assertEqual(list(rows), list(self.users), 'one line per user, in inventory order')
        return rows

    def assert_read_only(self, before):
        self.assertEqual(self.proxy.mutations(), [], 'no mutating call reached moto')
        after = self.snapshot()
        self.assertEqual(after[1], before[1], 'IAM keys unchanged')
        self.assertEqual(sorted(after[0]), sorted(before[0]), 'no file created or removed')
        for path, st in before[0].items():
            self.assertEqual(after[0][path], st, '%s unchanged' % path)

    def assert_inspected(self, user=USER, key_id=None):
        """ListAccessKeys, GetAccessKeyLastUsed and the S3 check with the held key."""
        log = [e for e in self.proxy.log()[self.proxy_before:] if e.forwarded]
        admin = self.rig.admin.access_key_id
        self.assertTrue([e for e in log if e.action == 'ListAccessKeys' and e.key_id == admin], log)
        if key_id:
            self.assertTrue([e for e in log if e.action == 'GetAccessKeyLastUsed' and e.key_id == admin], log)
            s3 = [e for e in log if e.service == 's3' and e.key_id == key_id]
            self.assertTrue(s3, 'the S3 check ran with the held key')
            self.assertTrue(all(e.method in ('GET', 'HEAD') for e in s3), s3)
        # keyrotd's own identity never talks to S3, the user's key never to IAM.
        self.assertFalse([e for e in log if e.service == 's3' and e.key_id == admin])
        self.assertFalse([e for e in log if e.service == 'iam' and e.key_id != admin])

    def crash_pending(self):
        """A rotation killed right after sealing its new key (phase pending)."""
        p = self.keyrotd('--once', '--force', env=self.env(KEYROTD_CRASH_AT='after-commit-pending'))
        self.assertEqual(p.returncode, -signal.SIGKILL, p.stderr)
        keys = self.rig.list_keys(USER)
        self.assertEqual(len(keys), 2, keys)
        return [k['id'] for k in keys if k['id'] != self.initial[USER].access_key_id][0]

    def seed_targets(self):
        self.write_app_targets()

class TestDryRun(DryRunCase):
    def test_not_due_is_none(self):
        self.adopt()
        self.seed_targets()
        before = self.snapshot()
        p = self.dry()
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        row = self.plan(p)[USER]
        self.assertEqual(row['CURRENT KEY'], self.initial[USER].access_key_id)
        self.assertEqual(row['ACTION'], 'none')
        self.assertIn('not due: due in 12w', row['REASON'])
        self.assertRegex(row['AGE'], r'^(\d+[smhdw]( \d+[smhdw])?|<1s|0)$')
        self.assertRegex(row['LAST USED'], r'^(never|.* ago|just now)$')
        self.assert_inspected(key_id=self.initial[USER].access_key_id)
        self.assert_read_only(before)

    def test_force_is_rotate(self):
        self.adopt()
        before = self.snapshot()
        p = self.dry('--force')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        row = self.plan(p)[USER]
        self.assertEqual(row['ACTION'], 'rotate')
        self.assertIn('--force', row['REASON'])
        self.assertIn('write 3 targets', row['REASON'])
        self.assert_inspected(key_id=self.initial[USER].access_key_id)
        self.assert_read_only(before)

    def test_due_by_max_age_is_rotate(self):
        self.write_inventory(**{USER: {'max_age': '1s'}})
        self.adopt()
        time.sleep(1.1)  # the key must be older than max_age
        before = self.snapshot()
        p = self.dry()
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        row = self.plan(p)[USER]
        self.assertEqual(row['ACTION'], 'rotate')
        self.assertIn('due: key is', row['REASON'])
        self.assert_read_only(before)

    def test_unknown_active_key_is_blocked(self):
        self.adopt()
        extra = self.rig.iam().create_access_key(UserName=USER)['AccessKey']['AccessKeyId']
        before = self.snapshot()
        p = self.dry('--force')
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        row = self.plan(p)[USER]
        self.assertEqual(row['ACTION'], 'blocked')
        self.assertIn(extra, row['REASON'])
        self.assertIn('does not hold', row['REASON'])
        self.assert_read_only(before)

    def test_stale_inactive_key_is_noted(self):
        self.adopt()
        extra = self.rig.iam().create_access_key(UserName=USER)['AccessKey']['AccessKeyId']
        self.rig.iam().update_access_key(UserName=USER, AccessKeyId=extra, Status='Inactive')
        before = self.snapshot()
        p = self.dry('--force')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        row = self.plan(p)[USER]
        self.assertEqual(row['ACTION'], 'rotate')
        self.assertIn('delete-stale', row['REASON'])
        self.assertIn(extra, row['REASON'])
        self.assert_read_only(before)
        # Not due: nothing happens, so nothing stale is deleted either.
        row = self.plan(self.dry())[USER]
        self.assertEqual(row['ACTION'], 'none')
        self.assertNotIn('delete-stale', row['REASON'])

    def test_no_adopted_key_is_blocked(self):
        before = self.snapshot()
        p = self.dry()
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        row = self.plan(p)[USER]
        self.assertEqual(row['ACTION'], 'blocked')
        self.assertIn('adopt', row['REASON'])
        self.assertEqual((row['CURRENT KEY'], row['AGE'], row['LAST USED']), ('-', '-', '-'))
        self.assert_inspected()
        self.assert_read_only(before)

    @requires_test_hooks
    def test_interrupted_rotation_is_undone(self):
        self.adopt()
        new = self.crash_pending()
        before = self.snapshot()
        p = self.dry()
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        row = self.plan(p)[USER]
        self.assertEqual(row['ACTION'], 'undo')
        self.assertIn('phase pending', row['REASON'])
        self.assertIn(new, row['REASON'])
        self.assertIn('then none: not due', row['REASON'])
        row = self.plan(self.dry('--force'))[USER]
        self.assertEqual(row['ACTION'], 'undo')
        self.assertIn('then rotate', row['REASON'])
        self.assert_read_only(before)
        # The plan was right: a real run deletes the unverified key.
        p = self.keyrotd('--once')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual([k['id'] for k in self.rig.list_keys(USER)], [self.initial[USER].access_key_id])

    @requires_test_hooks
    def test_every_interrupted_phase(self):
        """Each crash point's plan, then a real run does what it said."""
        self.adopt()
        self.seed_targets()
        cases = [
            ('after-commit-creating', 'undo', 'before IAM created a key'),
            ('after-create', 'undo', 'never sealed'),
            ('after-commit-pending', 'undo', 'unverified new key'),
            ('after-commit-verified', 'finish', 'phase verified: write the verified key'),
            ('after-commit-distributed', 'finish', 'phase distributed: deactivate and delete the old key'),
            ('after-commit-notified', 'finish', 'phase notified: deactivate and delete the old key'),
        ]
        for point, action, text in cases:
            with self.subTest(point=point):
                held = self.held().access_key_id
                p = self.keyrotd('--once', '--force', env=self.env(KEYROTD_CRASH_AT=point))
                self.assertEqual(p.returncode, -signal.SIGKILL, p.stderr)
                keys = [k['id'] for k in self.rig.list_keys(USER)]
                before = self.snapshot()
                p = self.dry()
                self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
                row = self.plan(p)[USER]
                self.assertEqual(row['ACTION'], action, row['REASON'])
                self.assertIn(text, row['REASON'])
                if action == 'undo':
                    self.assertIn('then none: not due', row['REASON'])
                    for k in set(keys) - {held}:
                        self.assertIn(k, row['REASON'], 'names the key it deletes')
                self.assert_read_only(before)
                p = self.keyrotd('--once')
                self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
                new = self.assert_invariants()
                self.assertEqual(new.access_key_id != held, action == 'finish')

    @requires_test_hooks
    def test_interrupted_rollback_is_finished(self):
        self.write_inventory(defaults={'grace': '1h'})
        self.adopt()
        self.seed_targets()
        cases = [
            ('before-rollback-targets', 'rollback interrupted: re-activate the old key %(old)s, '
                                        'write it back to 3 targets, retire %(new)s'),
            # Swapped back: the rolled-back key is retired like an old key.
            ('after-commit-distributed', 'rotation interrupted in phase distributed: deactivate the old key '
                                         '%(new)s, delete it after grace'),
        ]
        for point, text in cases:
            with self.subTest(point=point):
                old = self.held().access_key_id
                self.assertEqual(self.keyrotd('--once', '--force').returncode, 0)
                new = self.held().access_key_id
                p = self.ctl('rollback', USER, env=self.env(KEYROTD_CRASH_AT=point))
                self.assertEqual(p.returncode, -signal.SIGKILL, p.stderr)
                before = self.snapshot()
                p = self.dry('--force')
                self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
                row = self.plan(p)[USER]
                self.assertEqual(row['ACTION'], 'finish', row['REASON'])
                self.assertIn(text % {'old': old, 'new': new}, row['REASON'])
                self.assert_read_only(before)
                p = self.keyrotd('--once')
                self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
                self.assertEqual(self.assert_invariants(in_grace_ok=True).access_key_id, old)

    def test_unwritable_target_directory_is_blocked(self):
        self.adopt()
        prefix = ()
        if os.geteuid() == 0:
            # root writes anywhere through CAP_DAC_OVERRIDE: run without it.
            setpriv = shutil.which('setpriv')
            if not setpriv:
                self.skipTest('running as root without setpriv')
            prefix = (setpriv, '--bounding-set', '-dac_override,-dac_read_search', '--')
        os.chmod(self.appdir, 0o555)
        self.addCleanup(os.chmod, self.appdir, 0o755)
        before = self.snapshot()
        p = self.dry(argv_prefix=prefix)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        row = self.plan(p)[USER]
        self.assertEqual(row['ACTION'], 'blocked')
        self.assertIn('directory %s is not writable' % self.appdir, row['REASON'])
        self.assertIn('plan otherwise none', row['REASON'])
        self.assert_read_only(before)

    def test_missing_target_directory_is_blocked(self):
        missing = os.path.join(self.rig.tmp, 'not-installed', 'aws.env')
        self.write_inventory(**{USER: {'targets': [{'type': 'env-file', 'path': missing}]}})
        self.adopt()
        before = self.snapshot()
        p = self.dry('--force')
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        row = self.plan(p)[USER]
        self.assertEqual(row['ACTION'], 'blocked')
        self.assertIn('does not exist', row['REASON'])
        self.assertIn('plan otherwise rotate', row['REASON'])
        self.assertFalse(os.path.exists(os.path.dirname(missing)), 'nothing created')
        self.assert_read_only(before)

    def test_symlinked_target_is_blocked(self):
        victim = os.path.join(self.rig.tmp, 'victim')
        with open(victim, 'w') as f:
            f.write('untouched\n')
        os.symlink(victim, self.targets_for(USER)[1]['path'])
        self.adopt()
        before = self.snapshot()
        p = self.dry()
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        row = self.plan(p)[USER]
        self.assertEqual(row['ACTION'], 'blocked')
        self.assertIn('symbolic link', row['REASON'])
        self.assertEqual(open(victim).read(), 'untouched\n')
        self.assert_read_only(before)

    def test_failing_s3_check_is_blocked(self):
        # Seal the key against a valid inventory, then point the check at a
        # bucket the user's policy does not grant.
        self.adopt()
        self.write_inventory(**{USER: {'verify': {'bucket': 'other-bucket'}}})
        before = self.snapshot()
        p = self.dry()
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        row = self.plan(p)[USER]
        self.assertEqual(row['ACTION'], 'blocked')
        self.assertIn('fails its S3 check', row['REASON'])
        self.assertIn('AccessDenied', row['REASON'])
        self.assert_read_only(before)

    def test_put_check_writes_nothing(self):
        self.adopt()
        self.write_inventory(**{USER: {'verify': {'check': 'put:keyrotd/probe'}}})
        before = self.snapshot()
        p = self.dry('--force')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        row = self.plan(p)[USER]
        self.assertEqual(row['ACTION'], 'rotate')
        self.assertIn('ListObjectsV2', row['REASON'])
        s3 = self.proxy.log(service='s3', key_id=self.initial[USER].access_key_id)
        self.assertTrue(s3)
        self.assertEqual({e.method for e in s3}, {'GET'})
        self.assertEqual(self.rig.s3().list_objects_v2(Bucket=BUCKET).get('KeyCount'), 0)
        self.assert_read_only(before)

    def test_grace_wait_then_delete_old(self):
        self.write_inventory(defaults={'grace': '1h'})
        self.adopt()
        self.assertEqual(self.keyrotd('--once', '--force').returncode, 0)
        old = self.initial[USER].access_key_id
        new = self.held().access_key_id
        before = self.snapshot()
        # Without --force the grace runs out; rotate-now ends it first.
        for args, action, text in (((), 'wait', '%s is Inactive in grace until' % old),
                                   (('--force',), 'delete-old',
                                    'rotate now: delete the previous rotation\'s old key %s' % old)):
            p = self.dry(*args)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            row = self.plan(p)[USER]
            self.assertEqual(row['CURRENT KEY'], new)
            self.assertEqual(row['ACTION'], action)
            self.assertIn(text, row['REASON'])
        self.assert_read_only(before)

    def test_grace_over_is_delete_old(self):
        self.write_inventory(defaults={'grace': '1s'})
        self.adopt()
        self.assertEqual(self.keyrotd('--once', '--force').returncode, 0)
        old = self.initial[USER].access_key_id
        before = self.snapshot()
        rows = []

        def grace_over():
            rows.append(self.plan(self.dry())[USER])
            return rows[-1]['ACTION'] == 'delete-old'
        wait_until(grace_over, timeout=20, interval=0.25)
        self.assertIn('delete the old key %s' % old, rows[-1]['REASON'])
        self.assert_read_only(before)

    def test_works_while_the_state_lock_is_held(self):
        self.adopt()
        with open(os.path.join(self.state, 'lock'), 'a+') as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            before = self.snapshot()
            p = self.dry()
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assert_read_only(before)
        self.assertEqual(self.plan(p)[USER]['ACTION'], 'none')

    def test_usage_and_config_errors_exit_2(self):
        self.assertEqual(self.keyrotd('--dry-run').returncode, 2)
        with open(self.inventory, 'a') as f:
            f.write('bogus_key: 1\n')
        p = self.keyrotd('--once', '--dry-run')
        self.assertEqual(p.returncode, 2)
        self.assertEqual(p.stdout, '')


class TestDryRunManyUsers(DryRunCase):
    users = (USER, OTHER)

    def test_one_line_per_user_aligned(self):
        self.write_inventory(defaults={'max_parallel': 1})
        self.adopt(USER)
        before = self.snapshot()
        p = self.dry()
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        rows = self.plan(p)
        self.assertEqual(rows[USER]['ACTION'], 'none')
        self.assertEqual(rows[OTHER]['ACTION'], 'blocked')
        self.assertIn('adopt', rows[OTHER]['REASON'])
        self.assertEqual(len(p.stdout.splitlines()), 3)
        self.assert_read_only(before)


if __name__ == '__main__':
    unittest.main()

# SPDX-License-Identifier: MIT
"""keyrotctl provision against moto with authentication and IAM
policies enforced; outcomes checked with boto3."""

import json
import os
import unittest

from botocore.exceptions import ClientError

from rig import error_code
from rotation_rig import RotationCase, USER, BUCKET

NEW = 'new-bot'


class TestProvision(RotationCase):
    def setUp(self):
        super().setUp()
        self.third = self.rig.create_bucket('third-bucket')

    def provision(self, *args, user=NEW, endpoint=None, rc=0):
        p = self.ctl('provision', user, *args, endpoint=endpoint)
        self.assertEqual(p.returncode, rc, p.stdout + p.stderr)
        return p

    def s3_ok(self, creds, fn, **kw):
        try:
            getattr(self.rig.s3(creds), fn)(**kw)
            return True
        except ClientError as e:
            if error_code(e) == 'AccessDenied':
                return False
            raise

    def no_secret_in(self, p, creds):
        self.assertNotIn(creds.secret_access_key, p.stdout + p.stderr)

    # ------------------------------------------------------------------

    def test_lost_create_answer_leaves_no_orphan(self):
        """moto creates the first key, the answer is lost (reset on a
        keep-alive connection): provision lists the keys, deletes the key
        it never saw the secret of, and creates another."""
        from faultproxy import Next
        proxy = self.rig.start_proxy(reset=Next(1, action='CreateAccessKey', phase='after'))
        p = self.provision('--bucket', BUCKET, endpoint=proxy.endpoint)
        self.assertIn('provisioned', p.stdout)
        key = self.held(NEW)
        self.assertEqual([k['id'] for k in self.rig.list_keys(NEW)], [key.access_key_id],
                         'only the key keyrotd holds')
        self.assertEqual(proxy.count(action='CreateAccessKey', forwarded=True), 2)
        self.assertEqual(proxy.count(action='DeleteAccessKey', forwarded=True), 1)

    def test_print_policy_calls_nothing(self):
        proxy = self.rig.start_proxy()
        p = self.provision('--bucket', BUCKET, '--bucket', 'other-bucket', '--prefix', 'data/',
                           '--print-policy', endpoint=proxy.endpoint)
        self.assertEqual(proxy.log(), [], 'no request at all')
        doc = json.loads(p.stdout)
        self.assertEqual(doc['Version'], '2012-10-17')
        st = doc['Statement']
        self.assertEqual(len(st), 4, 'one statement pair per bucket')
        self.assertEqual(st[0]['Action'], ['s3:ListBucket'])
        self.assertEqual(st[0]['Resource'], ['arn:aws:s3:::app-bucket'])
        self.assertEqual(st[0]['Condition'], {'StringLike': {'s3:prefix': ['data/*']}})
        self.assertEqual(st[1]['Action'], ['s3:GetObject', 's3:PutObject'])
        self.assertEqual(st[1]['Resource'], ['arn:aws:s3:::app-bucket/data/*'])
        self.assertEqual(st[3]['Resource'], ['arn:aws:s3:::other-bucket/data/*'])
        # Stable: the same arguments give the same bytes.
        self.assertEqual(self.provision('--bucket', BUCKET, '--bucket', 'other-bucket', '--prefix', 'data/',
                                        '--print-policy').stdout, p.stdout)
        ro = json.loads(self.provision('--bucket', BUCKET, '--read-only', '--print-policy').stdout)
        self.assertEqual(ro['Statement'][1]['Action'], ['s3:GetObject'])
        self.assertNotIn('Condition', ro['Statement'][0])
        self.assertEqual(ro['Statement'][1]['Resource'], ['arn:aws:s3:::app-bucket/*'])

    def test_usage_errors(self):
        self.provision(rc=2)                                   # no --bucket
        self.provision('--bucket', 'Bad_Bucket', rc=2)
        self.provision('--bucket', BUCKET, '--prefix', 'a*', rc=2)
        self.provision('--bucket', BUCKET, '--bucket', BUCKET, rc=2)
        p = self.ctl('get', USER, '--bucket', BUCKET)
        self.assertEqual(p.returncode, 2)

    def test_provision_key_works_on_its_buckets_only(self):
        p = self.provision('--bucket', BUCKET, '--bucket', 'other-bucket')
        key = self.held(NEW)
        self.no_secret_in(p, key)
        self.assertIn('provisioned', p.stdout)
        tags = {t['Key']: t['Value'] for t in self.rig.iam().list_user_tags(UserName=NEW)['Tags']}
        self.assertEqual(tags.get('managed-by'), 'keyrotd')
        self.assertEqual([k['id'] for k in self.rig.list_keys(NEW)], [key.access_key_id])
        for b in (BUCKET, 'other-bucket'):
            self.assertTrue(self.rig.key_works_on_s3(key, b), b)
            self.assertTrue(self.s3_ok(key, 'put_object', Bucket=b, Key='k', Body=b'x'))
            self.assertTrue(self.s3_ok(key, 'get_object', Bucket=b, Key='k'))
        if not os.path.exists('/run/systemd/journal/socket'):  # else the records went to the journal
            events = self.audit_events(p.stderr)
            self.assertEqual([e['event'] for e in events],
                             ['user_created', 'policy_put', 'key_created', 'key_verified', 'provisioned'])
            self.assertEqual({e['user'] for e in events}, {NEW})
            self.assertEqual(events[-1]['result'], 'changed')
            self.assertEqual(events[-1]['new_key_id'], key.access_key_id)
        self.assertFalse(self.rig.key_works_on_s3(key, self.third), 'denied on another bucket')
        self.assertFalse(self.s3_ok(key, 'put_object', Bucket=self.third, Key='k', Body=b'x'))
        with self.assertRaises(ClientError) as cm:
            self.rig.iam(key).list_access_keys(UserName=NEW)
        self.assertEqual(error_code(cm.exception), 'AccessDenied', 'denied on IAM')

    def test_rerun_changes_nothing(self):
        self.provision('--bucket', BUCKET)
        key = self.held(NEW)
        proxy = self.rig.start_proxy()
        p = self.provision('--bucket', BUCKET, endpoint=proxy.endpoint)
        self.assertIn('nothing changed', p.stdout)
        self.assertEqual(proxy.mutations(), [], 'no mutating call on a re-run')
        if not os.path.exists('/run/systemd/journal/socket'):
            self.assertEqual([(e['event'], e['result']) for e in self.audit_events(p.stderr)],
                             [('provisioned', 'unchanged')])
        self.assertEqual(self.held(NEW), key)
        self.assertEqual([k['id'] for k in self.rig.list_keys(NEW)], [key.access_key_id])

    def test_other_buckets_update_the_policy(self):
        self.provision('--bucket', BUCKET)
        key = self.held(NEW)
        proxy = self.rig.start_proxy()
        p = self.provision('--bucket', 'other-bucket', endpoint=proxy.endpoint)
        self.assertIn('policy keyrotd-s3 updated', p.stdout)
        self.assertEqual([e.action for e in proxy.mutations()], ['PutUserPolicy'])
        if not os.path.exists('/run/systemd/journal/socket'):
            self.assertIn('policy_put', [e['event'] for e in self.audit_events(p.stderr)])
        self.assertEqual(self.held(NEW), key, 'the key stays')
        self.assertTrue(self.rig.key_works_on_s3(key, 'other-bucket'))
        self.assertFalse(self.rig.key_works_on_s3(key, BUCKET), 'the old bucket is no longer granted')

    def test_read_only_cannot_put(self):
        self.rig.s3().put_object(Bucket=BUCKET, Key='seed', Body=b'data')
        self.provision('--bucket', BUCKET, '--read-only')
        key = self.held(NEW)
        self.assertTrue(self.s3_ok(key, 'get_object', Bucket=BUCKET, Key='seed'))
        self.assertTrue(self.rig.key_works_on_s3(key, BUCKET))
        self.assertFalse(self.s3_ok(key, 'put_object', Bucket=BUCKET, Key='new', Body=b'x'))

    def test_prefix_limits_objects(self):
        self.rig.s3().put_object(Bucket=BUCKET, Key='data/seed', Body=b'data')
        self.rig.s3().put_object(Bucket=BUCKET, Key='other/seed', Body=b'data')
        self.provision('--bucket', BUCKET, '--prefix', 'data/')
        key = self.held(NEW)
        self.assertTrue(self.s3_ok(key, 'put_object', Bucket=BUCKET, Key='data/new', Body=b'x'))
        self.assertTrue(self.s3_ok(key, 'get_object', Bucket=BUCKET, Key='data/seed'))
        self.assertFalse(self.s3_ok(key, 'put_object', Bucket=BUCKET, Key='other/new', Body=b'x'))
        self.assertFalse(self.s3_ok(key, 'get_object', Bucket=BUCKET, Key='other/seed'))
        self.assertTrue(self.s3_ok(key, 'list_objects_v2', Bucket=BUCKET, Prefix='data'))
        # Not checked against moto: the s3:prefix condition on ListBucket.
        # moto's policy engine ignores conditions (a listing without any
        # prefix is allowed there), and this moto refuses a boto3
        # ListObjectsV2 whose Prefix contains '/' with SignatureDoesNotMatch
        # (seen here with the provisioned key; not a keyrotd request). The policy
        # document carries the condition (test_print_policy_calls_nothing).

    def test_untagged_existing_user_is_refused(self):
        legacy = self.rig.create_s3_user('legacy-bot', [BUCKET])
        proxy = self.rig.start_proxy()
        p = self.provision('--bucket', BUCKET, user='legacy-bot', endpoint=proxy.endpoint, rc=1)
        self.assertIn('not tagged managed-by=keyrotd', p.stderr)
        self.assertEqual(proxy.mutations(), [])
        # Even with --take-over: its key is not keyrotd's (adopt first),
        # and that is found before anything changes.
        p = self.provision('--bucket', BUCKET, '--take-over', user='legacy-bot', endpoint=proxy.endpoint, rc=1)
        self.assertIn('keyrotctl adopt legacy-bot', p.stderr)
        self.assertEqual(proxy.mutations(), [])
        self.assertEqual(self.rig.iam().list_user_tags(UserName='legacy-bot')['Tags'], [])
        self.assertEqual([k['id'] for k in self.rig.list_keys('legacy-bot')], [legacy.access_key_id])

    def test_take_over_of_a_keyless_user(self):
        self.rig.iam().create_user(UserName='bare-bot')
        self.provision('--bucket', BUCKET, user='bare-bot', rc=1)
        p = self.provision('--bucket', BUCKET, '--take-over', user='bare-bot')
        self.assertIn('taken over', p.stdout)
        key = self.held('bare-bot')
        self.assertTrue(self.rig.key_works_on_s3(key, BUCKET))
        # Tagged now: no --take-over needed again, and nothing changes.
        self.assertIn('nothing changed', self.provision('--bucket', BUCKET, user='bare-bot').stdout)

    def test_inventory_user_gets_its_targets(self):
        self.users = (NEW,)
        self.write_inventory()
        # The inventory verifies on BUCKET: a policy without it could never pass.
        self.assertIn('not among --bucket', self.provision('--bucket', 'other-bucket', rc=2).stderr)
        p = self.provision('--bucket', BUCKET)
        key = self.held(NEW)
        self.no_secret_in(p, key)
        self.assertIn('target(s) written', p.stdout)
        for c in self.target_keys(NEW):
            self.assertEqual(c, key)
        # keyrotd rotates it like any adopted key.
        r = self.keyrotd('--once', '--force')
        self.assertEqual(r.returncode, 0, r.stderr)
        new = self.held(NEW)
        self.assertNotEqual(new, key)
        self.assertTrue(self.rig.key_works_on_s3(new, BUCKET))


if __name__ == '__main__':
    unittest.main()

# SPDX-License-Identifier: MIT
"""keyrotd's AWS client core against moto with authentication enforced,
directly and through the fault proxy.  The C side is driven through
tests/aws-tool (one operation per run, a JSON line per call); outcomes are
checked with boto3 as an independent client."""

import http.server
import json
import threading
import unittest
import urllib.parse

from rig import RigTestCase, Creds, build_path, meson_option
from faultproxy import Next, Rate


class AwsClientCase(RigTestCase):
    def setUp(self):
        super().setUp()
        self.bucket = self.rig.create_bucket('media-bucket')
        self.other = self.rig.create_bucket('other-bucket')
        self.user_creds = self.rig.create_s3_user('media-bot', [self.bucket])

    def tool(self, *args, creds=None, endpoint=None, as_creds=None, expect_ok=True, extra_env=None):
        env = self.rig.env(creds, endpoint, **(extra_env or {}))
        argv = [build_path('tests/aws-tool')]
        if as_creds is not None:
            env['AWS_TEST_KEY_ID'] = as_creds.access_key_id
            env['AWS_TEST_SECRET'] = as_creds.secret_access_key
            argv.append('--as-env')
        argv += list(args)
        p = self.rig.run(argv, env=env)
        self.assertIn(p.returncode, (0, 1), 'aws-tool usage error: %s' % p.stderr)
        lines = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
        self.assertTrue(lines, 'aws-tool printed nothing; stderr: %s' % p.stderr)
        if expect_ok is not None:
            for res in lines:
                self.assertEqual(res['ok'], expect_ok, res)
        return lines if len(lines) > 1 else lines[0]


class TestOperations(AwsClientCase):
    """Every operation of the client core, signed and policy-checked by moto."""

    def test_get_user_self(self):
        res = self.tool('get-user')
        self.assertEqual(res['user'], 'keyrotd-admin')
        self.assertTrue(res['arn'].endswith(':user/keyrotd-admin'))
        self.assertTrue(res['request_id'])

    def test_wrong_secret_is_refused(self):
        bad = Creds(self.rig.admin.access_key_id, 'x' * 40)
        res = self.tool('get-user', creds=bad, expect_ok=False)
        self.assertEqual(res['error_code'], 'SignatureDoesNotMatch')
        self.assertEqual(res['attempts'], 1, 'an auth failure without skew is not retried')

    def test_created_secret_is_not_left_in_the_heap(self):
        # libcurl reads CreateAccessKey's answer into its own heap buffer;
        # it wipes what it frees, and everything else of ours is secure
        # memory. The canary (a freed, unwiped block) proves the scan sees
        # freed memory at all.
        res = self.tool('--scan-heap', 'create-key', 'media-bot')
        if res['canary_in_heap'] is False and meson_option('b_sanitize') != 'none':
            self.skipTest('the sanitizer\'s allocator keeps its heap outside [heap]')
        self.assertIs(res['canary_in_heap'], True, res)
        self.assertIs(res['secret_in_heap'], False, res)

    def test_create_list_update_delete_key(self):
        created = self.tool('create-key', 'media-bot')
        self.assertTrue(created['id'].startswith('AKIA'))
        self.assertEqual(len(created['secret']), 40)
        self.assertEqual(created['attempts'], 1)

        listed = self.tool('list-keys', 'media-bot')
        ids = {k['id']: k['status'] for k in listed['keys']}
        self.assertEqual(ids, {self.user_creds.access_key_id: 'Active', created['id']: 'Active'})
        boto_ids = {k['id'] for k in self.rig.list_keys('media-bot')}
        self.assertEqual(set(ids), boto_ids)
        for k in listed['keys']:
            self.assertEqual(k['user'], 'media-bot')
            self.assertGreater(k['created'], 1_700_000_000)

        # The new key works on S3 (checked by boto3, not by our client).
        new = Creds(created['id'], created['secret'])
        self.assertTrue(self.rig.key_works_on_s3(new, self.bucket))

        self.tool('update-key', 'media-bot', created['id'], 'Inactive')
        status = {k['id']: k['status'] for k in self.rig.list_keys('media-bot')}
        self.assertEqual(status[created['id']], 'Inactive')

        self.tool('delete-key', 'media-bot', created['id'])
        self.assertEqual([k['id'] for k in self.rig.list_keys('media-bot')], [self.user_creds.access_key_id])

    def test_third_key_is_limit_exceeded_and_not_retried(self):
        self.tool('create-key', 'media-bot')
        res = self.tool('create-key', 'media-bot', expect_ok=False)
        self.assertEqual(res['error_code'], 'LimitExceeded')
        self.assertEqual(res['attempts'], 1)
        self.assertEqual(len(self.rig.list_keys('media-bot')), 2)

    def test_last_used_and_user_calls(self):
        res = self.tool('last-used', self.user_creds.access_key_id)
        self.assertEqual(res['user'], 'media-bot')
        self.rig.s3(self.user_creds).list_objects_v2(Bucket=self.bucket)
        res = self.tool('last-used', self.user_creds.access_key_id)
        self.assertGreater(res['last_used'], 0)

        res = self.tool('create-user', 'new-bot', 'managed-by', 'keyrotd')
        self.assertEqual(res['user'], 'new-bot')
        tags = self.rig.iam().list_user_tags(UserName='new-bot')['Tags']
        self.assertEqual(tags, [{'Key': 'managed-by', 'Value': 'keyrotd'}])
        doc = json.dumps({'Version': '2012-10-17', 'Statement': [
            {'Effect': 'Allow', 'Action': 's3:ListBucket', 'Resource': 'arn:aws:s3:::other-bucket'}]})
        self.tool('put-policy', 'new-bot', 's3-access', doc)
        got = self.rig.iam().get_user_policy(UserName='new-bot', PolicyName='s3-access')['PolicyDocument']
        self.assertEqual(got['Statement'][0]['Resource'], 'arn:aws:s3:::other-bucket')

    def test_s3_checks_with_the_users_key(self):
        c = self.user_creds
        self.assertEqual(self.tool('s3-list', self.bucket, as_creds=c)['key_count'], 0)
        self.tool('s3-put', self.bucket, 'probe/a b.txt', 'hello', as_creds=c)
        body = self.rig.s3().get_object(Bucket=self.bucket, Key='probe/a b.txt')['Body'].read()
        self.assertEqual(body, b'hello')
        self.tool('s3-get', self.bucket, 'probe/a b.txt', as_creds=c)
        self.tool('--fresh', 's3-list', self.bucket, as_creds=c)
        self.rig.s3().put_object(Bucket=self.bucket, Key='empty', Body=b'')
        self.tool('s3-get', self.bucket, 'empty', as_creds=c)  # 416 still proves access
        self.assertEqual(self.tool('s3-list', self.bucket, as_creds=c)['key_count'], 1)  # max-keys=1

    def test_s3_only_user_is_denied_elsewhere(self):
        c = self.user_creds
        res = self.tool('s3-list', self.other, as_creds=c, expect_ok=False)
        self.assertEqual(res['error_code'], 'AccessDenied')
        self.assertEqual(res['attempts'], 1)
        res = self.tool('list-keys', 'media-bot', as_creds=c, expect_ok=False)
        self.assertEqual(res['error_code'], 'AccessDenied')

    def test_deleted_key_is_invalid(self):
        created = self.tool('create-key', 'media-bot')
        self.tool('delete-key', 'media-bot', created['id'])
        res = self.tool('s3-list', self.bucket, as_creds=Creds(created['id'], created['secret']), expect_ok=False)
        self.assertEqual(res['error_code'], 'InvalidAccessKeyId')


class TestFaults(AwsClientCase):
    """The transport's retry policy, through the fault proxy."""

    def test_throttling_is_retried_within_budget(self):
        proxy = self.rig.start_proxy(throttle=Next(2, service='iam'))
        res = self.tool('list-keys', 'media-bot', endpoint=proxy.endpoint)
        self.assertEqual(res['attempts'], 3)
        self.assertEqual(proxy.stats()['faults']['throttle'], 2)

    def test_s3_slowdown_and_5xx_are_retried(self):
        proxy = self.rig.start_proxy(throttle=Next(1, service='s3'), error503=Next(1, service='s3'))
        res = self.tool('s3-list', self.bucket, as_creds=self.user_creds, endpoint=proxy.endpoint)
        self.assertEqual(res['attempts'], 3)
        proxy.configure(error500=Next(1))
        res = self.tool('get-user', endpoint=proxy.endpoint)
        self.assertEqual(res['attempts'], 2)

    def test_gives_up_after_five_attempts(self):
        proxy = self.rig.start_proxy(throttle=Rate(1.0, service='iam'))
        res = self.tool('list-keys', 'media-bot', endpoint=proxy.endpoint, expect_ok=False)
        self.assertEqual(res['error_code'], 'Throttling')
        self.assertEqual(res['attempts'], 5)

    def test_connection_resets_are_retried(self):
        proxy = self.rig.start_proxy(reset=Next(2))
        res = self.tool('get-user', endpoint=proxy.endpoint)
        self.assertEqual(res['attempts'], 3)
        proxy.configure(reset=Rate(1.0))
        res = self.tool('get-user', endpoint=proxy.endpoint, expect_ok=False)
        self.assertEqual(res['attempts'], 5)
        self.assertGreater(res['errno'], 0)

    def test_create_access_key_is_never_blindly_retried(self):
        proxy = self.rig.start_proxy(reset=Next(1, action='CreateAccessKey', phase='after'))
        res = self.tool('create-key', 'media-bot', endpoint=proxy.endpoint, expect_ok=False)
        self.assertEqual(res['attempts'], 1)
        # The create happened although its answer was lost: the caller must reconcile.
        self.assertEqual(len(self.rig.list_keys('media-bot')), 2)

    def test_non_retryable_errors_are_not_retried(self):
        proxy = self.rig.start_proxy()
        res = self.tool('s3-list', self.other, as_creds=self.user_creds, endpoint=proxy.endpoint, expect_ok=False)
        self.assertEqual(res['attempts'], 1)
        self.assertEqual(len([e for e in proxy.log() if e.service == 's3']), 1)

    def test_retry_budget_runs_out(self):
        # Every IAM call throttled: each call spends 4 retries (20 tokens) of
        # the 500-token budget, so after 25 calls retries stop.
        proxy = self.rig.start_proxy(throttle=Rate(1.0, service='iam'))
        results = self.tool('--repeat', '60', '--max-backoff-ms', '5', 'get-user', endpoint=proxy.endpoint,
                            expect_ok=False)
        attempts = [r['attempts'] for r in results]
        self.assertEqual(attempts[:25], [5] * 25)
        self.assertEqual(attempts[25:], [1] * 35)

    def test_slow_answer_times_out(self):
        proxy = self.rig.start_proxy(slow=3.0)
        res = self.tool('--max-attempts', '1', '--timeout-ms', '500', 'get-user', endpoint=proxy.endpoint,
                        expect_ok=False)
        self.assertEqual(res['errno'], 110)  # ETIMEDOUT

    def test_clock_skew_is_corrected(self):
        proxy = self.rig.start_proxy(check_skew=True)
        res = self.tool('--clock-offset', '-3600', 'get-user', endpoint=proxy.endpoint)
        self.assertEqual(res['attempts'], 2)
        self.assertLess(abs(res['skew'] - 3600), 5)
        self.assertEqual(proxy.stats()['faults'].get('skew', 0), 1)


class FakePagingIAM(http.server.BaseHTTPRequestHandler):
    """Answers ListAccessKeys in two pages, as AWS does for long lists
    (moto ignores MaxItems and never truncates)."""

    bodies = []
    PAGE = ('<ListAccessKeysResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
            '<ListAccessKeysResult><AccessKeyMetadata><member><UserName>bot</UserName>'
            '<AccessKeyId>%s</AccessKeyId><Status>Active</Status>'
            '<CreateDate>2026-11-01T10:00:00Z</CreateDate></member></AccessKeyMetadata>'
            '<IsTruncated>%s</IsTruncated>%s</ListAccessKeysResult>'
            '<ResponseMetadata><RequestId>r-%d</RequestId></ResponseMetadata></ListAccessKeysResponse>')

    def do_POST(self):
        body = self.rfile.read(int(self.headers['Content-Length'])).decode()
        form = urllib.parse.parse_qs(body)
        self.bodies.append(form)
        if 'Marker' not in form:
            page = self.PAGE % ('AKIAPAGEONE000000001', 'true', '<Marker>next+page/1=</Marker>', 1)
        elif form['Marker'] == ['next+page/1=']:
            page = self.PAGE % ('AKIAPAGETWO000000002', 'false', '', 2)
        else:
            self.send_response(400)
            self.end_headers()
            return
        data = page.encode()
        self.send_response(200)
        self.send_header('Content-Type', 'text/xml')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class TestPagination(RigTestCase):
    def test_list_follows_marker_to_the_last_page(self):
        FakePagingIAM.bodies = []
        server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), FakePagingIAM)
        t = threading.Thread(target=server.serve_forever, daemon=True)
        t.start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        endpoint = 'http://127.0.0.1:%d' % server.server_address[1]
        p = self.rig.run([build_path('tests/aws-tool'), 'list-keys', 'bot'], env=self.rig.env(endpoint=endpoint))
        self.assertEqual(p.returncode, 0, p.stderr)
        res = json.loads(p.stdout)
        self.assertEqual([k['id'] for k in res['keys']], ['AKIAPAGEONE000000001', 'AKIAPAGETWO000000002'])
        self.assertEqual(len(FakePagingIAM.bodies), 2)
        self.assertEqual(FakePagingIAM.bodies[1]['UserName'], ['bot'])


if __name__ == '__main__':
    unittest.main()

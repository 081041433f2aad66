# SPDX-License-Identifier: MIT
"""The rig tests itself: moto's auth window, the fixture, every fault-proxy
behaviour, through boto3 and the AWS CLI, and the TAP runner."""

import hashlib
import http.client
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import unittest
import urllib.error
import urllib.request

import botocore.exceptions
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from rig import (ADMIN_USER, Creds, ManualClock, MotoServer, Next, Rate,
                 RigTestCase,
                 ClientError, error_code, stop_process, wait_until)

RETRYING = {'mode': 'standard', 'total_max_attempts': 4}


class AuthWindow(RigTestCase):
    def test_bogus_key_refused_admin_accepted(self):
        bogus = Creds('AKIAIOSFODNN7EXAMPLE', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY')
        for _ in range(2):  # no leftover window: refused every time
            with self.assertRaises(ClientError) as cm:
                self.rig.iam(bogus).list_users()
            self.assertEqual(error_code(cm.exception), 'InvalidClientTokenId')
            with self.assertRaises(ClientError) as cm:
                self.rig.s3(bogus).list_buckets()
            self.assertEqual(error_code(cm.exception), 'InvalidAccessKeyId')
        self.rig.iam().get_user(UserName=ADMIN_USER)

    def test_wrong_secret_signature_mismatch(self):
        wrong = Creds(self.rig.admin.access_key_id, 'x' * 40)
        with self.assertRaises(ClientError) as cm:
            self.rig.iam(wrong).get_user(UserName=ADMIN_USER)
        self.assertEqual(error_code(cm.exception), 'SignatureDoesNotMatch')
        with self.assertRaises(ClientError) as cm:
            self.rig.s3(wrong).list_buckets()
        self.assertEqual(error_code(cm.exception), 'SignatureDoesNotMatch')

    def test_fixture_state(self):
        users = [u['UserName'] for u in self.rig.iam().list_users()['Users']]
        self.assertEqual(users, [ADMIN_USER])
        keys = self.rig.list_keys(ADMIN_USER)
        self.assertEqual([k['id'] for k in keys], [self.rig.admin.access_key_id])
        self.assertEqual(keys[0]['status'], 'Active')
        self.assertEqual(self.rig.iam().list_user_policies(
                UserName=ADMIN_USER)['PolicyNames'], ['keyrotd-admin'])
        self.assertEqual(self.rig.iam().list_attached_user_policies(
                UserName=ADMIN_USER)['AttachedPolicies'], [])
        self.assertNotIn('secret', repr(self.rig.admin).lower().replace('<secret>', ''))

    def test_admin_policy_is_not_iam_star(self):
        # The inline policy is enforced: an action it does not grant fails.
        with self.assertRaises(ClientError) as cm:
            self.rig.iam().create_role(RoleName='r', AssumeRolePolicyDocument='{}')
        self.assertEqual(error_code(cm.exception), 'AccessDenied')

    def test_each_rig_starts_empty(self):
        self.rig.create_bucket('left-over')
        old_admin = self.rig.admin
        from rig import Rig
        second = Rig(self.moto)
        self.addCleanup(second.close)
        self.assertEqual(second.s3().list_buckets()['Buckets'], [])
        self.assertNotEqual(second.admin, old_admin)
        with self.assertRaises(ClientError) as cm:
            second.iam(old_admin).list_users()
        self.assertEqual(error_code(cm.exception), 'InvalidClientTokenId')


class S3User(RigTestCase):
    def setUp(self):
        super().setUp()
        self.rig.create_bucket('app-data')
        self.rig.create_bucket('other-data')
        self.app = self.rig.create_s3_user('app', ['app-data'])
        self.proxy = self.rig.start_proxy()

    def test_scoped_to_its_bucket(self):
        for endpoint in (None, self.proxy.endpoint):
            with self.subTest(via='proxy' if endpoint else 'moto'):
                s3 = self.rig.s3(self.app, endpoint)
                s3.put_object(Bucket='app-data', Key='k', Body=b'v')
                self.assertEqual(s3.get_object(Bucket='app-data', Key='k')
                                 ['Body'].read(), b'v')
                self.assertTrue(self.rig.key_works_on_s3(self.app, 'app-data', endpoint))
                self.assertFalse(self.rig.key_works_on_s3(self.app, 'other-data', endpoint))
                with self.assertRaises(ClientError) as cm:
                    s3.list_objects_v2(Bucket='other-data')
                self.assertEqual(error_code(cm.exception), 'AccessDenied')
                with self.assertRaises(ClientError) as cm:
                    self.rig.iam(self.app, endpoint).list_users()
                self.assertEqual(error_code(cm.exception), 'AccessDenied')

    def test_read_only_user(self):
        ro = self.rig.create_s3_user('reader', ['app-data'], read_only=True)
        s3 = self.rig.s3(ro)
        s3.list_objects_v2(Bucket='app-data')
        with self.assertRaises(ClientError) as cm:
            s3.put_object(Bucket='app-data', Key='k', Body=b'v')
        self.assertEqual(error_code(cm.exception), 'AccessDenied')
        doc = self.rig.iam().get_user_policy(UserName='reader', PolicyName='s3-access')
        actions = doc['PolicyDocument']['Statement'][0]['Action']
        self.assertEqual(sorted(actions), ['s3:GetObject', 's3:ListBucket'])

    def test_list_keys(self):
        k2 = self.rig.iam().create_access_key(UserName='app')['AccessKey']['AccessKeyId']
        self.rig.iam().update_access_key(UserName='app', AccessKeyId=k2, Status='Inactive')
        keys = self.rig.list_keys('app')
        self.assertEqual([(k['id'], k['status']) for k in keys],
                         [(self.app.access_key_id, 'Active'), (k2, 'Inactive')])
        self.assertLessEqual(keys[0]['created'], keys[1]['created'])


def _signed(rig, method, url, body=b'', headers=None, service='iam', creds=None):
    req = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    c = creds or rig.admin
    SigV4Auth(Credentials(c.access_key_id, c.secret_access_key), service,
              'us-east-1').add_auth(req)
    return req


def _raw_request(host, req, path, body=b''):
    head = '%s %s HTTP/1.1\r\nHost: %s\r\n' % (req.method, path, host)
    head += ''.join('%s: %s\r\n' % kv for kv in req.headers.items()) + '\r\n'
    return head.encode() + body


def _recv_response(sock):
    """Read one response with Content-Length from a raw socket."""
    data = b''
    while b'\r\n\r\n' not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b'\r\n\r\n')
    length = 0
    for line in head.split(b'\r\n')[1:]:
        k, _, v = line.partition(b':')
        if k.strip().lower() == b'content-length':
            length = int(v)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head.decode('latin-1'), body


class ProxyWire(RigTestCase):
    """Forwarding is byte-identical (else SigV4 would fail) and the client
    side speaks proper HTTP/1.1."""

    def setUp(self):
        super().setUp()
        self.rig.create_bucket('wire')
        self.proxy = self.rig.start_proxy()
        self.host = '127.0.0.1:%d' % self.proxy.port

    def test_odd_paths_queries_and_bodies(self):
        s3 = self.rig.s3(endpoint=self.proxy.endpoint)
        body = bytes(range(256)) * 64
        # moto's own SigV4 check fails for keys with characters other than
        # unreserved ones, '/' and ' ' (measured), even without the proxy.
        keys = ['plain', 'a b/c d', 'x~y-z_.0', 'a+b']
        with self.assertRaises(ClientError) as cm:
            self.rig.s3().put_object(Bucket='wire', Key=keys.pop(), Body=b'')
        self.assertEqual(error_code(cm.exception), 'SignatureDoesNotMatch')
        for k in keys:
            s3.put_object(Bucket='wire', Key=k, Body=body)
        for k in keys:
            self.assertEqual(s3.get_object(Bucket='wire', Key=k)['Body'].read(), body)
            self.assertEqual(s3.head_object(Bucket='wire', Key=k)['ContentLength'], len(body))
        # Query values with ' ', '+', '&', '=' are fine; with '/', '*' or
        # non-ASCII moto's SigV4 check fails (measured, without the proxy too).
        got = s3.list_objects_v2(Bucket='wire', Prefix='a ', Delimiter=' ')
        self.assertEqual([p['Prefix'] for p in got['CommonPrefixes']], ['a b/c '])
        with self.assertRaises(ClientError) as cm:
            self.rig.s3().list_objects_v2(Bucket='wire', Delimiter='/')
        self.assertEqual(error_code(cm.exception), 'SignatureDoesNotMatch')
        got = s3.list_objects_v2(Bucket='wire', Prefix='a&b=c+d e')
        self.assertEqual(got['KeyCount'], 0)
        listed = s3.list_objects_v2(Bucket='wire', MaxKeys=2, EncodingType='url')
        self.assertEqual(listed['KeyCount'], 2)
        self.assertEqual(self.proxy.stats()['errors'], [])

    def test_presigned_url_classified(self):
        # moto_server answers 500 to any presigned URL while authentication
        # is enforced (measured), so only the classification is checked.
        url = self.rig.s3(endpoint=self.proxy.endpoint,
                          signature_version='s3v4').generate_presigned_url(
                'get_object', Params={'Bucket': 'wire', 'Key': 'pre'}, ExpiresIn=60)
        with self.assertRaises(urllib.error.HTTPError):
            urllib.request.urlopen(url, timeout=10).close()
        e = self.proxy.log()[-1]
        self.assertEqual((e.service, e.key_id, e.action),
                         ('s3', self.rig.admin.access_key_id, 'GET /wire/pre'))

    def test_keep_alive_head_and_chunked(self):
        conn = http.client.HTTPConnection(self.host, timeout=10)
        self.addCleanup(conn.close)
        body = b'Action=ListUsers&Version=2010-05-08'
        form = {'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8'}
        for _ in range(3):
            req = _signed(self.rig, 'POST', self.proxy.endpoint + '/', body, form)
            conn.request('POST', '/', body=body, headers=dict(req.headers.items()))
            resp = conn.getresponse()
            self.assertEqual(resp.status, 200)
            self.assertIn(b'keyrotd-admin', resp.read())
            self.assertEqual(resp.getheader('Connection'), 'keep-alive')
        # HEAD on the same connection: upstream Content-Length kept, no body.
        self.rig.s3().put_object(Bucket='wire', Key='h', Body=b'12345')
        req = _signed(self.rig, 'HEAD', self.proxy.endpoint + '/wire/h',
                      headers={'x-amz-content-sha256': hashlib.sha256(b'').hexdigest()},
                      service='s3')
        conn.request('HEAD', '/wire/h', headers=dict(req.headers.items()))
        resp = conn.getresponse()
        self.assertEqual((resp.status, resp.getheader('Content-Length')), (200, '5'))
        resp.read()
        # A chunked request body is forwarded as sent.
        req = _signed(self.rig, 'POST', self.proxy.endpoint + '/', body, form)
        conn.putrequest('POST', '/', skip_accept_encoding=True)
        for k, v in req.headers.items():
            conn.putheader(k, v)
        conn.putheader('Transfer-Encoding', 'chunked')
        conn.endheaders()
        conn.send(b'%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n'
                  % (10, body[:10], len(body) - 10, body[10:]))
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200, resp.read())
        resp.read()
        st = self.proxy.stats()
        self.assertEqual(st['connections'], 1)
        self.assertEqual(st['requests'][('iam', 'ListUsers')], 4)
        self.assertEqual(st['errors'], [])

    def test_expect_100_continue(self):
        data = b'z' * 4096
        req = _signed(self.rig, 'PUT', self.proxy.endpoint + '/wire/big', data,
                      {'x-amz-content-sha256': hashlib.sha256(data).hexdigest(),
                       'Expect': '100-continue', 'Content-Length': str(len(data))},
                      service='s3')
        with socket.create_connection(('127.0.0.1', self.proxy.port), 10) as s:
            s.sendall(_raw_request(self.host, req, '/wire/big'))
            self.assertEqual(s.recv(100), b'HTTP/1.1 100 Continue\r\n\r\n')
            s.sendall(data)
            head, _ = _recv_response(s)
        self.assertTrue(head.startswith('HTTP/1.1 200'), head)
        got = self.rig.s3().get_object(Bucket='wire', Key='big')['Body'].read()
        self.assertEqual(got, data)

    def test_moto_api_passes_unfaulted(self):
        self.proxy.configure(error500=1.0, throttle=1.0, reset=1.0)
        with urllib.request.urlopen(self.proxy.endpoint + '/moto-api/data.json',
                                    timeout=10) as r:
            self.assertIn('iam', json.loads(r.read()))
        self.assertEqual(self.proxy.log()[-1].service, 'moto')
        self.assertEqual(self.proxy.stats()['faults'], {})


class Throttling(RigTestCase):
    def setUp(self):
        super().setUp()
        self.rig.create_bucket('thr')
        self.proxy = self.rig.start_proxy()
        self.ep = self.proxy.endpoint

    def test_iam_throttling_document(self):
        self.proxy.configure(throttle=Next(1, service='iam'))
        with self.assertRaises(ClientError) as cm:
            self.rig.iam(endpoint=self.ep).list_users()
        r = cm.exception.response
        self.assertEqual(r['ResponseMetadata']['HTTPStatusCode'], 400)
        self.assertEqual(r['Error'], {'Type': 'Sender', 'Code': 'Throttling',
                                      'Message': 'Rate exceeded'})
        self.assertEqual(r['ResponseMetadata']['RequestId'],
                         r['ResponseMetadata']['HTTPHeaders']['x-amzn-requestid'])
        self.rig.iam(endpoint=self.ep).list_users()  # only the next one
        e = self.proxy.log()
        self.assertEqual([(x.action, x.status, x.fault, x.forwarded) for x in e],
                         [('ListUsers', 400, 'throttle', False),
                          ('ListUsers', 200, None, True)])

    def test_s3_slowdown_document(self):
        self.proxy.configure(throttle=Next(1, service='s3'))
        self.rig.iam(endpoint=self.ep).list_users()  # IAM untouched
        with self.assertRaises(ClientError) as cm:
            self.rig.s3(endpoint=self.ep).list_objects_v2(Bucket='thr')
        r = cm.exception.response
        self.assertEqual(r['ResponseMetadata']['HTTPStatusCode'], 503)
        self.assertEqual(r['Error']['Code'], 'SlowDown')
        self.assertEqual(r['ResponseMetadata']['RequestId'],
                         r['ResponseMetadata']['HTTPHeaders']['x-amz-request-id'])
        self.assertIn('x-amz-id-2', r['ResponseMetadata']['HTTPHeaders'])

    def test_survived_with_standard_retries(self):
        self.proxy.configure(throttle=[Next(1, service='iam'), Next(1, service='s3')])
        self.rig.iam(endpoint=self.ep, retries=RETRYING).list_users()
        self.rig.s3(endpoint=self.ep, retries=RETRYING).list_objects_v2(Bucket='thr')
        self.assertEqual(self.proxy.stats()['faults'], {'throttle': 2})
        self.assertEqual(self.proxy.count(forwarded=True), 2)

    def test_rate_is_seeded_and_reproducible(self):
        def run():
            self.proxy.configure(throttle=Rate(0.5, action='GetUser'), seed=42)
            iam = self.rig.iam(endpoint=self.ep)
            out = []
            for _ in range(30):
                try:
                    iam.get_user(UserName=ADMIN_USER)
                    out.append(True)
                except ClientError as e:
                    self.assertEqual(error_code(e), 'Throttling')
                    out.append(False)
            return out
        first = run()
        self.assertIn(True, first)
        self.assertIn(False, first)
        self.assertEqual(self.proxy.stats()['faults']['throttle'], first.count(False))
        self.assertEqual(run(), first)
        self.rig.iam(endpoint=self.ep).list_users()  # action filter

    def test_filters_by_action_and_key(self):
        app = self.rig.create_s3_user('app', ['thr'])
        self.proxy.configure(throttle=[Next(5, action='CreateAccessKey'),
                                       Next(5, service='s3', key_id=app.access_key_id)])
        self.rig.iam(endpoint=self.ep).list_users()
        self.rig.s3(endpoint=self.ep).list_objects_v2(Bucket='thr')  # admin key
        with self.assertRaises(ClientError):
            self.rig.iam(endpoint=self.ep).create_access_key(UserName='app')
        with self.assertRaises(ClientError):
            self.rig.s3(app, self.ep).list_objects_v2(Bucket='thr')
        self.assertEqual(self.proxy.stats()['faults'], {'throttle': 2})


class ServerErrorsResetsSlowness(RigTestCase):
    def setUp(self):
        super().setUp()
        self.rig.create_bucket('err')
        self.proxy = self.rig.start_proxy()
        self.ep = self.proxy.endpoint

    def test_500_and_503(self):
        cases = [
            ('error500', 'iam', 500, 'InternalFailure'),
            ('error503', 'iam', 503, 'ServiceUnavailable'),
            ('error500', 's3', 500, 'InternalError'),
            ('error503', 's3', 503, 'ServiceUnavailable'),
        ]
        for kind, service, status, code in cases:
            with self.subTest(kind=kind, service=service):
                self.proxy.configure(**{kind: Next(1, service=service)})
                with self.assertRaises(ClientError) as cm:
                    if service == 'iam':
                        self.rig.iam(endpoint=self.ep).list_users()
                    else:
                        self.rig.s3(endpoint=self.ep).list_objects_v2(Bucket='err')
                r = cm.exception.response
                self.assertEqual(r['ResponseMetadata']['HTTPStatusCode'], status)
                self.assertEqual(r['Error']['Code'], code)
        # Retried away by a standard-mode client.
        self.proxy.configure(error503=Next(1))
        self.rig.iam(endpoint=self.ep, retries=RETRYING).list_users()

    def test_head_error_has_no_body(self):
        self.rig.s3().put_object(Bucket='err', Key='k', Body=b'abc')
        self.proxy.configure(error503=Next(1))
        with self.assertRaises(ClientError) as cm:
            self.rig.s3(endpoint=self.ep).head_object(Bucket='err', Key='k')
        self.assertEqual(cm.exception.response['ResponseMetadata']['HTTPStatusCode'], 503)
        self.assertEqual(self.rig.s3(endpoint=self.ep).head_object(
                Bucket='err', Key='k')['ContentLength'], 3)

    def test_after_phase_executes_in_moto(self):
        # The answer is lost, the effect is not: as when AWS did the work.
        self.proxy.configure(error500=Next(1, action='CreateUser', phase='after'))
        with self.assertRaises(ClientError):
            self.rig.iam(endpoint=self.ep).create_user(UserName='ghost')
        self.rig.iam().get_user(UserName='ghost')
        e = self.proxy.log(action='CreateUser')[0]
        self.assertEqual((e.status, e.upstream_status, e.fault, e.forwarded),
                         (500, 200, 'error500', True))

    def test_connection_reset(self):
        self.proxy.configure(reset=Next(1))
        iam = self.rig.iam(endpoint=self.ep)
        with self.assertRaises(botocore.exceptions.ConnectionClosedError):
            iam.list_users()
        iam.list_users()  # same client, new connection
        self.proxy.configure(reset=Next(1))
        self.rig.iam(endpoint=self.ep, retries=RETRYING).list_users()
        self.assertEqual(self.proxy.stats()['faults'], {'reset': 2})

    def test_reset_is_an_rst(self):
        self.proxy.configure(reset=Next(1))
        body = b'Action=ListUsers&Version=2010-05-08'
        req = _signed(self.rig, 'POST', self.ep + '/', body,
                      {'Content-Type': 'application/x-www-form-urlencoded'})
        with socket.create_connection(('127.0.0.1', self.proxy.port), 10) as s:
            s.sendall(_raw_request('127.0.0.1:%d' % self.proxy.port, req, '/', body))
            with self.assertRaises(ConnectionResetError):
                s.recv(100)

    def test_reset_after_create_access_key_loses_the_secret(self):
        app = self.rig.create_s3_user('app', ['err'])
        self.proxy.configure(reset=Next(1, action='CreateAccessKey', phase='after'))
        with self.assertRaises(botocore.exceptions.ConnectionClosedError):
            self.rig.iam(endpoint=self.ep).create_access_key(UserName='app')
        keys = self.rig.list_keys('app')
        self.assertEqual(len(keys), 2)
        self.assertEqual(self.proxy.created_keys(), [keys[1]['id']])
        self.assertNotEqual(keys[1]['id'], app.access_key_id)

    def test_slow_response(self):
        self.proxy.configure(slow=Next(1, seconds=1.5))
        with self.assertRaises(botocore.exceptions.ReadTimeoutError):
            self.rig.iam(endpoint=self.ep, read_timeout=0.3).list_users()
        self.rig.iam(endpoint=self.ep, read_timeout=5).list_users()  # only one
        # A patient client gets the slow answer.
        self.proxy.configure(slow=Next(1, seconds=0.4))
        t = time.monotonic()
        self.rig.iam(endpoint=self.ep, read_timeout=5).list_users()
        self.assertGreaterEqual(time.monotonic() - t, 0.4)
        self.assertEqual(self.proxy.stats()['faults'], {'slow': 2})


class EventualConsistency(RigTestCase):
    """New keys propagate: refused at first, then intermittently, then never.

    The window logic runs on a ManualClock (deterministic, no waiting); one
    test checks that the real clock drives it the same way."""

    def setUp(self):
        super().setUp()
        self.rig.create_bucket('ec-data')
        self.rig.create_s3_user('app', ['ec-data'])

    def works(self, creds, endpoint):
        try:
            self.rig.s3(creds, endpoint).list_objects_v2(Bucket='ec-data', MaxKeys=1)
            return True
        except ClientError as e:
            self.assertEqual(error_code(e), 'InvalidAccessKeyId')
            return False

    def new_key(self, endpoint=None):
        k = self.rig.iam(endpoint=endpoint).create_access_key(UserName='app')['AccessKey']
        return Creds(k['AccessKeyId'], k['SecretAccessKey'])

    def test_window_on_manual_clock(self):
        clock = ManualClock()
        proxy = self.rig.start_proxy(clock=clock, propagation=10.0,
                                     propagation_p=0.5, propagation_always=2.0,
                                     seed=20261128)
        new = self.new_key(proxy.endpoint)
        self.assertEqual(proxy.key_created(new.access_key_id), clock())
        self.assertEqual(proxy.propagated_at(new.access_key_id), clock() + 10.0)

        # First seconds: always refused, on S3 and IAM; moto itself is kind.
        clock.advance(1.9)
        self.assertEqual([self.works(new, proxy.endpoint) for _ in range(8)], [False] * 8)
        with self.assertRaises(ClientError) as cm:
            self.rig.iam(new, proxy.endpoint).list_users()
        self.assertEqual(error_code(cm.exception), 'InvalidClientTokenId')
        self.assertTrue(self.rig.key_works_on_s3(new, 'ec-data'))

        # Rest of the window: intermittent, so one success proves nothing.
        clock.advance(0.1)
        samples = [self.works(new, proxy.endpoint) for _ in range(40)]
        self.assertIn(True, samples)
        self.assertIn(False, samples[samples.index(True):])
        clock.advance(7.9)
        samples += [self.works(new, proxy.endpoint) for _ in range(10)]
        self.assertEqual(proxy.count(key_id=new.access_key_id, fault='propagation'),
                         8 + 1 + samples.count(False))

        # After the window: never refused.
        clock.advance(0.1)
        self.assertTrue(all(self.works(new, proxy.endpoint) for _ in range(20)))
        with self.assertRaises(ClientError) as cm:
            self.rig.iam(new, proxy.endpoint).list_users()
        self.assertEqual(error_code(cm.exception), 'AccessDenied')  # moto's policy check
        # Old keys were never affected.
        self.assertTrue(self.rig.key_works_on_s3(self.rig.admin, 'ec-data', proxy.endpoint))
        self.assertEqual(proxy.created_keys(), [new.access_key_id])

    def test_window_on_real_clock(self):
        proxy = self.rig.start_proxy(propagation=1.5, propagation_always=1.5)
        new = self.new_key(proxy.endpoint)
        created = proxy.key_created(new.access_key_id)
        done = proxy.propagated_at(new.access_key_id)
        self.assertEqual(done, created + 1.5)
        self.assertFalse(self.works(new, proxy.endpoint))
        wait_until(lambda: self.works(new, proxy.endpoint), timeout=15, interval=0.1)
        self.assertTrue(self.works(new, proxy.endpoint))
        # Judge by the proxy's own timestamps, not by our timing.
        log = proxy.log(key_id=new.access_key_id)
        refused = [e for e in log if e.fault == 'propagation']
        self.assertTrue(refused)
        for e in log:
            self.assertEqual(e.fault == 'propagation', e.time < done, e)

    def test_mark_new_key(self):
        clock = ManualClock()
        proxy = self.rig.start_proxy(clock=clock, propagation=5.0,
                                     propagation_always=5.0)
        new = self.new_key()  # created directly on moto: the proxy never saw it
        self.assertTrue(self.works(new, proxy.endpoint))
        proxy.mark_new_key(new.access_key_id)
        self.assertFalse(self.works(new, proxy.endpoint))
        clock.advance(5.0)
        self.assertTrue(self.works(new, proxy.endpoint))


    def test_reactivated_key_propagates_again(self):
        """A key made Active again through the proxy gets a window of its
        own, as on AWS; one re-activated elsewhere does not."""
        clock = ManualClock()
        proxy = self.rig.start_proxy(clock=clock, propagation=5.0, propagation_always=5.0)
        key = self.new_key()
        kid = key.access_key_id
        iam = self.rig.iam(endpoint=proxy.endpoint)
        self.assertTrue(self.works(key, proxy.endpoint))
        iam.update_access_key(UserName='app', AccessKeyId=kid, Status='Inactive')
        iam.update_access_key(UserName='app', AccessKeyId=kid, Status='Active')
        self.assertFalse(self.works(key, proxy.endpoint))
        clock.advance(5.0)
        self.assertTrue(self.works(key, proxy.endpoint))
        iam.update_access_key(UserName='app', AccessKeyId=kid, Status='Active')  # Active already
        self.assertTrue(self.works(key, proxy.endpoint))


class InactiveKeys(RigTestCase):
    def setUp(self):
        super().setUp()
        self.rig.create_bucket('ia-data')
        self.app = self.rig.create_s3_user('app', ['ia-data'])
        self.kid = self.app.access_key_id
        self.proxy = self.rig.start_proxy(refuse_inactive=True)
        self.ep = self.proxy.endpoint

    def set_status(self, status, via_proxy):
        self.rig.iam(endpoint=self.ep if via_proxy else None).update_access_key(
                UserName='app', AccessKeyId=self.kid, Status=status)

    def via_proxy(self):
        return self.rig.key_works_on_s3(self.app, 'ia-data', self.ep)

    def test_inactive_refused_by_proxy_not_by_moto(self):
        self.assertTrue(self.via_proxy())
        self.set_status('Inactive', via_proxy=True)
        with self.assertRaises(ClientError) as cm:
            self.rig.s3(self.app, self.ep).list_objects_v2(Bucket='ia-data')
        self.assertEqual(error_code(cm.exception), 'InvalidAccessKeyId')
        self.assertEqual(cm.exception.response['ResponseMetadata']['HTTPStatusCode'], 403)
        # moto's gap, documented: it still serves S3 for an Inactive key.
        self.assertTrue(self.rig.key_works_on_s3(self.app, 'ia-data'))
        # On IAM, AWS says InvalidClientTokenId; moto says AccessDenied.
        with self.assertRaises(ClientError) as cm:
            self.rig.iam(self.app, self.ep).list_users()
        self.assertEqual(error_code(cm.exception), 'InvalidClientTokenId')
        with self.assertRaises(ClientError) as cm:
            self.rig.iam(self.app).list_users()
        self.assertEqual(error_code(cm.exception), 'AccessDenied')
        self.set_status('Active', via_proxy=True)
        self.assertTrue(self.via_proxy())
        self.assertEqual(self.proxy.stats()['faults'], {'inactive': 2})

    def test_status_sources(self):
        # Default source 'moto': changes made directly on moto count at once.
        self.set_status('Inactive', via_proxy=False)
        self.assertFalse(self.via_proxy())
        self.set_status('Active', via_proxy=False)
        self.assertTrue(self.via_proxy())
        # Source 'proxy': only what passed through the proxy, and overrides.
        self.proxy.configure(status_source='proxy')
        self.set_status('Inactive', via_proxy=False)
        self.assertTrue(self.via_proxy())  # the proxy cannot know
        self.proxy.set_key_status(self.kid, 'Inactive')
        self.assertFalse(self.via_proxy())
        self.set_status('Active', via_proxy=True)  # drops the override
        self.assertTrue(self.via_proxy())
        self.set_status('Inactive', via_proxy=True)
        self.assertFalse(self.via_proxy())
        # An override wins over moto's record.
        self.proxy.configure(status_source='moto')
        self.proxy.set_key_status(self.kid, 'Active')
        self.assertTrue(self.via_proxy())
        self.proxy.set_key_status(self.kid, None)
        self.assertFalse(self.via_proxy())

    def test_off_by_default_and_deleted_keys(self):
        self.proxy.configure(refuse_inactive=False)
        self.set_status('Inactive', via_proxy=True)
        self.assertTrue(self.via_proxy())
        self.rig.iam(endpoint=self.ep).delete_access_key(UserName='app',
                                                         AccessKeyId=self.kid)
        self.assertFalse(self.rig.key_works_on_s3(self.app, 'ia-data'))  # moto refuses
        self.assertFalse(self.via_proxy())


class Stats(RigTestCase):
    def test_counts_and_log(self):
        self.rig.create_bucket('st-data')
        app = self.rig.create_s3_user('app', ['st-data'])
        proxy = self.rig.start_proxy()
        iam = self.rig.iam(endpoint=proxy.endpoint)
        iam.list_access_keys(UserName='app')
        iam.list_access_keys(UserName='app')
        iam.get_access_key_last_used(AccessKeyId=app.access_key_id)
        self.rig.s3(app, proxy.endpoint).list_objects_v2(Bucket='st-data', MaxKeys=1)
        st = proxy.stats()
        self.assertEqual(st['requests'], {('iam', 'ListAccessKeys'): 2,
                                          ('iam', 'GetAccessKeyLastUsed'): 1,
                                          ('s3', 'GET /st-data'): 1})
        self.assertEqual((st['total'], st['forwarded'], st['faults']), (4, 4, {}))
        self.assertEqual(proxy.mutations(), [])  # a dry run would pass
        self.assertEqual(proxy.count(service='iam'), 3)
        self.assertEqual(proxy.count(key_id=app.access_key_id), 1)
        e = proxy.log(service='s3')[0]
        self.assertEqual((e.service, e.action, e.key_id, e.status, e.method, e.path),
                         ('s3', 'GET /st-data', app.access_key_id, 200, 'GET', '/st-data'))
        proxy.configure(error500=Next(1, action='Create*'))
        with self.assertRaises(ClientError):
            iam.create_access_key(UserName='app')   # refused before moto
        self.assertEqual(proxy.mutations(), [])
        iam.create_access_key(UserName='app')
        self.assertEqual([m.action for m in proxy.mutations()], ['CreateAccessKey'])
        self.assertEqual(proxy.stats()['faults'], {'error500': 1})
        proxy.clear_stats()
        self.assertEqual(proxy.stats()['total'], 0)
        proxy.reset_faults()
        self.assertEqual(proxy.stats()['errors'], [])


class AwsCli(RigTestCase):
    """A few checks with the real AWS CLI (about 1 s per invocation)."""

    def test_cli_through_proxy(self):
        self.rig.create_bucket('cli-data')
        app = self.rig.create_s3_user('app', ['cli-data'])
        proxy = self.rig.start_proxy(refuse_inactive=True)
        env = self.rig.env()
        self.assertEqual(env['HOME'], self.rig.home)
        self.assertFalse(os.path.exists(os.path.join(env['HOME'], '.aws')))
        self.assertEqual(env['AWS_EC2_METADATA_DISABLED'], 'true')

        proxy.configure(throttle=Next(1))
        r = self.rig.aws_cli('iam', 'list-users', endpoint=proxy.endpoint)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('Throttling', r.stderr)

        proxy.configure(throttle=Next(1))
        r = self.rig.aws_cli('iam', 'list-users', endpoint=proxy.endpoint, attempts=3)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([u['UserName'] for u in json.loads(r.stdout)['Users']],
                         [ADMIN_USER, 'app'])

        self.rig.iam().update_access_key(UserName='app', AccessKeyId=app.access_key_id,
                                         Status='Inactive')
        r = self.rig.aws_cli('s3api', 'list-objects-v2', '--bucket', 'cli-data',
                             creds=app, endpoint=proxy.endpoint)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('InvalidAccessKeyId', r.stderr)
        self.assertEqual(proxy.stats()['faults'], {'throttle': 2, 'inactive': 1})


class Lifecycle(unittest.TestCase):
    def test_moto_server_start_stop(self):
        m = MotoServer().start()
        self.addCleanup(m.stop)
        with urllib.request.urlopen(m.endpoint + '/moto-api/data.json', timeout=10):
            pass
        pid, port = m.proc.pid, m.port
        m.stop()
        self.assertIsNotNone(m.proc.returncode)
        with self.assertRaises(ProcessLookupError):
            os.kill(pid, 0)
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(('127.0.0.1', port), 2).close()

    def test_stop_process_kills_stubborn_child(self):
        p = subprocess.Popen([sys.executable, '-c',
                              'import signal,sys,time\n'
                              'signal.signal(signal.SIGTERM, signal.SIG_IGN)\n'
                              'print("ready", flush=True)\n'
                              'time.sleep(60)'],
                             stdout=subprocess.PIPE)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        self.assertEqual(p.stdout.readline(), b'ready\n')
        p.stdout.close()
        t = time.monotonic()
        self.assertEqual(stop_process(p, timeout=0.5), -9)
        self.assertLess(time.monotonic() - t, 5)


class TapRunner(unittest.TestCase):
    def test_tap_output(self):
        import tempfile
        d = tempfile.mkdtemp(prefix='rig-tap-')
        self.addCleanup(lambda: __import__('shutil').rmtree(d, ignore_errors=True))
        mod = os.path.join(d, 'test_sample.py')
        with open(mod, 'w') as f:
            f.write(textwrap.dedent('''\
                import os, subprocess, unittest
                class A(unittest.TestCase):
                    def test_pass(self):
                        print("stray stdout")
                        os.write(1, b"raw fd 1\\n")
                        subprocess.run(["echo", "child stdout"])
                    def test_fail(self):
                        self.assertEqual(1, 2)
                    @unittest.skip("not today")
                    def test_skip(self):
                        pass
                    def test_sub(self):
                        for i in range(2):
                            with self.subTest(i=i):
                                self.assertEqual(i, 0)
                    @unittest.expectedFailure
                    def test_xfail(self):
                        self.fail("known")
                class B(unittest.TestCase):
                    @classmethod
                    def setUpClass(cls):
                        raise RuntimeError("class broken")
                    def test_never(self):
                        pass
                '''))
        taprun = os.path.join(os.path.dirname(os.path.dirname(
                os.path.abspath(__file__))), 'rig', 'taprun.py')
        r = subprocess.run([sys.executable, taprun, mod], capture_output=True,
                           text=True, timeout=60)
        lines = [l for l in r.stdout.splitlines() if not l.startswith('#')]
        self.assertEqual(r.returncode, 1)
        self.assertEqual(lines, [
                'ok 1 - A.test_fail'.replace('ok', 'not ok'),
                'ok 2 - A.test_pass',
                'ok 3 - A.test_skip # SKIP not today',
                'not ok 4 - A.test_sub',
                'not ok 5 - A.test_xfail # TODO expected failure',
                'not ok 6 - setUpClass (test_sample.B)',
                '1..6'])
        self.assertIn('# AssertionError: 1 != 2', r.stdout)
        self.assertIn('# RuntimeError: class broken', r.stdout)
        for stray in ('stray stdout', 'raw fd 1', 'child stdout'):
            self.assertIn(stray, r.stderr)
        r = subprocess.run([sys.executable, taprun, mod, '-k', 'test_pass'],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual((r.returncode, r.stdout), (0, 'ok 1 - A.test_pass\n1..1\n'))


if __name__ == '__main__':
    unittest.main()

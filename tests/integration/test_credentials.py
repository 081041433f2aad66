# SPDX-License-Identifier: MIT
"""keyrotd's own identity: the credentials chain and the INI module.

* IMDSv2 against moto_server's metadata endpoints (token PUT, role, role
  credentials), through tests/cred-tool.
* IMDSv2 against a fake metadata service on loopback that insists on the
  session token, counts requests, hands out credentials that expire within
  seconds and can be told to fail: the provider refreshes before expiry,
  keeps the old credentials when a refresh fails and retries.
* The chain's order (environment, file, IMDS) seen from the IMDS side: the
  metadata service is not asked when an earlier source answers.
* The INI reader against Python's configparser (what botocore uses) on
  random files, and merged files read back by botocore itself.

Run: python3 tests/rig/taprun.py tests/integration/test_credentials.py
(KEYROTD_BUILD_DIR must name a meson build directory).
"""

import calendar
import collections
import configparser
import hashlib
import http.server
import os
import random
import shutil
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.request

import botocore.configloader

from rig import MotoServer, build_path, wait_until


def sha12(secret):
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


def parse_fields(line):
    """'a=1 b=2 message=rest of line' -> dict (message takes the rest)."""
    out = {}
    rest = line.strip()
    while rest:
        if rest.startswith('message='):
            out['message'] = rest[len('message='):]
            break
        word, _, rest = rest.partition(' ')
        k, _, v = word.partition('=')
        out[k] = v
    return out


def iso(t):
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(t))


class ToolMixin:
    """A private HOME without credentials and a cred-tool runner."""

    def setUp(self):
        super().setUp()
        self.tool = build_path('tests/cred-tool')
        self.home = tempfile.mkdtemp(prefix='test-credentials-')
        self.addCleanup(shutil.rmtree, self.home, True)

    def env(self, **extra):
        env = {k: v for k, v in os.environ.items() if not k.startswith('AWS_')}
        env['HOME'] = self.home
        for k, v in extra.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = str(v)
        return env

    def resolve(self, *args, env=None, timeout=60):
        p = subprocess.run([self.tool, 'resolve'] + list(args), env=env or self.env(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        lines = p.stdout.decode().splitlines()
        self.assertNotIn('ERROR: AddressSanitizer', p.stderr.decode())
        self.assertNotIn('runtime error', p.stderr.decode())
        return p.returncode, [parse_fields(l) for l in lines], lines

    def write_home_credentials(self, text):
        os.makedirs(os.path.join(self.home, '.aws'), exist_ok=True)
        with open(os.path.join(self.home, '.aws', 'credentials'), 'w') as f:
            f.write(text)


# ---------------------------------------------------------------- moto

class TestImdsMoto(ToolMixin, unittest.TestCase):
    """moto_server serves /latest/api/token and the role credentials."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.moto = MotoServer.shared()
        # The first metadata request makes moto import that backend, which
        # can take longer than the SDK-like 1 s IMDS timeout: warm it up.
        urllib.request.urlopen(cls.moto.endpoint + '/latest/meta-data/iam/security-credentials/',
                               timeout=30).read()

    def test_instance_role_from_moto(self):
        before = time.time()
        rc, out, raw = self.resolve(env=self.env(AWS_EC2_METADATA_SERVICE_ENDPOINT=self.moto.endpoint + '/'))
        self.assertEqual(rc, 0, raw)
        c = out[0]
        self.assertEqual(c['source'], 'imds')
        self.assertEqual(c['access_key_id'], 'test-key')
        self.assertEqual(c['token'], 'yes')
        self.assertEqual(c['secret_sha256'], sha12('test-secret-key'))
        # moto: valid for a day (whole seconds); refresh 5 min before.
        expires = int(c['expires'])
        self.assertAlmostEqual(expires, before + 86400, delta=120)
        self.assertAlmostEqual(float(c['next_refresh']), expires - 300, delta=2)

    def test_environment_beats_moto(self):
        rc, out, raw = self.resolve(env=self.env(AWS_EC2_METADATA_SERVICE_ENDPOINT=self.moto.endpoint,
                                                 AWS_ACCESS_KEY_ID='AKIAENV', AWS_SECRET_ACCESS_KEY='s'))
        self.assertEqual(rc, 0, raw)
        self.assertEqual((out[0]['source'], out[0]['access_key_id']), ('environment', 'AKIAENV'))
        self.assertEqual(out[0]['next_refresh'], 'never')


# ----------------------------------------------------------- fake IMDS

class FakeImds:
    """IMDSv2 on loopback: token required, short-lived credentials."""

    ROLE = 'keyrotd-role'

    def __init__(self, lifetime=8):
        self.lifetime = lifetime
        self.lock = threading.Lock()
        self.tokens = set()
        self.requests = collections.Counter()   # (method, path) -> n
        self.unauthorized = 0
        self.ttl_headers = []
        self.issued = []                        # (time, key id, secret, expiration)
        self.n_credential_gets = 0
        self.fail_credential_gets = set()       # 1-based numbers answered 500
        self.delay_credential_gets = {}         # 1-based number -> seconds
        self.token_status = 200
        self.role_status = 200
        self.document = None                    # fixed body for the credentials
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, *args):
                pass

            def reply(self, status, body=b''):
                if isinstance(body, str):
                    body = body.encode()
                self.send_response(status)
                self.send_header('Content-Type', 'text/plain')
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a test that exits mid-request)

            def do_PUT(self):
                with fake.lock:
                    fake.requests[('PUT', self.path)] += 1
                    ttl = self.headers.get('X-aws-ec2-metadata-token-ttl-seconds')
                    fake.ttl_headers.append(ttl)
                    if self.path != '/latest/api/token' or not ttl or not ttl.isdigit():
                        return self.reply(400)
                    if fake.token_status != 200:
                        return self.reply(fake.token_status)
                    token = 'AQAEA-token-%d-%s' % (len(fake.tokens), 'x' * 40)
                    fake.tokens.add(token)
                return self.reply(200, token)

            def do_GET(self):
                with fake.lock:
                    delay = fake.delay_credential_gets.get(fake.n_credential_gets + 1, 0) \
                        if self.path.endswith('/' + fake.ROLE) else 0
                time.sleep(delay)
                with fake.lock:
                    fake.requests[('GET', self.path)] += 1
                    if self.headers.get('X-aws-ec2-metadata-token') not in fake.tokens:
                        fake.unauthorized += 1
                        return self.reply(401)
                    base = '/latest/meta-data/iam/security-credentials/'
                    if self.path == base:
                        if fake.role_status != 200:
                            return self.reply(fake.role_status)
                        return self.reply(200, fake.ROLE)
                    if self.path != base + fake.ROLE:
                        return self.reply(404)
                    fake.n_credential_gets += 1
                    if fake.n_credential_gets in fake.fail_credential_gets:
                        return self.reply(500, 'internal error')
                    if fake.document is not None:
                        return self.reply(200, fake.document)
                    now = int(time.time())
                    n = len(fake.issued) + 1
                    key, secret = 'ASIAFAKE%08d' % n, 'fake/secret+%d' % n
                    exp = now + fake.lifetime
                    fake.issued.append((time.time(), key, secret, exp))
                    # '/' escaped as JSON allows: the decoder must undo it.
                    doc = ('{\n  "Code" : "Success",\n  "LastUpdated" : "%s",\n  "Type" : "AWS-HMAC",\n'
                           '  "AccessKeyId" : "%s",\n  "SecretAccessKey" : "%s",\n  "Token" : "tok%d",\n'
                           '  "Expiration" : "%s"\n}' % (iso(now), key, secret.replace('/', '\\/'), n, iso(exp)))
                return self.reply(200, doc)

        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = 'http://127.0.0.1:%d' % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def total(self):
        with self.lock:
            return sum(self.requests.values())


class TestImdsFake(ToolMixin, unittest.TestCase):

    def setUp(self):
        super().setUp()
        self.imds = FakeImds()
        self.addCleanup(self.imds.stop)

    def imds_env(self, **extra):
        return self.env(AWS_EC2_METADATA_SERVICE_ENDPOINT=self.imds.endpoint, **extra)

    def test_imdsv2_requests(self):
        rc, out, raw = self.resolve(env=self.imds_env())
        self.assertEqual(rc, 0, raw)
        c = out[0]
        _, key, secret, exp = self.imds.issued[0]
        self.assertEqual((c['source'], c['access_key_id'], c['token']), ('imds', key, 'yes'))
        self.assertEqual(c['secret_sha256'], sha12(secret), 'secret decoded from JSON intact')
        self.assertEqual(int(c['expires']), exp)
        self.assertEqual(self.imds.ttl_headers, ['21600'])
        self.assertEqual(self.imds.unauthorized, 0, 'every GET carried the session token')
        self.assertEqual(dict(self.imds.requests), {
            ('PUT', '/latest/api/token'): 1,
            ('GET', '/latest/meta-data/iam/security-credentials/'): 1,
            ('GET', '/latest/meta-data/iam/security-credentials/keyrotd-role'): 1,
        })
        # Lifetime 8 s < 10 min: refresh halfway.
        self.assertAlmostEqual(float(c['next_refresh']), exp - self.imds.lifetime / 2, delta=1.5)

    def test_refresh_before_expiry(self):
        watch = 11
        rc, out, raw = self.resolve('--watch', str(watch), env=self.imds_env(), timeout=watch + 30)
        self.assertEqual(rc, 0, raw)
        refreshes = [o for o in out[1:] if o.get('refresh') == 'ok']
        self.assertFalse([o for o in out[1:] if o.get('refresh') != 'ok'], raw)
        # 8 s credentials, refreshed halfway: about every 4 s.
        self.assertGreaterEqual(len(refreshes), 2, raw)
        self.assertLessEqual(len(self.imds.issued), 5, 'no hammering: %r' % raw)
        prev = out[0]
        for r in refreshes:
            at = float(r['at'])
            self.assertNotEqual(r['access_key_id'], prev['access_key_id'], 'new key swapped in')
            self.assertLess(at, int(prev['expires']), 'refreshed before the old key expired: %r' % raw)
            self.assertGreaterEqual(at, float(prev['next_refresh']) - 0.5, 'not before it was due')
            issued = [i for i in self.imds.issued if i[1] == r['access_key_id']]
            self.assertEqual(len(issued), 1)
            self.assertEqual(r['secret_sha256'], sha12(issued[0][2]))
            prev = r
        self.assertEqual(self.imds.unauthorized, 0)

    def test_failed_refresh_keeps_old_and_retries(self):
        self.imds.lifetime = 6
        # Every credentials GET after the first fails until the 4th.
        self.imds.fail_credential_gets = {2, 3}
        rc, out, raw = self.resolve('--watch', '7', '--retry', '1', env=self.imds_env(), timeout=40)
        self.assertEqual(rc, 0, raw)
        first = out[0]
        events = out[1:]
        errors = [e for e in events if e.get('refresh') == 'error']
        oks = [e for e in events if e.get('refresh') == 'ok']
        self.assertTrue(errors, raw)
        self.assertTrue(oks, raw)
        for e in errors:
            self.assertEqual(e['current'], first['access_key_id'], 'old credentials kept')
            self.assertIn('HTTP 500', e['message'])
        self.assertLess(float(errors[0]['at']), float(oks[0]['at']))
        self.assertNotEqual(oks[0]['access_key_id'], first['access_key_id'])
        self.assertLess(float(oks[0]['at']), int(first['expires']), 'recovered before expiry: %r' % raw)
        # The retry came about 1 s (--retry) after the failure, not at once.
        self.assertGreaterEqual(float(oks[0]['at']) - float(errors[-1]['at']), 0.8)

    def test_exit_during_refresh(self):
        # Credentials for 2 s: the refresh starts after 1 s and its last
        # request is answered slowly; the tool stops in the middle, so the
        # provider is freed with a request in flight (ASan watches).
        self.imds.lifetime = 2
        self.imds.delay_credential_gets = {2: 0.8}
        rc, out, raw = self.resolve('--watch', '1.5', env=self.imds_env(), timeout=30)
        self.assertEqual(rc, 0, raw)
        self.assertEqual(len(out), 1, raw)
        # The slow answer is counted once the fake has finished sleeping.
        wait_until(lambda: self.imds.n_credential_gets == 2, timeout=5,
                   message='the refresh never asked for the credentials')

    def test_no_role(self):
        self.imds.role_status = 404
        rc, out, raw = self.resolve(env=self.imds_env())
        self.assertEqual(rc, 1)
        self.assertEqual(out[0]['error'], 'ENOKEY', raw)
        self.assertIn('no IAM role', out[0]['message'])
        self.assertIn(self.imds.endpoint, out[0]['message'])

    def test_token_refused_no_imdsv1_fallback(self):
        self.imds.token_status = 403
        rc, out, raw = self.resolve(env=self.imds_env())
        self.assertEqual(rc, 1)
        self.assertEqual(out[0]['error'], 'ENOKEY', raw)
        self.assertIn('HTTP 403', out[0]['message'])
        self.assertEqual([k for k in self.imds.requests if k[0] == 'GET'], [], 'IMDSv1 never tried')

    def test_malformed_document(self):
        for doc in ['{"AccessKeyId": "ASIA1", "SecretAccessKey": ', '{"AccessKeyId":"ASIA1"}',
                    '{"Code":"Success","AccessKeyId":"ASIA 1","SecretAccessKey":"s"}', 'x' * 100000]:
            self.imds.document = doc
            rc, out, raw = self.resolve(env=self.imds_env())
            self.assertEqual(rc, 1, raw)
            self.assertEqual(out[0]['error'], 'EINVAL', raw)
            self.assertIn('role keyrotd-role', out[0]['message'])
            self.assertNotIn('ASIA', out[0]['message'], 'the document is never echoed')

    def test_code_not_success(self):
        self.imds.document = '{"Code":"AssumeRoleUnauthorizedAccess","Message":"x"}'
        rc, out, raw = self.resolve(env=self.imds_env())
        self.assertEqual((rc, out[0]['error']), (1, 'ENOKEY'), raw)

    def test_earlier_sources_win_and_imds_is_not_asked(self):
        rc, out, raw = self.resolve(env=self.imds_env(AWS_ACCESS_KEY_ID='AKIAENV', AWS_SECRET_ACCESS_KEY='e'))
        self.assertEqual((rc, out[0]['source']), (0, 'environment'), raw)
        self.write_home_credentials('[default]\naws_access_key_id = AKIAFILE\naws_secret_access_key = f\n'
                                    '[p]\naws_access_key_id = AKIAP\naws_secret_access_key = p\n')
        rc, out, raw = self.resolve(env=self.imds_env())
        self.assertEqual((rc, out[0]['source'], out[0]['access_key_id']), (0, 'shared-file', 'AKIAFILE'), raw)
        self.assertEqual(out[0]['secret_sha256'], sha12('f'))
        rc, out, raw = self.resolve(env=self.imds_env(AWS_PROFILE='p'))
        self.assertEqual((rc, out[0]['access_key_id']), (0, 'AKIAP'), raw)
        # An explicit profile that is missing is an error, never the role.
        rc, out, raw = self.resolve('--profile', 'missing', env=self.imds_env())
        self.assertEqual((rc, out[0]['error']), (1, 'ENOKEY'), raw)
        self.assertIn('missing', out[0]['message'])
        rc, out, raw = self.resolve(env=self.imds_env(AWS_EC2_METADATA_DISABLED='true',
                                                      AWS_SHARED_CREDENTIALS_FILE=self.home + '/none'))
        self.assertEqual((rc, out[0]['error']), (1, 'ENOKEY'), raw)
        self.assertEqual(self.imds.total(), 0, 'IMDS not asked: %r' % self.imds.requests)
        # Only an implicit default profile falls through to the role.
        rc, out, raw = self.resolve(env=self.imds_env(AWS_SHARED_CREDENTIALS_FILE=self.home + '/none'))
        self.assertEqual((rc, out[0]['source']), (0, 'imds'), raw)


# ------------------------------------------------ INI against configparser

FRAGMENTS = [
    '[default]', '[a]', '[b]', '  [a]', '[DEFAULT]', '[ a ]', '[a] junk', '[a]]',
    'k = v', 'k=v2', 'K : V3', '  k = indented', '\tk\t=\tx\ty\t', 'k:', 'k =  ', 'x = a=b:c # d',
    'aws_access_key_id = AKIA1', 'AWS_ACCESS_KEY_ID:AKIA2', 'nested =', '    nested = 1',
    '      deeper', '# comment', '; comment', '   # indented comment', '', '   ', '\t',
    'k\x0b= v\x0c', '\x1ck = v\x1f', 'my key = spaced key',
]
# Lines configparser refuses (or that make it refuse the file).
BAD_FRAGMENTS = ['garbage', '= v', '[]', '[a]\n[a]', 'k = 1\nK = 2']
SECTIONS = ['default', 'a', 'b', ' a ', 'a]']
KEYS = ['k', 'x', 'aws_access_key_id', 'nested', 'my key']


def random_file(rng):
    lines = [rng.choice(BAD_FRAGMENTS if rng.random() < 0.04 else FRAGMENTS)
             for _ in range(rng.randrange(0, 10))]
    if lines and rng.random() < 0.7 and not lines[0].lstrip().startswith('['):
        lines.insert(0, rng.choice(['[default]', '[a]', '[b]']))
    eol = rng.choice(['\n', '\r\n'])
    text = '\n'.join(lines).replace('\n', eol)
    if lines and rng.random() < 0.8:
        text += eol
    return text


def configparser_view(path):
    """What botocore's RawConfigParser sees: None (refused) or
    {section: {key: value}} with [DEFAULT] folded into every section."""
    cp = configparser.RawConfigParser()
    try:
        cp.read([path])
    except configparser.Error:
        return None
    return {s: {o: cp.get(s, o) for o in cp.options(s)} for s in cp.sections()}


class TestIniAgainstConfigparser(ToolMixin, unittest.TestCase):

    def batch(self, commands):
        """Run cred-tool batch: one answer line per command."""
        script = ''.join('\t'.join(c) + '\n' for c in commands)
        p = subprocess.run([self.tool, 'batch'], input=script.encode(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.decode().split('\n')[:-1]
        self.assertEqual(len(lines), len(commands))
        return [tuple(l.split(' ', 1)) for l in lines]

    def write(self, name, text):
        path = os.path.join(self.home, name)
        with open(path, 'w', newline='') as f:
            f.write(text)
        return path

    def test_random_files_read_like_configparser(self):
        rng = random.Random(20261128)
        queries = [(s, k) for s in SECTIONS for k in KEYS]
        rounds = []
        for round_ in range(600):
            text = random_file(rng)
            path = self.write('file%d' % round_, text)
            rounds.append((text, path, configparser_view(path)))
        answers = iter(self.batch([('get', path, s, k) for _, path, _ in rounds for s, k in queries]))
        seen = collections.Counter()
        for round_, (text, path, view) in enumerate(rounds):
            got = [next(answers) for _ in queries]
            context = 'round %d file %r' % (round_, text)
            if view is None:
                seen['refused'] += 1
                self.assertEqual(set(got), {('error', 'EBADMSG')}, context)
                continue
            if set(got) == {('error', 'EBADMSG')}:
                # Stricter than configparser only where documented: a
                # second [DEFAULT] header (configparser merges them).
                self.assertGreaterEqual(sum(1 for l in text.splitlines() if l.strip().startswith('[DEFAULT]')),
                                        2, context)
                seen['stricter'] += 1
                continue
            seen['read'] += 1
            for (s, k), g in zip(queries, got):
                if s not in view or k.lower() not in view[s]:
                    want = ('error', 'ENOENT')
                elif '\n' in view[s][k.lower()]:
                    want = ('error', 'EBADMSG')   # multi-line (nested) value
                else:
                    want = ('ok', view[s][k.lower()])
                    seen['values'] += 1
                self.assertEqual(g, want, '%s: [%s] %s' % (context, s, k))
        self.assertGreater(seen['read'], 100, seen)
        self.assertGreater(seen['refused'], 50, seen)
        self.assertGreater(seen['values'], 100, seen)

    def test_config_profiles_like_botocore(self):
        path = self.write('config', '[default]\nregion = r0\n[profile work]\nregion = r1\n'
                                    '[profile   spaced  ]\nregion = r2\n[sso-session x]\nregion = r3\n'
                                    '[plain]\nregion = r4\n')
        profiles = botocore.configloader.build_profile_map(
            botocore.configloader.raw_config_parse(path))['profiles']
        names = ['default', 'work', 'spaced', 'x', 'plain']
        got = self.batch([('get', path, name, 'region', 'config') for name in names])
        for name, g in zip(names, got):
            want = ('ok', profiles[name]['region']) if name in profiles else ('error', 'ENOENT')
            self.assertEqual(g, want, name)

    def test_merged_files_read_by_botocore(self):
        rng = random.Random(7)
        sets = [('aws_access_key_id', 'AKIANEW'), ('aws_secret_access_key', 'new/secret+key=')]
        removes = ['aws_session_token', 'aws_security_token']
        texts = ['[default]\naws_access_key_id = AKIAOLD\naws_secret_access_key = old\n'
                 'aws_session_token = tok\n[other]\naws_access_key_id = AKIAOTHER\n', ''] + \
                [random_file(rng) for _ in range(300)]
        jobs = []
        for i, text in enumerate(texts):
            path = self.write('in%d' % i, text)
            before = configparser_view(path)
            for section in ['default', 'a', 'new']:
                out = os.path.join(self.home, 'out%d-%s' % (i, section))
                jobs.append((text, before, section, out,
                             ('merge', path, out, section) + tuple('set=%s=%s' % kv for kv in sets) +
                             tuple('remove=' + k for k in removes)))
        merged = 0
        for (text, before, section, out, _), answer in zip(jobs, self.batch([j[4] for j in jobs])):
            context = 'file %r section %s' % (text, section)
            if answer != ('ok',):
                self.assertEqual(answer, ('error', 'EBADMSG'), context)
                # Refused only what configparser refuses, or where a
                # [DEFAULT] section would make the merge ineffective.
                self.assertTrue(before is None or '[DEFAULT]' in text, context)
                continue
            merged += 1
            after = botocore.configloader.raw_config_parse(out, parse_subsections=False)
            with open(out, 'rb') as f:
                context += ' -> %r' % f.read()
            self.assertEqual(after[section].get('aws_access_key_id'), 'AKIANEW', context)
            self.assertEqual(after[section].get('aws_secret_access_key'), 'new/secret+key=', context)
            self.assertNotIn('aws_session_token', after[section], context)
            for s in before or {}:
                if s != section:
                    self.assertEqual(after.get(s), before[s], context)
            if section == 'new':
                # An appended profile leaves every byte before it alone.
                with open(out, 'rb') as f:
                    self.assertTrue(f.read().startswith(text.encode()), context)
        self.assertGreater(merged, 200)


if __name__ == '__main__':
    unittest.main()

# SPDX-License-Identifier: MIT
"""Differential test: keyrotd's SigV4 signer against botocore's.

Thousands of random requests, seeded so that a failure reproduces, are
signed twice: by the C signer through ``$KEYROTD_BUILD_DIR/tests/sigv4-tool``
and by ``botocore.auth.SigV4Auth`` (``S3SigV4Auth`` for s3). The canonical
request, the string to sign and the Authorization value must agree byte for
byte, and the headers the C caller would put on the wire (its own plus those
the signer says it added) must be those botocore leaves on the request.

The requests are built the way keyrotd's transport builds them: the decoded
path is URI-encoded once (AWS rules, '/' kept) and that wire path is what
both signers see; botocore then encodes it again for non-S3 services, which
is the double encoding those services verify.

Run: python3 tests/rig/taprun.py tests/integration/test_sigv4_diff.py
 or: KEYROTD_BUILD_DIR=build python3 -m unittest tests/integration/test_sigv4_diff.py
"""

import datetime
import hashlib
import json
import os
import random
import subprocess
import sys
import unittest
from unittest import mock

import botocore.auth
import botocore.awsrequest
import botocore.credentials

SEED = 0x5164_0004
N_RANDOM = 2500
EPOCH = datetime.datetime(1970, 1, 1)
UNSIGNED = 'UNSIGNED-PAYLOAD'
HERE = os.path.dirname(os.path.abspath(__file__))


def tool_path():
    build = os.environ.get('KEYROTD_BUILD_DIR')
    if not build:
        raise unittest.SkipTest('KEYROTD_BUILD_DIR is not set')
    p = os.path.join(build, 'tests', 'sigv4-tool')
    if not os.path.exists(p):
        # A broken build must not look like a skip.
        raise FileNotFoundError('not built: %s' % p)
    return p


def vectors_dir():
    """The AWS SigV4 test suite (tests/vectors/README.md)."""
    return os.environ.get('SIGV4_VECTORS') or os.path.normpath(
        os.path.join(HERE, '..', 'vectors', 'sigv4'))


def run_tool(requests, *args):
    """Sign a list of request dicts with the C signer, one JSON line each."""
    data = ''.join(json.dumps(r) + '\n' for r in requests).encode('utf-8')
    p = subprocess.run([tool_path(), *args], input=data, capture_output=True,
                       timeout=60, check=False)
    if p.returncode != 0:
        raise AssertionError('sigv4-tool exited %d: %s'
                             % (p.returncode, p.stderr.decode(errors='replace')))
    out = [json.loads(line) for line in p.stdout.decode('utf-8').splitlines()]
    if len(out) != len(requests):
        raise AssertionError('sigv4-tool answered %d of %d requests'
                             % (len(out), len(requests)))
    return out


# ------------------------------------------------------------ wire encoding

_UNRESERVED = frozenset(b'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
                        b'0123456789-_.~')


def aws_encode(s, keep_slash=False):
    """RFC 3986 unreserved kept, every other UTF-8 byte %XX upper case."""
    out = []
    for b in s.encode('utf-8'):
        if b in _UNRESERVED or (keep_slash and b == 0x2f):
            out.append(chr(b))
        else:
            out.append('%%%02X' % b)
    return ''.join(out)


# ------------------------------------------------------- random requests

SERVICES = ['iam', 's3', 'sts', 'execute-api']
REGIONS = ['us-east-1', 'eu-west-3', 'ap-southeast-2', 'us-gov-west-1', 'cn-north-1']
METHODS = ['GET', 'HEAD', 'PUT', 'POST', 'DELETE']
HOSTS = {
    'iam': ['iam.amazonaws.com', 'localhost:5000', '127.0.0.1:5000'],
    'sts': ['sts.amazonaws.com', 'sts.eu-west-3.amazonaws.com', 'localhost:5000'],
    's3': ['bucket-1.s3.us-east-1.amazonaws.com', 's3.eu-west-3.amazonaws.com',
           'localhost:5000', '[::1]:9000'],
    'execute-api': ['abc123.execute-api.us-east-1.amazonaws.com'],
}
SEGMENT_WORDS = ['a', 'b', 'bucket', 'key', 'photo.jpg', 'my-object', 'x_y',
                 '~user', '2024', 'A.B-C_D~E', '.hidden', '...', 'a.', '.a']
SEGMENT_CHARS = (list("!$&'()*+,;=:@") + [' ', '%', '"', '<', '>', '[', ']',
                 '{', '}', '|', '\\', '^', '`', '#', '?'] +
                 ['é', 'ü', 'ß', 'ሴ', '日本', '😀', '\u00a0'])
QUERY_KEYS = ['a', 'A', 'b', 'Param', 'Param1', 'param1', 'list-type', 'max-keys',
              'prefix', 'x-amz-meta', 'key with space', 'ü', 'ሴ', 'a-b', 'a_b',
              'a.b', 'a~b', '', '=', '&', '+', '%', 'Action', 'Version']
QUERY_VALUES = ['', '1', '2', 'value', 'Value', 'a b', 'a+b', 'a=b', 'a&b',
                '%', '%41', 'ü', '日本語', '😀', '/path/to', '~tilde',
                "!*'();:@&=+$,/?#[]", '2010-05-08', 'ListUsers']
HEADER_WORDS = ['value', 'VALUE', 'a', 'b c', '"quoted"', 'x=y;z', 'text/plain',
                'application/x-www-form-urlencoded; charset=utf-8', '1', '0',
                'AWS', '(comment)', 'a,b', '*/*', '{json}']


def rand_segment(rng):
    r = rng.random()
    if r < 0.10:
        return '.'
    if r < 0.20:
        return '..'
    if r < 0.30:
        return ''  # a double slash
    if r < 0.60:
        return rng.choice(SEGMENT_WORDS)
    return ''.join(rng.choice(SEGMENT_CHARS + SEGMENT_WORDS)
                   for _ in range(rng.randint(1, 5)))


def rand_path(rng):
    """A decoded path, as keyrotd's callers hand it to the transport."""
    segs = [rand_segment(rng) for _ in range(rng.randint(0, 6))]
    path = '/' + '/'.join(segs)
    if segs and rng.random() < 0.3:
        path += '/'
    return path


def rand_query(rng):
    if rng.random() < 0.3:
        return ''
    pairs = []
    for _ in range(rng.randint(1, 6)):
        k = rng.choice(QUERY_KEYS)
        if pairs and rng.random() < 0.25:
            k = rng.choice(pairs)[0]  # repeated key
        if rng.random() < 0.15:
            pairs.append((k, None))  # "acl": no '=' at all
        else:
            pairs.append((k, rng.choice(QUERY_VALUES)))
    parts = []
    for k, v in pairs:
        if v is None:
            parts.append(aws_encode(k))
        else:
            parts.append(aws_encode(k) + '=' + aws_encode(v))
    return '&'.join(parts)


def rand_header_value(rng):
    words = [rng.choice(HEADER_WORDS) for _ in range(rng.randint(0, 4))]
    seps = ['', ' ', '  ', '   ', '\t', ' \t ']
    out = rng.choice(seps)
    for i, w in enumerate(words):
        if i:
            out += rng.choice(seps[1:])
        out += w
    out += rng.choice(seps)
    if words and rng.random() < 0.03:
        out += '\r\n  folded'  # obs-fold
    return out


def rand_token(rng, n):
    alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
    return ''.join(rng.choice(alphabet) for _ in range(n))


def case_mix(rng, name):
    r = rng.random()
    if r < 0.3:
        return name.lower()
    if r < 0.4:
        return name.upper()
    return name


def rand_request(rng):
    service = rng.choice(SERVICES)
    region = rng.choice(REGIONS)
    method = rng.choice(METHODS)
    when = rng.randint(1420070400, 2051222400)  # 2015 .. 2035
    amz_date = (EPOCH + datetime.timedelta(seconds=when)).strftime('%Y%m%dT%H%M%SZ')
    body = b'' if rng.random() < 0.4 else rng.randbytes(rng.randint(1, 300))
    body_hash = hashlib.sha256(body).hexdigest()
    unsigned = rng.random() < 0.1
    token = rand_token(rng, rng.choice([16, 200, 800])) if rng.random() < 0.3 else None

    host = rng.choice(HOSTS[service])
    if rng.random() < 0.1:
        host = ' ' + host + '  '
    headers = [[case_mix(rng, 'Host'), host]]
    for i in range(rng.randint(0, 5)):
        name = rng.choice(['X-Custom-%d' % i, 'X-Amz-Meta-%d' % i, 'Content-Type',
                           'X-Amz-Target', 'Accept', 'Content-MD5', 'Range',
                           'Cache-Control', 'X-Dup'])
        headers.append([case_mix(rng, name), rand_header_value(rng)])
    if rng.random() < 0.2:
        headers.append(['X-Dup', rand_header_value(rng)])
        headers.append(['x-dup', rand_header_value(rng)])
    if rng.random() < 0.15:
        headers.append([rng.choice(['User-Agent', 'Expect', 'X-Amzn-Trace-Id',
                                    'Transfer-Encoding']), 'unsigned thing'])
    if rng.random() < 0.2:
        headers.append([case_mix(rng, 'X-Amz-Date'), amz_date])
    if token and rng.random() < 0.2:
        headers.append([case_mix(rng, 'X-Amz-Security-Token'), token])
    payload = UNSIGNED if unsigned else body_hash
    if service == 's3':
        if rng.random() < 0.5:
            headers.append([case_mix(rng, 'X-Amz-Content-SHA256'), payload])
    elif unsigned or rng.random() < 0.05:
        # Unsigned non-S3 payloads are declared in the header (botocore adds it).
        headers.append([case_mix(rng, 'X-Amz-Content-SHA256'), payload])
    rng.shuffle(headers)

    req = {
        'method': method,
        'path': aws_encode(rand_path(rng), keep_slash=True),
        'query': rand_query(rng),
        'headers': headers,
        'access_key_id': 'AKIA' + ''.join(rng.choice('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567')
                                          for _ in range(16)),
        'secret': rand_token(rng, 40),
        'region': region,
        'service': service,
        'when': when,
    }
    if unsigned:
        req['payload_hash'] = UNSIGNED
    else:
        req['body_hex'] = body.hex()
    if token:
        req['session_token'] = token
    return req, body


# ---------------------------------------------------------------- botocore

class _S3Config:
    def __init__(self, payload_signing):
        self.s3 = {'payload_signing_enabled': payload_signing}


def botocore_sign(req, body):
    """Sign with botocore exactly what the C signer saw; return its view."""
    url = 'https://signing.invalid' + req['path']
    if req['query']:
        url += '?' + req['query']
    aws = botocore.awsrequest.AWSRequest(method=req['method'], url=url, data=body)
    for name, value in req['headers']:
        aws.headers[name] = value  # HTTPHeaders appends: repeats are kept
    unsigned = req.get('payload_hash') == UNSIGNED
    if req['service'] == 's3':
        aws.context['client_config'] = _S3Config(not unsigned)
        cls = botocore.auth.S3SigV4Auth
    else:
        if unsigned:
            aws.context['payload_signing_enabled'] = False
        cls = botocore.auth.SigV4Auth
    creds = botocore.credentials.Credentials(req['access_key_id'], req['secret'],
                                             req.get('session_token'))
    auth = cls(creds, req['service'], req['region'])

    # Record what add_auth computes on its way, without re-implementing it.
    seen = {}
    real_creq, real_sts = auth.canonical_request, auth.string_to_sign

    def canonical_request(request):
        seen['canonical_request'] = real_creq(request)
        return seen['canonical_request']

    def string_to_sign(request, creq):
        seen['string_to_sign'] = real_sts(request, creq)
        return seen['string_to_sign']

    auth.canonical_request = canonical_request
    auth.string_to_sign = string_to_sign
    now = EPOCH + datetime.timedelta(seconds=req['when'])
    with mock.patch('botocore.auth.get_current_datetime', return_value=now):
        auth.add_auth(aws)
    seen['authorization'] = aws.headers['Authorization']
    seen['wire'] = sorted((k.lower(), v) for k, v in aws.headers.items()
                          if k.lower() != 'authorization')
    return seen


def c_wire(req, res):
    """The headers keyrotd's transport sends: its own plus what the signer added."""
    wire = [(k.lower(), v) for k, v in req['headers']]
    if res.get('added_date'):
        wire.append(('x-amz-date', res['amz_date']))
    if res.get('added_security_token'):
        wire.append(('x-amz-security-token', req['session_token']))
    if res.get('added_content_sha256'):
        payload = req.get('payload_hash') or hashlib.sha256(
            bytes.fromhex(req['body_hex'])).hexdigest()
        wire.append(('x-amz-content-sha256', payload))
    return sorted(wire)


def describe(i, req, field, ours, theirs):
    return ('request %d (%s %s %s?%s): %s differs\n--- keyrotd\n%s\n--- botocore\n%s\n'
            % (i, req['service'], req['method'], req['path'], req['query'], field,
               ours, theirs))


# ------------------------------------------------------------------- tests

class TestSigV4Differential(unittest.TestCase):
    def test_botocore_agrees_on_2500_random_requests(self):
        rng = random.Random(SEED)
        cases = [rand_request(rng) for _ in range(N_RANDOM)]
        ours = run_tool([req for req, _ in cases])

        mismatches = []
        by_service = {}
        for i, ((req, body), res) in enumerate(zip(cases, ours)):
            by_service[req['service']] = by_service.get(req['service'], 0) + 1
            if 'error' in res:
                mismatches.append('request %d refused by keyrotd: %s\n%r\n'
                                  % (i, res['error'], req))
                continue
            theirs = botocore_sign(req, body)
            for field in ('canonical_request', 'string_to_sign', 'authorization'):
                if res[field] != theirs[field]:
                    mismatches.append(describe(i, req, field, res[field], theirs[field]))
                    break
            else:
                wire = c_wire(req, res)
                if wire != theirs['wire']:
                    mismatches.append(describe(i, req, 'wire headers', wire, theirs['wire']))

        print('# sigv4 differential: %d requests compared (%s), %d mismatches'
              % (len(cases), ', '.join('%s %d' % kv for kv in sorted(by_service.items())),
                 len(mismatches)), file=sys.stderr)
        self.assertEqual(len(cases), N_RANDOM)
        if mismatches:
            self.fail('%d of %d requests differ; the first ones:\n%s'
                      % (len(mismatches), len(cases), '\n'.join(mismatches[:3])))

    def test_key_cache_changes_nothing(self):
        """The same requests through the derived-key cache and without it."""
        rng = random.Random(SEED + 1)
        reqs = [rand_request(rng)[0] for _ in range(300)]
        # Few identities and dates, so that the cache hits and evicts.
        for i, r in enumerate(reqs):
            r['access_key_id'] = 'AKIAEXAMPLE%d' % (i % 3)
            r['secret'] = 'secret-%d' % (i % 3)
            r['when'] = 1700000000 + (i % 11) * 86400
            r['headers'] = [h for h in r['headers'] if h[0].lower() != 'x-amz-date']
        cached = run_tool(reqs)
        uncached = run_tool(reqs, '--no-cache')
        self.assertEqual(cached, uncached)
        refused = [c for c in cached if 'error' in c]
        if refused:
            self.fail('%d requests refused, first: %r' % (len(refused), refused[0]))


class TestSigV4VectorsThroughTool(unittest.TestCase):
    """The AWS test suite again, through the tool: the harness is sane."""

    AKID = 'AKIDEXAMPLE'
    SECRET = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY'
    WHEN = 1440938160  # 20150830T123600Z
    VANILLA_TOKEN = '6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267'

    @staticmethod
    def parse_req(raw):
        text = raw.decode('utf-8')
        head, sep, body = text.partition('\n\n')
        lines = head.split('\n')
        method, rest = lines[0].split(' ', 1)
        target = rest.rsplit(' ', 1)[0]  # the target may hold spaces
        path, _, query = target.partition('?')
        headers = []
        for line in lines[1:]:
            if line[:1] in (' ', '\t'):
                headers[-1][1] += '\n' + line  # obs-fold: the signer folds it
            elif line:
                name, _, value = line.partition(':')
                headers.append([name, value])
        return method, path, query, headers, body.encode('utf-8') if sep else b''

    def test_all_vectors(self):
        root = vectors_dir()
        # The suite is part of the tree: without it this is a failure, not a skip.
        self.assertTrue(os.path.isfile(os.path.join(root, 'get-vanilla', 'get-vanilla.req')),
                        'the AWS SigV4 test suite is missing at %s (see tests/vectors/README.md)' % root)
        with open(os.path.join(root, 'post-sts-token', 'readme.txt'), encoding='utf-8') as f:
            sts_token = f.read().strip().splitlines()[-1].strip()

        cases, expected = [], []
        for dirpath, _, files in sorted(os.walk(root)):
            name = os.path.basename(dirpath)
            if name + '.req' not in files:
                continue
            exp = {}
            for ext, field in (('creq', 'canonical_request'), ('sts', 'string_to_sign'),
                               ('authz', 'authorization')):
                with open(os.path.join(dirpath, name + '.' + ext), 'rb') as f:
                    exp[field] = f.read().decode('utf-8')
            with open(os.path.join(dirpath, name + '.req'), 'rb') as f:
                method, path, query, headers, body = self.parse_req(f.read())
            req = {'method': method, 'path': path, 'query': query, 'headers': headers,
                   'body_hex': body.hex(), 'access_key_id': self.AKID,
                   'secret': self.SECRET, 'region': 'us-east-1', 'service': 'service',
                   'when': self.WHEN}
            if name == 'get-vanilla-with-session-token':
                req['session_token'] = self.VANILLA_TOKEN
            elif name == 'post-sts-header-before':
                req['session_token'] = sts_token
            cases.append((name, req))
            expected.append(exp)

        self.assertEqual(len(cases), 34)
        results = run_tool([req for _, req in cases])
        for (name, _), exp, res in zip(cases, expected, results):
            with self.subTest(case=name):
                self.assertNotIn('error', res)
                for field, want in exp.items():
                    self.assertEqual(res[field], want, '%s: %s' % (name, field))


if __name__ == '__main__':
    unittest.main()

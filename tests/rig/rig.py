# SPDX-License-Identifier: MIT
"""The integration test rig: moto_server, a per-test AWS fixture, helpers.

Test files do ``from rig import RigTestCase`` (taprun puts tests/rig on
sys.path) and get, per test, a freshly reset moto with authentication
enforced and keyrotd's admin user in place::

    class TestX(RigTestCase):
        def test_something(self):
            self.rig.create_bucket('data')
            app = self.rig.create_s3_user('app', ['data'])
            proxy = self.rig.start_proxy(throttle=Next(1))
            r = self.rig.run([self.rig.build_path('src/keyrotd'), '--once'],
                             env=self.rig.env(endpoint=proxy.endpoint))

The authentication window
-------------------------
moto enforces SigV4 and IAM policies once it has served
``INITIAL_NO_AUTH_ACTION_COUNT`` requests that went through its
authenticator; ``POST /moto-api/reset-auth`` (body: the new count as plain
text, *not* JSON and *not* form-encoded, or Flask eats it) sets the count
and restarts the counter.  moto is started with the count at 0 (closed).
Per test the rig

1. ``POST /moto-api/reset`` (all backends empty; does not touch the counter),
2. opens the window for exactly ``FIXTURE_REQUESTS`` (= 3) requests,
3. sends exactly those 3 with retries off (the count includes retries):
   CreateUser, PutUserPolicy (inline admin policy), CreateAccessKey,
   after which the window is exhausted,
4. closes it explicitly anyway (``reset-auth`` with 0), so that a miscount
   can never leave it open,
5. proves it closed: IAM with a bogus key id must be refused
   (``InvalidClientTokenId``), and the admin key must be accepted.  These
   run after the window closed, so they cannot eat it.

Everything after that (buckets, S3 users) is signed with the admin key and
policy-checked by moto.
"""

import atexit
import collections
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

import boto3
import botocore.config
import botocore.exceptions

from faultproxy import FaultProxy, Fault, ManualClock, Rate, Next  # noqa: F401

__all__ = [
        'Creds', 'MotoServer', 'Rig', 'RigTestCase', 'FaultProxy', 'Fault',
        'ManualClock',
        'Rate', 'Next', 'wait_until', 'build_path', 'source_path',
        'stop_process', 'seed_policy', 'admin_policy', 'ADMIN_USER', 'REGION',
        'FIXTURE_REQUESTS', 'S3_POLICY_NAME', 'ADMIN_POLICY_NAME',
        'ClientError', 'error_code', 'shutdown',
]

REGION = 'us-east-1'
ADMIN_USER = 'keyrotd-admin'
ADMIN_POLICY_NAME = 'keyrotd-admin'
S3_POLICY_NAME = 's3-access'
#: Requests the per-test fixture sends inside moto's unauthenticated window.
FIXTURE_REQUESTS = 3

ClientError = botocore.exceptions.ClientError

#: An access key pair.  Never print the secret: repr shows the id only.
class Creds(collections.namedtuple('Creds', ['access_key_id',
                                             'secret_access_key'])):
    __slots__ = ()

    def __repr__(self):
        return 'Creds(%s, <secret>)' % self.access_key_id


ADMIN_ACTIONS = [
        'iam:*AccessKey*',            # Create/Update/Delete/ListAccessKeys,
                                      # GetAccessKeyLastUsed
        'iam:GetUser',
        'iam:CreateUser',
        'iam:DeleteUser',
        'iam:TagUser',
        'iam:UntagUser',
        'iam:ListUserTags',
        'iam:PutUserPolicy',
        'iam:GetUserPolicy',
        'iam:DeleteUserPolicy',
        'iam:ListUserPolicies',
        'iam:ListAttachedUserPolicies',
        'iam:ListGroupsForUser',
        'iam:ListGroupPolicies',      # keyrotctl audit: group policies
        'iam:GetGroupPolicy',
        'iam:ListAttachedGroupPolicies',
        'iam:GetPolicy',
        'iam:GetPolicyVersion',
        'iam:ListUsers',
        'iam:SimulatePrincipalPolicy',
        'sts:GetCallerIdentity',
        's3:*',
]


def admin_policy():
    """keyrotd's admin policy document (a dict)."""
    return {'Version': '2012-10-17',
            'Statement': [{'Effect': 'Allow', 'Action': list(ADMIN_ACTIONS),
                           'Resource': '*'}]}


def seed_policy(buckets, read_only=False):
    """The usual S3-only policy document (a dict) for ``buckets``."""
    actions = ['s3:GetObject', 's3:ListBucket']
    if not read_only:
        actions.insert(1, 's3:PutObject')
    resources = []
    for b in buckets:
        resources += ['arn:aws:s3:::%s' % b, 'arn:aws:s3:::%s/*' % b]
    return {'Version': '2012-10-17',
            'Statement': [{'Effect': 'Allow', 'Action': actions,
                           'Resource': resources}]}


def error_code(exc):
    """The AWS error code of a botocore ClientError (or None)."""
    if isinstance(exc, ClientError):
        return exc.response.get('Error', {}).get('Code')
    return None


# ------------------------------------------------------------ small helpers

def wait_until(fn, timeout=10.0, interval=0.05, message=None):
    """Poll ``fn()`` until it returns a truthy value, which is returned.

    Raises AssertionError after ``timeout`` seconds.  This is how tests wait:
    never a bare sleep.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(message or 'condition not met within %.1fs'
                                 % timeout)
        time.sleep(interval)


def _dir_from_env(var):
    d = os.environ.get(var)
    if not d:
        raise unittest.SkipTest('%s is not set' % var)
    return d


def build_path(rel, must_exist=True):
    """A path inside the meson build dir ($KEYROTD_BUILD_DIR).

    Skips the test when KEYROTD_BUILD_DIR is unset; fails when it is set and
    the file is missing (a broken build must not look like a skip).
    """
    p = os.path.join(_dir_from_env('KEYROTD_BUILD_DIR'), rel)
    if must_exist and not os.path.exists(p):
        raise FileNotFoundError('not built: %s' % p)
    return p


class TapNotes:
    """Mixin for a unittest.TestCase: tap_note(text) adds a diagnostic line
    below the test's TAP result line (taprun prints an outcome's 'diag'
    whatever the verdict), and prints it for meson's log in any case."""

    def tap_note(self, text):
        print(text, flush=True)
        outcome = getattr(self._tap_result, '_outcome', None)
        if isinstance(outcome, dict) and isinstance(outcome.get('diag'), list):
            outcome['diag'].append(text + '\n')

    def run(self, result=None):
        self._tap_result = result
        return super().run(result)


def meson_option(name):
    """The value of a meson option of the build dir under test."""
    with open(build_path('meson-info/intro-buildoptions.json')) as f:
        for o in json.load(f):
            if o['name'] == name:
                return o['value']
    raise KeyError(name)


def requires_test_hooks(test):
    """Decorator for a test method or class that drives the crash and
    failure injection points (KEYROTD_CRASH_AT, KEYROTD_FAIL_AT): without
    them, keyrotd ignores both variables and the test would prove nothing,
    so it skips, saying why, in a build configured without test_hooks."""
    if isinstance(test, type):
        for name, fn in list(vars(test).items()):
            if name.startswith('test') and callable(fn):
                setattr(test, name, requires_test_hooks(fn))
        return test

    @functools.wraps(test)
    def run(self, *args, **kwargs):
        if meson_option('test_hooks') is not True:
            raise unittest.SkipTest('needs the crash and failure injection points: '
                                    'this build was configured without -Dtest_hooks=true')
        return test(self, *args, **kwargs)
    return run


def source_path(rel=''):
    """A path inside the source tree ($KEYROTD_SOURCE_DIR, else this repo)."""
    root = os.environ.get('KEYROTD_SOURCE_DIR') or os.path.dirname(
            os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return os.path.join(root, rel)


# -------------------------------------------------------- child processes

_live = {}
_live_lock = threading.Lock()


def _track(proc):
    with _live_lock:
        _live[proc.pid] = proc
    return proc


def stop_process(proc, timeout=5.0):
    """Stop one child by its PID: SIGTERM, then SIGKILL after ``timeout``.

    Returns its exit status.  Safe to call twice.
    """
    if proc.poll() is None:
        try:
            os.kill(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
    with _live_lock:
        _live.pop(proc.pid, None)
    return proc.returncode


def _stop_all():
    with _live_lock:
        procs = list(_live.values())
    for p in procs:
        stop_process(p, timeout=3.0)


atexit.register(_stop_all)


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


# -------------------------------------------------------------- boto3

_session = None
_session_lock = threading.Lock()


def _client(service, creds, endpoint, retries=1, **config):
    """A boto3 client; ``retries`` is total attempts (int) or a retries dict."""
    global _session
    if isinstance(retries, int):
        retries = {'mode': 'standard', 'total_max_attempts': retries}
    cfg = {'retries': retries, 'connect_timeout': 10, 'read_timeout': 30}
    cfg.update(config)
    if service == 's3':
        s3 = dict(cfg.pop('s3', {}) or {})
        s3.setdefault('addressing_style', 'path')
        cfg['s3'] = s3
    with _session_lock:
        if _session is None:
            _session = boto3.session.Session()
        return _session.client(
                service, region_name=REGION, endpoint_url=endpoint,
                aws_access_key_id=creds.access_key_id,
                aws_secret_access_key=creds.secret_access_key,
                config=botocore.config.Config(**cfg))


# ---------------------------------------------------------------- moto

class MotoServer:
    """One ``moto_server`` on a free loopback port.

    ``MotoServer().start()`` or, for one server per test module (process),
    ``MotoServer.shared()``.  Started with INITIAL_NO_AUTH_ACTION_COUNT=0,
    i.e. authentication enforced until a Rig opens the window.
    """

    _shared = None

    def __init__(self):
        self.proc = None
        self.port = None
        self.endpoint = None
        self._logdir = None
        self.log_path = None

    @classmethod
    def shared(cls):
        """The process-wide server, started on first use, stopped at exit."""
        if cls._shared is None or not cls._shared.alive():
            cls._shared = cls().start()
        return cls._shared

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def _command(self, port):
        # The interpreter running the tests has moto (pyenv): use it
        # directly rather than the moto_server shim, so the PID we hold is
        # the server itself.
        try:
            import moto.server  # noqa: F401
            base = [sys.executable, '-m', 'moto.server']
        except ImportError:
            base = [shutil.which('moto_server') or 'moto_server']
        return base + ['-H', '127.0.0.1', '-p', str(port)]

    def start(self, timeout=30.0):
        self._logdir = tempfile.mkdtemp(prefix='rig-moto-')
        self.log_path = os.path.join(self._logdir, 'moto.log')
        env = dict(os.environ)
        env['INITIAL_NO_AUTH_ACTION_COUNT'] = '0'
        for k in list(env):
            if k.startswith('AWS_'):
                del env[k]
        env['HOME'] = self._logdir
        last = None
        for _ in range(3):  # the port may be taken between probe and bind
            self.port = _free_port()
            self.endpoint = 'http://127.0.0.1:%d' % self.port
            with open(self.log_path, 'ab') as log:
                self.proc = _track(subprocess.Popen(
                        self._command(self.port), stdin=subprocess.DEVNULL,
                        stdout=log, stderr=subprocess.STDOUT, env=env,
                        cwd=self._logdir))
            try:
                wait_until(self._answers, timeout=timeout, interval=0.05,
                           message='moto_server did not answer within %ss'
                           % timeout)
                return self
            except AssertionError as e:
                last = e
                stop_process(self.proc)
        tail = self.log_tail()
        shutil.rmtree(self._logdir, ignore_errors=True)
        raise RuntimeError('%s; log tail:\n%s' % (last, tail))

    def _answers(self):
        if self.proc.poll() is not None:
            raise AssertionError('moto_server exited with %s'
                                 % self.proc.returncode)
        try:
            with socket.create_connection(('127.0.0.1', self.port), 0.5) as s:
                s.sendall(b'GET /moto-api/reset HTTP/1.0\r\n\r\n')
                return s.recv(12).startswith(b'HTTP/')
        except OSError:
            return False

    def log_tail(self, n=30):
        try:
            with open(self.log_path, 'rb') as f:
                return b'\n'.join(f.read().splitlines()[-n:]).decode('utf-8', 'replace')
        except OSError:
            return ''

    def stop(self):
        if self.proc is not None:
            stop_process(self.proc)
        if self._logdir and not os.environ.get('RIG_KEEP'):
            shutil.rmtree(self._logdir, ignore_errors=True)
        if MotoServer._shared is self:
            MotoServer._shared = None

    def post(self, path, body=b''):
        """POST to moto's control API; returns the decoded JSON answer."""
        req = urllib.request.Request(self.endpoint + path, data=body,
                                     method='POST',
                                     headers={'Content-Type': 'text/plain'})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read() or b'{}')

    def reset(self):
        """Empty every moto backend (the auth counter is not touched)."""
        self.post('/moto-api/reset')

    def set_auth_window(self, n):
        """The next ``n`` authenticated-path requests need no credentials."""
        self.post('/moto-api/reset-auth', str(int(n)).encode())

    def model_data(self):
        """moto's /moto-api/data.json (unauthenticated state dump)."""
        with urllib.request.urlopen(self.endpoint + '/moto-api/data.json',
                                    timeout=30) as r:
            return json.loads(r.read())


def shutdown():
    """Stop the shared moto server (taprun calls this after the run)."""
    if MotoServer._shared is not None:
        MotoServer._shared.stop()


atexit.register(shutdown)


# ---------------------------------------------------------------- the rig

class Rig:
    """Fresh AWS state for one test, plus helpers.  ``close()`` undoes it."""

    def __init__(self, moto=None):
        self.moto = moto or MotoServer.shared()
        self.endpoint = self.moto.endpoint
        self._procs = []
        self._proxies = []
        self._clients = {}
        self.tmp = tempfile.mkdtemp(prefix='rig-')
        self.home = os.path.join(self.tmp, 'home')
        os.mkdir(self.home, 0o700)
        try:
            self.admin = self._bootstrap()
        except BaseException:
            self.close()
            raise

    # --------------------------------------------------------- fixture

    def _bootstrap(self):
        self.moto.reset()
        self.moto.set_auth_window(FIXTURE_REQUESTS)
        try:
            anon = Creds('AKIARIGBOOTSTRAP0000', 'rig-bootstrap-not-a-secret')
            iam = _client('iam', anon, self.endpoint, retries=1)
            # Exactly FIXTURE_REQUESTS requests, retries off.
            iam.create_user(UserName=ADMIN_USER)
            iam.put_user_policy(UserName=ADMIN_USER,
                                PolicyName=ADMIN_POLICY_NAME,
                                PolicyDocument=json.dumps(admin_policy()))
            k = iam.create_access_key(UserName=ADMIN_USER)['AccessKey']
            admin = Creds(k['AccessKeyId'], k['SecretAccessKey'])
        finally:
            # Exhausted by now; closing explicitly guards against miscounts.
            self.moto.set_auth_window(0)
        self._prove_closed(admin)
        return admin

    def _prove_closed(self, admin):
        bogus = Creds('AKIAXXXXXXXXXXXXXXXX', 'bogus-secret-bogus-secret-bogus-secret00')
        try:
            _client('iam', bogus, self.endpoint).get_user(UserName=ADMIN_USER)
        except ClientError as e:
            if error_code(e) not in ('InvalidClientTokenId',
                                     'SignatureDoesNotMatch'):
                raise RuntimeError('bogus key refused with an unexpected '
                                   'error: %s' % e) from None
        else:
            raise RuntimeError('moto auth window still open: a bogus key '
                               'was accepted')
        self.client('iam', admin).get_user(UserName=ADMIN_USER)

    # ---------------------------------------------------------- clients

    def client(self, service, creds=None, endpoint=None, retries=1,
               fresh=False, **config):
        """A boto3 client for ``service``: admin creds, moto endpoint and
        no retries by default.  ``retries``: total attempts (int) or a
        botocore retries dict; ``config``: more botocore Config arguments
        (read_timeout=..., signature_version=...).  Clients are cached per
        test by their arguments (and so keep their connections);
        ``fresh=True`` always builds a new one."""
        creds = creds or self.admin
        endpoint = endpoint or self.endpoint
        key = (service, tuple(creds), endpoint,
               json.dumps([retries, config], sort_keys=True, default=repr))
        c = None if fresh else self._clients.get(key)
        if c is None:
            c = _client(service, creds, endpoint, retries, **config)
            if not fresh:
                self._clients[key] = c
        return c

    def iam(self, creds=None, endpoint=None, retries=1, **config):
        """boto3 IAM client; see client()."""
        return self.client('iam', creds, endpoint, retries, **config)

    def s3(self, creds=None, endpoint=None, retries=1, **config):
        """boto3 S3 client, path-style addressing; see client()."""
        return self.client('s3', creds, endpoint, retries, **config)

    def sts(self, creds=None, endpoint=None, retries=1, **config):
        """boto3 STS client; see client()."""
        return self.client('sts', creds, endpoint, retries, **config)

    # --------------------------------------------------------- fixtures

    def create_bucket(self, name):
        """Create a bucket (as the admin, signed and policy-checked)."""
        if len(name) < 3:
            raise ValueError('bucket names need at least 3 characters')
        self.s3().create_bucket(Bucket=name)
        return name

    def create_s3_user(self, name, buckets, read_only=False):
        """Create an S3-only user with the usual S3-only policy inline and one key."""
        iam = self.iam()
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName=S3_POLICY_NAME,
                            PolicyDocument=json.dumps(
                                    seed_policy(buckets, read_only)))
        k = iam.create_access_key(UserName=name)['AccessKey']
        return Creds(k['AccessKeyId'], k['SecretAccessKey'])

    def list_keys(self, user):
        """[{'id', 'status', 'created'}] of ``user``'s keys, oldest first."""
        keys = []
        paginator = self.iam().get_paginator('list_access_keys')
        for page in paginator.paginate(UserName=user):
            for k in page['AccessKeyMetadata']:
                keys.append({'id': k['AccessKeyId'], 'status': k['Status'],
                             'created': k['CreateDate']})
        keys.sort(key=lambda k: k['created'])
        return keys

    _REFUSED = ('InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied',
                'InvalidClientTokenId', 'InvalidToken')

    def key_works_on_s3(self, creds, bucket, endpoint=None):
        """Whether ``creds`` may ListObjectsV2 on ``bucket`` (one try).

        False on an authentication or authorisation refusal; any other
        error (an injected 503, NoSuchBucket) is raised, so a fault never
        passes for a verdict on the key.
        """
        try:
            self.s3(creds, endpoint).list_objects_v2(Bucket=bucket, MaxKeys=1)
            return True
        except ClientError as e:
            if error_code(e) in self._REFUSED:
                return False
            raise

    # ---------------------------------------------------- fault proxy

    def start_proxy(self, clock=None, **settings):
        """A FaultProxy in front of this moto, configured with
        ``settings`` (see FaultProxy.configure), stopped by close().
        ``clock``: e.g. a ManualClock for propagation tests."""
        p = FaultProxy(self.endpoint, clock=clock).start()
        self._proxies.append(p)
        if settings:
            p.configure(**settings)
        return p

    # -------------------------------------------------- child processes

    def env(self, creds=None, endpoint=None, **extra):
        """Environment for a child process talking to AWS as ``creds``.

        The test's environment minus every AWS_* variable, then the key,
        endpoint and region, IMDS off, and HOME in this test's temp dir
        (so no real ~/.aws leaks in).  ``extra`` adds variables; a value
        of None removes one.  ``creds=False`` sets no key at all.
        """
        env = {k: v for k, v in os.environ.items() if not k.startswith('AWS_')}
        env['HOME'] = self.home
        if creds is not False:
            creds = creds or self.admin
            env['AWS_ACCESS_KEY_ID'] = creds.access_key_id
            env['AWS_SECRET_ACCESS_KEY'] = creds.secret_access_key
        env['AWS_ENDPOINT_URL'] = endpoint or self.endpoint
        env['AWS_DEFAULT_REGION'] = REGION
        env['AWS_REGION'] = REGION
        env['AWS_EC2_METADATA_DISABLED'] = 'true'
        for k, v in extra.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = str(v)
        return env

    def run(self, argv, env=None, timeout=60.0, input=None, cwd=None):
        """Run a child to completion; CompletedProcess with text output.

        On timeout the child is stopped (by PID) and TimeoutError raised.
        """
        p = _track(subprocess.Popen(
                argv, env=env if env is not None else self.env(),
                cwd=cwd or self.tmp, stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        try:
            out, err = p.communicate(
                    input.encode() if isinstance(input, str) else input,
                    timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_process(p)
            p.communicate()
            raise TimeoutError('%s did not finish within %ss'
                               % (argv[0], timeout)) from None
        finally:
            if p.poll() is None:
                stop_process(p)
            with _live_lock:
                _live.pop(p.pid, None)
        return subprocess.CompletedProcess(
                argv, p.returncode, out.decode('utf-8', 'replace'),
                err.decode('utf-8', 'replace'))

    def spawn(self, argv, env=None, name=None, cwd=None, **popen_kw):
        """Start a long-running child; stdout/stderr go to files in the temp
        dir (``proc.out_path``/``proc.err_path``).  close() stops it."""
        name = name or os.path.basename(argv[0])
        out_path = os.path.join(self.tmp, '%s.%d.out' % (name, len(self._procs)))
        err_path = os.path.join(self.tmp, '%s.%d.err' % (name, len(self._procs)))
        with open(out_path, 'wb') as out, open(err_path, 'wb') as err:
            p = _track(subprocess.Popen(
                    argv, env=env if env is not None else self.env(),
                    cwd=cwd or self.tmp, stdin=subprocess.DEVNULL,
                    stdout=out, stderr=err, **popen_kw))
        p.out_path, p.err_path = out_path, err_path
        self._procs.append(p)
        return p

    def aws_cli(self, *args, creds=None, endpoint=None, attempts=1,
                timeout=60.0, env=None):
        """Run ``aws --endpoint-url ENDPOINT --output json ARGS...``.

        ``attempts`` is AWS_MAX_ATTEMPTS (1: retries off, faults are seen).
        Returns CompletedProcess; ``.json()`` is not provided: use
        json.loads(r.stdout).
        """
        exe = os.path.join(os.path.dirname(sys.executable), 'aws')
        if not os.path.exists(exe):
            exe = shutil.which('aws') or 'aws'
        e = env or self.env(creds, endpoint, AWS_MAX_ATTEMPTS=attempts,
                            AWS_RETRY_MODE='standard', AWS_PAGER='')
        return self.run([exe, '--endpoint-url', endpoint or self.endpoint,
                         '--output', 'json'] + list(args),
                        env=e, timeout=timeout)

    # ---------------------------------------------------------- paths

    @staticmethod
    def build_path(rel, must_exist=True):
        return build_path(rel, must_exist)

    @staticmethod
    def source_path(rel=''):
        return source_path(rel)

    # ----------------------------------------------------------- close

    def close(self):
        """Stop this test's children and proxies, remove its temp dir."""
        for p in reversed(self._procs):
            stop_process(p)
        self._procs = []
        for c in self._clients.values():
            c.close()
        self._clients = {}
        for p in self._proxies:
            p.stop()
        self._proxies = []
        if self.tmp and not os.environ.get('RIG_KEEP'):
            shutil.rmtree(self.tmp, ignore_errors=True)


class RigTestCase(unittest.TestCase):
    """unittest base: one moto per module (process), a fresh Rig per test."""

    moto = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.moto = MotoServer.shared()

    def setUp(self):
        super().setUp()
        if not self.moto.alive():
            raise RuntimeError('moto_server died (exit %s); log tail:\n%s'
                               % (self.moto.proc.returncode, self.moto.log_tail()))
        self.rig = Rig(self.moto)
        self.addCleanup(self.rig.close)

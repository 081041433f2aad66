# SPDX-License-Identifier: MIT
"""A fault-injecting HTTP/1.1 reverse proxy that sits in front of moto.

moto is kinder than AWS: it never throttles, never fails, accepts a new key
at once and accepts Inactive keys on S3.  The proxy closes those gaps so the
tests can stay as strict as AWS.

It runs in-process, in threads: a test starts it, hands ``proxy.endpoint``
to the C binaries it runs as child processes (they connect over loopback),
and configures faults and reads statistics through Python calls.

Forwarding is byte-identical: the request line (method, path and query
exactly as received), every header (Host included) and the body go to moto
unchanged, because SigV4 signs them.  Only the *response* is re-framed: moto
(werkzeug) answers every request with ``Connection: close``, so the proxy
reads the whole answer and re-sends it with a ``Content-Length`` and its own
keep-alive decision, which gives the client working keep-alive.

Every behaviour is off by default::

    proxy = FaultProxy(moto_endpoint).start()
    proxy.configure(throttle=Next(2, service='iam'))      # next 2 IAM calls
    proxy.configure(error503=0.25, seed=7)                # 25 %, seeded RNG
    proxy.configure(reset=Next(1, action='CreateAccessKey', phase='after'))
    proxy.configure(slow=2.0)                             # every answer +2 s
    proxy.configure(propagation=3.0, propagation_p=0.5, propagation_always=0.5)
    proxy.configure(refuse_inactive=True)
    proxy.configure(check_skew=True)        # refuse requests signed > 15 min off
    proxy.stats(); proxy.log(); proxy.stop()

A request is classified as IAM or S3 (or any other service) from the
credential scope of its SigV4 ``Authorization`` header (or the
``X-Amz-Credential`` query parameter of a presigned URL); the access key id
comes from the same place.  Requests to ``/moto-api/`` are classified as
``moto`` and are never faulted.

This module never logs or stores a secret: ``CreateAccessKey`` answers are
parsed for the key id and the user name only.
"""

import base64
import calendar
import collections
import fnmatch
import http.client
import json
import os
import random
import re
import secrets
import socket
import struct
import sys
import threading
import time
import urllib.parse
import uuid
from email.utils import formatdate

__all__ = [
        'FaultProxy', 'Fault', 'Rate', 'Next', 'LogEntry', 'ManualClock',
        'FAULT_KINDS', 'MUTATING_IAM_PREFIXES',
]

#: Injected fault kinds, in the order they are tried on each request (at most
#: one of them fires per request; ``slow`` is separate and may come on top).
FAULT_KINDS = ('reset', 'throttle', 'error500', 'error503')

#: IAM actions whose name starts with one of these change state.
MUTATING_IAM_PREFIXES = ('Create', 'Delete', 'Update', 'Put', 'Attach',
                         'Detach', 'Tag', 'Untag', 'Add', 'Remove', 'Set',
                         'Enable', 'Deactivate', 'Change', 'Reset', 'Upload')

_QUERY_PROTOCOL_SERVICES = ('iam', 'sts')
_MAX_HEAD = 64 * 1024
_MAX_BODY = 64 * 1024 * 1024
_MAX_LOG = 200000

_CRED_RE = re.compile(r'Credential=([^/,\s]+)/(\d{8})/([^/,\s]+)/([^/,\s]+)/aws4_request')
_CRED_QUERY_RE = re.compile(r'^([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request$')


class Fault:
    """One configured fault.

    It fires on a matching request either for the next ``next`` matching
    requests (while that count lasts) or with probability ``rate`` (drawn
    from the proxy's seeded RNG, so sequential runs are reproducible).

    Matching: ``service`` ('iam', 's3', ...), ``action`` (IAM action name, or
    ``'METHOD /path'`` for S3), ``key_id`` (access key id) and ``not_key_id``
    (every key but that one: say, any key but the admin's); ``service`` and
    ``action`` are shell-style globs (``'GET /bucket*'``), ``None`` matches
    anything.  ``phase='before'`` answers without moto ever seeing the request;
    ``phase='after'`` lets moto execute it and then replaces (or drops, or
    delays) the answer, like a response lost on the way back.  ``seconds`` is
    the delay of a ``slow`` fault; ``code``/``status`` override the error.
    """

    def __init__(self, rate=0.0, next=0, service=None, action=None,
                 key_id=None, phase='before', seconds=0.0, code=None,
                 status=None, message=None, not_key_id=None):
        if phase not in ('before', 'after'):
                raise ValueError('phase must be before or after')
        if not 0.0 <= float(rate) <= 1.0:
                raise ValueError('rate must be within [0, 1]')
        self.rate = float(rate)
        self.next = int(next)
        self.service = service
        self.action = action
        self.key_id = key_id
        self.not_key_id = not_key_id
        self.phase = phase
        self.seconds = float(seconds)
        self.code = code
        self.status = status
        self.message = message

    def matches(self, req):
        if self.service is not None and not _glob(self.service, req.service):
                return False
        if self.action is not None and not _glob(self.action, req.action):
                return False
        if self.key_id is not None and self.key_id != req.key_id:
                return False
        if self.not_key_id is not None and self.not_key_id == req.key_id:
                return False
        return True

    def __repr__(self):
        return ('Fault(rate=%r, next=%r, service=%r, action=%r, key_id=%r, '
                'phase=%r, seconds=%r)' % (self.rate, self.next, self.service,
                                           self.action, self.key_id,
                                           self.phase, self.seconds))


def Rate(p, **match):
    """A fault that fires with probability ``p`` on matching requests."""
    return Fault(rate=p, **match)


def Next(n, **match):
    """A fault that fires on the next ``n`` matching requests, then never."""
    return Fault(next=n, **match)


def _glob(pattern, value):
    if value is None:
        return False
    if isinstance(pattern, (tuple, list, set, frozenset)):
        return any(fnmatch.fnmatchcase(value, p) for p in pattern)
    return fnmatch.fnmatchcase(value, pattern)


class ManualClock:
    """A clock for FaultProxy(clock=...) that only moves when told to, so
    propagation windows can be tested without waiting and without timing
    luck: ``clock.advance(1.5)``."""

    def __init__(self, start=1000.0):
        self._t = float(start)
        self._lock = threading.Lock()

    def __call__(self):
        with self._lock:
            return self._t

    def advance(self, seconds):
        with self._lock:
            self._t += seconds
            return self._t


#: One proxied request.  ``status`` is the HTTP status the client got (None
#: when the connection was reset), ``fault`` the injected fault kind (None
#: when moto's answer went through untouched), ``forwarded`` whether moto saw
#: the request, ``upstream_status`` moto's own status (None if not forwarded),
#: ``time`` the proxy clock when the request arrived.
LogEntry = collections.namedtuple('LogEntry', [
        'service', 'action', 'key_id', 'status', 'fault', 'forwarded',
        'upstream_status', 'method', 'path', 'time'])


class _Request:
    __slots__ = ('method', 'target', 'version', 'head', 'headers', 'body',
                 'raw_body', 'service', 'key_id', 'action', 'params', 'path',
                 'query', 'time')

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def keep_alive(self):
        conn = (self.header('Connection') or '').lower()
        tokens = {t.strip() for t in conn.split(',')}
        if self.version == 'HTTP/1.0':
            return 'keep-alive' in tokens
        return 'close' not in tokens


class _Response:
    __slots__ = ('status', 'reason', 'headers', 'body')

    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default


class _ResetConnection(Exception):
    pass


class _BadRequest(Exception):
    pass


# --------------------------------------------------------------- wire parsing

def _read_line(rfile, limit):
    line = rfile.readline(limit + 1)
    if len(line) > limit:
        raise _BadRequest('line too long')
    return line


def _read_head(rfile, first_line_optional=True):
    """Read a message head; returns (raw bytes, start line, [(k, v)]).

    Returns None on a clean EOF before the first byte.
    """
    raw = bytearray()
    line = _read_line(rfile, _MAX_HEAD)
    # Tolerate blank lines before a request line (RFC 9112 section 2.2).
    while line in (b'\r\n', b'\n'):
        line = _read_line(rfile, _MAX_HEAD)
    if not line:
        if first_line_optional:
            return None
        raise _BadRequest('EOF before start line')
    raw += line
    start = line.rstrip(b'\r\n').decode('latin-1')
    headers = []
    while True:
        line = _read_line(rfile, _MAX_HEAD)
        if not line:
            raise _BadRequest('EOF inside head')
        raw += line
        if len(raw) > _MAX_HEAD:
            raise _BadRequest('head too large')
        if line in (b'\r\n', b'\n'):
            break
        text = line.rstrip(b'\r\n').decode('latin-1')
        if text[:1] in (' ', '\t') and headers:
            k, v = headers[-1]
            headers[-1] = (k, v + ' ' + text.strip())
            continue
        k, sep, v = text.partition(':')
        if not sep:
            raise _BadRequest('malformed header line')
        headers.append((k.strip(), v.strip()))
    return bytes(raw), start, headers


def _read_exact(rfile, n):
    data = rfile.read(n)
    if data is None or len(data) != n:
        raise _BadRequest('short body')
    return data


def _read_chunked(rfile):
    """Read a chunked body; returns (raw bytes as received, decoded bytes)."""
    raw = bytearray()
    decoded = bytearray()
    while True:
        line = _read_line(rfile, 4096)
        if not line:
            raise _BadRequest('EOF in chunked body')
        raw += line
        size_text = line.split(b';', 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise _BadRequest('bad chunk size') from None
        if size == 0:
            # Trailers up to the blank line.
            while True:
                t = _read_line(rfile, _MAX_HEAD)
                if not t:
                    raise _BadRequest('EOF in trailers')
                raw += t
                if t in (b'\r\n', b'\n'):
                    return bytes(raw), bytes(decoded)
        if len(decoded) + size > _MAX_BODY:
            raise _BadRequest('body too large')
        chunk = _read_exact(rfile, size)
        raw += chunk
        decoded += chunk
        crlf = _read_line(rfile, 4)
        raw += crlf
        if crlf not in (b'\r\n', b'\n'):
            raise _BadRequest('missing CRLF after chunk')


def _header(headers, name):
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def _is_chunked(headers):
    te = _header(headers, 'Transfer-Encoding')
    return te is not None and 'chunked' in te.lower()


def _classify(req):
    """Fill in service, key id, action and parameters of a request."""
    parsed = urllib.parse.urlsplit(req.target)
    req.path = parsed.path
    req.query = parsed.query
    req.service = None
    req.key_id = None
    auth = req.header('Authorization') or ''
    m = _CRED_RE.search(auth)
    if m:
        req.key_id, req.service = m.group(1), m.group(4)
    else:
        q = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
        cred = (q.get('X-Amz-Credential') or [None])[0]
        m = _CRED_QUERY_RE.match(cred or '')
        if m:
            req.key_id, req.service = m.group(1), m.group(4)
        elif auth.startswith('AWS '):
            # SigV2 (S3 only): "AWS AKID:signature".
            req.key_id = auth[4:].split(':', 1)[0].strip()
            req.service = 's3'
    if req.service is None:
        req.service = 'moto' if req.path.startswith('/moto-api') else 'unknown'

    req.params = {}
    if req.service in _QUERY_PROTOCOL_SERVICES:
        params = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
        ctype = (req.header('Content-Type') or '').lower()
        if req.body and (not ctype or 'x-www-form-urlencoded' in ctype):
            body = urllib.parse.parse_qs(req.body.decode('utf-8', 'replace'),
                                         keep_blank_values=True)
            for k, v in body.items():
                params.setdefault(k, []).extend(v)
        req.params = {k: v[0] for k, v in params.items()}
        req.action = req.params.get('Action') or '%s %s' % (req.method, req.path)
    else:
        req.action = '%s %s' % (req.method, req.path)


# ------------------------------------------------------------ error documents

def _xml_escape(s):
    return (str(s).replace('&', '&amp;').replace('<', '&lt;')
            .replace('>', '&gt;').replace('"', '&quot;'))


_REASONS = {400: 'Bad Request', 403: 'Forbidden', 500: 'Internal Server Error',
            502: 'Bad Gateway', 503: 'Service Unavailable'}


def iam_error(status, code, message):
    """(status, headers, body) of an AWS Query-protocol (IAM) error."""
    rid = str(uuid.uuid4())
    kind = 'Sender' if status < 500 else 'Receiver'
    body = ('<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
            '<Error><Type>%s</Type><Code>%s</Code><Message>%s</Message></Error>'
            '<RequestId>%s</RequestId></ErrorResponse>\n'
            % (kind, _xml_escape(code), _xml_escape(message), rid)).encode()
    headers = [('x-amzn-RequestId', rid), ('Content-Type', 'text/xml'),
               ('Date', formatdate(usegmt=True))]
    return status, headers, body


def s3_error(status, code, message, extra=None):
    """(status, headers, body) of an S3 REST error."""
    rid = secrets.token_hex(8).upper()
    host_id = base64.b64encode(os.urandom(48)).decode()
    fields = ''.join('<%s>%s</%s>' % (k, _xml_escape(v), k)
                     for k, v in (extra or {}).items())
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<Error><Code>%s</Code><Message>%s</Message>%s'
            '<RequestId>%s</RequestId><HostId>%s</HostId></Error>'
            % (_xml_escape(code), _xml_escape(message), fields, rid,
               host_id)).encode()
    headers = [('x-amz-request-id', rid), ('x-amz-id-2', host_id),
               ('Content-Type', 'application/xml'),
               ('Date', formatdate(usegmt=True)), ('Server', 'AmazonS3')]
    return status, headers, body


# Default errors per fault kind: (IAM status, code, message), (S3 ...).
# IAM's documented common error for a 500 is InternalFailure; S3's is
# InternalError.  Both can be overridden per Fault (code=, status=).
_FAULT_ERRORS = {
        'throttle': ((400, 'Throttling', 'Rate exceeded'),
                     (503, 'SlowDown', 'Please reduce your request rate.')),
        'error500': ((500, 'InternalFailure',
                      'The request processing has failed because of an '
                      'unknown error, exception or failure.'),
                     (500, 'InternalError',
                      'We encountered an internal error. Please try again.')),
        'error503': ((503, 'ServiceUnavailable',
                      'The request has failed due to a temporary failure of '
                      'the server.'),
                     (503, 'ServiceUnavailable',
                      'Please reduce your request rate.')),
}


def _refusal(req):
    """The answer AWS gives for a key it does not know (yet) or is Inactive."""
    if req.service in _QUERY_PROTOCOL_SERVICES:
        return iam_error(403, 'InvalidClientTokenId',
                         'The security token included in the request is '
                         'invalid.')
    return s3_error(403, 'InvalidAccessKeyId',
                    'The AWS Access Key Id you provided does not exist in '
                    'our records.', {'AWSAccessKeyId': req.key_id or ''})


def _fault_error(kind, fault, req):
    iam, s3 = _FAULT_ERRORS[kind]
    status, code, message = iam if req.service in _QUERY_PROTOCOL_SERVICES else s3
    status = fault.status or status
    code = fault.code or code
    message = fault.message or message
    if req.service in _QUERY_PROTOCOL_SERVICES:
        return iam_error(status, code, message)
    return s3_error(status, code, message)


# ------------------------------------------------------------------ the proxy

class FaultProxy:
    """The fault-injecting reverse proxy.  See the module docstring.

    ``FaultProxy(upstream)`` with ``upstream`` the moto endpoint
    (``http://127.0.0.1:PORT``); ``start()`` binds a free loopback port and
    returns self; ``endpoint`` is then ``http://127.0.0.1:PORT``.
    """

    def __init__(self, upstream, seed=0, clock=None, upstream_timeout=60.0,
                 idle_timeout=120.0):
        u = urllib.parse.urlsplit(upstream)
        if u.scheme != 'http' or not u.hostname:
            raise ValueError('upstream must be http://HOST:PORT')
        self.upstream = upstream.rstrip('/')
        self._up_host = u.hostname
        self._up_port = u.port or 80
        # Key ages and log times use this clock (default time.monotonic);
        # delays of slow faults are always real time.
        self.clock = clock or time.monotonic
        self.upstream_timeout = upstream_timeout
        self.idle_timeout = idle_timeout
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._listener = None
        self._accept_thread = None
        self._conns = {}
        self._threads = set()
        self.port = None
        self.endpoint = None
        self._rng = random.Random(seed)
        self._created = {}      # key id -> (user, monotonic creation time)
        self._reactivated = {}  # key id -> monotonic time it was made Active again
        self._tracked = {}      # key id -> status seen through the proxy
        self._overrides = {}    # key id -> status set by the test
        self._defaults()
        self.clear_stats()

    # ------------------------------------------------------------ lifecycle

    def _defaults(self):
        self._faults = {k: [] for k in FAULT_KINDS}
        self._slow = []
        self.propagation = 0.0
        self.propagation_p = 0.5
        self.propagation_always = 0.0
        self.refuse_inactive = False
        # moto never checks the request time; AWS refuses a signature more
        # than 15 minutes off the real clock (not the ManualClock).
        self.check_skew = False
        self.status_source = 'moto'

    def start(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(('127.0.0.1', 0))
        s.listen(128)
        s.settimeout(0.2)
        self._listener = s
        self.port = s.getsockname()[1]
        self.endpoint = 'http://127.0.0.1:%d' % self.port
        self._accept_thread = threading.Thread(
                target=self._accept_loop, name='faultproxy-accept', daemon=True)
        self._accept_thread.start()
        return self

    def stop(self, timeout=5.0):
        """Stop accepting, close every client connection, join the threads."""
        if self._listener is None:
            return
        self._stopping.set()
        deadline = time.monotonic() + timeout
        if self._accept_thread is not None:
            self._accept_thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            conns = list(self._conns.values())
            threads = list(self._threads)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        try:
            self._listener.close()
        except OSError:
            pass
        self._listener = None

    def __enter__(self):
        return self.start() if self._listener is None else self

    def __exit__(self, *exc):
        self.stop()

    # ---------------------------------------------------------- configuration

    def configure(self, **kw):
        """Change behaviours; only the ones named change.

        Fault kinds ``reset``, ``throttle``, ``error500``, ``error503`` and
        ``slow`` take a Fault, a list of Faults, a float (a rate; for ``slow``
        the delay in seconds of every request) or None/0 (off).
        ``propagation`` (seconds, 0 = off), ``propagation_p`` (refusal
        probability inside the window, default 0.5), ``propagation_always``
        (seconds at the start of the window where every request is refused),
        ``refuse_inactive`` (bool), ``status_source`` ('moto' or 'proxy'),
        ``seed`` (reseeds the RNG).  Returns self.
        """
        known = FAULT_KINDS + ('slow', 'propagation', 'propagation_p',
                               'propagation_always', 'refuse_inactive',
                               'status_source', 'seed', 'check_skew')
        unknown = sorted(set(kw) - set(known))
        if unknown:
            raise TypeError('unknown proxy setting(s): %s' % ', '.join(unknown))
        with self._lock:
            for name, value in kw.items():
                if name in FAULT_KINDS:
                    self._faults[name] = self._fault_list(name, value)
                elif name == 'slow':
                    self._slow = self._fault_list(name, value)
                elif name == 'propagation':
                    self.propagation = float(value or 0.0)
                elif name == 'propagation_p':
                    if not 0.0 <= float(value) <= 1.0:
                        raise ValueError('propagation_p must be within [0, 1]')
                    self.propagation_p = float(value)
                elif name == 'propagation_always':
                    self.propagation_always = float(value or 0.0)
                elif name == 'refuse_inactive':
                    self.refuse_inactive = bool(value)
                elif name == 'check_skew':
                    self.check_skew = bool(value)
                elif name == 'status_source':
                    if value not in ('moto', 'proxy'):
                        raise ValueError("status_source is 'moto' or 'proxy'")
                    self.status_source = value
                elif name == 'seed':
                    self._rng.seed(value)
        return self

    @staticmethod
    def _fault_list(name, value):
        if value is None or value is False or value == 0:
            return []
        if isinstance(value, Fault):
            return [value]
        if isinstance(value, (list, tuple)):
            if not all(isinstance(f, Fault) for f in value):
                raise TypeError('%s: expected Fault objects' % name)
            return list(value)
        if isinstance(value, (int, float)):
            if name == 'slow':
                return [Fault(rate=1.0, seconds=float(value))]
            return [Fault(rate=float(value))]
        raise TypeError('%s: expected a Fault, a list of Faults or a number' % name)

    def reset_faults(self):
        """Turn every behaviour off again (keys and statistics are kept)."""
        with self._lock:
            self._defaults()

    # --------------------------------------------------------- key tracking

    def set_key_status(self, key_id, status):
        """Override the status the proxy assumes for ``key_id``.

        ``'Active'``, ``'Inactive'`` or ``'Deleted'``; ``None`` drops the
        override.  An ``UpdateAccessKey``/``DeleteAccessKey`` for the key that
        later succeeds through the proxy drops the override too.
        """
        with self._lock:
            if status is None:
                self._overrides.pop(key_id, None)
            else:
                if status not in ('Active', 'Inactive', 'Deleted'):
                    raise ValueError('bad status %r' % status)
                self._overrides[key_id] = status

    def mark_new_key(self, key_id, user=None, created=None):
        """Treat a key created outside the proxy as new (for propagation)."""
        with self._lock:
            self._created[key_id] = (user, created if created is not None
                                     else self.clock())

    def key_created(self, key_id):
        """Proxy clock time at which ``key_id`` was seen created, or None."""
        with self._lock:
            info = self._created.get(key_id)
            return info[1] if info else None

    def propagated_at(self, key_id):
        """Proxy clock time from which ``key_id`` is never refused for
        propagation, or None if the proxy does not consider it new."""
        with self._lock:
            info = self._created.get(key_id)
            if info is None:
                return None
            return info[1] + max(self.propagation, self.propagation_always)

    def created_keys(self):
        """Key ids seen created through the proxy (or marked new), in order."""
        with self._lock:
            return list(self._created)

    def key_status(self, key_id):
        """The status the proxy uses to decide on ``refuse_inactive``.

        Inactive status is tracked three ways, in this order of precedence:
        an explicit ``set_key_status`` override; with ``status_source='moto'``
        (the default) moto's own record, read from its unauthenticated
        ``/moto-api/data.json`` on every request that needs it (about 4 ms,
        not cached, so changes made directly against moto -- by the test
        rig, say -- count at once); and, as a fallback when that lookup
        fails or with ``status_source='proxy'``, the status learnt from the
        ``CreateAccessKey``/``UpdateAccessKey``/``DeleteAccessKey`` answers
        that passed through this proxy.  Unknown keys count as Active.
        """
        with self._lock:
            if key_id in self._overrides:
                return self._overrides[key_id]
            source = self.status_source
            tracked = self._tracked.get(key_id)
        if source == 'moto':
            try:
                st = self._moto_status(key_id)
            except (OSError, ValueError, http.client.HTTPException):
                st = None
            if st is not None:
                if tracked == 'Deleted':
                    return 'Deleted'
                return st
        return tracked or 'Active'

    def _moto_status(self, key_id):
        conn = http.client.HTTPConnection(self._up_host, self._up_port,
                                          timeout=self.upstream_timeout)
        try:
            conn.request('GET', '/moto-api/data.json')
            resp = conn.getresponse()
            data = resp.read()
            if resp.status != 200:
                return None
        finally:
            conn.close()
        doc = json.loads(data)
        for key in doc.get('iam', {}).get('AccessKey', []):
            if key.get('access_key_id') == key_id:
                return key.get('status')
        return None

    # ------------------------------------------------------------ statistics

    def clear_stats(self):
        with self._lock:
            self._requests = collections.Counter()
            self._fault_counts = collections.Counter()
            self._log = []
            self._errors = []
            self._connections = 0

    def stats(self):
        """Counts so far, as plain data.

        ``{'requests': {(service, action): n}, 'faults': {kind: n},
        'total': n, 'forwarded': n, 'connections': client connections
        accepted, 'errors': [proxy-internal errors]}``.
        Fault kinds counted: reset, throttle, error500, error503, slow,
        propagation, inactive.
        """
        with self._lock:
            return {
                'requests': dict(self._requests),
                'faults': dict(self._fault_counts),
                'total': len(self._log),
                'forwarded': sum(1 for e in self._log if e.forwarded),
                'connections': self._connections,
                'errors': list(self._errors),
            }

    def log(self, service=None, action=None, key_id=None, fault=None,
            forwarded=None):
        """The LogEntry list, optionally filtered (globs as in Fault)."""
        with self._lock:
            entries = list(self._log)
        out = []
        for e in entries:
            if service is not None and not _glob(service, e.service):
                continue
            if action is not None and not _glob(action, e.action):
                continue
            if key_id is not None and e.key_id != key_id:
                continue
            if fault is not None and e.fault != fault:
                continue
            if forwarded is not None and e.forwarded != forwarded:
                continue
            out.append(e)
        return out

    def count(self, **filters):
        """len(self.log(**filters))."""
        return len(self.log(**filters))

    def mutations(self):
        """Entries for state-changing calls that reached moto (for dry runs):
        IAM actions named Create*/Delete*/Update*/Put*/..., and S3 requests
        other than GET and HEAD."""
        out = []
        for e in self.log(forwarded=True):
            if e.service in _QUERY_PROTOCOL_SERVICES:
                if e.action.startswith(MUTATING_IAM_PREFIXES):
                    out.append(e)
            elif e.service == 's3' and e.method not in ('GET', 'HEAD'):
                out.append(e)
        return out

    def _record(self, req, status, fault, forwarded, upstream_status):
        entry = LogEntry(req.service, req.action, req.key_id, status, fault,
                         forwarded, upstream_status, req.method, req.path,
                         req.time)
        with self._lock:
            self._requests[(req.service, req.action)] += 1
            if fault:
                self._fault_counts[fault] += 1
            if len(self._log) < _MAX_LOG:
                self._log.append(entry)

    def _error(self, what):
        with self._lock:
            self._errors.append(what)
        print('# faultproxy: %s' % what, file=sys.stderr)

    # ---------------------------------------------------------- serving

    def _accept_loop(self):
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                if self._stopping.is_set():
                    return
                continue
            conn.settimeout(self.idle_timeout)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            t = threading.Thread(target=self._serve, args=(conn,),
                                 name='faultproxy-conn', daemon=True)
            with self._lock:
                self._conns[id(conn)] = conn
                self._threads.add(t)
                self._connections += 1
            t.start()

    def _serve(self, conn):
        cid = id(conn)
        rfile = conn.makefile('rb')
        try:
            while not self._stopping.is_set():
                try:
                    req = self._read_request(conn, rfile)
                except _BadRequest as e:
                    self._send(conn, 400, 'Bad Request',
                               [('Content-Type', 'text/plain')],
                               ('bad request: %s\n' % e).encode(), False)
                    return
                if req is None:
                    return
                if not self._handle(conn, req):
                    return
        except _ResetConnection:
            _reset(conn)
            conn = None
        except (socket.timeout, ConnectionError, OSError):
            pass
        except Exception as e:  # a bug in the proxy: make it visible
            self._error('internal error: %r' % (e,))
        finally:
            try:
                rfile.close()
            except OSError:
                pass
            if conn is not None:
                try:
                    conn.close()
                except OSError:
                    pass
            with self._lock:
                self._conns.pop(cid, None)
                self._threads.discard(threading.current_thread())

    def _read_request(self, conn, rfile):
        head = _read_head(rfile)
        if head is None:
            return None
        raw, start, headers = head
        parts = start.split(' ')
        if len(parts) != 3 or not parts[2].startswith('HTTP/1.'):
            raise _BadRequest('malformed request line')
        req = _Request()
        req.method, req.target, req.version = parts
        req.head = raw
        req.headers = headers
        if _is_chunked(headers):
            has_body = True
        else:
            cl = _header(headers, 'Content-Length')
            try:
                length = int(cl) if cl is not None else 0
            except ValueError:
                raise _BadRequest('bad Content-Length') from None
            if length < 0 or length > _MAX_BODY:
                raise _BadRequest('bad Content-Length')
            has_body = length > 0
        expect = (_header(headers, 'Expect') or '').lower()
        if has_body and expect == '100-continue' and req.version == 'HTTP/1.1':
            # Answer the client's expectation ourselves; the Expect header
            # still goes to moto unchanged (it may be signed), and the
            # interim 100 moto sends back is skipped when reading its answer.
            conn.sendall(b'HTTP/1.1 100 Continue\r\n\r\n')
        if _is_chunked(headers):
            req.raw_body, req.body = _read_chunked(rfile)
        elif has_body:
            req.body = _read_exact(rfile, length)
            req.raw_body = req.body
        else:
            req.body = req.raw_body = b''
        _classify(req)
        return req

    def _pick(self, req, phase):
        """The fault kind and Fault to inject in this phase, or (None, None)."""
        if req.service == 'moto':
            return None, None
        with self._lock:
            for kind in FAULT_KINDS:
                for f in self._faults[kind]:
                    if f.phase != phase or not f.matches(req):
                        continue
                    if f.next > 0:
                        f.next -= 1
                        return kind, f
                    if f.rate > 0.0 and self._rng.random() < f.rate:
                        return kind, f
        return None, None

    def _delay(self, req, phase):
        if req.service == 'moto':
            return
        seconds = 0.0
        with self._lock:
            for f in self._slow:
                if f.phase != phase or not f.matches(req):
                    continue
                if f.next > 0:
                    f.next -= 1
                elif not (f.rate > 0.0 and self._rng.random() < f.rate):
                    continue
                seconds = f.seconds
                break
        if seconds > 0.0:
            with self._lock:
                self._fault_counts['slow'] += 1
            self._stopping.wait(seconds)

    def _auth_refusal(self, req):
        """'propagation' or 'inactive' when AWS would refuse this key now."""
        if req.key_id is None or req.service in ('moto', 'unknown'):
            return None
        with self._lock:
            # A key made Active again reaches IAM's replicas as unevenly
            # as a new one.
            info = self._created.get(req.key_id)
            since = max(info[1] if info is not None else float('-inf'),
                        self._reactivated.get(req.key_id, float('-inf')))
            age = req.time - since
            if age < self.propagation_always:
                return 'propagation'
            if age < self.propagation and self._rng.random() < self.propagation_p:
                return 'propagation'
            refuse_inactive = self.refuse_inactive
        if refuse_inactive and self.key_status(req.key_id) in ('Inactive', 'Deleted'):
            return 'inactive'
        return None

    def _skew_refusal(self, req):
        """(status, headers, body) of AWS's answer to a request signed with
        a clock more than 15 minutes off, or None."""
        if not self.check_skew or req.service in ('moto', 'unknown'):
            return None
        stamp = req.header('x-amz-date')
        if not stamp:
            return None
        try:
            signed = calendar.timegm(time.strptime(stamp, '%Y%m%dT%H%M%SZ'))
        except ValueError:
            return None
        now = time.time()
        if abs(signed - now) <= 15 * 60:
            return None
        if req.service in _QUERY_PROTOCOL_SERVICES:
            return iam_error(403, 'SignatureDoesNotMatch',
                             'Signature expired: %s is now earlier than %s'
                             % (stamp, time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(now - 900))))
        return s3_error(403, 'RequestTimeTooSkewed',
                        'The difference between the request time and the '
                        'current time is too large.')

    def _handle(self, conn, req):
        """Serve one request; returns whether to keep the connection."""
        keep = req.keep_alive()
        req.time = self.clock()
        self._delay(req, 'before')

        skewed = self._skew_refusal(req)
        if skewed:
            st, hdrs, body = skewed
            self._record(req, st, 'skew', False, None)
            self._send(conn, st, _REASONS.get(st, ''), hdrs, body, keep, req)
            return keep

        refusal = self._auth_refusal(req)
        if refusal:
            st, hdrs, body = _refusal(req)
            self._record(req, st, refusal, False, None)
            self._send(conn, st, _REASONS.get(st, ''), hdrs, body, keep, req)
            return keep

        kind, fault = self._pick(req, 'before')
        if kind is not None:
            return self._inject(conn, req, kind, fault, keep, False, None)

        try:
            resp = self._forward(req)
        except (OSError, _BadRequest, http.client.HTTPException) as e:
            self._error('upstream failed for %s %s: %r'
                        % (req.method, req.path, e))
            self._record(req, 502, None, True, None)
            self._send(conn, 502, 'Bad Gateway', [('Content-Type', 'text/plain')],
                       b'upstream failed\n', False, req)
            return False
        self._observe(req, resp)

        kind, fault = self._pick(req, 'after')
        if kind is not None:
            self._delay(req, 'after')
            return self._inject(conn, req, kind, fault, keep, True, resp.status)

        self._delay(req, 'after')
        self._record(req, resp.status, None, True, resp.status)
        self._send(conn, resp.status, resp.reason, resp.headers, resp.body,
                   keep, req, upstream=True)
        return keep

    def _inject(self, conn, req, kind, fault, keep, forwarded, upstream_status):
        if kind == 'reset':
            self._record(req, None, 'reset', forwarded, upstream_status)
            raise _ResetConnection()
        st, hdrs, body = _fault_error(kind, fault, req)
        self._record(req, st, kind, forwarded, upstream_status)
        self._send(conn, st, _REASONS.get(st, ''), hdrs, body, keep, req)
        return keep

    def _forward(self, req):
        up = socket.create_connection((self._up_host, self._up_port),
                                      timeout=self.upstream_timeout)
        try:
            up.sendall(req.head + req.raw_body)
            rfile = up.makefile('rb')
            try:
                while True:
                    head = _read_head(rfile, first_line_optional=False)
                    raw, start, headers = head
                    parts = start.split(' ', 2)
                    if len(parts) < 2 or not parts[0].startswith('HTTP/'):
                        raise _BadRequest('bad upstream status line')
                    status = int(parts[1])
                    reason = parts[2] if len(parts) > 2 else ''
                    if 100 <= status < 200:
                        continue  # interim (100 Continue): not for the client
                    break
                if req.method == 'HEAD' or status in (204, 304):
                    body = b''
                elif _is_chunked(headers):
                    _, body = _read_chunked(rfile)
                elif _header(headers, 'Content-Length') is not None:
                    body = _read_exact(rfile, int(_header(headers, 'Content-Length')))
                else:
                    body = rfile.read()
            finally:
                rfile.close()
        finally:
            up.close()
        return _Response(status, reason, headers, body)

    def _observe(self, req, resp):
        """Learn key ids and statuses from IAM answers (never the secret)."""
        if req.service != 'iam' or resp.status != 200:
            return
        action = req.action
        if action == 'CreateAccessKey':
            m = re.search(rb'<AccessKeyId>([^<]+)</AccessKeyId>', resp.body)
            u = re.search(rb'<UserName>([^<]+)</UserName>', resp.body)
            if m:
                kid = m.group(1).decode()
                with self._lock:
                    self._created[kid] = (u.group(1).decode() if u else None,
                                          self.clock())
                    self._tracked[kid] = 'Active'
        elif action in ('UpdateAccessKey', 'DeleteAccessKey'):
            kid = req.params.get('AccessKeyId')
            if not kid:
                return
            status = ('Deleted' if action == 'DeleteAccessKey'
                      else req.params.get('Status'))
            with self._lock:
                self._overrides.pop(kid, None)
                if status == 'Active' and self._tracked.get(kid) == 'Inactive':
                    self._reactivated[kid] = self.clock()
                self._tracked[kid] = status

    def _send(self, conn, status, reason, headers, body, keep, req=None,
              upstream=False):
        head_only = req is not None and req.method == 'HEAD'
        lines = ['HTTP/1.1 %d %s' % (status, reason or _REASONS.get(status, ''))]
        for k, v in headers:
            kl = k.lower()
            if kl in ('connection', 'keep-alive', 'transfer-encoding',
                      'proxy-connection'):
                continue
            if kl == 'content-length' and not (head_only and upstream):
                continue
            lines.append('%s: %s' % (k, v))
        if not head_only:
            lines.append('Content-Length: %d' % len(body))
        elif not upstream:
            lines.append('Content-Length: 0')
        lines.append('Connection: %s' % ('keep-alive' if keep else 'close'))
        data = ('\r\n'.join(lines) + '\r\n\r\n').encode('latin-1')
        if not head_only:
            data += body
        conn.sendall(data)


def _reset(conn):
    """Close with an RST instead of a FIN (SO_LINGER on, timeout 0)."""
    try:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                        struct.pack('ii', 1, 0))
    except OSError:
        pass
    try:
        conn.close()
    except OSError:
        pass


def main(argv=None):
    """Run a proxy by hand: faultproxy.py UPSTREAM [JSON-SETTINGS]."""
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('upstream')
    ap.add_argument('settings', nargs='?', default='{}',
                    help='JSON object of configure() settings with numbers, '
                         'e.g. {"throttle": 0.2, "propagation": 5}')
    args = ap.parse_args(argv)
    proxy = FaultProxy(args.upstream).start()
    proxy.configure(**json.loads(args.settings))
    print(proxy.endpoint, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        print(json.dumps({'%s %s' % k: v for k, v in proxy.stats()['requests'].items()},
                         indent=1), file=sys.stderr)
        proxy.stop()
    return 0


if __name__ == '__main__':
    sys.exit(main())

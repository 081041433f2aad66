# SPDX-License-Identifier: MIT
"""An application at work: a long-running boto3 client that lists a bucket
every --interval seconds and prints one line per call.

    python3 tests/rig/consumer.py KIND --endpoint URL --bucket NAME
            [--interval 0.2] [--profile NAME] [--ready-file PATH]

KIND says where it takes its credentials from, as real applications do:

* ``process``: the SDK's own chain for ``--profile`` (AWS_CONFIG_FILE with
  a ``credential_process``); botocore runs the command again when the
  answer's Expiration comes near.
* ``file``: the shared credentials file (AWS_SHARED_CREDENTIALS_FILE);
  when it changes (inode, mtime, size) a new session reads it again.
* ``static``: whatever the chain finds at start (typically AWS_* variables
  from an env file), never read again.  Restarting the process is the only
  way it moves to another key.

Retries are off (one attempt per call) so that a refusal cannot hide
behind a retry; everything else is botocore's default (keep-alive, its
credential refresh).  Each call prints ``TIME ok KEY_ID`` or
``TIME fail KEY_ID CODE`` (KEY_ID is the key the request was signed with,
``-`` when it never was; never a secret) to stdout, flushed.  SIGTERM ends
it after the call in progress.  ``--ready-file``: once the client is built,
the process id is written there (atomically), so a restart can wait for the
new process.
"""

import argparse
import os
import re
import signal
import sys
import threading
import time

import boto3
import botocore.config
import botocore.exceptions

_CRED_RE = re.compile(r'Credential=([A-Z0-9]+)/')


class Consumer:
    def __init__(self, args):
        self.args = args
        self.stop = threading.Event()
        self.signed_with = None
        self.file_state = None
        self.client = None

    def file_stamp(self):
        path = os.environ.get('AWS_SHARED_CREDENTIALS_FILE')
        try:
            st = os.stat(path)
        except (OSError, TypeError):
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def build(self):
        a = self.args
        session = boto3.session.Session(profile_name=a.profile)
        cfg = botocore.config.Config(retries={'mode': 'standard', 'total_max_attempts': 1},
                                     s3={'addressing_style': 'path'}, connect_timeout=5, read_timeout=10)
        self.client = session.client('s3', region_name='us-east-1', endpoint_url=a.endpoint, config=cfg)
        self.client.meta.events.register('before-send.s3', self._before_send)

    def _before_send(self, request, **kwargs):
        auth = request.headers.get('Authorization') or b''
        if isinstance(auth, bytes):
            auth = auth.decode('latin-1')
        m = _CRED_RE.search(auth)
        self.signed_with = m.group(1) if m else None

    def call(self):
        if self.args.kind == 'file':
            stamp = self.file_stamp()
            if stamp != self.file_state:
                self.file_state = stamp
                self.build()
        self.signed_with = None
        try:
            self.client.list_objects_v2(Bucket=self.args.bucket, MaxKeys=1)
            return 'ok', None
        except botocore.exceptions.ClientError as e:
            return 'fail', e.response.get('Error', {}).get('Code') or 'ClientError'
        except Exception as e:  # credential_process failed, connection refused, ...
            return 'fail', type(e).__name__

    def run(self):
        signal.signal(signal.SIGTERM, lambda *_: self.stop.set())
        if self.args.kind == 'file':
            self.file_state = self.file_stamp()
        self.build()
        if self.args.ready_file:
            tmp = self.args.ready_file + '.tmp'
            with open(tmp, 'w') as f:
                f.write('%d\n' % os.getpid())
            os.rename(tmp, self.args.ready_file)
        next_at = time.monotonic()
        while not self.stop.is_set():
            result, code = self.call()
            line = '%.3f %s %s' % (time.time(), result, self.signed_with or '-')
            if code:
                line += ' ' + code
            print(line, flush=True)
            next_at += self.args.interval
            self.stop.wait(max(0.0, next_at - time.monotonic()))
        return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('kind', choices=('process', 'file', 'static'))
    ap.add_argument('--endpoint', required=True)
    ap.add_argument('--bucket', required=True)
    ap.add_argument('--interval', type=float, default=0.2)
    ap.add_argument('--profile')
    ap.add_argument('--ready-file')
    return Consumer(ap.parse_args(argv)).run()


if __name__ == '__main__':
    sys.exit(main())

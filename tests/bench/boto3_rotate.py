#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""boto3_rotate.py: the sequential boto3 baseline of tests/bench/rotate-vs-boto3.

It rotates the access key of each user in turn with the same safe sequence
keyrotd runs for one user (docs/DESIGN.md §1), request for request:

1. ``ListAccessKeys`` as the admin (following ``Marker``).  The key named
   as current in the users file must be there and Active.  An Inactive key
   that is not current is deleted first.  An Active key that is not current
   stops the rotation of that user.
2. ``CreateAccessKey`` as the admin.
3. Verify with the new key: ``ListObjectsV2 max-keys=1`` on the user's
   bucket, ``--consecutive`` successes in a row, ``--interval`` seconds
   apart, each on a new connection.  Propagation errors
   (``InvalidAccessKeyId``, ``InvalidClientTokenId``,
   ``SignatureDoesNotMatch``), throttling and 5xx reset the streak and are
   retried with capped exponential backoff (0.25 s doubling, at most 8 s)
   until ``--timeout``.  ``AccessDenied`` fails at once.
4. Deny probe: ``ListAccessKeys`` for the user, signed with the new key,
   must be refused with ``AccessDenied``.
5. Distribute: with ``--targets-dir``, write ``DIR/USER.credentials``
   (``[default]`` profile) atomically: a temporary file in the same
   directory, fsync, rename, fsync of the directory, mode 0600.
6. ``UpdateAccessKey Status=Inactive`` on the old key, as the admin.
7. ``DeleteAccessKey`` on the old key, as the admin (grace 0).

If verification fails, the new key is deleted and the old one kept.  No
journal: unlike keyrotd this script is not crash-safe, and it keeps no
sealed store, only the new key IDs in the users file.

Admin credentials, endpoint and region come from the environment
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``,
``AWS_REGION``).  The users file is JSON: ``[{"name": ..., "bucket": ...,
"current": KEY_ID}, ...]``; it is rewritten with the new key IDs (never a
secret).  One line per user on stdout: ``USER: rotated OLD -> NEW`` or
``USER: FAILED: ...``.  Exit status 0, or 1 if any rotation failed.
"""

import argparse
import json
import os
import sys
import tempfile
import time

import boto3
import botocore.config
import botocore.exceptions

PROPAGATION = ('InvalidAccessKeyId', 'InvalidClientTokenId',
               'SignatureDoesNotMatch')
BACKOFF_MIN = 0.25
BACKOFF_MAX = 8.0


class RotationFailed(Exception):
    pass


def code_of(exc):
    if isinstance(exc, botocore.exceptions.ClientError):
        return exc.response.get('Error', {}).get('Code') or 'Unknown'
    return type(exc).__name__


def list_keys(iam, user):
    keys, marker = [], None
    for _ in range(100):  # at most 2 keys per user: one page in practice
        kw = {'UserName': user}
        if marker:
            kw['Marker'] = marker
        page = iam.list_access_keys(**kw)
        keys += page['AccessKeyMetadata']
        if not page.get('IsTruncated'):
            return keys
        marker = page['Marker']
    raise RotationFailed('ListAccessKeys does not end')


def write_credentials(directory, user, key_id, secret):
    path = os.path.join(directory, user + '.credentials')
    fd, tmp = tempfile.mkstemp(prefix='.' + user + '.', dir=directory)
    try:
        os.fchmod(fd, 0o600)
        data = ('[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n'
                % (key_id, secret)).encode()
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.rename(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


class Rotator:
    def __init__(self, args):
        self.args = args
        self.session = boto3.session.Session()
        self.region = os.environ.get('AWS_REGION') or 'us-east-1'
        self.endpoint = os.environ.get('AWS_ENDPOINT_URL')
        # The admin client: standard retries, as keyrotd's admin calls.
        self.admin = self.session.client(
                'iam', region_name=self.region, endpoint_url=self.endpoint,
                config=botocore.config.Config(
                        retries={'mode': 'standard', 'total_max_attempts': 3}))

    def key_client(self, service, key_id, secret):
        """A client signing with the key under test: one attempt per call
        (the verify loop does its own retrying), like keyrotd's checks."""
        cfg = {'retries': {'mode': 'standard', 'total_max_attempts': 1},
               'connect_timeout': 10, 'read_timeout': 10}
        if service == 's3':
            cfg['s3'] = {'addressing_style': 'path'}
        return self.session.client(
                service, region_name=self.region, endpoint_url=self.endpoint,
                aws_access_key_id=key_id, aws_secret_access_key=secret,
                config=botocore.config.Config(**cfg))

    @staticmethod
    def fresh(client):
        """Drop the client's pooled connections: the next call opens a new
        one (moto closes every connection anyway; this makes it explicit)."""
        client._endpoint.http_session.close()  # noqa: SLF001

    def verify(self, user, bucket, key_id, secret):
        a = self.args
        deadline = time.monotonic() + a.timeout
        s3 = self.key_client('s3', key_id, secret)
        streak = failures = 0
        for _ in range(10000):  # bounded by the deadline long before this
            self.fresh(s3)
            try:
                s3.list_objects_v2(Bucket=bucket, MaxKeys=1)
            except (botocore.exceptions.ClientError,
                    botocore.exceptions.BotoCoreError) as e:
                code = code_of(e)
                if code == 'AccessDenied':
                    raise RotationFailed('the new key is denied the list check '
                                         'on bucket %s (a policy problem)'
                                         % bucket) from None
                if code in ('NoSuchBucket',):
                    raise RotationFailed('verify bucket %s: %s' % (bucket, code)) from None
                streak = 0
                delay = min(BACKOFF_MIN * (2 ** min(failures, 6)), BACKOFF_MAX)
                failures += 1
                if time.monotonic() + delay >= deadline:
                    raise RotationFailed('the new key did not verify within '
                                         '%gs (last error: %s)'
                                         % (a.timeout, code)) from None
                time.sleep(delay)
                continue
            streak += 1
            failures = 0
            if streak >= a.consecutive:
                break
            if time.monotonic() + a.interval >= deadline:
                raise RotationFailed('the new key did not verify in time')
            time.sleep(a.interval)
        else:
            raise RotationFailed('verification loop exhausted')
        s3.close()
        if not a.deny_probe:
            return
        iam = self.key_client('iam', key_id, secret)
        try:
            iam.list_access_keys(UserName=user)
        except botocore.exceptions.ClientError as e:
            if code_of(e) != 'AccessDenied':
                raise RotationFailed('deny probe: unexpected %s' % code_of(e)) from None
        else:
            raise RotationFailed('the new key is over-privileged: it was '
                                 'allowed iam:ListAccessKeys')
        finally:
            iam.close()

    def rotate(self, entry):
        user, bucket, current = entry['name'], entry['bucket'], entry['current']
        keys = list_keys(self.admin, user)
        held = [k for k in keys if k['AccessKeyId'] == current]
        if not held or held[0]['Status'] != 'Active':
            raise RotationFailed('the held key %s is not an Active key of %s'
                                 % (current, user))
        for k in keys:
            if k['AccessKeyId'] == current:
                continue
            if k['Status'] == 'Active':
                raise RotationFailed('an Active key %s that this script does '
                                     'not hold' % k['AccessKeyId'])
            self.admin.delete_access_key(UserName=user,
                                         AccessKeyId=k['AccessKeyId'])
        new = self.admin.create_access_key(UserName=user)['AccessKey']
        new_id, secret = new['AccessKeyId'], new['SecretAccessKey']
        try:
            self.verify(user, bucket, new_id, secret)
            if self.args.targets_dir:
                write_credentials(self.args.targets_dir, user, new_id, secret)
        except BaseException:
            self.admin.delete_access_key(UserName=user, AccessKeyId=new_id)
            raise
        del secret
        self.admin.update_access_key(UserName=user, AccessKeyId=current,
                                     Status='Inactive')
        self.admin.delete_access_key(UserName=user, AccessKeyId=current)
        entry['current'] = new_id
        return current, new_id


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--users-file', required=True)
    ap.add_argument('--targets-dir')
    ap.add_argument('--consecutive', type=int, default=3)
    ap.add_argument('--interval', type=float, default=1.0)
    ap.add_argument('--timeout', type=float, default=120.0)
    ap.add_argument('--no-deny-probe', dest='deny_probe', action='store_false')
    args = ap.parse_args(argv)
    if args.consecutive < 1:
        ap.error('--consecutive must be at least 1')

    with open(args.users_file) as f:
        users = json.load(f)
    rot = Rotator(args)
    failed = 0
    for entry in users:
        try:
            old, new = rot.rotate(entry)
            print('%s: rotated %s -> %s' % (entry['name'], old, new), flush=True)
        except (RotationFailed, botocore.exceptions.ClientError,
                botocore.exceptions.BotoCoreError, OSError) as e:
            failed += 1
            print('%s: FAILED: %s' % (entry['name'], e), flush=True)
    tmp = args.users_file + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(users, f)
    os.replace(tmp, args.users_file)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())

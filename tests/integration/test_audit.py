# SPDX-License-Identifier: MIT
"""keyrotctl audit and the daemon's audit against moto with
authentication and IAM policies enforced: each finding on a user built to
have it, nothing on a user keyrotctl provision made, the exit codes, the
JSON document, and the daemon's journal entries (after a rotation and on
the audit_every schedule)."""

import json
import os
import re
import signal
import time
import unittest

from rig import ADMIN_USER, build_path, wait_until
from rotation_rig import RotationCase, BUCKET, USER

#: What the admin needs to build the fixtures (not what keyrotd needs:
#: rig.ADMIN_ACTIONS has the audit's read-only calls).
SETUP_POLICY = {'Version': '2012-10-17', 'Statement': [{'Effect': 'Allow', 'Resource': '*', 'Action': [
    'iam:CreateGroup', 'iam:AddUserToGroup', 'iam:PutGroupPolicy', 'iam:CreatePolicy',
    'iam:AttachUserPolicy', 'iam:AttachGroupPolicy']}]}


def statement(action=None, resource=None, not_action=None, effect='Allow'):
    s = {'Effect': effect}
    if action is not None:
        s['Action'] = action
    if not_action is not None:
        s['NotAction'] = not_action
    s['Resource'] = resource if resource is not None else '*'
    return s


def policy(*statements):
    return json.dumps({'Version': '2012-10-17', 'Statement': list(statements)})


def header_ids():
    from test_journal import header_ids as ids
    return ids()


class AuditCase(RotationCase):
    def setUp(self):
        super().setUp()
        self.rig.iam().put_user_policy(UserName=ADMIN_USER, PolicyName='test-setup',
                                       PolicyDocument=json.dumps(SETUP_POLICY))

    def audit(self, *args, rc=None, endpoint=None):
        p = self.ctl('audit', *args, endpoint=endpoint)
        if rc is not None:
            self.assertEqual(p.returncode, rc, p.stdout + p.stderr)
        return p

    def audit_json(self, *args, rc=None, endpoint=None):
        p = self.audit('--json', *args, rc=rc, endpoint=endpoint)
        doc = json.loads(p.stdout)
        self.assertEqual(set(doc), {'users', 'findings', 'errors', 'summary'})
        return doc, p

    @staticmethod
    def codes(doc, user):
        return sorted(f['code'] for f in doc['findings'] if f['user'] == user)

    def put(self, user, name, *statements):
        self.rig.iam().put_user_policy(UserName=user, PolicyName=name, PolicyDocument=policy(*statements))


class TestFindings(AuditCase):
    users = ('iam-bot', 's3all-bot', 'star-bot', 'bucket-bot', 'notaction-bot', 'group-bot', 'direct-bot',
             'twokeys-bot', 'unheld-bot')

    def setUp(self):
        super().setUp()
        iam = self.rig.iam()
        self.put('iam-bot', 'extra', statement('iam:*'))
        self.put('s3all-bot', 'wide', statement('s3:*', ['arn:aws:s3:::%s' % BUCKET, 'arn:aws:s3:::%s/*' % BUCKET]))
        self.put('star-bot', 'any', statement(['s3:GetObject'], '*'))
        self.put('bucket-bot', 'more', statement(['s3:GetObject', 's3:ListBucket'],
                                                 ['arn:aws:s3:::other-bucket', 'arn:aws:s3:::other-bucket/*']))
        self.put('notaction-bot', 'all-but-iam', statement(not_action='iam:*'))
        # Through a group: an attached managed policy and an inline one.
        iam.create_group(GroupName='ops')
        iam.add_user_to_group(GroupName='ops', UserName='group-bot')
        arn = iam.create_policy(PolicyName='ops-ec2', PolicyDocument=policy(
            statement(['ec2:DescribeInstances']), ))['Policy']['Arn']
        iam.attach_group_policy(GroupName='ops', PolicyArn=arn)
        iam.put_group_policy(GroupName='ops', PolicyName='ops-inline',
                             PolicyDocument=policy(statement('sts:AssumeRole')))
        # A managed policy attached to the user itself: every bucket.
        arn = iam.create_policy(PolicyName='any-bucket', PolicyDocument=policy(
            statement('s3:GetObject', 'arn:aws:s3:::*/*')))['Policy']['Arn']
        iam.attach_user_policy(UserName='direct-bot', PolicyArn=arn)
        for u in self.users:
            if u != 'unheld-bot':
                self.adopt(u)
        self.second_key = iam.create_access_key(UserName='twokeys-bot')['AccessKey']['AccessKeyId']

    def test_each_finding_on_purpose_built_users(self):
        doc, p = self.audit_json(rc=1)
        self.assertEqual(doc['errors'], [], p.stderr)
        self.assertEqual([u['name'] for u in doc['users']], list(self.users), 'inventory order')
        self.assertTrue(all(u['in_inventory'] for u in doc['users']))
        by_user = {u: self.codes(doc, u) for u in self.users}
        # The usual S3-only policy grants PutObject while the verify check lists: a
        # note (info) on every user that has it.
        expected = {
            'iam-bot': ['non-s3-action'],
            's3all-bot': ['s3-all-actions'],
            'star-bot': ['resource-all'],
            'bucket-bot': ['unlisted-bucket', 'unlisted-bucket'],
            'notaction-bot': ['allow-not-action', 'resource-all'],
            'group-bot': ['non-s3-action', 'non-s3-action'],
            'direct-bot': ['resource-all'],
            'twokeys-bot': ['key-not-held', 'keys-multiple-active'],
            'unheld-bot': ['key-not-held'],
        }
        for user, codes in expected.items():
            with self.subTest(user=user):
                self.assertEqual([c for c in by_user[user] if c != 'write-on-read-only'], codes)
                self.assertIn('write-on-read-only', by_user[user])
        details = {(f['user'], f['code']): f for f in doc['findings']}
        f = details[('iam-bot', 'non-s3-action')]
        self.assertEqual(f['severity'], 'critical')
        self.assertIn('inline policy extra', f['detail'])
        self.assertIn('"iam:*"', f['detail'])
        self.assertEqual(details[('notaction-bot', 'allow-not-action')]['severity'], 'critical')
        self.assertEqual(details[('s3all-bot', 's3-all-actions')]['severity'], 'warning')
        group = sorted(f['detail'] for f in doc['findings'] if f['user'] == 'group-bot' and
                       f['code'] == 'non-s3-action')
        self.assertIn('group ops inline policy ops-inline', group[0] + group[1])
        self.assertIn('group ops managed policy arn:aws:iam::', group[0] + group[1])
        self.assertIn('managed policy arn:aws:iam::', details[('direct-bot', 'resource-all')]['detail'])
        self.assertIn('other-bucket', details[('bucket-bot', 'unlisted-bucket')]['detail'])
        self.assertIn(self.second_key, details[('twokeys-bot', 'key-not-held')]['detail'])
        self.assertIn(self.initial['unheld-bot'].access_key_id, details[('unheld-bot', 'key-not-held')]['detail'])
        self.assertEqual(doc['summary']['users'], len(self.users))
        self.assertEqual(doc['summary']['critical'], 4)
        self.assertEqual(doc['summary']['errors'], 0)

        # The table says the same, one line per finding.
        t = self.audit(rc=1)
        lines = [l for l in t.stdout.splitlines() if l and not l.startswith('USER') and 'audited' not in l]
        self.assertEqual(len(lines), len(doc['findings']), t.stdout)
        for f in doc['findings']:
            self.assertTrue(any(l.split()[:3] == [f['user'], f['severity'], f['code']] and l.endswith(f['detail'])
                                for l in lines), f)
        self.assertIn('9 users audited: 4 critical', t.stdout)
        # Never a secret, not even the admin's.
        for c in list(self.initial.values()) + [self.rig.admin]:
            self.assertNotIn(c.secret_access_key, t.stdout + t.stderr)

    def test_buckets_the_inventory_names_are_not_findings(self):
        self.write_inventory(**{'bucket-bot': {'buckets': ['other-bucket']}})
        doc, p = self.audit_json(rc=1)
        self.assertEqual(doc['errors'], [], p.stderr)
        self.assertNotIn('unlisted-bucket', self.codes(doc, 'bucket-bot'))
        # The others are judged as before.
        self.assertIn('non-s3-action', self.codes(doc, 'iam-bot'))

    def test_all_users_adds_the_others(self):
        iam = self.rig.iam()
        iam.create_user(UserName='stray-bot')
        self.put('stray-bot', 'stray', statement('s3:*'))
        doc, _ = self.audit_json(rc=1)
        self.assertNotIn('stray-bot', [u['name'] for u in doc['users']])
        doc, p = self.audit_json('--all-users', rc=1)
        self.assertEqual(doc['errors'], [], p.stderr)
        names = [u['name'] for u in doc['users']]
        self.assertEqual(names[:len(self.users)], list(self.users), 'inventory users first')
        self.assertIn('stray-bot', names)
        self.assertIn(ADMIN_USER, names)
        stray = [u for u in doc['users'] if u['name'] == 'stray-bot'][0]
        self.assertFalse(stray['in_inventory'])
        # Outside the inventory: no bucket verdicts, no held-key verdicts.
        self.assertEqual(self.codes(doc, 'stray-bot'), ['not-in-inventory', 'resource-all', 's3-all-actions'])
        self.assertEqual(len(names), len(set(names)), 'each user once')


class TestClean(AuditCase):
    users = ()

    def test_provisioned_user_is_clean(self):
        self.users = ('ro-bot', 'rw-bot')
        self.write_inventory()
        for u, extra in (('ro-bot', ['--read-only']), ('rw-bot', [])):
            p = self.ctl('provision', u, '--bucket', BUCKET, *extra)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        p = self.audit(rc=0)
        self.assertIn('2 users audited', p.stdout)
        doc, _ = self.audit_json(rc=0)
        self.assertEqual(doc['errors'], [])
        self.assertEqual(self.codes(doc, 'ro-bot'), [], 'a read-only provisioned user has nothing')
        # Read-write against a verify check that only lists: a note, not a finding.
        self.assertEqual(self.codes(doc, 'rw-bot'), ['write-on-read-only'])
        self.assertEqual([f['severity'] for f in doc['findings']], ['info'])
        self.assertEqual(doc['summary'], {'users': 2, 'critical': 0, 'warning': 0, 'info': 1, 'errors': 0})

    def test_empty_inventory(self):
        p = self.audit(rc=0)
        self.assertIn('0 users audited: no findings', p.stdout)


class TestKeyAge(AuditCase):
    users = ('old-bot', 'fresh-bot')

    def test_old_and_unused_keys(self):
        # moto cannot backdate a key: make max_age tiny and let it pass.
        self.write_inventory(**{'old-bot': {'max_age': '1s'}, 'fresh-bot': {'max_age': '1s'}})
        self.adopt('old-bot')  # adopt uses the key on S3: it has been used
        never = self.rig.iam().create_access_key(UserName='fresh-bot')['AccessKey']['AccessKeyId']
        self.rig.iam().update_access_key(UserName='fresh-bot', AccessKeyId=self.initial['fresh-bot'].access_key_id,
                                         Status='Inactive')

        def aged():
            doc, _ = self.audit_json()
            old, fresh = self.codes(doc, 'old-bot'), self.codes(doc, 'fresh-bot')
            # fresh-bot's key was made after old-bot's last use: each
            # passes max_age at its own time.
            return doc if {'key-too-old', 'key-unused'} <= set(old) and \
                {'key-too-old', 'key-never-used'} <= set(fresh) else None
        doc = wait_until(aged, timeout=20, interval=0.3,
                         message='old-bot: key-too-old and key-unused, fresh-bot: key-too-old and '
                                 'key-never-used after max_age 1s')
        self.assertEqual(doc['errors'], [])
        fresh = self.codes(doc, 'fresh-bot')
        # The never-used Active key; the Inactive one is only "not held".
        never_used = [f for f in doc['findings'] if f['code'] == 'key-never-used']
        self.assertEqual(len(never_used), 1)
        self.assertIn(never, never_used[0]['detail'])
        self.assertEqual(fresh.count('key-not-held'), 2)
        self.assertNotIn('keys-multiple-active', fresh, 'one of the two is Inactive')
        self.assertIn('max_age 1s', [f for f in doc['findings'] if f['user'] == 'old-bot'
                                     and f['code'] == 'key-too-old'][0]['detail'])


class TestExitCodes(AuditCase):
    def test_clean_findings_and_errors(self):
        self.adopt()
        # Clean apart from the write note of that policy: 0.
        self.audit(rc=0)
        # A finding: 1.
        self.put(USER, 'extra', statement('ec2:*'))
        self.audit(rc=1)
        # AWS unreachable: 2, and the table still says how far it got.
        p = self.audit(rc=2, endpoint='http://127.0.0.1:1')
        self.assertIn('audit of %s' % USER, p.stderr)
        self.assertIn('incomplete', p.stdout)
        doc, _ = self.audit_json(rc=2, endpoint='http://127.0.0.1:1')
        self.assertTrue(doc['errors'])
        self.assertEqual({e['user'] for e in doc['errors']}, {USER})

    def test_store_unreadable_is_an_error_but_the_policies_are_audited(self):
        self.adopt()
        self.put(USER, 'extra', statement('iam:PassRole'))
        os.chmod(self.key_file, 0o644)  # the store refuses a readable master key
        doc, p = self.audit_json(rc=2)
        self.assertEqual(self.codes(doc, USER), ['non-s3-action', 'write-on-read-only'])
        self.assertEqual(len(doc['errors']), 1)
        self.assertIsNone(doc['errors'][0]['user'])
        self.assertIn('cannot read the store', doc['errors'][0]['error'])

    def test_usage_and_configuration(self):
        self.assertEqual(self.ctl('audit', USER).returncode, 2)
        self.assertEqual(self.ctl('status', '--all-users').returncode, 2)
        with open(self.inventory, 'a') as f:
            f.write('bogus: 1\n')
        p = self.audit(rc=2)
        self.assertIn('bogus', p.stderr)

    def test_denied_calls_are_errors(self):
        # keyrotd's identity without the audit's permissions.
        self.adopt()
        self.rig.iam().put_user_policy(UserName=ADMIN_USER, PolicyName='no-audit', PolicyDocument=policy(
            statement(['iam:ListUserPolicies', 'iam:ListGroupsForUser'], effect='Deny')))
        doc, p = self.audit_json(rc=2)
        errors = ' '.join(e['error'] for e in doc['errors'])
        self.assertIn('ListUserPolicies', errors)
        self.assertIn('AccessDenied', errors)
        self.assertIn('ListGroupsForUser', errors)


class TestDaemonAudit(AuditCase):
    """The daemon audits after a rotation and every audit_every."""

    def start_daemon(self, argv_wrap=None, target='stderr'):
        self.sock_path = os.path.join(self.rig.tmp, 'control.sock')
        argv = [build_path('src/keyrotd'), '--config', self.inventory, '--state-dir', self.state,
                '--socket', self.sock_path, '--log-target', target]
        if argv_wrap:
            argv = argv_wrap(argv)
        self.daemon = self.rig.spawn(argv, env=self.env(), name='keyrotd')
        return self.daemon

    def stop_daemon(self):
        self.daemon.send_signal(signal.SIGTERM)
        self.assertEqual(self.daemon.wait(timeout=60), 0)

    def daemon_events(self):
        with open(self.daemon.err_path) as f:
            return self.audit_events(f.read())

    def test_scheduled_and_post_rotation_audit_on_stderr(self):
        self.write_inventory(defaults={'audit_every': '2s', 'splay': '0'})
        self.adopt()
        # Not iam:*: the rotation's deny probe would (rightly) fail it.
        self.put(USER, 'extra', statement('ec2:*'))
        self.start_daemon()

        def scheduled():
            ev = self.daemon_events()
            return ev if any(e['event'] == 'audit_summary' and e.get('trigger') == 'schedule' for e in ev) else None
        ev = wait_until(scheduled, timeout=30, interval=0.2, message='a scheduled audit')
        findings = [e for e in ev if e['event'] == 'audit_finding' and e.get('trigger') == 'schedule']
        iam = [e for e in findings if e.get('finding') == 'non-s3-action']
        self.assertTrue(iam, ev)
        self.assertEqual(iam[0]['user'], USER)
        self.assertEqual(iam[0]['priority'], '4')
        self.assertEqual(iam[0]['result'], 'critical')
        summary = [e for e in ev if e['event'] == 'audit_summary'][0]
        self.assertEqual(summary['result'], 'findings')
        self.assertEqual(summary['priority'], '4')

        # A rotation: the user is audited again right after it.
        p = self.rig.run([build_path('src/keyrotctl'), '--socket', self.sock_path, 'rotate', USER, '--wait'],
                         env=self.env())
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

        def after_rotation():
            ev = self.daemon_events()
            return [e for e in ev if e['event'] == 'audit_summary' and e.get('trigger') == 'rotation'] or None
        s = wait_until(after_rotation, timeout=30, interval=0.2, message='an audit after the rotation')
        self.assertEqual(s[0]['user'], USER)
        ev = self.daemon_events()
        self.assertTrue([e for e in ev if e['event'] == 'audit_finding' and e.get('trigger') == 'rotation'
                         and e.get('finding') == 'non-s3-action'])
        # The new key is held: no key finding after the rotation.
        self.assertFalse([e for e in ev if e['event'] == 'audit_finding' and e.get('finding', '').startswith('key')])
        self.stop_daemon()

    def test_findings_reach_the_journal_with_their_message_id(self):
        from journal import Journal
        journal = Journal.shared()  # skips without a journald
        ids = header_ids()
        self.write_inventory(defaults={'audit_every': '2s', 'splay': '0'})
        self.adopt()
        self.put(USER, 'extra', statement('ec2:RunInstances'))
        cursor = journal.mark()
        self.start_daemon(argv_wrap=lambda a: journal.wrap(a, cwd=self.rig.tmp), target='journal')

        def found():
            e = [x for x in journal.entries_since(cursor, SYSLOG_IDENTIFIER='keyrotd')
                 if x.get('KEYROTD_EVENT') in ('audit_finding', 'audit_summary')]
            return e if any(x['KEYROTD_EVENT'] == 'audit_summary' for x in e) else None
        entries = wait_until(found, timeout=30, interval=0.3, message='audit entries in the journal')
        finding = [e for e in entries if e.get('KEYROTD_FINDING') == 'non-s3-action'][0]
        self.assertEqual(finding['MESSAGE_ID'], ids['audit_finding'])
        self.assertEqual(finding['KEYROTD_EVENT'], 'audit_finding')
        self.assertEqual(finding['KEYROTD_USER'], USER)
        self.assertEqual(finding['KEYROTD_TRIGGER'], 'schedule')
        self.assertEqual(finding['PRIORITY'], '4')
        self.assertIn('ec2:RunInstances', finding['MESSAGE'])
        self.assertTrue(finding['MESSAGE'].startswith(USER + ': audit finding: '), finding['MESSAGE'])
        summary = [e for e in entries if e['KEYROTD_EVENT'] == 'audit_summary'][0]
        self.assertEqual(summary['MESSAGE_ID'], ids['audit_summary'])
        self.assertEqual(summary['KEYROTD_RESULT'], 'findings')
        self.assertRegex(summary['MESSAGE'], r'1 user audited: \d+ findings? \(1 critical')
        self.stop_daemon()


if __name__ == '__main__':
    unittest.main()

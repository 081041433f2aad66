# SPDX-License-Identifier: MIT
"""The journald audit trail of docs/DESIGN.md §4, read back from a real
systemd-journald (tests/rig/journal.py starts one) after real keyrotd runs
against moto: one entry per step with its MESSAGE_ID from src/audit/audit-ids.h
and the KEYROTD_* fields, PRIORITY 3 for failures and 2 after alert_after
consecutive ones, where --log-target stderr, journal and auto send records
and diagnostics, no secret anywhere in the journal, and
systemd/keyrotd.catalog in step with the header."""

import errno
import os
import re
import shutil
import subprocess
import tempfile
import unittest
import uuid

from rig import build_path, source_path
from journal import Journal
from rotation_rig import RotationCase, USER, BUCKET

#: A forced rotation with grace 0 and no on_rotate hook, step by step.
ROTATION_EVENTS = ['rotation_started', 'key_created', 'key_verified', 'targets_written',
                   'old_key_deactivated', 'old_key_deleted', 'rotation_completed']
#: The same with an on_rotate hook.
HOOKED_EVENTS = ROTATION_EVENTS[:4] + ['hook_run'] + ROTATION_EVENTS[4:]
#: Steps that are one AWS call: their entry carries the AWS request id.
AWS_EVENTS = {'key_created', 'old_key_deactivated', 'old_key_deleted'}


def header_ids():
    """{event name: MESSAGE_ID} from src/audit/audit-ids.h."""
    with open(source_path('src/audit/audit-ids.h')) as f:
        text = f.read()
    ids = {}
    for name, mid in re.findall(r'^#define\s+KEYROTD_MESSAGE_(\w+)\s+"([0-9a-f]*)"', text, re.M):
        ids[name.lower()] = mid
    return ids


def event_names():
    """The event names of src/audit/audit.c's table, in enum order."""
    with open(source_path('src/audit/audit.c')) as f:
        text = f.read()
    table = text[text.index('event_names['):]
    table = table[:table.index('};')]
    return re.findall(r'\[AUDIT_\w+\]\s*=\s*"(\w+)"', table)


def catalog_entries():
    """{MESSAGE_ID: {'header': {field: value}, 'body': text}} of the catalog."""
    with open(source_path('systemd/keyrotd.catalog')) as f:
        text = f.read()
    entries = {}
    for chunk in re.split(r'^-- ', text, flags=re.M)[1:]:
        first, _, rest = chunk.partition('\n')
        head, _, body = rest.partition('\n\n')
        fields = dict(l.split(': ', 1) for l in head.splitlines() if ': ' in l)
        entries[first.strip()] = {'header': fields, 'body': body.strip()}
    return entries


class JournalCase(RotationCase):
    """RotationCase with a journald; keyrotd runs where it can reach it."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.journal = Journal.shared()  # skips the class when impossible

    def setUp(self):
        super().setUp()
        self.ids = header_ids()

    def run_keyrotd(self, *args, target='journal', env=None, inside=True):
        """keyrotd --log-target TARGET ARGS, inside the journal's namespace
        (or, ``inside=False``, on the host as it is)."""
        argv = [build_path('src/keyrotd'), '--config', self.inventory, '--state-dir', self.state,
                '--log-target', target] + list(args)
        if inside:
            argv = self.journal.wrap(argv, cwd=self.rig.tmp)
        return self.rig.run(argv, env=env or self.env(), timeout=120)

    def audit_entries(self, cursor):
        """keyrotd's audit entries (those with KEYROTD_EVENT) after cursor."""
        return [e for e in self.journal.entries_since(cursor, SYSLOG_IDENTIFIER='keyrotd')
                if 'KEYROTD_EVENT' in e]

    def adopt_anyway(self):
        """Adopt although the inventory's verify bucket would refuse the key
        (adopt checks it): seal under a valid inventory, then restore."""
        with open(self.inventory) as f:
            inv = f.read()
        self.write_inventory()
        self.adopt()
        with open(self.inventory, 'w') as f:
            f.write(inv)

    def deny_verify(self, defaults=None):
        """An inventory whose verify bucket the user may not list."""
        self.write_inventory(defaults=defaults,
                             **{USER: {'verify': {'bucket': 'other-bucket', 'timeout': '60s'}}})
        self.adopt_anyway()


class TestJournalAudit(JournalCase):
    def test_every_step_has_its_entry(self):
        self.write_inventory(**{USER: {'on_rotate': ['/bin/true']}})
        self.adopt()
        old = self.initial[USER]
        cursor = self.journal.mark()
        p = self.run_keyrotd('--once', '--force')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        new = self.assert_invariants()
        self.assertEqual(self.audit_events(p.stderr), [], 'the records went to the journal, not stderr')

        entries = self.audit_entries(cursor)
        self.assertEqual([e['KEYROTD_EVENT'] for e in entries], HOOKED_EVENTS)
        rotation_ids = {e.get('KEYROTD_ROTATION_ID') for e in entries}
        self.assertEqual(len(rotation_ids), 1, 'one rotation id throughout')
        self.assertRegex(rotation_ids.pop(), r'^[0-9a-f-]{36}$')
        for e in entries:
            ev = e['KEYROTD_EVENT']
            with self.subTest(event=ev):
                self.assertEqual(e['MESSAGE_ID'], self.ids[ev])
                self.assertEqual(e['SYSLOG_IDENTIFIER'], 'keyrotd')
                self.assertEqual(e['PRIORITY'], '6')
                self.assertEqual(e['KEYROTD_USER'], USER)
                self.assertEqual(e['KEYROTD_TRIGGER'], 'once')
                self.assertEqual(e['KEYROTD_OLD_KEY_ID'], old.access_key_id)
                self.assertNotIn('KEYROTD_ERROR', e)
                self.assertIn(USER, e['MESSAGE'])
                self.assertNotIn('\n', e['MESSAGE'])
                if ev == 'rotation_started':
                    self.assertNotIn('KEYROTD_NEW_KEY_ID', e, 'empty fields are left out')
                    self.assertNotIn('KEYROTD_RESULT', e)
                else:
                    self.assertEqual(e['KEYROTD_NEW_KEY_ID'], new.access_key_id)
                    self.assertEqual(e['KEYROTD_RESULT'], 'ok')
                    self.assertIn(new.access_key_id, e['MESSAGE'])
                if ev in AWS_EVENTS:
                    self.assertTrue(e.get('KEYROTD_REQUEST_ID'), 'an AWS step carries the request id')
        self.assertIn('%s: rotated %s -> %s' % (USER, old.access_key_id, new.access_key_id), p.stdout)

        # No secret anywhere in the journal: the admin's, the old and the new.
        journal = self.journal.export()
        for what, secret in (('admin', self.rig.admin.secret_access_key),
                             ('old', old.secret_access_key), ('new', new.secret_access_key)):
            self.assertNotIn(secret.encode(), journal, 'the %s secret is in the journal' % what)
            self.assertNotIn(secret, p.stdout + p.stderr)

    def test_failure_is_priority_3(self):
        self.deny_verify()
        cursor = self.journal.mark()
        p = self.run_keyrotd('--once', '--force')
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        entries = self.audit_entries(cursor)
        by_event = {e['KEYROTD_EVENT']: e for e in entries}
        self.assertIn('verify_failed', by_event, [e['KEYROTD_EVENT'] for e in entries])
        vf = by_event['verify_failed']
        self.assertEqual(vf['PRIORITY'], '3')
        self.assertEqual(vf['MESSAGE_ID'], self.ids['verify_failed'])
        self.assertEqual(vf['KEYROTD_RESULT'], 'failed')
        self.assertEqual(vf['KEYROTD_ERROR'], 'AccessDenied')
        self.assertTrue(vf.get('KEYROTD_REQUEST_ID'), 'the refused S3 call has a request id')
        self.assertIn('AccessDenied', vf['MESSAGE'])
        rf = by_event['rotation_failed']
        self.assertEqual(rf['PRIORITY'], '3')
        self.assertEqual(rf['MESSAGE_ID'], self.ids['rotation_failed'])
        self.assertEqual(entries[-1]['KEYROTD_EVENT'], 'rotation_failed')
        self.assertEqual(len({e.get('KEYROTD_ROTATION_ID') for e in entries}), 1,
                         'one rotation id throughout, the failure included')
        # Steps that went well in a failed rotation are not failures.
        for e in entries:
            if e.get('KEYROTD_RESULT') != 'failed':
                self.assertEqual(e['PRIORITY'], '6', e['KEYROTD_EVENT'])
        self.assertIn('new_key_deleted', by_event)

    def test_alert_after_consecutive_failures_is_priority_2(self):
        self.deny_verify(defaults={'alert_after': 2})
        failed_priorities = []
        for _ in range(3):
            cursor = self.journal.mark()
            p = self.run_keyrotd('--once', '--force')
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            failed = [e for e in self.audit_entries(cursor) if e.get('KEYROTD_RESULT') == 'failed']
            self.assertEqual({e['KEYROTD_EVENT'] for e in failed}, {'verify_failed', 'rotation_failed'})
            failed_priorities.append(sorted({e['PRIORITY'] for e in failed}))
        # The first failure is an error; from the second in a row on, critical.
        self.assertEqual(failed_priorities, [['3'], ['2'], ['2']])

    def test_alert_after_1_makes_the_first_failure_critical(self):
        self.deny_verify(defaults={'alert_after': 1})
        cursor = self.journal.mark()
        p = self.run_keyrotd('--once', '--force')
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        failed = [e for e in self.audit_entries(cursor) if e.get('KEYROTD_RESULT') == 'failed']
        self.assertTrue(failed)
        for e in failed:
            self.assertEqual(e['PRIORITY'], '2', e['KEYROTD_EVENT'])

    def test_journalctl_x_explains_each_entry(self):
        db_root = tempfile.mkdtemp(prefix='catalog-')
        self.addCleanup(shutil.rmtree, db_root, True)
        self.assertEqual(install_catalog(db_root).returncode, 0)
        self.addCleanup(self.journal.use_catalog(os.path.join(db_root, 'var/lib/systemd/catalog')))
        self.adopt()
        cursor = self.journal.mark()
        p = self.run_keyrotd('--once', '--force')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        audit = self.audit_entries(cursor)
        self.assertEqual([e['KEYROTD_EVENT'] for e in audit], ROTATION_EVENTS)
        rid = audit[0]['KEYROTD_ROTATION_ID']
        text = self.journal.journalctl('-x', 'KEYROTD_ROTATION_ID=' + rid).decode()
        catalog = catalog_entries()
        subjects = [l.split('Subject: ', 1)[1] for l in text.splitlines() if 'Subject: ' in l]
        self.assertEqual(len(subjects), len(ROTATION_EVENTS), text)
        for entry, subject in zip(audit, subjects):
            want = re.sub(r'@(\w+)@', lambda m: entry.get(m.group(1), ''),
                          catalog[entry['MESSAGE_ID']]['header']['Subject'])
            self.assertEqual(subject, want, entry['KEYROTD_EVENT'])
        self.assertIn(USER, subjects[0])
        self.assertNotRegex(text, r'@KEYROTD_\w+@', 'every substitution was made')

    def test_stale_key_entry(self):
        self.adopt()
        extra = self.rig.iam().create_access_key(UserName=USER)['AccessKey']['AccessKeyId']
        self.rig.iam().update_access_key(UserName=USER, AccessKeyId=extra, Status='Inactive')
        cursor = self.journal.mark()
        p = self.run_keyrotd('--once', '--force')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        stale = [e for e in self.audit_entries(cursor) if e['KEYROTD_EVENT'] == 'stale_key_deleted']
        self.assertEqual(len(stale), 1)
        self.assertEqual(stale[0]['KEYROTD_OLD_KEY_ID'], extra)
        self.assertEqual(stale[0]['MESSAGE_ID'], self.ids['stale_key_deleted'])
        self.assertTrue(stale[0].get('KEYROTD_REQUEST_ID'))


#: A diagnostic on stderr: "TIMESTAMP keyrotd: message".
DIAGNOSTIC = r'(?m)^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ keyrotd: '


class TestLogTarget(JournalCase):
    """--log-target: where diagnostics and audit records go (keyrotd(8),
    LOGGING). Diagnostics are keyrotd's own messages, such as the line
    naming the config and state directory at start; records are the audit
    trail."""

    def diagnostics(self, cursor):
        """keyrotd's journal entries after cursor that are not records."""
        return [e for e in self.journal.entries_since(cursor, SYSLOG_IDENTIFIER='keyrotd')
                if 'KEYROTD_EVENT' not in e]

    def run_with_stderr_file(self, *args, target='auto', stream=None):
        """keyrotd with stderr a file; JOURNAL_STREAM names that file
        (stream='stderr', as systemd names the socket it connects stderr
        to) or is ``stream`` itself. Returns (returncode, stdout, stderr)."""
        path = os.path.join(self.rig.tmp, 'stderr-%s' % uuid.uuid4().hex)
        with open(path, 'w+b') as err:
            st = os.fstat(err.fileno())
            value = '%d:%d' % (st.st_dev, st.st_ino) if stream == 'stderr' else stream
            argv = self.journal.wrap([build_path('src/keyrotd'), '--config', self.inventory, '--state-dir',
                                      self.state, '--log-target', target] + list(args), cwd=self.rig.tmp)
            p = subprocess.run(argv, env=self.env(JOURNAL_STREAM=value), cwd=self.rig.tmp,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, timeout=120)
            err.seek(0)
            return p.returncode, p.stdout.decode(), err.read().decode('utf-8', 'replace')

    def test_stderr_keeps_logfmt_and_leaves_the_journal_alone(self):
        self.adopt()
        cursor = self.journal.mark()
        p = self.run_keyrotd('--once', '--force', target='stderr')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        events = self.audit_events(p.stderr)
        self.assertEqual([e['event'] for e in events], ROTATION_EVENTS)
        for e in events:
            self.assertEqual(e['user'], USER)
            self.assertEqual(e['trigger'], 'once')
            self.assertEqual(e['priority'], '6')
            self.assertRegex(e['time'], r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$')
        self.assertRegex(p.stderr, DIAGNOSTIC + r'starting keyrotd .*config %s .*state directory %s'
                         % (re.escape(self.inventory), re.escape(self.state)))
        self.assertEqual(self.journal.entries_since(cursor, SYSLOG_IDENTIFIER='keyrotd'), [],
                         'nothing reached the journal')

    def test_journal_takes_diagnostics_with_their_priority_and_errno(self):
        self.adopt()
        cursor = self.journal.mark()
        p = self.run_keyrotd('--once', '--force')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertNotRegex(p.stderr, DIAGNOSTIC)
        start = [e for e in self.diagnostics(cursor) if e['MESSAGE'].startswith('starting keyrotd')]
        self.assertEqual(len(start), 1, self.diagnostics(cursor))
        self.assertIn(self.inventory, start[0]['MESSAGE'])
        self.assertIn(self.state, start[0]['MESSAGE'])
        self.assertEqual(start[0]['PRIORITY'], '6')
        self.assertTrue(start[0]['CODE_FILE'].endswith('src/keyrotd.c'), start[0]['CODE_FILE'])
        self.assertEqual(start[0]['CODE_FUNC'], 'main')
        self.assertNotIn('ERRNO', start[0])

        # A failure: PRIORITY 3, ERRNO, and the message names the path.
        missing = os.path.join(self.rig.tmp, 'no-such-state-dir')
        cursor = self.journal.mark()
        p = self.rig.run(self.journal.wrap([build_path('src/keyrotd'), '--config', self.inventory, '--state-dir',
                                            missing, '--log-target', 'journal', '--once'], cwd=self.rig.tmp),
                         env=self.env(), timeout=120)
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual(p.stderr, '')
        errors = [e for e in self.diagnostics(cursor) if e['PRIORITY'] == '3']
        self.assertEqual(len(errors), 1, self.diagnostics(cursor))
        self.assertIn(missing, errors[0]['MESSAGE'])
        self.assertEqual(errors[0]['ERRNO'], str(errno.ENOENT))

    def test_auto_with_stderr_connected_to_the_journal_uses_the_journal(self):
        self.adopt()
        cursor = self.journal.mark()
        rc, out, err = self.run_with_stderr_file('--once', '--force', stream='stderr')
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(err, '', 'stderr is the journal: nothing is written to it twice')
        self.assertEqual([e['KEYROTD_EVENT'] for e in self.audit_entries(cursor)], ROTATION_EVENTS)
        self.assertTrue([e for e in self.diagnostics(cursor) if e['MESSAGE'].startswith('starting keyrotd')])

    def test_auto_with_journald_and_a_pipe_writes_both(self):
        # A terminal or a pipe while journald runs: the records reach the
        # journal and the operator; keyrotd's own messages only the operator.
        # A $JOURNAL_STREAM that names another file (a shell under systemd
        # redirected stderr) is the same.
        self.adopt()
        for stream in (None, '8:1'):
            with self.subTest(JOURNAL_STREAM=stream):
                cursor = self.journal.mark()
                p = self.run_keyrotd('--once', '--force', target='auto', env=self.env(JOURNAL_STREAM=stream))
                self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
                on_stderr = self.audit_events(p.stderr)
                in_journal = self.audit_entries(cursor)
                self.assertEqual([e['event'] for e in on_stderr], ROTATION_EVENTS)
                self.assertEqual([e['KEYROTD_EVENT'] for e in in_journal], ROTATION_EVENTS)
                self.assertEqual({e['rotation_id'] for e in on_stderr},
                                 {e['KEYROTD_ROTATION_ID'] for e in in_journal}, 'the same rotation')
                self.assertRegex(p.stderr, DIAGNOSTIC + 'starting keyrotd ')
                self.assertEqual(self.diagnostics(cursor), [], 'diagnostics only on stderr')
                self.assertNotIn('cannot write to the journal', p.stderr)

    def _need_no_host_journal(self):
        if not self.journal.isolated or os.path.exists('/run/systemd/journal/socket'):
            self.skipTest('needs a host without a journal socket (private journald mode)')

    def test_auto_without_a_journal_uses_stderr(self):
        self._need_no_host_journal()
        self.adopt()
        p = self.run_keyrotd('--once', '--force', target='auto', inside=False, env=self.env(JOURNAL_STREAM=None))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual([e['event'] for e in self.audit_events(p.stderr)], ROTATION_EVENTS)
        self.assertRegex(p.stderr, DIAGNOSTIC + 'starting keyrotd ')
        self.assertNotIn('cannot write to the journal', p.stderr)

    def test_unreachable_journal_falls_back_to_stderr(self):
        # --log-target journal, but no journald listens: every record and
        # message still reaches stderr, with one note why.
        self._need_no_host_journal()
        self.adopt()
        p = self.run_keyrotd('--once', '--force', target='journal', inside=False, env=self.env(JOURNAL_STREAM=None))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual([e['event'] for e in self.audit_events(p.stderr)], ROTATION_EVENTS)
        self.assertRegex(p.stderr, DIAGNOSTIC + 'starting keyrotd ')
        self.assertEqual(p.stderr.count('cannot write to the journal'), 1, p.stderr)

    def test_auto_with_stderr_the_journal_but_no_journald_uses_stderr(self):
        # $JOURNAL_STREAM names stderr, but journald's socket is missing:
        # stderr is the way into the journal, and takes everything.
        self._need_no_host_journal()
        self.adopt()
        path = os.path.join(self.rig.tmp, 'stderr')
        with open(path, 'w+b') as err:
            st = os.fstat(err.fileno())
            p = subprocess.run([build_path('src/keyrotd'), '--config', self.inventory, '--state-dir', self.state,
                                '--log-target', 'auto', '--once', '--force'],
                               env=self.env(JOURNAL_STREAM='%d:%d' % (st.st_dev, st.st_ino)), cwd=self.rig.tmp,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, timeout=120)
            err.seek(0)
            text = err.read().decode()
        self.assertEqual(p.returncode, 0, text)
        self.assertEqual([e['event'] for e in self.audit_events(text)], ROTATION_EVENTS)
        self.assertRegex(text, DIAGNOSTIC + 'starting keyrotd ')
        self.assertNotIn('cannot write to the journal', text)

    def test_cannot_start_names_the_socket(self):
        self.adopt()
        sock = os.path.join(self.rig.tmp, 'no-such-dir', 'control.sock')
        p = self.run_keyrotd('--socket', sock, target='stderr', inside=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertRegex(p.stderr, DIAGNOSTIC + 'cannot start: .*%s: No such file or directory'
                         % re.escape(sock))

    def test_bad_log_target_is_a_usage_error(self):
        p = self.run_keyrotd('--check-config', target='syslog', inside=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn('--log-target', p.stderr)


def install_catalog(root):
    """Copy the catalog under ROOT and build ROOT's catalog database."""
    d = os.path.join(root, 'usr/lib/systemd/catalog')
    os.makedirs(d)
    shutil.copy(source_path('systemd/keyrotd.catalog'), d)
    return subprocess.run(['journalctl', '--root=' + root, '--update-catalog'],
                          capture_output=True, text=True, timeout=60)


class TestCatalog(unittest.TestCase):
    def test_header_covers_every_event(self):
        ids = header_ids()
        names = event_names()
        self.assertEqual(sorted(ids), sorted(names), 'one MESSAGE_ID per event, named after it')
        for name, mid in ids.items():
            self.assertRegex(mid, r'^[0-9a-f]{32}$', name)
        self.assertEqual(len(set(ids.values())), len(ids), 'MESSAGE_IDs are unique')

    def test_catalog_matches_header(self):
        ids = header_ids()
        entries = catalog_entries()
        self.assertEqual(sorted(entries), sorted(ids.values()), 'one catalog entry per MESSAGE_ID')
        fields = {'KEYROTD_USER', 'KEYROTD_ROTATION_ID', 'KEYROTD_EVENT', 'KEYROTD_OLD_KEY_ID',
                  'KEYROTD_NEW_KEY_ID', 'KEYROTD_TRIGGER', 'KEYROTD_RESULT', 'KEYROTD_ERROR',
                  'KEYROTD_REQUEST_ID', 'KEYROTD_FINDING'}
        for mid, e in entries.items():
            with self.subTest(id=mid):
                self.assertTrue(e['header'].get('Subject'))
                self.assertEqual(e['header'].get('Defined-By'), 'keyrotd')
                self.assertTrue(e['header'].get('Support'))
                self.assertGreater(len(e['body']), 80, 'explains what happened and what to do')
                for var in re.findall(r'@(\w+)@', e['header']['Subject'] + e['body']):
                    self.assertIn(var, fields, 'substitutes a field keyrotd sends')

    def test_journalctl_accepts_the_catalog(self):
        if not shutil.which('journalctl'):
            self.skipTest('journalctl is not installed')
        root = tempfile.mkdtemp(prefix='catalog-')
        self.addCleanup(shutil.rmtree, root, True)
        p = install_catalog(root)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr.strip(), '', 'no complaint about the catalog')
        p = subprocess.run(['journalctl', '--root=' + root, '--list-catalog'],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        listed = dict(l.split(' ', 1) for l in p.stdout.splitlines() if l.strip())
        entries = catalog_entries()
        self.assertEqual(sorted(listed), sorted(header_ids().values()))
        for mid, subject in listed.items():
            self.assertEqual(subject, 'keyrotd: ' + entries[mid]['header']['Subject'])


if __name__ == '__main__':
    unittest.main()

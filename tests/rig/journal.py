# SPDX-License-Identifier: MIT
"""A systemd-journald for the tests, and helpers to read what reached it.

keyrotd writes its audit trail with ``sd_journal_send``, which always talks
to ``/run/systemd/journal/socket``: the journald a test reads must own that
path.  ``Journal.shared()`` provides one per test process (module), in the
first of these modes that works:

``private`` (preferred; needs CAP_SYS_ADMIN, e.g. root on a VM)
    ``unshare --mount`` gives the journald its own mount namespace with a
    fresh tmpfs on ``/run`` (so ``/run/systemd/journal/*`` and the volatile
    journal ``/run/log/journal`` are its alone) and on ``/var/log/journal``
    (so nothing persistent is read or written), and a drop-in
    ``journald.conf`` there: ``Storage=volatile``, no rate limit, no
    forwarding; ``/dev/null`` stands in for ``/dev/kmsg``, so the kernel log
    stays out.  Nothing on the host changes, the system journal (if
    any) never sees the tests, and parallel test runs cannot meet.
    Commands that must reach this journald (keyrotd, journalctl) run through
    ``journal.wrap(argv)``, i.e. ``nsenter --mount=/proc/PID/ns/mnt``; the
    test process itself reaches the socket through ``/proc/PID/root``.
    When the journald stops, the namespace and its tmpfs go with it.

``system``
    A journald already listens on the host's socket (a systemd machine):
    use it, and read it with the host's journalctl.

``host``
    No journald and no namespaces, but root: start
    ``systemd-journald`` on the host paths (with its default configuration:
    without a flush request it stores under ``/run/log/journal``), stop it by
    PID at exit, and remove the directories and journal files it created.
    Runs of the tests in parallel can meet here; prefer ``private``.

``RIG_JOURNAL=private|host`` forces a mode (``host`` still uses a running
journald).  Without a journald binary, or without the privileges to start
one, tests using this module are skipped with the reason.

Reading is race-free without sleeping: ``mark()`` sends an entry of its own
through the native socket and waits (polling, with a deadline) until
journalctl shows it.  journald handles that socket in order, so everything
a finished process sent before is then visible too.  Typical use::

    j = Journal.shared()
    before = j.mark()
    run(j.wrap([keyrotd, '--log-target', 'journal', ...]))
    entries = j.entries_since(before, SYSLOG_IDENTIFIER='keyrotd')

Run as a program, it runs a command where a journald runs, without one on
the machine (root; other people's tests are unaffected)::

    python3 tests/rig/journal.py -- meson test -C build --num-processes 2

The command runs in its own mount namespace with fresh tmpfs on
``/run/systemd`` and ``/run/log`` (or on ``/run`` when they do not exist), a
private journald serving ``/run/systemd/journal/socket`` there (configured
as above), and the command's exit status.  Tests that need a machine
without a journald skip themselves then.
"""

import atexit
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import unittest
import uuid

from rig import stop_process, wait_until, _track

__all__ = ['Journal', 'JournalUnavailable', 'JOURNAL_SOCKET',
           'journald_binary']

JOURNAL_SOCKET = '/run/systemd/journal/socket'
_JOURNALD_PATHS = ('/lib/systemd/systemd-journald',
                   '/usr/lib/systemd/systemd-journald')

#: journald.conf drop-in for the private journald.  Audit= stays unset on
#: purpose: "no" would switch kernel auditing off for the whole machine.
_PRIVATE_CONF = """\
[Journal]
Storage=volatile
RuntimeMaxUse=64M
RateLimitIntervalSec=0
RateLimitBurst=0
ForwardToSyslog=no
ForwardToKMsg=no
ForwardToConsole=no
ForwardToWall=no
MaxLevelStore=debug
"""

# Runs as root inside the new mount namespace (unshare already made every
# mount private, so nothing propagates back to the host), then becomes
# journald: the PID we hold is journald's.
_PRIVATE_SCRIPT = """\
set -eu
mount -t tmpfs -o mode=0755,size=128m keyrotd-test-run /run
mkdir -p /run/systemd/journal /run/systemd/journald.conf.d /run/log/journal
cat > /run/systemd/journald.conf.d/50-keyrotd-test.conf
if [ -d /var/log/journal ]; then
        mount -t tmpfs -o mode=0755,size=1m keyrotd-test-var /var/log/journal
fi
# No kernel log in the test journal (ReadKMSG= only exists from systemd 254).
if [ -c /dev/kmsg ]; then
        mount --bind /dev/null /dev/kmsg
fi
exec "$0"
"""


class JournalUnavailable(unittest.SkipTest):
    """No journald can be used here; tests skip with this reason."""


def journald_binary():
    for p in _JOURNALD_PATHS:
        if os.access(p, os.X_OK):
            return p
    return None


def _socket_answers(path):
    """Whether a journald receives datagrams on ``path``."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(path)
        return True
    except OSError:
        return False


def _files_under(top):
    """{(st_dev, st_ino): path} of the files under ``top``.  By inode, not
    name: journald renames a file it finds unclean (``system@….journal~``)
    and that file is not ours to remove."""
    out = {}
    for d, _, files in os.walk(top):
        for f in files:
            p = os.path.join(d, f)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            out[(st.st_dev, st.st_ino)] = p
    return out


class Journal:
    """One journald the tests can write to and read from (see module doc)."""

    _shared = None

    def __init__(self):
        self.mode = None
        self.proc = None
        self._logdir = None
        self.log_path = None
        self._created = []   # host mode: directories to remove at stop
        self._files_before = None  # host mode: /run/log/journal files before

    # ------------------------------------------------------------ start

    @classmethod
    def shared(cls):
        """The process-wide journal, started on first use, stopped at exit.

        Raises JournalUnavailable (a SkipTest) when none can be had.
        """
        if cls._shared is None or not cls._shared.alive():
            cls._shared = cls().start()
        return cls._shared

    def alive(self):
        return self.proc is None or self.proc.poll() is None

    def start(self, timeout=15.0):
        want = os.environ.get('RIG_JOURNAL', 'auto')
        if want not in ('auto', 'private', 'host'):
            raise ValueError('RIG_JOURNAL must be auto, private or host')
        binary = journald_binary()
        self._logdir = tempfile.mkdtemp(prefix='rig-journald-')
        self.log_path = os.path.join(self._logdir, 'journald.log')
        errors = []
        if want in ('auto', 'private') and binary and os.geteuid() == 0:
            try:
                return self._start_private(binary, timeout)
            except RuntimeError as e:
                if want == 'private':
                    raise
                errors.append(str(e))
        if want in ('auto', 'host'):
            if _socket_answers(JOURNAL_SOCKET):
                self.mode = 'system'
                return self
            if binary and os.geteuid() == 0:
                return self._start_host(binary, timeout)
        shutil.rmtree(self._logdir, ignore_errors=True)
        if not binary:
            raise JournalUnavailable('systemd-journald is not installed '
                                     '(scripts/setup installs systemd)')
        raise JournalUnavailable('no journald runs here and starting one '
                                 'needs root%s' % (
                                     ': ' + '; '.join(errors) if errors else ''))

    def _env(self):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(('NOTIFY_SOCKET', 'LISTEN_', 'WATCHDOG_'))}
        # journald's own messages go to its log file, not to /dev/kmsg.
        env['SYSTEMD_LOG_TARGET'] = 'console'
        env['SYSTEMD_LOG_LEVEL'] = 'info'
        return env

    def _spawn(self, argv, stdin=None):
        with open(self.log_path, 'ab') as log:
            self.proc = _track(subprocess.Popen(
                    argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                    stdout=log, stderr=subprocess.STDOUT, env=self._env(),
                    cwd='/'))
        if stdin:
            self.proc.stdin.write(stdin.encode())
            self.proc.stdin.close()

    def _wait_ready(self, timeout):
        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError('systemd-journald (%s) exited with %s: %s'
                                   % (self.mode, self.proc.returncode,
                                      self.log_tail()))
            return _socket_answers(self.socket_path)
        wait_until(ready, timeout=timeout, interval=0.02,
                   message='systemd-journald did not open its socket within '
                           '%ss: %s' % (timeout, self.log_tail()))

    def _start_private(self, binary, timeout):
        self.mode = 'private'
        self._spawn(['unshare', '--mount', '--propagation', 'private', '--',
                     'sh', '-c', _PRIVATE_SCRIPT, binary],
                    stdin=_PRIVATE_CONF)
        try:
            self._wait_ready(timeout)
        except (RuntimeError, AssertionError) as e:
            stop_process(self.proc)
            self.proc = None
            raise RuntimeError(str(e)) from None
        return self

    def _start_host(self, binary, timeout):
        self.mode = 'host'
        for d in ('/run/systemd/journal', '/run/log/journal'):
            if not os.path.exists(d):
                self._created.append(d)
        self._files_before = _files_under('/run/log/journal')
        self._spawn([binary])
        try:
            self._wait_ready(timeout)
        except (RuntimeError, AssertionError):
            self.stop()
            raise
        return self

    # ------------------------------------------------------------ stop

    def stop(self):
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None
        # journald leaves its sockets behind: a stale socket would make
        # every later "auto" on this machine pick a journal nobody reads.
        for d in self._created:
            shutil.rmtree(d, ignore_errors=True)
        self._created = []
        if self._files_before is not None:
            for ino, f in _files_under('/run/log/journal').items():
                if ino in self._files_before:
                    continue
                try:
                    os.unlink(f)
                except OSError:
                    pass
            self._files_before = None
        if self._logdir and not os.environ.get('RIG_KEEP'):
            shutil.rmtree(self._logdir, ignore_errors=True)
        if Journal._shared is self:
            Journal._shared = None

    def log_tail(self, n=20):
        try:
            with open(self.log_path, 'rb') as f:
                return b'\n'.join(f.read().splitlines()[-n:]).decode(
                        'utf-8', 'replace')
        except (OSError, TypeError):
            return ''

    # ------------------------------------------------------------ access

    @property
    def socket_path(self):
        """The native socket as this process reaches it."""
        if self.mode == 'private':
            return '/proc/%d/root%s' % (self.proc.pid, JOURNAL_SOCKET)
        return JOURNAL_SOCKET

    @property
    def isolated(self):
        """True when the host has no view of this journal (private mode):
        outside wrap() there is no journal socket unless the host has one."""
        return self.mode == 'private'

    def wrap(self, argv, cwd=None):
        """``argv`` made to run where this journald is /run/systemd/journal."""
        if self.mode != 'private':
            return list(argv)
        return ['nsenter', '--mount=/proc/%d/ns/mnt' % self.proc.pid,
                '--wd=%s' % (cwd or os.getcwd()), '--'] + list(argv)

    def use_catalog(self, database_dir):
        """Make ``journalctl -x`` (through wrap()) read the catalog database
        in ``database_dir`` (made with ``journalctl --root=R
        --update-catalog``: R/var/lib/systemd/catalog).  Private mode only:
        a bind mount in the journal's namespace over
        /var/lib/systemd/catalog.  Returns a function that undoes it."""
        if self.mode != 'private':
            raise unittest.SkipTest('needs the private journald mode')
        target = '/var/lib/systemd/catalog'
        if not os.path.isdir(target):
            raise unittest.SkipTest('%s does not exist here' % target)
        subprocess.run(self.wrap(['mount', '--bind', database_dir, target], cwd='/'),
                       check=True, timeout=30)
        return lambda: subprocess.run(self.wrap(['umount', target], cwd='/'),
                                      check=True, timeout=30)

    def journalctl(self, *args, timeout=30.0):
        """Run journalctl ARGS against this journal; stdout as bytes."""
        p = subprocess.run(self.wrap(['journalctl', '--no-pager'] + list(args),
                                     cwd='/'),
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError('journalctl %s failed (%d): %s'
                               % (' '.join(args), p.returncode,
                                  p.stderr.decode('utf-8', 'replace')))
        return p.stdout

    def entries(self, *args, after=None, **match):
        """Entries as dicts (journalctl -o json --all), oldest first.

        ``after``: a cursor (from mark()); ``match``: FIELD=VALUE filters.
        """
        argv = ['-o', 'json', '--all']
        if after:
            argv.append('--after-cursor=%s' % after)
        argv += list(args)
        argv += ['%s=%s' % kv for kv in sorted(match.items())]
        out = self.journalctl(*argv)
        return [json.loads(l) for l in out.splitlines() if l.strip()]

    def send(self, **fields):
        """Send one entry through the native protocol (values: one line)."""
        data = ''.join('%s=%s\n' % (k, v) for k, v in fields.items())
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(data.encode(), self.socket_path)

    def mark(self, timeout=15.0):
        """A barrier: send a marker, wait until it can be read; its cursor.

        Everything any process sent to the native socket before this call
        is readable once it returns.
        """
        token = uuid.uuid4().hex
        self.send(MESSAGE='keyrotd test mark %s' % token,
                  SYSLOG_IDENTIFIER='keyrotd-test-mark',
                  KEYROTD_TEST_MARK=token, PRIORITY=7)

        def seen():
            e = self.entries(KEYROTD_TEST_MARK=token)
            return e[0]['__CURSOR'] if e else None
        return wait_until(seen, timeout=timeout, interval=0.05,
                          message='the journal did not show a mark within '
                                  '%ss' % timeout)

    def entries_since(self, cursor, **match):
        """Entries after ``cursor`` up to a fresh mark (so none is missing),
        filtered by ``match``; marks themselves are left out."""
        end = self.mark()
        out = []
        for e in self.entries(after=cursor):
            if e.get('__CURSOR') == end:
                break
            if e.get('SYSLOG_IDENTIFIER') == 'keyrotd-test-mark':
                continue
            if all(e.get(k) == v for k, v in match.items()):
                out.append(e)
        return out

    def export(self):
        """The whole journal in export format (bytes)."""
        self.mark()
        return self.journalctl('-o', 'export', '--all')


def _stop_shared():
    if Journal._shared is not None:
        Journal._shared.stop()


atexit.register(_stop_shared)


# Runs as root in a new mount namespace: journald in the background on
# fresh tmpfs, then the command ("$@"), then journald stopped by its PID.
_WITH_JOURNALD_SCRIPT = """\
set -eu
journald=$1; shift
if [ -d /run/systemd ] && [ -d /run/log ]; then
        mount -t tmpfs -o mode=0755 keyrotd-test-systemd /run/systemd
        mount -t tmpfs -o mode=0755 keyrotd-test-log /run/log
else
        mount -t tmpfs -o mode=0755 keyrotd-test-run /run
fi
mkdir -p /run/systemd/journal /run/systemd/journald.conf.d /run/log/journal
cat > /run/systemd/journald.conf.d/50-keyrotd-test.conf
if [ -d /var/log/journal ]; then
        mount -t tmpfs -o mode=0755,size=1m keyrotd-test-var /var/log/journal
fi
if [ -c /dev/kmsg ]; then
        mount --bind /dev/null /dev/kmsg
fi
SYSTEMD_LOG_TARGET=console "$journald" </dev/null >/dev/null 2>&1 &
pid=$!
i=0
until [ -S /run/systemd/journal/socket ]; do
        i=$((i + 1))
        if [ $i -gt 150 ] || ! kill -0 $pid 2>/dev/null; then
                echo "journal.py: systemd-journald did not start" >&2
                exit 1
        fi
        sleep 0.1
done
rc=0
"$@" </dev/null || rc=$?
kill $pid
wait $pid || true
exit $rc
"""


def main(argv):
    """``journal.py -- COMMAND...``: COMMAND where a private journald runs."""
    if argv[:1] == ['--']:
        argv = argv[1:]
    binary = journald_binary()
    if not argv or not binary or os.geteuid() != 0:
        print('usage (as root, with systemd-journald installed): '
              'journal.py -- COMMAND [ARG...]', file=sys.stderr)
        return 2
    p = subprocess.run(['unshare', '--mount', '--propagation', 'private', '--',
                        'sh', '-c', _WITH_JOURNALD_SCRIPT, 'journal.py', binary] + argv,
                       input=_PRIVATE_CONF.encode())
    return p.returncode


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))

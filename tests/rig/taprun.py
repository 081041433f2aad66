#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Run one unittest module and print TAP (version 12/13 compatible).

    python3 tests/rig/taprun.py tests/integration/test_x.py [-k SUBSTRING]...

One line per test: ``ok N - Class.test_name``, ``not ok N - ...`` followed
by ``# `` lines with the traceback, ``ok N - ... # SKIP reason``; expected
failures are ``not ok ... # TODO``, unexpected successes ``ok ... # TODO``
(meson counts the latter as a failure).  Errors in setUpClass/setUpModule
get a ``not ok`` line of their own.  The plan ``1..N`` comes last.  Exit
status 0 iff nothing failed.

File descriptor 1 is TAP only: before the tests run, fd 1 is pointed at
stderr (so stray prints of the tests and of their child processes cannot
corrupt the stream) and TAP goes to a private duplicate of the original.
tests/rig is put on sys.path so tests can ``from rig import ...``.
"""

import argparse
import importlib.util
import os
import signal
import sys
import traceback
import unittest

RIG_DIR = os.path.dirname(os.path.abspath(__file__))


class TapResult(unittest.TestResult):
    def __init__(self, out):
        super().__init__()
        self.out = out
        self.n = 0
        self.bad = 0
        self._outcome = None

    def _name(self, test):
        if isinstance(test, unittest.TestCase) and hasattr(test, '_testMethodName'):
            return '%s.%s' % (type(test).__name__, test._testMethodName)
        return str(test)  # _ErrorHolder: "setUpClass (module.Class)"

    def _emit(self, ok, name, directive='', diag=''):
        self.n += 1
        line = '%s %d - %s' % ('ok' if ok else 'not ok', self.n,
                               name.replace('#', '\\#'))
        if directive:
            line += ' # ' + directive
        lines = [line]
        for d in diag.rstrip('\n').splitlines():
            lines.append('# ' + d)
        self.out.write('\n'.join(lines) + '\n')
        self.out.flush()

    def _diag(self, err, test=None):
        if isinstance(test, unittest.TestCase):
            return self._exc_info_to_string(err, test)  # unittest frames cut
        return ''.join(traceback.format_exception(*err))

    # A test's own outcome and those of its subtests are folded into one line.
    def startTest(self, test):
        super().startTest(test)
        self._outcome = {'ok': True, 'directive': '', 'diag': []}

    def stopTest(self, test):
        super().stopTest(test)
        o = self._outcome
        self._outcome = None
        if o is None:
            return
        if not o['ok'] and 'TODO' not in o['directive']:
            self.bad += 1
        self._emit(o['ok'], self._name(test), o['directive'], ''.join(o['diag']))

    def _fail(self, test, err, what):
        if self._outcome is None:  # class/module fixture error: own line
            self.bad += 1
            self._emit(False, self._name(test), '', self._diag(err, test))
            return
        self._outcome['ok'] = False
        self._outcome['diag'].append('%s:\n%s' % (what, self._diag(err, test)))

    def addError(self, test, err):
        super().addError(test, err)
        self._fail(test, err, 'ERROR')

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._fail(test, err, 'FAIL')

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            what = 'FAIL' if issubclass(err[0], test.failureException) else 'ERROR'
            self._fail(test, err, '%s in %s' % (what, subtest._subDescription()))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        if self._outcome is None:  # skipped class or module
            self._emit(True, self._name(test), 'SKIP ' + reason)
            return
        self._outcome['directive'] = 'SKIP ' + reason

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._outcome['ok'] = False
        self._outcome['directive'] = 'TODO expected failure'
        self._outcome['diag'].append(self._diag(err, test))

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self.bad += 1
        self._outcome['directive'] = 'TODO unexpected success'


def _iter_tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from _iter_tests(t)
        else:
            yield t


def _filter(suite, patterns):
    if not patterns:
        return suite
    keep = unittest.TestSuite()
    for t in _iter_tests(suite):
        name = t.id()
        if any(p in name for p in patterns):
            keep.addTest(t)
    return keep


def _on_sigterm(signum, frame):
    # unittest swallows SystemExit raised inside a test; KeyboardInterrupt
    # goes through, and atexit then stops every child the rig started.
    raise KeyboardInterrupt('terminated by signal %d' % signum)


def main(argv=None):
    ap = argparse.ArgumentParser(description='Run a unittest module as TAP.')
    ap.add_argument('path', help='test module file')
    ap.add_argument('-k', action='append', default=[], metavar='SUBSTRING',
                    help='run only tests whose id contains SUBSTRING '
                         '(repeatable: any matches)')
    args = ap.parse_args(argv)

    # TAP gets a private copy of fd 1; fd 1 itself becomes stderr.
    sys.stdout.flush()
    tap = os.fdopen(os.dup(1), 'w', buffering=1, encoding='utf-8',
                    errors='replace')
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        return _run(args, tap)
    finally:
        tap.close()


def _run(args, tap):
    signal.signal(signal.SIGTERM, _on_sigterm)
    sys.path.insert(0, RIG_DIR)
    path = os.path.abspath(args.path)
    sys.path.insert(1, os.path.dirname(path))
    name = os.path.splitext(os.path.basename(path))[0]

    result = TapResult(tap)
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        suite = unittest.defaultTestLoader.loadTestsFromModule(module)
    except unittest.SkipTest as e:
        tap.write('1..0 # SKIP %s\n' % e)
        return 0
    except Exception:
        result._emit(False, 'import %s' % name, '',
                     traceback.format_exc())
        tap.write('1..%d\n' % result.n)
        return 1

    suite = _filter(suite, args.k)
    if suite.countTestCases() == 0:
        if args.k:
            tap.write('1..0 # SKIP no test matches -k %s\n' % ' '.join(args.k))
            print('taprun: no test matches %s' % args.k, file=sys.stderr)
            return 1
        tap.write('1..0 # SKIP no tests\n')
        return 0

    interrupted = False
    try:
        suite.run(result)
    except KeyboardInterrupt as e:
        interrupted = True
        result._emit(False, 'interrupted', '', str(e))
        result.bad += 1
    finally:
        rig = sys.modules.get('rig')
        if rig is not None and hasattr(rig, 'shutdown'):
            try:
                rig.shutdown()
            except Exception:
                traceback.print_exc()
    tap.write('1..%d\n' % result.n)
    tap.flush()
    if interrupted:
        return 130
    return 0 if result.bad == 0 else 1


if __name__ == '__main__':
    sys.exit(main())

# SPDX-License-Identifier: MIT
"""The Debian package (docs/DESIGN.md §5, packaging/): packaging/build-deb, once,
into a temp dir; then

* what the .deb holds: exactly the expected files, each with its owner and
  mode, no setuid bit, nothing writable by group or others, and
  /etc/keyrotd/inventory.yaml as its one conffile;
* its control fields: the library dependencies filled in by dh_shlibdeps,
  and the ones no library pulls in (CA certificates, kill for ExecReload=);
* its maintainer scripts: sysusers, then tmpfiles, then the units (the
  service and both sockets) enabled and started, then the inventory's
  statoverride; the units stopped on removal; all of them valid sh;
* its sockets: control.sock 0660 for group keyrotd, credentials.sock 0666
  for any local user (fd named "credentials"), in a 0755 /run/keyrotd;
* the programs from the package, run from a `dpkg-deb -x` tree: a release
  build (no crash-injection hook), the shipped inventory passes
  --check-config and lists no user, so does the example, keyrotctl --help;
* the packaged service unit: skipped, not failed, while the store key is
  missing;
* lintian: no error (warnings go to the TAP diagnostics);
* packaging/rpm/keyrotd.spec, when rpmspec is installed: its %files names
  the same files as the .deb.

The package build does not depend on KEYROTD_BUILD_DIR's configuration, so
this runs in the plain build only (skipped under a sanitizer), and skips
without dpkg-buildpackage or debhelper. Run:
python3 tests/rig/taprun.py tests/integration/test_package.py
"""

import fnmatch
import glob
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
import time
import unittest

from rig import TapNotes, build_path, meson_option, source_path

ENV = dict(os.environ, LC_ALL='C.UTF-8')


def call(argv, timeout=120, **kw):
    kw.setdefault('env', ENV)
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)


def check_call(argv, **kw):
    r = call(argv, **kw)
    if r.returncode != 0:
        raise AssertionError('%s failed (%d):\n%s\n%s'
                             % (' '.join(argv), r.returncode, r.stdout, r.stderr))
    return r.stdout


def meson_introspect(build, what):
    return json.loads(check_call(['meson', 'introspect', build, what]))


def unit_dir():
    """Where `meson install` under prefix /usr puts units: systemd.pc's
    answer, as in systemd/meson.build."""
    if shutil.which('pkg-config'):
        r = call(['pkg-config', '--define-variable=prefix=/usr',
                  '--variable=systemdsystemunitdir', 'systemd'])
        if r.returncode == 0 and r.stdout.strip():
            return r.stdout.strip()
    return '/lib/systemd/system'


# `dpkg-deb -c`: "-rw-r--r-- root/root   1742 2026-11-28 09:46 ./etc/..."
LISTING = re.compile(r'^(\S{10}) (\S+)/(\S+)\s+\d+ \S+ \S+ \./(.*?)(?: -> .*)?$')


class Package(TapNotes, unittest.TestCase):
    """One package build for the whole module."""

    @classmethod
    def setUpClass(cls):
        cls.build = build_path('')
        if meson_option('b_sanitize') != 'none':
            raise unittest.SkipTest('b_sanitize=%s: the package build is the same in every '
                                    'build dir, it is checked in the plain one'
                                    % meson_option('b_sanitize'))
        for tool, pkg in (('dpkg-buildpackage', 'dpkg-dev'), ('dh', 'debhelper'),
                          ('dpkg-deb', 'dpkg')):
            if not shutil.which(tool):
                raise unittest.SkipTest('%s is not installed (package %s)' % (tool, pkg))
        cls.version = meson_introspect(cls.build, '--projectinfo')['version']
        cls.arch = check_call(['dpkg', '--print-architecture']).strip()

        cls.tmp = tempfile.mkdtemp(prefix='keyrotd-package-')
        cls.out = os.path.join(cls.tmp, 'out')
        env = dict(ENV, TMPDIR=cls.tmp)
        env.pop('KEYROTD_DEB_OUT', None)
        started = time.monotonic()
        r = call([source_path('packaging/build-deb'), '-o', cls.out], timeout=900, env=env)
        cls.build_seconds = time.monotonic() - started
        if r.returncode != 0:
            raise AssertionError('packaging/build-deb failed (%d):\n%s\n%s'
                                 % (r.returncode, r.stdout[-4000:], r.stderr[-8000:]))
        debs = sorted(glob.glob(os.path.join(cls.out, 'keyrotd_*.deb')))
        if len(debs) != 1:
            raise AssertionError('expected one keyrotd_*.deb in %s, got %s'
                                 % (cls.out, os.listdir(cls.out)))
        cls.deb = debs[0]
        cls.changes = glob.glob(os.path.join(cls.out, 'keyrotd_*.changes'))
        cls.ctl = os.path.join(cls.tmp, 'control')
        check_call(['dpkg-deb', '-e', cls.deb, cls.ctl])
        cls.root = os.path.join(cls.tmp, 'root')
        check_call(['dpkg-deb', '-x', cls.deb, cls.root])
        cls.entries = {}
        for line in check_call(['dpkg-deb', '-c', cls.deb]).splitlines():
            m = LISTING.match(line)
            if not m:
                raise AssertionError('unparsable dpkg-deb -c line: %r' % line)
            mode, owner, group, path = m.groups()
            cls.entries['/' + path.rstrip('/')] = (mode, owner, group)
        cls.entries.pop('/', None)

    @classmethod
    def tearDownClass(cls):
        if os.environ.get('RIG_KEEP'):
            print('test_package: kept %s' % cls.tmp)
        else:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def extracted(self, path):
        return os.path.join(self.root, path.lstrip('/'))

    def script(self, name):
        p = os.path.join(self.ctl, name)
        self.assertTrue(os.path.isfile(p), 'no %s in the package' % name)
        with open(p, encoding='utf-8') as f:
            return f.read()

    def expected_files(self):
        """{path: mode} of every regular file the package must ship."""
        units = unit_dir()
        want = {
            '/usr/sbin/keyrotd': 0o755,
            '/usr/bin/keyrotctl': 0o755,
            '/etc/keyrotd/inventory.yaml': 0o644,
            units + '/keyrotd.service': 0o644,
            units + '/keyrotd.socket': 0o644,
            units + '/keyrotd-credentials.socket': 0o644,
            '/usr/lib/sysusers.d/keyrotd.conf': 0o644,
            '/usr/lib/tmpfiles.d/keyrotd.conf': 0o644,
            '/usr/share/doc/keyrotd/README.md.gz': 0o644,
            '/usr/share/doc/keyrotd/changelog.Debian.gz': 0o644,
            '/usr/share/doc/keyrotd/copyright': 0o644,
            '/usr/share/doc/keyrotd/examples/inventory.yaml': 0o644,
            '/usr/share/doc/keyrotd/examples/keyrotd-restart.rules': 0o644,
            '/usr/share/doc/keyrotd/examples/targets-outside-state.conf': 0o644,
            '/usr/share/lintian/overrides/keyrotd': 0o644,
        }
        if os.path.exists(source_path('systemd/keyrotd.catalog')):
            want['/usr/lib/systemd/catalog/keyrotd.catalog'] = 0o644
        for n in sorted(os.listdir(source_path('man'))):
            m = re.fullmatch(r'.+\.([1-8])', n)
            if m:
                want['/usr/share/man/man%s/%s.gz' % (m.group(1), n)] = 0o644
        return want

    # ------------------------------------------------------------ tests

    def test_built(self):
        """build-deb made the package of this version, and left the
        checkout alone."""
        self.tap_note('package build took %.0fs' % self.build_seconds)
        self.assertEqual(os.path.basename(self.deb),
                         'keyrotd_%s-1_%s.deb' % (self.version, self.arch))
        fields = check_call(['dpkg-deb', '-f', self.deb, 'Package', 'Version', 'Architecture'])
        self.assertIn('Version: %s-1' % self.version, fields)
        for p in ('debian', 'obj-*', 'packaging/debian/keyrotd', 'packaging/debian/.debhelper',
                  'packaging/debian/files', 'packaging/debian/debhelper-build-stamp'):
            with self.subTest(path=p):
                self.assertEqual(glob.glob(source_path(p)), [], 'build-deb wrote into the checkout')

    def test_file_list(self):
        """Exactly the expected files, owned by root, modes as expected;
        every directory root:root 0755."""
        want = self.expected_files()
        files = {p: e for p, e in self.entries.items() if e[0][0] == '-'}
        self.assertEqual(sorted(files), sorted(want))
        for path, (mode, owner, group) in sorted(self.entries.items()):
            with self.subTest(path=path):
                self.assertEqual((owner, group), ('root', 'root'))
                self.assertIn(mode[0], '-d', 'neither a file nor a directory')
                st = os.lstat(self.extracted(path))
                perm = stat.S_IMODE(st.st_mode)
                self.assertFalse(perm & (stat.S_ISUID | stat.S_ISGID), 'setuid/setgid')
                self.assertFalse(perm & (stat.S_IWGRP | stat.S_IWOTH), 'writable by group or others')
                if mode[0] == 'd':
                    self.assertEqual(oct(perm), oct(0o755))
                else:
                    self.assertEqual(oct(perm), oct(want[path]))

    def test_conffiles(self):
        """The inventory is the one conffile; nothing else goes to /etc."""
        self.assertEqual(self.script('conffiles').split(), ['/etc/keyrotd/inventory.yaml'])
        etc = sorted(p for p, e in self.entries.items() if p.startswith('/etc/') and e[0][0] != 'd')
        self.assertEqual(etc, ['/etc/keyrotd/inventory.yaml'])

    def test_depends(self):
        """Library dependencies from dh_shlibdeps, plus what the daemon
        runs or reads that no library pulls in."""
        fields = check_call(['dpkg-deb', '-f', self.deb, 'Depends', 'Pre-Depends'])
        self.assertNotIn('${', fields)
        names = set(re.findall(r'(?:^|[\s,|])([a-z0-9][a-z0-9.+-]+)', fields.split(':', 1)[1]))
        for lib in ('libc6', 'libcurl4', 'libssl3', 'libyaml-0-2', 'libsystemd0',
                    'libsodium23', 'libexpat1', 'libjson-c5'):
            with self.subTest(lib=lib):
                # Another soname on another release is fine; the library must be there.
                self.assertTrue(any(n.startswith(re.sub(r'\d+$', '', lib)) for n in names), fields)
        for dep in ('ca-certificates', 'procps', 'systemd'):
            with self.subTest(dep=dep):
                self.assertIn(dep, names, fields)

    def test_maintainer_scripts(self):
        """postinst: user and group, then directories, then the units, then
        the inventory's owner; prerm stops the units; postrm cleans up."""
        for name in ('postinst', 'prerm', 'postrm'):
            with self.subTest(script=name):
                r = call(['sh', '-n', os.path.join(self.ctl, name)])
                self.assertEqual(r.returncode, 0, r.stderr)
        post = self.script('postinst')

        def at(what, rx):
            m = re.search(rx, post)
            self.assertIsNotNone(m, '%s: no match for %s in postinst' % (what, rx))
            return m.start()
        # Every unit is enabled once the user and /run/keyrotd exist, and
        # before the one start of all three (in whatever order debhelper
        # lists them); the statoverride needs the group.
        units = ('keyrotd.service', 'keyrotd.socket', 'keyrotd-credentials.socket')
        unit_list = r"(?: '(?:%s)'){3}" % '|'.join(re.escape(u) for u in units)
        tmpfiles = at('tmpfiles', r'systemd-tmpfiles\b.*--create\b.*\bkeyrotd\.conf')
        self.assertLess(at('sysusers', r'systemd-sysusers\b.*\bkeyrotd\.conf'), tmpfiles)
        start = at('start', r"deb-systemd-invoke \$_dh_action" + unit_list + r"\s")
        self.assertLess(start, at('statoverride',
                                  r'dpkg-statoverride --update --add root keyrotd 0640 "\$inv"'))
        for unit in units:
            with self.subTest(enable=unit):
                enable = at('enable ' + unit, r"deb-systemd-helper enable '%s'" % re.escape(unit))
                self.assertLess(tmpfiles, enable)
                self.assertLess(enable, start)
        start_line = post[start:].split('\n', 1)[0]
        self.assertEqual(sorted(re.findall(r"'([^']+)'", start_line)), sorted(units))
        self.assertIn('inv=/etc/keyrotd/inventory.yaml', post)
        self.assertRegex(self.script('prerm'), r"deb-systemd-invoke stop" + unit_list + r"\s")
        postrm = self.script('postrm')
        self.assertRegex(postrm, r"deb-systemd-helper purge" + unit_list + r"\s")
        self.assertRegex(postrm, r'dpkg-statoverride --remove /etc/keyrotd/inventory\.yaml')
        # The store and its key outlive a purge (see the comment there).
        self.assertNotRegex(postrm, r'rm\s.*(store|/var/lib/keyrotd)')

    def test_sockets(self):
        """The packaged socket units: control.sock for root and group
        keyrotd, credentials.sock for any local user, both in a /run/keyrotd
        everybody may enter (the packaged tmpfiles.d and the service agree)."""
        def lines(path):
            with open(self.extracted(path), encoding='utf-8') as f:
                return [l.strip() for l in f if l.strip() and not l.lstrip().startswith('#')]
        control = lines(unit_dir() + '/keyrotd.socket')
        cred = lines(unit_dir() + '/keyrotd-credentials.socket')
        for line in ('ListenStream=/run/keyrotd/control.sock', 'FileDescriptorName=control',
                     'SocketGroup=keyrotd', 'SocketMode=0660', 'DirectoryMode=0755'):
            with self.subTest(control=line):
                self.assertIn(line, control)
        for line in ('ListenStream=/run/keyrotd/credentials.sock', 'FileDescriptorName=credentials',
                     'Service=keyrotd.service', 'SocketMode=0666', 'DirectoryMode=0755',
                     'RemoveOnStop=yes', 'WantedBy=sockets.target'):
            with self.subTest(credentials=line):
                self.assertIn(line, cred)
        self.assertIn('RuntimeDirectoryMode=0755', lines(unit_dir() + '/keyrotd.service'))
        tmpfiles = [l.split() for l in lines('/usr/lib/tmpfiles.d/keyrotd.conf')
                    if l.split()[1:2] == ['/run/keyrotd']]
        self.assertEqual(tmpfiles, [['d', '/run/keyrotd', '0755', 'keyrotd', 'keyrotd', '-', '-']])

    def test_lifecycle_in_scratch_root(self):
        """install, reinstall over an edited conffile, remove, purge: with
        dpkg --root and the maintainer scripts run chrootless (DPKG_ROOT),
        so sysusers, tmpfiles and the unit enablement act on a scratch
        root, never on this host."""
        if os.geteuid() != 0:
            self.skipTest('dpkg --root needs root to give files their owners')
        if os.path.isdir('/run/systemd/system'):
            # The scripts' daemon-reload and start would reach this host's
            # systemd (they only check that one runs, not DPKG_ROOT).
            self.skipTest('systemd runs here: the scripts would talk to it')
        for tool in ('systemd-sysusers', 'systemd-tmpfiles', 'deb-systemd-helper'):
            if not shutil.which(tool):
                self.skipTest('%s is not installed' % tool)
        root = os.path.join(self.tmp, 'sysroot')
        admin = os.path.join(root, 'var/lib/dpkg')
        for d in ('info', 'updates'):
            os.makedirs(os.path.join(admin, d))
        for f in ('status', 'available'):
            open(os.path.join(admin, f), 'w').close()
        os.makedirs(os.path.join(root, 'etc'))
        dpkg = ['dpkg', '--root=' + root, '--force-script-chrootless', '--force-depends',
                '--log=' + os.path.join(root, 'dpkg.log')]
        R = lambda p: os.path.join(root, p.lstrip('/'))  # noqa: E731

        check_call(dpkg + ['-i', self.deb])
        passwd = {l.split(':')[0]: l.rstrip('\n').split(':') for l in open(R('/etc/passwd'))}
        self.assertIn('keyrotd', passwd)
        uid, gid = int(passwd['keyrotd'][2]), int(passwd['keyrotd'][3])
        self.assertLess(uid, 1000)
        for path, mode, owner, grp in (('/etc/keyrotd', 0o750, 0, gid),
                                       ('/var/lib/keyrotd', 0o700, uid, gid),
                                       ('/run/keyrotd', 0o755, uid, gid),
                                       ('/etc/keyrotd/inventory.yaml', 0o644, 0, 0)):
            with self.subTest(path=path):
                st = os.lstat(R(path))
                self.assertEqual((oct(stat.S_IMODE(st.st_mode)), st.st_uid, st.st_gid),
                                 (oct(mode), owner, grp))
        wants = ('/etc/systemd/system/multi-user.target.wants/keyrotd.service',
                 '/etc/systemd/system/sockets.target.wants/keyrotd.socket',
                 '/etc/systemd/system/sockets.target.wants/keyrotd-credentials.socket')
        for link in wants:
            with self.subTest(enabled=link):
                self.assertTrue(os.path.islink(R(link)), 'not enabled')

        # The operator edits the inventory and creates the store key; a
        # reinstall (the upgrade path) keeps both. A /run/keyrotd found
        # closed to others (0750) is opened on the way, or readers could
        # not reach the credentials socket.
        with open(R('/etc/keyrotd/inventory.yaml'), 'a') as f:
            f.write('# edited by the operator\n')
        with open(R('/etc/keyrotd/store.key'), 'wb') as f:
            f.write(os.urandom(32))
        os.chmod(R('/run/keyrotd'), 0o750)
        check_call(dpkg + ['-i', self.deb])
        self.assertTrue(open(R('/etc/keyrotd/inventory.yaml')).read().endswith(
            '# edited by the operator\n'))
        self.assertEqual(oct(stat.S_IMODE(os.lstat(R('/run/keyrotd')).st_mode)), oct(0o755))

        check_call(dpkg + ['--remove', 'keyrotd'])
        self.assertFalse(os.path.exists(R('/usr/sbin/keyrotd')))
        self.assertTrue(os.path.exists(R('/etc/keyrotd/inventory.yaml')), 'conffile gone on remove')

        check_call(dpkg + ['--purge', 'keyrotd'])
        self.assertFalse(os.path.exists(R('/etc/keyrotd/inventory.yaml')))
        for link in wants:
            with self.subTest(purged=link):
                self.assertFalse(os.path.lexists(R(link)))
        # The master key and the state directory outlive a purge.
        self.assertTrue(os.path.isfile(R('/etc/keyrotd/store.key')))
        self.assertTrue(os.path.isdir(R('/var/lib/keyrotd')))

    def test_release_build(self):
        """The packaged programs come from a -Dtest_hooks=false build."""
        for prog in ('/usr/sbin/keyrotd', '/usr/bin/keyrotctl'):
            with self.subTest(prog=prog):
                with open(self.extracted(prog), 'rb') as f:
                    self.assertFalse(b'KEYROTD_CRASH_AT' in f.read(),
                                     'crash-injection hook compiled in (-Dtest_hooks=true?)')
        r = call([self.extracted('/usr/sbin/keyrotd'), '--version'])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(self.version, r.stdout)

    def test_shipped_inventory_checks(self):
        """The conffile passes --check-config with the packaged keyrotd and
        rotates nobody; so does the full example."""
        keyrotd = self.extracted('/usr/sbin/keyrotd')
        inv = self.extracted('/etc/keyrotd/inventory.yaml')
        r = call([keyrotd, '--check-config', '--config', inv])
        self.assertEqual((r.returncode, r.stderr), (0, ''))
        self.assertEqual(r.stdout.strip(), '%s: OK (0 users)' % inv)
        example = self.extracted('/usr/share/doc/keyrotd/examples/inventory.yaml')
        r = call([keyrotd, '--check-config', '--config', example])
        self.assertEqual((r.returncode, r.stderr), (0, ''))
        self.assertRegex(r.stdout, r'OK \([1-9]\d* users\)')

    def test_keyrotctl_help(self):
        r = call([self.extracted('/usr/bin/keyrotctl'), '--help'])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('Usage: keyrotctl', r.stdout)

    def test_service_waits_for_store_key(self):
        """Enabled and started at install, the service is skipped until
        the store key (or its encrypted form) exists."""
        unit = open(self.extracted(unit_dir() + '/keyrotd.service'), encoding='utf-8').read()
        self.assertIn('\nExecStart=/usr/sbin/keyrotd\n', unit)
        unit_section = unit.split('\n[Unit]\n', 1)[1].split('\n[', 1)[0]
        conds = re.findall(r'^ConditionPathExists=(.*)$', unit_section, re.M)
        self.assertEqual(sorted(conds), ['|/etc/keyrotd/store.key', '|/etc/keyrotd/store.key.cred'])
        self.assertIn('\nLoadCredential=store.key:/etc/keyrotd/store.key\n', unit)

    def test_lintian(self):
        """No lintian error; warnings are listed below."""
        if not shutil.which('lintian'):
            self.skipTest('lintian is not installed')
        self.assertEqual(len(self.changes), 1, os.listdir(self.out))
        started = time.monotonic()
        r = call(['lintian', self.changes[0]], timeout=600)
        tags = [l for l in r.stdout.splitlines() if re.match(r'^[EWIPXN]: ', l)]
        self.tap_note('lintian (%.0fs): %s' % (time.monotonic() - started,
                                              '; '.join(tags) if tags else 'clean'))
        # 0: clean, 1: a tag at --fail-on level; anything else is lintian failing.
        self.assertIn(r.returncode, (0, 1), r.stderr)
        errors = [l for l in tags if l.startswith('E: ')]
        self.assertEqual(errors, [], r.stdout + r.stderr)

    def test_rpm_spec_same_files(self):
        """packaging/rpm/keyrotd.spec ships what the .deb ships (Debian's
        own changelog and copyright, and compression, aside)."""
        if not shutil.which('rpmspec'):
            self.skipTest('rpmspec is not installed (package rpm)')
        # The systemd macros are not on Debian; the values of the .deb
        # stand in, so the comparison is of content, not of distributions.
        defines = {'_unitdir': unit_dir(), '_sysusersdir': '/usr/lib/sysusers.d',
                   '_tmpfilesdir': '/usr/lib/tmpfiles.d',
                   '_journalcatalogdir': '/usr/lib/systemd/catalog', '_docdir': '/usr/share/doc'}
        argv = ['rpmspec', '-P', source_path('packaging/rpm/keyrotd.spec')]
        for k, v in defines.items():
            argv += ['--define', '%s %s' % (k, v)]
        spec = check_call(argv)
        self.assertRegex(spec, r'(?m)^Version:\s+%s$' % re.escape(self.version))
        files_section = spec.split('\n%files\n', 1)[1].split('\n%changelog', 1)[0]
        patterns = []
        for line in files_section.splitlines():
            line = line.strip()
            if not line or line.startswith('#'):
                continue
            if line.startswith('%license '):
                continue  # the licence text, where Debian has copyright
            while line.startswith('%'):
                line = re.sub(r'^%[a-z]+(\([^)]*\))?\s*', '', line)
            patterns.append(line)
        self.assertIn('/etc/keyrotd/inventory.yaml', patterns)
        self.assertRegex(files_section, r'%config\(noreplace\)\s.*\s/etc/keyrotd/inventory\.yaml')

        def covered(path, pat):
            return fnmatch.fnmatch(path, pat) or (pat.endswith('/') and path.startswith(pat))

        deb_files = set()
        for path in self.expected_files():
            if path in ('/usr/share/doc/keyrotd/changelog.Debian.gz',
                        '/usr/share/doc/keyrotd/copyright',
                        '/usr/share/lintian/overrides/keyrotd'):
                continue
            if path.startswith('/usr/share/doc/') and path.endswith('.gz'):
                path = path[:-3]
            deb_files.add(path)
        for path in sorted(deb_files):
            with self.subTest(deb=path):
                self.assertTrue(any(covered(path, p) for p in patterns), 'not in the spec\'s %files')
        for pat in patterns:
            with self.subTest(spec=pat):
                self.assertTrue(any(covered(p, pat) for p in deb_files) or
                                pat.rstrip('/') == '/etc/keyrotd', 'not in the .deb')


if __name__ == '__main__':
    unittest.main()

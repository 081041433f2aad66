/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/fileio.h"
#include "basic/secret.h"
#include "basic/util.h"
#include "tap.h"

static char tmpdir[64];

static void skip(const char *why) {
        tap_n++;
        printf("ok %u # SKIP %s\n", tap_n, why);
        fflush(stdout);
}

static char *pathf(const char *name) {
        static char buf[4][PATH_MAX];
        static unsigned i;
        char *p = buf[i++ % 4];

        snprintf(p, PATH_MAX, "%s/%s", tmpdir, name);
        return p;
}

static int put(const char *path, const char *content, mode_t mode) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        size_t len = strlen(content);

        if (fd < 0)
                return -errno;
        if (write(fd, content, len) != (ssize_t) len) {
                close(fd);
                return -EIO;
        }
        fchmod(fd, mode);
        close(fd);
        return 0;
}

/* Content of a file as a malloc'd string ("" on any error: compare fails). */
static char *slurp(const char *path) {
        uint8_t *buf = NULL;
        size_t len;

        if (read_file_bounded(AT_FDCWD, path, 16 * 1024 * 1024, 0, &buf, &len, NULL) < 0)
                return strdup("<unreadable>");
        return (char *) buf;
}

/* Number of entries in @dir whose name starts with "." (other than . and
 * ..): leftover temporary files. */
static int count_hidden(const char *dir) {
        DIR *d = opendir(dir);
        struct dirent *de;
        int n = 0;

        if (!d)
                return -1;
        while ((de = readdir(d)))
                if (de->d_name[0] == '.' && !streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        n++;
        closedir(d);
        return n;
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *f) {
        (void) st;
        (void) flag;
        (void) f;
        return remove(p);
}

static void test_basic(void) {
        _cleanup_free_ char *c = NULL;
        struct stat st = { 0 };
        int r;

        r = write_file_atomic(AT_FDCWD, pathf("a"), "hello\n", 6, NULL);
        ok(r == 0, "basic write returns 0 (%d)", r);
        c = slurp(pathf("a"));
        ok_eq_str(c, "hello\n", "basic write content");
        r = stat(pathf("a"), &st);
        ok(r == 0 && (st.st_mode & 07777) == 0600 && S_ISREG(st.st_mode),
           "default mode is 0600 (%o)", (unsigned) (st.st_mode & 07777));
        ok(st.st_uid == geteuid(), "default owner is euid");

        r = write_file_atomic(AT_FDCWD, pathf("a"), "replaced", 8, NULL);
        free(c);
        c = slurp(pathf("a"));
        ok(r == 0 && streq(c, "replaced"), "overwrite replaces the content");

        r = write_file_atomic(AT_FDCWD, pathf("empty"), NULL, 0, NULL);
        ok(r == 0 && stat(pathf("empty"), &st) == 0 && st.st_size == 0, "empty content writes an empty file");

        /* Relative to a directory fd. */
        int dfd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        r = write_file_atomic(dfd, "rel", "x", 1, NULL);
        free(c);
        c = slurp(pathf("rel"));
        ok(r == 0 && streq(c, "x"), "relative path resolves against dirfd");
        close(dfd);

        /* Big enough for several write(2) calls through the pipe of a tmpfs. */
        size_t big = 3 * 1024 * 1024 + 17;
        char *data = malloc(big);
        for (size_t i = 0; i < big; i++)
                data[i] = (char) ('a' + i % 26);
        r = write_file_atomic(AT_FDCWD, pathf("big"), data, big, NULL);
        _cleanup_free_ uint8_t *back = NULL;
        size_t back_len = 0;
        int r2 = read_file_bounded(AT_FDCWD, pathf("big"), big, 0, &back, &back_len, NULL);
        ok(r == 0 && r2 == 0 && back_len == big && memcmp(back, data, big) == 0, "3 MiB written in full");
        free(data);

        ok(count_hidden(tmpdir) == 0, "no temporary file left after successful writes");
}

static void test_modes(void) {
        WriteOptions o = WRITE_OPTIONS_INIT;
        struct stat st = { 0 };
        mode_t old;
        int r;

        /* umask must not matter in either direction: fchmod sets the mode. */
        old = umask(0);
        r = write_file_atomic(AT_FDCWD, pathf("m1"), "x", 1, NULL);
        r = r < 0 ? r : stat(pathf("m1"), &st);
        ok(r == 0 && (st.st_mode & 07777) == 0600,
           "umask 0 does not widen the default 0600 (%o)", (unsigned) (st.st_mode & 07777));
        umask(0077);
        o.mode = 0644;
        r = write_file_atomic(AT_FDCWD, pathf("m2"), "x", 1, &o);
        r = r < 0 ? r : stat(pathf("m2"), &st);
        ok(r == 0 && (st.st_mode & 07777) == 0644,
           "explicit 0644 applied despite umask 077 (%o)", (unsigned) (st.st_mode & 07777));
        umask(old);

        /* Replacing a file with wider permissions gives the new mode, not the old one. */
        ok(put(pathf("m3"), "old", 0666) == 0, "setup: 0666 file");
        o.mode = 0;
        r = write_file_atomic(AT_FDCWD, pathf("m3"), "new", 3, &o);
        ok(r == 0 && stat(pathf("m3"), &st) == 0 && (st.st_mode & 07777) == 0600,
           "replacing a 0666 file yields 0600 (mode 0 = default)");

        o.mode = 04755;
        ok(write_file_atomic(AT_FDCWD, pathf("m4"), "x", 1, &o) == -EINVAL, "setuid mode refused with -EINVAL");
        ok(access(pathf("m4"), F_OK) < 0, "refused mode creates nothing");
}

/* Watch the directory with inotify: every attribute change of the temp
 * file (chown, chmod) must come before its first modification (write). */
static void test_order(void) {
        WriteOptions o = WRITE_OPTIONS_INIT;
        char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
        int fd, wd, n_attrib_before = 0, n_attrib_after = 0, n_modify = 0, r;
        bool renamed = false;
        ssize_t n;

        fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        wd = fd >= 0 ? inotify_add_watch(fd, tmpdir, IN_ALL_EVENTS) : -1;
        if (wd < 0) {
                skip("inotify unavailable");
                if (fd >= 0)
                        close(fd);
                return;
        }
        o.mode = 0640;
        if (geteuid() == 0)
                o.gid = 65534;
        r = write_file_atomic(AT_FDCWD, pathf("ordered"), "secret-ish", 10, &o);
        ok(r == 0, "write with mode 0640 succeeds");

        while ((n = read(fd, buf, sizeof(buf))) > 0) {
                for (char *p = buf; p < buf + n;) {
                        const struct inotify_event *e = (const struct inotify_event *) p;

                        if (e->len > 0 && e->name[0] == '.') {
                                if (e->mask & IN_ATTRIB) {
                                        if (n_modify == 0)
                                                n_attrib_before++;
                                        else
                                                n_attrib_after++;
                                }
                                if (e->mask & IN_MODIFY)
                                        n_modify++;
                                if (e->mask & IN_MOVED_FROM)
                                        renamed = true;
                        }
                        p += sizeof(*e) + e->len;
                }
        }
        close(fd);
        ok(n_attrib_before >= 1 && n_attrib_after == 0 && n_modify >= 1,
           "owner/mode set before the first byte is written (attrib before %d, after %d, writes %d)",
           n_attrib_before, n_attrib_after, n_modify);
        ok(renamed, "temp file renamed over the target");

        struct stat st = { 0 };
        ok(stat(pathf("ordered"), &st) == 0 && (st.st_mode & 07777) == 0640, "final file has mode 0640");
}

static void test_owner(void) {
        WriteOptions o = WRITE_OPTIONS_INIT;
        struct stat st = { 0 };
        int r;

        if (geteuid() != 0) {
                skip("not root: cannot chown to nobody");
                return;
        }
        o.uid = 65534;
        o.gid = 65534;
        o.mode = 0640;
        r = write_file_atomic(AT_FDCWD, pathf("own"), "x", 1, &o);
        r = r < 0 ? r : stat(pathf("own"), &st);
        ok(r == 0 && st.st_uid == 65534 && st.st_gid == 65534 &&
                   (st.st_mode & 07777) == 0640,
           "owner nobody:nogroup and mode 0640 applied (%u:%u %o)", (unsigned) st.st_uid, (unsigned) st.st_gid,
           (unsigned) (st.st_mode & 07777));

        o.uid = (uid_t) -1;
        o.gid = 65534;
        r = write_file_atomic(AT_FDCWD, pathf("own2"), "x", 1, &o);
        ok(r == 0 && stat(pathf("own2"), &st) == 0 && st.st_uid == 0 && st.st_gid == 65534,
           "group only: uid -1 leaves the owner");
}

static void test_symlink(void) {
        WriteOptions o = WRITE_OPTIONS_INIT;
        _cleanup_free_ char *c = NULL;
        struct stat st = { 0 };
        int r;

        ok(put(pathf("victim"), "original", 0600) == 0 && symlink(pathf("victim"), pathf("link")) == 0,
           "setup: symlink to victim");
        r = write_file_atomic(AT_FDCWD, pathf("link"), "evil", 4, &o);
        ok(r == -ELOOP, "symlink as final component refused with -ELOOP (%d)", r);
        c = slurp(pathf("victim"));
        ok_eq_str(c, "original", "symlink target untouched");
        ok(lstat(pathf("link"), &st) == 0 && S_ISLNK(st.st_mode), "symlink itself untouched");
        ok(count_hidden(tmpdir) == 0, "no temporary file left after refusal");

        /* Without refuse_symlink the link is replaced, never followed. */
        o.refuse_symlink = false;
        r = write_file_atomic(AT_FDCWD, pathf("link"), "new", 3, &o);
        free(c);
        c = slurp(pathf("victim"));
        ok(r == 0 && streq(c, "original"), "replacing a symlink does not write its target");
        ok(lstat(pathf("link"), &st) == 0 && S_ISREG(st.st_mode), "the symlink became a regular file");

        /* A dangling symlink too. */
        ok(symlink(pathf("nowhere"), pathf("dangling")) == 0, "setup: dangling symlink");
        o.refuse_symlink = true;
        r = write_file_atomic(AT_FDCWD, pathf("dangling"), "x", 1, &o);
        ok(r == -ELOOP && access(pathf("nowhere"), F_OK) < 0, "dangling symlink refused, nothing created through it");

        /* A symlinked *directory* component is an ordinary path: allowed. */
        ok(mkdir(pathf("realdir"), 0700) == 0 && symlink(pathf("realdir"), pathf("dirlink")) == 0,
           "setup: symlinked directory");
        r = write_file_atomic(AT_FDCWD, pathf("dirlink/f"), "x", 1, NULL);
        ok(r == 0 && access(pathf("realdir/f"), F_OK) == 0, "symlinks in the directory part are followed");
}

static void test_errors(void) {
        WriteOptions o = WRITE_OPTIONS_INIT;
        _cleanup_free_ char *c = NULL;
        int r;

        r = write_file_atomic(AT_FDCWD, pathf("missing/dir/file"), "x", 1, NULL);
        ok(r == -ENOENT, "missing parent directory → -ENOENT (%d)", r);
        ok(access(pathf("missing"), F_OK) < 0, "missing parent directory is not created");

        ok(mkdir(pathf("adir"), 0700) == 0, "setup: directory");
        ok(write_file_atomic(AT_FDCWD, pathf("adir"), "x", 1, NULL) == -EISDIR, "a directory target → -EISDIR");
        ok(write_file_atomic(AT_FDCWD, "", "x", 1, NULL) == -EINVAL, "empty path → -EINVAL");
        ok(write_file_atomic(AT_FDCWD, pathf("adir/"), "x", 1, NULL) == -EINVAL, "trailing slash → -EINVAL");
        ok(write_file_atomic(AT_FDCWD, pathf("."), "x", 1, NULL) == -EINVAL, "\".\" → -EINVAL");
        ok(write_file_atomic(AT_FDCWD, NULL, "x", 1, NULL) == -EINVAL, "NULL path → -EINVAL");

        /* no_replace */
        o.no_replace = true;
        ok(put(pathf("keep"), "keep", 0600) == 0, "setup: existing file");
        r = write_file_atomic(AT_FDCWD, pathf("keep"), "lost", 4, &o);
        c = slurp(pathf("keep"));
        ok(r == -EEXIST && streq(c, "keep"), "no_replace refuses an existing file (-EEXIST), content kept");
        r = write_file_atomic(AT_FDCWD, pathf("fresh"), "new", 3, &o);
        free(c);
        c = slurp(pathf("fresh"));
        ok(r == 0 && streq(c, "new"), "no_replace creates a new file");
        ok(count_hidden(tmpdir) == 0, "no temporary file left after errors");
}

static void test_enospc(void) {
        char *mnt = pathf("small");
        _cleanup_free_ char *c = NULL;
        size_t big = 256 * 1024;
        char *data;
        int r;

        if (mkdir(mnt, 0700) < 0 || mount("tmpfs", mnt, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0700") < 0) {
                skip("cannot mount a small tmpfs (not root or no privilege): ENOSPC untested");
                return;
        }
        char file[PATH_MAX];
        snprintf(file, sizeof(file), "%s/f", mnt);
        ok(write_file_atomic(AT_FDCWD, file, "old content", 11, NULL) == 0, "write on small tmpfs");

        data = calloc(1, big);
        r = write_file_atomic(AT_FDCWD, file, data, big, NULL);
        free(data);
        ok(r == -ENOSPC, "full filesystem → -ENOSPC (%d)", r);
        c = slurp(file);
        ok_eq_str(c, "old content", "old content intact after ENOSPC");
        ok(count_hidden(mnt) == 0, "no temporary file left after ENOSPC");

        if (umount2(mnt, MNT_DETACH) < 0)
                diag("umount %s: %m", mnt);
}

static void test_efbig(void) {
        struct rlimit old, rl;
        _cleanup_free_ char *c = NULL;
        char data[8192] = { 0 };
        int r;

        /* Without SIG_IGN, exceeding RLIMIT_FSIZE kills the process. */
        signal(SIGXFSZ, SIG_IGN);
        ok(write_file_atomic(AT_FDCWD, pathf("fsz"), "old", 3, NULL) == 0, "setup: file for RLIMIT_FSIZE");
        getrlimit(RLIMIT_FSIZE, &old);
        rl = old;
        rl.rlim_cur = 4096;
        if (setrlimit(RLIMIT_FSIZE, &rl) < 0) {
                skip("cannot lower RLIMIT_FSIZE");
                return;
        }
        r = write_file_atomic(AT_FDCWD, pathf("fsz"), data, sizeof(data), NULL);
        setrlimit(RLIMIT_FSIZE, &old);
        signal(SIGXFSZ, SIG_DFL);
        ok(r == -EFBIG, "RLIMIT_FSIZE → -EFBIG (%d)", r);
        c = slurp(pathf("fsz"));
        ok_eq_str(c, "old", "old content intact after EFBIG");
        ok(count_hidden(tmpdir) == 0, "no temporary file left after EFBIG");
}

static void test_stale(void) {
        ok(mkdir(pathf("stale"), 0700) == 0 && put(pathf("stale/.f.0123456789abcdef.tmp"), "x", 0600) == 0 &&
                   put(pathf("stale/.f.0123456789abcdeg.tmp"), "x", 0600) == 0 &&
                   put(pathf("stale/.g.0123456789abcdef.tmp"), "x", 0600) == 0 &&
                   put(pathf("stale/.f.0123456789abcdef.tmpx"), "x", 0600) == 0 && put(pathf("stale/f"), "x", 0600) == 0,
           "setup: leftover temporaries");
        ok(remove_stale_temp_files(AT_FDCWD, pathf("stale/f")) == 1, "exactly one stale temporary of f removed");
        ok(access(pathf("stale/.f.0123456789abcdef.tmp"), F_OK) < 0 && access(pathf("stale/f"), F_OK) == 0 &&
                   count_hidden(pathf("stale")) == 3,
           "the target and names that are not its temporaries are kept");
        ok(remove_stale_temp_files(AT_FDCWD, pathf("nodir/f")) == -ENOENT, "missing directory → -ENOENT");
}

static void test_read(void) {
        _cleanup_secret_ Secret *s = NULL;
        _cleanup_free_ char *err = NULL;
        Secret *t = NULL;
        int r;

        ok(put(pathf("r"), "0123456789", 0600) == 0, "setup: 10-byte file");
        r = read_file_secure(AT_FDCWD, pathf("r"), 10, READ_FILE_PRIVATE, &s, &err);
        ok(r == 0 && s && s->len == 10 && streq(s->data, "0123456789"), "read exactly max bytes");
        r = read_file_secure(AT_FDCWD, pathf("r"), 9, 0, &t, &err);
        ok(r == -E2BIG && !t, "one byte over max → -E2BIG, *ret untouched");
        ok(err && strstr(err, "too large"), "E2BIG message: %s", err ? err : "(null)");
        r = read_file_secure(AT_FDCWD, pathf("r"), 0, 0, &t, NULL);
        ok(r == -E2BIG, "max 0 refuses a non-empty file");

        ok(put(pathf("r0"), "", 0600) == 0, "setup: empty file");
        r = read_file_secure(AT_FDCWD, pathf("r0"), 0, 0, &t, NULL);
        ok(r == 0 && t && t->len == 0 && t->data[0] == 0, "empty file reads as an empty secret");
        t = secret_free(t);

        r = read_file_secure(AT_FDCWD, pathf("nope"), 10, 0, &t, NULL);
        ok(r == -ENOENT, "missing file → -ENOENT");
        r = read_file_secure(AT_FDCWD, tmpdir, 10, 0, &t, NULL);
        ok(r == -EISDIR, "directory → -EISDIR");
        ok(mkfifo(pathf("fifo"), 0600) == 0, "setup: fifo");
        r = read_file_secure(AT_FDCWD, pathf("fifo"), 10, 0, &t, NULL);
        ok(r == -EINVAL, "fifo refused without blocking (-EINVAL)");

        ok(put(pathf("wide"), "x", 0644) == 0, "setup: 0644 file");
        free(err);
        err = NULL;
        r = read_file_secure(AT_FDCWD, pathf("wide"), 10, READ_FILE_PRIVATE, &t, &err);
        ok(r == -EPERM && !t, "0644 refused with READ_FILE_PRIVATE (-EPERM)");
        ok(err && strstr(err, "0644"), "message names the mode: %s", err ? err : "(null)");
        ok(chmod(pathf("wide"), 0640) == 0 &&
                   read_file_secure(AT_FDCWD, pathf("wide"), 10, READ_FILE_PRIVATE, &t, NULL) == -EPERM,
           "0640 refused too");
        ok(chmod(pathf("wide"), 0604) == 0 &&
                   read_file_secure(AT_FDCWD, pathf("wide"), 10, READ_FILE_PRIVATE, &t, NULL) == -EPERM,
           "0604 refused too");
        r = read_file_secure(AT_FDCWD, pathf("wide"), 10, 0, &t, NULL);
        ok(r == 0 && t && streq(t->data, "x"), "without READ_FILE_PRIVATE a 0604 file is read");
        t = secret_free(t);
        ok(chmod(pathf("wide"), 0400) == 0 &&
                   read_file_secure(AT_FDCWD, pathf("wide"), 10, READ_FILE_PRIVATE, &t, NULL) == 0,
           "0400 accepted");
        t = secret_free(t);

        if (geteuid() == 0) {
                ok(put(pathf("theirs"), "x", 0600) == 0 && chown(pathf("theirs"), 65534, 65534) == 0,
                   "setup: file owned by nobody");
                free(err);
                err = NULL;
                r = read_file_secure(AT_FDCWD, pathf("theirs"), 10, READ_FILE_PRIVATE, &t, &err);
                ok(r == -EPERM && !t && err && strstr(err, "65534"), "root refuses a private file of another user");
                t = secret_free(t);
                int fd = open(pathf("theirs"), O_RDONLY | O_CLOEXEC);
                ok(fd >= 0 && check_private_file(fd, pathf("theirs"), 65534, NULL) == 0,
                   "... and accepts it from the service user it names");
                /* Anyone else must own it themselves: check an open fd as uid 1234. */
                ok(fd >= 0 && seteuid(1234) == 0, "setup: euid 1234 with the file open");
                free(err);
                err = NULL;
                r = check_private_file(fd, pathf("theirs"), geteuid(), &err);
                ok(seteuid(0) == 0, "setup: back to root");
                ok(r == -EPERM && err && strstr(err, "65534"), "wrong owner refused for a non-root reader: %s",
                   err ? err : "(null)");
                close(fd);
        } else
                skip("not root: cannot test a foreign owner");

        ok(symlink(pathf("r"), pathf("rlink")) == 0, "setup: symlink to a readable file");
        r = read_file_secure(AT_FDCWD, pathf("rlink"), 10, READ_FILE_NOFOLLOW, &t, NULL);
        ok(r == -ELOOP, "READ_FILE_NOFOLLOW refuses a symlink (-ELOOP)");
        r = read_file_secure(AT_FDCWD, pathf("rlink"), 10, 0, &t, NULL);
        ok(r == 0 && t && t->len == 10, "without it the symlink is followed");
        t = secret_free(t);

        _cleanup_free_ uint8_t *b = NULL;
        size_t blen = 99;
        r = read_file_bounded(AT_FDCWD, pathf("r"), 9, 0, &b, &blen, NULL);
        ok(r == -E2BIG && !b && blen == 99, "read_file_bounded over max → -E2BIG, outputs untouched");
        r = read_file_bounded(AT_FDCWD, pathf("r"), 10, 0, &b, &blen, NULL);
        ok(r == 0 && blen == 10 && memcmp(b, "0123456789", 10) == 0 && b[10] == 0, "read_file_bounded reads");

        int fd = open(pathf("r"), O_RDONLY | O_CLOEXEC);
        ok(check_private_file(fd, "r", geteuid(), NULL) == 0, "check_private_file accepts 0600 owned by us");
        close(fd);
}

int main(void) {
        const char *base = getenv("TMPDIR");
        if (!base || !*base || strlen(base) > 40)
                base = "/tmp";
        snprintf(tmpdir, sizeof(tmpdir), "%s/test-fileio-XXXXXX", base);
        if (!mkdtemp(tmpdir)) {
                printf("Bail out! mkdtemp: %m\n");
                return 1;
        }
        ok(secret_init() == 0, "libsodium initialises");

        test_basic();
        test_modes();
        test_order();
        test_owner();
        test_symlink();
        test_errors();
        test_enospc();
        test_efbig();
        test_stale();
        test_read();

        nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        return tap_done();
}

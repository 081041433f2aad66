/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "basic/chase.h"
#include "basic/util.h"
#include "tap.h"

/* Ids nobody on a test machine has: files are chowned to them as root. */
#define OTHER_UID ((uid_t) 4000123)
#define THIRD_UID ((uid_t) 4000456)

static char dir[] = "/tmp/test-chase-XXXXXX";

static const char *P(const char *name) {
        static char buf[8][512];
        static unsigned k;
        char *p = buf[k++ % ELEMENTSOF(buf)];

        snprintf(p, sizeof(buf[0]), "%s/%s", dir, name);
        return p;
}

static void make_dir(const char *name, mode_t mode) {
        if (mkdir(P(name), 0700) < 0 || chmod(P(name), mode) < 0) {
                perror(P(name));
                abort();
        }
}

static void make_file(const char *name, mode_t mode) {
        int fd = open(P(name), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

        if (fd < 0 || write(fd, "#!/bin/sh\n", 10) != 10 || fchmod(fd, mode) < 0) {
                perror(P(name));
                abort();
        }
        close(fd);
}

static void own(const char *name, uid_t uid) {
        if (lchown(P(name), uid, (gid_t) -1) < 0) {
                perror(P(name));
                abort();
        }
}

/* chase_target_directory() of @file with @trust: the result, and whether
 * the message holds @want (NULL: no message expected). */
static void target_is(const char *file, ChaseTrust trust, int want_r, const char *want, const char *name) {
        _cleanup_free_ char *err = NULL;
        int fd = -1, r;

        r = chase_target_directory(P(file), &trust, &fd, &err);
        ok(r == want_r && (want ? err && strstr(err, want) : !err) && (r < 0) == (fd < 0), "%s (%d: %s)", name, r,
           err ?: "no message");
        if (fd >= 0)
                close(fd);
}

static void program_is(const char *path, uid_t service, int want_r, const char *want, const char *name) {
        _cleanup_free_ char *err = NULL;
        int r;

        r = chase_program(path, service, &err);
        ok(r == want_r && (want ? err && strstr(err, want) : !err), "%s (%d: %s)", name, r, err ?: "no message");
}

static void test_plain(void) {
        ChaseTrust t = chase_trust((uid_t) -1);
        _cleanup_free_ char *err = NULL;
        struct stat st;
        int fd = -1, r;

        make_dir("a", 0755);
        make_dir("a/b", 0700);
        target_is("a/b/file", t, 0, NULL, "a private tree below /tmp is fine");
        target_is("a/file", t, 0, NULL, "one level up, too");

        r = chase(P("a/b"), &t, CHASE_NO_SYMLINKS, &fd, &st, &err);
        ok(r == 0 && fd >= 0 && S_ISDIR(st.st_mode), "chase() hands back the directory (%d)", r);
        if (fd >= 0) {
                struct stat st2;

                ok(fstat(fd, &st2) == 0 && st2.st_ino == st.st_ino, "the descriptor is what was judged");
                close(fd);
        }
        r = chase("relative/path", &t, 0, NULL, NULL, NULL);
        ok(r == -EINVAL, "a relative path is refused (%d)", r);

        target_is("a/missing/file", t, -ENOENT, "/a/missing does not exist", "a missing directory is named");
        make_file("a/plain", 0600);
        target_is("a/plain/file", t, -ENOTDIR, "/a/plain is not a directory", "a file on the way");
}

static void test_symlinks(void) {
        ChaseTrust t = chase_trust((uid_t) -1);
        _cleanup_free_ char *err = NULL;
        int r;

        make_dir("s", 0755);
        make_dir("s/real", 0700);
        ok(symlink("real", P("s/link")) == 0, "symlink s/link -> real");
        ok(symlink(P("s"), P("top")) == 0, "symlink top -> s (absolute)");

        target_is("s/link/file", t, -ELOOP, "/s/link is a symbolic link", "a symlinked parent directory is refused");
        target_is("top/real/file", t, -ELOOP, "/top is a symbolic link", "a symlink higher up is refused");
        target_is("s/real/file", t, 0, NULL, "the real path is fine");

        /* Without CHASE_NO_SYMLINKS links are followed, and judged. */
        r = chase(P("top/link"), &t, 0, NULL, NULL, &err);
        ok(r == 0, "links followed when allowed (%d %s)", r, err ?: "");

        ok(symlink("loop", P("s/loop")) == 0, "a symlink to itself");
        free(err);
        err = NULL;
        r = chase(P("s/loop"), &t, 0, NULL, NULL, &err);
        ok(r == -ELOOP && err && strstr(err, "more than"), "a loop ends (%d %s)", r, err ?: "");
}

static void test_modes(void) {
        ChaseTrust t = chase_trust((uid_t) -1);

        make_dir("g", 0775);
        make_dir("g/app", 0755);
        target_is("g/app/file", t, -EPERM, "/g is writable by group", "a group-writable ancestor is refused");
        target_is("g/file", t, -EPERM, "/g is writable by group", "a group-writable parent is refused");
        make_dir("o", 0757);
        make_dir("o/app", 0755);
        target_is("o/app/file", t, -EPERM, "/o is writable by others", "an other-writable ancestor is refused");

        /* Like /tmp: sticky and writable by all. A directory of ours
         * inside it is fine; a target directly inside it is not. */
        make_dir("sticky", 01777);
        make_dir("sticky/mine", 0700);
        target_is("sticky/mine/file", t, 0, NULL, "our own directory inside a sticky one is fine");
        target_is("sticky/file", t, -EPERM, "sticky directory; a target directly inside it is refused",
                  "a target directly inside a sticky directory is refused");
        make_dir("sticky-closed", 01755);
        target_is("sticky-closed/file", t, -EPERM, "sticky", "sticky is refused as the parent even when closed");
}

static void test_programs(void) {
        uid_t me = geteuid();

        program_is("/bin/sh", me, 0, NULL, "/bin/sh, through the /usr merge symlinks if any");
        make_dir("bin", 0755);
        make_file("bin/hook", 0755);
        program_is(P("bin/hook"), me, 0, NULL, "a hook of ours, 0755");
        make_file("bin/open", 0777);
        program_is(P("bin/open"), me, -EPERM, "/bin/open is writable by group and others", "a hook mode 0777");
        make_file("bin/group", 0775);
        program_is(P("bin/group"), me, -EPERM, "writable by group", "a hook mode 0775");
        program_is(P("bin"), me, -EACCES, "is a directory", "a directory is no program");
        program_is(P("bin/none"), me, -ENOENT, "/bin/none does not exist", "a missing program");
        program_is("hook", me, -EINVAL, "not an absolute path", "a bare name");

        /* A link is followed, and the directory it leads to judged. */
        make_dir("gw", 0775);
        make_file("gw/hook", 0755);
        chmod(P("gw"), 0755);
        ok(symlink(P("gw/hook"), P("bin/via-link")) == 0, "bin/via-link -> gw/hook");
        program_is(P("bin/via-link"), me, 0, NULL, "a link to a program in a closed directory");
        chmod(P("gw"), 0775);
        program_is(P("bin/via-link"), me, -EPERM, "/gw is writable by group",
                   "a link into a group-writable directory is refused, naming it");
        chmod(P("gw"), 0755);
}

/* As root: files of other users. */
static void test_owners(void) {
        ChaseTrust root_only = { .service = 0, .owner = (uid_t) -1 };
        ChaseTrust owned = { .service = 0, .owner = OTHER_UID };
        ChaseTrust service_owned = { .service = THIRD_UID, .owner = OTHER_UID };

        if (geteuid() != 0) {
                ok(1, "# SKIP ownership cases need root");
                return;
        }

        /* home (OTHER) / .aws (OTHER) / file: the man page's example. */
        make_dir("home", 0755);
        make_dir("home/app", 0755);
        make_dir("home/app/.aws", 0700);
        own("home/app", OTHER_UID);
        own("home/app/.aws", OTHER_UID);
        target_is("home/app/.aws/credentials", root_only, -EPERM, "/home/app is owned by uid 4000123, not by root",
                  "another user's directory is refused without an owner");
        target_is("home/app/.aws/credentials", owned, 0, NULL, "the owner's home is fine with owner: that user");

        /* The application's user replaces .aws by a link to a root-only
         * directory: the attack the whole module is about. */
        make_dir("victim", 0700);
        ok(rename(P("home/app/.aws"), P("home/app/aws-old")) == 0, "the user moves .aws away");
        ok(symlink(P("victim"), P("home/app/.aws")) == 0 && lchown(P("home/app/.aws"), OTHER_UID, -1) == 0,
           "and puts a symlink to a root-only directory in its place");
        target_is("home/app/.aws/credentials", owned, -ELOOP, "/home/app/.aws is a symbolic link",
                  "the symlinked ~/.aws is refused");

        /* Below the owner's directory: the owner or root, nobody else. */
        make_dir("home/app/rootdir", 0755);
        target_is("home/app/rootdir/f", owned, 0, NULL, "root's directory below the owner's is fine");
        make_dir("home/app/third", 0755);
        own("home/app/third", THIRD_UID);
        target_is("home/app/third/f", owned, -EPERM, "below", "a third user's directory below the owner's");
        target_is("home/app/third/f", service_owned, -EPERM, "below",
                  "even the service user's, below the owner's");

        /* The service user is trusted above the owner's part. */
        make_dir("svc", 0755);
        own("svc", THIRD_UID);
        make_dir("svc/app", 0700);
        own("svc/app", OTHER_UID);
        target_is("svc/app/f", service_owned, 0, NULL, "service user's directory, then the owner's");
        target_is("svc/app/f", owned, -EPERM, "/svc is owned by uid 4000456", "a stranger's directory is refused");

        /* In a sticky directory only root or the service user may own the
         * next component: anyone could have made it. */
        make_dir("tmp", 01777);
        make_dir("tmp/planted", 0755);
        own("tmp/planted", OTHER_UID);
        target_is("tmp/planted/f", owned, -EPERM, "inside the sticky directory",
                  "a directory in a sticky one, owned by the target's owner, is refused");
        make_dir("tmp/svc", 0755);
        own("tmp/svc", THIRD_UID);
        target_is("tmp/svc/f", service_owned, 0, NULL, "the service user's directory in a sticky one is fine");

        /* Programs: root or the service user only. */
        make_dir("pbin", 0755);
        make_file("pbin/theirs", 0755);
        own("pbin/theirs", OTHER_UID);
        program_is(P("pbin/theirs"), 0, -EPERM, "/pbin/theirs is owned by uid 4000123, not by root",
                   "a hook owned by another user is refused");
        program_is(P("pbin/theirs"), OTHER_UID, 0, NULL, "... unless that user is the service user");
        make_dir("pbin/sub", 0755);
        own("pbin/sub", OTHER_UID);
        make_file("pbin/sub/hook", 0755);
        program_is(P("pbin/sub/hook"), 0, -EPERM, "/pbin/sub is owned by uid 4000123",
                   "a root-owned hook in another user's directory is refused");
        ok(symlink(P("pbin/theirs"), P("pbin/link")) == 0, "root's link to another user's program");
        program_is(P("pbin/link"), 0, -EPERM, "/pbin/theirs is owned by uid 4000123",
                   "the program a link leads to is judged");
}

/* Make openat2() fail with ENOSYS in this process, as on an old kernel. */
static int deny_openat2(void) {
        struct sock_filter code[] = {
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat2, 0, 1),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = { .len = ELEMENTSOF(code), .filter = code };

        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
                return -errno;
        return 0;
}

/* Without openat2() the walk opens each name with O_NOFOLLOW: the same
 * answers. Run in a child, whose filter goes away with it. */
static void test_without_openat2(void) {
        ChaseTrust t = chase_trust((uid_t) -1);
        int status = 0;
        pid_t pid;

        pid = fork();
        if (pid == 0) {
                int fails = 0;

                if (deny_openat2() < 0)
                        _exit(99);
                fails += syscall(SYS_openat2, AT_FDCWD, "/", NULL, 0) >= 0 || errno != ENOSYS;
                fails += chase_target_directory(P("s/real/file"), &t, NULL, NULL) != 0;
                fails += chase_target_directory(P("s/link/file"), &t, NULL, NULL) != -ELOOP;
                fails += chase_target_directory(P("top/real/file"), &t, NULL, NULL) != -ELOOP;
                fails += chase_target_directory(P("g/app/file"), &t, NULL, NULL) != -EPERM;
                fails += chase_program(P("bin/via-link"), geteuid(), NULL) != 0;
                fails += chase_program("/bin/sh", geteuid(), NULL) != 0;
                _exit(fails);
        }
        ok(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status), "child ran");
        if (WIFEXITED(status) && WEXITSTATUS(status) == 99)
                ok(1, "# SKIP cannot install a seccomp filter");
        else
                ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "without openat2(): same answers (%d wrong)",
                   WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

static void cleanup(void) {
        char cmd[600];

        snprintf(cmd, sizeof cmd, "rm -rf -- '%s'", dir);
        if (system(cmd) != 0)
                diag("could not remove %s", dir);
}

int main(void) {
        if (!mkdtemp(dir)) {
                perror("mkdtemp");
                return 1;
        }
        test_plain();
        test_symlinks();
        test_modes();
        test_programs();
        test_owners();
        test_without_openat2();
        cleanup();
        return tap_done();
}

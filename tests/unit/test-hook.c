/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "basic/util.h"
#include "rotation/hook.h"
#include "tap.h"

/* Output lines, in order, with their stream. */
typedef struct Capture {
        char *lines[40000];
        bool is_stderr[40000];
        size_t n;
} Capture;

static Capture cap;

static void capture_reset(void) {
        for (size_t i = 0; i < cap.n; i++)
                free(cap.lines[i]);
        cap.n = 0;
}

static void capture_line(const char *line, bool is_stderr, void *userdata) {
        Capture *c = userdata;

        if (c->n < ELEMENTSOF(c->lines)) {
                c->lines[c->n] = strdup(line);
                c->is_stderr[c->n] = is_stderr;
                c->n++;
        }
}

static HookResult run(char *const argv[], char *const env[], usec_t timeout, int *ret_r) {
        HookResult res;
        int r;

        capture_reset();
        r = hook_run_sync(argv, env, timeout, capture_line, &cap, &res);
        if (ret_r)
                *ret_r = r;
        return res;
}

static bool sigchld_is_blocked(void) {
        sigset_t cur;

        sigprocmask(SIG_SETMASK, NULL, &cur);
        return sigismember(&cur, SIGCHLD) == 1;
}

/* No child of ours is a zombie (exited but not reaped). */
static bool no_zombies(void) {
        siginfo_t si = {};

        if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
                return errno == ECHILD;
        return si.si_pid == 0;
}

static void test_needs_sigchld_blocked(void) {
        char *argv[] = { (char *) "/bin/true", NULL };
        sd_event *e = NULL;
        int r;

        ok(!sigchld_is_blocked(), "SIGCHLD not blocked at start");
        ok(sd_event_new(&e) >= 0, "event loop");
        r = hook_run(e, argv, NULL, USEC_PER_SEC, NULL, NULL, NULL, NULL);
        ok(r == -EBUSY, "hook_run without SIGCHLD blocked: -EBUSY (%d)", r);
        sd_event_unref(e);
}

static void test_exit_status(void) {
        char *t[] = { (char *) "/bin/true", NULL };
        char *three[] = { (char *) "/bin/sh", (char *) "-c", (char *) "exit 3", NULL };
        char *sig[] = { (char *) "/bin/sh", (char *) "-c", (char *) "kill -USR1 $$", NULL };
        HookResult res;
        int r;

        res = run(t, NULL, 10 * USEC_PER_SEC, &r);
        ok(r == 0 && res.exit_status == 0 && res.signal == 0 && !res.timed_out && res.error == 0 &&
                   hook_result_ok(&res),
           "true: exit 0 (r=%d exit=%d sig=%d)", r, res.exit_status, res.signal);
        ok(!sigchld_is_blocked(), "hook_run_sync restored the signal mask");

        res = run(three, NULL, 10 * USEC_PER_SEC, &r);
        ok(r == 0 && res.exit_status == 3 && res.signal == 0 && !res.timed_out, "exit 3 (exit=%d)",
           res.exit_status);

        /* Our SIGUSR1 is ignored here: the child must still get the default. */
        signal(SIGUSR1, SIG_IGN);
        res = run(sig, NULL, 10 * USEC_PER_SEC, &r);
        signal(SIGUSR1, SIG_DFL);
        ok(r == 0 && res.exit_status == -1 && res.signal == SIGUSR1 && !res.timed_out,
           "killed by SIGUSR1, with default dispositions restored (exit=%d sig=%d)", res.exit_status, res.signal);
}

static void test_timeout(void) {
        char *sleeper[] = { (char *) "/bin/sleep", (char *) "30", NULL };
        char *stubborn[] = { (char *) "/bin/sh", (char *) "-c", (char *) "trap '' TERM; sleep 30; exit 0", NULL };
        char *leaver[] = { (char *) "/bin/sh", (char *) "-c", (char *) "sleep 30 & echo started", NULL };
        HookResult res;
        int r;

        res = run(sleeper, NULL, 300 * USEC_PER_MSEC, &r);
        ok(r == 0 && res.timed_out && res.exit_status == -1 && res.signal == SIGTERM,
           "sleep 30 with a 300 ms timeout: timed out, SIGTERM (exit=%d sig=%d)", res.exit_status, res.signal);

        /* Ignores SIGTERM (and so does its sleep, which inherits that):
         * SIGKILL follows HOOK_KILL_DELAY later. */
        res = run(stubborn, NULL, 300 * USEC_PER_MSEC, &r);
        ok(r == 0 && res.timed_out && res.exit_status == -1 && res.signal == SIGKILL,
           "SIGTERM ignored: SIGKILL after the delay (sig=%d)", res.signal);

        /* The command exits at once, but leaves a process holding its
         * output pipe: not finished until that one is gone too. */
        res = run(leaver, NULL, 300 * USEC_PER_MSEC, &r);
        ok(r == 0 && res.timed_out && res.exit_status == 0 && !hook_result_ok(&res),
           "background process holding the pipe: timed out, not ok although it exited 0");
        ok(cap.n == 1 && streq(cap.lines[0], "started"), "its output was captured");
        ok(no_zombies(), "no zombie left by the synchronous runs");
}

static void test_output(void) {
        char *argv[] = { (char *) "/bin/sh", (char *) "-c",
                         (char *) "echo out1; echo err1 >&2; echo out2; printf 'a\\033[31mb\\r\\n'; printf tail", NULL };
        char *longline[] = { (char *) "/bin/sh", (char *) "-c", (char *) "head -c 10000 /dev/zero | tr '\\0' a; echo; echo next",
                             NULL };
        char *flood[] = { (char *) "/bin/sh", (char *) "-c", (char *) "yes | head -c 200000", NULL };
        const char *want_out[] = { "out1", "out2", "a?[31mb", "tail" };
        size_t n_out = 0, n_err = 0;
        bool good = true;
        HookResult res;
        int r;

        res = run(argv, NULL, 10 * USEC_PER_SEC, &r);
        ok(r == 0 && res.exit_status == 0, "output hook ran");
        for (size_t i = 0; i < cap.n; i++) {
                if (cap.is_stderr[i]) {
                        good = good && n_err == 0 && streq(cap.lines[i], "err1");
                        n_err++;
                } else {
                        good = good && n_out < ELEMENTSOF(want_out) && streq(cap.lines[i], want_out[n_out]);
                        n_out++;
                }
        }
        ok(good && n_out == 4 && n_err == 1, "stdout and stderr lines captured, sanitized, last line without newline");

        res = run(longline, NULL, 10 * USEC_PER_SEC, &r);
        ok(r == 0 && cap.n == 2 && strlen(cap.lines[0]) == HOOK_LINE_MAX && streq(cap.lines[1], "next") &&
                   res.output_dropped == 10000 - HOOK_LINE_MAX,
           "a 10000-byte line is cut at %u bytes (lines=%zu dropped=%zu)", HOOK_LINE_MAX, cap.n,
           res.output_dropped);

        res = run(flood, NULL, 10 * USEC_PER_SEC, &r);
        ok(r == 0 && cap.n == HOOK_OUTPUT_MAX / 2 && res.output_dropped == 200000 - HOOK_OUTPUT_MAX,
           "output bounded to %u bytes (lines=%zu dropped=%zu)", HOOK_OUTPUT_MAX, cap.n, res.output_dropped);
}

static void test_environment(void) {
        char *argv[] = { (char *) "/usr/bin/env", NULL };
        char *env[] = { (char *) "FOO=bar", (char *) "KEYROTD_USER=backup-bot", NULL };
        char *env_path[] = { (char *) "PATH=/usr/bin:/bin", (char *) "A=1", NULL };
        char *bad_env[] = { (char *) "NOEQUALS", NULL };
        HookResult res;
        int r;

        setenv("AWS_SECRET_ACCESS_KEY", "must-not-leak", 1);
        res = run(argv, env, 10 * USEC_PER_SEC, &r);
        ok(r == 0 && res.exit_status == 0, "env ran");
        ok(cap.n == 3 && streq(cap.lines[0], "FOO=bar") && streq(cap.lines[1], "KEYROTD_USER=backup-bot") &&
                   streq(cap.lines[2], "PATH=" HOOK_DEFAULT_PATH),
           "the child sees exactly the given environment plus PATH (%zu lines)", cap.n);
        for (size_t i = 0; i < cap.n; i++)
                if (strstr(cap.lines[i], "must-not-leak"))
                        ok(0, "our environment leaked: %s", cap.lines[i]);

        res = run(argv, env_path, 10 * USEC_PER_SEC, &r);
        ok(r == 0 && cap.n == 2 && streq(cap.lines[0], "PATH=/usr/bin:/bin") && streq(cap.lines[1], "A=1"),
           "a given PATH is kept, none added");
        unsetenv("AWS_SECRET_ACCESS_KEY");

        res = run(argv, bad_env, 10 * USEC_PER_SEC, &r);
        ok(r == -EINVAL && res.error == -EINVAL, "an environment entry without '=' is refused");
}

static void test_spawn_errors(void) {
        char *bare[] = { (char *) "sh", (char *) "-c", (char *) "true", NULL };
        char *missing_abs[] = { (char *) "/nonexistent/program", NULL };
        char *relative[] = { (char *) "./program", NULL };
        char *not_exec[] = { (char *) "/etc/passwd", NULL };
        char *with_path[] = { (char *) "PATH=/usr/bin:/bin", NULL };
        HookResult res;
        int r;

        res = run(bare, NULL, USEC_PER_SEC, &r);
        ok(r == -EINVAL && res.error == -EINVAL && res.exit_status == -1, "a bare name is refused (%d)", r);
        res = run(bare, with_path, USEC_PER_SEC, &r);
        ok(r == -EINVAL, "whatever the hook's PATH says (%d)", r);
        res = run(missing_abs, NULL, USEC_PER_SEC, &r);
        ok(r == -ENOENT && res.error == -ENOENT, "missing absolute path: -ENOENT (%d)", r);
        res = run(relative, NULL, USEC_PER_SEC, &r);
        ok(r == -EINVAL, "relative path refused (%d)", r);
        res = run(not_exec, NULL, USEC_PER_SEC, &r);
        ok(r == -EACCES && res.error == -EACCES, "not executable: -EACCES (%d)", r);
}

/* The program is judged again at every start: what the inventory
 * accepted may have changed since. */
static void test_untrusted_program(void) {
        char dir[] = "/tmp/test-hook-XXXXXX", prog[64], sub[64], cmd[128];
        char *argv[] = { prog, NULL };
        HookResult res;
        int fd, r;

        if (!mkdtemp(dir)) {
                ok(0, "mkdtemp");
                return;
        }
        snprintf(prog, sizeof prog, "%s/hook", dir);
        fd = open(prog, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
        ok(fd >= 0 && write(fd, "#!/bin/sh\nexit 0\n", 18) == 18 && close(fd) == 0, "a hook, 0755");
        res = run(argv, NULL, 10 * USEC_PER_SEC, &r);
        ok(r == 0 && hook_result_ok(&res), "runs (%d)", r);

        ok(chmod(prog, 0777) == 0, "now mode 0777");
        res = run(argv, NULL, 10 * USEC_PER_SEC, &r);
        ok(r == -EPERM && res.error == -EPERM && res.exit_status == -1, "refused at start (%d)", r);
        ok(chmod(prog, 0755) == 0 && chmod(dir, 0775) == 0, "back to 0755, its directory g+w");
        res = run(argv, NULL, 10 * USEC_PER_SEC, &r);
        ok(r == -EPERM, "refused for its directory (%d)", r);
        ok(chmod(dir, 0700) == 0, "directory closed again");

        snprintf(sub, sizeof sub, "%s/link", dir);
        ok(symlink(prog, sub) == 0, "a link to it");
        argv[0] = sub;
        res = run(argv, NULL, 10 * USEC_PER_SEC, &r);
        ok(r == 0 && hook_result_ok(&res), "a link to a trusted program runs (%d)", r);
        argv[0] = prog;

        if (geteuid() == 0) {
                ok(chown(prog, 65534, 65534) == 0, "the hook given to uid 65534");
                res = run(argv, NULL, 10 * USEC_PER_SEC, &r);
                ok(r == -EPERM, "a hook another user owns is refused (%d)", r);
        } else
                ok(1, "# SKIP chown needs root");

        snprintf(cmd, sizeof cmd, "rm -rf -- '%s'", dir);
        if (system(cmd) != 0)
                diag("could not remove %s", dir);
}

static void test_no_fd_leak(void) {
        char *argv[] = { (char *) "/bin/ls", (char *) "-l", (char *) "/proc/self/fd", NULL };
        char *env[] = { (char *) "LC_ALL=C", NULL };
        unsigned seen = 0, others = 0;
        bool stdin_null = false;
        HookResult res;
        int leak, r;

        /* Not close-on-exec, on purpose: the hook must still not get it. */
        leak = open("/dev/null", O_RDONLY);
        ok(leak >= 3, "opened an inheritable fd %d", leak);
        res = run(argv, env, 10 * USEC_PER_SEC, &r);
        ok(r == 0 && res.exit_status == 0, "ls ran");
        for (size_t i = 0; i < cap.n; i++) {
                const char *arrow = strstr(cap.lines[i], " -> ");
                const char *p;
                long fd;

                if (!arrow)
                        continue;
                for (p = arrow; p > cap.lines[i] && p[-1] != ' '; p--)
                        ;
                fd = strtol(p, NULL, 10);
                if (fd >= 0 && fd <= 2)
                        seen |= 1U << fd;
                else if (fd == 3 && startswith(arrow + 4, "/proc/"))
                        seen |= 1U << 3;
                else {
                        others++;
                        diag("unexpected fd in the child: %s", cap.lines[i]);
                }
                if (fd == 0 && streq(arrow + 4, "/dev/null"))
                        stdin_null = true;
        }
        ok(seen == 0xf && others == 0, "the child has only fds 0, 1, 2 and ls's own directory fd");
        ok(stdin_null, "stdin is /dev/null");
        close(leak);
}

typedef struct Many {
        HookResult results[32];
        char first_line[32][16];
        bool finished[32];
        unsigned n_done;
} Many;

static Many many;

static void many_line(const char *line, bool is_stderr, void *userdata) {
        size_t i = (size_t) (uintptr_t) userdata;

        if (!is_stderr && !many.first_line[i][0])
                snprintf(many.first_line[i], sizeof(many.first_line[i]), "%s", line);
}

static void many_done(const HookResult *res, void *userdata) {
        size_t i = (size_t) (uintptr_t) userdata;

        many.results[i] = *res;
        many.finished[i] = true;
        many.n_done++;
}

static void never_called(const HookResult *res, void *userdata) {
        bool *called = userdata;

        *called = true;
}

static void never_line(const char *line, bool is_stderr, void *userdata) {
        bool *called = userdata;

        *called = true;
}

static int stop_loop(sd_event_source *s, uint64_t usec, void *userdata) {
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

static void test_many_on_one_loop(void) {
        char *argv[] = { (char *) "/bin/sh", (char *) "-c", (char *) "sleep 0.$((N % 3)); echo line-$N; exit $N", NULL };
        char *sleeper[] = { (char *) "/bin/sleep", (char *) "30", NULL };
        char envs[32][16];
        bool good = true, called = false;
        sd_event *e = NULL;
        Hook *h = NULL;
        sigset_t mask;
        int r;

        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        ok(sd_event_new(&e) >= 0, "event loop for many hooks");

        for (size_t i = 0; i < ELEMENTSOF(envs); i++) {
                char *env[] = { envs[i], NULL };

                snprintf(envs[i], sizeof(envs[i]), "N=%zu", i);
                r = hook_run(e, argv, env, 20 * USEC_PER_SEC, many_line, many_done, (void *) (uintptr_t) i, NULL);
                if (r < 0)
                        good = false;
        }
        ok(good, "32 hooks started");
        while (many.n_done < ELEMENTSOF(envs) && sd_event_run(e, UINT64_MAX) >= 0)
                ;
        for (size_t i = 0; i < ELEMENTSOF(envs); i++) {
                char want[16];

                snprintf(want, sizeof(want), "line-%zu", i);
                if (!many.finished[i] || many.results[i].exit_status != (int) i || !streq(many.first_line[i], want)) {
                        diag("hook %zu: finished=%d exit=%d line='%s'", i, many.finished[i],
                             many.results[i].exit_status, many.first_line[i]);
                        good = false;
                }
        }
        ok(good && many.n_done == ELEMENTSOF(envs), "each hook finished once with its own status and output");
        ok(no_zombies(), "every hook process was reaped");

        /* A cancelled hook never calls back, and cleans up after itself
         * (valgrind would see the Hook and the loop it holds otherwise). */
        r = hook_run(e, sleeper, NULL, 20 * USEC_PER_SEC, never_line, never_called, &called, &h);
        ok(r == 0 && h, "sleeper started");
        hook_cancel(h);
        hook_cancel(NULL);
        ok(sd_event_add_time_relative(e, NULL, CLOCK_MONOTONIC, 500 * USEC_PER_MSEC, 0, stop_loop, NULL) >= 0,
           "stop timer");
        ok(sd_event_loop(e) >= 0 && !called, "cancelled hook: no callback");
        ok(no_zombies(), "the cancelled hook was reaped");
        sd_event_unref(e);
        sigprocmask(SIG_UNBLOCK, &mask, NULL);
}

int main(void) {
        test_needs_sigchld_blocked();
        test_exit_status();
        test_timeout();
        test_output();
        test_environment();
        test_spawn_errors();
        test_untrusted_program();
        test_no_fd_leak();
        test_many_on_one_loop();
        capture_reset();
        return tap_done();
}

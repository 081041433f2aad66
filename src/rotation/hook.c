/* SPDX-License-Identifier: MIT */
/*
 * hook.c — run a hook command asynchronously on an sd-event loop (see
 * hook.h). One Hook is one process: two pipe sources for its output, a
 * child source for its exit, one timer for the timeout and the kill
 * escalation. It finishes when all three of (exit, stdout EOF, stderr
 * EOF) have happened, and frees itself.
 */
#include "rotation/hook.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "basic/chase.h"
#include "basic/log.h"

#define HOOK_TIMER_ACCURACY (10 * USEC_PER_MSEC)
#define _fallthrough_ __attribute__((fallthrough))

typedef struct HookStream {
        sd_event_source *source; /* owns the pipe's read end */
        char line[HOOK_LINE_MAX + 1];
        size_t len;
        bool discarding; /* inside a line that was cut at HOOK_LINE_MAX */
        bool eof;
} HookStream;

typedef enum HookKillPhase {
        HOOK_RUNNING,    /* nothing sent yet; the timer (if any) is the timeout */
        HOOK_TERM_SENT,  /* SIGTERM sent; the timer is the SIGKILL deadline */
        HOOK_KILL_SENT,  /* SIGKILL sent; the timer is when we stop waiting for the pipes */
        HOOK_GAVE_UP,    /* pipes closed; only waiting for the exit */
} HookKillPhase;

struct Hook {
        sd_event *event;
        pid_t pid; /* also the process group id */
        sd_event_source *child;
        sd_event_source *timer;
        HookStream streams[2]; /* stdout, stderr */
        size_t output_used;    /* bytes counted against HOOK_OUTPUT_MAX */
        bool exited;
        HookKillPhase phase;
        HookResult result;
        hook_output_t out;
        hook_callback_t done;
        void *userdata;
};

static Hook *hook_free(Hook *h) {
        if (!h)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(h->streams); i++)
                sd_event_source_disable_unref(h->streams[i].source);
        sd_event_source_disable_unref(h->timer);
        sd_event_source_disable_unref(h->child);
        sd_event_unref(h->event);
        free(h);
        return NULL;
}

static void hook_finish(Hook *h) {
        HookResult res = h->result;
        hook_callback_t done = h->done;
        void *userdata = h->userdata;

        /* Free first: the callback may well start the next hook, or tear
         * down whatever owns this one. */
        hook_free(h);
        if (done)
                done(&res, userdata);
}

static void hook_maybe_finish(Hook *h) {
        if (h->exited && h->streams[0].eof && h->streams[1].eof)
                hook_finish(h);
}

/* Send @sig to the whole process group: whatever the hook started goes too. */
static void hook_signal(Hook *h, int sig) {
        (void) kill(-h->pid, sig);
}

static void hook_emit(Hook *h, HookStream *s) {
        size_t n = s->len;

        s->len = 0;
        if (n > 0 && s->line[n - 1] == '\r')
                n--;
        /* The log is read on terminals and shipped to other systems: no
         * escape sequences, NULs or line breaks from a hook reach it. */
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) s->line[i];

                if ((c < 0x20 && c != '\t') || c == 0x7f)
                        s->line[i] = '?';
        }
        s->line[n] = 0;
        if (h->out)
                h->out(s->line, s == &h->streams[1], h->userdata);
}

static void hook_feed(Hook *h, HookStream *s, const char *buf, size_t n) {
        for (size_t i = 0; i < n && !s->eof; i++) {
                char c = buf[i];

                if (h->output_used >= HOOK_OUTPUT_MAX) {
                        /* Over budget: pass on what is buffered, drop the rest. */
                        for (size_t k = 0; k < ELEMENTSOF(h->streams); k++)
                                if (h->streams[k].len > 0 && !h->streams[k].discarding)
                                        hook_emit(h, &h->streams[k]);
                        h->result.output_dropped += n - i;
                        return;
                }
                h->output_used++;

                if (c == '\n') {
                        if (s->discarding)
                                s->discarding = false;
                        else
                                hook_emit(h, s);
                } else if (s->discarding)
                        h->result.output_dropped++;
                else if (s->len == HOOK_LINE_MAX) {
                        hook_emit(h, s);
                        s->discarding = true;
                        h->result.output_dropped++;
                } else
                        s->line[s->len++] = c;
        }
}

/* The stream is done: pass on a last unterminated line, close the pipe. */
static void hook_stream_eof(Hook *h, HookStream *s) {
        if (s->eof)
                return;
        if (s->len > 0 && !s->discarding && h->output_used <= HOOK_OUTPUT_MAX)
                hook_emit(h, s);
        s->len = 0;
        s->source = sd_event_source_disable_unref(s->source);
        s->eof = true;
}

static int on_output(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        Hook *h = userdata;
        HookStream *s = source == h->streams[1].source ? &h->streams[1] : &h->streams[0];
        char buf[4096];

        /* A few reads per wakeup, then back to the loop: a hook that
         * writes without pause must not starve everything else. */
        for (unsigned k = 0; k < 16; k++) {
                ssize_t n = read(fd, buf, sizeof(buf));

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return 0;
                if (n <= 0) {
                        /* EOF, or an error that will not go away. */
                        hook_stream_eof(h, s);
                        hook_maybe_finish(h);
                        return 0;
                }
                hook_feed(h, s, buf, (size_t) n);
                if (s->eof) /* given up from within the output callback */
                        return 0;
        }
        return 0;
}

static int on_exit_child(sd_event_source *source, const siginfo_t *si, void *userdata) {
        Hook *h = userdata;

        if (si->si_code == CLD_EXITED) {
                h->result.exit_status = si->si_status;
                h->result.signal = 0;
        } else if (si->si_code == CLD_KILLED || si->si_code == CLD_DUMPED) {
                h->result.exit_status = -1;
                h->result.signal = si->si_status;
        } else
                return 0; /* stopped or continued: not our business */

        /* sd-event reaps the process when this returns. */
        h->exited = true;
        hook_maybe_finish(h);
        return 0;
}

static int hook_arm_timer(Hook *h, usec_t relative);

static void hook_give_up_pipes(Hook *h) {
        for (size_t i = 0; i < ELEMENTSOF(h->streams); i++)
                hook_stream_eof(h, &h->streams[i]);
}

static int on_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        Hook *h = userdata;

        /*
         * The timeout expired (or, with the process gone, something it
         * left behind still holds the output pipes): ask the process
         * group to stop, insist after HOOK_KILL_DELAY, and after another
         * HOOK_KILL_DELAY stop waiting for the pipes. Signals are only
         * sent while the group can still exist: before the exit, or while
         * a member keeps a pipe open (then the group id is still taken).
         */
        switch (h->phase) {
        case HOOK_RUNNING:
                h->result.timed_out = true;
                hook_signal(h, SIGTERM);
                h->phase = HOOK_TERM_SENT;
                if (hook_arm_timer(h, HOOK_KILL_DELAY) >= 0)
                        break;
                _fallthrough_;
        case HOOK_TERM_SENT:
                hook_signal(h, SIGKILL);
                h->phase = HOOK_KILL_SENT;
                if (hook_arm_timer(h, HOOK_KILL_DELAY) >= 0)
                        break;
                _fallthrough_;
        case HOOK_KILL_SENT:
        case HOOK_GAVE_UP:
                h->phase = HOOK_GAVE_UP;
                hook_give_up_pipes(h);
                hook_maybe_finish(h);
                break;
        }
        return 0;
}

static int hook_arm_timer(Hook *h, usec_t relative) {
        usec_t now;
        int r;

        r = sd_event_now(h->event, CLOCK_MONOTONIC, &now);
        if (r < 0)
                return r;
        if (relative > USEC_INFINITY - 1 - now)
                relative = USEC_INFINITY - 1 - now;
        if (!h->timer)
                return sd_event_add_time(h->event, &h->timer, CLOCK_MONOTONIC, now + relative,
                                         HOOK_TIMER_ACCURACY, on_timer, h);
        r = sd_event_source_set_time(h->timer, now + relative);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(h->timer, SD_EVENT_ONESHOT);
}

void hook_cancel(Hook *h) {
        if (!h)
                return;
        h->out = NULL;
        h->done = NULL;
        if (h->phase == HOOK_GAVE_UP)
                return;
        /* No grace period: whoever cancels wants it gone. The Hook stays
         * until the process is reaped (never reap synchronously here: a
         * process in uninterruptible sleep would block the loop). */
        hook_signal(h, SIGKILL);
        h->phase = HOOK_KILL_SENT;
        if (hook_arm_timer(h, HOOK_KILL_DELAY) < 0) {
                h->phase = HOOK_GAVE_UP;
                hook_give_up_pipes(h);
        }
}

/* ------------------------------------------------------------------------
 * Starting the process
 */

static const char *env_get_path(char *const env[]) {
        for (size_t i = 0; env && env[i]; i++)
                if (startswith(env[i], "PATH="))
                        return env[i] + strlen("PATH=");
        return NULL;
}

/*
 * Judge the program just before it starts, as the inventory did when it
 * was loaded (the file may have changed since): an absolute path, a
 * regular executable file that nobody but root and keyrotd's user can
 * change, nor any directory above it (basic/chase.h). Checked here, in
 * the parent, so that a missing program is a clear -ENOENT instead of an
 * exit status 127. The reason for a refusal is logged: the caller only
 * sees the errno.
 */
static int check_program(const char *path) {
        _cleanup_free_ char *why = NULL;
        int r;

        /* A bare name would be whatever a PATH lookup finds; a relative
         * path, relative to "/", where the hook runs: neither is taken. */
        if (!path || path[0] != '/')
                return -EINVAL;
        r = chase_program(path, geteuid(), &why);
        if (r == -EPERM || r == -ELOOP)
                log_error("Refusing to run %s: %s", path, why ?: "not trusted");
        if (r < 0)
                return r;
        /* posix_spawn() reports exec errors too, but not every
         * implementation does (some fork and exit 127): check. */
        if (access(path, X_OK) < 0)
                return -EACCES;
        return 0;
}

/* Keep our pipe ends off 0, 1 and 2 (a daemon started with them closed
 * gets them from pipe2()), so the child's dup2()s cannot clobber each other. */
static int fd_move_above_stdio(int fd) {
        int nfd;

        if (fd > 2)
                return fd;
        nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (nfd < 0)
                nfd = -errno;
        close(fd);
        return nfd;
}

static int make_pipe(int ret[2]) {
        int p[2];

        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        p[0] = fd_move_above_stdio(p[0]);
        p[1] = fd_move_above_stdio(p[1]);
        if (p[0] < 0 || p[1] < 0) {
                int r = p[0] < 0 ? p[0] : p[1];

                if (p[0] >= 0)
                        close(p[0]);
                if (p[1] >= 0)
                        close(p[1]);
                return r;
        }
        /* Only our end is non-blocking: the hook's writes must block
         * normally, or it would see EAGAIN on a full pipe. */
        if (fcntl(p[0], F_SETFL, O_NONBLOCK) < 0) {
                int r = -errno;

                close(p[0]);
                close(p[1]);
                return r;
        }
        ret[0] = p[0];
        ret[1] = p[1];
        return 0;
}

static void close_pair(int p[2]) {
        for (int i = 0; i < 2; i++)
                if (p[i] >= 0) {
                        close(p[i]);
                        p[i] = -1;
                }
}

static int spawn(const char *path, char *const argv[], char *const envp[], int out_fd, int err_fd, pid_t *ret_pid) {
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        sigset_t mask, all;
        int r;

        r = posix_spawnattr_init(&attr);
        if (r != 0)
                return -r;
        r = posix_spawn_file_actions_init(&fa);
        if (r != 0) {
                posix_spawnattr_destroy(&attr);
                return -r;
        }

        /*
         * The child starts clean: its own process group (so a kill reaches
         * everything it starts), an empty signal mask and default
         * dispositions (we block SIGCHLD, SIGTERM and more, and a hook
         * inheriting that would misbehave), stdin from /dev/null, stdout
         * and stderr into our pipes, working directory "/", and no other
         * descriptor: whatever the daemon holds open (the store, the
         * control socket, TLS connections) is not the hook's business.
         */
        sigemptyset(&mask);
        sigfillset(&all);
        r = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
        if (r == 0)
                r = posix_spawnattr_setpgroup(&attr, 0);
        if (r == 0)
                r = posix_spawnattr_setsigmask(&attr, &mask);
        if (r == 0)
                r = posix_spawnattr_setsigdefault(&attr, &all);
        if (r == 0)
                r = posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        if (r == 0)
                r = posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO);
        if (r == 0)
                r = posix_spawn_file_actions_adddup2(&fa, err_fd, STDERR_FILENO);
        if (r == 0)
                r = posix_spawn_file_actions_addchdir_np(&fa, "/");
        if (r == 0)
                r = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
        if (r == 0)
                r = posix_spawn(ret_pid, path, &fa, &attr, argv, envp);

        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
        return -r;
}

static int sigchld_blocked(void) {
        sigset_t cur;

        if (sigprocmask(SIG_SETMASK, NULL, &cur) < 0)
                return -errno;
        return sigismember(&cur, SIGCHLD);
}

int hook_run(sd_event *e, char *const argv[], char *const env[], usec_t timeout, hook_output_t out,
             hook_callback_t done, void *userdata, Hook **ret) {
        static char default_path[] = "PATH=" HOOK_DEFAULT_PATH;
        _cleanup_free_ char **envp = NULL;
        int out_pipe[2] = { -1, -1 }, err_pipe[2] = { -1, -1 };
        size_t n_env = 0;
        Hook *h = NULL;
        int r;

        if (!e || !argv || !argv[0])
                return -EINVAL;
        for (; env && env[n_env]; n_env++)
                if (!strchr(env[n_env], '=') || env[n_env][0] == '=')
                        return -EINVAL;

        /* sd-event reaps through a child source, which needs SIGCHLD
         * blocked; find out now rather than after the process started. */
        r = sigchld_blocked();
        if (r < 0)
                return r;
        if (r == 0)
                return -EBUSY;

        r = check_program(argv[0]);
        if (r < 0)
                return r;

        /* Exactly the caller's environment, plus a PATH: never ours. */
        envp = calloc(n_env + 2, sizeof(char *));
        if (!envp)
                return -ENOMEM;
        for (size_t i = 0; i < n_env; i++)
                envp[i] = env[i];
        if (!env_get_path(env))
                envp[n_env] = default_path;

        h = calloc(1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        *h = (Hook){
                .event = sd_event_ref(e),
                .out = out,
                .done = done,
                .userdata = userdata,
                .result = { .exit_status = -1 },
        };

        r = make_pipe(out_pipe);
        if (r < 0)
                goto fail;
        r = make_pipe(err_pipe);
        if (r < 0)
                goto fail;

        /* Everything that can fail is set up before the process exists. */
        r = sd_event_add_io(e, &h->streams[0].source, out_pipe[0], EPOLLIN, on_output, h);
        if (r < 0)
                goto fail;
        (void) sd_event_source_set_io_fd_own(h->streams[0].source, true);
        out_pipe[0] = -1;
        r = sd_event_add_io(e, &h->streams[1].source, err_pipe[0], EPOLLIN, on_output, h);
        if (r < 0)
                goto fail;
        (void) sd_event_source_set_io_fd_own(h->streams[1].source, true);
        err_pipe[0] = -1;
        if (timeout > 0 && timeout != USEC_INFINITY) {
                r = hook_arm_timer(h, timeout);
                if (r < 0)
                        goto fail;
        }

        r = spawn(argv[0], argv, envp, out_pipe[1], err_pipe[1], &h->pid);
        if (r < 0)
                goto fail;
        /* Only the child writes: our copies would keep EOF from coming. */
        close_pair(out_pipe);
        close_pair(err_pipe);

        r = sd_event_add_child(e, &h->child, h->pid, WEXITED, on_exit_child, h);
        if (r < 0) {
                /* Cannot watch it, so it must not run: kill and reap it
                 * here. SIGKILL'd, it is gone at once. */
                hook_signal(h, SIGKILL);
                (void) waitpid(h->pid, NULL, 0);
                goto fail;
        }

        if (ret)
                *ret = h;
        return 0;

fail:
        close_pair(out_pipe);
        close_pair(err_pipe);
        hook_free(h);
        return r;
}

typedef struct SyncRun {
        hook_output_t out;
        void *userdata;
        HookResult result;
        bool done;
} SyncRun;

static void sync_output(const char *line, bool is_stderr, void *userdata) {
        SyncRun *s = userdata;

        if (s->out)
                s->out(line, is_stderr, s->userdata);
}

static void sync_done(const HookResult *res, void *userdata) {
        SyncRun *s = userdata;

        s->result = *res;
        s->done = true;
}

int hook_run_sync(char *const argv[], char *const env[], usec_t timeout, hook_output_t out, void *userdata,
                  HookResult *ret) {
        SyncRun s = { .out = out, .userdata = userdata };
        sd_event *e = NULL;
        sigset_t mask, old;
        Hook *h = NULL;
        int r;

        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        if (sigprocmask(SIG_BLOCK, &mask, &old) < 0)
                return -errno;

        r = sd_event_new(&e);
        if (r >= 0)
                r = hook_run(e, argv, env, timeout, sync_output, sync_done, &s, &h);
        while (r >= 0 && !s.done) {
                r = sd_event_run(e, UINT64_MAX);
                if (r < 0)
                        /* The loop is broken: stop the hook rather than
                         * leave it running unwatched. The Hook (and the
                         * loop it holds) is leaked; this does not happen. */
                        hook_cancel(h);
        }
        sd_event_unref(e);
        /* A SIGCHLD still pending is discarded or handled as the caller's
         * mask and disposition say, as if we had never blocked it. */
        (void) sigprocmask(SIG_SETMASK, &old, NULL);

        if (r < 0) {
                if (ret)
                        *ret = (HookResult){ .exit_status = -1, .error = r };
                return r;
        }
        if (ret)
                *ret = s.result;
        return 0;
}

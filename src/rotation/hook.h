/* SPDX-License-Identifier: MIT */
/*
 * hook.h — run a user's on_rotate / on_failure command (docs/DESIGN.md §1
 * step 5) without a shell, without our environment, with a timeout, and
 * without ever blocking the event loop.
 *
 * The command runs as a new process group (so a timeout or a cancel kills
 * whatever it started, too), with stdin from /dev/null, the working
 * directory "/", an empty signal mask, default signal dispositions and no
 * file descriptors but 0, 1 and 2. Its environment is exactly the one the
 * caller passes, plus a standard PATH if that lacks one: the daemon's own
 * environment may hold AWS credentials and is never inherited. Its output
 * is read line by line and handed to a callback, for the log.
 *
 * SIGCHLD: the process is reaped through sd_event_add_child(), which
 * requires SIGCHLD to be blocked in every thread of the process. Block it
 * (sigprocmask/pthread_sigmask) before creating the event loop and before
 * starting any thread; hook_run() fails with -EBUSY otherwise.
 * hook_run_sync() blocks it itself for its duration.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <systemd/sd-event.h>

#include "basic/util.h"

/* Limits on the output kept for the log; the rest is read and dropped. */
#define HOOK_LINE_MAX 4096U                /* bytes per line; longer lines are cut */
#define HOOK_OUTPUT_MAX (64U * 1024U)      /* bytes per run, both streams together */
#define HOOK_KILL_DELAY (5 * USEC_PER_SEC) /* SIGTERM → SIGKILL after a timeout */
#define HOOK_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

typedef struct Hook Hook;

typedef struct HookResult {
        int exit_status;       /* exit code 0..255, or -1 if killed by a signal (or never ran) */
        int signal;            /* the signal that killed it, else 0 */
        bool timed_out;        /* the timeout expired and the process group was signalled */
        int error;             /* 0, or -errno if it could not be started */
        size_t output_dropped; /* bytes of output read but not passed on (over the limits) */
} HookResult;

/* Did the hook succeed? Exit status 0 is not enough: a hook that timed
 * out may still exit 0 (it caught SIGTERM, or only a process it left
 * behind was holding its output). */
static inline bool hook_result_ok(const HookResult *res) {
        return res->error == 0 && res->exit_status == 0 && res->signal == 0 && !res->timed_out;
}

/* Called once, when the hook has finished. The Hook is already gone. */
typedef void (*hook_callback_t)(const HookResult *res, void *userdata);
/* Called for each output line: without its line end, control characters
 * replaced by '?', at most HOOK_LINE_MAX bytes. A last line without a
 * newline is passed on too. */
typedef void (*hook_output_t)(const char *line, bool is_stderr, void *userdata);

/**
 * hook_run() - start @argv on the loop @e.
 * @argv:    the command, NULL-terminated; argv[0] is the program's absolute
 *           path. It must be a regular executable file that nobody but
 *           root and our euid can change, nor any directory above it
 *           (chase_program(), basic/chase.h), judged again at every start.
 * @env:     "KEY=VALUE" strings, NULL-terminated (may be NULL): exactly the
 *           child's environment, plus PATH=HOOK_DEFAULT_PATH if it has no PATH.
 * @timeout: relative, after which the process group gets SIGTERM and,
 *           HOOK_KILL_DELAY later, SIGKILL; 0 or USEC_INFINITY = none.
 * @out:     output line callback, may be NULL (output is then discarded).
 * @done:    completion callback, may be NULL. It runs only after the
 *           process has exited *and* both of its output pipes reached end
 *           of file (or were given up HOOK_KILL_DELAY after a kill).
 * @ret:     the running hook, may be NULL. The pointer is valid until
 *           @done has been called or hook_cancel() is called, whichever
 *           comes first; the Hook frees itself.
 *
 * Returns 0 when the command started; then @done will be called exactly
 * once (unless cancelled). Returns a negative errno if it did not start,
 * and then no callback is ever called: -ENOENT (no such program), -EACCES
 * (not executable), -EPERM or -ELOOP (the program is not trusted; the
 * reason is logged), -EINVAL (bad argv or env, argv[0] not an absolute
 * path), -EBUSY (SIGCHLD not blocked), -ENOMEM, or a spawn error.
 */
int hook_run(sd_event *e, char *const argv[], char *const env[], usec_t timeout, hook_output_t out,
             hook_callback_t done, void *userdata, Hook **ret);

/**
 * hook_cancel() - stop a running hook and forget its callbacks.
 *
 * The process group gets SIGKILL; neither callback is called again. The
 * Hook lingers, invisibly, until the process has been reaped and its pipes
 * closed, then frees itself (so nothing blocks here). NULL is a no-op.
 * Not to be called from the hook's own @done callback (it is gone then).
 */
void hook_cancel(Hook *h);

/**
 * hook_run_sync() - hook_run() for programs without an event loop.
 *
 * Blocks SIGCHLD, runs a private sd_event loop until the hook finished,
 * then restores the signal mask. @ret gets the result (on a start failure,
 * with .error set and .exit_status -1). Returns 0 if the command ran
 * (whatever its exit status), else the negative errno of hook_run().
 */
int hook_run_sync(char *const argv[], char *const env[], usec_t timeout, hook_output_t out, void *userdata,
                  HookResult *ret);

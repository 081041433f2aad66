/* SPDX-License-Identifier: MIT */
/*
 * log.h — the one way keyrotd and keyrotctl say something: diagnostics
 * (errors, warnings, state changes, hook output) through log_*(), and the
 * audit module's records through log_record().
 *
 * In the systemd manner: priorities are syslog's (LOG_ERR, LOG_WARNING,
 * LOG_NOTICE, LOG_INFO, LOG_DEBUG), and the _errno variants take a
 * negative (or positive) errno, make "%m" print it, and return it
 * negative, so that a failure is logged once, where it is handled:
 *
 *         r = store_open(path, key, &s, &err);
 *         if (r < 0)
 *                 return log_error_errno(r, "cannot open the store %s: %m", path);
 *
 * Every message names what it is about (a file, a user, an endpoint).
 * Messages are sanitised like audit values (basic/sanitize.h: one line,
 * bounded, control characters and invalid UTF-8 replaced, secret-shaped
 * runs redacted), so text that came from the network or from a file
 * cannot forge a line.
 *
 * Where messages go is decided once, by log_setup() (docs/DESIGN.md §4),
 * for both kinds of output:
 *
 *   target   diagnostics (log_*)           records (log_record())
 *   auto     the journal if stderr is      the journal if journald runs,
 *            connected to it, else stderr  and stderr unless it is the journal
 *   journal  the journal                   the journal
 *   stderr   stderr                        stderr
 *
 * "stderr is connected to the journal" means $JOURNAL_STREAM names
 * stderr's device and inode, as systemd sets it; "journald runs" means
 * its socket /run/systemd/journal/socket exists (when it does not,
 * "auto" sends both to stderr, whatever stderr is). A terminal or
 * a pipe thus always sees what happened. Whatever the journal refuses
 * goes to stderr, with one note why.
 *
 * On stderr a diagnostic is "TIMESTAMP PROGRAM: message" with
 * LOG_STDERR_TIMESTAMP (the daemon), else "PROGRAM: message" (an
 * interactive client); TIMESTAMP is RFC 3339 in UTC. A record is one
 * logfmt line, "time=TIMESTAMP key=value ...". Until log_setup() runs,
 * everything goes to stderr without a timestamp (unit tests never write
 * to the journal).
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>
#include <syslog.h>

#include "basic/util.h"

typedef enum LogTarget {
        LOG_TARGET_AUTO,    /* as the table above says */
        LOG_TARGET_JOURNAL,
        LOG_TARGET_STDERR,
        _LOG_TARGET_MAX,
        _LOG_TARGET_INVALID = -EINVAL,
} LogTarget;

/* "auto", "journal", "stderr"; _LOG_TARGET_INVALID for anything else. */
LogTarget log_target_from_string(const char *s);
const char *log_target_to_string(LogTarget t);

typedef enum LogFlags {
        LOG_STDERR_TIMESTAMP = 1 << 0, /* diagnostics on stderr start with a timestamp */
} LogFlags;

/**
 * log_setup() - name the program and choose where messages go.
 * @program: SYSLOG_IDENTIFIER and the stderr prefix ("keyrotd").
 * @t: as above; AUTO is resolved here, once.
 * @flags: LogFlags.
 *
 * Returns where diagnostics go now (LOG_TARGET_JOURNAL or
 * LOG_TARGET_STDERR), or -EINVAL for an invalid @t (nothing is changed
 * then).
 */
int log_setup(const char *program, LogTarget t, unsigned flags);
/* Where diagnostics go (LOG_TARGET_STDERR before log_setup()). */
LogTarget log_get_target(void);
/* Messages above this priority are dropped (default LOG_INFO); records
 * never are. */
void log_set_max_level(int level);

/**
 * log_record() - send one structured record (an audit entry) where records
 * go (see the table above).
 * @iov, @n: its journal fields, "NAME=value" each, already sanitised.
 * @logfmt: the same record as logfmt ("key=value ..."), for stderr.
 *
 * Returns 0, or the negative errno of a journal write that failed (the
 * record then went to stderr). errno is left as it was.
 */
int log_record(const struct iovec *iov, size_t n, const char *logfmt);

/*
 * log_internal() - the function behind the macros. @error is 0 or an errno
 * of either sign; "%m" prints it. Returns -abs(@error) (0 when @error is 0).
 */
int log_internal(int level, int error, const char *file, int line, const char *func, const char *fmt, ...)
        _printf_(6, 7);

#define log_full_errno(level, error, ...) log_internal((level), (error), __FILE__, __LINE__, __func__, __VA_ARGS__)
#define log_full(level, ...) (void) log_full_errno((level), 0, __VA_ARGS__)

#define log_error_errno(error, ...) log_full_errno(LOG_ERR, (error), __VA_ARGS__)
#define log_warning_errno(error, ...) log_full_errno(LOG_WARNING, (error), __VA_ARGS__)
#define log_notice_errno(error, ...) log_full_errno(LOG_NOTICE, (error), __VA_ARGS__)
#define log_debug_errno(error, ...) log_full_errno(LOG_DEBUG, (error), __VA_ARGS__)

#define log_oom() log_error_errno(-ENOMEM, "Out of memory.")

#define log_error(...) log_full(LOG_ERR, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_full(LOG_DEBUG, __VA_ARGS__)

/* SPDX-License-Identifier: MIT */
#include "basic/log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* Each message says where it comes from (CODE_FILE/LINE/FUNC of the
 * caller), not the line in this file that sends it. */
#define SD_JOURNAL_SUPPRESS_LOCATION 1
#include <systemd/sd-journal.h>

#include "basic/duration.h"
#include "basic/sanitize.h"

#define JOURNAL_SOCKET "/run/systemd/journal/socket"

#define MESSAGE_MAX 2048  /* a message, sanitised */
#define PROGRAM_MAX 64    /* the program name as written */
#define TIMESTAMP_MAX INSTANT_STRING_MAX
#define RECORD_LINE_MAX 8192

static const char *const target_names[_LOG_TARGET_MAX] = {
        [LOG_TARGET_AUTO] = "auto",
        [LOG_TARGET_JOURNAL] = "journal",
        [LOG_TARGET_STDERR] = "stderr",
};

/* The decision of log_setup(); stderr until then, so that unit tests
 * never write to the journal. */
static struct {
        const char *program; /* NULL: program_invocation_short_name */
        unsigned flags;
        int max_level;
        LogTarget target;    /* diagnostics */
        bool records_journal, records_stderr;
        bool journal_failure_noted;
} state = {
        .max_level = LOG_INFO,
        .target = LOG_TARGET_STDERR,
        .records_stderr = true,
};

LogTarget log_target_from_string(const char *s) {
        for (int i = 0; s && i < _LOG_TARGET_MAX; i++)
                if (streq(s, target_names[i]))
                        return (LogTarget) i;
        return _LOG_TARGET_INVALID;
}

const char *log_target_to_string(LogTarget t) {
        return t >= 0 && t < _LOG_TARGET_MAX ? target_names[t] : NULL;
}

static const char *program(void) {
        return state.program ?: program_invocation_short_name;
}

static bool journal_socket_exists(void) {
        struct stat st;

        return stat(JOURNAL_SOCKET, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* systemd sets $JOURNAL_STREAM to "DEVICE:INODE" of the stream it
 * connects to the journal; stderr is that stream only if it still is that
 * file (a shell redirection in between makes it something else). */
static bool stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        uint64_t dev, ino;
        struct stat st;
        char end;

        if (!e || sscanf(e, "%" SCNu64 ":%" SCNu64 "%c", &dev, &ino, &end) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (uint64_t) st.st_dev == dev && (uint64_t) st.st_ino == ino;
}

int log_setup(const char *name, LogTarget t, unsigned flags) {
        bool journald, to_journal;

        if (t < 0 || t >= _LOG_TARGET_MAX)
                return -EINVAL;
        journald = journal_socket_exists();
        to_journal = journald && stderr_is_journal();

        state.program = name;
        state.flags = flags;
        state.journal_failure_noted = false;
        switch (t) {
        case LOG_TARGET_AUTO:
                /* Diagnostics where systemd put stderr; records to the
                 * journal whenever there is one, and to any stderr that
                 * is not the journal too, so a terminal sees them. */
                state.target = to_journal ? LOG_TARGET_JOURNAL : LOG_TARGET_STDERR;
                state.records_journal = journald;
                state.records_stderr = !to_journal;
                break;
        case LOG_TARGET_JOURNAL:
                state.target = LOG_TARGET_JOURNAL;
                state.records_journal = true;
                state.records_stderr = false;
                break;
        default:
                state.target = LOG_TARGET_STDERR;
                state.records_journal = false;
                state.records_stderr = true;
        }
        return state.target;
}

LogTarget log_get_target(void) {
        return state.target;
}

void log_set_max_level(int level) {
        state.max_level = level;
}

/* ---------------------------------------------------------------- stderr */

static void format_timestamp(char buf[static TIMESTAMP_MAX]) {
        (void) format_instant(now_usec(CLOCK_REALTIME), buf);
}

/* One write per line, so that lines of concurrent writers (a hook, the
 * other program) do not interleave within a line. */
static void write_stderr(const char *line, size_t len) {
        while (len > 0) {
                ssize_t k = write(STDERR_FILENO, line, len);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return;
                line += k;
                len -= (size_t) k;
        }
}

static void stderr_message(const char *message) {
        char ts[TIMESTAMP_MAX] = "", line[TIMESTAMP_MAX + PROGRAM_MAX + MESSAGE_MAX + 8];
        int n;

        if (state.flags & LOG_STDERR_TIMESTAMP)
                format_timestamp(ts);
        n = snprintf(line, sizeof line, "%s%s%.*s: %s\n", ts, *ts ? " " : "", PROGRAM_MAX, program(), message);
        if (n > 0)
                write_stderr(line, MIN((size_t) n, sizeof line - 1));
}

/* The journal refused something: it goes to stderr instead, and we say
 * why, once. */
static void note_journal_failure(int r) {
        char message[128];

        if (state.journal_failure_noted)
                return;
        state.journal_failure_noted = true;
        snprintf(message, sizeof message, "cannot write to the journal (%s); writing to stderr instead",
                 strerror(-r));
        stderr_message(message);
}

/* --------------------------------------------------------------- journal */

static int journal_send(const struct iovec *iov, size_t n) {
        /* sd_journal_sendv() reports success when the socket is missing
         * ("the journal is not available"): nothing may vanish like that. */
        if (!journal_socket_exists())
                return -ENOENT;
        return sd_journal_sendv(iov, (int) n);
}

#define IOVEC_STRING(s) ((struct iovec) { .iov_base = (char *) (s), .iov_len = strlen(s) })

static int journal_message(int level, int error, const char *file, int line, const char *func,
                           const char *message) {
        char f_message[MESSAGE_MAX + 16], f_priority[16], f_ident[PROGRAM_MAX + 32], f_errno[32],
                f_file[256], f_line[32], f_func[256];
        struct iovec iov[7];
        size_t n = 0;

        snprintf(f_message, sizeof f_message, "MESSAGE=%s", message);
        iov[n++] = IOVEC_STRING(f_message);
        snprintf(f_priority, sizeof f_priority, "PRIORITY=%i", level);
        iov[n++] = IOVEC_STRING(f_priority);
        snprintf(f_ident, sizeof f_ident, "SYSLOG_IDENTIFIER=%.*s", PROGRAM_MAX, program());
        iov[n++] = IOVEC_STRING(f_ident);
        if (error > 0) {
                snprintf(f_errno, sizeof f_errno, "ERRNO=%i", error);
                iov[n++] = IOVEC_STRING(f_errno);
        }
        if (file) {
                /* The build compiles "../src/x.c": name the source file. */
                while (startswith(file, "../"))
                        file += 3;
                snprintf(f_file, sizeof f_file, "CODE_FILE=%s", file);
                iov[n++] = IOVEC_STRING(f_file);
                snprintf(f_line, sizeof f_line, "CODE_LINE=%i", line);
                iov[n++] = IOVEC_STRING(f_line);
        }
        if (func) {
                snprintf(f_func, sizeof f_func, "CODE_FUNC=%s", func);
                iov[n++] = IOVEC_STRING(f_func);
        }
        return journal_send(iov, n);
}

/* --------------------------------------------------------------- entries */

int log_internal(int level, int error, const char *file, int line, const char *func, const char *fmt, ...) {
        char raw[MESSAGE_MAX * 2], message[MESSAGE_MAX];
        int saved_errno = errno, e = error < 0 ? -error : error;
        va_list ap;
        int n;

        level = LOG_PRI(level);
        if (level > state.max_level)
                return -e;

        errno = e; /* for %m */
        va_start(ap, fmt);
        n = vsnprintf(raw, sizeof raw, fmt, ap);
        va_end(ap);
        if (n < 0)
                snprintf(raw, sizeof raw, "(unformattable message)");
        else if ((size_t) n >= sizeof raw)
                sanitize_trim_cut(raw);
        sanitize_text(raw, message, sizeof message);

        if (state.target == LOG_TARGET_JOURNAL) {
                int k = journal_message(level, e, file, line, func, message);
                if (k >= 0)
                        goto done;
                note_journal_failure(k);
        }
        stderr_message(message);
done:
        errno = saved_errno;
        return -e;
}

int log_record(const struct iovec *iov, size_t n, const char *logfmt) {
        int saved_errno = errno, r = 0;
        bool to_stderr = state.records_stderr;

        if (state.records_journal) {
                r = journal_send(iov, n);
                if (r < 0 && !to_stderr) {
                        /* An audit record is never dropped. */
                        note_journal_failure(r);
                        to_stderr = true;
                }
        }
        if (to_stderr) {
                char ts[TIMESTAMP_MAX], line[RECORD_LINE_MAX];
                int k;

                format_timestamp(ts);
                k = snprintf(line, sizeof line, "time=%s %s\n", ts, logfmt);
                if (k > 0) {
                        if ((size_t) k >= sizeof line)
                                line[sizeof line - 2] = '\n';
                        write_stderr(line, MIN((size_t) k, sizeof line - 1));
                }
        }
        errno = saved_errno;
        return r < 0 ? r : 0;
}

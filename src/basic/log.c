/* SPDX-License-Identifier: MIT */
/*
 * Placeholder until the journal/stderr routing lands: every message goes
 * to stderr as "PROGRAM: message".
 */
#include "basic/log.h"

#include <stdarg.h>
#include <stdio.h>

static const char *program = "keyrotd";
static int max_level = LOG_INFO;

static const char *const target_names[_LOG_TARGET_MAX] = {
        [LOG_TARGET_AUTO] = "auto",
        [LOG_TARGET_JOURNAL] = "journal",
        [LOG_TARGET_STDERR] = "stderr",
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

int log_setup(const char *name, LogTarget t, unsigned flags) {
        if (t < 0 || t >= _LOG_TARGET_MAX)
                return -EINVAL;
        program = name;
        (void) flags;
        return LOG_TARGET_STDERR;
}

LogTarget log_get_target(void) {
        return LOG_TARGET_STDERR;
}

void log_set_max_level(int level) {
        max_level = level;
}

int log_internal(int level, int error, const char *file, int line, const char *func, const char *fmt, ...) {
        int e = error < 0 ? -error : error;
        va_list ap;

        (void) file;
        (void) line;
        (void) func;
        if (level <= max_level) {
                errno = e;
                va_start(ap, fmt);
                fprintf(stderr, "%s: ", program);
                vfprintf(stderr, fmt, ap);
                fputc('\n', stderr);
                va_end(ap);
        }
        return -e;
}

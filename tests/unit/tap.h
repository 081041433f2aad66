/* SPDX-License-Identifier: MIT */
/*
 * tap.h — a minimal TAP producer for the C unit tests. meson runs each
 * binary with protocol 'tap' and counts every `ok`/`not ok` line.
 *
 *   ok(cond, "name %d", i);      one assertion, one TAP line
 *   ok_eq_str(got, want, "name") string comparison with a diagnostic
 *   tap_escape(s)                s with control characters escaped, for a name
 *   return tap_done();           prints the plan, exit status 0 iff all passed
 */
#pragma once

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static unsigned tap_n, tap_failed;

__attribute__((format(printf, 2, 3), unused)) static int ok(int cond, const char *fmt, ...) {
        va_list ap;

        tap_n++;
        if (!cond)
                tap_failed++;
        printf("%s %u - ", cond ? "ok" : "not ok", tap_n);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
        fflush(stdout);
        return cond;
}

__attribute__((unused)) static int ok_eq_str(const char *got, const char *want, const char *name) {
        int cond = got && want ? strcmp(got, want) == 0 : got == want;

        if (!ok(cond, "%s", name)) {
                printf("#   got:  '%s'\n#   want: '%s'\n", got ? got : "(null)", want ? want : "(null)");
                fflush(stdout);
        }
        return cond;
}

__attribute__((format(printf, 1, 2), unused)) static void diag(const char *fmt, ...) {
        va_list ap;

        printf("# ");
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
}

/* @s with control characters escaped, so that it stays on one TAP line.
 * Two buffers in turn: two results may appear in one message. */
__attribute__((unused)) static const char *tap_escape(const char *s) {
        static char buf[2][512];
        static unsigned k;
        char *b = buf[k++ % 2];
        size_t o = 0;

        for (; s && *s && o + 5 < sizeof(buf[0]); s++)
                o += (size_t) snprintf(b + o, sizeof(buf[0]) - o, (unsigned char) *s < 0x20 ? "\\x%02x" : "%c",
                                       (unsigned char) *s);
        b[o] = 0;
        return b;
}

__attribute__((unused)) static int tap_done(void) {
        printf("1..%u\n", tap_n);
        return tap_failed == 0 && tap_n > 0 ? 0 : 1;
}

/* SPDX-License-Identifier: MIT */
/*
 * tap.h — a minimal TAP producer for the C unit tests. meson runs each
 * binary with protocol 'tap' and counts every `ok`/`not ok` line.
 *
 *   ok(cond, "name %d", i);      one assertion, one TAP line
 *   ok_eq_str(got, want, "name") string comparison with a diagnostic
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

__attribute__((unused)) static int tap_done(void) {
        printf("1..%u\n", tap_n);
        return tap_failed == 0 && tap_n > 0 ? 0 : 1;
}

/* SPDX-License-Identifier: MIT */
#include "basic/duration.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

static const struct {
        char unit;
        usec_t usec;
} duration_units[] = {
        { 'w', 7 * USEC_PER_DAY },
        { 'd', USEC_PER_DAY },
        { 'h', USEC_PER_HOUR },
        { 'm', USEC_PER_MINUTE },
        { 's', USEC_PER_SEC },
};

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

/* Add n * unit to *total, refusing to reach USEC_INFINITY. */
static int add_component(usec_t *total, uint64_t n, usec_t unit) {
        if (n > (USEC_INFINITY - 1 - *total) / unit)
                return -ERANGE;
        *total += n * unit;
        return 0;
}

int parse_duration(const char *s, usec_t *ret) {
        usec_t total = 0;
        size_t allowed = 0; /* index of the largest unit still allowed */
        bool first = true;
        const char *p = s;
        int r;

        if (!s || !is_digit(*s))
                return -EINVAL;

        for (;;) {
                uint64_t n = 0;
                size_t i;

                if (!is_digit(*p))
                        return -EINVAL;
                for (; is_digit(*p); p++) {
                        unsigned d = (unsigned) (*p - '0');

                        if (n > (UINT64_MAX - d) / 10)
                                return -ERANGE;
                        n = n * 10 + d;
                }

                /* A bare integer, and only a bare integer, is seconds. */
                if (*p == '\0' && first) {
                        r = add_component(&total, n, USEC_PER_SEC);
                        if (r < 0)
                                return r;
                        break;
                }

                for (i = allowed; i < ELEMENTSOF(duration_units); i++)
                        if (duration_units[i].unit == *p)
                                break;
                if (i >= ELEMENTSOF(duration_units))
                        return -EINVAL; /* unknown unit, repeated or out of order */

                r = add_component(&total, n, duration_units[i].usec);
                if (r < 0)
                        return r;
                allowed = i + 1;
                first = false;
                p++;

                if (*p == '\0')
                        break;
                if (*p == ' ')
                        p++; /* exactly one separator; the next loop demands a digit */
        }

        *ret = total;
        return 0;
}

char *format_duration_approx(usec_t u, unsigned max_units, char *buf, size_t size) {
        size_t len = 0;
        unsigned printed = 0;
        usec_t left;
        int n;

        if (!buf || size == 0)
                return NULL;

        if (u == USEC_INFINITY)
                n = snprintf(buf, size, "infinity");
        else if (u == 0)
                n = snprintf(buf, size, "0");
        else if (u < USEC_PER_SEC)
                n = snprintf(buf, size, "<1s");
        else
                n = 0;
        if (n < 0 || (size_t) n >= size)
                goto too_small;
        if (n > 0)
                return buf;

        buf[0] = '\0';
        left = u - u % USEC_PER_SEC;
        for (size_t i = 0; i < ELEMENTSOF(duration_units); i++) {
                usec_t count = left / duration_units[i].usec;

                if (count == 0)
                        continue;
                left -= count * duration_units[i].usec;

                n = snprintf(buf + len, size - len, "%s%" PRIu64 "%c",
                             printed > 0 ? " " : "", count, duration_units[i].unit);
                if (n < 0 || (size_t) n >= size - len)
                        goto too_small;
                len += (size_t) n;

                if (++printed == max_units)
                        break;
        }
        return buf;

too_small:
        buf[0] = '\0';
        return NULL;
}

char *format_duration(usec_t u, char *buf, size_t size) {
        return format_duration_approx(u, 0, buf, size);
}

char *format_instant(usec_t t, char buf[static INSTANT_STRING_MAX]) {
        time_t s = (time_t) (t / USEC_PER_SEC);
        struct tm tm;

        if (!gmtime_r(&s, &tm) || strftime(buf, INSTANT_STRING_MAX, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
                buf[0] = 0;
                return NULL;
        }
        return buf;
}

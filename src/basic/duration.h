/* SPDX-License-Identifier: MIT */
/*
 * duration.h — the inventory's durations ("90d", "1h30m") and their
 * human-readable form for status lines ("3d 4h"); instants in RFC 3339.
 *
 * Syntax accepted by parse_duration():
 *
 *   - a bare unsigned decimal integer is seconds: "3600" = one hour, "0" = 0;
 *   - otherwise one or more components NUMBER UNIT with UNIT one of
 *     w (7 days), d (24 hours), h, m (minutes), s; e.g. "90d", "1h30m",
 *     "1w 2d" (a single space may separate components, so everything
 *     format_duration() prints parses back);
 *   - each unit at most once and from the largest to the smallest
 *     ("30m1h" and "1h1h" are typos, not durations); a component may exceed
 *     the next unit ("90m" and "1h90m" are fine);
 *   - no sign, no fraction, no other units, no leading or trailing space,
 *     case-sensitive ("1H" is refused: "M" could be months to a reader).
 *
 * Whether 0 is meaningful is the caller's decision (grace: yes, max_age: no).
 */
#pragma once

#include <stddef.h>

#include "basic/util.h"

/* Enough for any usec_t printed by format_duration(), NUL included. */
#define DURATION_STRING_MAX 48

/*
 * parse_duration() - parse @s into microseconds.
 *
 * Returns 0 and sets *ret; -EINVAL for anything that is not a duration
 * (empty, garbage, a sign, a unit out of order); -ERANGE when the value does
 * not fit in a usec_t below USEC_INFINITY. *ret is untouched on failure.
 */
int parse_duration(const char *s, usec_t *ret);

/*
 * format_duration() - print @u as "3d 4h 5m 6s": every non-zero unit from
 * weeks down to seconds, separated by one space. Sub-second remainders are
 * dropped, except that a non-zero value under one second prints as "<1s".
 * 0 prints as "0", USEC_INFINITY as "infinity".
 *
 * Returns @buf, or NULL when @size is too small (then @buf holds "").
 * DURATION_STRING_MAX is always enough.
 */
char *format_duration(usec_t u, char *buf, size_t size);

/*
 * format_duration_approx() - like format_duration() but at most
 * @max_units units, the largest first, the rest truncated: with 2,
 * 3d 4h 5m prints as "3d 4h". 0 units means all of them.
 */
char *format_duration_approx(usec_t u, unsigned max_units, char *buf, size_t size);

/* "2026-12-07T22:00:05Z": RFC 3339, UTC, whole seconds (the fraction is
 * dropped), NUL included. */
#define INSTANT_STRING_MAX 32

/*
 * format_instant() - print the CLOCK_REALTIME instant @t (usec) as above.
 * Returns @buf, or NULL when it cannot be represented (then @buf holds "").
 */
char *format_instant(usec_t t, char buf[static INSTANT_STRING_MAX]);

/* SPDX-License-Identifier: MIT */
/*
 * hex.h — hexadecimal digits, both ways: %XX escapes (SigV4's query
 * re-encoding, IAM's URL-encoded policy documents), JSON's \uXXXX, and the
 * lowercase hex of digests and signatures. Header only; nothing allocates.
 */
#pragma once

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

/* The value of one hex digit (either case), or -EINVAL. */
static inline int unhexchar(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -EINVAL;
}

/*
 * The byte that the two hex digits at @p spell (0..255), or -EINVAL. Reads
 * p[1] only when p[0] is a digit, so a NUL-terminated string is never read
 * past its end.
 */
static inline int unhexbyte(const char *p) {
        int hi = unhexchar(p[0]), lo;

        if (hi < 0)
                return hi;
        lo = unhexchar(p[1]);
        if (lo < 0)
                return lo;
        return hi << 4 | lo;
}

static inline char hexchar(unsigned x) {
        return "0123456789abcdef"[x & 15];
}

static inline char hexchar_upper(unsigned x) {
        return "0123456789ABCDEF"[x & 15];
}

/* @n bytes of @p as 2 * @n lowercase digits and a NUL into @out. */
static inline void hexmem(const void *p, size_t n, char *out) {
        const uint8_t *b = p;

        for (size_t i = 0; i < n; i++) {
                out[2 * i] = hexchar(b[i] >> 4);
                out[2 * i + 1] = hexchar(b[i]);
        }
        out[2 * n] = 0;
}

/* SPDX-License-Identifier: MIT */
#include "basic/sanitize.h"

#include <stdbool.h>
#include <string.h>

static bool is_base64_char(unsigned char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/* Whether s[0..n) looks like a secret access key (random base64) rather
 * than a word, a path or a hex digest: upper case, lower case, and a digit
 * or '+' or '/' all appear. A random 40-character key lacks one of the
 * three with a probability below 1 in 3000. */
static bool looks_secret(const unsigned char *s, size_t n) {
        bool upper = false, lower = false, other = false;

        if (n < SANITIZE_SECRET_RUN_MIN)
                return false;
        for (size_t i = 0; i < n; i++) {
                if (s[i] >= 'A' && s[i] <= 'Z')
                        upper = true;
                else if (s[i] >= 'a' && s[i] <= 'z')
                        lower = true;
                else
                        other = true;
        }
        return upper && lower && other;
}

/* Length of the valid UTF-8 sequence at s (1..4), 0 if invalid. */
static size_t utf8_length(const unsigned char *s) {
        unsigned char c = s[0], lo = 0x80, hi = 0xbf;
        size_t n;

        if (c < 0x80)
                return 1;
        if (c >= 0xc2 && c <= 0xdf)
                n = 2;
        else if (c >= 0xe0 && c <= 0xef) {
                n = 3;
                if (c == 0xe0)
                        lo = 0xa0; /* no overlong forms */
                else if (c == 0xed)
                        hi = 0x9f; /* no surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
                n = 4;
                if (c == 0xf0)
                        lo = 0x90;
                else if (c == 0xf4)
                        hi = 0x8f; /* nothing above U+10FFFF */
        } else
                return 0;
        if (s[1] < lo || s[1] > hi)
                return 0;
        for (size_t i = 2; i < n; i++)
                if (s[i] < 0x80 || s[i] > 0xbf)
                        return 0;
        return n;
}

size_t sanitize_text(const char *in, char *out, size_t size) {
        const unsigned char *s = (const unsigned char *) (in ?: ""), *plain_until = s;
        size_t pos = 0;
        bool truncated = false;

        if (size == 0)
                return 0;
        while (*s) {
                const char *piece;
                size_t len, advance;
                char c;

                if (s < plain_until) {
                        /* Inside a run already found harmless. */
                        piece = (const char *) s;
                        len = advance = 1;
                } else if (is_base64_char(*s)) {
                        size_t run = 0;

                        while (is_base64_char(s[run]))
                                run++;
                        if (looks_secret(s, run)) {
                                piece = SANITIZE_REDACTED;
                                len = strlen(SANITIZE_REDACTED);
                                advance = run;
                        } else {
                                plain_until = s + run;
                                piece = (const char *) s;
                                len = advance = 1;
                        }
                } else if (*s < 0x20 || *s == 0x7f || (*s == 0xc2 && s[1] >= 0x80 && s[1] <= 0x9f)) {
                        /* C0, DEL and C1 controls: one line, no terminal
                         * escapes. */
                        c = ' ';
                        piece = &c;
                        len = 1;
                        advance = *s == 0xc2 ? 2 : 1;
                } else if ((len = utf8_length(s)) == 0) {
                        c = '?';
                        piece = &c;
                        len = advance = 1;
                } else {
                        piece = (const char *) s;
                        advance = len;
                }
                if (pos + len > size - 1) {
                        truncated = true;
                        break;
                }
                memcpy(out + pos, piece, len);
                pos += len;
                s += advance;
        }
        if (truncated && size > 4) {
                /* End on a character boundary, and say that we cut. Only
                 * bytes below the old end were written. */
                size_t end = pos;

                if (pos > size - 4)
                        pos = size - 4;
                while (pos > 0 && pos < end && ((unsigned char) out[pos] & 0xc0) == 0x80)
                        pos--;
                memcpy(out + pos, "...", 3);
                pos += 3;
        }
        out[pos] = 0;
        return pos;
}

void sanitize_trim_cut(char *s) {
        size_t end = strlen(s);

        while (end > 0 && is_base64_char((unsigned char) s[end - 1]))
                end--;
        s[end] = 0;
}

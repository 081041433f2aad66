/* SPDX-License-Identifier: MIT */
/*
 * fuzz-ini.c — the AWS credentials/config reader and rewriter (basic/ini.h)
 * on arbitrary files. The first byte picks the profile syntax and the
 * section; the rest is the file.
 *
 * What must hold: every result is one of the documented ones; a value
 * read is one trimmed line; a merge with nothing to set or remove gives
 * the file back byte for byte; after a merge the section reads back
 * exactly the keys set and none of those removed, another section reads
 * as before, and merging the same keys again changes nothing; no Secret
 * outlives the input (secure-count.c).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "basic/ini.h"
#include "basic/secret.h"
#include "basic/util.h"
#include "fuzz-check.h"

static const char *const sections[] = { "default", "prod", "profile", "a.b-c_d" };
static const char *const keys[] = { "aws_access_key_id", "aws_secret_access_key", "aws_session_token",
                                    "aws_security_token", "region" };
static const char *const session_keys[] = { "aws_session_token", "aws_security_token", NULL };
static const IniAssignment set[] = {
        { "aws_access_key_id", "AKIAIOSFODNN7EXAMPLE" },
        { "aws_secret_access_key", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" },
};

static bool is_blank(char c) {
        unsigned char u = (unsigned char) c;

        return u == ' ' || (u >= '\t' && u <= '\r') || (u >= 0x1c && u <= 0x1f);
}

/* ini_get_full(), checked; the value (or NULL) and the result in *ret_r. */
static Secret *get(const char *text, size_t len, const char *section, IniFlags flags, const char *key, int *ret_r) {
        Secret *v = NULL;
        int r;

        r = ini_get_full(text, len, section, flags, key, &v);
        check(r == 0 || r == -ENOENT || r == -EBADMSG || r == -E2BIG);
        check((r == 0) == (v != NULL));
        if (v) {
                check(v->data[v->len] == 0 && strlen(v->data) == v->len && !memchr(v->data, '\n', v->len));
                check(v->len == 0 || (!is_blank(v->data[0]) && !is_blank(v->data[v->len - 1])));
        }
        *ret_r = r;
        return v;
}

static bool same(const Secret *a, const Secret *b) {
        return (!a && !b) || (a && b && a->len == b->len && memcmp(a->data, b->data, a->len) == 0);
}

static void check_merged(const char *text, size_t len, const Secret *out, const char *section, const char *other,
                         IniFlags flags) {
        _cleanup_secret_ Secret *again = NULL;
        int r, r2;

        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                _cleanup_secret_ Secret *v = get(out->data, out->len, section, flags, keys[i], &r);

                if (i < ELEMENTSOF(set))
                        check(r == 0 && streq(v->data, set[i].value));
                else if (i < ELEMENTSOF(set) + 2)
                        check(r == -ENOENT);
                else {
                        /* As before, except that a section just added
                         * reads whatever [DEFAULT] holds. */
                        _cleanup_secret_ Secret *before = get(text, len, section, flags, keys[i], &r2);

                        check((r == r2 && same(v, before)) || r2 == -ENOENT);
                }
        }
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                _cleanup_secret_ Secret *a = get(text, len, other, flags, keys[i], &r),
                                        *b = get(out->data, out->len, other, flags, keys[i], &r2);

                check(r == r2 && same(a, b));
        }

        r = ini_merge_full(out->data, out->len, section, flags, set, ELEMENTSOF(set), session_keys, &again);
        check(r == 0 && same(out, again));
}

static int fuzz_one(const uint8_t *data, size_t size) {
        IniFlags flags;
        const char *section, *other, *text;
        size_t len;
        int r;

        if (size < 1)
                return 0;
        if (secret_init() < 0)
                abort();
        flags = data[0] & 1 ? INI_CONFIG_PROFILE : 0;
        section = sections[(data[0] >> 1) % ELEMENTSOF(sections)];
        other = sections[((data[0] >> 1) + 1) % ELEMENTSOF(sections)];
        text = (const char *) data + 1;
        len = size - 1;

        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                secret_free(get(text, len, section, flags, keys[i], &r));

        /* Nothing to do: every byte stays. */
        {
                _cleanup_secret_ Secret *out = NULL;

                r = ini_merge_full(text, len, section, flags, NULL, 0, NULL, &out);
                check(r == 0 || r == -EBADMSG || r == -E2BIG);
                check(r != 0 || (out->len == len && memcmp(out->data, text, len) == 0));
        }

        /* What a credentials-file target does. */
        {
                _cleanup_secret_ Secret *out = NULL;

                r = ini_merge_full(text, len, section, flags, set, ELEMENTSOF(set), session_keys, &out);
                check(r == 0 || r == -EBADMSG || r == -E2BIG);
                check((r == 0) == (out != NULL));
                if (r == 0)
                        check_merged(text, len, out, section, other, flags);
        }

        /* Removing only. */
        {
                _cleanup_secret_ Secret *out = NULL, *again = NULL;

                r = ini_merge_full(text, len, section, flags, NULL, 0, session_keys, &out);
                check(r == 0 || r == -EBADMSG || r == -E2BIG);
                if (r == 0) {
                        check(out->len <= len);
                        for (size_t i = 2; i < 4; i++) {
                                secret_free(get(out->data, out->len, section, flags, keys[i], &r));
                                check(r == -ENOENT);
                        }
                        r = ini_merge_full(out->data, out->len, section, flags, NULL, 0, session_keys, &again);
                        check(r == 0 && same(out, again));
                }
        }
        return 0;
}

FUZZ_ENTRY_NO_SECRET_LEFT(fuzz_one)

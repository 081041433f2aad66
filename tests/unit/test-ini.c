/* SPDX-License-Identifier: MIT */
/*
 * test-ini — the AWS credentials/config format: reading every shape
 * botocore reads, and rewriting one profile while every other byte of the
 * file survives.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/ini.h"
#include "basic/secret.h"
#include "basic/util.h"
#include "tap.h"

static const char *const no_token[] = { "aws_session_token", "aws_security_token", NULL };

/* ini_get on a C string; returns the value (static buffer) or NULL, and the
 * return code in *r. */
static const char *get(const char *text, const char *section, const char *key, int *r) {
        static char buf[4096];
        _cleanup_secret_ Secret *s = NULL;

        *r = ini_get(text, strlen(text), section, key, &s);
        if (*r < 0)
                return NULL;
        snprintf(buf, sizeof(buf), "%s", secret_str(s));
        if (s->len != strlen(buf) || s->data[s->len] != 0)
                return "(bad secret length)";
        return buf;
}

static void check_get(const char *text, const char *section, const char *key, const char *want,
                      const char *name) {
        int r;
        const char *got = get(text, section, key, &r);

        if (!ok_eq_str(got, want, name))
                diag("r=%d", r);
}

static void check_get_err(const char *text, const char *section, const char *key, int want, const char *name) {
        int r;

        (void) get(text, section, key, &r);
        if (!ok(r == want, "%s", name))
                diag("got %d (%s), want %d (%s)", r, strerror(-r), want, strerror(-want));
}

static void check_get_profile(const char *text, const char *profile, const char *key, int want_r,
                              const char *want, const char *name) {
        _cleanup_secret_ Secret *s = NULL;
        int r = ini_get_full(text, strlen(text), profile, INI_CONFIG_PROFILE, key, &s);

        if (want_r < 0) {
                if (!ok(r == want_r, "%s", name))
                        diag("got %d, want %d", r, want_r);
                return;
        }
        ok_eq_str(r == 0 ? secret_str(s) : NULL, want, name);
}

static void test_read(void) {
        static const char creds[] =
                "# keyrotd test credentials\n"
                "[default]\n"
                "aws_access_key_id = AKIADEFAULT\n"
                "aws_secret_access_key=  s3cr/et+k=y==   \n"
                "\n"
                "; another comment\n"
                "[work]\n"
                "AWS_Access_Key_ID: AKIAWORK\n"
                "   # indented comment\n"
                "aws_secret_access_key :secret:with=separators # not a comment\n"
                "aws_session_token =\n"
                "region=eu-west-1\n";

        check_get(creds, "default", "aws_access_key_id", "AKIADEFAULT", "read: plain key");
        check_get(creds, "default", "aws_secret_access_key", "s3cr/et+k=y==", "read: value trimmed, '=' kept");
        check_get(creds, "work", "aws_access_key_id", "AKIAWORK", "read: key names case-insensitive, ':' separator");
        check_get(creds, "work", "AWS_SECRET_ACCESS_KEY", "secret:with=separators # not a comment",
                  "read: split at first separator, no inline comments");
        check_get(creds, "work", "aws_session_token", "", "read: empty value");
        check_get(creds, "work", "region", "eu-west-1", "read: last line");
        check_get_err(creds, "nope", "aws_access_key_id", -ENOENT, "read: missing section is -ENOENT");
        check_get_err(creds, "default", "aws_session_token", -ENOENT, "read: missing key is -ENOENT");
        check_get_err(creds, "Default", "aws_access_key_id", -ENOENT, "read: section names case-sensitive");
        check_get_err(creds, "# keyrotd test credentials", "x", -ENOENT, "read: comments are not sections");

        check_get("[a]\r\nk = v1  \r\n\r\n[b]\r\nk=v2\r\n", "a", "k", "v1", "read: CRLF, value has no CR");
        check_get("[a]\r\nk = v1\r\n[b]\r\nk=v2\r\n", "b", "k", "v2", "read: CRLF second section");
        check_get("[a]\nk = last", "a", "k", "last", "read: no final newline");
        check_get_err("", "default", "k", -ENOENT, "read: empty file");
        check_get_err("\n\n# only comments\n", "default", "k", -ENOENT, "read: only comments");
        check_get("[default] ; trailing text\nk=v\n", "default", "k", "v",
                  "read: text after the header's last ']' ignored (configparser)");
        check_get("[a]b]\nk=v\n", "a]b", "k", "v", "read: header runs to the last ']'");
        check_get_err("[ default ]\nk=v\n", "default", "k", -ENOENT, "read: blanks inside brackets are part of the name");
        check_get("[ default ]\nk=v\n", " default ", "k", "v", "read: ...and can be asked for");
        check_get("  [indented]\n  k = v\n", "indented", "k", "v", "read: indented header and key");
        check_get("[a]\nk\t=\tv\tw\t\n", "a", "k", "v\tw", "read: tabs trimmed, kept inside");
        check_get("[a]\nmy key = v\n", "a", "MY KEY", "v", "read: blanks inside key names");
}

static void test_continuations(void) {
        static const char cfg[] =
                "[default]\n"
                "s3 =\n"
                "    max_concurrent_requests = 10\n"
                "\n"
                "    # comment inside\n"
                "    addressing_style = path\n"
                "aws_access_key_id = AKIA1\n"
                "multi = first\n"
                "  second\n"
                "\n"
                "[other]\n"
                "k = v\n"
                "  [notasection]\n"
                "  x = 1\n";

        check_get(cfg, "default", "aws_access_key_id", "AKIA1", "nested: key after a nested block");
        check_get_err(cfg, "default", "s3", -EBADMSG, "nested: a multi-line value is refused");
        check_get_err(cfg, "default", "multi", -EBADMSG, "nested: continuation of a plain value is refused");
        check_get_err(cfg, "default", "max_concurrent_requests", -ENOENT, "nested: inner keys are not keys");
        check_get_err(cfg, "notasection", "x", -ENOENT, "nested: deeper '[x]' line continues the value");
        check_get_err(cfg, "other", "k", -EBADMSG, "nested: ...of the key before it");
        check_get("[a]\n  k = 1\n  j = 2\n", "a", "j", "2", "nested: same indentation is a new key");
        check_get("[a]\n    k = 1\nj = 2\n", "a", "j", "2", "nested: shallower is a new key");
        check_get_err("[a]\n    k = 1\nj = 2\n    x = 3\n", "a", "x", -ENOENT,
                      "nested: indent level follows the last key line");
        check_get("[a]\n  x = 1\n", "a", "x", "1", "nested: indented line right after a header is a key");
}

static void test_default_section(void) {
        static const char creds[] =
                "[DEFAULT]\n"
                "region = us-east-1\n"
                "[a]\n"
                "k = v\n"
                "region = eu-west-1\n"
                "[b]\n"
                "k = w\n";

        check_get(creds, "a", "region", "eu-west-1", "DEFAULT: a section's own key wins");
        check_get(creds, "b", "region", "us-east-1", "DEFAULT: inherited like configparser");
        check_get_err(creds, "c", "region", -ENOENT, "DEFAULT: does not create sections");
        check_get_err("[default]\nk=v\n", "default", "region", -ENOENT, "DEFAULT: [default] is not [DEFAULT]");
}

static void test_profiles(void) {
        static const char cfg[] =
                "[default]\n"
                "region = us-east-1\n"
                "[profile work]\n"
                "region = eu-west-1\n"
                "[profile \t spaced  ]\n"
                "region = ap-south-1\n"
                "[plain]\n"
                "region = none\n"
                "[profilex]\n"
                "region = none\n";

        check_get_profile(cfg, "default", "region", 0, "us-east-1", "profile: [default]");
        check_get_profile(cfg, "work", "region", 0, "eu-west-1", "profile: [profile work]");
        check_get_profile(cfg, "spaced", "region", 0, "ap-south-1", "profile: blanks around the name");
        check_get_profile(cfg, "plain", "region", -ENOENT, NULL, "profile: [plain] is not a profile");
        check_get_profile(cfg, "x", "region", -ENOENT, NULL, "profile: [profilex] is not a profile");
        check_get_profile(cfg, "my profile", "region", -EINVAL, NULL, "profile: blanks in a name refused");
        check_get_profile("[profile default]\nregion = a\n", "default", "region", 0, "a",
                          "profile: [profile default]");
        check_get_profile("[default]\nregion = a\n[profile default]\nregion = b\n", "default", "region",
                          -EBADMSG, NULL, "profile: [default] and [profile default] is ambiguous");
        check_get_profile("[profile a]\nk = 1\n[profile  a]\nk = 2\n", "a", "k", -EBADMSG, NULL,
                          "profile: two spellings of one profile is ambiguous");
        check_get(cfg, "profile work", "region", "eu-west-1", "profile: without the flag, the literal section name");
}

static void test_malformed(void) {
        check_get_err("[a]\nk = 1\n[a]\nj = 2\n", "a", "k", -EBADMSG, "malformed: duplicate section");
        check_get_err("[a]\nk = 1\n[b]\n[a]\n", "b", "k", -EBADMSG, "malformed: duplicate section elsewhere");
        check_get_err("[a]\nk = 1\nK = 2\n", "a", "k", -EBADMSG, "malformed: duplicate key (any case)");
        check_get_err("[a]\nk = 1\n[b]\nk = 2\nx = 1\nx = 2\n", "a", "k", -EBADMSG,
                      "malformed: duplicate key in another section");
        check_get("[a]\nk = 1\n[b]\nk = 2\n", "b", "k", "2", "malformed: same key in two sections is fine");
        check_get_err("[a]\ngarbage\n", "a", "k", -EBADMSG, "malformed: neither key, section, comment nor blank");
        check_get_err("k = 1\n[a]\n", "a", "k", -EBADMSG, "malformed: key before any section");
        check_get_err("  k = 1\n[a]\n", "a", "k", -EBADMSG, "malformed: indented key before any section");
        check_get_err("[a]\n= 1\n", "a", "k", -EBADMSG, "malformed: empty key");
        check_get_err("[a]\n  : 1\n", "a", "k", -EBADMSG, "malformed: empty key with ':'");
        check_get_err("[]\n", "a", "k", -EBADMSG, "malformed: empty section name");
        check_get_err("[a\nk=1\n", "a", "k", -EBADMSG, "malformed: unclosed header");
}

static void test_hostile(void) {
        _cleanup_secret_ Secret *s = NULL;
        _cleanup_free_ char *big = NULL;
        size_t n;
        int r;

        r = ini_get("[a]\nk = v\0w\n", 12, "a", "k", &s);
        ok(r == -EBADMSG, "hostile: NUL byte in a value refused (%d)", r);
        r = ini_get("[a]\0\nk = v\n", 11, "a", "k", &s);
        ok(r == -EBADMSG, "hostile: NUL byte in a header refused (%d)", r);
        r = ini_get("[a]\nk = v\n\0", 11, "a", "k", &s);
        ok(r == -EBADMSG, "hostile: NUL byte at the end refused (%d)", r);
        check_get_err("[a]\rk = v\n", "a", "k", -EBADMSG, "hostile: lone CR (Python splits there) refused");
        check_get_err("[a]\nk = v\r", "a", "k", -EBADMSG, "hostile: CR at end of file refused");
        r = ini_get(NULL, 0, "a", "k", &s);
        ok(r == -ENOENT, "hostile: NULL text of length 0 is an empty file");
        r = ini_get(NULL, 1, "a", "k", &s);
        ok(r == -EINVAL, "hostile: NULL text with a length is -EINVAL");
        ok(ini_get("[a]\n", 4, "", "k", &s) == -EINVAL, "hostile: empty section argument");
        ok(ini_get("[a]\n", 4, "a", "", &s) == -EINVAL, "hostile: empty key argument");
        ok(s == NULL, "hostile: output untouched on failure");

        /* A line exactly INI_LINE_MAX long is fine, one byte more is not. */
        big = malloc(INI_MAX_SIZE + 2);
        if (!big)
                abort();
        memcpy(big, "[a]\nk = ", 8);
        n = 4 + INI_LINE_MAX;
        memset(big + 8, 'x', n - 8);
        big[n] = '\n';
        r = ini_get(big, n + 1, "a", "k", &s);
        ok(r == 0 && s && s->len == INI_LINE_MAX - 4, "hostile: line of INI_LINE_MAX accepted");
        s = secret_free(s);
        memset(big + 8, 'x', n + 1 - 8);
        big[n + 1] = '\n';
        r = ini_get(big, n + 2, "a", "k", &s);
        ok(r == -EBADMSG, "hostile: line of INI_LINE_MAX+1 refused (%d)", r);
        r = ini_get(big, n + 1, "a", "k", &s);
        ok(r == -EBADMSG, "hostile: overlong unterminated last line refused (%d)", r);

        /* Exactly INI_MAX_SIZE of valid file (many short keys), then +1. */
        {
                size_t pos = 0;
                unsigned i = 0;

                pos += (size_t) sprintf(big + pos, "[a]\n");
                while (pos + 16 <= INI_MAX_SIZE)
                        pos += (size_t) sprintf(big + pos, "k%09u=v\n", i++);
                while (pos < INI_MAX_SIZE)
                        big[pos++] = '\n';
                r = ini_get(big, INI_MAX_SIZE, "a", "k000000007", &s);
                ok(r == 0 && streq(secret_str(s), "v"), "hostile: 1 MiB file of 80k keys read (%d)", r);
                s = secret_free(s);
                big[INI_MAX_SIZE] = '\n';
                r = ini_get(big, INI_MAX_SIZE + 1, "a", "k000000007", &s);
                ok(r == -E2BIG, "hostile: 1 MiB + 1 refused with -E2BIG (%d)", r);
                r = ini_merge(big, INI_MAX_SIZE + 1, "a", &(IniAssignment){ "k", "v" }, 1, NULL, &s);
                ok(r == -E2BIG, "hostile: merge of 1 MiB + 1 refused with -E2BIG (%d)", r);
                r = ini_merge(big, INI_MAX_SIZE, "a", &(IniAssignment){ "new_key", "v" }, 1, NULL, &s);
                ok(r == -E2BIG, "hostile: merge whose result exceeds 1 MiB refused (%d)", r);
                ok(s == NULL, "hostile: merge output untouched on failure");
        }

        /* 1 MiB of newlines, and 1 MiB of "[a]\n" (every one a duplicate). */
        memset(big, '\n', INI_MAX_SIZE);
        r = ini_get(big, INI_MAX_SIZE, "a", "k", &s);
        ok(r == -ENOENT, "hostile: 1 MiB of blank lines (%d)", r);
        for (size_t i = 0; i + 4 <= INI_MAX_SIZE; i += 4)
                memcpy(big + i, "[a]\n", 4);
        r = ini_get(big, INI_MAX_SIZE, "a", "k", &s);
        ok(r == -EBADMSG, "hostile: 256k duplicate sections refused (%d)", r);
}

static void check_merge(const char *text, const char *section, const IniAssignment *set, size_t n_set,
                        const char *const *remove, const char *want, const char *name) {
        _cleanup_secret_ Secret *out = NULL, *again = NULL;
        int r;

        r = ini_merge(text, strlen(text), section, set, n_set, remove, &out);
        if (!ok_eq_str(r == 0 ? secret_str(out) : NULL, want, name)) {
                diag("r=%d", r);
                return;
        }
        /* Merging the same change again changes nothing more. */
        r = ini_merge(out->data, out->len, section, set, n_set, remove, &again);
        ok(r == 0 && streq(secret_str(again), want), "%s: idempotent", name);
}

static void check_merge_err(const char *text, const char *section, const IniAssignment *set, size_t n_set,
                            const char *const *remove, int want, const char *name) {
        Secret *out = NULL;
        int r = ini_merge(text, strlen(text), section, set, n_set, remove, &out);

        if (!ok(r == want && !out, "%s", name))
                diag("got %d, want %d", r, want);
        secret_free(out);
}

static const IniAssignment new_key[] = {
        { "aws_access_key_id", "AKIANEW" },
        { "aws_secret_access_key", "new/secret+key" },
};

static void test_merge(void) {
        check_merge("# managed by keyrotd\n"
                    "[other]\n"
                    "aws_access_key_id = AKIAOTHER\n"
                    "aws_secret_access_key = othersecret   \n"
                    "\n"
                    "; the app's key\n"
                    "[default]\n"
                    "aws_access_key_id=AKIAOLD\n"
                    "  # keep me\n"
                    "AWS_Secret_Access_Key :   oldsecret  \n"
                    "region = eu-west-1\n"
                    "\n"
                    "[third]\n"
                    "aws_access_key_id = AKIATHIRD\n",
                    "default", new_key, 2, no_token,
                    "# managed by keyrotd\n"
                    "[other]\n"
                    "aws_access_key_id = AKIAOTHER\n"
                    "aws_secret_access_key = othersecret   \n"
                    "\n"
                    "; the app's key\n"
                    "[default]\n"
                    "aws_access_key_id=AKIANEW\n"
                    "  # keep me\n"
                    "AWS_Secret_Access_Key :   new/secret+key  \n"
                    "region = eu-west-1\n"
                    "\n"
                    "[third]\n"
                    "aws_access_key_id = AKIATHIRD\n",
                    "merge: replace in place, everything else byte for byte");

        check_merge("[default]\n"
                    "region = eu-west-1\n"
                    "aws_access_key_id = AKIAOLD\n"
                    "# trailing comment of the section\n"
                    "\n"
                    "[next]\n"
                    "k = v\n",
                    "default", new_key, 2, NULL,
                    "[default]\n"
                    "region = eu-west-1\n"
                    "aws_access_key_id = AKIANEW\n"
                    "aws_secret_access_key = new/secret+key\n"
                    "# trailing comment of the section\n"
                    "\n"
                    "[next]\n"
                    "k = v\n",
                    "merge: missing key appended after the section's last key line");

        check_merge("[default]\n# nothing yet\n\n[next]\nk = v\n", "default", new_key, 2, NULL,
                    "[default]\n"
                    "aws_access_key_id = AKIANEW\n"
                    "aws_secret_access_key = new/secret+key\n"
                    "# nothing yet\n"
                    "\n"
                    "[next]\n"
                    "k = v\n",
                    "merge: keys appended to an empty section right after its header");

        check_merge("[other]\nk = v\n", "app", new_key, 2, no_token,
                    "[other]\n"
                    "k = v\n"
                    "\n"
                    "[app]\n"
                    "aws_access_key_id = AKIANEW\n"
                    "aws_secret_access_key = new/secret+key\n",
                    "merge: missing section appended after a blank line");

        check_merge("[other]\nk = v\n\n", "app", new_key, 1, NULL,
                    "[other]\n"
                    "k = v\n"
                    "\n"
                    "[app]\n"
                    "aws_access_key_id = AKIANEW\n",
                    "merge: no second blank line before an appended section");

        check_merge("", "default", new_key, 2, no_token,
                    "[default]\n"
                    "aws_access_key_id = AKIANEW\n"
                    "aws_secret_access_key = new/secret+key\n",
                    "merge: empty file");

        check_merge("# just a comment", "default", new_key, 1, NULL,
                    "# just a comment\n"
                    "\n"
                    "[default]\n"
                    "aws_access_key_id = AKIANEW",
                    "merge: unterminated file stays unterminated");

        check_merge("[default]\n"
                    "aws_access_key_id = ASIAOLD\n"
                    "aws_session_token = FQoGZXIvYXdzEOLD\n"
                    "aws_secret_access_key = oldsecret\n"
                    "aws_security_token = FQoGZXIvYXdzEOLD\n"
                    "[b]\n"
                    "aws_session_token = keep\n",
                    "default", new_key, 2, no_token,
                    "[default]\n"
                    "aws_access_key_id = AKIANEW\n"
                    "aws_secret_access_key = new/secret+key\n"
                    "[b]\n"
                    "aws_session_token = keep\n",
                    "merge: session tokens removed only from the section");

        check_merge("[default]\n"
                    "aws_access_key_id = AKIAOLD\n"
                    "aws_session_token = tok",
                    "default", new_key, 2, no_token,
                    "[default]\n"
                    "aws_access_key_id = AKIANEW\n"
                    "aws_secret_access_key = new/secret+key",
                    "merge: removed unterminated last line, appended key stays unterminated");

        check_merge("[default]\n"
                    "aws_access_key_id = AKIAOLD\n"
                    "aws_session_token = tok",
                    "default", new_key, 1, no_token,
                    "[default]\n"
                    "aws_access_key_id = AKIANEW",
                    "merge: removed unterminated last line");

        check_merge("[default]\naws_access_key_id = AKIAOLD", "default", new_key, 1, NULL,
                    "[default]\naws_access_key_id = AKIANEW", "merge: replaced unterminated last line");

        check_merge("[a]\r\n"
                    "k = v\r\n"
                    "\r\n"
                    "[default]\r\n"
                    "aws_access_key_id = AKIAOLD   \r\n"
                    "aws_session_token = tok\r\n"
                    "# end\r\n",
                    "default", new_key, 2, no_token,
                    "[a]\r\n"
                    "k = v\r\n"
                    "\r\n"
                    "[default]\r\n"
                    "aws_access_key_id = AKIANEW   \r\n"
                    "aws_secret_access_key = new/secret+key\r\n"
                    "# end\r\n",
                    "merge: CRLF kept, added lines in CRLF");

        check_merge("[a]\r\nk = v\r\n", "default", new_key, 2, NULL,
                    "[a]\r\nk = v\r\n\r\n[default]\r\n"
                    "aws_access_key_id = AKIANEW\r\n"
                    "aws_secret_access_key = new/secret+key\r\n",
                    "merge: CRLF section appended");

        check_merge("[a]\nk = v\r\n[default]\r\nx = 1\n", "default", new_key, 1, NULL,
                    "[a]\nk = v\r\n[default]\r\nx = 1\n"
                    "aws_access_key_id = AKIANEW\n",
                    "merge: mixed endings kept per line, new lines take the first line's");

        check_merge("[default]\naws_access_key_id =\nx = 1\n", "default", new_key, 1, NULL,
                    "[default]\naws_access_key_id = AKIANEW\nx = 1\n", "merge: empty value filled in");

        check_merge("[default]\naws_access_key_id =    \nx = 1\n", "default", new_key, 1, NULL,
                    "[default]\naws_access_key_id = AKIANEW    \nx = 1\n",
                    "merge: empty value with trailing blanks");

        check_merge("[default]\n"
                    "aws_access_key_id = AKIAOLD\n"
                    "    continued\n"
                    "\n"
                    "    # comment in the value\n"
                    "    more\n"
                    "x = 1\n",
                    "default", new_key, 1, NULL,
                    "[default]\n"
                    "aws_access_key_id = AKIANEW\n"
                    "\n"
                    "    # comment in the value\n"
                    "x = 1\n",
                    "merge: continuation lines of a replaced value dropped");

        check_merge("[default]\n"
                    "  aws_access_key_id = AKIAOLD\n"
                    "  [b]\n"
                    "  k = v\n",
                    "default", new_key, 2, NULL,
                    "[default]\n"
                    "  aws_access_key_id = AKIANEW\n"
                    "  aws_secret_access_key = new/secret+key\n"
                    "  [b]\n"
                    "  k = v\n",
                    "merge: added keys take the indentation of the section's keys");

        check_merge("[default]\n"
                    "  [b]\n"
                    "  k = v\n",
                    "default", new_key, 1, NULL,
                    "[default]\n"
                    "  aws_access_key_id = AKIANEW\n"
                    "  [b]\n"
                    "  k = v\n",
                    "merge: keys added to a keyless section as deep as the next header");

        check_merge("[default]\n"
                    "aws_access_key_id = AKIAOLD\n"
                    "s3 =\n"
                    "  addressing_style = path\n"
                    "# after\n",
                    "default", new_key, 2, NULL,
                    "[default]\n"
                    "aws_access_key_id = AKIANEW\n"
                    "s3 =\n"
                    "  addressing_style = path\n"
                    "aws_secret_access_key = new/secret+key\n"
                    "# after\n",
                    "merge: appended after a nested block, not inside it");

        check_merge("[default]\nk = v\n", "default", NULL, 0, no_token, "[default]\nk = v\n",
                    "merge: nothing to do changes nothing");
        check_merge("[a]\nk = v\n", "default", NULL, 0, no_token, "[a]\nk = v\n",
                    "merge: removing from a missing section adds nothing");

        {
                _cleanup_secret_ Secret *out = NULL;
                static const char cfg[] = "[default]\nregion = x\n[profile work]\nregion = y\n";
                int r = ini_merge_full(cfg, strlen(cfg), "work", INI_CONFIG_PROFILE, new_key, 1, NULL, &out);

                ok_eq_str(r == 0 ? secret_str(out) : NULL,
                          "[default]\nregion = x\n[profile work]\nregion = y\naws_access_key_id = AKIANEW\n",
                          "merge: config profile");
                out = secret_free(out);
                r = ini_merge_full(cfg, strlen(cfg), "new", INI_CONFIG_PROFILE, new_key, 1, NULL, &out);
                ok_eq_str(r == 0 ? secret_str(out) : NULL,
                          "[default]\nregion = x\n[profile work]\nregion = y\n\n[profile new]\n"
                          "aws_access_key_id = AKIANEW\n",
                          "merge: config profile appended as [profile NAME]");
                out = secret_free(out);
                r = ini_merge_full("", 0, "default", INI_CONFIG_PROFILE, new_key, 1, NULL, &out);
                ok_eq_str(r == 0 ? secret_str(out) : NULL, "[default]\naws_access_key_id = AKIANEW\n",
                          "merge: config default appended as [default]");
        }
}

static void test_merge_refused(void) {
        static const IniAssignment newline[] = { { "aws_secret_access_key", "a\nb" } };
        static const IniAssignment cr[] = { { "aws_secret_access_key", "a\rb" } };
        static const IniAssignment lead[] = { { "aws_secret_access_key", " ab" } };
        static const IniAssignment trail[] = { { "aws_secret_access_key", "ab\t" } };
        static const IniAssignment badkey[] = { { "a=b", "x" } };
        static const IniAssignment hashkey[] = { { "#x", "x" } };
        static const IniAssignment emptykey[] = { { "", "x" } };
        static const IniAssignment twice[] = { { "k", "1" }, { "K", "2" } };
        static const IniAssignment tok[] = { { "aws_session_token", "t" } };
        static const char file[] = "[default]\nk = v\n";

        check_merge_err(file, "default", newline, 1, NULL, -EINVAL, "refuse: value with a newline");
        check_merge_err(file, "default", cr, 1, NULL, -EINVAL, "refuse: value with a CR");
        check_merge_err(file, "default", lead, 1, NULL, -EINVAL, "refuse: value with a leading blank");
        check_merge_err(file, "default", trail, 1, NULL, -EINVAL, "refuse: value with a trailing tab");
        check_merge_err(file, "default", badkey, 1, NULL, -EINVAL, "refuse: key with a separator");
        check_merge_err(file, "default", hashkey, 1, NULL, -EINVAL, "refuse: key with a comment character");
        check_merge_err(file, "default", emptykey, 1, NULL, -EINVAL, "refuse: empty key");
        check_merge_err(file, "default", twice, 2, NULL, -EINVAL, "refuse: key set twice");
        check_merge_err(file, "default", tok, 1, no_token, -EINVAL, "refuse: key both set and removed");
        check_merge_err(file, "de]fault", new_key, 1, NULL, -EINVAL, "refuse: ']' in a section name");
        check_merge_err(file, "de\nfault", new_key, 1, NULL, -EINVAL, "refuse: newline in a section name");
        check_merge_err(file, " default", new_key, 1, NULL, -EINVAL, "refuse: blank around a section name");
        check_merge_err(file, "DEFAULT", new_key, 1, NULL, -EINVAL, "refuse: [DEFAULT] is not a profile");
        check_merge_err(file, "", new_key, 1, NULL, -EINVAL, "refuse: empty section name");
        check_merge_err("[default]\nk = 1\n[default]\nj = 2\n", "default", new_key, 1, NULL, -EBADMSG,
                        "refuse: duplicate section");
        check_merge_err("[default]\nk = 1\n[x]\n[x]\n", "default", new_key, 1, NULL, -EBADMSG,
                        "refuse: duplicate section elsewhere in the file");
        check_merge_err("[default]\naws_access_key_id = 1\nAWS_ACCESS_KEY_ID = 2\n", "default", new_key, 1, NULL,
                        -EBADMSG, "refuse: duplicate key");
        check_merge_err("[default]\nk = 1\njunk\n", "default", new_key, 1, NULL, -EBADMSG,
                        "refuse: malformed line");
        {
                Secret *out = NULL;
                int r = ini_merge("[default]\nk = 1\0\n", 17, "default", new_key, 1, NULL, &out);

                ok(r == -EBADMSG && !out, "refuse: NUL byte (%d)", r);
                secret_free(out);
        }
        check_merge_err("[DEFAULT]\naws_session_token = stale\n[default]\nk = v\n", "default", new_key, 1,
                        no_token, -EBADMSG, "refuse: [DEFAULT] would keep supplying a removed key");
        {
                Secret *out = NULL;
                static const char cfg[] = "[default]\nk = 1\n[profile default]\nk = 2\n";
                int r = ini_merge_full(cfg, strlen(cfg), "default", INI_CONFIG_PROFILE, new_key, 1, NULL, &out);

                ok(r == -EBADMSG && !out, "refuse: ambiguous config profile (%d)", r);
                secret_free(out);
                r = ini_merge_full(cfg, strlen(cfg), "my profile", INI_CONFIG_PROFILE, new_key, 1, NULL, &out);
                ok(r == -EINVAL && !out, "refuse: config profile name with a blank (%d)", r);
                secret_free(out);
        }
}

/*
 * Property test: random files built from fragments that exercise every
 * line type; whenever a merge succeeds, the merged section reads back the
 * new values, removed keys are gone, other sections read exactly as
 * before, and the output re-merges to itself.
 */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static unsigned rnd(unsigned n) {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        return (unsigned) (rng_state % n);
}

static void test_random(void) {
        static const char *const fragments[] = {
                "[default]", "[a]", "[b]", "  [a]", "[DEFAULT]", "aws_access_key_id = K1", "Aws_Secret_Access_Key: S1",
                "aws_session_token=T", "  aws_access_key_id = K2", "    nested = 1", "k = v", "  k: w", "# c", "; c",
                "", "   ", "\t", "x =", "[default] junk", "garbage",
        };
        static const char *const eols[] = { "\n", "\r\n" };
        unsigned merged = 0, rounds = 3000, failures = 0;

        for (unsigned round = 0; round < rounds; round++) {
                char text[2048];
                size_t pos = 0;
                unsigned n_lines = rnd(12);
                const char *eol = eols[rnd(2)];
                _cleanup_secret_ Secret *out = NULL, *again = NULL;
                int r;

                for (unsigned i = 0; i < n_lines; i++) {
                        pos += (size_t) snprintf(text + pos, sizeof(text) - pos, "%s%s", fragments[rnd(ELEMENTSOF(fragments))],
                                                 i + 1 < n_lines || rnd(2) ? eol : "");
                }

                r = ini_merge(text, pos, "default", new_key, 2, no_token, &out);
                if (r == -EBADMSG) {
                        /* Refused files must be refused by the reader as well,
                         * unless only [DEFAULT] shadowing was the reason. */
                        Secret *s = NULL;
                        int g = ini_get(text, pos, "zz", "k", &s);
                        if (g != -EBADMSG && !strstr(text, "[DEFAULT]"))
                                failures++;
                        secret_free(s);
                        continue;
                }
                if (r < 0) {
                        failures++;
                        diag("round %u: merge failed %d", round, r);
                        continue;
                }
                merged++;

                {
                        _cleanup_secret_ Secret *id = NULL, *sec = NULL, *tk = NULL;

                        if (ini_get(out->data, out->len, "default", "aws_access_key_id", &id) < 0 ||
                            !streq(id->data, "AKIANEW") ||
                            ini_get(out->data, out->len, "default", "aws_secret_access_key", &sec) < 0 ||
                            !streq(sec->data, "new/secret+key") ||
                            ini_get(out->data, out->len, "default", "aws_session_token", &tk) != -ENOENT) {
                                failures++;
                                diag("round %u: merged section reads wrong: %s", round, text);
                        }
                }
                static const char *const others[] = { "a", "b", "DEFAULT" };
                static const char *const keys[] = { "aws_access_key_id", "aws_secret_access_key", "k", "x",
                                                    "aws_session_token", "nested" };
                for (size_t o = 0; o < ELEMENTSOF(others); o++)
                        for (size_t k = 0; k < ELEMENTSOF(keys); k++) {
                                _cleanup_secret_ Secret *before = NULL, *after = NULL;
                                int r1 = ini_get(text, pos, others[o], keys[k], &before);
                                int r2 = ini_get(out->data, out->len, others[o], keys[k], &after);

                                if (r1 != r2 || (r1 == 0 && !secret_eq(before, after))) {
                                        failures++;
                                        diag("round %u: [%s] %s changed", round, others[o], keys[k]);
                                }
                        }
                r = ini_merge(out->data, out->len, "default", new_key, 2, no_token, &again);
                if (r < 0 || !secret_eq(out, again)) {
                        failures++;
                        diag("round %u: not idempotent", round);
                }
        }
        ok(failures == 0, "random: %u files, %u merged, every property held", rounds, merged);
        ok(merged > rounds / 10, "random: enough files were mergeable (%u)", merged);
}

int main(void) {
        if (secret_init() < 0)
                return 1;
        test_read();
        test_continuations();
        test_default_section();
        test_profiles();
        test_malformed();
        test_hostile();
        test_merge();
        test_merge_refused();
        test_random();
        return tap_done();
}

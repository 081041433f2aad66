/* SPDX-License-Identifier: MIT */
/* test-json-secret.c — the flat JSON reader for documents with secrets (basic/json-secret.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "basic/json-secret.h"
#include "basic/util.h"
#include "tap.h"

enum { F_ID, F_SECRET, F_TOKEN, _F_MAX };

static int parse(const char *doc, JsonSecretField f[static _F_MAX]) {
        f[F_ID] = (JsonSecretField) { "AccessKeyId", NULL };
        f[F_SECRET] = (JsonSecretField) { "SecretAccessKey", NULL };
        f[F_TOKEN] = (JsonSecretField) { "Token", NULL };
        return json_secret_parse(doc, strlen(doc), f, _F_MAX);
}

static bool all_null(const JsonSecretField f[static _F_MAX]) {
        return !f[F_ID].value && !f[F_SECRET].value && !f[F_TOKEN].value;
}

static void test_imds_document(void) {
        const char *doc = "{\n  \"Code\" : \"Success\",\n  \"LastUpdated\" : \"2024-01-01T00:00:00Z\",\n"
                          "  \"Type\" : \"AWS-HMAC\",\n  \"AccessKeyId\" : \"ASIAEXAMPLE\",\n"
                          "  \"SecretAccessKey\" : \"wJalr\\/K7MDENG+bPxRfiCY\",\n  \"Token\" : \"tok==\",\n"
                          "  \"Expiration\" : \"2024-01-01T06:00:00Z\"\n}\n";
        JsonSecretField f[_F_MAX];

        ok(parse(doc, f) == 0, "IMDS document");
        ok(f[F_ID].value && streq(f[F_ID].value->data, "ASIAEXAMPLE") && f[F_ID].value->len == 11, "key id");
        ok(f[F_SECRET].value && streq(f[F_SECRET].value->data, "wJalr/K7MDENG+bPxRfiCY"), "secret, \\/ decoded");
        ok(f[F_TOKEN].value && streq(f[F_TOKEN].value->data, "tok=="), "token");
        json_secret_fields_clear(f, _F_MAX);
        ok(all_null(f), "clear sets every value to NULL");

        ok(parse("{\"AccessKeyId\":\"A\"}", f) == 0 && f[F_ID].value && !f[F_SECRET].value && !f[F_TOKEN].value,
           "absent members stay NULL");
        json_secret_fields_clear(f, _F_MAX);
        ok(parse(" \t\r\n{ } \n", f) == 0 && all_null(f), "empty object with blanks around");
        ok(json_secret_parse(NULL, 0, f, _F_MAX) == -EBADMSG && all_null(f), "no document is not an object");
}

static void test_escapes(void) {
        static const struct {
                const char *json, *want;
                size_t want_len;
        } cases[] = {
                { "\"a\\\"b\\\\c\\/d\"", "a\"b\\c/d", 7 },
                { "\"\\b\\f\\n\\r\\t\"", "\b\f\n\r\t", 5 },
                { "\"\\u0041\\u00e4\\u20AC\"", "A\xc3\xa4\xe2\x82\xac", 6 },
                { "\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80", 4 }, /* U+1F600, a surrogate pair */
                { "\"raw \xc3\xa4 bytes\"", "raw \xc3\xa4 bytes", 12 },
                { "\"\"", "", 0 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *doc = NULL;
                JsonSecretField f[_F_MAX];

                if (asprintf(&doc, "{\"Token\":%s}", cases[i].json) < 0)
                        return;
                ok(parse(doc, f) == 0 && f[F_TOKEN].value && f[F_TOKEN].value->len == cases[i].want_len &&
                           memcmp(f[F_TOKEN].value->data, cases[i].want, cases[i].want_len) == 0 &&
                           f[F_TOKEN].value->data[cases[i].want_len] == 0,
                   "decode %s", cases[i].json);
                json_secret_fields_clear(f, _F_MAX);
        }

        /* Escapes in member names count as the characters they stand for. */
        JsonSecretField f[_F_MAX];
        ok(parse("{\"Access\\u004beyId\":\"X\"}", f) == 0 && f[F_ID].value && streq(f[F_ID].value->data, "X"),
           "an escaped member name matches");
        json_secret_fields_clear(f, _F_MAX);
}

static void test_skipped_values(void) {
        static const char *const good[] = {
                "{\"Version\":1,\"AccessKeyId\":\"A\"}",
                "{\"n\":-0.5e+3,\"m\":1E-2,\"k\":0,\"AccessKeyId\":\"A\"}",
                "{\"t\":true,\"f\":false,\"z\":null,\"AccessKeyId\":\"A\"}",
                "{\"o\":{\"AccessKeyId\":\"nested, not ours\",\"l\":[1,[2,{}],\"s\"]},\"AccessKeyId\":\"A\"}",
                "{\"e\":[],\"o\":{},\"AccessKeyId\":\"A\"}",
                "{\"" /* a member name longer than any asked for */
                "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                "\":1,\"AccessKeyId\":\"A\"}",
                "{\"d\":[[[[[[[1]]]]]]],\"AccessKeyId\":\"A\"}", /* 8 levels with the object */
                "{\"x\":1,\"x\":2,\"AccessKeyId\":\"A\"}",     /* a repeated member we do not read */
        };

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                JsonSecretField f[_F_MAX];

                ok(parse(good[i], f) == 0 && f[F_ID].value && streq(f[F_ID].value->data, "A"), "skip: %s",
                   tap_escape(good[i]));
                json_secret_fields_clear(f, _F_MAX);
        }
}

static void test_refused(void) {
        static const char *const bad[] = {
                "",
                "   ",
                "[]",
                "\"AccessKeyId\"",
                "{",
                "{\"AccessKeyId\":\"A\"",
                "{\"AccessKeyId\":\"A\"}}",
                "{\"AccessKeyId\":\"A\"} {}",
                "{\"AccessKeyId\":\"A\"}x",
                "{\"AccessKeyId\":\"A\",}",
                "{,\"AccessKeyId\":\"A\"}",
                "{\"AccessKeyId\" \"A\"}",
                "{\"AccessKeyId\":}",
                "{AccessKeyId:\"A\"}",
                "{'AccessKeyId':'A'}",
                "{\"AccessKeyId\":\"A\",\"AccessKeyId\":\"B\"}", /* which one would a reader believe? */
                "{\"AccessKeyId\":1}",
                "{\"AccessKeyId\":null}",
                "{\"AccessKeyId\":[\"A\"]}",
                "{\"AccessKeyId\":\"a\\u0000b\"}",
                "{\"AccessKeyId\":\"\\ud83d\"}",
                "{\"AccessKeyId\":\"\\ude00\"}",
                "{\"AccessKeyId\":\"\\ud83d\\u0041\"}",
                "{\"AccessKeyId\":\"\\u12\"}",
                "{\"AccessKeyId\":\"\\u12g4\"}",
                "{\"AccessKeyId\":\"\\x41\"}",
                "{\"AccessKeyId\":\"\\'\"}",
                "{\"AccessKeyId\":\"a\nb\"}",
                "{\"AccessKeyId\":\"a\tb\"}",
                "{\"AccessKeyId\":\"A\\",
                "{\"x\":tru}",
                "{\"x\":nul}",
                "{\"x\":-}",
                "{\"x\":1.}",
                "{\"x\":.5}",
                "{\"x\":1e}",
                "{\"x\":+1}",
                "{\"x\":[1,]}",
                "{\"x\":[1 2]}",
                "{\"x\":{\"a\"}}",
                "{\"x\":{1:2}}",
                "{\"x\":[[[[[[[[1]]]]]]]]}", /* 9 levels with the object: too deep */
                "{\"x\":\"\x01\"}",
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                JsonSecretField f[_F_MAX];
                int r = parse(bad[i], f);

                ok(r == -EBADMSG && all_null(f), "refused (%d): %s", r, tap_escape(bad[i]));
        }

        /* A wanted member read before the error is given back. */
        JsonSecretField f[_F_MAX];
        ok(parse("{\"SecretAccessKey\":\"s\",\"Token\":7}", f) == -EBADMSG && all_null(f),
           "values already read are freed on failure");

        /* A NUL byte is neither blank nor part of a token. */
        static const char nul[] = "{\"AccessKeyId\":\"A\"}\0";
        f[F_ID] = (JsonSecretField) { "AccessKeyId", NULL };
        ok(json_secret_parse(nul, sizeof(nul) - 1, f, 1) == -EBADMSG && !f[F_ID].value, "trailing NUL refused");
        ok(json_secret_parse(nul, sizeof(nul) - 2, f, 1) == 0 && f[F_ID].value, "the length bounds the document");
        json_secret_fields_clear(f, 1);
        ok(json_secret_parse(nul, sizeof(nul) - 3, f, 1) == -EBADMSG && !f[F_ID].value,
           "a document cut short is refused");
}

int main(void) {
        if (secret_init() < 0)
                return 1;
        test_imds_document();
        test_escapes();
        test_skipped_values();
        test_refused();
        return tap_done();
}

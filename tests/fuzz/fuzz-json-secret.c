/* SPDX-License-Identifier: MIT */
/*
 * fuzz-json-secret.c — the reader of the JSON documents that hold secrets
 * (basic/json-secret.h) and its two users' parsers on top of it. Each must
 * refuse the input or give whole, NUL-terminated values, and free every
 * value it refuses (LeakSanitizer; secure memory is counted, see
 * secure-count.c).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "aws/provider.h"
#include "basic/json-secret.h"
#include "basic/util.h"
#include "fuzz-check.h"

static int fuzz_one(const uint8_t *data, size_t size) {
        JsonSecretField f[] = {
                { "AccessKeyId", NULL }, { "SecretAccessKey", NULL }, { "Token", NULL }, { "", NULL },
        };
        AwsCredentials *c = NULL;
        int r;

        if (secret_init() < 0)
                abort();

        r = json_secret_parse((const char *) data, size, f, ELEMENTSOF(f));
        check(r == 0 || r == -EBADMSG);
        for (size_t i = 0; i < ELEMENTSOF(f); i++) {
                const Secret *v = f[i].value;

                check(r == 0 || !v);
                /* \u0000 and raw control bytes are refused: a value is one C string. */
                check(!v || (v->len <= size && v->data[v->len] == 0 && strlen(v->data) == v->len));
        }
        json_secret_fields_clear(f, ELEMENTSOF(f));
        for (size_t i = 0; i < ELEMENTSOF(f); i++)
                check(!f[i].value);

        r = aws_credentials_from_imds_document((const char *) data, size, &c);
        check(r == 0 || r == -EBADMSG || r == -ENOKEY || r == -EINVAL);
        check((r == 0) == (c != NULL));
        if (c) {
                check(c->access_key_id && c->secret_access_key && c->secret_access_key->len > 0);
                check(streq(c->source, "imds"));
        }
        aws_credentials_unref(c);
        return 0;
}

FUZZ_ENTRY_NO_SECRET_LEFT(fuzz_one)

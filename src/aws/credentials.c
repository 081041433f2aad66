/* SPDX-License-Identifier: MIT */
#include "aws/credentials.h"

#include <errno.h>
#include <string.h>

#define KEY_ID_MAX 128U

/* The key id goes into the Authorization header's Credential= field,
 * where '/', ',', blanks or line breaks would change its meaning. */
static bool valid_key_id(const char *s) {
        size_t n = 0;

        if (!s || !*s)
                return false;
        for (; *s; s++, n++)
                if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
                      *s == '.' || *s == '_' || *s == '-'))
                        return false;
        return n <= KEY_ID_MAX;
}

int aws_credentials_new(const char *access_key_id, const char *secret, size_t secret_len,
                        const char *session_token, usec_t expiration, const char *source,
                        AwsCredentials **ret) {
        AwsCredentials *c;

        if (!ret || !valid_key_id(access_key_id) || !secret || secret_len == 0 || !memory_no_controls(secret, secret_len))
                return -EINVAL;
        if (session_token && (!*session_token || !memory_no_controls(session_token, strlen(session_token))))
                return -EINVAL;

        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->n_ref = 1;
        c->expiration = expiration;
        c->source = source ?: "static";
        c->access_key_id = strdup(access_key_id);
        c->secret_access_key = secret_dup(secret, secret_len);
        if (session_token)
                c->session_token = secret_dup(session_token, strlen(session_token));
        if (!c->access_key_id || !c->secret_access_key || (session_token && !c->session_token)) {
                aws_credentials_unref(c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

AwsCredentials *aws_credentials_ref(AwsCredentials *c) {
        if (c)
                c->n_ref++;
        return c;
}

AwsCredentials *aws_credentials_unref(AwsCredentials *c) {
        if (!c || --c->n_ref > 0)
                return NULL;
        free(c->access_key_id);
        secret_free(c->secret_access_key);
        secret_free(c->session_token);
        free(c);
        return NULL;
}


/* SPDX-License-Identifier: MIT */
/*
 * credentials.h — a set of AWS credentials: what a request is signed with.
 *
 * AwsCredentials is immutable and reference counted, so a request in flight
 * keeps the credentials it was signed with while a refresh swaps in new ones
 * (provider.h finds keyrotd's own; a new key under test is built here).
 * Below the transport: http.h signs with it, and it knows nothing of where
 * credentials come from.
 */
#pragma once

#include "basic/secret.h"
#include "basic/util.h"

typedef struct AwsCredentials {
        unsigned n_ref;
        char *access_key_id;
        Secret *secret_access_key;
        Secret *session_token; /* NULL for long-term keys */
        usec_t expiration;     /* CLOCK_REALTIME; 0 = does not expire */
        const char *source;    /* "environment", "shared-file", "imds", "static" */
} AwsCredentials;

/*
 * Build from explicit values (the secret is copied into secure memory).
 * @source must outlive the credentials (a string literal). -EINVAL for an
 * empty or odd key id (only [A-Za-z0-9._-], at most 128), an empty secret,
 * or a secret or token with control characters (they reach HTTP headers
 * or the signature).
 */
int aws_credentials_new(const char *access_key_id, const char *secret, size_t secret_len,
                        const char *session_token, usec_t expiration, const char *source,
                        AwsCredentials **ret);
AwsCredentials *aws_credentials_ref(AwsCredentials *c);
AwsCredentials *aws_credentials_unref(AwsCredentials *c);
static inline void aws_credentials_unrefp(AwsCredentials **c) {
        aws_credentials_unref(*c);
}

/* SPDX-License-Identifier: MIT */
/*
 * credentials.h — keyrotd's own AWS identity: what signs its IAM calls.
 *
 * Resolved in the AWS SDKs' order: the environment (AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN); the shared credentials file
 * (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials) with the profile from
 * the inventory, AWS_PROFILE or "default"; the EC2 instance role through
 * IMDSv2 (AWS_EC2_METADATA_SERVICE_ENDPOINT overrides the address;
 * AWS_EC2_METADATA_DISABLED=true skips it). Instance-role credentials are
 * refreshed on an sd-event timer before they expire.
 *
 * AwsCredentials is immutable and reference counted, so a request in flight
 * keeps the credentials it was signed with while a refresh swaps in new ones.
 */
#pragma once

#include "secret.h"
#include "util.h"

typedef struct HttpClient HttpClient;

typedef struct AwsCredentials {
        unsigned n_ref;
        char *access_key_id;
        Secret *secret_access_key;
        Secret *session_token; /* NULL for long-term keys */
        usec_t expiration;     /* CLOCK_REALTIME; 0 = does not expire */
        const char *source;    /* "environment", "shared-file", "imds", "static" */
} AwsCredentials;

/* Build from explicit values (the secret is copied into secure memory). */
int aws_credentials_new(const char *access_key_id, const char *secret, size_t secret_len,
                        const char *session_token, usec_t expiration, const char *source,
                        AwsCredentials **ret);
AwsCredentials *aws_credentials_ref(AwsCredentials *c);
AwsCredentials *aws_credentials_unref(AwsCredentials *c);
static inline void aws_credentials_unrefp(AwsCredentials **c) {
        aws_credentials_unref(*c);
}

typedef struct CredentialsOptions {
        const char *profile;            /* inventory aws.credentials.profile; NULL = AWS_PROFILE or "default" */
        const char *shared_file;        /* NULL = AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials */
} CredentialsOptions;

typedef struct CredentialsProvider CredentialsProvider;

/*
 * Resolve the chain once, synchronously (IMDS through http_perform), and
 * arm the refresh timer on the HTTP client's event loop when the result
 * expires. -ENOKEY when no source has credentials; -EINVAL with *ret_error
 * set for a malformed source (e.g. a profile with only a key id).
 */
int credentials_provider_new(HttpClient *http, const CredentialsOptions *opts,
                             CredentialsProvider **ret, char **ret_error);
CredentialsProvider *credentials_provider_free(CredentialsProvider *p);
static inline void credentials_provider_freep(CredentialsProvider **p) {
        credentials_provider_free(*p);
}
/* The credentials to sign with now (borrowed; take a ref to keep them). */
AwsCredentials *credentials_provider_current(CredentialsProvider *p);

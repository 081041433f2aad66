/* SPDX-License-Identifier: MIT */
/*
 * provider.h — keyrotd's own AWS identity: what signs its IAM calls.
 *
 * Resolved in the AWS SDKs' order: the environment (AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN); the shared credentials file
 * (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials) with the profile from
 * the inventory, AWS_PROFILE or "default"; the EC2 instance role through
 * IMDSv2 (AWS_EC2_METADATA_SERVICE_ENDPOINT overrides the address;
 * AWS_EC2_METADATA_DISABLED=true skips it). Instance-role credentials are
 * refreshed on an sd-event timer before they expire.
 *
 * Above the transport: the instance role is fetched with http.h, which
 * signs with the credentials (credentials.h) this module hands out.
 */
#pragma once

#include "aws/credentials.h"
#include "aws/http.h"
#include "basic/secret.h"
#include "basic/util.h"

/*
 * Parse an instance-role credentials document (the JSON IMDS serves at
 * /latest/meta-data/iam/security-credentials/ROLE) without copying any of
 * it outside secure memory. At most 64 KiB. Returns 0, -EBADMSG (not JSON
 * of the expected shape, AccessKeyId or SecretAccessKey missing, bad
 * Expiration), -ENOKEY ("Code" present and not "Success"), -EINVAL
 * (values aws_credentials_new() refuses), -ENOMEM. Exposed for tests/fuzzing.
 */
int aws_credentials_from_imds_document(const char *doc, size_t len, AwsCredentials **ret);
typedef struct CredentialsOptions {
        const char *profile;            /* inventory aws.credentials.profile; NULL = AWS_PROFILE or "default" */
        const char *shared_file;        /* NULL = AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials */
        usec_t refresh_retry;           /* after a failed refresh; 0 = CREDENTIALS_REFRESH_RETRY */
} CredentialsOptions;

/* Refresh this long before the credentials expire (halfway through when
 * less than twice this is left), and retry this long after a failure. */
#define CREDENTIALS_REFRESH_BEFORE (5 * USEC_PER_MINUTE)
#define CREDENTIALS_REFRESH_RETRY (1 * USEC_PER_MINUTE)

typedef struct CredentialsProvider CredentialsProvider;

/*
 * Resolve the chain once, synchronously (IMDS through http_perform), and
 * arm the refresh timer on the HTTP client's event loop when the result
 * expires. -ENOKEY when no source has credentials; -EINVAL with *ret_error
 * set for a malformed source (e.g. a profile with only a key id).
 *
 * Details: a profile chosen explicitly (opts->profile or AWS_PROFILE) must
 * exist and hold a key, or the result is -ENOKEY: an explicit choice never
 * falls through to the instance role. Only the implicit "default" profile
 * does. Session tokens come from aws_session_token (or the legacy
 * aws_security_token). IMDS is IMDSv2 only (no fallback to v1).
 * @http may be NULL: IMDS is then not consulted and nothing refreshes.
 * On any failure *ret_error (if @ret_error is not NULL; *ret_error must be
 * NULL or malloc'd, it is replaced) says why, naming file and profile;
 * free() it. Env and file credentials never change after this call.
 */
int credentials_provider_new(HttpClient *http, const CredentialsOptions *opts,
                             CredentialsProvider **ret, char **ret_error);
/* Cancels a refresh in flight. Must not be called from the refresh callback. */
CredentialsProvider *credentials_provider_free(CredentialsProvider *p);
static inline void credentials_provider_freep(CredentialsProvider **p) {
        credentials_provider_free(*p);
}
/* The credentials to sign with now (borrowed; take a ref to keep them). */
AwsCredentials *credentials_provider_current(CredentialsProvider *p);

/*
 * Called from the event loop after every refresh attempt: error 0 when new
 * credentials are current, else a negative errno and a message (the old
 * credentials stay current; the next attempt is armed already). For the
 * daemon to log at its boundary; core code never logs above debug.
 */
typedef void (*credentials_refresh_callback_t)(CredentialsProvider *p, int error, const char *message,
                                               void *userdata);
void credentials_provider_set_refresh_callback(CredentialsProvider *p, credentials_refresh_callback_t cb,
                                               void *userdata);
/* When the next refresh is due (CLOCK_REALTIME), or USEC_INFINITY. */
usec_t credentials_provider_next_refresh(CredentialsProvider *p);

/* SPDX-License-Identifier: MIT */
/*
 * verify.h — proving that a key does its job and nothing more
 * (docs/DESIGN.md §1 step 3). One engine for a rotation's new key, for
 * `keyrotctl adopt` and for `keyrotctl provision`.
 *
 * The user's S3 check (verify.check on verify.bucket), signed with the key
 * under test, must succeed `consecutive` times in a row, checks `interval`
 * apart by their starts, each on a fresh connection: a new key is known to
 * some IAM replicas before others, and one success proves little. Any
 * other answer but AccessDenied and a missing bucket or object is taken
 * for propagation (or a passing fault) and retried with capped exponential
 * backoff until `timeout`. AccessDenied is a policy problem and ends it at
 * once. With deny_probe, the key must also be denied an IAM call (and
 * ListBucket on deny_bucket, when set), once, in the wait after the first
 * success: a key that can do more than its S3 job fails.
 *
 * Runs on the AWS client's event loop and never blocks it; verify_run()
 * drives the loop itself for programs without one.
 */
#pragma once

#include <stdbool.h>

#include "aws/client.h"
#include "aws/s3.h"
#include "inventory/inventory.h"

typedef enum VerifyOutcome {
        VERIFY_OK,
        VERIFY_DENIED,          /* AccessDenied on the check: the policy does not grant it */
        VERIFY_CANNOT_SUCCEED,  /* the bucket or the object is missing */
        VERIFY_OVER_PRIVILEGED, /* a deny probe was allowed */
        VERIFY_PROBE_USELESS,   /* deny_bucket does not exist: denial would prove nothing */
        VERIFY_TIMEOUT,         /* no streak of successes within the timeout */
        VERIFY_ERROR,           /* a check could not be started */
        _VERIFY_OUTCOME_MAX,
} VerifyOutcome;

typedef struct VerifyOptions {
        const InventoryVerify *verify; /* the check, its bucket and key, timeout, consecutive, interval, probes */
        const char *user;              /* the IAM user the key belongs to (the IAM deny probe asks about it) */
        AwsCredentials *creds;         /* the key under test */
        const char *subject;           /* how messages name it: "the new key"; NULL: "the key" */
        unsigned consecutive;          /* 0: verify->consecutive */
        usec_t timeout;                /* 0: verify->timeout */
        bool no_probes;                /* skip the deny probes */
        /* A get:KEY check answered NoSuchKey or 404 counts as access: the
         * key may read there, the object does not exist (a prefix grant). */
        bool missing_object_ok;
        /* AccessDenied is retried like propagation: the policy was put
         * moments ago and IAM may not know it everywhere yet. */
        bool denied_is_propagation;
} VerifyOptions;

typedef struct VerifyResult {
        VerifyOutcome outcome;
        /* For the audit's KEYROTD_ERROR: the AWS error code, or
         * "OverPrivileged", "timeout", "NoProbeBucket"; NULL on success. */
        const char *code;
        char request_id[128];
        unsigned checks;  /* S3 checks made */
        char message[384]; /* why it failed, naming the check and the bucket */
} VerifyResult;

typedef struct Verification Verification;
typedef void (*verify_done_t)(const VerifyResult *res, void *userdata);

/**
 * verify_start() - start verifying o->creds; @done runs once from the loop,
 * never from inside this call. The options (and what they point to) must
 * stay valid until then. *@ret (may be NULL) is valid until @done runs or
 * verify_cancel() is called. Returns 0, -EINVAL or -ENOMEM.
 */
int verify_start(AwsClient *aws, const VerifyOptions *o, verify_done_t done, void *userdata, Verification **ret);
/* Stop without calling done. NULL is a no-op. */
void verify_cancel(Verification *v);

/* verify_start() and wait, on the client's own loop. Returns 0 (and *ret
 * says how it went) or a negative errno when the loop failed. */
int verify_run(AwsClient *aws, const VerifyOptions *o, VerifyResult *ret);

/**
 * verify_check_start() - one S3 check: verify.check on verify.bucket with
 * o->creds. With read_only, a put:KEY check runs as ListObjectsV2 instead
 * (and *ret_substituted says so): a dry run writes nothing.
 */
int verify_check_start(AwsClient *aws, const InventoryVerify *v, S3Options *o, bool read_only, aws_callback_t cb,
                       void *userdata, AwsCall **ret, bool *ret_substituted);

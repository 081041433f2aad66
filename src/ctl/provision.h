/* SPDX-License-Identifier: MIT */
/*
 * provision.h — keyrotctl provision: create (or take over) an S3-only IAM
 * user, put its least-privilege inline policy, create its first access key,
 * seal it, write its targets and verify it on S3. Idempotent:
 * a second run with the same arguments makes no mutating call.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "runtime.h"

#define PROVISION_POLICY_NAME "keyrotd-s3"
/* CreateAccessKey calls one provision makes while their outcomes stay unknown. */
#define PROVISION_CREATE_ATTEMPTS 3U
#define PROVISION_TAG_KEY "managed-by"
#define PROVISION_TAG_VALUE "keyrotd"

typedef struct ProvisionOptions {
        const char *user;
        char **buckets; /* n_buckets names */
        size_t n_buckets;
        const char *prefix; /* NULL = whole buckets */
        bool read_only;
        bool take_over;
} ProvisionOptions;

/* Checks names and prefix; on failure prints why and returns -EINVAL. */
int provision_check_options(const ProvisionOptions *o);

/* The inline policy document (compact JSON, stable key order: the same
 * options always give the same bytes). Caller frees. */
int provision_policy(const ProvisionOptions *o, bool pretty, char **ret);

/* Runs the whole provisioning; prints progress to stdout and problems to
 * stderr. Returns an exit code: 0 ok, 1 failure, 2 usage/configuration. */
int provision_run(Runtime *rt, const ProvisionOptions *o);

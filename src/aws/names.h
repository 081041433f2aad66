/* SPDX-License-Identifier: MIT */
/*
 * names.h — the one definition of each kind of name keyrotd takes from an
 * operator and hands to AWS or to an AWS tool: IAM user and role names,
 * S3 bucket names, and profile names of the shared credentials file.
 *
 * The inventory check, the control socket, keyrotctl and the AWS calls
 * all ask here, so a name `keyrotd --check-config` accepts is never
 * refused later at run time. Each kind has a _problem() function that
 * says which rule a name breaks, as a phrase to follow the name in a
 * message ("must be 3 to 63 characters long"), and a _valid() shorthand.
 * A NULL name is invalid ("is missing").
 */
#pragma once

#include <stdbool.h>

#include "basic/util.h"

/* AWS limits: IAM user and role names 1..64, bucket names 3..63. */
#define IAM_USER_NAME_MAX 64U
#define IAM_ROLE_NAME_MAX 64U
#define S3_BUCKET_NAME_MIN 3U
#define S3_BUCKET_NAME_MAX 63U
/* Not an AWS limit (the files have none): a bound for a hostile inventory. */
#define AWS_PROFILE_NAME_MAX 128U

/* IAM's alphabet for user, role, group and policy names: [\w+=,.@-]. */
#define IAM_NAME_CHARSET ALPHANUMERICAL "_+=,.@-"

/* An IAM user name: 1..64 of [A-Za-z0-9+=,.@_-]. */
const char *iam_user_name_problem(const char *s);
bool iam_user_name_valid(const char *s);

/* An IAM role name (the instance role IMDS names): 1..64 of the same. */
bool iam_role_name_valid(const char *s);

/*
 * An S3 general-purpose bucket name that keyrotd can reach: S3's naming
 * rules, plus what addressing the bucket by URL needs (see names.c).
 */
const char *s3_bucket_name_problem(const char *s);
bool s3_bucket_name_valid(const char *s);

/*
 * A profile name keyrotd may read from or write into a shared credentials
 * file ("[NAME]"): 1..AWS_PROFILE_NAME_MAX of [A-Za-z0-9_.+/@:%-], not
 * "DEFAULT".
 */
const char *aws_profile_name_problem(const char *s);
bool aws_profile_name_valid(const char *s);

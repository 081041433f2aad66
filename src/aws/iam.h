/* SPDX-License-Identifier: MIT */
/*
 * iam.h — the IAM Query API calls keyrotd makes, as asynchronous calls on
 * an AwsClient (see client.h for results and waiting). Each call signs with
 * `as` when given (e.g. a brand-new key proving what it may not do), else
 * with keyrotd's own identity.
 *
 * CreateAccessKey is never retried by the transport: a create that timed
 * out may have succeeded, and only ListAccessKeys can tell.
 */
#pragma once

#include "aws/client.h"

#define IAM_API_VERSION "2010-05-08"

/* Follows Marker/IsTruncated to the end; result.list_keys holds every key. */
int iam_list_access_keys(AwsClient *c, AwsCredentials *as, const char *user, aws_callback_t cb, void *userdata,
                         AwsCall **ret);
int iam_create_access_key(AwsClient *c, const char *user, aws_callback_t cb, void *userdata, AwsCall **ret);
int iam_update_access_key(AwsClient *c, const char *user, const char *key_id, KeyStatus status, aws_callback_t cb,
                          void *userdata, AwsCall **ret);
int iam_delete_access_key(AwsClient *c, const char *user, const char *key_id, aws_callback_t cb, void *userdata,
                          AwsCall **ret);
int iam_get_access_key_last_used(AwsClient *c, const char *key_id, aws_callback_t cb, void *userdata, AwsCall **ret);
/* user NULL: the caller's own identity. */
int iam_get_user(AwsClient *c, AwsCredentials *as, const char *user, aws_callback_t cb, void *userdata, AwsCall **ret);
/* tags: NULL-terminated key, value, key, value, ... or NULL. */
int iam_create_user(AwsClient *c, const char *user, const char *const *tags, aws_callback_t cb, void *userdata,
                    AwsCall **ret);
int iam_put_user_policy(AwsClient *c, const char *user, const char *policy_name, const char *document,
                        aws_callback_t cb, void *userdata, AwsCall **ret);
/* Tags of user (one page: IAM allows at most 50). */
int iam_list_user_tags(AwsClient *c, const char *user, aws_callback_t cb, void *userdata, AwsCall **ret);
/* tags: as for iam_create_user. */
int iam_tag_user(AwsClient *c, const char *user, const char *const *tags, aws_callback_t cb, void *userdata,
                 AwsCall **ret);
/* NoSuchEntity when the user has no inline policy of that name. */
int iam_get_user_policy(AwsClient *c, const char *user, const char *policy_name, aws_callback_t cb, void *userdata,
                        AwsCall **ret);

/*
 * The audit's read-only calls. The list calls return one page each: when
 * the result says is_truncated, call again with its marker (NULL for the
 * first page). Names and ARNs come back checked against IAM's alphabets
 * (xml.h); policy documents as IAM sends them (policy/check.h decodes).
 */
int iam_list_users(AwsClient *c, const char *marker, aws_callback_t cb, void *userdata, AwsCall **ret);
int iam_list_user_policies(AwsClient *c, const char *user, const char *marker, aws_callback_t cb, void *userdata,
                           AwsCall **ret);
int iam_list_attached_user_policies(AwsClient *c, const char *user, const char *marker, aws_callback_t cb,
                                    void *userdata, AwsCall **ret);
int iam_list_groups_for_user(AwsClient *c, const char *user, const char *marker, aws_callback_t cb, void *userdata,
                             AwsCall **ret);
int iam_list_group_policies(AwsClient *c, const char *group, const char *marker, aws_callback_t cb, void *userdata,
                            AwsCall **ret);
int iam_list_attached_group_policies(AwsClient *c, const char *group, const char *marker, aws_callback_t cb,
                                     void *userdata, AwsCall **ret);
int iam_get_group_policy(AwsClient *c, const char *group, const char *policy_name, aws_callback_t cb,
                         void *userdata, AwsCall **ret);
int iam_get_policy(AwsClient *c, const char *policy_arn, aws_callback_t cb, void *userdata, AwsCall **ret);
int iam_get_policy_version(AwsClient *c, const char *policy_arn, const char *version_id, aws_callback_t cb,
                           void *userdata, AwsCall **ret);

/* SPDX-License-Identifier: MIT */
/*
 * types.h — what IAM and S3 answer, as keyrotd's own types: errors, access
 * keys, users, tags, policies, listings. The XML parsers (xml.h) fill
 * them, the calls (iam.h, s3.h) return them, and the engine decides on
 * them; none of those needs the others' internals.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "aws/names.h"
#include "basic/secret.h"

/* IAM names: user names up to 64 (names.h), key ids up to 128 (AWS limits). */
#define AWS_USER_NAME_MAX IAM_USER_NAME_MAX
#define AWS_KEY_ID_MAX 128

typedef struct AwsError {
        char type[16];        /* "Sender", "Receiver", or "" (S3 has no type) */
        char code[128];       /* e.g. "Throttling", "InvalidAccessKeyId" */
        char message[512];    /* truncated to fit, still NUL-terminated */
        char request_id[128]; /* RequestId (IAM) / RequestId (S3) */
} AwsError;

typedef enum KeyStatus {
        KEY_STATUS_ACTIVE,
        KEY_STATUS_INACTIVE,
        _KEY_STATUS_MAX,
        _KEY_STATUS_INVALID = -1,
} KeyStatus;

const char *key_status_to_string(KeyStatus s);
KeyStatus key_status_from_string(const char *s);

typedef struct AccessKeyMeta {
        char access_key_id[AWS_KEY_ID_MAX + 1];
        char user_name[AWS_USER_NAME_MAX + 1];
        KeyStatus status;
        time_t create_date; /* UTC seconds */
} AccessKeyMeta;

typedef struct ListAccessKeysResult {
        AccessKeyMeta *keys;
        size_t n_keys;
        bool is_truncated;
        char *marker; /* NULL unless is_truncated */
        char request_id[128];
} ListAccessKeysResult;
void list_access_keys_result_done(ListAccessKeysResult *r);
/* The key with this id, or NULL (also for a NULL or empty id). */
const AccessKeyMeta *list_access_keys_find(const ListAccessKeysResult *l, const char *id);

typedef struct CreateAccessKeyResult {
        AccessKeyMeta meta;
        Secret *secret_access_key;
        char request_id[128];
} CreateAccessKeyResult;
void create_access_key_result_done(CreateAccessKeyResult *r);

typedef struct AccessKeyLastUsed {
        char user_name[AWS_USER_NAME_MAX + 1];
        time_t last_used_date; /* 0: never used */
        char service_name[64]; /* "N/A" when never used */
        char region[64];
        char request_id[128];
} AccessKeyLastUsed;

typedef struct IamUser {
        char user_name[AWS_USER_NAME_MAX + 1];
        char user_id[129];
        char arn[2049];
        char path[513];
        time_t create_date;
        char request_id[128];
} IamUser;

/* ListUserTags: IAM allows at most 50 tags per user, and one page holds
 * 100, so keyrotd never asks for a second page. */
typedef struct IamTag {
        char key[129];
        char value[257];
} IamTag;

typedef struct ListUserTagsResult {
        IamTag *tags; /* NULL when n_tags is 0 */
        size_t n_tags;
        bool is_truncated;
        char request_id[128];
} ListUserTagsResult;
void list_user_tags_result_done(ListUserTagsResult *r);

/* GetUserPolicy: the document as IAM returns it (URL-encoded JSON). */
typedef struct UserPolicyResult {
        char user_name[AWS_USER_NAME_MAX + 1];
        char policy_name[129];
        char *document;
        char request_id[128];
} UserPolicyResult;
void user_policy_result_done(UserPolicyResult *r);

/* IAM group, policy and version names (AWS limits: 128 characters of
 * [\w+=,.@-]; version ids "v1"). */
#define AWS_NAME_MAX 128

/* ListUsers (each member's UserName), ListUserPolicies and
 * ListGroupPolicies (the PolicyNames members), ListGroupsForUser (each
 * member's GroupName): one page of names. marker is NULL unless
 * is_truncated; IsTruncated without a non-empty Marker is -EBADMSG. */
typedef struct IamName {
        char name[AWS_NAME_MAX + 1];
} IamName;

typedef struct IamNameList {
        IamName *names; /* NULL when n_names is 0 */
        size_t n_names;
        bool is_truncated;
        char *marker;
        char request_id[128];
} IamNameList;
void iam_name_list_done(IamNameList *l);

/* ListAttachedUserPolicies / ListAttachedGroupPolicies: one page; each
 * member needs PolicyArn (at most XML_ARN_MAX bytes). */
#define XML_ARN_MAX 2048U
typedef struct AttachedPolicy {
        char policy_name[AWS_NAME_MAX + 1];
        char *policy_arn;
} AttachedPolicy;

typedef struct ListAttachedPoliciesResult {
        AttachedPolicy *policies; /* NULL when n_policies is 0 */
        size_t n_policies;
        bool is_truncated;
        char *marker;
        char request_id[128];
} ListAttachedPoliciesResult;
void list_attached_policies_result_done(ListAttachedPoliciesResult *r);

/* GetGroupPolicy: like GetUserPolicy, for a group. */
typedef struct GroupPolicyResult {
        char group_name[AWS_NAME_MAX + 1];
        char policy_name[AWS_NAME_MAX + 1];
        char *document;
        char request_id[128];
} GroupPolicyResult;
void group_policy_result_done(GroupPolicyResult *r);

/* GetPolicy: PolicyName and DefaultVersionId required. */
typedef struct IamPolicy {
        char policy_name[AWS_NAME_MAX + 1];
        char default_version_id[AWS_NAME_MAX + 1];
        char request_id[128];
} IamPolicy;

/* GetPolicyVersion: Document (URL-encoded on AWS, plain JSON on moto; at
 * most XML_POLICY_MAX) and VersionId required. */
typedef struct PolicyVersionResult {
        char *document;
        char version_id[AWS_NAME_MAX + 1];
        bool is_default;
        char request_id[128];
} PolicyVersionResult;
void policy_version_result_done(PolicyVersionResult *r);

typedef struct ListObjectsResult {
        unsigned key_count;
        bool is_truncated;
        char *next_continuation_token; /* NULL unless is_truncated */
        char **keys;                   /* NULL-terminated; NULL when none */
        char request_id[128];
} ListObjectsResult;
void list_objects_result_done(ListObjectsResult *r);

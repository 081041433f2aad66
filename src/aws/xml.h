/* SPDX-License-Identifier: MIT */
/*
 * xml.h — the IAM and S3 response documents, parsed with expat.
 *
 * Every input is hostile: documents over XML_MAX_DOCUMENT, elements nested
 * deeper than XML_MAX_DEPTH, lists longer than XML_MAX_ITEMS, text fields
 * longer than their bound (never silently truncated, except
 * AwsError.message), DOCTYPE declarations (hence any entity but the five
 * predefined ones and character references), anything but UTF-8, a wrong
 * root element, a missing required field or one value given twice are
 * refused with -EBADMSG. Fields are matched by their path from the root,
 * by local name (the IAM/S3 namespace is the root's; elements of another
 * namespace are ignored like unknown ones). Key ids, user names and user
 * ids must use IAM's documented alphabets, the secret visible ASCII.
 * Nothing is half-filled on error: the ret outputs are untouched. On
 * success ret is overwritten whole: release an earlier result first.
 * Errors: -EBADMSG (not such a document), -ENOMEM, -EINVAL (bad arguments).
 *
 * The CreateAccessKey response carries the only copy of a new secret; its
 * parser runs expat on a memory suite backed by secure memory, so no byte
 * of the secret lands in ordinary heap.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "aws/names.h"
#include "basic/secret.h"

#define XML_MAX_DOCUMENT (4U * 1024U * 1024U)
#define XML_MAX_DEPTH 32U
#define XML_MAX_ITEMS 10000U

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

int xml_parse_list_users(const char *doc, size_t len, IamNameList *ret);
int xml_parse_list_user_policies(const char *doc, size_t len, IamNameList *ret);
int xml_parse_list_group_policies(const char *doc, size_t len, IamNameList *ret);
int xml_parse_list_groups_for_user(const char *doc, size_t len, IamNameList *ret);

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

int xml_parse_list_attached_user_policies(const char *doc, size_t len, ListAttachedPoliciesResult *ret);
int xml_parse_list_attached_group_policies(const char *doc, size_t len, ListAttachedPoliciesResult *ret);

/* GetGroupPolicy: like GetUserPolicy, for a group. */
typedef struct GroupPolicyResult {
        char group_name[AWS_NAME_MAX + 1];
        char policy_name[AWS_NAME_MAX + 1];
        char *document;
        char request_id[128];
} GroupPolicyResult;
void group_policy_result_done(GroupPolicyResult *r);
int xml_parse_group_policy(const char *doc, size_t len, GroupPolicyResult *ret);

/* GetPolicy: PolicyName and DefaultVersionId required. */
typedef struct IamPolicy {
        char policy_name[AWS_NAME_MAX + 1];
        char default_version_id[AWS_NAME_MAX + 1];
        char request_id[128];
} IamPolicy;
int xml_parse_policy(const char *doc, size_t len, IamPolicy *ret);

/* GetPolicyVersion: Document (URL-encoded on AWS, plain JSON on moto; at
 * most XML_POLICY_MAX) and VersionId required. */
typedef struct PolicyVersionResult {
        char *document;
        char version_id[AWS_NAME_MAX + 1];
        bool is_default;
        char request_id[128];
} PolicyVersionResult;
void policy_version_result_done(PolicyVersionResult *r);
int xml_parse_policy_version(const char *doc, size_t len, PolicyVersionResult *ret);

typedef struct ListObjectsResult {
        unsigned key_count;
        bool is_truncated;
        char *next_continuation_token; /* NULL unless is_truncated */
        char **keys;                   /* NULL-terminated; NULL when none */
        char request_id[128];
} ListObjectsResult;
void list_objects_result_done(ListObjectsResult *r);

/* Documents that carry only ResponseMetadata (UpdateAccessKey,
 * DeleteAccessKey, PutUserPolicy, ...): validates the root element name
 * ("UpdateAccessKeyResponse", ...) and extracts the RequestId ("" if none). */
int xml_parse_empty_response(const char *doc, size_t len, const char *root, char request_id[static 128]);

/* An AWS error body: IAM/STS <ErrorResponse><Error>… (moto's signature
 * errors: <ErrorResponse><Errors><Error>…) or S3 <Error>…; Code required.
 * -EBADMSG when the body is anything else (an HTML page from a proxy or
 * from moto, JSON, empty): fall back on the HTTP status then. */
int xml_parse_error(const char *doc, size_t len, AwsError *ret);

/* ListAccessKeys: members need AccessKeyId, Status and CreateDate;
 * IsTruncated absent means false (moto omits it); IsTruncated without a
 * non-empty Marker is -EBADMSG. keys is NULL when n_keys is 0. */
int xml_parse_list_access_keys(const char *doc, size_t len, ListAccessKeysResult *ret);

/* CreateAccessKey: UserName, AccessKeyId, Status and SecretAccessKey
 * required; CreateDate optional (0). Runs expat on secure memory: pass the
 * body where it came (a Secret), never a heap copy. */
int xml_parse_create_access_key(const char *doc, size_t len, CreateAccessKeyResult *ret);

/* GetAccessKeyLastUsed: ServiceName and Region required ("N/A" when never
 * used, and LastUsedDate absent: 0); UserName optional. */
int xml_parse_access_key_last_used(const char *doc, size_t len, AccessKeyLastUsed *ret);

/* GetUser and CreateUser share the User element; root names the response
 * ("GetUserResponse"; -EINVAL unless it ends in "Response"). Path,
 * UserName, UserId, Arn and CreateDate required. */
int xml_parse_user(const char *doc, size_t len, const char *root, IamUser *ret);

/* ListUserTags: each Tags member needs Key (Value may be empty). */
int xml_parse_list_user_tags(const char *doc, size_t len, ListUserTagsResult *ret);

/* GetUserPolicy: UserName, PolicyName and PolicyDocument required; the
 * document is returned as sent (URL-encoded), at most XML_POLICY_MAX. */
#define XML_POLICY_MAX (128U * 1024U)
int xml_parse_user_policy(const char *doc, size_t len, UserPolicyResult *ret);

/* S3 ListObjectsV2: KeyCount and IsTruncated required; IsTruncated
 * without NextContinuationToken is -EBADMSG; each Contents needs Key.
 * S3 puts no RequestId in the body: request_id is "" (use the
 * x-amz-request-id header). */
int xml_parse_list_objects_v2(const char *doc, size_t len, ListObjectsResult *ret);

/* ISO 8601 UTC, with or without 1-9 digits of fractional seconds (dropped)
 * and "Z" or "+00:00" ("…T05:30:16Z", "…T05:30:16.228986Z"), years from
 * 1970, every field range-checked. -EINVAL on anything else. */
int xml_parse_timestamp(const char *s, time_t *ret);

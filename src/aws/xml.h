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

#include "aws/types.h"

#define XML_MAX_DOCUMENT (4U * 1024U * 1024U)
#define XML_MAX_DEPTH 32U
#define XML_MAX_ITEMS 10000U

int xml_parse_list_users(const char *doc, size_t len, IamNameList *ret);
int xml_parse_list_user_policies(const char *doc, size_t len, IamNameList *ret);
int xml_parse_list_group_policies(const char *doc, size_t len, IamNameList *ret);
int xml_parse_list_groups_for_user(const char *doc, size_t len, IamNameList *ret);

int xml_parse_list_attached_user_policies(const char *doc, size_t len, ListAttachedPoliciesResult *ret);
int xml_parse_list_attached_group_policies(const char *doc, size_t len, ListAttachedPoliciesResult *ret);

int xml_parse_group_policy(const char *doc, size_t len, GroupPolicyResult *ret);

int xml_parse_policy(const char *doc, size_t len, IamPolicy *ret);

int xml_parse_policy_version(const char *doc, size_t len, PolicyVersionResult *ret);

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

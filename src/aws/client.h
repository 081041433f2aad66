/* SPDX-License-Identifier: MIT */
/*
 * client.h — the AWS context the IAM and S3 calls share: region, endpoints
 * (with their override rules), keyrotd's own identity, and the plumbing
 * every call uses: one result type, one callback type, and a way for
 * programs without an event loop of their own to wait for a call.
 *
 * Endpoints: AWS_ENDPOINT_URL_IAM / AWS_ENDPOINT_URL_S3 win over
 * AWS_ENDPOINT_URL, which wins over the inventory's aws.endpoint_url; none
 * of them means the public AWS endpoints over https. An override makes S3
 * use path-style addressing; it may name http:// only for a loopback
 * address (aws/endpoint.h: an emulator on this host), and a variable that
 * breaks that rule fails aws_client_new() with -EINVAL, naming it.
 */
#pragma once

#include <stdbool.h>

#include "aws/http.h"
#include "aws/provider.h"
#include "aws/types.h"

typedef struct AwsClient {
        HttpClient *http;              /* borrowed */
        CredentialsProvider *identity; /* borrowed; keyrotd's own credentials */
        char *region;
        char *iam_endpoint;
        char *s3_endpoint;
        bool iam_override;
        bool s3_override;
        unsigned list_page_size; /* MaxItems for IAM lists; 0 = the service's default */
} AwsClient;

int aws_client_new(HttpClient *http, CredentialsProvider *identity, const char *region, const char *endpoint_url,
                   AwsClient **ret, char **ret_error);
AwsClient *aws_client_free(AwsClient *c);
static inline void aws_client_freep(AwsClient **c) {
        aws_client_free(*c);
}

typedef enum AwsOp {
        AWS_OP_LIST_ACCESS_KEYS,
        AWS_OP_CREATE_ACCESS_KEY,
        AWS_OP_UPDATE_ACCESS_KEY,
        AWS_OP_DELETE_ACCESS_KEY,
        AWS_OP_GET_ACCESS_KEY_LAST_USED,
        AWS_OP_GET_USER,
        AWS_OP_CREATE_USER,
        AWS_OP_PUT_USER_POLICY,
        AWS_OP_LIST_USER_TAGS,
        AWS_OP_TAG_USER,
        AWS_OP_GET_USER_POLICY,
        AWS_OP_LIST_USERS,
        AWS_OP_LIST_USER_POLICIES,
        AWS_OP_LIST_ATTACHED_USER_POLICIES,
        AWS_OP_LIST_GROUPS_FOR_USER,
        AWS_OP_LIST_GROUP_POLICIES,
        AWS_OP_GET_GROUP_POLICY,
        AWS_OP_LIST_ATTACHED_GROUP_POLICIES,
        AWS_OP_GET_POLICY,
        AWS_OP_GET_POLICY_VERSION,
        AWS_OP_S3_LIST_OBJECTS,
        AWS_OP_S3_HEAD,
        AWS_OP_S3_GET_OBJECT,
        AWS_OP_S3_PUT_OBJECT,
        _AWS_OP_MAX,
} AwsOp;

const char *aws_op_to_string(AwsOp op);

typedef struct AwsResult {
        AwsOp op;
        /* 0 success; -EREMOTEIO AWS answered with an error (aws_error says
         * which); -EBADMSG the answer could not be parsed; other negative
         * errno: transport failure (error_text says which). */
        int error;
        long status;
        AwsError aws_error;
        char request_id[128];
        char error_text[256];
        unsigned attempts;
        /* A request that is not idempotent may have been carried out, and
         * no answer says whether (see HttpRequestSpec.once_only). */
        bool outcome_unknown;
        union {
                ListAccessKeysResult list_keys;
                CreateAccessKeyResult create_key;
                AccessKeyLastUsed last_used;
                IamUser user;
                ListObjectsResult objects;
                ListUserTagsResult user_tags;
                UserPolicyResult user_policy;
                IamNameList names; /* ListUsers, List{User,Group}Policies, ListGroupsForUser */
                ListAttachedPoliciesResult attached;
                GroupPolicyResult group_policy;
                IamPolicy policy;
                PolicyVersionResult policy_version;
        };
} AwsResult;

void aws_result_done(AwsResult *r);

/* The error for a log line: the AWS code, or the transport failure. */
const char *aws_result_error_code(const AwsResult *r);
/* The error as a stable code for KEYROTD_ERROR: the AWS code, or for a
 * transport failure "Timeout", "ConnectionFailed", "MalformedResponse",
 * "ResponseTooLarge"; NULL on success. */
const char *aws_result_code(const AwsResult *r);

typedef struct AwsCall AwsCall;
/* Runs once from the event loop. The callback may steal owned members of
 * the result (e.g. create_key.secret_access_key via TAKE_PTR); whatever it
 * leaves is freed after it returns. */
typedef void (*aws_callback_t)(AwsCall *call, AwsResult *result, void *userdata);

void aws_call_cancel(AwsCall *call);

/* Waiting without a loop of one's own:
 *     AwsSync s = {};
 *     r = iam_get_user(c, NULL, NULL, aws_sync_cb, &s, NULL);
 *     if (r >= 0) r = aws_sync_wait(c, &s);   // s.result now owned by us
 *
 * The wait consumes the answer, so one AwsSync may serve call after call
 * (each result released with aws_result_done() before the next).
 */
typedef struct AwsSync {
        bool done;
        AwsResult result;
} AwsSync;
void aws_sync_cb(AwsCall *call, AwsResult *result, void *userdata);
int aws_sync_wait(AwsClient *c, AwsSync *s);

/* Internal to aws/: start a call and route its answer to a parser. */
typedef int (*aws_parse_t)(AwsCall *call, const char *body, size_t len, AwsResult *result);
typedef struct AwsCallSpec {
        AwsOp op;
        HttpRequestSpec http;
        aws_parse_t parse;
        const char *user; /* pagination state for ListAccessKeys */
} AwsCallSpec;
int aws_call_start(AwsClient *c, const AwsCallSpec *spec, aws_callback_t cb, void *userdata, AwsCall **ret);
/* Issue the next page of the same call with a new query/body. */
int aws_call_continue(AwsCall *call, const HttpRequestSpec *http);
ListAccessKeysResult *aws_call_pages(AwsCall *call);
const char *aws_call_user(AwsCall *call);
AwsClient *aws_call_client(AwsCall *call);

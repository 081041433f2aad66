/* SPDX-License-Identifier: MIT */
#include "aws/iam.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "aws/xml.h"

/* Append "&key=value", both parts form-encoded. */
static int form_add(char **body, const char *key, const char *value) {
        _cleanup_free_ char *k = NULL, *v = NULL;
        char *n;
        int r;

        r = aws_form_encode(key, &k);
        if (r >= 0)
                r = aws_form_encode(value, &v);
        if (r < 0)
                return r;
        r = asprintf_safe(&n, "%s%s%s=%s", *body ?: "", *body ? "&" : "", k, v);
        if (r < 0)
                return r;
        free(*body);
        *body = n;
        return 0;
}

/* Build "Action=X&Version=...&k1=v1&..." from NULL-terminated pairs. */
static int form_build(char **ret, const char *action, va_list ap) {
        _cleanup_free_ char *body = NULL;
        const char *k, *v;
        int r;

        r = form_add(&body, "Action", action);
        if (r >= 0)
                r = form_add(&body, "Version", IAM_API_VERSION);
        while (r >= 0 && (k = va_arg(ap, const char *))) {
                v = va_arg(ap, const char *);
                if (v)
                        r = form_add(&body, k, v);
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(body);
        return 0;
}

static int form_buildf(char **ret, const char *action, ...) {
        va_list ap;
        int r;

        va_start(ap, action);
        r = form_build(ret, action, ap);
        va_end(ap);
        return r;
}

/* MaxItems as the client asks (tests use small pages), or IAM's default. */
static const char *page_size(AwsClient *c, char buf[static 16]) {
        if (c->list_page_size == 0)
                return NULL;
        snprintf(buf, 16, "%u", c->list_page_size);
        return buf;
}

static const HttpHeader form_headers[] = {
        { "Content-Type", "application/x-www-form-urlencoded; charset=utf-8" },
};

static void iam_http_spec(AwsClient *c, AwsCredentials *as, const char *body, HttpRequestSpec *spec) {
        *spec = (HttpRequestSpec) {
                .method = "POST",
                .endpoint = c->iam_endpoint,
                .path = "/",
                .headers = form_headers,
                .n_headers = ELEMENTSOF(form_headers),
                .body = body,
                .body_len = strlen(body),
                .creds = as ?: credentials_provider_current(c->identity),
                .region = "us-east-1",
                .service = "iam",
                .allow_http = c->iam_override,
        };
}

/* How an IAM call is sent. */
typedef enum IamFlags {
        IAM_SENSITIVE = 1 << 0, /* the answer holds a secret: secure memory only */
        IAM_ONCE_ONLY = 1 << 1, /* not idempotent: HttpRequestSpec.once_only */
} IamFlags;

/* Send the form @body: op, parser, signing identity (NULL: keyrotd's own). */
static int iam_start(AwsClient *c, AwsOp op, aws_parse_t parse, AwsCredentials *as, const char *user,
                     unsigned flags, const char *body, aws_callback_t cb, void *userdata, AwsCall **ret) {
        AwsCallSpec spec = { .op = op, .parse = parse, .user = user };

        iam_http_spec(c, as, body, &spec.http);
        if (!spec.http.creds)
                return -ENOKEY;
        spec.http.sensitive_response = flags & IAM_SENSITIVE;
        spec.http.once_only = flags & IAM_ONCE_ONLY;
        return aws_call_start(c, &spec, cb, userdata, ret);
}

/* One IAM call: iam_start() with the Action's NULL-terminated key/value
 * pairs (a pair with a NULL value is left out). */
static int iam_call(AwsClient *c, AwsOp op, aws_parse_t parse, AwsCredentials *as, const char *user,
                    unsigned flags, aws_callback_t cb, void *userdata, AwsCall **ret, ...) {
        _cleanup_free_ char *body = NULL;
        va_list ap;
        int r;

        va_start(ap, ret);
        r = form_build(&body, aws_op_to_string(op), ap);
        va_end(ap);
        if (r < 0)
                return r;
        return iam_start(c, op, parse, as, user, flags, body, cb, userdata, ret);
}

static int append_pages(ListAccessKeysResult *acc, ListAccessKeysResult *page) {
        AccessKeyMeta *n;

        if (acc->n_keys + page->n_keys > XML_MAX_ITEMS)
                return -E2BIG;
        if (page->n_keys == 0)
                return 0; /* a user without keys: nothing to copy (and page->keys is NULL) */
        n = realloc(acc->keys, (acc->n_keys + page->n_keys + 1) * sizeof(AccessKeyMeta));
        if (!n)
                return -ENOMEM;
        memcpy(n + acc->n_keys, page->keys, page->n_keys * sizeof(AccessKeyMeta));
        acc->keys = n;
        acc->n_keys += page->n_keys;
        return 0;
}

static int parse_list_access_keys(AwsCall *call, const char *body, size_t len, AwsResult *res) {
        ListAccessKeysResult page = {}, *acc = aws_call_pages(call);
        AwsClient *c = aws_call_client(call);
        _cleanup_free_ char *form = NULL;
        char n[16];
        int r;

        r = xml_parse_list_access_keys(body, len, &page);
        if (r < 0)
                return r;
        r = append_pages(acc, &page);
        if (r < 0)
                goto out;

        if (page.is_truncated) {
                HttpRequestSpec spec;

                if (!page.marker) {
                        r = -EBADMSG;
                        goto out;
                }
                r = form_buildf(&form, aws_op_to_string(AWS_OP_LIST_ACCESS_KEYS), "UserName", aws_call_user(call),
                                "Marker", page.marker, "MaxItems", page_size(c, n), NULL);
                if (r < 0)
                        goto out;
                iam_http_spec(c, NULL, form, &spec);
                r = aws_call_continue(call, &spec);
                goto out;
        }

        res->list_keys = *acc;
        memset(acc, 0, sizeof *acc);
        memcpy(res->list_keys.request_id, page.request_id, sizeof page.request_id);
out:
        list_access_keys_result_done(&page);
        return r;
}

int iam_list_access_keys(AwsClient *c, AwsCredentials *as, const char *user, aws_callback_t cb, void *userdata,
                         AwsCall **ret) {
        char n[16];

        return iam_call(c, AWS_OP_LIST_ACCESS_KEYS, parse_list_access_keys, as, user, 0, cb, userdata, ret,
                        "UserName", user, "MaxItems", page_size(c, n), NULL);
}

static int parse_create_access_key(AwsCall *call, const char *body, size_t len, AwsResult *res) {
        return xml_parse_create_access_key(body, len, &res->create_key);
}

int iam_create_access_key(AwsClient *c, const char *user, aws_callback_t cb, void *userdata, AwsCall **ret) {
        /* One attempt only, and the answer holds the secret. */
        return iam_call(c, AWS_OP_CREATE_ACCESS_KEY, parse_create_access_key, NULL, user, IAM_SENSITIVE | IAM_ONCE_ONLY, cb,
                        userdata,
                        ret, "UserName", user, NULL);
}

static int parse_update_access_key(AwsCall *call, const char *body, size_t len, AwsResult *res) {
        return xml_parse_empty_response(body, len, "UpdateAccessKeyResponse", res->request_id);
}

int iam_update_access_key(AwsClient *c, const char *user, const char *key_id, KeyStatus status, aws_callback_t cb,
                          void *userdata, AwsCall **ret) {
        const char *s = key_status_to_string(status);

        if (!s)
                return -EINVAL;
        return iam_call(c, AWS_OP_UPDATE_ACCESS_KEY, parse_update_access_key, NULL, user, 0, cb, userdata,
                        ret, "UserName", user, "AccessKeyId", key_id, "Status", s, NULL);
}

static int parse_delete_access_key(AwsCall *call, const char *body, size_t len, AwsResult *res) {
        return xml_parse_empty_response(body, len, "DeleteAccessKeyResponse", res->request_id);
}

int iam_delete_access_key(AwsClient *c, const char *user, const char *key_id, aws_callback_t cb, void *userdata,
                          AwsCall **ret) {
        return iam_call(c, AWS_OP_DELETE_ACCESS_KEY, parse_delete_access_key, NULL, user, 0, cb, userdata,
                        ret, "UserName", user, "AccessKeyId", key_id, NULL);
}

static int parse_last_used(AwsCall *call, const char *body, size_t len, AwsResult *res) {
        return xml_parse_access_key_last_used(body, len, &res->last_used);
}

int iam_get_access_key_last_used(AwsClient *c, const char *key_id, aws_callback_t cb, void *userdata,
                                 AwsCall **ret) {
        return iam_call(c, AWS_OP_GET_ACCESS_KEY_LAST_USED, parse_last_used, NULL, NULL, 0, cb, userdata, ret,
                        "AccessKeyId", key_id, NULL);
}

static int parse_get_user(AwsCall *call, const char *body, size_t len, AwsResult *res) {
        return xml_parse_user(body, len, "GetUserResponse", &res->user);
}

int iam_get_user(AwsClient *c, AwsCredentials *as, const char *user, aws_callback_t cb, void *userdata,
                 AwsCall **ret) {
        return iam_call(c, AWS_OP_GET_USER, parse_get_user, as, NULL, 0, cb, userdata, ret, "UserName", user,
                        NULL);
}

static int parse_create_user(AwsCall *call, const char *body, size_t len, AwsResult *res) {
        return xml_parse_user(body, len, "CreateUserResponse", &res->user);
}

/* "Action=X&Version=...&UserName=U&Tags.member.N.Key=...": CreateUser, TagUser. */
static int iam_call_with_tags(AwsClient *c, AwsOp op, aws_parse_t parse, const char *user,
                              const char *const *tags, aws_callback_t cb, void *userdata, AwsCall **ret) {
        _cleanup_free_ char *body = NULL;
        unsigned i = 0;
        int r;

        r = form_buildf(&body, aws_op_to_string(op), "UserName", user, NULL);
        for (; r >= 0 && tags && tags[2 * i] && tags[2 * i + 1]; i++) {
                char key[48], value[48];

                snprintf(key, sizeof key, "Tags.member.%u.Key", i + 1);
                snprintf(value, sizeof value, "Tags.member.%u.Value", i + 1);
                r = form_add(&body, key, tags[2 * i]);
                if (r >= 0)
                        r = form_add(&body, value, tags[2 * i + 1]);
        }
        if (r < 0)
                return r;
        return iam_start(c, op, parse, NULL, NULL, op == AWS_OP_CREATE_USER ? IAM_ONCE_ONLY : 0, body, cb, userdata,
                         ret);
}

int iam_create_user(AwsClient *c, const char *user, const char *const *tags, aws_callback_t cb, void *userdata,
                    AwsCall **ret) {
        return iam_call_with_tags(c, AWS_OP_CREATE_USER, parse_create_user, user, tags, cb, userdata, ret);
}

static int parse_put_user_policy(AwsCall *call, const char *body, size_t len, AwsResult *res) {
        return xml_parse_empty_response(body, len, "PutUserPolicyResponse", res->request_id);
}

int iam_put_user_policy(AwsClient *c, const char *user, const char *policy_name, const char *document,
                        aws_callback_t cb, void *userdata, AwsCall **ret) {
        return iam_call(c, AWS_OP_PUT_USER_POLICY, parse_put_user_policy, NULL, NULL, 0, cb, userdata, ret,
                        "UserName", user, "PolicyName", policy_name, "PolicyDocument", document, NULL);
}

static int parse_list_user_tags(AwsCall *call, const char *body, size_t len, AwsResult *res) {
        return xml_parse_list_user_tags(body, len, &res->user_tags);
}

int iam_list_user_tags(AwsClient *c, const char *user, aws_callback_t cb, void *userdata, AwsCall **ret) {
        return iam_call(c, AWS_OP_LIST_USER_TAGS, parse_list_user_tags, NULL, NULL, 0, cb, userdata, ret,
                        "UserName", user, NULL);
}

static int parse_tag_user(AwsCall *call, const char *body, size_t len, AwsResult *res) {
        return xml_parse_empty_response(body, len, "TagUserResponse", res->request_id);
}

int iam_tag_user(AwsClient *c, const char *user, const char *const *tags, aws_callback_t cb, void *userdata,
                 AwsCall **ret) {
        return iam_call_with_tags(c, AWS_OP_TAG_USER, parse_tag_user, user, tags, cb, userdata, ret);
}

static int parse_get_user_policy(AwsCall *call, const char *body, size_t len, AwsResult *res) {
        return xml_parse_user_policy(body, len, &res->user_policy);
}

int iam_get_user_policy(AwsClient *c, const char *user, const char *policy_name, aws_callback_t cb, void *userdata,
                        AwsCall **ret) {
        return iam_call(c, AWS_OP_GET_USER_POLICY, parse_get_user_policy, NULL, NULL, 0, cb, userdata, ret,
                        "UserName", user, "PolicyName", policy_name, NULL);
}

/* ---- the audit's calls ---------------------------------------------------- */

static int parse_list_users(AwsCall *call, const char *body, size_t len, AwsResult *res) {
        return xml_parse_list_users(body, len, &res->names);
}

/* One page of a List* call: @owner_key=@owner (left out when @owner is
 * NULL), Marker (NULL for the first page), MaxItems. */
static int iam_list_page(AwsClient *c, AwsOp op, aws_parse_t parse, const char *owner_key, const char *owner,
                         const char *marker, aws_callback_t cb, void *userdata, AwsCall **ret) {
        char n[16];

        return iam_call(c, op, parse, NULL, NULL, 0, cb, userdata, ret, owner_key, owner, "Marker", marker,
                        "MaxItems", page_size(c, n), NULL);
}

int iam_list_users(AwsClient *c, const char *marker, aws_callback_t cb, void *userdata, AwsCall **ret) {
        return iam_list_page(c, AWS_OP_LIST_USERS, parse_list_users, "UserName", NULL, marker, cb, userdata, ret);
}

static int parse_list_user_policies(AwsCall *call, const char *body, size_t len, AwsResult *res) {
        return xml_parse_list_user_policies(body, len, &res->names);
}

int iam_list_user_policies(AwsClient *c, const char *user, const char *marker, aws_callback_t cb, void *userdata,
                           AwsCall **ret) {
        return iam_list_page(c, AWS_OP_LIST_USER_POLICIES, parse_list_user_policies, "UserName", user, marker, cb,
                             userdata, ret);
}

static int parse_list_attached_user(AwsCall *call, const char *body, size_t len, AwsResult *res) {
        return xml_parse_list_attached_user_policies(body, len, &res->attached);
}

int iam_list_attached_user_policies(AwsClient *c, const char *user, const char *marker, aws_callback_t cb,
                                    void *userdata, AwsCall **ret) {
        return iam_list_page(c, AWS_OP_LIST_ATTACHED_USER_POLICIES, parse_list_attached_user, "UserName", user,
                             marker, cb, userdata, ret);
}

static int parse_list_groups_for_user(AwsCall *call, const char *body, size_t len, AwsResult *res) {
        return xml_parse_list_groups_for_user(body, len, &res->names);
}

int iam_list_groups_for_user(AwsClient *c, const char *user, const char *marker, aws_callback_t cb, void *userdata,
                             AwsCall **ret) {
        return iam_list_page(c, AWS_OP_LIST_GROUPS_FOR_USER, parse_list_groups_for_user, "UserName", user, marker,
                             cb, userdata, ret);
}

static int parse_list_group_policies(AwsCall *call, const char *body, size_t len, AwsResult *res) {
        return xml_parse_list_group_policies(body, len, &res->names);
}

int iam_list_group_policies(AwsClient *c, const char *group, const char *marker, aws_callback_t cb, void *userdata,
                            AwsCall **ret) {
        return iam_list_page(c, AWS_OP_LIST_GROUP_POLICIES, parse_list_group_policies, "GroupName", group, marker,
                             cb, userdata, ret);
}

static int parse_list_attached_group(AwsCall *call, const char *body, size_t len, AwsResult *res) {
        return xml_parse_list_attached_group_policies(body, len, &res->attached);
}

int iam_list_attached_group_policies(AwsClient *c, const char *group, const char *marker, aws_callback_t cb,
                                     void *userdata, AwsCall **ret) {
        return iam_list_page(c, AWS_OP_LIST_ATTACHED_GROUP_POLICIES, parse_list_attached_group, "GroupName", group,
                             marker, cb, userdata, ret);
}

static int parse_get_group_policy(AwsCall *call, const char *body, size_t len, AwsResult *res) {
        return xml_parse_group_policy(body, len, &res->group_policy);
}

int iam_get_group_policy(AwsClient *c, const char *group, const char *policy_name, aws_callback_t cb,
                         void *userdata, AwsCall **ret) {
        return iam_call(c, AWS_OP_GET_GROUP_POLICY, parse_get_group_policy, NULL, NULL, 0, cb, userdata, ret,
                        "GroupName", group, "PolicyName", policy_name, NULL);
}

static int parse_get_policy(AwsCall *call, const char *body, size_t len, AwsResult *res) {
        return xml_parse_policy(body, len, &res->policy);
}

int iam_get_policy(AwsClient *c, const char *policy_arn, aws_callback_t cb, void *userdata, AwsCall **ret) {
        return iam_call(c, AWS_OP_GET_POLICY, parse_get_policy, NULL, NULL, 0, cb, userdata, ret, "PolicyArn",
                        policy_arn, NULL);
}

static int parse_get_policy_version(AwsCall *call, const char *body, size_t len, AwsResult *res) {
        return xml_parse_policy_version(body, len, &res->policy_version);
}

int iam_get_policy_version(AwsClient *c, const char *policy_arn, const char *version_id, aws_callback_t cb,
                           void *userdata, AwsCall **ret) {
        return iam_call(c, AWS_OP_GET_POLICY_VERSION, parse_get_policy_version, NULL, NULL, 0, cb, userdata,
                        ret, "PolicyArn", policy_arn, "VersionId", version_id, NULL);
}

/* SPDX-License-Identifier: MIT */
#include "aws/client.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "aws/endpoint.h"

struct AwsCall {
        AwsClient *client;
        AwsOp op;
        aws_parse_t parse;
        aws_callback_t callback;
        void *userdata;
        HttpRequest *request;
        unsigned attempts;
        /* ListAccessKeys pages accumulate here until the last one. */
        char *user;
        ListAccessKeysResult pages;
        bool continued;
};

static const char *const op_names[_AWS_OP_MAX] = {
        [AWS_OP_LIST_ACCESS_KEYS] = "ListAccessKeys",
        [AWS_OP_CREATE_ACCESS_KEY] = "CreateAccessKey",
        [AWS_OP_UPDATE_ACCESS_KEY] = "UpdateAccessKey",
        [AWS_OP_DELETE_ACCESS_KEY] = "DeleteAccessKey",
        [AWS_OP_GET_ACCESS_KEY_LAST_USED] = "GetAccessKeyLastUsed",
        [AWS_OP_GET_USER] = "GetUser",
        [AWS_OP_CREATE_USER] = "CreateUser",
        [AWS_OP_PUT_USER_POLICY] = "PutUserPolicy",
        [AWS_OP_LIST_USER_TAGS] = "ListUserTags",
        [AWS_OP_TAG_USER] = "TagUser",
        [AWS_OP_GET_USER_POLICY] = "GetUserPolicy",
        [AWS_OP_LIST_USERS] = "ListUsers",
        [AWS_OP_LIST_USER_POLICIES] = "ListUserPolicies",
        [AWS_OP_LIST_ATTACHED_USER_POLICIES] = "ListAttachedUserPolicies",
        [AWS_OP_LIST_GROUPS_FOR_USER] = "ListGroupsForUser",
        [AWS_OP_LIST_GROUP_POLICIES] = "ListGroupPolicies",
        [AWS_OP_GET_GROUP_POLICY] = "GetGroupPolicy",
        [AWS_OP_LIST_ATTACHED_GROUP_POLICIES] = "ListAttachedGroupPolicies",
        [AWS_OP_GET_POLICY] = "GetPolicy",
        [AWS_OP_GET_POLICY_VERSION] = "GetPolicyVersion",
        [AWS_OP_S3_LIST_OBJECTS] = "ListObjectsV2",
        [AWS_OP_S3_HEAD] = "HeadObject",
        [AWS_OP_S3_GET_OBJECT] = "GetObject",
        [AWS_OP_S3_PUT_OBJECT] = "PutObject",
};

const char *aws_op_to_string(AwsOp op) {
        return op >= 0 && op < _AWS_OP_MAX ? op_names[op] : NULL;
}

/*
 * The endpoint of one service: its own variable, else AWS_ENDPOINT_URL,
 * else the inventory's @configured (checked when the inventory was
 * loaded), else the public one. A value from the environment is judged
 * here by the inventory's rule (aws/endpoint.h): http:// only to a
 * loopback address. *ret_source names where the value came from.
 */
static int endpoint_pick(const char *service_env, const char *configured, const char *fallback, char **ret,
                         bool *ret_override, const char **ret_source) {
        const char *v = getenv(service_env), *source = service_env;

        if (!v || !*v) {
                v = getenv("AWS_ENDPOINT_URL");
                source = "AWS_ENDPOINT_URL";
        }
        if (v && *v && endpoint_url_problem(v)) {
                *ret_source = source;
                return -EINVAL;
        }
        if (!v || !*v) {
                v = configured;
                source = "aws.endpoint_url";
        }
        *ret_override = v && *v;
        if (!*ret_override)
                v = fallback;

        /* Keep scheme://host[:port] only; a trailing slash would double up. */
        size_t n = strlen(v);
        while (n > 0 && v[n - 1] == '/')
                n--;
        *ret = strndup(v, n);
        *ret_source = source;
        return *ret ? 0 : -ENOMEM;
}

static bool endpoint_valid(const char *url) {
        return startswith(url, "https://") || startswith(url, "http://");
}

int aws_client_new(HttpClient *http, CredentialsProvider *identity, const char *region, const char *endpoint_url,
                   AwsClient **ret, char **ret_error) {
        _cleanup_free_ char *s3_default = NULL;
        const char *source = NULL;
        AwsClient *c;
        int k;

        if (!region || !*region)
                region = "us-east-1";
        k = asprintf_safe(&s3_default, "https://s3.%s.amazonaws.com", region);
        if (k < 0)
                return k;

        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->http = http;
        c->identity = identity;
        c->region = strdup(region);
        if (!c->region) {
                k = -ENOMEM;
                goto fail;
        }
        /* IAM is a global service with one endpoint, signed for us-east-1. */
        k = endpoint_pick("AWS_ENDPOINT_URL_IAM", endpoint_url, "https://iam.amazonaws.com", &c->iam_endpoint,
                          &c->iam_override, &source);
        if (k >= 0)
                k = endpoint_pick("AWS_ENDPOINT_URL_S3", endpoint_url, s3_default, &c->s3_endpoint, &c->s3_override,
                                  &source);
        if (k == -EINVAL && ret_error) {
                const char *v = getenv(source);

                /* Never echo a value with an '@': it may hold a password. */
                if (strchr(v, '@'))
                        (void) asprintf_safe(ret_error, "%s %s", source, endpoint_url_problem(v));
                else
                        (void) asprintf_safe(ret_error, "%s=%s %s", source, v, endpoint_url_problem(v));
        }
        if (k < 0)
                goto fail;
        if (!endpoint_valid(c->iam_endpoint) || !endpoint_valid(c->s3_endpoint)) {
                if (ret_error)
                        (void) asprintf_safe(ret_error, "endpoint URL must start with https:// or http://: %s",
                                             endpoint_valid(c->iam_endpoint) ? c->s3_endpoint : c->iam_endpoint);
                k = -EINVAL;
                goto fail;
        }
        *ret = c;
        return 0;
fail:
        aws_client_free(c);
        return k;
}

AwsClient *aws_client_free(AwsClient *c) {
        if (!c)
                return NULL;
        free(c->region);
        free(c->iam_endpoint);
        free(c->s3_endpoint);
        free(c);
        return NULL;
}

void aws_result_done(AwsResult *r) {
        switch (r->op) {
        case AWS_OP_LIST_ACCESS_KEYS:
                list_access_keys_result_done(&r->list_keys);
                break;
        case AWS_OP_CREATE_ACCESS_KEY:
                create_access_key_result_done(&r->create_key);
                break;
        case AWS_OP_S3_LIST_OBJECTS:
                list_objects_result_done(&r->objects);
                break;
        case AWS_OP_LIST_USER_TAGS:
                list_user_tags_result_done(&r->user_tags);
                break;
        case AWS_OP_GET_USER_POLICY:
                user_policy_result_done(&r->user_policy);
                break;
        case AWS_OP_LIST_USERS:
        case AWS_OP_LIST_USER_POLICIES:
        case AWS_OP_LIST_GROUPS_FOR_USER:
        case AWS_OP_LIST_GROUP_POLICIES:
                iam_name_list_done(&r->names);
                break;
        case AWS_OP_LIST_ATTACHED_USER_POLICIES:
        case AWS_OP_LIST_ATTACHED_GROUP_POLICIES:
                list_attached_policies_result_done(&r->attached);
                break;
        case AWS_OP_GET_GROUP_POLICY:
                group_policy_result_done(&r->group_policy);
                break;
        case AWS_OP_GET_POLICY_VERSION:
                policy_version_result_done(&r->policy_version);
                break;
        default:
                break;
        }
        memset(&r->list_keys, 0, sizeof *r - offsetof(AwsResult, list_keys));
}

const char *aws_result_error_code(const AwsResult *r) {
        if (r->error == 0)
                return NULL;
        if (r->aws_error.code[0])
                return r->aws_error.code;
        if (r->error_text[0])
                return r->error_text;
        return strerror(-r->error);
}

const char *aws_result_code(const AwsResult *r) {
        if (r->error == 0)
                return NULL;
        if (r->aws_error.code[0])
                return r->aws_error.code;
        switch (r->error) {
        case -ETIMEDOUT:
                return "Timeout";
        case -EBADMSG:
                return "MalformedResponse";
        case -EFBIG:
                return "ResponseTooLarge";
        default:
                return "ConnectionFailed";
        }
}

static void call_free(AwsCall *call) {
        if (!call)
                return;
        if (call->request)
                http_request_cancel(call->request);
        list_access_keys_result_done(&call->pages);
        free(call->user);
        free(call);
}

void aws_call_cancel(AwsCall *call) {
        call_free(call);
}

/* S3 answers HEAD without a body, so the status is all there is to name. */
static void error_from_status(long status, AwsError *e) {
        const char *code = status == 403 ? "Forbidden" : status == 404 ? "NotFound" : status == 301 ? "PermanentRedirect" : "HttpError";
        snprintf(e->code, sizeof e->code, "%s", code);
        snprintf(e->message, sizeof e->message, "HTTP status %ld without an error document", status);
}

static void http_done(HttpRequest *req, const HttpResponse *resp, void *userdata) {
        AwsCall *call = userdata;
        AwsResult result = { .op = call->op };

        call->request = NULL;
        call->attempts += resp->attempts;
        call->continued = false;
        result.status = resp->status;
        result.attempts = call->attempts;
        result.outcome_unknown = resp->outcome_unknown;
        memcpy(result.request_id, resp->request_id, sizeof result.request_id);

        if (resp->error < 0) {
                result.error = resp->error;
                memcpy(result.error_text, resp->error_text, sizeof result.error_text);
        } else if (resp->status >= 300 && !(call->op == AWS_OP_S3_GET_OBJECT && resp->status == 416)) {
                /* (416 above: a first-byte GET of an empty object; access was granted.) */
                result.error = -EREMOTEIO;
                result.aws_error = resp->aws_error;
                if (!result.aws_error.code[0])
                        error_from_status(resp->status, &result.aws_error);
                if (!result.request_id[0])
                        memcpy(result.request_id, result.aws_error.request_id, sizeof result.request_id);
        } else if (call->parse) {
                int k = call->parse(call, resp->body ? resp->body->data : "", resp->body ? resp->body->len : 0,
                                    &result);
                if (k < 0) {
                        aws_result_done(&result);
                        result.error = -EBADMSG;
                        snprintf(result.error_text, sizeof result.error_text, "unparseable %s response: %s",
                                 aws_op_to_string(call->op), strerror(-k));
                } else if (call->continued) {
                        /* The parser issued the next page; the call lives on. */
                        return;
                }
        }

        call->callback(call, &result, call->userdata);
        aws_result_done(&result);
        call_free(call);
}

int aws_call_start(AwsClient *c, const AwsCallSpec *spec, aws_callback_t cb, void *userdata, AwsCall **ret) {
        AwsCall *call;
        int k;

        call = calloc(1, sizeof *call);
        if (!call)
                return -ENOMEM;
        call->client = c;
        call->op = spec->op;
        call->parse = spec->parse;
        call->callback = cb;
        call->userdata = userdata;
        if (spec->user) {
                call->user = strdup(spec->user);
                if (!call->user) {
                        call_free(call);
                        return -ENOMEM;
                }
        }
        k = http_submit(c->http, &spec->http, http_done, call, &call->request);
        if (k < 0) {
                call_free(call);
                return k;
        }
        if (ret)
                *ret = call;
        return 0;
}

int aws_call_continue(AwsCall *call, const HttpRequestSpec *http) {
        int k = http_submit(call->client->http, http, http_done, call, &call->request);
        if (k >= 0)
                call->continued = true;
        return k;
}

ListAccessKeysResult *aws_call_pages(AwsCall *call) {
        return &call->pages;
}
const char *aws_call_user(AwsCall *call) {
        return call->user;
}
AwsClient *aws_call_client(AwsCall *call) {
        return call->client;
}

void aws_sync_cb(AwsCall *call, AwsResult *result, void *userdata) {
        AwsSync *s = userdata;

        /* Move: the caller owns the result from here on. */
        s->result = *result;
        memset(&result->list_keys, 0, sizeof *result - offsetof(AwsResult, list_keys));
        s->done = true;
}

int aws_sync_wait(AwsClient *c, AwsSync *s) {
        sd_event *e = http_client_get_event(c->http);

        while (!s->done) {
                int k = sd_event_run(e, UINT64_MAX);
                if (k < 0)
                        return k;
        }
        /* Consumed: a next call through the same s waits for its own
         * answer instead of returning at once while that answer is still
         * to come (and would land in s later, maybe in a dead frame). */
        s->done = false;
        return 0;
}

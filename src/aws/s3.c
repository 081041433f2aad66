/* SPDX-License-Identifier: MIT */
#include "aws/s3.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "aws/xml.h"

typedef struct S3Target {
        char *endpoint;
        char *path;
} S3Target;

static void s3_target_done(S3Target *t) {
        free(t->endpoint);
        free(t->path);
}

static int s3_target(AwsClient *c, const S3Options *o, S3Target *ret) {
        S3Target t = {};
        const char *key = o->key ?: "";
        int r;

        if (!o->bucket || !s3_bucket_name_valid(o->bucket))
                return -EINVAL;
        if (c->s3_override || strchr(o->bucket, '.')) {
                t.endpoint = strdup(c->s3_endpoint);
                r = asprintf_safe(&t.path, "/%s/%s", o->bucket, key);
        } else {
                /* https://s3.REGION.amazonaws.com -> https://BUCKET.s3.REGION.amazonaws.com */
                const char *host = c->s3_endpoint + strlen("https://");
                r = asprintf_safe(&t.endpoint, "https://%s.%s", o->bucket, host);
                if (r >= 0)
                        r = asprintf_safe(&t.path, "/%s", key);
        }
        if (r < 0 || !t.endpoint || !t.path) {
                s3_target_done(&t);
                return -ENOMEM;
        }
        *ret = t;
        return 0;
}

static int s3_call(AwsClient *c, const S3Options *o, AwsOp op, const char *method, const char *query,
                   const HttpHeader *headers, size_t n_headers, const void *body, size_t len, aws_parse_t parse,
                   aws_callback_t cb, void *userdata, AwsCall **ret) {
        S3Target t;
        int r;

        if (!o->creds)
                return -EINVAL;
        r = s3_target(c, o, &t);
        if (r < 0)
                return r;

        AwsCallSpec spec = {
                .op = op,
                .parse = parse,
                .http = {
                        .method = method,
                        .endpoint = t.endpoint,
                        .path = t.path,
                        .query = query,
                        .headers = headers,
                        .n_headers = n_headers,
                        .body = body,
                        .body_len = len,
                        .creds = o->creds,
                        .region = c->region,
                        .service = "s3",
                        .fresh_connection = o->fresh_connection,
                        .allow_http = c->s3_override,
                        .timeout = o->timeout,
                        .max_attempts = o->max_attempts,
                },
        };
        r = aws_call_start(c, &spec, cb, userdata, ret);
        s3_target_done(&t);
        return r;
}

static int parse_list_objects(AwsCall *call, const char *body, size_t len, AwsResult *res) {
        return xml_parse_list_objects_v2(body, len, &res->objects);
}

int s3_list_objects(AwsClient *c, const S3Options *o, unsigned max_keys, aws_callback_t cb, void *userdata,
                    AwsCall **ret) {
        char query[64];

        if (max_keys > 0)
                snprintf(query, sizeof query, "list-type=2&max-keys=%u", max_keys);
        else
                snprintf(query, sizeof query, "list-type=2");
        return s3_call(c, o, AWS_OP_S3_LIST_OBJECTS, "GET", query, NULL, 0, NULL, 0, parse_list_objects, cb,
                       userdata, ret);
}

int s3_head(AwsClient *c, const S3Options *o, aws_callback_t cb, void *userdata, AwsCall **ret) {
        return s3_call(c, o, AWS_OP_S3_HEAD, "HEAD", NULL, NULL, 0, NULL, 0, NULL, cb, userdata, ret);
}

static const HttpHeader first_byte[] = { { "Range", "bytes=0-0" } };

int s3_get_object(AwsClient *c, const S3Options *o, aws_callback_t cb, void *userdata, AwsCall **ret) {
        if (!o->key || !*o->key)
                return -EINVAL;
        return s3_call(c, o, AWS_OP_S3_GET_OBJECT, "GET", NULL, first_byte, ELEMENTSOF(first_byte), NULL, 0, NULL,
                       cb, userdata, ret);
}

/* Without a type libcurl labels the body a form, and servers that believe it
 * (moto does) store nothing. */
static const HttpHeader octet_stream[] = { { "Content-Type", "application/octet-stream" } };

int s3_put_object(AwsClient *c, const S3Options *o, const void *data, size_t len, aws_callback_t cb, void *userdata,
                  AwsCall **ret) {
        if (!o->key || !*o->key)
                return -EINVAL;
        return s3_call(c, o, AWS_OP_S3_PUT_OBJECT, "PUT", NULL, octet_stream, ELEMENTSOF(octet_stream), data, len,
                       NULL, cb, userdata, ret);
}

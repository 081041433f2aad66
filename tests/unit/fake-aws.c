/* SPDX-License-Identifier: MIT */
#include "fake-aws.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "basic/util.h"

#define IAM_NS "https://iam.amazonaws.com/doc/2010-05-08/"

static char answer[16384];

void fake_aws_init(FakeAws *f, const char *user) {
        *f = (FakeAws) {};
        snprintf(f->user, sizeof f->user, "%s", user);
}

const char *fake_aws_add_key(FakeAws *f, const char *id, const char *secret, bool active, time_t created) {
        FakeKey *k;

        if (f->n_keys >= FAKE_MAX_KEYS)
                return NULL;
        k = &f->keys[f->n_keys++];
        *k = (FakeKey) { .active = active, .created = created };
        snprintf(k->id, sizeof k->id, "%s", id);
        snprintf(k->secret, sizeof k->secret, "%s", secret);
        return k->id;
}

FakeKey *fake_aws_find(FakeAws *f, const char *id) {
        for (size_t i = 0; id && i < f->n_keys; i++)
                if (streq(f->keys[i].id, id))
                        return &f->keys[i];
        return NULL;
}

unsigned fake_aws_count(const FakeAws *f, const char *prefix) {
        unsigned n = 0;

        for (size_t i = 0; i < f->n_calls; i++)
                n += startswith(f->calls[i], prefix);
        return n;
}

unsigned fake_aws_mutations(const FakeAws *f) {
        return fake_aws_count(f, "CreateAccessKey") + fake_aws_count(f, "UpdateAccessKey") +
               fake_aws_count(f, "DeleteAccessKey");
}

void fake_aws_reset_calls(FakeAws *f) {
        f->n_calls = 0;
}

static void record(FakeAws *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void record(FakeAws *f, const char *fmt, ...) {
        va_list ap;

        if (f->n_calls >= FAKE_MAX_CALLS)
                return;
        va_start(ap, fmt);
        vsnprintf(f->calls[f->n_calls++], sizeof f->calls[0], fmt, ap);
        va_end(ap);
}

/* One value of a form-encoded body; the fake's values need no decoding. */
static bool form_get(const char *body, size_t len, const char *key, char *out, size_t size) {
        size_t klen = strlen(key);

        for (size_t i = 0; i < len;) {
                size_t end = i;

                while (end < len && body[end] != '&')
                        end++;
                if (end - i > klen && memcmp(body + i, key, klen) == 0 && body[i + klen] == '=') {
                        size_t n = MIN(end - i - klen - 1, size - 1);
                        memcpy(out, body + i + klen + 1, n);
                        out[n] = 0;
                        return true;
                }
                i = end + 1;
        }
        out[0] = 0;
        return false;
}

/* The key that signed the request, from "Credential=AKID/...". */
static void signer(const HttpFakeRequest *req, char *out, size_t size) {
        const char *p = req->authorization ? strstr(req->authorization, "Credential=") : NULL;
        size_t n = 0;

        if (p)
                for (p += strlen("Credential="); p[n] && p[n] != '/' && n + 1 < size; n++)
                        out[n] = p[n];
        out[n] = 0;
}

static const char *iso(time_t t, char buf[static 32]) {
        struct tm tm;

        gmtime_r(&t, &tm);
        strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
        return buf;
}

static void respond(HttpFakeResponse *resp, long status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void respond(HttpFakeResponse *resp, long status, const char *fmt, ...) {
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(answer, sizeof answer, fmt, ap);
        va_end(ap);
        resp->status = status;
        resp->body = answer;
        resp->body_len = n > 0 ? (size_t) n : 0;
}

static void iam_error(HttpFakeResponse *resp, long status, const char *code) {
        respond(resp, status,
                "<ErrorResponse xmlns=\"" IAM_NS "\"><Error><Type>Sender</Type><Code>%s</Code>"
                "<Message>fake %s</Message></Error><RequestId>%s</RequestId></ErrorResponse>",
                code, code, resp->request_id);
}

static void s3_error(HttpFakeResponse *resp, long status, const char *code) {
        respond(resp, status, "<Error><Code>%s</Code><Message>fake %s</Message><RequestId>%s</RequestId></Error>",
                code, code, resp->request_id);
}

static long status_of(const char *code) {
        if (streq(code, "LimitExceeded"))
                return 409;
        if (streq(code, "NoSuchEntity"))
                return 404;
        if (streq(code, "ServiceUnavailable") || streq(code, "InternalFailure"))
                return 503;
        return 400;
}

static void empty_ok(HttpFakeResponse *resp, const char *action) {
        respond(resp, 200,
                "<%sResponse xmlns=\"" IAM_NS "\"><ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata>"
                "</%sResponse>",
                action, resp->request_id, action);
}

static void do_iam(FakeAws *f, const char *action, const char *body, size_t len, HttpFakeResponse *resp) {
        char id[64], status[16], when[32];
        FakeKey *k;

        form_get(body, len, "AccessKeyId", id, sizeof id);
        if (streq(action, "ListAccessKeys")) {
                size_t n = 0;

                record(f, "ListAccessKeys");
                n += (size_t) snprintf(answer + n, sizeof answer - n,
                                       "<ListAccessKeysResponse xmlns=\"" IAM_NS "\"><ListAccessKeysResult>"
                                       "<AccessKeyMetadata>");
                for (size_t i = 0; i < f->n_keys && n < sizeof answer; i++)
                        n += (size_t) snprintf(answer + n, sizeof answer - n,
                                               "<member><UserName>%s</UserName><AccessKeyId>%s</AccessKeyId>"
                                               "<Status>%s</Status><CreateDate>%s</CreateDate></member>",
                                               f->user, f->keys[i].id, f->keys[i].active ? "Active" : "Inactive",
                                               iso(f->keys[i].created, when));
                n += (size_t) snprintf(answer + n, sizeof answer - n,
                                       "</AccessKeyMetadata><IsTruncated>false</IsTruncated></ListAccessKeysResult>"
                                       "<ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata>"
                                       "</ListAccessKeysResponse>",
                                       resp->request_id);
                resp->status = 200;
                resp->body = answer;
                resp->body_len = MIN(n, sizeof answer - 1);
        } else if (streq(action, "CreateAccessKey")) {
                char new_id[32], secret[48];

                record(f, "CreateAccessKey");
                if (f->n_keys >= 2) {
                        iam_error(resp, 409, "LimitExceeded");
                        return;
                }
                snprintf(new_id, sizeof new_id, "AKIAFAKENEW%09u", ++f->next_id);
                snprintf(secret, sizeof secret, "fakesecret%030u", f->next_id);
                k = fake_aws_find(f, fake_aws_add_key(f, new_id, secret, true, time(NULL)));
                k->created_here = true;
                respond(resp, 200,
                        "<CreateAccessKeyResponse xmlns=\"" IAM_NS "\"><CreateAccessKeyResult><AccessKey>"
                        "<UserName>%s</UserName><AccessKeyId>%s</AccessKeyId><Status>Active</Status>"
                        "<SecretAccessKey>%s</SecretAccessKey><CreateDate>%s</CreateDate></AccessKey>"
                        "</CreateAccessKeyResult><ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata>"
                        "</CreateAccessKeyResponse>",
                        f->user, k->id, k->secret, iso(k->created, when), resp->request_id);
        } else if (streq(action, "UpdateAccessKey")) {
                form_get(body, len, "Status", status, sizeof status);
                record(f, "UpdateAccessKey %s %s", id, status);
                k = fake_aws_find(f, id);
                if (!k) {
                        iam_error(resp, 404, "NoSuchEntity");
                        return;
                }
                k->active = streq(status, "Active");
                empty_ok(resp, action);
        } else if (streq(action, "DeleteAccessKey")) {
                record(f, "DeleteAccessKey %s", id);
                k = fake_aws_find(f, id);
                if (!k) {
                        iam_error(resp, 404, "NoSuchEntity");
                        return;
                }
                *k = f->keys[--f->n_keys];
                empty_ok(resp, action);
        } else if (streq(action, "GetAccessKeyLastUsed")) {
                record(f, "GetAccessKeyLastUsed %s", id);
                k = fake_aws_find(f, id);
                if (!k) {
                        iam_error(resp, 404, "NoSuchEntity");
                        return;
                }
                if (k->last_used)
                        respond(resp, 200,
                                "<GetAccessKeyLastUsedResponse xmlns=\"" IAM_NS "\"><GetAccessKeyLastUsedResult>"
                                "<UserName>%s</UserName><AccessKeyLastUsed><LastUsedDate>%s</LastUsedDate>"
                                "<ServiceName>s3</ServiceName><Region>us-east-1</Region></AccessKeyLastUsed>"
                                "</GetAccessKeyLastUsedResult><ResponseMetadata><RequestId>%s</RequestId>"
                                "</ResponseMetadata></GetAccessKeyLastUsedResponse>",
                                f->user, iso(k->last_used, when), resp->request_id);
                else
                        respond(resp, 200,
                                "<GetAccessKeyLastUsedResponse xmlns=\"" IAM_NS "\"><GetAccessKeyLastUsedResult>"
                                "<UserName>%s</UserName><AccessKeyLastUsed><ServiceName>N/A</ServiceName>"
                                "<Region>N/A</Region></AccessKeyLastUsed></GetAccessKeyLastUsedResult>"
                                "<ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata>"
                                "</GetAccessKeyLastUsedResponse>",
                                f->user, resp->request_id);
        } else {
                record(f, "%s (unknown)", action);
                iam_error(resp, 400, "InvalidAction");
        }
}

static void answer_iam(FakeAws *f, const HttpFakeRequest *req, const char *key_id, HttpFakeResponse *resp) {
        char action[64];
        bool fault;

        form_get(req->body, req->body_len, "Action", action, sizeof action);
        if (!streq(key_id, FAKE_ADMIN_KEY_ID)) {
                FakeKey *k = fake_aws_find(f, key_id);

                record(f, "IAM %s as %s", action, key_id);
                if (!k || !k->active)
                        iam_error(resp, 403, "InvalidClientTokenId");
                else if (f->iam_allows_new_key)
                        do_iam(f, action, req->body, req->body_len, resp);
                else
                        iam_error(resp, 403, "AccessDenied");
                return;
        }
        fault = f->fail_times > 0 && f->fail_action && streq(action, f->fail_action);
        if (fault)
                f->fail_times--;
        if (!fault || f->fail_after_acting)
                do_iam(f, action, req->body, req->body_len, resp);
        if (!fault)
                return;
        if (!f->fail_after_acting)
                record(f, "%s failed", action);
        *resp = (HttpFakeResponse) {};
        snprintf(resp->request_id, sizeof resp->request_id, "fake-fault-%zu", f->n_calls);
        if (!f->fail_code)
                resp->error = -ECONNRESET;
        else
                iam_error(resp, status_of(f->fail_code), f->fail_code);
}

static void answer_s3(FakeAws *f, const HttpFakeRequest *req, const char *key_id, HttpFakeResponse *resp) {
        FakeKey *k = fake_aws_find(f, key_id);

        record(f, "S3 %s %s", req->method, key_id);
        if (!k || (!k->active && !f->inactive_works)) {
                s3_error(resp, 403, "InvalidAccessKeyId");
                return;
        }
        if (k->created_here && k->refusals < f->new_key_refusals) {
                k->refusals++;
                s3_error(resp, 403, "InvalidAccessKeyId");
                return;
        }
        if (k->created_here && f->s3_error) {
                s3_error(resp, 403, f->s3_error);
                return;
        }
        k->last_used = time(NULL);
        if (streq(req->method, "GET") && strstr(req->url, "list-type=2"))
                respond(resp, 200,
                        "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><IsTruncated>false"
                        "</IsTruncated><Name>data</Name><MaxKeys>1</MaxKeys><KeyCount>0</KeyCount>"
                        "</ListBucketResult>");
        else
                respond(resp, 200, "%s", "");
}

void fake_aws_answer(const HttpFakeRequest *req, HttpFakeResponse *resp, void *userdata) {
        FakeAws *f = userdata;
        char key_id[64];

        snprintf(resp->request_id, sizeof resp->request_id, "fake-%zu", f->n_calls);
        signer(req, key_id, sizeof key_id);
        if (streq(req->service, "s3"))
                answer_s3(f, req, key_id, resp);
        else
                answer_iam(f, req, key_id, resp);
}

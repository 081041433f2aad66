/* SPDX-License-Identifier: MIT */
/*
 * The transport: one CURLM per client, its sockets and timer registered in
 * sd-event, each attempt a fresh easy handle signed at send time. Retries
 * follow the AWS SDKs' "standard" mode so keyrotd behaves towards IAM the
 * way every other AWS client does (same attempt count, same backoff, same
 * retry budget), and never retries what the caller marked unsafe.
 */
#include "aws/http.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aws/sigv4.h"
#include "aws/xml.h"
#include "config.h"

/* The AWS SDKs' standard mode makes 3; keyrotd's calls are background work
 * whose success matters more than their latency, and under a quarter of
 * requests throttled three attempts fail one IAM call in 64. */
#define DEFAULT_MAX_ATTEMPTS 5U
#define DEFAULT_CONNECT_TIMEOUT (5 * USEC_PER_SEC)
#define DEFAULT_TIMEOUT (30 * USEC_PER_SEC)
#define DEFAULT_MAX_RESPONSE (4U * 1024U * 1024U)
#define DEFAULT_MAX_BACKOFF (20 * USEC_PER_SEC)
#define DEFAULT_RETRY_BUDGET 500U
#define RETRY_COST 5U
#define RETRY_COST_TIMEOUT 10U
/* The Java and JS SDKs correct their clock once it is this far off. */
#define SKEW_THRESHOLD_SEC 240

struct HttpClient {
        sd_event *event;
        CURLM *multi;
        sd_event_source *timer;
        SigV4KeyCache *key_cache;
        HttpClientOptions opts;
        unsigned retry_tokens;
        int64_t skew;         /* server minus local, seconds */
        int64_t clock_offset; /* tests: added to the local clock */
        unsigned n_inflight;
        http_fake_t fake;     /* tests: answers instead of the network */
        void *fake_userdata;
};

struct HttpRequest {
        HttpClient *client;
        CURL *easy;
        struct curl_slist *header_list;
        sd_event_source *retry_timer;
        sd_event_source *fake_answer;

        /* Owned copies of the spec's strings and body. */
        char *method, *endpoint, *host, *wire_path, *query, *region, *service, *url;
        HttpHeader *headers;
        size_t n_headers;
        void *body;
        size_t body_len;
        char payload_hash[65];
        AwsCredentials *creds;
        unsigned max_attempts;
        bool fresh_connection, sensitive_response, allow_http, once_only;
        size_t body_pos; /* once_only: how much of the body this attempt handed to libcurl */
        usec_t timeout;

        http_callback_t callback;
        void *userdata;

        unsigned attempts;
        unsigned retry_cost_paid;
        HttpResponse response;
        time_t server_date;
        char curl_errbuf[CURL_ERROR_SIZE];
};

static int percent_encode(const char *s, bool keep_slash, bool space_as_plus, char **ret) {
        static const char hex[] = "0123456789ABCDEF";
        size_t n = strlen(s);
        char *out, *p;

        if (n > (SIZE_MAX - 1) / 3)
                return -E2BIG;
        out = p = malloc(n * 3 + 1);
        if (!out)
                return -ENOMEM;
        for (const unsigned char *c = (const unsigned char *) s; *c; c++) {
                if ((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
                    *c == '-' || *c == '_' || *c == '.' || *c == '~' || (keep_slash && *c == '/'))
                        *p++ = (char) *c;
                else if (space_as_plus && *c == ' ')
                        *p++ = '+';
                else {
                        *p++ = '%';
                        *p++ = hex[*c >> 4];
                        *p++ = hex[*c & 15];
                }
        }
        *p = 0;
        *ret = out;
        return 0;
}

int aws_uri_encode(const char *s, bool keep_slash, char **ret) {
        return percent_encode(s, keep_slash, false, ret);
}

int aws_form_encode(const char *s, char **ret) {
        return percent_encode(s, false, true, ret);
}

static usec_t usec_to_msec_ceil(usec_t u) {
        return (u + USEC_PER_MSEC - 1) / USEC_PER_MSEC;
}

static void slist_free_wiped(struct curl_slist *l) {
        /* Header values include the session token: wipe before libcurl frees. */
        for (struct curl_slist *i = l; i; i = i->next)
                OPENSSL_cleanse(i->data, strlen(i->data));
        curl_slist_free_all(l);
}

static void request_free(HttpRequest *r) {
        if (!r)
                return;
        if (r->easy) {
                curl_multi_remove_handle(r->client->multi, r->easy);
                curl_easy_cleanup(r->easy);
                r->client->n_inflight--;
        }
        if (r->fake_answer) {
                sd_event_source_disable_unref(r->fake_answer);
                r->client->n_inflight--;
        }
        slist_free_wiped(r->header_list);
        sd_event_source_disable_unref(r->retry_timer);
        free(r->method);
        free(r->endpoint);
        free(r->host);
        free(r->wire_path);
        free(r->query);
        free(r->region);
        free(r->service);
        free(r->url);
        for (size_t i = 0; i < r->n_headers; i++) {
                free((char *) r->headers[i].name);
                /* Values may be tokens (IMDS): wipe before freeing. */
                if (r->headers[i].value)
                        OPENSSL_cleanse((char *) r->headers[i].value, strlen(r->headers[i].value));
                free((char *) r->headers[i].value);
        }
        free(r->headers);
        if (r->body) {
                OPENSSL_cleanse(r->body, r->body_len);
                free(r->body);
        }
        aws_credentials_unref(r->creds);
        secret_free(r->response.body);
        free(r);
}

static time_t client_now(HttpClient *c) {
        return time(NULL) + c->clock_offset + c->skew;
}

/* libcurl reads every response into its own heap buffer before write_cb
 * copies it into secure memory, CreateAccessKey's secret included. libcurl
 * allocates through these, which wipe each block as it is freed, so no
 * secret outlives its transfer in the ordinary heap. */
static void wiping_free(void *p) {
        if (!p)
                return;
        sodium_memzero(p, malloc_usable_size(p));
        free(p);
}

static void *wiping_realloc(void *p, size_t n) {
        size_t have;
        void *q;

        if (!p)
                return malloc(n);
        have = malloc_usable_size(p);
        if (n <= have && n > 0)
                return p;
        /* Never let realloc() move the block and free the old copy unwiped. */
        q = malloc(n ?: 1);
        if (!q)
                return NULL;
        memcpy(q, p, MIN(have, n));
        wiping_free(p);
        return q;
}

/* The same for a TLS connection's own copy: OpenSSL keeps received
 * plaintext in its record buffer until overwritten unless told otherwise. */
static CURLcode ssl_ctx_cb(CURL *curl, void *ssl_ctx, void *userdata) {
        SSL_CTX_set_options(ssl_ctx, SSL_OP_CLEANSE_PLAINTEXT);
        return CURLE_OK;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userdata) {
        HttpRequest *r = userdata;
        size_t n = size * nmemb;

        /* Returning less than n makes libcurl fail the transfer (CURLE_WRITE_ERROR). */
        if (secret_append(&r->response.body, data, n, r->client->opts.max_response) < 0)
                return 0;
        return n;
}

static void copy_header_value(char *dst, size_t dst_size, const char *v, size_t len) {
        while (len > 0 && (*v == ' ' || *v == '\t')) {
                v++;
                len--;
        }
        while (len > 0 && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' '))
                len--;
        if (len >= dst_size)
                len = dst_size - 1;
        memcpy(dst, v, len);
        dst[len] = 0;
}

static bool header_is(const char *line, size_t len, const char *name, const char **ret_value, size_t *ret_len) {
        size_t n = strlen(name);

        if (len <= n || line[n] != ':' || strncasecmp(line, name, n) != 0)
                return false;
        *ret_value = line + n + 1;
        *ret_len = len - n - 1;
        return true;
}

static size_t header_cb(char *line, size_t size, size_t nmemb, void *userdata) {
        HttpRequest *r = userdata;
        size_t len = size * nmemb;
        const char *v;
        size_t vlen;

        if (header_is(line, len, "x-amzn-requestid", &v, &vlen) ||
            header_is(line, len, "x-amz-request-id", &v, &vlen))
                copy_header_value(r->response.request_id, sizeof r->response.request_id, v, vlen);
        else if (header_is(line, len, "date", &v, &vlen)) {
                char buf[64];
                struct tm tm = {};

                copy_header_value(buf, sizeof buf, v, vlen);
                /* IMF-fixdate as RFC 7231 mandates; we never call setlocale(). */
                const char *end = strptime(buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
                r->server_date = end && *end == 0 ? timegm(&tm) : 0;
        }
        return len;
}

static int add_header(struct curl_slist **l, const char *name, const char *value) {
        _cleanup_free_ char *line = NULL;
        struct curl_slist *n;

        if (asprintf_safe(&line, "%s: %s", name, value) < 0)
                return -ENOMEM;
        n = curl_slist_append(*l, line);
        OPENSSL_cleanse(line, strlen(line));
        if (!n)
                return -ENOMEM;
        *l = n;
        return 0;
}

static int request_build_headers(HttpRequest *r, struct curl_slist **ret) {
        struct curl_slist *l = NULL;
        SigV4Header *sh = NULL;
        SigV4Result sig = {};
        size_t n = 0;
        int k;

        sh = calloc(r->n_headers + 2, sizeof(SigV4Header));
        if (!sh)
                return -ENOMEM;
        sh[n++] = (SigV4Header) { "Host", r->host };
        if (streq(r->service, "s3"))
                sh[n++] = (SigV4Header) { "x-amz-content-sha256", r->payload_hash };
        for (size_t i = 0; i < r->n_headers; i++)
                sh[n++] = (SigV4Header) { r->headers[i].name, r->headers[i].value };

        if (r->creds) {
                SigV4Request sreq = {
                        .method = r->method,
                        .path = r->wire_path,
                        .query = r->query,
                        .headers = sh,
                        .n_headers = n,
                        .payload_hash = r->payload_hash,
                };
                SigV4Params params = {
                        .access_key_id = r->creds->access_key_id,
                        .secret_access_key = secret_str(r->creds->secret_access_key),
                        .session_token = secret_str(r->creds->session_token),
                        .region = r->region,
                        .service = r->service,
                        .when = client_now(r->client),
                };
                k = sigv4_sign(r->client->key_cache, &sreq, &params, &sig);
                if (k < 0)
                        goto fail;
        }

        for (size_t i = 0; i < n; i++) {
                k = add_header(&l, sh[i].name, sh[i].value);
                if (k < 0)
                        goto fail;
        }
        if (r->creds) {
                k = sig.added_date ? add_header(&l, "X-Amz-Date", sig.amz_date) : 0;
                if (k >= 0 && sig.added_security_token)
                        k = add_header(&l, "X-Amz-Security-Token", secret_str(r->creds->session_token));
                if (k >= 0)
                        k = add_header(&l, "Authorization", sig.authorization);
                if (k < 0)
                        goto fail;
        }
        /* No 100-continue round trip: our bodies are small. */
        k = add_header(&l, "Expect", "");
        if (k < 0)
                goto fail;

        sigv4_result_done(&sig);
        free(sh);
        *ret = l;
        return 0;
fail:
        sigv4_result_done(&sig);
        free(sh);
        slist_free_wiped(l);
        return k;
}

static int fake_answer_cb(sd_event_source *s, void *userdata);

static size_t read_body_once(char *buf, size_t size, size_t nitems, void *userdata) {
        HttpRequest *r = userdata;
        size_t n = MIN(size * nitems, r->body_len - r->body_pos);

        memcpy(buf, (const char *) r->body + r->body_pos, n);
        r->body_pos += n;
        return n;
}

static int refuse_rewind(void *userdata, curl_off_t offset, int origin) {
        return CURL_SEEKFUNC_CANTSEEK;
}

static int request_start_attempt(HttpRequest *r) {
        HttpClient *c = r->client;
        CURL *e;
        int k;

        slist_free_wiped(r->header_list);
        r->header_list = NULL;
        k = request_build_headers(r, &r->header_list);
        if (k < 0)
                return k;

        r->response.body = secret_free(r->response.body);
        r->response.body = secret_new(0);
        if (!r->response.body)
                return -ENOMEM;
        r->server_date = 0;
        r->response.request_id[0] = 0;
        r->curl_errbuf[0] = 0;

        if (c->fake) {
                /* Answered from the loop, like a network answer. */
                k = sd_event_add_defer(c->event, &r->fake_answer, fake_answer_cb, r);
                if (k < 0)
                        return k;
                c->n_inflight++;
                r->attempts++;
                return 0;
        }

        e = curl_easy_init();
        if (!e)
                return -ENOMEM;

        usec_t timeout = r->timeout ?: c->opts.timeout;
        bool ok = curl_easy_setopt(e, CURLOPT_URL, r->url) == CURLE_OK &&
                  curl_easy_setopt(e, CURLOPT_PRIVATE, r) == CURLE_OK &&
                  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
                  /* The path was signed as we send it: curl must not squash dot segments. */
                  curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L) == CURLE_OK &&
                  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, r->allow_http ? "http,https" : "https") == CURLE_OK &&
                  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
                  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK &&
                  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK &&
                  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long) usec_to_msec_ceil(c->opts.connect_timeout)) == CURLE_OK &&
                  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long) usec_to_msec_ceil(timeout)) == CURLE_OK &&
                  curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) c->opts.max_response) == CURLE_OK &&
                  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb) == CURLE_OK &&
                  curl_easy_setopt(e, CURLOPT_WRITEDATA, r) == CURLE_OK &&
                  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb) == CURLE_OK &&
                  curl_easy_setopt(e, CURLOPT_HEADERDATA, r) == CURLE_OK &&
                  curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->header_list) == CURLE_OK &&
                  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->curl_errbuf) == CURLE_OK &&
                  curl_easy_setopt(e, CURLOPT_USERAGENT, "keyrotd/" PACKAGE_VERSION) == CURLE_OK;

        /* Only the OpenSSL backend has an SSL_CTX: elsewhere this option is
         * refused, and that is no reason to fail the request. */
        if (ok && startswith(r->url, "https:"))
                (void) curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_cb);
        if (ok && r->fresh_connection)
                ok = curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L) == CURLE_OK &&
                     curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L) == CURLE_OK;
        if (ok && streq(r->method, "HEAD"))
                ok = curl_easy_setopt(e, CURLOPT_NOBODY, 1L) == CURLE_OK;
        else if (ok && !streq(r->method, "GET"))
                ok = curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method) == CURLE_OK;
        if (ok && r->once_only && streq(r->method, "POST")) {
                /*
                 * libcurl (7.88 at least) sends a request again, on a fresh
                 * connection and without telling anyone, when a reused
                 * keep-alive connection dies before the first answer byte
                 * ("Connection died, retrying a fresh connect"). The server
                 * may well have carried the first one out: for
                 * CreateAccessKey that is a second key, or LimitExceeded and
                 * an orphan. Before it resends a body it must rewind it; a
                 * body given through a read function that cannot seek makes
                 * that rewind, and so the resend, fail (CURLE_SEND_FAIL_REWIND),
                 * and the engine learns that the outcome is unknown.
                 */
                r->body_pos = 0;
                ok = curl_easy_setopt(e, CURLOPT_POST, 1L) == CURLE_OK &&
                     curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) r->body_len) == CURLE_OK &&
                     curl_easy_setopt(e, CURLOPT_READFUNCTION, read_body_once) == CURLE_OK &&
                     curl_easy_setopt(e, CURLOPT_READDATA, r) == CURLE_OK &&
                     curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, refuse_rewind) == CURLE_OK &&
                     curl_easy_setopt(e, CURLOPT_SEEKDATA, r) == CURLE_OK;
        } else if (ok && (r->body_len > 0 || streq(r->method, "POST") || streq(r->method, "PUT")))
                ok = curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) r->body_len) == CURLE_OK &&
                     curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body ?: "") == CURLE_OK;
        if (!ok) {
                curl_easy_cleanup(e);
                return -EINVAL;
        }

        if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
                curl_easy_cleanup(e);
                return -ENOMEM;
        }
        r->easy = e;
        c->n_inflight++;
        r->attempts++;
        return 0;
}

static bool error_code_in(const char *code, const char *const *list) {
        for (; *list; list++)
                if (streq(code, *list))
                        return true;
        return false;
}

/* The SDKs' lists of throttling and transient error codes. "LimitExceeded"
 * (IAM's two-key limit) is deliberately absent: it is permanent. */
static const char *const throttling_codes[] = {
        "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
        "TooManyRequestsException", "ProvisionedThroughputExceededException", "TransactionInProgressException",
        "RequestLimitExceeded", "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled",
        "SlowDown", "PriorRequestNotComplete", "EC2ThrottledException", NULL,
};
static const char *const transient_codes[] = {
        "RequestTimeout", "RequestTimeoutException", "InternalError", "InternalFailure",
        "ServiceUnavailable", NULL,
};
static const char *const skew_codes[] = {
        "RequestTimeTooSkewed", "RequestExpired", "InvalidSignatureException", "SignatureDoesNotMatch",
        "AuthFailure", "RequestInTheFuture", NULL,
};

typedef enum RetryKind {
        RETRY_NO,
        RETRY_TRANSIENT,
        RETRY_TIMEOUT,
        RETRY_SKEW,
} RetryKind;

/* once_only: may this failed attempt go again? Only when it certainly did
 * nothing. Everything else that is not an answer from AWS leaves the
 * outcome unknown. */
static RetryKind classify_once_only(HttpRequest *r, CURLcode cc) {
        const char *code = r->response.aws_error.code;

        switch (cc) {
        case CURLE_OK:
                break;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_CONNECT:
        case CURLE_SSL_CONNECT_ERROR:
                return RETRY_TRANSIENT; /* no request was ever sent */
        default:
                r->response.outcome_unknown = true;
                return RETRY_NO;
        }
        if (code[0] && error_code_in(code, skew_codes) && r->server_date > 0) {
                int64_t delta = (int64_t) r->server_date - (int64_t) client_now(r->client);
                if (delta > SKEW_THRESHOLD_SEC || delta < -SKEW_THRESHOLD_SEC)
                        return RETRY_SKEW;
        }
        if (code[0] && error_code_in(code, throttling_codes))
                return RETRY_TRANSIENT; /* refused before anything was done */
        if (r->response.status >= 500)
                r->response.outcome_unknown = true;
        return RETRY_NO;
}

static RetryKind classify(HttpRequest *r, CURLcode cc) {
        const char *code = r->response.aws_error.code;

        if (r->once_only)
                return classify_once_only(r, cc);
        if (cc != CURLE_OK) {
                switch (cc) {
                case CURLE_OPERATION_TIMEDOUT:
                        return RETRY_TIMEOUT;
                case CURLE_COULDNT_RESOLVE_HOST:
                case CURLE_COULDNT_CONNECT:
                case CURLE_SEND_ERROR:
                case CURLE_RECV_ERROR:
                case CURLE_GOT_NOTHING:
                case CURLE_PARTIAL_FILE:
                case CURLE_SSL_CONNECT_ERROR:
                        return RETRY_TRANSIENT;
                default:
                        return RETRY_NO;
                }
        }
        if (code[0] && error_code_in(code, skew_codes) && r->server_date > 0) {
                int64_t delta = (int64_t) r->server_date - (int64_t) client_now(r->client);
                if (delta > SKEW_THRESHOLD_SEC || delta < -SKEW_THRESHOLD_SEC)
                        return RETRY_SKEW;
        }
        if (code[0] && (error_code_in(code, throttling_codes) || error_code_in(code, transient_codes)))
                return RETRY_TRANSIENT;
        if (r->response.status == 429 || r->response.status == 500 || r->response.status == 502 ||
            r->response.status == 503 || r->response.status == 504)
                return RETRY_TRANSIENT;
        return RETRY_NO;
}

static void request_finish(HttpRequest *r) {
        HttpClient *c = r->client;

        /* Standard mode: a success repays what its retries cost, or tops
         * the bucket up by one when it needed none. */
        if (r->response.error == 0 && r->response.status < 300) {
                unsigned refund = r->retry_cost_paid ?: 1;
                c->retry_tokens += refund;
                if (c->retry_tokens > c->opts.retry_budget)
                        c->retry_tokens = c->opts.retry_budget;
        }
        r->response.attempts = r->attempts;
        r->callback(r, &r->response, r->userdata);
        request_free(r);
}

static int retry_timer_cb(sd_event_source *s, uint64_t usec, void *userdata) {
        HttpRequest *r = userdata;
        int k;

        r->retry_timer = sd_event_source_disable_unref(r->retry_timer);
        k = request_start_attempt(r);
        if (k < 0) {
                r->response.error = k;
                snprintf(r->response.error_text, sizeof r->response.error_text, "cannot start retry: %s", strerror(-k));
                request_finish(r);
        }
        return 0;
}

/* An attempt ended with cc and, when cc is CURLE_OK, HTTP status. */
static void request_completed(HttpRequest *r, CURLcode cc, long status) {
        HttpClient *c = r->client;

        memset(&r->response.aws_error, 0, sizeof r->response.aws_error);
        r->response.outcome_unknown = false;
        r->response.status = cc == CURLE_OK ? status : 0;
        r->response.error = 0;
        r->response.error_text[0] = 0;
        if (cc != CURLE_OK) {
                r->response.error = cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT :
                                    cc == CURLE_FILESIZE_EXCEEDED || cc == CURLE_WRITE_ERROR ? -EFBIG :
                                    cc == CURLE_UNSUPPORTED_PROTOCOL ? -EPROTONOSUPPORT : -ECONNRESET;
                snprintf(r->response.error_text, sizeof r->response.error_text, "%s",
                         r->curl_errbuf[0] ? r->curl_errbuf : curl_easy_strerror(cc));
        } else if (status >= 300 && r->response.body && r->response.body->len > 0)
                (void) xml_parse_error(r->response.body->data, r->response.body->len, &r->response.aws_error);

        RetryKind kind = classify(r, cc);
        unsigned max_attempts = r->max_attempts ?: c->opts.max_attempts;

        if (kind == RETRY_NO || r->attempts >= max_attempts) {
                request_finish(r);
                return;
        }

        usec_t delay = 0;
        if (kind == RETRY_SKEW) {
                /* Correct the clock and re-sign at once: nothing was wrong but our time. */
                c->skew = (int64_t) r->server_date - (int64_t) (time(NULL) + c->clock_offset);
        } else {
                unsigned cost = kind == RETRY_TIMEOUT ? RETRY_COST_TIMEOUT : RETRY_COST;
                if (c->retry_tokens < cost) {
                        request_finish(r);
                        return;
                }
                c->retry_tokens -= cost;
                r->retry_cost_paid += cost;

                /* Full jitter: uniform in [0, min(cap, 1 s * 2^(attempt-1))). */
                usec_t ceiling = USEC_PER_SEC << (r->attempts - 1 < 20 ? r->attempts - 1 : 20);
                if (ceiling > c->opts.max_backoff)
                        ceiling = c->opts.max_backoff;
                delay = (usec_t) ((double) ceiling * ((double) randombytes_random() / 4294967296.0));
        }

        int k = sd_event_add_time_relative(c->event, &r->retry_timer, CLOCK_MONOTONIC, delay, 1, retry_timer_cb, r);
        if (k < 0)
                request_finish(r);
}

static void request_done(HttpRequest *r, CURLcode cc) {
        long status = 0;

        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
        curl_multi_remove_handle(r->client->multi, r->easy);
        curl_easy_cleanup(r->easy);
        r->easy = NULL;
        r->client->n_inflight--;
        request_completed(r, cc, status);
}

static const char *header_value(const struct curl_slist *l, const char *name) {
        size_t n = strlen(name);

        for (; l; l = l->next)
                if (strncasecmp(l->data, name, n) == 0 && l->data[n] == ':')
                        return l->data[n + 1] == ' ' ? l->data + n + 2 : l->data + n + 1;
        return NULL;
}

static int fake_answer_cb(sd_event_source *s, void *userdata) {
        HttpRequest *r = userdata;
        HttpClient *c = r->client;
        const HttpFakeRequest req = {
                .method = r->method,
                .url = r->url,
                .service = r->service,
                .body = r->body,
                .body_len = r->body_len,
                .authorization = header_value(r->header_list, "Authorization"),
        };
        HttpFakeResponse resp = {};
        CURLcode cc = CURLE_OK;

        r->fake_answer = sd_event_source_disable_unref(r->fake_answer);
        c->n_inflight--;
        c->fake(&req, &resp, c->fake_userdata);
        snprintf(r->response.request_id, sizeof r->response.request_id, "%s", resp.request_id);
        if (resp.error < 0)
                cc = resp.error == -ETIMEDOUT ? CURLE_OPERATION_TIMEDOUT : CURLE_RECV_ERROR;
        else if (resp.body_len > 0 &&
                 secret_append(&r->response.body, resp.body, resp.body_len, c->opts.max_response) < 0)
                cc = CURLE_WRITE_ERROR;
        request_completed(r, cc, resp.status);
        return 0;
}

void http_client_set_fake(HttpClient *c, http_fake_t fake, void *userdata) {
        c->fake = fake;
        c->fake_userdata = userdata;
}

static void check_completed(HttpClient *c) {
        CURLMsg *msg;
        int left;

        while ((msg = curl_multi_info_read(c->multi, &left))) {
                HttpRequest *r = NULL;

                if (msg->msg != CURLMSG_DONE)
                        continue;
                curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &r);
                request_done(r, msg->data.result);
        }
}

static int io_cb(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        HttpClient *c = userdata;
        int action = 0, running;

        if (revents & EPOLLIN)
                action |= CURL_CSELECT_IN;
        if (revents & EPOLLOUT)
                action |= CURL_CSELECT_OUT;
        if (revents & (EPOLLERR | EPOLLHUP))
                action |= CURL_CSELECT_ERR;
        curl_multi_socket_action(c->multi, fd, action, &running);
        check_completed(c);
        return 0;
}

static int timer_cb(sd_event_source *s, uint64_t usec, void *userdata) {
        HttpClient *c = userdata;
        int running;

        curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        check_completed(c);
        return 0;
}

static int socket_function(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
        HttpClient *c = userp;
        sd_event_source *s = socketp;
        uint32_t events = 0;

        if (what == CURL_POLL_REMOVE) {
                if (s) {
                        sd_event_source_disable_unref(s);
                        curl_multi_assign(c->multi, fd, NULL);
                }
                return 0;
        }
        if (what & CURL_POLL_IN)
                events |= EPOLLIN;
        if (what & CURL_POLL_OUT)
                events |= EPOLLOUT;

        if (s) {
                if (sd_event_source_set_io_events(s, events) < 0)
                        return -1;
                return 0;
        }
        if (sd_event_add_io(c->event, &s, fd, events, io_cb, c) < 0)
                return -1;
        (void) sd_event_source_set_description(s, "curl-socket");
        if (curl_multi_assign(c->multi, fd, s) != CURLM_OK) {
                sd_event_source_disable_unref(s);
                return -1;
        }
        return 0;
}

static int timer_function(CURLM *multi, long timeout_ms, void *userp) {
        HttpClient *c = userp;

        if (timeout_ms < 0)
                return sd_event_source_set_enabled(c->timer, SD_EVENT_OFF) < 0 ? -1 : 0;
        if (sd_event_source_set_time_relative(c->timer, (usec_t) timeout_ms * USEC_PER_MSEC) < 0 ||
            sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT) < 0)
                return -1;
        return 0;
}

int http_client_new(sd_event *event, const HttpClientOptions *opts, HttpClient **ret) {
        HttpClient *c;
        int k;

        if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, malloc, wiping_free, wiping_realloc, strdup, calloc) !=
            CURLE_OK)
                return -EIO;
        k = secret_init();
        if (k < 0)
                return k;

        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        if (opts)
                c->opts = *opts;
        if (!c->opts.max_attempts)
                c->opts.max_attempts = DEFAULT_MAX_ATTEMPTS;
        if (!c->opts.connect_timeout)
                c->opts.connect_timeout = DEFAULT_CONNECT_TIMEOUT;
        if (!c->opts.timeout)
                c->opts.timeout = DEFAULT_TIMEOUT;
        if (!c->opts.max_response)
                c->opts.max_response = DEFAULT_MAX_RESPONSE;
        if (!c->opts.max_backoff)
                c->opts.max_backoff = DEFAULT_MAX_BACKOFF;
        if (!c->opts.retry_budget)
                c->opts.retry_budget = DEFAULT_RETRY_BUDGET;
        c->retry_tokens = c->opts.retry_budget;
        c->event = sd_event_ref(event);

        k = sigv4_key_cache_new(&c->key_cache);
        if (k < 0)
                goto fail;
        /* Accuracy 1 µs: sd-event's default (250 ms) would stall every
         * transfer that libcurl asks to resume "now". */
        k = sd_event_add_time(event, &c->timer, CLOCK_MONOTONIC, USEC_INFINITY, 1, timer_cb, c);
        if (k < 0)
                goto fail;
        (void) sd_event_source_set_description(c->timer, "curl-timer");
        c->multi = curl_multi_init();
        if (!c->multi) {
                k = -ENOMEM;
                goto fail;
        }
        if (curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, socket_function) != CURLM_OK ||
            curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c) != CURLM_OK ||
            curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_function) != CURLM_OK ||
            curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c) != CURLM_OK) {
                k = -EINVAL;
                goto fail;
        }
        *ret = c;
        return 0;
fail:
        http_client_free(c);
        return k;
}

HttpClient *http_client_free(HttpClient *c) {
        if (!c)
                return NULL;
        if (c->multi)
                curl_multi_cleanup(c->multi);
        sd_event_source_disable_unref(c->timer);
        sigv4_key_cache_free(c->key_cache);
        sd_event_unref(c->event);
        free(c);
        return NULL;
}

sd_event *http_client_get_event(HttpClient *c) {
        return c->event;
}

int64_t http_client_get_skew(HttpClient *c) {
        return c->skew;
}

void http_client_set_clock_offset(HttpClient *c, int64_t seconds) {
        c->clock_offset = seconds;
}

static int parse_endpoint(HttpRequest *r) {
        CURLU *u = curl_url();
        char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
        int k = -EINVAL;

        if (!u)
                return -ENOMEM;
        if (curl_url_set(u, CURLUPART_URL, r->endpoint, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
                goto out;
        if (!streq(scheme, "https") && !(r->allow_http && streq(scheme, "http"))) {
                k = -EPROTONOSUPPORT;
                goto out;
        }
        /* An endpoint is scheme://host[:port]; a path would be signed wrongly. */
        if (curl_url_get(u, CURLUPART_PATH, &path, 0) == CURLUE_OK && path && !streq(path, "/"))
                goto out;
        if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK && port)
                k = asprintf_safe(&r->host, "%s:%s", host, port);
        else
                k = (r->host = strdup(host)) ? 0 : -ENOMEM;
out:
        curl_free(scheme);
        curl_free(host);
        curl_free(port);
        curl_free(path);
        curl_url_cleanup(u);
        return k;
}

int http_submit(HttpClient *c, const HttpRequestSpec *spec, http_callback_t cb, void *userdata, HttpRequest **ret) {
        HttpRequest *r;
        int k;

        if (!spec->method || !spec->endpoint || !spec->path || spec->path[0] != '/' || !cb)
                return -EINVAL;
        if (spec->creds && (!spec->region || !spec->service))
                return -EINVAL;

        r = calloc(1, sizeof *r);
        if (!r)
                return -ENOMEM;
        r->client = c;
        r->callback = cb;
        r->userdata = userdata;
        r->max_attempts = spec->max_attempts;
        r->fresh_connection = spec->fresh_connection;
        r->sensitive_response = spec->sensitive_response;
        r->allow_http = spec->allow_http;
        r->once_only = spec->once_only;
        r->timeout = spec->timeout;
        r->creds = spec->creds ? aws_credentials_ref(spec->creds) : NULL;

        r->method = strdup(spec->method);
        r->endpoint = strdup(spec->endpoint);
        r->query = strdup(spec->query ?: "");
        r->region = strdup(spec->region ?: "");
        r->service = strdup(spec->service ?: "");
        r->headers = calloc(spec->n_headers ?: 1, sizeof(HttpHeader));
        if (!r->method || !r->endpoint || !r->query || !r->region || !r->service || !r->headers) {
                k = -ENOMEM;
                goto fail;
        }
        for (size_t i = 0; i < spec->n_headers; i++) {
                r->headers[i].name = strdup(spec->headers[i].name);
                r->headers[i].value = strdup(spec->headers[i].value);
                r->n_headers++;
                if (!r->headers[i].name || !r->headers[i].value) {
                        k = -ENOMEM;
                        goto fail;
                }
        }
        if (spec->body_len > 0) {
                r->body = malloc(spec->body_len);
                if (!r->body) {
                        k = -ENOMEM;
                        goto fail;
                }
                memcpy(r->body, spec->body, spec->body_len);
                r->body_len = spec->body_len;
        }
        sha256_hex(r->body ?: "", r->body_len, r->payload_hash);

        k = parse_endpoint(r);
        if (k < 0)
                goto fail;
        k = aws_uri_encode(spec->path, true, &r->wire_path);
        if (k < 0)
                goto fail;
        k = asprintf_safe(&r->url, "%s%s%s%s", r->endpoint, r->wire_path, r->query[0] ? "?" : "", r->query);
        if (k < 0)
                goto fail;

        k = request_start_attempt(r);
        if (k < 0)
                goto fail;
        if (ret)
                *ret = r;
        return 0;
fail:
        request_free(r);
        return k;
}

void http_request_cancel(HttpRequest *r) {
        request_free(r);
}

typedef struct SyncState {
        bool done;
        HttpResponse *response;
        int error;
} SyncState;

static void sync_cb(HttpRequest *req, const HttpResponse *resp, void *userdata) {
        SyncState *st = userdata;
        HttpResponse *copy = calloc(1, sizeof *copy);

        st->done = true;
        if (!copy) {
                st->error = -ENOMEM;
                return;
        }
        *copy = *resp;
        copy->body = NULL;
        if (resp->body) {
                copy->body = secret_dup(resp->body->data, resp->body->len);
                if (!copy->body) {
                        free(copy);
                        st->error = -ENOMEM;
                        return;
                }
        }
        st->response = copy;
}

int http_perform(HttpClient *c, const HttpRequestSpec *spec, HttpResponse **ret) {
        SyncState st = {};
        int k;

        k = http_submit(c, spec, sync_cb, &st, NULL);
        if (k < 0)
                return k;
        while (!st.done) {
                k = sd_event_run(c->event, UINT64_MAX);
                if (k < 0)
                        return k;
        }
        if (st.error < 0)
                return st.error;
        *ret = st.response;
        return 0;
}

HttpResponse *http_response_free(HttpResponse *r) {
        if (!r)
                return NULL;
        secret_free(r->body);
        free(r);
        return NULL;
}

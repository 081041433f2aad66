/* SPDX-License-Identifier: MIT */
/*
 * http.h — the transport: libcurl's multi interface driven by sd-event,
 * SigV4 signing of every attempt, and the AWS SDK "standard" retry mode.
 *
 * Owns: connection reuse, connect/total timeouts, TLS verification (always
 * on), the https-only rule (http only for an explicit endpoint override),
 * response size limits, retries (full-jitter exponential backoff capped at
 * 20 s, 5 attempts, a token-bucket retry budget), and clock-skew correction
 * from the response Date header. Knows nothing about IAM or S3 semantics
 * beyond which error codes are transient.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <systemd/sd-event.h>

#include "aws/credentials.h"
#include "aws/types.h"
#include "basic/secret.h"
#include "basic/util.h"

typedef struct HttpClient HttpClient;
typedef struct HttpRequest HttpRequest;

typedef struct HttpHeader {
        const char *name;
        const char *value;
} HttpHeader;

typedef struct HttpRequestSpec {
        const char *method;         /* GET, HEAD, PUT, POST, DELETE */
        const char *endpoint;       /* scheme://host[:port], no path */
        const char *path;           /* decoded path ("/bucket/key"); encoded here */
        const char *query;          /* canonical AWS-encoded query, no '?'; may be NULL */
        const HttpHeader *headers;  /* extra headers, e.g. Content-Type */
        size_t n_headers;
        const void *body;           /* copied at submit */
        size_t body_len;

        AwsCredentials *creds;      /* NULL: unsigned (IMDS) */
        const char *region;
        const char *service;        /* "iam", "s3": s3 gets single path encoding */

        unsigned max_attempts;      /* 0: the client's default (5); 1: never retried */
        /* Not idempotent (CreateAccessKey, CreateUser): sent again only when
         * it certainly did nothing (refused as throttled, a connection that
         * never opened, a signature refused for clock skew), never by
         * libcurl's own decision; an attempt whose outcome cannot be known
         * ends the request with outcome_unknown. */
        bool once_only;
        bool fresh_connection;      /* new TCP connection, not reused afterwards */
        bool sensitive_response;    /* body holds a secret: keep it in secure memory */
        bool allow_http;            /* endpoint is an explicit override naming http:// */
        usec_t timeout;             /* per attempt; 0: the client's default */
} HttpRequestSpec;

typedef struct HttpResponse {
        int error;              /* 0, or negative errno for transport failure */
        char error_text[256];   /* transport failure in words (curl's), or "" */
        long status;            /* HTTP status; 0 when no response arrived */
        Secret *body;           /* always secure memory; NUL-terminated */
        AwsError aws_error;     /* parsed when status >= 300 and the body is an AWS error */
        char request_id[128];   /* x-amzn-RequestId / x-amz-request-id, or "" */
        unsigned attempts;      /* attempts made, including the final one */
        /* once_only: the request may have been carried out, and no answer
         * says whether (the connection failed after sending, a timeout, a
         * 5xx): only reading the state back can tell. */
        bool outcome_unknown;
} HttpResponse;

typedef void (*http_callback_t)(HttpRequest *req, const HttpResponse *resp, void *userdata);

typedef struct HttpClientOptions {
        unsigned max_attempts;     /* default 5 */
        usec_t connect_timeout;    /* default 5 s */
        usec_t timeout;            /* default 30 s per attempt */
        size_t max_response;       /* default 4 MiB */
        usec_t max_backoff;        /* default 20 s */
        unsigned retry_budget;     /* tokens; default 500 */
} HttpClientOptions;

int http_client_new(sd_event *event, const HttpClientOptions *opts, HttpClient **ret);
HttpClient *http_client_free(HttpClient *c);
static inline void http_client_freep(HttpClient **c) {
        http_client_free(*c);
}
sd_event *http_client_get_event(HttpClient *c);
/* Seconds the server clock is ahead of ours, as last corrected. */
int64_t http_client_get_skew(HttpClient *c);
/* Tests: pretend the local clock is off by this many seconds. */
void http_client_set_clock_offset(HttpClient *c, int64_t seconds);

/*
 * Tests: answer every request in-process instead of over the network. The
 * request is built and signed as for the network; the answer comes back
 * from the loop through the same error classification and retries.
 */
typedef struct HttpFakeRequest {
        const char *method;
        const char *url;           /* as it would be sent */
        const char *service;       /* "iam", "s3", "" */
        const void *body;
        size_t body_len;
        const char *authorization; /* the Authorization header, or NULL */
} HttpFakeRequest;

typedef struct HttpFakeResponse {
        long status;
        int error;          /* negative errno: the connection failed (-ETIMEDOUT: timed out) */
        const char *body;   /* copied */
        size_t body_len;
        char request_id[64];
} HttpFakeResponse;

typedef void (*http_fake_t)(const HttpFakeRequest *req, HttpFakeResponse *resp, void *userdata);
void http_client_set_fake(HttpClient *c, http_fake_t fake, void *userdata);

/*
 * Start a request; the callback runs exactly once from the event loop
 * (never from inside http_submit), unless the request is cancelled first.
 * The response and its body are valid only during the callback.
 */
int http_submit(HttpClient *c, const HttpRequestSpec *spec, http_callback_t cb, void *userdata,
                HttpRequest **ret);
void http_request_cancel(HttpRequest *r);

/*
 * Synchronous convenience for programs without their own loop (keyrotctl,
 * start-up, tests): runs the client's event loop until the request ends.
 * *ret owns a copy of the response; free it with http_response_free.
 */
int http_perform(HttpClient *c, const HttpRequestSpec *spec, HttpResponse **ret);
HttpResponse *http_response_free(HttpResponse *r);
static inline void http_response_freep(HttpResponse **r) {
        http_response_free(*r);
}

/* AWS query encoding (RFC 3986 unreserved kept, the rest %XX upper case). */
int aws_uri_encode(const char *s, bool keep_slash, char **ret);
/* application/x-www-form-urlencoded as the AWS SDKs send Query-protocol
 * bodies: the same, but a space becomes '+'. (The body is signed as sent,
 * so either form is valid for AWS; moto re-encodes spaces as '+' before it
 * checks the signature, so only this one works there.) */
int aws_form_encode(const char *s, char **ret);

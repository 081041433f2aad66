/* SPDX-License-Identifier: MIT */
/*
 * sigv4.h — AWS Signature Version 4 (header-based, AWS4-HMAC-SHA256).
 *
 * Owns: the canonical request (path normalisation and the second encoding
 * for non-S3 services, query canonicalisation, header canonicalisation), the
 * string to sign, the Authorization header value, the derivation of signing
 * keys from a secret access key, and a small cache of derived keys.
 *
 * Key material (the "AWS4"+secret key, every derived key, the cache) lives
 * only in libsodium secure memory. The canonical request may contain the
 * session token, so it is wiped when the result is released.
 *
 * Not thread safe: a SigV4KeyCache belongs to one event loop.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Inputs beyond these are refused with -E2BIG; AWS itself refuses far less. */
#define SIGV4_MAX_HEADERS 1000U
#define SIGV4_MAX_PATH 16384U
#define SIGV4_MAX_QUERY 65536U
#define SIGV4_MAX_HEADER_NAME 256U
#define SIGV4_MAX_HEADER_VALUE 16384U
#define SIGV4_MAX_HEADER_BYTES 262144U /* all names and values together */
#define SIGV4_MAX_ACCESS_KEY_ID 128U
#define SIGV4_MAX_SECRET 1024U
#define SIGV4_MAX_SCOPE_PART 63U /* region, service */
#define SIGV4_MAX_METHOD 32U

/* Derived keys kept per cache; a daemon signs with very few identities. */
#define SIGV4_KEY_CACHE_SIZE 8U

#define SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
#define SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

typedef struct SigV4Header {
        const char *name;
        const char *value;
} SigV4Header;

typedef struct SigV4Request {
        const char *method;
        const char *path;            /* as sent on the wire: already URI-encoded once by the caller */
        const char *query;           /* as sent on the wire, without '?'; NULL or "" = none */
        const SigV4Header *headers;  /* as sent; must include Host */
        size_t n_headers;
        const char *payload_hash;    /* lowercase hex SHA-256 of the body, or "UNSIGNED-PAYLOAD" */
} SigV4Request;

typedef struct SigV4Params {
        const char *access_key_id;
        const char *secret_access_key;  /* NUL-terminated, lives in secure memory */
        const char *session_token;      /* NULL (or "") = none */
        const char *region;
        const char *service;            /* "s3" => S3 rules: path used as is (no normalisation, no second encoding) */
        time_t when;                    /* UTC seconds */
} SigV4Params;

typedef struct SigV4Result {
        char amz_date[17];              /* "20150830T123600Z": caller sends it as X-Amz-Date */
        char *canonical_request;        /* heap */
        char *string_to_sign;           /* heap */
        char *authorization;            /* heap: the Authorization header value */
        char signature[65];             /* lowercase hex, also inside authorization */

        /*
         * Headers the signer signed that were not among req->headers; the
         * caller must put each on the wire exactly as stated, or the
         * signature will not verify.
         */
        bool added_date;                /* X-Amz-Date: amz_date */
        bool added_security_token;      /* X-Amz-Security-Token: p->session_token */
        bool added_content_sha256;      /* X-Amz-Content-SHA256: req->payload_hash (s3 only) */
} SigV4Result;

typedef struct SigV4KeyCache SigV4KeyCache;

/**
 * sigv4_key_cache_new() - allocate an empty cache of derived signing keys
 * @ret: the new cache, in libsodium secure memory
 *
 * The cache holds up to SIGV4_KEY_CACHE_SIZE keys, one per (access key id,
 * secret, date, region, service), and evicts the least recently used.
 *
 * Return: 0, or -ENOMEM (also when libsodium cannot be initialised).
 */
int sigv4_key_cache_new(SigV4KeyCache **ret);

/**
 * sigv4_key_cache_free() - wipe and free a cache
 * @c: the cache, or NULL
 *
 * Return: NULL.
 */
SigV4KeyCache *sigv4_key_cache_free(SigV4KeyCache *c);

static inline void sigv4_key_cache_freep(SigV4KeyCache **c) {
        sigv4_key_cache_free(*c);
}

/**
 * sigv4_key_cache_stats() - how often the cache was useful (for tests)
 * @c: the cache
 * @ret_hits: lookups answered from the cache, or NULL
 * @ret_misses: lookups that derived a key, or NULL
 * @ret_entries: keys held now, or NULL
 */
void sigv4_key_cache_stats(const SigV4KeyCache *c, uint64_t *ret_hits, uint64_t *ret_misses,
                           size_t *ret_entries);

/**
 * sigv4_sign() - sign one request with AWS Signature Version 4
 * @cache: derived-key cache, or NULL to derive the key every time
 * @req: the request as it will be sent
 * @p: credentials, scope and time
 * @ret: the signature; release with sigv4_result_done()
 *
 * X-Amz-Date (from @p->when) is signed unless @req already carries it, in
 * which case it must equal that value. X-Amz-Security-Token is signed when
 * @p has a session token and @req does not carry the header (when it does,
 * it must equal the token). For service "s3", X-Amz-Content-SHA256 is
 * signed as @req->payload_hash when @req does not carry it; for any
 * service, a carried X-Amz-Content-SHA256 must equal @req->payload_hash.
 * The flags in @ret say which of these the caller must add to the wire.
 *
 * Hop-by-hop headers and those that proxies rewrite (Connection, Expect,
 * Keep-Alive, Proxy-Authenticate, Proxy-Authorization, TE, Trailer,
 * Transfer-Encoding, Upgrade, User-Agent, X-Amzn-Trace-Id) are not signed,
 * as in the AWS SDKs. An Authorization header in @req is refused.
 *
 * Return: 0; -EINVAL for a malformed or inconsistent input (missing or
 * repeated Host, a header value with a bare CR/LF or control character, a
 * malformed %-escape in the query, ...); -E2BIG for an input beyond the
 * SIGV4_MAX_* bounds; -ENOMEM; -EIO when OpenSSL fails. @ret is untouched
 * on failure.
 */
int sigv4_sign(SigV4KeyCache *cache, const SigV4Request *req, const SigV4Params *p, SigV4Result *ret);

/**
 * sigv4_result_done() - release what sigv4_sign() allocated
 * @r: a result filled by sigv4_sign(), or zero-initialised; may be NULL
 *
 * Safe to call twice.
 */
void sigv4_result_done(SigV4Result *r);

/**
 * sigv4_derive_signing_key() - the AWS4 key derivation, exposed for tests
 * @secret: the secret access key
 * @date: "YYYYMMDD"
 * @region: e.g. "us-east-1"
 * @service: e.g. "iam"
 * @out: the 32-byte signing key; should itself be secure memory
 *
 * Return: 0, -EINVAL, -E2BIG, -ENOMEM or -EIO.
 */
int sigv4_derive_signing_key(const char *secret, const char *date, const char *region,
                             const char *service, uint8_t out[static 32]);

/**
 * sha256_hex() - lowercase hex SHA-256 of a buffer
 * @data: the bytes (may be NULL when @len is 0)
 * @len: their number
 * @out: 64 hex digits and a NUL; the empty string if OpenSSL fails
 */
void sha256_hex(const void *data, size_t len, char out[static 65]);

/* SPDX-License-Identifier: MIT */
/*
 * AWS Signature Version 4: canonical request, string to sign, signing-key
 * derivation and the derived-key cache. See sigv4.h for the contract.
 *
 * The canonicalisation follows what AWS services verify and what botocore
 * produces (the differential test holds us to it): for services other than
 * S3 the path is stripped of dot segments and empty segments and then
 * URI-encoded a second time; S3 signs the wire path as is.
 */
#include "aws/sigv4.h"

#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "basic/hex.h"
#include "basic/secret.h"
#include "basic/util.h"

#define ALGORITHM "AWS4-HMAC-SHA256"
#define SHA256_LEN 32U

/*
 * Headers that intermediaries add, drop or rewrite: signing them would make
 * a correct request fail behind a proxy. The same list as botocore's, so
 * the two signers agree on what is covered.
 */
static const char *const unsigned_headers[] = {
        "connection", "expect",  "keep-alive",        "proxy-authenticate", "proxy-authorization", "te",
        "trailer",    "upgrade", "transfer-encoding", "user-agent",         "x-amzn-trace-id",
};

typedef struct CacheEntry {
        bool used;
        uint64_t last_use;
        char access_key_id[SIGV4_MAX_ACCESS_KEY_ID + 1];
        char date[9];
        char region[SIGV4_MAX_SCOPE_PART + 1];
        char service[SIGV4_MAX_SCOPE_PART + 1];
        /*
         * A keyed hash of the secret: an access key id never changes its
         * secret at AWS, but tests and emulators reuse ids, and a stale key
         * would fail every request with SignatureDoesNotMatch.
         */
        uint8_t secret_tag[crypto_generichash_BYTES];
        uint8_t key[SHA256_LEN];
} CacheEntry;

struct SigV4KeyCache {
        uint64_t clock;
        uint64_t hits, misses;
        uint8_t tag_key[crypto_generichash_KEYBYTES];
        CacheEntry entries[SIGV4_KEY_CACHE_SIZE];
};

static inline void evp_mac_freep(EVP_MAC **m) {
        EVP_MAC_free(*m);
}
static inline void evp_mac_ctx_freep(EVP_MAC_CTX **c) {
        EVP_MAC_CTX_free(*c);
}

/* ---- a growable string for the (non-secret) canonical forms ---- */

typedef struct Buf {
        char *data;
        size_t len, cap;
        int error;
} Buf;

static void buf_wipe(Buf *b) {
        if (b->data) {
                OPENSSL_cleanse(b->data, b->cap);
                free(b->data);
        }
        *b = (Buf) {};
}

static void buf_put(Buf *b, const void *p, size_t n) {
        char *d;
        size_t cap;

        if (b->error)
                return;
        if (n > SIZE_MAX / 4 || b->len > SIZE_MAX / 4) {
                b->error = -E2BIG;
                return;
        }
        if (b->len + n + 1 > b->cap) {
                cap = b->cap ? b->cap : 256;
                while (cap < b->len + n + 1)
                        cap *= 2;
                /*
                 * The canonical request carries the session token: grow by
                 * copy and wipe, so no stale copy stays behind in the heap.
                 */
                d = malloc(cap);
                if (!d) {
                        b->error = -ENOMEM;
                        return;
                }
                if (b->data) {
                        memcpy(d, b->data, b->len);
                        OPENSSL_cleanse(b->data, b->cap);
                        free(b->data);
                }
                b->data = d;
                b->cap = cap;
        }
        if (n > 0)
                memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = 0;
}

static void buf_puts(Buf *b, const char *s) {
        buf_put(b, s, strlen(s));
}

static void buf_putc(Buf *b, char c) {
        buf_put(b, &c, 1);
}

/* Hand over the string ("" when nothing was written); 0 or the first error. */
static int buf_take(Buf *b, char **ret) {
        if (!b->error && !b->data)
                buf_put(b, "", 0);
        if (b->error) {
                int r = b->error;
                buf_wipe(b);
                return r;
        }
        *ret = TAKE_PTR(b->data);
        *b = (Buf) {};
        return 0;
}

/* ---- character classes ---- */

static bool is_unreserved(unsigned char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
               c == '_' || c == '.' || c == '~';
}

/* RFC 9110 token characters: what a method or header name may hold. */
static bool is_tchar(unsigned char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_ctl(unsigned char c) {
        return c < 0x20 || c == 0x7f;
}

static void buf_put_encoded(Buf *b, const char *s, size_t n, bool keep_slash) {
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) s[i];

                if (is_unreserved(c) || (keep_slash && c == '/'))
                        buf_putc(b, (char) c);
                else {
                        char esc[3] = { '%', hexchar_upper(c >> 4), hexchar_upper(c) };
                        buf_put(b, esc, sizeof(esc));
                }
        }
}

/*
 * Bounded length check that never reads past max+1 bytes: the caller's
 * strings are not trusted to be short.
 */
static int check_len(const char *s, size_t max, size_t *ret_len) {
        size_t n = strnlen(s, max + 1);

        if (n > max)
                return -E2BIG;
        *ret_len = n;
        return 0;
}

/*
 * @s (NULL: -EINVAL) of @min to @max bytes (-EINVAL, -E2BIG), each one
 * that @ok accepts (-EINVAL). Its length in *ret_len.
 */
static int check_chars(const char *s, size_t min, size_t max, bool (*ok)(unsigned char c), size_t *ret_len) {
        size_t n;
        int r;

        if (!s)
                return -EINVAL;
        r = check_len(s, max, &n);
        if (r < 0)
                return r;
        if (n < min)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (!ok((unsigned char) s[i]))
                        return -EINVAL;
        *ret_len = n;
        return 0;
}

/* ---- crypto primitives ---- */

void sha256_hex(const void *data, size_t len, char out[static 65]) {
        unsigned char md[SHA256_LEN];
        unsigned mdlen = 0;

        if (EVP_Digest(data ? data : "", len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != SHA256_LEN) {
                out[0] = 0;
                return;
        }
        hexmem(md, SHA256_LEN, out);
}

static int hmac_sha256(EVP_MAC *mac, const void *key, size_t key_len, const void *data, size_t len,
                       uint8_t out[static SHA256_LEN]) {
        _cleanup_(evp_mac_ctx_freep) EVP_MAC_CTX *ctx = NULL;
        OSSL_PARAM params[] = {
                OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *) "SHA256", 0),
                OSSL_PARAM_construct_end(),
        };
        size_t out_len = 0;

        ctx = EVP_MAC_CTX_new(mac);
        if (!ctx)
                return -ENOMEM;
        /* EVP_MAC_CTX_free cleanses OpenSSL's internal copy of the key. */
        if (EVP_MAC_init(ctx, key, key_len, params) != 1 || EVP_MAC_update(ctx, data, len) != 1 ||
            EVP_MAC_final(ctx, out, &out_len, SHA256_LEN) != 1 || out_len != SHA256_LEN)
                return -EIO;
        return 0;
}

static int fetch_hmac(EVP_MAC **ret) {
        EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);

        if (!mac)
                return -EIO;
        *ret = mac;
        return 0;
}

/*
 * Scratch space for one key derivation, in one guarded allocation: the
 * "AWS4"+secret key and every intermediate key sign for the whole day just
 * as well as the secret itself, so none of them may touch the ordinary heap
 * or the stack.
 */
typedef struct KeyScratch {
        uint8_t k_secret[4 + SIGV4_MAX_SECRET];
        uint8_t a[SHA256_LEN], b[SHA256_LEN];
        uint8_t signing[SHA256_LEN]; /* the result, when nobody caches it */
} KeyScratch;

static KeyScratch *key_scratch_new(void) {
        KeyScratch *s;

        if (secret_init() < 0)
                return NULL;
        s = secure_alloc(sizeof(KeyScratch));
        return s;
}

static void key_scratch_freep(KeyScratch **s) {
        secure_free(*s); /* wipes */
}

/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request") */
static int derive_key(EVP_MAC *mac, KeyScratch *s, const char *secret, size_t secret_len, const char *date,
                      const char *region, const char *service, uint8_t out[static SHA256_LEN]) {
        int r;

        if (secret_len > SIGV4_MAX_SECRET)
                return -E2BIG;
        memcpy(s->k_secret, "AWS4", 4);
        memcpy(s->k_secret + 4, secret, secret_len);
        r = hmac_sha256(mac, s->k_secret, 4 + secret_len, date, strlen(date), s->a);
        if (r >= 0)
                r = hmac_sha256(mac, s->a, SHA256_LEN, region, strlen(region), s->b);
        if (r >= 0)
                r = hmac_sha256(mac, s->b, SHA256_LEN, service, strlen(service), s->a);
        if (r >= 0)
                r = hmac_sha256(mac, s->a, SHA256_LEN, "aws4_request", strlen("aws4_request"), out);
        return r;
}

/* ---- parameter validation ---- */

/* Scope parts are joined with '/' in the credential: keep them plain. */
static bool is_scope_char(unsigned char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
               c == '.';
}

static int check_scope_part(const char *s) {
        size_t n;

        return check_chars(s, 1, SIGV4_MAX_SCOPE_PART, is_scope_char, &n);
}

/* The id appears in "Credential=ID/scope, SignedHeaders=...". */
static bool is_key_id_char(unsigned char c) {
        return c > 0x20 && c < 0x7f && !strchr("/,;=", c);
}

/* The token goes on the wire as a header value: visible ASCII only. */
static bool is_visible(unsigned char c) {
        return c > 0x20 && c < 0x7f;
}

static bool is_payload_hash(const char *s) {
        size_t n;

        if (!s)
                return false;
        if (streq(s, SIGV4_UNSIGNED_PAYLOAD))
                return true;
        if (check_len(s, 64, &n) < 0 || n != 64)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return true;
}

static int format_amz_date(time_t when, char out[static 17]) {
        struct tm tm;

        if (!gmtime_r(&when, &tm))
                return -EINVAL;
        /* Four-digit years only: the format has no room for more. */
        if (tm.tm_year + 1900 < 1970 || tm.tm_year + 1900 > 9999)
                return -EINVAL;
        if (strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm) != 16)
                return -EINVAL;
        return 0;
}

/* ---- canonical URI ---- */

/*
 * Non-S3 services verify against the normalised path: dot segments
 * resolved, empty segments dropped (so "//" collapses), a trailing slash
 * kept only when something remains before it. Then every byte outside
 * the unreserved set and '/' is encoded, which turns the wire encoding's
 * '%' into "%25": the double encoding these services expect.
 */
static int canonical_uri(const char *path, size_t len, bool s3, Buf *out) {
        _cleanup_free_ size_t *seg_start = NULL, *seg_len = NULL;
        size_t n_segs = 0, max_segs = 1;

        if (s3) {
                buf_put(out, path, len);
                return 0;
        }

        for (size_t i = 0; i < len; i++)
                if (path[i] == '/')
                        max_segs++;
        seg_start = calloc(max_segs, sizeof(size_t));
        seg_len = calloc(max_segs, sizeof(size_t));
        if (!seg_start || !seg_len)
                return -ENOMEM;

        for (size_t i = 0; i <= len;) {
                size_t j = i;
                while (j < len && path[j] != '/')
                        j++;
                size_t n = j - i;
                if (n == 0 || (n == 1 && path[i] == '.'))
                        ; /* empty or "." segment: nothing */
                else if (n == 2 && path[i] == '.' && path[i + 1] == '.') {
                        if (n_segs > 0)
                                n_segs--;
                } else {
                        seg_start[n_segs] = i;
                        seg_len[n_segs] = n;
                        n_segs++;
                }
                i = j + 1;
        }

        buf_putc(out, '/');
        for (size_t k = 0; k < n_segs; k++) {
                if (k > 0)
                        buf_putc(out, '/');
                buf_put_encoded(out, path + seg_start[k], seg_len[k], false);
        }
        if (n_segs > 0 && path[len - 1] == '/')
                buf_putc(out, '/');
        return 0;
}

/* ---- canonical query ---- */

typedef struct QueryPair {
        char *key;
        char *value;
} QueryPair;

static int query_pair_cmp(const void *a, const void *b) {
        const QueryPair *x = a, *y = b;
        int c = strcmp(x->key, y->key);
        return c != 0 ? c : strcmp(x->value, y->value);
}

/* Decode %XX escapes of s[0..n) and encode the result the AWS way. */
static int reencode(const char *s, size_t n, char **ret) {
        _cleanup_free_ char *raw = NULL;
        Buf b = {};
        size_t m = 0;

        raw = malloc(n + 1);
        if (!raw)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                if (s[i] != '%') {
                        raw[m++] = s[i];
                        continue;
                }
                /* A stray '%' means the caller's encoder is broken: do not guess. */
                int byte = i + 2 < n ? unhexbyte(s + i + 1) : -EINVAL;
                if (byte < 0)
                        return -EINVAL;
                raw[m++] = (char) byte;
                i += 2;
        }
        buf_put_encoded(&b, raw, m, false);
        return buf_take(&b, ret);
}

static int canonical_query(const char *query, size_t len, Buf *out) {
        QueryPair *pairs = NULL;
        size_t n_pairs = 0, max_pairs = 1;
        int r = 0;

        if (len == 0)
                return 0;

        for (size_t i = 0; i < len; i++)
                if (query[i] == '&')
                        max_pairs++;
        pairs = calloc(max_pairs, sizeof(QueryPair));
        if (!pairs)
                return -ENOMEM;

        /* A pair without '=' is a key with an empty value ("acl" -> "acl="). */
        for (size_t i = 0; i <= len && r >= 0;) {
                size_t j = i, eq;
                while (j < len && query[j] != '&')
                        j++;
                eq = i;
                while (eq < j && query[eq] != '=')
                        eq++;
                r = reencode(query + i, eq - i, &pairs[n_pairs].key);
                if (r >= 0)
                        r = reencode(eq < j ? query + eq + 1 : "", eq < j ? j - eq - 1 : 0,
                                     &pairs[n_pairs].value);
                n_pairs++;
                i = j + 1;
        }

        if (r >= 0) {
                qsort(pairs, n_pairs, sizeof(QueryPair), query_pair_cmp);
                for (size_t k = 0; k < n_pairs; k++) {
                        if (k > 0)
                                buf_putc(out, '&');
                        buf_puts(out, pairs[k].key);
                        buf_putc(out, '=');
                        buf_puts(out, pairs[k].value);
                }
        }

        for (size_t k = 0; k < n_pairs; k++) {
                free(pairs[k].key);
                free(pairs[k].value);
        }
        free(pairs);
        return r;
}

/* ---- canonical headers ---- */

typedef struct Header {
        char *name;  /* lower case */
        char *value; /* trimmed, whitespace runs folded to one space */
        size_t order;
} Header;

static int header_cmp(const void *a, const void *b) {
        const Header *x = a, *y = b;
        int c = strcmp(x->name, y->name);
        if (c != 0)
                return c;
        /* Repeated names keep their order: the server joins them that way. */
        return x->order < y->order ? -1 : x->order > y->order;
}

static int canonical_name(const char *name, char **ret) {
        size_t n;
        char *s;
        int r;

        if (!name)
                return -EINVAL;
        r = check_len(name, SIGV4_MAX_HEADER_NAME, &n);
        if (r < 0)
                return r;
        if (n == 0)
                return -EINVAL;
        s = malloc(n + 1);
        if (!s)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) name[i];
                if (!is_tchar(c)) {
                        free(s);
                        return -EINVAL;
                }
                s[i] = (char) (c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        }
        s[n] = 0;
        *ret = s;
        return 0;
}

/*
 * Trim, and fold every run of spaces, tabs and obs-fold line breaks into
 * one space. A CR or LF that is not part of an obs-fold (line break then
 * space or tab) or any other control character is refused: passed on to
 * curl it would split the header and inject another one.
 */
static int canonical_value(const char *value, char **ret) {
        _cleanup_free_ char *s = NULL;
        size_t n, o = 0;
        bool space = false;
        int r;

        if (!value)
                return -EINVAL;
        r = check_len(value, SIGV4_MAX_HEADER_VALUE, &n);
        if (r < 0)
                return r;
        s = malloc(n + 1);
        if (!s)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) value[i];

                if (c == '\r' && value[i + 1] != '\n')
                        return -EINVAL;
                if (c == '\n' && value[i + 1] != ' ' && value[i + 1] != '\t')
                        return -EINVAL;
                if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
                        space = o > 0;
                        continue;
                }
                if (is_ctl(c))
                        return -EINVAL;
                if (space) {
                        s[o++] = ' ';
                        space = false;
                }
                s[o++] = (char) c;
        }
        s[o] = 0;
        *ret = TAKE_PTR(s);
        return 0;
}

static bool is_unsigned_header(const char *lname) {
        for (size_t i = 0; i < ELEMENTSOF(unsigned_headers); i++)
                if (streq(lname, unsigned_headers[i]))
                        return true;
        return false;
}

typedef struct HeaderSet {
        Header *h;
        size_t n, cap;
        size_t bytes;
} HeaderSet;

static void header_set_done(HeaderSet *s) {
        for (size_t i = 0; i < s->n; i++) {
                free(s->h[i].name);
                if (s->h[i].value) {
                        /* May be the session token. */
                        OPENSSL_cleanse(s->h[i].value, strlen(s->h[i].value));
                        free(s->h[i].value);
                }
        }
        free(s->h);
        *s = (HeaderSet) {};
}

/* Takes ownership of name and value, also on failure. */
static int header_set_add(HeaderSet *s, char *name, char *value) {
        size_t add = strlen(name) + strlen(value);

        if (s->n >= s->cap || s->bytes + add > SIGV4_MAX_HEADER_BYTES) {
                OPENSSL_cleanse(value, strlen(value));
                free(name);
                free(value);
                return s->n >= s->cap ? -ENOMEM : -E2BIG;
        }
        s->bytes += add;
        s->h[s->n] = (Header) { .name = name, .value = value, .order = s->n };
        s->n++;
        return 0;
}

static int header_set_add_copy(HeaderSet *s, const char *name, const char *value) {
        char *n = strdup(name), *v = strdup(value);

        if (!n || !v) {
                free(n);
                free(v);
                return -ENOMEM;
        }
        return header_set_add(s, n, v);
}

/* The one header of this name, NULL if absent; -EINVAL if repeated. */
static int header_set_find(const HeaderSet *s, const char *lname, const Header **ret) {
        const Header *found = NULL;

        for (size_t i = 0; i < s->n; i++)
                if (streq(s->h[i].name, lname)) {
                        if (found)
                                return -EINVAL;
                        found = &s->h[i];
                }
        *ret = found;
        return 0;
}

typedef struct Added {
        bool date, token, content_sha256;
} Added;


/* A header the signature depends on: present with the same value, or added
 * when add_missing says it belongs (then *ret_added is set). */
static int ensure_header(HeaderSet *s, const char *name, const char *value, bool add_missing, bool *ret_added) {
        const Header *h;
        int r;

        r = header_set_find(s, name, &h);
        if (r < 0)
                return r;
        if (h)
                return streq(h->value, value) ? 0 : -EINVAL;
        if (!add_missing)
                return 0;
        r = header_set_add_copy(s, name, value);
        if (r < 0)
                return r;
        *ret_added = true;
        return 0;
}

static int build_headers(const SigV4Request *req, const SigV4Params *p, const char *amz_date, HeaderSet *s,
                         Added *added) {
        const Header *h;
        const char *token = p->session_token && p->session_token[0] ? p->session_token : NULL;
        int r;

        s->cap = req->n_headers + 3;
        s->h = calloc(s->cap, sizeof(Header));
        if (!s->h)
                return -ENOMEM;

        for (size_t i = 0; i < req->n_headers; i++) {
                char *name = NULL, *value = NULL;

                r = canonical_name(req->headers[i].name, &name);
                if (r < 0)
                        return r;
                if (is_unsigned_header(name)) {
                        free(name);
                        continue;
                }
                /* A stale Authorization would be sent next to the new one. */
                if (streq(name, "authorization")) {
                        free(name);
                        return -EINVAL;
                }
                r = canonical_value(req->headers[i].value, &value);
                if (r < 0) {
                        free(name);
                        return r;
                }
                r = header_set_add(s, name, value);
                if (r < 0)
                        return r;
        }

        /* Exactly one non-empty Host: it is what binds the signature to the endpoint. */
        r = header_set_find(s, "host", &h);
        if (r < 0)
                return r;
        if (!h || h->value[0] == 0)
                return -EINVAL;

        /* Headers the signer supplies: a caller's copy must agree with ours;
         * a missing one is added (and the caller told to send it). */
        r = ensure_header(s, "x-amz-date", amz_date, true, &added->date);
        if (r >= 0 && token)
                r = ensure_header(s, "x-amz-security-token", token, true, &added->token);
        /* What is signed as the payload hash must be what the header claims. */
        if (r >= 0)
                r = ensure_header(s, "x-amz-content-sha256", req->payload_hash, streq(p->service, "s3"),
                                  &added->content_sha256);
        if (r < 0)
                return r;

        qsort(s->h, s->n, sizeof(Header), header_cmp);
        return 0;
}

/* "name:v1,v2\n" lines into creq, "name;name" into signed. */
static void put_headers(const HeaderSet *s, Buf *creq, Buf *signed_headers) {
        for (size_t i = 0; i < s->n;) {
                size_t j = i;

                buf_puts(creq, s->h[i].name);
                buf_putc(creq, ':');
                for (; j < s->n && streq(s->h[j].name, s->h[i].name); j++) {
                        if (j > i)
                                buf_putc(creq, ',');
                        buf_puts(creq, s->h[j].value);
                }
                buf_putc(creq, '\n');

                if (i > 0)
                        buf_putc(signed_headers, ';');
                buf_puts(signed_headers, s->h[i].name);
                i = j;
        }
}

/* ---- key cache ---- */

int sigv4_key_cache_new(SigV4KeyCache **ret) {
        SigV4KeyCache *c;

        if (!ret)
                return -EINVAL;
        if (secret_init() < 0)
                return -ENOMEM;
        /* Derived keys are as good as the secret for their day: keep them guarded. */
        c = secure_alloc(sizeof(SigV4KeyCache));
        if (!c)
                return -ENOMEM;
        randombytes_buf(c->tag_key, sizeof(c->tag_key));
        *ret = c;
        return 0;
}

SigV4KeyCache *sigv4_key_cache_free(SigV4KeyCache *c) {
        secure_free(c); /* wipes */
        return NULL;
}

void sigv4_key_cache_stats(const SigV4KeyCache *c, uint64_t *ret_hits, uint64_t *ret_misses,
                           size_t *ret_entries) {
        size_t n = 0;

        if (c)
                for (size_t i = 0; i < SIGV4_KEY_CACHE_SIZE; i++)
                        n += c->entries[i].used;
        if (ret_hits)
                *ret_hits = c ? c->hits : 0;
        if (ret_misses)
                *ret_misses = c ? c->misses : 0;
        if (ret_entries)
                *ret_entries = n;
}

/*
 * The signing key for this scope: from the cache when it has it, derived
 * (and cached, evicting the least recently used) otherwise. *ret points
 * into the cache, valid until the next lookup.
 */
static int cache_lookup(SigV4KeyCache *c, EVP_MAC *mac, const SigV4Params *p, size_t secret_len,
                        const char *date, const uint8_t **ret) {
        uint8_t tag[crypto_generichash_BYTES];
        CacheEntry *e, *victim = NULL;
        int r;

        if (crypto_generichash(tag, sizeof(tag), (const unsigned char *) p->secret_access_key, secret_len,
                               c->tag_key, sizeof(c->tag_key)) != 0)
                return -EIO;

        for (size_t i = 0; i < SIGV4_KEY_CACHE_SIZE; i++) {
                e = &c->entries[i];
                if (e->used && streq(e->access_key_id, p->access_key_id) && streq(e->date, date) &&
                    streq(e->region, p->region) && streq(e->service, p->service) &&
                    sodium_memcmp(e->secret_tag, tag, sizeof(tag)) == 0) {
                        sodium_memzero(tag, sizeof(tag));
                        e->last_use = ++c->clock;
                        c->hits++;
                        *ret = e->key;
                        return 0;
                }
                if (!victim || (victim->used && (!e->used || e->last_use < victim->last_use)))
                        victim = e;
        }

        _cleanup_(key_scratch_freep) KeyScratch *scratch = key_scratch_new();
        if (!scratch) {
                sodium_memzero(tag, sizeof(tag));
                return -ENOMEM;
        }
        sodium_memzero(victim, sizeof(*victim));
        r = derive_key(mac, scratch, p->secret_access_key, secret_len, date, p->region, p->service, victim->key);
        if (r < 0) {
                sodium_memzero(victim, sizeof(*victim));
                sodium_memzero(tag, sizeof(tag));
                return r;
        }
        /* Lengths were checked against these very bounds by the caller. */
        memcpy(victim->access_key_id, p->access_key_id, strlen(p->access_key_id) + 1);
        memcpy(victim->date, date, 9);
        memcpy(victim->region, p->region, strlen(p->region) + 1);
        memcpy(victim->service, p->service, strlen(p->service) + 1);
        memcpy(victim->secret_tag, tag, sizeof(tag));
        sodium_memzero(tag, sizeof(tag));
        victim->used = true;
        victim->last_use = ++c->clock;
        c->misses++;
        *ret = victim->key;
        return 0;
}

int sigv4_derive_signing_key(const char *secret, const char *date, const char *region, const char *service,
                             uint8_t out[static 32]) {
        _cleanup_(evp_mac_freep) EVP_MAC *mac = NULL;
        size_t secret_len, date_len;
        int r;

        if (!secret || !date || !out)
                return -EINVAL;
        r = check_len(secret, SIGV4_MAX_SECRET, &secret_len);
        if (r < 0)
                return r;
        if (secret_len == 0 || check_len(date, 8, &date_len) < 0 || date_len != 8)
                return -EINVAL;
        r = check_scope_part(region);
        if (r < 0)
                return r;
        r = check_scope_part(service);
        if (r < 0)
                return r;
        _cleanup_(key_scratch_freep) KeyScratch *scratch = key_scratch_new();
        if (!scratch)
                return -ENOMEM;
        r = fetch_hmac(&mac);
        if (r < 0)
                return r;
        return derive_key(mac, scratch, secret, secret_len, date, region, service, out);
}

/* ---- signing ---- */

static int check_request(const SigV4Request *req, size_t *ret_path_len, size_t *ret_query_len) {
        size_t n;
        int r;

        if (!req->method || !req->path || !req->payload_hash || (req->n_headers > 0 && !req->headers))
                return -EINVAL;
        if (req->n_headers > SIGV4_MAX_HEADERS)
                return -E2BIG;

        r = check_chars(req->method, 1, SIGV4_MAX_METHOD, is_tchar, &n);
        if (r < 0)
                return r;

        /* Control characters in the request target would split the request line. */
        r = check_len(req->path, SIGV4_MAX_PATH, ret_path_len);
        if (r < 0)
                return r;
        if (*ret_path_len == 0 || req->path[0] != '/')
                return -EINVAL;
        for (size_t i = 0; i < *ret_path_len; i++)
                if (is_ctl((unsigned char) req->path[i]) || req->path[i] == '?' || req->path[i] == '#')
                        return -EINVAL;

        *ret_query_len = 0;
        if (req->query) {
                r = check_len(req->query, SIGV4_MAX_QUERY, ret_query_len);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < *ret_query_len; i++)
                        if (is_ctl((unsigned char) req->query[i]) || req->query[i] == '#')
                                return -EINVAL;
        }

        if (!is_payload_hash(req->payload_hash))
                return -EINVAL;
        return 0;
}

static int check_params(const SigV4Params *p, size_t *ret_secret_len) {
        size_t n;
        int r;

        r = check_chars(p->access_key_id, 1, SIGV4_MAX_ACCESS_KEY_ID, is_key_id_char, &n);
        if (r < 0)
                return r;
        if (!p->secret_access_key)
                return -EINVAL;
        r = check_len(p->secret_access_key, SIGV4_MAX_SECRET, ret_secret_len);
        if (r < 0)
                return r;
        if (*ret_secret_len == 0)
                return -EINVAL;
        r = check_scope_part(p->region);
        if (r < 0)
                return r;
        r = check_scope_part(p->service);
        if (r < 0)
                return r;
        if (p->session_token) {
                r = check_chars(p->session_token, 0, SIGV4_MAX_HEADER_VALUE, is_visible, &n);
                if (r < 0)
                        return r;
        }
        return 0;
}

int sigv4_sign(SigV4KeyCache *cache, const SigV4Request *req, const SigV4Params *p, SigV4Result *ret) {
        _cleanup_(evp_mac_freep) EVP_MAC *mac = NULL;
        _cleanup_(key_scratch_freep) KeyScratch *scratch = NULL;
        HeaderSet hs = {};
        Buf creq = {}, signed_headers = {}, sts = {}, authz = {};
        char amz_date[17], date[9], creq_hash[65], scope[8 + 1 + 2 * (SIGV4_MAX_SCOPE_PART + 1) + 13];
        char signature[65];
        uint8_t sig_raw[SHA256_LEN];
        const uint8_t *key = NULL;
        size_t path_len, query_len, secret_len;
        Added added = {};
        SigV4Result result = {};
        int r;

        if (!req || !p || !ret)
                return -EINVAL;
        r = check_request(req, &path_len, &query_len);
        if (r < 0)
                return r;
        r = check_params(p, &secret_len);
        if (r < 0)
                return r;
        r = format_amz_date(p->when, amz_date);
        if (r < 0)
                return r;
        memcpy(date, amz_date, 8);
        date[8] = 0;

        r = build_headers(req, p, amz_date, &hs, &added);
        if (r < 0)
                goto finish;

        /* Canonical request: method, URI, query, headers, signed headers, payload. */
        buf_puts(&creq, req->method);
        buf_putc(&creq, '\n');
        r = canonical_uri(req->path, path_len, streq(p->service, "s3"), &creq);
        if (r < 0)
                goto finish;
        buf_putc(&creq, '\n');
        r = canonical_query(req->query ? req->query : "", query_len, &creq);
        if (r < 0)
                goto finish;
        buf_putc(&creq, '\n');
        put_headers(&hs, &creq, &signed_headers);
        buf_putc(&creq, '\n');
        if (signed_headers.error) {
                r = signed_headers.error;
                goto finish;
        }
        buf_put(&creq, signed_headers.data, signed_headers.len);
        buf_putc(&creq, '\n');
        buf_puts(&creq, req->payload_hash);
        if (creq.error) {
                r = creq.error;
                goto finish;
        }

        sha256_hex(creq.data, creq.len, creq_hash);
        if (!creq_hash[0]) {
                r = -EIO;
                goto finish;
        }
        snprintf(scope, sizeof(scope), "%s/%s/%s/aws4_request", date, p->region, p->service);

        buf_puts(&sts, ALGORITHM "\n");
        buf_puts(&sts, amz_date);
        buf_putc(&sts, '\n');
        buf_puts(&sts, scope);
        buf_putc(&sts, '\n');
        buf_puts(&sts, creq_hash);
        if (sts.error) {
                r = sts.error;
                goto finish;
        }

        r = fetch_hmac(&mac);
        if (r < 0)
                goto finish;
        if (cache)
                r = cache_lookup(cache, mac, p, secret_len, date, &key);
        else {
                scratch = key_scratch_new();
                if (!scratch) {
                        r = -ENOMEM;
                        goto finish;
                }
                r = derive_key(mac, scratch, p->secret_access_key, secret_len, date, p->region, p->service,
                               scratch->signing);
                key = scratch->signing;
        }
        if (r < 0)
                goto finish;
        r = hmac_sha256(mac, key, SHA256_LEN, sts.data, sts.len, sig_raw);
        if (r < 0)
                goto finish;
        hexmem(sig_raw, SHA256_LEN, signature);

        buf_puts(&authz, ALGORITHM " Credential=");
        buf_puts(&authz, p->access_key_id);
        buf_putc(&authz, '/');
        buf_puts(&authz, scope);
        buf_puts(&authz, ", SignedHeaders=");
        buf_put(&authz, signed_headers.data, signed_headers.len);
        buf_puts(&authz, ", Signature=");
        buf_puts(&authz, signature);

        memcpy(result.amz_date, amz_date, sizeof(amz_date));
        memcpy(result.signature, signature, sizeof(signature));
        result.added_date = added.date;
        result.added_security_token = added.token;
        result.added_content_sha256 = added.content_sha256;
        r = buf_take(&creq, &result.canonical_request);
        if (r >= 0)
                r = buf_take(&sts, &result.string_to_sign);
        if (r >= 0)
                r = buf_take(&authz, &result.authorization);
        if (r < 0) {
                sigv4_result_done(&result);
                goto finish;
        }
        *ret = result;
        r = 0;

finish:
        header_set_done(&hs);
        buf_wipe(&creq);
        buf_wipe(&signed_headers);
        buf_wipe(&sts);
        buf_wipe(&authz);
        return r;
}

void sigv4_result_done(SigV4Result *r) {
        if (!r)
                return;
        if (r->canonical_request) {
                OPENSSL_cleanse(r->canonical_request, strlen(r->canonical_request));
                free(r->canonical_request);
        }
        free(r->string_to_sign);
        free(r->authorization);
        *r = (SigV4Result) {};
}

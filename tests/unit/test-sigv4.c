/* SPDX-License-Identifier: MIT */
/*
 * test-sigv4 — the signer against the AWS SigV4 test suite (every case in
 * $SIGV4_VECTORS, three TAP lines each: canonical request, string to sign,
 * Authorization), the worked examples of the AWS documentation, and the
 * signer's own rules: S3 paths, the key cache, bounds and refusals.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aws/sigv4.h"
#include "basic/util.h"
#include "tap.h"

#define VEC_AKID "AKIDEXAMPLE"
#define VEC_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define VEC_WHEN ((time_t) 1440938160) /* 20150830T123600Z */
#define VEC_REGION "us-east-1"
#define VEC_SERVICE "service"
/* get-vanilla-with-session-token: the token its .creq shows. */
#define VEC_VANILLA_TOKEN "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"

static int read_all(const char *path, char **ret, size_t *ret_len) {
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, cap = 0;
        FILE *f;

        f = fopen(path, "re");
        if (!f)
                return -errno;
        for (;;) {
                if (cap - len < 4096) {
                        char *n = realloc(buf, cap + 65536);
                        if (!n) {
                                fclose(f);
                                return -ENOMEM;
                        }
                        buf = n;
                        cap += 65536;
                }
                size_t k = fread(buf + len, 1, cap - len - 1, f);
                len += k;
                if (k == 0)
                        break;
        }
        fclose(f);
        buf[len] = 0;
        *ret = TAKE_PTR(buf);
        if (ret_len)
                *ret_len = len;
        return 0;
}

/* ---- the .req format: request line, headers with obs-fold, blank line, body ---- */

typedef struct ParsedReq {
        char *text; /* owns everything below, cut into strings in place */
        char *method, *path, *query;
        SigV4Header headers[64];
        size_t n_headers;
        const char *body;
        size_t body_len;
} ParsedReq;

static void parsed_req_done(ParsedReq *p) {
        free(p->text);
        *p = (ParsedReq) {};
}

static int parse_req(char *text, size_t len, ParsedReq *ret) {
        ParsedReq p = { .text = text };
        char *end = text + len, *line = text, *nl, *sp;

        /* Request line: METHOD SP target SP version; the target may hold spaces (get-space). */
        nl = memchr(line, '\n', (size_t) (end - line));
        if (nl)
                *nl = 0;
        sp = strchr(line, ' ');
        char *last = strrchr(line, ' ');
        if (!sp || last == sp)
                return -EINVAL;
        *sp = 0;
        *last = 0;
        p.method = line;
        p.path = sp + 1;
        p.query = strchr(p.path, '?');
        if (p.query)
                *p.query++ = 0;

        /*
         * Headers up to an empty line. A line starting with a space or tab
         * continues the previous value: keep the raw line break, the signer
         * is what must fold it.
         */
        line = nl ? nl + 1 : end;
        while (line < end) {
                nl = memchr(line, '\n', (size_t) (end - line));
                char *eol = nl ? nl : end;
                if (eol == line) {
                        line = eol + 1;
                        break;
                }
                if (*line == ' ' || *line == '\t') {
                        if (p.n_headers == 0)
                                return -EINVAL;
                        /* The value already runs up to here: un-terminate it. */
                        line[-1] = '\n';
                } else {
                        char *colon = memchr(line, ':', (size_t) (eol - line));
                        if (!colon || p.n_headers >= ELEMENTSOF(p.headers))
                                return -EINVAL;
                        *colon = 0;
                        p.headers[p.n_headers++] = (SigV4Header) { line, colon + 1 };
                }
                if (nl)
                        *nl = 0;
                line = nl ? nl + 1 : end;
        }
        p.body = line < end ? line : "";
        p.body_len = line < end ? (size_t) (end - line) : 0;
        *ret = p;
        return 0;
}

/* ---- the suite ---- */

typedef struct Case {
        char *dir;  /* full path of the case directory */
        char *name; /* its last component */
} Case;

static int case_cmp(const void *a, const void *b) {
        return strcmp(((const Case *) a)->dir, ((const Case *) b)->dir);
}

static void find_cases(const char *dir, Case **cases, size_t *n, int depth) {
        DIR *d;
        struct dirent *de;

        if (depth > 4)
                return;
        d = opendir(dir);
        if (!d)
                return;
        while ((de = readdir(d))) {
                _cleanup_free_ char *sub = NULL, *req = NULL;
                struct stat st;

                if (de->d_name[0] == '.')
                        continue;
                if (asprintf_safe(&sub, "%s/%s", dir, de->d_name) < 0)
                        continue;
                if (stat(sub, &st) < 0 || !S_ISDIR(st.st_mode))
                        continue;
                if (asprintf_safe(&req, "%s/%s.req", sub, de->d_name) < 0)
                        continue;
                if (access(req, R_OK) == 0) {
                        Case *c = realloc(*cases, (*n + 1) * sizeof(Case));
                        if (!c)
                                continue;
                        *cases = c;
                        c[*n] = (Case) { .dir = strdup(sub), .name = strdup(de->d_name) };
                        (*n)++;
                }
                find_cases(sub, cases, n, depth + 1);
        }
        closedir(d);
}

static char *case_file(const Case *c, const char *ext) {
        char *path = NULL, *text = NULL;

        if (asprintf_safe(&path, "%s/%s.%s", c->dir, c->name, ext) < 0)
                return NULL;
        if (read_all(path, &text, NULL) < 0)
                text = NULL;
        free(path);
        return text;
}

/* The suite's STS token: the last line of post-sts-token/readme.txt. */
static char *sts_token(const char *vectors) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        char *end, *start;

        if (asprintf_safe(&path, "%s/post-sts-token/readme.txt", vectors) < 0 || read_all(path, &text, NULL) < 0)
                return NULL;
        end = text + strlen(text);
        while (end > text && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' '))
                *--end = 0;
        start = strrchr(text, '\n');
        start = start ? start + 1 : text;
        return strdup(start);
}

static void run_case(const Case *c, const char *sts_tok) {
        _cleanup_free_ char *creq = case_file(c, "creq"), *sts = case_file(c, "sts"), *authz = case_file(c, "authz");
        _cleanup_free_ char *path = NULL;
        ParsedReq pr = {};
        SigV4Result res = {};
        char *text = NULL, hash[65];
        size_t len;
        int r;

        if (asprintf_safe(&path, "%s/%s.req", c->dir, c->name) < 0 || read_all(path, &text, &len) < 0 ||
            parse_req(text, len, &pr) < 0 || !creq || !sts || !authz) {
                if (!pr.text)
                        free(text);
                parsed_req_done(&pr);
                for (int i = 0; i < 3; i++)
                        ok(0, "%s: vector files readable and parseable", c->name);
                return;
        }

        /*
         * The request line's target is handed over as the wire path: the
         * suite writes raw bytes there (a space, UTF-8) and expects the
         * single encoding of them, which is exactly what a non-S3 signer
         * does to a wire path.
         */
        sha256_hex(pr.body, pr.body_len, hash);
        SigV4Request req = {
                .method = pr.method,
                .path = pr.path,
                .query = pr.query,
                .headers = pr.headers,
                .n_headers = pr.n_headers,
                .payload_hash = hash,
        };
        SigV4Params p = {
                .access_key_id = VEC_AKID,
                .secret_access_key = VEC_SECRET,
                .region = VEC_REGION,
                .service = VEC_SERVICE,
                .when = VEC_WHEN,
        };
        /* "header-after": the token is added after signing, so sign without it. */
        if (streq(c->name, "get-vanilla-with-session-token"))
                p.session_token = VEC_VANILLA_TOKEN;
        else if (streq(c->name, "post-sts-header-before"))
                p.session_token = sts_tok;

        r = sigv4_sign(NULL, &req, &p, &res);
        if (r < 0) {
                for (int i = 0; i < 3; i++)
                        ok(0, "%s: sigv4_sign failed: %s", c->name, strerror(-r));
        } else {
                char name[256];
                snprintf(name, sizeof(name), "%s: canonical request", c->name);
                ok_eq_str(res.canonical_request, creq, name);
                snprintf(name, sizeof(name), "%s: string to sign", c->name);
                ok_eq_str(res.string_to_sign, sts, name);
                snprintf(name, sizeof(name), "%s: authorization", c->name);
                ok_eq_str(res.authorization, authz, name);
        }
        sigv4_result_done(&res);
        parsed_req_done(&pr);
}

static size_t test_vectors(void) {
        const char *vectors = getenv("SIGV4_VECTORS");
        _cleanup_free_ char *tok = NULL;
        Case *cases = NULL;
        size_t n = 0;

        /* Without the suite, one failure that says why, and on to the
         * signer's own rules: a missing directory must not pass, nor crash. */
        if (!vectors || !*vectors) {
                ok(0, "the AWS SigV4 test suite: SIGV4_VECTORS is not set (tests/meson.build sets it)");
                return 0;
        }
        find_cases(vectors, &cases, &n, 0);
        if (n == 0) {
                ok(0, "the AWS SigV4 test suite: no case found in %s (%s; see tests/vectors/README.md)", vectors,
                   access(vectors, R_OK | X_OK) < 0 ? strerror(errno) : "empty");
                free(cases);
                return 0;
        }
        tok = sts_token(vectors);
        ok(tok && startswith(tok, "AQoDYXdz"), "STS token read from post-sts-token/readme.txt");
        qsort(cases, n, sizeof(Case), case_cmp);
        ok(n == 34, "the suite has 34 cases (found %zu)", n);
        for (size_t i = 0; i < n; i++) {
                run_case(&cases[i], tok ? tok : "");
                free(cases[i].dir);
                free(cases[i].name);
        }
        free(cases);
        return n;
}

/* ---- the signer's own rules ---- */

static const SigV4Header basic_headers[] = { { "Host", "example.amazonaws.com" } };

static SigV4Request basic_request(const char *path) {
        return (SigV4Request) {
                .method = "GET",
                .path = path,
                .headers = basic_headers,
                .n_headers = ELEMENTSOF(basic_headers),
                .payload_hash = SIGV4_EMPTY_SHA256,
        };
}

static SigV4Params basic_params(const char *service) {
        return (SigV4Params) {
                .access_key_id = VEC_AKID,
                .secret_access_key = VEC_SECRET,
                .region = VEC_REGION,
                .service = service,
                .when = VEC_WHEN,
        };
}

/* Line n (0-based) of a canonical request, in a static buffer. */
static const char *creq_line(const char *creq, unsigned n) {
        static char line[1024];
        const char *s = creq;

        for (unsigned i = 0; i < n && s; i++) {
                s = strchr(s, '\n');
                if (s)
                        s++;
        }
        if (!s)
                return "";
        size_t len = strcspn(s, "\n");
        if (len >= sizeof(line))
                len = sizeof(line) - 1;
        memcpy(line, s, len);
        line[len] = 0;
        return line;
}

static void test_paths(void) {
        struct {
                const char *service, *path, *want;
        } t[] = {
                { "s3", "/a//b/../c", "/a//b/../c" },
                { "s3", "/a%20b/%E1%88%B4", "/a%20b/%E1%88%B4" },
                { "s3", "/./", "/./" },
                { "iam", "/a//b/../c", "/a/c" },
                { "iam", "/a%20b", "/a%2520b" },
                { "iam", "/a/./b/.", "/a/b" },
                { "iam", "/a/b/", "/a/b/" },
                { "iam", "/../..", "/" },
                { "iam", "/~user/x-y_z.", "/~user/x-y_z." },
                { "execute-api", "/a:b@c", "/a%3Ab%40c" },
        };

        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                SigV4Request req = basic_request(t[i].path);
                SigV4Params p = basic_params(t[i].service);
                SigV4Result res = {};
                int r = sigv4_sign(NULL, &req, &p, &res);

                if (!ok(r == 0, "%s %s: signs", t[i].service, t[i].path))
                        continue;
                char name[256];
                snprintf(name, sizeof(name), "%s %s: canonical URI %s", t[i].service, t[i].path, t[i].want);
                ok_eq_str(creq_line(res.canonical_request, 1), t[i].want, name);
                sigv4_result_done(&res);
        }
}

static void test_queries(void) {
        struct {
                const char *query, *want;
        } t[] = {
                { "b=2&a=1", "a=1&b=2" },
                { "acl", "acl=" },
                { "a=&a", "a=&a=" },
                { "k=v=w", "k=v%3Dw" },
                { "k=%2a%7E", "k=%2A~" },
                { "a-b=1&a=2", "a=2&a-b=1" },
                { "x=b&x=a&x=", "x=&x=a&x=b" },
                { "%E1%88%B4=%20", "%E1%88%B4=%20" },
                { "", "" },
        };

        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                SigV4Request req = basic_request("/");
                SigV4Params p = basic_params("s3");
                SigV4Result res = {};
                int r;

                req.query = t[i].query;
                r = sigv4_sign(NULL, &req, &p, &res);
                if (!ok(r == 0, "query '%s': signs", t[i].query))
                        continue;
                char name[256];
                snprintf(name, sizeof(name), "query '%s' -> '%s'", t[i].query, t[i].want);
                ok_eq_str(creq_line(res.canonical_request, 2), t[i].want, name);
                sigv4_result_done(&res);
        }
}

/* The worked examples of the AWS documentation. */
static void test_documented_examples(void) {
        static const char want_key[] = "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d";
        uint8_t key[32];
        char hex[65];
        int r;

        /* "Examples of how to derive a signing key for Signature Version 4". */
        r = sigv4_derive_signing_key(VEC_SECRET, "20120215", "us-east-1", "iam", key);
        for (size_t i = 0; i < 32; i++)
                snprintf(hex + 2 * i, 3, "%02x", key[i]);
        ok(r == 0, "derive signing key");
        ok_eq_str(hex, want_key, "documented signing key for 20120215/us-east-1/iam");

        /* S3 API reference, "Example: GET Object" (single chunk, header auth). */
        const SigV4Header h[] = {
                { "Host", "examplebucket.s3.amazonaws.com" },
                { "Range", "bytes=0-9" },
                { "x-amz-content-sha256", SIGV4_EMPTY_SHA256 },
        };
        SigV4Request req = {
                .method = "GET",
                .path = "/test.txt",
                .headers = h,
                .n_headers = ELEMENTSOF(h),
                .payload_hash = SIGV4_EMPTY_SHA256,
        };
        SigV4Params p = {
                .access_key_id = "AKIAIOSFODNN7EXAMPLE",
                .secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                .region = "us-east-1",
                .service = "s3",
                .when = 1369353600, /* 20130524T000000Z */
        };
        SigV4Result res = {};
        r = sigv4_sign(NULL, &req, &p, &res);
        ok(r == 0, "S3 GET Object example signs");
        ok_eq_str(res.authorization,
                  "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
                  "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
                  "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
                  "S3 GET Object example: Authorization");
        ok(!res.added_content_sha256 && res.added_date, "S3 example: only X-Amz-Date added");
        sigv4_result_done(&res);

        sha256_hex("abc", 3, hex);
        ok_eq_str(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "sha256_hex(abc)");
        sha256_hex(NULL, 0, hex);
        ok_eq_str(hex, SIGV4_EMPTY_SHA256, "sha256_hex of nothing");
}

static void test_added_headers(void) {
        SigV4Request req = basic_request("/");
        SigV4Params p = basic_params("s3");
        SigV4Result res = {};

        p.session_token = "TOKEN";
        ok(sigv4_sign(NULL, &req, &p, &res) == 0, "s3 with token signs");
        ok(res.added_date && res.added_security_token && res.added_content_sha256, "s3: all three added");
        ok_eq_str(creq_line(res.canonical_request, 8), "host;x-amz-content-sha256;x-amz-date;x-amz-security-token",
                  "s3: signed headers");
        sigv4_result_done(&res);

        const SigV4Header h[] = {
                { "Host", "h" },
                { "X-Amz-Date", "20150830T123600Z" },
                { "X-Amz-Security-Token", "TOKEN" },
                { "User-Agent", "keyrotd/0.1" },
                { "Expect", "" },
        };
        req.headers = h;
        req.n_headers = ELEMENTSOF(h);
        p.service = "iam";
        ok(sigv4_sign(NULL, &req, &p, &res) == 0, "iam with headers present signs");
        ok(!res.added_date && !res.added_security_token && !res.added_content_sha256, "iam: nothing added");
        ok_eq_str(creq_line(res.canonical_request, 7), "host;x-amz-date;x-amz-security-token",
                  "User-Agent and Expect are not signed");
        ok(strlen(res.signature) == 64 && strstr(res.authorization, res.signature), "signature field");
        sigv4_result_done(&res);
        sigv4_result_done(&res);
        ok(!res.authorization, "sigv4_result_done twice is harmless");

        p.session_token = "";
        req.headers = basic_headers;
        req.n_headers = 1;
        ok(sigv4_sign(NULL, &req, &p, &res) == 0 && !res.added_security_token, "empty token = no token");
        sigv4_result_done(&res);
}

static void test_cache(void) {
        _cleanup_(sigv4_key_cache_freep) SigV4KeyCache *c = NULL;
        SigV4Request req = basic_request("/");
        SigV4Params p = basic_params("iam");
        SigV4Result a = {}, b = {}, d = {}, e = {};
        uint64_t hits, misses;
        size_t entries;

        ok(sigv4_key_cache_new(&c) == 0, "cache allocated");
        ok(sigv4_sign(c, &req, &p, &a) == 0 && sigv4_sign(c, &req, &p, &b) == 0, "sign twice through the cache");
        ok_eq_str(b.authorization, a.authorization, "cache hit: identical Authorization");
        sigv4_key_cache_stats(c, &hits, &misses, &entries);
        ok(hits == 1 && misses == 1 && entries == 1, "one miss then one hit (%" PRIu64 "/%" PRIu64 ")", hits,
           misses);
        ok(sigv4_sign(NULL, &req, &p, &d) == 0, "sign without cache");
        ok_eq_str(d.authorization, a.authorization, "cached and uncached keys agree");
        sigv4_result_done(&d);

        /* Same access key id, another secret: must not reuse the cached key. */
        p.secret_access_key = "another-secret";
        ok(sigv4_sign(c, &req, &p, &e) == 0, "sign with another secret, same key id");
        ok(!streq(e.authorization, a.authorization), "another secret: another signature");
        sigv4_result_done(&e);
        p.secret_access_key = VEC_SECRET;

        /* Next day: another key. */
        p.when += 86400;
        ok(sigv4_sign(c, &req, &p, &d) == 0, "sign a day later");
        ok(!streq(d.authorization, a.authorization), "a day later: another signature");
        sigv4_key_cache_stats(c, &hits, &misses, &entries);
        ok(misses == 3 && entries == 3, "a day later: derived again (misses %" PRIu64 ")", misses);
        sigv4_result_done(&d);

        uint8_t k1[32], k2[32];
        ok(sigv4_derive_signing_key(VEC_SECRET, "20150830", "us-east-1", "iam", k1) == 0 &&
                   sigv4_derive_signing_key(VEC_SECRET, "20150831", "us-east-1", "iam", k2) == 0,
           "derive for two dates");
        ok(memcmp(k1, k2, 32) != 0, "different dates produce different keys");

        /* Bounded: many scopes never grow it past its size. */
        char region[32];
        for (int i = 0; i < 40; i++) {
                snprintf(region, sizeof(region), "region-%d", i);
                p.region = region;
                if (sigv4_sign(c, &req, &p, &d) == 0)
                        sigv4_result_done(&d);
        }
        sigv4_key_cache_stats(c, NULL, NULL, &entries);
        ok(entries == SIGV4_KEY_CACHE_SIZE, "cache bounded at %u entries (has %zu)", SIGV4_KEY_CACHE_SIZE, entries);

        /* The most recently used survive: region-39 is a hit. */
        sigv4_key_cache_stats(c, &hits, NULL, NULL);
        uint64_t before = hits;
        if (sigv4_sign(c, &req, &p, &d) == 0)
                sigv4_result_done(&d);
        sigv4_key_cache_stats(c, &hits, NULL, NULL);
        ok(hits == before + 1, "LRU keeps the latest scope");

        sigv4_result_done(&a);
        sigv4_result_done(&b);
        ok(sigv4_key_cache_free(NULL) == NULL, "sigv4_key_cache_free(NULL)");
}

static void expect_fail(const SigV4Request *req, const SigV4Params *p, int want, const char *what) {
        SigV4Result res;
        int r;

        memset(&res, 0x5a, sizeof(res));
        r = sigv4_sign(NULL, req, p, &res);
        ok(r == want, "%s: %s (got %s)", what, want == -E2BIG ? "-E2BIG" : "-EINVAL", strerror(-r));
        if (r >= 0) {
                sigv4_result_done(&res);
                return;
        }
        unsigned char *b = (unsigned char *) &res;
        bool untouched = true;
        for (size_t i = 0; i < sizeof(res); i++)
                untouched = untouched && b[i] == 0x5a;
        ok(untouched, "%s: result untouched", what);
}

static void test_bounds(void) {
        SigV4Request req = basic_request("/");
        SigV4Params p = basic_params("iam");
        _cleanup_free_ SigV4Header *many = NULL;
        _cleanup_free_ char *big = NULL;
        size_t n_many = SIGV4_MAX_HEADERS + 1;

        many = calloc(n_many, sizeof(SigV4Header));
        big = malloc(SIGV4_MAX_QUERY + 2);
        if (!ok(many && big, "allocations"))
                return;
        for (size_t i = 0; i < n_many; i++)
                many[i] = (SigV4Header) { "X-A", "b" };
        many[0] = basic_headers[0];

        req.headers = many;
        req.n_headers = SIGV4_MAX_HEADERS;
        SigV4Result res = {};
        ok(sigv4_sign(NULL, &req, &p, &res) == 0, "%u headers accepted", SIGV4_MAX_HEADERS);
        sigv4_result_done(&res);
        req.n_headers = n_many;
        expect_fail(&req, &p, -E2BIG, "1001 headers");
        req = basic_request("/");

        big[0] = '/';
        memset(big + 1, 'a', SIGV4_MAX_PATH);
        big[SIGV4_MAX_PATH + 1] = 0;
        req.path = big;
        expect_fail(&req, &p, -E2BIG, "path over 16 KiB");
        big[SIGV4_MAX_PATH] = 0;
        ok(sigv4_sign(NULL, &req, &p, &res) == 0, "path of exactly 16 KiB accepted");
        sigv4_result_done(&res);
        req = basic_request("/");

        memset(big, 'a', SIGV4_MAX_QUERY + 1);
        big[SIGV4_MAX_QUERY + 1] = 0;
        req.query = big;
        expect_fail(&req, &p, -E2BIG, "query over 64 KiB");
        req = basic_request("/");

        memset(big, 'v', SIGV4_MAX_HEADER_VALUE + 1);
        big[SIGV4_MAX_HEADER_VALUE + 1] = 0;
        SigV4Header hv[] = { basic_headers[0], { "X-Big", big } };
        req.headers = hv;
        req.n_headers = 2;
        expect_fail(&req, &p, -E2BIG, "header value over 16 KiB");
        req = basic_request("/");

        /* Many headers each within bounds, together too much. */
        memset(big, 'v', SIGV4_MAX_HEADER_VALUE);
        big[SIGV4_MAX_HEADER_VALUE] = 0;
        for (size_t i = 1; i < 20; i++)
                many[i] = (SigV4Header) { "X-Big", big };
        req.headers = many;
        req.n_headers = 20;
        expect_fail(&req, &p, -E2BIG, "headers over 256 KiB together");
        req = basic_request("/");

        p.session_token = big;
        big[SIGV4_MAX_HEADER_VALUE] = 'v';
        big[SIGV4_MAX_HEADER_VALUE + 1] = 0;
        expect_fail(&req, &p, -E2BIG, "session token over 16 KiB");
}

static void test_refusals(void) {
        SigV4Request req;
        SigV4Params p = basic_params("iam");
        const SigV4Header no_host[] = { { "X-A", "b" } };
        const SigV4Header two_hosts[] = { { "Host", "a" }, { "host", "a" } };
        const SigV4Header bad_date[] = { basic_headers[0], { "X-Amz-Date", "20150830T123601Z" } };
        const SigV4Header inject[] = { basic_headers[0], { "X-A", "b\r\nX-Evil: 1" } };
        const SigV4Header bare_lf[] = { basic_headers[0], { "X-A", "b\nc" } };
        const SigV4Header nul_ctl[] = { basic_headers[0], { "X-A", "b\x01" } };
        const SigV4Header bad_name[] = { basic_headers[0], { "X A", "b" } };
        const SigV4Header auth[] = { basic_headers[0], { "Authorization", "x" } };
        const SigV4Header bad_sha[] = { basic_headers[0], { "X-Amz-Content-SHA256", SIGV4_UNSIGNED_PAYLOAD } };
        const SigV4Header other_token[] = { basic_headers[0], { "X-Amz-Security-Token", "other" } };

#define WITH_HEADERS(h)                      \
        do {                                 \
                req = basic_request("/");    \
                req.headers = h;             \
                req.n_headers = ELEMENTSOF(h); \
        } while (0)

        WITH_HEADERS(no_host);
        expect_fail(&req, &p, -EINVAL, "no Host");
        WITH_HEADERS(two_hosts);
        expect_fail(&req, &p, -EINVAL, "two Host headers");
        WITH_HEADERS(bad_date);
        expect_fail(&req, &p, -EINVAL, "X-Amz-Date not matching when");
        WITH_HEADERS(inject);
        expect_fail(&req, &p, -EINVAL, "CRLF injection in a header value");
        WITH_HEADERS(bare_lf);
        expect_fail(&req, &p, -EINVAL, "LF not followed by whitespace");
        WITH_HEADERS(nul_ctl);
        expect_fail(&req, &p, -EINVAL, "control character in a header value");
        WITH_HEADERS(bad_name);
        expect_fail(&req, &p, -EINVAL, "space in a header name");
        WITH_HEADERS(auth);
        expect_fail(&req, &p, -EINVAL, "Authorization already present");
        WITH_HEADERS(bad_sha);
        expect_fail(&req, &p, -EINVAL, "X-Amz-Content-SHA256 not the payload hash");
        WITH_HEADERS(other_token);
        p.session_token = "TOKEN";
        expect_fail(&req, &p, -EINVAL, "X-Amz-Security-Token not the session token");
        p.session_token = NULL;
#undef WITH_HEADERS

        req = basic_request("/");
        req.query = "a=%zz";
        expect_fail(&req, &p, -EINVAL, "malformed %-escape in the query");
        req.query = "a=%4";
        expect_fail(&req, &p, -EINVAL, "truncated %-escape in the query");
        req = basic_request("relative");
        expect_fail(&req, &p, -EINVAL, "path not starting with /");
        req = basic_request("/a\r\nb");
        expect_fail(&req, &p, -EINVAL, "CRLF in the path");
        req = basic_request("/");
        req.payload_hash = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
        expect_fail(&req, &p, -EINVAL, "upper-case payload hash");
        req = basic_request("/");
        req.method = "GE T";
        expect_fail(&req, &p, -EINVAL, "space in the method");
        req = basic_request("/");
        p.region = "us/east";
        expect_fail(&req, &p, -EINVAL, "'/' in the region");
        p = basic_params("iam");
        p.access_key_id = "AKID, Signature=x";
        expect_fail(&req, &p, -EINVAL, "separator in the access key id");
        p = basic_params("iam");
        p.secret_access_key = "";
        expect_fail(&req, &p, -EINVAL, "empty secret");
        p = basic_params("iam");
        p.session_token = "a b";
        expect_fail(&req, &p, -EINVAL, "space in the session token");
        p = basic_params("iam");
        p.when = -1;
        expect_fail(&req, &p, -EINVAL, "time before 1970");
        ok(sigv4_sign(NULL, NULL, &p, NULL) == -EINVAL, "NULL arguments");
}

int main(void) {
        size_t n = test_vectors();
        diag("%zu vector cases run", n);
        test_paths();
        test_queries();
        test_documented_examples();
        test_added_headers();
        test_cache();
        test_bounds();
        test_refusals();
        return tap_done();
}

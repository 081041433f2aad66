/* SPDX-License-Identifier: MIT */
/*
 * sigv4-tool — drives the signer from the differential test. One JSON
 * object per input line:
 *
 *   {"method","path","query","headers":[[name,value],...],
 *    "body_hex" | "payload_hash","access_key_id","secret",
 *    "session_token"?,"region","service","when"}
 *
 * and one JSON object per output line: canonical_request, string_to_sign,
 * authorization, amz_date and the added_* flags, or {"error": "...",
 * "errno": N} when the signer refused. Test-only: the secrets it sees are
 * fake, so it does not bother keeping them in secure memory.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/sigv4.h"
#include "basic/util.h"

#define MAX_LINE (4U * 1024U * 1024U)

static inline void json_object_putp(json_object **o) {
        if (*o)
                json_object_put(*o);
}

static const char *get_str(json_object *o, const char *key) {
        json_object *v;

        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

static int hex_decode(const char *hex, unsigned char **ret, size_t *ret_len) {
        size_t n = strlen(hex);
        unsigned char *b;

        if (n % 2 != 0)
                return -EINVAL;
        b = malloc(n / 2 + 1);
        if (!b)
                return -ENOMEM;
        for (size_t i = 0; i < n / 2; i++) {
                unsigned v;
                if (sscanf(hex + 2 * i, "%2x", &v) != 1) {
                        free(b);
                        return -EINVAL;
                }
                b[i] = (unsigned char) v;
        }
        *ret = b;
        *ret_len = n / 2;
        return 0;
}

static json_object *error_object(int r, const char *what) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "error", json_object_new_string(what));
        json_object_object_add(o, "errno", json_object_new_int(-r));
        return o;
}

static json_object *sign_one(SigV4KeyCache *cache, json_object *in) {
        _cleanup_free_ SigV4Header *headers = NULL;
        _cleanup_free_ unsigned char *body = NULL;
        json_object *hs = NULL, *when = NULL, *out;
        SigV4Result res = {};
        char hash[65];
        size_t n_headers = 0, body_len = 0;
        const char *body_hex, *payload_hash;
        int r;

        if (!json_object_is_type(in, json_type_object))
                return error_object(-EINVAL, "input is not an object");

        if (json_object_object_get_ex(in, "headers", &hs)) {
                if (!json_object_is_type(hs, json_type_array))
                        return error_object(-EINVAL, "headers is not an array");
                n_headers = json_object_array_length(hs);
                headers = calloc(n_headers + 1, sizeof(SigV4Header));
                if (!headers)
                        return error_object(-ENOMEM, "out of memory");
                for (size_t i = 0; i < n_headers; i++) {
                        json_object *pair = json_object_array_get_idx(hs, i);
                        json_object *k, *v;
                        if (!json_object_is_type(pair, json_type_array) || json_object_array_length(pair) != 2)
                                return error_object(-EINVAL, "header is not a [name, value] pair");
                        k = json_object_array_get_idx(pair, 0);
                        v = json_object_array_get_idx(pair, 1);
                        if (!json_object_is_type(k, json_type_string) || !json_object_is_type(v, json_type_string))
                                return error_object(-EINVAL, "header name and value must be strings");
                        headers[i] = (SigV4Header) { json_object_get_string(k), json_object_get_string(v) };
                }
        }

        payload_hash = get_str(in, "payload_hash");
        body_hex = get_str(in, "body_hex");
        if (!payload_hash) {
                if (body_hex) {
                        r = hex_decode(body_hex, &body, &body_len);
                        if (r < 0)
                                return error_object(r, "bad body_hex");
                }
                sha256_hex(body, body_len, hash);
                payload_hash = hash;
        }

        if (!json_object_object_get_ex(in, "when", &when) || !json_object_is_type(when, json_type_int))
                return error_object(-EINVAL, "when must be an integer");

        SigV4Request req = {
                .method = get_str(in, "method"),
                .path = get_str(in, "path"),
                .query = get_str(in, "query"),
                .headers = headers,
                .n_headers = n_headers,
                .payload_hash = payload_hash,
        };
        SigV4Params p = {
                .access_key_id = get_str(in, "access_key_id"),
                .secret_access_key = get_str(in, "secret"),
                .session_token = get_str(in, "session_token"),
                .region = get_str(in, "region"),
                .service = get_str(in, "service"),
                .when = (time_t) json_object_get_int64(when),
        };
        if (!p.service)
                return error_object(-EINVAL, "service missing");

        r = sigv4_sign(cache, &req, &p, &res);
        if (r < 0)
                return error_object(r, strerror(-r));

        out = json_object_new_object();
        json_object_object_add(out, "canonical_request", json_object_new_string(res.canonical_request));
        json_object_object_add(out, "string_to_sign", json_object_new_string(res.string_to_sign));
        json_object_object_add(out, "authorization", json_object_new_string(res.authorization));
        json_object_object_add(out, "amz_date", json_object_new_string(res.amz_date));
        json_object_object_add(out, "added_date", json_object_new_boolean(res.added_date));
        json_object_object_add(out, "added_security_token", json_object_new_boolean(res.added_security_token));
        json_object_object_add(out, "added_content_sha256", json_object_new_boolean(res.added_content_sha256));
        sigv4_result_done(&res);
        return out;
}

int main(int argc, char *argv[]) {
        _cleanup_(sigv4_key_cache_freep) SigV4KeyCache *cache = NULL;
        _cleanup_free_ char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        int r;

        /* --no-cache: derive every key, to compare both paths. */
        if (!(argc > 1 && streq(argv[1], "--no-cache"))) {
                r = sigv4_key_cache_new(&cache);
                if (r < 0) {
                        fprintf(stderr, "sigv4-tool: cannot allocate the key cache: %s\n", strerror(-r));
                        return 1;
                }
        }

        while ((n = getline(&line, &cap, stdin)) >= 0) {
                _cleanup_(json_object_putp) json_object *in = NULL, *out = NULL;
                enum json_tokener_error jerr;

                if (n == 0 || (n == 1 && line[0] == '\n'))
                        continue;
                if ((size_t) n > MAX_LINE) {
                        out = error_object(-E2BIG, "line too long");
                } else {
                        in = json_tokener_parse_verbose(line, &jerr);
                        out = in ? sign_one(cache, in) : error_object(-EINVAL, json_tokener_error_desc(jerr));
                }
                if (!out) {
                        fprintf(stderr, "sigv4-tool: out of memory\n");
                        return 1;
                }
                puts(json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        }
        if (fflush(stdout) != 0) {
                perror("sigv4-tool: stdout");
                return 1;
        }
        return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * check.c — the policy review's rules, on data only (see check.h).
 *
 * IAM matches action names case-insensitively and resources (ARNs)
 * case-sensitively, with '*' and '?' as wildcards in both; so do we. A
 * pattern is judged by everything it *could* match: "s3:Get*" stays
 * inside S3, "s3*" does not (s3express, s3-object-lambda), "s*" even less.
 */
#include "policy/check.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "basic/duration.h"
#include "basic/hex.h"
#include "basic/json-util.h"

/* One quoted piece of a document in a detail: enough to recognise it. */
#define QUOTE_MAX 100U
#define DETAIL_MAX 512U

static const char *const finding_severity_table[_FINDING_SEVERITY_MAX] = {
        [FINDING_INFO] = "info",
        [FINDING_WARNING] = "warning",
        [FINDING_CRITICAL] = "critical",
};

static const struct {
        const char *name;
        FindingSeverity severity;
} codes[_FINDING_CODE_MAX] = {
        [FINDING_ALL_ACTIONS] = { "all-actions", FINDING_CRITICAL },
        [FINDING_NON_S3_ACTION] = { "non-s3-action", FINDING_CRITICAL },
        [FINDING_ALLOW_NOT_ACTION] = { "allow-not-action", FINDING_CRITICAL },
        [FINDING_S3_ALL_ACTIONS] = { "s3-all-actions", FINDING_WARNING },
        [FINDING_RESOURCE_ALL] = { "resource-all", FINDING_WARNING },
        [FINDING_UNLISTED_BUCKET] = { "unlisted-bucket", FINDING_WARNING },
        [FINDING_ALLOW_NOT_RESOURCE] = { "allow-not-resource", FINDING_WARNING },
        [FINDING_WRITE_ON_READ_ONLY] = { "write-on-read-only", FINDING_INFO },
        [FINDING_KEYS_MULTIPLE_ACTIVE] = { "keys-multiple-active", FINDING_WARNING },
        [FINDING_KEY_TOO_OLD] = { "key-too-old", FINDING_WARNING },
        [FINDING_KEY_NEVER_USED] = { "key-never-used", FINDING_WARNING },
        [FINDING_KEY_UNUSED] = { "key-unused", FINDING_WARNING },
        [FINDING_KEY_NOT_HELD] = { "key-not-held", FINDING_WARNING },
        [FINDING_NOT_IN_INVENTORY] = { "not-in-inventory", FINDING_INFO },
        [FINDING_ROTATION_IN_PROGRESS] = { "rotation-in-progress", FINDING_INFO },
};

DEFINE_STRING_TABLE_TO_STRING(finding_severity, FindingSeverity)

const char *finding_code_to_string(FindingCode c) {
        return c >= 0 && c < _FINDING_CODE_MAX ? codes[c].name : NULL;
}

FindingSeverity finding_code_severity(FindingCode c) {
        return c >= 0 && c < _FINDING_CODE_MAX ? codes[c].severity : FINDING_WARNING;
}

/* ---- findings ---------------------------------------------------------- */

/* Details end up on terminals, in JSON and in the journal, and quote
 * documents an attacker may have written: printable ASCII only. */
static void sanitize_ascii(char *s) {
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 || (unsigned char) *s > 0x7e)
                        *s = '?';
}

int findings_add(Findings *f, FindingCode code, const char *user, const char *fmt, ...) {
        _cleanup_free_ char *detail = NULL, *u = NULL;
        Finding *n;
        va_list ap;
        int k;

        va_start(ap, fmt);
        k = vasprintf(&detail, fmt, ap);
        va_end(ap);
        if (k < 0) {
                detail = NULL;
                return -ENOMEM;
        }
        if (strlen(detail) > DETAIL_MAX)
                memcpy(detail + DETAIL_MAX - 3, "...", 4);
        sanitize_ascii(detail);
        if (user) {
                u = strdup(user);
                if (!u)
                        return -ENOMEM;
                sanitize_ascii(u);
        }

        for (size_t i = 0; i < f->n; i++)
                if (f->items[i].code == code && streq_ptr(f->items[i].user, u) && streq(f->items[i].detail, detail))
                        return 0;
        if (f->n >= FINDINGS_MAX) {
                f->n_dropped++;
                return 0;
        }
        n = realloc(f->items, (f->n + 1) * sizeof(Finding));
        if (!n)
                return -ENOMEM;
        f->items = n;
        f->items[f->n++] = (Finding) {
                .code = code,
                .severity = finding_code_severity(code),
                .user = TAKE_PTR(u),
                .detail = TAKE_PTR(detail),
        };
        return 0;
}

void findings_clear(Findings *f) {
        if (!f)
                return;
        for (size_t i = 0; i < f->n; i++) {
                free(f->items[i].user);
                free(f->items[i].detail);
        }
        free(f->items);
        *f = (Findings) {};
}

size_t findings_count(const Findings *f, FindingSeverity s) {
        size_t n = 0;

        for (size_t i = 0; i < f->n; i++)
                if (f->items[i].severity >= s)
                        n++;
        if (s <= FINDING_WARNING)
                n += f->n_dropped;
        return n;
}

/* ---- decoding ---------------------------------------------------------- */

int policy_document_decode(const char *raw, char **ret) {
        size_t n, j = 0;
        const char *p = raw;
        char *out;

        if (!raw || !ret)
                return -EINVAL;
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
                p++;
        n = strlen(raw);
        /* Plain JSON (moto's GetPolicyVersion): an encoded one starts "%7B". */
        if (*p == '{') {
                if (n > POLICY_DOCUMENT_MAX)
                        return -E2BIG;
                out = strdup(raw);
                if (!out)
                        return -ENOMEM;
                *ret = out;
                return 0;
        }
        /* Encoding only ever grows a document: the output fits in n + 1. */
        out = malloc(n + 1);
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                if (j >= POLICY_DOCUMENT_MAX) {
                        free(out);
                        return -E2BIG;
                }
                if (raw[i] != '%') {
                        out[j++] = raw[i];
                        continue;
                }
                int byte = unhexbyte(raw + i + 1);
                /* %00 would cut the document short for a C reader and not
                 * for IAM's: refuse rather than audit half of it. */
                if (byte <= 0) {
                        free(out);
                        return -EBADMSG;
                }
                out[j++] = (char) byte;
                i += 2;
        }
        out[j] = 0;
        *ret = out;
        return 0;
}

/* ---- matching ---------------------------------------------------------- */

static bool char_eq(char a, char b, bool nocase) {
        if (nocase) {
                if (a >= 'A' && a <= 'Z')
                        a = (char) (a - 'A' + 'a');
                if (b >= 'A' && b <= 'Z')
                        b = (char) (b - 'A' + 'a');
        }
        return a == b;
}

/* IAM's wildcards: '*' any run (also empty), '?' one character. Greedy
 * with one backtrack point: O(len(p) * len(s)) at worst, and both are
 * bounded by POLICY_MAX_ELEMENT. */
static bool glob_match(const char *p, const char *s, bool nocase) {
        const char *star = NULL, *resume = NULL;

        while (*s) {
                if (*p == '*') {
                        star = p++;
                        resume = s;
                } else if (*p && (*p == '?' || char_eq(*p, *s, nocase))) {
                        p++;
                        s++;
                } else if (star) {
                        p = star + 1;
                        s = ++resume;
                } else
                        return false;
        }
        while (*p == '*')
                p++;
        return *p == 0;
}

static bool has_wildcard(const char *s) {
        return strpbrk(s, "*?") != NULL;
}

static bool only_stars(const char *s, size_t n) {
        if (n == 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if (s[i] != '*')
                        return false;
        return true;
}

/* S3 actions that change data or configuration. A wildcard pattern is a
 * write pattern when it matches one of them; a plain name also when it
 * starts with a verb that writes (new S3 actions keep that naming). */
static const char *const s3_write_actions[] = {
        "PutObject", "PutObjectAcl", "PutObjectTagging", "PutObjectVersionAcl", "PutObjectVersionTagging",
        "PutObjectRetention", "PutObjectLegalHold", "DeleteObject", "DeleteObjectVersion", "DeleteObjectTagging",
        "DeleteObjectVersionTagging", "AbortMultipartUpload", "RestoreObject", "ReplicateObject",
        "ReplicateDelete", "ReplicateTags", "CreateBucket", "DeleteBucket", "PutBucketPolicy",
        "DeleteBucketPolicy", "PutBucketAcl", "PutBucketVersioning", "PutLifecycleConfiguration",
        "PutEncryptionConfiguration", "PutBucketPublicAccessBlock", "PutBucketTagging", "PutBucketCORS",
        "PutBucketWebsite", "DeleteBucketWebsite", "PutBucketLogging", "PutBucketNotification",
        "PutReplicationConfiguration", "PutBucketOwnershipControls", "PutBucketObjectLockConfiguration",
        "BypassGovernanceRetention", "CreateAccessPoint", "DeleteAccessPoint", "PutAccessPointPolicy",
        "CreateJob", "UpdateJobPriority", "UpdateJobStatus", "PutAccountPublicAccessBlock",
        "ObjectOwnerOverrideToBucketOwner",
};
static const char *const write_verbs[] = { "put", "delete", "create", "abort", "restore", "replicate",
                                           "update", "bypass", "associate", "initiate" };

static bool s3_action_writes(const char *action) {
        for (size_t i = 0; i < ELEMENTSOF(s3_write_actions); i++)
                if (glob_match(action, s3_write_actions[i], true))
                        return true;
        if (has_wildcard(action))
                return false;
        for (size_t i = 0; i < ELEMENTSOF(write_verbs); i++)
                if (strncasecmp(action, write_verbs[i], strlen(write_verbs[i])) == 0)
                        return true;
        return false;
}

typedef enum ActionClass {
        ACTION_ALL,           /* every action of every service */
        ACTION_OTHER,         /* some other service's, or no action at all */
        ACTION_SPANS,         /* a wildcard reaching S3 and other services */
        ACTION_S3_ALL,        /* s3:* */
        ACTION_S3,            /* inside S3 */
} ActionClass;

static ActionClass classify_action(const char *a, const char **ret_name) {
        const char *colon = strchr(a, ':');

        *ret_name = NULL;
        if (!colon)
                return only_stars(a, strlen(a)) ? ACTION_ALL : has_wildcard(a) ? ACTION_SPANS : ACTION_OTHER;

        size_t service_len = (size_t) (colon - a);
        char service[POLICY_MAX_ELEMENT + 1];
        memcpy(service, a, service_len);
        service[service_len] = 0;

        if (only_stars(service, service_len) && only_stars(colon + 1, strlen(colon + 1)))
                return ACTION_ALL;
        if (!has_wildcard(service)) {
                if (strcasecmp(service, "s3") != 0)
                        return ACTION_OTHER;
                *ret_name = colon + 1;
                return only_stars(colon + 1, strlen(colon + 1)) ? ACTION_S3_ALL : ACTION_S3;
        }
        /* "s3*", "s?", "*": S3 and services named alike. */
        return glob_match(service, "s3", true) ? ACTION_SPANS : ACTION_OTHER;
}

/* ---- documents --------------------------------------------------------- */

typedef struct Checker {
        const PolicyContext *ctx;
        Findings *out;
        char **error;
        char where[192]; /* "SOURCE, statement N (SID)" */
} Checker;

static void quote(const char *s, char buf[static QUOTE_MAX + 4]) {
        size_t n = strlen(s);

        if (n > QUOTE_MAX) {
                memcpy(buf, s, QUOTE_MAX - 3);
                memcpy(buf + QUOTE_MAX - 3, "...", 4);
        } else
                memcpy(buf, s, n + 1);
        /* Quotes inside would make the detail ambiguous to read. */
        for (char *p = buf; *p; p++)
                if (*p == '"')
                        *p = '\'';
}

static int refuse(Checker *c, int r, const char *fmt, ...) _printf_(3, 4);
static int refuse(Checker *c, int r, const char *fmt, ...) {
        char msg[256];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        if (c->error) {
                free(*c->error);
                if (asprintf_safe(c->error, "%s: %s", c->ctx->source ?: "policy", msg) < 0)
                        *c->error = NULL;
                else
                        sanitize_ascii(*c->error);
        }
        return r;
}

/* The strings of member @key: absent (0 strings), one string, or an array
 * of strings; anything else is not a policy. */
static int get_strings(Checker *c, json_object *st, const char *key, const char **v, size_t *ret_n,
                       bool *ret_present) {
        json_object *o;
        size_t n;

        *ret_n = 0;
        *ret_present = json_object_object_get_ex(st, key, &o);
        if (!*ret_present)
                return 0;
        if (json_object_is_type(o, json_type_string)) {
                v[0] = json_object_get_string(o);
                if (strlen(v[0]) != (size_t) json_object_get_string_len(o))
                        return refuse(c, -EBADMSG, "%s: NUL character in %s", c->where, key);
                if (strlen(v[0]) > POLICY_MAX_ELEMENT)
                        return refuse(c, -E2BIG, "%s: a %s element over %u bytes", c->where, key,
                                      POLICY_MAX_ELEMENT);
                *ret_n = 1;
                return 0;
        }
        if (!json_object_is_type(o, json_type_array))
                return refuse(c, -EBADMSG, "%s: %s is neither a string nor an array", c->where, key);
        n = json_object_array_length(o);
        if (n > POLICY_MAX_ELEMENTS)
                return refuse(c, -E2BIG, "%s: more than %u %s elements", c->where, POLICY_MAX_ELEMENTS, key);
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(o, i);

                if (!json_object_is_type(e, json_type_string))
                        return refuse(c, -EBADMSG, "%s: %s element %zu is not a string", c->where, key, i + 1);
                v[i] = json_object_get_string(e);
                if (strlen(v[i]) != (size_t) json_object_get_string_len(e))
                        return refuse(c, -EBADMSG, "%s: NUL character in %s", c->where, key);
                if (strlen(v[i]) > POLICY_MAX_ELEMENT)
                        return refuse(c, -E2BIG, "%s: a %s element over %u bytes", c->where, key,
                                      POLICY_MAX_ELEMENT);
        }
        *ret_n = n;
        return 0;
}

#define ADD(c, code, ...) findings_add((c)->out, (code), (c)->ctx->user, __VA_ARGS__)

/* Returns whether the action may reach S3 (its resources matter then). */
static int check_action(Checker *c, const char *a, bool *s3_relevant) {
        char q[QUOTE_MAX + 4];
        const char *name;
        int r = 0;

        quote(a, q);
        switch (classify_action(a, &name)) {
        case ACTION_ALL:
                *s3_relevant = true;
                return ADD(c, FINDING_ALL_ACTIONS, "%s: Allow \"%s\" grants every action of every service",
                           c->where, q);
        case ACTION_OTHER:
                return ADD(c, FINDING_NON_S3_ACTION, "%s: Allow \"%s\" is not an S3 action", c->where, q);
        case ACTION_SPANS:
                *s3_relevant = true;
                return ADD(c, FINDING_NON_S3_ACTION, "%s: Allow \"%s\" matches actions of services other than S3",
                           c->where, q);
        case ACTION_S3_ALL:
                *s3_relevant = true;
                return ADD(c, FINDING_S3_ALL_ACTIONS,
                           "%s: Allow \"%s\" grants every S3 action (bucket policies, deletion of buckets)",
                           c->where, q);
        case ACTION_S3:
                *s3_relevant = true;
                if (c->ctx->read_only && s3_action_writes(name))
                        r = ADD(c, FINDING_WRITE_ON_READ_ONLY,
                                "%s: Allow \"%s\" writes, but the user's verify check only reads", c->where, q);
                return r;
        }
        return 0;
}

static bool bucket_listed(const PolicyContext *ctx, const char *bucket, size_t len) {
        for (size_t i = 0; i < ctx->n_buckets; i++)
                if (ctx->buckets[i] && strlen(ctx->buckets[i]) == len && strncmp(ctx->buckets[i], bucket, len) == 0)
                        return true;
        return false;
}

static int check_resource(Checker *c, const char *res) {
        char q[QUOTE_MAX + 4];
        const char *f[6];
        size_t n = 1;

        quote(res, q);
        if (only_stars(res, strlen(res)))
                return ADD(c, FINDING_RESOURCE_ALL, "%s: Resource \"%s\" is every resource", c->where, q);
        if (!startswith(res, "arn:")) {
                /* Not an ARN: IAM refuses those, except as a pattern. */
                if (has_wildcard(res) && glob_match(res, "arn:aws:s3:::any-bucket/any-key", false))
                        return ADD(c, FINDING_RESOURCE_ALL, "%s: Resource \"%s\" matches every bucket", c->where, q);
                return 0;
        }
        /* arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE (RESOURCE may hold ':'). */
        f[0] = res;
        for (const char *p = res; *p && n < 6; p++)
                if (*p == ':')
                        f[n++] = p + 1;
        if (n < 6)
                return 0;
        size_t service_len = (size_t) (f[3] - f[2] - 1);
        char service[POLICY_MAX_ELEMENT + 1];
        memcpy(service, f[2], service_len);
        service[service_len] = 0;
        if (!glob_match(service, "s3", false))
                return 0; /* another service's resource */

        const char *rest = f[5], *slash = strchr(rest, '/');
        size_t bucket_len = slash ? (size_t) (slash - rest) : strlen(rest);
        if (only_stars(rest, bucket_len))
                return ADD(c, FINDING_RESOURCE_ALL, "%s: Resource \"%s\" is every bucket", c->where, q);
        if (!c->ctx->buckets)
                return 0;
        bool plain_bucket_arn = f[4] - f[3] == 1 && f[5] - f[4] == 1;
        if (!plain_bucket_arn)
                return ADD(c, FINDING_UNLISTED_BUCKET, "%s: Resource \"%s\" is an S3 resource other than a bucket",
                           c->where, q);
        char b[QUOTE_MAX + 4];
        char bucket[POLICY_MAX_ELEMENT + 1];
        memcpy(bucket, rest, bucket_len);
        bucket[bucket_len] = 0;
        quote(bucket, b);
        /* A bucket pattern may match buckets created tomorrow. */
        if (has_wildcard(bucket))
                return ADD(c, FINDING_UNLISTED_BUCKET,
                           "%s: Resource \"%s\": bucket pattern \"%s\" can match buckets the inventory does not name",
                           c->where, q, b);
        if (!bucket_listed(c->ctx, rest, bucket_len))
                return ADD(c, FINDING_UNLISTED_BUCKET, "%s: Resource \"%s\": bucket \"%s\" is not the user's in the inventory",
                           c->where, q, b);
        return 0;
}

static int check_statement(Checker *c, json_object *st, size_t index) {
        const char **actions = NULL, **resources = NULL;
        size_t n_actions, n_not_actions, n_resources, n_not_resources;
        bool has_action, has_not_action, has_resource, has_not_resource, s3_relevant = false;
        json_object *o;
        const char *effect, *sid = NULL;
        char q[QUOTE_MAX + 4];
        int r;

        snprintf(c->where, sizeof c->where, "%s, statement %zu", c->ctx->source ?: "policy", index + 1);
        if (!json_object_is_type(st, json_type_object))
                return refuse(c, -EBADMSG, "%s is not an object", c->where);
        if (json_object_object_get_ex(st, "Sid", &o) && json_object_is_type(o, json_type_string))
                sid = json_object_get_string(o);
        if (sid && *sid) {
                char s[QUOTE_MAX + 4];
                size_t at = strlen(c->where);

                quote(sid, s);
                snprintf(c->where + at, sizeof c->where - at, " (%.48s)", s);
        }

        if (!json_object_object_get_ex(st, "Effect", &o) || !json_object_is_type(o, json_type_string))
                return refuse(c, -EBADMSG, "%s has no Effect", c->where);
        effect = json_object_get_string(o);
        if (strcasecmp(effect, "Deny") == 0)
                return 0; /* a Deny only ever takes away */
        if (strcasecmp(effect, "Allow") != 0) {
                quote(effect, q);
                return refuse(c, -EBADMSG, "%s: Effect \"%s\" is neither Allow nor Deny", c->where, q);
        }

        actions = calloc(POLICY_MAX_ELEMENTS, sizeof(char *));
        resources = calloc(POLICY_MAX_ELEMENTS, sizeof(char *));
        if (!actions || !resources) {
                r = -ENOMEM;
                goto out;
        }

        r = get_strings(c, st, "NotAction", actions, &n_not_actions, &has_not_action);
        if (r < 0)
                goto out;
        if (has_not_action) {
                char list[QUOTE_MAX + 4] = "";

                if (n_not_actions > 0)
                        quote(actions[0], list);
                s3_relevant = true;
                r = ADD(c, FINDING_ALLOW_NOT_ACTION,
                        "%s: Allow with NotAction (\"%s\"%s) grants every other action of every service", c->where,
                        list, n_not_actions > 1 ? ", ..." : "");
                if (r < 0)
                        goto out;
        }
        r = get_strings(c, st, "Action", actions, &n_actions, &has_action);
        if (r < 0)
                goto out;
        if (!has_action && !has_not_action) {
                r = refuse(c, -EBADMSG, "%s has neither Action nor NotAction", c->where);
                goto out;
        }
        for (size_t i = 0; i < n_actions && r >= 0; i++)
                r = check_action(c, actions[i], &s3_relevant);
        if (r < 0)
                goto out;

        r = get_strings(c, st, "NotResource", resources, &n_not_resources, &has_not_resource);
        if (r < 0)
                goto out;
        if (has_not_resource) {
                char list[QUOTE_MAX + 4] = "";

                if (n_not_resources > 0)
                        quote(resources[0], list);
                r = ADD(c, FINDING_ALLOW_NOT_RESOURCE, "%s: Allow with NotResource (\"%s\"%s) grants every other resource",
                        c->where, list, n_not_resources > 1 ? ", ..." : "");
                if (r < 0)
                        goto out;
        }
        r = get_strings(c, st, "Resource", resources, &n_resources, &has_resource);
        if (r < 0)
                goto out;
        if (!has_resource && !has_not_resource) {
                r = refuse(c, -EBADMSG, "%s has neither Resource nor NotResource", c->where);
                goto out;
        }
        for (size_t i = 0; s3_relevant && i < n_resources && r >= 0; i++)
                r = check_resource(c, resources[i]);
out:
        free(actions);
        free(resources);
        return r;
}

int policy_check_document(const char *json, size_t len, const PolicyContext *ctx, Findings *out,
                          char **ret_error) {
        _cleanup_json_tokener_ json_tokener *tok = NULL;
        _cleanup_json_ json_object *doc = NULL;
        Checker c = { .ctx = ctx, .out = out, .error = ret_error };
        json_object *stmts;
        size_t end;
        int r;

        if (!json || !ctx || !out)
                return -EINVAL;
        snprintf(c.where, sizeof c.where, "%s", ctx->source ?: "policy");
        if (len > POLICY_DOCUMENT_MAX)
                return refuse(&c, -E2BIG, "document of %zu bytes exceeds %u", len, POLICY_DOCUMENT_MAX);
        if (memchr(json, 0, len))
                return refuse(&c, -EBADMSG, "NUL byte in the document");

        tok = json_tokener_new_ex(POLICY_MAX_DEPTH);
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        doc = json_tokener_parse_ex(tok, json, (int) len);
        if (json_tokener_get_error(tok) != json_tokener_success || !doc)
                return refuse(&c, -EBADMSG, "not valid JSON: %s",
                              json_tokener_get_error(tok) == json_tokener_continue
                                      ? "unexpected end of document"
                                      : json_tokener_error_desc(json_tokener_get_error(tok)));
        end = json_tokener_get_parse_end(tok);
        for (; end < len; end++)
                if (!strchr(" \t\r\n", json[end]))
                        return refuse(&c, -EBADMSG, "not valid JSON: data after the document");
        if (!json_object_is_type(doc, json_type_object))
                return refuse(&c, -EBADMSG, "not a JSON object");

        /* No Statement grants nothing. */
        if (!json_object_object_get_ex(doc, "Statement", &stmts))
                return 0;
        if (json_object_is_type(stmts, json_type_object))
                return check_statement(&c, stmts, 0);
        if (!json_object_is_type(stmts, json_type_array))
                return refuse(&c, -EBADMSG, "Statement is neither an object nor an array");
        if (json_object_array_length(stmts) > POLICY_MAX_STATEMENTS)
                return refuse(&c, -E2BIG, "more than %u statements", POLICY_MAX_STATEMENTS);
        for (size_t i = 0; i < json_object_array_length(stmts); i++) {
                r = check_statement(&c, json_object_array_get_idx(stmts, i), i);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- keys -------------------------------------------------------------- */

static bool key_held(const KeyContext *ctx, const char *id) {
        for (size_t i = 0; i < ctx->n_held; i++)
                if (ctx->held[i] && streq(ctx->held[i], id))
                        return true;
        return false;
}

static usec_t since(time_t now, time_t then) {
        return now > then ? (usec_t) (now - then) * USEC_PER_SEC : 0;
}

int policy_check_keys(const KeyFacts *keys, size_t n, const KeyContext *ctx, Findings *out) {
        char max_age[DURATION_STRING_MAX], age[DURATION_STRING_MAX];
        size_t n_active = 0;
        int r;

        if ((n > 0 && !keys) || !ctx || !out)
                return -EINVAL;
        format_duration_approx(ctx->max_age, 2, max_age, sizeof max_age);

        if (ctx->rotation_in_progress) {
                r = findings_add(out, FINDING_ROTATION_IN_PROGRESS, ctx->user,
                                 "a rotation is in progress: a second key and keys not held yet are expected");
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < n; i++)
                if (keys[i].active)
                        n_active++;
        if (n_active > 1 && !ctx->rotation_in_progress) {
                char ids[256] = "";
                size_t at = 0;

                for (size_t i = 0; i < n && at < sizeof ids; i++)
                        if (keys[i].active)
                                at += (size_t) snprintf(ids + at, sizeof ids - at, "%s%s", at ? ", " : "",
                                                        keys[i].access_key_id);
                r = findings_add(out, FINDING_KEYS_MULTIPLE_ACTIVE, ctx->user, "%zu Active keys (%s)", n_active, ids);
                if (r < 0)
                        return r;
        }

        for (size_t i = 0; i < n; i++) {
                const KeyFacts *k = &keys[i];
                usec_t a = since(ctx->now, k->created);

                /* Inactive keys are the old key in its grace period, or
                 * stale: their age and use are no longer a risk. */
                if (k->active && a > ctx->max_age) {
                        format_duration_approx(a, 2, age, sizeof age);
                        r = findings_add(out, FINDING_KEY_TOO_OLD, ctx->user, "key %s is %s old (max_age %s)",
                                         k->access_key_id, age, max_age);
                        if (r < 0)
                                return r;
                }
                if (!k->active || k->usage_unknown)
                        r = 0;
                else if (k->last_used == 0 && a > ctx->max_age) {
                        format_duration_approx(a, 2, age, sizeof age);
                        r = findings_add(out, FINDING_KEY_NEVER_USED, ctx->user,
                                         "key %s was never used in the %s since its creation (max_age %s)",
                                         k->access_key_id, age, max_age);
                } else if (k->last_used != 0 && since(ctx->now, k->last_used) > ctx->max_age) {
                        format_duration_approx(since(ctx->now, k->last_used), 2, age, sizeof age);
                        r = findings_add(out, FINDING_KEY_UNUSED, ctx->user, "key %s was last used %s ago (max_age %s)",
                                         k->access_key_id, age, max_age);
                } else
                        r = 0;
                if (r < 0)
                        return r;
                if (ctx->check_held && !ctx->rotation_in_progress && !key_held(ctx, k->access_key_id)) {
                        r = findings_add(out, FINDING_KEY_NOT_HELD, ctx->user,
                                         "%s key %s is not held by keyrotd (hand it over with keyrotctl adopt, or delete it)",
                                         k->active ? "Active" : "Inactive", k->access_key_id);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

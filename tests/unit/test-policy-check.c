/* SPDX-License-Identifier: MIT */
/*
 * test-policy-check.c — the audit's rules on policy documents and keys:
 * string and array forms, wildcards, NotAction/NotResource, bucket ARNs,
 * URL decoding, and hostile documents (malformed, deep, huge).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "basic/util.h"
#include "policy/check.h"
#include "tap.h"

static const char *const app_buckets[] = { "app-bucket", "second-bucket" };

static const PolicyContext ctx_rw = {
        .user = "app-bot",
        .source = "inline policy p",
        .buckets = app_buckets,
        .n_buckets = 2,
        .read_only = false,
};

static const PolicyContext ctx_ro = {
        .user = "app-bot",
        .source = "inline policy p",
        .buckets = app_buckets,
        .n_buckets = 2,
        .read_only = true,
};

static const PolicyContext ctx_unknown = {
        .user = "stranger",
        .source = "inline policy p",
};

/* Run one document; returns the check's result and leaves findings in *f. */
static int run(const char *doc, const PolicyContext *ctx, Findings *f, char **err) {
        findings_clear(f);
        return policy_check_document(doc, strlen(doc), ctx, f, err);
}

static size_t count_code(const Findings *f, FindingCode c) {
        size_t n = 0;

        for (size_t i = 0; i < f->n; i++)
                if (f->items[i].code == c)
                        n++;
        return n;
}

static bool only(const Findings *f, FindingCode c) {
        return f->n > 0 && count_code(f, c) == f->n;
}

/* The codes found, space-separated, in order: for diagnostics. */
static const char *codes_of(const Findings *f) {
        static char buf[1024];
        size_t at = 0;

        buf[0] = 0;
        for (size_t i = 0; i < f->n && at < sizeof buf; i++)
                at += (size_t) snprintf(buf + at, sizeof buf - at, "%s%s", i ? " " : "",
                                        finding_code_to_string(f->items[i].code));
        return buf;
}

static void expect(const char *doc, const PolicyContext *ctx, FindingCode code, size_t n, const char *name) {
        Findings f = {};
        _cleanup_free_ char *err = NULL;
        int r = run(doc, ctx, &f, &err);

        if (!ok(r == 0 && only(&f, code) && f.n == n, "%s", name))
                diag("r=%d err=%s findings: %s", r, err ?: "-", codes_of(&f));
        findings_clear(&f);
}

static void expect_clean(const char *doc, const PolicyContext *ctx, const char *name) {
        Findings f = {};
        _cleanup_free_ char *err = NULL;
        int r = run(doc, ctx, &f, &err);

        if (!ok(r == 0 && f.n == 0, "%s", name))
                diag("r=%d err=%s findings: %s", r, err ?: "-", codes_of(&f));
        findings_clear(&f);
}

static void expect_error(const char *doc, int want, const char *needle, const char *name) {
        Findings f = {};
        _cleanup_free_ char *err = NULL;
        int r = run(doc, &ctx_rw, &f, &err);

        if (!ok(r == want && err && strstr(err, needle) && strstr(err, "inline policy p"), "%s", name))
                diag("r=%d err=%s", r, err ?: "(none)");
        findings_clear(&f);
}

#define SEED                                                                                                  \
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":[\"s3:GetObject\","       \
        "\"s3:PutObject\",\"s3:ListBucket\"],\"Resource\":[\"arn:aws:s3:::app-bucket\","                      \
        "\"arn:aws:s3:::app-bucket/*\"]}]}"

static void test_clean(void) {
        expect_clean(SEED, &ctx_rw, "clean: the usual S3-only policy (array form)");
        expect_clean("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\","
                     "\"Resource\":\"arn:aws:s3:::app-bucket/*\"}}",
                     &ctx_rw, "clean: Statement object, Action and Resource strings");
        expect_clean("{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":[\"s3:Get*\",\"s3:List*\"],"
                     "\"Resource\":[\"arn:aws:s3:::app-bucket\",\"arn:aws:s3:::app-bucket/data/*\","
                     "\"arn:aws:s3:::second-bucket/prefix*\"]}]}",
                     &ctx_ro, "clean: s3:Get* and s3:List* on listed buckets, read-only");
        expect_clean("{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"S3:GETOBJECT\","
                     "\"Resource\":\"arn:aws:s3:::app-bucket/*\"}]}",
                     &ctx_ro, "clean: action names are case-insensitive");
        expect_clean("{\"Statement\":[{\"Effect\":\"Deny\",\"Action\":\"*\",\"Resource\":\"*\"},"
                     "{\"Effect\":\"Deny\",\"NotAction\":\"s3:*\",\"NotResource\":\"arn:aws:s3:::app-bucket\"}]}",
                     &ctx_rw, "clean: Deny statements only take away");
        expect_clean("{\"Version\":\"2012-10-17\"}", &ctx_rw, "clean: no Statement grants nothing");
        expect_clean("{\"Statement\":[]}", &ctx_rw, "clean: empty Statement array");
        expect_clean("{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"s3:ListBucket\","
                     "\"Resource\":\"arn:aws:s3:::app-bucket\",\"Condition\":{\"StringLike\":"
                     "{\"s3:prefix\":[\"data/*\"]}}}]}",
                     &ctx_rw, "clean: conditions are tolerated");
        expect_clean("{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\","
                     "\"Resource\":\"arn:aws-cn:s3:::app-bucket/*\"},{\"Effect\":\"Allow\","
                     "\"Action\":\"s3:GetObject\",\"Resource\":\"arn:*:s3:::second-bucket/x\"}]}",
                     &ctx_rw, "clean: other partitions, wildcard partition");
        expect_clean("  \n" SEED "\n  ", &ctx_rw, "clean: whitespace around the document");
}

static void test_actions(void) {
        expect("{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"iam:*\",\"Resource\":\"*\"}]}", &ctx_unknown,
               FINDING_NON_S3_ACTION, 1, "action: iam:* (no bucket checks without inventory, but Resource *)");
        Findings f = {};
        ok(run("{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"iam:*\",\"Resource\":\"*\"}]}", &ctx_rw, &f, NULL) ==
                           0 && f.n == 1 && f.items[0].code == FINDING_NON_S3_ACTION &&
                   f.items[0].severity == FINDING_CRITICAL,
           "action: iam:* alone: its resource does not matter (not S3)");
        ok(f.n == 1 && strstr(f.items[0].detail, "\"iam:*\"") && strstr(f.items[0].detail, "statement 1") &&
                   streq(f.items[0].user, "app-bot"),
           "action: the detail names the action, the statement, and the user");

        expect("{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":[\"s3:GetObject\",\"ec2:RunInstances\","
               "\"sts:AssumeRole\"],\"Resource\":\"arn:aws:s3:::app-bucket/*\"}]}",
               &ctx_rw, FINDING_NON_S3_ACTION, 2, "action: ec2 and sts among S3 actions");
        expect("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"arn:aws:s3:::app-bucket\"}}",
               &ctx_rw, FINDING_ALL_ACTIONS, 1, "action: *");
        expect("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*:*\",\"Resource\":\"arn:aws:s3:::app-bucket\"}}",
               &ctx_rw, FINDING_ALL_ACTIONS, 1, "action: *:*");
        expect("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s*\",\"Resource\":\"arn:aws:s3:::app-bucket\"}}",
               &ctx_rw, FINDING_NON_S3_ACTION, 1, "action: s* reaches sts, sqs, ...");
        expect("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3*:GetObject\",\"Resource\":\"arn:aws:s3:::app-bucket\"}}",
               &ctx_rw, FINDING_NON_S3_ACTION, 1, "action: s3*:GetObject reaches s3express");
        expect("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3express:CreateSession\","
               "\"Resource\":\"arn:aws:s3:::app-bucket\"}}",
               &ctx_rw, FINDING_NON_S3_ACTION, 1, "action: s3express is another service");
        expect("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*:GetObject\",\"Resource\":\"arn:aws:s3:::app-bucket\"}}",
               &ctx_rw, FINDING_NON_S3_ACTION, 1, "action: *:GetObject");
        expect("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"GetObject\",\"Resource\":\"arn:aws:s3:::app-bucket\"}}",
               &ctx_rw, FINDING_NON_S3_ACTION, 1, "action: without a service prefix");
        expect("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:*\",\"Resource\":\"arn:aws:s3:::app-bucket\"}}",
               &ctx_rw, FINDING_S3_ALL_ACTIONS, 1, "action: s3:*");
        expect("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"S3:**\",\"Resource\":\"arn:aws:s3:::app-bucket\"}}",
               &ctx_ro, FINDING_S3_ALL_ACTIONS, 1, "action: S3:** (case, repeated stars), no write note on top");
        findings_clear(&f);
        ok(run("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:*\",\"Resource\":\"arn:aws:s3:::app-bucket\"}}",
               &ctx_rw, &f, NULL) == 0 && f.n == 1 && f.items[0].severity == FINDING_WARNING,
           "action: s3:* is a warning");
        findings_clear(&f);
}

static void test_writes(void) {
        expect("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":[\"s3:GetObject\",\"s3:PutObject\","
               "\"s3:DeleteObject\"],\"Resource\":\"arn:aws:s3:::app-bucket/*\"}}",
               &ctx_ro, FINDING_WRITE_ON_READ_ONLY, 2, "write: PutObject and DeleteObject, read-only check");
        expect_clean("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":[\"s3:GetObject\",\"s3:PutObject\"],"
                     "\"Resource\":\"arn:aws:s3:::app-bucket/*\"}}",
                     &ctx_rw, "write: fine when the check writes");
        expect("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:Put*\",\"Resource\":\"arn:aws:s3:::app-bucket/*\"}}",
               &ctx_ro, FINDING_WRITE_ON_READ_ONLY, 1, "write: s3:Put*");
        expect("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:*Object\",\"Resource\":\"arn:aws:s3:::app-bucket/*\"}}",
               &ctx_ro, FINDING_WRITE_ON_READ_ONLY, 1, "write: s3:*Object matches PutObject");
        expect("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:deleteobjectversion\","
               "\"Resource\":\"arn:aws:s3:::app-bucket/*\"}}",
               &ctx_ro, FINDING_WRITE_ON_READ_ONLY, 1, "write: lower case");
        expect("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:PutFutureThing\","
               "\"Resource\":\"arn:aws:s3:::app-bucket/*\"}}",
               &ctx_ro, FINDING_WRITE_ON_READ_ONLY, 1, "write: unknown Put action by its verb");
        Findings f = {};
        ok(run("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:PutObject\",\"Resource\":\"arn:aws:s3:::app-bucket/*\"}}",
               &ctx_ro, &f, NULL) == 0 && f.n == 1 && f.items[0].severity == FINDING_INFO &&
                   findings_count(&f, FINDING_WARNING) == 0 && findings_count(&f, FINDING_INFO) == 1,
           "write: an info finding, not counted as a warning");
        findings_clear(&f);
}

static void test_resources(void) {
        expect("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\",\"Resource\":\"*\"}}", &ctx_rw,
               FINDING_RESOURCE_ALL, 1, "resource: *");
        expect("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\",\"Resource\":\"*\"}}", &ctx_unknown,
               FINDING_RESOURCE_ALL, 1, "resource: * also outside the inventory");
        expect("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\",\"Resource\":[\"arn:aws:s3:::*\","
               "\"arn:aws:s3:::*/*\"]}}",
               &ctx_rw, FINDING_RESOURCE_ALL, 2, "resource: every bucket");
        expect("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\",\"Resource\":\"arn:*:*:*:*:*\"}}",
               &ctx_rw, FINDING_RESOURCE_ALL, 1, "resource: arn:*:*:*:*:*");
        expect("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\",\"Resource\":\"arn*\"}}",
               &ctx_rw, FINDING_RESOURCE_ALL, 1, "resource: arn* pattern");
        expect("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\",\"Resource\":["
               "\"arn:aws:s3:::app-bucket\",\"arn:aws:s3:::other-bucket\",\"arn:aws:s3:::other-bucket/*\","
               "\"arn:aws:s3:::third/prefix*\"]}}",
               &ctx_rw, FINDING_UNLISTED_BUCKET, 3, "resource: buckets the inventory does not name");
        expect("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\",\"Resource\":\"arn:aws:s3:::app-*\"}}",
               &ctx_rw, FINDING_UNLISTED_BUCKET, 1, "resource: a bucket pattern");
        expect("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\",\"Resource\":\"arn:aws:s3:::app-bucket*\"}}",
               &ctx_rw, FINDING_UNLISTED_BUCKET, 1, "resource: app-bucket* also matches app-bucket2");
        expect("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\",\"Resource\":"
               "\"arn:aws:s3:us-east-1:123456789012:accesspoint/ap\"}}",
               &ctx_rw, FINDING_UNLISTED_BUCKET, 1, "resource: an access point is not a listed bucket");
        expect_clean("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\",\"Resource\":"
                     "[\"arn:aws:s3:::other-bucket/*\",\"arn:aws:s3:::app-*\"]}}",
                     &ctx_unknown, "resource: no bucket findings outside the inventory");
        expect("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\",\"Resource\":"
               "\"arn:aws:s3:::App-Bucket/*\"}}",
               &ctx_rw, FINDING_UNLISTED_BUCKET, 1, "resource: bucket names are case-sensitive");
        expect_clean("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\",\"Resource\":"
                     "\"arn:aws:iam::123456789012:user/x\"}}",
                     &ctx_rw, "resource: another service's ARN is no bucket");
        /* A non-S3 action: its resources are not S3's business. */
        expect("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"iam:GetUser\",\"Resource\":\"arn:aws:s3:::other\"}}",
               &ctx_rw, FINDING_NON_S3_ACTION, 1, "resource: not checked for a non-S3 action");

        Findings f = {};
        ok(run("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}}", &ctx_rw, &f, NULL) == 0 &&
                   f.n == 2 && count_code(&f, FINDING_ALL_ACTIONS) == 1 && count_code(&f, FINDING_RESOURCE_ALL) == 1,
           "resource: * with action *: both findings");
        findings_clear(&f);
        ok(run("{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\",\"Resource\":\"*\"},"
               "{\"Effect\":\"Allow\",\"Action\":\"s3:ListBucket\",\"Resource\":\"*\"}]}",
               &ctx_rw, &f, NULL) == 0 && f.n == 2,
           "resource: one finding per statement");
        findings_clear(&f);
        ok(run("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\",\"Resource\":[\"*\",\"*\"]}}",
               &ctx_rw, &f, NULL) == 0 && f.n == 1,
           "resource: the same finding twice is kept once");
        findings_clear(&f);
}

static void test_not(void) {
        Findings f = {};

        expect("{\"Statement\":{\"Effect\":\"Allow\",\"NotAction\":\"iam:*\",\"Resource\":\"arn:aws:s3:::app-bucket\"}}",
               &ctx_rw, FINDING_ALLOW_NOT_ACTION, 1, "not: Allow + NotAction string");
        ok(run("{\"Statement\":{\"Effect\":\"Allow\",\"NotAction\":[\"iam:*\",\"sts:*\"],\"Resource\":\"*\"}}", &ctx_rw,
               &f, NULL) == 0 && count_code(&f, FINDING_ALLOW_NOT_ACTION) == 1 &&
                   count_code(&f, FINDING_RESOURCE_ALL) == 1 && f.items[0].severity == FINDING_CRITICAL &&
                   strstr(f.items[0].detail, "\"iam:*\", ..."),
           "not: NotAction array with Resource *");
        findings_clear(&f);
        expect("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\",\"NotResource\":"
               "\"arn:aws:s3:::secret-bucket/*\"}}",
               &ctx_rw, FINDING_ALLOW_NOT_RESOURCE, 1, "not: Allow + NotResource");
        ok(run("{\"Statement\":{\"Effect\":\"Allow\",\"NotAction\":\"s3:DeleteBucket\",\"NotResource\":[]}}", &ctx_rw,
               &f, NULL) == 0 && count_code(&f, FINDING_ALLOW_NOT_ACTION) == 1 &&
                   count_code(&f, FINDING_ALLOW_NOT_RESOURCE) == 1,
           "not: both");
        findings_clear(&f);
}

static void test_sid_and_sanitizing(void) {
        Findings f = {};

        ok(run("{\"Statement\":[{\"Sid\":\"Ok\",\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\","
               "\"Resource\":\"arn:aws:s3:::app-bucket/*\"},{\"Sid\":\"Evil\\u001b[31m\\n\",\"Effect\":\"Allow\","
               "\"Action\":\"iam:Create\\u00e9\\u001b\",\"Resource\":\"*\"}]}",
               &ctx_rw, &f, NULL) == 0 && f.n == 1,
           "sanitize: one finding");
        bool printable = f.n == 1;
        for (const char *p = f.n ? f.items[0].detail : ""; *p; p++)
                printable = printable && *p >= 0x20 && *p < 0x7f;
        ok(printable && strstr(f.items[0].detail, "statement 2 (Evil?[31m?)"),
           "sanitize: control characters and non-ASCII become '?', the Sid is shown");
        findings_clear(&f);

        _cleanup_free_ char *long_action = malloc(1200), *doc = NULL;
        memset(long_action, 'a', 1199);
        long_action[1199] = 0;
        memcpy(long_action, "iam:", 4);
        ok(asprintf_safe(&doc, "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"%s\",\"Resource\":\"x\"}}",
                         long_action) == 0 &&
                   run(doc, &ctx_rw, &f, NULL) == 0 && f.n == 1 && strlen(f.items[0].detail) < 300 &&
                   strstr(f.items[0].detail, "..."),
           "sanitize: a long action is cut in the detail");
        findings_clear(&f);
}

static void test_malformed(void) {
        expect_error("", -EBADMSG, "not valid JSON", "malformed: empty");
        expect_error("{\"Statement\":", -EBADMSG, "not valid JSON", "malformed: truncated");
        expect_error("{\"Statement\":[],}", -EBADMSG, "not valid JSON", "malformed: trailing comma");
        expect_error("{} {}", -EBADMSG, "not valid JSON", "malformed: two documents");
        expect_error("[1,2]", -EBADMSG, "not a JSON object", "malformed: an array");
        expect_error("{\"Statement\":\"Allow\"}", -EBADMSG, "neither an object nor an array",
                     "malformed: Statement a string");
        expect_error("{\"Statement\":[42]}", -EBADMSG, "statement 1 is not an object", "malformed: statement a number");
        expect_error("{\"Statement\":[{\"Action\":\"s3:*\",\"Resource\":\"*\"}]}", -EBADMSG, "has no Effect",
                     "malformed: no Effect");
        expect_error("{\"Statement\":[{\"Effect\":\"Permit\",\"Action\":\"s3:*\",\"Resource\":\"*\"}]}", -EBADMSG,
                     "neither Allow nor Deny", "malformed: Effect Permit");
        expect_error("{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":42,\"Resource\":\"*\"}]}", -EBADMSG,
                     "Action is neither a string nor an array", "malformed: Action a number");
        expect_error("{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":[\"s3:GetObject\",{}],\"Resource\":\"*\"}]}",
                     -EBADMSG, "Action element 2 is not a string", "malformed: Action array with an object");
        expect_error("{\"Statement\":[{\"Effect\":\"Allow\",\"Resource\":\"*\"}]}", -EBADMSG,
                     "neither Action nor NotAction", "malformed: no Action");
        expect_error("{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\"}]}", -EBADMSG,
                     "neither Resource nor NotResource", "malformed: no Resource");
        expect_error("{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"s3:Get\\u0000iam:*\",\"Resource\":\"*\"}]}",
                     -EBADMSG, "NUL character", "malformed: NUL inside an action");
        expect_error("{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"s3:\xff\",\"Resource\":\"*\"}]}", -EBADMSG,
                     "not valid JSON", "malformed: invalid UTF-8");

        Findings f = {};
        _cleanup_free_ char *err = NULL;
        ok(policy_check_document("{\"Statement\":[]}\0junk", 21, &ctx_rw, &f, &err) == -EBADMSG && err &&
                   strstr(err, "NUL byte"),
           "malformed: a NUL byte in the document");
        findings_clear(&f);
        ok(policy_check_document("{}", 2, &ctx_rw, &f, NULL) == 0, "malformed: no error pointer needed");
        ok(policy_check_document(NULL, 0, &ctx_rw, &f, NULL) == -EINVAL, "malformed: NULL document");
}

static char *repeat(const char *s, size_t n) {
        size_t l = strlen(s);
        char *out = malloc(l * n + 1);

        for (size_t i = 0; i < n; i++)
                memcpy(out + i * l, s, l);
        out[l * n] = 0;
        return out;
}

static void test_bounds(void) {
        Findings f = {};
        _cleanup_free_ char *err = NULL;

        /* Nesting: the tokener's depth limit, not the stack. */
        _cleanup_free_ char *open = repeat("[", 60000), *deep = NULL;
        ok(asprintf_safe(&deep, "{\"Statement\":%s", open) == 0 &&
                   policy_check_document(deep, strlen(deep), &ctx_rw, &f, &err) == -EBADMSG && err &&
                   strstr(err, "nesting too deep"),
           "bounds: 60000 nested arrays refused");
        _cleanup_free_ char *cond_open = repeat("{\"a\":", 40), *cond_close = repeat("}", 40), *cond = NULL;
        ok(asprintf_safe(&cond, "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\",\"Resource\":\"*\","
                                "\"Condition\":%s1%s}}", cond_open, cond_close) == 0 &&
                   policy_check_document(cond, strlen(cond), &ctx_rw, &f, NULL) == -EBADMSG,
           "bounds: a condition nested 40 deep refused");

        /* Size. */
        _cleanup_free_ char *pad = repeat(" ", POLICY_DOCUMENT_MAX), *huge = NULL;
        free(err);
        err = NULL;
        ok(asprintf_safe(&huge, "{\"Statement\":[]%s}", pad) == 0 &&
                   policy_check_document(huge, strlen(huge), &ctx_rw, &f, &err) == -E2BIG && err &&
                   strstr(err, "exceeds"),
           "bounds: a document over POLICY_DOCUMENT_MAX refused with a message");
        _cleanup_free_ char *fits_pad = repeat(" ", POLICY_DOCUMENT_MAX - 20), *fits = NULL;
        ok(asprintf_safe(&fits, "{\"Statement\":[]%s}", fits_pad) == 0 &&
                   policy_check_document(fits, strlen(fits), &ctx_rw, &f, NULL) == 0,
           "bounds: a document just under the limit accepted");

        /* Counts. */
        _cleanup_free_ char *many_actions = repeat("\"s3:GetObject\",", POLICY_MAX_ELEMENTS), *doc = NULL;
        many_actions[strlen(many_actions) - 1] = 0;
        free(err);
        err = NULL;
        ok(asprintf_safe(&doc, "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":[%s,\"s3:x\"],\"Resource\":\"*\"}}",
                         many_actions) == 0 &&
                   policy_check_document(doc, strlen(doc), &ctx_rw, &f, &err) == -E2BIG && err &&
                   strstr(err, "more than 1000 Action elements"),
           "bounds: more than POLICY_MAX_ELEMENTS actions refused");
        free(doc);
        doc = NULL;
        ok(asprintf_safe(&doc, "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":[%s],\"Resource\":\"arn:aws:s3:::app-bucket\"}}",
                         many_actions) == 0 &&
                   policy_check_document(doc, strlen(doc), &ctx_rw, &f, NULL) == 0,
           "bounds: exactly POLICY_MAX_ELEMENTS actions accepted");

        _cleanup_free_ char *many_stmts = repeat("{\"Effect\":\"Deny\",\"Action\":\"*\",\"Resource\":\"*\"},", 1001);
        many_stmts[strlen(many_stmts) - 1] = 0;
        free(doc);
        doc = NULL;
        findings_clear(&f);
        ok(asprintf_safe(&doc, "{\"Statement\":[%s]}", many_stmts) == 0 &&
                   policy_check_document(doc, strlen(doc), &ctx_rw, &f, NULL) == -E2BIG,
           "bounds: more than POLICY_MAX_STATEMENTS statements refused");

        _cleanup_free_ char *long_res = repeat("b", POLICY_MAX_ELEMENT + 1);
        free(doc);
        doc = NULL;
        ok(asprintf_safe(&doc, "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\",\"Resource\":\"%s\"}}",
                         long_res) == 0 &&
                   policy_check_document(doc, strlen(doc), &ctx_rw, &f, NULL) == -E2BIG,
           "bounds: a resource over POLICY_MAX_ELEMENT bytes refused");

        /* Findings are capped; the rest is counted. */
        _cleanup_free_ char *many_buckets = NULL;
        size_t at = 0, cap = 700 * 40;
        many_buckets = malloc(cap);
        for (unsigned i = 0; i < 700; i++)
                at += (size_t) snprintf(many_buckets + at, cap - at, "%s\"arn:aws:s3:::b%u\"", i ? "," : "", i);
        free(doc);
        doc = NULL;
        findings_clear(&f);
        ok(asprintf_safe(&doc, "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\",\"Resource\":[%s]}}",
                         many_buckets) == 0 &&
                   policy_check_document(doc, strlen(doc), &ctx_rw, &f, NULL) == 0 && f.n == FINDINGS_MAX &&
                   f.n_dropped == 700 - FINDINGS_MAX && findings_count(&f, FINDING_WARNING) == 700,
           "bounds: findings capped at FINDINGS_MAX, the rest counted");
        findings_clear(&f);

        /* Wildcard matching stays cheap on adversarial patterns. */
        _cleanup_free_ char *stars = repeat("*a", 1000), *slow = NULL;
        ok(asprintf_safe(&slow, "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:%s\",\"Resource\":\"arn:aws:s3:::%s\"}}",
                         stars, stars) == 0 &&
                   policy_check_document(slow, strlen(slow), &ctx_ro, &f, NULL) == 0,
           "bounds: a pattern of 1000 stars is judged");
        findings_clear(&f);
}

static void test_decode(void) {
        char *d = NULL;

        ok(policy_document_decode("%7B%22Statement%22%3A%5B%5D%7D", &d) == 0 && streq(d, "{\"Statement\":[]}"),
           "decode: URL-encoded");
        free(d);
        d = NULL;
        ok(policy_document_decode("%7b%22a%22%3a%22x+y%2Fz%22%7d", &d) == 0 && streq(d, "{\"a\":\"x+y/z\"}"),
           "decode: lower-case hex; '+' stays a plus (RFC 3986)");
        free(d);
        d = NULL;
        ok(policy_document_decode("{\"a\":\"100%25\"}", &d) == 0 && streq(d, "{\"a\":\"100%25\"}"),
           "decode: plain JSON is left alone");
        free(d);
        d = NULL;
        ok(policy_document_decode("%7B%2", &d) == -EBADMSG && !d, "decode: truncated escape refused");
        ok(policy_document_decode("%7B%zz%7D", &d) == -EBADMSG, "decode: bad hex refused");
        ok(policy_document_decode("%7B%00%7D", &d) == -EBADMSG, "decode: encoded NUL refused");
        ok(policy_document_decode("%", &d) == -EBADMSG, "decode: lone percent refused");
        _cleanup_free_ char *big = repeat("%20", POLICY_DOCUMENT_MAX + 1);
        ok(policy_document_decode(big, &d) == -E2BIG, "decode: over POLICY_DOCUMENT_MAX refused");
        _cleanup_free_ char *fits = repeat("%20", POLICY_DOCUMENT_MAX);
        ok(policy_document_decode(fits, &d) == 0 && strlen(d) == POLICY_DOCUMENT_MAX, "decode: exactly the limit");
        free(d);
        ok(policy_document_decode(NULL, &d) == -EINVAL, "decode: NULL");

        /* moto's form, end to end. */
        Findings f = {};
        d = NULL;
        ok(policy_document_decode("%7B%22Version%22%3A%20%222012-10-17%22%2C%20%22Statement%22%3A%20%7B%22Effect%22"
                                  "%3A%20%22Allow%22%2C%20%22Action%22%3A%20%22s3%3A%2A%22%2C%20%22Resource%22%3A"
                                  "%20%22%2A%22%7D%7D",
                                  &d) == 0 &&
                   policy_check_document(d, strlen(d), &ctx_rw, &f, NULL) == 0 && f.n == 2 &&
                   count_code(&f, FINDING_S3_ALL_ACTIONS) == 1 && count_code(&f, FINDING_RESOURCE_ALL) == 1,
           "decode: moto's encoded document, checked");
        free(d);
        findings_clear(&f);
}

static void test_keys(void) {
        const time_t now = 1800000000;
        const char *held[] = { "AKIAHELD", NULL };
        KeyContext kc = {
                .user = "app-bot",
                .max_age = 90 * USEC_PER_DAY,
                .now = now,
                .held = held,
                .n_held = 1,
                .check_held = true,
        };
        Findings f = {};

        KeyFacts fresh = { "AKIAHELD", true, now - 86400, now - 60 };
        ok(policy_check_keys(&fresh, 1, &kc, &f) == 0 && f.n == 0, "keys: one fresh used held key is clean");

        KeyFacts two[] = { fresh, { "AKIAOTHER", true, now - 3600, now - 60 } };
        ok(policy_check_keys(two, 2, &kc, &f) == 0 && f.n == 2 && count_code(&f, FINDING_KEYS_MULTIPLE_ACTIVE) == 1 &&
                   count_code(&f, FINDING_KEY_NOT_HELD) == 1 && strstr(f.items[0].detail, "AKIAHELD, AKIAOTHER"),
           "keys: a second Active key, not held");
        findings_clear(&f);

        KeyFacts inactive[] = { fresh, { "AKIAOLD", false, now - 200 * 86400, 0 } };
        ok(policy_check_keys(inactive, 2, &kc, &f) == 0 && f.n == 1 && f.items[0].code == FINDING_KEY_NOT_HELD &&
                   strstr(f.items[0].detail, "Inactive key AKIAOLD"),
           "keys: an old Inactive key is only reported when not held");
        findings_clear(&f);
        const char *both[] = { "AKIAHELD", "AKIAOLD" };
        kc.held = both;
        kc.n_held = 2;
        ok(policy_check_keys(inactive, 2, &kc, &f) == 0 && f.n == 0, "keys: the previous key in grace is fine");
        kc.held = held;
        kc.n_held = 1;

        KeyFacts old = { "AKIAHELD", true, now - 100 * 86400, now - 60 };
        ok(policy_check_keys(&old, 1, &kc, &f) == 0 && only(&f, FINDING_KEY_TOO_OLD) && f.n == 1 &&
                   strstr(f.items[0].detail, "14w 2d old (max_age 12w 6d)"),
           "keys: older than max_age");
        findings_clear(&f);

        KeyFacts never = { "AKIAHELD", true, now - 100 * 86400, 0 };
        ok(policy_check_keys(&never, 1, &kc, &f) == 0 && f.n == 2 && count_code(&f, FINDING_KEY_NEVER_USED) == 1 &&
                   count_code(&f, FINDING_KEY_TOO_OLD) == 1,
           "keys: never used for longer than max_age");
        findings_clear(&f);
        KeyFacts new_unused = { "AKIAHELD", true, now - 60, 0 };
        ok(policy_check_keys(&new_unused, 1, &kc, &f) == 0 && f.n == 0, "keys: a new key not used yet is fine");
        KeyFacts stale = { "AKIAHELD", true, now - 30 * 86400, now - 55 * 86400 };
        ok(policy_check_keys(&stale, 1, &kc, &f) == 0 && f.n == 0, "keys: used 55 days ago is within max_age");
        stale.last_used = now - 91 * 86400;
        ok(policy_check_keys(&stale, 1, &kc, &f) == 0 && only(&f, FINDING_KEY_UNUSED) &&
                   strstr(f.items[0].detail, "last used 13w ago"),
           "keys: unused for longer than max_age");
        findings_clear(&f);
        KeyFacts unknown = { "AKIAHELD", true, now - 30 * 86400, 0, .usage_unknown = true };
        kc.max_age = 7 * USEC_PER_DAY;
        ok(policy_check_keys(&unknown, 1, &kc, &f) == 0 && only(&f, FINDING_KEY_TOO_OLD),
           "keys: last use unknown (the lookup failed): no never-used claim");
        findings_clear(&f);
        kc.max_age = 90 * USEC_PER_DAY;
        KeyFacts future = { "AKIAHELD", true, now + 3600, now + 60 };
        ok(policy_check_keys(&future, 1, &kc, &f) == 0 && f.n == 0, "keys: dates in the future (clock skew) are fine");

        kc.check_held = false;
        ok(policy_check_keys(two, 2, &kc, &f) == 0 && only(&f, FINDING_KEYS_MULTIPLE_ACTIVE),
           "keys: no held check for users keyrotd does not manage");
        findings_clear(&f);
        kc.check_held = true;
        kc.rotation_in_progress = true;
        ok(policy_check_keys(two, 2, &kc, &f) == 0 && only(&f, FINDING_ROTATION_IN_PROGRESS) &&
                   f.items[0].severity == FINDING_INFO,
           "keys: during a rotation two keys and an unheld one are expected");
        findings_clear(&f);
        kc.rotation_in_progress = false;
        ok(policy_check_keys(NULL, 0, &kc, &f) == 0 && f.n == 0, "keys: none at all");
        ok(policy_check_keys(NULL, 1, &kc, &f) == -EINVAL, "keys: NULL with a count");
}

static void test_tables(void) {
        bool all = true;

        for (FindingCode c = 0; c < _FINDING_CODE_MAX; c++) {
                const char *s = finding_code_to_string(c);
                all = all && s && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == strlen(s);
                for (FindingCode d = 0; d < c; d++)
                        all = all && !streq(s, finding_code_to_string(d));
        }
        ok(all, "tables: every code has a unique lower-case name");
        ok(!finding_code_to_string(_FINDING_CODE_MAX) && !finding_severity_to_string(_FINDING_SEVERITY_MAX) &&
                   streq(finding_severity_to_string(FINDING_CRITICAL), "critical"),
           "tables: out of range is NULL");

        Findings f = {};
        ok(findings_add(&f, FINDING_KEY_TOO_OLD, "u\x01", "detail %d\n", 1) == 0 && f.n == 1 &&
                   streq(f.items[0].user, "u?") && streq(f.items[0].detail, "detail 1?"),
           "findings: user and detail sanitised");
        ok(findings_add(&f, FINDING_KEY_TOO_OLD, "u\x01", "detail %d\n", 1) == 0 && f.n == 1,
           "findings: duplicates dropped");
        ok(findings_add(&f, FINDING_KEY_TOO_OLD, NULL, "x") == 0 && f.n == 2 && !f.items[1].user,
           "findings: no user");
        findings_clear(&f);
        findings_clear(&f);
        ok(f.n == 0 && !f.items, "findings: cleared twice");
}

int main(void) {
        test_clean();
        test_actions();
        test_writes();
        test_resources();
        test_not();
        test_sid_and_sanitizing();
        test_malformed();
        test_bounds();
        test_decode();
        test_keys();
        test_tables();
        return tap_done();
}

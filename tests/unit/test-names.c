/* SPDX-License-Identifier: MIT */
/*
 * test-names.c — the name validators (aws/names.h): a table of good and bad
 * names for each kind, with the rule each bad one breaks.
 */
#include "aws/names.h"
#include "tap.h"

typedef struct NameCase {
        const char *name;
        const char *problem; /* NULL: valid; else a piece of the reason given */
} NameCase;

static void check_table(const char *kind, const char *(*problem)(const char *), bool (*valid)(const char *),
                        const NameCase *cases, size_t n) {
        for (size_t i = 0; i < n; i++) {
                const char *got = problem(cases[i].name);

                if (!cases[i].problem)
                        ok(!got && valid(cases[i].name), "%s '%s' valid%s%s", kind, tap_escape(cases[i].name),
                           got ? ": " : "", got ?: "");
                else
                        ok(got && strstr(got, cases[i].problem) && !valid(cases[i].name), "%s '%s' invalid: %s",
                           kind, tap_escape(cases[i].name), got ?: "(accepted)");
        }
}

#define C64 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static void test_iam_user_names(void) {
        static const NameCase cases[] = {
                { "backup-bot", NULL },
                { "A+b=c,d.e@f_g-h0", NULL }, /* every punctuation IAM allows */
                { "Upper", NULL },
                { "under_score", NULL },
                { "123", NULL },
                { "ab", NULL },
                { "a", NULL },
                { C64, NULL },
                { C64 "a", "1 to 64 characters" },
                { "", "1 to 64 characters" },
                { "a b", "letters, digits and +=,.@_-" },
                { "a/b", "letters, digits and +=,.@_-" },
                { "a:b", "letters, digits and +=,.@_-" },
                { "\xc3\xa4", "letters, digits and +=,.@_-" }, /* ä */
                { "a\nb", "letters, digits and +=,.@_-" },
        };

        check_table("user", iam_user_name_problem, iam_user_name_valid, cases, ELEMENTSOF(cases));
        ok(!iam_user_name_valid(NULL) && iam_user_name_problem(NULL), "user NULL invalid");
}

static void test_iam_role_names(void) {
        ok(iam_role_name_valid("ec2-role+a=b,c.d@e_f"), "role with IAM punctuation");
        ok(iam_role_name_valid(C64), "role of 64");
        ok(!iam_role_name_valid(C64 "a"), "role of 65 refused");
        ok(!iam_role_name_valid(""), "empty role refused");
        ok(!iam_role_name_valid("a/b"), "role with '/' refused (it goes into a URL path)");
        ok(!iam_role_name_valid(NULL), "NULL role refused");
}

static void test_bucket_names(void) {
        static const NameCase cases[] = {
                { "abc", NULL },
                { "backup-bucket", NULL },
                { "my.bucket.name", NULL },
                { "a1b", NULL },
                { "123abc", NULL },
                { "abc123", NULL },
                { "a-b-c", NULL },
                { "a--b", NULL },
                { "1.2.3.4a", NULL },
                { "xn-abc", NULL },
                { "s3alias", NULL },
                { "abc-s3aliasx", NULL },
                { "sthree", NULL },
                { "mrap", NULL },
                { "aaa", NULL },
                { &C64[1], NULL }, /* 63 */
                { C64, "3 to 63 characters" },
                { "ab", "3 to 63 characters" },
                { "", "3 to 63 characters" },
                { "Upper", "lowercase letters, digits" },
                { "under_score", "lowercase letters, digits" },
                { "a b", "lowercase letters, digits" },
                { "a/b", "lowercase letters, digits" },
                { "-start", "begin and end" },
                { "end-", "begin and end" },
                { ".start", "begin and end" },
                { "end.", "begin and end" },
                { "a..b", "\"..\"" },
                { "a.-b", "\".-\" or \"-.\"" },
                { "a-.b", "\".-\" or \"-.\"" },
                { "123", "digits and dots" },
                { "1234567", "digits and dots" },
                { "10.1", "digits and dots" },
                { "192.168.1.1", "digits and dots" },
                { "xn--abc", "xn--" },
                { "sthree-abc", "sthree-" },
                { "sthree-configurator", "sthree-" },
                { "amzn-s3-demo-bucket", "amzn-s3-demo-" },
                { "abc-s3alias", "-s3alias" },
                { "abc--ol-s3", "--ol-s3" },
                { "abc.mrap", ".mrap" },
                { "abc--x-s3", "--x-s3" },
                { "abc--table-s3", "--table-s3" },
        };

        check_table("bucket", s3_bucket_name_problem, s3_bucket_name_valid, cases, ELEMENTSOF(cases));
        ok(!s3_bucket_name_valid(NULL) && s3_bucket_name_problem(NULL), "bucket NULL invalid");
}

static void test_profile_names(void) {
        static const NameCase cases[] = {
                { "default", NULL },
                { "keyrotd", NULL },
                { "prod-EU_1", NULL },
                { "a.b+c/d@e:f%g", NULL }, /* the SDKs' identifier punctuation */
                { "Default", NULL },
                { "ab", NULL },
                { "a", NULL },
                { C64 C64, NULL }, /* 128 */
                { C64 C64 "a", "1 to 128 characters" },
                { "", "1 to 128 characters" },
                { "a]b", "letters, digits and _.+/@:%-" },
                { "a[b", "letters, digits and _.+/@:%-" },
                { "a b", "letters, digits and _.+/@:%-" },
                { " a", "letters, digits and _.+/@:%-" },
                { "a ", "letters, digits and _.+/@:%-" },
                { "a\nb", "letters, digits and _.+/@:%-" },
                { "a\tb", "letters, digits and _.+/@:%-" },
                { "a\x7f", "letters, digits and _.+/@:%-" },
                { "\"a\"", "letters, digits and _.+/@:%-" },
                { "a=b", "letters, digits and _.+/@:%-" },
                { "a,b", "letters, digits and _.+/@:%-" },
                { "DEFAULT", "DEFAULT" },
        };

        check_table("profile", aws_profile_name_problem, aws_profile_name_valid, cases, ELEMENTSOF(cases));
        ok(!aws_profile_name_valid(NULL) && aws_profile_name_problem(NULL), "profile NULL invalid");
}

int main(void) {
        test_iam_user_names();
        test_iam_role_names();
        test_bucket_names();
        test_profile_names();
        return tap_done();
}

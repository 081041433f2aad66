/* SPDX-License-Identifier: MIT */
#include "aws/names.h"

#include <string.h>

#include "basic/util.h"

static bool is_lower_or_digit(char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

const char *iam_user_name_problem(const char *s) {
        size_t n;

        if (!s)
                return "is missing";
        n = strlen(s);
        if (n < 1 || n > IAM_USER_NAME_MAX)
                return "must be 1 to 64 characters long";
        if (!in_charset(s, IAM_NAME_CHARSET))
                return "may contain only letters, digits and +=,.@_-";
        return NULL;
}

bool iam_user_name_valid(const char *s) {
        return !iam_user_name_problem(s);
}

bool iam_role_name_valid(const char *s) {
        size_t n = s ? strlen(s) : 0;

        return n >= 1 && n <= IAM_ROLE_NAME_MAX && in_charset(s, IAM_NAME_CHARSET);
}

/* Names S3 keeps for its own kinds of endpoint and alias. */
static const struct {
        const char *affix;
        bool prefix;
        const char *problem;
} s3_reserved[] = {
        { "xn--", true, "must not start with \"xn--\" (reserved by S3)" },
        { "sthree-", true, "must not start with \"sthree-\" (reserved by S3)" },
        { "amzn-s3-demo-", true, "must not start with \"amzn-s3-demo-\" (reserved by S3)" },
        { "-s3alias", false, "must not end with \"-s3alias\" (reserved for access point aliases)" },
        { "--ol-s3", false, "must not end with \"--ol-s3\" (reserved for Object Lambda access point aliases)" },
        { ".mrap", false, "must not end with \".mrap\" (reserved for Multi-Region Access Points)" },
        { "--x-s3", false, "must not end with \"--x-s3\" (reserved for directory buckets)" },
        { "--table-s3", false, "must not end with \"--table-s3\" (reserved for table buckets)" },
};

const char *s3_bucket_name_problem(const char *s) {
        bool digits_and_dots = true;
        size_t n;

        if (!s)
                return "is missing";
        n = strlen(s);

        /* S3's rules for general-purpose buckets. */
        if (n < S3_BUCKET_NAME_MIN || n > S3_BUCKET_NAME_MAX)
                return "must be 3 to 63 characters long";
        for (size_t i = 0; i < n; i++) {
                if (!is_lower_or_digit(s[i]) && s[i] != '.' && s[i] != '-')
                        return "may contain only lowercase letters, digits, '.' and '-'";
                if (s[i] != '.' && !(s[i] >= '0' && s[i] <= '9'))
                        digits_and_dots = false;
        }
        if (!is_lower_or_digit(s[0]) || !is_lower_or_digit(s[n - 1]))
                return "must begin and end with a lowercase letter or a digit";
        if (strstr(s, ".."))
                return "must not contain \"..\"";

        /*
         * Stricter than S3, which accepts these names today. A bucket is
         * reached at BUCKET.s3.REGION.amazonaws.com, where each part
         * between dots is a DNS label, and a label neither begins nor ends
         * with '-' (RFC 1123): "a.-b" can only be reached path-style, which
         * AWS is retiring, and SDKs that check DNS compatibility refuse it.
         */
        if (strstr(s, ".-") || strstr(s, "-."))
                return "must not contain \".-\" or \"-.\" (no part between dots may begin or end with '-')";

        /*
         * S3 refuses names "formatted as an IP address" without saying
         * which forms count. inet_aton(3), and the URL parsers that follow
         * it, read any string of digits and dots as an IPv4 address ("123"
         * is 0.0.0.123, "10.1" is 10.0.0.1): refusing all of them keeps
         * keyrotd from accepting a name that S3, or a tool on the way,
         * takes for an address. Nobody needs a bucket named like that.
         */
        if (digits_and_dots)
                return "must not consist of digits and dots only (it would read as an IP address)";

        for (size_t i = 0; i < ELEMENTSOF(s3_reserved); i++)
                if (s3_reserved[i].prefix ? startswith(s, s3_reserved[i].affix)
                                          : endswith(s, s3_reserved[i].affix))
                        return s3_reserved[i].problem;
        return NULL;
}

bool s3_bucket_name_valid(const char *s) {
        return !s3_bucket_name_problem(s);
}

/*
 * botocore (configparser) takes anything between '[' and the last ']' of
 * a line as the name; the SDKs that follow the shared SDK configuration
 * spec (Rust, Java v2, ...) ignore a profile whose name is not of
 * [A-Za-z0-9_.+/@:%-]. keyrotd writes names into "[NAME]" headers that
 * every one of them must find, so it takes that alphabet: no ']', blank,
 * quote or line break can reach a header. "DEFAULT" is configparser's
 * section of defaults for every other section, never a profile of its own.
 */
const char *aws_profile_name_problem(const char *s) {
        size_t n;

        if (!s)
                return "is missing";
        n = strlen(s);
        if (n < 1 || n > AWS_PROFILE_NAME_MAX)
                return "must be 1 to 128 characters long";
        if (!in_charset(s, ALPHANUMERICAL "_.+/@:%-"))
                return "may contain only letters, digits and _.+/@:%-";
        if (streq(s, "DEFAULT"))
                return "must not be \"DEFAULT\" (AWS tools read that section as defaults, not as a profile)";
        return NULL;
}

bool aws_profile_name_valid(const char *s) {
        return !aws_profile_name_problem(s);
}

/* SPDX-License-Identifier: MIT */
/*
 * test-xml.c — the IAM/S3 document parsers on real shapes (captured from
 * moto 5.2, and AWS-style: whole-second timestamps, pretty-printed) and on
 * hostile input, which must be refused with -EBADMSG and leave ret alone.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "aws/xml.h"
#include "basic/secret.h"
#include "basic/util.h"
#include "tap.h"

#define DOC(s) s, sizeof(s) - 1

#define IAM_NS "https://iam.amazonaws.com/doc/2010-05-08/"
#define S3_NS "http://s3.amazonaws.com/doc/2006-03-01/"

/* ---- fixtures: moto 5.2.1 (ids replaced by the documentation examples) ---- */

static const char moto_create_key[] =
        "<CreateAccessKeyResponse xmlns=\"" IAM_NS "\"><CreateAccessKeyResult><AccessKey>"
        "<UserName>backup-bot</UserName><AccessKeyId>AKIAIOSFODNN7EXAMPLE</AccessKeyId>"
        "<Status>Active</Status><SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY</SecretAccessKey>"
        "<CreateDate>2026-11-28T07:00:32.538809Z</CreateDate></AccessKey></CreateAccessKeyResult>"
        "<ResponseMetadata><RequestId>tDYuG6DD5rTgZyK8Xnv4rpxS4T00ZpICRz7HMuX6ItnWDomVdvDk</RequestId>"
        "</ResponseMetadata></CreateAccessKeyResponse>";

static const char moto_list_keys[] =
        "<ListAccessKeysResponse xmlns=\"" IAM_NS "\"><ListAccessKeysResult><AccessKeyMetadata>"
        "<member><UserName>backup-bot</UserName><AccessKeyId>AKIAIOSFODNN7EXAMPLE</AccessKeyId>"
        "<Status>Active</Status><CreateDate>2026-11-28T07:00:32.538809Z</CreateDate></member>"
        "<member><UserName>backup-bot</UserName><AccessKeyId>AKIAI44QH8DHBEXAMPLE</AccessKeyId>"
        "<Status>Inactive</Status><CreateDate>2026-11-28T07:00:32.572002Z</CreateDate></member>"
        "</AccessKeyMetadata></ListAccessKeysResult><ResponseMetadata>"
        "<RequestId>mWClWxOQEn8UxddjzPhX8tbCOUyeOKnQnkvcrNIUVer8eJVU0LlM</RequestId>"
        "</ResponseMetadata></ListAccessKeysResponse>";

static const char moto_update_key[] =
        "<UpdateAccessKeyResponse xmlns=\"" IAM_NS "\"><ResponseMetadata>"
        "<RequestId>0n8JXyJjS8TT4WsSOAw3gtOek0hkqHECRPV4x3e1VVBMmvl9Dbft</RequestId>"
        "</ResponseMetadata></UpdateAccessKeyResponse>";

static const char moto_delete_key[] =
        "<DeleteAccessKeyResponse xmlns=\"" IAM_NS "\"><ResponseMetadata>"
        "<RequestId>D3BJT2r501f4KQ2KEf5vRM15udU75zAh6hve0MfbL1WqTDIhp1c2</RequestId>"
        "</ResponseMetadata></DeleteAccessKeyResponse>";

static const char moto_put_policy[] =
        "<PutUserPolicyResponse xmlns=\"" IAM_NS "\"><ResponseMetadata>"
        "<RequestId>qo850aLPIPKvFG15OnhYcJE4UjhBI0287Ovm3yAzB5RQjd9ZN15u</RequestId>"
        "</ResponseMetadata></PutUserPolicyResponse>";

static const char moto_last_used_never[] =
        "<GetAccessKeyLastUsedResponse xmlns=\"" IAM_NS "\"><GetAccessKeyLastUsedResult>"
        "<UserName>backup-bot</UserName><AccessKeyLastUsed><ServiceName>N/A</ServiceName>"
        "<Region>N/A</Region></AccessKeyLastUsed></GetAccessKeyLastUsedResult><ResponseMetadata>"
        "<RequestId>6Ozm4ON9GnGGAFwoEFOVAnBT0JGKQzohyiFxez7EDnFYDZDpFlkR</RequestId>"
        "</ResponseMetadata></GetAccessKeyLastUsedResponse>";

static const char moto_last_used[] =
        "<GetAccessKeyLastUsedResponse xmlns=\"" IAM_NS "\"><GetAccessKeyLastUsedResult>"
        "<UserName>backup-bot</UserName><AccessKeyLastUsed>"
        "<LastUsedDate>2026-11-28T07:00:47.439882Z</LastUsedDate><ServiceName>iam</ServiceName>"
        "<Region>us-east-1</Region></AccessKeyLastUsed></GetAccessKeyLastUsedResult><ResponseMetadata>"
        "<RequestId>SgwBHwnnE8ni7nWdYF3behq43V7nVRbApt4W8Q01NBaWbHAIfpSi</RequestId>"
        "</ResponseMetadata></GetAccessKeyLastUsedResponse>";

static const char moto_create_user[] =
        "<CreateUserResponse xmlns=\"" IAM_NS "\"><CreateUserResult><User><Path>/</Path>"
        "<UserName>backup-bot</UserName><UserId>4ztfjcfejen2pkqgdukd</UserId>"
        "<Arn>arn:aws:iam::123456789012:user/backup-bot</Arn>"
        "<CreateDate>2026-11-28T07:00:32.468890Z</CreateDate></User></CreateUserResult>"
        "<ResponseMetadata><RequestId>Ki8M4okCOGovsAGQdd7n6ivlYTDRtvGsxn3NKADpl38SDZXGMLmb</RequestId>"
        "</ResponseMetadata></CreateUserResponse>";

static const char moto_get_user[] =
        "<GetUserResponse xmlns=\"" IAM_NS "\"><GetUserResult><User><Path>/</Path>"
        "<UserName>backup-bot</UserName><UserId>4ztfjcfejen2pkqgdukd</UserId>"
        "<Arn>arn:aws:iam::123456789012:user/backup-bot</Arn>"
        "<CreateDate>2026-11-28T07:00:32.468890Z</CreateDate></User></GetUserResult>"
        "<ResponseMetadata><RequestId>lFGKiavZPh1MdxJTrNBz5sS993Ys48tbvnJbe6qoKz8742YzI6Iw</RequestId>"
        "</ResponseMetadata></GetUserResponse>";

static const char moto_error_limit[] =
        "<ErrorResponse xmlns=\"" IAM_NS "\"><Error><Type>Sender</Type><Code>LimitExceeded</Code>"
        "<Message>Cannot exceed quota for AccessKeysPerUser: 2</Message>"
        "<message>Cannot exceed quota for AccessKeysPerUser: 2</message></Error>"
        "<RequestId>AniuHGXwjMpQHS6HIpTRo3dHwtqqJuMw3oe9YdUDZcXnble9bR9t</RequestId></ErrorResponse>";

/* moto's answer to a bad signature or unknown key (INITIAL_NO_AUTH_ACTION_COUNT). */
static const char moto_error_auth[] =
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
        "<ErrorResponse><Errors><Error><Code>InvalidClientTokenId</Code>"
        "<Message>The security token included in the request is invalid.</Message>"
        "<Type>Sender</Type></Error></Errors></ErrorResponse>";

static const char moto_s3_error[] =
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
        "<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message>"
        "<BucketName>nosuch-bucket</BucketName>"
        "<RequestId>F6RiM7IJT59KclmTXKVnEzntMs8fWQxLY3Ug3Mq1UDf1102yAg3j</RequestId>"
        "<HostId>9Gjjt1m+cjU4OPvX9O9/8RuvnG41MRb/18Oux2o5H5MY7ISNTlXN+Dz9IG62/ILVxhAGI0qyPfg=</HostId></Error>";

/* moto answers an unknown IAM action with Flask's HTML page. */
static const char moto_html_500[] =
        "<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n"
        "<h1>Internal Server Error</h1>\n<p>The server encountered an internal error.</p>\n";

static const char moto_s3_list[] =
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
        "<ListBucketResult xmlns=\"" S3_NS "\"><IsTruncated>false</IsTruncated>"
        "<Contents><Key>a/one.txt</Key><LastModified>2026-11-28T07:00:41.000Z</LastModified>"
        "<ETag>\"d41d8cd98f00b204e9800998ecf8427e\"</ETag><Size>0</Size><StorageClass>STANDARD</StorageClass></Contents>"
        "<Contents><Key>b&amp;two.txt</Key><LastModified>2026-11-28T07:00:41.000Z</LastModified>"
        "<ETag>\"d41d8cd98f00b204e9800998ecf8427e\"</ETag><Size>0</Size><StorageClass>STANDARD</StorageClass></Contents>"
        "<Contents><Key>c.txt</Key><LastModified>2026-11-28T07:00:41.000Z</LastModified>"
        "<ETag>\"d41d8cd98f00b204e9800998ecf8427e\"</ETag><Size>0</Size><StorageClass>STANDARD</StorageClass></Contents>"
        "<Name>backup-bucket</Name><Prefix/><MaxKeys>1000</MaxKeys><KeyCount>3</KeyCount></ListBucketResult>";

static const char moto_s3_list_truncated[] =
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
        "<ListBucketResult xmlns=\"" S3_NS "\"><IsTruncated>true</IsTruncated>"
        "<Contents><Key>a/one.txt</Key><LastModified>2026-11-28T07:00:41.000Z</LastModified>"
        "<ETag>\"d41d8cd98f00b204e9800998ecf8427e\"</ETag><Size>0</Size><StorageClass>STANDARD</StorageClass></Contents>"
        "<Name>backup-bucket</Name><Prefix/><MaxKeys>1</MaxKeys><KeyCount>1</KeyCount>"
        "<NextContinuationToken>ba198376e53817c8bc6f73ac50022a45</NextContinuationToken></ListBucketResult>";

static const char moto_s3_list_empty[] =
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
        "<ListBucketResult xmlns=\"" S3_NS "\"><IsTruncated>false</IsTruncated>"
        "<Name>empty-bucket</Name><Prefix/><MaxKeys>1</MaxKeys><KeyCount>0</KeyCount></ListBucketResult>";

/* ---- fixtures: AWS shapes (API reference examples, whole seconds) ---- */

static const char aws_create_key[] =
        "<CreateAccessKeyResponse xmlns=\"" IAM_NS "\">\n"
        "  <CreateAccessKeyResult>\n"
        "    <AccessKey>\n"
        "      <UserName>Bob</UserName>\n"
        "      <AccessKeyId>AKIAIOSFODNN7EXAMPLE</AccessKeyId>\n"
        "      <Status>Active</Status>\n"
        "      <SecretAccessKey>wJalrXUtnFEMI&#47;K7MDENG/bPxRfiCYEXAMPLEKEY</SecretAccessKey>\n"
        "      <CreateDate>2026-11-28T05:30:16Z</CreateDate>\n"
        "    </AccessKey>\n"
        "  </CreateAccessKeyResult>\n"
        "  <ResponseMetadata>\n"
        "    <RequestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</RequestId>\n"
        "  </ResponseMetadata>\n"
        "</CreateAccessKeyResponse>\n";

static const char aws_list_keys_truncated[] =
        "<ListAccessKeysResponse xmlns=\"" IAM_NS "\">\n"
        "  <ListAccessKeysResult>\n"
        "    <UserName>Bob</UserName>\n"
        "    <AccessKeyMetadata>\n"
        "      <member>\n"
        "        <UserName>Bob</UserName>\n"
        "        <AccessKeyId>AKIAIOSFODNN7EXAMPLE</AccessKeyId>\n"
        "        <Status>Active</Status>\n"
        "        <CreateDate>2026-01-02T03:04:05Z</CreateDate>\n"
        "      </member>\n"
        "    </AccessKeyMetadata>\n"
        "    <IsTruncated>true</IsTruncated>\n"
        "    <Marker>AAEAAZ8/c2VjcmV0K21hcmtlcg==</Marker>\n"
        "  </ListAccessKeysResult>\n"
        "  <ResponseMetadata>\n"
        "    <RequestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</RequestId>\n"
        "  </ResponseMetadata>\n"
        "</ListAccessKeysResponse>\n";

static const char aws_list_keys_last_page[] =
        "<ListAccessKeysResponse xmlns=\"" IAM_NS "\">\n"
        "  <ListAccessKeysResult>\n"
        "    <AccessKeyMetadata/>\n"
        "    <IsTruncated>false</IsTruncated>\n"
        "  </ListAccessKeysResult>\n"
        "  <ResponseMetadata><RequestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</RequestId></ResponseMetadata>\n"
        "</ListAccessKeysResponse>\n";

static const char aws_get_user[] =
        "<GetUserResponse xmlns=\"" IAM_NS "\">\n"
        "  <GetUserResult>\n"
        "    <User>\n"
        "      <UserId>AIDACKCEVSQ6C2EXAMPLE</UserId>\n"
        "      <Path>/division_abc/subdivision_xyz/</Path>\n"
        "      <UserName>Bob</UserName>\n"
        "      <Arn>arn:aws:iam::123456789012:user/division_abc/subdivision_xyz/Bob</Arn>\n"
        "      <CreateDate>2013-10-02T17:01:44Z</CreateDate>\n"
        "      <PasswordLastUsed>2014-10-10T14:37:51Z</PasswordLastUsed>\n"
        "      <Tags><member><Key>Dept</Key><Value>Accounting</Value></member></Tags>\n"
        "    </User>\n"
        "  </GetUserResult>\n"
        "  <ResponseMetadata><RequestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</RequestId></ResponseMetadata>\n"
        "</GetUserResponse>\n";

static const char aws_last_used[] =
        "<GetAccessKeyLastUsedResponse xmlns=\"" IAM_NS "\">\n"
        "  <GetAccessKeyLastUsedResult>\n"
        "    <AccessKeyLastUsed>\n"
        "      <Region>us-west-2</Region>\n"
        "      <LastUsedDate>2015-03-13T10:45:00Z</LastUsedDate>\n"
        "      <ServiceName>s3</ServiceName>\n"
        "    </AccessKeyLastUsed>\n"
        "    <UserName>bob</UserName>\n"
        "  </GetAccessKeyLastUsedResult>\n"
        "  <ResponseMetadata><RequestId>510a8a8b-c7b7-11e4-8a5f-EXAMPLE</RequestId></ResponseMetadata>\n"
        "</GetAccessKeyLastUsedResponse>\n";

static const char aws_error_throttling[] =
        "<ErrorResponse xmlns=\"" IAM_NS "\">\n"
        "  <Error>\n"
        "    <Type>Sender</Type>\n"
        "    <Code>Throttling</Code>\n"
        "    <Message>Rate exceeded</Message>\n"
        "  </Error>\n"
        "  <RequestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</RequestId>\n"
        "</ErrorResponse>\n";

static const char aws_s3_error[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<Error><Code>InvalidAccessKeyId</Code>"
        "<Message>The AWS Access Key Id you provided does not exist in our records.</Message>"
        "<AWSAccessKeyId>AKIAIOSFODNN7EXAMPLE</AWSAccessKeyId><RequestId>4442587FB7D0A2F9</RequestId>"
        "<HostId>Uuag1LuByRx9e6j5Onimru9pO4ZVKnJ2Qz7/C1NPcfTWAtRPfTaOFg==</HostId></Error>";

static const char aws_s3_list[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<ListBucketResult xmlns=\"" S3_NS "\">\n"
        "  <Name>backup-bucket</Name>\n"
        "  <Prefix></Prefix>\n"
        "  <KeyCount>1</KeyCount>\n"
        "  <MaxKeys>1</MaxKeys>\n"
        "  <IsTruncated>true</IsTruncated>\n"
        "  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>\n"
        "  <Contents>\n"
        "    <Key>ExampleObject.txt</Key>\n"
        "    <LastModified>2026-01-02T03:04:05.000Z</LastModified>\n"
        "    <ETag>\"599bab3ed2c697f1d26842727561fd94\"</ETag>\n"
        "    <Size>857</Size>\n"
        "    <StorageClass>STANDARD</StorageClass>\n"
        "  </Contents>\n"
        "</ListBucketResult>\n";

/* ---- helpers ---- */

static char *repeat(const char *s, size_t n) {
        size_t l = strlen(s);
        char *r = malloc(l * n + 1);

        if (!r)
                abort();
        for (size_t i = 0; i < n; i++)
                memcpy(r + i * l, s, l);
        r[l * n] = 0;
        return r;
}

static char *concat3(const char *a, const char *b, const char *c) {
        char *r;

        if (asprintf_safe(&r, "%s%s%s", a, b, c) < 0)
                abort();
        return r;
}

/* A well-formed error document of exactly len bytes. */
static char *padded(size_t len) {
        static const char head[] = "<Error><Code>X</Code>", tail[] = "</Error>";
        char *d = malloc(len);

        if (!d || len < sizeof(head) + sizeof(tail))
                abort();
        memcpy(d, head, sizeof(head) - 1);
        memset(d + sizeof(head) - 1, ' ', len - (sizeof(head) - 1) - (sizeof(tail) - 1));
        memcpy(d + len - (sizeof(tail) - 1), tail, sizeof(tail) - 1);
        return d;
}

static bool untouched(const void *p, size_t n) {
        const uint8_t *b = p;

        for (size_t i = 0; i < n; i++)
                if (b[i] != 0xA5)
                        return false;
        return true;
}

/* Every parser on one hostile document: all refuse, none writes. */
static void refused_by_all(const char *doc, size_t len, const char *name) {
        AwsError e;
        ListAccessKeysResult l;
        CreateAccessKeyResult c;
        AccessKeyLastUsed u;
        IamUser iu;
        ListObjectsResult o;
        IamNameList nl;
        ListAttachedPoliciesResult ap;
        GroupPolicyResult gp;
        IamPolicy pol;
        PolicyVersionResult pv;
        char rid[128];
        bool all = true;

        memset(&e, 0xA5, sizeof(e));
        memset(&l, 0xA5, sizeof(l));
        memset(&c, 0xA5, sizeof(c));
        memset(&u, 0xA5, sizeof(u));
        memset(&iu, 0xA5, sizeof(iu));
        memset(&o, 0xA5, sizeof(o));
        memset(rid, 0xA5, sizeof(rid));
        memset(&nl, 0xA5, sizeof(nl));
        memset(&ap, 0xA5, sizeof(ap));
        memset(&gp, 0xA5, sizeof(gp));
        memset(&pol, 0xA5, sizeof(pol));
        memset(&pv, 0xA5, sizeof(pv));

        all &= xml_parse_list_users(doc, len, &nl) == -EBADMSG && untouched(&nl, sizeof(nl));
        all &= xml_parse_list_user_policies(doc, len, &nl) == -EBADMSG && untouched(&nl, sizeof(nl));
        all &= xml_parse_list_group_policies(doc, len, &nl) == -EBADMSG && untouched(&nl, sizeof(nl));
        all &= xml_parse_list_groups_for_user(doc, len, &nl) == -EBADMSG && untouched(&nl, sizeof(nl));
        all &= xml_parse_list_attached_user_policies(doc, len, &ap) == -EBADMSG && untouched(&ap, sizeof(ap));
        all &= xml_parse_list_attached_group_policies(doc, len, &ap) == -EBADMSG && untouched(&ap, sizeof(ap));
        all &= xml_parse_group_policy(doc, len, &gp) == -EBADMSG && untouched(&gp, sizeof(gp));
        all &= xml_parse_policy(doc, len, &pol) == -EBADMSG && untouched(&pol, sizeof(pol));
        all &= xml_parse_policy_version(doc, len, &pv) == -EBADMSG && untouched(&pv, sizeof(pv));
        all &= xml_parse_error(doc, len, &e) == -EBADMSG && untouched(&e, sizeof(e));
        all &= xml_parse_list_access_keys(doc, len, &l) == -EBADMSG && untouched(&l, sizeof(l));
        all &= xml_parse_create_access_key(doc, len, &c) == -EBADMSG && untouched(&c, sizeof(c));
        all &= xml_parse_access_key_last_used(doc, len, &u) == -EBADMSG && untouched(&u, sizeof(u));
        all &= xml_parse_user(doc, len, "GetUserResponse", &iu) == -EBADMSG && untouched(&iu, sizeof(iu));
        all &= xml_parse_list_objects_v2(doc, len, &o) == -EBADMSG && untouched(&o, sizeof(o));
        all &= xml_parse_empty_response(doc, len, "UpdateAccessKeyResponse", rid) == -EBADMSG &&
               untouched(rid, sizeof(rid));
        ok(all, "hostile: %s refused by every parser, outputs untouched", name);
}

/* ---- tests ---- */

static void test_timestamps(void) {
        time_t t;

        ok(xml_parse_timestamp("2026-11-28T05:30:16Z", &t) == 0 && t == 1795843816, "timestamp: AWS whole seconds");
        ok(xml_parse_timestamp("2026-11-28T05:30:16.228986Z", &t) == 0 && t == 1795843816,
           "timestamp: moto microseconds");
        ok(xml_parse_timestamp("2026-11-28T05:30:16.000Z", &t) == 0 && t == 1795843816, "timestamp: S3 milliseconds");
        ok(xml_parse_timestamp("2026-11-28T05:30:16+00:00", &t) == 0 && t == 1795843816, "timestamp: +00:00");
        ok(xml_parse_timestamp("1970-01-01T00:00:00Z", &t) == 0 && t == 0, "timestamp: epoch");
        ok(xml_parse_timestamp("2024-02-29T23:59:59Z", &t) == 0 && t == 1709251199, "timestamp: leap day");

        static const char *const bad[] = {
                "2026-13-28T05:30:16Z",     /* month 13 */
                "2026-00-28T05:30:16Z",     /* month 0 */
                "2026-11-31T05:30:16Z",     /* 31 November */
                "2026-02-29T05:30:16Z",     /* not a leap year */
                "2026-11-28T24:00:00Z",     /* hour 24 */
                "2026-11-28T05:60:16Z",     /* minute 60 */
                "2026-11-28T05:30:60Z",     /* leap second */
                "2026-11-28T05:30:16Zjunk", /* trailing junk */
                "2026-11-28T05:30:16Z ",    /* trailing space */
                "2026-11-28T05:30:16",      /* missing Z */
                "2026-11-28T05:30:16z",     /* lower-case z */
                "2026-11-28 05:30:16Z",     /* space for T */
                "2026-11-28T05:30:16.Z",    /* empty fraction */
                "2026-11-28T05:30:16.1234567890Z", /* ten fraction digits */
                "2026-11-28T05:30:16+01:00",       /* not UTC */
                "2026-11-28T05:30:16-00:00",
                "2026-1-28T05:30:16Z",             /* short field */
                "+2026-11-28T05:30:16Z",
                "1969-12-31T23:59:59Z", /* before the epoch */
                "",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                t = 42;
                ok(xml_parse_timestamp(bad[i], &t) == -EINVAL && t == 42, "timestamp: refuses '%s'", bad[i]);
        }
}

static void test_key_status(void) {
        ok_eq_str(key_status_to_string(KEY_STATUS_ACTIVE), "Active", "status: Active to string");
        ok_eq_str(key_status_to_string(KEY_STATUS_INACTIVE), "Inactive", "status: Inactive to string");
        ok(key_status_to_string(_KEY_STATUS_MAX) == NULL && key_status_to_string(_KEY_STATUS_INVALID) == NULL,
           "status: out of range is NULL");
        ok(key_status_from_string("Active") == KEY_STATUS_ACTIVE &&
           key_status_from_string("Inactive") == KEY_STATUS_INACTIVE, "status: from string");
        ok(key_status_from_string("active") == _KEY_STATUS_INVALID && key_status_from_string("") == _KEY_STATUS_INVALID &&
           key_status_from_string(NULL) == _KEY_STATUS_INVALID, "status: anything else is invalid");
}

static void test_create_access_key(void) {
        CreateAccessKeyResult c = {};

        /* The transport hands us the body in secure memory: do the same. */
        _cleanup_secret_ Secret *body = secret_dup(moto_create_key, sizeof(moto_create_key) - 1);
        ok(body && xml_parse_create_access_key(body->data, body->len, &c) == 0, "create: moto document parses");
        ok_eq_str(c.meta.access_key_id, "AKIAIOSFODNN7EXAMPLE", "create: AccessKeyId");
        ok_eq_str(c.meta.user_name, "backup-bot", "create: UserName");
        ok(c.meta.status == KEY_STATUS_ACTIVE, "create: Status");
        ok(c.meta.create_date == 1795849232, "create: CreateDate with microseconds");
        ok_eq_str(secret_str(c.secret_access_key), "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "create: secret");
        ok(c.secret_access_key && c.secret_access_key->len == 40, "create: secret length");
        ok_eq_str(c.request_id, "tDYuG6DD5rTgZyK8Xnv4rpxS4T00ZpICRz7HMuX6ItnWDomVdvDk", "create: RequestId");
        create_access_key_result_done(&c);
        ok(c.secret_access_key == NULL, "create: done frees the secret");
        create_access_key_result_done(&c); /* twice is harmless */

        ok(xml_parse_create_access_key(DOC(aws_create_key), &c) == 0, "create: AWS document parses");
        ok_eq_str(secret_str(c.secret_access_key), "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                  "create: character reference in the secret decoded");
        ok(c.meta.create_date == 1795843816, "create: whole-second CreateDate");
        ok_eq_str(c.meta.user_name, "Bob", "create: AWS UserName");
        create_access_key_result_done(&c);

        /* Missing each required field in turn. */
        static const char *const missing[] = {
                "<CreateAccessKeyResponse><CreateAccessKeyResult><AccessKey><UserName>u</UserName>"
                "<AccessKeyId>AKIAIOSFODNN7EXAMPLE</AccessKeyId><Status>Active</Status>"
                "</AccessKey></CreateAccessKeyResult></CreateAccessKeyResponse>",
                "<CreateAccessKeyResponse><CreateAccessKeyResult><AccessKey><UserName>u</UserName>"
                "<Status>Active</Status><SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY</SecretAccessKey>"
                "</AccessKey></CreateAccessKeyResult></CreateAccessKeyResponse>",
                "<CreateAccessKeyResponse><CreateAccessKeyResult><AccessKey><UserName>u</UserName>"
                "<AccessKeyId>AKIAIOSFODNN7EXAMPLE</AccessKeyId><Status>Active</Status><SecretAccessKey/>"
                "</AccessKey></CreateAccessKeyResult></CreateAccessKeyResponse>",
                "<CreateAccessKeyResponse><CreateAccessKeyResult><AccessKey><UserName>u</UserName>"
                "<AccessKeyId>AKIAIOSFODNN7EXAMPLE</AccessKeyId><Status>Revoked</Status>"
                "<SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY</SecretAccessKey>"
                "</AccessKey></CreateAccessKeyResult></CreateAccessKeyResponse>",
        };
        for (size_t i = 0; i < ELEMENTSOF(missing); i++) {
                memset(&c, 0xA5, sizeof(c));
                ok(xml_parse_create_access_key(missing[i], strlen(missing[i]), &c) == -EBADMSG &&
                   untouched(&c, sizeof(c)), "create: missing/invalid required field %zu refused, ret untouched", i);
        }

        /* What would forge a line in a credentials file is refused. */
        static const char *const forged[] = {
                "<CreateAccessKeyResponse><CreateAccessKeyResult><AccessKey><UserName>u</UserName>"
                "<AccessKeyId>AKIAIOSFODNN7EXAMPLE</AccessKeyId><Status>Active</Status>"
                "<SecretAccessKey>wJalrXUtnFEMI/K7MDENG&#10;aws_session_token=x</SecretAccessKey>"
                "</AccessKey></CreateAccessKeyResult></CreateAccessKeyResponse>",
                "<CreateAccessKeyResponse><CreateAccessKeyResult><AccessKey><UserName>u</UserName>"
                "<AccessKeyId>AKIAIOSFODNN7EXAMPLE</AccessKeyId><Status>Active</Status>"
                "<SecretAccessKey> wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY</SecretAccessKey>"
                "</AccessKey></CreateAccessKeyResult></CreateAccessKeyResponse>",
                "<CreateAccessKeyResponse><CreateAccessKeyResult><AccessKey><UserName>u</UserName>"
                "<AccessKeyId>AKIAIOSFODNN7EXAMPLE&#10;x=y</AccessKeyId><Status>Active</Status>"
                "<SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY</SecretAccessKey>"
                "</AccessKey></CreateAccessKeyResult></CreateAccessKeyResponse>",
                "<CreateAccessKeyResponse><CreateAccessKeyResult><AccessKey><UserName>u v</UserName>"
                "<AccessKeyId>AKIAIOSFODNN7EXAMPLE</AccessKeyId><Status>Active</Status>"
                "<SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY</SecretAccessKey>"
                "</AccessKey></CreateAccessKeyResult></CreateAccessKeyResponse>",
                "<CreateAccessKeyResponse><CreateAccessKeyResult><AccessKey><UserName>u</UserName>"
                "<AccessKeyId>../AKIAIOSFODNN7EXAMPLE</AccessKeyId><Status>Active</Status>"
                "<SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY</SecretAccessKey>"
                "</AccessKey></CreateAccessKeyResult></CreateAccessKeyResponse>",
        };
        for (size_t i = 0; i < ELEMENTSOF(forged); i++) {
                memset(&c, 0xA5, sizeof(c));
                ok(xml_parse_create_access_key(forged[i], strlen(forged[i]), &c) == -EBADMSG &&
                   untouched(&c, sizeof(c)), "create: forged characters in id, name or secret refused (%zu)", i);
        }
        static const char name_chars[] =
                "<CreateAccessKeyResponse><CreateAccessKeyResult><AccessKey><UserName>svc+app=1,x.y@z-w_v</UserName>"
                "<AccessKeyId>AKIAIOSFODNN7EXAMPLE</AccessKeyId><Status>Active</Status>"
                "<SecretAccessKey>wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY=</SecretAccessKey>"
                "</AccessKey></CreateAccessKeyResult></CreateAccessKeyResponse>";
        ok(xml_parse_create_access_key(DOC(name_chars), &c) == 0 && streq(c.meta.user_name, "svc+app=1,x.y@z-w_v"),
           "create: every character IAM allows in a user name accepted");
        create_access_key_result_done(&c);

        /* CreateDate is optional: the secret is too precious to drop over it. */
        static const char no_date[] =
                "<CreateAccessKeyResponse><CreateAccessKeyResult><AccessKey><UserName>u</UserName>"
                "<AccessKeyId>AKIAIOSFODNN7EXAMPLE</AccessKeyId><Status>Active</Status>"
                "<SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY</SecretAccessKey>"
                "</AccessKey></CreateAccessKeyResult></CreateAccessKeyResponse>";
        ok(xml_parse_create_access_key(DOC(no_date), &c) == 0 && c.meta.create_date == 0 && c.request_id[0] == 0,
           "create: without CreateDate and RequestId");
        create_access_key_result_done(&c);

        /* A second secret: which one is real? Refuse. */
        static const char two_secrets[] =
                "<CreateAccessKeyResponse><CreateAccessKeyResult><AccessKey><UserName>u</UserName>"
                "<AccessKeyId>AKIAIOSFODNN7EXAMPLE</AccessKeyId><Status>Active</Status>"
                "<SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY</SecretAccessKey>"
                "<SecretAccessKey>attacker</SecretAccessKey>"
                "</AccessKey></CreateAccessKeyResult></CreateAccessKeyResponse>";
        memset(&c, 0xA5, sizeof(c));
        ok(xml_parse_create_access_key(DOC(two_secrets), &c) == -EBADMSG && untouched(&c, sizeof(c)),
           "create: duplicated SecretAccessKey refused");

        /* The secret outside AccessKey is not the secret. */
        static const char misplaced[] =
                "<CreateAccessKeyResponse><CreateAccessKeyResult><AccessKey><UserName>u</UserName>"
                "<AccessKeyId>AKIAIOSFODNN7EXAMPLE</AccessKeyId><Status>Active</Status></AccessKey>"
                "<SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY</SecretAccessKey>"
                "</CreateAccessKeyResult></CreateAccessKeyResponse>";
        ok(xml_parse_create_access_key(DOC(misplaced), &c) == -EBADMSG, "create: SecretAccessKey at the wrong path refused");

        /* 128 characters fit, 129 do not: never truncated. */
        _cleanup_free_ char *s128 = repeat("k", 128), *s129 = repeat("k", 129);
        _cleanup_free_ char *d128 = NULL, *d129 = NULL;
        ok(asprintf_safe(&d128, "<CreateAccessKeyResponse><CreateAccessKeyResult><AccessKey><UserName>u</UserName>"
                                "<AccessKeyId>AKIAIOSFODNN7EXAMPLE</AccessKeyId><Status>Active</Status>"
                                "<SecretAccessKey>%s</SecretAccessKey></AccessKey></CreateAccessKeyResult>"
                                "</CreateAccessKeyResponse>", s128) == 0 &&
           asprintf_safe(&d129, "<CreateAccessKeyResponse><CreateAccessKeyResult><AccessKey><UserName>u</UserName>"
                                "<AccessKeyId>AKIAIOSFODNN7EXAMPLE</AccessKeyId><Status>Active</Status>"
                                "<SecretAccessKey>%s</SecretAccessKey></AccessKey></CreateAccessKeyResult>"
                                "</CreateAccessKeyResponse>", s129) == 0, "create: build long-secret documents");
        ok(xml_parse_create_access_key(d128, strlen(d128), &c) == 0 && c.secret_access_key->len == 128,
           "create: 128-byte secret accepted");
        create_access_key_result_done(&c);
        ok(xml_parse_create_access_key(d129, strlen(d129), &c) == -EBADMSG, "create: 129-byte secret refused");
}

static void test_list_access_keys(void) {
        ListAccessKeysResult l = {};

        ok(xml_parse_list_access_keys(DOC(moto_list_keys), &l) == 0, "list keys: moto document parses");
        ok(l.n_keys == 2 && l.keys, "list keys: two members");
        if (l.n_keys == 2) {
                ok_eq_str(l.keys[0].access_key_id, "AKIAIOSFODNN7EXAMPLE", "list keys: first id");
                ok(l.keys[0].status == KEY_STATUS_ACTIVE && l.keys[1].status == KEY_STATUS_INACTIVE,
                   "list keys: statuses");
                ok_eq_str(l.keys[1].access_key_id, "AKIAI44QH8DHBEXAMPLE", "list keys: second id");
                ok_eq_str(l.keys[1].user_name, "backup-bot", "list keys: user name");
                ok(l.keys[0].create_date == 1795849232 && l.keys[1].create_date == 1795849232,
                   "list keys: create dates");
        }
        ok(!l.is_truncated && l.marker == NULL, "list keys: moto omits IsTruncated: not truncated");
        ok_eq_str(l.request_id, "mWClWxOQEn8UxddjzPhX8tbCOUyeOKnQnkvcrNIUVer8eJVU0LlM", "list keys: RequestId");
        list_access_keys_result_done(&l);
        ok(l.keys == NULL && l.n_keys == 0, "list keys: done resets");

        ok(xml_parse_list_access_keys(DOC(aws_list_keys_truncated), &l) == 0, "list keys: AWS truncated page parses");
        ok(l.is_truncated && l.n_keys == 1, "list keys: IsTruncated true, one member");
        ok_eq_str(l.marker, "AAEAAZ8/c2VjcmV0K21hcmtlcg==", "list keys: Marker");
        ok(l.n_keys == 1 && l.keys[0].create_date == 1767323045, "list keys: whole-second CreateDate");
        list_access_keys_result_done(&l);

        ok(xml_parse_list_access_keys(DOC(aws_list_keys_last_page), &l) == 0 && l.n_keys == 0 && l.keys == NULL &&
           !l.is_truncated && l.marker == NULL, "list keys: empty last page");
        list_access_keys_result_done(&l);

        static const char marker_not_truncated[] =
                "<ListAccessKeysResponse><ListAccessKeysResult><IsTruncated>false</IsTruncated>"
                "<Marker>stale</Marker></ListAccessKeysResult></ListAccessKeysResponse>";
        ok(xml_parse_list_access_keys(DOC(marker_not_truncated), &l) == 0 && l.marker == NULL,
           "list keys: a Marker on the last page is dropped");
        list_access_keys_result_done(&l);

        static const char *const bad[] = {
                /* truncated without a Marker: the rest is unreachable */
                "<ListAccessKeysResponse><ListAccessKeysResult><IsTruncated>true</IsTruncated>"
                "</ListAccessKeysResult></ListAccessKeysResponse>",
                /* a member without AccessKeyId */
                "<ListAccessKeysResponse><ListAccessKeysResult><AccessKeyMetadata><member>"
                "<UserName>u</UserName><Status>Active</Status><CreateDate>2026-01-02T03:04:05Z</CreateDate>"
                "</member></AccessKeyMetadata></ListAccessKeysResult></ListAccessKeysResponse>",
                /* a member without Status */
                "<ListAccessKeysResponse><ListAccessKeysResult><AccessKeyMetadata><member>"
                "<AccessKeyId>AKIAIOSFODNN7EXAMPLE</AccessKeyId><CreateDate>2026-01-02T03:04:05Z</CreateDate>"
                "</member></AccessKeyMetadata></ListAccessKeysResult></ListAccessKeysResponse>",
                /* a bad status */
                "<ListAccessKeysResponse><ListAccessKeysResult><AccessKeyMetadata><member>"
                "<AccessKeyId>AKIAIOSFODNN7EXAMPLE</AccessKeyId><Status>Expired</Status>"
                "<CreateDate>2026-01-02T03:04:05Z</CreateDate></member></AccessKeyMetadata>"
                "</ListAccessKeysResult></ListAccessKeysResponse>",
                /* a bad date */
                "<ListAccessKeysResponse><ListAccessKeysResult><AccessKeyMetadata><member>"
                "<AccessKeyId>AKIAIOSFODNN7EXAMPLE</AccessKeyId><Status>Active</Status>"
                "<CreateDate>2026-13-02T03:04:05Z</CreateDate></member></AccessKeyMetadata>"
                "</ListAccessKeysResult></ListAccessKeysResponse>",
                /* IsTruncated not a boolean */
                "<ListAccessKeysResponse><ListAccessKeysResult><IsTruncated>yes</IsTruncated>"
                "<Marker>m</Marker></ListAccessKeysResult></ListAccessKeysResponse>",
                /* an id twice in one member */
                "<ListAccessKeysResponse><ListAccessKeysResult><AccessKeyMetadata><member>"
                "<AccessKeyId>AKIAIOSFODNN7EXAMPLE</AccessKeyId><AccessKeyId>AKIAI44QH8DHBEXAMPLE</AccessKeyId>"
                "<Status>Active</Status><CreateDate>2026-01-02T03:04:05Z</CreateDate></member>"
                "</AccessKeyMetadata></ListAccessKeysResult></ListAccessKeysResponse>",
                /* markup inside a value */
                "<ListAccessKeysResponse><ListAccessKeysResult><AccessKeyMetadata><member>"
                "<AccessKeyId>AKIA<b/>IOSFODNN7EXAMPLE</AccessKeyId><Status>Active</Status>"
                "<CreateDate>2026-01-02T03:04:05Z</CreateDate></member>"
                "</AccessKeyMetadata></ListAccessKeysResult></ListAccessKeysResponse>",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                memset(&l, 0xA5, sizeof(l));
                ok(xml_parse_list_access_keys(bad[i], strlen(bad[i]), &l) == -EBADMSG && untouched(&l, sizeof(l)),
                   "list keys: invalid document %zu refused, ret untouched", i);
        }

        /* A member injected outside AccessKeyMetadata is not a key. */
        static const char injected[] =
                "<ListAccessKeysResponse><ListAccessKeysResult><AccessKeyMetadata/>"
                "<member><AccessKeyId>AKIAEVILEVILEVILEVIL</AccessKeyId><Status>Active</Status>"
                "<CreateDate>2026-01-02T03:04:05Z</CreateDate></member>"
                "<AccessKeyId>AKIAEVILEVILEVILEVIL</AccessKeyId>"
                "</ListAccessKeysResult>"
                "<Other><AccessKeyMetadata><member><AccessKeyId>AKIAEVILEVILEVILEVIL</AccessKeyId>"
                "<Status>Active</Status><CreateDate>2026-01-02T03:04:05Z</CreateDate></member>"
                "</AccessKeyMetadata></Other></ListAccessKeysResponse>";
        ok(xml_parse_list_access_keys(DOC(injected), &l) == 0 && l.n_keys == 0 && l.keys == NULL,
           "list keys: members at the wrong path ignored");
        list_access_keys_result_done(&l);

        /* An element from another namespace is not the IAM element. */
        static const char foreign_ns[] =
                "<ListAccessKeysResponse xmlns=\"" IAM_NS "\"><ListAccessKeysResult><AccessKeyMetadata>"
                "<member><AccessKeyId xmlns=\"urn:evil\">AKIAEVILEVILEVILEVIL</AccessKeyId>"
                "<AccessKeyId>AKIAIOSFODNN7EXAMPLE</AccessKeyId><Status>Active</Status>"
                "<CreateDate>2026-01-02T03:04:05Z</CreateDate></member></AccessKeyMetadata>"
                "</ListAccessKeysResult></ListAccessKeysResponse>";
        ok(xml_parse_list_access_keys(DOC(foreign_ns), &l) == 0 && l.n_keys == 1 &&
           streq(l.keys[0].access_key_id, "AKIAIOSFODNN7EXAMPLE"), "list keys: foreign-namespace element ignored");
        list_access_keys_result_done(&l);

        /* 128-character key id fits its buffer exactly, 129 does not. */
        _cleanup_free_ char *id128 = repeat("A", 128), *id129 = repeat("A", 129);
        _cleanup_free_ char *d128 = NULL, *d129 = NULL;
#define LONG_ID_DOC                                                                                 \
        "<ListAccessKeysResponse><ListAccessKeysResult><AccessKeyMetadata><member>"                 \
        "<AccessKeyId>%s</AccessKeyId><Status>Active</Status>"                                      \
        "<CreateDate>2026-01-02T03:04:05Z</CreateDate></member></AccessKeyMetadata>"                \
        "</ListAccessKeysResult></ListAccessKeysResponse>"
        ok(asprintf_safe(&d128, LONG_ID_DOC, id128) == 0 && asprintf_safe(&d129, LONG_ID_DOC, id129) == 0,
           "list keys: build long ids");
        ok(xml_parse_list_access_keys(d128, strlen(d128), &l) == 0 && strlen(l.keys[0].access_key_id) == 128,
           "list keys: 128-byte id accepted");
        list_access_keys_result_done(&l);
        memset(&l, 0xA5, sizeof(l));
        ok(xml_parse_list_access_keys(d129, strlen(d129), &l) == -EBADMSG && untouched(&l, sizeof(l)),
           "hostile: oversized field refused, not truncated");
}

static void test_empty_responses(void) {
        char rid[128];

        ok(xml_parse_empty_response(DOC(moto_update_key), "UpdateAccessKeyResponse", rid) == 0, "empty: UpdateAccessKey");
        ok_eq_str(rid, "0n8JXyJjS8TT4WsSOAw3gtOek0hkqHECRPV4x3e1VVBMmvl9Dbft", "empty: UpdateAccessKey RequestId");
        ok(xml_parse_empty_response(DOC(moto_delete_key), "DeleteAccessKeyResponse", rid) == 0 &&
           streq(rid, "D3BJT2r501f4KQ2KEf5vRM15udU75zAh6hve0MfbL1WqTDIhp1c2"), "empty: DeleteAccessKey");
        ok(xml_parse_empty_response(DOC(moto_put_policy), "PutUserPolicyResponse", rid) == 0 &&
           streq(rid, "qo850aLPIPKvFG15OnhYcJE4UjhBI0287Ovm3yAzB5RQjd9ZN15u"), "empty: PutUserPolicy");

        memset(rid, 0xA5, sizeof(rid));
        ok(xml_parse_empty_response(DOC(moto_update_key), "DeleteAccessKeyResponse", rid) == -EBADMSG &&
           untouched(rid, sizeof(rid)), "empty: wrong root refused, RequestId untouched");
        ok(xml_parse_empty_response(DOC(moto_error_limit), "DeleteAccessKeyResponse", rid) == -EBADMSG,
           "empty: an error document is not a success");
        ok(xml_parse_empty_response(DOC(moto_update_key), NULL, rid) == -EINVAL, "empty: NULL root is -EINVAL");
}

static void test_last_used(void) {
        AccessKeyLastUsed u;

        ok(xml_parse_access_key_last_used(DOC(moto_last_used_never), &u) == 0, "last used: never-used key parses");
        ok(u.last_used_date == 0 && streq(u.service_name, "N/A") && streq(u.region, "N/A"),
           "last used: never: no date, N/A");
        ok_eq_str(u.user_name, "backup-bot", "last used: UserName");

        ok(xml_parse_access_key_last_used(DOC(moto_last_used), &u) == 0 && u.last_used_date == 1795849247 &&
           streq(u.service_name, "iam") && streq(u.region, "us-east-1"), "last used: moto used key");
        ok_eq_str(u.request_id, "SgwBHwnnE8ni7nWdYF3behq43V7nVRbApt4W8Q01NBaWbHAIfpSi", "last used: RequestId");

        ok(xml_parse_access_key_last_used(DOC(aws_last_used), &u) == 0 && u.last_used_date == 1426243500 &&
           streq(u.service_name, "s3") && streq(u.region, "us-west-2") && streq(u.user_name, "bob"),
           "last used: AWS document, fields in any order");

        static const char no_service[] =
                "<GetAccessKeyLastUsedResponse><GetAccessKeyLastUsedResult><AccessKeyLastUsed>"
                "<Region>N/A</Region></AccessKeyLastUsed></GetAccessKeyLastUsedResult></GetAccessKeyLastUsedResponse>";
        memset(&u, 0xA5, sizeof(u));
        ok(xml_parse_access_key_last_used(DOC(no_service), &u) == -EBADMSG && untouched(&u, sizeof(u)),
           "last used: missing ServiceName refused");
}

static void test_user(void) {
        IamUser u;

        ok(xml_parse_user(DOC(moto_get_user), "GetUserResponse", &u) == 0, "user: moto GetUser parses");
        ok_eq_str(u.user_name, "backup-bot", "user: UserName");
        ok_eq_str(u.user_id, "4ztfjcfejen2pkqgdukd", "user: UserId");
        ok_eq_str(u.arn, "arn:aws:iam::123456789012:user/backup-bot", "user: Arn");
        ok_eq_str(u.path, "/", "user: Path");
        ok(u.create_date == 1795849232, "user: CreateDate");

        ok(xml_parse_user(DOC(moto_create_user), "CreateUserResponse", &u) == 0 &&
           streq(u.request_id, "Ki8M4okCOGovsAGQdd7n6ivlYTDRtvGsxn3NKADpl38SDZXGMLmb"), "user: moto CreateUser");

        ok(xml_parse_user(DOC(aws_get_user), "GetUserResponse", &u) == 0 && streq(u.user_name, "Bob") &&
           streq(u.path, "/division_abc/subdivision_xyz/") && u.create_date == 1380733304,
           "user: AWS GetUser with tags and PasswordLastUsed");

        memset(&u, 0xA5, sizeof(u));
        ok(xml_parse_user(DOC(moto_create_user), "GetUserResponse", &u) == -EBADMSG && untouched(&u, sizeof(u)),
           "user: wrong root refused");
        ok(xml_parse_user(DOC(moto_get_user), "GetUser", &u) == -EINVAL, "user: root must name a response");

        static const char no_arn[] =
                "<GetUserResponse><GetUserResult><User><Path>/</Path><UserName>u</UserName><UserId>x</UserId>"
                "<CreateDate>2026-01-02T03:04:05Z</CreateDate></User></GetUserResult></GetUserResponse>";
        ok(xml_parse_user(DOC(no_arn), "GetUserResponse", &u) == -EBADMSG && untouched(&u, sizeof(u)),
           "user: missing Arn refused");

        /* The Result element of another action is not ours. */
        static const char other_result[] =
                "<GetUserResponse><CreateUserResult><User><Path>/</Path><UserName>u</UserName><UserId>x</UserId>"
                "<Arn>arn:aws:iam::123456789012:user/u</Arn><CreateDate>2026-01-02T03:04:05Z</CreateDate>"
                "</User></CreateUserResult></GetUserResponse>";
        ok(xml_parse_user(DOC(other_result), "GetUserResponse", &u) == -EBADMSG, "user: fields under another Result refused");
}

static void test_user_tags(void) {
        ListUserTagsResult l;

        static const char two[] =
                "<ListUserTagsResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><ListUserTagsResult>"
                "<IsTruncated>false</IsTruncated><Tags>"
                "<member><Key>managed-by</Key><Value>keyrotd</Value></member>"
                "<member><Key>team</Key><Value></Value></member>"
                "</Tags></ListUserTagsResult><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata>"
                "</ListUserTagsResponse>";
        ok(xml_parse_list_user_tags(DOC(two), &l) == 0 && l.n_tags == 2, "tags: two members");
        ok(l.n_tags == 2 && streq(l.tags[0].key, "managed-by") && streq(l.tags[0].value, "keyrotd") &&
           streq(l.tags[1].key, "team") && streq(l.tags[1].value, "") && streq(l.request_id, "r-1"),
           "tags: keys, values (empty allowed), request id");
        list_user_tags_result_done(&l);

        static const char none[] =
                "<ListUserTagsResponse><ListUserTagsResult><Tags/><IsTruncated>false</IsTruncated>"
                "</ListUserTagsResult></ListUserTagsResponse>";
        ok(xml_parse_list_user_tags(DOC(none), &l) == 0 && l.n_tags == 0 && !l.tags, "tags: none");
        list_user_tags_result_done(&l);

        static const char no_key[] =
                "<ListUserTagsResponse><ListUserTagsResult><Tags><member><Value>v</Value></member></Tags>"
                "</ListUserTagsResult></ListUserTagsResponse>";
        memset(&l, 0xA5, sizeof(l));
        ok(xml_parse_list_user_tags(DOC(no_key), &l) == -EBADMSG && untouched(&l, sizeof(l)),
           "tags: member without Key refused");
        ok(xml_parse_list_user_tags(DOC(moto_get_user), &l) == -EBADMSG, "tags: wrong root refused");
}

static void test_user_policy(void) {
        UserPolicyResult p;

        static const char doc[] =
                "<GetUserPolicyResponse><GetUserPolicyResult><UserName>app-bot</UserName>"
                "<PolicyName>keyrotd-s3</PolicyName>"
                "<PolicyDocument>%7B%22Version%22%3A%222012-10-17%22%7D</PolicyDocument>"
                "</GetUserPolicyResult><ResponseMetadata><RequestId>r-2</RequestId></ResponseMetadata>"
                "</GetUserPolicyResponse>";
        ok(xml_parse_user_policy(DOC(doc), &p) == 0, "policy: parses");
        ok_eq_str(p.user_name, "app-bot", "policy: UserName");
        ok_eq_str(p.policy_name, "keyrotd-s3", "policy: PolicyName");
        ok_eq_str(p.document, "%7B%22Version%22%3A%222012-10-17%22%7D", "policy: document as sent");
        user_policy_result_done(&p);

        static const char no_doc[] =
                "<GetUserPolicyResponse><GetUserPolicyResult><UserName>app-bot</UserName>"
                "<PolicyName>keyrotd-s3</PolicyName></GetUserPolicyResult></GetUserPolicyResponse>";
        memset(&p, 0xA5, sizeof(p));
        ok(xml_parse_user_policy(DOC(no_doc), &p) == -EBADMSG && untouched(&p, sizeof(p)),
           "policy: missing PolicyDocument refused");
        static const char bad_user[] =
                "<GetUserPolicyResponse><GetUserPolicyResult><UserName>a b</UserName><PolicyName>x</PolicyName>"
                "<PolicyDocument>{}</PolicyDocument></GetUserPolicyResult></GetUserPolicyResponse>";
        ok(xml_parse_user_policy(DOC(bad_user), &p) == -EBADMSG && untouched(&p, sizeof(p)),
           "policy: user name outside IAM's alphabet refused");
}

/* ---- the audit's documents (moto 5.2.1 shapes) ---- */

#define RID "<ResponseMetadata><RequestId>r-9</RequestId></ResponseMetadata>"

static void test_user_policy_long(void) {
        UserPolicyResult p;
        _cleanup_free_ char *body = repeat("%20", 10000), *doc = NULL, *over = NULL,
                            *too_long = repeat("x", XML_POLICY_MAX + 1);

        /* A URL-encoded policy of a few thousand characters is ordinary. */
        ok(asprintf_safe(&doc,
                         "<GetUserPolicyResponse><GetUserPolicyResult><UserName>u</UserName><PolicyName>p</PolicyName>"
                         "<PolicyDocument>%%7B%s%%7D</PolicyDocument></GetUserPolicyResult></GetUserPolicyResponse>",
                         body) == 0 &&
                   xml_parse_user_policy(doc, strlen(doc), &p) == 0 && strlen(p.document) == 30006,
           "policy: a 30006-byte document (beyond any other leaf's bound) accepted whole");
        user_policy_result_done(&p);
        ok(asprintf_safe(&over,
                         "<GetUserPolicyResponse><GetUserPolicyResult><UserName>u</UserName><PolicyName>p</PolicyName>"
                         "<PolicyDocument>%s</PolicyDocument></GetUserPolicyResult></GetUserPolicyResponse>",
                         too_long) == 0,
           "policy: build an oversized one");
        memset(&p, 0xA5, sizeof(p));
        ok(xml_parse_user_policy(over, strlen(over), &p) == -EBADMSG && untouched(&p, sizeof(p)),
           "policy: a document over XML_POLICY_MAX refused");
}

static void test_name_lists(void) {
        IamNameList l;

        static const char users[] =
                "<ListUsersResponse xmlns=\"" IAM_NS "\"><ListUsersResult><Users><member><Path>/</Path>"
                "<UserName>u1</UserName><UserId>jdr9hz6d4w66etgqmn8w</UserId>"
                "<Arn>arn:aws:iam::123456789012:user/u1</Arn><CreateDate>2026-11-28T09:43:41.495766Z</CreateDate>"
                "</member><member><Path>/</Path><UserName>app.bot@x</UserName><UserId>x</UserId>"
                "<Arn>arn:aws:iam::123456789012:user/app.bot@x</Arn><CreateDate>2026-11-28T09:43:41Z</CreateDate>"
                "</member></Users><IsTruncated>false</IsTruncated></ListUsersResult>" RID "</ListUsersResponse>";
        ok(xml_parse_list_users(DOC(users), &l) == 0 && l.n_names == 2 && streq(l.names[0].name, "u1") &&
                   streq(l.names[1].name, "app.bot@x") && !l.is_truncated && !l.marker && streq(l.request_id, "r-9"),
           "users: moto's ListUsers");
        iam_name_list_done(&l);

        static const char users_page[] =
                "<ListUsersResponse><ListUsersResult><Users><member><UserName>u1</UserName></member></Users>"
                "<IsTruncated>true</IsTruncated><Marker>m-2</Marker></ListUsersResult></ListUsersResponse>";
        ok(xml_parse_list_users(DOC(users_page), &l) == 0 && l.n_names == 1 && l.is_truncated &&
                   streq(l.marker, "m-2"),
           "users: a truncated page carries its marker");
        iam_name_list_done(&l);

        static const char users_no_marker[] =
                "<ListUsersResponse><ListUsersResult><Users><member><UserName>u1</UserName></member></Users>"
                "<IsTruncated>true</IsTruncated></ListUsersResult></ListUsersResponse>";
        memset(&l, 0xA5, sizeof(l));
        ok(xml_parse_list_users(DOC(users_no_marker), &l) == -EBADMSG && untouched(&l, sizeof(l)),
           "users: truncated without a marker refused");
        static const char users_bad[] =
                "<ListUsersResponse><ListUsersResult><Users><member><UserName>u 1</UserName></member></Users>"
                "</ListUsersResult></ListUsersResponse>";
        ok(xml_parse_list_users(DOC(users_bad), &l) == -EBADMSG && untouched(&l, sizeof(l)),
           "users: a name outside IAM's alphabet refused");
        _cleanup_free_ char *long_name = repeat("u", AWS_USER_NAME_MAX + 1), *users_long = NULL;
        ok(asprintf_safe(&users_long, "<ListUsersResponse><ListUsersResult><Users><member><UserName>%s</UserName>"
                                      "</member></Users></ListUsersResult></ListUsersResponse>", long_name) == 0 &&
                   xml_parse_list_users(users_long, strlen(users_long), &l) == -EBADMSG,
           "users: a 65-character user name refused");
        static const char users_no_name[] =
                "<ListUsersResponse><ListUsersResult><Users><member><Path>/</Path></member></Users>"
                "</ListUsersResult></ListUsersResponse>";
        ok(xml_parse_list_users(DOC(users_no_name), &l) == -EBADMSG && untouched(&l, sizeof(l)),
           "users: a member without UserName refused");

        static const char policies[] =
                "<ListUserPoliciesResponse xmlns=\"" IAM_NS "\"><ListUserPoliciesResult><PolicyNames>"
                "<member>p1</member><member>keyrotd-s3</member></PolicyNames><IsTruncated>false</IsTruncated>"
                "</ListUserPoliciesResult>" RID "</ListUserPoliciesResponse>";
        ok(xml_parse_list_user_policies(DOC(policies), &l) == 0 && l.n_names == 2 && streq(l.names[0].name, "p1") &&
                   streq(l.names[1].name, "keyrotd-s3") && streq(l.request_id, "r-9"),
           "user policies: plain-value members");
        iam_name_list_done(&l);
        static const char no_policies[] =
                "<ListUserPoliciesResponse><ListUserPoliciesResult><PolicyNames/><IsTruncated>false</IsTruncated>"
                "</ListUserPoliciesResult></ListUserPoliciesResponse>";
        ok(xml_parse_list_user_policies(DOC(no_policies), &l) == 0 && l.n_names == 0 && !l.names,
           "user policies: none");
        iam_name_list_done(&l);
        static const char empty_member[] =
                "<ListUserPoliciesResponse><ListUserPoliciesResult><PolicyNames><member></member></PolicyNames>"
                "</ListUserPoliciesResult></ListUserPoliciesResponse>";
        memset(&l, 0xA5, sizeof(l));
        ok(xml_parse_list_user_policies(DOC(empty_member), &l) == -EBADMSG && untouched(&l, sizeof(l)),
           "user policies: an empty member refused");
        static const char nested_member[] =
                "<ListUserPoliciesResponse><ListUserPoliciesResult><PolicyNames><member>p<b>x</b></member>"
                "</PolicyNames></ListUserPoliciesResult></ListUserPoliciesResponse>";
        ok(xml_parse_list_user_policies(DOC(nested_member), &l) == -EBADMSG && untouched(&l, sizeof(l)),
           "user policies: markup inside a member refused");
        static const char bad_name[] =
                "<ListUserPoliciesResponse><ListUserPoliciesResult><PolicyNames><member>a\nb</member>"
                "</PolicyNames></ListUserPoliciesResult></ListUserPoliciesResponse>";
        ok(xml_parse_list_user_policies(DOC(bad_name), &l) == -EBADMSG && untouched(&l, sizeof(l)),
           "user policies: a newline in a name refused");
        ok(xml_parse_list_group_policies(DOC(policies), &l) == -EBADMSG, "user policies: not a group's answer");

        static const char group_policies[] =
                "<ListGroupPoliciesResponse xmlns=\"" IAM_NS "\"><ListGroupPoliciesResult><PolicyNames>"
                "<member>gp</member></PolicyNames></ListGroupPoliciesResult>" RID "</ListGroupPoliciesResponse>";
        ok(xml_parse_list_group_policies(DOC(group_policies), &l) == 0 && l.n_names == 1 &&
                   streq(l.names[0].name, "gp") && !l.is_truncated,
           "group policies: moto omits IsTruncated");
        iam_name_list_done(&l);

        static const char groups[] =
                "<ListGroupsForUserResponse xmlns=\"" IAM_NS "\"><ListGroupsForUserResult><Groups><member>"
                "<Path>/</Path><GroupName>g1</GroupName><GroupId>w5wu08lefx05x62uasuq</GroupId>"
                "<Arn>arn:aws:iam::123456789012:group/g1</Arn><CreateDate>2026-11-28T09:43:41.515794Z</CreateDate>"
                "</member></Groups><IsTruncated>false</IsTruncated></ListGroupsForUserResult>" RID
                "</ListGroupsForUserResponse>";
        ok(xml_parse_list_groups_for_user(DOC(groups), &l) == 0 && l.n_names == 1 && streq(l.names[0].name, "g1"),
           "groups: moto's ListGroupsForUser");
        iam_name_list_done(&l);
        _cleanup_free_ char *group_128 = repeat("g", 128), *group_129 = repeat("g", 129), *d1 = NULL, *d2 = NULL;
        ok(asprintf_safe(&d1, "<ListGroupsForUserResponse><ListGroupsForUserResult><Groups><member><GroupName>%s"
                              "</GroupName></member></Groups></ListGroupsForUserResult></ListGroupsForUserResponse>",
                         group_128) == 0 &&
                   asprintf_safe(&d2, "<ListGroupsForUserResponse><ListGroupsForUserResult><Groups><member><GroupName>%s"
                                      "</GroupName></member></Groups></ListGroupsForUserResult></ListGroupsForUserResponse>",
                                 group_129) == 0,
           "groups: build long names");
        ok(xml_parse_list_groups_for_user(d1, strlen(d1), &l) == 0 && strlen(l.names[0].name) == 128,
           "groups: a 128-character name accepted");
        iam_name_list_done(&l);
        ok(xml_parse_list_groups_for_user(d2, strlen(d2), &l) == -EBADMSG, "groups: a 129-character name refused");
}

static void test_attached(void) {
        ListAttachedPoliciesResult a;

        static const char user_doc[] =
                "<ListAttachedUserPoliciesResponse xmlns=\"" IAM_NS "\"><ListAttachedUserPoliciesResult>"
                "<AttachedPolicies><member><PolicyName>mp</PolicyName>"
                "<PolicyArn>arn:aws:iam::123456789012:policy/mp</PolicyArn></member><member>"
                "<PolicyName>AmazonS3FullAccess</PolicyName><PolicyArn>arn:aws:iam::aws:policy/AmazonS3FullAccess"
                "</PolicyArn></member></AttachedPolicies><IsTruncated>false</IsTruncated>"
                "</ListAttachedUserPoliciesResult>" RID "</ListAttachedUserPoliciesResponse>";
        ok(xml_parse_list_attached_user_policies(DOC(user_doc), &a) == 0 && a.n_policies == 2 &&
                   streq(a.policies[0].policy_name, "mp") &&
                   streq(a.policies[1].policy_arn, "arn:aws:iam::aws:policy/AmazonS3FullAccess") &&
                   streq(a.request_id, "r-9"),
           "attached: moto's ListAttachedUserPolicies");
        list_attached_policies_result_done(&a);
        ok(xml_parse_list_attached_group_policies(DOC(user_doc), &a) == -EBADMSG, "attached: not a group's answer");

        static const char group_doc[] =
                "<ListAttachedGroupPoliciesResponse><ListAttachedGroupPoliciesResult><AttachedPolicies/>"
                "<IsTruncated>true</IsTruncated><Marker>next</Marker></ListAttachedGroupPoliciesResult>"
                "</ListAttachedGroupPoliciesResponse>";
        ok(xml_parse_list_attached_group_policies(DOC(group_doc), &a) == 0 && a.n_policies == 0 && !a.policies &&
                   a.is_truncated && streq(a.marker, "next"),
           "attached: an empty truncated page");
        list_attached_policies_result_done(&a);

        static const char no_arn[] =
                "<ListAttachedUserPoliciesResponse><ListAttachedUserPoliciesResult><AttachedPolicies><member>"
                "<PolicyName>mp</PolicyName></member></AttachedPolicies></ListAttachedUserPoliciesResult>"
                "</ListAttachedUserPoliciesResponse>";
        memset(&a, 0xA5, sizeof(a));
        ok(xml_parse_list_attached_user_policies(DOC(no_arn), &a) == -EBADMSG && untouched(&a, sizeof(a)),
           "attached: a member without PolicyArn refused");
        static const char bad_arn[] =
                "<ListAttachedUserPoliciesResponse><ListAttachedUserPoliciesResult><AttachedPolicies><member>"
                "<PolicyArn>arn:aws:iam::1:policy/a b</PolicyArn></member><member><PolicyArn>x</PolicyArn></member>"
                "</AttachedPolicies></ListAttachedUserPoliciesResult></ListAttachedUserPoliciesResponse>";
        ok(xml_parse_list_attached_user_policies(DOC(bad_arn), &a) == -EBADMSG && untouched(&a, sizeof(a)),
           "attached: an ARN with a space refused, nothing leaks");
        static const char not_arn[] =
                "<ListAttachedUserPoliciesResponse><ListAttachedUserPoliciesResult><AttachedPolicies><member>"
                "<PolicyArn>policy/x</PolicyArn></member></AttachedPolicies></ListAttachedUserPoliciesResult>"
                "</ListAttachedUserPoliciesResponse>";
        ok(xml_parse_list_attached_user_policies(DOC(not_arn), &a) == -EBADMSG && untouched(&a, sizeof(a)),
           "attached: a PolicyArn that is no ARN refused");
}

static void test_group_and_managed_policies(void) {
        GroupPolicyResult g;
        IamPolicy p;
        PolicyVersionResult v;

        static const char group_policy[] =
                "<GetGroupPolicyResponse xmlns=\"" IAM_NS "\"><GetGroupPolicyResult><GroupName>g1</GroupName>"
                "<PolicyName>gp</PolicyName><PolicyDocument>%7B%22Version%22%3A%20%222012-10-17%22%7D"
                "</PolicyDocument></GetGroupPolicyResult>" RID "</GetGroupPolicyResponse>";
        ok(xml_parse_group_policy(DOC(group_policy), &g) == 0 && streq(g.group_name, "g1") &&
                   streq(g.policy_name, "gp") && streq(g.document, "%7B%22Version%22%3A%20%222012-10-17%22%7D") &&
                   streq(g.request_id, "r-9"),
           "group policy: moto's GetGroupPolicy");
        group_policy_result_done(&g);
        static const char group_no_doc[] =
                "<GetGroupPolicyResponse><GetGroupPolicyResult><GroupName>g1</GroupName><PolicyName>gp</PolicyName>"
                "<PolicyDocument></PolicyDocument></GetGroupPolicyResult></GetGroupPolicyResponse>";
        memset(&g, 0xA5, sizeof(g));
        ok(xml_parse_group_policy(DOC(group_no_doc), &g) == -EBADMSG && untouched(&g, sizeof(g)),
           "group policy: an empty document refused");

        static const char policy[] =
                "<GetPolicyResponse xmlns=\"" IAM_NS "\"><GetPolicyResult><Policy><PolicyName>mp</PolicyName>"
                "<PolicyId>AZ5QUESK62RS9ILYY22WN</PolicyId><Arn>arn:aws:iam::123456789012:policy/mp</Arn>"
                "<Path>/</Path><DefaultVersionId>v1</DefaultVersionId><AttachmentCount>2</AttachmentCount>"
                "<IsAttachable>true</IsAttachable><CreateDate>2026-11-28T09:43:41.541408Z</CreateDate>"
                "<UpdateDate>2026-11-28T09:43:41.541412Z</UpdateDate><Tags/></Policy></GetPolicyResult>" RID
                "</GetPolicyResponse>";
        ok(xml_parse_policy(DOC(policy), &p) == 0 && streq(p.policy_name, "mp") && streq(p.default_version_id, "v1"),
           "managed policy: moto's GetPolicy");
        static const char policy_bad_version[] =
                "<GetPolicyResponse><GetPolicyResult><Policy><PolicyName>mp</PolicyName>"
                "<DefaultVersionId>v1&amp;x=1</DefaultVersionId></Policy></GetPolicyResult></GetPolicyResponse>";
        memset(&p, 0xA5, sizeof(p));
        ok(xml_parse_policy(DOC(policy_bad_version), &p) == -EBADMSG && untouched(&p, sizeof(p)),
           "managed policy: a version id that would smuggle a parameter refused");
        static const char policy_no_version[] =
                "<GetPolicyResponse><GetPolicyResult><Policy><PolicyName>mp</PolicyName></Policy>"
                "</GetPolicyResult></GetPolicyResponse>";
        ok(xml_parse_policy(DOC(policy_no_version), &p) == -EBADMSG && untouched(&p, sizeof(p)),
           "managed policy: no DefaultVersionId refused");

        static const char version[] =
                "<GetPolicyVersionResponse xmlns=\"" IAM_NS "\"><GetPolicyVersionResult><PolicyVersion>"
                "<Document>{\"Version\": \"2012-10-17\", \"Statement\": [{\"Effect\": \"Allow\", "
                "\"NotAction\": \"iam:*\", \"Resource\": \"*\"}]}</Document><VersionId>v1</VersionId>"
                "<IsDefaultVersion>true</IsDefaultVersion><CreateDate>2026-11-28T09:43:41.541395Z</CreateDate>"
                "</PolicyVersion></GetPolicyVersionResult>" RID "</GetPolicyVersionResponse>";
        ok(xml_parse_policy_version(DOC(version), &v) == 0 && v.is_default && streq(v.version_id, "v1") &&
                   startswith(v.document, "{\"Version\": \"2012-10-17\"") && strstr(v.document, "NotAction"),
           "policy version: moto sends the document as plain JSON");
        policy_version_result_done(&v);
        static const char version_no_doc[] =
                "<GetPolicyVersionResponse><GetPolicyVersionResult><PolicyVersion><VersionId>v1</VersionId>"
                "</PolicyVersion></GetPolicyVersionResult></GetPolicyVersionResponse>";
        memset(&v, 0xA5, sizeof(v));
        ok(xml_parse_policy_version(DOC(version_no_doc), &v) == -EBADMSG && untouched(&v, sizeof(v)),
           "policy version: no Document refused");
        static const char version_two_docs[] =
                "<GetPolicyVersionResponse><GetPolicyVersionResult><PolicyVersion><Document>{}</Document>"
                "<Document>{}</Document><VersionId>v1</VersionId></PolicyVersion></GetPolicyVersionResult>"
                "</GetPolicyVersionResponse>";
        ok(xml_parse_policy_version(DOC(version_two_docs), &v) == -EBADMSG && untouched(&v, sizeof(v)),
           "policy version: two Documents refused, the first not leaked");
}

static void test_list_objects(void) {
        ListObjectsResult o;

        ok(xml_parse_list_objects_v2(DOC(moto_s3_list), &o) == 0, "s3 list: moto document parses");
        ok(o.key_count == 3 && !o.is_truncated && o.next_continuation_token == NULL, "s3 list: KeyCount, not truncated");
        ok(o.keys && o.keys[0] && o.keys[1] && o.keys[2] && !o.keys[3], "s3 list: three keys, NULL-terminated");
        if (o.keys && o.keys[0] && o.keys[1] && o.keys[2]) {
                ok_eq_str(o.keys[0], "a/one.txt", "s3 list: first key");
                ok_eq_str(o.keys[1], "b&two.txt", "s3 list: &amp; decoded");
                ok_eq_str(o.keys[2], "c.txt", "s3 list: third key");
        }
        list_objects_result_done(&o);

        ok(xml_parse_list_objects_v2(DOC(moto_s3_list_truncated), &o) == 0 && o.is_truncated && o.key_count == 1,
           "s3 list: moto truncated page");
        ok_eq_str(o.next_continuation_token, "ba198376e53817c8bc6f73ac50022a45", "s3 list: NextContinuationToken");
        list_objects_result_done(&o);

        ok(xml_parse_list_objects_v2(DOC(moto_s3_list_empty), &o) == 0 && o.key_count == 0 && o.keys == NULL,
           "s3 list: empty bucket, keys NULL");
        list_objects_result_done(&o);

        ok(xml_parse_list_objects_v2(DOC(aws_s3_list), &o) == 0 && o.is_truncated && o.keys && streq(o.keys[0], "ExampleObject.txt") &&
           !o.keys[1] && streq(o.next_continuation_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM="),
           "s3 list: AWS document");
        list_objects_result_done(&o);

        static const char *const bad[] = {
                "<ListBucketResult><IsTruncated>true</IsTruncated><KeyCount>0</KeyCount></ListBucketResult>",
                "<ListBucketResult><IsTruncated>false</IsTruncated><KeyCount>1</KeyCount>"
                "<Contents><Size>3</Size></Contents></ListBucketResult>",
                "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>",
                "<ListBucketResult><IsTruncated>false</IsTruncated><KeyCount>-1</KeyCount></ListBucketResult>",
                "<ListBucketResult><IsTruncated>false</IsTruncated><KeyCount>4294967296</KeyCount></ListBucketResult>",
                "<ListBucketResult><IsTruncated>false</IsTruncated><KeyCount> 1</KeyCount></ListBucketResult>",
                "<ListBucketResult><IsTruncated>false</IsTruncated><KeyCount>1</KeyCount>"
                "<Contents><Key>a</Key><Key>b</Key></Contents></ListBucketResult>",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                memset(&o, 0xA5, sizeof(o));
                ok(xml_parse_list_objects_v2(bad[i], strlen(bad[i]), &o) == -EBADMSG && untouched(&o, sizeof(o)),
                   "s3 list: invalid document %zu refused, ret untouched", i);
        }

        /* Items beyond XML_MAX_ITEMS: refused; at the limit: accepted. */
        _cleanup_free_ char *items = repeat("<Contents><Key>k</Key></Contents>", XML_MAX_ITEMS);
        _cleanup_free_ char *at_limit = concat3("<ListBucketResult><IsTruncated>false</IsTruncated><KeyCount>10000</KeyCount>",
                                                items, "</ListBucketResult>");
        _cleanup_free_ char *over = concat3("<ListBucketResult><IsTruncated>false</IsTruncated><KeyCount>10000</KeyCount>"
                                            "<Contents><Key>k</Key></Contents>",
                                            items, "</ListBucketResult>");
        ok(xml_parse_list_objects_v2(at_limit, strlen(at_limit), &o) == 0 && o.keys && o.keys[XML_MAX_ITEMS - 1] &&
           !o.keys[XML_MAX_ITEMS], "s3 list: %u items accepted", XML_MAX_ITEMS);
        list_objects_result_done(&o);
        memset(&o, 0xA5, sizeof(o));
        ok(xml_parse_list_objects_v2(over, strlen(over), &o) == -EBADMSG && untouched(&o, sizeof(o)),
           "hostile: more than XML_MAX_ITEMS items refused");
}

static void test_errors(void) {
        AwsError e;

        ok(xml_parse_error(DOC(moto_error_limit), &e) == 0, "error: moto IAM error parses");
        ok_eq_str(e.type, "Sender", "error: Type");
        ok_eq_str(e.code, "LimitExceeded", "error: Code");
        ok_eq_str(e.message, "Cannot exceed quota for AccessKeysPerUser: 2", "error: Message");
        ok_eq_str(e.request_id, "AniuHGXwjMpQHS6HIpTRo3dHwtqqJuMw3oe9YdUDZcXnble9bR9t", "error: RequestId");

        ok(xml_parse_error(DOC(moto_error_auth), &e) == 0 && streq(e.code, "InvalidClientTokenId") &&
           streq(e.type, "Sender") && e.request_id[0] == 0, "error: moto signature error (Errors/Error)");

        ok(xml_parse_error(DOC(moto_s3_error), &e) == 0 && streq(e.code, "NoSuchBucket") && e.type[0] == 0 &&
           streq(e.message, "The specified bucket does not exist") &&
           streq(e.request_id, "F6RiM7IJT59KclmTXKVnEzntMs8fWQxLY3Ug3Mq1UDf1102yAg3j"), "error: moto S3 error");

        ok(xml_parse_error(DOC(aws_error_throttling), &e) == 0 && streq(e.code, "Throttling") &&
           streq(e.message, "Rate exceeded"), "error: AWS IAM Throttling");
        ok(xml_parse_error(DOC(aws_s3_error), &e) == 0 && streq(e.code, "InvalidAccessKeyId") &&
           streq(e.request_id, "4442587FB7D0A2F9"), "error: AWS S3 InvalidAccessKeyId");

        memset(&e, 0xA5, sizeof(e));
        ok(xml_parse_error(DOC(moto_html_500), &e) == -EBADMSG && untouched(&e, sizeof(e)),
           "error: an HTML body is not an AWS error");
        ok(xml_parse_error(DOC("{\"__type\":\"Throttling\"}"), &e) == -EBADMSG, "error: a JSON body is not an AWS error");
        ok(xml_parse_error(DOC(moto_update_key), &e) == -EBADMSG, "error: a success document is not an error");
        ok(xml_parse_error(DOC("<Error><Message>no code</Message></Error>"), &e) == -EBADMSG,
           "error: an error without Code refused");
        ok(xml_parse_error(DOC("<ErrorResponse><Error><Code>A</Code></Error><Errors><Error><Code>B</Code>"
                               "</Error></Errors></ErrorResponse>"), &e) == -EBADMSG,
           "error: two codes refused");
        ok(xml_parse_error(DOC("<ErrorResponse><Code>Injected</Code></ErrorResponse>"), &e) == -EBADMSG,
           "error: Code at the wrong path is not the code");

        /* A long message is cut at a UTF-8 boundary; a long code is refused. */
        _cleanup_free_ char *pad = repeat("x", 510), *many = repeat("\xc3\xa9", 600), *code = repeat("C", 128);
        _cleanup_free_ char *d1 = NULL, *d2 = NULL, *d3 = NULL;
        ok(asprintf_safe(&d1, "<Error><Code>X</Code><Message>%s\xc3\xa9tail</Message></Error>", pad) == 0 &&
           asprintf_safe(&d2, "<Error><Code>X</Code><Message>%s</Message></Error>", many) == 0 &&
           asprintf_safe(&d3, "<Error><Code>%s</Code></Error>", code) == 0, "error: build long documents");
        ok(xml_parse_error(d1, strlen(d1), &e) == 0 && strlen(e.message) == 510 && streq(e.message, pad),
           "error: message truncated before a split character");
        ok(xml_parse_error(d2, strlen(d2), &e) == 0 && strlen(e.message) == 510 &&
           (unsigned char) e.message[508] == 0xc3 && (unsigned char) e.message[509] == 0xa9,
           "error: message of multi-byte characters truncated whole");
        memset(&e, 0xA5, sizeof(e));
        ok(xml_parse_error(d3, strlen(d3), &e) == -EBADMSG && untouched(&e, sizeof(e)), "error: 128-byte Code refused");
}

static void test_hostile(void) {
        static const char billion_laughs[] =
                "<?xml version=\"1.0\"?>\n"
                "<!DOCTYPE lolz [\n"
                " <!ENTITY lol \"lol\">\n"
                " <!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
                " <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n"
                " <!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">\n"
                " <!ENTITY lol5 \"&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;\">\n"
                " <!ENTITY lol6 \"&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;\">\n"
                " <!ENTITY lol7 \"&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;\">\n"
                " <!ENTITY lol8 \"&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;\">\n"
                " <!ENTITY lol9 \"&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;\">\n"
                "]>\n"
                "<Error><Code>&lol9;</Code></Error>";
        refused_by_all(DOC(billion_laughs), "billion laughs");

        static const char external[] =
                "<?xml version=\"1.0\"?>\n"
                "<!DOCTYPE Error [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\n"
                "<Error><Code>&xxe;</Code></Error>";
        refused_by_all(DOC(external), "external entity");

        static const char parameter[] =
                "<?xml version=\"1.0\"?>\n"
                "<!DOCTYPE Error [<!ENTITY % p SYSTEM \"http://127.0.0.1:1/x.dtd\"> %p;]>\n"
                "<Error><Code>X</Code></Error>";
        refused_by_all(DOC(parameter), "external parameter entity");

        static const char external_dtd[] =
                "<!DOCTYPE Error SYSTEM \"http://127.0.0.1:1/x.dtd\"><Error><Code>X</Code></Error>";
        refused_by_all(DOC(external_dtd), "external DTD");

        refused_by_all(DOC("<Error><Code>&undefined;</Code></Error>"), "undefined entity");

        /* Depth: the root plus 31 levels is the limit. */
        _cleanup_free_ char *open31 = repeat("<d>", 30), *close31 = repeat("</d>", 30);
        _cleanup_free_ char *open32 = repeat("<d>", 31), *close32 = repeat("</d>", 31);
        _cleanup_free_ char *deep_ok = NULL, *deep = NULL;
        ok(asprintf_safe(&deep_ok, "<Error><Code>X</Code>%s<e/>%s</Error>", open31, close31) == 0 &&
           asprintf_safe(&deep, "<Error><Code>X</Code>%s<e/>%s</Error>", open32, close32) == 0, "hostile: build deep");
        AwsError e;
        ok(xml_parse_error(deep_ok, strlen(deep_ok), &e) == 0, "hostile: nesting of exactly XML_MAX_DEPTH accepted");
        refused_by_all(deep, strlen(deep), "nesting deeper than XML_MAX_DEPTH");
        _cleanup_free_ char *very_open = repeat("<d>", 100000), *very_deep = concat3("<Error>", very_open, "");
        refused_by_all(very_deep, strlen(very_deep), "100000 open elements");

        /* Size: well-formed either way, refused one byte over the limit. */
        _cleanup_free_ char *at_limit = padded(XML_MAX_DOCUMENT), *over = padded(XML_MAX_DOCUMENT + 1);
        ok(xml_parse_error(at_limit, XML_MAX_DOCUMENT, &e) == 0, "hostile: a document of exactly XML_MAX_DOCUMENT accepted");
        refused_by_all(over, XML_MAX_DOCUMENT + 1, "document over XML_MAX_DOCUMENT");

        /* A long name for an unknown element. */
        _cleanup_free_ char *name = repeat("n", 200), *long_name = NULL;
        ok(asprintf_safe(&long_name, "<Error><Code>X</Code><%s/></Error>", name) == 0, "hostile: build long name");
        refused_by_all(long_name, strlen(long_name), "element name over 128 bytes");

        refused_by_all(DOC("<NotAnAwsDocument><Code>X</Code></NotAnAwsDocument>"), "wrong root");
        refused_by_all(moto_create_key, sizeof(moto_create_key) / 2, "truncated document");
        refused_by_all(DOC(""), "empty document");
        refused_by_all(DOC("   \n"), "whitespace only");
        refused_by_all(DOC("<Error><Code>X</Code></Error><Error><Code>Y</Code></Error>"), "two roots");
        refused_by_all(DOC("<Error><Code>X</Code></Error>trailing"), "junk after the root");
        refused_by_all(DOC("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><Error><Code>caf\xe9</Code></Error>"),
                       "Latin-1 document");
        refused_by_all(DOC("<Error><Code>\xc3\x28</Code></Error>"), "invalid UTF-8");
        refused_by_all(DOC("<Error><Code>\xed\xa0\x80</Code></Error>"), "UTF-8 surrogate");
        refused_by_all(DOC("\xff\xfe<\0E\0r\0r\0o\0r\0/\0>\0"), "UTF-16 document");
        refused_by_all(DOC("<Error><Code>X\0Y</Code></Error>"), "NUL byte");
        refused_by_all(DOC("<Error><Code>&#0;</Code></Error>"), "NUL character reference");

        uint8_t garbage[4096];
        uint32_t seed = 0x2545F491;
        for (size_t i = 0; i < sizeof(garbage); i++) {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                garbage[i] = (uint8_t) seed;
        }
        refused_by_all((const char *) garbage, sizeof(garbage), "binary garbage");
        garbage[0] = '<';
        refused_by_all((const char *) garbage, sizeof(garbage), "binary garbage after '<'");

        /* Processing instructions, comments and CDATA are harmless. */
        static const char decorated[] =
                "<?xml version=\"1.0\"?><!-- c --><?pi x?><Error><Code><![CDATA[Thr]]>ottling</Code></Error>";
        ok(xml_parse_error(DOC(decorated), &e) == 0 && streq(e.code, "Throttling"),
           "hostile: comments, PIs and CDATA tolerated");
        ok(xml_parse_error(NULL, 0, &e) == -EBADMSG && xml_parse_error(NULL, 5, &e) == -EINVAL &&
           xml_parse_error(DOC(moto_s3_error), NULL) == -EINVAL, "hostile: NULL arguments");
}

int main(void) {
        ok(secret_init() == 0, "libsodium initialises");
        test_timestamps();
        test_key_status();
        test_create_access_key();
        test_list_access_keys();
        test_empty_responses();
        test_last_used();
        test_user();
        test_user_tags();
        test_user_policy();
        test_user_policy_long();
        test_name_lists();
        test_attached();
        test_group_and_managed_policies();
        test_list_objects();
        test_errors();
        test_hostile();
        return tap_done();
}

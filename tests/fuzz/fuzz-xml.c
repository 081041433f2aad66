/* SPDX-License-Identifier: MIT */
/*
 * fuzz-xml.c — the IAM/S3 document parsers (aws/xml.h). The first byte
 * picks the parser (its value modulo the number of parsers, see parsers[]
 * below), the rest is the document. Each parser must either refuse it or
 * return a result whose invariants hold; either way nothing may leak
 * (LeakSanitizer; secure memory is counted, see secure-count.c) or touch
 * memory it does not own.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "aws/xml.h"
#include "basic/secret.h"
#include "basic/util.h"
#include "fuzz-check.h"

static void check_string(const char *s, size_t size) {
        check(memchr(s, 0, size) != NULL);
}

static void check_result(int r) {
        check(r == 0 || r == -EBADMSG);
}

static void fuzz_error(const char *doc, size_t size) {
        AwsError e;
        int r = xml_parse_error(doc, size, &e);

        check_result(r);
        if (r == 0) {
                check_string(e.type, sizeof(e.type));
                check_string(e.code, sizeof(e.code));
                check_string(e.message, sizeof(e.message));
                check_string(e.request_id, sizeof(e.request_id));
                check(e.code[0] != 0);
        }
}

static void fuzz_list_access_keys(const char *doc, size_t size) {
        ListAccessKeysResult l = {};
        int r = xml_parse_list_access_keys(doc, size, &l);

        check_result(r);
        if (r == 0) {
                check((l.n_keys == 0) == (l.keys == NULL));
                check(l.n_keys <= XML_MAX_ITEMS);
                check(l.is_truncated == (l.marker != NULL));
                for (size_t i = 0; i < l.n_keys; i++) {
                        check(l.keys[i].access_key_id[0] != 0);
                        check(key_status_to_string(l.keys[i].status) != NULL);
                }
        }
        list_access_keys_result_done(&l);
}

static void fuzz_create_access_key(const char *doc, size_t size) {
        /* The transport hands this parser a body in secure memory. */
        _cleanup_secret_ Secret *body = secret_dup(doc, size);
        CreateAccessKeyResult c = {};
        int r;

        check(body != NULL);
        r = xml_parse_create_access_key(body->data, body->len, &c);
        check_result(r);
        if (r == 0) {
                check(c.secret_access_key && c.secret_access_key->len > 0);
                check(c.secret_access_key->data[c.secret_access_key->len] == 0);
                check(c.meta.access_key_id[0] != 0);
        }
        create_access_key_result_done(&c);
}

static void fuzz_last_used(const char *doc, size_t size) {
        AccessKeyLastUsed u;

        check_result(xml_parse_access_key_last_used(doc, size, &u));
}

static void fuzz_get_user(const char *doc, size_t size) {
        IamUser u;

        check_result(xml_parse_user(doc, size, "GetUserResponse", &u));
}

static void fuzz_create_user(const char *doc, size_t size) {
        IamUser u;

        check_result(xml_parse_user(doc, size, "CreateUserResponse", &u));
}

static void fuzz_list_user_tags(const char *doc, size_t size) {
        ListUserTagsResult t = {};
        int r = xml_parse_list_user_tags(doc, size, &t);

        check_result(r);
        if (r == 0)
                check((t.n_tags == 0) == (t.tags == NULL) && t.n_tags <= XML_MAX_ITEMS);
        list_user_tags_result_done(&t);
}

static void fuzz_user_policy(const char *doc, size_t size) {
        UserPolicyResult p = {};
        int r = xml_parse_user_policy(doc, size, &p);

        check_result(r);
        check(r < 0 || (p.document && p.document[0] && strlen(p.document) <= XML_POLICY_MAX));
        user_policy_result_done(&p);
}

static void fuzz_name_list(int (*parse)(const char *, size_t, IamNameList *), const char *doc, size_t size) {
        IamNameList nl = {};
        int r = parse(doc, size, &nl);

        check_result(r);
        if (r == 0) {
                check((nl.n_names == 0) == (nl.names == NULL));
                check(nl.is_truncated == (nl.marker != NULL));
                for (size_t j = 0; j < nl.n_names; j++)
                        check(nl.names[j].name[0] != 0);
        }
        iam_name_list_done(&nl);
}

static void fuzz_list_users(const char *doc, size_t size) {
        fuzz_name_list(xml_parse_list_users, doc, size);
}

static void fuzz_list_user_policies(const char *doc, size_t size) {
        fuzz_name_list(xml_parse_list_user_policies, doc, size);
}

static void fuzz_list_group_policies(const char *doc, size_t size) {
        fuzz_name_list(xml_parse_list_group_policies, doc, size);
}

static void fuzz_list_groups_for_user(const char *doc, size_t size) {
        fuzz_name_list(xml_parse_list_groups_for_user, doc, size);
}

static void fuzz_attached(int (*parse)(const char *, size_t, ListAttachedPoliciesResult *), const char *doc,
                          size_t size) {
        ListAttachedPoliciesResult ap = {};
        int r = parse(doc, size, &ap);

        check_result(r);
        if (r == 0) {
                check((ap.n_policies == 0) == (ap.policies == NULL));
                check(ap.is_truncated == (ap.marker != NULL));
                for (size_t j = 0; j < ap.n_policies; j++)
                        check(ap.policies[j].policy_arn && startswith(ap.policies[j].policy_arn, "arn:"));
        }
        list_attached_policies_result_done(&ap);
}

static void fuzz_attached_user(const char *doc, size_t size) {
        fuzz_attached(xml_parse_list_attached_user_policies, doc, size);
}

static void fuzz_attached_group(const char *doc, size_t size) {
        fuzz_attached(xml_parse_list_attached_group_policies, doc, size);
}

static void fuzz_group_policy(const char *doc, size_t size) {
        GroupPolicyResult gp = {};
        int r = xml_parse_group_policy(doc, size, &gp);

        check_result(r);
        check(r < 0 || (gp.document && gp.document[0]));
        group_policy_result_done(&gp);
}

static void fuzz_policy_version(const char *doc, size_t size) {
        PolicyVersionResult pv = {};
        int r = xml_parse_policy_version(doc, size, &pv);

        check_result(r);
        check(r < 0 || (pv.document && pv.document[0]));
        policy_version_result_done(&pv);
}

static void fuzz_policy(const char *doc, size_t size) {
        IamPolicy pol;

        check_result(xml_parse_policy(doc, size, &pol));
}

static void fuzz_list_objects(const char *doc, size_t size) {
        ListObjectsResult o = {};
        int r = xml_parse_list_objects_v2(doc, size, &o);

        check_result(r);
        if (r == 0) {
                size_t n = 0;

                for (char **k = o.keys; k && *k; k++)
                        n++;
                check(n <= XML_MAX_ITEMS);
                check(o.keys == NULL || n > 0);
                check(o.is_truncated == (o.next_continuation_token != NULL));
        }
        list_objects_result_done(&o);
}

static void fuzz_empty_response(const char *doc, size_t size) {
        char rid[128];
        int r = xml_parse_empty_response(doc, size, "UpdateAccessKeyResponse", rid);

        check_result(r);
        check(r < 0 || memchr(rid, 0, sizeof(rid)));
}

static void fuzz_timestamp(const char *doc, size_t size) {
        char ts[64];
        time_t t;
        int r;

        if (size >= sizeof(ts))
                return;
        memcpy(ts, doc, size);
        ts[size] = 0;
        r = xml_parse_timestamp(ts, &t);
        check(r == 0 || r == -EINVAL);
        check(r < 0 || t >= 0);
}

/* The order is the selector: seeds start with the byte that picks their
 * parser (tests/fuzz/corpus/xml/ names them). Append, never reorder. */
static void (*const parsers[])(const char *, size_t) = {
        fuzz_error,                /*  0 */
        fuzz_list_access_keys,     /*  1 */
        fuzz_create_access_key,    /*  2 */
        fuzz_last_used,            /*  3 */
        fuzz_get_user,             /*  4 */
        fuzz_create_user,          /*  5 */
        fuzz_list_user_tags,       /*  6 */
        fuzz_user_policy,          /*  7 */
        fuzz_list_users,           /*  8 */
        fuzz_list_user_policies,   /*  9 */
        fuzz_list_group_policies,  /* 10 */
        fuzz_list_groups_for_user, /* 11 */
        fuzz_attached_user,        /* 12 */
        fuzz_attached_group,       /* 13 */
        fuzz_group_policy,         /* 14 */
        fuzz_policy_version,       /* 15 */
        fuzz_policy,               /* 16 */
        fuzz_list_objects,         /* 17 */
        fuzz_empty_response,       /* 18 */
        fuzz_timestamp,            /* 19 */
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        size_t blocks;

        if (size < 1)
                return 0;
        if (secret_init() < 0)
                abort();
        blocks = fuzz_secure_blocks();
        parsers[data[0] % ELEMENTSOF(parsers)]((const char *) data + 1, size - 1);
        check(fuzz_secure_blocks() == blocks); /* no Secret leaked */
        return 0;
}

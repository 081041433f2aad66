/* SPDX-License-Identifier: MIT */
/*
 * fuzz-xml.c — every IAM/S3 document parser on the same input. Each must
 * either refuse it or return a result whose invariants hold; either way
 * nothing may leak (LeakSanitizer) or touch memory it does not own.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "aws/xml.h"
#include "basic/secret.h"
#include "basic/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool cond) {
        if (!cond)
                abort();
}

static void check_string(const char *s, size_t size) {
        check(memchr(s, 0, size) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *doc = (const char *) data;
        int r;

        if (secret_init() < 0)
                abort();

        AwsError e;
        r = xml_parse_error(doc, size, &e);
        check(r == 0 || r == -EBADMSG);
        if (r == 0) {
                check_string(e.type, sizeof(e.type));
                check_string(e.code, sizeof(e.code));
                check_string(e.message, sizeof(e.message));
                check_string(e.request_id, sizeof(e.request_id));
                check(e.code[0] != 0);
        }

        ListAccessKeysResult l = {};
        r = xml_parse_list_access_keys(doc, size, &l);
        check(r == 0 || r == -EBADMSG);
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

        /* The transport hands this parser a body in secure memory. Secure
         * allocations cost a dozen system calls each, so only documents
         * that can get past the root check pay for them; the driver is
         * the same for every parser. */
        if (memmem(data, size, "CreateAccessKeyResponse", strlen("CreateAccessKeyResponse"))) {
                _cleanup_secret_ Secret *body = secret_dup(data, size);
                CreateAccessKeyResult c = {};

                if (!body)
                        abort();
                r = xml_parse_create_access_key(body->data, body->len, &c);
                check(r == 0 || r == -EBADMSG);
                if (r == 0) {
                        check(c.secret_access_key && c.secret_access_key->len > 0);
                        check(c.secret_access_key->data[c.secret_access_key->len] == 0);
                        check(c.meta.access_key_id[0] != 0);
                }
                create_access_key_result_done(&c);
        }

        AccessKeyLastUsed u;
        r = xml_parse_access_key_last_used(doc, size, &u);
        check(r == 0 || r == -EBADMSG);

        IamUser iu;
        r = xml_parse_user(doc, size, "GetUserResponse", &iu);
        check(r == 0 || r == -EBADMSG);
        r = xml_parse_user(doc, size, "CreateUserResponse", &iu);
        check(r == 0 || r == -EBADMSG);

        ListObjectsResult o = {};
        {
                ListUserTagsResult t = {};
                UserPolicyResult up = {};

                if (xml_parse_list_user_tags(doc, size, &t) == 0)
                        list_user_tags_result_done(&t);
                if (xml_parse_user_policy(doc, size, &up) == 0)
                        user_policy_result_done(&up);
        }
        /* The audit's documents. */
        IamNameList nl = {};
        int (*const name_parsers[])(const char *, size_t, IamNameList *) = {
                xml_parse_list_users, xml_parse_list_user_policies, xml_parse_list_group_policies,
                xml_parse_list_groups_for_user,
        };
        for (size_t i = 0; i < ELEMENTSOF(name_parsers); i++) {
                r = name_parsers[i](doc, size, &nl);
                check(r == 0 || r == -EBADMSG);
                if (r == 0) {
                        check((nl.n_names == 0) == (nl.names == NULL));
                        check(nl.is_truncated == (nl.marker != NULL));
                        for (size_t j = 0; j < nl.n_names; j++)
                                check(nl.names[j].name[0] != 0);
                }
                iam_name_list_done(&nl);
        }
        ListAttachedPoliciesResult ap = {};
        r = xml_parse_list_attached_user_policies(doc, size, &ap);
        check(r == 0 || r == -EBADMSG);
        if (r == 0)
                for (size_t j = 0; j < ap.n_policies; j++)
                        check(ap.policies[j].policy_arn && startswith(ap.policies[j].policy_arn, "arn:"));
        list_attached_policies_result_done(&ap);
        r = xml_parse_list_attached_group_policies(doc, size, &ap);
        check(r == 0 || r == -EBADMSG);
        list_attached_policies_result_done(&ap);
        {
                GroupPolicyResult gp = {};
                PolicyVersionResult pv = {};
                IamPolicy pol;

                r = xml_parse_group_policy(doc, size, &gp);
                check(r == 0 || r == -EBADMSG);
                check(r < 0 || (gp.document && gp.document[0]));
                group_policy_result_done(&gp);
                r = xml_parse_policy_version(doc, size, &pv);
                check(r == 0 || r == -EBADMSG);
                check(r < 0 || (pv.document && pv.document[0]));
                policy_version_result_done(&pv);
                r = xml_parse_policy(doc, size, &pol);
                check(r == 0 || r == -EBADMSG);
        }

        r = xml_parse_list_objects_v2(doc, size, &o);
        check(r == 0 || r == -EBADMSG);
        if (r == 0) {
                size_t n = 0;

                for (char **k = o.keys; k && *k; k++)
                        n++;
                check(n <= XML_MAX_ITEMS);
                check(o.keys == NULL || n > 0);
                check(o.is_truncated == (o.next_continuation_token != NULL));
        }
        list_objects_result_done(&o);

        char rid[128];
        r = xml_parse_empty_response(doc, size, "UpdateAccessKeyResponse", rid);
        check(r == 0 || r == -EBADMSG);

        /* Short inputs double as timestamps. */
        if (size < 64) {
                char ts[64];
                time_t t;

                memcpy(ts, data, size);
                ts[size] = 0;
                r = xml_parse_timestamp(ts, &t);
                check(r == 0 || r == -EINVAL);
                check(r < 0 || t >= 0);
        }
        return 0;
}

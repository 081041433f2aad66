/* SPDX-License-Identifier: MIT */
#include "aws/types.h"

#include <stdlib.h>

static const char *const key_status_table[_KEY_STATUS_MAX] = {
        [KEY_STATUS_ACTIVE] = "Active",
        [KEY_STATUS_INACTIVE] = "Inactive",
};

DEFINE_STRING_TABLE_LOOKUP(key_status, KeyStatus)

void list_access_keys_result_done(ListAccessKeysResult *r) {
        if (!r)
                return;
        free(r->keys);
        free(r->marker);
        *r = (ListAccessKeysResult) {};
}

const AccessKeyMeta *list_access_keys_find(const ListAccessKeysResult *l, const char *id) {
        if (!id || !*id)
                return NULL;
        for (size_t i = 0; i < l->n_keys; i++)
                if (streq(l->keys[i].access_key_id, id))
                        return &l->keys[i];
        return NULL;
}

void create_access_key_result_done(CreateAccessKeyResult *r) {
        if (!r)
                return;
        secret_free(r->secret_access_key);
        *r = (CreateAccessKeyResult) {};
}

void list_user_tags_result_done(ListUserTagsResult *r) {
        if (!r)
                return;
        free(r->tags);
        *r = (ListUserTagsResult) {};
}

void user_policy_result_done(UserPolicyResult *r) {
        if (!r)
                return;
        free(r->document);
        *r = (UserPolicyResult) {};
}

void iam_name_list_done(IamNameList *l) {
        if (!l)
                return;
        free(l->names);
        free(l->marker);
        *l = (IamNameList) {};
}

void list_attached_policies_result_done(ListAttachedPoliciesResult *r) {
        if (!r)
                return;
        for (size_t i = 0; i < r->n_policies; i++)
                free(r->policies[i].policy_arn);
        free(r->policies);
        free(r->marker);
        *r = (ListAttachedPoliciesResult) {};
}

void group_policy_result_done(GroupPolicyResult *r) {
        if (!r)
                return;
        free(r->document);
        *r = (GroupPolicyResult) {};
}

void policy_version_result_done(PolicyVersionResult *r) {
        if (!r)
                return;
        free(r->document);
        *r = (PolicyVersionResult) {};
}

void list_objects_result_done(ListObjectsResult *r) {
        if (!r)
                return;
        strv_free(r->keys);
        free(r->next_continuation_token);
        *r = (ListObjectsResult) {};
}

/* SPDX-License-Identifier: MIT */
/*
 * keyrotctl provision. Steps, each audited when it changes
 * something:
 *
 *   1. GetUser: absent → CreateUser tagged managed-by=keyrotd; present →
 *      ListUserTags: without the tag refuse, unless --take-over (then
 *      TagUser, so later runs need no --take-over).
 *   2. GetUserPolicy keyrotd-s3: PutUserPolicy unless it already holds the
 *      same document (compared as JSON values, not bytes).
 *   3. The store holds a key for the user → keep it. Else ListAccessKeys:
 *      keys keyrotd does not hold → refuse (adopt one); none →
 *      CreateAccessKey, sealed into the store at once.
 *   4. Verify on S3 (docs/DESIGN.md §1 step 3) and, with deny_probe, that the key
 *      is denied IAM. A key created in this run that fails is deleted again.
 *   5. The inventory lists the user → write its targets that do not hold
 *      the key yet.
 */
#include "ctl/provision.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "audit/audit.h"
#include "aws/iam.h"
#include "aws/names.h"
#include "aws/s3.h"
#include "basic/json-util.h"
#include "basic/log.h"
#include "daemon/control.h"
#include "policy/check.h"
#include "rotation/decide.h"
#include "rotation/verify.h"
#include "targets/targets.h"


static bool prefix_valid(const char *p) {
        size_t n = strlen(p);

        if (n == 0 || n > 1024)
                return false;
        for (; *p; p++) {
                unsigned char c = (unsigned char) *p;
                /* Wildcards would widen the grant; quotes and controls have
                 * no business in an ARN. */
                if (c < 0x20 || c == 0x7f || c == '*' || c == '?' || c == '"' || c == '\\')
                        return false;
        }
        return true;
}

int provision_check_options(const ProvisionOptions *o) {
        const char *why = iam_user_name_problem(o->user);

        if (why) {
                log_error("invalid IAM user name '%s': it %s", o->user, why);
                return -EINVAL;
        }
        if (o->n_buckets == 0) {
                log_error("provision needs at least one --bucket NAME");
                return -EINVAL;
        }
        for (size_t i = 0; i < o->n_buckets; i++) {
                why = s3_bucket_name_problem(o->buckets[i]);
                if (why) {
                        log_error("invalid S3 bucket name '%s': it %s", o->buckets[i], why);
                        return -EINVAL;
                }
                for (size_t j = 0; j < i; j++)
                        if (streq(o->buckets[i], o->buckets[j])) {
                                log_error("bucket %s given twice", o->buckets[i]);
                                return -EINVAL;
                        }
        }
        if (o->prefix && !prefix_valid(o->prefix)) {
                log_error("--prefix must be 1-1024 characters without '*', '?', quotes, "
                          "backslashes or control characters");
                return -EINVAL;
        }
        return 0;
}

static json_object *string_array(const char *const *v, size_t n) {
        json_object *a = json_object_new_array();

        for (size_t i = 0; a && i < n; i++)
                if (v[i])
                        json_object_array_add(a, json_object_new_string(v[i]));
        return a;
}

static json_object *statement(const char *sid, const char *const *actions, size_t n_actions, const char *resource,
                              json_object *condition) {
        json_object *s = json_object_new_object();
        const char *res[] = { resource };

        json_object_object_add(s, "Sid", json_object_new_string(sid));
        json_object_object_add(s, "Effect", json_object_new_string("Allow"));
        json_object_object_add(s, "Action", string_array(actions, n_actions));
        json_object_object_add(s, "Resource", string_array(res, 1));
        if (condition)
                json_object_object_add(s, "Condition", condition);
        return s;
}

static json_object *policy_object(const ProvisionOptions *o) {
        static const char *const list_actions[] = { "s3:ListBucket" };
        static const char *const rw_actions[] = { "s3:GetObject", "s3:PutObject" };
        json_object *doc = json_object_new_object(), *stmts = json_object_new_array();

        json_object_object_add(doc, "Version", json_object_new_string("2012-10-17"));
        json_object_object_add(doc, "Statement", stmts);
        for (size_t i = 0; i < o->n_buckets; i++) {
                _cleanup_free_ char *bucket_arn = NULL, *objects_arn = NULL, *pattern = NULL;
                json_object *cond = NULL;
                char sid[32];

                if (asprintf_safe(&bucket_arn, "arn:aws:s3:::%s", o->buckets[i]) < 0 ||
                    asprintf_safe(&objects_arn, "arn:aws:s3:::%s/%s*", o->buckets[i], o->prefix ?: "") < 0)
                        goto fail;
                if (o->prefix) {
                        json_object *like = json_object_new_object();
                        const char *p[1];

                        if (asprintf_safe(&pattern, "%s*", o->prefix) < 0) {
                                json_object_put(like);
                                goto fail;
                        }
                        p[0] = pattern;
                        json_object_object_add(like, "s3:prefix", string_array(p, 1));
                        cond = json_object_new_object();
                        json_object_object_add(cond, "StringLike", like);
                }
                snprintf(sid, sizeof sid, "ListBucket%zu", i + 1);
                json_object_array_add(stmts, statement(sid, list_actions, 1, bucket_arn, cond));
                snprintf(sid, sizeof sid, "Objects%zu", i + 1);
                json_object_array_add(stmts, statement(sid, rw_actions, o->read_only ? 1 : 2, objects_arn, NULL));
        }
        return doc;
fail:
        json_object_put(doc);
        return NULL;
}

int provision_policy(const ProvisionOptions *o, bool pretty, char **ret) {
        _cleanup_json_ json_object *doc = policy_object(o);
        const char *s;

        if (!doc)
                return -ENOMEM;
        s = json_object_to_json_string_ext(doc, (pretty ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED
                                                        : JSON_C_TO_STRING_PLAIN) |
                                                        JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!s)
                return -ENOMEM;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

/* ---- helpers ----------------------------------------------------------- */

static void sleep_usec(usec_t t) {
        struct timespec ts = { .tv_sec = (time_t) (t / USEC_PER_SEC), .tv_nsec = (long) (t % USEC_PER_SEC) * 1000 };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* Start a call (the expression r = ...) and wait; 0 when it ran. */
static int wait_call(Runtime *rt, int r, AwsSync *s) {
        if (r >= 0)
                r = aws_sync_wait(rt->aws, s);
        return r;
}

static bool aws_code_is(const AwsResult *res, const char *code) {
        return res->error == -EREMOTEIO && streq(res->aws_error.code, code);
}

static void audit_step(AuditEvent ev, const char *user, const char *key_id, const char *result, const char *error,
                       const char *request_id, const char *message) {
        AuditRecord rec = {
                .event = ev,
                .user = user,
                .new_key_id = key_id,
                .trigger = "manual",
                .result = result,
                .error = error,
                .request_id = request_id && *request_id ? request_id : NULL,
                .message = message,
                .failure = result && streq(result, "failed"),
        };
        audit_emit(&rec);
}

static int call_failed(const char *user, const char *what, int r, AwsSync *s) {
        const char *code = r < 0 ? strerror(-r) : aws_result_error_code(&s->result);

        log_error("%s for %s failed: %s", what, user, code ?: "unknown error");
        audit_step(AUDIT_PROVISIONED, user, NULL, "failed", code, s->result.request_id, what);
        aws_result_done(&s->result);
        return 1;
}

/* GetUserPolicy's document is URL-encoded (RFC 3986; moto too). */
static bool policy_equal(const char *have, const char *want) {
        _cleanup_free_ char *dec = NULL;

        if (policy_document_decode(have, &dec) < 0)
                return false;
        _cleanup_json_ json_object *w = json_tokener_parse(want), *h = json_tokener_parse(dec);
        return w && h && json_object_equal(w, h);
}

/* ---- the steps --------------------------------------------------------- */

typedef enum UserState {
        USER_ABSENT,
        USER_OURS,    /* tagged managed-by=keyrotd */
        USER_FOREIGN, /* exists without the tag: only with --take-over */
} UserState;

/* 1a: read only: does the user exist, and is it ours? Refuses a foreign
 * user without --take-over. */
static int inspect_user(Runtime *rt, const ProvisionOptions *o, UserState *ret) {
        AwsSync s = {};
        bool tagged = false;
        int r;

        r = wait_call(rt, iam_get_user(rt->aws, NULL, o->user, aws_sync_cb, &s, NULL), &s);
        if (r >= 0 && aws_code_is(&s.result, "NoSuchEntity")) {
                aws_result_done(&s.result);
                *ret = USER_ABSENT;
                return 0;
        }
        if (r < 0 || s.result.error < 0)
                return call_failed(o->user, "GetUser", r, &s);
        aws_result_done(&s.result);

        s = (AwsSync) {};
        r = wait_call(rt, iam_list_user_tags(rt->aws, o->user, aws_sync_cb, &s, NULL), &s);
        if (r < 0 || s.result.error < 0)
                return call_failed(o->user, "ListUserTags", r, &s);
        for (size_t i = 0; i < s.result.user_tags.n_tags; i++)
                if (streq(s.result.user_tags.tags[i].key, PROVISION_TAG_KEY) &&
                    streq(s.result.user_tags.tags[i].value, PROVISION_TAG_VALUE))
                        tagged = true;
        aws_result_done(&s.result);
        if (!tagged && !o->take_over) {
                log_error("IAM user %s exists but is not tagged %s=%s; refusing to manage it "
                          "(--take-over tags it and replaces its inline policy %s)",
                        o->user, PROVISION_TAG_KEY, PROVISION_TAG_VALUE, PROVISION_POLICY_NAME);
                audit_step(AUDIT_PROVISIONED, o->user, NULL, "failed", "NotManaged", NULL,
                           "existing user without managed-by=keyrotd refused");
                return 1;
        }
        *ret = tagged ? USER_OURS : USER_FOREIGN;
        return 0;
}

/* 1b: create the user, or tag a foreign one (--take-over). */
static int step_user(Runtime *rt, const ProvisionOptions *o, UserState state, bool *changed) {
        static const char *const tags[] = { PROVISION_TAG_KEY, PROVISION_TAG_VALUE, NULL, NULL };
        AwsSync s = {};
        int r;

        switch (state) {
        case USER_OURS:
                printf("%s: user exists, managed by keyrotd (unchanged)\n", o->user);
                return 0;
        case USER_ABSENT:
                r = wait_call(rt, iam_create_user(rt->aws, o->user, tags, aws_sync_cb, &s, NULL), &s);
                if (r < 0 || s.result.error < 0)
                        return call_failed(o->user, "CreateUser", r, &s);
                audit_step(AUDIT_USER_CREATED, o->user, NULL, "ok", NULL, s.result.request_id,
                           "IAM user created with tag managed-by=keyrotd");
                printf("%s: user created (tag %s=%s)\n", o->user, PROVISION_TAG_KEY, PROVISION_TAG_VALUE);
                break;
        case USER_FOREIGN:
                r = wait_call(rt, iam_tag_user(rt->aws, o->user, tags, aws_sync_cb, &s, NULL), &s);
                if (r < 0 || s.result.error < 0)
                        return call_failed(o->user, "TagUser", r, &s);
                audit_step(AUDIT_USER_TAKEN_OVER, o->user, NULL, "ok", NULL, s.result.request_id,
                           "existing IAM user tagged managed-by=keyrotd (--take-over)");
                printf("%s: existing user taken over (tagged %s=%s; its other policies are left as they are)\n",
                       o->user, PROVISION_TAG_KEY, PROVISION_TAG_VALUE);
                break;
        }
        aws_result_done(&s.result);
        *changed = true;
        return 0;
}

/* 2: the inline policy. */
static int step_policy(Runtime *rt, const ProvisionOptions *o, bool *changed) {
        _cleanup_free_ char *doc = NULL, *msg = NULL;
        AwsSync s = {};
        int r;

        r = provision_policy(o, false, &doc);
        if (r < 0)
                return 1;
        r = wait_call(rt, iam_get_user_policy(rt->aws, o->user, PROVISION_POLICY_NAME, aws_sync_cb, &s, NULL), &s);
        if (r >= 0 && s.result.error == 0 && policy_equal(s.result.user_policy.document, doc)) {
                printf("%s: policy %s unchanged\n", o->user, PROVISION_POLICY_NAME);
                aws_result_done(&s.result);
                return 0;
        }
        if (r < 0 || (s.result.error < 0 && !aws_code_is(&s.result, "NoSuchEntity")))
                return call_failed(o->user, "GetUserPolicy", r, &s);
        bool existed = s.result.error == 0;
        aws_result_done(&s.result);

        s = (AwsSync) {};
        r = wait_call(rt, iam_put_user_policy(rt->aws, o->user, PROVISION_POLICY_NAME, doc, aws_sync_cb, &s, NULL),
                      &s);
        if (r < 0 || s.result.error < 0)
                return call_failed(o->user, "PutUserPolicy", r, &s);
        (void) asprintf_safe(&msg, "inline policy %s %s: %s on %zu bucket(s)%s%s", PROVISION_POLICY_NAME,
                             existed ? "updated" : "put", o->read_only ? "read-only" : "read-write", o->n_buckets, o->prefix ? ", prefix " : "", o->prefix ?: "");
        audit_step(AUDIT_POLICY_PUT, o->user, NULL, "ok", NULL, s.result.request_id, msg);
        printf("%s: policy %s %s\n", o->user, PROVISION_POLICY_NAME, existed ? "updated" : "put");
        aws_result_done(&s.result);
        *changed = true;
        return 0;
}

/* Keys of an existing user whose store holds none: none at all, or
 * refuse (before anything changes). */
static int refuse_unheld_keys(Runtime *rt, const ProvisionOptions *o) {
        AwsSync s = {};
        int r;

        r = wait_call(rt, iam_list_access_keys(rt->aws, NULL, o->user, aws_sync_cb, &s, NULL), &s);
        if (r >= 0 && aws_code_is(&s.result, "NoSuchEntity")) {
                aws_result_done(&s.result);
                return 0;
        }
        if (r < 0 || s.result.error < 0)
                return call_failed(o->user, "ListAccessKeys", r, &s);
        size_t n = s.result.list_keys.n_keys;
        aws_result_done(&s.result);
        if (n == 0)
                return 0;
        log_error("IAM user %s has %zu access key(s) that keyrotd does not hold; hand the one "
                  "in use to keyrotd with 'keyrotctl adopt %s --from-credentials FILE' (it must be in the inventory)",
                o->user, n, o->user);
        audit_step(AUDIT_PROVISIONED, o->user, NULL, "failed", "UnheldKeys", NULL,
                   "the user has access keys keyrotd does not hold");
        return 1;
}

/* 3: create the first key, sealed before anything else happens.
 * *ret_created: the key id when one was created now. */
/*
 * A CreateAccessKey whose outcome is unknown, resolved as recovery of phase
 * creating is (decide()): list the keys, and delete a key that appeared
 * since the intent was recorded and was never used (its secret is lost to
 * us). Returns 0 when the create may be tried again, -1 (after logging)
 * when it may not.
 */
static int resolve_lost_create(Runtime *rt, const ProvisionOptions *o, const StoreUser *su) {
        /* decide() reads the inventory user for its words; provision's user
         * may not be in the inventory yet. */
        const InventoryUser *known = inventory_find_user(rt->inv, o->user);
        InventoryUser iu = known ? *known : (InventoryUser) { .name = (char *) o->user, .max_age = rt->inv->defaults.max_age };
        AwsSync s = {}, u = {};
        Decision d;
        int r;

        r = wait_call(rt, iam_list_access_keys(rt->aws, NULL, o->user, aws_sync_cb, &s, NULL), &s);
        if (r < 0 || s.result.error < 0) {
                call_failed(o->user, "ListAccessKeys", r, &s);
                return -1;
        }
        DecisionInput in = {
                .iu = &iu,
                .su = su,
                .keys = &s.result.list_keys,
                .now = now_usec(CLOCK_REALTIME),
        };
        decide(&in, &d);
        if (d.action == DECISION_CHECK_ORPHAN) {
                r = wait_call(rt, iam_get_access_key_last_used(rt->aws, d.key_id, aws_sync_cb, &u, NULL), &u);
                if (r < 0 || u.result.error < 0) {
                        log_error("cannot tell whether %s is the key the lost create made", d.key_id);
                        aws_result_done(&u.result);
                        aws_result_done(&s.result);
                        return -1;
                }
                in.orphan_use = u.result.last_used.last_used_date > 0 ? ORPHAN_USE_USED : ORPHAN_USE_NEVER;
                aws_result_done(&u.result);
                decide(&in, &d);
        }
        switch (d.action) {
        case DECISION_RESET:
                r = 0;
                break;
        case DECISION_DELETE_ORPHAN: {
                char key_id[AWS_KEY_ID_MAX + 1];

                snprintf(key_id, sizeof key_id, "%s", d.key_id);
                r = wait_call(rt, iam_delete_access_key(rt->aws, o->user, key_id, aws_sync_cb, &u, NULL), &u);
                if (r < 0 || (u.result.error < 0 && !aws_code_is(&u.result, "NoSuchEntity"))) {
                        call_failed(o->user, "DeleteAccessKey", r, &u);
                        r = -1;
                        break;
                }
                audit_step(AUDIT_NEW_KEY_DELETED, o->user, key_id, "ok", NULL, u.result.request_id,
                           "the answer to CreateAccessKey was lost; deleted the key it made");
                aws_result_done(&u.result);
                r = 0;
                break;
        }
        default:
                log_error("%s", d.reason);
                r = -1;
        }
        aws_result_done(&s.result);
        return r;
}

static int step_key(Runtime *rt, const ProvisionOptions *o, char *created_id, size_t size) {
        _cleanup_secret_ Secret *secret = NULL;
        AwsSync s = {};
        StoreUser *su;
        int r;

        su = store_get_user(rt->store, o->user);
        if (su && store_key_is_set(&su->current)) {
                printf("%s: keyrotd holds key %s (unchanged)\n", o->user, su->current.access_key_id);
                return 0;
        }

        /* Record the intent first, as a rotation does (store.h): should we
         * die between IAM creating the key and the commit below, recovery
         * (keyrotd, phase creating) finds the key nobody holds and deletes it. */
        if (!su) {
                r = store_add_user(rt->store, o->user, &su);
                if (r < 0)
                        return call_failed(o->user, "the store", r, &s);
        }
        su->phase = STORE_PHASE_CREATING;
        su->phase_since = (int64_t) now_usec(CLOCK_REALTIME);
        r = store_commit(rt->store);
        if (r < 0) {
                su->phase = STORE_PHASE_IDLE;
                return call_failed(o->user, "committing the store", r, &s);
        }

        /* provision_run() refused keys keyrotd does not hold already. */
        for (unsigned attempt = 1;; attempt++) {
                s = (AwsSync) {};
                r = wait_call(rt, iam_create_access_key(rt->aws, o->user, aws_sync_cb, &s, NULL), &s);
                if (r >= 0 && s.result.error >= 0)
                        break;
                /* No answer, a 5xx, or LimitExceeded on a user without keys:
                 * IAM may have made a key whose secret we never saw. */
                bool unknown = r >= 0 && (s.result.outcome_unknown || s.result.error != -EREMOTEIO ||
                                          aws_code_is(&s.result, "LimitExceeded"));
                if (unknown && attempt < PROVISION_CREATE_ATTEMPTS) {
                        log_warning("CreateAccessKey for %s: the outcome is unknown (%s); listing the keys", o->user,
                                    aws_result_error_code(&s.result));
                        aws_result_done(&s.result);
                        if (resolve_lost_create(rt, o, su) < 0)
                                return 1;
                        continue;
                }
                int k = call_failed(o->user, "CreateAccessKey", r, &s);

                if (unknown) {
                        /* Leave the intent on disk: the next keyrotd run (or
                         * provision) finds and deletes what the create made. */
                        log_error("the create's outcome stays unknown; the next run of keyrotd cleans up");
                        return k;
                }
                su->phase = STORE_PHASE_IDLE;
                r = store_commit(rt->store);
                if (r < 0)
                        /* Harmless: the recorded intent makes the next run look for a key to clean up. */
                        log_warning_errno(r, "Cannot record in %s that no key was created for %s: %m", rt->store_path,
                                          o->user);
                return k;
        }
        secret = TAKE_PTR(s.result.create_key.secret_access_key);
        snprintf(created_id, size, "%s", s.result.create_key.meta.access_key_id);
        int64_t created = (int64_t) s.result.create_key.meta.create_date * (int64_t) USEC_PER_SEC;
        char request_id[128];
        snprintf(request_id, sizeof request_id, "%s", s.result.request_id);
        aws_result_done(&s.result);

        r = store_key_set(&su->current, created_id, secret->data, secret->len, created);
        su->phase = STORE_PHASE_IDLE;
        /* The only copy of the secret: retry the commit before giving up. */
        for (unsigned i = 0; r >= 0 && i < 3; i++) {
                int k = store_commit(rt->store);
                if (k >= 0)
                        break;
                if (i == 2)
                        r = k;
                else
                        sleep_usec(USEC_PER_SEC);
        }
        if (r < 0) {
                AwsSync d = {};
                log_error("cannot seal the new key of %s into %s: %s; deleting it again",
                        o->user, rt->store_path, strerror(-r));
                int k = wait_call(rt, iam_delete_access_key(rt->aws, o->user, created_id, aws_sync_cb, &d, NULL),
                                  &d);
                if (k < 0 || d.result.error < 0)
                        log_error("deleting %s failed too: delete it by hand", created_id);
                aws_result_done(&d.result);
                audit_step(AUDIT_KEY_CREATED, o->user, created_id, "failed", "StoreCommit", request_id,
                           "the new key could not be sealed");
                return 1;
        }
        audit_step(AUDIT_KEY_CREATED, o->user, created_id, "ok", NULL, request_id,
                   "first access key created and sealed");
        printf("%s: access key %s created and sealed into the store\n", o->user, created_id);
        return 0;
}

/* 4: the S3 check, consecutive successes; then the deny probe. */
static int step_verify(Runtime *rt, const ProvisionOptions *o, const InventoryUser *iu, bool policy_fresh,
                       const char *key_id) {
        _cleanup_(aws_credentials_unrefp) AwsCredentials *creds = NULL;
        _cleanup_free_ char *probe_key = NULL, *subject = NULL;
        const StoreUser *su = store_get_user(rt->store, o->user);
        InventoryVerify local = rt->inv->defaults.verify;
        VerifyOptions vo = {
                .verify = &local,
                .user = o->user,
                /* AccessDenied right after the policy was put is IAM not
                 * knowing it everywhere yet, not the policy's verdict. */
                .denied_is_propagation = policy_fresh,
        };
        VerifyResult res;
        int r;

        if (iu)
                vo.verify = &iu->verify;
        else {
                local.bucket = o->buckets[0];
                local.check = VERIFY_CHECK_LIST;
                local.check_key = NULL;
                if (o->prefix) {
                        /* ListObjectsV2 without a prefix is outside the grant:
                         * GetObject of a key under it (404 counts as allowed). */
                        if (asprintf_safe(&probe_key, "%skeyrotd-verify", o->prefix) < 0)
                                return log_oom(), 1;
                        local.check = VERIFY_CHECK_GET;
                        local.check_key = probe_key;
                        vo.missing_object_ok = true;
                }
        }
        if (asprintf_safe(&subject, "key %s of %s", key_id, o->user) < 0)
                return log_oom(), 1;
        vo.subject = subject;
        r = aws_credentials_new(su->current.access_key_id, su->current.secret->data, su->current.secret->len, NULL, 0,
                                "provision", &creds);
        if (r < 0)
                return log_oom(), 1;
        vo.creds = creds;

        r = verify_run(rt->aws, &vo, &res);
        if (r < 0) {
                log_error_errno(r, "Cannot verify %s: %m", subject);
                return 1;
        }
        if (res.outcome != VERIFY_OK) {
                log_error("%s", res.message);
                audit_step(AUDIT_VERIFY_FAILED, o->user, key_id, "failed", res.code, res.request_id,
                           res.outcome == VERIFY_OVER_PRIVILEGED ? "the key is not denied an IAM call"
                                                                 : "the key does not pass its S3 check");
                return 1;
        }
        audit_step(AUDIT_KEY_VERIFIED, o->user, key_id, "ok", NULL, NULL, "key verified on S3");
        printf("%s: key %s verified on bucket %s (%u checks in a row)\n", o->user, key_id, vo.verify->bucket,
               res.checks);
        return 0;
}

/* A key created in this run that failed verification goes again. */
static void undo_key(Runtime *rt, const char *user, const char *key_id) {
        StoreUser *su = store_get_user(rt->store, user);
        AwsSync d = {};
        int k;

        k = wait_call(rt, iam_delete_access_key(rt->aws, user, key_id, aws_sync_cb, &d, NULL), &d);
        if (k < 0 || d.result.error < 0) {
                log_error("deleting the new key %s failed; it stays in the store", key_id);
                aws_result_done(&d.result);
                return;
        }
        audit_step(AUDIT_NEW_KEY_DELETED, user, key_id, "ok", NULL, d.result.request_id,
                   "new key deleted after failed verification");
        aws_result_done(&d.result);
        if (su) {
                store_key_clear(&su->current);
                k = store_commit(rt->store);
                if (k < 0)
                        log_error_errno(k, "Cannot remove the deleted key %s of %s from %s: %m; "
                                        "run 'keyrotctl provision' again", key_id, user, rt->store_path);
        }
        log_error("deleted the new key %s again", key_id);
}

/* 5: targets that do not hold the key yet. */
static int step_targets(Runtime *rt, const InventoryUser *iu, bool *changed) {
        const StoreUser *su = store_get_user(rt->store, iu->name);
        unsigned written = 0;

        for (size_t i = 0; i < iu->n_targets; i++) {
                const InventoryTarget *t = &iu->targets[i];
                TargetSpec spec = target_spec_from_inventory(t);
                _cleanup_free_ char *e = NULL;
                char id[TARGET_KEY_ID_MAX + 1];

                if (target_read_key_id(&spec, id, sizeof id) >= 0 && streq(id, su->current.access_key_id))
                        continue;
                int k = target_write(&spec, su->current.access_key_id, su->current.secret, &e);
                if (k < 0) {
                        log_error("%s", e ?: strerror(-k));
                        audit_step(AUDIT_TARGETS_WRITTEN, iu->name, su->current.access_key_id, "failed",
                                   strerror(-k), NULL, e ?: "writing a target failed");
                        return 1;
                }
                written++;
        }
        if (written > 0) {
                audit_step(AUDIT_TARGETS_WRITTEN, iu->name, su->current.access_key_id, "ok", NULL, NULL,
                           "targets written");
                printf("%s: %u target(s) written\n", iu->name, written);
                *changed = true;
        } else if (iu->n_targets > 0)
                printf("%s: targets hold the key (unchanged)\n", iu->name);
        return 0;
}

int provision_run(Runtime *rt, const ProvisionOptions *o) {
        char created[STORE_ACCESS_KEY_ID_MAX + 1] = "";
        bool changed = false, policy_changed = false;
        const InventoryUser *iu;
        int r;

        if (runtime_load_inventory(rt) < 0) {
                runtime_print_inventory_errors(rt);
                return 2;
        }
        iu = inventory_find_user(rt->inv, o->user);
        if (iu) {
                bool granted = false;

                for (size_t i = 0; i < o->n_buckets; i++)
                        granted = granted || streq(o->buckets[i], iu->verify.bucket);
                if (!granted) {
                        log_error("the inventory verifies %s on bucket %s, which is not among "
                                        "--bucket: the key could never pass its check",
                                o->user, iu->verify.bucket);
                        return 2;
                }
        }

        r = runtime_lock(rt, false);
        if (r == -EBUSY) {
                log_error("keyrotd is running on %s; stop it to provision", rt->state_dir);
                return 1;
        }
        if (r >= 0)
                r = runtime_open_store(rt);
        if (r >= 0)
                r = runtime_open_aws(rt);
        if (r < 0) {
                log_error("%s", rt->error ?: strerror(-r));
                return 1;
        }

        /* Refuse before anything changes, not half-way. */
        UserState state = USER_ABSENT;
        const StoreUser *held = store_get_user(rt->store, o->user);
        if (held && held->phase != STORE_PHASE_IDLE) {
                log_error("a rotation of %s is in progress (%s); run keyrotd --once to finish it",
                        o->user, store_phase_to_string(held->phase));
                return 1;
        }
        if (held && store_key_is_set(&held->current) && (!held->current.secret || held->current.secret->len == 0)) {
                log_error("keyrotd holds no secret for %s's key %s; replace it with "
                                "'keyrotctl rotate %s --replace-lost'",
                        o->user, held->current.access_key_id, o->user);
                return 1;
        }
        r = inspect_user(rt, o, &state);
        if (r == 0 && state == USER_ABSENT && held && store_key_is_set(&held->current)) {
                log_error("the store holds key %s for %s, but IAM has no such user; refusing to "
                                "create it with a key that cannot exist",
                        held->current.access_key_id, o->user);
                return 1;
        }
        if (r == 0 && state != USER_ABSENT && !(held && store_key_is_set(&held->current)))
                r = refuse_unheld_keys(rt, o);
        if (r == 0)
                r = step_user(rt, o, state, &changed);
        if (r == 0)
                r = step_policy(rt, o, &policy_changed);
        if (r == 0)
                r = step_key(rt, o, created, sizeof created);
        if (r != 0)
                return r;
        changed = changed || policy_changed || created[0];

        const StoreUser *su = store_get_user(rt->store, o->user);
        if (changed) {
                r = step_verify(rt, o, iu, policy_changed, su->current.access_key_id);
                if (r != 0) {
                        if (created[0])
                                undo_key(rt, o->user, created);
                        audit_step(AUDIT_PROVISIONED, o->user, NULL, "failed", "VerifyFailed", NULL,
                                   "provisioning failed: the key does not verify");
                        return r;
                }
        }
        if (iu) {
                r = step_targets(rt, iu, &changed);
                if (r != 0)
                        return r;
        } else
                printf("%s: not in the inventory %s: no targets written (keyrotctl get %s prints the key)\n",
                       o->user, rt->config_path, o->user);

        su = store_get_user(rt->store, o->user);
        audit_step(AUDIT_PROVISIONED, o->user, su->current.access_key_id, changed ? "changed" : "unchanged", NULL,
                   NULL, changed ? "user provisioned" : "user already provisioned as asked");
        printf(changed ? "%s: provisioned\n" : "%s: already provisioned as asked; nothing changed\n", o->user);
        return 0;
}

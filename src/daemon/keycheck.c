/* SPDX-License-Identifier: MIT */
#include "daemon/keycheck.h"

#include <errno.h>
#include <stdio.h>

#include "aws/iam.h"
#include "rotation/decide.h"

/* Phases in which the record's current key is the new key of a rotation
 * under way, and decide() itself handles a current key IAM no longer has. */
static bool phase_replaces_current(StorePhase p) {
        return p == STORE_PHASE_DISTRIBUTED || p == STORE_PHASE_NOTIFIED || p == STORE_PHASE_ROLLING_BACK;
}

void keycheck_explain(const char *user, const char *key_id, const AccessKeyMeta *listed, char *buf, size_t size) {
        snprintf(buf, size,
                 "the key keyrotd holds for %s (%s) is %s in IAM: the store may be an older copy (restored from a "
                 "backup or snapshot); run 'keyrotctl rotate %s --replace-lost'",
                 user, key_id, listed ? "Inactive" : "missing", user);
}

bool keycheck_lost(const InventoryUser *iu, const StoreUser *su, const ListAccessKeysResult *keys, usec_t now,
                   char *reason, size_t size) {
        StoreUser view;
        Decision d;

        if (!iu || !su || !store_key_is_set(&su->current) || phase_replaces_current(su->phase))
                return false;
        /* A shallow copy, only read: decide() judges the current key of an
         * idle record, and that is the question. */
        view = *su;
        view.phase = STORE_PHASE_IDLE;
        decide(&(DecisionInput) { .iu = iu, .su = &view, .keys = keys, .now = now }, &d);
        if (!streq_ptr(d.code, "KeyMissing") && !streq_ptr(d.code, "KeyInactive"))
                return false;
        if (reason)
                keycheck_explain(su->name, su->current.access_key_id,
                                 list_access_keys_find(keys, su->current.access_key_id), reason, size);
        return true;
}

typedef struct Check {
        KeyChecker *checker;
        char *user;
        AwsCall *call;
        struct Check *next;
} Check;

struct KeyChecker {
        AwsClient *aws;
        unsigned parallel;
        keycheck_done_t done;
        void *userdata;
        char **queue; /* queue[head..n) wait */
        size_t head, n, size;
        Check *running;
        unsigned n_running;
};

static void check_free(Check *c) {
        KeyChecker *k = c->checker;

        for (Check **p = &k->running; *p; p = &(*p)->next)
                if (*p == c) {
                        *p = c->next;
                        break;
                }
        k->n_running--;
        if (c->call)
                aws_call_cancel(c->call);
        free(c->user);
        free(c);
}

static void keychecker_pump(KeyChecker *k);

static void on_listed(AwsCall *call, AwsResult *result, void *userdata) {
        Check *c = userdata;
        KeyChecker *k = c->checker;

        c->call = NULL; /* the client frees it after we return */
        k->done(c->user, result, k->userdata);
        check_free(c);
        keychecker_pump(k);
}

/* A check that could not be made is answered at once, as failed: every
 * queued user is answered, so a caller waiting for all never hangs. */
static void answer_failed(KeyChecker *k, const char *user, int error) {
        AwsResult failed = { .op = AWS_OP_LIST_ACCESS_KEYS, .error = error };

        snprintf(failed.error_text, sizeof failed.error_text, "%s", strerror(-error));
        k->done(user, &failed, k->userdata);
}

static void keychecker_pump(KeyChecker *k) {
        while (k->head < k->n && k->n_running < k->parallel) {
                _cleanup_free_ char *user = TAKE_PTR(k->queue[k->head]);
                Check *c;
                int r;

                k->head++;
                c = calloc(1, sizeof *c);
                if (!c) {
                        answer_failed(k, user, -ENOMEM);
                        continue;
                }
                *c = (Check) { .checker = k, .user = TAKE_PTR(user), .next = k->running };
                k->running = c;
                k->n_running++;
                r = iam_list_access_keys(k->aws, NULL, c->user, on_listed, c, &c->call);
                if (r < 0) {
                        c->call = NULL;
                        answer_failed(k, c->user, r);
                        check_free(c);
                }
        }
        if (k->head == k->n)
                k->head = k->n = 0;
}

int keychecker_new(AwsClient *aws, unsigned parallel, keycheck_done_t done, void *userdata, KeyChecker **ret) {
        KeyChecker *k;

        if (!aws || !done || !ret)
                return -EINVAL;
        k = calloc(1, sizeof *k);
        if (!k)
                return -ENOMEM;
        *k = (KeyChecker) { .aws = aws, .parallel = parallel ?: 1, .done = done, .userdata = userdata };
        *ret = k;
        return 0;
}

int keychecker_add(KeyChecker *k, const char *user) {
        char *u;

        if (k->n == k->size) {
                size_t size = k->size ? k->size * 2 : 16;
                char **q = realloc(k->queue, size * sizeof(char *));

                if (!q)
                        return -ENOMEM;
                k->queue = q;
                k->size = size;
        }
        u = strdup(user);
        if (!u)
                return -ENOMEM;
        k->queue[k->n++] = u;
        keychecker_pump(k);
        return 0;
}

size_t keychecker_busy(const KeyChecker *k) {
        return k ? (k->n - k->head) + k->n_running : 0;
}

KeyChecker *keychecker_free(KeyChecker *k) {
        if (!k)
                return NULL;
        while (k->running)
                check_free(k->running);
        for (size_t i = k->head; i < k->n; i++)
                free(k->queue[i]);
        free(k->queue);
        free(k);
        return NULL;
}

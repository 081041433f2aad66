/* SPDX-License-Identifier: MIT */
/*
 * The decision table. Each case below is one row of tests/unit/test-decide.c;
 * the words of every reason are what `keyrotd --once --dry-run` prints and
 * what a failed rotation reports, so they name keys and say what an
 * operator can do.
 */
#include "rotation/decide.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "basic/duration.h"

static const char *const action_names[_DECISION_ACTION_MAX] = {
        [DECISION_NONE] = "none",
        [DECISION_ROTATE] = "rotate",
        [DECISION_CHECK_ORPHAN] = "check-orphan",
        [DECISION_DELETE_ORPHAN] = "delete-orphan",
        [DECISION_UNDO] = "undo",
        [DECISION_RESET] = "reset",
        [DECISION_DISTRIBUTE] = "distribute",
        [DECISION_NOTIFY] = "notify",
        [DECISION_DRAIN] = "drain",
        [DECISION_DELETE_OLD] = "delete-old",
        [DECISION_WAIT] = "wait",
        [DECISION_COMPLETE] = "complete",
        [DECISION_ROLLBACK] = "rollback",
        [DECISION_ROLLBACK_FINISH] = "rollback-finish",
        [DECISION_ROLLBACK_ABANDON] = "rollback-abandon",
        [DECISION_FAIL] = "fail",
        [DECISION_NOT_APPLICABLE] = "not-applicable",
};

const char *decision_action_to_string(DecisionAction a) {
        return a >= 0 && a < _DECISION_ACTION_MAX ? action_names[a] : NULL;
}

bool decision_then_decides(DecisionAction a) {
        return a == DECISION_DELETE_ORPHAN || a == DECISION_UNDO || a == DECISION_RESET;
}

bool decision_is_due(const StoreUser *su, usec_t max_age, usec_t now) {
        if (!su || !store_key_is_set(&su->current))
                return false;
        return (usec_t) su->current.create_date + max_age <= now;
}

static void set(Decision *d, DecisionAction a, const char *key_id, const char *code, const char *fmt, ...)
        _printf_(5, 6);
static void set(Decision *d, DecisionAction a, const char *key_id, const char *code, const char *fmt, ...) {
        va_list ap;

        d->action = a;
        d->key_id = key_id;
        d->when = a == DECISION_FAIL || a == DECISION_NOT_APPLICABLE ? USEC_INFINITY : d->when;
        d->code = code;
        va_start(ap, fmt);
        (void) vsnprintf(d->reason, sizeof d->reason, fmt, ap);
        va_end(ap);
}

static bool held(const StoreUser *su, const char *id) {
        return streq(su->current.access_key_id, id) || streq(su->pending.access_key_id, id) ||
               streq(su->previous.access_key_id, id);
}

/* held(), with @current in the current slot (--replace-lost's lost key). */
static bool held_as(const StoreUser *su, const char *current, const char *id) {
        return streq(current, id) || streq(su->pending.access_key_id, id) || streq(su->previous.access_key_id, id);
}

static const char *plural(size_t n) {
        return n == 1 ? "" : "s";
}

static bool has_secret(const StoreKey *k) {
        return store_key_is_set(k) && k->secret && k->secret->len > 0;
}

/* A slot's key, if IAM still lists it. */
static const AccessKeyMeta *listed(const ListAccessKeysResult *l, const StoreKey *k) {
        return store_key_is_set(k) ? list_access_keys_find(l, k->access_key_id) : NULL;
}

static const char *instant(usec_t t, char buf[static INSTANT_STRING_MAX]) {
        return format_instant(t, buf) ?: "?";
}

static const char *approx(usec_t d, char buf[static DURATION_STRING_MAX]) {
        return format_duration_approx(d, 2, buf, DURATION_STRING_MAX) ?: "?";
}

/* Append "; TEXT" to the reason (cut at its end). */
static void add(Decision *d, const char *fmt, ...) _printf_(2, 3);
static void add(Decision *d, const char *fmt, ...) {
        size_t n = strlen(d->reason);
        va_list ap;

        if (n + 3 >= sizeof d->reason)
                return;
        memcpy(d->reason + n, "; ", 3);
        n += 2;
        va_start(ap, fmt);
        (void) vsnprintf(d->reason + n, sizeof d->reason - n, fmt, ap);
        va_end(ap);
}

/* What happens to the old key at the end of a rotation. */
static void add_old_key_fate(Decision *d, const InventoryUser *iu, const char *old) {
        char g[DURATION_STRING_MAX];
        size_t n = strlen(d->reason);

        if (!old || !*old)
                (void) snprintf(d->reason + n, sizeof d->reason - n, "the old key is already gone from IAM");
        else if (iu->grace == 0)
                (void) snprintf(d->reason + n, sizeof d->reason - n, "deactivate and delete the old key %s (grace 0)",
                                old);
        else
                (void) snprintf(d->reason + n, sizeof d->reason - n,
                                "deactivate the old key %s, delete it after grace (%s)", old,
                                format_duration(iu->grace, g, sizeof g) ?: "?");
}

/*
 * Rollback judges the slots as they are: a missing old key there means
 * "cannot roll back", not "already cleaned up".
 */
static void decide_rollback(const DecisionInput *in, Decision *d) {
        const StoreUser *su = in->su;
        const ListAccessKeysResult *l = in->keys;
        const AccessKeyMeta *prev = listed(l, &su->previous);

        if (su->phase == STORE_PHASE_ROLLING_BACK) {
                d->recovering = !(in->flags & ROTATION_ROLLBACK);
                if (!store_key_is_set(&su->previous)) {
                        const char *pending = listed(l, &su->pending) ? su->pending.access_key_id : NULL;

                        if (pending)
                                set(d, DECISION_ROLLBACK_FINISH, pending, NULL,
                                    "rollback interrupted after %s took over again: delete the rolled-back key %s",
                                    su->current.access_key_id, pending);
                        else
                                set(d, DECISION_ROLLBACK_FINISH, NULL, NULL,
                                    "rollback interrupted after %s took over again: mark it complete",
                                    su->current.access_key_id);
                        return;
                }
                if (!prev) {
                        set(d, DECISION_ROLLBACK_ABANDON, su->current.access_key_id, "RollbackOldKeyGone",
                            "rollback impossible: the old key %s is gone from IAM; %s stays current",
                            su->previous.access_key_id, su->current.access_key_id);
                        return;
                }
                set(d, DECISION_ROLLBACK, su->previous.access_key_id, NULL,
                    "rollback interrupted: re-activate the old key %s, write it back to %zu target%s, retire %s",
                    su->previous.access_key_id, in->iu->n_targets, plural(in->iu->n_targets),
                    su->current.access_key_id);
                return;
        }
        if (su->phase != STORE_PHASE_DISTRIBUTED && su->phase != STORE_PHASE_NOTIFIED &&
            su->phase != STORE_PHASE_DEACTIVATED) {
                set(d, DECISION_NOT_APPLICABLE, NULL, "NothingToRollBack",
                    "nothing to roll back: no rotation of %s is within its grace period", in->iu->name);
                return;
        }
        if (!prev) {
                set(d, DECISION_FAIL, NULL, "RollbackOldKeyGone", "cannot roll back: the old key is gone from IAM");
                return;
        }
        if (!has_secret(&su->previous)) {
                set(d, DECISION_FAIL, su->previous.access_key_id, "RollbackNoSecret",
                    "cannot roll back: keyrotd never held the secret of the old key %s (it replaced a lost key)",
                    su->previous.access_key_id);
                return;
        }
        set(d, DECISION_ROLLBACK, su->previous.access_key_id, NULL,
            "roll back: re-activate the old key %s, write it back to %zu target%s, delete %s",
            su->previous.access_key_id, in->iu->n_targets, plural(in->iu->n_targets), su->current.access_key_id);
}

/*
 * --replace-lost: the one Active key keyrotd has no secret for is treated
 * as the current key; with none at all, the new key is simply the first.
 * Returns that key's id ("" for none), or NULL after setting a failure.
 */
static const char *find_lost_key(const DecisionInput *in, Decision *d) {
        const StoreUser *su = in->su;
        const ListAccessKeysResult *l = in->keys;
        const char *lost = "";
        unsigned n_lost = 0;

        if (listed(l, &su->current) && has_secret(&su->current)) {
                set(d, DECISION_FAIL, su->current.access_key_id, "NothingLost",
                    "nothing is lost: keyrotd holds the secret of %s's key %s (rotate without --replace-lost)",
                    in->iu->name, su->current.access_key_id);
                return NULL;
        }
        for (size_t i = 0; i < l->n_keys; i++) {
                const AccessKeyMeta *k = &l->keys[i];

                if (k->status == KEY_STATUS_ACTIVE &&
                    (streq(k->access_key_id, su->current.access_key_id) || !held(su, k->access_key_id))) {
                        lost = k->access_key_id;
                        n_lost++;
                }
        }
        if (n_lost > 1) {
                /* IAM has no room for a third key, and which of the two the
                 * applications use is not ours to guess. */
                set(d, DECISION_FAIL, NULL, "SeveralLostKeys",
                    "%s has %u Active keys keyrotd holds no secret for; delete the one no application uses, "
                    "then run --replace-lost again",
                    in->iu->name, n_lost);
                return NULL;
        }
        return lost;
}

/* The user is idle: is there work, and is it safe? */
static void decide_idle(const DecisionInput *in, Decision *d) {
        const StoreUser *su = in->su;
        const InventoryUser *iu = in->iu;
        const ListAccessKeysResult *l = in->keys;
        const char *current = su->current.access_key_id;
        char d1[DURATION_STRING_MAX], d2[DURATION_STRING_MAX], when[INSTANT_STRING_MAX];
        bool replace_lost = in->flags & ROTATION_REPLACE_LOST;

        if (in->flags & ROTATION_RECOVER_ONLY) {
                d->when = USEC_INFINITY;
                set(d, DECISION_NONE, NULL, "RecoveryOnly", "no interrupted rotation to recover");
                return;
        }
        if (replace_lost) {
                current = find_lost_key(in, d);
                if (!current)
                        return;
        } else if (!store_key_is_set(&su->current)) {
                set(d, DECISION_FAIL, NULL, "NoKeyHeld",
                    "keyrotd holds no key for %s: hand it the current one with 'keyrotctl adopt', "
                    "or replace a lost one with 'keyrotctl rotate %s --replace-lost'",
                    iu->name, iu->name);
                return;
        } else if (!has_secret(&su->current)) {
                set(d, DECISION_FAIL, current, "NoSecretHeld",
                    "keyrotd holds no secret for %s's key %s: replace it with 'keyrotctl rotate %s --replace-lost'",
                    iu->name, current, iu->name);
                return;
        }
        if (*current) {
                const AccessKeyMeta *cur = list_access_keys_find(l, current);

                if (!cur) {
                        set(d, DECISION_FAIL, current, "KeyMissing",
                            "the key keyrotd holds (%s) no longer exists in IAM; replace it with 'keyrotctl rotate "
                            "%s --replace-lost'",
                            current, iu->name);
                        return;
                }
                if (cur->status != KEY_STATUS_ACTIVE) {
                        set(d, DECISION_FAIL, current, "KeyInactive",
                            "the key keyrotd holds (%s) is Inactive in IAM; re-activate it, or replace it with "
                            "'keyrotctl rotate %s --replace-lost'",
                            current, iu->name);
                        return;
                }
        }

        bool due = decision_is_due(su, iu->max_age, in->now);
        usec_t created = (usec_t) su->current.create_date;
        usec_t due_at = created + iu->max_age;

        instant(due_at, when);
        d->when = MIN(due_at, in->now);
        if (!(in->flags & ROTATION_FORCE) && !replace_lost && !due) {
                d->when = due_at;
                set(d, DECISION_NONE, NULL, "NotDue", "not due: due in %s (%s)",
                    approx(due_at > in->now ? due_at - in->now : 0, d1), when);
                return;
        }
        for (size_t i = 0; i < l->n_keys; i++) {
                const AccessKeyMeta *k = &l->keys[i];

                if (streq(k->access_key_id, current))
                        continue;
                if (held_as(su, current, k->access_key_id)) {
                        /* IAM allows two keys: a second one we hold leaves no room. */
                        set(d, DECISION_FAIL, k->access_key_id, "NoRoom",
                            "%s already has a second key keyrotd holds (%s); no room for a new one", iu->name,
                            k->access_key_id);
                        return;
                }
                if (k->status == KEY_STATUS_ACTIVE) {
                        set(d, DECISION_FAIL, k->access_key_id, "UnheldActiveKey",
                            "an Active key keyrotd does not hold (%s) exists; refusing to touch it "
                            "(delete it or adopt it)",
                            k->access_key_id);
                        return;
                }
        }

        if (replace_lost)
                set(d, DECISION_ROTATE, *current ? current : NULL, NULL, "replacing %s, whose secret keyrotd does not hold",
                    *current ? current : "no key (the user has no Active key)");
        else if (due)
                set(d, DECISION_ROTATE, current, NULL, "due: key is %s old, max_age %s (due since %s)",
                    approx(in->now > created ? in->now - created : 0, d1),
                    format_duration(iu->max_age, d2, sizeof d2) ?: "?", when);
        else
                set(d, DECISION_ROTATE, current, NULL, "--force (not due until %s)", when);

        /* The rotation deletes the Inactive keys nobody holds first. */
        for (size_t i = 0; i < l->n_keys; i++)
                if (!held_as(su, current, l->keys[i].access_key_id))
                        add(d, "delete-stale: the Inactive key %s (not held) is deleted first",
                            l->keys[i].access_key_id);
        add(d, "create a new key, verify it (%s on %s), write %zu target%s, %s", verify_check_to_string(iu->verify.check),
            iu->verify.bucket ?: "?", iu->n_targets, plural(iu->n_targets), iu->on_rotate ? "run on_rotate, " : "");
        add_old_key_fate(d, iu, current);
}

/* Phase creating: the intent was recorded, CreateAccessKey may have run. */
static void decide_creating(const DecisionInput *in, Decision *d) {
        const StoreUser *su = in->su;
        const ListAccessKeysResult *l = in->keys;
        const AccessKeyMeta *orphan = NULL;
        unsigned candidates = 0;

        /* A create may have succeeded without its answer reaching the store:
         * an unheld key dated after the intent is that key. Only when there
         * is exactly one: two would mean someone else created one too, and
         * an Active key keyrotd does not hold is never touched on a guess. */
        for (size_t i = 0; i < l->n_keys; i++)
                if (!held(su, l->keys[i].access_key_id) &&
                    (usec_t) l->keys[i].create_date * USEC_PER_SEC + DECISION_CREATE_CLOCK_SLACK >=
                            (usec_t) su->phase_since) {
                        orphan = &l->keys[i];
                        candidates++;
                }
        if (candidates > 1) {
                set(d, DECISION_FAIL, NULL, "OrphanAmbiguous",
                    "interrupted while creating a key, and %u unknown keys appeared since; "
                    "refusing to guess which one keyrotd created",
                    candidates);
                return;
        }
        if (!orphan) {
                set(d, DECISION_RESET, NULL, NULL,
                    "rotation interrupted in phase creating before IAM created a key: nothing to delete");
                return;
        }
        /* keyrotd never saw that key's secret, so nobody can have used it if
         * it is ours: a key IAM says was used belongs to someone else, who
         * created it in the same minutes. */
        switch (in->orphan_use) {
        case ORPHAN_USE_UNKNOWN:
                set(d, DECISION_CHECK_ORPHAN, orphan->access_key_id, NULL,
                    "rotation interrupted in phase creating: is %s, created since, the key it made?",
                    orphan->access_key_id);
                return;
        case ORPHAN_USE_USED:
                set(d, DECISION_FAIL, orphan->access_key_id, "OrphanUsed",
                    "the unknown key %s, created about when an interrupted create ran, has been used: it is not "
                    "keyrotd's (whose secret nobody saw); delete or adopt it, then run again",
                    orphan->access_key_id);
                return;
        case ORPHAN_USE_NEVER:
                set(d, DECISION_DELETE_ORPHAN, orphan->access_key_id, NULL,
                    "rotation interrupted in phase creating: delete %s, created before the crash but never sealed",
                    orphan->access_key_id);
                return;
        }
}

void decide(const DecisionInput *in, Decision *d) {
        static const ListAccessKeysResult no_keys = {};
        static const StoreUser no_record = { .phase = STORE_PHASE_IDLE };
        DecisionInput input = *in;
        char when[INSTANT_STRING_MAX], dur[DURATION_STRING_MAX];

        *d = (Decision) { .when = in->now };
        input.keys = input.keys ?: &no_keys;
        input.su = input.su ?: &no_record;
        in = &input;
        const ListAccessKeysResult *l = in->keys;
        const StoreUser *su = in->su;

        if ((in->flags & ROTATION_ROLLBACK) || su->phase == STORE_PHASE_ROLLING_BACK) {
                decide_rollback(in, d);
                return;
        }
        if (su->phase == STORE_PHASE_IDLE) {
                decide_idle(in, d);
                return;
        }

        const AccessKeyMeta *pending = listed(l, &su->pending);
        const AccessKeyMeta *previous = listed(l, &su->previous);
        const AccessKeyMeta *cur = listed(l, &su->current);
        const char *phase = store_phase_to_string(su->phase) ?: "unknown";

        d->recovering = true;
        switch (su->phase) {
        case STORE_PHASE_CREATING:
                decide_creating(in, d);
                break;
        case STORE_PHASE_PENDING:
                /* Sealed but not verified: nothing was distributed. */
                if (pending)
                        set(d, DECISION_UNDO, pending->access_key_id, NULL,
                            "rotation interrupted in phase pending: delete the unverified new key %s, keep %s",
                            pending->access_key_id, su->current.access_key_id);
                else
                        set(d, DECISION_RESET, NULL, NULL,
                            "rotation interrupted in phase pending; its new key is already gone from IAM");
                break;
        case STORE_PHASE_VERIFIED:
                /* Some targets may hold the verified key already. */
                if (pending && pending->status != KEY_STATUS_ACTIVE) {
                        set(d, DECISION_UNDO, pending->access_key_id, NULL,
                            "rotation interrupted in phase verified, but the verified key %s is Inactive in IAM: "
                            "write %s back to the targets and delete %s",
                            pending->access_key_id, su->current.access_key_id, pending->access_key_id);
                        d->restore_targets = true;
                } else if (pending)
                        set(d, DECISION_DISTRIBUTE, pending->access_key_id, NULL,
                            "rotation interrupted in phase verified: write the verified key %s to the targets",
                            pending->access_key_id);
                else {
                        set(d, DECISION_RESET, NULL, NULL,
                            "rotation interrupted in phase verified and its new key is gone from IAM: write %s back "
                            "to the targets",
                            su->current.access_key_id);
                        d->restore_targets = true;
                }
                break;
        case STORE_PHASE_DISTRIBUTED:
        case STORE_PHASE_NOTIFIED:
                /* The targets hold the new key: deactivating the old one is
                 * only safe while the new one is Active. */
                if (!cur || cur->status != KEY_STATUS_ACTIVE) {
                        if (!previous) {
                                set(d, DECISION_FAIL, su->current.access_key_id, "NoWorkingKey",
                                    "both the new key %s and the old key are gone or Inactive in IAM; "
                                    "adopt a working key",
                                    su->current.access_key_id);
                                break;
                        }
                        decide_rollback(in, d);
                        if (d->action == DECISION_ROLLBACK)
                                set(d, DECISION_ROLLBACK, su->previous.access_key_id, NULL,
                                    "rotation interrupted in phase %s, but the new key %s is %s in IAM: roll back to "
                                    "%s",
                                    phase, su->current.access_key_id, cur ? "Inactive" : "missing",
                                    su->previous.access_key_id);
                        d->recovering = true;
                        break;
                }
                if (su->phase == STORE_PHASE_NOTIFIED && su->drain_next && previous &&
                    (in->flags & ROTATION_FORCE)) {
                        /* Rotate-now never deactivates a key that is in use. */
                        set(d, DECISION_NOT_APPLICABLE, previous->access_key_id, "Draining",
                            "the previous rotation still drains: its old key %s stays Active for the consumers "
                            "that may still use it; a new rotation waits until it is retired",
                            previous->access_key_id);
                        break;
                }
                if (su->phase == STORE_PHASE_NOTIFIED && previous) {
                        /* A parked drain is scheduled work, not an interrupted
                         * rotation: it resumes when it said it would. */
                        usec_t at = (usec_t) su->previous.handed_out_until;
                        const char *what = "rotation interrupted in phase notified";

                        /* drain: false since it parked: only the Expiration
                         * handed out still holds the old key. */
                        if (in->iu->drain.enabled)
                                at = MAX(at, MAX((usec_t) su->drain_next,
                                                 (usec_t) su->distributed_at + in->iu->drain.settle));
                        if (su->drain_next)
                                what = in->iu->drain.enabled ? "the old key waits for its consumers to leave it"
                                                             : "drain is off now for the old key that waited for its "
                                                               "consumers";
                        d->recovering = su->drain_next == 0;
                        d->when = MAX(at, in->now);
                        set(d, DECISION_DRAIN, previous->access_key_id, NULL, "%s: %s", what,
                            in->iu->drain.enabled ? "drain, then " : "");
                        add_old_key_fate(d, in->iu, previous->access_key_id);
                        break;
                }
                set(d, su->phase == STORE_PHASE_NOTIFIED ? DECISION_DRAIN : DECISION_NOTIFY,
                    previous ? previous->access_key_id : NULL, NULL, "rotation interrupted in phase %s: %s", phase,
                    su->phase == STORE_PHASE_DISTRIBUTED && in->iu->on_rotate ? "run on_rotate, " : "");
                add_old_key_fate(d, in->iu, previous ? previous->access_key_id : NULL);
                break;
        case STORE_PHASE_DEACTIVATED:
                d->recovering = false;
                if (!previous)
                        set(d, DECISION_COMPLETE, NULL, NULL,
                            "the old key is already gone from IAM: mark the rotation complete");
                else if ((usec_t) su->grace_until > in->now && (in->flags & ROTATION_FORCE))
                        /* Rotate now means now: the rollback window of the
                         * previous rotation ends early, then the new one starts. */
                        set(d, DECISION_DELETE_OLD, previous->access_key_id, NULL,
                            "rotate now: delete the previous rotation's old key %s (its rollback window ends), "
                            "then rotate",
                            previous->access_key_id);
                else if ((usec_t) su->grace_until > in->now) {
                        d->when = (usec_t) su->grace_until;
                        set(d, DECISION_WAIT, previous->access_key_id, "InGrace",
                            "the old key %s is Inactive in grace until %s (%s more); a later run deletes it",
                            previous->access_key_id, instant((usec_t) su->grace_until, when),
                            approx((usec_t) su->grace_until - in->now, dur));
                } else
                        set(d, DECISION_DELETE_OLD, previous->access_key_id, NULL,
                            "grace ended %s: delete the old key %s", instant((usec_t) su->grace_until, when),
                            previous->access_key_id);
                break;
        default:
                set(d, DECISION_FAIL, NULL, "UnknownPhase", "phase %s cannot be resumed by this version", phase);
                break;
        }
        /* Writing the held key back is only worth it when keyrotd has its
         * secret and nobody said it was lost: a lost key in the targets
         * helps no application. */
        if (d->restore_targets && (!has_secret(&su->current) || (in->flags & ROTATION_REPLACE_LOST)))
                d->restore_targets = false;
}

void decision_keys_from_store(const StoreUser *su, AccessKeyMeta buf[static 3], ListAccessKeysResult *ret) {
        const StoreKey *slots[] = { &su->current, &su->pending, &su->previous };

        *ret = (ListAccessKeysResult) { .keys = buf };
        for (size_t i = 0; i < ELEMENTSOF(slots); i++) {
                AccessKeyMeta *m = &buf[ret->n_keys];

                if (!store_key_is_set(slots[i]))
                        continue;
                *m = (AccessKeyMeta) {
                        .status = slots[i] == &su->previous && su->phase == STORE_PHASE_DEACTIVATED
                                          ? KEY_STATUS_INACTIVE
                                          : KEY_STATUS_ACTIVE,
                        .create_date = (time_t) (slots[i]->create_date / (int64_t) USEC_PER_SEC),
                };
                snprintf(m->access_key_id, sizeof m->access_key_id, "%s", slots[i]->access_key_id);
                snprintf(m->user_name, sizeof m->user_name, "%s", su->name ?: "");
                ret->n_keys++;
        }
}

static void forget_slot(StoreKey *k) {
        /* Not store_key_clear(): a dry run's copy shares the real secrets. */
        k->access_key_id[0] = 0;
        k->secret = NULL;
        k->create_date = 0;
}

static void drop_listed(ListAccessKeysResult *l, const char *id) {
        for (size_t i = 0; id && i < l->n_keys; i++)
                if (streq(l->keys[i].access_key_id, id)) {
                        memmove(&l->keys[i], &l->keys[i + 1], (l->n_keys - i - 1) * sizeof(AccessKeyMeta));
                        l->n_keys--;
                        return;
                }
}

bool decision_forget_vanished(StoreUser *su, const ListAccessKeysResult *keys) {
        bool changed = false;

        if (store_key_is_set(&su->previous) && !list_access_keys_find(keys, su->previous.access_key_id)) {
                store_key_clear(&su->previous);
                changed = true;
        }
        if (store_key_is_set(&su->pending) && !list_access_keys_find(keys, su->pending.access_key_id)) {
                store_key_clear(&su->pending);
                changed = true;
        }
        return changed;
}

void decision_assume(const Decision *d, StoreUser *su, ListAccessKeysResult *keys) {
        if (!decision_then_decides(d->action))
                return;
        if (d->action != DECISION_RESET)
                drop_listed(keys, d->key_id);
        if (store_key_is_set(&su->pending) && !list_access_keys_find(keys, su->pending.access_key_id))
                forget_slot(&su->pending);
        if (store_key_is_set(&su->previous) && !list_access_keys_find(keys, su->previous.access_key_id))
                forget_slot(&su->previous);
        su->phase = STORE_PHASE_IDLE;
        su->rotation_id[0] = 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * test-decide — the decision table: every store phase against the key
 * situations IAM can report, with the request flags that change the
 * answer. Each row names the action, the key it is about, the code and a
 * piece of the reason the operator reads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rotation/decide.h"
#include "tap.h"

#define NOW ((usec_t) 1800000000 * USEC_PER_SEC)
#define MAX_AGE (90 * USEC_PER_DAY)
#define PHASE_SINCE (NOW - 10 * USEC_PER_MINUTE)

/* Key ids by letter: c current, n new (pending), o old (previous), x and y
 * keys keyrotd does not hold. */
static const char *key_id(char letter) {
        switch (letter) {
        case 'c': return "AKIACURRENT000000001";
        case 'n': return "AKIANEWKEY0000000002";
        case 'o': return "AKIAOLDKEY0000000003";
        case 'x': return "AKIAUNKNOWN000000004";
        case 'y': return "AKIAUNKNOWN000000005";
        default: return NULL;
        }
}

typedef struct Row {
        const char *name;
        StorePhase phase;
        /* Store slots: a letter or 0; '!' after the letter: no secret held. */
        const char *cur, *pend, *prev;
        /* IAM: "c+ n- x+*": letter, + Active / - Inactive, * created after
         * the phase began (else a year before). */
        const char *iam;
        unsigned flags;
        bool due;      /* current key older than max_age */
        bool in_grace; /* grace_until in the future */
        OrphanUse orphan;
        bool no_record;

        DecisionAction want;
        char want_key; /* letter, or 0 for none */
        const char *want_code;
        bool want_restore;
        const char *want_text;
} Row;

static const Row rows[] = {
        /* ---- idle ---- */
        { "idle, not due", STORE_PHASE_IDLE, "c", 0, 0, "c+", 0, false, false, 0, false,
          DECISION_NONE, 0, "NotDue", false, "not due: due in" },
        { "idle, due", STORE_PHASE_IDLE, "c", 0, 0, "c+", 0, true, false, 0, false,
          DECISION_ROTATE, 'c', NULL, false, "due: key is" },
        { "idle, not due, --force", STORE_PHASE_IDLE, "c", 0, 0, "c+", ROTATION_FORCE, false, false, 0, false,
          DECISION_ROTATE, 'c', NULL, false, "--force (not due until" },
        { "idle, due, an unheld Active key", STORE_PHASE_IDLE, "c", 0, 0, "c+ x+", 0, true, false, 0, false,
          DECISION_FAIL, 'x', "UnheldActiveKey", false, "refusing to touch it" },
        { "idle, due, an unheld Inactive key", STORE_PHASE_IDLE, "c", 0, 0, "c+ x-", 0, true, false, 0, false,
          DECISION_ROTATE, 'c', NULL, false, "delete-stale: the Inactive key AKIAUNKNOWN000000004" },
        { "idle, not due, an unheld Active key", STORE_PHASE_IDLE, "c", 0, 0, "c+ x+", 0, false, false, 0, false,
          DECISION_NONE, 0, "NotDue", false, "not due" },
        { "idle, held key gone from IAM", STORE_PHASE_IDLE, "c", 0, 0, "x-", 0, true, false, 0, false,
          DECISION_FAIL, 'c', "KeyMissing", false, "no longer exists in IAM" },
        { "idle, held key Inactive", STORE_PHASE_IDLE, "c", 0, 0, "c-", 0, true, false, 0, false,
          DECISION_FAIL, 'c', "KeyInactive", false, "is Inactive in IAM" },
        { "idle, no key held", STORE_PHASE_IDLE, 0, 0, 0, "x+", 0, true, false, 0, false,
          DECISION_FAIL, 0, "NoKeyHeld", false, "keyrotctl adopt" },
        { "no store record", STORE_PHASE_IDLE, 0, 0, 0, "x+", ROTATION_FORCE, true, false, 0, true,
          DECISION_FAIL, 0, "NoKeyHeld", false, "--replace-lost" },
        { "idle, no secret held", STORE_PHASE_IDLE, "c!", 0, 0, "c+", 0, true, false, 0, false,
          DECISION_FAIL, 'c', "NoSecretHeld", false, "replace it with 'keyrotctl rotate" },
        { "idle, a second held key", STORE_PHASE_IDLE, "c", "n", 0, "c+ n+", 0, true, false, 0, false,
          DECISION_FAIL, 'n', "NoRoom", false, "no room for a new one" },
        { "idle, recovery only", STORE_PHASE_IDLE, "c", 0, 0, "c+", ROTATION_RECOVER_ONLY, true, false, 0, false,
          DECISION_NONE, 0, "RecoveryOnly", false, "no interrupted rotation" },
        { "idle, rollback asked", STORE_PHASE_IDLE, "c", 0, 0, "c+", ROTATION_ROLLBACK, true, false, 0, false,
          DECISION_NOT_APPLICABLE, 0, "NothingToRollBack", false, "nothing to roll back" },
        { "replace-lost: held without secret", STORE_PHASE_IDLE, "c!", 0, 0, "c+", ROTATION_REPLACE_LOST, false,
          false, 0, false, DECISION_ROTATE, 'c', NULL, false, "replacing AKIACURRENT000000001" },
        { "replace-lost: an unheld Active key", STORE_PHASE_IDLE, 0, 0, 0, "x+", ROTATION_REPLACE_LOST, false,
          false, 0, false, DECISION_ROTATE, 'x', NULL, false, "replacing AKIAUNKNOWN000000004" },
        { "replace-lost: no store record", STORE_PHASE_IDLE, 0, 0, 0, "x+ y-", ROTATION_REPLACE_LOST, false,
          false, 0, true, DECISION_ROTATE, 'x', NULL, false, "delete-stale: the Inactive key AKIAUNKNOWN000000005" },
        { "replace-lost: nothing lost", STORE_PHASE_IDLE, "c", 0, 0, "c+", ROTATION_REPLACE_LOST, false, false, 0,
          false, DECISION_FAIL, 'c', "NothingLost", false, "nothing is lost" },
        { "replace-lost: two lost keys", STORE_PHASE_IDLE, "c!", 0, 0, "c+ x+", ROTATION_REPLACE_LOST, false,
          false, 0, false, DECISION_FAIL, 0, "SeveralLostKeys", false, "2 Active keys keyrotd holds no secret" },
        { "replace-lost: no key at all", STORE_PHASE_IDLE, 0, 0, 0, "", ROTATION_REPLACE_LOST, false, false, 0,
          false, DECISION_ROTATE, 0, NULL, false, "replacing no key" },
        { "replace-lost: held Inactive key dropped", STORE_PHASE_IDLE, "c!", 0, 0, "c- x+", ROTATION_REPLACE_LOST,
          false, false, 0, false, DECISION_ROTATE, 'x', NULL, false,
          "delete-stale: the Inactive key AKIACURRENT000000001" },

        /* ---- creating ---- */
        { "creating, no new key", STORE_PHASE_CREATING, "c", 0, 0, "c+", 0, false, false, 0, false,
          DECISION_RESET, 0, NULL, false, "before IAM created a key" },
        { "creating, one new key, unasked", STORE_PHASE_CREATING, "c", 0, 0, "c+ x+*", 0, false, false,
          ORPHAN_USE_UNKNOWN, false, DECISION_CHECK_ORPHAN, 'x', NULL, false, "the key it made?" },
        { "creating, one new key, never used", STORE_PHASE_CREATING, "c", 0, 0, "c+ x+*", 0, false, false,
          ORPHAN_USE_NEVER, false, DECISION_DELETE_ORPHAN, 'x', NULL, false, "never sealed" },
        { "creating, one new key, used", STORE_PHASE_CREATING, "c", 0, 0, "c+ x+*", 0, false, false,
          ORPHAN_USE_USED, false, DECISION_FAIL, 'x', "OrphanUsed", false, "has been used" },
        { "creating, two new keys", STORE_PHASE_CREATING, "c", 0, 0, "x+* y-*", 0, false, false, 0, false,
          DECISION_FAIL, 0, "OrphanAmbiguous", false, "refusing to guess" },
        { "creating, an old unheld key only", STORE_PHASE_CREATING, "c", 0, 0, "c+ x+", 0, false, false, 0, false,
          DECISION_RESET, 0, NULL, false, "nothing to delete" },

        /* ---- pending ---- */
        { "pending, new key listed", STORE_PHASE_PENDING, "c", "n", 0, "c+ n+*", 0, false, false, 0, false,
          DECISION_UNDO, 'n', NULL, false, "delete the unverified new key AKIANEWKEY0000000002" },
        { "pending, new key gone", STORE_PHASE_PENDING, "c", "n", 0, "c+", 0, false, false, 0, false,
          DECISION_RESET, 0, NULL, false, "already gone from IAM" },
        { "pending, rollback asked", STORE_PHASE_PENDING, "c", "n", 0, "c+ n+", ROTATION_ROLLBACK, false, false, 0,
          false, DECISION_NOT_APPLICABLE, 0, "NothingToRollBack", false, "within its grace period" },

        /* ---- verified ---- */
        { "verified, new key Active", STORE_PHASE_VERIFIED, "c", "n", 0, "c+ n+", 0, false, false, 0, false,
          DECISION_DISTRIBUTE, 'n', NULL, false, "phase verified: write the verified key AKIANEWKEY0000000002" },
        { "verified, new key Inactive", STORE_PHASE_VERIFIED, "c", "n", 0, "c+ n-", 0, false, false, 0, false,
          DECISION_UNDO, 'n', NULL, true, "is Inactive in IAM" },
        { "verified, new key gone", STORE_PHASE_VERIFIED, "c", "n", 0, "c+", 0, false, false, 0, false,
          DECISION_RESET, 0, NULL, true, "write AKIACURRENT000000001 back" },

        /* ---- distributed / notified: current = new, previous = old ---- */
        { "distributed, both Active", STORE_PHASE_DISTRIBUTED, "n", 0, "o", "n+ o+", 0, false, false, 0, false,
          DECISION_NOTIFY, 'o', NULL, false, "phase distributed: deactivate the old key AKIAOLDKEY0000000003" },
        { "distributed, old key gone", STORE_PHASE_DISTRIBUTED, "n", 0, "o", "n+", 0, false, false, 0, false,
          DECISION_NOTIFY, 0, NULL, false, "the old key is already gone" },
        { "distributed, new key gone", STORE_PHASE_DISTRIBUTED, "n", 0, "o", "o+", 0, false, false, 0, false,
          DECISION_ROLLBACK, 'o', NULL, false, "is missing in IAM: roll back to AKIAOLDKEY0000000003" },
        { "distributed, new Inactive, old gone", STORE_PHASE_DISTRIBUTED, "n", 0, "o", "n-", 0, false, false, 0,
          false, DECISION_FAIL, 'n', "NoWorkingKey", false, "adopt a working key" },
        { "distributed, new gone, old secret lost", STORE_PHASE_DISTRIBUTED, "n", 0, "o!", "o+", 0, false, false,
          0, false, DECISION_FAIL, 'o', "RollbackNoSecret", false, "never held the secret" },
        { "distributed, rollback asked", STORE_PHASE_DISTRIBUTED, "n", 0, "o", "n+ o+", ROTATION_ROLLBACK, false,
          false, 0, false, DECISION_ROLLBACK, 'o', NULL, false, "re-activate the old key AKIAOLDKEY0000000003" },
        { "notified, both Active", STORE_PHASE_NOTIFIED, "n", 0, "o", "n+ o+", 0, false, false, 0, false,
          DECISION_DRAIN, 'o', NULL, false, "phase notified: deactivate the old key" },
        { "notified, new key Inactive", STORE_PHASE_NOTIFIED, "n", 0, "o", "n- o+", 0, false, false, 0, false,
          DECISION_ROLLBACK, 'o', NULL, false, "is Inactive in IAM: roll back" },

        /* ---- deactivated: the old key in grace ---- */
        { "deactivated, in grace", STORE_PHASE_DEACTIVATED, "n", 0, "o", "n+ o-", 0, false, true, 0, false,
          DECISION_WAIT, 'o', "InGrace", false, "is Inactive in grace until" },
        { "deactivated, in grace, --force", STORE_PHASE_DEACTIVATED, "n", 0, "o", "n+ o-", ROTATION_FORCE, true,
          true, 0, false, DECISION_WAIT, 'o', "InGrace", false, "a later run deletes it" },
        { "deactivated, grace over", STORE_PHASE_DEACTIVATED, "n", 0, "o", "n+ o-", 0, false, false, 0, false,
          DECISION_DELETE_OLD, 'o', NULL, false, "delete the old key AKIAOLDKEY0000000003" },
        { "deactivated, old key gone", STORE_PHASE_DEACTIVATED, "n", 0, "o", "n+", 0, false, true, 0, false,
          DECISION_COMPLETE, 0, NULL, false, "mark the rotation complete" },
        { "deactivated, rollback", STORE_PHASE_DEACTIVATED, "n", 0, "o", "n+ o-", ROTATION_ROLLBACK, false, true, 0,
          false, DECISION_ROLLBACK, 'o', NULL, false, "write it back to 2 targets" },
        { "deactivated, rollback, old key gone", STORE_PHASE_DEACTIVATED, "n", 0, "o", "n+", ROTATION_ROLLBACK,
          false, true, 0, false, DECISION_FAIL, 0, "RollbackOldKeyGone", false, "the old key is gone from IAM" },
        { "deactivated, rollback, old secret lost", STORE_PHASE_DEACTIVATED, "n", 0, "o!", "n+ o-",
          ROTATION_ROLLBACK, false, true, 0, false, DECISION_FAIL, 'o', "RollbackNoSecret", false,
          "it replaced a lost key" },

        /* ---- rolling back: current = new, previous = old until it takes over ---- */
        { "rolling back, old key listed", STORE_PHASE_ROLLING_BACK, "n", 0, "o", "n+ o-", 0, false, false, 0, false,
          DECISION_ROLLBACK, 'o', NULL, false,
          "rollback interrupted: re-activate the old key AKIAOLDKEY0000000003, write it back to 2 targets" },
        { "rolling back, old key took over", STORE_PHASE_ROLLING_BACK, "o", "n", 0, "n+ o+", 0, false, false, 0,
          false, DECISION_ROLLBACK_FINISH, 'n', NULL, false, "delete the rolled-back key AKIANEWKEY0000000002" },
        { "rolling back, rolled-back key gone", STORE_PHASE_ROLLING_BACK, "o", "n", 0, "o+", 0, false, false, 0,
          false, DECISION_ROLLBACK_FINISH, 0, NULL, false, "mark it complete" },
        { "rolling back, old key vanished", STORE_PHASE_ROLLING_BACK, "n", 0, "o", "n+", 0, false, false, 0, false,
          DECISION_ROLLBACK_ABANDON, 'n', "RollbackOldKeyGone", false, "AKIANEWKEY0000000002 stays current" },

        /* ---- a phase this version does not know ---- */
        { "unknown phase", _STORE_PHASE_MAX, "c", 0, 0, "c+", 0, false, false, 0, false,
          DECISION_FAIL, 0, "UnknownPhase", false, "cannot be resumed by this version" },
};

static const Row *row_named(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(rows); i++)
                if (streq(rows[i].name, name))
                        return &rows[i];
        fprintf(stderr, "no row named '%s'\n", name);
        abort();
}

typedef struct Fixture {
        Secret *secret;
        StoreUser su;
        AccessKeyMeta keys[8];
        ListAccessKeysResult list;
        InventoryTarget targets[2];
        InventoryUser iu;
} Fixture;

static void slot(Fixture *f, StoreKey *k, const char *spec, usec_t created) {
        if (!spec)
                return;
        snprintf(k->access_key_id, sizeof k->access_key_id, "%s", key_id(spec[0]));
        k->secret = spec[1] == '!' ? NULL : f->secret;
        k->create_date = (int64_t) created;
}

static void fixture(Fixture *f, const Row *r) {
        usec_t created = r->due ? NOW - MAX_AGE - USEC_PER_DAY : NOW - USEC_PER_DAY;

        f->iu = (InventoryUser) {
                .name = (char *) "app",
                .max_age = MAX_AGE,
                .grace = USEC_PER_HOUR,
                .verify = { .bucket = (char *) "data", .check = VERIFY_CHECK_LIST },
                .targets = f->targets,
                .n_targets = 2,
        };
        f->su = (StoreUser) {
                .name = (char *) "app",
                .phase = r->phase,
                .phase_since = (int64_t) PHASE_SINCE,
                .grace_until = (int64_t) (r->in_grace ? NOW + 30 * USEC_PER_MINUTE : NOW - USEC_PER_MINUTE),
        };
        slot(f, &f->su.current, r->cur, created);
        slot(f, &f->su.pending, r->pend, PHASE_SINCE);
        slot(f, &f->su.previous, r->prev, NOW - 2 * MAX_AGE);

        f->list = (ListAccessKeysResult) { .keys = f->keys };
        for (const char *p = r->iam; p && *p;) {
                AccessKeyMeta *m = &f->keys[f->list.n_keys++];

                snprintf(m->access_key_id, sizeof m->access_key_id, "%s", key_id(p[0]));
                m->status = p[1] == '+' ? KEY_STATUS_ACTIVE : KEY_STATUS_INACTIVE;
                p += 2;
                m->create_date = (time_t) ((*p == '*' ? PHASE_SINCE + USEC_PER_MINUTE : NOW - 365 * USEC_PER_DAY) /
                                           USEC_PER_SEC);
                while (*p == '*' || *p == ' ')
                        p++;
        }
}

static DecisionInput input(const Fixture *f, const Row *r) {
        return (DecisionInput) {
                .iu = &f->iu,
                .su = r->no_record ? NULL : &f->su,
                .keys = &f->list,
                .flags = r->flags,
                .now = NOW,
                .orphan_use = r->orphan,
        };
}

static void test_table(Fixture *f) {
        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                const Row *r = &rows[i];
                Decision d;

                *f = (Fixture) { .secret = f->secret };
                fixture(f, r);
                const DecisionInput in = input(f, r);
                decide(&in, &d);

                if (!ok(d.action == r->want, "%s: %s", r->name, decision_action_to_string(r->want)))
                        diag("got %s: %s", decision_action_to_string(d.action), d.reason);
                ok_eq_str(d.key_id, r->want_key ? key_id(r->want_key) : NULL, r->name);
                ok_eq_str(d.code, r->want_code, r->name);
                ok(d.restore_targets == r->want_restore, "%s: restore_targets %d", r->name, r->want_restore);
                if (!ok(strstr(d.reason, r->want_text) != NULL, "%s: reason says '%s'", r->name, r->want_text))
                        diag("reason: %s", d.reason);
                ok((d.when == USEC_INFINITY) ==
                           (d.action == DECISION_FAIL || d.action == DECISION_NOT_APPLICABLE ||
                            (d.action == DECISION_NONE && r->flags & ROTATION_RECOVER_ONLY)),
                   "%s: when is infinite only for what never comes due", r->name);
        }
}

/* After an undo the engine decides again on what the undo left; the dry
 * run gets that state from decision_assume(). */
static void test_chains(Fixture *f) {
        static const struct {
                const char *row;
                DecisionAction then;
        } chains[] = {
                { "pending, new key listed", DECISION_NONE },
                { "creating, one new key, never used", DECISION_NONE },
                { "verified, new key gone", DECISION_NONE },
                { "verified, new key Inactive", DECISION_NONE },
                { "creating, no new key", DECISION_NONE },
                { "creating, an old unheld key only", DECISION_NONE },
        };

        for (size_t i = 0; i < ELEMENTSOF(chains); i++) {
                const Row *r = row_named(chains[i].row);
                const char *name = chains[i].row;
                Decision d, next;

                *f = (Fixture) { .secret = f->secret };
                fixture(f, r);
                DecisionInput in = input(f, r);
                decide(&in, &d);
                ok(decision_then_decides(d.action), "%s: %s decides again", name,
                   decision_action_to_string(d.action));
                decision_assume(&d, &f->su, &f->list);
                ok(f->su.phase == STORE_PHASE_IDLE && !store_key_is_set(&f->su.pending), "%s: idle, no pending key",
                   name);
                ok(f->su.current.secret == f->secret, "%s: the held secret is untouched", name);
                in.orphan_use = ORPHAN_USE_UNKNOWN;
                decide(&in, &next);
                if (!ok(next.action == chains[i].then, "%s: then %s", name,
                        decision_action_to_string(chains[i].then)))
                        diag("got %s: %s", decision_action_to_string(next.action), next.reason);
        }
        ok(!decision_then_decides(DECISION_ROTATE) && !decision_then_decides(DECISION_WAIT) &&
                   !decision_then_decides(DECISION_CHECK_ORPHAN),
           "only undo-like actions decide again");
}

static void test_when(Fixture *f) {
        Decision d;

        *f = (Fixture) { .secret = f->secret };
        fixture(f, row_named("idle, not due"));
        DecisionInput in = input(f, row_named("idle, not due"));
        decide(&in, &d);
        ok(d.when == (usec_t) f->su.current.create_date + MAX_AGE, "not due: when = created + max_age");

        *f = (Fixture) { .secret = f->secret };
        fixture(f, row_named("deactivated, in grace"));
        in = input(f, row_named("deactivated, in grace"));
        decide(&in, &d);
        ok(d.action == DECISION_WAIT && d.when == (usec_t) f->su.grace_until, "in grace: when = grace_until");

        *f = (Fixture) { .secret = f->secret };
        fixture(f, row_named("idle, due"));
        in = input(f, row_named("idle, due"));
        decide(&in, &d);
        ok(d.action == DECISION_ROTATE && d.when <= NOW, "due: when is not in the future");
}

static void test_keys_from_store(Fixture *f) {
        AccessKeyMeta buf[3];
        ListAccessKeysResult l;
        Decision d;

        *f = (Fixture) { .secret = f->secret };
        fixture(f, row_named("deactivated, in grace"));
        decision_keys_from_store(&f->su, buf, &l);
        ok(l.n_keys == 2, "store view: current and previous");
        ok(list_access_keys_find(&l, key_id('o')) && list_access_keys_find(&l, key_id('o'))->status == KEY_STATUS_INACTIVE,
           "store view: the deactivated old key is Inactive");
        DecisionInput in = { .iu = &f->iu, .su = &f->su, .keys = &l, .now = NOW };
        decide(&in, &d);
        ok(d.action == DECISION_WAIT, "store view: status shows the grace");

        *f = (Fixture) { .secret = f->secret };
        fixture(f, row_named("idle, not due"));
        decision_keys_from_store(&f->su, buf, &l);
        in = (DecisionInput) { .iu = &f->iu, .su = &f->su, .keys = &l, .now = NOW };
        decide(&in, &d);
        ok(l.n_keys == 1 && d.action == DECISION_NONE, "store view: an idle user is not due");
}

static void test_forget_vanished(Fixture *f) {
        *f = (Fixture) { .secret = f->secret };
        fixture(f, row_named("pending, new key gone"));
        f->su.pending.secret = secret_dup("pending", 7);
        ok(decision_forget_vanished(&f->su, &f->list), "a vanished pending key is forgotten");
        ok(!store_key_is_set(&f->su.pending) && !f->su.pending.secret, "pending slot empty");
        ok(!decision_forget_vanished(&f->su, &f->list), "nothing more to forget");
        ok(store_key_is_set(&f->su.current), "the current slot stays");
}

int main(void) {
        Fixture f = {};

        if (secret_init() < 0)
                return 1;
        f.secret = secret_dup("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", 40);
        test_table(&f);
        test_chains(&f);
        test_when(&f);
        test_keys_from_store(&f);
        test_forget_vanished(&f);
        f.secret = secret_free(f.secret);
        return tap_done();
}

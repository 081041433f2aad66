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

#include "decision-table.h"
#include "tap.h"

#define NOW ((usec_t) 1800000000 * USEC_PER_SEC)
#define MAX_AGE (90 * USEC_PER_DAY)
#define PHASE_SINCE (NOW - 10 * USEC_PER_MINUTE)

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
        if (r->parked) {
                f->iu.drain = (InventoryDrain){ .enabled = true, .wait = USEC_PER_HOUR, .settle = 5 * USEC_PER_MINUTE };
                f->su.distributed_at = (int64_t) (NOW - USEC_PER_HOUR);
                f->su.drain_next = (int64_t) (NOW + 15 * USEC_PER_MINUTE);
        }

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

        *f = (Fixture) { .secret = f->secret };
        fixture(f, row_named("notified, drain parked"));
        in = input(f, row_named("notified, drain parked"));
        decide(&in, &d);
        ok(d.action == DECISION_DRAIN && d.when == (usec_t) f->su.drain_next, "parked drain: when = drain_next");

        /* drain: false since it parked: the drain's time no longer holds. */
        f->iu.drain.enabled = false;
        decide(&in, &d);
        ok(d.action == DECISION_DRAIN && d.when == NOW && strstr(d.reason, "drain is off now"),
           "parked drain, drain turned off: due now (%s)", d.reason);

        /* ...but an Expiration handed out with the old key still does. */
        f->su.previous.handed_out_until = (int64_t) (NOW + 7 * USEC_PER_MINUTE);
        decide(&in, &d);
        ok(d.action == DECISION_DRAIN && d.when == NOW + 7 * USEC_PER_MINUTE,
           "parked drain, drain off, key handed out: when = its Expiration");
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

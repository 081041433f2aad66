/* SPDX-License-Identifier: MIT */
/*
 * decision-table.h — the rows of decide()'s table, shared by test-decide
 * (the pure function) and test-engine (the engine and the dry run act on
 * each row as decide() says).
 */
#pragma once

#include <stdio.h>
#include <stdlib.h>

#include "rotation/decide.h"

/* Key ids by letter: c current, n new (pending), o old (previous), x and y
 * keys keyrotd does not hold. */
static inline const char *key_id(char letter) {
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
        bool parked; /* notified: a drain parked (drain_next set) */
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
        { "verified, new key gone, the held key lost", STORE_PHASE_VERIFIED, "c!", "n", 0, "c+",
          ROTATION_REPLACE_LOST, false, false, 0, false, DECISION_RESET, 0, NULL, false, "new key is gone" },

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
        { "notified, drain parked", STORE_PHASE_NOTIFIED, "n", 0, "o", "n+ o+", 0, false, false, 0, false,
          DECISION_DRAIN, 'o', NULL, false, "waits for its consumers to leave it", true },
        { "notified, drain parked, --force", STORE_PHASE_NOTIFIED, "n", 0, "o", "n+ o+", ROTATION_FORCE, false,
          false, 0, false, DECISION_NOT_APPLICABLE, 'o', "Draining", false, "the previous rotation still drains",
          true },

        /* ---- deactivated: the old key in grace ---- */
        { "deactivated, in grace", STORE_PHASE_DEACTIVATED, "n", 0, "o", "n+ o-", 0, false, true, 0, false,
          DECISION_WAIT, 'o', "InGrace", false, "is Inactive in grace until" },
        { "deactivated, in grace, --force", STORE_PHASE_DEACTIVATED, "n", 0, "o", "n+ o-", ROTATION_FORCE, true,
          true, 0, false, DECISION_DELETE_OLD, 'o', NULL, false, "rotate now: delete the previous rotation's old key" },
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

static inline const Row *row_named(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(rows); i++)
                if (streq(rows[i].name, name))
                        return &rows[i];
        fprintf(stderr, "no row named '%s'\n", name);
        abort();
}


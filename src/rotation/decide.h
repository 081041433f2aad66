/* SPDX-License-Identifier: MIT */
/*
 * decide.h — what to do next for one user: one pure function of the store
 * record, IAM's list of the user's keys, the request and the time
 * (docs/DESIGN.md §1). The rotation engine acts on it, the dry run prints
 * it, and status shows it, so the three cannot disagree.
 *
 * The store record's phase says how far an interrupted rotation got; the
 * key list says what IAM holds. decide() reconciles the two: it finishes
 * what can be finished, undoes what must be undone, and only then, for an
 * idle user, judges whether a new rotation is due and safe. No I/O, no
 * clock, no allocation: every input is in DecisionInput.
 *
 * Several actions are followed by a fresh decision (decision_then_decides()):
 * the engine carries them out, commits, and calls decide() again on what
 * is then true; the dry run asks decision_assume() for that state instead.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>

#include "aws/types.h"
#include "basic/util.h"
#include "inventory/inventory.h"
#include "store/store.h"

/* Recovery of the creating phase: a key IAM dates this long before the
 * intent was recorded may still be ours (IAM's clock and ours disagree a
 * little). */
#define DECISION_CREATE_CLOCK_SLACK (5 * USEC_PER_MINUTE)

typedef enum RotationFlags {
        ROTATION_FORCE = 1 << 0,        /* rotate even when the key is not due */
        ROTATION_RECOVER_ONLY = 1 << 1, /* finish/undo an interrupted rotation, start nothing new */
        ROTATION_ROLLBACK = 1 << 2,     /* within grace: re-activate the old key, restore targets, drop the new */
        /* keyrotctl rotate --replace-lost: the store does not hold the secret
         * of the user's Active key (lost store, or never adopted). That key
         * is replaced like a current one, deactivated and deleted only after
         * the new key verified and reached every target; no rollback to it. */
        ROTATION_REPLACE_LOST = 1 << 3,
} RotationFlags;

typedef enum DecisionAction {
        DECISION_NONE,             /* nothing to do: not due (or recovery only) */
        DECISION_ROTATE,           /* delete stale Inactive keys, create, verify, distribute, ... */
        DECISION_CHECK_ORPHAN,     /* ask GetAccessKeyLastUsed of key_id, then decide again */
        DECISION_DELETE_ORPHAN,    /* key_id was made by an interrupted create and never used: delete it */
        DECISION_UNDO,             /* delete the unverified new key key_id (restore_targets first) */
        DECISION_RESET,            /* nothing of the interrupted rotation is left in IAM: record idle */
        DECISION_DISTRIBUTE,       /* resume: write the verified key key_id to the targets */
        DECISION_NOTIFY,           /* resume: run on_rotate */
        DECISION_DRAIN,            /* resume after on_rotate: drain, then deactivate the old key */
        DECISION_DELETE_OLD,       /* the old key's grace is over: delete key_id */
        DECISION_WAIT,             /* the old key key_id is Inactive, in grace */
        DECISION_COMPLETE,         /* the old key is already gone: record the rotation complete */
        DECISION_ROLLBACK,         /* (re)start rollback: re-activate key_id, restore targets, delete the new key */
        DECISION_ROLLBACK_FINISH,  /* rollback interrupted after the old key took over: delete key_id (may be NULL) */
        DECISION_ROLLBACK_ABANDON, /* the old key vanished mid-rollback: the new one stays current (a failure) */
        DECISION_FAIL,             /* a rotation would be unsafe or cannot succeed; reason says why */
        DECISION_NOT_APPLICABLE,   /* the request does not apply (rollback outside a grace) */
        _DECISION_ACTION_MAX,
        _DECISION_ACTION_INVALID = -EINVAL,
} DecisionAction;

/* "none", "rotate", "check-orphan", ... */
const char *decision_action_to_string(DecisionAction a);

/* What GetAccessKeyLastUsed said of the key an interrupted create may have made. */
typedef enum OrphanUse {
        ORPHAN_USE_UNKNOWN, /* not asked yet */
        ORPHAN_USE_NEVER,
        ORPHAN_USE_USED,
} OrphanUse;

typedef struct DecisionInput {
        const InventoryUser *iu;          /* max_age; grace, targets and hooks for the reason */
        const StoreUser *su;              /* NULL: the store has no record of the user */
        const ListAccessKeysResult *keys; /* IAM's view, all pages; NULL: no keys */
        unsigned flags;                   /* RotationFlags */
        usec_t now;                       /* CLOCK_REALTIME */
        OrphanUse orphan_use;             /* for DECISION_CHECK_ORPHAN's key */
} DecisionInput;

#define DECISION_REASON_MAX 512

typedef struct Decision {
        DecisionAction action;
        /* The key the action is about (see DecisionAction), borrowed from the
         * input's store record or key list; NULL when none. */
        const char *key_id;
        /* UNDO and RESET: the targets may hold the new key; write the
         * current one back first. */
        bool restore_targets;
        /* The store record is mid-rotation: this is recovery of an
         * interrupted rotation, not a new one. */
        bool recovering;
        /* When the action is due (CLOCK_REALTIME): the next rotation for
         * DECISION_NONE, the end of grace for DECISION_WAIT, now for work to
         * do now; USEC_INFINITY for a failure or a request that does not apply. */
        usec_t when;
        /* A stable code for the outcome ("NotDue", "UnheldActiveKey", ...):
         * the audit's KEYROTD_ERROR for DECISION_FAIL. */
        const char *code;
        /* One sentence for the operator. */
        char reason[DECISION_REASON_MAX];
} Decision;

/**
 * decide() - what to do next for one user.
 * @in: the user's store record and IAM's keys, the request and the time.
 * @ret: the decision; always filled.
 *
 * Store slots whose key IAM no longer lists count as empty (deleted out of
 * band, or our own delete went through before a crash); the engine clears
 * them with decision_forget_vanished() before it acts.
 */
void decide(const DecisionInput *in, Decision *ret);

/* After this action, does the engine decide afresh (in the same run)? */
bool decision_then_decides(DecisionAction a);

/* The user's current key is older than max_age at @now. */
bool decision_is_due(const StoreUser *su, usec_t max_age, usec_t now);

/*
 * decision_keys_from_store() - the key list IAM would give if it agreed
 * with the store: the held keys, the old one Inactive once deactivated.
 * For status, which decides without asking IAM. @buf holds the entries.
 */
void decision_keys_from_store(const StoreUser *su, AccessKeyMeta buf[static 3], ListAccessKeysResult *ret);

/* Empty @su's pending and previous slots whose key @keys no longer lists.
 * Returns whether anything changed. */
bool decision_forget_vanished(StoreUser *su, const ListAccessKeysResult *keys);

/**
 * decision_assume() - the state a decision leaves behind when carried out
 * successfully, for the dry run: @su and @keys are the dry run's own
 * copies. @su is a shallow copy of a store record: slots are emptied by
 * forgetting their pointers, never by freeing or wiping (the secrets
 * belong to the real record). Only for actions decision_then_decides().
 */
void decision_assume(const Decision *d, StoreUser *su, ListAccessKeysResult *keys);

/* SPDX-License-Identifier: MIT */
/*
 * plan.h — `keyrotd --once --dry-run`: what a real `--once` run would do to
 * each inventory user, found out with read-only calls only (docs/DESIGN.md §2):
 * ListAccessKeys and GetAccessKeyLastUsed as keyrotd's own identity, the
 * user's S3 check signed with the key keyrotd holds (a put:KEY check is
 * replaced by ListObjectsV2: a dry run writes nothing), and whether the
 * targets could be written (parent directory writable, no symlink).
 *
 * The verdict is decide()'s (rotation/decide.h), the function the engine
 * acts on: an interrupted rotation is finished or undone first, then the
 * user is rotated when due (or forced), left alone when not, or blocked
 * where a real run would stop with an error.
 *
 * Nothing is created, changed or committed: the store is only read (the
 * caller opens it without taking the state lock, so a dry run works beside
 * a running daemon), no file is opened for writing, no secret is printed.
 */
#pragma once

#include <stdbool.h>
#include <stdio.h>
#include <systemd/sd-event.h>

#include "aws/client.h"
#include "inventory/inventory.h"
#include "store/store.h"

typedef enum PlanAction {
        PLAN_NONE,       /* not due: nothing to do */
        PLAN_ROTATE,     /* due, or --force */
        PLAN_FINISH,     /* an interrupted rotation is carried to its end */
        PLAN_UNDO,       /* an interrupted rotation is undone, then decided afresh */
        PLAN_DELETE_OLD, /* the old key's grace is over: it is deleted */
        PLAN_WAIT,       /* the old key is Inactive, in grace */
        PLAN_BLOCKED,    /* a real run would fail for this user */
        _PLAN_ACTION_MAX,
        _PLAN_ACTION_INVALID = -1,
} PlanAction;

/* "none", "rotate", "finish", "undo", "delete-old", "wait", "blocked". */
const char *plan_action_to_string(PlanAction a);

/* plan_run() outcome: the plan was printed and at least one user is blocked. */
#define PLAN_SOME_BLOCKED 1

/**
 * plan_run() - inspect every inventory user and print the plan.
 * @event: the loop @aws runs on; driven here until every user is inspected.
 * @aws: AWS client with keyrotd's own identity.
 * @store: the store, only read.
 * @inv: the inventory; users are inspected concurrently, up to
 *       defaults.max_parallel at once, and printed in inventory order.
 * @force: plan as `--once --force` would act.
 * @out: where the table goes: a header line, then one line per user with
 *       USER, CURRENT KEY, AGE, LAST USED, ACTION and REASON columns.
 *
 * Returns 0 when no user is blocked, PLAN_SOME_BLOCKED when one is (both
 * after printing the plan), or a negative errno when the plan could not be
 * made (-ENOMEM, a failing event loop); then nothing is printed.
 */
int plan_run(sd_event *event, AwsClient *aws, const Store *store, const Inventory *inv, bool force, FILE *out);

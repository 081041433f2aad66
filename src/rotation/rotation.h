/* SPDX-License-Identifier: MIT */
/*
 * rotation.h — the rotation state machine of docs/DESIGN.md §1.
 *
 * A rotation is a chain of asynchronous steps on one sd-event loop; each
 * phase change is one store commit, made before the next AWS call depends
 * on it, so a crash at any instant leaves a store record from which the
 * next start finishes or undoes the rotation (rotation_engine_submit with
 * TRIGGER_RECOVERY). Rotations of different users run concurrently, up to
 * max_parallel; one user never has two.
 *
 * Knows nothing of sockets, signals or scheduling: callers submit users and
 * get one report per submission.
 */
#pragma once

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "aws/client.h"
#include "aws/s3.h"
#include "inventory/inventory.h"
#include "rotation/decide.h"
#include "store/store.h"

typedef enum RotationTrigger {
        TRIGGER_SCHEDULE,
        TRIGGER_SIGNAL,
        TRIGGER_SOCKET,
        TRIGGER_RECOVERY,
        TRIGGER_ONCE,
        TRIGGER_MANUAL,
        _TRIGGER_MAX,
        _TRIGGER_INVALID = -1,
} RotationTrigger;

const char *rotation_trigger_to_string(RotationTrigger t);

typedef enum RotationOutcome {
        ROTATION_COMPLETED, /* new key in service; old key deleted or Inactive in grace */
        ROTATION_NOT_DUE,   /* nothing to do (includes: still in grace) */
        ROTATION_FAILED,    /* the user still has its working key; error says why */
        ROTATION_PARKED,    /* stopped at a safe point on request; resumes on next start */
        _ROTATION_OUTCOME_MAX,
} RotationOutcome;

const char *rotation_outcome_to_string(RotationOutcome o);

typedef struct RotationReport {
        const char *user;
        RotationOutcome outcome;
        const char *error;      /* NULL unless failed */
        const char *old_key_id; /* "" when none */
        const char *new_key_id; /* "" when none */
        bool in_grace;          /* the old key is Inactive, to be deleted later */
        bool draining;          /* the old key stays Active while consumers use it (a parked drain) */
        /* What this run did, for a person or a script: "rotated" (a key it
         * created is in service), "rolled-back", "finished" (an earlier
         * rotation carried to its end: recovery, or a grace that ended),
         * "not-due", "in-grace", "failed", "parked". */
        const char *action;
} RotationReport;

typedef void (*rotation_done_t)(const RotationReport *report, void *userdata);

typedef struct RotationEngine RotationEngine;
typedef struct CommitWaiter CommitWaiter;

/* The loop, the AWS client, the store and the inventory are borrowed and
 * must outlive the engine. The caller blocks SIGCHLD (hooks are reaped
 * through sd-event). */
int rotation_engine_new(sd_event *event, AwsClient *aws, Store *store, const Inventory *inv, RotationEngine **ret);
RotationEngine *rotation_engine_free(RotationEngine *e);
static inline void rotation_engine_freep(RotationEngine **e) {
        rotation_engine_free(*e);
}

/* Rotations submitted from now on use inv; those already queued or running
 * keep the inventory they started with, which must stay alive until
 * rotation_engine_busy() is 0. */
void rotation_engine_set_inventory(RotationEngine *e, const Inventory *inv);

/* Call @done with 0 once a commit holding the store as it is now is
 * durable, or with a negative errno when it failed (-ECANCELED: the
 * engine was freed first). Rides on the rotations' group commit. @done
 * may run before this returns (when no timer can be had); 0 or -ENOMEM. */
typedef void (*rotation_committed_t)(int result, void *userdata);
int rotation_engine_commit(RotationEngine *e, rotation_committed_t done, void *userdata);

/* Queue a rotation of user (an inventory user). -EBUSY when that user is
 * already queued or running, -ENOENT when the inventory does not name it. */
int rotation_engine_submit(RotationEngine *e, const char *user, RotationTrigger trigger, unsigned flags,
                           rotation_done_t done, void *userdata);
/* Rotations queued or running. */
unsigned rotation_engine_busy(const RotationEngine *e);
/* Park every rotation at its next safe point (never between create and
 * seal) and start no queued one; each reports ROTATION_PARKED. */
void rotation_engine_stop(RotationEngine *e);

/* Test builds: die like kill -9 at the named point when $KEYROTD_CRASH_AT
 * names it. A no-op in release builds. */
void crash_point(const char *name);

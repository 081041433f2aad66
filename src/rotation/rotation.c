/* SPDX-License-Identifier: MIT */
/*
 * The rotation state machine. Each Rotation walks a fixed chain of steps;
 * every AWS call, timer and hook ends in a callback that picks the next
 * step. The store record's phase is the only state that survives a crash,
 * so the first step of every rotation (inspect) reconciles that phase with
 * ListAccessKeys and decides where to pick up.
 *
 * The one invariant: at every instant the user has an Active key whose
 * secret the store holds, and the targets hold one that works. Hence the
 * order: seal before anything else, verify before distributing, distribute
 * before deactivating, deactivate before deleting.
 */
#include "rotation/rotation.h"

#include <errno.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "audit/audit.h"
#include "aws/iam.h"
#include "aws/s3.h"
#include "basic/duration.h"
#include "basic/log.h"
#include "config.h"
#include "rotation/hook.h"
#include "rotation/verify.h"
#include "store/committer.h"
#include "targets/targets.h"

/* How long a phase change may wait for other rotations' changes to share
 * its store write: small beside a rotation's seconds of verification. */
#define COMMIT_WINDOW (5 * USEC_PER_MSEC)
/* CreateAccessKey calls one run makes while their outcomes stay unknown. */
#define ROTATION_CREATE_ATTEMPTS 3U
/* drain: GetAccessKeyLastUsed is polled this often (doubling) within drain.wait. */
#define DRAIN_POLL_MIN (5 * USEC_PER_SEC)
#define DRAIN_POLL_MAX (60 * USEC_PER_SEC)
/* A wait longer than this is not spent holding a rotation slot: the drain
 * is parked in the store (drain_next) and picked up again by the schedule,
 * or by the next --once. */
#define DRAIN_INLINE_MAX (60 * USEC_PER_SEC)
/* drain.on_timeout keep: how often the old key is looked at afterwards. */
#define DRAIN_RECHECK (15 * USEC_PER_MINUTE)

typedef enum Step {
        STEP_INSPECT,
        STEP_DELETE_STALE,
        STEP_CREATE,
        STEP_VERIFY,
        STEP_DISTRIBUTE,
        STEP_NOTIFY,
        STEP_DRAIN,
        STEP_DEACTIVATE,
        STEP_DELETE_OLD,
        STEP_CHECK_ORPHAN,
        STEP_UNDO_DELETE_NEW,
        STEP_ROLLBACK_ACTIVATE,
        STEP_ROLLBACK_VERIFY,
        STEP_ROLLBACK_RESTORE,
        STEP_ROLLBACK_DELETE_NEW,
        STEP_DONE,
} Step;

typedef struct Rotation Rotation;

struct RotationEngine {
        sd_event *event;
        AwsClient *aws;
        Store *store;
        const Inventory *inv;
        Rotation *running; /* linked list */
        Rotation *queue_head, *queue_tail;
        unsigned n_running, n_queued;
        bool stopping;
        /* Group commit: rotations waiting for their phase to be durable,
         * queued (commit_head) or in the snapshot being written (writing). */
        Rotation *commit_head, *commit_tail;
        unsigned n_committing;
        sd_event_source *commit_flush;
        Committer *committer;
        Rotation *writing;
        unsigned n_writing;
        /* Others waiting for the store as it was when they asked
         * (rotation_engine_commit()): queued, and in the write. */
        CommitWaiter *waiters, *waiters_writing;
        CommitWaiter **waiters_tail; /* where the next one goes: &last->next, or &waiters */
};

struct CommitWaiter {
        CommitWaiter *next;
        rotation_committed_t done;
        void *userdata;
};

typedef void (*committed_t)(Rotation *r);
typedef void (*commit_failed_t)(Rotation *r, int error);

struct Rotation {
        RotationEngine *engine;
        Rotation *next;
        char *user;
        const InventoryUser *iu;
        StoreUser *su;
        RotationTrigger trigger;
        unsigned flags;
        rotation_done_t done;
        void *userdata;

        Step step;
        AwsCall *call;
        /* While waiting in the engine's commit queue (commit_then()). */
        Rotation *commit_next;
        StorePhase commit_phase;
        committed_t committed;
        commit_failed_t commit_failed;
        char request_id[128]; /* of the AWS call whose outcome is being committed */
        sd_event_source *timer;
        Hook *hook;

        ListAccessKeysResult keys; /* the last inspection */
        size_t stale_index;
        AwsCredentials *new_creds;
        AwsCredentials *rollback_creds; /* the old key, verified again after a rollback re-activated it */
        Verification *verification;
        usec_t drain_poll;
        OrphanUse orphan_use;   /* recovery of phase creating: what IAM says of the key in new_key_id */
        char error_code[128]; /* of this failure, for the audit's KEYROTD_ERROR */
        unsigned creates;     /* CreateAccessKey calls this run made */

        char rotation_id[37]; /* kept for the audit after the store clears its copy */
        RotationOutcome outcome;
        bool recovering; /* undoing an interrupted rotation, then deciding afresh */
        bool rotated;    /* this run put a new key in service */
        bool created;    /* this run created a key (a rotation, not only the end of one) */
        bool rolled_back;
        bool draining;   /* the old key stays Active while consumers use it: parked */
        bool in_grace;
        char error[512];
        char old_key_id[STORE_ACCESS_KEY_ID_MAX + 1];
        char new_key_id[STORE_ACCESS_KEY_ID_MAX + 1];
};

static const char *const trigger_names[_TRIGGER_MAX] = {
        [TRIGGER_SCHEDULE] = "schedule", [TRIGGER_SIGNAL] = "signal", [TRIGGER_SOCKET] = "socket",
        [TRIGGER_RECOVERY] = "recovery", [TRIGGER_ONCE] = "once",     [TRIGGER_MANUAL] = "manual",
};

const char *rotation_trigger_to_string(RotationTrigger t) {
        return t >= 0 && t < _TRIGGER_MAX ? trigger_names[t] : NULL;
}

static const char *const outcome_names[_ROTATION_OUTCOME_MAX] = {
        [ROTATION_COMPLETED] = "completed",
        [ROTATION_NOT_DUE] = "not-due",
        [ROTATION_FAILED] = "failed",
        [ROTATION_PARKED] = "parked",
};

const char *rotation_outcome_to_string(RotationOutcome o) {
        return o >= 0 && o < _ROTATION_OUTCOME_MAX ? outcome_names[o] : NULL;
}

void crash_point(const char *name) {
#if KEYROTD_TEST_HOOKS
        const char *at = getenv("KEYROTD_CRASH_AT");

        if (at && streq(at, name)) {
                fprintf(stderr, "crash_point: dying at %s\n", name);
                raise(SIGKILL);
        }
#else
        (void) name;
#endif
}

/* Test builds: make the store commit at the named point fail with ENOSPC,
 * as a filesystem that fills up at exactly that instant would. */
static int fail_point(const char *name) {
#if KEYROTD_TEST_HOOKS
        const char *at = getenv("KEYROTD_FAIL_AT");

        if (at && streq(at, name))
                return -ENOSPC;
#else
        (void) name;
#endif
        return 0;
}

static void step(Rotation *r);
static void set_failure(Rotation *r, const char *code, const char *fmt, ...) _printf_(3, 4);
static void fail(Rotation *r, const char *code, const char *fmt, ...) _printf_(3, 4);

static usec_t now_realtime(void) {
        return now_usec(CLOCK_REALTIME);
}

static void audit(Rotation *r, AuditEvent ev, const char *result, const char *error, const char *request_id,
                  const char *message) {
        AuditRecord rec = {
                .event = ev,
                .user = r->user,
                .rotation_id = r->rotation_id,
                .old_key_id = r->old_key_id,
                .new_key_id = r->new_key_id,
                .trigger = rotation_trigger_to_string(r->trigger),
                .result = result,
                .error = error,
                .request_id = request_id,
                .message = message,
                .failure = result && streq(result, "failed"),
                .priority = result && (streq(result, "warning") || streq(result, "refused")) ? 4 : 0,
        };
        if (rec.failure && r->su && r->engine->inv->defaults.alert_after > 0 &&
            r->su->failures + 1 >= r->engine->inv->defaults.alert_after)
                rec.critical = true;
        audit_emit(&rec);
}

static void new_rotation_id(char id[static 37]) {
        uint8_t b[16];

        randombytes_buf(b, sizeof b);
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        snprintf(id, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
                 b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

/*
 * Group commit. A step that changes the store does not write it: it enters
 * the new phase in memory, queues itself, and continues in `then` only once
 * a commit that includes the change has returned. One snapshot of the store
 * serves the whole queue: taken at once when every running rotation is
 * waiting for a commit (nobody else can join), else after at most
 * COMMIT_WINDOW, at idle priority, so that the answers of other rotations
 * arriving meanwhile queue their changes too. The committer's thread writes
 * it (two fsyncs and a rename) while the loop goes on; changes queued
 * meanwhile go into the next snapshot, taken as soon as this one is
 * durable. Concurrent rotations share one write and its fsyncs instead of
 * one each, and nobody waits on the disk who need not. Nothing external
 * happens between a change and its commit, so the crash argument is
 * unchanged: each step still follows a durable record of the one before.
 *
 * Test builds: crash points "before-commit-PHASE" and "after-commit-PHASE"
 * bracket the write for each rotation in it; KEYROTD_FAIL_AT naming one
 * fails the whole write, as a full filesystem would.
 */
static void commits_written(int result, void *userdata);

static void run_waiters(CommitWaiter *w, int k) {
        while (w) {
                CommitWaiter *next = w->next;

                w->done(k, w->userdata);
                free(w);
                w = next;
        }
}

static void run_batch(Rotation *batch, int k) {
        char point[64];

        while (batch) {
                Rotation *r = batch;

                batch = r->commit_next;
                r->commit_next = NULL;
                if (k < 0) {
                        r->commit_failed(r, k);
                        continue;
                }
                snprintf(point, sizeof point, "after-commit-%s", store_phase_to_string(r->commit_phase));
                crash_point(point);
                r->committed(r);
        }
}

static int flush_commits(sd_event_source *s, uint64_t usec, void *userdata) {
        RotationEngine *e = userdata;
        Rotation *batch;
        CommitWaiter *waiters;
        StoreSnapshot *snap = NULL;
        char point[64];
        int k = 0;

        e->commit_flush = sd_event_source_disable_unref(e->commit_flush);
        if ((!e->commit_head && !e->waiters) || committer_busy(e->committer))
                return 0; /* commits_written() flushes again */
        batch = e->commit_head;
        e->commit_head = e->commit_tail = NULL;
        e->n_committing = 0;
        waiters = e->waiters;
        e->waiters = NULL;
        for (Rotation *r = batch; r; r = r->commit_next) {
                snprintf(point, sizeof point, "before-commit-%s", store_phase_to_string(r->commit_phase));
                crash_point(point);
                if (k >= 0)
                        k = fail_point(point);
        }
        if (k >= 0)
                k = store_snapshot(e->store, &snap);
        if (k >= 0 && e->committer) {
                e->writing = batch;
                e->waiters_writing = waiters;
                for (Rotation *r = batch; r; r = r->commit_next)
                        e->n_writing++;
                if (committer_submit(e->committer, snap, commits_written, e) >= 0)
                        return 0;
                e->writing = NULL;
                e->waiters_writing = NULL;
                e->n_writing = 0;
        }
        if (k >= 0)
                /* No thread to be had: write here. */
                k = store_snapshot_done(e->store, snap, store_snapshot_write(e->store, snap));
        run_batch(batch, k);
        run_waiters(waiters, k);
        return 0;
}

static void commits_written(int result, void *userdata) {
        RotationEngine *e = userdata;
        Rotation *batch = e->writing;
        CommitWaiter *waiters = e->waiters_writing;

        e->writing = NULL;
        e->waiters_writing = NULL;
        e->n_writing = 0;
        run_batch(batch, result);
        run_waiters(waiters, result);
        /* Changes queued during the write: every one waited long enough. */
        if ((e->commit_head || e->waiters) && !e->commit_flush)
                (void) flush_commits(NULL, 0, e);
}

static void commit_failed_default(Rotation *r, int error) {
        fail(r, "StoreCommit", "cannot commit the store: %s", strerror(-error));
}

/* Continue in then once the store as it is now is durable; on a failed
 * commit in failed (NULL: fail the rotation, deleting a pending new key). */
static void schedule_flush(RotationEngine *e);

static void commit_queue(Rotation *r, committed_t then, commit_failed_t failed) {
        RotationEngine *e = r->engine;

        r->commit_phase = r->su->phase;
        r->committed = then;
        r->commit_failed = failed ?: commit_failed_default;
        r->commit_next = NULL;
        if (e->commit_tail)
                e->commit_tail->commit_next = r;
        else
                e->commit_head = r;
        e->commit_tail = r;
        e->n_committing++;
        schedule_flush(e);
}

/* A snapshot at once when every running rotation waits for one, else
 * after COMMIT_WINDOW. */
static void schedule_flush(RotationEngine *e) {
        /* While a write is in flight the next snapshot waits for it anyway. */
        if (committer_busy(e->committer))
                return;
        /* 0: already due, i.e. at the next iteration of the loop. */
        usec_t when = e->n_committing + e->n_writing >= e->n_running ? 0 : now_usec(CLOCK_MONOTONIC) + COMMIT_WINDOW;
        if (e->commit_flush) {
                if (when == 0 && sd_event_source_set_time(e->commit_flush, 0) < 0)
                        goto alone;
                return;
        }
        if (sd_event_add_time(e->event, &e->commit_flush, CLOCK_MONOTONIC, when, 1, flush_commits, e) < 0 ||
            sd_event_source_set_priority(e->commit_flush, SD_EVENT_PRIORITY_IDLE) < 0)
                goto alone;
        return;
alone:
        /* Cannot wait for company: commit now. */
        e->commit_flush = sd_event_source_disable_unref(e->commit_flush);
        (void) flush_commits(NULL, 0, e);
}

int rotation_engine_commit(RotationEngine *e, rotation_committed_t done, void *userdata) {
        CommitWaiter *w = calloc(1, sizeof *w);

        if (!w)
                return -ENOMEM;
        *w = (CommitWaiter){ .done = done, .userdata = userdata };
        /* Answered in the order they asked. */
        if (!e->waiters)
                e->waiters_tail = &e->waiters;
        *e->waiters_tail = w;
        e->waiters_tail = &w->next;
        schedule_flush(e);
        return 0;
}

/* Enter phase and continue in then once it is durable. */
static void commit_then(Rotation *r, StorePhase phase, committed_t then, commit_failed_t failed) {
        r->su->phase = phase;
        r->su->phase_since = (int64_t) now_realtime();
        commit_queue(r, then, failed);
}

static void rotation_free(Rotation *r) {
        if (!r)
                return;
        if (r->call)
                aws_call_cancel(r->call);
        sd_event_source_disable_unref(r->timer);
        verify_cancel(r->verification);
        if (r->hook)
                hook_cancel(r->hook);
        list_access_keys_result_done(&r->keys);
        aws_credentials_unref(r->new_creds);
        aws_credentials_unref(r->rollback_creds);
        free(r->user);
        free(r);
}

static void engine_start_queued(RotationEngine *e);

static const char *report_action(const Rotation *r) {
        switch (r->outcome) {
        case ROTATION_COMPLETED:
                return r->rolled_back ? "rolled-back" : r->created && r->rotated ? "rotated" : "finished";
        case ROTATION_NOT_DUE:
                return r->in_grace ? "in-grace" : "not-due";
        case ROTATION_PARKED:
                return "parked";
        default:
                return "failed";
        }
}

static void finish(Rotation *r) {
        RotationEngine *e = r->engine;
        RotationReport rep = {
                .user = r->user,
                .outcome = r->outcome,
                .error = r->outcome == ROTATION_FAILED ? r->error : NULL,
                .old_key_id = r->old_key_id,
                .new_key_id = r->new_key_id,
                .in_grace = r->in_grace,
                .draining = r->draining,
                .action = report_action(r),
        };

        /* Unlink first: the callback may submit this user again. */
        for (Rotation **p = &e->running; *p; p = &(*p)->next)
                if (*p == r) {
                        *p = r->next;
                        break;
                }
        e->n_running--;
        if (r->done)
                r->done(&rep, r->userdata);
        rotation_free(r);
        engine_start_queued(e);
}

static void hook_output(const char *line, bool is_stderr, void *userdata) {
        Rotation *r = userdata;

        /* The hook's words reach the log sanitised like any other text. */
        log_full(is_stderr ? LOG_WARNING : LOG_INFO, "hook of %s: %s", r->user, line);
}

static int hook_env(Rotation *r, const char *result, char ***ret) {
        char **env = calloc(7, sizeof(char *));
        int k = 0;

        if (!env)
                return -ENOMEM;
        if (asprintf_safe(&env[0], "KEYROTD_USER=%s", r->user) < 0 ||
            asprintf_safe(&env[1], "KEYROTD_OLD_KEY_ID=%s", r->old_key_id) < 0 ||
            asprintf_safe(&env[2], "KEYROTD_NEW_KEY_ID=%s", r->new_key_id) < 0 ||
            asprintf_safe(&env[3], "KEYROTD_RESULT=%s", result) < 0 ||
            asprintf_safe(&env[4], "KEYROTD_ROTATION_ID=%s", r->su ? r->su->rotation_id : "") < 0 ||
            asprintf_safe(&env[5], "KEYROTD_TRIGGER=%s", rotation_trigger_to_string(r->trigger)) < 0)
                k = -ENOMEM;
        if (k < 0) {
                strv_free(env);
                return k;
        }
        *ret = env;
        return 0;
}

/* Why a hook did not succeed, in a few words. */
static void hook_failure_text(const HookResult *res, char *buf, size_t size) {
        if (res->error < 0)
                snprintf(buf, size, "could not start: %s", strerror(-res->error));
        else if (res->timed_out)
                snprintf(buf, size, "timed out");
        else if (res->signal)
                snprintf(buf, size, "killed by signal %d", res->signal);
        else
                snprintf(buf, size, "exit status %d", res->exit_status);
}

static void failure_hook_done(const HookResult *res, void *userdata) {
        Rotation *r = userdata;
        char why[64];

        r->hook = NULL;
        if (!hook_result_ok(res)) {
                hook_failure_text(res, why, sizeof why);
                audit(r, AUDIT_HOOK_RUN, "failed", "HookFailed", NULL, "on_failure hook failed");
                log_error("on_failure hook of %s failed (%s)", r->user, why);
        }
        finish(r);
}

/* The failure is recorded (or could not be): run on_failure, report. */
static void failure_recorded(Rotation *r) {
        _cleanup_strv_free_ char **env = NULL;
        int k;

        if (!r->iu || !r->iu->on_failure) {
                finish(r);
                return;
        }
        k = hook_env(r, "failed", &env);
        if (k >= 0)
                k = hook_run(r->engine->event, r->iu->on_failure, env, r->iu->hook_timeout, hook_output,
                             failure_hook_done, r, &r->hook);
        if (k < 0) {
                HookResult none = { .exit_status = -1, .error = k };
                failure_hook_done(&none, r);
        }
}

static void failure_unrecorded(Rotation *r, int error) {
        log_error_errno(error, "Cannot record the failed rotation of %s in the store %s: %m", r->user,
                        store_path(r->engine->store));
        audit(r, AUDIT_ROTATION_FAILED, "failed", "StoreCommit", NULL, "the failure could not be recorded in the store");
        failure_recorded(r);
}

/* The end of a failed rotation: audit, record, run on_failure, report. */
static void conclude_failure(Rotation *r) {
        r->outcome = ROTATION_FAILED;
        /* Audited before counting: audit() judges "critical" by this failure
         * joining the ones already counted. */
        audit(r, AUDIT_ROTATION_FAILED, "failed", r->error_code[0] ? r->error_code : NULL, NULL, r->error);
        if (!r->su) {
                failure_recorded(r);
                return;
        }
        r->su->failures++;
        if (store_set_text(&r->su->last_error, r->error) < 0 || store_set_text(&r->su->last_result, "failed") < 0)
                log_error("Cannot keep the error of %s's rotation: out of memory", r->user);
        commit_queue(r, failure_recorded, failure_unrecorded);
}

/* Record why this rotation fails: the operator's sentence, and the stable
 * code of this failure (an AWS error code, or keyrotd's own for a local
 * one) for the audit's KEYROTD_ERROR, replacing any earlier one. */
static void set_failure(Rotation *r, const char *code, const char *fmt, ...) {
        va_list ap;

        snprintf(r->error_code, sizeof r->error_code, "%s", code ?: "");
        va_start(ap, fmt);
        vsnprintf(r->error, sizeof r->error, fmt, ap);
        va_end(ap);
}

static void fail(Rotation *r, const char *code, const char *fmt, ...) {
        va_list ap;

        snprintf(r->error_code, sizeof r->error_code, "%s", code ?: "");
        va_start(ap, fmt);
        vsnprintf(r->error, sizeof r->error, fmt, ap);
        va_end(ap);

        /* A new key that exists in IAM but is not in service must go. */
        if (r->su && store_key_is_set(&r->su->pending)) {
                r->step = STEP_UNDO_DELETE_NEW;
                step(r);
                return;
        }
        conclude_failure(r);
}

static void park(Rotation *r) {
        r->outcome = ROTATION_PARKED;
        snprintf(r->error, sizeof r->error, "stopped at a safe point");
        finish(r);
}

static void succeed(Rotation *r, RotationOutcome outcome) {
        r->outcome = outcome;
        finish(r);
}

/* Drop a key we just deleted from the inspection we decide on. */
static void forget_key(ListAccessKeysResult *l, const char *id) {
        for (size_t i = 0; i < l->n_keys; i++)
                if (streq(l->keys[i].access_key_id, id)) {
                        memmove(&l->keys[i], &l->keys[i + 1], (l->n_keys - i - 1) * sizeof(AccessKeyMeta));
                        l->n_keys--;
                        return;
                }
}

static bool held(const StoreUser *su, const char *id) {
        return streq(su->current.access_key_id, id) || streq(su->pending.access_key_id, id) ||
               streq(su->previous.access_key_id, id);
}

/* A slot can name a key whose secret keyrotd never had: the lost key that
 * --replace-lost replaces, or a create interrupted before sealing. */
static bool key_has_secret(const StoreKey *k) {
        return store_key_is_set(k) && k->secret && k->secret->len > 0;
}

static void write_targets_with(Rotation *r, const StoreKey *key, char *err, size_t err_size, int *ret) {
        *ret = 0;
        if (r->iu->n_targets > 0 && !key_has_secret(key)) {
                snprintf(err, err_size, "keyrotd holds no secret for key %s", key->access_key_id);
                *ret = -ENOKEY;
                return;
        }
        /* Every target judged before the first is written: a target that
         * would be refused (a symlink on its path, an untrusted owner)
         * then leaves all of them untouched, rather than the ones before
         * it written and restored. */
        for (size_t i = 0; i < r->iu->n_targets; i++) {
                TargetSpec spec = target_spec_from_inventory(&r->iu->targets[i]);
                _cleanup_free_ char *e = NULL;
                int k = target_check(&spec, &e);

                if (k < 0) {
                        snprintf(err, err_size, "%s", e ?: strerror(-k));
                        *ret = k;
                        return;
                }
        }
        for (size_t i = 0; i < r->iu->n_targets; i++) {
                const InventoryTarget *t = &r->iu->targets[i];
                TargetSpec spec = target_spec_from_inventory(t);
                _cleanup_free_ char *e = NULL;
                char point[48];

                snprintf(point, sizeof point, "before-target-%zu", i);
                crash_point(point);
                int k = target_write(&spec, key->access_key_id, key->secret, &e);
                if (k < 0) {
                        snprintf(err, err_size, "%s", e ?: strerror(-k));
                        *ret = k;
                        return;
                }
        }
}

/* ---- the steps -------------------------------------------------------- */

static void on_inspected(AwsCall *call, AwsResult *res, void *userdata);

static void step_inspect(Rotation *r) {
        int k = iam_list_access_keys(r->engine->aws, NULL, r->user, on_inspected, r, &r->call);
        if (k < 0)
                fail(r, "Internal", "cannot list access keys: %s", strerror(-k));
}

/*
 * Rollback, within grace: the old key comes back and the new one goes.
 * Order: record the intent, re-activate the old key, restore every target
 * to it, and only then delete the new key; each step is idempotent, so a
 * crash anywhere is finished by running the same steps again.
 */
static void rollback_begin(Rotation *r);

/* On failure paths whose error is already in r->error. */
static void conclude_failure_uncommitted(Rotation *r, int error) {
        size_t n = strlen(r->error);

        snprintf(r->error + n, sizeof r->error - n, " (and the store commit failed: %s)", strerror(-error));
        conclude_failure(r);
}

static void rollback_begin(Rotation *r) {
        StoreUser *su = r->su;

        /* In the rollback's records the "old" key is the one dropped and the
         * "new" one the key that comes back. */
        snprintf(r->old_key_id, sizeof r->old_key_id, "%s", su->current.access_key_id);
        snprintf(r->new_key_id, sizeof r->new_key_id, "%s", su->previous.access_key_id);
        audit(r, AUDIT_ROLLBACK, NULL, NULL, NULL, "rolling back to the previous key");
        r->step = STEP_ROLLBACK_ACTIVATE;
        step(r);
}

static void on_rollback_activated(AwsCall *call, AwsResult *res, void *userdata) {
        Rotation *r = userdata;

        r->call = NULL;
        if (res->error < 0) {
                set_failure(r, aws_result_code(res), "cannot re-activate the old key: %s", aws_result_error_code(res));
                conclude_failure(r);
                return;
        }
        r->step = STEP_ROLLBACK_VERIFY;
        step(r);
}

static void on_rollback_verified(const VerifyResult *res, void *userdata) {
        Rotation *r = userdata;

        r->verification = NULL;
        if (res->outcome == VERIFY_OK) {
                r->step = STEP_ROLLBACK_RESTORE;
                step(r);
                return;
        }
        if (res->outcome != VERIFY_ERROR)
                audit(r, AUDIT_VERIFY_FAILED, "failed", res->code, res->request_id[0] ? res->request_id : NULL,
                      res->outcome == VERIFY_TIMEOUT ? "verification of the re-activated old key timed out" : NULL);
        /* The targets still hold the newer key, which is still Active. */
        set_failure(r, res->code, "%s", res->message);
        conclude_failure(r);
}

/*
 * A key made Active again takes effect in IAM as unevenly as a new one:
 * it goes back to the targets only once it works, checked as a new key is
 * (the deny probes passed when it was new, and its policy is the user's).
 */
static void step_rollback_verify(Rotation *r) {
        const StoreKey *k = &r->su->previous;
        int e;

        r->rollback_creds = aws_credentials_unref(r->rollback_creds);
        e = aws_credentials_new(k->access_key_id, secret_str(k->secret), k->secret ? k->secret->len : 0, NULL, 0,
                                "old-key", &r->rollback_creds);
        if (e >= 0) {
                const VerifyOptions o = {
                        .verify = &r->iu->verify,
                        .user = r->user,
                        .creds = r->rollback_creds,
                        .subject = "the re-activated old key",
                        .no_probes = true,
                };
                e = verify_start(r->engine->aws, &o, on_rollback_verified, r, &r->verification);
        }
        if (e < 0) {
                set_failure(r, "Internal", "cannot start verifying the re-activated old key: %s", strerror(-e));
                conclude_failure(r);
        }
}

static void step_rollback_activate(Rotation *r) {
        int k = iam_update_access_key(r->engine->aws, r->user, r->su->previous.access_key_id, KEY_STATUS_ACTIVE,
                                      on_rollback_activated, r, &r->call);
        if (k < 0) {
                set_failure(r, "Internal", "cannot request the re-activation of the old key: %s", strerror(-k));
                conclude_failure(r);
        }
}

/* A failed commit that must not delete the key in pending (a rollback's). */
static void conclude_commit_failure(Rotation *r, int error) {
        set_failure(r, "StoreCommit", "cannot commit the store: %s", strerror(-error));
        conclude_failure(r);
}

static void rollback_distributed(Rotation *r);
static void key_in_service(Rotation *r);

static void step_rollback_restore(Rotation *r) {
        StoreUser *su = r->su;
        StoreKey dropped = {};
        char err[256];
        int k;

        crash_point("before-rollback-targets");
        write_targets_with(r, &su->previous, err, sizeof err, &k);
        if (k < 0) {
                set_failure(r, "TargetWrite", "cannot restore a target: %s", err);
                conclude_failure(r);
                return;
        }
        /*
         * The old key is current again, and every target holds it; the
         * rolled-back key becomes the one to retire, by the steps a
         * rotation retires its old key with: on_rotate (consumers move
         * back), drain and the Expiration it was handed out with, then
         * deactivation, and deletion after grace. A consumer that had
         * already moved to it keeps working until then.
         */
        store_key_move(&dropped, &su->current);
        store_key_move(&su->current, &su->previous);
        store_key_move(&su->previous, &dropped);
        r->rolled_back = true;
        key_in_service(r);
        commit_then(r, STORE_PHASE_DISTRIBUTED, rollback_distributed, conclude_commit_failure);
}

static void rollback_distributed(Rotation *r) {
        audit(r, AUDIT_ROLLBACK, "ok", NULL, NULL,
              "the old key is back in every target; the rolled-back key is retired like an old key");
        r->step = STEP_NOTIFY;
        step(r);
}

static void rollback_completed(Rotation *r) {
        audit(r, AUDIT_ROLLBACK, "ok", NULL, NULL, "rollback completed");
        succeed(r, ROTATION_COMPLETED);
}

static void on_rollback_deleted(AwsCall *call, AwsResult *res, void *userdata) {
        Rotation *r = userdata;
        StoreUser *su = r->su;

        r->call = NULL;
        if (res->error < 0 && !streq(res->aws_error.code, "NoSuchEntity")) {
                set_failure(r, aws_result_code(res), "cannot delete the rolled-back key: %s",
                            aws_result_error_code(res));
                conclude_failure(r);
                return;
        }
        audit(r, AUDIT_NEW_KEY_DELETED, "ok", NULL, res->request_id, "rolled-back key deleted");
        store_key_clear(&su->pending);
        su->rotation_id[0] = 0;
        su->grace_until = 0;
        if (store_set_text(&su->last_result, "rolled back") < 0)
                log_oom();
        commit_then(r, STORE_PHASE_IDLE, rollback_completed, conclude_commit_failure);
}

static void step_rollback_delete_new(Rotation *r) {
        int k;

        if (!store_key_is_set(&r->su->pending)) {
                AwsResult none = { .op = AWS_OP_DELETE_ACCESS_KEY };
                on_rollback_deleted(NULL, &none, r);
                return;
        }
        crash_point("before-rollback-delete");
        k = iam_delete_access_key(r->engine->aws, r->user, r->su->pending.access_key_id, on_rollback_deleted, r,
                                  &r->call);
        if (k < 0) {
                set_failure(r, "Internal", "cannot request the deletion of the rolled-back key: %s", strerror(-k));
                conclude_failure(r);
        }
}

static void act(Rotation *r);

/* When decide() says the targets may hold the key about to go, the held
 * one goes back first, so no application is left with a deleted key.
 * Returns false after failing the rotation. */
static bool restore_targets_if(Rotation *r, const Decision *d) {
        char err[256];
        int k;

        if (!d->restore_targets)
                return true;
        write_targets_with(r, &r->su->current, err, sizeof err, &k);
        if (k < 0) {
                fail(r, "TargetWrite", "cannot restore targets: %s", err);
                return false;
        }
        return true;
}

/* Delete the new key in the pending slot, then decide afresh (recovered()).
 * @why is the audit's sentence, @error what the run reports unless it was
 * already failing for another reason. */
static void undo_new_key(Rotation *r, const Decision *d, const char *why, const char *error) {
        if (!restore_targets_if(r, d))
                return;
        audit(r, AUDIT_RECOVERY, "ok", NULL, NULL, why);
        if (r->outcome != ROTATION_FAILED)
                snprintf(r->error, sizeof r->error, "%s", error);
        r->recovering = true;
        r->step = STEP_UNDO_DELETE_NEW;
        step(r);
}

/* After an interrupted rotation was undone: record that the user is idle
 * again, then decide afresh in the same run. */
static void recovered(Rotation *r) {
        r->su->phase = STORE_PHASE_IDLE;
        r->su->rotation_id[0] = 0;
        commit_then(r, STORE_PHASE_IDLE, act, NULL);
}

/*
 * Carry out what decide() says for this user. Called after every
 * inspection and again after each undo, so an interrupted rotation is
 * finished or undone before anything new is judged.
 */
static void act(Rotation *r) {
        StoreUser *su = r->su;
        Decision d;
        const DecisionInput in = {
                .iu = r->iu,
                .su = su,
                .keys = &r->keys,
                .flags = r->flags,
                .now = now_realtime(),
                .orphan_use = r->orphan_use,
        };
        int k;

        decide(&in, &d);
        if (!(r->flags & ROTATION_ROLLBACK) && su->phase != STORE_PHASE_ROLLING_BACK)
                (void) decision_forget_vanished(su, &r->keys);

        switch (d.action) {
        case DECISION_NONE:
                if (r->outcome == ROTATION_FAILED)
                        conclude_failure(r); /* the failure that sent us recovering */
                else
                        succeed(r, ROTATION_NOT_DUE);
                return;

        case DECISION_ROTATE:
                if (r->flags & ROTATION_REPLACE_LOST) {
                        /* The lost key becomes "current without a secret": the
                         * ordinary steps replace it and touch it only after the
                         * new key verified and reached every target. */
                        const AccessKeyMeta *lost = d.key_id && *d.key_id ? list_access_keys_find(&r->keys, d.key_id)
                                                                           : NULL;
                        if (!lost)
                                store_key_clear(&su->current);
                        else if (!streq(su->current.access_key_id, lost->access_key_id) ||
                                 key_has_secret(&su->current)) {
                                k = store_key_set(&su->current, lost->access_key_id, NULL, 0,
                                                  lost->create_date * (int64_t) USEC_PER_SEC);
                                if (k < 0) {
                                        fail(r, "OutOfMemory", "out of memory");
                                        return;
                                }
                        }
                }
                if (r->engine->stopping) {
                        park(r);
                        return;
                }
                r->stale_index = 0;
                r->step = STEP_DELETE_STALE;
                step(r);
                return;

        case DECISION_CHECK_ORPHAN:
                snprintf(r->new_key_id, sizeof r->new_key_id, "%s", d.key_id);
                r->step = STEP_CHECK_ORPHAN;
                step(r);
                return;

        case DECISION_DELETE_ORPHAN: {
                const AccessKeyMeta *orphan = list_access_keys_find(&r->keys, d.key_id);

                k = store_key_set(&su->pending, d.key_id, "", 0, orphan ? orphan->create_date * (int64_t) USEC_PER_SEC : 0);
                if (k < 0) {
                        fail(r, "OutOfMemory", "out of memory");
                        return;
                }
                snprintf(r->new_key_id, sizeof r->new_key_id, "%s", d.key_id);
                if (r->creates > 0)
                        undo_new_key(r, &d, "the answer to CreateAccessKey was lost; deleting the key it made",
                                      "the answer to CreateAccessKey was lost");
                else
                        undo_new_key(r, &d, "a key created before a crash was never sealed; deleting it",
                                     "interrupted before the new key was sealed");
                return;
        }

        case DECISION_UNDO:
                if (su->phase == STORE_PHASE_VERIFIED)
                        undo_new_key(r, &d, "the verified key was deactivated; undoing",
                                     "the new key was deactivated before distribution");
                else
                        undo_new_key(r, &d, "interrupted before verification; undoing", "interrupted before verification");
                return;

        case DECISION_RESET:
                if (restore_targets_if(r, &d))
                        recovered(r);
                return;

        case DECISION_DISTRIBUTE:
                audit(r, AUDIT_RECOVERY, "ok", NULL, NULL, "resuming distribution of a verified key");
                r->step = STEP_DISTRIBUTE;
                step(r);
                return;

        case DECISION_NOTIFY:
        case DECISION_DRAIN:
                audit(r, AUDIT_RECOVERY, "ok", NULL, NULL,
                      d.action == DECISION_NOTIFY ? "resuming at notify" : "resuming after notify");
                r->rotated = true;
                r->step = d.action == DECISION_NOTIFY ? STEP_NOTIFY : STEP_DRAIN;
                step(r);
                return;

        case DECISION_WAIT:
        case DECISION_DELETE_OLD:
        case DECISION_COMPLETE:
                r->step = STEP_DELETE_OLD;
                step(r);
                return;

        case DECISION_ROLLBACK:
                if (su->phase == STORE_PHASE_ROLLING_BACK) {
                        rollback_begin(r);
                        return;
                }
                if (!(r->flags & ROTATION_ROLLBACK))
                        audit(r, AUDIT_RECOVERY, "ok", NULL, NULL,
                              "the new key vanished after distribution; rolling back to the old one");
                commit_then(r, STORE_PHASE_ROLLING_BACK, rollback_begin, NULL);
                return;

        case DECISION_ROLLBACK_FINISH:
                r->step = STEP_ROLLBACK_DELETE_NEW;
                step(r);
                return;

        case DECISION_ROLLBACK_ABANDON:
                store_key_clear(&su->previous);
                su->rotation_id[0] = 0;
                set_failure(r, d.code, "%s", d.reason);
                commit_then(r, STORE_PHASE_IDLE, conclude_failure, conclude_failure_uncommitted);
                return;

        case DECISION_NOT_APPLICABLE:
                /* A request that does not apply, not a failed rotation: the
                 * asker hears why, the audit trail keeps the refusal, and
                 * the user's failure count, backoff and last error stay. */
                set_failure(r, d.code, "%s", d.reason);
                audit(r, AUDIT_ROTATION_FAILED, "refused", d.code, NULL, r->error);
                r->outcome = ROTATION_FAILED;
                finish(r);
                return;

        case DECISION_FAIL:
        default:
                fail(r, d.code, "%s", d.reason);
                return;
        }
}

static void on_inspected(AwsCall *call, AwsResult *res, void *userdata) {
        Rotation *r = userdata;
        StoreUser *su = r->su;

        r->call = NULL;
        if (res->error < 0) {
                fail(r, aws_result_code(res), "ListAccessKeys failed: %s", aws_result_error_code(res));
                return;
        }
        list_access_keys_result_done(&r->keys);
        r->keys = res->list_keys;
        memset(&res->list_keys, 0, sizeof res->list_keys);

        /* The keys of an interrupted rotation, for its audit records. */
        bool has_previous = store_key_is_set(&su->previous) && list_access_keys_find(&r->keys, su->previous.access_key_id);
        snprintf(r->old_key_id, sizeof r->old_key_id, "%s",
                 has_previous ? su->previous.access_key_id : su->current.access_key_id);
        snprintf(r->new_key_id, sizeof r->new_key_id, "%s",
                 has_previous ? su->current.access_key_id : su->pending.access_key_id);
        act(r);
}

static void on_stale_deleted(AwsCall *call, AwsResult *res, void *userdata) {
        Rotation *r = userdata;
        const AccessKeyMeta *k = &r->keys.keys[r->stale_index];

        r->call = NULL;
        if (res->error < 0 && !streq(res->aws_error.code, "NoSuchEntity")) {
                fail(r, aws_result_code(res), "cannot delete the stale Inactive key %s: %s", k->access_key_id,
                     aws_result_error_code(res));
                return;
        }
        AuditRecord rec = { .event = AUDIT_STALE_KEY_DELETED, .user = r->user, .old_key_id = k->access_key_id,
                            .trigger = rotation_trigger_to_string(r->trigger), .result = "ok",
                            .request_id = res->request_id,
                            .message = "deleted an Inactive key keyrotd did not hold" };
        audit_emit(&rec);
        r->stale_index++;
        step(r);
}

static void step_delete_stale(Rotation *r) {
        for (; r->stale_index < r->keys.n_keys; r->stale_index++) {
                const AccessKeyMeta *k = &r->keys.keys[r->stale_index];

                if (held(r->su, k->access_key_id) || k->status != KEY_STATUS_INACTIVE)
                        continue;
                int e = iam_delete_access_key(r->engine->aws, r->user, k->access_key_id, on_stale_deleted, r,
                                              &r->call);
                if (e < 0)
                        fail(r, "Internal", "cannot delete the stale key: %s", strerror(-e));
                return;
        }
        r->step = STEP_CREATE;
        step(r);
}

static void on_created(AwsCall *call, AwsResult *res, void *userdata);

static void create_key(Rotation *r);
static void create_intent_failed(Rotation *r, int error);

static void step_create(Rotation *r) {
        StoreUser *su = r->su;

        r->created = true;
        new_rotation_id(su->rotation_id);
        snprintf(r->rotation_id, sizeof r->rotation_id, "%s", su->rotation_id);
        snprintf(su->trigger, sizeof su->trigger, "%s", rotation_trigger_to_string(r->trigger));
        snprintf(r->old_key_id, sizeof r->old_key_id, "%s", su->current.access_key_id);
        r->new_key_id[0] = 0;
        audit(r, AUDIT_ROTATION_STARTED, NULL, NULL, NULL,
              (r->flags & ROTATION_REPLACE_LOST) ? "replacing a key whose secret keyrotd does not hold" : NULL);

        /* Record the intent first: if we die after IAM created the key but
         * before we sealed it, recovery knows to look for it. */
        commit_then(r, STORE_PHASE_CREATING, create_key, create_intent_failed);
}

static void create_intent_failed(Rotation *r, int error) {
        fail(r, "StoreCommit", "cannot commit the store before creating a key: %s", strerror(-error));
}

static void create_key(Rotation *r) {
        r->creates++;
        int k = iam_create_access_key(r->engine->aws, r->user, on_created, r, &r->call);
        if (k < 0)
                fail(r, "Internal", "cannot request a new key: %s", strerror(-k));
}

static void sealed(Rotation *r);
static void seal_failed(Rotation *r, int error);

static void on_created(AwsCall *call, AwsResult *res, void *userdata) {
        Rotation *r = userdata;
        StoreUser *su = r->su;
        int k;

        r->call = NULL;
        crash_point("after-create");
        if (res->error < 0) {
                const char *code = aws_result_code(res);

                set_failure(r, code, "CreateAccessKey failed: %s", aws_result_error_code(res));
                /*
                 * No answer, a 5xx, or LimitExceeded although decide() saw
                 * room for the key: IAM may have created one whose secret we
                 * will never see. The outcome is unknown, and it is resolved
                 * exactly as after a crash in phase creating: list the keys
                 * (the intent is on disk), delete a key that appeared since,
                 * then decide again — which, a few times over, tries the
                 * create again. Any other refusal created nothing.
                 */
                if (res->outcome_unknown || streq(code, "LimitExceeded") || res->error != -EREMOTEIO) {
                        if (r->creates >= ROTATION_CREATE_ATTEMPTS) {
                                /* Clean up, then report the failure. */
                                r->flags |= ROTATION_RECOVER_ONLY;
                                r->outcome = ROTATION_FAILED;
                        } else
                                log_warning("%s: CreateAccessKey's outcome is unknown (%s); listing the keys to see "
                                            "whether it made one", r->user, aws_result_error_code(res));
                        r->step = STEP_INSPECT;
                        step(r);
                        return;
                }
                su->phase = STORE_PHASE_IDLE;
                conclude_failure(r);
                return;
        }

        /* The secret exists only in this process now. Seal it before
         * anything else happens; if that fails, the key must not survive. */
        const CreateAccessKeyResult *ck = &res->create_key;
        k = store_key_set(&su->pending, ck->meta.access_key_id, secret_str(ck->secret_access_key),
                          ck->secret_access_key->len, ck->meta.create_date * (int64_t) USEC_PER_SEC);
        snprintf(r->new_key_id, sizeof r->new_key_id, "%s", ck->meta.access_key_id);
        snprintf(r->request_id, sizeof r->request_id, "%s", res->request_id);
        if (k < 0) {
                seal_failed(r, k);
                return;
        }
        commit_then(r, STORE_PHASE_PENDING, sealed, seal_failed);
}

static void seal_failed(Rotation *r, int error) {
        fail(r, "StoreCommit", "cannot seal the new key into the store: %s", strerror(-error));
}

static void sealed(Rotation *r) {
        StoreUser *su = r->su;
        int k;

        audit(r, AUDIT_KEY_CREATED, "ok", NULL, r->request_id, "new key created and sealed");
        k = aws_credentials_new(su->pending.access_key_id, secret_str(su->pending.secret), su->pending.secret->len,
                                NULL, 0, "new-key", &r->new_creds);
        if (k < 0) {
                fail(r, "OutOfMemory", "out of memory");
                return;
        }
        if (r->engine->stopping) {
                /* Sealed: a safe point. Recovery undoes the unverified key. */
                park(r);
                return;
        }
        r->step = STEP_VERIFY;
        step(r);
}

static int timer_fired(sd_event_source *s, uint64_t usec, void *userdata) {
        Rotation *r = userdata;

        r->timer = sd_event_source_disable_unref(r->timer);
        step(r);
        return 0;
}

static void schedule(Rotation *r, usec_t delay) {
        int k = sd_event_add_time_relative(r->engine->event, &r->timer, CLOCK_MONOTONIC, delay, 1, timer_fired, r);
        if (k < 0)
                fail(r, "Internal", "cannot arm a timer: %s", strerror(-k));
}

static void on_verified(const VerifyResult *res, void *userdata) {
        Rotation *r = userdata;

        r->verification = NULL;
        if (res->outcome == VERIFY_OK) {
                r->step = STEP_DISTRIBUTE;
                step(r);
                return;
        }
        if (res->outcome != VERIFY_PROBE_USELESS && res->outcome != VERIFY_ERROR)
                audit(r, AUDIT_VERIFY_FAILED, "failed", res->code, res->request_id[0] ? res->request_id : NULL,
                      res->outcome == VERIFY_TIMEOUT ? "verification timed out" : NULL);
        fail(r, res->code, "%s", res->message);
}

static void step_verify(Rotation *r) {
        const VerifyOptions o = {
                .verify = &r->iu->verify,
                .user = r->user,
                .creds = r->new_creds,
                .subject = "the new key",
        };
        int k = verify_start(r->engine->aws, &o, on_verified, r, &r->verification);

        if (k < 0)
                fail(r, "Internal", "cannot start verifying the new key: %s", strerror(-k));
}

static void distributed(Rotation *r);

/* A new key is in service (every target holds it): from here the user
 * counts as rotated, and its failures are behind it, at once rather than
 * after a grace. The drain measures from now. */
static void key_in_service(Rotation *r) {
        StoreUser *su = r->su;

        r->rotated = true;
        su->distributed_at = (int64_t) now_realtime();
        su->drain_next = 0;
        su->drain_warnings = 0;
        su->failures = 0;
        su->next_attempt = 0;
        su->last_rotation = su->distributed_at;
        (void) store_set_text(&su->last_error, NULL); /* clearing cannot fail */
        if (store_set_text(&su->last_result, r->rolled_back ? "rolled back" : "rotated") < 0)
                log_oom();
}

static void step_distribute(Rotation *r) {
        StoreUser *su = r->su;
        char err[256];
        int k;

        if (su->phase != STORE_PHASE_VERIFIED) {
                audit(r, AUDIT_KEY_VERIFIED, "ok", NULL, NULL, NULL);
                commit_then(r, STORE_PHASE_VERIFIED, step_distribute, NULL);
                return;
        }

        write_targets_with(r, &su->pending, err, sizeof err, &k);
        if (k < 0 && !key_has_secret(&su->current)) {
                /* Replacing a lost key: there is nothing to put back, and the
                 * targets written so far depend on the new key. It stays,
                 * verified, beside the untouched old key; the next attempt
                 * resumes the distribution (reconcile, phase verified). */
                set_failure(r, "TargetWrite",
                            "cannot write a target: %s; the verified new key is kept and distribution resumes "
                            "at the next attempt",
                            err);
                conclude_failure(r);
                return;
        }
        if (k < 0) {
                /* Targets written so far hold the new key: put the old one back
                 * before the new key is deleted. */
                char undo_err[256];
                int u;

                write_targets_with(r, &su->current, undo_err, sizeof undo_err, &u);
                fail(r, "TargetWrite", "cannot write a target: %s%s%s", err, u < 0 ? "; restoring the old key also failed: " : "",
                     u < 0 ? undo_err : "");
                return;
        }

        /* Promote: the new key is current from here on, the old one previous. */
        store_key_clear(&su->previous);
        store_key_move(&su->previous, &su->current);
        store_key_move(&su->current, &su->pending);
        key_in_service(r);
        commit_then(r, STORE_PHASE_DISTRIBUTED, distributed, NULL);
}

static void distributed(Rotation *r) {
        audit(r, AUDIT_TARGETS_WRITTEN, "ok", NULL, NULL, NULL);
        r->rotated = true;
        r->step = STEP_NOTIFY;
        step(r);
}

static void on_rotate_done(const HookResult *res, void *userdata) {
        Rotation *r = userdata;

        r->hook = NULL;
        if (!hook_result_ok(res)) {
                char why[64];

                if (res->error < 0)
                        snprintf(why, sizeof why, "could not start: %s", strerror(-res->error));
                else if (res->timed_out)
                        snprintf(why, sizeof why, "timed out");
                else if (res->signal)
                        snprintf(why, sizeof why, "killed by signal %d", res->signal);
                else
                        snprintf(why, sizeof why, "exit status %d", res->exit_status);
                audit(r, AUDIT_HOOK_RUN, "failed", "HookFailed", NULL, why);
                /* Both keys stay Active and the targets hold the new one: the
                 * next attempt resumes at notify. */
                set_failure(r, "HookFailed", "on_rotate hook failed (%s); the old key stays Active", why);
                conclude_failure(r);
                return;
        }
        if (r->iu->on_rotate)
                audit(r, AUDIT_HOOK_RUN, "ok", NULL, NULL, "on_rotate");
        r->step = STEP_DRAIN;
        commit_then(r, STORE_PHASE_NOTIFIED, step, NULL);
}

static void step_notify(Rotation *r) {
        _cleanup_strv_free_ char **env = NULL;
        int k;

        if (!r->iu->on_rotate) {
                HookResult ok = { .exit_status = 0 };
                on_rotate_done(&ok, r);
                return;
        }
        k = hook_env(r, r->rolled_back ? "rolled-back" : "rotated", &env);
        if (k >= 0)
                k = hook_run(r->engine->event, r->iu->on_rotate, env, r->iu->hook_timeout, hook_output, on_rotate_done,
                             r, &r->hook);
        if (k < 0) {
                HookResult bad = { .exit_status = -1, .error = k };
                on_rotate_done(&bad, r);
        }
}

/*
 * drain: the targets hold the new key and on_rotate has run. The old key
 * is deactivated only once consumers have left it: GetAccessKeyLastUsed
 * shows no use of it in a later second than the distribution, read no
 * earlier than drain.settle after it (IAM updates LastUsed late). Within
 * drain.wait it is polled; after that, on_timeout keep leaves the old key
 * Active, warns (PRIORITY 4, 2 from alert_after warnings on) and keeps
 * looking every DRAIN_RECHECK; deactivate goes ahead. Independently, a key
 * is never deactivated before the latest Expiration `keyrotctl get` handed
 * out with it: an SDK holding it refreshes only then.
 *
 * A wait beyond DRAIN_INLINE_MAX parks the rotation in the store
 * (drain_next) instead of holding a slot; decide() says when to resume.
 */
static bool rotate_now(const Rotation *r);

static void drain_parked(Rotation *r) {
        r->draining = true;
        if (rotate_now(r)) {
                /* Asked to rotate now, this run finished what an earlier
                 * rotation left, and that now drains: the rotation asked
                 * for cannot start, and the asker must not hear otherwise. */
                set_failure(r, "Draining",
                            "the previous rotation now drains: its old key %s stays Active for the consumers that "
                            "may still use it; a new rotation waits until it is retired",
                            r->su->previous.access_key_id);
                audit(r, AUDIT_ROTATION_FAILED, "refused", "Draining", NULL, r->error);
                r->outcome = ROTATION_FAILED;
                finish(r);
                return;
        }
        succeed(r, ROTATION_COMPLETED);
}

static void drain_wait_until(Rotation *r, usec_t when, Step then) {
        usec_t now = now_realtime();

        r->step = then;
        if (when <= now) {
                step(r);
                return;
        }
        if (when - now <= DRAIN_INLINE_MAX && !r->engine->stopping) {
                schedule(r, when - now);
                return;
        }
        r->su->drain_next = (int64_t) when;
        commit_then(r, STORE_PHASE_NOTIFIED, drain_parked, NULL);
}

static void drain_audit(Rotation *r, const char *result, const char *code, const char *fmt, ...) _printf_(4, 5);
static void drain_audit(Rotation *r, const char *result, const char *code, const char *fmt, ...) {
        char msg[320];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        AuditRecord rec = {
                .event = AUDIT_DRAIN,
                .user = r->user,
                .rotation_id = r->rotation_id,
                .old_key_id = r->su->previous.access_key_id,
                .new_key_id = r->su->current.access_key_id,
                .trigger = rotation_trigger_to_string(r->trigger),
                .result = result,
                .error = code,
                .message = msg,
                .priority = streq(result, "warning") ? 4 : 0,
                .critical = streq(result, "warning") && r->engine->inv->defaults.alert_after > 0 &&
                            r->su->drain_warnings >= r->engine->inv->defaults.alert_after,
        };
        audit_emit(&rec);
}

static void on_drain_checked(AwsCall *call, AwsResult *res, void *userdata) {
        Rotation *r = userdata;
        StoreUser *su = r->su;
        const InventoryDrain *d = &r->iu->drain;
        usec_t now = now_realtime();
        /*
         * Consumers have left once the old key has gone unused for
         * drain.settle (AWS records a use that much later at most): at the
         * first look, no use since the distribution; at later ones, none in
         * the last settle. An application restarted onto the new key leaves
         * a last use after the distribution that never moves again. A use
         * in the same second as the reference may have come just before it.
         */
        time_t since = (time_t) (MAX((usec_t) su->distributed_at, now - MIN(now, d->settle)) / USEC_PER_SEC);
        bool known = res->error >= 0;
        bool used = !known || (res->last_used.last_used_date > 0 && res->last_used.last_used_date > since);
        char wait[DURATION_STRING_MAX];

        r->call = NULL;
        if (!used) {
                drain_audit(r, "ok", NULL, "consumers have left the old key");
                su->drain_next = 0;
                r->step = STEP_DEACTIVATE;
                step(r);
                return;
        }
        if (now < (usec_t) su->distributed_at + d->wait) {
                usec_t next = MIN(now + r->drain_poll, (usec_t) su->distributed_at + d->wait);

                r->drain_poll = MIN(r->drain_poll * 2, DRAIN_POLL_MAX);
                drain_wait_until(r, next, STEP_DRAIN);
                return;
        }
        format_duration(d->wait, wait, sizeof wait);
        if (d->on_timeout == DRAIN_TIMEOUT_DEACTIVATE) {
                drain_audit(r, "warning", known ? "OldKeyInUse" : aws_result_code(res),
                            "%s after %s; deactivating it anyway (drain.on_timeout: deactivate)",
                            known ? "consumers still use the old key" : "cannot tell whether consumers use the old key",
                            wait);
                su->drain_next = 0;
                r->step = STEP_DEACTIVATE;
                step(r);
                return;
        }
        su->drain_warnings++;
        drain_audit(r, "warning", known ? "OldKeyInUse" : aws_result_code(res),
                    "%s after %s; it stays Active and keyrotd keeps watching (drain.on_timeout: keep)",
                    known ? "consumers still use the old key" : "cannot tell whether consumers use the old key", wait);
        drain_wait_until(r, now + DRAIN_RECHECK, STEP_DRAIN);
}

static void step_drain(Rotation *r) {
        StoreUser *su = r->su;
        const InventoryDrain *d = &r->iu->drain;
        int k;

        if (!store_key_is_set(&su->previous) || !d->enabled) {
                r->step = STEP_DEACTIVATE;
                step(r);
                return;
        }
        if (r->engine->stopping) {
                /* Notified and committed: a safe point; the next start drains again. */
                park(r);
                return;
        }
        if (r->drain_poll == 0)
                r->drain_poll = DRAIN_POLL_MIN;
        usec_t at = MAX((usec_t) su->distributed_at + d->settle, (usec_t) su->drain_next);
        if (at > now_realtime()) {
                drain_wait_until(r, at, STEP_DRAIN);
                return;
        }
        k = iam_get_access_key_last_used(r->engine->aws, su->previous.access_key_id, on_drain_checked, r, &r->call);
        if (k < 0)
                fail(r, "Internal", "cannot ask whether consumers use the old key: %s", strerror(-k));
}

static void deactivated(Rotation *r);

static void on_deactivated(AwsCall *call, AwsResult *res, void *userdata) {
        Rotation *r = userdata;
        StoreUser *su = r->su;

        r->call = NULL;
        crash_point("after-deactivate");
        if (res->error < 0 && !streq(res->aws_error.code, "NoSuchEntity")) {
                set_failure(r, aws_result_code(res), "cannot deactivate the old key: %s", aws_result_error_code(res));
                conclude_failure(r);
                return;
        }
        su->grace_until = (int64_t) (now_realtime() + r->iu->grace);
        snprintf(r->request_id, sizeof r->request_id, "%s", res->request_id);
        commit_then(r, STORE_PHASE_DEACTIVATED, deactivated, NULL);
}

static void deactivated(Rotation *r) {
        audit(r, AUDIT_OLD_KEY_DEACTIVATED, "ok", NULL, r->request_id, NULL);
        r->step = STEP_DELETE_OLD;
        step(r);
}

static void step_deactivate(Rotation *r) {
        StoreUser *su = r->su;
        int k;

        if (r->engine->stopping) {
                park(r);
                return;
        }
        if (!store_key_is_set(&su->previous)) {
                r->step = STEP_DELETE_OLD;
                step(r);
                return;
        }
        if ((usec_t) su->previous.handed_out_until > now_realtime()) {
                /* `keyrotctl get` promised the old key until then. */
                drain_wait_until(r, (usec_t) su->previous.handed_out_until, STEP_DEACTIVATE);
                return;
        }
        crash_point("before-deactivate");
        k = iam_update_access_key(r->engine->aws, r->user, su->previous.access_key_id, KEY_STATUS_INACTIVE,
                                  on_deactivated, r, &r->call);
        if (k < 0)
                fail(r, "Internal", "cannot deactivate the old key: %s", strerror(-k));
}

static void completed_committed(Rotation *r);

/* Asked to rotate now (rotate USER, SIGUSR1, --once --force), and this run
 * has not yet created the key: what is left of an earlier rotation is
 * finished first, then the new one starts. */
static bool rotate_now(const Rotation *r) {
        return (r->flags & ROTATION_FORCE) && !r->created &&
               !(r->flags & (ROTATION_ROLLBACK | ROTATION_RECOVER_ONLY));
}

static void rotation_completed(Rotation *r) {
        StoreUser *su = r->su;

        su->rotation_id[0] = 0;
        su->grace_until = 0;
        su->failures = 0;
        su->last_rotation = (int64_t) now_realtime();
        (void) store_set_text(&su->last_error, NULL); /* clearing cannot fail */
        /* The distribution said "rotated" or "rolled back": the end of the
         * grace that follows does not change which. */
        if (!streq_ptr(su->last_result, "rolled back") && store_set_text(&su->last_result, "rotated") < 0)
                log_oom();
        commit_then(r, STORE_PHASE_IDLE, completed_committed, NULL);
}

static void completed_committed(Rotation *r) {
        audit(r, AUDIT_ROTATION_COMPLETED, "ok", NULL, NULL, NULL);
        if (rotate_now(r)) {
                /* The previous rotation is finished: now the one asked for. */
                act(r);
                return;
        }
        succeed(r, ROTATION_COMPLETED);
}

static void on_old_deleted(AwsCall *call, AwsResult *res, void *userdata) {
        Rotation *r = userdata;

        r->call = NULL;
        crash_point("after-delete-old");
        if (res->error < 0 && !streq(res->aws_error.code, "NoSuchEntity")) {
                set_failure(r, aws_result_code(res), "cannot delete the old key: %s", aws_result_error_code(res));
                conclude_failure(r);
                return;
        }
        audit(r, AUDIT_OLD_KEY_DELETED, "ok", NULL, res->request_id, NULL);
        forget_key(&r->keys, r->su->previous.access_key_id);
        store_key_clear(&r->su->previous);
        rotation_completed(r);
}

static void step_delete_old(Rotation *r) {
        StoreUser *su = r->su;
        int k;

        if (!store_key_is_set(&su->previous)) {
                rotation_completed(r);
                return;
        }
        if ((usec_t) su->grace_until > now_realtime() && !rotate_now(r)) {
                /* Rollback stays possible until grace ends; a later run deletes it. */
                r->in_grace = true;
                succeed(r, r->rotated ? ROTATION_COMPLETED : ROTATION_NOT_DUE);
                return;
        }
        if ((usec_t) su->grace_until > now_realtime())
                audit(r, AUDIT_OLD_KEY_DELETED, NULL, NULL, NULL,
                      "rotate now: the previous rotation's old key goes before its grace ends; its rollback "
                      "window ends");
        crash_point("before-delete-old");
        k = iam_delete_access_key(r->engine->aws, r->user, su->previous.access_key_id, on_old_deleted, r, &r->call);
        if (k < 0)
                fail(r, "Internal", "cannot delete the old key: %s", strerror(-k));
}

static void on_new_deleted(AwsCall *call, AwsResult *res, void *userdata) {
        Rotation *r = userdata;
        StoreUser *su = r->su;

        r->call = NULL;
        if (res->error < 0 && !streq(res->aws_error.code, "NoSuchEntity")) {
                /* Keep it pending: recovery will try again. */
                snprintf(r->error + strlen(r->error), sizeof r->error - strlen(r->error),
                         "; deleting the unused new key %s failed too (%s), will retry", su->pending.access_key_id,
                         aws_result_error_code(res));
                conclude_failure(r);
                return;
        }
        audit(r, AUDIT_NEW_KEY_DELETED, "ok", NULL, res->request_id, "the new key was not put in service");
        forget_key(&r->keys, su->pending.access_key_id);
        store_key_clear(&su->pending);
        su->rotation_id[0] = 0;
        su->phase = STORE_PHASE_IDLE;
        if (r->recovering) {
                /* An interrupted rotation is undone; this run decides afresh
                 * (and still reports the failure that led here, if any). */
                r->recovering = false;
                if (r->outcome != ROTATION_FAILED)
                        r->error[0] = r->error_code[0] = 0;
                recovered(r);
                return;
        }
        conclude_failure(r);
}

/* What GetAccessKeyLastUsed says of the key an interrupted create may
 * have made decides whether it is deleted (decide(), phase creating). */
static void on_orphan_checked(AwsCall *call, AwsResult *res, void *userdata) {
        Rotation *r = userdata;

        r->call = NULL;
        if (res->error < 0) {
                fail(r, aws_result_code(res),
                     "cannot tell whether the unknown key %s is the one an interrupted create made "
                        "(GetAccessKeyLastUsed: %s); it is left alone",
                     r->new_key_id, aws_result_error_code(res));
                return;
        }
        r->orphan_use = res->last_used.last_used_date > 0 ? ORPHAN_USE_USED : ORPHAN_USE_NEVER;
        act(r);
}

static void step_check_orphan(Rotation *r) {
        int k = iam_get_access_key_last_used(r->engine->aws, r->new_key_id, on_orphan_checked, r, &r->call);
        if (k < 0)
                fail(r, "Internal", "cannot check the unknown key %s: %s", r->new_key_id, strerror(-k));
}

static void step_undo_delete_new(Rotation *r) {
        int k;

        crash_point("before-delete-new");
        k = iam_delete_access_key(r->engine->aws, r->user, r->su->pending.access_key_id, on_new_deleted, r,
                                  &r->call);
        if (k < 0) {
                set_failure(r, "Internal", "cannot request the deletion of the new key: %s", strerror(-k));
                conclude_failure(r);
        }
}

static void step(Rotation *r) {
        switch (r->step) {
        case STEP_INSPECT:
                step_inspect(r);
                break;
        case STEP_DELETE_STALE:
                step_delete_stale(r);
                break;
        case STEP_CREATE:
                step_create(r);
                break;
        case STEP_VERIFY:
                step_verify(r);
                break;
        case STEP_DISTRIBUTE:
                step_distribute(r);
                break;
        case STEP_NOTIFY:
                step_notify(r);
                break;
        case STEP_DRAIN:
                step_drain(r);
                break;
        case STEP_DEACTIVATE:
                step_deactivate(r);
                break;
        case STEP_DELETE_OLD:
                step_delete_old(r);
                break;
        case STEP_CHECK_ORPHAN:
                step_check_orphan(r);
                break;
        case STEP_UNDO_DELETE_NEW:
                step_undo_delete_new(r);
                break;
        case STEP_ROLLBACK_ACTIVATE:
                step_rollback_activate(r);
                break;
        case STEP_ROLLBACK_VERIFY:
                step_rollback_verify(r);
                break;
        case STEP_ROLLBACK_RESTORE:
                step_rollback_restore(r);
                break;
        case STEP_ROLLBACK_DELETE_NEW:
                step_rollback_delete_new(r);
                break;
        case STEP_DONE:
                finish(r);
                break;
        }
}

/* ---- the engine ------------------------------------------------------- */

int rotation_engine_new(sd_event *event, AwsClient *aws, Store *store, const Inventory *inv, RotationEngine **ret) {
        RotationEngine *e = calloc(1, sizeof *e);

        if (!e)
                return -ENOMEM;
        e->event = event;
        e->aws = aws;
        e->store = store;
        e->inv = inv;
        /* Without it (no eventfd), commits are written on the loop. */
        (void) committer_new(event, store, &e->committer);
        *ret = e;
        return 0;
}

RotationEngine *rotation_engine_free(RotationEngine *e) {
        if (!e)
                return NULL;
        /* First: it waits for a write in flight, whose rotations are freed below. */
        e->committer = committer_free(e->committer);
        e->writing = NULL;
        while (e->running) {
                Rotation *r = e->running;
                e->running = r->next;
                rotation_free(r);
        }
        while (e->queue_head) {
                Rotation *r = e->queue_head;
                e->queue_head = r->next;
                rotation_free(r);
        }
        /* Waiting rotations were all running: freed above. */
        e->commit_head = e->commit_tail = NULL;
        run_waiters(e->waiters_writing, -ECANCELED);
        run_waiters(e->waiters, -ECANCELED);
        sd_event_source_disable_unref(e->commit_flush);
        free(e);
        return NULL;
}

static bool user_busy(const RotationEngine *e, const char *user) {
        for (const Rotation *r = e->running; r; r = r->next)
                if (streq(r->user, user))
                        return true;
        for (const Rotation *r = e->queue_head; r; r = r->next)
                if (streq(r->user, user))
                        return true;
        return false;
}

static void rotation_begin(Rotation *r) {
        RotationEngine *e = r->engine;
        int k;

        r->next = e->running;
        e->running = r;
        e->n_running++;

        r->su = store_get_user(e->store, r->user);
        if (!r->su) {
                k = store_add_user(e->store, r->user, &r->su);
                if (k < 0) {
                        fail(r, "OutOfMemory", "cannot add %s to the store: %s", r->user, strerror(-k));
                        return;
                }
        }
        snprintf(r->old_key_id, sizeof r->old_key_id, "%s", r->su->current.access_key_id);
        snprintf(r->rotation_id, sizeof r->rotation_id, "%s", r->su->rotation_id);
        r->step = STEP_INSPECT;
        step(r);
}

static void engine_start_queued(RotationEngine *e) {
        while (e->queue_head && e->n_running < e->inv->defaults.max_parallel) {
                Rotation *r = e->queue_head;

                e->queue_head = r->next;
                if (!e->queue_head)
                        e->queue_tail = NULL;
                e->n_queued--;
                r->next = NULL;
                if (e->stopping) {
                        r->next = e->running;
                        e->running = r;
                        e->n_running++;
                        park(r);
                        continue;
                }
                rotation_begin(r);
        }
}

static int start_deferred(sd_event_source *s, void *userdata) {
        RotationEngine *e = userdata;

        sd_event_source_disable_unref(s);
        engine_start_queued(e);
        return 0;
}

int rotation_engine_submit(RotationEngine *e, const char *user, RotationTrigger trigger, unsigned flags,
                           rotation_done_t done, void *userdata) {
        const InventoryUser *iu = inventory_find_user(e->inv, user);
        Rotation *r;
        int k;

        if (!iu)
                return -ENOENT;
        if (user_busy(e, user))
                return -EBUSY;

        r = calloc(1, sizeof *r);
        if (!r)
                return -ENOMEM;
        r->engine = e;
        r->iu = iu;
        r->trigger = trigger;
        r->flags = flags;
        r->done = done;
        r->userdata = userdata;
        r->user = strdup(user);
        if (!r->user) {
                free(r);
                return -ENOMEM;
        }

        if (e->queue_tail)
                e->queue_tail->next = r;
        else
                e->queue_head = r;
        e->queue_tail = r;
        e->n_queued++;

        /* Start from the loop, never from inside submit: the callback of a
         * finished rotation may submit the next one. */
        k = sd_event_add_defer(e->event, NULL, start_deferred, e);
        return k < 0 ? k : 0;
}

void rotation_engine_set_inventory(RotationEngine *e, const Inventory *inv) {
        e->inv = inv;
}

unsigned rotation_engine_busy(const RotationEngine *e) {
        return e->n_running + e->n_queued;
}

void rotation_engine_stop(RotationEngine *e) {
        e->stopping = true;
        engine_start_queued(e);
        /* A drain may poll for minutes: park it now, not at its next poll. */
        for (Rotation *r = e->running, *next; r; r = next) {
                next = r->next;
                if (r->step == STEP_DRAIN && r->timer) {
                        r->timer = sd_event_source_disable_unref(r->timer);
                        park(r);
                }
        }
}

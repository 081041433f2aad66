/* SPDX-License-Identifier: MIT */
/*
 * The dry run. Every user goes through the same short chain of read-only
 * calls on the caller's loop (ListAccessKeys, GetAccessKeyLastUsed of the
 * held key, the S3 check with the held key); once its answers are in, the
 * targets are looked at (stat and access only) and the verdict is worked
 * out by the same rules rotation.c applies, step by step, so that the plan
 * says what a real run would do rather than what it ought to do.
 */
#include "rotation/plan.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "basic/duration.h"
#include "basic/path.h"
#include "aws/iam.h"
#include "rotation/rotation.h"
#include "aws/s3.h"
#include "targets/targets.h"

/* rotation.c's CREATE_CLOCK_SLACK: a key IAM dates this long before the
 * CREATING phase began still counts as the one that phase created. Both
 * must agree, or the plan and recovery would pick different orphans. */
/* Per attempt of the S3 check, as the real verification uses. */
#define PLAN_S3_ATTEMPT_TIMEOUT (10 * USEC_PER_SEC)

#define PLAN_TEXT_MAX 1024

typedef struct Plan Plan;

typedef struct PlanUser {
        Plan *plan;
        const InventoryUser *iu;
        const StoreUser *su; /* NULL: the store has no record of this user */
        AwsCall *call;
        AwsCredentials *creds; /* the held key, for the S3 check */
        bool finished;

        /* What the read-only calls found. */
        int list_error; /* 0, or why ListAccessKeys failed */
        char list_code[128];
        ListAccessKeysResult keys;
        bool last_used_known;
        time_t last_used; /* 0: never used */
        char last_used_code[128];
        bool s3_run;
        bool s3_substitute; /* put:KEY checked as ListObjectsV2 */
        int s3_error;
        char s3_code[128];

        /* The verdict. */
        PlanAction action;
        char reason[PLAN_TEXT_MAX];
        char problems[PLAN_TEXT_MAX]; /* checks that fail: the user is blocked */
        char notes[PLAN_TEXT_MAX];    /* worth knowing, not blocking */
} PlanUser;

struct Plan {
        AwsClient *aws;
        const Store *store;
        const Inventory *inv;
        bool force;
        usec_t now; /* CLOCK_REALTIME, one instant for the whole plan */
        PlanUser *users;
        size_t n_users;
        size_t next;       /* first user not started */
        size_t n_finished;
        unsigned n_running;
        bool starting;     /* inside start_more(): do not recurse */
};

static const char *const action_names[_PLAN_ACTION_MAX] = {
        [PLAN_NONE] = "none",     [PLAN_ROTATE] = "rotate",         [PLAN_FINISH] = "finish",
        [PLAN_UNDO] = "undo",     [PLAN_DELETE_OLD] = "delete-old", [PLAN_WAIT] = "wait",
        [PLAN_BLOCKED] = "blocked",
};

const char *plan_action_to_string(PlanAction a) {
        return a >= 0 && a < _PLAN_ACTION_MAX ? action_names[a] : NULL;
}

/* Append to a NUL-terminated text, "; " between items; cut at the end. */
static void text_add(char *buf, size_t size, const char *fmt, ...) _printf_(3, 4);
static void text_add(char *buf, size_t size, const char *fmt, ...) {
        size_t len = strnlen(buf, size);
        va_list ap;

        if (len > 0 && len + 2 < size) {
                memcpy(buf + len, "; ", 3);
                len += 2;
        }
        if (len + 1 >= size)
                return;
        va_start(ap, fmt);
        (void) vsnprintf(buf + len, size - len, fmt, ap);
        va_end(ap);
}

static char *format_ago(usec_t then, usec_t now, char *buf, size_t size) {
        char d[DURATION_STRING_MAX];

        if (then >= now)
                snprintf(buf, size, "just now");
        else
                snprintf(buf, size, "%s ago", format_duration_approx(now - then, 2, d, sizeof d) ?: "?");
        return buf;
}

/* An instant for the operator: 2025-01-31T12:00:00Z. */
static char *format_instant(usec_t t, char *buf, size_t size) {
        time_t s = (time_t) (t / USEC_PER_SEC);
        struct tm tm;

        if (!gmtime_r(&s, &tm) || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                snprintf(buf, size, "?");
        return buf;
}

/* rotation.c's held(): the key sits in one of the user's store slots. */
static bool held(const StoreUser *su, const char *id) {
        return su && (streq(su->current.access_key_id, id) || streq(su->pending.access_key_id, id) ||
                      streq(su->previous.access_key_id, id));
}

/* ---- targets ---------------------------------------------------------- */

/* Could target_write() create files in @dir? Returns 0, or -errno with @why set. */
static int check_dir(const char *dir, char *why, size_t size) {
        struct stat st;
        int r;

        if (stat(dir, &st) < 0) {
                r = -errno;
                if (r == -ENOENT)
                        snprintf(why, size, "directory %s does not exist", dir);
                else
                        snprintf(why, size, "cannot look at directory %s: %s", dir, strerror(-r));
                return r;
        }
        if (!S_ISDIR(st.st_mode)) {
                snprintf(why, size, "%s is not a directory", dir);
                return -ENOTDIR;
        }
        /* The atomic write creates a temp file in the directory and renames
         * it over the target: the directory's permissions decide, for our
         * effective ids and capabilities, not the file's. */
        if (faccessat(AT_FDCWD, dir, W_OK | X_OK, AT_EACCESS) < 0) {
                r = -errno;
                snprintf(why, size, "directory %s is not writable by keyrotd: %s", dir, strerror(-r));
                return r;
        }
        return 0;
}

/*
 * Could target_write() replace this target, its directory being fine?
 * Only looked at: lstat and, for the formats that are merged, a parse of
 * the existing file (target_read_key_id() copies out the key id, never the
 * secret). Returns 0, or -errno with @why set.
 */
static int check_file(const InventoryTarget *t, char *why, size_t size) {
        char id[STORE_ACCESS_KEY_ID_MAX + 1];
        struct stat st;
        int r;

        if (lstat(t->path, &st) < 0) {
                r = -errno;
                if (r == -ENOENT)
                        return 0; /* the run creates it */
                snprintf(why, size, "cannot look at it: %s", strerror(-r));
                return r;
        }
        if (S_ISLNK(st.st_mode)) {
                snprintf(why, size, "is a symbolic link; a real run refuses to write through it");
                return -ELOOP;
        }
        if (S_ISDIR(st.st_mode)) {
                snprintf(why, size, "is a directory");
                return -EISDIR;
        }
        if (!S_ISREG(st.st_mode)) {
                snprintf(why, size, "is not a regular file");
                return -EINVAL;
        }
        if (st.st_nlink > 1) {
                snprintf(why, size, "has %ju hard links; a real run refuses to replace it", (uintmax_t) st.st_nlink);
                return -EMLINK;
        }
        if (t->type == TARGET_JSON_FILE)
                return 0; /* rewritten whole, never merged */

        TargetSpec spec = {
                .type = t->type,
                .path = t->path,
                .profile = t->profile,
                .uid = t->uid,
                .gid = t->gid,
                .mode = t->mode,
        };
        r = target_read_key_id(&spec, id, sizeof id);
        if (r >= 0 || r == -ENOENT || r == -ERANGE)
                return 0; /* readable; which key it holds does not matter here */
        if (r == -EBADMSG)
                snprintf(why, size, "cannot be parsed as a %s; a real run refuses to replace it",
                         target_type_to_string(t->type));
        else if (r == -E2BIG)
                snprintf(why, size, "is larger than %u bytes; a real run refuses to replace it", TARGET_FILE_MAX);
        else
                snprintf(why, size, "cannot be read: %s", strerror(-r));
        return r;
}

static void free_dirs(char **dirs, size_t n) {
        for (size_t i = 0; dirs && i < n; i++)
                free(dirs[i]);
        free(dirs);
}

/* Every target the user's rotation would write; a directory that several
 * targets share is judged (and reported) once. */
static int check_targets(PlanUser *u) {
        size_t n = u->iu->n_targets;
        _cleanup_free_ int *dir_r = NULL;
        char **dirs = NULL;
        int r = 0;

        if (n == 0)
                return 0;
        dirs = calloc(n, sizeof *dirs);
        dir_r = calloc(n, sizeof *dir_r);
        if (!dirs || !dir_r) {
                free(dirs);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                const InventoryTarget *t = &u->iu->targets[i];
                char why[512];
                size_t j;

                dirs[i] = path_parent(t->path);
                if (!dirs[i]) {
                        r = -ENOMEM;
                        break;
                }
                for (j = 0; j < i && !streq(dirs[j], dirs[i]); j++)
                        ;
                if (j < i)
                        dir_r[i] = dir_r[j];
                else {
                        dir_r[i] = check_dir(dirs[i], why, sizeof why);
                        if (dir_r[i] < 0)
                                text_add(u->problems, sizeof u->problems, "targets: %s", why);
                }
                if (dir_r[i] < 0)
                        continue;
                if (check_file(t, why, sizeof why) < 0)
                        text_add(u->problems, sizeof u->problems, "target %s: %s", t->path, why);
        }
        free_dirs(dirs, n);
        return r;
}

/* ---- the verdict ------------------------------------------------------ */

/* What happens to the old key at the end of a rotation. */
static void old_key_fate(const PlanUser *u, const char *old_id, char *buf, size_t size) {
        char d[DURATION_STRING_MAX];

        if (!old_id || !*old_id)
                snprintf(buf, size, "the old key is already gone from IAM");
        else if (u->iu->grace == 0)
                snprintf(buf, size, "deactivate and delete the old key %s (grace 0)", old_id);
        else
                snprintf(buf, size, "deactivate the old key %s, delete it after grace (%s)", old_id,
                         format_duration(u->iu->grace, d, sizeof d) ?: "?");
}

/*
 * rotation.c's decide(): the user is idle (or was just brought back to
 * idle by undoing an interrupted rotation, whose deleted key is @gone):
 * is there work, and is it safe?
 */
static PlanAction decide_idle(const PlanUser *u, const char *gone, char *why, size_t size) {
        const StoreUser *su = u->su;
        const ListAccessKeysResult *l = &u->keys;
        const InventoryUser *iu = u->iu;
        const AccessKeyMeta *cur;
        char d1[DURATION_STRING_MAX], d2[DURATION_STRING_MAX], when[32];
        size_t remaining = 0;

        if (!su || !store_key_is_set(&su->current)) {
                snprintf(why, size,
                         "keyrotd holds no key for %s: adopt its current key first "
                         "('keyrotctl adopt %s --from-credentials FILE')",
                         iu->name, iu->name);
                return PLAN_BLOCKED;
        }
        cur = list_access_keys_find(l, su->current.access_key_id);
        if (!cur) {
                snprintf(why, size, "the key keyrotd holds (%s) no longer exists in IAM", su->current.access_key_id);
                return PLAN_BLOCKED;
        }
        if (cur->status != KEY_STATUS_ACTIVE) {
                snprintf(why, size, "the key keyrotd holds (%s) is Inactive in IAM", su->current.access_key_id);
                return PLAN_BLOCKED;
        }
        for (size_t i = 0; i < l->n_keys; i++) {
                const AccessKeyMeta *k = &l->keys[i];

                if (gone && streq(k->access_key_id, gone))
                        continue;
                if (!held(su, k->access_key_id) && k->status == KEY_STATUS_ACTIVE) {
                        snprintf(why, size,
                                 "an Active key keyrotd does not hold (%s) exists; a real run refuses to touch it "
                                 "(delete it or adopt it)",
                                 k->access_key_id);
                        return PLAN_BLOCKED;
                }
        }

        usec_t created = (usec_t) su->current.create_date;
        usec_t due_at = created + iu->max_age;
        usec_t age = u->plan->now > created ? u->plan->now - created : 0;

        format_instant(due_at, when, sizeof when);
        if (!u->plan->force && !rotation_is_due(iu, su, u->plan->now)) {
                snprintf(why, size, "not due: due in %s (%s)",
                         format_duration_approx(due_at - u->plan->now, 2, d1, sizeof d1) ?: "?", when);
                return PLAN_NONE;
        }

        why[0] = 0;
        if (rotation_is_due(iu, su, u->plan->now))
                text_add(why, size, "due: key is %s old, max_age %s (due since %s)",
                         format_duration_approx(age, 2, d1, sizeof d1) ?: "?",
                         format_duration(iu->max_age, d2, sizeof d2) ?: "?", when);
        else
                text_add(why, size, "--force (not due until %s)", when);

        /* step_delete_stale(): Inactive keys nobody holds go first. */
        for (size_t i = 0; i < l->n_keys; i++) {
                const AccessKeyMeta *k = &l->keys[i];

                if (gone && streq(k->access_key_id, gone))
                        continue;
                if (!held(su, k->access_key_id) && k->status == KEY_STATUS_INACTIVE) {
                        text_add(why, size, "delete-stale: the Inactive key %s (not held) is deleted first",
                                 k->access_key_id);
                        continue;
                }
                remaining++;
        }
        /* IAM allows two keys per user: CreateAccessKey needs a free slot. */
        if (remaining >= 2) {
                snprintf(why, size, "%s already has %zu keys besides any stale ones; CreateAccessKey would fail "
                         "with LimitExceeded", iu->name, remaining);
                return PLAN_BLOCKED;
        }

        char fate[256];
        old_key_fate(u, su->current.access_key_id, fate, sizeof fate);
        text_add(why, size, "create a new key, verify it (%s on %s), write %zu target%s, %s%s",
                 verify_check_to_string(iu->verify.check), iu->verify.bucket, iu->n_targets,
                 iu->n_targets == 1 ? "" : "s", iu->on_rotate ? "run on_rotate, " : "", fate);
        return PLAN_ROTATE;
}

/* After an undo, the fresh decision follows in the same run. */
static PlanAction undo_then_decide(PlanUser *u, const char *gone, const char *undo) {
        char then[PLAN_TEXT_MAX];
        PlanAction a = decide_idle(u, gone, then, sizeof then);

        u->reason[0] = 0;
        text_add(u->reason, sizeof u->reason, "%s", undo);
        text_add(u->reason, sizeof u->reason, "then %s: %s", plan_action_to_string(a), then);
        return a == PLAN_BLOCKED ? PLAN_BLOCKED : PLAN_UNDO;
}

/* rotation.c's reconcile(): pick up an interrupted rotation where its
 * phase says, then decide. */
static PlanAction decide(PlanUser *u) {
        const StoreUser *su = u->su;
        const ListAccessKeysResult *l = &u->keys;
        const InventoryUser *iu = u->iu;
        const char *phase_name;
        char undo[512], fate[256], when[32], d[DURATION_STRING_MAX];

        if (u->list_error < 0) {
                snprintf(u->reason, sizeof u->reason, "ListAccessKeys failed: %s; a real run stops there",
                         u->list_code);
                return PLAN_BLOCKED;
        }
        if (!su || su->phase == STORE_PHASE_IDLE)
                return decide_idle(u, NULL, u->reason, sizeof u->reason);

        /* Slots whose key IAM no longer has count as empty, as in reconcile(). */
        const char *previous = store_key_is_set(&su->previous) && list_access_keys_find(l, su->previous.access_key_id)
                                       ? su->previous.access_key_id
                                       : NULL;
        const AccessKeyMeta *pending_meta =
                store_key_is_set(&su->pending) ? list_access_keys_find(l, su->pending.access_key_id) : NULL;
        const char *pending = pending_meta ? pending_meta->access_key_id : NULL;
        const AccessKeyMeta *cur = list_access_keys_find(l, su->current.access_key_id);

        phase_name = store_phase_to_string(su->phase) ?: "unknown";
        switch (su->phase) {
        case STORE_PHASE_CREATING:
                for (size_t i = 0; i < l->n_keys; i++) {
                        const AccessKeyMeta *k = &l->keys[i];

                        if (!held(su, k->access_key_id) &&
                            (usec_t) k->create_date * USEC_PER_SEC + ROTATION_CREATE_CLOCK_SLACK >=
                                    (usec_t) su->phase_since) {
                                snprintf(undo, sizeof undo,
                                         "rotation interrupted in phase creating: delete %s, created before the "
                                         "crash but never sealed",
                                         k->access_key_id);
                                return undo_then_decide(u, k->access_key_id, undo);
                        }
                }
                return undo_then_decide(u, NULL,
                                        "rotation interrupted in phase creating before IAM created a key: "
                                        "nothing to delete");
        case STORE_PHASE_PENDING:
                if (pending) {
                        snprintf(undo, sizeof undo,
                                 "rotation interrupted in phase pending: delete the unverified new key %s, "
                                 "keep %s",
                                 pending, su->current.access_key_id);
                        return undo_then_decide(u, pending, undo);
                }
                return undo_then_decide(u, NULL,
                                        "rotation interrupted in phase pending; its new key is already gone from "
                                        "IAM");
        case STORE_PHASE_VERIFIED:
                if (pending_meta && pending_meta->status != KEY_STATUS_ACTIVE) {
                        snprintf(u->reason, sizeof u->reason,
                                 "rotation interrupted in phase verified, but the verified key %s is Inactive in "
                                 "IAM; finishing would hand it to the targets and deactivate %s, the last working "
                                 "key",
                                 pending, su->current.access_key_id);
                        return PLAN_BLOCKED;
                }
                if (pending) {
                        old_key_fate(u, su->current.access_key_id, fate, sizeof fate);
                        snprintf(u->reason, sizeof u->reason,
                                 "rotation interrupted in phase verified: write the verified key %s to %zu "
                                 "target%s, %s%s",
                                 pending, iu->n_targets, iu->n_targets == 1 ? "" : "s",
                                 iu->on_rotate ? "run on_rotate, " : "", fate);
                        return PLAN_FINISH;
                }
                snprintf(undo, sizeof undo,
                         "rotation interrupted in phase verified and its new key is gone from IAM: write %s back "
                         "to the targets",
                         su->current.access_key_id);
                return undo_then_decide(u, NULL, undo);
        case STORE_PHASE_DISTRIBUTED:
        case STORE_PHASE_NOTIFIED:
                /* The targets hold the new key: finishing deactivates the
                 * old one, which is only safe while the new one is Active. */
                if (!cur || cur->status != KEY_STATUS_ACTIVE) {
                        snprintf(u->reason, sizeof u->reason,
                                 "rotation interrupted in phase %s, but the new key %s is %s in IAM; finishing "
                                 "would deactivate %s, the last working key",
                                 phase_name, su->current.access_key_id, cur ? "Inactive" : "missing",
                                 previous ?: "the old key");
                        return PLAN_BLOCKED;
                }
                old_key_fate(u, previous, fate, sizeof fate);
                snprintf(u->reason, sizeof u->reason, "rotation interrupted in phase %s: %s%s", phase_name,
                         su->phase == STORE_PHASE_DISTRIBUTED && iu->on_rotate ? "run on_rotate, " : "", fate);
                return PLAN_FINISH;
        case STORE_PHASE_DEACTIVATED:
                if (!previous) {
                        snprintf(u->reason, sizeof u->reason,
                                 "the old key is already gone from IAM: mark the rotation complete");
                        return PLAN_FINISH;
                }
                format_instant((usec_t) su->grace_until, when, sizeof when);
                if ((usec_t) su->grace_until > u->plan->now) {
                        snprintf(u->reason, sizeof u->reason,
                                 "the old key %s is Inactive in grace until %s (%s more); a later run deletes "
                                 "it%s",
                                 previous, when,
                                 format_duration_approx((usec_t) su->grace_until - u->plan->now, 2, d, sizeof d) ?: "?",
                                 u->plan->force ? "; --force starts no new rotation before that" : "");
                        return PLAN_WAIT;
                }
                snprintf(u->reason, sizeof u->reason, "grace ended %s: delete the old key %s", when, previous);
                return PLAN_DELETE_OLD;
        case STORE_PHASE_ROLLING_BACK:
                /* start_rollback(): an empty previous slot means the old key
                 * already took over, and only the deletion remains. */
                if (previous)
                        snprintf(u->reason, sizeof u->reason,
                                 "rollback interrupted: re-activate the old key %s, write it back to %zu target%s, "
                                 "delete %s",
                                 previous, iu->n_targets, iu->n_targets == 1 ? "" : "s", su->current.access_key_id);
                else if (store_key_is_set(&su->previous))
                        snprintf(u->reason, sizeof u->reason,
                                 "rollback interrupted, but the old key %s is gone from IAM: the rollback is "
                                 "ended keeping %s",
                                 su->previous.access_key_id, su->current.access_key_id);
                else if (pending)
                        snprintf(u->reason, sizeof u->reason,
                                 "rollback interrupted after %s took over again: delete the rolled-back key %s",
                                 su->current.access_key_id, pending);
                else
                        snprintf(u->reason, sizeof u->reason,
                                 "rollback interrupted after %s took over again: mark it complete",
                                 su->current.access_key_id);
                return PLAN_FINISH;
        default:
                snprintf(u->reason, sizeof u->reason, "phase %s cannot be resumed by this version", phase_name);
                return PLAN_BLOCKED;
        }
}

static void conclude(PlanUser *u) {
        char otherwise[PLAN_TEXT_MAX];

        u->action = decide(u);
        if (u->problems[0] && u->action != PLAN_BLOCKED) {
                /* The plan stands, but it would fail (or leave the
                 * application without a working key) as things are. */
                snprintf(otherwise, sizeof otherwise, "%s", u->reason);
                snprintf(u->reason, sizeof u->reason, "%s", u->problems);
                text_add(u->reason, sizeof u->reason, "plan otherwise %s: %s", plan_action_to_string(u->action),
                         otherwise);
                u->action = PLAN_BLOCKED;
        } else if (u->problems[0])
                text_add(u->reason, sizeof u->reason, "%s", u->problems);
        if (u->notes[0])
                text_add(u->reason, sizeof u->reason, "%s", u->notes);
}

/* ---- the read-only calls ---------------------------------------------- */

static void start_more(Plan *p);

static void user_done(PlanUser *u) {
        Plan *p = u->plan;
        int r;

        u->creds = aws_credentials_unref(u->creds);
        r = check_targets(u);
        if (r < 0)
                text_add(u->problems, sizeof u->problems, "cannot check the targets: %s", strerror(-r));

        if (u->s3_run && u->s3_error < 0) {
                const char *check = verify_check_to_string(u->iu->verify.check);

                if (u->s3_substitute &&
                    (streq(u->s3_code, "AccessDenied") || streq(u->s3_code, "Forbidden")))
                        text_add(u->notes, sizeof u->notes,
                                 "the put check was replaced by ListObjectsV2 (a dry run writes nothing), which "
                                 "was denied (%s): the key authenticates, its put permission is unproven",
                                 u->s3_code);
                else
                        text_add(u->problems, sizeof u->problems,
                                 "the current key fails its S3 check (%s%s on %s): %s",
                                 u->s3_substitute ? "ListObjectsV2 in place of " : "", check,
                                 u->iu->verify.bucket, u->s3_code);
        } else if (u->s3_run && u->s3_substitute)
                text_add(u->notes, sizeof u->notes,
                         "the put check was run as ListObjectsV2 (a dry run writes nothing)");
        if (u->last_used_code[0])
                text_add(u->notes, sizeof u->notes, "GetAccessKeyLastUsed failed: %s", u->last_used_code);

        conclude(u);
        u->finished = true;
        p->n_finished++;
        p->n_running--;
        start_more(p);
}

static void on_s3_checked(AwsCall *call, AwsResult *res, void *userdata) {
        PlanUser *u = userdata;

        u->call = NULL;
        u->s3_error = res->error;
        if (res->error < 0)
                snprintf(u->s3_code, sizeof u->s3_code, "%s", aws_result_error_code(res));
        user_done(u);
}

/*
 * The user's S3 check, signed with the key keyrotd holds: does what the
 * application relies on work right now? Only reads: put:KEY would write an
 * object, so it is replaced by ListObjectsV2 max-keys=1.
 */
static void step_s3(PlanUser *u) {
        const StoreUser *su = u->su;
        const InventoryVerify *v = &u->iu->verify;
        const AccessKeyMeta *k;
        S3Options o = {
                .bucket = v->bucket,
                .key = v->check_key,
                .timeout = PLAN_S3_ATTEMPT_TIMEOUT,
        };
        int r;

        if (!su || !store_key_is_set(&su->current) || !su->current.secret || su->current.secret->len == 0) {
                if (su && store_key_is_set(&su->current))
                        text_add(u->notes, sizeof u->notes, "no secret is held for %s: S3 check skipped",
                                 su->current.access_key_id);
                user_done(u);
                return;
        }
        /* A key IAM has no Active record of cannot pass; decide() says so. */
        k = list_access_keys_find(&u->keys, su->current.access_key_id);
        if (u->list_error == 0 && (!k || k->status != KEY_STATUS_ACTIVE)) {
                user_done(u);
                return;
        }
        r = aws_credentials_new(su->current.access_key_id, secret_str(su->current.secret), su->current.secret->len,
                                NULL, 0, "store", &u->creds);
        if (r < 0) {
                u->s3_run = true;
                u->s3_error = r;
                snprintf(u->s3_code, sizeof u->s3_code, "%s", strerror(-r));
                user_done(u);
                return;
        }
        o.creds = u->creds;
        u->s3_run = true;
        r = verify_check_start(u->plan->aws, v, &o, true, on_s3_checked, u, &u->call, &u->s3_substitute);
        if (r < 0) {
                u->s3_error = r;
                snprintf(u->s3_code, sizeof u->s3_code, "%s", strerror(-r));
                user_done(u);
        }
}

static void on_last_used(AwsCall *call, AwsResult *res, void *userdata) {
        PlanUser *u = userdata;

        u->call = NULL;
        if (res->error < 0)
                snprintf(u->last_used_code, sizeof u->last_used_code, "%s", aws_result_error_code(res));
        else {
                u->last_used_known = true;
                u->last_used = res->last_used.last_used_date;
        }
        step_s3(u);
}

static void step_last_used(PlanUser *u) {
        const StoreUser *su = u->su;
        int r;

        /* Only for a key that exists (or that we cannot tell about). */
        if (!su || !store_key_is_set(&su->current) ||
            (u->list_error == 0 && !list_access_keys_find(&u->keys, su->current.access_key_id))) {
                step_s3(u);
                return;
        }
        r = iam_get_access_key_last_used(u->plan->aws, su->current.access_key_id, on_last_used, u, &u->call);
        if (r < 0) {
                snprintf(u->last_used_code, sizeof u->last_used_code, "%s", strerror(-r));
                step_s3(u);
        }
}

static void on_listed(AwsCall *call, AwsResult *res, void *userdata) {
        PlanUser *u = userdata;

        u->call = NULL;
        if (res->error < 0) {
                u->list_error = res->error;
                snprintf(u->list_code, sizeof u->list_code, "%s", aws_result_error_code(res));
        } else {
                u->keys = res->list_keys;
                memset(&res->list_keys, 0, sizeof res->list_keys);
        }
        step_last_used(u);
}

static void user_start(PlanUser *u) {
        int r;

        u->su = store_get_user(u->plan->store, u->iu->name);
        r = iam_list_access_keys(u->plan->aws, NULL, u->iu->name, on_listed, u, &u->call);
        if (r < 0) {
                u->list_error = r;
                snprintf(u->list_code, sizeof u->list_code, "%s", strerror(-r));
                step_last_used(u);
        }
}

static void start_more(Plan *p) {
        if (p->starting)
                return; /* the loop below picks up the free slot */
        p->starting = true;
        while (p->next < p->n_users && p->n_running < p->inv->defaults.max_parallel) {
                PlanUser *u = &p->users[p->next++];

                p->n_running++;
                user_start(u);
        }
        p->starting = false;
}

/* ---- the table -------------------------------------------------------- */

enum { COL_USER, COL_KEY, COL_AGE, COL_LAST_USED, COL_ACTION, COL_REASON, _COL_MAX };

static const char *const column_titles[_COL_MAX] = {
        "USER", "CURRENT KEY", "AGE", "LAST USED", "ACTION", "REASON",
};

typedef struct PlanRow {
        char cell[_COL_MAX][PLAN_TEXT_MAX];
} PlanRow;

/* Whatever AWS or the inventory put in a cell stays on one line. */
static void cell_set(char *cell, const char *s) {
        size_t i;

        for (i = 0; s[i] && i + 1 < PLAN_TEXT_MAX; i++)
                cell[i] = (unsigned char) s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
        cell[i] = 0;
}

static void row_fill(const PlanUser *u, usec_t now, PlanRow *row) {
        const StoreUser *su = u->su;
        bool have = su && store_key_is_set(&su->current);
        char buf[64];

        cell_set(row->cell[COL_USER], u->iu->name);
        cell_set(row->cell[COL_KEY], have ? su->current.access_key_id : "-");
        if (!have)
                cell_set(row->cell[COL_AGE], "-");
        else if (su->current.create_date <= 0)
                cell_set(row->cell[COL_AGE], "?");
        else
                cell_set(row->cell[COL_AGE],
                         (usec_t) su->current.create_date >= now
                                 ? "0"
                                 : format_duration_approx(now - (usec_t) su->current.create_date, 2, buf,
                                                          sizeof buf) ?: "?");
        if (u->last_used_known && u->last_used == 0)
                cell_set(row->cell[COL_LAST_USED], "never");
        else if (u->last_used_known)
                cell_set(row->cell[COL_LAST_USED], format_ago((usec_t) u->last_used * USEC_PER_SEC, now, buf, sizeof buf));
        else
                cell_set(row->cell[COL_LAST_USED], u->last_used_code[0] ? "?" : "-");
        cell_set(row->cell[COL_ACTION], plan_action_to_string(u->action));
        cell_set(row->cell[COL_REASON], u->reason);
}

static void print_row(FILE *out, const char *const cells[_COL_MAX], const size_t width[_COL_MAX]) {
        for (size_t c = 0; c < _COL_MAX; c++) {
                if (c + 1 < _COL_MAX)
                        fprintf(out, "%-*s  ", (int) width[c], cells[c]);
                else
                        fprintf(out, "%s\n", cells[c]);
        }
}

static int print_plan(const Plan *p, FILE *out) {
        _cleanup_free_ PlanRow *rows = NULL;
        size_t width[_COL_MAX];

        rows = calloc(p->n_users ?: 1, sizeof *rows);
        if (!rows)
                return -ENOMEM;
        for (size_t c = 0; c < _COL_MAX; c++)
                width[c] = strlen(column_titles[c]);
        for (size_t i = 0; i < p->n_users; i++) {
                row_fill(&p->users[i], p->now, &rows[i]);
                for (size_t c = 0; c < _COL_MAX; c++) {
                        size_t w = strlen(rows[i].cell[c]);
                        if (w > width[c])
                                width[c] = w;
                }
        }

        print_row(out, column_titles, width);
        for (size_t i = 0; i < p->n_users; i++) {
                const char *cells[_COL_MAX];

                for (size_t c = 0; c < _COL_MAX; c++)
                        cells[c] = rows[i].cell[c];
                print_row(out, cells, width);
        }
        if (fflush(out) != 0 || ferror(out))
                return -EIO;
        return 0;
}

/* ---- entry ------------------------------------------------------------ */

static void plan_done(Plan *p) {
        for (size_t i = 0; i < p->n_users; i++) {
                PlanUser *u = &p->users[i];

                if (u->call)
                        aws_call_cancel(u->call);
                aws_credentials_unref(u->creds);
                list_access_keys_result_done(&u->keys);
        }
        free(p->users);
        p->users = NULL;
}

int plan_run(sd_event *event, AwsClient *aws, const Store *store, const Inventory *inv, bool force, FILE *out) {
        Plan p = {
                .aws = aws,
                .store = store,
                .inv = inv,
                .force = force,
                .now = now_usec(CLOCK_REALTIME),
                .n_users = inv->n_users,
        };
        bool blocked = false;
        int r = 0;

        p.users = calloc(inv->n_users ?: 1, sizeof *p.users);
        if (!p.users)
                return -ENOMEM;
        for (size_t i = 0; i < inv->n_users; i++) {
                p.users[i].plan = &p;
                p.users[i].iu = &inv->users[i];
        }

        start_more(&p);
        while (p.n_finished < p.n_users) {
                r = sd_event_run(event, UINT64_MAX);
                if (r < 0)
                        break;
        }
        if (r >= 0)
                r = print_plan(&p, out);
        for (size_t i = 0; r >= 0 && i < p.n_users; i++)
                if (p.users[i].action == PLAN_BLOCKED)
                        blocked = true;
        plan_done(&p);
        if (r < 0)
                return r;
        return blocked ? PLAN_SOME_BLOCKED : 0;
}

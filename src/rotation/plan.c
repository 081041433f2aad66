/* SPDX-License-Identifier: MIT */
/*
 * The dry run. Every user goes through the same short chain of read-only
 * calls on the caller's loop (ListAccessKeys, GetAccessKeyLastUsed of a
 * key an interrupted create may have made and of the held key, the S3
 * check with the held key); once its answers are in, the targets are
 * looked at (stat and access only) and the verdict is decide()'s, the
 * function the engine acts on: after an undo, decide() is asked again on
 * the state the undo leaves (decision_assume()), as the engine asks it
 * again once the undo is done. So the plan says what a real run would do.
 */
#include "rotation/plan.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aws/iam.h"
#include "aws/s3.h"
#include "basic/duration.h"
#include "basic/path.h"
#include "basic/sanitize.h"
#include "rotation/decide.h"
#include "rotation/verify.h"
#include "targets/targets.h"

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
        OrphanUse orphan_use; /* of the key an interrupted create may have made */
        char orphan_code[128]; /* why GetAccessKeyLastUsed of it failed */
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

/* ---- targets ---------------------------------------------------------- */

/*
 * Could target_write() write @t? @check is target_check_directory() (can
 * files be created in its directory) or target_check() (the whole write
 * but the write, its directory being fine): the write's own resolution
 * and rules, read only, so the plan gives a real run's reason. Returns
 * 0, or -errno with @why set.
 */
static int check_target(int (*check)(const TargetSpec *, char **), const InventoryTarget *t, char *why,
                        size_t size) {
        TargetSpec spec = target_spec_from_inventory(t);
        _cleanup_free_ char *err = NULL;
        int r;

        r = check(&spec, &err);
        if (r < 0)
                snprintf(why, size, "%s", err ?: strerror(-r));
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
                /* Whom the directory must belong to depends on the owner. */
                for (j = 0; j < i && !(streq(dirs[j], dirs[i]) && u->iu->targets[j].uid == t->uid); j++)
                        ;
                if (j < i)
                        dir_r[i] = dir_r[j];
                else {
                        dir_r[i] = check_target(target_check_directory, t, why, sizeof why);
                        if (dir_r[i] < 0)
                                text_add(u->problems, sizeof u->problems, "target %s", why);
                }
                if (dir_r[i] < 0)
                        continue;
                if (check_target(target_check, t, why, sizeof why) < 0)
                        text_add(u->problems, sizeof u->problems, "target %s", why);
        }
        free_dirs(dirs, n);
        return r;
}

/* ---- the verdict ------------------------------------------------------ */

static PlanAction plan_action_of(DecisionAction a) {
        switch (a) {
        case DECISION_NONE:
                return PLAN_NONE;
        case DECISION_ROTATE:
                return PLAN_ROTATE;
        case DECISION_DELETE_ORPHAN:
        case DECISION_UNDO:
        case DECISION_RESET:
                return PLAN_UNDO;
        case DECISION_DISTRIBUTE:
        case DECISION_NOTIFY:
        case DECISION_DRAIN:
        case DECISION_COMPLETE:
        case DECISION_ROLLBACK:
        case DECISION_ROLLBACK_FINISH:
                return PLAN_FINISH;
        case DECISION_DELETE_OLD:
                return PLAN_DELETE_OLD;
        case DECISION_WAIT:
                return PLAN_WAIT;
        default:
                return PLAN_BLOCKED;
        }
}

static DecisionInput plan_input(const PlanUser *u, const StoreUser *su, const ListAccessKeysResult *keys) {
        return (DecisionInput) {
                .iu = u->iu,
                .su = su,
                .keys = keys,
                .flags = u->plan->force ? ROTATION_FORCE : 0,
                .now = u->plan->now,
                .orphan_use = u->orphan_use,
        };
}

/*
 * decide(), and after an undo decide() again on what the undo leaves, as
 * the engine does. The dry run's copies are shallow: decision_assume()
 * forgets slots without touching the store's secrets.
 */
static PlanAction decide_plan(PlanUser *u) {
        StoreUser view = u->su ? *u->su : (StoreUser) { .phase = STORE_PHASE_IDLE };
        _cleanup_free_ AccessKeyMeta *copy = NULL;
        ListAccessKeysResult keys = u->keys;
        PlanAction first = _PLAN_ACTION_INVALID;
        Decision d;

        if (u->list_error < 0) {
                snprintf(u->reason, sizeof u->reason, "ListAccessKeys failed: %s; a real run stops there",
                         u->list_code);
                return PLAN_BLOCKED;
        }
        if (keys.n_keys > 0) {
                copy = calloc(keys.n_keys, sizeof *copy);
                if (!copy) {
                        snprintf(u->reason, sizeof u->reason, "out of memory");
                        return PLAN_BLOCKED;
                }
                memcpy(copy, keys.keys, keys.n_keys * sizeof *copy);
                keys.keys = copy;
        }
        u->reason[0] = 0;
        /* Each undo empties a slot or deletes a key: a handful of rounds at most. */
        for (unsigned round = 0; round < 8; round++) {
                const DecisionInput in = plan_input(u, &view, &keys);

                decide(&in, &d);
                if (d.action == DECISION_CHECK_ORPHAN && u->orphan_code[0]) {
                        snprintf(u->reason, sizeof u->reason,
                                 "cannot tell whether the unknown key %s is the one an interrupted create made "
                                 "(GetAccessKeyLastUsed: %s); a real run leaves it alone and stops",
                                 d.key_id, u->orphan_code);
                        return PLAN_BLOCKED;
                }
                if (first < 0)
                        first = plan_action_of(d.action);
                else
                        text_add(u->reason, sizeof u->reason, "then %s: ", plan_action_to_string(plan_action_of(d.action)));
                size_t n = strlen(u->reason);
                snprintf(u->reason + n, sizeof u->reason - n, "%s", d.reason);
                if (d.action == DECISION_WAIT && u->plan->force)
                        text_add(u->reason, sizeof u->reason, "--force starts no new rotation before that");
                if (!decision_then_decides(d.action))
                        break;
                decision_assume(&d, &view, &keys);
        }
        if (first == PLAN_UNDO && plan_action_of(d.action) == PLAN_BLOCKED)
                return PLAN_BLOCKED;
        return first;
}

static void conclude(PlanUser *u) {
        char otherwise[PLAN_TEXT_MAX];

        u->action = decide_plan(u);
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

static void on_orphan_checked(AwsCall *call, AwsResult *res, void *userdata) {
        PlanUser *u = userdata;

        u->call = NULL;
        if (res->error < 0)
                snprintf(u->orphan_code, sizeof u->orphan_code, "%s", aws_result_error_code(res));
        else
                u->orphan_use = res->last_used.last_used_date > 0 ? ORPHAN_USE_USED : ORPHAN_USE_NEVER;
        step_last_used(u);
}

/* An interrupted create: the engine asks IAM whether the unknown key was
 * ever used before it deletes it, and so does the plan. */
static void step_orphan(PlanUser *u) {
        const DecisionInput in = plan_input(u, u->su, &u->keys);
        Decision d;
        int r;

        decide(&in, &d);
        if (u->list_error < 0 || d.action != DECISION_CHECK_ORPHAN) {
                step_last_used(u);
                return;
        }
        r = iam_get_access_key_last_used(u->plan->aws, d.key_id, on_orphan_checked, u, &u->call);
        if (r < 0) {
                snprintf(u->orphan_code, sizeof u->orphan_code, "%s", strerror(-r));
                step_last_used(u);
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
        step_orphan(u);
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
/* Cells hold AWS error codes and key ids: no C0 or C1 control, no invalid
 * UTF-8 on the terminal. */
static void cell_set(char *cell, const char *s) {
        (void) sanitize_text(s, cell, PLAN_TEXT_MAX);
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

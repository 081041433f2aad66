/* SPDX-License-Identifier: MIT */
/*
 * The daemon's manager. Everything happens on one sd-event loop; the only
 * periodic wakeup is the watchdog: while nothing is due, one timer waits
 * for the earliest due user, and one more for the next scheduled audit
 * (defaults.audit_every).
 *
 * After READY=1 every user that holds a key is checked against IAM, a few
 * at a time (daemon/keycheck.h): a user whose held key IAM no longer has is
 * *lost* (a store restored from an older copy). A lost user is shown as
 * such by status, is not scheduled, is not recovered, and is rotated only
 * with --replace-lost, until a rotation of it completes. Users whose
 * record needs recovery are checked first, and recovered only after.
 */
#include "daemon/manager.h"

#include <errno.h>
#include <json-c/json.h>
#include <malloc.h>
#include <signal.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "audit/audit.h"
#include "basic/duration.h"
#include "basic/log.h"
#include "basic/path.h"
#include "config.h"
#include "daemon/control.h"
#include "daemon/keycheck.h"
#include "policy/review.h"
#include "rotation/rotation.h"
#include "targets/targets.h"

#define BACKOFF_MIN USEC_PER_MINUTE
#define BACKOFF_MAX (6 * USEC_PER_HOUR)

/*
 * The descriptors keyrotd keeps for its own work, whatever its control
 * clients do (docs/DESIGN.md §6). Fixed: stdio, the journal, the event
 * loop's epoll, signalfd and timerfds, the state lock, the store, its
 * temporary file and directory, the committer's eventfd, the listening
 * socket, sd_notify's socket, the policy review's connections. Per
 * max_parallel slot: a rotation's AWS connections (each with the
 * resolver's socket pair), its hook's pipes, a target's temporary file and
 * directories, and a key check's connection. And the refused clients being
 * answered (CONTROL_REFUSED_MAX). Below a limit that leaves
 * CONNECTIONS_MIN for clients, clients get CONNECTIONS_MIN anyway.
 */
#define FDS_RESERVED_FIXED 64U
#define FDS_PER_PARALLEL 16U
#define CONNECTIONS_MIN 16U

typedef struct Waiter Waiter;
typedef struct AuditRun AuditRun;

/* Scheduling state per inventory user; rebuilt on reload. */
typedef struct Sched {
        char *name;
        const InventoryUser *iu; /* in the current inventory; rebuilt on reload */
        usec_t splay;       /* this user's random offset within defaults.splay */
        usec_t next_due;    /* CLOCK_REALTIME; USEC_INFINITY = not scheduled */
        bool in_flight;
        RotationTrigger trigger;
        Waiter **watchers; /* waiting for the rotation already in flight */
        size_t n_watchers;
        /* Asked to rotate while a recovery (which never starts a rotation)
         * is in flight: rotate once it ends. followers wait for that one. */
        bool follow_up;
        RotationTrigger follow_up_trigger;
        unsigned follow_up_flags;
        Waiter **followers;
        size_t n_followers;
        /* The store's key is not in IAM (keycheck.h): reason says why and
         * names the fix. */
        bool lost;
        char *lost_reason;
        bool check_queued;        /* its check against IAM was queued */
        bool recover_after_check; /* its record needs recovery: after the check */
        /* The latest Expiration of a get known to be in the store on disk,
         * and for which key: a get within it needs no commit. */
        usec_t handed_durable;
        char handed_durable_key[STORE_ACCESS_KEY_ID_MAX + 1];
} Sched;

struct Manager {
        Runtime *rt;
        RotationEngine *engine;
        ControlServer *control;
        ControlServer *credentials; /* the readers' socket: get only */
        sd_event_source *due_timer;
        Sched *sched;
        size_t n_sched;
        Inventory **retired; /* old inventories in-flight rotations may still point into */
        size_t n_retired;
        Waiter *waiters;
        sd_event_source *audit_timer; /* CLOCK_BOOTTIME: every audit_every, suspend included */
        usec_t audit_base;            /* when the timer was last armed from */
        AuditRun *audits;             /* in flight */
        KeyChecker *checker;          /* the held keys against IAM, after READY=1 */
        unsigned recovering;
        uint64_t nofile;              /* RLIMIT_NOFILE, as raised at start */
        usec_t started;
        bool stopping;
};

/* A control client waiting for rotations to end (rotate with "wait"). */
struct Waiter {
        Waiter *next;
        ControlRequest *req;
        unsigned pending;
        unsigned failed;
};

typedef struct Submission {
        Manager *m;
        Waiter *waiter; /* may be NULL */
        bool recovery;  /* counted in m->recovering */
} Submission;

/* An audit in flight: of every user (the schedule), or of one user after
 * its rotation. */
struct AuditRun {
        AuditRun *next;
        Manager *m;
        PolicyReview *audit;
        char *user;          /* NULL: every inventory user */
        const char *trigger; /* "schedule", "rotation" */
};

usec_t manager_backoff(unsigned failures) {
        usec_t b = BACKOFF_MIN;

        for (unsigned i = 1; i < failures && b < BACKOFF_MAX; i++)
                b *= 2;
        return b < BACKOFF_MAX ? b : BACKOFF_MAX;
}

static void reply_error(ControlRequest *req, const char *fmt, ...) _printf_(2, 3);
static void reply_error(ControlRequest *req, const char *fmt, ...) {
        json_object *o = json_object_new_object();
        char msg[256];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        json_object_object_add(o, "ok", json_object_new_boolean(false));
        json_object_object_add(o, "error", json_object_new_string(msg));
        control_reply(req, o);
        control_request_end(req);
}

static Sched *sched_find_in(Sched *sched, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (streq(sched[i].name, name))
                        return &sched[i];
        return NULL;
}

static Sched *sched_find(Manager *m, const char *name) {
        return sched_find_in(m->sched, m->n_sched, name);
}

/* decide() on the store alone: the key list IAM would give if it agreed
 * with the store. What status shows, and what the schedule follows. */
static void decide_from_store(const InventoryUser *iu, const StoreUser *su, usec_t now, Decision *ret) {
        AccessKeyMeta buf[3];
        ListAccessKeysResult keys;

        decision_keys_from_store(su, buf, &keys);
        decide(&(DecisionInput) { .iu = iu, .su = su, .keys = &keys, .now = now }, ret);
}

/* When is this user next due, judged from the store alone? */
static usec_t compute_due(Manager *m, const Sched *s) {
        const InventoryUser *iu = s->iu;
        const StoreUser *su = store_get_user(m->rt->store, s->name);
        Decision d;
        usec_t due;

        if (!iu || !su || !store_key_is_set(&su->current))
                return USEC_INFINITY; /* not adopted: nothing to rotate */
        if (s->lost)
                return USEC_INFINITY; /* the operator's: rotate --replace-lost */
        decide_from_store(iu, su, now_usec(CLOCK_REALTIME), &d);
        if (d.recovering)
                return 0; /* interrupted: recover now */
        if (d.action == DECISION_WAIT || d.action == DECISION_DELETE_OLD || d.action == DECISION_COMPLETE ||
            d.action == DECISION_DRAIN)
                due = d.when; /* the end of grace, or when a parked drain looks again */
        else
                /* Due or not, and failing users too: a failure is retried,
                 * and audited, on the backoff schedule below. */
                due = (usec_t) su->current.create_date + iu->max_age + s->splay;
        if (su->failures > 0 && su->next_attempt > 0)
                due = (usec_t) su->next_attempt;
        return due;
}

static void update_status(Manager *m) {
        const Sched *next = NULL;
        unsigned failing = 0, lost = 0;
        char in[DURATION_STRING_MAX] = "";
        usec_t now = now_usec(CLOCK_REALTIME);

        for (size_t i = 0; i < m->n_sched; i++) {
                const StoreUser *su = store_get_user(m->rt->store, m->sched[i].name);
                if (su && su->failures > 0)
                        failing++;
                if (m->sched[i].lost)
                        lost++;
                if (m->sched[i].next_due != USEC_INFINITY && (!next || m->sched[i].next_due < next->next_due))
                        next = &m->sched[i];
        }
        if (next)
                format_duration_approx(next->next_due > now ? next->next_due - now : 0, 2, in, sizeof in);
        sd_notifyf(false, "STATUS=%zu users, next: %s%s%s, %u failing%s", m->n_sched, next ? next->name : "none",
                   next ? " in " : "", next ? in : "", failing, lost > 0 ? ", some lost (see keyrotctl status)" : "");
}

static void rotation_done(const RotationReport *rep, void *userdata);
static void queue_key_checks(Manager *m);
static void apply_connection_cap(Manager *m, bool announce);

static int submit(Manager *m, Sched *s, RotationTrigger trigger, unsigned flags, Waiter *w) {
        Submission *sub = calloc(1, sizeof *sub);
        int r;

        if (!sub)
                return -ENOMEM;
        sub->m = m;
        sub->waiter = w;
        sub->recovery = trigger == TRIGGER_RECOVERY;
        r = rotation_engine_submit(m->engine, s->name, trigger, flags, rotation_done, sub);
        if (r < 0) {
                free(sub);
                return r;
        }
        s->in_flight = true;
        s->trigger = trigger;
        if (sub->recovery)
                m->recovering++;
        if (w)
                w->pending++;
        return 0;
}

static void arm_timer(Manager *m);

static int due_timer_fired(sd_event_source *src, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        usec_t now = now_usec(CLOCK_REALTIME);

        for (size_t i = 0; i < m->n_sched; i++) {
                Sched *s = &m->sched[i];
                if (!s->in_flight && s->next_due <= now) {
                        int r = submit(m, s, TRIGGER_SCHEDULE, 0, NULL);
                        if (r < 0) {
                                log_error_errno(r, "cannot queue the scheduled rotation of %s: %m", s->name);
                                /* Due still, it would fire the timer at once, forever. */
                                s->next_due = now + manager_backoff(1);
                        }
                }
        }
        arm_timer(m);
        return 0;
}

/* One timer for the earliest due user: no periodic wakeups while idle. */
static void arm_timer(Manager *m) {
        usec_t earliest = USEC_INFINITY;

        if (m->stopping || m->recovering > 0) {
                (void) sd_event_source_set_enabled(m->due_timer, SD_EVENT_OFF);
                update_status(m);
                return;
        }
        for (size_t i = 0; i < m->n_sched; i++)
                if (!m->sched[i].in_flight && m->sched[i].next_due < earliest)
                        earliest = m->sched[i].next_due;
        if (earliest == USEC_INFINITY)
                (void) sd_event_source_set_enabled(m->due_timer, SD_EVENT_OFF);
        else {
                (void) sd_event_source_set_time(m->due_timer, earliest);
                (void) sd_event_source_set_enabled(m->due_timer, SD_EVENT_ONESHOT);
        }
        update_status(m);
}

static void waiter_done(Manager *m, Waiter *w) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "ok", json_object_new_boolean(w->failed == 0));
        json_object_object_add(o, "failed", json_object_new_int((int) w->failed));
        if (w->failed)
                json_object_object_add(o, "error", json_object_new_string("a rotation failed"));
        if (control_request_alive(w->req))
                control_reply(w->req, o);
        else
                json_object_put(o);
        control_request_end(w->req);
        for (Waiter **p = &m->waiters; *p; p = &(*p)->next)
                if (*p == w) {
                        *p = w->next;
                        break;
                }
        free(w);
}

static void release_retired(Manager *m) {
        if (rotation_engine_busy(m->engine) > 0)
                return;
        for (size_t i = 0; i < m->n_retired; i++)
                inventory_free(m->retired[i]);
        free(m->retired);
        m->retired = NULL;
        m->n_retired = 0;
}

static void audit_run_free(AuditRun *run) {
        for (AuditRun **p = &run->m->audits; *p; p = &(*p)->next)
                if (*p == run) {
                        *p = run->next;
                        break;
                }
        free(run->user);
        free(run);
}

static void audit_done(PolicyReport *report, void *userdata) {
        AuditRun *run = userdata;

        policy_report_journal(report, run->user, run->trigger);
        policy_report_free(report);
        audit_run_free(run);
}

/* The policy review, read-only, beside whatever rotations run: its
 * findings go to the journal, one entry each. */
static int start_audit(Manager *m, const char *user, const char *trigger) {
        const char *users[] = { user, NULL };
        AuditRun *run;
        int r;

        for (run = m->audits; run; run = run->next)
                if (streq_ptr(run->user, user))
                        return -EBUSY; /* the one in flight will tell */
        run = calloc(1, sizeof *run);
        if (!run)
                return -ENOMEM;
        *run = (AuditRun) { .m = m, .trigger = trigger, .user = user ? strdup(user) : NULL };
        if (user && !run->user) {
                free(run);
                return -ENOMEM;
        }
        PolicyReviewOptions o = {
                .inv = m->rt->inv,
                .store = m->rt->store,
                .users = user ? users : NULL,
        };
        r = policy_review_start(m->rt->aws, &o, audit_done, run, &run->audit);
        if (r < 0) {
                free(run->user);
                free(run);
                return r;
        }
        run->next = m->audits;
        m->audits = run;
        return 0;
}

static void arm_audit_timer(Manager *m) {
        usec_t every = m->rt->inv->defaults.audit_every;

        (void) sd_event_source_set_time(m->audit_timer, m->audit_base + every);
        (void) sd_event_source_set_enabled(m->audit_timer, m->stopping ? SD_EVENT_OFF : SD_EVENT_ONESHOT);
}

static int audit_timer_fired(sd_event_source *src, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        int r;

        if (m->stopping)
                return 0;
        r = start_audit(m, NULL, "schedule");
        if (r < 0 && r != -EBUSY)
                log_error_errno(r, "cannot start the scheduled audit: %m");
        /* The next one counts from now, whether this one started or the
         * last is still busy: one wakeup per audit_every, never a burst. */
        m->audit_base = now_usec(CLOCK_BOOTTIME);
        arm_audit_timer(m);
        return 0;
}

static void start_follow_up(Manager *m, Sched *s);
static void waiters_fail(Manager *m, Waiter **list, size_t n);

/* The next attempt of @user is scheduling, not a rotation step: if it is
 * not committed, it holds in memory until keyrotd restarts. */
static void commit_next_attempt(Manager *m, const char *user) {
        int r = store_commit(m->rt->store);

        if (r < 0) {
                log_error_errno(r, "cannot commit the next attempt for %s to the store %s: %m; "
                                "it holds until keyrotd restarts", user, store_path(m->rt->store));
                /* A store that cannot be written is every rotation's
                 * problem: on the audit trail, not only in the log. */
                audit_emit(&(AuditRecord) {
                        .event = AUDIT_ROTATION_FAILED,
                        .user = user,
                        .trigger = "schedule",
                        .result = "failed",
                        .error = "StoreCommit",
                        .message = "the next attempt could not be recorded in the store",
                        .failure = true,
                });
        }
}

static void rotation_done(const RotationReport *rep, void *userdata) {
        Submission *sub = userdata;
        Manager *m = sub->m;
        Sched *s = sched_find(m, rep->user);
        StoreUser *su = store_get_user(m->rt->store, rep->user);

        if (rep->outcome == ROTATION_FAILED && su && su->failures > 0) {
                su->next_attempt = (int64_t) (now_usec(CLOCK_REALTIME) + manager_backoff(su->failures));
                commit_next_attempt(m, rep->user);
        } else if (su && rep->outcome != ROTATION_FAILED && su->next_attempt != 0) {
                su->next_attempt = 0;
                commit_next_attempt(m, rep->user);
        }
        if (s) {
                s->in_flight = false;
                /* A new key is in service (--replace-lost, or a rotation
                 * once IAM agreed again): nothing is lost any more. */
                if (rep->outcome == ROTATION_COMPLETED && s->lost) {
                        log_info("%s: no longer lost: keyrotd holds its key %s", s->name, rep->new_key_id);
                        s->lost = false;
                        free(s->lost_reason);
                        s->lost_reason = NULL;
                }
                s->next_due = compute_due(m, s);
                /* A parked or still-interrupted user must not spin. */
                if (s->next_due == 0 && rep->outcome != ROTATION_COMPLETED)
                        s->next_due = now_usec(CLOCK_REALTIME) + manager_backoff(1);
        }
        Waiter *notify[64];
        size_t n_notify = 0;
        if (sub->waiter)
                notify[n_notify++] = sub->waiter;
        if (s) {
                for (size_t i = 0; i < s->n_watchers && n_notify < ELEMENTSOF(notify); i++)
                        notify[n_notify++] = s->watchers[i];
                free(s->watchers);
                s->watchers = NULL;
                s->n_watchers = 0;
        }
        for (size_t i = 0; i < n_notify; i++) {
                Waiter *w = notify[i];
                json_object *ev = json_object_new_object();

                json_object_object_add(ev, "event", json_object_new_string("rotation"));
                json_object_object_add(ev, "user", json_object_new_string(rep->user));
                json_object_object_add(ev, "outcome",
                                       json_object_new_string(rotation_outcome_to_string(rep->outcome)));
                json_object_object_add(ev, "action", json_object_new_string(rep->action));
                if (rep->draining)
                        json_object_object_add(ev, "draining", json_object_new_boolean(true));
                json_object_object_add(ev, "old_key_id", json_object_new_string(rep->old_key_id));
                json_object_object_add(ev, "new_key_id", json_object_new_string(rep->new_key_id));
                if (rep->error)
                        json_object_object_add(ev, "error", json_object_new_string(rep->error));
                if (control_request_alive(w->req))
                        control_stream(w->req, ev);
                else
                        json_object_put(ev);
                if (rep->outcome == ROTATION_FAILED || rep->outcome == ROTATION_PARKED)
                        w->failed++;
                if (--w->pending == 0)
                        waiter_done(m, w);
        }
        /* A new key is in service: check that the user still has nothing
         * beyond its S3 job, while the rotation is fresh in the journal. */
        if (rep->outcome == ROTATION_COMPLETED && s && !m->stopping) {
                int k = start_audit(m, rep->user, "rotation");
                if (k < 0 && k != -EBUSY)
                        log_error_errno(k, "cannot start the audit of %s: %m", rep->user);
        }
        /* Counted by the submission, not the user: a reload may have
         * dropped the user meanwhile. */
        if (sub->recovery && m->recovering > 0)
                m->recovering--;
        if (s)
                s->trigger = TRIGGER_SCHEDULE;
        if (s && s->follow_up)
                start_follow_up(m, s);
        free(sub);
        release_retired(m);
        arm_timer(m);
}

static int build_sched(Manager *m, const Inventory *inv) {
        Sched *n = calloc(inv->n_users ?: 1, sizeof(Sched));

        if (!n)
                return -ENOMEM;
        for (size_t i = 0; i < inv->n_users; i++) {
                Sched *old = sched_find(m, inv->users[i].name);

                n[i].iu = &inv->users[i];
                n[i].name = strdup(inv->users[i].name);
                if (!n[i].name) {
                        for (size_t j = 0; j < i; j++)
                                free(n[j].name);
                        free(n);
                        return -ENOMEM;
                }
                /* Keep a user's splay across reloads so it does not jump around. */
                n[i].splay = old ? old->splay
                             : inv->defaults.splay > 0 ? (usec_t) randombytes_uniform(
                                                                 (uint32_t) (inv->defaults.splay / USEC_PER_SEC)) *
                                                                 USEC_PER_SEC
                                                       : 0;
                n[i].in_flight = old ? old->in_flight : false;
                n[i].trigger = old ? old->trigger : TRIGGER_SCHEDULE;
                if (old) {
                        n[i].lost = old->lost;
                        n[i].handed_durable = old->handed_durable;
                        memcpy(n[i].handed_durable_key, old->handed_durable_key, sizeof n[i].handed_durable_key);
                        n[i].lost_reason = TAKE_PTR(old->lost_reason);
                        n[i].check_queued = old->check_queued;
                        n[i].recover_after_check = old->recover_after_check;
                        n[i].watchers = TAKE_PTR(old->watchers);
                        n[i].n_watchers = old->n_watchers;
                        old->n_watchers = 0;
                        n[i].follow_up = old->follow_up;
                        n[i].follow_up_trigger = old->follow_up_trigger;
                        n[i].follow_up_flags = old->follow_up_flags;
                        n[i].followers = TAKE_PTR(old->followers);
                        n[i].n_followers = old->n_followers;
                        old->n_followers = 0;
                }
        }
        for (size_t i = 0; i < m->n_sched; i++) {
                /* A recovery that waits for its check will not come. */
                if (m->sched[i].recover_after_check && !sched_find_in(n, inv->n_users, m->sched[i].name) &&
                    m->recovering > 0)
                        m->recovering--;
                /* Users dropped by a reload: whoever waited on them is told. */
                waiters_fail(m, m->sched[i].watchers, m->sched[i].n_watchers);
                waiters_fail(m, m->sched[i].followers, m->sched[i].n_followers);
                free(m->sched[i].name);
                free(m->sched[i].lost_reason);
        }
        free(m->sched);
        m->sched = n;
        m->n_sched = inv->n_users;
        for (size_t i = 0; i < m->n_sched; i++)
                m->sched[i].next_due = compute_due(m, &m->sched[i]);
        return 0;
}

/* Load the inventory anew; a bad one is rejected and the old stays.
 * Every failure is logged here. */
static int reload(Manager *m, char **ret_error) {
        Runtime *rt = m->rt;
        Inventory *inv = NULL, **retired;
        InventoryErrors errors = {};
        int r;

        sd_notifyf(false, "RELOADING=1\nMONOTONIC_USEC=%llu", (unsigned long long) now_usec(CLOCK_MONOTONIC));
        r = inventory_load(rt->config_path, &inv, &errors);
        if (r < 0) {
                for (size_t i = 0; i < errors.n; i++)
                        log_error("reload rejected: %s", errors.lines[i]);
                if (errors.n == 0)
                        log_error_errno(r, "reload rejected: cannot load the inventory %s: %m", rt->config_path);
                if (ret_error)
                        (void) asprintf_safe(ret_error, "%s", errors.n > 0 ? errors.lines[0] : strerror(-r));
                inventory_errors_clear(&errors);
                sd_notify(false, "READY=1");
                return r;
        }
        retired = realloc(m->retired, (m->n_retired + 1) * sizeof(Inventory *));
        if (!retired) {
                inventory_free(inv);
                sd_notify(false, "READY=1");
                return log_error_errno(-ENOMEM, "reload of the inventory %s failed: %m", rt->config_path);
        }
        m->retired = retired;
        m->retired[m->n_retired++] = rt->inv;
        rt->inv = inv;
        rotation_engine_set_inventory(m->engine, inv);
        r = build_sched(m, inv);
        apply_connection_cap(m, false); /* max_parallel may have changed */
        if (m->checker) {
                /* Users the reload added: checked like those at start, and
                 * an interrupted rotation of theirs recovered after that. */
                for (size_t i = 0; i < m->n_sched; i++)
                        if (!m->sched[i].check_queued && !m->sched[i].in_flight && m->sched[i].next_due == 0) {
                                m->sched[i].recover_after_check = true;
                                m->recovering++;
                        }
                queue_key_checks(m);
        }
        release_retired(m);
        arm_timer(m);
        arm_audit_timer(m); /* audit_every may have changed */
        if (r < 0)
                log_error_errno(r, "reload of the inventory %s: cannot schedule its users: %m", rt->config_path);
        else
                log_info("inventory %s reloaded: %zu users", rt->config_path, inv->n_users);
        sd_notify(false, "READY=1");
        return r;
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        (void) reload(userdata, NULL); /* logged there */
        return 0;
}

static int submit_or_watch(Manager *m, Sched *s, RotationTrigger trigger, unsigned flags, Waiter *w);

static int rotate_all(Manager *m, RotationTrigger trigger, Waiter *w) {
        int r = 0;

        for (size_t i = 0; i < m->n_sched; i++) {
                int k = submit_or_watch(m, &m->sched[i], trigger, ROTATION_FORCE, w);
                if (k < 0)
                        r = k;
        }
        return r;
}

static int on_sigusr1(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;

        log_info("SIGUSR1: rotating every user now");
        (void) rotate_all(m, TRIGGER_SIGNAL, NULL); /* each failure logged by submit_or_watch() */
        arm_timer(m);
        return 0;
}

static int on_sigterm(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;

        sd_notify(false, "STOPPING=1");
        log_info("%s (signal %u): stopping at the next safe point", strsignal((int) si->ssi_signo), si->ssi_signo);
        m->stopping = true;
        rotation_engine_stop(m->engine);
        /* Neither does a check of the keys. */
        m->checker = keychecker_free(m->checker);
        /* An audit changes nothing: stop it rather than wait for it. */
        while (m->audits) {
                policy_review_cancel(m->audits->audit);
                audit_run_free(m->audits);
        }
        (void) sd_event_source_set_enabled(m->audit_timer, SD_EVENT_OFF);
        arm_timer(m);
        return 0;
}

/* ---- control socket --------------------------------------------------- */

static int ctl_status(ControlRequest *req, void *userdata) {
        Manager *m = userdata;
        usec_t now = now_usec(CLOCK_REALTIME);
        json_object *o = json_object_new_object(), *users = json_object_new_array();

        json_object_object_add(o, "version", json_object_new_string(PACKAGE_VERSION));
        json_object_object_add(o, "uptime_sec",
                               json_object_new_int64((int64_t) ((now_usec(CLOCK_MONOTONIC) - m->started) / USEC_PER_SEC)));
        for (size_t i = 0; i < m->n_sched; i++) {
                const Sched *s = &m->sched[i];
                const StoreUser *su = store_get_user(m->rt->store, s->name);
                json_object *u = json_object_new_object();

                json_object_object_add(u, "name", json_object_new_string(s->name));
                json_object_object_add(u, "phase", json_object_new_string(su ? store_phase_to_string(su->phase)
                                                                             : "not-adopted"));
                if (s->lost) {
                        /* What decide() says of the store alone does not
                         * hold: IAM no longer has the key. */
                        json_object_object_add(u, "lost", json_object_new_boolean(true));
                        json_object_object_add(u, "next_action", json_object_new_string("fail"));
                        json_object_object_add(u, "next_reason", json_object_new_string(s->lost_reason ?: "lost"));
                } else if (s->iu) {
                        Decision d;

                        decide_from_store(s->iu, su, now, &d);
                        json_object_object_add(u, "next_action",
                                               json_object_new_string(decision_action_to_string(d.action)));
                        json_object_object_add(u, "next_reason", json_object_new_string(d.reason));
                }
                if (su && store_key_is_set(&su->current)) {
                        json_object_object_add(u, "current_key_id", json_object_new_string(su->current.access_key_id));
                        json_object_object_add(u, "key_age_sec",
                                               json_object_new_int64(((int64_t) now - su->current.create_date) /
                                                                     (int64_t) USEC_PER_SEC));
                }
                if (s->next_due != USEC_INFINITY)
                        json_object_object_add(u, "next_due_sec",
                                               json_object_new_int64(((int64_t) s->next_due - (int64_t) now) /
                                                                     (int64_t) USEC_PER_SEC));
                /* A parked drain: the old key stays Active for its consumers. */
                if (su && su->phase == STORE_PHASE_NOTIFIED && su->drain_next != 0 &&
                    store_key_is_set(&su->previous)) {
                        json_object_object_add(u, "draining_key_id",
                                               json_object_new_string(su->previous.access_key_id));
                        json_object_object_add(u, "drain_warnings", json_object_new_int((int) su->drain_warnings));
                        json_object_object_add(u, "drain_next_sec",
                                               json_object_new_int64((su->drain_next - (int64_t) now) /
                                                                     (int64_t) USEC_PER_SEC));
                }
                if (su && su->last_result)
                        json_object_object_add(u, "last_result", json_object_new_string(su->last_result));
                if (su && su->last_error)
                        json_object_object_add(u, "last_error", json_object_new_string(su->last_error));
                json_object_object_add(u, "failures", json_object_new_int(su ? (int) su->failures : 0));
                json_object_object_add(u, "in_flight", json_object_new_boolean(s->in_flight));
                json_object_array_add(users, u);
        }
        json_object_object_add(o, "users", users);
        control_reply(req, o);
        control_request_end(req);
        return 0;
}

/* A user already rotating: the waiter hears how that rotation ends. */
static int waiter_list_add(Waiter ***list, size_t *n, Waiter *w) {
        Waiter **l;

        if (*n >= 63)
                return -EBUSY;
        l = realloc(*list, (*n + 1) * sizeof(Waiter *));
        if (!l)
                return -ENOMEM;
        *list = l;
        l[(*n)++] = w;
        w->pending++;
        return 0;
}

/* A rotation of a lost user will not run: the waiter hears why, as a
 * failed rotation of that user. */
static void waiter_tell_lost(Waiter *w, const Sched *s) {
        json_object *ev = json_object_new_object();

        json_object_object_add(ev, "event", json_object_new_string("rotation"));
        json_object_object_add(ev, "user", json_object_new_string(s->name));
        json_object_object_add(ev, "outcome", json_object_new_string(rotation_outcome_to_string(ROTATION_FAILED)));
        json_object_object_add(ev, "old_key_id", json_object_new_string(""));
        json_object_object_add(ev, "new_key_id", json_object_new_string(""));
        json_object_object_add(ev, "error", json_object_new_string(s->lost_reason ?: "lost"));
        control_stream(w->req, ev);
        w->failed++;
}

static int submit_or_watch(Manager *m, Sched *s, RotationTrigger trigger, unsigned flags, Waiter *w) {
        int r;

        if (s->lost && !(flags & ROTATION_REPLACE_LOST)) {
                /* Any rotation would start from a key IAM no longer has. */
                if (w)
                        waiter_tell_lost(w, s);
                log_warning("not rotating %s: %s", s->name, s->lost_reason ?: "lost");
                return 0;
        }
        if (s->recover_after_check) {
                /* Its recovery waits for the check against IAM: the
                 * rotation asked for comes after both. */
                s->follow_up = true;
                s->follow_up_trigger = trigger;
                s->follow_up_flags |= flags;
                return w ? waiter_list_add(&s->followers, &s->n_followers, w) : 0;
        }
        r = submit(m, s, trigger, flags, w);
        if (r != -EBUSY)
                return r < 0 ? log_error_errno(r, "cannot queue the rotation of %s: %m", s->name) : r;
        if (s->trigger == TRIGGER_RECOVERY) {
                /* A recovery only finishes or undoes: the rotation asked for
                 * comes after it, and the client waits for that one. */
                s->follow_up = true;
                s->follow_up_trigger = trigger;
                s->follow_up_flags |= flags;
                return w ? waiter_list_add(&s->followers, &s->n_followers, w) : 0;
        }
        /* Already running: it ends on its own. */
        return w ? waiter_list_add(&s->watchers, &s->n_watchers, w) : 0;
}

/* Waiters of a rotation that will not happen: each counts it as failed. */
static void waiters_fail(Manager *m, Waiter **list, size_t n) {
        for (size_t i = 0; i < n; i++) {
                Waiter *w = list[i];

                w->failed++;
                if (--w->pending == 0)
                        waiter_done(m, w);
        }
        free(list);
}

static void start_follow_up(Manager *m, Sched *s) {
        Waiter **followers = TAKE_PTR(s->followers);
        size_t n = s->n_followers;
        unsigned flags = s->follow_up_flags;
        int r;

        s->follow_up = false;
        s->follow_up_flags = 0;
        s->n_followers = 0;
        /* The followers' pending counts already include this rotation. */
        if (m->stopping) {
                waiters_fail(m, followers, n);
                return;
        }
        if (s->lost && !(flags & ROTATION_REPLACE_LOST)) {
                log_warning("not rotating %s: %s", s->name, s->lost_reason ?: "lost");
                for (size_t i = 0; i < n; i++) {
                        waiter_tell_lost(followers[i], s);
                        if (--followers[i]->pending == 0)
                                waiter_done(m, followers[i]);
                }
                free(followers);
                return;
        }
        r = submit(m, s, s->follow_up_trigger, flags, NULL);
        if (r < 0) {
                log_error_errno(r, "cannot queue the rotation of %s asked for during its recovery: %m", s->name);
                waiters_fail(m, followers, n);
                return;
        }
        s->watchers = followers;
        s->n_watchers = n;
}

/* A client that waits for rotations to end; freed by waiter_done(). */
static Waiter *waiter_new(Manager *m, ControlRequest *req) {
        Waiter *w = calloc(1, sizeof *w);

        if (!w)
                return NULL;
        w->req = req;
        w->next = m->waiters;
        m->waiters = w;
        return w;
}

static int ctl_rotate(ControlRequest *req, char *const *users, bool wait, bool replace_lost, void *userdata) {
        Manager *m = userdata;
        Waiter *w = NULL;
        int r = 0;

        if (m->stopping) {
                reply_error(req, "keyrotd is stopping");
                return 0;
        }
        if (users)
                for (char *const *u = users; *u; u++) {
                        Sched *s = sched_find(m, *u);

                        if (!s) {
                                reply_error(req, "unknown user: %s (not in the inventory)", *u);
                                return 0;
                        }
                        /* Named, it is refused rather than skipped: the
                         * caller learns at once what to do instead. */
                        if (s->lost && !replace_lost) {
                                reply_error(req, "%s is lost: %s", *u, s->lost_reason ?: "lost");
                                return 0;
                        }
                }
        if (wait) {
                w = waiter_new(m, req);
                if (!w)
                        return -ENOMEM;
        }
        if (users) {
                for (char *const *u = users; *u && r >= 0; u++)
                        r = submit_or_watch(m, sched_find(m, *u), TRIGGER_SOCKET,
                                            replace_lost ? ROTATION_REPLACE_LOST : ROTATION_FORCE, w);
        } else
                r = rotate_all(m, TRIGGER_SOCKET, w);
        arm_timer(m);

        if (w && r < 0)
                w->failed++; /* logged by submit_or_watch() */
        if (w && w->pending > 0)
                return 0;
        if (w)
                waiter_done(m, w);
        else if (r < 0)
                reply_error(req, "cannot queue the rotation: %s", strerror(-r));
        else {
                json_object *o = json_object_new_object(), *lost = json_object_new_array();

                json_object_object_add(o, "queued", json_object_new_boolean(true));
                /* --all passes over lost users (submit_or_watch()): say which. */
                for (size_t i = 0; !users && i < m->n_sched; i++)
                        if (m->sched[i].lost && !replace_lost)
                                json_object_array_add(lost, json_object_new_string(m->sched[i].name));
                if (json_object_array_length(lost) > 0)
                        json_object_object_add(o, "lost", lost);
                else
                        json_object_put(lost);
                control_reply(req, o);
                control_request_end(req);
        }
        return 0;
}

static int ctl_reload(ControlRequest *req, void *userdata) {
        _cleanup_free_ char *err = NULL;
        json_object *o = json_object_new_object();
        int r;

        r = reload(userdata, &err);
        json_object_object_add(o, "ok", json_object_new_boolean(r >= 0));
        if (r < 0)
                json_object_object_add(o, "error", json_object_new_string(err ?: strerror(-r)));
        control_reply(req, o);
        control_request_end(req);
        return 0;
}

static int ctl_rollback(ControlRequest *req, const char *user, void *userdata) {
        Manager *m = userdata;
        Sched *s = sched_find(m, user);
        Waiter *w;
        int r;

        if (!s) {
                reply_error(req, "unknown user: %s (not in the inventory)", user);
                return 0;
        }
        /* Its record is from an older store: the key it would roll back
         * to is as stale as the rest. */
        if (s->lost) {
                reply_error(req, "%s is lost: %s", user, s->lost_reason ?: "lost");
                return 0;
        }
        w = waiter_new(m, req);
        if (!w)
                return -ENOMEM;
        r = submit(m, s, TRIGGER_SOCKET, ROTATION_ROLLBACK, w);
        if (r < 0) {
                log_error_errno(r, "cannot queue the rollback of %s: %m", user);
                w->failed = 1;
                waiter_done(m, w);
                return 0;
        }
        return 0;
}

/* ---- get: live credentials ---------------------------------------- */

/* A get whose Expiration must be durable before the key goes out. */
typedef struct GetReply {
        Manager *m;
        ControlRequest *req;
        Secret *line;
        char *user;
        char key_id[STORE_ACCESS_KEY_ID_MAX + 1];
        usec_t until;
} GetReply;

/* May the peer of the credentials socket read @iu's key? Its uid, or its
 * primary or a supplementary group, among the readers. */
static bool peer_reads(const InventoryUser *iu, const ControlPeer *p) {
        for (size_t i = 0; i < iu->n_readers; i++) {
                const InventoryReader *r = &iu->readers[i];

                if (!r->group) {
                        if (p->uid == (uid_t) r->id)
                                return true;
                        continue;
                }
                if (p->gid == (gid_t) r->id)
                        return true;
                for (size_t j = 0; j < p->n_groups; j++)
                        if (p->groups[j] == (gid_t) r->id)
                                return true;
        }
        return false;
}

/* {"ok":true,"Version":1,"AccessKeyId":…,"SecretAccessKey":…,"Expiration":…}
 * in secure memory: credential_process's document with "ok" in front. */
static int get_answer(const StoreKey *k, usec_t until, Secret **ret) {
        _cleanup_secret_ Secret *doc = NULL, *line = NULL;
        _cleanup_free_ char *err = NULL;
        char when[INSTANT_STRING_MAX];
        static const char ok[] = "{\"ok\":true,";
        int r;

        if (!format_instant(until, when))
                return -ERANGE;
        r = target_render(&(TargetSpec){ .type = TARGET_JSON_FILE, .path = "-", .expiration = when },
                          k->access_key_id, k->secret, &doc, &err);
        if (r < 0)
                return r;
        /* doc is "{…}\n": its members after ours, without the newline. */
        if (doc->len < 3 || doc->data[0] != '{' || doc->data[doc->len - 1] != '\n')
                return -EINVAL;
        line = secret_new(sizeof ok - 1 + doc->len);
        if (!line)
                return -ENOMEM;
        r = secret_append(&line, ok, sizeof ok - 1, 0);
        if (r >= 0)
                r = secret_append(&line, doc->data + 1, doc->len - 2, 0);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(line);
        return 0;
}

static void get_reply_free(GetReply *g) {
        secret_free(g->line);
        free(g->user);
        free(g);
}

static void get_committed(int result, void *userdata) {
        GetReply *g = userdata;
        Sched *s;

        if (result < 0) {
                log_error_errno(result, "%s: cannot record the Expiration of the key handed out in the store: %m",
                                g->user);
                reply_error(g->req, "cannot record the key's Expiration in keyrotd's store: %s", strerror(-result));
                get_reply_free(g);
                return;
        }
        s = sched_find(g->m, g->user);
        if (s && (!streq(s->handed_durable_key, g->key_id) || s->handed_durable < g->until)) {
                memcpy(s->handed_durable_key, g->key_id, sizeof s->handed_durable_key);
                s->handed_durable = g->until;
        }
        control_reply_secret(g->req, TAKE_PTR(g->line));
        control_request_end(g->req);
        get_reply_free(g);
}

/*
 * The user's current key, with an Expiration of now + credentials_ttl. The
 * key is never deactivated before the latest Expiration handed out with it
 * (rotation.c), so that instant goes into the store, and is durable, before
 * the key leaves: a crash right after the answer must not forget it.
 */
static int ctl_get(ControlRequest *req, const char *user, void *userdata) {
        Manager *m = userdata;
        const ControlPeer *peer = control_request_peer(req);
        Sched *s = sched_find(m, user);
        _cleanup_secret_ Secret *line = NULL;
        StoreUser *su;
        GetReply *g;
        usec_t until;
        int r;

        /* A stranger learns nothing, not even whether the user exists. */
        if (peer->credentials_socket && (!s || !s->iu || !peer_reads(s->iu, peer))) {
                reply_error(req, "permission denied: uid %u may not read the key of %s", (unsigned) peer->uid, user);
                return 0;
        }
        if (!s || !s->iu) {
                reply_error(req, "unknown user: %s (not in the inventory)", user);
                return 0;
        }
        if (s->lost) {
                reply_error(req, "%s is lost: %s", user, s->lost_reason ?: "lost");
                return 0;
        }
        su = store_get_user(m->rt->store, user);
        if (!su || !store_key_is_set(&su->current) || !su->current.secret) {
                reply_error(req, "keyrotd holds no key for %s", user);
                return 0;
        }
        /* Whole seconds, rounded up: what the answer says is what counts. */
        until = now_usec(CLOCK_REALTIME);
        until = s->iu->credentials_ttl < USEC_INFINITY - until - USEC_PER_SEC ? until + s->iu->credentials_ttl
                                                                               : USEC_INFINITY - USEC_PER_SEC;
        until = (until + USEC_PER_SEC - 1) / USEC_PER_SEC * USEC_PER_SEC;
        r = get_answer(&su->current, until, &line);
        if (r < 0) {
                log_error_errno(r, "%s: cannot answer get: %m", user);
                reply_error(req, "cannot hand out the key of %s: %s", user, strerror(-r));
                return 0;
        }
        if ((usec_t) su->current.handed_out_until < until)
                su->current.handed_out_until = (int64_t) until;
        if (streq(s->handed_durable_key, su->current.access_key_id) && s->handed_durable >= until) {
                control_reply_secret(req, TAKE_PTR(line));
                control_request_end(req);
                return 0;
        }

        g = calloc(1, sizeof *g);
        if (!g)
                return -ENOMEM;
        *g = (GetReply){ .m = m, .req = req, .line = TAKE_PTR(line), .user = strdup(user), .until = until };
        memcpy(g->key_id, su->current.access_key_id, sizeof g->key_id);
        if (!g->user) {
                get_reply_free(g);
                return -ENOMEM;
        }
        r = rotation_engine_commit(m->engine, get_committed, g);
        if (r < 0) {
                get_reply_free(g);
                return r;
        }
        return 0;
}

static const ControlHandlers handlers = {
        .status = ctl_status,
        .rotate = ctl_rotate,
        .reload = ctl_reload,
        .rollback = ctl_rollback,
        .get = ctl_get,
};

static const ControlHandlers credentials_handlers = {
        .get = ctl_get,
};

/* The sockets systemd passed: the one named "control" (or the only one),
 * and the one named "credentials"; -1 for each not passed. */
static void sockets_from_systemd(int *ret_control, int *ret_credentials) {
        char **names = NULL;
        int n;

        *ret_control = *ret_credentials = -1;
        n = sd_listen_fds_with_names(true, &names);
        for (int i = 0; i < n; i++) {
                const char *name = names ? names[i] : NULL;

                if (*ret_credentials < 0 && streq_ptr(name, "credentials"))
                        *ret_credentials = SD_LISTEN_FDS_START + i;
                else if (*ret_control < 0 && (streq_ptr(name, "control") || n == 1))
                        *ret_control = SD_LISTEN_FDS_START + i;
        }
        strv_free(names);
}

/* The file a listening AF_UNIX socket is bound to (in @sa), or NULL. */
static const char *socket_path_of(int fd, struct sockaddr_un *sa) {
        socklen_t len = sizeof *sa;

        *sa = (struct sockaddr_un){};
        if (getsockname(fd, (struct sockaddr *) sa, &len) < 0 || sa->sun_family != AF_UNIX ||
            len <= offsetof(struct sockaddr_un, sun_path) || sa->sun_path[0] != '/')
                return NULL;
        sa->sun_path[sizeof sa->sun_path - 1] = 0;
        return sa->sun_path;
}

/* ---- held keys against IAM (daemon/keycheck.h) ------------------------ */

static void recover(Manager *m, Sched *s) {
        int r = submit(m, s, TRIGGER_RECOVERY, ROTATION_RECOVER_ONLY, NULL);

        /* Still due (compute_due() says 0): the schedule tries again. */
        if (r < 0)
                log_error_errno(r, "cannot queue the recovery of %s: %m", s->name);
}

/* The check of @s is over (@lost known or not): recover it if it waits
 * for that, and let whoever asked for a rotation meanwhile have it. */
static void check_over(Manager *m, Sched *s) {
        if (!s->recover_after_check)
                return;
        s->recover_after_check = false;
        if (m->recovering > 0)
                m->recovering--;
        if (m->stopping)
                return;
        if (!s->lost)
                recover(m, s); /* a rotation asked for meanwhile follows it */
        /* Lost (--replace-lost goes ahead, anything else is told), or the
         * recovery could not be queued. */
        if (!s->in_flight && s->follow_up)
                start_follow_up(m, s);
}

static void key_checked(const char *user, const AwsResult *res, void *userdata) {
        Manager *m = userdata;
        Sched *s = sched_find(m, user);
        const StoreUser *su = store_get_user(m->rt->store, user);
        char reason[KEYCHECK_REASON_MAX];

        if (!s)
                return; /* dropped by a reload meanwhile */
        if (res->error < 0)
                log_warning("cannot check the keys of %s against IAM (%s); %s", user, aws_result_error_code(res),
                            s->recover_after_check ? "recovering its interrupted rotation regardless"
                                                   : "keyrotd relies on its store");
        else if (!s->in_flight && s->iu && keycheck_lost(s->iu, su, &res->list_keys, now_usec(CLOCK_REALTIME),
                                                         reason, sizeof reason)) {
                char *copy = strdup(reason);

                if (!s->lost || (copy && !streq_ptr(s->lost_reason, copy)))
                        log_error("%s: lost: %s%s", user, reason,
                                  s->recover_after_check ? "; its interrupted rotation is not recovered" : "");
                s->lost = true;
                free(s->lost_reason);
                s->lost_reason = copy;
        }
        check_over(m, s);
        s->next_due = compute_due(m, s);
        arm_timer(m);
}

/* Queue a check of every scheduled user not yet checked that holds a key:
 * those waiting to be recovered first. */
static void queue_key_checks(Manager *m) {
        for (int pass = 0; pass < 2; pass++)
                for (size_t i = 0; i < m->n_sched; i++) {
                        Sched *s = &m->sched[i];
                        const StoreUser *su = store_get_user(m->rt->store, s->name);
                        int r;

                        if (s->check_queued || s->recover_after_check != (pass == 0))
                                continue;
                        s->check_queued = true;
                        if (!su || !store_key_is_set(&su->current)) {
                                check_over(m, s);
                                continue;
                        }
                        r = m->checker ? keychecker_add(m->checker, s->name) : -ENOMEM;
                        if (r < 0) {
                                log_warning_errno(r, "cannot check the keys of %s against IAM: %m", s->name);
                                check_over(m, s);
                        }
                }
        arm_timer(m);
}

static void start_key_checks(Manager *m) {
        int r = keychecker_new(m->rt->aws, m->rt->inv->defaults.max_parallel, key_checked, m, &m->checker);

        if (r < 0)
                log_warning_errno(r, "cannot check the store's keys against IAM: %m");
        queue_key_checks(m);
}

/* ---- descriptors ------------------------------------------------------ */

/* Descriptors kept for keyrotd's own work, and the refused clients of
 * both sockets. */
static uint64_t fds_reserved(unsigned max_parallel) {
        return FDS_RESERVED_FIXED + 2 * CONTROL_REFUSED_MAX + (uint64_t) FDS_PER_PARALLEL * max_parallel;
}

unsigned manager_connection_cap(uint64_t nofile, unsigned max_parallel) {
        uint64_t reserve = fds_reserved(max_parallel), each;

        if (nofile < reserve + 2 * CONNECTIONS_MIN)
                return CONNECTIONS_MIN;
        each = (nofile - reserve) / 2;
        return each < CONTROL_CONNECTIONS_MAX ? (unsigned) each : CONTROL_CONNECTIONS_MAX;
}

/* The soft RLIMIT_NOFILE up to the hard one: descriptors are what a flood
 * of clients takes first. */
static uint64_t raise_nofile(void) {
        struct rlimit rl;
        rlim_t was;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
                log_warning_errno(-errno, "cannot read the file descriptor limit: %m; assuming 1024");
                return 1024;
        }
        was = rl.rlim_cur;
        if (rl.rlim_cur != rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
                        log_warning_errno(-errno, "cannot raise the file descriptor limit from %llu to %llu: %m",
                                          (unsigned long long) was, (unsigned long long) rl.rlim_max);
                        rl.rlim_cur = was;
                }
        }
        return rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t) rl.rlim_cur;
}

static void apply_connection_cap(Manager *m, bool announce) {
        unsigned max_parallel = m->rt->inv->defaults.max_parallel;
        unsigned cap = manager_connection_cap(m->nofile, max_parallel);
        uint64_t reserve = fds_reserved(max_parallel);

        if (m->nofile < reserve + 2 * CONNECTIONS_MIN)
                log_warning("the file descriptor limit %llu leaves too few for keyrotd's own work (%llu for "
                            "max_parallel %u) and %u connections on each socket: raise LimitNOFILE=",
                            (unsigned long long) m->nofile, (unsigned long long) reserve, max_parallel, cap);
        else if (announce || cap != control_server_max_connections(m->control))
                log_info("file descriptors: limit %llu, %llu kept for AWS, the store and hooks (max_parallel %u), "
                         "at most %u connections on each socket (control, credentials)",
                         (unsigned long long) m->nofile, (unsigned long long) reserve, max_parallel, cap);
        control_server_set_max_connections(m->control, cap);
        control_server_set_max_connections(m->credentials, cap);
}

/* ---- life cycle ------------------------------------------------------- */

int manager_new(Runtime *rt, const ManagerOptions *opts, Manager **ret) {
        Manager *m = calloc(1, sizeof *m);
        sigset_t mask;
        _cleanup_free_ char *credentials_path = NULL;
        struct sockaddr_un sa;
        int listen_fd, credentials_fd, r;

        if (!m)
                return log_error_errno(-ENOMEM, "cannot start: %m");
        m->rt = rt;
        m->started = now_usec(CLOCK_MONOTONIC);
        m->nofile = raise_nofile();

        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGUSR1);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);

        r = rotation_engine_new(rt->event, rt->aws, rt->store, rt->inv, &m->engine);
        if (r < 0) {
                log_error_errno(r, "cannot start: cannot create the rotation engine: %m");
                goto fail;
        }
        r = sd_event_add_signal(rt->event, NULL, SIGHUP, on_sighup, m);
        if (r >= 0)
                r = sd_event_add_signal(rt->event, NULL, SIGUSR1, on_sigusr1, m);
        if (r >= 0)
                r = sd_event_add_signal(rt->event, NULL, SIGTERM, on_sigterm, m);
        if (r >= 0)
                r = sd_event_add_signal(rt->event, NULL, SIGINT, on_sigterm, m);
        if (r >= 0)
                r = sd_event_add_time(rt->event, &m->due_timer, CLOCK_REALTIME, USEC_INFINITY, USEC_PER_SEC,
                                      due_timer_fired, m);
        if (r >= 0)
                r = sd_event_add_time(rt->event, &m->audit_timer, CLOCK_BOOTTIME, USEC_INFINITY,
                                      USEC_PER_MINUTE < rt->inv->defaults.audit_every / 20
                                              ? USEC_PER_MINUTE
                                              : rt->inv->defaults.audit_every / 20 ?: 1,
                                      audit_timer_fired, m);
        if (r >= 0)
                r = sd_event_set_watchdog(rt->event, true);
        if (r < 0) {
                log_error_errno(r, "cannot start: cannot set up signals, timers and the watchdog: %m");
                goto fail;
        }
        sockets_from_systemd(&listen_fd, &credentials_fd);
        r = control_server_new(rt->event, listen_fd, opts->socket_path, &handlers, m, &m->control);
        if (r < 0) {
                if (listen_fd >= 0)
                        log_error_errno(r, "cannot start: cannot serve the control socket systemd passed: %m");
                else
                        log_error_errno(r, "cannot start: cannot create the control socket %s: %m",
                                        opts->socket_path);
                goto fail;
        }
        if (credentials_fd < 0) {
                credentials_path = opts->credentials_socket_path
                                           ? strdup(opts->credentials_socket_path)
                                           : path_sibling(listen_fd >= 0 ? socket_path_of(listen_fd, &sa)
                                                                         : opts->socket_path,
                                                          "credentials.sock");
                if (!credentials_path) {
                        r = log_error_errno(-EINVAL, "cannot start: no path for the credentials socket (give "
                                                     "--credentials-socket)");
                        goto fail;
                }
        }
        r = control_server_new_credentials(rt->event, credentials_fd, credentials_path, &credentials_handlers, m,
                                           &m->credentials);
        if (r < 0) {
                if (credentials_fd >= 0)
                        log_error_errno(r, "cannot start: cannot serve the credentials socket systemd passed: %m");
                else
                        log_error_errno(r, "cannot start: cannot create the credentials socket %s: %m",
                                        credentials_path);
                goto fail;
        }
        if (credentials_path)
                log_info("answering get for the users' readers on %s", credentials_path);
        apply_connection_cap(m, true);
        r = build_sched(m, rt->inv);
        if (r < 0) {
                log_error_errno(r, "cannot start: cannot schedule the users of %s: %m", rt->config_path);
                goto fail;
        }
        *ret = m;
        return 0;

fail:
        manager_free(m);
        return r;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        while (m->waiters) {
                Waiter *w = m->waiters;
                m->waiters = w->next;
                if (control_request_alive(w->req)) {
                        reply_error(w->req, "keyrotd is stopping");
                } else
                        control_request_end(w->req);
                free(w);
        }
        while (m->audits) {
                policy_review_cancel(m->audits->audit);
                audit_run_free(m->audits);
        }
        keychecker_free(m->checker);
        sd_event_source_disable_unref(m->audit_timer);
        control_server_free(m->control);
        control_server_free(m->credentials);
        rotation_engine_free(m->engine);
        sd_event_source_disable_unref(m->due_timer);
        for (size_t i = 0; i < m->n_sched; i++) {
                free(m->sched[i].name);
                free(m->sched[i].watchers);
                free(m->sched[i].followers);
                free(m->sched[i].lost_reason);
        }
        free(m->sched);
        for (size_t i = 0; i < m->n_retired; i++)
                inventory_free(m->retired[i]);
        free(m->retired);
        free(m);
        return NULL;
}

int manager_run(Manager *m) {
        int r;

        /* Recovery first: interrupted rotations are finished or undone
         * before anything new is scheduled, each once IAM has confirmed
         * that its record is not from an older copy of the store. */
        for (size_t i = 0; i < m->n_sched; i++) {
                Sched *s = &m->sched[i];

                if (s->next_due != 0)
                        continue;
                s->recover_after_check = true;
                m->recovering++;
        }
        arm_timer(m);
        /* The first scheduled audit comes one audit_every after the start;
         * `keyrotctl audit` is there for one now. */
        m->audit_base = now_usec(CLOCK_BOOTTIME);
        arm_audit_timer(m);
        /* Parsing the inventory leaves freed heap glibc would keep for
         * good; an idle daemon should not. */
        (void) malloc_trim(0);
        sd_notify(false, "READY=1");
        /* After READY=1: a start is not held up by IAM, whatever the
         * number of users. */
        start_key_checks(m);

        for (;;) {
                if (m->stopping && rotation_engine_busy(m->engine) == 0)
                        break;
                r = sd_event_run(m->rt->event, UINT64_MAX);
                if (r < 0)
                        return r;
        }
        return 0;
}

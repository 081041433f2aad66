/* SPDX-License-Identifier: MIT */
/*
 * review.c — the policy review engine (see review.h).
 *
 * The work is a queue of tasks, each one IAM call; a task's answer may
 * queue more (a list of policy names queues a GetUserPolicy per name, a
 * truncated page queues the next page). At most max_parallel calls are in
 * flight. Each user is a job that counts its unfinished tasks; when that
 * reaches zero its keys are judged against the store, and when the queue
 * is empty and nothing is in flight the report goes to the caller.
 */
#include "policy/review.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "audit/audit.h"
#include "aws/iam.h"
#include "basic/log.h"

typedef enum TaskKind {
        TASK_LIST_USERS,
        TASK_LIST_KEYS,
        TASK_LAST_USED,
        TASK_LIST_USER_POLICIES,
        TASK_GET_USER_POLICY,
        TASK_LIST_ATTACHED_USER,
        TASK_LIST_GROUPS,
        TASK_LIST_GROUP_POLICIES,
        TASK_GET_GROUP_POLICY,
        TASK_LIST_ATTACHED_GROUP,
        TASK_GET_POLICY,
        TASK_GET_POLICY_VERSION,
        _TASK_KIND_MAX,
} TaskKind;

typedef struct Key {
        char id[AWS_KEY_ID_MAX + 1];
        bool active, usage_known;
        time_t created, last_used;
} Key;

typedef struct Job {
        char *name;
        bool in_inventory;
        char **buckets; /* NULL unless in_inventory */
        size_t n_buckets;
        bool read_only;
        usec_t max_age;

        Key *keys;
        size_t n_keys;
        unsigned n_policies, n_groups;
        unsigned pending; /* tasks queued or in flight */
        bool gone;        /* IAM has no such user: say so once */
        bool finished;

        Findings findings;
        char **errors;
        size_t n_errors;
} Job;

typedef struct Task Task;
struct Task {
        Task *next;
        PolicyReview *audit;
        Job *job; /* NULL for ListUsers */
        TaskKind kind;
        char *arg;    /* user's group, policy name or ARN */
        char *arg2;   /* policy name of a group, version id */
        char *marker; /* next page */
        char *source; /* what a policy document is called in findings */
        unsigned page;
        AwsCall *call;
};

struct PolicyReview {
        AwsClient *aws;
        const Store *store;
        sd_event_source *finish;
        policy_review_done_t done;
        void *userdata;
        unsigned max_parallel, in_flight;
        Task *queue, *queue_tail;
        Task *running; /* in flight, for cancelling */
        Job **jobs;
        size_t n_jobs;
        bool all_users;
        usec_t default_max_age;
        PolicyReport *report; /* errors not about one user collect here */
};

static const char *const task_names[_TASK_KIND_MAX] = {
        [TASK_LIST_USERS] = "ListUsers",
        [TASK_LIST_KEYS] = "ListAccessKeys",
        [TASK_LAST_USED] = "GetAccessKeyLastUsed",
        [TASK_LIST_USER_POLICIES] = "ListUserPolicies",
        [TASK_GET_USER_POLICY] = "GetUserPolicy",
        [TASK_LIST_ATTACHED_USER] = "ListAttachedUserPolicies",
        [TASK_LIST_GROUPS] = "ListGroupsForUser",
        [TASK_LIST_GROUP_POLICIES] = "ListGroupPolicies",
        [TASK_GET_GROUP_POLICY] = "GetGroupPolicy",
        [TASK_LIST_ATTACHED_GROUP] = "ListAttachedGroupPolicies",
        [TASK_GET_POLICY] = "GetPolicy",
        [TASK_GET_POLICY_VERSION] = "GetPolicyVersion",
};

/* ---- report ------------------------------------------------------------- */

static void strv_free_n(char **v, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

PolicyReport *policy_report_free(PolicyReport *r) {
        if (!r)
                return NULL;
        for (size_t i = 0; i < r->n_users; i++) {
                free(r->users[i].name);
                findings_clear(&r->users[i].findings);
                strv_free_n(r->users[i].errors, r->users[i].n_errors);
        }
        free(r->users);
        strv_free_n(r->errors, r->n_errors);
        free(r);
        return NULL;
}

/* One line of printable ASCII, at most 400 bytes: error texts quote AWS
 * messages, which are as hostile as the rest of an answer. An error that
 * cannot be recorded (out of memory) is logged instead, so callers may
 * ignore the result. */
static int errors_add(char ***v, size_t *n, const char *fmt, va_list ap) _printf_(3, 0);
static int errors_add(char ***v, size_t *n, const char *fmt, va_list ap) {
        char buf[400];
        char *s, **nv;

        if (*n >= POLICY_REVIEW_MAX_ERRORS)
                return 0;
        vsnprintf(buf, sizeof buf, fmt, ap);
        for (char *p = buf; *p; p++)
                if ((unsigned char) *p < 0x20 || (unsigned char) *p > 0x7e)
                        *p = '?';
        if (*n == POLICY_REVIEW_MAX_ERRORS - 1)
                snprintf(buf, sizeof buf, "more errors, not shown");
        s = strdup(buf);
        nv = s ? realloc(*v, (*n + 1) * sizeof(char *)) : NULL;
        if (!nv) {
                free(s);
                return log_error_errno(-ENOMEM, "audit: %s (cannot add it to the report: %m)", buf);
        }
        nv[(*n)++] = s;
        *v = nv;
        return 0;
}

int policy_report_add_error(PolicyReport *r, const char *fmt, ...) {
        va_list ap;
        int k;

        va_start(ap, fmt);
        k = errors_add(&r->errors, &r->n_errors, fmt, ap);
        va_end(ap);
        return k;
}

size_t policy_report_count(const PolicyReport *r, FindingSeverity s) {
        size_t n = 0;

        for (size_t i = 0; i < r->n_users; i++)
                n += findings_count(&r->users[i].findings, s);
        return n;
}

size_t policy_report_n_errors(const PolicyReport *r) {
        size_t n = r->n_errors;

        for (size_t i = 0; i < r->n_users; i++)
                n += r->users[i].n_errors;
        return n;
}

static void add_string(json_object *o, const char *key, const char *value) {
        json_object_object_add(o, key, value ? json_object_new_string(value) : NULL);
}

struct json_object *policy_report_to_json(const PolicyReport *r) {
        json_object *o = json_object_new_object(), *users = json_object_new_array(),
                    *findings = json_object_new_array(), *errors = json_object_new_array(),
                    *summary = json_object_new_object();

        if (!o || !users || !findings || !errors || !summary) {
                json_object_put(o);
                json_object_put(users);
                json_object_put(findings);
                json_object_put(errors);
                json_object_put(summary);
                return NULL;
        }
        for (size_t i = 0; i < r->n_users; i++) {
                const AuditUser *u = &r->users[i];
                json_object *ju = json_object_new_object();

                add_string(ju, "name", u->name);
                json_object_object_add(ju, "in_inventory", json_object_new_boolean(u->in_inventory));
                json_object_object_add(ju, "findings", json_object_new_int64((int64_t) (u->findings.n + u->findings.n_dropped)));
                json_object_object_add(ju, "errors", json_object_new_int64((int64_t) u->n_errors));
                json_object_array_add(users, ju);
                for (size_t j = 0; j < u->findings.n; j++) {
                        const Finding *f = &u->findings.items[j];
                        json_object *jf = json_object_new_object();

                        add_string(jf, "user", u->name);
                        add_string(jf, "severity", finding_severity_to_string(f->severity));
                        add_string(jf, "code", finding_code_to_string(f->code));
                        add_string(jf, "detail", f->detail);
                        json_object_array_add(findings, jf);
                }
                if (u->findings.n_dropped > 0) {
                        json_object *jf = json_object_new_object();
                        char msg[96];

                        snprintf(msg, sizeof msg, "%zu more findings not listed", u->findings.n_dropped);
                        add_string(jf, "user", u->name);
                        add_string(jf, "severity", "warning");
                        add_string(jf, "code", "more-findings");
                        add_string(jf, "detail", msg);
                        json_object_array_add(findings, jf);
                }
                for (size_t j = 0; j < u->n_errors; j++) {
                        json_object *je = json_object_new_object();

                        add_string(je, "user", u->name);
                        add_string(je, "error", u->errors[j]);
                        json_object_array_add(errors, je);
                }
        }
        for (size_t j = 0; j < r->n_errors; j++) {
                json_object *je = json_object_new_object();

                add_string(je, "user", NULL);
                add_string(je, "error", r->errors[j]);
                json_object_array_add(errors, je);
        }
        json_object_object_add(summary, "users", json_object_new_int64((int64_t) r->n_users));
        json_object_object_add(summary, "critical", json_object_new_int64((int64_t) policy_report_count(r, FINDING_CRITICAL)));
        json_object_object_add(summary, "warning",
                               json_object_new_int64((int64_t) (policy_report_count(r, FINDING_WARNING) -
                                                                policy_report_count(r, FINDING_CRITICAL))));
        json_object_object_add(summary, "info",
                               json_object_new_int64((int64_t) (policy_report_count(r, FINDING_INFO) -
                                                                policy_report_count(r, FINDING_WARNING))));
        json_object_object_add(summary, "errors", json_object_new_int64((int64_t) policy_report_n_errors(r)));
        json_object_object_add(o, "users", users);
        json_object_object_add(o, "findings", findings);
        json_object_object_add(o, "errors", errors);
        json_object_object_add(o, "summary", summary);
        return o;
}

void policy_report_journal(const PolicyReport *r, const char *user, const char *trigger) {
        size_t n_findings = 0, n_errors = policy_report_n_errors(r);
        char msg[256];

        for (size_t i = 0; i < r->n_users; i++) {
                const AuditUser *u = &r->users[i];

                for (size_t j = 0; j < u->findings.n; j++) {
                        const Finding *f = &u->findings.items[j];
                        AuditRecord rec = {
                                .event = AUDIT_POLICY_FINDING,
                                .user = u->name,
                                .trigger = trigger,
                                .result = finding_severity_to_string(f->severity),
                                .finding = finding_code_to_string(f->code),
                                .message = f->detail,
                                .priority = f->severity == FINDING_INFO ? 5 : 4,
                        };
                        audit_emit(&rec);
                }
                n_findings += u->findings.n + u->findings.n_dropped;
                for (size_t j = 0; j < u->n_errors; j++)
                        log_error("audit of %s: %s", u->name, u->errors[j]);
        }
        for (size_t j = 0; j < r->n_errors; j++)
                log_error("audit: %s", r->errors[j]);

        snprintf(msg, sizeof msg, "%zu user%s audited: %zu finding%s (%zu critical, %zu warning), %zu error%s",
                 r->n_users, r->n_users == 1 ? "" : "s", n_findings, n_findings == 1 ? "" : "s",
                 policy_report_count(r, FINDING_CRITICAL),
                 policy_report_count(r, FINDING_WARNING) - policy_report_count(r, FINDING_CRITICAL), n_errors,
                 n_errors == 1 ? "" : "s");
        bool warn = policy_report_count(r, FINDING_WARNING) > 0;
        AuditRecord rec = {
                .event = AUDIT_POLICY_SUMMARY,
                .user = user,
                .trigger = trigger,
                .result = n_errors > 0 ? "incomplete" : warn ? "findings" : "clean",
                .message = msg,
                .failure = n_errors > 0,
                .priority = n_errors > 0 ? 0 : warn ? 4 : 6,
        };
        audit_emit(&rec);
}

/* ---- jobs --------------------------------------------------------------- */

static Job *job_free(Job *j) {
        if (!j)
                return NULL;
        free(j->name);
        strv_free_n(j->buckets, j->n_buckets);
        free(j->keys);
        findings_clear(&j->findings);
        strv_free_n(j->errors, j->n_errors);
        free(j);
        return NULL;
}

static void job_error(Job *j, const char *fmt, ...) _printf_(2, 3);
static void job_error(Job *j, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        (void) errors_add(&j->errors, &j->n_errors, fmt, ap);
        va_end(ap);
}

static void audit_error(PolicyReview *a, const char *fmt, ...) _printf_(2, 3);
static void audit_error(PolicyReview *a, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        (void) errors_add(&a->report->errors, &a->report->n_errors, fmt, ap);
        va_end(ap);
}

static Job *find_job(PolicyReview *a, const char *name) {
        for (size_t i = 0; i < a->n_jobs; i++)
                if (streq(a->jobs[i]->name, name))
                        return a->jobs[i];
        return NULL;
}

static int add_job(PolicyReview *a, const char *name, const InventoryUser *iu, Job **ret) {
        Job *j, **n;

        if (a->n_jobs >= POLICY_REVIEW_MAX_USERS)
                return -E2BIG;
        j = calloc(1, sizeof *j);
        if (!j)
                return -ENOMEM;
        j->name = strdup(name);
        j->max_age = iu ? iu->max_age : a->default_max_age;
        bool oom = false;
        if (iu) {
                /* The buckets the inventory names for the user: the one its
                 * key is verified on, and its further `buckets`. */
                size_t want = 1 + strv_length(iu->buckets);

                j->in_inventory = true;
                j->buckets = calloc(want, sizeof(char *));
                oom = !j->buckets;
                for (size_t i = 0; !oom && i < want; i++) {
                        const char *b = i == 0 ? iu->verify.bucket : iu->buckets[i - 1];

                        oom = !b || !(j->buckets[i] = strdup(b));
                        j->n_buckets += !oom;
                }
                j->read_only = iu->verify.check != VERIFY_CHECK_PUT;
        }
        n = realloc(a->jobs, (a->n_jobs + 1) * sizeof(Job *));
        if (!j->name || oom || !n) {
                if (n)
                        a->jobs = n;
                job_free(j);
                return -ENOMEM;
        }
        a->jobs = n;
        a->jobs[a->n_jobs++] = j;
        *ret = j;
        return 0;
}

/* Only once every task of the user has answered: the keys, their last
 * use and the store are judged together. */
static void job_finish(PolicyReview *a, Job *j) {
        const char *held[3];
        size_t n_held = 0;
        const StoreUser *su = a->store ? store_get_user(a->store, j->name) : NULL;
        KeyFacts *facts;
        int r;

        j->finished = true;
        if (j->gone)
                return;
        if (!j->in_inventory) {
                r = findings_add(&j->findings, FINDING_NOT_IN_INVENTORY, j->name,
                                 "not in the inventory: bucket and write checks skipped");
                if (r < 0)
                        job_error(j, "out of memory");
        }
        if (su) {
                const StoreKey *slots[] = { &su->current, &su->pending, &su->previous };

                for (size_t i = 0; i < ELEMENTSOF(slots); i++)
                        if (store_key_is_set(slots[i]))
                                held[n_held++] = slots[i]->access_key_id;
        }
        KeyContext kc = {
                .user = j->name,
                .max_age = j->max_age,
                .now = time(NULL),
                .held = held,
                .n_held = n_held,
                /* A user keyrotd never held a key of is not its business,
                 * unless the inventory says it is; without the store
                 * nothing can be compared (the report says why). */
                .check_held = a->store && (j->in_inventory || su),
                .rotation_in_progress = su && su->phase != STORE_PHASE_IDLE && su->phase != STORE_PHASE_DEACTIVATED,
        };
        facts = calloc(j->n_keys ?: 1, sizeof(KeyFacts));
        if (!facts) {
                job_error(j, "out of memory");
                return;
        }
        for (size_t i = 0; i < j->n_keys; i++)
                facts[i] = (KeyFacts) { .access_key_id = j->keys[i].id, .active = j->keys[i].active,
                                        .created = j->keys[i].created, .last_used = j->keys[i].last_used,
                                        .usage_unknown = !j->keys[i].usage_known };
        r = policy_check_keys(facts, j->n_keys, &kc, &j->findings);
        free(facts);
        if (r < 0)
                job_error(j, "judging the keys: %s", strerror(-r));
}

/* ---- tasks -------------------------------------------------------------- */

static Task *task_free(Task *t) {
        if (!t)
                return NULL;
        if (t->call)
                aws_call_cancel(t->call);
        free(t->arg);
        free(t->arg2);
        free(t->marker);
        free(t->source);
        free(t);
        return NULL;
}

static int queue(PolicyReview *a, Job *j, TaskKind kind, const char *arg, const char *arg2, const char *marker,
                 const char *source, unsigned page) {
        Task *t = calloc(1, sizeof *t);

        if (!t)
                return -ENOMEM;
        *t = (Task) { .audit = a, .job = j, .kind = kind, .page = page };
        if ((arg && !(t->arg = strdup(arg))) || (arg2 && !(t->arg2 = strdup(arg2))) ||
            (marker && !(t->marker = strdup(marker))) || (source && !(t->source = strdup(source)))) {
                task_free(t);
                return -ENOMEM;
        }
        if (a->queue_tail)
                a->queue_tail->next = t;
        else
                a->queue = t;
        a->queue_tail = t;
        if (j)
                j->pending++;
        return 0;
}

static int queue_user(PolicyReview *a, Job *j) {
        int r;

        r = queue(a, j, TASK_LIST_KEYS, NULL, NULL, NULL, NULL, 1);
        if (r >= 0)
                r = queue(a, j, TASK_LIST_USER_POLICIES, NULL, NULL, NULL, NULL, 1);
        if (r >= 0)
                r = queue(a, j, TASK_LIST_ATTACHED_USER, NULL, NULL, NULL, NULL, 1);
        if (r >= 0)
                r = queue(a, j, TASK_LIST_GROUPS, NULL, NULL, NULL, NULL, 1);
        return r;
}

static void pump(PolicyReview *a);

static void unlink_running(PolicyReview *a, Task *t) {
        for (Task **p = &a->running; *p; p = &(*p)->next)
                if (*p == t) {
                        *p = t->next;
                        return;
                }
}

/* The next page of a list, if IAM says there is one. */
static void next_page(PolicyReview *a, Task *t, bool truncated, const char *marker) {
        if (!truncated)
                return;
        if (t->page >= POLICY_REVIEW_MAX_PAGES) {
                if (t->job)
                        job_error(t->job, "%s: more than %u pages; the rest was not audited", task_names[t->kind],
                                  POLICY_REVIEW_MAX_PAGES);
                else
                        audit_error(a, "%s: more than %u pages; the rest was not audited", task_names[t->kind],
                                    POLICY_REVIEW_MAX_PAGES);
                return;
        }
        if (queue(a, t->job, t->kind, t->arg, t->arg2, marker, t->source, t->page + 1) < 0)
                audit_error(a, "out of memory");
}

/* A policy (inline or managed) more for this user: within the bound? */
static bool count_policy(Job *j) {
        if (j->n_policies >= POLICY_REVIEW_MAX_POLICIES) {
                if (j->n_policies++ == POLICY_REVIEW_MAX_POLICIES)
                        job_error(j, "more than %u policies; the rest was not audited", POLICY_REVIEW_MAX_POLICIES);
                return false;
        }
        j->n_policies++;
        return true;
}

static void check_document(Job *j, const char *source, const char *raw) {
        _cleanup_free_ char *doc = NULL, *err = NULL;
        PolicyContext ctx = {
                .user = j->name,
                .source = source,
                .buckets = j->in_inventory ? (const char *const *) j->buckets : NULL,
                .n_buckets = j->n_buckets,
                .read_only = j->in_inventory && j->read_only,
        };
        int r;

        r = policy_document_decode(raw, &doc);
        if (r < 0) {
                job_error(j, "%s: cannot decode the document: %s", source,
                          r == -E2BIG ? "larger than the audit's bound" : strerror(-r));
                return;
        }
        r = policy_check_document(doc, strlen(doc), &ctx, &j->findings, &err);
        if (r < 0)
                job_error(j, "%s", err ?: strerror(-r));
}

static void on_list_users(PolicyReview *a, Task *t, AwsResult *res) {
        const IamNameList *l = &res->names;

        for (size_t i = 0; i < l->n_names; i++) {
                Job *j;

                if (find_job(a, l->names[i].name))
                        continue;
                int r = add_job(a, l->names[i].name, NULL, &j);
                if (r == -E2BIG) {
                        audit_error(a, "more than %u users; the rest was not audited", POLICY_REVIEW_MAX_USERS);
                        return;
                }
                if (r < 0 || queue_user(a, j) < 0) {
                        audit_error(a, "out of memory");
                        return;
                }
        }
        next_page(a, t, l->is_truncated, l->marker);
}

static void on_list_keys(PolicyReview *a, Task *t, AwsResult *res) {
        Job *j = t->job;
        const ListAccessKeysResult *l = &res->list_keys;

        if (l->n_keys > POLICY_REVIEW_MAX_KEYS) {
                job_error(j, "ListAccessKeys: %zu keys, more than %u; the keys were not audited", l->n_keys,
                          POLICY_REVIEW_MAX_KEYS);
                return;
        }
        j->keys = calloc(l->n_keys ?: 1, sizeof(Key));
        if (!j->keys) {
                job_error(j, "out of memory");
                return;
        }
        j->n_keys = l->n_keys;
        for (size_t i = 0; i < l->n_keys; i++) {
                Key *k = &j->keys[i];

                snprintf(k->id, sizeof k->id, "%s", l->keys[i].access_key_id);
                k->active = l->keys[i].status == KEY_STATUS_ACTIVE;
                k->created = l->keys[i].create_date;
                /* Until GetAccessKeyLastUsed answers, "never used" would be
                 * a guess; a failed lookup is an error of its own. */
                if (queue(a, j, TASK_LAST_USED, k->id, NULL, NULL, NULL, 1) < 0) {
                        job_error(j, "out of memory");
                        return;
                }
        }
}

static void on_last_used(PolicyReview *a, Task *t, AwsResult *res) {
        Job *j = t->job;

        for (size_t i = 0; i < j->n_keys; i++)
                if (streq(j->keys[i].id, t->arg)) {
                        j->keys[i].last_used = res->last_used.last_used_date;
                        j->keys[i].usage_known = true;
                }
}

static void on_list_user_policies(PolicyReview *a, Task *t, AwsResult *res) {
        Job *j = t->job;
        const IamNameList *l = &res->names;

        for (size_t i = 0; i < l->n_names; i++) {
                char source[AWS_NAME_MAX + 32];

                if (!count_policy(j))
                        return;
                snprintf(source, sizeof source, "inline policy %s", l->names[i].name);
                if (queue(a, j, TASK_GET_USER_POLICY, l->names[i].name, NULL, NULL, source, 1) < 0) {
                        job_error(j, "out of memory");
                        return;
                }
        }
        next_page(a, t, l->is_truncated, l->marker);
}

static void queue_managed(PolicyReview *a, Task *t, const ListAttachedPoliciesResult *l, const char *group) {
        Job *j = t->job;

        for (size_t i = 0; i < l->n_policies; i++) {
                _cleanup_free_ char *source = NULL;

                if (!count_policy(j))
                        return;
                if (asprintf_safe(&source, "%s%s%smanaged policy %s", group ? "group " : "", group ?: "",
                                  group ? " " : "", l->policies[i].policy_arn) < 0 ||
                    queue(a, j, TASK_GET_POLICY, l->policies[i].policy_arn, NULL, NULL, source, 1) < 0) {
                        job_error(j, "out of memory");
                        return;
                }
        }
        next_page(a, t, l->is_truncated, l->marker);
}

static void on_list_groups(PolicyReview *a, Task *t, AwsResult *res) {
        Job *j = t->job;
        const IamNameList *l = &res->names;

        for (size_t i = 0; i < l->n_names; i++) {
                if (j->n_groups >= POLICY_REVIEW_MAX_GROUPS) {
                        job_error(j, "member of more than %u groups; the rest was not audited", POLICY_REVIEW_MAX_GROUPS);
                        return;
                }
                j->n_groups++;
                if (queue(a, j, TASK_LIST_GROUP_POLICIES, l->names[i].name, NULL, NULL, NULL, 1) < 0 ||
                    queue(a, j, TASK_LIST_ATTACHED_GROUP, l->names[i].name, NULL, NULL, NULL, 1) < 0) {
                        job_error(j, "out of memory");
                        return;
                }
        }
        next_page(a, t, l->is_truncated, l->marker);
}

static void on_list_group_policies(PolicyReview *a, Task *t, AwsResult *res) {
        Job *j = t->job;
        const IamNameList *l = &res->names;

        for (size_t i = 0; i < l->n_names; i++) {
                char source[2 * AWS_NAME_MAX + 32];

                if (!count_policy(j))
                        return;
                snprintf(source, sizeof source, "group %s inline policy %s", t->arg, l->names[i].name);
                if (queue(a, j, TASK_GET_GROUP_POLICY, t->arg, l->names[i].name, NULL, source, 1) < 0) {
                        job_error(j, "out of memory");
                        return;
                }
        }
        next_page(a, t, l->is_truncated, l->marker);
}

static void handle(PolicyReview *a, Task *t, AwsResult *res) {
        Job *j = t->job;

        switch (t->kind) {
        case TASK_LIST_USERS:
                on_list_users(a, t, res);
                break;
        case TASK_LIST_KEYS:
                on_list_keys(a, t, res);
                break;
        case TASK_LAST_USED:
                on_last_used(a, t, res);
                break;
        case TASK_LIST_USER_POLICIES:
                on_list_user_policies(a, t, res);
                break;
        case TASK_GET_USER_POLICY:
                check_document(j, t->source, res->user_policy.document);
                break;
        case TASK_LIST_ATTACHED_USER:
                queue_managed(a, t, &res->attached, NULL);
                break;
        case TASK_LIST_GROUPS:
                on_list_groups(a, t, res);
                break;
        case TASK_LIST_GROUP_POLICIES:
                on_list_group_policies(a, t, res);
                break;
        case TASK_GET_GROUP_POLICY:
                check_document(j, t->source, res->group_policy.document);
                break;
        case TASK_LIST_ATTACHED_GROUP:
                queue_managed(a, t, &res->attached, t->arg);
                break;
        case TASK_GET_POLICY:
                /* Only the default version is in force. */
                if (queue(a, j, TASK_GET_POLICY_VERSION, t->arg, res->policy.default_version_id, NULL, t->source, 1) < 0)
                        job_error(j, "out of memory");
                break;
        case TASK_GET_POLICY_VERSION:
                check_document(j, t->source, res->policy_version.document);
                break;
        default:
                break;
        }
}

static void task_failed(PolicyReview *a, Task *t, const AwsResult *res) {
        Job *j = t->job;
        const char *code = aws_result_error_code(res) ?: "unknown error";
        char what[AWS_NAME_MAX * 2 + 64] = "";

        if (!j) {
                audit_error(a, "%s: %s%s%s", task_names[t->kind], code, res->aws_error.message[0] ? ": " : "",
                            res->aws_error.message);
                return;
        }
        /* The user itself is missing: one line, not one per call. */
        if (res->error == -EREMOTEIO && streq(res->aws_error.code, "NoSuchEntity") &&
            (t->kind == TASK_LIST_KEYS || t->kind == TASK_LIST_USER_POLICIES || t->kind == TASK_LIST_ATTACHED_USER ||
             t->kind == TASK_LIST_GROUPS)) {
                if (!j->gone)
                        job_error(j, "IAM has no user %s", j->name);
                j->gone = true;
                return;
        }
        if (t->source)
                snprintf(what, sizeof what, " (%s)", t->source);
        else if (t->arg && t->kind != TASK_LAST_USED)
                snprintf(what, sizeof what, " (%s)", t->arg);
        else if (t->arg)
                snprintf(what, sizeof what, " (key %s)", t->arg);
        job_error(j, "%s%s: %s%s%s", task_names[t->kind], what, code, res->aws_error.message[0] ? ": " : "",
                  res->aws_error.message);
}

static void maybe_finish(PolicyReview *a);

static void task_done(AwsCall *call, AwsResult *res, void *userdata) {
        Task *t = userdata;
        PolicyReview *a = t->audit;
        Job *j = t->job;

        t->call = NULL; /* freed by the client after we return */
        unlink_running(a, t);
        a->in_flight--;
        if (res->error < 0)
                task_failed(a, t, res);
        else
                handle(a, t, res);
        if (j && --j->pending == 0)
                job_finish(a, j);
        task_free(t);
        pump(a);
        maybe_finish(a);
}

static int task_start(PolicyReview *a, Task *t) {
        AwsClient *c = a->aws;
        const char *user = t->job ? t->job->name : NULL;

        switch (t->kind) {
        case TASK_LIST_USERS:
                return iam_list_users(c, t->marker, task_done, t, &t->call);
        case TASK_LIST_KEYS:
                return iam_list_access_keys(c, NULL, user, task_done, t, &t->call);
        case TASK_LAST_USED:
                return iam_get_access_key_last_used(c, t->arg, task_done, t, &t->call);
        case TASK_LIST_USER_POLICIES:
                return iam_list_user_policies(c, user, t->marker, task_done, t, &t->call);
        case TASK_GET_USER_POLICY:
                return iam_get_user_policy(c, user, t->arg, task_done, t, &t->call);
        case TASK_LIST_ATTACHED_USER:
                return iam_list_attached_user_policies(c, user, t->marker, task_done, t, &t->call);
        case TASK_LIST_GROUPS:
                return iam_list_groups_for_user(c, user, t->marker, task_done, t, &t->call);
        case TASK_LIST_GROUP_POLICIES:
                return iam_list_group_policies(c, t->arg, t->marker, task_done, t, &t->call);
        case TASK_GET_GROUP_POLICY:
                return iam_get_group_policy(c, t->arg, t->arg2, task_done, t, &t->call);
        case TASK_LIST_ATTACHED_GROUP:
                return iam_list_attached_group_policies(c, t->arg, t->marker, task_done, t, &t->call);
        case TASK_GET_POLICY:
                return iam_get_policy(c, t->arg, task_done, t, &t->call);
        case TASK_GET_POLICY_VERSION:
                return iam_get_policy_version(c, t->arg, t->arg2, task_done, t, &t->call);
        default:
                return -EINVAL;
        }
}

static void pump(PolicyReview *a) {
        while (a->queue && a->in_flight < a->max_parallel) {
                Task *t = a->queue;
                Job *j = t->job;
                int r;

                a->queue = t->next;
                if (!a->queue)
                        a->queue_tail = NULL;
                t->next = NULL;

                /* Everything else about a user that does not exist would
                 * only say so again. */
                if (j && j->gone) {
                        if (--j->pending == 0)
                                job_finish(a, j);
                        task_free(t);
                        continue;
                }
                r = task_start(a, t);
                if (r < 0) {
                        t->call = NULL;
                        if (j) {
                                job_error(j, "%s: cannot start the call: %s", task_names[t->kind], strerror(-r));
                                if (--j->pending == 0)
                                        job_finish(a, j);
                        } else
                                audit_error(a, "%s: cannot start the call: %s", task_names[t->kind], strerror(-r));
                        task_free(t);
                        continue;
                }
                t->next = a->running;
                a->running = t;
                a->in_flight++;
        }
}

/* ---- life cycle --------------------------------------------------------- */

static void audit_free(PolicyReview *a) {
        if (!a)
                return;
        while (a->running) {
                Task *t = a->running;
                a->running = t->next;
                task_free(t);
        }
        while (a->queue) {
                Task *t = a->queue;
                a->queue = t->next;
                task_free(t);
        }
        for (size_t i = 0; i < a->n_jobs; i++)
                job_free(a->jobs[i]);
        free(a->jobs);
        policy_report_free(a->report);
        sd_event_source_disable_unref(a->finish);
        free(a);
}

void policy_review_cancel(PolicyReview *a) {
        audit_free(a);
}

/* Calls answer in any order: sort, so two audits of the same state read
 * the same. Worst first. */
static int finding_cmp(const void *x, const void *y) {
        const Finding *a = x, *b = y;
        int c;

        if (a->severity != b->severity)
                return a->severity > b->severity ? -1 : 1;
        if (a->code != b->code)
                return a->code < b->code ? -1 : 1;
        c = strcmp(a->detail, b->detail);
        return c;
}

static int string_cmp(const void *x, const void *y) {
        return strcmp(*(char *const *) x, *(char *const *) y);
}

static int on_finish(sd_event_source *s, void *userdata) {
        PolicyReview *a = userdata;
        PolicyReport *rep = TAKE_PTR(a->report);
        AuditUser *users;

        users = calloc(a->n_jobs ?: 1, sizeof(AuditUser));
        if (!users)
                (void) policy_report_add_error(rep, "out of memory"); /* logged if it cannot be added */
        for (size_t i = 0; users && i < a->n_jobs; i++) {
                Job *j = a->jobs[i];

                users[i] = (AuditUser) {
                        .name = TAKE_PTR(j->name),
                        .in_inventory = j->in_inventory,
                        .findings = j->findings,
                        .errors = TAKE_PTR(j->errors),
                        .n_errors = j->n_errors,
                };
                j->findings = (Findings) {};
                j->n_errors = 0;
                if (users[i].findings.n > 1)
                        qsort(users[i].findings.items, users[i].findings.n, sizeof(Finding), finding_cmp);
                if (users[i].n_errors > 1)
                        qsort(users[i].errors, users[i].n_errors, sizeof(char *), string_cmp);
        }
        if (users) {
                rep->users = users;
                rep->n_users = a->n_jobs;
        }
        policy_review_done_t done = a->done;
        void *userdata_ = a->userdata;
        audit_free(a);
        done(rep, userdata_);
        return 0;
}

static void maybe_finish(PolicyReview *a) {
        if (a->queue || a->in_flight > 0)
                return;
        (void) sd_event_source_set_enabled(a->finish, SD_EVENT_ONESHOT);
}

int policy_review_start(AwsClient *aws, const PolicyReviewOptions *o, policy_review_done_t done, void *userdata,
                    PolicyReview **ret) {
        PolicyReview *a;
        int r;

        if (!aws || !o || !o->inv || !done)
                return -EINVAL;
        a = calloc(1, sizeof *a);
        if (!a)
                return -ENOMEM;
        a->aws = aws;
        a->store = o->store;
        a->done = done;
        a->userdata = userdata;
        a->max_parallel = o->max_parallel ?: POLICY_REVIEW_DEFAULT_PARALLEL;
        a->all_users = o->all_users;
        a->default_max_age = o->inv->defaults.max_age;
        a->report = calloc(1, sizeof(PolicyReport));
        if (!a->report) {
                audit_free(a);
                return -ENOMEM;
        }
        /* The report is handed over from the loop, never from here: the
         * caller may not be ready for it before this returns. */
        r = sd_event_add_defer(http_client_get_event(aws->http), &a->finish, on_finish, a);
        if (r >= 0)
                r = sd_event_source_set_enabled(a->finish, SD_EVENT_OFF);
        if (r < 0) {
                audit_free(a);
                return r;
        }

        if (o->users) {
                for (const char *const *u = o->users; *u && r >= 0; u++) {
                        Job *j;

                        if (find_job(a, *u))
                                continue;
                        r = add_job(a, *u, inventory_find_user(o->inv, *u), &j);
                        if (r >= 0)
                                r = queue_user(a, j);
                }
        } else
                for (size_t i = 0; i < o->inv->n_users && r >= 0; i++) {
                        Job *j;

                        r = add_job(a, o->inv->users[i].name, &o->inv->users[i], &j);
                        if (r >= 0)
                                r = queue_user(a, j);
                }
        if (r >= 0 && o->all_users)
                r = queue(a, NULL, TASK_LIST_USERS, NULL, NULL, NULL, NULL, 1);
        if (r < 0) {
                audit_free(a);
                return r;
        }
        pump(a);
        maybe_finish(a);
        if (ret)
                *ret = a;
        return 0;
}

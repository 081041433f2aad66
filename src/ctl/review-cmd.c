/* SPDX-License-Identifier: MIT */
/*
 * keyrotctl audit: the engine of policy/review.c on keyrotctl's own
 * event loop, and its report for a terminal or a script.
 */
#include "ctl/review-cmd.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "basic/log.h"
#include "basic/sanitize.h"
#include "ctl/client.h"
#include "policy/review.h"

#define EXIT_FINDINGS 1
#define EXIT_ERRORS 2

typedef struct Wait {
        bool done;
        PolicyReport *report;
} Wait;

static void on_done(PolicyReport *report, void *userdata) {
        Wait *w = userdata;

        w->report = report;
        w->done = true;
}

/* User names (with --all-users, whatever IAM lists) and details (from
 * policy documents) reach a terminal: sanitised, and names cut to a
 * column. */
#define NAME_MAX_PRINTED 128
#define DETAIL_MAX_PRINTED 1024

static void print_table(const PolicyReport *r) {
        int uw = (int) strlen("USER"), cw = (int) strlen("FINDING");
        size_t n_findings = 0;
        char name[NAME_MAX_PRINTED], detail[DETAIL_MAX_PRINTED];

        for (size_t i = 0; i < r->n_users; i++) {
                const AuditUser *u = &r->users[i];

                for (size_t j = 0; j < u->findings.n; j++) {
                        int l = (int) sanitize_text(u->name, name, sizeof(name)),
                            c = (int) strlen(finding_code_to_string(u->findings.items[j].code));
                        uw = l > uw ? (l < 40 ? l : 40) : uw;
                        cw = c > cw ? c : cw;
                }
                n_findings += u->findings.n + u->findings.n_dropped;
        }
        if (n_findings > 0) {
                printf("%-*s  %-8s  %-*s  %s\n", uw, "USER", "SEVERITY", cw, "FINDING", "DETAIL");
                for (size_t i = 0; i < r->n_users; i++) {
                        const AuditUser *u = &r->users[i];

                        sanitize_text(u->name, name, sizeof(name));
                        for (size_t j = 0; j < u->findings.n; j++) {
                                const Finding *f = &u->findings.items[j];

                                sanitize_text(f->detail, detail, sizeof(detail));
                                printf("%-*s  %-8s  %-*s  %s\n", uw, name, finding_severity_to_string(f->severity),
                                       cw, finding_code_to_string(f->code), detail);
                        }
                        if (u->findings.n_dropped > 0)
                                printf("%-*s  %-8s  %-*s  %zu more findings not listed\n", uw, name, "warning", cw,
                                       "more-findings", u->findings.n_dropped);
                }
                printf("\n");
        }

        size_t crit = policy_report_count(r, FINDING_CRITICAL), warn = policy_report_count(r, FINDING_WARNING) - crit,
               info = policy_report_count(r, FINDING_INFO) - crit - warn, errors = policy_report_n_errors(r);
        printf("%zu user%s audited: ", r->n_users, r->n_users == 1 ? "" : "s");
        if (n_findings == 0)
                printf("no findings");
        else
                printf("%zu critical, %zu warning, %zu info", crit, warn, info);
        if (errors > 0)
                printf("; %zu error%s (see above): the audit is incomplete", errors, errors == 1 ? "" : "s");
        printf("\n");
}

static void log_errors(const PolicyReport *r) {
        for (size_t i = 0; i < r->n_users; i++)
                for (size_t j = 0; j < r->users[i].n_errors; j++)
                        log_error("audit of %s: %s", r->users[i].name, r->users[i].errors[j]);
        for (size_t j = 0; j < r->n_errors; j++)
                log_error("audit: %s", r->errors[j]);
}

int review_cmd_run(Runtime *rt, bool json, bool all_users) {
        _cleanup_(policy_report_freep) PolicyReport *report = NULL;
        _cleanup_free_ char *store_error = NULL;
        PolicyReview *audit = NULL;
        Wait w = {};
        int r;

        if (runtime_load_inventory(rt) < 0) {
                runtime_print_inventory_errors(rt);
                return EXIT_ERRORS;
        }

        /*
         * No lock: the audit changes nothing, and the daemon replaces the
         * store file atomically (rename), so what we read is one whole
         * commit, at worst a moment old. An unreadable store does not stop
         * the policy checks; the report says the keys were not compared.
         */
        r = runtime_open_store(rt);
        if (r < 0) {
                if (asprintf_safe(&store_error, "cannot read the store: %s; keys were not compared with what keyrotd holds",
                                  rt->error ?: strerror(-r)) < 0)
                        return EXIT_ERRORS;
                free(rt->error);
                rt->error = NULL;
        }
        r = runtime_open_aws(rt);
        if (r < 0) {
                if (rt->error)
                        log_error_errno(r, "%s", rt->error);
                else
                        log_error_errno(r, "cannot set up AWS access: %m");
                return EXIT_ERRORS;
        }

        PolicyReviewOptions o = {
                .inv = rt->inv,
                .store = rt->store,
                .all_users = all_users,
        };
        r = policy_review_start(rt->aws, &o, on_done, &w, &audit);
        if (r < 0) {
                log_error_errno(r, "cannot start the audit: %m");
                return EXIT_ERRORS;
        }
        while (!w.done) {
                r = sd_event_run(rt->event, UINT64_MAX);
                if (r < 0) {
                        policy_review_cancel(audit);
                        log_error_errno(r, "event loop failed: %m");
                        return EXIT_ERRORS;
                }
        }
        report = TAKE_PTR(w.report);
        if (store_error && policy_report_add_error(report, "%s", store_error) < 0)
                return EXIT_ERRORS; /* logged there */

        if (json) {
                json_object *o_json = policy_report_to_json(report);

                if (!o_json) {
                        log_error_errno(-ENOMEM, "cannot write the report: %m");
                        return EXIT_ERRORS;
                }
                ctl_json_sanitize(o_json);
                puts(json_object_to_json_string_ext(o_json, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
                json_object_put(o_json);
        } else {
                log_errors(report);
                print_table(report);
        }
        fflush(stdout);

        if (policy_report_n_errors(report) > 0)
                return EXIT_ERRORS;
        return policy_report_count(report, FINDING_WARNING) > 0 ? EXIT_FINDINGS : 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * review.h — the policy review behind `keyrotctl audit`, as an asynchronous engine on the
 * AWS client's sd-event loop, so that keyrotctl can wait for it and the
 * daemon can run it between rotations without blocking.
 *
 * For every user it reads, with read-only IAM calls: the access keys
 * (ListAccessKeys, GetAccessKeyLastUsed), the inline policies
 * (ListUserPolicies, GetUserPolicy), the attached managed policies
 * (ListAttachedUserPolicies, GetPolicy for the default version,
 * GetPolicyVersion) and the groups (ListGroupsForUser) with their inline
 * and attached policies; with all_users, every IAM user (ListUsers). It
 * judges them with policy/check.h, and compares the keys with the store.
 *
 * What IAM returns is bounded: lists are followed for at most
 * POLICY_REVIEW_MAX_PAGES pages, a user's policies, groups and keys are
 * capped, and anything cut short is an error of the report (the audit
 * could not vouch for the rest), never a silent omission.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "aws/client.h"
#include "inventory/inventory.h"
#include "policy/check.h"
#include "store/store.h"

#define POLICY_REVIEW_MAX_USERS 10000U
#define POLICY_REVIEW_MAX_PAGES 100U      /* of any one list */
#define POLICY_REVIEW_MAX_POLICIES 200U   /* per user, inline + managed, groups' included */
#define POLICY_REVIEW_MAX_GROUPS 100U     /* per user */
#define POLICY_REVIEW_MAX_KEYS 10U        /* per user (IAM allows 2) */
#define POLICY_REVIEW_MAX_ERRORS 50U      /* per user, and for the report */
#define POLICY_REVIEW_DEFAULT_PARALLEL 4U /* IAM calls in flight */

typedef struct AuditUser {
        char *name;
        bool in_inventory;
        Findings findings;
        char **errors; /* n_errors one-line messages */
        size_t n_errors;
} AuditUser;

typedef struct PolicyReport {
        AuditUser *users; /* inventory users in inventory order, then the others in IAM's */
        size_t n_users;
        char **errors; /* not about one user: ListUsers, the store, ... */
        size_t n_errors;
} PolicyReport;

PolicyReport *policy_report_free(PolicyReport *r);
static inline void policy_report_freep(PolicyReport **r) {
        policy_report_free(*r);
}

/* Add an error not about one user (e.g. the store could not be opened). */
int policy_report_add_error(PolicyReport *r, const char *fmt, ...) _printf_(2, 3);
/* Findings of severity @s or worse, over every user. */
size_t policy_report_count(const PolicyReport *r, FindingSeverity s);
/* Errors, the users' and the report's. */
size_t policy_report_n_errors(const PolicyReport *r);

/* {"users":[{"name","in_inventory","findings","errors"}],
 *  "findings":[{"user","severity","code","detail"}],
 *  "errors":[{"user" (null when not about one),"error"}],
 *  "summary":{"users","critical","warning","info","errors"}}
 * or NULL on ENOMEM. */
struct json_object *policy_report_to_json(const PolicyReport *r);

/* The daemon's journal: one audit_finding record per finding (PRIORITY 4,
 * 5 for info), one line per error, one audit_summary record. */
void policy_report_journal(const PolicyReport *r, const char *user, const char *trigger);

typedef struct PolicyReviewOptions {
        /* Read while starting only: what the engine needs is copied. */
        const Inventory *inv;
        /* Borrowed until the audit ends; NULL when it could not be opened:
         * keys are then not compared with it. Read when each user's audit
         * ends, so a rotation in between is seen. */
        const Store *store;
        /* Only these users (NULL-terminated); NULL: every inventory user. */
        const char *const *users;
        bool all_users; /* also every other IAM user (ListUsers) */
        unsigned max_parallel; /* 0: POLICY_REVIEW_DEFAULT_PARALLEL */
} PolicyReviewOptions;

typedef struct PolicyReview PolicyReview;

/* Called once from the event loop, never from policy_review_start(); the
 * report is the callee's to free. The audit frees itself after the
 * callback returns: forget the handle there. */
typedef void (*policy_review_done_t)(PolicyReport *report, void *userdata);

/* Start an audit on aws's event loop. *ret (may be NULL) is a handle for
 * policy_review_cancel() until done runs. -ENOMEM, -EINVAL. */
int policy_review_start(AwsClient *aws, const PolicyReviewOptions *o, policy_review_done_t done, void *userdata,
                    PolicyReview **ret);
/* Stop an audit that has not reported yet; done is not called. NULL is fine. */
void policy_review_cancel(PolicyReview *a);

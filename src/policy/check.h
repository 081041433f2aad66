/* SPDX-License-Identifier: MIT */
/*
 * check.h — what `keyrotctl audit` and the daemon's audit conclude
 * from what IAM says about a user: its policy documents and its access
 * keys. Pure functions: no I/O, no clock (the caller passes "now"), so
 * every rule is unit-tested on its own.
 *
 * A finding is one fact an operator should see, with a stable code (the
 * JSON output's "code", the journal's KEYROTD_FINDING) and a severity:
 *
 *   critical  the key can do more than S3: an action of another service,
 *             "*", or Allow with NotAction
 *   warning   broader than the user's job inside S3 (s3:*, Resource "*",
 *             buckets the inventory does not name, Allow with NotResource),
 *             or a key problem (two Active keys, too old, unused, not held)
 *   info      worth knowing, not wrong by itself (write actions while the
 *             verify check only reads; a user outside the inventory)
 *
 * Every document is hostile input: its size, nesting, statement and
 * element counts are bounded, and every piece of it quoted in a finding's
 * detail is cut short and stripped of anything but printable ASCII.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "basic/util.h"

/* Decoded policy documents longer than this are refused (IAM's own limits
 * are 2048 to 10240 characters without whitespace). */
#define POLICY_DOCUMENT_MAX (64U * 1024U)
#define POLICY_MAX_DEPTH 32
#define POLICY_MAX_STATEMENTS 1000U
#define POLICY_MAX_ELEMENTS 1000U /* actions or resources in one statement */
#define POLICY_MAX_ELEMENT 2048U  /* bytes of one action or resource */
/* Findings kept per Findings list; more are counted in n_dropped. */
#define FINDINGS_MAX 500U

typedef enum FindingSeverity {
        FINDING_INFO,
        FINDING_WARNING,
        FINDING_CRITICAL,
        _FINDING_SEVERITY_MAX,
} FindingSeverity;

typedef enum FindingCode {
        FINDING_ALL_ACTIONS,        /* "*" or "*:*" */
        FINDING_NON_S3_ACTION,      /* another service, or a service wildcard */
        FINDING_ALLOW_NOT_ACTION,   /* Allow + NotAction: everything but ... */
        FINDING_S3_ALL_ACTIONS,     /* "s3:*" */
        FINDING_RESOURCE_ALL,       /* "*", or every bucket */
        FINDING_UNLISTED_BUCKET,    /* a bucket (pattern) the inventory does not name */
        FINDING_ALLOW_NOT_RESOURCE, /* Allow + NotResource */
        FINDING_WRITE_ON_READ_ONLY, /* write actions, the verify check only reads */
        FINDING_KEYS_MULTIPLE_ACTIVE,
        FINDING_KEY_TOO_OLD,
        FINDING_KEY_NEVER_USED,
        FINDING_KEY_UNUSED,
        FINDING_KEY_NOT_HELD,
        FINDING_NOT_IN_INVENTORY,
        FINDING_ROTATION_IN_PROGRESS,
        _FINDING_CODE_MAX,
} FindingCode;

/* "critical", "warning", "info". */
const char *finding_severity_to_string(FindingSeverity s);
/* "all-actions", "non-s3-action", ... (stable: scripts and journal
 * filters use them). */
const char *finding_code_to_string(FindingCode c);
FindingSeverity finding_code_severity(FindingCode c);

typedef struct Finding {
        FindingCode code;
        FindingSeverity severity;
        char *user;
        char *detail; /* one line of printable ASCII */
} Finding;

typedef struct Findings {
        Finding *items;
        size_t n;
        size_t n_dropped; /* beyond FINDINGS_MAX */
} Findings;

/*
 * findings_add() - append a finding; an identical one (same code, user and
 * detail) is not added twice. Past FINDINGS_MAX only n_dropped grows.
 * Returns 0 or -ENOMEM.
 */
int findings_add(Findings *f, FindingCode code, const char *user, const char *fmt, ...) _printf_(4, 5);
void findings_clear(Findings *f);
/* Findings of severity @s or worse (dropped ones count as warnings). */
size_t findings_count(const Findings *f, FindingSeverity s);

typedef struct PolicyContext {
        const char *user;   /* named in every finding */
        const char *source; /* where the document came from: "inline policy x" */
        /* Buckets the user's policies may name; NULL = unknown (the user is
         * not in the inventory): no bucket findings then. */
        const char *const *buckets;
        size_t n_buckets;
        bool read_only; /* the verify check only reads: writes are noted */
} PolicyContext;

/*
 * policy_document_decode() - the JSON text of a policy document as IAM
 * returns it: URL-encoded (RFC 3986: "%XX", '+' is a plus sign), or, from
 * emulators that skip the encoding, already JSON (it starts with '{').
 * Returns 0 and a newly allocated *ret; -EBADMSG for a malformed escape or
 * an encoded NUL; -E2BIG when the result exceeds POLICY_DOCUMENT_MAX;
 * -ENOMEM.
 */
int policy_document_decode(const char *raw, char **ret);

/*
 * policy_check_document() - check one policy document (JSON, @len bytes,
 * need not be NUL-terminated) and append what it grants beyond an S3-only
 * job to @out. Deny statements restrict and are not findings; Condition
 * blocks are not evaluated (a condition may narrow a grant, never widen
 * it, so ignoring them errs on the side of a finding).
 *
 * Returns 0 (findings appended, possibly none); -EBADMSG when the document
 * is not a policy (malformed JSON, wrong types, missing Effect) or -E2BIG
 * when it exceeds a bound, with *ret_error (may be NULL) saying what;
 * -ENOMEM. On error, findings already appended from this document stay.
 */
int policy_check_document(const char *json, size_t len, const PolicyContext *ctx, Findings *out,
                          char **ret_error);

/* What IAM says about one access key. */
typedef struct KeyFacts {
        const char *access_key_id;
        bool active;
        time_t created;   /* UTC seconds */
        time_t last_used; /* UTC seconds; 0 = never used */
        bool usage_unknown; /* GetAccessKeyLastUsed failed: no unused findings */
} KeyFacts;

typedef struct KeyContext {
        const char *user;
        usec_t max_age; /* > 0 */
        time_t now;     /* UTC seconds */
        /* Key ids keyrotd holds for the user (current, pending, previous). */
        const char *const *held;
        size_t n_held;
        bool check_held;          /* false: keyrotd does not manage the user */
        bool rotation_in_progress; /* two keys and an unheld one are expected */
} KeyContext;

/*
 * policy_check_keys() - findings about a user's keys: more than one Active
 * key; a key older than max_age; an Active key not used for longer than
 * max_age (counted from its creation when it was never used); a key
 * keyrotd does not hold. Returns 0 or -ENOMEM.
 */
int policy_check_keys(const KeyFacts *keys, size_t n, const KeyContext *ctx, Findings *out);

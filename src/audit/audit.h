/* SPDX-License-Identifier: MIT */
/*
 * audit.h — one structured record per step of every rotation, and the
 * program's other diagnostics, to journald or to stderr (docs/DESIGN.md §4).
 *
 * Journal: one entry per record via sd_journal_send, MESSAGE_ID from
 * audit-ids.h (explained by systemd/keyrotd.catalog), SYSLOG_IDENTIFIER=
 * keyrotd, PRIORITY 6 (2 critical, 3 failure) and the fields KEYROTD_USER,
 * _ROTATION_ID, _EVENT, _OLD_KEY_ID, _NEW_KEY_ID, _TRIGGER, _RESULT, _ERROR,
 * _REQUEST_ID, _FINDING (empty ones left out).
 * stderr: one logfmt line per record: event=… user=… rotation_id=…
 * old_key_id=… new_key_id=… trigger=… result=… error=… request_id=…
 * priority=… msg="…".
 *
 * Callers never pass a secret: records carry key *ids* only. As a second
 * line of defence every value is sanitised before it leaves: control
 * characters become spaces (one record, one line), invalid UTF-8 becomes
 * '?', lengths are bounded, and anything shaped like an AWS secret access
 * key (a run of 40 or more base64 characters mixing upper case, lower case
 * and digits) is replaced by "[redacted]".
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

#include "basic/util.h"

typedef enum AuditTarget {
        AUDIT_TARGET_AUTO,    /* journal if $JOURNAL_STREAM or the journal socket exists */
        AUDIT_TARGET_JOURNAL,
        AUDIT_TARGET_STDERR,
        _AUDIT_TARGET_MAX,
        _AUDIT_TARGET_INVALID = -EINVAL,
} AuditTarget;

/**
 * audit_target_from_string() - parse "auto", "journal" or "stderr".
 * Returns the target, or _AUDIT_TARGET_INVALID (-EINVAL).
 */
AuditTarget audit_target_from_string(const char *s);
const char *audit_target_to_string(AuditTarget t);

/**
 * audit_set_target() - choose where records and log_message() go.
 * AUDIT_TARGET_AUTO resolves here, once: the journal when $JOURNAL_STREAM
 * is set or /run/systemd/journal/socket exists, else stderr. Until this is
 * called the target is stderr (so unit tests never write to the journal).
 * If a journal write fails later, that record goes to stderr instead.
 * Returns the target in force (AUDIT_TARGET_JOURNAL or _STDERR), or
 * -EINVAL for an invalid @t (the target is then left unchanged).
 */
int audit_set_target(AuditTarget t);
AuditTarget audit_get_target(void);

typedef enum AuditEvent {
        AUDIT_ROTATION_STARTED,
        AUDIT_STALE_KEY_DELETED,
        AUDIT_KEY_CREATED,
        AUDIT_KEY_VERIFIED,
        AUDIT_VERIFY_FAILED,
        AUDIT_NEW_KEY_DELETED,
        AUDIT_TARGETS_WRITTEN,
        AUDIT_HOOK_RUN,
        AUDIT_DRAIN, /* drain: whether consumers use the new key before the old one stops */
        AUDIT_OLD_KEY_DEACTIVATED,
        AUDIT_OLD_KEY_DELETED,
        AUDIT_ROTATION_COMPLETED,
        AUDIT_ROTATION_FAILED,
        AUDIT_RECOVERY,
        AUDIT_ROLLBACK,
        AUDIT_KEY_ADOPTED,
        AUDIT_USER_CREATED,
        AUDIT_USER_TAKEN_OVER,
        AUDIT_POLICY_PUT,
        AUDIT_PROVISIONED,
        AUDIT_POLICY_FINDING, /* keyrotctl audit / the daemon's audit: one finding */
        AUDIT_POLICY_SUMMARY, /* ... and one per audit run */
        _AUDIT_EVENT_MAX,
} AuditEvent;

const char *audit_event_to_string(AuditEvent e);

typedef struct AuditRecord {
        AuditEvent event;
        const char *user;
        const char *rotation_id;
        const char *old_key_id;
        const char *new_key_id;
        const char *trigger;
        const char *result;     /* "ok", "failed", ... */
        const char *error;      /* the AWS error code or a short cause */
        const char *request_id; /* the AWS request id, when there is one */
        const char *message;    /* one human sentence */
        const char *finding;    /* audit findings: the finding's code (KEYROTD_FINDING) */
        bool failure;           /* PRIORITY=3 */
        bool critical;          /* PRIORITY=2: alert_after consecutive failures */
        int priority;           /* > 0: this PRIORITY instead (audit findings: 4, 5) */
} AuditRecord;

/* The journald MESSAGE_ID (32 hex digits) of @e, or NULL. */
const char *audit_event_message_id(AuditEvent e);

/* Send one record to the target (see audit_set_target()). */
void audit_emit(const AuditRecord *r);

/* Write logfmt "key=value" with quoting as needed; exposed for tests. */
void audit_format(const AuditRecord *r, char *buf, unsigned size);

/**
 * log_message() - a diagnostic that is not an audit record (hook output,
 * errors, state changes), to the same target as the records.
 * @priority: syslog level, 0 (emerg) .. 7 (debug); 3 is an error, 6 info.
 * Journal: MESSAGE, PRIORITY and SYSLOG_IDENTIFIER (the program's name).
 * stderr: "PROGRAM: message". The message is sanitised like a record's
 * values: one line, bounded, no secret-shaped strings.
 */
void log_message(int priority, const char *fmt, ...) _printf_(2, 3);

/**
 * audit_sanitize() - copy @in to @out (@size bytes, NUL-terminated) as
 * described above; NULL becomes "". Returns the length written. Exposed
 * for tests.
 */
size_t audit_sanitize(const char *in, char *out, size_t size);

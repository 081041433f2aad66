/* SPDX-License-Identifier: MIT */
/*
 * audit.h — one structured record per step of every rotation (and per
 * provisioning step and policy finding), docs/DESIGN.md §4. Where records
 * go is the log module's decision (log_setup(), basic/log.h): the journal,
 * stderr, or both.
 *
 * Journal: one entry per record, MESSAGE_ID from audit-ids.h (explained by
 * systemd/keyrotd.catalog), SYSLOG_IDENTIFIER=keyrotd, PRIORITY 6 (2
 * critical, 3 failure) and the fields KEYROTD_USER, _ROTATION_ID, _EVENT,
 * _OLD_KEY_ID, _NEW_KEY_ID, _TRIGGER, _RESULT, _ERROR, _REQUEST_ID,
 * _FINDING (empty ones left out).
 * stderr: one logfmt line per record: time=… event=… user=… rotation_id=…
 * old_key_id=… new_key_id=… trigger=… result=… error=… request_id=…
 * finding=… priority=… msg="…".
 *
 * Callers never pass a secret: records carry key *ids* only. As a second
 * line of defence every value is sanitised (basic/sanitize.h) before it
 * leaves: one record, one line, bounded, no secret-shaped strings.
 */
#pragma once

#include <stdbool.h>

#include "basic/log.h"

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
        bool critical;          /* PRIORITY=2, whatever else: alert_after failures or drain warnings */
        int priority;           /* > 0: this PRIORITY unless critical (warnings: 4, findings: 4, 5) */
} AuditRecord;

/* The journald MESSAGE_ID (32 hex digits) of @e, or NULL. */
const char *audit_event_message_id(AuditEvent e);

/* Send one record where records go (log_record()). */
void audit_emit(const AuditRecord *r);

/* The record as logfmt "key=value" with quoting as needed, without the
 * time (log_record() adds it); exposed for tests. */
void audit_format(const AuditRecord *r, char *buf, unsigned size);

/* SPDX-License-Identifier: MIT */
/*
 * audit.h — one structured record per step of every rotation.
 *
 * Until journald support lands (DESIGN.md §4) each record is one logfmt
 * line on stderr: event=… user=… rotation_id=… old_key_id=… new_key_id=…
 * trigger=… result=… error=… request_id=… msg="…". Callers never pass a
 * secret: records carry key *ids* only.
 */
#pragma once

#include <stdbool.h>

typedef enum AuditEvent {
        AUDIT_ROTATION_STARTED,
        AUDIT_STALE_KEY_DELETED,
        AUDIT_KEY_CREATED,
        AUDIT_KEY_VERIFIED,
        AUDIT_VERIFY_FAILED,
        AUDIT_NEW_KEY_DELETED,
        AUDIT_TARGETS_WRITTEN,
        AUDIT_HOOK_RUN,
        AUDIT_OLD_KEY_DEACTIVATED,
        AUDIT_OLD_KEY_DELETED,
        AUDIT_ROTATION_COMPLETED,
        AUDIT_ROTATION_FAILED,
        AUDIT_RECOVERY,
        AUDIT_ROLLBACK,
        AUDIT_KEY_ADOPTED,
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
        bool failure;           /* PRIORITY=3 once journald lands */
        bool critical;          /* PRIORITY=2: alert_after consecutive failures */
} AuditRecord;

void audit_emit(const AuditRecord *r);

/* Write logfmt "key=value" with quoting as needed; exposed for tests. */
void audit_format(const AuditRecord *r, char *buf, unsigned size);

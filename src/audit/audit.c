/* SPDX-License-Identifier: MIT */
#include "audit/audit.h"

#include <stdio.h>
#include <string.h>

#include "audit/audit-ids.h"
#include "basic/sanitize.h"

#define SYSLOG_IDENTIFIER "keyrotd"

/* Bounds, in bytes, of what one record may carry. */
#define VALUE_MAX 256    /* ids, codes, names */
#define DETAIL_MAX 1024  /* the caller's sentence */
#define MESSAGE_MAX 2048 /* MESSAGE= as a whole */
#define LOGFMT_MAX 4096  /* the logfmt line */

static const char *const event_names[_AUDIT_EVENT_MAX] = {
        [AUDIT_ROTATION_STARTED] = "rotation_started",
        [AUDIT_STALE_KEY_DELETED] = "stale_key_deleted",
        [AUDIT_KEY_CREATED] = "key_created",
        [AUDIT_KEY_VERIFIED] = "key_verified",
        [AUDIT_VERIFY_FAILED] = "verify_failed",
        [AUDIT_NEW_KEY_DELETED] = "new_key_deleted",
        [AUDIT_TARGETS_WRITTEN] = "targets_written",
        [AUDIT_HOOK_RUN] = "hook_run",
        [AUDIT_DRAIN] = "drain",
        [AUDIT_OLD_KEY_DEACTIVATED] = "old_key_deactivated",
        [AUDIT_OLD_KEY_DELETED] = "old_key_deleted",
        [AUDIT_ROTATION_COMPLETED] = "rotation_completed",
        [AUDIT_ROTATION_FAILED] = "rotation_failed",
        [AUDIT_RECOVERY] = "recovery",
        [AUDIT_ROLLBACK] = "rollback",
        [AUDIT_KEY_ADOPTED] = "key_adopted",
        [AUDIT_USER_CREATED] = "user_created",
        [AUDIT_USER_TAKEN_OVER] = "user_taken_over",
        [AUDIT_POLICY_PUT] = "policy_put",
        [AUDIT_PROVISIONED] = "provisioned",
        [AUDIT_POLICY_FINDING] = "audit_finding",
        [AUDIT_POLICY_SUMMARY] = "audit_summary",
};

static const char *const message_ids[_AUDIT_EVENT_MAX] = {
        [AUDIT_ROTATION_STARTED] = KEYROTD_MESSAGE_ROTATION_STARTED,
        [AUDIT_STALE_KEY_DELETED] = KEYROTD_MESSAGE_STALE_KEY_DELETED,
        [AUDIT_KEY_CREATED] = KEYROTD_MESSAGE_KEY_CREATED,
        [AUDIT_KEY_VERIFIED] = KEYROTD_MESSAGE_KEY_VERIFIED,
        [AUDIT_VERIFY_FAILED] = KEYROTD_MESSAGE_VERIFY_FAILED,
        [AUDIT_NEW_KEY_DELETED] = KEYROTD_MESSAGE_NEW_KEY_DELETED,
        [AUDIT_TARGETS_WRITTEN] = KEYROTD_MESSAGE_TARGETS_WRITTEN,
        [AUDIT_HOOK_RUN] = KEYROTD_MESSAGE_HOOK_RUN,
        [AUDIT_DRAIN] = KEYROTD_MESSAGE_DRAIN,
        [AUDIT_OLD_KEY_DEACTIVATED] = KEYROTD_MESSAGE_OLD_KEY_DEACTIVATED,
        [AUDIT_OLD_KEY_DELETED] = KEYROTD_MESSAGE_OLD_KEY_DELETED,
        [AUDIT_ROTATION_COMPLETED] = KEYROTD_MESSAGE_ROTATION_COMPLETED,
        [AUDIT_ROTATION_FAILED] = KEYROTD_MESSAGE_ROTATION_FAILED,
        [AUDIT_RECOVERY] = KEYROTD_MESSAGE_RECOVERY,
        [AUDIT_ROLLBACK] = KEYROTD_MESSAGE_ROLLBACK,
        [AUDIT_KEY_ADOPTED] = KEYROTD_MESSAGE_KEY_ADOPTED,
        [AUDIT_USER_CREATED] = KEYROTD_MESSAGE_USER_CREATED,
        [AUDIT_USER_TAKEN_OVER] = KEYROTD_MESSAGE_USER_TAKEN_OVER,
        [AUDIT_POLICY_PUT] = KEYROTD_MESSAGE_POLICY_PUT,
        [AUDIT_PROVISIONED] = KEYROTD_MESSAGE_PROVISIONED,
        [AUDIT_POLICY_FINDING] = KEYROTD_MESSAGE_AUDIT_FINDING,
        [AUDIT_POLICY_SUMMARY] = KEYROTD_MESSAGE_AUDIT_SUMMARY,
};

/* The start of MESSAGE= for each event: what happened, and what happened
 * when the record is a failure (NULL: the same words serve). */
static const struct {
        const char *ok, *failed;
} summaries[_AUDIT_EVENT_MAX] = {
        [AUDIT_ROTATION_STARTED] = { "rotation started", NULL },
        [AUDIT_STALE_KEY_DELETED] = { "stale Inactive key deleted", NULL },
        [AUDIT_KEY_CREATED] = { "new key created and sealed", "creating a new key failed" },
        [AUDIT_KEY_VERIFIED] = { "new key verified", NULL },
        [AUDIT_VERIFY_FAILED] = { "verification of the new key failed", NULL },
        [AUDIT_NEW_KEY_DELETED] = { "new key deleted", NULL },
        [AUDIT_TARGETS_WRITTEN] = { "targets written", "writing the targets failed" },
        [AUDIT_HOOK_RUN] = { "on_rotate hook ran", "on_rotate hook failed" },
        [AUDIT_DRAIN] = { "drain", NULL },
        [AUDIT_OLD_KEY_DEACTIVATED] = { "old key deactivated", NULL },
        [AUDIT_OLD_KEY_DELETED] = { "old key deleted", NULL },
        [AUDIT_ROTATION_COMPLETED] = { "rotation completed", NULL },
        [AUDIT_ROTATION_FAILED] = { "rotation failed", NULL },
        [AUDIT_RECOVERY] = { "recovering an interrupted rotation", "recovery failed" },
        [AUDIT_ROLLBACK] = { "rollback", "rollback failed" },
        [AUDIT_KEY_ADOPTED] = { "existing key adopted", NULL },
        [AUDIT_USER_CREATED] = { "IAM user created", "creating the IAM user failed" },
        [AUDIT_USER_TAKEN_OVER] = { "existing IAM user taken over", NULL },
        [AUDIT_POLICY_PUT] = { "inline S3 policy put", "putting the inline S3 policy failed" },
        [AUDIT_PROVISIONED] = { "user provisioned", "provisioning failed" },
        [AUDIT_POLICY_FINDING] = { "audit finding", NULL },
        [AUDIT_POLICY_SUMMARY] = { "audit", "audit incomplete" },
};

const char *audit_event_to_string(AuditEvent e) {
        return e >= 0 && e < _AUDIT_EVENT_MAX ? event_names[e] : NULL;
}

const char *audit_event_message_id(AuditEvent e) {
        return e >= 0 && e < _AUDIT_EVENT_MAX ? message_ids[e] : NULL;
}

/* ---------------------------------------------------------------- logfmt */

static void append(char *buf, unsigned size, unsigned *pos, const char *key, const char *raw) {
        char value[DETAIL_MAX];
        bool quote = false;

        if (!raw || !*raw || *pos >= size)
                return;
        sanitize_text(raw, value, sizeof value);
        for (const char *c = value; *c; c++)
                if (*c == ' ' || *c == '"' || *c == '=' || *c == '\\')
                        quote = true;

        int n = snprintf(buf + *pos, size - *pos, "%s%s=%s", *pos ? " " : "", key, quote ? "\"" : "");
        if (n < 0 || (unsigned) n >= size - *pos) {
                *pos = size;
                return;
        }
        *pos += (unsigned) n;
        for (const char *c = value; *c && *pos + 3 < size; c++) {
                if (*c == '"' || *c == '\\')
                        buf[(*pos)++] = '\\';
                buf[(*pos)++] = *c;
        }
        if (quote && *pos + 1 < size)
                buf[(*pos)++] = '"';
        buf[*pos < size ? *pos : size - 1] = 0;
}

/* critical first: a warning repeated alert_after times is an alert. */
static int record_priority(const AuditRecord *r) {
        if (r->critical)
                return 2;
        if (r->priority > 0 && r->priority <= 7)
                return r->priority;
        return r->failure ? 3 : 6;
}

void audit_format(const AuditRecord *r, char *buf, unsigned size) {
        char priority[2] = { (char) ('0' + record_priority(r)), 0 };
        unsigned pos = 0;

        if (size == 0)
                return;
        buf[0] = 0;
        append(buf, size, &pos, "event", audit_event_to_string(r->event));
        append(buf, size, &pos, "user", r->user);
        append(buf, size, &pos, "rotation_id", r->rotation_id);
        append(buf, size, &pos, "old_key_id", r->old_key_id);
        append(buf, size, &pos, "new_key_id", r->new_key_id);
        append(buf, size, &pos, "trigger", r->trigger);
        append(buf, size, &pos, "result", r->result);
        append(buf, size, &pos, "error", r->error);
        append(buf, size, &pos, "request_id", r->request_id);
        append(buf, size, &pos, "finding", r->finding);
        append(buf, size, &pos, "priority", priority);
        append(buf, size, &pos, "msg", r->message);
}

/* ---------------------------------------------------------------- journal */

#define N_FIELDS 16

typedef struct Entry {
        struct iovec iov[N_FIELDS];
        size_t n;
        char arena[MESSAGE_MAX + N_FIELDS * (VALUE_MAX + 32)];
        size_t used;
} Entry;

/* Add NAME=VALUE, VALUE sanitised and at most @max bytes; nothing if the
 * value is empty (journal fields are left out rather than sent blank). */
static void entry_add(Entry *e, const char *name, const char *value, size_t max) {
        size_t room = sizeof e->arena - e->used, name_len = strlen(name), len;
        char *p = e->arena + e->used;

        if (!value || !*value || e->n >= N_FIELDS || room < name_len + 2)
                return;
        memcpy(p, name, name_len);
        p[name_len] = '=';
        room -= name_len + 1;
        len = sanitize_text(value, p + name_len + 1, max + 1 < room ? max + 1 : room);
        if (len == 0)
                return;
        e->iov[e->n++] = (struct iovec) { .iov_base = p, .iov_len = name_len + 1 + len };
        e->used += name_len + 1 + len + 1;
}

/* MESSAGE=: "USER: what happened[: the caller's detail] (error CODE; old
 * key ID; new key ID)", each part sanitised on its own. */
static void format_message(const AuditRecord *r, char *buf, size_t size) {
        char user[VALUE_MAX], detail[DETAIL_MAX], error[VALUE_MAX], old_id[VALUE_MAX], new_id[VALUE_MAX];
        char raw[MESSAGE_MAX + 64];
        const char *summary = NULL;
        size_t n = 0;

        if (r->event >= 0 && r->event < _AUDIT_EVENT_MAX)
                summary = r->failure && summaries[r->event].failed ? summaries[r->event].failed
                                                                    : summaries[r->event].ok;
        sanitize_text(r->user && *r->user ? r->user : "-", user, sizeof user);
        sanitize_text(r->message, detail, sizeof detail);
        sanitize_text(r->error, error, sizeof error);
        sanitize_text(r->old_key_id, old_id, sizeof old_id);
        sanitize_text(r->new_key_id, new_id, sizeof new_id);

        n = (size_t) snprintf(raw, sizeof raw, "%s: %s", user, summary ?: "audit event");
        if (*detail && (!summary || !strstr(summary, detail)) && n < sizeof raw)
                n += (size_t) snprintf(raw + n, sizeof raw - n, ": %s", detail);

        const char *sep = " (";
        if (*error && n < sizeof raw) {
                n += (size_t) snprintf(raw + n, sizeof raw - n, "%serror %s", sep, error);
                sep = "; ";
        }
        if (*old_id && n < sizeof raw) {
                n += (size_t) snprintf(raw + n, sizeof raw - n, "%sold key %s", sep, old_id);
                sep = "; ";
        }
        if (*new_id && n < sizeof raw) {
                n += (size_t) snprintf(raw + n, sizeof raw - n, "%snew key %s", sep, new_id);
                sep = "; ";
        }
        if (!streq(sep, " (") && n < sizeof raw)
                (void) snprintf(raw + n, sizeof raw - n, ")");
        /* Once more over the whole: a cut may have split a character. */
        sanitize_text(raw, buf, size);
}

void audit_emit(const AuditRecord *r) {
        char message[MESSAGE_MAX], line[LOGFMT_MAX], priority[2] = { (char) ('0' + record_priority(r)), 0 };
        Entry e = {};

        format_message(r, message, sizeof message);
        entry_add(&e, "MESSAGE", message, MESSAGE_MAX);
        entry_add(&e, "MESSAGE_ID", audit_event_message_id(r->event), VALUE_MAX);
        entry_add(&e, "PRIORITY", priority, VALUE_MAX);
        entry_add(&e, "SYSLOG_IDENTIFIER", SYSLOG_IDENTIFIER, VALUE_MAX);
        entry_add(&e, "KEYROTD_EVENT", audit_event_to_string(r->event), VALUE_MAX);
        entry_add(&e, "KEYROTD_USER", r->user, VALUE_MAX);
        entry_add(&e, "KEYROTD_ROTATION_ID", r->rotation_id, VALUE_MAX);
        entry_add(&e, "KEYROTD_OLD_KEY_ID", r->old_key_id, VALUE_MAX);
        entry_add(&e, "KEYROTD_NEW_KEY_ID", r->new_key_id, VALUE_MAX);
        entry_add(&e, "KEYROTD_TRIGGER", r->trigger, VALUE_MAX);
        entry_add(&e, "KEYROTD_RESULT", r->result, VALUE_MAX);
        entry_add(&e, "KEYROTD_ERROR", r->error, VALUE_MAX);
        entry_add(&e, "KEYROTD_REQUEST_ID", r->request_id, VALUE_MAX);
        entry_add(&e, "KEYROTD_FINDING", r->finding, VALUE_MAX);
        audit_format(r, line, sizeof line);
        /* What the journal refuses log_record() writes to stderr. */
        (void) log_record(e.iov, e.n, line);
}

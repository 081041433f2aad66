/* SPDX-License-Identifier: MIT */
#include "audit.h"

#include <stdio.h>
#include <string.h>

static const char *const event_names[_AUDIT_EVENT_MAX] = {
        [AUDIT_ROTATION_STARTED] = "rotation_started",
        [AUDIT_STALE_KEY_DELETED] = "stale_key_deleted",
        [AUDIT_KEY_CREATED] = "key_created",
        [AUDIT_KEY_VERIFIED] = "key_verified",
        [AUDIT_VERIFY_FAILED] = "verify_failed",
        [AUDIT_NEW_KEY_DELETED] = "new_key_deleted",
        [AUDIT_TARGETS_WRITTEN] = "targets_written",
        [AUDIT_HOOK_RUN] = "hook_run",
        [AUDIT_OLD_KEY_DEACTIVATED] = "old_key_deactivated",
        [AUDIT_OLD_KEY_DELETED] = "old_key_deleted",
        [AUDIT_ROTATION_COMPLETED] = "rotation_completed",
        [AUDIT_ROTATION_FAILED] = "rotation_failed",
        [AUDIT_RECOVERY] = "recovery",
        [AUDIT_ROLLBACK] = "rollback",
        [AUDIT_KEY_ADOPTED] = "key_adopted",
};

const char *audit_event_to_string(AuditEvent e) {
        return e >= 0 && e < _AUDIT_EVENT_MAX ? event_names[e] : NULL;
}

static void append(char *buf, unsigned size, unsigned *pos, const char *key, const char *value) {
        bool quote = false;

        if (!value || !*value || *pos >= size)
                return;
        for (const char *c = value; *c; c++)
                if (*c == ' ' || *c == '"' || *c == '=' || *c == '\\' || (unsigned char) *c < 0x20)
                        quote = true;

        int n = snprintf(buf + *pos, size - *pos, "%s%s=%s", *pos ? " " : "", key, quote ? "\"" : "");
        if (n < 0 || (unsigned) n >= size - *pos) {
                *pos = size;
                return;
        }
        *pos += (unsigned) n;
        for (const char *c = value; *c && *pos + 3 < size; c++) {
                if (*c == '"' || *c == '\\') {
                        buf[(*pos)++] = '\\';
                        buf[(*pos)++] = *c;
                } else if ((unsigned char) *c < 0x20)
                        buf[(*pos)++] = ' '; /* one record, one line */
                else
                        buf[(*pos)++] = *c;
        }
        if (quote && *pos + 1 < size)
                buf[(*pos)++] = '"';
        buf[*pos < size ? *pos : size - 1] = 0;
}

void audit_format(const AuditRecord *r, char *buf, unsigned size) {
        unsigned pos = 0;

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
        append(buf, size, &pos, "priority", r->critical ? "2" : r->failure ? "3" : "6");
        append(buf, size, &pos, "msg", r->message);
}

void audit_emit(const AuditRecord *r) {
        char line[2048];

        audit_format(r, line, sizeof line);
        fprintf(stderr, "%s\n", line);
        fflush(stderr);
}

/* SPDX-License-Identifier: MIT */
#include "audit/audit.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>

/* The entry's CODE_FILE/CODE_LINE would only ever name this file. */
#define SD_JOURNAL_SUPPRESS_LOCATION 1
#include <systemd/sd-journal.h>

#include "audit/audit-ids.h"

#define JOURNAL_SOCKET "/run/systemd/journal/socket"
#define SYSLOG_IDENTIFIER "keyrotd"

/* Bounds, in bytes, of what one record may carry. */
#define VALUE_MAX 256    /* ids, codes, names */
#define DETAIL_MAX 1024  /* the caller's sentence */
#define MESSAGE_MAX 2048 /* MESSAGE= as a whole, and log_message() */

/* Secret access keys are 40 base64 characters; see audit_sanitize(). */
#define SECRET_RUN_MIN 40
#define REDACTED "[redacted]"

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

static const char *const target_names[_AUDIT_TARGET_MAX] = {
        [AUDIT_TARGET_AUTO] = "auto",
        [AUDIT_TARGET_JOURNAL] = "journal",
        [AUDIT_TARGET_STDERR] = "stderr",
};

/* stderr until a program chooses: unit tests must not fill the journal. */
static AuditTarget target = AUDIT_TARGET_STDERR;
static bool journal_failure_noted;

const char *audit_event_to_string(AuditEvent e) {
        return e >= 0 && e < _AUDIT_EVENT_MAX ? event_names[e] : NULL;
}

const char *audit_event_message_id(AuditEvent e) {
        return e >= 0 && e < _AUDIT_EVENT_MAX ? message_ids[e] : NULL;
}

const char *audit_target_to_string(AuditTarget t) {
        return t >= 0 && t < _AUDIT_TARGET_MAX ? target_names[t] : NULL;
}

AuditTarget audit_target_from_string(const char *s) {
        if (!s)
                return _AUDIT_TARGET_INVALID;
        for (AuditTarget t = 0; t < _AUDIT_TARGET_MAX; t++)
                if (streq(s, target_names[t]))
                        return t;
        return _AUDIT_TARGET_INVALID;
}

static bool journal_socket_exists(void) {
        struct stat st;

        return stat(JOURNAL_SOCKET, &st) == 0 && S_ISSOCK(st.st_mode);
}

static bool journal_present(void) {
        const char *e = getenv("JOURNAL_STREAM");

        return (e && *e) || journal_socket_exists();
}

int audit_set_target(AuditTarget t) {
        if (t < 0 || t >= _AUDIT_TARGET_MAX)
                return -EINVAL;
        if (t == AUDIT_TARGET_AUTO)
                t = journal_present() ? AUDIT_TARGET_JOURNAL : AUDIT_TARGET_STDERR;
        target = t;
        journal_failure_noted = false;
        return t;
}

AuditTarget audit_get_target(void) {
        return target;
}

/* ------------------------------------------------------------ sanitising */

static bool is_base64_char(unsigned char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/* Whether s[0..n) looks like a secret access key (random base64) rather
 * than a word, a path or a hex digest: upper case, lower case, and a digit
 * or '+' or '/' all appear. A random 40-character key lacks one of the
 * three with a probability below 1 in 3000. */
static bool looks_secret(const char *s, size_t n) {
        bool upper = false, lower = false, other = false;

        if (n < SECRET_RUN_MIN)
                return false;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) s[i];

                if (c >= 'A' && c <= 'Z')
                        upper = true;
                else if (c >= 'a' && c <= 'z')
                        lower = true;
                else
                        other = true;
        }
        return upper && lower && other;
}

/* Length of the valid UTF-8 sequence at s (1..4), 0 if invalid. */
static size_t utf8_length(const unsigned char *s) {
        unsigned char c = s[0];
        size_t n;
        unsigned char lo = 0x80, hi = 0xbf;

        if (c < 0x80)
                return 1;
        if (c >= 0xc2 && c <= 0xdf)
                n = 2;
        else if (c >= 0xe0 && c <= 0xef) {
                n = 3;
                if (c == 0xe0)
                        lo = 0xa0; /* no overlong forms */
                else if (c == 0xed)
                        hi = 0x9f; /* no surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
                n = 4;
                if (c == 0xf0)
                        lo = 0x90;
                else if (c == 0xf4)
                        hi = 0x8f; /* nothing above U+10FFFF */
        } else
                return 0;
        if (s[1] < lo || s[1] > hi)
                return 0;
        for (size_t i = 2; i < n; i++)
                if (s[i] < 0x80 || s[i] > 0xbf)
                        return 0;
        return n;
}

size_t audit_sanitize(const char *in, char *out, size_t size) {
        const unsigned char *s = (const unsigned char *) (in ?: ""), *plain_until = s;
        size_t pos = 0;
        bool truncated = false;

        if (size == 0)
                return 0;
        while (*s) {
                const char *piece;
                size_t len, advance;
                char c;

                if (s < plain_until) {
                        /* Inside a run already found harmless. */
                        piece = (const char *) s;
                        len = advance = 1;
                } else if (is_base64_char(*s)) {
                        size_t run = 0;

                        while (is_base64_char(s[run]))
                                run++;
                        if (looks_secret((const char *) s, run)) {
                                piece = REDACTED;
                                len = strlen(REDACTED);
                                advance = run;
                        } else {
                                plain_until = s + run;
                                piece = (const char *) s;
                                len = advance = 1;
                        }
                } else if (*s < 0x20 || *s == 0x7f || (*s == 0xc2 && s[1] >= 0x80 && s[1] <= 0x9f)) {
                        /* C0, DEL and C1 controls: one record, one line, no
                         * terminal escapes. */
                        c = ' ';
                        piece = &c;
                        len = 1;
                        advance = *s == 0xc2 ? 2 : 1;
                } else if ((len = utf8_length(s)) == 0) {
                        c = '?';
                        piece = &c;
                        len = advance = 1;
                } else {
                        piece = (const char *) s;
                        advance = len;
                }
                if (pos + len > size - 1) {
                        truncated = true;
                        break;
                }
                memcpy(out + pos, piece, len);
                pos += len;
                s += advance;
        }
        if (truncated && size > 4) {
                /* End on a character boundary, and say that we cut. */
                if (pos > size - 4)
                        pos = size - 4;
                while (pos > 0 && ((unsigned char) out[pos] & 0xc0) == 0x80)
                        pos--;
                memcpy(out + pos, "...", 3);
                pos += 3;
        }
        out[pos] = 0;
        return pos;
}

/* ---------------------------------------------------------------- logfmt */

static void append(char *buf, unsigned size, unsigned *pos, const char *key, const char *raw) {
        char value[DETAIL_MAX];
        bool quote = false;

        if (!raw || !*raw || *pos >= size)
                return;
        audit_sanitize(raw, value, sizeof value);
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

static int record_priority(const AuditRecord *r) {
        if (r->priority > 0 && r->priority <= 7)
                return r->priority;
        return r->critical ? 2 : r->failure ? 3 : 6;
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

static void emit_stderr(const AuditRecord *r) {
        char line[4096];

        audit_format(r, line, sizeof line);
        fprintf(stderr, "%s\n", line);
        fflush(stderr);
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
        len = audit_sanitize(value, p + name_len + 1, max + 1 < room ? max + 1 : room);
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
        audit_sanitize(r->user && *r->user ? r->user : "-", user, sizeof user);
        audit_sanitize(r->message, detail, sizeof detail);
        audit_sanitize(r->error, error, sizeof error);
        audit_sanitize(r->old_key_id, old_id, sizeof old_id);
        audit_sanitize(r->new_key_id, new_id, sizeof new_id);

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
        audit_sanitize(raw, buf, size);
}

static int emit_journal(const AuditRecord *r) {
        char message[MESSAGE_MAX], priority[2] = { (char) ('0' + record_priority(r)), 0 };
        Entry e = {};

        /* sd_journal_send() reports success when the socket is missing
         * ("the journal is not available"): an audit record must not
         * vanish like that. */
        if (!journal_socket_exists())
                return -ENOENT;

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
        return sd_journal_sendv(e.iov, (int) e.n);
}

/* An audit record is never dropped: when the journal refuses it, it goes
 * to stderr, and we say once why. */
static void note_journal_failure(int r) {
        if (journal_failure_noted)
                return;
        journal_failure_noted = true;
        fprintf(stderr, "%s: cannot write to the journal (%s); writing to stderr instead\n",
                program_invocation_short_name, strerror(-r));
}

void audit_emit(const AuditRecord *r) {
        int saved_errno = errno;

        if (target == AUDIT_TARGET_JOURNAL) {
                int k = emit_journal(r);
                if (k >= 0) {
                        errno = saved_errno;
                        return;
                }
                note_journal_failure(k);
        }
        emit_stderr(r);
        errno = saved_errno;
}

void log_message(int priority, const char *fmt, ...) {
        int saved_errno = errno;
        char raw[MESSAGE_MAX * 2], message[MESSAGE_MAX];
        va_list ap;

        if (priority < 0)
                priority = 0;
        if (priority > 7)
                priority = 7;
        va_start(ap, fmt);
        int n = vsnprintf(raw, sizeof raw, fmt, ap);
        va_end(ap);
        if (n < 0)
                snprintf(raw, sizeof raw, "(unformattable message)");
        else if ((size_t) n >= sizeof raw) {
                /* The cut may have shortened a secret below what
                 * audit_sanitize() recognises: drop the cut run. */
                size_t end = sizeof raw - 1;
                while (end > 0 && is_base64_char((unsigned char) raw[end - 1]))
                        end--;
                raw[end] = 0;
        }
        audit_sanitize(raw, message, sizeof message);

        if (target == AUDIT_TARGET_JOURNAL) {
                int k = journal_socket_exists() ? sd_journal_send("MESSAGE=%s", message, "PRIORITY=%i", priority,
                                                                  "SYSLOG_IDENTIFIER=%s",
                                                                  program_invocation_short_name, NULL)
                                                : -ENOENT;
                if (k >= 0) {
                        errno = saved_errno;
                        return;
                }
                note_journal_failure(k);
        }
        fprintf(stderr, "%s: %s\n", program_invocation_short_name, message);
        fflush(stderr);
        errno = saved_errno;
}

/* SPDX-License-Identifier: MIT */
/*
 * basic/log, basic/sanitize and audit_format: what a message or record
 * looks like on stderr, what %m and the return value are, where "auto"
 * sends things, and that no text can forge a line or leak a secret.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit.h"
#include "basic/log.h"
#include "basic/sanitize.h"
#include "tap.h"

#define SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" /* 40 base64 characters */
#define JOURNAL_SOCKET "/run/systemd/journal/socket"

static char *sanitized(const char *in, size_t size) {
        static char out[512];

        sanitize_text(in, out, size);
        return out;
}

static bool journald_runs(void) {
        struct stat st;

        return stat(JOURNAL_SOCKET, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* ---- stderr into a memfd ------------------------------------------------ */

static int saved_stderr = -1, capture_fd = -1;

static void capture_begin(void) {
        fflush(stderr);
        saved_stderr = dup(STDERR_FILENO);
        capture_fd = memfd_create("stderr", MFD_CLOEXEC);
        if (saved_stderr < 0 || capture_fd < 0 || dup2(capture_fd, STDERR_FILENO) < 0)
                abort();
}

/* What was written since capture_begin(); stderr is itself again. */
static char *capture_end(void) {
        static char buf[16384];
        ssize_t n;

        fflush(stderr);
        n = pread(capture_fd, buf, sizeof buf - 1, 0);
        buf[n > 0 ? n : 0] = 0;
        dup2(saved_stderr, STDERR_FILENO);
        close(saved_stderr);
        close(capture_fd);
        saved_stderr = capture_fd = -1;
        return buf;
}

/* ok(), and on failure what stderr held, as TAP diagnostics. */
static void ok_out(bool cond, const char *out, const char *name) {
        if (ok(cond, "%s", name))
                return;
        for (const char *l = out; *l;) {
                const char *e = strchrnul(l, '\n');
                diag("stderr: %.*s", (int) (e - l), l);
                l = *e ? e + 1 : e;
        }
}

/* "2026-12-07T19:30:00Z" at @s? */
static bool is_timestamp(const char *s) {
        const char *shape = "dddd-dd-ddTdd:dd:ddZ";

        for (size_t i = 0; shape[i]; i++)
                if (shape[i] == 'd' ? !isdigit((unsigned char) s[i]) : s[i] != shape[i])
                        return false;
        return true;
}

/* ---- sanitize_text() ---------------------------------------------------- */

static void test_sanitize_controls(void) {
        ok_eq_str(sanitized("plain text, ids AKIAIOSFODNN7EXAMPLE", 512), "plain text, ids AKIAIOSFODNN7EXAMPLE",
                  "plain text is kept");
        ok_eq_str(sanitized("a\nb\rc\td\x1b[31me\x01", 512), "a b c d [31me ", "C0 controls become spaces");
        ok_eq_str(sanitized("a\x7f" "b", 512), "a b", "DEL becomes a space");
        ok_eq_str(sanitized("a\xc2\x9b" "31mb", 512), "a 31mb", "U+009B (8-bit CSI) becomes a space");
        ok_eq_str(sanitized("a\xc2\x85" "b\xc2\x80\xc2\x9f", 512), "a b  ", "C1 controls (NEL, U+0080, U+009F) too");
        ok_eq_str(sanitized("\xc2\xa0\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 512), "\xc2\xa0\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80",
                  "valid UTF-8 beyond C1 is kept (NBSP, e acute, euro, emoji)");
        ok_eq_str(sanitized(NULL, 512), "", "NULL becomes the empty string");
}

static void test_sanitize_invalid_utf8(void) {
        ok_eq_str(sanitized("a\xff" "b\xfe", 512), "a?b?", "bytes never in UTF-8 become '?'");
        ok_eq_str(sanitized("a\x80" "b", 512), "a?b", "a lone continuation byte");
        ok_eq_str(sanitized("a\xc3" "b", 512), "a?b", "a lead byte without its continuation");
        ok_eq_str(sanitized("\xe2\x82", 512), "??", "a sequence cut by the end of the string");
        ok_eq_str(sanitized("\xc0\xaf", 512), "??", "overlong 2-byte '/'");
        ok_eq_str(sanitized("\xc1\xbf", 512), "??", "overlong 2-byte U+007F");
        ok_eq_str(sanitized("\xe0\x80\xaf", 512), "???", "overlong 3-byte '/'");
        ok_eq_str(sanitized("\xf0\x80\x80\xaf", 512), "????", "overlong 4-byte '/'");
        ok_eq_str(sanitized("\xc0\x8a", 512), "??", "overlong newline does not become a line break");
        ok_eq_str(sanitized("\xed\xa0\x80", 512), "???", "a UTF-16 surrogate");
        ok_eq_str(sanitized("\xf4\x90\x80\x80", 512), "????", "above U+10FFFF");
}

static void test_sanitize_truncation(void) {
        char out[16];
        size_t n;

        n = sanitize_text("ab\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac", out, 10);
        ok_eq_str(out, "ab\xe2\x82\xac...", "cut at a character boundary, marked with ...");
        ok(n == strlen(out), "the length returned is the length written");
        n = sanitize_text("0123456789abcdef", out, 8);
        ok_eq_str(out, "0123...", "ASCII is cut to the bound, NUL included");
        ok(n == 7, "length 7 of a bound of 8");
        sanitize_text("x " SECRET, out, 8);
        ok_eq_str(out, "x ...", "a redaction that does not fit is left out, not cut");
        ok(sanitize_text("abc", out, 0) == 0, "size 0 writes nothing");
        sanitize_text("abc", out, 1);
        ok_eq_str(out, "", "size 1 holds the NUL only");
}

static void test_sanitize_secrets(void) {
        char hex[65], lower[61], b39[40];

        ok_eq_str(sanitized("secret " SECRET " end", 512), "secret [redacted] end", "a secret access key is redacted");
        ok_eq_str(sanitized("k=" SECRET SECRET, 512), "k=[redacted]", "a longer run is one redaction");
        ok_eq_str(sanitized(SECRET "\n" SECRET, 512), "[redacted] [redacted]", "each run on its own");
        memset(hex, 0, sizeof hex);
        for (int i = 0; i < 64; i++)
                hex[i] = "0123456789abcdef"[(i * 7) % 16];
        ok_eq_str(sanitized(hex, 512), hex, "a hex digest (no upper case) is kept");
        for (int i = 0; i < 64; i++)
                hex[i] = (char) toupper((unsigned char) hex[i]);
        ok_eq_str(sanitized(hex, 512), hex, "an upper-case hex digest (no lower case) is kept");
        memset(lower, 'q', 60);
        lower[60] = 0;
        ok_eq_str(sanitized(lower, 512), lower, "a long word is kept");
        ok_eq_str(sanitized("/usr/local/lib/keyrotd/hooks/restart-application-service", 512),
                  "/usr/local/lib/keyrotd/hooks/restart-application-service", "a path with '-' is kept");
        ok_eq_str(sanitized("AKIAIOSFODNN7EXAMPLE 3f2a6c1e-8b5d-4e0f-9a7b-1c2d3e4f5a6b", 512),
                  "AKIAIOSFODNN7EXAMPLE 3f2a6c1e-8b5d-4e0f-9a7b-1c2d3e4f5a6b", "key and request ids are kept");
        memcpy(b39, SECRET, 39);
        b39[39] = 0;
        ok_eq_str(sanitized(b39, 512), b39, "39 characters are not yet a secret");
}

static void test_trim_cut(void) {
        char s[] = "token is " SECRET;

        s[sizeof s - 10] = 0; /* a secret cut below the length it is recognised at */
        sanitize_trim_cut(s);
        ok_eq_str(s, "token is ", "the cut run is dropped");
        char t[] = "done.";
        sanitize_trim_cut(t);
        ok_eq_str(t, "done.", "a cut after punctuation drops nothing");
}

/* ---- audit_format() ----------------------------------------------------- */

static void test_audit_format(void) {
        char buf[512], small[24];

        audit_format(&(AuditRecord) { .event = AUDIT_ROTATION_STARTED, .user = "alice", .trigger = "once" }, buf,
                     sizeof buf);
        ok_eq_str(buf, "event=rotation_started user=alice trigger=once priority=6", "empty fields are left out");

        audit_format(&(AuditRecord) { .event = AUDIT_VERIFY_FAILED,
                                      .user = "alice",
                                      .old_key_id = "AKIAOLD",
                                      .new_key_id = "AKIANEW",
                                      .result = "failed",
                                      .error = "AccessDenied",
                                      .message = "a \"quoted\" = b\\c",
                                      .failure = true },
                     buf, sizeof buf);
        ok_eq_str(buf,
                  "event=verify_failed user=alice old_key_id=AKIAOLD new_key_id=AKIANEW result=failed "
                  "error=AccessDenied priority=3 msg=\"a \\\"quoted\\\" = b\\\\c\"",
                  "quotes, '=' and backslashes are quoted and escaped; failure is priority 3");

        audit_format(&(AuditRecord) { .event = AUDIT_HOOK_RUN, .user = "ali\nce", .critical = true,
                                      .message = "out: " SECRET },
                     buf, sizeof buf);
        ok_eq_str(buf, "event=hook_run user=\"ali ce\" priority=2 msg=\"out: [redacted]\"",
                  "a newline cannot start a record; a secret is redacted; critical is priority 2");

        audit_format(&(AuditRecord) { .event = AUDIT_DRAIN, .user = "bob", .result = "warning", .priority = 4,
                                      .critical = true },
                     buf, sizeof buf);
        ok_eq_str(buf, "event=drain user=bob result=warning priority=2",
                  "a warning that is critical (the alert_after-th) is priority 2");

        audit_format(&(AuditRecord) { .event = AUDIT_POLICY_FINDING, .user = "bob", .finding = "key-unused",
                                      .priority = 4 },
                     buf, sizeof buf);
        ok_eq_str(buf, "event=audit_finding user=bob finding=key-unused priority=4", "an explicit priority wins");

        memset(small, 'x', sizeof small);
        audit_format(&(AuditRecord) { .event = AUDIT_ROTATION_COMPLETED, .user = "a-rather-long-user-name" }, small,
                     sizeof small);
        ok(memchr(small, 0, sizeof small) != NULL, "a small buffer is NUL-terminated: '%s'", small);
}

/* ---- log_internal() ----------------------------------------------------- */

static void test_log_internal(void) {
        char want[256];
        char *out;
        int r;

        /* Before log_setup(): stderr, no timestamp, the program's name. */
        capture_begin();
        errno = EBADF;
        r = log_error_errno(-ENOENT, "cannot open %s: %m", "/etc/x");
        int e = errno;
        out = capture_end();
        snprintf(want, sizeof want, "%s: cannot open /etc/x: %s\n", program_invocation_short_name, strerror(ENOENT));
        ok_eq_str(out, want, "%m prints the error given, not errno");
        ok(r == -ENOENT, "log_error_errno() returns the error, negative");
        ok(e == EBADF, "errno is left as it was");

        capture_begin();
        r = log_warning_errno(EACCES, "positive: %m");
        out = capture_end();
        ok(r == -EACCES, "a positive errno comes back negative");
        ok_out(strstr(out, strerror(EACCES)) != NULL, out, "... and %m prints it");

        capture_begin();
        r = log_full_errno(LOG_INFO, 0, "no error");
        out = capture_end();
        ok(r == 0, "no error returns 0");

        capture_begin();
        log_error("line one\nline two\x1b]0;title\x07 " SECRET);
        out = capture_end();
        snprintf(want, sizeof want, "%s: line one line two ]0;title  [redacted]\n", program_invocation_short_name);
        ok_eq_str(out, want, "a message is one sanitised line");

        log_set_max_level(LOG_NOTICE);
        capture_begin();
        log_info("not shown");
        r = log_debug_errno(-EIO, "not shown either: %m");
        log_notice("shown");
        out = capture_end();
        log_set_max_level(LOG_INFO);
        snprintf(want, sizeof want, "%s: shown\n", program_invocation_short_name);
        ok_eq_str(out, want, "messages above the max level are dropped");
        ok(r == -EIO, "a dropped message still returns its error");

        /* A message cut by the format bound must not leave the head of a
         * secret behind. Redaction shrinks the text, so the cut shows up
         * in the sanitised message when it is made of many secrets. */
        static char secrets[120 * 41 + 1], dots[3001];
        for (size_t i = 0; i < 120; i++)
                memcpy(secrets + i * 41, SECRET " ", 41);
        capture_begin();
        log_error("%s", secrets);
        out = capture_end();
        ok_out(strstr(out, "[redacted] [redacted]") && !strstr(out, "wJalrX"), out,
               "a secret cut by the format bound is dropped, not shown in part");

        memset(dots, '.', sizeof dots - 1);
        capture_begin();
        log_error("%s", dots);
        out = capture_end();
        ok(strlen(out) < 2100 && strstr(out, "...\n"), "a long message is bounded and marked (%zu bytes)", strlen(out));
}

static void test_stderr_shape(void) {
        char *out;
        int r;

        r = log_setup("keyrotd", LOG_TARGET_STDERR, LOG_STDERR_TIMESTAMP);
        ok(r == LOG_TARGET_STDERR, "stderr is stderr");
        capture_begin();
        log_info("starting: config %s", "/etc/keyrotd/inventory.yaml");
        out = capture_end();
        ok_out(is_timestamp(out) && streq(out + 20, " keyrotd: starting: config /etc/keyrotd/inventory.yaml\n"), out,
               "with LOG_STDERR_TIMESTAMP: 'TIMESTAMP keyrotd: message'");

        log_setup("keyrotctl", LOG_TARGET_STDERR, 0);
        capture_begin();
        log_error("unknown user %s", "carol");
        out = capture_end();
        ok_eq_str(out, "keyrotctl: unknown user carol\n", "without: 'keyrotctl: message'");

        /* Records: logfmt with the time first, whatever the flags. */
        capture_begin();
        audit_emit(&(AuditRecord) { .event = AUDIT_KEY_CREATED, .user = "alice", .new_key_id = "AKIANEW" });
        out = capture_end();
        ok_out(startswith(out, "time=") && is_timestamp(out + 5) &&
                       streq(out + 25, " event=key_created user=alice new_key_id=AKIANEW priority=6\n"),
               out, "a record on stderr: 'time=TIMESTAMP event=...'");
}

/* ---- target resolution -------------------------------------------------- */

static void test_targets(void) {
        char stream[64];
        struct stat st;
        int r;

        ok(log_target_from_string("auto") == LOG_TARGET_AUTO && log_target_from_string("journal") == LOG_TARGET_JOURNAL &&
                   log_target_from_string("stderr") == LOG_TARGET_STDERR,
           "the three names parse");
        ok(log_target_from_string("syslog") == _LOG_TARGET_INVALID && log_target_from_string(NULL) == _LOG_TARGET_INVALID &&
                   log_target_from_string("") == _LOG_TARGET_INVALID,
           "anything else is invalid");
        ok_eq_str(log_target_to_string(LOG_TARGET_JOURNAL), "journal", "and back");
        ok(log_target_to_string((LogTarget) 7) == NULL, "no name for an invalid target");

        log_setup("keyrotd", LOG_TARGET_STDERR, 0);
        ok(log_setup("keyrotd", (LogTarget) 7, 0) == -EINVAL && log_get_target() == LOG_TARGET_STDERR,
           "an invalid target changes nothing");

        /* AUTO looks at what stderr is: capture it, so that it is a file
         * whose device and inode we know. */
        capture_begin();
        fstat(STDERR_FILENO, &st);
        unsetenv("JOURNAL_STREAM");
        int no_stream = log_setup("keyrotd", LOG_TARGET_AUTO, 0);
        setenv("JOURNAL_STREAM", "8:1", 1);
        int other_stream = log_setup("keyrotd", LOG_TARGET_AUTO, 0);
        snprintf(stream, sizeof stream, "%llu:%llu", (unsigned long long) st.st_dev, (unsigned long long) st.st_ino);
        setenv("JOURNAL_STREAM", stream, 1);
        int our_stream = log_setup("keyrotd", LOG_TARGET_AUTO, 0);
        snprintf(stream, sizeof stream, "%llu:%llux", (unsigned long long) st.st_dev, (unsigned long long) st.st_ino);
        setenv("JOURNAL_STREAM", stream, 1);
        int bad_stream = log_setup("keyrotd", LOG_TARGET_AUTO, 0);
        setenv("JOURNAL_STREAM", "garbage", 1);
        int garbage = log_setup("keyrotd", LOG_TARGET_AUTO, 0);
        unsetenv("JOURNAL_STREAM");
        r = log_setup("keyrotd", LOG_TARGET_JOURNAL, 0);
        /* Never write to the journal from a unit test. */
        log_setup("keyrotd", LOG_TARGET_STDERR, 0);
        capture_end();

        ok(no_stream == LOG_TARGET_STDERR, "auto without $JOURNAL_STREAM: stderr");
        ok(other_stream == LOG_TARGET_STDERR, "auto with $JOURNAL_STREAM naming another file: stderr");
        ok(our_stream == (journald_runs() ? LOG_TARGET_JOURNAL : LOG_TARGET_STDERR),
           "auto with $JOURNAL_STREAM naming stderr: the journal if journald runs (%s), else stderr",
           journald_runs() ? "it does" : "it does not");
        ok(bad_stream == LOG_TARGET_STDERR && garbage == LOG_TARGET_STDERR, "a malformed $JOURNAL_STREAM is not stderr");
        ok(r == LOG_TARGET_JOURNAL, "journal is the journal");
}

/* Without a journald, --log-target journal loses nothing: stderr gets it,
 * with one note why. */
static void test_journal_fallback(void) {
        char *out, *note;

        if (journald_runs()) {
                ok(true, "journal fallback # SKIP a journald runs here; unit tests do not write to it");
                return;
        }
        capture_begin();
        log_setup("keyrotd", LOG_TARGET_JOURNAL, 0);
        log_error("first");
        log_error("second");
        audit_emit(&(AuditRecord) { .event = AUDIT_ROTATION_STARTED, .user = "alice" });
        log_setup("keyrotd", LOG_TARGET_STDERR, 0);
        out = capture_end();
        note = strstr(out, "cannot write to the journal");
        ok_out(note && !strstr(note + 1, "cannot write to the journal"), out, "one note why");
        ok_out(strstr(out, "keyrotd: first\n") && strstr(out, "keyrotd: second\n") &&
                       strstr(out, " event=rotation_started user=alice priority=6\n"),
               out, "messages and records reach stderr");
}

int main(void) {
        test_sanitize_controls();
        test_sanitize_invalid_utf8();
        test_sanitize_truncation();
        test_sanitize_secrets();
        test_trim_cut();
        test_audit_format();
        test_log_internal();
        test_stderr_shape();
        test_targets();
        test_journal_fallback();
        return tap_done();
}

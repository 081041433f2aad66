/* SPDX-License-Identifier: MIT */
/*
 * targets.c — write a key into an application's credential files (see
 * targets.h). The existing file is read into secure memory, merged there,
 * and the result handed to write_file_atomic(); no byte of a secret ever
 * passes through ordinary heap or stack buffers here.
 */
#include "targets/targets.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include "aws/names.h"
#include "basic/chase.h"
#include "basic/fileio.h"
#include "basic/ini.h"
#include "basic/json-secret.h"
#include "basic/path.h"
#include "basic/util.h"

#define DEFAULT_PROFILE "default"

static bool valid_key_id(const char *id) {
        size_t n = id ? strlen(id) : 0;

        return n >= 1 && n <= TARGET_KEY_ID_MAX && in_charset(id, ALPHANUMERICAL "_");
}

/* Characters that mean nothing special to systemd's EnvironmentFile=
 * parser (no quotes, backslashes, blanks, comment starts) nor to a shell
 * that sources the file (no $, `, ;, &, globs). */
static bool env_safe_char(char c) {
        return c != 0 && strchr(ALPHANUMERICAL "/+=._-", c);
}

static int check_secret(const Secret *secret, TargetType type) {
        if (!secret || secret->len == 0 || secret->len > TARGET_SECRET_MAX)
                return -EINVAL;
        for (size_t i = 0; i < secret->len; i++) {
                char c = secret->data[i];

                /* Printable ASCII without blanks for every format: anything
                 * else would not read back unchanged from an INI file. */
                if ((unsigned char) c <= 0x20 || (unsigned char) c >= 0x7f)
                        return -EINVAL;
                if (type == TARGET_ENV_FILE && !env_safe_char(c))
                        return -EINVAL;
        }
        return 0;
}

static int append(Secret **s, const void *p, size_t len) {
        return secret_append(s, p, len, 0);
}

static int append_str(Secret **s, const char *p) {
        return append(s, p, strlen(p));
}

/*
 * The parent directory of the target, resolved once (basic/chase.h: no
 * symlink anywhere, every directory on the way owned by someone trusted
 * and closed to everybody else): every later step (stat, read, atomic
 * write) is relative to this descriptor, so the target cannot be swapped
 * for another directory's file midway. An existing file that is merged
 * is judged through the descriptor it is then read from.
 */
typedef struct TargetFile {
        int dfd;
        int fd;           /* the existing file, open for reading; -1 if not read */
        const char *base; /* final component, inside the spec's path */
} TargetFile;

#define TARGET_FILE_NULL ((TargetFile){ .dfd = -1, .fd = -1 })

static void target_file_done(TargetFile *f) {
        if (f->dfd >= 0)
                close(f->dfd);
        if (f->fd >= 0)
                close(f->fd);
        *f = TARGET_FILE_NULL;
}

static int judge_existing(const TargetSpec *t, const struct stat *st, char **ret_error) {
        uid_t service = geteuid();

        /* The application's files are written where they are, never
         * through a link: a link could point anywhere, e.g. at a file the
         * application's user must not own. */
        if (S_ISLNK(st->st_mode)) {
                set_error(ret_error, "%s: is a symbolic link, refusing to write through it", t->path);
                return -ELOOP;
        }
        if (S_ISDIR(st->st_mode)) {
                set_error(ret_error, "%s: is a directory", t->path);
                return -EISDIR;
        }
        if (!S_ISREG(st->st_mode)) {
                set_error(ret_error, "%s: is not a regular file", t->path);
                return -EINVAL;
        }
        /* The rename replaces only this name: another hard link would go
         * on serving the old key, and the file we would read and merge
         * might be somebody else's (a link planted by the directory's
         * owner). Neither is a setup to carry on with silently. */
        if (st->st_nlink > 1) {
                set_error(ret_error, "%s: has %ju hard links, refusing to replace it", t->path,
                          (uintmax_t) st->st_nlink);
                return -EMLINK;
        }
        /* A file somebody else made (say, first, in a directory others
         * may write to) is theirs: merging our key into it would hand it
         * to them, and its other content is not the application's. */
        if (st->st_uid != 0 && st->st_uid != service && st->st_uid != t->uid) {
                if (t->uid != (uid_t) -1)
                        set_error(ret_error,
                                  "%s: the existing file is owned by uid %u, not by the target's owner (uid %u), root "
                                  "or keyrotd's user (uid %u); refusing to replace it",
                                  t->path, (unsigned) st->st_uid, (unsigned) t->uid, (unsigned) service);
                else
                        set_error(ret_error,
                                  "%s: the existing file is owned by uid %u, not by root or keyrotd's user (uid %u); "
                                  "refusing to replace it (set the target's owner if it is the application's)",
                                  t->path, (unsigned) st->st_uid, (unsigned) service);
                return -EPERM;
        }
        return 0;
}

/*
 * Resolve the target's directory and look at the file there. With @read,
 * an existing file is opened for reading, and judged (judge_existing())
 * by that descriptor; otherwise by its name.
 */
static int target_file_open(const TargetSpec *t, bool read, TargetFile *ret, char **ret_error) {
        _cleanup_free_ char *why = NULL;
        const ChaseTrust trust = chase_trust(t->uid);
        TargetFile f = TARGET_FILE_NULL;
        struct stat st;
        int r;

        r = chase_target_directory(t->path, &trust, &f.dfd, &why);
        if (r < 0) {
                set_error(ret_error, "%s: %s", t->path, why ?: strerror(-r));
                return r;
        }
        f.base = strrchr(t->path, '/') + 1; /* chase_target_directory() accepted an absolute path to a file */

        if (fstatat(f.dfd, f.base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                r = -errno;
                if (r == -ENOENT) {
                        *ret = f;
                        return 0;
                }
                set_error(ret_error, "%s: cannot stat: %s", t->path, strerror(-r));
                goto fail;
        }
        if (read && S_ISREG(st.st_mode)) {
                /* O_NONBLOCK: should a FIFO take the file's place now, the
                 * open must not hang; fstat below refuses it. */
                f.fd = openat(f.dfd, f.base, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
                if (f.fd < 0) {
                        r = -errno;
                        if (r == -ENOENT) { /* removed since we looked: start afresh */
                                *ret = f;
                                return 0;
                        }
                        if (r == -ELOOP)
                                set_error(ret_error, "%s: is a symbolic link, refusing to write through it", t->path);
                        else
                                set_error(ret_error, "%s: cannot open existing file: %s", t->path, strerror(-r));
                        goto fail;
                }
                if (fstat(f.fd, &st) < 0) {
                        r = -errno;
                        set_error(ret_error, "%s: cannot stat: %s", t->path, strerror(-r));
                        goto fail;
                }
        }
        r = judge_existing(t, &st, ret_error);
        if (r < 0)
                goto fail;
        *ret = f;
        return 0;

fail:
        target_file_done(&f);
        return r;
}

/* Read the existing file into secure memory; *ret = NULL if there is none. */
static int target_file_read(const TargetSpec *t, const TargetFile *f, Secret **ret, char **ret_error) {
        _cleanup_free_ char *err = NULL;
        Secret *s = NULL;
        int r;

        if (f->fd < 0) {
                *ret = NULL;
                return 0;
        }
        r = read_file_secure(f->fd, "", TARGET_FILE_MAX, 0, &s, &err);
        if (r < 0) {
                if (r == -E2BIG)
                        set_error(ret_error, "%s: existing file is too large (more than %u bytes)", t->path,
                                  TARGET_FILE_MAX);
                else
                        set_error(ret_error, "%s: cannot read existing file: %s", t->path, strerror(-r));
                return r;
        }
        *ret = s;
        return 0;
}

/* ------------------------------------------------------------------------
 * credentials-file
 */

static const char *const session_keys[] = { "aws_session_token", "aws_security_token", NULL };

static int build_credentials(const TargetSpec *t, const Secret *old, const char *id, const Secret *secret,
                             Secret **ret, char **ret_error) {
        const char *profile = t->profile ?: DEFAULT_PROFILE;
        const IniAssignment set[] = {
                { "aws_access_key_id", id },
                { "aws_secret_access_key", secret->data },
        };
        int r;

        /* A session token left beside a new long-term key would be sent
         * with it, and every request would fail: remove it. */
        r = ini_merge(old ? old->data : "", old ? old->len : 0, profile, set, ELEMENTSOF(set), session_keys, ret);
        if (r == -EBADMSG)
                set_error(ret_error,
                          "%s: existing file is not a valid AWS credentials file (or profile [%s] is shadowed by "
                          "[DEFAULT]); leaving it unchanged",
                          t->path, profile);
        else if (r == -EINVAL)
                set_error(ret_error, "%s: invalid profile name \"%s\"", t->path, profile);
        else if (r == -E2BIG)
                set_error(ret_error, "%s: file would become too large", t->path);
        else if (r < 0)
                set_error(ret_error, "%s: cannot merge credentials: %s", t->path, strerror(-r));
        return r;
}

/* ------------------------------------------------------------------------
 * env-file, with the syntax of systemd's EnvironmentFile= (a subset of
 * shell): KEY=VALUE assignments, VALUE optionally in single or double
 * quotes, backslash escapes, a backslash before a newline continuing the
 * line; lines starting with # or ; are comments; \n and \r both end a
 * line. Assignments always begin at the start of a line (after blanks) and
 * end at a line end, so each can be replaced as a whole.
 */

static bool env_newline(char c) {
        return c == '\n' || c == '\r';
}

static bool env_whitespace(char c) {
        return c == ' ' || c == '\t' || env_newline(c);
}

typedef enum EnvState {
        ENV_PRE_KEY,
        ENV_KEY,
        ENV_PRE_VALUE,
        ENV_VALUE,
        ENV_VALUE_ESCAPE,
        ENV_SINGLE_QUOTE,
        ENV_DOUBLE_QUOTE,
        ENV_DOUBLE_QUOTE_ESCAPE,
        ENV_COMMENT,
} EnvState;

typedef enum EnvKey {
        ENV_KEY_ACCESS_KEY_ID,
        ENV_KEY_SECRET_ACCESS_KEY,
        ENV_KEY_SESSION_TOKEN,
        ENV_KEY_SECURITY_TOKEN,
        _ENV_KEY_MAX,
        ENV_KEY_OTHER = -1,
} EnvKey;

static const char *const env_key_names[_ENV_KEY_MAX] = {
        [ENV_KEY_ACCESS_KEY_ID] = "AWS_ACCESS_KEY_ID",
        [ENV_KEY_SECRET_ACCESS_KEY] = "AWS_SECRET_ACCESS_KEY",
        [ENV_KEY_SESSION_TOKEN] = "AWS_SESSION_TOKEN",
        [ENV_KEY_SECURITY_TOKEN] = "AWS_SECURITY_TOKEN",
};

/* One assignment: bytes [start, end) of the file. */
typedef struct EnvEntry {
        size_t start;    /* start of the line the key is on */
        size_t key, key_len;
        size_t value;    /* just after the '=' */
        size_t term;     /* where the line terminator (if any) begins; end - term is 0, 1 or 2 */
        size_t end;
        EnvKey which;
} EnvEntry;

typedef struct EnvScanner {
        const char *text;
        size_t len, pos;
        EnvState state;
        /* Decoded value of the current entry, kept only for the key id. */
        char value[TARGET_KEY_ID_MAX + 1];
        size_t value_len;
        bool value_overflow;
} EnvScanner;

/* "NAME" or, as a shell would read it, "export NAME". */
static EnvKey env_classify_key(const char *k, size_t n) {
        if (n > 7 && strncmp(k, "export", 6) == 0 && (k[6] == ' ' || k[6] == '\t')) {
                k += 7;
                n -= 7;
                while (n > 0 && (*k == ' ' || *k == '\t')) {
                        k++;
                        n--;
                }
        }
        for (int i = 0; i < _ENV_KEY_MAX; i++)
                if (strlen(env_key_names[i]) == n && memcmp(k, env_key_names[i], n) == 0)
                        return (EnvKey) i;
        return ENV_KEY_OTHER;
}

static void env_value_push(EnvScanner *s, EnvEntry *e, char c) {
        if (e->which != ENV_KEY_ACCESS_KEY_ID)
                return;
        if (s->value_len >= TARGET_KEY_ID_MAX) {
                s->value_overflow = true;
                return;
        }
        s->value[s->value_len++] = c;
}

/* Include a terminator (LF, CR, or CR LF) ending at @i in the entry. */
static void env_entry_end(const EnvScanner *s, EnvEntry *e, size_t i) {
        e->term = i;
        e->end = i + 1;
        if (s->text[i] == '\r' && e->end < s->len && s->text[e->end] == '\n')
                e->end++;
}

/*
 * The next assignment: 1 with *e filled, 0 at the end of the file,
 * -EBADMSG if the file ends inside a quoted value or holds a NUL byte
 * (either would make what we append part of someone else's value).
 */
static int env_next(EnvScanner *s, EnvEntry *e) {
        size_t line_start = s->pos, key_end = 0;
        bool in_entry = false;

        s->state = ENV_PRE_KEY;
        for (size_t i = s->pos; i < s->len; i++) {
                char c = s->text[i];

                if (c == 0)
                        return -EBADMSG;
                switch (s->state) {
                case ENV_PRE_KEY:
                        if (env_newline(c))
                                line_start = i + 1;
                        else if (c == '#' || c == ';')
                                s->state = ENV_COMMENT;
                        else if (!env_whitespace(c)) {
                                *e = (EnvEntry){ .start = line_start, .key = i };
                                key_end = i + 1;
                                s->state = ENV_KEY;
                        }
                        break;
                case ENV_COMMENT:
                        if (env_newline(c)) {
                                s->state = ENV_PRE_KEY;
                                line_start = i + 1;
                        }
                        break;
                case ENV_KEY:
                        if (env_newline(c)) {
                                /* A line without '=': not an assignment. */
                                s->state = ENV_PRE_KEY;
                                line_start = i + 1;
                        } else if (c == '=') {
                                e->key_len = key_end - e->key;
                                e->value = i + 1;
                                e->which = env_classify_key(s->text + e->key, e->key_len);
                                s->value_len = 0;
                                s->value_overflow = false;
                                in_entry = true;
                                s->state = ENV_PRE_VALUE;
                        } else if (!env_whitespace(c))
                                key_end = i + 1;
                        break;
                case ENV_PRE_VALUE:
                case ENV_VALUE:
                        if (env_newline(c)) {
                                env_entry_end(s, e, i);
                                s->pos = e->end;
                                s->state = ENV_PRE_KEY;
                                return 1;
                        }
                        if (c == '\\')
                                s->state = ENV_VALUE_ESCAPE;
                        else if (s->state == ENV_PRE_VALUE && c == '\'')
                                s->state = ENV_SINGLE_QUOTE;
                        else if (s->state == ENV_PRE_VALUE && c == '"')
                                s->state = ENV_DOUBLE_QUOTE;
                        else if (s->state == ENV_VALUE || !env_whitespace(c)) {
                                env_value_push(s, e, c);
                                s->state = ENV_VALUE;
                        }
                        break;
                case ENV_VALUE_ESCAPE:
                        if (!env_newline(c))
                                env_value_push(s, e, c);
                        s->state = ENV_VALUE;
                        break;
                case ENV_SINGLE_QUOTE:
                        if (c == '\'')
                                s->state = ENV_PRE_VALUE;
                        else
                                env_value_push(s, e, c);
                        break;
                case ENV_DOUBLE_QUOTE:
                        if (c == '"')
                                s->state = ENV_PRE_VALUE;
                        else if (c == '\\')
                                s->state = ENV_DOUBLE_QUOTE_ESCAPE;
                        else
                                env_value_push(s, e, c);
                        break;
                case ENV_DOUBLE_QUOTE_ESCAPE:
                        if (c != '"' && c != '\\' && c != '`' && c != '$' && !env_newline(c))
                                env_value_push(s, e, '\\');
                        if (!env_newline(c))
                                env_value_push(s, e, c);
                        s->state = ENV_DOUBLE_QUOTE;
                        break;
                }
        }

        s->pos = s->len;
        if (s->state == ENV_SINGLE_QUOTE || s->state == ENV_DOUBLE_QUOTE || s->state == ENV_DOUBLE_QUOTE_ESCAPE)
                return -EBADMSG;
        if (!in_entry)
                return 0;
        /* The last assignment, without a final newline. */
        e->term = e->end = s->len;
        return 1;
}

/* Unquoted values end at trailing blanks, as systemd reads them. */
static void env_value_trim(EnvScanner *s) {
        while (s->value_len > 0 && env_whitespace(s->value[s->value_len - 1]))
                s->value_len--;
        s->value[s->value_len] = 0;
}

/* Does the last line (before its terminator) end in a backslash? */
static bool ends_in_backslash(const Secret *s) {
        size_t k = s->len;

        if (k > 0 && s->data[k - 1] == '\n')
                k--;
        if (k > 0 && s->data[k - 1] == '\r')
                k--;
        return k > 0 && s->data[k - 1] == '\\';
}

static int append_env_line(Secret **out, const char *name, const char *value, size_t value_len, const char *nl) {
        int r;

        r = append_str(out, name);
        if (r >= 0)
                r = append_str(out, "=");
        if (r >= 0)
                r = append(out, value, value_len);
        if (r >= 0)
                r = append_str(out, nl);
        return r;
}

static int build_env(const TargetSpec *t, const Secret *old, const char *id, const Secret *secret, Secret **ret,
                     char **ret_error) {
        _cleanup_secret_ Secret *out = NULL;
        const char *text = old ? old->data : "";
        size_t len = old ? old->len : 0, copied = 0;
        const char *nl = "\n";
        bool done[_ENV_KEY_MAX] = {};
        EnvScanner s = { .text = text, .len = len };
        EnvEntry e;
        int r;

        out = secret_new(len + strlen(id) + secret->len + 128);
        if (!out)
                return -ENOMEM;

        /* Added lines end like the file's first line does. */
        for (size_t i = 0; i < len; i++)
                if (text[i] == '\n') {
                        if (i > 0 && text[i - 1] == '\r')
                                nl = "\r\n";
                        break;
                }

        /*
         * Each assignment of ours is replaced where it stands, keeping
         * everything up to its '=' ("export " or blanks included) and its
         * line end; a repeated one is dropped, since the last assignment
         * wins and a stale one later in the file would override ours.
         * Session tokens go: they belong to temporary credentials and
         * would be sent along with the new long-term key.
         */
        while ((r = env_next(&s, &e)) > 0) {
                const char *value;
                size_t value_len;

                if (e.which == ENV_KEY_OTHER)
                        continue;
                r = append(&out, text + copied, e.start - copied);
                if (r < 0)
                        return r;
                copied = e.end;
                if (e.which == ENV_KEY_SESSION_TOKEN || e.which == ENV_KEY_SECURITY_TOKEN || done[e.which])
                        continue;
                done[e.which] = true;
                if (e.which == ENV_KEY_ACCESS_KEY_ID) {
                        value = id;
                        value_len = strlen(id);
                } else {
                        value = secret->data;
                        value_len = secret->len;
                }
                r = append(&out, text + e.start, e.value - e.start);
                if (r >= 0)
                        r = append(&out, value, value_len);
                if (r >= 0)
                        r = append(&out, text + e.term, e.end - e.term);
                if (r < 0)
                        return r;
        }
        if (r < 0) {
                set_error(ret_error,
                          "%s: existing file is not a valid environment file (NUL byte or unterminated quote); "
                          "leaving it unchanged",
                          t->path);
                return r;
        }
        r = append(&out, text + copied, len - copied);
        if (r < 0)
                return r;

        if (!done[ENV_KEY_ACCESS_KEY_ID] || !done[ENV_KEY_SECRET_ACCESS_KEY]) {
                /* Start on a fresh line. If the last line ends in a
                 * backslash, it would continue onto ours (a value, or a
                 * comment in systemd before v254): an empty line ends it. */
                if (out->len > 0 && !env_newline(out->data[out->len - 1]))
                        r = append_str(&out, nl);
                if (r >= 0 && ends_in_backslash(out))
                        r = append_str(&out, nl);
                if (r >= 0 && !done[ENV_KEY_ACCESS_KEY_ID])
                        r = append_env_line(&out, env_key_names[ENV_KEY_ACCESS_KEY_ID], id, strlen(id), nl);
                if (r >= 0 && !done[ENV_KEY_SECRET_ACCESS_KEY])
                        r = append_env_line(&out, env_key_names[ENV_KEY_SECRET_ACCESS_KEY], secret->data,
                                            secret->len, nl);
                if (r < 0)
                        return r;
        }

        if (out->len > TARGET_FILE_MAX) {
                set_error(ret_error, "%s: file would become too large", t->path);
                return -E2BIG;
        }
        *ret = TAKE_PTR(out);
        return 0;
}

static int read_env_key_id(const Secret *text, char *ret_id, size_t size) {
        EnvScanner s = { .text = text->data, .len = text->len };
        EnvEntry e;
        bool found = false;
        int r;

        /* The last assignment wins, as in systemd and the shell. */
        while ((r = env_next(&s, &e)) > 0) {
                if (e.which != ENV_KEY_ACCESS_KEY_ID)
                        continue;
                if (s.value_overflow)
                        return -EBADMSG;
                env_value_trim(&s);
                if (s.value_len + 1 > size)
                        return -ERANGE;
                memcpy(ret_id, s.value, s.value_len + 1);
                found = true;
        }
        if (r < 0)
                return r;
        return found ? 0 : -ENOENT;
}

/* ------------------------------------------------------------------------
 * json-file
 */

/* The secret stays in secure memory: this escapes straight into it. */
static int append_json_string(Secret **out, const char *p, size_t len) {
        int r;

        r = append_str(out, "\"");
        for (size_t i = 0; r >= 0 && i < len; i++) {
                unsigned char c = (unsigned char) p[i];
                char esc[7];

                if (c == '"' || c == '\\') {
                        esc[0] = '\\';
                        esc[1] = (char) c;
                        r = append(out, esc, 2);
                } else if (c < 0x20 || c == 0x7f) {
                        snprintf(esc, sizeof(esc), "\\u%04x", c);
                        r = append(out, esc, 6);
                } else
                        r = append(out, p + i, 1);
        }
        if (r >= 0)
                r = append_str(out, "\"");
        return r;
}

static int build_json(const char *id, const Secret *secret, const char *expiration, Secret **ret) {
        _cleanup_secret_ Secret *out = NULL;
        int r;

        out = secret_new(64 + strlen(id) + 2 * secret->len);
        if (!out)
                return -ENOMEM;
        r = append_str(&out, "{\"Version\":1,\"AccessKeyId\":");
        if (r >= 0)
                r = append_json_string(&out, id, strlen(id));
        if (r >= 0)
                r = append_str(&out, ",\"SecretAccessKey\":");
        if (r >= 0)
                r = append_json_string(&out, secret->data, secret->len);
        if (r >= 0 && expiration) {
                r = append_str(&out, ",\"Expiration\":");
                if (r >= 0)
                        r = append_json_string(&out, expiration, strlen(expiration));
        }
        if (r >= 0)
                r = append_str(&out, "}\n");
        if (r < 0)
                return r;
        *ret = TAKE_PTR(out);
        return 0;
}

/* The key id of credential_process's document. The secret beside it
 * is read too, into secure memory (json-secret.h), and dropped. */
static int read_json_key_id(const Secret *text, char *ret_id, size_t size) {
        JsonSecretField f[] = { { "AccessKeyId", NULL } };
        const Secret *id;
        int r;

        r = json_secret_parse(text->data, text->len, f, ELEMENTSOF(f));
        if (r < 0)
                return r;
        id = f[0].value;
        if (!id)
                r = -ENOENT;
        else if (id->len > TARGET_KEY_ID_MAX || !in_charset(id->data, ALPHANUMERICAL "_"))
                r = -EBADMSG;
        else if (id->len + 1 > size)
                r = -ERANGE;
        else
                memcpy(ret_id, id->data, id->len + 1);
        json_secret_fields_clear(f, ELEMENTSOF(f));
        return r;
}

/* ------------------------------------------------------------------------
 * The entry points
 */

static int check_spec(const TargetSpec *t) {
        if (!t || !t->path || !*t->path)
                return -EINVAL;
        if (t->type < 0 || t->type >= _TARGET_TYPE_MAX)
                return -EINVAL;
        return 0;
}

/* What target_write() and target_render() refuse before doing anything. */
static int check_input(const TargetSpec *t, const char *access_key_id, const Secret *secret, char **ret_error) {
        const char *problem;

        if (check_spec(t) < 0) {
                set_error(ret_error, "invalid target specification");
                return -EINVAL;
        }
        if (t->mode & ~(mode_t) 0777) {
                set_error(ret_error, "%s: invalid mode %04o", t->path, (unsigned) t->mode);
                return -EINVAL;
        }
        /* The inventory checked it already; this is for every other caller. */
        if (t->type == TARGET_CREDENTIALS_FILE && t->profile && (problem = aws_profile_name_problem(t->profile))) {
                set_error(ret_error, "%s: the profile name %s", t->path, problem);
                return -EINVAL;
        }
        if (!valid_key_id(access_key_id)) {
                set_error(ret_error, "%s: invalid access key id", t->path);
                return -EINVAL;
        }
        if (check_secret(secret, t->type) < 0) {
                /* Never say which character: that would leak part of it. */
                set_error(ret_error, "%s: the secret access key cannot be written safely to a %s", t->path,
                          target_type_to_string(t->type));
                return -EINVAL;
        }
        return 0;
}

/* The new content: @old (NULL for none) with the key merged in. */
static int build_content(const TargetSpec *t, const Secret *old, const char *id, const Secret *secret,
                         Secret **ret, char **ret_error) {
        int r;

        switch (t->type) {
        case TARGET_CREDENTIALS_FILE:
                r = build_credentials(t, old, id, secret, ret, ret_error);
                break;
        case TARGET_ENV_FILE:
                r = build_env(t, old, id, secret, ret, ret_error);
                break;
        case TARGET_JSON_FILE:
                r = build_json(id, secret, t->expiration, ret);
                break;
        default:
                r = -EINVAL;
        }
        if (r == -ENOMEM)
                set_error(ret_error, "%s: out of memory", t->path);
        return r;
}

int target_render(const TargetSpec *t, const char *access_key_id, const Secret *secret, Secret **ret,
                  char **ret_error) {
        int r;

        if (!ret)
                return -EINVAL;
        r = check_input(t, access_key_id, secret, ret_error);
        if (r < 0)
                return r;
        return build_content(t, NULL, access_key_id, secret, ret, ret_error);
}

/*
 * Everything target_write() does short of writing: the checks, the
 * resolution, the existing file read and judged, the new content built.
 * On success *f is open (the caller closes it) and *ret_content set.
 */
static int target_prepare(const TargetSpec *t, const char *access_key_id, const Secret *secret, TargetFile *f,
                          Secret **ret_content, char **ret_error) {
        _cleanup_secret_ Secret *old = NULL;
        int r;

        r = check_input(t, access_key_id, secret, ret_error);
        if (r < 0)
                return r;
        /* A json-file is a new document every time: nothing of the old one is kept. */
        r = target_file_open(t, t->type != TARGET_JSON_FILE, f, ret_error);
        if (r < 0)
                return r;
        r = target_file_read(t, f, &old, ret_error);
        if (r >= 0)
                r = build_content(t, old, access_key_id, secret, ret_content, ret_error);
        if (r < 0)
                target_file_done(f);
        return r;
}

int target_write(const TargetSpec *t, const char *access_key_id, const Secret *secret, char **ret_error) {
        _cleanup_secret_ Secret *content = NULL;
        TargetFile f = TARGET_FILE_NULL;
        WriteOptions o = WRITE_OPTIONS_INIT;
        int r;

        r = target_prepare(t, access_key_id, secret, &f, &content, ret_error);
        if (r < 0)
                return r;

        /*
         * Owner, group and mode are the inventory's (unset: keyrotd's own
         * user and group), never the existing file's: whoever made that
         * file would otherwise choose who reads the new secret. They are
         * applied to a new file before the first byte of the secret is
         * written, and the new file is renamed over the old name.
         */
        o.uid = t->uid;
        o.gid = t->gid;
        o.mode = t->mode == 0 ? 0600 : t->mode;
        o.refuse_symlink = true;
        o.no_replace = false;
        o.sync = true;

        r = write_file_atomic(f.dfd, f.base, content->data, content->len, &o);
        if (r == -ELOOP)
                set_error(ret_error, "%s: is a symbolic link, refusing to write through it", t->path);
        else if (r == -EISDIR)
                set_error(ret_error, "%s: is a directory", t->path);
        else if (r < 0)
                set_error(ret_error, "%s: cannot write: %s", t->path, strerror(-r));

        target_file_done(&f);
        return r;
}

int target_check_directory(const TargetSpec *t, char **ret_error) {
        _cleanup_free_ char *why = NULL, *dir = NULL;
        _cleanup_close_ int dfd = -1;
        ChaseTrust trust;
        int r;

        if (check_spec(t) < 0) {
                set_error(ret_error, "invalid target specification");
                return -EINVAL;
        }
        trust = chase_trust(t->uid);
        r = chase_target_directory(t->path, &trust, &dfd, &why);
        if (r < 0) {
                set_error(ret_error, "%s: %s", t->path, why ?: strerror(-r));
                return r;
        }
        /* The atomic write creates a temporary file in the directory and
         * renames it over the target: the directory's permissions decide,
         * for our effective ids and capabilities, not the file's. */
        if (faccessat(dfd, ".", W_OK | X_OK, AT_EACCESS) < 0) {
                r = -errno;
                dir = path_parent(t->path);
                set_error(ret_error, "%s: directory %s is not writable by keyrotd: %s", t->path, dir ?: "",
                          strerror(-r));
                return r;
        }
        return 0;
}

int target_check(const TargetSpec *t, char **ret_error) {
        /* Stand-ins of the shape IAM hands out: what matters is whether
         * the file would take a key, not which. */
        static const char dry_id[] = "AKIAKEYROTDDRYRUN000";
        static const char dry_secret[] = "keyrotd/dry+run/0000000000000000000000000";
        _cleanup_secret_ Secret *secret = NULL, *content = NULL;
        TargetFile f = TARGET_FILE_NULL;
        int r;

        r = target_check_directory(t, ret_error);
        if (r < 0)
                return r;
        secret = secret_dup(dry_secret, strlen(dry_secret));
        if (!secret)
                return -ENOMEM;
        r = target_prepare(t, dry_id, secret, &f, &content, ret_error);
        if (r < 0)
                return r;
        target_file_done(&f);
        return 0;
}

int target_read_key_id(const TargetSpec *t, char *ret_id, size_t size) {
        _cleanup_secret_ Secret *text = NULL, *value = NULL;
        TargetFile f = TARGET_FILE_NULL;
        int r;

        if (check_spec(t) < 0 || !ret_id || size == 0)
                return -EINVAL;
        r = target_file_open(t, true, &f, NULL);
        if (r < 0)
                return r;
        if (f.fd < 0) {
                target_file_done(&f);
                return -ENOENT;
        }
        r = target_file_read(t, &f, &text, NULL);
        target_file_done(&f);
        if (r < 0)
                return r;
        if (!text)
                return -ENOENT;

        switch (t->type) {
        case TARGET_CREDENTIALS_FILE:
                r = ini_get(text->data, text->len, t->profile ?: DEFAULT_PROFILE, "aws_access_key_id", &value);
                if (r < 0)
                        return r;
                if (value->len + 1 > size)
                        return -ERANGE;
                memcpy(ret_id, value->data, value->len + 1);
                return 0;
        case TARGET_ENV_FILE:
                return read_env_key_id(text, ret_id, size);
        case TARGET_JSON_FILE:
                return read_json_key_id(text, ret_id, size);
        default:
                return -EINVAL;
        }
}

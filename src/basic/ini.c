/* SPDX-License-Identifier: MIT */
/*
 * ini.c — the AWS credentials/config format, read and rewritten with
 * configparser's semantics (see ini.h). The parser is a line iterator that
 * classifies each line and reports offsets into the caller's buffer; the
 * only bytes ever copied out of that buffer go into Secrets.
 */
#include "basic/ini.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "basic/util.h"

typedef enum IniLineType {
        INI_LINE_BLANK,
        INI_LINE_COMMENT,
        INI_LINE_SECTION,
        INI_LINE_KEY,
        INI_LINE_CONTINUATION,
} IniLineType;

typedef struct IniLine {
        size_t start, end;       /* content, without the line terminator */
        size_t next;             /* where the next line starts */
        size_t term_len;         /* 0 (last line, unterminated), 1 (LF) or 2 (CRLF) */
        IniLineType type;
        size_t indent;           /* leading blanks */
        size_t name, name_len;   /* section: text between '[' and the last ']'; key: trimmed key */
        size_t value, value_len; /* key: trimmed value (empty: value points after the separator) */
} IniLine;

typedef struct IniParser {
        const char *text;
        size_t len, pos;
        bool in_section;     /* a section header has been seen */
        bool have_key;       /* a key is open, so deeper lines continue it */
        size_t indent_level; /* indentation of the last section or key line */
        uint32_t n_sections;
} IniParser;

/* Python's str.isspace() restricted to ASCII, which is what strip() and
 * the \s of configparser's regular expressions use. */
static bool is_blank(char c) {
        unsigned char u = (unsigned char) c;

        return u == ' ' || (u >= '\t' && u <= '\r') || (u >= 0x1c && u <= 0x1f);
}

static char ascii_lower(char c) {
        return c >= 'A' && c <= 'Z' ? (char) (c - 'A' + 'a') : c;
}

static int ascii_casecmp_n(const char *a, size_t a_len, const char *b, size_t b_len) {
        for (size_t i = 0; i < a_len && i < b_len; i++) {
                char x = ascii_lower(a[i]), y = ascii_lower(b[i]);

                if (x != y)
                        return (unsigned char) x < (unsigned char) y ? -1 : 1;
        }
        return a_len < b_len ? -1 : a_len > b_len ? 1 : 0;
}

/*
 * Classify the next line: 1 with *l filled, 0 at the end, -EBADMSG for a
 * malformed line. Mirrors RawConfigParser._read() with its defaults
 * (comment prefixes '#' and ';' on whole lines only, empty lines allowed
 * in values, strict duplicates) — the duplicate checks live in
 * ini_validate().
 */
static int ini_next(IniParser *p, IniLine *l) {
        const char *t = p->text, *nl;
        size_t s, e, a, b, sep, key_end, v;

        if (p->pos >= p->len)
                return 0;

        s = p->pos;
        nl = memchr(t + s, '\n', p->len - s);
        if (nl) {
                e = (size_t) (nl - t);
                l->next = e + 1;
                l->term_len = 1;
                if (e > s && t[e - 1] == '\r') {
                        e--;
                        l->term_len = 2;
                }
        } else {
                e = p->len;
                l->next = p->len;
                l->term_len = 0;
        }

        /* Python splits lines at a lone CR too; we would not see the same
         * lines, so such a file is refused rather than read differently.
         * NUL bytes have no business in a text file. */
        if (e - s > INI_LINE_MAX)
                return -EBADMSG;
        if (memchr(t + s, '\0', e - s) || memchr(t + s, '\r', e - s))
                return -EBADMSG;

        l->start = s;
        l->end = e;
        l->name = l->name_len = l->value = l->value_len = 0;
        p->pos = l->next;

        for (a = s; a < e && is_blank(t[a]); a++)
                ;
        for (b = e; b > a && is_blank(t[b - 1]); b--)
                ;
        l->indent = a - s;

        if (a == b) {
                l->type = INI_LINE_BLANK;
                return 1;
        }
        if (t[a] == '#' || t[a] == ';') {
                l->type = INI_LINE_COMMENT;
                return 1;
        }
        if (p->in_section && p->have_key && l->indent > p->indent_level) {
                l->type = INI_LINE_CONTINUATION;
                return 1;
        }

        p->indent_level = l->indent;

        /* "\[(?P<header>.+)\]" matched at the start: the greedy group runs
         * to the last ']' that leaves at least one byte of name. */
        if (t[a] == '[' && b - a >= 3) {
                const char *close = memrchr(t + a + 2, ']', b - a - 2);

                if (close) {
                        l->type = INI_LINE_SECTION;
                        l->name = a + 1;
                        l->name_len = (size_t) (close - t) - l->name;
                        p->in_section = true;
                        p->have_key = false;
                        p->n_sections++;
                        return 1;
                }
        }

        if (!p->in_section)
                return -EBADMSG; /* a key before any section header */

        for (sep = a; sep < b && t[sep] != '=' && t[sep] != ':'; sep++)
                ;
        if (sep == b)
                return -EBADMSG; /* neither section, key, comment nor blank */
        for (key_end = sep; key_end > a && is_blank(t[key_end - 1]); key_end--)
                ;
        if (key_end == a)
                return -EBADMSG; /* empty key */
        for (v = sep + 1; v < b && is_blank(t[v]); v++)
                ;

        l->type = INI_LINE_KEY;
        l->name = a;
        l->name_len = key_end - a;
        l->value = v;
        l->value_len = b - v;
        p->have_key = true;
        return 1;
}

typedef struct IniEntry {
        uint32_t is_key;
        uint32_t section; /* for keys: the section they belong to */
        uint32_t off, len;
} IniEntry;

static int entry_cmp(const void *x, const void *y, void *userdata) {
        const IniEntry *a = x, *b = y;
        const char *t = userdata;

        if (a->is_key != b->is_key)
                return a->is_key < b->is_key ? -1 : 1;
        if (!a->is_key) {
                /* Section names are case-sensitive in configparser. */
                if (a->len != b->len)
                        return a->len < b->len ? -1 : 1;
                return memcmp(t + a->off, t + b->off, a->len);
        }
        if (a->section != b->section)
                return a->section < b->section ? -1 : 1;
        return ascii_casecmp_n(t + a->off, a->len, t + b->off, b->len);
}

/*
 * Parse the whole file once and refuse it if any line is malformed or a
 * section or key (per section) appears twice. configparser refuses both
 * duplicates too; taking "the last one wins" here could make keyrotd sign
 * with a key other than the one an operator reads first, or rewrite one
 * copy of a profile while botocore keeps using the other.
 */
static int ini_validate(const char *text, size_t len) {
        _cleanup_free_ IniEntry *v = NULL;
        size_t n = 0, cap = 0;
        IniParser p = { .text = text, .len = len };
        IniLine l;
        int r;

        if (len > INI_MAX_SIZE)
                return -E2BIG;

        while ((r = ini_next(&p, &l)) > 0) {
                if (l.type != INI_LINE_SECTION && l.type != INI_LINE_KEY)
                        continue;
                if (n == cap) {
                        size_t ncap = cap ? cap * 2 : 64;
                        IniEntry *nv = reallocarray(v, ncap, sizeof(IniEntry));

                        if (!nv)
                                return -ENOMEM;
                        v = nv;
                        cap = ncap;
                }
                /* Offsets fit: the input is at most INI_MAX_SIZE bytes. */
                v[n++] = (IniEntry){
                        .is_key = l.type == INI_LINE_KEY,
                        .section = p.n_sections,
                        .off = (uint32_t) l.name,
                        .len = (uint32_t) l.name_len,
                };
        }
        if (r < 0)
                return r;

        if (n > 1) {
                qsort_r(v, n, sizeof(IniEntry), entry_cmp, (void *) text);
                for (size_t i = 1; i < n; i++)
                        if (entry_cmp(&v[i - 1], &v[i], (void *) text) == 0)
                                return -EBADMSG;
        }
        return 0;
}

static bool has_blank_or_quote(const char *s) {
        for (; *s; s++)
                if (is_blank(*s) || *s == '"' || *s == '\'' || *s == '\\')
                        return true;
        return false;
}

/* Does the header text [name, name+len) select @section? */
static bool section_matches(const char *t, const IniLine *l, const char *section, IniFlags flags) {
        const char *h = t + l->name;
        size_t n = l->name_len, slen = strlen(section), i;

        if (!(flags & INI_CONFIG_PROFILE))
                return n == slen && memcmp(h, section, n) == 0;

        /* ~/.aws/config: botocore shlex-splits "profile NAME" into exactly
         * two words; "default" is a profile without the prefix. */
        if (streq(section, "default") && n == 7 && memcmp(h, "default", 7) == 0)
                return true;
        if (n < 8 || memcmp(h, "profile", 7) != 0 || !is_blank(h[7]))
                return false;
        for (i = 8; i < n && is_blank(h[i]); i++)
                ;
        while (n > i && is_blank(h[n - 1]))
                n--;
        return n - i == slen && memcmp(h + i, section, slen) == 0;
}

static bool is_default_section(const char *t, const IniLine *l) {
        return l->name_len == 7 && memcmp(t + l->name, "DEFAULT", 7) == 0;
}

static bool key_matches(const char *t, const IniLine *l, const char *key) {
        return ascii_casecmp_n(t + l->name, l->name_len, key, strlen(key)) == 0;
}

static int check_section_arg(const char *section, IniFlags flags) {
        if (!section || !*section)
                return -EINVAL;
        if ((flags & INI_CONFIG_PROFILE) && has_blank_or_quote(section))
                return -EINVAL;
        return 0;
}

int ini_get_full(const char *text, size_t len, const char *section, IniFlags flags, const char *key,
                 Secret **ret) {
        IniParser p = { .text = text, .len = len };
        IniLine l;
        size_t n_matches = 0, found_off = 0, found_len = 0, dflt_off = 0, dflt_len = 0;
        bool in_target = false, in_default = false, found = false, found_cont = false;
        bool dflt = false, dflt_cont = false;
        enum { OPEN_OTHER, OPEN_FOUND, OPEN_DEFAULT } open = OPEN_OTHER;
        Secret *s;
        int r;

        if ((!text && len > 0) || !key || !*key || !ret)
                return -EINVAL;
        r = check_section_arg(section, flags);
        if (r < 0)
                return r;
        r = ini_validate(text, len);
        if (r < 0)
                return r;

        while ((r = ini_next(&p, &l)) > 0) {
                switch (l.type) {
                case INI_LINE_SECTION:
                        in_target = section_matches(text, &l, section, flags);
                        in_default = is_default_section(text, &l);
                        if (in_target)
                                n_matches++;
                        open = OPEN_OTHER;
                        break;
                case INI_LINE_KEY:
                        open = OPEN_OTHER;
                        if (!key_matches(text, &l, key))
                                break;
                        if (in_target) {
                                found = true;
                                found_off = l.value;
                                found_len = l.value_len;
                                open = OPEN_FOUND;
                        } else if (in_default) {
                                dflt = true;
                                dflt_off = l.value;
                                dflt_len = l.value_len;
                                open = OPEN_DEFAULT;
                        }
                        break;
                case INI_LINE_CONTINUATION:
                        if (open == OPEN_FOUND)
                                found_cont = true;
                        else if (open == OPEN_DEFAULT)
                                dflt_cont = true;
                        break;
                default:
                        break;
                }
        }
        if (r < 0)
                return r;

        if (n_matches == 0)
                return -ENOENT;
        if (n_matches > 1)
                return -EBADMSG; /* "[default]" and "[profile default]" */
        if (!found) {
                /* configparser hands [DEFAULT]'s keys to every section. */
                if (!dflt)
                        return -ENOENT;
                found_off = dflt_off;
                found_len = dflt_len;
                found_cont = dflt_cont;
        }
        /* A multi-line value is botocore's nested configuration (or a
         * broken file); it is never a credential. */
        if (found_cont)
                return -EBADMSG;

        s = secret_dup(text + found_off, found_len);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int ini_get(const char *text, size_t len, const char *section, const char *key, Secret **ret) {
        return ini_get_full(text, len, section, 0, key, ret);
}

/* Keys we write: what the AWS tools use, and nothing that could parse as
 * anything but a key (no separators, brackets, comment characters). */
static bool valid_key(const char *k) {
        if (!k || !*k)
                return false;
        for (; *k; k++)
                if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') || (*k >= '0' && *k <= '9') ||
                      *k == '_' || *k == '.' || *k == '-'))
                        return false;
        return true;
}

static bool has_control(const char *s) {
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 || *s == 0x7f)
                        return true;
        return false;
}

/* Values must read back exactly as written: no line breaks (they would
 * start a new line) and no blanks at either end (configparser strips). */
static bool valid_value(const char *v) {
        size_t n;

        if (!v || has_control(v))
                return false;
        n = strlen(v);
        return n == 0 || (!is_blank(v[0]) && !is_blank(v[n - 1]));
}

static bool valid_section_name(const char *s, IniFlags flags) {
        size_t n;

        if (check_section_arg(s, flags) < 0 || has_control(s) || strpbrk(s, "[]"))
                return false;
        n = strlen(s);
        if (is_blank(s[0]) || is_blank(s[n - 1]))
                return false;
        /* configparser's defaults section is not a profile. */
        return (flags & INI_CONFIG_PROFILE) || !streq(s, "DEFAULT");
}

static ssize_t find_assignment(const IniAssignment *set, size_t n_set, const char *t, const IniLine *l) {
        for (size_t i = 0; i < n_set; i++)
                if (key_matches(t, l, set[i].key))
                        return (ssize_t) i;
        return -1;
}

static bool in_list(const char *const *list, const char *t, const IniLine *l) {
        for (; list && *list; list++)
                if (key_matches(t, l, *list))
                        return true;
        return false;
}

/*
 * Output with each line's terminator held back until the next line starts,
 * so that a file without a final newline can be given one again or not,
 * exactly as the original had it, whatever lines were added or dropped.
 */
typedef struct Emitter {
        Secret *out;
        const char *pending; /* terminator owed before the next line */
        size_t pending_len;
        bool any_line;
        bool last_blank;
} Emitter;

static int emit_put(Emitter *e, const char *p, size_t n) {
        if (n == 0)
                return 0;
        return secret_append(&e->out, p, n, INI_MAX_SIZE);
}

static int emit_begin(Emitter *e) {
        int r = emit_put(e, e->pending, e->pending_len);

        e->pending_len = 0;
        e->any_line = true;
        return r;
}

static void emit_end(Emitter *e, const char *term, size_t term_len, bool blank) {
        e->pending = term;
        e->pending_len = term_len;
        e->last_blank = blank;
}

static int emit_new_key(Emitter *e, const char *indent, size_t indent_len, const IniAssignment *a,
                        const char *eol, size_t eol_len) {
        int r;

        r = emit_begin(e);
        if (r >= 0)
                r = emit_put(e, indent, indent_len);
        if (r >= 0)
                r = emit_put(e, a->key, strlen(a->key));
        if (r >= 0)
                r = emit_put(e, " =", 2);
        if (r >= 0 && *a->value) {
                r = emit_put(e, " ", 1);
                if (r >= 0)
                        r = emit_put(e, a->value, strlen(a->value));
        }
        emit_end(e, eol, eol_len, false);
        return r;
}

int ini_merge_full(const char *text, size_t len, const char *section, IniFlags flags,
                   const IniAssignment *set, size_t n_set, const char *const *remove_keys, Secret **ret) {
        _cleanup_free_ bool *found = NULL;
        IniParser p = { .text = text, .len = len };
        IniLine l;
        const char *eol = "\n";
        size_t eol_len = 1, n_matches = 0, anchor = SIZE_MAX, anchor_indent = 0, anchor_indent_len = 0;
        size_t key_indent = 0, key_indent_len = 0;
        bool in_target = false, in_default = false, have_eol = false, anchor_is_header = false;
        Emitter e = { .out = NULL };
        int r;

        if ((!text && len > 0) || !ret || (n_set > 0 && !set))
                return -EINVAL;
        if (!valid_section_name(section, flags))
                return -EINVAL;
        for (size_t i = 0; i < n_set; i++) {
                if (!valid_key(set[i].key) || !valid_value(set[i].value))
                        return -EINVAL;
                for (size_t j = 0; j < i; j++)
                        if (ascii_casecmp_n(set[i].key, strlen(set[i].key), set[j].key, strlen(set[j].key)) == 0)
                                return -EINVAL;
                for (const char *const *k = remove_keys; k && *k; k++)
                        if (ascii_casecmp_n(set[i].key, strlen(set[i].key), *k, strlen(*k)) == 0)
                                return -EINVAL;
        }
        for (const char *const *k = remove_keys; k && *k; k++)
                if (!valid_key(*k))
                        return -EINVAL;

        r = ini_validate(text, len);
        if (r < 0)
                return r;

        found = calloc(n_set ? n_set : 1, sizeof(bool));
        if (!found)
                return -ENOMEM;

        /* First pass: where the section is, which keys it has, where new
         * keys go (after its last key or continuation line, indented like
         * the key line in force there, so that no later line changes from
         * or to being a continuation), and the file's line ending. */
        while ((r = ini_next(&p, &l)) > 0) {
                if (!have_eol && l.term_len > 0) {
                        eol = text + l.end;
                        eol_len = l.term_len;
                        have_eol = true;
                }
                switch (l.type) {
                case INI_LINE_SECTION:
                        /* A header right after a keyless target section can
                         * be indented deeper than it: the keys we add there
                         * must be at least as deep, or it would turn into
                         * their continuation line. */
                        if (in_target && anchor_is_header && l.indent > anchor_indent_len) {
                                anchor_indent = l.start;
                                anchor_indent_len = l.indent;
                        }
                        in_target = section_matches(text, &l, section, flags);
                        in_default = is_default_section(text, &l);
                        key_indent = l.start;
                        key_indent_len = l.indent;
                        if (in_target) {
                                n_matches++;
                                anchor = l.start;
                                anchor_indent = key_indent;
                                anchor_indent_len = key_indent_len;
                                anchor_is_header = true;
                        }
                        break;
                case INI_LINE_KEY:
                        key_indent = l.start;
                        key_indent_len = l.indent;
                        if (in_target) {
                                anchor_is_header = false;
                                ssize_t i = find_assignment(set, n_set, text, &l);

                                if (i >= 0)
                                        found[i] = true;
                                anchor = l.start;
                                anchor_indent = key_indent;
                                anchor_indent_len = key_indent_len;
                        }
                        /* Removing a key that [DEFAULT] also sets would
                         * leave botocore reading the default one. */
                        if (in_default && in_list(remove_keys, text, &l))
                                return -EBADMSG;
                        break;
                case INI_LINE_CONTINUATION:
                        if (in_target) {
                                anchor = l.start;
                                anchor_is_header = false;
                        }
                        break;
                default:
                        break;
                }
        }
        if (r < 0)
                return r;
        if (n_matches > 1)
                return -EBADMSG;

        /* From here on, e.out owns the output (emit_put may replace it). */
        e.out = secret_new(len + 256);
        if (!e.out)
                return -ENOMEM;

        /* Second pass: copy, replacing values and dropping removed lines. */
        p = (IniParser){ .text = text, .len = len };
        in_target = false;
        enum { KEEP, REPLACED, DROPPED } open = KEEP;
        while ((r = ini_next(&p, &l)) > 0) {
                const char *term = l.term_len > 0 ? text + l.end : eol;
                size_t term_len = l.term_len > 0 ? l.term_len : eol_len;
                ssize_t i = -1;
                bool copy = true;

                switch (l.type) {
                case INI_LINE_SECTION:
                        in_target = section_matches(text, &l, section, flags);
                        open = KEEP;
                        break;
                case INI_LINE_KEY:
                        open = KEEP;
                        if (!in_target)
                                break;
                        i = find_assignment(set, n_set, text, &l);
                        if (i >= 0)
                                open = REPLACED;
                        else if (in_list(remove_keys, text, &l))
                                open = DROPPED;
                        copy = open == KEEP;
                        break;
                case INI_LINE_CONTINUATION:
                        /* Part of a value being replaced or removed. */
                        copy = open == KEEP;
                        break;
                default:
                        break;
                }

                if (copy) {
                        r = emit_begin(&e);
                        if (r >= 0)
                                r = emit_put(&e, text + l.start, l.end - l.start);
                        emit_end(&e, term, term_len, l.type == INI_LINE_BLANK);
                } else if (i >= 0) {
                        /* Replace the value only: key spelling, separator,
                         * spacing and trailing blanks stay as they were. */
                        size_t value_end = l.value + l.value_len;
                        const char *v = set[i].value;

                        r = emit_begin(&e);
                        if (r >= 0)
                                r = emit_put(&e, text + l.start, l.value - l.start);
                        if (r >= 0 && l.value_len == 0 && *v && !is_blank(text[l.value - 1]))
                                r = emit_put(&e, " ", 1);
                        if (r >= 0)
                                r = emit_put(&e, v, strlen(v));
                        if (r >= 0)
                                r = emit_put(&e, text + value_end, l.end - value_end);
                        emit_end(&e, term, term_len, false);
                }
                if (r < 0)
                        goto fail;

                if (l.start == anchor)
                        for (size_t j = 0; j < n_set; j++)
                                if (!found[j]) {
                                        r = emit_new_key(&e, text + anchor_indent, anchor_indent_len, &set[j], eol,
                                                         eol_len);
                                        if (r < 0)
                                                goto fail;
                                }
        }
        if (r < 0)
                goto fail;

        if (n_matches == 0 && n_set > 0) {
                if (e.any_line && !e.last_blank) {
                        r = emit_begin(&e);
                        if (r < 0)
                                goto fail;
                        emit_end(&e, eol, eol_len, true);
                }
                r = emit_begin(&e);
                if (r >= 0 && (flags & INI_CONFIG_PROFILE) && !streq(section, "default"))
                        r = emit_put(&e, "[profile ", 9);
                else if (r >= 0)
                        r = emit_put(&e, "[", 1);
                if (r >= 0)
                        r = emit_put(&e, section, strlen(section));
                if (r >= 0)
                        r = emit_put(&e, "]", 1);
                emit_end(&e, eol, eol_len, false);
                for (size_t j = 0; r >= 0 && j < n_set; j++)
                        r = emit_new_key(&e, "", 0, &set[j], eol, eol_len);
                if (r < 0)
                        goto fail;
        }

        /* The last line ends as the original's last line did: with a line
         * break, or (an unterminated last line) without one. */
        if (len == 0 || text[len - 1] == '\n') {
                r = emit_put(&e, e.pending, e.pending_len);
                if (r < 0)
                        goto fail;
        }

        *ret = e.out;
        return 0;

fail:
        secret_free(e.out);
        return r;
}

int ini_merge(const char *text, size_t len, const char *section, const IniAssignment *set, size_t n_set,
              const char *const *remove_keys, Secret **ret) {
        return ini_merge_full(text, len, section, 0, set, n_set, remove_keys, ret);
}

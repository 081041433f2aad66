/* SPDX-License-Identifier: MIT */
/*
 * inventory.c — load the YAML inventory into an Inventory.
 *
 * Three stages, each refusing what the next should never see:
 *   1. the bytes: size, NUL bytes and UTF-8 are checked here, before
 *      libyaml, so every later message can point at a line and column;
 *   2. the tree: libyaml's event API feeds a small node tree of our own,
 *      bounded in depth and node count, without anchors, aliases or tags
 *      (aliases are how a few hundred bytes become a billion nodes, and an
 *      inventory has no use for them);
 *   3. the schema: one generic mapping walker driven by a table per
 *      mapping (key, parser, offset), which reports unknown keys,
 *      duplicates, wrong types and bad values and keeps going, so an
 *      operator sees every problem in one run of --check-config.
 */
#include "inventory/inventory.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <strings.h>
#include <sys/stat.h>
#include <yaml.h>

#include "aws/endpoint.h"
#include "aws/names.h"
#include "basic/chase.h"
#include "basic/duration.h"
#include "basic/path.h"

#define NESTING_MAX 16U       /* the schema needs 6 */
#define NODES_MAX 250000U     /* 50 per user at IAM's default quota of 5000 users */
#define PROBLEMS_MAX 100U     /* report this many, then count the rest */
#define TABLE_FIELDS_MAX 16U
#define ARGV_MAX 256U
#define QUOTE_MAX 256U        /* an echoed value, escaped and shortened */
#define QUOTE_INPUT_MAX 60U
#define DURATION_FIELD_MAX (36500 * USEC_PER_DAY) /* 100 years */

/* ---- enums ---- */

static const char *const target_type_table[_TARGET_TYPE_MAX] = {
        [TARGET_CREDENTIALS_FILE] = "credentials-file",
        [TARGET_ENV_FILE] = "env-file",
        [TARGET_JSON_FILE] = "json-file",
};

static const char *const verify_check_table[_VERIFY_CHECK_MAX] = {
        [VERIFY_CHECK_LIST] = "list",
        [VERIFY_CHECK_HEAD] = "head",
        [VERIFY_CHECK_GET] = "get",
        [VERIFY_CHECK_PUT] = "put",
};

static const char *const drain_timeout_table[_DRAIN_TIMEOUT_MAX] = {
        [DRAIN_TIMEOUT_KEEP] = "keep",
        [DRAIN_TIMEOUT_DEACTIVATE] = "deactivate",
};

DEFINE_STRING_TABLE_LOOKUP(target_type, TargetType)
DEFINE_STRING_TABLE_LOOKUP(verify_check, VerifyCheck)
DEFINE_STRING_TABLE_LOOKUP(drain_timeout, DrainTimeout)

/* ---- problems ---- */

typedef struct Problem {
        unsigned line, column; /* 0 = about the whole file */
        size_t seq;            /* keeps the sort stable */
        char *text;            /* the complete line */
} Problem;

typedef struct UserRef {
        const char *name;
        size_t index;
        unsigned line, column;
} UserRef;

typedef struct TargetRef {
        size_t user, target;
        unsigned line, column;
        const char *path, *profile; /* valid only during the final check */
        TargetType type;
} TargetRef;

typedef struct Node Node;

typedef struct Ctx {
        const char *name;
        const char *text;
        size_t len;

        Problem *problems;
        size_t n_problems, n_dropped;
        bool oom;

        unsigned n_nodes;
        const Node *users; /* deferred until defaults are known */

        UserRef *user_refs;
        size_t n_user_refs;
        TargetRef *target_refs;
        size_t n_target_refs;
        size_t current_user; /* index the next parsed user will get */
} Ctx;

/* Append @item to the array @a of @n elements; false, with c->oom set,
 * when out of memory (the array is then as it was). */
#define APPEND(c, a, n, item)                                                        \
        ({                                                                          \
                __typeof__(a) _grown_ = reallocarray((a), (n) + 1, sizeof(*(a)));   \
                if (_grown_) {                                                      \
                        (a) = _grown_;                                              \
                        (a)[(n)++] = (item);                                        \
                } else                                                              \
                        (c)->oom = true;                                            \
                _grown_ != NULL;                                                    \
        })

_printf_(4, 0) static void problem_addv(Ctx *c, unsigned line, unsigned column, const char *fmt, va_list ap) {
        _cleanup_free_ char *msg = NULL;
        Problem *p;
        char *text;
        int r;

        if (c->n_problems >= PROBLEMS_MAX) {
                c->n_dropped++;
                return;
        }
        if (vasprintf(&msg, fmt, ap) < 0) {
                msg = NULL;
                c->oom = true;
                return;
        }
        if (line > 0)
                r = asprintf_safe(&text, "%s:%u:%u: %s", c->name, line, column, msg);
        else
                r = asprintf_safe(&text, "%s: %s", c->name, msg);
        if (r < 0) {
                c->oom = true;
                return;
        }
        p = reallocarray(c->problems, c->n_problems + 1, sizeof(Problem));
        if (!p) {
                free(text);
                c->oom = true;
                return;
        }
        c->problems = p;
        c->problems[c->n_problems] = (Problem) {
                .line = line,
                .column = column,
                .seq = c->n_problems,
                .text = text,
        };
        c->n_problems++;
}

_printf_(4, 5) static void problem_at(Ctx *c, unsigned line, unsigned column, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        problem_addv(c, line, column, fmt, ap);
        va_end(ap);
}

#define problem_file(c, ...) problem_at((c), 0, 0, __VA_ARGS__)

static int problem_cmp(const void *a, const void *b) {
        const Problem *x = a, *y = b;

        if (x->line != y->line)
                return x->line < y->line ? -1 : 1;
        if (x->column != y->column)
                return x->column < y->column ? -1 : 1;
        return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void ctx_done(Ctx *c) {
        for (size_t i = 0; i < c->n_problems; i++)
                free(c->problems[i].text);
        free(c->problems);
        free(c->user_refs);
        free(c->target_refs);
}

/* Hand the problems, sorted by position, to the caller's list. */
static void ctx_flush(Ctx *c, InventoryErrors *errors) {
        _cleanup_free_ char *more = NULL;
        size_t n;
        char **l;

        if (c->n_problems == 0 || !errors)
                return;
        qsort(c->problems, c->n_problems, sizeof(Problem), problem_cmp);
        if (c->n_dropped > 0 &&
            asprintf_safe(&more, "%s: %zu more problems not shown", c->name, c->n_dropped) < 0) {
                c->oom = true;
                return;
        }

        n = errors->n + c->n_problems + !!more;
        l = reallocarray(errors->lines, n + 1, sizeof(char *));
        if (!l) {
                c->oom = true;
                return;
        }
        for (size_t i = 0; i < c->n_problems; i++)
                l[errors->n + i] = TAKE_PTR(c->problems[i].text);
        if (more)
                l[n - 1] = TAKE_PTR(more);
        l[n] = NULL;
        errors->lines = l;
        errors->n = n;
}

void inventory_errors_clear(InventoryErrors *e) {
        if (!e)
                return;
        strv_free(e->lines);
        *e = (InventoryErrors) {};
}

/*
 * Echo a value from the file into a message safely: at most
 * QUOTE_INPUT_MAX bytes, control characters (C0, DEL and C1, which
 * terminals may act on) escaped, so a hostile file cannot write escape
 * sequences to an operator's terminal or the journal.
 */
static const char *quote_bytes(const char *s, size_t len, char *buf, size_t size) {
        const unsigned char *u = (const unsigned char *) s;
        size_t o = 0, i = 0;

        assert(size >= QUOTE_MAX);
        while (i < len) {
                /* Whole characters only: the text is valid UTF-8. */
                size_t w = u[i] >= 0xf0 ? 4 : u[i] >= 0xe0 ? 3 : u[i] >= 0xc0 ? 2 : 1;

                if (i + w > QUOTE_INPUT_MAX || i + w > len)
                        break;
                if (u[i] < 0x20 || u[i] == 0x7f || u[i] == '\\')
                        o += (size_t) snprintf(buf + o, size - o, "\\x%02x", u[i]);
                else if (w == 2 && u[i] == 0xc2 && u[i + 1] <= 0x9f)
                        o += (size_t) snprintf(buf + o, size - o, "\\u%04x", u[i + 1]);
                else {
                        memcpy(buf + o, u + i, w);
                        o += w;
                }
                i += w;
        }
        if (i < len)
                o += (size_t) snprintf(buf + o, size - o, "...");
        buf[o] = '\0';
        return buf;
}

/* ---- bytes ---- */

/* Line and column (1-based, counting characters like libyaml) of @offset. */
static void offset_to_mark(const char *text, size_t len, size_t offset, unsigned *line, unsigned *column) {
        const unsigned char *s = (const unsigned char *) text;
        unsigned l = 1, col = 1;

        for (size_t i = 0; i < offset && i < len; i++) {
                bool brk = false;

                if (s[i] == '\n')
                        brk = true;
                else if (s[i] == '\r')
                        brk = !(i + 1 < len && s[i + 1] == '\n');
                else if (s[i] == 0xc2 && i + 1 < len && s[i + 1] == 0x85) {
                        brk = true;
                        i++;
                } else if (s[i] == 0xe2 && i + 2 < len && s[i + 1] == 0x80 && (s[i + 2] == 0xa8 || s[i + 2] == 0xa9)) {
                        brk = true;
                        i += 2;
                }
                if (brk) {
                        l++;
                        col = 1;
                } else if ((s[i] & 0xc0) != 0x80)
                        col++;
        }
        *line = l;
        *column = col;
}

/*
 * Find the first NUL byte or invalid UTF-8 sequence (overlong forms,
 * surrogates and code points above U+10FFFF included). Returns true when
 * the text is clean; otherwise *bad is the offending offset.
 */
static bool utf8_clean(const char *text, size_t len, size_t *bad, bool *is_nul) {
        const unsigned char *s = (const unsigned char *) text;
        size_t i = 0;

        while (i < len) {
                unsigned char b = s[i];
                unsigned char lo = 0x80, hi = 0xbf;
                size_t need;

                if (b == 0) {
                        *bad = i;
                        *is_nul = true;
                        return false;
                }
                if (b < 0x80) {
                        i++;
                        continue;
                }
                if (b >= 0xc2 && b <= 0xdf)
                        need = 1;
                else if (b >= 0xe0 && b <= 0xef) {
                        need = 2;
                        if (b == 0xe0)
                                lo = 0xa0;
                        else if (b == 0xed)
                                hi = 0x9f;
                } else if (b >= 0xf0 && b <= 0xf4) {
                        need = 3;
                        if (b == 0xf0)
                                lo = 0x90;
                        else if (b == 0xf4)
                                hi = 0x8f;
                } else
                        goto invalid;

                if (need > len - i - 1)
                        goto invalid; /* truncated at the end of the text */
                if (s[i + 1] < lo || s[i + 1] > hi)
                        goto invalid;
                for (size_t k = 2; k <= need; k++)
                        if ((s[i + k] & 0xc0) != 0x80)
                                goto invalid;
                i += need + 1;
        }
        return true;

invalid:
        *bad = i;
        *is_nul = false;
        return false;
}

/* ---- tree ---- */

typedef enum NodeKind {
        NODE_SCALAR,
        NODE_SEQUENCE,
        NODE_MAPPING,
} NodeKind;

struct Node {
        NodeKind kind;
        unsigned line, column;
        bool plain;  /* an unquoted scalar */
        char *value; /* scalar text, NUL-terminated (may also contain NULs from "\0") */
        size_t len;
        Node **items; /* sequence items; mapping keys and values alternating */
        size_t n_items;
};

static Node *node_free(Node *n) {
        if (!n)
                return NULL;
        /* Recursion is bounded by NESTING_MAX. */
        for (size_t i = 0; i < n->n_items; i++)
                node_free(n->items[i]);
        free(n->items);
        free(n->value);
        free(n);
        return NULL;
}

static void node_freep(Node **n) {
        node_free(*n);
}

static const char *node_kind_name(const Node *n) {
        switch (n->kind) {
        case NODE_SEQUENCE:
                return "a list";
        case NODE_MAPPING:
                return "a mapping";
        default:
                return "a single value";
        }
}

/* YAML's null: an empty plain scalar, "~" or "null". */
static bool node_is_null(const Node *n) {
        return n->kind == NODE_SCALAR && n->plain &&
               (n->len == 0 || streq(n->value, "~") || streq(n->value, "null") ||
                streq(n->value, "Null") || streq(n->value, "NULL"));
}

#define Q(n) quote_bytes((n)->value, (n)->len, (char[QUOTE_MAX]) {}, QUOTE_MAX)
#define QS(s) quote_bytes((s), strlen(s), (char[QUOTE_MAX]) {}, QUOTE_MAX)

static const Node *mapping_get(const Node *map, const char *key) {
        if (!map || map->kind != NODE_MAPPING)
                return NULL;
        for (size_t i = 0; i + 1 < map->n_items; i += 2)
                if (map->items[i]->kind == NODE_SCALAR && streq(map->items[i]->value, key))
                        return map->items[i + 1];
        return NULL;
}

static void yaml_parser_deletep(yaml_parser_t **p) {
        if (*p)
                yaml_parser_delete(*p);
}

static void report_yaml_error(Ctx *c, const yaml_parser_t *p) {
        unsigned line, column;

        if (p->error == YAML_READER_ERROR) {
                offset_to_mark(c->text, c->len, p->problem_offset, &line, &column);
                problem_at(c, line, column, "invalid YAML: %s", p->problem ?: "unreadable input");
        } else if (p->context)
                problem_at(c, (unsigned) p->problem_mark.line + 1, (unsigned) p->problem_mark.column + 1,
                           "invalid YAML: %s (%s at %u:%u)", p->problem ?: "syntax error", p->context,
                           (unsigned) p->context_mark.line + 1, (unsigned) p->context_mark.column + 1);
        else
                problem_at(c, (unsigned) p->problem_mark.line + 1, (unsigned) p->problem_mark.column + 1,
                           "invalid YAML: %s", p->problem ?: "syntax error");
}

/* Refuse the YAML features an inventory has no use for. */
static bool check_node_event(Ctx *c, const yaml_event_t *ev, const yaml_char_t *anchor, const yaml_char_t *tag) {
        unsigned line = (unsigned) ev->start_mark.line + 1, column = (unsigned) ev->start_mark.column + 1;

        if (anchor) {
                problem_at(c, line, column, "YAML anchors (&%s) are not allowed in the inventory; write the value out",
                           QS((const char *) anchor));
                return false;
        }
        if (tag) {
                problem_at(c, line, column, "YAML tags (%s) are not allowed in the inventory", QS((const char *) tag));
                return false;
        }
        if (++c->n_nodes > NODES_MAX) {
                problem_at(c, line, column, "too many YAML nodes (more than %u)", NODES_MAX);
                return false;
        }
        return true;
}

static int node_attach(Node *parent, Node *child) {
        Node **items = reallocarray(parent->items, parent->n_items + 1, sizeof(Node *));

        if (!items)
                return -ENOMEM;
        parent->items = items;
        parent->items[parent->n_items++] = child;
        return 0;
}

/*
 * Build the node tree of the single document in the text. Returns 0 with
 * *ret (NULL for an empty stream), -EINVAL after reporting a problem, or
 * -ENOMEM.
 */
static int build_tree(Ctx *c, Node **ret) {
        yaml_parser_t parser;
        _cleanup_(yaml_parser_deletep) yaml_parser_t *p = NULL;
        _cleanup_(node_freep) Node *root = NULL;
        Node *stack[NESTING_MAX];
        unsigned depth = 0, documents = 0;
        bool done = false;

        if (!yaml_parser_initialize(&parser))
                return -ENOMEM;
        p = &parser;
        yaml_parser_set_input_string(p, (const unsigned char *) c->text, c->len);
        yaml_parser_set_encoding(p, YAML_UTF8_ENCODING);

        while (!done) {
                yaml_event_t ev;
                Node *n = NULL;
                bool push = false;
                int r = 0;

                if (!yaml_parser_parse(p, &ev)) {
                        if (p->error == YAML_MEMORY_ERROR)
                                return -ENOMEM;
                        report_yaml_error(c, p);
                        return -EINVAL;
                }

                switch (ev.type) {
                case YAML_STREAM_END_EVENT:
                        done = true;
                        break;

                case YAML_DOCUMENT_START_EVENT:
                        if (++documents > 1) {
                                problem_at(c, (unsigned) ev.start_mark.line + 1, (unsigned) ev.start_mark.column + 1,
                                           "more than one YAML document; the inventory is a single document");
                                r = -EINVAL;
                        }
                        break;

                case YAML_ALIAS_EVENT:
                        problem_at(c, (unsigned) ev.start_mark.line + 1, (unsigned) ev.start_mark.column + 1,
                                   "YAML aliases (*%s) are not allowed in the inventory; write the value out",
                                   QS((const char *) ev.data.alias.anchor));
                        r = -EINVAL;
                        break;

                case YAML_SCALAR_EVENT:
                        if (!check_node_event(c, &ev, ev.data.scalar.anchor, ev.data.scalar.tag)) {
                                r = -EINVAL;
                                break;
                        }
                        n = calloc(1, sizeof(Node));
                        if (!n) {
                                r = -ENOMEM;
                                break;
                        }
                        n->kind = NODE_SCALAR;
                        n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
                        n->len = ev.data.scalar.length;
                        n->value = malloc(n->len + 1);
                        if (!n->value) {
                                free(n);
                                n = NULL;
                                r = -ENOMEM;
                                break;
                        }
                        if (n->len > 0)
                                memcpy(n->value, ev.data.scalar.value, n->len);
                        n->value[n->len] = '\0';
                        break;

                case YAML_SEQUENCE_START_EVENT:
                case YAML_MAPPING_START_EVENT: {
                        bool seq = ev.type == YAML_SEQUENCE_START_EVENT;

                        if (!check_node_event(c, &ev, seq ? ev.data.sequence_start.anchor : ev.data.mapping_start.anchor,
                                              seq ? ev.data.sequence_start.tag : ev.data.mapping_start.tag)) {
                                r = -EINVAL;
                                break;
                        }
                        if (depth >= NESTING_MAX) {
                                problem_at(c, (unsigned) ev.start_mark.line + 1, (unsigned) ev.start_mark.column + 1,
                                           "nested deeper than %u levels", NESTING_MAX);
                                r = -EINVAL;
                                break;
                        }
                        n = calloc(1, sizeof(Node));
                        if (!n) {
                                r = -ENOMEM;
                                break;
                        }
                        n->kind = seq ? NODE_SEQUENCE : NODE_MAPPING;
                        push = true;
                        break;
                }

                case YAML_SEQUENCE_END_EVENT:
                case YAML_MAPPING_END_EVENT:
                        assert(depth > 0);
                        depth--;
                        break;

                default:
                        break;
                }

                if (n) {
                        n->line = (unsigned) ev.start_mark.line + 1;
                        n->column = (unsigned) ev.start_mark.column + 1;
                        if (depth > 0)
                                r = node_attach(stack[depth - 1], n);
                        else if (!root)
                                root = n;
                        else
                                r = -EINVAL; /* cannot happen with one document */
                        if (r < 0)
                                node_free(n);
                        else if (push)
                                stack[depth++] = n;
                }
                yaml_event_delete(&ev);
                if (r < 0)
                        return r;
        }

        *ret = TAKE_PTR(root);
        return 0;
}

/* ---- schema machinery ---- */

typedef struct Field Field;
typedef struct Table Table;

/*
 * A field parser reports its own problems and leaves *dst alone on a bad
 * value; allocation failure sets c->oom. @dst is base + f->offset.
 */
typedef void (*FieldParser)(Ctx *c, const Field *f, const Node *n, void *dst);

struct Field {
        const char *key;
        FieldParser parse;
        size_t offset;
        uint64_t min, max;  /* integer and duration bounds */
        const Table *table; /* nested mapping */
        bool required;
};

struct Table {
        const char *name; /* for messages */
        const Field *fields;
        size_t n_fields;
};

static bool looks_like_secret(const char *key) {
        static const char *const words[] = { "secret", "password", "passwd", "token", "private" };

        /* Every mapping key of the file passes here; glibc's strcasestr()
         * sets up a two-way search per call, a quarter of parsing a
         * 1,000-user inventory. The words are short: compare in place. */
        for (const char *p = key; *p; p++)
                for (size_t i = 0; i < ELEMENTSOF(words); i++) {
                        size_t j = 0;
                        while (words[i][j] && ascii_tolower(p[j]) == words[i][j])
                                j++;
                        if (!words[i][j])
                                return true;
                }
        return false;
}

/*
 * The inventory never holds a secret. Any mapping key anywhere that looks
 * like one is refused with a message saying why, rather than the plain
 * "unknown key" a typo would get: whoever wrote it meant to put key
 * material into a plain-text file that gets copied, backed up and checked
 * into version control, and keyrotd would silently ignore it there.
 */
static void scan_secrets(Ctx *c, const Node *n) {
        if (n->kind == NODE_MAPPING)
                for (size_t i = 0; i + 1 < n->n_items; i += 2) {
                        const Node *k = n->items[i];

                        if (k->kind == NODE_SCALAR && looks_like_secret(k->value))
                                problem_at(c, k->line, k->column,
                                           "'%s' looks like a secret: the inventory never holds secrets "
                                           "(keyrotd keeps key material only in its sealed store)",
                                           Q(k));
                }
        for (size_t i = 0; i < n->n_items; i++)
                scan_secrets(c, n->items[i]);
}

static void report_unknown_key(Ctx *c, const Table *t, const Node *k) {
        char allowed[512] = "";
        size_t o = 0;

        if (looks_like_secret(k->value))
                return; /* scan_secrets() said it better */

        for (size_t i = 0; i < t->n_fields && o < sizeof(allowed); i++)
                o += (size_t) snprintf(allowed + o, sizeof(allowed) - o, "%s%s", i > 0 ? ", " : "", t->fields[i].key);
        problem_at(c, k->line, k->column, "unknown key '%s' in %s (expected: %s)", Q(k), t->name, allowed);
}

/* Walk mapping @n with table @t, parsing each value into @base. */
static void walk_mapping(Ctx *c, const Table *t, const char *what, const Node *n, void *base) {
        const Node *seen[TABLE_FIELDS_MAX] = {};

        assert(t->n_fields <= TABLE_FIELDS_MAX);

        /* An empty value (say, every line below it commented out) is an empty mapping. */
        if (node_is_null(n)) {
                for (size_t j = 0; j < t->n_fields; j++)
                        if (t->fields[j].required)
                                problem_at(c, n->line, n->column, "%s has no '%s'", what, t->fields[j].key);
                return;
        }
        if (n->kind != NODE_MAPPING) {
                problem_at(c, n->line, n->column, "%s must be a mapping, not %s", what, node_kind_name(n));
                return;
        }

        for (size_t i = 0; i + 1 < n->n_items; i += 2) {
                const Node *k = n->items[i], *v = n->items[i + 1];
                size_t j;

                if (k->kind != NODE_SCALAR) {
                        problem_at(c, k->line, k->column, "keys in %s must be plain names, not %s", t->name,
                                   node_kind_name(k));
                        continue;
                }
                for (j = 0; j < t->n_fields; j++)
                        if (k->len == strlen(t->fields[j].key) && streq(k->value, t->fields[j].key))
                                break;
                if (j >= t->n_fields) {
                        report_unknown_key(c, t, k);
                        continue;
                }
                if (seen[j]) {
                        problem_at(c, k->line, k->column, "duplicate key '%s' in %s (first given at %u:%u)",
                                   t->fields[j].key, t->name, seen[j]->line, seen[j]->column);
                        continue;
                }
                seen[j] = k;
                t->fields[j].parse(c, &t->fields[j], v, (char *) base + t->fields[j].offset);
        }

        for (size_t j = 0; j < t->n_fields; j++)
                if (t->fields[j].required && !seen[j])
                        problem_at(c, n->line, n->column, "%s has no '%s'", what, t->fields[j].key);
}

/*
 * The text of a scalar usable as a string, or NULL after reporting why not:
 * a list or mapping, YAML null, or control characters (which only quoted
 * escapes can produce, since the bytes were checked before parsing).
 */
static const char *scalar_string(Ctx *c, const char *key, const Node *n) {
        if (n->kind != NODE_SCALAR) {
                problem_at(c, n->line, n->column, "%s must be a single value, not %s", key, node_kind_name(n));
                return NULL;
        }
        if (node_is_null(n)) {
                problem_at(c, n->line, n->column, "%s needs a value", key);
                return NULL;
        }
        for (size_t i = 0; i < n->len; i++) {
                unsigned char ch = (unsigned char) n->value[i];

                if (ch < 0x20 || ch == 0x7f || (ch == 0xc2 && i + 1 < n->len &&
                                                (unsigned char) n->value[i + 1] >= 0x80 &&
                                                (unsigned char) n->value[i + 1] <= 0x9f)) {
                        problem_at(c, n->line, n->column, "%s contains a control character: '%s'", key, Q(n));
                        return NULL;
                }
        }
        return n->value;
}

static bool set_string(Ctx *c, char **dst, const char *v) {
        char *s = strdup(v);

        if (!s) {
                c->oom = true;
                return false;
        }
        free(*dst);
        *dst = s;
        return true;
}

/* ---- field parsers ---- */

static void parse_version(Ctx *c, const Field *f, const Node *n, void *dst) {
        const char *v = scalar_string(c, f->key, n);

        if (v && !streq(v, "1"))
                problem_at(c, n->line, n->column, "unsupported inventory version '%s' (this keyrotd reads version 1)",
                           Q(n));
}

static void parse_duration_field(Ctx *c, const Field *f, const Node *n, void *dst) {
        const char *v = scalar_string(c, f->key, n);
        usec_t u;
        int r;

        if (!v)
                return;
        r = parse_duration(v, &u);
        if (r == -ERANGE || (r >= 0 && u > f->max))
                problem_at(c, n->line, n->column, "duration '%s' for %s is too long (at most 100 years)", Q(n), f->key);
        else if (r < 0)
                problem_at(c, n->line, n->column,
                           "invalid duration '%s' for %s (use s, m, h, d, w suffixes, e.g. 90d, 1h30m)", Q(n), f->key);
        else if (u < f->min)
                problem_at(c, n->line, n->column, "%s must be longer than 0", f->key);
        else
                *(usec_t *) dst = u;
}

static void parse_unsigned(Ctx *c, const Field *f, const Node *n, void *dst) {
        const char *v = scalar_string(c, f->key, n);
        uint64_t u = 0;

        if (!v)
                return;
        if (!n->plain || !v[0] || strlen(v) > 9 || strspn(v, "0123456789") != strlen(v))
                goto bad;
        for (const char *p = v; *p; p++)
                u = u * 10 + (uint64_t) (*p - '0');
        if (u < f->min || u > f->max)
                goto bad;
        *(unsigned *) dst = (unsigned) u;
        return;

bad:
        problem_at(c, n->line, n->column, "%s must be a whole number from %" PRIu64 " to %" PRIu64 ", not '%s'", f->key,
                   f->min, f->max, Q(n));
}

static void parse_bool(Ctx *c, const Field *f, const Node *n, void *dst) {
        const char *v = scalar_string(c, f->key, n);

        if (!v)
                return;
        if (n->plain && (streq(v, "true") || streq(v, "True") || streq(v, "TRUE")))
                *(bool *) dst = true;
        else if (n->plain && (streq(v, "false") || streq(v, "False") || streq(v, "FALSE")))
                *(bool *) dst = false;
        else
                problem_at(c, n->line, n->column, "%s must be true or false, not '%s'", f->key, Q(n));
}

static void parse_drain_timeout(Ctx *c, const Field *f, const Node *n, void *dst) {
        const char *v = scalar_string(c, f->key, n);
        DrainTimeout t;

        if (!v)
                return;
        t = drain_timeout_from_string(v);
        if (t < 0)
                problem_at(c, n->line, n->column, "%s must be keep or deactivate, not '%s'", f->key, Q(n));
        else
                *(DrainTimeout *) dst = t;
}

static void walk_mapping(Ctx *c, const Table *t, const char *where, const Node *n, void *base);
static const Table drain_table;

/*
 * drain: true (the defaults), false (off), a duration (how long to wait, as
 * drain.wait: an older form kept working), or a mapping of wait, settle
 * and on_timeout. @dst is an InventoryDrain, already holding what the user
 * inherits, so a mapping changes only what it names.
 */
static void parse_drain(Ctx *c, const Field *f, const Node *n, void *dst) {
        InventoryDrain *d = dst;
        const char *v;
        usec_t u;

        if (n->kind == NODE_MAPPING) {
                d->enabled = true;
                walk_mapping(c, &drain_table, "drain", n, d);
                return;
        }
        v = scalar_string(c, f->key, n);
        if (!v)
                return;
        if (n->plain && (streq(v, "true") || streq(v, "True") || streq(v, "TRUE")))
                d->enabled = true;
        else if (n->plain && (streq(v, "false") || streq(v, "False") || streq(v, "FALSE")))
                d->enabled = false;
        else if (parse_duration(v, &u) >= 0 && u > 0 && u <= DURATION_FIELD_MAX) {
                d->enabled = true;
                d->wait = u;
        } else
                problem_at(c, n->line, n->column,
                           "%s must be true, false, a duration (e.g. 30m) or a mapping of wait, settle and "
                           "on_timeout, not '%s'",
                           f->key, Q(n));
}

static void parse_mapping(Ctx *c, const Field *f, const Node *n, void *dst) {
        walk_mapping(c, f->table, f->table->name, n, dst);
}

static void parse_region(Ctx *c, const Field *f, const Node *n, void *dst) {
        const char *v = scalar_string(c, f->key, n);

        if (!v)
                return;
        if (strlen(v) > 64 || !(v[0] >= 'a' && v[0] <= 'z') || v[strlen(v) - 1] == '-' ||
            !in_charset(v, "abcdefghijklmnopqrstuvwxyz0123456789-"))
                problem_at(c, n->line, n->column, "invalid AWS region '%s' (e.g. us-east-1)", Q(n));
        else
                set_string(c, dst, v);
}

static void parse_endpoint_url(Ctx *c, const Field *f, const Node *n, void *dst) {
        const char *v = scalar_string(c, f->key, n), *why;

        if (!v)
                return;
        why = endpoint_url_problem(v);
        /* Never echo a value with an '@': it may hold a password. */
        if (why && strchr(v, '@'))
                problem_at(c, n->line, n->column, "%s %s", f->key, why);
        else if (why)
                problem_at(c, n->line, n->column, "%s '%s' %s", f->key, Q(n), why);
        else
                set_string(c, dst, v);
}

/*
 * A name of a kind aws/names.h defines: @problem says which rule a bad one
 * breaks. "invalid WHAT 'VALUE'[ for KEY]: it must ...".
 */
static void parse_name(Ctx *c, const Field *f, const Node *n, void *dst, const char *what, bool for_key,
                       const char *(*problem)(const char *)) {
        const char *v = scalar_string(c, f->key, n), *why;

        if (!v)
                return;
        why = problem(v);
        if (why)
                problem_at(c, n->line, n->column, "invalid %s '%s'%s%s: it %s", what, Q(n), for_key ? " for " : "",
                           for_key ? f->key : "", why);
        else
                set_string(c, dst, v);
}

static void parse_profile(Ctx *c, const Field *f, const Node *n, void *dst) {
        parse_name(c, f, n, dst, "profile name", false, aws_profile_name_problem);
}

static void parse_bucket(Ctx *c, const Field *f, const Node *n, void *dst) {
        parse_name(c, f, n, dst, "S3 bucket name", true, s3_bucket_name_problem);
}

static void parse_user_name(Ctx *c, const Field *f, const Node *n, void *dst) {
        parse_name(c, f, n, dst, "IAM user name", false, iam_user_name_problem);
}

static void parse_path(Ctx *c, const Field *f, const Node *n, void *dst) {
        const char *v = scalar_string(c, f->key, n), *why;

        if (!v)
                return;
        why = path_absolute_file_problem(v);
        if (why)
                problem_at(c, n->line, n->column, "%s '%s' %s", f->key, Q(n), why);
        else
                set_string(c, dst, v);
}

/*
 * A list of strings into a NULL-terminated strv: bucket names, argv. YAML
 * null means no list, as if the key were absent.
 */
typedef struct StrvRules {
        const char *list_of; /* "KEY must be a list of LIST_OF" */
        const char *items;   /* "KEY has more than MAX ITEMS", "ITEMS of KEY must be strings" */
        size_t max;
        const char *empty;   /* "KEY EMPTY" for an empty list; NULL: an empty list is fine */
        /* Report why item @i of @list, with text @v, is bad and return false; or return true. */
        bool (*check)(Ctx *c, const Field *f, const Node *list, size_t i, const char *v);
} StrvRules;

static void parse_strv(Ctx *c, const Field *f, const Node *n, void *dst, const StrvRules *rules) {
        _cleanup_strv_free_ char **l = NULL;
        bool ok = true;

        if (node_is_null(n))
                return;
        if (n->kind != NODE_SEQUENCE) {
                problem_at(c, n->line, n->column, "%s must be a list of %s, not %s", f->key, rules->list_of,
                           node_kind_name(n));
                return;
        }
        if (n->n_items == 0 && rules->empty) {
                problem_at(c, n->line, n->column, "%s %s", f->key, rules->empty);
                return;
        }
        if (n->n_items > rules->max) {
                problem_at(c, n->line, n->column, "%s has more than %zu %s", f->key, rules->max, rules->items);
                return;
        }
        l = calloc(n->n_items + 1, sizeof(char *));
        if (!l) {
                c->oom = true;
                return;
        }
        for (size_t i = 0; i < n->n_items; i++) {
                const Node *item = n->items[i];
                const char *v;

                if (item->kind != NODE_SCALAR) {
                        problem_at(c, item->line, item->column, "%s of %s must be strings, not %s", rules->items,
                                   f->key, node_kind_name(item));
                        ok = false;
                        continue;
                }
                v = scalar_string(c, f->key, item);
                if (!v || !rules->check(c, f, n, i, v)) {
                        ok = false;
                        continue;
                }
                /* After a bad item keep checking, but stop copying: the list must have no holes. */
                if (!ok)
                        continue;
                l[i] = strdup(v);
                if (!l[i]) {
                        c->oom = true;
                        return;
                }
        }
        if (!ok)
                return;
        strv_free(*(char ***) dst);
        *(char ***) dst = TAKE_PTR(l);
}

/* buckets: S3 bucket names, no duplicates. */
static bool check_bucket_item(Ctx *c, const Field *f, const Node *list, size_t i, const char *v) {
        const Node *b = list->items[i];
        const char *why = s3_bucket_name_problem(v);

        if (why) {
                problem_at(c, b->line, b->column, "invalid S3 bucket name '%s' in %s: it %s", Q(b), f->key, why);
                return false;
        }
        for (size_t j = 0; j < i; j++)
                if (list->items[j]->kind == NODE_SCALAR && streq(list->items[j]->value, v)) {
                        problem_at(c, b->line, b->column, "bucket '%s' listed twice in %s", Q(b), f->key);
                        return false;
                }
        return true;
}

static void parse_buckets(Ctx *c, const Field *f, const Node *n, void *dst) {
        static const StrvRules rules = {
                .list_of = "bucket names",
                .items = "entries",
                .max = 100,
                .check = check_bucket_item,
        };

        parse_strv(c, f, n, dst, &rules);
}

static bool check_has_key(VerifyCheck c) {
        return c == VERIFY_CHECK_GET || c == VERIFY_CHECK_PUT;
}

/* check: list | head | get:KEY | put:KEY; @dst is the InventoryVerify. */
static void parse_check(Ctx *c, const Field *f, const Node *n, void *dst) {
        InventoryVerify *v = dst;
        const char *s = scalar_string(c, f->key, n), *colon;
        _cleanup_free_ char *verb = NULL;
        VerifyCheck check;

        if (!s)
                return;
        colon = strchr(s, ':');
        verb = colon ? strndup(s, (size_t) (colon - s)) : strdup(s);
        if (!verb) {
                c->oom = true;
                return;
        }
        check = verify_check_from_string(verb);
        if (check < 0) {
                problem_at(c, n->line, n->column, "invalid check '%s' (expected list, head, get:KEY or put:KEY)", Q(n));
                return;
        }
        if (check_has_key(check) != !!colon || (colon && colon[1] == '\0')) {
                if (check_has_key(check))
                        problem_at(c, n->line, n->column, "check '%s' needs an object key: %s:KEY", Q(n), verb);
                else
                        problem_at(c, n->line, n->column, "check '%s' takes no object key", verb);
                return;
        }
        if (colon && strlen(colon + 1) > 1024) {
                problem_at(c, n->line, n->column, "the object key of check '%s' is longer than 1024 bytes", verb);
                return;
        }
        if (colon) {
                if (!set_string(c, &v->check_key, colon + 1))
                        return;
        } else {
                free(v->check_key);
                v->check_key = NULL;
        }
        v->check = check;
}

static void parse_target_type(Ctx *c, const Field *f, const Node *n, void *dst) {
        const char *v = scalar_string(c, f->key, n);
        TargetType t;

        if (!v)
                return;
        t = target_type_from_string(v);
        if (t < 0)
                problem_at(c, n->line, n->column,
                           "unknown target type '%s' (expected credentials-file, env-file or json-file)", Q(n));
        else
                *(TargetType *) dst = t;
}

/* Digits only, below 2^32 - 1 (which is the "unchanged" id for chown). */
static bool parse_id(const char *s, uint32_t *ret) {
        uint64_t u = 0;

        if (!s[0] || strlen(s) > 10)
                return false;
        for (const char *p = s; *p; p++) {
                if (*p < '0' || *p > '9')
                        return false;
                u = u * 10 + (uint64_t) (*p - '0');
        }
        if (u >= UINT32_MAX)
                return false;
        *ret = (uint32_t) u;
        return true;
}

static bool account_name_valid(const char *s) {
        return s[0] && s[0] != '-' && strlen(s) <= 32 && in_charset(s, ALPHANUMERICAL "._-");
}

/* Look up a user (group=false) or group name; 0, -ESRCH if unknown, -errno. */
static int lookup_account(const char *name, bool group, uint32_t *ret) {
        size_t size = 16384;

        for (;;) {
                _cleanup_free_ char *buf = malloc(size);
                struct passwd pw, *pwr = NULL;
                struct group gr, *grr = NULL;
                int r;

                if (!buf)
                        return -ENOMEM;
                if (group)
                        r = getgrnam_r(name, &gr, buf, size, &grr);
                else
                        r = getpwnam_r(name, &pw, buf, size, &pwr);
                if (r == ERANGE && size < 1024 * 1024) {
                        size *= 4;
                        continue;
                }
                if (r != 0 && r != ENOENT && r != ESRCH)
                        return -r;
                if (group ? !grr : !pwr)
                        return -ESRCH;
                *ret = group ? (uint32_t) grr->gr_gid : (uint32_t) pwr->pw_uid;
                return 0;
        }
}

static void parse_account(Ctx *c, const Field *f, const Node *n, void *dst, bool group) {
        const char *v = scalar_string(c, f->key, n);
        uint32_t id = 0;
        int r;

        if (!v)
                return;
        if (parse_id(v, &id)) {
                *(uint32_t *) dst = id;
                return;
        }
        if (!account_name_valid(v) || strspn(v, "0123456789") == strlen(v)) {
                problem_at(c, n->line, n->column, "invalid %s '%s' for %s (a name or a numeric id)",
                           group ? "group" : "user", Q(n), f->key);
                return;
        }
        r = lookup_account(v, group, &id);
        if (r == -ENOMEM)
                c->oom = true;
        else if (r == -ESRCH)
                problem_at(c, n->line, n->column, "unknown %s '%s' for %s", group ? "group" : "user", Q(n), f->key);
        else if (r < 0)
                problem_at(c, n->line, n->column, "cannot look up %s '%s': %s", group ? "group" : "user", Q(n),
                           strerror(-r));
        else
                *(uint32_t *) dst = id;
}

static void parse_owner(Ctx *c, const Field *f, const Node *n, void *dst) {
        static_assert(sizeof(uid_t) == sizeof(uint32_t), "uid_t is 32 bits");
        parse_account(c, f, n, dst, false);
}

static void parse_group(Ctx *c, const Field *f, const Node *n, void *dst) {
        static_assert(sizeof(gid_t) == sizeof(uint32_t), "gid_t is 32 bits");
        parse_account(c, f, n, dst, true);
}

/*
 * Always octal, as chmod(1) reads it, whether written "0600" or 600: YAML
 * 1.1 and 1.2 disagree on what a bare 0600 means, so the schema does not
 * leave it to YAML.
 */
static void parse_mode(Ctx *c, const Field *f, const Node *n, void *dst) {
        const char *v = scalar_string(c, f->key, n);
        unsigned m = 0;

        if (!v)
                return;
        if (!v[0] || strlen(v) > 6 || strspn(v, "01234567") != strlen(v)) {
                problem_at(c, n->line, n->column, "invalid mode '%s' (an octal mode such as \"0600\")", Q(n));
                return;
        }
        for (const char *p = v; *p; p++)
                m = m * 8 + (unsigned) (*p - '0');
        if (m > 0777) {
                problem_at(c, n->line, n->column, "mode %04o has setuid, setgid or sticky bits", m);
                return;
        }
        /* Credential files are data; an execute bit is always a mistake. */
        if (m & 0111) {
                problem_at(c, n->line, n->column, "mode %04o has execute bits; credential files are never executable", m);
                return;
        }
        /* The group may read a key (an application's group, when asked
         * for); nobody else may, and nobody but the owner may change it. */
        if (m & ~(unsigned) INVENTORY_TARGET_MODE_MAX) {
                problem_at(c, n->line, n->column,
                           "mode %04o is wider than %04o; a credential file is never writable by its group nor "
                           "readable or writable by others",
                           m, INVENTORY_TARGET_MODE_MAX);
                return;
        }
        *(mode_t *) dst = (mode_t) m;
}

/*
 * An argv list: no shell, argv[0] an absolute path (a bare name would be
 * whatever a PATH lookup finds) to a program that nobody but root and
 * keyrotd's user can change: it runs with keyrotd's privileges, root's
 * under --once. A program that does not exist (yet) is not judged here;
 * the same check runs again before every start (rotation/hook.c).
 */
static bool check_argv_item(Ctx *c, const Field *f, const Node *list, size_t i, const char *v) {
        _cleanup_free_ char *why_not = NULL;
        const Node *a = list->items[i];
        const char *why;
        int r;

        if (i > 0)
                return true;
        if (v[0] == '\0') {
                problem_at(c, a->line, a->column, "the command of %s is empty", f->key);
                return false;
        }
        why = path_absolute_file_problem(v);
        if (why) {
                problem_at(c, a->line, a->column, "command '%s' of %s %s (use the program's absolute path)", Q(a),
                           f->key, why);
                return false;
        }
        r = chase_program(v, geteuid(), &why_not);
        if (r == -ENOMEM)
                c->oom = true;
        else if (r < 0 && r != -ENOENT) {
                problem_at(c, a->line, a->column, "command '%s' of %s is refused: %s", Q(a), f->key,
                           why_not ?: strerror(-r));
                return false;
        }
        return true;
}

static void parse_argv(Ctx *c, const Field *f, const Node *n, void *dst) {
        static const StrvRules rules = {
                .list_of = "arguments (argv, run without a shell)",
                .items = "arguments",
                .max = ARGV_MAX,
                .empty = "is an empty command",
                .check = check_argv_item,
        };

        parse_strv(c, f, n, dst, &rules);
}

/* ---- tables ---- */

#define DURATION(k, type, member, lo) \
        { .key = k, .parse = parse_duration_field, .offset = offsetof(type, member), .min = (lo), .max = DURATION_FIELD_MAX }
#define UNSIGNED(k, type, member, lo, hi) \
        { .key = k, .parse = parse_unsigned, .offset = offsetof(type, member), .min = (lo), .max = (hi) }
#define FIELD(k, p, type, member) { .key = k, .parse = p, .offset = offsetof(type, member) }
#define TABLE(n, f) { .name = n, .fields = f, .n_fields = ELEMENTSOF(f) }

static const Field aws_credentials_fields[] = {
        FIELD("profile", parse_profile, InventoryAws, profile),
        FIELD("shared_file", parse_path, InventoryAws, shared_file),
};
static const Table aws_credentials_table = TABLE("aws.credentials", aws_credentials_fields);

static const Field aws_fields[] = {
        FIELD("region", parse_region, InventoryAws, region),
        FIELD("endpoint_url", parse_endpoint_url, InventoryAws, endpoint_url),
        /* Nested, but stored flat in InventoryAws: offset 0 keeps the base. */
        { .key = "credentials", .parse = parse_mapping, .offset = 0, .table = &aws_credentials_table },
};
static const Table aws_table = TABLE("aws", aws_fields);

static const Field defaults_verify_fields[] = {
        DURATION("timeout", InventoryVerify, timeout, 1),
        UNSIGNED("consecutive", InventoryVerify, consecutive, 1, 100),
        DURATION("interval", InventoryVerify, interval, 0),
        FIELD("deny_probe", parse_bool, InventoryVerify, deny_probe),
        FIELD("deny_bucket", parse_bucket, InventoryVerify, deny_bucket),
};
static const Table defaults_verify_table = TABLE("defaults.verify", defaults_verify_fields);

static const Field defaults_fields[] = {
        DURATION("max_age", InventoryDefaults, max_age, 1),
        DURATION("grace", InventoryDefaults, grace, 0),
        UNSIGNED("max_parallel", InventoryDefaults, max_parallel, 1, 256),
        DURATION("splay", InventoryDefaults, splay, 0),
        UNSIGNED("alert_after", InventoryDefaults, alert_after, 1, 1000),
        DURATION("audit_every", InventoryDefaults, audit_every, 1),
        DURATION("hook_timeout", InventoryDefaults, hook_timeout, 1),
        FIELD("drain", parse_drain, InventoryDefaults, drain),
        DURATION("credentials_ttl", InventoryDefaults, credentials_ttl, 1),
        { .key = "verify", .parse = parse_mapping, .offset = offsetof(InventoryDefaults, verify),
          .table = &defaults_verify_table },
};
static const Table defaults_table = TABLE("defaults", defaults_fields);

static const Field drain_fields[] = {
        DURATION("wait", InventoryDrain, wait, 1),
        DURATION("settle", InventoryDrain, settle, 0),
        FIELD("on_timeout", parse_drain_timeout, InventoryDrain, on_timeout),
};
static const Table drain_table = TABLE("drain", drain_fields);

static const Field store_fields[] = {
        FIELD("path", parse_path, InventoryStore, path),
        FIELD("key_file", parse_path, InventoryStore, key_file),
};
static const Table store_table = TABLE("store", store_fields);

static const Field user_verify_fields[] = {
        FIELD("bucket", parse_bucket, InventoryVerify, bucket),
        { .key = "check", .parse = parse_check, .offset = 0 },
        DURATION("timeout", InventoryVerify, timeout, 1),
        UNSIGNED("consecutive", InventoryVerify, consecutive, 1, 100),
        DURATION("interval", InventoryVerify, interval, 0),
        FIELD("deny_probe", parse_bool, InventoryVerify, deny_probe),
        FIELD("deny_bucket", parse_bucket, InventoryVerify, deny_bucket),
};
static const Table user_verify_table = TABLE("a user's verify", user_verify_fields);

static const Field target_fields[] = {
        { .key = "type", .parse = parse_target_type, .offset = offsetof(InventoryTarget, type), .required = true },
        { .key = "path", .parse = parse_path, .offset = offsetof(InventoryTarget, path), .required = true },
        FIELD("profile", parse_profile, InventoryTarget, profile),
        FIELD("owner", parse_owner, InventoryTarget, uid),
        FIELD("group", parse_group, InventoryTarget, gid),
        FIELD("mode", parse_mode, InventoryTarget, mode),
};
static const Table target_table = TABLE("a target", target_fields);

static void parse_targets(Ctx *c, const Field *f, const Node *n, void *dst);
static void parse_readers(Ctx *c, const Field *f, const Node *n, void *dst);

static const Field user_fields[] = {
        { .key = "name", .parse = parse_user_name, .offset = offsetof(InventoryUser, name), .required = true },
        DURATION("max_age", InventoryUser, max_age, 1),
        DURATION("grace", InventoryUser, grace, 0),
        DURATION("hook_timeout", InventoryUser, hook_timeout, 1),
        FIELD("drain", parse_drain, InventoryUser, drain),
        DURATION("credentials_ttl", InventoryUser, credentials_ttl, 1),
        { .key = "readers", .parse = parse_readers, .offset = 0 },
        { .key = "verify", .parse = parse_mapping, .offset = offsetof(InventoryUser, verify),
          .table = &user_verify_table },
        FIELD("buckets", parse_buckets, InventoryUser, buckets),
        { .key = "targets", .parse = parse_targets, .offset = 0 },
        FIELD("on_rotate", parse_argv, InventoryUser, on_rotate),
        FIELD("on_failure", parse_argv, InventoryUser, on_failure),
};
static const Table user_table = TABLE("a user", user_fields);

static void parse_users(Ctx *c, const Field *f, const Node *n, void *dst);

static const Field root_fields[] = {
        { .key = "version", .parse = parse_version, .offset = 0, .required = true },
        { .key = "aws", .parse = parse_mapping, .offset = offsetof(Inventory, aws), .table = &aws_table },
        { .key = "defaults", .parse = parse_mapping, .offset = offsetof(Inventory, defaults), .table = &defaults_table },
        { .key = "store", .parse = parse_mapping, .offset = offsetof(Inventory, store), .table = &store_table },
        { .key = "users", .parse = parse_users, .offset = 0 },
};
static const Table root_table = TABLE("the top level", root_fields);

/* ---- users and targets ---- */

static void target_done(InventoryTarget *t) {
        free(t->path);
        free(t->profile);
}

static void verify_done(InventoryVerify *v) {
        free(v->deny_bucket);
        free(v->bucket);
        free(v->check_key);
}

static void user_done(InventoryUser *u) {
        free(u->name);
        verify_done(&u->verify);
        for (size_t i = 0; i < u->n_targets; i++)
                target_done(&u->targets[i]);
        free(u->targets);
        strv_free(u->on_rotate);
        strv_free(u->on_failure);
        strv_free(u->buckets);
        free(u->readers);
}

#define READERS_MAX 100

/* readers: [NAME, "@GROUP", ...]: Unix users, or groups written with "@",
 * resolved now. @dst is the InventoryUser. */
static void parse_readers(Ctx *c, const Field *f, const Node *n, void *dst) {
        InventoryUser *u = dst;
        _cleanup_free_ InventoryReader *l = NULL;
        size_t k = 0;
        bool ok = true;

        if (node_is_null(n))
                return;
        if (n->kind != NODE_SEQUENCE) {
                problem_at(c, n->line, n->column, "%s must be a list of user names and @group names, not %s", f->key,
                           node_kind_name(n));
                return;
        }
        if (n->n_items > READERS_MAX) {
                problem_at(c, n->line, n->column, "%s has more than %u entries", f->key, READERS_MAX);
                return;
        }
        l = calloc(n->n_items ?: 1, sizeof *l);
        if (!l) {
                c->oom = true;
                return;
        }
        for (size_t i = 0; i < n->n_items; i++) {
                const Node *item = n->items[i];
                const char *v = item->kind == NODE_SCALAR ? scalar_string(c, f->key, item) : NULL;
                bool group = v && v[0] == '@';
                const char *name = group ? v + 1 : v;
                uint32_t id;
                int r;

                if (!name || !account_name_valid(name) || strspn(name, "0123456789") == strlen(name)) {
                        problem_at(c, item->line, item->column,
                                   "invalid reader '%s' in %s (a user name, or @ and a group name)",
                                   v ? Q(item) : "", f->key);
                        ok = false;
                        continue;
                }
                r = lookup_account(name, group, &id);
                if (r == -ENOMEM) {
                        c->oom = true;
                        return;
                }
                if (r < 0) {
                        problem_at(c, item->line, item->column, "%s %s '%s' in %s", r == -ESRCH ? "unknown" : "cannot look up",
                                   group ? "group" : "user", name, f->key);
                        ok = false;
                        continue;
                }
                l[k++] = (InventoryReader) { .group = group, .id = id };
        }
        if (!ok)
                return;
        free(u->readers);
        u->readers = TAKE_PTR(l);
        u->n_readers = k;
}

/* @dst is the InventoryUser: targets and n_targets go together. */
static void parse_targets(Ctx *c, const Field *f, const Node *n, void *dst) {
        InventoryUser *u = dst;

        if (node_is_null(n))
                return; /* every target commented out */
        if (n->kind != NODE_SEQUENCE) {
                problem_at(c, n->line, n->column, "targets must be a list, not %s", node_kind_name(n));
                return;
        }

        for (size_t i = 0; i < n->n_items; i++) {
                const Node *item = n->items[i], *path_node, *profile_node;
                InventoryTarget t = {
                        .type = _TARGET_TYPE_INVALID,
                        .uid = UID_INVALID,
                        .gid = GID_INVALID,
                        .mode = INVENTORY_DEFAULT_TARGET_MODE,
                };

                walk_mapping(c, &target_table, "a target", item, &t);

                profile_node = mapping_get(item, "profile");
                if (t.type >= 0 && t.type != TARGET_CREDENTIALS_FILE && profile_node)
                        problem_at(c, profile_node->line, profile_node->column,
                                   "profile applies only to credentials-file targets, not %s",
                                   target_type_to_string(t.type));
                if (t.type == TARGET_CREDENTIALS_FILE && !t.profile && !set_string(c, &t.profile, INVENTORY_DEFAULT_PROFILE)) {
                        target_done(&t);
                        return;
                }

                if (!APPEND(c, u->targets, u->n_targets, t)) {
                        target_done(&t);
                        return;
                }

                path_node = mapping_get(item, "path");
                if (!t.path || !path_node)
                        continue;
                if (!APPEND(c, c->target_refs, c->n_target_refs,
                            ((TargetRef) {
                                    .user = c->current_user,
                                    .target = u->n_targets - 1,
                                    .line = path_node->line,
                                    .column = path_node->column,
                            })))
                        return;
        }
}

static bool verify_copy(Ctx *c, InventoryVerify *dst, const InventoryVerify *src) {
        *dst = *src;
        dst->bucket = dst->check_key = dst->deny_bucket = NULL;
        if (src->deny_bucket && !set_string(c, &dst->deny_bucket, src->deny_bucket))
                return false;
        return true;
}

/*
 * Verification needs `consecutive` successes `interval` apart within
 * `timeout`; settings that cannot fit would fail every rotation at run
 * time, so say so now. Products cannot overflow: consecutive <= 100 and
 * interval < 100 years.
 */
static void check_verify_timing(Ctx *c, const InventoryVerify *v, const Node *at) {
        usec_t need = (usec_t) (v->consecutive - 1) * v->interval;
        char t[DURATION_STRING_MAX], i[DURATION_STRING_MAX], n[DURATION_STRING_MAX];

        if (v->timeout > need)
                return;
        problem_at(c, at->line, at->column,
                   "verify timeout %s is too short for %u consecutive checks %s apart (it must exceed %s)",
                   format_duration(v->timeout, t, sizeof(t)), v->consecutive, format_duration(v->interval, i, sizeof(i)),
                   format_duration(need, n, sizeof(n)));
}

static void parse_users(Ctx *c, const Field *f, const Node *n, void *dst) {
        /* Parsed after the whole top level, once `defaults:` is known. */
        c->users = n;
}

static void parse_users_now(Ctx *c, Inventory *inv, const Node *n) {
        if (n->kind != NODE_SEQUENCE) {
                if (!node_is_null(n))
                        problem_at(c, n->line, n->column, "users must be a list, not %s", node_kind_name(n));
                return;
        }

        for (size_t i = 0; i < n->n_items; i++) {
                const Node *item = n->items[i], *name_node;
                const InventoryDefaults *d = &inv->defaults;
                InventoryUser u = {
                        .max_age = d->max_age,
                        .grace = d->grace,
                        .hook_timeout = d->hook_timeout,
                        .drain = d->drain,
                        .credentials_ttl = d->credentials_ttl,
                };

                if (!verify_copy(c, &u.verify, &d->verify))
                        return;
                c->current_user = inv->n_users;
                walk_mapping(c, &user_table, "a user", item, &u);

                /* Only where this user changed the timing; bad defaults are reported once, there. */
                {
                        const Node *v = mapping_get(item, "verify");

                        if (mapping_get(v, "timeout") || mapping_get(v, "consecutive") || mapping_get(v, "interval"))
                                check_verify_timing(c, &u.verify, v);
                }

                /* An invalid bucket was reported already; only a missing one is news. */
                if (item->kind == NODE_MAPPING && !u.verify.bucket &&
                    !mapping_get(mapping_get(item, "verify"), "bucket")) {
                        const Node *v = mapping_get(item, "verify");

                        if (u.name)
                                problem_at(c, v ? v->line : item->line, v ? v->column : item->column,
                                           "user '%s' has no verify.bucket (the S3 bucket new keys are checked against)",
                                           QS(u.name));
                        else
                                problem_at(c, v ? v->line : item->line, v ? v->column : item->column,
                                           "a user has no verify.bucket (the S3 bucket new keys are checked against)");
                }

                if (!APPEND(c, inv->users, inv->n_users, u)) {
                        user_done(&u);
                        return;
                }

                name_node = mapping_get(item, "name");
                if (!u.name || !name_node)
                        continue;
                if (!APPEND(c, c->user_refs, c->n_user_refs,
                            ((UserRef) {
                                    .index = inv->n_users - 1,
                                    .line = name_node->line,
                                    .column = name_node->column,
                            })))
                        return;
        }
}

static int user_ref_cmp(const void *a, const void *b) {
        const UserRef *x = a, *y = b;
        int r = strcasecmp(x->name, y->name);

        if (r != 0)
                return r;
        return x->line != y->line ? (x->line < y->line ? -1 : 1) : (x->column > y->column) - (x->column < y->column);
}

/* IAM user names are unique regardless of case. */
static void check_duplicate_users(Ctx *c, const Inventory *inv) {
        if (c->n_user_refs < 2)
                return;
        for (size_t i = 0; i < c->n_user_refs; i++)
                c->user_refs[i].name = inv->users[c->user_refs[i].index].name;
        qsort(c->user_refs, c->n_user_refs, sizeof(UserRef), user_ref_cmp);

        for (size_t i = 1, first = 0; i < c->n_user_refs; i++) {
                const UserRef *a = &c->user_refs[first], *b = &c->user_refs[i];

                if (strcasecmp(a->name, b->name) != 0) {
                        first = i;
                        continue;
                }
                if (streq(a->name, b->name))
                        problem_at(c, b->line, b->column, "duplicate user '%s' (first defined at %u:%u)", QS(b->name),
                                   a->line, a->column);
                else
                        problem_at(c, b->line, b->column,
                                   "duplicate user '%s': IAM user names ignore case, and '%s' is defined at %u:%u",
                                   QS(b->name), QS(a->name), a->line, a->column);
        }
}

static int target_ref_cmp(const void *a, const void *b) {
        const TargetRef *x = a, *y = b;
        int r = strcmp(x->path, y->path);

        if (r != 0)
                return r;
        if (x->type != y->type)
                return x->type < y->type ? -1 : 1;
        r = strcmp(x->profile ?: "", y->profile ?: "");
        if (r != 0)
                return r;
        return x->line != y->line ? (x->line < y->line ? -1 : 1) : (x->column > y->column) - (x->column < y->column);
}

/*
 * Two targets writing the same file would overwrite each other's key. The
 * one exception is a shared credentials file, where each target owns one
 * profile: different profiles of one file are fine (the targets module
 * serialises writes to one path), the same profile twice is not.
 */
static void check_duplicate_targets(Ctx *c, const Inventory *inv) {
        if (c->n_target_refs < 2)
                return;
        for (size_t i = 0; i < c->n_target_refs; i++) {
                TargetRef *r = &c->target_refs[i];
                const InventoryTarget *t = &inv->users[r->user].targets[r->target];

                r->path = t->path;
                r->profile = t->profile;
                r->type = t->type;
        }
        qsort(c->target_refs, c->n_target_refs, sizeof(TargetRef), target_ref_cmp);

        for (size_t i = 1; i < c->n_target_refs; i++) {
                const TargetRef *a = &c->target_refs[i - 1], *b = &c->target_refs[i];

                if (!streq(a->path, b->path))
                        continue;
                if (a->type == TARGET_CREDENTIALS_FILE && b->type == TARGET_CREDENTIALS_FILE &&
                    !streq_ptr(a->profile, b->profile)) {
                        const InventoryTarget *x = &inv->users[a->user].targets[a->target],
                                              *y = &inv->users[b->user].targets[b->target];

                        /* Each write sets the file's owner, group and mode:
                         * two different ones would take turns. */
                        if (x->uid != y->uid || x->gid != y->gid || x->mode != y->mode)
                                problem_at(c, b->line, b->column,
                                           "'%s' is also written by the target at %u:%u, with another owner, group "
                                           "or mode; targets of one file must agree on them",
                                           QS(b->path), a->line, a->column);
                        continue;
                }
                if (a->type == TARGET_CREDENTIALS_FILE && b->type == TARGET_CREDENTIALS_FILE)
                        problem_at(c, b->line, b->column,
                                   "profile '%s' of '%s' is already written by the target at %u:%u", QS(b->profile ?: ""),
                                   QS(b->path), a->line, a->column);
                else
                        problem_at(c, b->line, b->column, "'%s' is already written by the target at %u:%u", QS(b->path),
                                   a->line, a->column);
        }
}

/* ---- loading ---- */

static int inventory_new(const char *name, Inventory **ret) {
        _cleanup_inventory_ Inventory *inv = calloc(1, sizeof(Inventory));

        if (!inv)
                return -ENOMEM;
        inv->source = strdup(name);
        inv->aws.region = strdup(INVENTORY_DEFAULT_REGION);
        inv->store.key_file = strdup(INVENTORY_DEFAULT_KEY_FILE);
        if (!inv->source || !inv->aws.region || !inv->store.key_file)
                return -ENOMEM;
        inv->defaults = (InventoryDefaults) {
                .max_parallel = INVENTORY_DEFAULT_MAX_PARALLEL,
                .splay = INVENTORY_DEFAULT_SPLAY,
                .alert_after = INVENTORY_DEFAULT_ALERT_AFTER,
                .audit_every = INVENTORY_DEFAULT_AUDIT_EVERY,
                .max_age = INVENTORY_DEFAULT_MAX_AGE,
                .grace = INVENTORY_DEFAULT_GRACE,
                .hook_timeout = INVENTORY_DEFAULT_HOOK_TIMEOUT,
                .drain = {
                        .enabled = true,
                        .wait = INVENTORY_DEFAULT_DRAIN_WAIT,
                        .settle = INVENTORY_DEFAULT_DRAIN_SETTLE,
                        .on_timeout = DRAIN_TIMEOUT_KEEP,
                },
                .credentials_ttl = INVENTORY_DEFAULT_CREDENTIALS_TTL,
                .verify = {
                        .timeout = INVENTORY_DEFAULT_VERIFY_TIMEOUT,
                        .consecutive = INVENTORY_DEFAULT_VERIFY_CONSECUTIVE,
                        .interval = INVENTORY_DEFAULT_VERIFY_INTERVAL,
                        .deny_probe = true,
                        .check = VERIFY_CHECK_LIST,
                },
        };
        *ret = TAKE_PTR(inv);
        return 0;
}

static int parse_text(Ctx *c, Inventory **ret) {
        _cleanup_inventory_ Inventory *inv = NULL;
        _cleanup_(node_freep) Node *root = NULL;
        size_t bad;
        bool is_nul;
        int r;

        if (c->len > INVENTORY_SIZE_MAX) {
                problem_file(c, "file is larger than 1 MiB; refusing it");
                return -EINVAL;
        }
        if (!utf8_clean(c->text, c->len, &bad, &is_nul)) {
                unsigned line, column;

                offset_to_mark(c->text, c->len, bad, &line, &column);
                problem_at(c, line, column, is_nul ? "file contains a NUL byte; is it binary?" : "invalid UTF-8");
                return -EINVAL;
        }

        r = build_tree(c, &root);
        if (r < 0)
                return r;
        if (!root || node_is_null(root)) {
                problem_file(c, "the inventory is empty (expected at least 'version: 1')");
                return -EINVAL;
        }

        r = inventory_new(c->name, &inv);
        if (r < 0)
                return r;

        scan_secrets(c, root);
        walk_mapping(c, &root_table, "the inventory", root, inv);
        {
                const Node *v = mapping_get(mapping_get(root, "defaults"), "verify");

                if (v)
                        check_verify_timing(c, &inv->defaults.verify, v);
        }
        if (c->users)
                parse_users_now(c, inv, c->users);
        check_duplicate_users(c, inv);
        check_duplicate_targets(c, inv);

        if (c->oom)
                return -ENOMEM;
        if (c->n_problems > 0 || c->n_dropped > 0)
                return -EINVAL;
        *ret = TAKE_PTR(inv);
        return 0;
}

int inventory_load_string(const char *name, const char *text, size_t len, Inventory **ret, InventoryErrors *errors) {
        Ctx c = {
                .name = name ?: "(inventory)",
                .text = text ?: "",
                .len = text ? len : 0,
        };
        int r;

        assert(ret);

        r = parse_text(&c, ret);
        ctx_flush(&c, errors);
        if (c.oom)
                r = -ENOMEM;
        ctx_done(&c);
        return r;
}

/*
 * Whoever can write the inventory decides which keys are rotated and which
 * commands run as root on rotation: refuse a file anyone but its owner
 * (root or us) can change.
 */
static void check_file_security(Ctx *c, const struct stat *st) {
        if (st->st_mode & (S_IWGRP | S_IWOTH))
                problem_file(c, "file is writable by %s (mode %04o); refusing it (chmod go-w)",
                             (st->st_mode & S_IWOTH) ? "everyone" : "its group", (unsigned) (st->st_mode & 07777));
        if (st->st_uid != 0 && st->st_uid != geteuid())
                problem_file(c, "file is owned by uid %u, not by root or uid %u; refusing it", (unsigned) st->st_uid,
                             (unsigned) geteuid());
}

static int read_file(Ctx *c, int fd, char **ret, size_t *ret_len) {
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, cap = 0;

        /* Read one byte past the limit so "too large" needs no fstat race. */
        for (;;) {
                ssize_t n;

                if (len == cap) {
                        size_t ncap = cap == 0 ? 16384 : cap * 2;
                        char *b;

                        if (ncap > INVENTORY_SIZE_MAX + 1)
                                ncap = INVENTORY_SIZE_MAX + 1;
                        if (ncap == cap)
                                break;
                        b = realloc(buf, ncap);
                        if (!b)
                                return -ENOMEM;
                        buf = b;
                        cap = ncap;
                }
                n = read(fd, buf + len, cap - len);
                if (n < 0) {
                        int r = -errno;

                        if (r == -EINTR)
                                continue;
                        problem_file(c, "cannot read: %s", strerror(-r));
                        return r;
                }
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

int inventory_load(const char *path, Inventory **ret, InventoryErrors *errors) {
        Ctx c = { .name = path };
        _cleanup_free_ char *buf = NULL;
        _cleanup_close_ int fd = -1;
        struct stat st;
        size_t len = 0;
        int r;

        assert(path);
        assert(ret);

        /* O_NONBLOCK: a FIFO planted at the path must not hang the daemon. */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
                r = -errno;
                problem_file(&c, "cannot open: %s", strerror(-r));
                goto finish;
        }
        if (fstat(fd, &st) < 0) {
                r = -errno;
                problem_file(&c, "cannot stat: %s", strerror(-r));
                goto finish;
        }
        if (!S_ISREG(st.st_mode)) {
                problem_file(&c, "not a regular file");
                r = -EINVAL;
                goto finish;
        }
        check_file_security(&c, &st);
        if (c.n_problems > 0) {
                r = -EINVAL;
                goto finish;
        }
        if ((uint64_t) st.st_size > INVENTORY_SIZE_MAX) {
                problem_file(&c, "file is larger than 1 MiB; refusing it");
                r = -EINVAL;
                goto finish;
        }
        r = read_file(&c, fd, &buf, &len);
        if (r < 0)
                goto finish;

        c.text = buf ?: "";
        c.len = len;
        r = parse_text(&c, ret);

finish:
        ctx_flush(&c, errors);
        if (c.oom)
                r = -ENOMEM;
        ctx_done(&c);
        return r;
}

Inventory *inventory_free(Inventory *inv) {
        if (!inv)
                return NULL;
        free(inv->source);
        free(inv->aws.region);
        free(inv->aws.endpoint_url);
        free(inv->aws.profile);
        free(inv->aws.shared_file);
        verify_done(&inv->defaults.verify);
        free(inv->store.path);
        free(inv->store.key_file);
        for (size_t i = 0; i < inv->n_users; i++)
                user_done(&inv->users[i]);
        free(inv->users);
        free(inv);
        return NULL;
}

const InventoryUser *inventory_find_user(const Inventory *inv, const char *name) {
        if (!inv || !name)
                return NULL;
        for (size_t i = 0; i < inv->n_users; i++)
                if (streq(inv->users[i].name, name))
                        return &inv->users[i];
        return NULL;
}

int inventory_store_key_path(const Inventory *inv, char **ret) {
        const char *dir = secure_getenv("CREDENTIALS_DIRECTORY");
        char *p;

        assert(ret);

        if (dir && dir[0] == '/') {
                if (asprintf_safe(&p, "%s/store.key", dir) < 0)
                        return -ENOMEM;
                if (access(p, F_OK) == 0) {
                        *ret = p;
                        return 0;
                }
                free(p);
        }
        p = strdup(inv && inv->store.key_file ? inv->store.key_file : INVENTORY_DEFAULT_KEY_FILE);
        if (!p)
                return -ENOMEM;
        *ret = p;
        return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * xml.c — one expat driver, many small tables.
 *
 * Each document is described by a schema: the root element it must have,
 * the leaf elements it reads (by their path below the root, so a field
 * planted elsewhere in a hostile document is never picked up) and where
 * each value goes, plus at most one repeated element (a list item) with
 * its own leaf table. The driver fills a zeroed scratch copy of the result;
 * the public functions check what the tables cannot say and hand the
 * result over only when everything is right.
 */
#include "aws/xml.h"

#include <errno.h>
#include <expat.h>
#include <limits.h>
#include <sodium.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>

#include "basic/util.h"

/* Longest element name we keep in a path; no AWS element comes close. */
#define XML_NAME_MAX 128U
/* Longest text of any non-secret leaf (NextContinuationToken, Arn, ...). */
#define XML_TEXT_MAX 4096U
/* Longest text of a boolean, number, timestamp or status. */
#define XML_SCALAR_MAX 64U
/* Secret access keys are 40 characters today. */
#define XML_SECRET_MAX 128U
/* IAM markers are at most 320 characters (API reference). */
#define XML_MARKER_MAX 1024U
/* S3 object keys are at most 1024 bytes of UTF-8. */
#define XML_OBJECT_KEY_MAX 1024U
/* S3 documents no bound for continuation tokens; they are short base64. */
#define XML_TOKEN_MAX XML_TEXT_MAX

/* Expat hands us "URI<sep>local" for namespaced names. '\n' cannot occur in
 * a name, and the local name is whatever follows the last separator. */
#define XML_NS_SEP "\n"

#define SIZEOF_MEMBER(t, m) sizeof(((t *) NULL)->m)

static inline void *mfree(void *p) {
        free(p);
        return NULL;
}


/* ---- timestamps ------------------------------------------------------- */

static bool parse_digits(const char **p, unsigned n, unsigned *ret) {
        unsigned v = 0;

        for (unsigned i = 0; i < n; i++) {
                char c = (*p)[i];

                if (c < '0' || c > '9')
                        return false;
                v = v * 10 + (unsigned) (c - '0');
        }
        *p += n;
        *ret = v;
        return true;
}

static bool expect_char(const char **p, char c) {
        if (**p != c)
                return false;
        (*p)++;
        return true;
}

static unsigned days_in_month(unsigned year, unsigned month) {
        static const unsigned days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
        bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

        return month == 2 && leap ? 29 : days[month - 1];
}

int xml_parse_timestamp(const char *s, time_t *ret) {
        unsigned year, month, day, hour, minute, second;
        const char *p = s;
        struct tm tm;
        time_t t;

        if (!s || !ret)
                return -EINVAL;

        if (!parse_digits(&p, 4, &year) || !expect_char(&p, '-') ||
            !parse_digits(&p, 2, &month) || !expect_char(&p, '-') ||
            !parse_digits(&p, 2, &day) || !expect_char(&p, 'T') ||
            !parse_digits(&p, 2, &hour) || !expect_char(&p, ':') ||
            !parse_digits(&p, 2, &minute) || !expect_char(&p, ':') ||
            !parse_digits(&p, 2, &second))
                return -EINVAL;

        /* Fractional seconds: moto sends microseconds, S3 milliseconds,
         * IAM none. They are dropped: keyrotd reasons in whole seconds. */
        if (*p == '.') {
                unsigned n = 0;

                p++;
                while (p[n] >= '0' && p[n] <= '9')
                        n++;
                if (n < 1 || n > 9)
                        return -EINVAL;
                p += n;
        }

        if (streq(p, "Z") || streq(p, "+00:00"))
                ;
        else
                return -EINVAL;

        if (year < 1970 || month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) ||
            hour > 23 || minute > 59 || second > 59)
                return -EINVAL;

        tm = (struct tm) {
                .tm_year = (int) year - 1900,
                .tm_mon = (int) month - 1,
                .tm_mday = (int) day,
                .tm_hour = (int) hour,
                .tm_min = (int) minute,
                .tm_sec = (int) second,
        };
        t = timegm(&tm);
        if (t == (time_t) -1)
                return -EINVAL;
        *ret = t;
        return 0;
}

/* ---- schemas ---------------------------------------------------------- */

typedef enum FieldKind {
        FIELD_STRING,          /* char[size]; longer text is refused */
        FIELD_STRING_TRUNCATE, /* char[size]; longer text is cut at a UTF-8 boundary */
        FIELD_STRDUP,          /* char *, at most size - 1 bytes */
        FIELD_BOOL,            /* bool: "true" or "false" */
        FIELD_UINT,            /* unsigned: decimal */
        FIELD_TIMESTAMP,       /* time_t: xml_parse_timestamp() */
        FIELD_KEY_STATUS,      /* KeyStatus: "Active" or "Inactive" */
        FIELD_SECRET,          /* Secret *, at most size bytes */
} FieldKind;

typedef struct XmlField {
        /* Path below the root (or below the list item), '/'-separated local
         * names. "#" stands for the IAM result element: "<Action>Result"
         * in the document "<Action>Response". No XML name contains '#'. */
        const char *path;
        FieldKind kind;
        size_t offset;
        size_t size;
        /* Present and non-empty. Fields sharing a destination satisfy one
         * another: alternative paths to the same value. */
        bool required;
        /* FIELD_STRING: the bytes allowed, or NULL for any. */
        const char *charset;
} XmlField;

/*
 * Key ids and user names end up in credential files, environment
 * variables of hooks, journal fields and request parameters: a newline
 * or '=' smuggled into one could forge a line or a variable there. AWS
 * documents their alphabets ([\w]+ and [\w+=,.@-]+); hold them to it.
 */
#define CHARSET_WORD ALPHANUMERICAL "_"
#define CHARSET_USER_NAME IAM_NAME_CHARSET

typedef struct XmlSchema {
        const char *root; /* NULL: the caller names the root */
        const XmlField *fields;
        size_t n_fields;
        const char *item_path; /* the repeated element, or NULL */
        const XmlField *item_fields;
        size_t n_item_fields;
        size_t item_size;
} XmlSchema;

#define F_STRING(p, t, m, req) { p, FIELD_STRING, offsetof(t, m), SIZEOF_MEMBER(t, m), req, NULL }
#define F_WORD(p, t, m, cs, req) { p, FIELD_STRING, offsetof(t, m), SIZEOF_MEMBER(t, m), req, cs }
#define F_TRUNCATE(p, t, m) { p, FIELD_STRING_TRUNCATE, offsetof(t, m), SIZEOF_MEMBER(t, m), false }
#define F_STRDUP(p, t, m, max, req) { p, FIELD_STRDUP, offsetof(t, m), (max) + 1, req }
#define F_SCALAR(p, k, t, m, req) { p, k, offsetof(t, m), SIZEOF_MEMBER(t, m), req }
#define F_SECRET(p, t, m, max, req) { p, FIELD_SECRET, offsetof(t, m), max, req }

#define SCHEMA_FIELDS(f) .fields = (f), .n_fields = ELEMENTSOF(f)
#define SCHEMA_ITEMS(p, f, sz) .item_path = (p), .item_fields = (f), .n_item_fields = ELEMENTSOF(f), .item_size = (sz)

/* ---- secure memory for expat ------------------------------------------ */

/*
 * expat copies the document into its own buffer and decodes character
 * references into others. For CreateAccessKey those buffers hold the new
 * secret, so they must come from guarded, mlock'd memory that is wiped on
 * release, like every Secret. secure_alloc (secret.h) records the size, so realloc is
 * allocate-copy-free (or nothing, when the block is already big enough).
 */
static void *xml_secure_malloc(size_t n) {
        return secure_alloc(n);
}

static void xml_secure_free(void *p) {
        secure_free(p);
}

static void *xml_secure_realloc(void *p, size_t n) {
        void *q;

        if (!p)
                return secure_alloc(n);
        if (n <= secure_size(p))
                return p;
        q = secure_alloc(n);
        if (!q)
                return NULL;
        memcpy(q, p, secure_size(p));
        secure_free(p);
        return q;
}

static const XML_Memory_Handling_Suite secure_memory_suite = {
        .malloc_fcn = xml_secure_malloc,
        .realloc_fcn = xml_secure_realloc,
        .free_fcn = xml_secure_free,
};

static unsigned long process_hash_salt(void) {
        static unsigned long salt;

        while (salt == 0)
                randombytes_buf(&salt, sizeof salt);
        return salt;
}

static inline void xml_parser_freep(XML_Parser *p) {
        if (*p)
                XML_ParserFree(*p);
}

/* ---- the driver -------------------------------------------------------- */

typedef struct XmlParse {
        XML_Parser parser;
        const XmlSchema *schemas;
        size_t n_schemas;
        const char *root;         /* for schemas with root == NULL */
        const XmlSchema *schema;  /* chosen at the root element */
        void *dest;
        uint64_t seen;            /* bit i: schema->fields[i] was read */
        int r;

        char ns[XML_NAME_MAX + 1];     /* the root element's namespace URI */
        char result[XML_NAME_MAX + 1]; /* "<Action>Result", or "" */

        /* Elements open, root = 1; path holds the names below the root. */
        unsigned depth;
        size_t path_len[XML_MAX_DEPTH + 1];
        char path[(XML_NAME_MAX + 1) * XML_MAX_DEPTH + 1];

        /* The list being collected. items has room for n_alloc + 1 items,
         * all zero beyond n_items, so a list of pointers ends in NULL. */
        uint8_t *items;
        size_t n_items, n_alloc;
        unsigned item_depth;      /* 0: not inside an item */
        uint64_t item_seen;

        /* The leaf being read. */
        const XmlField *field;
        /* FIELD_STRDUP text grows here: a policy document is far longer
         * than any other leaf, and the stack is no place for it. */
        char *heap;
        size_t heap_len, heap_cap;
        uint8_t *field_base;
        unsigned field_depth;
        size_t text_len;
        bool text_cut;      /* FIELD_STRING_TRUNCATE only */
        unsigned char cut_byte; /* the first byte dropped */
        char text[XML_TEXT_MAX + 1];
} XmlParse;

static void fail(XmlParse *x, int r) {
        if (x->r == 0) {
                x->r = r;
                XML_StopParser(x->parser, XML_FALSE);
        }
}

/* Fields that share a destination are one value: at most one of them may
 * appear, and any of them satisfies a requirement. */
static uint64_t same_destination(const XmlField *fields, size_t n, size_t i) {
        uint64_t m = 0;

        for (size_t j = 0; j < n; j++)
                if (fields[j].offset == fields[i].offset)
                        m |= UINT64_C(1) << j;
        return m;
}

static bool all_required_seen(const XmlField *fields, size_t n, uint64_t seen) {
        for (size_t i = 0; i < n; i++)
                if (fields[i].required && !(seen & same_destination(fields, n, i)))
                        return false;
        return true;
}

static void free_fields(const XmlField *fields, size_t n, uint8_t *base) {
        for (size_t i = 0; i < n; i++) {
                void *dst = base + fields[i].offset;

                if (fields[i].kind == FIELD_STRDUP) {
                        char **p = dst;
                        free(*p);
                        *p = NULL;
                } else if (fields[i].kind == FIELD_SECRET) {
                        Secret **p = dst;
                        *p = secret_free(*p);
                }
        }
}

static void free_items(const XmlSchema *s, uint8_t *items, size_t n_items) {
        if (!s || !items)
                return;
        for (size_t i = 0; i < n_items; i++)
                free_fields(s->item_fields, s->n_item_fields, items + i * s->item_size);
        free(items);
}

static size_t text_bound(const XmlField *f) {
        switch (f->kind) {
        case FIELD_STRING:
        case FIELD_STRING_TRUNCATE:
                return f->size - 1 < XML_TEXT_MAX ? f->size - 1 : XML_TEXT_MAX;
        case FIELD_STRDUP:
                return f->size - 1;
        case FIELD_SECRET:
                return f->size;
        default:
                return XML_SCALAR_MAX;
        }
}

static const XmlField *match(const XmlField *fields, size_t n, const char *path, size_t *ret_index) {
        for (size_t i = 0; i < n; i++)
                if (streq(fields[i].path, path)) {
                        *ret_index = i;
                        return &fields[i];
                }
        return NULL;
}

static void begin_field(XmlParse *x, const XmlField *fields, size_t n, size_t i, uint64_t *seen,
                        uint8_t *base) {
        const XmlField *f = &fields[i];

        /* A second value for one destination: refuse rather than guess. */
        if (*seen & same_destination(fields, n, i))
                return fail(x, -EBADMSG);
        *seen |= UINT64_C(1) << i;

        if (f->kind == FIELD_SECRET) {
                Secret **p = (Secret **) (base + f->offset);

                /* Room for the whole bound at once: the secret is never
                 * copied from one allocation to the next while it grows. */
                *p = secret_new(f->size);
                if (!*p)
                        return fail(x, -ENOMEM);
        }

        x->field = f;
        x->field_base = base;
        x->field_depth = x->depth;
        x->heap_len = 0;
        x->text_len = 0;
        x->text_cut = false;
}

static int store_field(XmlParse *x) {
        const XmlField *f = x->field;
        void *dst = x->field_base + f->offset;
        int r;

        x->text[x->text_len] = 0;

        switch (f->kind) {
        case FIELD_STRING:
        case FIELD_STRING_TRUNCATE: {
                size_t n = x->text_len;

                /* The cut fell inside a multi-byte sequence: drop its head,
                 * so the message stays valid UTF-8. */
                if (x->text_cut && (x->cut_byte & 0xC0) == 0x80) {
                        while (n > 0 && ((unsigned char) x->text[n - 1] & 0xC0) == 0x80)
                                n--;
                        if (n > 0 && (unsigned char) x->text[n - 1] >= 0xC0)
                                n--;
                }
                if (f->required && n == 0)
                        return -EBADMSG;
                if (f->charset && strspn(x->text, f->charset) != n)
                        return -EBADMSG;
                memcpy(dst, x->text, n);
                ((char *) dst)[n] = 0;
                return 0;
        }
        case FIELD_STRDUP: {
                char **p = dst;

                if (f->required && x->heap_len == 0)
                        return -EBADMSG;
                *p = strndup(x->heap ?: "", x->heap_len);
                return *p ? 0 : -ENOMEM;
        }
        case FIELD_BOOL:
                if (streq(x->text, "true"))
                        *(bool *) dst = true;
                else if (streq(x->text, "false"))
                        *(bool *) dst = false;
                else
                        return -EBADMSG;
                return 0;
        case FIELD_UINT: {
                unsigned long long v = 0;

                if (x->text_len < 1 || x->text_len > 10)
                        return -EBADMSG;
                for (size_t i = 0; i < x->text_len; i++) {
                        if (x->text[i] < '0' || x->text[i] > '9')
                                return -EBADMSG;
                        v = v * 10 + (unsigned) (x->text[i] - '0');
                }
                if (v > UINT_MAX)
                        return -EBADMSG;
                *(unsigned *) dst = (unsigned) v;
                return 0;
        }
        case FIELD_TIMESTAMP:
                r = xml_parse_timestamp(x->text, (time_t *) dst);
                return r < 0 ? -EBADMSG : 0;
        case FIELD_KEY_STATUS: {
                KeyStatus s = key_status_from_string(x->text);

                if (s < 0)
                        return -EBADMSG;
                *(KeyStatus *) dst = s;
                return 0;
        }
        case FIELD_SECRET: {
                const Secret *secret = *(Secret **) dst;

                if (f->required && secret->len == 0)
                        return -EBADMSG;
                /* It goes into credential files: visible ASCII only, so no
                 * line or field can be forged there. Today's are base64. */
                for (size_t i = 0; i < secret->len; i++)
                        if ((unsigned char) secret->data[i] < 0x21 || (unsigned char) secret->data[i] > 0x7E)
                                return -EBADMSG;
                return 0;
        }
        }
        return -EBADMSG;
}

static bool choose_schema(XmlParse *x, const char *local) {
        for (size_t i = 0; i < x->n_schemas; i++) {
                const char *root = x->schemas[i].root ? x->schemas[i].root : x->root;

                if (root && streq(local, root)) {
                        x->schema = &x->schemas[i];
                        return true;
                }
        }
        return false;
}

static void XMLCALL on_start(void *userdata, const XML_Char *name, const XML_Char **attrs) {
        XmlParse *x = userdata;
        const char *local, *sep, *component;
        size_t uri_len, local_len, at, i;
        const XmlSchema *s;
        const XmlField *f;

        if (x->r < 0)
                return;
        /* Leaves hold text only: no markup smuggled inside a value. */
        if (x->field)
                return fail(x, -EBADMSG);
        if (x->depth >= XML_MAX_DEPTH)
                return fail(x, -EBADMSG);
        x->depth++;

        sep = strrchr(name, XML_NS_SEP[0]);
        local = sep ? sep + 1 : name;
        uri_len = sep ? (size_t) (sep - name) : 0;
        local_len = strlen(local);
        if (local_len == 0 || local_len > XML_NAME_MAX)
                return fail(x, -EBADMSG);

        if (x->depth == 1) {
                if (uri_len > XML_NAME_MAX || !choose_schema(x, local))
                        return fail(x, -EBADMSG);
                memcpy(x->ns, name, uri_len);
                x->ns[uri_len] = 0;
                /* "<Action>Response" carries its data in "<Action>Result". */
                if (local_len > 8 && streq(local + local_len - 8, "Response")) {
                        memcpy(x->result, local, local_len - 8);
                        memcpy(x->result + local_len - 8, "Result", 7);
                }
                x->path_len[1] = 0;
                x->path[0] = 0;
                return;
        }

        /* An element from another namespace than the document's is not the
         * element of the same local name: '?' is no XML name. */
        if (strlen(x->ns) != uri_len || memcmp(x->ns, name, uri_len) != 0)
                component = "?";
        else if (x->depth == 2 && x->result[0] && streq(local, x->result))
                component = "#";
        else
                component = local;

        at = x->path_len[x->depth - 1];
        if (at > 0)
                x->path[at++] = '/';
        memcpy(x->path + at, component, strlen(component) + 1);
        x->path_len[x->depth] = at + strlen(component);

        s = x->schema;
        if (s->item_path) {
                size_t ilen = strlen(s->item_path);

                if (streq(x->path, s->item_path)) {
                        if (x->n_items >= XML_MAX_ITEMS)
                                return fail(x, -EBADMSG);
                        if (x->n_items == x->n_alloc) {
                                size_t n = x->n_alloc ? x->n_alloc * 2 : 4;
                                uint8_t *p;

                                if (n > XML_MAX_ITEMS)
                                        n = XML_MAX_ITEMS;
                                p = realloc(x->items, (n + 1) * s->item_size);
                                if (!p)
                                        return fail(x, -ENOMEM);
                                memset(p + (x->n_alloc + 1) * s->item_size, 0, (n - x->n_alloc) * s->item_size);
                                if (!x->items)
                                        memset(p, 0, s->item_size);
                                x->items = p;
                                x->n_alloc = n;
                        }
                        /* Counted at once, so a failure frees what it holds. */
                        x->n_items++;
                        x->item_depth = x->depth;
                        x->item_seen = 0;
                        /* A list of plain values: the item is the leaf. */
                        f = match(s->item_fields, s->n_item_fields, "", &i);
                        if (f)
                                begin_field(x, s->item_fields, s->n_item_fields, i, &x->item_seen,
                                            x->items + (x->n_items - 1) * s->item_size);
                        return;
                }
                if (x->item_depth > 0 && strncmp(x->path, s->item_path, ilen) == 0 && x->path[ilen] == '/') {
                        f = match(s->item_fields, s->n_item_fields, x->path + ilen + 1, &i);
                        if (f)
                                begin_field(x, s->item_fields, s->n_item_fields, i, &x->item_seen,
                                            x->items + (x->n_items - 1) * s->item_size);
                        return;
                }
        }

        f = match(s->fields, s->n_fields, x->path, &i);
        if (f)
                begin_field(x, s->fields, s->n_fields, i, &x->seen, x->dest);
}

static void XMLCALL on_end(void *userdata, const XML_Char *name) {
        XmlParse *x = userdata;
        int r;

        if (x->r < 0)
                return;

        if (x->field && x->depth == x->field_depth) {
                r = store_field(x);
                x->field = NULL;
                if (r < 0)
                        return fail(x, r);
        }
        /* (An item that is its own leaf ends both at once.) */
        if (x->item_depth > 0 && x->depth == x->item_depth) {
                if (!all_required_seen(x->schema->item_fields, x->schema->n_item_fields, x->item_seen))
                        return fail(x, -EBADMSG);
                x->item_depth = 0;
        }
        x->depth--;
}

static void XMLCALL on_text(void *userdata, const XML_Char *s, int len) {
        XmlParse *x = userdata;
        const XmlField *f = x->field;
        size_t n = (size_t) len, bound;
        int r;

        if (x->r < 0 || !f || len <= 0)
                return;

        if (f->kind == FIELD_SECRET) {
                /* Straight from expat's (secure) buffer into the Secret. */
                r = secret_append((Secret **) (x->field_base + f->offset), s, n, f->size);
                if (r < 0)
                        fail(x, r == -E2BIG ? -EBADMSG : r);
                return;
        }

        bound = text_bound(f);
        if (f->kind == FIELD_STRDUP) {
                if (n > bound - x->heap_len)
                        return fail(x, -EBADMSG);
                if (x->heap_len + n + 1 > x->heap_cap) {
                        size_t cap = x->heap_cap ? x->heap_cap : 256;
                        char *p;

                        while (cap < x->heap_len + n + 1)
                                cap *= 2;
                        if (cap > bound + 1)
                                cap = bound + 1;
                        p = realloc(x->heap, cap);
                        if (!p)
                                return fail(x, -ENOMEM);
                        x->heap = p;
                        x->heap_cap = cap;
                }
                memcpy(x->heap + x->heap_len, s, n);
                x->heap_len += n;
                return;
        }
        if (n > bound - x->text_len) {
                if (f->kind != FIELD_STRING_TRUNCATE)
                        return fail(x, -EBADMSG);
                /* Remember the first byte dropped, so store_field can see
                 * whether the cut split a UTF-8 sequence. */
                if (!x->text_cut) {
                        size_t keep = bound - x->text_len;

                        memcpy(x->text + x->text_len, s, keep);
                        x->text_len = bound;
                        x->cut_byte = (unsigned char) s[keep];
                        x->text_cut = true;
                }
                return;
        }
        memcpy(x->text + x->text_len, s, n);
        x->text_len += n;
}

static void XMLCALL on_doctype(void *userdata, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int has_internal_subset) {
        /* No AWS response has a DTD; one is only ever there to declare
         * entities (billion laughs, external files). Refuse it outright. */
        fail(userdata, -EBADMSG);
}

static void XMLCALL on_entity_decl(void *userdata, const XML_Char *name, int is_parameter_entity,
                                   const XML_Char *value, int value_length, const XML_Char *base,
                                   const XML_Char *system_id, const XML_Char *public_id,
                                   const XML_Char *notation_name) {
        fail(userdata, -EBADMSG);
}

static int XMLCALL on_external_entity(XML_Parser p, const XML_Char *context, const XML_Char *base,
                                      const XML_Char *system_id, const XML_Char *public_id) {
        return XML_STATUS_ERROR;
}

/*
 * Parse doc with the first of schemas whose root matches. On success the
 * scratch dest holds the fields and *ret_items the list (owned by the
 * caller: free_items / free_fields); on failure everything is freed.
 */
static int xml_parse_doc(const char *doc, size_t len, const XmlSchema *schemas, size_t n_schemas,
                         const char *root, bool secure, void *dest, const XmlSchema **ret_schema,
                         void **ret_items, size_t *ret_n_items) {
        _cleanup_(xml_parser_freep) XML_Parser p = NULL;
        XmlParse ctx = {}, *x = &ctx;
        int r;

        if (!doc && len > 0)
                return -EINVAL;
        if (len == 0 || len > XML_MAX_DOCUMENT)
                return -EBADMSG;

        /* "UTF-8" overrides whatever the document declares: a Latin-1 or
         * UTF-16 document is malformed here, not silently transcoded. */
        p = XML_ParserCreate_MM("UTF-8", secure ? &secure_memory_suite : NULL, XML_NS_SEP);
        if (!p)
                return -ENOMEM;
        /* Expat draws a fresh hash salt per parser, a getrandom() per AWS
         * answer; one random salt per process defends against hash flooding
         * as well. */
        XML_SetHashSalt(p, process_hash_salt());

        x->parser = p;
        x->schemas = schemas;
        x->n_schemas = n_schemas;
        x->root = root;
        x->dest = dest;

        XML_SetUserData(p, x);
        XML_SetElementHandler(p, on_start, on_end);
        XML_SetCharacterDataHandler(p, on_text);
        XML_SetStartDoctypeDeclHandler(p, on_doctype);
        XML_SetEntityDeclHandler(p, on_entity_decl);
        XML_SetExternalEntityRefHandler(p, on_external_entity);
        if (!XML_SetParamEntityParsing(p, XML_PARAM_ENTITY_PARSING_NEVER))
                return -EIO;

        if (XML_Parse(p, doc, (int) len, XML_TRUE) != XML_STATUS_OK)
                r = x->r < 0 ? x->r : XML_GetErrorCode(p) == XML_ERROR_NO_MEMORY ? -ENOMEM : -EBADMSG;
        else if (x->r < 0)
                r = x->r;
        else if (!x->schema || !all_required_seen(x->schema->fields, x->schema->n_fields, x->seen))
                r = -EBADMSG;
        else
                r = 0;
        free(x->heap);
        x->heap = NULL;

        if (r < 0) {
                if (x->schema) {
                        free_fields(x->schema->fields, x->schema->n_fields, dest);
                        free_items(x->schema, x->items, x->n_items);
                } else
                        free(x->items);
                return r;
        }

        *ret_schema = x->schema;
        if (ret_items) {
                *ret_items = x->n_items > 0 ? x->items : NULL;
                *ret_n_items = x->n_items;
                if (x->n_items == 0)
                        free(x->items);
        } else
                free_items(x->schema, x->items, x->n_items);
        return 0;
}

static void discard(const XmlSchema *s, void *dest, void *items, size_t n_items) {
        free_fields(s->fields, s->n_fields, dest);
        free_items(s, items, n_items);
}

/* ---- documents --------------------------------------------------------- */

static const XmlField error_response_fields[] = {
        /* IAM, STS: ErrorResponse/Error; moto's signature errors: Errors/Error. */
        F_STRING("Error/Type", AwsError, type, false),
        F_STRING("Error/Code", AwsError, code, true),
        F_TRUNCATE("Error/Message", AwsError, message),
        F_STRING("Errors/Error/Type", AwsError, type, false),
        F_STRING("Errors/Error/Code", AwsError, code, true),
        F_TRUNCATE("Errors/Error/Message", AwsError, message),
        F_STRING("RequestId", AwsError, request_id, false),
};

static const XmlField error_s3_fields[] = {
        F_STRING("Code", AwsError, code, true),
        F_TRUNCATE("Message", AwsError, message),
        F_STRING("RequestId", AwsError, request_id, false),
};

static const XmlSchema error_schemas[] = {
        { .root = "ErrorResponse", SCHEMA_FIELDS(error_response_fields) },
        { .root = "Error", SCHEMA_FIELDS(error_s3_fields) },
};

int xml_parse_error(const char *doc, size_t len, AwsError *ret) {
        AwsError e = {};
        const XmlSchema *s;
        int r;

        if (!ret)
                return -EINVAL;
        r = xml_parse_doc(doc, len, error_schemas, ELEMENTSOF(error_schemas), NULL, false, &e, &s, NULL, NULL);
        if (r < 0)
                return r;
        *ret = e;
        return 0;
}

typedef struct EmptyResponse {
        char request_id[128];
} EmptyResponse;

static const XmlField empty_fields[] = {
        F_STRING("ResponseMetadata/RequestId", EmptyResponse, request_id, false),
};

static const XmlSchema empty_schema = { .root = NULL, SCHEMA_FIELDS(empty_fields) };

int xml_parse_empty_response(const char *doc, size_t len, const char *root, char request_id[static 128]) {
        EmptyResponse e = {};
        const XmlSchema *s;
        int r;

        if (!root || !request_id)
                return -EINVAL;
        r = xml_parse_doc(doc, len, &empty_schema, 1, root, false, &e, &s, NULL, NULL);
        if (r < 0)
                return r;
        memcpy(request_id, e.request_id, sizeof(e.request_id));
        return 0;
}

static const XmlField list_keys_fields[] = {
        F_SCALAR("#/IsTruncated", FIELD_BOOL, ListAccessKeysResult, is_truncated, false),
        F_STRDUP("#/Marker", ListAccessKeysResult, marker, XML_MARKER_MAX, false),
        F_STRING("ResponseMetadata/RequestId", ListAccessKeysResult, request_id, false),
};

static const XmlField access_key_meta_fields[] = {
        F_WORD("UserName", AccessKeyMeta, user_name, CHARSET_USER_NAME, false),
        F_WORD("AccessKeyId", AccessKeyMeta, access_key_id, CHARSET_WORD, true),
        F_SCALAR("Status", FIELD_KEY_STATUS, AccessKeyMeta, status, true),
        F_SCALAR("CreateDate", FIELD_TIMESTAMP, AccessKeyMeta, create_date, true),
};

static const XmlSchema list_keys_schema = {
        .root = "ListAccessKeysResponse",
        SCHEMA_FIELDS(list_keys_fields),
        SCHEMA_ITEMS("#/AccessKeyMetadata/member", access_key_meta_fields, sizeof(AccessKeyMeta)),
};

int xml_parse_list_access_keys(const char *doc, size_t len, ListAccessKeysResult *ret) {
        ListAccessKeysResult l = {};
        const XmlSchema *s;
        void *items;
        int r;

        if (!ret)
                return -EINVAL;
        r = xml_parse_doc(doc, len, &list_keys_schema, 1, NULL, false, &l, &s, &items, &l.n_keys);
        if (r < 0)
                return r;
        /* Truncated without a marker: the caller could never get the rest. */
        if (l.is_truncated && (!l.marker || !l.marker[0])) {
                discard(s, &l, items, l.n_keys);
                return -EBADMSG;
        }
        if (!l.is_truncated)
                l.marker = mfree(l.marker);
        l.keys = items;
        *ret = l;
        return 0;
}



static const XmlField create_key_fields[] = {
        F_WORD("#/AccessKey/UserName", CreateAccessKeyResult, meta.user_name, CHARSET_USER_NAME, true),
        F_WORD("#/AccessKey/AccessKeyId", CreateAccessKeyResult, meta.access_key_id, CHARSET_WORD, true),
        F_SCALAR("#/AccessKey/Status", FIELD_KEY_STATUS, CreateAccessKeyResult, meta.status, true),
        F_SECRET("#/AccessKey/SecretAccessKey", CreateAccessKeyResult, secret_access_key, XML_SECRET_MAX, true),
        /* Optional: IAM marks it so, and refusing the only copy of a new
         * secret over a missing date would orphan the key. */
        F_SCALAR("#/AccessKey/CreateDate", FIELD_TIMESTAMP, CreateAccessKeyResult, meta.create_date, false),
        F_STRING("ResponseMetadata/RequestId", CreateAccessKeyResult, request_id, false),
};

static const XmlSchema create_key_schema = {
        .root = "CreateAccessKeyResponse",
        SCHEMA_FIELDS(create_key_fields),
};

int xml_parse_create_access_key(const char *doc, size_t len, CreateAccessKeyResult *ret) {
        CreateAccessKeyResult c = {};
        const XmlSchema *s;
        int r;

        if (!ret)
                return -EINVAL;
        r = secret_init();
        if (r < 0)
                return r;
        r = xml_parse_doc(doc, len, &create_key_schema, 1, NULL, true, &c, &s, NULL, NULL);
        if (r < 0)
                return r;
        *ret = c;
        return 0;
}


static const XmlField last_used_fields[] = {
        F_WORD("#/UserName", AccessKeyLastUsed, user_name, CHARSET_USER_NAME, false),
        /* Absent when the key was never used. */
        F_SCALAR("#/AccessKeyLastUsed/LastUsedDate", FIELD_TIMESTAMP, AccessKeyLastUsed, last_used_date, false),
        F_STRING("#/AccessKeyLastUsed/ServiceName", AccessKeyLastUsed, service_name, true),
        F_STRING("#/AccessKeyLastUsed/Region", AccessKeyLastUsed, region, true),
        F_STRING("ResponseMetadata/RequestId", AccessKeyLastUsed, request_id, false),
};

static const XmlSchema last_used_schema = {
        .root = "GetAccessKeyLastUsedResponse",
        SCHEMA_FIELDS(last_used_fields),
};

int xml_parse_access_key_last_used(const char *doc, size_t len, AccessKeyLastUsed *ret) {
        AccessKeyLastUsed u = {};
        const XmlSchema *s;
        int r;

        if (!ret)
                return -EINVAL;
        r = xml_parse_doc(doc, len, &last_used_schema, 1, NULL, false, &u, &s, NULL, NULL);
        if (r < 0)
                return r;
        *ret = u;
        return 0;
}

static const XmlField user_fields[] = {
        F_STRING("#/User/Path", IamUser, path, true),
        F_WORD("#/User/UserName", IamUser, user_name, CHARSET_USER_NAME, true),
        F_WORD("#/User/UserId", IamUser, user_id, CHARSET_WORD, true),
        F_STRING("#/User/Arn", IamUser, arn, true),
        F_SCALAR("#/User/CreateDate", FIELD_TIMESTAMP, IamUser, create_date, true),
        F_STRING("ResponseMetadata/RequestId", IamUser, request_id, false),
};

static const XmlSchema user_schema = { .root = NULL, SCHEMA_FIELDS(user_fields) };

int xml_parse_user(const char *doc, size_t len, const char *root, IamUser *ret) {
        IamUser u = {};
        const XmlSchema *s;
        int r;

        /* The fields live in "<Action>Result": the root must name an action. */
        if (!root || !ret || strlen(root) <= 8 || !streq(root + strlen(root) - 8, "Response"))
                return -EINVAL;
        r = xml_parse_doc(doc, len, &user_schema, 1, root, false, &u, &s, NULL, NULL);
        if (r < 0)
                return r;
        *ret = u;
        return 0;
}

static const XmlField list_tags_fields[] = {
        F_SCALAR("#/IsTruncated", FIELD_BOOL, ListUserTagsResult, is_truncated, false),
        F_STRING("ResponseMetadata/RequestId", ListUserTagsResult, request_id, false),
};

static const XmlField tag_fields[] = {
        F_STRING("Key", IamTag, key, true),
        F_STRING("Value", IamTag, value, false),
};

static const XmlSchema list_tags_schema = {
        .root = "ListUserTagsResponse",
        SCHEMA_FIELDS(list_tags_fields),
        SCHEMA_ITEMS("#/Tags/member", tag_fields, sizeof(IamTag)),
};

int xml_parse_list_user_tags(const char *doc, size_t len, ListUserTagsResult *ret) {
        ListUserTagsResult l = {};
        const XmlSchema *s;
        void *items;
        int r;

        if (!ret)
                return -EINVAL;
        r = xml_parse_doc(doc, len, &list_tags_schema, 1, NULL, false, &l, &s, &items, &l.n_tags);
        if (r < 0)
                return r;
        l.tags = items;
        *ret = l;
        return 0;
}


static const XmlField user_policy_fields[] = {
        F_WORD("#/UserName", UserPolicyResult, user_name, CHARSET_USER_NAME, true),
        F_STRING("#/PolicyName", UserPolicyResult, policy_name, true),
        F_STRDUP("#/PolicyDocument", UserPolicyResult, document, XML_POLICY_MAX, true),
        F_STRING("ResponseMetadata/RequestId", UserPolicyResult, request_id, false),
};

static const XmlSchema user_policy_schema = {
        .root = "GetUserPolicyResponse",
        SCHEMA_FIELDS(user_policy_fields),
};

int xml_parse_user_policy(const char *doc, size_t len, UserPolicyResult *ret) {
        UserPolicyResult u = {};
        const XmlSchema *s;
        int r;

        if (!ret)
                return -EINVAL;
        r = xml_parse_doc(doc, len, &user_policy_schema, 1, NULL, false, &u, &s, NULL, NULL);
        if (r < 0)
                return r;
        *ret = u;
        return 0;
}


/* ---- the audit's IAM documents ------------------------------------------ */

#define CHARSET_VERSION_ID CHARSET_WORD ".-"

static const XmlField name_list_fields[] = {
        F_SCALAR("#/IsTruncated", FIELD_BOOL, IamNameList, is_truncated, false),
        F_STRDUP("#/Marker", IamNameList, marker, XML_MARKER_MAX, false),
        F_STRING("ResponseMetadata/RequestId", IamNameList, request_id, false),
};

/* Names go back into requests and into journal fields: IAM's alphabet only. */
static const XmlField user_name_item[] = {
        { "UserName", FIELD_STRING, offsetof(IamName, name), AWS_USER_NAME_MAX + 1, true, CHARSET_USER_NAME },
};
static const XmlField group_name_item[] = {
        { "GroupName", FIELD_STRING, offsetof(IamName, name), AWS_NAME_MAX + 1, true, CHARSET_USER_NAME },
};
static const XmlField policy_name_item[] = {
        { "", FIELD_STRING, offsetof(IamName, name), AWS_NAME_MAX + 1, true, CHARSET_USER_NAME },
};

static const XmlSchema list_users_schema = {
        .root = "ListUsersResponse",
        SCHEMA_FIELDS(name_list_fields),
        SCHEMA_ITEMS("#/Users/member", user_name_item, sizeof(IamName)),
};
static const XmlSchema list_user_policies_schema = {
        .root = "ListUserPoliciesResponse",
        SCHEMA_FIELDS(name_list_fields),
        SCHEMA_ITEMS("#/PolicyNames/member", policy_name_item, sizeof(IamName)),
};
static const XmlSchema list_group_policies_schema = {
        .root = "ListGroupPoliciesResponse",
        SCHEMA_FIELDS(name_list_fields),
        SCHEMA_ITEMS("#/PolicyNames/member", policy_name_item, sizeof(IamName)),
};
static const XmlSchema list_groups_for_user_schema = {
        .root = "ListGroupsForUserResponse",
        SCHEMA_FIELDS(name_list_fields),
        SCHEMA_ITEMS("#/Groups/member", group_name_item, sizeof(IamName)),
};

static int parse_name_list(const char *doc, size_t len, const XmlSchema *schema, IamNameList *ret) {
        IamNameList l = {};
        const XmlSchema *s;
        void *items;
        int r;

        if (!ret)
                return -EINVAL;
        r = xml_parse_doc(doc, len, schema, 1, NULL, false, &l, &s, &items, &l.n_names);
        if (r < 0)
                return r;
        if (l.is_truncated && (!l.marker || !l.marker[0])) {
                discard(s, &l, items, l.n_names);
                return -EBADMSG;
        }
        if (!l.is_truncated)
                l.marker = mfree(l.marker);
        l.names = items;
        *ret = l;
        return 0;
}

int xml_parse_list_users(const char *doc, size_t len, IamNameList *ret) {
        return parse_name_list(doc, len, &list_users_schema, ret);
}

int xml_parse_list_user_policies(const char *doc, size_t len, IamNameList *ret) {
        return parse_name_list(doc, len, &list_user_policies_schema, ret);
}

int xml_parse_list_group_policies(const char *doc, size_t len, IamNameList *ret) {
        return parse_name_list(doc, len, &list_group_policies_schema, ret);
}

int xml_parse_list_groups_for_user(const char *doc, size_t len, IamNameList *ret) {
        return parse_name_list(doc, len, &list_groups_for_user_schema, ret);
}


static const XmlField attached_list_fields[] = {
        F_SCALAR("#/IsTruncated", FIELD_BOOL, ListAttachedPoliciesResult, is_truncated, false),
        F_STRDUP("#/Marker", ListAttachedPoliciesResult, marker, XML_MARKER_MAX, false),
        F_STRING("ResponseMetadata/RequestId", ListAttachedPoliciesResult, request_id, false),
};

static const XmlField attached_policy_fields[] = {
        F_WORD("PolicyName", AttachedPolicy, policy_name, CHARSET_USER_NAME, false),
        F_STRDUP("PolicyArn", AttachedPolicy, policy_arn, XML_ARN_MAX, true),
};

static const XmlSchema list_attached_user_schema = {
        .root = "ListAttachedUserPoliciesResponse",
        SCHEMA_FIELDS(attached_list_fields),
        SCHEMA_ITEMS("#/AttachedPolicies/member", attached_policy_fields, sizeof(AttachedPolicy)),
};
static const XmlSchema list_attached_group_schema = {
        .root = "ListAttachedGroupPoliciesResponse",
        SCHEMA_FIELDS(attached_list_fields),
        SCHEMA_ITEMS("#/AttachedPolicies/member", attached_policy_fields, sizeof(AttachedPolicy)),
};

static bool arn_valid(const char *arn) {
        /* It goes back into a request and into findings: printable ASCII. */
        if (!startswith(arn, "arn:"))
                return false;
        for (; *arn; arn++)
                if ((unsigned char) *arn < 0x21 || (unsigned char) *arn > 0x7e)
                        return false;
        return true;
}

static int parse_attached(const char *doc, size_t len, const XmlSchema *schema, ListAttachedPoliciesResult *ret) {
        ListAttachedPoliciesResult l = {};
        const XmlSchema *s;
        AttachedPolicy *items;
        int r;

        if (!ret)
                return -EINVAL;
        r = xml_parse_doc(doc, len, schema, 1, NULL, false, &l, &s, (void **) &items, &l.n_policies);
        if (r < 0)
                return r;
        bool bad = l.is_truncated && (!l.marker || !l.marker[0]);
        for (size_t i = 0; !bad && i < l.n_policies; i++)
                bad = !arn_valid(items[i].policy_arn);
        if (bad) {
                discard(s, &l, items, l.n_policies);
                return -EBADMSG;
        }
        if (!l.is_truncated)
                l.marker = mfree(l.marker);
        l.policies = items;
        *ret = l;
        return 0;
}

int xml_parse_list_attached_user_policies(const char *doc, size_t len, ListAttachedPoliciesResult *ret) {
        return parse_attached(doc, len, &list_attached_user_schema, ret);
}

int xml_parse_list_attached_group_policies(const char *doc, size_t len, ListAttachedPoliciesResult *ret) {
        return parse_attached(doc, len, &list_attached_group_schema, ret);
}


static const XmlField group_policy_fields[] = {
        F_WORD("#/GroupName", GroupPolicyResult, group_name, CHARSET_USER_NAME, true),
        F_WORD("#/PolicyName", GroupPolicyResult, policy_name, CHARSET_USER_NAME, true),
        F_STRDUP("#/PolicyDocument", GroupPolicyResult, document, XML_POLICY_MAX, true),
        F_STRING("ResponseMetadata/RequestId", GroupPolicyResult, request_id, false),
};

static const XmlSchema group_policy_schema = {
        .root = "GetGroupPolicyResponse",
        SCHEMA_FIELDS(group_policy_fields),
};

int xml_parse_group_policy(const char *doc, size_t len, GroupPolicyResult *ret) {
        GroupPolicyResult g = {};
        const XmlSchema *s;
        int r;

        if (!ret)
                return -EINVAL;
        r = xml_parse_doc(doc, len, &group_policy_schema, 1, NULL, false, &g, &s, NULL, NULL);
        if (r < 0)
                return r;
        *ret = g;
        return 0;
}


static const XmlField policy_fields[] = {
        F_WORD("#/Policy/PolicyName", IamPolicy, policy_name, CHARSET_USER_NAME, true),
        F_WORD("#/Policy/DefaultVersionId", IamPolicy, default_version_id, CHARSET_VERSION_ID, true),
        F_STRING("ResponseMetadata/RequestId", IamPolicy, request_id, false),
};

static const XmlSchema policy_schema = {
        .root = "GetPolicyResponse",
        SCHEMA_FIELDS(policy_fields),
};

int xml_parse_policy(const char *doc, size_t len, IamPolicy *ret) {
        IamPolicy p = {};
        const XmlSchema *s;
        int r;

        if (!ret)
                return -EINVAL;
        r = xml_parse_doc(doc, len, &policy_schema, 1, NULL, false, &p, &s, NULL, NULL);
        if (r < 0)
                return r;
        *ret = p;
        return 0;
}

static const XmlField policy_version_fields[] = {
        F_STRDUP("#/PolicyVersion/Document", PolicyVersionResult, document, XML_POLICY_MAX, true),
        F_WORD("#/PolicyVersion/VersionId", PolicyVersionResult, version_id, CHARSET_VERSION_ID, true),
        F_SCALAR("#/PolicyVersion/IsDefaultVersion", FIELD_BOOL, PolicyVersionResult, is_default, false),
        F_STRING("ResponseMetadata/RequestId", PolicyVersionResult, request_id, false),
};

static const XmlSchema policy_version_schema = {
        .root = "GetPolicyVersionResponse",
        SCHEMA_FIELDS(policy_version_fields),
};

int xml_parse_policy_version(const char *doc, size_t len, PolicyVersionResult *ret) {
        PolicyVersionResult v = {};
        const XmlSchema *s;
        int r;

        if (!ret)
                return -EINVAL;
        r = xml_parse_doc(doc, len, &policy_version_schema, 1, NULL, false, &v, &s, NULL, NULL);
        if (r < 0)
                return r;
        *ret = v;
        return 0;
}


static const XmlField list_objects_fields[] = {
        F_SCALAR("KeyCount", FIELD_UINT, ListObjectsResult, key_count, true),
        F_SCALAR("IsTruncated", FIELD_BOOL, ListObjectsResult, is_truncated, true),
        F_STRDUP("NextContinuationToken", ListObjectsResult, next_continuation_token, XML_TOKEN_MAX, false),
};

static const XmlField object_fields[] = {
        { "Key", FIELD_STRDUP, 0, XML_OBJECT_KEY_MAX + 1, true },
};

static const XmlSchema list_objects_schema = {
        .root = "ListBucketResult",
        SCHEMA_FIELDS(list_objects_fields),
        SCHEMA_ITEMS("Contents", object_fields, sizeof(char *)),
};

int xml_parse_list_objects_v2(const char *doc, size_t len, ListObjectsResult *ret) {
        ListObjectsResult l = {};
        const XmlSchema *s;
        size_t n;
        void *items;
        int r;

        if (!ret)
                return -EINVAL;
        r = xml_parse_doc(doc, len, &list_objects_schema, 1, NULL, false, &l, &s, &items, &n);
        if (r < 0)
                return r;
        if (l.is_truncated && (!l.next_continuation_token || !l.next_continuation_token[0])) {
                discard(s, &l, items, n);
                return -EBADMSG;
        }
        if (!l.is_truncated)
                l.next_continuation_token = mfree(l.next_continuation_token);
        /* The driver keeps one zeroed item past the end: NULL-terminated. */
        l.keys = items;
        *ret = l;
        return 0;
}


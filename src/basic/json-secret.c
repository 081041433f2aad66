/* SPDX-License-Identifier: MIT */
/*
 * json-secret.c — a bounded reader of one flat JSON object whose wanted
 * strings decode straight into secure memory (see json-secret.h for why
 * json-c is not used here). Decoded bytes go one by one into their
 * destination; no buffer of ours holds a piece of a secret in between.
 */
#include "basic/json-secret.h"

#include <errno.h>
#include <string.h>

#include "basic/hex.h"
#include "basic/util.h"

/* The member names asked for are short: a longer name matches none. */
#define MEMBER_NAME_MAX 64U

typedef struct Reader {
        const char *s;
        size_t len, i;
} Reader;

/* Where a decoded string goes: buf[0..cap), excess noted, not written. */
typedef struct Sink {
        char *buf;
        size_t cap, len;
        bool overflow;
} Sink;

static void sink_putc(Sink *o, unsigned c) {
        if (!o)
                return;
        if (o->len >= o->cap) {
                o->overflow = true;
                return;
        }
        o->buf[o->len++] = (char) c;
}

static void skip_ws(Reader *r) {
        while (r->i < r->len &&
               (r->s[r->i] == ' ' || r->s[r->i] == '\t' || r->s[r->i] == '\r' || r->s[r->i] == '\n'))
                r->i++;
}

/* Skip blanks, then consume @c if it comes next. */
static bool take(Reader *r, char c) {
        skip_ws(r);
        if (r->i >= r->len || r->s[r->i] != c)
                return false;
        r->i++;
        return true;
}

static int hex4(const Reader *r, size_t at, unsigned *ret) {
        unsigned v = 0;

        if (r->len - at < 4)
                return -EBADMSG;
        for (size_t k = at; k < at + 4; k++) {
                int h = unhexchar(r->s[k]);

                if (h < 0)
                        return -EBADMSG;
                v = v << 4 | (unsigned) h;
        }
        *ret = v;
        return 0;
}

static void sink_put_utf8(Sink *o, unsigned u) {
        if (u < 0x80)
                sink_putc(o, u);
        else if (u < 0x800) {
                sink_putc(o, 0xc0 | (u >> 6));
                sink_putc(o, 0x80 | (u & 0x3f));
        } else if (u < 0x10000) {
                sink_putc(o, 0xe0 | (u >> 12));
                sink_putc(o, 0x80 | ((u >> 6) & 0x3f));
                sink_putc(o, 0x80 | (u & 0x3f));
        } else {
                sink_putc(o, 0xf0 | (u >> 18));
                sink_putc(o, 0x80 | ((u >> 12) & 0x3f));
                sink_putc(o, 0x80 | ((u >> 6) & 0x3f));
                sink_putc(o, 0x80 | (u & 0x3f));
        }
}

/* The \uXXXX escape whose 'u' is at r->s[*k - 1]: a code point, a
 * surrogate pair joined, never U+0000 or half a pair. */
static int read_unicode_escape(const Reader *r, size_t *k, unsigned *ret) {
        unsigned u, lo;

        if (hex4(r, *k, &u) < 0)
                return -EBADMSG;
        *k += 4;
        if (u >= 0xd800 && u <= 0xdbff) {
                if (r->len - *k < 6 || r->s[*k] != '\\' || r->s[*k + 1] != 'u' || hex4(r, *k + 2, &lo) < 0 ||
                    lo < 0xdc00 || lo > 0xdfff)
                        return -EBADMSG;
                *k += 6;
                u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
        } else if ((u >= 0xdc00 && u <= 0xdfff) || u == 0)
                return -EBADMSG;
        *ret = u;
        return 0;
}

/*
 * The string at r->i, which must start with '"': checked, and decoded
 * into @out unless that is NULL. The decoded text is never longer than
 * the raw one. Leaves r->i after the closing quote.
 */
static int read_string(Reader *r, Sink *out) {
        size_t k = r->i + 1;

        if (r->i >= r->len || r->s[r->i] != '"')
                return -EBADMSG;
        for (;;) {
                unsigned char c;
                unsigned u;

                if (k >= r->len)
                        return -EBADMSG;
                c = (unsigned char) r->s[k++];
                if (c == '"')
                        break;
                if (c < 0x20)
                        return -EBADMSG;
                if (c != '\\') {
                        sink_putc(out, c);
                        continue;
                }
                if (k >= r->len)
                        return -EBADMSG;
                switch (r->s[k++]) {
                case '"': sink_putc(out, '"'); break;
                case '\\': sink_putc(out, '\\'); break;
                case '/': sink_putc(out, '/'); break;
                case 'b': sink_putc(out, '\b'); break;
                case 'f': sink_putc(out, '\f'); break;
                case 'n': sink_putc(out, '\n'); break;
                case 'r': sink_putc(out, '\r'); break;
                case 't': sink_putc(out, '\t'); break;
                case 'u':
                        if (read_unicode_escape(r, &k, &u) < 0)
                                return -EBADMSG;
                        sink_put_utf8(out, u);
                        break;
                default:
                        return -EBADMSG;
                }
        }
        r->i = k;
        return 0;
}

/* A string member's value, decoded into a new Secret of the raw length. */
static int read_secret_string(Reader *r, Secret **ret) {
        _cleanup_secret_ Secret *v = NULL;
        size_t start = r->i;
        Sink out;
        int k;

        k = read_string(r, NULL);
        if (k < 0)
                return k;
        v = secret_new(r->i - start);
        if (!v)
                return -ENOMEM;
        out = (Sink) { .buf = v->data, .cap = v->cap };
        r->i = start;
        k = read_string(r, &out);
        if (k < 0)
                return k;
        if (out.overflow)
                return -EBADMSG; /* cannot happen: decoding only shrinks */
        v->len = out.len;
        v->data[v->len] = 0;
        *ret = TAKE_PTR(v);
        return 0;
}

static int skip_value(Reader *r, unsigned depth);

static int skip_container(Reader *r, unsigned depth) {
        char close = r->s[r->i] == '{' ? '}' : ']';
        int k;

        if (depth >= JSON_SECRET_DEPTH_MAX)
                return -EBADMSG;
        r->i++;
        if (take(r, close))
                return 0;
        do {
                if (close == '}') {
                        skip_ws(r);
                        k = read_string(r, NULL);
                        if (k < 0)
                                return k;
                        if (!take(r, ':'))
                                return -EBADMSG;
                }
                k = skip_value(r, depth + 1);
                if (k < 0)
                        return k;
        } while (take(r, ','));
        return take(r, close) ? 0 : -EBADMSG;
}

static bool take_digits(Reader *r) {
        size_t start = r->i;

        while (r->i < r->len && r->s[r->i] >= '0' && r->s[r->i] <= '9')
                r->i++;
        return r->i > start;
}

/* -?digits[.digits][(e|E)[+-]digits]; leading zeros are let through. */
static int skip_number(Reader *r) {
        if (r->i < r->len && r->s[r->i] == '-')
                r->i++;
        if (!take_digits(r))
                return -EBADMSG;
        if (r->i < r->len && r->s[r->i] == '.') {
                r->i++;
                if (!take_digits(r))
                        return -EBADMSG;
        }
        if (r->i < r->len && (r->s[r->i] == 'e' || r->s[r->i] == 'E')) {
                r->i++;
                if (r->i < r->len && (r->s[r->i] == '+' || r->s[r->i] == '-'))
                        r->i++;
                if (!take_digits(r))
                        return -EBADMSG;
        }
        return 0;
}

static int skip_value(Reader *r, unsigned depth) {
        static const char *const literals[] = { "true", "false", "null" };

        skip_ws(r);
        if (r->i >= r->len)
                return -EBADMSG;
        switch (r->s[r->i]) {
        case '"':
                return read_string(r, NULL);
        case '{':
        case '[':
                return skip_container(r, depth);
        case 't':
        case 'f':
        case 'n':
                for (size_t l = 0; l < ELEMENTSOF(literals); l++) {
                        size_t n = strlen(literals[l]);

                        if (r->len - r->i >= n && memcmp(r->s + r->i, literals[l], n) == 0) {
                                r->i += n;
                                return 0;
                        }
                }
                return -EBADMSG;
        default:
                return skip_number(r);
        }
}

static JsonSecretField *find_field(JsonSecretField *fields, size_t n_fields, const Sink *name) {
        if (name->overflow)
                return NULL;
        for (size_t k = 0; k < n_fields; k++)
                if (strlen(fields[k].name) == name->len && memcmp(fields[k].name, name->buf, name->len) == 0)
                        return &fields[k];
        return NULL;
}

static int read_object(Reader *r, JsonSecretField *fields, size_t n_fields) {
        int k;

        if (!take(r, '{'))
                return -EBADMSG;
        if (take(r, '}'))
                return 0;
        do {
                char buf[MEMBER_NAME_MAX];
                Sink name = { .buf = buf, .cap = sizeof(buf) };
                JsonSecretField *f;

                skip_ws(r);
                k = read_string(r, &name);
                if (k < 0)
                        return k;
                if (!take(r, ':'))
                        return -EBADMSG;
                f = find_field(fields, n_fields, &name);
                if (f && f->value)
                        return -EBADMSG; /* twice: which one would a reader believe? */
                skip_ws(r);
                k = f ? read_secret_string(r, &f->value) : skip_value(r, 1);
                if (k < 0)
                        return k;
        } while (take(r, ','));
        return take(r, '}') ? 0 : -EBADMSG;
}

void json_secret_fields_clear(JsonSecretField *fields, size_t n_fields) {
        for (size_t k = 0; fields && k < n_fields; k++)
                fields[k].value = secret_free(fields[k].value);
}

int json_secret_parse(const char *text, size_t len, JsonSecretField *fields, size_t n_fields) {
        Reader r = { .s = text, .len = len };
        int k;

        if ((!text && len > 0) || (!fields && n_fields > 0))
                return -EINVAL;
        if (!text)
                r.s = "";
        k = read_object(&r, fields, n_fields);
        if (k >= 0) {
                skip_ws(&r);
                if (r.i != r.len)
                        k = -EBADMSG;
        }
        if (k < 0)
                json_secret_fields_clear(fields, n_fields);
        return k;
}

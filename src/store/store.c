/* SPDX-License-Identifier: MIT */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>

#include "basic/fileio.h"
#include "basic/util.h"

/*
 * The payload (what is sealed) is a hand-rolled, length-prefixed binary
 * format rather than JSON: a JSON library copies every string it parses
 * or prints into ordinary heap, from where secrets leak into freed memory,
 * swap and core dumps. Here the whole plaintext is built and parsed inside
 * one sodium_malloc'd buffer, and each secret goes from there straight
 * into its own Secret. Every length read is checked against what remains
 * of its enclosing buffer before it is used.
 *
 * Payload, format version 2 (integers little-endian; version 1 is the
 * same without tags 12-14 and 19-21, and is read as such):
 *
 *   payload := u32 n_users, record * n_users   (records in strictly
 *                                               ascending byte order of name)
 *   record  := u32 len, field*                 (fields fill exactly len bytes)
 *   field   := u8 tag, u32 len, value[len]     (each tag at most once)
 *
 *   tag  field          value
 *     1  name           bytes, 1..STORE_USER_NAME_MAX, no control chars (required)
 *     2  phase          u32 < _STORE_PHASE_MAX
 *     3  rotation_id    bytes, <= 36, no NUL
 *     4  trigger        bytes, <= 15, no NUL
 *     5  phase_since    i64
 *     6  grace_until    i64
 *     7  failures       u32
 *     8  next_attempt   i64
 *     9  last_rotation  i64
 *    10  last_error     bytes, <= STORE_TEXT_MAX, no NUL (absent = NULL)
 *    11  last_result    bytes, <= STORE_TEXT_MAX, no NUL (absent = NULL)
 *    12  distributed_at i64 (version 2; absent = 0)
 *    13  drain_next     i64 (version 2; absent = 0)
 *    14  drain_warnings u32 (version 2; absent = 0)
 *    16  current key    key value (absent = no key)
 *    17  pending key    key value
 *    18  previous key   key value
 *    19  current key's handed_out_until   i64 (version 2; absent = 0)
 *    20  pending key's handed_out_until   i64 (version 2; absent = 0)
 *    21  previous key's handed_out_until  i64 (version 2; absent = 0)
 *
 *   key value := i64 create_date, u16 id_len, id[id_len] (1..128, no NUL),
 *                u8 has_secret (0/1), u32 secret_len, secret[secret_len]
 *                (secret_len <= STORE_SECRET_MAX, 0 unless has_secret)
 *
 * An unknown tag is corruption, not something to skip: an older keyrotd
 * that dropped a field it did not understand would lose it on its next
 * commit. New fields come with a new format version.
 */

#define HEADER_SIZE 56u
#define OFF_VERSION 8u
#define OFF_FLAGS 12u
#define OFF_GENERATION 16u
#define OFF_KEYCHECK 24u
#define OFF_NONCE 32u
#define KEYCHECK_SIZE 8u
#define NONCE_SIZE crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_SIZE crypto_aead_xchacha20poly1305_ietf_ABYTES

static const uint8_t store_magic[8] = { 'K', 'E', 'Y', 'R', 'O', 'T', 'D', 0 };
static const char keycheck_context[] = "keyrotd store key check v1";

_Static_assert(OFF_NONCE + NONCE_SIZE == HEADER_SIZE, "header layout");
_Static_assert(STORE_KEY_SIZE == crypto_aead_xchacha20poly1305_ietf_KEYBYTES, "key size");

enum {
        TAG_NAME = 1,
        TAG_PHASE = 2,
        TAG_ROTATION_ID = 3,
        TAG_TRIGGER = 4,
        TAG_PHASE_SINCE = 5,
        TAG_GRACE_UNTIL = 6,
        TAG_FAILURES = 7,
        TAG_NEXT_ATTEMPT = 8,
        TAG_LAST_ROTATION = 9,
        TAG_LAST_ERROR = 10,
        TAG_LAST_RESULT = 11,
        TAG_DISTRIBUTED_AT = 12,
        TAG_DRAIN_NEXT = 13,
        TAG_DRAIN_WARNINGS = 14,
        TAG_KEY_CURRENT = 16,
        TAG_KEY_PENDING = 17,
        TAG_KEY_PREVIOUS = 18,
        TAG_CURRENT_HANDED_OUT = 19,
        TAG_PENDING_HANDED_OUT = 20,
        TAG_PREVIOUS_HANDED_OUT = 21,
        _TAG_LIMIT = 32,
};

/* Smallest possible record: its length, and a one-byte name field. */
#define RECORD_MIN (4u + 5u + 1u)

struct Store {
        char *path;
        char *key_path; /* for messages only */
        Secret *key;
        uint8_t keycheck[KEYCHECK_SIZE];
        uint64_t generation;
        StoreUser **users; /* sorted by strcmp() of name */
        size_t n_users, n_allocated;
        /* Plaintext of the next commit, kept between commits (wiped after
         * each): a fresh guarded sodium_malloc per commit cost ten system
         * calls, a quarter of a commit's. */
        Secret *scratch;

        /* Snapshots are numbered as they are taken; writes (possibly on
         * another thread) are serialised by write_lock, and one older than
         * the newest durable one is skipped: that one holds all it had. */
        uint64_t last_snapshot;
        pthread_mutex_t write_lock;
        uint64_t durable; /* under write_lock */
};

struct StoreSnapshot {
        uint64_t generation;
        uint8_t *data; /* sealed: header, ciphertext, tag */
        size_t len;
};

static const char *const phase_table[_STORE_PHASE_MAX] = {
        [STORE_PHASE_IDLE] = "idle",
        [STORE_PHASE_CREATING] = "creating",
        [STORE_PHASE_PENDING] = "pending",
        [STORE_PHASE_VERIFIED] = "verified",
        [STORE_PHASE_DISTRIBUTED] = "distributed",
        [STORE_PHASE_NOTIFIED] = "notified",
        [STORE_PHASE_DEACTIVATED] = "deactivated",
        [STORE_PHASE_ROLLING_BACK] = "rolling-back",
};

const char *store_phase_to_string(StorePhase p) {
        if ((unsigned) p >= _STORE_PHASE_MAX)
                return NULL;
        return phase_table[p];
}

int store_phase_from_string(const char *s) {
        if (!s)
                return -EINVAL;
        for (unsigned i = 0; i < _STORE_PHASE_MAX; i++)
                if (streq(phase_table[i], s))
                        return (int) i;
        return -EINVAL;
}

/* ---- keys and users ---------------------------------------------------- */

void store_key_clear(StoreKey *k) {
        if (!k)
                return;
        k->secret = secret_free(k->secret);
        sodium_memzero(k->access_key_id, sizeof(k->access_key_id));
        k->create_date = 0;
        k->handed_out_until = 0;
}

void store_key_move(StoreKey *dst, StoreKey *src) {
        if (dst == src)
                return;
        store_key_clear(dst);
        *dst = *src;
        src->secret = NULL;
        store_key_clear(src);
}

int store_key_set(StoreKey *k, const char *id, const char *secret, size_t len, int64_t created) {
        Secret *s = NULL;
        size_t id_len;

        if (!k || !id)
                return -EINVAL;
        id_len = strnlen(id, STORE_ACCESS_KEY_ID_MAX + 1);
        if (id_len == 0 || id_len > STORE_ACCESS_KEY_ID_MAX)
                return -EINVAL;
        if (len > STORE_SECRET_MAX || (!secret && len > 0))
                return -EINVAL;
        if (secret) {
                s = secret_dup(secret, len);
                if (!s)
                        return -ENOMEM;
        }
        store_key_clear(k);
        memcpy(k->access_key_id, id, id_len);
        k->secret = s;
        k->create_date = created;
        return 0;
}

int store_set_text(char **field, const char *text) {
        char *n = NULL;

        if (text) {
                n = strndup(text, STORE_TEXT_MAX);
                if (!n)
                        return -ENOMEM;
        }
        free(*field);
        *field = n;
        return 0;
}

static StoreUser *user_free(StoreUser *u) {
        if (!u)
                return NULL;
        free(u->name);
        store_key_clear(&u->current);
        store_key_clear(&u->pending);
        store_key_clear(&u->previous);
        free(u->last_error);
        free(u->last_result);
        free(u);
        return NULL;
}

static void users_free(StoreUser **users, size_t n) {
        for (size_t i = 0; i < n; i++)
                user_free(users[i]);
        free(users);
}

static bool valid_name(const char *p, size_t len) {
        if (len == 0 || len > STORE_USER_NAME_MAX)
                return false;
        for (size_t i = 0; i < len; i++)
                if ((unsigned char) p[i] < 0x20 || p[i] == 0x7f)
                        return false;
        return true;
}

/* Index of @name, or of where it would be inserted (*found = false). */
static size_t user_search(const Store *s, const char *name, bool *found) {
        size_t lo = 0, hi = s->n_users;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = strcmp(s->users[mid]->name, name);

                if (c == 0) {
                        *found = true;
                        return mid;
                }
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        *found = false;
        return lo;
}

size_t store_n_users(const Store *s) {
        return s ? s->n_users : 0;
}

StoreUser *store_user_at(const Store *s, size_t i) {
        return s && i < s->n_users ? s->users[i] : NULL;
}

StoreUser *store_get_user(const Store *s, const char *name) {
        bool found;
        size_t i;

        if (!s || !name)
                return NULL;
        i = user_search(s, name, &found);
        return found ? s->users[i] : NULL;
}

int store_add_user(Store *s, const char *name, StoreUser **ret) {
        StoreUser *u;
        bool found;
        size_t i;

        if (!s || !name || !valid_name(name, strnlen(name, STORE_USER_NAME_MAX + 1)))
                return -EINVAL;
        i = user_search(s, name, &found);
        if (found)
                return -EEXIST;
        if (s->n_users == s->n_allocated) {
                size_t n = s->n_allocated < 16 ? 16 : s->n_allocated * 2;
                StoreUser **a = reallocarray(s->users, n, sizeof(*a));
                if (!a)
                        return -ENOMEM;
                s->users = a;
                s->n_allocated = n;
        }
        u = calloc(1, sizeof(*u));
        if (!u)
                return -ENOMEM;
        u->name = strdup(name);
        if (!u->name) {
                free(u);
                return -ENOMEM;
        }
        u->phase = STORE_PHASE_IDLE;
        memmove(s->users + i + 1, s->users + i, (s->n_users - i) * sizeof(*s->users));
        s->users[i] = u;
        s->n_users++;
        if (ret)
                *ret = u;
        return 0;
}

int store_remove_user(Store *s, const char *name) {
        bool found;
        size_t i;

        if (!s || !name)
                return -EINVAL;
        i = user_search(s, name, &found);
        if (!found)
                return -ENOENT;
        user_free(s->users[i]);
        memmove(s->users + i, s->users + i + 1, (s->n_users - i - 1) * sizeof(*s->users));
        s->n_users--;
        return 0;
}

/* ---- serialisation ----------------------------------------------------- */

/* With p == NULL only counts, so the same code sizes the buffer first. */
typedef struct Writer {
        uint8_t *p;
        size_t len, cap;
        bool overflow;
} Writer;

static void put_bytes(Writer *w, const void *v, size_t n) {
        if (w->p) {
                if (n > w->cap - w->len) {
                        w->overflow = true;
                        return;
                }
                if (n > 0)
                        memcpy(w->p + w->len, v, n);
        }
        w->len += n;
}

static void put_le(Writer *w, uint64_t v, unsigned n) {
        uint8_t b[8];

        for (unsigned i = 0; i < n; i++)
                b[i] = (uint8_t) (v >> (8 * i));
        put_bytes(w, b, n);
}

static void put_field(Writer *w, unsigned tag, size_t len) {
        put_le(w, tag, 1);
        put_le(w, len, 4);
}

static void put_u32_field(Writer *w, unsigned tag, uint32_t v) {
        put_field(w, tag, 4);
        put_le(w, v, 4);
}

static void put_i64_field(Writer *w, unsigned tag, int64_t v) {
        put_field(w, tag, 8);
        put_le(w, (uint64_t) v, 8);
}

static void put_str_field(Writer *w, unsigned tag, const char *s, size_t max) {
        size_t n = strnlen(s, max);

        put_field(w, tag, n);
        put_bytes(w, s, n);
}

static void put_key_field(Writer *w, unsigned tag, const StoreKey *k) {
        size_t id_len = strnlen(k->access_key_id, STORE_ACCESS_KEY_ID_MAX);
        size_t secret_len = k->secret ? k->secret->len : 0;

        if (id_len == 0)
                return;
        put_field(w, tag, 8 + 2 + id_len + 1 + 4 + secret_len);
        put_le(w, (uint64_t) k->create_date, 8);
        put_le(w, id_len, 2);
        put_bytes(w, k->access_key_id, id_len);
        put_le(w, k->secret ? 1 : 0, 1);
        put_le(w, secret_len, 4);
        if (k->secret)
                put_bytes(w, k->secret->data, secret_len);
}

static void put_user(Writer *w, const StoreUser *u) {
        size_t start = w->len;

        put_le(w, 0, 4); /* record length, patched below */
        put_str_field(w, TAG_NAME, u->name, STORE_USER_NAME_MAX);
        put_u32_field(w, TAG_PHASE, (uint32_t) u->phase);
        put_str_field(w, TAG_ROTATION_ID, u->rotation_id, sizeof(u->rotation_id) - 1);
        put_str_field(w, TAG_TRIGGER, u->trigger, sizeof(u->trigger) - 1);
        put_i64_field(w, TAG_PHASE_SINCE, u->phase_since);
        put_i64_field(w, TAG_GRACE_UNTIL, u->grace_until);
        put_u32_field(w, TAG_FAILURES, u->failures);
        put_i64_field(w, TAG_NEXT_ATTEMPT, u->next_attempt);
        put_i64_field(w, TAG_LAST_ROTATION, u->last_rotation);
        if (u->last_error)
                put_str_field(w, TAG_LAST_ERROR, u->last_error, STORE_TEXT_MAX);
        if (u->last_result)
                put_str_field(w, TAG_LAST_RESULT, u->last_result, STORE_TEXT_MAX);
        put_key_field(w, TAG_KEY_CURRENT, &u->current);
        put_key_field(w, TAG_KEY_PENDING, &u->pending);
        put_key_field(w, TAG_KEY_PREVIOUS, &u->previous);
        /* The fields of version 2, only when set. */
        if (u->distributed_at)
                put_i64_field(w, TAG_DISTRIBUTED_AT, u->distributed_at);
        if (u->drain_next)
                put_i64_field(w, TAG_DRAIN_NEXT, u->drain_next);
        if (u->drain_warnings)
                put_u32_field(w, TAG_DRAIN_WARNINGS, u->drain_warnings);
        if (u->current.handed_out_until)
                put_i64_field(w, TAG_CURRENT_HANDED_OUT, u->current.handed_out_until);
        if (u->pending.handed_out_until)
                put_i64_field(w, TAG_PENDING_HANDED_OUT, u->pending.handed_out_until);
        if (u->previous.handed_out_until)
                put_i64_field(w, TAG_PREVIOUS_HANDED_OUT, u->previous.handed_out_until);

        if (w->p && !w->overflow) {
                size_t n = w->len - start - 4;
                for (unsigned i = 0; i < 4; i++)
                        w->p[start + i] = (uint8_t) (n >> (8 * i));
        }
}

static void put_payload(Writer *w, const Store *s) {
        put_le(w, s->n_users, 4);
        for (size_t i = 0; i < s->n_users; i++)
                put_user(w, s->users[i]);
}

/* ---- parsing ----------------------------------------------------------- */

typedef struct Reader {
        const uint8_t *p;
        size_t left;
} Reader;

static bool get_bytes(Reader *r, size_t n, const uint8_t **ret) {
        if (n > r->left)
                return false;
        *ret = r->p;
        r->p += n;
        r->left -= n;
        return true;
}

static bool get_le(Reader *r, unsigned n, uint64_t *ret) {
        const uint8_t *b;
        uint64_t v = 0;

        if (!get_bytes(r, n, &b))
                return false;
        for (unsigned i = 0; i < n; i++)
                v |= (uint64_t) b[i] << (8 * i);
        *ret = v;
        return true;
}

static uint64_t load_le(const uint8_t *b, unsigned n) {
        uint64_t v = 0;

        for (unsigned i = 0; i < n; i++)
                v |= (uint64_t) b[i] << (8 * i);
        return v;
}

/* A string field: at most max bytes, no NUL, copied into @dst (max+1). */
static bool get_str(Reader *v, char *dst, size_t max) {
        if (v->left > max || memchr(v->p, 0, v->left))
                return false;
        memcpy(dst, v->p, v->left);
        dst[v->left] = 0;
        return true;
}

static int get_text(Reader *v, char **ret) {
        if (v->left > STORE_TEXT_MAX || memchr(v->p, 0, v->left))
                return -EBADMSG;
        *ret = strndup((const char *) v->p, v->left);
        return *ret ? 0 : -ENOMEM;
}

static int get_key(Reader *v, StoreKey *k) {
        uint64_t created, id_len, has_secret, secret_len;
        const uint8_t *id, *secret;

        if (!get_le(v, 8, &created) || !get_le(v, 2, &id_len) || id_len == 0 ||
            id_len > STORE_ACCESS_KEY_ID_MAX || !get_bytes(v, id_len, &id) || memchr(id, 0, id_len) ||
            !get_le(v, 1, &has_secret) || has_secret > 1 || !get_le(v, 4, &secret_len) ||
            secret_len > STORE_SECRET_MAX || (!has_secret && secret_len > 0) ||
            !get_bytes(v, secret_len, &secret) || v->left != 0)
                return -EBADMSG;
        memcpy(k->access_key_id, id, id_len);
        k->access_key_id[id_len] = 0;
        k->create_date = (int64_t) created;
        if (has_secret) {
                k->secret = secret_dup(secret, secret_len);
                if (!k->secret)
                        return -ENOMEM;
        }
        return 0;
}

static int get_user(Reader *rec, StoreUser **ret) {
        StoreUser *u;
        uint32_t seen = 0;
        int r = 0;

        u = calloc(1, sizeof(*u));
        if (!u)
                return -ENOMEM;

        while (rec->left > 0 && r == 0) {
                uint64_t tag, len, x;
                const uint8_t *val;
                Reader v;

                if (!get_le(rec, 1, &tag) || !get_le(rec, 4, &len) || !get_bytes(rec, len, &val) ||
                    tag >= _TAG_LIMIT || (seen & (UINT32_C(1) << tag))) {
                        r = -EBADMSG;
                        break;
                }
                seen |= UINT32_C(1) << tag;
                v = (Reader){ val, len };

                switch (tag) {
                case TAG_NAME:
                        if (!valid_name((const char *) val, len))
                                r = -EBADMSG;
                        else if (!(u->name = strndup((const char *) val, len)))
                                r = -ENOMEM;
                        break;
                case TAG_PHASE:
                        if (len != 4 || !get_le(&v, 4, &x) || x >= _STORE_PHASE_MAX)
                                r = -EBADMSG;
                        else
                                u->phase = (StorePhase) x;
                        break;
                case TAG_ROTATION_ID:
                        if (!get_str(&v, u->rotation_id, sizeof(u->rotation_id) - 1))
                                r = -EBADMSG;
                        break;
                case TAG_TRIGGER:
                        if (!get_str(&v, u->trigger, sizeof(u->trigger) - 1))
                                r = -EBADMSG;
                        break;
                case TAG_FAILURES:
                case TAG_DRAIN_WARNINGS:
                        if (len != 4 || !get_le(&v, 4, &x))
                                r = -EBADMSG;
                        else
                                *(tag == TAG_FAILURES ? &u->failures : &u->drain_warnings) = (uint32_t) x;
                        break;
                case TAG_PHASE_SINCE:
                case TAG_GRACE_UNTIL:
                case TAG_NEXT_ATTEMPT:
                case TAG_LAST_ROTATION:
                case TAG_DISTRIBUTED_AT:
                case TAG_DRAIN_NEXT:
                case TAG_CURRENT_HANDED_OUT:
                case TAG_PENDING_HANDED_OUT:
                case TAG_PREVIOUS_HANDED_OUT: {
                        int64_t *dst = tag == TAG_PHASE_SINCE          ? &u->phase_since
                                       : tag == TAG_GRACE_UNTIL        ? &u->grace_until
                                       : tag == TAG_NEXT_ATTEMPT       ? &u->next_attempt
                                       : tag == TAG_LAST_ROTATION      ? &u->last_rotation
                                       : tag == TAG_DISTRIBUTED_AT     ? &u->distributed_at
                                       : tag == TAG_DRAIN_NEXT         ? &u->drain_next
                                       : tag == TAG_CURRENT_HANDED_OUT ? &u->current.handed_out_until
                                       : tag == TAG_PENDING_HANDED_OUT ? &u->pending.handed_out_until
                                                                       : &u->previous.handed_out_until;
                        if (len != 8 || !get_le(&v, 8, &x))
                                r = -EBADMSG;
                        else
                                *dst = (int64_t) x;
                        break;
                }
                case TAG_LAST_ERROR:
                        r = get_text(&v, &u->last_error);
                        break;
                case TAG_LAST_RESULT:
                        r = get_text(&v, &u->last_result);
                        break;
                case TAG_KEY_CURRENT:
                        r = get_key(&v, &u->current);
                        break;
                case TAG_KEY_PENDING:
                        r = get_key(&v, &u->pending);
                        break;
                case TAG_KEY_PREVIOUS:
                        r = get_key(&v, &u->previous);
                        break;
                default:
                        r = -EBADMSG;
                }
        }
        if (r == 0 && !u->name)
                r = -EBADMSG;
        if (r < 0) {
                user_free(u);
                return r;
        }
        *ret = u;
        return 0;
}

static int parse_payload(const uint8_t *p, size_t len, StoreUser ***ret_users, size_t *ret_n,
                         size_t *ret_bad_record) {
        Reader rd = { p, len };
        StoreUser **users = NULL;
        uint64_t n, rec_len;
        size_t i;
        int r = 0;

        *ret_bad_record = SIZE_MAX;
        if (!get_le(&rd, 4, &n) || n > rd.left / RECORD_MIN)
                return -EBADMSG;
        if (n > 0) {
                users = calloc((size_t) n, sizeof(*users));
                if (!users)
                        return -ENOMEM;
        }
        for (i = 0; i < n; i++) {
                const uint8_t *rp;
                Reader rec;

                if (!get_le(&rd, 4, &rec_len) || !get_bytes(&rd, rec_len, &rp)) {
                        r = -EBADMSG;
                        break;
                }
                rec = (Reader){ rp, rec_len };
                r = get_user(&rec, &users[i]);
                if (r < 0)
                        break;
                /* Strictly ascending: sorted for lookups, and no duplicates. */
                if (i > 0 && strcmp(users[i - 1]->name, users[i]->name) >= 0) {
                        r = -EBADMSG;
                        break;
                }
        }
        if (r == 0 && rd.left != 0)
                r = -EBADMSG;
        if (r < 0) {
                /* calloc'd: slots never filled are NULL. */
                users_free(users, (size_t) n);
                *ret_bad_record = i;
                return r;
        }
        *ret_users = users;
        *ret_n = (size_t) n;
        return 0;
}

/* ---- sealing ----------------------------------------------------------- */

static int compute_keycheck(const Secret *key, uint8_t out[KEYCHECK_SIZE]) {
        uint8_t h[crypto_generichash_BYTES_MIN];

        if (crypto_generichash(h, sizeof(h), (const uint8_t *) keycheck_context, strlen(keycheck_context),
                               (const uint8_t *) key->data, key->len) < 0)
                return -EIO;
        memcpy(out, h, KEYCHECK_SIZE);
        return 0;
}

/* Verify and decrypt the whole file in @raw into users. */
static int unseal(const Store *s, const uint8_t *raw, size_t len, StoreUser ***ret_users, size_t *ret_n,
                  uint64_t *ret_generation, char **ret_error) {
        _cleanup_secret_ Secret *pt = NULL;
        unsigned long long pt_len;
        size_t bad_record;
        uint64_t version;
        int r;

        if (len < OFF_VERSION + 4 || memcmp(raw, store_magic, sizeof(store_magic)) != 0) {
                set_error(ret_error, "Store %s is corrupt or was tampered with (%s)", s->path,
                          len < OFF_VERSION + 4 ? "truncated header" : "not a keyrotd store");
                return -EBADMSG;
        }
        /* The version decides what the rest means, so it is read before
         * anything else is judged, and before the tag can be checked. */
        version = load_le(raw + OFF_VERSION, 4);
        if (version > STORE_FORMAT_VERSION) {
                set_error(ret_error,
                          "Store %s: store format version %" PRIu64
                          " is newer than this keyrotd (which reads versions up to %u); refusing to touch it",
                          s->path, version, STORE_FORMAT_VERSION);
                return -EPROTONOSUPPORT;
        }
        if (version == 0 || len < HEADER_SIZE + TAG_SIZE || load_le(raw + OFF_FLAGS, 4) != 0) {
                set_error(ret_error, "Store %s is corrupt or was tampered with (%s)", s->path,
                          version == 0 ? "bad version" : len < HEADER_SIZE + TAG_SIZE ? "truncated" : "bad flags");
                return -EBADMSG;
        }
        /* Tell "wrong key file" apart from "damaged store" for the
         * operator; both are refused. */
        if (sodium_memcmp(raw + OFF_KEYCHECK, s->keycheck, KEYCHECK_SIZE) != 0) {
                set_error(ret_error, "Store %s was sealed with a different master key than %s", s->path,
                          s->key_path);
                return -EKEYREJECTED;
        }

        pt = secret_new(len - HEADER_SIZE - TAG_SIZE);
        if (!pt)
                return -ENOMEM;
        /* The header is the additional data: magic, version, flags,
         * generation and key check are authenticated along with the
         * ciphertext, so no byte of the file can change unnoticed. */
        if (crypto_aead_xchacha20poly1305_ietf_decrypt((uint8_t *) pt->data, &pt_len, NULL, raw + HEADER_SIZE,
                                                       len - HEADER_SIZE, raw, HEADER_SIZE, raw + OFF_NONCE,
                                                       (const uint8_t *) s->key->data) != 0) {
                set_error(ret_error, "Store %s is corrupt or was tampered with (authentication failed)", s->path);
                return -EBADMSG;
        }
        pt->len = (size_t) pt_len;

        r = parse_payload((const uint8_t *) pt->data, pt->len, ret_users, ret_n, &bad_record);
        if (r == -EBADMSG) {
                /* Authentic but unparsable: a bug, not an attacker. */
                set_error(ret_error, "Store %s is corrupt or was tampered with (invalid record %zu)", s->path,
                          bad_record);
                return r;
        }
        if (r < 0)
                return r;
        *ret_generation = load_le(raw + OFF_GENERATION, 8);
        return 0;
}

/*
 * Who may own the store and its key besides root: keyrotd's user, the
 * effective uid. Root runs keyrotd --once and keyrotctl beside the
 * service; for root, keyrotd's user is the owner of the store's directory
 * (StateDirectory= gives it to the service's User=), the user root hands
 * a store it writes there to (inherit_owner()). Whoever owns that
 * directory can replace the store anyway.
 */
static uid_t service_uid(const char *store_path) {
        uid_t uid;
        gid_t gid;

        if (geteuid() != 0)
                return geteuid();
        inherit_owner(store_path, &uid, &gid);
        return uid == (uid_t) -1 ? 0 : uid;
}

/*
 * Open @path for reading if it is fit to hold a secret
 * (check_private_file(): no group or other bit, owned by root or
 * @service, whoever runs keyrotd), judged by the descriptor that is then
 * read. Returns the descriptor or -errno.
 */
static int open_private(const char *path, uid_t service, bool nofollow, char **ret_error) {
        _cleanup_close_ int fd = -1;
        int r;

        /* O_NONBLOCK: a FIFO at the path must not hang us; reading it
         * refuses anything but a regular file. */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (nofollow ? O_NOFOLLOW : 0));
        if (fd < 0) {
                r = -errno;
                if (r == -ELOOP && nofollow)
                        set_error(ret_error, "%s is a symbolic link, refusing to follow it", path);
                else
                        set_error(ret_error, "Cannot open %s: %s", path, strerror(-r));
                return r;
        }
        r = check_private_file(fd, path, service, ret_error);
        if (r < 0)
                return r;
        return TAKE_FD(fd);
}

static int load(const Store *s, StoreUser ***ret_users, size_t *ret_n, uint64_t *ret_generation,
                char **ret_error) {
        _cleanup_free_ uint8_t *raw = NULL;
        _cleanup_close_ int fd = -1;
        size_t len;
        int r;

        /* The store is refused, like the key, if anyone else could read
         * or replace it; a symlink is refused because a commit would
         * replace the link, silently forking the store. */
        fd = open_private(s->path, service_uid(s->path), true, ret_error);
        r = fd < 0 ? fd : read_file_bounded(fd, "", STORE_FILE_MAX, 0, &raw, &len, NULL);
        if (r < 0 && fd >= 0)
                set_error(ret_error, "Cannot read %s: %s", s->path, strerror(-r));
        if (r == -ENOENT) {
                _cleanup_free_ char *copy = strdup(s->path);
                struct stat st;

                if (!copy)
                        return -ENOMEM;
                /* First run: no file yet is an empty store, but only in a
                 * directory that exists, or the first commit would fail. */
                if (stat(dirname(copy), &st) < 0 || !S_ISDIR(st.st_mode)) {
                        set_error(ret_error, "Directory of store %s does not exist", s->path);
                        return -ENOENT;
                }
                if (ret_error) {
                        free(*ret_error);
                        *ret_error = NULL;
                }
                *ret_users = NULL;
                *ret_n = 0;
                *ret_generation = 0;
                return 0;
        }
        if (r < 0)
                return r;
        return unseal(s, raw, len, ret_users, ret_n, ret_generation, ret_error);
}

static int load_key(const char *key_path, uid_t service, Secret **ret, char **ret_error) {
        _cleanup_secret_ Secret *key = NULL;
        _cleanup_close_ int fd = -1;
        int r;

        fd = open_private(key_path, service, false, ret_error);
        r = fd < 0 ? fd : read_file_secure(fd, "", STORE_KEY_SIZE, 0, &key, NULL);
        if (r < 0 && r != -E2BIG && fd >= 0)
                set_error(ret_error, "Cannot read %s: %s", key_path, strerror(-r));
        if (r == -E2BIG || (r == 0 && key->len != STORE_KEY_SIZE)) {
                set_error(ret_error, "Key file %s must hold exactly %u bytes (create one with keyrotctl init-store)",
                          key_path, STORE_KEY_SIZE);
                return -EINVAL;
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(key);
        return 0;
}

int store_key_generate(const char *path) {
        _cleanup_secret_ Secret *key = NULL;
        WriteOptions o = WRITE_OPTIONS_INIT;

        if (!path)
                return -EINVAL;
        if (secret_init() < 0)
                return -EIO;
        key = secret_new(STORE_KEY_SIZE);
        if (!key)
                return -ENOMEM;
        randombytes_buf(key->data, STORE_KEY_SIZE);
        key->len = STORE_KEY_SIZE;

        /* 0600 from the first byte, never over an existing key (that
         * would make every store sealed with it unreadable), and synced:
         * a key lost in a crash loses the store with it. */
        o.mode = 0600;
        o.no_replace = true;
        o.refuse_symlink = true;
        o.sync = true;
        return write_file_atomic(AT_FDCWD, path, key->data, key->len, &o);
}

Store *store_free(Store *s) {
        if (!s)
                return NULL;
        users_free(s->users, s->n_users);
        secret_free(s->key);
        secret_free(s->scratch);
        pthread_mutex_destroy(&s->write_lock);
        free(s->key_path);
        free(s->path);
        free(s);
        return NULL;
}

int store_open(const char *path, const char *key_path, Store **ret, char **ret_error) {
        _cleanup_store_ Store *s = NULL;
        int r;

        if (!path || !key_path || !ret)
                return -EINVAL;
        if (secret_init() < 0)
                return -EIO;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        pthread_mutex_init(&s->write_lock, NULL);
        s->path = strdup(path);
        s->key_path = strdup(key_path);
        if (!s->path || !s->key_path)
                return -ENOMEM;
        r = load_key(key_path, service_uid(path), &s->key, ret_error);
        if (r < 0)
                return r;
        r = compute_keycheck(s->key, s->keycheck);
        if (r < 0)
                return r;
        r = load(s, &s->users, &s->n_users, &s->generation, ret_error);
        if (r < 0)
                return r;
        s->n_allocated = s->n_users;
        s->last_snapshot = s->durable = s->generation;
        *ret = TAKE_PTR(s);
        return 0;
}

int store_reload(Store *s, char **ret_error) {
        StoreUser **users = NULL;
        uint64_t generation;
        size_t n;
        int r;

        if (!s)
                return -EINVAL;
        r = load(s, &users, &n, &generation, ret_error);
        if (r < 0)
                return r;
        users_free(s->users, s->n_users);
        s->users = users;
        s->n_users = s->n_allocated = n;
        s->generation = s->last_snapshot = generation;
        pthread_mutex_lock(&s->write_lock);
        s->durable = generation;
        pthread_mutex_unlock(&s->write_lock);
        return 0;
}

static void scratch_wipe(Secret **pt) {
        if (*pt) {
                sodium_memzero((*pt)->data, (*pt)->cap);
                (*pt)->len = 0;
        }
}

int store_snapshot(Store *s, StoreSnapshot **ret) {
        __attribute__((cleanup(scratch_wipe))) Secret *pt = NULL;
        _cleanup_free_ StoreSnapshot *snap = NULL;
        _cleanup_free_ uint8_t *out = NULL;
        Writer w = { .p = NULL };
        unsigned long long c_len;
        size_t out_len;
        uint64_t generation;

        if (!s || !ret)
                return -EINVAL;

        /* Size first, then serialise into secure memory: the plaintext is
         * never in ordinary heap, and a secret is never copied by a growing
         * buffer. */
        put_payload(&w, s);
        if (w.len > STORE_FILE_MAX - HEADER_SIZE - TAG_SIZE)
                return -E2BIG;
        if (!s->scratch || s->scratch->cap < w.len) {
                s->scratch = secret_free(s->scratch);
                /* Room to grow by a few users before the next reallocation. */
                s->scratch = secret_new(w.len + w.len / 8 + 4096);
                if (!s->scratch)
                        return -ENOMEM;
        }
        pt = s->scratch;
        w = (Writer){ .p = (uint8_t *) pt->data, .cap = w.len };
        put_payload(&w, s);
        pt->len = w.len;
        if (w.overflow || w.len != w.cap)
                return -EIO; /* the two passes disagree: cannot happen */

        snap = calloc(1, sizeof *snap);
        out_len = HEADER_SIZE + pt->len + TAG_SIZE;
        out = malloc(out_len);
        if (!snap || !out)
                return -ENOMEM;
        generation = s->last_snapshot + 1;
        memcpy(out, store_magic, sizeof(store_magic));
        for (unsigned i = 0; i < 4; i++) {
                out[OFF_VERSION + i] = (uint8_t) (STORE_FORMAT_VERSION >> (8 * i));
                out[OFF_FLAGS + i] = 0;
        }
        for (unsigned i = 0; i < 8; i++)
                out[OFF_GENERATION + i] = (uint8_t) (generation >> (8 * i));
        memcpy(out + OFF_KEYCHECK, s->keycheck, KEYCHECK_SIZE);
        /* A fresh random nonce per commit: XChaCha20's 192-bit nonce makes
         * random nonces safe for any number of commits under one key. */
        randombytes_buf(out + OFF_NONCE, NONCE_SIZE);

        if (crypto_aead_xchacha20poly1305_ietf_encrypt(out + HEADER_SIZE, &c_len, (const uint8_t *) pt->data,
                                                       pt->len, out, HEADER_SIZE, NULL, out + OFF_NONCE,
                                                       (const uint8_t *) s->key->data) != 0)
                return -EIO;
        if (c_len != pt->len + TAG_SIZE)
                return -EIO;

        s->last_snapshot = generation;
        snap->generation = generation;
        snap->data = TAKE_PTR(out);
        snap->len = out_len;
        *ret = TAKE_PTR(snap);
        return 0;
}

int store_snapshot_write(Store *s, const StoreSnapshot *snap) {
        WriteOptions o = WRITE_OPTIONS_INIT;
        int r = 0;

        if (!s || !snap)
                return -EINVAL;
        pthread_mutex_lock(&s->write_lock);
        if (snap->generation > s->durable) {
                o.mode = 0600;
                o.refuse_symlink = true;
                o.sync = true;
                inherit_owner(s->path, &o.uid, &o.gid);
                r = write_file_atomic(AT_FDCWD, s->path, snap->data, snap->len, &o);
                if (r >= 0)
                        s->durable = snap->generation;
        }
        pthread_mutex_unlock(&s->write_lock);
        return r;
}

int store_snapshot_done(Store *s, StoreSnapshot *snap, int result) {
        if (!s || !snap)
                return -EINVAL;
        if (result >= 0 && snap->generation > s->generation)
                s->generation = snap->generation;
        /* Nothing newer was taken: the next snapshot reuses the number, so
         * a failed commit leaves no gap. */
        if (result < 0 && snap->generation == s->last_snapshot)
                s->last_snapshot--;
        free(snap->data);
        free(snap);
        return result;
}

int store_commit(Store *s) {
        StoreSnapshot *snap = NULL;
        int r;

        r = store_snapshot(s, &snap);
        if (r < 0)
                return r;
        return store_snapshot_done(s, snap, store_snapshot_write(s, snap));
}

uint64_t store_generation(const Store *s) {
        return s ? s->generation : 0;
}

const char *store_path(const Store *s) {
        return s ? s->path : NULL;
}

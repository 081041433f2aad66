/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/fileio.h"
#include "basic/util.h"
#include "store/committer.h"
#include "store/store.h"
#include "tap.h"

static char tmpdir[64];
static char key_path[128], store_file[128];

/* A secret that must never appear in the sealed file. */
#define KNOWN_SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

static void skip(const char *why) {
        tap_n++;
        printf("ok %u # SKIP %s\n", tap_n, why);
        fflush(stdout);
}

static char *pathf(const char *name) {
        static char buf[4][PATH_MAX];
        static unsigned i;
        char *p = buf[i++ % 4];

        snprintf(p, PATH_MAX, "%s/%s", tmpdir, name);
        return p;
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *f) {
        (void) st;
        (void) flag;
        (void) f;
        return remove(p);
}

static int read_raw(const char *path, uint8_t **ret, size_t *ret_len) {
        return read_file_bounded(AT_FDCWD, path, STORE_FILE_MAX, 0, ret, ret_len, NULL);
}

static int write_raw(const char *path, const void *p, size_t len, mode_t mode) {
        WriteOptions o = WRITE_OPTIONS_INIT;

        o.mode = mode;
        o.sync = false;
        o.refuse_symlink = false;
        return write_file_atomic(AT_FDCWD, path, p, len, &o);
}

static int open_err(const char *path, const char *kpath, char **ret_error) {
        Store *s = NULL;
        int r = store_open(path, kpath, &s, ret_error);

        store_free(s);
        return r;
}

static int open_rc(const char *path, const char *kpath) {
        return open_err(path, kpath, NULL);
}

static bool key_eq(const StoreKey *a, const StoreKey *b) {
        return streq(a->access_key_id, b->access_key_id) && a->create_date == b->create_date &&
               secret_eq(a->secret, b->secret);
}

static bool user_eq(const StoreUser *a, const StoreUser *b) {
        return streq(a->name, b->name) && a->phase == b->phase && streq(a->rotation_id, b->rotation_id) &&
               streq(a->trigger, b->trigger) && key_eq(&a->current, &b->current) &&
               key_eq(&a->pending, &b->pending) && key_eq(&a->previous, &b->previous) &&
               a->phase_since == b->phase_since && a->grace_until == b->grace_until &&
               a->failures == b->failures && a->next_attempt == b->next_attempt &&
               a->last_rotation == b->last_rotation && streq_ptr(a->last_error, b->last_error) &&
               streq_ptr(a->last_result, b->last_result);
}

static bool stores_eq(const Store *a, const Store *b) {
        if (store_n_users(a) != store_n_users(b))
                return false;
        for (size_t i = 0; i < store_n_users(a); i++)
                if (!user_eq(store_user_at(a, i), store_user_at(b, i)))
                        return false;
        return true;
}

static void fill_user(StoreUser *u, unsigned i) {
        char id[64], secret[64];

        u->phase = (StorePhase) (i % _STORE_PHASE_MAX);
        snprintf(u->rotation_id, sizeof(u->rotation_id), "%08x-0000-4000-8000-%012x", i, i * 7u);
        snprintf(u->trigger, sizeof(u->trigger), "%s", i % 2 ? "schedule" : "socket");
        snprintf(id, sizeof(id), "AKIACUR%013u", i);
        snprintf(secret, sizeof(secret), "cur/%036u", i);
        store_key_set(&u->current, id, secret, 40, 1700000000000000 + (int64_t) i);
        snprintf(id, sizeof(id), "AKIAPEN%013u", i);
        snprintf(secret, sizeof(secret), "pen/%036u", i);
        store_key_set(&u->pending, id, secret, 40, 1700000001000000 + (int64_t) i);
        snprintf(id, sizeof(id), "AKIAPRE%013u", i);
        snprintf(secret, sizeof(secret), "pre/%036u", i);
        store_key_set(&u->previous, id, secret, 40, -(int64_t) i);
        u->phase_since = 1710000000000000 + i;
        u->grace_until = i % 3 ? 0 : INT64_MAX - i;
        u->failures = i % 5;
        u->next_attempt = INT64_MIN + i;
        u->last_rotation = 1690000000000000 + i;
        if (i % 4) {
                char t[80];
                snprintf(t, sizeof(t), "error %u: LimitExceeded\nsecond line", i);
                store_set_text(&u->last_error, t);
        }
        if (i % 3)
                store_set_text(&u->last_result, i % 2 ? "" : "rotated");
}

static void test_key_generate(void) {
        _cleanup_free_ uint8_t *a = NULL, *b = NULL;
        size_t alen = 0, blen = 0;
        struct stat st = { 0 };
        int r;

        r = store_key_generate(key_path);
        ok(r == 0, "store_key_generate creates the key (%d)", r);
        ok(stat(key_path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 32 && (st.st_mode & 07777) == 0600,
           "key file: regular, 32 bytes, 0600");
        read_raw(key_path, &a, &alen);
        r = store_key_generate(key_path);
        read_raw(key_path, &b, &blen);
        ok(r == -EEXIST, "store_key_generate refuses to overwrite (-EEXIST, got %d)", r);
        ok(alen == 32 && blen == 32 && memcmp(a, b, 32) == 0, "existing key unchanged");
        ok(store_key_generate(pathf("nodir/key")) == -ENOENT, "store_key_generate in a missing directory → -ENOENT");
        ok(symlink(pathf("elsewhere"), pathf("keylink")) == 0 && store_key_generate(pathf("keylink")) == -EEXIST &&
                   access(pathf("elsewhere"), F_OK) < 0,
           "store_key_generate refuses a dangling symlink, writes nothing through it");
        ok(store_key_generate(pathf("key2")) == 0, "a second, different key");
}

static void test_api(void) {
        _cleanup_store_ Store *s = NULL;
        _cleanup_free_ char *err = NULL;
        StoreUser *u = NULL, *v;
        int r;

        int p = 0;
        while (p < _STORE_PHASE_MAX && store_phase_to_string((StorePhase) p) &&
               store_phase_from_string(store_phase_to_string((StorePhase) p)) == p)
                p++;
        ok(p == _STORE_PHASE_MAX, "phase string table round-trips (%d of %d)", p, _STORE_PHASE_MAX);
        ok_eq_str(store_phase_to_string(STORE_PHASE_ROLLING_BACK), "rolling-back", "rolling-back phase name");
        ok(store_phase_to_string(_STORE_PHASE_MAX) == NULL && store_phase_from_string("bogus") == -EINVAL,
           "out-of-range phase and unknown name refused");

        r = store_open(pathf("api.sealed"), key_path, &s, &err);
        ok(r == 0 && s && store_n_users(s) == 0 && store_generation(s) == 0, "missing store file = empty store");
        ok(access(pathf("api.sealed"), F_OK) < 0, "opening does not create the file");

        ok(store_add_user(s, "carol", &u) == 0 && u && streq(u->name, "carol") && u->phase == STORE_PHASE_IDLE,
           "add user");
        ok(store_add_user(s, "alice", NULL) == 0 && store_add_user(s, "bob", NULL) == 0, "add two more");
        ok(store_add_user(s, "bob", NULL) == -EEXIST, "duplicate user → -EEXIST");
        ok(store_add_user(s, "", NULL) == -EINVAL && store_add_user(s, "a\nb", NULL) == -EINVAL,
           "empty name or control character → -EINVAL");
        char longname[STORE_USER_NAME_MAX + 2];
        memset(longname, 'x', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = 0;
        ok(store_add_user(s, longname, NULL) == -EINVAL, "over-long name → -EINVAL");
        longname[STORE_USER_NAME_MAX] = 0;
        ok(store_add_user(s, longname, NULL) == 0, "name of exactly STORE_USER_NAME_MAX accepted");

        const char *order[] = { "alice", "bob", "carol", longname };
        size_t i = 0;
        bool sorted = true;
        STORE_FOREACH_USER(v, s)
                sorted = sorted && i < ELEMENTSOF(order) && streq(v->name, order[i++]);
        ok(sorted && i == 4 && store_n_users(s) == 4, "iteration in name order");
        ok(store_get_user(s, "bob") && streq(store_get_user(s, "bob")->name, "bob") && !store_get_user(s, "dave"),
           "lookup by name");
        ok(store_remove_user(s, "bob") == 0 && !store_get_user(s, "bob") && store_n_users(s) == 3,
           "remove user");
        ok(store_remove_user(s, "bob") == -ENOENT, "removing an absent user → -ENOENT");

        /* Key helpers. */
        StoreKey a = { .access_key_id = "" }, b = { .access_key_id = "" };
        char longid[STORE_ACCESS_KEY_ID_MAX + 2];
        memset(longid, 'A', sizeof(longid) - 1);
        longid[sizeof(longid) - 1] = 0;
        ok(store_key_set(&a, "AKIA1", "s3cr3t", 6, 42) == 0 && store_key_is_set(&a) && a.secret &&
                   a.secret->len == 6 && streq(a.secret->data, "s3cr3t") && a.create_date == 42,
           "store_key_set");
        ok(store_key_set(&a, "", "x", 1, 0) == -EINVAL && store_key_set(&a, longid, "x", 1, 0) == -EINVAL &&
                   streq(a.access_key_id, "AKIA1"),
           "store_key_set refuses bad ids and leaves the key unchanged");
        ok(store_key_set(&a, "AKIA1", "x", STORE_SECRET_MAX + 1, 0) == -EINVAL, "over-long secret refused");
        store_key_move(&b, &a);
        ok(!store_key_is_set(&a) && !a.secret && streq(b.access_key_id, "AKIA1") && b.secret &&
                   streq(b.secret->data, "s3cr3t"),
           "store_key_move moves and empties the source");
        store_key_move(&b, &b);
        ok(streq(b.access_key_id, "AKIA1") && b.secret, "store_key_move onto itself is harmless");
        ok(store_key_set(&b, "AKIA2", NULL, 0, 7) == 0 && !b.secret && streq(b.access_key_id, "AKIA2"),
           "a key without a held secret");
        store_key_clear(&b);
        ok(!store_key_is_set(&b) && !b.secret && b.create_date == 0, "store_key_clear");

        char *text = NULL;
        char big[STORE_TEXT_MAX + 100];
        memset(big, 'e', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        ok(store_set_text(&text, big) == 0 && strlen(text) == STORE_TEXT_MAX, "store_set_text cuts long text");
        ok(store_set_text(&text, NULL) == 0 && !text, "store_set_text(NULL) clears");
}

static void test_roundtrip(void) {
        _cleanup_store_ Store *s = NULL, *t = NULL;
        _cleanup_free_ char *err = NULL;
        _cleanup_free_ uint8_t *raw = NULL;
        size_t raw_len = 0;
        StoreUser *u;
        struct stat st = { 0 };
        int r;

        r = store_open(store_file, key_path, &s, &err);
        ok(r == 0, "open empty store (%d %s)", r, err ? err : "");
        if (r < 0)
                return;

        /* Every field set, extremes included. */
        store_add_user(s, "backup-bot", &u);
        u->phase = STORE_PHASE_DEACTIVATED;
        strcpy(u->rotation_id, "0f8fad5b-d9cb-469f-a165-70867728950e");
        strcpy(u->trigger, "recovery");
        store_key_set(&u->current, "AKIAIOSFODNN7EXAMPLE", KNOWN_SECRET, strlen(KNOWN_SECRET), 1700000000123456);
        store_key_set(&u->previous, "AKIAOLDOLDOLDOLDOLD1", "old/secret+with=chars", 21, 1600000000000000);
        u->phase_since = 1710000000000001;
        u->grace_until = 1710000003600001;
        u->failures = UINT32_MAX;
        u->next_attempt = INT64_MIN;
        u->last_rotation = INT64_MAX;
        store_set_text(&u->last_error, "AccessDenied: not authorized");
        store_set_text(&u->last_result, "ok");

        /* Defaults and gaps: no keys, NULL texts, an empty text. */
        store_add_user(s, "empty-user", &u);
        store_set_text(&u->last_result, "");

        /* A key whose secret we do not hold; a binary secret. */
        store_add_user(s, "odd", &u);
        store_key_set(&u->pending, "AKIANOSECRET", NULL, 0, -1);
        const char bin[] = { 0, 1, 2, (char) 0xff, 0, 'x' };
        store_key_set(&u->current, "AKIABIN", bin, sizeof(bin), 0);
        u->phase = STORE_PHASE_CREATING;

        for (unsigned i = 0; i < 5; i++) {
                char name[32];
                snprintf(name, sizeof(name), "filled-%u", i);
                store_add_user(s, name, &u);
                fill_user(u, i);
        }

        r = store_commit(s);
        ok(r == 0 && store_generation(s) == 1, "commit (%d), generation 1", r);
        ok(stat(store_file, &st) == 0 && (st.st_mode & 07777) == 0600 && st.st_uid == geteuid(),
           "store file is 0600, owned by us");

        r = store_open(store_file, key_path, &t, &err);
        ok(r == 0 && store_generation(t) == 1, "reopen (%d %s)", r, err ? err : "");
        ok(t && stores_eq(s, t), "every field of every user equal after reopen");
        ok(t && store_get_user(t, "odd") && !store_get_user(t, "odd")->pending.secret &&
                   store_get_user(t, "odd")->current.secret->len == sizeof(bin),
           "NULL secret stays NULL, binary secret keeps its length");
        ok(t && store_get_user(t, "empty-user") && !store_get_user(t, "empty-user")->last_error &&
                   streq_ptr(store_get_user(t, "empty-user")->last_result, ""),
           "NULL text stays NULL, empty text stays empty");

        read_raw(store_file, &raw, &raw_len);
        ok(raw_len > 72 && !memmem(raw, raw_len, KNOWN_SECRET, strlen(KNOWN_SECRET)) &&
                   !memmem(raw, raw_len, "AKIAIOSFODNN7EXAMPLE", 20) && !memmem(raw, raw_len, "backup-bot", 10),
           "neither the secret nor key ids nor user names appear in the file");
        ok(raw_len > 8 && memcmp(raw, "KEYROTD\0", 8) == 0 && raw[8] == 2 && raw[9] == 0 && raw[16] == 1,
           "header: magic, version 2, generation 1");

        /* Second commit: new nonce, generation 2. */
        _cleanup_free_ uint8_t *raw2 = NULL;
        size_t raw2_len = 0;
        r = store_commit(s);
        read_raw(store_file, &raw2, &raw2_len);
        ok(r == 0 && store_generation(s) == 2 && raw2_len == raw_len && raw2[16] == 2 &&
                   memcmp(raw + 32, raw2 + 32, 24) != 0,
           "each commit has a fresh nonce and the next generation");

        /* store_reload drops uncommitted changes. */
        store_remove_user(s, "odd");
        store_add_user(s, "uncommitted", NULL);
        r = store_reload(s, &err);
        ok(r == 0 && store_get_user(s, "odd") && !store_get_user(s, "uncommitted") && stores_eq(s, t),
           "store_reload returns to the committed state");
}

static void test_many(void) {
        _cleanup_store_ Store *s = NULL, *t = NULL;
        const unsigned n = 1000, rounds = 20;
        usec_t times[20], t0;
        struct stat st = { 0 };
        int r;

        r = store_open(pathf("many.sealed"), key_path, &s, NULL);
        ok(r == 0, "open store for 1000 users");
        if (r < 0)
                return;
        for (unsigned i = 0; i < n; i++) {
                char name[32];
                StoreUser *u;
                snprintf(name, sizeof(name), "user-%05u", (i * 7919u) % 100000u);
                if (store_add_user(s, name, &u) == 0)
                        fill_user(u, i);
        }
        ok(store_n_users(s) == n, "1000 users added");

        for (unsigned k = 0; k < rounds; k++) {
                t0 = now_usec(CLOCK_MONOTONIC);
                r = store_commit(s);
                times[k] = now_usec(CLOCK_MONOTONIC) - t0;
                if (r < 0)
                        break;
        }
        ok(r == 0, "20 commits of 1000 users");
        for (unsigned a = 1; a < rounds; a++)
                for (unsigned b = a; b > 0 && times[b - 1] > times[b]; b--) {
                        usec_t x = times[b];
                        times[b] = times[b - 1];
                        times[b - 1] = x;
                }
        stat(pathf("many.sealed"), &st);
        diag("1000 users x 3 keys: %lld bytes; commit median %.2f ms, max %.2f ms (fsync included)",
             (long long) st.st_size, times[rounds / 2] / 1000.0, times[rounds - 1] / 1000.0);
        ok(times[rounds / 2] < 500 * USEC_PER_MSEC, "commit median well under 500 ms");

        t0 = now_usec(CLOCK_MONOTONIC);
        r = store_open(pathf("many.sealed"), key_path, &t, NULL);
        diag("open of 1000 users: %.2f ms", (now_usec(CLOCK_MONOTONIC) - t0) / 1000.0);
        ok(r == 0 && stores_eq(s, t), "1000 users round-trip");
}

static void test_tamper(void) {
        _cleanup_free_ uint8_t *raw = NULL;
        _cleanup_free_ char *err = NULL;
        size_t len = 0;
        unsigned bad = 0, bad_trunc = 0, n_reject = 0, n_version = 0;
        int r;

        /* A small store, so that every byte can be tried: one user, two
         * keys, a text. */
        {
                _cleanup_store_ Store *s = NULL;
                StoreUser *u;

                r = store_open(pathf("small.sealed"), key_path, &s, NULL);
                if (r == 0 && store_add_user(s, "tampered", &u) == 0) {
                        store_key_set(&u->current, "AKIATAMPER", KNOWN_SECRET, strlen(KNOWN_SECRET), 1);
                        store_key_set(&u->previous, "AKIAOLD", "old", 3, 2);
                        u->phase = STORE_PHASE_DEACTIVATED;
                        store_set_text(&u->last_result, "ok");
                        r = store_commit(s);
                }
                ok(r == 0, "small store for tampering committed");
        }
        ok(read_raw(pathf("small.sealed"), &raw, &len) == 0 && len > 72, "read sealed store (%zu bytes)", len);
        if (len <= 72)
                return;

        for (size_t i = 0; i < len; i++) {
                for (unsigned m = 0; m < 2; m++) {
                        uint8_t mask = m ? 0xff : 0x01;
                        raw[i] ^= mask;
                        write_raw(pathf("tamper.sealed"), raw, len, 0600);
                        raw[i] ^= mask;
                        r = open_rc(pathf("tamper.sealed"), key_path);
                        if (i >= 8 && i < 12) {
                                /* The version field: read before anything is authenticated. */
                                if (r == -EPROTONOSUPPORT)
                                        n_version++;
                                else if (r != -EBADMSG)
                                        bad++;
                        } else if (i >= 24 && i < 32) {
                                /* The key check: a different key, or one claiming to be. */
                                if (r == -EKEYREJECTED)
                                        n_reject++;
                                else
                                        bad++;
                        } else if (r != -EBADMSG) {
                                if (bad < 5)
                                        diag("byte %zu mask %02x: got %d", i, mask, r);
                                bad++;
                        }
                }
        }
        ok(bad == 0, "every byte of header, nonce, ciphertext and tag: tampering refused (%u wrong)", bad);
        ok(n_version > 0 && n_reject == 16, "tampered version/key check refused as such (%u, %u)", n_version, n_reject);

        r = open_err(pathf("tamper.sealed"), key_path, &err);
        raw[len - 1] ^= 0x80;
        write_raw(pathf("tamper.sealed"), raw, len, 0600);
        raw[len - 1] ^= 0x80;
        r = open_err(pathf("tamper.sealed"), key_path, &err);
        ok(r == -EBADMSG && err && strstr(err, "corrupt or was tampered with"), "message: %s", err ? err : "(null)");

        for (size_t l = 0; l < len; l++) {
                write_raw(pathf("trunc.sealed"), raw, l, 0600);
                r = open_rc(pathf("trunc.sealed"), key_path);
                if (r != -EBADMSG) {
                        if (bad_trunc < 5)
                                diag("truncated to %zu: got %d", l, r);
                        bad_trunc++;
                }
        }
        ok(bad_trunc == 0, "truncation at every length 0..%zu refused with -EBADMSG", len - 1);

        /* Appended garbage is as bad as missing bytes. */
        uint8_t *longer = malloc(len + 1);
        memcpy(longer, raw, len);
        longer[len] = 0;
        write_raw(pathf("trunc.sealed"), longer, len + 1, 0600);
        free(longer);
        ok(open_rc(pathf("trunc.sealed"), key_path) == -EBADMSG, "one byte appended → -EBADMSG");

        /* The untouched copy still loads: the loop did not break the original. */
        write_raw(pathf("tamper.sealed"), raw, len, 0600);
        ok(open_rc(pathf("tamper.sealed"), key_path) == 0, "untampered copy loads");

        /* Wrong key. */
        free(err);
        err = NULL;
        r = open_err(store_file, pathf("key2"), &err);
        ok(r == -EKEYREJECTED && err && strstr(err, "different master key"), "wrong key refused: %s",
           err ? err : "(null)");

        /* Future version: distinct error and message. */
        raw[8] = 3;
        write_raw(pathf("future.sealed"), raw, len, 0600);
        raw[8] = 2;
        free(err);
        err = NULL;
        r = open_err(pathf("future.sealed"), key_path, &err);
        ok(r == -EPROTONOSUPPORT && err && strstr(err, "store format version 3 is newer than this keyrotd"),
           "future version refused: %s", err ? err : "(null)");
        raw[8] = 0;
        write_raw(pathf("future.sealed"), raw, len, 0600);
        raw[8] = 2;
        ok(open_rc(pathf("future.sealed"), key_path) == -EBADMSG, "version 0 → -EBADMSG");

        /* A file of the right length that is all zeros, and garbage. */
        uint8_t *z = calloc(1, len);
        write_raw(pathf("zero.sealed"), z, len, 0600);
        free(z);
        ok(open_rc(pathf("zero.sealed"), key_path) == -EBADMSG, "zero-filled file → -EBADMSG");
}

static void test_files(void) {
        _cleanup_free_ char *err = NULL;
        int r;

        /* Key file permissions and size. */
        ok(write_raw(pathf("key-wide"), "0123456789abcdef0123456789abcdef", 32, 0644) == 0, "setup: 0644 key");
        r = open_err(pathf("none.sealed"), pathf("key-wide"), &err);
        ok(r == -EPERM && err && strstr(err, "0644"), "0644 key file refused: %s", err ? err : "(null)");
        ok(chmod(pathf("key-wide"), 0640) == 0 && open_rc(pathf("none.sealed"), pathf("key-wide")) == -EPERM,
           "0640 key file refused");
        ok(chmod(pathf("key-wide"), 0601) == 0 && open_rc(pathf("none.sealed"), pathf("key-wide")) == -EPERM,
           "0601 key file refused");
        ok(chmod(pathf("key-wide"), 0400) == 0 && open_rc(pathf("none.sealed"), pathf("key-wide")) == 0,
           "0400 key file accepted");

        ok(write_raw(pathf("key-short"), "0123456789abcdef0123456789abcde", 31, 0600) == 0 &&
                   write_raw(pathf("key-long"), "0123456789abcdef0123456789abcdef\n", 33, 0600) == 0 &&
                   write_raw(pathf("key-empty"), "", 0, 0600) == 0,
           "setup: keys of 31, 33 and 0 bytes");
        free(err);
        err = NULL;
        r = open_err(pathf("none.sealed"), pathf("key-short"), &err);
        ok(r == -EINVAL && err && strstr(err, "exactly 32 bytes"), "31-byte key refused: %s", err ? err : "(null)");
        ok(open_rc(pathf("none.sealed"), pathf("key-long")) == -EINVAL, "33-byte key refused");
        ok(open_rc(pathf("none.sealed"), pathf("key-empty")) == -EINVAL, "empty key refused");
        ok(open_rc(pathf("none.sealed"), pathf("key-missing")) == -ENOENT, "missing key file → -ENOENT");
        ok(open_rc(pathf("none.sealed"), tmpdir) == -EISDIR, "key path is a directory → -EISDIR");
        ok(mkfifo(pathf("key-fifo"), 0600) == 0 && open_rc(pathf("none.sealed"), pathf("key-fifo")) == -EINVAL,
           "key path is a FIFO → -EINVAL, without blocking");

        if (geteuid() == 0) {
                /* Root accepts what keyrotd's user owns, that is the owner
                 * of the store's directory; nobody else's. */
                ok(write_raw(pathf("key-nobody"), "0123456789abcdef0123456789abcdef", 32, 0600) == 0 &&
                           chown(pathf("key-nobody"), 65534, 65534) == 0,
                   "setup: key owned by nobody");
                free(err);
                err = NULL;
                r = open_err(pathf("none.sealed"), pathf("key-nobody"), &err);
                ok(r == -EPERM && err && strstr(err, "owned by uid 65534"),
                   "root refuses a key another user owns (%d: %s)", r, err ?: "");
                ok(mkdir(pathf("svc"), 0700) == 0 && chown(pathf("svc"), 65534, 65534) == 0,
                   "setup: a state directory of nobody's");
                r = open_rc(pathf("svc/none.sealed"), pathf("key-nobody"));
                ok(r == 0, "root accepts the key of the state directory's owner (rc %d)", r);
        } else
                skip("not root: cannot test a foreign key owner");

        /* The store file itself. */
        _cleanup_free_ uint8_t *raw = NULL;
        size_t len = 0;
        read_raw(store_file, &raw, &len);
        ok(write_raw(pathf("wide.sealed"), raw, len, 0644) == 0, "setup: 0644 store");
        free(err);
        err = NULL;
        r = open_err(pathf("wide.sealed"), key_path, &err);
        ok(r == -EPERM && err && strstr(err, "0644"), "group/world readable store refused: %s", err ? err : "(null)");
        if (geteuid() == 0) {
                ok(write_raw(pathf("theirs.sealed"), raw, len, 0600) == 0 &&
                           chown(pathf("theirs.sealed"), 65534, 65534) == 0,
                   "setup: a store owned by nobody");
                free(err);
                err = NULL;
                r = open_err(pathf("theirs.sealed"), key_path, &err);
                ok(r == -EPERM && err && strstr(err, "owned by uid 65534"),
                   "root refuses a store another user owns (%d: %s)", r, err ?: "");
                ok(rename(pathf("theirs.sealed"), pathf("svc/theirs.sealed")) == 0 &&
                           open_rc(pathf("svc/theirs.sealed"), key_path) == 0,
                   "and accepts it in that user's state directory");
        } else
                skip("not root: cannot test a foreign store owner");
        ok(symlink(store_file, pathf("link.sealed")) == 0 && open_rc(pathf("link.sealed"), key_path) == -ELOOP,
           "symlinked store refused (-ELOOP)");
        ok(open_rc(pathf("nodir/x.sealed"), key_path) == -ENOENT, "store in a missing directory → -ENOENT");
        ok(write_raw(pathf("empty.sealed"), "", 0, 0600) == 0 && open_rc(pathf("empty.sealed"), key_path) == -EBADMSG,
           "zero-length store is corruption, not an empty store");
}

/* Seal a hand-built payload exactly as store.h documents the format, so a
 * mismatch between the documentation and the code fails here. */
static int seal_version = 1;

static int seal_payload(const char *path, const uint8_t *pt, size_t pt_len) {
        _cleanup_free_ uint8_t *key = NULL, *out = NULL;
        size_t key_len = 0;
        uint8_t h[16];
        unsigned long long c_len;
        const char ctx[] = "keyrotd store key check v1";
        int r;

        r = read_raw(key_path, &key, &key_len);
        if (r < 0 || key_len != 32)
                return -EINVAL;
        out = calloc(1, 56 + pt_len + 16);
        memcpy(out, "KEYROTD\0", 8);
        out[8] = (uint8_t) seal_version;
        out[16] = 9; /* generation */
        crypto_generichash(h, 16, (const uint8_t *) ctx, strlen(ctx), key, 32);
        memcpy(out + 24, h, 8);
        randombytes_buf(out + 32, 24);
        crypto_aead_xchacha20poly1305_ietf_encrypt(out + 56, &c_len, pt, pt_len, out, 56, NULL, out + 32, key);
        return write_raw(path, out, 56 + c_len, 0600);
}

typedef struct Buf {
        uint8_t b[4096];
        size_t n;
} Buf;

static void b_le(Buf *b, uint64_t v, unsigned n) {
        for (unsigned i = 0; i < n; i++)
                b->b[b->n++] = (uint8_t) (v >> (8 * i));
}
static void b_mem(Buf *b, const void *p, size_t n) {
        memcpy(b->b + b->n, p, n);
        b->n += n;
}
static void b_field(Buf *b, unsigned tag, const void *p, size_t n) {
        b_le(b, tag, 1);
        b_le(b, n, 4);
        b_mem(b, p, n);
}
/* A record with just a name, plus @extra raw field bytes. */
static void b_record(Buf *b, const char *name, const Buf *extra) {
        b_le(b, 5 + strlen(name) + (extra ? extra->n : 0), 4);
        b_field(b, 1, name, strlen(name));
        if (extra)
                b_mem(b, extra->b, extra->n);
}

static int open_payload(const Buf *p, Store **ret) {
        Store *s = NULL;
        int r;

        if (seal_payload(pathf("crafted.sealed"), p->b, p->n) < 0)
                return -EIO;
        r = store_open(pathf("crafted.sealed"), key_path, &s, NULL);
        if (ret)
                *ret = s;
        else
                store_free(s);
        return r;
}

static void test_payload(void) {
        Store *s = NULL;
        Buf p, f;
        int r;

        /* A valid hand-built payload: documentation and code agree. */
        p = (Buf){ .n = 0 };
        f = (Buf){ .n = 0 };
        b_le(&f, 2, 1), b_le(&f, 4, 4), b_le(&f, STORE_PHASE_PENDING, 4);
        b_le(&f, 17, 1), b_le(&f, 8 + 2 + 4 + 1 + 4 + 3, 4);
        b_le(&f, 123, 8), b_le(&f, 4, 2), b_mem(&f, "AKIA", 4), b_le(&f, 1, 1), b_le(&f, 3, 4), b_mem(&f, "sec", 3);
        b_le(&f, 10, 1), b_le(&f, 2, 4), b_mem(&f, "oh", 2);
        b_le(&p, 2, 4);
        b_record(&p, "a", &f);
        b_record(&p, "b", NULL);
        r = open_payload(&p, &s);
        StoreUser *u = store_get_user(s, "a");
        ok(r == 0 && store_n_users(s) == 2 && store_generation(s) == 9 && u && u->phase == STORE_PHASE_PENDING &&
                   streq(u->pending.access_key_id, "AKIA") && u->pending.create_date == 123 &&
                   streq(u->pending.secret->data, "sec") && streq_ptr(u->last_error, "oh") &&
                   store_get_user(s, "b"),
           "hand-built payload per the documented format loads (%d)", r);
        s = store_free(s);

        /* Version 2: the drain and handed-out fields; version 1 lacks them
         * (read above: they are 0). */
        seal_version = 2;
        p = (Buf){ .n = 0 };
        f = (Buf){ .n = 0 };
        b_le(&f, 12, 1), b_le(&f, 8, 4), b_le(&f, 111, 8);
        b_le(&f, 13, 1), b_le(&f, 8, 4), b_le(&f, 222, 8);
        b_le(&f, 14, 1), b_le(&f, 4, 4), b_le(&f, 3, 4);
        b_le(&f, 16, 1), b_le(&f, 8 + 2 + 4 + 1 + 4 + 3, 4);
        b_le(&f, 123, 8), b_le(&f, 4, 2), b_mem(&f, "AKIA", 4), b_le(&f, 1, 1), b_le(&f, 3, 4), b_mem(&f, "sec", 3);
        b_le(&f, 19, 1), b_le(&f, 8, 4), b_le(&f, 333, 8);
        b_le(&p, 1, 4);
        b_record(&p, "a", &f);
        r = open_payload(&p, &s);
        u = store_get_user(s, "a");
        ok(r == 0 && u && u->distributed_at == 111 && u->drain_next == 222 && u->drain_warnings == 3 &&
                   u->current.handed_out_until == 333 && u->previous.handed_out_until == 0,
           "version 2 fields load (%d)", r);
        if (u) {
                /* ...and survive a commit, moving with their key. */
                store_key_move(&u->previous, &u->current);
                r = store_commit(s);
                Store *t = NULL;
                ok(r == 0 && store_open(pathf("crafted.sealed"), key_path, &t, NULL) == 0 &&
                           store_get_user(t, "a")->previous.handed_out_until == 333 &&
                           store_get_user(t, "a")->drain_warnings == 3,
                   "version 2 fields written back; handed_out_until moved with its key");
                store_free(t);
        }
        s = store_free(s);
        seal_version = 1;

        /* Each of these is sealed with the right key, so only the parser
         * stands between it and the daemon. */
#define BAD(desc, ...)                                                                    \
        do {                                                                              \
                p = (Buf){ .n = 0 };                                                      \
                f = (Buf){ .n = 0 };                                                      \
                __VA_ARGS__;                                                              \
                r = open_payload(&p, NULL);                                               \
                ok(r == -EBADMSG, "authentic but invalid payload refused: %s (%d)", desc, r); \
        } while (0)

        BAD("empty payload", (void) 0);
        BAD("user count larger than the payload", b_le(&p, 1000, 4));
        BAD("count 1, no record", b_le(&p, 1, 4); b_le(&p, 0, 4));
        BAD("record without name", b_le(&p, 1, 4); b_le(&p, 9, 4); b_le(&f, 2, 1); b_le(&f, 4, 4); b_le(&f, 0, 4);
            b_mem(&p, f.b, f.n));
        BAD("unknown tag", b_field(&f, 15, "x", 1); b_le(&p, 1, 4); b_record(&p, "a", &f));
        BAD("i64 field of 4 bytes", b_le(&f, 12, 1); b_le(&f, 4, 4); b_le(&f, 0, 4); b_le(&p, 1, 4);
            b_record(&p, "a", &f));
        BAD("tag beyond the table", b_field(&f, 200, "x", 1); b_le(&p, 1, 4); b_record(&p, "a", &f));
        BAD("duplicate field", b_field(&f, 1, "a", 1); b_le(&p, 1, 4); b_record(&p, "a", &f));
        BAD("duplicate user", b_le(&p, 2, 4); b_record(&p, "a", NULL); b_record(&p, "a", NULL));
        BAD("users out of order", b_le(&p, 2, 4); b_record(&p, "b", NULL); b_record(&p, "a", NULL));
        BAD("phase out of range", b_le(&f, 2, 1); b_le(&f, 4, 4); b_le(&f, _STORE_PHASE_MAX, 4); b_le(&p, 1, 4);
            b_record(&p, "a", &f));
        BAD("u32 field of 3 bytes", b_le(&f, 7, 1); b_le(&f, 3, 4); b_le(&f, 0, 3); b_le(&p, 1, 4);
            b_record(&p, "a", &f));
        BAD("field longer than its record", b_le(&f, 10, 1); b_le(&f, 100, 4); b_le(&p, 1, 4);
            b_record(&p, "a", &f));
        BAD("record longer than the payload", b_le(&p, 1, 4); b_le(&p, 50, 4); b_field(&p, 1, "a", 1));
        BAD("trailing bytes after the records", b_le(&p, 1, 4); b_record(&p, "a", NULL); b_le(&p, 0, 1));
        BAD("NUL inside a text", b_field(&f, 10, "a\0b", 3); b_le(&p, 1, 4); b_record(&p, "a", &f));
        BAD("rotation id too long", b_field(&f, 3, "0123456789012345678901234567890123456", 37); b_le(&p, 1, 4);
            b_record(&p, "a", &f));
        BAD("control character in name", b_le(&p, 1, 4); b_record(&p, "a\tb", NULL));
        BAD("key with empty id", b_le(&f, 16, 1); b_le(&f, 15, 4); b_le(&f, 0, 8); b_le(&f, 0, 2); b_le(&f, 0, 1);
            b_le(&f, 0, 4); b_le(&p, 1, 4); b_record(&p, "a", &f));
        BAD("key secret length past its field", b_le(&f, 16, 1); b_le(&f, 16, 4); b_le(&f, 0, 8); b_le(&f, 1, 2);
            b_mem(&f, "A", 1); b_le(&f, 1, 1); b_le(&f, 9, 4); b_le(&p, 1, 4); b_record(&p, "a", &f));
        BAD("key secret without has_secret", b_le(&f, 16, 1); b_le(&f, 17, 4); b_le(&f, 0, 8); b_le(&f, 1, 2);
            b_mem(&f, "A", 1); b_le(&f, 0, 1); b_le(&f, 1, 4); b_mem(&f, "s", 1); b_le(&p, 1, 4);
            b_record(&p, "a", &f));
        BAD("key with trailing bytes", b_le(&f, 16, 1); b_le(&f, 17, 4); b_le(&f, 0, 8); b_le(&f, 1, 2);
            b_mem(&f, "A", 1); b_le(&f, 0, 1); b_le(&f, 0, 4); b_le(&f, 0, 1); b_le(&p, 1, 4);
            b_record(&p, "a", &f));
#undef BAD
}

static int count_hidden(const char *dir) {
        DIR *d = opendir(dir);
        struct dirent *de;
        int n = 0;

        if (!d)
                return -1;
        while ((de = readdir(d)))
                if (de->d_name[0] == '.' && !streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        n++;
        closedir(d);
        return n;
}

static void test_enospc(void) {
        _cleanup_store_ Store *s = NULL, *t = NULL;
        char *mnt = pathf("full"), sp[PATH_MAX];
        StoreUser *u;
        int r;

        if (mkdir(mnt, 0700) < 0 || mount("tmpfs", mnt, "tmpfs", MS_NOSUID | MS_NODEV, "size=16k,mode=0700") < 0) {
                skip("cannot mount a small tmpfs (not root or no privilege): store ENOSPC untested");
                return;
        }
        snprintf(sp, sizeof(sp), "%s/store.sealed", mnt);
        r = store_open(sp, key_path, &s, NULL);
        ok(r == 0, "open store on a 16 KiB tmpfs");
        if (r < 0)
                goto out;
        for (unsigned i = 0; i < 5; i++) {
                char name[16];
                snprintf(name, sizeof(name), "u%u", i);
                store_add_user(s, name, &u);
                fill_user(u, i);
        }
        ok(store_commit(s) == 0 && store_generation(s) == 1, "commit of 5 users fits");

        /* Grow past what the filesystem holds (old file + temp file). */
        for (unsigned i = 5; i < 200; i++) {
                char name[16];
                snprintf(name, sizeof(name), "u%u", i);
                store_add_user(s, name, &u);
                fill_user(u, i);
        }
        r = store_commit(s);
        ok(r == -ENOSPC, "commit on a full filesystem → -ENOSPC (%d)", r);
        ok(store_generation(s) == 1 && store_n_users(s) == 200,
           "failed commit leaves the in-memory state as it was (uncommitted changes kept)");
        ok(count_hidden(mnt) == 0, "no temporary file left behind");

        r = store_open(sp, key_path, &t, NULL);
        ok(r == 0 && store_n_users(t) == 5 && store_generation(t) == 1, "previous store intact and loadable (%d)", r);

        r = store_reload(s, NULL);
        ok(r == 0 && stores_eq(s, t), "store_reload after the failure returns to the committed state");
        store_add_user(s, "after", NULL);
        ok(store_commit(s) == 0 && store_generation(s) == 2, "a later commit that fits succeeds");
out:
        s = store_free(s);
        t = store_free(t);
        if (umount2(mnt, MNT_DETACH) < 0)
                diag("umount %s: %m", mnt);
}

static int written_result = 1;

static void on_written(int result, void *userdata) {
        written_result = result;
        sd_event_exit(userdata, 0);
}

/* store_commit() in parts, and the committer thread that writes off the loop. */
static void test_snapshots(void) {
        Store *s = NULL, *t = NULL;
        StoreSnapshot *older = NULL, *newer = NULL;
        StoreUser *u;
        sd_event *e = NULL;
        Committer *c = NULL;
        char *err = NULL;
        int r;

        unlink(store_file);
        r = store_open(store_file, key_path, &s, NULL);
        ok(r == 0 && store_add_user(s, "alice", &u) == 0 && store_snapshot(s, &older) == 0, "snapshot of alice");
        ok(store_add_user(s, "bob", NULL) == 0 && store_snapshot(s, &newer) == 0, "a newer one with bob too");
        /* The newer one lands first; the older one is then not written over it. */
        r = store_snapshot_write(s, newer);
        ok(store_snapshot_done(s, newer, r) == 0 && store_generation(s) == 2, "newer written: generation 2");
        r = store_snapshot_write(s, older);
        ok(store_snapshot_done(s, older, r) == 0 && store_generation(s) == 2, "older: success, nothing written");
        ok(store_open(store_file, key_path, &t, &err) == 0 && store_n_users(t) == 2 && store_generation(t) == 2,
           "the file holds the newer snapshot (2 users, generation 2)");
        t = store_free(t);

        /* A failed write leaves no gap in the numbering. */
        ok(store_snapshot(s, &older) == 0 && store_snapshot_done(s, older, -EIO) == -EIO && store_commit(s) == 0 &&
                   store_generation(s) == 3,
           "failed snapshot, then a commit: generation 3");

        /* Off the loop: done runs on the loop with the write's result. */
        ok(sd_event_new(&e) == 0 && committer_new(e, s, &c) == 0 && !committer_busy(c), "committer");
        ok(store_add_user(s, "carol", NULL) == 0 && store_snapshot(s, &newer) == 0 &&
                   committer_submit(c, newer, on_written, e) == 0 && committer_busy(c),
           "submitted: busy");
        ok(store_snapshot(s, &older) == 0 && committer_submit(c, older, on_written, e) == -EBUSY,
           "a second submit while one is in flight → -EBUSY, snapshot still ours");
        (void) store_snapshot_done(s, older, -ECANCELED);
        r = sd_event_loop(e);
        ok(r == 0 && written_result == 0 && !committer_busy(c) && store_generation(s) == 4,
           "done(0) on the loop, generation 4 (%d, %d, %" PRIu64 ")", r, written_result, store_generation(s));
        ok(store_open(store_file, key_path, &t, &err) == 0 && store_n_users(t) == 3, "the file has carol");
        t = store_free(t);
        c = committer_free(c);
        e = sd_event_unref(e);
        s = store_free(s);
        free(err);
}

int main(void) {
        const char *base = getenv("TMPDIR");
        if (!base || !*base || strlen(base) > 40)
                base = "/tmp";
        snprintf(tmpdir, sizeof(tmpdir), "%s/test-store-XXXXXX", base);
        if (!mkdtemp(tmpdir)) {
                printf("Bail out! mkdtemp: %m\n");
                return 1;
        }
        snprintf(key_path, sizeof(key_path), "%s/store.key", tmpdir);
        snprintf(store_file, sizeof(store_file), "%s/store.sealed", tmpdir);
        ok(secret_init() == 0, "libsodium initialises");

        test_key_generate();
        test_api();
        test_roundtrip();
        test_many();
        test_tamper();
        test_files();
        test_payload();
        test_enospc();
        test_snapshots();

        nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        return tap_done();
}

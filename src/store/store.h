/* SPDX-License-Identifier: MIT */
/*
 * store.h — the sealed store: every IAM secret keyrotd holds, and the
 * phase of every user's rotation. The store is the journal (docs/DESIGN.md §1):
 * the rotation engine changes a record in memory, calls store_commit(), and
 * takes the next external step only once that returned 0.
 *
 * On disk it is one file, rewritten whole by each commit through
 * write_file_atomic() (temp file, fsync, rename, fsync of the directory),
 * so after a crash at any instant the file holds exactly one committed
 * state: the last one, or the one before it.
 *
 * File format, version 2 (version 1 differs only in the payload, store.c):
 *
 *   offset  size  field
 *        0     8  magic "KEYROTD\0"
 *        8     4  format version (u32) = 2
 *       12     4  flags (u32), 0; anything else is refused as corrupt
 *       16     8  generation (u64): 1 for the first commit, +1 per commit
 *       24     8  key check: BLAKE2b-128 keyed with the master key over
 *                 "keyrotd store key check v1", first 8 bytes
 *       32    24  nonce, random and fresh for every commit
 *       56     n  ciphertext of the payload (n = payload length)
 *     56+n    16  Poly1305 tag
 *
 * Sealed with XChaCha20-Poly1305-IETF under the 32-byte master key; the
 * 56 header bytes are the additional data, so none of them can be altered
 * without the tag failing. The payload format is described in store.c.
 *
 * Errors from store_open()/store_reload() are distinct, never a silent
 * reset:
 *   -EBADMSG          corrupt, truncated (a zero-length file included) or
 *                     tampered with; also a tag that does not verify
 *   -EPROTONOSUPPORT  format version newer than this keyrotd knows
 *   -EKEYREJECTED     sealed with a different master key (the key check
 *                     differs: wrong key file, or those 8 bytes altered)
 *   -EPERM            store or key file group/world accessible or owned by
 *                     someone other than root or keyrotd's user: our euid
 *                     or, for root, the owner of the store's directory
 *   -EINVAL           key file is not exactly 32 bytes / not a regular file
 *   -ENOENT           key file, or the store's directory, does not exist
 * A missing store file (in an existing directory) is an empty store.
 *
 * Commit-failure contract: store_commit() never changes the users in
 * memory, whether it succeeds or fails (success only bumps the generation). When it fails, the file still holds
 * the previous commit (the one exception: -errno from fsync of the
 * directory after the rename; then the file may hold either, and both are
 * whole) and the in-memory changes since the last successful commit are
 * simply *uncommitted*. The caller must not act as if they were durable;
 * it may retry store_commit() (the way to keep a freshly created secret
 * that exists nowhere else: never reload it away) or call store_reload()
 * to return to what is on disk. -ENOSPC, -EDQUOT, -EFBIG and -EIO come
 * back unchanged.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "basic/secret.h"

#define STORE_KEY_SIZE 32u               /* master key bytes */
#define STORE_FORMAT_VERSION 2u          /* what this keyrotd writes; it reads 1 and 2 */
#define STORE_ACCESS_KEY_ID_MAX 128u     /* bytes, excluding NUL */
#define STORE_SECRET_MAX 1024u           /* bytes of one secret access key */
#define STORE_USER_NAME_MAX 128u         /* bytes */
#define STORE_TEXT_MAX 1024u             /* last_error/last_result are cut here */
#define STORE_FILE_MAX (64u * 1024u * 1024u)

typedef enum StorePhase {
        STORE_PHASE_IDLE,
        STORE_PHASE_CREATING,     /* intent logged before CreateAccessKey: a key may exist that we don't hold */
        STORE_PHASE_PENDING,      /* new key sealed, unverified */
        STORE_PHASE_VERIFIED,
        STORE_PHASE_DISTRIBUTED,  /* targets hold new key; current=new, previous=old */
        STORE_PHASE_NOTIFIED,
        STORE_PHASE_DEACTIVATED,  /* old key Inactive, in grace until grace_until */
        STORE_PHASE_ROLLING_BACK,
        _STORE_PHASE_MAX,
} StorePhase;

/* "idle", "creating", "pending", "verified", "distributed", "notified",
 * "deactivated", "rolling-back"; NULL for an out-of-range value. */
const char *store_phase_to_string(StorePhase p);
/* The phase, or -EINVAL. */
int store_phase_from_string(const char *s);

typedef struct StoreKey {
        char access_key_id[STORE_ACCESS_KEY_ID_MAX + 1]; /* "" = no key in this slot */
        Secret *secret;                                  /* secure memory; may be NULL */
        int64_t create_date;                             /* realtime usec, as IAM reported it */
        /* The latest Expiration keyrotd handed out with this key (realtime
         * usec, 0 = never): an SDK that got it may use the key until then,
         * so the key is not deactivated before. */
        int64_t handed_out_until;
} StoreKey;

/*
 * One IAM user. The rotation engine reads and writes the fields directly
 * and drives the phases; the store only persists them. Do not change
 * `name` (the store keeps users sorted by it); use store_set_text() for
 * last_error/last_result and the store_key_*() helpers for keys.
 *
 * Recovery of STORE_PHASE_CREATING: the secret that CreateAccessKey
 * returns exists only in memory until the PENDING commit, so a crash in
 * between leaves a key in IAM that nobody holds. phase_since records when
 * the intent was committed (before the call), so on restart any key of
 * this user that keyrotd does not hold (not current/pending/previous) and
 * that IAM says was created at or after phase_since (less clock skew) is
 * the orphan to delete. No other field is needed for that.
 */
typedef struct StoreUser {
        char *name;                 /* IAM user name; owned by the store */
        StorePhase phase;
        char rotation_id[37];       /* of the rotation in progress, "" when idle */
        char trigger[16];           /* "schedule", "signal", "socket", "recovery", "once", ... */
        StoreKey current, pending, previous;
        int64_t phase_since;        /* realtime usec the phase was entered */
        int64_t grace_until;        /* realtime usec, 0 = none */
        uint32_t failures;          /* consecutive failures */
        int64_t next_attempt;       /* realtime usec for backoff, 0 = none */
        int64_t last_rotation;      /* realtime usec of the last completed rotation */
        int64_t distributed_at;     /* realtime usec the targets got the current key (drain's reference) */
        int64_t drain_next;         /* a drain kept the old key: when to look again (0 = not parked) */
        uint32_t drain_warnings;    /* drain warnings of this rotation (PRIORITY 2 from alert_after) */
        char *last_error;           /* short text, may be NULL */
        char *last_result;          /* short text, may be NULL */
} StoreUser;

typedef struct Store Store;

/**
 * store_key_generate() - create a new master key file (keyrotctl init-store).
 *
 * 32 bytes from randombytes_buf(), written through write_file_atomic()
 * with mode 0600, fsync'd, and never over an existing file.
 * Returns 0, -EEXIST if @path exists (even as a dangling symlink), -ENOENT
 * if its directory does not, or another negative errno.
 */
int store_key_generate(const char *path);

/**
 * store_open() - load and verify the store.
 * @path: the sealed store file; missing = empty store (first run).
 * @key_path: the master key file: a regular file of exactly 32 bytes,
 *            mode without group/other bits, owned by root or our euid.
 * @ret: the store on success; untouched on failure.
 * @ret_error: on failure, a message for the operator (may be NULL; free()).
 *
 * Returns 0 or a negative errno as listed at the top of this file.
 */
int store_open(const char *path, const char *key_path, Store **ret, char **ret_error);
Store *store_free(Store *s);
static inline void store_freep(Store **s) {
        if (*s)
                store_free(*s);
}
#define _cleanup_store_ __attribute__((cleanup(store_freep)))

/**
 * store_reload() - replace the in-memory state with what is on disk.
 *
 * Discards uncommitted changes. On success every StoreUser pointer
 * obtained before is invalid; on failure nothing changed.
 */
int store_reload(Store *s, char **ret_error);

/**
 * store_commit() - one atomic, durable commit of the whole store.
 *
 * Serialises every user into secure memory, seals it with a fresh nonce
 * and writes it with write_file_atomic() (mode 0600, fsync of the file
 * and the directory). Returns 0 or a negative errno; see the
 * commit-failure contract at the top of this file.
 */
int store_commit(Store *s);

/*
 * store_commit() in three parts, for the event loop, which must not wait on
 * fsync: store_snapshot() serialises and seals the state as it is now (on
 * the caller's thread: it reads the users and secure memory);
 * store_snapshot_write() writes it durably and may run on another thread
 * (it reads only the snapshot, the store's path and its write lock);
 * store_snapshot_done(), on the caller's thread again, takes the result,
 * frees the snapshot and returns the result. Writes are serialised, and a
 * snapshot older than one already durable is not written: the newer one
 * holds every change the older had. store_reload() must not run while a
 * snapshot is being written.
 */
typedef struct StoreSnapshot StoreSnapshot;
int store_snapshot(Store *s, StoreSnapshot **ret);
int store_snapshot_write(Store *s, const StoreSnapshot *snap);
int store_snapshot_done(Store *s, StoreSnapshot *snap, int result);

/* Generation of the last successful commit or load (0 = never written). */
uint64_t store_generation(const Store *s);
const char *store_path(const Store *s);

size_t store_n_users(const Store *s);
/* The i-th user in name order (NULL past the end). Adding or removing
 * users reorders; do not do either while iterating. In
 * STORE_FOREACH_USER, u must be a plain variable name. */
StoreUser *store_user_at(const Store *s, size_t i);
#define STORE_FOREACH_USER(u, s)                                           \
        for (size_t _store_i_##u = 0;                                      \
             ((u) = store_user_at((s), _store_i_##u)) != NULL; _store_i_##u++)

StoreUser *store_get_user(const Store *s, const char *name);
/* A new idle user. -EEXIST if present, -EINVAL for an empty or too long
 * name or one with control characters. *ret (may be NULL) is borrowed. */
int store_add_user(Store *s, const char *name, StoreUser **ret);
/* Drops the user and wipes its secrets. -ENOENT if absent. */
int store_remove_user(Store *s, const char *name);

/**
 * store_key_set() - fill a key slot, copying the secret into secure memory.
 * @secret may be NULL with @len 0 (a key whose secret we do not hold).
 * -EINVAL for an empty or too long id or a secret over STORE_SECRET_MAX;
 * -ENOMEM. On failure @k is unchanged; on success the old content is wiped.
 */
int store_key_set(StoreKey *k, const char *id, const char *secret, size_t len, int64_t created);
/* Empty the slot and wipe its secret. */
void store_key_clear(StoreKey *k);
/* Move @src into @dst (whose old content is wiped); @src is left empty. */
void store_key_move(StoreKey *dst, StoreKey *src);
static inline bool store_key_is_set(const StoreKey *k) {
        return k->access_key_id[0] != 0;
}

/* Replace *field with a copy of @text (NULL clears), cut to
 * STORE_TEXT_MAX bytes. 0 or -ENOMEM (then *field is unchanged). */
int store_set_text(char **field, const char *text);

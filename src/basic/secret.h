/* SPDX-License-Identifier: MIT */
/*
 * secret.h — owns every byte of key material in the process.
 *
 * A Secret lives in libsodium guarded memory (sodium_malloc: guard pages,
 * mlock'd, excluded from core dumps where the kernel allows) and is wiped
 * when freed. There is deliberately no resize: growing a secret means
 * allocating a new one, copying and freeing (wiping) the old.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef struct Secret {
        size_t len;   /* bytes in use, excluding the trailing NUL */
        size_t cap;   /* bytes available in data, excluding the trailing NUL */
        char data[];  /* always NUL-terminated */
} Secret;

/* Initialise libsodium once; returns 0 or -EIO. Safe to call repeatedly. */
int secret_init(void);

/*
 * Raw secure memory for the few places that need bytes rather than a
 * Secret (expat's buffers, signing-key scratch). Zeroed on allocation,
 * wiped on release. Small blocks come from pooled sodium_malloc arenas
 * (mlock'd, excluded from core dumps): one sodium_malloc costs some ten
 * system calls, and a rotation needs dozens of small secure buffers.
 * Large blocks, and every block in sanitizer builds (so ASan still sees
 * overflows), get their own guarded sodium_malloc. Not thread-safe: only
 * the event loop's thread uses secure memory (the committer's thread, the
 * only other one, writes sealed snapshots and never touches it).
 */
void *secure_alloc(size_t size);
void secure_free(void *p);
/* Usable size of a block from secure_alloc. */
size_t secure_size(const void *p);

/* A zeroed secret with room for cap bytes (plus NUL). NULL on ENOMEM. */
Secret *secret_new(size_t cap);
/* A copy of len bytes from p. NULL on ENOMEM. */
Secret *secret_dup(const void *p, size_t len);
/* Append len bytes; grows by reallocating in secure memory. 0 or -ENOMEM,
 * -E2BIG if the result would exceed max (0 = no limit). *s may change. */
int secret_append(Secret **s, const void *p, size_t len, size_t max);
Secret *secret_free(Secret *s);
bool secret_eq(const Secret *a, const Secret *b);

static inline void secret_freep(Secret **s) {
        if (*s)
                secret_free(*s);
}
#define _cleanup_secret_ __attribute__((cleanup(secret_freep)))

static inline const char *secret_str(const Secret *s) {
        return s ? s->data : NULL;
}

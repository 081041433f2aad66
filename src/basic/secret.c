/* SPDX-License-Identifier: MIT */
#include "basic/secret.h"

#include <errno.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int secret_init(void) {
        return sodium_init() < 0 ? -EIO : 0;
}

#if defined(__SANITIZE_ADDRESS__)
#define SECURE_POOL 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SECURE_POOL 0
#endif
#endif
#ifndef SECURE_POOL
#define SECURE_POOL 1
#endif

#define ARENA_SIZE (64U * 1024U)
#define N_CLASSES 7U /* 64 .. 4096 bytes per block, header included */
#define CLASS_LARGE UINT32_MAX
#define BLOCK_MAGIC 0x6b657972U

/* Every block starts with this; 16 bytes keep the payload aligned. */
typedef struct BlockHeader {
        uint32_t magic;
        uint32_t cls;
        size_t size; /* usable bytes */
} BlockHeader;

typedef struct FreeBlock {
        struct FreeBlock *next;
} FreeBlock;

static FreeBlock *free_lists[N_CLASSES];

static size_t class_block_size(unsigned cls) {
        return (size_t) 64 << cls;
}

static void *large_alloc(size_t size) {
        size_t total;
        BlockHeader *h;

        if (size > SIZE_MAX - sizeof(BlockHeader) - 16)
                return NULL;
        /* sodium_malloc puts the block flush against the trailing guard page:
         * a multiple of 16 keeps the header and payload aligned. */
        total = (sizeof(BlockHeader) + size + 15) & ~(size_t) 15;
        h = sodium_malloc(total);
        if (!h)
                return NULL;
        sodium_memzero(h, total);
        *h = (BlockHeader) { .magic = BLOCK_MAGIC, .cls = CLASS_LARGE, .size = total - sizeof(BlockHeader) };
        return h + 1;
}

static int refill(unsigned cls) {
        size_t bs = class_block_size(cls);
        uint8_t *arena = sodium_malloc(ARENA_SIZE);

        if (!arena)
                return -ENOMEM;
        /* Arenas are never returned: the pool is bounded by peak use. */
        for (size_t off = 0; off + bs <= ARENA_SIZE; off += bs) {
                FreeBlock *f = (FreeBlock *) (arena + off);
                f->next = free_lists[cls];
                free_lists[cls] = f;
        }
        return 0;
}

void *secure_alloc(size_t size) {
        if (secret_init() < 0)
                return NULL;
        if (!SECURE_POOL || size > class_block_size(N_CLASSES - 1) - sizeof(BlockHeader))
                return large_alloc(size);

        unsigned cls = 0;
        while (class_block_size(cls) - sizeof(BlockHeader) < size)
                cls++;
        if (!free_lists[cls] && refill(cls) < 0)
                return NULL;
        FreeBlock *f = free_lists[cls];
        free_lists[cls] = f->next;

        size_t bs = class_block_size(cls);
        BlockHeader *h = (BlockHeader *) f;
        sodium_memzero(h, bs);
        *h = (BlockHeader) { .magic = BLOCK_MAGIC, .cls = cls, .size = bs - sizeof(BlockHeader) };
        return h + 1;
}

size_t secure_size(const void *p) {
        return p ? ((const BlockHeader *) p - 1)->size : 0;
}

void secure_free(void *p) {
        BlockHeader *h;

        if (!p)
                return;
        h = (BlockHeader *) p - 1;
        if (h->magic != BLOCK_MAGIC)
                abort(); /* not ours, or a double free: never wipe or reuse blindly */
        if (h->cls == CLASS_LARGE) {
                h->magic = 0;
                sodium_free(h); /* wipes before unmapping */
                return;
        }
        unsigned cls = h->cls;
        sodium_memzero(h, class_block_size(cls));
        FreeBlock *f = (FreeBlock *) h;
        f->next = free_lists[cls];
        free_lists[cls] = f;
}

Secret *secret_new(size_t cap) {
        Secret *s;
        size_t size;

        if (cap > SIZE_MAX - sizeof(Secret) - 32)
                return NULL;
        size = sizeof(Secret) + cap + 1;
        s = secure_alloc(size);
        if (!s)
                return NULL;
        s->cap = cap;
        return s;
}

Secret *secret_dup(const void *p, size_t len) {
        Secret *s = secret_new(len);

        if (!s)
                return NULL;
        if (len > 0)
                memcpy(s->data, p, len);
        s->len = len;
        return s;
}

int secret_append(Secret **s, const void *p, size_t len, size_t max) {
        Secret *old = *s, *n;
        size_t need;

        if (len > SIZE_MAX / 2 || old->len > SIZE_MAX / 2)
                return -E2BIG;
        need = old->len + len;
        if (max > 0 && need > max)
                return -E2BIG;
        if (need <= old->cap) {
                memcpy(old->data + old->len, p, len);
                old->len = need;
                old->data[need] = 0;
                return 0;
        }

        /* Never realloc a secret: allocate, copy, wipe the old one. */
        size_t cap = old->cap < 256 ? 256 : old->cap * 2;
        if (cap < need)
                cap = need;
        if (max > 0 && cap > max)
                cap = max;
        n = secret_new(cap);
        if (!n)
                return -ENOMEM;
        memcpy(n->data, old->data, old->len);
        memcpy(n->data + old->len, p, len);
        n->len = need;
        secret_free(old);
        *s = n;
        return 0;
}

Secret *secret_free(Secret *s) {
        secure_free(s);
        return NULL;
}

bool secret_eq(const Secret *a, const Secret *b) {
        if (!a || !b)
                return a == b;
        return a->len == b->len && sodium_memcmp(a->data, b->data, a->len) == 0;
}

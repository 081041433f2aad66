/* SPDX-License-Identifier: MIT */
#include "secret.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>

int secret_init(void) {
        return sodium_init() < 0 ? -EIO : 0;
}

Secret *secret_new(size_t cap) {
        Secret *s;
        size_t size;

        if (cap > SIZE_MAX - sizeof(Secret) - 32)
                return NULL;
        if (secret_init() < 0)
                return NULL;
        /* sodium_malloc places the block flush against the trailing guard
         * page, so only a size that is a multiple of 16 keeps the struct aligned. */
        size = (sizeof(Secret) + cap + 1 + 15) & ~(size_t) 15;
        s = sodium_malloc(size);
        if (!s)
                return NULL;
        sodium_memzero(s, size);
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
        /* sodium_free wipes the whole allocation before unmapping it. */
        if (s)
                sodium_free(s);
        return NULL;
}

bool secret_eq(const Secret *a, const Secret *b) {
        if (!a || !b)
                return a == b;
        return a->len == b->len && sodium_memcmp(a->data, b->data, a->len) == 0;
}

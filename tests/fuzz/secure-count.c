/* SPDX-License-Identifier: MIT */
/*
 * secure-count.c — counts the blocks of secure memory (basic/secret.h)
 * alive, for the fuzz targets' leak check. LeakSanitizer does not see
 * them: sodium_malloc() maps its own pages. These two wrappers take the
 * place of libsodium's for the calls made by the program (the core library
 * is linked in statically) and pass them on.
 *
 * Without a sanitizer, secret.c keeps small blocks in arenas it never
 * returns, so the count says nothing; with one, every block is its own
 * sodium_malloc() and the count must be back where it was after each input.
 */
#include <dlfcn.h>
#include <stddef.h>
#include <stdlib.h>

#include "fuzz-check.h"

void *sodium_malloc(size_t size);
void sodium_free(void *p);

static size_t live;

void *sodium_malloc(size_t size) {
        static void *(*real)(size_t);
        void *p;

        if (!real && !(real = (void *(*)(size_t)) dlsym(RTLD_NEXT, "sodium_malloc")))
                abort();
        p = real(size);
        if (p)
                live++;
        return p;
}

void sodium_free(void *p) {
        static void (*real)(void *);

        if (!real && !(real = (void (*)(void *)) dlsym(RTLD_NEXT, "sodium_free")))
                abort();
        if (p)
                live--;
        real(p);
}

size_t fuzz_secure_blocks(void) {
#if defined(__SANITIZE_ADDRESS__)
        return live;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
        return live;
#endif
#endif
        return 0;
}

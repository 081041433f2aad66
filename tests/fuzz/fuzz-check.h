/* SPDX-License-Identifier: MIT */
/*
 * fuzz-check.h — the fuzz targets' assertion: a broken invariant aborts,
 * which libFuzzer (and the corpus replay) reports as a crash, after naming
 * the condition and its line so the report says which invariant broke.
 * And the count of secure memory blocks alive (secure-count.c), which
 * LeakSanitizer cannot see: with a sanitizer the blocks of secure memory
 * alive, else 0.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t fuzz_secure_blocks(void);

#define check(cond)                                                                                        \
        do {                                                                                               \
                if (!(cond)) {                                                                             \
                        fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond);      \
                        abort();                                                                           \
                }                                                                                          \
        } while (0)

/* The libFuzzer entry point: one call of fn(data, size), after which no
 * more secure memory blocks may be alive than before it (no Secret leaked). */
#define FUZZ_ENTRY_NO_SECRET_LEFT(fn)                                                                      \
        int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {                                     \
                size_t blocks = fuzz_secure_blocks();                                                      \
                                                                                                           \
                fn(data, size);                                                                            \
                check(fuzz_secure_blocks() == blocks);                                                     \
                return 0;                                                                                  \
        }

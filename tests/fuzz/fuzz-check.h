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
#include <stdio.h>
#include <stdlib.h>

size_t fuzz_secure_blocks(void);

#define check(cond)                                                                                        \
        do {                                                                                               \
                if (!(cond)) {                                                                             \
                        fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond);      \
                        abort();                                                                           \
                }                                                                                          \
        } while (0)

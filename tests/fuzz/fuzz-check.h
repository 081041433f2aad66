/* SPDX-License-Identifier: MIT */
/*
 * fuzz-check.h — the fuzz targets' assertion: a broken invariant aborts,
 * which libFuzzer (and the corpus replay) reports as a crash, after naming
 * the condition and its line so the report says which invariant broke.
 */
#pragma once

#include <stdio.h>
#include <stdlib.h>

#define check(cond)                                                                                        \
        do {                                                                                               \
                if (!(cond)) {                                                                             \
                        fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond);      \
                        abort();                                                                           \
                }                                                                                          \
        } while (0)

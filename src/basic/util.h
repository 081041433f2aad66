/* SPDX-License-Identifier: MIT */
/*
 * util.h — the few helpers every module shares: cleanup attributes,
 * ownership transfer, string comparison and character sets, and time in
 * microseconds.
 * Nothing here allocates secrets; see secret.h for those.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _warn_unused_result_ __attribute__((warn_unused_result))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* Hand ownership of a pointer to the caller and forget it here. */
#define TAKE_PTR(p)                          \
        ({                                   \
                __typeof__(p) _taken_ = (p); \
                (p) = NULL;                  \
                _taken_;                     \
        })

#define TAKE_FD(fd)                    \
        ({                             \
                int _taken_fd_ = (fd); \
                (fd) = -1;             \
                _taken_fd_;            \
        })

/* tolower() for ASCII only, whatever the locale. */
static inline char ascii_tolower(char c) {
        return c >= 'A' && c <= 'Z' ? (char) (c - 'A' + 'a') : c;
}

static inline bool streq(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}

static inline bool streq_ptr(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return streq(a, b);
}

static inline bool startswith(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

static inline bool endswith(const char *s, const char *suffix) {
        size_t n = strlen(s), k = strlen(suffix);

        return n >= k && streq(s + n - k, suffix);
}

#define ALPHANUMERICAL "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

/* Every byte of @s is one of @charset (true for ""). */
/* No ASCII control character (C0 or DEL) in the @len bytes at @s: text
 * that may go into a header, a signature or a log line. */
static inline bool memory_no_controls(const void *s, size_t len) {
        for (size_t i = 0; i < len; i++) {
                unsigned char c = ((const unsigned char *) s)[i];
                if (c < 0x20 || c == 0x7f)
                        return false;
        }
        return true;
}

static inline bool in_charset(const char *s, const char *charset) {
        return s[strspn(s, charset)] == '\0';
}

static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline void closep(int *fd) {
        if (*fd >= 0)
                close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

static inline void strv_free(char **l) {
        if (!l)
                return;
        for (char **i = l; *i; i++)
                free(*i);
        free(l);
}
static inline size_t strv_length(char *const *l) {
        size_t n = 0;

        while (l && l[n])
                n++;
        return n;
}

static inline void strv_freep(char ***l) {
        strv_free(*l);
}
#define _cleanup_strv_free_ _cleanup_(strv_freep)

typedef uint64_t usec_t;
#define USEC_INFINITY ((usec_t) UINT64_MAX)
#define USEC_PER_SEC ((usec_t) 1000000ULL)
#define USEC_PER_MSEC ((usec_t) 1000ULL)
#define USEC_PER_MINUTE (60ULL * USEC_PER_SEC)
#define USEC_PER_HOUR (60ULL * USEC_PER_MINUTE)
#define USEC_PER_DAY (24ULL * USEC_PER_HOUR)

static inline usec_t now_usec(clockid_t clock) {
        struct timespec ts;
        clock_gettime(clock, &ts);
        return (usec_t) ts.tv_sec * USEC_PER_SEC + (usec_t) ts.tv_nsec / 1000;
}

/*
 * An enum's names: a table indexed by the enum, "NAME_table", and the pair
 * NAME_to_string() (NULL out of range) / NAME_from_string() (-1, the
 * enums' _X_INVALID, for NULL or an unknown name).
 */
static inline int string_table_lookup(const char *const *table, size_t n, const char *s) {
        for (size_t i = 0; s && i < n; i++)
                if (table[i] && streq(table[i], s))
                        return (int) i;
        return -1;
}

#define DEFINE_STRING_TABLE_TO_STRING(name, type)                                           \
        const char *name##_to_string(type i) {                                              \
                return (size_t) i < ELEMENTSOF(name##_table) ? name##_table[i] : NULL;      \
        }

#define DEFINE_STRING_TABLE_LOOKUP(name, type)                                              \
        DEFINE_STRING_TABLE_TO_STRING(name, type)                                           \
        type name##_from_string(const char *s) {                                            \
                return (type) string_table_lookup(name##_table, ELEMENTSOF(name##_table), s); \
        }

/* Allocation that never returns NULL without the caller seeing -ENOMEM. */
char *strdup_or_null(const char *s);
int asprintf_safe(char **ret, const char *fmt, ...) _printf_(2, 3);
/* Replace *ret_error (if ret_error is not NULL) with a formatted message;
 * the error-reporting convention of functions with a char **ret_error. */
void set_error(char **ret_error, const char *fmt, ...) _printf_(2, 3);

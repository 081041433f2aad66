/* SPDX-License-Identifier: MIT */
#include "basic/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

char *strdup_or_null(const char *s) {
        return s ? strdup(s) : NULL;
}

int asprintf_safe(char **ret, const char *fmt, ...) {
        va_list ap;
        char *s;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

void set_error(char **ret_error, const char *fmt, ...) {
        va_list ap;
        char *s;

        if (!ret_error)
                return;
        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
                s = NULL;
        va_end(ap);
        free(*ret_error);
        *ret_error = s;
}

/* SPDX-License-Identifier: MIT */
#include <errno.h>

#include "basic/secret.h"
#include "tap.h"

int main(void) {
        ok(secret_init() == 0, "libsodium initialises");

        _cleanup_secret_ Secret *s = secret_dup("abc", 3);
        ok(s && s->len == 3 && strcmp(s->data, "abc") == 0, "dup copies and NUL-terminates");

        /* Growth crosses the initial capacity many times; content must survive. */
        int r = 0;
        for (int i = 0; i < 1000 && r == 0; i++)
                r = secret_append(&s, "0123456789", 10, 0);
        ok(r == 0 && s->len == 3 + 10000, "append grows to %zu bytes", s ? s->len : 0);
        ok(s->data[3] == '0' && s->data[s->len - 1] == '9' && s->data[s->len] == 0, "append keeps content and NUL");

        _cleanup_secret_ Secret *small = secret_dup("x", 1);
        ok(secret_append(&small, "yz", 2, 2) == -E2BIG, "append refuses to exceed max");
        ok(small->len == 1, "a refused append leaves the secret unchanged");

        _cleanup_secret_ Secret *a = secret_dup("same", 4), *b = secret_dup("same", 4), *c = secret_dup("diff", 4);
        ok(secret_eq(a, b) && !secret_eq(a, c) && !secret_eq(a, NULL), "constant-time equality");
        return tap_done();
}

/* SPDX-License-Identifier: MIT */
/*
 * fuzz-inventory.c — the inventory loader (bytes checks, libyaml events,
 * the schema walker) and the duration parser on arbitrary input. A load
 * either fails with at least one message or yields an Inventory whose
 * documented invariants hold; a duration either fails or survives a
 * format/parse round trip. Nothing may leak or touch memory it does not own.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "basic/duration.h"
#include "basic/util.h"
#include "inventory/inventory.h"
#include "fuzz-check.h"

static void check_target(const InventoryTarget *t) {
        check(t->type >= 0 && t->type < _TARGET_TYPE_MAX);
        check(t->path && t->path[0] == '/');
        check((t->type == TARGET_CREDENTIALS_FILE) == !!t->profile);
        check((t->mode & ~0666U) == 0);
}

static void check_argv(char **argv) {
        if (!argv)
                return;
        check(argv[0] && argv[0][0] != '\0');
        check(argv[0][0] == '/' || !strchr(argv[0], '/'));
}

static void check_inventory(const Inventory *inv) {
        check(inv->source && inv->aws.region && inv->store.key_file);
        check(inv->defaults.max_parallel >= 1 && inv->defaults.max_parallel <= 256);
        check(inv->defaults.verify.consecutive >= 1 && !inv->defaults.verify.bucket);

        for (size_t i = 0; i < inv->n_users; i++) {
                const InventoryUser *u = &inv->users[i];

                check(u->name && strlen(u->name) >= 1 && strlen(u->name) <= 64);
                check(inventory_find_user(inv, u->name) == u);
                check(u->verify.bucket != NULL);
                check(u->max_age > 0 && u->max_age < USEC_INFINITY / 2);
                check(u->verify.timeout > 0 && u->verify.consecutive >= 1);
                check(u->verify.timeout > (usec_t) (u->verify.consecutive - 1) * u->verify.interval);
                check((u->verify.check == VERIFY_CHECK_GET || u->verify.check == VERIFY_CHECK_PUT) ==
                      !!u->verify.check_key);
                for (size_t j = 0; j < u->n_targets; j++)
                        check_target(&u->targets[j]);
                check_argv(u->on_rotate);
                check_argv(u->on_failure);
        }
}

static void fuzz_duration(const uint8_t *data, size_t size) {
        char s[64], buf[DURATION_STRING_MAX];
        usec_t u, v;

        if (size >= sizeof(s))
                return;
        memcpy(s, data, size);
        s[size] = '\0';
        if (parse_duration(s, &u) < 0)
                return;
        check(u < USEC_INFINITY && u % USEC_PER_SEC == 0);
        check(format_duration(u, buf, sizeof(buf)) == buf);
        check(parse_duration(buf, &v) == 0 && v == u);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_inventory_errors_ InventoryErrors e = {};
        _cleanup_inventory_ Inventory *inv = NULL;
        int r;

        fuzz_duration(data, size);

        r = inventory_load_string("fuzz.yaml", (const char *) data, size, &inv, &e);
        if (r == -ENOMEM)
                return 0;
        if (r < 0) {
                check(r == -EINVAL && !inv && e.n > 0 && e.lines[e.n] == NULL);
                for (size_t i = 0; i < e.n; i++)
                        check(startswith(e.lines[i], "fuzz.yaml:") && !strchr(e.lines[i], '\n'));
                return 0;
        }
        check(r == 0 && inv && e.n == 0);
        check_inventory(inv);
        return 0;
}

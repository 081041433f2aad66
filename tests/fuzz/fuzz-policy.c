/* SPDX-License-Identifier: MIT */
/*
 * fuzz-policy.c — the audit's policy rules on arbitrary documents: the
 * input is tried as JSON and as a URL-encoded document, against a user of
 * the inventory and one outside it. Each call must succeed or refuse with
 * a message, and every finding must be one line of printable ASCII.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "basic/util.h"
#include "policy/check.h"
#include "fuzz-check.h"

static void run(const char *doc, size_t len, const PolicyContext *ctx) {
        Findings f = {};
        char *err = NULL;
        int r;

        r = policy_check_document(doc, len, ctx, &f, &err);
        check(r == 0 || r == -EBADMSG || r == -E2BIG);
        check(r == 0 || err != NULL);
        check(f.n <= FINDINGS_MAX);
        for (size_t i = 0; i < f.n; i++) {
                check(finding_code_to_string(f.items[i].code) != NULL);
                for (const char *p = f.items[i].detail; *p; p++)
                        check(*p >= 0x20 && *p < 0x7f);
        }
        free(err);
        findings_clear(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const char *const buckets[] = { "app-bucket" };
        const PolicyContext listed = { .user = "app-bot", .source = "fuzz", .buckets = buckets, .n_buckets = 1,
                                       .read_only = true };
        const PolicyContext unlisted = { .user = "stranger", .source = "fuzz" };
        char *text, *decoded = NULL;

        run((const char *) data, size, &listed);
        run((const char *) data, size, &unlisted);

        text = malloc(size + 1);
        if (!text)
                abort();
        memcpy(text, data, size);
        text[size] = 0;
        if (policy_document_decode(text, &decoded) == 0) {
                run(decoded, strlen(decoded), &listed);
                free(decoded);
        }
        free(text);
        return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * json-secret.h — read the JSON documents that hold a secret: the
 * instance-role credentials IMDS serves (credentials.c) and a json-file
 * target, credential_process's document, read back (targets.c).
 *
 * Every other JSON in keyrotd is read with json-c (json-util.h). These
 * two are not: json-c's tokener copies every string into ordinary heap
 * (its print buffer, then the json_object) and frees it unwiped, so a
 * secret would linger in freed memory, where swap or a core dump can
 * reach it. This reader keeps nothing but offsets into the caller's
 * buffer, and decodes each string it is asked for straight into a Secret
 * (secret.h).
 *
 * What it reads is one object, {"Name": value, ...}, with whitespace
 * around it and nothing else. The members asked for must hold strings;
 * any other member may hold any JSON value, which is checked against the
 * JSON grammar (RFC 8259), nested at most JSON_SECRET_DEPTH_MAX deep, and
 * skipped. Recursion and work are bounded by that depth and the length,
 * which the caller bounds.
 */
#pragma once

#include <stddef.h>

#include "basic/secret.h"

#define JSON_SECRET_DEPTH_MAX 8U

typedef struct JsonSecretField {
        const char *name; /* the member's name, compared exactly (after unescaping) */
        Secret *value;    /* out: the decoded string, UTF-8, NUL-terminated; NULL when absent */
} JsonSecretField;

/**
 * json_secret_parse() - fill @fields from the object in @text.
 * @text, @len: the document (need not be NUL-terminated).
 * @fields: every value must be NULL on entry.
 *
 * Strings are decoded: the JSON escapes, \uXXXX (surrogate pairs joined)
 * as UTF-8. Other bytes are copied as they are.
 *
 * Returns 0 with the value of every member present set; -EBADMSG when
 * @text is not one such object, a member asked for is given twice or is
 * not a string, or a string holds \u0000 (a C reader would see it end
 * there) or an unpaired surrogate; -ENOMEM. On failure every value is
 * NULL again.
 */
int json_secret_parse(const char *text, size_t len, JsonSecretField *fields, size_t n_fields);

/* Free (wipe) the values and set them to NULL. */
void json_secret_fields_clear(JsonSecretField *fields, size_t n_fields);

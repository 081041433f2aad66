/* SPDX-License-Identifier: MIT */
/*
 * sanitize.h — text from anywhere (AWS answers, files, hooks, errno
 * strings) made fit for one log line or one journal field: everything
 * that leaves the process as a message or an audit value passes here.
 *
 * The result is one line of valid UTF-8 within the caller's bound: C0
 * controls, DEL and C1 controls (so also U+009B, the 8-bit CSI) become
 * spaces, so no text can start a new line or drive a terminal; bytes that
 * are not valid UTF-8 (overlong forms and surrogates included) become
 * '?'; text beyond the bound is cut at a character boundary and ends in
 * "...". Anything shaped like an AWS secret access key (a run of
 * SANITIZE_SECRET_RUN_MIN or more base64 characters mixing upper case,
 * lower case and digits) becomes SANITIZE_REDACTED: no caller should pass
 * a secret, and this is the second line of defence if one does. Key ids,
 * request ids, hex digests and words are kept as they are.
 */
#pragma once

#include <stddef.h>

#define SANITIZE_SECRET_RUN_MIN 40 /* secret access keys are 40 base64 characters */
#define SANITIZE_REDACTED "[redacted]"

/**
 * sanitize_text() - copy @in to @out (@size bytes, NUL-terminated) as
 * described above; NULL becomes "". Returns the length written.
 */
size_t sanitize_text(const char *in, char *out, size_t size);

/**
 * sanitize_trim_cut() - for text a bounded format cut short: drop its
 * trailing run of base64 characters, which may be the head of a secret
 * now too short for sanitize_text() to recognise.
 */
void sanitize_trim_cut(char *s);

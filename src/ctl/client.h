/* SPDX-License-Identifier: MIT */
/*
 * client.h — the client side of the control socket (protocol and
 * framing in control.h): connect, send one request, read its stream lines
 * and its final response.
 */
#pragma once

#include <json-c/json.h>

#include "basic/secret.h"
#include "basic/util.h"

/* How long ctl_call() waits for the next line before giving up. */
#define CTL_TIMEOUT_DEFAULT (30 * USEC_PER_SEC)
/* The longest line accepted from the daemon (a status of a big inventory). */
#define CTL_LINE_MAX (16U * 1024U * 1024U)

/* The longest answer to get: a key, its secret and an Expiration, escaped. */
#define CTL_SECRET_LINE_MAX (16U * 1024U)

/* ctl_call(): the final response had "ok":false (a positive outcome, not an errno). */
#define CTL_REMOTE_ERROR 1

/* Called for every line, stream lines and the final response alike; @line is
 * borrowed for the call (json_object_get() it to keep it). A negative return
 * aborts ctl_call() with that value. */
typedef int (*ctl_line_t)(json_object *line, void *userdata);

/**
 * ctl_connect() - connect to the control socket at @path.
 *
 * Returns 0 and a blocking, close-on-exec socket in *@ret_fd, or a negative
 * errno of socket()/connect(): -ENOENT (no socket there), -ECONNREFUSED
 * (a stale socket: no daemon), -EACCES (the socket's mode keeps us out),
 * -EAGAIN (the daemon's backlog stayed full for CTL_TIMEOUT_DEFAULT),
 * -ENAMETOOLONG.
 */
int ctl_connect(const char *path, int *ret_fd);

/**
 * ctl_call() - send @req on @fd and read lines until the final response
 * (an object with "ok"), passing each to @on_line (may be NULL).
 *
 * Returns 0 when the final response says "ok":true, CTL_REMOTE_ERROR when it
 * says false, or a negative errno: -ETIMEDOUT (no line for
 * CTL_TIMEOUT_DEFAULT), -ECONNRESET (closed before the final response),
 * -EBADMSG (a line that is not a JSON object, or longer than CTL_LINE_MAX),
 * or what @on_line returned. If the daemon closes before reading the whole
 * request (a refusal), its answer is still read and reported.
 */
int ctl_call(int fd, json_object *req, ctl_line_t on_line, void *userdata);

/* ctl_call() with another idle timeout: the longest wait for the next line;
 * 0 or USEC_INFINITY = wait for ever (rotate --wait: a rotation may verify
 * for minutes without a word). */
int ctl_call_full(int fd, json_object *req, usec_t idle_timeout, ctl_line_t on_line, void *userdata);

/**
 * ctl_call_secret() - send @req (a get) on @fd and read the one line that
 * answers it into secure memory, never through json-c (which would copy
 * the secret into ordinary heap): parse it with json_secret_parse().
 * @ret: the line, without its "\n".
 *
 * Returns 0, or -ETIMEDOUT (no answer within @timeout), -ECONNRESET
 * (closed before a whole line), -EBADMSG (a line longer than
 * CTL_SECRET_LINE_MAX), -ENOMEM, or an error of send()/recv().
 */
int ctl_call_secret(int fd, json_object *req, usec_t timeout, Secret **ret);

/*
 * ctl_json_sanitize() - make @o fit for a terminal before it is printed as
 * JSON: json-c escapes C0 controls but passes C1 controls (U+0080 …
 * U+009F, among them the 8-bit CSI U+009B), DEL and invalid UTF-8 through
 * as they are. Every string value holding such a byte is replaced by its
 * sanitize_text() form (basic/sanitize.h), in place, recursively. Strings
 * of plain ASCII are left alone.
 */
void ctl_json_sanitize(json_object *o);

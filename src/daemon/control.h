/* SPDX-License-Identifier: MIT */
/*
 * control.h — the daemon's control socket (docs/DESIGN.md §2): newline-delimited
 * JSON over an AF_UNIX stream socket, served on the manager's sd-event loop.
 *
 * FRAMING
 *
 *   A client sends one request object per line ("\n"; a "\r" before it and
 *   blank lines are ignored; a last line without "\n" counts when the client
 *   shuts down its sending side). The server answers every request with any
 *   number of *stream lines* followed by exactly one *final response*, each
 *   one JSON object on one line:
 *
 *     stream line     an object with an "event" member and no "ok" member
 *     final response  an object with an "ok" member (true or false)
 *
 *   so a client reads lines until one contains "ok". One request is served at
 *   a time per connection: lines sent ahead (pipelined) wait until the current
 *   request's final response has been queued, and are answered in order.
 *   Every error is {"ok":false,"error":"…"} (handlers may add members).
 *
 *   Limits: a request line is at most CONTROL_LINE_MAX bytes including its
 *   "\n"; at most CONTROL_USERS_MAX users per request; a connection whose
 *   unsent output exceeds CONTROL_OUTPUT_MAX (a reader too slow or gone) is
 *   dropped.
 *
 * DESCRIPTORS AND DEADLINES
 *
 *   Every client holds a descriptor, and the daemon needs descriptors of its
 *   own (AWS connections, the store, hooks) whatever its clients do: at most
 *   control_server_set_max_connections() authorised connections are open at
 *   once (the manager derives it from RLIMIT_NOFILE; never more than
 *   CONTROL_CONNECTIONS_MAX), and at most CONTROL_REFUSED_MAX refused ones
 *   are being answered. A new authorised client beyond the cap takes the
 *   place of the connection idle longest (no request in flight, no answer
 *   unsent); when every connection is busy it is refused with
 *   {"ok":false,"error":"too many connections …"}.
 *
 *   A connection is dropped (closed, and logged at warning level, at most
 *   CONTROL_LOG_BURST lines per CONTROL_LOG_INTERVAL, then a count) when
 *     - it sends no request within CONTROL_IDLE_TIMEOUT of connecting or of
 *       its last answer (idle),
 *     - a request line is not complete within CONTROL_LINE_TIMEOUT of its
 *       first byte (a slow writer),
 *     - answers wait unsent for CONTROL_SEND_TIMEOUT without the client
 *       reading a byte (a slow reader).
 *   A request in flight has no deadline: rotate --wait may take minutes.
 *
 *   Protocol errors — a line too long, not JSON, not an object, "cmd" missing,
 *   not a string or unknown — are answered with an error, after which the
 *   server closes the connection (whatever was pipelined behind is dropped;
 *   the server shuts down its side and discards input until the client hangs
 *   up, at most 1 s, so the client reads the error rather than a reset).
 *   Invalid arguments of a known command (a wrong type, a missing or unknown
 *   member, a bad user name) and errors of the handler are answered with an
 *   error and the connection stays open.
 *
 *   A client may shut down its sending side after its requests and still
 *   read every answer; the server closes after the last one. A client that
 *   hangs up (both directions) is gone: requests in flight see
 *   control_request_alive() false, requests not yet started never start.
 *
 * AUTHORISATION
 *
 *   At accept, by SO_PEERCRED / SO_PEERGROUPS: root (uid 0), the server's own
 *   effective uid (root in production; it could ptrace the daemon anyway), or
 *   a peer whose effective gid or one of whose supplementary groups is
 *   CONTROL_GROUP (resolved with getgrnam() when the server starts; if it does
 *   not exist, only the first two). Anyone else gets one line,
 *   {"ok":false,"error":"permission denied: …"}, and is disconnected; nothing
 *   it sends is parsed and no handler runs. Why SO_PEERGROUPS rather than
 *   getgrouplist(): see control_peer_credentials() in control.c.
 *
 *   The credentials socket (control_server_new_credentials(), mode 0666)
 *   is the same protocol with another door: every peer is let in, any
 *   command but get is answered {"ok":false,"error":"permission denied:
 *   the credentials socket answers only get"} and the connection closed,
 *   and the get handler decides from the peer's credentials
 *   (control_request_peer(), recorded at accept like above) whether it may
 *   have the key it asks for.
 *
 * REQUESTS (unknown members are errors)
 *
 *   {"cmd":"status"}
 *   {"cmd":"rotate","users":["a","b"]}         non-empty, no duplicates
 *   {"cmd":"rotate","all":true}                 exactly one of users / all:true
 *       optional "wait":true|false (default false)
 *   {"cmd":"rotate","users":["a"],"replace_lost":true}
 *       one user only: replace the Active key keyrotd holds no secret for
 *       (ROTATION_REPLACE_LOST in rotation.h)
 *   {"cmd":"reload"}
 *   {"cmd":"rollback","user":"a"}
 *   {"cmd":"get","user":"a"}
 *
 *   A user name is an IAM user name: 1 to 64 of [A-Za-z0-9+=,.@_-].
 *
 * RESPONSES (what the handlers send; members marked ? may be absent)
 *
 *   status:
 *     {"ok":true, "version":"0.1.0", "uptime_sec":N,
 *      "users":[{"name":"a",
 *                "phase":"idle",          store phase (store_phase_to_string),
 *                                         or "not-adopted"
 *                "lost"?:true,            IAM no longer has the key the store
 *                                         holds (daemon/keycheck.h)
 *                "next_action"?:"none",   decide() on the store (a lost
 *                "next_reason"?:"…",      user: "fail", and why, with the fix)
 *                "current_key_id"?:"AKIA…",
 *                "key_age_sec"?:N,        age of the current key
 *                "next_due_sec"?:N,       seconds from now, negative = overdue;
 *                                         absent = not scheduled
 *                "draining_key_id"?:"AKIA…", a parked drain: the old key
 *                "drain_warnings"?:N,       kept Active for its consumers,
 *                "drain_next_sec"?:N,       the warnings so far, the next look
 *                "last_result"?:"completed", a rotation outcome
 *                "last_error"?:"…",
 *                "failures":N,            consecutive failed rotations
 *                "in_flight":bool}, …]}
 *
 *   rotate without wait (after queueing):
 *     {"ok":true, "queued":true, "lost"?:["a",…]}   ("all": the lost users
 *     passed over). A lost user named in "users" (without "replace_lost")
 *     is an error, and nothing is queued; so is a rollback of one.
 *   rotate with "wait": one stream line per user as its rotation ends,
 *     {"event":"rotation", "user":"a",
 *      "outcome":"completed"|"not-due"|"failed"|"parked" (rotation_outcome_to_string),
 *      "old_key_id":"…", "new_key_id":"…" ("" when none), "error"?:"…"}
 *   and, when every one has ended, the final response
 *     {"ok":bool (false if any failed or was parked), "failed":N, "error"?:"…"}
 *   A user whose rotation is already queued or running is not waited for.
 *   Other stream events may be added ({"event":"…","user":"…",…});
 *   clients show what they do not know generically.
 *
 *   reload:    {"ok":true}, or {"ok":false, "error":"FILE:LINE:COL: …",
 *              "problems"?:["FILE:LINE:COL: …", …]} (every problem, when
 *              given; keyrotctl prints them all). The old inventory stays.
 *   rollback:  a "rotation" stream line for the user (as above: old_key_id
 *              is the key dropped, new_key_id the one current again) and
 *              then {"ok":bool, "failed":N, "error"?:"…"}
 *
 *   get:       {"ok":true, "Version":1, "AccessKeyId":"…", "SecretAccessKey":"…",
 *              "Expiration":"2026-12-07T22:00:05Z"} (credential_process's
 *              document, "ok" first), sent from secure memory
 *              (control_reply_secret()); or an error. A client reads it
 *              without json-c (basic/json-secret.h), which would copy the
 *              secret into ordinary heap.
 *
 *   keyrotctl's exit codes from these: 0 for "ok":true; 1 for "ok":false
 *   (rotate --wait: also when a "rotation" line says failed or parked); 2 for
 *   a rejected reload; 3 when it cannot connect, the connection breaks before
 *   the final response, or the refusal "permission denied: …" comes back.
 *
 * LIFETIME
 *
 *   A handler is called once per request and answers with control_reply()
 *   (exactly once: the final response) and control_request_end(), now or
 *   later from any callback on the same loop; control_stream() may be called
 *   any number of times before control_reply(). If the client goes away,
 *   control_request_alive() turns false and these calls become no-ops — but
 *   control_request_end() must still be called: it frees the request. A
 *   request ended without a reply gets an error reply. A handler returning a
 *   negative errno *without having replied* gets {"ok":false,"error":"CMD:
 *   strerror"} sent and the request ended for it; once it has replied or
 *   ended, its return value is ignored. A NULL handler answers "not supported".
 *   Requests outlive control_server_free() (they go dead); the owner still
 *   ends each one.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "basic/secret.h"
#include "basic/util.h"

#define CONTROL_GROUP "keyrotd"
#define CONTROL_LINE_MAX (64U * 1024U)          /* one request, "\n" included */
#define CONTROL_OUTPUT_MAX (1024U * 1024U)      /* unsent bytes before the client is dropped */
#define CONTROL_USERS_MAX 10000U
/* The most authorised connections at once, whatever the descriptor limit:
 * each may hold a CONTROL_LINE_MAX input buffer. */
#define CONTROL_CONNECTIONS_MAX 1024U
/* Refused connections being answered at once (beyond, closed at once):
 * descriptors on top of the connection cap. */
#define CONTROL_REFUSED_MAX 64U
#define CONTROL_IDLE_TIMEOUT (30 * USEC_PER_SEC)
#define CONTROL_LINE_TIMEOUT (10 * USEC_PER_SEC)
#define CONTROL_SEND_TIMEOUT (30 * USEC_PER_SEC)
#define CONTROL_LOG_BURST 10U
#define CONTROL_LOG_INTERVAL (10 * USEC_PER_SEC)
#define CONTROL_SOCKET_MODE 0660
#define CREDENTIALS_SOCKET_MODE 0666

typedef struct ControlServer ControlServer;
typedef struct ControlRequest ControlRequest; /* one request in flight; valid until control_request_end() */

typedef struct ControlHandlers {
        /* Each handler answers through control_reply()/control_stream() and
         * ends with control_request_end(), now or later (asynchronously,
         * e.g. rotate --wait). A negative return = error reply "CMD: strerror". */
        int (*status)(ControlRequest *req, void *userdata);
        /* users: NULL-terminated, validated, without duplicates; NULL = all.
         * users and user (rollback) are valid during the call only. */
        int (*rotate)(ControlRequest *req, char *const *users, bool wait, bool replace_lost, void *userdata);
        int (*reload)(ControlRequest *req, void *userdata);
        int (*rollback)(ControlRequest *req, const char *user, void *userdata);
        /* Answers with control_reply_secret(), or an error. */
        int (*get)(ControlRequest *req, const char *user, void *userdata);
} ControlHandlers;

/* Who sent a request: the peer's credentials at connect() (SO_PEERCRED,
 * SO_PEERGROUPS). */
typedef struct ControlPeer {
        uid_t uid;
        gid_t gid;
        gid_t *groups; /* supplementary groups */
        size_t n_groups;
        bool credentials_socket; /* it came through the credentials socket */
} ControlPeer;

/**
 * control_server_new() - serve the control socket on @e.
 * @listen_fd: a listening AF_UNIX stream socket (socket activation, from
 *             sd_listen_fds_with_names() named "control"), or -1. On success
 *             the server owns it; on failure the caller still does.
 * @path:      with @listen_fd < 0, where to create the socket. Its parent
 *             directory must exist. A socket nobody answers on (stale, left
 *             by a crash) is replaced; a symlink or any other non-socket
 *             file is refused (-ELOOP, -EEXIST); a socket another server
 *             answers on is -EADDRINUSE. The new socket is mode 0660, group
 *             CONTROL_GROUP when that exists; it is removed again by
 *             control_server_free() if it is still ours.
 * @h:         copied; @userdata is passed to every handler.
 *
 * Returns 0, or a negative errno (-ENAMETOOLONG, -ENOTSOCK/-EINVAL for a
 * listen_fd that is not a listening AF_UNIX stream socket, bind/chown errors).
 */
int control_server_new(sd_event *e, int listen_fd, const char *path, const ControlHandlers *h, void *userdata,
                       ControlServer **ret);
/* The credentials socket: like control_server_new(), but the socket file
 * is mode CREDENTIALS_SOCKET_MODE (no group), every peer is let in and
 * only get is served (see AUTHORISATION). */
int control_server_new_credentials(sd_event *e, int listen_fd, const char *path, const ControlHandlers *h,
                                   void *userdata, ControlServer **ret);

/* At most @n authorised connections from now on (clamped to 1 …
 * CONTROL_CONNECTIONS_MAX; the default is CONTROL_CONNECTIONS_MAX).
 * Connections already open beyond a lowered cap stay. */
void control_server_set_max_connections(ControlServer *s, unsigned n);
unsigned control_server_max_connections(const ControlServer *s);

/* Close the listening socket and every connection; requests in flight go
 * dead (their owners still end them). NULL is a no-op. */
ControlServer *control_server_free(ControlServer *s);
static inline void control_server_freep(ControlServer **s) {
        control_server_free(*s);
}

/* The final response: adds "ok":true unless @obj has "ok"; takes ownership
 * of @obj (may be NULL: then {"ok":true}). A second reply is dropped. */
void control_reply(ControlRequest *req, json_object *obj);
/* The final response when it holds a secret: @line is one JSON object
 * (without "\n") in secure memory, "ok" member included; it is sent from
 * there and wiped once out. Takes ownership. Requests pipelined behind it
 * wait until it is out. */
void control_reply_secret(ControlRequest *req, Secret *line);
/* A stream line (progress of rotate --wait); takes ownership. An "ok" member
 * is removed and a missing "event" becomes "progress", so a client never
 * mistakes it for the final response. Dropped after the reply. */
void control_stream(ControlRequest *req, json_object *obj);
/* The request is done: frees it. Pipelined requests of the client proceed. */
void control_request_end(ControlRequest *req);
/* False once the client went away (or the server was freed): stop streaming. */
bool control_request_alive(ControlRequest *req);
/* The peer that sent @req; valid until control_request_end(). */
const ControlPeer *control_request_peer(ControlRequest *req);

/* Exposed for tests. */

/* The authorisation rule: root or @self, or @gid / one of @groups equals
 * @allowed_gid (when @have_group; otherwise root and @self only). */
bool control_peer_allowed(uid_t uid, gid_t gid, const gid_t *groups, size_t n_groups, uid_t self, bool have_group,
                          gid_t allowed_gid);

/* The peer credentials of a connected socket: SO_PEERCRED, and the
 * supplementary groups from SO_PEERGROUPS (*ret_groups malloc'd). */
int control_peer_credentials(int fd, uid_t *ret_uid, gid_t *ret_gid, gid_t **ret_groups, size_t *ret_n_groups);

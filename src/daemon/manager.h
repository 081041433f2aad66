/* SPDX-License-Identifier: MIT */
/*
 * manager.h — the long-running daemon: one sd-event loop that owns the
 * scheduler (one timer for the next due user), signals, the control
 * socket, sd_notify and the watchdog, and feeds the rotation engine.
 *
 * Scheduling: a user is due at its current key's creation time plus
 * max_age plus a per-user random splay; a user in grace is due when grace
 * ends; a failed user retries with exponential backoff (1 min doubling to
 * 6 h). Interrupted rotations are recovered at start before anything new,
 * once IAM has confirmed the record is not from an older copy of the store:
 * a user whose held key IAM no longer has is lost (daemon/keycheck.h),
 * shown so by status, and neither scheduled nor recovered.
 */
#pragma once

#include "runtime.h"

typedef struct Manager Manager;

typedef struct ManagerOptions {
        const char *socket_path;             /* the control socket, unless systemd passes "control" */
        /* The readers' socket, unless systemd passes "credentials"; NULL:
         * credentials.sock beside the control socket (passed or made). */
        const char *credentials_socket_path;
} ManagerOptions;

/* rt must have its inventory, lock, store and AWS stack open. Logs what failed. */
int manager_new(Runtime *rt, const ManagerOptions *opts, Manager **ret);
Manager *manager_free(Manager *m);
static inline void manager_freep(Manager **m) {
        manager_free(*m);
}
/* Run until SIGTERM/SIGINT; returns 0 or a negative errno. */
int manager_run(Manager *m);

/* Backoff after n consecutive failures (n >= 1): 1 min doubling, capped at 6 h. */
usec_t manager_backoff(unsigned failures);

/* How many connections on each of the two sockets (control, credentials)
 * a descriptor limit of @nofile leaves room for, beside the reserve
 * keyrotd keeps for its own work (AWS, the store, hooks: a fixed part and
 * a part per max_parallel slot; manager.c says what each counts). At most
 * CONTROL_CONNECTIONS_MAX; at least a few. */
unsigned manager_connection_cap(uint64_t nofile, unsigned max_parallel);

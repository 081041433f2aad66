/* SPDX-License-Identifier: MIT */
/*
 * committer.h — owns the one thread keyrotd has: the one that writes store
 * snapshots, so that the event loop never waits on fsync.
 *
 * A commit's two fsyncs and its rename take milliseconds; on the loop they
 * stalled every rotation in flight, every AWS answer and the control
 * socket meanwhile. The thread only calls store_snapshot_write(): it never
 * touches the users, secure memory, sd-event or libcurl. Its result comes
 * back through an eventfd, and done runs on the loop.
 */
#pragma once

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "store/store.h"

typedef struct Committer Committer;
typedef void (*committer_done_t)(int result, void *userdata);

int committer_new(sd_event *event, Store *store, Committer **ret);
/* Waits for a write in flight to end (its done is not called). */
Committer *committer_free(Committer *c);

/* A write is in flight. */
bool committer_busy(const Committer *c);

/* Write snap on the thread, then, on the loop, free it through
 * store_snapshot_done() and call done(result). -EBUSY while one is in
 * flight; on any error snap stays the caller's and done is not called. */
int committer_submit(Committer *c, StoreSnapshot *snap, committer_done_t done, void *userdata);

/* SPDX-License-Identifier: MIT */
/*
 * keycheck.h — is the key the store holds for a user still a key IAM has?
 *
 * A store restored from an old backup or snapshot of the state directory
 * is a valid, well-sealed file that holds keys later rotations deleted
 * (docs/DESIGN.md §6). Nothing in the file can tell: its generation is
 * consistent, and so is every record. IAM can: the key a record holds as
 * in service is no longer listed, or is listed Inactive. Such a user is
 * *lost*: keyrotd holds no working secret for it, and recovering its
 * record (finishing or undoing the rotation it shows) would act on a past
 * that is no longer true — rewrite the targets with the stale key, or
 * delete the key the applications use now. The fix is the operator's:
 * `keyrotctl rotate USER --replace-lost`.
 *
 * The rule is decide()'s own (rotation/decide.h): a lost user is one for
 * which decide() answers KeyMissing or KeyInactive on IAM's real list.
 * decide() asks that of an idle record; it is asked here of the record as
 * if idle, because the record's current key is the one in service in every
 * phase except distributed, notified and rolling-back, where it is the new
 * key and decide() itself knows what a vanished one means (roll back).
 *
 * The daemon checks every user that holds a key after it is ready, a few at
 * a time (KeyChecker), and keeps the answer in memory for status and the
 * schedule; keyrotd --once checks the records it would recover. Why IAM and
 * not a witness of the store's generation kept outside the state
 * directory: see docs/DESIGN.md §6.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "aws/client.h"
#include "inventory/inventory.h"
#include "store/store.h"

#define KEYCHECK_REASON_MAX 768

/**
 * keycheck_lost() - whether @su is lost, given IAM's list of the user's
 * keys. Pure. When it is, @reason (may be NULL) says why and names the fix;
 * a record that holds no key, or no secret for it, is never lost (it is
 * not adopted, and decide() says so).
 */
bool keycheck_lost(const InventoryUser *iu, const StoreUser *su, const ListAccessKeysResult *keys, usec_t now,
                   char *reason, size_t size);

/* "KEY_ID of USER is not an Active key in IAM (missing|Inactive); the store
 * may be an older copy …: run 'keyrotctl rotate USER --replace-lost'" —
 * the words status, get and --once use. @status: NULL for a key IAM does
 * not list. */
void keycheck_explain(const char *user, const char *key_id, const AccessKeyMeta *listed, char *buf, size_t size);

/*
 * A queue of ListAccessKeys calls, at most @parallel at once, each answer
 * handed to @done (on the loop; @result is borrowed for the call). For the
 * daemon's check at start and --once's before recovery.
 */
typedef struct KeyChecker KeyChecker;
typedef void (*keycheck_done_t)(const char *user, const AwsResult *result, void *userdata);

int keychecker_new(AwsClient *aws, unsigned parallel, keycheck_done_t done, void *userdata, KeyChecker **ret);
/* Queue @user (copied); answered in the order queued. */
int keychecker_add(KeyChecker *k, const char *user);
/* Calls queued or in flight. */
size_t keychecker_busy(const KeyChecker *k);
/* Cancels what is queued and in flight (no callbacks). NULL is a no-op. */
KeyChecker *keychecker_free(KeyChecker *k);
static inline void keychecker_freep(KeyChecker **k) {
        keychecker_free(*k);
}

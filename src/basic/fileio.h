/* SPDX-License-Identifier: MIT */
/*
 * fileio.h — the one way keyrotd writes a file that matters, and the one
 * way it reads a file that holds a secret.
 *
 * write_file_atomic() replaces a file so that a reader (or a crash) sees
 * either the whole old content or the whole new content, never a mix, and
 * the new content never exists on disk with wider permissions or the wrong
 * owner, not even for an instant. The store and the credential targets
 * both use it.
 *
 * read_file_secure() reads a small file straight into secure memory
 * (secret.h), optionally refusing files that others could have read.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "basic/secret.h"

typedef struct WriteOptions {
        uid_t uid;           /* owner of the new file; (uid_t) -1 = our euid */
        gid_t gid;           /* group of the new file; (gid_t) -1 = our egid */
        mode_t mode;         /* permission bits, 0777 at most; 0 = 0600 */
        bool refuse_symlink; /* final component is a symlink → -ELOOP */
        bool no_replace;     /* an existing target → -EEXIST (never replaced) */
        bool sync;           /* fsync the file and its directory */
} WriteOptions;

/* Start from this, then set what differs: a zeroed struct would mean
 * "chown to root, no fsync". Passing NULL options means exactly this. */
#define WRITE_OPTIONS_INIT                                                       \
        ((WriteOptions){ .uid = (uid_t) -1, .gid = (gid_t) -1, .mode = 0600, \
                         .refuse_symlink = true, .no_replace = false, .sync = true })

/**
 * inherit_owner() - the owner root should give a file it writes for a service.
 *
 * Run as root beside the service (keyrotctl adopt, provision, keyrotd --once),
 * a new 0600 file owned by root would lock the service user out of its own
 * state. So, for root only: the owner of the directory @path is in
 * (StateDirectory= gives that to the service user; whoever owns a directory
 * can replace its files anyway). Anyone else, or on error: (uid_t) -1 /
 * (gid_t) -1, i.e. our own, as WriteOptions understands them.
 */
void inherit_owner(const char *path, uid_t *ret_uid, gid_t *ret_gid);

/**
 * write_file_atomic() - replace @path with @len bytes of @data, atomically.
 * @dirfd: directory that a relative @path starts from, or AT_FDCWD.
 * @path: the file to write; its parent directory must exist (never created).
 * @opts: owner, group, mode, symlink and sync policy; NULL = WRITE_OPTIONS_INIT.
 *
 * A temporary file with a random name is created beside the target (same
 * directory, so the rename cannot cross a filesystem), given its owner and
 * mode, filled, fsync'd and renamed over the target; then the directory is
 * fsync'd. The final component of @path is never followed: with
 * refuse_symlink a symlink there is refused (-ELOOP), without it the
 * symlink itself is replaced, so its target is never written.
 *
 * Returns 0, or a negative errno with the target untouched and no temporary
 * file left behind (-ENOENT: parent directory missing; -ENOSPC/-EDQUOT/-EFBIG:
 * out of room; -ELOOP; -EEXIST with no_replace; -EISDIR; -EINVAL: bad path,
 * or a mode with setuid/setgid/sticky bits). One exception: if fsync of
 * the directory fails after the rename, the new content is already in
 * place but may not survive a crash; the error is still returned so the
 * caller does not count on it.
 */
int write_file_atomic(int dirfd, const char *path, const void *data, size_t len, const WriteOptions *opts);

/**
 * remove_stale_temp_files() - delete temporaries a crash left beside @path.
 *
 * A crash between creating the temporary file and the rename leaves it
 * behind (with the final owner and mode, so nothing leaks, but it is
 * litter, and for a target it holds a copy of a secret). Only names that
 * write_file_atomic() itself would generate for @path are removed.
 * Call it only while holding the lock that serialises writers of @path
 * (keyrotd's state lock): a concurrent write_file_atomic() would lose its
 * temporary file and fail. Returns the number removed or a negative errno.
 */
int remove_stale_temp_files(int dirfd, const char *path);

/**
 * check_private_file() - is the open file @fd fit to hold a secret?
 * @path: used only in the message.
 * @service: who besides root may own it: the user keyrotd acts for (our
 *           effective uid, or the service user root works beside).
 * @ret_error: on failure, a human-readable reason (may be NULL).
 *
 * Refuses (-EPERM) a file with any group or other permission bit (mode &
 * 077) and a file owned by anyone but root or @service, whoever we are,
 * root included: either would mean someone else could have read or
 * replaced the secret. Returns 0, -EPERM, or -errno from fstat.
 */
int check_private_file(int fd, const char *path, uid_t service, char **ret_error);

typedef enum ReadFileFlags {
        READ_FILE_PRIVATE = 1 << 0,  /* apply check_private_file() for our effective uid */
        READ_FILE_NOFOLLOW = 1 << 1, /* refuse a symlink as final component (-ELOOP) */
} ReadFileFlags;

/**
 * read_file_secure() - read a whole regular file into secure memory.
 * @dirfd: directory that a relative @path starts from, or AT_FDCWD.
 * @path: the file; "" reads @dirfd itself, a file the caller opened for
 *        reading (and has judged by fstat), from its current offset.
 * @max: the most bytes accepted; a longer file is refused with -E2BIG.
 * @ret: the content (NUL-terminated Secret) on success; untouched on failure.
 * @ret_error: on failure, a human-readable reason (may be NULL).
 *
 * The bytes go straight from read(2) into sodium_malloc'd memory; any
 * bounce buffer is wiped. Only regular files are read (-EINVAL otherwise,
 * -EISDIR for a directory), so a FIFO or device cannot block or feed us.
 * Returns 0 or a negative errno (-ENOENT when the file does not exist).
 */
int read_file_secure(int dirfd, const char *path, size_t max, ReadFileFlags flags, Secret **ret,
                     char **ret_error);

/**
 * read_file_bounded() - the same checks and bounds, into ordinary heap.
 * For content that is not itself secret (e.g. ciphertext). *ret is
 * malloc'd, NUL-terminated for convenience (not counted in *ret_len).
 */
int read_file_bounded(int dirfd, const char *path, size_t max, ReadFileFlags flags, uint8_t **ret,
                      size_t *ret_len, char **ret_error);

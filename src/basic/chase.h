/* SPDX-License-Identifier: MIT */
/*
 * chase.h — walk a path that keyrotd writes a secret into or runs a
 * program from, so that nobody but the users it trusts can have chosen
 * where the path leads (docs/DESIGN.md §6, "Trust boundaries").
 *
 * Trusted are root, the service user (the uid keyrotd runs as) and, for
 * a target, the target's configured owner. Every component on the way is
 * opened relative to the one before (openat2() with RESOLVE_NO_SYMLINKS,
 * or O_PATH|O_NOFOLLOW where the kernel lacks it), looked at through its
 * descriptor, and judged:
 *
 *  - its owner is root, the service user or the target's owner; once the
 *    walk is inside a directory of the owner (one that is neither root's
 *    nor the service user's), only the owner or root may own the rest, so
 *    what the owner controls never leads back into what keyrotd controls;
 *  - a directory writable by group or others is refused, except a sticky
 *    one such as /tmp whose next component is owned by root or the
 *    service user: in a sticky directory only a name's owner may remove
 *    or rename it, so nobody else can have made or swapped it;
 *  - a symbolic link is refused (targets), or followed (programs) with its
 *    own owner judged like any component and its text walked the same way.
 *
 * What is checked is what the caller uses: the descriptor, not the string.
 * The style is systemd's chase() with CHASE_SAFE, written for these rules.
 */
#pragma once

#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* Symbolic links followed in one walk before giving up with -ELOOP. */
#define CHASE_SYMLINKS_MAX 32

typedef struct ChaseTrust {
        uid_t service; /* the uid keyrotd runs as; root is always trusted */
        uid_t owner;   /* a target's configured owner; (uid_t) -1 for none */
} ChaseTrust;

/* The trust of keyrotd as it runs now, for a target owned by @owner
 * ((uid_t) -1: not configured). */
static inline ChaseTrust chase_trust(uid_t owner) {
        return (ChaseTrust){ .service = geteuid(), .owner = owner };
}

typedef enum ChaseFlags {
        CHASE_NO_SYMLINKS = 1 << 0, /* a symlink in any component is refused (-ELOOP) */
} ChaseFlags;

/**
 * chase() - open @path, judging every component on the way.
 * @path: absolute; "." and ".." are walked like any other component.
 * @trust: who may own what.
 * @ret_fd: an O_PATH descriptor of what @path names (may be NULL).
 * @ret_st: its stat (may be NULL).
 * @ret_error: on failure, a message naming the offending component, such
 *             as "/home/backup/.aws is a symbolic link" or "/srv/app is
 *             writable by group" (may be NULL; the caller frees it).
 *
 * The final component is judged by its owner only (and followed if it is
 * a link and @flags allow): whether it may be written or run is the
 * caller's business, see chase_target_directory() and chase_program().
 *
 * Returns 0; -ENOENT (a component does not exist), -ENOTDIR, -ELOOP (a
 * symlink where none is allowed, or too many), -EPERM (a rule above is
 * broken), -EINVAL (not an absolute path), -ENOMEM, or an errno from
 * opening a component (-EACCES). Outputs untouched on failure.
 */
int chase(const char *path, const ChaseTrust *trust, ChaseFlags flags, int *ret_fd, struct stat *ret_st,
          char **ret_error);

/**
 * chase_target_directory() - the directory a target file is written in.
 * @path: the target file (absolute); its parent directory is resolved.
 * @ret_dirfd: an O_PATH descriptor of that directory, for openat() and
 *             friends (may be NULL).
 *
 * chase() with CHASE_NO_SYMLINKS of the parent, which must be a directory
 * that is neither sticky nor writable by group or others: in such a
 * directory another user could have made the file, or could make it
 * between a check and the write. Returns as chase().
 */
int chase_target_directory(const char *path, const ChaseTrust *trust, int *ret_dirfd, char **ret_error);

/**
 * chase_program() - may keyrotd run the program at @path?
 *
 * chase() of @path with symlinks followed (judged as above), with root and
 * @service trusted; the program must be a regular file owned by one of
 * them and writable by neither group nor others. Whether it is executable
 * is left to exec. Returns as chase() (-EACCES also for a file that is not
 * a regular file).
 */
int chase_program(const char *path, uid_t service, char **ret_error);

/* SPDX-License-Identifier: MIT */
/*
 * targets.h — hand a user's key to the application: write it into the
 * files the application reads its credentials from (docs/DESIGN.md §1 step 4).
 *
 * Three formats:
 *
 *  - credentials-file: the AWS shared credentials file. Only the profile's
 *    aws_access_key_id and aws_secret_access_key change, its
 *    aws_session_token and aws_security_token are removed (a leftover
 *    session token would be sent with the new long-term key and make every
 *    request fail); every other byte (other profiles, comments, order) is
 *    kept. See ini.h for the format.
 *  - env-file: AWS_ACCESS_KEY_ID=… and AWS_SECRET_ACCESS_KEY=… lines for
 *    systemd's EnvironmentFile=. Existing assignments are replaced in place,
 *    AWS_SESSION_TOKEN/AWS_SECURITY_TOKEN assignments dropped, every other
 *    line kept byte for byte; missing assignments are appended.
 *  - json-file: exactly {"Version":1,"AccessKeyId":"…","SecretAccessKey":"…"}
 *    and a newline, the document credential_process prints. Rendered
 *    for `keyrotctl get` and the daemon's answer to get, it may end with
 *    "Expiration":"…" (TargetSpec.expiration): a file never has one, so an
 *    SDK that reads it keeps the key until it starts again.
 *
 * The rotation engine makes a TargetSpec from an InventoryTarget with
 * target_spec_from_inventory(); tests and tools fill one by hand. Every
 * byte of new content is assembled in secure memory (secret.h) and
 * written with write_file_atomic() (fileio.h): owner, group and mode are
 * set before the secret is written, the replacement is atomic and
 * durable, and a missing parent directory is an error.
 *
 * Nobody untrusted chooses where a secret goes (docs/DESIGN.md §6): the
 * directory is resolved with chase_target_directory() (basic/chase.h: no
 * symlink in any component, every directory on the way owned by root,
 * keyrotd's user or the target's owner and closed to everybody else, the
 * file's own directory neither sticky nor shared); the file is always a
 * new one renamed into place; its owner and group are the spec's, never
 * an existing file's; and an existing file that is a symlink, has other
 * hard links, or belongs to anybody but the owner, root or keyrotd's user
 * is refused before anything is written.
 */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#include "basic/secret.h"
#include "inventory/inventory.h" /* TargetType, target_type_to_string(), target_type_from_string() */

/* Bounds on what a target may hold; files larger than this are refused. */
#define TARGET_FILE_MAX (1024U * 1024U)
#define TARGET_KEY_ID_MAX 128U
#define TARGET_SECRET_MAX 1024U

typedef struct TargetSpec {
        TargetType type;
        const char *path;    /* the file; its parent directory must exist */
        const char *profile; /* credentials-file: section name; NULL = "default". Ignored otherwise */
        uid_t uid;           /* owner of the file, trusted on its path; (uid_t) -1: our euid */
        gid_t gid;           /* group of the file; (gid_t) -1: our egid */
        mode_t mode;         /* permission bits, at most 0777; 0 = 0600 */
        const char *expiration; /* json-file, target_render() only: the Expiration member, RFC 3339 */
} TargetSpec;

/* The spec of an inventory target: its file, profile, owner, group and mode. */
static inline TargetSpec target_spec_from_inventory(const InventoryTarget *t) {
        return (TargetSpec){
                .type = t->type,
                .path = t->path,
                .profile = t->profile,
                .uid = t->uid,
                .gid = t->gid,
                .mode = t->mode,
        };
}

/**
 * target_write() - write @access_key_id and @secret to the target @t.
 * @ret_error: on failure, a message naming the file and the reason, e.g.
 *             "PATH: parent directory does not exist" (may be NULL; the
 *             caller frees it). Never contains the secret.
 *
 * The key id must be 1..TARGET_KEY_ID_MAX characters of [A-Za-z0-9_], a
 * credentials-file's profile a valid profile name (aws/names.h). The
 * secret must be 1..TARGET_SECRET_MAX printable ASCII characters without
 * blanks; for env-file only [A-Za-z0-9/+=._-] (characters with no meaning
 * to systemd's EnvironmentFile= parser nor to a shell that sources the
 * file). Real AWS secrets are base64-like and always qualify.
 *
 * An existing credentials-file or env-file is read (at most
 * TARGET_FILE_MAX bytes, never through a symlink) and merged; a file that
 * cannot be parsed is refused (-EBADMSG) and left as it is.
 *
 * Returns 0, or a negative errno with the target file unchanged:
 * -ENOENT (a directory on the path missing), -ENOTDIR, -ELOOP (a symlink
 * in the path, the file included), -EPERM (a directory on the path or the
 * existing file owned or writable by somebody untrusted, see above),
 * -EISDIR, -EMLINK (the file has other hard links, which would keep the
 * old key), -EINVAL (bad spec, key id, secret or mode), -EBADMSG
 * (existing file malformed), -E2BIG (existing file too large), -ENOMEM,
 * or an I/O error from reading or writing.
 */
int target_write(const TargetSpec *t, const char *access_key_id, const Secret *secret, char **ret_error);

/**
 * target_check_directory() - could target_write() create a file in the
 * directory of @t? Read only: the directory resolved as target_write()
 * resolves it, and access(2) for our effective ids.
 * @ret_error: as for target_write().
 *
 * Returns 0, or the negative errno target_write() would fail with (or
 * -EACCES/-EROFS from the access check).
 */
int target_check_directory(const TargetSpec *t, char **ret_error);

/**
 * target_check() - would target_write() succeed for @t now? Read only.
 *
 * target_check_directory(), then every step of target_write() but the
 * write itself: the existing file judged and, for the formats that are
 * merged, read and merged (with a stand-in key, in secure memory, then
 * dropped). For the dry run: a refusal says what the write would say.
 */
int target_check(const TargetSpec *t, char **ret_error);

/**
 * target_render() - what target_write() would write to a new file of @t.
 * @t: the type and, for a credentials-file, the profile; @t->path only
 *     names the output in messages (e.g. "-"), nothing is read or written.
 * @ret: the content, in secure memory.
 *
 * For printing a key in a target's format (keyrotctl get). The same
 * checks as target_write(); returns 0, -EINVAL or -ENOMEM.
 */
int target_render(const TargetSpec *t, const char *access_key_id, const Secret *secret, Secret **ret,
                  char **ret_error);

/**
 * target_read_key_id() - which access key id the target holds now.
 * @ret_id, @size: buffer for the NUL-terminated key id.
 *
 * For recovery (did the distribution step reach this file?) and tests.
 * Resolves and reads the file as target_write() would, with the same
 * refusals, and returns the key id only; the secret is never copied out.
 *
 * Returns 0; -ENOENT if the file, the profile or the key id is missing;
 * -ERANGE if @size is too small; -EBADMSG if the file cannot be parsed;
 * -ELOOP, -EPERM, -EMLINK, -EINVAL, -E2BIG or an I/O error otherwise.
 */
int target_read_key_id(const TargetSpec *t, char *ret_id, size_t size);

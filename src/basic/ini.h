/* SPDX-License-Identifier: MIT */
/*
 * ini.h — the AWS shared credentials / config file format.
 *
 * Read (ini_get) and rewritten (ini_merge) exactly as botocore reads it,
 * i.e. with the semantics of Python's configparser.RawConfigParser:
 *
 *  - a section header is a line whose stripped text starts with '[' and has
 *    a ']' later; the name is everything between the '[' and the last ']'
 *    (not trimmed: "[ a ]" names " a "), text after that ']' is ignored;
 *  - a key line is "key = value" or "key: value", split at the first '='
 *    or ':'; the key is trimmed and compared case-insensitively (ASCII),
 *    the value is trimmed; there are no inline comments ("a = b # c" has
 *    the value "b # c");
 *  - a line whose stripped text starts with '#' or ';' is a comment, a
 *    line of only whitespace is blank; neither changes any state;
 *  - a line indented deeper than the last key or section line, while a key
 *    is open, continues that key's value (botocore's nested "s3 =" blocks);
 *    such lines are accepted and ignored, but asking ini_get for a key
 *    whose value has continuation lines gives -EBADMSG;
 *  - "[DEFAULT]" is configparser's defaults section: a key missing from a
 *    section is looked up there (ini_get does, too).
 *
 * Stricter than configparser, because these files hold secrets and a
 * misread one could sign requests with the wrong key or rewrite the wrong
 * profile: the whole file is refused with -EBADMSG when any line is
 * malformed, a section appears twice (configparser refuses that as well),
 * a key appears twice in one section, or it holds a NUL byte, a CR not
 * followed by LF, or a line longer than INI_LINE_MAX. Files larger than
 * INI_MAX_SIZE are refused with -E2BIG. Lines end in LF or CRLF.
 *
 * Every buffer holding file contents or values is a Secret; the parser
 * itself only keeps offsets, never copies of the text.
 */
#pragma once

#include <stddef.h>

#include "basic/secret.h"

#define INI_MAX_SIZE (1024U * 1024U)
#define INI_LINE_MAX (64U * 1024U)

typedef enum IniFlags {
        /*
         * The section argument is a profile name in ~/.aws/config syntax:
         * it matches "[profile NAME]" (any blanks after "profile"), and for
         * "default" also "[default]"; both spellings at once is -EBADMSG.
         * ini_merge appends a missing profile as "[profile NAME]" ("[default]").
         * Profile names with blanks or quotes are refused (-EINVAL).
         */
        INI_CONFIG_PROFILE = 1 << 0,
} IniFlags;

typedef struct IniAssignment {
        const char *key;
        const char *value;
} IniAssignment;

/**
 * ini_get() - look up one value.
 * @text, @len: the file contents (need not be NUL-terminated).
 * @section: the section name, as between the brackets.
 * @key: the key, compared case-insensitively.
 * @ret: a new Secret with the trimmed value; untouched on failure.
 *
 * Returns 0, -ENOENT (no such section, or no such key in it nor in
 * [DEFAULT]), -EBADMSG (malformed file, see above), -E2BIG (@len over
 * INI_MAX_SIZE), -EINVAL (bad arguments) or -ENOMEM.
 */
int ini_get(const char *text, size_t len, const char *section, const char *key, Secret **ret);
int ini_get_full(const char *text, size_t len, const char *section, IniFlags flags, const char *key,
                 Secret **ret);

/**
 * ini_merge() - rewrite one section, keeping every other byte.
 * @section: the section to change; appended at the end of the file (after
 *           a blank line) when absent.
 * @set, @n_set: keys to set. An existing key line keeps its position, key
 *           spelling, separator and spacing; only the value is replaced (and
 *           its continuation lines, if any, dropped). A missing key is added
 *           as "key = value" after the section's last key line, with that
 *           line's indentation.
 * @remove_keys: NULL-terminated list of keys whose lines (and continuation
 *           lines) are deleted, e.g. aws_session_token; may be NULL.
 * @ret:     the new contents as a Secret; untouched on failure.
 *
 * Everything else is kept byte for byte: other sections, comments, blank
 * lines, order, trailing blanks, each line's own LF or CRLF, and a missing
 * final newline. Added lines use the line ending of the file's first line.
 *
 * Keys must be [A-Za-z0-9_.-]+; values must not contain control characters
 * nor begin or end with blanks (configparser would strip them); a key may
 * not be both set and removed, nor set twice: -EINVAL. Refused as -EBADMSG
 * besides a malformed file: the section is "[DEFAULT]"-shadowed, i.e. a
 * key in @remove_keys is set in [DEFAULT], so removing it from the section
 * would not remove it for botocore. -E2BIG when the input or the result
 * would exceed INI_MAX_SIZE.
 */
int ini_merge(const char *text, size_t len, const char *section, const IniAssignment *set, size_t n_set,
              const char *const *remove_keys, Secret **ret);
int ini_merge_full(const char *text, size_t len, const char *section, IniFlags flags,
                   const IniAssignment *set, size_t n_set, const char *const *remove_keys, Secret **ret);

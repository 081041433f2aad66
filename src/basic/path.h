/* SPDX-License-Identifier: MIT */
/*
 * path.h — file paths as strings: splitting off the final component,
 * the parent directory, and what keyrotd accepts as the absolute path of
 * a file it writes or runs. Nothing here touches the file system.
 */
#pragma once

/**
 * path_parent() - the directory part of @path, newly allocated.
 *
 * "/a/b" → "/a", "/a" → "/", "a/b" → "a", "a" → "." (the directory a
 * relative name starts from). Only the last '/' counts: "a//b" → "a/".
 * Returns NULL on ENOMEM or a NULL @path.
 */
char *path_parent(const char *path);

/**
 * path_sibling() - @name in the directory of @path, newly allocated:
 * ("/run/k/control.sock", "credentials.sock") → "/run/k/credentials.sock",
 * ("control.sock", "x") → "x". NULL on ENOMEM or a NULL argument.
 */
char *path_sibling(const char *path, const char *name);

/**
 * path_split() - the parent directory of a file to be replaced, and its name.
 * @ret_dir: path_parent(@path), malloc'd.
 * @ret_base: the final component, pointing into @path.
 *
 * Returns 0; -EINVAL when @path is NULL or empty or its final component
 * cannot name a file ("dir/", ".", ".."); -ENAMETOOLONG when that
 * component is longer than NAME_MAX; -ENOMEM. Outputs untouched on failure.
 */
int path_split(const char *path, char **ret_dir, const char **ret_base);

/**
 * path_absolute_file_problem() - why @path is not an absolute path to a file.
 *
 * NULL when @path starts with '/', is shorter than PATH_MAX, does not end
 * in '/' and has no "." or ".." component: it names one file whatever the
 * working directory, and says plainly which (a ".." after a symlink does
 * not lead where the text suggests, and two spellings of one file would
 * defeat a check for two targets writing the same file). Otherwise a
 * phrase to follow the path in a message: "is not an absolute path", "is
 * too long", "names a directory, not a file" or "contains a '.' or '..'
 * component".
 */
const char *path_absolute_file_problem(const char *path);

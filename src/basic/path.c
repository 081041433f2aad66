/* SPDX-License-Identifier: MIT */
#include "basic/path.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>

#include "basic/util.h"

char *path_parent(const char *path) {
        const char *slash;

        if (!path)
                return NULL;
        slash = strrchr(path, '/');
        if (!slash)
                return strdup(".");
        if (slash == path)
                return strdup("/");
        return strndup(path, (size_t) (slash - path));
}

char *path_sibling(const char *path, const char *name) {
        const char *slash;
        char *s;

        if (!path || !name)
                return NULL;
        slash = strrchr(path, '/');
        if (!slash)
                return strdup(name);
        if (asprintf(&s, "%.*s/%s", (int) (slash - path), path, name) < 0)
                return NULL;
        return s;
}

int path_split(const char *path, char **ret_dir, const char **ret_base) {
        const char *slash, *base;
        char *dir;

        if (!path || !*path)
                return -EINVAL;
        slash = strrchr(path, '/');
        base = slash ? slash + 1 : path;
        /* "dir/" names a directory, "." and ".." cannot be replaced. */
        if (!*base || streq(base, ".") || streq(base, ".."))
                return -EINVAL;
        if (strlen(base) > NAME_MAX)
                return -ENAMETOOLONG;
        dir = path_parent(path);
        if (!dir)
                return -ENOMEM;
        *ret_dir = dir;
        *ret_base = base;
        return 0;
}

const char *path_absolute_file_problem(const char *path) {
        size_t n = strlen(path);

        if (path[0] != '/')
                return "is not an absolute path";
        if (n >= PATH_MAX)
                return "is too long";
        if (n == 1 || path[n - 1] == '/')
                return "names a directory, not a file";
        for (const char *p = path; (p = strchr(p, '/')); p++)
                if ((p[1] == '.' && (p[2] == '/' || p[2] == '\0')) ||
                    (p[1] == '.' && p[2] == '.' && (p[3] == '/' || p[3] == '\0')))
                        return "contains a '.' or '..' component";
        return NULL;
}

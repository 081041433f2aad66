/* SPDX-License-Identifier: MIT */
/* test-path.c — path strings (basic/path.h). */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include "basic/path.h"
#include "basic/util.h"
#include "tap.h"

static void test_parent(void) {
        static const struct {
                const char *path, *parent;
        } cases[] = {
                { "/a/b", "/a" }, { "/a", "/" }, { "/", "/" }, { "a/b", "a" },
                { "a", "." },     { "/a/b/", "/a/b" }, { "a//b", "a/" }, { "/etc/keyrotd/x.yaml", "/etc/keyrotd" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *p = path_parent(cases[i].path);

                ok(p && streq(p, cases[i].parent), "parent of '%s' is '%s' (got '%s')", cases[i].path,
                   cases[i].parent, p ?: "(null)");
        }
        ok(!path_parent(NULL), "parent of NULL");
}

static void test_sibling(void) {
        static const struct {
                const char *path, *name, *sibling;
        } cases[] = {
                { "/run/keyrotd/control.sock", "credentials.sock", "/run/keyrotd/credentials.sock" },
                { "/control.sock", "c", "/c" },
                { "control.sock", "c", "c" },
                { "d/control.sock", "c", "d/c" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *p = path_sibling(cases[i].path, cases[i].name);

                ok(p && streq(p, cases[i].sibling), "'%s' beside '%s' is '%s' (got '%s')", cases[i].name,
                   cases[i].path, cases[i].sibling, p ?: "(null)");
        }
        ok(!path_sibling(NULL, "x") && !path_sibling("/a", NULL), "sibling of NULL");
}

static void test_split(void) {
        static const struct {
                const char *path, *dir, *base;
                int r;
        } cases[] = {
                { "/a/b", "/a", "b", 0 },
                { "/b", "/", "b", 0 },
                { "b", ".", "b", 0 },
                { "d/.b.tmp", "d", ".b.tmp", 0 },
                { "", NULL, NULL, -EINVAL },
                { "/a/", NULL, NULL, -EINVAL },
                { "/", NULL, NULL, -EINVAL },
                { "/a/.", NULL, NULL, -EINVAL },
                { "..", NULL, NULL, -EINVAL },
                { "/a/..", NULL, NULL, -EINVAL },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *dir = NULL;
                const char *base = NULL;
                int r = path_split(cases[i].path, &dir, &base);

                if (cases[i].r == 0)
                        ok(r == 0 && streq_ptr(dir, cases[i].dir) && streq_ptr(base, cases[i].base),
                           "split '%s' → '%s' + '%s'", cases[i].path, dir ?: "(null)", base ?: "(null)");
                else
                        ok(r == cases[i].r && !dir && !base, "split '%s' refused: %d", cases[i].path, r);
        }

        char long_name[NAME_MAX + 8] = "/";
        memset(long_name + 1, 'x', NAME_MAX + 1);
        long_name[NAME_MAX + 2] = 0;
        char *dir = NULL;
        const char *base = NULL;
        ok(path_split(long_name, &dir, &base) == -ENAMETOOLONG && !dir, "a name over NAME_MAX refused");
        long_name[NAME_MAX + 1] = 0;
        ok(path_split(long_name, &dir, &base) == 0 && dir && streq(dir, "/"), "a name of NAME_MAX accepted");
        free(dir);
        ok(path_split(NULL, &dir, &base) == -EINVAL, "split NULL");
}

static void test_absolute_file(void) {
        static const struct {
                const char *path, *problem;
        } cases[] = {
                { "/etc/x", NULL },
                { "/x", NULL },
                { "/a/.hidden", NULL },
                { "/a/..b", NULL },
                { "/a/b.", NULL },
                { "/a/...", NULL },
                { "etc/x", "is not an absolute path" },
                { "", "is not an absolute path" },
                { "./x", "is not an absolute path" },
                { "/", "names a directory, not a file" },
                { "/etc/", "names a directory, not a file" },
                { "/etc/../x", "contains a '.' or '..' component" },
                { "/etc/./x", "contains a '.' or '..' component" },
                { "/etc/..", "contains a '.' or '..' component" },
                { "/etc/.", "contains a '.' or '..' component" },
                { "/./x", "contains a '.' or '..' component" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                ok(streq_ptr(path_absolute_file_problem(cases[i].path), cases[i].problem), "'%s': %s",
                   cases[i].path, cases[i].problem ?: "fine");

        _cleanup_free_ char *huge = malloc(PATH_MAX + 1);
        if (huge) {
                memset(huge, 'x', PATH_MAX);
                huge[0] = '/';
                huge[PATH_MAX] = 0;
                ok(streq_ptr(path_absolute_file_problem(huge), "is too long"), "PATH_MAX bytes: too long");
        }
}

int main(void) {
        test_parent();
        test_sibling();
        test_split();
        test_absolute_file();
        return tap_done();
}

/* SPDX-License-Identifier: MIT */
/*
 * chase.c — the walk of chase.h. One Walk holds the directory reached so
 * far (a descriptor, its stat, and its path for messages) and what the
 * rules need to know about the way there: whether that directory is a
 * writable sticky one, and whether the walk is inside the owner's part.
 */
#include "basic/chase.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <sys/syscall.h>

#include "basic/path.h"
#include "basic/util.h"

typedef struct Walk {
        const ChaseTrust *trust;
        int fd;          /* the directory reached */
        struct stat st;
        char shown[PATH_MAX]; /* its path, as walked (symlinks resolved) */
        bool in_sticky;  /* it is sticky and writable by group or others */
        bool in_owned;   /* it or a directory above it belongs to the owner */
        char owned_from[PATH_MAX]; /* the first directory of the owner's */
        char **ret_error;
} Walk;

static bool uid_valid(uid_t u) {
        return u != (uid_t) -1;
}

/* The owner is a separate party only when it is neither root nor us. */
static bool has_owner(const ChaseTrust *t) {
        return uid_valid(t->owner) && t->owner != 0 && t->owner != t->service;
}

/* "root" or "root or keyrotd's user (uid N)": who keyrotd itself trusts. */
static const char *trusted_text(const ChaseTrust *t, char *buf, size_t size) {
        if (t->service == 0)
                snprintf(buf, size, "root");
        else
                snprintf(buf, size, "root or keyrotd's user (uid %u)", (unsigned) t->service);
        return buf;
}

static const char *writable_by(mode_t m) {
        if ((m & S_IWGRP) && (m & S_IWOTH))
                return "group and others";
        return (m & S_IWGRP) ? "group" : "others";
}

/* @dir/@name into @out; false if it does not fit. */
static bool join(char *out, size_t size, const char *dir, const char *name) {
        int n = snprintf(out, size, "%s%s%s", dir, streq(dir, "/") ? "" : "/", name);

        return n >= 0 && (size_t) n < size;
}

/*
 * One component, relative to @dirfd, never following it: a symlink comes
 * back as a descriptor of the link itself. openat2() with
 * RESOLVE_NO_SYMLINKS also keeps /proc's magic links out; where the kernel
 * (ENOSYS) or a seccomp filter (EPERM) refuses openat2(), openat() with
 * O_NOFOLLOW does the same for a single name.
 */
static int open_component(int dirfd, const char *name) {
        static bool no_openat2;
        int fd;

        if (!no_openat2) {
                struct open_how how = {
                        .flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
                        .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_BENEATH,
                };

                fd = (int) syscall(SYS_openat2, dirfd, name, &how, sizeof how);
                if (fd >= 0)
                        return fd;
                if (errno == ENOSYS)
                        no_openat2 = true;
                else if (errno != EPERM)
                        return -errno;
        }
        fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

/* May @st, reached as @shown inside the walk's current directory, be there? */
static int judge_owner(Walk *w, const char *shown, const struct stat *st) {
        const ChaseTrust *t = w->trust;
        uid_t u = st->st_uid;
        char who[64];

        if (w->in_sticky && u != 0 && u != t->service) {
                set_error(w->ret_error, "%s is owned by uid %u inside the sticky directory %s; only %s may own it there",
                          shown, (unsigned) u, w->shown, trusted_text(t, who, sizeof who));
                return -EPERM;
        }
        if (w->in_owned) {
                if (u != 0 && u != t->owner) {
                        set_error(w->ret_error,
                                  "%s is owned by uid %u; below %s, which belongs to the target's owner (uid %u), only "
                                  "that owner or root may own it",
                                  shown, (unsigned) u, w->owned_from, (unsigned) t->owner);
                        return -EPERM;
                }
                return 0;
        }
        if (u == 0 || u == t->service)
                return 0;
        if (has_owner(t) && u == t->owner) {
                w->in_owned = true;
                snprintf(w->owned_from, sizeof w->owned_from, "%s", shown);
                return 0;
        }
        if (has_owner(t))
                set_error(w->ret_error, "%s is owned by uid %u, not by %s or the target's owner (uid %u)", shown,
                          (unsigned) u, trusted_text(t, who, sizeof who), (unsigned) t->owner);
        else
                set_error(w->ret_error, "%s is owned by uid %u, not by %s", shown, (unsigned) u,
                          trusted_text(t, who, sizeof who));
        return -EPERM;
}

/* A directory the walk arrives in: nobody else may change what is in it. */
static int judge_directory(Walk *w, const char *shown, const struct stat *st) {
        bool writable = st->st_mode & (S_IWGRP | S_IWOTH);

        if (writable && !(st->st_mode & S_ISVTX)) {
                set_error(w->ret_error, "%s is writable by %s", shown, writable_by(st->st_mode));
                return -EPERM;
        }
        w->in_sticky = writable;
        return 0;
}

/* Make the directory @fd (reached as @shown) the walk's current one. */
static void walk_enter(Walk *w, int fd, const struct stat *st, const char *shown) {
        if (w->fd >= 0)
                close(w->fd);
        w->fd = fd;
        w->st = *st;
        snprintf(w->shown, sizeof w->shown, "%s", shown);
}

/* Start (again) at "/", judged like every other directory. */
static int walk_root(Walk *w) {
        struct stat st;
        int fd, r;

        fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0) {
                r = -errno;
                if (fd >= 0)
                        close(fd);
                set_error(w->ret_error, "cannot open /: %s", strerror(-r));
                return r;
        }
        w->in_sticky = false;
        r = judge_owner(w, "/", &st);
        if (r >= 0)
                r = judge_directory(w, "/", &st);
        if (r < 0) {
                close(fd);
                return r;
        }
        walk_enter(w, fd, &st, "/");
        return 0;
}

/* The text of the symlink @fd, reached as @shown. */
static int read_link(Walk *w, int fd, const char *shown, char *buf, size_t size) {
        ssize_t n = readlinkat(fd, "", buf, size);

        if (n < 0) {
                int r = -errno;

                set_error(w->ret_error, "cannot read the symbolic link %s: %s", shown, strerror(-r));
                return r;
        }
        if ((size_t) n >= size || n == 0) {
                set_error(w->ret_error, "the symbolic link %s is %s", shown, n == 0 ? "empty" : "too long");
                return n == 0 ? -ENOENT : -ENAMETOOLONG;
        }
        buf[n] = 0;
        return 0;
}

/* The walk itself; *ret_shown gets the path it ended at. */
static int walk(const char *path, const ChaseTrust *trust, ChaseFlags flags, int *ret_fd, struct stat *ret_st,
                char *ret_shown, size_t shown_size, char **ret_error) {
        _cleanup_free_ char *todo = NULL;
        Walk w = { .trust = trust, .fd = -1, .ret_error = ret_error };
        unsigned links = 0;
        const char *p;
        int r;

        if (!path || path[0] != '/' || !trust) {
                set_error(ret_error, "%s is not an absolute path", path ?: "(null)");
                return -EINVAL;
        }
        if (strlen(path) >= PATH_MAX) {
                set_error(ret_error, "%.64s... is too long", path);
                return -ENAMETOOLONG;
        }
        todo = strdup(path);
        if (!todo)
                return -ENOMEM;
        r = walk_root(&w);
        if (r < 0)
                return r;

        for (p = todo;;) {
                char name[NAME_MAX + 1], shown[PATH_MAX];
                struct stat st;
                size_t n;
                bool last;
                int fd;

                p += strspn(p, "/");
                if (!*p)
                        break;
                n = strcspn(p, "/");
                if (n > NAME_MAX) {
                        set_error(ret_error, "%s: a component is longer than %u bytes", path, NAME_MAX);
                        r = -ENAMETOOLONG;
                        goto finish;
                }
                memcpy(name, p, n);
                name[n] = 0;
                p += n;
                last = p[strspn(p, "/")] == 0;
                if (streq(name, "."))
                        continue;

                if (streq(name, "..")) {
                        /* Up, to a directory judged like any other: the
                         * way down to it may have been a symlink. */
                        _cleanup_free_ char *up = path_parent(w.shown);

                        if (!up) {
                                r = -ENOMEM;
                                goto finish;
                        }
                        snprintf(shown, sizeof shown, "%s", up);
                        fd = openat(w.fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
                        fd = fd < 0 ? -errno : fd;
                        w.in_sticky = false;
                } else {
                        if (!join(shown, sizeof shown, w.shown, name)) {
                                set_error(ret_error, "%s: the path is too long", path);
                                r = -ENAMETOOLONG;
                                goto finish;
                        }
                        fd = open_component(w.fd, name);
                }
                if (fd < 0) {
                        r = fd;
                        if (r == -ENOENT)
                                set_error(ret_error, "%s does not exist", shown);
                        else if (r == -ELOOP)
                                set_error(ret_error, "%s is a symbolic link", shown);
                        else
                                set_error(ret_error, "cannot open %s: %s", shown, strerror(-r));
                        goto finish;
                }
                if (fstat(fd, &st) < 0) {
                        r = -errno;
                        close(fd);
                        set_error(ret_error, "cannot stat %s: %s", shown, strerror(-r));
                        goto finish;
                }
                r = judge_owner(&w, shown, &st);
                if (r < 0) {
                        close(fd);
                        goto finish;
                }

                if (S_ISLNK(st.st_mode)) {
                        char target[PATH_MAX];
                        char *next;

                        if (flags & CHASE_NO_SYMLINKS) {
                                close(fd);
                                set_error(ret_error, "%s is a symbolic link", shown);
                                r = -ELOOP;
                                goto finish;
                        }
                        r = ++links > CHASE_SYMLINKS_MAX ? -ELOOP : read_link(&w, fd, shown, target, sizeof target);
                        close(fd);
                        if (r == -ELOOP)
                                set_error(ret_error, "%s: more than %u symbolic links", path, CHASE_SYMLINKS_MAX);
                        if (r < 0)
                                goto finish;
                        /* The rest of the way is the link's text, then what
                         * was left of ours; an absolute link starts over at
                         * "/", a relative one where the link is. */
                        if (asprintf_safe(&next, "%s/%s", target, p) < 0) {
                                r = -ENOMEM;
                                goto finish;
                        }
                        free(todo);
                        p = todo = next;
                        if (target[0] == '/') {
                                r = walk_root(&w);
                                if (r < 0)
                                        goto finish;
                        }
                        continue;
                }

                if (S_ISDIR(st.st_mode)) {
                        r = judge_directory(&w, shown, &st);
                        if (r < 0) {
                                close(fd);
                                goto finish;
                        }
                } else if (!last) {
                        close(fd);
                        set_error(ret_error, "%s is not a directory", shown);
                        r = -ENOTDIR;
                        goto finish;
                }
                walk_enter(&w, fd, &st, shown);
        }

        if (ret_st)
                *ret_st = w.st;
        if (ret_shown)
                snprintf(ret_shown, shown_size, "%s", w.shown);
        if (ret_fd)
                *ret_fd = TAKE_FD(w.fd);
        r = 0;

finish:
        if (w.fd >= 0)
                close(w.fd);
        return r;
}

int chase(const char *path, const ChaseTrust *trust, ChaseFlags flags, int *ret_fd, struct stat *ret_st,
          char **ret_error) {
        return walk(path, trust, flags, ret_fd, ret_st, NULL, 0, ret_error);
}

int chase_target_directory(const char *path, const ChaseTrust *trust, int *ret_dirfd, char **ret_error) {
        _cleanup_free_ char *dir = NULL;
        _cleanup_close_ int fd = -1;
        const char *base;
        struct stat st;
        int r;

        if (!path || path[0] != '/') {
                set_error(ret_error, "%s is not an absolute path", path ?: "(null)");
                return -EINVAL;
        }
        r = path_split(path, &dir, &base);
        if (r < 0) {
                set_error(ret_error, "%s does not name a file", path);
                return r;
        }
        r = walk(dir, trust, CHASE_NO_SYMLINKS, &fd, &st, NULL, 0, ret_error);
        if (r < 0)
                return r;
        if (!S_ISDIR(st.st_mode)) {
                set_error(ret_error, "%s is not a directory", dir);
                return -ENOTDIR;
        }
        /* Writable by group or others without the sticky bit was refused
         * on the way; with it, anybody may have created the file first
         * (and owns it), or may create it between a check and the write. */
        if (st.st_mode & (S_ISVTX | S_IWGRP | S_IWOTH)) {
                set_error(ret_error, "%s is a %s directory; a target directly inside it is refused", dir,
                          (st.st_mode & S_ISVTX) ? "sticky" : "shared");
                return -EPERM;
        }
        if (ret_dirfd)
                *ret_dirfd = TAKE_FD(fd);
        return 0;
}

int chase_program(const char *path, uid_t service, char **ret_error) {
        const ChaseTrust trust = { .service = service, .owner = (uid_t) -1 };
        char shown[PATH_MAX];
        struct stat st;
        int r;

        r = walk(path, &trust, 0, NULL, &st, shown, sizeof shown, ret_error);
        if (r < 0)
                return r;
        if (!S_ISREG(st.st_mode)) {
                set_error(ret_error, "%s is %s", shown, S_ISDIR(st.st_mode) ? "a directory" : "not a regular file");
                return -EACCES;
        }
        /* Whoever may write the program decides what keyrotd runs. */
        if (st.st_mode & (S_IWGRP | S_IWOTH)) {
                set_error(ret_error, "%s is writable by %s", shown, writable_by(st.st_mode));
                return -EPERM;
        }
        return 0;
}

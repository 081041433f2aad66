/* SPDX-License-Identifier: MIT */
#include "basic/fileio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "basic/path.h"
#include "basic/util.h"

/* Longest part of the target's name that goes into the temporary name, so
 * that ".NAME.<16 hex>.tmp" stays below NAME_MAX. */
#define TMP_BASE_MAX 200

/* Open the directory @path is in (relative to @dirfd); *ret_base is the
 * final component, inside @path. Returns the descriptor or -errno. */
static int open_parent(int dirfd, const char *path, const char **ret_base) {
        _cleanup_free_ char *dir = NULL;
        int fd, r;

        r = path_split(path, &dir, ret_base);
        if (r < 0)
                return r;
        fd = openat(dirfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

static void random_suffix(char out[static 17]) {
        static unsigned counter;
        uint64_t v;

        /* Uniqueness, not secrecy: O_EXCL is what protects us. Never block
         * on an early-boot entropy pool for a file name. */
        if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t) sizeof(v))
                v = now_usec(CLOCK_MONOTONIC) ^ ((uint64_t) getpid() << 32) ^ ++counter;
        snprintf(out, 17, "%016llx", (unsigned long long) v);
}

static int write_all(int fd, const uint8_t *p, size_t len) {
        while (len > 0) {
                ssize_t n = write(fd, p, len > (size_t) SSIZE_MAX ? (size_t) SSIZE_MAX : len);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return -EIO;
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

static int install_file(int dfd, const char *tmp, const char *base, bool no_replace) {
        if (!no_replace)
                return renameat(dfd, tmp, dfd, base) < 0 ? -errno : 0;

        if (renameat2(dfd, tmp, dfd, base, RENAME_NOREPLACE) >= 0)
                return 0;
        if (errno != EINVAL && errno != ENOSYS)
                return -errno;
        /* A filesystem without RENAME_NOREPLACE: link(2) refuses an
         * existing name just as atomically; then drop the temp name. */
        if (linkat(dfd, tmp, dfd, base, 0) < 0)
                return -errno;
        (void) unlinkat(dfd, tmp, 0);
        return 0;
}

int write_file_atomic(int dirfd, const char *path, const void *data, size_t len, const WriteOptions *opts) {
        const WriteOptions o = opts ? *opts : WRITE_OPTIONS_INIT;
        _cleanup_close_ int dfd = -1, fd = -1;
        char tmp[NAME_MAX + 1], suffix[17];
        const char *base;
        mode_t mode = o.mode == 0 ? 0600 : o.mode;
        struct stat st;
        int r;

        if (!data && len > 0)
                return -EINVAL;
        if (mode & ~(mode_t) 0777)
                return -EINVAL;

        /* The parent is opened once and every later step is relative to
         * it, so a rename of a path component midway cannot redirect us.
         * A missing parent is an error: creating directories here would
         * hide a typo in a target path or a missing state directory. */
        dfd = open_parent(dirfd, path, &base);
        if (dfd < 0)
                return dfd;

        /* Look at the final component without following it. A symlink is
         * refused when asked; otherwise rename(2) replaces the link itself,
         * never its target, so even a link planted after this check
         * cannot make us write somewhere else. */
        if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) >= 0) {
                if (o.no_replace)
                        return -EEXIST;
                if (S_ISLNK(st.st_mode) && o.refuse_symlink)
                        return -ELOOP;
                if (S_ISDIR(st.st_mode))
                        return -EISDIR;
        } else if (errno != ENOENT)
                return -errno;

        /* The temporary file is created 0600 and exclusively (O_EXCL, and
         * O_NOFOLLOW for good measure) in the target's own directory:
         * nobody else can open it, nothing that was there before is
         * reused, and the final rename stays on one filesystem. */
        for (unsigned attempt = 0;; attempt++) {
                random_suffix(suffix);
                snprintf(tmp, sizeof(tmp), ".%.*s.%s.tmp", TMP_BASE_MAX, base, suffix);
                fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
                if (fd >= 0)
                        break;
                if (errno != EEXIST || attempt >= 16)
                        return -errno;
        }

        /* Owner first, then mode, and both before the first byte: the
         * content never exists under permissions other than the final
         * ones, so a reader that is not entitled to it cannot have opened
         * the file in between. (chown before chmod, because chown may
         * clear mode bits and the group must be right before it gets any
         * permission.) fchmod also overrides whatever the umask did. */
        struct stat tmp_st;
        if (fstat(fd, &tmp_st) < 0) {
                r = -errno;
                goto fail;
        }
        /* Only when something changes: under the unit's syscall filter
         * (~@privileged) even a no-op fchown fails with EPERM. */
        if (((o.uid != (uid_t) -1 && o.uid != tmp_st.st_uid) || (o.gid != (gid_t) -1 && o.gid != tmp_st.st_gid)) &&
            fchown(fd, o.uid, o.gid) < 0) {
                r = -errno;
                goto fail;
        }
        if (fchmod(fd, mode) < 0) {
                r = -errno;
                goto fail;
        }

        r = write_all(fd, data, len);
        if (r < 0)
                goto fail;

        /* The data must be on disk before the name points at it, or a
         * crash after the rename could leave an empty or partial file
         * under the real name. Delayed allocation may report ENOSPC only
         * here, which is why its error is as fatal as write's. */
        if (o.sync && fsync(fd) < 0) {
                r = -errno;
                goto fail;
        }
        if (close(TAKE_FD(fd)) < 0 && errno != EINTR) {
                r = -errno;
                goto fail;
        }

        r = install_file(dfd, tmp, base, o.no_replace);
        if (r < 0)
                goto fail;

        /* The rename lives in the directory: until the directory is
         * synced, a crash may bring back the old name. */
        if (o.sync && fsync(dfd) < 0)
                return -errno;
        return 0;

fail:
        (void) unlinkat(dfd, tmp, 0);
        return r;
}

static bool is_temp_name_of(const char *name, const char *base) {
        size_t blen = strnlen(base, TMP_BASE_MAX), nlen = strlen(name);

        /* ".<base>.<16 hex>.tmp" */
        if (nlen != 1 + blen + 1 + 16 + 4 || name[0] != '.' || strncmp(name + 1, base, blen) != 0 ||
            name[1 + blen] != '.' || !streq(name + nlen - 4, ".tmp"))
                return false;
        for (size_t i = 2 + blen; i < 2 + blen + 16; i++)
                if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
                        return false;
        return true;
}

int remove_stale_temp_files(int dirfd, const char *path) {
        const char *base;
        struct dirent *de;
        DIR *d;
        int dfd, r = 0, n = 0;

        dfd = open_parent(dirfd, path, &base);
        if (dfd < 0)
                return dfd;
        d = fdopendir(dfd);
        if (!d) {
                r = -errno;
                close(dfd);
                return r;
        }
        while ((errno = 0, de = readdir(d))) {
                if (!is_temp_name_of(de->d_name, base))
                        continue;
                if (unlinkat(dfd, de->d_name, 0) < 0) {
                        if (errno == ENOENT)
                                continue;
                        r = -errno;
                        break;
                }
                n++;
        }
        if (r == 0 && errno != 0)
                r = -errno;
        closedir(d);
        return r < 0 ? r : n;
}

void inherit_owner(const char *path, uid_t *ret_uid, gid_t *ret_gid) {
        _cleanup_free_ char *dir = NULL;
        struct stat st;

        *ret_uid = (uid_t) -1;
        *ret_gid = (gid_t) -1;
        if (geteuid() != 0)
                return;
        dir = path_parent(path);
        if (!dir || stat(dir, &st) < 0)
                return;
        *ret_uid = st.st_uid;
        *ret_gid = st.st_gid;
}

int check_private_file(int fd, const char *path, uid_t service, char **ret_error) {
        struct stat st;

        if (fstat(fd, &st) < 0) {
                int r = -errno;
                set_error(ret_error, "Cannot stat %s: %s", path, strerror(-r));
                return r;
        }
        /* Any group or other bit means the secret may already have been
         * read by someone else: refuse, rather than silently tighten. */
        if (st.st_mode & 077) {
                set_error(ret_error, "%s is accessible by group or others (mode %04o); it must be 0600 or stricter",
                          path, (unsigned) (st.st_mode & 07777));
                return -EPERM;
        }
        /* Its owner could change or replace it at will. */
        if (st.st_uid != 0 && st.st_uid != service) {
                set_error(ret_error, "%s is owned by uid %u; it must be owned by root or keyrotd's user (uid %u)",
                          path, (unsigned) st.st_uid, (unsigned) service);
                return -EPERM;
        }
        return 0;
}

/* Open @path for reading and check it is a regular file of at most @max
 * bytes that (with READ_FILE_PRIVATE) nobody else could have read. */
static int open_checked(int dirfd, const char *path, size_t max, ReadFileFlags flags, struct stat *ret_st,
                        char **ret_error) {
        _cleanup_close_ int fd = -1;
        int r;

        if (!path)
                return -EINVAL;

        /* O_NONBLOCK: opening a FIFO must not hang us before fstat tells
         * us it is not a regular file; it has no effect on regular files. */
        if (!*path) /* the caller opened the file, and looked at that descriptor */
                fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
        else
                fd = openat(dirfd, path,
                            O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK |
                                    ((flags & READ_FILE_NOFOLLOW) ? O_NOFOLLOW : 0));
        if (fd < 0) {
                r = -errno;
                if (r == -ELOOP && (flags & READ_FILE_NOFOLLOW))
                        set_error(ret_error, "%s is a symbolic link, refusing to follow it", path);
                else
                        set_error(ret_error, "Cannot open %s: %s", path, strerror(-r));
                return r;
        }
        if (fstat(fd, ret_st) < 0) {
                r = -errno;
                set_error(ret_error, "Cannot stat %s: %s", path, strerror(-r));
                return r;
        }
        if (S_ISDIR(ret_st->st_mode)) {
                set_error(ret_error, "%s is a directory", path);
                return -EISDIR;
        }
        if (!S_ISREG(ret_st->st_mode)) {
                set_error(ret_error, "%s is not a regular file", path);
                return -EINVAL;
        }
        if (flags & READ_FILE_PRIVATE) {
                r = check_private_file(fd, path, geteuid(), ret_error);
                if (r < 0)
                        return r;
        }
        if ((uint64_t) ret_st->st_size > max) {
                set_error(ret_error, "%s is too large (%lld bytes, at most %zu accepted)", path,
                          (long long) ret_st->st_size, max);
                return -E2BIG;
        }
        return TAKE_FD(fd);
}

/* read(2) until @len bytes or end of file; returns the count or -errno. */
static ssize_t read_full(int fd, void *buf, size_t len) {
        size_t got = 0;

        while (got < len) {
                ssize_t n = read(fd, (uint8_t *) buf + got, len - got);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                got += (size_t) n;
        }
        return (ssize_t) got;
}

int read_file_secure(int dirfd, const char *path, size_t max, ReadFileFlags flags, Secret **ret,
                     char **ret_error) {
        _cleanup_secret_ Secret *s = NULL;
        _cleanup_close_ int fd = -1;
        struct stat st;
        ssize_t n;
        int r;

        if (!ret)
                return -EINVAL;
        fd = open_checked(dirfd, path, max, flags, &st, ret_error);
        if (fd < 0)
                return fd;

        s = secret_new((size_t) st.st_size);
        if (!s)
                return -ENOMEM;

        /* Read straight into secure memory up to the size fstat saw. */
        n = read_full(fd, s->data, s->cap);
        if (n < 0) {
                set_error(ret_error, "Cannot read %s: %s", path, strerror((int) -n));
                return (int) n;
        }
        s->len = (size_t) n;
        s->data[s->len] = 0;

        /* The file may have grown since fstat: keep reading, through a
         * bounce buffer that is wiped, still bounded by max. */
        for (;;) {
                uint8_t buf[4096];

                n = read_full(fd, buf, sizeof(buf));
                if (n < 0) {
                        sodium_memzero(buf, sizeof(buf));
                        set_error(ret_error, "Cannot read %s: %s", path, strerror((int) -n));
                        return (int) n;
                }
                if (n == 0)
                        break;
                if ((size_t) n > max - s->len) {
                        sodium_memzero(buf, sizeof(buf));
                        set_error(ret_error, "%s is too large (more than %zu bytes)", path, max);
                        return -E2BIG;
                }
                r = secret_append(&s, buf, (size_t) n, 0);
                sodium_memzero(buf, sizeof(buf));
                if (r < 0)
                        return r;
        }

        *ret = TAKE_PTR(s);
        return 0;
}

int read_file_bounded(int dirfd, const char *path, size_t max, ReadFileFlags flags, uint8_t **ret,
                      size_t *ret_len, char **ret_error) {
        _cleanup_free_ uint8_t *buf = NULL;
        _cleanup_close_ int fd = -1;
        struct stat st;
        size_t len = 0, cap;
        ssize_t n;

        if (!ret || !ret_len)
                return -EINVAL;
        if (max > SIZE_MAX / 2)
                max = SIZE_MAX / 2;
        fd = open_checked(dirfd, path, max, flags, &st, ret_error);
        if (fd < 0)
                return fd;

        /* One byte more than fstat saw, so growth is noticed; +1 for NUL. */
        cap = (size_t) st.st_size + 1;
        buf = malloc(cap + 1);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                n = read_full(fd, buf + len, cap - len);
                if (n < 0) {
                        set_error(ret_error, "Cannot read %s: %s", path, strerror((int) -n));
                        return (int) n;
                }
                len += (size_t) n;
                if (len > max) {
                        set_error(ret_error, "%s is too large (more than %zu bytes)", path, max);
                        return -E2BIG;
                }
                if (len < cap)
                        break;
                /* Still growing: double, bounded by max + 1. */
                size_t ncap = cap > max / 2 ? max + 1 : cap * 2;
                uint8_t *nbuf = realloc(buf, ncap + 1);
                if (!nbuf)
                        return -ENOMEM;
                buf = nbuf;
                cap = ncap;
        }
        buf[len] = 0;
        *ret_len = len;
        *ret = TAKE_PTR(buf);
        return 0;
}

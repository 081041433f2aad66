/* SPDX-License-Identifier: MIT */
/*
 * replay-main.c — runs a libFuzzer target without libFuzzer: every regular
 * file in each directory argument (or each file argument) goes through
 * LLVMFuzzerTestOneInput once. Used to keep the seed corpus (and any
 * crash reproducer) as a plain test in every build, sanitizers or not.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REPLAY_MAX_INPUT (16U * 1024U * 1024U)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_fd(int fd, const char *name) {
        struct stat st;
        uint8_t *buf;
        size_t got = 0;

        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uintmax_t) st.st_size > REPLAY_MAX_INPUT) {
                fprintf(stderr, "%s: not a regular file of at most %u bytes\n", name, REPLAY_MAX_INPUT);
                return -1;
        }
        /* Exactly the file's size, so ASan sees any read past the end. */
        buf = malloc(st.st_size > 0 ? (size_t) st.st_size : 1);
        if (!buf)
                return -1;
        while (got < (size_t) st.st_size) {
                ssize_t n = read(fd, buf + got, (size_t) st.st_size - got);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        fprintf(stderr, "%s: short read\n", name);
                        free(buf);
                        return -1;
                }
                got += (size_t) n;
        }
        LLVMFuzzerTestOneInput(buf, got);
        free(buf);
        return 0;
}

static int replay_path(int at, const char *path, unsigned *count) {
        int fd = openat(at, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        struct stat st;
        int r = 0;

        if (fd < 0 || fstat(fd, &st) < 0) {
                fprintf(stderr, "%s: %s\n", path, strerror(errno));
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        if (S_ISDIR(st.st_mode)) {
                DIR *d = fdopendir(fd);
                struct dirent *de;

                if (!d) {
                        close(fd);
                        return -1;
                }
                while ((de = readdir(d)))
                        if (de->d_name[0] != '.' && replay_path(dirfd(d), de->d_name, count) < 0)
                                r = -1;
                closedir(d);
                return r;
        }
        r = replay_fd(fd, path);
        close(fd);
        if (r == 0)
                (*count)++;
        return r;
}

int main(int argc, char *argv[]) {
        unsigned count = 0;
        int r = 0;

        if (argc < 2) {
                fprintf(stderr, "usage: %s CORPUS-DIR|FILE...\n", argv[0]);
                return 2;
        }
        for (int i = 1; i < argc; i++)
                if (replay_path(AT_FDCWD, argv[i], &count) < 0)
                        r = 1;
        if (count == 0) {
                fprintf(stderr, "no inputs found\n");
                return 1;
        }
        printf("replayed %u inputs\n", count);
        return r;
}

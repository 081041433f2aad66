/* SPDX-License-Identifier: MIT */
/*
 * fuzz-targets.c — the credentials-file and env-file mergers and the
 * readers of all three formats (targets/targets.h) on arbitrary existing
 * files. The first byte picks the format (its value modulo 3:
 * credentials-file, env-file, json-file) and the profile (its value / 3,
 * modulo 4: none, "default", "prod", "a.b-c_d"); the rest is what the file
 * holds before target_write() merges a key into it.
 *
 * What must hold: every result is one of the documented ones; a refused
 * file is left byte for byte as it was; after a write, the file reads
 * back the new key id (and, for a credentials file, the new secret and
 * no session token), and writing the same key again changes nothing; no
 * Secret outlives the input (secure-count.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/ini.h"
#include "basic/secret.h"
#include "basic/util.h"
#include "targets/targets.h"
#include "fuzz-check.h"

#define KEY_ID "AKIAIOSFODNN7EXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

static char dir[64], path[128];

static void cleanup(void) {
        (void) unlink(path);
        (void) rmdir(dir);
}

static void setup(void) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";

        if (secret_init() < 0)
                abort();
        snprintf(dir, sizeof(dir), "%s/fuzz-targets-XXXXXX", base);
        check(mkdtemp(dir) != NULL);
        snprintf(path, sizeof(path), "%s/target", dir);
        atexit(cleanup);
}

static void put(const void *p, size_t len) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        check(fd >= 0 && write(fd, p, len) == (ssize_t) len);
        close(fd);
}

/* The file's bytes, malloc'd, in *ret_len. */
static char *get(size_t *ret_len) {
        struct stat st;
        char *p;
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        check(fd >= 0 && fstat(fd, &st) == 0);
        p = malloc((size_t) st.st_size + 1);
        check(p && read(fd, p, (size_t) st.st_size) == st.st_size);
        p[st.st_size] = 0;
        close(fd);
        *ret_len = (size_t) st.st_size;
        return p;
}

static int fuzz_one(const uint8_t *data, size_t size) {
        static const char *const profiles[] = { NULL, "default", "prod", "a.b-c_d" };
        static bool initialized;
        _cleanup_secret_ Secret *secret = NULL;
        _cleanup_free_ char *after = NULL, *again = NULL, *err = NULL;
        size_t after_len, again_len;
        char id[32];
        TargetSpec t;
        int r;

        if (size < 1)
                return 0;
        if (!initialized) {
                setup();
                initialized = true;
        }
        t = (TargetSpec){
                .type = (TargetType[]){ TARGET_CREDENTIALS_FILE, TARGET_ENV_FILE, TARGET_JSON_FILE }[data[0] % 3],
                .path = path,
                .profile = profiles[data[0] / 3 % ELEMENTSOF(profiles)],
                .uid = (uid_t) -1,
                .gid = (gid_t) -1,
        };
        secret = secret_dup(SECRET, strlen(SECRET));
        check(secret != NULL);
        put(data + 1, size - 1);

        r = target_read_key_id(&t, id, sizeof(id));
        check(r == 0 || r == -ENOENT || r == -EBADMSG || r == -ERANGE);
        check(r != 0 || strlen(id) < sizeof(id));

        r = target_write(&t, KEY_ID, secret, &err);
        check(r == 0 || r == -EBADMSG || r == -E2BIG);
        after = get(&after_len);
        if (r < 0) {
                check(err && !strstr(err, SECRET));
                check(after_len == size - 1 && memcmp(after, data + 1, after_len) == 0);
                return 0;
        }

        r = target_read_key_id(&t, id, sizeof(id));
        check(r == 0 && streq(id, KEY_ID));
        if (t.type == TARGET_CREDENTIALS_FILE) {
                const char *profile = t.profile ?: "default";
                _cleanup_secret_ Secret *s = NULL, *token = NULL;

                check(ini_get(after, after_len, profile, "aws_secret_access_key", &s) == 0 &&
                      streq(s->data, SECRET));
                check(ini_get(after, after_len, profile, "aws_session_token", &token) == -ENOENT);
        }

        r = target_write(&t, KEY_ID, secret, NULL);
        check(r == 0);
        again = get(&again_len);
        check(again_len == after_len && memcmp(again, after, after_len) == 0);
        return 0;
}

FUZZ_ENTRY_NO_SECRET_LEFT(fuzz_one)

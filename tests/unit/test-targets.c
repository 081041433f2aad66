/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "basic/secret.h"
#include "basic/util.h"
#include "tap.h"
#include "targets/targets.h"

static char dir[] = "/tmp/test-targets-XXXXXX";

static char *path_of(const char *name) {
        static char buf[8][512];
        static unsigned k;
        char *p = buf[k++ % ELEMENTSOF(buf)];

        snprintf(p, sizeof(buf[0]), "%s/%s", dir, name);
        return p;
}

static void put_file(const char *path, const char *content) {
        FILE *f = fopen(path, "we");

        if (!f) {
                perror(path);
                abort();
        }
        fputs(content, f);
        fclose(f);
}

/* The whole file as a string; NULL if it cannot be read. */
static char *slurp(const char *path) {
        FILE *f = fopen(path, "re");
        char *buf = NULL;
        size_t n = 0;

        if (!f)
                return NULL;
        if (getdelim(&buf, &n, 0, f) < 0) {
                free(buf);
                buf = strdup("");
        }
        fclose(f);
        return buf;
}

static int file_is(const char *path, const char *want, const char *name) {
        _cleanup_free_ char *got = slurp(path);

        return ok_eq_str(got, want, name);
}

/* Files in the test directory other than the ones we made: temporaries
 * that a failed write forgot. */
static unsigned count_temp_files(void) {
        DIR *d = opendir(dir);
        struct dirent *de;
        unsigned n = 0;

        if (!d)
                return 9999;
        while ((de = readdir(d)))
                if (de->d_name[0] == '.' && !streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        n++;
        closedir(d);
        return n;
}

static Secret *secret_of(const char *s) {
        return secret_dup(s, strlen(s));
}

static TargetSpec spec(TargetType type, const char *path) {
        return (TargetSpec){ .type = type, .path = path, .uid = (uid_t) -1, .gid = (gid_t) -1 };
}

static void test_type_strings(void) {
        ok(target_type_from_string("credentials-file") == TARGET_CREDENTIALS_FILE &&
                   target_type_from_string("env-file") == TARGET_ENV_FILE &&
                   target_type_from_string("json-file") == TARGET_JSON_FILE &&
                   target_type_from_string("yaml-file") == _TARGET_TYPE_INVALID,
           "target_type_from_string");
        ok(streq(target_type_to_string(TARGET_JSON_FILE), "json-file") &&
                   target_type_to_string(_TARGET_TYPE_MAX) == NULL,
           "target_type_to_string");
}

static void test_credentials_merge(void) {
        _cleanup_secret_ Secret *sec = secret_of("new/Secret+=0123456789abcdefghijklmnopq");
        _cleanup_free_ char *err = NULL;
        const char *p = path_of("credentials");
        TargetSpec t = spec(TARGET_CREDENTIALS_FILE, p);
        char id[64];
        int r;

        put_file(p,
                 "# managed by hand, keep me\n"
                 "[other]\n"
                 "aws_access_key_id = OTHERKEY\n"
                 "aws_secret_access_key = other/secret\n"
                 "\n"
                 "[default]\n"
                 "aws_access_key_id=AKIAOLD\n"
                 "aws_secret_access_key = old/secret\n"
                 "aws_session_token = FwoGZXIvYXdzEtoken\n"
                 "region = eu-west-1\n"
                 "aws_security_token = legacy\n"
                 "; trailing comment\n"
                 "\n"
                 "[third]\n"
                 "x = y   \n");
        r = target_write(&t, "AKIANEW0000000000001", sec, &err);
        ok(r == 0, "credentials-file merge: %d %s", r, err ?: "");
        file_is(p,
                "# managed by hand, keep me\n"
                "[other]\n"
                "aws_access_key_id = OTHERKEY\n"
                "aws_secret_access_key = other/secret\n"
                "\n"
                "[default]\n"
                "aws_access_key_id=AKIANEW0000000000001\n"
                "aws_secret_access_key = new/Secret+=0123456789abcdefghijklmnopq\n"
                "region = eu-west-1\n"
                "; trailing comment\n"
                "\n"
                "[third]\n"
                "x = y   \n",
                "credentials-file: only the profile's keys changed, session tokens removed, rest byte for byte");
        r = target_read_key_id(&t, id, sizeof(id));
        ok(r == 0 && streq(id, "AKIANEW0000000000001"), "credentials-file: read key id back (%d)", r);

        /* A named profile that is not there yet is appended. */
        t.profile = "app";
        r = target_write(&t, "AKIAAPP", sec, &err);
        ok(r == 0, "credentials-file: new profile (%d)", r);
        r = target_read_key_id(&t, id, sizeof(id));
        ok(r == 0 && streq(id, "AKIAAPP"), "credentials-file: new profile read back (%d)", r);
        t.profile = NULL;
        r = target_read_key_id(&t, id, sizeof(id));
        ok(r == 0 && streq(id, "AKIANEW0000000000001"), "credentials-file: default profile unaffected");
        t.profile = "missing";
        ok(target_read_key_id(&t, id, sizeof(id)) == -ENOENT, "credentials-file: missing profile -ENOENT");
        t.profile = NULL;
        ok(target_read_key_id(&t, id, 5) == -ERANGE, "credentials-file: small buffer -ERANGE");

        t.profile = "DEFAULT";
        free(err);
        err = NULL;
        r = target_write(&t, "AKIAX", sec, &err);
        ok(r == -EINVAL && err && strstr(err, "profile"), "credentials-file: [DEFAULT] refused (%d %s)", r,
           err ?: "");
}

static void test_new_file(void) {
        _cleanup_secret_ Secret *sec = secret_of("s3cr3t/+=");
        const char *p = path_of("new-credentials");
        TargetSpec t = spec(TARGET_CREDENTIALS_FILE, p);
        struct stat st;
        char id[64];
        int r;

        ok(target_read_key_id(&t, id, sizeof(id)) == -ENOENT, "no file: read key id -ENOENT");
        r = target_write(&t, "AKIAFIRST", sec, NULL);
        ok(r == 0, "credentials-file created (%d)", r);
        file_is(p, "[default]\naws_access_key_id = AKIAFIRST\naws_secret_access_key = s3cr3t/+=\n",
                "credentials-file: new file holds only the profile");
        ok(lstat(p, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0600 && st.st_uid == geteuid() &&
                   st.st_gid == getegid(),
           "new file is a regular file, 0600, ours");
}

static void test_mode_and_owner(void) {
        _cleanup_secret_ Secret *sec = secret_of("s3cr3t");
        const char *p = path_of("owned.env");
        TargetSpec t = spec(TARGET_ENV_FILE, p);
        struct passwd *pw;
        struct stat st;
        gid_t gid;
        int r;

        if (geteuid() != 0 || !(pw = getpwnam("nobody"))) {
                ok(1, "# SKIP not root or no user nobody");
                return;
        }
        gid = pw->pw_gid;

        t.uid = pw->pw_uid;
        t.gid = gid;
        t.mode = 0640;
        r = target_write(&t, "AKIAOWNED", sec, NULL);
        ok(r == 0, "write with owner nobody, mode 0640 (%d)", r);
        ok(lstat(p, &st) == 0 && st.st_uid == pw->pw_uid && st.st_gid == gid && (st.st_mode & 07777) == 0640,
           "owner, group and mode applied (uid %u gid %u mode %04o)", (unsigned) st.st_uid, (unsigned) st.st_gid,
           (unsigned) (st.st_mode & 07777));

        /* Written again: the inventory's owner, not the file's, decides. */
        t.gid = (gid_t) -1;
        t.mode = 0;
        r = target_write(&t, "AKIAAGAIN", sec, NULL);
        ok(r == 0 && lstat(p, &st) == 0 && st.st_uid == pw->pw_uid && st.st_gid == getegid() &&
                   (st.st_mode & 07777) == 0600,
           "unset group: ours; unset mode: 0600 (%d)", r);

        /* No owner configured: the file is keyrotd's user's, and one that
         * somebody else owns is not written into. */
        {
                _cleanup_free_ char *err = NULL;

                t.uid = (uid_t) -1;
                r = target_write(&t, "AKIATHEIRS", sec, &err);
                ok(r == -EPERM && err && strstr(err, "owned by uid") && strstr(err, p),
                   "a file another user owns is refused when no owner is configured (%d: %s)", r, err ?: "");
                file_is(p, "AWS_ACCESS_KEY_ID=AKIAAGAIN\nAWS_SECRET_ACCESS_KEY=s3cr3t\n", "and left as it was");
        }
        ok(unlink(p) == 0, "file removed");
        r = target_write(&t, "AKIAMINE", sec, NULL);
        ok(r == 0 && lstat(p, &st) == 0 && st.st_uid == geteuid() && st.st_gid == getegid(),
           "no owner configured: a new file is ours (%d)", r);
        ok(lchown(p, pw->pw_uid, (gid_t) -1) == 0, "another user takes it over");
        r = target_write(&t, "AKIAMINE", sec, NULL);
        ok(r == -EPERM, "and it is refused (%d)", r);
        t.uid = pw->pw_uid;
        r = target_write(&t, "AKIAMINE", sec, NULL);
        ok(r == 0, "unless that user is the target's owner (%d)", r);
}

/* The trust rules of chase.h, seen through target_write(): the victim
 * stays as it was, and the refusal names the component. */
static void test_trust(void) {
        static const char victim_text[] = "[prod-admin]\naws_access_key_id = AKIAROOT\naws_secret_access_key = r\n";
        _cleanup_secret_ Secret *sec = secret_of("s3cr3t");
        struct {
                const char *setup_dir, *target, *want;
                int r;
        } cases[] = {
                { "home-link", "home-link/.aws/credentials", "/home-link/.aws is a symbolic link", -ELOOP },
                { "deep-link", "deep-link/a/b/credentials", "/deep-link/a is a symbolic link", -ELOOP },
                { "group-w", "group-w/app/credentials", "/group-w is writable by group", -EPERM },
                { "sticky", "sticky/credentials", "sticky directory; a target directly inside it is refused", -EPERM },
        };

        ok(mkdir(path_of("tvictim"), 0700) == 0, "a private directory");
        put_file(path_of("tvictim/credentials"), victim_text);

        ok(mkdir(path_of("home-link"), 0755) == 0 && symlink(path_of("tvictim"), path_of("home-link/.aws")) == 0,
           "home-link/.aws -> victim");
        ok(mkdir(path_of("deep-link"), 0755) == 0 && symlink(path_of("tvictim"), path_of("deep-link/a")) == 0 &&
                   mkdir(path_of("tvictim/b"), 0700) == 0,
           "deep-link/a -> victim, with victim/b");
        ok(mkdir(path_of("group-w"), 0700) == 0 && chmod(path_of("group-w"), 0770) == 0 &&
                   mkdir(path_of("group-w/app"), 0700) == 0,
           "group-w is writable by group");
        ok(mkdir(path_of("sticky"), 0700) == 0 && chmod(path_of("sticky"), 01777) == 0, "sticky is like /tmp");

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *err = NULL, *check_err = NULL;
                TargetSpec t = spec(TARGET_CREDENTIALS_FILE, path_of(cases[i].target));
                char id[64];
                int r, c;

                r = target_write(&t, "AKIAEVIL", sec, &err);
                ok(r == cases[i].r && err && strstr(err, cases[i].want), "%s refused (%d: %s)", cases[i].target, r,
                   err ?: "");
                c = target_check(&t, &check_err);
                ok(c == r && streq_ptr(err, check_err), "target_check() says the same (%d: %s)", c,
                   check_err ?: "");
                ok(target_read_key_id(&t, id, sizeof id) == r, "target_read_key_id() refuses it too");
        }
        file_is(path_of("tvictim/credentials"), victim_text, "the victim file is untouched");
        ok(access(path_of("tvictim/b/credentials"), F_OK) < 0 && access(path_of("sticky/credentials"), F_OK) < 0 &&
                   access(path_of("group-w/app/credentials"), F_OK) < 0,
           "nothing written anywhere");
}

static void test_check(void) {
        _cleanup_free_ char *err = NULL;
        const char *p = path_of("checked");
        TargetSpec t = spec(TARGET_CREDENTIALS_FILE, p);
        int r;

        r = target_check(&t, &err);
        ok(r == 0 && access(p, F_OK) < 0, "target_check() of a new file: fine, nothing written (%d %s)", r,
           err ?: "");
        put_file(p, "[default]\naws_access_key_id = AKIAOLD\naws_secret_access_key = old\n[default]\n");
        r = target_check(&t, &err);
        ok(r == -EBADMSG && err && strstr(err, "not a valid AWS credentials file"),
           "target_check() of a malformed file: the write's refusal (%d %s)", r, err ?: "");
        put_file(p, "[default]\naws_access_key_id = AKIAOLD\naws_secret_access_key = old\n");
        r = target_check(&t, &err);
        ok(r == 0, "a good file: fine (%d)", r);
        file_is(p, "[default]\naws_access_key_id = AKIAOLD\naws_secret_access_key = old\n", "and unchanged");
        r = target_check_directory(&t, NULL);
        ok(r == 0, "its directory: fine (%d)", r);
        t.path = path_of("no-such-dir/x");
        r = target_check_directory(&t, &err);
        ok(r == -ENOENT && err && strstr(err, "no-such-dir does not exist"), "a missing directory (%s)", err ?: "");
}

static void test_symlink(void) {
        _cleanup_secret_ Secret *sec = secret_of("s3cr3t");
        const char *victim = path_of("victim"), *lnk = path_of("link");
        struct stat st;

        put_file(victim, "[default]\naws_access_key_id = AKIAVICTIM\naws_secret_access_key = v\n");
        ok(symlink(victim, lnk) == 0, "symlink created");
        for (TargetType type = 0; type < _TARGET_TYPE_MAX; type++) {
                _cleanup_free_ char *err = NULL;
                TargetSpec t = spec(type, lnk);
                char id[64];
                int r;

                r = target_write(&t, "AKIAEVIL", sec, &err);
                ok(r == -ELOOP && err && strstr(err, "symbolic link") && strstr(err, lnk),
                   "%s: symlink refused (%d: %s)", target_type_to_string(type), r, err ?: "");
                ok(target_read_key_id(&t, id, sizeof(id)) == -ELOOP, "%s: read through symlink refused",
                   target_type_to_string(type));
        }
        file_is(victim, "[default]\naws_access_key_id = AKIAVICTIM\naws_secret_access_key = v\n",
                "symlink target untouched");
        ok(lstat(lnk, &st) == 0 && S_ISLNK(st.st_mode), "symlink itself still there");

        /* A hard link is refused as well: the other name would keep the
         * old key, and the content may not be the application's. */
        {
                _cleanup_free_ char *err = NULL;
                const char *hard = path_of("hardlink");
                TargetSpec t = spec(TARGET_CREDENTIALS_FILE, hard);
                int r;

                ok(link(victim, hard) == 0, "hard link created");
                r = target_write(&t, "AKIAEVIL", sec, &err);
                ok(r == -EMLINK && err && strstr(err, "hard link"), "hard-linked file refused (%d: %s)", r,
                   err ?: "");
                file_is(victim, "[default]\naws_access_key_id = AKIAVICTIM\naws_secret_access_key = v\n",
                        "hard-linked file untouched");
                unlink(hard);
        }
}

static void test_missing_parent(void) {
        _cleanup_secret_ Secret *sec = secret_of("s3cr3t");
        _cleanup_free_ char *err = NULL;
        const char *p = path_of("no-such-dir/credentials");
        TargetSpec t = spec(TARGET_CREDENTIALS_FILE, p);
        struct stat st;
        int r;

        r = target_write(&t, "AKIAX", sec, &err);
        ok(r == -ENOENT && err && strstr(err, p) && strstr(err, "no-such-dir does not exist"),
           "missing parent directory: -ENOENT (%s)", err ?: "");
        ok(stat(path_of("no-such-dir"), &st) < 0 && errno == ENOENT, "parent directory not created");

        free(err);
        err = NULL;
        ok(mkdir(path_of("a-dir"), 0700) == 0, "made a directory");
        t.path = path_of("a-dir");
        r = target_write(&t, "AKIAX", sec, &err);
        ok(r == -EISDIR, "a directory as target: -EISDIR (%s)", err ?: "");

        t.path = p;
        t.mode = 04600;
        ok(target_write(&t, "AKIAX", sec, NULL) == -EINVAL, "setuid mode refused");
        t.mode = 0;
        t.path = path_of("bad-id");
        ok(target_write(&t, "AKIA X", sec, NULL) == -EINVAL, "key id with a blank refused");
        ok(target_write(&t, "", sec, NULL) == -EINVAL, "empty key id refused");
        ok(target_write(&t, "AKIA", NULL, NULL) == -EINVAL, "no secret refused");
        ok(access(path_of("bad-id"), F_OK) < 0, "nothing written for refused arguments");
}

static void test_env_file(void) {
        _cleanup_secret_ Secret *sec = secret_of("new/Secret+=");
        _cleanup_free_ char *err = NULL;
        const char *p = path_of("app.env");
        TargetSpec t = spec(TARGET_ENV_FILE, p);
        char id[64];
        int r;

        put_file(p,
                 "# application environment\n"
                 "FOO=bar\n"
                 "AWS_ACCESS_KEY_ID=AKIAOLD\n"
                 "NOT_AN_ASSIGNMENT\n"
                 " export  AWS_SECRET_ACCESS_KEY = \"old secret\"\n"
                 "AWS_SESSION_TOKEN=tok\\\n"
                 "AWS_ACCESS_KEY_ID=still-the-token\n"
                 "BAR='x\n"
                 "AWS_ACCESS_KEY_ID=inside-a-quote'\n"
                 "AWS_ACCESS_KEY_ID_SUFFIX=1\n"
                 "; AWS_ACCESS_KEY_ID=commented\n"
                 "AWS_ACCESS_KEY_ID=AKIADUP\n"
                 "LAST=\"1\"\n");
        r = target_read_key_id(&t, id, sizeof(id));
        ok(r == 0 && streq(id, "AKIADUP"), "env-file: the last assignment counts (%d %s)", r, r == 0 ? id : "");

        r = target_write(&t, "AKIANEW", sec, &err);
        ok(r == 0, "env-file merge (%d %s)", r, err ?: "");
        file_is(p,
                "# application environment\n"
                "FOO=bar\n"
                "AWS_ACCESS_KEY_ID=AKIANEW\n"
                "NOT_AN_ASSIGNMENT\n"
                " export  AWS_SECRET_ACCESS_KEY =new/Secret+=\n"
                "BAR='x\n"
                "AWS_ACCESS_KEY_ID=inside-a-quote'\n"
                "AWS_ACCESS_KEY_ID_SUFFIX=1\n"
                "; AWS_ACCESS_KEY_ID=commented\n"
                "LAST=\"1\"\n",
                "env-file: replaced in place, duplicates and session token dropped, other lines byte for byte");
        r = target_read_key_id(&t, id, sizeof(id));
        ok(r == 0 && streq(id, "AKIANEW"), "env-file: read key id back");

        /* Missing lines are appended; a missing final newline is added
         * first, and a trailing backslash cannot swallow our line. */
        put_file(p, "FOO=bar");
        ok(target_write(&t, "AKIA1", sec, NULL) == 0, "env-file without final newline");
        file_is(p, "FOO=bar\nAWS_ACCESS_KEY_ID=AKIA1\nAWS_SECRET_ACCESS_KEY=new/Secret+=\n",
                "env-file: appended after a newline");
        put_file(p, "FOO=bar\\\n");
        ok(target_write(&t, "AKIA2", sec, NULL) == 0, "env-file ending in a continuation");
        file_is(p, "FOO=bar\\\n\nAWS_ACCESS_KEY_ID=AKIA2\nAWS_SECRET_ACCESS_KEY=new/Secret+=\n",
                "env-file: an empty line ends the continuation");
        r = target_read_key_id(&t, id, sizeof(id));
        ok(r == 0 && streq(id, "AKIA2"), "env-file: read back after continuation");
        put_file(p, "AWS_ACCESS_KEY_ID=\"AKIA\\Q\"  \n# AWS_ACCESS_KEY_ID=no\n");
        r = target_read_key_id(&t, id, sizeof(id));
        ok(r == 0 && streq(id, "AKIA\\Q"), "env-file: quoted value read as systemd does (%s)", r == 0 ? id : "");
        put_file(p, "FOO=1\n");
        ok(target_read_key_id(&t, id, sizeof(id)) == -ENOENT, "env-file: no key id -ENOENT");
        put_file(p, "A=1\r\nAWS_SECRET_ACCESS_KEY=old\r\n");
        ok(target_write(&t, "AKIA3", sec, NULL) == 0, "env-file with CRLF");
        file_is(p, "A=1\r\nAWS_SECRET_ACCESS_KEY=new/Secret+=\r\nAWS_ACCESS_KEY_ID=AKIA3\r\n",
                "env-file: CRLF kept and used for added lines");

        unlink(p);
        ok(target_write(&t, "AKIA4", sec, NULL) == 0, "env-file created");
        file_is(p, "AWS_ACCESS_KEY_ID=AKIA4\nAWS_SECRET_ACCESS_KEY=new/Secret+=\n", "env-file: new file");

        /* A quoted value that never ends would swallow what we append. */
        put_file(p, "FOO=\"unterminated\n");
        free(err);
        err = NULL;
        r = target_write(&t, "AKIA5", sec, &err);
        ok(r == -EBADMSG && err && strstr(err, p), "env-file: unterminated quote refused (%s)", err ?: "");
        file_is(p, "FOO=\"unterminated\n", "env-file: refused file unchanged");

        /* Characters that mean something to the parser are refused, and
         * the message does not quote the secret. */
        {
                _cleanup_secret_ Secret *bad = secret_of("abc$HOME\"xyz");

                unlink(p);
                free(err);
                err = NULL;
                r = target_write(&t, "AKIA6", bad, &err);
                ok(r == -EINVAL && err && !strstr(err, "abc") && !strstr(err, "xyz"),
                   "env-file: unsafe secret refused without quoting it (%s)", err ?: "");
                ok(access(p, F_OK) < 0, "env-file: nothing written");
        }
}

static void test_json_file(void) {
        _cleanup_secret_ Secret *sec = secret_of("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
        _cleanup_secret_ Secret *odd = secret_of("a\"b\\c");
        const char *p = path_of("creds.json");
        TargetSpec t = spec(TARGET_JSON_FILE, p);
        struct stat st;
        char id[64];
        int r;

        put_file(p, "whatever was here before\n");
        r = target_write(&t, "AKIAIOSFODNN7EXAMPLE", sec, NULL);
        ok(r == 0, "json-file written (%d)", r);
        file_is(p,
                "{\"Version\":1,\"AccessKeyId\":\"AKIAIOSFODNN7EXAMPLE\","
                "\"SecretAccessKey\":\"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\"}\n",
                "json-file: exact bytes");
        ok(stat(p, &st) == 0 && (st.st_mode & 07777) == 0600, "json-file: 0600");
        r = target_read_key_id(&t, id, sizeof(id));
        ok(r == 0 && streq(id, "AKIAIOSFODNN7EXAMPLE"), "json-file: read key id back");

        r = target_write(&t, "AKIAESC", odd, NULL);
        ok(r == 0, "json-file with quote and backslash in the secret");
        file_is(p, "{\"Version\":1,\"AccessKeyId\":\"AKIAESC\",\"SecretAccessKey\":\"a\\\"b\\\\c\"}\n",
                "json-file: escaped");

        put_file(p, " {\n  \"Version\": 1,\n  \"SecretAccessKey\": \"x\\\"}\",\n  \"AccessKeyId\": \"AKIA\\u0041B\",\n"
                    "  \"Expiration\": \"2030-01-01T00:00:00Z\", \"n\": null\n}\n");
        r = target_read_key_id(&t, id, sizeof(id));
        ok(r == 0 && streq(id, "AKIAAB"), "json-file: hand-written document read (%d)", r);
        put_file(p, "{\"Version\":1}");
        ok(target_read_key_id(&t, id, sizeof(id)) == -ENOENT, "json-file: no AccessKeyId -ENOENT");
        put_file(p, "{\"AccessKeyId\":\"AKIA\"");
        ok(target_read_key_id(&t, id, sizeof(id)) == -EBADMSG, "json-file: truncated -EBADMSG");
        put_file(p, "{\"AccessKeyId\":\"AKIA\"} x");
        ok(target_read_key_id(&t, id, sizeof(id)) == -EBADMSG, "json-file: trailing garbage -EBADMSG");
        put_file(p, "{\"AccessKeyId\":\"AKIA1\",\"AccessKeyId\":\"AKIA2\"}");
        ok(target_read_key_id(&t, id, sizeof(id)) == -EBADMSG, "json-file: AccessKeyId twice -EBADMSG");
        put_file(p, "{\"AccessKeyId\":7}");
        ok(target_read_key_id(&t, id, sizeof(id)) == -EBADMSG, "json-file: AccessKeyId not a string -EBADMSG");
        put_file(p, "{\"AccessKeyId\":\"AKIA\\nX\"}");
        ok(target_read_key_id(&t, id, sizeof(id)) == -EBADMSG, "json-file: a key id with a line break -EBADMSG");
        put_file(p, "{\"Meta\":{\"a\":[1,{\"b\":null}]},\"AccessKeyId\":\"AKIANEST\"}");
        r = target_read_key_id(&t, id, sizeof(id));
        ok(r == 0 && streq(id, "AKIANEST"), "json-file: nested members skipped (%d)", r);
        ok(target_read_key_id(&t, id, 8) == -ERANGE, "json-file: small buffer -ERANGE");
}

static void test_profile_names(void) {
        _cleanup_secret_ Secret *sec = secret_of("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
        static const char *const bad[] = { "DEFAULT", "a]b", "a b", "a\nb", "" };
        const char *p = path_of("profiles");
        TargetSpec t = spec(TARGET_CREDENTIALS_FILE, p);

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *err = NULL;
                int r;

                t.profile = bad[i];
                r = target_write(&t, "AKIAPROFILE", sec, &err);
                ok(r == -EINVAL && err && strstr(err, "profile name") && !strchr(err, '\n') &&
                           access(p, F_OK) < 0,
                   "credentials-file: profile %zu refused, nothing written: %s", i, err ?: "");
        }
        t.profile = "team/app@prod:1";
        ok(target_write(&t, "AKIAPROFILE", sec, NULL) == 0, "credentials-file: profile with SDK punctuation");
}

static void test_spec_from_inventory(void) {
        InventoryTarget it = {
                .type = TARGET_CREDENTIALS_FILE,
                .path = (char *) "/srv/app/credentials",
                .profile = (char *) "app",
                .uid = 1000,
                .gid = 2000,
                .mode = 0640,
        };
        TargetSpec t = target_spec_from_inventory(&it);

        ok(t.type == it.type && t.path == it.path && t.profile == it.profile && t.uid == 1000 && t.gid == 2000 &&
                   t.mode == 0640,
           "target_spec_from_inventory copies every field");
        it.uid = UID_INVALID;
        it.gid = GID_INVALID;
        t = target_spec_from_inventory(&it);
        ok(t.uid == (uid_t) -1 && t.gid == (gid_t) -1, "unset owner and group stay unset");
}

static void test_render(void) {
        _cleanup_secret_ Secret *sec = secret_of("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
        _cleanup_secret_ Secret *cred = NULL, *env = NULL, *json = NULL, *named = NULL;
        _cleanup_free_ char *err = NULL;
        TargetSpec t = spec(TARGET_CREDENTIALS_FILE, "-");

        ok(target_render(&t, "AKIAR", sec, &cred, NULL) == 0 && cred &&
                   streq(cred->data, "[default]\naws_access_key_id = AKIAR\n"
                                     "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"),
           "render credentials-file: %s", cred ? cred->data : "");
        t.profile = "app";
        ok(target_render(&t, "AKIAR", sec, &named, NULL) == 0 && named && startswith(named->data, "[app]\n"),
           "render credentials-file with a profile");
        t = spec(TARGET_ENV_FILE, "-");
        ok(target_render(&t, "AKIAR", sec, &env, NULL) == 0 && env &&
                   streq(env->data, "AWS_ACCESS_KEY_ID=AKIAR\n"
                                    "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"),
           "render env-file: %s", env ? env->data : "");
        t = spec(TARGET_JSON_FILE, "-");
        ok(target_render(&t, "AKIAR", sec, &json, NULL) == 0 && json &&
                   streq(json->data, "{\"Version\":1,\"AccessKeyId\":\"AKIAR\","
                                     "\"SecretAccessKey\":\"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\"}\n"),
           "render json-file");
        ok(target_render(&t, "AKIA-BAD", sec, &json, &err) == -EINVAL && err && strstr(err, "access key id"),
           "render refuses what target_write refuses: %s", err ?: "");
}

static void test_failure_keeps_old(void) {
        static const char old[] = "[default]\n"
                                  "aws_access_key_id = AKIAKEEP\n"
                                  "aws_secret_access_key = keep/me\n"
                                  "[default]\n";
        static const char good[] = "[default]\n"
                                   "aws_access_key_id = AKIAKEEP\n"
                                   "aws_secret_access_key = keep/me\n";
        _cleanup_secret_ Secret *sec = secret_of("s3cr3t");
        _cleanup_free_ char *err = NULL;
        const char *p = path_of("keep");
        TargetSpec t = spec(TARGET_CREDENTIALS_FILE, p);
        unsigned temps = count_temp_files();
        int status = 0, r;
        pid_t pid;

        /* A file we cannot parse is refused as a whole and left alone. */
        put_file(p, old);
        r = target_write(&t, "AKIANEW", sec, &err);
        ok(r == -EBADMSG && err && strstr(err, p), "malformed credentials file refused (%s)", err ?: "");
        file_is(p, old, "malformed file unchanged");

        /* Writing fails midway (the file size limit makes write(2) fail
         * with EFBIG): the old file must survive, no temporary left. */
        put_file(p, good);
        pid = fork();
        if (pid == 0) {
                struct rlimit rl = { .rlim_cur = 16, .rlim_max = 16 };

                signal(SIGXFSZ, SIG_IGN);
                if (setrlimit(RLIMIT_FSIZE, &rl) < 0)
                        _exit(99);
                r = target_write(&t, "AKIANEWKEYTHATDOESNOTFIT", sec, NULL);
                _exit(r == -EFBIG ? 0 : 100 + (-r & 0x7f));
        }
        ok(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
           "write fails with -EFBIG (status %d)", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        file_is(p, good, "old file intact after the failed write");
        ok(count_temp_files() == temps, "no temporary file left behind");
}

static void cleanup_dir(void) {
        char cmd[600];

        snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", dir);
        if (system(cmd) != 0)
                diag("could not remove %s", dir);
}

int main(void) {
        umask(0077);
        if (!mkdtemp(dir)) {
                perror("mkdtemp");
                return 1;
        }

        test_type_strings();
        test_credentials_merge();
        test_new_file();
        test_mode_and_owner();
        test_trust();
        test_check();
        test_symlink();
        test_missing_parent();
        test_env_file();
        test_json_file();
        test_profile_names();
        test_spec_from_inventory();
        test_render();
        test_failure_keeps_old();

        cleanup_dir();
        return tap_done();
}

/* SPDX-License-Identifier: MIT */
/*
 * test-credentials — keyrotd's own identity: the environment and shared
 * file parts of the chain, their error messages, the IMDS-disabled and
 * IMDS-unreachable paths, and the instance-role document parser. The IMDS
 * round trip and refresh are tested in tests/integration/test_credentials.py.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include "aws/http.h"
#include "aws/provider.h"
#include "basic/util.h"
#include "tap.h"

static char tmpdir[] = "/tmp/test-credentials-XXXXXX";
static char path_buf[4096];

static const char *tmp_path(const char *name) {
        snprintf(path_buf, sizeof path_buf, "%s/%s", tmpdir, name);
        return path_buf;
}

static void write_file(const char *name, const char *content) {
        FILE *f = fopen(tmp_path(name), "we");

        if (!f || fputs(content, f) < 0 || fclose(f) != 0) {
                perror(name);
                exit(2);
        }
}

static void clean_env(void) {
        static const char *const vars[] = {
                "AWS_ACCESS_KEY_ID",         "AWS_SECRET_ACCESS_KEY",       "AWS_SESSION_TOKEN",
                "AWS_SECURITY_TOKEN",        "AWS_PROFILE",                 "AWS_SHARED_CREDENTIALS_FILE",
                "AWS_EC2_METADATA_DISABLED", "AWS_EC2_METADATA_SERVICE_ENDPOINT",
        };

        for (size_t i = 0; i < ELEMENTSOF(vars); i++)
                unsetenv(vars[i]);
        /* Never the developer's real ~/.aws, never the real IMDS. */
        setenv("HOME", tmpdir, 1);
        setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
}

typedef struct Resolved {
        int r;
        char *error;
        CredentialsProvider *p;
} Resolved;

static Resolved resolve(HttpClient *http, const char *profile, const char *file) {
        Resolved res = { .r = 0 };
        CredentialsOptions o = { .profile = profile, .shared_file = file };

        res.r = credentials_provider_new(http, &o, &res.p, &res.error);
        return res;
}

static void resolved_done(Resolved *res) {
        credentials_provider_free(res->p);
        free(res->error);
}

/* Resolve and check source, key id, secret and token (NULL = none). */
static void expect_creds(const char *profile, const char *file, const char *source, const char *id,
                         const char *secret, const char *token, const char *name) {
        Resolved res = resolve(NULL, profile, file);
        AwsCredentials *c = credentials_provider_current(res.p);

        if (!ok(res.r == 0 && c, "%s: resolved", name)) {
                diag("r=%d error=%s", res.r, res.error ?: "(none)");
                resolved_done(&res);
                return;
        }
        ok(streq(c->source, source) && streq(c->access_key_id, id) && streq(secret_str(c->secret_access_key), secret) &&
                   streq_ptr(secret_str(c->session_token), token) && c->expiration == 0,
           "%s: source=%s id=%s", name, c->source, c->access_key_id);
        ok(credentials_provider_next_refresh(res.p) == USEC_INFINITY, "%s: nothing to refresh", name);
        resolved_done(&res);
}

static void expect_error(HttpClient *http, const char *profile, const char *file, int want, const char *needle1,
                         const char *needle2, const char *name) {
        Resolved res = resolve(http, profile, file);

        if (!ok(res.r == want && !res.p, "%s: %s", name, strerror(-want)))
                diag("r=%d (%s)", res.r, strerror(-res.r));
        if (!ok(res.error && (!needle1 || strstr(res.error, needle1)) && (!needle2 || strstr(res.error, needle2)),
                "%s: message names '%s' and '%s'", name, needle1 ?: "", needle2 ?: ""))
                diag("message: %s", res.error ?: "(none)");
        resolved_done(&res);
}

static void test_new(void) {
        AwsCredentials *c = NULL, *c2;
        int r;

        r = aws_credentials_new("AKIAEXAMPLE", "sec\0ret", 7, "tok", 42, "static", &c);
        ok(r == -EINVAL && !c, "new: NUL in a secret refused");
        r = aws_credentials_new("AKIAEXAMPLE", "sec\nret", 7, NULL, 0, NULL, &c);
        ok(r == -EINVAL && !c, "new: newline in a secret refused");
        r = aws_credentials_new("AKIAEXAMPLE", "s", 1, "to\r\nken", 0, NULL, &c);
        ok(r == -EINVAL && !c, "new: CRLF in a session token refused (header injection)");
        r = aws_credentials_new("AKIAEXAMPLE", "s", 1, "", 0, NULL, &c);
        ok(r == -EINVAL && !c, "new: empty session token refused");
        r = aws_credentials_new("AKIA/EXAMPLE", "s", 1, NULL, 0, NULL, &c);
        ok(r == -EINVAL && !c, "new: '/' in a key id refused (Credential= scope)");
        r = aws_credentials_new("AKIA EXAMPLE", "s", 1, NULL, 0, NULL, &c);
        ok(r == -EINVAL && !c, "new: blank in a key id refused");
        r = aws_credentials_new("", "s", 1, NULL, 0, NULL, &c);
        ok(r == -EINVAL && !c, "new: empty key id refused");
        r = aws_credentials_new("AKIAEXAMPLE", "", 0, NULL, 0, NULL, &c);
        ok(r == -EINVAL && !c, "new: empty secret refused");

        r = aws_credentials_new("AKIAEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY trailing", 40, "tok", 42, NULL, &c);
        ok(r == 0 && c && c->n_ref == 1 && streq(c->access_key_id, "AKIAEXAMPLE") &&
                   c->secret_access_key->len == 40 &&
                   streq(secret_str(c->secret_access_key), "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY") &&
                   streq(secret_str(c->session_token), "tok") && c->expiration == 42 && streq(c->source, "static"),
           "new: fields copied, secret length honoured, default source");
        c2 = aws_credentials_ref(c);
        ok(c2 == c && c->n_ref == 2, "new: ref counts");
        ok(aws_credentials_unref(c2) == NULL && c->n_ref == 1, "new: unref keeps a referenced object");
        aws_credentials_unref(c); /* freed: ASan would report a leak or a double free */
        ok(aws_credentials_unref(NULL) == NULL && aws_credentials_ref(NULL) == NULL, "new: NULL is fine");
}

static void test_environment(void) {
        clean_env();
        write_file("file", "[default]\naws_access_key_id = AKIAFILE\naws_secret_access_key = filesecret\n");
        setenv("AWS_SHARED_CREDENTIALS_FILE", tmp_path("file"), 1);

        setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
        setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
        expect_creds(NULL, NULL, "environment", "AKIAENV", "envsecret", NULL, "env: wins over the file");
        expect_creds("other", NULL, "environment", "AKIAENV", "envsecret", NULL,
                     "env: wins over an explicit profile too (SDK order)");
        setenv("AWS_SESSION_TOKEN", "envtoken", 1);
        expect_creds(NULL, NULL, "environment", "AKIAENV", "envsecret", "envtoken", "env: session token");
        unsetenv("AWS_SESSION_TOKEN");
        setenv("AWS_SECURITY_TOKEN", "legacytoken", 1);
        expect_creds(NULL, NULL, "environment", "AKIAENV", "envsecret", "legacytoken",
                     "env: legacy AWS_SECURITY_TOKEN");
        unsetenv("AWS_SECURITY_TOKEN");

        unsetenv("AWS_SECRET_ACCESS_KEY");
        expect_error(NULL, NULL, NULL, -EINVAL, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                     "env: key id without secret");
        setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
        unsetenv("AWS_ACCESS_KEY_ID");
        expect_error(NULL, NULL, NULL, -EINVAL, "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID",
                     "env: secret without key id");
        setenv("AWS_ACCESS_KEY_ID", "", 1);
        setenv("AWS_SECRET_ACCESS_KEY", "", 1);
        expect_creds(NULL, NULL, "shared-file", "AKIAFILE", "filesecret", NULL, "env: empty variables are unset");
        setenv("AWS_ACCESS_KEY_ID", "AKIA ENV", 1);
        setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
        expect_error(NULL, NULL, NULL, -EINVAL, "environment", NULL, "env: malformed key id");
}

static void test_shared_file(void) {
        static const char creds[] =
                "# test\n"
                "[default]\n"
                "aws_access_key_id = AKIADEFAULT\n"
                "aws_secret_access_key = defaultsecret\n"
                "\n"
                "[work]\n"
                "AWS_ACCESS_KEY_ID=AKIAWORK\n"
                "aws_secret_access_key: worksecret/with+chars==\n"
                "aws_session_token = worktoken\n"
                "\n"
                "[legacy]\n"
                "aws_access_key_id = AKIALEGACY\n"
                "aws_secret_access_key = legacysecret\n"
                "aws_security_token = legacytoken\n"
                "\n"
                "[half-id]\n"
                "aws_access_key_id = AKIAHALF\n"
                "region = eu-west-1\n"
                "\n"
                "[half-secret]\n"
                "aws_secret_access_key = halfsecret\n"
                "\n"
                "[no-keys]\n"
                "region = eu-west-1\n"
                "\n"
                "[bad-id]\n"
                "aws_access_key_id = AKIA/BAD\n"
                "aws_secret_access_key = s\n";

        clean_env();
        write_file("creds", creds);
        write_file("other", "[default]\naws_access_key_id = AKIAOTHER\naws_secret_access_key = othersecret\n");
        if (mkdir(tmp_path(".aws"), 0700) < 0 && errno != EEXIST)
                exit(2);
        write_file(".aws/credentials", "[default]\naws_access_key_id = AKIAHOME\naws_secret_access_key = homesecret\n"
                                       "[work]\naws_access_key_id = AKIAHOMEWORK\naws_secret_access_key = hw\n");

        expect_creds(NULL, NULL, "shared-file", "AKIAHOME", "homesecret", NULL, "file: $HOME/.aws/credentials");
        setenv("AWS_SHARED_CREDENTIALS_FILE", tmp_path("creds"), 1);
        expect_creds(NULL, NULL, "shared-file", "AKIADEFAULT", "defaultsecret", NULL,
                     "file: AWS_SHARED_CREDENTIALS_FILE, default profile");
        expect_creds(NULL, tmp_path("other"), "shared-file", "AKIAOTHER", "othersecret", NULL,
                     "file: the option wins over AWS_SHARED_CREDENTIALS_FILE");
        setenv("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials", 1);
        expect_creds("work", NULL, "shared-file", "AKIAHOMEWORK", "hw", NULL, "file: ~/ expanded with $HOME");
        setenv("AWS_SHARED_CREDENTIALS_FILE", tmp_path("creds"), 1);

        setenv("AWS_PROFILE", "work", 1);
        expect_creds(NULL, NULL, "shared-file", "AKIAWORK", "worksecret/with+chars==", "worktoken",
                     "file: AWS_PROFILE, session token, key names in any case");
        expect_creds("legacy", NULL, "shared-file", "AKIALEGACY", "legacysecret", "legacytoken",
                     "file: explicit profile wins over AWS_PROFILE; aws_security_token");
        unsetenv("AWS_PROFILE");

        expect_error(NULL, "missing", NULL, -ENOKEY, "missing", tmp_path("creds"), "file: missing explicit profile");
        setenv("AWS_PROFILE", "missing-too", 1);
        expect_error(NULL, NULL, NULL, -ENOKEY, "missing-too", tmp_path("creds"), "file: missing AWS_PROFILE");
        unsetenv("AWS_PROFILE");
        expect_error(NULL, "no-keys", NULL, -ENOKEY, "no-keys", tmp_path("creds"),
                     "file: explicit profile without keys");
        expect_error(NULL, "half-id", NULL, -EINVAL, "half-id", tmp_path("creds"),
                     "file: key id without secret names file and profile");
        expect_error(NULL, "half-id", NULL, -EINVAL, "aws_secret_access_key", NULL, "file: ...and the missing key");
        expect_error(NULL, "half-secret", NULL, -EINVAL, "half-secret", tmp_path("creds"), "file: secret without key id");
        expect_error(NULL, "bad-id", NULL, -EINVAL, "bad-id", tmp_path("creds"), "file: malformed key id");
        expect_error(NULL, "work", tmp_path("nonexistent"), -ENOKEY, "work", tmp_path("nonexistent"),
                     "file: explicit profile, file missing");
        expect_error(NULL, NULL, tmp_path("nonexistent"), -ENOKEY, "default", "not consulted",
                     "file: implicit default, file missing, no IMDS");

        write_file("dup", "[default]\naws_access_key_id = A1\naws_secret_access_key = s\n[default]\n");
        expect_error(NULL, NULL, tmp_path("dup"), -EINVAL, tmp_path("dup"), "not a valid", "file: duplicate profile");
        write_file("garbage", "[default]\nthis is not ini\n");
        expect_error(NULL, NULL, tmp_path("garbage"), -EINVAL, tmp_path("garbage"), NULL, "file: malformed line");
        expect_error(NULL, NULL, tmpdir, -EISDIR, tmpdir, NULL, "file: a directory");

        {
                FILE *f = fopen(tmp_path("big"), "we");

                if (!f)
                        exit(2);
                fputs("[default]\naws_access_key_id = AKIABIG\naws_secret_access_key = s\n", f);
                for (unsigned i = 0; i < 1024 * 1024 / 8; i++)
                        fputs("#-------\n", f);
                fclose(f);
                expect_error(NULL, NULL, tmp_path("big"), -E2BIG, tmp_path("big"), NULL, "file: over 1 MiB");
        }
        {
                /* Group- and world-readable is read anyway (like the CLI). */
                char target[4096];

                write_file("open", "[default]\naws_access_key_id = AKIAOPEN\naws_secret_access_key = s\n");
                chmod(tmp_path("open"), 0644);
                expect_creds(NULL, tmp_path("open"), "shared-file", "AKIAOPEN", "s", NULL, "file: mode 0644 is read");
                snprintf(target, sizeof target, "%s", tmp_path("open"));
                if (ok(symlink(target, tmp_path("link")) == 0, "file: symlink created"))
                        expect_creds(NULL, tmp_path("link"), "shared-file", "AKIAOPEN", "s", NULL,
                                     "file: a symlink is followed");
        }
}

static int closed_port(void) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t l = sizeof sa;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port;

        if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0 ||
            getsockname(fd, (struct sockaddr *) &sa, &l) < 0)
                exit(2);
        port = ntohs(sa.sin_port);
        close(fd); /* bound but never listening: connections are refused */
        return port;
}

static void test_imds_paths(void) {
        _cleanup_(http_client_freep) HttpClient *http = NULL;
        sd_event *event = NULL;
        char endpoint[64];
        usec_t t0;

        clean_env();
        if (sd_event_new(&event) < 0 || http_client_new(event, NULL, &http) < 0)
                exit(2);
        sd_event_unref(event);

        setenv("AWS_SHARED_CREDENTIALS_FILE", tmp_path("nonexistent"), 1);
        expect_error(http, NULL, NULL, -ENOKEY, "AWS_EC2_METADATA_DISABLED", NULL, "imds: disabled");
        setenv("AWS_EC2_METADATA_DISABLED", "TRUE", 1);
        expect_error(http, NULL, NULL, -ENOKEY, "AWS_EC2_METADATA_DISABLED", NULL, "imds: disabled, any case");

        /* Enabled, pointed at a port nobody listens on: fails fast and
         * says where it looked. */
        setenv("AWS_EC2_METADATA_DISABLED", "false", 1);
        snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d/", closed_port());
        setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", endpoint, 1);
        t0 = now_usec(CLOCK_MONOTONIC);
        endpoint[strlen(endpoint) - 1] = 0;
        expect_error(http, NULL, NULL, -ENOKEY, endpoint, "session token", "imds: unreachable");
        ok(now_usec(CLOCK_MONOTONIC) - t0 < 10 * USEC_PER_SEC, "imds: unreachable fails within seconds");

        setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "ftp://127.0.0.1:1", 1);
        expect_error(http, NULL, NULL, -EINVAL, "AWS_EC2_METADATA_SERVICE_ENDPOINT", NULL, "imds: bad endpoint");

        /* An explicit profile never falls through to the instance role. */
        expect_error(http, "work", NULL, -ENOKEY, "work", NULL, "imds: not consulted for an explicit profile");
}

static void check_doc(const char *doc, int want, const char *id, const char *secret, const char *token, usec_t exp,
                      const char *name) {
        AwsCredentials *c = NULL;
        int r = aws_credentials_from_imds_document(doc, strlen(doc), &c);

        if (want < 0) {
                if (!ok(r == want && !c, "%s", name))
                        diag("r=%d (%s)", r, strerror(-r));
                aws_credentials_unref(c);
                return;
        }
        if (!ok(r == 0 && c && streq(c->access_key_id, id) && streq(secret_str(c->secret_access_key), secret) &&
                        streq_ptr(secret_str(c->session_token), token) && c->expiration == exp &&
                        streq(c->source, "imds"),
                "%s", name))
                diag("r=%d id=%s secret=%s", r, c ? c->access_key_id : "-", c ? secret_str(c->secret_access_key) : "-");
        aws_credentials_unref(c);
}

static void test_imds_document(void) {
        const usec_t exp = 1700000000ULL * USEC_PER_SEC;

        check_doc("{\n  \"Code\" : \"Success\",\n  \"LastUpdated\" : \"2023-11-14T21:00:00Z\",\n"
                  "  \"Type\" : \"AWS-HMAC\",\n  \"AccessKeyId\" : \"ASIAEXAMPLE\",\n"
                  "  \"SecretAccessKey\" : \"wJalr/K7MDENG+bPxRfiCY\",\n  \"Token\" : \"IQoJb3JpZ2luX2VjE\",\n"
                  "  \"Expiration\" : \"2023-11-14T22:13:20Z\"\n}\n",
                  0, "ASIAEXAMPLE", "wJalr/K7MDENG+bPxRfiCY", "IQoJb3JpZ2luX2VjE", exp, "doc: what IMDS serves");
        check_doc("{\"AccessKeyId\":\"ASIA1\",\"SecretAccessKey\":\"a\\/b\\\\c\\\"d\\u0041\\u00e9\\ud83d\\ude00\","
                  "\"Expiration\":\"2023-11-14T22:13:20.123456Z\"}",
                  0, "ASIA1", "a/b\\c\"dA\xc3\xa9\xf0\x9f\x98\x80", NULL, exp, "doc: escapes decoded, fractions");
        check_doc("{\"AccessKeyId\":\"ASIA1\",\"SecretAccessKey\":\"s\",\"Extra\":{\"a\":[1,-2.5e3,true,null,"
                  "{\"b\":\"c\"}],\"d\":false},\"Num\":0}",
                  0, "ASIA1", "s", NULL, 0, "doc: other members of any type skipped");
        check_doc("{\"Code\":\"Failure\",\"AccessKeyId\":\"ASIA1\",\"SecretAccessKey\":\"s\"}", -ENOKEY, NULL, NULL,
                  NULL, 0, "doc: Code other than Success");
        check_doc("{\"AccessKeyId\":\"ASIA1\"}", -EBADMSG, NULL, NULL, NULL, 0, "doc: no secret");
        check_doc("{\"SecretAccessKey\":\"s\"}", -EBADMSG, NULL, NULL, NULL, 0, "doc: no key id");
        check_doc("{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\",\"SecretAccessKey\":\"t\"}", -EBADMSG, NULL,
                  NULL, NULL, 0, "doc: a member twice");
        check_doc("{\"AccessKeyId\":1,\"SecretAccessKey\":\"s\"}", -EBADMSG, NULL, NULL, NULL, 0,
                  "doc: a member of the wrong type");
        check_doc("{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\",\"Expiration\":\"tomorrow\"}", -EBADMSG, NULL,
                  NULL, NULL, 0, "doc: bad Expiration");
        check_doc("{\"AccessKeyId\":\"A B\",\"SecretAccessKey\":\"s\"}", -EINVAL, NULL, NULL, NULL, 0,
                  "doc: bad key id");
        check_doc("{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\\n\"}", -EINVAL, NULL, NULL, NULL, 0,
                  "doc: control character in the secret");
        check_doc("{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\\u0000\"}", -EBADMSG, NULL, NULL, NULL, 0,
                  "doc: \\u0000 refused");
        check_doc("{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\\ud800\"}", -EBADMSG, NULL, NULL, NULL, 0,
                  "doc: lone surrogate refused");
        check_doc("{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\tt\"}", -EBADMSG, NULL, NULL, NULL, 0,
                  "doc: raw control character in a string");
        check_doc("{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\"} x", -EBADMSG, NULL, NULL, NULL, 0,
                  "doc: trailing garbage");
        check_doc("{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\",}", -EBADMSG, NULL, NULL, NULL, 0,
                  "doc: trailing comma");
        check_doc("{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s", -EBADMSG, NULL, NULL, NULL, 0,
                  "doc: truncated in a string");
        check_doc("{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\\", -EBADMSG, NULL, NULL, NULL, 0,
                  "doc: truncated in an escape");
        check_doc("{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\\u12", -EBADMSG, NULL, NULL, NULL, 0,
                  "doc: truncated in \\u");
        check_doc("[\"AccessKeyId\"]", -EBADMSG, NULL, NULL, NULL, 0, "doc: not an object");
        check_doc("", -EBADMSG, NULL, NULL, NULL, 0, "doc: empty");
        check_doc("{}", -EBADMSG, NULL, NULL, NULL, 0, "doc: empty object");
        check_doc("{\"x\":[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]],\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\"}", -EBADMSG,
                  NULL, NULL, NULL, 0, "doc: nesting bounded");
        check_doc("{\"x\":01e,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\"}", -EBADMSG, NULL, NULL, NULL, 0,
                  "doc: bad number");
        check_doc("{\"x\":tru,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\"}", -EBADMSG, NULL, NULL, NULL, 0,
                  "doc: bad literal");
        {
                AwsCredentials *c = NULL;
                size_t n = 70 * 1024;
                char *big = malloc(n + 1);
                int r;

                if (!big)
                        exit(2);
                memset(big, ' ', n);
                static const char doc[] = "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\"}";

                memcpy(big, doc, strlen(doc));
                big[n] = 0;
                r = aws_credentials_from_imds_document(big, n, &c);
                ok(r == -EBADMSG && !c, "doc: over 64 KiB refused");
                r = aws_credentials_from_imds_document(big, strlen(doc), &c);
                ok(r == 0 && c, "doc: length honoured, not the NUL");
                aws_credentials_unref(c);
                free(big);
        }
}

int main(void) {
        if (!mkdtemp(tmpdir))
                return 2;

        test_new();
        test_environment();
        test_shared_file();
        test_imds_paths();
        test_imds_document();

        {
                static const char *const names[] = { "file", "creds", "other", ".aws/credentials", "dup", "garbage",
                                                     "big",  "open",  "link" };
                for (size_t i = 0; i < ELEMENTSOF(names); i++)
                        (void) unlink(tmp_path(names[i]));
                (void) rmdir(tmp_path(".aws"));
                (void) rmdir(tmpdir);
        }
        return tap_done();
}

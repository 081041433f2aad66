/* SPDX-License-Identifier: MIT */
/*
 * cred-tool — drives the credentials chain and the INI module for the
 * integration tests. Never installed.
 *
 *   cred-tool resolve [--profile P] [--file F] [--watch SECONDS] [--retry SECONDS]
 *       One line "source=… access_key_id=… expires=EPOCH|never token=yes|no
 *       secret_sha256=12HEX next_refresh=EPOCH|never"; with --watch, the
 *       event loop runs for SECONDS and each refresh adds a line starting
 *       "refresh=ok at=EPOCH.MS" (same fields) or "refresh=error at=…
 *       error=ERRNO current=KEYID message=…". The secret itself is never
 *       printed, only a prefix of its SHA-256 so a test can check it was
 *       read intact.
 *       Failure: "error=ERRNO message=…" and exit status 1.
 *
 *   cred-tool ini-get [--config] FILE SECTION KEY [SECTION KEY]…
 *       One line per pair: "ok VALUE" or "error ERRNO". (Test files only:
 *       this prints values.)
 *
 *   cred-tool ini-merge [--config] FILE SECTION [--set KEY=VALUE]… [--remove KEY]…
 *       The merged file on stdout, or "error ERRNO" on stderr, exit 1.
 *
 *   cred-tool batch
 *       Many of the above in one process (process start-up dominates the
 *       differential tests): one tab-separated command per stdin line,
 *       one answer line each:
 *         get FILE SECTION KEY [config]             -> "ok VALUE" | "error ERRNO"
 *         merge FILE OUT SECTION [set=K=V|remove=K|config]… -> "ok" (OUT written) | "error ERRNO"
 */
#include <errno.h>
#include <getopt.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-event.h>

#include "aws/http.h"
#include "aws/provider.h"
#include "basic/ini.h"
#include "basic/util.h"

static const char *errname(int r) {
        const char *n = strerrorname_np(r < 0 ? -r : r);

        return n ?: "EUNKNOWN";
}

static void print_creds(CredentialsProvider *p) {
        AwsCredentials *c = credentials_provider_current(p);
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned md_len = 0;
        usec_t next = credentials_provider_next_refresh(p);

        if (EVP_Digest(c->secret_access_key->data, c->secret_access_key->len, md, &md_len, EVP_sha256(), NULL) != 1)
                md_len = 0;
        printf("source=%s access_key_id=%s", c->source, c->access_key_id);
        if (c->expiration)
                printf(" expires=%llu", (unsigned long long) (c->expiration / USEC_PER_SEC));
        else
                printf(" expires=never");
        printf(" token=%s secret_sha256=", c->session_token ? "yes" : "no");
        for (unsigned i = 0; i < 6 && i < md_len; i++)
                printf("%02x", md[i]);
        if (next == USEC_INFINITY)
                printf(" next_refresh=never\n");
        else
                printf(" next_refresh=%llu.%03llu\n", (unsigned long long) (next / USEC_PER_SEC),
                       (unsigned long long) (next % USEC_PER_SEC / USEC_PER_MSEC));
        fflush(stdout);
}

static void print_at(void) {
        usec_t now = now_usec(CLOCK_REALTIME);

        printf(" at=%llu.%03llu", (unsigned long long) (now / USEC_PER_SEC),
               (unsigned long long) (now % USEC_PER_SEC / USEC_PER_MSEC));
}

static void on_refresh(CredentialsProvider *p, int error, const char *message, void *userdata) {
        if (error < 0) {
                printf("refresh=error");
                print_at();
                printf(" error=%s current=%s message=%s\n", errname(error),
                       credentials_provider_current(p)->access_key_id, message ?: "");
                fflush(stdout);
                return;
        }
        printf("refresh=ok");
        print_at();
        printf(" ");
        print_creds(p);
}

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

static int cmd_resolve(int argc, char **argv) {
        static const struct option options[] = {
                { "profile", required_argument, NULL, 'p' },
                { "file", required_argument, NULL, 'f' },
                { "watch", required_argument, NULL, 'w' },
                { "retry", required_argument, NULL, 'r' },
                {},
        };
        _cleanup_(http_client_freep) HttpClient *http = NULL;
        _cleanup_(credentials_provider_freep) CredentialsProvider *p = NULL;
        _cleanup_free_ char *error = NULL;
        CredentialsOptions o = { .profile = NULL };
        double watch = 0;
        sd_event *event = NULL;
        int opt, r;

        while ((opt = getopt_long(argc, argv, "", options, NULL)) >= 0) {
                switch (opt) {
                case 'p': o.profile = optarg; break;
                case 'f': o.shared_file = optarg; break;
                case 'w': watch = strtod(optarg, NULL); break;
                case 'r': o.refresh_retry = (usec_t) (strtod(optarg, NULL) * (double) USEC_PER_SEC); break;
                default: return 2;
                }
        }

        r = sd_event_new(&event);
        if (r < 0)
                return 1;
        r = http_client_new(event, NULL, &http);
        if (r < 0) {
                sd_event_unref(event);
                return 1;
        }

        r = credentials_provider_new(http, &o, &p, &error);
        if (r < 0) {
                printf("error=%s message=%s\n", errname(r), error ?: "");
                sd_event_unref(event);
                return 1;
        }
        print_creds(p);

        if (watch > 0) {
                credentials_provider_set_refresh_callback(p, on_refresh, NULL);
                r = sd_event_add_time_relative(event, NULL, CLOCK_MONOTONIC, (usec_t) (watch * (double) USEC_PER_SEC),
                                               0, on_deadline, NULL);
                if (r >= 0)
                        r = sd_event_loop(event);
        }
        p = credentials_provider_free(p);
        http = http_client_free(http);
        sd_event_unref(event);
        return r < 0 ? 1 : 0;
}

static int read_all(const char *path, Secret **ret) {
        FILE *f = fopen(path, "re");
        Secret *s = secret_new(0);
        char buf[4096];
        size_t n;
        int r = 0;

        if (!f || !s) {
                if (f)
                        fclose(f);
                secret_free(s);
                return -errno;
        }
        while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
                r = secret_append(&s, buf, n, 0);
                if (r < 0)
                        break;
        }
        fclose(f);
        if (r < 0) {
                secret_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

static int cmd_ini_get(int argc, char **argv) {
        _cleanup_secret_ Secret *text = NULL;
        IniFlags flags = 0;
        int i = 1, r;

        if (i < argc && streq(argv[i], "--config")) {
                flags |= INI_CONFIG_PROFILE;
                i++;
        }
        if (argc - i < 3 || (argc - i - 1) % 2 != 0)
                return 2;
        r = read_all(argv[i], &text);
        if (r < 0) {
                fprintf(stderr, "error %s\n", errname(r));
                return 1;
        }
        for (i++; i + 1 < argc; i += 2) {
                _cleanup_secret_ Secret *v = NULL;

                r = ini_get_full(text->data, text->len, argv[i], flags, argv[i + 1], &v);
                if (r < 0)
                        printf("error %s\n", errname(r));
                else
                        printf("ok %s\n", v->data);
        }
        return 0;
}

static int cmd_ini_merge(int argc, char **argv) {
        _cleanup_secret_ Secret *text = NULL, *out = NULL;
        _cleanup_free_ IniAssignment *set = NULL;
        _cleanup_free_ const char **remove = NULL;
        size_t n_set = 0, n_remove = 0;
        IniFlags flags = 0;
        int i = 1, r;

        if (i < argc && streq(argv[i], "--config")) {
                flags |= INI_CONFIG_PROFILE;
                i++;
        }
        if (argc - i < 2)
                return 2;
        set = calloc((size_t) argc, sizeof *set);
        remove = calloc((size_t) argc, sizeof *remove);
        if (!set || !remove)
                return 1;
        for (int k = i + 2; k < argc; k++) {
                if (streq(argv[k], "--set") && k + 1 < argc) {
                        char *eq = strchr(argv[++k], '=');

                        if (!eq)
                                return 2;
                        *eq = 0;
                        set[n_set++] = (IniAssignment){ argv[k], eq + 1 };
                } else if (streq(argv[k], "--remove") && k + 1 < argc)
                        remove[n_remove++] = argv[++k];
                else
                        return 2;
        }
        r = read_all(argv[i], &text);
        if (r >= 0)
                r = ini_merge_full(text->data, text->len, argv[i + 1], flags, set, n_set, remove, &out);
        if (r < 0) {
                fprintf(stderr, "error %s\n", errname(r));
                return 1;
        }
        fwrite(out->data, 1, out->len, stdout);
        return 0;
}

static int batch_line(char *line) {
        _cleanup_secret_ Secret *text = NULL, *out = NULL;
        IniAssignment set[16];
        const char *remove[17] = {}, *f[24];
        size_t n = 0, n_set = 0, n_remove = 0;
        IniFlags flags = 0;
        char *save = NULL;
        int r;

        for (char *t = strtok_r(line, "\t", &save); t && n < ELEMENTSOF(f); t = strtok_r(NULL, "\t", &save))
                f[n++] = t;
        if (n >= 4 && streq(f[0], "get")) {
                if (n > 4 && streq(f[4], "config"))
                        flags |= INI_CONFIG_PROFILE;
                r = read_all(f[1], &text);
                if (r >= 0)
                        r = ini_get_full(text->data, text->len, f[2], flags, f[3], &out);
                if (r < 0)
                        printf("error %s\n", errname(r));
                else
                        printf("ok %s\n", out->data);
                return 0;
        }
        if (n >= 4 && streq(f[0], "merge")) {
                FILE *o;

                for (size_t i = 4; i < n; i++) {
                        if (startswith(f[i], "set=") && n_set < ELEMENTSOF(set) && strchr(f[i] + 4, '=')) {
                                char *eq = strchr(f[i] + 4, '=');

                                *eq = 0;
                                set[n_set++] = (IniAssignment){ f[i] + 4, eq + 1 };
                        } else if (startswith(f[i], "remove=") && n_remove + 1 < ELEMENTSOF(remove))
                                remove[n_remove++] = f[i] + 7;
                        else if (streq(f[i], "config"))
                                flags |= INI_CONFIG_PROFILE;
                        else
                                return -EINVAL;
                }
                r = read_all(f[1], &text);
                if (r >= 0)
                        r = ini_merge_full(text->data, text->len, f[3], flags, set, n_set, remove, &out);
                if (r < 0) {
                        printf("error %s\n", errname(r));
                        return 0;
                }
                o = fopen(f[2], "we");
                if (!o || fwrite(out->data, 1, out->len, o) != out->len) {
                        if (o)
                                fclose(o);
                        return -EIO;
                }
                if (fclose(o) != 0)
                        return -EIO;
                printf("ok\n");
                return 0;
        }
        return -EINVAL;
}

static int cmd_batch(void) {
        _cleanup_free_ char *line = NULL;
        size_t cap = 0;
        ssize_t l;

        while ((l = getline(&line, &cap, stdin)) > 0) {
                if (line[l - 1] == '\n')
                        line[l - 1] = 0;
                if (batch_line(line) < 0) {
                        fprintf(stderr, "bad batch line\n");
                        return 2;
                }
        }
        fflush(stdout);
        return 0;
}

int main(int argc, char **argv) {
        if (argc < 2) {
                fprintf(stderr, "usage: cred-tool resolve|ini-get|ini-merge ...\n");
                return 2;
        }
        if (secret_init() < 0)
                return 1;
        if (streq(argv[1], "resolve"))
                return cmd_resolve(argc - 1, argv + 1);
        if (streq(argv[1], "ini-get"))
                return cmd_ini_get(argc - 1, argv + 1);
        if (streq(argv[1], "ini-merge"))
                return cmd_ini_merge(argc - 1, argv + 1);
        if (streq(argv[1], "batch"))
                return cmd_batch();
        fprintf(stderr, "unknown command %s\n", argv[1]);
        return 2;
}

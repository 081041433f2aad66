/* SPDX-License-Identifier: MIT */
/*
 * keyrotctl — the operator's client. This version implements the commands
 * that work on the store and inventory directly (init-store, adopt, get);
 * the socket commands arrive with the daemon.
 *
 * Exit codes (DESIGN.md §2): 0 success, 1 failure, 2 bad usage or
 * configuration, 3 cannot reach the daemon.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "config.h"
#include "fileio.h"
#include "iam.h"
#include "ini.h"
#include "runtime.h"
#include "rotation.h"
#include "s3.h"

#define EXIT_FAILED 1
#define EXIT_USAGE 2
#define EXIT_NO_DAEMON 3

static struct {
        const char *config;
        const char *state_dir;
        const char *socket;
        const char *key_file;
        const char *from_credentials;
        const char *profile;
        const char *format;
} arg = {
        .config = KEYROTD_DEFAULT_CONFIG,
        .state_dir = KEYROTD_DEFAULT_STATE_DIR,
        .socket = KEYROTD_DEFAULT_SOCKET,
        .profile = "default",
        .format = "credentials",
};

static void help(void) {
        printf("Usage: keyrotctl [OPTIONS] COMMAND [ARGS]\n"
               "Client of keyrotd, the AWS access key rotation daemon.\n\n"
               "Commands:\n"
               "  init-store [--key-file FILE]          create the store's 32-byte master key (0600)\n"
               "  adopt USER --from-credentials FILE [--profile NAME]\n"
               "                                        hand an existing key of USER to keyrotd\n"
               "  get USER [--format credentials|env|json]\n"
               "                                        print USER's current key (json: credential_process)\n"
               "  rollback USER                         within grace: re-activate the old key, restore targets\n\n"
               "Options:\n"
               "  -c, --config FILE      inventory (default %s)\n"
               "  -s, --state-dir DIR    state directory (default %s)\n"
               "      --socket PATH      control socket (default %s)\n"
               "  -h, --help             show this help\n"
               "      --version          show the version\n\n"
               "Exit status: 0 success, 1 failure, 2 bad usage or configuration, 3 no daemon.\n"
               "See keyrotctl(1).\n",
               KEYROTD_DEFAULT_CONFIG, KEYROTD_DEFAULT_STATE_DIR, KEYROTD_DEFAULT_SOCKET);
}

static void harden_process(void) {
        struct rlimit no_core = { 0, 0 };

        umask(0077);
        (void) setrlimit(RLIMIT_CORE, &no_core);
        (void) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

/* Write straight from secure memory: stdio would copy the secret into its
 * own heap buffer. */
static int write_secret(const Secret *s) {
        size_t done = 0;

        while (done < s->len) {
                ssize_t n = write(STDOUT_FILENO, s->data + done, s->len - done);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                done += (size_t) n;
        }
        return 0;
}

static int fail_with(Runtime *rt, int r, int code) {
        fprintf(stderr, "keyrotctl: %s\n", rt->error ?: strerror(-r));
        return code;
}

/* The inventory is optional for commands that only need the store. */
static int load_inventory_optional(Runtime *rt) {
        if (access(rt->config_path, F_OK) < 0 && errno == ENOENT && streq(rt->config_path, KEYROTD_DEFAULT_CONFIG))
                return 0;
        int r = runtime_load_inventory(rt);
        if (r < 0) {
                for (size_t i = 0; i < rt->inv_errors.n; i++)
                        fprintf(stderr, "%s\n", rt->inv_errors.lines[i]);
                if (rt->inv_errors.n == 0)
                        fprintf(stderr, "keyrotctl: %s\n", rt->error ?: strerror(-r));
        }
        return r;
}

static int cmd_init_store(Runtime *rt) {
        _cleanup_free_ char *path = NULL;
        int r;

        if (arg.key_file)
                path = strdup(arg.key_file);
        else {
                r = load_inventory_optional(rt);
                if (r < 0)
                        return EXIT_USAGE;
                if (rt->inv)
                        r = inventory_store_key_path(rt->inv, &path);
                else
                        path = strdup(INVENTORY_DEFAULT_KEY_FILE);
        }
        if (!path)
                return EXIT_FAILED;
        r = store_key_generate(path);
        if (r == -EEXIST) {
                fprintf(stderr, "keyrotctl: %s already exists; refusing to overwrite a master key\n", path);
                return EXIT_FAILED;
        }
        if (r < 0) {
                fprintf(stderr, "keyrotctl: cannot create %s: %s\n", path, strerror(-r));
                return EXIT_FAILED;
        }
        printf("created %s (32 random bytes, mode 0600)\n", path);
        return 0;
}

static int cmd_get(Runtime *rt, const char *user) {
        _cleanup_secret_ Secret *out = NULL;
        const StoreUser *su;
        int r;

        if (!streq(arg.format, "credentials") && !streq(arg.format, "env") && !streq(arg.format, "json")) {
                fprintf(stderr, "keyrotctl: --format must be credentials, env or json\n");
                return EXIT_USAGE;
        }
        if (load_inventory_optional(rt) < 0)
                return EXIT_USAGE;
        r = runtime_open_store(rt);
        if (r < 0)
                return fail_with(rt, r, EXIT_FAILED);
        su = store_get_user(rt->store, user);
        if (!su || !store_key_is_set(&su->current) || !su->current.secret) {
                fprintf(stderr, "keyrotctl: the store holds no key for %s\n", user);
                return EXIT_FAILED;
        }

        const char *id = su->current.access_key_id;
        const Secret *sec = su->current.secret;
        const char *parts[3][5] = {
                { "[default]\naws_access_key_id = ", id, "\naws_secret_access_key = ", NULL, "\n" },
                { "AWS_ACCESS_KEY_ID=", id, "\nAWS_SECRET_ACCESS_KEY=", NULL, "\n" },
                { "{\"Version\":1,\"AccessKeyId\":\"", id, "\",\"SecretAccessKey\":\"", NULL, "\"}\n" },
        };
        int f = streq(arg.format, "credentials") ? 0 : streq(arg.format, "env") ? 1 : 2;

        out = secret_new(0);
        if (!out)
                return EXIT_FAILED;
        for (int i = 0; i < 5 && r >= 0; i++)
                r = parts[f][i] ? secret_append(&out, parts[f][i], strlen(parts[f][i]), 0)
                                : secret_append(&out, sec->data, sec->len, 0);
        if (r < 0 || write_secret(out) < 0)
                return EXIT_FAILED;
        return 0;
}

static int cmd_adopt(Runtime *rt, const char *user) {
        _cleanup_secret_ Secret *file = NULL, *id = NULL, *secret = NULL;
        _cleanup_(aws_credentials_unrefp) AwsCredentials *creds = NULL;
        _cleanup_free_ char *err = NULL;
        const InventoryUser *iu;
        StoreUser *su;
        AwsSync s = {};
        const AccessKeyMeta *meta = NULL;
        int r;

        if (!arg.from_credentials) {
                fprintf(stderr, "keyrotctl: adopt needs --from-credentials FILE\n");
                return EXIT_USAGE;
        }
        if (runtime_load_inventory(rt) < 0) {
                for (size_t i = 0; i < rt->inv_errors.n; i++)
                        fprintf(stderr, "%s\n", rt->inv_errors.lines[i]);
                return fail_with(rt, -EINVAL, EXIT_USAGE);
        }
        iu = inventory_find_user(rt->inv, user);
        if (!iu) {
                fprintf(stderr, "keyrotctl: %s is not in the inventory %s\n", user, rt->config_path);
                return EXIT_USAGE;
        }

        r = read_file_secure(AT_FDCWD, arg.from_credentials, 1024 * 1024, 0, &file, &err);
        if (r < 0) {
                fprintf(stderr, "keyrotctl: %s\n", err ?: strerror(-r));
                return EXIT_FAILED;
        }
        if (ini_get(file->data, file->len, arg.profile, "aws_access_key_id", &id) < 0 ||
            ini_get(file->data, file->len, arg.profile, "aws_secret_access_key", &secret) < 0) {
                fprintf(stderr, "keyrotctl: %s has no complete profile [%s]\n", arg.from_credentials, arg.profile);
                return EXIT_FAILED;
        }
        if (id->len == 0 || id->len > STORE_ACCESS_KEY_ID_MAX || secret->len == 0) {
                fprintf(stderr, "keyrotctl: %s: profile [%s] has an empty or oversized key\n", arg.from_credentials,
                        arg.profile);
                return EXIT_FAILED;
        }

        r = runtime_lock(rt, false);
        if (r == -EBUSY) {
                fprintf(stderr, "keyrotctl: keyrotd is running on %s; stop it to adopt (socket adopt comes with the daemon)\n",
                        rt->state_dir);
                return EXIT_FAILED;
        }
        if (r >= 0)
                r = runtime_open_store(rt);
        if (r >= 0)
                r = runtime_open_aws(rt);
        if (r < 0)
                return fail_with(rt, r, EXIT_FAILED);

        /* The key must be USER's own, and Active. */
        r = iam_list_access_keys(rt->aws, NULL, user, aws_sync_cb, &s, NULL);
        if (r >= 0)
                r = aws_sync_wait(rt->aws, &s);
        if (r < 0 || s.result.error < 0) {
                fprintf(stderr, "keyrotctl: cannot list the keys of %s: %s\n", user,
                        r < 0 ? strerror(-r) : aws_result_error_code(&s.result));
                aws_result_done(&s.result);
                return EXIT_FAILED;
        }
        for (size_t i = 0; i < s.result.list_keys.n_keys; i++)
                if (streq(s.result.list_keys.keys[i].access_key_id, id->data))
                        meta = &s.result.list_keys.keys[i];
        if (!meta || meta->status != KEY_STATUS_ACTIVE) {
                fprintf(stderr, "keyrotctl: %s is not an Active key of IAM user %s\n", id->data, user);
                aws_result_done(&s.result);
                return EXIT_FAILED;
        }
        int64_t created = meta->create_date * (int64_t) USEC_PER_SEC;
        aws_result_done(&s.result);

        /* And it must work for what the application does. */
        r = aws_credentials_new(id->data, secret->data, secret->len, NULL, 0, "adopt", &creds);
        if (r < 0)
                return EXIT_FAILED;
        S3Options o = { .creds = creds, .bucket = iu->verify.bucket, .key = iu->verify.check_key };
        AwsSync v = {};
        switch (iu->verify.check) {
        case VERIFY_CHECK_HEAD: r = s3_head(rt->aws, &o, aws_sync_cb, &v, NULL); break;
        case VERIFY_CHECK_GET: r = s3_get_object(rt->aws, &o, aws_sync_cb, &v, NULL); break;
        case VERIFY_CHECK_PUT: r = s3_put_object(rt->aws, &o, "keyrotd adopt\n", 14, aws_sync_cb, &v, NULL); break;
        default: r = s3_list_objects(rt->aws, &o, 1, aws_sync_cb, &v, NULL); break;
        }
        if (r >= 0)
                r = aws_sync_wait(rt->aws, &v);
        if (r < 0 || v.result.error < 0) {
                fprintf(stderr, "keyrotctl: the key does not pass the '%s' check on bucket %s: %s\n",
                        verify_check_to_string(iu->verify.check), iu->verify.bucket,
                        r < 0 ? strerror(-r) : aws_result_error_code(&v.result));
                aws_result_done(&v.result);
                return EXIT_FAILED;
        }
        aws_result_done(&v.result);

        su = store_get_user(rt->store, user);
        if (su && su->phase != STORE_PHASE_IDLE) {
                fprintf(stderr, "keyrotctl: a rotation of %s is in progress (%s); run keyrotd --once to finish it\n",
                        user, store_phase_to_string(su->phase));
                return EXIT_FAILED;
        }
        if (su && store_key_is_set(&su->current) && !streq(su->current.access_key_id, id->data)) {
                fprintf(stderr, "keyrotctl: keyrotd already holds %s for %s; refusing to replace it\n",
                        su->current.access_key_id, user);
                return EXIT_FAILED;
        }
        if (!su && (r = store_add_user(rt->store, user, &su)) < 0)
                return EXIT_FAILED;
        r = store_key_set(&su->current, id->data, secret->data, secret->len, created);
        if (r >= 0)
                r = store_commit(rt->store);
        if (r < 0) {
                fprintf(stderr, "keyrotctl: cannot seal the key into %s: %s\n", rt->store_path, strerror(-r));
                return EXIT_FAILED;
        }
        AuditRecord rec = { .event = AUDIT_KEY_ADOPTED, .user = user, .new_key_id = id->data, .trigger = "manual",
                            .result = "ok", .message = "existing key handed to keyrotd" };
        audit_emit(&rec);
        printf("adopted %s as the current key of %s\n", id->data, user);
        return 0;
}

static void rollback_done(const RotationReport *rep, void *userdata) {
        int *ret = userdata;

        if (rep->outcome == ROTATION_COMPLETED) {
                printf("rolled back %s: %s is current again, %s deleted\n", rep->user, rep->old_key_id,
                       rep->new_key_id);
                *ret = 0;
        } else {
                fprintf(stderr, "keyrotctl: rollback of %s failed: %s\n", rep->user, rep->error ?: "unknown error");
                *ret = EXIT_FAILED;
        }
}

static int cmd_rollback(Runtime *rt, const char *user) {
        _cleanup_(rotation_engine_freep) RotationEngine *engine = NULL;
        sigset_t mask;
        int r, ret = EXIT_FAILED;

        if (runtime_load_inventory(rt) < 0) {
                for (size_t i = 0; i < rt->inv_errors.n; i++)
                        fprintf(stderr, "%s\n", rt->inv_errors.lines[i]);
                return fail_with(rt, -EINVAL, EXIT_USAGE);
        }
        if (!inventory_find_user(rt->inv, user)) {
                fprintf(stderr, "keyrotctl: %s is not in the inventory %s\n", user, rt->config_path);
                return EXIT_USAGE;
        }
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigprocmask(SIG_BLOCK, &mask, NULL);

        r = runtime_lock(rt, false);
        if (r == -EBUSY) {
                fprintf(stderr, "keyrotctl: keyrotd is running on %s; stop it to roll back (socket rollback comes with the daemon)\n",
                        rt->state_dir);
                return EXIT_FAILED;
        }
        if (r >= 0)
                r = runtime_open_store(rt);
        if (r >= 0)
                r = runtime_open_aws(rt);
        if (r >= 0)
                r = rotation_engine_new(rt->event, rt->aws, rt->store, rt->inv, &engine);
        if (r < 0)
                return fail_with(rt, r, EXIT_FAILED);
        r = rotation_engine_submit(engine, user, TRIGGER_MANUAL, ROTATION_ROLLBACK, rollback_done, &ret);
        if (r < 0)
                return EXIT_FAILED;
        while (rotation_engine_busy(engine) > 0)
                if (sd_event_run(rt->event, UINT64_MAX) < 0)
                        return EXIT_FAILED;
        return ret;
}

int main(int argc, char **argv) {
        enum { ARG_SOCKET = 0x100, ARG_KEY_FILE, ARG_FROM, ARG_PROFILE, ARG_FORMAT, ARG_VERSION };
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "state-dir", required_argument, NULL, 's' },
                { "socket", required_argument, NULL, ARG_SOCKET },
                { "key-file", required_argument, NULL, ARG_KEY_FILE },
                { "from-credentials", required_argument, NULL, ARG_FROM },
                { "profile", required_argument, NULL, ARG_PROFILE },
                { "format", required_argument, NULL, ARG_FORMAT },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        Runtime rt = RUNTIME_INIT;
        const char *cmd;
        int c, ret;

        /* Options may follow the command (keyrotctl get USER --format json). */
        while ((c = getopt_long(argc, argv, "c:s:h", options, NULL)) >= 0) {
                switch (c) {
                case 'c': arg.config = optarg; break;
                case 's': arg.state_dir = optarg; break;
                case ARG_SOCKET: arg.socket = optarg; break;
                case ARG_KEY_FILE: arg.key_file = optarg; break;
                case ARG_FROM: arg.from_credentials = optarg; break;
                case ARG_PROFILE: arg.profile = optarg; break;
                case ARG_FORMAT: arg.format = optarg; break;
                case 'h': help(); return 0;
                case ARG_VERSION: printf("keyrotctl %s\n", PACKAGE_VERSION); return 0;
                default: return EXIT_USAGE;
                }
        }
        if (optind >= argc) {
                help();
                return EXIT_USAGE;
        }
        harden_process();
        rt.config_path = arg.config;
        rt.state_dir = arg.state_dir;
        cmd = argv[optind];
        int nargs = argc - optind - 1;

        if (streq(cmd, "init-store") && nargs == 0)
                ret = cmd_init_store(&rt);
        else if (streq(cmd, "get") && nargs == 1)
                ret = cmd_get(&rt, argv[optind + 1]);
        else if (streq(cmd, "adopt") && nargs == 1)
                ret = cmd_adopt(&rt, argv[optind + 1]);
        else if (streq(cmd, "rollback") && nargs == 1)
                ret = cmd_rollback(&rt, argv[optind + 1]);
        else if (streq(cmd, "status") || streq(cmd, "rotate") || streq(cmd, "reload") ||
                 streq(cmd, "provision") || streq(cmd, "audit")) {
                fprintf(stderr, "keyrotctl: '%s' is not implemented yet\n", cmd);
                ret = EXIT_USAGE;
        } else {
                fprintf(stderr, "keyrotctl: unknown command or wrong arguments: %s (see --help)\n", cmd);
                ret = EXIT_USAGE;
        }
        runtime_done(&rt);
        return ret;
}

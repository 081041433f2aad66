/* SPDX-License-Identifier: MIT */
/*
 * keyrotctl — the operator's client. init-store and adopt work on the
 * store and inventory directly; status, rotate and reload talk to the
 * daemon over its control socket (protocol in control.h); rollback goes
 * through the socket while a daemon holds the state lock, and works
 * directly otherwise; get asks the daemon (control socket, else the
 * credentials socket) and reads the store only when no daemon answers.
 *
 * Exit codes (docs/DESIGN.md §2): 0 success, 1 failure, 2 bad usage or
 * configuration, 3 cannot reach the daemon.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit.h"
#include "aws/iam.h"
#include "aws/names.h"
#include "aws/s3.h"
#include "basic/duration.h"
#include "basic/fileio.h"
#include "basic/ini.h"
#include "basic/json-util.h"
#include "basic/json-secret.h"
#include "basic/log.h"
#include "basic/path.h"
#include "basic/process.h"
#include "basic/sanitize.h"
#include "config.h"
#include "ctl/client.h"
#include "ctl/provision.h"
#include "ctl/review-cmd.h"
#include "daemon/control.h"
#include "daemon/keycheck.h"
#include "rotation/rotation.h"
#include "rotation/verify.h"
#include "runtime.h"
#include "targets/targets.h"

#define EXIT_FAILED 1
#define EXIT_USAGE 2
#define EXIT_NO_DAEMON 3
/* adopt: the key is in use already, so it either works now or does not. */
#define ADOPT_VERIFY_TIMEOUT (10 * USEC_PER_SEC)

static struct {
        const char *config;
        const char *state_dir;
        const char *socket;
        const char *credentials_socket; /* NULL: credentials.sock beside the control socket */
        const char *key_file;
        const char *from_credentials;
        const char *profile;
        const char *format;
        const char *prefix;
        char *buckets[64];
        size_t n_buckets;
        bool json, all, wait, read_only, print_policy, take_over, replace_lost;
        bool all_users;
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
               "  status [--json]                       the daemon's view of every user\n"
               "  rotate (USER... | --all) [--wait] [--json]\n"
               "                                        rotate now; --wait: until done, exit 1 if one failed\n"
               "  rotate USER --replace-lost            replace USER's key whose secret keyrotd does not hold\n"
               "                                        (lost store); the lost key goes once the new one works\n"
               "  reload                                make the daemon re-read its inventory\n"
               "  init-store [--key-file FILE]          create the store's 32-byte master key (0600)\n"
               "  adopt USER --from-credentials FILE [--profile NAME]\n"
               "                                        hand an existing key of USER to keyrotd\n"
               "  get USER [--format credentials|env|json]\n"
               "                                        print USER's current key (json: credential_process,\n"
               "                                        with an Expiration when the daemon answers)\n"
               "  rollback USER                         within grace: re-activate the old key, restore targets\n"
               "                                        (through the daemon when one holds the state lock)\n"
               "  provision USER --bucket NAME... [--read-only] [--prefix P] [--print-policy] [--take-over]\n"
               "                                        create an S3-only IAM user, its policy and first key\n"
               "  audit [--json] [--all-users]          check the policies and keys of every inventory user\n"
               "                                        (--all-users: every IAM user); exit 1 with findings\n\n"
               "Options:\n"
               "  -c, --config FILE      inventory (default %s)\n"
               "  -s, --state-dir DIR    state directory (default %s)\n"
               "      --socket PATH      control socket (default %s)\n"
               "      --credentials-socket PATH\n"
               "                         get as a reader (default: credentials.sock beside --socket)\n"
               "      --json             print the daemon's answers as JSON, one object per line\n"
               "  -h, --help             show this help\n"
               "      --version          show the version\n\n"
               "Exit status: 0 success, 1 failure, 2 bad usage or configuration, 3 no daemon.\n"
               "See keyrotctl(1).\n",
               KEYROTD_DEFAULT_CONFIG, KEYROTD_DEFAULT_STATE_DIR, KEYROTD_DEFAULT_SOCKET);
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
        log_error("%s", rt->error ?: strerror(-r));
        return code;
}

/* The inventory is optional for commands that only need the store. */
static int load_inventory_optional(Runtime *rt) {
        if (access(rt->config_path, F_OK) < 0 && errno == ENOENT && streq(rt->config_path, KEYROTD_DEFAULT_CONFIG))
                return 0;
        int r = runtime_load_inventory(rt);
        if (r < 0)
                runtime_print_inventory_errors(rt);
        return r;
}

static int cmd_init_store(Runtime *rt, char **args, unsigned n) {
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
                log_error("%s already exists; refusing to overwrite a master key", path);
                return EXIT_FAILED;
        }
        if (r < 0) {
                log_error("cannot create %s: %s", path, strerror(-r));
                return EXIT_FAILED;
        }
        printf("created %s (32 random bytes, mode 0600)\n", path);
        return 0;
}

/* ListAccessKeys of @user as keyrotd's own identity, waited for: 0 or
 * < 0 (then aws_result_error_code() says why). s->result is the caller's
 * to aws_result_done() either way. */
static int list_keys_now(Runtime *rt, const char *user, AwsSync *s) {
        int r = iam_list_access_keys(rt->aws, NULL, user, aws_sync_cb, s, NULL);

        if (r >= 0)
                r = aws_sync_wait(rt->aws, s);
        if (r < 0)
                s->result.error = r;
        return s->result.error;
}

/*
 * get hands out only a key IAM lists as Active: a store restored from an
 * older copy holds keys later rotations deleted, and an SDK given one
 * fails in ways nobody connects with keyrotd. One ListAccessKeys, with
 * keyrotd's own identity, before the secret is touched; when IAM cannot be
 * asked, nothing is printed either. 0 or an exit code.
 */
static int check_key_in_iam(Runtime *rt, const char *user, const char *key_id) {
        char msg[KEYCHECK_REASON_MAX];
        const AccessKeyMeta *meta;
        AwsSync s = {};
        int r;

        r = runtime_open_aws(rt);
        if (r < 0)
                return fail_with(rt, r, EXIT_FAILED);
        if (list_keys_now(rt, user, &s) < 0) {
                log_error("cannot ask IAM whether %s is still an Active key of %s (%s); not printing it", key_id,
                          user, aws_result_error_code(&s.result));
                aws_result_done(&s.result);
                return EXIT_FAILED;
        }
        meta = list_access_keys_find(&s.result.list_keys, key_id);
        if (!meta || meta->status != KEY_STATUS_ACTIVE) {
                keycheck_explain(user, key_id, meta, msg, sizeof(msg));
                log_error("%s", msg);
                aws_result_done(&s.result);
                return EXIT_FAILED;
        }
        aws_result_done(&s.result);
        return 0;
}

/* Print a key in --format: exactly what a target of that type holds
 * (one renderer for both), with the Expiration in json when there is one. */
static int print_key(const char *user, const char *key_id, const Secret *secret, const char *expiration) {
        _cleanup_secret_ Secret *out = NULL;
        _cleanup_free_ char *err = NULL;
        const TargetSpec spec = {
                .type = streq(arg.format, "credentials") ? TARGET_CREDENTIALS_FILE
                        : streq(arg.format, "env")       ? TARGET_ENV_FILE
                                                         : TARGET_JSON_FILE,
                .path = "-",
                .profile = INVENTORY_DEFAULT_PROFILE,
                .expiration = expiration,
        };
        int r;

        r = target_render(&spec, key_id, secret, &out, &err);
        if (r < 0) {
                if (err)
                        log_error("cannot print the key of %s: %s", user, err);
                else
                        log_error_errno(r, "cannot print the key of %s: %m", user);
                return EXIT_FAILED;
        }
        if (write_secret(out) < 0)
                return EXIT_FAILED;
        return 0;
}

/* Without a daemon: the store, read here (root or keyrotd's user only). */
static int get_from_store(Runtime *rt, const char *user) {
        const StoreUser *su;
        int r;

        if (load_inventory_optional(rt) < 0)
                return EXIT_USAGE;
        r = runtime_open_store(rt);
        if (r < 0)
                return fail_with(rt, r, EXIT_FAILED);
        su = store_get_user(rt->store, user);
        if (!su || !store_key_is_set(&su->current) || !su->current.secret) {
                log_error("the store holds no key for %s", user);
                return EXIT_FAILED;
        }
        r = check_key_in_iam(rt, user, su->current.access_key_id);
        if (r != 0)
                return r;
        return print_key(user, su->current.access_key_id, su->current.secret, NULL);
}

#define GET_NO_DAEMON (-1)

static json_object *request_new(const char *cmd);

/*
 * One get on the socket at @path: EXIT_* once a daemon answered (the key
 * printed, or its refusal told), GET_NO_DAEMON when none answered there;
 * *ret_refused: the control socket let us in but not past the door (not
 * root, not in group keyrotd), so the credentials socket may still answer.
 */
static int get_via_socket(const char *path, const char *user, bool *ret_refused) {
        _cleanup_(json_object_putp) json_object *req = NULL;
        _cleanup_secret_ Secret *line = NULL;
        _cleanup_close_ int fd = -1;
        JsonSecretField f[] = {
                { "AccessKeyId", NULL },
                { "SecretAccessKey", NULL },
                { "Expiration", NULL },
                { "error", NULL },
        };
        char msg[512];
        int r, ret;

        *ret_refused = false;
        r = ctl_connect(path, &fd);
        if (r < 0) {
                log_debug("cannot reach keyrotd at %s: %s", path, strerror(-r));
                *ret_refused = r == -EACCES;
                return GET_NO_DAEMON;
        }
        req = request_new("get");
        if (!req || json_object_object_add(req, "user", json_object_new_string(user)) < 0) {
                log_oom();
                return EXIT_FAILED;
        }
        r = ctl_call_secret(fd, req, CTL_TIMEOUT_DEFAULT, &line);
        if (r < 0) {
                log_error("asking keyrotd at %s for the key of %s: %s", path, user, strerror(-r));
                return EXIT_FAILED;
        }
        if (json_secret_parse(line->data, line->len, f, ELEMENTSOF(f)) < 0) {
                log_error("keyrotd at %s answered get with something that is not its answer", path);
                return EXIT_FAILED;
        }
        if (f[0].value && f[1].value && f[2].value)
                ret = print_key(user, f[0].value->data, f[1].value, f[2].value->data);
        else {
                sanitize_text(f[3].value ? f[3].value->data : "no key in the answer", msg, sizeof msg);
                /* The control socket's door: try the credentials socket. */
                if (startswith(msg, "permission denied: uid") && strstr(msg, "neither root nor in group")) {
                        *ret_refused = true;
                        ret = GET_NO_DAEMON;
                } else {
                        log_error("keyrotd: %s", msg);
                        ret = EXIT_FAILED;
                }
        }
        json_secret_fields_clear(f, ELEMENTSOF(f));
        return ret;
}

/*
 * The daemon first, with an Expiration: its control socket (root and
 * group keyrotd), else its credentials socket (the user's readers). Only
 * when no daemon answers on either, the store.
 */
static int cmd_get(Runtime *rt, char **args, unsigned n) {
        const char *user = args[0];
        _cleanup_free_ char *credentials_socket = NULL;
        bool refused_control, refused_credentials;
        int r;

        if (!streq(arg.format, "credentials") && !streq(arg.format, "env") && !streq(arg.format, "json")) {
                log_error("--format must be credentials, env or json");
                return EXIT_USAGE;
        }
        if (!iam_user_name_valid(user)) {
                log_error("invalid IAM user name: %s", user);
                return EXIT_USAGE;
        }
        r = get_via_socket(arg.socket, user, &refused_control);
        if (r != GET_NO_DAEMON)
                return r;
        credentials_socket = arg.credentials_socket ? strdup(arg.credentials_socket)
                                                    : path_sibling(arg.socket, "credentials.sock");
        if (!credentials_socket) {
                log_oom();
                return EXIT_FAILED;
        }
        r = get_via_socket(credentials_socket, user, &refused_credentials);
        if (r != GET_NO_DAEMON)
                return r;
        /* A daemon runs, but not for us: the store is no closer. */
        if (refused_control && refused_credentials) {
                log_error("keyrotd does not let uid %u in at %s nor at %s", (unsigned) getuid(), arg.socket,
                          credentials_socket);
                return EXIT_FAILED;
        }
        return get_from_store(rt, user);
}

static int cmd_provision(Runtime *rt, char **args, unsigned n) {
        const char *user = args[0];
        ProvisionOptions o = {
                .user = user,
                .buckets = arg.buckets,
                .n_buckets = arg.n_buckets,
                .prefix = arg.prefix,
                .read_only = arg.read_only,
                .take_over = arg.take_over,
        };

        if (provision_check_options(&o) < 0)
                return EXIT_USAGE;
        if (arg.print_policy) {
                _cleanup_free_ char *doc = NULL;

                if (arg.take_over) {
                        log_error("--print-policy calls nothing; --take-over makes no sense with it");
                        return EXIT_USAGE;
                }
                if (provision_policy(&o, true, &doc) < 0)
                        return EXIT_FAILED;
                puts(doc);
                return 0;
        }
        return provision_run(rt, &o);
}

static int cmd_adopt(Runtime *rt, char **args, unsigned n) {
        const char *user = args[0];
        _cleanup_secret_ Secret *file = NULL, *id = NULL, *secret = NULL;
        _cleanup_(aws_credentials_unrefp) AwsCredentials *creds = NULL;
        _cleanup_free_ char *err = NULL;
        const InventoryUser *iu;
        StoreUser *su;
        AwsSync s = {};
        const AccessKeyMeta *meta = NULL;
        int r;

        if (!arg.from_credentials) {
                log_error("adopt needs --from-credentials FILE");
                return EXIT_USAGE;
        }
        if (runtime_load_inventory(rt) < 0) {
                runtime_print_inventory_errors(rt);
                return EXIT_USAGE;
        }
        iu = inventory_find_user(rt->inv, user);
        if (!iu) {
                log_error("%s is not in the inventory %s", user, rt->config_path);
                return EXIT_USAGE;
        }

        r = read_file_secure(AT_FDCWD, arg.from_credentials, 1024 * 1024, 0, &file, &err);
        if (r < 0) {
                log_error("%s", err ?: strerror(-r));
                return EXIT_FAILED;
        }
        if (ini_get(file->data, file->len, arg.profile, "aws_access_key_id", &id) < 0 ||
            ini_get(file->data, file->len, arg.profile, "aws_secret_access_key", &secret) < 0) {
                log_error("%s has no complete profile [%s]", arg.from_credentials, arg.profile);
                return EXIT_FAILED;
        }
        if (id->len == 0 || id->len > STORE_ACCESS_KEY_ID_MAX || secret->len == 0) {
                log_error("%s: profile [%s] has an empty or oversized key", arg.from_credentials,
                        arg.profile);
                return EXIT_FAILED;
        }

        r = runtime_lock(rt, false);
        if (r == -EBUSY) {
                log_error("keyrotd is running on %s; stop it to adopt (socket adopt comes with the daemon)",
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
        if (list_keys_now(rt, user, &s) < 0) {
                log_error("cannot list the keys of %s: %s", user, aws_result_error_code(&s.result));
                aws_result_done(&s.result);
                return EXIT_FAILED;
        }
        for (size_t i = 0; i < s.result.list_keys.n_keys; i++)
                if (streq(s.result.list_keys.keys[i].access_key_id, id->data))
                        meta = &s.result.list_keys.keys[i];
        if (!meta || meta->status != KEY_STATUS_ACTIVE) {
                log_error("%s is not an Active key of IAM user %s", id->data, user);
                aws_result_done(&s.result);
                return EXIT_FAILED;
        }
        int64_t created = meta->create_date * (int64_t) USEC_PER_SEC;
        aws_result_done(&s.result);

        /* And it must work for what the application does. It is in use
         * already: one check, and no wait for propagation. */
        r = aws_credentials_new(id->data, secret->data, secret->len, NULL, 0, "adopt", &creds);
        if (r < 0)
                return EXIT_FAILED;
        VerifyOptions vo = {
                .verify = &iu->verify,
                .user = user,
                .creds = creds,
                .consecutive = 1,
                .timeout = ADOPT_VERIFY_TIMEOUT,
                .no_probes = true,
        };
        VerifyResult res;
        r = verify_run(rt->aws, &vo, &res);
        if (r < 0 || res.outcome != VERIFY_OK) {
                log_error("%s", r < 0 ? strerror(-r) : res.message);
                return EXIT_FAILED;
        }

        su = store_get_user(rt->store, user);
        if (su && su->phase != STORE_PHASE_IDLE) {
                log_error("a rotation of %s is in progress (%s); run keyrotd --once to finish it",
                        user, store_phase_to_string(su->phase));
                return EXIT_FAILED;
        }
        if (su && store_key_is_set(&su->current) && !streq(su->current.access_key_id, id->data)) {
                log_error("keyrotd already holds %s for %s; refusing to replace it",
                        su->current.access_key_id, user);
                return EXIT_FAILED;
        }
        if (!su && (r = store_add_user(rt->store, user, &su)) < 0)
                return EXIT_FAILED;
        r = store_key_set(&su->current, id->data, secret->data, secret->len, created);
        if (r >= 0)
                r = store_commit(rt->store);
        if (r < 0) {
                log_error("cannot seal the key into %s: %s", rt->store_path, strerror(-r));
                audit_emit(&(AuditRecord) { .event = AUDIT_KEY_ADOPTED, .user = user, .new_key_id = id->data,
                                            .trigger = "manual", .result = "failed", .error = "StoreCommit",
                                            .message = "the key could not be sealed into the store",
                                            .failure = true });
                return EXIT_FAILED;
        }
        AuditRecord rec = { .event = AUDIT_KEY_ADOPTED, .user = user, .new_key_id = id->data, .trigger = "manual",
                            .result = "ok", .message = "existing key handed to keyrotd" };
        audit_emit(&rec);
        char shown[160];
        sanitize_text(id->data, shown, sizeof(shown)); /* from a file, even if IAM matched it */
        printf("adopted %s as the current key of %s\n", shown, user);
        return 0;
}

/* ------------------------------------------------------------------------
 * Commands through the daemon's control socket (framing and schemas in
 * control.h). --json prints every line the daemon sends, as it comes.
 */

static const char *json_str(json_object *o, const char *key) {
        json_object *v;

        if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

static bool json_int(json_object *o, const char *key, int64_t *ret) {
        json_object *v;

        if (!o || !json_object_object_get_ex(o, key, &v) ||
            !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
                return false;
        *ret = json_object_get_int64(v);
        return true;
}

static bool json_true(json_object *o, const char *key) {
        json_object *v;

        return o && json_object_object_get_ex(o, key, &v) && json_object_get_boolean(v);
}

static void print_json_line(json_object *o) {
        ctl_json_sanitize(o);
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        fflush(stdout);
}

static void print_daemon_error(const char *what, json_object *final) {
        char msg[1024];

        if (arg.json)
                return; /* the JSON on stdout says it */
        sanitize_text(json_str(final, "error") ?: "unknown error", msg, sizeof(msg));
        log_error("%s: %s", what, msg);
}

typedef struct Call {
        json_object *final;
        ctl_line_t on_event; /* stream lines */
        void *userdata;
} Call;

static int call_line(json_object *line, void *userdata) {
        Call *c = userdata;

        if (arg.json)
                print_json_line(line);
        if (json_object_object_get_ex(line, "ok", NULL)) {
                json_object_put(c->final);
                c->final = json_object_get(line);
                return 0;
        }
        return c->on_event ? c->on_event(line, c->userdata) : 0;
}

/*
 * One request on a connected @fd. Returns 0 (the daemon said ok), EXIT_FAILED
 * (it said no: *ret_final tells why) or the exit code of a broken call; the
 * caller owns *ret_final when set.
 */
static int daemon_call_fd(int fd, json_object *req, usec_t idle_timeout, ctl_line_t on_event, void *userdata,
                          json_object **ret_final) {
        Call c = { .on_event = on_event, .userdata = userdata };
        char d[DURATION_STRING_MAX];
        int r;

        *ret_final = NULL;
        r = ctl_call_full(fd, req, idle_timeout, call_line, &c);
        if (r < 0) {
                json_object_put(c.final);
                if (r == -ETIMEDOUT)
                        log_error("keyrotd at %s did not answer within %s", arg.socket,
                                format_duration(idle_timeout, d, sizeof(d)));
                else if (r == -ECONNRESET || r == -EPIPE)
                        log_error("lost the connection to keyrotd at %s", arg.socket);
                else {
                        log_error("talking to keyrotd at %s: %s", arg.socket, strerror(-r));
                        return EXIT_FAILED;
                }
                return EXIT_NO_DAEMON;
        }
        *ret_final = c.final;
        if (r == 0)
                return 0;
        /* Refused by SO_PEERCRED: as good as not reaching it. */
        if (startswith(json_str(c.final, "error") ?: "", "permission denied")) {
                print_daemon_error("keyrotd refused the request", c.final);
                return EXIT_NO_DAEMON;
        }
        return EXIT_FAILED;
}

static int daemon_call(json_object *req, usec_t idle_timeout, ctl_line_t on_event, void *userdata,
                       json_object **ret_final) {
        _cleanup_close_ int fd = -1;
        int r;

        *ret_final = NULL;
        r = ctl_connect(arg.socket, &fd);
        if (r < 0) {
                log_error("cannot reach keyrotd at %s: %s", arg.socket, strerror(-r));
                return EXIT_NO_DAEMON;
        }
        return daemon_call_fd(fd, req, idle_timeout, on_event, userdata, ret_final);
}

static json_object *request_new(const char *cmd) {
        json_object *o = json_object_new_object();

        if (o && json_object_object_add(o, "cmd", json_object_new_string(cmd)) < 0)
                o = (json_object_put(o), NULL);
        return o;
}

/* "3d 4h" for seconds; negative and absent values are the caller's. */
static const char *format_secs(int64_t sec, char *buf, size_t size) {
        return format_duration_approx((usec_t) (sec < 0 ? -sec : sec) * USEC_PER_SEC, 2, buf, size) ?: "?";
}

enum { COL_USER, COL_PHASE, COL_KEY, COL_AGE, COL_DUE, COL_ACTION, COL_LAST, COL_FAILURES, _COL_MAX };

static void print_status(json_object *st) {
        static const char *const head[_COL_MAX] = { "USER",   "PHASE", "KEY",  "AGE",
                                                    "NEXT DUE", "ACTION", "LAST", "FAILURES" };
        json_object *users = NULL;
        char version[64], d[DURATION_STRING_MAX];
        size_t n = 0, width[_COL_MAX];
        int64_t v;

        sanitize_text(json_str(st, "version") ?: "?", version, sizeof(version));
        if (json_int(st, "uptime_sec", &v))
                printf("keyrotd %s, up %s\n", version, v < 1 ? "<1s" : format_secs(v, d, sizeof(d)));
        else
                printf("keyrotd %s\n", version);
        if (json_object_object_get_ex(st, "users", &users) && json_object_is_type(users, json_type_array))
                n = json_object_array_length(users);
        if (n == 0) {
                printf("no users in the inventory\n");
                return;
        }

        /* Two passes: the widths, then the table. */
        for (size_t c = 0; c < _COL_MAX; c++)
                width[c] = strlen(head[c]);
        for (int pass = 0; pass < 2; pass++) {
                if (pass == 1) {
                        for (size_t c = 0; c < _COL_MAX; c++)
                                printf("%-*s%s", c + 1 < _COL_MAX ? (int) width[c] : 0, head[c],
                                       c + 1 < _COL_MAX ? "  " : "\n");
                }
                for (size_t i = 0; i < n; i++) {
                        json_object *u = json_object_array_get_idx(users, i);
                        char cell[_COL_MAX][160], err[1024];

                        sanitize_text(json_str(u, "name") ?: "?", cell[COL_USER], sizeof(cell[0]));
                        sanitize_text(json_true(u, "lost") ? "lost" : json_str(u, "phase") ?: "-", cell[COL_PHASE],
                                 sizeof(cell[0]));
                        if (json_true(u, "in_flight"))
                                strncat(cell[COL_PHASE], " (rotating)", sizeof(cell[0]) - strlen(cell[COL_PHASE]) - 1);
                        sanitize_text(json_str(u, "current_key_id") ?: "-", cell[COL_KEY], sizeof(cell[0]));
                        if (json_int(u, "key_age_sec", &v))
                                snprintf(cell[COL_AGE], sizeof(cell[0]), "%s", format_secs(v, d, sizeof(d)));
                        else
                                snprintf(cell[COL_AGE], sizeof(cell[0]), "-");
                        if (!json_int(u, "next_due_sec", &v))
                                snprintf(cell[COL_DUE], sizeof(cell[0]), "-");
                        else if (v == 0)
                                snprintf(cell[COL_DUE], sizeof(cell[0]), "now");
                        else
                                snprintf(cell[COL_DUE], sizeof(cell[0]), "%s %s", v < 0 ? "overdue" : "in",
                                         format_secs(v, d, sizeof(d)));
                        sanitize_text(json_str(u, "next_action") ?: "-", cell[COL_ACTION], sizeof(cell[0]));
                        sanitize_text(json_str(u, "last_result") ?: "-", cell[COL_LAST], sizeof(cell[0]));
                        if (json_int(u, "failures", &v))
                                snprintf(cell[COL_FAILURES], sizeof(cell[0]), "%lld", (long long) v);
                        else
                                snprintf(cell[COL_FAILURES], sizeof(cell[0]), "-");

                        if (pass == 0) {
                                for (size_t c = 0; c < _COL_MAX; c++)
                                        if (strlen(cell[c]) > width[c])
                                                width[c] = strlen(cell[c]);
                                continue;
                        }
                        for (size_t c = 0; c < _COL_MAX; c++)
                                printf("%-*s%s", c + 1 < _COL_MAX ? (int) width[c] : 0, cell[c],
                                       c + 1 < _COL_MAX ? "  " : "\n");
                        /* A lost user's reason names the command that fixes it. */
                        if (json_true(u, "lost")) {
                                sanitize_text(json_str(u, "next_reason") ?: "lost", err, sizeof(err));
                                printf("  lost: %s\n", err);
                        }
                        if (json_str(u, "draining_key_id")) {
                                int64_t warnings = 0, next = 0;

                                sanitize_text(json_str(u, "draining_key_id"), err, sizeof(err));
                                (void) json_int(u, "drain_warnings", &warnings);
                                (void) json_int(u, "drain_next_sec", &next);
                                printf("  draining: the old key %s stays Active while consumers use it "
                                       "(%lld warning%s); next look %s%s\n",
                                       err, (long long) warnings, warnings == 1 ? "" : "s", next > 0 ? "in " : "now",
                                       next > 0 ? format_secs(next, d, sizeof(d)) : "");
                        }
                        if (json_str(u, "last_error") && *json_str(u, "last_error")) {
                                sanitize_text(json_str(u, "last_error"), err, sizeof(err));
                                printf("  last error: %s\n", err);
                        }
                }
        }
}

static int cmd_status(Runtime *rt, char **args, unsigned n) {
        _cleanup_json_ json_object *req = request_new("status"), *final = NULL;
        int r;

        if (!req)
                return EXIT_FAILED;
        r = daemon_call(req, CTL_TIMEOUT_DEFAULT, NULL, NULL, &final);
        if (r == EXIT_FAILED && final)
                print_daemon_error("status", final);
        if (r == 0 && !arg.json)
                print_status(final);
        return r;
}

typedef struct RotateProgress {
        unsigned completed, not_due, failed, other;
} RotateProgress;

static int on_rotate_event(json_object *line, void *userdata) {
        RotateProgress *p = userdata;
        const char *event = json_str(line, "event") ?: "?", *outcome = json_str(line, "outcome") ?: "?";
        char user[80], msg[1024], a[160], b[160];

        sanitize_text(json_str(line, "user") ?: "-", user, sizeof(user));
        if (!streq(event, "rotation")) {
                /* Progress the daemon may add: shown as it comes. */
                sanitize_text(event, msg, sizeof(msg));
                if (!arg.json)
                        printf("%s: %s\n", user, msg);
                p->other++;
                goto out;
        }
        if (streq(outcome, "completed")) {
                const char *action = json_str(line, "action") ?: "rotated";

                p->completed++;
                sanitize_text(json_str(line, "old_key_id") ?: "", a, sizeof(a));
                sanitize_text(json_str(line, "new_key_id") ?: "", b, sizeof(b));
                if (!arg.json)
                        printf("%s: %s (%s -> %s)%s\n", user,
                               streq(action, "rotated")       ? "completed"
                               : streq(action, "rolled-back") ? "rolled back"
                                                              : "finished an earlier rotation",
                               *a ? a : "none", *b ? b : "none",
                               json_true(line, "draining") ? "; the old key stays Active while consumers use it" : "");
        } else if (streq(outcome, "not-due")) {
                p->not_due++;
                if (!arg.json)
                        printf("%s: nothing to do\n", user);
        } else {
                /* failed, or parked because keyrotd is stopping: not done either way. */
                p->failed++;
                sanitize_text(json_str(line, "error") ?: (streq(outcome, "parked") ? "keyrotd is stopping; it resumes on the next start"
                                                                          : "unknown error"),
                         msg, sizeof(msg));
                sanitize_text(outcome, a, sizeof(a));
                if (!arg.json)
                        printf("%s: %s: %s\n", user, a, msg);
        }
out:
        fflush(stdout);
        return 0;
}

static int cmd_rotate(Runtime *rt, char **users, unsigned n) {
        _cleanup_json_ json_object *req = request_new("rotate"), *final = NULL;
        RotateProgress p = {};
        int64_t failed = 0;
        int r;

        if (arg.all == (n > 0)) {
                log_error("rotate needs USER... or --all (not both)");
                return EXIT_USAGE;
        }
        if (!req)
                return EXIT_FAILED;
        if (arg.all)
                json_object_object_add(req, "all", json_object_new_boolean(true));
        else {
                json_object *a = json_object_new_array();

                json_object_object_add(req, "users", a);
                for (unsigned i = 0; i < n; i++) {
                        if (!iam_user_name_valid(users[i])) {
                                log_error("invalid IAM user name: %s", users[i]);
                                return EXIT_USAGE;
                        }
                        json_object_array_add(a, json_object_new_string(users[i]));
                }
        }
        if (arg.wait)
                json_object_object_add(req, "wait", json_object_new_boolean(true));

        /* A rotation verifies for up to verify.timeout without a word: with
         * --wait, wait as long as it takes (interrupting only stops watching). */
        r = daemon_call(req, arg.wait ? USEC_INFINITY : CTL_TIMEOUT_DEFAULT, on_rotate_event, &p, &final);
        if (r == EXIT_FAILED && final && !(arg.wait && json_int(final, "failed", &failed) && failed > 0))
                print_daemon_error("rotate", final);
        if (r != 0 && r != EXIT_FAILED)
                return r;
        if (!arg.wait) {
                if (r == 0 && json_object_object_get_ex(final, "queued", NULL) && !json_true(final, "queued")) {
                        log_error("keyrotd queued nothing");
                        return EXIT_FAILED;
                }
                if (r == 0 && !arg.json) {
                        json_object *lost = NULL;

                        printf("rotation of ");
                        for (unsigned i = 0; i < n; i++)
                                printf("%s%s", i ? ", " : "", users[i]);
                        printf("%s queued\n", arg.all ? "every user" : "");
                        /* --all passes over lost users: they need --replace-lost. */
                        if (json_object_object_get_ex(final, "lost", &lost) && json_object_is_type(lost, json_type_array))
                                for (size_t i = 0; i < json_object_array_length(lost); i++) {
                                        char u[160];

                                        sanitize_text(json_object_get_string(json_object_array_get_idx(lost, i)), u,
                                                 sizeof(u));
                                        log_warning("%s is lost, not rotated: see keyrotctl status", u);
                                }
                }
                return r;
        }
        (void) json_int(final, "failed", &failed);
        if (failed > (int64_t) p.failed)
                p.failed = (unsigned) failed;
        if (!arg.json) {
                if (p.completed + p.not_due + p.failed + p.other == 0 && r == 0)
                        printf("nothing to wait for: already queued or running\n");
                else
                        printf("%u completed, %u not due, %u failed\n", p.completed, p.not_due, p.failed);
        }
        return r != 0 || p.failed > 0 ? EXIT_FAILED : 0;
}

static int cmd_reload(Runtime *rt, char **args, unsigned n) {
        _cleanup_json_ json_object *req = request_new("reload"), *final = NULL;
        json_object *problems;
        char msg[1024];
        int r;

        if (!req)
                return EXIT_FAILED;
        r = daemon_call(req, CTL_TIMEOUT_DEFAULT, NULL, NULL, &final);
        if (r == EXIT_FAILED && final) {
                if (arg.json)
                        return EXIT_USAGE;
                /* Every problem when the daemon lists them, else its one line. */
                if (json_object_object_get_ex(final, "problems", &problems) &&
                    json_object_is_type(problems, json_type_array) && json_object_array_length(problems) > 0)
                        for (size_t i = 0; i < json_object_array_length(problems); i++) {
                                sanitize_text(json_object_get_string(json_object_array_get_idx(problems, i)), msg,
                                         sizeof(msg));
                                log_error("%s", msg);
                        }
                else
                        print_daemon_error("reload rejected", final);
                log_error("keyrotd keeps its current inventory");
                /* A rejected inventory is bad configuration. */
                return EXIT_USAGE;
        }
        if (r == 0 && !arg.json)
                printf("inventory reloaded\n");
        return r;
}

typedef struct RollbackProgress {
        json_object *event; /* the user's "rotation" event */
} RollbackProgress;

static int on_rollback_event(json_object *line, void *userdata) {
        RollbackProgress *p = userdata;

        if (streq_ptr(json_str(line, "event"), "rotation")) {
                json_object_put(p->event);
                p->event = json_object_get(line);
        }
        return 0;
}

static int rollback_via_socket(int fd, const char *user) {
        _cleanup_json_ json_object *req = request_new("rollback"), *final = NULL;
        RollbackProgress p = {};
        char a[160], b[160], msg[1024];
        int r;

        if (!req)
                return EXIT_FAILED;
        json_object_object_add(req, "user", json_object_new_string(user));
        r = daemon_call_fd(fd, req, USEC_INFINITY, on_rollback_event, &p, &final);
        if (r == 0 && !arg.json) {
                sanitize_text(json_str(p.event, "old_key_id") ?: "", a, sizeof(a));
                sanitize_text(json_str(p.event, "new_key_id") ?: "", b, sizeof(b));
                if (*a && *b)
                        /* As in the audit: old = the key replaced (dropped), new = current. */
                        printf("rolled back %s: %s is current again, %s deleted\n", user, b, a);
                else
                        printf("rolled back %s\n", user);
        } else if (r == EXIT_FAILED && final && !arg.json) {
                /* The rotation's own error says more than the summary. */
                sanitize_text(json_str(p.event, "error") ?: json_str(final, "error") ?: "unknown error", msg, sizeof(msg));
                log_error("rollback of %s failed: %s", user, msg);
        }
        json_object_put(p.event);
        return r;
}

static void rollback_done(const RotationReport *rep, void *userdata) {
        int *ret = userdata;
        char a[160], b[160];

        if (rep->outcome == ROTATION_COMPLETED) {
                sanitize_text(rep->old_key_id, a, sizeof(a));
                sanitize_text(rep->new_key_id, b, sizeof(b));
                printf("rolled back %s: %s is current again, %s deleted\n", rep->user, b, a);
                *ret = 0;
        } else {
                log_error("rollback of %s failed: %s", rep->user, rep->error ?: "unknown error");
                *ret = EXIT_FAILED;
        }
}

static void replace_lost_done(const RotationReport *rep, void *userdata) {
        int *ret = userdata;
        char a[160], b[160];

        if (rep->outcome == ROTATION_COMPLETED) {
                sanitize_text(*rep->old_key_id ? rep->old_key_id : "no key", a, sizeof(a));
                sanitize_text(rep->new_key_id, b, sizeof(b));
                printf("%s: %s replaced by %s%s\n", rep->user, a, b,
                       rep->in_grace ? " (the old key is Inactive until its grace ends)" : "");
                *ret = 0;
        } else {
                log_error("replacing the lost key of %s failed: %s", rep->user,
                        rep->error ?: "unknown error");
                *ret = EXIT_FAILED;
        }
}

/*
 * One keyrotd per state directory, and only the lock holder may touch the
 * store: while a daemon holds the lock, the daemon does the work (*via_daemon
 * set, the socket in *ret_fd). Otherwise we hold the lock ourselves, which
 * keeps a daemon from starting until we are done. Returns 0 to go on
 * locally, else an exit code.
 */
static int lock_or_daemon(Runtime *rt, bool *via_daemon, int *ret_fd) {
        int r = runtime_lock(rt, false);

        *via_daemon = false;
        if (r >= 0)
                return 0;
        int k = ctl_connect(arg.socket, ret_fd);
        if (k >= 0) {
                *via_daemon = true;
                return 0;
        }
        if (r == -EBUSY) {
                log_error("keyrotd holds the lock on %s but cannot be reached at %s: %s",
                        rt->state_dir, arg.socket, strerror(-k));
                return EXIT_NO_DAEMON;
        }
        return fail_with(rt, r, EXIT_FAILED);
}

/* Run one rotation of user with flags in this process (lock held). */
static int run_locally(Runtime *rt, const char *user, unsigned flags, rotation_done_t done) {
        _cleanup_(rotation_engine_freep) RotationEngine *engine = NULL;
        sigset_t mask;
        int r, ret = EXIT_FAILED;

        if (runtime_load_inventory(rt) < 0) {
                runtime_print_inventory_errors(rt);
                return EXIT_USAGE;
        }
        if (!inventory_find_user(rt->inv, user)) {
                log_error("%s is not in the inventory %s", user, rt->config_path);
                return EXIT_USAGE;
        }
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigprocmask(SIG_BLOCK, &mask, NULL);

        r = runtime_open_store(rt);
        if (r >= 0)
                r = runtime_open_aws(rt);
        if (r >= 0)
                r = rotation_engine_new(rt->event, rt->aws, rt->store, rt->inv, &engine);
        if (r < 0)
                return fail_with(rt, r, EXIT_FAILED);
        r = rotation_engine_submit(engine, user, TRIGGER_MANUAL, flags, done, &ret);
        if (r < 0)
                return EXIT_FAILED;
        while (rotation_engine_busy(engine) > 0)
                if (sd_event_run(rt->event, UINT64_MAX) < 0)
                        return EXIT_FAILED;
        return ret;
}

static int cmd_rollback(Runtime *rt, char **args, unsigned n) {
        const char *user = args[0];
        _cleanup_close_ int fd = -1;
        bool via_daemon;
        int r = lock_or_daemon(rt, &via_daemon, &fd);

        if (r != 0)
                return r;
        if (via_daemon)
                return rollback_via_socket(fd, user);
        return run_locally(rt, user, ROTATION_ROLLBACK, rollback_done);
}

static int replace_lost_via_socket(int fd, const char *user) {
        _cleanup_json_ json_object *req = request_new("rotate"), *final = NULL;
        json_object *users = json_object_new_array();
        RotateProgress p = {};
        int r;

        if (!req || !users)
                return EXIT_FAILED;
        json_object_array_add(users, json_object_new_string(user));
        json_object_object_add(req, "users", users);
        json_object_object_add(req, "replace_lost", json_object_new_boolean(true));
        json_object_object_add(req, "wait", json_object_new_boolean(true));
        r = daemon_call_fd(fd, req, USEC_INFINITY, on_rotate_event, &p, &final);
        if (r == EXIT_FAILED && final && p.failed == 0)
                print_daemon_error("rotate --replace-lost", final);
        return r != 0 || p.failed > 0 ? (r == EXIT_NO_DAEMON ? r : EXIT_FAILED) : 0;
}

/* Lost keys: a new key replaces the one whose secret keyrotd
 * does not hold; the lost one goes only after the new one verified. */
static int cmd_replace_lost(Runtime *rt, char **users, unsigned n) {
        _cleanup_close_ int fd = -1;
        bool via_daemon;
        int r;

        if (arg.all || n != 1) {
                log_error("rotate --replace-lost takes exactly one USER");
                return EXIT_USAGE;
        }
        if (!iam_user_name_valid(users[0])) {
                log_error("invalid IAM user name: %s", users[0]);
                return EXIT_USAGE;
        }
        r = lock_or_daemon(rt, &via_daemon, &fd);
        if (r != 0)
                return r;
        if (via_daemon)
                return replace_lost_via_socket(fd, users[0]);
        return run_locally(rt, users[0], ROTATION_REPLACE_LOST, replace_lost_done);
}

/* rotate USER --replace-lost is a different operation behind the same verb. */
static int cmd_rotate_any(Runtime *rt, char **args, unsigned n) {
        return arg.replace_lost ? cmd_replace_lost(rt, args, n) : cmd_rotate(rt, args, n);
}

static int cmd_audit(Runtime *rt, char **args, unsigned n) {
        return review_cmd_run(rt, arg.json, arg.all_users);
}

/* The options that belong to one command or another; any given to a
 * command that does not take it is a usage error. */
typedef enum VerbOption {
        OPT_JSON = 1 << 0,
        OPT_ALL = 1 << 1,
        OPT_WAIT = 1 << 2,
        OPT_REPLACE_LOST = 1 << 3,
        OPT_KEY_FILE = 1 << 4,
        OPT_FROM = 1 << 5,
        OPT_PROFILE = 1 << 6,
        OPT_FORMAT = 1 << 7,
        OPT_BUCKET = 1 << 8,
        OPT_PREFIX = 1 << 9,
        OPT_READ_ONLY = 1 << 10,
        OPT_PRINT_POLICY = 1 << 11,
        OPT_TAKE_OVER = 1 << 12,
        OPT_ALL_USERS = 1 << 13,
        _OPT_COUNT = 14,
} VerbOption;

static const char *const option_names[_OPT_COUNT] = {
        "--json", "--all", "--wait", "--replace-lost", "--key-file", "--from-credentials", "--profile",
        "--format", "--bucket", "--prefix", "--read-only", "--print-policy", "--take-over", "--all-users",
};

typedef struct Verb {
        const char *name;
        unsigned min_args, max_args;
        unsigned options; /* VerbOption */
        int (*run)(Runtime *rt, char **args, unsigned n);
} Verb;

static const Verb verbs[] = {
        { "status", 0, 0, OPT_JSON, cmd_status },
        { "rotate", 0, UINT_MAX, OPT_JSON | OPT_ALL | OPT_WAIT | OPT_REPLACE_LOST, cmd_rotate_any },
        { "reload", 0, 0, OPT_JSON, cmd_reload },
        { "init-store", 0, 0, OPT_KEY_FILE, cmd_init_store },
        { "adopt", 1, 1, OPT_FROM | OPT_PROFILE, cmd_adopt },
        { "get", 1, 1, OPT_FORMAT, cmd_get },
        { "rollback", 1, 1, OPT_JSON, cmd_rollback },
        { "provision", 1, 1, OPT_BUCKET | OPT_PREFIX | OPT_READ_ONLY | OPT_PRINT_POLICY | OPT_TAKE_OVER, cmd_provision },
        { "audit", 0, 0, OPT_JSON | OPT_ALL_USERS, cmd_audit },
};

static const Verb *verb_find(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(verbs[i].name, name))
                        return &verbs[i];
        return NULL;
}

int main(int argc, char **argv) {
        enum { ARG_SOCKET = 0x100, ARG_CREDENTIALS_SOCKET, ARG_VERSION, ARG_OPTION };
        /* Command options: val = ARG_OPTION + the bit's index in VerbOption. */
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "state-dir", required_argument, NULL, 's' },
                { "socket", required_argument, NULL, ARG_SOCKET },
                { "credentials-socket", required_argument, NULL, ARG_CREDENTIALS_SOCKET },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "json", no_argument, NULL, ARG_OPTION + 0 },
                { "all", no_argument, NULL, ARG_OPTION + 1 },
                { "wait", no_argument, NULL, ARG_OPTION + 2 },
                { "replace-lost", no_argument, NULL, ARG_OPTION + 3 },
                { "key-file", required_argument, NULL, ARG_OPTION + 4 },
                { "from-credentials", required_argument, NULL, ARG_OPTION + 5 },
                { "profile", required_argument, NULL, ARG_OPTION + 6 },
                { "format", required_argument, NULL, ARG_OPTION + 7 },
                { "bucket", required_argument, NULL, ARG_OPTION + 8 },
                { "prefix", required_argument, NULL, ARG_OPTION + 9 },
                { "read-only", no_argument, NULL, ARG_OPTION + 10 },
                { "print-policy", no_argument, NULL, ARG_OPTION + 11 },
                { "take-over", no_argument, NULL, ARG_OPTION + 12 },
                { "all-users", no_argument, NULL, ARG_OPTION + 13 },
                {},
        };
        Runtime rt = RUNTIME_INIT;
        unsigned given = 0;
        const Verb *verb;
        int c, ret;

        log_setup("keyrotctl", LOG_TARGET_AUTO, 0);
        /* Options may follow the command (keyrotctl get USER --format json). */
        while ((c = getopt_long(argc, argv, "c:s:h", options, NULL)) >= 0) {
                if (c >= ARG_OPTION && c < ARG_OPTION + _OPT_COUNT)
                        given |= 1U << (c - ARG_OPTION);
                switch (c) {
                case 'c': arg.config = optarg; break;
                case 's': arg.state_dir = optarg; break;
                case ARG_SOCKET: arg.socket = optarg; break;
                case ARG_CREDENTIALS_SOCKET: arg.credentials_socket = optarg; break;
                case ARG_OPTION + 0: arg.json = true; break;
                case ARG_OPTION + 1: arg.all = true; break;
                case ARG_OPTION + 2: arg.wait = true; break;
                case ARG_OPTION + 3: arg.replace_lost = true; break;
                case ARG_OPTION + 4: arg.key_file = optarg; break;
                case ARG_OPTION + 5: arg.from_credentials = optarg; break;
                case ARG_OPTION + 6: arg.profile = optarg; break;
                case ARG_OPTION + 7: arg.format = optarg; break;
                case ARG_OPTION + 8:
                        if (arg.n_buckets >= ELEMENTSOF(arg.buckets)) {
                                log_error("at most %zu --bucket options", ELEMENTSOF(arg.buckets));
                                return EXIT_USAGE;
                        }
                        arg.buckets[arg.n_buckets++] = optarg;
                        break;
                case ARG_OPTION + 9: arg.prefix = optarg; break;
                case ARG_OPTION + 10: arg.read_only = true; break;
                case ARG_OPTION + 11: arg.print_policy = true; break;
                case ARG_OPTION + 12: arg.take_over = true; break;
                case ARG_OPTION + 13: arg.all_users = true; break;
                case 'h': help(); return 0;
                case ARG_VERSION: printf("keyrotctl %s\n", PACKAGE_VERSION); return 0;
                default: return EXIT_USAGE;
                }
        }
        if (optind >= argc) {
                help();
                return EXIT_USAGE;
        }
        verb = verb_find(argv[optind]);
        unsigned nargs = (unsigned) (argc - optind - 1);
        if (!verb) {
                log_error("unknown command: %s (see --help)", argv[optind]);
                return EXIT_USAGE;
        }
        if (nargs < verb->min_args || nargs > verb->max_args) {
                log_error("%s takes %s (see --help)", verb->name,
                          verb->max_args == 0 ? "no arguments" : verb->max_args == 1 ? "one USER" : "USER...");
                return EXIT_USAGE;
        }
        for (unsigned i = 0; i < _OPT_COUNT; i++)
                if ((given & ~verb->options) & (1U << i)) {
                        log_error("%s does not apply to %s (see --help)", option_names[i], verb->name);
                        return EXIT_USAGE;
                }

        if (process_harden() < 0)
                log_warning("cannot keep the process from dumping core: a crash could write key material to disk");
        rt.config_path = arg.config;
        rt.state_dir = arg.state_dir;
        ret = verb->run(&rt, argv + optind + 1, nargs);
        runtime_done(&rt);
        return ret;
}

/* SPDX-License-Identifier: MIT */
/*
 * keyrotd — options, wiring and exit codes; the work is in the engine.
 *
 * Exit codes (docs/DESIGN.md §2): 0 success, 1 a rotation failed, 2 bad usage
 * or configuration.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "aws/iam.h"
#include "basic/duration.h"
#include "basic/log.h"
#include "basic/process.h"
#include "basic/sanitize.h"
#include "config.h"
#include "daemon/keycheck.h"
#include "daemon/manager.h"
#include "rotation/plan.h"
#include "rotation/rotation.h"
#include "runtime.h"

#define EXIT_ROTATION_FAILED 1
#define EXIT_USAGE 2

static struct {
        const char *config;
        const char *state_dir;
        const char *socket;
        const char *credentials_socket; /* NULL: credentials.sock beside the control socket */
        bool once, force, dry_run, check_config;
        LogTarget log_target;
} arg = {
        .config = KEYROTD_DEFAULT_CONFIG,
        .state_dir = KEYROTD_DEFAULT_STATE_DIR,
        .socket = KEYROTD_DEFAULT_SOCKET,
        .log_target = LOG_TARGET_AUTO,
};

static void help(void) {
        printf("Usage: keyrotd [OPTIONS]\n"
               "Rotate the access keys of AWS IAM programmatic users listed in an inventory.\n\n"
               "  -c, --config FILE      inventory (default %s)\n"
               "  -s, --state-dir DIR    state directory with the sealed store (default %s)\n"
               "      --socket PATH      control socket (default %s)\n"
               "      --credentials-socket PATH\n"
               "                         the applications' socket: get for the users' readers\n"
               "                         (default: credentials.sock beside the control socket)\n"
               "      --once             rotate every user that is due, then exit\n"
               "      --force            with --once: rotate every user, due or not\n"
               "      --dry-run          with --once: read-only calls only; print the plan\n"
               "      --check-config     check the inventory, print FILE:LINE:COL: message per problem\n"
               "      --log-target T     auto, journal or stderr (default auto)\n"
               "  -h, --help             show this help\n"
               "      --version          show the version\n\n"
               "Exit status: 0 success, 1 a rotation failed, 2 bad usage or configuration.\n"
               "See keyrotd(8) and keyrotd.yaml(5).\n",
               KEYROTD_DEFAULT_CONFIG, KEYROTD_DEFAULT_STATE_DIR, KEYROTD_DEFAULT_SOCKET);
}

static int parse_argv(int argc, char **argv) {
        enum { ARG_SOCKET = 0x100, ARG_CREDENTIALS_SOCKET, ARG_ONCE, ARG_FORCE, ARG_DRY_RUN, ARG_CHECK, ARG_LOG_TARGET, ARG_VERSION };
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "state-dir", required_argument, NULL, 's' },
                { "socket", required_argument, NULL, ARG_SOCKET },
                { "credentials-socket", required_argument, NULL, ARG_CREDENTIALS_SOCKET },
                { "once", no_argument, NULL, ARG_ONCE },
                { "force", no_argument, NULL, ARG_FORCE },
                { "dry-run", no_argument, NULL, ARG_DRY_RUN },
                { "check-config", no_argument, NULL, ARG_CHECK },
                { "log-target", required_argument, NULL, ARG_LOG_TARGET },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, "c:s:h", options, NULL)) >= 0) {
                switch (c) {
                case 'c': arg.config = optarg; break;
                case 's': arg.state_dir = optarg; break;
                case ARG_SOCKET: arg.socket = optarg; break;
                case ARG_CREDENTIALS_SOCKET: arg.credentials_socket = optarg; break;
                case ARG_ONCE: arg.once = true; break;
                case ARG_FORCE: arg.force = true; break;
                case ARG_DRY_RUN: arg.dry_run = true; break;
                case ARG_CHECK: arg.check_config = true; break;
                case ARG_LOG_TARGET:
                        arg.log_target = log_target_from_string(optarg);
                        if (arg.log_target < 0) {
                                log_error("--log-target must be auto, journal or stderr, not '%s'", optarg);
                                return -EINVAL;
                        }
                        break;
                case 'h': help(); return 0;
                case ARG_VERSION: printf("keyrotd %s\n", PACKAGE_VERSION); return 0;
                default: return -EINVAL;
                }
        }
        if (optind < argc) {
                log_error("unexpected argument '%s'", argv[optind]);
                return -EINVAL;
        }
        if ((arg.force || arg.dry_run) && !arg.once) {
                log_error("--force and --dry-run only apply to --once");
                return -EINVAL;
        }
        return 1;
}

typedef struct OnceState {
        Runtime *rt;
        RotationEngine *engine;
        unsigned failed;
} OnceState;

/* Every line names the user and says what happened; whatever in it came
 * from AWS (error codes, key ids) is sanitised: stdout may be a terminal. */
static void once_done(const RotationReport *rep, void *userdata) {
        OnceState *st = userdata;
        char user[256], old[256], new[256], error[1024];

        sanitize_text(rep->user, user, sizeof user);
        sanitize_text(rep->old_key_id[0] ? rep->old_key_id : "-", old, sizeof old);
        sanitize_text(rep->new_key_id, new, sizeof new);
        switch (rep->outcome) {
        case ROTATION_COMPLETED:
                /* Never "rotated" for a run that only finished an earlier one. */
                printf("%s: %s %s -> %s%s\n", user,
                       streq(rep->action, "rotated")       ? "rotated"
                       : streq(rep->action, "rolled-back") ? "rolled back: retiring"
                                                           : "finished an earlier rotation",
                       old, new,
                       rep->draining   ? " (the old key stays Active while consumers use it; the next run goes on)"
                       : rep->in_grace ? " (old key Inactive until its grace ends)"
                                       : "");
                break;
        case ROTATION_NOT_DUE:
                printf("%s: not due%s\n", user, rep->in_grace ? " (previous key Inactive, in grace)" : "");
                break;
        case ROTATION_PARKED:
                printf("%s: stopped at a safe point; the next start resumes it\n", user);
                break;
        default:
                sanitize_text(rep->error ?: "unknown error", error, sizeof error);
                printf("%s: FAILED: %s\n", user, error);
                st->failed++;
        }
        fflush(stdout);
}

static void once_submit(OnceState *st, const char *user) {
        int r = rotation_engine_submit(st->engine, user, TRIGGER_ONCE, arg.force ? ROTATION_FORCE : 0, once_done, st);

        if (r < 0) {
                log_error_errno(r, "cannot queue the rotation of %s: %m", user);
                st->failed++;
        }
}

/* A record in mid-rotation is recovered only if it is not from an older
 * copy of the store (daemon/keycheck.h): recovering it would write its
 * stale key to the targets, or delete the key in use. */
static void once_checked(const char *user, const AwsResult *res, void *userdata) {
        OnceState *st = userdata;
        const InventoryUser *iu = inventory_find_user(st->rt->inv, user);
        char reason[KEYCHECK_REASON_MAX], line[KEYCHECK_REASON_MAX + 64];

        if (res->error >= 0 &&
            keycheck_lost(iu, store_get_user(st->rt->store, user), &res->list_keys, now_usec(CLOCK_REALTIME),
                          reason, sizeof reason)) {
                log_error("%s: lost: %s; its interrupted rotation is not recovered", user, reason);
                snprintf(line, sizeof line, "lost: %s", reason);
                once_done(&(RotationReport) { .user = user, .outcome = ROTATION_FAILED, .error = line,
                                              .old_key_id = "", .new_key_id = "" },
                          st);
                return;
        }
        /* Not lost, or IAM could not say: the rotation's own inspection
         * asks again and decides. */
        once_submit(st, user);
}

static int on_stop_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        RotationEngine *engine = userdata;

        log_info("%s (signal %u): stopping at the next safe point", strsignal((int) si->ssi_signo), si->ssi_signo);
        rotation_engine_stop(engine);
        return 0;
}

/* Openers of runtime.h say what failed in rt->error, with its path. */
static void log_runtime_error(const Runtime *rt, int r) {
        if (rt->error)
                log_error_errno(r, "%s", rt->error);
        else
                log_error_errno(r, "cannot open the state directory %s: %m", rt->state_dir);
}

/* The lock, the store and the AWS client, in that order. 0 or an exit code:
 * another keyrotd holding the lock is a failed run, anything else bad
 * configuration. */
static int open_state(Runtime *rt) {
        int r = runtime_lock(rt, false);

        if (r >= 0)
                r = runtime_open_store(rt);
        if (r >= 0)
                r = runtime_open_aws(rt);
        if (r < 0) {
                log_runtime_error(rt, r);
                return r == -EBUSY ? EXIT_ROTATION_FAILED : EXIT_USAGE;
        }
        return 0;
}

static int run_once(Runtime *rt) {
        _cleanup_(rotation_engine_freep) RotationEngine *engine = NULL;
        _cleanup_(keychecker_freep) KeyChecker *checker = NULL;
        OnceState st = { .rt = rt };
        sigset_t mask;
        int r;

        /* Hooks are reaped through sd-event (SIGCHLD), and SIGTERM/SIGINT
         * must park rotations, not kill the process between create and seal. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);

        r = open_state(rt);
        if (r != 0)
                return r;

        r = rotation_engine_new(rt->event, rt->aws, rt->store, rt->inv, &engine);
        if (r < 0) {
                log_error_errno(r, "cannot start the rotation engine: %m");
                return EXIT_ROTATION_FAILED;
        }
        r = sd_event_add_signal(rt->event, NULL, SIGTERM, on_stop_signal, engine);
        if (r >= 0)
                r = sd_event_add_signal(rt->event, NULL, SIGINT, on_stop_signal, engine);
        if (r < 0) {
                /* Blocked and unwatched, SIGTERM would never stop us. */
                log_error_errno(r, "cannot watch SIGTERM and SIGINT: %m");
                return EXIT_ROTATION_FAILED;
        }

        st.engine = engine;
        r = keychecker_new(rt->aws, rt->inv->defaults.max_parallel, once_checked, &st, &checker);
        if (r < 0) {
                log_error_errno(r, "cannot check the store's keys against IAM: %m");
                return EXIT_ROTATION_FAILED;
        }
        for (size_t i = 0; i < rt->inv->n_users; i++) {
                const char *user = rt->inv->users[i].name;
                const StoreUser *su = store_get_user(rt->store, user);

                /* An idle record is judged by the rotation's inspection
                 * (decide(): KeyMissing, KeyInactive) before it acts. */
                if (su && su->phase != STORE_PHASE_IDLE && store_key_is_set(&su->current)) {
                        r = keychecker_add(checker, user);
                        if (r >= 0)
                                continue;
                        log_error_errno(r, "cannot check the keys of %s against IAM: %m", user);
                }
                once_submit(&st, user);
        }
        while (rotation_engine_busy(engine) > 0 || keychecker_busy(checker) > 0) {
                r = sd_event_run(rt->event, UINT64_MAX);
                if (r < 0) {
                        log_error_errno(r, "event loop failed: %m");
                        return EXIT_ROTATION_FAILED;
                }
        }
        return st.failed > 0 ? EXIT_ROTATION_FAILED : 0;
}

static int run_daemon(Runtime *rt, const char *credentials_socket) {
        _cleanup_(manager_freep) Manager *m = NULL;
        int r;

        r = open_state(rt);
        if (r != 0)
                return r;
        r = manager_new(rt, &(ManagerOptions){ .socket_path = arg.socket, .credentials_socket_path = credentials_socket },
                        &m);
        if (r < 0)
                return EXIT_ROTATION_FAILED; /* manager_new() said what failed */
        r = manager_run(m);
        if (r < 0) {
                log_error_errno(r, "event loop failed: %m");
                return EXIT_ROTATION_FAILED;
        }
        return 0;
}

int main(int argc, char **argv) {
        Runtime rt = RUNTIME_INIT;
        int r, ret;

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_USAGE : 0;

        (void) log_setup("keyrotd", arg.log_target, LOG_STDERR_TIMESTAMP);
        r = process_harden();
        if (r < 0)
                log_warning_errno(r, "cannot keep the process from dumping core (%m): a crash could write key "
                                  "material to disk");
        rt.config_path = arg.config;
        rt.state_dir = arg.state_dir;
        r = runtime_load_inventory(&rt);
        if (r < 0) {
                runtime_print_inventory_errors(&rt);
                ret = EXIT_USAGE;
                goto out;
        }
        if (arg.check_config) {
                printf("%s: OK (%zu users)\n", arg.config, rt.inv->n_users);
                ret = 0;
                goto out;
        }
        if (arg.once)
                log_info("starting keyrotd %s (once%s%s): config %s (%zu users), state directory %s",
                         PACKAGE_VERSION, arg.force ? ", forced" : "", arg.dry_run ? ", dry run" : "", arg.config,
                         rt.inv->n_users, arg.state_dir);
        else
                log_info("starting keyrotd %s: config %s (%zu users), state directory %s, control socket %s",
                         PACKAGE_VERSION, arg.config, rt.inv->n_users, arg.state_dir, arg.socket);
        if (arg.dry_run) {
                /* Read-only: no state lock (a running daemon may hold it, and
                 * the dry run writes nothing it could race on), the store is
                 * only read, never committed. */
                r = runtime_open_store(&rt);
                if (r >= 0)
                        r = runtime_open_aws(&rt);
                if (r < 0) {
                        log_runtime_error(&rt, r);
                        ret = EXIT_USAGE;
                        goto out;
                }
                r = plan_run(rt.event, rt.aws, rt.store, rt.inv, arg.force, stdout);
                if (r < 0)
                        log_error_errno(r, "dry run failed: %m");
                ret = r == 0 ? 0 : EXIT_ROTATION_FAILED;
                goto out;
        }
        ret = arg.once ? run_once(&rt) : run_daemon(&rt, arg.credentials_socket);
out:
        runtime_done(&rt);
        return ret;
}

/* SPDX-License-Identifier: MIT */
/*
 * test-engine — the rotation engine's step sequencing, and the agreement
 * of the dry run with the real run, on the real core (client, parsers,
 * engine, store, targets) with an in-process IAM and S3 behind the
 * transport (fake-aws.h) instead of moto.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aws/client.h"
#include "aws/http.h"
#include "aws/provider.h"
#include "decision-table.h"
#include "fake-aws.h"
#include "inventory/inventory.h"
#include "rotation/plan.h"
#include "rotation/rotation.h"
#include "store/store.h"
#include "tap.h"

#define USER "app"

typedef struct Env {
        char dir[256];
        sd_event *event;
        HttpClient *http;
        CredentialsProvider *identity;
        AwsClient *aws;
        Store *store;
        Inventory *inv;
        FakeAws fake;
} Env;

typedef struct Outcome {
        bool done;
        RotationOutcome outcome;
        bool in_grace;
        char error[512];
        char new_key_id[STORE_ACCESS_KEY_ID_MAX + 1];
} Outcome;

static void path_in(const Env *env, const char *name, char *buf, size_t size) {
        snprintf(buf, size, "%s/%s", env->dir, name);
}

static int load_inventory(Env *env, const char *extra_user_settings, const char *grace) {
        _cleanup_free_ char *text = NULL;
        InventoryErrors errors = {};
        int r;

        r = asprintf_safe(&text,
                 "version: 1\n"
                 "aws: { region: us-east-1, endpoint_url: 'https://fake.invalid' }\n"
                 "defaults:\n"
                 "  max_age: 90d\n"
                 "  grace: %s\n"
                 "  drain: false\n"
                 "  verify: { timeout: 5s, consecutive: 3, interval: 0 }\n"
                 "users:\n"
                 "  - name: " USER "\n"
                 "    verify: { bucket: data }\n"
                 "    targets:\n"
                 "      - { type: credentials-file, path: '%s/credentials' }\n"
                 "      - { type: env-file, path: '%s/aws.env' }\n"
                 "%s",
                 grace ?: "0", env->dir, env->dir, extra_user_settings ?: "");
        if (r < 0)
                return r;
        env->inv = inventory_free(env->inv);
        r = inventory_load_string("engine.yaml", text, strlen(text), &env->inv, &errors);
        for (size_t i = 0; i < errors.n; i++)
                diag("%s", errors.lines[i]);
        inventory_errors_clear(&errors);
        return r;
}

static int env_setup(Env *env) {
        char key[512], store[512];
        _cleanup_free_ char *err = NULL;
        int r;

        snprintf(env->dir, sizeof env->dir, "%s/keyrotd-engine-XXXXXX", getenv("TMPDIR") ?: "/tmp");
        if (!mkdtemp(env->dir))
                return -errno;
        setenv("AWS_ACCESS_KEY_ID", FAKE_ADMIN_KEY_ID, 1);
        setenv("AWS_SECRET_ACCESS_KEY", FAKE_ADMIN_SECRET, 1);
        setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
        unsetenv("AWS_PROFILE");
        unsetenv("AWS_ENDPOINT_URL");
        unsetenv("AWS_ENDPOINT_URL_IAM");
        unsetenv("AWS_ENDPOINT_URL_S3");

        r = sd_event_new(&env->event);
        if (r >= 0)
                r = http_client_new(env->event, &(HttpClientOptions) {}, &env->http);
        if (r < 0)
                return r;
        http_client_set_fake(env->http, fake_aws_answer, &env->fake);
        r = credentials_provider_new(env->http, &(CredentialsOptions) {}, &env->identity, &err);
        if (r >= 0)
                r = aws_client_new(env->http, env->identity, "us-east-1", "http://fake.invalid", &env->aws, &err);
        if (r < 0) {
                diag("%s", err ?: strerror(-r));
                return r;
        }
        path_in(env, "store.key", key, sizeof key);
        path_in(env, "store.sealed", store, sizeof store);
        r = store_key_generate(key);
        if (r >= 0)
                r = store_open(store, key, &env->store, &err);
        if (r >= 0)
                r = load_inventory(env, NULL, NULL);
        return r;
}

static void env_done(Env *env) {
        char cmd[512];

        inventory_free(env->inv);
        store_free(env->store);
        aws_client_free(env->aws);
        credentials_provider_free(env->identity);
        http_client_free(env->http);
        sd_event_unref(env->event);
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", env->dir);
        if (system(cmd) != 0)
                diag("cannot remove %s", env->dir);
}

/* Each key's secret: 40 characters derived from its id. */
static void secret_of(const char *id, char buf[static 41]) {
        size_t n = strlen(id);

        for (size_t i = 0; i < 40; i++)
                buf[i] = i < n ? id[i] : 's';
        buf[40] = 0;
}

/* A fresh user: the fake IAM holds key @id, the store holds it as current. */
static const char *give_key(Env *env, const char *id, time_t created) {
        char secret[41];
        StoreUser *su = store_get_user(env->store, USER);

        secret_of(id, secret);
        fake_aws_add_key(&env->fake, id, secret, true, created);
        if (!su && store_add_user(env->store, USER, &su) < 0)
                return NULL;
        if (store_key_set(&su->current, id, secret, strlen(secret), (int64_t) created * (int64_t) USEC_PER_SEC) < 0 ||
            store_commit(env->store) < 0)
                return NULL;
        return id;
}

static void reset_user(Env *env) {
        char path[512];

        (void) store_remove_user(env->store, USER);
        fake_aws_init(&env->fake, USER);
        path_in(env, "credentials", path, sizeof path);
        (void) unlink(path);
        path_in(env, "aws.env", path, sizeof path);
        (void) unlink(path);
}

static void on_done(const RotationReport *rep, void *userdata) {
        Outcome *o = userdata;

        o->done = true;
        o->outcome = rep->outcome;
        o->in_grace = rep->in_grace;
        snprintf(o->error, sizeof o->error, "%s", rep->error ?: "");
        snprintf(o->new_key_id, sizeof o->new_key_id, "%s", rep->new_key_id ?: "");
}

static Outcome run(Env *env, unsigned flags) {
        _cleanup_(rotation_engine_freep) RotationEngine *engine = NULL;
        Outcome o = {};
        int r;

        r = rotation_engine_new(env->event, env->aws, env->store, env->inv, &engine);
        if (r >= 0)
                r = rotation_engine_submit(engine, USER, TRIGGER_ONCE, flags, on_done, &o);
        while (r >= 0 && rotation_engine_busy(engine) > 0)
                r = sd_event_run(env->event, UINT64_MAX);
        if (r < 0)
                diag("engine: %s", strerror(-r));
        return o;
}

/* The dry run's ACTION and REASON for the user. */
static int plan(Env *env, bool force, char *action, size_t asize, char *reason, size_t rsize) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        int r;

        if (!f)
                return -errno;
        r = plan_run(env->event, env->aws, env->store, env->inv, force, f);
        fclose(f);
        if (r < 0)
                return r;
        /* Columns are padded: take ACTION and REASON at the header's offsets. */
        const char *row = strchr(text, '\n');
        const char *ha = strstr(text, "ACTION"), *hr = strstr(text, "REASON");
        if (!row || !ha || !hr)
                return -EBADMSG;
        row++;
        size_t oa = (size_t) (ha - text), or_ = (size_t) (hr - text);
        if (strlen(row) <= or_)
                return -EBADMSG;
        snprintf(action, asize, "%.*s", (int) strcspn(row + oa, " "), row + oa);
        snprintf(reason, rsize, "%.*s", (int) strcspn(row + or_, "\n"), row + or_);
        return 0;
}

static bool file_has(const Env *env, const char *name, const char *text) {
        char path[512], buf[4096];
        ssize_t n;
        int fd;

        path_in(env, name, path, sizeof path);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n < 0)
                return false;
        buf[n] = 0;
        return strstr(buf, text) != NULL;
}

static void dump_calls(const Env *env) {
        for (size_t i = 0; i < env->fake.n_calls; i++)
                diag("call %zu: %s", i, env->fake.calls[i]);
}

/* ---- step sequencing ---------------------------------------------------- */

static void test_full_rotation(Env *env) {
        static const char *const want[] = {
                "ListAccessKeys",
                "CreateAccessKey",
                "S3 GET AKIAFAKENEW000000001",
                "IAM ListAccessKeys as AKIAFAKENEW000000001",
                "S3 GET AKIAFAKENEW000000001",
                "S3 GET AKIAFAKENEW000000001",
                "UpdateAccessKey AKIAOLD0000000000001 Inactive",
                "DeleteAccessKey AKIAOLD0000000000001",
        };
        bool same;
        Outcome o;

        reset_user(env);
        give_key(env, "AKIAOLD0000000000001", time(NULL) - 3600);
        o = run(env, ROTATION_FORCE);
        ok(o.done && o.outcome == ROTATION_COMPLETED, "forced rotation completes (%s)", o.error);
        same = env->fake.n_calls == ELEMENTSOF(want);
        for (size_t i = 0; same && i < ELEMENTSOF(want); i++)
                same = streq(env->fake.calls[i], want[i]);
        if (!ok(same, "calls in order: list, create, check, deny probe, two more checks, deactivate, delete"))
                dump_calls(env);

        const StoreUser *su = store_get_user(env->store, USER);
        ok(su && su->phase == STORE_PHASE_IDLE && streq(su->current.access_key_id, "AKIAFAKENEW000000001") &&
                   !store_key_is_set(&su->previous) && !store_key_is_set(&su->pending),
           "store: idle, the new key current, nothing else held");
        ok(su && su->current.secret && su->current.secret->len == 40, "store holds the new secret");
        ok(file_has(env, "credentials", "aws_access_key_id = AKIAFAKENEW000000001"), "credentials file has the new key");
        ok(file_has(env, "aws.env", "AWS_ACCESS_KEY_ID=AKIAFAKENEW000000001"), "env file has the new key");
        ok(env->fake.n_keys == 1 && streq(env->fake.keys[0].id, "AKIAFAKENEW000000001"), "IAM: only the new key");
}

typedef struct CommitSeen {
        unsigned n;
        int results[2];
        unsigned order[2];
} CommitSeen;

static void commit_seen_0(int result, void *userdata) {
        CommitSeen *c = userdata;

        c->results[0] = result;
        c->order[0] = ++c->n;
}

static void commit_seen_1(int result, void *userdata) {
        CommitSeen *c = userdata;

        c->results[1] = result;
        c->order[1] = ++c->n;
}

/* rotation_engine_commit(): answered in order, both from one write. */
static void test_commit_waiters(Env *env) {
        _cleanup_(rotation_engine_freep) RotationEngine *engine = NULL;
        CommitSeen c = {};
        uint64_t gen;
        int r;

        reset_user(env);
        give_key(env, "AKIAOLD0000000000001", time(NULL) - 3600);
        gen = store_generation(env->store);
        r = rotation_engine_new(env->event, env->aws, env->store, env->inv, &engine);
        if (r >= 0)
                r = rotation_engine_commit(engine, commit_seen_0, &c);
        if (r >= 0)
                r = rotation_engine_commit(engine, commit_seen_1, &c);
        ok(r == 0 && c.n == 0, "commit waiters queued, none answered yet");
        while (r >= 0 && c.n < 2)
                r = sd_event_run(env->event, UINT64_MAX);
        ok(c.results[0] == 0 && c.results[1] == 0 && c.order[0] == 1 && c.order[1] == 2,
           "both answered with 0, in the order they asked");
        ok(store_generation(env->store) == gen + 1, "one write for both (generation %llu -> %llu)",
           (unsigned long long) gen, (unsigned long long) store_generation(env->store));

        c = (CommitSeen){};
        r = rotation_engine_commit(engine, commit_seen_0, &c);
        engine = rotation_engine_free(engine);
        ok(r == 0 && c.n == 1 && c.results[0] == -ECANCELED, "a waiter left at free hears -ECANCELED");
}

/* A key handed out with an Expiration is not deactivated before it. */
static void test_expiration_holds_deactivation(Env *env) {
        StoreUser *su;
        usec_t start, until;
        Outcome o;

        reset_user(env);
        give_key(env, "AKIAOLD0000000000001", time(NULL) - 3600);
        su = store_get_user(env->store, USER);
        start = now_usec(CLOCK_REALTIME);
        until = start + 1500 * USEC_PER_MSEC;
        su->current.handed_out_until = (int64_t) until;
        o = run(env, ROTATION_FORCE);
        ok(o.outcome == ROTATION_COMPLETED, "rotation completes (%s)", o.error);
        ok(now_usec(CLOCK_REALTIME) >= until, "...not before the Expiration handed out with the old key");
        ok(env->fake.n_keys == 1 && streq(env->fake.keys[0].id, "AKIAFAKENEW000000001"), "IAM: only the new key");
}

/* Drain: an application that used the old key after the distribution and
 * then moved on has left it once the key went unused for drain.settle. */
static void test_drain_sees_consumers_leave(Env *env) {
        usec_t start;
        Outcome o;

        load_inventory(env, "    drain: { wait: 60s, settle: 1s }\n", NULL);
        reset_user(env);
        give_key(env, "AKIAOLD0000000000001", time(NULL) - 3600);
        /* A use in a later second than the distribution, then none. */
        fake_aws_find(&env->fake, "AKIAOLD0000000000001")->last_used = time(NULL) + 1;
        start = now_usec(CLOCK_MONOTONIC);
        o = run(env, ROTATION_FORCE);
        ok(o.outcome == ROTATION_COMPLETED, "rotation completes (%s)", o.error);
        ok(env->fake.n_keys == 1 && streq(env->fake.keys[0].id, "AKIAFAKENEW000000001"),
           "the old key is gone: its consumers left it");
        ok(now_usec(CLOCK_MONOTONIC) - start < 30 * USEC_PER_SEC, "long before drain.wait");
        load_inventory(env, NULL, NULL);
}

static void test_not_due(Env *env) {
        Outcome o;

        reset_user(env);
        give_key(env, "AKIAOLD0000000000001", time(NULL) - 3600);
        o = run(env, 0);
        ok(o.outcome == ROTATION_NOT_DUE, "a young key is not due");
        ok(env->fake.n_calls == 1 && fake_aws_mutations(&env->fake) == 0, "only ListAccessKeys");
}

static void test_propagation(Env *env) {
        Outcome o;

        reset_user(env);
        give_key(env, "AKIAOLD0000000000001", time(NULL) - 3600);
        env->fake.new_key_refusals = 2;
        o = run(env, ROTATION_FORCE);
        ok(o.outcome == ROTATION_COMPLETED, "a new key refused twice at first still verifies (%s)", o.error);
        ok(fake_aws_count(&env->fake, "S3 GET AKIAFAKENEW") == 5, "two refusals, then three checks in a row");
}

static void test_access_denied(Env *env) {
        Outcome o;

        reset_user(env);
        give_key(env, "AKIAOLD0000000000001", time(NULL) - 3600);
        env->fake.s3_error = "AccessDenied";
        o = run(env, ROTATION_FORCE);
        ok(o.outcome == ROTATION_FAILED && strstr(o.error, "is denied the 'list' check"),
           "AccessDenied fails at once: %s", o.error);
        ok(fake_aws_count(&env->fake, "S3 GET AKIAFAKENEW") == 1, "no retry of a policy problem");
        ok(fake_aws_count(&env->fake, "DeleteAccessKey AKIAFAKENEW000000001") == 1, "the new key is deleted");
        ok(env->fake.n_keys == 1 && env->fake.keys[0].active, "the old key stays, Active");
        ok(!file_has(env, "credentials", "AKIAFAKENEW") && !file_has(env, "aws.env", "AKIAFAKENEW"),
           "no target got the new key");
        const StoreUser *su = store_get_user(env->store, USER);
        ok(su && su->failures == 1 && su->last_error && strstr(su->last_error, "denied"), "failure recorded");
}

static void test_over_privileged(Env *env) {
        Outcome o;

        reset_user(env);
        give_key(env, "AKIAOLD0000000000001", time(NULL) - 3600);
        env->fake.iam_allows_new_key = true;
        o = run(env, ROTATION_FORCE);
        ok(o.outcome == ROTATION_FAILED && strstr(o.error, "over-privileged"), "an IAM-capable key fails: %s",
           o.error);
        ok(fake_aws_count(&env->fake, "DeleteAccessKey AKIAFAKENEW000000001") == 1, "and is deleted");
}

/* LimitExceeded although decide() saw room: a create whose answer was lost
 * may have made the second key. The keys are listed before anything else. */
static void test_limit_exceeded(Env *env) {
        Outcome o;

        reset_user(env);
        give_key(env, "AKIAOLD0000000000001", time(NULL) - 3600);
        env->fake.fail_action = "CreateAccessKey";
        env->fake.fail_code = "LimitExceeded";
        env->fake.fail_times = 1;
        o = run(env, ROTATION_FORCE);
        ok(o.outcome == ROTATION_COMPLETED, "LimitExceeded is resolved by listing, then the create is retried (%s)",
           o.error);
        ok(fake_aws_count(&env->fake, "CreateAccessKey") == 2 && fake_aws_count(&env->fake, "ListAccessKeys") == 2,
           "list, create (refused), list, create");
        ok(env->fake.n_keys == 1 && streq(env->fake.keys[0].id, o.new_key_id), "only the new key is left");

        /* Refused every time: the run gives up after a few creates. */
        reset_user(env);
        give_key(env, "AKIAOLD0000000000001", time(NULL) - 3600);
        env->fake.fail_action = "CreateAccessKey";
        env->fake.fail_code = "LimitExceeded";
        env->fake.fail_times = 100;
        o = run(env, ROTATION_FORCE);
        ok(o.outcome == ROTATION_FAILED && strstr(o.error, "LimitExceeded"), "fails after the attempts: %s", o.error);
        ok(fake_aws_count(&env->fake, "CreateAccessKey") == 3, "three creates at most");
        ok(env->fake.n_keys == 1 && fake_aws_count(&env->fake, "UpdateAccessKey") == 0 &&
                   fake_aws_count(&env->fake, "DeleteAccessKey") == 0,
           "nothing created, nothing touched");
        const StoreUser *su = store_get_user(env->store, USER);
        ok(su && su->phase == STORE_PHASE_IDLE && su->failures == 1, "store back to idle, the failure counted");
}

/* The answer to CreateAccessKey is lost after IAM made the key: the keys
 * are listed, the one whose secret keyrotd never saw (and that was never
 * used) is deleted, and the create is tried again. */
static void test_lost_create_answer(Env *env) {
        Outcome o;

        reset_user(env);
        give_key(env, "AKIAOLD0000000000001", time(NULL) - 3600);
        env->fake.fail_action = "CreateAccessKey";
        env->fake.fail_after_acting = true;
        env->fake.fail_times = 1;
        o = run(env, ROTATION_FORCE);
        ok(o.outcome == ROTATION_COMPLETED, "the rotation goes through (%s)", o.error);
        ok(fake_aws_count(&env->fake, "GetAccessKeyLastUsed AKIAFAKENEW000000001") == 1,
           "asked whether the unknown key was used");
        ok(fake_aws_count(&env->fake, "DeleteAccessKey AKIAFAKENEW000000001") == 1, "deleted the orphan");
        ok(env->fake.n_keys == 1 && streq(env->fake.keys[0].id, "AKIAFAKENEW000000002") &&
                   streq(o.new_key_id, "AKIAFAKENEW000000002"),
           "the second create's key is the only one left, and keyrotd holds it");

        /* A 5xx after IAM acted: the same. */
        reset_user(env);
        give_key(env, "AKIAOLD0000000000001", time(NULL) - 3600);
        env->fake.fail_action = "CreateAccessKey";
        env->fake.fail_code = "InternalFailure";
        env->fake.fail_after_acting = true;
        env->fake.fail_times = 1;
        o = run(env, ROTATION_FORCE);
        ok(o.outcome == ROTATION_COMPLETED && env->fake.n_keys == 1, "a 5xx after the create: no orphan left");

        /* Throttled: nothing was done, the transport tries again. */
        reset_user(env);
        give_key(env, "AKIAOLD0000000000001", time(NULL) - 3600);
        env->fake.fail_action = "CreateAccessKey";
        env->fake.fail_code = "Throttling";
        env->fake.fail_times = 1;
        o = run(env, ROTATION_FORCE);
        ok(o.outcome == ROTATION_COMPLETED && fake_aws_count(&env->fake, "ListAccessKeys") == 1,
           "a throttled create is sent again without listing the keys");
}

static void test_grace_and_rollback(Env *env) {
        Outcome o;

        reset_user(env);
        load_inventory(env, NULL, "1h");
        give_key(env, "AKIAOLD0000000000001", time(NULL) - 3600);
        o = run(env, ROTATION_FORCE);
        ok(o.outcome == ROTATION_COMPLETED && o.in_grace, "with grace, the old key waits Inactive");
        ok(fake_aws_find(&env->fake, "AKIAOLD0000000000001") && !fake_aws_find(&env->fake, "AKIAOLD0000000000001")->active,
           "old key Inactive in IAM");
        const StoreUser *su = store_get_user(env->store, USER);
        ok(su && su->phase == STORE_PHASE_DEACTIVATED, "store: deactivated");

        fake_aws_reset_calls(&env->fake);
        o = run(env, 0);
        ok(o.outcome == ROTATION_NOT_DUE && o.in_grace && fake_aws_mutations(&env->fake) == 0,
           "a run in grace waits");

        fake_aws_reset_calls(&env->fake);
        o = run(env, ROTATION_ROLLBACK);
        ok(o.outcome == ROTATION_COMPLETED, "rollback completes (%s)", o.error);
        ok(fake_aws_count(&env->fake, "UpdateAccessKey AKIAOLD0000000000001 Active") == 1, "old key re-activated");
        ok(fake_aws_count(&env->fake, "S3 GET AKIAOLD0000000000001") == 3 &&
                   fake_aws_count(&env->fake, "IAM ListAccessKeys as AKIAOLD0000000000001") == 0,
           "...and verified again like a new key, three checks, without the deny probes");
        ok(fake_aws_count(&env->fake, "UpdateAccessKey AKIAFAKENEW000000001 Inactive") == 1 &&
                   fake_aws_count(&env->fake, "DeleteAccessKey") == 0,
           "the rolled-back key is deactivated, not deleted: it waits out its grace");
        ok(file_has(env, "credentials", "aws_access_key_id = AKIAOLD0000000000001"), "targets hold the old key");
        su = store_get_user(env->store, USER);
        ok(su && su->phase == STORE_PHASE_DEACTIVATED && streq(su->current.access_key_id, "AKIAOLD0000000000001") &&
                   streq(su->previous.access_key_id, "AKIAFAKENEW000000001"),
           "store: the old key current again, the rolled-back key previous, in grace");
        ok(su && streq_ptr(su->last_result, "rolled back") && su->failures == 0, "last result: rolled back");

        /* Rotate now, inside that grace: the rolled-back key goes first. */
        fake_aws_reset_calls(&env->fake);
        o = run(env, ROTATION_FORCE);
        ok(o.outcome == ROTATION_COMPLETED && fake_aws_count(&env->fake, "DeleteAccessKey AKIAFAKENEW000000001") == 1 &&
                   fake_aws_count(&env->fake, "CreateAccessKey") == 1,
           "rotate now in a grace: the previous old key deleted, then a new rotation");
        load_inventory(env, NULL, NULL);
}

/* ---- every row of the decision table, acted on ------------------------ */

/* Build the row's store record and IAM keys, with the real store. */
static int setup_row(Env *env, const Row *r, usec_t now) {
        usec_t phase_since = now - 10 * USEC_PER_MINUTE;
        usec_t created = r->due ? now - 90 * USEC_PER_DAY - USEC_PER_DAY : now - USEC_PER_DAY;
        const struct {
                const char *spec;
                usec_t created;
        } slots[3] = { { r->cur, created }, { r->pend, phase_since }, { r->prev, now - 200 * USEC_PER_DAY } };
        StoreUser *su = NULL;
        int k;

        reset_user(env);
        if (!r->no_record) {
                k = store_add_user(env->store, USER, &su);
                if (k < 0)
                        return k;
                su->phase = r->phase;
                su->phase_since = (int64_t) phase_since;
                su->grace_until = (int64_t) (r->in_grace ? now + 30 * USEC_PER_MINUTE : now - USEC_PER_MINUTE);
                snprintf(su->rotation_id, sizeof su->rotation_id, "%s",
                         r->phase == STORE_PHASE_IDLE ? "" : "00000000-0000-4000-8000-000000000000");
                if (r->parked) {
                        su->distributed_at = (int64_t) (now - USEC_PER_HOUR);
                        su->drain_next = (int64_t) (now - USEC_PER_SEC);
                }
        }
        StoreKey *dst[3] = { su ? &su->current : NULL, su ? &su->pending : NULL, su ? &su->previous : NULL };
        for (size_t i = 0; su && i < 3; i++) {
                char secret[41];

                if (!slots[i].spec)
                        continue;
                secret_of(key_id(slots[i].spec[0]), secret);
                k = store_key_set(dst[i], key_id(slots[i].spec[0]), slots[i].spec[1] == '!' ? NULL : secret,
                                  slots[i].spec[1] == '!' ? 0 : strlen(secret), (int64_t) slots[i].created);
                if (k < 0)
                        return k;
        }
        for (const char *p = r->iam; p && *p;) {
                const char *id = key_id(p[0]);
                bool active = p[1] == '+';
                usec_t when = now - 365 * USEC_PER_DAY;
                char secret[41];

                for (size_t i = 0; i < 3; i++)
                        if (slots[i].spec && slots[i].spec[0] == p[0])
                                when = slots[i].created;
                p += 2;
                if (*p == '*')
                        when = phase_since + USEC_PER_MINUTE;
                while (*p == '*' || *p == ' ')
                        p++;
                secret_of(id, secret);
                fake_aws_add_key(&env->fake, id, secret, active, (time_t) (when / USEC_PER_SEC));
                if (r->orphan == ORPHAN_USE_USED && (id[4] == 'U'))
                        fake_aws_find(&env->fake, id)->last_used = time(NULL) - 60;
        }
        return su ? store_commit(env->store) : 0;
}

/* What decide() says, and after each undo what it says next, as plain data. */
/* Key ids point into this function's copies: they are copied out (deleted,
 * last_key) and cleared in the decisions returned. */
static void expected_chain(Env *env, const Row *r, usec_t now, Decision *first, Decision *last, char deleted[][32],
                           size_t *n_deleted, char last_key[static 32]) {
        StoreUser *real = store_get_user(env->store, USER);
        StoreUser view = real ? *real : (StoreUser) { .phase = STORE_PHASE_IDLE };
        AccessKeyMeta metas[FAKE_MAX_KEYS] = {};
        ListAccessKeysResult keys = { .keys = metas, .n_keys = env->fake.n_keys };
        DecisionInput in = {
                .iu = &env->inv->users[0],
                .su = &view,
                .keys = &keys,
                .flags = r->flags,
                .now = now,
                .orphan_use = r->orphan == ORPHAN_USE_USED ? ORPHAN_USE_USED : ORPHAN_USE_NEVER,
        };

        for (size_t i = 0; i < env->fake.n_keys; i++) {
                snprintf(metas[i].access_key_id, sizeof metas[i].access_key_id, "%s", env->fake.keys[i].id);
                metas[i].status = env->fake.keys[i].active ? KEY_STATUS_ACTIVE : KEY_STATUS_INACTIVE;
                metas[i].create_date = env->fake.keys[i].created;
        }
        *n_deleted = 0;
        decide(&in, first);
        *last = *first;
        for (unsigned round = 0; round < 8; round++) {
                if (last->action == DECISION_CHECK_ORPHAN) {
                        decide(&in, last);
                        continue;
                }
                if (!decision_then_decides(last->action))
                        break;
                if (last->key_id && last->action != DECISION_RESET)
                        snprintf(deleted[(*n_deleted)++], 32, "%s", last->key_id);
                decision_assume(last, &view, &keys);
                decide(&in, last);
        }
        snprintf(last_key, 32, "%s", last->key_id ?: "");
        first->key_id = last->key_id = NULL;
}

static void test_rows(Env *env) {
        char action[32], reason[1024], call[96];

        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                const Row *r = &rows[i];
                usec_t now = now_usec(CLOCK_REALTIME);
                Decision first, last;
                char deleted[8][32], last_key[32];
                size_t n_deleted;
                bool dry_runnable = (r->flags & ~(unsigned) ROTATION_FORCE) == 0;
                Outcome o;

                if (r->phase >= _STORE_PHASE_MAX)
                        continue; /* the store cannot hold it */
                if (setup_row(env, r, now) < 0) {
                        ok(false, "%s: set up", r->name);
                        continue;
                }
                expected_chain(env, r, now, &first, &last, deleted, &n_deleted, last_key);

                if (dry_runnable) {
                        /* The dry run and the engine read the same decide(). */
                        static const char *const plan_names[] = {
                                [DECISION_NONE] = "none",          [DECISION_ROTATE] = "rotate",
                                [DECISION_CHECK_ORPHAN] = "undo",  [DECISION_DELETE_ORPHAN] = "undo",
                                [DECISION_UNDO] = "undo",          [DECISION_RESET] = "undo",
                                [DECISION_DISTRIBUTE] = "finish",  [DECISION_NOTIFY] = "finish",
                                [DECISION_DRAIN] = "finish",       [DECISION_DELETE_OLD] = "delete-old",
                                [DECISION_WAIT] = "wait",          [DECISION_COMPLETE] = "finish",
                                [DECISION_ROLLBACK] = "finish",    [DECISION_ROLLBACK_FINISH] = "finish",
                                [DECISION_ROLLBACK_ABANDON] = "blocked", [DECISION_FAIL] = "blocked",
                                [DECISION_NOT_APPLICABLE] = "blocked",
                        };
                        const char *want = plan_names[first.action];

                        if (first.action == DECISION_CHECK_ORPHAN)
                                want = last.action == DECISION_FAIL ? "blocked" : "undo";
                        else if (decision_then_decides(first.action) && last.action == DECISION_FAIL)
                                want = "blocked";
                        fake_aws_reset_calls(&env->fake);
                        int k = plan(env, r->flags & ROTATION_FORCE, action, sizeof action, reason, sizeof reason);
                        ok(k >= 0 && streq(action, want), "%s: dry run plans %s", r->name, want);
                        if (!streq(action, want))
                                diag("dry run: %s: %s", action, reason);
                        ok(fake_aws_mutations(&env->fake) == 0, "%s: the dry run changes nothing", r->name);
                }

                fake_aws_reset_calls(&env->fake);
                o = run(env, r->flags);
                switch (last.action) {
                case DECISION_NONE:
                case DECISION_WAIT:
                        ok(o.outcome == ROTATION_NOT_DUE, "%s: the run does nothing more", r->name);
                        break;
                case DECISION_ROTATE:
                        ok(o.outcome == ROTATION_COMPLETED && fake_aws_count(&env->fake, "CreateAccessKey") == 1,
                           "%s: the run rotates", r->name);
                        break;
                case DECISION_DELETE_OLD:
                        snprintf(call, sizeof call, "DeleteAccessKey %s", last_key);
                        ok(o.outcome == ROTATION_COMPLETED && fake_aws_count(&env->fake, call) == 1,
                           "%s: the run deletes the old key", r->name);
                        break;
                case DECISION_DISTRIBUTE:
                case DECISION_NOTIFY:
                case DECISION_DRAIN:
                case DECISION_COMPLETE:
                case DECISION_ROLLBACK:
                case DECISION_ROLLBACK_FINISH:
                        ok(o.outcome == ROTATION_COMPLETED && fake_aws_count(&env->fake, "CreateAccessKey") == 0,
                           "%s: the run finishes what was begun", r->name);
                        break;
                default: /* FAIL, ROLLBACK_ABANDON, NOT_APPLICABLE */
                        ok(o.outcome == ROTATION_FAILED && fake_aws_count(&env->fake, "CreateAccessKey") == 0,
                           "%s: the run refuses", r->name);
                        break;
                }
                if (o.outcome == ROTATION_FAILED && last.action != DECISION_FAIL &&
                    last.action != DECISION_ROLLBACK_ABANDON && last.action != DECISION_NOT_APPLICABLE)
                        diag("%s: %s", r->name, o.error);
                for (size_t d = 0; d < n_deleted; d++) {
                        snprintf(call, sizeof call, "DeleteAccessKey %s", deleted[d]);
                        ok(fake_aws_count(&env->fake, call) == 1, "%s: the undo deletes %s", r->name, deleted[d]);
                }
                if (last.action == DECISION_FAIL && first.action != DECISION_FAIL)
                        ok(strstr(o.error, last.reason) != NULL, "%s: the run fails for decide()'s reason", r->name);
                else if (first.action == DECISION_FAIL)
                        ok(strstr(o.error, first.reason) != NULL, "%s: the run fails for decide()'s reason", r->name);
        }
}

int main(void) {
        Env env = {};
        sigset_t mask;

        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        if (secret_init() < 0 || env_setup(&env) < 0) {
                ok(false, "set up the engine with a fake IAM");
                return tap_done();
        }
        test_full_rotation(&env);
        test_not_due(&env);
        test_commit_waiters(&env);
        test_expiration_holds_deactivation(&env);
        test_drain_sees_consumers_leave(&env);
        test_propagation(&env);
        test_access_denied(&env);
        test_over_privileged(&env);
        test_limit_exceeded(&env);
        test_lost_create_answer(&env);
        test_grace_and_rollback(&env);
        test_rows(&env);
        env_done(&env);
        return tap_done();
}

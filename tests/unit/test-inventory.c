/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/duration.h"
#include "basic/util.h"
#include "inventory/inventory.h"
#include "tap.h"

static char tmpdir[PATH_MAX];

/* A user that is valid on its own, to prefix tests that are about something else. */
#define HEAD "version: 1\n"
#define USER_A "  - name: a\n    verify: {bucket: bucket-a}\n"

static void skip(const char *why) {
        tap_n++;
        printf("ok %u # SKIP %s\n", tap_n, why);
        fflush(stdout);
}

static void dump(const InventoryErrors *e) {
        for (size_t i = 0; i < e->n; i++)
                diag("  %s", e->lines[i]);
}

static bool has_line(const InventoryErrors *e, const char *want) {
        for (size_t i = 0; i < e->n; i++)
                if (streq(e->lines[i], want))
                        return true;
        return false;
}

static int load(const char *text, Inventory **ret, InventoryErrors *e) {
        return inventory_load_string("t.yaml", text, strlen(text), ret, e);
}

/* Loading @text fails with exactly the line @want among the errors. */
static void expect_error(const char *text, const char *want) {
        _cleanup_inventory_errors_ InventoryErrors e = {};
        Inventory *inv = NULL;
        int r = load(text, &inv, &e);

        if (!ok(r == -EINVAL && !inv && has_line(&e, want), "refused: %s", want)) {
                diag("r=%d, %zu errors:", r, e.n);
                dump(&e);
        }
        inventory_free(inv);
}

static const InventoryUser *expect_ok(const char *text, Inventory **ret, const char *name) {
        _cleanup_inventory_errors_ InventoryErrors e = {};
        int r = load(text, ret, &e);

        if (!ok(r == 0 && *ret && e.n == 0, "parses: %s", name)) {
                diag("r=%d", r);
                dump(&e);
                return NULL;
        }
        return (*ret)->n_users > 0 ? &(*ret)->users[0] : NULL;
}

static char *pathf(const char *name) {
        static char buf[4][PATH_MAX];
        static unsigned i;
        char *p = buf[i++ % 4];

        if (snprintf(p, PATH_MAX, "%s/%s", tmpdir, name) >= PATH_MAX)
                abort();
        return p;
}

static int put(const char *path, const void *content, size_t len, mode_t mode) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        if (fd < 0)
                return -errno;
        if (write(fd, content, len) != (ssize_t) len || fchmod(fd, mode) < 0) {
                close(fd);
                return -EIO;
        }
        close(fd);
        return 0;
}

static char *read_all(const char *path, size_t *len) {
        FILE *f = fopen(path, "re");
        char *buf;
        long n;

        if (!f)
                return NULL;
        fseek(f, 0, SEEK_END);
        n = ftell(f);
        rewind(f);
        buf = malloc((size_t) n + 1);
        if (buf && fread(buf, 1, (size_t) n, f) != (size_t) n) {
                free(buf);
                buf = NULL;
        }
        fclose(f);
        if (buf) {
                buf[n] = '\0';
                *len = (size_t) n;
        }
        return buf;
}

/* conf/inventory.yaml, found from this file's path or KEYROTD_SOURCE_DIR. */
static char *example_path(void) {
        static char p[PATH_MAX];
        const char *src = getenv("KEYROTD_SOURCE_DIR");
        const char *slash;

        if (src) {
                snprintf(p, sizeof(p), "%s/conf/inventory.yaml", src);
                return p;
        }
        slash = strrchr(__FILE__, '/');
        snprintf(p, sizeof(p), "%.*s/../../conf/inventory.yaml", slash ? (int) (slash - __FILE__) : 1,
                 slash ? __FILE__ : ".");
        return p;
}

static void test_durations(void) {
        static const struct {
                const char *s;
                usec_t want;
        } good[] = {
                { "0", 0 },
                { "0s", 0 },
                { "1", USEC_PER_SEC },
                { "3600", USEC_PER_HOUR },
                { "1s", USEC_PER_SEC },
                { "10m", 10 * USEC_PER_MINUTE },
                { "90d", 90 * USEC_PER_DAY },
                { "2w", 14 * USEC_PER_DAY },
                { "1h30m", USEC_PER_HOUR + 30 * USEC_PER_MINUTE },
                { "1h 30m", USEC_PER_HOUR + 30 * USEC_PER_MINUTE },
                { "90m", 90 * USEC_PER_MINUTE },
                { "1h90m", USEC_PER_HOUR + 90 * USEC_PER_MINUTE },
                { "1w 2d 3h 4m 5s", 9 * USEC_PER_DAY + 3 * USEC_PER_HOUR + 4 * USEC_PER_MINUTE + 5 * USEC_PER_SEC },
                { "007m", 7 * USEC_PER_MINUTE },
                { "18446744073708s", 18446744073708ULL * USEC_PER_SEC },
        };
        static const struct {
                const char *s;
                int want;
        } bad[] = {
                { "", -EINVAL },
                { "-1h", -EINVAL },
                { "+1h", -EINVAL },
                { "-0", -EINVAL },
                { "1.5h", -EINVAL },
                { "1H", -EINVAL },
                { "h", -EINVAL },
                { "1x", -EINVAL },
                { "1ms", -EINVAL },
                { "1h1h", -EINVAL },
                { "30m1h", -EINVAL },
                { "1h30", -EINVAL },
                { " 1h", -EINVAL },
                { "1h ", -EINVAL },
                { "1h  30m", -EINVAL },
                { "1 h", -EINVAL },
                { "1d,2h", -EINVAL },
                { "0x10", -EINVAL },
                { "1e3", -EINVAL },
                { "infinity", -EINVAL },
                { "18446744073710s", -ERANGE },
                { "18446744073710", -ERANGE },
                { "99999999999999999999", -ERANGE },
                { "99999999999999999999s", -ERANGE },
                { "30600000w", -ERANGE },
                { "30000000w 6000000d", -ERANGE },
        };
        static const struct {
                usec_t u;
                unsigned units;
                const char *want;
        } fmt[] = {
                { 0, 0, "0" },
                { USEC_PER_SEC, 0, "1s" },
                { 500 * USEC_PER_MSEC, 0, "<1s" },
                { USEC_PER_SEC + 500 * USEC_PER_MSEC, 0, "1s" },
                { 3 * USEC_PER_DAY + 4 * USEC_PER_HOUR, 0, "3d 4h" },
                { USEC_PER_HOUR + 30 * USEC_PER_MINUTE, 0, "1h 30m" },
                { 90 * USEC_PER_DAY, 0, "12w 6d" },
                { 9 * USEC_PER_DAY + 3 * USEC_PER_HOUR + 4 * USEC_PER_MINUTE + 5 * USEC_PER_SEC, 0, "1w 2d 3h 4m 5s" },
                { 3 * USEC_PER_DAY + 4 * USEC_PER_HOUR + 5 * USEC_PER_MINUTE, 2, "3d 4h" },
                { 3 * USEC_PER_DAY + 5 * USEC_PER_MINUTE, 2, "3d 5m" },
                { 3 * USEC_PER_DAY + 4 * USEC_PER_HOUR, 1, "3d" },
                { USEC_INFINITY, 0, "infinity" },
        };
        char buf[DURATION_STRING_MAX];

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                usec_t u = 1;
                int r = parse_duration(good[i].s, &u);

                ok(r == 0 && u == good[i].want, "duration '%s' = %llu (got r=%d %llu)", good[i].s,
                   (unsigned long long) good[i].want, r, (unsigned long long) u);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                usec_t u = 42;
                int r = parse_duration(bad[i].s, &u);

                ok(r == bad[i].want && u == 42, "duration '%s' refused with %d (got %d), output untouched", bad[i].s,
                   bad[i].want, r);
        }
        ok(parse_duration(NULL, &(usec_t) { 0 }) == -EINVAL, "NULL duration refused");

        for (size_t i = 0; i < ELEMENTSOF(fmt); i++)
                ok_eq_str(format_duration_approx(fmt[i].u, fmt[i].units, buf, sizeof(buf)), fmt[i].want, fmt[i].want);
        ok_eq_str(format_duration(USEC_INFINITY - 1, buf, sizeof(buf)), "30500568w 6d 8h 1m 49s",
                  "largest finite duration fits DURATION_STRING_MAX");
        ok(format_duration(3 * USEC_PER_DAY + 4 * USEC_PER_HOUR, buf, 5) == NULL && buf[0] == '\0',
           "too small a buffer gives NULL and an empty string");
        ok(format_duration(0, buf, 0) == NULL, "zero-size buffer");

        /* Everything format_duration() prints (whole seconds) parses back. */
        {
                const usec_t samples[] = { USEC_PER_SEC, 59 * USEC_PER_SEC, 90 * USEC_PER_DAY, 1234567 * USEC_PER_SEC,
                                           (USEC_INFINITY - 1) / USEC_PER_SEC * USEC_PER_SEC };
                bool all = true;

                for (size_t i = 0; i < ELEMENTSOF(samples); i++) {
                        usec_t u = 0;

                        if (!format_duration(samples[i], buf, sizeof(buf)) || parse_duration(buf, &u) < 0 ||
                            u != samples[i]) {
                                diag("round trip of %llu failed at '%s'", (unsigned long long) samples[i], buf);
                                all = false;
                        }
                }
                ok(all, "format_duration output parses back to the same value");
        }
}

static void test_example(void) {
        _cleanup_inventory_errors_ InventoryErrors e = {};
        _cleanup_inventory_ Inventory *inv = NULL;
        _cleanup_free_ char *text = NULL;
        const InventoryUser *b, *r;
        size_t len = 0;
        int k;

        text = read_all(example_path(), &len);
        if (!ok(text != NULL, "read the example %s", example_path()))
                return;
        k = inventory_load_string("conf/inventory.yaml", text, len, &inv, &e);
        if (!ok(k == 0 && inv && e.n == 0, "conf/inventory.yaml parses cleanly")) {
                dump(&e);
                return;
        }

        ok_eq_str(inv->source, "conf/inventory.yaml", "source name kept");
        ok_eq_str(inv->aws.region, "us-east-1", "aws.region");
        ok_eq_str(inv->aws.endpoint_url, "https://iam.example.internal", "aws.endpoint_url");
        ok_eq_str(inv->aws.profile, "keyrotd", "aws.credentials.profile");
        ok_eq_str(inv->aws.shared_file, "/etc/keyrotd/aws-credentials", "aws.credentials.shared_file");
        ok(inv->defaults.max_age == 90 * USEC_PER_DAY && inv->defaults.grace == USEC_PER_HOUR &&
           inv->defaults.max_parallel == 8 && inv->defaults.splay == 10 * USEC_PER_MINUTE &&
           inv->defaults.alert_after == 3 && inv->defaults.audit_every == USEC_PER_DAY &&
           inv->defaults.hook_timeout == 30 * USEC_PER_SEC && inv->defaults.drain.enabled &&
           inv->defaults.drain.wait == USEC_PER_HOUR && inv->defaults.drain.settle == 5 * USEC_PER_MINUTE &&
           inv->defaults.drain.on_timeout == DRAIN_TIMEOUT_KEEP && inv->defaults.credentials_ttl == USEC_PER_HOUR,
           "defaults land");
        ok(inv->defaults.verify.timeout == 120 * USEC_PER_SEC && inv->defaults.verify.consecutive == 3 &&
           inv->defaults.verify.interval == USEC_PER_SEC && inv->defaults.verify.deny_probe &&
           !inv->defaults.verify.deny_bucket && !inv->defaults.verify.bucket,
           "defaults.verify lands");
        ok_eq_str(inv->store.path, "/var/lib/keyrotd/store.sealed", "store.path");
        ok_eq_str(inv->store.key_file, "/etc/keyrotd/store.key", "store.key_file");
        if (!ok(inv->n_users == 2, "two users"))
                return;

        b = inventory_find_user(inv, "backup-bot");
        r = inventory_find_user(inv, "reports-uploader");
        ok(b == &inv->users[0] && r == &inv->users[1], "find_user finds both, in file order");
        ok(!inventory_find_user(inv, "Backup-Bot") && !inventory_find_user(inv, "nobody") &&
           !inventory_find_user(NULL, "backup-bot") && !inventory_find_user(inv, NULL),
           "find_user is exact and NULL-safe");

        ok(b->max_age == 30 * USEC_PER_DAY, "backup-bot: own max_age wins");
        ok(b->grace == USEC_PER_HOUR && b->hook_timeout == 30 * USEC_PER_SEC && b->drain.enabled &&
                   b->drain.settle == 5 * USEC_PER_MINUTE,
           "backup-bot: grace, hook_timeout, drain inherited");
        ok_eq_str(b->verify.bucket, "backup-bucket", "backup-bot: verify.bucket");
        ok(b->verify.check == VERIFY_CHECK_LIST && !b->verify.check_key, "backup-bot: check list");
        ok(b->verify.timeout == 120 * USEC_PER_SEC && b->verify.consecutive == 3 &&
           b->verify.interval == USEC_PER_SEC && b->verify.deny_probe && !b->verify.deny_bucket,
           "backup-bot: verify settings inherited");
        if (ok(b->n_targets == 2, "backup-bot: two targets")) {
                const InventoryTarget *t = &b->targets[0], *u = &b->targets[1];

                const struct passwd *pw = getpwnam("backup");
                const struct group *gr = getgrnam("backup");

                ok(t->type == TARGET_CREDENTIALS_FILE && streq(t->path, "/home/backup/.aws/credentials") &&
                   streq_ptr(t->profile, "default") && pw && t->uid == pw->pw_uid && gr && t->gid == gr->gr_gid &&
                   t->mode == 0600,
                   "backup-bot: credentials-file target, owner and group by name");
                ok(u->type == TARGET_ENV_FILE && streq(u->path, "/etc/backup/aws.env") && !u->profile &&
                   u->uid == UID_INVALID && u->gid == GID_INVALID && u->mode == 0600,
                   "backup-bot: env-file target with defaults");
        }
        ok(b->on_rotate && streq(b->on_rotate[0], "/usr/bin/systemctl") && streq(b->on_rotate[1], "try-reload-or-restart") &&
           streq(b->on_rotate[2], "backup.service") && !b->on_rotate[3],
           "backup-bot: on_rotate argv");
        ok(b->on_failure && streq(b->on_failure[0], "/usr/local/bin/page-oncall") &&
           streq(b->on_failure[1], "backup-bot") && !b->on_failure[2],
           "backup-bot: on_failure argv");

        ok(r->max_age == 90 * USEC_PER_DAY && r->grace == 0 && !r->drain.enabled && r->hook_timeout == USEC_PER_MINUTE,
           "reports-uploader: grace 0, drain false, hook_timeout override; max_age inherited");
        ok(r->verify.check == VERIFY_CHECK_PUT && streq_ptr(r->verify.check_key, "keyrotd/verify-probe"),
           "reports-uploader: check put:KEY");
        ok(r->verify.timeout == 5 * USEC_PER_MINUTE && r->verify.consecutive == 5 &&
           r->verify.interval == 2 * USEC_PER_SEC && r->verify.deny_probe &&
           streq_ptr(r->verify.deny_bucket, "backup-bucket") && streq_ptr(r->verify.bucket, "reports.example.com"),
           "reports-uploader: every verify field overridden");
        if (ok(r->n_targets == 2, "reports-uploader: two targets")) {
                ok(r->targets[0].type == TARGET_JSON_FILE && r->targets[0].uid == 0 && r->targets[0].gid == 0 &&
                   r->targets[0].mode == 0640 && !r->targets[0].profile,
                   "reports-uploader: json-file target, owner and group by id and name, explicit 0640");
                ok(r->targets[1].type == TARGET_CREDENTIALS_FILE && streq_ptr(r->targets[1].profile, "reports") &&
                   r->targets[1].uid == b->targets[0].uid && r->targets[1].gid == b->targets[0].gid,
                   "reports-uploader: second profile in the shared credentials file, same owner");
        }
        ok(r->on_rotate && streq(r->on_rotate[0], "/usr/bin/systemctl") && !r->on_failure,
           "reports-uploader: on_rotate set, on_failure absent");

        /* The same file through inventory_load() (owned by us, mode 0600). */
        {
                _cleanup_inventory_ Inventory *inv2 = NULL;

                ok(put(pathf("example.yaml"), text, len, 0600) == 0 &&
                   inventory_load(pathf("example.yaml"), &inv2, NULL) == 0 && inv2 && inv2->n_users == 2 &&
                   streq(inv2->source, pathf("example.yaml")),
                   "inventory_load() reads the example from disk");
        }
}

static void test_builtin_defaults(void) {
        _cleanup_inventory_ Inventory *inv = NULL;
        const InventoryUser *u = expect_ok(HEAD "users:\n" USER_A, &inv, "minimal inventory");

        if (!u)
                return;
        ok_eq_str(inv->aws.region, "us-east-1", "built-in region");
        ok(!inv->aws.endpoint_url && !inv->aws.profile && !inv->aws.shared_file, "no endpoint, standard chain");
        ok(!inv->store.path, "store.path left NULL for the caller's default");
        ok_eq_str(inv->store.key_file, "/etc/keyrotd/store.key", "built-in key_file");
        ok(inv->defaults.max_parallel == 8 && inv->defaults.alert_after == 3 &&
           inv->defaults.splay == 10 * USEC_PER_MINUTE && inv->defaults.audit_every == USEC_PER_DAY,
           "built-in global defaults");
        ok(u->max_age == 90 * USEC_PER_DAY && u->grace == USEC_PER_HOUR && u->hook_timeout == 30 * USEC_PER_SEC &&
           u->drain.enabled && u->drain.wait == USEC_PER_HOUR && u->drain.settle == 5 * USEC_PER_MINUTE &&
           u->drain.on_timeout == DRAIN_TIMEOUT_KEEP && u->credentials_ttl == USEC_PER_HOUR && u->n_readers == 0,
           "user gets built-in defaults (drain on: wait 1h, settle 5m, keep; credentials_ttl 1h)");
        ok(u->verify.timeout == 120 * USEC_PER_SEC && u->verify.consecutive == 3 &&
           u->verify.interval == USEC_PER_SEC && u->verify.deny_probe && !u->verify.deny_bucket &&
           u->verify.check == VERIFY_CHECK_LIST && !u->verify.check_key,
           "user gets built-in verify defaults");
        ok(u->n_targets == 0 && !u->targets && !u->on_rotate && !u->on_failure, "no targets, no hooks");

        inventory_free(TAKE_PTR(inv));
        {
                const InventoryUser *d = expect_ok(HEAD "users:\n" USER_A "    drain: 30m\n", &inv, "drain as a duration");
                ok(d && d->drain.enabled && d->drain.wait == 30 * USEC_PER_MINUTE &&
                           d->drain.settle == 5 * USEC_PER_MINUTE,
                   "drain: 30m is drain.wait");
                inventory_free(TAKE_PTR(inv));
        }
        {
                const InventoryUser *d = expect_ok(HEAD "defaults: {drain: {settle: 10s}}\nusers:\n" USER_A
                                                        "    drain: {wait: 2m, on_timeout: deactivate}\n"
                                                        "    credentials_ttl: 5s\n",
                                                   &inv, "drain as a mapping");
                ok(d && d->drain.enabled && d->drain.wait == 2 * USEC_PER_MINUTE &&
                           d->drain.settle == 10 * USEC_PER_SEC && d->drain.on_timeout == DRAIN_TIMEOUT_DEACTIVATE &&
                           d->credentials_ttl == 5 * USEC_PER_SEC,
                   "drain mapping: the user's keys over the defaults', the rest inherited; credentials_ttl");
                inventory_free(TAKE_PTR(inv));
        }
        {
                const InventoryUser *d = expect_ok(HEAD "users:\n" USER_A "    readers: [root, '@root']\n", &inv,
                                                   "readers");
                ok(d && d->n_readers == 2 && !d->readers[0].group && d->readers[0].id == 0 && d->readers[1].group &&
                           d->readers[1].id == 0,
                   "readers: a user and an @group, resolved");
                inventory_free(TAKE_PTR(inv));
        }
        {
                const InventoryUser *d = expect_ok(HEAD "users:\n" USER_A "    buckets: [bucket-b, bucket-c]\n", &inv,
                                                   "further buckets");
                ok(d && strv_length(d->buckets) == 2 && streq(d->buckets[0], "bucket-b") &&
                           streq(d->buckets[1], "bucket-c"),
                   "buckets: kept in order");
                inventory_free(TAKE_PTR(inv));
        }
        expect_error(HEAD "users:\n" USER_A "    buckets: bucket-b\n",
                     "t.yaml:5:14: buckets must be a list of bucket names, not a single value");
        expect_error(HEAD "users:\n" USER_A "    buckets: [ok-bucket, Bad_Bucket]\n",
                     "t.yaml:5:26: invalid S3 bucket name 'Bad_Bucket' in buckets: it may contain only lowercase letters, "
                     "digits, '.' and '-'");
        expect_error(HEAD "users:\n" USER_A "    buckets: [ok-bucket, 123]\n",
                     "t.yaml:5:26: invalid S3 bucket name '123' in buckets: it must not consist of digits and dots "
                     "only (it would read as an IP address)");
        expect_error(HEAD "users:\n" USER_A "    buckets: [ok-bucket, {a: b}]\n",
                     "t.yaml:5:26: entries of buckets must be strings, not a mapping");
        expect_error(HEAD "users:\n" USER_A "    buckets: [bucket-b, bucket-b]\n",
                     "t.yaml:5:25: bucket 'bucket-b' listed twice in buckets");
        {
                char many[101 * 12 + 128] = HEAD "users:\n" USER_A "    buckets: [";

                for (int i = 0; i < 101; i++)
                        snprintf(many + strlen(many), sizeof(many) - strlen(many), "%sb-%03d", i ? ", " : "", i);
                strcat(many, "]\n");
                expect_error(many, "t.yaml:5:14: buckets has more than 100 entries");
        }
        expect_ok(HEAD, &inv, "an inventory without users");
        ok(inv && inv->n_users == 0, "zero users");
        inventory_free(TAKE_PTR(inv));
        expect_ok(HEAD "users:\ndefaults:\naws:\n", &inv, "empty sections");
        inventory_free(TAKE_PTR(inv));
        u = expect_ok(HEAD "users:\n" USER_A "    targets:\n    #  - {type: env-file, path: /x}\n    on_rotate:\n", &inv,
                      "empty targets and hook");
        ok(u && u->n_targets == 0 && !u->on_rotate, "null targets and on_rotate mean none");
}

static void test_inheritance(void) {
        _cleanup_inventory_ Inventory *inv = NULL;
        const InventoryUser *a, *b;

        /* users before defaults in the file: inheritance must not depend on order. */
        a = expect_ok(HEAD "users:\n"
                      "  - name: a\n    verify: {bucket: bucket-a}\n"
                      "  - name: b\n    max_age: 7d\n    grace: 0\n    drain: false\n    hook_timeout: 5s\n"
                      "    verify: {bucket: bucket-b, timeout: 10s, consecutive: 1, interval: 0, deny_probe: false,"
                      " deny_bucket: other-bucket, check: 'get:a/b c'}\n"
                      "defaults:\n  max_age: 30d\n  grace: 2h\n  drain: true\n  hook_timeout: 1m\n"
                      "  verify: {timeout: 1m, consecutive: 2, interval: 3s, deny_probe: true, deny_bucket: deny-me}\n",
                      &inv, "defaults after users");
        if (!a || !ok(inv->n_users == 2, "two users"))
                return;
        b = &inv->users[1];
        ok(a->max_age == 30 * USEC_PER_DAY && a->grace == 2 * USEC_PER_HOUR && a->drain.enabled &&
           a->hook_timeout == USEC_PER_MINUTE, "user a inherits defaults given later in the file");
        ok(a->verify.timeout == USEC_PER_MINUTE && a->verify.consecutive == 2 && a->verify.interval == 3 * USEC_PER_SEC &&
           a->verify.deny_probe && streq_ptr(a->verify.deny_bucket, "deny-me"),
           "user a inherits defaults.verify");
        ok(b->max_age == 7 * USEC_PER_DAY && b->grace == 0 && !b->drain.enabled && b->hook_timeout == 5 * USEC_PER_SEC,
           "user b overrides win (grace 0, drain false)");
        ok(b->verify.timeout == 10 * USEC_PER_SEC && b->verify.consecutive == 1 && b->verify.interval == 0 &&
           !b->verify.deny_probe && streq_ptr(b->verify.deny_bucket, "other-bucket"),
           "user b verify overrides win");
        ok(b->verify.check == VERIFY_CHECK_GET && streq_ptr(b->verify.check_key, "a/b c"), "check get:KEY keeps the key");
        ok(a->verify.deny_bucket != inv->defaults.verify.deny_bucket, "users own copies of inherited strings");
}

static void test_values(void) {
        _cleanup_inventory_ Inventory *inv = NULL;
        const InventoryUser *u;

        u = expect_ok(HEAD "users:\n  - name: \"A+=,.@_-z09\"\n    verify: {bucket: a.b-c, check: head}\n"
                      "    targets:\n      - {type: json-file, path: /x/y, mode: 600, owner: 1000, group: 4294967294}\n"
                      "      - {type: env-file, path: /x/z, mode: \"0\"}\n"
                      "      - {type: credentials-file, path: /x/y2, profile: p.1-x}\n"
                      "    on_rotate: [/bin/true, '', --flag]\n",
                      &inv, "edge values");
        if (!u)
                return;
        ok(u->verify.check == VERIFY_CHECK_HEAD && !u->verify.check_key, "check head");
        ok(u->n_targets == 3 && u->targets[0].mode == 0600 && u->targets[0].uid == 1000 &&
           u->targets[0].gid == 4294967294U && u->targets[1].mode == 0 && streq_ptr(u->targets[2].profile, "p.1-x"),
           "bare 600 is octal; numeric ids taken as given");
        ok(u->on_rotate && streq(u->on_rotate[1], "") && streq(u->on_rotate[2], "--flag"), "empty argument kept");
        inventory_free(TAKE_PTR(inv));

        /* 64-character user name is the maximum. */
        expect_ok(HEAD "users:\n  - name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
                  "    verify: {bucket: abc}\n", &inv, "64-character user name");
        inventory_free(TAKE_PTR(inv));
        {
                static const char *const loopback[] = {
                        "http://127.0.0.1:5000", "http://127.1.2.3",     "http://localhost:5000/",
                        "http://LOCALHOST",      "http://[::1]:5000",    "https://10.1.2.3:5000",
                        "https://iam.example.internal",
                };

                for (size_t i = 0; i < ELEMENTSOF(loopback); i++) {
                        char text[256];

                        snprintf(text, sizeof text, HEAD "aws: {endpoint_url: '%s'}\n", loopback[i]);
                        expect_ok(text, &inv, loopback[i]);
                        inventory_free(TAKE_PTR(inv));
                }
        }
        expect_ok("# comment\r\nversion: 1\r\n", &inv, "CRLF line ends");
        inventory_free(TAKE_PTR(inv));
        expect_ok("\xef\xbb\xbfversion: 1\n", &inv, "UTF-8 BOM");
        inventory_free(TAKE_PTR(inv));
        expect_ok("version: 1 # caf\xc3\xa9 \xe2\x9c\x93\nusers:\n" USER_A "    on_rotate: [/bin/true, \"caf\xc3\xa9\"]\n", &inv,
                  "non-ASCII UTF-8 in comments and arguments");
}

static const char *const plain_http[] = {
        "http://10.1.2.3:5000", "http://iam.example.internal", "http://127.0.0.1.nip.io:5000",
        "http://[::2]:5000",    "http://128.0.0.1",            "http://localhost.example.com",
        "http://0x7f000001/",
};

static void test_errors(void) {
        /* The classes of docs/DESIGN.md §3, with exact positions. */
        expect_error(HEAD "colour: blue\n",
                     "t.yaml:2:1: unknown key 'colour' in the top level (expected: version, aws, defaults, store, users)");
        expect_error(HEAD "users:\n  - name: a\n    verify: {bucket: bucket-a, buckett: x}\n",
                     "t.yaml:4:32: unknown key 'buckett' in a user's verify (expected: bucket, check, timeout, "
                     "consecutive, interval, deny_probe, deny_bucket)");
        expect_error(HEAD "defaults:\n  verify: {bucket: b}\n",
                     "t.yaml:3:12: unknown key 'bucket' in defaults.verify (expected: timeout, consecutive, interval, "
                     "deny_probe, deny_bucket)");
        expect_error("users: []\n", "t.yaml:1:1: the inventory has no 'version'");
        expect_error("version: 2\n", "t.yaml:1:10: unsupported inventory version '2' (this keyrotd reads version 1)");
        expect_error(HEAD "version: 1\n", "t.yaml:2:1: duplicate key 'version' in the top level (first given at 1:1)");
        expect_error(HEAD "users:\n" USER_A "  - name: a\n    verify: {bucket: bucket-b}\n",
                     "t.yaml:5:11: duplicate user 'a' (first defined at 3:11)");
        expect_error(HEAD "users:\n" USER_A "  - name: A\n    verify: {bucket: bucket-b}\n",
                     "t.yaml:5:11: duplicate user 'A': IAM user names ignore case, and 'a' is defined at 3:11");
        expect_error(HEAD "users:\n  - name: a\n    targets: []\n",
                     "t.yaml:3:5: user 'a' has no verify.bucket (the S3 bucket new keys are checked against)");
        expect_error(HEAD "users:\n  - name: a\n    verify: {check: head}\n",
                     "t.yaml:4:13: user 'a' has no verify.bucket (the S3 bucket new keys are checked against)");
        expect_error(HEAD "users:\n  - verify: {bucket: abc}\n", "t.yaml:3:5: a user has no 'name'");
        expect_error(HEAD "users:\n  - max_age: 1d\n",
                     "t.yaml:3:5: a user has no verify.bucket (the S3 bucket new keys are checked against)");
        expect_error(HEAD "users:\n  - alice\n", "t.yaml:3:5: a user must be a mapping, not a single value");
        expect_error(HEAD "users:\n" USER_A "    targets:\n      - type: env-file\n",
                     "t.yaml:6:9: a target has no 'path'");
        expect_error(HEAD "users:\n" USER_A "    targets:\n      - path: /x\n",
                     "t.yaml:6:9: a target has no 'type'");
        expect_error(HEAD "users:\n" USER_A "    targets:\n      - {type: yaml-file, path: /x}\n",
                     "t.yaml:6:16: unknown target type 'yaml-file' (expected credentials-file, env-file or json-file)");
        expect_error(HEAD "users:\n" USER_A "    targets:\n      - {type: env-file, path: etc/x}\n",
                     "t.yaml:6:32: path 'etc/x' is not an absolute path");
        expect_error(HEAD "users:\n" USER_A "    targets:\n      - {type: env-file, path: /etc/../x}\n",
                     "t.yaml:6:32: path '/etc/../x' contains a '.' or '..' component");
        expect_error(HEAD "users:\n" USER_A "    targets:\n      - {type: env-file, path: /etc/}\n",
                     "t.yaml:6:32: path '/etc/' names a directory, not a file");
        expect_error(HEAD "store: {key_file: store.key}\n", "t.yaml:2:19: key_file 'store.key' is not an absolute path");
        expect_error(HEAD "users:\n" USER_A "    targets:\n      - {type: env-file, path: /x, mode: \"0755\"}\n",
                     "t.yaml:6:42: mode 0755 has execute bits; credential files are never executable");
        expect_error(HEAD "users:\n" USER_A "    targets:\n      - {type: env-file, path: /x, mode: \"0640\"}\n"
                          "      - {type: env-file, path: /y, mode: 4600}\n",
                     "t.yaml:7:42: mode 4600 has setuid, setgid or sticky bits");
        expect_error(HEAD "users:\n" USER_A "    targets:\n      - {type: env-file, path: /x, mode: rw}\n",
                     "t.yaml:6:42: invalid mode 'rw' (an octal mode such as \"0600\")");
        expect_error(HEAD "users:\n" USER_A "    targets:\n      - {type: env-file, path: /x, mode: 0o600}\n",
                     "t.yaml:6:42: invalid mode '0o600' (an octal mode such as \"0600\")");
        expect_error(HEAD "users:\n" USER_A "    targets:\n      - {type: env-file, path: /x, profile: p}\n",
                     "t.yaml:6:45: profile applies only to credentials-file targets, not env-file");
        expect_error(HEAD "users:\n" USER_A "    targets:\n      - {type: env-file, path: /x, owner: no-such-user-zz}\n",
                     "t.yaml:6:43: unknown user 'no-such-user-zz' for owner");
        expect_error(HEAD "users:\n" USER_A "    targets:\n      - {type: env-file, path: /x, group: no-such-group-zz}\n",
                     "t.yaml:6:43: unknown group 'no-such-group-zz' for group");
        expect_error(HEAD "users:\n" USER_A "    targets:\n      - {type: env-file, path: /x, owner: 4294967295}\n",
                     "t.yaml:6:43: invalid user '4294967295' for owner (a name or a numeric id)");
        expect_error(HEAD "users:\n  - name: bad/name\n    verify: {bucket: abc}\n",
                     "t.yaml:3:11: invalid IAM user name 'bad/name': it may contain only letters, digits and +=,.@_-");
        expect_error(HEAD "users:\n  - name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
                          "    verify: {bucket: abc}\n",
                     "t.yaml:3:11: invalid IAM user name 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...': "
                     "it must be 1 to 64 characters long");
        expect_error(HEAD "users:\n  - name: \"\"\n    verify: {bucket: abc}\n",
                     "t.yaml:3:11: invalid IAM user name '': it must be 1 to 64 characters long");
        expect_error(HEAD "users:\n  - name:\n    verify: {bucket: abc}\n", "t.yaml:3:10: name needs a value");

        /* Durations. */
        expect_error(HEAD "defaults: {max_age: -1d}\n",
                     "t.yaml:2:21: invalid duration '-1d' for max_age (use s, m, h, d, w suffixes, e.g. 90d, 1h30m)");
        expect_error(HEAD "defaults: {grace: 1.5h}\n",
                     "t.yaml:2:19: invalid duration '1.5h' for grace (use s, m, h, d, w suffixes, e.g. 90d, 1h30m)");
        expect_error(HEAD "defaults: {max_age: 0}\n", "t.yaml:2:21: max_age must be longer than 0");
        expect_error(HEAD "defaults: {verify: {timeout: 0s}}\n", "t.yaml:2:30: timeout must be longer than 0");
        expect_error(HEAD "defaults: {max_age: 36501d}\n",
                     "t.yaml:2:21: duration '36501d' for max_age is too long (at most 100 years)");
        expect_error(HEAD "defaults: {max_age: 99999999999999999999d}\n",
                     "t.yaml:2:21: duration '99999999999999999999d' for max_age is too long (at most 100 years)");

        /* Verification that cannot succeed in time. */
        expect_error(HEAD "defaults:\n  verify: {timeout: 2s, consecutive: 3, interval: 1s}\n",
                     "t.yaml:3:11: verify timeout 2s is too short for 3 consecutive checks 1s apart (it must exceed 2s)");
        expect_error(HEAD "users:\n  - name: a\n    verify: {bucket: abc, interval: 1m}\n",
                     "t.yaml:4:13: verify timeout 2m is too short for 3 consecutive checks 1m apart (it must exceed 2m)");
        {
                _cleanup_inventory_ Inventory *inv = NULL;
                _cleanup_inventory_errors_ InventoryErrors e = {};

                /* Bad defaults are reported once, not again for every user inheriting them. */
                ok(load(HEAD "defaults: {verify: {timeout: 1s, interval: 1s}}\nusers:\n" USER_A, &inv, &e) == -EINVAL &&
                   e.n == 1, "bad verify defaults reported once");
                inventory_errors_clear(&e);
                if (!ok(load(HEAD "defaults: {verify: {timeout: 1s, interval: 1s}}\nusers:\n"
                                  "  - name: a\n    verify: {bucket: abc, consecutive: 1}\n", &inv, &e) == -EINVAL &&
                        !inv && e.n == 1 && startswith(e.lines[0], "t.yaml:2:20: verify timeout 1s"),
                        "a user whose own timing works is not blamed; the defaults still are"))
                        dump(&e);
        }

        /* Types and ranges. */
        expect_error(HEAD "users: {name: a}\n", "t.yaml:2:8: users must be a list, not a mapping");
        expect_error(HEAD "defaults: 5\n", "t.yaml:2:11: defaults must be a mapping, not a single value");
        expect_error(HEAD "aws: [region]\n", "t.yaml:2:6: aws must be a mapping, not a list");
        expect_error(HEAD "aws: {region: [a]}\n", "t.yaml:2:15: region must be a single value, not a list");
        expect_error(HEAD "defaults: {max_parallel: 0}\n",
                     "t.yaml:2:26: max_parallel must be a whole number from 1 to 256, not '0'");
        expect_error(HEAD "defaults: {max_parallel: 257}\n",
                     "t.yaml:2:26: max_parallel must be a whole number from 1 to 256, not '257'");
        expect_error(HEAD "defaults: {max_parallel: \"8\"}\n",
                     "t.yaml:2:26: max_parallel must be a whole number from 1 to 256, not '8'");
        expect_error(HEAD "defaults: {alert_after: -1}\n",
                     "t.yaml:2:25: alert_after must be a whole number from 1 to 1000, not '-1'");
        expect_error(HEAD "defaults: {drain: yes}\n",
                     "t.yaml:2:19: drain must be true, false, a duration (e.g. 30m) or a mapping of wait, settle "
                     "and on_timeout, not 'yes'");
        expect_error(HEAD "defaults: {drain: 0}\n",
                     "t.yaml:2:19: drain must be true, false, a duration (e.g. 30m) or a mapping of wait, settle "
                     "and on_timeout, not '0'");
        expect_error(HEAD "defaults: {drain: 'true'}\n",
                     "t.yaml:2:19: drain must be true, false, a duration (e.g. 30m) or a mapping of wait, settle "
                     "and on_timeout, not 'true'");
        expect_error(HEAD "defaults: {drain: {on_timeout: wait}}\n",
                     "t.yaml:2:32: on_timeout must be keep or deactivate, not 'wait'");
        expect_error(HEAD "defaults: {drain: {wait: 0}}\n",
                     "t.yaml:2:26: wait must be longer than 0");
        expect_error(HEAD "defaults: {credentials_ttl: 0}\n",
                     "t.yaml:2:29: credentials_ttl must be longer than 0");
        expect_error(HEAD "users:\n" USER_A "    readers: [no-such-user-here]\n",
                     "t.yaml:5:15: unknown user 'no-such-user-here' in readers");
        expect_error(HEAD "users:\n" USER_A "    readers: ['@']\n",
                     "t.yaml:5:15: invalid reader '@' in readers (a user name, or @ and a group name)");
        expect_error(HEAD "users:\n" USER_A "    readers: root\n",
                     "t.yaml:5:14: readers must be a list of user names and @group names, not a single value");
        expect_error(HEAD "aws: {region: US-EAST-1}\n", "t.yaml:2:15: invalid AWS region 'US-EAST-1' (e.g. us-east-1)");
        expect_error(HEAD "aws: {endpoint_url: ftp://x}\n",
                     "t.yaml:2:21: endpoint_url 'ftp://x' must start with http:// or https://");
        expect_error(HEAD "aws: {endpoint_url: 'https://u:p@host/'}\n",
                     "t.yaml:2:21: endpoint_url must not contain a user name or password");
        expect_error(HEAD "aws: {credentials: {profile: 'a b'}}\n",
                     "t.yaml:2:30: invalid profile name 'a b': it may contain only letters, digits and _.+/@:%-");
        expect_error(HEAD "aws: {credentials: {profile: DEFAULT}}\n",
                     "t.yaml:2:30: invalid profile name 'DEFAULT': it must not be \"DEFAULT\" (AWS tools read that "
                     "section as defaults, not as a profile)");
        expect_error(HEAD "users:\n" USER_A "    targets:\n      - {type: credentials-file, path: /x, profile: 'a]b'}\n",
                     "t.yaml:6:53: invalid profile name 'a]b': it may contain only letters, digits and _.+/@:%-");
        expect_error(HEAD "users:\n  - name: a\n    verify: {bucket: Bad_Bucket}\n",
                     "t.yaml:4:22: invalid S3 bucket name 'Bad_Bucket' for bucket: it may contain only lowercase letters, "
                     "digits, '.' and '-'");
        expect_error(HEAD "users:\n  - name: a\n    verify: {bucket: 192.168.1.1}\n",
                     "t.yaml:4:22: invalid S3 bucket name '192.168.1.1' for bucket: it must not consist of digits and dots "
                     "only (it would read as an IP address)");
        /* Names S3's own check refuses later, at every verification: refused here, with the rule. */
        expect_error(HEAD "users:\n  - name: a\n    verify: {bucket: '123'}\n",
                     "t.yaml:4:22: invalid S3 bucket name '123' for bucket: it must not consist of digits and dots "
                     "only (it would read as an IP address)");
        expect_error(HEAD "users:\n  - name: a\n    verify: {bucket: a.-b}\n",
                     "t.yaml:4:22: invalid S3 bucket name 'a.-b' for bucket: it must not contain \".-\" or \"-.\" "
                     "(no part between dots may begin or end with '-')");
        expect_error(HEAD "users:\n  - name: a\n    verify: {bucket: a-.b}\n",
                     "t.yaml:4:22: invalid S3 bucket name 'a-.b' for bucket: it must not contain \".-\" or \"-.\" "
                     "(no part between dots may begin or end with '-')");
        expect_error(HEAD "users:\n  - name: a\n    verify: {bucket: xn--abc}\n",
                     "t.yaml:4:22: invalid S3 bucket name 'xn--abc' for bucket: it must not start with \"xn--\" "
                     "(reserved by S3)");
        expect_error(HEAD "users:\n  - name: a\n    verify: {bucket: abc-s3alias}\n",
                     "t.yaml:4:22: invalid S3 bucket name 'abc-s3alias' for bucket: it must not end with "
                     "\"-s3alias\" (reserved for access point aliases)");
        expect_error(HEAD "defaults: {verify: {deny_bucket: abc--x-s3}}\n",
                     "t.yaml:2:34: invalid S3 bucket name 'abc--x-s3' for deny_bucket: it must not end with "
                     "\"--x-s3\" (reserved for directory buckets)");
        expect_error(HEAD "users:\n  - name: a\n    verify: {bucket: ab}\n",
                     "t.yaml:4:22: invalid S3 bucket name 'ab' for bucket: it must be 3 to 63 characters long");
        expect_error(HEAD "users:\n  - name: a\n    verify: {bucket: a..b}\n",
                     "t.yaml:4:22: invalid S3 bucket name 'a..b' for bucket: it must not contain \"..\"");
        expect_error(HEAD "users:\n  - name: a\n    verify: {bucket: abc, check: get}\n",
                     "t.yaml:4:34: check 'get' needs an object key: get:KEY");
        expect_error(HEAD "users:\n  - name: a\n    verify: {bucket: abc, check: 'put:'}\n",
                     "t.yaml:4:34: check 'put:' needs an object key: put:KEY");
        expect_error(HEAD "users:\n  - name: a\n    verify: {bucket: abc, check: 'list:x'}\n",
                     "t.yaml:4:34: check 'list' takes no object key");
        expect_error(HEAD "users:\n  - name: a\n    verify: {bucket: abc, check: delete}\n",
                     "t.yaml:4:34: invalid check 'delete' (expected list, head, get:KEY or put:KEY)");

        /* Hooks: argv lists, no shell. */
        expect_error(HEAD "users:\n" USER_A "    on_rotate: systemctl restart x\n",
                     "t.yaml:5:16: on_rotate must be a list of arguments (argv, run without a shell), not a single value");
        expect_error(HEAD "users:\n" USER_A "    on_failure: []\n", "t.yaml:5:17: on_failure is an empty command");
        expect_error(HEAD "users:\n" USER_A "    on_rotate: [bin/notify, x]\n",
                     "t.yaml:5:17: command 'bin/notify' of on_rotate is not an absolute path (use the program's "
                     "absolute path)");
        expect_error(HEAD "users:\n" USER_A "    on_rotate: [systemctl, restart, x]\n",
                     "t.yaml:5:17: command 'systemctl' of on_rotate is not an absolute path (use the program's "
                     "absolute path)");
        expect_error(HEAD "users:\n" USER_A "    on_failure: [/usr/../bin/true]\n",
                     "t.yaml:5:18: command '/usr/../bin/true' of on_failure contains a '.' or '..' component (use the "
                     "program's absolute path)");
        expect_error(HEAD "users:\n" USER_A "    targets:\n      - {type: env-file, path: /x/y, mode: \"0644\"}\n",
                     "t.yaml:6:44: mode 0644 is wider than 0640; a credential file is never writable by its group nor "
                     "readable or writable by others");
        expect_error(HEAD "users:\n" USER_A "    targets:\n      - {type: env-file, path: /x/y, mode: \"0660\"}\n",
                     "t.yaml:6:44: mode 0660 is wider than 0640; a credential file is never writable by its group nor "
                     "readable or writable by others");
        expect_error(HEAD "users:\n" USER_A "    targets:\n      - {type: env-file, path: /x/y, mode: \"0666\"}\n",
                     "t.yaml:6:44: mode 0666 is wider than 0640; a credential file is never writable by its group nor "
                     "readable or writable by others");
        expect_error(HEAD "users:\n" USER_A "    targets:\n"
                          "      - {type: credentials-file, path: /x/c, profile: a, owner: \"1000\"}\n"
                          "      - {type: credentials-file, path: /x/c, profile: b}\n",
                     "t.yaml:7:40: '/x/c' is also written by the target at 6:40, with another owner, group or mode; "
                     "targets of one file must agree on them");
        for (size_t i = 0; i < ELEMENTSOF(plain_http); i++) {
                char text[256], want[512];

                snprintf(text, sizeof text, HEAD "aws: {endpoint_url: '%s'}\n", plain_http[i]);
                snprintf(want, sizeof want,
                         "t.yaml:2:21: endpoint_url '%s' uses http:// to a host that is not a loopback address, which "
                         "would send signed requests and new secrets in clear text (use https://, or http:// only to "
                         "127.0.0.1, ::1 or localhost)",
                         plain_http[i]);
                expect_error(text, want);
        }
        expect_error(HEAD "users:\n" USER_A "    on_rotate: ['', x]\n", "t.yaml:5:17: the command of on_rotate is empty");
        expect_error(HEAD "users:\n" USER_A "    on_rotate: [x, [y]]\n",
                     "t.yaml:5:20: arguments of on_rotate must be strings, not a list");
        expect_error(HEAD "users:\n" USER_A "    on_rotate: [x, \"a\\x1b[31mb\"]\n",
                     "t.yaml:5:20: on_rotate contains a control character: 'a\\x1b[31mb'");
        expect_error(HEAD "users:\n" USER_A "    on_rotate: [x, \"a\\0b\"]\n",
                     "t.yaml:5:20: on_rotate contains a control character: 'a\\x00b'");

        /* Targets that would overwrite each other. */
        expect_error(HEAD "users:\n" USER_A "    targets:\n      - {type: env-file, path: /t/x}\n"
                          "  - name: b\n    verify: {bucket: bucket-b}\n    targets:\n"
                          "      - {type: json-file, path: /t/x}\n",
                     "t.yaml:10:33: '/t/x' is already written by the target at 6:32");
        expect_error(HEAD "users:\n" USER_A "    targets:\n      - {type: credentials-file, path: /t/c}\n"
                          "      - {type: credentials-file, path: /t/c, profile: default}\n",
                     "t.yaml:7:40: profile 'default' of '/t/c' is already written by the target at 6:40");

        /* Secrets, anywhere. */
        expect_error(HEAD "aws:\n  aws_secret_access_key: abc\n",
                     "t.yaml:3:3: 'aws_secret_access_key' looks like a secret: the inventory never holds secrets "
                     "(keyrotd keeps key material only in its sealed store)");
        expect_error(HEAD "users:\n" USER_A "    targets:\n      - {type: env-file, path: /x, secret: abc}\n",
                     "t.yaml:6:36: 'secret' looks like a secret: the inventory never holds secrets "
                     "(keyrotd keeps key material only in its sealed store)");
        expect_error(HEAD "extra:\n  deep:\n    - {Session_Token: x}\n",
                     "t.yaml:4:8: 'Session_Token' looks like a secret: the inventory never holds secrets "
                     "(keyrotd keeps key material only in its sealed store)");

        /* Structure. */
        expect_error("", "t.yaml: the inventory is empty (expected at least 'version: 1')");
        expect_error("# only a comment\n", "t.yaml: the inventory is empty (expected at least 'version: 1')");
        expect_error("- version: 1\n", "t.yaml:1:1: the inventory must be a mapping, not a list");
        expect_error(HEAD "users:\n  - &u {name: a, verify: {bucket: abc}}\n  - *u\n",
                     "t.yaml:3:5: YAML anchors (&u) are not allowed in the inventory; write the value out");
        expect_error(HEAD "x: *u\n", "t.yaml:2:4: YAML aliases (*u) are not allowed in the inventory; write the value out");
        expect_error(HEAD "defaults: !!map {}\n", "t.yaml:2:11: YAML tags (tag:yaml.org,2002:map) are not allowed in the inventory");
        expect_error(HEAD "---\nversion: 1\n", "t.yaml:2:1: more than one YAML document; the inventory is a single document");
        expect_error(HEAD "users:\n  - name: a\n   verify: x\n",
                     "t.yaml:4:4: invalid YAML: did not find expected '-' indicator (while parsing a block collection at 3:3)");
        expect_error(HEAD "x: [[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]\n", "t.yaml:2:19: nested deeper than 16 levels");
        expect_error(HEAD "x: \"\x01\"\n", "t.yaml:2:5: invalid YAML: control characters are not allowed");
        expect_error(HEAD "? [a]\n: b\n", "t.yaml:2:3: keys in the top level must be plain names, not a list");
}

/* Aliases by the event parser, which refuses them before any expansion. */
static void test_billion_laughs(void) {
        expect_error("a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
                     "c: [*b, *b, *b, *b, *b, *b, *b, *b]\n",
                     "t.yaml:1:4: YAML anchors (&a) are not allowed in the inventory; write the value out");
}

static void test_many_errors(void) {
        _cleanup_inventory_errors_ InventoryErrors e = {};
        Inventory *inv = NULL;
        int r;

        r = load("version: 3\n"
                 "defaults: {max_age: 5y, drain: maybe}\n"
                 "users:\n"
                 "  - name: ok\n    verify: {bucket: abc}\n    colour: red\n"
                 "  - name: \"no spaces\"\n    verify: {bucket: abc}\n"
                 "    targets: [{type: env-file, path: rel}]\n"
                 "store: {path: x}\n",
                 &inv, &e);
        ok(r == -EINVAL && !inv, "a file with many problems is refused");
        if (!ok(e.n == 7 && e.lines[7] == NULL, "every problem is reported, not just the first (%zu)", e.n))
                dump(&e);
        else {
                ok_eq_str(e.lines[0], "t.yaml:1:10: unsupported inventory version '3' (this keyrotd reads version 1)",
                          "sorted: 1st");
                ok_eq_str(e.lines[1],
                          "t.yaml:2:21: invalid duration '5y' for max_age (use s, m, h, d, w suffixes, e.g. 90d, 1h30m)",
                          "sorted: 2nd");
                ok_eq_str(e.lines[2], "t.yaml:2:32: drain must be true, false, a duration (e.g. 30m) or a mapping of wait, settle and on_timeout, "
                  "not 'maybe'",
                          "sorted: 3rd");
                ok_eq_str(e.lines[3],
                          "t.yaml:6:5: unknown key 'colour' in a user (expected: name, max_age, grace, hook_timeout, "
                          "drain, credentials_ttl, readers, verify, buckets, targets, on_rotate, on_failure)",
                          "sorted: 4th");
                ok_eq_str(e.lines[4],
                          "t.yaml:7:11: invalid IAM user name 'no spaces': it may contain only letters, digits and "
                          "+=,.@_-",
                          "sorted: 5th");
                ok_eq_str(e.lines[5], "t.yaml:9:38: path 'rel' is not an absolute path", "sorted: 6th");
                ok_eq_str(e.lines[6], "t.yaml:10:15: path 'x' is not an absolute path", "sorted: 7th, the store after the users");
        }

        /* Errors append; NULL errors are allowed. */
        r = load("version: 2\n", &inv, &e);
        ok(r == -EINVAL && e.n == 8, "errors are appended to the caller's list");
        inventory_errors_clear(&e);
        ok(e.n == 0 && !e.lines, "errors cleared");
        ok(load("version: 2\n", &inv, NULL) == -EINVAL && !inv, "NULL errors list is fine");

        /* A flood of problems is capped, with a count of the rest. */
        {
                size_t n = 150, o = 0;
                _cleanup_free_ char *text = malloc(16 + n * 16);

                o += (size_t) sprintf(text, "version: 1\n");
                for (size_t i = 0; i < n; i++)
                        o += (size_t) sprintf(text + o, "k%zu: 1\n", i);
                r = inventory_load_string("t.yaml", text, o, &inv, &e);
                ok(r == -EINVAL && e.n == 101 && streq(e.lines[100], "t.yaml: 50 more problems not shown"),
                   "problems capped at 100 plus a count (%zu)", e.n);
                inventory_errors_clear(&e);
        }
}

static void test_bytes(void) {
        static const char nul[] = "version: 1\nusers:\n  - na\0me: a\n";
        _cleanup_inventory_errors_ InventoryErrors e = {};
        _cleanup_free_ char *big = NULL;
        Inventory *inv = NULL;
        int r;

        r = inventory_load_string("t.yaml", nul, sizeof(nul) - 1, &inv, &e);
        ok(r == -EINVAL && e.n == 1 && streq(e.lines[0], "t.yaml:3:7: file contains a NUL byte; is it binary?"),
           "NUL byte refused with its position");
        inventory_errors_clear(&e);

        expect_error("version: 1\n# caf\xe9\n", "t.yaml:2:6: invalid UTF-8");
        expect_error("version: 1\n# \xc3\xa9\xc3\xa9 \xc0\xaf\n", "t.yaml:2:6: invalid UTF-8");     /* overlong '/' */
        expect_error("version: 1\n# \xed\xa0\x80\n", "t.yaml:2:3: invalid UTF-8");                 /* surrogate */
        expect_error("version: 1\n# \xf4\x90\x80\x80\n", "t.yaml:2:3: invalid UTF-8");             /* > U+10FFFF */
        expect_error("version: 1\n# \xe2\x82\n", "t.yaml:2:3: invalid UTF-8");                     /* truncated */
        expect_error("version: 1\n# \xe2\x82", "t.yaml:2:3: invalid UTF-8");                       /* at the end */
        expect_error("version: 1\n# \xfe\n", "t.yaml:2:3: invalid UTF-8");

        /* Exactly 1 MiB is fine, one byte more is not. */
        big = malloc(INVENTORY_SIZE_MAX + 1);
        if (!big)
                return;
        memset(big, '#', INVENTORY_SIZE_MAX + 1);
        memcpy(big, "version: 1\n", 11);
        big[INVENTORY_SIZE_MAX - 1] = '\n';
        r = inventory_load_string("t.yaml", big, INVENTORY_SIZE_MAX, &inv, &e);
        ok(r == 0 && inv && e.n == 0, "a file of exactly 1 MiB is accepted");
        inv = inventory_free(inv);
        r = inventory_load_string("t.yaml", big, INVENTORY_SIZE_MAX + 1, &inv, &e);
        ok(r == -EINVAL && !inv && e.n == 1 && streq(e.lines[0], "t.yaml: file is larger than 1 MiB; refusing it"),
           "1 MiB + 1 byte refused (string)");
        inventory_errors_clear(&e);

        big[INVENTORY_SIZE_MAX] = '\n';
        ok(put(pathf("big.yaml"), big, INVENTORY_SIZE_MAX + 1, 0600) == 0, "wrote a 1 MiB + 1 file");
        r = inventory_load(pathf("big.yaml"), &inv, &e);
        ok(r == -EINVAL && !inv && e.n == 1 && strstr(e.lines[0], "big.yaml: file is larger than 1 MiB; refusing it"),
           "1 MiB + 1 byte refused (file)");
        inventory_errors_clear(&e);
        ok(put(pathf("big.yaml"), big, INVENTORY_SIZE_MAX, 0600) == 0 && inventory_load(pathf("big.yaml"), &inv, &e) == 0 &&
           inv, "a 1 MiB file is read whole");
        inventory_free(inv);
}

static void test_files(void) {
        _cleanup_inventory_errors_ InventoryErrors e = {};
        char want[PATH_MAX + 128];
        Inventory *inv = NULL;
        int r;

        r = inventory_load(pathf("missing.yaml"), &inv, &e);
        snprintf(want, sizeof(want), "%s: cannot open: No such file or directory", pathf("missing.yaml"));
        ok(r == -ENOENT && !inv && e.n == 1 && streq(e.lines[0], want), "missing file: -ENOENT and 'FILE: message'");
        inventory_errors_clear(&e);

        r = inventory_load(tmpdir, &inv, &e);
        snprintf(want, sizeof(want), "%s: not a regular file", tmpdir);
        ok(r == -EINVAL && e.n == 1 && streq(e.lines[0], want), "a directory is refused");
        inventory_errors_clear(&e);

        ok(put(pathf("good.yaml"), HEAD, strlen(HEAD), 0644) == 0, "wrote good.yaml");
        r = inventory_load(pathf("good.yaml"), &inv, &e);
        ok(r == 0 && inv && e.n == 0, "mode 0644 owned by us is fine");
        inv = inventory_free(inv);

        ok(chmod(pathf("good.yaml"), 0664) == 0, "chmod g+w");
        r = inventory_load(pathf("good.yaml"), &inv, &e);
        snprintf(want, sizeof(want), "%s: file is writable by its group (mode 0664); refusing it (chmod go-w)",
                 pathf("good.yaml"));
        ok(r == -EINVAL && !inv && e.n == 1 && streq(e.lines[0], want), "group-writable inventory refused");
        inventory_errors_clear(&e);

        ok(chmod(pathf("good.yaml"), 0602) == 0, "chmod o+w");
        r = inventory_load(pathf("good.yaml"), &inv, &e);
        snprintf(want, sizeof(want), "%s: file is writable by everyone (mode 0602); refusing it (chmod go-w)",
                 pathf("good.yaml"));
        ok(r == -EINVAL && !inv && e.n == 1 && streq(e.lines[0], want), "world-writable inventory refused");
        inventory_errors_clear(&e);
        ok(chmod(pathf("good.yaml"), 0600) == 0, "chmod back to 0600");

        if (geteuid() == 0) {
                ok(chown(pathf("good.yaml"), 65534, 65534) == 0, "chown to 65534");
                r = inventory_load(pathf("good.yaml"), &inv, &e);
                snprintf(want, sizeof(want), "%s: file is owned by uid 65534, not by root or uid 0; refusing it",
                         pathf("good.yaml"));
                ok(r == -EINVAL && !inv && e.n == 1 && streq(e.lines[0], want), "file owned by another user refused");
                inventory_errors_clear(&e);
        } else {
                skip("chown needs root");
                skip("chown needs root");
        }

        ok(put(pathf("bad.yaml"), "version: 1\nx: 1\n", 16, 0600) == 0, "wrote bad.yaml");
        r = inventory_load(pathf("bad.yaml"), &inv, &e);
        snprintf(want, sizeof(want),
                 "%s:2:1: unknown key 'x' in the top level (expected: version, aws, defaults, store, users)",
                 pathf("bad.yaml"));
        ok(r == -EINVAL && e.n == 1 && streq(e.lines[0], want), "errors from a file carry its path");
        inventory_errors_clear(&e);

        if (mkfifo(pathf("fifo.yaml"), 0600) == 0) {
                r = inventory_load(pathf("fifo.yaml"), &inv, &e);
                ok(r == -EINVAL && !inv, "a FIFO is refused without blocking");
                inventory_errors_clear(&e);
        } else
                skip("mkfifo failed");
}

/* Hooks run with keyrotd's privileges: their programs are judged at load. */
static void test_hooks(void) {
        _cleanup_inventory_ Inventory *inv = NULL;
        char text[PATH_MAX + 256], want[2 * PATH_MAX + 256];

#define HOOK_INVENTORY(prog) (snprintf(text, sizeof text, HEAD "users:\n" USER_A "    on_rotate: [%s, x]\n", (prog)), text)

        ok(mkdir(pathf("hooks"), 0755) == 0 && put(pathf("hooks/notify"), "#!/bin/sh\n", 10, 0755) == 0,
           "a hook, 0755, in a directory of ours");
        expect_ok(HOOK_INVENTORY(pathf("hooks/notify")), &inv, "a hook of ours");
        inventory_free(TAKE_PTR(inv));
        expect_ok(HOOK_INVENTORY(pathf("hooks/not-yet")), &inv, "a hook not installed yet (judged before it runs)");
        inventory_free(TAKE_PTR(inv));

        ok(chmod(pathf("hooks/notify"), 0777) == 0, "chmod 0777");
        snprintf(want, sizeof want, "t.yaml:5:17: command '%s' of on_rotate is refused: %s is writable by group and others",
                 pathf("hooks/notify"), pathf("hooks/notify"));
        expect_error(HOOK_INVENTORY(pathf("hooks/notify")), want);
        ok(chmod(pathf("hooks/notify"), 0755) == 0 && chmod(pathf("hooks"), 0775) == 0, "the directory g+w instead");
        snprintf(want, sizeof want, "t.yaml:5:17: command '%s' of on_rotate is refused: %s is writable by group",
                 pathf("hooks/notify"), pathf("hooks"));
        expect_error(HOOK_INVENTORY(pathf("hooks/notify")), want);
        ok(chmod(pathf("hooks"), 0755) == 0, "closed again");

        if (geteuid() == 0) {
                ok(chown(pathf("hooks/notify"), 65534, 65534) == 0, "the hook given to uid 65534");
                snprintf(want, sizeof want,
                         "t.yaml:5:17: command '%s' of on_rotate is refused: %s is owned by uid 65534, not by root",
                         pathf("hooks/notify"), pathf("hooks/notify"));
                expect_error(HOOK_INVENTORY(pathf("hooks/notify")), want);
        } else
                skip("chown needs root");
#undef HOOK_INVENTORY
}

static void test_store_key_path(void) {
        _cleanup_inventory_ Inventory *inv = NULL;
        char *p = NULL;
        char want[PATH_MAX + 32];

        expect_ok(HEAD "store: {key_file: /etc/k/store.key}\n", &inv, "store.key_file");
        unsetenv("CREDENTIALS_DIRECTORY");
        ok(inventory_store_key_path(inv, &p) == 0 && streq(p, "/etc/k/store.key"), "configured key_file");
        free(p);
        ok(inventory_store_key_path(NULL, &p) == 0 && streq(p, "/etc/keyrotd/store.key"), "no inventory: the default");
        free(p);

        setenv("CREDENTIALS_DIRECTORY", tmpdir, 1);
        ok(inventory_store_key_path(inv, &p) == 0 && streq(p, "/etc/k/store.key"),
           "$CREDENTIALS_DIRECTORY without store.key: configured key_file");
        free(p);
        ok(put(pathf("store.key"), "0123456789abcdef0123456789abcdef", 32, 0600) == 0, "wrote a credential");
        snprintf(want, sizeof(want), "%s/store.key", tmpdir);
        ok(inventory_store_key_path(inv, &p) == 0 && streq(p, want), "$CREDENTIALS_DIRECTORY/store.key wins");
        free(p);
        setenv("CREDENTIALS_DIRECTORY", "relative", 1);
        ok(inventory_store_key_path(inv, &p) == 0 && streq(p, "/etc/k/store.key"), "a relative $CREDENTIALS_DIRECTORY is ignored");
        free(p);
        unsetenv("CREDENTIALS_DIRECTORY");
        unlink(pathf("store.key"));
}

static void test_enums(void) {
        bool all = true;

        for (int i = 0; i < _TARGET_TYPE_MAX; i++)
                all = all && target_type_from_string(target_type_to_string((TargetType) i)) == (TargetType) i;
        for (int i = 0; i < _VERIFY_CHECK_MAX; i++)
                all = all && verify_check_from_string(verify_check_to_string((VerifyCheck) i)) == (VerifyCheck) i;
        ok(all, "enum string tables round-trip");
        ok(!target_type_to_string(_TARGET_TYPE_MAX) && !target_type_to_string(_TARGET_TYPE_INVALID) &&
           target_type_from_string("x") == _TARGET_TYPE_INVALID && target_type_from_string(NULL) == _TARGET_TYPE_INVALID &&
           !verify_check_to_string(_VERIFY_CHECK_MAX) && verify_check_from_string("get:x") == _VERIFY_CHECK_INVALID,
           "out-of-range enums");
}

static void cleanup_tmpdir(void) {
        static const char *const names[] = { "example.yaml", "big.yaml", "good.yaml", "bad.yaml", "fifo.yaml", "store.key" };

        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                unlink(pathf(names[i]));
        rmdir(tmpdir);
}

int main(void) {
        snprintf(tmpdir, sizeof(tmpdir), "%s/test-inventory.XXXXXX", getenv("TMPDIR") ?: "/tmp");
        if (!mkdtemp(tmpdir)) {
                printf("Bail out! mkdtemp: %m\n");
                return 1;
        }
        umask(022);

        test_durations();
        test_enums();
        test_example();
        test_builtin_defaults();
        test_inheritance();
        test_values();
        test_errors();
        test_billion_laughs();
        test_many_errors();
        test_bytes();
        test_files();
        test_hooks();
        test_store_key_path();

        cleanup_tmpdir();
        return tap_done();
}

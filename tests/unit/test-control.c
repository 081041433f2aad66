/* SPDX-License-Identifier: MIT */
/*
 * test-control.c — the control socket server and client (control.h,
 * ctl/client.h): a server with stub handlers on a private sd-event loop in
 * this process, clients in forked children (their exit status is their
 * verdict; they print diagnostics to stderr as "# …").
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "basic/util.h"
#include "ctl/client.h"
#include "daemon/control.h"
#include "tap.h"

#define NOBODY 65534

static char tmpdir[256];
static char sock_path[320];
static sd_event *loop;

/* ------------------------------------------------------------------------
 * Stub handlers
 */

#define GET_LINE "{\"ok\":true,\"Version\":1,\"AccessKeyId\":\"AKIATEST\",\"SecretAccessKey\":\"s3cr3t\"}"

static char cred_path[320];

static struct {
        unsigned status, rotate, reload, rollback, get; /* handler calls */
        bool get_via_credentials;                       /* the last get's peer */
        uid_t get_uid;
        char users[256];                           /* the last rotate's users, "a,b" or "(all)" */
        bool wait, replace_lost;
        char rollback_user[80];
        unsigned streams_dead;      /* streaming requests whose client went away */
        unsigned streams_completed; /* streaming requests that ran to their final response */
        unsigned streams_running;
} calls;

typedef struct Streamer {
        ControlRequest *req;
        sd_event_source *timer;
        unsigned n, limit; /* limit 0: stream until the client goes away */
        size_t pad;        /* padding bytes per event */
        usec_t interval;
} Streamer;

static void streamer_free(Streamer *st) {
        calls.streams_running--;
        control_request_end(st->req);
        sd_event_source_disable_unref(st->timer);
        free(st);
}

static int streamer_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        Streamer *st = userdata;
        json_object *o;

        if (!control_request_alive(st->req)) {
                calls.streams_dead++;
                streamer_free(st);
                return 0;
        }
        if (st->limit > 0 && st->n == st->limit) {
                o = json_object_new_object();
                json_object_object_add(o, "failed", json_object_new_int(0));
                control_reply(st->req, o);
                calls.streams_completed++;
                streamer_free(st);
                return 0;
        }
        o = json_object_new_object();
        json_object_object_add(o, "event", json_object_new_string("rotation"));
        json_object_object_add(o, "n", json_object_new_int((int) st->n));
        /* "ok" in a stream line must not reach the client. */
        json_object_object_add(o, "ok", json_object_new_boolean(true));
        if (st->pad > 0) {
                char *p = malloc(st->pad + 1);
                memset(p, 'x', st->pad);
                p[st->pad] = 0;
                json_object_object_add(o, "pad", json_object_new_string(p));
                free(p);
        }
        control_stream(st->req, o);
        st->n++;
        (void) sd_event_source_set_time_relative(s, st->interval);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

static int start_streamer(ControlRequest *req, unsigned limit, size_t pad, usec_t interval) {
        Streamer *st = calloc(1, sizeof(*st));

        if (!st)
                return -ENOMEM;
        *st = (Streamer){ .req = req, .limit = limit, .pad = pad, .interval = interval };
        if (sd_event_add_time_relative(loop, &st->timer, CLOCK_MONOTONIC, interval, 0, streamer_tick, st) < 0) {
                free(st);
                return -ENOMEM;
        }
        calls.streams_running++;
        return 0;
}

static int stub_status(ControlRequest *req, void *userdata) {
        json_object *o = json_object_new_object(), *users = json_object_new_array(), *u = json_object_new_object();

        calls.status++;
        json_object_object_add(u, "name", json_object_new_string("bot-a"));
        json_object_object_add(u, "phase", json_object_new_string("idle"));
        json_object_object_add(u, "failures", json_object_new_int(0));
        json_object_object_add(u, "in_flight", json_object_new_boolean(false));
        json_object_array_add(users, u);
        json_object_object_add(o, "version", json_object_new_string("test"));
        json_object_object_add(o, "uptime_sec", json_object_new_int(7));
        json_object_object_add(o, "users", users);
        control_reply(req, o);
        control_request_end(req);
        return 0;
}

static int stub_rotate(ControlRequest *req, char *const *users, bool wait, bool replace_lost, void *userdata) {
        json_object *o;

        calls.rotate++;
        calls.wait = wait;
        calls.replace_lost = replace_lost;
        calls.users[0] = 0;
        if (!users)
                snprintf(calls.users, sizeof(calls.users), "(all)");
        for (char *const *u = users; u && *u; u++) {
                size_t l = strlen(calls.users);
                snprintf(calls.users + l, sizeof(calls.users) - l, "%s%s", l ? "," : "", *u);
        }
        if (wait && users && streq(users[0], "s"))
                return start_streamer(req, 3, 0, 5 * USEC_PER_MSEC);
        if (wait && users && streq(users[0], "forever"))
                return start_streamer(req, 0, 0, 10 * USEC_PER_MSEC);
        if (wait && users && streq(users[0], "big"))
                return start_streamer(req, 0, 64 * 1024, 1 * USEC_PER_MSEC);
        if (wait && users && streq(users[0], "sync")) {
                /* Everything from inside the handler. */
                for (int i = 0; i < 2; i++) {
                        o = json_object_new_object();
                        json_object_object_add(o, "user", json_object_new_string("sync"));
                        control_stream(req, o); /* gets "event":"progress" */
                }
                control_reply(req, NULL);
                control_request_end(req);
                return 0;
        }
        o = json_object_new_object();
        json_object_object_add(o, "queued", json_object_new_boolean(true));
        control_reply(req, o);
        control_request_end(req);
        return 0;
}

static int stub_reload(ControlRequest *req, void *userdata) {
        calls.reload++;
        return -EIO;
}

static ControlRequest *hung; /* a request left unanswered, ended by the test */

static int stub_rollback(ControlRequest *req, const char *user, void *userdata) {
        json_object *o;

        calls.rollback++;
        snprintf(calls.rollback_user, sizeof(calls.rollback_user), "%s", user);
        if (streq(user, "hang")) {
                hung = req;
                return 0;
        }
        if (streq(user, "neg"))
                return -ENOENT;
        if (streq(user, "noreply")) {
                control_request_end(req);
                return 0;
        }
        o = json_object_new_object();
        if (streq(user, "nope")) {
                json_object_object_add(o, "ok", json_object_new_boolean(false));
                json_object_object_add(o, "error", json_object_new_string("nothing to roll back"));
        } else
                json_object_object_add(o, "user", json_object_new_string(user));
        control_reply(req, o);
        control_request_end(req);
        return 0;
}

static int stub_get(ControlRequest *req, const char *user, void *userdata) {
        const ControlPeer *peer = control_request_peer(req);

        calls.get++;
        calls.get_via_credentials = peer->credentials_socket;
        calls.get_uid = peer->uid;
        if (streq(user, "bad")) {
                /* Not one JSON object: never sent as it is. */
                control_reply_secret(req, secret_dup("x\ny", 3));
                control_request_end(req);
                return 0;
        }
        control_reply_secret(req, secret_dup(GET_LINE, strlen(GET_LINE)));
        control_request_end(req);
        return 0;
}

static const ControlHandlers stubs = {
        .status = stub_status,
        .rotate = stub_rotate,
        .reload = stub_reload,
        .rollback = stub_rollback,
        .get = stub_get,
};

static unsigned handler_calls(void) {
        return calls.status + calls.rotate + calls.reload + calls.rollback + calls.get;
}

/* ------------------------------------------------------------------------
 * Clients in children
 */

#define CHILD_FAIL(...)                                    \
        do {                                               \
                fprintf(stderr, "# child: " __VA_ARGS__); \
                fprintf(stderr, "\n");                     \
                return 1;                                  \
        } while (0)

typedef int (*client_fn)(void *arg);

static pid_t spawn_client(client_fn fn, void *arg) {
        pid_t pid;

        fflush(stdout);
        fflush(stderr);
        pid = fork();
        if (pid == 0) {
                /* Not the server's sockets: a copy here would keep its
                 * clients from seeing it close. */
                closefrom(3);
                _exit(fn(arg));
        }
        return pid;
}

/* Drive the loop until the child exits; its exit status, or -1. */
static int wait_client(pid_t pid) {
        usec_t deadline = now_usec(CLOCK_MONOTONIC) + 30 * USEC_PER_SEC;
        int st;

        if (pid < 0)
                return -1;
        for (;;) {
                pid_t r = waitpid(pid, &st, WNOHANG);

                if (r == pid)
                        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
                if (now_usec(CLOCK_MONOTONIC) > deadline) {
                        kill(pid, SIGKILL);
                        waitpid(pid, &st, 0);
                        diag("child %d timed out", (int) pid);
                        return -1;
                }
                (void) sd_event_run(loop, 5 * USEC_PER_MSEC);
        }
}

static int run_client(client_fn fn, void *arg) {
        return wait_client(spawn_client(fn, arg));
}

/* Drive the loop until *flag reaches want (or 5 s). */
static bool run_until(const unsigned *flag, unsigned want) {
        usec_t deadline = now_usec(CLOCK_MONOTONIC) + 5 * USEC_PER_SEC;

        while (*flag < want && now_usec(CLOCK_MONOTONIC) < deadline)
                (void) sd_event_run(loop, 5 * USEC_PER_MSEC);
        return *flag >= want;
}

static void run_for(usec_t t) {
        usec_t end = now_usec(CLOCK_MONOTONIC) + t;

        while (now_usec(CLOCK_MONOTONIC) < end)
                (void) sd_event_run(loop, 5 * USEC_PER_MSEC);
}

static int send_all(int fd, const char *s, size_t n) {
        while (n > 0) {
                ssize_t k = send(fd, s, n, MSG_NOSIGNAL);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                s += k;
                n -= (size_t) k;
        }
        return 0;
}

/* Read until EOF (0), or an error / 10 s timeout (-errno). */
static int read_all(int fd, char *buf, size_t size, size_t *ret_len) {
        struct timeval tv = { .tv_sec = 10 };
        size_t len = 0;

        (void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        for (;;) {
                ssize_t n = recv(fd, buf + len, size - 1 - len, 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        buf[len] = 0;
                        *ret_len = len;
                        return -errno;
                }
                if (n == 0)
                        break;
                len += (size_t) n;
                if (len == size - 1)
                        break;
        }
        buf[len] = 0;
        *ret_len = len;
        return 0;
}

static unsigned count_lines(const char *s) {
        unsigned n = 0;
        for (; *s; s++)
                n += *s == '\n';
        return n;
}

/* The i-th line of s as JSON (NULL if none or not JSON). */
static json_object *line_json(const char *s, unsigned i) {
        const char *end;
        char *copy;
        json_object *o;

        for (; i > 0 && s; i--) {
                s = strchr(s, '\n');
                if (s)
                        s++;
        }
        if (!s || !*s)
                return NULL;
        end = strchrnul(s, '\n');
        copy = strndup(s, (size_t) (end - s));
        o = json_tokener_parse(copy);
        free(copy);
        return o;
}

static bool json_is_error(json_object *o, const char *contains) {
        json_object *ok, *err;

        if (!o || !json_object_object_get_ex(o, "ok", &ok) || json_object_get_boolean(ok) ||
            !json_object_object_get_ex(o, "error", &err) || !json_object_is_type(err, json_type_string))
                return false;
        if (contains && !strstr(json_object_get_string(err), contains)) {
                fprintf(stderr, "# child: error '%s' lacks '%s'\n", json_object_get_string(err), contains);
                return false;
        }
        return true;
}

/* Send raw bytes, read everything until the server closes; expect exactly
 * one line, an error containing @contains. */
static int expect_error_then_close(const char *raw, size_t len, const char *contains) {
        static char buf[1 << 20];
        json_object *o;
        size_t n;
        int fd, r;

        if (ctl_connect(sock_path, &fd) < 0)
                CHILD_FAIL("connect");
        if (send_all(fd, raw, len) < 0)
                CHILD_FAIL("send");
        r = read_all(fd, buf, sizeof(buf), &n);
        close(fd);
        if (r < 0)
                CHILD_FAIL("read did not end in EOF: %s (got '%s')", strerror(-r), buf);
        if (count_lines(buf) != 1)
                CHILD_FAIL("want exactly one line, got '%s'", buf);
        o = line_json(buf, 0);
        r = json_is_error(o, contains) ? 0 : 1;
        json_object_put(o);
        if (r)
                CHILD_FAIL("not the error wanted: '%s'", buf);
        return 0;
}

/* A ctl_call collecting every line. */
typedef struct Collect {
        unsigned n_stream, n_final;
        bool bad_stream; /* a stream line without "event" or with "ok" */
        json_object *final;
        char first_event[64];
} Collect;

static int collect_line(json_object *line, void *userdata) {
        Collect *c = userdata;
        json_object *v;

        if (json_object_object_get_ex(line, "ok", NULL)) {
                c->n_final++;
                json_object_put(c->final);
                c->final = json_object_get(line);
                return 0;
        }
        c->n_stream++;
        if (!json_object_object_get_ex(line, "event", &v))
                c->bad_stream = true;
        else if (!c->first_event[0])
                snprintf(c->first_event, sizeof(c->first_event), "%s", json_object_get_string(v));
        return 0;
}

static int call_json(const char *request, Collect *c) {
        json_object *req = json_tokener_parse(request);
        int fd, r;

        if (!req)
                return -EINVAL;
        r = ctl_connect(sock_path, &fd);
        if (r >= 0) {
                r = ctl_call(fd, req, collect_line, c);
                close(fd);
        }
        json_object_put(req);
        return r;
}

static const char *final_str(Collect *c, const char *key) {
        json_object *v;
        return c->final && json_object_object_get_ex(c->final, key, &v) ? json_object_get_string(v) : NULL;
}

/* ---- the clients ---- */

static int client_status(void *arg) {
        Collect c = {};
        int r = call_json("{\"cmd\":\"status\"}", &c);

        if (r != 0)
                CHILD_FAIL("ctl_call: %d", r);
        if (c.n_final != 1 || c.n_stream != 0)
                CHILD_FAIL("lines: %u final, %u stream", c.n_final, c.n_stream);
        if (!streq_ptr(final_str(&c, "version"), "test") || !streq_ptr(final_str(&c, "uptime_sec"), "7"))
                CHILD_FAIL("status: %s", json_object_to_json_string(c.final));
        /* "ok" first on the line: the server rebuilds the object. */
        if (!startswith(json_object_to_json_string_ext(c.final, JSON_C_TO_STRING_PLAIN), "{\"ok\":true,"))
                CHILD_FAIL("ok not first: %s", json_object_to_json_string(c.final));
        json_object_put(c.final);
        return 0;
}

static int client_request(void *arg) {
        const char *request = arg;
        Collect c = {};
        int r = call_json(request, &c);

        json_object_put(c.final);
        return r == 0 ? 0 : 10 + (r < 0 ? 1 : r);
}

static int client_stream(void *arg) {
        Collect c = {};
        int r = call_json(arg, &c);

        if (r != 0)
                CHILD_FAIL("ctl_call: %d", r);
        if (c.bad_stream)
                CHILD_FAIL("a stream line without event or with ok");
        json_object_put(c.final);
        return (int) c.n_stream; /* the parent checks the count */
}

/* No line within the idle timeout: -ETIMEDOUT. */
static int client_timeout(void *arg) {
        json_object *req = json_tokener_parse("{\"cmd\":\"rollback\",\"user\":\"hang\"}");
        usec_t t0 = now_usec(CLOCK_MONOTONIC);
        int fd, r;

        if (ctl_connect(sock_path, &fd) < 0)
                CHILD_FAIL("connect");
        r = ctl_call_full(fd, req, 200 * USEC_PER_MSEC, NULL, NULL);
        json_object_put(req);
        close(fd);
        if (r != -ETIMEDOUT)
                CHILD_FAIL("want -ETIMEDOUT, got %d", r);
        if (now_usec(CLOCK_MONOTONIC) - t0 > 5 * USEC_PER_SEC)
                CHILD_FAIL("the timeout took too long");
        return 0;
}

static int client_malformed(void *arg) {
        return expect_error_then_close("{not json\n{\"cmd\":\"status\"}\n", 28, "malformed");
}

static int client_oversized(void *arg) {
        size_t n = 65 * 1024;
        char *raw = malloc(n);
        int r;

        memset(raw, 'x', n);
        r = expect_error_then_close(raw, n, "too long");
        free(raw);
        return r;
}

static int client_unknown_cmd(void *arg) {
        static const char raw[] = "{\"cmd\":\"frobnicate\\u001b[2J\"}\n";
        return expect_error_then_close(raw, sizeof(raw) - 1, "unknown command \"frobnicate?[2J\"");
}

static int client_not_object(void *arg) {
        return expect_error_then_close("[1,2]\n", 6, "not a JSON object");
}

static int client_nul(void *arg) {
        return expect_error_then_close("\0\n", 2, "NUL byte");
}

static int client_null(void *arg) {
        return expect_error_then_close("null\n", 5, "not a JSON object");
}

static int client_incomplete(void *arg) {
        return expect_error_then_close("{\"cmd\":\"status\"\n", 16, "incomplete JSON");
}

static int client_no_cmd(void *arg) {
        return expect_error_then_close("{\"command\":\"status\"}\n", 21, "\"cmd\" missing");
}

static int client_trailing(void *arg) {
        return expect_error_then_close("{\"cmd\":\"status\"} {\"cmd\":\"status\"}\n", 35, "malformed request");
}

/* Invalid arguments: errors on one connection that stays open. */
static const struct {
        const char *request;
        const char *error;
} bad_args[] = {
        { "{\"cmd\":\"rotate\",\"users\":\"bot-a\"}", "must be an array" },
        { "{\"cmd\":\"rotate\",\"users\":[1]}", "must be a string" },
        { "{\"cmd\":\"rotate\",\"users\":[null]}", "must be a string" },
        { "{\"cmd\":\"rotate\",\"users\":[]}", "empty" },
        { "{\"cmd\":\"rotate\",\"all\":true,\"replace_lost\":true}", "exactly one user" },
        { "{\"cmd\":\"rotate\",\"users\":[\"a\",\"b\"],\"replace_lost\":true}", "exactly one user" },
        { "{\"cmd\":\"rotate\",\"users\":[\"a\"],\"replace_lost\":1}", "must be true or false" },
        { "{\"cmd\":\"rotate\",\"users\":[\"bad name\"]}", "invalid user name \"bad name\"" },
        { "{\"cmd\":\"rotate\",\"users\":[\"a\\u0000b\"]}", "invalid user name" },
        { "{\"cmd\":\"rotate\",\"users\":[\"\"]}", "invalid user name" },
        { "{\"cmd\":\"rotate\",\"users\":[\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"]}",
          "invalid user name" },
        { "{\"cmd\":\"rotate\",\"users\":[\"a\",\"b\",\"a\"]}", "\"a\" given twice" },
        { "{\"cmd\":\"rotate\",\"users\":[\"a\"],\"all\":true}", "exclude each other" },
        { "{\"cmd\":\"rotate\"}", "give \"users\"" },
        { "{\"cmd\":\"rotate\",\"all\":false}", "give \"users\"" },
        { "{\"cmd\":\"rotate\",\"all\":\"yes\"}", "\"all\" must be true or false" },
        { "{\"cmd\":\"rotate\",\"all\":true,\"wait\":1}", "\"wait\" must be true or false" },
        { "{\"cmd\":\"rotate\",\"all\":true,\"force\":true}", "unknown member \"force\"" },
        { "{\"cmd\":\"status\",\"verbose\":true}", "unknown member" },
        { "{\"cmd\":\"reload\",\"x\":1}", "unknown member" },
        { "{\"cmd\":\"rollback\"}", "\"user\" missing" },
        { "{\"cmd\":\"rollback\",\"user\":5}", "must be a string" },
        { "{\"cmd\":\"rollback\",\"user\":\"../etc\"}", "invalid user name" },
        { "{\"cmd\":\"rollback\",\"user\":[\"a\"]}", "must be a string" },
};

static int client_bad_args(void *arg) {
        static char buf[65536];
        size_t len = 0;
        int fd;

        if (ctl_connect(sock_path, &fd) < 0)
                CHILD_FAIL("connect");
        for (size_t i = 0; i < ELEMENTSOF(bad_args); i++) {
                json_object *req = json_tokener_parse(bad_args[i].request);
                Collect c = {};
                int r;

                if (!req)
                        CHILD_FAIL("test request %zu is not JSON", i);
                r = ctl_call(fd, req, collect_line, &c);
                json_object_put(req);
                if (r != CTL_REMOTE_ERROR || !json_is_error(c.final, bad_args[i].error))
                        CHILD_FAIL("%s: r=%d %s", bad_args[i].request, r,
                                   c.final ? json_object_to_json_string(c.final) : "(none)");
                json_object_put(c.final);
        }
        /* Too many users (before the duplicate check, so "a" x 10001 will do). */
        {
                size_t n = CONTROL_USERS_MAX + 1, off = 0;
                char *raw = malloc(64 + n * 4);

                off += (size_t) sprintf(raw, "{\"cmd\":\"rotate\",\"users\":[");
                for (size_t i = 0; i < n; i++)
                        off += (size_t) sprintf(raw + off, "%s\"a\"", i ? "," : "");
                off += (size_t) sprintf(raw + off, "]}\n");
                if (send_all(fd, raw, off) < 0)
                        CHILD_FAIL("send");
                free(raw);
                struct timeval tv = { .tv_sec = 10 };
                (void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
                while (!memchr(buf, '\n', len)) {
                        ssize_t k = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
                        if (k <= 0)
                                CHILD_FAIL("no answer to 10001 users");
                        len += (size_t) k;
                }
                buf[len] = 0;
                json_object *o = line_json(buf, 0);
                bool good = json_is_error(o, "more than 10000 users");
                json_object_put(o);
                if (!good)
                        CHILD_FAIL("10001 users: %s", buf);
        }
        /* Still open, still serving. */
        {
                json_object *req = json_tokener_parse("{\"cmd\":\"status\"}");
                Collect c = {};
                int r = ctl_call(fd, req, collect_line, &c);

                json_object_put(req);
                json_object_put(c.final);
                if (r != 0)
                        CHILD_FAIL("status after the errors: %d", r);
        }
        close(fd);
        return 0;
}

/* Three requests in one write, answered in order. */
static int client_pipelined(void *arg) {
        static const char raw[] = "{\"cmd\":\"rotate\",\"users\":[\"s\"],\"wait\":true}\n"
                                  "\n"
                                  "{\"cmd\":\"rollback\",\"user\":\"p1\"}\r\n"
                                  "{\"cmd\":\"status\"}";
        static char buf[65536];
        size_t n;
        int fd, r;

        if (ctl_connect(sock_path, &fd) < 0)
                CHILD_FAIL("connect");
        /* The last line has no "\n": shutting down our side ends it. */
        if (send_all(fd, raw, sizeof(raw) - 1) < 0 || shutdown(fd, SHUT_WR) < 0)
                CHILD_FAIL("send");
        r = read_all(fd, buf, sizeof(buf), &n);
        close(fd);
        if (r < 0)
                CHILD_FAIL("read: %s", strerror(-r));
        /* 3 stream lines + final of the rotate, then rollback, then status. */
        if (count_lines(buf) != 6)
                CHILD_FAIL("want 6 lines, got: %s", buf);
        const char *want[] = { "rotation", "rotation", "rotation", NULL, "p1", "test" };
        for (unsigned i = 0; i < 6; i++) {
                json_object *o = line_json(buf, i), *v;
                const char *key = i < 3 ? "event" : i == 3 ? "failed" : i == 4 ? "user" : "version";
                bool good = o && json_object_object_get_ex(o, key, &v) &&
                            (!want[i] || streq(json_object_get_string(v), want[i]));

                json_object_put(o);
                if (!good)
                        CHILD_FAIL("line %u wrong: %s", i, buf);
        }
        return 0;
}

/* get, then status pipelined behind it: the secret line first, whole,
 * then the status; and ctl_call_secret() reads the line as it is. */
static int client_get(void *arg) {
        static const char raw[] = "{\"cmd\":\"get\",\"user\":\"bot-a\"}\n{\"cmd\":\"status\"}\n";
        static char buf[65536];
        json_object *o, *v, *req;
        Secret *line = NULL;
        size_t n;
        int fd, r;

        if (ctl_connect(arg, &fd) < 0)
                CHILD_FAIL("connect");
        if (send_all(fd, raw, sizeof(raw) - 1) < 0 || shutdown(fd, SHUT_WR) < 0)
                CHILD_FAIL("send");
        r = read_all(fd, buf, sizeof(buf), &n);
        close(fd);
        if (r < 0 || count_lines(buf) != 2 || strncmp(buf, GET_LINE "\n", strlen(GET_LINE) + 1) != 0)
                CHILD_FAIL("want the get line, then status: %s", buf);
        /* The credentials socket refuses the status, after the get. */
        o = line_json(buf, 1);
        r = streq(arg, cred_path) ? !json_is_error(o, "answers only get")
                                  : !(o && json_object_object_get_ex(o, "version", &v));
        json_object_put(o);
        if (r)
                CHILD_FAIL("second line is not the status or its refusal: %s", buf);

        if (ctl_connect(arg, &fd) < 0)
                CHILD_FAIL("connect");
        req = json_tokener_parse("{\"cmd\":\"get\",\"user\":\"bot-a\"}");
        r = ctl_call_secret(fd, req, 10 * USEC_PER_SEC, &line);
        json_object_put(req);
        close(fd);
        if (r < 0 || !line || !streq(line->data, GET_LINE))
                CHILD_FAIL("ctl_call_secret: %d '%s'", r, line ? line->data : "");
        secret_free(line);
        return 0;
}

/* A handler's line that is not one JSON object is not sent: an error is. */
static int client_get_bad(void *arg) {
        Collect c = {};
        int r = call_json("{\"cmd\":\"get\",\"user\":\"bad\"}", &c);

        r = r == CTL_REMOTE_ERROR && json_is_error(c.final, "internal error") ? 0 : 1;
        json_object_put(c.final);
        return r;
}

/* The credentials socket: any command but get is refused, then closed. */
static int client_credentials_refusals(void *arg) {
        static const char *const cmds[] = { "{\"cmd\":\"status\"}\n", "{\"cmd\":\"reload\"}\n",
                                            "{\"cmd\":\"rotate\",\"all\":true}\n",
                                            "{\"cmd\":\"rollback\",\"user\":\"a\"}\n" };
        static char buf[65536];

        for (size_t i = 0; i < ELEMENTSOF(cmds); i++) {
                json_object *o;
                size_t n;
                int fd, r;

                if (ctl_connect(cred_path, &fd) < 0)
                        CHILD_FAIL("connect");
                if (send_all(fd, cmds[i], strlen(cmds[i])) < 0)
                        CHILD_FAIL("send");
                r = read_all(fd, buf, sizeof(buf), &n);
                close(fd);
                o = line_json(buf, 0);
                if (r < 0 || count_lines(buf) != 1 ||
                    !json_is_error(o, "permission denied: the credentials socket answers only get")) {
                        json_object_put(o);
                        CHILD_FAIL("%s: want one refusal, then EOF: %s", cmds[i], buf);
                }
                json_object_put(o);
        }
        return 0;
}

#define MANY 200

static int client_many(void *arg) {
        static const char req[] = "{\"cmd\":\"status\"}\n";
        int fds[MANY];
        static char buf[65536];

        for (int i = 0; i < MANY; i++)
                if (ctl_connect(sock_path, &fds[i]) < 0)
                        CHILD_FAIL("connect %d: %m", i);
        /* All connected; now every one asks, then every one reads. */
        for (int i = 0; i < MANY; i++)
                if (send_all(fds[i], req, sizeof(req) - 1) < 0)
                        CHILD_FAIL("send %d", i);
        for (int i = 0; i < MANY; i++) {
                size_t len = 0;
                struct timeval tv = { .tv_sec = 10 };

                (void) setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
                while (len == 0 || buf[len - 1] != '\n') {
                        ssize_t k = recv(fds[i], buf + len, sizeof(buf) - 1 - len, 0);
                        if (k <= 0)
                                CHILD_FAIL("client %d: no answer", i);
                        len += (size_t) k;
                }
                buf[len] = 0;
                if (!strstr(buf, "\"ok\":true") || !strstr(buf, "\"version\":\"test\""))
                        CHILD_FAIL("client %d: %s", i, buf);
                close(fds[i]);
        }
        return 0;
}

/* Ask for a stream, read two lines, hang up. */
static int client_hangup_mid_stream(void *arg) {
        static const char req[] = "{\"cmd\":\"rotate\",\"users\":[\"forever\"],\"wait\":true}\n";
        char buf[4096];
        size_t len = 0;
        int fd;

        if (ctl_connect(sock_path, &fd) < 0)
                CHILD_FAIL("connect");
        if (send_all(fd, req, sizeof(req) - 1) < 0)
                CHILD_FAIL("send");
        while (count_lines(buf) < 2) {
                ssize_t k = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
                if (k <= 0)
                        CHILD_FAIL("stream ended early");
                len += (size_t) k;
                buf[len] = 0;
        }
        if (strstr(buf, "\"ok\""))
                CHILD_FAIL("a final response in the stream: %s", buf);
        close(fd);
        return 0;
}

/* Ask for a big stream and never read; stay connected for a while. */
static int client_never_reads(void *arg) {
        static const char req[] = "{\"cmd\":\"rotate\",\"users\":[\"big\"],\"wait\":true}\n";
        int fd;

        if (ctl_connect(sock_path, &fd) < 0)
                CHILD_FAIL("connect");
        if (send_all(fd, req, sizeof(req) - 1) < 0)
                CHILD_FAIL("send");
        sleep(4);
        close(fd);
        return 0;
}

static void drop_to_nobody(const gid_t *groups, size_t n) {
        if (setgroups(n, groups) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0) {
                fprintf(stderr, "# child: cannot become nobody: %m\n");
                _exit(99);
        }
}

static int client_nobody(void *arg) {
        json_object *req = json_tokener_parse("{\"cmd\":\"rotate\",\"all\":true}");
        Collect c = {};
        int fd, r;

        drop_to_nobody(NULL, 0);
        r = ctl_connect(sock_path, &fd);
        if (r < 0)
                CHILD_FAIL("connect as nobody: %s", strerror(-r));
        r = ctl_call(fd, req, collect_line, &c);
        close(fd);
        json_object_put(req);
        if (r != CTL_REMOTE_ERROR || !json_is_error(c.final, "permission denied"))
                CHILD_FAIL("r=%d %s", r, c.final ? json_object_to_json_string(c.final) : "(none)");
        json_object_put(c.final);
        return 0;
}

static int client_nobody_raw(void *arg) {
        static const char req[] = "{\"cmd\":\"status\"}\n{\"cmd\":\"status\"}\n";
        drop_to_nobody(NULL, 0);
        return expect_error_then_close(req, sizeof(req) - 1, "permission denied: uid 65534");
}

/* Connect as nobody with supplementary groups 4242 and 4343, wait for the
 * parent to look at us. */
static int client_groups(void *arg) {
        const gid_t groups[] = { 4242, 4343 };
        const char *path = arg;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char c;
        int fd;

        drop_to_nobody(groups, ELEMENTSOF(groups));
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                CHILD_FAIL("connect: %m");
        if (read(fd, &c, 1) < 0) /* until the parent closes */
                c = 0;
        close(fd);
        return 0;
}

/* ------------------------------------------------------------------------
 * The tests
 */

static int make_socket_file(const char *path, bool listening) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;
        if (listening && listen(fd, 16) < 0)
                return -errno;
        return fd;
}

static void test_peer_rule(void) {
        static const gid_t g[] = { 10, 20, 30 };

        ok(control_peer_allowed(0, 0, NULL, 0, 0, false, 0), "rule: root without the group");
        ok(control_peer_allowed(0, 99, NULL, 0, 0, true, 20), "rule: root with the group");
        ok(!control_peer_allowed(1000, 20, g, 3, 0, false, 20), "rule: no group, only root");
        ok(control_peer_allowed(1000, 20, NULL, 0, 0, true, 20), "rule: primary gid");
        ok(control_peer_allowed(1000, 99, g, 3, 0, true, 30), "rule: supplementary group");
        ok(!control_peer_allowed(1000, 99, g, 3, 0, true, 40), "rule: other groups refused");
        ok(control_peer_allowed(1000, 99, NULL, 0, 1000, false, 0), "rule: the server's own uid");
        ok(!control_peer_allowed(1001, 99, NULL, 0, 1000, false, 0), "rule: another uid refused");
}

static void test_peer_groups(void) {
        char path[320];
        pid_t pid;
        int lfd, cfd;
        uid_t uid = 0;
        gid_t gid = 0, *groups = NULL;
        size_t n = 0;
        bool has42 = false, has43 = false;

        if (geteuid() != 0) {
                for (int i = 0; i < 5; i++)
                        printf("ok %u - # SKIP SO_PEERGROUPS as nobody needs root\n", ++tap_n);
                return;
        }
        snprintf(path, sizeof(path), "%s/groups.sock", tmpdir);
        lfd = make_socket_file(path, true);
        chmod(tmpdir, 0755);
        chmod(path, 0666);
        pid = spawn_client(client_groups, path);
        {
                struct pollfd p = { .fd = lfd, .events = POLLIN };
                cfd = poll(&p, 1, 10000) == 1 ? accept4(lfd, NULL, NULL, SOCK_CLOEXEC) : -1;
        }
        chmod(tmpdir, 0700);
        ok(cfd >= 0 && control_peer_credentials(cfd, &uid, &gid, &groups, &n) == 0, "peer credentials read");
        for (size_t i = 0; i < n; i++) {
                has42 = has42 || groups[i] == 4242;
                has43 = has43 || groups[i] == 4343;
        }
        ok(uid == NOBODY && gid == NOBODY && n == 2 && has42 && has43, "SO_PEERGROUPS: uid %u gid %u, %zu groups",
           (unsigned) uid, (unsigned) gid, n);
        ok(control_peer_allowed(uid, gid, groups, n, 0, true, 4343), "a member by supplementary group is allowed");
        ok(!control_peer_allowed(uid, gid, groups, n, 0, true, 4444), "a non-member is not");
        free(groups);
        close(cfd);
        close(lfd);
        ok(wait_client(pid) == 0, "groups client done");
        unlink(path);
}

static void test_create_refusals(void) {
        char path[320], target[320];
        ControlServer *s = NULL;
        struct stat st;
        int fd, r;

        /* A live socket (the running server's) is not taken over. */
        r = control_server_new(loop, -1, sock_path, &stubs, NULL, &s);
        ok(r == -EADDRINUSE && !s, "live socket: -EADDRINUSE (%d)", r);
        ok(lstat(sock_path, &st) == 0 && S_ISSOCK(st.st_mode), "live socket left in place");

        /* A stale one is replaced. */
        snprintf(path, sizeof(path), "%s/stale.sock", tmpdir);
        fd = make_socket_file(path, true);
        close(fd);
        r = control_server_new(loop, -1, path, &stubs, NULL, &s);
        ok(r == 0 && s, "stale socket replaced (%d)", r);
        ok(lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 07777) == 0660, "new socket is 0660 (%o)",
           st.st_mode & 07777);
        s = control_server_free(s);
        ok(lstat(path, &st) < 0 && errno == ENOENT, "socket removed at free");

        /* A symlink is refused, and its target untouched. */
        snprintf(target, sizeof(target), "%s/target", tmpdir);
        fd = open(target, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        close(fd);
        snprintf(path, sizeof(path), "%s/link.sock", tmpdir);
        ok(symlink(target, path) == 0, "symlink made");
        r = control_server_new(loop, -1, path, &stubs, NULL, &s);
        ok(r == -ELOOP && !s, "symlink at the path refused (%d)", r);
        ok(lstat(path, &st) == 0 && S_ISLNK(st.st_mode) && stat(target, &st) == 0 && S_ISREG(st.st_mode) &&
                   (st.st_mode & 07777) == 0600,
           "symlink and target untouched");
        /* Even a dangling one. */
        unlink(target);
        r = control_server_new(loop, -1, path, &stubs, NULL, &s);
        ok(r == -ELOOP && !s && lstat(target, &st) < 0, "dangling symlink refused, nothing created");
        unlink(path);

        /* A regular file is refused. */
        snprintf(path, sizeof(path), "%s/file.sock", tmpdir);
        fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        close(fd);
        r = control_server_new(loop, -1, path, &stubs, NULL, &s);
        ok(r == -EEXIST && !s && lstat(path, &st) == 0 && S_ISREG(st.st_mode), "regular file refused (%d)", r);
        unlink(path);

        /* A missing parent directory is an error, not created. */
        snprintf(path, sizeof(path), "%s/nodir/x.sock", tmpdir);
        r = control_server_new(loop, -1, path, &stubs, NULL, &s);
        ok(r == -ENOENT && !s, "missing parent directory: -ENOENT (%d)", r);

        char longpath[200];
        memset(longpath, 'a', sizeof(longpath) - 1);
        longpath[0] = '/';
        longpath[sizeof(longpath) - 1] = 0;
        r = control_server_new(loop, -1, longpath, &stubs, NULL, &s);
        ok(r == -ENAMETOOLONG && !s, "path too long: -ENAMETOOLONG");

        /* Socket activation: a listening socket handed in. */
        snprintf(path, sizeof(path), "%s/activated.sock", tmpdir);
        fd = make_socket_file(path, false);
        r = control_server_new(loop, fd, NULL, &stubs, NULL, &s);
        ok(r < 0 && !s, "a socket that does not listen is refused (%d)", r);
        ok(listen(fd, 16) == 0, "listen");
        r = control_server_new(loop, fd, NULL, &stubs, NULL, &s);
        ok(r == 0 && s, "socket activation: server on the passed fd");
        {
                char saved[sizeof(sock_path)];
                unsigned before = calls.status;

                memcpy(saved, sock_path, sizeof(saved));
                snprintf(sock_path, sizeof(sock_path), "%s", path);
                ok(run_client(client_status, NULL) == 0 && calls.status == before + 1, "status over the passed fd");
                memcpy(sock_path, saved, sizeof(saved));
        }
        s = control_server_free(s);
        ok(lstat(path, &st) == 0, "a passed socket's file is not ours to remove");
        unlink(path);
}

static void test_nobody(void) {
        unsigned before = handler_calls();

        if (geteuid() != 0) {
                printf("ok %u - # SKIP unauthorised peer needs root to become nobody\n", ++tap_n);
                printf("ok %u - # SKIP unauthorised peer needs root to become nobody\n", ++tap_n);
                printf("ok %u - # SKIP unauthorised peer needs root to become nobody\n", ++tap_n);
                return;
        }
        /* The socket's mode would keep nobody out already: open it up, so
         * the refusal must come from SO_PEERCRED. */
        chmod(tmpdir, 0755);
        chmod(sock_path, 0666);
        ok(run_client(client_nobody, NULL) == 0, "nobody: permission denied through ctl_call");
        ok(run_client(client_nobody_raw, NULL) == 0, "nobody: one refusal line, then closed");
        run_for(50 * USEC_PER_MSEC);
        ok(handler_calls() == before, "nobody: no handler was called");
        chmod(sock_path, 0660);
        chmod(tmpdir, 0700);
}

int main(void) {
        ControlServer *server = NULL;
        struct stat st;
        unsigned before;
        int r;

        /* SIGPIPE keeps its default: a write to a gone client that raised
         * it would kill this test (the server sends with MSG_NOSIGNAL). */
        signal(SIGPIPE, SIG_DFL);

        snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-control.XXXXXX");
        if (!mkdtemp(tmpdir))
                return 1;
        snprintf(sock_path, sizeof(sock_path), "%s/control.sock", tmpdir);
        if (sd_event_new(&loop) < 0)
                return 1;

        test_peer_rule();

        r = control_server_new(loop, -1, sock_path, &stubs, NULL, &server);
        ok(r == 0 && server, "server on %s (%d)", sock_path, r);
        ok(lstat(sock_path, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 07777) == 0660, "socket mode 0660");

        ok(run_client(client_status, NULL) == 0 && calls.status == 1, "status round trip");

        ok(run_client(client_request, "{\"cmd\":\"rotate\",\"users\":[\"a\",\"b\"]}") == 0, "rotate users answered");
        ok_eq_str(calls.users, "a,b", "rotate: users parsed in order");
        ok(!calls.wait, "rotate: wait defaults to false");
        ok(!calls.replace_lost, "rotate: replace_lost defaults to false");
        ok(run_client(client_request, "{\"cmd\":\"rotate\",\"users\":[\"a\"],\"replace_lost\":true}") == 0 &&
                   calls.replace_lost && streq(calls.users, "a"),
           "rotate: replace_lost with one user reaches the handler");
        ok(run_client(client_request, "{\"cmd\":\"rotate\",\"all\":true,\"wait\":false}") == 0 &&
                   streq(calls.users, "(all)"),
           "rotate all: users NULL");

        ok(run_client(client_stream, "{\"cmd\":\"rotate\",\"users\":[\"s\"],\"wait\":true}") == 3,
           "rotate wait: three events streamed, then the final response");
        ok(calls.wait && calls.streams_completed == 1, "rotate wait: the handler saw wait");
        ok(run_client(client_stream, "{\"cmd\":\"rotate\",\"users\":[\"sync\"],\"wait\":true}") == 2,
           "stream and reply from inside the handler");

        ok(run_client(client_request, "{\"cmd\":\"rollback\",\"user\":\"bot-a\"}") == 0 &&
                   streq(calls.rollback_user, "bot-a"),
           "rollback: user passed");
        ok(run_client(client_request, "{\"cmd\":\"rollback\",\"user\":\"nope\"}") == 10 + CTL_REMOTE_ERROR,
           "rollback: a handler's own error reply");
        ok(run_client(client_request, "{\"cmd\":\"rollback\",\"user\":\"neg\"}") == 10 + CTL_REMOTE_ERROR,
           "rollback: a negative return becomes an error reply");
        ok(run_client(client_request, "{\"cmd\":\"rollback\",\"user\":\"noreply\"}") == 10 + CTL_REMOTE_ERROR,
           "rollback: ended without a reply becomes an error reply");
        ok(run_client(client_request, "{\"cmd\":\"reload\"}") == 10 + CTL_REMOTE_ERROR && calls.reload == 1,
           "reload: -EIO becomes an error reply");
        ok(run_client(client_timeout, NULL) == 0, "ctl_call: no answer within the idle timeout is -ETIMEDOUT");
        run_for(50 * USEC_PER_MSEC); /* the hangup reaches the loop */
        ok(hung && !control_request_alive(hung), "the unanswered request is dead once its client left");
        control_reply(hung, NULL); /* a no-op now */
        control_request_end(hung);

        before = handler_calls();
        ok(run_client(client_malformed, NULL) == 0, "malformed JSON: error, then closed");
        ok(run_client(client_oversized, NULL) == 0, "65 KiB without a newline: error, then closed");
        ok(run_client(client_unknown_cmd, NULL) == 0, "unknown command: error (echo sanitised), then closed");
        ok(run_client(client_not_object, NULL) == 0, "not an object: error, then closed");
        ok(run_client(client_no_cmd, NULL) == 0, "no cmd: error, then closed");
        ok(run_client(client_nul, NULL) == 0, "a NUL byte: error, then closed");
        ok(run_client(client_null, NULL) == 0, "a bare literal: not an object");
        ok(run_client(client_incomplete, NULL) == 0, "an object cut short: incomplete");
        ok(run_client(client_trailing, NULL) == 0, "two objects on a line: error, then closed");
        ok(run_client(client_bad_args, NULL) == 0, "wrong types and bad names: errors, the connection stays open");
        ok(handler_calls() == before + 1, "no handler called for any of them (but the final status)");

        ok(run_client(client_pipelined, NULL) == 0, "pipelined requests answered one at a time, in order");

        before = calls.status;
        ok(run_client(client_many, NULL) == 0, "%d concurrent clients all answered", MANY);
        ok(calls.status == before + MANY, "%d status calls", MANY);

        before = calls.streams_dead;
        ok(run_client(client_hangup_mid_stream, NULL) == 0, "client hung up mid-stream");
        ok(run_until(&calls.streams_dead, before + 1), "the handler saw the client gone and ended the request");

        {
                /* A client that never reads is dropped at the output bound,
                 * while it is still connected; others are served meanwhile. */
                pid_t slow = spawn_client(client_never_reads, NULL);
                before = calls.streams_dead;
                run_for(200 * USEC_PER_MSEC);
                ok(run_client(client_status, NULL) == 0, "served while a slow reader is connected");
                ok(run_until(&calls.streams_dead, before + 1), "the slow reader was dropped at the bound");
                ok(waitpid(slow, NULL, WNOHANG) == 0, "...while still connected");
                ok(wait_client(slow) == 0, "slow reader exited");
        }

        ok(run_client(client_get, sock_path) == 0 && calls.get == 2 && !calls.get_via_credentials,
           "get: the secret line, then what was pipelined behind it");
        ok(run_client(client_get_bad, NULL) == 0, "get: a line that is not one object is refused, not sent");
        before = handler_calls();
        ok(run_client(client_request, "{\"cmd\":\"get\"}") == 10 + CTL_REMOTE_ERROR &&
                   run_client(client_request, "{\"cmd\":\"get\",\"user\":\"a\",\"x\":1}") == 10 + CTL_REMOTE_ERROR,
           "get: user missing, unknown member: errors");
        ok(handler_calls() == before, "...without a call of the handler");

        {
                ControlServer *cred = NULL;

                snprintf(cred_path, sizeof(cred_path), "%s/credentials.sock", tmpdir);
                r = control_server_new_credentials(loop, -1, cred_path, &stubs, NULL, &cred);
                ok(r == 0 && cred, "credentials socket on %s (%d)", cred_path, r);
                ok(lstat(cred_path, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 07777) == 0666,
                   "credentials socket mode 0666");
                before = handler_calls();
                ok(run_client(client_credentials_refusals, NULL) == 0 && handler_calls() == before,
                   "credentials socket: status, reload, rotate, rollback refused, no handler called");
                ok(run_client(client_get, cred_path) == 0 && calls.get_via_credentials &&
                           calls.get_uid == getuid(),
                   "credentials socket: get reaches the handler with the peer's credentials");
                control_server_free(cred);
                ok(lstat(cred_path, &st) < 0 && errno == ENOENT, "credentials socket removed at free");
        }

        test_nobody();
        test_peer_groups();
        test_create_refusals();

        {
                /* Freed with a request in flight: the request goes dead, its
                 * owner still ends it; the socket file goes. */
                pid_t pid = spawn_client(client_request,
                                         "{\"cmd\":\"rotate\",\"users\":[\"forever\"],\"wait\":true}");
                unsigned running = calls.streams_running;

                before = calls.streams_dead;
                while (calls.streams_running == running)
                        (void) sd_event_run(loop, 5 * USEC_PER_MSEC);
                run_for(30 * USEC_PER_MSEC);
                server = control_server_free(server);
                ok(lstat(sock_path, &st) < 0 && errno == ENOENT, "socket file removed at free");
                ok(run_until(&calls.streams_dead, before + 1), "request in flight went dead at free");
                ok(wait_client(pid) == 10 + 1, "its client saw the connection end without a final response");
        }
        ok(calls.streams_running == 0, "every streaming request ended");

        sd_event_unref(loop);
        rmdir(tmpdir);
        return tap_done();
}

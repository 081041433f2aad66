/* SPDX-License-Identifier: MIT */
/*
 * control.c — the control socket server (see control.h for the protocol).
 *
 * One ControlConnection per client: one io source (owning the socket), one
 * defer source that resumes pipelined requests after the one in flight
 * ends, an input buffer of CONTROL_LINE_MAX bytes and an output queue.
 * Nothing here blocks: reads and writes are non-blocking, a client that
 * does not read its answers is dropped once CONTROL_OUTPUT_MAX bytes wait
 * for it, and a few reads or requests per wakeup hand the loop back.
 *
 * Deadlines: each connection has one timer, armed for what it waits for
 * now (conn_wait(): a request, the rest of a line, a reader, the end of a
 * linger) and moved whenever that changes. The timers share the loop's
 * CLOCK_MONOTONIC timerfd, so a connection costs one descriptor, its own.
 *
 * Lifetime: a connection is reference counted. The server holds one
 * reference while it is connected, a request in flight holds one, and every
 * callback holds one while it runs, so a client going away in the middle of
 * a handler (a write fails) only marks the connection dead; the memory
 * goes when the last reference does.
 */
#include "daemon/control.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <json-c/json_object_iterator.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>

#include "aws/names.h"
#include "basic/duration.h"
#include "basic/json-util.h"
#include "basic/log.h"
#include "basic/secret.h"
#include "basic/util.h"

#define CONTROL_READS_PER_WAKEUP 16U
#define CONTROL_REQUESTS_PER_WAKEUP 16U
#define CONTROL_ACCEPTS_PER_WAKEUP 64U
#define CONTROL_JSON_DEPTH 8
#define CONTROL_ACCEPT_PAUSE (100 * USEC_PER_MSEC)
/* How long a refused client (or one that broke the protocol) may take to
 * read our last line and hang up before we close on it. */
#define CONTROL_LINGER (1 * USEC_PER_SEC)
/* Deadlines are kept to this: timers due together wake the loop once. */
#define CONTROL_TIMER_ACCURACY (250 * USEC_PER_MSEC)
/* User input echoed in an error message is cut to this many bytes. */
#define CONTROL_ECHO_MAX 64U

typedef struct ControlConnection ControlConnection;

/* What a connection waits for; each has its deadline (wait_timeout()). */
typedef enum ControlWait {
        WAIT_NOTHING, /* a request runs, or a complete line is about to be served */
        WAIT_REQUEST, /* idle: no request since it connected or since its last answer */
        WAIT_LINE,    /* the rest of a request line */
        WAIT_READER,  /* the client to read the answers queued for it */
        WAIT_LINGER,  /* the client to hang up after our last line */
} ControlWait;

static inline void *mfree(void *p) {
        free(p);
        return NULL;
}

struct ControlServer {
        sd_event *event;
        sd_event_source *listen_source; /* owns the listening socket */
        sd_event_source *accept_pause;  /* re-enables accepting after EMFILE and friends */
        bool accept_paused;
        char *path;                     /* the socket file we created, removed at free */
        dev_t path_dev;
        ino_t path_ino;
        ControlHandlers handlers;
        void *userdata;
        /* The credentials socket: every peer is let in, only get is
         * answered, and the handler judges the peer (control_request_peer()). */
        bool credentials;
        bool have_group;
        gid_t group;
        ControlConnection *connections;
        unsigned n_connections;   /* authorised ones, against max_connections */
        unsigned n_refused;       /* refused ones still lingering */
        unsigned max_connections; /* control_server_set_max_connections() */
        /* Drops are logged CONTROL_LOG_BURST at a time per
         * CONTROL_LOG_INTERVAL; the rest are counted, and the count is
         * logged when the interval ends (log_timer). */
        sd_event_source *log_timer;
        usec_t log_window;
        unsigned log_count, log_suppressed;
};

struct ControlConnection {
        unsigned n_ref;
        ControlServer *server; /* NULL once disconnected */
        ControlConnection *prev, *next;
        sd_event_source *io;    /* owns the socket */
        sd_event_source *defer; /* resumes processing of buffered requests */
        sd_event_source *timer; /* the deadline of what it waits for */
        ControlWait wait;
        usec_t wait_since; /* CLOCK_MONOTONIC: when the wait began, or the reader last read */
        ControlPeer peer; /* as the kernel recorded it at connect(); groups malloc'd */
        pid_t pid;
        char *in; /* CONTROL_LINE_MAX bytes, allocated on the first read */
        size_t in_len;
        char *out; /* pending output is out[out_start..out_len) */
        size_t out_start, out_len, out_size;
        /* A final response holding a secret (control_reply_secret()): sent
         * from secure memory after out[], before anything else is read. */
        Secret *secret_out;
        size_t secret_sent;
        ControlRequest *req; /* the request in flight */
        bool refused;        /* never authorised: nothing is read but to discard it */
        bool read_eof;       /* the client shut down its sending side */
        bool closing;        /* last line queued: close once it is out */
        bool lingering;      /* our side shut down; discarding input until the client hangs up */
        bool dead;
};

struct ControlRequest {
        ControlConnection *conn; /* a reference */
        const char *cmd;         /* static */
        bool replied;
};

static void conn_update_events(ControlConnection *c);
static void conn_process(ControlConnection *c);

/* ------------------------------------------------------------------------
 * Who may connect
 */

bool control_peer_allowed(uid_t uid, gid_t gid, const gid_t *groups, size_t n_groups, uid_t self, bool have_group,
                          gid_t allowed_gid) {
        /* Our own uid could ptrace us anyway: it gains nothing here. In
         * production that is root; it lets tests run unprivileged. */
        if (uid == 0 || uid == self)
                return true;
        if (!have_group)
                return false;
        if (gid == allowed_gid)
                return true;
        for (size_t i = 0; i < n_groups; i++)
                if (groups[i] == allowed_gid)
                        return true;
        return false;
}

/*
 * Supplementary groups come from SO_PEERGROUPS, not from getgrouplist() on
 * the peer's passwd entry: the kernel records them at connect(), together
 * with SO_PEERCRED, so they are the groups the peer process actually holds
 * (a service that dropped its supplementary groups does not regain them
 * here, and a user added to the group must log in again, as everywhere),
 * and reading them never blocks the loop on NSS (LDAP, sssd). On a kernel
 * without SO_PEERGROUPS (before 4.13) only the effective gid counts: we
 * fail closed rather than fall back to a database lookup.
 */
int control_peer_credentials(int fd, uid_t *ret_uid, gid_t *ret_gid, gid_t **ret_groups, size_t *ret_n_groups) {
        _cleanup_free_ gid_t *groups = NULL;
        struct ucred cred = {};
        socklen_t len = sizeof(cred);
        size_t n = 0, size = 32;

        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
                return -errno;
        if (len != sizeof(cred))
                return -EIO;

        for (;;) {
                gid_t *g = realloc(groups, size * sizeof(gid_t));

                if (!g)
                        return -ENOMEM;
                groups = g;
                len = (socklen_t) (size * sizeof(gid_t));
                if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) >= 0) {
                        n = len / sizeof(gid_t);
                        break;
                }
                if (errno == ENOPROTOOPT) {
                        n = 0;
                        break;
                }
                if (errno != ERANGE)
                        return -errno;
                /* ERANGE: len now says how much is needed. */
                if (len <= size * sizeof(gid_t) || len / sizeof(gid_t) > NGROUPS_MAX)
                        return -EIO;
                size = len / sizeof(gid_t);
        }

        *ret_uid = cred.uid;
        *ret_gid = cred.gid;
        if (ret_groups)
                *ret_groups = TAKE_PTR(groups);
        if (ret_n_groups)
                *ret_n_groups = n;
        return 0;
}

/* User input in an error message: cut, and nothing a terminal interprets. */
static void echo_safe(const char *s, size_t len, char *buf, size_t size) {
        size_t n = 0;

        for (size_t i = 0; i < len && n + 4 < size && i < CONTROL_ECHO_MAX; i++) {
                unsigned char ch = (unsigned char) s[i];
                buf[n++] = ch < 0x20 || ch >= 0x7f ? '?' : (char) ch;
        }
        if (len > CONTROL_ECHO_MAX && n + 4 < size) {
                memcpy(buf + n, "...", 3);
                n += 3;
        }
        buf[n] = 0;
}

/* ------------------------------------------------------------------------
 * Connections: life cycle and output
 */

static ControlConnection *conn_ref(ControlConnection *c) {
        c->n_ref++;
        return c;
}

static void conn_unref(ControlConnection *c) {
        if (!c || --c->n_ref > 0)
                return;
        free(c->in);
        free(c->out);
        secret_free(c->secret_out);
        free(c->peer.groups);
        free(c);
}

/* Close the socket and leave the server; the memory stays while referenced. */
static void conn_disconnect(ControlConnection *c) {
        ControlServer *s = c->server;

        if (c->dead)
                return;
        c->dead = true;
        c->io = sd_event_source_disable_unref(c->io);
        c->defer = sd_event_source_disable_unref(c->defer);
        c->timer = sd_event_source_disable_unref(c->timer);
        c->in = mfree(c->in);
        c->out = mfree(c->out);
        c->in_len = c->out_start = c->out_len = c->out_size = 0;
        c->secret_out = secret_free(c->secret_out);
        if (s) {
                if (c->prev)
                        c->prev->next = c->next;
                else
                        s->connections = c->next;
                if (c->next)
                        c->next->prev = c->prev;
                if (c->refused)
                        s->n_refused--;
                else
                        s->n_connections--;
                c->server = NULL;
                /* A descriptor just came free: accept again if we had run out. */
                if (s->accept_paused && sd_event_source_set_enabled(s->listen_source, SD_EVENT_ON) >= 0)
                        s->accept_paused = false;
        }
        c->prev = c->next = NULL;
        conn_unref(c); /* the server's reference */
}

static int conn_fd(ControlConnection *c) {
        return c->io ? sd_event_source_get_io_fd(c->io) : -1;
}

/* Answers queued and not yet sent. */
static bool conn_pending(const ControlConnection *c) {
        return c->out_start < c->out_len || c->secret_out;
}

/* 1 when all of @p went out, 0 when the socket is full (EAGAIN), or
 * -errno when the client is gone; *sent counts what went out. */
static int conn_send(int fd, const char *p, size_t len, size_t *sent) {
        while (*sent < len) {
                ssize_t n = send(fd, p + *sent, len - *sent, MSG_NOSIGNAL | MSG_DONTWAIT);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return errno == EAGAIN ? 0 : -errno;
                }
                *sent += (size_t) n;
        }
        return 1;
}

static void conn_flush(ControlConnection *c) {
        size_t was_out = c->out_start, was_secret = c->secret_sent;
        bool had_secret = c->secret_out, progress;
        int k = 1;

        if (c->dead)
                return;
        if (c->out_start < c->out_len)
                k = conn_send(conn_fd(c), c->out, c->out_len, &c->out_start);
        /* The secret answer follows whatever was queued before it. */
        if (k > 0 && c->secret_out) {
                k = conn_send(conn_fd(c), c->secret_out->data, c->secret_out->len, &c->secret_sent);
                if (k > 0) {
                        c->secret_out = secret_free(c->secret_out);
                        c->secret_sent = 0;
                        /* Requests that came behind it may be served now. */
                        if (sd_event_source_set_enabled(c->defer, SD_EVENT_ONESHOT) < 0)
                                k = -ENOMEM;
                }
        }
        if (k < 0) {
                /* EPIPE, ECONNRESET: the client is gone. */
                conn_disconnect(c);
                return;
        }
        progress = c->out_start != was_out || c->secret_sent != was_secret || (had_secret && !c->secret_out);
        /* A reader that reads, however slowly, is not stuck: its
         * deadline counts from the last byte it took. */
        if (progress && c->wait == WAIT_READER && c->server)
                (void) sd_event_now(c->server->event, CLOCK_MONOTONIC, &c->wait_since);
        if (c->out_start == c->out_len) {
                c->out_start = c->out_len = 0;
                /* Do not keep a big status answer's buffer for an idle client. */
                if (c->out_size > 64 * 1024) {
                        c->out = mfree(c->out);
                        c->out_size = 0;
                }
        }
        conn_update_events(c);
}

static int conn_queue(ControlConnection *c, const char *data, size_t len) {
        size_t pending = c->out_len - c->out_start;

        if (c->dead)
                return -ENOTCONN;
        /* A reader that falls this far behind is not reading: drop it
         * rather than let its answers pile up in our memory. */
        if (pending > CONTROL_OUTPUT_MAX) {
                conn_disconnect(c);
                return -ENOBUFS;
        }
        if (c->out_start > 0) {
                memmove(c->out, c->out + c->out_start, pending);
                c->out_start = 0;
                c->out_len = pending;
        }
        if (len + 1 > c->out_size - c->out_len) {
                size_t want = c->out_len + len + 1, size = c->out_size ?: 4096;
                char *p;

                while (size < want)
                        size *= 2;
                p = realloc(c->out, size);
                if (!p) {
                        conn_disconnect(c);
                        return -ENOMEM;
                }
                c->out = p;
                c->out_size = size;
        }
        memcpy(c->out + c->out_len, data, len);
        c->out[c->out_len + len] = '\n';
        c->out_len += len + 1;
        conn_flush(c);
        return 0;
}

static void conn_send_object(ControlConnection *c, json_object *o) {
        static const char oom[] = "{\"ok\":false,\"error\":\"out of memory\"}";
        const char *s;
        size_t len = 0;

        s = o ? json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len)
              : NULL;
        if (!s) {
                s = oom;
                len = sizeof(oom) - 1;
        }
        (void) conn_queue(c, s, len);
}

static json_object *error_object(const char *msg) {
        json_object *o = json_object_new_object();

        if (o) {
                json_object_object_add(o, "ok", json_object_new_boolean(false));
                json_object_object_add(o, "error", json_object_new_string(msg));
        }
        return o;
}

static void conn_send_error(ControlConnection *c, const char *fmt, ...) _printf_(2, 3);
static void conn_send_error(ControlConnection *c, const char *fmt, ...) {
        char msg[512];
        json_object *o;
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        o = error_object(msg);
        conn_send_object(c, o);
        json_object_put(o);
}

/* A protocol error (or a refusal): nothing more is read from this client
 * but to discard it; the connection closes once this line is out. */
static void conn_send_error_and_close(ControlConnection *c, const char *msg) {
        json_object *o = error_object(msg);

        c->closing = true;
        c->in_len = 0;
        conn_send_object(c, o);
        json_object_put(o);
}

/*
 * After the last line: shut down our sending side and discard whatever the
 * client still sends until it hangs up (or CONTROL_LINGER passes). Closing
 * at once would make a client that is still writing its request see EPIPE
 * before it reads our answer, and could reset the connection under it.
 */
static void conn_start_linger(ControlConnection *c) {
        ControlServer *s = c->server;

        if (c->lingering || c->dead)
                return;
        if (!s || (c->refused && s->n_refused > CONTROL_REFUSED_MAX) || shutdown(conn_fd(c), SHUT_WR) < 0) {
                conn_disconnect(c);
                return;
        }
        c->lingering = true;
        conn_update_events(c); /* arms the timer for CONTROL_LINGER */
}

static bool conn_has_line(const ControlConnection *c) {
        return c->in_len > 0 && memchr(c->in, '\n', c->in_len);
}

/* Done with this connection? */
static void conn_maybe_finish(ControlConnection *c) {
        if (c->dead || c->lingering || conn_pending(c))
                return;
        if (c->closing)
                conn_start_linger(c);
        else if (c->read_eof && !c->req && c->in_len == 0)
                conn_disconnect(c);
}

static ControlWait conn_wait(const ControlConnection *c) {
        if (c->lingering)
                return WAIT_LINGER;
        if (conn_pending(c))
                return WAIT_READER;
        if (c->req || c->closing || c->read_eof || conn_has_line(c))
                return WAIT_NOTHING; /* served, or about to be, or about to close */
        return c->in_len > 0 ? WAIT_LINE : WAIT_REQUEST;
}

static usec_t wait_timeout(ControlWait w) {
        switch (w) {
        case WAIT_REQUEST: return CONTROL_IDLE_TIMEOUT;
        case WAIT_LINE: return CONTROL_LINE_TIMEOUT;
        case WAIT_READER: return CONTROL_SEND_TIMEOUT;
        case WAIT_LINGER: return CONTROL_LINGER;
        default: return USEC_INFINITY;
        }
}

/* The timer follows what the connection waits for; a new wait starts its
 * deadline afresh. Returns < 0 if the timer could not be armed. */
static int conn_update_deadline(ControlConnection *c) {
        ControlWait w = conn_wait(c);
        usec_t now;
        int r;

        if (w == WAIT_NOTHING) {
                c->wait = w;
                return sd_event_source_set_enabled(c->timer, SD_EVENT_OFF);
        }
        if (w != c->wait) {
                r = sd_event_now(c->server->event, CLOCK_MONOTONIC, &now);
                if (r < 0)
                        return r;
                c->wait = w;
                c->wait_since = now;
        }
        r = sd_event_source_set_time(c->timer, c->wait_since + wait_timeout(w));
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
}

static void conn_update_events(ControlConnection *c) {
        uint32_t events = 0;

        if (c->dead || !c->server)
                return;
        if (c->lingering)
                events = EPOLLIN;
        else {
                /* Read ahead while a request runs, up to one full line. */
                if (!c->refused && !c->closing && !c->read_eof && c->in_len < CONTROL_LINE_MAX && !conn_has_line(c))
                        events |= EPOLLIN;
                if (conn_pending(c))
                        events |= EPOLLOUT;
        }
        /* EPOLLHUP and EPOLLERR come regardless: a client that hangs up is
         * noticed even while nothing is read from it. */
        if (sd_event_source_set_io_events(c->io, events) < 0 || conn_update_deadline(c) < 0)
                conn_disconnect(c);
}

static void conn_discard_input(ControlConnection *c) {
        char buf[4096];

        for (unsigned k = 0; k < CONTROL_READS_PER_WAKEUP; k++) {
                ssize_t n = recv(conn_fd(c), buf, sizeof(buf), MSG_DONTWAIT);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                if (n <= 0) {
                        conn_disconnect(c);
                        return;
                }
        }
}

static void conn_read(ControlConnection *c) {
        if (!c->in) {
                c->in = malloc(CONTROL_LINE_MAX);
                if (!c->in) {
                        conn_disconnect(c);
                        return;
                }
        }
        for (unsigned k = 0; k < CONTROL_READS_PER_WAKEUP && c->in_len < CONTROL_LINE_MAX; k++) {
                ssize_t n = recv(conn_fd(c), c->in + c->in_len, CONTROL_LINE_MAX - c->in_len, MSG_DONTWAIT);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        break;
                if (n < 0) {
                        conn_disconnect(c);
                        return;
                }
                if (n == 0) {
                        c->read_eof = true;
                        break;
                }
                c->in_len += (size_t) n;
                if (memchr(c->in + c->in_len - (size_t) n, '\n', (size_t) n))
                        break; /* a request to serve first */
        }
        conn_update_events(c);
}

static int on_conn_io(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        ControlConnection *c = conn_ref(userdata);

        if (revents & (EPOLLHUP | EPOLLERR))
                /* Gone (both directions shut): whatever it sent last is
                 * not started, whatever runs for it goes on unobserved. */
                conn_disconnect(c);
        else if (c->lingering) {
                if (revents & EPOLLIN)
                        conn_discard_input(c);
        } else {
                if (revents & EPOLLOUT)
                        conn_flush(c);
                if (!c->dead && (revents & EPOLLIN))
                        conn_read(c);
                conn_process(c);
        }
        conn_unref(c);
        return 0;
}

static int on_conn_defer(sd_event_source *source, void *userdata) {
        ControlConnection *c = conn_ref(userdata);

        conn_process(c);
        conn_unref(c);
        return 0;
}

/* ------------------------------------------------------------------------
 * Requests
 */

static ControlHandlers *conn_handlers(ControlConnection *c) {
        return c->server ? &c->server->handlers : NULL;
}

bool control_request_alive(ControlRequest *req) {
        return req && req->conn && !req->conn->dead;
}

const ControlPeer *control_request_peer(ControlRequest *req) {
        return &req->conn->peer;
}

void control_reply(ControlRequest *req, json_object *obj) {
        json_object *o = NULL, *ok = NULL;
        bool is_ok = true;

        if (!req || req->replied) {
                json_object_put(obj);
                return;
        }
        req->replied = true;
        if (!control_request_alive(req)) {
                json_object_put(obj);
                return;
        }
        if (obj && !json_object_is_type(obj, json_type_object)) {
                json_object_put(obj);
                obj = NULL;
                is_ok = false;
        }

        /* Rebuilt with "ok" first, so the final line reads well in a log. */
        if (obj && json_object_object_get_ex(obj, "ok", &ok))
                is_ok = json_object_get_boolean(ok);
        o = json_object_new_object();
        if (o) {
                json_object_object_add(o, "ok", json_object_new_boolean(is_ok));
                if (obj)
                        for (struct json_object_iterator i = json_object_iter_begin(obj),
                                                         end = json_object_iter_end(obj);
                             !json_object_iter_equal(&i, &end); json_object_iter_next(&i)) {
                                const char *key = json_object_iter_peek_name(&i);

                                if (!streq(key, "ok"))
                                        json_object_object_add(o, key,
                                                               json_object_get(json_object_iter_peek_value(&i)));
                        }
                /* Every error carries a message. */
                if (!is_ok && !json_object_object_get_ex(o, "error", NULL))
                        json_object_object_add(o, "error", json_object_new_string(obj ? "failed" : "internal error"));
        }
        conn_send_object(req->conn, o);
        json_object_put(o);
        json_object_put(obj);
}

void control_reply_secret(ControlRequest *req, Secret *line) {
        ControlConnection *c;

        if (!req || req->replied || !control_request_alive(req) || !line || line->len == 0 ||
            line->data[0] != '{' || memchr(line->data, '\n', line->len)) {
                secret_free(line);
                if (req && !req->replied)
                        control_reply(req, error_object("internal error"));
                return;
        }
        req->replied = true;
        c = req->conn;
        if (secret_append(&line, "\n", 1, 0) < 0) {
                secret_free(line);
                conn_send_error(c, "%s: %s", req->cmd, strerror(ENOMEM));
                return;
        }
        c->secret_out = line;
        c->secret_sent = 0;
        conn_flush(c);
}

void control_stream(ControlRequest *req, json_object *obj) {
        if (!control_request_alive(req) || req->replied || !obj || !json_object_is_type(obj, json_type_object)) {
                json_object_put(obj);
                return;
        }
        /* Framing: a line with "ok" is the final response. */
        json_object_object_del(obj, "ok");
        if (!json_object_object_get_ex(obj, "event", NULL))
                json_object_object_add(obj, "event", json_object_new_string("progress"));
        conn_send_object(req->conn, obj);
        json_object_put(obj);
}

void control_request_end(ControlRequest *req) {
        ControlConnection *c;

        if (!req)
                return;
        c = req->conn;
        if (!req->replied)
                control_reply(req, error_object("request ended without an answer"));
        if (c->req == req)
                c->req = NULL;
        /* The next pipelined request, if any, from the loop: never from
         * inside the caller, which may be a handler of this connection. */
        if (!c->dead && sd_event_source_set_enabled(c->defer, SD_EVENT_ONESHOT) < 0)
                conn_disconnect(c);
        free(req);
        conn_unref(c);
}

static void reply_errorf(ControlRequest *req, const char *fmt, ...) _printf_(2, 3);
static void reply_errorf(ControlRequest *req, const char *fmt, ...) {
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        control_reply(req, error_object(msg));
}

typedef struct Parsed {
        const char *cmd;
        char **users; /* NULL-terminated; NULL with all */
        size_t n_users;
        bool all, wait, replace_lost;
        const char *user; /* rollback; borrowed from the JSON */
} Parsed;

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* A member's name must be one of @allowed (NULL-terminated). */
static int check_members(json_object *o, const char *cmd, const char *const *allowed, char *err, size_t size) {
        for (struct json_object_iterator i = json_object_iter_begin(o), end = json_object_iter_end(o);
             !json_object_iter_equal(&i, &end); json_object_iter_next(&i)) {
                const char *key = json_object_iter_peek_name(&i);
                bool known = false;

                for (const char *const *a = allowed; *a; a++)
                        known = known || streq(*a, key);
                if (!known) {
                        char e[CONTROL_ECHO_MAX + 8];

                        echo_safe(key, strlen(key), e, sizeof(e));
                        snprintf(err, size, "%s: unknown member \"%s\"", cmd, e);
                        return -EINVAL;
                }
        }
        return 0;
}

static int get_user_name(json_object *v, const char *cmd, const char *what, const char **ret, char *err,
                         size_t size) {
        char e[CONTROL_ECHO_MAX + 8];
        const char *s, *problem;
        size_t len;

        if (!json_object_is_type(v, json_type_string)) {
                snprintf(err, size, "%s: %s must be a string", cmd, what);
                return -EINVAL;
        }
        s = json_object_get_string(v);
        len = (size_t) json_object_get_string_len(v);
        /* strlen() catches an embedded \u0000. */
        problem = strlen(s) != len ? "contains a NUL byte" : iam_user_name_problem(s);
        if (problem) {
                echo_safe(s, len, e, sizeof(e));
                snprintf(err, size, "%s: invalid user name \"%s\": %s", cmd, e, problem);
                return -EINVAL;
        }
        *ret = s;
        return 0;
}

static void parsed_done(Parsed *p) {
        strv_free(p->users);
        p->users = NULL;
}

/* Arguments of a known command; an error leaves the connection open. */
static int parse_arguments(json_object *o, Parsed *p, char *err, size_t size) {
        json_object *v;
        int r;

        if (streq(p->cmd, "status") || streq(p->cmd, "reload"))
                return check_members(o, p->cmd, (const char *const[]){ "cmd", NULL }, err, size);

        if (streq(p->cmd, "rollback") || streq(p->cmd, "get")) {
                r = check_members(o, p->cmd, (const char *const[]){ "cmd", "user", NULL }, err, size);
                if (r < 0)
                        return r;
                if (!json_object_object_get_ex(o, "user", &v)) {
                        snprintf(err, size, "%s: \"user\" missing", p->cmd);
                        return -EINVAL;
                }
                return get_user_name(v, p->cmd, "\"user\"", &p->user, err, size);
        }

        /* rotate */
        r = check_members(o, p->cmd, (const char *const[]){ "cmd", "users", "all", "wait", "replace_lost", NULL }, err,
                          size);
        if (r < 0)
                return r;
        if (json_object_object_get_ex(o, "wait", &v)) {
                if (!json_object_is_type(v, json_type_boolean)) {
                        snprintf(err, size, "rotate: \"wait\" must be true or false");
                        return -EINVAL;
                }
                p->wait = json_object_get_boolean(v);
        }
        if (json_object_object_get_ex(o, "replace_lost", &v)) {
                if (!json_object_is_type(v, json_type_boolean)) {
                        snprintf(err, size, "rotate: \"replace_lost\" must be true or false");
                        return -EINVAL;
                }
                p->replace_lost = json_object_get_boolean(v);
        }
        /* Replacing a lost key is a decision about one user's key, made by
         * an operator who looked: never in bulk. */
        if (p->replace_lost) {
                if (!json_object_object_get_ex(o, "users", &v) || !json_object_is_type(v, json_type_array) ||
                    json_object_array_length(v) != 1) {
                        snprintf(err, size, "rotate: \"replace_lost\" needs \"users\" with exactly one user");
                        return -EINVAL;
                }
        }
        if (json_object_object_get_ex(o, "all", &v)) {
                if (!json_object_is_type(v, json_type_boolean)) {
                        snprintf(err, size, "rotate: \"all\" must be true or false");
                        return -EINVAL;
                }
                p->all = json_object_get_boolean(v);
        }
        if (!json_object_object_get_ex(o, "users", &v)) {
                if (!p->all) {
                        snprintf(err, size, "rotate: give \"users\":[…] or \"all\":true");
                        return -EINVAL;
                }
                return 0;
        }
        if (p->all) {
                snprintf(err, size, "rotate: \"users\" and \"all\" exclude each other");
                return -EINVAL;
        }
        if (!json_object_is_type(v, json_type_array)) {
                snprintf(err, size, "rotate: \"users\" must be an array of user names");
                return -EINVAL;
        }
        size_t n = json_object_array_length(v);
        if (n == 0) {
                snprintf(err, size, "rotate: \"users\" is empty");
                return -EINVAL;
        }
        if (n > CONTROL_USERS_MAX) {
                snprintf(err, size, "rotate: more than %u users", CONTROL_USERS_MAX);
                return -E2BIG;
        }

        _cleanup_strv_free_ char **users = calloc(n + 1, sizeof(char *));
        _cleanup_free_ char **sorted = calloc(n, sizeof(char *));
        if (!users || !sorted)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const char *name;

                r = get_user_name(json_object_array_get_idx(v, i), p->cmd, "each of \"users\"", &name, err, size);
                if (r < 0)
                        return r;
                users[i] = strdup(name);
                if (!users[i])
                        return -ENOMEM;
                sorted[i] = users[i];
        }
        /* Sorted, duplicates are neighbours: O(n log n) for 10,000 names. */
        qsort(sorted, n, sizeof(char *), cmp_str);
        for (size_t i = 1; i < n; i++)
                if (streq(sorted[i - 1], sorted[i])) {
                        snprintf(err, size, "rotate: user \"%s\" given twice", sorted[i]);
                        return -EINVAL;
                }
        p->users = TAKE_PTR(users);
        p->n_users = n;
        return 0;
}

static void conn_dispatch(ControlConnection *c, const Parsed *p) {
        ControlHandlers *h = conn_handlers(c);
        ControlRequest *req;
        void *userdata;
        int r = -EOPNOTSUPP;

        if (!h)
                return;
        userdata = c->server->userdata;
        req = calloc(1, sizeof(*req));
        if (!req) {
                conn_send_error(c, "%s: %s", p->cmd, strerror(ENOMEM));
                return;
        }
        *req = (ControlRequest){ .conn = conn_ref(c), .cmd = p->cmd };
        c->req = req;

        /* The handler may reply and end now (then c->req is NULL on return)
         * or keep the request for later. */
        if (streq(p->cmd, "status") && h->status)
                r = h->status(req, userdata);
        else if (streq(p->cmd, "rotate") && h->rotate)
                r = h->rotate(req, p->all ? NULL : p->users, p->wait, p->replace_lost, userdata);
        else if (streq(p->cmd, "reload") && h->reload)
                r = h->reload(req, userdata);
        else if (streq(p->cmd, "rollback") && h->rollback)
                r = h->rollback(req, p->user, userdata);
        else if (streq(p->cmd, "get") && h->get)
                r = h->get(req, p->user, userdata);

        if (r < 0 && c->req && !c->req->replied) {
                req = c->req;
                if (r == -EOPNOTSUPP)
                        reply_errorf(req, "%s: not supported by this daemon", p->cmd);
                else
                        reply_errorf(req, "%s: %s", p->cmd, strerror(-r));
                control_request_end(req);
        }
}

static const char *const commands[] = { "status", "rotate", "reload", "rollback", "get" };

static bool is_space(char c) {
        return c == ' ' || c == '\t' || c == '\r';
}

static bool blank(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (!is_space(s[i]))
                        return false;
        return true;
}

/* One line, without its "\n". */
static void conn_handle_line(ControlConnection *c, const char *line, size_t len) {
        _cleanup_json_tokener_ json_tokener *tok = NULL;
        _cleanup_json_ json_object *o = NULL;
        _cleanup_(parsed_done) Parsed p = {};
        json_object *v;
        char err[512];
        size_t end;

        if (memchr(line, 0, len)) {
                conn_send_error_and_close(c, "malformed request: NUL byte");
                return;
        }
        tok = json_tokener_new_ex(CONTROL_JSON_DEPTH);
        if (!tok) {
                conn_send_error(c, "out of memory");
                return;
        }
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        o = json_tokener_parse_ex(tok, line, (int) len);
        if (!o) {
                enum json_tokener_error e = json_tokener_get_error(tok);

                for (end = 0; end < len && is_space(line[end]); end++)
                        ;
                /* A bare number or literal (null, 123) never completes here. */
                if (e == json_tokener_continue || e == json_tokener_success)
                        snprintf(err, sizeof(err), "malformed request: %s",
                                 line[end] == '{' ? "incomplete JSON" : "not a JSON object");
                else
                        snprintf(err, sizeof(err), "malformed request: %s", json_tokener_error_desc(e));
                conn_send_error_and_close(c, err);
                return;
        }
        for (end = json_tokener_get_parse_end(tok); end < len && is_space(line[end]); end++)
                ;
        if (end < len || !json_object_is_type(o, json_type_object)) {
                conn_send_error_and_close(c, end < len ? "malformed request: one JSON object per line"
                                                       : "malformed request: not a JSON object");
                return;
        }
        if (!json_object_object_get_ex(o, "cmd", &v) || !json_object_is_type(v, json_type_string)) {
                conn_send_error_and_close(c, "malformed request: \"cmd\" missing or not a string");
                return;
        }
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (streq(json_object_get_string(v), commands[i]))
                        p.cmd = commands[i];
        if (!p.cmd) {
                char e[CONTROL_ECHO_MAX + 8];

                echo_safe(json_object_get_string(v), (size_t) json_object_get_string_len(v), e, sizeof(e));
                snprintf(err, sizeof(err), "unknown command \"%s\" (status, rotate, reload, rollback, get)", e);
                conn_send_error_and_close(c, err);
                return;
        }
        /* Anybody may connect to the credentials socket: it must not even
         * parse the arguments of what it does not serve. */
        if (c->server && c->server->credentials && !streq(p.cmd, "get")) {
                conn_send_error_and_close(c, "permission denied: the credentials socket answers only get");
                return;
        }
        if (parse_arguments(o, &p, err, sizeof(err)) < 0)
                conn_send_error(c, "%s", err);
        else
                conn_dispatch(c, &p);
}

/* Serve buffered requests, one at a time, a few per wakeup. */
static void conn_process(ControlConnection *c) {
        unsigned k = 0;

        while (!c->dead && !c->req && !c->secret_out && !c->closing && !c->lingering && c->in_len > 0) {
                char *nl = memchr(c->in, '\n', c->in_len);
                size_t len, consumed;

                if (k++ >= CONTROL_REQUESTS_PER_WAKEUP) {
                        /* More later: let the other clients have the loop. */
                        if (sd_event_source_set_enabled(c->defer, SD_EVENT_ONESHOT) < 0)
                                conn_disconnect(c);
                        return;
                }
                if (nl) {
                        len = (size_t) (nl - c->in);
                        consumed = len + 1;
                } else if (c->in_len >= CONTROL_LINE_MAX) {
                        conn_send_error_and_close(c, "request too long (no newline within 65536 bytes)");
                        break;
                } else if (c->read_eof)
                        consumed = len = c->in_len; /* a last line without "\n" */
                else
                        break;

                if (blank(c->in, len)) {
                        memmove(c->in, c->in + consumed, c->in_len - consumed);
                        c->in_len -= consumed;
                        continue;
                }
                /* Parsed from a copy: the handler may disconnect us (and
                 * free the buffer) before we are back. */
                _cleanup_free_ char *line = malloc(len + 1);
                if (!line) {
                        conn_disconnect(c);
                        return;
                }
                memcpy(line, c->in, len);
                line[len] = 0;
                memmove(c->in, c->in + consumed, c->in_len - consumed);
                c->in_len -= consumed;
                conn_handle_line(c, line, len);
        }
        if (!c->dead) {
                conn_update_events(c);
                conn_maybe_finish(c);
        }
}

/* ------------------------------------------------------------------------
 * Dropping clients, and saying so
 */

static void server_log_suppressed(ControlServer *s) {
        char d[DURATION_STRING_MAX];

        if (s->log_suppressed > 0)
                log_warning("control socket: %u more client%s dropped or refused in the last %s (not logged one by one)",
                            s->log_suppressed, s->log_suppressed == 1 ? "" : "s",
                            format_duration(CONTROL_LOG_INTERVAL, d, sizeof(d)) ?: "?");
        s->log_suppressed = 0;
}

static int on_log_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        ControlServer *s = userdata;

        server_log_suppressed(s);
        s->log_window = usec;
        s->log_count = 0;
        return 0;
}

/* One line per dropped or refused client, CONTROL_LOG_BURST per
 * CONTROL_LOG_INTERVAL: a flood of clients must not become a flood in
 * the journal. */
static void server_log_client(ControlServer *s, uid_t uid, pid_t pid, const char *what) {
        usec_t now;

        if (sd_event_now(s->event, CLOCK_MONOTONIC, &now) < 0)
                now = now_usec(CLOCK_MONOTONIC);
        if (now >= s->log_window + CONTROL_LOG_INTERVAL) {
                server_log_suppressed(s);
                s->log_window = now;
                s->log_count = 0;
        }
        if (s->log_count < CONTROL_LOG_BURST) {
                s->log_count++;
                log_warning("control socket: client uid %u pid %u %s", (unsigned) uid, (unsigned) pid, what);
                return;
        }
        if (s->log_suppressed++ == 0 &&
            (sd_event_source_set_time(s->log_timer, s->log_window + CONTROL_LOG_INTERVAL) < 0 ||
             sd_event_source_set_enabled(s->log_timer, SD_EVENT_ONESHOT) < 0))
                server_log_suppressed(s); /* say it now rather than never */
}

/* Close @c and log why: "@why" and, with @timed, the deadline it missed. */
static void conn_drop(ControlConnection *c, const char *why, bool timed) {
        char what[192], d[DURATION_STRING_MAX];

        if (c->server && !c->refused) {
                snprintf(what, sizeof(what), "dropped: %s%s%s", why, timed ? " " : "",
                         timed ? format_duration(wait_timeout(c->wait), d, sizeof(d)) ?: "?" : "");
                server_log_client(c->server, c->peer.uid, c->pid, what);
        }
        conn_disconnect(c);
}

static int on_conn_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        ControlConnection *c = conn_ref(userdata);

        switch (c->wait) {
        case WAIT_REQUEST: conn_drop(c, "idle, no request within", true); break;
        case WAIT_LINE: conn_drop(c, "too slow, a request line not complete within", true); break;
        case WAIT_READER: conn_drop(c, "not reading its answers for", true); break;
        default: conn_disconnect(c); break; /* the end of a linger */
        }
        conn_unref(c);
        return 0;
}

/* The authorised connection idle longest (no request in flight, nothing
 * to send), or NULL when every one is busy. */
static ControlConnection *server_find_idle(ControlServer *s) {
        ControlConnection *best = NULL;

        for (ControlConnection *c = s->connections; c; c = c->next)
                if (!c->refused && (c->wait == WAIT_REQUEST || c->wait == WAIT_LINE) &&
                    (!best || c->wait_since < best->wait_since))
                        best = c;
        return best;
}

/* ------------------------------------------------------------------------
 * Accepting
 */

static int on_accept_pause_end(sd_event_source *source, uint64_t usec, void *userdata) {
        ControlServer *s = userdata;

        if (s->accept_paused && sd_event_source_set_enabled(s->listen_source, SD_EVENT_ON) >= 0)
                s->accept_paused = false;
        return 0;
}

static void server_pause_accepting(ControlServer *s) {
        /*
         * Out of descriptors: the listening socket stays readable, and
         * retrying at once would spin. Try again in a moment, or as soon as
         * one of our connections closes. The timer exists since the start
         * (so its timerfd does), so arming it needs no new descriptor.
         */
        if (sd_event_source_set_enabled(s->listen_source, SD_EVENT_OFF) < 0)
                return;
        s->accept_paused = true;
        if (sd_event_source_set_time_relative(s->accept_pause, CONTROL_ACCEPT_PAUSE) < 0 ||
            sd_event_source_set_enabled(s->accept_pause, SD_EVENT_ONESHOT) < 0)
                return; /* the next connection to close re-enables accepting */
}

static void server_add_connection(ControlServer *s, int fd) {
        _cleanup_free_ gid_t *groups = NULL;
        ControlConnection *c;
        size_t n_groups = 0;
        uid_t uid = (uid_t) -1;
        gid_t gid = (gid_t) -1;
        bool allowed;
        char msg[256];

        struct ucred cred = {};
        socklen_t len = sizeof(cred);

        /* Decided once, from what the kernel recorded at connect(): the
         * client cannot change who it was by passing the socket on. On
         * the credentials socket everybody is in, and the handler judges
         * each request by these same credentials. */
        if (control_peer_credentials(fd, &uid, &gid, &groups, &n_groups) < 0)
                allowed = false;
        else
                allowed = s->credentials ||
                          control_peer_allowed(uid, gid, groups, n_groups, geteuid(), s->have_group, s->group);
        (void) getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len);

        /* Full: an idle client makes room for this one. One that is being
         * served, or reading its answers, keeps its place. */
        if (allowed && s->n_connections >= s->max_connections) {
                ControlConnection *idle = server_find_idle(s);

                if (idle)
                        conn_drop(idle, "idle while every connection was taken, to make room for a new client",
                                  false);
        }

        c = calloc(1, sizeof(*c));
        if (!c) {
                close(fd);
                return;
        }
        c->n_ref = 1;
        c->server = s;
        c->peer = (ControlPeer){ .uid = uid, .gid = gid, .groups = TAKE_PTR(groups), .n_groups = n_groups,
                                 .credentials_socket = s->credentials };
        c->pid = cred.pid;
        c->refused = !allowed || s->n_connections >= s->max_connections;
        if (sd_event_add_io(s->event, &c->io, fd, 0, on_conn_io, c) < 0) {
                close(fd);
                free(c);
                return;
        }
        (void) sd_event_source_set_io_fd_own(c->io, true);
        c->next = s->connections;
        if (c->next)
                c->next->prev = c;
        s->connections = c;
        if (c->refused)
                s->n_refused++;
        else
                s->n_connections++;
        if (sd_event_add_defer(s->event, &c->defer, on_conn_defer, c) < 0 ||
            sd_event_source_set_enabled(c->defer, SD_EVENT_OFF) < 0 ||
            sd_event_add_time(s->event, &c->timer, CLOCK_MONOTONIC, USEC_INFINITY, CONTROL_TIMER_ACCURACY,
                              on_conn_timer, c) < 0) {
                conn_disconnect(c);
                return;
        }

        conn_ref(c);
        if (!allowed) {
                snprintf(msg, sizeof(msg), "permission denied: uid %u is neither root nor in group %s%s",
                         (unsigned) uid, CONTROL_GROUP, s->have_group ? "" : " (which does not exist)");
                conn_send_error_and_close(c, msg);
        } else if (c->refused) {
                snprintf(msg, sizeof(msg), "refused: all %u connections are busy", s->max_connections);
                server_log_client(s, uid, cred.pid, msg);
                conn_send_error_and_close(c, "too many connections to keyrotd; try again later");
        } else
                conn_update_events(c);
        conn_maybe_finish(c);
        conn_unref(c);
}

static int on_listen(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        ControlServer *s = userdata;

        for (unsigned k = 0; k < CONTROL_ACCEPTS_PER_WAKEUP; k++) {
                int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

                if (cfd < 0) {
                        if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
                                continue;
                        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                                server_pause_accepting(s);
                        return 0;
                }
                server_add_connection(s, cfd);
        }
        return 0;
}

/* ------------------------------------------------------------------------
 * The listening socket
 */

static int sockaddr_from_path(const char *path, struct sockaddr_un *sa, socklen_t *ret_len) {
        size_t l = strlen(path);

        if (l == 0)
                return -EINVAL;
        if (l >= sizeof(sa->sun_path))
                return -ENAMETOOLONG;
        *sa = (struct sockaddr_un){ .sun_family = AF_UNIX };
        memcpy(sa->sun_path, path, l);
        *ret_len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + l + 1);
        return 0;
}

/* 1 if a server answers on @sa, 0 if the socket is stale, else -errno. */
static int socket_is_live(const struct sockaddr_un *sa, socklen_t len) {
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

        if (fd < 0)
                return -errno;
        if (connect(fd, (const struct sockaddr *) sa, len) >= 0)
                return 1;
        if (errno == EAGAIN || errno == EINPROGRESS)
                return 1; /* alive, with a full backlog */
        if (errno == ECONNREFUSED)
                return 0;
        return -errno;
}

static int socket_create(const char *path, mode_t mode, bool have_group, gid_t group, int *ret_fd,
                         struct stat *ret_st) {
        _cleanup_close_ int fd = -1;
        struct sockaddr_un sa;
        socklen_t salen;
        struct stat st;
        mode_t old;
        int r;

        r = sockaddr_from_path(path, &sa, &salen);
        if (r < 0)
                return r;

        /* lstat: a symlink planted at the path must not make us bind, chmod
         * or chown somewhere else; anything but a socket is not ours to remove. */
        if (lstat(path, &st) >= 0) {
                if (S_ISLNK(st.st_mode))
                        return -ELOOP;
                if (!S_ISSOCK(st.st_mode))
                        return -EEXIST;
                r = socket_is_live(&sa, salen);
                if (r < 0 && r != -ENOENT)
                        return r;
                if (r > 0)
                        return -EADDRINUSE;
                /* Stale, from a daemon that died: replace it. */
                if (unlink(path) < 0 && errno != ENOENT)
                        return -errno;
        } else if (errno != ENOENT)
                return -errno;

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        /* The umask decides the mode bind() creates the socket with: never,
         * not even for an instant, wider than @mode. */
        old = umask(0777 & ~mode);
        r = bind(fd, (const struct sockaddr *) &sa, salen);
        umask(old);
        if (r < 0)
                return -errno; /* EADDRINUSE: someone else raced us to the path */

        /* From here on the path is ours: remove it on failure. */
        if (lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode)) {
                r = -EIO;
                goto fail;
        }
        /* Belt and braces over the umask, and group keyrotd for its members.
         * AT_SYMLINK_NOFOLLOW: the path was swapped if this is not a socket. */
        if (fchmodat(AT_FDCWD, path, mode, AT_SYMLINK_NOFOLLOW) < 0 &&
            !((errno == EOPNOTSUPP || errno == ENOSYS) && (st.st_mode & 07777) == mode)) {
                r = -errno;
                goto fail;
        }
        if (have_group && fchownat(AT_FDCWD, path, (uid_t) -1, group, AT_SYMLINK_NOFOLLOW) < 0) {
                r = -errno;
                goto fail;
        }
        if (listen(fd, SOMAXCONN) < 0) {
                r = -errno;
                goto fail;
        }
        *ret_fd = TAKE_FD(fd);
        *ret_st = st;
        return 0;

fail:
        (void) unlink(path);
        return r;
}

static int server_new(sd_event *e, int listen_fd, const char *path, bool credentials, const ControlHandlers *h,
                      void *userdata, ControlServer **ret) {
        ControlServer *s;
        struct group *gr;
        struct stat st = {};
        int fd = -1, r;

        if (!e || !h || !ret || (listen_fd < 0 && !path))
                return -EINVAL;

        if (listen_fd >= 0) {
                r = sd_is_socket_unix(listen_fd, SOCK_STREAM, 1, NULL, 0);
                if (r < 0)
                        return r;
                if (r == 0)
                        return -ENOTSOCK;
                r = fcntl(listen_fd, F_GETFL);
                if (r < 0 || fcntl(listen_fd, F_SETFL, r | O_NONBLOCK) < 0)
                        return -errno;
        }

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->event = sd_event_ref(e);
        s->handlers = *h;
        s->userdata = userdata;
        s->credentials = credentials;
        s->max_connections = CONTROL_CONNECTIONS_MAX;

        /* Resolved once: a group created later counts after a restart. A
         * lookup error is treated like a missing group (root only). */
        errno = 0;
        gr = getgrnam(CONTROL_GROUP);
        if (gr) {
                s->have_group = true;
                s->group = gr->gr_gid;
        }

        if (listen_fd < 0) {
                s->path = strdup(path);
                if (!s->path) {
                        r = -ENOMEM;
                        goto fail;
                }
                r = credentials ? socket_create(path, CREDENTIALS_SOCKET_MODE, false, 0, &fd, &st)
                                : socket_create(path, CONTROL_SOCKET_MODE, s->have_group, s->group, &fd, &st);
                if (r < 0) {
                        s->path = mfree(s->path);
                        goto fail;
                }
                s->path_dev = st.st_dev;
                s->path_ino = st.st_ino;
        } else
                fd = listen_fd;

        r = sd_event_add_io(e, &s->listen_source, fd, EPOLLIN, on_listen, s);
        if (r < 0) {
                if (listen_fd < 0)
                        close(fd);
                goto fail;
        }
        (void) sd_event_source_set_io_fd_own(s->listen_source, true);
        /* Made now, while descriptors are there (CLOCK_MONOTONIC's timerfd);
         * the linger timers need it too. */
        r = sd_event_add_time_relative(e, &s->accept_pause, CLOCK_MONOTONIC, CONTROL_ACCEPT_PAUSE,
                                       10 * USEC_PER_MSEC, on_accept_pause_end, s);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->accept_pause, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time(e, &s->log_timer, CLOCK_MONOTONIC, USEC_INFINITY, CONTROL_TIMER_ACCURACY,
                                      on_log_timer, s);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->log_timer, SD_EVENT_OFF);
        if (r < 0)
                goto fail;
        *ret = s;
        return 0;

fail:
        /* A passed listen_fd stays the caller's. */
        if (listen_fd >= 0 && s->listen_source)
                (void) sd_event_source_set_io_fd_own(s->listen_source, false);
        control_server_free(s);
        return r;
}

int control_server_new(sd_event *e, int listen_fd, const char *path, const ControlHandlers *h, void *userdata,
                       ControlServer **ret) {
        return server_new(e, listen_fd, path, false, h, userdata, ret);
}

int control_server_new_credentials(sd_event *e, int listen_fd, const char *path, const ControlHandlers *h,
                                   void *userdata, ControlServer **ret) {
        return server_new(e, listen_fd, path, true, h, userdata, ret);
}

void control_server_set_max_connections(ControlServer *s, unsigned n) {
        s->max_connections = n < 1 ? 1 : n > CONTROL_CONNECTIONS_MAX ? CONTROL_CONNECTIONS_MAX : n;
}

unsigned control_server_max_connections(const ControlServer *s) {
        return s->max_connections;
}

ControlServer *control_server_free(ControlServer *s) {
        struct stat st;

        if (!s)
                return NULL;
        while (s->connections)
                conn_disconnect(s->connections);
        s->listen_source = sd_event_source_disable_unref(s->listen_source);
        s->accept_pause = sd_event_source_disable_unref(s->accept_pause);
        server_log_suppressed(s);
        s->log_timer = sd_event_source_disable_unref(s->log_timer);
        /* Only if it is still the socket we made: a successor may have
         * replaced it already. */
        if (s->path && lstat(s->path, &st) >= 0 && S_ISSOCK(st.st_mode) && st.st_dev == s->path_dev &&
            st.st_ino == s->path_ino)
                (void) unlink(s->path);
        free(s->path);
        sd_event_unref(s->event);
        free(s);
        return NULL;
}

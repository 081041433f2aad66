/* SPDX-License-Identifier: MIT */
/*
 * client.c — connect to keyrotd's control socket and make one call.
 * Blocking, with poll() deadlines: this is the keyrotctl side, no loop.
 */
#include "ctl/client.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <sodium.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "basic/sanitize.h"

int ctl_connect(const char *path, int *ret_fd) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct timeval tv = { .tv_sec = CTL_TIMEOUT_DEFAULT / USEC_PER_SEC };
        size_t l;
        int fd;

        if (!path || !ret_fd)
                return -EINVAL;
        l = strlen(path);
        if (l == 0)
                return -EINVAL;
        if (l >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, path, l);

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        /* A daemon whose backlog is full makes a blocking connect() wait;
         * on AF_UNIX the send timeout bounds that wait (then EAGAIN). */
        (void) setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(fd, (const struct sockaddr *) &sa, (socklen_t) (offsetof(struct sockaddr_un, sun_path) + l + 1)) <
            0) {
                int r = -errno;

                close(fd);
                return r;
        }
        *ret_fd = fd;
        return 0;
}

/* poll() for @events until @deadline (CLOCK_MONOTONIC, USEC_INFINITY = none). */
static int wait_for(int fd, short events, usec_t deadline) {
        for (;;) {
                struct pollfd p = { .fd = fd, .events = events };
                int ms = -1, r;

                if (deadline != USEC_INFINITY) {
                        usec_t now = now_usec(CLOCK_MONOTONIC), left;

                        if (now >= deadline)
                                return -ETIMEDOUT;
                        left = (deadline - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC;
                        ms = left > INT_MAX ? INT_MAX : (int) left;
                }
                r = poll(&p, 1, ms);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                if (r > 0)
                        return 0;
        }
}

static usec_t deadline_after(usec_t timeout) {
        if (timeout == 0 || timeout == USEC_INFINITY)
                return USEC_INFINITY;
        return now_usec(CLOCK_MONOTONIC) + timeout;
}

static int send_request(int fd, json_object *req, usec_t timeout) {
        _cleanup_free_ char *buf = NULL;
        const char *s;
        size_t len = 0, sent = 0;
        int r;

        s = json_object_to_json_string_length(req, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
        if (!s)
                return -ENOMEM;
        buf = malloc(len + 1);
        if (!buf)
                return -ENOMEM;
        memcpy(buf, s, len);
        buf[len++] = '\n';

        while (sent < len) {
                ssize_t n = send(fd, buf + sent, len - sent, MSG_NOSIGNAL | MSG_DONTWAIT);

                if (n >= 0) {
                        sent += (size_t) n;
                        continue;
                }
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN)
                        return -errno;
                r = wait_for(fd, POLLOUT, deadline_after(timeout));
                if (r < 0)
                        return r;
        }
        return 0;
}

/*
 * What arrives by @deadline: the bytes read (0 when woken for nothing), or
 * -errno. A connection closed or reset after our request could not be
 * sent whole (@send_error < 0: a refusal) reports that error; otherwise
 * one closed before the answer is -ECONNRESET.
 */
static ssize_t recv_some(int fd, char *buf, size_t size, usec_t deadline, int send_error) {
        ssize_t n;
        int r;

        r = wait_for(fd, POLLIN, deadline);
        if (r < 0)
                return r;
        n = recv(fd, buf, size, MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
                return 0;
        if (n < 0)
                return errno == ECONNRESET && send_error < 0 ? send_error : -errno;
        if (n == 0)
                return send_error < 0 ? send_error : -ECONNRESET;
        return n;
}

/* One complete line (NUL-terminated in place): 1 if it was the final
 * response (*ret_ok says what it said), 0 for a stream line. */
static int handle_line(char *line, ctl_line_t on_line, void *userdata, bool *ret_ok) {
        enum json_tokener_error e = json_tokener_success;
        json_object *o, *ok;
        int r = 0;

        o = json_tokener_parse_verbose(line, &e);
        if (!o || e != json_tokener_success || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return -EBADMSG;
        }
        if (on_line)
                r = on_line(o, userdata);
        if (r >= 0 && json_object_object_get_ex(o, "ok", &ok)) {
                *ret_ok = json_object_get_boolean(ok);
                r = 1;
        }
        json_object_put(o);
        return r;
}

int ctl_call_full(int fd, json_object *req, usec_t idle_timeout, ctl_line_t on_line, void *userdata) {
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, size = 0;
        usec_t deadline;
        int send_error, r;

        if (fd < 0 || !req)
                return -EINVAL;

        /* A daemon that refuses us answers and closes, maybe before it read
         * all of our request: EPIPE here still leaves its answer to read. */
        send_error = send_request(fd, req, idle_timeout);
        if (send_error < 0 && send_error != -EPIPE && send_error != -ECONNRESET)
                return send_error;

        deadline = deadline_after(idle_timeout);
        for (;;) {
                char *nl;
                ssize_t n;

                /* Every complete line first. */
                while (len > 0 && (nl = memchr(buf, '\n', len))) {
                        size_t l = (size_t) (nl - buf) + 1;
                        bool ok = false;

                        *nl = 0;
                        r = handle_line(buf, on_line, userdata, &ok);
                        if (r < 0)
                                return r;
                        if (r > 0)
                                return ok ? 0 : CTL_REMOTE_ERROR;
                        memmove(buf, buf + l, len - l);
                        len -= l;
                        deadline = deadline_after(idle_timeout);
                }
                if (len >= CTL_LINE_MAX)
                        return -EBADMSG;
                if (size - len < 4096) {
                        size_t nsize = size ? size * 2 : 65536;
                        char *p;

                        if (nsize > CTL_LINE_MAX + 1)
                                nsize = CTL_LINE_MAX + 1;
                        p = realloc(buf, nsize);
                        if (!p)
                                return -ENOMEM;
                        buf = p;
                        size = nsize;
                }

                n = recv_some(fd, buf + len, size - len, deadline, send_error);
                if (n < 0)
                        return (int) n;
                len += (size_t) n;
        }
}

int ctl_call(int fd, json_object *req, ctl_line_t on_line, void *userdata) {
        return ctl_call_full(fd, req, CTL_TIMEOUT_DEFAULT, on_line, userdata);
}

int ctl_call_secret(int fd, json_object *req, usec_t timeout, Secret **ret) {
        _cleanup_secret_ Secret *line = NULL;
        usec_t deadline;
        int send_error;

        if (fd < 0 || !req || !ret)
                return -EINVAL;
        send_error = send_request(fd, req, timeout);
        if (send_error < 0 && send_error != -EPIPE && send_error != -ECONNRESET)
                return send_error;
        line = secret_new(CTL_SECRET_LINE_MAX);
        if (!line)
                return -ENOMEM;
        deadline = deadline_after(timeout);
        for (;;) {
                char *nl = line->len > 0 ? memchr(line->data, '\n', line->len) : NULL;
                ssize_t n;

                if (nl) {
                        /* Whatever follows the line is dropped with it. */
                        sodium_memzero(nl, line->len - (size_t) (nl - line->data));
                        line->len = (size_t) (nl - line->data);
                        *ret = TAKE_PTR(line);
                        return 0;
                }
                if (line->len >= line->cap)
                        return -EBADMSG;
                n = recv_some(fd, line->data + line->len, line->cap - line->len, deadline, send_error);
                if (n < 0)
                        return (int) n;
                line->len += (size_t) n;
        }
}

static bool needs_sanitizing(const char *s, size_t len) {
        for (size_t i = 0; i < len; i++)
                if ((unsigned char) s[i] >= 0x7f)
                        return true;
        return false;
}

void ctl_json_sanitize(json_object *o) {
        switch (json_object_get_type(o)) {
        case json_type_object: {
                json_object_object_foreach(o, key, value) {
                        (void) key;
                        ctl_json_sanitize(value);
                }
                break;
        }
        case json_type_array:
                for (size_t i = 0; i < json_object_array_length(o); i++)
                        ctl_json_sanitize(json_object_array_get_idx(o, i));
                break;
        case json_type_string: {
                size_t len = (size_t) json_object_get_string_len(o);
                _cleanup_free_ char *clean = NULL;

                if (!needs_sanitizing(json_object_get_string(o), len))
                        break;
                /* Never longer than the input: a C1 control (2 bytes)
                 * becomes one space, an invalid byte one '?'. */
                clean = malloc(len + 1);
                if (!clean) {
                        (void) json_object_set_string(o, "?");
                        break;
                }
                sanitize_text(json_object_get_string(o), clean, len + 1);
                (void) json_object_set_string(o, clean);
                break;
        }
        default:
                break;
        }
}

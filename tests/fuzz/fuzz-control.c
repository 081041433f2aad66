/* SPDX-License-Identifier: MIT */
/*
 * fuzz-control.c — the control socket server (daemon/control.h) as a
 * client sees it: the input is sent as it is over a real connection (any
 * number of lines, pipelined, with or without a last "\n", a little per
 * turn of the server's loop), the client shuts down its sending side and
 * reads until the server closes. The
 * framing, the request parser and the dispatcher all run on the input;
 * the handlers answer the way the daemon's do (now, later from the loop,
 * with an error, or not at all).
 *
 * Every answer must be one JSON object per line, either a stream line
 * ("event", no "ok") or a final response ("ok", and "error" when false);
 * input holding anything but blanks gets at least one final response; the
 * server closes within a bounded number of loop iterations; nothing leaks.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include "basic/util.h"
#include "daemon/control.h"
#include "fuzz-check.h"

/* Far more than any input needs: a bound on the server's loop iterations,
 * so a server that never closes is a finding rather than a hang. */
#define ITERATIONS_MAX 100000U
/* Sent per loop iteration: requests arrive split across reads, and input
 * keeps arriving after the server has answered and closed its side. */
#define CHUNK 1000U

static sd_event *event;

static int on_status(ControlRequest *req, void *userdata) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "version", json_object_new_string("fuzz"));
        json_object_object_add(o, "users", json_object_new_array());
        control_reply(req, o);
        control_request_end(req);
        return 0;
}

/* rotate with "wait": answered from the loop, as the engine does, so
 * pipelined requests queue up behind it. */
static int on_rotate_done(sd_event_source *s, void *userdata) {
        ControlRequest *req = userdata;
        json_object *o = json_object_new_object();

        json_object_object_add(o, "ok", json_object_new_boolean(false));
        json_object_object_add(o, "failed", json_object_new_int(1));
        control_reply(req, o);
        control_request_end(req);
        sd_event_source_unref(s);
        return 0;
}

static int on_rotate(ControlRequest *req, char *const *users, bool wait, bool replace_lost, void *userdata) {
        sd_event_source *s;

        check(!replace_lost || (users && users[0] && !users[1]));
        if (!wait) {
                json_object *o = json_object_new_object();

                json_object_object_add(o, "queued", json_object_new_boolean(true));
                control_reply(req, o);
                control_request_end(req);
                return 0;
        }
        for (size_t i = 0; users && users[i]; i++) {
                json_object *o = json_object_new_object();

                json_object_object_add(o, "event", json_object_new_string("rotation"));
                json_object_object_add(o, "user", json_object_new_string(users[i]));
                /* A stray "ok" must be stripped from a stream line. */
                json_object_object_add(o, "ok", json_object_new_boolean(true));
                control_stream(req, o);
        }
        if (sd_event_add_defer(event, &s, on_rotate_done, req) < 0)
                return -ENOMEM; /* not replied: the server answers for us */
        return 0;
}

static int on_reload(ControlRequest *req, void *userdata) {
        return -EIO; /* an error without a reply */
}

static int on_rollback(ControlRequest *req, const char *user, void *userdata) {
        control_request_end(req); /* ended without a reply */
        return 0;
}

static const ControlHandlers handlers = {
        .status = on_status,
        .rotate = on_rotate,
        .reload = on_reload,
        .rollback = on_rollback,
};

static int listening_socket(struct sockaddr_un *ret_sa, socklen_t *ret_len) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

        /* Autobind: a fresh abstract address, no file to clean up. */
        *ret_len = sizeof(*ret_sa);
        if (fd < 0 || bind(fd, &(struct sockaddr){ .sa_family = AF_UNIX }, sizeof(sa_family_t)) < 0 ||
            listen(fd, 4) < 0 || getsockname(fd, (struct sockaddr *) ret_sa, ret_len) < 0)
                abort();
        return fd;
}

/* Each answer line; returns how many were final responses. */
static unsigned check_output(const char *out, size_t len) {
        unsigned n_final = 0;

        check(len == 0 || out[len - 1] == '\n');
        for (size_t start = 0; start < len;) {
                const char *nl = memchr(out + start, '\n', len - start);
                size_t l = (size_t) (nl - (out + start));
                json_tokener *tok = json_tokener_new();
                json_object *o, *ok, *err;

                check(tok != NULL);
                o = json_tokener_parse_ex(tok, out + start, (int) l);
                check(o && json_object_is_type(o, json_type_object) && json_tokener_get_parse_end(tok) == l);
                if (json_object_object_get_ex(o, "ok", &ok)) {
                        check(json_object_is_type(ok, json_type_boolean));
                        check(json_object_get_boolean(ok) ||
                              (json_object_object_get_ex(o, "error", &err) &&
                               json_object_is_type(err, json_type_string)));
                        n_final++;
                } else
                        check(json_object_object_get_ex(o, "event", NULL));
                json_object_put(o);
                json_tokener_free(tok);
                start += l + 1;
        }
        return n_final;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        ControlServer *server = NULL;
        struct sockaddr_un sa;
        socklen_t salen;
        size_t sent = 0, out_len = 0, out_size = 4096;
        char *out = malloc(out_size);
        bool eof = false, blank = true;
        int lfd, cfd;
        unsigned k;

        check(out != NULL);
        if (!event)
                check(sd_event_new(&event) >= 0);

        lfd = listening_socket(&sa, &salen);
        check(control_server_new(event, lfd, NULL, &handlers, NULL, &server) >= 0);

        cfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        check(cfd >= 0 && connect(cfd, (struct sockaddr *) &sa, salen) >= 0);

        for (k = 0; !eof && k < ITERATIONS_MAX; k++) {
                if (sent < size) {
                        ssize_t n = send(cfd, data + sent, MIN(size - sent, CHUNK), MSG_NOSIGNAL | MSG_DONTWAIT);

                        if (n > 0)
                                sent += (size_t) n;
                        else if (n < 0 && errno != EAGAIN)
                                sent = size; /* the server stopped reading and closed */
                        if (sent == size)
                                (void) shutdown(cfd, SHUT_WR);
                } else if (size == 0 && k == 0)
                        (void) shutdown(cfd, SHUT_WR);

                check(sd_event_run(event, 0) >= 0);

                for (;;) {
                        ssize_t n;

                        if (out_size - out_len < 4096) {
                                out_size *= 2;
                                out = realloc(out, out_size);
                                check(out != NULL);
                        }
                        n = recv(cfd, out + out_len, out_size - out_len, MSG_DONTWAIT);
                        if (n > 0) {
                                out_len += (size_t) n;
                                continue;
                        }
                        if (n == 0 || (errno != EAGAIN && errno != EINTR))
                                eof = true;
                        break;
                }
        }
        check(eof); /* else the server never closed: a hang */

        /* Hang up and let the server notice, so nothing is left over. */
        close(cfd);
        for (k = 0; k < ITERATIONS_MAX && sd_event_run(event, 0) > 0; k++)
                ;
        control_server_free(server);
        check(sd_event_run(event, 0) >= 0);

        for (size_t i = 0; i < size; i++)
                if (data[i] != ' ' && data[i] != '\t' && data[i] != '\r' && data[i] != '\n')
                        blank = false;
        if (check_output(out, out_len) == 0)
                check(blank);
        free(out);
        return 0;
}

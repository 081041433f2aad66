/* SPDX-License-Identifier: MIT */
#include "runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "basic/fileio.h"
#include "basic/log.h"

static int rt_error(Runtime *rt, int r, const char *fmt, ...) _printf_(3, 4);
static int rt_error(Runtime *rt, int r, const char *fmt, ...) {
        va_list ap;
        char *s = NULL;

        free(rt->error);
        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
                s = NULL;
        va_end(ap);
        rt->error = s;
        return r;
}

int runtime_load_inventory(Runtime *rt) {
        int r;

        inventory_errors_clear(&rt->inv_errors);
        r = inventory_load(rt->config_path, &rt->inv, &rt->inv_errors);
        if (r < 0)
                return rt_error(rt, r, "cannot load the inventory %s: %s", rt->config_path, strerror(-r));
        return 0;
}

void runtime_print_inventory_errors(const Runtime *rt) {
        for (size_t i = 0; i < rt->inv_errors.n; i++)
                log_error("%s", rt->inv_errors.lines[i]);
        if (rt->inv_errors.n == 0)
                log_error("%s", rt->error ?: "cannot load the inventory");
}

int runtime_lock(Runtime *rt, bool wait) {
        _cleanup_free_ char *p = NULL;
        uid_t uid;
        gid_t gid;
        int fd, r;

        r = asprintf_safe(&p, "%s/lock", rt->state_dir);
        if (r < 0)
                return r;
        inherit_owner(p, &uid, &gid);
        fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return rt_error(rt, -errno, "cannot open lock file %s: %s", p, strerror(errno));
        /* Opened (perhaps created) by root: the service must still be able to. */
        if (uid != (uid_t) -1 && fchown(fd, uid, gid) < 0) {
                r = -errno;
                close(fd);
                return rt_error(rt, r, "cannot chown lock file %s: %s", p, strerror(-r));
        }
        /* One keyrotd per state directory: two writers would race on the store. */
        while (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
                if (errno == EINTR)
                        continue;
                r = errno == EWOULDBLOCK ? -EBUSY : -errno;
                close(fd);
                return rt_error(rt, r, "state directory %s is in use by another keyrotd", rt->state_dir);
        }
        rt->lock_fd = fd;
        return 0;
}

int runtime_open_store(Runtime *rt) {
        _cleanup_free_ char *err = NULL;
        int r;

        if (rt->inv && rt->inv->store.path)
                rt->store_path = strdup(rt->inv->store.path);
        else
                (void) asprintf_safe(&rt->store_path, "%s/store.sealed", rt->state_dir);
        if (!rt->store_path)
                return -ENOMEM;
        if (rt->inv) {
                r = inventory_store_key_path(rt->inv, &rt->key_path);
                if (r < 0)
                        return rt_error(rt, r, "cannot determine the store key path from %s: %s", rt->config_path,
                                        strerror(-r));
        } else {
                const char *cd = getenv("CREDENTIALS_DIRECTORY");
                if (cd)
                        r = asprintf_safe(&rt->key_path, "%s/store.key", cd);
                else
                        r = (rt->key_path = strdup(INVENTORY_DEFAULT_KEY_FILE)) ? 0 : -ENOMEM;
                if (r < 0)
                        return r;
        }
        r = store_open(rt->store_path, rt->key_path, &rt->store, &err);
        if (r < 0)
                return rt_error(rt, r, "%s", err ?: strerror(-r));
        if (rt->lock_fd >= 0)
                (void) remove_stale_temp_files(AT_FDCWD, rt->store_path);
        return 0;
}

int runtime_open_aws(Runtime *rt) {
        _cleanup_free_ char *err = NULL;
        int r;

        r = sd_event_default(&rt->event);
        if (r < 0)
                return rt_error(rt, r, "cannot create the event loop: %s", strerror(-r));
        r = http_client_new(rt->event, NULL, &rt->http);
        if (r < 0)
                return rt_error(rt, r, "cannot set up HTTP: %s", strerror(-r));
        CredentialsOptions co = {
                .profile = rt->inv ? rt->inv->aws.profile : NULL,
                .shared_file = rt->inv ? rt->inv->aws.shared_file : NULL,
        };
        r = credentials_provider_new(rt->http, &co, &rt->identity, &err);
        if (r < 0)
                return rt_error(rt, r, "no AWS credentials for keyrotd itself: %s",
                                 err ?: (r == -ENOKEY ? "none found in the environment, shared file or IMDS"
                                                      : strerror(-r)));
        r = aws_client_new(rt->http, rt->identity, rt->inv ? rt->inv->aws.region : NULL,
                           rt->inv ? rt->inv->aws.endpoint_url : NULL, &rt->aws, &err);
        if (r < 0)
                return rt_error(rt, r, "%s", err ?: strerror(-r));
        return 0;
}

void runtime_done(Runtime *rt) {
        rt->aws = aws_client_free(rt->aws);
        rt->identity = credentials_provider_free(rt->identity);
        rt->http = http_client_free(rt->http);
        rt->event = sd_event_unref(rt->event);
        rt->store = store_free(rt->store);
        rt->inv = inventory_free(rt->inv);
        inventory_errors_clear(&rt->inv_errors);
        free(rt->store_path);
        free(rt->key_path);
        free(rt->error);
        rt->store_path = rt->key_path = rt->error = NULL;
        if (rt->lock_fd >= 0)
                close(rt->lock_fd);
        rt->lock_fd = -1;
}

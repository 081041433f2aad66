/* SPDX-License-Identifier: MIT */
/*
 * provider.c — keyrotd's own identity: the environment, the shared
 * credentials file, or the EC2 instance role (IMDSv2), refreshed on an
 * sd-event timer before it expires.
 */
#include "aws/provider.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <systemd/sd-event.h>

#include "aws/http.h"
#include "aws/names.h"
#include "aws/xml.h"
#include "basic/fileio.h"
#include "basic/ini.h"
#include "basic/json-secret.h"

#define IMDS_DEFAULT_ENDPOINT "http://169.254.169.254"
#define IMDS_TOKEN_TTL "21600" /* seconds; what the SDKs ask for */
/* Short, like the SDKs: on a host that is not an EC2 instance the address
 * leads nowhere, and the caller should not wait long to learn that. */
#define IMDS_TIMEOUT (1 * USEC_PER_SEC)
#define IMDS_ATTEMPTS 2U
#define IMDS_TOKEN_MAX 4096U
#define IMDS_DOCUMENT_MAX (64U * 1024U)
#define REFRESH_MIN (1 * USEC_PER_SEC)

static bool isempty(const char *s) {
        return !s || !*s;
}

static const char *getenv_nonempty(const char *name) {
        const char *v = getenv(name);

        return isempty(v) ? NULL : v;
}

/* ---- environment ------------------------------------------------------ */

/* 1 found, 0 nothing there, <0 error with a message. */
static int from_environment(AwsCredentials **ret, char **ret_error) {
        const char *id = getenv_nonempty("AWS_ACCESS_KEY_ID");
        const char *secret = getenv_nonempty("AWS_SECRET_ACCESS_KEY");
        const char *token = getenv_nonempty("AWS_SESSION_TOKEN") ?: getenv_nonempty("AWS_SECURITY_TOKEN");
        int r;

        if (!id && !secret)
                return 0;
        if (!id || !secret) {
                set_error(ret_error, "%s is set in the environment but %s is not",
                          id ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
                          id ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
                return -EINVAL;
        }
        r = aws_credentials_new(id, secret, strlen(secret), token, 0, "environment", ret);
        if (r == -EINVAL)
                set_error(ret_error, "The credentials in the environment (AWS_ACCESS_KEY_ID...) are malformed");
        return r < 0 ? r : 1;
}

/* ---- shared credentials file ------------------------------------------ */

static int home_dir(char **ret) {
        const char *h = getenv_nonempty("HOME");
        struct passwd pw, *result = NULL;
        char buf[4096];

        /* A system service may run without $HOME; the SDKs fall back to
         * the password database, so do we. */
        if (!h) {
                if (getpwuid_r(getuid(), &pw, buf, sizeof buf, &result) != 0 || !result || isempty(pw.pw_dir))
                        return -ENOENT;
                h = pw.pw_dir;
        }
        *ret = strdup(h);
        return *ret ? 0 : -ENOMEM;
}

static int shared_file_path(const CredentialsOptions *opts, char **ret) {
        _cleanup_free_ char *home = NULL;
        const char *f = opts->shared_file ?: getenv_nonempty("AWS_SHARED_CREDENTIALS_FILE");
        int r;

        if (f && !startswith(f, "~/")) {
                *ret = strdup(f);
                return *ret ? 0 : -ENOMEM;
        }
        r = home_dir(&home);
        if (r < 0)
                return r;
        return asprintf_safe(ret, "%s/%s", home, f ? f + 2 : ".aws/credentials");
}

static int profile_get(const Secret *text, const char *profile, const char *key, Secret **ret) {
        return ini_get(text->data, text->len, profile, key, ret);
}

static int from_shared_file(const CredentialsOptions *opts, AwsCredentials **ret, char **ret_error) {
        _cleanup_secret_ Secret *text = NULL, *id = NULL, *secret = NULL, *token = NULL;
        _cleanup_free_ char *path = NULL, *error = NULL;
        const char *profile = opts->profile ?: getenv_nonempty("AWS_PROFILE");
        bool chosen = profile;
        int r, r_id, r_secret;

        if (!profile)
                profile = "default";

        r = shared_file_path(opts, &path);
        if (r == -ENOENT && !chosen)
                return 0; /* no home directory, so no default file */
        if (r < 0) {
                set_error(ret_error, "Cannot locate the shared credentials file for profile %s: %s", profile,
                          strerror(-r));
                return r == -ENOENT ? -ENOKEY : r;
        }

        /*
         * Read permissively, as the AWS CLI does: ~/.aws/credentials may be
         * a symlink, and its mode is the operator's business (keyrotd's own
         * store and key file are the ones it refuses when group/world
         * readable). Bounded, and straight into secure memory.
         */
        r = read_file_secure(AT_FDCWD, path, INI_MAX_SIZE, 0, &text, &error);
        if (r == -ENOENT) {
                if (!chosen)
                        return 0;
                set_error(ret_error, "Profile %s was asked for, but %s does not exist", profile, path);
                return -ENOKEY;
        }
        if (r < 0) {
                if (error)
                        set_error(ret_error, "%s", error);
                else
                        set_error(ret_error, "Cannot read %s: %s", path, strerror(-r));
                return r;
        }

        r_id = profile_get(text, profile, "aws_access_key_id", &id);
        r_secret = profile_get(text, profile, "aws_secret_access_key", &secret);
        r = r_id < 0 && r_id != -ENOENT ? r_id : r_secret < 0 && r_secret != -ENOENT ? r_secret : 0;
        if (r == -EBADMSG) {
                set_error(ret_error, "%s is not a valid AWS credentials file (malformed line, duplicate profile or key)",
                          path);
                return -EINVAL;
        }
        if (r < 0) {
                set_error(ret_error, "Cannot parse %s: %s", path, strerror(-r));
                return r;
        }
        if (r_id == -ENOENT && r_secret == -ENOENT) {
                /* Only the implicit default may fall through to the
                 * instance role; an explicit profile must be there. */
                if (!chosen)
                        return 0;
                set_error(ret_error, "%s has no credentials for profile %s", path, profile);
                return -ENOKEY;
        }
        if (r_id == -ENOENT || r_secret == -ENOENT) {
                set_error(ret_error, "%s: profile %s has %s but no %s", path, profile,
                          r_id == 0 ? "aws_access_key_id" : "aws_secret_access_key",
                          r_id == 0 ? "aws_secret_access_key" : "aws_access_key_id");
                return -EINVAL;
        }

        r = profile_get(text, profile, "aws_session_token", &token);
        if (r == -ENOENT)
                r = profile_get(text, profile, "aws_security_token", &token);
        if (r < 0 && r != -ENOENT)
                return r;

        r = aws_credentials_new(secret_str(id), secret->data, secret->len, secret_str(token), 0, "shared-file",
                                ret);
        if (r == -EINVAL) {
                set_error(ret_error, "%s: profile %s has a malformed key id, secret or session token", path,
                          profile);
                return r;
        }
        return r < 0 ? r : 1;
}

/* ---- instance metadata (IMDSv2) --------------------------------------- */

typedef enum ImdsStep {
        IMDS_STEP_TOKEN,
        IMDS_STEP_ROLE,
        IMDS_STEP_CREDENTIALS,
        _IMDS_STEP_MAX,
} ImdsStep;

/* One pass through the three IMDSv2 requests, run synchronously at start
 * and asynchronously on refresh; the steps are shared. */
typedef struct ImdsFetch {
        const char *endpoint; /* borrowed */
        ImdsStep step;
        Secret *token;        /* a bearer token for the metadata service */
        char role[IAM_ROLE_NAME_MAX + 1];
        char *path;
        HttpHeader header;
        AwsCredentials *result;
        char *error;
} ImdsFetch;

static void imds_fetch_reset(ImdsFetch *f) {
        f->token = secret_free(f->token);
        free(f->path);
        f->path = NULL;
        f->result = aws_credentials_unref(f->result);
        free(f->error);
        f->error = NULL;
        f->role[0] = 0;
        f->step = IMDS_STEP_TOKEN;
}

static int imds_fetch_spec(ImdsFetch *f, HttpRequestSpec *spec) {
        int r;

        free(f->path);
        f->path = NULL;
        switch (f->step) {
        case IMDS_STEP_TOKEN:
                f->path = strdup("/latest/api/token");
                f->header = (HttpHeader){ "X-aws-ec2-metadata-token-ttl-seconds", IMDS_TOKEN_TTL };
                break;
        case IMDS_STEP_ROLE:
                f->path = strdup("/latest/meta-data/iam/security-credentials/");
                f->header = (HttpHeader){ "X-aws-ec2-metadata-token", secret_str(f->token) };
                break;
        case IMDS_STEP_CREDENTIALS:
                r = asprintf_safe(&f->path, "/latest/meta-data/iam/security-credentials/%s", f->role);
                if (r < 0)
                        return r;
                f->header = (HttpHeader){ "X-aws-ec2-metadata-token", secret_str(f->token) };
                break;
        default:
                return -EINVAL;
        }
        if (!f->path)
                return -ENOMEM;

        *spec = (HttpRequestSpec){
                .method = f->step == IMDS_STEP_TOKEN ? "PUT" : "GET",
                .endpoint = f->endpoint,
                .path = f->path,
                .headers = &f->header,
                .n_headers = 1,
                .creds = NULL,
                .max_attempts = IMDS_ATTEMPTS,
                .timeout = IMDS_TIMEOUT,
                .allow_http = true,
                /* The token and the credentials document are secrets. */
                .sensitive_response = true,
        };
        return 0;
}

int aws_credentials_from_imds_document(const char *doc, size_t len, AwsCredentials **ret) {
        /* The document holds the secret and the token: json-secret.h, not json-c. */
        JsonSecretField fields[] = {
                { "Code", NULL },  { "AccessKeyId", NULL }, { "SecretAccessKey", NULL },
                { "Token", NULL }, { "Expiration", NULL },
        };
        usec_t expiration = 0;
        time_t t;
        int r;

        if ((!doc && len > 0) || !ret)
                return -EINVAL;
        if (len > IMDS_DOCUMENT_MAX)
                return -EBADMSG;
        r = json_secret_parse(doc, len, fields, ELEMENTSOF(fields));
        if (r < 0)
                goto out;
        if (fields[0].value && !streq(fields[0].value->data, "Success")) {
                r = -ENOKEY;
                goto out;
        }
        if (!fields[1].value || !fields[2].value) {
                r = -EBADMSG;
                goto out;
        }
        if (fields[4].value) {
                if (xml_parse_timestamp(fields[4].value->data, &t) < 0 || t <= 0) {
                        r = -EBADMSG;
                        goto out;
                }
                expiration = (usec_t) t * USEC_PER_SEC;
        }
        r = aws_credentials_new(fields[1].value->data, fields[2].value->data, fields[2].value->len,
                                secret_str(fields[3].value), expiration, "imds", ret);
out:
        json_secret_fields_clear(fields, ELEMENTSOF(fields));
        return r;
}

static int imds_parse_credentials(ImdsFetch *f, const Secret *doc) {
        int r = aws_credentials_from_imds_document(doc->data, doc->len, &f->result);

        switch (r) {
        case 0:
                return 0;
        case -EBADMSG:
                set_error(&f->error, "Instance metadata at %s: the credentials of role %s are not a valid document",
                          f->endpoint, f->role);
                return -EINVAL;
        case -ENOKEY:
                set_error(&f->error, "Instance metadata at %s: the credentials of role %s are not available "
                                     "(Code is not Success)", f->endpoint, f->role);
                return r;
        case -EINVAL:
                set_error(&f->error, "Instance metadata at %s: malformed credentials for role %s", f->endpoint,
                          f->role);
                return r;
        default:
                return r;
        }
}

/* 0: next step armed in f->step; 1: f->result is ready; <0: f->error says why. */
static int imds_fetch_response(ImdsFetch *f, const HttpResponse *resp) {
        const Secret *body = resp->body;
        const char *what = f->step == IMDS_STEP_TOKEN ? "a session token" :
                           f->step == IMDS_STEP_ROLE  ? "the instance role" :
                                                        "the role's credentials";
        size_t n;
        int r;

        if (resp->error < 0) {
                set_error(&f->error, "Instance metadata at %s: cannot get %s: %s", f->endpoint, what,
                          resp->error_text[0] ? resp->error_text : strerror(-resp->error));
                return -ENOKEY;
        }
        if (resp->status == 404 && f->step == IMDS_STEP_ROLE) {
                set_error(&f->error, "Instance metadata at %s: no IAM role is attached to this instance",
                          f->endpoint);
                return -ENOKEY;
        }
        if (resp->status != 200) {
                set_error(&f->error, "Instance metadata at %s: cannot get %s: HTTP %ld", f->endpoint, what,
                          resp->status);
                return -ENOKEY;
        }

        switch (f->step) {
        case IMDS_STEP_TOKEN:
                /* The token goes back in a header: printable, bounded. */
                if (!body || body->len == 0 || body->len > IMDS_TOKEN_MAX || !memory_no_controls(body->data, body->len)) {
                        set_error(&f->error, "Instance metadata at %s: malformed session token", f->endpoint);
                        return -EINVAL;
                }
                secret_free(f->token);
                f->token = secret_dup(body->data, body->len);
                if (!f->token)
                        return -ENOMEM;
                f->step = IMDS_STEP_ROLE;
                return 0;

        case IMDS_STEP_ROLE:
                /* A list with one role per line; an instance has one. */
                n = body ? strcspn(body->data, "\r\n") : 0;
                if (n <= IAM_ROLE_NAME_MAX) {
                        memcpy(f->role, body ? body->data : "", n);
                        f->role[n] = 0;
                }
                if (n > IAM_ROLE_NAME_MAX || !iam_role_name_valid(f->role)) {
                        f->role[0] = 0;
                        set_error(&f->error, "Instance metadata at %s: malformed instance role name", f->endpoint);
                        return -EINVAL;
                }
                f->step = IMDS_STEP_CREDENTIALS;
                return 0;

        case IMDS_STEP_CREDENTIALS:
                if (!body) {
                        set_error(&f->error, "Instance metadata at %s: empty credentials", f->endpoint);
                        return -EINVAL;
                }
                r = imds_parse_credentials(f, body);
                return r < 0 ? r : 1;

        default:
                return -EINVAL;
        }
}

static int imds_endpoint(char **ret) {
        const char *e = getenv_nonempty("AWS_EC2_METADATA_SERVICE_ENDPOINT") ?: IMDS_DEFAULT_ENDPOINT;
        size_t n = strlen(e);

        /* "http://[fd00:ec2::254]/" is as good as without the slash. */
        while (n > 0 && e[n - 1] == '/')
                n--;
        *ret = strndup(e, n);
        return *ret ? 0 : -ENOMEM;
}

static bool imds_disabled(void) {
        const char *v = getenv("AWS_EC2_METADATA_DISABLED");

        return v && strcasecmp(v, "true") == 0;
}

static int imds_fetch_sync(HttpClient *http, ImdsFetch *f) {
        int r;

        for (;;) {
                _cleanup_(http_response_freep) HttpResponse *resp = NULL;
                HttpRequestSpec spec;

                r = imds_fetch_spec(f, &spec);
                if (r < 0)
                        return r;
                r = http_perform(http, &spec, &resp);
                if (r == -EINVAL || r == -EPROTONOSUPPORT) {
                        set_error(&f->error, "AWS_EC2_METADATA_SERVICE_ENDPOINT=%s is not a valid endpoint", f->endpoint);
                        return -EINVAL;
                }
                if (r < 0) {
                        set_error(&f->error, "Instance metadata at %s: %s", f->endpoint, strerror(-r));
                        return r;
                }
                r = imds_fetch_response(f, resp);
                if (r != 0)
                        return r;
        }
}

/* ---- the provider ------------------------------------------------------ */

struct CredentialsProvider {
        HttpClient *http;
        AwsCredentials *current;
        usec_t refresh_retry;

        /* Instance-role credentials only: */
        char *imds_endpoint;
        ImdsFetch fetch;
        HttpRequest *inflight;
        sd_event_source *timer;
        usec_t next_refresh;

        credentials_refresh_callback_t callback;
        void *userdata;
};

/*
 * When to refresh credentials expiring at @expiration (our clock; @skew is
 * how far the server's clock is ahead): five minutes early, or halfway
 * through when less than ten minutes are left, never sooner than a second
 * from now; credentials that are already expired are retried like a
 * failure. IMDS serves the next credentials at least five minutes before
 * the current ones expire, so a refresh this early finds them.
 */
static usec_t refresh_time(usec_t now, usec_t expiration, int64_t skew, usec_t retry) {
        usec_t exp_local, left;

        if (expiration == 0)
                return USEC_INFINITY;
        if (skew > 0)
                exp_local = expiration > (usec_t) skew * USEC_PER_SEC ? expiration - (usec_t) skew * USEC_PER_SEC : 0;
        else
                exp_local = expiration + (usec_t) (-skew) * USEC_PER_SEC;
        if (exp_local <= now)
                return now + retry;
        left = exp_local - now;
        if (left > 2 * CREDENTIALS_REFRESH_BEFORE)
                return exp_local - CREDENTIALS_REFRESH_BEFORE;
        return now + (left / 2 > REFRESH_MIN ? left / 2 : REFRESH_MIN);
}

static int refresh_arm(CredentialsProvider *p, usec_t when) {
        int r;

        p->next_refresh = when;
        if (when == USEC_INFINITY)
                return p->timer ? sd_event_source_set_enabled(p->timer, SD_EVENT_OFF) : 0;
        r = sd_event_source_set_time(p->timer, when);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(p->timer, SD_EVENT_ONESHOT);
}

static void refresh_finish(CredentialsProvider *p, int error) {
        usec_t now = now_usec(CLOCK_REALTIME), when;
        const char *message = p->fetch.error;
        int r;

        if (error >= 0) {
                /* Requests in flight hold their own reference to the old
                 * credentials; only new requests see the new ones. */
                aws_credentials_unref(p->current);
                p->current = TAKE_PTR(p->fetch.result);
                when = refresh_time(now, p->current->expiration, http_client_get_skew(p->http), p->refresh_retry);
        } else
                when = now + p->refresh_retry;

        r = refresh_arm(p, when);
        if (r < 0 && error >= 0) {
                error = r;
                message = "Cannot arm the credentials refresh timer";
        }
        if (p->callback)
                p->callback(p, error < 0 ? error : 0, error < 0 ? (message ?: strerror(-error)) : NULL, p->userdata);
        imds_fetch_reset(&p->fetch);
}

static void refresh_cb(HttpRequest *req, const HttpResponse *resp, void *userdata);

static int refresh_submit(CredentialsProvider *p) {
        HttpRequestSpec spec;
        int r;

        r = imds_fetch_spec(&p->fetch, &spec);
        if (r < 0)
                return r;
        return http_submit(p->http, &spec, refresh_cb, p, &p->inflight);
}

static void refresh_cb(HttpRequest *req, const HttpResponse *resp, void *userdata) {
        CredentialsProvider *p = userdata;
        int r;

        p->inflight = NULL; /* the transport frees it after we return */
        r = imds_fetch_response(&p->fetch, resp);
        if (r == 0) {
                r = refresh_submit(p);
                if (r >= 0)
                        return;
        }
        refresh_finish(p, r < 0 ? r : 0);
}

static int refresh_timer_cb(sd_event_source *s, uint64_t usec, void *userdata) {
        CredentialsProvider *p = userdata;
        int r;

        if (p->inflight)
                return 0;
        imds_fetch_reset(&p->fetch);
        p->fetch.endpoint = p->imds_endpoint;
        r = refresh_submit(p);
        if (r < 0)
                refresh_finish(p, r);
        return 0;
}

int credentials_provider_new(HttpClient *http, const CredentialsOptions *opts, CredentialsProvider **ret,
                             char **ret_error) {
        static const CredentialsOptions defaults = { .profile = NULL };
        _cleanup_(credentials_provider_freep) CredentialsProvider *p = NULL;
        int r;

        if (!ret)
                return -EINVAL;
        if (!opts)
                opts = &defaults;

        p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        p->http = http;
        p->refresh_retry = opts->refresh_retry ?: CREDENTIALS_REFRESH_RETRY;
        p->next_refresh = USEC_INFINITY;

        r = from_environment(&p->current, ret_error);
        if (r < 0)
                return r;
        if (r == 0)
                r = from_shared_file(opts, &p->current, ret_error);
        if (r < 0)
                return r;
        if (r > 0) {
                *ret = TAKE_PTR(p);
                return 0;
        }

        if (!http || imds_disabled()) {
                set_error(ret_error, "No AWS credentials found: none in the environment, none for profile %s in "
                                     "the shared credentials file, and instance metadata is %s",
                          opts->profile ?: getenv_nonempty("AWS_PROFILE") ?: "default",
                          http ? "disabled (AWS_EC2_METADATA_DISABLED)" : "not consulted");
                return -ENOKEY;
        }

        r = imds_endpoint(&p->imds_endpoint);
        if (r < 0)
                return r;
        p->fetch.endpoint = p->imds_endpoint;
        r = imds_fetch_sync(http, &p->fetch);
        if (r < 0) {
                if (r == -ENOKEY)
                        set_error(ret_error, "No AWS credentials found: none in the environment, none for profile "
                                             "default in the shared credentials file, and %s",
                                  p->fetch.error ?: "none from instance metadata");
                else
                        set_error(ret_error, "%s", p->fetch.error ?: strerror(-r));
                return r;
        }
        p->current = TAKE_PTR(p->fetch.result);
        imds_fetch_reset(&p->fetch);

        r = sd_event_add_time(http_client_get_event(http), &p->timer, CLOCK_REALTIME, USEC_INFINITY,
                              USEC_PER_SEC / 10, refresh_timer_cb, p);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(p->timer, "credentials-refresh");
        r = refresh_arm(p, refresh_time(now_usec(CLOCK_REALTIME), p->current->expiration,
                                        http_client_get_skew(http), p->refresh_retry));
        if (r < 0)
                return r;

        *ret = TAKE_PTR(p);
        return 0;
}

CredentialsProvider *credentials_provider_free(CredentialsProvider *p) {
        if (!p)
                return NULL;
        if (p->inflight)
                http_request_cancel(p->inflight);
        sd_event_source_disable_unref(p->timer);
        imds_fetch_reset(&p->fetch);
        aws_credentials_unref(p->current);
        free(p->imds_endpoint);
        free(p);
        return NULL;
}

AwsCredentials *credentials_provider_current(CredentialsProvider *p) {
        return p ? p->current : NULL;
}

void credentials_provider_set_refresh_callback(CredentialsProvider *p, credentials_refresh_callback_t cb,
                                               void *userdata) {
        p->callback = cb;
        p->userdata = userdata;
}

usec_t credentials_provider_next_refresh(CredentialsProvider *p) {
        return p ? p->next_refresh : USEC_INFINITY;
}

/* SPDX-License-Identifier: MIT */
#include "rotation/verify.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "aws/iam.h"

#define VERIFY_BACKOFF_MIN (250 * USEC_PER_MSEC)
#define VERIFY_BACKOFF_MAX (8 * USEC_PER_SEC)
/* Per check: a check that hangs is a failed check, not a stuck rotation. */
#define VERIFY_ATTEMPT_TIMEOUT (10 * USEC_PER_SEC)

typedef enum VerifyStep {
        VSTEP_CHECK,
        VSTEP_PROBE_IAM,
        VSTEP_PROBE_BUCKET,
} VerifyStep;

struct Verification {
        AwsClient *aws;
        VerifyOptions opts;
        verify_done_t done;
        void *userdata;

        VerifyStep step;
        AwsCall *call;
        sd_event_source *timer;
        usec_t deadline;
        usec_t next_at;   /* when the next check may start: the last one's start + interval */
        unsigned streak;
        unsigned failures;
        bool probes_passed;
        char last_error[128];
        VerifyResult result;
};

int verify_check_start(AwsClient *aws, const InventoryVerify *v, S3Options *o, bool read_only, aws_callback_t cb,
                       void *userdata, AwsCall **ret, bool *ret_substituted) {
        static const char probe_body[] = "keyrotd verification object\n";

        if (ret_substituted)
                *ret_substituted = false;
        o->bucket = v->bucket;
        o->key = v->check_key;
        switch (v->check) {
        case VERIFY_CHECK_LIST:
                return s3_list_objects(aws, o, 1, cb, userdata, ret);
        case VERIFY_CHECK_HEAD:
                return s3_head(aws, o, cb, userdata, ret);
        case VERIFY_CHECK_GET:
                return s3_get_object(aws, o, cb, userdata, ret);
        case VERIFY_CHECK_PUT:
                if (read_only) {
                        if (ret_substituted)
                                *ret_substituted = true;
                        o->key = NULL;
                        return s3_list_objects(aws, o, 1, cb, userdata, ret);
                }
                return s3_put_object(aws, o, probe_body, sizeof probe_body - 1, cb, userdata, ret);
        default:
                return -EINVAL;
        }
}

static void run_step(Verification *v);

static void verification_free(Verification *v) {
        if (!v)
                return;
        if (v->call)
                aws_call_cancel(v->call);
        sd_event_source_disable_unref(v->timer);
        free(v);
}

void verify_cancel(Verification *v) {
        verification_free(v);
}

static void conclude(Verification *v, VerifyOutcome outcome, const char *code, const char *fmt, ...)
        _printf_(4, 5);
static void conclude(Verification *v, VerifyOutcome outcome, const char *code, const char *fmt, ...) {
        va_list ap;

        v->result.outcome = outcome;
        v->result.code = code;
        if (fmt) {
                va_start(ap, fmt);
                (void) vsnprintf(v->result.message, sizeof v->result.message, fmt, ap);
                va_end(ap);
        }
        v->done(&v->result, v->userdata);
        verification_free(v);
}

static const char *subject(const Verification *v) {
        return v->opts.subject ?: "the key";
}

static unsigned consecutive(const Verification *v) {
        return v->opts.consecutive ?: v->opts.verify->consecutive;
}

static int timer_fired(sd_event_source *s, uint64_t usec, void *userdata) {
        Verification *v = userdata;

        v->timer = sd_event_source_disable_unref(v->timer);
        run_step(v);
        return 0;
}

static void run_after(Verification *v, usec_t delay) {
        int k = sd_event_add_time_relative(http_client_get_event(v->aws->http), &v->timer, CLOCK_MONOTONIC, delay, 1,
                                           timer_fired, v);
        if (k < 0)
                conclude(v, VERIFY_ERROR, "InternalError", "cannot arm a timer: %s", strerror(-k));
}

/* Not (yet) a success: start the streak afresh after a backoff. */
static void retry(Verification *v, const char *code) {
        usec_t now = now_usec(CLOCK_MONOTONIC);
        usec_t delay = VERIFY_BACKOFF_MIN << MIN(v->failures, 6u);

        snprintf(v->last_error, sizeof v->last_error, "%s", code);
        v->streak = 0;
        delay = MIN(delay, VERIFY_BACKOFF_MAX);
        v->failures++;
        if (now + delay >= v->deadline) {
                conclude(v, VERIFY_TIMEOUT, v->last_error, "%s did not verify within %llus (last error: %s)", subject(v),
                         (unsigned long long) ((v->opts.timeout ?: v->opts.verify->timeout) / USEC_PER_SEC),
                         v->last_error);
                return;
        }
        /* A refused probe, too, starts the streak afresh with a check. */
        v->step = VSTEP_CHECK;
        run_after(v, delay);
}

/* After a success: the deny probes, once, in the wait before the next
 * check rather than after the last one, so they cost no time on the way
 * to the end; then the next check, or the end after the last. */
static void advance(Verification *v) {
        usec_t now = now_usec(CLOCK_MONOTONIC);

        if (!v->probes_passed && !v->opts.no_probes) {
                v->step = v->opts.verify->deny_probe ? VSTEP_PROBE_IAM : VSTEP_PROBE_BUCKET;
                run_step(v);
                return;
        }
        if (v->streak >= consecutive(v)) {
                conclude(v, VERIFY_OK, NULL, NULL);
                return;
        }
        if (v->next_at >= v->deadline) {
                retry(v, "timeout");
                return;
        }
        v->step = VSTEP_CHECK;
        if (v->next_at <= now)
                run_step(v);
        else
                run_after(v, v->next_at - now);
}

static bool code_is(const AwsResult *res, const char *code) {
        return res->error == -EREMOTEIO && streq(res->aws_error.code, code);
}

static void on_check(AwsCall *call, AwsResult *res, void *userdata) {
        Verification *v = userdata;
        const InventoryVerify *iv = v->opts.verify;
        const char *code = aws_result_error_code(res);

        v->call = NULL;
        v->result.checks++;
        snprintf(v->result.request_id, sizeof v->result.request_id, "%s", res->request_id);
        if (res->error == 0 ||
            (v->opts.missing_object_ok && (code_is(res, "NoSuchKey") || (res->status == 404 && iv->check_key)))) {
                v->streak++;
                v->failures = 0;
                advance(v);
                return;
        }
        if (code_is(res, "AccessDenied") && !v->opts.denied_is_propagation) {
                conclude(v, VERIFY_DENIED, "AccessDenied",
                         "%s is denied the '%s' check on bucket %s: the user's IAM policy does not grant it "
                         "(a policy problem, not propagation)",
                         subject(v), verify_check_to_string(iv->check), iv->bucket);
                return;
        }
        if (code_is(res, "NoSuchBucket") || code_is(res, "NoSuchKey") || code_is(res, "NotFound")) {
                conclude(v, VERIFY_CANNOT_SUCCEED, res->aws_error.code,
                         "the verify check cannot succeed: %s on bucket %s", code, iv->bucket);
                return;
        }
        /* Propagation, throttling, 5xx, transport: again, within the deadline. */
        retry(v, code);
}

static void probes_passed(Verification *v) {
        v->probes_passed = true;
        advance(v);
}

static void probe_result(Verification *v, AwsResult *res, const char *what, bool last) {
        v->call = NULL;
        snprintf(v->result.request_id, sizeof v->result.request_id, "%s", res->request_id);
        if (code_is(res, "AccessDenied")) {
                if (last)
                        probes_passed(v);
                else {
                        v->step = VSTEP_PROBE_BUCKET;
                        run_step(v);
                }
                return;
        }
        if (res->error == 0) {
                conclude(v, VERIFY_OVER_PRIVILEGED, "OverPrivileged", "%s is over-privileged: it was allowed %s",
                         subject(v), what);
                return;
        }
        if (last && code_is(res, "NoSuchBucket")) {
                conclude(v, VERIFY_PROBE_USELESS, "NoProbeBucket",
                         "verify.deny_bucket %s does not exist, so denial proves nothing", v->opts.verify->deny_bucket);
                return;
        }
        retry(v, aws_result_error_code(res));
}

static void on_probe_iam(AwsCall *call, AwsResult *res, void *userdata) {
        probe_result(userdata, res, "iam:ListAccessKeys", false);
}

static void on_probe_bucket(AwsCall *call, AwsResult *res, void *userdata) {
        probe_result(userdata, res, "s3:ListBucket on verify.deny_bucket", true);
}

static void run_step(Verification *v) {
        const InventoryVerify *iv = v->opts.verify;
        S3Options o = {
                .creds = v->opts.creds,
                .fresh_connection = true,
                .max_attempts = 1,
                .timeout = VERIFY_ATTEMPT_TIMEOUT,
        };
        int k;

        switch (v->step) {
        case VSTEP_CHECK:
                /* Checks `interval` apart by their start, so the span of a
                 * streak is (consecutive - 1) x interval plus one check. */
                v->next_at = now_usec(CLOCK_MONOTONIC) + iv->interval;
                k = verify_check_start(v->aws, iv, &o, false, on_check, v, &v->call, NULL);
                break;
        case VSTEP_PROBE_IAM:
                k = iam_list_access_keys(v->aws, v->opts.creds, v->opts.user, on_probe_iam, v, &v->call);
                break;
        case VSTEP_PROBE_BUCKET:
                if (!iv->deny_bucket) {
                        probes_passed(v);
                        return;
                }
                o.bucket = iv->deny_bucket;
                k = s3_list_objects(v->aws, &o, 1, on_probe_bucket, v, &v->call);
                break;
        default:
                k = -EINVAL;
        }
        if (k < 0)
                conclude(v, VERIFY_ERROR, "InternalError", "cannot start a verification call: %s", strerror(-k));
}

static int start_deferred(sd_event_source *s, void *userdata) {
        Verification *v = userdata;

        v->timer = sd_event_source_disable_unref(v->timer);
        run_step(v);
        return 0;
}

int verify_start(AwsClient *aws, const VerifyOptions *o, verify_done_t done, void *userdata, Verification **ret) {
        Verification *v;
        int k;

        if (!aws || !o || !o->verify || !o->verify->bucket || !o->creds || !o->user || !done)
                return -EINVAL;
        v = calloc(1, sizeof *v);
        if (!v)
                return -ENOMEM;
        *v = (Verification) {
                .aws = aws,
                .opts = *o,
                .done = done,
                .userdata = userdata,
                .step = VSTEP_CHECK,
                .deadline = now_usec(CLOCK_MONOTONIC) + (o->timeout ?: o->verify->timeout),
        };
        /* From the loop, never from inside this call: done may free the caller. */
        k = sd_event_add_defer(http_client_get_event(aws->http), &v->timer, start_deferred, v);
        if (k < 0) {
                free(v);
                return k;
        }
        if (ret)
                *ret = v;
        return 0;
}

typedef struct VerifySync {
        bool done;
        VerifyResult *result;
} VerifySync;

static void sync_done(const VerifyResult *res, void *userdata) {
        VerifySync *s = userdata;

        *s->result = *res;
        s->done = true;
}

int verify_run(AwsClient *aws, const VerifyOptions *o, VerifyResult *ret) {
        sd_event *e = http_client_get_event(aws->http);
        VerifySync s = { .result = ret };
        Verification *v = NULL;
        int k;

        *ret = (VerifyResult) {};
        k = verify_start(aws, o, sync_done, &s, &v);
        if (k < 0)
                return k;
        while (!s.done) {
                k = sd_event_run(e, UINT64_MAX);
                if (k < 0) {
                        verify_cancel(v);
                        return k;
                }
        }
        return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * aws-tool — drives keyrotd's AWS client core from the integration tests:
 * one operation per invocation, the outcome as one JSON line on stdout.
 * keyrotd's own identity comes from the standard chain (the tests set the
 * environment); "--as-env" signs with AWS_TEST_KEY_ID/AWS_TEST_SECRET
 * instead, the way rotation signs with a key under test.
 *
 * A test program: it prints the secret of a key it creates, because the
 * test must prove that key works. keyrotd itself never does.
 *
 * Exit: 0 success, 1 the call failed, 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "aws/client.h"
#include "aws/http.h"
#include "aws/iam.h"
#include "aws/provider.h"
#include "aws/s3.h"

static const char *region = "us-east-1";
static const char *endpoint_url = NULL;
static int64_t clock_offset = 0;
static unsigned max_attempts = 0, repeat = 1, page_size = 0, timeout_ms = 0, max_backoff_ms = 0;
static bool as_env = false, fresh = false, scan_heap = false;

/* Whether the ordinary heap (brk; secure memory is mmap'd elsewhere) holds
 * the bytes anywhere, live or freed: what a swapped-out page or a memory
 * disclosure could reveal. Read through /proc/self/mem, so freed chunks
 * are looked at without touching them through the allocator. */
static int heap_contains(const char *needle, size_t len) {
        FILE *maps = fopen("/proc/self/maps", "re");
        char line[512];
        unsigned long lo = 0, hi = 0;
        int found = 0;

        if (!maps)
                return -errno;
        while (fgets(line, sizeof line, maps))
                if (strstr(line, "[heap]") && sscanf(line, "%lx-%lx", &lo, &hi) == 2)
                        break;
        fclose(maps);
        if (hi <= lo)
                return 0;
        size_t n = hi - lo;
        char *copy = malloc(n);
        if (!copy)
                return -ENOMEM;
        int fd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
        if (fd < 0 || pread(fd, copy, n, (off_t) lo) != (ssize_t) n)
                found = -EIO;
        else
                found = memmem(copy, n, needle, len) != NULL;
        if (fd >= 0)
                close(fd);
        explicit_bzero(copy, n);
        free(copy);
        return found;
}

static void usage(void) {
        fprintf(stderr,
                "usage: aws-tool [--region R] [--endpoint URL] [--clock-offset SEC] [--max-attempts N]\n"
                "                [--as-env] [--fresh] [--repeat N] [--page-size N]\n"
                "                [--timeout-ms N] [--max-backoff-ms N] [--scan-heap] OP ARGS...\n"
                "ops: get-user [USER] | list-keys USER | create-key USER | update-key USER ID Active|Inactive\n"
                "     delete-key USER ID | last-used ID | create-user USER [TAGKEY TAGVALUE] |\n"
                "     put-policy USER NAME DOCUMENT | s3-list BUCKET | s3-head BUCKET [KEY] |\n"
                "     s3-get BUCKET KEY | s3-put BUCKET KEY DATA\n");
}

static json_object *result_json(const AwsResult *res, AwsClient *c) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "ok", json_object_new_boolean(res->error == 0));
        json_object_object_add(o, "op", json_object_new_string(aws_op_to_string(res->op)));
        json_object_object_add(o, "status", json_object_new_int64(res->status));
        json_object_object_add(o, "attempts", json_object_new_int((int) res->attempts));
        json_object_object_add(o, "request_id", json_object_new_string(res->request_id));
        json_object_object_add(o, "skew", json_object_new_int64(http_client_get_skew(c->http)));
        if (res->error != 0) {
                json_object_object_add(o, "error_code", json_object_new_string(res->aws_error.code));
                json_object_object_add(o, "error", json_object_new_string(aws_result_error_code(res)));
                json_object_object_add(o, "errno", json_object_new_int(-res->error));
                return o;
        }
        switch (res->op) {
        case AWS_OP_LIST_ACCESS_KEYS: {
                json_object *a = json_object_new_array();
                for (size_t i = 0; i < res->list_keys.n_keys; i++) {
                        const AccessKeyMeta *k = &res->list_keys.keys[i];
                        json_object *ko = json_object_new_object();
                        json_object_object_add(ko, "id", json_object_new_string(k->access_key_id));
                        json_object_object_add(ko, "user", json_object_new_string(k->user_name));
                        json_object_object_add(ko, "status", json_object_new_string(key_status_to_string(k->status)));
                        json_object_object_add(ko, "created", json_object_new_int64(k->create_date));
                        json_object_array_add(a, ko);
                }
                json_object_object_add(o, "keys", a);
                break;
        }
        case AWS_OP_CREATE_ACCESS_KEY:
                json_object_object_add(o, "id", json_object_new_string(res->create_key.meta.access_key_id));
                json_object_object_add(o, "secret",
                                       json_object_new_string(secret_str(res->create_key.secret_access_key)));
                json_object_object_add(o, "created", json_object_new_int64(res->create_key.meta.create_date));
                break;
        case AWS_OP_GET_ACCESS_KEY_LAST_USED:
                json_object_object_add(o, "user", json_object_new_string(res->last_used.user_name));
                json_object_object_add(o, "last_used", json_object_new_int64(res->last_used.last_used_date));
                json_object_object_add(o, "service", json_object_new_string(res->last_used.service_name));
                break;
        case AWS_OP_GET_USER:
        case AWS_OP_CREATE_USER:
                json_object_object_add(o, "user", json_object_new_string(res->user.user_name));
                json_object_object_add(o, "arn", json_object_new_string(res->user.arn));
                break;
        case AWS_OP_S3_LIST_OBJECTS:
                json_object_object_add(o, "key_count", json_object_new_int((int) res->objects.key_count));
                break;
        default:
                break;
        }
        return o;
}

static int start(AwsClient *c, AwsCredentials *as, int argc, char **argv, AwsSync *s) {
        const char *op = argv[0];
        S3Options so = { .creds = as, .bucket = argc > 1 ? argv[1] : NULL, .key = argc > 2 ? argv[2] : NULL,
                         .fresh_connection = fresh, .max_attempts = max_attempts };

        if (streq(op, "get-user"))
                return iam_get_user(c, as_env ? as : NULL, argc > 1 ? argv[1] : NULL, aws_sync_cb, s, NULL);
        if (streq(op, "list-keys") && argc == 2)
                return iam_list_access_keys(c, as_env ? as : NULL, argv[1], aws_sync_cb, s, NULL);
        if (streq(op, "create-key") && argc == 2)
                return iam_create_access_key(c, argv[1], aws_sync_cb, s, NULL);
        if (streq(op, "update-key") && argc == 4)
                return iam_update_access_key(c, argv[1], argv[2], key_status_from_string(argv[3]), aws_sync_cb, s,
                                             NULL);
        if (streq(op, "delete-key") && argc == 3)
                return iam_delete_access_key(c, argv[1], argv[2], aws_sync_cb, s, NULL);
        if (streq(op, "last-used") && argc == 2)
                return iam_get_access_key_last_used(c, argv[1], aws_sync_cb, s, NULL);
        if (streq(op, "create-user") && (argc == 2 || argc == 4)) {
                const char *tags[] = { argc == 4 ? argv[2] : NULL, argc == 4 ? argv[3] : NULL, NULL };
                return iam_create_user(c, argv[1], tags, aws_sync_cb, s, NULL);
        }
        if (streq(op, "put-policy") && argc == 4)
                return iam_put_user_policy(c, argv[1], argv[2], argv[3], aws_sync_cb, s, NULL);
        if (!as)
                return -EINVAL;
        if (streq(op, "s3-list") && argc == 2)
                return s3_list_objects(c, &so, 1, aws_sync_cb, s, NULL);
        if (streq(op, "s3-head") && (argc == 2 || argc == 3))
                return s3_head(c, &so, aws_sync_cb, s, NULL);
        if (streq(op, "s3-get") && argc == 3)
                return s3_get_object(c, &so, aws_sync_cb, s, NULL);
        if (streq(op, "s3-put") && argc == 4)
                return s3_put_object(c, &so, argv[3], strlen(argv[3]), aws_sync_cb, s, NULL);
        return -EINVAL;
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "region", required_argument, NULL, 'r' },
                { "endpoint", required_argument, NULL, 'e' },
                { "clock-offset", required_argument, NULL, 'c' },
                { "max-attempts", required_argument, NULL, 'm' },
                { "as-env", no_argument, NULL, 'a' },
                { "fresh", no_argument, NULL, 'f' },
                { "repeat", required_argument, NULL, 'n' },
                { "page-size", required_argument, NULL, 'p' },
                { "timeout-ms", required_argument, NULL, 't' },
                { "max-backoff-ms", required_argument, NULL, 'b' },
                { "scan-heap", no_argument, NULL, 's' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        _cleanup_(http_client_freep) HttpClient *http = NULL;
        _cleanup_(credentials_provider_freep) CredentialsProvider *identity = NULL;
        _cleanup_(aws_credentials_unrefp) AwsCredentials *as = NULL;
        _cleanup_(aws_client_freep) AwsClient *c = NULL;
        _cleanup_free_ char *error = NULL;
        sd_event *event = NULL;
        int opt, r, failed = 0;

        while ((opt = getopt_long(argc, argv, "+h", options, NULL)) >= 0) {
                switch (opt) {
                case 'r': region = optarg; break;
                case 'e': endpoint_url = optarg; break;
                case 'c': clock_offset = strtoll(optarg, NULL, 10); break;
                case 'm': max_attempts = (unsigned) strtoul(optarg, NULL, 10); break;
                case 'a': as_env = true; break;
                case 'f': fresh = true; break;
                case 'n': repeat = (unsigned) strtoul(optarg, NULL, 10); break;
                case 'p': page_size = (unsigned) strtoul(optarg, NULL, 10); break;
                case 't': timeout_ms = (unsigned) strtoul(optarg, NULL, 10); break;
                case 'b': max_backoff_ms = (unsigned) strtoul(optarg, NULL, 10); break;
                case 's': scan_heap = true; break;
                case 'h': usage(); return 0;
                default: usage(); return 2;
                }
        }
        if (optind >= argc) {
                usage();
                return 2;
        }

        r = sd_event_default(&event);
        if (r < 0)
                return 1;
        HttpClientOptions ho = {
                .max_attempts = max_attempts,
                .timeout = (usec_t) timeout_ms * USEC_PER_MSEC,
                .max_backoff = (usec_t) max_backoff_ms * USEC_PER_MSEC,
        };
        r = http_client_new(event, &ho, &http);
        sd_event_unref(event);
        if (r < 0) {
                fprintf(stderr, "http_client_new: %s\n", strerror(-r));
                return 1;
        }
        http_client_set_clock_offset(http, clock_offset);

        r = credentials_provider_new(http, &(CredentialsOptions) {}, &identity, &error);
        if (r < 0) {
                fprintf(stderr, "credentials: %s\n", error ?: strerror(-r));
                return 1;
        }
        r = aws_client_new(http, identity, region, endpoint_url, &c, &error);
        if (r < 0) {
                fprintf(stderr, "client: %s\n", error ?: strerror(-r));
                return 1;
        }
        c->list_page_size = page_size;
        if (as_env || startswith(argv[optind], "s3-")) {
                const char *id = getenv(as_env ? "AWS_TEST_KEY_ID" : "AWS_ACCESS_KEY_ID");
                const char *secret = getenv(as_env ? "AWS_TEST_SECRET" : "AWS_SECRET_ACCESS_KEY");
                if (!id || !secret) {
                        fprintf(stderr, "no credentials for the S3 call in the environment\n");
                        return 2;
                }
                r = aws_credentials_new(id, secret, strlen(secret), NULL, 0, "static", &as);
                if (r < 0)
                        return 1;
        }

        for (unsigned i = 0; i < repeat; i++) {
                AwsSync s = {};

                r = start(c, as, argc - optind, argv + optind, &s);
                if (r == -EINVAL) {
                        usage();
                        return 2;
                }
                if (r >= 0)
                        r = aws_sync_wait(c, &s);
                if (r < 0) {
                        fprintf(stderr, "call failed to start: %s\n", strerror(-r));
                        return 1;
                }
                /* Before any JSON: json-c's own copies would be found. */
                int in_heap = 0, canary = 0;
                if (scan_heap && s.result.op == AWS_OP_CREATE_ACCESS_KEY && s.result.error == 0) {
                        in_heap = heap_contains(secret_str(s.result.create_key.secret_access_key),
                                                s.result.create_key.secret_access_key->len);
                        /* The scanner's own proof: a freed, unwiped block is found. */
                        char *c1 = strdup("keyrotd-heap-canary: freed without a wipe, found by the scan");
                        if (c1) {
                                free(c1);
                                canary = heap_contains("found by the scan", 17);
                        }
                }
                json_object *o = result_json(&s.result, c);
                if (scan_heap) {
                        json_object_object_add(o, "secret_in_heap", in_heap < 0 ? json_object_new_int(in_heap)
                                                                             : json_object_new_boolean(in_heap));
                        json_object_object_add(o, "canary_in_heap", canary < 0 ? json_object_new_int(canary)
                                                                           : json_object_new_boolean(canary));
                }
                puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
                fflush(stdout);
                json_object_put(o);
                if (s.result.error != 0)
                        failed++;
                aws_result_done(&s.result);
        }
        return failed ? 1 : 0;
}

/* SPDX-License-Identifier: MIT */
/* Pure parts of the transport and client: encoding and endpoint rules. */
#include <errno.h>
#include <stdlib.h>

#include "aws/client.h"
#include "aws/http.h"
#include "tap.h"

static void test_uri_encode(void) {
        static const struct {
                const char *in;
                bool keep_slash;
                const char *want;
        } cases[] = {
                { "/", true, "/" },
                { "/bucket/a b+c", true, "/bucket/a%20b%2Bc" },
                { "a/b", false, "a%2Fb" },
                { "AZaz09-_.~", false, "AZaz09-_.~" },
                { "\xe1\x88\xb4", false, "%E1%88%B4" },
                { "=&?#%", false, "%3D%26%3F%23%25" },
                { "", false, "" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *out = NULL;
                int r = aws_uri_encode(cases[i].in, cases[i].keep_slash, &out);
                ok(r == 0, "encode '%s' succeeds", cases[i].in);
                ok_eq_str(out, cases[i].want, "encode result");
                free(out);
        }
}

static void test_form_encode(void) {
        char *out = NULL;

        ok(aws_form_encode("a b+c/d~", &out) == 0, "form encode succeeds");
        ok_eq_str(out, "a+b%2Bc%2Fd~", "form encoding: space as plus, plus and slash escaped");
        free(out);
}

static void noop_cb(HttpRequest *req, const HttpResponse *resp, void *userdata) {
        *(bool *) userdata = true;
}

static void test_submit_rules(void) {
        sd_event *e = NULL;
        HttpClient *c = NULL;
        bool called = false;
        HttpRequest *req = NULL;

        ok(sd_event_new(&e) >= 0 && http_client_new(e, NULL, &c) == 0, "client created");

        HttpRequestSpec spec = { .method = "GET", .endpoint = "http://127.0.0.1:9", .path = "/" };
        ok(http_submit(c, &spec, noop_cb, &called, &req) == -EPROTONOSUPPORT,
           "plain http refused without an explicit override");
        spec.endpoint = "ftp://127.0.0.1";
        spec.allow_http = true;
        ok(http_submit(c, &spec, noop_cb, &called, &req) == -EPROTONOSUPPORT, "ftp refused even with override");
        spec.endpoint = "https://example.com/some/path";
        ok(http_submit(c, &spec, noop_cb, &called, &req) == -EINVAL, "an endpoint with a path is refused");
        spec.endpoint = "https://example.com";
        spec.path = "relative";
        ok(http_submit(c, &spec, noop_cb, &called, &req) == -EINVAL, "a relative path is refused");

        /* A request to a closed port fails through the callback, never inline. */
        spec.endpoint = "http://127.0.0.1:9";
        spec.path = "/";
        spec.max_attempts = 1;
        HttpResponse *resp = NULL;
        ok(http_perform(c, &spec, &resp) == 0 && resp, "perform returns a response for a refused connection");
        ok(resp && resp->error < 0 && resp->status == 0 && resp->error_text[0], "transport error reported: %s",
           resp ? resp->error_text : "");
        ok(resp && resp->attempts == 1, "max_attempts 1 is honoured");
        http_response_free(resp);
        ok(!called, "the no-op callback never ran");

        http_client_free(c);
        sd_event_unref(e);
}

static void test_endpoints(void) {
        AwsClient *c = NULL;
        char *err = NULL;

        unsetenv("AWS_ENDPOINT_URL");
        unsetenv("AWS_ENDPOINT_URL_IAM");
        unsetenv("AWS_ENDPOINT_URL_S3");
        ok(aws_client_new(NULL, NULL, "eu-west-1", NULL, &c, &err) == 0, "default endpoints");
        ok_eq_str(c->iam_endpoint, "https://iam.amazonaws.com", "IAM is global");
        ok_eq_str(c->s3_endpoint, "https://s3.eu-west-1.amazonaws.com", "S3 is regional");
        ok(!c->iam_override && !c->s3_override, "no override");
        c = aws_client_free(c);

        ok(aws_client_new(NULL, NULL, NULL, "http://127.0.0.1:5000/", &c, &err) == 0, "inventory endpoint");
        ok_eq_str(c->iam_endpoint, "http://127.0.0.1:5000", "trailing slash dropped");
        ok_eq_str(c->region, "us-east-1", "default region");
        ok(c->iam_override && c->s3_override, "override flagged");
        c = aws_client_free(c);

        setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:6000", 1);
        setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:7000", 1);
        ok(aws_client_new(NULL, NULL, NULL, "http://127.0.0.1:5000", &c, &err) == 0, "env endpoints");
        ok_eq_str(c->iam_endpoint, "http://127.0.0.1:6000", "AWS_ENDPOINT_URL wins over the inventory");
        ok_eq_str(c->s3_endpoint, "http://127.0.0.1:7000", "AWS_ENDPOINT_URL_S3 wins over AWS_ENDPOINT_URL");
        c = aws_client_free(c);
        unsetenv("AWS_ENDPOINT_URL");
        unsetenv("AWS_ENDPOINT_URL_S3");

        ok(aws_client_new(NULL, NULL, NULL, "ftp://x", &c, &err) == -EINVAL && err, "bad scheme refused: %s",
           err ? err : "");
        free(err);
}

int main(void) {
        test_uri_encode();
        test_form_encode();
        test_submit_rules();
        test_endpoints();
        return tap_done();
}

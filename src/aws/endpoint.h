/* SPDX-License-Identifier: MIT */
/*
 * endpoint.h — what keyrotd accepts as an endpoint URL for IAM and S3,
 * from the inventory (aws.endpoint_url) and from the environment
 * (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_IAM, AWS_ENDPOINT_URL_S3) alike, so
 * that `keyrotd --check-config` and the start of a run agree.
 *
 * https:// anywhere. http:// only to a loopback address (127.0.0.0/8,
 * ::1, "localhost"): every request carries a signature, and
 * CreateAccessKey's answer a new secret, which must not cross a network
 * in clear text. An emulator on the same host is the one use of http://.
 */
#pragma once

/* Longest endpoint URL accepted. */
#define ENDPOINT_URL_MAX 2048U

/**
 * endpoint_url_problem() - why @url is not an acceptable endpoint URL.
 *
 * NULL when @url is "https://" or "http://" followed by a non-empty
 * authority (host, optionally ":port"; no user name or password), at most
 * ENDPOINT_URL_MAX bytes without blanks, quotes or the characters URLs
 * never hold unescaped, and an http:// URL names a loopback host.
 * Otherwise a phrase to follow the URL in a message: "must start with
 * http:// or https://", "is not a valid URL", "must not contain a user
 * name or password", or the one about http:// and loopback addresses.
 */
const char *endpoint_url_problem(const char *url);

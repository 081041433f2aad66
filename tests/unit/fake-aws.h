/* SPDX-License-Identifier: MIT */
/*
 * fake-aws.h — an in-process IAM and S3 for the engine's unit tests,
 * plugged into the transport with http_client_set_fake(). It answers the
 * calls a rotation makes for one IAM user with the XML AWS sends, so the
 * real client, parsers, engine, store and targets run unchanged, in
 * milliseconds and without moto.
 *
 * It keeps what the tests assert on: the user's keys, the calls made (one
 * line each, "CreateAccessKey", "UpdateAccessKey AKID Inactive", "S3
 * AKID", ...), and faults to inject.
 */
#pragma once

#include <stdbool.h>
#include <time.h>

#include "aws/http.h"

#define FAKE_ADMIN_KEY_ID "AKIAFAKEADMIN0000000"
#define FAKE_ADMIN_SECRET "adminsecretadminsecretadminsecretadminse"
#define FAKE_MAX_KEYS 8
#define FAKE_MAX_CALLS 256

typedef struct FakeKey {
        char id[32];
        char secret[48];
        bool active;
        time_t created;
        time_t last_used; /* 0: never */
        bool created_here; /* by CreateAccessKey, so subject to the propagation faults */
        unsigned refusals; /* S3 refusals so far (propagation) */
} FakeKey;

typedef struct FakeAws {
        char user[65];
        FakeKey keys[FAKE_MAX_KEYS];
        size_t n_keys;
        unsigned next_id;

        char calls[FAKE_MAX_CALLS][96];
        size_t n_calls;

        /* Faults. */
        bool inactive_works;       /* S3 accepts Inactive keys (moto does; AWS does not) */
        unsigned new_key_refusals; /* S3 refuses each new key this often (propagation) */
        const char *s3_error;      /* S3 answers every new key this error code (e.g. AccessDenied) */
        bool iam_allows_new_key;   /* a user key may call IAM: over-privileged */
        const char *fail_action;   /* IAM action to fail ... */
        const char *fail_code;     /* ... with this error code (NULL: drop the connection) */
        bool fail_after_acting;    /* ... after carrying it out (the answer is lost) */
        unsigned fail_times;       /* ... this many times (0: never) */
} FakeAws;

void fake_aws_init(FakeAws *f, const char *user);
/* Give the user a key; returns its id (stored in @f), NULL when full. */
const char *fake_aws_add_key(FakeAws *f, const char *id, const char *secret, bool active, time_t created);
FakeKey *fake_aws_find(FakeAws *f, const char *id);
/* Calls made whose line starts with @prefix. */
unsigned fake_aws_count(const FakeAws *f, const char *prefix);
/* Calls that change IAM (create, update, delete). */
unsigned fake_aws_mutations(const FakeAws *f);
void fake_aws_reset_calls(FakeAws *f);

/* The http_fake_t to plug in, with the FakeAws as userdata. */
void fake_aws_answer(const HttpFakeRequest *req, HttpFakeResponse *resp, void *userdata);

/* SPDX-License-Identifier: MIT */
/*
 * s3.h — the S3 calls that prove a key works: always signed with the key
 * under test (never keyrotd's own), optionally on a fresh connection so
 * that consecutive checks are independent.
 *
 * Addressing: virtual-hosted (bucket.s3.REGION.amazonaws.com) on AWS,
 * path-style under an endpoint override or for bucket names with dots
 * (which break the wildcard certificate).
 */
#pragma once

#include "aws/client.h"
#include "aws/names.h" /* s3_bucket_name_valid(): every call checks the bucket */

typedef struct S3Options {
        AwsCredentials *creds; /* required */
        const char *bucket;
        const char *key;       /* object key; NULL for bucket-level calls */
        bool fresh_connection;
        usec_t timeout;        /* per attempt; 0 = transport default */
        unsigned max_attempts; /* 0 = transport default */
} S3Options;

/* ListObjectsV2 with max-keys (0 = S3's default of 1000). */
int s3_list_objects(AwsClient *c, const S3Options *o, unsigned max_keys, aws_callback_t cb, void *userdata,
                    AwsCall **ret);
/* HeadObject (key set) or HeadBucket (key NULL). */
int s3_head(AwsClient *c, const S3Options *o, aws_callback_t cb, void *userdata, AwsCall **ret);
/* GetObject of the first byte only: proves read access without downloading
 * the object (an empty object answers 416, which still proves access). */
int s3_get_object(AwsClient *c, const S3Options *o, aws_callback_t cb, void *userdata, AwsCall **ret);
int s3_put_object(AwsClient *c, const S3Options *o, const void *data, size_t len, aws_callback_t cb, void *userdata,
                  AwsCall **ret);

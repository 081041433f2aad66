/* SPDX-License-Identifier: MIT */
/*
 * json-util.h — _cleanup_ helpers for the json-c types, for every JSON
 * that holds no secret (the control socket, policy documents). The two
 * documents that do hold one are read by json-secret.h instead.
 */
#pragma once

#include <json-c/json.h>

static inline void json_object_putp(json_object **o) {
        json_object_put(*o);
}
#define _cleanup_json_ __attribute__((cleanup(json_object_putp)))

static inline void json_tokener_freep(json_tokener **t) {
        if (*t)
                json_tokener_free(*t);
}
#define _cleanup_json_tokener_ __attribute__((cleanup(json_tokener_freep)))

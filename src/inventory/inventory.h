/* SPDX-License-Identifier: MIT */
/*
 * inventory.h — the YAML inventory (docs/DESIGN.md §3), parsed once into an
 * immutable Inventory that is handed down to the rest of the daemon.
 *
 * Everything a consumer needs is resolved at load time: every InventoryUser
 * carries its *effective* settings (the user's value, else the inventory's
 * `defaults:`, else the built-in default), so nobody re-implements
 * inheritance. Owners and groups given by name are resolved to ids
 * (getpwnam/getgrnam) at load time, so an unknown account is a
 * configuration error with a line and column, not a failed rotation.
 *
 * Problems are collected, not stopped at: every unknown key, wrong type,
 * bad value and duplicate is reported as "FILE:LINE:COL: message"
 * (1-based), sorted by position, in an InventoryErrors the caller prints.
 *
 * Some checks look at the file system, so that a setup keyrotd would
 * refuse at run time is refused at load time instead: a hook's program
 * (argv[0], an absolute path) and every directory above it must be owned
 * by root or the effective uid and writable by nobody else
 * (chase_program(), basic/chase.h; a program that does not exist is left
 * to the check before each run). Other rules of docs/DESIGN.md §6 checked
 * here: target modes at most 0640, targets sharing a file agree on its
 * owner, group and mode, and aws.endpoint_url uses http:// only to a
 * loopback address (aws/endpoint.h).
 *
 * The file itself must be a regular file of at most 1 MiB of UTF-8 (no NUL
 * bytes), owned by root or the effective uid and writable by nobody else;
 * one YAML document, no anchors, aliases or tags. (Symlinks are followed and
 * the checks apply to the file reached; parent directories are not checked.)
 * The inventory never holds a secret: a key that looks like one (…secret…,
 * …password…, …token…, …private…) is refused with a message saying so.
 *
 * Durations follow duration.h (bare integers are seconds). Every duration
 * in an Inventory is below 100 years, so adding one to a CLOCK_REALTIME
 * timestamp cannot overflow.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "basic/util.h"

#ifndef UID_INVALID
#define UID_INVALID ((uid_t) -1)
#endif
#ifndef GID_INVALID
#define GID_INVALID ((gid_t) -1)
#endif

/* Refuse inventory files larger than this. */
#define INVENTORY_SIZE_MAX ((size_t) 1024 * 1024)

/* Built-in defaults, used when neither the user nor `defaults:` says. */
#define INVENTORY_DEFAULT_REGION "us-east-1"
#define INVENTORY_DEFAULT_MAX_AGE (90 * USEC_PER_DAY)
#define INVENTORY_DEFAULT_GRACE USEC_PER_HOUR
#define INVENTORY_DEFAULT_MAX_PARALLEL 8U
#define INVENTORY_DEFAULT_SPLAY (10 * USEC_PER_MINUTE)
#define INVENTORY_DEFAULT_ALERT_AFTER 3U
#define INVENTORY_DEFAULT_AUDIT_EVERY USEC_PER_DAY
#define INVENTORY_DEFAULT_HOOK_TIMEOUT (30 * USEC_PER_SEC)
#define INVENTORY_DEFAULT_VERIFY_TIMEOUT (120 * USEC_PER_SEC)
#define INVENTORY_DEFAULT_VERIFY_CONSECUTIVE 3U
#define INVENTORY_DEFAULT_VERIFY_INTERVAL USEC_PER_SEC
#define INVENTORY_DEFAULT_KEY_FILE "/etc/keyrotd/store.key"
#define INVENTORY_DEFAULT_TARGET_MODE 0600
#define INVENTORY_TARGET_MODE_MAX 0640 /* the widest mode a target may have */
#define INVENTORY_DEFAULT_PROFILE "default"

typedef enum TargetType {
        TARGET_CREDENTIALS_FILE, /* AWS shared credentials file; other profiles kept */
        TARGET_ENV_FILE,         /* AWS_ACCESS_KEY_ID=… for EnvironmentFile= */
        TARGET_JSON_FILE,        /* the credential_process JSON document */
        _TARGET_TYPE_MAX,
        _TARGET_TYPE_INVALID = -1,
} TargetType;

const char *target_type_to_string(TargetType t);
TargetType target_type_from_string(const char *s);

typedef enum VerifyCheck {
        VERIFY_CHECK_LIST, /* ListObjectsV2 max-keys=1 on the bucket */
        VERIFY_CHECK_HEAD, /* HeadBucket */
        VERIFY_CHECK_GET,  /* GetObject check_key */
        VERIFY_CHECK_PUT,  /* PutObject check_key */
        _VERIFY_CHECK_MAX,
        _VERIFY_CHECK_INVALID = -1,
} VerifyCheck;

/* "list", "head", "get", "put" (without the ":KEY"). */
const char *verify_check_to_string(VerifyCheck c);
VerifyCheck verify_check_from_string(const char *s);

typedef struct InventoryVerify {
        usec_t timeout;       /* give up verifying after this long (> 0) */
        unsigned consecutive; /* successes in a row required, 1..100 */
        usec_t interval;      /* between checks; 0 allowed */
        bool deny_probe;      /* the new key must be denied an IAM call */
        char *deny_bucket;    /* ... and access to this bucket; NULL = no bucket probe */
        /* Per user only (NULL / VERIFY_CHECK_LIST in Inventory.defaults): */
        char *bucket;         /* S3 bucket the check runs against; never NULL in a user */
        VerifyCheck check;
        char *check_key;      /* object key for get/put; NULL for list/head */
} InventoryVerify;

/* drain: the old key is deactivated once consumers have left it. */
#define INVENTORY_DEFAULT_DRAIN_WAIT USEC_PER_HOUR
#define INVENTORY_DEFAULT_DRAIN_SETTLE (5 * USEC_PER_MINUTE)
#define INVENTORY_DEFAULT_CREDENTIALS_TTL USEC_PER_HOUR

typedef enum DrainTimeout {
        DRAIN_TIMEOUT_KEEP,       /* keep the old key Active, warn, keep watching */
        DRAIN_TIMEOUT_DEACTIVATE, /* deactivate it anyway */
        _DRAIN_TIMEOUT_MAX,
        _DRAIN_TIMEOUT_INVALID = -1,
} DrainTimeout;

const char *drain_timeout_to_string(DrainTimeout t);
DrainTimeout drain_timeout_from_string(const char *s);

typedef struct InventoryDrain {
        bool enabled;      /* drain: false turns it off */
        usec_t wait;       /* how long consumers get to leave the old key */
        usec_t settle;     /* LastUsed is read no earlier than this after the distribution */
        DrainTimeout on_timeout;
} InventoryDrain;

/* A reader of a user's key through the credentials socket. */
typedef struct InventoryReader {
        bool group;  /* a group (written "@NAME"), else a user */
        uint32_t id; /* uid or gid, resolved when the inventory is loaded */
} InventoryReader;

typedef struct InventoryTarget {
        TargetType type;
        char *path;    /* absolute, no "." or ".." components */
        char *profile; /* credentials-file: section name, default "default"; else NULL */
        uid_t uid;     /* UID_INVALID = not configured */
        gid_t gid;     /* GID_INVALID = not configured */
        mode_t mode;   /* default 0600; never wider than INVENTORY_TARGET_MODE_MAX */
} InventoryTarget;

typedef struct InventoryUser {
        char *name; /* IAM user name, [A-Za-z0-9+=,.@_-]{1,64} */
        /* Effective values (user, else defaults:, else built-in): */
        usec_t max_age;      /* > 0 */
        usec_t grace;        /* 0 = delete the old key at once */
        usec_t hook_timeout; /* > 0 */
        InventoryDrain drain;
        usec_t credentials_ttl; /* `keyrotctl get` through the daemon: Expiration = now + this */
        InventoryVerify verify;
        /* Further buckets the user's policy may name besides verify.bucket
         * (keyrotctl audit flags any other); NULL-terminated, or NULL. */
        char **buckets;
        InventoryTarget *targets; /* may be empty: `keyrotctl get` still works */
        size_t n_targets;
        char **on_rotate;  /* argv, NULL-terminated, argv[0] absolute; NULL = none */
        char **on_failure; /* likewise */
        /* Who may read this user's key through the credentials socket. */
        InventoryReader *readers;
        size_t n_readers;
} InventoryUser;

typedef struct InventoryDefaults {
        /* Global settings, only here: */
        unsigned max_parallel; /* 1..256 */
        usec_t splay;          /* random delay spread over due rotations; 0 allowed */
        unsigned alert_after;  /* consecutive failures before PRIORITY=2, 1..1000 */
        usec_t audit_every;    /* > 0 */
        /* Inherited by users (already folded into every InventoryUser): */
        usec_t max_age;
        usec_t grace;
        usec_t hook_timeout;
        InventoryDrain drain;
        usec_t credentials_ttl;
        InventoryVerify verify; /* bucket and check_key NULL */
} InventoryDefaults;

typedef struct InventoryAws {
        char *region;       /* never NULL; default "us-east-1" */
        char *endpoint_url; /* http(s)://…, NULL = AWS (AWS_ENDPOINT_URL* still win) */
        char *profile;      /* aws.credentials.profile; NULL = the standard chain */
        char *shared_file;  /* aws.credentials.shared_file; NULL = the standard location */
} InventoryAws;

typedef struct InventoryStore {
        char *path;     /* NULL = the caller's default, <state-dir>/store.sealed */
        char *key_file; /* never NULL (default /etc/keyrotd/store.key); see inventory_store_key_path() */
} InventoryStore;

typedef struct Inventory {
        char *source; /* file name as given to the loader */
        InventoryAws aws;
        InventoryDefaults defaults;
        InventoryStore store;

        InventoryUser *users; /* in file order */
        size_t n_users;
} Inventory;

typedef struct InventoryErrors {
        char **lines; /* "FILE:LINE:COL: message" or "FILE: message", NULL-terminated */
        size_t n;
} InventoryErrors;

/* Free the lines; the struct can be reused. */
void inventory_errors_clear(InventoryErrors *e);
static inline void inventory_errors_clearp(InventoryErrors *e) {
        inventory_errors_clear(e);
}
#define _cleanup_inventory_errors_ _cleanup_(inventory_errors_clearp)

/*
 * inventory_load() - read, check and parse the inventory at @path.
 *
 * Returns 0 and *ret; -EINVAL when the file is refused (insecure, too large,
 * not UTF-8, not valid YAML or not a valid inventory); an I/O -errno when it
 * cannot be opened or read; -ENOMEM. In every case but -ENOMEM, @errors
 * (may be NULL) gets at least one line saying why; problems are appended
 * to whatever @errors already holds. *ret is untouched on failure.
 */
int inventory_load(const char *path, Inventory **ret, InventoryErrors *errors);

/*
 * inventory_load_string() - parse @len bytes of @text (need not be
 * NUL-terminated) as an inventory named @name in messages. Same checks and
 * returns as inventory_load() except the file's owner and mode.
 */
int inventory_load_string(const char *name, const char *text, size_t len,
                          Inventory **ret, InventoryErrors *errors);

Inventory *inventory_free(Inventory *inv);
static inline void inventory_freep(Inventory **inv) {
        inventory_free(*inv);
}
#define _cleanup_inventory_ _cleanup_(inventory_freep)

/* The user called @name, or NULL. */
const InventoryUser *inventory_find_user(const Inventory *inv, const char *name);

/*
 * inventory_store_key_path() - where the store's master key is read from,
 * resolved now (not at load time, so a reload sees the current service
 * environment): $CREDENTIALS_DIRECTORY/store.key when $CREDENTIALS_DIRECTORY
 * is an absolute path and that file exists (systemd LoadCredential=), else
 * the inventory's store.key_file, else /etc/keyrotd/store.key (@inv may be
 * NULL). Returns 0 and a newly allocated *ret, or -ENOMEM.
 */
int inventory_store_key_path(const Inventory *inv, char **ret);

/* SPDX-License-Identifier: MIT */
/*
 * runtime.h — what keyrotd and keyrotctl open before they can act: the
 * inventory, the state directory's lock, the sealed store and the AWS
 * client stack on one event loop. Each opener reports its failure in
 * rt->error, naming the file or directory, for the program to log (or
 * to report otherwise); exit codes stay the programs' business.
 */
#pragma once

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "aws/client.h"
#include "aws/http.h"
#include "aws/provider.h"
#include "inventory/inventory.h"
#include "store/store.h"

#define KEYROTD_DEFAULT_CONFIG "/etc/keyrotd/inventory.yaml"
#define KEYROTD_DEFAULT_STATE_DIR "/var/lib/keyrotd"
#define KEYROTD_DEFAULT_SOCKET "/run/keyrotd/control.sock"

typedef struct Runtime {
        const char *config_path;
        const char *state_dir;
        Inventory *inv;
        InventoryErrors inv_errors;
        int lock_fd;
        char *store_path;
        char *key_path;
        Store *store;
        sd_event *event;
        HttpClient *http;
        CredentialsProvider *identity;
        AwsClient *aws;
        char *error;
} Runtime;

#define RUNTIME_INIT { .lock_fd = -1 }

int runtime_load_inventory(Runtime *rt);
/* After a failed runtime_load_inventory(): log every FILE:LINE:COL
 * problem, or else why the file could not be read. */
void runtime_print_inventory_errors(const Runtime *rt);
/* flock the state directory's lock file: with wait, block until it is
 * free; without, -EBUSY when another keyrotd holds it. */
int runtime_lock(Runtime *rt, bool wait);
int runtime_open_store(Runtime *rt);
int runtime_open_aws(Runtime *rt);
void runtime_done(Runtime *rt);

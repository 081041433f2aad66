/* SPDX-License-Identifier: MIT */
/*
 * review-cmd.h — keyrotctl audit [--json] [--all-users]: run the
 * review of policy/review.h and print it, as a table or as one JSON document.
 *
 * Read-only: it takes no lock and reads the store as it is on disk (the
 * daemon replaces it atomically, so a running daemon is no obstacle).
 */
#pragma once

#include <stdbool.h>

#include "runtime.h"

/* Exit codes: 0 no finding of severity warning or worse, 1 findings, 2
 * bad configuration or an audit that could not be completed (AWS errors,
 * the store unreadable, a bound exceeded). */
int review_cmd_run(Runtime *rt, bool json, bool all_users);

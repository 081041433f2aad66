/* SPDX-License-Identifier: MIT */
#include "basic/process.h"

#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

void process_harden(void) {
        const struct rlimit no_core = { 0, 0 };

        umask(0077);
        (void) setrlimit(RLIMIT_CORE, &no_core);
        (void) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

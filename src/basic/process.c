/* SPDX-License-Identifier: MIT */
#include "basic/process.h"

#include <errno.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

int process_harden(void) {
        const struct rlimit no_core = { 0, 0 };
        int r = 0;

        umask(0077);
        if (setrlimit(RLIMIT_CORE, &no_core) < 0)
                r = -errno;
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 && r == 0)
                r = -errno;
        return r;
}

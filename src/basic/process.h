/* SPDX-License-Identifier: MIT */
/*
 * process.h — what every keyrotd program does first, before it reads a key.
 */
#pragma once

/**
 * process_harden() - keep the process's secrets in the process.
 *
 * umask 0077: whatever the process creates (store, temporary files,
 * sockets' directories) starts readable by its owner only, even where a
 * later fchmod() would come too late or is forgotten. RLIMIT_CORE 0 and
 * PR_SET_DUMPABLE 0: a crash writes no core file holding key material,
 * and other processes of the same uid cannot ptrace us or read
 * /proc/PID/mem. Every step is tried; a failure is returned (the first
 * one, as a negative errno) for the caller to warn about, but need not
 * stop it: each is a second line of defence (secure memory is excluded
 * from core dumps anyway).
 */
int process_harden(void);

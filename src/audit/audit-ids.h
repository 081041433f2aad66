/* SPDX-License-Identifier: MIT */
/*
 * audit-ids.h — the journald MESSAGE_ID of every audit event.
 *
 * One 128-bit id per AuditEvent, generated once with `systemd-id128 new`
 * and never changed: operators filter on them (journalctl MESSAGE_ID=…)
 * and systemd/keyrotd.catalog explains each one for `journalctl -x`.
 * The macro name is KEYROTD_MESSAGE_ followed by the event's name in
 * capitals (audit_event_to_string()); tests/integration/test_journal.py
 * checks this header, the catalog and the events against each other.
 * A new event gets a new id here and an entry in the catalog.
 */
#pragma once

#define KEYROTD_MESSAGE_ROTATION_STARTED    "b1446a691e734300ba37a3ef0282b3ec"
#define KEYROTD_MESSAGE_STALE_KEY_DELETED   "ab62eb9ff36f4fbfb921233a45ecee8c"
#define KEYROTD_MESSAGE_KEY_CREATED         "32793ef6d66d478e956d4aa30de5ff34"
#define KEYROTD_MESSAGE_KEY_VERIFIED        "724412f63690430482decce5cde57f27"
#define KEYROTD_MESSAGE_VERIFY_FAILED       "f1fbad153f444c4ba8cb88f07d510010"
#define KEYROTD_MESSAGE_NEW_KEY_DELETED     "1077dee35c724e669b688d05d22d9569"
#define KEYROTD_MESSAGE_TARGETS_WRITTEN     "65f297c1037b41fe91856ecd25ba5d20"
#define KEYROTD_MESSAGE_HOOK_RUN            "e57243d1181d429497258f2f7c0eb1b5"
#define KEYROTD_MESSAGE_OLD_KEY_DEACTIVATED "cdd00e90b99a4dae9482cd6bd5cf3812"
#define KEYROTD_MESSAGE_OLD_KEY_DELETED     "311342d86d8647a7a24fa6956c30377e"
#define KEYROTD_MESSAGE_ROTATION_COMPLETED  "83ec5361e5cd4db4a7107745f7a4cbe6"
#define KEYROTD_MESSAGE_ROTATION_FAILED     "068b8fd828984a9f91f4fcf0cf2f15e2"
#define KEYROTD_MESSAGE_RECOVERY            "ec5e208c4cae4423b9ff3fef8d1eedb2"
#define KEYROTD_MESSAGE_ROLLBACK            "a22a677c9a5b44e680fc55b16c994b13"
#define KEYROTD_MESSAGE_KEY_ADOPTED         "0e967644be2e490f81fe13a7acc44ce7"
#define KEYROTD_MESSAGE_USER_CREATED        "cb282efd31d942d2aebdd4d03eb53596"
#define KEYROTD_MESSAGE_USER_TAKEN_OVER     "9c3b48651841471c9fe843e28e8b1584"
#define KEYROTD_MESSAGE_POLICY_PUT          "36ee604473ef49e7a7c3b85f444b2c8e"
#define KEYROTD_MESSAGE_PROVISIONED         "129f3f332e144836ba196853dffe8846"
#define KEYROTD_MESSAGE_DRAIN               "1d2e6cf4c3e84e9ca14d6cf7681aff32"
#define KEYROTD_MESSAGE_AUDIT_FINDING       "87a947a492694ecea8faf136cccddd2e"
#define KEYROTD_MESSAGE_AUDIT_SUMMARY       "dfd341cd75e94d3f854b928a4e8ec137"

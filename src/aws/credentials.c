/* SPDX-License-Identifier: MIT */
/* stub: being written */
typedef int keyrotd_stub_credentials;

/* SPDX-License-Identifier: MIT */
/* Cluster mode's start-up (etcd_setup.c): from the options to a checked
 * store_etcd, with a readable message for every reason it cannot be. */
#ifndef LOCKFS_ETCD_SETUP_H
#define LOCKFS_ETCD_SETUP_H

#include <stddef.h>

#include "options.h"
#include "store.h"

/* Read the first line of the password file path (without its line end)
 * into buf: 0, or -errno with a reason in err (unreadable, empty, a NUL
 * byte, longer than len - 1). Warns when the file is readable by others. */
int etcd_setup_read_password(const char *path, char *buf, size_t len, char *err, size_t errlen);

/* Open the etcd store o describes (host: published as the holders'),
 * after checking that the TLS files can be read, and check etcd: a member
 * that does not answer is only warned about (the daemon serves and creates
 * fail with EIO until etcd answers); a certificate that fails verification
 * or refused credentials or permission end the start. Logs why. 0 or
 * -errno. */
int etcd_setup_open(const struct lockfs_options *o, const char *host, struct store **ret);

#endif

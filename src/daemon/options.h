/* SPDX-License-Identifier: MIT */
/* Command line of the lockfs daemon:
 * `lockfs [-f] [-d] [-o opt,...] [SOURCE] MOUNTPOINT`.
 * Parsed without FUSE so it can be unit-tested. */
#ifndef LOCKFS_OPTIONS_H
#define LOCKFS_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lock_limits.h"

#define LOCKFS_DEFAULT_TTL_S 3600
#define LOCKFS_DEFAULT_MAX_LOCKS 1000000
#define LOCKFS_DEFAULT_MAX_CONTENT 65536
#define LOCKFS_DEFAULT_MAX_DEPTH 32
#define LOCKFS_DEFAULT_MAX_NAMES 64
/* Without -o max_locks_per_uid: a quarter of max_locks (of the default
 * max_locks when that is unlimited), so no single uid fills the table. */
#define LOCKFS_PER_UID_SHARE 4
#define LOCKFS_DEFAULT_MAX_CONTENT_PER_UID (16u << 20)
#define LOCKFS_PATH_MAX 4096
#define LOCKFS_DEFAULT_PREFIX "/lockfs/"
#define LOCKFS_DEFAULT_LEASE_TTL_S 10
/* Names read back as the bytes their holder wrote, not as the JSON status
 * (SPEC R4.4a): pid files, whose readers all expect a number. */
#define LOCKFS_DEFAULT_RAW "*.pid"
#define LOCKFS_DEFAULT_DIRLOCKS "*.lock"

struct lockfs_options {
        const char *mountpoint;   /* points into argv */
        const char *source;       /* ignored first word of "SOURCE MOUNTPOINT", or NULL */
        bool foreground;          /* -f (also implied by -d) */
        bool debug;               /* -d or -o debug */
        bool allow_other;         /* -o allow_other */
        bool show_help;           /* -h, --help */
        bool show_version;        /* -V, --version */
        uint32_t ttl_s;           /* -o ttl=, 0 = none: detached locks' TTL */
        uint32_t holder_ttl_s;    /* -o holder_ttl=, 0 = never: live holders' TTL */
        uint64_t max_locks;       /* -o max_locks=, 0 = unlimited */
        uint64_t max_locks_per_uid; /* -o max_locks_per_uid=, 0 = unlimited; locks,
                                     * names and directories of one uid but root */
        bool max_locks_per_uid_given;
        uint64_t max_content_per_uid; /* -o max_content_per_uid=, 0 = unlimited */
        bool user_break;          /* -o user_break */
        size_t max_content;       /* -o max_content=, 1 .. 16 MiB */
        unsigned max_depth;       /* -o max_depth=, 0 = unlimited */
        uint32_t max_names;       /* -o max_names=, names one lock may have (link),
                                   * 1 .. LOCKFS_MAX_NAMES_LIMIT */
        uint64_t status_mem_per_uid; /* -o status_mem_per_uid=, 0 = the default */
        uint64_t status_mem_total;   /* -o status_mem_total=, 0 = the default */
        char state_dir[LOCKFS_PATH_MAX];  /* -o state_dir=, "" = the default */
        char fence_file[LOCKFS_PATH_MAX]; /* -o fence_file=, "" = the default */
        char raw[LOCKFS_PATH_MAX];        /* -o raw=GLOB[:GLOB...], "" = none
                                           * (globs.h; default LOCKFS_DEFAULT_RAW) */
        char dirlocks[LOCKFS_PATH_MAX];   /* -o dirlocks=GLOB[:GLOB...], "" = none
                                           * (default LOCKFS_DEFAULT_DIRLOCKS) */
        /* cluster mode: -o backend=etcd,endpoints=URL[,URL...],prefix=,lease_ttl= */
        bool backend_etcd;
        char endpoints[LOCKFS_PATH_MAX];  /* comma-separated URLs */
        char prefix[LOCKFS_PATH_MAX];     /* starts and ends with '/' */
        uint32_t lease_ttl_s;
        /* securing etcd: -o cacert=,cert=,key= (TLS, PEM files) and
         * -o etcd_user=,etcd_password_file= (the password is only ever
         * read from that file) */
        char cacert[LOCKFS_PATH_MAX];
        char cert[LOCKFS_PATH_MAX];
        char key[LOCKFS_PATH_MAX];
        char etcd_user[256];
        char etcd_password_file[LOCKFS_PATH_MAX];
};

/* Parse argv into *ret (defaults first). Returns 0, or -EINVAL with a
 * one-line reason in err. --help/--version set their flag and return 0
 * without requiring a mount point. */
int options_parse(int argc, char **argv, struct lockfs_options *ret, char *err, size_t errlen);

/* Print the usage text (options and defaults) to f. */
void options_usage(FILE *f, const char *prog);

#endif

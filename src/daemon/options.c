/* SPDX-License-Identifier: MIT */
/* Parse the daemon's command line and -o option lists. */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "globs.h"
#include "options.h"
#include "paths.h"

static int parse_u64(const char *s, uint64_t max, uint64_t *ret) {
        if (!s || !*s || *s == '-' || *s == '+')
                return -EINVAL;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || *end || v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

/* Generic mount(8) and fstab words, accepted so that lockfs mounts from
 * /etc/fstab as type fuse.lockfs; they change nothing (a lock directory is
 * always nosuid, nodev, noexec). */
static const char *const ignored_options[] = {
        "rw", "defaults", "auto", "noauto", "user", "nouser", "users", "_netdev", "nofail",
        "dev", "nodev", "suid", "nosuid", "exec", "noexec", "atime", "noatime", "relatime",
        "strictatime", "diratime", "nodiratime", "async", "lazytime", "nolazytime",
};

static bool option_ignored(const char *item, size_t klen, const char *val) {
        if (strncmp(item, "x-", 2) == 0 || (klen == 7 && strncmp(item, "comment", 7) == 0))
                return true; /* x-systemd.*, x-gvfs-*, comment=: for other tools */
        if (val)
                return false;
        for (size_t i = 0; i < sizeof(ignored_options) / sizeof(*ignored_options); i++)
                if (strcmp(item, ignored_options[i]) == 0)
                        return true;
        return false;
}

/* How a -o key takes its value: a flag has none (with one it is unknown),
 * the others may be given one (without, it is a bad value). */
enum option_value { VALUE_NONE, VALUE_TAKEN };

/* One -o key: its parser stores the value at offset (size bytes) in
 * struct lockfs_options, within [min, max] for numbers and under max bytes
 * for strings. A key with a refusal is never accepted: the refusal is the
 * error message. */
struct option_key {
        const char *name;
        enum option_value value;
        int (*parse)(const struct option_key *k, const char *val, struct lockfs_options *o);
        size_t offset, size;
        uint64_t min, max;
        const char *refusal;
};

/* The field of o a key stores into. */
static void *field_of(const struct option_key *k, struct lockfs_options *o) {
        return (char *)o + k->offset;
}

/* A flag: the bool is set. */
static int parse_flag(const struct option_key *k, const char *val, struct lockfs_options *o) {
        (void)val; /* VALUE_NONE: always NULL */
        *(bool *)field_of(k, o) = true;
        return 0;
}

/* A decimal number in [k->min, k->max] (k->max fits the field), into an
 * unsigned field of 4 or 8 bytes. 0 or -EINVAL. */
static int parse_number(const struct option_key *k, const char *val, struct lockfs_options *o) {
        uint64_t v;
        if (parse_u64(val, k->max, &v) < 0 || v < k->min)
                return -EINVAL;
        uint32_t v32 = (uint32_t)v;
        switch (k->size) {
        case sizeof(uint32_t):
                memcpy(field_of(k, o), &v32, sizeof(v32));
                return 0;
        case sizeof(uint64_t):
                memcpy(field_of(k, o), &v, sizeof(v));
                return 0;
        default:
                return -EINVAL; /* no such field in the table */
        }
}

/* max_locks_per_uid: a number, and the default share no longer applies. */
static int parse_per_uid_locks(const struct option_key *k, const char *val,
                               struct lockfs_options *o) {
        int r = parse_number(k, val, o);
        if (r == 0)
                o->max_locks_per_uid_given = true;
        return r;
}

/* A non-empty string shorter than the field (k->size bytes). 0 or -EINVAL. */
static int parse_string(const struct option_key *k, const char *val, struct lockfs_options *o) {
        if (!val || !*val || strlen(val) >= k->size)
                return -EINVAL;
        strcpy(field_of(k, o), val);
        return 0;
}

/* Globs separated by ':' (globs.h), shorter than the field; "" = none.
 * 0 or -EINVAL. */
static int parse_globs(const struct option_key *k, const char *val, struct lockfs_options *o) {
        if (!val || strlen(val) >= k->size || globs_check(val) < 0)
                return -EINVAL;
        strcpy(field_of(k, o), val);
        return 0;
}

/* backend=etcd or backend=local. 0 or -EINVAL. */
static int parse_backend(const struct option_key *k, const char *val, struct lockfs_options *o) {
        (void)k;
        if (!val || (strcmp(val, "etcd") && strcmp(val, "local")))
                return -EINVAL;
        o->backend_etcd = !strcmp(val, "etcd");
        return 0;
}

#define FIELD(f) offsetof(struct lockfs_options, f), sizeof(((struct lockfs_options *)0)->f)
#define FLAG(name, f) { name, VALUE_NONE, parse_flag, FIELD(f), 0, 0, NULL }
#define NUMBER(name, f, min, max) { name, VALUE_TAKEN, parse_number, FIELD(f), min, max, NULL }
#define STRING(name, f) { name, VALUE_TAKEN, parse_string, FIELD(f), 0, 0, NULL }
#define REFUSED(name, value, why) { name, value, NULL, 0, 0, 0, 0, why }

static const struct option_key option_keys[] = {
        FLAG("allow_other", allow_other),
        FLAG("debug", debug),
        NUMBER("ttl", ttl_s, 0, UINT32_MAX),
        NUMBER("holder_ttl", holder_ttl_s, 0, UINT32_MAX),
        NUMBER("max_locks", max_locks, 0, UINT64_MAX),
        { "max_locks_per_uid", VALUE_TAKEN, parse_per_uid_locks, FIELD(max_locks_per_uid), 0,
          UINT64_MAX, NULL },
        NUMBER("max_content_per_uid", max_content_per_uid, 0, UINT64_MAX),
        FLAG("user_break", user_break),
        NUMBER("max_content", max_content, 1, LOCKFS_MAX_CONTENT_LIMIT),
        NUMBER("max_names", max_names, 1, LOCKFS_MAX_NAMES_LIMIT),
        NUMBER("status_mem_per_uid", status_mem_per_uid, 0, SIZE_MAX),
        NUMBER("status_mem_total", status_mem_total, 0, SIZE_MAX),
        NUMBER("max_depth", max_depth, 0, 4096),
        STRING("state_dir", state_dir),
        STRING("fence_file", fence_file),
        { "raw", VALUE_TAKEN, parse_globs, FIELD(raw), 0, 0, NULL },
        { "dirlocks", VALUE_TAKEN, parse_globs, FIELD(dirlocks), 0, 0, NULL },
        { "backend", VALUE_TAKEN, parse_backend, 0, 0, 0, 0, NULL },
        STRING("endpoints", endpoints),
        STRING("prefix", prefix),
        STRING("cacert", cacert),
        STRING("cert", cert),
        STRING("key", key),
        STRING("etcd_password_file", etcd_password_file),
        STRING("etcd_user", etcd_user),
        REFUSED("etcd_password", VALUE_TAKEN,
                "no password on the command line (anyone can read it): "
                "put it in a file only root can read and give etcd_password_file=FILE"),
        NUMBER("lease_ttl", lease_ttl_s, 2, 3600),
        REFUSED("ro", VALUE_NONE, "a lock directory cannot be mounted read-only ('ro')"),
};

#undef REFUSED
#undef STRING
#undef NUMBER
#undef FLAG
#undef FIELD

/* The key named by the klen bytes of item, given a value or not; NULL when
 * there is none. */
static const struct option_key *option_key_find(const char *item, size_t klen, bool has_value) {
        for (size_t i = 0; i < sizeof(option_keys) / sizeof(*option_keys); i++) {
                const struct option_key *k = &option_keys[i];
                if (strlen(k->name) == klen && strncmp(item, k->name, klen) == 0 &&
                    (k->value == VALUE_TAKEN || !has_value))
                        return k;
        }
        return NULL;
}

/* Apply one "key" or "key=value" item of a -o list. Returns 0, or -EINVAL
 * with the reason in err. */
static int apply_option(struct lockfs_options *o, const char *item, char *err, size_t errlen) {
        const char *eq = strchr(item, '=');
        size_t klen = eq ? (size_t)(eq - item) : strlen(item);
        const char *val = eq ? eq + 1 : NULL;
        const struct option_key *k = option_key_find(item, klen, val != NULL);
        if (!k && option_ignored(item, klen, val))
                return 0;
        if (!k) {
                snprintf(err, errlen, "unknown option '%s'", item);
                return -EINVAL;
        }
        if (k->refusal) {
                snprintf(err, errlen, "%s", k->refusal);
                return -EINVAL;
        }
        if (k->parse(k, val, o) < 0) {
                snprintf(err, errlen, "bad value in option '%s'", item);
                return -EINVAL;
        }
        return 0;
}

static int apply_option_list(struct lockfs_options *o, const char *list, char *err, size_t errlen) {
        char *copy = strdup(list);
        if (!copy) {
                snprintf(err, errlen, "out of memory");
                return -ENOMEM;
        }
        int r = 0;
        char *save = NULL;
        bool after_endpoints = false;
        for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
                bool url = !strncmp(item, "http://", 7) || !strncmp(item, "https://", 8);
                if (after_endpoints && url) { /* endpoints=URL,URL: the list goes on */
                        size_t len = strlen(o->endpoints);
                        if (len + 1 + strlen(item) >= sizeof(o->endpoints)) {
                                snprintf(err, errlen, "option 'endpoints' is too long");
                                r = -EINVAL;
                                break;
                        }
                        o->endpoints[len] = ',';
                        strcpy(o->endpoints + len + 1, item);
                        continue;
                }
                r = apply_option(o, item, err, errlen);
                if (r < 0)
                        break;
                after_endpoints = !strncmp(item, "endpoints=", 10);
        }
        free(copy);
        return r;
}

/* The per-uid limits: the default share of max_locks, and limits that
 * make sense beside the global ones. */
static int quota_check(struct lockfs_options *o, char *err, size_t errlen) {
        if (!o->max_locks_per_uid_given) {
                uint64_t all = o->max_locks ? o->max_locks : LOCKFS_DEFAULT_MAX_LOCKS;
                o->max_locks_per_uid = all / LOCKFS_PER_UID_SHARE ? all / LOCKFS_PER_UID_SHARE : 1;
        }
        if (o->max_locks && o->max_locks_per_uid > o->max_locks) {
                snprintf(err, errlen,
                         "max_locks_per_uid=%" PRIu64 " is above max_locks=%" PRIu64
                         ": one user could fill the table",
                         o->max_locks_per_uid, o->max_locks);
                return -EINVAL;
        }
        if (o->max_content_per_uid && o->max_content_per_uid < o->max_content) {
                snprintf(err, errlen,
                         "max_content_per_uid=%" PRIu64 " is below max_content=%zu"
                         ": no user could fill one lock",
                         o->max_content_per_uid, o->max_content);
                return -EINVAL;
        }
        return 0;
}

/* The cluster options make sense together, and only together. */
static int cluster_check(const struct lockfs_options *o, char *err, size_t errlen) {
        size_t plen = strlen(o->prefix);
        if (!o->backend_etcd && o->endpoints[0]) {
                snprintf(err, errlen, "option 'endpoints' needs backend=etcd");
                return -EINVAL;
        }
        const char *etcd_only = o->cacert[0] ? "cacert" : o->cert[0] ? "cert"
                                : o->key[0] ? "key" : o->etcd_user[0] ? "etcd_user"
                                : o->etcd_password_file[0] ? "etcd_password_file" : NULL;
        if (!o->backend_etcd && etcd_only) {
                snprintf(err, errlen, "option '%s' needs backend=etcd", etcd_only);
                return -EINVAL;
        }
        if (!o->backend_etcd)
                return 0;
        if (!o->cert[0] != !o->key[0]) {
                snprintf(err, errlen, "options 'cert' and 'key' go together (a client "
                         "certificate and its private key)");
                return -EINVAL;
        }
        if (!o->etcd_user[0] != !o->etcd_password_file[0]) {
                snprintf(err, errlen, "options 'etcd_user' and 'etcd_password_file' go together");
                return -EINVAL;
        }
        if (!LOCKFS_HAVE_ETCD) {
                snprintf(err, errlen, "this lockfs was built without etcd support (libcurl)");
                return -EINVAL;
        }
        if (!o->endpoints[0]) {
                snprintf(err, errlen, "backend=etcd needs endpoints=URL[,URL...]");
                return -EINVAL;
        }
        if (o->prefix[0] != '/' || o->prefix[plen - 1] != '/' || plen < 2) {
                snprintf(err, errlen, "prefix must start and end with '/' (as in /lockfs/NAME/)");
                return -EINVAL;
        }
        return 0;
}

int options_parse(int argc, char **argv, struct lockfs_options *o, char *err, size_t errlen) {
        *o = (struct lockfs_options){
                .ttl_s = LOCKFS_DEFAULT_TTL_S,
                .max_locks = LOCKFS_DEFAULT_MAX_LOCKS,
                .max_content = LOCKFS_DEFAULT_MAX_CONTENT,
                .max_depth = LOCKFS_DEFAULT_MAX_DEPTH,
                .max_names = LOCKFS_DEFAULT_MAX_NAMES,
                .max_content_per_uid = LOCKFS_DEFAULT_MAX_CONTENT_PER_UID,
                .prefix = LOCKFS_DEFAULT_PREFIX,
                .lease_ttl_s = LOCKFS_DEFAULT_LEASE_TTL_S,
                .raw = LOCKFS_DEFAULT_RAW,
                .dirlocks = LOCKFS_DEFAULT_DIRLOCKS,
        };
        err[0] = '\0';
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];
                int r = 0;
                if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
                        o->show_help = true;
                } else if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
                        o->show_version = true;
                } else if (!strcmp(a, "-f")) {
                        o->foreground = true;
                } else if (!strcmp(a, "-d")) {
                        o->debug = o->foreground = true;
                } else if (!strcmp(a, "-o")) {
                        if (++i >= argc) {
                                snprintf(err, errlen, "-o needs an option list");
                                return -EINVAL;
                        }
                        r = apply_option_list(o, argv[i], err, errlen);
                } else if (!strncmp(a, "-o", 2)) {
                        r = apply_option_list(o, a + 2, err, errlen);
                } else if (a[0] == '-') {
                        snprintf(err, errlen, "unknown argument '%s'", a);
                        return -EINVAL;
                } else if (o->source) {
                        snprintf(err, errlen, "too many arguments ('%s')", a);
                        return -EINVAL;
                } else {
                        /* mount(8) calls "lockfs SOURCE MOUNTPOINT -o ...":
                         * with two words, the first is the (ignored) source. */
                        o->source = o->mountpoint;
                        o->mountpoint = a;
                }
                if (r < 0)
                        return r;
        }
        if (!o->mountpoint && !o->show_help && !o->show_version) {
                snprintf(err, errlen, "no mount point given");
                return -EINVAL;
        }
        int r = quota_check(o, err, errlen);
        return r < 0 ? r : cluster_check(o, err, errlen);
}

void options_usage(FILE *f, const char *prog) {
        fprintf(f,
                "usage: %s [-f] [-d] [-o opt,[opt...]] [SOURCE] MOUNTPOINT\n"
                "\n"
                "Serve a lock directory: every regular file in it is a lock.\n"
                "\n"
                "  -f                   stay in the foreground, log to stderr\n"
                "  -d                   debug log in the foreground (-f -o debug)\n"
                "  -h, --help           this text\n"
                "  -V, --version        print the version\n"
                "\n"
                "options (-o):\n"
                "  debug                log every acquisition and release (to syslog\n"
                "                       unless -f)\n"
                "  ttl=SECONDS          TTL of detached locks (content 0, or a caller\n"
                "                       whose pid is not visible), whose liveness nobody\n"
                "                       knows; 0 = none (default %d)\n"
                "  holder_ttl=SECONDS   TTL of locks whose holder process is alive and\n"
                "                       watched; 0 = never (default): such a lock ends\n"
                "                       with its holder, or at the holder's own \"ttl_s\"\n"
                "  max_locks=N          locks, names and directories of all users, 0 = no\n"
                "                       limit (default %d); past it, ENOSPC\n"
                "  max_locks_per_uid=N  locks, names (link) and directories one uid (not\n"
                "                       root) may have, 0 = no limit (default max_locks/%d);\n"
                "                       past it, creates, link and mkdir fail with EDQUOT\n"
                "  max_content=BYTES    content a holder may write (default %d)\n"
                "  max_content_per_uid=BYTES  content of all locks of one uid (not root),\n"
                "                       0 = no limit (default %u); past it, writes fail\n"
                "                       with EDQUOT\n"
                "  max_depth=N          path components, 0 = no limit (default %d)\n"
                "  max_names=N          names one lock may have, its own and link(2)'s,\n"
                "                       1 to %d (default %d); past it, link fails with EMLINK\n"
                "  status_mem_per_uid=BYTES  status text (lock files, .lockfs/locks.json)\n"
                "                       that one uid's open files may hold rendered; past\n"
                "                       it, opens and reads fail with ENOMEM (default\n"
                "                       32 MiB, at least twice one lock's largest status)\n"
                "  status_mem_total=BYTES  the same for all uids but root (default 256 MiB,\n"
                "                       at least 8 times status_mem_per_uid)\n"
                "  raw=GLOB[:GLOB...]   locks whose name matches a glob (fnmatch(3), on the\n"
                "                       last component) read back the bytes their holder\n"
                "                       wrote, as pid files must; their status is in\n"
                "                       .lockfs/locks.json and lockctl show (default\n"
                "                       " LOCKFS_DEFAULT_RAW "; raw= for none: every lock reads as JSON)\n"
                "  dirlocks=GLOB[:GLOB...]  directories whose name matches a glob are locks,\n"
                "                       taken by mkdir, held by its process, released by\n"
                "                       rmdir or its death, for mkdir-based tools (default\n"
                "                       " LOCKFS_DEFAULT_DIRLOCKS "; dirlocks= for none: plain directories)\n"
                "  allow_other          let users other than root use the mount\n"
                "  user_break           the uid a lock belongs to may break it (lockctl\n"
                "                       break), as root may; logged\n"
                "  state_dir=DIR        the journal of held locks (default\n"
                "                       " LOCKFS_STATE_ROOT "/MOUNT-ID, MOUNT-ID as systemd-escape --path)\n"
                "  fence_file=FILE      fence reservations, on persistent disk (default\n"
                "                       " LOCKFS_FENCE_ROOT "/MOUNT-ID.fence)\n"
                "  backend=etcd         cluster mode: share the lock directory with every\n"
                "                       lockfs on the same etcd prefix (default: local)\n"
                "  endpoints=URL[,URL]  etcd client URLs (http://127.0.0.1:2379)\n"
                "  prefix=/P/           etcd key prefix (default " LOCKFS_DEFAULT_PREFIX ")\n"
                "  lease_ttl=SECONDS    this daemon's etcd lease: its locks vanish that\n"
                "                       long after it dies (default %d, at least 2)\n"
                "  cacert=FILE          PEM CA certificates that sign etcd's (https://);\n"
                "                       the server's certificate and name are verified\n"
                "  cert=FILE,key=FILE   PEM client certificate and key for etcd\n"
                "  etcd_user=NAME       authenticate to etcd as NAME, with the password\n"
                "  etcd_password_file=FILE  in FILE (first line; keep it mode 0600)\n"
                "\n"
                "SOURCE (any word) and generic mount options such as rw, nosuid, nodev,\n"
                "noatime, _netdev, nofail, noauto or x-systemd.* are accepted and\n"
                "ignored, so /etc/fstab can mount it:  lockfs /run/locks fuse.lockfs ttl=600 0 0\n",
                prog, LOCKFS_DEFAULT_TTL_S, LOCKFS_DEFAULT_MAX_LOCKS, LOCKFS_PER_UID_SHARE,
                LOCKFS_DEFAULT_MAX_CONTENT, LOCKFS_DEFAULT_MAX_CONTENT_PER_UID,
                LOCKFS_DEFAULT_MAX_DEPTH, LOCKFS_MAX_NAMES_LIMIT, LOCKFS_DEFAULT_MAX_NAMES,
                LOCKFS_DEFAULT_LEASE_TTL_S);
}

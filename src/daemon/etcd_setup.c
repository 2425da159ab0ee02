/* SPDX-License-Identifier: MIT */
/* From the cluster options to a checked etcd store (etcd_setup.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "etcd_setup.h"
#include "log.h"
#include "store_etcd.h"

#define PASSWORD_MAX 1024

int etcd_setup_read_password(const char *path, char *buf, size_t len, char *err, size_t errlen) {
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0) {
                int r = -errno;
                snprintf(err, errlen, "cannot read etcd_password_file=%s: %s", path, strerror(-r));
                if (fd >= 0)
                        close(fd);
                return r;
        }
        if (!S_ISREG(st.st_mode)) {
                close(fd);
                snprintf(err, errlen, "etcd_password_file=%s is not a regular file", path);
                return -EINVAL;
        }
        if (st.st_mode & 077)
                log_msg(LOG_WARNING, "etcd_password_file=%s can be read by others than its "
                        "owner (chmod 600 it)", path);
        size_t n = 0;
        ssize_t got = 0;
        while (n < len && (got = read(fd, buf + n, len - n)) > 0)
                n += (size_t)got;
        int rerr = got < 0 ? errno : 0;
        close(fd);
        if (rerr) {
                explicit_bzero(buf, len);
                snprintf(err, errlen, "cannot read etcd_password_file=%s: %s", path, strerror(rerr));
                return -rerr;
        }
        char *nl = memchr(buf, '\n', n);
        size_t pw = nl ? (size_t)(nl - buf) : n;
        if (pw && buf[pw - 1] == '\r')
                pw--;
        int r = -EINVAL;
        if (pw >= len)
                snprintf(err, errlen, "etcd_password_file=%s: the password is longer than %zu "
                         "bytes", path, len - 1);
        else if (pw == 0)
                snprintf(err, errlen, "etcd_password_file=%s: the first line is empty", path);
        else if (memchr(buf, '\0', pw))
                snprintf(err, errlen, "etcd_password_file=%s: the password holds a NUL byte", path);
        else
                r = 0;
        if (r < 0) {
                explicit_bzero(buf, len);
                return r;
        }
        explicit_bzero(buf + pw, len - pw); /* also ends the string */
        return 0;
}

/* Can the daemon read the file of option name? (TLS files are opened by
 * libcurl at the first call; an unreadable one must stop the start.) */
static int readable(const char *name, const char *path) {
        if (!path[0])
                return 0;
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                int r = -errno;
                log_msg(LOG_ERR, "cannot read %s=%s: %s", name, path, strerror(-r));
                return r;
        }
        close(fd);
        return 0;
}

static const char *explain(int r) {
        switch (r) {
        case -EPROTO:
                return "the server's certificate does not verify against cacert= (or names "
                       "another host)";
        case -EKEYREJECTED:
                return "etcd refused this client's certificate (cert=, key=: one signed by a CA "
                       "etcd trusts)";
        case -EACCES:
                return "etcd refused the credentials or the permission on the prefix (see "
                       "etcd_user=, etcd_password_file=, cert=; the role needs readwrite on "
                       "the prefix)";
        default:
                return strerror(-r);
        }
}

int etcd_setup_open(const struct lockfs_options *o, const char *host, struct store **ret) {
        int r;
        if ((r = readable("cacert", o->cacert)) < 0 || (r = readable("cert", o->cert)) < 0 ||
            (r = readable("key", o->key)) < 0)
                return r;
        char password[PASSWORD_MAX + 1], err[LOCKFS_PATH_MAX + 128] = "";
        if (o->etcd_user[0] &&
            (r = etcd_setup_read_password(o->etcd_password_file, password, sizeof(password), err,
                                          sizeof(err))) < 0) {
                log_msg(LOG_ERR, "%s", err);
                return r;
        }
        const struct store_etcd_config cfg = {
                .endpoints = o->endpoints, .prefix = o->prefix,
                .lease_ttl_s = o->lease_ttl_s, .host = host,
                .cacert = o->cacert[0] ? o->cacert : NULL,
                .cert = o->cert[0] ? o->cert : NULL,
                .key = o->key[0] ? o->key : NULL,
                .user = o->etcd_user[0] ? o->etcd_user : NULL,
                .password = o->etcd_user[0] ? password : NULL,
        };
        r = store_etcd_open(&cfg, ret);
        explicit_bzero(password, sizeof(password));
        if (r < 0) {
                log_msg(LOG_ERR, "cannot use etcd at %s: %s", o->endpoints, strerror(-r));
                return r;
        }
        char why[512];
        r = store_etcd_check(*ret, why, sizeof(why));
        if (r == 0) {
                log_msg(LOG_NOTICE, "etcd at %s answers%s; read and write on %s allowed",
                        o->endpoints, o->etcd_user[0] ? " (authenticated)" : "", o->prefix);
        } else if (r == -ENOTCONN) {
                log_msg(LOG_WARNING, "etcd at %s does not answer yet (%s)", o->endpoints, why);
        } else {
                log_msg(LOG_ERR, "cannot use etcd at %s: %s: %s", o->endpoints, explain(r), why);
                store_free(*ret);
                *ret = NULL;
                return r;
        }
        return 0;
}

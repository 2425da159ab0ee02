/* SPDX-License-Identifier: MIT */
/* lockctl: list, inspect, take and break the locks of a lockfs mount.
 *
 *   lockctl ls [--json] [DIR]
 *   lockctl show [--json] FILE
 *   lockctl run [-n | -w SECS] [-E CODE] FILE -- CMD [ARG...]
 *   lockctl break FILE
 *
 * Exit statuses follow sysexits(3) as flock(1) does; see lockctl(1). */
#include <errno.h>
#include <locale.h>
#include <unistd.h>
#include <string.h>

#include "lockctl.h"

static const struct {
        const char *name;
        int (*fn)(int argc, char **argv);
} commands[] = {
        {"ls", lc_cmd_ls},
        {"show", lc_cmd_show},
        {"run", lc_cmd_run},
        {"break", lc_cmd_break},
};

/* Flush stdout; a write error (other than a closed pipe) fails the run. */
static int finish(int r) {
        if (fflush(stdout) != 0 || ferror(stdout)) {
                if (errno != EPIPE)
                        lc_err("write error: %s", strerror(errno));
                return r ? r : EX_IOERR;
        }
        return r;
}

int main(int argc, char **argv) {
        const char *cmd;

        setlocale(LC_CTYPE, ""); /* which bytes the terminal shows as characters */
        if (argc < 2) {
                lc_err("no command given");
                return lc_usage_error();
        }
        cmd = argv[1];
        if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
                lc_usage(stdout);
                return finish(0);
        }
        if (strcmp(cmd, "-V") == 0 || strcmp(cmd, "--version") == 0) {
                puts("lockctl " LOCKFS_VERSION);
                return finish(0);
        }
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                if (strcmp(cmd, commands[i].name) == 0)
                        return finish(commands[i].fn(argc - 1, argv + 1));
        if (cmd[0] == '-') {
                _cleanup_free_ char *e = lc_esc(cmd);
                lc_err("unknown option '%s'", e);
        } else {
                _cleanup_free_ char *e = lc_esc(cmd);
                lc_err("unknown command '%s'", e);
        }
        return lc_usage_error();
}

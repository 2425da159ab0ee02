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

void lc_usage(FILE *f) {
        fputs("Usage:\n"
              " lockctl ls [--json] [--noheadings] [DIR]\n"
              " lockctl show [--json] FILE\n"
              " lockctl run [-n | -w SECS] [-E CODE] FILE [--] CMD [ARG...]\n"
              " lockctl break FILE\n"
              "\n"
              "List, inspect, take and break the locks of a lockfs mount.\n"
              "\n"
              "Commands:\n"
              " ls        list the locks held under DIR (default: the current directory)\n"
              " show      print the status of the lock FILE\n"
              " run       take FILE with flock(2), run CMD, release FILE\n"
              " break     release FILE held by another process (root, or with -o\n"
              "           user_break the lock's uid), only as the status read shows it\n"
              "\n"
              "Options:\n"
              " -J, --json                     print JSON (ls, show)\n"
              " -n, --noheadings               no header line (ls)\n"
              " -n, --nonblock                 fail at once if FILE is held (run)\n"
              " -w, --timeout SECS             wait at most SECS for FILE (run)\n"
              " -E, --conflict-exit-code CODE  exit status when busy (run; default 1)\n"
              " -h, --help                     print this help\n"
              " -V, --version                  print the version\n"
              "\n"
              "Exit status: that of CMD for run (128+N if signal N killed it); 1 when\n"
              "FILE is busy or not held; 64 usage; 65 not a lockfs lock; 66 cannot open\n"
              "FILE or no lockfs mount; 69 cannot run CMD; 71 system error; 75 FILE\n"
              "changed hands before the break (nothing broken); 76 the daemon cannot\n"
              "break by fence (nothing broken); 77 not allowed to break FILE. See\n"
              "lockctl(1).\n",
              f);
}

int lc_usage_error(void) {
        lc_usage(stderr);
        return EX_USAGE;
}

int lc_bad_option(int c, char **argv) {
        if (c == ':')
                lc_err("option '%s' needs a value", argv[optind - 1]);
        else if (optopt && optopt != '?')
                lc_err("unknown option '-%c'", optopt);
        else
                lc_err("unknown option '%s'", argv[optind - 1]);
        return lc_usage_error();
}

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

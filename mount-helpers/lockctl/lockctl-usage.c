/* SPDX-License-Identifier: MIT */
/* lockctl's usage text and its usage errors (exit status EX_USAGE), shared
 * by the command dispatcher and every command's option parser. */
#include <getopt.h>
#include <stdio.h>

#include "lockctl.h"

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

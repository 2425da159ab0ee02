#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The whole test suite, as CI runs it: install packages, build, run the unit
# and integration tests; rebuild with ASan+UBSan and run them all again
# (sanitized daemon and unit tests); run integration tests with the daemon
# under valgrind (a leak or memory error fails them); run the libFuzzer
# harnesses briefly.
# Ends with one line "tests: N passed, M failed"; exits non-zero on failure.
set -uo pipefail
cd "$(dirname "$0")/.."
mount-helpers/install-deps.sh || { echo "package installation failed" >&2; exit 1; }

passed=0
failed=0
status=0

# Count results of the last `meson test` run in build dir $1.
count_results() {
        local log="$1/meson-logs/testlog.json" p f
        [ -f "$log" ] || return
        p=$(grep -c '"result": "OK"' "$log")
        f=$(grep -vc '"result": "\(OK\|SKIP\)"' "$log")
        passed=$((passed + p))
        failed=$((failed + f))
}

# setup DIR [meson options...]: configure (or reconfigure) and build.
setup() {
        local dir=$1
        shift
        if [ -d "$dir" ]; then
                meson setup --reconfigure "$dir" "$@" >/dev/null || return 1
        else
                meson setup "$dir" "$@" >/dev/null || return 1
        fi
        ninja -C "$dir" >/dev/null || { ninja -C "$dir"; return 1; }
}

# run_tests DIR [meson test args...]
run_tests() {
        local dir=$1
        shift
        rm -f "$dir/meson-logs/testlog.json"
        meson test -C "$dir" --print-errorlogs "$@" || status=1
        count_results "$dir"
}

echo "== build and test (debugoptimized)"
if setup build-test; then
        run_tests build-test
else
        echo "build failed"; failed=$((failed + 1)); status=1
fi

echo "== ASan + UBSan"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=86
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:exitcode=87
if setup build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug; then
        run_tests build-asan
else
        echo "ASan build failed"; failed=$((failed + 1)); status=1
fi
unset ASAN_OPTIONS UBSAN_OPTIONS

echo "== daemon under valgrind (leaks fail)"
# --vgdb=no: no gdbserver FIFOs (/tmp/vgdb-pipe-*) left by daemons the
# tests SIGKILL
export LOCKFS_WRAPPER="valgrind -q --vgdb=no --suppressions=$PWD/tests/valgrind.supp --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect --error-exitcode=99"
if [ -d build-test ]; then
        run_tests build-test take status namespace release holder flock posix shared restart etcd ttl_break
fi
unset LOCKFS_WRAPPER

echo "== fuzz (libFuzzer: holder content and the journal reader, brief)"
if tests/fuzz/run.sh "${FUZZ_RUNS:-200000}"; then
        passed=$((passed + 1))
else
        failed=$((failed + 1)); status=1
fi

echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ] || status=1
exit $status

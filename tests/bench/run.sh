#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Run the lockfs benchmarks side by side in one run and print the figures:
# uncontended cycles on lockfs vs tmpfs, and release visibility after
# SIGKILL. Not a test: it asserts nothing. Needs a build in build/.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x build/tests/lockbench ] || { echo "build first: meson setup build && ninja -C build" >&2; exit 1; }
work=$(mktemp -d)
mkdir "$work/lockfs" "$work/tmpfs"
mount -t tmpfs tmpfs "$work/tmpfs"
build/lockfs -o "state_dir=$work/state,fence_file=$work/fence" "$work/lockfs"
cleanup() {
        fusermount3 -u "$work/lockfs" 2>/dev/null || true
        umount "$work/tmpfs" 2>/dev/null || true
        chattr -i "$work/lockfs" 2>/dev/null || true # lockfs keeps the bare mount point immutable
        rm -rf "$work"
}
trap cleanup EXIT
build/tests/lockbench cycle "$work/lockfs" "${SECONDS_PER_RUN:-3}"
build/tests/lockbench cycle "$work/tmpfs" "${SECONDS_PER_RUN:-3}"
build/tests/lockbench killed "$work/lockfs" "${TRIALS:-1000}"

#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install what lockfs needs, build it, and mount a lock directory.
# usage: mount-helpers/quickstart.sh [MOUNTPOINT]   (default /run/locks)
set -euo pipefail
cd "$(dirname "$0")/.."
mnt=${1:-/run/locks}
mount-helpers/install-deps.sh
[ -d build ] || meson setup build >/dev/null
ninja -C build lockfs >/dev/null
mkdir -p "$mnt"
# A live mount is refused; the dead mount of a killed lockfs is cleared by
# lockfs itself, which restores the locks of holders still alive.
if mountpoint -q "$mnt" && stat "$mnt" >/dev/null 2>&1; then
        echo "$mnt is already a mount point; unmount it first: fusermount3 -u $mnt" >&2
        exit 1
fi
build/lockfs -o allow_other "$mnt"
echo "lockfs serves $mnt. Try:  echo \$\$ > $mnt/demo.lock && cat $mnt/demo.lock"
echo "Unmount with:  fusermount3 -u $mnt"

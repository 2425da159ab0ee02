#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Two lockfs builds side by side: the uncontended create+unlink cycle of
# each against the trivial FUSE floor (nullfs with timeouts 0 --noflush, the
# same request mix as lockfs), in ROUNDS interleaved rounds so load elsewhere
# on the machine hits all three alike. Prints each round and the medians with
# the ratio to the floor. Not a test: it asserts nothing.
#
# usage (as root, both builds made with `meson setup B && ninja -C B`):
#   [SECONDS_PER_RUN=3] [ROUNDS=5] tests/bench/ab.sh BUILD_A BUILD_B
# The nullfs and lockbench of BUILD_B are used for all three.
set -uo pipefail
[ $# -eq 2 ] || { echo "usage: $0 BUILD_A BUILD_B" >&2; exit 2; }
A=$1 B=$2
SECS=${SECONDS_PER_RUN:-3}
ROUNDS=${ROUNDS:-5}
LB=$B/tests/lockbench
for f in "$A/lockfs" "$B/lockfs" "$LB" "$B/tests/nullfs"; do
        [ -x "$f" ] || { echo "missing $f (build it first)" >&2; exit 1; }
done
work=$(mktemp -d /tmp/lockfs-ab.XXXXXX)
pids=() mounts=()
cleanup() {
        local m
        for m in "${mounts[@]}"; do umount -l "$m" 2>/dev/null; done
        for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
        # lockfs makes its mount point immutable while it is not mounted
        for m in "${mounts[@]}"; do chattr -i "$m" 2>/dev/null; done
        rm -rf "$work"
}
trap cleanup EXIT

# mount DIR CMD...: start a FUSE daemon in the foreground on DIR, wait until
# the mount is there.
mount_fs() {
        local mnt=$1 i
        shift
        mkdir -p "$mnt"
        "$@" "$mnt" 2>"$mnt.log" &
        pids+=($!)
        for ((i = 0; i < 200; i++)); do
                if mountpoint -q "$mnt"; then mounts+=("$mnt"); return 0; fi
                kill -0 "${pids[-1]}" 2>/dev/null || break
                sleep 0.05
        done
        echo "cannot mount $mnt:" >&2
        cat "$mnt.log" >&2
        exit 1
}

mount_fs "$work/a" "$A/lockfs" -f -o "state_dir=$work/state-a,fence_file=$work/fence-a"
mount_fs "$work/b" "$B/lockfs" -f -o "state_dir=$work/state-b,fence_file=$work/fence-b"
mount_fs "$work/floor" "$B/tests/nullfs" -f --noflush

rate() {
        "$LB" cycle "$1" "$SECS" | awk '$1 == "cycles_per_s" { print $2 }'
}
median() {
        printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
ra=() rb=() rf=()
printf '%-6s %12s %12s %12s\n' round "A cycles/s" "B cycles/s" "floor"
for ((r = 1; r <= ROUNDS; r++)); do
        a=$(rate "$work/a") b=$(rate "$work/b") f=$(rate "$work/floor")
        ra+=("$a") rb+=("$b") rf+=("$f")
        printf '%-6s %12s %12s %12s\n' "$r" "$a" "$b" "$f"
done
ma=$(median "${ra[@]}") mb=$(median "${rb[@]}") mf=$(median "${rf[@]}")
printf '%-6s %12s %12s %12s\n' median "$ma" "$mb" "$mf"
awk -v a="$ma" -v b="$mb" -v f="$mf" -v A="$A" -v B="$B" 'BEGIN {
        printf "A (%s): %.2f x floor\nB (%s): %.2f x floor\nB/A: %.3f\n", A, a / f, B, b / f, b / a }'

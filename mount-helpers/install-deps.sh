#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install the Debian 12 packages lockfs needs to build, run and test,
# skipping the update when everything is present already.
set -euo pipefail
packages=(gcc meson ninja-build pkg-config fuse3 libfuse3-dev libcjson-dev libcmocka-dev
          python3 nodejs jq inotify-tools util-linux valgrind strace
          liblockfile-bin lockfile-progs procmail golang-go e2fsprogs groff-base
          systemd man-db mount clang libclang-rt-14-dev
          etcd-server etcd-client libcurl4-openssl-dev
          moreutils s6 python3-fasteners)
# npm (for proper-lockfile's test): Debian's package, unless npm is there
# already (a nodejs from elsewhere, such as NodeSource's, brings its own
# and conflicts with Debian's)
command -v npm >/dev/null 2>&1 || packages+=(npm)
missing=()
for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
        echo "installing: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

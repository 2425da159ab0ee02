#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Build the libFuzzer harnesses with clang (ASan + UBSan) and run each.
# usage: tests/fuzz/run.sh [RUNS]   (default 200000 executions per harness;
# the corpus stays in build-fuzz/corpus-NAME so runs build on each other)
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-200000}
out=build-fuzz
mkdir -p "$out"
flags=(-g -O1 -std=gnu11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined
       -fno-sanitize-recover=undefined -Isrc/util -Isrc/core -Isrc/store -I/usr/include/cjson)
clang "${flags[@]}" tests/fuzz/fuzz_content.c src/core/status.c src/core/claim.c \
        src/core/json_splice.c src/core/lock_how.c src/util/buf.c src/util/json_scan.c \
        src/util/utf8.c -lcjson -o "$out/fuzz_content"
clang "${flags[@]}" -include errno.h tests/fuzz/fuzz_journal.c src/store/journal.c src/util/buf.c src/util/crc32c.c \
        -o "$out/fuzz_journal"
status=0
for name in content journal; do
        mkdir -p "$out/corpus-$name"
        if "$out/fuzz_$name" -runs="$runs" -max_len=4096 -print_final_stats=1 \
                "$out/corpus-$name" > "$out/fuzz_$name.log" 2>&1; then
                echo "fuzz_$name: $(grep -m1 'stat::number_of_executed_units' "$out/fuzz_$name.log" | awk '{print $2}') executions, no crash"
        else
                echo "fuzz_$name: FAILED (log: $out/fuzz_$name.log)"
                tail -30 "$out/fuzz_$name.log"
                status=1
        fi
done
exit $status

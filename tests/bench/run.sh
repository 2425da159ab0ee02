#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The lockfs benchmark suite in one command: mounts lockfs (and lockfs on
# etcd where it supports that), tmpfs and three nullfs floors, starts a
# private etcd, runs every benchmark side by side and prints one table
# (name, figure, unit, ratio/target, verdict). Not a test: it asserts
# nothing, and exits 0 unless something could not run.
#
# usage (as root, from anywhere, after `meson setup B && ninja -C B`):
#   [BUILD=build] [SECONDS_PER_RUN=3] [ROUNDS=3] [TRIALS=1000] [TTL_TRIALS=1000]
#   [ETCD_CYCLES=2000] [SCALE_SIZES="1000 100000"] [SCALE_FULL=1]
#   [SCALE_PROCS=10000] tests/bench/run.sh
#
# SECONDS_PER_RUN is each rate's measuring time, ROUNDS the interleaved
# rounds of the cycle comparisons (median kept), TRIALS the SIGKILL trials,
# TTL_TRIALS the TTL expiries, ETCD_CYCLES the cycles of one etcdbench run.
# SCALE_FULL=1 adds 1,000,000 locks and the SCALE_PROCS-holder variant of
# every size (expect minutes). Progress goes to stderr, the table to stdout.
#
# The floor a target compares lockfs with is the nullfs variant whose FUSE
# requests per cycle match lockfs's (from .lockfs/metrics). lockfs on etcd
# is mounted with -o backend=etcd,... when the daemon accepts it, else its
# rows say n/a. Daemon log lines that look like trouble are shown on stderr.
# Builds nothing: it needs $BUILD/lockfs, $BUILD/tests/lockbench and
# $BUILD/tests/nullfs, and uses $BUILD/tests/etcdbench and etcd when present.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

BUILD=${BUILD:-build}
SECS=${SECONDS_PER_RUN:-3}
TRIALS=${TRIALS:-1000}
TTL_TRIALS=${TTL_TRIALS:-1000}
ETCD_CYCLES=${ETCD_CYCLES:-2000}
SCALE_SIZES=${SCALE_SIZES:-"1000 100000"}
SCALE_PROCS_LIST="1"
if [ "${SCALE_FULL:-0}" = 1 ]; then
        SCALE_SIZES="1000 100000 1000000"
        SCALE_PROCS_LIST="1 ${SCALE_PROCS:-10000}"
fi
LOCKFS=$BUILD/lockfs
LB=$BUILD/tests/lockbench
NULLFS=$BUILD/tests/nullfs
ETCDBENCH=$BUILD/tests/etcdbench
for f in "$LOCKFS" "$LB" "$NULLFS"; do
        [ -x "$f" ] || { echo "missing $f: meson setup $BUILD && ninja -C $BUILD" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "run as root (FUSE and tmpfs mounts)" >&2; exit 1; }

failures=0
work=$(mktemp -d /tmp/lockfs-bench.XXXXXX)
disk=$(mktemp -d /var/tmp/lockfs-bench-disk.XXXXXX)
fuse_mounts=()   # mount points of our FUSE daemons, with their pids below
fuse_pids=()
etcd_pid=""

log() { echo "bench: $*" >&2; }

# ---- mounts and cleanup ------------------------------------------------------

# Unmount one FUSE mount point and await its daemon.
fuse_stop() {
        local mnt=$1 pid=$2 i
        fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        chattr -i "$mnt" 2>/dev/null # lockfs keeps the bare mount point immutable
        # what the daemon logged that looks like trouble (TTL releases are routine)
        grep -iE "error|warn|cannot|fail|abort|assert" "$mnt.log" 2>/dev/null | grep -v "TTL ran out" |
                head -5 | sed "s|^|bench: $(basename "$mnt") logged: |" >&2
        return 0
}

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
        local i
        for i in "${!fuse_mounts[@]}"; do
                fuse_stop "${fuse_mounts[$i]}" "${fuse_pids[$i]}"
        done
        umount "$work/tmpfs" 2>/dev/null
        if [ -n "$etcd_pid" ]; then
                kill "$etcd_pid" 2>/dev/null
                wait "$etcd_pid" 2>/dev/null
        fi
        for i in "$work"/*; do chattr -i "$i" 2>/dev/null; done
        rm -rf "$work" "$disk"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Start a FUSE daemon in the foreground (in the background of this shell) on
# mount point $1 (made here) with the command $2...; 0 once mounted, and its
# pid in $daemon_pid. Its stderr goes to $1.log.
fuse_start() {
        local mnt=$1 i
        shift
        mkdir -p "$mnt"
        "$@" "$mnt" 2>"$mnt.log" &
        daemon_pid=$!
        for ((i = 0; i < 100; i++)); do
                if mountpoint -q "$mnt"; then
                        fuse_mounts+=("$mnt")
                        fuse_pids+=("$daemon_pid")
                        return 0
                fi
                kill -0 "$daemon_pid" 2>/dev/null || break
                sleep 0.05
        done
        kill "$daemon_pid" 2>/dev/null
        wait "$daemon_pid" 2>/dev/null
        chattr -i "$mnt" 2>/dev/null
        return 1
}

# Unmount the FUSE mount at $1 (started by fuse_start) and forget it.
fuse_unmount() {
        local i
        for i in "${!fuse_mounts[@]}"; do
                if [ "${fuse_mounts[$i]}" = "$1" ]; then
                        fuse_stop "${fuse_mounts[$i]}" "${fuse_pids[$i]}"
                        unset "fuse_mounts[$i]" "fuse_pids[$i]"
                fi
        done
}

free_port() {
        local p
        while :; do
                p=$((20000 + RANDOM % 30000))
                (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
        done
}

start_etcd() {
        command -v etcd >/dev/null || { log "etcd not installed"; return 1; }
        local cport pport i
        cport=$(free_port)
        pport=$(free_port)
        [ "$pport" = "$cport" ] && pport=$((cport + 1))
        etcd_url=http://127.0.0.1:$cport
        etcd --name b --data-dir "$work/etcd" --listen-client-urls "$etcd_url" \
                --advertise-client-urls "$etcd_url" --listen-peer-urls "http://127.0.0.1:$pport" \
                --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
                --initial-cluster "b=http://127.0.0.1:$pport" --unsafe-no-fsync \
                --log-level error >"$work/etcd.log" 2>&1 &
        etcd_pid=$!
        for ((i = 0; i < 100; i++)); do
                curl -sf "$etcd_url/health" 2>/dev/null | grep -q '"health":"true"' && return 0
                kill -0 "$etcd_pid" 2>/dev/null || break
                sleep 0.1
        done
        log "etcd did not start (see below)"
        cat "$work/etcd.log" >&2
        return 1
}

# ---- results -------------------------------------------------------------------

rows_name=() rows_val=() rows_unit=() rows_ratio=() rows_verdict=()

# row NAME VALUE UNIT [RATIO/TARGET [VERDICT]]
row() {
        rows_name+=("$1")
        rows_val+=("$(fmt "$2")")
        rows_unit+=("$3")
        rows_ratio+=("${4:-}")
        rows_verdict+=("${5:-}")
}

# A number for the table: n/a stays, large ones without decimals.
fmt() {
        awk -v v="$1" 'BEGIN {
                if (v == "" || v == "n/a" || v !~ /^-?[0-9.e+-]+$/) { print "n/a"; exit }
                v += 0; a = v < 0 ? -v : v
                if (a >= 100 || v == int(v)) printf "%.0f\n", v
                else if (a >= 1) printf "%.2f\n", v
                else if (a >= 0.01) printf "%.3f\n", v
                else printf "%.2g\n", v }'
}

# get KEY from the `name value` lines in $out (n/a when absent)
get() {
        local v
        v=$(awk -v k="$1" '$1 == k { print $2; exit }' <<<"$out")
        echo "${v:-n/a}"
}

# calc EXPR A B: EXPR of a=A and b=B, or n/a when an input is.
calc() {
        awk -v a="$2" -v b="$3" "BEGIN { if (a == \"n/a\" || b == \"n/a\" || a == \"\" || b == \"\") print \"n/a\"
                else { a += 0; b += 0; printf \"%.3f\\n\", $1 } }"
}

# ratio A B: A/B, or n/a
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "n/a" || b == "n/a" || b + 0 == 0) print "n/a"; else printf "%.2f\n", a / b }'; }

# verdict VALUE OP LIMIT (OP: >=, <=, <): PASS, MISS or n/a
verdict() {
        awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
                if (v == "n/a" || v == "") { print "n/a"; exit }
                v += 0; l += 0
                ok = op == ">=" ? v >= l : op == "<=" ? v <= l : v < l
                print ok ? "PASS" : "MISS" }'
}

# run LABEL CMD...: runs a benchmark client, its output in $out; counts failures.
run() {
        local label=$1
        shift
        log "$label"
        if ! out=$("$@" 2>"$work/last.err"); then
                log "$label failed:"
                cat "$work/last.err" >&2
                failures=$((failures + 1))
                out=""
                return 1
        fi
        [ -s "$work/last.err" ] && cat "$work/last.err" >&2
        return 0
}

# The per-opcode requests of the last cycle run, as "lookup 1.00, create 1.00, ...".
req_detail() {
        awk '$1 ~ /^req_/ && $1 !~ /^req_per_/ { sub(/^req_/, "", $1); printf "%s%s %.2f", sep, $1, $2; sep = ", " }' <<<"$out"
}

print_table() {
        local i w1=4 w2=6 w3=4 w4=12
        for i in "${!rows_name[@]}"; do
                ((${#rows_name[$i]} > w1)) && w1=${#rows_name[$i]}
                ((${#rows_val[$i]} > w2)) && w2=${#rows_val[$i]}
                ((${#rows_unit[$i]} > w3)) && w3=${#rows_unit[$i]}
                ((${#rows_ratio[$i]} > w4)) && w4=${#rows_ratio[$i]}
        done
        printf "%-${w1}s  %${w2}s  %-${w3}s  %-${w4}s  %s\n" name figure unit ratio/target verdict
        printf "%-${w1}s  %${w2}s  %-${w3}s  %-${w4}s  %s\n" "$(printf '%*s' "$w1" '' | tr ' ' -)" \
                "$(printf '%*s' "$w2" '' | tr ' ' -)" "$(printf '%*s' "$w3" '' | tr ' ' -)" \
                "$(printf '%*s' "$w4" '' | tr ' ' -)" -------
        for i in "${!rows_name[@]}"; do
                printf "%-${w1}s  %${w2}s  %-${w3}s  %-${w4}s  %s\n" "${rows_name[$i]}" "${rows_val[$i]}" \
                        "${rows_unit[$i]}" "${rows_ratio[$i]}" "${rows_verdict[$i]}"
        done
}

# ---- set up ----------------------------------------------------------------------

mkdir "$work/tmpfs"
mount -t tmpfs tmpfs "$work/tmpfs" || { log "cannot mount tmpfs"; exit 1; }
fuse_start "$work/lockfs" "$LOCKFS" -f -o "state_dir=$work/state,fence_file=$work/fence" ||
        { log "cannot mount lockfs:"; cat "$work/lockfs.log" >&2; exit 1; }
lockfs_pid=$daemon_pid
# The floors: nullfs with timeouts 0, with the kernel caching names for 1 s
# and no FLUSH, and with timeouts 0 and no FLUSH.
null_opts=("" "--timeout=1 --noflush" "--noflush")
null_names=("timeouts 0" "--timeout=1 --noflush" "timeouts 0 --noflush")
for i in "${!null_opts[@]}"; do
        # shellcheck disable=SC2086 # the options are words
        fuse_start "$work/null$i" "$NULLFS" -f ${null_opts[$i]} || { log "cannot mount nullfs"; exit 1; }
done
etcd_url="" le_why="no etcd"
if start_etcd; then
        if fuse_start "$work/lockfs-etcd" "$LOCKFS" -f -o \
                "backend=etcd,endpoints=$etcd_url,prefix=/bench/,lease_ttl=10,state_dir=$work/estate,fence_file=$work/efence"; then
                lockfs_etcd=$work/lockfs-etcd
        else
                le_why=$(head -n 1 "$work/lockfs-etcd.log")
                log "lockfs does not mount with -o backend=etcd: $le_why"
                lockfs_etcd=""
        fi
else
        failures=$((failures + 1))
        lockfs_etcd=""
fi
metrics=$work/lockfs/.lockfs/metrics
started=$(date +%s)

# ---- 1. uncontended cycle ----------------------------------------------------------

# cycle LABEL DIR [REQFILE]: one cycle run; rate in $rate, requests in $req,
# their detail in $reqd, latency in $p50 and $p99.
cycle() {
        rate=n/a req=n/a reqd="" p50=n/a p99=n/a
        run "cycle on $1" "$LB" cycle "$2" "$SECS" ${3:+--req="$3"} || return 0
        rate=$(get cycles_per_s)
        req=$(get req_per_cycle)
        reqd=$(req_detail)
        p50=$(get p50_us)
        p99=$(get p99_us)
}

# median of the numbers given (n/a ones ignored)
median() {
        printf '%s\n' "$@" | grep -v '^n/a$' | sort -g |
                awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else print v[int((NR + 1) / 2)] }'
}

# The cycles run in ROUNDS interleaved rounds (so a burst of load elsewhere on
# the machine hits every file system alike); each figure is the median round.
lf_rates=() lf_p50s=() lf_p99s=() tmpfs_rates=() disk_rates=()
declare -A null_rates null_req null_reqd # by variant: rates as a list, requests of the last round
for ((round = 1; round <= ${ROUNDS:-3}; round++)); do
        cycle lockfs "$work/lockfs" "$metrics"
        lf_rates+=("$rate") lf_p50s+=("$p50") lf_p99s+=("$p99") lf_req=$req lf_reqd=$reqd
        for i in "${!null_opts[@]}"; do
                cycle "nullfs (${null_names[$i]})" "$work/null$i" "$work/null$i/.requests"
                null_rates[$i]="${null_rates[$i]:-} $rate" null_req[$i]=$req null_reqd[$i]=$reqd
        done
        cycle tmpfs "$work/tmpfs"
        tmpfs_rates+=("$rate")
        cycle disk "$disk"
        disk_rates+=("$rate")
done
lf_rate=$(median "${lf_rates[@]}")
lf_p50=$(median "${lf_p50s[@]}")
lf_p99=$(median "${lf_p99s[@]}")
for i in "${!null_opts[@]}"; do
        # shellcheck disable=SC2086 # a list of numbers
        null_rates[$i]=$(median ${null_rates[$i]})
done
tmpfs_rate=$(median "${tmpfs_rates[@]}")
disk_rate=$(median "${disk_rates[@]}")
flock_rate=n/a
run "flock on a disk file" "$LB" flock "$disk/flock-file" "$SECS" && flock_rate=$(get cycles_per_s)
# etcd's unary gRPC calls so far, one `METHOD COUNT` line each (its /metrics)
etcd_calls() {
        curl -s "$etcd_url/metrics" | awk '/^grpc_server_handled_total/ && /grpc_type="unary"/ {
                match($0, /grpc_method="[^"]*"/); c[substr($0, RSTART + 13, RLENGTH - 14)] += $NF }
                END { for (m in c) print m, c[m] }'
}

# etcd_per_cycle BEFORE AFTER CYCLES: "TOTAL|Txn 2.00, ..." calls per cycle
etcd_per_cycle() {
        awk -v n="$3" 'FNR == NR { a[$1] = $2; next } { d = ($2 - a[$1]) / n; t += d
                if (d >= 0.005) { s = s sep sprintf("%s %.2f", $1, d); sep = ", " } }
                END { printf "%.2f|%s\n", t, s }' <(echo "$1") <(echo "$2")
}

# Direct etcd (etcdbench) and lockfs on etcd, in interleaved rounds as above;
# etcd's own call counts give the round trips per cycle of each.
etcd_rates=() etcd_p50s=() etcd_p99s=() le_rates=() etcd_calls_pc=n/a le_calls_pc=n/a
if [ -n "$etcd_url" ] && [ ! -x "$ETCDBENCH" ]; then
        log "no $ETCDBENCH (built only with libcurl)"
        failures=$((failures + 1))
fi
for ((round = 1; round <= ${ROUNDS:-3}; round++)); do
        if [ -n "$etcd_url" ] && [ -x "$ETCDBENCH" ]; then
                before=$(etcd_calls)
                if run "etcd create+delete cycles" "$ETCDBENCH" "$etcd_url" "$ETCD_CYCLES"; then
                        etcd_rates+=("$(get cycles_per_s)") etcd_p50s+=("$(get p50_us)") etcd_p99s+=("$(get p99_us)")
                        etcd_calls_pc=$(etcd_per_cycle "$before" "$(etcd_calls)" "$(($(get cycles) + 1))")
                fi
        fi
        if [ -n "$lockfs_etcd" ]; then
                before=$(etcd_calls)
                cycle "lockfs on etcd" "$lockfs_etcd" "$lockfs_etcd/.lockfs/metrics"
                le_rates+=("$rate") le_req=$req le_reqd=$reqd
                [ "$rate" != n/a ] && le_calls_pc=$(etcd_per_cycle "$before" "$(etcd_calls)" "$(get cycles)")
        fi
done
etcd_rate=$(median "${etcd_rates[@]}")
etcd_p50=$(median "${etcd_p50s[@]}")
etcd_p99=$(median "${etcd_p99s[@]}")
le_rate=$(median "${le_rates[@]}")

# profile_distance "op v, op v, ..." "op v, ...": how far two request mixes differ
profile_distance() {
        awk -v a="$1" -v b="$2" 'function load(s, m,   n, i, f, kv) {
                        n = split(s, f, ", "); for (i = 1; i <= n; i++) { split(f[i], kv, " "); m[kv[1]] = kv[2] } }
                BEGIN { load(a, x); load(b, y); for (k in x) d += (x[k] - y[k]) ^ 2
                        for (k in y) if (!(k in x)) d += y[k] ^ 2; printf "%.4f\n", d }'
}

# The floor with lockfs's settings: the nullfs variant whose requests per
# cycle match lockfs's (same timeouts and flush behaviour give the same mix).
floor=0
if [ "$lf_req" != n/a ]; then
        best=""
        for i in "${!null_opts[@]}"; do
                d=$(profile_distance "$lf_reqd" "${null_reqd[$i]}")
                if [ -z "$best" ] || awk -v d="$d" -v b="$best" 'BEGIN { exit !(d < b) }'; then
                        best=$d floor=$i
                fi
        done
fi
floor_rate=${null_rates[$floor]}
floor_ratio=$(ratio "$lf_rate" "$floor_rate")
row "cycle lockfs" "$lf_rate" cycles/s "$floor_ratio x floor (>= 0.7)" "$(verdict "$floor_ratio" ">=" 0.7)"
row "  lockfs cycle p50 / p99" "$lf_p50" us "p99 $(fmt "$lf_p99") us"
row "  lockfs FUSE requests/cycle" "$lf_req" req "$lf_reqd"
for i in "${!null_opts[@]}"; do
        row "cycle nullfs, ${null_names[$i]}" "${null_rates[$i]}" cycles/s "$(ratio "$lf_rate" "${null_rates[$i]}") x (lockfs/this)"
        row "  its FUSE requests/cycle" "${null_req[$i]}" req "${null_reqd[$i]}"
done
row "  floor used for the target" "$floor_rate" cycles/s "nullfs ${null_names[$floor]} (same request mix)"
row "cycle tmpfs" "$tmpfs_rate" cycles/s "$(ratio "$lf_rate" "$tmpfs_rate") x (lockfs/this)"
row "cycle disk ($(stat -f -c %T "$disk"), /var/tmp)" "$disk_rate" cycles/s "$(ratio "$lf_rate" "$disk_rate") x (lockfs/this)"
row "flock EX+UN, disk file" "$flock_rate" cycles/s "$(ratio "$lf_rate" "$flock_rate") x (lockfs/this)"
etcd_ratio=$(ratio "$lf_rate" "$etcd_rate")
row "cycle etcd create+delete (libcurl)" "$etcd_rate" cycles/s "lockfs $etcd_ratio x (>= 5)" "$(verdict "$etcd_ratio" ">=" 5)"
row "  etcd cycle p50 / p99" "$etcd_p50" us "p99 $(fmt "$etcd_p99") us"
row "  etcd calls/cycle, direct" "${etcd_calls_pc%%|*}" calls "${etcd_calls_pc#*|}"
le_ratio=$(ratio "$etcd_rate" "$le_rate") # cycle time on lockfs-etcd / direct
if [ -n "$lockfs_etcd" ]; then
        row "cycle lockfs on etcd" "$le_rate" cycles/s "time $le_ratio x direct etcd (<= 1.3)" \
                "$(verdict "$le_ratio" "<=" 1.3)"
else
        row "cycle lockfs on etcd" n/a cycles/s "not mounted: ${le_why:0:60}" n/a
fi
if [ -n "$lockfs_etcd" ]; then
        row "  lockfs-etcd FUSE requests/cycle" "$le_req" req "$le_reqd"
        row "  etcd calls/cycle, lockfs on etcd" "${le_calls_pc%%|*}" calls "${le_calls_pc#*|}"
fi

# ---- 2. status read ------------------------------------------------------------------

if run "status reads" "$LB" status "$work/lockfs" "$SECS" --req="$metrics"; then
        row "status read (open+read+close)" "$(get reads_per_s)" reads/s "p50 $(fmt "$(get p50_us)") us, p99 $(fmt "$(get p99_us)") us"
        row "  FUSE requests/read" "$(get req_per_read)" req "$(req_detail)"
else
        row "status read (open+read+close)" n/a reads/s
fi

# ---- 3. contention ----------------------------------------------------------------------

acq2=n/a
for p in 2 8 32; do
        if run "contention excl, $p processes" "$LB" contend "$work/lockfs" "$p" "$SECS" excl --daemon="$lockfs_pid"; then
                a=$(get acq_per_s)
                [ "$p" = 2 ] && acq2=$a
                if [ "$p" = 8 ]; then
                        r8=$(ratio "$a" "$acq2")
                        row "contention excl $p procs" "$a" acq/s "$r8 x 2-proc (>= 0.5)" "$(verdict "$r8" ">=" 0.5)"
                else
                        row "contention excl $p procs" "$a" acq/s
                fi
                row "  EEXIST rate, daemon CPU" "$(calc "a*100" "$(get eexist_rate)" 0)" "% EEXIST" \
                        "$(fmt "$(get eexist_per_s)") EEXIST/s, daemon $(fmt "$(calc "a*100" "$(get daemon_cpu)" 0)")% CPU"
        fi
done
for p in 2 8 32; do
        if run "contention flock, $p processes" "$LB" contend "$work/lockfs" "$p" "$SECS" flock --daemon="$lockfs_pid"; then
                row "contention flock $p procs" "$(get acq_per_s)" acq/s \
                        "daemon $(fmt "$(calc "a*100" "$(get daemon_cpu)" 0)")% CPU, errors $(fmt "$(get errors)")"
        fi
done

# ---- 4. release visibility ---------------------------------------------------------------

if run "holder SIGKILL -> next create ($TRIALS trials)" "$LB" killed "$work/lockfs" "$TRIALS"; then
        p99=$(calc "a/1000" "$(get p99_us)" 0)
        row "SIGKILL -> next create p50" "$(calc "a/1000" "$(get p50_us)" 0)" ms "$(fmt "$(get trials)") trials"
        row "SIGKILL -> next create p99" "$p99" ms "< 5 ms" "$(verdict "$p99" "<" 5)"
fi
if run "TTL expiry ($TTL_TRIALS trials)" "$LB" ttl "$work/lockfs" "$TTL_TRIALS"; then
        p99=$(get p99_ms)
        row "TTL deadline -> vanish p50" "$(get p50_ms)" ms "$(fmt "$(get trials)") trials, $(fmt "$(get missing)") missing, $(fmt "$(get daemon_deadlines)") daemon deadlines"
        row "TTL deadline -> vanish p99" "$p99" ms "<= 50 ms" "$(verdict "$p99" "<=" 50)"
        row "  TTL min / max" "$(get min_ms)" ms "max $(fmt "$(get max_ms)") ms"
fi

# ---- 5. scale -------------------------------------------------------------------------------

declare -A acq_1k    # acquire p50 at 1,000 locks, by holder count
acq_at_1m=n/a
scale_one() {
        local n=$1 procs=$2 mnt=$work/scale tag
        ((procs > n)) && procs=$n
        tag="$n locks, $procs holder$([ "$procs" = 1 ] || echo s)"
        rm -rf "$work/sstate"
        if ! fuse_start "$mnt" "$LOCKFS" -f -o "state_dir=$work/sstate,fence_file=$work/sfence,max_locks=0"; then
                log "cannot mount lockfs for scale"
                failures=$((failures + 1))
                return
        fi
        if run "scale: $tag" "$LB" scale "$mnt/s" "$n" --procs="$procs" --daemon="$daemon_pid" \
                --metrics="$mnt/.lockfs/metrics" --json="$mnt/.lockfs/locks.json"; then
                local bpl acq md
                bpl=$(get bytes_per_lock)
                acq=$(get acquire_p50_us)
                md=$(get massdeath_s)
                [ "$n" = 1000 ] && acq_1k[$2]=$acq
                [ "$procs" = 1 ] && [ "$n" = 1000000 ] && acq_at_1m=$acq
                row "scale $tag: daemon RSS/lock" "$bpl" bytes "<= 512 (RSS $(fmt "$(get rss_before_kb)") -> $(fmt "$(get rss_after_kb)") kB)" \
                        "$(verdict "$bpl" "<=" 512)"
                row "  taking them" "$(get creates_per_s)" creates/s "$(fmt "$(get create_s)") s, $(fmt "$(get failed)") failed"
                row "  acquire p50 / p99" "$acq" us "p99 $(fmt "$(get acquire_p99_us)") us; p50 $(ratio "$acq" "${acq_1k[$2]:-n/a}") x at 1k"
                row "  release p50 / p99" "$(get release_p50_us)" us "p99 $(fmt "$(get release_p99_us)") us"
                row "  readdir (ls | wc -l)" "$(calc "a*1000" "$(get readdir_s)" 0)" ms "$(fmt "$(get readdir_count)") entries"
                row "  .lockfs/locks.json read" "$(calc "a*1000" "$(get locksjson_s)" 0)" ms "$(fmt "$(calc "a/1048576" "$(get locksjson_bytes)" 0)") MiB"
                if [ "$n" = 100000 ] && [ "$procs" = 1 ]; then
                        row "  mass death -> all gone" "$md" s "< 2 s" "$(verdict "$md" "<" 2)"
                else
                        row "  mass death -> all gone" "$md" s ""
                fi
        fi
        fuse_unmount "$mnt"
}
for procs in $SCALE_PROCS_LIST; do
        for n in $SCALE_SIZES; do
                scale_one "$n" "$procs"
        done
done
flat=$(ratio "$acq_at_1m" "${acq_1k[1]:-n/a}")
row "acquire p50 at 1M / at 1k locks" "$flat" x "<= 1.25" "$(verdict "$flat" "<=" 1.25)"

# ---- the table ----------------------------------------------------------------------------------

log "done in $(($(date +%s) - started)) s"
echo
echo "lockfs benchmarks ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, kernel $(uname -r), ${SECS}s per rate, cycles: median of ${ROUNDS:-3} rounds)"
print_table
[ "$failures" = 0 ] || { log "$failures part(s) could not run"; exit 1; }
exit 0

#!/bin/sh
# bench/policy.sh - decisions per second of the policy engine with 100,000 registered devices
# and 1,000 rules: in process (what proxydhcp, tftp and imaging get from the preboot.policy
# service) and over the UDP protocol against a real prebootd on loopback. Results go in
# doc/benchmarks.md, ## policy.
#
#   bench/policy.sh [BUILD_DIR]            (default: $top_builddir, else .)
#   DEVICES=100000 RULES=1000 N=100000 bench/policy.sh /work/build-policy
#
# Then the rule count: the same in-process run with SCALE_RULES (default 10 1000 10000) exact
# MAC rules, SCALE_N decisions each (default 30000): an exact rule is found through the index,
# so the time of a decision must not grow with their number.
#
# The load generator is bench/policy-bench.c, compiled here against the build tree's
# libpolicy-core. Everything started here is stopped by PID.
set -u
B=${1:-${top_builddir:-.}}
B=$(cd "$B" && pwd)
SRC=$(cd "$(dirname "$0")/.." && pwd)
DEVICES=${DEVICES:-100000}
RULES=${RULES:-1000}
N=${N:-100000}
PORT=${PORT:-47012}

tmp=$(mktemp -d /tmp/policy-bench.XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

lib=$B/plugins/policy/.libs/libpolicy-core.a
[ -f "$lib" ] || { echo "build $lib first (make -C $B)" >&2; exit 1; }
# shellcheck disable=SC2046
cc -O2 -I"$SRC/include" -I"$SRC/plugins/policy" -I"$SRC/lib/proto" -I"$SRC/lib/net" -I"$B" \
    -o "$tmp/policy-bench" \
    "$SRC/bench/policy-bench.c" "$lib" $(pkg-config --cflags --libs glib-2.0 yaml-0.1 sqlite3) ||
    exit 1

echo "## $(date -u +%Y-%m-%d) $(uname -m), $(nproc) CPU(s), $DEVICES devices, $RULES rules, $N decisions"
"$tmp/policy-bench" gen-rules "$tmp/rules.yaml" "$RULES" || exit 1
mkdir -p "$tmp/state/policy" "$tmp/log"
"$tmp/policy-bench" inproc "$tmp/rules.yaml" "$tmp/state/policy/policy.db" "$DEVICES" "$N" ||
    exit 1
"$tmp/policy-bench" open "$tmp/state/policy/policy.db" || exit 1
for r in ${SCALE_RULES:-10 1000 10000}; do
    "$tmp/policy-bench" gen-rules "$tmp/exact-$r.yaml" "$r" exact || exit 1
    echo "-- $r exact MAC rules:"
    "$tmp/policy-bench" inproc "$tmp/exact-$r.yaml" "$tmp/state/policy/policy.db" "$DEVICES" \
        "${SCALE_N:-30000}" | grep -E '^(rules|in-process)' || exit 1
done

cat >"$tmp/preboot.yaml" <<EOC
daemon:
  plugin_path: [$B/plugins/policy]
  log_dir: $tmp/log
  state_dir: $tmp/state
  pid_file: $tmp/prebootd.pid
  control_socket: $tmp/control.sock
  log_level: 1
plugins:
  - {module: policy, local_interface: 127.0.0.1, port: $PORT, rules_file: $tmp/rules.yaml, log_level: 1, http: no, pxelinux_files: no}
EOC
"$B/core/prebootd" -f -c "$tmp/preboot.yaml" >"$tmp/daemon.log" 2>&1 &
pid=$!
sleep 1
"$tmp/policy-bench" udp 127.0.0.1 "$PORT" "$DEVICES" "$N"
rc=$?
echo "daemon RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"
exit $rc

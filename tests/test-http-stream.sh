#!/bin/sh
# test-http-stream.sh - 1 GiB up and 1 GiB down through the http service's version 3 API
# (the httptest plugin's /t/upload and /t/blob routes: streamed bodies, intake paused and
# resumed, a reader that waits, ranges) in the real prebootd, with flat memory, while
# proxyDHCP on the same main loop keeps answering (bench/pxe-load sending REQUESTs to its
# 4011 port, one short run after another while a transfer lasts).
. "$top_srcdir/tests/tap.sh"
PREBOOTD=$top_builddir/core/prebootd
command -v curl >/dev/null 2>&1 || skip_all "curl is not installed"
command -v "${CC:-cc}" >/dev/null 2>&1 || skip_all "no C compiler for bench/pxe-load.c"
[ -x "$PREBOOTD" ] || skip_all "prebootd not built"
[ -r /proc/self/status ] || skip_all "no /proc (memory is read from /proc/PID/status)"

tmp=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
port=$(pick_port 6)
p67=$(pick_port 7)
p4011=$(pick_port 8)
p68=$(pick_port 9)

"${CC:-cc}" -O2 -o "$tmp/pxe-load" "$top_srcdir/bench/pxe-load.c" || skip_all "pxe-load does not build"
# 1 GiB that is not all zeros: 64 copies of 16 MiB of random bytes.
head -c 16777216 /dev/urandom >"$tmp/chunk"
for i in 0 1 2 3 4 5 6 7; do cat "$tmp/chunk" "$tmp/chunk" "$tmp/chunk" "$tmp/chunk" \
    "$tmp/chunk" "$tmp/chunk" "$tmp/chunk" "$tmp/chunk"; done >"$tmp/src"
size=$(wc -c <"$tmp/src")
[ "$size" = 1073741824 ] || skip_all "cannot write 1 GiB to $tmp"
mkdir -p "$tmp/store"

cat >"$tmp/preboot.yaml" <<EOC
daemon:
  plugin_path: [$top_builddir/plugins/http, $top_builddir/plugins/proxydhcp, $top_builddir/tests/plugins/http]
  log_dir: $tmp/log
  state_dir: $tmp/state
  pid_file: $tmp/prebootd.pid
  control_socket: $tmp/control.sock
plugins:
  - {module: http, listen: 127.0.0.1, port: $port}
  - {module: httptest, dir: $tmp/store, token: t0ken}
  - module: proxydhcp
    local_interface: 127.0.0.1
    nbp_x86: nvlnbp.sys
    policy_engine: ""
    port: $p67
    pxe_port: $p4011
    client_port: $p68
    log_level: 1
EOC
url=http://127.0.0.1:$port
auth="Authorization: Bearer t0ken"
rss_kb() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$pid/status"; }
routed() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$url/t/hello")" = 200 ]; }

"$PREBOOTD" -f -c "$tmp/preboot.yaml" >"$tmp/out.log" 2>&1 &
pid=$!
if ! wait_until 10 routed; then
    not_ok "prebootd serves the test routes"
    sed 's/^/# /' "$tmp/out.log" "$tmp"/log/*.log 2>/dev/null | tail -n 30
    finish
    exit 1
fi
ok "prebootd serves the test routes"
out=$("$tmp/pxe-load" --rate 50 --seconds 0.5 --bind 127.0.0.1 127.0.0.1 "$p4011")
contains "proxyDHCP answers before the transfers" "$out" "lost_pct=0"

# While the transfer PID $1 runs: its largest RSS into $tmp/rss (sampled every 0.1 s), and
# short pxe-load runs one after another into $tmp/dhcp.
watch_transfer() {
    max=$(rss_kb)
    : >"$tmp/dhcp"
    (while kill -0 "$1" 2>/dev/null; do
        "$tmp/pxe-load" --rate 200 --seconds 0.5 --bind 127.0.0.1 127.0.0.1 "$p4011" >>"$tmp/dhcp"
    done) &
    lpid=$!
    while kill -0 "$1" 2>/dev/null; do
        now=$(rss_kb)
        [ "${now:-0}" -gt "$max" ] && max=$now
        sleep 0.1
    done
    wait "$lpid"
    echo "$max" >"$tmp/rss"
}
# Every pxe-load run while the transfer lasted got most of its replies. The property is that
# the main loop is never held by the transfer (a loop that streamed the body itself would
# lose every request of a run); loss rates are for bench/, and a CI machine under load loses
# a few percent anyway.
dhcp_ok() {
    runs=$(wc -l <"$tmp/dhcp")
    bad=$(awk '{for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "lost_pct" && kv[2] + 0 > 50) n++ }} END {print n + 0}' "$tmp/dhcp")
    diag "pxe-load during the transfer, $runs run(s):"
    sed 's/^/#   /' "$tmp/dhcp"
    [ "$runs" -ge 1 ] && [ "$bad" -eq 0 ]
}

base=$(rss_kb)
curl -s -o "$tmp/up.out" -w '%{http_code}' -H "$auth" -T "$tmp/src" "$url/t/upload" >"$tmp/up.code" &
cpid=$!
watch_transfer "$cpid"
wait "$cpid"
contains "1 GiB upload: 201" "$(cat "$tmp/up.code")" "201"
contains "the route stored every byte" "$(cat "$tmp/up.out")" "stored 1073741824"
check "the stored file is the one sent" cmp -s "$tmp/src" "$tmp/store/blob"
grow=$((($(cat "$tmp/rss") - base) / 1024))
check "memory flat during the upload (grew $grow MiB, bound 64)" [ "$grow" -lt 64 ]
check "proxyDHCP answered during the upload" dhcp_ok

rm -f "$tmp/src" # room for the download
base=$(rss_kb)
curl -s -o "$tmp/down" -w '%{http_code}' "$url/t/blob" >"$tmp/down.code" &
cpid=$!
watch_transfer "$cpid"
wait "$cpid"
contains "1 GiB download: 200" "$(cat "$tmp/down.code")" "200"
check "the download is the stored file" cmp -s "$tmp/down" "$tmp/store/blob"
grow=$((($(cat "$tmp/rss") - base) / 1024))
check "memory flat during the download (grew $grow MiB, bound 64)" [ "$grow" -lt 64 ]
check "proxyDHCP answered during the download" dhcp_ok
rm -f "$tmp/down"

# Ranges.
out=$(curl -s -D "$tmp/h" -r 1000-1999 "$url/t/blob" | cmp -s -i 0:1000 -n 1000 - "$tmp/chunk" && echo same)
contains "Range: bytes=1000-1999 gives those bytes" "$out" "same"
contains "... with 206 and Content-Range" "$(cat "$tmp/h")" "Content-Range: bytes 1000-1999/1073741824"
out=$(curl -s -r -100 "$url/t/blob" | wc -c)
check "a suffix range gives the last 100 bytes" [ "$out" -eq 100 ]
out=$(curl -s -o /dev/null -D - -r 1073741824- "$url/t/blob")
contains "a range past the end: 416" "$out" " 416"
contains "... with Content-Range: bytes */size" "$out" "Content-Range: bytes */1073741824"
out=$(curl -s -I "$url/t/blob")
contains "HEAD: the length" "$out" "Content-Length: 1073741824"
contains "HEAD: Accept-Ranges" "$out" "Accept-Ranges: bytes"
out=$(curl -s -o /dev/null -D - -r 0-9 -H 'If-Range: "other"' "$url/t/blob" | head -n 1)
contains "If-Range with another ETag: the whole resource" "$out" " 200"

# An upload cut short leaves nothing behind, and the stored blob as it was.
head -c 50000000 /dev/zero >"$tmp/part"
curl -s -o /dev/null --limit-rate 10M --max-time 1 -H "$auth" -T "$tmp/part" "$url/t/upload"
check "an interrupted upload: the temporary file goes" wait_until 40 sh -c "! [ -e '$tmp/store/blob.tmp' ]"
check "... and the stored blob stays" [ "$(wc -c <"$tmp/store/blob")" = 1073741824 ]
# A chunked body (no Content-Length) streams the same way.
head -c 3000000 /dev/urandom >"$tmp/small"
out=$(curl -s -H "$auth" -H 'Transfer-Encoding: chunked' -T "$tmp/small" "$url/t/upload")
contains "a chunked upload is stored" "$out" "stored 3000000"
check "... byte for byte" cmp -s "$tmp/small" "$tmp/store/blob"
check "still served after all that" routed
finish

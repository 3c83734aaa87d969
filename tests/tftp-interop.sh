#!/bin/sh
# tftp-interop.sh - the tftp plugin against real clients: tftp-hpa's tftp, atftp (with its
# windowsize option), curl (tftp://, --tftp-blksize) and busybox tftp. Downloads and
# uploads checked byte for byte, a file of more than 65536 blocks at blksize 512 (block
# numbers roll over) with every client, a missing file, a forbidden path, a refused write,
# an existing file without overwrite, a client killed mid-transfer (the session ends and is
# freed), and duplicated/reordered datagrams through tests/tftp-mangler. The server is
# core/prebootd -f when it works, else tests/tftp-serve (the same host in process). Clients
# that are not installed are skipped. Only loopback, only processes started here.
. "$top_srcdir/tests/tap.sh"

tmp=$(mktemp -d)
pids=
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null; done
    for p in $pids; do wait "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

port_ro=$(pick_port 31)
port_rw=$(pick_port 32)
port_sp=$(pick_port 33)
port_mg=$(pick_port 34)
root=$tmp/root
rwroot=$tmp/rw
mkdir -p "$root/sub" "$rwroot" "$tmp/log" "$tmp/state" "$tmp/out"
echo "outside the root" >"$tmp/secret"
head -c 100000 /dev/urandom >"$root/small.bin"
cp "$root/small.bin" "$root/sub/nested.bin"
# 65540 blocks of 512 and a bit: the block number wraps past 65535.
head -c $((65540 * 512 + 100)) /dev/urandom >"$root/big.bin"
head -c 3000000 /dev/urandom >"$root/medium.bin"
head -c 50000 /dev/urandom >"$tmp/upload.bin"
echo "keep me" >"$rwroot/existing"
ln -s ../secret "$root/escape"

cat >"$tmp/preboot.yaml" <<EOC
daemon:
  plugin_path: [$top_builddir/plugins/tftp]
  log_dir: $tmp/log
  state_dir: $tmp/state
  pid_file: $tmp/prebootd.pid
  control_socket: $tmp/control.sock
  log_level: 2
plugins:
  - module: tftp
    name: ro
    interface: 127.0.0.1
    port: $port_ro
    directory: $root
    log_level: 3
    log_file: ro.log
    rate_limit: 0
    jumbo_block_size: 8192
  - module: tftp
    name: rw
    interface: 127.0.0.1
    port: $port_rw
    directory: $rwroot
    allow_writes: yes
    log_file: rw.log
    rate_limit: 0
  - module: tftp
    name: sp
    interface: 127.0.0.1
    port: $port_sp
    directory: $root
    single_port: yes
    log_file: sp.log
    rate_limit: 0
    timeout: 1
    max_retries: 2
    retransmit_min: 20
    client_timeout_max: 2
EOC

PREBOOTD=$top_builddir/core/prebootd
CTL=$top_builddir/tools/prebootctl
if "$PREBOOTD" --version 2>/dev/null | grep -q "plugin ABI"; then
    "$PREBOOTD" -f -c "$tmp/preboot.yaml" >"$tmp/server.out" 2>&1 &
    server=prebootd
    stats() { "$CTL" -c "$tmp/preboot.yaml" stats 2>&1; }
else
    "$top_builddir/tests/tftp-serve" -s "$tmp/stats" "$tmp/preboot.yaml" >"$tmp/server.out" 2>&1 &
    server=tftp-serve
    stats() {
        rm -f "$tmp/stats"
        kill -USR1 "$spid"
        wait_until 5 test -s "$tmp/stats"
        cat "$tmp/stats"
    }
fi
spid=$!
pids="$spid"
diag "server: $server (pid $spid)"
# Ready once the log says both instances serve.
ready() { grep -q serving "$tmp/log/ro.log" && grep -q serving "$tmp/log/rw.log" && grep -q serving "$tmp/log/sp.log"; }
if ! wait_until 20 ready; then
    not_ok "server started"
    sed 's/^/# /' "$tmp/server.out"
    finish
    exit 1
fi
ok "server started ($server)"

counter() { # instance name
    stats | sed -n "s/^$1: $2 = //p"
}

same() { cmp -s "$1" "$2"; }
T="timeout 120"

# ---- tftp-hpa ----------------------------------------------------------------------------
if command -v tftp >/dev/null && tftp -V 2>&1 | grep -qi "tftp-hpa"; then
    (cd "$tmp/out" && $T tftp -m binary 127.0.0.1 "$port_ro" -c get small.bin hpa-small) >/dev/null 2>&1
    check "tftp-hpa: download" same "$root/small.bin" "$tmp/out/hpa-small"
    (cd "$tmp/out" && $T tftp -m binary 127.0.0.1 "$port_ro" -c get big.bin hpa-big) >/dev/null 2>&1
    check "tftp-hpa: 65540 blocks of 512 (rollover)" same "$root/big.bin" "$tmp/out/hpa-big"
    (cd "$tmp/out" && $T tftp -m binary 127.0.0.1 "$port_ro" -c get sub/nested.bin hpa-nested) >/dev/null 2>&1
    check "tftp-hpa: download from a subdirectory" same "$root/small.bin" "$tmp/out/hpa-nested"
    out=$(cd "$tmp/out" && $T tftp -m binary 127.0.0.1 "$port_ro" -c get missing hpa-missing 2>&1)
    contains "tftp-hpa: missing file is error 1" "$out" "Error code 1"
    out=$(cd "$tmp/out" && $T tftp -m binary 127.0.0.1 "$port_ro" -c get ../secret hpa-secret 2>&1)
    contains "tftp-hpa: ../secret is an access violation" "$out" "Error code 2"
    out=$(cd "$tmp/out" && $T tftp -m binary 127.0.0.1 "$port_ro" -c get escape hpa-escape 2>&1)
    contains "tftp-hpa: a symlink out of the root is an access violation" "$out" "Error code 2"
    printf 'one\ntwo\r\nthree\n' >"$tmp/text.txt"
    cp "$tmp/text.txt" "$root/text.txt"
    (cd "$tmp/out" && $T tftp -m netascii 127.0.0.1 "$port_ro" -c get text.txt hpa-text) >/dev/null 2>&1
    check "tftp-hpa: netascii download converts back to the same text" same "$tmp/text.txt" "$tmp/out/hpa-text"
    (cd "$tmp" && $T tftp -m binary 127.0.0.1 "$port_rw" -c put upload.bin hpa-up.bin) >/dev/null 2>&1
    check "tftp-hpa: upload" same "$tmp/upload.bin" "$rwroot/hpa-up.bin"
    (cd "$tmp" && $T tftp -m netascii 127.0.0.1 "$port_rw" -c put text.txt hpa-text.txt) >/dev/null 2>&1
    check "tftp-hpa: netascii upload" same "$tmp/text.txt" "$rwroot/hpa-text.txt"
    out=$(cd "$tmp" && $T tftp -m binary 127.0.0.1 "$port_ro" -c put upload.bin new.bin 2>&1)
    contains "tftp-hpa: write refused when writes are off" "$out" "Error code 2"
    check "tftp-hpa: refused write left nothing" test ! -e "$root/new.bin"
    out=$(cd "$tmp" && $T tftp -m binary 127.0.0.1 "$port_rw" -c put upload.bin existing 2>&1)
    contains "tftp-hpa: existing file without overwrite is error 6" "$out" "Error code 6"
    check "tftp-hpa: existing file untouched" grep -q "keep me" "$rwroot/existing"
else
    for i in 1 2 3 4 5 6 7 8 9 10 11 12 13; do skip "tftp-hpa client not installed"; done
fi

# ---- atftp -------------------------------------------------------------------------------
if command -v atftp >/dev/null; then
    $T atftp -g -r small.bin -l "$tmp/out/at-small" 127.0.0.1 "$port_ro" >/dev/null 2>&1
    check "atftp: download" same "$root/small.bin" "$tmp/out/at-small"
    $T atftp -g -r big.bin -l "$tmp/out/at-big" --option "blksize 512" 127.0.0.1 "$port_ro" >/dev/null 2>&1
    check "atftp: 65540 blocks of 512 (rollover)" same "$root/big.bin" "$tmp/out/at-big"
    $T atftp -g -r medium.bin -l "$tmp/out/at-win" --option "blksize 1428" --option "windowsize 16" \
        127.0.0.1 "$port_ro" >/dev/null 2>&1
    check "atftp: windowsize 16, blksize 1428" same "$root/medium.bin" "$tmp/out/at-win"
    $T atftp -g -r medium.bin -l "$tmp/out/at-win64" --option "blksize 8192" --option "windowsize 64" \
        127.0.0.1 "$port_ro" >/dev/null 2>&1
    check "atftp: windowsize 64, blksize 8192 (capped in bytes)" same "$root/medium.bin" "$tmp/out/at-win64"
    $T atftp -g -r big.bin -l "$tmp/out/at-bigwin" --option "blksize 512" --option "windowsize 8" \
        127.0.0.1 "$port_ro" >/dev/null 2>&1
    check "atftp: rollover with windowsize 8" same "$root/big.bin" "$tmp/out/at-bigwin"
    out=$($T atftp -g -r missing -l "$tmp/out/at-missing" 127.0.0.1 "$port_ro" 2>&1)
    contains "atftp: missing file" "$out" "File not found"
    $T atftp -p -l "$tmp/upload.bin" -r at-up.bin 127.0.0.1 "$port_rw" >/dev/null 2>&1
    check "atftp: upload" same "$tmp/upload.bin" "$rwroot/at-up.bin"
    $T atftp -p -l "$tmp/upload.bin" -r at-upw.bin --option "windowsize 4" --option "blksize 1024" \
        127.0.0.1 "$port_rw" >/dev/null 2>&1
    check "atftp: upload with windowsize 4" same "$tmp/upload.bin" "$rwroot/at-upw.bin"
else
    for i in 1 2 3 4 5 6 7 8; do skip "atftp not installed"; done
fi

# ---- curl --------------------------------------------------------------------------------
if command -v curl >/dev/null && curl -V | grep -q tftp; then
    $T curl -sS -o "$tmp/out/curl-small" "tftp://127.0.0.1:$port_ro/small.bin" 2>/dev/null
    check "curl: download" same "$root/small.bin" "$tmp/out/curl-small"
    $T curl -sS --tftp-blksize 1428 -o "$tmp/out/curl-1428" "tftp://127.0.0.1:$port_ro/medium.bin" 2>/dev/null
    check "curl: --tftp-blksize 1428" same "$root/medium.bin" "$tmp/out/curl-1428"
    $T curl -sS --tftp-blksize 512 -o "$tmp/out/curl-big" "tftp://127.0.0.1:$port_ro/big.bin" 2>/dev/null
    check "curl: 65540 blocks of 512 (rollover)" same "$root/big.bin" "$tmp/out/curl-big"
    $T curl -sS -o "$tmp/out/curl-missing" "tftp://127.0.0.1:$port_ro/missing" 2>/dev/null
    rc=$?
    # curl's exit code 68 is "TFTP: file not found" (its message varies by version).
    check "curl: missing file (exit code 68)" [ "$rc" -eq 68 ]
    $T curl -sS -T "$tmp/upload.bin" "tftp://127.0.0.1:$port_rw/curl-up.bin" 2>/dev/null
    check "curl: upload" same "$tmp/upload.bin" "$rwroot/curl-up.bin"
    out=$($T curl -sS -T "$tmp/upload.bin" "tftp://127.0.0.1:$port_rw/existing" 2>&1)
    check "curl: overwrite refused" grep -q "keep me" "$rwroot/existing"
else
    for i in 1 2 3 4 5 6; do skip "curl without tftp"; done
fi

# ---- busybox -----------------------------------------------------------------------------
if command -v busybox >/dev/null && busybox tftp 2>&1 | grep -q "Get file"; then
    $T busybox tftp -g -r small.bin -l "$tmp/out/bb-small" 127.0.0.1 "$port_ro" >/dev/null 2>&1
    check "busybox: download" same "$root/small.bin" "$tmp/out/bb-small"
    $T busybox tftp -g -b 512 -r big.bin -l "$tmp/out/bb-big" 127.0.0.1 "$port_ro" >/dev/null 2>&1
    check "busybox: 65540 blocks of 512 (rollover)" same "$root/big.bin" "$tmp/out/bb-big"
    $T busybox tftp -g -b 1428 -r medium.bin -l "$tmp/out/bb-1428" 127.0.0.1 "$port_ro" >/dev/null 2>&1
    check "busybox: blksize 1428" same "$root/medium.bin" "$tmp/out/bb-1428"
    out=$($T busybox tftp -g -r ../secret -l "$tmp/out/bb-secret" 127.0.0.1 "$port_ro" 2>&1)
    contains "busybox: ../secret refused" "$out" "ccess violation"
    $T busybox tftp -p -l "$tmp/upload.bin" -r bb-up.bin 127.0.0.1 "$port_rw" >/dev/null 2>&1
    check "busybox: upload" same "$tmp/upload.bin" "$rwroot/bb-up.bin"
else
    for i in 1 2 3 4 5; do skip "busybox tftp not available"; done
fi

# ---- single-port mode (clients behind NAT) -----------------------------------------------
if command -v curl >/dev/null && curl -V | grep -q tftp; then
    $T curl -sS --tftp-blksize 1428 -o "$tmp/out/sp" "tftp://127.0.0.1:$port_sp/medium.bin" 2>/dev/null
    check "single-port mode: curl download" same "$root/medium.bin" "$tmp/out/sp"
else
    skip "curl without tftp"
fi

# ---- duplicated and reordered datagrams --------------------------------------------------
# tftp-mangler relays between the client and the single-port instance, sending every
# third datagram twice and holding every fifth back behind the next one.
if [ -x "$top_builddir/tests/tftp-mangler" ] && command -v curl >/dev/null; then
    "$top_builddir/tests/tftp-mangler" "$port_mg" "$port_sp" 3 5 >"$tmp/mangler.out" 2>&1 &
    mpid=$!
    pids="$pids $mpid"
    sleep 0.2
    $T curl -sS --tftp-blksize 1428 -o "$tmp/out/mg-curl" "tftp://127.0.0.1:$port_mg/medium.bin" 2>/dev/null
    check "duplicated+reordered: curl download intact" same "$root/medium.bin" "$tmp/out/mg-curl"
    if command -v atftp >/dev/null; then
        $T atftp -g -r medium.bin -l "$tmp/out/mg-at" --option "blksize 1428" --option "windowsize 8" \
            127.0.0.1 "$port_mg" >/dev/null 2>&1
        check "duplicated+reordered: atftp windowsize 8 intact" same "$root/medium.bin" "$tmp/out/mg-at"
    else
        skip "atftp not installed"
    fi
    $T busybox tftp -g -r small.bin -l "$tmp/out/mg-bb" 127.0.0.1 "$port_mg" >/dev/null 2>&1
    check "duplicated+reordered: busybox download intact" same "$root/small.bin" "$tmp/out/mg-bb"
    kill "$mpid" 2>/dev/null
    wait "$mpid" 2>/dev/null
    diag "$(cat "$tmp/mangler.out")"
else
    for i in 1 2 3; do skip "tftp-mangler or curl missing"; done
fi

# ---- a client that stops acknowledging ---------------------------------------------------
# curl killed mid-download: the server retransmits with backoff, gives up, frees the slot.
if command -v curl >/dev/null && curl -V | grep -q tftp; then
    curl -sS --tftp-blksize 512 -o "$tmp/out/killed" "tftp://127.0.0.1:$port_sp/big.bin" 2>/dev/null &
    cpid=$!
    # Kill it once its transfer runs (curl may take a while to start on a busy machine).
    sp_busy() { [ "$(counter sp active_transfers)" = 1 ]; }
    wait_until 10 sp_busy
    sleep 0.2
    kill -9 "$cpid" 2>/dev/null
    wait "$cpid" 2>/dev/null
    sp_active() { [ "$(counter sp active_transfers)" = 0 ]; }
    sp_failed() { [ "$(counter sp transfers_failed)" -ge 1 ]; }
    # curl asks for timeout=6, above client_timeout_max, so TimeoutInterval (1 s) holds:
    # quick retransmissions while the timer comes back up from the measured round trip,
    # then 2 full-length ones with backoff: about 10 s.
    check "silent client: the session ends" wait_until 30 sp_failed
    check "silent client: no transfer left" sp_active
    check "silent client: logged as a timeout" grep -q "failed (timeout)" "$tmp/log/sp.log"
else
    for i in 1 2 3; do skip "curl without tftp"; done
fi

# Namespaces need root, ip, and a system where `ip netns exec` can remount (not, for
# instance, a plain chroot whose / is no mount point).
netns_usable() {
    [ "$(id -u)" = 0 ] && command -v ip >/dev/null || return 1
    ip netns add "pbtftpp$$" 2>/dev/null || return 1
    ip netns exec "pbtftpp$$" true 2>/dev/null
    rc=$?
    ip netns del "pbtftpp$$" 2>/dev/null
    return $rc
}

# ---- blksize clamped to the interface MTU --------------------------------------------------
# Two network namespaces joined by a veth pair with MTU 1400: a client asking for 8192 gets
# 1400 - 20 - 8 - 4 = 1368, since boot firmware cannot reassemble fragments.
if netns_usable && command -v curl >/dev/null && ip netns add "pbtftps$$" 2>/dev/null; then
    nss=pbtftps$$ nsc=pbtftpc$$
    ip netns add "$nsc"
    netns_cleanup() { ip netns del "$nss" 2>/dev/null; ip netns del "$nsc" 2>/dev/null; }
    trap 'cleanup; netns_cleanup' EXIT INT TERM
    ip link add "pbts$$" type veth peer name "pbtc$$"
    ip link set "pbts$$" netns "$nss"
    ip link set "pbtc$$" netns "$nsc"
    ip -n "$nss" addr add 10.213.0.1/24 dev "pbts$$"
    ip -n "$nsc" addr add 10.213.0.2/24 dev "pbtc$$"
    ip -n "$nss" link set lo up
    ip -n "$nsc" link set lo up
    ip -n "$nss" link set "pbts$$" mtu 1400 up
    ip -n "$nsc" link set "pbtc$$" mtu 1400 up
    cat >"$tmp/mtu.yaml" <<EOC
daemon:
  plugin_path: [$top_builddir/plugins/tftp]
  log_dir: $tmp/mtu-log
  state_dir: $tmp/state
  pid_file: $tmp/mtu.pid
  control_socket: $tmp/mtu.sock
plugins:
  - module: tftp
    name: ro
    interface: 10.213.0.1
    port: $port_ro
    directory: $root
    log_level: 3
    log_file: ro.log
    jumbo_block_size: 8192
EOC
    mkdir -p "$tmp/mtu-log"
    ip netns exec "$nss" "$top_builddir/tests/tftp-serve" "$tmp/mtu.yaml" >"$tmp/mtu.out" 2>&1 &
    mtupid=$!
    pids="$pids $mtupid"
    mtu_ready() { grep -q serving "$tmp/mtu-log/ro.log"; }
    wait_until 10 mtu_ready
    ip netns exec "$nsc" timeout 60 curl -sS --tftp-blksize 8192 -o "$tmp/out/mtu" \
        "tftp://10.213.0.1:$port_ro/medium.bin" 2>/dev/null
    check "MTU 1400: download over the veth intact" same "$root/medium.bin" "$tmp/out/mtu"
    check "MTU 1400: blksize 8192 asked, 1368 granted" \
        grep -q "medium.bin: blksize 1368, window 1, tsize sent (interface MTU 1400)" "$tmp/mtu-log/ro.log"
    kill "$mtupid" 2>/dev/null
    wait "$mtupid" 2>/dev/null
    netns_cleanup
else
    for i in 1 2; do skip "needs root and network namespaces"; done
fi

# ---- the reference's novell-tftp.conf, as it is, on port 69 -------------------------------
# The issue's "done when": prebootd with only the tftp plugin, started from the legacy
# file, serves PXE boot files to all four clients. The legacy file has no port setting, so
# the daemon runs in a network namespace of its own, where port 69 is free.
if [ "$server" = prebootd ] && netns_usable && ip netns add "pbtftpl$$" 2>/dev/null; then
    nsl=pbtftpl$$
    trap 'cleanup; ip netns del "$nsl" 2>/dev/null' EXIT INT TERM
    ip -n "$nsl" link set lo up
    mkdir -p "$tmp/legacy-log" "$tmp/legacy-state"
    cp "$root/small.bin" "$root/pxelinux.0"
    # Table D-14 of the reference, with the root and the address moved into the test.
    cat >"$tmp/novell-tftp.conf" <<EOC
TFTPInterface = 127.0.0.1
TransferBlockSize = 1428
TimeoutInterval = 1
TFTPDirectory = $root
TFTPAllowWrites = 0
TFTPAllowOverwrites = 0
TFTPLogLevel = 2
TFTPLogFile = novell-tftp.log
TFTPLogFileSize = 15
EOC
    ip netns exec "$nsl" "$PREBOOTD" -f -c "$tmp/novell-tftp.conf" -P "$top_builddir/plugins/tftp" \
        --log-dir "$tmp/legacy-log" --state-dir "$tmp/legacy-state" -p "$tmp/legacy.pid" \
        -s "$tmp/legacy.sock" >"$tmp/legacy.out" 2>&1 &
    lpid=$!
    pids="$pids $lpid"
    legacy_ready() { grep -q serving "$tmp/legacy-log/novell-tftp.log"; }
    if wait_until 10 legacy_ready; then
        ok "prebootd -c novell-tftp.conf serves on port 69"
    else
        not_ok "prebootd -c novell-tftp.conf serves on port 69"
        sed 's/^/# /' "$tmp/legacy.out"
    fi
    X="ip netns exec $nsl timeout 60"
    (cd "$tmp/out" && $X tftp -m binary 127.0.0.1 -c get pxelinux.0 l-hpa) >/dev/null 2>&1
    check "legacy conf: tftp-hpa fetches pxelinux.0" same "$root/pxelinux.0" "$tmp/out/l-hpa"
    # Port given: atftp looks "tftp" up in /etc/services, which a minimal system may lack.
    $X atftp -g -r pxelinux.0 -l "$tmp/out/l-at" --option "blksize 1428" 127.0.0.1 69 >/dev/null 2>&1
    check "legacy conf: atftp fetches pxelinux.0" same "$root/pxelinux.0" "$tmp/out/l-at"
    $X curl -sS --tftp-blksize 1428 -o "$tmp/out/l-curl" "tftp://127.0.0.1/pxelinux.0" 2>/dev/null
    check "legacy conf: curl fetches pxelinux.0" same "$root/pxelinux.0" "$tmp/out/l-curl"
    $X busybox tftp -g -b 1428 -r pxelinux.0 -l "$tmp/out/l-bb" 127.0.0.1 >/dev/null 2>&1
    check "legacy conf: busybox fetches pxelinux.0" same "$root/pxelinux.0" "$tmp/out/l-bb"
    kill "$lpid" 2>/dev/null
    wait "$lpid" 2>/dev/null
    ip netns del "$nsl" 2>/dev/null
else
    for i in 1 2 3 4 5; do skip "needs prebootd, root and network namespaces"; done
fi

check "no temporary upload files left" sh -c "! ls -a '$rwroot' | grep -q tftp-part"
check "refusals were logged" grep -q "refused: parent directory in path" "$tmp/log/ro.log"
check "server still running" kill -0 "$spid"
finish

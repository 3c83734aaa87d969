#!/bin/sh
# proxydhcp-daemon.sh - the real prebootd with proxydhcp from the reference's
# novell-proxydhcp.conf (plus native overrides: loopback address, high ports), answering
# the DISCOVER captured from OVMF and a 4011 REQUEST captured from iPXE, sent by a small
# python3 socket client on 127.0.0.1; then `prebootctl stats` and
# `prebootctl proxydhcp-client MAC` over the control socket. Prints TAP.
set -u
: "${top_srcdir:?}" "${top_builddir:?}"

PREBOOTD=$top_builddir/core/prebootd
PREBOOTCTL=$top_builddir/tools/prebootctl
if ! [ -x "$PREBOOTD" ] || ! "$PREBOOTD" --version 2>/dev/null | grep -q '^prebootd'; then
    echo "1..0 # SKIP core/prebootd does not run yet"
    exit 0
fi
command -v python3 >/dev/null 2>&1 || { echo "1..0 # SKIP python3 is not installed"; exit 0; }

T=$(mktemp -d /tmp/pb-pdd.XXXXXX)
PID=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
P67=$(free_port)
P4011=$(free_port)
P68=$(free_port)

sed -e 's/^LocalInterface = .*/LocalInterface = 127.0.0.1/' \
    "$top_srcdir/tests/data/legacy/novell-proxydhcp.conf" >"$T/novell-proxydhcp.conf"
mkdir -p "$T/log" "$T/state"
cat >"$T/preboot.yaml" <<EOF
daemon:
  plugin_path: [$top_builddir/plugins/proxydhcp]
  log_dir: $T/log
  state_dir: $T/state
  pid_file: $T/prebootd.pid
  control_socket: $T/control.sock
plugins:
  - module: proxydhcp
    legacy: [$T/novell-proxydhcp.conf]
    boot_file_efi_x64: bootx64.efi
    policy_engine: ""
    port: $P67
    pxe_port: $P4011
    client_port: $P68
    log_level: 4
EOF

echo "1..5"
"$PREBOOTD" -f -c "$T/preboot.yaml" >"$T/prebootd.out" 2>&1 &
PID=$!
i=0
while [ $i -lt 100 ] && ! [ -S "$T/control.sock" ]; do
    sleep 0.1
    i=$((i + 1))
done
if [ -S "$T/control.sock" ]; then
    echo "ok 1 - prebootd starts with proxydhcp from novell-proxydhcp.conf"
else
    echo "not ok 1 - prebootd starts with proxydhcp from novell-proxydhcp.conf"
    sed 's/^/# /' "$T/prebootd.out"
fi

# The client: sends one captured request, waits for the reply, prints fields as key=value.
cat >"$T/client.py" <<'EOF'
import socket, struct, sys
data = open(sys.argv[1], "rb").read()
port, listen = int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.bind(("0.0.0.0" if listen else "127.0.0.1", listen))
s.settimeout(3)
if listen == 0:
    # 4011: from our own port, with ciaddr = us (we have a lease by then)
    data = data[:12] + socket.inet_aton("127.0.0.1") + data[16:]
s.sendto(data, ("127.0.0.1", port))
try:
    while True:
        r, src = s.recvfrom(2048)
        if r[0] == 2 and r[4:8] == data[4:8]:
            break
except socket.timeout:
    print("timeout=1")
    sys.exit(0)
opts, i = {}, 240
while i < len(r) and r[i] != 255:
    if r[i] == 0:
        i += 1
        continue
    opts[r[i]] = r[i + 2:i + 2 + r[i + 1]]
    i += 2 + r[i + 1]
print("src_port=%d yiaddr=%s siaddr=%s type=%d vc=%s sid=%s file=%s has43=%d uuid_echo=%d" % (
    src[1], socket.inet_ntoa(r[16:20]), socket.inet_ntoa(r[20:24]), opts[53][0],
    opts[60].decode(), socket.inet_ntoa(opts[54]), r[108:236].split(b"\0")[0].decode() or "-",
    43 in opts, opts.get(97) == dict(((data[j], data[j+2:j+2+data[j+1]]) for j in [data.find(b"\x61\x11")] if j > 0)).get(97)))
EOF

out=$(python3 "$T/client.py" "$top_srcdir/tests/data/dhcp/ovmf-pxe-discover.bin" "$P67" "$P68")
echo "# $out"
case "$out" in
*"src_port=$P67 yiaddr=0.0.0.0 siaddr=127.0.0.1 type=2 vc=PXEClient sid=127.0.0.1 file=- has43=0 uuid_echo=1"*)
    echo "ok 2 - OVMF's DISCOVER gets a BINL proxy OFFER (no 43, no file, UUID echoed)" ;;
*) echo "not ok 2 - OVMF's DISCOVER gets a BINL proxy OFFER" ;;
esac

out=$(python3 "$T/client.py" "$top_srcdir/tests/data/dhcp/ipxe-bios-pxebs-4011.bin" "$P4011" 0)
echo "# $out"
case "$out" in
*"src_port=$P4011 yiaddr=0.0.0.0 siaddr=127.0.0.1 type=5 vc=PXEClient sid=127.0.0.1 file=nvlnbp.sys has43=1"*)
    echo "ok 3 - iPXE's boot item REQUEST on 4011 gets an ACK naming NBPx86" ;;
*) echo "not ok 3 - iPXE's boot item REQUEST on 4011 gets an ACK naming NBPx86" ;;
esac

stats=$("$PREBOOTCTL" -s "$T/control.sock" stats 2>&1)
if echo "$stats" | grep -q "PXE Requests.*2"; then
    echo "ok 4 - prebootctl stats counts 2 PXE Requests"
else
    echo "not ok 4 - prebootctl stats counts 2 PXE Requests"
    echo "$stats" | sed 's/^/# /'
fi

hist=$("$PREBOOTCTL" -s "$T/control.sock" proxydhcp-client 52:54:00:12:34:57 2>&1)
if echo "$hist" | grep -q "DISCOVER on 67, arch 7.*OFFER profile binl"; then
    echo "ok 5 - prebootctl proxydhcp-client shows the exchange"
else
    echo "not ok 5 - prebootctl proxydhcp-client shows the exchange"
    echo "$hist" | sed 's/^/# /'
fi

#!/bin/sh
# test-wine-tftp.sh - the Windows build end to end under wine: prebootd.exe loads the tftp
# plugin DLL for an instance configured by a legacy novell-tftp.conf whose TFTPDirectory is
# a Windows path (drive letter and backslashes); Linux clients (curl, atftp) fetch files
# over loopback and must get them bit-exact; backslash traversals (..\ and absolute
# C:\-style names) are refused; the daemon stops cleanly when asked over its control
# channel, removing its pid file and control file. Prints TAP.
#
# Needs a cross build (./configure --host=x86_64-w64-mingw32) and wine; skips otherwise.
# All traffic is on 127.0.0.1; every wait is bounded.
set -u
top_builddir=${top_builddir:-$(pwd)}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
. "$top_srcdir/tests/tap.sh"

exe() { if [ -f "$(dirname "$1")/.libs/$(basename "$1")" ]; then echo "$(dirname "$1")/.libs/$(basename "$1")"; else echo "$1"; fi; }
prebootd=$(exe "$top_builddir/core/prebootd.exe")
prebootctl=$(exe "$top_builddir/tools/prebootctl.exe")
plugin=$top_builddir/plugins/tftp/.libs/tftp.dll
command -v wine >/dev/null 2>&1 || { echo "1..0 # SKIP wine not installed"; exit 0; }
[ -f "$prebootd" ] || { echo "1..0 # SKIP no prebootd.exe (not a Windows build)"; exit 0; }
[ -f "$plugin" ] || { echo "1..0 # SKIP the tftp plugin DLL is not built"; exit 0; }
command -v curl >/dev/null 2>&1 && curl --version | grep -qw tftp || {
    echo "1..0 # SKIP curl with tftp:// support is not installed"
    exit 0
}

: "${WINEPREFIX:=${HOME}/.cache/preboot-win32/wineprefix}"
export WINEPREFIX WINEARCH=win64 WINEDEBUG=${WINEDEBUG:--all} WINEDLLOVERRIDES="mscoree,mshtml="
unset DISPLAY
: "${WIN32_PREFIX:=$(${PKG_CONFIG:-pkg-config} --variable=prefix glib-2.0 2>/dev/null)}"
WINEPATH=$(winepath -w "$WIN32_PREFIX/bin" 2>/dev/null)
export WINEPATH

tmp=$(mktemp -d "${TMPDIR:-/tmp}/preboot-wine-tftp.XXXXXX")
pid=
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null
        sleep 1
        kill -9 "$pid" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
win() { winepath -w "$1" 2>/dev/null; }

port=$(pick_port 1)
mkdir -p "$tmp/root/boot" "$tmp/logs" "$tmp/state" "$tmp/run"
# sizes that end mid-block and on a block boundary
head -c 300001 /dev/urandom >"$tmp/root/image.bin"
head -c 2856 /dev/urandom >"$tmp/root/boot/pxe.0"
echo "secret outside the root" >"$tmp/secret.txt"

rootwin=$(win "$tmp/root")
case $rootwin in
[A-Za-z]:\\*) ;;
*) echo "1..0 # SKIP winepath gives no Windows path for $tmp ($rootwin)"; exit 0 ;;
esac
# The legacy file as Windows keeps it: CRLF, a drive letter and backslashes.
printf '%s\r\n' "# novell-tftp.conf (Windows)" "TFTPInterface = 127.0.0.1" \
    "TFTPDirectory = $rootwin" "TransferBlockSize = 1428" "TFTPLogLevel = 3" \
    >"$tmp/novell-tftp.conf"
cat >"$tmp/preboot.yaml" <<EOF
daemon:
  plugin_path: ['$(win "$top_builddir/plugins/tftp/.libs")']
  log_dir: '$(win "$tmp/logs")'
  state_dir: '$(win "$tmp/state")'
  pid_file: '$(win "$tmp/run/prebootd.pid")'
  control_socket: '$(win "$tmp/run/control")'
plugins:
  - module: tftp
    legacy: '$(win "$tmp/novell-tftp.conf")'
    port: $port
EOF

echo "1..11"
diag "TFTPDirectory = $rootwin, port $port"
(cd "$tmp" && exec wine "$prebootd" -f -c "$(win "$tmp/preboot.yaml")") \
    >"$tmp/daemon.out" 2>&1 &
pid=$!

# Up when the daemon answers a TFTP request (wine takes a few seconds to start).
fetch() { curl -s -S --max-time 10 -o "$2" "tftp://127.0.0.1:$port/$1"; }
# Bounded at 180 s: a loaded machine running other wine tests at once is slow to start one.
i=0
while [ $i -lt 360 ] && kill -0 "$pid" 2>/dev/null; do
    fetch boot/pxe.0 "$tmp/probe" 2>/dev/null && break
    sleep 0.5
    i=$((i + 1))
done
if ! cmp -s "$tmp/probe" "$tmp/root/boot/pxe.0"; then
    not_ok "prebootd.exe serves TFTP from the legacy configuration"
    if kill -0 "$pid" 2>/dev/null; then diag "still running after $((i / 2)) s"; else diag "exited"; fi
    diag "daemon output:"; cat "$tmp/daemon.out" "$tmp"/logs/*.log 2>/dev/null | tail -40 | sed "s/^/#   /"
    exit 1
fi
ok "prebootd.exe serves TFTP from a legacy novell-tftp.conf with a Windows TFTPDirectory"

fetch image.bin "$tmp/got-curl"
check "curl: 300001-byte file bit-exact" cmp -s "$tmp/got-curl" "$tmp/root/image.bin"
curl -s -S --max-time 20 --tftp-blksize 512 -o "$tmp/got-512" "tftp://127.0.0.1:$port/image.bin"
check "curl --tftp-blksize 512: bit-exact" cmp -s "$tmp/got-512" "$tmp/root/image.bin"

if command -v atftp >/dev/null 2>&1; then
    timeout 20 atftp -g -r boot/pxe.0 -l "$tmp/got-atftp" 127.0.0.1 "$port" >/dev/null 2>&1
    check "atftp: file in a subdirectory bit-exact" cmp -s "$tmp/got-atftp" "$tmp/root/boot/pxe.0"
else
    skip "atftp not installed"
fi

# Refused names: nothing may come back, least of all the secret.
refused() { # refused DESCRIPTION URL-PATH
    rm -f "$tmp/leak"
    if curl -s --max-time 10 -o "$tmp/leak" "tftp://127.0.0.1:$port/$2" 2>/dev/null; then
        not_ok "$1 (the transfer succeeded)"
    elif [ -s "$tmp/leak" ] && grep -q secret "$tmp/leak"; then
        not_ok "$1 (the secret leaked)"
    else
        ok "$1"
    fi
}
refused 'backslash traversal ..\secret.txt refused' '..%5Csecret.txt'
refused 'backslash traversal boot\..\..\secret.txt refused' 'boot%5C..%5C..%5Csecret.txt'
secretwin=$(win "$tmp/secret.txt" | sed 's/\\/%5C/g')
refused 'absolute Windows path of a file outside the root refused' "$secretwin"
refused 'reserved device name NUL refused' 'boot/NUL'
refused 'alternate data stream refused' 'image.bin::$DATA'

# A clean stop over the control channel: prebootctl.exe when built, else the wire
# protocol itself (token line, then NUL-terminated argv and an empty one).
ctl=$tmp/run/control
stopped=no
if [ -f "$prebootctl" ]; then
    timeout 60 wine "$prebootctl" -s "$(win "$ctl")" -p "$(win "$tmp/run/prebootd.pid")" stop \
        >"$tmp/ctl.out" 2>&1 && stopped=prebootctl
fi
if [ $stopped = no ] && [ -f "$ctl" ] && command -v python3 >/dev/null 2>&1; then
    python3 - "$ctl" >"$tmp/ctl.out" 2>&1 <<'EOF' && stopped=wire
import socket, sys
host, port, token = open(sys.argv[1]).read().split()
s = socket.create_connection((host, int(port)), timeout=20)
s.sendall(token.encode() + b"\n" + b"stop\0\0")
reply = b""
while True:
    b = s.recv(4096)
    if not b:
        break
    reply += b
print(reply.decode(errors="replace"))
sys.exit(0 if reply.startswith(b"OK") else 1)
EOF
fi
i=0
while [ $i -lt 300 ] && kill -0 "$pid" 2>/dev/null; do
    sleep 0.1
    i=$((i + 1))
done
if kill -0 "$pid" 2>/dev/null; then
    not_ok "the daemon stops on request (still running; stop via $stopped)"
    sed 's/^/#   /' "$tmp/ctl.out" 2>/dev/null
else
    wait "$pid"
    rc=$?
    pid=
    if [ "$rc" -eq 0 ] && [ $stopped != no ]; then
        ok "the daemon stops cleanly on request (via $stopped), exit status 0"
    else
        not_ok "the daemon stops cleanly on request (via $stopped, exit status $rc)"
        sed 's/^/#   /' "$tmp/ctl.out" "$tmp/daemon.out" 2>/dev/null | tail -30
    fi
fi
check "the pid file and the control file are removed" \
    test ! -e "$tmp/run/prebootd.pid" -a ! -e "$ctl"
[ "$failed" -eq 0 ]

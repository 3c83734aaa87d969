#!/bin/sh
# test-wine-imaging.sh - the imaging server of the Windows build end to end under wine:
# prebootd.exe loads the http and imaging plugin DLLs, and the imaging plugin its default
# backend libpreboot-local.dll by name (LIBRARY_NAME empty); curl from Linux, over loopback,
# uploads the chunks of a small image (tests/fuzz/corpus/image-archive/mbr-tiny.pbi, taken
# apart here), commits its manifest and downloads both again bit-exact. A corrupted chunk
# and a put without the credential are refused. The store is the Windows twin's
# (lib/image/image-os-win32.c): its files must hold exactly the bytes sent (no text-mode
# CRLF), and no temporary may be left. The daemon stops cleanly through its control
# channel. Prints TAP.
#
# Needs a cross build (./configure --host=x86_64-w64-mingw32) with the imaging plugin, wine,
# curl, python3 and zstd; skips otherwise. All traffic is on 127.0.0.1; every wait is bounded.
set -u
top_builddir=${top_builddir:-$(pwd)}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
. "$top_srcdir/tests/tap.sh"

exe() { if [ -f "$(dirname "$1")/.libs/$(basename "$1")" ]; then echo "$(dirname "$1")/.libs/$(basename "$1")"; else echo "$1"; fi; }
prebootd=$(exe "$top_builddir/core/prebootd.exe")
prebootctl=$(exe "$top_builddir/tools/prebootctl.exe")
B=$top_builddir
command -v wine >/dev/null 2>&1 || skip_all "wine not installed"
[ -f "$prebootd" ] || skip_all "no prebootd.exe (not a Windows build)"
for d in plugins/http/.libs/http.dll plugins/imaging/.libs/imaging.dll \
    backends/local/.libs/libpreboot-local.dll; do
    [ -f "$B/$d" ] || skip_all "$d is not built"
done
for c in curl python3 zstd; do
    command -v $c >/dev/null 2>&1 || skip_all "$c is not installed"
done

: "${WINEPREFIX:=${HOME}/.cache/preboot-win32/wineprefix}"
export WINEPREFIX WINEARCH=win64 WINEDEBUG=${WINEDEBUG:--all} WINEDLLOVERRIDES="mscoree,mshtml="
unset DISPLAY
: "${WIN32_PREFIX:=$(${PKG_CONFIG:-pkg-config} --variable=prefix glib-2.0 2>/dev/null)}"
WINEPATH=$(winepath -w "$WIN32_PREFIX/bin" 2>/dev/null)
export WINEPATH

T=$(mktemp -d "${TMPDIR:-/tmp}/preboot-wine-imaging.XXXXXX")
pid=
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null
        sleep 1
        kill -9 "$pid" 2>/dev/null
    fi
    rm -rf "$T"
}
trap cleanup EXIT INT TERM
win() { winepath -w "$1" 2>/dev/null; }

# The image: its manifest and its chunks as the archive holds them (preboot-image(5):
# a 32-byte header with the manifest's length at 16, then records of 48 bytes, "PBCK",
# the codec at 4, the hash at 8 and the stored length at 40, each followed by its bytes).
mkdir -p "$T/src" "$T/logs" "$T/state" "$T/run"
python3 - "$top_srcdir/tests/fuzz/corpus/image-archive/mbr-tiny.pbi" "$T/src" <<'EOF'
import struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack_from("<Q", b, 16)[0]
open(sys.argv[2] + "/img.pbm", "wb").write(b[32:32 + n])
pos = 32 + n
with open(sys.argv[2] + "/chunks", "w") as idx:
    while b[pos:pos + 4] == b"PBCK":
        codec, h = b[pos + 4], b[pos + 8:pos + 40].hex()
        size = struct.unpack_from("<Q", b, pos + 40)[0]
        open(sys.argv[2] + "/" + h, "wb").write(b[pos + 48:pos + 48 + size])
        idx.write("%s %s\n" % (h, "zstd" if codec == 1 else "none"))
        pos += 48 + size
EOF
M=$T/src/img.pbm
[ -s "$M" ] && [ -s "$T/src/chunks" ] || skip_all "could not take the test archive apart"
cut -d' ' -f1 "$T/src/chunks" >"$T/src/hashes"

port=$(pick_port 5)
U=http://127.0.0.1:$port/imaging/v1
A="Authorization: Bearer t0k3n-wine"
code() { curl -s --max-time 20 -o "$T/body" -w '%{http_code}' "$@"; }
store=$(win "$T/store")
cat >"$T/preboot.yaml" <<EOF
daemon:
  plugin_path: ['$(win "$B/plugins/http/.libs")', '$(win "$B/plugins/imaging/.libs")', '$(win "$B/backends/local/.libs")']
  log_dir: '$(win "$T/logs")'
  state_dir: '$(win "$T/state")'
  pid_file: '$(win "$T/run/prebootd.pid")'
  control_socket: '$(win "$T/run/control")'
plugins:
  - module: http
    listen: 127.0.0.1
    port: $port
  - module: imaging
    store: '$store'
    upload_token: t0k3n-wine
EOF

echo "1..13"
printf "# store %s, port %s\n" "$store" "$port"
(cd "$T" && exec wine "$prebootd" -f -c "$(win "$T/preboot.yaml")") >"$T/daemon.out" 2>&1 &
pid=$!
# Up when the API answers (wine takes a few seconds to start; bounded at 180 s on a loaded
# machine).
i=0
while [ $i -lt 360 ] && kill -0 "$pid" 2>/dev/null; do
    [ "$(code "$U/images")" = 200 ] && break
    sleep 0.5
    i=$((i + 1))
done
if [ "$(code "$U/images")" != 200 ]; then
    not_ok "prebootd.exe serves the imaging API (imaging.dll, libpreboot-local.dll)"
    diag "daemon output:"
    cat "$T/daemon.out" "$T"/logs/*.log 2>/dev/null | tail -40 | sed "s/^/#   /"
    exit 1
fi
ok "prebootd.exe serves the imaging API (imaging.dll, libpreboot-local.dll)"

# put HASH CODEC FILE [CURL ARGS...]; the decoded length is what the chunk covers
put() {
    h=$1 c=$2 f=$3
    shift 3
    if [ "$c" = zstd ]; then len=$(zstd -dc <"$f" | wc -c); else len=$(wc -c <"$f"); fi
    code -X PUT -H "X-Preboot-Codec: $c" -H "X-Preboot-Length: $len" --data-binary "@$f" \
        "$@" "$U/chunks/$h"
}
h1=$(head -n 1 "$T/src/hashes")
check "a chunk put without the credential is 401" [ "$(put "$h1" zstd "$T/src/$h1")" = 401 ]
head -c 56 /dev/urandom >"$T/rand"
check "a chunk whose bytes do not match its hash is refused" \
    [ "$(code -X PUT -H "$A" -H 'X-Preboot-Codec: none' -H 'X-Preboot-Length: 56' \
        --data-binary "@$T/rand" "$U/chunks/$h1")" = 422 ]
stored=0
while read -r h c; do
    [ "$(put "$h" "$c" "$T/src/$h" -H "$A")" = 201 ] && stored=$((stored + 1))
done <"$T/src/chunks"
check "the image's chunks are stored (201)" [ "$stored" -eq "$(wc -l <"$T/src/chunks")" ]
code -X POST --data-binary "@$T/src/hashes" "$U/chunks/missing" >/dev/null
check "chunks/missing then names none" [ ! -s "$T/body" ]
check "the commit creates the image (201)" \
    [ "$(code -X PUT -H "$A" -H 'If-None-Match: *' --data-binary "@$M" "$U/images/img1")" = 201 ]
code "$U/images" >/dev/null
contains "the catalog lists it" "$(cat "$T/body")" '"name":"img1"'
check "the manifest downloads bit-exact" sh -c "[ \"\$(curl -s --max-time 20 -o '$T/got.pbm' -w '%{http_code}' '$U/images/img1')\" = 200 ] && cmp -s '$T/got.pbm' '$M'"
ok_get=0
while read -r h c; do
    [ "$(code "$U/chunks/$h")" = 200 ] && cmp -s "$T/body" "$T/src/$h" && ok_get=$((ok_get + 1))
done <"$T/src/chunks"
check "every chunk downloads bit-exact" [ "$ok_get" -eq "$(wc -l <"$T/src/chunks")" ]
# What Windows wrote: the store's files hold exactly the bytes sent.
check "the store's manifest file is the manifest, byte for byte" cmp -s "$T/store/images/img1.pbm" "$M"
check "no temporary file is left in the store" [ -z "$(ls "$T/store/tmp" 2>/dev/null)" ]

# A clean stop over the control channel.
stopped=no
timeout 60 wine "$prebootctl" -s "$(win "$T/run/control")" -p "$(win "$T/run/prebootd.pid")" stop \
    >"$T/ctl.out" 2>&1 && stopped=yes
i=0
while [ $i -lt 300 ] && kill -0 "$pid" 2>/dev/null; do
    sleep 0.1
    i=$((i + 1))
done
if kill -0 "$pid" 2>/dev/null; then
    not_ok "the daemon stops on request (still running)"
else
    wait "$pid"
    rc=$?
    pid=
    check "the daemon stops cleanly on request, exit status 0" [ "$rc" -eq 0 ] && [ $stopped = yes ]
fi
check "the pid file and the control file are removed" \
    test ! -e "$T/run/prebootd.pid" -a ! -e "$T/run/control"
if [ "$failed" -ne 0 ]; then
    diag "daemon output:"
    cat "$T/daemon.out" "$T"/logs/*.log 2>/dev/null | tail -40 | sed "s/^/#   /"
fi
[ "$failed" -eq 0 ]

#!/bin/sh
# test-imaging-referral.sh - referrals followed end to end, between two prebootd on loopback:
#   an image the catalog places on the other server (prebootctl imaging refer) is answered 307
#   and preboot-img restore (and curl -L) restore it bit-exact from there; a server at
#   max_transfers refers downloads of manifests and chunks to its referral_peers and the
#   client is served there, chunks verified the same way (a bad one from the referred server
#   fails the restore); two servers referring an image to
#   each other make the client stop after a bounded number of redirects, with a clear error.
. "$top_srcdir/tests/tap.sh"
command -v curl >/dev/null 2>&1 || skip_all "curl is not installed"
command -v sha256sum >/dev/null 2>&1 || skip_all "sha256sum is not installed"
B=$top_builddir
[ -x "$B/tools/preboot-img" ] || skip_all "preboot-img is not built (lib/image: Linux only)"
T=$(mktemp -d "${TMPDIR:-/tmp}/imaging-referral.XXXXXX")
pida= pidb= slow=
cleanup() {
    [ -n "$slow" ] && kill "$slow" 2>/dev/null
    [ -n "$pida" ] && kill "$pida" 2>/dev/null && wait "$pida" 2>/dev/null
    [ -n "$pidb" ] && kill "$pidb" 2>/dev/null && wait "$pidb" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT INT TERM
pa=$(pick_port 19)
pb=$(pick_port 23)
SA=127.0.0.1:$pa SB=127.0.0.1:$pb
UA=http://$SA/imaging/v1 UB=http://$SB/imaging/v1
TOKEN=referral-token-$$
printf '%s\n' "$TOKEN" >"$T/token"
A="Authorization: Bearer $TOKEN"
code() { curl -s -o "$T/body" -w '%{http_code}' --max-time 20 "$@"; }
IMG() { "$B/tools/preboot-img" "$@" --chunk-size 1048576 --token-file "$T/token" >>"$T/img.log" 2>&1; }

config() { # NAME PORT [EXTRA IMAGING LINES]
    mkdir -p "$T/$1"
    cat >"$T/$1/p.yaml" <<EOC
daemon:
  plugin_path: [$B/plugins/http/.libs, $B/plugins/imaging/.libs, $B/backends/local/.libs]
  log_dir: $T/$1/log
  state_dir: $T/$1/state
  pid_file: $T/$1/prebootd.pid
  control_socket: $T/$1/control.sock
plugins:
  - module: http
    listen: 127.0.0.1
    port: $2
    connection_timeout: 600
  - module: imaging
    store: $T/$1/store
    upload_token: $TOKEN
    upload_networks: [127.0.0.0/8]
$3
EOC
}
ctla() { "$B/tools/prebootctl" -c "$T/a/p.yaml" "$@"; }
ctlb() { "$B/tools/prebootctl" -c "$T/b/p.yaml" "$@"; }
# A takes its uploads with the usual limits; it is brought down to one transfer at once
# (a reload) for the busy part.
config a "$pa" "    referral_peers: [$SB]"
config b "$pb" ""
"$B/core/prebootd" -f -c "$T/a/p.yaml" >>"$T/a/stderr" 2>&1 &
pida=$!
"$B/core/prebootd" -f -c "$T/b/p.yaml" >>"$T/b/stderr" 2>&1 &
pidb=$!
check "server A starts" wait_until 20 sh -c "curl -s -o /dev/null --max-time 2 '$UA/images'"
check "server B starts" wait_until 20 sh -c "curl -s -o /dev/null --max-time 2 '$UB/images'"

head -c 3000000 /dev/urandom >"$T/disk.img"
truncate -s 6M "$T/disk.img"
check "B holds image far" IMG make "$T/disk.img" "$SB:far"
check "both hold image both" IMG make "$T/disk.img" "$SA:both" && IMG make "$T/disk.img" "$SB:both"
"$B/tools/preboot-img" make "$T/disk.img" "$T/src:far" --chunk-size 1048576 >/dev/null 2>&1
h1=$(awk '$1 == "c" {print $2; exit}' "$T/src/images/far.pbm")
f1=$(ls "$T"/src/chunks/*/"$h1".* | head -n 1)

# ---- the catalog places an image on the other server ---------------------------------------
check "A has no image far" [ "$(code "$UA/images/far")" = 404 ]
out=$(ctla imaging refer far "$SB" 2>&1)
contains "prebootctl imaging refer" "$out" "image far is on $SB"
out=$(ctla imaging refer far 'no/such server' 2>&1)
contains "a server that is no HOST:PORT is refused" "$out" "is no imaging server"
contains "A's catalog says where it is" "$(ctla imaging list 2>&1)" "on $SB"
code "$UA/images" >/dev/null
contains "and so does GET images" "$(cat "$T/body")" "\"location\":\"$SB\""
hdr=$(curl -s -o /dev/null -D - "$UA/images/far")
contains "A answers the manifest with 307" "$hdr" "307"
contains "to B" "$hdr" "Location: http://$SB/imaging/v1/images/far"
check "curl -L follows it to B's manifest" sh -c "curl -sf -L '$UA/images/far' | cmp -s - '$T/src/images/far.pbm'"
truncate -s 6M "$T/r1.img"
check "preboot-img restore A:far is referred to B" IMG restore "$SA:far" "$T/r1.img"
check "... and restores bit-exact" cmp -s "$T/disk.img" "$T/r1.img"
out=$(ctla imaging log 2>&1)
contains "A logs the referral" "$out" "referred"
contains "A counts it as referred" "$(ctla stats 2>&1)" "referred = "
check "A's store does not list far as restorable" [ ! -e "$T/a/store/images/far.pbm" ]
# An image stored here, moved: the same command keeps its totals.
check "A holds image moved" IMG make "$T/disk.img" "$SA:moved"
check "B holds it too" IMG make "$T/disk.img" "$SB:moved"
ctla imaging refer moved "http://$SB" >/dev/null 2>&1
contains "an image moved keeps its totals" "$(ctla imaging info moved 2>&1)" "disk size:    6291456 bytes"
hdr=$(curl -s -o /dev/null -D - "$UA/images/moved")
contains "and is referred, to a URL as given" "$hdr" "Location: http://$SB/imaging/v1/images/moved"
truncate -s 6M "$T/r2.img"
check "preboot-img restores the moved image" IMG restore "$SA:moved" "$T/r2.img"
check "... bit-exact" cmp -s "$T/disk.img" "$T/r2.img"
quiet() { "$@" >/dev/null 2>&1; }
check "imaging delete removes a referral" quiet ctla imaging delete moved
check "A then has no image moved" [ "$(code "$UA/images/moved")" = 404 ]

# ---- a server at max_transfers refers to its peers -------------------------------------------
referred() { ctla stats 2>&1 | sed -n 's/.*imaging: referred = \([0-9]*\).*/\1/p'; }
nchunks=$(awk '$1 == "c" {print $2}' "$T/src/images/far.pbm" | sort -u | wc -l)
config a "$pa" "    max_transfers: 1
    referral_peers: [$SB]"
check "A reloads with max_transfers 1" quiet ctla force-reload
transfers() { ctla status >"$T/st" 2>&1; grep -q "transfers: $1\$" "$T/st"; }
head -c 33554432 /dev/urandom >"$T/huge"
hh=$(sha256sum "$T/huge" | cut -d' ' -f1)
check "A stores a 32 MiB chunk" [ "$(code -X PUT -H "$A" -H 'X-Preboot-Codec: none' \
    -H 'X-Preboot-Length: 33554432' --data-binary "@$T/huge" "$UA/chunks/$hh")" = 201 ]
check "no transfer is held" wait_until 20 transfers 0
curl -s -o /dev/null --limit-rate 1k "$UA/chunks/$hh" &
slow=$!
check "a slow download holds A's one transfer" wait_until 20 transfers 1
hdr=$(curl -s -o /dev/null -D - "$UA/chunks/$h1")
contains "a chunk GET at the limit is 307" "$hdr" "307"
contains "to the peer" "$hdr" "Location: http://$SB/imaging/v1/chunks/$h1"
check "curl -L gets the chunk from the peer, byte for byte" \
    sh -c "curl -sf -L '$UA/chunks/$h1' | cmp -s - '$f1'"
check "uploads are not referred: 503 at the limit" \
    [ "$(code -X PUT -H "$A" -H 'X-Preboot-Codec: none' -H 'X-Preboot-Length: 1' -d x "$UA/chunks/$h1")" = 503 ]
# The manifest is A's own (a small answer, no transfer); every chunk GET is referred.
before=$(referred)
truncate -s 6M "$T/r3.img"
check "preboot-img restore A:both, its chunks referred to B" IMG restore "$SA:both" "$T/r3.img"
check "... restores bit-exact" cmp -s "$T/disk.img" "$T/r3.img"
check "A referred each of its chunk GETs" [ "$(referred)" -ge $((before + nchunks)) ]
check "the slow download still holds A's transfer (the referrals were at the limit)" transfers 1
kill "$slow" 2>/dev/null
wait "$slow" 2>/dev/null
slow=
check "A's transfer ends with its connection" wait_until 20 transfers 0
truncate -s 6M "$T/r4.img"
check "not at the limit, A serves both itself" IMG restore "$SA:both" "$T/r4.img"
check "... bit-exact" cmp -s "$T/disk.img" "$T/r4.img"

# ---- a referral loop is bounded ---------------------------------------------------------------
ctla imaging refer loop "$SB" >/dev/null 2>&1
ctlb imaging refer loop "$SA" >/dev/null 2>&1
curl -s -o /dev/null -L --max-redirs 10 --max-time 20 "$UA/images/loop"
check "curl -L stops at its redirect limit (47)" [ $? -eq 47 ]
: >"$T/img.log"
truncate -s 6M "$T/r5.img"
IMG restore "$SA:loop" "$T/r5.img"
check "preboot-img restore of a referral loop fails" [ $? -ne 0 ]
contains "saying why" "$(cat "$T/img.log")" "redirect"
# ---- the referred server's chunks are checked like any -----------------------------------------
# B's copy of a chunk of far goes bad (another chunk's bytes under its name): the restore
# through A's referral fails, naming it, rather than write wrong bytes.
hashes=$(awk '$1 == "c" {print $2}' "$T/src/images/far.pbm" | sort -u)
h2=$(printf '%s\n' "$hashes" | grep -v "^$h1\$" | head -n 1)
bad=$(ls "$T"/b/store/chunks/*/"$h1".* | head -n 1)
other=$(ls "$T"/b/store/chunks/*/"$h2".* | head -n 1)
cp "$other" "$bad"
: >"$T/img.log"
truncate -s 6M "$T/r6.img"
IMG restore "$SA:far" "$T/r6.img"
check "a bad chunk from the referred server fails the restore" [ $? -ne 0 ]
contains "... naming it" "$(cat "$T/img.log")" "$h1"
grep -q "ERROR: AddressSanitizer\|runtime error" "$T/a/stderr" "$T/b/stderr" &&
    not_ok "no sanitizer report" || ok "no sanitizer report"
finish

#!/bin/sh
# test-imaging-daemon.sh - the imaging server in the real daemon, with curl: the whole API of
# doc/imaging-api.md (catalog, manifests, chunks with ranges, verified puts, commits that wait
# for every chunk, create-only races), access (networks, token), work through the policy
# service and result reports, the log and the legacy statistics (prebootctl stats,
# preboot-mcast), a bit-exact restore of what was uploaded, kill -9 in the middle of an
# upload, a full disk (a small tmpfs, root only), and the four legacy .conf files.
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/lib-imaging.sh"
command -v curl >/dev/null 2>&1 || skip_all "curl is not installed"
command -v sha256sum >/dev/null 2>&1 || skip_all "sha256sum is not installed"
B=$top_builddir
[ -x "$B/tools/preboot-img" ] || skip_all "preboot-img is not built (lib/image: Linux only)"
T=$(mktemp -d "${TMPDIR:-/tmp}/imaging-daemon.XXXXXX")
pid=
mnt=
cleanup() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    [ -n "$mnt" ] && umount "$mnt" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
port=$(pick_port 3)
U=http://127.0.0.1:$port/imaging/v1
TOKEN=t0k3n-for-tests
A="Authorization: Bearer $TOKEN"
ctl() { "$B/tools/prebootctl" -c "$T/p.yaml" "$@"; }
code() { curl -s -o "$T/body" -w '%{http_code}' "$@"; }
MAC=52:54:00:12:34:56

# ---- a disk image file and its image in a local store, to upload --------------------------
head -c 2500000 /dev/urandom >"$T/disk.img"
seq 1 300000 >>"$T/disk.img"
truncate -s 8M "$T/disk.img"
"$B/tools/preboot-img" make "$T/disk.img" "$T/src:img1" --chunk-size 1048576 >/dev/null 2>&1
check "preboot-img made the image to upload" [ -f "$T/src/images/img1.pbm" ]
M=$T/src/images/img1.pbm
awk '$1 == "c" {print $2, $3}' "$M" | sort -u >"$T/chunks"
cut -d' ' -f1 "$T/chunks" >"$T/hashes"
nchunks=$(wc -l <"$T/hashes")
diag "img1: $nchunks distinct data chunks"
# put_chunk HASH [CURL ARGS...]: PUT the chunk as the source store holds it
put_chunk() {
    h=$1
    shift
    f=$(ls "$T"/src/chunks/*/"$h".* 2>/dev/null | head -n 1)
    c=none
    case "$f" in *.zst) c=zstd ;; esac
    code -X PUT -H "X-Preboot-Codec: $c" -H "X-Preboot-Length: 1048576" --data-binary "@$f" \
        "$@" "$U/chunks/$h"
}

cat >"$T/rules.yaml" <<EOF
version: 1
imaging:
  kernel: http://127.0.0.1:$port/vmlinuz
EOF
write_config() { # STORE-DIRECTORY
    {
        imaging_config_head "$T/state" "$port" "$B/plugins/policy/.libs"
        cat <<EOF
  - module: policy
    port: 0
    rules_file: $T/rules.yaml
  - module: imaging
    store: $1
    upload_token: $TOKEN
    upload_networks: [127.0.0.1/32]
    max_transfers_per_address: 4
    max_transfers: 5
    referral_peers: [192.0.2.50:8080]
EOF
    } >"$T/p.yaml"
}
start() {
    "$B/core/prebootd" -f -c "$T/p.yaml" >>"$T/stderr" 2>&1 &
    pid=$!
    wait_until 20 ctl status
}
stop() { kill "$pid" && wait "$pid"; pid=; }

write_config "$T/store"
check "prebootd starts with http, policy and imaging" start
out=$(ctl status 2>&1)
contains "imaging runs on the local backend" "$out" "backend local"
contains "the API is on the listener" "$out" "api: /imaging/v1/"

# ---- the catalog and chunks before any upload ----------------------------------------------
check "an empty catalog" [ "$(code $U/images)" = 200 ]
contains "it lists no image" "$(cat "$T/body")" '{"images":[]}'
check "a missing image is 404" [ "$(code $U/images/img1)" = 404 ]
check "a missing chunk is 404" [ "$(code "$U/chunks/$(head -n 1 "$T/hashes")")" = 404 ]
check "a name outside the store is 404" [ "$(code "$U/images/..%2Fetc")" = 404 ]
check "a bad hash is 404" [ "$(code "$U/chunks/XYZ")" = 404 ]
check "chunks/missing answers" [ "$(code -X POST --data-binary "@$T/hashes" "$U/chunks/missing")" = 200 ]
check "every chunk is missing" [ "$(wc -l <"$T/body")" -eq "$nchunks" ]
check "chunks/missing refuses a line that is no hash" \
    [ "$(code -X POST --data-binary 'hello' "$U/chunks/missing")" = 400 ]

# ---- access ----------------------------------------------------------------------------------
h1=$(head -n 1 "$T/hashes")
# (a one-byte body: a refusal answers from the headers and closes, and a client still
# sending a large body may see the connection reset before it reads the answer)
put1() { code -X PUT -H 'X-Preboot-Codec: none' -H 'X-Preboot-Length: 1' -d x "$@" "$U/chunks/$h1"; }
check "a chunk put without a credential is 401" [ "$(put1)" = 401 ]
check "a chunk put with a wrong token is 401" [ "$(put1 -H 'Authorization: Bearer nope')" = 401 ]
check "a put from a network not allowed is 403" [ "$(put1 -H "$A" --interface 127.0.0.2)" = 403 ]
check "a delete without a credential is 401" [ "$(code -X DELETE "$U/images/img1")" = 401 ]
check "a report without a credential is 401" [ "$(code -X POST -d '{}' "$U/results")" = 401 ]

# ---- chunk puts: verified, corrupted refused ------------------------------------------------
head -c 1048576 /dev/urandom >"$T/rand"
check "a corrupted chunk is refused with 422" \
    [ "$(code -X PUT -H "$A" -H 'X-Preboot-Codec: none' -H 'X-Preboot-Length: 1048576' \
        --data-binary "@$T/rand" "$U/chunks/$h1")" = 422 ]
contains "the refusal says why" "$(cat "$T/body")" "hash mismatch"
check "nothing of it is kept" [ "$(code "$U/chunks/$h1")" = 404 ]
check "no temporary file is left" [ -z "$(ls "$T/store/tmp")" ]
last=$(tail -n 1 "$T/hashes")
ok_puts=0
for h in $(grep -v "$last" "$T/hashes"); do
    [ "$(put_chunk "$h" -H "$A")" = 201 ] && ok_puts=$((ok_puts + 1))
done
check "verified chunks are stored (201)" [ $ok_puts -eq $((nchunks - 1)) ]
check "a chunk stored already is 200" [ "$(put_chunk "$h1" -H "$A")" = 200 ]
code -X POST --data-binary "@$T/hashes" "$U/chunks/missing" >/dev/null
check "chunks/missing now names only the one not sent" [ "$(cat "$T/body")" = "$last" ]

# ---- commits -------------------------------------------------------------------------------
check "a commit naming a missing chunk is 409" \
    [ "$(code -X PUT -H "$A" --data-binary "@$M" "$U/images/img1")" = 409 ]
check "409 lists the missing hash" [ "$(cat "$T/body")" = "$last" ]
check "and the image is not visible" [ "$(code "$U/images/img1")" = 404 ]
check "a bad manifest is 400" [ "$(code -X PUT -H "$A" --data-binary 'not a manifest' "$U/images/bad")" = 400 ]
check "the last chunk is stored" [ "$(put_chunk "$last" -H "$A")" = 201 ]
check "the commit creates the image (201)" \
    [ "$(code -X PUT -H "$A" -H 'If-None-Match: *' --data-binary "@$M" "$U/images/img1")" = 201 ]
check "create-only on a taken name is 412" \
    [ "$(code -X PUT -H "$A" -H 'If-None-Match: *' --data-binary "@$M" "$U/images/img1")" = 412 ]
check "a plain commit replaces it (200)" [ "$(code -X PUT -H "$A" --data-binary "@$M" "$U/images/img1")" = 200 ]
# Two creators of one new name at once: exactly one wins.
rpids=
for i in 1 2 3 4; do
    curl -s -o /dev/null -w '%{http_code}\n' -X PUT -H "$A" -H 'If-None-Match: *' \
        --data-binary "@$M" "$U/images/race" >"$T/race$i" &
    rpids="$rpids $!"
done
for r in $rpids; do wait "$r"; done
wins=$(cat "$T"/race? | grep -c 201)
lost=$(cat "$T"/race? | grep -c 412)
check "a create-only race: one 201, the others 412" [ "$wins" -eq 1 ] && [ "$lost" -eq 3 ]

# ---- downloads -----------------------------------------------------------------------------
check "the catalog lists the image" [ "$(code $U/images)" = 200 ]
contains "with its seal" "$(cat "$T/body")" "\"seal\":\"$(awk '$1 == "seal" {print $3}' "$M")\""
check "GET of the manifest" [ "$(code "$U/images/img1")" = 200 ]
check "is the manifest sent" cmp -s "$T/body" "$M"
hdr=$(curl -sI "$U/images/img1")
contains "HEAD of the manifest has its ETag" "$hdr" "ETag: \"$(awk '$1 == "seal" {print $3}' "$M")\""
check "info is JSON" [ "$(code "$U/images/img1/info")" = 200 ]
contains "info names the image" "$(cat "$T/body")" '"name":"img1"'
f1=$(ls "$T"/src/chunks/*/"$h1".*)
check "a chunk GET" [ "$(code "$U/chunks/$h1")" = 200 ]
check "sends the stored bytes" cmp -s "$T/body" "$f1"
hdr=$(curl -s -D - -o "$T/part" -r 100-299 "$U/chunks/$h1")
contains "a Range gets 206" "$hdr" "206 Partial Content"
contains "with the cache headers" "$hdr" "Cache-Control: public, max-age=31536000, immutable"
contains "and the length once decoded" "$hdr" "X-Preboot-Length: 1048576"
check "the range is the right bytes" sh -c "dd if='$f1' bs=1 skip=100 count=200 2>/dev/null | cmp -s - '$T/part'"
check "a range past the end is 416" [ "$(code -r 99999999-99999999 "$U/chunks/$h1")" = 416 ]

# A restore of what the server holds, through the API only, bit-exact.
mkdir -p "$T/dl/images" "$T/dl/chunks" "$T/dl/tmp"
echo "preboot-store 1" >"$T/dl/preboot-store"
curl -s -o "$T/dl/images/img1.pbm" "$U/images/img1"
while read -r h c; do
    ext=raw
    [ "$c" = zstd ] && ext=zst
    mkdir -p "$T/dl/chunks/$(echo "$h" | cut -c1-2)"
    curl -s -o "$T/dl/chunks/$(echo "$h" | cut -c1-2)/$h.$ext" "$U/chunks/$h"
done <"$T/chunks"
truncate -s 8M "$T/restored.img"
"$B/tools/preboot-img" restore "$T/dl:img1" "$T/restored.img" >/dev/null 2>&1
check "an image downloaded through the API restores bit-exact" cmp -s "$T/disk.img" "$T/restored.img"

# ---- work through the policy service, results, the log, the statistics ---------------------
out=$(ctl policy assign $MAC "restore img1" once 2>&1)
contains "work assigned with prebootctl policy assign" "$out" "assigned restore img1"
check "GET work" [ "$(code "$U/work?mac=$MAC")" = 200 ]
work=$(cat "$T/body")
contains "the device's work is the restore" "$work" '"action":"restore","image":"img1"'
wid=$(printf '%s' "$work" | sed -n 's/.*"work_id":"\([0-9a-f]*\)".*/\1/p')
check "the work has an id" [ -n "$wid" ]
code "$U/work?mac=$MAC" >/dev/null
contains "asking again does not use it up" "$(cat "$T/body")" '"action":"restore"'
check "a report of the result (204)" [ "$(code -X POST -H "$A" -H 'Content-Type: application/json' \
    -d "{\"mac\":\"$MAC\",\"type\":\"restore\",\"image\":\"img1\",\"result\":\"ok\",\"message\":\"done in test\",\"bytes_written\":8388608,\"duration_ms\":1200,\"work_id\":\"$wid\"}" \
    "$U/results")" = 204 ]
code "$U/work?mac=$MAC" >/dev/null
contains "one-shot work is used up by its report" "$(cat "$T/body")" '"action":"none"'
check "a bad report is 400" [ "$(code -X POST -H "$A" -d '{"type":"restore"' "$U/results")" = 400 ]
check "the log" [ "$(code "$U/log?limit=50")" = 200 ]
contains "the log has the report" "$(cat "$T/body")" '"type":"restore","image":"img1","result":"ok","message":"done in test"'
contains "the log has the upload" "$(cat "$T/body")" '"type":"upload","image":"img1","result":"ok"'
contains "the log has the refusals" "$(cat "$T/body")" '"result":"denied"'
out=$(ctl imaging log 2>&1)
contains "prebootctl imaging log" "$out" "done in test"
out=$(ctl imaging log --json 2>&1)
contains "prebootctl imaging log --json" "$out" '"source":"127.0.0.1","mac":"52:54:00:12:34:56"'
out=$(ctl imaging list 2>&1)
contains "prebootctl imaging list" "$out" "img1"
out=$(ctl imaging info img1 2>&1)
contains "prebootctl imaging info" "$out" "seal:"
out=$(ctl stats 2>&1)
contains "prebootctl stats: Images Received" "$out" "imaging: Images Received = 2"
contains "prebootctl stats: Images Sent" "$out" "imaging: Images Sent = 1"
contains "prebootctl stats: PXE Requests" "$out" "imaging: PXE Requests = "
out=$("$B/tools/preboot-mcast" -c "$T/p.yaml" -status 2>&1)
contains "preboot-mcast -status: received" "$out" "Images Received  2"
contains "preboot-mcast -status: sent" "$out" "Images Sent      1"
contains "preboot-mcast -status: no sessions" "$out" "no multicast sessions"
out=$("$B/tools/preboot-mcast" -c "$T/p.yaml" -status --json 2>&1)
contains "preboot-mcast -status --json" "$out" '"images_sent":1,"images_received":2,"sessions":[]'
code "$U/stats" >/dev/null
contains "GET stats" "$(cat "$T/body")" '"images_sent":1,"images_received":2'

# ---- delete --------------------------------------------------------------------------------
check "DELETE with the credential (204)" [ "$(code -X DELETE -H "$A" "$U/images/race")" = 204 ]
check "the deleted image is gone" [ "$(code "$U/images/race")" = 404 ]
check "a second DELETE is 404" [ "$(code -X DELETE -H "$A" "$U/images/race")" = 404 ]

# ---- kill -9 in the middle of an upload, then resume ---------------------------------------
stop # a clean stop first: under ASan, LeakSanitizer checks everything above
check "prebootd starts again" start
head -c 4194304 /dev/urandom >"$T/big"
hb=$(sha256sum "$T/big" | cut -d' ' -f1)
curl -s -o /dev/null --limit-rate 200k -X PUT -H "$A" -H 'X-Preboot-Codec: none' \
    -H 'X-Preboot-Length: 4194304' --data-binary "@$T/big" "$U/chunks/$hb" &
cpid=$!
check "the upload is on its way (a temporary file)" \
    wait_until 20 sh -c "ls '$T/store/tmp/' | grep -q srv- && [ \$(du -b '$T'/store/tmp/srv-* | cut -f1 | head -n 1) -gt 0 ]"
kill -9 "$pid"
wait "$pid" 2>/dev/null
pid=
wait "$cpid" 2>/dev/null
check "prebootd restarts" start
check "the temporary file is cleaned" [ -z "$(ls "$T/store/tmp")" ]
check "the half chunk is not visible" [ "$(code "$U/chunks/$hb")" = 404 ]
check "chunks/missing names it" [ "$(code -X POST -d "$hb" "$U/chunks/missing")" = 200 ] &&
    [ "$(cat "$T/body")" = "$hb" ]
check "the upload resumes" [ "$(code -X PUT -H "$A" -H 'X-Preboot-Codec: none' \
    -H 'X-Preboot-Length: 4194304' --data-binary "@$T/big" "$U/chunks/$hb")" = 201 ]
check "the earlier image survived" [ "$(code "$U/images/img1")" = 200 ]

# ---- one unfriendly client, and a server at its limit --------------------------------------
# Slow clients of a chunk larger than what the kernel's socket buffers absorb on loopback
# (several MB each way): their transfers last until they go.
head -c 33554432 /dev/urandom >"$T/huge"
hh=$(sha256sum "$T/huge" | cut -d' ' -f1)
check "a 32 MiB chunk is stored" [ "$(code -X PUT -H "$A" -H 'X-Preboot-Codec: none' \
    -H 'X-Preboot-Length: 33554432' --data-binary "@$T/huge" "$U/chunks/$hh")" = 201 ]
transfers() { ctl status >"$T/st" 2>&1; grep -q "transfers: $1\$" "$T/st"; }
check "no transfer is held between requests" wait_until 20 transfers 0
slow=
for i in 1 2 3 4; do
    curl -s -o /dev/null --limit-rate 1k "$U/chunks/$hh" &
    slow="$slow $!"
done
check "four slow downloads hold four transfers" wait_until 20 transfers 4
check "a fifth from the same address is 429" [ "$(code "$U/chunks/$hh")" = 429 ]
curl -s -o /dev/null --limit-rate 1k --interface 127.0.0.2 "$U/chunks/$hh" &
slow="$slow $!"
check "another address gets the last one" wait_until 20 transfers 5
hdr=$(curl -s -o /dev/null -D - --interface 127.0.0.3 "$U/chunks/$hh")
contains "at the limit a download is referred to a peer" "$hdr" "307"
contains "with the peer's URL" "$hdr" "Location: http://192.0.2.50:8080/imaging/v1/chunks/$hh"
for s in $slow; do kill "$s" 2>/dev/null; wait "$s" 2>/dev/null; done
check "their transfers end with their connections" wait_until 20 transfers 0
out=$(ctl stats 2>&1)
contains "statistics are reset at restart" "$out" "imaging: Images Received = 0"
stop

# ---- the four legacy .conf files -----------------------------------------------------------
mkdir "$T/legacy"
cp "$top_srcdir"/tests/data/legacy/*.conf "$T/legacy/"
# The reference's TFTP root (/srv/tftp) need not exist here: a start would refuse it.
mkdir -p "$T/legacy-tftp"
sed -i "s|^TFTPDirectory *=.*|TFTPDirectory = $T/legacy-tftp|" "$T/legacy/novell-tftp.conf"
pd() { "$B/core/prebootd" -P "$B/plugins/tftp" -P "$B/plugins/proxydhcp" -P "$B/plugins/policy" \
    -P "$B/plugins/http" -P "$B/plugins/imaging" "$@"; }
out=$(pd -c "$T/legacy" --check-config 2>&1)
check "the four legacy files pass --check-config" [ $? -eq 0 ]
case "$out" in
*"no plugin"*) not_ok "no file is left without a plugin"; diag "$out" ;;
*) ok "no file is left without a plugin" ;;
esac
out=$(pd -c "$T/legacy/novell-pbserv.conf" --dump-config 2>&1)
contains "EnableLogging is read from the file" "$out" "enable_logging: yes    # $T/legacy/novell-pbserv.conf:4 (EnableLogging)"
contains "LIBRARY_NAME= empty: the local backend" "$out" 'library_name: ""' 
# The daemon on novell-pbserv.conf, with an HTTP listener added in YAML.
{
    imaging_config_head "$T/state2"
    cat <<EOF
  - module: imaging
    legacy: $T/legacy/novell-pbserv.conf
EOF
} >"$T/p.yaml"
check "prebootd starts on novell-pbserv.conf" start
check "and serves the API" [ "$(code "$U/images")" = 200 ]
check "writes are refused without a configured token" [ "$(put1 -H "$A")" = 403 ]
check "its log file is novell-pbserv.log" [ -f "$T/log/novell-pbserv.log" ]
stop

# ---- a full disk -----------------------------------------------------------------------------
if [ "$(id -u)" != 0 ]; then
    skip "a full disk fails an upload with 507 (needs root for a tmpfs)"
else
    mnt=$T/small
    mkdir -p "$mnt"
    if mount -t tmpfs -o size=8m tmpfs "$mnt" 2>/dev/null; then
        write_config "$mnt/store"
        start
        for h in $(cat "$T/hashes"); do put_chunk "$h" -H "$A" >/dev/null; done
        check "an image fits" [ "$(code -X PUT -H "$A" --data-binary "@$M" "$U/images/img1")" = 201 ]
        full=
        for i in 1 2 3 4; do
            head -c 2097152 /dev/urandom >"$T/fill"
            hf=$(sha256sum "$T/fill" | cut -d' ' -f1)
            c=$(code -X PUT -H "$A" -H 'X-Preboot-Codec: none' -H 'X-Preboot-Length: 2097152' \
                --data-binary "@$T/fill" "$U/chunks/$hf")
            [ "$c" = 507 ] && { full=yes; break; }
        done
        check "the disk filling fails the upload with 507" [ "$full" = yes ]
        contains "saying why" "$(cat "$T/body")" "No space left"
        check "that chunk is not visible" [ "$(code "$U/chunks/$hf")" = 404 ]
        check "no temporary file is left" [ -z "$(ls "$mnt/store/tmp")" ]
        bad=0
        while read -r h c; do
            code "$U/chunks/$h" >/dev/null
            cmp -s "$T/body" "$(ls "$T"/src/chunks/*/"$h".*)" || bad=$((bad + 1))
        done <"$T/chunks"
        check "the earlier image is intact" [ $bad -eq 0 ] && [ "$(code "$U/images/img1")" = 200 ]
        stop
        umount "$mnt"
        mnt=
    else
        skip "a full disk fails an upload with 507 (tmpfs mount refused)"
    fi
fi
grep -i "sanitizer\|runtime error" "$T/stderr" >/dev/null && { not_ok "no sanitizer report"; sed 's/^/# /' "$T/stderr" | tail -30; } || ok "no sanitizer report"
finish

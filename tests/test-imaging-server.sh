#!/bin/sh
# test-imaging-server.sh - the imaging server's Images Sent (D.11.2) and garbage collection:
#   Images Sent counts a restore reported ok for an image stored here, or, for a client that
#   never reports, a manifest download followed by every chunk it names (once per completed
#   manifest download; the same client's report afterwards is not counted again); a partial
#   download is not counted;
#   prebootctl imaging gc drops the chunks no committed image names, keeps those an upload in
#   progress holds (a chunk put lately), and leaves every committed image restorable.
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/lib-imaging.sh"
command -v curl >/dev/null 2>&1 || skip_all "curl is not installed"
B=$top_builddir
[ -x "$B/tools/preboot-img" ] || skip_all "preboot-img is not built (lib/image: Linux only)"
T=$(mktemp -d "${TMPDIR:-/tmp}/imaging-server.XXXXXX")
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT INT TERM
port=$(pick_port 13)
S=127.0.0.1:$port
U=http://$S/imaging/v1
printf 'srv-token-%s\n' "$$" >"$T/token"
chmod 600 "$T/token"
A="Authorization: Bearer $(cat "$T/token")"
ctl() { "$B/tools/prebootctl" -c "$T/p.yaml" "$@"; }
code() { curl -s -o "$T/body" -w '%{http_code}' --max-time 10 "$@"; }
sent() { ctl stats 2>&1 | sed -n 's/.*imaging: Images Sent = \([0-9]*\).*/\1/p'; }
IMG() { "$B/tools/preboot-img" "$@" --chunk-size 1048576 --token-file "$T/token" >>"$T/img.log" 2>&1; }

{
    imaging_config_head "$T/state"
    cat <<EOC
  - module: imaging
    store: $T/store
    upload_token: $(cat "$T/token")
    upload_networks: [127.0.0.0/8]
EOC
} >"$T/p.yaml"
start() {
    "$B/core/prebootd" -f -c "$T/p.yaml" >>"$T/stderr" 2>&1 &
    pid=$!
    wait_until 20 sh -c "curl -s -o /dev/null --max-time 2 '$U/images'"
}
stop() { kill "$pid" && wait "$pid"; pid=; }
check "prebootd starts" start

# Three disks: a and b share nothing; c only gives an orphan chunk.
for d in a b c; do
    head -c 2200000 /dev/urandom >"$T/$d.img"
    truncate -s 4M "$T/$d.img"
done
check "an image uploaded" IMG make "$T/a.img" "$S:imga"
check "another image uploaded" IMG make "$T/b.img" "$S:imgb"
check "no image sent yet" [ "$(sent)" = 0 ]

# ---- Images Sent ------------------------------------------------------------------------------
truncate -s 4M "$T/r1.img"
check "a restore that never reports" IMG restore "$S:imga" "$T/r1.img"
check "... restored bit-exact" cmp -s "$T/a.img" "$T/r1.img"
check "counts once its last chunk is sent" [ "$(sent)" = 1 ]
report() { # SOURCE IMAGE
    code -X POST -H "$A" --interface "$1" -H 'Content-Type: application/json' \
        -d "{\"type\":\"restore\",\"image\":\"$2\",\"result\":\"ok\"}" "$U/results"
}
check "a report from a client that downloaded nothing here (204)" [ "$(report 127.0.0.2 imga)" = 204 ]
check "counts" [ "$(sent)" = 2 ]
# A client that downloads the manifest and every chunk, then reports: counted once.
curl -s --interface 127.0.0.3 -o "$T/m.pbm" "$U/images/imga"
sed -n 's/^c \([0-9a-f]*\) .*/\1/p' "$T/m.pbm" | sort -u >"$T/a.hashes"
check "imga names several chunks" [ "$(wc -l <"$T/a.hashes")" -ge 2 ]
first=$(head -n 1 "$T/a.hashes")
curl -s --interface 127.0.0.3 -o /dev/null "$U/chunks/$first"
check "a partial download is not counted" [ "$(sent)" = 2 ]
curl -s --interface 127.0.0.3 -o /dev/null -r 0-9 "$U/chunks/$(tail -n 1 "$T/a.hashes")"
check "nor one finished with a range" [ "$(sent)" = 2 ]
while read -r h; do curl -s --interface 127.0.0.3 -o /dev/null "$U/chunks/$h"; done <"$T/a.hashes"
check "the whole download counts" [ "$(sent)" = 3 ]
check "its client's report (204)" [ "$(report 127.0.0.3 imga)" = 204 ]
check "is not counted again" [ "$(sent)" = 3 ]
check "a second report is" [ "$(report 127.0.0.3 imga)" = 204 ] && [ "$(sent)" = 4 ]
check "a report of an image not here is not" [ "$(report 127.0.0.2 nosuch)" = 204 ] && [ "$(sent)" = 4 ]
code "$U/stats" >/dev/null
contains "GET stats agrees" "$(cat "$T/body")" '"images_sent":4'

# ---- garbage collection -------------------------------------------------------------------------
nchunks() { find "$T/store/chunks" -type f | wc -l; }
"$B/tools/preboot-img" make "$T/c.img" "$T/local:c" --chunk-size 1048576 >/dev/null 2>&1
orphan=$(sed -n 's/^c \([0-9a-f]*\) .*/\1/p' "$T/local/images/c.pbm" | head -n 1)
of=$(ls "$T"/local/chunks/*/"$orphan".*)
oc=none
case "$of" in *.zst) oc=zstd ;; esac
check "a chunk put by an upload that has not committed yet (201)" \
    [ "$(code -X PUT -H "$A" -H "X-Preboot-Codec: $oc" -H 'X-Preboot-Length: 1048576' \
        --data-binary "@$of" "$U/chunks/$orphan")" = 201 ]
sed -n 's/^c \([0-9a-f]*\) .*/\1/p' "$T/store/images/imgb.pbm" | sort -u >"$T/b.hashes"
comm -23 "$T/b.hashes" "$T/a.hashes" >"$T/b-only"
check "imgb has chunks of its own" [ -s "$T/b-only" ]
check "DELETE imgb (204)" [ "$(code -X DELETE -H "$A" "$U/images/imgb")" = 204 ]
before=$(nchunks)
out=$(ctl imaging gc 2>&1)
check "prebootctl imaging gc" [ $? -eq 0 ]
contains "... says it started and where the result goes" "$out" "gc started"
gc_done() { ctl imaging log 2>&1 | grep -q "gc removed"; }
check "the gc's result lands in the log" wait_until 20 gc_done
contains "... with what it removed" "$(ctl imaging log 2>&1)" "gc removed $(wc -l <"$T/b-only") chunk(s)"
check "the chunks only imgb named are gone" \
    [ "$(code "$U/chunks/$(head -n 1 "$T/b-only")")" = 404 ] &&
    [ "$(nchunks)" -eq $((before - $(wc -l <"$T/b-only"))) ]
check "the chunk of the upload in progress is kept" [ "$(code "$U/chunks/$orphan")" = 200 ]
truncate -s 4M "$T/r2.img"
check "imga still restores" IMG restore "$S:imga" "$T/r2.img"
check "... bit-exact" cmp -s "$T/a.img" "$T/r2.img"
contains "prebootctl status shows the last gc" "$(ctl status 2>&1)" "gc: gc removed"
# After a restart nothing holds the orphan: an upload that never committed loses it.
stop
check "prebootd restarts" start
ctl imaging gc >/dev/null 2>&1
check "a second gc runs" wait_until 20 sh -c "'$B/tools/prebootctl' -c '$T/p.yaml' imaging log | grep -q 'gc removed 1 chunk'"
check "and drops the chunk nobody holds any more" [ "$(code "$U/chunks/$orphan")" = 404 ]
check "uploads work after a gc" IMG make "$T/b.img" "$S:imgb2"
stop
grep -i "sanitizer\|runtime error" "$T/stderr" >/dev/null &&
    { not_ok "no sanitizer report"; sed 's/^/# /' "$T/stderr" | tail -30; } || ok "no sanitizer report"
finish

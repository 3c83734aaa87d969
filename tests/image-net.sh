#!/bin/sh
# image-net.sh - preboot-img over the imaging HTTP API (doc/imaging-api.md): capture from a
# disk image file (sfdisk + mkfs.ext4 -d) to a server and restore bit-exact onto another
# file; the connection cut mid-upload and mid-download by a TCP proxy (tests/cut-proxy.py)
# and the transfer finishing without sending stored chunks again (the proxy counts the
# requests); a second capture asking one batched question; refusals (no credential,
# --create-only); `auto` doing assigned work, its result in the server's log, the one-shot
# work used up. Run twice when it can be: against tests/imaging-standin.py (the spec read by
# the client's side, always) and against the real prebootd with the imaging plugin (when
# plugins/imaging is built; skipped with the reason until then).
. "$top_srcdir/tests/tap.sh"

IMG="$top_builddir/tools/preboot-img"
PREBOOTD="$top_builddir/core/prebootd"
CTL="$top_builddir/tools/prebootctl"
for tool in python3 sfdisk mkfs.ext4 zstd; do
    command -v $tool >/dev/null 2>&1 || skip_all "$tool not installed"
done
[ -x "$IMG" ] || skip_all "preboot-img not built"

W=$(mktemp -d "${TMPDIR:-/tmp}/image-net.XXXXXX")
pids=
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    [ -n "${KEEP:-}" ] && echo "# kept $W" || rm -rf "$W"
}
trap cleanup EXIT INT TERM
cd "$W" || exit 1
json() { sed -n "s/.*\"$1\":\\([^,}]*\\).*/\\1/p" | head -n 1; }
# started PIDFILE_VAR: remembers a background process to stop at the end (ours only)
remember() { pids="$pids $1"; }

# --- the disks -------------------------------------------------------------------------
# Partition 1: ext4 with a tree (shared by both disks); partition 2: raw random bytes (the
# part that differs), so disk2 has chunks the server holds from disk1 and chunks it lacks.
mkdir -p tree
for i in 1 2 3 4; do seq 1 30000 | sed "s/^/text $i: /" >tree/text$i; done
head -c 2000000 /dev/urandom >tree/random
truncate -s 40M disk1.img
printf 'label: gpt\nsize=20M, type=L\nsize=12M, type=L\n' | sfdisk -q disk1.img
p2=$(sfdisk -d disk1.img | awk '/disk1.img2 /{ gsub(",", ""); print $4 * 512 }')
mkfs.ext4 -q -F -d tree -E offset=1048576 disk1.img 20M
cp disk1.img disk2.img
head -c 6000000 /dev/urandom | dd of=disk1.img bs=1M seek=$((p2 / 1048576)) conv=notrunc status=none
head -c 5000000 /dev/urandom | dd of=disk2.img bs=1M seek=$((p2 / 1048576)) conv=notrunc status=none
CS="--chunk-size 262144"
printf 'lab-token-%s\n' "$$" >token
chmod 600 token
# The local capture tells which hashes the images name (for the resend checks).
"$IMG" make disk1.img ./local:one $CS >/dev/null
"$IMG" make disk2.img ./local:two $CS >/dev/null
hashes() { sed -n 's/^c \([0-9a-f]*\) .*/\1/p' "local/images/$1.pbm" | sort -u; }
hashes one >one.hashes
hashes two >two.hashes
comm -12 one.hashes two.hashes >shared.hashes
diag "disk1: $(wc -l <one.hashes) distinct data chunks; disk2: $(wc -l <two.hashes), $(wc -l <shared.hashes) shared"

start_proxy() { # start_proxy NAME TARGET_PORT OPTIONS...: sets proxy_port
    name=$1 target=$2
    shift 2
    rm -f "$name.port" "$name.log"
    python3 "$top_srcdir/tests/cut-proxy.py" --target "$target" --port-file "$name.port" \
        --log "$name.log" "$@" &
    remember $!
    wait_until 10 test -s "$name.port" || return 1
    proxy_port=$(cat "$name.port")
}

# suite LABEL PORT: everything against the server on 127.0.0.1:PORT.
# assign_work MAC ACTION IMAGE and result_logged MAC TYPE are defined per server.
suite() {
    label=$1 S=127.0.0.1:$2
    out=$("$IMG" make disk1.img "$S:one" $CS --json 2>err)
    check "$label: make without a credential is refused" [ $? -ne 0 ]
    contains "$label: ... saying why" "$(cat err)" "HTTP 401"

    out=$("$IMG" make disk1.img "$S:one" $CS --json --token-file token 2>err)
    check "$label: make DISK HOST:PORT:NAME captures to the server" [ $? -eq 0 ]
    new=$(echo "$out" | json chunks_new)
    puts=$(echo "$out" | json chunk_puts)
    check "$label: every distinct chunk sent once ($puts PUTs, $new new)" \
        [ "$puts" -eq "$(wc -l <one.hashes)" ] && [ "$new" -eq "$puts" ]
    out=$("$IMG" list "$S")
    contains "$label: list HOST shows it" "$out" "one"
    out=$("$IMG" info "$S:one")
    contains "$label: info HOST:NAME reads the manifest" "$out" "fs ext4"
    "$IMG" restore "$S:one" restored1.img >/dev/null 2>err
    check "$label: restore HOST:NAME DISK" [ $? -eq 0 ]
    check "$label: restored bit-exact" cmp disk1.img restored1.img

    out=$(PREBOOT_TOKEN=$(cat token) "$IMG" make disk1.img "$S:one" $CS --json 2>err)
    check "$label: capture again under the same name (PREBOOT_TOKEN)" [ $? -eq 0 ]
    check "$label: ... sends nothing and asks one batched question" \
        [ "$(echo "$out" | json chunk_puts)" -eq 0 ] && [ "$(echo "$out" | json chunk_heads)" -eq 0 ] &&
        [ "$(echo "$out" | json missing_queries)" -ge 1 ]
    "$IMG" make disk1.img "$S:one" $CS --create-only --token-file token >/dev/null 2>err
    check "$label: --create-only refuses an existing name" [ $? -ne 0 ]
    contains "$label: ... saying so" "$(cat err)" "already has an image one"

    # Mid-upload cut: disk2 shares chunks with disk1, which must not be sent at all.
    start_proxy up "$2" --cut-up 2000000
    out=$("$IMG" make disk2.img "127.0.0.1:$proxy_port:two" $CS --json --token-file token 2>err)
    check "$label: capture through a connection cut mid-upload completes" [ $? -eq 0 ]
    check "$label: ... the proxy did cut it" grep -q "cut up" up.log
    sed -n 's|^req PUT /imaging/v1/chunks/||p' up.log | sort >up.puts
    sort -u up.puts >up.distinct
    check "$label: no chunk the server held was sent ($(wc -l <shared.hashes) shared)" \
        [ -z "$(comm -12 up.distinct shared.hashes)" ]
    sent=$(wc -l <up.puts) expect=$(comm -23 two.hashes shared.hashes | wc -l)
    check "$label: each new chunk sent once, the cut one at most twice ($sent PUTs for $expect)" \
        [ "$sent" -ge "$expect" ] && [ "$sent" -le $((expect + 1)) ] &&
        [ "$(wc -l <up.distinct)" -eq "$expect" ]

    # Mid-download cut.
    start_proxy down "$2" --cut-down 3000000
    out=$("$IMG" restore "127.0.0.1:$proxy_port:two" restored2.img --json 2>err)
    check "$label: restore through a connection cut mid-download completes" [ $? -eq 0 ]
    check "$label: ... the proxy did cut it" grep -q "cut down" down.log
    check "$label: ... bit-exact" cmp disk2.img restored2.img
    gets=$(grep -c '^req GET /imaging/v1/chunks/' down.log)
    data=$(grep -c '^c ' local/images/two.pbm)
    check "$label: chunks fetched once, the cut one at most twice ($gets GETs for $data)" \
        [ "$gets" -ge "$data" ] && [ "$gets" -le $((data + 1)) ]
    # Resuming a restore: what is on the disk already is checked here, not fetched again.
    out=$("$IMG" restore "$S:two" restored2.img --delta --json 2>err)
    check "$label: restore --delta onto the restored disk fetches nothing" \
        [ "$(echo "$out" | json chunk_gets)" -eq 0 ] && [ "$(echo "$out" | json chunks_written)" -eq 0 ]

    # auto: restore work assigned to a MAC, done, reported, used up.
    mac=52:54:00:12:34:56
    assign_work $mac restore two
    cp disk1.img target.img
    out=$("$IMG" auto "$S" target.img --mac $mac --uuid 4c4c4544-0042-3510-8051-b4c04f4a4d31 \
        --serial LAB42 --token-file token --json 2>err)
    rc=$?
    check "$label: auto does the assigned restore (exit $rc)" [ $rc -eq 0 ]
    check "$label: ... bit-exact" cmp disk2.img target.img
    contains "$label: ... and reports it" "$out" '"reported":true'
    check "$label: the result is in the server's log" result_logged $mac restore
    "$IMG" auto "$S" target.img --mac $mac --token-file token >/dev/null 2>err
    rc=$?
    check "$label: the one-shot work is used up: auto says there is none (exit $rc)" [ $rc -eq 3 ]
    "$IMG" auto "$S" target.img --mac 52:54:00:ff:ff:ff >/dev/null 2>&1
    check "$label: a device without work: exit 3" [ $? -eq 3 ]
    # The restored device boots its own disk once (the policy's "just imaged" mark: see
    # preboot-policy(8)) before it is given new work.
    device_boots_disk $mac
    # auto: capture work.
    assign_work $mac capture golden
    "$IMG" auto "$S" disk1.img --mac $mac --token-file token $CS >/dev/null 2>err
    rc=$?
    check "$label: auto does the assigned capture (exit $rc)" [ $rc -eq 0 ] || sed "s/^/#   /" err
    contains "$label: ... the image is on the server" "$("$IMG" list "$S")" "golden"
    check "$label: ... and its result is logged" result_logged $mac capture
}

# --- against the stand-in ------------------------------------------------------------------
python3 "$top_srcdir/tests/imaging-standin.py" --dir standin --port-file standin.port \
    --token "$(cat token)" &
standin_pid=$!
remember $standin_pid
if wait_until 10 test -s standin.port; then
    assign_work() { # MAC ACTION IMAGE
        printf '{"action":"%s","image":"%s","work_id":"w-%s"}\n' "$2" "$3" "$$" \
            >"standin/work/$(echo "$1" | tr : -).json"
    }
    device_boots_disk() { :; } # the stand-in keeps no just-imaged mark
    result_logged() { grep "\"mac\": \"$1\"" standin/results.jsonl | grep -q "\"type\": \"$2\", \"image\": \"[a-z]*\", \"result\": \"ok\""; }
    suite standin "$(cat standin.port)"
    # A server restart: the client keeps retrying (bounded) and finishes once it is back.
    port=$(cat standin.port)
    kill "$standin_pid" && wait "$standin_pid" 2>/dev/null
    "$IMG" make disk2.img "127.0.0.1:$port:again" $CS --json --token-file token --retry-time 60 \
        >restart.out 2>&1 &
    client=$!
    remember $client
    python3 "$top_srcdir/tests/imaging-standin.py" --dir standin --port "$port" \
        --port-file standin2.port --token "$(cat token)" &
    remember $!
    wait "$client"
    check "standin: a capture started while the server is down finishes when it is back" [ $? -eq 0 ]
    diag "retries: $(json retries <restart.out); chunk PUTs: $(json chunk_puts <restart.out) (all held: 0)"
    check "standin: ... sending nothing the server held" [ "$(json chunk_puts <restart.out)" -eq 0 ]
    # A chunk that went bad on the server: caught before its bytes are written; the restore
    # fails, says so, exits non-zero.
    bad=$(comm -23 two.hashes shared.hashes | head -n 1)
    printf 'not the bytes of that chunk' >"standin/chunks/$bad"
    printf 'none 27\n' >"standin/chunks/$bad.codec"
    out=$("$IMG" restore "127.0.0.1:$port:two" bad.img --json 2>err)
    check "standin: a corrupted chunk fails the restore (exit non-zero)" [ $? -ne 0 ]
    contains "standin: ... naming the chunk" "$(cat err)" "chunk $bad"
    contains "standin: ... and --json says it failed" "$out" '"ok":false'
else
    not_ok "the stand-in server starts"
fi

# --- against prebootd with the imaging plugin ----------------------------------------------
if [ ! -e "$top_builddir/plugins/imaging/imaging.la" ]; then
    skip "prebootd: plugins/imaging is not built in this tree (the imaging server's issue)"
elif [ ! -x "$PREBOOTD" ] || [ ! -x "$CTL" ]; then
    skip "prebootd or prebootctl not built"
else
    http_port=$(pick_port 11)
    udp_port=$(pick_port 12)
    paths="$top_builddir/plugins/policy, $top_builddir/plugins/http, $top_builddir/plugins/imaging"
    for d in "$top_builddir/backends" "$top_builddir/backends/local"; do
        [ -d "$d" ] && paths="$paths, $d"
    done
    # Imaging work needs the imaging environment named in the rules (preboot-rules.yaml(5)).
    cat >rules.yaml <<EOC
imaging:
  kernel: http://127.0.0.1:$http_port/imaging/vmlinuz
  initrd: http://127.0.0.1:$http_port/imaging/initrd
EOC
    cat >preboot.yaml <<EOC
daemon:
  plugin_path: [$paths]
  log_dir: $W/log
  state_dir: $W/state
  pid_file: $W/prebootd.pid
  control_socket: $W/control.sock
plugins:
  - {module: http, listen: 127.0.0.1, port: $http_port}
  - {module: policy, local_interface: 127.0.0.1, port: $udp_port, rules_file: $W/rules.yaml}
  - {module: imaging, store: $W/daemon-store, upload_token_file: $W/token}
EOC
    "$PREBOOTD" -f -c preboot.yaml >daemon.log 2>&1 &
    remember $!
    if wait_until 20 curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$http_port/imaging/v1/images"; then
        ok "prebootd serves the imaging API"
        assign_work() { "$CTL" -c preboot.yaml policy assign "$1" "$2" "$3" once >/dev/null || diag "policy assign $*: refused"; }
        result_logged() { "$CTL" -c preboot.yaml imaging log 2>&1 | grep -i "$1" | grep -qi "$2"; }
        device_boots_disk() {
            curl -s -o /dev/null "http://127.0.0.1:$http_port/boot.ipxe?mac=$1" || diag "boot.ipxe for $1 failed"
        }
        suite prebootd "$http_port"
    else
        not_ok "prebootd serves the imaging API"
        sed 's/^/# /' daemon.log | tail -n 20
    fi
fi
finish

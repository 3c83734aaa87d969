#!/bin/sh
# bench/imaging.sh - preboot-img against the plain pipelines on one disk image file, in one
# run, and a Markdown table with ratios (results go in doc/benchmarks.md, ## imaging).
#
#   bench/imaging.sh [BUILD_DIR]            (default: $top_builddir, else .)
#   SIZE_GB=4 USED_GB=2 LEVEL=1 WORK=/var/tmp bench/imaging.sh _build
#   LOCAL=no PIN=yes PXE=yes bench/imaging.sh _build   (network only, one core per machine)
#
# The disk: a SIZE_GB GPT disk image file whose one ext4 partition holds an OS-like tree of
# about USED_GB (files from /usr/lib: binaries and libraries; /usr/share/doc: text; the .gz
# and .xz files of /usr/share: already compressed), made with mkfs.ext4 -d.
# Measured:
#   capture:  preboot-img make (zstd level LEVEL) into a new local store
#             vs zstd -T0 -LEVEL < disk > out
#             vs partclone.ext4 -c -s PART | zstd -T0 -LEVEL > out (root: loop device)
#   restore:  preboot-img restore onto a new file vs zstd -d -T0 < out > disk
#   delta:    2 % of the files changed (loop mount, root; CHANGE=packages: whole
#             directories get new versions of their files; CHANGE=scattered: every 50th
#             file rewritten with random text), a second capture (new bytes stored), and a
#             delta restore of it onto a copy of the first restore
# The baselines write into the page cache; preboot-img fsyncs what it writes (each chunk
# file, the restored disk), so the baselines are also timed with an fsync of their output.
# Page cache is warm for every reader alike (the disk file is read once before timing).
# CHUNK_SIZES="1048576 4194304 16777216" also captures the first and the changed disk into
# a new store per chunk size: capture time, bytes stored, new bytes for the changed disk
# (how the default chunk size was chosen).
# Needs about 3 * SIZE_GB + 2 * USED_GB free in WORK.
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd) # the source tree (the network section's helpers)
B=${1:-${top_builddir:-.}}
B=$(cd "$B" && pwd)
IMG=$B/tools/preboot-img
SIZE_GB=${SIZE_GB:-4}
USED_GB=${USED_GB:-2}
LEVEL=${LEVEL:-1}
CHANGE=${CHANGE:-packages} # or scattered
WORK=${WORK:-/var/tmp}
REPEAT=${REPEAT:-3}           # runs of each timed comparison
COLD_REPEAT=${COLD_REPEAT:-2} # runs of the capture from a cold page cache
[ -x "$IMG" ] || { echo "no $IMG: build first" >&2; exit 1; }
for t in sfdisk mkfs.ext4 zstd /usr/bin/time bc; do
    command -v $t >/dev/null 2>&1 || { echo "$t is needed" >&2; exit 1; }
done
tmp=$(mktemp -d "$WORK/imaging-bench.XXXXXX")
loop=
mnt=
cleanup() {
    [ -n "$mnt" ] && umount "$mnt" 2>/dev/null
    [ -n "$loop" ] && losetup -d "$loop" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
cd "$tmp" || exit 1

now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l | xargs printf '%.2f'; }
size() { stat -c %s "$1"; }
json() { sed -n "s/.*\"$1\":\\([^,}]*\\).*/\\1/p"; }
mib() { echo "$1 / 1048576" | bc -l | xargs printf '%.0f'; }
add() { echo "$1 + $2" | bc -l | xargs printf '%.2f'; }
div() { echo "$1 / $2" | bc -l | xargs printf '%.2f'; }
r3() { echo "$1 / $2" | bc -l | xargs printf '%.3f'; }
first() { echo "$1"; }
r() { [ "$1" = - ] || [ "$2" = - ] && echo - || echo "$1 / $2" | bc -l | xargs printf '%.2f'; }
# range V...: "min-max" (or the value when all are equal)
range() { printf '%s\n' "$@" | sort -n | sed -n '1p;$p' | paste -sd- | sed 's/^\(.*\)-\1$/\1/'; }
# tm WALL CPU CMD...: runs CMD; WALL and CPU (user + system, children included) get seconds.
tm() {
    _w=$1 _c=$2
    shift 2
    /usr/bin/time -f '%e %U %S' -o "$tmp/time.out" "$@"
    _rc=$?
    set -- $(tail -1 "$tmp/time.out")
    eval "$_w=$1 $_c=$(add "$2" "$3")"
    return $_rc
}
# Drops a file's pages from the page cache (GNU dd: posix_fadvise DONTNEED on it).
uncache() { dd if="$1" iflag=nocache count=0 status=none; }

# --- the tree ---------------------------------------------------------------------------
# DISK=FILE (with LOCAL=no: the local part rewrites files in the disk) measures the network
# part on a disk image file made before, instead of building one (read, never written).
if [ -n "${DISK:-}" ]; then
    [ "${LOCAL:-yes}" = no ] || { echo "DISK=FILE needs LOCAL=no" >&2; exit 1; }
    ln -s "$(cd "$(dirname "$DISK")" && pwd)/$(basename "$DISK")" disk.img || exit 1
    cat disk.img >/dev/null
else
echo "building a ${USED_GB} GiB tree ..." >&2
mkdir -p tree/lib tree/doc tree/compressed
limit=$((USED_GB * 1024 * 1024 * 1024 * 85 / 100))
cp -a /usr/share/doc/. tree/doc/ 2>/dev/null
find /usr/share -type f \( -name '*.gz' -o -name '*.xz' \) -size +1k 2>/dev/null | head -20000 >list.z
tar -cf - -T list.z 2>/dev/null | tar -xf - -C tree/compressed
used=$(du -sb tree | cut -f1)
# Files of /usr/lib in name order until the tree holds about 85 % of USED_GB (ext4's own
# metadata and the journal make up most of the rest).
find /usr/lib -type f -size +0 -printf '%s %p\n' 2>/dev/null | sort -k2 |
    awk -v left=$((limit - used)) '{ left -= $1; if (left < 0) exit; print substr($0, index($0, " ") + 1) }' >list.lib
tar -cf - -T list.lib 2>/dev/null | tar -xf - -C tree/lib
rm -f list.z list.lib
files=$(find tree -type f | wc -l)
tree_bytes=$(du -sb tree | cut -f1)

truncate -s ${SIZE_GB}G disk.img
printf 'label: gpt\ntype=L\n' | sfdisk -q disk.img
poff=$(sfdisk -d disk.img | awk '/^disk.img1/ { gsub(",", ""); printf "%.0f\n", $4 * 512 }')
plen=$(sfdisk -d disk.img | awk '/^disk.img1/ { gsub(",", ""); printf "%.0f\n", $6 * 512 }')
echo "mkfs.ext4 -d ($files files, $(mib "$tree_bytes") MiB) ..." >&2
mkfs.ext4 -q -F -d tree -E offset="$poff" disk.img $((plen / 1024))k
rm -rf tree
cat disk.img >/dev/null # warm the cache for every reader alike
fi # DISK

# LOCAL=no skips the local comparisons below (the network section and PXE=yes still run on
# the same disk).
if [ "${LOCAL:-yes}" != no ]; then
# --- capture ----------------------------------------------------------------------------
# Each comparison runs REPEAT times, preboot-img and its baseline back to back so both see
# the same load (the machine may be shared); the table gives the range of each and of the
# per-pair ratios. Wall and CPU (user + system) seconds come from /usr/bin/time.
cpu= cap_w= cap_r= cap_rs= zst_w= zst_sw= zst_c= cold_w= cold_zw= cold_r=
res_w= res_r= res_rs= zres_w= zres_sw= d_r= ndelta=-
for i in $(seq "$REPEAT"); do
    rm -rf store
    tm w c "$IMG" make disk.img ./store:one --level "$LEVEL" --json >cap.json
    cap_w="$cap_w $w" cpu="$cpu $c"
    tm zw zc sh -c "zstd -q -T0 -$LEVEL <disk.img >disk.zst"
    tm sw sc sync disk.zst
    zst_w="$zst_w $zw" zst_sw="$zst_sw $(add "$zw" "$sw")" zst_c="$zst_c $(add "$zc" "$sc")"
    cap_r="$cap_r $(div "$w" "$zw")" cap_rs="$cap_rs $(div "$w" "$(add "$zw" "$sw")")"
done
cap_c=$cpu
out=$(cat cap.json)
cap_read=$(echo "$out" | json bytes_read)
cap_stored=$(echo "$out" | json bytes_new_stored)
mapped=$(echo "$out" | json partitions_mapped)
zst_size=$(size disk.zst)

# The same with the disk file dropped from the page cache before each run (read from the
# machine's disk, as from a real one), for both sides.
sync disk.img
for i in $(seq "$COLD_REPEAT"); do
    rm -rf cstore
    uncache disk.img
    tm w c "$IMG" make disk.img ./cstore:one --level "$LEVEL" --json >/dev/null
    uncache disk.img
    tm zw zc sh -c "zstd -q -T0 -$LEVEL <disk.img >disk.zst && sync disk.zst"
    cold_w="$cold_w $w" cold_zw="$cold_zw $zw" cold_r="$cold_r $(div "$w" "$zw")"
done
rm -rf cstore
cat disk.img >/dev/null # warm again for what follows

pc_s=- pc_size=-
if [ "$(id -u)" -eq 0 ] && command -v partclone.ext4 >/dev/null 2>&1 &&
    loop=$(losetup --find --show --read-only --offset "$poff" --sizelimit "$plen" disk.img 2>/dev/null); then
    t0=$(now)
    partclone.ext4 -q -c -s "$loop" -o - 2>/dev/null | zstd -q -T0 -"$LEVEL" >part.zst
    t1=$(now)
    pc_s=$(secs "$t0" "$t1")
    pc_size=$(size part.zst)
    losetup -d "$loop"
    loop=
    rm -f part.zst
fi

# --- restore ----------------------------------------------------------------------------
for i in $(seq "$REPEAT"); do
    rm -f r1.img z1.img
    tm w c "$IMG" restore ./store:one r1.img --json >/dev/null
    tm zw zc sh -c "zstd -q -d -T0 <disk.zst >z1.img"
    tm sw sc sync z1.img
    res_w="$res_w $w" zres_w="$zres_w $zw" zres_sw="$zres_sw $(add "$zw" "$sw")"
    res_r="$res_r $(div "$w" "$zw")" res_rs="$res_rs $(div "$w" "$(add "$zw" "$sw")")"
done
cmp -s disk.img r1.img && exact=yes || exact=NO
rm -f z1.img disk.zst

# --- 2 % of the files changed, second capture, delta restore ------------------------------
d_s=- d_bytes=- new2=- changed=0 changed_bytes=0
# The files are changed in a mount namespace of this script's own (unshare): a mount in the
# machine's namespace is copied into every namespace another program creates meanwhile (ip
# netns exec, unshare), and there umount only detaches it: the filesystem stays up, its
# dirty data and final superblock reach disk.img seconds later, after the second capture
# has read it (dmesg showed "unmounting filesystem" 1.3-1.4 s after that capture started
# in 2 of 4 tries, and one of those restores differed; that was run 2's "NO"). In a
# private namespace umount is the last reference and unmounts for real.
cat >change.sh <<'EOC'
set -u
poff=$1 plen=$2 CHANGE=$3
mkdir mnt && mount -o loop,offset="$poff",sizelimit="$plen" disk.img mnt || exit 3
find mnt -type f | sort >files.all
total=$(wc -l <files.all)
want=$((total / 50)) # 2 %
if [ "$CHANGE" = scattered ]; then
    # Every 50th file in name order, rewritten with random text of the same size: the
    # worst case for fixed-size chunks (changes everywhere, nothing compresses).
    awk 'NR % 50 == 0' files.all >files.chg
else
    # A package update: whole directories (every 10th, in name order) until 2 % of the
    # files, each file replaced by a new version (new blocks, as dpkg writes them) that
    # differs in a few places.
    sed 's|/[^/]*$||' files.all | uniq -c | awk 'NR % 10 == 0 { print $2 }' >dirs.chg
    awk 'NR == FNR { d[$0] = 1; next } { p = $0; sub("/[^/]*$", "", p) } p in d' dirs.chg files.all |
        head -n "$want" >files.chg
fi
while read -r f; do
    n=$(stat -c %s "$f")
    if [ "$CHANGE" = scattered ]; then
        head -c "$n" /dev/urandom | base64 -w 0 | head -c "$n" >"$f.new"
    else
        cp "$f" "$f.new"
        for at in 0 $((n / 2)) $((n - 1)); do
            printf 'v2' | dd of="$f.new" bs=1 seek="$at" conv=notrunc status=none
        done
    fi
    mv "$f.new" "$f"
done <files.chg
changed=$(wc -l <files.chg)
changed_bytes=$(awk '{ print }' files.chg | tr '\n' '\0' | du -cb --files0-from=- | tail -1 | cut -f1)
echo "$changed $changed_bytes" >changed.out
umount mnt || exit 4
EOC
if [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null 2>&1 &&
    unshare --mount --propagation private sh change.sh "$poff" "$plen" "$CHANGE"; then
    read -r changed changed_bytes <changed.out
    out=$("$IMG" make disk.img ./store:two --level "$LEVEL" --base newest --json)
    new2=$(echo "$out" | json bytes_new_stored)
    ndelta=$(echo "$out" | json chunks_delta)
    # The target is a copy of the first restore, on disk before the clock starts (a lab
    # machine's disk is not in the page cache, dirty, waiting for an fsync): the delta
    # restore's own fsync then covers only what it writes.
    d_s=
    for i in $(seq "$REPEAT"); do
        cp --sparse=always r1.img r2.img
        sync r2.img
        tm w c "$IMG" restore ./store:two r2.img --delta --json >delta.json
        d_s="$d_s $w" d_r="$d_r $(div "$w" "$(echo "$res_w" | cut -d' ' -f$((i + 1)))")"
    done
    out=$(cat delta.json)
    d_bytes=$(echo "$out" | json bytes_written)
    cmp -s disk.img r2.img && dexact=yes || dexact=NO
    if [ "$dexact" = NO ]; then
        # Where they differ, and what the image says is there (chunks of 4 MiB from the
        # partition's start): a diagnosis, not a fix.
        cmp disk.img r2.img >&2
        cmp -l disk.img r2.img | awk -v poff="$poff" '{ o = $1 - 1; c = int((o - poff) / 4194304); if (!(c in s)) { s[c] = 1; n++; if (n <= 10) printf "differs at byte %d: partition chunk %d\n", o, c } } END { print n " chunks differ" }' >&2
        awk '/^region .* partition=1$/ { p = 1; i = 0; next } p && /^[cuza]/ { print i++, $1, $3 }' store/images/two.pbm >two.kinds
        awk '/^region .* partition=1$/ { p = 1; i = 0; next } p && /^[cuza]/ { print i++, $1, $3 }' store/images/one.pbm >one.kinds
        cmp -l disk.img r2.img | awk -v poff="$poff" '{ print int(($1 - 1 - poff) / 4194304) }' | uniq | head -5 |
            while read -r c; do echo "chunk $c: one: $(sed -n "$((c + 1))p" one.kinds) two: $(sed -n "$((c + 1))p" two.kinds)" >&2; done
    fi
fi

chunk_rows=
if [ -n "${CHUNK_SIZES:-}" ] && [ "$d_s" != - ]; then
    for cs in $CHUNK_SIZES; do
        rm -rf cstore
        t0=$(now)
        out=$("$IMG" make r1.img ./cstore:one --level "$LEVEL" --chunk-size "$cs" --json)
        t1=$(now)
        st1=$(echo "$out" | json bytes_new_stored)
        out=$("$IMG" make disk.img ./cstore:two --level "$LEVEL" --chunk-size "$cs" --base newest --json)
        st2=$(echo "$out" | json bytes_new_stored)
        chunk_rows="$chunk_rows| $((cs / 1048576)) MiB | $(secs "$t0" "$t1") | $(mib "$st1") | $(mib "$st2") |
"
    done
    rm -rf cstore
fi

disk=$((SIZE_GB * 1073741824))
echo
echo "disk: ${SIZE_GB} GiB GPT, ext4 holding $files files ($(mib "$tree_bytes") MiB: /usr/lib, /usr/share/doc, .gz/.xz);" \
    "zstd level $LEVEL; $(nproc) cores; used-block map for $mapped partition(s)"
echo
echo "| step | preboot-img | baseline | preboot-img / baseline |"
echo "| --- | --- | --- | --- |"
echo "| capture time (s), page cache warm | $(range $cap_w) | zstd -T0: $(range $zst_w) (with fsync: $(range $zst_sw)); partclone \\| zstd: $pc_s | $(range $cap_r) ($(range $cap_rs)); $(r "$(first $cap_w)" "$pc_s") |"
echo "| capture CPU time, user + system (s) | $(range $cap_c) | zstd -T0 with fsync: $(range $zst_c) | - |"
echo "| capture time (s), disk file dropped from the page cache | $(range $cold_w) | zstd -T0 with fsync: $(range $cold_zw) | $(range $cold_r) |"
echo "| bytes read (MiB) | $(mib "$cap_read") | $(mib "$disk") | $(r "$cap_read" "$disk") |"
echo "| stored (MiB) | $(mib "$cap_stored") | zstd: $(mib "$zst_size"); partclone \\| zstd: $([ "$pc_size" = - ] && echo - || mib "$pc_size") | $(r "$cap_stored" "$zst_size") |"
echo "| restore time (s), bit-exact: $exact | $(range $res_w) | zstd -d: $(range $zres_w) (with fsync: $(range $zres_sw)) | $(range $res_r) ($(range $res_rs)) |"
if [ "$d_s" != - ]; then
    echo "| second capture after $changed files (2 %, $(mib "$changed_bytes") MiB, CHANGE=$CHANGE) changed: new bytes stored (MiB), $ndelta chunks as deltas | $(echo "$new2 / 1048576" | bc -l | xargs printf '%.1f') | first capture: $(mib "$cap_stored") | $(r3 "$new2" "$cap_stored") |"
    echo "| delta restore: bytes written (MiB), bit-exact: $dexact | $(mib "$d_bytes") | disk: $(mib "$disk") | $(r "$d_bytes" "$disk") |"
    echo "| delta restore time (s) | $(range $d_s) | full restore: $(range $res_w) | $(range $d_r) |"
else
    echo "| second capture and delta restore | - | needs root (loop mount) | - |"
fi
if [ -n "$chunk_rows" ]; then
    echo
    echo "| chunk size | capture (s) | stored (MiB) | new after 2 % changed (MiB) |"
    echo "| --- | --- | --- | --- |"
    printf '%s' "$chunk_rows"
fi
fi # LOCAL

# ==========================================================================================
# Network (issue 13; a separate section: the local part above is the image issue's).
# Capture and restore of disk.img through prebootd's imaging plugin against the practical
# pipeline limit: `zstd -T0 -LEVEL < disk | curl -T - http://...` into a plain PUT-capable
# HTTP server (bench/put-server.py) and `curl http://... | zstd -d -T0 > disk`; then
# NET_RESTORES (default 8) concurrent restores of the image, each onto its own new file.
#   NET=auto     (default) when $B/plugins/imaging is built, else skipped with a note
#   NET=standin  against tests/imaging-standin.py instead (a smoke run of this script; its
#                numbers say nothing about prebootd)
#   NET=no       skip
# PXE=yes (root, ip(8), cc): proxyDHCP p99 of one daemon running proxydhcp, http and imaging
# in a network namespace (as bench/proxydhcp.sh: REQUESTs to port 4011 from bench/pxe-load in
# a second namespace over a veth pair), at PXE_RATE/s (default 5000) for PXE_SECONDS (5):
# with no transfer, during a capture of disk.img and during a restore, back to back.
# ==========================================================================================
NET=${NET:-auto}
NET_RESTORES=${NET_RESTORES:-8}
# PIN=yes (2 or more cores, taskset(1)): one core per machine. Every server (prebootd, the
# plain PUT server) runs on CPU 1 and every imaging client (preboot-img, zstd | curl) on
# CPU 0, so that client and server do not take CPU from each other, as they do not on a LAN;
# both sides of each comparison are pinned alike (the PXE load generator: see PXE=yes).
# PIN=no (the default): everything shares every core.
ON_CLI= ON_SRV=
if [ "${PIN:-no}" = yes ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    ON_CLI="taskset -c 0" ON_SRV="taskset -c 1"
fi
pinned() { [ -n "$ON_CLI" ] && echo "; one core per machine (servers on CPU 1, clients on CPU 0)" || echo "; client and server share every core"; }
net_pids=
net_stop() { for p in $net_pids; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done; net_pids=; }
# CPU seconds (user + system) a running process has used so far; "-" when unknown.
hz=$(getconf CLK_TCK 2>/dev/null || echo 100)
cpu_of() { [ -r "/proc/$1/stat" ] && awk -v hz="$hz" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat" || echo -; }
sub() { [ "$1" = - ] || [ "$2" = - ] && echo - || echo "$2 - $1" | bc -l | xargs printf '%.2f'; }
add2() { [ "$1" = - ] || [ "$2" = - ] && echo - || add "$1" "$2"; }
trap 'net_stop; cleanup' EXIT INT TERM
if [ "$NET" = auto ] && [ ! -e "$B/plugins/imaging/imaging.la" ]; then
    echo
    echo "network: skipped ($B/plugins/imaging is not built; NET=standin runs the script against the stand-in)"
    NET=no
fi
if [ "$NET" != no ]; then
    printf 'bench-token-%s\n' "$$" >token
    rm -f net.port
    if [ "$NET" = standin ]; then
        python3 "$SRC/tests/imaging-standin.py" --dir standin --port-file net.port --token "$(cat token)" &
        net_pids="$net_pids $!"
        what="tests/imaging-standin.py (smoke run, not prebootd)"
    else
        port=${NET_PORT:-18080}
        cat >net.yaml <<EOC
daemon:
  plugin_path: [$B/plugins/http, $B/plugins/policy, $B/plugins/imaging$( [ -d "$B/backends" ] && echo ", $B/backends" )$( [ -d "$B/backends/local" ] && echo ", $B/backends/local" )]
  log_dir: $tmp/log
  state_dir: $tmp/state
  pid_file: $tmp/prebootd.pid
  control_socket: $tmp/control.sock
plugins:
  - {module: http, listen: 127.0.0.1, port: $port}
  - {module: imaging, store: $tmp/daemon-store, upload_token_file: $tmp/token}
EOC
        $ON_SRV "$B/core/prebootd" -f -c net.yaml >net-daemon.log 2>&1 &
        net_pids="$net_pids $!"
        srv_pid=$!
        echo "$port" >net.port
        what="prebootd (http + imaging)"
    fi
    up=no
    for _ in $(seq 1 100); do
        [ -s net.port ] && curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$(cat net.port)/imaging/v1/images" && { up=yes; break; }
        sleep 0.1
    done
    mkdir -p plain
    $ON_SRV python3 "$SRC/bench/put-server.py" plain plain.port &
    net_pids="$net_pids $!"
    plain_pid=$!
    for _ in $(seq 1 100); do [ -s plain.port ] && break; sleep 0.1; done
    if [ "$up" != yes ] || [ ! -s plain.port ]; then
        echo "network: the servers did not start" >&2
        tail -n 20 net-daemon.log >&2 2>/dev/null
    else
        S=127.0.0.1:$(cat net.port)
        P=http://127.0.0.1:$(cat plain.port)
        srv_pid=${srv_pid:-$(cat prebootd.pid 2>/dev/null)}
        # Client CPU from /usr/bin/time (tm), server CPU from /proc around each step.
        c0=$(cpu_of "$srv_pid")
        tm w ncap_c $ON_CLI sh -c '"$0" make disk.img "$1:bench" --level "$2" --json --token-file token >cap-net.json' "$IMG" "$S" "$LEVEL"
        ncap_s=$w ncap_sc=$(sub "$c0" "$(cpu_of "$srv_pid")")
        nsent=$(json bytes_sent <cap-net.json)
        c0=$(cpu_of "$plain_pid")
        tm w pcap_c $ON_CLI sh -c 'zstd -q -T0 -"$0" <disk.img | curl -s -T - "$1/disk.zst"' "$LEVEL" "$P"
        pcap_s=$w pcap_sc=$(sub "$c0" "$(cpu_of "$plain_pid")")
        psent=$(size plain/disk.zst)
        c0=$(cpu_of "$srv_pid")
        tm w nres_c $ON_CLI "$IMG" restore "$S:bench" n1.img --json >/dev/null
        nres_s=$w nres_sc=$(sub "$c0" "$(cpu_of "$srv_pid")")
        cmp -s disk.img n1.img && nexact=yes || nexact=NO
        rm -f n1.img
        c0=$(cpu_of "$plain_pid")
        tm w pres_c $ON_CLI sh -c 'curl -s "$0/disk.zst" | zstd -q -d -T0 >p1.img' "$P"
        pres_s=$w pres_sc=$(sub "$c0" "$(cpu_of "$plain_pid")")
        rm -f p1.img plain/disk.zst
        # Concurrent restores: each onto its own new (sparse) file, all started at once.
        c0=$(cpu_of "$srv_pid")
        t0=$(now)
        cpids=
        i=1
        while [ $i -le "$NET_RESTORES" ]; do
            $ON_CLI "$IMG" restore "$S:bench" "c$i.img" --json >"c$i.out" 2>&1 &
            cpids="$cpids $!"
            i=$((i + 1))
        done
        cfail=0
        for p in $cpids; do wait "$p" || cfail=$((cfail + 1)); done
        t1=$(now)
        conc_s=$(secs "$t0" "$t1")
        conc_sc=$(sub "$c0" "$(cpu_of "$srv_pid")")
        cbytes=0
        for f in c*.out; do
            v=$(json bytes_received <"$f")
            # a failed restore prints its error, not the JSON: shown, and counted as 0 bytes
            [ -n "$v" ] || { echo "$f:" >&2; tail -n 3 "$f" >&2; }
            cbytes=$((cbytes + ${v:-0}))
        done
        cmp -s disk.img c1.img && cexact=yes || cexact=NO
        rm -f c*.img c*.out
        rate() { echo "$1 / 1048576 / $2" | bc -l | xargs printf '%.0f'; }
        echo
        echo "network, over loopback: $what; zstd level $LEVEL; commit $(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo ?); $(nproc) cores$(pinned); $(uptime | sed 's/.*load average/load average/')"
        echo
        echo "| step | preboot-img | zstd \\| curl pipeline | preboot-img / pipeline |"
        echo "| --- | --- | --- | --- |"
        echo "| capture time (s) | $ncap_s | $pcap_s | $(r "$ncap_s" "$pcap_s") |"
        echo "| capture CPU (s): client; server | $ncap_c; $ncap_sc | $pcap_c; $pcap_sc | $(r "$(add2 "$ncap_c" "$ncap_sc")" "$(add2 "$pcap_c" "$pcap_sc")") |"
        echo "| bytes sent (MiB) | $(mib "$nsent") | $(mib "$psent") | $(r "$nsent" "$psent") |"
        echo "| restore time (s), bit-exact: $nexact | $nres_s | $pres_s | $(r "$nres_s" "$pres_s") |"
        echo "| restore CPU (s): client; server | $nres_c; $nres_sc | $pres_c; $pres_sc | $(r "$(add2 "$nres_c" "$nres_sc")" "$(add2 "$pres_c" "$pres_sc")") |"
        echo "| $NET_RESTORES restores at once (s), $cfail failed, bit-exact: $cexact | $conc_s ($(rate "$cbytes" "$conc_s") MiB/s fetched in all; server CPU $conc_sc s) | one restore: $nres_s | $(r "$conc_s" "$nres_s") |"
    fi
    net_stop
fi

if [ "${PXE:-no}" = yes ] && [ "$(id -u)" = 0 ] && command -v ip >/dev/null && command -v cc >/dev/null; then
    PXE_RATE=${PXE_RATE:-5000}
    PXE_SECONDS=${PXE_SECONDS:-5}
    # Pinned, the load generator runs on the server's CPU, ahead of everything there (nice
    # -10; it uses a few percent of it), and the imaging client alone on CPU 0. Not beside
    # the client: then every request and answer crosses between the two virtual CPUs, and
    # waking an idle vCPU of this VM costs milliseconds (p99 2.3 ms with no transfer at all,
    # against 0.2 ms on one CPU), which says nothing about the server.
    LOAD_NICE=0
    [ -n "$ON_CLI" ] && LOAD_NICE=-10
    cc -O2 -o pxe-load "$SRC/bench/pxe-load.c" || exit 1
    CLI=pbi-cli-$$ SRV=pbi-srv-$$
    pxe_stop() {
        net_stop
        ip netns del $CLI 2>/dev/null
        ip netns del $SRV 2>/dev/null
    }
    trap 'pxe_stop; cleanup' EXIT INT TERM
    ip netns add $CLI && ip netns add $SRV || exit 1
    ip link add vcli netns $CLI type veth peer name vsrv netns $SRV
    ip -n $CLI addr add 10.9.1.2/24 dev vcli
    ip -n $SRV addr add 10.9.1.1/24 dev vsrv
    for ns in $CLI $SRV; do ip -n $ns link set lo up; done
    ip -n $CLI link set vcli up
    ip -n $SRV link set vsrv up
    [ -s token ] || printf 'bench-token-%s\n' "$$" >token
    cat >pxe.yaml <<EOC
daemon:
  plugin_path: [$B/plugins/proxydhcp, $B/plugins/http, $B/plugins/imaging, $B/backends/local]
  log_dir: $tmp/pxe-log
  state_dir: $tmp/pxe-state
  pid_file: $tmp/pxe.pid
  control_socket: $tmp/pxe.sock
plugins:
  - {module: proxydhcp, nbp_x86: nvlnbp.sys, log_level: 1}
  - {module: http, listen: 10.9.1.1, port: 18081, log_level: 1}
  - {module: imaging, store: $tmp/pxe-store, upload_token_file: $tmp/token, upload_networks: [10.9.1.0/24], log_level: 1}
EOC
    # PXE_NICE=-10 runs the daemon ahead of everything else on the machine (the client, the
    # load generator, other work): what is left of its p99 is its own doing, not the
    # scheduler's (on a shared machine the difference between the two runs says which).
    ip netns exec $SRV $ON_SRV nice -n "${PXE_NICE:-0}" "$B/core/prebootd" -f -c pxe.yaml >pxe-daemon.log 2>&1 &
    net_pids="$net_pids $!"
    for _ in $(seq 1 100); do
        ip netns exec $CLI curl -s -o /dev/null --max-time 1 http://10.9.1.1:18081/imaging/v1/images && break
        sleep 0.1
    done
    p99() { # prints p99_us of one pxe-load run
        ip netns exec $CLI $ON_SRV nice -n "$LOAD_NICE" ./pxe-load --bind 10.9.1.2 --rate "$PXE_RATE" --seconds "$PXE_SECONDS" \
            10.9.1.1 4011 | tr ' ' '\n' | sed -n 's/^\(p50_us\|p99_us\|lost_pct\)=//p' | paste -sd' '
    }
    idle=$(p99)
    ip netns exec $CLI $ON_CLI "$IMG" make disk.img 10.9.1.1:18081:pxe --level "$LEVEL" --token-file token \
        >pxe-make.out 2>&1 &
    mk=$!
    sleep 1 # the capture is under way (its first chunks are on the wire)
    during_make=$(p99)
    kill -0 $mk 2>/dev/null && make_state="still running at the end" || make_state="ended before the end: numbers partly idle"
    wait $mk && make_state="$make_state; ok" || make_state="$make_state; FAILED: $(tail -n 1 pxe-make.out)"
    ip netns exec $CLI $ON_CLI "$IMG" restore 10.9.1.1:18081:pxe pxe-r.img >pxe-restore.out 2>&1 &
    rs=$!
    sleep 1
    during_restore=$(p99)
    kill -0 $rs 2>/dev/null && restore_state="still running at the end" || restore_state="ended before the end: numbers partly idle"
    wait $rs && restore_state="$restore_state; ok" || restore_state="$restore_state; FAILED: $(tail -n 1 pxe-restore.out)"
    rm -f pxe-r.img
    echo
    echo "proxyDHCP (port 4011) at $PXE_RATE/s for ${PXE_SECONDS}s, one daemon with proxydhcp + http + imaging (nice ${PXE_NICE:-0})$(pinned); load: $(uptime | sed 's/.*load average/load average/')"
    echo
    echo "| while | p50 us | p99 us | lost % |"
    echo "| --- | --- | --- | --- |"
    # (pxe-load prints lost_pct, p50_us, p99_us in that order)
    set -- $idle; echo "| no transfer | $2 | $3 | $1 |"
    set -- $during_make; echo "| capture of disk.img ($make_state) | $2 | $3 | $1 |"
    set -- $during_restore; echo "| restore of it ($restore_state) | $2 | $3 | $1 |"
    pxe_stop
fi

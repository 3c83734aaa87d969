#!/bin/sh
# image-roundtrip.sh - preboot-img on disk image files built here with sfdisk, mkfs.ext4 -d,
# mkfs.vfat + mcopy, debugfs and (when present) mkntfs: MBR and GPT, several partitions,
# sparse and full data, each codec, bit-exact restores (partition tables included), one
# partition alone, delta restore counting written chunks, corruption caught by verify and
# restore before bad bytes reach the disk, shared chunks, gc, too-small and larger targets,
# .pbi archives, and STORE:NAME rules. No root needed; with root (loop devices) the capture
# also uses partclone's used-block maps, and one test checks that it did.
#
# About "bit-exact": a chunk no filesystem block uses is not stored ("u" in the manifest)
# and reads as zero after a restore onto a new file. Every source disk here starts as a
# sparse (all-zero) file, so its free space is zero too and cmp compares whole disks.
. "$top_srcdir/tests/tap.sh"

IMG="$top_builddir/tools/preboot-img"
for tool in sfdisk mkfs.ext4 debugfs mkfs.vfat mcopy; do
    command -v $tool >/dev/null 2>&1 || skip_all "$tool not installed"
done
W=$(mktemp -d "${TMPDIR:-/tmp}/image-roundtrip.XXXXXX")
loop=
cleanup() {
    [ -n "$loop" ] && { umount "$W/mnt" 2>/dev/null; losetup -d "$loop" 2>/dev/null; }
    rm -rf "$W"
}
trap cleanup EXIT
cd "$W" || exit 1

# A small OS-like tree: text, a binary, an already-compressed file.
mkdir -p tree/doc tree/bin
for i in 1 2 3 4 5 6; do
    seq 1 20000 | sed "s/^/line $i of a text file in the tree: /" >tree/doc/text$i.txt
done
head -c 3000000 "$IMG" >tree/bin/tool 2>/dev/null || head -c 3000000 /bin/sh >tree/bin/tool
gzip -c tree/doc/text1.txt >tree/doc/text1.gz

sector=512
# part_off IMAGE N: byte offset of partition N
part_off() { sfdisk -d "$1" | awk -v p="$1$2 " 'index($0, p) == 1 { gsub(",", ""); print $4 * 512 }'; }
part_len() { sfdisk -d "$1" | awk -v p="$1$2 " 'index($0, p) == 1 { gsub(",", ""); print $6 * 512 }'; }
# zero_range FILE OFFSET LENGTH: the bytes are all zero
zero_range() { [ "$(dd if="$1" bs=4096 skip=$(($2 / 4096)) count=$(($3 / 4096)) 2>/dev/null | tr -d '\000' | wc -c)" -eq 0 ]; }
quiet() { "$@" >/dev/null; }
json() { sed -n "s/.*\"$1\":\\([^,}]*\\).*/\\1/p"; }

# --- GPT: ext4 (tree), vfat (files), ntfs or raw full data, and free space ---------------
truncate -s 96M gpt.img
printf 'label: gpt\nsize=24M, type=L, name="root fs"\nsize=16M, type=U\nsize=12M, type=L\ntype=L\n' | sfdisk -q gpt.img
mkfs.ext4 -q -F -d tree -E offset=$(part_off gpt.img 1) gpt.img $(($(part_len gpt.img 1) / 1024))k
mkfs.vfat --offset $(($(part_off gpt.img 2) / sector)) gpt.img $(($(part_len gpt.img 2) / 1024)) >/dev/null 2>&1
mcopy -i gpt.img@@$(part_off gpt.img 2) tree/doc/text2.txt tree/doc/text3.txt tree/bin/tool ::
if command -v mkntfs >/dev/null 2>&1; then
    truncate -s $(part_len gpt.img 3) ntfs.part
    mkntfs -F -q -Q ntfs.part >/dev/null 2>&1
    dd if=ntfs.part of=gpt.img bs=1M seek=$(($(part_off gpt.img 3) / 1048576)) conv=notrunc,sparse status=none
    diag "partition 3 is NTFS"
else
    diag "mkntfs not installed: partition 3 holds raw full data instead of NTFS"
    cat tree/doc/* tree/bin/tool | head -c $(part_len gpt.img 3) |
        dd of=gpt.img bs=1M seek=$(($(part_off gpt.img 3) / 1048576)) conv=notrunc status=none
fi
# partition 4: full data, no filesystem (every chunk read and stored)
for i in 1 2 3 4 5 6 7 8; do cat tree/bin/tool tree/doc/*; done | head -c $(part_len gpt.img 4) |
    dd of=gpt.img bs=1M seek=$(($(part_off gpt.img 4) / 1048576)) conv=notrunc status=none

out=$("$IMG" make gpt.img ./store:gpt --json)
check "make captures a GPT disk" test -f store/images/gpt.pbm
if [ "$(id -u)" -eq 0 ] && command -v partclone.extfs >/dev/null 2>&1 && command -v losetup >/dev/null 2>&1 &&
    [ -e /dev/loop-control ]; then
    mapped=$(echo "$out" | json partitions_mapped)
    check "partclone's used-block map was used (root: $mapped partitions)" test "$mapped" -ge 2
    unused=$(echo "$out" | json chunks_unused)
    check "free space is not stored ($unused unused chunks)" test "$unused" -ge 1
else
    skip "partclone used-block maps need root and loop devices"
    skip "free space from used-block maps"
fi
info=$("$IMG" info ./store:gpt)
contains "info names the ext4 partition" "$info" "fs ext4"
contains "info names the vfat partition" "$info" "fs vfat"
contains "info keeps the GPT partition name" "$info" "name root fs"
contains "info shows the dedup ratio" "$info" "dedup (ratio"
check "verify passes on a fresh capture" quiet "$IMG" verify ./store:gpt
"$IMG" restore ./store:gpt gpt.out >/dev/null
check "GPT disk restored bit-exact (table and backup table included)" cmp gpt.img gpt.out

# --- MBR with an extended partition and logicals, codec none ----------------------------
truncate -s 48M mbr.img
printf 'label: dos\n,12M,83\n,,5\n,10M,83\n,,c\n' | sfdisk -q mbr.img
mkfs.ext4 -q -F -d tree/doc -E offset=$(part_off mbr.img 1) mbr.img $(($(part_len mbr.img 1) / 1024))k
mkfs.ext4 -q -F -d tree/bin -E offset=$(part_off mbr.img 5) mbr.img $(($(part_len mbr.img 5) / 1024))k
mkfs.vfat --offset $(($(part_off mbr.img 6) / sector)) mbr.img $(($(part_len mbr.img 6) / 1024)) >/dev/null 2>&1
mcopy -i mbr.img@@$(part_off mbr.img 6) tree/doc/text4.txt ::
"$IMG" make mbr.img dir:store:mbr --codec none >/dev/null
check "codec none stores chunks raw" sh -c "! grep -q ' zstd ' store/images/mbr.pbm && grep -q ' none ' store/images/mbr.pbm"
"$IMG" restore dir:store:mbr mbr.out >/dev/null
check "MBR disk with logical partitions restored bit-exact (EBRs included)" cmp mbr.img mbr.out
"$IMG" make mbr.img ./store:mbr-l1 --level 1 --chunk-size 1048576 >/dev/null
"$IMG" restore ./store:mbr-l1 mbr.out2 >/dev/null
check "zstd level 1 with 1 MiB chunks restores bit-exact" cmp mbr.img mbr.out2

# --- one partition alone ----------------------------------------------------------------
off1=$(part_off gpt.img 1)
len1=$(part_len gpt.img 1)
dd if=gpt.img of=p1.expected bs=1M skip=$((off1 / 1048576)) count=$((len1 / 1048576)) status=none
"$IMG" restore ./store:gpt p1.out --partition 1 >/dev/null
check "partition 1 restored alone onto a new file" cmp p1.expected p1.out
cp gpt.img gpt.wiped
dd if=/dev/zero of=gpt.wiped bs=1M seek=$((off1 / 1048576)) count=$((len1 / 1048576)) conv=notrunc status=none
"$IMG" restore ./store:gpt gpt.wiped --partition 1 >/dev/null
check "partition 1 restored into its place on a disk" cmp gpt.img gpt.wiped
"$IMG" make gpt.img ./store:only2 --partitions 2 >/dev/null
grep -c '^a$' store/images/only2.pbm >/dev/null
check "--partitions 2 leaves the others out" test "$(grep -c '^a$' store/images/only2.pbm)" -gt 0
if "$IMG" restore ./store:only2 p1.none --partition 1 2>err.txt; then not_ok "restoring an uncaptured partition fails"; else
    contains "restoring an uncaptured partition fails" "$(cat err.txt)" "not captured"; fi

# --- delta restore: change a few files, count the chunks written -------------------------
cp gpt.img gpt2.img
echo "a changed file" >changed.txt
debugfs -w -R "write changed.txt changed" "gpt2.img?offset=$off1" >/dev/null 2>&1
mcopy -o -i gpt2.img@@$(part_off gpt2.img 2) changed.txt ::text2.txt
files_before=$(find store/chunks -type f | wc -l)
out=$("$IMG" make gpt2.img ./store:gpt2 --base newest --json)
files_after=$(find store/chunks -type f | wc -l)
new=$(echo "$out" | json chunks_new)
data=$(echo "$out" | json chunks_data)
check "second capture stores only the changed chunks ($new new of $data)" test "$new" -ge 1 -a "$new" -le 4
# Asked for (--base newest), changed chunks are stored as deltas against the newest image at
# the same offsets: the
# new bytes are about the changed blocks, not whole chunks (4 MiB each here).
ndelta=$(echo "$out" | json chunks_delta)
stored2=$(echo "$out" | json bytes_new_stored)
check "the changed chunks are stored as deltas ($ndelta of $new)" test "$ndelta" -ge 1
check "the second capture stores $stored2 new bytes, under 64 KiB for two changed files" \
    test "$stored2" -lt 65536
check "a delta-coded image verifies" quiet "$IMG" verify ./store:gpt2
"$IMG" restore ./store:gpt2 gpt2.full >/dev/null
check "a delta-coded image restores bit-exact onto a new file" cmp gpt2.img gpt2.full
rm -f gpt2.full
out=$("$IMG" make gpt2.img ./nobase:one --base none --json)
check "--base none stores whole chunks" test "$(echo "$out" | json chunks_delta)" -eq 0
rm -rf nobase
# A damaged base is caught through the delta chunk that needs it.
cp -a store dstore
dchunk=$(awk '$3 == "delta" { print $5; exit }' dstore/images/gpt2.pbm)
bfile=$(ls dstore/chunks/*/"$dchunk".*)
printf 'X' | dd of="$bfile" bs=1 seek=20 conv=notrunc status=none
if "$IMG" verify ./dstore:gpt2 >out.txt 2>&1; then not_ok "verify catches a damaged delta base"; else
    contains "verify catches a damaged delta base" "$(cat out.txt)" "base of a delta chunk"; fi
rm -rf dstore
# Chunks the delta must write: where the manifests differ and the new one holds data
# (c) or zeros (z) where the old one held data.
expect=$(paste -d'|' store/images/gpt.pbm store/images/gpt2.pbm | awk -F'|' '
    $1 != $2 && $2 ~ /^c / { n++ } $1 != $2 && $2 == "z" && $1 ~ /^c / { n++ } END { print n + 0 }')
cp gpt.out gpt.delta
out=$("$IMG" restore ./store:gpt2 gpt.delta --delta --json)
written=$(echo "$out" | json chunks_written)
check "delta restore writes exactly the $expect changed chunks (wrote $written)" test "$written" -eq "$expect"
check "delta restore result is bit-exact" cmp gpt2.img gpt.delta
total=$(echo "$out" | json bytes_total)
bytes=$(echo "$out" | json bytes_written)
check "delta restore wrote $bytes of $total bytes" test "$bytes" -lt $((total / 4))

# --- shared chunks and gc ----------------------------------------------------------------
check "two captures share chunks: the second added $((files_after - files_before)) chunk files for $data data chunks" \
    test $((files_after - files_before)) -eq "$new" -a "$new" -lt "$data"
: >store/tmp/w-stale
out=$("$IMG" gc ./store --json)
check "gc removes nothing still referenced" test "$(echo "$out" | json chunks_removed)" -eq 0
check "gc removes stale temporary files" test ! -e store/tmp/w-stale
# What gc may remove once gpt is deleted: its chunks that no other image names, directly
# or as the base of a delta chunk.
gone=$(awk 'FNR == 1 { mine = FILENAME ~ /\/gpt\.pbm$/ }
    /^c / { if (mine) m[$2] = 1; else { k[$2] = 1; if ($3 == "delta") { k[$5] = 1; b[$5] = 1 } } }
    END { n = 0; for (h in m) if (!(h in k)) n++; for (h in b) if (h in m) kept++; print n, kept + 0 }' store/images/*.pbm)
"$IMG" delete ./store:gpt >/dev/null
out=$("$IMG" gc ./store --json)
removed=$(echo "$out" | json chunks_removed)
check "gc after a delete removes the chunks only that image used ($removed, expected ${gone% *})" \
    test "$removed" -eq "${gone% *}"
check "and keeps the ${gone#* } chunks of it that gpt2's deltas apply to" test "${gone#* }" -ge 1
check "the image sharing chunks still verifies after gc" quiet "$IMG" verify ./store:gpt2
"$IMG" restore ./store:gpt2 gpt2.out >/dev/null
check "and still restores bit-exact" cmp gpt2.img gpt2.out

# --- corruption --------------------------------------------------------------------------
# A chunk of partition 4 (full data, codec none in store "raw"): flip one byte in the store.
"$IMG" make gpt2.img ./raw:img --codec none >/dev/null
first_c=$(awk '/^region .* partition=4$/ { p = 1; next } p && /^c / { print $2; exit }' raw/images/img.pbm)
cfile=$(ls raw/chunks/*/"$first_c".raw)
# where that chunk lands on the disk: the partition's start (it is the first chunk there)
coff=$(part_off gpt2.img 4)
printf 'X' | dd of="$cfile" bs=1 seek=1000 conv=notrunc status=none
if "$IMG" verify ./raw:img >out.txt 2>&1; then not_ok "verify catches a corrupted chunk"; else
    contains "verify catches a corrupted chunk and names it" "$(cat out.txt)" "$first_c"; fi
if "$IMG" restore ./raw:img bad.out --json >out.txt 2>err.txt; then
    not_ok "restore refuses a corrupted chunk"
else
    contains "restore fails on the corrupted chunk" "$(cat err.txt)" "hash mismatch"
    contains "a restore failing part-way says so" "$(cat err.txt)" "failed part-way"
    contains "the JSON result says partial" "$(cat out.txt)" '"partial":true'
    check "the corrupted chunk's bytes never reached the disk" zero_range bad.out "$coff" 1048576
fi
# The manifest: one changed byte and the seal no longer matches.
sed 's/^z$/u/' store/images/gpt2.pbm >tmp.pbm && cat tmp.pbm >store/images/gpt2.pbm
if "$IMG" verify ./store:gpt2 2>err.txt; then not_ok "verify catches a changed manifest"; else
    contains "verify catches a changed manifest" "$(cat err.txt)" "seal"; fi
if "$IMG" restore ./store:gpt2 man.out 2>err.txt; then not_ok "restore refuses a changed manifest"; else
    contains "restore refuses a changed manifest" "$(cat err.txt)" "seal"
    check "nothing was written for it" test ! -e man.out
fi

# --- targets: too small, larger --------------------------------------------------------
truncate -s 32M small.out
if "$IMG" restore dir:store:mbr small.out 2>err.txt; then not_ok "a too-small target is refused"; else
    contains "a too-small target is refused naming both sizes" "$(cat err.txt)" "33554432 bytes, the image needs 50331648"
fi
before=$(cksum <small.out)
"$IMG" restore dir:store:mbr small.out 2>/dev/null
check "nothing was written to the too-small target" test "$(cksum <small.out)" = "$before"
truncate -s 128M big.out
out=$("$IMG" restore ./store:mbr-l1 big.out --json)
check "MBR onto a larger disk: the first 48 MiB are the image" cmp -n 50331648 mbr.img big.out
"$IMG" make gpt2.img ./store:gpt3 >/dev/null
truncate -s 128M bigg.out
out=$("$IMG" restore ./store:gpt3 bigg.out --json)
contains "GPT onto a larger disk moves the backup header" "$out" '"gpt_moved":true'
check "the grown GPT verifies" sfdisk --verify -q bigg.out
check "the partitions are unchanged" test "$(sfdisk -d bigg.out | grep '^bigg.out' | sed 's/^bigg.out//')" = \
    "$(sfdisk -d gpt2.img | grep '^gpt2.img' | sed 's/^gpt2.img//')"
lastlba=$(sfdisk -d bigg.out | awk '/^last-lba/ { print $2 }')
check "the usable area reaches the new end (last-lba $lastlba)" test "$lastlba" -gt $((96 * 2048))

# --- archives and raw image files ---------------------------------------------------------
"$IMG" export ./store:gpt3 gpt3.pbi >/dev/null
"$IMG" import gpt3.pbi ./other:gpt3 >/dev/null
"$IMG" restore ./other:gpt3 arch.out >/dev/null
check "export/import through a .pbi archive restores bit-exact" cmp gpt2.img arch.out
"$IMG" export ./store:gpt3 - | "$IMG" import - ./piped:gpt3 >/dev/null
check "an archive streams through a pipe" quiet "$IMG" verify ./piped:gpt3
size=$(wc -c <gpt3.pbi)
head -c $((size - 100)) gpt3.pbi >cut.pbi
if "$IMG" import cut.pbi ./cut:x 2>/dev/null; then not_ok "a truncated archive is refused"; else
    check "a truncated archive is refused and adds no image" test ! -e cut/images/x.pbm; fi
"$IMG" import gpt2.img ./rawimp:disk >/dev/null
"$IMG" export ./rawimp:disk rawexp.img >/dev/null
check "import/export of raw disk image files" cmp gpt2.img rawexp.img

# --- block devices (root: a loop device over a file) ------------------------------------
if [ "$(id -u)" -eq 0 ] && [ -e /dev/loop-control ] && truncate -s 48M blk.img &&
    loop=$(losetup --find --show blk.img 2>/dev/null); then
    "$IMG" restore dir:store:mbr "$loop" >/dev/null 2>&1
    check "restore onto a block device is bit-exact" cmp mbr.img "$loop"
    mkdir mnt
    mkfs.ext4 -q -F "$loop" && mount "$loop" mnt 2>/dev/null && mounted=yes || mounted=
    if [ -n "$mounted" ]; then
        if "$IMG" restore dir:store:mbr "$loop" 2>err.txt; then not_ok "a mounted target is refused"; else
            contains "a mounted target is refused" "$(cat err.txt)" "mounted"; fi
        umount mnt
    else
        skip "mounting the loop device failed"
    fi
    losetup -d "$loop"
    loop=
else
    skip "restore onto a block device needs root and loop devices"
    skip "a mounted target is refused (root)"
fi

# --- STORE:NAME rules --------------------------------------------------------------------
if "$IMG" info store:gpt3 2>err.txt; then not_ok "HOST:NAME is a server, not a directory"; else
    contains "HOST:NAME is a server, not a directory" "$(cat err.txt)" "names a server"; fi
check "dir:PATH:NAME names a directory" quiet "$IMG" info dir:store:gpt3
check "an absolute path names a directory" quiet "$IMG" info "$W/store:gpt3"
if "$IMG" make gpt.img ./store:../x 2>/dev/null; then not_ok "bad image names are refused"; else ok "bad image names are refused"; fi

finish

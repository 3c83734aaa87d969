#!/bin/sh
# golden-disk.sh - builds the end-to-end tests' "golden" disk image file: a tiny bootable PC
# whose operating system only prints a marker naming its disk and powers off.
#
#   sh golden-disk.sh OUT.img VERSION VMLINUZ BUSYBOX [SIZE_MIB]
#
# GPT, 64 MiB by default:
#   1  EFI system partition (FAT, 32 MiB, legacy-BIOS-bootable attribute) holding
#        /vmlinuz, /initrd.gz, /syslinux.cfg + ldlinux.sys (BIOS: syslinux's gptmbr.bin in
#        the MBR chains to it), /EFI/BOOT/BOOTX64.EFI (syslinux.efi) + ldlinux.e64 +
#        syslinux.cfg (UEFI: OVMF boots the removable-media path)
#   2  Linux data partition (ext4) with a few MiB of files, so captures have content that
#        partclone maps and restores must carry
# The marker, on the serial console: "preboot-golden: disk golden-VERSION booted". VERSION
# is on the kernel command line (syslinux.cfg), so a new version changes a few KiB of the
# disk: what a delta restore should write.
#
# Builds without mounting anything: mkfs.vfat and mke2fs at offsets, mtools, syslinux's
# mtools installer. Needs sfdisk, mkfs.vfat, mtools, syslinux (+ syslinux-common,
# syslinux-efi), mke2fs, cpio, gzip.
set -eu
OUT=$1 VERSION=$2 VMLINUZ=$3 BUSYBOX=$4 SIZE=${5:-64}
SYSLINUX_MODS=/usr/lib/syslinux/modules
W=$(mktemp -d "${TMPDIR:-/tmp}/golden.XXXXXX")
trap 'rm -rf "$W"' EXIT

# The operating system: busybox and an /init that prints the marker and powers off.
mkdir -p "$W/root/bin" "$W/root/proc" "$W/root/dev"
cp "$BUSYBOX" "$W/root/bin/busybox"
cat >"$W/root/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
v=$(/bin/busybox sed -n 's/.*golden=\([^ ]*\).*/\1/p' /proc/cmdline)
echo "preboot-golden: disk golden-$v booted"
/bin/busybox poweroff -f
EOF
chmod 0755 "$W/root/init"
(cd "$W/root" && find . | cpio -o -H newc -R 0:0 --quiet) | gzip -9 -n >"$W/initrd.gz"

cfg() { # the same file for BIOS and UEFI syslinux
    cat <<EOF
SERIAL 0 115200
DEFAULT golden
PROMPT 0
TIMEOUT 1
LABEL golden
  KERNEL /vmlinuz
  INITRD /initrd.gz
  APPEND console=ttyS0 quiet panic=5 golden=$VERSION
EOF
}
cfg >"$W/syslinux.cfg"

rm -f "$OUT"
truncate -s "${SIZE}M" "$OUT"
sfdisk -q "$OUT" <<EOF
label: gpt
start=2048, size=65536, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=ESP, attrs=LegacyBIOSBootable
start=67584, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=data
EOF
ESP_OFF=$((2048 * 512))
# (mkfs.vfat warns that the file is larger than the partition: it is meant to be.)
mkfs.vfat -F 16 -n GOLDEN --offset=2048 "$OUT" $((65536 / 2)) >/dev/null 2>&1
img="$OUT@@$ESP_OFF"
export MTOOLS_SKIP_CHECK=1
mmd -i "$img" ::/EFI ::/EFI/BOOT
mcopy -i "$img" "$VMLINUZ" ::/vmlinuz
mcopy -i "$img" "$W/initrd.gz" ::/initrd.gz
mcopy -i "$img" "$W/syslinux.cfg" ::/syslinux.cfg
mcopy -i "$img" /usr/lib/SYSLINUX.EFI/efi64/syslinux.efi ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$img" "$SYSLINUX_MODS/efi64/ldlinux.e64" ::/EFI/BOOT/ldlinux.e64
mcopy -i "$img" "$W/syslinux.cfg" ::/EFI/BOOT/syslinux.cfg
syslinux --install --offset "$ESP_OFF" "$OUT"
dd if=/usr/lib/syslinux/mbr/gptmbr.bin of="$OUT" bs=440 count=1 conv=notrunc status=none

# The data partition: a few MiB of files (some random, some text), ext4 built from a tree.
mkdir -p "$W/data/etc" "$W/data/srv"
echo "golden-$VERSION" >"$W/data/etc/golden-version"
head -c 3145728 /dev/urandom >"$W/data/srv/blob.bin"
seq 1 100000 >"$W/data/srv/numbers.txt"
DATA_SECTORS=$(($(stat -c %s "$OUT") / 512 - 67584 - 34))
mke2fs -q -t ext4 -F -E offset=$((67584 * 512)) -d "$W/data" -L golden-data "$OUT" $((DATA_SECTORS / 2))k

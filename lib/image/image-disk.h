/* image-disk.h - disks and disk image files: open, size, partition table (libfdisk),
 * filesystem type (libblkid), used-block maps (partclone), GPT repair after growing. */
#pragma once

#include "image-format.h"

G_BEGIN_DECLS

typedef struct {
    int fd;
    char *path;
    guint64 size;
    guint32 sector_size;
    gboolean is_block;
    gboolean created; /* a new regular file made by pb_disk_open: reads as zeros */
} PbDisk;

/* Opens a block device or regular file. For writing, a missing path is created as a
 * regular file of create_size bytes (0: refuse). */
gboolean pb_disk_open(PbDisk *d, const char *path, gboolean writable, guint64 create_size,
                      GError **error);
void pb_disk_close(PbDisk *d);

/* Fills disk size, sector size, label, disk id and partitions (with their filesystem) of
 * m from the disk, then its regions: one per partition (extended containers excepted) and
 * one "table" region for every gap (MBR/GPT areas, EBRs, space between partitions). */
gboolean pb_disk_read_layout(PbDisk *d, PbManifest *m, GError **error);

/* The used byte ranges of partition p (relative to its start) from partclone's domain map,
 * or NULL with an error saying why not (no partclone for that filesystem, no loop device,
 * partclone failed): callers then read everything. */
GArray *pb_disk_used_map(PbDisk *d, const PbPartition *p, GError **error);

/* Finds partition partno in the table on path: 1 found, 0 no partition table at all,
 * -1 a table without that partition. */
int pb_disk_find_partition(const char *path, int partno, guint64 *start, guint64 *size);

/* After restoring a GPT disk onto a larger one: moves the backup header and table to the
 * end and extends the usable area (libfdisk rewrites them). */
gboolean pb_disk_fix_gpt(const char *path, GError **error);

G_END_DECLS

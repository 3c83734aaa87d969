/* image-disk.c - the disk side of capture and restore. Partition tables go through
 * util-linux's libfdisk (MBR with logical partitions and GPT, with their quirks, as fdisk
 * and sfdisk handle them) and filesystems through libblkid, rather than parsers of ours. */
#include "image-disk.h"

#include <blkid.h>
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <libfdisk.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

gboolean pb_disk_open(PbDisk *d, const char *path, gboolean writable, guint64 create_size,
                      GError **error)
{
    memset(d, 0, sizeof(*d));
    d->fd = -1;
    int flags = (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC;
    struct stat pre;
    /* A block device opened for writing is claimed exclusively: the kernel refuses while it
     * or any of its partitions is mounted or held by another program. */
    if (writable && stat(path, &pre) == 0 && S_ISBLK(pre.st_mode))
        flags |= O_EXCL;
    int fd = open(path, flags);
    if (fd < 0 && errno == ENOENT && writable && create_size > 0) {
        fd = open(path, flags | O_CREAT | O_EXCL, 0644);
        if (fd >= 0 && ftruncate(fd, (off_t)create_size) != 0) {
            int e = errno;
            close(fd);
            unlink(path);
            errno = e;
            fd = -1;
        }
        d->created = fd >= 0;
    }
    if (fd < 0) {
        int e = errno;
        g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_IO, "cannot open %s: %s%s", path,
                    g_strerror(e), e == EBUSY ? " (mounted, or in use by another program)" : "");
        return FALSE;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))) {
        close(fd);
        g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_INVALID,
                    "%s is neither a block device nor a regular file", path);
        return FALSE;
    }
    d->fd = fd;
    d->path = g_strdup(path);
    d->sector_size = 512;
    if (S_ISBLK(st.st_mode)) {
        guint64 sz = 0;
        int ss = 512;
        d->is_block = TRUE;
        if (ioctl(fd, BLKGETSIZE64, &sz) != 0) {
            pb_disk_close(d);
            g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_IO, "cannot size %s", path);
            return FALSE;
        }
        if (ioctl(fd, BLKSSZGET, &ss) == 0 && ss >= 512)
            d->sector_size = (guint32)ss;
        d->size = sz;
    } else {
        d->size = (guint64)st.st_size;
    }
    return TRUE;
}

void pb_disk_close(PbDisk *d)
{
    if (d->fd >= 0)
        close(d->fd);
    d->fd = -1;
    g_clear_pointer(&d->path, g_free);
}

static char *probe_fs(int fd, guint64 off, guint64 size)
{
    blkid_probe pr = blkid_new_probe();
    char *fs = NULL;
    if (pr == NULL)
        return NULL;
    if (blkid_probe_set_device(pr, fd, (blkid_loff_t)off, (blkid_loff_t)size) == 0) {
        blkid_probe_enable_superblocks(pr, 1);
        blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE);
        const char *v;
        if (blkid_do_safeprobe(pr) == 0 && blkid_probe_lookup_value(pr, "TYPE", &v, NULL) == 0)
            fs = g_strdup(v);
    }
    blkid_free_probe(pr);
    return fs;
}

static int cmp_part(gconstpointer a, gconstpointer b)
{
    guint64 x = ((const PbPartition *)a)->start, y = ((const PbPartition *)b)->start;
    return x < y ? -1 : x > y;
}

gboolean pb_disk_read_layout(PbDisk *d, PbManifest *m, GError **error)
{
    m->disk_size = d->size;
    m->sector_size = d->sector_size;
    if (d->size == 0 || d->size % d->sector_size != 0) {
        g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_INVALID,
                    "%s: size %" G_GUINT64_FORMAT " is not a whole number of %u-byte sectors",
                    d->path, d->size, d->sector_size);
        return FALSE;
    }
    struct fdisk_context *cxt = fdisk_new_context();
    if (cxt == NULL || fdisk_assign_device(cxt, d->path, 1) != 0) {
        if (cxt != NULL)
            fdisk_unref_context(cxt);
        g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_IO, "libfdisk cannot open %s", d->path);
        return FALSE;
    }
    g_autoptr(GArray) parts = g_array_new(FALSE, TRUE, sizeof(PbPartition));
    if (fdisk_has_label(cxt)) {
        guint64 ss = fdisk_get_sector_size(cxt);
        char *id = NULL;
        g_free(m->label);
        m->label = g_strdup(fdisk_label_get_name(fdisk_get_label(cxt, NULL)));
        if (fdisk_get_disklabel_id(cxt, &id) == 0 && id != NULL) {
            g_free(m->disk_id);
            m->disk_id = g_strdup(id);
            free(id);
        }
        struct fdisk_table *tb = NULL;
        if (fdisk_get_partitions(cxt, &tb) == 0 && tb != NULL) {
            struct fdisk_iter *itr = fdisk_new_iter(FDISK_ITER_FORWARD);
            struct fdisk_partition *pa;
            while (fdisk_table_next_partition(tb, itr, &pa) == 0) {
                if (fdisk_partition_is_container(pa) || !fdisk_partition_has_start(pa) ||
                    !fdisk_partition_has_size(pa) || !fdisk_partition_has_partno(pa))
                    continue;
                PbPartition p = {0};
                p.partno = (int)fdisk_partition_get_partno(pa) + 1;
                p.start = (guint64)fdisk_partition_get_start(pa) * ss;
                p.size = (guint64)fdisk_partition_get_size(pa) * ss;
                if (p.size == 0 || p.start + p.size > d->size)
                    continue;
                struct fdisk_parttype *t = fdisk_partition_get_type(pa);
                if (t != NULL && fdisk_parttype_get_string(t) != NULL)
                    p.type = g_strdup(fdisk_parttype_get_string(t));
                else if (t != NULL)
                    p.type = g_strdup_printf("%x", fdisk_parttype_get_code(t));
                const char *v;
                if ((v = fdisk_partition_get_uuid(pa)) != NULL && *v)
                    p.uuid = g_strdup(v);
                if ((v = fdisk_partition_get_name(pa)) != NULL && *v)
                    p.name = g_strdup(v);
                if ((v = fdisk_partition_get_attrs(pa)) != NULL && *v)
                    p.attrs = g_strdup(v);
                p.fs = probe_fs(d->fd, p.start, p.size);
                g_array_append_val(parts, p);
            }
            fdisk_free_iter(itr);
            fdisk_unref_table(tb);
        }
    }
    fdisk_unref_context(cxt);
    g_array_sort(parts, cmp_part);
    /* Regions tile the disk: partitions, and "table" regions for what lies between. */
    guint64 pos = 0;
    for (guint i = 0; i < parts->len; i++) {
        PbPartition *p = &g_array_index(parts, PbPartition, i);
        if (p->start < pos) /* overlapping entries: keep the table bytes, skip this one */
            continue;
        if (p->start > pos)
            pb_manifest_add_region(m, pos, p->start - pos, 0);
        pb_manifest_add_region(m, p->start, p->size, p->partno);
        pos = p->start + p->size;
        g_array_append_val(m->partitions, *p);
        memset(p, 0, sizeof(*p));
    }
    if (pos < d->size)
        pb_manifest_add_region(m, pos, d->size - pos, 0);
    for (guint i = 0; i < parts->len; i++) { /* the skipped ones */
        PbPartition *p = &g_array_index(parts, PbPartition, i);
        g_free(p->type);
        g_free(p->uuid);
        g_free(p->name);
        g_free(p->attrs);
        g_free(p->fs);
    }
    return TRUE;
}

static const char *partclone_for(const char *fs)
{
    if (fs == NULL)
        return NULL;
    if (strcmp(fs, "ext2") == 0 || strcmp(fs, "ext3") == 0 || strcmp(fs, "ext4") == 0)
        return "partclone.extfs";
    if (strcmp(fs, "vfat") == 0)
        return "partclone.fat";
    if (strcmp(fs, "ntfs") == 0)
        return "partclone.ntfs";
    if (strcmp(fs, "xfs") == 0)
        return "partclone.xfs";
    if (strcmp(fs, "btrfs") == 0)
        return "partclone.btrfs";
    return NULL;
}

static gboolean run(char **argv, char **out, GError **error)
{
    int status;
    g_autofree char *err = NULL;
    if (!g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, out, &err, &status, error))
        return FALSE;
    if (!g_spawn_check_wait_status(status, NULL)) {
        g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_IO, "%s failed: %s", argv[0],
                    err != NULL ? g_strstrip(err) : "");
        return FALSE;
    }
    return TRUE;
}

GArray *pb_disk_used_map(PbDisk *d, const PbPartition *p, GError **error)
{
    const char *tool = partclone_for(p->fs);
    g_autofree char *tool_path = tool != NULL ? g_find_program_in_path(tool) : NULL;
    if (tool_path == NULL) {
        g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_INVALID, "no partclone for filesystem %s",
                    p->fs != NULL ? p->fs : "(none)");
        return NULL;
    }
    /* partclone reads a device or file from its start; a read-only loop device over the
     * partition's bytes gives it one without copying (needs root and loop support). */
    g_autofree char *off = g_strdup_printf("%" G_GUINT64_FORMAT, p->start);
    g_autofree char *lim = g_strdup_printf("%" G_GUINT64_FORMAT, p->size);
    char *losetup[] = {"losetup", "--find",      "--show", "--read-only", "--offset",
                       off,       "--sizelimit", lim,      d->path,       NULL};
    g_autofree char *loop = NULL;
    if (!run(losetup, &loop, error))
        return NULL;
    g_strstrip(loop);
    g_autofree char *tmpdir = g_dir_make_tmp("preboot-img-XXXXXX", error);
    GArray *map = NULL;
    if (tmpdir != NULL) {
        g_autofree char *mapfile = g_build_filename(tmpdir, "domain", NULL);
        g_autofree char *log = g_build_filename(tmpdir, "log", NULL);
        /* -f 0: partclone's progress thread sleeps --UI-fresh seconds (default 2) between
         * looks at whether the work is done, and partclone waits for it before exiting, so
         * a map of milliseconds took 2 s (a fifth of a 4 GiB capture). With 0 it polls
         * while the map runs: the map reads only the filesystem's bitmaps. */
        char *pc[] = {(char *)tool, "-q", "-f",    "0",  "-D", "--domain", "-s",
                      loop,         "-o", mapfile, "-L", log,  NULL};
        g_autofree char *text = NULL;
        gsize len;
        if (run(pc, NULL, error) && g_file_get_contents(mapfile, &text, &len, error))
            map = pb_domain_parse(text, len, error);
        g_unlink(mapfile);
        g_unlink(log);
        g_rmdir(tmpdir);
    }
    char *detach[] = {"losetup", "--detach", loop, NULL};
    run(detach, NULL, NULL);
    return map;
}

int pb_disk_find_partition(const char *path, int partno, guint64 *start, guint64 *size)
{
    struct fdisk_context *cxt = fdisk_new_context();
    int found = 0;
    if (cxt != NULL && fdisk_assign_device(cxt, path, 1) == 0 && fdisk_has_label(cxt)) {
        struct fdisk_partition *pa = NULL;
        found = -1;
        if (partno > 0 && fdisk_get_partition(cxt, (size_t)partno - 1, &pa) == 0 &&
            fdisk_partition_has_start(pa) && fdisk_partition_has_size(pa)) {
            guint64 ss = fdisk_get_sector_size(cxt);
            *start = (guint64)fdisk_partition_get_start(pa) * ss;
            *size = (guint64)fdisk_partition_get_size(pa) * ss;
            found = *size > 0 ? 1 : -1;
        }
        fdisk_unref_partition(pa);
    }
    if (cxt != NULL)
        fdisk_unref_context(cxt);
    return found;
}

gboolean pb_disk_fix_gpt(const char *path, GError **error)
{
    struct fdisk_context *cxt = fdisk_new_context();
    int rc = -1;
    if (cxt != NULL && fdisk_assign_device(cxt, path, 0) == 0) {
        rc = 0;
        /* libfdisk notices a backup header that is not at the end when it reads the label
         * and puts it there (with LastUsableLBA extended) when the label is written. */
        if (fdisk_is_label(cxt, GPT))
            rc = fdisk_write_disklabel(cxt);
        if (fdisk_deassign_device(cxt, 0) != 0 && rc == 0)
            rc = -1;
    }
    if (cxt != NULL)
        fdisk_unref_context(cxt);
    if (rc != 0) {
        g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_IO,
                    "cannot move the GPT backup header to the end of %s", path);
        return FALSE;
    }
    return TRUE;
}

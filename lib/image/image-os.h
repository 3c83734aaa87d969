/* image-os.h - the chunk store's few OS calls: locking the store, making files durable and
 * renaming them into place, and reading them (lib/image and backends/local). One twin per OS
 * (image-os-posix.c, image-os-win32.c, chosen in lib/image/local.mk) keeps image-store.c free of
 * #ifdef. Each returns FALSE or -1 with errno set on failure. */
#pragma once

#include <glib.h>

/* Opens the store's lock file, creating it; -1 on failure. */
int pb_image_os_lock_open(const char *path);

/* Takes the lock on fd shared or exclusive in place of the one fd holds (flock's
 * conversion); without wait, FALSE at once when another holder keeps it, fd then still
 * holding a shared lock. */
gboolean pb_image_os_lock(int fd, gboolean exclusive, gboolean wait);

/* g_mkstemp_full for a store file (read and write): binary, not inherited, and on Windows
 * open such that it may still be renamed or deleted. */
int pb_image_os_mkstemp(char *tmpl);

/* Opens a store file for reading, the same way. -1 on failure. */
int pb_image_os_open_read(const char *path);

/* pread: len bytes at offset, without moving a shared position. -1 on failure. */
gssize pb_image_os_pread(int fd, void *buf, gsize len, guint64 offset);

/* TRUE when both names exist and are links to one file. */
gboolean pb_image_os_same_file(const char *a, const char *b);

/* Makes to a new hard link to from (to must not exist). */
gboolean pb_image_os_link(const char *from, const char *to);

/* Bulk bytes around the page cache: buf's alignment (and of a length) for
 * pb_image_os_write_direct. */
#define PB_IMAGE_OS_DIRECT_ALIGN 4096

/* Writes the first len bytes of buf, rounded down to PB_IMAGE_OS_DIRECT_ALIGN, to the new
 * file fd straight to the disk (O_DIRECT), not through the page cache: for bytes nobody
 * reads back soon (a pulled chunk, kept and served from memory), whose copy into fresh
 * page-cache pages cost more than their transfer. Returns how many were written so (0
 * where buf is not aligned, the file system or OS has no such writes, or one failed); the
 * caller writes the rest, from there on, as usual. */
gsize pb_image_os_write_direct(int fd, const void *buf, gsize len);

/* Puts one file's bytes on disk now (fsync). */
gboolean pb_image_os_sync_file(int fd);

/* A temporary written unsynced, to be made durable by the next pb_image_os_sync_batch on
 * the store's lock file: the batch costs one sync for the whole store where the OS has one
 * (syncfs), else each file is synced here. The store also calls sync_batch after renaming
 * a batch into place, for the renames (syncfs covers directories; on Windows the renames
 * are written through). */
gboolean pb_image_os_batch_add(int fd);
gboolean pb_image_os_sync_batch(int lock_fd);

/* Makes the renames and deletions in dir durable. */
gboolean pb_image_os_sync_dir(const char *dir);

/* Renames from to to, replacing to, atomically. */
gboolean pb_image_os_rename(const char *from, const char *to);

/* When path was last written, in nanoseconds since the epoch (as finely as the OS keeps it:
 * POSIX st_mtim; Windows to the second), or -1 when it cannot be read. */
gint64 pb_image_os_mtime_ns(const char *path);

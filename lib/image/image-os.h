/* image-os.h - the chunk store's few OS calls: locking the store, making files durable and
 * renaming them into place. One twin per OS (image-os-posix.c, image-os-win32.c, chosen in
 * lib/image/local.mk) keeps image-store.c free of #ifdef. Each returns FALSE or -1 with
 * errno set on failure. */
#pragma once

#include <glib.h>

/* Opens the store's lock file, creating it; -1 on failure. */
int pb_image_os_lock_open(const char *path);

/* Takes the lock on fd shared or exclusive in place of the one fd holds (flock's
 * conversion); without wait, FALSE at once when another holder keeps it, fd then still
 * holding a shared lock. */
gboolean pb_image_os_lock(int fd, gboolean exclusive, gboolean wait);

/* g_mkstemp_full for writing a store file: binary, not inherited. */
int pb_image_os_mkstemp(char *tmpl);

/* Puts one file's bytes on disk now (fsync). */
gboolean pb_image_os_sync_file(int fd);

/* A temporary written unsynced, to be made durable by the next pb_image_os_sync_batch on
 * the store's lock file: the batch costs one sync for the whole store where the OS has one
 * (syncfs), else each file is synced here. */
gboolean pb_image_os_batch_add(int fd);
gboolean pb_image_os_sync_batch(int lock_fd);

/* Makes the renames and deletions in dir durable. */
gboolean pb_image_os_sync_dir(const char *dir);

/* Renames from to to, replacing to, atomically. */
gboolean pb_image_os_rename(const char *from, const char *to);

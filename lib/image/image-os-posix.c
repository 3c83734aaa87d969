/* image-os-posix.c - the store's OS calls on Linux (image-os.h). */
#define _GNU_SOURCE /* syncfs */
#include "image-os.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <sys/file.h>
#include <unistd.h>

int pb_image_os_lock_open(const char *path)
{
    return open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
}

gboolean pb_image_os_lock(int fd, gboolean exclusive, gboolean wait)
{
    return flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | (wait ? 0 : LOCK_NB)) == 0;
}

int pb_image_os_mkstemp(char *tmpl)
{
    return g_mkstemp_full(tmpl, O_WRONLY | O_CLOEXEC, 0644);
}

gboolean pb_image_os_sync_file(int fd)
{
    return fsync(fd) == 0;
}

gboolean pb_image_os_batch_add(int fd)
{
    (void)fd; /* pb_image_os_sync_batch's syncfs covers it */
    return TRUE;
}

gboolean pb_image_os_sync_batch(int lock_fd)
{
    /* One syncfs puts every temporary of the store's file system on disk. */
    return syncfs(lock_fd) == 0;
}

gboolean pb_image_os_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return FALSE;
    gboolean ok = fsync(fd) == 0;
    int e = errno;
    close(fd);
    errno = e;
    return ok;
}

gboolean pb_image_os_rename(const char *from, const char *to)
{
    return rename(from, to) == 0;
}

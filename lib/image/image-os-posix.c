/* image-os-posix.c - the store's OS calls on Linux (image-os.h). */
#define _GNU_SOURCE /* syncfs */
#include "image-os.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
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
    return g_mkstemp_full(tmpl, O_RDWR | O_CLOEXEC, 0644);
}

int pb_image_os_open_read(const char *path)
{
    return open(path, O_RDONLY | O_CLOEXEC);
}

gssize pb_image_os_pread(int fd, void *buf, gsize len, guint64 offset)
{
    for (;;) {
        ssize_t n = pread(fd, buf, len, (off_t)offset);
        if (n < 0 && errno == EINTR)
            continue;
        return n;
    }
}

gboolean pb_image_os_same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_ino == sb.st_ino &&
           sa.st_dev == sb.st_dev;
}

gboolean pb_image_os_link(const char *from, const char *to)
{
    return link(from, to) == 0;
}

gsize pb_image_os_write_direct(int fd, const void *buf, gsize len)
{
    gsize want = len & ~(gsize)(PB_IMAGE_OS_DIRECT_ALIGN - 1);
    if (want == 0 || (guintptr)buf % PB_IMAGE_OS_DIRECT_ALIGN != 0)
        return 0;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_DIRECT) != 0)
        return 0; /* EINVAL: a file system without it */
    gsize done = 0;
    while (done < want) {
        ssize_t n = write(fd, (const char *)buf + done, want - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* the caller's buffered write meets the error again, or gets past it */
        done += (gsize)n;
    }
    int e = errno;
    /* The rest (the unaligned tail, or after a short write) goes through the page cache; if
     * the flag stayed, an unaligned rest fails there and the caller reports it. */
    (void)fcntl(fd, F_SETFL, fl);
    errno = e;
    return done;
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

gint64 pb_image_os_mtime_ns(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return -1;
    return (gint64)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
}

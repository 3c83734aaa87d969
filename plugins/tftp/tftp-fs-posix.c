/* tftp-fs-posix.c - tftp-fs.h for Linux and the BSDs. */
#include "build-config.h"

#include "tftp-fs.h"
#include "tftp-path.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#ifdef HAVE_LINUX_OPENAT2_H
#include <linux/openat2.h>
#endif

struct TftpRoot {
    int fd;
    char *path;
};

static int beneath_state = -1; /* -1 unknown, 0 fallback, 1 openat2 works */

TftpRoot *tftp_root_open(const char *path, GError **error)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        /* The caller names the setting and the value: the reason alone. */
        g_set_error_literal(error, G_FILE_ERROR, g_file_error_from_errno(e),
                            e == ENOTDIR ? "not a directory" : g_strerror(e));
        return NULL;
    }
    TftpRoot *r = g_new0(TftpRoot, 1);
    r->fd = fd;
    r->path = g_strdup(path);
    return r;
}

void tftp_root_free(TftpRoot *root)
{
    if (root == NULL)
        return;
    close(root->fd);
    g_free(root->path);
    g_free(root);
}

/* fd is consumed. Directories are opened relative to their parent with O_NOFOLLOW, so
 * a link planted in the tree leads nowhere. */
static void clean_dir(int fd, guint depth, guint *removed, guint *failed)
{
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(dirfd(d), n, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (depth + 1 >= TFTP_FS_CLEAN_DEPTH)
                continue;
            int sub = openat(dirfd(d), n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0)
                clean_dir(sub, depth + 1, removed, failed);
        } else if (S_ISREG(st.st_mode) && tftp_path_is_temporary(n)) {
            if (unlinkat(dirfd(d), n, 0) == 0)
                (*removed)++;
            else
                (*failed)++;
        }
    }
    closedir(d);
}

guint tftp_fs_remove_temporary(TftpRoot *root, guint *failed)
{
    guint removed = 0, dummy = 0;
    if (failed == NULL)
        failed = &dummy;
    *failed = 0;
    int fd = openat(root->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0)
        clean_dir(fd, 0, &removed, failed);
    return removed;
}

const char *tftp_root_path(const TftpRoot *root)
{
    return root->path;
}

/* The portable way: one component at a time, refusing every symbolic link, since without
 * the kernel's help we cannot tell where one points without a race, and refusing ".." as
 * RESOLVE_BENEATH does (EXDEV): the path rules above already refuse it, but this is the
 * last gate on kernels before 5.6, under seccomp filters that refuse openat2, and under
 * valgrind, which does not know openat2. */
static int open_walk(int dirfd, const char *rel, int flags)
{
    g_auto(GStrv) parts = g_strsplit(rel, "/", -1);
    guint n = g_strv_length(parts);
    for (guint i = 0; i < n; i++) {
        if (strcmp(parts[i], "..") == 0 || (*parts[i] == '\0' && i + 1 == n) || rel[0] == '/') {
            errno = EXDEV;
            return -1;
        }
    }
    int cur = dirfd;
    for (guint i = 0; i < n; i++) {
        if (*parts[i] == '\0' || strcmp(parts[i], ".") == 0) {
            if (i + 1 < n)
                continue; /* "a//b", "./a": as the kernel reads them */
        }
        gboolean last = i + 1 == n;
        int f = last ? flags | O_NOFOLLOW : O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
        int next = openat(cur, parts[i], f, 0644);
        int e = errno;
        if (cur != dirfd)
            close(cur);
        if (next < 0) {
            errno = e;
            return -1;
        }
        cur = next;
    }
    return cur;
}

static int open_beneath(int dirfd, const char *rel, int flags)
{
#if defined(HAVE_LINUX_OPENAT2_H) && defined(SYS_openat2)
    if (beneath_state != 0) {
        struct open_how how;
        memset(&how, 0, sizeof(how));
        how.flags = (guint64)flags;
        how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
        long fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
        if (fd >= 0 || (errno != ENOSYS && errno != E2BIG && errno != EPERM)) {
            beneath_state = 1;
            return (int)fd;
        }
        /* ENOSYS: older kernel; EPERM: a seccomp filter (some containers) refusing it. */
        beneath_state = 0;
    }
#endif
    return open_walk(dirfd, rel, flags);
}

void tftp_fs_force_portable(gboolean portable)
{
    beneath_state = portable ? 0 : -1;
}

gboolean tftp_fs_kernel_beneath(void)
{
    if (beneath_state < 0) {
        int fd = open_beneath(AT_FDCWD, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0)
            close(fd);
    }
    return beneath_state == 1;
}

static TftpFsStatus status_from_errno(int e, const char **reason)
{
    switch (e) {
    case ENOENT:
    case ENOTDIR:
        *reason = "no such file";
        return TFTP_FS_NOT_FOUND;
    case EXDEV:
        *reason = "path leads outside the root";
        return TFTP_FS_ACCESS;
    case ELOOP:
        *reason = "symbolic link refused";
        return TFTP_FS_ACCESS;
    case EACCES:
    case EPERM:
    case EROFS:
        *reason = "permission denied";
        return TFTP_FS_ACCESS;
    case EISDIR:
        *reason = "a directory";
        return TFTP_FS_ACCESS;
    case ENOSPC:
    case EDQUOT:
        *reason = "no space left";
        return TFTP_FS_IO;
    default:
        *reason = "I/O error";
        return TFTP_FS_IO;
    }
}

/* ---- reading ---------------------------------------------------------------------------- */

static gssize fd_read(void *data, guint64 offset, guint8 *buf, gsize len)
{
    int fd = GPOINTER_TO_INT(data);
    for (;;) {
        ssize_t r = pread(fd, buf, len, (off_t)offset);
        if (r < 0 && errno == EINTR)
            continue;
        return r;
    }
}

static void fd_close(void *data)
{
    close(GPOINTER_TO_INT(data));
}

TftpFsStatus tftp_fs_open_read(TftpRoot *root, const char *rel, TftpSource *source, guint64 *size,
                               const char **reason)
{
    const char *dummy;
    if (reason == NULL)
        reason = &dummy;
    /* O_NONBLOCK: opening a FIFO must not hang the daemon before fstat can refuse it. */
    int fd = open_beneath(root->fd, rel, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return status_from_errno(errno, reason);
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        *reason = "not a regular file";
        return TFTP_FS_ACCESS;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
#ifdef POSIX_FADV_SEQUENTIAL
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
    source->read = fd_read;
    source->close = fd_close;
    source->data = GINT_TO_POINTER(fd);
    *size = (guint64)st.st_size;
    return TFTP_FS_OK;
}

/* ---- writing ---------------------------------------------------------------------------- */

typedef struct {
    int dirfd;
    int fd;
    char *tmp;
    char *name;
    gboolean overwrite;
} Upload;

static void upload_free(Upload *u)
{
    if (u->fd >= 0)
        close(u->fd);
    if (u->tmp)
        (void)unlinkat(u->dirfd, u->tmp, 0);
    close(u->dirfd);
    g_free(u->tmp);
    g_free(u->name);
    g_free(u);
}

static gboolean upload_write(void *data, const guint8 *buf, gsize len)
{
    Upload *u = data;
    while (len > 0) {
        ssize_t w = write(u->fd, buf, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return FALSE;
        buf += w;
        len -= (gsize)w;
    }
    return TRUE;
}

static gboolean upload_commit(void *data)
{
    Upload *u = data;
    gboolean ok = fsync(u->fd) == 0;
    ok = close(u->fd) == 0 && ok;
    u->fd = -1;
    if (ok) {
        if (u->overwrite) {
            ok = renameat(u->dirfd, u->tmp, u->dirfd, u->name) == 0;
            if (ok)
                g_clear_pointer(&u->tmp, g_free);
        } else {
            /* A link fails with EEXIST when the name appeared since the WRQ: no overwrite
             * sneaks in by a race, where rename would replace silently. */
            ok = linkat(u->dirfd, u->tmp, u->dirfd, u->name, 0) == 0;
        }
    }
    upload_free(u); /* unlinks the temporary name (already gone after a rename) */
    return ok;
}

static void upload_abort(void *data)
{
    upload_free(data);
}

TftpFsStatus tftp_fs_open_write(TftpRoot *root, const char *rel, gboolean overwrite, TftpSink *sink,
                                const char **reason)
{
    const char *dummy;
    if (reason == NULL)
        reason = &dummy;
    g_autofree char *dir = g_path_get_dirname(rel);
    g_autofree char *base = g_path_get_basename(rel);
    int dirfd = open_beneath(root->fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
        return status_from_errno(errno, reason);
    struct stat st;
    if (fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (!S_ISREG(st.st_mode)) {
            close(dirfd);
            *reason = "not a regular file";
            return TFTP_FS_ACCESS;
        }
        if (!overwrite) {
            close(dirfd);
            *reason = "file exists and overwrites are off";
            return TFTP_FS_EXISTS;
        }
    } else if (errno != ENOENT) {
        int e = errno;
        close(dirfd);
        return status_from_errno(e, reason);
    }
    Upload *u = g_new0(Upload, 1);
    u->dirfd = dirfd;
    u->fd = -1;
    u->name = g_strdup(base);
    u->overwrite = overwrite;
    for (int tries = 0; tries < 8 && u->fd < 0; tries++) {
        g_free(u->tmp);
        u->tmp = g_strdup_printf(".%s.%08x.tftp-part", base, g_random_int());
        u->fd = openat(dirfd, u->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (u->fd < 0 && errno != EEXIST)
            break;
    }
    if (u->fd < 0) {
        TftpFsStatus s = status_from_errno(errno, reason);
        g_clear_pointer(&u->tmp, g_free);
        upload_free(u);
        return s;
    }
    sink->write = upload_write;
    sink->commit = upload_commit;
    sink->abort = upload_abort;
    sink->data = u;
    return TFTP_FS_OK;
}

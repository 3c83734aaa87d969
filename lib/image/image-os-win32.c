/* image-os-win32.c - the store's OS calls on Windows (image-os.h).
 *
 * Durability: Windows has neither syncfs nor a directory fsync. Each unsynced temporary is
 * flushed (FlushFileBuffers, through _commit) when it is written rather than once per batch,
 * and renames use MoveFileEx with MOVEFILE_WRITE_THROUGH, which returns only once the
 * rename is on disk; NTFS journals its directories, so there is nothing left for
 * pb_image_os_sync_dir to do. */
#include "image-os.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <io.h>
#include <string.h>
#include <windows.h>

static void set_errno_from(DWORD err)
{
    switch (err) {
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
        errno = ENOENT;
        break;
    case ERROR_ACCESS_DENIED:
    case ERROR_SHARING_VIOLATION:
    case ERROR_LOCK_VIOLATION:
        errno = EACCES;
        break;
    case ERROR_DISK_FULL:
    case ERROR_HANDLE_DISK_FULL:
        errno = ENOSPC;
        break;
    default:
        errno = EIO;
    }
}

int pb_image_os_lock_open(const char *path)
{
    /* Pin the DLL lib/image is linked into (libpreboot-local, the imaging plugin), as -z
     * nodelete does on Linux: GLib runs the destructors of its GPrivate per-thread zstd
     * contexts at thread exit, which must not find the code unmapped. */
    HMODULE self;
    GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_PIN,
                       (LPCWSTR)(void *)pb_image_os_lock_open, &self);
    return g_open(path, O_RDWR | O_CREAT | O_BINARY | O_CLOEXEC, 0644);
}

/* LockFileEx on the lock file's first byte (a lock may lie beyond the end of the file). */
static gboolean lock_byte(HANDLE h, gboolean exclusive, gboolean wait)
{
    OVERLAPPED ov = {0};
    DWORD flags =
        (exclusive ? LOCKFILE_EXCLUSIVE_LOCK : 0) | (wait ? 0 : LOCKFILE_FAIL_IMMEDIATELY);
    return LockFileEx(h, flags, 0, 1, 0, &ov) != 0;
}

gboolean pb_image_os_lock(int fd, gboolean exclusive, gboolean wait)
{
    HANDLE h = (HANDLE)_get_osfhandle(fd);
    if (h == INVALID_HANDLE_VALUE) {
        errno = EBADF;
        return FALSE;
    }
    /* Windows locks do not convert: a handle's own shared lock blocks its exclusive one.
     * Drop it first (flock's conversion is not atomic either); failing, take it back. */
    OVERLAPPED ov = {0};
    UnlockFileEx(h, 0, 1, 0, &ov);
    if (lock_byte(h, exclusive, wait))
        return TRUE;
    DWORD err = GetLastError();
    if (exclusive)
        lock_byte(h, FALSE, FALSE);
    if (err == ERROR_LOCK_VIOLATION || err == ERROR_IO_PENDING)
        errno = EWOULDBLOCK;
    else
        set_errno_from(err);
    return FALSE;
}

/* A CRT descriptor on a file opened with every share mode: MSVCRT's own open() leaves out
 * FILE_SHARE_DELETE, and then a chunk being read or checked could not be renamed into place,
 * replaced or removed by gc. Binary: the CRT's default text mode would turn bytes 0a into
 * 0d 0a. Not inherited by child processes. */
static int open_shared(const char *path, DWORD access, DWORD disposition, int crt_flags)
{
    g_autofree gunichar2 *w = g_utf8_to_utf16(path, -1, NULL, NULL, NULL);
    if (w == NULL) {
        errno = EINVAL;
        return -1;
    }
    HANDLE h = CreateFileW((const wchar_t *)w, access,
                           FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                           disposition, FILE_ATTRIBUTE_NORMAL, NULL);
    if (h == INVALID_HANDLE_VALUE) {
        DWORD err = GetLastError();
        set_errno_from(err);
        if (err == ERROR_FILE_EXISTS || err == ERROR_ALREADY_EXISTS)
            errno = EEXIST;
        return -1;
    }
    int fd = _open_osfhandle((intptr_t)h, crt_flags | _O_BINARY | _O_NOINHERIT);
    if (fd < 0) {
        CloseHandle(h);
        errno = EMFILE;
    }
    return fd;
}

int pb_image_os_mkstemp(char *tmpl)
{
    /* g_mkstemp_full's contract (the XXXXXX at the end replaced) on open_shared */
    gsize n = strlen(tmpl);
    if (n < 6 || strcmp(tmpl + n - 6, "XXXXXX") != 0) {
        errno = EINVAL;
        return -1;
    }
    static const char letters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    for (int attempt = 0; attempt < 100; attempt++) {
        for (int i = 0; i < 6; i++)
            tmpl[n - 6 + i] = letters[g_random_int_range(0, (gint32)sizeof(letters) - 1)];
        int fd = open_shared(tmpl, GENERIC_READ | GENERIC_WRITE, CREATE_NEW, _O_RDWR);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    errno = EEXIST;
    return -1;
}

int pb_image_os_open_read(const char *path)
{
    return open_shared(path, GENERIC_READ, OPEN_EXISTING, _O_RDONLY);
}

gssize pb_image_os_pread(int fd, void *buf, gsize len, guint64 offset)
{
    HANDLE h = (HANDLE)_get_osfhandle(fd);
    if (h == INVALID_HANDLE_VALUE) {
        errno = EBADF;
        return -1;
    }
    OVERLAPPED ov = {.Offset = (DWORD)offset, .OffsetHigh = (DWORD)(offset >> 32)};
    DWORD got = 0;
    if (ReadFile(h, buf, len > G_MAXUINT32 ? G_MAXUINT32 : (DWORD)len, &got, &ov))
        return (gssize)got;
    DWORD err = GetLastError();
    if (err == ERROR_HANDLE_EOF)
        return 0;
    set_errno_from(err);
    return -1;
}

/* The volume and the file index name a file, as st_dev and st_ino do (the CRT's stat leaves
 * st_ino 0). */
static gboolean file_id(const char *path, BY_HANDLE_FILE_INFORMATION *fi)
{
    int fd = pb_image_os_open_read(path);
    if (fd < 0)
        return FALSE;
    gboolean ok = GetFileInformationByHandle((HANDLE)_get_osfhandle(fd), fi) != 0;
    _close(fd);
    return ok;
}

gboolean pb_image_os_same_file(const char *a, const char *b)
{
    BY_HANDLE_FILE_INFORMATION fa, fb;
    return file_id(a, &fa) && file_id(b, &fb) &&
           fa.dwVolumeSerialNumber == fb.dwVolumeSerialNumber &&
           fa.nFileIndexHigh == fb.nFileIndexHigh && fa.nFileIndexLow == fb.nFileIndexLow;
}

gboolean pb_image_os_link(const char *from, const char *to)
{
    g_autofree gunichar2 *wfrom = g_utf8_to_utf16(from, -1, NULL, NULL, NULL);
    g_autofree gunichar2 *wto = g_utf8_to_utf16(to, -1, NULL, NULL, NULL);
    if (wfrom == NULL || wto == NULL) {
        errno = EINVAL;
        return FALSE;
    }
    if (CreateHardLinkW((const wchar_t *)wto, (const wchar_t *)wfrom, NULL))
        return TRUE;
    set_errno_from(GetLastError());
    return FALSE;
}

gsize pb_image_os_write_direct(int fd, const void *buf, gsize len)
{
    (void)fd, (void)buf, (void)len; /* FILE_FLAG_NO_BUFFERING is chosen at open: not here */
    return 0;
}

gboolean pb_image_os_sync_file(int fd)
{
    return _commit(fd) == 0; /* FlushFileBuffers */
}

gboolean pb_image_os_batch_add(int fd)
{
    return pb_image_os_sync_file(fd);
}

gboolean pb_image_os_sync_batch(int lock_fd)
{
    (void)lock_fd; /* every member was flushed by pb_image_os_batch_add */
    return TRUE;
}

gboolean pb_image_os_sync_dir(const char *dir)
{
    (void)dir; /* see the top of the file: MOVEFILE_WRITE_THROUGH made the renames durable */
    return TRUE;
}

gboolean pb_image_os_rename(const char *from, const char *to)
{
    g_autofree gunichar2 *wfrom = g_utf8_to_utf16(from, -1, NULL, NULL, NULL);
    g_autofree gunichar2 *wto = g_utf8_to_utf16(to, -1, NULL, NULL, NULL);
    if (wfrom == NULL || wto == NULL) {
        errno = EINVAL;
        return FALSE;
    }
    if (MoveFileExW((const wchar_t *)wfrom, (const wchar_t *)wto,
                    MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH))
        return TRUE;
    set_errno_from(GetLastError());
    return FALSE;
}

gint64 pb_image_os_mtime_ns(const char *path)
{
    GStatBuf sb;
    if (g_stat(path, &sb) != 0)
        return -1;
    return (gint64)sb.st_mtime * 1000000000;
}

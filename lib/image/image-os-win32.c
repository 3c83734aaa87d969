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

int pb_image_os_mkstemp(char *tmpl)
{
    /* O_BINARY: the CRT's default text mode would turn chunk bytes 0x0a into 0x0d 0x0a. */
    return g_mkstemp_full(tmpl, O_WRONLY | O_BINARY | O_CLOEXEC, 0644);
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

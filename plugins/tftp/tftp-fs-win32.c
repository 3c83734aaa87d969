/* tftp-fs-win32.c - plugins/tftp/tftp-fs.h for Windows: files beneath the TFTP root.
 *
 * Windows has no openat2(RESOLVE_BENEATH), and its file names hold traps that POSIX names
 * do not, so a name that passed tftp_path_sanitize() is checked again here, and every
 * opened file is checked once more after the fact:
 *  - reserved device names (NUL, CON, AUX, PRN, COM1-9, LPT1-9, also "nul.txt") open a
 *    device in any directory;
 *  - "name:stream" opens an alternate data stream, ':' is refused outright;
 *  - trailing dots and spaces are dropped by Win32 ("boot.0." is "boot.0"), and
 *    wildcards and <>"| have meanings of their own;
 *  - junctions and symbolic links (reparse points) can lead anywhere: refused on every
 *    component, as the POSIX fallback refuses symbolic links;
 *  - and after opening, GetFinalPathNameByHandle must name a file inside the root's own
 *    final path, so a race that swaps a directory for a junction still cannot escape. */
#include "build-config.h"

#include "tftp-fs.h"
#include "tftp-path.h"

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN 1
#endif
#include <windows.h>

#include <string.h>
#include <wchar.h>

struct TftpRoot {
    char *path;     /* as configured */
    wchar_t *dir;   /* as opened, backslashes, no trailing separator */
    wchar_t *final; /* GetFinalPathNameByHandle of the root, with a trailing '\' */
    HANDLE handle;  /* held open so the root cannot be renamed away under us */
};

static gboolean reserved_device(const char *c, gsize n)
{
    static const char *const names[] = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"};
    gsize stem = 0;
    while (stem < n && c[stem] != '.')
        stem++;
    while (stem > 0 && c[stem - 1] == ' ')
        stem--;
    for (guint i = 0; i < G_N_ELEMENTS(names); i++)
        if (stem == strlen(names[i]) && g_ascii_strncasecmp(c, names[i], stem) == 0)
            return TRUE;
    /* COM1-COM9, LPT1-LPT9 (and the superscript digits, which are not ASCII anyway) */
    if (stem == 4 &&
        (g_ascii_strncasecmp(c, "COM", 3) == 0 || g_ascii_strncasecmp(c, "LPT", 3) == 0) &&
        c[3] >= '1' && c[3] <= '9')
        return TRUE;
    return FALSE;
}

/* The Windows-only refusals on top of tftp_path_sanitize(). */
static gboolean name_allowed(const char *rel, const char **reason)
{
    const char *p = rel;
    while (*p) {
        const char *slash = strchr(p, '/');
        gsize n = slash ? (gsize)(slash - p) : strlen(p);
        if (n == 0 || p[n - 1] == '.' || p[n - 1] == ' ') {
            *reason = "name ends with a dot or space";
            return FALSE;
        }
        for (gsize i = 0; i < n; i++) {
            if (strchr(":*?\"<>|\\", p[i]) != NULL) {
                *reason = "character not allowed in Windows names";
                return FALSE;
            }
        }
        if (reserved_device(p, n)) {
            *reason = "reserved device name";
            return FALSE;
        }
        p += n;
        if (*p == '/')
            p++;
    }
    return TRUE;
}

static wchar_t *to_wide_path(const char *utf8)
{
    wchar_t *w = g_utf8_to_utf16(utf8, -1, NULL, NULL, NULL);
    for (wchar_t *c = w; c != NULL && *c; c++)
        if (*c == L'/')
            *c = L'\\';
    return w;
}

static wchar_t *final_path(HANDLE h)
{
    DWORD n = GetFinalPathNameByHandleW(h, NULL, 0, FILE_NAME_NORMALIZED | VOLUME_NAME_DOS);
    if (n == 0)
        return NULL;
    wchar_t *buf = g_new0(wchar_t, n + 2);
    DWORD got = GetFinalPathNameByHandleW(h, buf, n + 1, FILE_NAME_NORMALIZED | VOLUME_NAME_DOS);
    if (got == 0 || got > n) {
        g_free(buf);
        return NULL;
    }
    return buf;
}

static TftpFsStatus status_from_win32(DWORD e, const char **reason)
{
    switch (e) {
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
    case ERROR_INVALID_NAME:
    case ERROR_BAD_PATHNAME:
        *reason = "no such file";
        return TFTP_FS_NOT_FOUND;
    case ERROR_ACCESS_DENIED:
    case ERROR_SHARING_VIOLATION:
    case ERROR_LOCK_VIOLATION:
    case ERROR_WRITE_PROTECT:
        *reason = "permission denied";
        return TFTP_FS_ACCESS;
    case ERROR_FILE_EXISTS:
    case ERROR_ALREADY_EXISTS:
        *reason = "file exists and overwrites are off";
        return TFTP_FS_EXISTS;
    case ERROR_DISK_FULL:
    case ERROR_HANDLE_DISK_FULL:
        *reason = "no space left";
        return TFTP_FS_IO;
    default:
        *reason = "I/O error";
        return TFTP_FS_IO;
    }
}

TftpRoot *tftp_root_open(const char *path, GError **error)
{
    g_autofree wchar_t *dir = to_wide_path(path);
    if (dir == NULL || *dir == 0) {
        g_set_error_literal(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "not a valid path");
        return NULL;
    }
    gsize len = wcslen(dir);
    while (len > 3 && dir[len - 1] == L'\\') /* keep "C:\" */
        dir[--len] = 0;
    HANDLE h = CreateFileW(dir, FILE_LIST_DIRECTORY | FILE_READ_ATTRIBUTES,
                           FILE_SHARE_READ | FILE_SHARE_WRITE, NULL, OPEN_EXISTING,
                           FILE_FLAG_BACKUP_SEMANTICS, NULL);
    BY_HANDLE_FILE_INFORMATION info;
    if (h == INVALID_HANDLE_VALUE || !GetFileInformationByHandle(h, &info) ||
        !(info.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY)) {
        DWORD e = h == INVALID_HANDLE_VALUE ? GetLastError() : ERROR_DIRECTORY;
        if (h != INVALID_HANDLE_VALUE)
            CloseHandle(h);
        g_autofree char *msg = g_win32_error_message((gint)e);
        g_set_error(error, G_FILE_ERROR,
                    e == ERROR_FILE_NOT_FOUND || e == ERROR_PATH_NOT_FOUND ? G_FILE_ERROR_NOENT
                                                                           : G_FILE_ERROR_NOTDIR,
                    "%s", msg);
        return NULL;
    }
    g_autofree wchar_t *fin = final_path(h);
    if (fin == NULL) {
        CloseHandle(h);
        g_set_error_literal(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "cannot resolve the path");
        return NULL;
    }
    TftpRoot *r = g_new0(TftpRoot, 1);
    r->path = g_strdup(path);
    r->dir = g_steal_pointer(&dir);
    gsize fl = wcslen(fin);
    r->final = g_new0(wchar_t, fl + 2);
    wcscpy(r->final, fin);
    if (fl == 0 || fin[fl - 1] != L'\\')
        r->final[fl] = L'\\';
    r->handle = h;
    return r;
}

void tftp_root_free(TftpRoot *root)
{
    if (root == NULL)
        return;
    CloseHandle(root->handle);
    g_free(root->path);
    g_free(root->dir);
    g_free(root->final);
    g_free(root);
}

const char *tftp_root_path(const TftpRoot *root)
{
    return root->path;
}

gboolean tftp_fs_kernel_beneath(void)
{
    return FALSE; /* the checks are ours, with the final-path check after opening */
}

void tftp_fs_force_portable(gboolean portable)
{
    (void)portable; /* there is only the portable way here */
}

/* root\rel with backslashes; every directory on the way must be a real directory. */
static wchar_t *resolve(TftpRoot *root, const char *rel, gboolean last_is_dir, TftpFsStatus *status,
                        const char **reason)
{
    if (!name_allowed(rel, reason)) {
        *status = TFTP_FS_ACCESS;
        return NULL;
    }
    g_autofree wchar_t *wrel = to_wide_path(rel);
    if (wrel == NULL) {
        *reason = "name is not UTF-8";
        *status = TFTP_FS_NOT_FOUND;
        return NULL;
    }
    wchar_t *full = g_new0(wchar_t, wcslen(root->dir) + wcslen(wrel) + 2);
    wcscpy(full, root->dir);
    gsize base = wcslen(full);
    if (base > 0 && full[base - 1] != L'\\')
        full[base++] = L'\\';
    wcscpy(full + base, wrel);
    /* walk the directories between the root and the file */
    for (wchar_t *sep = wcschr(full + base, L'\\');; sep = wcschr(sep + 1, L'\\')) {
        if (sep == NULL && !last_is_dir)
            break;
        wchar_t saved = 0;
        if (sep != NULL) {
            saved = *sep;
            *sep = 0;
        }
        DWORD a = GetFileAttributesW(full);
        if (sep != NULL)
            *sep = saved;
        if (a == INVALID_FILE_ATTRIBUTES) {
            *status = status_from_win32(GetLastError(), reason);
            g_free(full);
            return NULL;
        }
        if (a & FILE_ATTRIBUTE_REPARSE_POINT) {
            *reason = "junction or symbolic link refused";
            *status = TFTP_FS_ACCESS;
            g_free(full);
            return NULL;
        }
        if (!(a & FILE_ATTRIBUTE_DIRECTORY)) {
            *reason = "no such file";
            *status = TFTP_FS_NOT_FOUND;
            g_free(full);
            return NULL;
        }
        if (sep == NULL)
            break;
    }
    return full;
}

/* After the fact: the opened file's real name lies inside the root. */
static gboolean inside_root(TftpRoot *root, HANDLE h)
{
    g_autofree wchar_t *fin = final_path(h);
    gsize rl = wcslen(root->final);
    return fin != NULL && wcslen(fin) > rl && _wcsnicmp(fin, root->final, rl) == 0;
}

/* ---- reading ---------------------------------------------------------------------------- */

static gssize handle_read(void *data, guint64 offset, guint8 *buf, gsize len)
{
    HANDLE h = data;
    gsize done = 0;
    while (done < len) {
        /* a positional read, like pread: the offset rides in the OVERLAPPED */
        OVERLAPPED ov = {.Offset = (DWORD)(offset + done),
                         .OffsetHigh = (DWORD)((offset + done) >> 32)};
        DWORD chunk = (DWORD)MIN(len - done, (gsize)(1u << 30)), got = 0;
        if (!ReadFile(h, buf + done, chunk, &got, &ov)) {
            if (GetLastError() == ERROR_HANDLE_EOF)
                break;
            return -1;
        }
        if (got == 0)
            break;
        done += got;
    }
    return (gssize)done;
}

static void handle_close(void *data)
{
    CloseHandle(data);
}

TftpFsStatus tftp_fs_open_read(TftpRoot *root, const char *rel, TftpSource *source, guint64 *size,
                               const char **reason)
{
    const char *dummy;
    if (reason == NULL)
        reason = &dummy;
    TftpFsStatus status = TFTP_FS_OK;
    g_autofree wchar_t *full = resolve(root, rel, FALSE, &status, reason);
    if (full == NULL)
        return status;
    HANDLE h =
        CreateFileW(full, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_DELETE, NULL, OPEN_EXISTING,
                    FILE_FLAG_OPEN_REPARSE_POINT | FILE_FLAG_SEQUENTIAL_SCAN, NULL);
    if (h == INVALID_HANDLE_VALUE)
        return status_from_win32(GetLastError(), reason);
    BY_HANDLE_FILE_INFORMATION info;
    if (GetFileType(h) != FILE_TYPE_DISK || !GetFileInformationByHandle(h, &info) ||
        (info.dwFileAttributes & (FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_REPARSE_POINT))) {
        CloseHandle(h);
        *reason = "not a regular file";
        return TFTP_FS_ACCESS;
    }
    if (!inside_root(root, h)) {
        CloseHandle(h);
        *reason = "path leads outside the root";
        return TFTP_FS_ACCESS;
    }
    source->read = handle_read;
    source->close = handle_close;
    source->data = h;
    *size = ((guint64)info.nFileSizeHigh << 32) | info.nFileSizeLow;
    return TFTP_FS_OK;
}

/* ---- writing ---------------------------------------------------------------------------- */

typedef struct {
    HANDLE h;
    wchar_t *tmp;
    wchar_t *name;
    gboolean overwrite;
} Upload;

static void upload_free(Upload *u)
{
    if (u->h != INVALID_HANDLE_VALUE)
        CloseHandle(u->h);
    if (u->tmp)
        DeleteFileW(u->tmp);
    g_free(u->tmp);
    g_free(u->name);
    g_free(u);
}

static gboolean upload_write(void *data, const guint8 *buf, gsize len)
{
    Upload *u = data;
    while (len > 0) {
        DWORD chunk = (DWORD)MIN(len, (gsize)(1u << 30)), w = 0;
        if (!WriteFile(u->h, buf, chunk, &w, NULL) || w == 0)
            return FALSE;
        buf += w;
        len -= w;
    }
    return TRUE;
}

static gboolean upload_commit(void *data)
{
    Upload *u = data;
    gboolean ok = FlushFileBuffers(u->h);
    ok = CloseHandle(u->h) && ok;
    u->h = INVALID_HANDLE_VALUE;
    /* Without MOVEFILE_REPLACE_EXISTING the move fails when the name appeared since the
     * WRQ: no overwrite sneaks in by a race (the POSIX side uses link() for this). */
    if (ok && MoveFileExW(u->tmp, u->name,
                          MOVEFILE_WRITE_THROUGH | (u->overwrite ? MOVEFILE_REPLACE_EXISTING : 0)))
        g_clear_pointer(&u->tmp, g_free);
    else
        ok = FALSE;
    upload_free(u); /* removes the temporary file unless it was moved */
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
    TftpFsStatus status = TFTP_FS_OK;
    g_autofree wchar_t *full = resolve(root, rel, FALSE, &status, reason);
    if (full == NULL)
        return status;
    DWORD a = GetFileAttributesW(full);
    if (a != INVALID_FILE_ATTRIBUTES) {
        if (a & (FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_REPARSE_POINT | FILE_ATTRIBUTE_DEVICE)) {
            *reason = "not a regular file";
            return TFTP_FS_ACCESS;
        }
        if (!overwrite) {
            *reason = "file exists and overwrites are off";
            return TFTP_FS_EXISTS;
        }
    } else if (GetLastError() != ERROR_FILE_NOT_FOUND) {
        return status_from_win32(GetLastError(), reason);
    }
    wchar_t *slash = wcsrchr(full, L'\\');
    gsize dirlen = slash != NULL ? (gsize)(slash - full) + 1 : 0;
    Upload *u = g_new0(Upload, 1);
    u->h = INVALID_HANDLE_VALUE;
    u->name = g_steal_pointer(&full);
    u->overwrite = overwrite;
    DWORD err = ERROR_FILE_EXISTS;
    for (int tries = 0; tries < 8 && u->h == INVALID_HANDLE_VALUE && err == ERROR_FILE_EXISTS;
         tries++) {
        g_free(u->tmp);
        u->tmp = g_new0(wchar_t, dirlen + wcslen(u->name + dirlen) + 32);
        wcsncpy(u->tmp, u->name, dirlen);
        _snwprintf(u->tmp + dirlen, wcslen(u->name + dirlen) + 31, L".%ls.%08x.tftp-part",
                   u->name + dirlen, g_random_int());
        u->h = CreateFileW(u->tmp, GENERIC_WRITE, 0, NULL, CREATE_NEW, FILE_ATTRIBUTE_NORMAL, NULL);
        err = u->h == INVALID_HANDLE_VALUE ? GetLastError() : 0;
    }
    if (u->h == INVALID_HANDLE_VALUE) {
        TftpFsStatus s = status_from_win32(err, reason);
        g_clear_pointer(&u->tmp, g_free);
        upload_free(u);
        return s;
    }
    if (!inside_root(root, u->h)) {
        upload_free(u);
        *reason = "path leads outside the root";
        return TFTP_FS_ACCESS;
    }
    sink->write = upload_write;
    sink->commit = upload_commit;
    sink->abort = upload_abort;
    sink->data = u;
    return TFTP_FS_OK;
}

/* Twin of tftp-fs-posix.c's: reparse points (links, junctions) are never entered. */
static void clean_dir(const char *dir, guint depth, guint *removed, guint *failed)
{
    GDir *d = g_dir_open(dir, 0, NULL);
    if (d == NULL)
        return;
    const char *n;
    while ((n = g_dir_read_name(d)) != NULL) {
        g_autofree char *full = g_build_filename(dir, n, NULL);
        g_autofree wchar_t *w = g_utf8_to_utf16(full, -1, NULL, NULL, NULL);
        DWORD a = w ? GetFileAttributesW(w) : INVALID_FILE_ATTRIBUTES;
        if (a == INVALID_FILE_ATTRIBUTES || (a & FILE_ATTRIBUTE_REPARSE_POINT))
            continue;
        if (a & FILE_ATTRIBUTE_DIRECTORY) {
            if (depth + 1 < TFTP_FS_CLEAN_DEPTH)
                clean_dir(full, depth + 1, removed, failed);
        } else if (tftp_path_is_temporary(n)) {
            if (DeleteFileW(w))
                (*removed)++;
            else
                (*failed)++;
        }
    }
    g_dir_close(d);
}

guint tftp_fs_remove_temporary(TftpRoot *root, guint *failed)
{
    guint removed = 0, dummy = 0;
    if (failed == NULL)
        failed = &dummy;
    *failed = 0;
    clean_dir(root->path, 0, &removed, failed);
    return removed;
}

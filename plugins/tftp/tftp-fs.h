/* tftp-fs.h - files beneath the TFTP root, and nothing else. The POSIX implementation
 * (tftp-fs-posix.c) lets the kernel enforce the root with openat2(RESOLVE_BENEATH) where
 * it can; a Windows twin implements the same calls. Names reaching here have already been
 * through tftp_path_sanitize(). */
#pragma once

#include "tftp-session.h"

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
    TFTP_FS_OK = 0,
    TFTP_FS_NOT_FOUND, /* -> TFTP error 1 */
    TFTP_FS_ACCESS,    /* outside the root, a device, FIFO, directory or forbidden: 2 */
    TFTP_FS_EXISTS,    /* WRQ for an existing file without overwrites: 6 */
    TFTP_FS_IO,        /* anything else: 0 with the reason */
} TftpFsStatus;

typedef struct TftpRoot TftpRoot;

/* Fails when path is not an existing directory (the plugin then refuses to start). */
TftpRoot *tftp_root_open(const char *path, GError **error);
void tftp_root_free(TftpRoot *root);
const char *tftp_root_path(const TftpRoot *root);

/* Opens a regular file for reading; fills source and *size. *reason gets a static text
 * on failure (for the log). */
TftpFsStatus tftp_fs_open_read(TftpRoot *root, const char *rel, TftpSource *source, guint64 *size,
                               const char **reason);

/* Prepares an upload: a temporary file next to rel that commit() renames into place (never
 * over a file that appeared meanwhile unless overwrite) and abort() removes, so no one
 * ever sees a half-written file under the real name. */
TftpFsStatus tftp_fs_open_write(TftpRoot *root, const char *rel, gboolean overwrite, TftpSink *sink,
                                const char **reason);

/* Removes the temporary files of uploads cut short by a kill -9 or a power cut (names for
 * which tftp_path_is_temporary() holds) anywhere beneath the root, following no symbolic
 * link and descending at most TFTP_FS_CLEAN_DEPTH directories. Returns how many went;
 * *failed (may be NULL) counts those that could not be removed. */
#define TFTP_FS_CLEAN_DEPTH 16
guint tftp_fs_remove_temporary(TftpRoot *root, guint *failed);

/* For tests: whether the kernel resolves beneath the root (openat2), or the portable
 * fallback (which refuses every symbolic link) is in use. */
gboolean tftp_fs_kernel_beneath(void);
/* For tests: use the portable fallback even where openat2 works (TRUE), or go back to
 * probing the kernel (FALSE), so the fallback is tested on every machine. */
void tftp_fs_force_portable(gboolean portable);

G_END_DECLS

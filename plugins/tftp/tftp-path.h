/* tftp-path.h - turn a client's file name into a path relative to the TFTP root, or refuse
 * it. Pure string work; the kernel check (openat2 RESOLVE_BENEATH) comes on top in
 * tftp-fs-posix.c, so a mistake here is not on its own a way out of the root. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Writes the normalised relative path ("a/b", no "./", no "//") into out. Returns FALSE
 * with *why set to a static reason when the name is refused: absolute paths, drive letters,
 * backslashes, ".." in any spelling (including Windows' "..." and ".. " which that system
 * trims to ".."), control characters, or nothing left after normalisation. */
gboolean tftp_path_sanitize(const char *in, char *out, gsize cap, const char **why);

/* Whether the last component of path is an upload's temporary name, ".NAME.XXXXXXXX.tftp-part"
 * (tftp-fs-posix.c and win32/tftp-fs-win32.c make them so): those are never served, never
 * written by a client, and removed at start. */
gboolean tftp_path_is_temporary(const char *path);

G_END_DECLS

/* loader.h - finding and opening plugin modules with libltdl, and deciding whether a
 * descriptor is one this host can trust: magic, ABI major/minor, struct sizes, build
 * signature and the plugin's own parameter table. Every refusal says why, naming both
 * sides ("built for ABI 2.0, this prebootd speaks 1.0"). */
#pragma once

#include <glib.h>
#include <preboot/plugin.h>

G_BEGIN_DECLS

#define PB_LOADER_ERROR (pb_loader_error_quark())
GQuark pb_loader_error_quark(void);

typedef enum {
    PB_LOADER_ERROR_NOT_FOUND,
    PB_LOADER_ERROR_OPEN,
    PB_LOADER_ERROR_NO_ENTRY,
    PB_LOADER_ERROR_ABI,
    PB_LOADER_ERROR_INVALID,
} PbLoaderError;

typedef struct {
    char *name;              /* the plugin's name */
    char *path;              /* the file opened, or "(built in)" */
    void *handle;            /* lt_dlhandle; NULL for built-ins */
    const pb_plugin *plugin; /* valid while the module is open */
} PbModule;

/* Opens a module by name (searched in each directory of search_path, as NAME.la, NAME.so
 * or NAME.dll) or by path (anything containing a directory separator). */
PbModule *pb_module_open(const char *const *search_path, const char *name_or_path, GError **error);
PbModule *pb_module_new_builtin(const pb_plugin *plugin, GError **error);
void pb_module_close(PbModule *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PbModule, pb_module_close)

/* The checks pb_module_open applies; origin names the file in messages. */
gboolean pb_plugin_check(const pb_plugin *plugin, const char *origin, GError **error);

/* A library module (library_open in the ABI): opened like a plugin, by name on the
 * search path or by path, then checked against what spec expects (magic, ABI, size,
 * build signature, spec->entry_symbol). On success *descriptor is the library's. */
typedef struct {
    char *path;       /* the file opened */
    void *handle;     /* lt_dlhandle */
    const void *desc; /* starts with pb_library_header; valid while open */
} PbLibrary;

PbLibrary *pb_library_open(const char *const *search_path, const char *name_or_path,
                           const pb_library_spec *spec, GError **error);
void pb_library_close(PbLibrary *lib);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PbLibrary, pb_library_close)
/* The checks pb_library_open applies to a descriptor; origin names the file. */
gboolean pb_library_check(const pb_library_header *h, const pb_library_spec *spec,
                          const char *origin, GError **error);

/* Module files on the search path: one path per module name (first directory wins). */
GPtrArray *pb_module_scan(const char *const *search_path);

G_END_DECLS

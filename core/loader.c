/* loader.c - libltdl module loading and descriptor checks (see loader.h). */
#include "build-config.h"

#include "loader.h"

#include "config.h"

#include <ltdl.h>
#include <stddef.h>
#include <string.h>

G_DEFINE_QUARK(pb - loader - error - quark, pb_loader_error)

/* Everything ABI 1.0 defines must be present; the 1.1 fields (provides...) are read only
 * when struct_size covers them (PB_HAS_FIELD), so 1.0 plugins load unchanged. */
#define PB_PLUGIN_MIN_SIZE (offsetof(pb_plugin, destroy) + sizeof(void (*)(void *)))
#define PB_PARAM_MIN_SIZE  (offsetof(pb_param, help) + sizeof(const char *))

static gboolean loader_init(GError **error)
{
    static gsize once = 0;
    static gboolean ok = FALSE;
    static char *why = NULL;

    if (g_once_init_enter(&once)) {
        ok = lt_dlinit() == 0;
        if (!ok)
            why = g_strdup(lt_dlerror());
        g_once_init_leave(&once, 1);
    }
    if (!ok)
        g_set_error(error, PB_LOADER_ERROR, PB_LOADER_ERROR_OPEN, "libltdl failed to start: %s",
                    why ? why : "unknown error");
    return ok;
}

gboolean pb_plugin_check(const pb_plugin *p, const char *origin, GError **error)
{
    g_return_val_if_fail(origin != NULL, FALSE);

    if (p == NULL) {
        g_set_error(error, PB_LOADER_ERROR, PB_LOADER_ERROR_NO_ENTRY,
                    "%s: the entry point returned no descriptor", origin);
        return FALSE;
    }
    if (p->magic != PB_PLUGIN_MAGIC) {
        g_set_error(error, PB_LOADER_ERROR, PB_LOADER_ERROR_ABI,
                    "%s: not a preboot plugin (magic 0x%08x, expected 0x%08x)", origin,
                    (unsigned)p->magic, (unsigned)PB_PLUGIN_MAGIC);
        return FALSE;
    }
    if (p->abi_major != PB_ABI_MAJOR) {
        g_set_error(error, PB_LOADER_ERROR, PB_LOADER_ERROR_ABI,
                    "%s: built for plugin ABI %u.%u, but this prebootd speaks ABI %u.%u "
                    "(the major version must match: rebuild the plugin)",
                    origin, p->abi_major, p->abi_minor, PB_ABI_MAJOR, PB_ABI_MINOR);
        return FALSE;
    }
    if (p->abi_minor > PB_ABI_MINOR) {
        g_set_error(error, PB_LOADER_ERROR, PB_LOADER_ERROR_ABI,
                    "%s: needs plugin ABI %u.%u, but this prebootd provides only %u.%u "
                    "(upgrade prebootd)",
                    origin, p->abi_major, p->abi_minor, PB_ABI_MAJOR, PB_ABI_MINOR);
        return FALSE;
    }
    if (p->struct_size < PB_PLUGIN_MIN_SIZE) {
        g_set_error(error, PB_LOADER_ERROR, PB_LOADER_ERROR_ABI,
                    "%s: descriptor is %u bytes, ABI %u.0 needs at least %u", origin,
                    (unsigned)p->struct_size, PB_ABI_MAJOR, (unsigned)PB_PLUGIN_MIN_SIZE);
        return FALSE;
    }
    if (p->build_signature == NULL || strcmp(p->build_signature, PB_BUILD_SIGNATURE) != 0) {
        g_set_error(error, PB_LOADER_ERROR, PB_LOADER_ERROR_ABI,
                    "%s: built for %s, but this prebootd is %s", origin,
                    p->build_signature ? p->build_signature : "(no signature)", PB_BUILD_SIGNATURE);
        return FALSE;
    }
    if (p->name == NULL || *p->name == '\0') {
        g_set_error(error, PB_LOADER_ERROR, PB_LOADER_ERROR_INVALID, "%s: plugin has no name",
                    origin);
        return FALSE;
    }
    if (p->create == NULL || p->destroy == NULL) {
        g_set_error(error, PB_LOADER_ERROR, PB_LOADER_ERROR_INVALID,
                    "%s: plugin '%s' lacks the required create/destroy callbacks", origin, p->name);
        return FALSE;
    }
    if ((p->reload_prepare != NULL) != (p->reload_commit != NULL) ||
        (p->reload_prepare != NULL && p->reload_abort == NULL)) {
        g_set_error(error, PB_LOADER_ERROR, PB_LOADER_ERROR_INVALID,
                    "%s: plugin '%s' must define reload_prepare, reload_commit and "
                    "reload_abort together",
                    origin, p->name);
        return FALSE;
    }
    if (p->n_params > 0 && (p->params == NULL || p->param_size < PB_PARAM_MIN_SIZE)) {
        g_set_error(error, PB_LOADER_ERROR, PB_LOADER_ERROR_ABI,
                    "%s: parameter entries are %u bytes, ABI %u.%u needs at least %u", origin,
                    (unsigned)p->param_size, PB_ABI_MAJOR, p->abi_minor,
                    (unsigned)PB_PARAM_MIN_SIZE);
        return FALSE;
    }
    g_autoptr(GError) local = NULL;
    if (!pb_param_table_check(p, &local)) {
        g_set_error(error, PB_LOADER_ERROR, PB_LOADER_ERROR_INVALID, "%s: %s", origin,
                    local->message);
        return FALSE;
    }
    return TRUE;
}

static gboolean is_path(const char *s)
{
    return strchr(s, '/') != NULL || strchr(s, '\\') != NULL;
}

static lt_dlhandle open_handle(const char *file, GError **error)
{
    lt_dlhandle h = lt_dlopenext(file);
    if (h == NULL) {
        const char *why = lt_dlerror();
        g_set_error(error, PB_LOADER_ERROR, PB_LOADER_ERROR_OPEN, "%s: cannot load: %s", file,
                    why ? why : "unknown error");
    }
    return h;
}

static PbModule *open_file(const char *file, GError **error)
{
    lt_dlhandle h = open_handle(file, error);
    if (h == NULL)
        return NULL;
    const lt_dlinfo *info = lt_dlgetinfo(h);
    const char *origin = info && info->filename ? info->filename : file;
    /* lt_dlsym tries NAME_LTX_preboot_plugin_entry first (NAME from the file name). */
    pb_plugin_entry_fn entry = (pb_plugin_entry_fn)lt_dlsym(h, PB_PLUGIN_ENTRY_SYMBOL);
    if (entry == NULL) {
        g_set_error(error, PB_LOADER_ERROR, PB_LOADER_ERROR_NO_ENTRY,
                    "%s: no entry point (%s_LTX_%s): not a preboot plugin, or built without "
                    "PB_PLUGIN_DEFINE",
                    origin, info && info->name ? info->name : "NAME", PB_PLUGIN_ENTRY_SYMBOL);
        lt_dlclose(h);
        return NULL;
    }
    const pb_plugin *p = entry();
    if (!pb_plugin_check(p, origin, error)) {
        lt_dlclose(h);
        return NULL;
    }
    PbModule *m = g_new0(PbModule, 1);
    m->name = g_strdup(p->name);
    m->path = g_strdup(origin);
    m->handle = h;
    m->plugin = p;
    return m;
}

static gboolean module_file_exists(const char *base)
{
    static const char *const exts[] = {"", ".la", ".so", ".dll"};
    for (gsize i = 0; i < G_N_ELEMENTS(exts); i++) {
        g_autofree char *f = g_strconcat(base, exts[i], NULL);
        if (g_file_test(f, G_FILE_TEST_IS_REGULAR))
            return TRUE;
    }
    return FALSE;
}

/* The file a name or path stands for (without extension, as lt_dlopenext wants it). */
static char *find_module(const char *const *search_path, const char *name_or_path, GError **error)
{
    if (is_path(name_or_path)) {
        if (!module_file_exists(name_or_path)) {
            g_set_error(error, PB_LOADER_ERROR, PB_LOADER_ERROR_NOT_FOUND,
                        "module file %s not found", name_or_path);
            return NULL;
        }
        return g_strdup(name_or_path);
    }
    for (const char *const *d = search_path; d && *d; d++) {
        char *base = g_build_filename(*d, name_or_path, NULL);
        if (module_file_exists(base))
            return base;
        g_free(base);
    }
    g_autofree char *joined =
        search_path && *search_path ? g_strjoinv(":", (char **)search_path) : g_strdup("");
    g_set_error(error, PB_LOADER_ERROR, PB_LOADER_ERROR_NOT_FOUND,
                "module '%s' not found on the plugin path (%s)", name_or_path, joined);
    return NULL;
}

PbModule *pb_module_open(const char *const *search_path, const char *name_or_path, GError **error)
{
    g_return_val_if_fail(name_or_path != NULL && *name_or_path, NULL);
    if (!loader_init(error))
        return NULL;
    g_autofree char *file = find_module(search_path, name_or_path, error);
    return file ? open_file(file, error) : NULL;
}

/* ---- libraries ------------------------------------------------------------------------ */

gboolean pb_library_check(const pb_library_header *h, const pb_library_spec *spec,
                          const char *origin, GError **error)
{
    g_return_val_if_fail(spec != NULL && origin != NULL, FALSE);
    const char *kind = spec->kind && *spec->kind ? spec->kind : "library";
    if (h == NULL) {
        g_set_error(error, PB_LOADER_ERROR, PB_LOADER_ERROR_NO_ENTRY,
                    "%s: the entry point returned no %s descriptor", origin, kind);
        return FALSE;
    }
    if (h->magic != spec->magic) {
        g_set_error(error, PB_LOADER_ERROR, PB_LOADER_ERROR_ABI,
                    "%s: not a %s (magic 0x%08x, expected 0x%08x)", origin, kind,
                    (unsigned)h->magic, (unsigned)spec->magic);
        return FALSE;
    }
    if (h->abi_major != spec->abi_major) {
        g_set_error(error, PB_LOADER_ERROR, PB_LOADER_ERROR_ABI,
                    "%s: %s built for ABI %u.%u, but its caller speaks ABI %u.%u "
                    "(the major version must match: rebuild the library)",
                    origin, kind, h->abi_major, h->abi_minor, spec->abi_major, spec->abi_minor);
        return FALSE;
    }
    if (h->abi_minor > spec->abi_minor) {
        g_set_error(error, PB_LOADER_ERROR, PB_LOADER_ERROR_ABI,
                    "%s: %s needs ABI %u.%u, but its caller provides only %u.%u "
                    "(upgrade prebootd and its plugins)",
                    origin, kind, h->abi_major, h->abi_minor, spec->abi_major, spec->abi_minor);
        return FALSE;
    }
    guint32 min = MAX(spec->min_struct_size, (guint32)sizeof(pb_library_header));
    if (h->struct_size < min) {
        g_set_error(error, PB_LOADER_ERROR, PB_LOADER_ERROR_ABI,
                    "%s: %s descriptor is %u bytes, its caller needs at least %u", origin, kind,
                    (unsigned)h->struct_size, (unsigned)min);
        return FALSE;
    }
    if (h->build_signature == NULL || strcmp(h->build_signature, PB_BUILD_SIGNATURE) != 0) {
        g_set_error(error, PB_LOADER_ERROR, PB_LOADER_ERROR_ABI,
                    "%s: %s built for %s, but this prebootd is %s", origin, kind,
                    h->build_signature ? h->build_signature : "(no signature)", PB_BUILD_SIGNATURE);
        return FALSE;
    }
    if (h->name == NULL || *h->name == '\0') {
        g_set_error(error, PB_LOADER_ERROR, PB_LOADER_ERROR_INVALID, "%s: %s has no name", origin,
                    kind);
        return FALSE;
    }
    return TRUE;
}

PbLibrary *pb_library_open(const char *const *search_path, const char *name_or_path,
                           const pb_library_spec *spec, GError **error)
{
    g_return_val_if_fail(name_or_path != NULL && *name_or_path && spec != NULL, NULL);
    if (spec->struct_size < offsetof(pb_library_spec, kind) + sizeof(spec->kind) ||
        spec->entry_symbol == NULL || *spec->entry_symbol == '\0') {
        g_set_error(error, PB_LOADER_ERROR, PB_LOADER_ERROR_INVALID,
                    "%s: the caller's library spec is incomplete (no entry symbol)", name_or_path);
        return NULL;
    }
    if (!loader_init(error))
        return NULL;
    g_autofree char *file = find_module(search_path, name_or_path, error);
    if (file == NULL)
        return NULL;
    lt_dlhandle h = open_handle(file, error);
    if (h == NULL)
        return NULL;
    const lt_dlinfo *info = lt_dlgetinfo(h);
    const char *origin = info && info->filename ? info->filename : file;
    pb_library_entry_fn entry = (pb_library_entry_fn)lt_dlsym(h, spec->entry_symbol);
    if (entry == NULL) {
        g_set_error(error, PB_LOADER_ERROR, PB_LOADER_ERROR_NO_ENTRY,
                    "%s: no entry point (%s_LTX_%s): not a %s, or built without "
                    "PB_LIBRARY_DEFINE",
                    origin, info && info->name ? info->name : "NAME", spec->entry_symbol,
                    spec->kind && *spec->kind ? spec->kind : "library");
        lt_dlclose(h);
        return NULL;
    }
    const pb_library_header *desc = entry();
    if (!pb_library_check(desc, spec, origin, error)) {
        lt_dlclose(h);
        return NULL;
    }
    PbLibrary *lib = g_new0(PbLibrary, 1);
    lib->path = g_strdup(origin);
    lib->handle = h;
    lib->desc = desc;
    return lib;
}

void pb_library_close(PbLibrary *lib)
{
    if (lib == NULL)
        return;
    lt_dlclose((lt_dlhandle)lib->handle);
    g_free(lib->path);
    g_free(lib);
}

PbModule *pb_module_new_builtin(const pb_plugin *plugin, GError **error)
{
    if (!pb_plugin_check(plugin, "(built in)", error))
        return NULL;
    PbModule *m = g_new0(PbModule, 1);
    m->name = g_strdup(plugin->name);
    m->path = g_strdup("(built in)");
    m->plugin = plugin;
    return m;
}

void pb_module_close(PbModule *m)
{
    if (m == NULL)
        return;
    if (m->handle)
        lt_dlclose((lt_dlhandle)m->handle);
    g_free(m->name);
    g_free(m->path);
    g_free(m);
}

static gint compare_names(gconstpointer a, gconstpointer b)
{
    return g_strcmp0(*(const char *const *)a, *(const char *const *)b);
}

GPtrArray *pb_module_scan(const char *const *search_path)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    for (const char *const *d = search_path; d && *d; d++) {
        g_autoptr(GDir) dir = g_dir_open(*d, 0, NULL);
        if (dir == NULL)
            continue;
        g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
        const char *n;
        while ((n = g_dir_read_name(dir)) != NULL)
            g_ptr_array_add(names, g_strdup(n));
        g_ptr_array_sort(names, compare_names);
        /* Sorting puts NAME.la before NAME.so, so a libtool archive wins when both exist. */
        for (guint i = 0; i < names->len; i++) {
            const char *file = g_ptr_array_index(names, i);
            const char *dot = strrchr(file, '.');
            if (dot == NULL ||
                (strcmp(dot, ".la") != 0 && strcmp(dot, ".so") != 0 && strcmp(dot, ".dll") != 0))
                continue;
            char *stem = g_strndup(file, (gsize)(dot - file));
            if (g_hash_table_contains(seen, stem)) {
                g_free(stem);
                continue;
            }
            g_hash_table_add(seen, stem);
            g_ptr_array_add(out, g_build_filename(*d, file, NULL));
        }
    }
    return out;
}

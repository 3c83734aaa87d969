/* gatebackend.c - the local backend with gates, for test-imaging-io: the first chunk_read
 * and the first chunk_write after a FIFO named gate-read or gate-write appears in the
 * store directory wait there until the test has opened the FIFO's other end (so the test
 * knows the call is in progress) and closed it again (so the test decides when it ends).
 * Whatever thread makes the call is held: the imaging plugin's worker, or, were the bytes
 * still moved there, the daemon's main loop, which the test would then find unresponsive. */
#include "build-config.h"

#include <preboot/backend.h>

#include <fcntl.h>
#include <glib.h>
#include <sys/stat.h>
#include <unistd.h>

PB_EXPORT const void *libpreboot_local_LTX_preboot_backend_entry(void);

static pb_backend gate;
static const pb_backend *local;
static char *gate_dir;
static gint read_gated, write_gated;

static void pass_gate(const char *name, gint *once)
{
    if (gate_dir == NULL || !g_atomic_int_compare_and_exchange(once, 0, 1))
        return;
    g_autofree char *path = g_build_filename(gate_dir, name, NULL);
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISFIFO(sb.st_mode)) {
        g_atomic_int_set(once, 0); /* not armed yet */
        return;
    }
    int fd = open(path, O_RDONLY); /* returns once the test opened the writing end */
    if (fd < 0)
        return;
    char b[64];
    while (read(fd, b, sizeof(b)) > 0) /* until the test closes it */
        ;
    close(fd);
}

static void *gate_open(const pb_backend_config *cfg, pb_backend_error *err)
{
    g_free(gate_dir);
    gate_dir = g_strdup(cfg->location);
    return local->open(cfg, err);
}

static int64_t gate_chunk_read(void *reader, uint64_t offset, void *buf, size_t len)
{
    pass_gate("gate-read", &read_gated);
    return local->chunk_read(reader, offset, buf, len);
}

static uint32_t gate_chunk_write(void *writer, const void *data, size_t len, pb_backend_error *err)
{
    pass_gate("gate-write", &write_gated);
    return local->chunk_write(writer, data, len, err);
}

PB_EXPORT const void *gatebackend_LTX_preboot_backend_entry(void);
PB_EXPORT const void *gatebackend_LTX_preboot_backend_entry(void)
{
    static gsize once;
    if (g_once_init_enter(&once)) {
        local = libpreboot_local_LTX_preboot_backend_entry();
        gate = *local;
        gate.open = gate_open;
        gate.chunk_read = gate_chunk_read;
        gate.chunk_write = gate_chunk_write;
        g_once_init_leave(&once, 1);
    }
    return &gate;
}

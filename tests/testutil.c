/* testutil.c - see testutil.h. */
#include "build-config.h"

#include "testutil.h"

#include "conf-yaml.h"

#include <glib/gstdio.h>
#include <string.h>

char *pbt_tmpdir(void)
{
    g_autoptr(GError) error = NULL;
    char *dir = g_dir_make_tmp("preboot-test-XXXXXX", &error);
    g_assert_no_error(error);
    return dir;
}

void pbt_rmtree(const char *path)
{
    if (path == NULL)
        return;
    GDir *dir = g_dir_open(path, 0, NULL);
    if (dir) {
        const char *n;
        while ((n = g_dir_read_name(dir)) != NULL) {
            g_autofree char *child = g_build_filename(path, n, NULL);
            if (g_file_test(child, G_FILE_TEST_IS_DIR) &&
                !g_file_test(child, G_FILE_TEST_IS_SYMLINK))
                pbt_rmtree(child);
            else
                g_unlink(child);
        }
        g_dir_close(dir);
    }
    g_rmdir(path);
}

const char *pbt_test_modules(void)
{
    static char *dir;
    if (dir == NULL)
        dir = g_test_build_filename(G_TEST_BUILT, "tests", "plugins", NULL);
    return dir;
}

void pbt_global(PbGlobalConfig *g, const char *dir, const char *extra_plugin_dir)
{
    pb_global_config_init_defaults(g);
    g_strfreev(g->plugin_path);
    const char *path[] = {pbt_test_modules(), extra_plugin_dir, NULL};
    g->plugin_path = g_strdupv((char **)path);
    g_free(g->log_dir);
    g->log_dir = g_build_filename(dir, "log", NULL);
    g_free(g->state_dir);
    g->state_dir = g_build_filename(dir, "state", NULL);
    g_free(g->pid_file);
    g->pid_file = g_build_filename(dir, "prebootd.pid", NULL);
    g_free(g->control_socket);
    g->control_socket = g_build_filename(dir, "control.sock", NULL);
    g_free(g->user);
    g->user = NULL;
    g->log_level = 4;
}

PbConfig *pbt_yaml(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *text = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_autoptr(GError) error = NULL;
    PbConfig *cfg = pb_yaml_parse(text, strlen(text), "test.yaml", &error);
    g_assert_no_error(error);
    g_assert_nonnull(cfg);
    return cfg;
}

guint16 pbt_free_udp_port(void)
{
    PbAddr a;
    g_assert_true(pb_addr_parse("127.0.0.1", 0, &a));
    g_autoptr(GError) error = NULL;
    pb_socket_t s = pb_udp_open(&a, 0, &error);
    g_assert_no_error(error);
    PbAddr local;
    g_assert_true(pb_udp_local_addr(s, &local));
    pb_udp_close(s);
    return local.port;
}

void pbt_spin(guint ms)
{
    gint64 end = g_get_monotonic_time() + (gint64)ms * 1000;
    while (g_get_monotonic_time() < end) {
        if (!g_main_context_iteration(NULL, FALSE))
            g_usleep(1000);
    }
}

char *pbt_udp_exchange(guint16 port, const char *msg, guint timeout_ms)
{
    PbAddr any, to;
    g_assert_true(pb_addr_parse("127.0.0.1", 0, &any));
    g_assert_true(pb_addr_parse("127.0.0.1", port, &to));
    g_autoptr(GError) error = NULL;
    pb_socket_t s = pb_udp_open(&any, 0, &error);
    g_assert_no_error(error);
    g_assert_cmpint(pb_udp_send(s, msg, strlen(msg), &to, NULL, 0, &error), ==,
                    (gssize)strlen(msg));
    gint64 end = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
    char buf[2048];
    char *reply = NULL;
    while (reply == NULL && g_get_monotonic_time() < end) {
        g_main_context_iteration(NULL, FALSE);
        PbAddr from;
        g_clear_error(&error);
        gssize n = pb_udp_recv(s, buf, sizeof(buf) - 1, &from, NULL, NULL, &error);
        if (n >= 0) {
            buf[n] = '\0';
            reply = g_strdup(buf);
        } else {
            g_usleep(1000);
        }
    }
    pb_udp_close(s);
    return reply;
}

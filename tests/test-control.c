/* test-control.c - core/control.h: the framing, round trips through the main loop (the
 * client runs in a thread, as prebootctl is another process), refused requests (too
 * large, bad framing, peers not allowed), big replies, timeouts and "not running". */
#include "control.h"

#include "os.h"

#include <errno.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <pwd.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    char *dir;
    char *path;
    PbControl *control;
    PbLog *log;
    char *log_path;
    int calls;
} Fixture;

static gboolean handler(gpointer data, int argc, const char *const *argv, GString *out)
{
    Fixture *f = data;
    f->calls++;
    g_assert_cmpint(argc, >=, 1);
    g_assert_null(argv[argc]);
    if (strcmp(argv[0], "big") == 0) {
        /* Larger than any socket buffer: the reply goes out over several writes. */
        for (int i = 0; i < 100000; i++)
            g_string_append_printf(out, "line %06d\n", i);
        return TRUE;
    }
    for (int i = 0; i < argc; i++)
        g_string_append_printf(out, "%s[%s]", i ? " " : "", argv[i]);
    g_string_append_c(out, '\n');
    return strcmp(argv[0], "fail") != 0;
}

static void setup(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    f->dir = g_dir_make_tmp("test-control-XXXXXX", &error);
    g_assert_no_error(error);
    f->path = g_build_filename(f->dir, "control", NULL);
    f->control = pb_control_new(f->path, NULL, handler, f, &error);
    g_assert_no_error(error);
    g_assert_nonnull(f->control);
    f->log_path = g_build_filename(f->dir, "control.log", NULL);
    f->log = pb_log_new("prebootd");
    g_assert_true(pb_log_configure(f->log, f->log_path, 2, 0, FALSE, FALSE, &error));
    pb_control_set_log(f->control, f->log);
}

static gboolean logged(Fixture *f, const char *text)
{
    g_autofree char *contents = NULL;
    return g_file_get_contents(f->log_path, &contents, NULL, NULL) &&
           strstr(contents, text) != NULL;
}

static void teardown(Fixture *f, gconstpointer data)
{
    pb_control_free(f->control);
    /* Closed and unlinked. */
    g_assert_false(g_file_test(f->path, G_FILE_TEST_EXISTS));
    pb_log_free(f->log);
    g_remove(f->log_path);
    g_free(f->log_path);
    g_rmdir(f->dir);
    g_free(f->path);
    g_free(f->dir);
}

/* ---- a client in a thread while the main loop serves ---------------------------------- */

typedef struct {
    const char *path;
    const char *const *argv;
    int argc;
    guint timeout_ms;
    GString *out;
    gboolean ok;
    gboolean result;
    GError *error;
    gint done;
} Request;

static gpointer request_thread(gpointer data)
{
    Request *r = data;
    r->result =
        pb_control_request(r->path, r->argc, r->argv, r->timeout_ms, r->out, &r->ok, &r->error);
    g_atomic_int_set(&r->done, 1);
    g_main_context_wakeup(NULL);
    return NULL;
}

static void request(Request *r, const char *path, int argc, const char *const *argv)
{
    memset(r, 0, sizeof *r);
    r->path = path;
    r->argc = argc;
    r->argv = argv;
    r->timeout_ms = 5000;
    r->out = g_string_new(NULL);
    GThread *t = g_thread_new("client", request_thread, r);
    gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    while (!g_atomic_int_get(&r->done)) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_main_context_iteration(NULL, FALSE);
        g_usleep(1000);
    }
    g_thread_join(t);
}

static void request_clear(Request *r)
{
    g_string_free(r->out, TRUE);
    g_clear_error(&r->error);
}

static void test_round_trip(Fixture *f, gconstpointer data)
{
    Request r;
    const char *const status[] = {"status", NULL};
    request(&r, f->path, 1, status);
    g_assert_no_error(r.error);
    g_assert_true(r.result);
    g_assert_true(r.ok);
    g_assert_cmpstr(r.out->str, ==, "[status]\n");
    request_clear(&r);

    /* Arguments arrive as sent, spaces and UTF-8 included. */
    const char *const cmd[] = {"tftp", "set", "a b", "été", NULL};
    request(&r, f->path, 4, cmd);
    g_assert_true(r.result);
    g_assert_true(r.ok);
    g_assert_cmpstr(r.out->str, ==, "[tftp] [set] [a b] [été]\n");
    request_clear(&r);

    /* The handler's FALSE is an ERR reply, not a transport failure. */
    const char *const fail[] = {"fail", "x", NULL};
    request(&r, f->path, 2, fail);
    g_assert_no_error(r.error);
    g_assert_true(r.result);
    g_assert_false(r.ok);
    g_assert_cmpstr(r.out->str, ==, "[fail] [x]\n");
    request_clear(&r);

    const char *const big[] = {"big", NULL};
    request(&r, f->path, 1, big);
    g_assert_no_error(r.error);
    g_assert_true(r.ok);
    g_assert_cmpuint(r.out->len, ==, 100000 * 12);
    g_assert_true(g_str_has_suffix(r.out->str, "line 099999\n"));
    request_clear(&r);
    g_assert_cmpint(f->calls, ==, 4);

    /* 64 arguments are fine; the client refuses 65 and empty ones before sending. */
    const char *many[66];
    for (int i = 0; i < 65; i++)
        many[i] = "a";
    many[65] = NULL;
    request(&r, f->path, 64, many);
    g_assert_true(r.ok);
    request_clear(&r);
    request(&r, f->path, 65, many);
    g_assert_false(r.result);
    g_assert_error(r.error, G_FILE_ERROR, G_FILE_ERROR_INVAL);
    request_clear(&r);
    const char *const empty[] = {"status", "", NULL};
    request(&r, f->path, 2, empty);
    g_assert_false(r.result);
    g_assert_error(r.error, G_FILE_ERROR, G_FILE_ERROR_INVAL);
    request_clear(&r);
    g_assert_cmpint(f->calls, ==, 5);
}

/* ---- raw bytes: what a broken or hostile client may send ----------------------------- */

/* Sends raw bytes (optionally half-closing), then reads the whole reply, iterating the main
 * loop in between since the server runs on it in this thread. */
static char *raw_exchange(const char *path, const void *bytes, gsize len, gboolean shut)
{
    g_autoptr(GError) error = NULL;
    pb_socket_t s = pb_os_control_connect(path, &error);
    g_assert_no_error(error);
    gsize sent = 0;
    GString *reply = g_string_new(NULL);
    gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    gboolean eof = FALSE, shut_done = FALSE;
    while (!eof) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        if (sent < len) {
            gssize n = pb_os_socket_write(s, (const char *)bytes + sent, len - sent);
            if (n > 0)
                sent += (gsize)n;
            else if (errno == EPIPE || errno == ECONNRESET)
                sent = len; /* the server answered and closed early */
        }
        if (sent == len && shut && !shut_done) {
            shutdown((int)s, SHUT_WR);
            shut_done = TRUE;
        }
        char buf[4096];
        gssize n = pb_os_socket_read(s, buf, sizeof buf);
        if (n > 0)
            g_string_append_len(reply, buf, n);
        else if (n == 0)
            eof = TRUE;
        g_main_context_iteration(NULL, FALSE);
    }
    pb_os_socket_close(s);
    return g_string_free(reply, FALSE);
}

static void test_oversized(Fixture *f, gconstpointer data)
{
    gsize len = PB_CONTROL_MAX_REQUEST + 4096;
    g_autofree char *junk = g_malloc(len);
    memset(junk, 'a', len);
    g_autofree char *reply = raw_exchange(f->path, junk, len, FALSE);
    g_assert_cmpstr(reply, ==, "ERR\nrequest too large\n");

    /* Well framed but too long in total. */
    GByteArray *b = g_byte_array_new();
    for (int i = 0; i < 40; i++) {
        char arg[2000];
        memset(arg, 'b', sizeof arg - 1);
        arg[sizeof arg - 1] = '\0';
        g_byte_array_append(b, (const guint8 *)arg, sizeof arg);
    }
    g_byte_array_append(b, (const guint8 *)"", 1);
    g_autofree char *reply2 = raw_exchange(f->path, b->data, b->len, FALSE);
    g_assert_cmpstr(reply2, ==, "ERR\nrequest too large\n");
    g_byte_array_unref(b);

    GString *many = g_string_new(NULL);
    for (int i = 0; i < 65; i++)
        g_string_append_len(many, "x\0", 2);
    g_string_append_len(many, "\0", 1);
    g_autofree char *reply3 = raw_exchange(f->path, many->str, many->len, FALSE);
    g_assert_cmpstr(reply3, ==, "ERR\ntoo many arguments\n");
    g_string_free(many, TRUE);
    g_assert_cmpint(f->calls, ==, 0);
}

static void test_bad_framing(Fixture *f, gconstpointer data)
{
    static const struct {
        const char *bytes;
        gsize len;
        gboolean shut;
        const char *reply;
    } cases[] = {
        {"status\0\0extra", 13, FALSE, "ERR\nbad framing: data after the request\n"},
        {"status\0", 7, TRUE, "ERR\nbad framing: request not terminated\n"},
        {"status", 6, TRUE, "ERR\nbad framing: request not terminated\n"},
        {"\0", 1, FALSE, "ERR\nempty request\n"},
        {"st\xff\xfe\0\0", 6, FALSE, "ERR\narguments must be UTF-8\n"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *reply = raw_exchange(f->path, cases[i].bytes, cases[i].len, cases[i].shut);
        g_assert_cmpstr(reply, ==, cases[i].reply);
    }
    g_assert_cmpint(f->calls, ==, 0);
    g_assert_true(logged(f, "] WARNING: control: request refused: empty request\n"));
    g_assert_true(logged(f, "control: request refused: bad framing: data after the request"));

    /* A request split over many writes is still one request. */
    g_autoptr(GError) error = NULL;
    pb_socket_t s = pb_os_control_connect(f->path, &error);
    g_assert_no_error(error);
    const char req[] = "stats\0tftp\0";
    for (gsize i = 0; i < sizeof req; i++) {
        g_assert_cmpint(pb_os_socket_write(s, req + i, 1), ==, 1);
        for (int k = 0; k < 3; k++)
            g_main_context_iteration(NULL, FALSE);
    }
    GString *reply = g_string_new(NULL);
    gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
    for (;;) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_main_context_iteration(NULL, FALSE);
        char buf[256];
        gssize n = pb_os_socket_read(s, buf, sizeof buf);
        if (n == 0)
            break;
        if (n > 0)
            g_string_append_len(reply, buf, n);
    }
    g_assert_cmpstr(reply->str, ==, "OK\n[stats] [tftp]\n");
    g_string_free(reply, TRUE);
    pb_os_socket_close(s);
    g_assert_cmpint(f->calls, ==, 1);
}

/* Reads s until end of stream or deadline_ms, serving the main loop; returns what came, or
 * NULL if the connection is still open at the deadline. */
static char *read_to_eof(pb_socket_t s, guint deadline_ms)
{
    GString *got = g_string_new(NULL);
    gint64 deadline = g_get_monotonic_time() + (gint64)deadline_ms * 1000;
    while (g_get_monotonic_time() < deadline) {
        g_main_context_iteration(NULL, FALSE);
        char buf[256];
        gssize n = pb_os_socket_read(s, buf, sizeof buf);
        if (n == 0)
            return g_string_free(got, FALSE);
        if (n > 0)
            g_string_append_len(got, buf, n);
        g_usleep(1000);
    }
    g_string_free(got, TRUE);
    return NULL;
}

/* Stalled clients: beyond the limit new ones are closed at once; each is dropped after the
 * deadline even if it never sends a byte. */
static void test_limits(Fixture *f, gconstpointer data)
{
    pb_control_set_limits(f->control, 400, 2);
    g_autoptr(GError) error = NULL;
    pb_socket_t a = pb_os_control_connect(f->path, &error);
    pb_socket_t b = pb_os_control_connect(f->path, &error);
    g_assert_no_error(error);
    g_assert_null(read_to_eof(a, 50)); /* accepted, waiting for a request */
    g_assert_null(read_to_eof(b, 50));
    pb_socket_t c = pb_os_control_connect(f->path, &error);
    g_assert_no_error(error);
    g_autofree char *third = read_to_eof(c, 300);
    g_assert_cmpstr(third, ==, "");
    g_assert_true(logged(f, "control: too many connections"));

    gint64 start = g_get_monotonic_time();
    g_autofree char *ra = read_to_eof(a, 3000);
    g_autofree char *rb = read_to_eof(b, 3000);
    g_assert_cmpstr(ra, ==, "");
    g_assert_cmpstr(rb, ==, "");
    g_assert_cmpint(g_get_monotonic_time() - start, <, 2 * G_USEC_PER_SEC);
    g_assert_true(logged(f, "control: dropping a connection not done after 400 ms"));
    g_assert_cmpint(f->calls, ==, 0);
    pb_os_socket_close(a);
    pb_os_socket_close(b);
    pb_os_socket_close(c);

    /* Room again: a normal request goes through. */
    g_autofree char *reply = raw_exchange(f->path, "status\0\0", 8, FALSE);
    g_assert_cmpstr(reply, ==, "OK\n[status]\n");
}

static void test_parse(void)
{
    g_auto(GStrv) argv = NULL;
    gsize used = 0;
    const char *why = NULL;
    g_assert_cmpint(pb_control_parse((const guint8 *)"a\0bc\0\0", 6, &argv, &used, &why), ==,
                    PB_CONTROL_PARSE_OK);
    g_assert_cmpuint(used, ==, 6);
    g_assert_cmpuint(g_strv_length(argv), ==, 2);
    g_assert_cmpstr(argv[1], ==, "bc");
    g_assert_cmpint(pb_control_parse((const guint8 *)"a\0bc\0", 5, NULL, NULL, NULL), ==,
                    PB_CONTROL_PARSE_INCOMPLETE);
    g_assert_cmpint(pb_control_parse((const guint8 *)"", 0, NULL, NULL, NULL), ==,
                    PB_CONTROL_PARSE_INCOMPLETE);

    const char *const v[] = {"tftp", "status", NULL};
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) b = pb_control_encode(2, v, &error);
    g_assert_no_error(error);
    gsize len;
    const guint8 *p = g_bytes_get_data(b, &len);
    g_assert_cmpmem(p, len, "tftp\0status\0\0", 13);
    g_auto(GStrv) back = NULL;
    g_assert_cmpint(pb_control_parse(p, len, &back, &used, NULL), ==, PB_CONTROL_PARSE_OK);
    g_assert_cmpstr(back[0], ==, "tftp");
    g_assert_cmpstr(back[1], ==, "status");
    g_assert_null(back[2]);

    g_assert_null(pb_control_encode(0, v, &error));
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL);
}

static void test_not_running(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *dir = g_dir_make_tmp("test-control-XXXXXX", &error);
    g_autofree char *path = g_build_filename(dir, "control", NULL);
    const char *const v[] = {"status", NULL};
    g_autoptr(GString) out = g_string_new(NULL);
    gboolean ok = TRUE;
    g_assert_false(pb_control_request(path, 1, v, 1000, out, &ok, &error));
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
    g_assert_false(ok);
    g_clear_error(&error);

    /* A socket that accepts (backlog) but never answers: bounded by the timeout. */
    pb_socket_t l = pb_os_control_listen(path, NULL, &error);
    g_assert_no_error(error);
    gint64 start = g_get_monotonic_time();
    g_assert_false(pb_control_request(path, 1, v, 300, out, &ok, &error));
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_AGAIN);
    gint64 took = g_get_monotonic_time() - start;
    g_assert_cmpint(took, >=, 250000);
    g_assert_cmpint(took, <, 3 * G_USEC_PER_SEC);
    pb_os_socket_close(l);
    pb_os_control_unlink(path);
    g_rmdir(dir);
}

/* A peer that is neither root, nor us, nor in the control group gets "permission denied"
 * and the handler never runs (root only: the peer must be another user). */
static void test_permission_denied(Fixture *f, gconstpointer data)
{
    if (geteuid() != 0) {
        g_test_skip("needs root (to connect as another user)");
        return;
    }
    struct passwd *pw = getpwnam("nobody");
    if (pw == NULL) {
        g_test_skip("no user nobody");
        return;
    }
    /* Let the file mode through, so that the credential check is what refuses. */
    g_assert_cmpint(chmod(f->dir, 0755), ==, 0);
    g_assert_cmpint(chmod(f->path, 0666), ==, 0);
    pid_t child = fork();
    g_assert_cmpint(child, >=, 0);
    if (child == 0) {
        if (setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
            _exit(2);
        const char *const v[] = {"stop", NULL};
        GString *out = g_string_new(NULL);
        gboolean ok = TRUE;
        GError *err = NULL;
        if (!pb_control_request(f->path, 1, v, 5000, out, &ok, &err)) {
            g_printerr("child: %s\n", err->message);
            _exit(3);
        }
        _exit(!ok && strcmp(out->str, "permission denied\n") == 0 ? 0 : 4);
    }
    int status = 0;
    gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    for (;;) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_main_context_iteration(NULL, FALSE);
        pid_t w = waitpid(child, &status, WNOHANG);
        if (w == child)
            break;
        g_usleep(1000);
    }
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 0);
    g_assert_cmpint(f->calls, ==, 0);
    g_assert_true(logged(f, "control: permission denied"));
}

/* ---- prebootctl against a stand-in daemon on the main loop --------------------------- */

typedef struct {
    GPid victim; /* the "daemon" process that stop ends */
    int reloads;
    gboolean exited;
    gboolean victim_reaped;
} Daemon;

static gboolean daemon_handler(gpointer data, int argc, const char *const *argv, GString *out)
{
    Daemon *d = data;
    if (strcmp(argv[0], "status") == 0) {
        g_string_append(out, "prebootd running\n  tftp: running\n");
        return TRUE;
    }
    if (strcmp(argv[0], "stats") == 0) {
        g_string_append(out, "tftp: requests = 3\n");
        return TRUE;
    }
    if (strcmp(argv[0], "pid") == 0) {
        g_string_append_printf(out, "%ld\n", (long)d->victim);
        return TRUE;
    }
    if (strcmp(argv[0], "reload") == 0) {
        /* The first reload works, the second is refused, as a bad configuration is. */
        if (d->reloads++ == 0) {
            g_string_append(out, "configuration reloaded\n");
            return TRUE;
        }
        g_string_append(out, "reload refused: tftp: bad value\n");
        return FALSE;
    }
    if (strcmp(argv[0], "stop") == 0) {
        kill(d->victim, SIGTERM);
        g_string_append(out, "stopping\n");
        return TRUE;
    }
    g_string_append(out, "plugin:");
    for (int i = 0; i < argc; i++)
        g_string_append_printf(out, " <%s>", argv[i]);
    g_string_append_c(out, '\n');
    return TRUE;
}

static void on_child_exit(GPid pid, gint status, gpointer data)
{
    *(gboolean *)data = TRUE;
    g_spawn_close_pid(pid);
}

/* Runs prebootctl ARGS..., serving the main loop meanwhile; returns its exit status. */
static int run_ctl(const char *ctl, const char *const *args, char **out, char **err)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_ptr_array_add(argv, (gpointer)ctl);
    for (const char *const *a = args; *a; a++)
        g_ptr_array_add(argv, (gpointer)*a);
    g_ptr_array_add(argv, NULL);
    g_autoptr(GError) error = NULL;
    GPid pid;
    int out_fd, err_fd;
    g_assert_true(g_spawn_async_with_pipes(NULL, (char **)argv->pdata, NULL,
                                           G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &pid, NULL,
                                           &out_fd, &err_fd, &error));
    g_assert_no_error(error);
    GString *o = g_string_new(NULL), *e = g_string_new(NULL);
    int status = -1;
    gint64 deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
    gboolean out_eof = FALSE, err_eof = FALSE;
    g_unix_set_fd_nonblocking(out_fd, TRUE, NULL);
    g_unix_set_fd_nonblocking(err_fd, TRUE, NULL);
    for (;;) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_main_context_iteration(NULL, FALSE);
        char buf[1024];
        gssize n;
        while (!out_eof && (n = read(out_fd, buf, sizeof buf)) != 0 && n > 0)
            g_string_append_len(o, buf, n);
        if (!out_eof && n == 0)
            out_eof = TRUE;
        while (!err_eof && (n = read(err_fd, buf, sizeof buf)) != 0 && n > 0)
            g_string_append_len(e, buf, n);
        if (!err_eof && n == 0)
            err_eof = TRUE;
        if (status < 0 && waitpid(pid, &status, WNOHANG) != pid)
            status = -1;
        if (status >= 0 && out_eof && err_eof)
            break;
        g_usleep(2000);
    }
    close(out_fd);
    close(err_fd);
    *out = g_string_free(o, FALSE);
    *err = g_string_free(e, FALSE);
    if (!WIFEXITED(status))
        g_test_message("%s ended by signal %d; stderr: %s", ctl, WTERMSIG(status), *err);
    g_assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void test_prebootctl(void)
{
    g_autofree char *ctl = NULL;
    const char *top = g_getenv("top_builddir");
    ctl = top ? g_build_filename(top, "tools", "prebootctl", NULL)
              : g_test_build_filename(G_TEST_BUILT, "..", "tools", "prebootctl", NULL);
    if (!g_file_test(ctl, G_FILE_TEST_IS_EXECUTABLE)) {
        g_test_skip("tools/prebootctl is not built");
        return;
    }
    g_autoptr(GError) error = NULL;
    g_autofree char *dir = g_dir_make_tmp("test-ctl-XXXXXX", &error);
    g_autofree char *sock = g_build_filename(dir, "control.sock", NULL);
    g_autofree char *pidfile = g_build_filename(dir, "prebootd.pid", NULL);
    char *out = NULL, *err = NULL;

    /* Nothing there yet: LSB "not running" (3) for status, showpid and commands;
     * stop is a success. */
    const char *const status[] = {"-s", sock, "-p", pidfile, "status", NULL};
    g_assert_cmpint(run_ctl(ctl, status, &out, &err), ==, 3);
    g_assert_cmpstr(out, ==, "prebootd is not running\n");
    g_free(out), g_free(err);
    const char *const showpid[] = {"-s", sock, "-p", pidfile, "showpid", NULL};
    g_assert_cmpint(run_ctl(ctl, showpid, &out, &err), ==, 3);
    g_assert_cmpstr(out, ==, "");
    g_free(out), g_free(err);
    const char *const stop[] = {"-s", sock, "-p", pidfile, "-t", "5", "stop", NULL};
    g_assert_cmpint(run_ctl(ctl, stop, &out, &err), ==, 0);
    g_free(out), g_free(err);
    const char *const stats[] = {"-s", sock, "-p", pidfile, "stats", NULL};
    g_assert_cmpint(run_ctl(ctl, stats, &out, &err), ==, 3);
    g_free(out), g_free(err);

    /* start reports a daemon that fails to start, with a non-zero exit. */
    g_autofree char *env_false = g_strdup("PREBOOTD=/bin/false");
    const char *const start_false[] = {env_false, ctl, "-s", sock, "-p", pidfile, "start", NULL};
    g_assert_cmpint(run_ctl("/usr/bin/env", start_false, &out, &err), ==, 1);
    g_assert_nonnull(strstr(err, "/bin/false failed to start"));
    g_free(out), g_free(err);
    const char *const start_none[] = {
        "PREBOOTD=/nonexistent/prebootd", ctl, "-s", sock, "start", NULL};
    g_assert_cmpint(run_ctl("/usr/bin/env", start_none, &out, &err), ==, 1);
    g_assert_nonnull(strstr(err, "cannot run /nonexistent/prebootd"));
    g_free(out), g_free(err);

    /* A stand-in daemon: this process serves the control socket, a child plays the
     * daemon process that stop must end. */
    Daemon d = {0};
    const char *const sleeper[] = {"sleep", "60", NULL};
    g_assert_true(g_spawn_async(NULL, (char **)sleeper, NULL,
                                G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
                                &d.victim, &error));
    g_child_watch_add(d.victim, on_child_exit, &d.victim_reaped);
    PbControl *c = pb_control_new(sock, NULL, daemon_handler, &d, &error);
    g_assert_no_error(error);

    g_assert_cmpint(run_ctl(ctl, status, &out, &err), ==, 0);
    g_assert_cmpstr(out, ==, "prebootd running\n  tftp: running\n");
    g_free(out), g_free(err);
    g_assert_cmpint(run_ctl(ctl, stats, &out, &err), ==, 0);
    g_assert_cmpstr(out, ==, "tftp: requests = 3\n");
    g_free(out), g_free(err);
    /* No pid file: the daemon tells its pid. */
    g_assert_cmpint(run_ctl(ctl, showpid, &out, &err), ==, 0);
    g_autofree char *want_pid = g_strdup_printf("%ld\n", (long)d.victim);
    g_assert_cmpstr(out, ==, want_pid);
    g_free(out), g_free(err);

    /* Plugin commands pass through as they are, options after the verb included. */
    const char *const plugin[] = {"-s", sock, "tftp-sessions", "--all", "a b", NULL};
    g_assert_cmpint(run_ctl(ctl, plugin, &out, &err), ==, 0);
    g_assert_cmpstr(out, ==, "plugin: <tftp-sessions> <--all> <a b>\n");
    g_free(out), g_free(err);

    const char *const reload[] = {"-s", sock, "force-reload", NULL};
    g_assert_cmpint(run_ctl(ctl, reload, &out, &err), ==, 0);
    g_assert_cmpstr(out, ==, "configuration reloaded\n");
    g_free(out), g_free(err);
    g_assert_cmpint(run_ctl(ctl, reload, &out, &err), ==, 1);
    g_assert_cmpstr(err, ==, "reload refused: tftp: bad value\n");
    g_free(out), g_free(err);

    /* stop: asks, then waits until the process is gone. */
    g_assert_cmpint(run_ctl(ctl, stop, &out, &err), ==, 0);
    g_assert_cmpstr(out, ==, "prebootd stopped\n");
    g_free(out), g_free(err);
    g_assert_true(d.victim_reaped);

    const char *const version[] = {"--version", NULL};
    g_assert_cmpint(run_ctl(ctl, version, &out, &err), ==, 0);
    g_assert_true(g_str_has_prefix(out, "prebootctl "));
    g_free(out), g_free(err);
    const char *const none[] = {"-s", sock, NULL};
    g_assert_cmpint(run_ctl(ctl, none, &out, &err), ==, 1);
    g_free(out), g_free(err);

    pb_control_free(c);
    g_rmdir(dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) g_test_add(name, Fixture, NULL, setup, fn, teardown)
    ADD("/control/round-trip", test_round_trip);
    ADD("/control/oversized", test_oversized);
    ADD("/control/bad-framing", test_bad_framing);
    ADD("/control/permission-denied", test_permission_denied);
    ADD("/control/limits", test_limits);
    g_test_add_func("/control/parse", test_parse);
    g_test_add_func("/control/not-running", test_not_running);
    g_test_add_func("/control/prebootctl", test_prebootctl);
    return g_test_run();
}

/* test-os.c - core/os.h on POSIX: pid files (ours, stale, another live process), mkdir -p,
 * the control socket (mode, stale socket, peer credentials), socket and signal sources,
 * daemonizing and dropping privileges with what is given to the user first (root only;
 * run in subprocesses), and the descriptor limit. */
#include "os.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    char *dir;
} Fixture;

static void setup(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    f->dir = g_dir_make_tmp("test-os-XXXXXX", &error);
    g_assert_no_error(error);
}

static void rm_rf(const char *path)
{
    GDir *d = g_dir_open(path, 0, NULL);
    if (d != NULL) {
        const char *name;
        while ((name = g_dir_read_name(d)) != NULL) {
            g_autofree char *p = g_build_filename(path, name, NULL);
            rm_rf(p);
        }
        g_dir_close(d);
    }
    g_remove(path);
}

static void teardown(Fixture *f, gconstpointer data)
{
    rm_rf(f->dir);
    g_free(f->dir);
}

/* A pid that was just in use and is not any more. */
static pid_t dead_pid(void)
{
    pid_t pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0)
        _exit(0);
    int status;
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    return pid;
}

static void test_pidfile(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *path = g_build_filename(f->dir, "prebootd.pid", NULL);

    g_assert_cmpint(pb_os_pidfile_read(path), ==, 0);
    g_assert_true(pb_os_pidfile_write(path, &error));
    g_assert_no_error(error);
    g_assert_cmpint(pb_os_pidfile_read(path), ==, getpid());
    g_autofree char *text = NULL;
    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    g_autofree char *want = g_strdup_printf("%ld\n", (long)getpid());
    g_assert_cmpstr(text, ==, want);
    /* Writing our own pid again is fine (a reload that rewrites it). */
    g_assert_true(pb_os_pidfile_write(path, &error));
    pb_os_pidfile_remove(path);
    g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));

    /* Stale: the process is gone, so read says "not running" and write takes over. */
    g_autofree char *stale = g_strdup_printf("%ld\n", (long)dead_pid());
    g_assert_true(g_file_set_contents(path, stale, -1, NULL));
    g_assert_cmpint(pb_os_pidfile_read(path), ==, 0);
    g_assert_true(pb_os_pidfile_write(path, &error));
    g_assert_no_error(error);
    g_assert_cmpint(pb_os_pidfile_read(path), ==, getpid());
    pb_os_pidfile_remove(path);

    /* Garbage is as good as stale. */
    g_assert_true(g_file_set_contents(path, "not a pid\n", -1, NULL));
    g_assert_cmpint(pb_os_pidfile_read(path), ==, 0);
    g_assert_true(pb_os_pidfile_write(path, &error));
    pb_os_pidfile_remove(path);

    /* Another live process holds it: refuse, and never remove its file. */
    pid_t child = fork();
    g_assert_cmpint(child, >=, 0);
    if (child == 0) {
        pause();
        _exit(0);
    }
    g_autofree char *other = g_strdup_printf("%ld\n", (long)child);
    g_assert_true(g_file_set_contents(path, other, -1, NULL));
    g_assert_true(pb_os_process_alive(child));
    g_assert_cmpint(pb_os_pidfile_read(path), ==, child);
    g_assert_false(pb_os_pidfile_write(path, &error));
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_EXIST);
    g_autofree char *pidtext = g_strdup_printf("pid %ld", (long)child);
    g_assert_nonnull(strstr(error->message, pidtext));
    g_clear_error(&error);
    pb_os_pidfile_remove(path);
    g_assert_true(g_file_test(path, G_FILE_TEST_EXISTS));

    g_assert_true(pb_os_process_terminate(child, &error));
    int status;
    g_assert_cmpint(waitpid(child, &status, 0), ==, child);
    g_assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
    g_assert_false(pb_os_process_alive(child));
    g_assert_cmpint(pb_os_pidfile_read(path), ==, 0);

    g_assert_false(pb_os_process_alive(0));
    g_assert_false(pb_os_process_alive(-1));
    g_assert_false(pb_os_process_terminate(0, &error));
    g_clear_error(&error);

    /* A directory that is not there. */
    g_autofree char *nodir = g_build_filename(f->dir, "missing", "x.pid", NULL);
    g_assert_false(pb_os_pidfile_write(nodir, &error));
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
}

static void test_mkdir_p(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *deep = g_build_filename(f->dir, "a", "b", "c", NULL);
    g_assert_true(pb_os_mkdir_p(deep, 0750, &error));
    g_assert_no_error(error);
    g_assert_true(g_file_test(deep, G_FILE_TEST_IS_DIR));
    g_assert_true(pb_os_mkdir_p(deep, 0750, &error)); /* exists: fine */

    g_autofree char *file = g_build_filename(f->dir, "file", NULL);
    g_assert_true(g_file_set_contents(file, "", 0, NULL));
    g_assert_false(pb_os_mkdir_p(file, 0750, &error));
    g_assert_nonnull(error);
    g_clear_error(&error);
    g_autofree char *under = g_build_filename(file, "sub", NULL);
    g_assert_false(pb_os_mkdir_p(under, 0750, &error));
    g_assert_nonnull(error);
}

static void test_control_socket(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *path = g_build_filename(f->dir, "control", NULL);

    /* Nobody listens yet: "not running". */
    g_assert_true(pb_os_control_connect(path, &error) == PB_SOCKET_NONE);
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
    g_clear_error(&error);

    pb_socket_t l = pb_os_control_listen(path, NULL, &error);
    g_assert_no_error(error);
    g_assert_true(l != PB_SOCKET_NONE);
    struct stat st;
    g_assert_cmpint(lstat(path, &st), ==, 0);
    g_assert_true(S_ISSOCK(st.st_mode));
    g_assert_cmpint(st.st_mode & 0777, ==, 0660);

    /* Nothing queued yet. */
    errno = 0;
    g_assert_true(pb_os_control_accept(l) == PB_SOCKET_NONE);
    g_assert_true(errno == EAGAIN || errno == EWOULDBLOCK);

    pb_socket_t c = pb_os_control_connect(path, &error);
    g_assert_no_error(error);
    pb_socket_t a = pb_os_control_accept(l);
    g_assert_true(a != PB_SOCKET_NONE);
    g_assert_true(pb_os_control_peer_allowed(a, NULL));
    g_assert_true(pb_os_control_peer_allowed(a, "no-such-group-here"));
    g_assert_cmpint(pb_os_socket_write(c, "ping", 4), ==, 4);
    char buf[8];
    g_assert_cmpint(pb_os_socket_read(a, buf, sizeof buf), ==, 4);
    g_assert_cmpmem(buf, 4, "ping", 4);
    /* Non-blocking both ways. */
    errno = 0;
    g_assert_cmpint(pb_os_socket_read(a, buf, sizeof buf), ==, -1);
    g_assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
    pb_os_socket_close(c);
    g_assert_cmpint(pb_os_socket_read(a, buf, sizeof buf), ==, 0);
    /* The peer is gone: EPIPE, not SIGPIPE. */
    g_assert_cmpint(pb_os_socket_write(a, "x", 1), ==, -1);
    pb_os_socket_close(a);

    /* A second daemon must not steal a live socket. */
    g_assert_true(pb_os_control_listen(path, NULL, &error) == PB_SOCKET_NONE);
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_EXIST);
    g_clear_error(&error);

    /* A crash leaves the socket file behind: the next start replaces it. */
    pb_os_socket_close(l);
    g_assert_true(g_file_test(path, G_FILE_TEST_EXISTS));
    l = pb_os_control_listen(path, NULL, &error);
    g_assert_no_error(error);
    pb_os_socket_close(l);
    pb_os_control_unlink(path);
    g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));

    /* Whatever is not a socket is not ours to delete. */
    g_assert_true(g_file_set_contents(path, "keep", -1, NULL));
    g_assert_true(pb_os_control_listen(path, NULL, &error) == PB_SOCKET_NONE);
    g_assert_nonnull(error);
    g_clear_error(&error);
    pb_os_control_unlink(path);
    g_assert_true(g_file_test(path, G_FILE_TEST_EXISTS));
    g_remove(path);

    g_assert_true(pb_os_control_listen(path, "no-such-group-here", &error) == PB_SOCKET_NONE);
    g_assert_nonnull(error);
    g_clear_error(&error);

    g_autofree char *longpath = g_strnfill(200, 'x');
    g_autofree char *toolong = g_build_filename(f->dir, longpath, NULL);
    g_assert_true(pb_os_control_listen(toolong, NULL, &error) == PB_SOCKET_NONE);
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NAMETOOLONG);
}

/* In a child, as user/group, connects to path and reports what the server decides. */
static gboolean peer_check_as(const char *path, pb_socket_t l, uid_t uid, gid_t gid,
                              const char *group)
{
    pid_t child = fork();
    g_assert_cmpint(child, >=, 0);
    if (child == 0) {
        if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
            _exit(2);
        pb_socket_t c = pb_os_control_connect(path, NULL);
        if (c == PB_SOCKET_NONE)
            _exit(3);
        char b;
        /* Wait for the server's verdict (it closes) before exiting. */
        while (pb_os_socket_read(c, &b, 1) != 0)
            g_usleep(1000);
        _exit(0);
    }
    pb_socket_t a = PB_SOCKET_NONE;
    for (int i = 0; i < 5000 && a == PB_SOCKET_NONE; i++) {
        a = pb_os_control_accept(l);
        if (a == PB_SOCKET_NONE)
            g_usleep(1000);
    }
    g_assert_true(a != PB_SOCKET_NONE);
    gboolean allowed = pb_os_control_peer_allowed(a, group);
    pb_os_socket_close(a);
    int status;
    g_assert_cmpint(waitpid(child, &status, 0), ==, child);
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 0);
    return allowed;
}

static void test_control_peer_other_user(Fixture *f, gconstpointer data)
{
    if (geteuid() != 0) {
        g_test_skip("needs root (to connect as another user)");
        return;
    }
    struct passwd *pw = getpwnam("daemon");
    struct group *gr = getgrnam("nogroup");
    if (gr == NULL)
        gr = getgrnam("nobody");
    if (pw == NULL || gr == NULL || pw->pw_gid == gr->gr_gid) {
        g_test_skip("no user daemon / group nogroup");
        return;
    }
    uid_t user = pw->pw_uid;
    gid_t own = pw->pw_gid;
    gid_t nogroup = gr->gr_gid;
    g_autofree char *group = g_strdup(gr->gr_name);
    struct passwd *nobody = getpwnam("nobody");

    g_autoptr(GError) error = NULL;
    g_assert_cmpint(chmod(f->dir, 0755), ==, 0);
    g_autofree char *path = g_build_filename(f->dir, "control", NULL);
    pb_socket_t l = pb_os_control_listen(path, group, &error);
    g_assert_no_error(error);
    struct stat st;
    g_assert_cmpint(lstat(path, &st), ==, 0);
    g_assert_cmpuint(st.st_gid, ==, nogroup);

    /* A member of the control group may talk to the daemon (by the process's group, or by
     * the groups of its user); with no group named, or not a member, it may not. The
     * socket is then opened to all so that the peer check, not the mode, decides. */
    g_assert_true(peer_check_as(path, l, user, nogroup, group));
    g_assert_cmpint(chmod(path, 0666), ==, 0);
    g_assert_false(peer_check_as(path, l, user, own, group));
    g_assert_false(peer_check_as(path, l, user, nogroup, NULL));
    if (nobody != NULL && nobody->pw_gid == nogroup)
        g_assert_true(peer_check_as(path, l, nobody->pw_uid, own, group));
    pb_os_socket_close(l);
    pb_os_control_unlink(path);
}

typedef struct {
    int fired;
    GIOCondition cond;
    pb_socket_t sock;
} SourceSeen;

static gboolean on_socket(pb_socket_t sock, GIOCondition cond, gpointer data)
{
    SourceSeen *s = data;
    s->fired++;
    s->cond = cond;
    s->sock = sock;
    char buf[16];
    pb_os_socket_read(sock, buf, sizeof buf);
    return G_SOURCE_CONTINUE;
}

static gboolean on_timeout(gpointer data)
{
    *(gboolean *)data = TRUE;
    return G_SOURCE_REMOVE;
}

/* Iterates the default context until *flag is non-zero or 5 s passed. */
static void run_until(const int *flag)
{
    gboolean timed_out = FALSE;
    guint t = g_timeout_add(5000, on_timeout, &timed_out);
    while (*flag == 0 && !timed_out)
        g_main_context_iteration(NULL, TRUE);
    g_assert_false(timed_out);
    g_source_remove(t);
}

static void test_socket_source(Fixture *f, gconstpointer data)
{
    int sv[2];
    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), ==, 0);
    SourceSeen seen = {0};
    GSource *src = pb_os_socket_source_new(sv[0], G_IO_IN);
    g_source_set_callback(src, (GSourceFunc)(void (*)(void))on_socket, &seen, NULL);
    g_source_attach(src, NULL);

    /* Nothing to read: no dispatch. */
    while (g_main_context_iteration(NULL, FALSE))
        ;
    g_assert_cmpint(seen.fired, ==, 0);

    g_assert_cmpint(pb_os_socket_write(sv[1], "hi", 2), ==, 2);
    run_until(&seen.fired);
    g_assert_cmpint(seen.fired, ==, 1);
    g_assert_true(seen.cond & G_IO_IN);
    g_assert_true(seen.sock == sv[0]);

    /* The data was read: quiet again until the next write. */
    while (g_main_context_iteration(NULL, FALSE))
        ;
    g_assert_cmpint(seen.fired, ==, 1);
    g_assert_cmpint(pb_os_socket_write(sv[1], "again", 5), ==, 5);
    run_until(&seen.fired);
    while (seen.fired < 2)
        g_main_context_iteration(NULL, TRUE);

    g_source_destroy(src);
    g_source_unref(src);
    close(sv[0]);
    close(sv[1]);
}

static gboolean on_signal(gpointer data)
{
    (*(int *)data)++;
    return G_SOURCE_CONTINUE;
}

static void test_signals(Fixture *f, gconstpointer data)
{
    int reloads = 0, terms = 0;
    guint r = pb_os_signal_watch(PB_OS_SIGNAL_RELOAD, on_signal, &reloads);
    guint t = pb_os_signal_watch(PB_OS_SIGNAL_TERMINATE, on_signal, &terms);
    g_assert_cmpuint(r, >, 0);
    g_assert_cmpuint(t, >, 0);

    kill(getpid(), SIGHUP);
    run_until(&reloads);
    g_assert_cmpint(reloads, ==, 1);
    g_assert_cmpint(terms, ==, 0);

    kill(getpid(), SIGTERM);
    run_until(&terms);
    g_assert_cmpint(terms, ==, 1);

    /* SIGINT (Ctrl-C in the foreground) is a terminate too, through the same source. */
    int before = terms;
    kill(getpid(), SIGINT);
    while (terms == before) {
        gboolean timed_out = FALSE;
        guint to = g_timeout_add(5000, on_timeout, &timed_out);
        g_main_context_iteration(NULL, TRUE);
        g_assert_false(timed_out);
        g_source_remove(to);
    }
    g_assert_cmpint(terms, ==, 2);
    g_assert_cmpint(reloads, ==, 1);

    /* One id removes the whole watch, both signals. */
    g_assert_true(g_source_remove(t));
    g_assert_true(g_source_remove(r));
    while (g_main_context_iteration(NULL, FALSE))
        ;
}

/* The subprocess's instructions ("report-path|verdict"), named after the test process
 * (setenv is not safe once GLib started threads). */
static char *request_path(pid_t test_pid)
{
    g_autofree char *name = g_strdup_printf("test-os-daemon-%ld", (long)test_pid);
    return g_build_filename(g_get_tmp_dir(), name, NULL);
}

/* In the subprocess: daemonize, report pid, session and whether stdin is /dev/null, then
 * give the verdict the request file asks for. */
static void daemonize_child(void)
{
    g_autofree char *req = request_path(getppid());
    g_autofree char *arg = NULL;
    g_assert_true(g_file_get_contents(req, &arg, NULL, NULL));
    g_auto(GStrv) parts = g_strsplit(arg, "|", 2);
    g_assert_true(pb_os_daemonize(NULL));
    /* Now in the daemon; the process the trap waits on exits with our verdict. */
    struct stat st, null;
    int is_null = fstat(0, &st) == 0 && stat("/dev/null", &null) == 0 && S_ISCHR(st.st_mode) &&
                  st.st_rdev == null.st_rdev;
    g_autofree char *text =
        g_strdup_printf("%ld %ld %d\n", (long)getpid(), (long)getsid(0), is_null);
    g_file_set_contents(parts[0], text, -1, NULL);
    pb_os_daemon_ready(atoi(parts[1]) != 0);
    _exit(0);
}

/* The original process exits with the daemon's verdict; the daemon is in a new session,
 * detached from stdio. */
static void test_daemonize(void)
{
    if (g_test_subprocess()) {
        daemonize_child();
        return;
    }
    g_autoptr(GError) error = NULL;
    g_autofree char *dir = g_dir_make_tmp("test-os-XXXXXX", &error);
    g_assert_no_error(error);
    g_autofree char *report = g_build_filename(dir, "daemon.txt", NULL);
    g_autofree char *req = request_path(getpid());
    for (int ok = 1; ok >= 0; ok--) {
        g_autofree char *arg = g_strdup_printf("%s|%d", report, ok);
        g_assert_true(g_file_set_contents(req, arg, -1, NULL));
        g_test_trap_subprocess(NULL, 10 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_DEFAULT);
        if (ok)
            g_test_trap_assert_passed();
        else
            g_test_trap_assert_failed();
        /* The daemon wrote before giving its verdict, so the file is complete. */
        g_autofree char *text = NULL;
        g_assert_true(g_file_get_contents(report, &text, NULL, NULL));
        long pid = 0, sid = 0, is_null = 0;
        g_assert_cmpint(sscanf(text, "%ld %ld %ld", &pid, &sid, &is_null), ==, 3);
        g_assert_cmpint(sid, !=, getsid(0));
        g_assert_cmpint(pid, !=, sid); /* not a session leader: the second fork */
        g_assert_cmpint(is_null, ==, 1);
        g_remove(report);
    }
    g_remove(req);
    g_rmdir(dir);
}

static void test_drop_privileges(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_assert_true(pb_os_drop_privileges(NULL, &error));
    g_assert_true(pb_os_drop_privileges("", &error));
    g_assert_false(pb_os_drop_privileges("no-such-user-here", &error));
    g_assert_nonnull(error);
    g_clear_error(&error);
    if (geteuid() != 0) {
        g_test_skip("needs root to drop privileges");
        return;
    }
    struct passwd *pw = getpwnam("nobody");
    if (pw == NULL) {
        g_test_skip("no user nobody");
        return;
    }
    pid_t child = fork();
    g_assert_cmpint(child, >=, 0);
    if (child == 0) {
        if (!pb_os_drop_privileges("nobody", NULL))
            _exit(2);
        if (getuid() != pw->pw_uid || geteuid() != pw->pw_uid || getgid() != pw->pw_gid)
            _exit(3);
        if (setuid(0) == 0)
            _exit(4);
        /* Root's supplementary groups are gone. */
        gid_t groups[64];
        int n = getgroups(64, groups);
        for (int i = 0; i < n; i++)
            if (groups[i] == 0)
                _exit(5);
        _exit(0);
    }
    int status;
    g_assert_cmpint(waitpid(child, &status, 0), ==, child);
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 0);
}

/* What the daemon writes after the drop is given to the user first: its own directories
 * with what is in them, never through a symbolic link, and of a shared directory only the
 * files registered one by one. */
static void test_keep_writable(Fixture *f, gconstpointer data)
{
    if (geteuid() != 0) {
        g_test_skip("needs root to drop privileges");
        return;
    }
    struct passwd *pw = getpwnam("nobody");
    if (pw == NULL) {
        g_test_skip("no user nobody");
        return;
    }
    g_autofree char *own = g_build_filename(f->dir, "own", NULL);
    g_autofree char *sub = g_build_filename(own, "sub", NULL);
    g_autofree char *deep = g_build_filename(sub, "state.db", NULL);
    g_autofree char *link = g_build_filename(own, "passwd", NULL);
    g_autofree char *target = g_build_filename(f->dir, "target", NULL);
    g_autofree char *shared = g_build_filename(f->dir, "shared", NULL);
    g_autofree char *other = g_build_filename(shared, "other", NULL);
    g_autofree char *pid = g_build_filename(shared, "x.pid", NULL);
    g_autofree char *named = g_build_filename(f->dir, "preboot", NULL);
    g_assert_cmpint(g_mkdir_with_parents(sub, 0750), ==, 0);
    g_assert_cmpint(g_mkdir_with_parents(shared, 0755), ==, 0);
    g_assert_cmpint(g_mkdir_with_parents(named, 0755), ==, 0);
    g_assert_true(g_file_set_contents(deep, "x", 1, NULL));
    g_assert_true(g_file_set_contents(target, "x", 1, NULL));
    g_assert_true(g_file_set_contents(other, "x", 1, NULL));
    g_assert_true(g_file_set_contents(pid, "1\n", 2, NULL));
    g_assert_cmpint(symlink(target, link), ==, 0);

    pid_t child = fork();
    g_assert_cmpint(child, >=, 0);
    if (child == 0) {
        pb_os_keep_writable(own, TRUE, TRUE);
        pb_os_keep_writable(shared, FALSE, TRUE); /* not the daemon's: stays */
        pb_os_keep_writable(pid, FALSE, FALSE);
        pb_os_keep_writable(named, FALSE, FALSE); /* named preboot: the daemon's */
        _exit(pb_os_drop_privileges("nobody", NULL) ? 0 : 2);
    }
    int status;
    g_assert_cmpint(waitpid(child, &status, 0), ==, child);
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 0);

    const char *const given[] = {own, sub, deep, pid, named};
    for (gsize i = 0; i < G_N_ELEMENTS(given); i++) {
        struct stat st;
        g_assert_cmpint(lstat(given[i], &st), ==, 0);
        if (st.st_uid != pw->pw_uid || st.st_gid != pw->pw_gid)
            g_error("%s is %ld:%ld, not nobody's", given[i], (long)st.st_uid, (long)st.st_gid);
    }
    const char *const kept[] = {target, shared, other};
    for (gsize i = 0; i < G_N_ELEMENTS(kept); i++) {
        struct stat st;
        g_assert_cmpint(lstat(kept[i], &st), ==, 0);
        if (st.st_uid != 0)
            g_error("%s was given away", kept[i]);
    }
}

/* The soft limit goes up to the hard one, and the limit in effect is what is reported. */
static void test_fd_limit(void)
{
    struct rlimit rl;
    g_assert_cmpint(getrlimit(RLIMIT_NOFILE, &rl), ==, 0);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max > 64) {
        struct rlimit low = {64, rl.rlim_max};
        g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &low), ==, 0);
    }
    guint64 got = pb_os_raise_fd_limit();
    struct rlimit now;
    g_assert_cmpint(getrlimit(RLIMIT_NOFILE, &now), ==, 0);
    g_assert_true(now.rlim_cur == rl.rlim_max);
    if (rl.rlim_max != RLIM_INFINITY)
        g_assert_cmpuint(got, ==, (guint64)rl.rlim_max);
}

static void test_legacy_path_char(void)
{
    g_assert_cmpint(pb_os_legacy_path_char('\\'), ==, '/');
    g_assert_cmpint(pb_os_legacy_path_char('a'), ==, 'a');
}

static void test_module_ext(void)
{
    g_assert_cmpstr(pb_os_module_ext(), ==, ".so");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) g_test_add(name, Fixture, NULL, setup, fn, teardown)
    ADD("/os/pidfile", test_pidfile);
    ADD("/os/mkdir-p", test_mkdir_p);
    ADD("/os/control-socket", test_control_socket);
    ADD("/os/control-socket/other-user", test_control_peer_other_user);
    ADD("/os/socket-source", test_socket_source);
    ADD("/os/signals", test_signals);
    ADD("/os/drop-privileges", test_drop_privileges);
    g_test_add_func("/os/daemonize", test_daemonize);
    ADD("/os/keep-writable", test_keep_writable);
    g_test_add_func("/os/module-ext", test_module_ext);
    g_test_add_func("/os/fd-limit", test_fd_limit);
    g_test_add_func("/os/legacy-path-char", test_legacy_path_char);
    return g_test_run();
}

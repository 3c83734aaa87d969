/* os-posix.c - core/os.h for Linux and the BSDs: the classic daemon (double fork, pid
 * file, privileges dropped after binding), signals as main-loop sources, and the control
 * channel as a Unix stream socket guarded by its mode and the peer's credentials. */
#define _GNU_SOURCE 1 /* struct ucred, getgrouplist */
#include "os.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

static void set_errno_error(GError **error, int err, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static void set_errno_error(GError **error, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *what = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(err), "%s: %s", what, g_strerror(err));
}

/* ---- daemon ------------------------------------------------------------------------- */

static int ready_fd = -1; /* write end of the pipe the original process waits on */

gboolean pb_os_daemonize(GError **error)
{
    int fds[2];
    if (g_unix_open_pipe(fds, FD_CLOEXEC, NULL) == FALSE) {
        set_errno_error(error, errno, "daemonize: pipe");
        return FALSE;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        int err = errno;
        close(fds[0]);
        close(fds[1]);
        set_errno_error(error, err, "daemonize: fork");
        return FALSE;
    }
    if (pid > 0) {
        /* The original process: its exit status is what the init script or `prebootctl
         * start` sees, so it waits for the daemon's verdict on its start-up. */
        close(fds[1]);
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        unsigned char verdict = 1;
        ssize_t n;
        do
            n = read(fds[0], &verdict, 1);
        while (n < 0 && errno == EINTR);
        _exit(n == 1 ? verdict : 1); /* EOF: the daemon died before it was ready */
    }

    close(fds[0]);
    if (setsid() < 0)
        _exit(1);
    /* A second fork: the daemon is no session leader, so opening a terminal can never
     * make one its controlling terminal. */
    pid = fork();
    if (pid < 0)
        _exit(1);
    if (pid > 0)
        _exit(0);

    if (chdir("/") < 0) {
        /* "/" always exists; nothing sensible to do otherwise */
    }
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
        if (null > STDERR_FILENO)
            close(null);
    }
    ready_fd = fds[1];
    return TRUE;
}

void pb_os_daemon_ready(gboolean ok)
{
    if (ready_fd < 0)
        return;
    unsigned char verdict = ok ? 0 : 1;
    ssize_t n;
    do
        n = write(ready_fd, &verdict, 1);
    while (n < 0 && errno == EINTR);
    close(ready_fd);
    ready_fd = -1;
}

/* ---- pid files and processes -------------------------------------------------------- */

gboolean pb_os_process_alive(gint64 pid)
{
    if (pid <= 0 || pid > G_MAXINT32)
        return FALSE;
    /* EPERM: it exists but belongs to someone else; still alive. */
    return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

static gint64 pidfile_parse(const char *path)
{
    g_autofree char *text = NULL;
    if (!g_file_get_contents(path, &text, NULL, NULL))
        return 0;
    guint64 pid = 0;
    g_strstrip(text);
    if (!g_ascii_string_to_unsigned(text, 10, 1, G_MAXINT32, &pid, NULL))
        return 0;
    return (gint64)pid;
}

gint64 pb_os_pidfile_read(const char *path)
{
    g_return_val_if_fail(path != NULL, 0);
    gint64 pid = pidfile_parse(path);
    return pb_os_process_alive(pid) ? pid : 0;
}

gboolean pb_os_pidfile_write(const char *path, GError **error)
{
    g_return_val_if_fail(path != NULL, FALSE);
    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

    for (int attempt = 0; attempt < 2; attempt++) {
        /* O_EXCL: two daemons started at once cannot both believe they own the file. */
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd >= 0) {
            char buf[32];
            int len = g_snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
            gboolean ok = write(fd, buf, (size_t)len) == len;
            int err = errno;
            if (close(fd) < 0 && ok) {
                ok = FALSE;
                err = errno;
            }
            if (!ok) {
                unlink(path);
                set_errno_error(error, err, "pid file %s", path);
            }
            return ok;
        }
        if (errno != EEXIST) {
            set_errno_error(error, errno, "pid file %s", path);
            return FALSE;
        }
        gint64 other = pidfile_parse(path);
        if (other == (gint64)getpid())
            return TRUE;
        if (pb_os_process_alive(other)) {
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_EXIST,
                        "pid file %s: already running as pid %" G_GINT64_FORMAT, path, other);
            return FALSE;
        }
        /* Stale (a crash or a reboot left it): replace it. */
        if (unlink(path) < 0 && errno != ENOENT) {
            set_errno_error(error, errno, "pid file %s: removing a stale one", path);
            return FALSE;
        }
    }
    g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_EXIST, "pid file %s: keeps reappearing", path);
    return FALSE;
}

void pb_os_pidfile_remove(const char *path)
{
    /* Only our own: a second daemon that failed to start must not delete the pid file of
     * the one that runs. */
    if (path != NULL && pidfile_parse(path) == (gint64)getpid())
        unlink(path);
}

gboolean pb_os_process_terminate(gint64 pid, GError **error)
{
    if (pid <= 0 || pid > G_MAXINT32) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "bad pid %" G_GINT64_FORMAT, pid);
        return FALSE;
    }
    if (kill((pid_t)pid, SIGTERM) < 0) {
        set_errno_error(error, errno, "kill %" G_GINT64_FORMAT, pid);
        return FALSE;
    }
    return TRUE;
}

/* ---- privileges ---------------------------------------------------------------------- */

typedef struct {
    char *path;
    gboolean created;
    gboolean contents;
} Writable;

static GArray *writables; /* of Writable: what pb_os_drop_privileges() gives away */
static gboolean dropped;  /* what is created afterwards is the user's already */

void pb_os_keep_writable(const char *path, gboolean created, gboolean contents)
{
    if (path == NULL || *path == '\0' || dropped)
        return;
    if (writables == NULL)
        writables = g_array_new(FALSE, FALSE, sizeof(Writable));
    Writable w = {g_strdup(path), created, contents};
    g_array_append_val(writables, w);
}

static void writables_clear(void)
{
    for (guint i = 0; writables && i < writables->len; i++)
        g_free(g_array_index(writables, Writable, i).path);
    g_clear_pointer(&writables, g_array_unref);
}

gboolean pb_os_is_superuser(void)
{
    return geteuid() == 0;
}

char *pb_os_user_group(const char *user)
{
    struct passwd *pw = user ? getpwnam(user) : NULL;
    struct group *gr = pw ? getgrgid(pw->pw_gid) : NULL;
    return gr ? g_strdup(gr->gr_name) : NULL;
}

gboolean pb_os_check_user(const char *user, GError **error)
{
    if (user == NULL || *user == '\0' || getpwnam(user) != NULL)
        return TRUE;
    g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT,
                "user %s: no such user (etc/preboot-user.sh creates it)", user);
    return FALSE;
}

gboolean pb_os_check_group(const char *group, GError **error)
{
    if (group == NULL || *group == '\0' || getgrnam(group) != NULL)
        return TRUE;
    g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT, "control_group %s: no such group", group);
    return FALSE;
}

/* Gives one entry to uid:gid, never through a symbolic link (lchown), and below a
 * directory only what is really in it (O_NOFOLLOW | O_DIRECTORY, no ".."). */
static gboolean chown_tree(int at, const char *name, const char *shown, uid_t uid, gid_t gid,
                           gboolean recurse, int depth, GError **error)
{
    struct stat st;
    if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        set_errno_error(error, errno, "%s", shown);
        return FALSE;
    }
    if (S_ISSOCK(st.st_mode) && depth == 0) {
        /* The control socket: its group is the one allowed to connect; only the owner
         * changes, so that the daemon's own user can connect and remove it. */
        if (st.st_uid != uid && fchownat(at, name, uid, (gid_t)-1, AT_SYMLINK_NOFOLLOW) < 0) {
            set_errno_error(error, errno, "giving %s to uid %ld", shown, (long)uid);
            return FALSE;
        }
        return TRUE;
    }
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
        return TRUE; /* FIFOs, devices and links keep their owner */
    if ((st.st_uid != uid || st.st_gid != gid) &&
        fchownat(at, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0) {
        set_errno_error(error, errno, "giving %s to uid %ld", shown, (long)uid);
        return FALSE;
    }
    if (!S_ISDIR(st.st_mode) || !recurse || depth > 32)
        return TRUE;
    int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        set_errno_error(error, errno, "%s", shown);
        return FALSE;
    }
    DIR *dir = fdopendir(fd);
    if (dir == NULL) {
        set_errno_error(error, errno, "%s", shown);
        close(fd);
        return FALSE;
    }
    gboolean ok = TRUE;
    struct dirent *e;
    while (ok && (e = readdir(dir)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        g_autofree char *sub = g_build_filename(shown, e->d_name, NULL);
        ok = chown_tree(dirfd(dir), e->d_name, sub, uid, gid, TRUE, depth + 1, error);
    }
    closedir(dir);
    return ok;
}

static gboolean give_away(const Writable *w, const struct passwd *pw, GError **error)
{
    struct stat st;
    if (lstat(w->path, &st) < 0) {
        if (errno == ENOENT)
            return TRUE; /* nothing written there yet: nothing to give */
        set_errno_error(error, errno, "%s", w->path);
        return FALSE;
    }
    g_autofree char *base = g_path_get_basename(w->path);
    gboolean own = w->created || st.st_uid == pw->pw_uid || strcmp(base, "preboot") == 0;
    if (!S_ISDIR(st.st_mode) || own)
        return chown_tree(AT_FDCWD, w->path, w->path, pw->pw_uid, pw->pw_gid, w->contents, 0,
                          error);
    return TRUE; /* a shared directory: its files were registered one by one */
}

gboolean pb_os_drop_privileges(const char *user, GError **error)
{
    if (user == NULL || *user == '\0')
        return TRUE;
    errno = 0;
    struct passwd *pw = getpwnam(user);
    if (pw == NULL) {
        if (errno != 0)
            set_errno_error(error, errno, "user %s", user);
        else
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT, "user %s: no such user", user);
        return FALSE;
    }
    uid_t uid = pw->pw_uid;
    gid_t gid = pw->pw_gid;
    dropped = TRUE;
    if (geteuid() == uid && getuid() == uid) {
        writables_clear();
        return TRUE; /* already that user (started unprivileged) */
    }
    /* What the daemon writes after the drop (logs and their rotation, state, the pid file
     * and the control socket it removes at stop) must be the user's before it is too late
     * to give it. */
    for (guint i = 0; writables && i < writables->len; i++) {
        if (!give_away(&g_array_index(writables, Writable, i), pw, error)) {
            writables_clear();
            return FALSE;
        }
    }
    writables_clear();

    /* Supplementary groups first (root's are otherwise kept), then the group, then the
     * user: after setuid we could no longer change the other two. */
    if (initgroups(pw->pw_name, gid) < 0) {
        set_errno_error(error, errno, "initgroups(%s)", user);
        return FALSE;
    }
    if (setgid(gid) < 0) {
        set_errno_error(error, errno, "setgid(%ld)", (long)gid);
        return FALSE;
    }
    if (setuid(uid) < 0) {
        set_errno_error(error, errno, "setuid(%ld)", (long)uid);
        return FALSE;
    }
    /* Refuse to serve as root by accident (CERT POS37-C: check the drop held). */
    if (uid != 0 && (setuid(0) == 0 || geteuid() == 0 || getuid() == 0)) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_PERM,
                    "dropping privileges to %s failed: still root", user);
        return FALSE;
    }
    return TRUE;
}

/* ---- signals ------------------------------------------------------------------------ */

/* TERMINATE listens to two signals but is one source (one id to remove): a parent with no
 * poll of its own that the SIGTERM and SIGINT child sources wake. */
static gboolean parent_prepare(GSource *source, gint *timeout)
{
    *timeout = -1;
    return FALSE;
}

static gboolean parent_dispatch(GSource *source, GSourceFunc fn, gpointer data)
{
    return fn ? fn(data) : G_SOURCE_REMOVE;
}

static GSourceFuncs parent_funcs = {
    .prepare = parent_prepare,
    .dispatch = parent_dispatch,
};

static gboolean child_noop(gpointer data)
{
    return G_SOURCE_CONTINUE;
}

guint pb_os_signal_watch(PbOsSignal which, GSourceFunc fn, gpointer data)
{
    g_return_val_if_fail(fn != NULL, 0);

    /* A daemon writes to sockets whose peers may have gone: EPIPE, not death. */
    signal(SIGPIPE, SIG_IGN);

    GSource *parent = g_source_new(&parent_funcs, sizeof(GSource));
    int sigs[2] = {SIGHUP, 0};
    if (which == PB_OS_SIGNAL_TERMINATE) {
        sigs[0] = SIGTERM;
        sigs[1] = SIGINT;
    }
    for (int i = 0; i < 2 && sigs[i] != 0; i++) {
        GSource *child = g_unix_signal_source_new(sigs[i]);
        g_source_set_callback(child, child_noop, NULL, NULL);
        g_source_add_child_source(parent, child);
        g_source_unref(child);
    }
    g_source_set_name(parent,
                      which == PB_OS_SIGNAL_TERMINATE ? "pb-signal-terminate" : "pb-signal-reload");
    g_source_set_priority(parent, G_PRIORITY_HIGH);
    g_source_set_callback(parent, fn, data, NULL);
    guint id = g_source_attach(parent, NULL);
    g_source_unref(parent);
    return id;
}

/* ---- control socket ----------------------------------------------------------------- */

static gboolean fill_sun(struct sockaddr_un *sun, const char *path, GError **error)
{
    memset(sun, 0, sizeof *sun);
    sun->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sun->sun_path) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NAMETOOLONG,
                    "control socket %s: path longer than %zu bytes", path,
                    sizeof sun->sun_path - 1);
        return FALSE;
    }
    strcpy(sun->sun_path, path);
    return TRUE;
}

static int unix_socket(void)
{
    return socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
}

static gboolean set_nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0;
}

pb_socket_t pb_os_control_listen(const char *path, const char *group, GError **error)
{
    g_return_val_if_fail(path != NULL, PB_SOCKET_NONE);
    g_return_val_if_fail(error == NULL || *error == NULL, PB_SOCKET_NONE);

    struct sockaddr_un sun;
    if (!fill_sun(&sun, path, error))
        return PB_SOCKET_NONE;

    gid_t gid = (gid_t)-1;
    if (group != NULL && *group != '\0') {
        struct group *gr = getgrnam(group);
        if (gr == NULL) {
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT,
                        "control socket %s: no such group %s", path, group);
            return PB_SOCKET_NONE;
        }
        gid = gr->gr_gid;
    }

    /* A socket left by a daemon that crashed refuses connections: remove it. One that
     * answers belongs to a running daemon; anything else is not ours to delete. */
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_EXIST,
                        "control socket %s: exists and is not a socket", path);
            return PB_SOCKET_NONE;
        }
        int probe = unix_socket();
        if (probe >= 0 && connect(probe, (struct sockaddr *)&sun, sizeof sun) == 0) {
            close(probe);
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_EXIST,
                        "control socket %s: in use (is another prebootd running?)", path);
            return PB_SOCKET_NONE;
        }
        if (probe >= 0)
            close(probe);
        unlink(path);
    }

    int fd = unix_socket();
    if (fd < 0) {
        set_errno_error(error, errno, "control socket %s", path);
        return PB_SOCKET_NONE;
    }
    /* Bind under a strict umask, then widen to 0660: there is no moment at which a
     * stranger could connect. */
    mode_t old = umask(0177);
    int rc = bind(fd, (struct sockaddr *)&sun, sizeof sun);
    int err = errno;
    umask(old);
    if (rc < 0) {
        close(fd);
        set_errno_error(error, err, "control socket %s: bind", path);
        return PB_SOCKET_NONE;
    }
    if ((gid != (gid_t)-1 && chown(path, (uid_t)-1, gid) < 0) || chmod(path, 0660) < 0 ||
        listen(fd, 16) < 0 || !set_nonblocking(fd)) {
        err = errno;
        close(fd);
        unlink(path);
        set_errno_error(error, err, "control socket %s", path);
        return PB_SOCKET_NONE;
    }
    return fd;
}

pb_socket_t pb_os_control_accept(pb_socket_t listener)
{
    int fd;
    do
        fd = accept4((int)listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    while (fd < 0 && errno == EINTR);
    return fd < 0 ? PB_SOCKET_NONE : fd;
}

pb_socket_t pb_os_control_connect(const char *path, GError **error)
{
    g_return_val_if_fail(path != NULL, PB_SOCKET_NONE);

    struct sockaddr_un sun;
    if (!fill_sun(&sun, path, error))
        return PB_SOCKET_NONE;
    int fd = unix_socket();
    if (fd < 0) {
        set_errno_error(error, errno, "control socket %s", path);
        return PB_SOCKET_NONE;
    }
    int rc;
    do
        rc = connect(fd, (struct sockaddr *)&sun, sizeof sun);
    while (rc < 0 && errno == EINTR);
    if (rc < 0) {
        int err = errno;
        close(fd);
        /* ENOENT and ECONNREFUSED both mean "no daemon": callers test G_FILE_ERROR_NOENT. */
        g_set_error(error, G_FILE_ERROR,
                    err == ENOENT || err == ECONNREFUSED ? G_FILE_ERROR_NOENT
                                                         : g_file_error_from_errno(err),
                    "control socket %s: %s", path, g_strerror(err));
        return PB_SOCKET_NONE;
    }
    if (!set_nonblocking(fd)) {
        set_errno_error(error, errno, "control socket %s", path);
        close(fd);
        return PB_SOCKET_NONE;
    }
    return fd;
}

static gboolean user_in_group(uid_t uid, gid_t peer_gid, gid_t want)
{
    if (peer_gid == want)
        return TRUE;
    struct passwd *pw = getpwuid(uid);
    if (pw == NULL)
        return FALSE;
    if (pw->pw_gid == want)
        return TRUE;
    int n = 64;
    for (int attempt = 0; attempt < 4; attempt++) {
        g_autofree gid_t *groups = g_new(gid_t, n);
        int got = n;
        if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &got) >= 0) {
            for (int i = 0; i < got; i++)
                if (groups[i] == want)
                    return TRUE;
            return FALSE;
        }
        n = got > n ? got : n * 4; /* too small: got says how many there are */
    }
    return FALSE;
}

gboolean pb_os_control_peer_allowed(pb_socket_t sock, const char *group)
{
    uid_t uid;
    gid_t gid;
#ifdef SO_PEERCRED
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt((int)sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || len != sizeof cred)
        return FALSE;
    uid = cred.uid;
    gid = cred.gid;
#else
    if (getpeereid((int)sock, &uid, &gid) < 0)
        return FALSE;
#endif
    if (uid == 0 || uid == geteuid())
        return TRUE;
    if (group == NULL || *group == '\0')
        return FALSE;
    struct group *gr = getgrnam(group);
    return gr != NULL && user_in_group(uid, gid, gr->gr_gid);
}

void pb_os_control_unlink(const char *path)
{
    struct stat st;
    if (path != NULL && lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(path);
}

/* ---- sockets on the main loop ------------------------------------------------------- */

typedef struct {
    GSource source;
    gpointer tag;
    pb_socket_t sock;
} SocketSource;

static gboolean socket_dispatch(GSource *source, GSourceFunc fn, gpointer data)
{
    SocketSource *s = (SocketSource *)source;
    if (fn == NULL)
        return G_SOURCE_REMOVE;
    GIOCondition cond = g_source_query_unix_fd(source, s->tag);
    return ((PbOsSocketFunc)(void (*)(void))fn)(s->sock, cond, data);
}

static GSourceFuncs socket_funcs = {
    .dispatch = socket_dispatch,
};

GSource *pb_os_socket_source_new(pb_socket_t sock, GIOCondition cond)
{
    g_return_val_if_fail(sock != PB_SOCKET_NONE, NULL);
    GSource *source = g_source_new(&socket_funcs, sizeof(SocketSource));
    SocketSource *s = (SocketSource *)source;
    s->sock = sock;
    s->tag = g_source_add_unix_fd(source, (int)sock, cond);
    /* No callback runs the main loop, so nothing can recurse. Without the flag GLib blocks
     * the source while it is dispatched and unblocking re-adds the descriptor, which
     * wakes the context through its eventfd: a write, a read and an extra poll round for
     * every datagram, most of the cost left in a lock-step TFTP transfer. */
    g_source_set_can_recurse(source, TRUE);
    g_source_set_name(source, "pb-socket");
    return source;
}

void pb_os_socket_close(pb_socket_t sock)
{
    if (sock != PB_SOCKET_NONE)
        close((int)sock);
}

gssize pb_os_socket_read(pb_socket_t sock, void *buf, gsize len)
{
    ssize_t n;
    do
        n = recv((int)sock, buf, len, 0);
    while (n < 0 && errno == EINTR);
    return n;
}

gssize pb_os_socket_write(pb_socket_t sock, const void *buf, gsize len)
{
    ssize_t n;
    /* MSG_NOSIGNAL: a client that hung up gives EPIPE, not a dead daemon. */
    do
        n = send((int)sock, buf, len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n;
}

const char *pb_os_module_ext(void)
{
    return ".so";
}

guint64 pb_os_raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 0;
    /* Only the soft limit moves: raising the hard one is the administrator's call (the
     * unit's LimitNOFILE, the init script's ulimit -n). */
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit want = {rl.rlim_max, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &want) == 0)
            rl.rlim_cur = rl.rlim_max;
    }
    return rl.rlim_cur == RLIM_INFINITY ? G_MAXUINT64 : (guint64)rl.rlim_cur;
}

void pb_os_syslog_open(const char *ident)
{
    /* openlog keeps the pointer: the ident must outlive every syslog() call. */
    static char *kept;
    if (kept == NULL)
        kept = g_strdup(ident ? ident : "preboot");
    openlog(kept, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void pb_os_syslog(int severity, const char *line)
{
    syslog(CLAMP(severity, LOG_EMERG, LOG_DEBUG), "%s", line);
}

void pb_os_gmtime(gint64 secs, struct tm *tm)
{
    time_t t = (time_t)secs;
    gmtime_r(&t, tm);
}

char pb_os_legacy_path_char(char c)
{
    return c == '\\' ? '/' : c;
}

gboolean pb_os_mkdir_p(const char *path, int mode, GError **error)
{
    g_return_val_if_fail(path != NULL, FALSE);
    if (g_mkdir_with_parents(path, mode) < 0) {
        set_errno_error(error, errno, "mkdir %s", path);
        return FALSE;
    }
    if (!g_file_test(path, G_FILE_TEST_IS_DIR)) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOTDIR, "mkdir %s: not a directory", path);
        return FALSE;
    }
    return TRUE;
}

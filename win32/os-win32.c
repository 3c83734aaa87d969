/* os-win32.c - core/os.h for Windows: what core/os-posix.c does with fork, signals, Unix
 * sockets and poll(), done with a Windows service, events, a loopback TCP control channel
 * and WSAEventSelect.
 *
 *  - Detaching: there is no fork. Run as a service (win32/main-win32.c: `prebootd
 *    --service install`) to have Windows keep the daemon; started from a console without
 *    -f, prebootd starts a detached copy of itself and waits until that copy is ready,
 *    exiting with its status, which is what the POSIX double fork promises.
 *  - Signals: "stop" and "reload" arrive as Ctrl+C/Ctrl+Break/console close, as service
 *    controls (STOP, SHUTDOWN, PARAMCHANGE), or as the named events
 *    Global\preboot-stop-PID / Global\preboot-reload-PID, which pb_os_process_terminate
 *    (and `prebootctl stop`) set; all become a GSource on the main loop.
 *  - Control channel: a TCP socket on 127.0.0.1 (ephemeral port). The "socket path" is
 *    a file holding "127.0.0.1 PORT TOKEN", created with a DACL that lets only SYSTEM,
 *    Administrators (and the control group, when one is named) read it. A client proves it
 *    could read the file by sending the 64-hex-digit TOKEN and a newline first; the server
 *    checks it before reading the request. That is the Windows twin of a mode-0660 Unix
 *    socket: the file system decides who may talk to the daemon.
 *  - Socket sources: WSAEventSelect on one event per socket, polled by the main loop. */
#include "win32-sock.h"

#include "os.h"
#include "win32.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <io.h>
#include <sddl.h>
#include <wincrypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_HEX 64 /* 32 random bytes */

static GQuark os_error_quark(void)
{
    return g_quark_from_static_string("pb-os-win32-error-quark");
}

static void set_win32_error(GError **error, DWORD err, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static void set_win32_error(GError **error, DWORD err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *what = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_autofree char *msg = g_win32_error_message((gint)err);
    g_set_error(error, os_error_quark(), (gint)err, "%s: %s", what, msg);
}

/* ---- the service state ------------------------------------------------------------------ */

static SERVICE_STATUS_HANDLE service_handle;
static SERVICE_STATUS service_status;
static gboolean service_was_running;
static HANDLE daemon_ready_event; /* set when we are the detached copy of a console start */

void pb_win32_service_attach(SERVICE_STATUS_HANDLE handle)
{
    service_handle = handle;
    memset(&service_status, 0, sizeof service_status);
    service_status.dwServiceType = SERVICE_WIN32_OWN_PROCESS;
}

gboolean pb_win32_is_service(void)
{
    return service_handle != NULL;
}

gboolean pb_win32_service_was_running(void)
{
    return service_was_running;
}

void pb_win32_service_report(DWORD state, DWORD exit_code, DWORD wait_hint_ms)
{
    static DWORD checkpoint = 1;
    if (service_handle == NULL)
        return;
    service_status.dwCurrentState = state;
    if (state == SERVICE_RUNNING)
        service_was_running = TRUE;
    service_status.dwWin32ExitCode = exit_code == 0 ? NO_ERROR : ERROR_SERVICE_SPECIFIC_ERROR;
    service_status.dwServiceSpecificExitCode = exit_code;
    service_status.dwWaitHint = wait_hint_ms;
    service_status.dwControlsAccepted =
        state == SERVICE_RUNNING
            ? SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN | SERVICE_ACCEPT_PARAMCHANGE
            : 0;
    service_status.dwCheckPoint =
        state == SERVICE_RUNNING || state == SERVICE_STOPPED ? 0 : checkpoint++;
    SetServiceStatus(service_handle, &service_status);
}

/* ---- detaching ------------------------------------------------------------------------ */

static wchar_t *original_cwd;

void pb_win32_set_original_cwd(const wchar_t *dir)
{
    free(original_cwd);
    original_cwd = dir != NULL ? _wcsdup(dir) : NULL;
}

const wchar_t *pb_win32_original_cwd(void)
{
    return original_cwd;
}

#define DAEMON_ENV "PREBOOT_DAEMON_READY_HANDLE"

/* The parent half of a console start: run a detached copy of this very command line and
 * wait (bounded) for it to say ready, or to die. */
static G_GNUC_NORETURN void detach_and_wait(void)
{
    SECURITY_ATTRIBUTES sa = {.nLength = sizeof sa, .bInheritHandle = TRUE};
    HANDLE ready = CreateEventW(&sa, TRUE, FALSE, NULL);
    HANDLE nul = CreateFileW(L"NUL", GENERIC_READ | GENERIC_WRITE,
                             FILE_SHARE_READ | FILE_SHARE_WRITE, &sa, OPEN_EXISTING, 0, NULL);
    if (ready == NULL || nul == INVALID_HANDLE_VALUE) {
        fprintf(stderr, "prebootd: cannot detach: CreateEvent/NUL failed (%lu)\n", GetLastError());
        exit(1);
    }
    wchar_t value[32];
    _snwprintf(value, G_N_ELEMENTS(value), L"%llu", (unsigned long long)(guintptr)ready);
    SetEnvironmentVariableW(L"" DAEMON_ENV, value);

    STARTUPINFOW si = {.cb = sizeof si, .dwFlags = STARTF_USESTDHANDLES};
    si.hStdInput = si.hStdOutput = si.hStdError = nul;
    PROCESS_INFORMATION pi;
    wchar_t *cmdline = _wcsdup(GetCommandLineW());
    const wchar_t *cwd = pb_win32_original_cwd();
    if (!CreateProcessW(NULL, cmdline, NULL, NULL, TRUE,
                        DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP | CREATE_UNICODE_ENVIRONMENT,
                        NULL, cwd, &si, &pi)) {
        fprintf(stderr, "prebootd: cannot start the detached daemon (%lu)\n", GetLastError());
        exit(1);
    }
    HANDLE wait[2] = {ready, pi.hProcess};
    DWORD rc = WaitForMultipleObjects(2, wait, FALSE, 120 * 1000);
    if (rc == WAIT_OBJECT_0)
        exit(0);
    DWORD code = 1;
    if (rc == WAIT_OBJECT_0 + 1 && GetExitCodeProcess(pi.hProcess, &code))
        exit(code != 0 ? (int)code : 1);
    fprintf(stderr, "prebootd: the detached daemon did not become ready in 120 s\n");
    exit(1);
}

gboolean pb_os_daemonize(GError **error)
{
    if (pb_win32_is_service()) {
        /* The service manager already runs us detached; tell it start-up may take a
         * while (plugins bind, read their files) until pb_os_daemon_ready(). */
        pb_win32_service_report(SERVICE_START_PENDING, 0, 30000);
        return TRUE;
    }
    const char *handle = g_getenv(DAEMON_ENV);
    if (handle == NULL)
        detach_and_wait();
    guint64 value = 0;
    if (!g_ascii_string_to_unsigned(handle, 10, 1, G_MAXUINT64, &value, NULL)) {
        g_set_error(error, os_error_quark(), 0, "bad %s in the environment", DAEMON_ENV);
        return FALSE;
    }
    daemon_ready_event = (HANDLE)(guintptr)value;
    g_unsetenv(DAEMON_ENV);
    /* Not inherited by anything the daemon starts. */
    SetHandleInformation(daemon_ready_event, HANDLE_FLAG_INHERIT, 0);
    return TRUE;
}

void pb_os_daemon_ready(gboolean ok)
{
    if (pb_win32_is_service()) {
        /* a failure is reported as STOPPED by the service thread with main()'s status */
        if (ok)
            pb_win32_service_report(SERVICE_RUNNING, 0, 0);
        return;
    }
    if (daemon_ready_event != NULL) {
        /* on failure the parent sees this process exit with its status instead */
        if (ok)
            SetEvent(daemon_ready_event);
        CloseHandle(daemon_ready_event);
        daemon_ready_event = NULL;
    }
}

/* ---- pid files and processes ------------------------------------------------------------ */

gint64 pb_os_pidfile_read(const char *path)
{
    g_return_val_if_fail(path != NULL, 0);
    g_autofree char *text = NULL;
    if (!g_file_get_contents(path, &text, NULL, NULL))
        return 0;
    guint64 pid = 0;
    g_strstrip(text);
    if (!g_ascii_string_to_unsigned(text, 10, 1, G_MAXUINT32, &pid, NULL))
        return 0;
    return pb_os_process_alive((gint64)pid) ? (gint64)pid : 0;
}

gboolean pb_os_pidfile_write(const char *path, GError **error)
{
    g_return_val_if_fail(path != NULL, FALSE);
    for (int attempt = 0; attempt < 2; attempt++) {
        int fd = g_open(path, O_WRONLY | O_CREAT | O_EXCL | O_BINARY, 0644);
        if (fd >= 0) {
            char buf[32];
            int n = g_snprintf(buf, sizeof buf, "%lu\n", GetCurrentProcessId());
            gboolean ok = write(fd, buf, (unsigned)n) == n;
            int err = errno;
            close(fd);
            if (!ok) {
                g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(err),
                            "cannot write pid file %s: %s", path, g_strerror(err));
                g_unlink(path);
            }
            return ok;
        }
        int err = errno;
        if (err != EEXIST || attempt > 0) {
            g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(err),
                        "cannot create pid file %s: %s", path, g_strerror(err));
            return FALSE;
        }
        gint64 other = pb_os_pidfile_read(path);
        if (other > 0) {
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_EXIST,
                        "pid file %s: already running as pid %" G_GINT64_FORMAT, path, other);
            return FALSE;
        }
        g_unlink(path); /* stale: its process is gone */
    }
    return FALSE;
}

void pb_os_pidfile_remove(const char *path)
{
    if (path != NULL && *path != '\0')
        g_unlink(path);
}

gboolean pb_os_process_alive(gint64 pid)
{
    if (pid <= 0 || pid > G_MAXUINT32)
        return FALSE;
    HANDLE h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, (DWORD)pid);
    if (h == NULL)
        /* a process we may not query still exists */
        return GetLastError() == ERROR_ACCESS_DENIED;
    DWORD code = 0;
    gboolean alive = GetExitCodeProcess(h, &code) && code == STILL_ACTIVE;
    CloseHandle(h);
    return alive;
}

static void signal_event_name(wchar_t *buf, gsize n, const wchar_t *prefix, const wchar_t *what,
                              DWORD pid)
{
    _snwprintf(buf, n, L"%lspreboot-%ls-%lu", prefix, what, pid);
    buf[n - 1] = 0;
}

gboolean pb_os_process_terminate(gint64 pid, GError **error)
{
    if (pid <= 0 || pid > G_MAXUINT32) {
        g_set_error(error, os_error_quark(), 0, "no such process %" G_GINT64_FORMAT, pid);
        return FALSE;
    }
    /* Global\ first: a service runs in session 0, the administrator in another. */
    static const wchar_t *const prefixes[] = {L"Global\\", L"Local\\"};
    for (guint i = 0; i < G_N_ELEMENTS(prefixes); i++) {
        wchar_t name[96];
        signal_event_name(name, G_N_ELEMENTS(name), prefixes[i], L"stop", (DWORD)pid);
        HANDLE ev = OpenEventW(EVENT_MODIFY_STATE, FALSE, name);
        if (ev != NULL) {
            BOOL ok = SetEvent(ev);
            CloseHandle(ev);
            if (ok)
                return TRUE;
        }
    }
    set_win32_error(error, GetLastError(),
                    "process %" G_GINT64_FORMAT " takes no stop request (not prebootd, or not "
                    "running)",
                    pid);
    return FALSE;
}

gboolean pb_os_drop_privileges(const char *user, GError **error)
{
    if (user == NULL || *user == '\0')
        return TRUE;
    /* A process cannot become another account on Windows; the service manager starts
     * the service as one (sc config preboot obj= ...). Refuse rather than run with more
     * rights than the configuration asked for. */
    g_set_error(error, os_error_quark(), 0,
                "user '%s': Windows cannot drop privileges; leave `user` unset and run the "
                "service under that account instead (sc config preboot obj= ...)",
                user);
    return FALSE;
}

/* The service account is chosen by the SCM: there is nothing to give away before a drop. */
void pb_os_keep_writable(const char *path, gboolean created, gboolean contents)
{
}

gboolean pb_os_is_superuser(void)
{
    /* Running as an administrator is what the SCM's account decides; it is not the
     * daemon's business to warn about it. */
    return FALSE;
}

char *pb_os_user_group(const char *user)
{
    return NULL;
}

gboolean pb_os_check_user(const char *user, GError **error)
{
    /* What a start would say: pb_os_drop_privileges() refuses any user here. */
    return pb_os_drop_privileges(user, error);
}

gboolean pb_os_check_group(const char *group, GError **error)
{
    return TRUE; /* the control file's ACL names the group; checked when it is written */
}

/* ---- signals ------------------------------------------------------------------------------ */

/* One counter per signal, bumped from any thread; every watch remembers the count it
 * last dispatched, so a signal wakes each watch once, like g_unix_signal_add. */
static volatile gint signal_count[2];

typedef struct {
    GSource source;
    PbOsSignal which;
    gint seen;
} SignalSource;

static gboolean signal_prepare(GSource *source, gint *timeout)
{
    SignalSource *s = (SignalSource *)source;
    *timeout = -1;
    return g_atomic_int_get(&signal_count[s->which]) != s->seen;
}

static gboolean signal_check(GSource *source)
{
    SignalSource *s = (SignalSource *)source;
    return g_atomic_int_get(&signal_count[s->which]) != s->seen;
}

static gboolean signal_dispatch(GSource *source, GSourceFunc fn, gpointer data)
{
    SignalSource *s = (SignalSource *)source;
    s->seen = g_atomic_int_get(&signal_count[s->which]);
    return fn != NULL ? fn(data) : G_SOURCE_REMOVE;
}

static GSourceFuncs signal_funcs = {
    .prepare = signal_prepare,
    .check = signal_check,
    .dispatch = signal_dispatch,
};

void pb_win32_raise(PbOsSignal which)
{
    g_atomic_int_inc(&signal_count[which]);
    g_main_context_wakeup(NULL);
}

static BOOL WINAPI console_handler(DWORD type)
{
    switch (type) {
    case CTRL_C_EVENT:
    case CTRL_BREAK_EVENT:
    case CTRL_CLOSE_EVENT:
    case CTRL_SHUTDOWN_EVENT:
        pb_win32_raise(PB_OS_SIGNAL_TERMINATE);
        return TRUE;
    default:
        return FALSE;
    }
}

/* Named events let another process (prebootctl stop, pb_os_process_terminate) ask us to
 * stop or reload without a console or the service manager. */
static DWORD WINAPI signal_event_thread(LPVOID arg)
{
    HANDLE *events = arg;
    for (;;) {
        DWORD rc = WaitForMultipleObjects(2, events, FALSE, INFINITE);
        if (rc == WAIT_OBJECT_0)
            pb_win32_raise(PB_OS_SIGNAL_TERMINATE);
        else if (rc == WAIT_OBJECT_0 + 1)
            pb_win32_raise(PB_OS_SIGNAL_RELOAD);
        else
            return 1;
    }
}

/* SYSTEM and Administrators only: who may stop the daemon. */
static const wchar_t admin_only_sddl[] = L"D:P(A;;GA;;;SY)(A;;GA;;;BA)";

static HANDLE create_signal_event(const wchar_t *what)
{
    SECURITY_ATTRIBUTES sa = {.nLength = sizeof sa};
    PSECURITY_DESCRIPTOR sd = NULL;
    if (ConvertStringSecurityDescriptorToSecurityDescriptorW(admin_only_sddl, SDDL_REVISION_1, &sd,
                                                             NULL))
        sa.lpSecurityDescriptor = sd;
    HANDLE ev = NULL;
    static const wchar_t *const prefixes[] = {L"Global\\", L"Local\\"};
    for (guint i = 0; i < G_N_ELEMENTS(prefixes) && ev == NULL; i++) {
        wchar_t name[96];
        signal_event_name(name, G_N_ELEMENTS(name), prefixes[i], what, GetCurrentProcessId());
        /* auto-reset: one SetEvent, one signal */
        ev = CreateEventW(&sa, FALSE, FALSE, name);
    }
    LocalFree(sd);
    return ev;
}

static void signal_sources_init(void)
{
    static gsize once;
    if (!g_once_init_enter(&once))
        return;
    SetConsoleCtrlHandler(console_handler, TRUE);
    static HANDLE events[2];
    events[0] = create_signal_event(L"stop");
    events[1] = create_signal_event(L"reload");
    if (events[0] != NULL && events[1] != NULL) {
        HANDLE t = CreateThread(NULL, 0, signal_event_thread, events, 0, NULL);
        if (t != NULL)
            CloseHandle(t);
    }
    g_once_init_leave(&once, 1);
}

guint pb_os_signal_watch(PbOsSignal which, GSourceFunc fn, gpointer data)
{
    g_return_val_if_fail(which == PB_OS_SIGNAL_TERMINATE || which == PB_OS_SIGNAL_RELOAD, 0);
    g_return_val_if_fail(fn != NULL, 0);
    signal_sources_init();
    GSource *source = g_source_new(&signal_funcs, sizeof(SignalSource));
    SignalSource *s = (SignalSource *)source;
    s->which = which;
    s->seen = g_atomic_int_get(&signal_count[which]);
    g_source_set_name(source,
                      which == PB_OS_SIGNAL_TERMINATE ? "pb-signal-terminate" : "pb-signal-reload");
    g_source_set_priority(source, G_PRIORITY_HIGH);
    g_source_set_callback(source, fn, data, NULL);
    guint id = g_source_attach(source, NULL);
    g_source_unref(source);
    return id;
}

/* ---- socket sources ------------------------------------------------------------------------ */

/* Winsock allows one event selection per socket, so every source on a socket shares one
 * entry: the event, the union of the wanted network events, and what has been reported
 * and not yet consumed. FD_READ/FD_ACCEPT are re-armed by each recv/accept, FD_CLOSE is
 * sticky (as poll() keeps reporting a closed peer), FD_WRITE fires only after a send
 * failed with WSAEWOULDBLOCK, so a socket counts as writable until then. */
typedef struct {
    SOCKET sock;
    WSAEVENT event;
    long mask;
    long pending;
    gboolean write_blocked;
    int refs;
} SockEntry;

static GMutex sock_lock;
static GHashTable *sock_table; /* SOCKET -> SockEntry */

static SockEntry *sock_entry_ref(SOCKET s, long want)
{
    g_mutex_lock(&sock_lock);
    if (sock_table == NULL)
        sock_table = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, g_free);
    gint64 key = (gint64)s;
    SockEntry *e = g_hash_table_lookup(sock_table, &key);
    if (e == NULL) {
        e = g_new0(SockEntry, 1);
        e->sock = s;
        e->event = WSACreateEvent();
        g_hash_table_insert(sock_table, g_memdup2(&key, sizeof key), e);
    }
    e->refs++;
    e->mask |= want;
    /* Always (re)select: a handle value closed and reused for a new socket while an old
     * source on it still lives must not be left without its selection. */
    WSAEventSelect(s, e->event, e->mask);
    g_mutex_unlock(&sock_lock);
    return e;
}

static void sock_entry_unref(SockEntry *e)
{
    g_mutex_lock(&sock_lock);
    if (--e->refs == 0) {
        gint64 key = (gint64)e->sock;
        /* fails harmlessly when the socket was closed already */
        WSAEventSelect(e->sock, NULL, 0);
        WSACloseEvent(e->event);
        g_hash_table_remove(sock_table, &key); /* frees e */
    }
    g_mutex_unlock(&sock_lock);
}

static SockEntry *sock_entry_find(SOCKET s)
{
    gint64 key = (gint64)s;
    return sock_table != NULL ? g_hash_table_lookup(sock_table, &key) : NULL;
}

typedef struct {
    GSource source;
    GPollFD poll;
    SockEntry *entry;
    GIOCondition cond;
} SockSource;

static GIOCondition sock_ready(SockSource *s)
{
    SockEntry *e = s->entry;
    GIOCondition r = 0;
    if (e->pending & (FD_READ | FD_ACCEPT | FD_CLOSE))
        r |= G_IO_IN;
    if (e->pending & FD_CLOSE)
        r |= G_IO_HUP;
    if (!e->write_blocked || (e->pending & FD_WRITE))
        r |= G_IO_OUT;
    return r & (s->cond | G_IO_HUP | G_IO_ERR);
}

static gboolean sock_prepare(GSource *source, gint *timeout)
{
    SockSource *s = (SockSource *)source;
    *timeout = -1;
    return sock_ready(s) != 0;
}

static gboolean sock_check(GSource *source)
{
    SockSource *s = (SockSource *)source;
    SockEntry *e = s->entry;
    if (s->poll.revents != 0) {
        WSANETWORKEVENTS ne;
        g_mutex_lock(&sock_lock);
        if (WSAEnumNetworkEvents(e->sock, e->event, &ne) == 0) {
            e->pending |= ne.lNetworkEvents;
            if (ne.lNetworkEvents & FD_WRITE)
                e->write_blocked = FALSE;
        } else {
            WSAResetEvent(e->event);
            e->pending |= FD_CLOSE; /* the socket is gone: let the owner notice */
        }
        g_mutex_unlock(&sock_lock);
    }
    return sock_ready(s) != 0;
}

static gboolean sock_dispatch(GSource *source, GSourceFunc fn, gpointer data)
{
    SockSource *s = (SockSource *)source;
    GIOCondition ready = sock_ready(s);
    /* consumed: the next recv/accept re-arms them if more is queued */
    if (ready & G_IO_IN)
        s->entry->pending &= ~(long)(FD_READ | FD_ACCEPT);
    if (ready & G_IO_OUT)
        s->entry->pending &= ~(long)FD_WRITE;
    if (fn == NULL)
        return G_SOURCE_REMOVE;
    return ((PbOsSocketFunc)(void *)fn)((pb_socket_t)s->entry->sock, ready, data);
}

static void sock_finalize(GSource *source)
{
    SockSource *s = (SockSource *)source;
    sock_entry_unref(s->entry);
}

static GSourceFuncs sock_funcs = {
    .prepare = sock_prepare,
    .check = sock_check,
    .dispatch = sock_dispatch,
    .finalize = sock_finalize,
};

GSource *pb_os_socket_source_new(pb_socket_t sock, GIOCondition cond)
{
    g_return_val_if_fail(sock != PB_SOCKET_NONE, NULL);
    long want = FD_CLOSE;
    if (cond & G_IO_IN)
        want |= FD_READ | FD_ACCEPT;
    if (cond & G_IO_OUT)
        want |= FD_WRITE;
    GSource *source = g_source_new(&sock_funcs, sizeof(SockSource));
    SockSource *s = (SockSource *)source;
    s->entry = sock_entry_ref((SOCKET)sock, want);
    s->cond = cond;
    s->poll.fd = (gintptr)s->entry->event;
    s->poll.events = G_IO_IN;
    g_source_add_poll(source, &s->poll);
    g_source_set_name(source, "pb-socket");
    return source;
}

void pb_os_socket_close(pb_socket_t sock)
{
    if (sock != PB_SOCKET_NONE)
        closesocket((SOCKET)sock);
}

/* errno as POSIX callers expect it (EAGAIN for "try later"), from the Winsock error. */
static void errno_from_wsa(int err)
{
    switch (err) {
    case WSAEWOULDBLOCK:
        errno = EAGAIN;
        break;
    case WSAEINTR:
        errno = EINTR;
        break;
    case WSAECONNRESET:
    case WSAECONNABORTED:
        errno = ECONNRESET;
        break;
    case WSAENOTSOCK:
        errno = EBADF;
        break;
    default:
        errno = EIO;
        break;
    }
}

gssize pb_os_socket_read(pb_socket_t sock, void *buf, gsize len)
{
    int n = recv((SOCKET)sock, buf, (int)MIN(len, (gsize)G_MAXINT), 0);
    if (n == SOCKET_ERROR) {
        errno_from_wsa(WSAGetLastError());
        return -1;
    }
    return n;
}

gssize pb_os_socket_write(pb_socket_t sock, const void *buf, gsize len)
{
    int n = send((SOCKET)sock, buf, (int)MIN(len, (gsize)G_MAXINT), 0);
    if (n == SOCKET_ERROR) {
        int err = WSAGetLastError();
        if (err == WSAEWOULDBLOCK) {
            g_mutex_lock(&sock_lock);
            SockEntry *e = sock_entry_find((SOCKET)sock);
            if (e != NULL)
                e->write_blocked = TRUE;
            g_mutex_unlock(&sock_lock);
        }
        errno_from_wsa(err);
        return -1;
    }
    return n;
}

/* ---- the control channel ----------------------------------------------------------------------
 */

typedef struct {
    guint16 port;
    char token[TOKEN_HEX + 1];
} ControlListener;

static GMutex control_lock;
static GArray *control_listeners; /* ControlListener, one per listening port */

static gboolean random_token(char out[TOKEN_HEX + 1], GError **error)
{
    guint8 bytes[TOKEN_HEX / 2];
    HCRYPTPROV prov;
    if (!CryptAcquireContextW(&prov, NULL, NULL, PROV_RSA_FULL,
                              CRYPT_VERIFYCONTEXT | CRYPT_SILENT)) {
        set_win32_error(error, GetLastError(), "CryptAcquireContext");
        return FALSE;
    }
    BOOL ok = CryptGenRandom(prov, sizeof bytes, bytes);
    CryptReleaseContext(prov, 0);
    if (!ok) {
        set_win32_error(error, GetLastError(), "CryptGenRandom");
        return FALSE;
    }
    for (guint i = 0; i < sizeof bytes; i++)
        g_snprintf(out + 2 * i, 3, "%02x", bytes[i]);
    return TRUE;
}

/* The DACL of the control file: SYSTEM and Administrators, plus read for the group. */
static PSECURITY_DESCRIPTOR control_file_sd(const char *group, GError **error)
{
    GString *sddl = g_string_new("D:P(A;;FA;;;SY)(A;;FA;;;BA)");
    if (group != NULL && *group != '\0') {
        g_autofree wchar_t *wgroup = g_utf8_to_utf16(group, -1, NULL, NULL, NULL);
        BYTE sid[SECURITY_MAX_SID_SIZE];
        DWORD sid_len = sizeof sid;
        wchar_t domain[256];
        DWORD domain_len = G_N_ELEMENTS(domain);
        SID_NAME_USE use;
        wchar_t *sid_text = NULL;
        if (wgroup == NULL ||
            !LookupAccountNameW(NULL, wgroup, sid, &sid_len, domain, &domain_len, &use) ||
            !ConvertSidToStringSidW(sid, &sid_text)) {
            set_win32_error(error, GetLastError(), "control group '%s'", group);
            g_string_free(sddl, TRUE);
            return NULL;
        }
        g_autofree char *s = g_utf16_to_utf8(sid_text, -1, NULL, NULL, NULL);
        LocalFree(sid_text);
        g_string_append_printf(sddl, "(A;;FR;;;%s)", s);
    }
    g_autofree wchar_t *wsddl = g_utf8_to_utf16(sddl->str, -1, NULL, NULL, NULL);
    g_string_free(sddl, TRUE);
    PSECURITY_DESCRIPTOR sd = NULL;
    if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(wsddl, SDDL_REVISION_1, &sd, NULL)) {
        set_win32_error(error, GetLastError(), "control file security descriptor");
        return NULL;
    }
    return sd;
}

static gboolean write_control_file(const char *path, const char *group, const char *text,
                                   GError **error)
{
    PSECURITY_DESCRIPTOR sd = control_file_sd(group, error);
    if (sd == NULL)
        return FALSE;
    SECURITY_ATTRIBUTES sa = {.nLength = sizeof sa, .lpSecurityDescriptor = sd};
    g_autofree wchar_t *wpath = g_utf8_to_utf16(path, -1, NULL, NULL, NULL);
    if (wpath != NULL)
        DeleteFileW(wpath); /* a stale file of an earlier run keeps its old DACL otherwise */
    HANDLE h = wpath != NULL ? CreateFileW(wpath, GENERIC_WRITE, 0, &sa, CREATE_NEW,
                                           FILE_ATTRIBUTE_NORMAL, NULL)
                             : INVALID_HANDLE_VALUE;
    LocalFree(sd);
    if (h == INVALID_HANDLE_VALUE) {
        set_win32_error(error, GetLastError(), "cannot create control file %s", path);
        return FALSE;
    }
    DWORD len = (DWORD)strlen(text), done = 0;
    BOOL ok = WriteFile(h, text, len, &done, NULL) && done == len;
    DWORD err = GetLastError();
    CloseHandle(h);
    if (!ok) {
        set_win32_error(error, err, "cannot write control file %s", path);
        DeleteFileW(wpath);
    }
    return ok;
}

pb_socket_t pb_os_control_listen(const char *path, const char *group, GError **error)
{
    g_return_val_if_fail(path != NULL, PB_SOCKET_NONE);
    if (!pb_win32_wsa_init(error))
        return PB_SOCKET_NONE;

    SOCKET s = WSASocketW(AF_INET, SOCK_STREAM, IPPROTO_TCP, NULL, 0,
                          WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
    if (s == INVALID_SOCKET) {
        set_win32_error(error, (DWORD)WSAGetLastError(), "control socket");
        return PB_SOCKET_NONE;
    }
    BOOL yes = TRUE;
    (void)setsockopt(s, SOL_SOCKET, SO_EXCLUSIVEADDRUSE, (const char *)&yes, sizeof yes);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int sl = sizeof sin;
    u_long nonblocking = 1;
    ControlListener l = {0};
    if (bind(s, (struct sockaddr *)&sin, sizeof sin) != 0 || listen(s, 16) != 0 ||
        getsockname(s, (struct sockaddr *)&sin, &sl) != 0 ||
        ioctlsocket(s, FIONBIO, &nonblocking) != 0) {
        set_win32_error(error, (DWORD)WSAGetLastError(), "control socket on 127.0.0.1");
        closesocket(s);
        return PB_SOCKET_NONE;
    }
    l.port = ntohs(sin.sin_port);
    if (!random_token(l.token, error)) {
        closesocket(s);
        return PB_SOCKET_NONE;
    }
    g_autofree char *text = g_strdup_printf("127.0.0.1 %u %s\n", l.port, l.token);
    if (!write_control_file(path, group, text, error)) {
        closesocket(s);
        return PB_SOCKET_NONE;
    }
    g_mutex_lock(&control_lock);
    if (control_listeners == NULL)
        control_listeners = g_array_new(FALSE, TRUE, sizeof(ControlListener));
    g_array_append_val(control_listeners, l);
    g_mutex_unlock(&control_lock);
    return (pb_socket_t)s;
}

/* "127.0.0.1 PORT TOKEN" */
static gboolean read_control_file(const char *path, guint16 *port, char token[TOKEN_HEX + 1],
                                  GError **error)
{
    g_autofree char *text = NULL;
    g_autoptr(GError) local = NULL;
    if (!g_file_get_contents(path, &text, NULL, &local)) {
        g_set_error(error, G_FILE_ERROR, local->code,
                    "%s (the control channel is for Administrators and the control group)",
                    local->message);
        return FALSE;
    }
    g_auto(GStrv) f = g_strsplit_set(g_strstrip(text), " \t", -1);
    guint64 p = 0;
    if (g_strv_length(f) != 3 || strcmp(f[0], "127.0.0.1") != 0 ||
        !g_ascii_string_to_unsigned(f[1], 10, 1, 65535, &p, NULL) || strlen(f[2]) != TOKEN_HEX) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s is no preboot control file", path);
        return FALSE;
    }
    *port = (guint16)p;
    memcpy(token, f[2], TOKEN_HEX + 1);
    return TRUE;
}

pb_socket_t pb_os_control_connect(const char *path, GError **error)
{
    g_return_val_if_fail(path != NULL, PB_SOCKET_NONE);
    guint16 port;
    char token[TOKEN_HEX + 1];
    if (!read_control_file(path, &port, token, error) || !pb_win32_wsa_init(error))
        return PB_SOCKET_NONE;
    SOCKET s = WSASocketW(AF_INET, SOCK_STREAM, IPPROTO_TCP, NULL, 0,
                          WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
    if (s == INVALID_SOCKET) {
        set_win32_error(error, (DWORD)WSAGetLastError(), "control socket");
        return PB_SOCKET_NONE;
    }
    struct sockaddr_in sin = {
        .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = htons(port)};
    if (connect(s, (struct sockaddr *)&sin, sizeof sin) != 0) {
        int err = WSAGetLastError();
        closesocket(s);
        g_autofree char *msg = g_win32_error_message(err);
        /* as connect() to a Unix socket nobody listens on: the daemon is not running */
        g_set_error(error, G_FILE_ERROR,
                    err == WSAECONNREFUSED ? G_FILE_ERROR_NOENT : G_FILE_ERROR_FAILED,
                    "%s: 127.0.0.1:%u: %s", path, port, msg);
        return PB_SOCKET_NONE;
    }
    char line[TOKEN_HEX + 1];
    memcpy(line, token, TOKEN_HEX);
    line[TOKEN_HEX] = '\n';
    if (send(s, line, sizeof line, 0) != (int)sizeof line) {
        set_win32_error(error, (DWORD)WSAGetLastError(), "control socket");
        closesocket(s);
        return PB_SOCKET_NONE;
    }
    u_long nonblocking = 1;
    ioctlsocket(s, FIONBIO, &nonblocking);
    return (pb_socket_t)s;
}

pb_socket_t pb_os_control_accept(pb_socket_t listener)
{
    SOCKET s = accept((SOCKET)listener, NULL, NULL);
    if (s == INVALID_SOCKET) {
        errno_from_wsa(WSAGetLastError());
        return PB_SOCKET_NONE;
    }
    /* An accepted socket inherits the listener's event selection: drop it, so that its
     * own source (if any) gets events of its own, not the listener's. */
    WSAEventSelect(s, NULL, 0);
    u_long nonblocking = 1;
    ioctlsocket(s, FIONBIO, &nonblocking);
    SetHandleInformation((HANDLE)s, HANDLE_FLAG_INHERIT, 0);
    return (pb_socket_t)s;
}

gboolean pb_os_control_peer_allowed(pb_socket_t sock, const char *group)
{
    SOCKET s = (SOCKET)sock;
    struct sockaddr_in self, peer;
    int sl = sizeof self, pl = sizeof peer;
    if (getsockname(s, (struct sockaddr *)&self, &sl) != 0 ||
        getpeername(s, (struct sockaddr *)&peer, &pl) != 0 || self.sin_family != AF_INET ||
        peer.sin_addr.s_addr != htonl(INADDR_LOOPBACK))
        return FALSE;

    char expected[TOKEN_HEX + 1] = "";
    g_mutex_lock(&control_lock);
    for (guint i = 0; control_listeners != NULL && i < control_listeners->len; i++) {
        ControlListener *l = &g_array_index(control_listeners, ControlListener, i);
        if (l->port == ntohs(self.sin_port))
            memcpy(expected, l->token, sizeof expected);
    }
    g_mutex_unlock(&control_lock);
    if (expected[0] == '\0')
        return FALSE;

    /* The client sends the token line right after connecting: read it with a deadline
     * (a local client that connects and then says nothing costs at most that). */
    char line[TOKEN_HEX + 1];
    gsize got = 0;
    gint64 deadline = g_get_monotonic_time() + 2 * G_USEC_PER_SEC;
    while (got < sizeof line) {
        gint64 left = deadline - g_get_monotonic_time();
        if (left <= 0)
            return FALSE;
        fd_set rd;
        FD_ZERO(&rd);
        FD_SET(s, &rd);
        struct timeval tv = {.tv_sec = (long)(left / G_USEC_PER_SEC),
                             .tv_usec = (long)(left % G_USEC_PER_SEC)};
        if (select(0, &rd, NULL, NULL, &tv) <= 0)
            return FALSE;
        int n = recv(s, line + got, (int)(sizeof line - got), 0);
        if (n <= 0)
            return FALSE;
        got += (gsize)n;
    }
    if (line[TOKEN_HEX] != '\n')
        return FALSE;
    guint diff = 0; /* constant time: the token is the whole secret */
    for (guint i = 0; i < TOKEN_HEX; i++)
        diff |= (guint8)(line[i] ^ expected[i]);
    return diff == 0;
}

void pb_os_control_unlink(const char *path)
{
    if (path == NULL || *path == '\0')
        return;
    guint16 port;
    char token[TOKEN_HEX + 1];
    if (read_control_file(path, &port, token, NULL)) {
        g_mutex_lock(&control_lock);
        for (guint i = 0; control_listeners != NULL && i < control_listeners->len; i++) {
            if (g_array_index(control_listeners, ControlListener, i).port == port) {
                g_array_remove_index_fast(control_listeners, i);
                break;
            }
        }
        g_mutex_unlock(&control_lock);
    }
    g_unlink(path);
}

/* ---- files ------------------------------------------------------------------------------------
 */

const char *pb_os_module_ext(void)
{
    return ".dll";
}

guint64 pb_os_raise_fd_limit(void)
{
    /* Sockets are kernel handles with no per-process limit to raise; only the C runtime's
     * table of file descriptors is bounded (_setmaxstdio), and files are opened through
     * handles. */
    return 0;
}

void pb_os_syslog_open(const char *ident)
{
}

void pb_os_syslog(int severity, const char *line)
{
}

void pb_os_gmtime(gint64 secs, struct tm *tm)
{
    __time64_t t = (__time64_t)secs;
    _gmtime64_s(tm, &t);
}

char pb_os_legacy_path_char(char c)
{
    return c; /* the legacy product's own spelling is native here */
}

gboolean pb_os_mkdir_p(const char *path, int mode, GError **error)
{
    g_return_val_if_fail(path != NULL, FALSE);
    /* mode has no meaning here: directories inherit the ACL of their parent, which for
     * the install home is what the administrator set up. */
    if (g_mkdir_with_parents(path, mode) == 0 && g_file_test(path, G_FILE_TEST_IS_DIR))
        return TRUE;
    int err = errno;
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(err), "cannot create %s: %s", path,
                g_strerror(err));
    return FALSE;
}

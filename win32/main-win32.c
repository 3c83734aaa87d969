/* main-win32.c - main() of prebootd.exe and prebootctl.exe on Windows, around the
 * programs' own main() (compiled as pb_program_main, see core/local.mk), in the manner
 * of Unbound's winrc/: the same prebootd.exe installs, removes, starts, stops and runs
 * itself as a Windows service.
 *
 *   prebootd --service install [DAEMON OPTIONS]   register the "preboot" service
 *   prebootd --service remove                      stop it if running, unregister
 *   prebootd --service start | stop                ask the service manager
 *   prebootd --service run [DAEMON OPTIONS]        what the service manager runs
 *
 * Both programs first move to the install home, so the compiled-in default locations
 * (relative on Windows: conf\preboot, logs\preboot, lib\preboot, var\...) resolve the way
 * the legacy product's %ZENWORKS_HOME% did. The home is %PREBOOT_HOME% when set, else the
 * directory holding bin\preboot\ (or bin\) with the executable. Relative paths given on
 * the command line are made absolute first, against the directory the user started in. */
#include "build-config.h"

#include "win32.h"

/* core/local.mk compiles the programs with -Dmain=pb_program_main; this one is main(). */
#undef main

#include <fcntl.h>
#include <io.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pb_program_main(int argc, char **argv);

#define SERVICE_NAME    L"preboot"
#define SERVICE_DISPLAY L"Preboot Services (preboot)"
#define SERVICE_DESCRIPTION \
    L"PXE preboot services: TFTP, proxyDHCP, boot policy and imaging plugins (prebootd)."

/* ---- the install home ---------------------------------------------------------------- */

static gboolean ends_with_dir(const char *dir, const char *name)
{
    g_autofree char *base = g_path_get_basename(dir);
    return g_ascii_strcasecmp(base, name) == 0;
}

static char *install_home(void)
{
    const char *env = g_getenv("PREBOOT_HOME");
    if (env != NULL && *env != '\0')
        return g_strdup(env);
    wchar_t exe[MAX_PATH * 2];
    DWORD n = GetModuleFileNameW(NULL, exe, G_N_ELEMENTS(exe));
    if (n == 0 || n >= G_N_ELEMENTS(exe))
        return NULL;
    g_autofree char *path = g_utf16_to_utf8(exe, -1, NULL, NULL, NULL);
    if (path == NULL)
        return NULL;
    char *dir = g_path_get_dirname(path);
    /* libtool's uninstalled layout puts the real program in .libs\ */
    if (ends_with_dir(dir, ".libs")) {
        char *up = g_path_get_dirname(dir);
        g_free(dir);
        dir = up;
    }
    if (ends_with_dir(dir, "preboot")) {
        g_autofree char *parent = g_path_get_dirname(dir);
        if (ends_with_dir(parent, "bin")) {
            g_free(dir);
            return g_path_get_dirname(parent);
        }
    }
    if (ends_with_dir(dir, "bin")) {
        char *up = g_path_get_dirname(dir);
        g_free(dir);
        return up;
    }
    return dir;
}

/* Options that name files, per program: with a relative value, made absolute. */
static const char *const path_options[] = {
    "-c", "--config",         "-P",        "--plugin-path", "-p", "--pid-file",
    "-s", "--control-socket", "--log-dir", "--state-dir",   NULL,
};

static char *absolute(const char *cwd, const char *value)
{
    if (cwd == NULL || *value == '\0' || g_path_is_absolute(value))
        return g_strdup(value);
    return g_build_filename(cwd, value, NULL);
}

static void absolutize_paths(int argc, char **argv, const char *cwd)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return;
        for (const char *const *o = path_options; *o != NULL; o++) {
            gsize ol = strlen(*o);
            if (strcmp(argv[i], *o) == 0 && i + 1 < argc) {
                argv[i + 1] = absolute(cwd, argv[i + 1]);
                i++;
                break;
            }
            if (strncmp(argv[i], *o, ol) == 0 && argv[i][ol] != '\0') {
                /* "--config=FILE" and the short "-cFILE" */
                gboolean eq = argv[i][ol] == '=';
                if (!eq && (*o)[1] == '-')
                    continue; /* "--configx" is another option */
                const char *value = argv[i] + ol + (eq ? 1 : 0);
                g_autofree char *abs = absolute(cwd, value);
                argv[i] = g_strdup_printf("%.*s%s%s", (int)ol, argv[i], eq ? "=" : "", abs);
                break;
            }
        }
    }
}

static void enter_home(int argc, char **argv)
{
    wchar_t cwd[MAX_PATH * 2];
    DWORD n = GetCurrentDirectoryW(G_N_ELEMENTS(cwd), cwd);
    g_autofree char *cwd8 = NULL;
    if (n > 0 && n < G_N_ELEMENTS(cwd)) {
        pb_win32_set_original_cwd(cwd);
        cwd8 = g_utf16_to_utf8(cwd, -1, NULL, NULL, NULL);
    }
    absolutize_paths(argc, argv, cwd8);
    g_autofree char *home = install_home();
    if (home == NULL || !g_file_test(home, G_FILE_TEST_IS_DIR))
        return;
    g_autofree wchar_t *whome = g_utf8_to_utf16(home, -1, NULL, NULL, NULL);
    if (whome != NULL)
        SetCurrentDirectoryW(whome);
}

#ifdef PB_WIN32_DAEMON

/* ---- the event log ------------------------------------------------------------------------ */

/* Start, stop and failure go to the Application event log as well as prebootd.log. The
 * message file is prebootd.exe itself (win32/messages.mc: one "%1" message per type). */
static void event_log(WORD type, DWORD id, const char *text)
{
    HANDLE h = RegisterEventSourceW(NULL, SERVICE_NAME);
    if (h == NULL)
        return;
    g_autofree wchar_t *w = g_utf8_to_utf16(text, -1, NULL, NULL, NULL);
    const wchar_t *strings[1] = {w != NULL ? w : L"?"};
    ReportEventW(h, type, 0, id, NULL, 1, 0, strings, NULL);
    DeregisterEventSource(h);
}

#define MSG_INFO    0x40000001u /* informational, "%1" */
#define MSG_WARNING 0x80000002u /* warning, "%1" */
#define MSG_ERROR   0xC0000003u /* error, "%1" */

static gboolean register_event_source(const wchar_t *exe)
{
    HKEY key;
    if (RegCreateKeyExW(
            HKEY_LOCAL_MACHINE,
            L"SYSTEM\\CurrentControlSet\\Services\\EventLog\\Application\\" SERVICE_NAME, 0, NULL,
            0, KEY_SET_VALUE, NULL, &key, NULL) != ERROR_SUCCESS)
        return FALSE;
    DWORD types = EVENTLOG_ERROR_TYPE | EVENTLOG_WARNING_TYPE | EVENTLOG_INFORMATION_TYPE;
    RegSetValueExW(key, L"EventMessageFile", 0, REG_EXPAND_SZ, (const BYTE *)exe,
                   (DWORD)((wcslen(exe) + 1) * sizeof(wchar_t)));
    RegSetValueExW(key, L"TypesSupported", 0, REG_DWORD, (const BYTE *)&types, sizeof types);
    RegCloseKey(key);
    return TRUE;
}

static void unregister_event_source(void)
{
    RegDeleteKeyW(HKEY_LOCAL_MACHINE,
                  L"SYSTEM\\CurrentControlSet\\Services\\EventLog\\Application\\" SERVICE_NAME);
}

/* ---- the service manager ------------------------------------------------------------------- */

static int fail(const char *what)
{
    DWORD err = GetLastError();
    g_autofree char *msg = g_win32_error_message((gint)err);
    fprintf(stderr, "prebootd: %s: %s\n", what, msg);
    return 1;
}

/* Windows command-line quoting (CommandLineToArgvW rules) of one argument. */
static void append_quoted(GString *s, const char *arg)
{
    if (*arg != '\0' && strpbrk(arg, " \t\"") == NULL) {
        g_string_append(s, arg);
        return;
    }
    g_string_append_c(s, '"');
    for (const char *p = arg;; p++) {
        guint slashes = 0;
        while (*p == '\\') {
            slashes++;
            p++;
        }
        if (*p == '\0') {
            for (guint i = 0; i < slashes * 2; i++)
                g_string_append_c(s, '\\');
            break;
        }
        for (guint i = 0; i < (*p == '"' ? slashes * 2 + 1 : slashes); i++)
            g_string_append_c(s, '\\');
        g_string_append_c(s, *p);
    }
    g_string_append_c(s, '"');
}

static int service_install(int argc, char **argv)
{
    for (int i = 0; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "-f") == 0 || strcmp(argv[i], "--foreground") == 0) {
            /* the service manager keeps the daemon; -f would never report RUNNING */
            fprintf(stderr, "prebootd: -f/--foreground is not an option of the service\n");
            return 2;
        }
    }
    wchar_t exe[MAX_PATH * 2];
    DWORD n = GetModuleFileNameW(NULL, exe, G_N_ELEMENTS(exe));
    if (n == 0 || n >= G_N_ELEMENTS(exe))
        return fail("GetModuleFileName");
    g_autofree char *exe8 = g_utf16_to_utf8(exe, -1, NULL, NULL, NULL);
    GString *cmd = g_string_new(NULL);
    append_quoted(cmd, exe8);
    g_string_append(cmd, " --service run");
    for (int i = 0; i < argc; i++) {
        g_string_append_c(cmd, ' ');
        append_quoted(cmd, argv[i]);
    }
    g_autofree wchar_t *wcmd = g_utf8_to_utf16(cmd->str, -1, NULL, NULL, NULL);
    g_string_free(cmd, TRUE);

    SC_HANDLE scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CREATE_SERVICE);
    if (scm == NULL)
        return fail("cannot open the service manager (run as Administrator)");
    SC_HANDLE svc = CreateServiceW(
        scm, SERVICE_NAME, SERVICE_DISPLAY, SERVICE_ALL_ACCESS, SERVICE_WIN32_OWN_PROCESS,
        SERVICE_AUTO_START, SERVICE_ERROR_NORMAL, wcmd, NULL, NULL, L"Tcpip\0\0", NULL, NULL);
    if (svc == NULL) {
        int rc = fail("CreateService");
        CloseServiceHandle(scm);
        return rc;
    }
    SERVICE_DESCRIPTIONW desc = {.lpDescription = (wchar_t *)SERVICE_DESCRIPTION};
    ChangeServiceConfig2W(svc, SERVICE_CONFIG_DESCRIPTION, &desc);
    CloseServiceHandle(svc);
    CloseServiceHandle(scm);
    register_event_source(exe);
    printf("service preboot installed: %s\n", exe8);
    return 0;
}

/* Polls the service's state until it is 'want'; waiting for RUNNING ends early when the
 * service stops instead (a failed start). *st is the last state seen. */
static gboolean wait_state(SC_HANDLE svc, DWORD want, guint seconds, SERVICE_STATUS *st)
{
    for (guint i = 0; i < seconds * 10; i++) {
        if (!QueryServiceStatus(svc, st))
            return FALSE;
        if (st->dwCurrentState == want)
            return TRUE;
        if (want == SERVICE_RUNNING && st->dwCurrentState == SERVICE_STOPPED)
            return FALSE;
        Sleep(100);
    }
    return FALSE;
}

static int service_control(const char *verb)
{
    SC_HANDLE scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT);
    if (scm == NULL)
        return fail("cannot open the service manager (run as Administrator)");
    SC_HANDLE svc = OpenServiceW(scm, SERVICE_NAME, SERVICE_ALL_ACCESS);
    if (svc == NULL) {
        int rc = fail("service preboot");
        CloseServiceHandle(scm);
        return rc;
    }
    int rc = 0;
    SERVICE_STATUS st = {0};
    if (strcmp(verb, "start") == 0) {
        if (!StartServiceW(svc, 0, NULL) && GetLastError() != ERROR_SERVICE_ALREADY_RUNNING)
            rc = fail("StartService");
        else if (!wait_state(svc, SERVICE_RUNNING, 60, &st)) {
            if (st.dwCurrentState == SERVICE_STOPPED)
                fprintf(stderr,
                        "prebootd: the service stopped while starting (exit code %lu); the "
                        "reason is in the Application event log and prebootd.log\n",
                        st.dwWin32ExitCode == ERROR_SERVICE_SPECIFIC_ERROR
                            ? st.dwServiceSpecificExitCode
                            : st.dwWin32ExitCode);
            else
                fprintf(stderr, "prebootd: the service did not reach RUNNING in 60 s\n");
            rc = 1;
        }
    } else if (strcmp(verb, "stop") == 0 || strcmp(verb, "remove") == 0) {
        if (ControlService(svc, SERVICE_CONTROL_STOP, &st)) {
            if (!wait_state(svc, SERVICE_STOPPED, 60, &st)) {
                fprintf(stderr, "prebootd: the service did not stop in 60 s\n");
                rc = 1;
            }
        } else if (GetLastError() != ERROR_SERVICE_NOT_ACTIVE && strcmp(verb, "stop") == 0) {
            rc = fail("ControlService(STOP)");
        }
        if (strcmp(verb, "remove") == 0) {
            if (!DeleteService(svc))
                rc = fail("DeleteService");
            else {
                unregister_event_source();
                printf("service preboot removed\n");
            }
        }
    } else if (strcmp(verb, "reload") == 0) {
        if (!ControlService(svc, SERVICE_CONTROL_PARAMCHANGE, &st))
            rc = fail("ControlService(PARAMCHANGE)");
    }
    CloseServiceHandle(svc);
    CloseServiceHandle(scm);
    return rc;
}

/* ---- running as the service ----------------------------------------------------------------- */

static int service_argc;
static char **service_argv;

static DWORD WINAPI service_handler(DWORD control, DWORD type, LPVOID event, LPVOID ctx)
{
    switch (control) {
    case SERVICE_CONTROL_STOP:
    case SERVICE_CONTROL_SHUTDOWN:
        /* the same graceful stop as SIGTERM: plugins finish, the pid file goes */
        pb_win32_service_report(SERVICE_STOP_PENDING, 0, 30000);
        pb_win32_raise(PB_OS_SIGNAL_TERMINATE);
        return NO_ERROR;
    case SERVICE_CONTROL_PARAMCHANGE:
        /* `sc control preboot paramchange`: the staged reload of SIGHUP */
        pb_win32_raise(PB_OS_SIGNAL_RELOAD);
        return NO_ERROR;
    case SERVICE_CONTROL_INTERROGATE:
        return NO_ERROR;
    default:
        return ERROR_CALL_NOT_IMPLEMENTED;
    }
}

/* A service has no console: what the daemon writes to stderr before its log file is open
 * (a configuration it cannot read, an unknown option) would be lost. It is read from a pipe
 * instead and goes into the event log with the stop or failure event. */
#define STDERR_KEEP 2000 /* bytes: the end of it, where the reason is */

typedef struct {
    HANDLE read;
    GString *text;
    GThread *thread;
} StderrCapture;

static gpointer stderr_reader(gpointer data)
{
    StderrCapture *c = data;
    char buf[512];
    DWORD n;
    while (ReadFile(c->read, buf, sizeof buf, &n, NULL) && n > 0) {
        g_string_append_len(c->text, buf, (gssize)n);
        if (c->text->len > STDERR_KEEP)
            g_string_erase(c->text, 0, (gssize)(c->text->len - STDERR_KEEP));
    }
    return NULL;
}

/* Points the CRT's stderr stream at descriptor 2. A process started without a console
 * (every service) has its stream on no descriptor at all (-2), and freopen() refuses such a
 * stream under wine; with msvcrt, whose FILE is public, the descriptor is set directly. */
static gboolean stderr_stream_on_fd2(void)
{
    if (_fileno(stderr) == 2)
        return TRUE;
#ifndef _UCRT
    stderr->_file = 2;
    clearerr(stderr);
    return _fileno(stderr) == 2;
#else
    return FALSE; /* the UCRT's FILE is opaque: no capture */
#endif
}

static gboolean stderr_capture(StderrCapture *c)
{
    HANDLE r, w;
    SECURITY_ATTRIBUTES sa = {.nLength = sizeof sa, .bInheritHandle = FALSE};
    if (!CreatePipe(&r, &w, &sa, 0))
        return FALSE;
    int fd = _open_osfhandle((intptr_t)w, _O_WRONLY | _O_BINARY);
    if (fd < 0) {
        CloseHandle(w);
        CloseHandle(r);
        return FALSE;
    }
    fflush(stderr);
    gboolean ok = _dup2(fd, 2) == 0;
    _close(fd);
    if (!ok || !stderr_stream_on_fd2()) {
        if (ok)
            _close(2);
        CloseHandle(r);
        return FALSE;
    }
    /* fd 2 now holds the only write handle: not inherited, so only our _close ends it */
    HANDLE err = (HANDLE)_get_osfhandle(2);
    SetHandleInformation(err, HANDLE_FLAG_INHERIT, 0);
    SetStdHandle(STD_ERROR_HANDLE, err);
    setvbuf(stderr, NULL, _IONBF, 0);
    c->read = r;
    c->text = g_string_new(NULL);
    c->thread = g_thread_new("stderr", stderr_reader, c);
    return TRUE;
}

/* Ends the capture; returns what was written, stripped ("" when nothing). */
static char *stderr_collect(StderrCapture *c)
{
    fflush(stderr);
    SetStdHandle(STD_ERROR_HANDLE, NULL);
    _close(2); /* the last write handle: the reader sees the end of the pipe */
    g_thread_join(c->thread);
    CloseHandle(c->read);
    char *text = g_string_free(c->text, FALSE);
    g_strdelimit(text, "\r", ' ');
    return g_strstrip(text);
}

static void WINAPI service_main(DWORD argc, LPWSTR *argv)
{
    SERVICE_STATUS_HANDLE h = RegisterServiceCtrlHandlerExW(SERVICE_NAME, service_handler, NULL);
    if (h == NULL)
        return;
    pb_win32_service_attach(h);
    pb_win32_service_report(SERVICE_START_PENDING, 0, 30000);
    event_log(EVENTLOG_INFORMATION_TYPE, MSG_INFO, "preboot service starting");
    StderrCapture capture;
    gboolean captured = stderr_capture(&capture);
    int rc = pb_program_main(service_argc, service_argv);
    g_autofree char *said = captured ? stderr_collect(&capture) : g_strdup("");
    g_autofree char *text = NULL;
    if (rc == 0)
        text = g_strdup_printf("preboot service stopped%s%s", *said ? ": " : "", said);
    else if (!pb_win32_service_was_running())
        text = g_strdup_printf("preboot service failed to start (status %d): %s", rc,
                               *said ? said : "the reason is in prebootd.log");
    else
        text = g_strdup_printf("preboot service stopped with status %d%s%s", rc, *said ? ": " : "",
                               said);
    event_log(rc == 0 ? EVENTLOG_INFORMATION_TYPE : EVENTLOG_ERROR_TYPE,
              rc == 0 ? MSG_INFO : MSG_ERROR, text);
    pb_win32_service_report(SERVICE_STOPPED, (DWORD)rc, 0);
}

static int service_run(int argc, char **argv)
{
    /* the daemon sees: prebootd [DAEMON OPTIONS] */
    service_argc = argc + 1;
    service_argv = g_new0(char *, service_argc + 1);
    service_argv[0] = g_strdup("prebootd");
    for (int i = 0; i < argc; i++)
        service_argv[i + 1] = argv[i];
    SERVICE_TABLE_ENTRYW table[] = {{(wchar_t *)SERVICE_NAME, service_main}, {NULL, NULL}};
    if (!StartServiceCtrlDispatcherW(table))
        return fail("StartServiceCtrlDispatcher (--service run is for the service manager)");
    return 0;
}

static int service_verb(int argc, char **argv)
{
    if (argc < 1) {
        fprintf(stderr, "usage: prebootd --service install|remove|start|stop|reload|run "
                        "[OPTIONS]\n");
        return 2;
    }
    const char *verb = argv[0];
    if (strcmp(verb, "install") == 0)
        return service_install(argc - 1, argv + 1);
    if (strcmp(verb, "run") == 0)
        return service_run(argc - 1, argv + 1);
    if (strcmp(verb, "remove") == 0 || strcmp(verb, "start") == 0 || strcmp(verb, "stop") == 0 ||
        strcmp(verb, "reload") == 0)
        return service_control(verb);
    fprintf(stderr, "prebootd: unknown service verb '%s'\n", verb);
    return 2;
}

#endif /* PB_WIN32_DAEMON */

int main(int argc, char **argv)
{
    enter_home(argc, argv);
#ifdef PB_WIN32_DAEMON
    if (argc >= 2 && strcmp(argv[1], "--service") == 0)
        return service_verb(argc - 2, argv + 2);
#endif
    return pb_program_main(argc, argv);
}

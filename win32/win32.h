/* win32.h - what win32/main-win32.c (the service wrapper) and win32/os-win32.c (core/os.h)
 * share. Not part of core/os.h: nothing outside win32/ needs it. */
#pragma once

#include "win32-sock.h"

#include "os.h"

G_BEGIN_DECLS

/* Service mode: main-win32.c hands over the handle from RegisterServiceCtrlHandlerEx;
 * pb_os_daemonize/pb_os_daemon_ready then report START_PENDING/RUNNING to the SCM. */
void pb_win32_service_attach(SERVICE_STATUS_HANDLE handle);
gboolean pb_win32_is_service(void);
void pb_win32_service_report(DWORD state, DWORD exit_code, DWORD wait_hint_ms);
/* TRUE once RUNNING was reported: the daemon came up (a later failure is not a failed start). */
gboolean pb_win32_service_was_running(void);

/* Delivers "stop"/"reload" to the pb_os_signal_watch sources, from any thread. */
void pb_win32_raise(PbOsSignal which);

/* The working directory the program was started in (before main-win32.c moved to the
 * install home); NULL when unknown. The detached copy of a console start begins there. */
void pb_win32_set_original_cwd(const wchar_t *dir);
const wchar_t *pb_win32_original_cwd(void);

G_END_DECLS

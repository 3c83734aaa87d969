/* win32-sock.h - Winsock headers in the one order that compiles (winsock2.h before
 * windows.h), and the helpers win32/os-win32.c and lib/net/net-win32.c share. It lives
 * beside net-win32.c, which defines pb_win32_wsa_init; win32/ and win32/posix/ include it
 * from here (the Windows build has -I lib/net). */
#pragma once

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN 1
#endif
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>

#include <glib.h>

G_BEGIN_DECLS

/* WSAStartup once per process; every socket entry point calls it first. */
gboolean pb_win32_wsa_init(GError **error);

G_END_DECLS

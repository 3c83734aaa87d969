/* net/if.h for the Windows build - Winsock declares what this POSIX header would; found first
 * on the include path of the Windows build only (win32/local.mk), so portable code that
 * fills a sockaddr or calls inet_ntop needs no #ifdef. */
#pragma once
#include "win32-sock.h" /* lib/net/ */
#include <iphlpapi.h>   /* if_nametoindex, if_indextoname, IF_NAMESIZE */

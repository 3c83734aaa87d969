/* imaging-net.h - who may use the imaging API (networks, the upload token) and which
 * address this server advertises. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* TRUE when every item is ADDRESS or ADDRESS/BITS (an empty list is valid). */
gboolean imaging_networks_valid(const char *const *networks);
/* TRUE when client (an address as text) is inside one of networks (an empty list: none). */
gboolean imaging_network_allows(const char *const *networks, const char *client);
/* "Bearer TOKEN" with TOKEN equal to token, compared in constant time. */
gboolean imaging_bearer_ok(const char *authorization, const char *token);
/* configured when not empty, else the local address the routing table would use to reach
 * other hosts (no packet is sent), else "127.0.0.1". */
void imaging_detect_address(const char *configured, char *out, gsize len);
/* Lowers the calling thread's scheduling priority (a worker's): verifying chunks must not
 * take the CPU from the main loop, which answers DHCP. Best effort; a no-op where the
 * system has no per-thread priority. */
void imaging_thread_background(void);

G_END_DECLS

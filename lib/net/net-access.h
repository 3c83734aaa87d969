/* net-access.h - who may use a service: client networks (CIDR lists) and a bearer token.
 * Pure (no sockets): unit-tested in tests/test-http-range.c; the http plugin's routes and
 * the imaging plugin's uploads both decide with it. */
#pragma once

#include "net.h"

G_BEGIN_DECLS

/* TRUE when every item of the NULL-terminated list is "ADDR" or "ADDR/BITS" (IPv4 or
 * IPv6, BITS within the family's width). */
gboolean pb_networks_valid(const char *const *networks);
/* TRUE when networks is NULL (any client) or client is inside one of them. */
gboolean pb_networks_allow(char *const *networks, const PbAddr *client);

/* TRUE when the Authorization header value is "Bearer TOKEN" with TOKEN equal to token.
 * The comparison takes the same time wherever the first difference is, so a client
 * cannot learn the token a byte at a time. */
gboolean pb_bearer_ok(const char *authorization, const char *token);

G_END_DECLS

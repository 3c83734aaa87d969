/* preboot-img-session.h - the `session` subcommand of preboot-img (multicast receiver). */
#pragma once

#include "mcast.h"

/* argv[0] is "session". Returns the exit status. */
int preboot_img_session(int argc, char **argv);

/* PbMcastRecvOptions.lookup over the imaging server's listener (data: its PbHttp): GET
 * /multicast/v1/sessions/NAME, the multicast plugin's record of the session. */
int preboot_img_session_lookup(void *data, const char *session, PbMcastRecord *rec, GError **error);

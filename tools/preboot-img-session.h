/* preboot-img-session.h - the `session` subcommand of preboot-img (multicast receiver). */
#pragma once

/* argv[0] is "session". Returns the exit status. */
int preboot_img_session(int argc, char **argv);

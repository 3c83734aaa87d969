/* policy-script.h - what a decision looks like to a boot loader: an iPXE script for
 * /boot.ipxe, a pxelinux.cfg file for TFTP. Pure: decision in, text out. */
#pragma once

#include "policy-engine.h"
#include "policy-rules.h"
#include <glib.h>

G_BEGIN_DECLS

/* The iPXE script for decision d. rules gives the imaging environment and menu entries;
 * server_url is the base the script was fetched from ("http://192.0.2.1:8080"), used for
 * relative program paths. */
char *policy_ipxe_script(const PolicyEngine *e, const pb_policy_decision *d,
                         const char *server_url);

/* A pxelinux.cfg/01-<mac> file for decision d. */
char *policy_pxelinux_cfg(const PolicyEngine *e, const pb_policy_decision *d);
/* The same, telling the imaging environment where the imaging server is: server is the
 * HTTP listener as "HOST:PORT", ":PORT" when only the port is known (the environment then
 * takes the TFTP server's address), or NULL. */
char *policy_pxelinux_cfg_server(const PolicyEngine *e, const pb_policy_decision *d,
                                 const char *server);

/* TRUE for "host", "host:port" or "[v6]:port" spelled in letters, digits and ".-:[]": what
 * may go into a script as the server's name (a Host header is the client's to make up). */
gboolean policy_server_valid(const char *s);

/* The menu entry that boots the imaging environment's maintenance prompt. */
#define POLICY_LABEL_MAINTENANCE "Imaging maintenance"

/* "pxelinux.cfg/01-52-54-00-12-34-56" -> "52:54:00:12:34:56"; FALSE for other names. */
gboolean policy_pxelinux_mac(const char *path, char mac[24]);

/* iPXE's ${platform} and ${buildarch} as an RFC 4578 architecture number, or -1:
 * pcbios -> 0; efi + i386 -> 6, x86_64 -> 7, arm32 -> 10, arm64 -> 11, riscv64 -> 27. */
int policy_arch_from_ipxe(const char *platform, const char *buildarch);

G_END_DECLS

/* tftp-admit.h - whether a well-formed request is served at all, decided before any file or
 * socket is touched: its mode, its name (sanitised; temporary upload files refused), the
 * server's and the client's transfer limits, and the write rules. Pure code: no sockets, no
 * files, no clock, so each rule has a unit test (tests/test-tftp-admit.c). */
#pragma once

#include "tftp-packet.h"

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
    guint max_transfers;   /* in total */
    guint max_per_client;  /* from one client address; 0 = no limit */
    gboolean allow_writes; /* WRQ accepted at all */
} TftpAdmitRules;

typedef struct {
    gboolean upload;          /* WRQ */
    TftpMode mode;            /* as parsed */
    const char *filename;     /* as the client sent it */
    guint active;             /* transfers running now, in total */
    guint active_from_client; /* of them, from this client's address */
} TftpAdmitRequest;

typedef enum {
    TFTP_ADMIT_OK = 0,
    TFTP_ADMIT_MAIL_MODE,
    TFTP_ADMIT_BAD_NAME,     /* tftp_path_sanitize() refused it */
    TFTP_ADMIT_TEMPORARY,    /* an upload's temporary file: never served nor written */
    TFTP_ADMIT_BUSY,         /* max_transfers reached */
    TFTP_ADMIT_CLIENT_LIMIT, /* max_per_client reached */
    TFTP_ADMIT_NO_WRITES,
} TftpAdmitVerdict;

typedef struct {
    TftpAdmitVerdict verdict;
    TftpErrorCode code; /* the ERROR to send when refused */
    const char *msg;    /* its text; NULL: the standard text of code */
    const char *why;    /* static, for the log */
} TftpAdmission;

/* Decides on rq. On TFTP_ADMIT_OK the sanitised root-relative name is in path (capacity
 * cap); otherwise out says what to answer and why. The order is fixed: what the request
 * is (mode, name) before what the server can take (limits), so a refused name never
 * counts against a limit and the log names the first reason. */
TftpAdmitVerdict tftp_admit(const TftpAdmitRules *rules, const TftpAdmitRequest *rq, char *path,
                            gsize cap, TftpAdmission *out);

G_END_DECLS

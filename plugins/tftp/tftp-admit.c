/* tftp-admit.c - admission of a request. See tftp-admit.h. */
#include "tftp-admit.h"

#include "tftp-path.h"

static TftpAdmitVerdict set(TftpAdmission *out, TftpAdmitVerdict v, TftpErrorCode code,
                            const char *msg, const char *why)
{
    out->verdict = v;
    out->code = code;
    out->msg = msg;
    out->why = why;
    return v;
}

TftpAdmitVerdict tftp_admit(const TftpAdmitRules *rules, const TftpAdmitRequest *rq, char *path,
                            gsize cap, TftpAdmission *out)
{
    g_return_val_if_fail(rules != NULL && rq != NULL && path != NULL && out != NULL,
                         TFTP_ADMIT_BAD_NAME);
    set(out, TFTP_ADMIT_OK, TFTP_ERR_UNDEFINED, NULL, NULL);
    if (rq->mode == TFTP_MODE_MAIL)
        return set(out, TFTP_ADMIT_MAIL_MODE, TFTP_ERR_ILLEGAL_OP, "Mail mode not supported",
                   "mail mode");
    const char *why = NULL;
    if (rq->filename == NULL || !tftp_path_sanitize(rq->filename, path, cap, &why))
        return set(out, TFTP_ADMIT_BAD_NAME, TFTP_ERR_ACCESS, NULL, why ? why : "no file name");
    /* A half-written upload (or one a kill -9 left behind) is nobody's to read, and a WRQ
     * under such a name could plant a file that start-up clean-up would then delete. */
    if (tftp_path_is_temporary(path))
        return set(out, TFTP_ADMIT_TEMPORARY, TFTP_ERR_NOT_FOUND, NULL,
                   "temporary upload file refused");
    if (rq->active >= rules->max_transfers)
        return set(out, TFTP_ADMIT_BUSY, TFTP_ERR_UNDEFINED, "Server busy", "too many transfers");
    /* Each transfer holds a socket and a file: one address must not take every descriptor
     * the daemon has while other clients wait. */
    if (rules->max_per_client > 0 && rq->active_from_client >= rules->max_per_client)
        return set(out, TFTP_ADMIT_CLIENT_LIMIT, TFTP_ERR_UNDEFINED,
                   "Too many transfers from your address", "per-client transfer limit");
    if (rq->upload && !rules->allow_writes)
        return set(out, TFTP_ADMIT_NO_WRITES, TFTP_ERR_ACCESS, "Writes are disabled",
                   "writes are disabled");
    return TFTP_ADMIT_OK;
}

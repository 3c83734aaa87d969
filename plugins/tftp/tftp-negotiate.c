/* tftp-negotiate.c - decide the OACK. See tftp-negotiate.h. */
#include "tftp-negotiate.h"

#include <string.h>

guint tftp_blksize_for_mtu(guint mtu, gboolean ipv6)
{
    guint overhead = (ipv6 ? 40 : 20) + 8 + 4;
    if (mtu <= overhead + TFTP_BLKSIZE_MIN)
        return 0;
    return mtu - overhead;
}

TftpErrorCode tftp_negotiate(const TftpOptions *asked, const TftpRequestInfo *req,
                             const TftpLimits *lim, TftpNegotiation *out)
{
    memset(out, 0, sizeof(*out));
    out->blksize = TFTP_DEFAULT_BLKSIZE;
    out->windowsize = 1;

    if (asked->has_blksize && !(lim->refuse & TFTP_REFUSE_BLKSIZE)) {
        /* RFC 2348: the server may answer with a smaller size, never a larger one. Boot
         * firmware cannot reassemble IP fragments, so the link MTU caps it too. */
        guint b = MIN(asked->blksize, lim->blksize_max);
        guint mtu_cap = tftp_blksize_for_mtu(lim->path_mtu, lim->ipv6);
        if (mtu_cap)
            b = MIN(b, mtu_cap);
        b = MAX(b, TFTP_BLKSIZE_MIN);
        out->oack.has_blksize = TRUE;
        out->oack.blksize = b;
        out->blksize = b;
    }

    /* RFC 2349 allows no counter-offer for timeout: one we will not honour is left out. */
    if (asked->has_timeout && !(lim->refuse & TFTP_REFUSE_TIMEOUT) &&
        asked->timeout >= lim->timeout_min && asked->timeout <= lim->timeout_max) {
        out->oack.has_timeout = TRUE;
        out->oack.timeout = asked->timeout;
        out->timeout_s = asked->timeout;
    }

    if (asked->has_tsize && !(lim->refuse & TFTP_REFUSE_TSIZE)) {
        if (req->is_write) {
            if (lim->upload_max && asked->tsize > lim->upload_max)
                return TFTP_ERR_DISK_FULL;
            out->oack.has_tsize = TRUE;
            out->oack.tsize = asked->tsize;
        } else if (req->size_known && req->mode == TFTP_MODE_OCTET) {
            /* netascii changes the length on the wire; like tftp-hpa we do not guess. */
            out->oack.has_tsize = TRUE;
            out->oack.tsize = req->size;
        }
    }

    if (asked->has_windowsize && !(lim->refuse & TFTP_REFUSE_WINDOWSIZE)) {
        guint w = MIN(asked->windowsize, MAX(lim->windowsize_max, 1u));
        if (lim->window_bytes_max) {
            guint64 by_bytes = lim->window_bytes_max / out->blksize;
            w = (guint)MIN((guint64)w, MAX(by_bytes, 1u));
        }
        /* netascii's CR handling spans block edges; one block in flight keeps it simple
         * and it is only ever used for small text files. */
        if (req->mode == TFTP_MODE_NETASCII)
            w = 1;
        out->oack.has_windowsize = TRUE;
        out->oack.windowsize = w;
        out->windowsize = w;
    }
    return TFTP_ERR_UNDEFINED;
}

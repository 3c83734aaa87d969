/* net-send.c - sending helpers built on the OS layer's pb_udp_send, shared by the POSIX
 * and Windows builds (net-common.c is pure address code, linked alone by the fuzzers). */
#include "net.h"

gssize pb_udp_send_each(pb_socket_t sock, const void *buf, gsize len, gsize seg_len, gsize first,
                        const PbAddr *to, const PbAddr *local, guint32 ifindex, GError **error)
{
    g_return_val_if_fail(buf != NULL && seg_len > 0, -1);

    const guint8 *p = buf;
    gsize total = (len + seg_len - 1) / seg_len, done = first;
    while (done < total) {
        gsize bytes = MIN(seg_len, len - done * seg_len);
        g_autoptr(GError) e = NULL;
        if (pb_udp_send(sock, p + done * seg_len, bytes, to, local, ifindex, &e) < 0) {
            if (done > 0)
                break;
            g_propagate_error(error, g_steal_pointer(&e));
            return -1;
        }
        done++;
    }
    return (gssize)done;
}

/* tftp-load.c - a TFTP load client for bench/tftp.sh: N concurrent downloads of one file
 * from one process (epoll), with blksize and RFC 7440 windowsize, checking each transfer's
 * length. tftp-hpa and atftp fetch one file at a time; this drives 1,000 at once.
 *
 *   tftp-load [-n CLIENTS] [-b BLKSIZE] [-w WINDOW] [-t TIMEOUT_MS] [-e EXPECTED_BYTES]
 *             HOST PORT FILE
 *
 * Prints one line: "clients=N ok=K failed=F bytes=B seconds=S MiB/s=R". Exit status 0 when
 * every transfer completed with the expected size. Standalone (libc only) so it builds with
 * `cc -O2 -o tftp-load tftp-load.c`. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    int fd;
    struct sockaddr_in peer; /* the server's TID once known */
    int have_peer;
    uint64_t expect; /* next block (absolute) */
    uint64_t bytes;
    unsigned since_ack;
    unsigned blksize, window;
    int done, failed;
    double last_io;
    unsigned retries;
} Conn;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static size_t put_str(unsigned char *p, const char *s)
{
    size_t n = strlen(s) + 1;
    memcpy(p, s, n);
    return n;
}

static void send_rrq(Conn *c, const struct sockaddr_in *server, const char *file, unsigned blksize,
                     unsigned window)
{
    unsigned char b[512];
    size_t n = 0;
    b[n++] = 0;
    b[n++] = 1;
    n += put_str(b + n, file);
    n += put_str(b + n, "octet");
    char v[16];
    if (blksize != 512) {
        n += put_str(b + n, "blksize");
        snprintf(v, sizeof(v), "%u", blksize);
        n += put_str(b + n, v);
    }
    if (window > 1) {
        n += put_str(b + n, "windowsize");
        snprintf(v, sizeof(v), "%u", window);
        n += put_str(b + n, v);
    }
    sendto(c->fd, b, n, 0, (const struct sockaddr *)server, sizeof(*server));
}

static void send_ack(Conn *c, uint16_t block)
{
    unsigned char b[4] = {0, 4, (unsigned char)(block >> 8), (unsigned char)block};
    sendto(c->fd, b, 4, 0, (struct sockaddr *)&c->peer, sizeof(c->peer));
}

/* Parses an OACK for blksize/windowsize. */
static void read_oack(Conn *c, const unsigned char *p, ssize_t len)
{
    const unsigned char *end = p + len;
    p += 2;
    c->blksize = 512;
    c->window = 1;
    while (p < end) {
        const unsigned char *name = p;
        const unsigned char *z = memchr(p, 0, (size_t)(end - p));
        if (!z)
            break;
        const unsigned char *val = z + 1;
        const unsigned char *z2 = val < end ? memchr(val, 0, (size_t)(end - val)) : NULL;
        if (!z2)
            break;
        if (strcasecmp((const char *)name, "blksize") == 0)
            c->blksize = (unsigned)atoi((const char *)val);
        else if (strcasecmp((const char *)name, "windowsize") == 0)
            c->window = (unsigned)atoi((const char *)val);
        p = z2 + 1;
    }
}

int main(int argc, char **argv)
{
    unsigned clients = 1, blksize = 512, window = 1, timeout_ms = 1000;
    long long expected = -1;
    int opt;
    while ((opt = getopt(argc, argv, "n:b:w:t:e:")) != -1) {
        switch (opt) {
        case 'n':
            clients = (unsigned)atoi(optarg);
            break;
        case 'b':
            blksize = (unsigned)atoi(optarg);
            break;
        case 'w':
            window = (unsigned)atoi(optarg);
            break;
        case 't':
            timeout_ms = (unsigned)atoi(optarg);
            break;
        case 'e':
            expected = atoll(optarg);
            break;
        default:
            fprintf(stderr, "usage: tftp-load [-n N] [-b BLKSIZE] [-w WINDOW] [-t MS] [-e BYTES] "
                            "HOST PORT FILE\n");
            return 2;
        }
    }
    if (argc - optind != 3) {
        fprintf(stderr, "tftp-load: HOST PORT FILE expected\n");
        return 2;
    }
    struct sockaddr_in server = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)atoi(argv[optind + 1]))};
    inet_pton(AF_INET, argv[optind], &server.sin_addr);
    const char *file = argv[optind + 2];

    int ep = epoll_create1(0);
    Conn *conns = calloc(clients, sizeof(Conn));
    double t0 = now_s();
    for (unsigned i = 0; i < clients; i++) {
        Conn *c = &conns[i];
        c->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        int rcv = 4 << 20;
        setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
        c->expect = 1;
        c->blksize = 512;
        c->window = 1;
        c->last_io = t0;
        send_rrq(c, &server, file, blksize, window);
    }
    unsigned active = clients;
    static unsigned char buf[70000];
    struct epoll_event evs[256];
    while (active > 0) {
        int n = epoll_wait(ep, evs, 256, 20);
        double t = now_s();
        for (int k = 0; k < n; k++) {
            Conn *c = &conns[evs[k].data.u32];
            for (;;) {
                struct sockaddr_in from;
                socklen_t fl = sizeof(from);
                ssize_t len = recvfrom(c->fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
                if (len < 0)
                    break;
                if (c->done || len < 4)
                    continue;
                if (!c->have_peer) {
                    c->peer = from;
                    c->have_peer = 1;
                } else if (from.sin_port != c->peer.sin_port) {
                    continue;
                }
                c->last_io = t;
                c->retries = 0;
                unsigned op = (unsigned)(buf[0] << 8 | buf[1]);
                if (op == 6) { /* OACK */
                    read_oack(c, buf, len);
                    send_ack(c, 0);
                    continue;
                }
                if (op == 5) {
                    fprintf(stderr, "tftp-load: client %u: error %u %s\n",
                            (unsigned)evs[k].data.u32, (unsigned)(buf[2] << 8 | buf[3]),
                            len > 4 ? (char *)buf + 4 : "");
                    c->done = c->failed = 1;
                    active--;
                    break;
                }
                if (op != 3)
                    continue;
                uint16_t blk = (uint16_t)(buf[2] << 8 | buf[3]);
                if (blk != (uint16_t)c->expect) {
                    /* A gap or a duplicate: say what we have, once per window (RFC 7440). */
                    if (c->since_ack != (unsigned)-1) {
                        send_ack(c, (uint16_t)(c->expect - 1));
                        c->since_ack = (unsigned)-1;
                    }
                    continue;
                }
                size_t payload = (size_t)len - 4;
                c->bytes += payload;
                c->expect++;
                if (c->since_ack == (unsigned)-1)
                    c->since_ack = 0;
                c->since_ack++;
                if (payload < c->blksize) {
                    send_ack(c, blk);
                    c->done = 1;
                    active--;
                    break;
                }
                if (c->since_ack >= c->window) {
                    send_ack(c, blk);
                    c->since_ack = 0;
                }
            }
        }
        /* Client-side timeout: re-acknowledge what we have (or re-send the request). */
        for (unsigned i = 0; i < clients; i++) {
            Conn *c = &conns[i];
            if (c->done || t - c->last_io < timeout_ms / 1000.0)
                continue;
            if (++c->retries > 8) {
                c->done = c->failed = 1;
                active--;
                continue;
            }
            c->last_io = t;
            if (!c->have_peer)
                send_rrq(c, &server, file, blksize, window);
            else
                send_ack(c, (uint16_t)(c->expect - 1));
        }
    }
    double secs = now_s() - t0;
    unsigned long long total = 0;
    unsigned ok = 0, failed = 0;
    for (unsigned i = 0; i < clients; i++) {
        total += conns[i].bytes;
        if (conns[i].failed || (expected >= 0 && (long long)conns[i].bytes != expected))
            failed++;
        else
            ok++;
    }
    printf("clients=%u ok=%u failed=%u bytes=%llu seconds=%.3f MiB/s=%.1f\n", clients, ok, failed,
           total, secs, total / 1048576.0 / secs);
    return failed ? 1 : 0;
}

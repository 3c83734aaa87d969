/* pxe-load.c - a load client for the PXE boot server port (4011), which perfdhcp does not
 * speak: sends DHCPREQUESTs with option 60 PXEClient, 93 and 43.71 (boot item 0x8000) at a
 * fixed rate for a fixed time, matches replies by xid and prints what came back, the rate
 * and the 50th/99th percentile latency. With --echo it is instead a minimal responder
 * (turns each request into a BOOTREPLY and sends it back), to measure a generator's own
 * ceiling with no server cost.
 *
 *   pxe-load [--rate N/s] [--seconds S] [--bind ADDR] [--local-port P] [--discover]
 *            SERVER PORT
 *
 * --discover sends relayed DISCOVERs (giaddr = the bind address, hops 1), as perfdhcp does,
 * for the port-67 path; bind --local-port 67 so the offers sent to the relay arrive.
 *   pxe-load --echo [--bind ADDR] PORT
 *
 * Output (one line, key=value): sent received lost_pct rate p50_us p99_us. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int discover_mode; /* DISCOVER on 67, as a relay, instead of 4011 REQUEST */
static uint8_t relay_addr[4];

static size_t build(uint8_t *b, uint32_t xid)
{
    memset(b, 0, 300);
    b[0] = 1;
    b[1] = 1;
    b[2] = 6;
    memcpy(b + 4, &xid, 4);
    memcpy(b + 12, relay_addr, 4); /* ciaddr: the client has its lease when it asks 4011 */
    b[28] = 0x52;
    b[29] = 0x54;
    memcpy(b + 30, &xid, 4); /* a MAC per request: every client is new to the server */
    static const uint8_t magic[4] = {99, 130, 83, 99};
    memcpy(b + 236, magic, 4);
    size_t i = 240;
    if (discover_mode) {
        /* What perfdhcp sends: a relayed DISCOVER (hops 1, giaddr = us). */
        memset(b + 12, 0, 4);
        b[3] = 1;
        memcpy(b + 24, relay_addr, 4);
        static const uint8_t dopts[] = {53,  1,   1,   93,  2,   0,   0,   60,  32,  'P', 'X',
                                        'E', 'C', 'l', 'i', 'e', 'n', 't', ':', 'A', 'r', 'c',
                                        'h', ':', '0', '0', '0', '0', '0', ':', 'U', 'N', 'D',
                                        'I', ':', '0', '0', '2', '0', '0', '1', 255};
        memcpy(b + i, dopts, sizeof dopts);
        i += sizeof dopts;
        return i < 300 ? 300 : i;
    }
    static const uint8_t opts[] = {
        53,  1,   3,      /* REQUEST */
        93,  2,   0,   0, /* BIOS */
        60,  32,  'P', 'X', 'E', 'C', 'l', 'i', 'e',  'n',  't', ':', 'A', 'r', 'c',
        'h', ':', '0', '0', '0', '0', '0', ':', 'U',  'N',  'D', 'I', ':', '0', '0',
        '2', '0', '0', '1', 43,  7,   71,  4,   0x80, 0x00, 0,   0,   255, /* boot item 0x8000,
                                                                              layer 0 */
        255};
    memcpy(b + i, opts, sizeof opts);
    i += sizeof opts;
    return i < 300 ? 300 : i;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int echo(const char *bind_addr, int port)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, bind_addr, &a.sin_addr);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("bind");
        return 1;
    }
    for (;;) {
        uint8_t buf[1500];
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
        if (n < 240)
            continue;
        buf[0] = 2;
        /* perfdhcp acts as a relay (giaddr set): answer there, like a server would. */
        if (buf[24] | buf[25] | buf[26] | buf[27]) {
            memcpy(&from.sin_addr, buf + 24, 4);
        }
        /* DISCOVER -> OFFER, REQUEST -> ACK */
        for (ssize_t i = 240; i + 2 < n; i += 2 + buf[i + 1]) {
            if (buf[i] == 53) {
                buf[i + 2] = buf[i + 2] == 1 ? 2 : 5;
                break;
            }
            if (buf[i] == 255 || buf[i] == 0)
                break;
        }
        sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, sizeof from);
    }
}

int main(int argc, char **argv)
{
    double rate = 1000;
    double seconds = 5;
    const char *bind_addr = "127.0.0.1";
    int echo_mode = 0;
    int local_port = 0;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--rate") == 0 && i + 1 < argc)
            rate = atof(argv[++i]);
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "--bind") == 0 && i + 1 < argc)
            bind_addr = argv[++i];
        else if (strcmp(argv[i], "--echo") == 0)
            echo_mode = 1;
        else if (strcmp(argv[i], "--discover") == 0)
            discover_mode = 1;
        else if (strcmp(argv[i], "--local-port") == 0 && i + 1 < argc)
            local_port = atoi(argv[++i]);
        else
            break;
    }
    if (echo_mode) {
        if (argc - i != 1) {
            fprintf(stderr, "usage: pxe-load --echo [--bind ADDR] PORT\n");
            return 2;
        }
        return echo(bind_addr, atoi(argv[i]));
    }
    if (argc - i != 2 || rate <= 0 || seconds <= 0) {
        fprintf(stderr, "usage: pxe-load [--rate N] [--seconds S] [--bind ADDR] SERVER PORT\n");
        return 2;
    }
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[i + 1]))};
    if (inet_pton(AF_INET, argv[i], &to.sin_addr) != 1) {
        fprintf(stderr, "bad server address %s\n", argv[i]);
        return 2;
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in me = {.sin_family = AF_INET, .sin_port = htons((uint16_t)local_port)};
    inet_pton(AF_INET, bind_addr, &me.sin_addr);
    memcpy(relay_addr, &me.sin_addr, 4);
    if (bind(fd, (struct sockaddr *)&me, sizeof me) != 0) {
        perror("bind");
        return 1;
    }
    int big = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);

    size_t total = (size_t)(rate * seconds);
    uint64_t *sent_at = calloc(total, sizeof *sent_at);
    uint32_t *lat = calloc(total, sizeof *lat);
    size_t received = 0, sent = 0;
    uint32_t base = (uint32_t)now_us() << 8;
    uint64_t start = now_us();
    uint64_t end = start + (uint64_t)(seconds * 1e6);
    uint64_t drain_until = end + 500000; /* half a second for stragglers */
    uint8_t pkt[400];
    while (now_us() < drain_until) {
        uint64_t t = now_us();
        /* Send everything due by now (keeps the rate exact under scheduling jitter). */
        while (sent < total && start + (uint64_t)(sent * 1e6 / rate) <= t) {
            uint32_t xid = base + (uint32_t)sent;
            size_t n = build(pkt, xid);
            sent_at[sent] = now_us();
            if (sendto(fd, pkt, n, 0, (struct sockaddr *)&to, sizeof to) < 0 && errno != EAGAIN)
                perror("sendto");
            sent++;
        }
        /* Sleep until the next send is due or a reply arrives: a spinning generator would
         * take a CPU from the server on a 2-core machine. */
        uint64_t due = sent < total ? start + (uint64_t)(sent * 1e6 / rate) : now_us() + 10000;
        uint64_t t2 = now_us();
        uint64_t wait_us = due > t2 ? due - t2 : 0;
        struct timespec ts = {.tv_sec = (time_t)(wait_us / 1000000u),
                              .tv_nsec = (long)(wait_us % 1000000u) * 1000};
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (ppoll(&p, 1, &ts, NULL) <= 0)
            continue;
        for (;;) {
            uint8_t buf[1500];
            ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (n < 0)
                break;
            if (n < 240 || buf[0] != 2)
                continue;
            uint32_t xid;
            memcpy(&xid, buf + 4, 4);
            uint32_t seq = xid - base;
            if (seq < sent && sent_at[seq] != 0) {
                lat[received++] = (uint32_t)(now_us() - sent_at[seq]);
                sent_at[seq] = 0;
            }
        }
    }
    qsort(lat, received, sizeof *lat, cmp_u32);
    double dur = (double)(end - start) / 1e6;
    printf("sent=%zu received=%zu lost_pct=%.2f rate=%.0f p50_us=%u p99_us=%u\n", sent, received,
           sent ? 100.0 * (double)(sent - received) / (double)sent : 0.0, (double)received / dur,
           received ? lat[received / 2] : 0, received ? lat[(size_t)((double)received * 0.99)] : 0);
    free(sent_at);
    free(lat);
    return 0;
}

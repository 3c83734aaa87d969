/* tftp-mangler.c - a loopback UDP relay that duplicates and reorders datagrams, for the
 * interop test (tc netem is not everywhere). Usage:
 *   tftp-mangler LISTEN_PORT SERVER_PORT DUP_EVERY HOLD_EVERY
 * Clients talk to 127.0.0.1:LISTEN_PORT; each gets its own upstream socket to
 * 127.0.0.1:SERVER_PORT (a single-port TFTP server). In each direction every DUP_EVERY-th
 * datagram is sent twice and every HOLD_EVERY-th is held back until the next one has gone
 * (or 30 ms passed). Runs until killed; prints its counts on SIGTERM. Test helper only. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 16

typedef struct {
    unsigned char buf[65536];
    ssize_t len;
    long long since_ms;
} Held;

typedef struct {
    int up;                  /* socket towards the server */
    struct sockaddr_in addr; /* the client */
    unsigned long n[2];      /* datagrams per direction */
    Held held[2];
} Client;

static volatile sig_atomic_t stop;
static unsigned long dups, holds;

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static int udp_bind(int port)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((unsigned short)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        perror("tftp-mangler: bind");
        exit(1);
    }
    return fd;
}

static void out(int fd, const struct sockaddr_in *to, const unsigned char *b, ssize_t len)
{
    (void)sendto(fd, b, (size_t)len, 0, (const struct sockaddr *)to, sizeof(*to));
}

/* dir 0: client -> server through c->up; dir 1: server -> client through listen. */
static void relay(Client *c, int dir, int fd, const struct sockaddr_in *to, const unsigned char *b,
                  ssize_t len, int dup_every, int hold_every)
{
    unsigned long k = ++c->n[dir];
    Held *h = &c->held[dir];
    if (hold_every && k % (unsigned long)hold_every == 0 && h->len == 0) {
        memcpy(h->buf, b, (size_t)len);
        h->len = len;
        h->since_ms = now_ms();
        holds++;
        return;
    }
    out(fd, to, b, len);
    if (dup_every && k % (unsigned long)dup_every == 0) {
        out(fd, to, b, len);
        dups++;
    }
    if (h->len) { /* the held one now arrives after a later one */
        out(fd, to, h->buf, h->len);
        h->len = 0;
    }
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: tftp-mangler LISTEN_PORT SERVER_PORT DUP_EVERY HOLD_EVERY\n");
        return 2;
    }
    int lport = atoi(argv[1]), sport = atoi(argv[2]);
    int dup_every = atoi(argv[3]), hold_every = atoi(argv[4]);
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    int lfd = udp_bind(lport);
    struct sockaddr_in server = {.sin_family = AF_INET,
                                 .sin_port = htons((unsigned short)sport),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    static Client clients[MAX_CLIENTS];
    int n = 0;
    static unsigned char buf[65536];
    while (!stop) {
        struct pollfd p[1 + MAX_CLIENTS];
        p[0] = (struct pollfd){.fd = lfd, .events = POLLIN};
        for (int i = 0; i < n; i++)
            p[1 + i] = (struct pollfd){.fd = clients[i].up, .events = POLLIN};
        int r = poll(p, (nfds_t)(1 + n), 10);
        if (r < 0)
            continue;
        if (p[0].revents & POLLIN) {
            struct sockaddr_in from;
            socklen_t fl = sizeof(from);
            ssize_t len = recvfrom(lfd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
            if (len >= 0) {
                Client *c = NULL;
                for (int i = 0; i < n; i++)
                    if (clients[i].addr.sin_port == from.sin_port &&
                        clients[i].addr.sin_addr.s_addr == from.sin_addr.s_addr)
                        c = &clients[i];
                if (c == NULL) {
                    if (n == MAX_CLIENTS) { /* recycle the oldest */
                        close(clients[0].up);
                        memmove(clients, clients + 1, sizeof(Client) * (MAX_CLIENTS - 1));
                        n--;
                    }
                    c = &clients[n++];
                    memset(c, 0, sizeof(*c));
                    c->addr = from;
                    c->up = udp_bind(0);
                }
                relay(c, 0, c->up, &server, buf, len, dup_every, hold_every);
            }
        }
        for (int i = 0; i < n && i + 1 < 1 + MAX_CLIENTS; i++) {
            if (!(p[1 + i].revents & POLLIN))
                continue;
            ssize_t len = recv(clients[i].up, buf, sizeof(buf), 0);
            if (len >= 0)
                relay(&clients[i], 1, lfd, &clients[i].addr, buf, len, dup_every, hold_every);
        }
        long long t = now_ms();
        for (int i = 0; i < n; i++)
            for (int d = 0; d < 2; d++) {
                Held *h = &clients[i].held[d];
                if (h->len && t - h->since_ms >= 30) {
                    if (d == 0)
                        out(clients[i].up, &server, h->buf, h->len);
                    else
                        out(lfd, &clients[i].addr, h->buf, h->len);
                    h->len = 0;
                }
            }
    }
    printf("tftp-mangler: %lu duplicated, %lu reordered\n", dups, holds);
    return 0;
}

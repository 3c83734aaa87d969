/* http-flood.c - the unfriendly client of tests/test-http-daemon.sh: many connections from
 * one source address, all driven by one poll() loop, bounded in count and time.
 *
 *   http-flood trickle SRC HOST PORT N SECONDS
 *       N connections each sending a request line, then one header line a second, never
 *       the end of the header. After SECONDS prints how many the server had closed.
 *   http-flood body SRC HOST PORT N SECONDS PATH LENGTH SEND [METHOD]
 *       N connections each sending "METHOD PATH" (default POST) with Content-Length LENGTH and then
 * up to SEND bytes of body (as much as the server takes without blocking), then stalling. Prints,
 * after SECONDS or once every connection is settled, how many got an answer (and its status), how
 * many the server closed unanswered, how many are still open, and how many body bytes went out in
 * all.
 *
 * Output: one line of key=value. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    int fd;
    int state; /* 0 connecting/sending, 1 stalled, 2 answered, 3 closed */
    size_t sent, want;
    int status;
    char in[256];
    size_t in_len;
} Conn;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int connect_from(const char *src, const char *host, int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct sockaddr_in s = {.sin_family = AF_INET};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1 || inet_pton(AF_INET, src, &s.sin_addr) != 1)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&s, sizeof(s)) != 0 ||
        (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 && errno != EINPROGRESS)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads what the server says; returns 1 when it closed or answered. */
static int read_side(Conn *c)
{
    char buf[4096];
    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
        if (n > 0) {
            size_t take = (size_t)n < sizeof(c->in) - 1 - c->in_len ? (size_t)n
                                                                    : sizeof(c->in) - 1 - c->in_len;
            memcpy(c->in + c->in_len, buf, take);
            c->in_len += take;
            c->in[c->in_len] = '\0';
            int st;
            if (c->status == 0 && sscanf(c->in, "HTTP/1.%*d %d", &st) == 1)
                c->status = st;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
            c->state = c->status ? 2 : 3;
            close(c->fd);
            c->fd = -1;
            return 1;
        }
        return 0;
    }
}

static int send_all(Conn *c, const char *p, size_t len)
{
    ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
    return n < 0 ? (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOTCONN ? 0 : -1) : (int)n;
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: see the comment at the top of http-flood.c\n");
        return 2;
    }
    const char *mode = argv[1], *src = argv[2], *host = argv[3];
    int port = atoi(argv[4]), n = atoi(argv[5]);
    double seconds = argc > 6 ? atof(argv[6]) : 0;
    const char *path = argc > 7 ? argv[7] : "/";
    size_t length = argc > 8 ? strtoul(argv[8], NULL, 10) : 0;
    size_t send_max = argc > 9 ? strtoul(argv[9], NULL, 10) : 0;
    const char *method = argc > 10 ? argv[10] : "POST";
    int body = strcmp(mode, "body") == 0, trickle = strcmp(mode, "trickle") == 0;
    if (n <= 0 || n > 5000)
        return 2;

    Conn *cs = calloc((size_t)n, sizeof(Conn));
    char head[512];
    if (body)
        snprintf(head, sizeof(head),
                 "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\n"
                 "Content-Length: %zu\r\n\r\n",
                 method, path, host, length);
    else
        snprintf(head, sizeof(head), "GET /t/hello HTTP/1.1\r\nHost: %s\r\n", host);
    static char zeros[65536];
    for (int i = 0; i < n; i++) {
        cs[i].fd = connect_from(src, host, port);
        cs[i].state = cs[i].fd < 0 ? 3 : 0;
        cs[i].want = strlen(head) + (body ? send_max : 0);
    }

    struct pollfd *pfd = calloc((size_t)n, sizeof(struct pollfd));
    double start = now_s(), next_line = start + 1;
    size_t total_body = 0;
    while (now_s() - start < seconds) {
        int active = 0;
        for (int i = 0; i < n; i++) {
            pfd[i].fd = cs[i].fd;
            pfd[i].events = POLLIN | (cs[i].state == 0 ? POLLOUT : 0);
            pfd[i].revents = 0;
            if (cs[i].fd >= 0 && (cs[i].state == 0 || body))
                active++;
        }
        if (body && active == 0)
            break;
        poll(pfd, (nfds_t)n, 100);
        int line = trickle && now_s() >= next_line;
        if (line)
            next_line += 1;
        for (int i = 0; i < n; i++) {
            Conn *c = &cs[i];
            if (c->fd < 0)
                continue;
            if ((pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) && read_side(c))
                continue;
            if (c->state == 0 && (pfd[i].revents & POLLOUT)) {
                size_t hl = strlen(head);
                while (c->sent < c->want) {
                    int k = c->sent < hl
                                ? send_all(c, head + c->sent, hl - c->sent)
                                : send_all(c, zeros,
                                           c->want - c->sent < sizeof(zeros) ? c->want - c->sent
                                                                             : sizeof(zeros));
                    if (k <= 0) {
                        if (k < 0) {
                            close(c->fd);
                            c->fd = -1;
                            c->state = c->status ? 2 : 3;
                        }
                        break;
                    }
                    if (c->sent >= hl)
                        total_body += (size_t)k;
                    else if (c->sent + (size_t)k > hl)
                        total_body += c->sent + (size_t)k - hl;
                    c->sent += (size_t)k;
                }
                if (c->fd >= 0 && c->sent >= c->want)
                    c->state = 1;
            }
            if (line && c->fd >= 0 && c->state == 1)
                send_all(c, "X-Trickle: 1\r\n", 14);
        }
    }
    int answered = 0, closed = 0, open_ = 0, codes[6] = {0};
    for (int i = 0; i < n; i++) {
        if (cs[i].fd >= 0 && (read_side(&cs[i]), cs[i].fd >= 0))
            open_++;
        else if (cs[i].status)
            answered++;
        else
            closed++;
        if (cs[i].status >= 100 && cs[i].status < 600)
            codes[cs[i].status / 100]++;
    }
    printf("answered=%d closed=%d open=%d 2xx=%d 4xx=%d 5xx=%d body_bytes=%zu seconds=%.1f\n",
           answered, closed, open_, codes[2], codes[4], codes[5], total_body, now_s() - start);
    /* 413 count separately: what the body test asserts. */
    int c413 = 0;
    for (int i = 0; i < n; i++)
        c413 += cs[i].status == 413;
    printf("413=%d\n", c413);
    fflush(stdout);
    for (int i = 0; i < n; i++)
        if (cs[i].fd >= 0)
            close(cs[i].fd);
    free(pfd);
    free(cs);
    return 0;
}

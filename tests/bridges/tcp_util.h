/*  tests/bridges/tcp_util.h - plain-socket helpers for the TCP and LineReceiver suites
 *
 *  The tests talk to the reactor's transports through ordinary blocking or non-blocking sockets on
 * 127.0.0.1, and run the reactor with zt_reactor_iterate until a condition holds. A wait is
 * bounded by a number of passes (each sleeping at most 10 ms in the poll), never by a sleep.  */
#ifndef ZTWIST_TESTS_TCP_UTIL_H
#define ZTWIST_TESTS_TCP_UTIL_H

#include <ztwist/reactor.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The most passes a wait runs: with 10 ms polls, about 20 s when nothing happens. */
#define TCP_UTIL_PASSES 2000

/* Run the reactor until *flag is true (or the pass bound is hit); returns *flag. */
static inline bool
tcp_util_run_until(zt_reactor_t *r, const bool *flag)
{
    for (int i = 0; i < TCP_UTIL_PASSES && !*flag; i++)
        zt_reactor_iterate(r, 0.01);
    return *flag;
}

/* Run a few passes that do not wait long: lets queued work (flushes, closes) happen. */
static inline void
tcp_util_spin(zt_reactor_t *r, int passes)
{
    for (int i = 0; i < passes; i++)
        zt_reactor_iterate(r, 0.001);
}

/* A blocking client socket connected to 127.0.0.1:port (the kernel completes the handshake into
 * the listen backlog), or -1. */
static inline int
tcp_util_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Send all of data on a blocking socket; true when it all went. */
static inline bool
tcp_util_send_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* Read without blocking into buf[*got..cap) while running the reactor, until want bytes are in or
 * the peer closed (*eof). Returns the bytes read so far. */
static inline size_t
tcp_util_read(zt_reactor_t *r, int fd, char *buf, size_t cap, size_t want, bool *eof)
{
    size_t got = 0;
    *eof = false;
    for (int i = 0; i < TCP_UTIL_PASSES && got < want && !*eof; i++) {
        zt_reactor_iterate(r, 0.005);
        for (;;) {
            ssize_t n = recv(fd, buf + got, cap - got, MSG_DONTWAIT);
            if (n > 0) {
                got += (size_t)n;
                if (got == cap)
                    return got;
                continue;
            }
            if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
                *eof = true;
            break;
        }
    }
    return got;
}

/* Read and drop everything until the peer closes; returns the bytes drained. */
static inline size_t
tcp_util_drain_to_eof(zt_reactor_t *r, int fd, bool *eof)
{
    static const size_t chunk = 65536;
    char buf[65536];
    size_t total = 0;
    *eof = false;
    for (int i = 0; i < TCP_UTIL_PASSES * 10 && !*eof; i++) {
        zt_reactor_iterate(r, 0.002);
        for (;;) {
            ssize_t n = recv(fd, buf, chunk, MSG_DONTWAIT);
            if (n > 0) {
                total += (size_t)n;
                continue;
            }
            if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
                *eof = true;
            break;
        }
    }
    return total;
}

/* The number of open file descriptors of this process. */
static inline int
tcp_util_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

#endif

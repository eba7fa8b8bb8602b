/*
 * A small CPU-bound web service for the tests, the benchmarks and the demo: each request to /
 * burns WORK_MS milliseconds of this process's CPU time, then answers 200 with the container's
 * hostname, so a client can tell which replica served it. /healthz answers at once.
 *
 * One request at a time, each on its own connection (Connection: close): CPU-bound work on a
 * fraction of a core is served one after another whatever the concurrency, and a proxy in
 * front opens a connection a request, as one to a pool of replicas does.
 *
 * SIGTERM is a graceful stop: the connections already waiting in the listen backlog are served,
 * then the listening socket is closed (a proxy's next dial is refused, and it tries another
 * replica), the one in hand finishes, and it exits 0.
 *
 * Built static by scripts/web-images.sh: gcc -O2 -static -o webapp webapp.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stopping = 0;

static void on_term(int sig) {
    (void)sig;
    stopping = 1;
}

static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Spin until this process has used `ms` more milliseconds of CPU time: under a CPU limit the
 * wall time it takes grows with the throttling, as a real CPU-bound handler's does. */
static void burn(double ms) {
    double until = cpu_seconds() + ms / 1000.0;
    volatile unsigned long x = 0;
    while (cpu_seconds() < until) {
        for (int i = 0; i < 1000; i++) x += (unsigned long)i;
    }
}

static void reply(int fd, int status, const char *body) {
    char head[256];
    const char *text = status == 200 ? "OK" : "Not Found";
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, text, strlen(body));
    if (write(fd, head, (size_t)n) < 0 || write(fd, body, strlen(body)) < 0) {
        /* The client went away: nothing to do. */
    }
}

static void serve(int fd, double work_ms, const char *hostname) {
    struct timeval timeout = {.tv_sec = 5, .tv_usec = 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    char request[4096];
    size_t used = 0;
    while (used < sizeof request - 1) {
        ssize_t got = read(fd, request + used, sizeof request - 1 - used);
        if (got <= 0) break;
        used += (size_t)got;
        request[used] = '\0';
        if (strstr(request, "\r\n\r\n")) break;
    }
    request[used] = '\0';
    char body[300];
    snprintf(body, sizeof body, "%s\n", hostname);
    if (strncmp(request, "GET /healthz", 12) == 0) {
        reply(fd, 200, "ok\n");
    } else if (strncmp(request, "GET / ", 6) == 0 || strncmp(request, "GET /?", 6) == 0) {
        burn(work_ms);
        reply(fd, 200, body);
    } else if (used > 0) {
        reply(fd, 404, "not found\n");
    }
    shutdown(fd, SHUT_WR);
    close(fd);
}

int main(void) {
    const char *port_env = getenv("PORT");
    const char *work_env = getenv("WORK_MS");
    int port = port_env ? atoi(port_env) : 8080;
    double work_ms = work_env ? atof(work_env) : 10.0;
    char hostname[256] = "unknown";
    gethostname(hostname, sizeof hostname - 1);

    struct sigaction term = {0};
    term.sa_handler = on_term;
    sigaction(SIGTERM, &term, NULL);
    sigaction(SIGINT, &term, NULL);
    signal(SIGPIPE, SIG_IGN);

    int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port),
                               .sin_addr = {.s_addr = htonl(INADDR_ANY)}};
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(listener, 128) < 0) {
        perror("webapp: listen");
        return 1;
    }
    fcntl(listener, F_SETFL, O_NONBLOCK);
    fprintf(stderr, "webapp: %s serving on :%d, %.1f ms of CPU a request\n", hostname, port,
            work_ms);

    while (!stopping) {
        struct pollfd ready = {.fd = listener, .events = POLLIN};
        if (poll(&ready, 1, 200) <= 0) continue; /* a signal, or a timeout to look at `stopping` */
        int fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0) {
            int blocking = fcntl(fd, F_GETFL) & ~O_NONBLOCK;
            fcntl(fd, F_SETFL, blocking);
            serve(fd, work_ms, hostname);
        }
    }
    /* Stopping: serve what the kernel already accepted, then refuse the rest. */
    int fd;
    while ((fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
        int blocking = fcntl(fd, F_GETFL) & ~O_NONBLOCK;
        fcntl(fd, F_SETFL, blocking);
        serve(fd, work_ms, hostname);
    }
    close(listener);
    fprintf(stderr, "webapp: %s stopped\n", hostname);
    return 0;
}

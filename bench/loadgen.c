// Open-loop HTTP/1.1 load generator for bench/run.sh.
//
// Request i is scheduled at start + i / rate, whatever happened before it. When its time comes it goes out on an
// idle keep-alive connection, or waits in a queue until one is free. Its latency is measured from the scheduled
// time, not from the moment it was written, so a stall of the server shows up as latency of every request that
// should have gone out during the stall (no coordinated omission, as in wrk2).
//
//   loadgen -p PORT [-H 127.0.0.1] [-u /path] [-r 1000] [-d 10] [-w 1] [-c 16] [-t 5] [-o FILE]
//
// -w seconds of warm-up at the same rate, on the same connections, whose latencies are not recorded.
// -o writes one line per measured request, "scheduled_ms latency_ms" (-1 unanswered, -2 failed), to find stalls in time.
// -t how long to wait for the last answers after the schedule ends; what is still open then counts as a timeout.
// Prints one line of key=value pairs (latencies in milliseconds) and exits 0, or 1 when nothing was measured.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE 65536

enum phase { HEADERS, BODY, CHUNK_SIZE, CHUNK_DATA, CHUNK_CRLF, TRAILERS };

typedef struct {
    int fd;
    int busy;
    long index;  // the scheduled request this connection carries
    enum phase phase;
    long long remaining;
    int status;
    int close_after;
    size_t len;
    char buf[BUF_SIZE];
} conn_t;

static const char *host = "127.0.0.1";
static int port = 0;
static const char *path = "/";
static double rate = 1000, duration = 10, warmup = 1, drain_timeout = 5;
static int nconns = 16;
static const char *dump_path = NULL;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static conn_t *conns;
static int epfd;
static char request[1024];
static size_t request_len;

static int *idle_stack;
static int idle_count;
static long *queue;  // pending request indices, in schedule order
static long queue_head, queue_tail;
static int64_t *latency;  // per scheduled request; -1 while unanswered
static long completed, errors, non2xx, reconnects;
static long total, warm;
static int64_t start;
static double interval_ns;

static int64_t scheduled(long i) { return start + (int64_t)(i * interval_ns); }

static int open_conn(conn_t *c) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &addr.sin_addr);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
    c->fd = fd;
    c->busy = 0;
    c->len = 0;
    c->phase = HEADERS;
    return 0;
}

static void reset_conn(conn_t *c) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    reconnects++;
    if (open_conn(c) != 0) {
        fprintf(stderr, "loadgen: cannot reconnect to %s:%d: %s\n", host, port, strerror(errno));
        exit(2);
    }
}

static void finish(conn_t *c, int ok) {
    long i = c->index;
    if (ok) {
        latency[i] = now_ns() - scheduled(i);
        completed++;
        if (c->status < 200 || c->status > 299) non2xx++;
    } else {
        latency[i] = -2;
        errors++;
    }
    c->busy = 0;
    c->len = 0;
    c->phase = HEADERS;
    if (!ok || c->close_after) reset_conn(c);
    idle_stack[idle_count++] = (int)(c - conns);
}

static void consume(conn_t *c, size_t n) {
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

static char *find_crlf(conn_t *c) { return memmem(c->buf, c->len, "\r\n", 2); }

// Parses what is buffered; returns 1 when the response is complete, 0 when more bytes are needed, -1 on garbage.
static int parse(conn_t *c) {
    for (;;) {
        switch (c->phase) {
        case HEADERS: {
            char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
            if (!end) return c->len == BUF_SIZE ? -1 : 0;
            size_t header_len = (size_t)(end - c->buf) + 4;
            if (c->len < 12 || strncmp(c->buf, "HTTP/1.", 7) != 0) return -1;
            c->status = atoi(c->buf + 9);
            c->close_after = 0;
            long long length = -1;
            int chunked = 0;
            char *line = memmem(c->buf, header_len, "\r\n", 2) + 2;
            while (line < end) {
                char *eol = memmem(line, (size_t)(end + 2 - line), "\r\n", 2);
                size_t n = (size_t)(eol - line);
                if (n > 15 && strncasecmp(line, "content-length:", 15) == 0) length = atoll(line + 15);
                else if (n > 18 && strncasecmp(line, "transfer-encoding:", 18) == 0 && memmem(line, n, "chunked", 7)) chunked = 1;
                else if (n > 11 && strncasecmp(line, "connection:", 11) == 0 && memmem(line, n, "close", 5)) c->close_after = 1;
                line = eol + 2;
            }
            consume(c, header_len);
            if (chunked) c->phase = CHUNK_SIZE;
            else if (length > 0) { c->phase = BODY; c->remaining = length; }
            else if (length == 0 || c->status == 204 || c->status == 304) return 1;
            else return -1;  // read-until-close bodies are not used by any peer here
            break;
        }
        case BODY:
        case CHUNK_DATA: {
            size_t take = c->len < (size_t)c->remaining ? c->len : (size_t)c->remaining;
            consume(c, take);
            c->remaining -= (long long)take;
            if (c->remaining > 0) return 0;
            if (c->phase == BODY) return 1;
            c->phase = CHUNK_CRLF;
            break;
        }
        case CHUNK_CRLF:
            if (c->len < 2) return 0;
            consume(c, 2);
            c->phase = CHUNK_SIZE;
            break;
        case CHUNK_SIZE: {
            char *eol = find_crlf(c);
            if (!eol) return 0;
            long long size = strtoll(c->buf, NULL, 16);
            consume(c, (size_t)(eol - c->buf) + 2);
            if (size == 0) c->phase = TRAILERS;
            else { c->phase = CHUNK_DATA; c->remaining = size; }
            break;
        }
        case TRAILERS: {
            char *eol = find_crlf(c);
            if (!eol) return 0;
            int empty = eol == c->buf;
            consume(c, (size_t)(eol - c->buf) + 2);
            if (empty) return 1;
            break;
        }
        }
    }
}

static void on_readable(conn_t *c) {
    for (;;) {
        ssize_t n = read(c->fd, c->buf + c->len, BUF_SIZE - c->len);
        if (n > 0) {
            c->len += (size_t)n;
            if (!c->busy) {  // bytes nobody asked for
                reset_conn(c);
                return;
            }
            int r = parse(c);
            if (r == 1) { finish(c, 1); return; }
            if (r < 0) { finish(c, 0); return; }
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR)) {  // closed by the server
            if (c->busy) finish(c, 0);
            else reset_conn(c);
            return;
        }
        if (errno == EAGAIN) return;
    }
}

static void dispatch(void) {
    while (queue_head < queue_tail && idle_count > 0) {
        conn_t *c = &conns[idle_stack[--idle_count]];
        c->index = queue[queue_head++];
        c->busy = 1;
        c->len = 0;
        c->phase = HEADERS;
        ssize_t n = write(c->fd, request, request_len);
        if (n != (ssize_t)request_len) finish(c, 0);  // a small request on an idle socket always fits
    }
}

static int cmp64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int opt;
    while ((opt = getopt(argc, argv, "H:p:u:r:d:w:c:t:o:")) != -1) {
        switch (opt) {
        case 'H': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'u': path = optarg; break;
        case 'r': rate = atof(optarg); break;
        case 'd': duration = atof(optarg); break;
        case 'w': warmup = atof(optarg); break;
        case 'c': nconns = atoi(optarg); break;
        case 't': drain_timeout = atof(optarg); break;
        case 'o': dump_path = optarg; break;
        default:
            fprintf(stderr, "usage: loadgen -p PORT [-H host] [-u path] [-r rate] [-d seconds] [-w warmup] [-c conns] [-t drain] [-o file]\n");
            return 2;
        }
    }
    if (port <= 0 || rate <= 0 || duration <= 0 || nconns <= 0 || rate * (duration + warmup) > 5e6) {
        fprintf(stderr, "loadgen: need -p PORT, a positive rate, duration and connections, and at most 5M requests\n");
        return 2;
    }
    prctl(PR_SET_TIMERSLACK, 1UL);  // wake up on time, not up to 50 us late
    request_len = (size_t)snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: berth-loadgen\r\n\r\n", path, host, port);

    interval_ns = 1e9 / rate;
    warm = (long)(warmup * rate);
    total = warm + (long)(duration * rate);
    latency = malloc(sizeof(int64_t) * (size_t)total);
    queue = malloc(sizeof(long) * (size_t)total);
    conns = calloc((size_t)nconns, sizeof(conn_t));
    idle_stack = malloc(sizeof(int) * (size_t)nconns);
    epfd = epoll_create1(0);
    for (long i = 0; i < total; i++) latency[i] = -1;
    for (int i = 0; i < nconns; i++) {
        if (open_conn(&conns[i]) != 0) {
            fprintf(stderr, "loadgen: cannot connect to %s:%d: %s\n", host, port, strerror(errno));
            return 2;
        }
        idle_stack[idle_count++] = i;
    }

    struct epoll_event events[256];
    start = now_ns() + 1000000;  // 1 ms from now
    long next = 0;
    int64_t schedule_end = scheduled(total);
    int64_t hard_end = schedule_end + (int64_t)(drain_timeout * 1e9);
    int64_t max_queue = 0;
    for (;;) {
        int64_t now = now_ns();
        while (next < total && scheduled(next) <= now) queue[queue_tail++] = next++;
        if (queue_tail - queue_head > max_queue) max_queue = queue_tail - queue_head;
        dispatch();
        if (next == total && completed + errors == total) break;
        if (now >= hard_end) break;
        int64_t wait = next < total ? scheduled(next) - now : 10000000;
        if (wait < 0) wait = 0;
        if (wait > 10000000) wait = 10000000;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = wait};
        int n = epoll_pwait2(epfd, events, 256, &ts, NULL);
        for (int i = 0; i < n; i++) on_readable(events[i].data.ptr);
    }
    double elapsed = (double)(now_ns() - start) / 1e9;

    // Only the measured part: after warm-up. Unanswered ones are timeouts; they count as errors.
    long measured = total - warm, ok = 0, timeouts = 0, failed = 0;
    int64_t *sorted = malloc(sizeof(int64_t) * (size_t)measured);
    double sum = 0;
    for (long i = warm; i < total; i++) {
        if (latency[i] >= 0) { sorted[ok++] = latency[i]; sum += (double)latency[i]; }
        else if (latency[i] == -1) timeouts++;
        else failed++;
    }
    if (dump_path != NULL) {
        FILE *dump = fopen(dump_path, "w");
        if (dump == NULL) {
            fprintf(stderr, "loadgen: cannot write %s: %s\n", dump_path, strerror(errno));
            return 2;
        }
        for (long i = warm; i < total; i++)
            fprintf(dump, "%.3f %.4f\n", (double)(scheduled(i) - start) / 1e6, latency[i] >= 0 ? (double)latency[i] / 1e6 : (double)latency[i]);
        fclose(dump);
    }
    if (ok == 0) {
        printf("requests=%ld ok=0 errors=%ld timeouts=%ld\n", measured, failed, timeouts);
        return 1;
    }
    qsort(sorted, (size_t)ok, sizeof(int64_t), cmp64);
#define PCT(p) ((double)sorted[(long)((double)(ok - 1) * (p))] / 1e6)
    printf("requests=%ld ok=%ld errors=%ld timeouts=%ld non2xx=%ld reconnects=%ld rate=%.1f elapsed_s=%.2f max_queue=%lld "
           "mean_ms=%.4f p50_ms=%.4f p90_ms=%.4f p99_ms=%.4f p999_ms=%.4f max_ms=%.4f\n",
           measured, ok, failed, timeouts, non2xx, reconnects, rate, elapsed, (long long)max_queue, sum / (double)ok / 1e6,
           PCT(0.50), PCT(0.90), PCT(0.99), PCT(0.999), (double)sorted[ok - 1] / 1e6);
    return 0;
}

// The floor under Berth's request path: what libzmq alone costs to carry one request and its answer in Berth's
// shape, with no HTTP, no protobuf and no Swift.
//
// Three processes, the same sockets and options as Berth's (DEALER to a ROUTER frontend, ROUTER backend to a
// DEALER sidecar, the answer straight back on a DEALER to the edge's own ROUTER over ipc://, LINGER 0,
// IMMEDIATE 1, ROUTER_MANDATORY), the same frames (routing, a 100-byte envelope, a 62-byte body), and a
// Delivered note from the sidecar to the router for every 16 answers. The edge keeps N requests in flight.
// Each process measures its own CPU time (all its threads, libzmq's I/O thread too) over the measured window.
//
//   bus_floor [-H 3|2] [-c 32] [-d 5] [-w 1]
//
// -H 3: edge -> router -> sidecar -> edge (Berth today); -H 2: edge -> sidecar -> edge (a router off the path).
// Prints one line of key=value pairs: requests per second, and each process's CPU microseconds per request (all_us for
// the three together).
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

static int hops = 3, inflight = 32;
static const char *me = "main";
static double duration = 5, warmup = 1;
static char frontend[64], backend[64], direct[64], reply[128];
static int64_t t_start, t_measure, t_end;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t cpu_ns(void) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return ((int64_t)usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000000000LL
        + ((int64_t)usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1000LL;
}

static void die(const char *what) {
    fprintf(stderr, "bus_floor (%s): %s: %s\n", me, what, zmq_strerror(zmq_errno()));
    exit(1);
}

static void *make_socket(void *context, int type) {
    void *socket = zmq_socket(context, type);
    if (!socket) die("zmq_socket");
    int zero = 0, one = 1, hwm = 10000;
    zmq_setsockopt(socket, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(socket, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(socket, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (type == ZMQ_DEALER) zmq_setsockopt(socket, ZMQ_IMMEDIATE, &one, sizeof one);
    if (type == ZMQ_ROUTER) zmq_setsockopt(socket, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    return socket;
}

// Receives one whole message, up to 8 frames, without blocking. Returns the frame count, 0 when none is waiting.
static int receive(void *socket, zmq_msg_t *frames) {
    int count = 0, more = 1;
    while (more && count < 8) {
        zmq_msg_init(&frames[count]);
        if (zmq_msg_recv(&frames[count], socket, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&frames[count]);
            if (count == 0 && zmq_errno() == EAGAIN) return 0;
            die("zmq_msg_recv");
        }
        more = zmq_msg_more(&frames[count]);
        count++;
    }
    return count;
}

// Sends frames[from..<count], the first `prefix` frames of `head` before them; closes what it sends.
static void send(void *socket, zmq_msg_t *head, int prefix, zmq_msg_t *frames, int from, int count) {
    for (int i = 0; i < prefix; i++)
        if (zmq_msg_send(&head[i], socket, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) die("zmq_msg_send");
    for (int i = from; i < count; i++)
        if (zmq_msg_send(&frames[i], socket, (i + 1 < count ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT) < 0) die("zmq_msg_send");
}

static void send_bytes(void *socket, const void *bytes, size_t size, int flags) {
    if (zmq_send(socket, bytes, size, flags | ZMQ_DONTWAIT) < 0) die("zmq_send");
}

// Reports the role's CPU time over the measured window, then closes its two sockets and its context.
static void finish(int64_t cpu, long requests, void *context, void *a, void *b) {
    printf("%s cpu_ns=%lld requests=%ld\n", me, (long long)cpu, requests);
    fflush(stdout);
    zmq_close(a);
    zmq_close(b);
    zmq_ctx_term(context);
}

// Edge: N requests in flight on its DEALER, answers on its own ROUTER.
static void run_edge(void) {
    me = "edge";
    void *context = zmq_ctx_new();
    void *out = make_socket(context, ZMQ_DEALER);
    void *answers = make_socket(context, ZMQ_ROUTER);
    if (zmq_bind(answers, reply) < 0) die("bind reply endpoint");
    if (zmq_connect(out, hops == 3 ? frontend : direct) < 0) die("connect");
    char envelope[100], body[62];
    memset(envelope, 'e', sizeof envelope);
    memset(body, 'b', sizeof body);
    // Wait for the path to be up: a first request answered.
    usleep(500000);
    long sent = 0, answered = 0, counted = 0;
    int64_t cpu_at_measure = 0, cpu_at_end = 0;
    int measuring = 0;
    for (; sent < inflight; sent++) {
        send_bytes(out, envelope, sizeof envelope, ZMQ_SNDMORE);
        send_bytes(out, body, sizeof body, 0);
    }
    zmq_pollitem_t items[] = {{answers, 0, ZMQ_POLLIN, 0}};
    zmq_msg_t frames[8];
    for (;;) {
        int64_t now = now_ns();
        if (!measuring && now >= t_measure) { measuring = 1; cpu_at_measure = cpu_ns(); counted = answered; }
        if (measuring == 1 && now >= t_end) { measuring = 2; cpu_at_end = cpu_ns(); counted = answered - counted; }
        // Answers still come for a moment after the window, so that the sidecar never sends to a closed link.
        if (now >= t_end + 300000000LL) break;
        if (zmq_poll(items, 1, 10) < 0 && zmq_errno() != EINTR) die("zmq_poll");
        int count;
        while ((count = receive(answers, frames)) > 0) {
            for (int i = 0; i < count; i++) zmq_msg_close(&frames[i]);
            answered++;
            send_bytes(out, envelope, sizeof envelope, ZMQ_SNDMORE);
            send_bytes(out, body, sizeof body, 0);
        }
    }
    finish(cpu_at_end - cpu_at_measure, counted, context, out, answers);
}

// Router: frontend ROUTER for edges, backend ROUTER for the sidecar; relays requests, counts notes.
static void run_router(void) {
    me = "router";
    void *context = zmq_ctx_new();
    void *front = make_socket(context, ZMQ_ROUTER);
    void *back = make_socket(context, ZMQ_ROUTER);
    if (zmq_bind(front, frontend) < 0 || zmq_bind(back, backend) < 0) die("bind");
    zmq_msg_t sidecar;
    int have_sidecar = 0;
    long relayed = 0, noted = 0;
    int64_t cpu_at_measure = 0;
    int measuring = 0;
    zmq_pollitem_t items[] = {{front, 0, ZMQ_POLLIN, 0}, {back, 0, ZMQ_POLLIN, 0}};
    zmq_msg_t frames[8];
    for (;;) {
        int64_t now = now_ns();
        if (!measuring && now >= t_measure) { measuring = 1; cpu_at_measure = cpu_ns(); relayed = 0; }
        if (now >= t_end) break;
        if (zmq_poll(items, 2, 10) < 0 && zmq_errno() != EINTR) die("zmq_poll");
        int count;
        while ((count = receive(back, frames)) > 0) {
            // [sidecar id, READY] or [sidecar id, Delivered note]
            if (!have_sidecar) { zmq_msg_init(&sidecar); zmq_msg_copy(&sidecar, &frames[0]); have_sidecar = 1; }
            else noted++;
            for (int i = 0; i < count; i++) zmq_msg_close(&frames[i]);
        }
        while (have_sidecar && (count = receive(front, frames)) > 0) {
            // [edge id, envelope, body] -> [sidecar id, edge id, envelope, body]
            zmq_msg_t head;
            zmq_msg_init(&head);
            zmq_msg_copy(&head, &sidecar);
            send(back, &head, 1, frames, 0, count);
            relayed++;
        }
    }
    finish(cpu_ns() - cpu_at_measure, relayed, context, front, back);
}

// Sidecar: takes requests (from the router, or straight from the edge), answers on its DEALER to the edge.
static void run_sidecar(void) {
    me = "sidecar";
    void *context = zmq_ctx_new();
    void *link = make_socket(context, ZMQ_DEALER);
    if (zmq_connect(link, reply) < 0) die("connect reply endpoint");
    void *in;
    if (hops == 3) {
        in = make_socket(context, ZMQ_DEALER);
        if (zmq_connect(in, backend) < 0) die("connect backend");
        usleep(100000);  // IMMEDIATE: a DEALER takes no message before its connection is up
        send_bytes(in, "READY", 5, 0);
    } else {
        in = make_socket(context, ZMQ_ROUTER);
        if (zmq_bind(in, direct) < 0) die("bind direct");
    }
    long answered = 0, counted = 0, unnoted = 0;
    int64_t cpu_at_measure = 0;
    int measuring = 0;
    zmq_pollitem_t items[] = {{in, 0, ZMQ_POLLIN, 0}};
    zmq_msg_t frames[8];
    char note[16 * 8];
    memset(note, 'n', sizeof note);
    for (;;) {
        int64_t now = now_ns();
        if (!measuring && now >= t_measure) { measuring = 1; cpu_at_measure = cpu_ns(); counted = answered; }
        if (now >= t_end) break;
        if (zmq_poll(items, 1, 10) < 0 && zmq_errno() != EINTR) die("zmq_poll");
        int count;
        while ((count = receive(in, frames)) > 0) {
            // hops 3: [edge id, envelope, body]; hops 2: [edge's DEALER id, envelope, body]
            zmq_msg_close(&frames[0]);
            send(link, NULL, 0, frames, 1, count);
            answered++;
            if (hops == 3 && ++unnoted == 16) {
                send_bytes(in, note, sizeof note, 0);
                unnoted = 0;
            }
        }
    }
    finish(cpu_ns() - cpu_at_measure, answered - counted, context, in, link);
}

int main(int argc, char **argv) {
    int option;
    while ((option = getopt(argc, argv, "H:c:d:w:")) != -1) {
        switch (option) {
        case 'H': hops = atoi(optarg); break;
        case 'c': inflight = atoi(optarg); break;
        case 'd': duration = atof(optarg); break;
        case 'w': warmup = atof(optarg); break;
        default:
            fprintf(stderr, "usage: bus_floor [-H 3|2] [-c 32] [-d 5] [-w 1]\n");
            return 2;
        }
    }
    if (hops != 2 && hops != 3) { fprintf(stderr, "bus_floor: -H is 2 or 3\n"); return 2; }
    int base = 20000 + (getpid() % 10000);
    snprintf(frontend, sizeof frontend, "tcp://127.0.0.1:%d", base);
    snprintf(backend, sizeof backend, "tcp://127.0.0.1:%d", base + 1);
    snprintf(direct, sizeof direct, "tcp://127.0.0.1:%d", base + 2);
    snprintf(reply, sizeof reply, "ipc:///tmp/bus-floor-%d.sock", getpid());
    t_start = now_ns();
    t_measure = t_start + (int64_t)((0.5 + warmup) * 1e9);
    t_end = t_measure + (int64_t)(duration * 1e9);

    int pipes[2];
    if (pipe(pipes) < 0) return 1;
    void (*roles[])(void) = {run_router, run_sidecar, run_edge};
    pid_t children[3];
    int first = hops == 3 ? 0 : 1;
    for (int i = first; i < 3; i++) {
        children[i] = fork();
        if (children[i] == 0) {
            dup2(pipes[1], 1);
            close(pipes[0]);
            if (i > first) usleep(50000 * (i - first));
            roles[i]();
            _exit(0);
        }
    }
    close(pipes[1]);
    FILE *results = fdopen(pipes[0], "r");
    char role[16];
    long long cpu;
    long requests, edge_requests = 0;
    long long total = 0;
    char lines[3][128];
    int n = 0;
    while (n < 3 && fscanf(results, "%15s cpu_ns=%lld requests=%ld", role, &cpu, &requests) == 3) {
        if (strcmp(role, "edge") == 0) edge_requests = requests;
        snprintf(lines[n++], sizeof lines[0], "%s %lld", role, cpu);
        total += cpu;
    }
    for (int i = first; i < 3; i++) waitpid(children[i], NULL, 0);
    unlink(reply + strlen("ipc://"));
    if (edge_requests == 0) { fprintf(stderr, "bus_floor: no request was answered\n"); return 1; }
    printf("hops=%d inflight=%d req_per_s=%.0f", hops, inflight, edge_requests / duration);
    for (int i = 0; i < n; i++) {
        char name[16];
        long long ns;
        sscanf(lines[i], "%15s %lld", name, &ns);
        printf(" %s_us=%.2f", name, ns / 1000.0 / edge_requests);
    }
    printf(" all_us=%.2f\n", total / 1000.0 / edge_requests);
    return 0;
}

/* Bare libzmq reference for the cluster benchmark (tests/bench/cluster.sh):
 * what a CURVE DEALER -> ROUTER pair over 127.0.0.1 TCP costs without
 * Pergola, set up as Pergola's nodes are (CURVE, DEALER to ROUTER).
 *
 *   pergola-bench-zmq-bare rtt N [BYTES]        N round trips of a BYTES message (default 64)
 *   pergola-bench-zmq-bare stream MIB [FRAME_MIB] MIB MiB in frames of FRAME_MIB (default 64),
 *                                                sent zero-copy, received by another thread
 *
 * Prints one line of "key value" pairs (times in microseconds, rates in MiB/s). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what)
{
    fprintf(stderr, "zmq_bare: %s: %s\n", what, zmq_strerror(zmq_errno()));
    exit(2);
}

static void *ctx, *router, *dealer;

static void setup(void)
{
    char spub[41], ssec[41], cpub[41], csec[41];
    if (!zmq_has("curve")) {
        fprintf(stderr, "zmq_bare: this libzmq has no CURVE\n");
        exit(2);
    }
    zmq_curve_keypair(spub, ssec);
    zmq_curve_keypair(cpub, csec);
    ctx = zmq_ctx_new();
    router = zmq_socket(ctx, ZMQ_ROUTER);
    dealer = zmq_socket(ctx, ZMQ_DEALER);
    int one = 1, zero = 0, hwm = 1000;
    zmq_setsockopt(router, ZMQ_CURVE_SERVER, &one, sizeof one);
    zmq_setsockopt(router, ZMQ_CURVE_SECRETKEY, ssec, 40);
    zmq_setsockopt(router, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(router, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (zmq_bind(router, "tcp://127.0.0.1:*") != 0) die("bind");
    char ep[128];
    size_t n = sizeof ep;
    zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, ep, &n);
    zmq_setsockopt(dealer, ZMQ_ROUTING_ID, "a", 1);
    zmq_setsockopt(dealer, ZMQ_CURVE_SERVERKEY, spub, 40);
    zmq_setsockopt(dealer, ZMQ_CURVE_PUBLICKEY, cpub, 40);
    zmq_setsockopt(dealer, ZMQ_CURVE_SECRETKEY, csec, 40);
    zmq_setsockopt(dealer, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_connect(dealer, ep) != 0) die("connect");
    /* One exchange so that the handshake is not timed. */
    if (zmq_send(dealer, "x", 1, 0) < 0) die("send");
    char buf[16];
    zmq_recv(router, buf, sizeof buf, 0);
    zmq_recv(router, buf, sizeof buf, 0);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void rtt(int count, size_t bytes)
{
    char *msg = calloc(1, bytes ? bytes : 1);
    char *buf = malloc(bytes + 64);
    double *t = malloc(sizeof *t * (size_t)count);
    for (int i = 0; i < count; i++) {
        double t0 = now_s();
        zmq_send(dealer, msg, bytes, 0);
        char id[16];
        int idl = zmq_recv(router, id, sizeof id, 0);
        int n = zmq_recv(router, buf, bytes + 64, 0);
        zmq_send(router, id, (size_t)idl, ZMQ_SNDMORE);
        zmq_send(router, buf, (size_t)n, 0);
        zmq_recv(dealer, buf, bytes + 64, 0);
        t[i] = (now_s() - t0) * 1e6;
    }
    qsort(t, (size_t)count, sizeof *t, cmp_double);
    printf("rtt_count %d rtt_bytes %zu rtt_min_us %.1f rtt_median_us %.1f rtt_p90_us %.1f\n", count,
           bytes, t[0], t[count / 2], t[count * 9 / 10]);
    free(msg);
    free(buf);
    free(t);
}

static long long stream_frames;

static void *receiver(void *arg)
{
    (void)arg;
    for (long long i = 0; i < stream_frames; i++) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        zmq_msg_recv(&m, router, 0); /* routing id */
        zmq_msg_close(&m);
        zmq_msg_init(&m);
        zmq_msg_recv(&m, router, 0);
        zmq_msg_close(&m);
    }
    return NULL;
}

static void no_free(void *data, void *hint)
{
    (void)data;
    (void)hint;
}

static void stream(long long mib, long long frame_mib)
{
    size_t frame = (size_t)frame_mib << 20;
    stream_frames = (mib + frame_mib - 1) / frame_mib;
    char *buf = malloc(frame);
    memset(buf, 1, frame); /* touched: no page faults in the timed part */
    pthread_t th;
    double t0 = now_s();
    pthread_create(&th, NULL, receiver, NULL);
    for (long long i = 0; i < stream_frames; i++) {
        zmq_msg_t m;
        /* Zero-copy, as Pergola sends tiles (the buffer outlives the send). */
        zmq_msg_init_data(&m, buf, frame, no_free, NULL);
        if (zmq_msg_send(&m, dealer, 0) < 0) die("send");
    }
    pthread_join(th, NULL);
    double dt = now_s() - t0;
    printf("stream_mib %lld stream_frame_mib %lld stream_s %.3f stream_mib_s %.1f\n",
           stream_frames * frame_mib, frame_mib, dt, (double)(stream_frames * frame_mib) / dt);
    free(buf);
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "rtt") == 0) {
        int n = atoi(argv[2]);
        size_t bytes = argc > 3 ? (size_t)atol(argv[3]) : 64;
        if (n < 1) n = 1;
        setup();
        rtt(n, bytes);
    } else if (argc >= 3 && strcmp(argv[1], "stream") == 0) {
        long long mib = atoll(argv[2]), frame = argc > 3 ? atoll(argv[3]) : 64;
        if (mib < 1 || frame < 1) {
            fprintf(stderr, "zmq_bare: stream MIB [FRAME_MIB], both >= 1\n");
            return 2;
        }
        setup();
        stream(mib, frame);
    } else {
        fprintf(stderr, "usage: %s rtt N [BYTES] | stream MIB [FRAME_MIB]\n", argv[0]);
        return 2;
    }
    zmq_close(dealer);
    zmq_close(router);
    zmq_ctx_term(ctx);
    return 0;
}

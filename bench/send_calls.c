/*
 * What the kernel charges for sending one small frame as one buffer (send(2)) or as its header
 * and payload (sendmsg(2) of two), the answer behind WHOLE_BELOW in src/wsdoctor/aio/_wire.py.
 *
 * One process, a TCP connection on loopback; each step sends a frame on one end and reads it on
 * the other, so a step's CPU time is what a server's send and a client's read cost together on
 * one core. The two ways alternate, block by block (a slow minute slows both), and the figures
 * are the minimum and the tenth percentile over the blocks, in ns per step. "copy + send" also
 * allocates and copies the frame, as the server does for a small message.
 *
 *     cc -O2 -o /tmp/send_calls bench/send_calls.c
 *     taskset -c 1 /tmp/send_calls 64        # payload bytes; also try 1024, 4096, 16384
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#define BLOCKS 400
#define STEPS 5000

static double
cpu_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static int
cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int
main(int argc, char **argv)
{
    size_t size = argc > 1 ? (size_t)atol(argv[1]) : 64;
    int listener = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    if (bind(listener, (struct sockaddr *)&addr, len) || listen(listener, 1) ||
        getsockname(listener, (struct sockaddr *)&addr, &len)) {
        perror("listen");
        return 1;
    }
    int reader = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(reader, (struct sockaddr *)&addr, sizeof addr)) {
        perror("connect");
        return 1;
    }
    int sender = accept(listener, NULL, NULL);
    setsockopt(sender, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    unsigned char head[10] = {0x82};
    size_t head_len = 2;
    if (size < 126) {
        head[1] = (unsigned char)size;
    } else {
        head[1] = 126;
        head[2] = (unsigned char)(size >> 8);
        head[3] = (unsigned char)size;
        head_len = 4;
    }
    char *payload = calloc(1, size), *in = malloc(1 << 20);
    double results[2][BLOCKS / 2];
    for (int block = 0; block < BLOCKS; block++) {
        int parts = block % 2;
        double t0 = cpu_ns();
        for (int i = 0; i < STEPS; i++) {
            if (parts) {
                struct iovec iov[2] = {{head, head_len}, {payload, size}};
                struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
                sendmsg(sender, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
            } else {
                char *frame = malloc(head_len + size);
                memcpy(frame, head, head_len);
                memcpy(frame + head_len, payload, size);
                send(sender, frame, head_len + size, MSG_DONTWAIT | MSG_NOSIGNAL);
                free(frame);
            }
            for (size_t got = 0; got < head_len + size;) {
                ssize_t n = recv(reader, in, 1 << 20, 0);
                if (n <= 0) {
                    perror("recv");
                    return 1;
                }
                got += (size_t)n;
            }
        }
        results[parts][block / 2] = (cpu_ns() - t0) / STEPS;
    }
    const char *names[2] = {"copy + send(2)", "sendmsg(2) of two"};
    for (int k = 0; k < 2; k++) {
        qsort(results[k], BLOCKS / 2, sizeof(double), cmp);
        printf("%zu B, %-18s min %6.0f  p10 %6.0f ns per step\n", size, names[k], results[k][0],
               results[k][BLOCKS / 20]);
    }
    return 0;
}

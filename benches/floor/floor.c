/*
 * The machine's floor for a sleeping round trip: two processes (fork) ping-pong one message,
 * each blocked in read() until the other wakes it, so every round trip is exactly two
 * cross-process wake-ups. Measured over an eventfd pair (protocol v1's doorbell) and over an
 * AF_UNIX SOCK_STREAM socketpair (protocol v2's doorbell).
 *
 * Usage: floor <round trips> [cpu_a cpu_b] ; prints one JSON object with round-trip percentiles in
 * µs. With cpus, the measuring process runs on cpu_a and its echoing child on cpu_b.
 * Built and run by benches/lib/floor.ts (cc -O2), so no binary is committed.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

static int cpu_a = -1, cpu_b = -1;

static void pin_to(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) < 0) die("sched_setaffinity");
}

/* Writes one token to fd (8 bytes for an eventfd, 1 byte for a socket) and reads one back. */
static void put(int fd, int efd) {
  uint64_t one = 1;
  if (write(fd, &one, efd ? 8 : 1) < 0) die("write");
}
static void take(int fd, int efd) {
  uint64_t v;
  if (read(fd, &v, efd ? 8 : 1) <= 0) die("read");
}

/* a→b on (a_w, b_r), b→a on (b_w, a_r); returns sorted round trips in µs. */
static void run(const char *name, int efd, int a_w, int a_r, int b_w, int b_r, int n, int warm, int first) {
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    pin_to(cpu_b);
    for (int i = 0; i < n + warm; i++) {
      take(b_r, efd);
      put(b_w, efd);
    }
    _exit(0);
  }
  double *s = malloc(sizeof(double) * n);
  for (int i = 0; i < n + warm; i++) {
    double t0 = now_us();
    put(a_w, efd);
    take(a_r, efd);
    if (i >= warm) s[i - warm] = now_us() - t0;
  }
  waitpid(pid, NULL, 0);
  qsort(s, n, sizeof(double), cmp);
  printf("%s\"%s\":{\"n\":%d,\"p50\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"min\":%.3f}", first ? "" : ",", name, n, s[n / 2],
         s[(int)(n * 0.99)], s[(int)(n * 0.999)], s[0]);
  free(s);
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 20000;
  if (n < 10) n = 10;
  int warm = n / 10;
  if (argc > 3) {
    cpu_a = atoi(argv[2]);
    cpu_b = atoi(argv[3]);
  }
  pin_to(cpu_a);
  int e1 = eventfd(0, EFD_CLOEXEC), e2 = eventfd(0, EFD_CLOEXEC);
  if (e1 < 0 || e2 < 0) die("eventfd");
  printf("{");
  run("eventfd", 1, e1, e2, e2, e1, n, warm, 1);
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) die("socketpair");
  run("socketpair", 0, sv[0], sv[0], sv[1], sv[1], n, warm, 0);
  printf("}\n");
  return 0;
}

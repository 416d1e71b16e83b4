/*
 * syscost.c: what a system call costs on this machine, to bound what moving
 * one into the ring can save.
 *
 *   cc -O2 -o /tmp/syscost tools/bench/syscost.c && taskset -c 1 /tmp/syscost
 *
 * Times 10^6 getppid() (entry and exit, nearly no work), 10^6
 * setsockopt(TCP_NODELAY) on one socket, and 2*10^5 socket()+close() of
 * a TCP socket, and prints ns per call.  Bounded by count; no traffic.
 */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(void)
{
	const int n = 1000000, m = 200000;
	double t0, t1, t2, t3;
	int one = 1, fd, i;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0) {
		perror("socket");
		return 1;
	}
	t0 = now_s();
	for (i = 0; i < n; i++)
		(void)syscall(SYS_getppid);
	t1 = now_s();
	for (i = 0; i < n; i++)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
				 sizeof(one));
	t2 = now_s();
	for (i = 0; i < m; i++) {
		int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK |
				       SOCK_CLOEXEC, 0);

		if (s >= 0)
			(void)close(s);
	}
	t3 = now_s();
	(void)close(fd);
	printf("getppid %.0f ns, setsockopt(TCP_NODELAY) %.0f ns, "
	       "socket+close %.0f ns\n", (t1 - t0) / n * 1e9,
	       (t2 - t1) / n * 1e9, (t3 - t2) / m * 1e9);
	return 0;
}

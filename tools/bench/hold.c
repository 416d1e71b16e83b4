/*
 * hold.c: open N connections to an echo service (directly or through a
 * proxy), prove each one reaches the backend with a 1-byte round trip, then
 * hold them all idle until told to let go.
 *
 *   hold HOST PORT N NSRC TIMEOUT_S
 *
 * Source addresses rotate over 127.0.0.2 .. 127.0.0.(1+NSRC) with
 * IP_BIND_ADDRESS_NO_PORT, so the local port range is per source address.
 * At most WINDOW connections are in the handshake or round trip at once, so
 * no accept queue overflows.  When every connection is up (or TIMEOUT_S has
 * passed) it prints "ready OK FAILED MS" and waits for a line or EOF on
 * stdin (or TIMEOUT_S more seconds), then closes everything with a reset so
 * no TIME_WAIT is left behind.  A line "check" instead makes every
 * connection that is up do one more 1-byte round trip (within TIMEOUT_S),
 * prints "checked OK FAILED MS" and waits again.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define WINDOW 200

enum { FREE, CONNECTING, ECHOING, UP, FAILED };

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* One more 1-byte round trip on every connection that is up. */
static void
check(int ep, const int *fds, unsigned char *st, unsigned n,
      unsigned timeout_s)
{
	struct epoll_event evs[256];
	uint64_t t0 = now_ms(), deadline = t0 + (uint64_t)timeout_s * 1000;
	unsigned waiting = 0, ok = 0, bad = 0;

	for (unsigned i = 0; i < n; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = i };

		if (st[i] != UP)
			continue;
		if (send(fds[i], "y", 1, MSG_NOSIGNAL) != 1) {
			st[i] = FAILED;
			bad++;
			continue;
		}
		st[i] = ECHOING;
		epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
		waiting++;
	}
	while (waiting && now_ms() < deadline) {
		int k = epoll_wait(ep, evs, 256, 200);

		for (int j = 0; j < k; j++) {
			unsigned i = evs[j].data.u32;
			char b;
			ssize_t r = recv(fds[i], &b, 1, MSG_DONTWAIT);

			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			epoll_ctl(ep, EPOLL_CTL_DEL, fds[i], NULL);
			st[i] = r == 1 ? UP : FAILED;
			if (r == 1)
				ok++;
			else
				bad++;
			waiting--;
		}
	}
	for (unsigned i = 0; i < n; i++)
		if (st[i] == ECHOING) {
			epoll_ctl(ep, EPOLL_CTL_DEL, fds[i], NULL);
			st[i] = FAILED;
			bad++;
		}
	printf("checked %u %u %llu\n", ok, bad,
	       (unsigned long long)(now_ms() - t0));
	fflush(stdout);
}

int
main(int argc, char **argv)
{
	struct sockaddr_in dst = { .sin_family = AF_INET };
	struct epoll_event evs[256];
	struct rlimit rl;
	unsigned n, nsrc, timeout_s, next = 0, pending = 0, up = 0, failed = 0;
	uint64_t t0, deadline;
	unsigned char *st;
	int *fds;
	int ep;

	if (argc < 6) {
		fprintf(stderr, "usage: hold HOST PORT N NSRC TIMEOUT_S\n");
		return 2;
	}
	inet_pton(AF_INET, argv[1], &dst.sin_addr);
	dst.sin_port = htons((uint16_t)atoi(argv[2]));
	n = (unsigned)atoi(argv[3]);
	nsrc = (unsigned)atoi(argv[4]);
	timeout_s = (unsigned)atoi(argv[5]);
	if (nsrc < 1 || nsrc > 200)
		nsrc = 1;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	fds = calloc(n, sizeof(*fds));
	st = calloc(n, 1);
	ep = epoll_create1(EPOLL_CLOEXEC);
	t0 = now_ms();
	deadline = t0 + (uint64_t)timeout_s * 1000;

	while (up + failed < n && now_ms() < deadline) {
		int k;

		while (next < n && pending < WINDOW) {
			struct sockaddr_in src = { .sin_family = AF_INET };
			struct epoll_event ev = { .events = EPOLLOUT };
			int one = 1;
			int fd = socket(AF_INET,
					SOCK_STREAM | SOCK_NONBLOCK |
						SOCK_CLOEXEC, 0);
			unsigned i = next++;

			if (fd < 0) {
				st[i] = FAILED;
				failed++;
				continue;
			}
			src.sin_addr.s_addr = htonl(0x7f000002u + i % nsrc);
			setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
				   sizeof(one));
			if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0 ||
			    (connect(fd, (struct sockaddr *)&dst,
				     sizeof(dst)) < 0 &&
			     errno != EINPROGRESS)) {
				close(fd);
				st[i] = FAILED;
				failed++;
				continue;
			}
			fds[i] = fd;
			st[i] = CONNECTING;
			ev.data.u32 = i;
			epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
			pending++;
		}
		k = epoll_wait(ep, evs, 256, 200);
		for (int j = 0; j < k; j++) {
			unsigned i = evs[j].data.u32;
			int fd = fds[i];
			char b;

			if (st[i] == CONNECTING) {
				struct epoll_event ev = { .events = EPOLLIN,
							  .data.u32 = i };
				int err = 0;
				socklen_t el = sizeof(err);

				getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
				if (err == 0 && send(fd, "x", 1,
						     MSG_NOSIGNAL) == 1) {
					st[i] = ECHOING;
					epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
					continue;
				}
			} else if (st[i] == ECHOING) {
				ssize_t r = recv(fd, &b, 1, MSG_DONTWAIT);

				if (r == 1) {
					epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
					st[i] = UP;
					up++;
					pending--;
					continue;
				}
				if (r < 0 && (errno == EAGAIN || errno == EINTR))
					continue;
			}
			epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
			close(fd);
			st[i] = FAILED;
			failed++;
			pending--;
		}
	}
	printf("ready %u %u %llu\n", up, n - up,
	       (unsigned long long)(now_ms() - t0));
	fflush(stdout);

	for (;;) {
		struct pollfd p = { .fd = 0, .events = POLLIN };
		char line[64];
		ssize_t r = 0;

		if (poll(&p, 1, (int)timeout_s * 1000) > 0) {
			r = read(0, line, sizeof(line) - 1);
			if (r < 0)
				perror("hold: stdin");
		}
		if (r < 5 || strncmp(line, "check", 5) != 0)
			break;
		check(ep, fds, st, n, timeout_s);
	}
	for (unsigned i = 0; i < n; i++) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		if (st[i] == FREE || st[i] == FAILED)
			continue;
		setsockopt(fds[i], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(fds[i]);
	}
	return 0;
}

/*
 * echod.c: the benchmark's echo backend.  One thread, level-triggered
 * epoll, any number of connections (bounded by the fd limit), every byte
 * received is sent straight back.  Used by the latency row (64-byte
 * ping-pong) and the idle-connections row (thousands of quiet sockets).
 *
 *   echod HOST PORT [PORT...]
 *
 * Runs until SIGTERM/SIGINT.  A write that would block falls back to a
 * short poll() loop: echo replies are small and the clients read them at
 * once, so this never holds up the loop in practice.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_PORTS	16
#define BUF_SIZE	(64 * 1024)

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int
listen_on(const char *host, int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	int one = 1;
	int fd;

	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
		fprintf(stderr, "echod: bad address %s\n", host);
		exit(2);
	}
	sin.sin_port = htons((uint16_t)port);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(fd, 4096) < 0) {
		fprintf(stderr, "echod: listen %s:%d: %s\n", host, port,
			strerror(errno));
		exit(1);
	}
	return fd;
}

/* Send all of buf; 0 or -1 when the peer is gone. */
static int
send_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n > 0) {
			buf += n;
			len -= (size_t)n;
		} else if (n < 0 && errno == EAGAIN) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };

			if (poll(&p, 1, 5000) <= 0)
				return -1;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else {
			return -1;
		}
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static char buf[BUF_SIZE];
	struct epoll_event evs[256];
	int lfd[MAX_PORTS];
	struct rlimit rl;
	int nl = 0;
	int ep;

	if (argc < 3) {
		fprintf(stderr, "usage: echod HOST PORT [PORT...]\n");
		return 2;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	ep = epoll_create1(EPOLL_CLOEXEC);
	for (int i = 2; i < argc && nl < MAX_PORTS; i++) {
		struct epoll_event ev = { .events = EPOLLIN };

		lfd[nl] = listen_on(argv[1], atoi(argv[i]));
		ev.data.u64 = (uint64_t)lfd[nl] | (1ULL << 32);
		epoll_ctl(ep, EPOLL_CTL_ADD, lfd[nl], &ev);
		nl++;
	}
	while (!stop) {
		int n = epoll_wait(ep, evs, 256, 500);

		for (int i = 0; i < n; i++) {
			int fd = (int)(evs[i].data.u64 & 0xffffffff);
			if (evs[i].data.u64 >> 32) {
				for (int k = 0; k < 64; k++) {
					int one = 1;
					int c = accept4(fd, NULL, NULL,
							SOCK_NONBLOCK |
								SOCK_CLOEXEC);
					struct epoll_event ev = {
						.events = EPOLLIN | EPOLLRDHUP
					};

					if (c < 0)
						break;
					setsockopt(c, IPPROTO_TCP, TCP_NODELAY,
						   &one, sizeof(one));
					ev.data.u64 = (uint64_t)c;
					epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
				}
				continue;
			}
			for (;;) {
				ssize_t r = recv(fd, buf, sizeof(buf), 0);

				if (r > 0) {
					if (send_all(fd, buf, (size_t)r) < 0) {
						close(fd);
						break;
					}
					if (r < (ssize_t)sizeof(buf))
						break;
					continue;
				}
				if (r < 0 && (errno == EAGAIN || errno == EINTR))
					break;
				/* EOF or error: the peer is done. */
				close(fd);
				break;
			}
		}
	}
	return 0;
}

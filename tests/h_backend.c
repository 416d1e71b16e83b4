/*
 * h_backend.c: backends as forked children, one mode each.
 * See h_backend.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "h_private.h"

void
h_backend_up(struct h_backend *b, enum h_mode mode, const char *name)
{
	int rc;

	h_label(tcase_name());
	rc = h_backend_start(b, mode, name);
	ck_assert_msg(rc == 0, "backend %s did not start: %s", name,
		      strerror(-rc));
}

static int
write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

struct bconn {
	int fd;
	const struct h_backend *b;
};

/* Echo until EOF (0) or error (-1). */
static int
echo_loop(int fd, char *buf)
{
	for (;;) {
		ssize_t n = read(fd, buf, H_CHUNK);

		if (n == 0)
			return 0;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (write_full(fd, buf, (size_t)n) < 0)
			return -1;
	}
}

static void
send_name(int fd, const struct h_backend *b)
{
	char line[80];
	int n = snprintf(line, sizeof(line), "%s\n", b->name);

	write_full(fd, line, (size_t)n);
}

static void
serve_sink(int fd, char *buf)
{
	uint64_t h = H_FNV_INIT, len = 0;
	char line[64];
	int n;

	for (;;) {
		ssize_t r = read(fd, buf, H_CHUNK);

		if (r == 0)
			break;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		h = h_fnv1a(h, buf, (size_t)r);
		len += (uint64_t)r;
	}
	n = snprintf(line, sizeof(line), "%016llx %llu\n",
		     (unsigned long long)h, (unsigned long long)len);
	write_full(fd, line, (size_t)n);
}

static void
serve_source(int fd, const struct h_backend *b, char *buf)
{
	uint64_t off = 0;

	while (off < b->source_len) {
		size_t k = b->source_len - off < H_CHUNK
				   ? (size_t)(b->source_len - off)
				   : H_CHUNK;

		h_pattern_fill(b->source_seed, off, buf, k);
		if (write_full(fd, buf, k) < 0)
			return;
		off += k;
	}
}

/* H_CMD: the client's first line says how many bytes to echo before a
 * reset (0: echo until EOF). */
static void
serve_cmd(int fd, const struct h_backend *b, char *buf)
{
	struct linger lg = { 1, 0 };
	uint64_t limit, done = 0;
	char line[32];
	size_t n = 0;

	send_name(fd, b);
	/* A byte at a time: nothing past the newline is consumed. */
	for (;;) {
		ssize_t r = read(fd, line + n, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r != 1)
			return;
		if (line[n] == '\n' || ++n + 1 >= sizeof(line))
			break;
	}
	line[n] = '\0';
	limit = strtoull(line, NULL, 10);
	if (limit == 0) {
		if (echo_loop(fd, buf) == 0)
			shutdown(fd, SHUT_WR);
		return;
	}
	while (done < limit) {
		size_t k = limit - done < H_CHUNK ? (size_t)(limit - done)
						  : H_CHUNK;
		ssize_t r = read(fd, buf, k);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || write_full(fd, buf, (size_t)r) < 0)
			return;
		done += (uint64_t)r;
	}
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

static void *
backend_conn(void *arg)
{
	struct bconn *c = arg;
	const struct h_backend *b = c->b;
	int fd = c->fd;
	char *buf = malloc(H_CHUNK);
	struct linger lg = { 1, 0 };
	char ch;

	free(c);
	if (buf == NULL)
		goto out;
	switch (b->mode) {
	case H_NAME:
		send_name(fd, b);
		echo_loop(fd, buf);
		break;
	case H_PEER: {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		char addr[INET6_ADDRSTRLEN] = "?", line[160];
		int n;

		if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0)
			inet_ntop(ss.ss_family,
				  ss.ss_family == AF_INET ?
					  (void *)&((struct sockaddr_in *)&ss)
						  ->sin_addr :
					  (void *)&((struct sockaddr_in6 *)&ss)
						  ->sin6_addr,
				  addr, sizeof(addr));
		n = snprintf(line, sizeof(line), "%s %s\n", b->name, addr);
		write_full(fd, line, (size_t)n);
		echo_loop(fd, buf);
		break;
	}
	case H_ECHO:
		if (echo_loop(fd, buf) == 0)
			shutdown(fd, SHUT_WR);
		break;
	case H_HOLD:
		send_name(fd, b);
		while (read(fd, buf, H_CHUNK) > 0)
			;
		break;
	case H_SINK:
		serve_sink(fd, buf);
		break;
	case H_SOURCE:
		serve_source(fd, b, buf);
		break;
	case H_RESET:
		send_name(fd, b);
		if (read(fd, &ch, 1) == 1)
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		break;
	case H_STALL:
		/* Until the backend is killed: ringlb must push back. */
		for (;;)
			pause();
	case H_CMD:
		serve_cmd(fd, b, buf);
		break;
	}
out:
	free(buf);
	close(fd);
	return NULL;
}

static void __attribute__((noreturn))
backend_main(const struct h_backend *b, int rfd, pid_t parent)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t len = sizeof(*sin);
	pthread_attr_t attr;
	int lfd, one = 1, port;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(0);
	signal(SIGPIPE, SIG_IGN);
	/* Inherited client sockets would keep the test's connections open. */
	if (rfd > 3)
		close_range(3, (unsigned)rfd - 1, 0);
	close_range((unsigned)rfd + 1, ~0U, 0);

	/* 127.0.0.1 unless the host says otherwise; an IPv6 host ("::1")
	 * gets an IPv6 listener. */
	memset(&ss, 0, sizeof(ss));
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)b->port);
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (b->host[0] && inet_pton(AF_INET, b->host, &sin->sin_addr) != 1) {
		memset(&ss, 0, sizeof(ss));
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)b->port);
		len = sizeof(*sin6);
		if (inet_pton(AF_INET6, b->host, &sin6->sin6_addr) != 1) {
			errno = EINVAL;
			goto fail;
		}
	}
	lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		goto fail;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&ss, len) < 0 ||
	    listen(lfd, 1024) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&ss, &len) < 0)
		goto fail;
	port = ntohs(ss.ss_family == AF_INET6 ? sin6->sin6_port :
						 sin->sin_port);
	if (write(rfd, &port, sizeof(port)) != sizeof(port))
		_exit(1);
	close(rfd);

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (;;) {
		struct bconn *c;
		pthread_t t;
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EINTR)
				h_sleep_ms(5);
			continue;
		}
		c = malloc(sizeof(*c));
		if (c == NULL) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->b = b;
		if (pthread_create(&t, &attr, backend_conn, c) != 0) {
			free(c);
			close(fd);
		}
	}

fail:
	port = -errno;
	if (write(rfd, &port, sizeof(port)) != sizeof(port))
		_exit(1);
	_exit(1);
}

static int
backend_spawn(struct h_backend *b)
{
	struct pollfd pfd;
	int p[2], port = 0, rc;
	pid_t parent = getpid(), pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		rc = -errno;
		close(p[0]);
		close(p[1]);
		return rc;
	}
	if (pid == 0) {
		close(p[0]);
		backend_main(b, p[1], parent);
	}
	h_track_pid(pid);
	close(p[1]);
	pfd.fd = p[0];
	pfd.events = POLLIN;
	rc = poll(&pfd, 1, 5000);
	if (rc <= 0 || read(p[0], &port, sizeof(port)) != sizeof(port))
		port = -ETIMEDOUT;
	close(p[0]);
	if (port <= 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		h_untrack_pid(pid);
		return port < 0 ? port : -EIO;
	}
	b->port = port;
	b->pid = pid;
	return 0;
}

int
h_backend_start(struct h_backend *b, enum h_mode mode, const char *name)
{
	b->mode = mode;
	snprintf(b->name, sizeof(b->name), "%s", name);
	b->pid = 0;
	b->port = 0;
	b->host[0] = '\0';
	return backend_spawn(b);
}

void
h_backend_up_at(struct h_backend *b, enum h_mode mode, const char *name,
		const char *host, int port)
{
	int rc;

	h_label(tcase_name());
	b->mode = mode;
	snprintf(b->name, sizeof(b->name), "%s", name);
	snprintf(b->host, sizeof(b->host), "%s", host);
	b->pid = 0;
	b->port = port;
	rc = backend_spawn(b);
	ck_assert_msg(rc == 0, "backend %s on %s:%d: %s", name, host, port,
		      strerror(-rc));
}

void
h_backend_kill(struct h_backend *b)
{
	if (b->pid <= 0)
		return;
	kill(b->pid, SIGKILL);
	waitpid(b->pid, NULL, 0);
	h_untrack_pid(b->pid);
	b->pid = 0;
}

int
h_backend_restart(struct h_backend *b)
{
	h_backend_kill(b);
	return backend_spawn(b);
}

void
h_backend_dead(struct h_backend *b, enum h_mode mode, const char *name)
{
	memset(b, 0, sizeof(*b));
	b->mode = mode;
	snprintf(b->name, sizeof(b->name), "%s", name);
	b->port = h_free_port();
}

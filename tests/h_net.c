/*
 * h_net.c: client sockets with deadlines, transfers, many echo connections,
 * the black hole.
 * See h_net.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "h_private.h"

static int
parse_addr(const char *host, int port, struct sockaddr_storage *ss,
	   socklen_t *len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		*len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*sin6);
		return 0;
	}
	return -EINVAL;
}

/* Start a non-blocking connect; fd, or -errno.  *done if already open. */
static int
connect_start(const char *src, const char *host, int port, bool *done)
{
	struct sockaddr_storage ss, sss;
	socklen_t len, slen;
	int fd, rc, one = 1;

	rc = parse_addr(host, port, &ss, &len);
	if (rc < 0)
		return rc;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0)
		return -errno;
	if (src != NULL) {
		rc = parse_addr(src, 0, &sss, &slen);
		if (rc < 0)
			goto fail;
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
			   sizeof(one));
		if (bind(fd, (struct sockaddr *)&sss, slen) < 0) {
			rc = -errno;
			goto fail;
		}
	}
	*done = false;
	if (connect(fd, (struct sockaddr *)&ss, len) == 0) {
		*done = true;
		return fd;
	}
	if (errno == EINPROGRESS)
		return fd;
	rc = -errno;
fail:
	close(fd);
	return rc;
}

/* Result of a finished non-blocking connect: 0 or -errno. */
static int
connect_result(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return -errno;
	return -err;
}

int
h_connect_from(const char *src, const char *host, int port, int timeout_ms)
{
	struct pollfd pfd;
	bool done;
	int fd, rc;

	fd = connect_start(src, host, port, &done);
	if (fd < 0 || done)
		return fd;
	pfd.fd = fd;
	pfd.events = POLLOUT;
	rc = poll(&pfd, 1, timeout_ms);
	if (rc == 0)
		rc = -ETIMEDOUT;
	else if (rc < 0)
		rc = -errno;
	else
		rc = connect_result(fd);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return fd;
}

int
h_connect(const char *host, int port, int timeout_ms)
{
	return h_connect_from(NULL, host, port, timeout_ms);
}

/* Wait for events on fd until deadline: revents, 0 on timeout, -errno. */
int
h_wait_fd(int fd, short events, uint64_t deadline)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	int rc;

	for (;;) {
		rc = poll(&pfd, 1, h_left_ms(deadline));
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0)
			return -errno;
		return rc == 0 ? 0 : pfd.revents;
	}
}

int
h_write_all(int fd, const void *buf, size_t len, int timeout_ms)
{
	uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;
	const char *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		int rc;

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		rc = h_wait_fd(fd, POLLOUT, deadline);
		if (rc == 0)
			return -ETIMEDOUT;
		if (rc < 0)
			return rc;
	}
	return 0;
}

int
h_read_line(int fd, char *buf, size_t cap, int timeout_ms)
{
	uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;
	size_t n = 0;

	/* Byte at a time: nothing past the newline is consumed. */
	while (n + 1 < cap) {
		ssize_t k = recv(fd, buf + n, 1, MSG_DONTWAIT);
		int rc;

		if (k == 1) {
			if (buf[n] == '\n') {
				buf[n] = '\0';
				return (int)n;
			}
			n++;
			continue;
		}
		if (k == 0) {
			buf[n] = '\0';
			return -EPIPE;
		}
		if (errno != EAGAIN && errno != EINTR) {
			rc = -errno;
			buf[n] = '\0';
			return rc;
		}
		rc = h_wait_fd(fd, POLLIN, deadline);
		if (rc == 0) {
			buf[n] = '\0';
			return -ETIMEDOUT;
		}
		if (rc < 0)
			return rc;
	}
	buf[n] = '\0';
	return -ENOBUFS;
}

long
h_read_all(int fd, void *buf, size_t cap, int timeout_ms, long *got)
{
	uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;
	char *p = buf;
	size_t n = 0;
	long rc;

	for (;;) {
		ssize_t k;

		if (n == cap) {
			rc = -ENOBUFS;
			break;
		}
		k = recv(fd, p + n, cap - n, MSG_DONTWAIT);
		if (k > 0) {
			n += (size_t)k;
			continue;
		}
		if (k == 0) {
			rc = (long)n;
			break;
		}
		if (errno != EAGAIN && errno != EINTR) {
			rc = -errno;
			break;
		}
		rc = h_wait_fd(fd, POLLIN, deadline);
		if (rc == 0) {
			rc = -ETIMEDOUT;
			break;
		}
		if (rc < 0)
			break;
	}
	if (got != NULL)
		*got = (long)n;
	return rc;
}

int
h_wait_close(int fd, int timeout_ms, long *data)
{
	uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;
	char buf[4096];
	long total = 0;
	int rc;

	for (;;) {
		ssize_t k = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (k > 0) {
			total += k;
			continue;
		}
		if (k == 0) {
			rc = 0;
			break;
		}
		if (errno != EAGAIN && errno != EINTR) {
			rc = -errno;
			break;
		}
		rc = h_wait_fd(fd, POLLIN, deadline);
		if (rc == 0) {
			rc = -ETIMEDOUT;
			break;
		}
		if (rc < 0)
			break;
	}
	if (data != NULL)
		*data = total;
	return rc;
}

int
h_local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

void
h_close_reset(int fd)
{
	struct linger lg = { 1, 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

int
h_xfer(int fd, struct h_xfer *x)
{
	uint64_t deadline = h_now_ms() + (uint64_t)x->timeout_ms;
	char *txb = malloc(H_CHUNK), *rxb = malloc(H_CHUNK);
	bool shut = false;
	int rc = -1;

	x->sent = x->rcvd = 0;
	x->eof = false;
	x->err[0] = '\0';
	if (x->rx_buf != NULL && x->rx_cap > 0)
		x->rx_buf[0] = '\0';
	if (txb == NULL || rxb == NULL) {
		snprintf(x->err, sizeof(x->err), "out of memory");
		goto out;
	}
	for (;;) {
		bool tx_more = x->sent < x->tx_len, rx_more;
		short ev = 0;
		int r;

		if (!tx_more && x->tx_shut && !shut) {
			shutdown(fd, SHUT_WR);
			shut = true;
		}
		if (x->rx_buf != NULL)
			rx_more = !x->eof;
		else
			rx_more = x->rx_eof ? !x->eof : x->rcvd < x->rx_len;
		if (!tx_more && !rx_more)
			break;
		if (tx_more)
			ev |= POLLOUT;
		if (rx_more)
			ev |= POLLIN;
		r = h_wait_fd(fd, ev, deadline);
		if (r == 0) {
			snprintf(x->err, sizeof(x->err),
				 "timeout: sent %llu of %llu, received %llu",
				 (unsigned long long)x->sent,
				 (unsigned long long)x->tx_len,
				 (unsigned long long)x->rcvd);
			goto out;
		}
		if (r < 0) {
			snprintf(x->err, sizeof(x->err), "poll: %s",
				 strerror(-r));
			goto out;
		}
		if (tx_more && (r & (POLLOUT | POLLERR | POLLHUP))) {
			uint64_t left = x->tx_len - x->sent;
			size_t k = left < H_CHUNK ? (size_t)left : H_CHUNK;
			ssize_t n;

			h_pattern_fill(x->tx_seed, x->sent, txb, k);
			n = send(fd, txb, k, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n > 0) {
				x->sent += (uint64_t)n;
			} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
				snprintf(x->err, sizeof(x->err),
					 "send after %llu bytes: %s",
					 (unsigned long long)x->sent,
					 strerror(errno));
				goto out;
			}
		}
		if (rx_more && (r & (POLLIN | POLLERR | POLLHUP))) {
			ssize_t n = recv(fd, rxb, H_CHUNK, MSG_DONTWAIT);
			long bad;

			if (n == 0) {
				x->eof = true;
				if (x->rx_buf == NULL && x->rcvd < x->rx_len) {
					snprintf(x->err, sizeof(x->err),
						 "EOF after %llu of %llu bytes",
						 (unsigned long long)x->rcvd,
						 (unsigned long long)x->rx_len);
					goto out;
				}
				continue;
			}
			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR)
					continue;
				snprintf(x->err, sizeof(x->err),
					 "recv after %llu bytes: %s",
					 (unsigned long long)x->rcvd,
					 strerror(errno));
				goto out;
			}
			if (x->rx_buf != NULL) {
				if (x->rcvd + (uint64_t)n >= x->rx_cap) {
					snprintf(x->err, sizeof(x->err),
						 "reply longer than %zu bytes",
						 x->rx_cap);
					goto out;
				}
				memcpy(x->rx_buf + x->rcvd, rxb, (size_t)n);
				x->rcvd += (uint64_t)n;
				x->rx_buf[x->rcvd] = '\0';
				continue;
			}
			if (x->rcvd + (uint64_t)n > x->rx_len) {
				snprintf(x->err, sizeof(x->err),
					 "%llu bytes more than the %llu "
					 "expected",
					 (unsigned long long)(x->rcvd +
							      (uint64_t)n -
							      x->rx_len),
					 (unsigned long long)x->rx_len);
				goto out;
			}
			bad = h_pattern_check(x->rx_seed, x->rcvd, rxb,
					      (size_t)n);
			if (bad >= 0) {
				snprintf(x->err, sizeof(x->err),
					 "received byte %llu differs",
					 (unsigned long long)(x->rcvd +
							      (uint64_t)bad));
				goto out;
			}
			x->rcvd += (uint64_t)n;
		}
	}
	rc = 0;
out:
	free(txb);
	free(rxb);
	return rc;
}

/* ---- many connections ---- */

enum mstate {
	M_FREE,
	M_CONNECTING,
	M_OPEN,
	M_HELD,		/* done, kept open (hold) */
};

struct mconn {
	int fd;
	unsigned id;
	enum mstate st;
	size_t sent, rcvd;
};

static uint64_t
multi_seed(unsigned id)
{
	return 0x5eed0000ULL + id;
}

static int
multi_start(struct h_multi *m, struct mconn *c, unsigned id)
{
	char src[32];
	bool done;
	int fd;

	if (m->nsrc > 0)
		snprintf(src, sizeof(src), "127.0.0.%u", 2 + id % m->nsrc);
	fd = connect_start(m->nsrc > 0 ? src : NULL, m->host, m->port, &done);
	if (fd < 0) {
		snprintf(m->err, sizeof(m->err), "conn %u: connect: %s", id,
			 strerror(-fd));
		return -1;
	}
	c->fd = fd;
	c->id = id;
	c->st = done ? M_OPEN : M_CONNECTING;
	c->sent = c->rcvd = 0;
	return 0;
}

/* One poll event for c; 1 when its exchange completed, 0, or -1. */
static int
multi_event(struct h_multi *m, struct mconn *c, short rev, char *buf)
{
	ssize_t n;
	long bad;
	int rc;

	if (c->st == M_CONNECTING) {
		if (!(rev & (POLLOUT | POLLERR | POLLHUP)))
			return 0;
		rc = connect_result(c->fd);
		if (rc < 0) {
			snprintf(m->err, sizeof(m->err),
				 "conn %u: connect: %s", c->id,
				 strerror(-rc));
			return -1;
		}
		c->st = M_OPEN;
	}
	if ((rev & (POLLOUT | POLLERR | POLLHUP)) && c->sent < m->len) {
		size_t k = m->len - c->sent < H_CHUNK ? m->len - c->sent
						      : H_CHUNK;

		h_pattern_fill(multi_seed(c->id), c->sent, buf, k);
		n = send(c->fd, buf, k, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			c->sent += (size_t)n;
		} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
			snprintf(m->err, sizeof(m->err),
				 "conn %u: send after %zu bytes: %s", c->id,
				 c->sent, strerror(errno));
			return -1;
		}
	}
	if (!(rev & (POLLIN | POLLERR | POLLHUP)))
		return 0;
	n = recv(c->fd, buf, H_CHUNK, MSG_DONTWAIT);
	if (n == 0) {
		snprintf(m->err, sizeof(m->err),
			 "conn %u: EOF after %zu of %zu bytes echoed", c->id,
			 c->rcvd, m->len);
		return -1;
	}
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		snprintf(m->err, sizeof(m->err),
			 "conn %u: recv after %zu of %zu bytes: %s", c->id,
			 c->rcvd, m->len, strerror(errno));
		return -1;
	}
	if (c->rcvd + (size_t)n > m->len) {
		snprintf(m->err, sizeof(m->err),
			 "conn %u: %zu bytes echoed, sent %zu", c->id,
			 c->rcvd + (size_t)n, m->len);
		return -1;
	}
	bad = h_pattern_check(multi_seed(c->id), c->rcvd, buf, (size_t)n);
	if (bad >= 0) {
		snprintf(m->err, sizeof(m->err),
			 "conn %u: echoed byte %zu differs", c->id,
			 c->rcvd + (size_t)bad);
		return -1;
	}
	c->rcvd += (size_t)n;
	return c->rcvd == m->len && c->sent == m->len;
}

int
h_multi_echo(struct h_multi *m)
{
	uint64_t deadline = h_now_ms() + (uint64_t)m->timeout_ms;
	struct mconn *c = calloc(m->concurrency, sizeof(*c));
	struct pollfd *pfd = calloc(m->concurrency, sizeof(*pfd));
	unsigned *map = calloc(m->concurrency, sizeof(*map));
	char *buf = malloc(H_CHUNK);
	unsigned started = 0, open = 0;
	int rc = -1;

	m->done = 0;
	m->max_open = 0;
	m->err[0] = '\0';
	if (c == NULL || pfd == NULL || map == NULL || buf == NULL) {
		snprintf(m->err, sizeof(m->err), "out of memory");
		goto out;
	}
	if (m->hold && m->concurrency < m->total) {
		snprintf(m->err, sizeof(m->err),
			 "hold needs concurrency >= total");
		goto out;
	}
	while (m->done < m->total) {
		nfds_t n = 0;
		int r;

		for (unsigned i = 0; i < m->concurrency && started < m->total;
		     i++) {
			if (c[i].st != M_FREE)
				continue;
			if (multi_start(m, &c[i], started) < 0)
				goto out;
			started++;
			open++;
		}
		if (open > m->max_open)
			m->max_open = open;
		for (unsigned i = 0; i < m->concurrency; i++) {
			if (c[i].st != M_CONNECTING && c[i].st != M_OPEN)
				continue;
			pfd[n].fd = c[i].fd;
			pfd[n].events = POLLIN;
			if (c[i].st == M_CONNECTING || c[i].sent < m->len)
				pfd[n].events |= POLLOUT;
			pfd[n].revents = 0;
			map[n++] = i;
		}
		if (h_left_ms(deadline) == 0) {
			snprintf(m->err, sizeof(m->err),
				 "timeout: %u of %u connections done, %u open",
				 m->done, m->total, open);
			goto out;
		}
		r = poll(pfd, n, h_left_ms(deadline) < 200 ? h_left_ms(deadline)
							  : 200);
		if (r < 0 && errno != EINTR) {
			snprintf(m->err, sizeof(m->err), "poll: %s",
				 strerror(errno));
			goto out;
		}
		for (nfds_t j = 0; r > 0 && j < n; j++) {
			struct mconn *cc = &c[map[j]];
			int e;

			if (pfd[j].revents == 0)
				continue;
			e = multi_event(m, cc, pfd[j].revents, buf);
			if (e < 0)
				goto out;
			if (e == 0)
				continue;
			m->done++;
			if (m->hold) {
				cc->st = M_HELD;
			} else {
				close(cc->fd);
				cc->st = M_FREE;
				open--;
			}
		}
	}
	rc = 0;
out:
	for (unsigned i = 0; c != NULL && i < m->concurrency; i++)
		if (c[i].st != M_FREE)
			close(c[i].fd);
	free(c);
	free(pfd);
	free(map);
	free(buf);
	return rc;
}

int
h_blackhole(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int lfd, port;

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		return -errno;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(lfd, 0) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sin, &len) < 0) {
		close(lfd);
		return -errno;
	}
	h_track_fd(lfd);
	port = ntohs(sin.sin_port);
	/* Fill the accept queue until a connect no longer completes. */
	for (int i = 0; i < 16; i++) {
		int fd = h_connect("127.0.0.1", port, 300);

		if (fd == -ETIMEDOUT)
			return port;
		if (fd < 0)
			return fd;
		h_track_fd(fd);
	}
	return -EAGAIN;
}

int
h_get_name(const char *host, int port, char *name, size_t cap, int *fdp)
{
	int fd, rc;

	name[0] = '\0';
	fd = h_connect(host, port, 3000);
	if (fd < 0)
		return fd;
	rc = h_read_line(fd, name, cap, 3000);
	if (rc < 0 || fdp == NULL)
		close(fd);
	else
		*fdp = fd;
	return rc < 0 ? rc : 0;
}

long
h_exchange(int port, const void *tx, size_t n, size_t step, unsigned pause_ms,
	   void *out, size_t cap, int *cport)
{
	const char *p = tx;
	long got = 0, rc;
	int fd = h_connect("127.0.0.1", port, 3000);

	if (fd < 0)
		return fd;
	if (cport)
		*cport = h_local_port(fd);
	for (size_t o = 0; o < n; o += step) {
		size_t k = n - o < step ? n - o : step;

		if (h_write_all(fd, p + o, k, 3000) < 0)
			break;
		if (pause_ms && o + k < n)
			h_sleep_ms(pause_ms);
	}
	shutdown(fd, SHUT_WR);
	rc = h_read_all(fd, out, cap, 8000, &got);
	close(fd);
	return rc < 0 ? rc : got;
}

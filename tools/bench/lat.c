/*
 * lat.c: small-message round-trip latency at a fixed rate.
 *
 *   lat HOST PORT RATE SECONDS [SIZE]
 *
 * One TCP connection (TCP_NODELAY).  Request i is due at start + i/RATE; the
 * client sleeps until then, sends SIZE bytes (default 64) and reads until
 * the SIZE-byte echo is back.  Latency runs from the due time, not from the
 * send, so a stall that delays later requests is counted against them too
 * (no coordinated omission).  The first 1/10 s of requests warms up and is
 * not counted.  Bounded: RATE*SECONDS requests, and it gives up when a reply
 * is 2 s late.
 *
 * Prints one JSON object: {"n":..,"rate":..,"p50_us":..,"p90_us":..,
 * "p99_us":..,"p999_us":..,"max_us":..,"p99w_us":..,"errors":..}.
 * p99w_us is the median over 1-second windows of each window's p99: one
 * stall of the whole machine (a VM hiccup of tens of ms delays every
 * request due meanwhile) moves p99_us a lot and p99w_us hardly at all.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double
pct(const uint64_t *v, size_t n, double p)
{
	size_t i;

	if (n == 0)
		return -1;
	i = (size_t)(p * (double)(n - 1) + 0.5);
	return (double)v[i] / 1000.0;
}

/* Median over windows of `win` samples of each window's p99, in us. */
static double
window_p99(const uint64_t *v, size_t n, size_t win)
{
	size_t nw = win ? n / win : 0;
	uint64_t *tmp;
	double *p, r;

	if (nw == 0)
		return -1;
	tmp = malloc(win * sizeof(*tmp));
	p = malloc(nw * sizeof(*p));
	for (size_t w = 0; w < nw; w++) {
		memcpy(tmp, v + w * win, win * sizeof(*tmp));
		qsort(tmp, win, sizeof(*tmp), cmp_u64);
		p[w] = pct(tmp, win, 0.99);
	}
	for (size_t i = 1; i < nw; i++)	/* insertion sort: nw is small */
		for (size_t j = i; j > 0 && p[j - 1] > p[j]; j--) {
			r = p[j];
			p[j] = p[j - 1];
			p[j - 1] = r;
		}
	r = nw % 2 ? p[nw / 2] : (p[nw / 2 - 1] + p[nw / 2]) / 2;
	free(tmp);
	free(p);
	return r;
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	char msg[4096], rbuf[4096];
	uint64_t *lat, start, interval, end;
	size_t total, warm, n = 0, size = 64, errors = 0;
	double rate, secs, p99w;
	int one = 1;
	int fd;

	if (argc < 5) {
		fprintf(stderr, "usage: lat HOST PORT RATE SECONDS [SIZE]\n");
		return 2;
	}
	inet_pton(AF_INET, argv[1], &sin.sin_addr);
	sin.sin_port = htons((uint16_t)atoi(argv[2]));
	rate = atof(argv[3]);
	secs = atof(argv[4]);
	if (argc > 5)
		size = (size_t)atoi(argv[5]);
	if (rate <= 0 || secs <= 0 || size == 0 || size > sizeof(msg)) {
		fprintf(stderr, "lat: bad arguments\n");
		return 2;
	}
	total = (size_t)(rate * secs);
	warm = (size_t)(rate / 10);
	lat = calloc(total + 1, sizeof(*lat));
	memset(msg, 'p', size);

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		fprintf(stderr, "lat: connect %s:%s: %s\n", argv[1], argv[2],
			strerror(errno));
		return 1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

	/* The default 50 us timer slack would show up in every sample. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	interval = (uint64_t)(1e9 / rate);
	start = now_ns() + 1000000;
	for (size_t i = 0; i < warm + total; i++) {
		uint64_t due = start + i * interval;
		struct timespec ts = { .tv_sec = (time_t)(due / 1000000000ULL),
				       .tv_nsec = (long)(due % 1000000000ULL) };
		size_t got = 0;

		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts,
				       NULL) == EINTR)
			;
		if (send(fd, msg, size, MSG_NOSIGNAL) != (ssize_t)size) {
			errors++;
			break;
		}
		while (got < size) {
			struct pollfd p = { .fd = fd, .events = POLLIN };
			ssize_t r;

			if (poll(&p, 1, 2000) <= 0)
				break;
			r = recv(fd, rbuf, sizeof(rbuf), 0);
			if (r <= 0)
				break;
			got += (size_t)r;
		}
		if (got < size) {
			errors++;
			break;
		}
		if (i >= warm)
			lat[n++] = now_ns() - due;
	}
	end = now_ns();
	close(fd);
	p99w = window_p99(lat, n, (size_t)rate);
	qsort(lat, n, sizeof(*lat), cmp_u64);
	printf("{\"n\":%zu,\"rate\":%.1f,\"p50_us\":%.1f,\"p90_us\":%.1f,"
	       "\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,"
	       "\"p99w_us\":%.1f,\"errors\":%zu}\n",
	       n, (double)(n + warm) * 1e9 / (double)(end - start),
	       pct(lat, n, 0.50), pct(lat, n, 0.90), pct(lat, n, 0.99),
	       pct(lat, n, 0.999), n ? (double)lat[n - 1] / 1000.0 : -1,
	       p99w, errors);
	free(lat);
	return errors ? 1 : 0;
}

/*
 * check_dns.c: the test DNS server (h_dns.h) over real sockets on
 * 127.0.0.1, with a query builder and a reply parser of its own so that
 * no DNS library or tool is needed: answers from the zone and their
 * changes, NODATA and NXDOMAIN, every misbehaving mode, truncation over
 * UDP with and without EDNS and the full answer over TCP, TCP framing,
 * and the query counters.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "h_dns.h"

#define MSG_MAX		65535
#define MAX_RR		1200
#define WAIT_MS		2000
/* How long a silent server is listened to. */
#define SILENCE_MS	300

enum { UDP, TCP };

struct rr {
	char owner[256];
	unsigned type, ttl;
	char text[280];		/* A, AAAA: the address; SRV: as h_dns_set() */
};

struct reply {
	unsigned id, rcode, qdcount, ancount, nscount, arcount;
	bool qr, aa, tc, rd, ra;
	char qname[256];
	unsigned qtype;
	bool opt;
	unsigned opt_payload;	/* the OPT RR's class */
	struct rr an[MAX_RR], ar[MAX_RR];	/* ar: without the OPT */
	unsigned nar;
};

static unsigned next_id = 0x1200;

/* A query for (name, type), RD set; with payload > 0 an OPT RR offering
 * it.  Its length. */
static size_t
query_build(uint8_t *q, unsigned id, const char *name, unsigned type,
	    unsigned payload)
{
	const uint8_t head[12] = { (uint8_t)(id >> 8), (uint8_t)id, 0x01, 0,
				   0, 1, 0, 0, 0, 0, 0, payload > 0 };
	size_t n = sizeof(head);
	const char *s = name;

	memcpy(q, head, n);
	while (*s != '\0') {
		size_t l = strcspn(s, ".");

		q[n++] = (uint8_t)l;
		memcpy(q + n, s, l);
		n += l;
		s += l + (s[l] == '.');
	}
	q[n++] = 0;
	q[n++] = (uint8_t)(type >> 8);
	q[n++] = (uint8_t)type;
	q[n++] = 0;
	q[n++] = 1;
	if (payload > 0) {
		const uint8_t opt[] = { 0, 0, 41, (uint8_t)(payload >> 8),
					(uint8_t)payload, 0, 0, 0, 0, 0, 0 };

		memcpy(q + n, opt, sizeof(opt));
		n += sizeof(opt);
	}
	return n;
}

static unsigned
get16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

/* The name at *off as "a.b." ("." for the root), pointers followed.  0, or
 * -1 if it runs past the end. */
static int
name_text(const uint8_t *m, size_t len, size_t *off, char *out)
{
	size_t p = *off, n = 0;
	int jumps = 0;

	for (;;) {
		unsigned l;

		if (p >= len)
			return -1;
		l = m[p];
		if ((l & 0xc0) == 0xc0) {
			if (p + 1 >= len || ++jumps > 16)
				return -1;
			if (jumps == 1)
				*off = p + 2;
			p = (l & 0x3f) << 8 | m[p + 1];
			continue;
		}
		if (l == 0)
			break;
		if (p + 1 + l > len || n + l + 2 > 255)
			return -1;
		memcpy(out + n, m + p + 1, l);
		n += l;
		out[n++] = '.';
		p += 1 + l;
	}
	if (n == 0)
		out[n++] = '.';
	out[n] = '\0';
	if (jumps == 0)
		*off = p + 1;
	return 0;
}

/* One RR at *off into r.  0, or -1 if it is not whole. */
static int
rr_parse(const uint8_t *m, size_t len, size_t *off, struct rr *r,
	 unsigned *cls)
{
	size_t p, rdlen;
	char target[256];

	if (name_text(m, len, off, r->owner) < 0 || len - *off < 10)
		return -1;
	p = *off;
	r->type = get16(m + p);
	*cls = get16(m + p + 2);
	r->ttl = get16(m + p + 4) << 16 | get16(m + p + 6);
	rdlen = get16(m + p + 8);
	p += 10;
	if (len - p < rdlen)
		return -1;
	r->text[0] = '\0';
	if (r->type == H_DNS_A && rdlen == 4) {
		inet_ntop(AF_INET, m + p, r->text, sizeof(r->text));
	} else if (r->type == H_DNS_AAAA && rdlen == 16) {
		inet_ntop(AF_INET6, m + p, r->text, sizeof(r->text));
	} else if (r->type == H_DNS_SRV && rdlen > 6) {
		size_t t = p + 6;

		if (name_text(m, p + rdlen, &t, target) < 0 || t != p + rdlen)
			return -1;
		snprintf(r->text, sizeof(r->text), "%u %u %u %s",
			 get16(m + p), get16(m + p + 2), get16(m + p + 4),
			 target);
	} else if (r->type != 41 || rdlen != 0) {
		return -1;
	}
	*off = p + rdlen;
	return 0;
}

/* Parse the reply m[0..len) into r.  0, or -1 if it is not valid DNS. */
static int
reply_parse(struct reply *r, const uint8_t *m, size_t len)
{
	size_t off = 12;
	unsigned cls;

	memset(r, 0, sizeof(*r));
	if (len < 12)
		return -1;
	r->id = get16(m);
	r->qr = m[2] & 0x80;
	r->aa = m[2] & 0x04;
	r->tc = m[2] & 0x02;
	r->rd = m[2] & 0x01;
	r->ra = m[3] & 0x80;
	r->rcode = m[3] & 0x0f;
	r->qdcount = get16(m + 4);
	r->ancount = get16(m + 6);
	r->nscount = get16(m + 8);
	r->arcount = get16(m + 10);
	if (r->qdcount > 1 || r->ancount > MAX_RR || r->nscount > 0 ||
	    r->arcount > MAX_RR)
		return -1;
	if (r->qdcount == 1) {
		if (name_text(m, len, &off, r->qname) < 0 || len - off < 4)
			return -1;
		r->qtype = get16(m + off);
		off += 4;
	}
	for (unsigned i = 0; i < r->ancount; i++)
		if (rr_parse(m, len, &off, &r->an[i], &cls) < 0)
			return -1;
	for (unsigned i = 0; i < r->arcount; i++) {
		struct rr *a = &r->ar[r->nar];

		if (rr_parse(m, len, &off, a, &cls) < 0)
			return -1;
		if (a->type == 41) {
			r->opt = true;
			r->opt_payload = cls;
		} else {
			r->nar++;
		}
	}
	return off == len ? 0 : -1;
}

/* A UDP socket connected to the server. */
static int
udp_open(struct h_dns *d)
{
	struct sockaddr_in sin = {
		.sin_family = AF_INET,
		.sin_port = htons((uint16_t)h_dns_port(d)),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)),
			 0);
	return fd;
}

static int
tcp_open(struct h_dns *d)
{
	int fd = h_connect("127.0.0.1", h_dns_port(d), WAIT_MS);

	ck_assert_msg(fd >= 0, "connect to DNS port %d: %s", h_dns_port(d),
		      strerror(-fd));
	return fd;
}

/* Exactly n bytes within timeout_ms: 0, -ETIMEDOUT, or -EPIPE on EOF. */
static int
read_full(int fd, uint8_t *buf, size_t n, int timeout_ms)
{
	uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;
	size_t got = 0;

	while (got < n) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int left = (int)(deadline - h_now_ms());
		ssize_t r;

		if (left <= 0 || poll(&p, 1, left) <= 0)
			return -ETIMEDOUT;
		r = recv(fd, buf + got, n - got, MSG_DONTWAIT);
		if (r == 0)
			return -EPIPE;
		if (r < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		if (r > 0)
			got += (size_t)r;
	}
	return 0;
}

/* The next message on fd (UDP or TCP) into buf[cap]: its length, or
 * -errno (-ETIMEDOUT after timeout_ms). */
static long
recv_msg(int fd, int proto, uint8_t *buf, size_t cap, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint8_t len[2];
	ssize_t n;
	int rc;

	if (proto == TCP) {
		rc = read_full(fd, len, 2, timeout_ms);
		if (rc == 0 && get16(len) > cap)
			rc = -EMSGSIZE;
		if (rc == 0)
			rc = read_full(fd, buf, get16(len), timeout_ms);
		return rc < 0 ? rc : (long)get16(len);
	}
	if (poll(&p, 1, timeout_ms) <= 0)
		return -ETIMEDOUT;
	n = recv(fd, buf, cap, 0);
	return n < 0 ? -errno : (long)n;
}

/* Send the message q[0..n) on fd, framed for TCP. */
static void
send_msg(int fd, int proto, const uint8_t *q, size_t n)
{
	uint8_t buf[2 + 512];

	ck_assert_uint_le(n, 512);
	buf[0] = (uint8_t)(n >> 8);
	buf[1] = (uint8_t)n;
	memcpy(buf + 2, q, n);
	if (proto == UDP)
		ck_assert_int_eq(send(fd, q, n, 0), (ssize_t)n);
	else
		ck_assert_int_eq(h_write_all(fd, buf, n + 2, WAIT_MS), 0);
}

/*
 * Ask (name, type) over proto on a connection of its own and return the
 * parsed reply (free it), which must answer this query: its ID, QR, the
 * question echoed.  raw/rawlen (if set) get the bytes.
 */
static struct reply *
ask_raw(struct h_dns *d, int proto, const char *name, unsigned type,
	unsigned payload, uint8_t *raw, long *rawlen)
{
	struct reply *r = malloc(sizeof(*r));
	uint8_t q[512], *buf = malloc(MSG_MAX);
	unsigned id = next_id++;
	size_t qlen = query_build(q, id, name, type, payload);
	int fd = proto == UDP ? udp_open(d) : tcp_open(d);
	long n;

	ck_assert(r != NULL && buf != NULL);
	send_msg(fd, proto, q, qlen);
	n = recv_msg(fd, proto, buf, MSG_MAX, WAIT_MS);
	close(fd);
	ck_assert_msg(n > 0, "no reply to %s type %u over %s: %s", name, type,
		      proto == UDP ? "UDP" : "TCP", strerror((int)-n));
	if (raw) {
		memcpy(raw, buf, (size_t)n);
		*rawlen = n;
	}
	ck_assert_msg(reply_parse(r, buf, (size_t)n) == 0,
		      "reply to %s type %u is not valid DNS", name, type);
	free(buf);
	ck_assert_uint_eq(r->id, id);
	ck_assert(r->qr);
	ck_assert(r->rd);
	ck_assert(!r->ra);
	ck_assert_uint_eq(r->qdcount, 1);
	ck_assert_uint_eq(r->qtype, type);
	ck_assert_int_eq(strncasecmp(r->qname, name, strlen(name)), 0);
	return r;
}

static struct reply *
ask(struct h_dns *d, int proto, const char *name, unsigned type)
{
	return ask_raw(d, proto, name, type, 0, NULL, NULL);
}

/* Is one of rr[0..n) of this type and text, and owner if not NULL? */
static bool
has(const struct rr *rr, unsigned n, const char *owner, unsigned type,
    const char *text)
{
	for (unsigned i = 0; i < n; i++)
		if (rr[i].type == type && strcmp(rr[i].text, text) == 0 &&
		    (owner == NULL || strcmp(rr[i].owner, owner) == 0))
			return true;
	return false;
}

START_TEST(answers_a_and_aaaa)
{
	static const char *const a[] = { "10.0.0.1", "10.0.0.2" };
	static const char *const aaaa[] = { "fd00::1" };
	struct h_dns *d = h_dns_start();

	h_dns_set(d, "www.example.", H_DNS_A, a, 2, 30);
	h_dns_set(d, "WWW.example", H_DNS_AAAA, aaaa, 1, 40);
	for (int proto = UDP; proto <= TCP; proto++) {
		struct reply *r = ask(d, proto, "WWW.Example", H_DNS_A);

		ck_assert(r->aa);
		ck_assert(!r->tc);
		ck_assert_uint_eq(r->rcode, 0);
		/* The question is echoed as asked, case and all. */
		ck_assert_str_eq(r->qname, "WWW.Example.");
		ck_assert_uint_eq(r->ancount, 2);
		ck_assert_uint_eq(r->arcount, 0);
		for (int i = 0; i < 2; i++) {
			ck_assert_str_eq(r->an[i].owner, "WWW.Example.");
			ck_assert_uint_eq(r->an[i].ttl, 30);
		}
		ck_assert(has(r->an, 2, NULL, H_DNS_A, "10.0.0.1"));
		ck_assert(has(r->an, 2, NULL, H_DNS_A, "10.0.0.2"));
		free(r);

		r = ask(d, proto, "www.example.", H_DNS_AAAA);
		ck_assert_uint_eq(r->rcode, 0);
		ck_assert_uint_eq(r->ancount, 1);
		ck_assert_uint_eq(r->an[0].type, H_DNS_AAAA);
		ck_assert_uint_eq(r->an[0].ttl, 40);
		ck_assert_str_eq(r->an[0].text, "fd00::1");
		free(r);
	}
	h_dns_stop(d);
}
END_TEST

START_TEST(srv_with_additional)
{
	static const char *const srv[] = { "10 60 5432 pg1.example.",
					   "20 40 5433 PG2.example",
					   "30 0 5434 pg1.example" };
	static const char *const a1[] = { "10.0.0.1" }, *const a2[] = {
		"10.0.0.2"
	};
	static const char *const aaaa1[] = { "fd00::1" };
	struct h_dns *d = h_dns_start();
	struct reply *r;

	h_dns_set(d, "_pg._tcp.example", H_DNS_SRV, srv, 3, 60);
	h_dns_set(d, "pg1.example", H_DNS_A, a1, 1, 10);
	h_dns_set(d, "pg1.example", H_DNS_AAAA, aaaa1, 1, 10);
	h_dns_set(d, "pg2.example", H_DNS_A, a2, 1, 10);
	r = ask(d, UDP, "_pg._tcp.example.", H_DNS_SRV);
	ck_assert_uint_eq(r->rcode, 0);
	ck_assert_uint_eq(r->ancount, 3);
	ck_assert(has(r->an, 3, NULL, H_DNS_SRV, "10 60 5432 pg1.example."));
	ck_assert(has(r->an, 3, NULL, H_DNS_SRV, "20 40 5433 pg2.example."));
	ck_assert(has(r->an, 3, NULL, H_DNS_SRV, "30 0 5434 pg1.example."));
	ck_assert_uint_eq(r->an[0].ttl, 60);
	/* pg1 is named twice; its addresses come once. */
	ck_assert_uint_eq(r->nar, 3);
	ck_assert(has(r->ar, 3, "pg1.example.", H_DNS_A, "10.0.0.1"));
	ck_assert(has(r->ar, 3, "pg1.example.", H_DNS_AAAA, "fd00::1"));
	ck_assert(has(r->ar, 3, "pg2.example.", H_DNS_A, "10.0.0.2"));
	free(r);

	h_dns_additional(d, false);
	r = ask(d, TCP, "_pg._tcp.example.", H_DNS_SRV);
	ck_assert_uint_eq(r->ancount, 3);
	ck_assert_uint_eq(r->arcount, 0);
	free(r);
	h_dns_stop(d);
}
END_TEST

START_TEST(nodata_and_nxdomain)
{
	static const char *const a[] = { "10.0.0.1" };
	struct h_dns *d = h_dns_start();
	struct reply *r;

	h_dns_set(d, "empty.example", H_DNS_A, NULL, 0, 30);
	h_dns_set(d, "v4.example", H_DNS_A, a, 1, 30);
	r = ask(d, UDP, "empty.example", H_DNS_A);
	ck_assert_uint_eq(r->rcode, 0);
	ck_assert_uint_eq(r->ancount, 0);
	free(r);
	r = ask(d, UDP, "v4.example", H_DNS_AAAA);
	ck_assert_uint_eq(r->rcode, 0);
	ck_assert_uint_eq(r->ancount, 0);
	free(r);
	/* A type the server knows nothing of: NODATA as well. */
	r = ask(d, TCP, "v4.example", 15);
	ck_assert_uint_eq(r->rcode, 0);
	ck_assert_uint_eq(r->ancount, 0);
	free(r);
	r = ask(d, UDP, "nope.example", H_DNS_A);
	ck_assert(r->aa);
	ck_assert_uint_eq(r->rcode, 3);
	ck_assert_uint_eq(r->ancount, 0);
	free(r);
	h_dns_remove(d, "V4.example.");
	r = ask(d, TCP, "v4.example", H_DNS_A);
	ck_assert_uint_eq(r->rcode, 3);
	free(r);
	/* Removing what is not there is fine. */
	h_dns_remove(d, "v4.example");
	h_dns_stop(d);
}
END_TEST

START_TEST(changes_take_effect)
{
	static const char *const one[] = { "10.0.0.1" };
	static const char *const two[] = { "10.0.0.2", "10.0.0.3" };
	struct h_dns *d = h_dns_start();
	struct reply *r;

	h_dns_set(d, "svc.example", H_DNS_A, one, 1, 30);
	r = ask(d, UDP, "svc.example", H_DNS_A);
	ck_assert_uint_eq(r->ancount, 1);
	ck_assert_str_eq(r->an[0].text, "10.0.0.1");
	free(r);
	h_dns_set(d, "svc.example", H_DNS_A, two, 2, 5);
	r = ask(d, UDP, "svc.example", H_DNS_A);
	ck_assert_uint_eq(r->ancount, 2);
	ck_assert(has(r->an, 2, NULL, H_DNS_A, "10.0.0.2"));
	ck_assert(has(r->an, 2, NULL, H_DNS_A, "10.0.0.3"));
	ck_assert_uint_eq(r->an[0].ttl, 5);
	free(r);
	h_dns_set(d, "svc.example", H_DNS_A, NULL, 0, 5);
	r = ask(d, UDP, "svc.example", H_DNS_A);
	ck_assert_uint_eq(r->rcode, 0);
	ck_assert_uint_eq(r->ancount, 0);
	free(r);
	h_dns_remove(d, "svc.example");
	r = ask(d, UDP, "svc.example", H_DNS_A);
	ck_assert_uint_eq(r->rcode, 3);
	free(r);
	h_dns_set(d, "svc.example", H_DNS_A, one, 1, 30);
	r = ask(d, UDP, "svc.example", H_DNS_A);
	ck_assert_uint_eq(r->rcode, 0);
	ck_assert_uint_eq(r->ancount, 1);
	free(r);
	h_dns_stop(d);
}
END_TEST

START_TEST(error_modes)
{
	static const char *const a[] = { "10.0.0.1" };
	static const struct {
		enum h_dns_mode mode;
		unsigned rcode;
	} modes[] = {
		{ H_DNS_SERVFAIL, 2 },
		{ H_DNS_REFUSED, 5 },
		{ H_DNS_NXDOMAIN, 3 },
	};
	struct h_dns *d = h_dns_start();
	struct reply *r;

	h_dns_set(d, "www.example", H_DNS_A, a, 1, 30);
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		h_dns_mode(d, modes[i].mode);
		for (int proto = UDP; proto <= TCP; proto++) {
			r = ask(d, proto, "www.example", H_DNS_A);
			ck_assert_uint_eq(r->rcode, modes[i].rcode);
			ck_assert_uint_eq(r->ancount, 0);
			free(r);
		}
	}
	h_dns_mode(d, H_DNS_NORMAL);
	r = ask(d, UDP, "www.example", H_DNS_A);
	ck_assert_uint_eq(r->rcode, 0);
	ck_assert_uint_eq(r->ancount, 1);
	free(r);
	h_dns_stop(d);
}
END_TEST

START_TEST(malformed)
{
	static const char *const a[] = { "10.0.0.1" };
	struct h_dns *d = h_dns_start();
	uint8_t q[512], *buf = malloc(MSG_MAX);
	struct reply *r = malloc(sizeof(*r));

	ck_assert(buf != NULL && r != NULL);
	h_dns_set(d, "www.example", H_DNS_A, a, 1, 30);
	h_dns_mode(d, H_DNS_MALFORMED);
	for (int proto = UDP; proto <= TCP; proto++) {
		int fd = proto == UDP ? udp_open(d) : tcp_open(d);
		size_t qlen = query_build(q, 0x4242, "www.example", H_DNS_A,
					  0);
		long n;

		send_msg(fd, proto, q, qlen);
		n = recv_msg(fd, proto, buf, MSG_MAX, WAIT_MS);
		close(fd);
		ck_assert_int_gt(n, 12);
		/* It looks like the answer... */
		ck_assert_uint_eq(get16(buf), 0x4242);
		ck_assert(buf[2] & 0x80);
		ck_assert_uint_eq(get16(buf + 4), 1);
		ck_assert_uint_eq(get16(buf + 6), 1);
		/* ...but is not DNS. */
		ck_assert_int_eq(reply_parse(r, buf, (size_t)n), -1);
	}
	h_dns_mode(d, H_DNS_NORMAL);
	free(r);
	r = ask(d, TCP, "www.example", H_DNS_A);
	ck_assert_uint_eq(r->ancount, 1);
	free(r);
	free(buf);
	h_dns_stop(d);
}
END_TEST

/* Silent over both transports; the queries still count, and a TCP
 * connection that got no answer serves the next query once normal. */
START_TEST(silent)
{
	static const char *const a[] = { "10.0.0.1" };
	struct h_dns *d = h_dns_start();
	uint8_t q[512], *buf = malloc(MSG_MAX);
	struct reply *r = malloc(sizeof(*r));
	int tcp = tcp_open(d);
	size_t qlen;
	long n;

	ck_assert(buf != NULL && r != NULL);
	h_dns_set(d, "www.example", H_DNS_A, a, 1, 30);
	h_dns_mode(d, H_DNS_SILENT);
	for (int proto = UDP; proto <= TCP; proto++) {
		int fd = proto == UDP ? udp_open(d) : tcp;

		qlen = query_build(q, 7, "www.example", H_DNS_A, 0);
		send_msg(fd, proto, q, qlen);
		n = recv_msg(fd, proto, buf, MSG_MAX, SILENCE_MS);
		ck_assert_msg(n == -ETIMEDOUT, "silent server: %ld over %s", n,
			      proto == UDP ? "UDP" : "TCP");
		if (proto == UDP)
			close(fd);
	}
	ck_assert_uint_eq(h_dns_queries(d, "www.example", H_DNS_A), 2);
	ck_assert_uint_eq(h_dns_tcp_queries(d), 1);
	h_dns_mode(d, H_DNS_NORMAL);
	qlen = query_build(q, 8, "www.example", H_DNS_A, 0);
	send_msg(tcp, TCP, q, qlen);
	n = recv_msg(tcp, TCP, buf, MSG_MAX, WAIT_MS);
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(reply_parse(r, buf, (size_t)n), 0);
	ck_assert_uint_eq(r->id, 8);
	ck_assert_uint_eq(r->ancount, 1);
	close(tcp);
	free(r);
	free(buf);
	h_dns_stop(d);
}
END_TEST

/*
 * 500 A records (8 kB) do not fit a datagram: over UDP the question alone
 * with TC, with EDNS too; TCP carries them all.  So do 500 SRV records
 * with 500 addresses in the additional section.
 */
START_TEST(truncation_500)
{
	static char text[500][64];
	const char *rd[500];
	struct h_dns *d = h_dns_start();
	struct reply *r;
	long len;
	uint8_t *raw = malloc(MSG_MAX);

	ck_assert_ptr_nonnull(raw);
	for (int i = 0; i < 500; i++) {
		snprintf(text[i], sizeof(text[i]), "10.0.%d.%d", i / 250,
			 i % 250 + 1);
		rd[i] = text[i];
	}
	h_dns_set(d, "big.example", H_DNS_A, rd, 500, 30);
	r = ask_raw(d, UDP, "big.example", H_DNS_A, 0, raw, &len);
	ck_assert(r->tc);
	ck_assert_uint_eq(r->rcode, 0);
	ck_assert_uint_eq(r->ancount, 0);
	ck_assert_int_le(len, 512);
	free(r);
	r = ask(d, TCP, "big.example", H_DNS_A);
	ck_assert(!r->tc);
	ck_assert_uint_eq(r->ancount, 500);
	for (int i = 0; i < 500; i++)
		ck_assert_str_eq(r->an[i].text, text[i]);
	free(r);

	for (int i = 0; i < 500; i++) {
		const char *ip[1];
		char target[32], addr[32];

		snprintf(target, sizeof(target), "b%d.example", i);
		snprintf(addr, sizeof(addr), "10.1.%d.%d", i / 250,
			 i % 250 + 1);
		ip[0] = addr;
		h_dns_set(d, target, H_DNS_A, ip, 1, 30);
		snprintf(text[i], sizeof(text[i]), "1 1 %d %s.", 8000 + i,
			 target);
	}
	h_dns_set(d, "_big._tcp.example", H_DNS_SRV, rd, 500, 30);
	r = ask_raw(d, UDP, "_big._tcp.example", H_DNS_SRV, 4096, raw, &len);
	ck_assert(r->tc);
	ck_assert_uint_eq(r->ancount, 0);
	ck_assert(r->opt);
	ck_assert_int_le(len, 1232);
	free(r);
	r = ask(d, TCP, "_big._tcp.example", H_DNS_SRV);
	ck_assert(!r->tc);
	ck_assert_uint_eq(r->ancount, 500);
	ck_assert_uint_eq(r->nar, 500);
	for (int i = 0; i < 500; i++)
		ck_assert_str_eq(r->an[i].text, text[i]);
	ck_assert_str_eq(r->ar[499].owner, "b499.example.");
	ck_assert_str_eq(r->ar[499].text, "10.1.1.250");
	free(r);
	free(raw);
	h_dns_stop(d);
}
END_TEST

/*
 * The UDP limit is 512 without EDNS, else what the query offers, at least
 * 512 and at most 1232; a reply to a query with OPT has one (1232).
 */
START_TEST(edns_payload)
{
	static const struct {
		unsigned records, payload;
		bool tc;
	} cases[] = {
		/* 12 + 15 question + 16 per record (+ 11 OPT) */
		{ 20, 0, false },	/* 347 */
		{ 40, 0, true },	/* 667 > 512 */
		{ 40, 1232, false },	/* 678 */
		{ 40, 600, true },	/* 678 > 600 */
		{ 20, 100, false },	/* below 512 counts as 512 */
		{ 30, 100, true },	/* 518 > 512 */
		{ 70, 4096, false },	/* 1158 */
		{ 90, 4096, true },	/* 1478 > 1232 */
	};
	static char text[90][32];
	const char *rd[90];
	struct h_dns *d = h_dns_start();
	uint8_t *raw = malloc(MSG_MAX);
	long len;

	ck_assert_ptr_nonnull(raw);
	for (int i = 0; i < 90; i++) {
		snprintf(text[i], sizeof(text[i]), "10.2.0.%d", i + 1);
		rd[i] = text[i];
	}
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned n = cases[i].records, p = cases[i].payload;
		struct reply *r;

		h_dns_set(d, "e.example", H_DNS_A, rd, n, 30);
		r = ask_raw(d, UDP, "e.example", H_DNS_A, p, raw, &len);
		printf("edns: %u records, payload %u: %ld bytes%s\n", n, p,
		       len, r->tc ? ", TC" : "");
		ck_assert_msg(r->tc == cases[i].tc, "%u records, payload %u: "
			      "TC %d", n, p, r->tc);
		ck_assert_uint_eq(r->ancount, r->tc ? 0 : n);
		ck_assert(r->opt == (p > 0));
		if (p > 0)
			ck_assert_uint_eq(r->opt_payload, 1232);
		ck_assert_int_le(len, p == 0 ? 512 : p < 512 ? 512 : p > 1232
								 ? 1232 : p);
		free(r);
	}
	free(raw);
	h_dns_stop(d);
}
END_TEST

START_TEST(query_counts)
{
	static const char *const a[] = { "10.0.0.1" };
	struct h_dns *d = h_dns_start();
	uint8_t q[512];
	int fd;

	h_dns_set(d, "www.example", H_DNS_A, a, 1, 30);
	free(ask(d, UDP, "www.example", H_DNS_A));
	free(ask(d, UDP, "WWW.EXAMPLE.", H_DNS_A));
	free(ask(d, TCP, "www.example", H_DNS_AAAA));
	free(ask(d, UDP, "nope.example", H_DNS_SRV));
	ck_assert_uint_eq(h_dns_queries(d, "www.example", H_DNS_A), 2);
	ck_assert_uint_eq(h_dns_queries(d, "Www.Example.", H_DNS_A), 2);
	ck_assert_uint_eq(h_dns_queries(d, "www.example", H_DNS_AAAA), 1);
	ck_assert_uint_eq(h_dns_queries(d, "www.example", H_DNS_SRV), 0);
	ck_assert_uint_eq(h_dns_queries(d, "www.example", 0), 3);
	ck_assert_uint_eq(h_dns_queries(d, "nope.example", 0), 1);
	ck_assert_uint_eq(h_dns_queries(d, "other.example", 0), 0);
	ck_assert_uint_eq(h_dns_tcp_queries(d), 1);
	/* A query that does not parse names nothing. */
	fd = udp_open(d);
	query_build(q, 9, "www.example", H_DNS_A, 0);
	send_msg(fd, UDP, q, 20);
	ck_assert_int_gt(recv_msg(fd, UDP, q, sizeof(q), WAIT_MS), 0);
	close(fd);
	ck_assert_uint_eq(h_dns_queries(d, "www.example", 0), 3);
	h_dns_stop(d);
}
END_TEST

/*
 * FORMERR for a header with a question cut short, or two questions; no
 * reply for less than a header.
 */
START_TEST(formerr)
{
	struct h_dns *d = h_dns_start();
	uint8_t q[512], buf[512];
	struct reply *r = malloc(sizeof(*r));
	int fd = udp_open(d);
	size_t n = query_build(q, 0x77, "www.example", H_DNS_A, 0);
	long got;

	send_msg(fd, UDP, q, n - 3);
	got = recv_msg(fd, UDP, buf, sizeof(buf), WAIT_MS);
	ck_assert_int_eq(got, 12);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(reply_parse(r, buf, (size_t)got), 0);
	ck_assert_uint_eq(r->id, 0x77);
	ck_assert(r->qr);
	ck_assert_uint_eq(r->rcode, 1);
	free(r);

	q[5] = 2;
	send_msg(fd, UDP, q, n);
	got = recv_msg(fd, UDP, buf, sizeof(buf), WAIT_MS);
	ck_assert_int_eq(got, 12);
	ck_assert_uint_eq(buf[3] & 0x0f, 1);

	send_msg(fd, UDP, q, 11);
	ck_assert_int_eq(recv_msg(fd, UDP, buf, sizeof(buf), 100), -ETIMEDOUT);
	close(fd);
	h_dns_stop(d);
}
END_TEST

/*
 * Several queries on one TCP connection: two in one write, one a byte at
 * a time; the replies come in order.  H_DNS_CONNS connections at once are
 * all served, one more is closed.
 */
START_TEST(tcp_framing)
{
	static const char *const a[] = { "10.0.0.1" };
	struct h_dns *d = h_dns_start();
	uint8_t q[1024], *buf = malloc(MSG_MAX);
	struct reply *r = malloc(sizeof(*r));
	int fd = tcp_open(d), fds[H_DNS_CONNS + 1];
	size_t n = 0, one;

	ck_assert(buf != NULL && r != NULL);
	h_dns_set(d, "www.example", H_DNS_A, a, 1, 30);
	for (unsigned id = 1; id <= 3; id++) {
		size_t k = query_build(q + n + 2, id, "www.example", H_DNS_A,
				       0);

		q[n] = 0;
		q[n + 1] = (uint8_t)k;
		n += 2 + k;
	}
	one = n / 3;
	ck_assert_int_eq(h_write_all(fd, q, 2 * one, WAIT_MS), 0);
	for (size_t i = 2 * one; i < n; i++) {
		ck_assert_int_eq(h_write_all(fd, q + i, 1, WAIT_MS), 0);
		h_sleep_ms(1);
	}
	for (unsigned id = 1; id <= 3; id++) {
		long got = recv_msg(fd, TCP, buf, MSG_MAX, WAIT_MS);

		ck_assert_int_gt(got, 0);
		ck_assert_int_eq(reply_parse(r, buf, (size_t)got), 0);
		ck_assert_uint_eq(r->id, id);
		ck_assert_uint_eq(r->ancount, 1);
	}
	close(fd);
	ck_assert_uint_eq(h_dns_tcp_queries(d), 3);

	for (int i = 0; i < H_DNS_CONNS; i++)
		fds[i] = tcp_open(d);
	for (int i = 0; i < H_DNS_CONNS; i++)
		send_msg(fds[i], TCP, q + 2, one - 2);
	for (int i = 0; i < H_DNS_CONNS; i++)
		ck_assert_int_gt(recv_msg(fds[i], TCP, buf, MSG_MAX, WAIT_MS),
				 0);
	/* All of them hold a slot now: the next one is closed at once. */
	fds[H_DNS_CONNS] = tcp_open(d);
	ck_assert_int_eq(recv_msg(fds[H_DNS_CONNS], TCP, buf, MSG_MAX,
				  WAIT_MS),
			 -EPIPE);
	for (int i = 0; i <= H_DNS_CONNS; i++)
		close(fds[i]);
	free(r);
	free(buf);
	h_dns_stop(d);
}
END_TEST

/*
 * A client with a small receive buffer asks for three 8 kB answers in one
 * write and reads only later: the server waits for room (and reads no
 * further) instead of losing bytes, then sends all three.
 */
#define NSLOW 16
START_TEST(tcp_slow_reader)
{
	static char text[500][32];
	const char *rd[500];
	struct sockaddr_in sin = {
		.sin_family = AF_INET,
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	struct h_dns *d = h_dns_start();
	uint8_t q[NSLOW * 64], *buf = malloc(MSG_MAX);
	struct reply *r = malloc(sizeof(*r));
	int fd, small = 2048;
	size_t n = 0;

	ck_assert(buf != NULL && r != NULL);
	for (int i = 0; i < 500; i++) {
		snprintf(text[i], sizeof(text[i]), "10.3.%d.%d", i / 250,
			 i % 250 + 1);
		rd[i] = text[i];
	}
	h_dns_set(d, "big.example", H_DNS_A, rd, 500, 30);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	/* Before connect, so the window is small from the start. */
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small,
				    sizeof(small)),
			 0);
	sin.sin_port = htons((uint16_t)h_dns_port(d));
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)),
			 0);
	for (unsigned id = 1; id <= NSLOW; id++) {
		size_t k = query_build(q + n + 2, id, "big.example", H_DNS_A,
				       0);

		q[n] = 0;
		q[n + 1] = (uint8_t)k;
		n += 2 + k;
	}
	ck_assert_int_eq(h_write_all(fd, q, n, WAIT_MS), 0);
	h_sleep_ms(100);
	for (unsigned id = 1; id <= NSLOW; id++) {
		long got = recv_msg(fd, TCP, buf, MSG_MAX, WAIT_MS);

		ck_assert_int_gt(got, 0);
		ck_assert_int_eq(reply_parse(r, buf, (size_t)got), 0);
		ck_assert_uint_eq(r->id, id);
		ck_assert_uint_eq(r->ancount, 500);
		ck_assert_str_eq(r->an[499].text, "10.3.1.250");
	}
	close(fd);
	free(r);
	free(buf);
	h_dns_stop(d);
}
END_TEST

/* A TCP connection that sends nothing is closed after H_DNS_IDLE_MS. */
START_TEST(tcp_idle_closed)
{
	struct h_dns *d = h_dns_start();
	int fd = tcp_open(d);
	uint64_t t0 = h_now_ms();
	uint8_t b;
	long t;

	ck_assert_int_eq(read_full(fd, &b, 1, H_DNS_IDLE_MS + 1000), -EPIPE);
	t = (long)(h_now_ms() - t0);
	printf("idle: closed after %ld ms (H_DNS_IDLE_MS %d)\n", t,
	       H_DNS_IDLE_MS);
	ck_assert_int_ge(t, H_DNS_IDLE_MS - 50);
	close(fd);
	h_dns_stop(d);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("dns");
	TCase *tc = h_tcase(s, "dns", 30, h_teardown);
	SRunner *sr;
	int failed;

	tcase_add_test(tc, answers_a_and_aaaa);
	tcase_add_test(tc, srv_with_additional);
	tcase_add_test(tc, nodata_and_nxdomain);
	tcase_add_test(tc, changes_take_effect);
	tcase_add_test(tc, error_modes);
	tcase_add_test(tc, malformed);
	tcase_add_test(tc, silent);
	tcase_add_test(tc, truncation_500);
	tcase_add_test(tc, edns_payload);
	tcase_add_test(tc, query_counts);
	tcase_add_test(tc, formerr);
	tcase_add_test(tc, tcp_framing);
	tcase_add_test(tc, tcp_slow_reader);
	tcase_add_test(tc, tcp_idle_closed);
	/* Not h_run_suite(): nothing here runs ringlb, so no RINGLB_BIN. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}

/*
 * h_dns.c: an authoritative DNS server for the tests.
 * See h_dns.h.
 *
 * One thread polls an eventfd (h_dns_stop() writes it), the UDP socket,
 * the TCP listener and up to H_DNS_CONNS TCP connections.  The zone, the
 * mode and the counters are under one mutex; the thread holds it while it
 * builds a reply, never while it sends one.  Names are kept in lowercase
 * wire form (RFC 1035 3.1), so a lookup is a memcmp().
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "h_dns.h"

#define DNS_NAME_MAX	255	/* wire form, the root label included */
#define DNS_MSG_MAX	65535	/* what a TCP length prefix can say */
#define DNS_UDP_PLAIN	512	/* UDP limit without EDNS (RFC 1035 4.2.1) */
/* What we advertise in OPT and the most we send over UDP (DNS flag day
 * 2020): a client that offers more still gets at most this. */
#define DNS_UDP_EDNS	1232
#define DNS_POLL_MS	250	/* how often idle connections are looked at */
/*
 * A small send buffer for TCP: else the kernel takes megabytes for a
 * client that does not read, and a reply would never go out in parts.
 */
#define DNS_SNDBUF	8192
#define DNS_HEADER	12

#define TYPE_OPT	41
#define CLASS_IN	1

#define RCODE_FORMERR	1
#define RCODE_SERVFAIL	2
#define RCODE_NXDOMAIN	3
#define RCODE_REFUSED	5

/* One record's rdata in wire form; SRV: priority, weight, port, target. */
struct dns_rr {
	uint16_t len;
	uint8_t data[6 + DNS_NAME_MAX];
};

struct dns_rrset {
	struct dns_rr *rr;
	size_t n;
	unsigned ttl;
};

/* The types a zone holds, in the order of dns_name.set[]. */
static const uint16_t set_type[] = { H_DNS_A, H_DNS_AAAA, H_DNS_SRV };
#define NSETS	(sizeof(set_type) / sizeof(set_type[0]))

struct dns_name {
	uint8_t name[DNS_NAME_MAX];
	size_t len;
	struct dns_rrset set[NSETS];
};

struct dns_count {
	uint8_t name[DNS_NAME_MAX];
	size_t len;
	uint16_t type;
	unsigned n;
};

/*
 * A TCP connection.  A message and its reply fit in[] and out[] whole;
 * while a reply is unsent nothing more is read, so a client that does not
 * read stalls only its own connection.
 */
struct dns_conn {
	int fd;			/* -1: the slot is free */
	uint64_t active_ms;	/* last read or write */
	size_t in_len, out_len, out_off;
	uint8_t in[2 + DNS_MSG_MAX];
	uint8_t out[2 + DNS_MSG_MAX];
};

struct h_dns {
	int udp, tcp, wake, port;
	pthread_t thread;
	pthread_mutex_t lock;
	/* Under lock. */
	enum h_dns_mode mode;
	bool additional;
	struct dns_name *names;
	size_t nnames;
	struct dns_count *counts;
	size_t ncounts;
	unsigned tcp_queries;
	/* The thread's own. */
	struct dns_conn conn[H_DNS_CONNS];
	uint8_t dgram[DNS_MSG_MAX];
	uint8_t reply[DNS_MSG_MAX];
};

/* A parsed query.  qname is as sent (a reply echoes its case), key is
 * lowercase. */
struct dns_query {
	const uint8_t *msg;
	uint8_t qname[DNS_NAME_MAX];
	uint8_t key[DNS_NAME_MAX];
	size_t nlen;
	uint16_t qtype, qclass;
	bool edns;
	uint16_t payload;
};

/* A reply being written; over says something did not fit. */
struct dns_buf {
	uint8_t *p;
	size_t len, cap;
	bool over;
};

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void
set16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void
put(struct dns_buf *b, const void *src, size_t n)
{
	if (b->over || b->cap - b->len < n) {
		b->over = true;
		return;
	}
	memcpy(b->p + b->len, src, n);
	b->len += n;
}

static void
put16(struct dns_buf *b, unsigned v)
{
	uint8_t x[2];

	set16(x, v);
	put(b, x, 2);
}

static void
put32(struct dns_buf *b, uint32_t v)
{
	put16(b, v >> 16);
	put16(b, v & 0xffff);
}

static int
type_index(unsigned type)
{
	for (size_t i = 0; i < NSETS; i++)
		if (set_type[i] == type)
			return (int)i;
	return -1;
}

/*
 * name ("www.Example." or "www.example"; "." is the root) as lowercase
 * wire form in out[DNS_NAME_MAX]; its length.  ck_assert if it is not a
 * name.
 */
static size_t
name_from_text(const char *name, uint8_t *out)
{
	const char *s = strcmp(name, ".") == 0 ? "" : name;
	size_t n = 0;

	while (*s != '\0') {
		size_t l = strcspn(s, ".");

		ck_assert_msg(l >= 1 && l <= 63 && n + 1 + l < DNS_NAME_MAX,
			      "bad DNS name \"%s\"", name);
		out[n++] = (uint8_t)l;
		for (size_t i = 0; i < l; i++)
			out[n++] = (uint8_t)tolower((unsigned char)s[i]);
		s += l;
		if (*s == '.')
			s++;
	}
	out[n++] = 0;
	return n;
}

/*
 * Read the name at *off in m[0..len) into out[DNS_NAME_MAX], uncompressed,
 * following compression pointers (a bounded number: a loop of them ends
 * too); *off moves past the name as it is written there.  Its length, or -1.
 */
static int
name_read(const uint8_t *m, size_t len, size_t *off, uint8_t *out)
{
	size_t p = *off, n = 0;
	int jumps = 0;

	for (;;) {
		uint8_t l;

		if (p >= len)
			return -1;
		l = m[p];
		if ((l & 0xc0) == 0xc0) {
			if (p + 1 >= len || ++jumps > 16)
				return -1;
			if (jumps == 1)
				*off = p + 2;
			p = (size_t)(l & 0x3f) << 8 | m[p + 1];
			continue;
		}
		if ((l & 0xc0) != 0 || n + 1 + l > DNS_NAME_MAX ||
		    len - p < 1 + (size_t)l)
			return -1;
		memcpy(out + n, m + p, 1 + (size_t)l);
		n += 1 + (size_t)l;
		p += 1 + (size_t)l;
		if (l == 0)
			break;
	}
	if (jumps == 0)
		*off = p;
	return (int)n;
}

/*
 * The one question of m and the payload size of an OPT RR in the
 * additional section; any other RR is skipped.  0, or -1 if m is not that.
 */
static int
query_parse(struct dns_query *q, const uint8_t *m, size_t len)
{
	unsigned nrr = get16(m + 6) + get16(m + 8) + get16(m + 10);
	unsigned first_ar = nrr - get16(m + 10);
	uint8_t skip[DNS_NAME_MAX];
	size_t off = DNS_HEADER;
	int n;

	q->msg = m;
	if (get16(m + 4) != 1)
		return -1;
	n = name_read(m, len, &off, q->qname);
	if (n < 0 || len - off < 4)
		return -1;
	q->nlen = (size_t)n;
	/* Length bytes are at most 63, below 'A': tolower() leaves them. */
	for (size_t i = 0; i < q->nlen; i++)
		q->key[i] = (uint8_t)tolower(q->qname[i]);
	q->qtype = get16(m + off);
	q->qclass = get16(m + off + 2);
	off += 4;
	for (unsigned i = 0; i < nrr; i++) {
		uint16_t type, class, rdlen;

		if (name_read(m, len, &off, skip) < 0 || len - off < 10)
			return -1;
		type = get16(m + off);
		class = get16(m + off + 2);
		rdlen = get16(m + off + 8);
		off += 10;
		if (len - off < rdlen)
			return -1;
		off += rdlen;
		if (type == TYPE_OPT && i >= first_ar) {
			q->edns = true;
			q->payload = class;
		}
	}
	return 0;
}

static struct dns_name *
zone_find(const struct h_dns *d, const uint8_t *name, size_t len)
{
	for (size_t i = 0; i < d->nnames; i++)
		if (d->names[i].len == len &&
		    memcmp(d->names[i].name, name, len) == 0)
			return &d->names[i];
	return NULL;
}

static void
count_query(struct h_dns *d, const struct dns_query *q)
{
	struct dns_count *c;

	for (size_t i = 0; i < d->ncounts; i++) {
		c = &d->counts[i];
		if (c->type == q->qtype && c->len == q->nlen &&
		    memcmp(c->name, q->key, q->nlen) == 0) {
			c->n++;
			return;
		}
	}
	c = realloc(d->counts, (d->ncounts + 1) * sizeof(*c));
	/* No ck_assert here: it would end the test from the wrong thread. */
	if (c == NULL)
		abort();
	d->counts = c;
	c = &d->counts[d->ncounts++];
	memcpy(c->name, q->key, q->nlen);
	c->len = q->nlen;
	c->type = q->qtype;
	c->n = 1;
}

/*
 * Start b with the header of the reply to q (QDCOUNT 1, the other counts
 * left for reply_counts()) and the question as asked.
 */
static void
reply_head(struct dns_buf *b, const struct dns_query *q, unsigned rcode,
	   bool tc)
{
	const uint8_t *m = q->msg;
	/* QR, the opcode and RD as asked, AA, TC; RA 0. */
	uint8_t flags = (uint8_t)(0x80 | (m[2] & 0x79) | 0x04 | (tc ? 2 : 0));
	uint8_t h[DNS_HEADER] = { m[0], m[1], flags, (uint8_t)rcode, 0, 1 };

	b->len = 0;
	b->over = false;
	put(b, h, sizeof(h));
	put(b, q->qname, q->nlen);
	put16(b, q->qtype);
	put16(b, q->qclass);
}

static void
reply_counts(uint8_t *out, unsigned an, unsigned ar)
{
	set16(out + 6, an);
	set16(out + 8, 0);
	set16(out + 10, ar);
}

static void
put_rr(struct dns_buf *b, const uint8_t *owner, size_t olen, unsigned type,
       unsigned ttl, const struct dns_rr *rr)
{
	put(b, owner, olen);
	put16(b, type);
	put16(b, CLASS_IN);
	put32(b, ttl);
	put16(b, rr->len);
	put(b, rr->data, rr->len);
}

static void
put_opt(struct dns_buf *b)
{
	/* Root owner, OPT, payload size; extended RCODE, version, flags 0. */
	static const uint8_t opt[] = {
		0, 0, TYPE_OPT, DNS_UDP_EDNS >> 8, DNS_UDP_EDNS & 0xff,
		0, 0, 0, 0, 0, 0,
	};

	put(b, opt, sizeof(opt));
}

/* Does an SRV record before the i-th of s name the same target? */
static bool
srv_seen(const struct dns_rrset *s, size_t i)
{
	const struct dns_rr *r = &s->rr[i];

	for (size_t j = 0; j < i; j++)
		if (s->rr[j].len == r->len &&
		    memcmp(s->rr[j].data + 6, r->data + 6, r->len - 6u) == 0)
			return true;
	return false;
}

/*
 * The records of set t of z as answers, owned by the question's name; for
 * SRV, with additional on, the addresses of each target after them.
 */
static void
reply_records(struct h_dns *d, struct dns_buf *b, const struct dns_name *z,
	      int t, unsigned *an, unsigned *ar)
{
	static const uint8_t qname_ptr[2] = { 0xc0, DNS_HEADER };
	const struct dns_rrset *s = &z->set[t];

	for (size_t i = 0; i < s->n; i++)
		put_rr(b, qname_ptr, 2, set_type[t], s->ttl, &s->rr[i]);
	*an = (unsigned)s->n;
	if (set_type[t] != H_DNS_SRV || !d->additional)
		return;
	for (size_t i = 0; i < s->n; i++) {
		const uint8_t *target = s->rr[i].data + 6;
		size_t tlen = s->rr[i].len - 6u;
		const struct dns_name *tz;

		if (srv_seen(s, i))
			continue;
		tz = zone_find(d, target, tlen);
		if (tz == NULL)
			continue;
		for (int k = 0; k < 2; k++) {
			const struct dns_rrset *a = &tz->set[k];

			for (size_t j = 0; j < a->n; j++)
				put_rr(b, target, tlen, set_type[k], a->ttl,
				       &a->rr[j]);
			*ar += (unsigned)a->n;
		}
	}
}

/* The most a UDP reply to q may hold (RFC 6891 6.2.5: below 512 is 512). */
static size_t
udp_limit(const struct dns_query *q)
{
	if (!q->edns || q->payload < DNS_UDP_PLAIN)
		return DNS_UDP_PLAIN;
	return q->payload < DNS_UDP_EDNS ? q->payload : DNS_UDP_EDNS;
}

/*
 * The reply to the message m[0..len) into out[DNS_MSG_MAX]: its length, 0
 * for none.  udp: it must fit the datagram size the query allows.  Under
 * the lock.
 */
static size_t
reply_build(struct h_dns *d, const uint8_t *m, size_t len, uint8_t *out,
	    bool udp)
{
	struct dns_query q = { 0 };
	struct dns_buf b = { .p = out, .cap = DNS_MSG_MAX };
	const struct dns_name *z = NULL;
	unsigned rcode = 0, an = 0, ar = 0;
	int t;

	if (query_parse(&q, m, len) < 0) {
		if (d->mode == H_DNS_SILENT)
			return 0;
		memcpy(out, m, 4);
		out[2] = (uint8_t)(0x80 | (m[2] & 0x79));
		out[3] = RCODE_FORMERR;
		memset(out + 4, 0, DNS_HEADER - 4);
		return DNS_HEADER;
	}
	count_query(d, &q);
	switch (d->mode) {
	case H_DNS_NORMAL:
		z = zone_find(d, q.key, q.nlen);
		if (q.qclass != CLASS_IN)
			rcode = RCODE_REFUSED;
		else if (z == NULL)
			rcode = RCODE_NXDOMAIN;
		break;
	case H_DNS_SERVFAIL:
		rcode = RCODE_SERVFAIL;
		break;
	case H_DNS_REFUSED:
		rcode = RCODE_REFUSED;
		break;
	case H_DNS_SILENT:
		return 0;
	case H_DNS_MALFORMED: {
		/* The answer's name, type, class, then one byte of its TTL. */
		uint8_t cut[] = { 0xc0, DNS_HEADER, (uint8_t)(q.qtype >> 8),
				  (uint8_t)q.qtype, 0, CLASS_IN, 0 };

		reply_head(&b, &q, 0, false);
		put(&b, cut, sizeof(cut));
		reply_counts(out, 1, 0);
		return b.len;
	}
	case H_DNS_NXDOMAIN:
		rcode = RCODE_NXDOMAIN;
		break;
	}
	reply_head(&b, &q, rcode, false);
	t = type_index(q.qtype);
	if (rcode == 0 && t >= 0)
		reply_records(d, &b, z, t, &an, &ar);
	if (q.edns) {
		put_opt(&b);
		ar++;
	}
	if (b.over || b.len > (udp ? udp_limit(&q) : DNS_MSG_MAX)) {
		/* The question alone, TC set: the client asks over TCP. */
		reply_head(&b, &q, rcode, true);
		an = ar = 0;
		if (q.edns) {
			put_opt(&b);
			ar = 1;
		}
	}
	reply_counts(out, an, ar);
	return b.len;
}

/* Count m and build the reply to it (reply_build()).  A message shorter
 * than a header, or a response, gets none. */
static size_t
dns_reply(struct h_dns *d, const uint8_t *m, size_t len, uint8_t *out,
	  bool udp)
{
	size_t n;

	if (len < DNS_HEADER || (m[2] & 0x80) != 0)
		return 0;
	pthread_mutex_lock(&d->lock);
	if (!udp)
		d->tcp_queries++;
	n = reply_build(d, m, len, out, udp);
	pthread_mutex_unlock(&d->lock);
	return n;
}

static void
udp_serve(struct h_dns *d)
{
	/* A bounded batch: the loop also has TCP and the stop to look at. */
	for (int i = 0; i < 32; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		ssize_t n = recvfrom(d->udp, d->dgram, sizeof(d->dgram), 0,
				     (struct sockaddr *)&ss, &sl);
		size_t r;

		if (n < 0)
			return;
		r = dns_reply(d, d->dgram, (size_t)n, d->reply, true);
		/* Like any UDP server's, a reply that cannot go is lost. */
		if (r > 0)
			sendto(d->udp, d->reply, r, 0, (struct sockaddr *)&ss,
			       sl);
	}
}

static void
conn_close(struct dns_conn *c)
{
	close(c->fd);
	c->fd = -1;
}

static void
conn_accept(struct h_dns *d)
{
	int fd = accept4(d->tcp, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	int sndbuf = DNS_SNDBUF;

	if (fd < 0)
		return;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	for (int i = 0; i < H_DNS_CONNS; i++) {
		struct dns_conn *c = &d->conn[i];

		if (c->fd < 0) {
			c->fd = fd;
			c->active_ms = h_now_ms();
			c->in_len = c->out_len = c->out_off = 0;
			return;
		}
	}
	/* All slots taken: the client sees EOF and may try again. */
	close(fd);
}

/* Send what is left of c's reply.  0, or -1 if the connection failed. */
static int
conn_flush(struct dns_conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off,
				 c->out_len - c->out_off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? 0 : -1;
		c->out_off += (size_t)n;
	}
	c->out_len = c->out_off = 0;
	return 0;
}

/* Answer the whole messages in c->in, one reply at a time.  0, or -1. */
static int
conn_answer(struct h_dns *d, struct dns_conn *c)
{
	while (c->out_len == 0 && c->in_len >= 2) {
		size_t mlen = get16(c->in), n;

		if (c->in_len < 2 + mlen)
			break;
		n = dns_reply(d, c->in + 2, mlen, c->out + 2, false);
		c->in_len -= 2 + mlen;
		memmove(c->in, c->in + 2 + mlen, c->in_len);
		if (n == 0)
			continue;
		set16(c->out, (unsigned)n);
		c->out_len = 2 + n;
		if (conn_flush(c) < 0)
			return -1;
	}
	return 0;
}

/*
 * c is ready: send the rest of its reply, or read.  A whole message always
 * fits in[], and conn_answer() consumes one as soon as it is whole, so a
 * read always has room.
 */
static void
conn_event(struct h_dns *d, struct dns_conn *c)
{
	c->active_ms = h_now_ms();
	if (c->out_len > 0) {
		if (conn_flush(c) < 0)
			goto out_close;
	} else {
		ssize_t n = read(c->fd, c->in + c->in_len,
				 sizeof(c->in) - c->in_len);

		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			goto out_close;
		if (n > 0)
			c->in_len += (size_t)n;
	}
	if (conn_answer(d, c) < 0)
		goto out_close;
	return;

out_close:
	conn_close(c);
}

static void *
dns_thread(void *arg)
{
	struct h_dns *d = arg;
	struct pollfd p[3 + H_DNS_CONNS];
	struct dns_conn *pc[3 + H_DNS_CONNS];

	for (;;) {
		nfds_t n = 3;
		uint64_t now;

		p[0] = (struct pollfd){ .fd = d->wake, .events = POLLIN };
		p[1] = (struct pollfd){ .fd = d->udp, .events = POLLIN };
		p[2] = (struct pollfd){ .fd = d->tcp, .events = POLLIN };
		for (int i = 0; i < H_DNS_CONNS; i++) {
			struct dns_conn *c = &d->conn[i];

			if (c->fd < 0)
				continue;
			p[n].fd = c->fd;
			p[n].events = c->out_len > 0 ? POLLOUT : POLLIN;
			pc[n++] = c;
		}
		if (poll(p, n, DNS_POLL_MS) < 0)
			continue;
		if (p[0].revents != 0)
			return NULL;
		if (p[1].revents != 0)
			udp_serve(d);
		if (p[2].revents != 0)
			conn_accept(d);
		now = h_now_ms();
		for (nfds_t i = 3; i < n; i++) {
			if (p[i].revents != 0)
				conn_event(d, pc[i]);
			else if (now - pc[i]->active_ms > H_DNS_IDLE_MS)
				conn_close(pc[i]);
		}
	}
}

/* The UDP socket and the TCP listener on 127.0.0.1:port.  0, or -1 with
 * neither open. */
static int
dns_bind(struct h_dns *d, int port)
{
	struct sockaddr_in sin = {
		.sin_family = AF_INET,
		.sin_port = htons((uint16_t)port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	int one = 1;

	d->tcp = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (d->tcp < 0)
		return -1;
	d->udp = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (d->udp < 0)
		goto out_close_tcp;
	if (setsockopt(d->tcp, SOL_SOCKET, SO_REUSEADDR, &one,
		       sizeof(one)) < 0 ||
	    bind(d->tcp, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(d->tcp, 64) < 0 ||
	    bind(d->udp, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		goto out_close_udp;
	return 0;

out_close_udp:
	close(d->udp);
out_close_tcp:
	close(d->tcp);
	return -1;
}

struct h_dns *
h_dns_start(void)
{
	struct h_dns *d = calloc(1, sizeof(*d));

	ck_assert_ptr_nonnull(d);
	d->additional = true;
	for (int i = 0; i < H_DNS_CONNS; i++)
		d->conn[i].fd = -1;
	/* Another test may bind the free port first: take the next one. */
	for (int tries = 0; tries < 20 && d->port == 0; tries++) {
		int port = h_free_port();

		if (port > 0 && dns_bind(d, port) == 0)
			d->port = port;
	}
	ck_assert_msg(d->port > 0, "no port for the DNS server: %s",
		      strerror(errno));
	d->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ck_assert_int_ge(d->wake, 0);
	ck_assert_int_eq(pthread_mutex_init(&d->lock, NULL), 0);
	ck_assert_int_eq(pthread_create(&d->thread, NULL, dns_thread, d), 0);
	return d;
}

int
h_dns_port(const struct h_dns *d)
{
	return d->port;
}

/* rdata as text (h_dns_set()) into rr; ck_assert if it is not that. */
static void
rr_from_text(struct dns_rr *rr, enum h_dns_type type, const char *s)
{
	unsigned prio, weight, port;
	char target[DNS_NAME_MAX + 1];
	int end = 0;

	switch (type) {
	case H_DNS_A:
		ck_assert_msg(inet_pton(AF_INET, s, rr->data) == 1,
			      "bad A rdata \"%s\"", s);
		rr->len = 4;
		return;
	case H_DNS_AAAA:
		ck_assert_msg(inet_pton(AF_INET6, s, rr->data) == 1,
			      "bad AAAA rdata \"%s\"", s);
		rr->len = 16;
		return;
	case H_DNS_SRV:
		ck_assert_msg(sscanf(s, "%u %u %u %255s %n", &prio, &weight,
				     &port, target, &end) == 4 &&
				      end > 0 && s[end] == '\0' &&
				      prio <= 0xffff && weight <= 0xffff &&
				      port <= 0xffff,
			      "bad SRV rdata \"%s\" (want \"PRIO WEIGHT PORT "
			      "TARGET\")", s);
		set16(rr->data, prio);
		set16(rr->data + 2, weight);
		set16(rr->data + 4, port);
		rr->len = (uint16_t)(6 + name_from_text(target, rr->data + 6));
		return;
	}
	ck_abort_msg("DNS type %d is not A, AAAA or SRV", (int)type);
}

void
h_dns_set(struct h_dns *d, const char *name, enum h_dns_type type,
	  const char *const *rdata, size_t n, unsigned ttl)
{
	struct dns_rr *rr = n > 0 ? calloc(n, sizeof(*rr)) : NULL;
	int t = type_index(type);
	uint8_t key[DNS_NAME_MAX];
	size_t len = name_from_text(name, key);
	struct dns_name *z;

	ck_assert_msg(t >= 0, "DNS type %d is not A, AAAA or SRV", (int)type);
	ck_assert(n == 0 || rr != NULL);
	for (size_t i = 0; i < n; i++)
		rr_from_text(&rr[i], type, rdata[i]);
	pthread_mutex_lock(&d->lock);
	z = zone_find(d, key, len);
	if (z == NULL) {
		z = realloc(d->names, (d->nnames + 1) * sizeof(*z));
		ck_assert_ptr_nonnull(z);
		d->names = z;
		z = &d->names[d->nnames++];
		memset(z, 0, sizeof(*z));
		memcpy(z->name, key, len);
		z->len = len;
	}
	free(z->set[t].rr);
	z->set[t] = (struct dns_rrset){ .rr = rr, .n = n, .ttl = ttl };
	pthread_mutex_unlock(&d->lock);
}

static void
name_free(struct dns_name *z)
{
	for (size_t i = 0; i < NSETS; i++)
		free(z->set[i].rr);
}

void
h_dns_remove(struct h_dns *d, const char *name)
{
	uint8_t key[DNS_NAME_MAX];
	size_t len = name_from_text(name, key);
	struct dns_name *z;

	pthread_mutex_lock(&d->lock);
	z = zone_find(d, key, len);
	if (z != NULL) {
		name_free(z);
		*z = d->names[--d->nnames];
	}
	pthread_mutex_unlock(&d->lock);
}

void
h_dns_mode(struct h_dns *d, enum h_dns_mode m)
{
	pthread_mutex_lock(&d->lock);
	d->mode = m;
	pthread_mutex_unlock(&d->lock);
}

void
h_dns_additional(struct h_dns *d, bool on)
{
	pthread_mutex_lock(&d->lock);
	d->additional = on;
	pthread_mutex_unlock(&d->lock);
}

unsigned
h_dns_queries(struct h_dns *d, const char *name, enum h_dns_type type)
{
	uint8_t key[DNS_NAME_MAX];
	size_t len = name_from_text(name, key);
	unsigned n = 0;

	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < d->ncounts; i++) {
		const struct dns_count *c = &d->counts[i];

		if (c->len == len && memcmp(c->name, key, len) == 0 &&
		    (type == 0 || c->type == type))
			n += c->n;
	}
	pthread_mutex_unlock(&d->lock);
	return n;
}

unsigned
h_dns_tcp_queries(struct h_dns *d)
{
	unsigned n;

	pthread_mutex_lock(&d->lock);
	n = d->tcp_queries;
	pthread_mutex_unlock(&d->lock);
	return n;
}

void
h_dns_stop(struct h_dns *d)
{
	uint64_t one = 1;

	ck_assert_int_eq(write(d->wake, &one, sizeof(one)), sizeof(one));
	pthread_join(d->thread, NULL);
	for (int i = 0; i < H_DNS_CONNS; i++)
		if (d->conn[i].fd >= 0)
			conn_close(&d->conn[i]);
	close(d->wake);
	close(d->udp);
	close(d->tcp);
	for (size_t i = 0; i < d->nnames; i++)
		name_free(&d->names[i]);
	free(d->names);
	free(d->counts);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

/*
 * check_proxy.c: the PROXY protocol, against the real binary.
 *
 * Sending: echo backends return what ringlb sent them, so the test reads
 * the header a backend got and parses it with ringlb's own parser (which
 * fuzz_proxy checks on its own).  Accepting: headers whole, split, slow,
 * bad and late; who is trusted; the advertised client in the checks, the
 * header sent on and the log.  Health probes to a send_proxy backend.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "proxy_proto.h"

static const uint8_t v2sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
				   0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };

/* A pool of echo backends b[0..n), health checks off, round-robin. */
static json_t *
echo_pool(json_t *cfg, const char *name, struct h_backend *const *b,
	  size_t n)
{
	json_t *p = hc_pool(cfg, name);

	hc_set(p, "health_check", hc_json("{ \"enabled\": false }"));
	for (size_t i = 0; i < n; i++)
		hc_backend(p, b[i], 1);
	return p;
}

static json_t *
feed(json_t *cfg, const char *name, const char *pool)
{
	json_t *l = hc_listener(cfg, name, 0);

	hc_set(l, "pool", json_string(pool));
	return l;
}

static int listen_any(int *port);

/* A v2 header: ver_cmd, fam, then body[0..len). */
static size_t
v2(uint8_t *out, uint8_t ver_cmd, uint8_t fam, const void *body,
   size_t len)
{
	memcpy(out, v2sig, 12);
	out[12] = ver_cmd;
	out[13] = fam;
	out[14] = (uint8_t)(len >> 8);
	out[15] = (uint8_t)len;
	if (len)
		memcpy(out + 16, body, len);
	return 16 + len;
}

/* The TLV of `type` in a parsed v2 header, or NULL; its length in *len. */
static const uint8_t *
tlv_find(const uint8_t *hdr, const struct pp_info *pi, uint8_t type,
	 size_t *len)
{
	const uint8_t *t = hdr + pi->tlv_off;
	size_t left = pi->tlv_len;

	while (left >= 3) {
		size_t l = (size_t)t[1] << 8 | t[2];

		if (t[0] == type) {
			*len = l;
			return t + 3;
		}
		t += 3 + l;
		left -= 3 + l;
	}
	return NULL;
}

static uint16_t
port_of(const struct sockaddr_in6 *sa)
{
	return ntohs(sa->sin6_family == AF_INET ?
			     ((const struct sockaddr_in *)(const void *)sa)
				     ->sin_port :
			     sa->sin6_port);
}

/*
 * send_proxy: the pool's v1, a backend's own v2, a backend's off; the
 * header first, in front of the client's bytes, with the real client
 * and listener addresses.
 */
START_TEST(test_send_proxy)
{
	struct h_backend e1, e2, e3;
	struct h_backend *bs[] = { &e1, &e2, &e3 };
	json_t *cfg = hc_new(), *p, *l;
	int port, cport, seen = 0;
	struct h_lb lb;
	char out[4096], want[256];

	h_backend_up(&e1, H_ECHO, "e1");
	h_backend_up(&e2, H_ECHO, "e2");
	h_backend_up(&e3, H_ECHO, "e3");
	p = echo_pool(cfg, "p", bs, 3);
	hc_set(p, "send_proxy", json_string("v1"));
	hc_set(p, "backends.1.send_proxy", json_string("v2"));
	hc_set(p, "backends.2.send_proxy", json_string("off"));
	l = feed(cfg, "l", "p");
	port = hc_port(l);
	ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, port, NULL), 0);

	for (int i = 0; i < 3; i++) {
		long n = h_exchange(port, "hello", 5, 5, 0, out, sizeof(out),
				  &cport);
		struct pp_info pi;
		const char *why;
		size_t hl;

		ck_assert_msg(n > 0, "connection %d: %ld", i, n);
		if (out[0] == 'P') {
			snprintf(want, sizeof(want),
				 "PROXY TCP4 127.0.0.1 127.0.0.1 %d %d\r\nhello",
				 cport, port);
			ck_assert_int_eq(n, (long)strlen(want));
			ck_assert(memcmp(out, want, (size_t)n) == 0);
			seen |= 1;
		} else if ((unsigned char)out[0] == 0x0d) {
			ck_assert_int_eq(pp_parse((const uint8_t *)out,
						  (size_t)n, &pi, &hl, &why),
					 PP_OK);
			ck_assert_int_eq(pi.version, 2);
			ck_assert(!pi.local);
			ck_assert_int_eq(pi.src.sin6_family, AF_INET);
			ck_assert_int_eq(port_of(&pi.src), cport);
			ck_assert_int_eq(port_of(&pi.dst), port);
			ck_assert_int_eq(pi.tlv_len, 0);
			ck_assert_int_eq(n - (long)hl, 5);
			ck_assert(memcmp(out + hl, "hello", 5) == 0);
			seen |= 2;
		} else {
			ck_assert_int_eq(n, 5);
			ck_assert(memcmp(out, "hello", 5) == 0);
			seen |= 4;
		}
	}
	ck_assert_int_eq(seen, 7);
	json_decref(cfg);
}
END_TEST

/*
 * A client that waits for the server to speak first (SMTP, MySQL): the
 * header goes out at once, alone, not held back for client bytes.
 */
START_TEST(test_send_proxy_server_first)
{
	json_t *cfg = hc_new(), *p, *l;
	int lfd, bport, port, fd, cfd, cport;
	char addr[64], want[128], got[128];
	struct h_lb lb;
	long n = 0;

	lfd = listen_any(&bport);
	p = hc_pool(cfg, "p");
	hc_set(p, "send_proxy", json_string("v1"));
	hc_set(p, "health_check", hc_json("{ \"enabled\": false }"));
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", bport);
	hc_set(p, "backends", json_pack("[{s:s,s:s}]", "name", "b", "address",
					addr));
	l = hc_listener(cfg, "l", 0);
	hc_set(l, "pool", json_string("p"));
	port = hc_port(l);
	ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, port, NULL), 0);
	fd = h_connect("127.0.0.1", port, 3000);
	ck_assert_int_ge(fd, 0);
	cport = h_local_port(fd);
	cfd = -1;
	for (int i = 0; i < 300 && cfd < 0; i++) {
		cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0)
			h_sleep_ms(10);
	}
	ck_assert_int_ge(cfd, 0);
	snprintf(want, sizeof(want), "PROXY TCP4 127.0.0.1 127.0.0.1 %d %d\r",
		 cport, port);
	n = h_read_line(cfd, got, sizeof(got), 2000);
	ck_assert_msg(n > 0, "no header without client bytes: %ld", n);
	ck_assert_str_eq(got, want);
	/* ... and the backend's greeting reaches the client. */
	ck_assert_int_eq(h_write_all(cfd, "220 hi\r\n", 8, 2000), 0);
	ck_assert_int_ge(h_read_line(fd, got, sizeof(got), 2000), 0);
	ck_assert_str_eq(got, "220 hi\r");
	close(cfd);
	close(fd);
	close(lfd);
	json_decref(cfg);
}
END_TEST

/*
 * accept_proxy from a trusted peer: whole, split into 3-byte writes,
 * 1 byte every 100 ms (inside the timeout), v2 with TLVs, a v4-mapped
 * client, LOCAL and UNKNOWN.  The advertised client goes on in the header
 * ringlb sends and into the log.
 */
START_TEST(test_accept_proxy)
{
	struct h_backend e, e2;
	struct h_backend *b1[] = { &e }, *b2[] = { &e2 };
	json_t *cfg = hc_new(), *p, *l1, *l2;
	const char *hdr = "PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\n";
	char out[8192], want[256], tx[512], cl[128];
	uint8_t h2[256], body[128];
	struct pp_info pi;
	struct h_lb lb;
	const char *why;
	const uint8_t *t;
	int p1, p2, cport;
	size_t hl, tl, bl;
	long n;

	h_backend_up(&e, H_ECHO, "e");
	h_backend_up(&e2, H_ECHO, "e2");
	p = echo_pool(cfg, "v1out", b1, 1);
	hc_set(p, "send_proxy", json_string("v1"));
	p = echo_pool(cfg, "v2out", b2, 1);
	hc_set(p, "send_proxy", json_string("v2"));
	l1 = feed(cfg, "in1", "v1out");
	hc_set(l1, "accept_proxy",
	       hc_json("{ \"from\": [\"127.0.0.1/32\"], \"timeout_ms\": 8000 }"));
	l2 = feed(cfg, "in2", "v2out");
	hc_set(l2, "accept_proxy", hc_json("{ \"from\": [\"127.0.0.0/8\"] }"));
	p1 = hc_port(l1);
	p2 = hc_port(l2);
	ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, p1, NULL), 0);

	/* Whole, and split over many writes: the same bytes arrive. */
	snprintf(tx, sizeof(tx), "%sdata after the header", hdr);
	snprintf(want, sizeof(want), "%sdata after the header", hdr);
	for (int split = 0; split < 2; split++) {
		n = h_exchange(p1, tx, strlen(tx), split ? 3 : strlen(tx),
			     split ? 10 : 0, out, sizeof(out), &cport);
		ck_assert_int_eq(n, (long)strlen(want));
		ck_assert(memcmp(out, want, (size_t)n) == 0);
	}
	snprintf(cl, sizeof(cl), "client=1.2.3.4:1111 via=127.0.0.1:%d "
		 "listener=in1 pool=v1out backend=e ", cport);
	ck_assert_msg(h_lb_log_count(&lb, cl) == 1, "no log line with '%s'",
		      cl);

	/* One byte every 100 ms, 3.1 s for the header: within 8 s. */
	snprintf(tx, sizeof(tx), "PROXY TCP4 9.8.7.6 5.6.7.8 1 2\r\nslow");
	n = h_exchange(p1, tx, strlen(tx), 1, 100, out, sizeof(out), NULL);
	ck_assert_int_eq(n, (long)strlen(tx));
	ck_assert(memcmp(out, tx, (size_t)n) == 0);

	/* A v4-mapped IPv6 client goes on as IPv4. */
	snprintf(tx, sizeof(tx),
		 "PROXY TCP6 ::ffff:1.2.3.4 ::ffff:5.6.7.8 1000 2000\r\nm");
	n = h_exchange(p1, tx, strlen(tx), strlen(tx), 0, out, sizeof(out),
		     NULL);
	snprintf(want, sizeof(want), "PROXY TCP4 1.2.3.4 5.6.7.8 1000 2000\r\nm");
	ck_assert_int_eq(n, (long)strlen(want));
	ck_assert(memcmp(out, want, (size_t)n) == 0);

	/* UNKNOWN: the socket's own addresses go on. */
	snprintf(tx, sizeof(tx), "PROXY UNKNOWN x y\r\nu");
	n = h_exchange(p1, tx, strlen(tx), strlen(tx), 0, out, sizeof(out),
		     &cport);
	snprintf(want, sizeof(want), "PROXY TCP4 127.0.0.1 127.0.0.1 %d %d\r\nu",
		 cport, p1);
	ck_assert_int_eq(n, (long)strlen(want));
	ck_assert(memcmp(out, want, (size_t)n) == 0);

	/*
	 * v2 in with AUTHORITY, a custom TLV and a CRC32C; v2 out: the
	 * addresses, AUTHORITY and the custom one, not the CRC (the header
	 * changed), then the client's bytes.
	 */
	bl = 0;
	memcpy(body, (const uint8_t[]){ 10, 1, 2, 3, 10, 9, 9, 9 }, 8);
	body[8] = 0x30; body[9] = 0x39;		/* 12345 */
	body[10] = 0x01; body[11] = 0xbb;	/* 443 */
	bl = 12;
	memcpy(body + bl, "\x02\x00\x0aup.example", 13);
	bl += 13;
	memcpy(body + bl, "\xe0\x00\x03uid", 6);
	bl += 6;
	memcpy(body + bl, "\x03\x00\x04\x01\x02\x03\x04", 7);
	bl += 7;
	hl = v2(h2, 0x21, 0x11, body, bl);
	memcpy(h2 + hl, "v2!", 3);
	n = h_exchange(p2, h2, hl + 3, 5, 5, out, sizeof(out), NULL);
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(pp_parse((const uint8_t *)out, (size_t)n, &pi, &hl,
				  &why),
			 PP_OK);
	ck_assert_int_eq(port_of(&pi.src), 12345);
	ck_assert_int_eq(port_of(&pi.dst), 443);
	ck_assert_int_eq(((struct sockaddr_in *)(void *)&pi.src)->sin_addr.s_addr,
			 htonl(0x0a010203));
	t = tlv_find((const uint8_t *)out, &pi, 0x02, &tl);
	ck_assert_msg(t && tl == 10 && memcmp(t, "up.example", 10) == 0,
		      "AUTHORITY not passed on");
	t = tlv_find((const uint8_t *)out, &pi, 0xe0, &tl);
	ck_assert_msg(t && tl == 3 && memcmp(t, "uid", 3) == 0,
		      "custom TLV not passed on");
	ck_assert_ptr_null(tlv_find((const uint8_t *)out, &pi, 0x03, &tl));
	ck_assert_int_eq(n - (long)hl, 3);
	ck_assert(memcmp(out + hl, "v2!", 3) == 0);

	/* LOCAL: the socket's addresses; no via= in the log. */
	hl = v2(h2, 0x20, 0x00, NULL, 0);
	memcpy(h2 + hl, "L", 1);
	n = h_exchange(p2, h2, hl + 1, hl + 1, 0, out, sizeof(out), &cport);
	ck_assert_int_eq(pp_parse((const uint8_t *)out, (size_t)n, &pi, &hl,
				  &why),
			 PP_OK);
	ck_assert_int_eq(port_of(&pi.src), cport);
	ck_assert_int_eq(port_of(&pi.dst), p2);
	snprintf(cl, sizeof(cl), "client=127.0.0.1:%d listener=in2 ", cport);
	ck_assert_int_eq(h_lb_log_count(&lb, cl), 1);
	json_decref(cfg);
}
END_TEST

/* Connect, send tx (then keep the socket open); the reset must come. */
static void
expect_reset(int port, const void *tx, size_t n, int within_ms,
	     const char *what)
{
	int fd = h_connect("127.0.0.1", port, 3000);
	long data = 0;
	int rc;

	/* Refused at accept: the reset may beat the connect's completion. */
	if (fd == -ECONNRESET)
		return;
	ck_assert_int_ge(fd, 0);
	rc = n ? h_write_all(fd, tx, n, 3000) : 0;
	if (rc == -ECONNRESET || rc == -EPIPE) {
		close(fd);
		return;
	}
	ck_assert_msg(rc == 0, "%s: write: %d", what, rc);
	rc = h_wait_close(fd, within_ms, &data);
	ck_assert_msg(rc == -ECONNRESET && data == 0,
		      "%s: want a reset and no byte, got %d (%ld bytes)", what,
		      rc, data);
	close(fd);
}


/*
 * Bad headers: too long, too big, unknown version/command/family,
 * garbage, cut short, late; a peer not in "from".  Each gets a reset,
 * nothing reaches a backend, and each is counted by reason in /status and
 * /metrics.  A peer outside "from" with allow_direct is served as it is:
 * what it sends is not parsed.
 */
START_TEST(test_accept_proxy_bad)
{
	struct h_backend e;
	struct h_backend *b[] = { &e };
	json_t *cfg = hc_new(), *l, *j;
	char tx[512], out[512];
	uint8_t h2[128];
	int pin, pslow, pstrict, pmixed;
	uint64_t t0;
	struct h_lb lb;
	struct h_http m;
	size_t n;
	long got;

	h_backend_up(&e, H_ECHO, "e");
	echo_pool(cfg, "p", b, 1);
	l = feed(cfg, "in", "p");
	hc_set(l, "accept_proxy", hc_json("{ \"from\": [\"127.0.0.1\"] }"));
	pin = hc_port(l);
	l = feed(cfg, "slow", "p");
	hc_set(l, "accept_proxy",
	       hc_json("{ \"from\": [\"127.0.0.1\"], \"timeout_ms\": 600 }"));
	pslow = hc_port(l);
	l = feed(cfg, "strict", "p");
	hc_set(l, "accept_proxy", hc_json("{ \"from\": [\"10.0.0.0/8\"] }"));
	pstrict = hc_port(l);
	l = feed(cfg, "mixed", "p");
	hc_set(l, "accept_proxy",
	       hc_json("{ \"from\": [\"10.0.0.0/8\"], \"allow_direct\": true }"));
	pmixed = hc_port(l);
	ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, pin, NULL), 0);

	/* v1 longer than 107 bytes, no CRLF: refused at byte 107. */
	memset(tx, 'x', sizeof(tx));
	memcpy(tx, "PROXY TCP4 ", 11);
	expect_reset(pin, tx, 120, 2000, "v1 of 120 bytes");
	/* v2 length 0xffff: beyond ringlb's limit, refused at once. */
	n = v2(h2, 0x21, 0x11, NULL, 0);
	h2[14] = 0xff;
	h2[15] = 0xff;
	expect_reset(pin, h2, n, 2000, "v2 length 65535");
	n = v2(h2, 0x31, 0x11, "123456789012", 12);
	expect_reset(pin, h2, n, 2000, "v2 version 3");
	n = v2(h2, 0x22, 0x11, "123456789012", 12);
	expect_reset(pin, h2, n, 2000, "v2 command 2");
	n = v2(h2, 0x21, 0x41, "123456789012", 12);
	expect_reset(pin, h2, n, 2000, "v2 family 4");
	n = v2(h2, 0x21, 0x11, "1234", 4);
	expect_reset(pin, h2, n, 2000, "v2 shorter than its addresses");
	expect_reset(pin, "GET / HTTP/1.0\r\n\r\n", 18, 2000, "garbage");
	expect_reset(pin, "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", 33, 2000,
		     "v1 port with a leading zero");
	expect_reset(pin, "PROXY TCP4 ::1 5.6.7.8 1 2\r\n", 28, 2000,
		     "v1 TCP4 with an IPv6 address");
	/* Cut short: the client closes its side mid-header. */
	{
		int fd = h_connect("127.0.0.1", pin, 3000);
		long data = 0;

		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(h_write_all(fd, "PROXY TCP4 1.2", 14, 3000),
				 0);
		shutdown(fd, SHUT_WR);
		ck_assert_int_eq(h_wait_close(fd, 2000, &data), -ECONNRESET);
		close(fd);
	}
	ck_assert_int_eq(h_refused(&lb, "in", "proxy_bad"), 10);

	/* Late: a v2 length past the bytes sent, and a trickle. */
	n = v2(h2, 0x21, 0x11, "12345678", 8);
	h2[15] = 12;
	t0 = h_now_ms();
	expect_reset(pslow, h2, n, 3000, "v2 waiting for 4 more bytes");
	ck_assert_msg(h_now_ms() - t0 >= 550, "reset after %llu ms, before "
		      "the 600 ms timeout",
		      (unsigned long long)(h_now_ms() - t0));
	{
		int fd = h_connect("127.0.0.1", pslow, 3000);
		long data = 0;
		int rc = 0;

		ck_assert_int_ge(fd, 0);
		t0 = h_now_ms();
		for (int i = 0; i < 30 && rc == 0; i++) {
			rc = h_write_all(fd, "PROXY TCP4 1.2.3.4" + i % 18, 1,
					 1000);
			h_sleep_ms(100);
		}
		/* The reset shows in a write, or in the wait after them. */
		if (rc == 0)
			rc = h_wait_close(fd, 3000, &data);
		ck_assert_msg(rc == -ECONNRESET || rc == -EPIPE,
			      "trickle: want a reset, got %d", rc);
		ck_assert_msg(h_now_ms() - t0 < 2500, "trickle reset after %llu "
			      "ms", (unsigned long long)(h_now_ms() - t0));
		close(fd);
	}
	ck_assert_int_eq(h_refused(&lb, "slow", "proxy_timeout"), 2);

	/* Not in "from": reset, even with a good header. */
	expect_reset(pstrict, "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", 32, 2000,
		     "untrusted peer");
	ck_assert_int_eq(h_refused(&lb, "strict", "proxy_untrusted"), 1);
	/* Nothing of the above reached the backend. */
	j = h_api(&lb, "GET", "/pools/p/backends/e", NULL, 200);
	ck_assert_int_eq(h_jint(j, "total"), 0);
	json_decref(j);

	/* allow_direct: served as it is; a "header" is the client's data. */
	snprintf(tx, sizeof(tx), "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nhi");
	got = h_exchange(pmixed, tx, strlen(tx), strlen(tx), 0, out, sizeof(out),
		       NULL);
	ck_assert_int_eq(got, (long)strlen(tx));
	ck_assert(memcmp(out, tx, (size_t)got) == 0);

	/* The same counts in /metrics, and one log line per reason. */
	{
		char sock[160];

		snprintf(sock, sizeof(sock), "%s/admin.sock", lb.dir);
		ck_assert_int_eq(h_http(sock, NULL, 0, "GET", "/metrics", NULL,
					5000, &m),
				 0);
		ck_assert(strstr(m.body, "ringlb_listener_refused_total{"
					 "listener=\"in\",reason=\"proxy_bad\"} "
					 "10\n"));
		ck_assert(strstr(m.body, "ringlb_listener_refused_total{"
					 "listener=\"slow\",reason="
					 "\"proxy_timeout\"} 2\n"));
		ck_assert(strstr(m.body, "ringlb_listener_refused_total{"
					 "listener=\"strict\",reason="
					 "\"proxy_untrusted\"} 1\n"));
		h_http_free(&m);
	}
	ck_assert_int_ge(h_lb_log_count(&lb, "reason=proxy_bad: PROXY v1: "
					     "no CRLF within 107 bytes"),
			 1);
	ck_assert(h_lb_running(&lb));
	json_decref(cfg);
}
END_TEST

/*
 * After a header, the advertised client is the one allow/deny and
 * per_source see.
 */
START_TEST(test_accept_proxy_checks)
{
	struct h_backend e;
	struct h_backend *b[] = { &e };
	json_t *cfg = hc_new(), *l;
	const char *a = "PROXY TCP4 9.9.9.9 5.6.7.8 1 2\r\n";
	struct h_lb lb;
	char line[64];
	int port, fd;

	h_backend_up(&e, H_NAME, "e");
	echo_pool(cfg, "p", b, 1);
	l = feed(cfg, "in", "p");
	hc_set(l, "accept_proxy", hc_json("{ \"from\": [\"127.0.0.1\"] }"));
	hc_set(l, "deny", hc_json("[\"1.2.3.0/24\"]"));
	hc_set(l, "per_source", hc_json("{ \"max_connections\": 1 }"));
	port = hc_port(l);
	ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, port, NULL), 0);

	/* The socket's peer (127.0.0.1) is allowed; 1.2.3.9 is not. */
	expect_reset(port, "PROXY TCP4 1.2.3.9 5.6.7.8 1 2\r\n", 32, 2000,
		     "denied advertised client");
	ck_assert_int_eq(h_refused(&lb, "in", "acl_denied"), 1);
	/* One connection per advertised source, not per socket peer. */
	fd = h_connect("127.0.0.1", port, 3000);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(h_write_all(fd, a, strlen(a), 3000), 0);
	ck_assert_int_ge(h_read_line(fd, line, sizeof(line), 3000), 0);
	ck_assert_str_eq(line, "e");
	expect_reset(port, a, strlen(a), 2000, "second 9.9.9.9");
	ck_assert_int_eq(h_refused(&lb, "in", "source_limit"), 1);
	{
		const char *o = "PROXY TCP4 9.9.9.8 5.6.7.8 1 2\r\n";
		int fd2 = h_connect("127.0.0.1", port, 3000);

		ck_assert_int_ge(fd2, 0);
		ck_assert_int_eq(h_write_all(fd2, o, strlen(o), 3000), 0);
		ck_assert_int_ge(h_read_line(fd2, line, sizeof(line), 3000), 0);
		close(fd2);
	}
	close(fd);
	json_decref(cfg);
}
END_TEST

/* Accept one connection on lfd within timeout_ms and read what it sends. */
static long
probe_bytes(int lfd, char *out, size_t cap, int timeout_ms)
{
	struct pollfd pfd = { .fd = lfd, .events = POLLIN };
	long got = 0;
	int fd;

	if (poll(&pfd, 1, timeout_ms) != 1)
		return -ETIMEDOUT;
	fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return -errno;
	h_read_all(fd, out, cap, timeout_ms, &got);
	close(fd);
	return got;
}

static int
listen_any(int *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fd, 16), 0);
	getsockname(fd, (struct sockaddr *)&sa, &len);
	*port = ntohs(sa.sin_port);
	return fd;
}

/*
 * Health probes to a send_proxy backend begin with a header of their own:
 * v2 LOCAL, or v1 UNKNOWN, then the probe's `send` bytes.
 */
START_TEST(test_health_proxy_header)
{
	json_t *cfg = hc_new(), *p, *l;
	int f1, f2, port1, port2;
	char out[256], addr[64];
	struct h_lb lb;
	uint8_t local[16];
	long n;

	f1 = listen_any(&port1);
	f2 = listen_any(&port2);
	p = hc_pool(cfg, "p");
	hc_set(p, "send_proxy", json_string("v2"));
	hc_set(p, "health_check",
	       hc_json("{ \"interval_ms\": 100, \"timeout_ms\": 100, "
		       "\"send\": \"PING\\r\\n\" }"));
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port1);
	hc_set(p, "backends", json_pack("[{s:s,s:s},{s:s,s:s,s:s}]", "name",
					"b1", "address", addr, "name", "b2",
					"address", "127.0.0.1:1", "send_proxy",
					"v1"));
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port2);
	hc_set(p, "backends.1.address", json_string(addr));
	l = feed(cfg, "l", "p");
	ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, hc_port(l), NULL), 0);

	n = probe_bytes(f1, out, sizeof(out), 3000);
	v2(local, 0x20, 0x00, NULL, 0);
	ck_assert_int_eq(n, 16 + 6);
	ck_assert(memcmp(out, local, 16) == 0);
	ck_assert(memcmp(out + 16, "PING\r\n", 6) == 0);
	n = probe_bytes(f2, out, sizeof(out), 3000);
	ck_assert_int_eq(n, 15 + 6);
	ck_assert(memcmp(out, "PROXY UNKNOWN\r\nPING\r\n", 21) == 0);
	close(f1);
	close(f2);
	json_decref(cfg);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("proxy");
	TCase *tc = h_tcase(s, "proxy", 60, h_teardown);

	tcase_add_test(tc, test_send_proxy);
	tcase_add_test(tc, test_send_proxy_server_first);
	tcase_add_test(tc, test_accept_proxy);
	tcase_add_test(tc, test_accept_proxy_bad);
	tcase_add_test(tc, test_accept_proxy_checks);
	tcase_add_test(tc, test_health_proxy_header);
	return h_run_suite("check_proxy", s);
}

/*
 * check_sni.c: routing by the TLS server name, against the real binary.
 *
 * Real TLS first: openssl s_server backends, each with its own
 * certificate, and curl clients with TLS 1.3 and 1.2; the certificate a
 * client gets says which pool it reached, and the handshake completing
 * says ringlb passed every byte on unchanged.  Then ClientHellos built
 * here, to control what real clients do not: one spanning three records
 * and delivered in pauses, one without SNI, one over 16 KiB, one that
 * never finishes; and the SNI in the PROXY v2 header sent on.  Last, a
 * route that splits its clients over two pools, and its weights changed
 * at runtime by server name.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "proxy_proto.h"

/* ---- real TLS ---- */

struct tls_site {
	const char *name;	/* pool name and certificate CN prefix */
	int port;
	pid_t pid;
};

static void
need_tools(void)
{
	if (access("/usr/bin/openssl", X_OK) != 0 ||
	    access("/usr/bin/curl", X_OK) != 0)
		h_skip("needs /usr/bin/openssl and /usr/bin/curl "
		       "(make deps installs them)");
}

/* A self-signed certificate for CN=<name>.test in dir. */
static void
make_cert(const char *dir, const char *name)
{
	char key[256], crt[256], subj[128];
	const char *argv[] = { "openssl", "req", "-x509", "-newkey", "rsa:2048",
			       "-nodes", "-days", "2", "-keyout", key, "-out",
			       crt, "-subj", subj, NULL };
	struct h_run *r = calloc(1, sizeof(*r));

	ck_assert_ptr_nonnull(r);
	snprintf(key, sizeof(key), "%s/%s.key", dir, name);
	snprintf(crt, sizeof(crt), "%s/%s.crt", dir, name);
	snprintf(subj, sizeof(subj), "/CN=%s.test", name);
	ck_assert_int_eq(h_run(argv, 30000, r), 0);
	ck_assert_msg(WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0,
		      "openssl req: %s", r->err);
	free(r);
}

/* openssl s_server on a free port with <name>'s certificate. */
static void
site_start(struct tls_site *s, const char *dir, const char *name)
{
	char key[256], crt[256], port[16], log[256];
	const char *argv[] = { "openssl", "s_server", "-quiet", "-www",
			       "-accept", port, "-cert", crt, "-key", key,
			       NULL };

	s->name = name;
	s->port = h_free_port();
	make_cert(dir, name);
	snprintf(key, sizeof(key), "%s/%s.key", dir, name);
	snprintf(crt, sizeof(crt), "%s/%s.crt", dir, name);
	snprintf(port, sizeof(port), "%d", s->port);
	snprintf(log, sizeof(log), "%s/%s.log", dir, name);
	s->pid = h_spawn(argv, log);
	ck_assert_int_gt(s->pid, 0);
	for (int i = 0; i < 250 && !h_port_listening(s->port); i++)
		h_sleep_ms(20);
	ck_assert_msg(h_port_listening(s->port), "s_server %s not up", name);
}

/*
 * curl https://host:port/ through ringlb (host resolved to 127.0.0.1),
 * TLS at most tls_max ("1.2", "1.3").  The CN of the certificate it got
 * ("" if the handshake failed) into cn.
 */
static void
curl_cn(const char *host, int port, const char *tls_max, char *cn,
	size_t cap)
{
	char resolve[300], url[300];
	const char *argv[] = { "curl", "-sk", "-v", "--max-time", "5",
			       "--tls-max", tls_max, "--resolve", resolve, url,
			       "-o", "/dev/null", NULL };
	struct h_run *r = calloc(1, sizeof(*r));
	const char *p;

	ck_assert_ptr_nonnull(r);
	snprintf(resolve, sizeof(resolve), "%s:%d:127.0.0.1", host, port);
	snprintf(url, sizeof(url), "https://%s:%d/", host, port);
	ck_assert_int_eq(h_run(argv, 15000, r), 0);
	cn[0] = '\0';
	p = strstr(r->err, "subject: CN=");
	if (p)
		sscanf(p + 12, "%63[a-z0-9.]", cn);
	if (p && strstr(r->err, tls_max[2] == '2' ? "TLSv1.2" : "TLSv1.3") ==
			 NULL)
		ck_abort_msg("curl --tls-max %s did not use it: %s", tls_max,
			     r->err);
	free(r);
}

START_TEST(test_sni_tls)
{
	struct tls_site site[3];
	json_t *cfg, *l, *p, *r;
	char dir[128], cn[64], addr[64];
	int port, nodef;
	struct h_lb lb;

	need_tools();
	ck_assert_int_eq(h_tempdir(dir, sizeof(dir)), 0);
	site_start(&site[0], dir, "api");
	site_start(&site[1], dir, "www");
	site_start(&site[2], dir, "def");
	cfg = hc_new();
	for (struct tls_site *s = site; s < site + 3; s++) {
		p = hc_pool(cfg, s->name);
		snprintf(addr, sizeof(addr), "127.0.0.1:%d", s->port);
		hc_set(p, "backends", json_pack("[{s:s,s:s}]", "name", s->name,
						"address", addr));
		hc_set(p, "health_check", hc_json("{ \"enabled\": false }"));
	}
	r = hc_json("[ { \"sni\": [\"api.example.com\"], \"pool\": \"api\" },"
		    "  { \"sni\": [\"*.Example.ORG\", \"WWW.example.com\"],"
		    "    \"pool\": \"www\" } ]");
	l = hc_listener(cfg, "tls", 0);
	hc_set(l, "pool", json_string("def"));
	hc_set(l, "routes", json_deep_copy(r));
	port = hc_port(l);
	l = hc_listener(cfg, "nodef", 0);
	hc_set(l, "routes", r);
	nodef = hc_port(l);
	ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, port, NULL), 0);

	static const struct {
		const char *host, *cn;
	} cases[] = {
		{ "api.example.com", "api.test" },
		{ "www.example.com", "www.test" },	/* any case in the file */
		{ "foo.example.org", "www.test" },	/* wildcard */
		{ "a.b.example.org", "def.test" },	/* one label only */
		{ "example.org", "def.test" },
		{ "other.net", "def.test" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		curl_cn(cases[i].host, port, "1.3", cn, sizeof(cn));
		ck_assert_msg(strcmp(cn, cases[i].cn) == 0,
			      "TLS 1.3 %s reached '%s', want %s",
			      cases[i].host, cn, cases[i].cn);
	}
	curl_cn("api.example.com", port, "1.2", cn, sizeof(cn));
	ck_assert_str_eq(cn, "api.test");
	curl_cn("x.example.org", port, "1.2", cn, sizeof(cn));
	ck_assert_str_eq(cn, "www.test");
	ck_assert_int_eq(h_lb_log_count(&lb, "listener=tls sni=foo.example.org "
					     "pool=www backend=www "),
			 1);

	/* No default pool: a name no route takes is refused. */
	curl_cn("api.example.com", nodef, "1.3", cn, sizeof(cn));
	ck_assert_str_eq(cn, "api.test");
	curl_cn("other.net", nodef, "1.3", cn, sizeof(cn));
	ck_assert_str_eq(cn, "");
	{
		json_t *j = h_api(&lb, "GET", "/listeners/nodef", NULL, 200);

		ck_assert_int_eq(h_jint(j, "refused.no_route"), 1);
		ck_assert(json_is_null(json_object_get(j, "pool")));
		ck_assert_int_eq(json_array_size(json_object_get(j, "routes")),
				 3);
		json_decref(j);
		j = h_api(&lb, "GET", "/pools/www", NULL, 200);
		ck_assert_int_eq(json_array_size(json_object_get(j,
								 "listeners")),
				 2);
		json_decref(j);
	}
	for (int i = 0; i < 3; i++)
		h_kill(site[i].pid);
	json_decref(cfg);
}
END_TEST

/* ---- ClientHellos built here ---- */

/*
 * A TLS 1.3-shaped ClientHello for sni (NULL: no server_name) with a
 * padding extension of `pad` bytes, cut into records of at most rec_max
 * handshake bytes.  Its length.
 */
static size_t
client_hello(uint8_t *out, size_t cap, const char *sni, size_t pad,
	     size_t rec_max)
{
	static uint8_t hs[40000];
	size_t h = 4, ext, n, o = 0;

	hs[h++] = 3;
	hs[h++] = 3;
	memset(hs + h, 0x5a, 32);
	h += 32;
	hs[h++] = 0;			/* session id */
	hs[h++] = 0;
	hs[h++] = 2;
	hs[h++] = 0x13;
	hs[h++] = 0x01;			/* TLS_AES_128_GCM_SHA256 */
	hs[h++] = 1;
	hs[h++] = 0;			/* null compression */
	ext = h;
	h += 2;
	if (sni) {
		n = strlen(sni);
		hs[h++] = 0;
		hs[h++] = 0;		/* server_name */
		hs[h++] = (uint8_t)((n + 5) >> 8);
		hs[h++] = (uint8_t)(n + 5);
		hs[h++] = (uint8_t)((n + 3) >> 8);
		hs[h++] = (uint8_t)(n + 3);
		hs[h++] = 0;		/* host_name */
		hs[h++] = (uint8_t)(n >> 8);
		hs[h++] = (uint8_t)n;
		memcpy(hs + h, sni, n);
		h += n;
	}
	hs[h++] = 0;
	hs[h++] = 21;			/* padding */
	hs[h++] = (uint8_t)(pad >> 8);
	hs[h++] = (uint8_t)pad;
	memset(hs + h, 0, pad);
	h += pad;
	hs[ext] = (uint8_t)((h - ext - 2) >> 8);
	hs[ext + 1] = (uint8_t)(h - ext - 2);
	hs[0] = 1;			/* client_hello */
	hs[1] = (uint8_t)((h - 4) >> 16);
	hs[2] = (uint8_t)((h - 4) >> 8);
	hs[3] = (uint8_t)(h - 4);
	for (size_t i = 0; i < h; i += rec_max) {
		size_t k = h - i < rec_max ? h - i : rec_max;

		ck_assert_uint_le(o + 5 + k, cap);
		out[o++] = 22;
		out[o++] = 3;
		out[o++] = 1;
		out[o++] = (uint8_t)(k >> 8);
		out[o++] = (uint8_t)k;
		memcpy(out + o, hs + i, k);
		o += k;
	}
	return o;
}

START_TEST(test_sni_preread)
{
	static uint8_t hello[40000];
	static char out[50000];
	struct h_backend a, b, d, e;
	struct h_backend *ba[] = { &a }, *bb[] = { &b }, *bd[] = { &d },
			 *be[] = { &e };
	struct h_backend **sets[] = { ba, bb, bd, be };
	const char *names[] = { "A", "B", "D", "E" };
	json_t *cfg = hc_new(), *l, *routes;
	int pr, pd, pp;
	struct pp_info pi;
	struct h_lb lb;
	const char *why;
	uint64_t t0;
	size_t n, hl;
	long got;

	h_backend_up(&a, H_NAME, "a");
	h_backend_up(&b, H_NAME, "b");
	h_backend_up(&d, H_NAME, "d");
	h_backend_up(&e, H_ECHO, "e");
	for (int i = 0; i < 4; i++) {
		json_t *p = hc_pool(cfg, names[i]);

		hc_backend(p, sets[i][0], 1);
		hc_set(p, "health_check", hc_json("{ \"enabled\": false }"));
	}
	hc_set(cfg, "pools.3.send_proxy", json_string("v2"));
	routes = hc_json("[ { \"sni\": [\"big.example\"], \"pool\": \"A\" },"
			 "  { \"sni\": [\"*.example.org\"], \"pool\": \"B\" } ]");
	l = hc_listener(cfg, "r", 0);
	hc_set(l, "routes", json_deep_copy(routes));
	hc_set(l, "timeouts", hc_json("{ \"preread_ms\": 500 }"));
	pr = hc_port(l);
	l = hc_listener(cfg, "rd", 0);
	hc_set(l, "routes", routes);
	hc_set(l, "pool", json_string("D"));
	hc_set(l, "timeouts", hc_json("{ \"preread_ms\": 500 }"));
	pd = hc_port(l);
	l = hc_listener(cfg, "rp", 0);
	hc_set(l, "routes",
	       hc_json("[ { \"sni\": [\"big.example\"], \"pool\": \"E\" } ]"));
	pp = hc_port(l);
	ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, pr, NULL), 0);

	/*
	 * 6 KiB over three records, in 1000-byte writes 50 ms apart: routed
	 * by its name, forwarded byte for byte.
	 */
	n = client_hello(hello, sizeof(hello), "Big.Example", 6000, 2500);
	got = h_exchange(pr, hello, n, 1000, 50, out, sizeof(out), NULL);
	ck_assert_int_eq(got, (long)(2 + n));
	ck_assert(memcmp(out, "a\n", 2) == 0);
	ck_assert_msg(memcmp(out + 2, hello, n) == 0, "bytes changed");
	/*
	 * On loopback a segment holds 64 KiB; a client with a 536-byte MSS
	 * sends the same 6 KiB ClientHello in a dozen segments.
	 */
	{
		struct sockaddr_in sa = { .sin_family = AF_INET,
					  .sin_port = htons((uint16_t)pr) };
		int mss = 536, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC,
					   0);
		long rgot = 0;

		ck_assert_int_ge(fd, 0);
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		ck_assert_int_eq(setsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &mss,
					    sizeof(mss)),
				 0);
		ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa,
					 sizeof(sa)),
				 0);
		n = client_hello(hello, sizeof(hello), "big.example", 6000,
				 16384);
		ck_assert_int_eq(h_write_all(fd, hello, n, 3000), 0);
		shutdown(fd, SHUT_WR);
		h_read_all(fd, out, sizeof(out), 8000, &rgot);
		close(fd);
		ck_assert_int_eq(rgot, (long)(2 + n));
		ck_assert(memcmp(out, "a\n", 2) == 0);
		ck_assert(memcmp(out + 2, hello, n) == 0);
	}
	n = client_hello(hello, sizeof(hello), "x.example.org", 0, 16384);
	got = h_exchange(pr, hello, n, n, 0, out, sizeof(out), NULL);
	ck_assert_int_eq(got, (long)(2 + n));
	ck_assert(memcmp(out, "b\n", 2) == 0);

	/* No default pool: no SNI, not TLS, too long, too slow: reset. */
	n = client_hello(hello, sizeof(hello), NULL, 100, 16384);
	ck_assert_int_eq(h_exchange(pr, hello, n, n, 0, out, sizeof(out), NULL),
			 -ECONNRESET);
	ck_assert_int_eq(h_exchange(pr, (const uint8_t *)"GET / HTTP/1.1\r\n\r\n",
				    18, 18, 0, out, sizeof(out), NULL),
			 -ECONNRESET);
	n = client_hello(hello, sizeof(hello), "big.example", 17000, 16000);
	ck_assert_int_eq(h_exchange(pr, hello, n, n, 0, out, sizeof(out), NULL),
			 -ECONNRESET);
	ck_assert_int_eq(h_refused(&lb, "r", "no_route"), 3);
	{
		int fd = h_connect("127.0.0.1", pr, 3000);
		long data = 0;

		ck_assert_int_ge(fd, 0);
		n = client_hello(hello, sizeof(hello), "big.example", 0, 16384);
		ck_assert_int_eq(h_write_all(fd, hello, n / 2, 3000), 0);
		t0 = h_now_ms();
		ck_assert_int_eq(h_wait_close(fd, 3000, &data), -ECONNRESET);
		ck_assert_msg(h_now_ms() - t0 >= 400,
			      "preread_timeout after %llu ms, not 500",
			      (unsigned long long)(h_now_ms() - t0));
		close(fd);
	}
	ck_assert_int_eq(h_refused(&lb, "r", "preread_timeout"), 1);
	ck_assert_int_eq(h_lb_log_count(&lb, "end=preread-timeout"), 1);

	/* A default pool takes all of those instead. */
	n = client_hello(hello, sizeof(hello), NULL, 100, 16384);
	got = h_exchange(pd, hello, n, n, 0, out, sizeof(out), NULL);
	ck_assert_int_eq(got, (long)(2 + n));
	ck_assert(memcmp(out, "d\n", 2) == 0);
	got = h_exchange(pd, (const uint8_t *)"GET / HTTP/1.1\r\n\r\n", 18, 18, 0,
			 out, sizeof(out), NULL);
	ck_assert_int_eq(got, 20);
	ck_assert(memcmp(out, "d\nGET / HTTP/1.1\r\n\r\n", 20) == 0);
	{
		int fd = h_connect("127.0.0.1", pd, 3000);
		char line[16];

		ck_assert_int_ge(fd, 0);
		n = client_hello(hello, sizeof(hello), "big.example", 0, 16384);
		ck_assert_int_eq(h_write_all(fd, hello, 10, 3000), 0);
		t0 = h_now_ms();
		ck_assert_int_ge(h_read_line(fd, line, sizeof(line), 3000), 0);
		ck_assert_str_eq(line, "d");
		ck_assert_msg(h_now_ms() - t0 >= 400,
			      "default pool after %llu ms, not 500",
			      (unsigned long long)(h_now_ms() - t0));
		close(fd);
	}
	ck_assert_int_eq(h_refused(&lb, "rd", "no_route") +
				 h_refused(&lb, "rd", "preread_timeout"),
			 0);

	/* PROXY v2 to the backend: the SNI as AUTHORITY, then the hello. */
	n = client_hello(hello, sizeof(hello), "big.example", 0, 16384);
	got = h_exchange(pp, hello, n, n, 0, out, sizeof(out), NULL);
	ck_assert_int_gt(got, 0);
	ck_assert_int_eq(pp_parse((const uint8_t *)out, (size_t)got, &pi, &hl,
				  &why),
			 PP_OK);
	ck_assert_int_eq(pi.tlv_len, 3 + 11);
	ck_assert(memcmp(out + pi.tlv_off, "\x02\x00\x0b" "big.example", 14) ==
		  0);
	ck_assert_int_eq((size_t)got - hl, n);
	ck_assert(memcmp(out + hl, hello, n) == 0);
	json_decref(cfg);
}
END_TEST

/* Which pool ("A" or "B") a ClientHello for sni reaches through port. */
static char
routed_to(int port, const char *sni)
{
	static uint8_t hello[2048];
	char out[4096];
	size_t n = client_hello(hello, sizeof(hello), sni, 0, 16384);
	long got = h_exchange(port, hello, n, n, 0, out, sizeof(out), NULL);

	ck_assert_int_eq(got, (long)(2 + n));
	ck_assert(out[1] == '\n');
	return out[0];
}

START_TEST(test_sni_route_split)
{
	struct h_backend a, b;
	json_t *cfg = hc_new(), *l, *j;
	int port, n[2] = { 0 };
	struct h_lb lb;

	h_backend_up(&a, H_NAME, "a");
	h_backend_up(&b, H_NAME, "b");
	j = hc_pool(cfg, "A");
	hc_backend(j, &a, 1);
	hc_set(j, "health_check", hc_json("{ \"enabled\": false }"));
	j = hc_pool(cfg, "B");
	hc_backend(j, &b, 1);
	hc_set(j, "health_check", hc_json("{ \"enabled\": false }"));
	l = hc_listener(cfg, "r", 0);
	hc_set(l, "routes",
	       hc_json("[ { \"sni\": [\"api.example\", \"*.api.example\"],"
		       "    \"split\": [ { \"pool\": \"A\", \"weight\": 3 },"
		       "                 { \"pool\": \"B\", \"weight\": 1 } ] },"
		       "  { \"sni\": [\"b.example\"], \"pool\": \"B\" } ]"));
	port = hc_port(l);
	ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, port, NULL), 0);
	for (int i = 0; i < 200; i++)
		n[routed_to(port, i % 2 ? "api.example" : "x.api.example") ==
		  'b']++;
	ck_assert_msg(n[1] >= 40 && n[1] <= 60,
		      "B took %d of 200 at 3:1 (want 50 +- 10)", n[1]);
	ck_assert_int_eq(routed_to(port, "b.example"), 'b');
	/* Both names of the route share one split, shown under each. */
	j = h_api(&lb, "GET", "/listeners/r", NULL, 200);
	ck_assert_str_eq(h_jstr(j, "routes.1.sni"), "*.api.example");
	ck_assert_int_eq(h_jint(j, "routes.0.split.sides.1.connections"),
			 n[1]);
	ck_assert_int_eq(h_jint(j, "routes.1.split.sides.0.connections"),
			 n[0]);
	ck_assert_str_eq(h_jstr(j, "routes.2.pool"), "B");
	json_decref(j);
	/* By any of its names: all to A now, for both names. */
	j = h_api(&lb, "PUT", "/listeners/r/routes/*.api.example/split",
		  "{\"weights\": {\"B\": 0}}", 200);
	ck_assert_int_eq(h_jint(j, "sides.1.weight"), 0);
	json_decref(j);
	for (int i = 0; i < 20; i++)
		ck_assert_int_eq(routed_to(port, i % 2 ? "api.example" :
							 "y.api.example"),
				 'a');
	j = h_api(&lb, "GET", "/listeners/r/routes/b.example/split", NULL,
		  404);
	ck_assert_str_eq(h_jstr(j, "error"),
			 "listener \"r\" has no route with a split for server "
			 "name \"b.example\" (use the name as written in the "
			 "file, e.g. \"*.example.org\")");
	json_decref(j);
	j = h_api(&lb, "GET", "/listeners/r/split", NULL, 404);
	ck_assert_str_eq(h_jstr(j, "error"),
			 "listener \"r\" has no split of its own");
	json_decref(j);
	json_decref(cfg);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("sni");
	TCase *tc = h_tcase(s, "sni", 90, h_teardown);

	tcase_add_test(tc, test_sni_tls);
	tcase_add_test(tc, test_sni_preread);
	tcase_add_test(tc, test_sni_route_split);
	return h_run_suite("check_sni", s);
}

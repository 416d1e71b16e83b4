/*
 * check_discover.c: pools whose backends come from DNS, against the real
 * binary and a DNS server of the test's own (h_dns.h) that the tests
 * change, and make fail, while ringlb runs.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "harness.h"
#include "h_dns.h"
#include "h_private.h"

#define NAME "svc.test"

/* Listener "l" with a pool of its own from DNS name NAME, type a, port. */
static json_t *
a_cfg(const struct h_dns *dns, int port, const char *extra)
{
	json_t *cfg = hc_new(), *l;
	char d[512];

	l = hc_listener(cfg, "l", 0);
	hc_set(l, "health_check", hc_json("{ \"enabled\": false }"));
	snprintf(d, sizeof(d),
		 "{ \"name\": \"" NAME "\", \"type\": \"a\", \"port\": %d, "
		 "\"resolvers\": [\"127.0.0.1:%d\"], \"min_ttl_ms\": 100%s }",
		 port, h_dns_port(dns), extra ? extra : "");
	hc_set(l, "discover", hc_json(d));
	return cfg;
}

static int
lport(const json_t *cfg)
{
	return hc_port(json_array_get(json_object_get(cfg, "listeners"), 0));
}

/* How many backends pool l has, and whether one named `name` is there. */
static size_t
backends(const struct h_lb *lb, const char *name, bool *has)
{
	json_t *j = h_api(lb, "GET", "/pools/l", NULL, 200);
	json_t *bs = json_object_get(j, "backends"), *b;
	size_t i, n = json_array_size(bs);

	if (has)
		*has = false;
	json_array_foreach(bs, i, b)
		if (has && strcmp(json_string_value(json_object_get(b, "name")),
				  name) == 0)
			*has = true;
	json_decref(j);
	return n;
}

/* Wait until pool l has n backends (with `name` among them, if given). */
static void
wait_backends(const struct h_lb *lb, size_t n, const char *name,
	      int timeout_ms)
{
	uint64_t t0 = h_now_ms();
	size_t got = 0;
	bool has = false;

	while (h_now_ms() - t0 < (uint64_t)timeout_ms) {
		got = backends(lb, name ? name : "", &has);
		if (got == n && (!name || has))
			return;
		h_sleep_ms(20);
	}
	ck_abort_msg("pool l: %zu backends after %d ms, wanted %zu%s%s", got,
		     timeout_ms, n, name ? " with " : "", name ? name : "");
}

/* Does a client get a backend's name through port? */
static bool
served(int port)
{
	char name[16];

	return h_get_name("127.0.0.1", port, name, sizeof(name), NULL) == 0;
}

/* The names clients get through port, over k connections. */
static void
names_seen(int port, int k, char *out, size_t size)
{
	out[0] = '\0';
	for (int i = 0; i < k; i++) {
		char name[16];

		ck_assert_int_eq(h_get_name("127.0.0.1", port, name,
					    sizeof(name), NULL),
				 0);
		if (!strstr(out, name)) {
			strncat(out, name, size - strlen(out) - 2);
			strncat(out, " ", size - strlen(out) - 1);
		}
	}
}

/*
 * Backend "a" on 127.0.0.2, NAME's one A record pointing at it (no AAAA),
 * and ringlb serving it through pool l with `extra` discover keys; once
 * the pool has it.  The config.
 */
static json_t *
start_one(struct h_lb *lb, struct h_backend *a, struct h_dns **dns,
	  const char *extra)
{
	const char *const one[] = { "127.0.0.2" };
	json_t *cfg;

	/* Backends first: a fork after the DNS thread starts is no good
	 * under ThreadSanitizer. */
	h_backend_up_at(a, H_NAME, "a", "127.0.0.2", 0);
	*dns = h_dns_start();
	h_dns_set(*dns, NAME, H_DNS_A, one, 1, 0);
	h_dns_set(*dns, NAME, H_DNS_AAAA, NULL, 0, 0);
	cfg = a_cfg(*dns, a->port, extra);
	ck_assert_int_eq(h_lb_start_cfg(lb, cfg, lport(cfg), NULL), 0);
	wait_backends(lb, 1, NULL, 3000);
	return cfg;
}

START_TEST(a_records)
{
	struct h_backend a, b, c, d;
	struct h_dns *dns;
	const char *const two[] = { "127.0.0.2", "127.0.0.3" };
	const char *const v6[] = { "::1" };
	struct h_lb lb;
	char seen[64], want[32];
	json_t *cfg, *j;
	int port, fd;
	uint64_t t0;

	/* Backends first: a fork after the DNS thread starts is no good
	 * under ThreadSanitizer. */
	h_backend_up_at(&a, H_NAME, "a", "127.0.0.2", 0);
	h_backend_up_at(&b, H_NAME, "b", "127.0.0.3", a.port);
	h_backend_up_at(&c, H_NAME, "c", "127.0.0.4", a.port);
	h_backend_up_at(&d, H_NAME, "d", "::1", a.port);
	dns = h_dns_start();
	h_dns_set(dns, NAME, H_DNS_A, two, 2, 1);
	h_dns_set(dns, NAME, H_DNS_AAAA, v6, 1, 1);
	cfg = a_cfg(dns, a.port, NULL);
	port = lport(cfg);
	ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, port, NULL), 0);
	snprintf(want, sizeof(want), "[::1]:%d", a.port);
	wait_backends(&lb, 3, want, 3000);
	j = h_api(&lb, "GET", "/pools/l", NULL, 200);
	ck_assert(json_is_true(json_object_get(
		json_array_get(json_object_get(j, "backends"), 0),
		"discovered")));
	ck_assert_str_eq(h_jstr(j, "discovery.name"), NAME);
	ck_assert_int_eq(h_jint(j, "discovery.backends"), 3);
	ck_assert_int_ge(h_jint(j, "discovery.queries.ok"), 1);
	json_decref(j);
	/* The AAAA record's backend, on ::1, takes clients like the others. */
	names_seen(port, 9, seen, sizeof(seen));
	ck_assert_msg(strstr(seen, "a ") && strstr(seen, "b ") &&
			      strstr(seen, "d "),
		      "%s", seen);
	h_dns_set(dns, NAME, H_DNS_AAAA, NULL, 0, 1);
	wait_backends(&lb, 2, NULL, 3000);
	names_seen(port, 8, seen, sizeof(seen));
	ck_assert_msg(strstr(seen, "a ") && strstr(seen, "b ") &&
			      !strstr(seen, "d "),
		      "%s", seen);

	/* A stream to b, open while b leaves DNS: it finishes byte-exact. */
	fd = -1;
	for (int i = 0; i < 8 && fd < 0; i++) {
		char name[16];
		int f;

		ck_assert_int_eq(h_get_name("127.0.0.1", port, name,
					    sizeof(name), &f),
				 0);
		if (strcmp(name, "b") == 0)
			fd = f;
		else
			close(f);
	}
	ck_assert_int_ge(fd, 0);
	{
		const char *const ac[] = { "127.0.0.2", "127.0.0.4" };

		t0 = h_now_ms();
		h_dns_set(dns, NAME, H_DNS_A, ac, 2, 1);
	}
	snprintf(want, sizeof(want), "127.0.0.4:%d", a.port);
	/* Within max(TTL 1 s, min_ttl_ms) plus one second. */
	wait_backends(&lb, 2, want, 2500);
	fprintf(stderr, "a_records: a change picked up in %llu ms\n",
		(unsigned long long)(h_now_ms() - t0));
	names_seen(port, 8, seen, sizeof(seen));
	ck_assert_msg(!strstr(seen, "b ") && strstr(seen, "c "), "%s", seen);
	{
		char line[64];

		ck_assert_int_eq(h_write_all(fd, "still here\n", 11, 3000), 0);
		ck_assert_int_ge(h_read_line(fd, line, sizeof(line), 3000), 0);
		ck_assert_str_eq(line, "still here");
		close(fd);
	}
	ck_assert_int_ge(h_lb_log_count(&lb, "discovery: pool=l: 2 "
				       "discovered backends"),
			 1);
	{
		char *m = h_metrics(&lb);

		ck_assert_msg(strstr(m, "ringlb_discovery_backends{pool=\"l\"} 2\n"),
			      "%s", m);
		ck_assert_ptr_nonnull(strstr(m, "ringlb_discovery_queries_total"
						"{pool=\"l\",result=\"ok\"} "));
		free(m);
	}
	h_dns_stop(dns);
	json_decref(cfg);
}
END_TEST

START_TEST(srv_records)
{
	struct h_backend t1, t2, t3, t4, t5;
	struct h_dns *dns;
	const char *const lo[] = { "127.0.0.1" };
	struct h_lb lb;
	char srv[4][64], want[64], d[512];
	json_t *cfg, *l, *j;
	int port;

	h_backend_up(&t1, H_NAME, "t1");
	h_backend_up(&t2, H_NAME, "t2");
	h_backend_up(&t3, H_NAME, "t3");
	h_backend_up(&t4, H_NAME, "t4");
	h_backend_up(&t5, H_NAME, "t5");
	dns = h_dns_start();
	snprintf(srv[0], sizeof(srv[0]), "10 60 %d t1.svc.test.", t1.port);
	snprintf(srv[1], sizeof(srv[1]), "10 20 %d t2.svc.test.", t2.port);
	snprintf(srv[2], sizeof(srv[2]), "20 10 %d t3.svc.test.", t3.port);
	{
		const char *const rs[] = { srv[0], srv[1], srv[2] };

		h_dns_set(dns, "_pg._tcp." NAME, H_DNS_SRV, rs, 3, 1);
	}
	h_dns_set(dns, "t1.svc.test", H_DNS_A, lo, 1, 1);
	h_dns_set(dns, "t2.svc.test", H_DNS_A, lo, 1, 1);
	h_dns_set(dns, "t3.svc.test", H_DNS_A, lo, 1, 1);
	cfg = hc_new();
	l = hc_listener(cfg, "l", 0);
	hc_set(l, "health_check", hc_json("{ \"enabled\": false }"));
	snprintf(d, sizeof(d),
		 "{ \"name\": \"_pg._tcp." NAME "\", \"type\": \"srv\", "
		 "\"resolvers\": [\"127.0.0.1:%d\"], \"min_ttl_ms\": 100 }",
		 h_dns_port(dns));
	hc_set(l, "discover", hc_json(d));
	port = lport(cfg);
	ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, port, NULL), 0);
	snprintf(want, sizeof(want), "t3.svc.test:%d", t3.port);
	wait_backends(&lb, 3, want, 3000);
	j = h_api(&lb, "GET", "/pools/l", NULL, 200);
	/* Sorted by priority, then target: t1, t2, then the backup t3. */
	ck_assert_int_eq(h_jint(j, "backends.0.weight"), 256);
	ck_assert_int_eq(h_jint(j, "backends.1.weight"), 85);
	ck_assert(!json_is_true(json_object_get(
		json_array_get(json_object_get(j, "backends"), 1), "backup")));
	ck_assert(json_is_true(json_object_get(
		json_array_get(json_object_get(j, "backends"), 2), "backup")));
	ck_assert_int_eq(h_jint(j, "discovery.records.0.weight"), 60);
	json_decref(j);
	/* The backup takes no clients while a primary can. */
	{
		char seen[64];

		names_seen(port, 12, seen, sizeof(seen));
		ck_assert_msg(!strstr(seen, "t3"), "%s", seen);
	}
	/* A weight-only change: t1's 60 becomes 20, equal to t2's.  The
	 * same backend, its counters kept, now at t2's weight. */
	{
		const char *const rs[] = { srv[0], srv[1], srv[2] };
		long long total;
		uint64_t t0 = h_now_ms();

		j = h_api(&lb, "GET", "/pools/l", NULL, 200);
		total = h_jint(j, "backends.0.total");
		ck_assert_int_ge(total, 1);
		json_decref(j);
		snprintf(srv[0], sizeof(srv[0]), "10 20 %d t1.svc.test.",
			 t1.port);
		h_dns_set(dns, "_pg._tcp." NAME, H_DNS_SRV, rs, 3, 1);
		for (;;) {
			long long w;

			j = h_api(&lb, "GET", "/pools/l", NULL, 200);
			w = h_jint(j, "backends.0.weight");
			if (w == 256 && h_jint(j, "backends.1.weight") == 256)
				break;
			json_decref(j);
			/* Within max(TTL 1 s, min_ttl_ms) plus one second. */
			ck_assert_msg(h_now_ms() - t0 < 2500,
				      "weights still %lld", w);
			h_sleep_ms(20);
		}
		ck_assert_int_eq(h_jint(j, "discovery.records.0.weight"), 20);
		ck_assert_int_ge(h_jint(j, "backends.0.total"), total);
		snprintf(want, sizeof(want), "t1.svc.test:%d", t1.port);
		ck_assert_str_eq(h_jstr(j, "backends.0.name"), want);
		json_decref(j);
	}
	/* No additional section: ringlb asks for the targets itself.  And
	 * t2 moves to another port, at once a backend of another name. */
	h_dns_additional(dns, false);
	snprintf(srv[1], sizeof(srv[1]), "10 20 %d t2.svc.test.", t4.port);
	{
		const char *const rs[] = { srv[0], srv[1], srv[2] };

		h_dns_set(dns, "_pg._tcp." NAME, H_DNS_SRV, rs, 3, 1);
	}
	snprintf(want, sizeof(want), "t2.svc.test:%d", t4.port);
	wait_backends(&lb, 3, want, 2500);
	ck_assert_int_ge(h_dns_queries(dns, "t1.svc.test", H_DNS_A), 1);
	/* Priority 30 too: each priority is a tier, tried in order. */
	snprintf(srv[3], sizeof(srv[3]), "30 10 %d t5.svc.test.", t5.port);
	h_dns_set(dns, "t5.svc.test", H_DNS_A, lo, 1, 1);
	{
		const char *const rs[] = { srv[0], srv[1], srv[2], srv[3] };

		h_dns_set(dns, "_pg._tcp." NAME, H_DNS_SRV, rs, 4, 1);
	}
	snprintf(want, sizeof(want), "t5.svc.test:%d", t5.port);
	wait_backends(&lb, 4, want, 2500);
	j = h_api(&lb, "GET", "/pools/l", NULL, 200);
	ck_assert_int_eq(h_jint(j, "backends.2.tier"), 1);
	ck_assert_int_eq(h_jint(j, "backends.3.tier"), 2);
	json_decref(j);
	{
		const int ports[] = { t1.port, t4.port, t3.port };
		const char *const who[] = { "t1", "t2", "t3" };
		char seen[64], path[128];

		for (int i = 0; i < 3; i++) {
			snprintf(path, sizeof(path),
				 "/pools/l/backends/%s.svc.test:%d/drain", who[i],
				 ports[i]);
			json_decref(h_api(&lb, "POST", path, NULL, 200));
			names_seen(port, 6, seen, sizeof(seen));
			/* t2's record points at t4's server now.  Primaries
			 * drained: tier 1 (t3); it too: tier 2. */
			ck_assert_msg(strcmp(seen, i < 1 ? "t4 " :
						   i < 2 ? "t3 " :
							   "t5 ") == 0,
				      "after draining %s: %s", who[i], seen);
		}
	}
	h_dns_stop(dns);
	json_decref(cfg);
}
END_TEST

/* SERVFAIL and a malformed answer keep the set for hold_ms, then not. */
START_TEST(failures_hold)
{
	struct h_backend a;
	struct h_dns *dns;
	struct h_lb lb;
	json_t *cfg, *j;
	uint64_t t0;
	int port;

	cfg = start_one(&lb, &a, &dns, ", \"hold_ms\": 1500");
	port = lport(cfg);
	/* SERVFAIL, a malformed answer, a server that stopped answering. */
	for (int m = 0; m < 3; m++) {
		h_dns_mode(dns, m == 0 ? H_DNS_SERVFAIL :
				m == 1 ? H_DNS_MALFORMED :
					 H_DNS_SILENT);
		t0 = h_now_ms();
		/* Held (silence is known once c-ares gives up: 1 s, 2 s). */
		for (bool holding = false; !holding;) {
			ck_assert_int_lt((long long)(h_now_ms() - t0), 8000);
			h_sleep_ms(50);
			j = h_api(&lb, "GET", "/pools/l", NULL, 200);
			holding = json_is_true(json_object_get(
				json_object_get(j, "discovery"), "holding"));
			if (holding)
				ck_assert_msg(strlen(h_jstr(
						      j, "discovery.last_error")) > 0,
					      "no last_error");
			json_decref(j);
		}
		/* ... and still served meanwhile. */
		ck_assert_int_eq(backends(&lb, "", NULL), 1);
		ck_assert(served(port));
		/* Then gone, within hold_ms and the retry after it. */
		wait_backends(&lb, 0, NULL, m == 2 ? 10000 : 4000);
		ck_assert_int_ge((long long)(h_now_ms() - t0), 1400);
		h_dns_mode(dns, H_DNS_NORMAL);
		wait_backends(&lb, 1, NULL, 5000);
	}
	ck_assert_int_ge(h_lb_log_count(&lb, "keeping the last answer for up "
				       "to 1500 ms"),
			 3);
	j = h_api(&lb, "GET", "/pools/l", NULL, 200);
	ck_assert_int_ge(h_jint(j, "discovery.queries.servfail"), 1);
	ck_assert_int_ge(h_jint(j, "discovery.queries.malformed"), 1);
	ck_assert_int_ge(h_jint(j, "discovery.queries.timeout"), 1);
	json_decref(j);
	h_dns_stop(dns);
	json_decref(cfg);
}
END_TEST

/* NXDOMAIN and an empty answer are answers: the set empties at once. */
START_TEST(nxdomain_and_empty)
{
	struct h_backend a;
	struct h_dns *dns;
	const char *const one[] = { "127.0.0.2" };
	struct h_lb lb;
	json_t *cfg;
	int port;

	cfg = start_one(&lb, &a, &dns, ", \"hold_ms\": 60000");
	port = lport(cfg);
	h_dns_remove(dns, NAME);
	wait_backends(&lb, 0, NULL, 2000);
	/* No backend: refused, not hung. */
	ck_assert(!served(port));
	h_dns_set(dns, NAME, H_DNS_A, one, 1, 0);
	h_dns_set(dns, NAME, H_DNS_AAAA, NULL, 0, 0);
	wait_backends(&lb, 1, NULL, 2000);
	h_dns_set(dns, NAME, H_DNS_A, NULL, 0, 0);
	wait_backends(&lb, 0, NULL, 2000);
	ck_assert_int_ge(h_lb_log_count(&lb, "has no records"), 2);
	h_dns_stop(dns);
	json_decref(cfg);
}
END_TEST

/* 500 records need TCP; max_backends takes a stable first part. */
START_TEST(many_records_over_tcp)
{
	static char addrs[500][16];
	const char *rs[500];
	struct h_dns *dns;
	struct h_lb lb;
	json_t *cfg;

	for (int i = 0; i < 500; i++) {
		snprintf(addrs[i], sizeof(addrs[i]), "127.0.%d.%d", 1 + i / 250,
			 1 + i % 250);
		rs[i] = addrs[i];
	}
	dns = h_dns_start();
	h_dns_set(dns, NAME, H_DNS_A, rs, 500, 5);
	h_dns_set(dns, NAME, H_DNS_AAAA, NULL, 0, 5);
	cfg = a_cfg(dns, 9, NULL);
	ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, lport(cfg), NULL), 0);
	wait_backends(&lb, 500, "127.0.2.250:9", 5000);
	ck_assert_uint_ge(h_dns_tcp_queries(dns), 1);
	h_lb_signal(&lb, SIGTERM);
	ck_assert_int_eq(h_lb_wait_exit(&lb, 5000), 0);
	json_decref(cfg);
	/* The same with max_backends 100: the first 100 in address order. */
	cfg = a_cfg(dns, 9, ", \"max_backends\": 100");
	ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, lport(cfg), NULL), 0);
	wait_backends(&lb, 100, "127.0.1.100:9", 5000);
	ck_assert_int_ge(h_lb_log_count(&lb, "more than max_backends 100"), 1);
	h_dns_stop(dns);
	json_decref(cfg);
}
END_TEST

/* A reload while a query hangs keeps the backends DNS gave. */
START_TEST(reload_while_asking)
{
	struct h_backend a;
	struct h_dns *dns;
	struct h_lb lb;
	json_t *cfg;
	int port;

	cfg = start_one(&lb, &a, &dns, NULL);
	port = lport(cfg);
	h_dns_mode(dns, H_DNS_SILENT);
	h_sleep_ms(300);	/* a query is in flight now */
	json_decref(h_api(&lb, "POST", "/reload", NULL, 200));
	ck_assert_int_eq(backends(&lb, "", NULL), 1);
	ck_assert(served(port));
	h_dns_mode(dns, H_DNS_NORMAL);
	h_dns_set(dns, NAME, H_DNS_A, NULL, 0, 0);
	wait_backends(&lb, 0, NULL, 6000);
	ck_assert(h_lb_running(&lb));
	h_dns_stop(dns);
	json_decref(cfg);
}
END_TEST

/*
 * An upgrade: the new process starts with the backends DNS gave the old
 * one, in their states, before it has an answer of its own.
 */
/*
 * No pool discovers: no DNS thread (nor its fd).  A reload that
 * brings the first discovering pool starts it.
 */
START_TEST(reload_adds_discovery)
{
	const char *const one[] = { "127.0.0.2" };
	struct h_backend a, s;
	struct h_dns *dns;
	struct h_lb lb;
	json_t *cfg, *l;
	char seen[64];
	int port;

	h_backend_up_at(&a, H_NAME, "a", "127.0.0.2", 0);
	h_backend_up(&s, H_NAME, "s");
	dns = h_dns_start();
	h_dns_set(dns, NAME, H_DNS_A, one, 1, 0);
	h_dns_set(dns, NAME, H_DNS_AAAA, NULL, 0, 0);
	cfg = a_cfg(dns, a.port, NULL);
	port = lport(cfg);
	l = json_array_get(json_object_get(cfg, "listeners"), 0);
	json_incref(l);
	hc_del(l, "discover");
	hc_backend(l, &s, 0);
	ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, port, NULL), 0);
	ck_assert_int_lt(h_lb_thread(&lb, "ringlb-dns"), 0);
	names_seen(port, 2, seen, sizeof(seen));
	ck_assert_str_eq(seen, "s ");

	{
		char d[512];

		snprintf(d, sizeof(d),
			 "{ \"name\": \"" NAME "\", \"type\": \"a\", "
			 "\"port\": %d, \"resolvers\": [\"127.0.0.1:%d\"] }",
			 a.port, h_dns_port(dns));
		hc_set(l, "discover", hc_json(d));
	}
	ck_assert_int_eq(h_lb_write_cfg(&lb, cfg), 0);
	json_decref(h_api(&lb, "POST", "/reload", NULL, 200));
	wait_backends(&lb, 2, NULL, 3000);
	ck_assert_int_gt(h_lb_thread(&lb, "ringlb-dns"), 0);
	names_seen(port, 4, seen, sizeof(seen));
	ck_assert_msg(strstr(seen, "a ") && strstr(seen, "s "), "%s", seen);
	json_decref(l);
	h_dns_stop(dns);
	json_decref(cfg);
}
END_TEST

START_TEST(upgrade_keeps_discovered)
{
	struct h_backend a, b;
	struct h_dns *dns;
	const char *const ab[] = { "127.0.0.2", "127.0.0.3" };
	struct h_lb lb;
	char path[96];
	json_t *cfg, *j;
	pid_t pid;

	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	h_backend_up_at(&a, H_NAME, "a", "127.0.0.2", 0);
	h_backend_up_at(&b, H_NAME, "b", "127.0.0.3", a.port);
	dns = h_dns_start();
	h_dns_set(dns, NAME, H_DNS_A, ab, 2, 0);
	h_dns_set(dns, NAME, H_DNS_AAAA, NULL, 0, 0);
	cfg = a_cfg(dns, a.port, NULL);
	ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, lport(cfg), NULL), 0);
	wait_backends(&lb, 2, NULL, 3000);
	snprintf(path, sizeof(path), "/pools/l/backends/127.0.0.3:%d/drain",
		 a.port);
	json_decref(h_api(&lb, "POST", path, NULL, 200));
	/* The new process gets no answer of its own. */
	h_dns_mode(dns, H_DNS_SILENT);
	j = h_api(&lb, "POST", "/upgrade", NULL, 200);
	pid = (pid_t)h_jint(j, "pid");
	json_decref(j);
	h_track_pid(pid);
	ck_assert_int_eq(h_lb_wait_exit(&lb, 10000), 0);
	lb.pid = pid;
	lb.status = 0;
	j = h_api(&lb, "GET", "/pools/l", NULL, 200);
	ck_assert_int_eq(json_array_size(json_object_get(j, "backends")), 2);
	ck_assert_str_eq(h_jstr(j, "backends.1.admin"), "drain");
	ck_assert(json_is_true(json_object_get(
		json_array_get(json_object_get(j, "backends"), 0),
		"discovered")));
	json_decref(j);
	ck_assert(served(lport(cfg)));
	h_lb_signal(&lb, SIGTERM);
	ck_assert_int_eq(h_lb_wait_exit(&lb, 10000), 0);
	h_dns_stop(dns);
	json_decref(cfg);
}
END_TEST

/* ---- 100 refreshes under a load of new connections ---- */

struct load {
	pthread_t t;
	int port;
	atomic_bool stop;
	atomic_uint ok, failed;
};

static void *
load_run(void *arg)
{
	struct load *l = arg;

	while (!atomic_load(&l->stop)) {
		if (served(l->port))
			atomic_fetch_add(&l->ok, 1);
		else
			atomic_fetch_add(&l->failed, 1);
	}
	return NULL;
}

START_TEST(refreshes_under_load)
{
	struct h_backend a, b;
	struct h_dns *dns;
	const char *const ab[] = { "127.0.0.2", "127.0.0.3" };
	const char *const ba[] = { "127.0.0.3", "127.0.0.2" };
	const char *const a1[] = { "127.0.0.2" };
	struct load load = { 0 };
	struct h_lb lb;
	json_t *cfg, *j;
	long long gen0;

	h_backend_up_at(&a, H_NAME, "a", "127.0.0.2", 0);
	h_backend_up_at(&b, H_NAME, "b", "127.0.0.3", a.port);
	dns = h_dns_start();
	h_dns_set(dns, NAME, H_DNS_A, ab, 2, 0);
	h_dns_set(dns, NAME, H_DNS_AAAA, NULL, 0, 0);
	cfg = a_cfg(dns, a.port, NULL);
	hc_set(cfg, "listeners.0.discover.min_ttl_ms", json_integer(20));
	load.port = lport(cfg);
	ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, load.port, NULL), 0);
	wait_backends(&lb, 2, NULL, 3000);
	j = h_api(&lb, "GET", "/status", NULL, 200);
	gen0 = h_jint(j, "generation");
	json_decref(j);
	ck_assert_int_eq(pthread_create(&load.t, NULL, load_run, &load), 0);
	/* a and b, then a alone, 50 times: 100 changes of the set. */
	for (int i = 0; i < 50; i++) {
		h_dns_set(dns, NAME, H_DNS_A, a1, 1, 0);
		wait_backends(&lb, 1, NULL, 3000);
		h_dns_set(dns, NAME, H_DNS_A, i & 1 ? ab : ba, 2, 0);
		wait_backends(&lb, 2, NULL, 3000);
	}
	atomic_store(&load.stop, true);
	pthread_join(load.t, NULL);
	j = h_api(&lb, "GET", "/status", NULL, 200);
	ck_assert_int_ge(h_jint(j, "generation") - gen0, 100);
	json_decref(j);
	ck_assert_msg(atomic_load(&load.failed) == 0,
		      "%u of %u connects failed", atomic_load(&load.failed),
		      atomic_load(&load.ok) + atomic_load(&load.failed));
	ck_assert_uint_gt(atomic_load(&load.ok), 100);
	h_dns_stop(dns);
	json_decref(cfg);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("discover");
	TCase *tc = h_tcase(s, "discover", 120, h_teardown);

	tcase_add_test(tc, a_records);
	tcase_add_test(tc, srv_records);
	tcase_add_test(tc, failures_hold);
	tcase_add_test(tc, nxdomain_and_empty);
	tcase_add_test(tc, many_records_over_tcp);
	tcase_add_test(tc, reload_while_asking);
	tcase_add_test(tc, reload_adds_discovery);
	tcase_add_test(tc, upgrade_keeps_discovered);
	tcase_add_test(tc, refreshes_under_load);
	return h_run_suite("check_discover", s);
}

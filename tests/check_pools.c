/*
 * check_pools.c: pools shared by listeners, against the real binary.
 *
 * An IPv4 and an IPv6 listener feeding one pool share its round-robin
 * sequence, its health checks (one per backend), its counters and its
 * drain; the admin API and ringlbctl address the pool by name; a reload
 * carries a backend when its pool, name and address stay, and a listener
 * may switch pools without closing its listening sockets.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define FAST_HEALTH \
	"{ \"interval_ms\": 100, \"timeout_ms\": 100, \"rise\": 1, " \
	"\"fall\": 1 }"

/* A pool of name-sending backends b[0..n). */
static json_t *
pool(json_t *cfg, const char *name, struct h_backend *const *b, size_t n)
{
	json_t *p = hc_pool(cfg, name);

	for (size_t i = 0; i < n; i++)
		hc_backend(p, b[i], 1);
	return p;
}

/* A listener on host:port that names pool p. */
static json_t *
feed(json_t *cfg, const char *name, const char *host, int port,
     const char *p)
{
	json_t *l = hc_listener(cfg, name, port);

	hc_listen(l, host, hc_port(l));
	hc_set(l, "pool", json_string(p));
	return l;
}

/* Which backend answers a new connection to host:port. */
static void
pick(const char *host, int port, char *name, size_t cap)
{
	int rc = h_get_name(host, port, name, cap, NULL);

	ck_assert_msg(rc == 0, "connect to %s:%d: %s", host, port,
		      strerror(-rc));
}

/*
 * Inodes of the sockets listening on port (IPv4 and IPv6), sorted into
 * one string: the same string after a reload means the same sockets.
 */
static void
listen_inodes(int port, char *out, size_t cap)
{
	static const char *const files[] = { "/proc/net/tcp", "/proc/net/tcp6" };
	size_t o = 0;

	out[0] = '\0';
	for (size_t f = 0; f < 2; f++) {
		FILE *fp = fopen(files[f], "r");
		char line[512];

		ck_assert_ptr_nonnull(fp);
		while (fgets(line, sizeof(line), fp)) {
			char local[64], st[8];
			unsigned long inode;
			unsigned lport;
			char *colon;

			if (sscanf(line, " %*d: %63s %*s %7s %*s %*s %*s %*s "
				   "%*s %lu", local, st, &inode) != 3 ||
			    strcmp(st, "0A") != 0)
				continue;
			colon = strrchr(local, ':');
			if (!colon || sscanf(colon + 1, "%x", &lport) != 1 ||
			    (int)lport != port)
				continue;
			o += (size_t)snprintf(out + o, cap - o, "%lu ", inode);
		}
		fclose(fp);
	}
}

/*
 * An IPv4 and an IPv6 listener on one pool: one health check per backend,
 * one round-robin sequence, one set of counters, one drain; the pool's
 * backends are reached by /pools/P/... and ringlbctl POOL, and still
 * through either listener's /listeners/L/... path.
 */
START_TEST(test_shared_pool)
{
	struct h_backend a1, a2;
	struct h_backend *bs[] = { &a1, &a2 };
	char name[64], prev[64] = "";
	int port = h_free_port(), n1 = 0, n2 = 0;
	json_t *cfg = hc_new(), *p, *j, *ls;
	struct h_run *r;
	struct h_lb lb;
	char *line;

	h_backend_up(&a1, H_NAME, "a1");
	h_backend_up(&a2, H_NAME, "a2");
	p = pool(cfg, "pg", bs, 2);
	hc_set(p, "health_check", hc_json(FAST_HEALTH));
	feed(cfg, "v4", "127.0.0.1", port, "pg");
	feed(cfg, "v6", "[::1]", port, "pg");
	ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, port, NULL), 0);

	/* Two listeners, two backends: two probes, not four. */
	ck_assert_int_eq(h_lb_log_count(&lb, "health: checking 2 backends"),
			 1);
	/* One sequence: turns alternate whichever listener a client uses. */
	for (int i = 0; i < 8; i++) {
		pick(i % 2 ? "::1" : "127.0.0.1", port, name, sizeof(name));
		ck_assert_msg(strcmp(name, prev) != 0,
			      "connection %d got %s twice in a row", i, name);
		snprintf(prev, sizeof(prev), "%s", name);
		n1 += strcmp(name, "a1") == 0;
		n2 += strcmp(name, "a2") == 0;
	}
	ck_assert_int_eq(n1, 4);
	ck_assert_int_eq(n2, 4);

	/* The pool, the listeners that feed it, shared counters. */
	j = h_api(&lb, "GET", "/pools/pg", NULL, 200);
	ls = json_object_get(j, "listeners");
	ck_assert_int_eq(json_array_size(ls), 2);
	ck_assert_str_eq(json_string_value(json_array_get(ls, 0)), "v4");
	ck_assert_str_eq(json_string_value(json_array_get(ls, 1)), "v6");
	ck_assert_int_eq(json_is_false(json_object_get(j, "inline")), 1);
	ck_assert_int_eq(h_jint(h_jnamed(json_object_get(j, "backends"), "a1"),
				"total"),
			 4);
	json_decref(j);
	j = h_api(&lb, "GET", "/listeners/v6", NULL, 200);
	ck_assert_str_eq(h_jstr(j, "pool"), "pg");
	ck_assert_int_eq(h_jint(j, "accepts"), 4);
	json_decref(j);
	j = h_api(&lb, "GET", "/pools", NULL, 200);
	ck_assert_int_eq(json_array_size(json_object_get(j, "pools")), 1);
	json_decref(j);

	/* Metrics: a shared pool's backends carry pool, not listener. */
	{
		struct h_http m;
		char sock[160];

		snprintf(sock, sizeof(sock), "%s/admin.sock", lb.dir);
		ck_assert_int_eq(h_http(sock, NULL, 0, "GET", "/metrics", NULL,
					5000, &m),
				 0);
		ck_assert_msg(strstr(m.body, "\nringlb_backend_connections_total"
					     "{pool=\"pg\",backend=\"a1\"} 4\n"),
			      "metrics: %s", m.body);
		ck_assert_msg(!strstr(m.body, "listener=\"v4\",pool="),
			      "a shared pool's backend has a listener label");
		h_http_free(&m);
	}

	/* One drain, by pool name, for both listeners. */
	r = h_ctl(&lb, "drain", "pg", "a1");
	ck_assert_msg(WEXITSTATUS(r->status) == 0 && strstr(r->out, "draining"),
		      "drain pg a1: %d %s%s", r->status, r->out, r->err);
	free(r);
	for (int i = 0; i < 4; i++) {
		pick(i % 2 ? "::1" : "127.0.0.1", port, name, sizeof(name));
		ck_assert_str_eq(name, "a2");
	}
	r = h_ctl(&lb, "status");
	ck_assert_msg(strstr(r->out, "pool pg (round-robin): fed by v4, v6"),
		      "status: %s", r->out);
	line = strstr(r->out, "\npg ");
	ck_assert_msg(line && strstr(line, "a1") && strstr(line, "draining"),
		      "status: %s", r->out);
	free(r);
	/* A listener's path reaches the pool it feeds. */
	j = h_api(&lb, "POST", "/listeners/v6/backends/a1/ready", NULL, 200);
	ck_assert_str_eq(h_jstr(j, "state"), "up");
	ck_assert_str_eq(h_jstr(j, "pool"), "pg");
	json_decref(j);
	j = h_api(&lb, "GET", "/pools/pg/backends/a1", NULL, 200);
	ck_assert_str_eq(h_jstr(j, "admin"), "ready");
	json_decref(j);

	/* Unknown names: 404 and exit 1, each saying which. */
	j = h_api(&lb, "GET", "/pools/nope", NULL, 404);
	ck_assert_msg(strstr(h_jstr(j, "error"), "unknown pool \"nope\""),
		      "%s", h_jstr(j, "error"));
	json_decref(j);
	j = h_api(&lb, "POST", "/pools/pg/backends/nope/drain", NULL, 404);
	json_decref(j);
	j = h_api(&lb, "GET", "/nope", NULL, 404);
	ck_assert_msg(strstr(h_jstr(j, "error"), "GET /pools/P/backends/B"),
		      "404 help: %s", h_jstr(j, "error"));
	json_decref(j);
	j = h_api(&lb, "GET", "/pools/pg/backends/a1/drain", NULL, 405);
	json_decref(j);
	r = h_ctl(&lb, "drain", "nope", "a1");
	ck_assert_msg(WEXITSTATUS(r->status) == 1 &&
			      strstr(r->err, "unknown pool"),
		      "drain nope a1: %d %s", r->status, r->err);
	free(r);

	/* A backend killed: down once, for both listeners. */
	h_backend_kill(&a2);
	ck_assert(h_lb_log_wait(&lb, 1, 3000, "health pool=pg backend=a2 ",
				"state=down"));
	for (int i = 0; i < 4; i++) {
		pick(i % 2 ? "::1" : "127.0.0.1", port, name, sizeof(name));
		ck_assert_str_eq(name, "a1");
	}
	ck_assert_int_eq(h_lb_log_count(&lb, "backend=a2 ", "state=down"), 1);
	json_decref(cfg);
}
END_TEST

/*
 * Reloads: a backend whose pool, name and address stay is carried (its
 * counters and operator state go on); one whose pool is renamed is new.
 * A listener that switches pools keeps its listening sockets, and a
 * connection open through it keeps flowing.
 */
START_TEST(test_pool_reload)
{
	struct h_backend x, y, e;
	struct h_backend *bx[] = { &x }, *by[] = { &y }, *be[] = { &e };
	char name[64], before[256], after[256];
	json_t *cfg = hc_new(), *l, *j;
	struct h_xfer xf = { 0 };
	struct h_lb lb;
	int port, hold;

	h_backend_up(&x, H_NAME, "x");
	h_backend_up(&y, H_NAME, "y");
	h_backend_up(&e, H_ECHO, "e");
	pool(cfg, "A", bx, 1);
	pool(cfg, "B", by, 1);
	pool(cfg, "E", be, 1);
	l = feed(cfg, "front", "127.0.0.1", 0, "A");
	port = hc_port(l);
	feed(cfg, "echo", "127.0.0.1", 0, "E");
	ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, port, NULL), 0);
	hold = h_connect("127.0.0.1",
			 hc_port(json_array_get(json_object_get(cfg,
								"listeners"),
						1)),
			 3000);
	ck_assert_int_ge(hold, 0);
	pick("127.0.0.1", port, name, sizeof(name));
	ck_assert_str_eq(name, "x");
	pick("127.0.0.1", port, name, sizeof(name));
	j = h_api(&lb, "POST", "/pools/A/backends/x/maint", NULL, 200);
	json_decref(j);
	listen_inodes(port, before, sizeof(before));
	ck_assert_msg(before[0] != '\0', "no listening socket on %d", port);

	/* front moves to pool B; A stays (unused now: a warning). */
	hc_set(l, "pool", json_string("B"));
	ck_assert_int_eq(h_lb_write_cfg(&lb, cfg), 0);
	j = h_api(&lb, "POST", "/reload", NULL, 200);
	json_decref(j);
	pick("127.0.0.1", port, name, sizeof(name));
	ck_assert_str_eq(name, "y");
	listen_inodes(port, after, sizeof(after));
	ck_assert_str_eq(before, after);
	ck_assert_int_ge(h_lb_log_count(&lb, "no listener uses pool \"A\""), 1);
	/* x was carried: its total and its maintenance state stand. */
	j = h_api(&lb, "GET", "/pools/A/backends/x", NULL, 200);
	ck_assert_int_eq(h_jint(j, "total"), 2);
	ck_assert_str_eq(h_jstr(j, "state"), "maintenance");
	json_decref(j);

	/* The same backend under a renamed pool is a new backend. */
	hc_set(cfg, "pools.0.name", json_string("A2"));
	ck_assert_int_eq(h_lb_write_cfg(&lb, cfg), 0);
	j = h_api(&lb, "POST", "/reload", NULL, 200);
	json_decref(j);
	j = h_api(&lb, "GET", "/pools/A2/backends/x", NULL, 200);
	ck_assert_int_eq(h_jint(j, "total"), 0);
	ck_assert_str_eq(h_jstr(j, "state"), "up");
	json_decref(j);
	j = h_api(&lb, "GET", "/pools/A", NULL, 404);
	json_decref(j);

	/* The connection opened before both reloads still echoes. */
	xf.tx_seed = 7;
	xf.tx_len = 100000;
	xf.tx_shut = true;
	xf.rx_seed = 7;
	xf.rx_len = 100000;
	xf.rx_eof = true;
	xf.timeout_ms = 5000;
	ck_assert_msg(h_xfer(hold, &xf) == 0, "held connection: %s", xf.err);
	close(hold);
	json_decref(cfg);
}
END_TEST

/* A bad pool reference stops the start, with the JSON path. */
START_TEST(test_pool_errors_at_start)
{
	struct h_backend a;
	json_t *cfg = hc_new(), *p;
	struct h_lb lb;
	int rc;

	h_backend_up(&a, H_NAME, "a");
	p = hc_pool(cfg, "pg");
	hc_backend(p, &a, 1);
	feed(cfg, "v4", "127.0.0.1", 0, "pgx");
	rc = h_lb_start_cfg(&lb, cfg, 0, NULL);
	ck_assert_int_eq(h_lb_wait_exit(&lb, 5000), 0);
	ck_assert_msg(WIFEXITED(lb.status) && WEXITSTATUS(lb.status) == 1,
		      "exit status %d (start rc %d)", lb.status, rc);
	ck_assert_int_eq(h_lb_log_count(&lb, "listeners[0].pool: unknown pool "
					     "\"pgx\""),
			 1);
	json_decref(cfg);
}
END_TEST

/*
 * Backups: none while a primary is eligible; all new connections once no
 * primary is; the primaries again as soon as one is back, while a
 * connection already on the backup goes on.  /pools/P and the log say when
 * the pool runs on backups.
 */
START_TEST(test_backups)
{
	struct h_backend p1, p2, bk;
	struct h_backend *bs[] = { &p1, &p2, &bk };
	json_t *cfg = hc_new(), *p, *l, *j;
	char name[64];
	struct h_lb lb;
	int port, held;
	struct h_xfer xf = { 0 };

	h_backend_up(&p1, H_NAME, "p1");
	h_backend_up(&p2, H_NAME, "p2");
	h_backend_up(&bk, H_NAME, "bk");
	p = pool(cfg, "web", bs, 3);
	hc_set(p, "backends.2.backup", json_true());
	hc_set(p, "health_check", hc_json(FAST_HEALTH));
	l = feed(cfg, "l", "127.0.0.1", 0, "web");
	port = hc_port(l);
	ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, port, NULL), 0);
	for (int i = 0; i < 12; i++) {
		pick("127.0.0.1", port, name, sizeof(name));
		ck_assert_str_ne(name, "bk");
	}
	/* The primaries gone: the backup takes everything. */
	h_backend_kill(&p1);
	h_backend_kill(&p2);
	ck_assert(h_lb_log_wait(&lb, 1, 3000, "backend=p1 ", "state=down"));
	ck_assert(h_lb_log_wait(&lb, 1, 3000, "backend=p2 ", "state=down"));
	for (int i = 0; i < 4; i++) {
		pick("127.0.0.1", port, name, sizeof(name));
		ck_assert_str_eq(name, "bk");
	}
	ck_assert_int_eq(h_lb_log_count(&lb, "pool=web: no primary backend is "
					     "eligible: running on backups"),
			 1);
	j = h_api(&lb, "GET", "/pools/web", NULL, 200);
	ck_assert(json_is_true(json_object_get(j, "on_backups")));
	ck_assert(json_is_true(hc_get(j, "backends.2.backup")));
	json_decref(j);
	/* A connection on the backup, open while a primary comes back. */
	ck_assert_int_eq(h_get_name("127.0.0.1", port, name, sizeof(name),
				    &held),
			 0);
	ck_assert_str_eq(name, "bk");
	ck_assert_int_eq(h_backend_restart(&p1), 0);
	ck_assert(h_lb_log_wait(&lb, 1, 3000, "backend=p1 ", "state=up"));
	for (int i = 0; i < 4; i++) {
		pick("127.0.0.1", port, name, sizeof(name));
		ck_assert_str_eq(name, "p1");
	}
	ck_assert_int_eq(h_lb_log_count(&lb, "pool=web: a primary backend is "
					     "eligible again"),
			 1);
	j = h_api(&lb, "GET", "/pools/web", NULL, 200);
	ck_assert(json_is_false(json_object_get(j, "on_backups")));
	json_decref(j);
	xf.tx_seed = 3;
	xf.tx_len = 50000;
	xf.tx_shut = true;
	xf.rx_seed = 3;
	xf.rx_len = 50000;
	xf.rx_eof = true;
	xf.timeout_ms = 5000;
	ck_assert_msg(h_xfer(held, &xf) == 0, "connection on the backup: %s",
		      xf.err);
	close(held);
	json_decref(cfg);
}
END_TEST

/*
 * Share of "b" among new connections from t0 + from_ms to t0 + to_ms (as
 * fast as they go), between two backends of equal weight.
 */
static double
share_b(int port, uint64_t t0, unsigned from_ms, unsigned to_ms)
{
	unsigned nb = 0, n = 0;
	char name[64];

	while (h_now_ms() < t0 + from_ms)
		h_sleep_ms(5);
	while (h_now_ms() < t0 + to_ms) {
		pick("127.0.0.1", port, name, sizeof(name));
		nb += strcmp(name, "b") == 0;
		n++;
	}
	ck_assert_uint_gt(n, 20);
	return (double)nb / n;
}

/*
 * slow_start_ms: a backend back from maintenance, or up after being down,
 * takes a share that ramps from a tenth of its weight to all of it.
 * Round-robin over two equal backends: its share goes from about 10% to
 * 50%.
 */
START_TEST(test_slow_start)
{
	struct h_backend a, b;
	struct h_backend *bs[] = { &a, &b };
	json_t *cfg = hc_new(), *p, *l, *j;
	double first, mid, last;
	struct h_lb lb;
	uint64_t t0;
	int port;

	h_backend_up(&a, H_NAME, "a");
	h_backend_up(&b, H_NAME, "b");
	p = pool(cfg, "web", bs, 2);
	hc_set(p, "health_check", hc_json(FAST_HEALTH));
	hc_set(p, "slow_start_ms", json_integer(3000));
	l = feed(cfg, "l", "127.0.0.1", 0, "web");
	port = hc_port(l);
	ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, port, NULL), 0);
	/* Not at start: both take turns at once. */
	ck_assert_double_gt(share_b(port, h_now_ms(), 0, 300), 0.45);

	j = h_api(&lb, "POST", "/pools/web/backends/b/maint", NULL, 200);
	json_decref(j);
	j = h_api(&lb, "POST", "/pools/web/backends/b/ready", NULL, 200);
	json_decref(j);
	t0 = h_now_ms();
	first = share_b(port, t0, 0, 600);
	mid = share_b(port, t0, 1300, 1700);
	last = share_b(port, t0, 3200, 3700);
	fprintf(stderr, "slow start after ready: b's share %.2f, %.2f, %.2f\n",
		first, mid, last);
	ck_assert_msg(first < 0.30, "first 0.6 s: %.2f", first);
	ck_assert_msg(mid > first && mid < last, "1.3-1.7 s: %.2f", mid);
	ck_assert_msg(last > 0.44, "after the ramp: %.2f", last);

	/* Up after down ramps the same way. */
	h_backend_kill(&b);
	ck_assert(h_lb_log_wait(&lb, 1, 3000, "backend=b ", "state=down"));
	ck_assert_int_eq(h_backend_restart(&b), 0);
	ck_assert(h_lb_log_wait(&lb, 1, 3000, "backend=b ", "state=up"));
	first = share_b(port, h_now_ms(), 0, 500);
	ck_assert_msg(first < 0.30, "after up: %.2f", first);
	json_decref(cfg);
}
END_TEST

/* A backend's ejection state: "fail_mark_ms" and "ejections.KEY". */
static long long
bstat(struct h_lb *lb, const char *b, const char *key)
{
	char path[128];
	json_t *j;
	long long v;

	snprintf(path, sizeof(path), "/pools/web/backends/%s", b);
	j = h_api(lb, "GET", path, NULL, 200);
	v = h_jint(j, key);
	json_decref(j);
	return v;
}

/* New clients until backend b's ejections.connect reaches n. */
static void
fail_until(struct h_lb *lb, int port, const char *b, long long n)
{
	char name[64];

	for (int i = 0; i < 30 && bstat(lb, b, "ejections.connect") < n; i++)
		pick("127.0.0.1", port, name, sizeof(name));
	ck_assert_int_eq(bstat(lb, b, "ejections.connect"), n);
}

/*
 * Ejection: base_ms x the ejections in a row, capped at max_ms; at most
 * max_percent of the pool out at once; early_close counts a backend that
 * closes before its first byte.
 */
START_TEST(test_ejection)
{
	struct h_backend d1, d2, d3, a;
	struct h_backend *bs[] = { &d1, &d2, &d3, &a };
	json_t *cfg = hc_new(), *p, *l;
	struct h_lb lb;
	long long m;
	int port, ejected = 0;

	h_backend_dead(&d1, H_NAME, "d1");
	h_backend_dead(&d2, H_NAME, "d2");
	h_backend_dead(&d3, H_NAME, "d3");
	h_backend_up(&a, H_NAME, "a");
	p = pool(cfg, "web", bs, 4);
	hc_set(p, "health_check", hc_json("{ \"enabled\": false }"));
	hc_set(p, "connect_attempts", json_integer(4));
	hc_set(p, "ejection", hc_json("{ \"base_ms\": 600, \"max_ms\": 1500, "
				      "\"max_percent\": 50 }"));
	l = feed(cfg, "l", "127.0.0.1", 0, "web");
	port = hc_port(l);
	ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, port, NULL), 0);

	/* Of three dead backends of four, two are out at a time. */
	fail_until(&lb, port, "d1", 1);
	for (int i = 0; i < 12; i++) {
		char name[64];

		pick("127.0.0.1", port, name, sizeof(name));
		ck_assert_str_eq(name, "a");
	}
	ejected = (bstat(&lb, "d1", "fail_mark_ms") > 0) +
		  (bstat(&lb, "d2", "fail_mark_ms") > 0) +
		  (bstat(&lb, "d3", "fail_mark_ms") > 0);
	ck_assert_int_eq(ejected, 2);

	/* d1 again and again: 600 ms, then 1200, then the 1500 cap. */
	h_sleep_ms(1600);
	fail_until(&lb, port, "d1", 2);
	m = bstat(&lb, "d1", "fail_mark_ms");
	ck_assert_msg(m > 600 && m <= 1200, "second ejection: %lld ms", m);
	ck_assert_int_eq(bstat(&lb, "d1", "ejections.in_a_row"), 2);
	h_sleep_ms(1300);
	fail_until(&lb, port, "d1", 3);
	m = bstat(&lb, "d1", "fail_mark_ms");
	ck_assert_msg(m > 1200 && m <= 1500, "third ejection: %lld ms", m);
	ck_assert_int_eq(bstat(&lb, "d1", "ejections.in_a_row"), 3);
	/* Back, and a success: the run starts over. */
	h_sleep_ms(1600);
	ck_assert_int_eq(h_backend_restart(&d1), 0);
	for (int i = 0; i < 30 && bstat(&lb, "d1", "total") == 0; i++) {
		char name[64];

		pick("127.0.0.1", port, name, sizeof(name));
	}
	ck_assert_int_eq(bstat(&lb, "d1", "ejections.in_a_row"), 0);
	json_decref(cfg);
}
END_TEST

START_TEST(test_ejection_early_close)
{
	json_t *cfg = hc_new(), *p, *l;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	char addr[64];
	struct h_lb lb;
	int lfd, fd, cfd = -1, port;
	long data = 0;

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	ck_assert_int_ge(lfd, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(lfd, 8), 0);
	getsockname(lfd, (struct sockaddr *)&sa, &len);
	p = hc_pool(cfg, "web");
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(sa.sin_port));
	hc_set(p, "backends", json_pack("[{s:s,s:s}]", "name", "e", "address",
					addr));
	hc_set(p, "health_check", hc_json("{ \"enabled\": false }"));
	hc_set(p, "ejection", hc_json("{ \"early_close\": true }"));
	l = feed(cfg, "l", "127.0.0.1", 0, "web");
	port = hc_port(l);
	ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, port, NULL), 0);
	fd = h_connect("127.0.0.1", port, 3000);
	ck_assert_int_ge(fd, 0);
	for (int i = 0; i < 300 && cfd < 0; i++) {
		cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (cfd < 0)
			h_sleep_ms(10);
	}
	ck_assert_int_ge(cfd, 0);
	close(cfd);	/* no byte, at once */
	h_wait_close(fd, 3000, &data);
	close(fd);
	for (int i = 0; i < 100 && bstat(&lb, "e", "ejections.early_close") == 0;
	     i++)
		h_sleep_ms(10);
	ck_assert_int_eq(bstat(&lb, "e", "ejections.early_close"), 1);
	ck_assert_int_gt(bstat(&lb, "e", "fail_mark_ms"), 0);
	close(lfd);
	json_decref(cfg);
}
END_TEST

/*
 * A pool of 10,000 backends (the most a pool may have): start, the API,
 * a reload that carries them all, clients served.
 */
START_TEST(test_10k_backends)
{
	struct h_backend a;
	json_t *cfg = hc_new(), *p, *bs, *l, *j;
	char addr[64], name[64];
	struct h_lb lb;
	int port;

	h_backend_up(&a, H_NAME, "a");
	p = hc_pool(cfg, "big");
	hc_set(p, "health_check", hc_json("{ \"interval_ms\": 60000 }"));
	bs = json_array();
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", a.port);
	for (int i = 0; i < 10000; i++) {
		char n[16];

		snprintf(n, sizeof(n), "b%d", i);
		json_array_append_new(bs, json_pack("{s:s,s:s}", "name", n,
						    "address", addr));
	}
	hc_set(p, "backends", bs);
	l = feed(cfg, "l", "127.0.0.1", 0, "big");
	port = hc_port(l);
	ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, port, NULL), 0);
	ck_assert_int_eq(h_lb_log_count(&lb, "health: checking 10000 backends"),
			 1);
	for (int i = 0; i < 20; i++) {
		pick("127.0.0.1", port, name, sizeof(name));
		ck_assert_str_eq(name, "a");
	}
	j = h_api(&lb, "POST", "/pools/big/backends/b9999/drain", NULL, 200);
	json_decref(j);
	j = h_api(&lb, "POST", "/reload", NULL, 200);
	json_decref(j);
	j = h_api(&lb, "GET", "/pools/big", NULL, 200);
	ck_assert_int_eq(json_array_size(json_object_get(j, "backends")), 10000);
	ck_assert_str_eq(h_jstr(j, "backends.9999.state"), "draining");
	ck_assert_int_eq(h_jint(j, "backends.0.total") +
				 h_jint(j, "backends.1.total") +
				 h_jint(j, "backends.2.total"),
			 3);
	json_decref(j);
	json_decref(cfg);
}
END_TEST

/* Every shipped config, the README's examples among them, is valid. */
START_TEST(test_shipped_configs)
{
	static const char *const files[] = {
		"config/ringlb.json",
		"config/examples/postgres-dual-stack.json",
		"config/examples/tls-sni.json",
		"config/examples/redis-maglev.json",
		"config/examples/canary-split.json",
	};

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		const char *argv[] = { h_lb_bin(), "-t", "-c", files[i], NULL };
		struct h_run *r = calloc(1, sizeof(*r));

		ck_assert_ptr_nonnull(r);
		ck_assert_int_eq(h_run(argv, 10000, r), 0);
		ck_assert_msg(WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0 &&
				      strstr(r->out, "configuration is valid"),
			      "%s: %s%s", files[i], r->out, r->err);
		free(r);
	}
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("pools");
	TCase *tc = h_tcase(s, "pools", 60, h_teardown);

	tcase_add_test(tc, test_shared_pool);
	tcase_add_test(tc, test_pool_reload);
	tcase_add_test(tc, test_pool_errors_at_start);
	tcase_add_test(tc, test_shipped_configs);
	tcase_add_test(tc, test_backups);
	tcase_add_test(tc, test_slow_start);
	tcase_add_test(tc, test_ejection);
	tcase_add_test(tc, test_ejection_early_close);
	tcase_add_test(tc, test_10k_backends);
	return h_run_suite("check_pools", s);
}

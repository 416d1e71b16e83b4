/*
 * check_access.c: who may connect.  Unit tests of the allow/deny matching
 * (access.c) and the per-source table (srctab.c), then black-box tests of
 * the real binary: allow/deny, the listener's and backends'
 * max_connections, per-source connection and rate limits across workers,
 * the refusal counters in /status and /metrics (checked against the exact
 * number of clients refused), the rate-limited refusal log, and the
 * privilege drop to user nobody (run as root; skipped otherwise).
 *
 * Clients pick their source address in 127.0.0.0/8 with h_connect_from();
 * IPv6 uses ::1 only.  A refused client sees a reset, an admitted one the
 * backend's name line.  Bounds are loose where time is involved: the
 * machine is a loaded 2-core one.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access.h"
#include "config.h"
#include "harness.h"
#include "srctab.h"

#define NCONN_MAX	32

/* ---- unit: allow / deny ---- */

static struct sockaddr_storage
sa_of(const char *ip)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr) ==
	    1) {
		ss.ss_family = AF_INET;
	} else {
		ck_assert_int_eq(inet_pton(AF_INET6, ip,
					   &((struct sockaddr_in6 *)&ss)
						    ->sin6_addr),
				 1);
		ss.ss_family = AF_INET6;
	}
	return ss;
}

static bool
acl(const struct cfg_listener *l, const char *ip)
{
	struct sockaddr_storage ss = sa_of(ip);

	return access_acl_ok(l, (const struct sockaddr *)&ss);
}

static void
cidrs(struct cfg_cidr *out, const char *const *list, size_t n)
{
	char err[256];

	for (size_t i = 0; i < n; i++)
		ck_assert_msg(access_parse_cidr(list[i], &out[i], err,
						sizeof(err)) == 0,
			      "%s: %s", list[i], err);
}

START_TEST(test_acl_match)
{
	static const char *const allow[] = { "10.0.0.0/8", "2001:db8::/32",
					     "192.0.2.7" };
	static const char *const deny[] = { "10.9.0.0/16", "::/0",
					    "2001:db8:0:1::/64" };
	struct cfg_cidr a[3], d[3];
	struct cfg_listener l;

	memset(&l, 0, sizeof(l));
	/* No lists: everyone. */
	ck_assert(acl(&l, "203.0.113.1"));
	ck_assert(acl(&l, "2001:db8::1"));

	cidrs(d, deny, 3);
	l.deny = d;
	l.ndeny = 1;
	/* Deny only: everyone but the denied. */
	ck_assert(!acl(&l, "10.9.200.1"));
	ck_assert(acl(&l, "10.8.255.255"));
	ck_assert(acl(&l, "10.10.0.0"));

	cidrs(a, allow, 3);
	l.allow = a;
	l.nallow = 3;
	/* Allow non-empty: only the allowed, and deny wins over allow. */
	ck_assert(acl(&l, "10.1.2.3"));
	ck_assert(acl(&l, "192.0.2.7"));
	ck_assert(!acl(&l, "192.0.2.8"));
	ck_assert(!acl(&l, "11.0.0.1"));
	ck_assert(!acl(&l, "10.9.0.1"));
	ck_assert(acl(&l, "2001:db8:ffff::1"));
	ck_assert(!acl(&l, "2001:db9::1"));
	/* IPv4-mapped IPv6 sources are IPv4: allowed by 10/8, denied by
	 * 10.9/16, never matched by an IPv6 range such as ::/0. */
	l.ndeny = 2;
	ck_assert(acl(&l, "::ffff:10.1.2.3"));
	ck_assert(!acl(&l, "::ffff:10.9.2.3"));
	ck_assert(!acl(&l, "::ffff:11.1.2.3"));
	ck_assert(acl(&l, "10.1.2.3"));
	ck_assert(!acl(&l, "2001:db8::1"));	/* ::/0 denies all IPv6 */
	l.ndeny = 3;
	l.deny = d + 2;
	l.ndeny = 1;
	ck_assert(!acl(&l, "2001:db8:0:1::5"));
	ck_assert(acl(&l, "2001:db8:0:2::5"));
	/* A mapped range in the config is the IPv4 range. */
	{
		static const char *const m[] = { "::ffff:192.0.2.0/120" };
		struct cfg_cidr mc;

		cidrs(&mc, m, 1);
		l.allow = &mc;
		l.nallow = 1;
		l.ndeny = 0;
		ck_assert(acl(&l, "192.0.2.200"));
		ck_assert(acl(&l, "::ffff:192.0.2.1"));
		ck_assert(!acl(&l, "192.0.3.1"));
	}
}
END_TEST

/* ---- unit: the per-source table ---- */

static struct cfg_per_source
ps_make(unsigned max, unsigned rate, unsigned burst, unsigned size)
{
	struct cfg_per_source ps = {
		.enabled = true, .max_connections = max, .rate = rate,
		.burst = burst ? burst : rate ? rate : 1, .ipv6_prefix = 64,
		.table_size = size,
	};
	return ps;
}

static enum src_verdict
admit(struct srctab *t, const char *ip, const struct cfg_per_source *ps,
      uint64_t now, uint32_t *slot)
{
	struct sockaddr_storage ss = sa_of(ip);
	uint8_t addr[16];
	int fam = access_source((const struct sockaddr *)&ss, addr);

	return srctab_admit(t, fam, addr, ps, now, slot);
}

static unsigned
conns_of(struct srctab *t, const char *ip)
{
	struct sockaddr_storage ss = sa_of(ip);
	uint8_t addr[16];
	int fam = access_source((const struct sockaddr *)&ss, addr);

	return srctab_conns(t, fam, addr);
}

START_TEST(test_srctab_limit)
{
	struct cfg_per_source ps = ps_make(2, 0, 0, 1024);
	uint32_t s1, s2, s3, s4;
	bool oom;
	struct srctab *t = srctab_carry(NULL, &ps, &oom);

	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(admit(t, "10.0.0.1", &ps, 1, &s1), SRC_OK);
	ck_assert_int_eq(admit(t, "10.0.0.1", &ps, 1, &s2), SRC_OK);
	ck_assert_int_eq(admit(t, "10.0.0.1", &ps, 1, &s3), SRC_LIMIT);
	ck_assert_uint_eq(s3, 0);
	/* Mapped IPv6 is the same source. */
	ck_assert_int_eq(admit(t, "::ffff:10.0.0.1", &ps, 1, &s3), SRC_LIMIT);
	ck_assert_int_eq(admit(t, "10.0.0.2", &ps, 1, &s3), SRC_OK);
	ck_assert_uint_eq(conns_of(t, "10.0.0.1"), 2);
	srctab_release(t, s1);
	ck_assert_uint_eq(conns_of(t, "10.0.0.1"), 1);
	ck_assert_int_eq(admit(t, "10.0.0.1", &ps, 2, &s1), SRC_OK);
	/* IPv6 grouped by /64. */
	ck_assert_int_eq(admit(t, "2001:db8::1", &ps, 3, &s4), SRC_OK);
	ck_assert_int_eq(admit(t, "2001:db8::ffff:2", &ps, 3, &s4), SRC_OK);
	ck_assert_int_eq(admit(t, "2001:db8::3", &ps, 3, &s4), SRC_LIMIT);
	ck_assert_int_eq(admit(t, "2001:db8:0:1::1", &ps, 3, &s4), SRC_OK);
	ck_assert_uint_eq(conns_of(t, "2001:db8::77"), 2);
	/* A reload with the same size and prefix keeps the counts. */
	{
		struct cfg_per_source ps2 = ps_make(5, 0, 0, 1024);
		struct srctab *t2 = srctab_carry(t, &ps2, &oom);

		ck_assert_ptr_eq(t2, t);
		srctab_put(t2);
		ps2.table_size = 2048;
		t2 = srctab_carry(t, &ps2, &oom);
		ck_assert_ptr_ne(t2, t);
		ck_assert_uint_eq(conns_of(t2, "10.0.0.1"), 0);
		srctab_put(t2);
	}
	srctab_put(t);
}
END_TEST

START_TEST(test_srctab_rate)
{
	/* 2 per second, bucket of 3. */
	struct cfg_per_source ps = ps_make(0, 2, 3, 64);
	uint32_t s;
	bool oom;
	struct srctab *t = srctab_carry(NULL, &ps, &oom);

	ck_assert_ptr_nonnull(t);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(admit(t, "10.0.0.1", &ps, 1000, &s), SRC_OK);
		srctab_release(t, s);
	}
	ck_assert_int_eq(admit(t, "10.0.0.1", &ps, 1000, &s), SRC_RATE);
	ck_assert_int_eq(admit(t, "10.0.0.2", &ps, 1000, &s), SRC_OK);
	/* 499 ms refill 0.998 tokens: not yet; 500 ms: one. */
	ck_assert_int_eq(admit(t, "10.0.0.1", &ps, 1499, &s), SRC_RATE);
	ck_assert_int_eq(admit(t, "10.0.0.1", &ps, 1500, &s), SRC_OK);
	ck_assert_int_eq(admit(t, "10.0.0.1", &ps, 1500, &s), SRC_RATE);
	/* A long pause refills to the bucket size, no more. */
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(admit(t, "10.0.0.1", &ps, 60000, &s), SRC_OK);
	ck_assert_int_eq(admit(t, "10.0.0.1", &ps, 60000, &s), SRC_RATE);
	srctab_put(t);
}
END_TEST

/* Bounded: when groups fill with open sources, new ones go untracked. */
START_TEST(test_srctab_full)
{
	struct cfg_per_source ps = ps_make(1, 0, 0, 64);
	unsigned ok = 0, untracked = 0;
	char ip[32];
	uint32_t s;
	bool oom;
	struct srctab *t = srctab_carry(NULL, &ps, &oom);

	ck_assert_ptr_nonnull(t);
	for (int i = 0; i < 300; i++) {
		snprintf(ip, sizeof(ip), "10.1.%d.%d", i / 200, i % 200);
		switch (admit(t, ip, &ps, 5, &s)) {
		case SRC_OK:
			ok++;
			break;
		case SRC_UNTRACKED:
			untracked++;
			ck_assert_uint_eq(s, 0);
			break;
		default:
			ck_abort_msg("new source %s refused", ip);
		}
	}
	ck_assert_uint_eq(ok, 64);
	ck_assert_uint_eq(untracked, 300 - 64);
	ck_assert_uint_eq(srctab_untracked(t), 300 - 64);
	/* Tracked sources keep their count however many come by. */
	ck_assert_int_eq(admit(t, "10.1.0.0", &ps, 6, &s), SRC_LIMIT);
	srctab_put(t);

	/* Sources with no open connection are evicted, oldest first. */
	t = srctab_carry(NULL, &ps, &oom);
	for (int i = 0; i < 300; i++) {
		snprintf(ip, sizeof(ip), "10.2.%d.%d", i / 200, i % 200);
		ck_assert_int_eq(admit(t, ip, &ps, (uint64_t)i + 1, &s),
				 SRC_OK);
		srctab_release(t, s);
	}
	ck_assert_uint_eq(srctab_untracked(t), 0);
	srctab_put(t);
}
END_TEST

/* Concurrent admissions of one source from many threads stay exact. */
struct race {
	struct srctab *t;
	struct cfg_per_source *ps;
	const char *ip;
	pthread_barrier_t *bar;
	atomic_uint *ok;
};

static void *
race_main(void *arg)
{
	struct race *r = arg;
	uint32_t s;

	pthread_barrier_wait(r->bar);
	for (int i = 0; i < 8; i++)
		if (admit(r->t, r->ip, r->ps, 1, &s) == SRC_OK)
			atomic_fetch_add(r->ok, 1);
	return NULL;
}

START_TEST(test_srctab_threads)
{
	struct cfg_per_source ps = ps_make(5, 0, 0, 4096);
	pthread_t th[4];
	pthread_barrier_t bar;
	bool oom;
	struct srctab *t = srctab_carry(NULL, &ps, &oom);

	ck_assert_ptr_nonnull(t);
	for (int round = 0; round < 100; round++) {
		char ip[32];
		atomic_uint ok = 0;
		struct race r = { t, &ps, ip, &bar, &ok };

		snprintf(ip, sizeof(ip), "10.3.%d.1", round);
		pthread_barrier_init(&bar, NULL, 4);
		for (int i = 0; i < 4; i++)
			pthread_create(&th[i], NULL, race_main, &r);
		for (int i = 0; i < 4; i++)
			pthread_join(th[i], NULL);
		pthread_barrier_destroy(&bar);
		ck_assert_uint_eq(atomic_load(&ok), 5);
		ck_assert_uint_eq(conns_of(t, ip), 5);
	}
	srctab_put(t);
}
END_TEST

/* ---- integration helpers ---- */

static char sock[160];
static struct h_lb lb;

/* Start ringlb on cfg and wait for port; json_decref() cfg. */
static void
lb_up(json_t *cfg, int port)
{
	uint64_t deadline;
	struct h_http r;
	int rc;

	h_label(tcase_name());
	rc = h_lb_start_cfg(&lb, cfg, port, NULL);
	json_decref(cfg);
	ck_assert_msg(rc == 0, "ringlb did not start on port %d: %s", port,
		      rc == -ECHILD ? "it exited" : strerror(-rc));
	snprintf(sock, sizeof(sock), "%s/admin.sock", lb.dir);
	deadline = h_now_ms() + 5000;
	for (;;) {
		rc = h_http(sock, NULL, 0, "GET", "/status", NULL, 2000, &r);
		if (rc == 0 && r.status == 200) {
			h_http_free(&r);
			return;
		}
		if (rc == 0)
			h_http_free(&r);
		ck_assert_msg(h_now_ms() < deadline,
			      "admin socket does not answer");
		h_sleep_ms(20);
	}
}

/* The base config of these tests: hc_new() with a 1 s grace. */
static json_t *
access_cfg(void)
{
	json_t *cfg = hc_new();

	hc_set(cfg, "shutdown_grace_ms", json_integer(1000));
	return cfg;
}

/*
 * Listener name on host:port (host "127.0.0.1", "[::1]"), health checks
 * off, with backend b unless b is NULL.
 */
static json_t *
listener(json_t *cfg, const char *name, const char *host, int port,
	 const struct h_backend *b)
{
	json_t *l = hc_listener(cfg, name, port);

	hc_listen(l, host, port);
	hc_set(l, "health_check", hc_json("{ \"enabled\": false }"));
	if (b != NULL)
		hc_backend(l, b, 0);
	return l;
}

static json_t *
api_json(const char *method, const char *path, int want)
{
	struct h_http r;
	json_error_t e;
	json_t *j;
	int rc;

	rc = h_http(sock, NULL, 0, method, path, NULL, 5000, &r);
	ck_assert_msg(rc == 0, "%s %s: no reply: %s", method, path,
		      strerror(-rc));
	ck_assert_msg(r.status == want, "%s %s: want %d, got %d: %s", method,
		      path, want, r.status, r.body);
	j = json_loadb(r.body, r.body_len, 0, &e);
	ck_assert_msg(j != NULL, "%s %s: not JSON: %s", method, path, r.body);
	h_http_free(&r);
	return j;
}

static long long
listener_int(const char *l, const char *key)
{
	char path[128];
	json_t *j, *v;
	long long n;

	snprintf(path, sizeof(path), "/listeners/%s", l);
	j = api_json("GET", path, 200);
	v = json_object_get(j, key);
	ck_assert_msg(json_is_integer(v), "%s has no integer %s", l, key);
	n = json_integer_value(v);
	json_decref(j);
	return n;
}

/* Wait until listener l's `key` is want; fail after timeout_ms. */
static void
lwait(const char *l, const char *key, long long want, int timeout_ms)
{
	uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;
	long long n;

	while ((n = listener_int(l, key)) != want) {
		ck_assert_msg(h_now_ms() < deadline,
			      "listener %s: %s is %lld, want %lld", l, key, n,
			      want);
		h_sleep_ms(20);
	}
}

/* The refusal counter for reason in /status, /listeners/L and /metrics. */
static void
assert_refused(const char *l, const char *reason, long long want)
{
	char path[128], line[256];
	json_t *j, *ls, *v;
	struct h_http r;
	size_t i;
	int rc;

	snprintf(path, sizeof(path), "/listeners/%s", l);
	j = api_json("GET", path, 200);
	v = json_object_get(json_object_get(j, "refused"), reason);
	ck_assert_msg(json_is_integer(v), "/listeners/%s: no refused.%s", l,
		      reason);
	ck_assert_msg(json_integer_value(v) == want,
		      "/listeners/%s: refused.%s is %lld, want %lld", l,
		      reason, (long long)json_integer_value(v), want);
	json_decref(j);

	j = api_json("GET", "/status", 200);
	ls = json_object_get(j, "listeners");
	json_array_foreach(ls, i, v) {
		if (strcmp(json_string_value(json_object_get(v, "name")), l))
			continue;
		v = json_object_get(json_object_get(v, "refused"), reason);
		ck_assert_msg(json_is_integer(v) &&
				      json_integer_value(v) == want,
			      "/status: %s refused.%s is not %lld", l, reason,
			      want);
		break;
	}
	ck_assert_msg(i < json_array_size(ls), "/status: no listener %s", l);
	json_decref(j);

	rc = h_http(sock, NULL, 0, "GET", "/metrics", NULL, 5000, &r);
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_nonnull(strstr(r.body,
				     "# TYPE ringlb_listener_refused_total "
				     "counter\n"));
	snprintf(line, sizeof(line),
		 "\nringlb_listener_refused_total{listener=\"%s\","
		 "reason=\"%s\"} %lld\n",
		 l, reason, want);
	ck_assert_msg(strstr(r.body, line) != NULL,
		      "/metrics lacks \"%s\"", line + 1);
	h_http_free(&r);
}

enum outcome {
	SERVED,		/* the backend's name line came: *fdp is open */
	RESET,		/* refused at accept */
	CLOSED,		/* closed without a byte (no/full backend) */
};

/* Connect from src (NULL: any) to host:port; what the client saw. */
static enum outcome
try_conn(const char *src, const char *host, int port, char *name,
	 size_t cap, int *fdp)
{
	char buf[64];
	int fd, rc;

	if (!name) {
		name = buf;
		cap = sizeof(buf);
	}
	fd = src ? h_connect_from(src, host, port, 3000)
		 : h_connect(host, port, 3000);
	/* The reset may beat the connect's own completion. */
	if (fd == -ECONNRESET) {
		if (fdp)
			*fdp = -1;
		return RESET;
	}
	ck_assert_msg(fd >= 0, "connect from %s to %s:%d: %s",
		      src ? src : "-", host, port, strerror(-fd));
	rc = h_read_line(fd, name, cap, 5000);
	ck_assert_msg(rc >= 0 || rc == -ECONNRESET || rc == -EPIPE,
		      "from %s: neither served nor refused: %s",
		      src ? src : "-", strerror(-rc));
	if (rc >= 0 && fdp) {
		*fdp = fd;
	} else {
		close(fd);
		if (fdp)
			*fdp = -1;
	}
	return rc >= 0 ? SERVED : rc == -ECONNRESET ? RESET : CLOSED;
}

static void
close_all(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0) {
			close(fds[i]);
			fds[i] = -1;
		}
}

/* `ringlbctl status` shows each line given among its listener totals. */
static void
assert_ctl_refused(const char *want1, const char *want2)
{
	static struct h_run r;
	const char *argv[] = { h_ctl_bin(), "-s", sock, "status", NULL };
	const char *want[] = { want1, want2 };
	int rc;

	ck_assert_msg(argv[0] != NULL, "ringlbctl: %s", strerror(errno));
	rc = h_run(argv, 10000, &r);
	ck_assert_msg(rc == 0 && !r.timed_out && WIFEXITED(r.status) &&
			      WEXITSTATUS(r.status) == 0,
		      "ringlbctl status: rc %d status 0x%x: %s", rc, r.status,
		      r.err);
	for (int i = 0; i < 2; i++) {
		char line[256];

		snprintf(line, sizeof(line), "\n%s\n", want[i]);
		ck_assert_msg(strstr(r.out, line) != NULL,
			      "ringlbctl status lacks '%s':\n%s", want[i],
			      r.out);
	}
}

/* ---- integration ---- */

/*
 * allow/deny on IPv4 and IPv6 listeners; refusals are resets, counted as
 * acl_denied exactly, logged at most about once a second.
 */
START_TEST(test_acl)
{
	struct h_backend b = { 0 };
	json_t *cfg, *l;
	int p4 = h_free_port(), p6 = h_free_port(), p6d = h_free_port();
	uint64_t t0, ms;
	int denied = 0, lines, lines0;

	h_backend_up(&b, H_NAME, "b1");
	cfg = access_cfg();
	l = listener(cfg, "v4", "127.0.0.1", p4, &b);
	hc_set(l, "allow", hc_json("[\"127.0.0.0/24\"]"));
	hc_set(l, "deny",
	       hc_json("[\"127.0.0.3\", \"127.0.0.128/25\", \"::/0\"]"));
	l = listener(cfg, "v6", "[::1]", p6, &b);
	hc_set(l, "allow", hc_json("[\"::1/128\"]"));
	hc_set(l, "deny", hc_json("[\"10.0.0.0/8\"]"));
	l = listener(cfg, "v6d", "[::1]", p6d, &b);
	hc_set(l, "deny", hc_json("[\"::/0\"]"));
	lb_up(cfg, p4);

	/* IPv4: allowed, and a v6 range (::/0) does not match it. */
	ck_assert_int_eq(try_conn("127.0.0.2", "127.0.0.1", p4, NULL, 0, NULL),
			 SERVED);
	ck_assert_int_eq(try_conn("127.0.0.127", "127.0.0.1", p4, NULL, 0,
				  NULL),
			 SERVED);
	/* Denied (deny wins over allow), and not in allow. */
	ck_assert_int_eq(try_conn("127.0.0.3", "127.0.0.1", p4, NULL, 0, NULL),
			 RESET);
	ck_assert_int_eq(try_conn("127.0.0.200", "127.0.0.1", p4, NULL, 0,
				  NULL),
			 RESET);
	ck_assert_int_eq(try_conn("127.0.1.5", "127.0.0.1", p4, NULL, 0, NULL),
			 RESET);
	/* IPv6. */
	ck_assert_int_eq(try_conn(NULL, "::1", p6, NULL, 0, NULL), SERVED);
	ck_assert_int_eq(try_conn(NULL, "::1", p6d, NULL, 0, NULL), RESET);
	assert_refused("v4", "acl_denied", 3);
	assert_refused("v6", "acl_denied", 0);
	assert_refused("v6d", "acl_denied", 1);
	ck_assert_int_eq(listener_int("v4", "accepts"), 2);
	ck_assert_int_eq(listener_int("v6d", "accepts"), 0);
	ck_assert_int_ge(h_lb_log_count(&lb, "warn refused client=127.0.0.3:",
					"listener=v4 reason=acl_denied"),
			 1);

	/* A flood of refusals is logged about once a second, not per client. */
	lines0 = h_lb_log_count(&lb, "refused client=", "listener=v4");
	ck_assert_int_ge(lines0, 1);
	t0 = h_now_ms();
	for (int i = 0; i < 40; i++)
		if (try_conn("127.0.0.9", "127.0.0.1", p4, NULL, 0, NULL) ==
		    RESET)
			denied++;
	ms = h_now_ms() - t0;
	ck_assert_int_eq(denied, 0);	/* .9 is allowed */
	for (int i = 0; i < 40; i++)
		if (try_conn("127.0.0.130", "127.0.0.1", p4, NULL, 0, NULL) ==
		    RESET)
			denied++;
	ms = h_now_ms() - t0;
	ck_assert_int_eq(denied, 40);
	assert_refused("v4", "acl_denied", 43);
	assert_ctl_refused("v4: 42 accepted, 0 active; refused: acl_denied 43",
			   "v6d: 0 accepted, 0 active; refused: acl_denied 1");
	lines = h_lb_log_count(&lb, "refused client=", "listener=v4") - lines0;
	ck_assert_msg(lines <= 1 + (int)(ms / 1000),
		      "%d refusal lines for 40 refusals in %llu ms", lines,
		      (unsigned long long)ms);
	if (geteuid() == 0)
		ck_assert_int_eq(h_lb_log_count(&lb, "warn running as root"),
				 1);
}
END_TEST

/* A full listener resets new clients at once, and takes them again. */
START_TEST(test_listener_max)
{
	struct h_backend b = { 0 };
	json_t *cfg, *l;
	int port = h_free_port(), fds[4];
	char name[64];

	h_backend_up(&b, H_NAME, "b1");
	cfg = access_cfg();
	hc_set(cfg, "admin.mode", json_string("0666"));
	l = listener(cfg, "web", "127.0.0.1", port, &b);
	hc_set(l, "max_connections", json_integer(3));
	lb_up(cfg, port);
	/* A world-writable admin socket is allowed, with a warning. */
	ck_assert_int_eq(h_lb_log_count(&lb, "warn admin.mode 0666 lets every "
					"local user write to the admin socket"),
			 1);

	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(try_conn(NULL, "127.0.0.1", port, name,
					  sizeof(name), &fds[i]),
				 SERVED);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(try_conn(NULL, "127.0.0.1", port, NULL, 0,
					  NULL),
				 RESET);
	assert_refused("web", "listener_full", 5);
	ck_assert_int_eq(listener_int("web", "max_connections"), 3);
	ck_assert_int_eq(listener_int("web", "active"), 3);
	ck_assert_int_eq(listener_int("web", "accepts"), 3);
	close(fds[0]);
	lwait("web", "active", 2, 5000);
	ck_assert_int_eq(try_conn(NULL, "127.0.0.1", port, name, sizeof(name),
				  &fds[0]),
			 SERVED);
	ck_assert_int_eq(try_conn(NULL, "127.0.0.1", port, NULL, 0, NULL),
			 RESET);
	assert_refused("web", "listener_full", 6);
	close_all(fds, 3);
	lwait("web", "active", 0, 5000);
}
END_TEST

/*
 * Per-source max_connections over 2 workers: exactly the limit per source
 * whichever worker each connection lands on, other sources unaffected,
 * counts kept across a reload.
 */
START_TEST(test_source_limit)
{
	struct h_backend b = { 0 };
	json_t *cfg, *l;
	int port = h_free_port(), a[12], c[12], served = 0, reset = 0;
	json_t *st, *ws, *w;
	size_t i;

	h_backend_up(&b, H_NAME, "b1");
	cfg = access_cfg();
	l = listener(cfg, "web", "127.0.0.1", port, &b);
	hc_set(l, "per_source.max_connections", json_integer(3));
	lb_up(cfg, port);

	for (int k = 0; k < 12; k++) {
		enum outcome o = try_conn("127.0.0.2", "127.0.0.1", port, NULL,
					  0, &a[k]);

		served += o == SERVED;
		reset += o == RESET;
	}
	ck_assert_int_eq(served, 3);
	ck_assert_int_eq(reset, 9);
	/* Another source has its own 3. */
	served = 0;
	for (int k = 0; k < 4; k++)
		served += try_conn("127.0.0.4", "127.0.0.1", port, NULL, 0,
				   &c[k]) == SERVED;
	ck_assert_int_eq(served, 3);
	assert_refused("web", "source_limit", 10);
	assert_refused("web", "listener_full", 0);
	/* The 16 connections went to both workers. */
	st = api_json("GET", "/status", 200);
	ws = json_object_get(st, "workers");
	ck_assert_int_eq(json_array_size(ws), 2);
	json_array_foreach(ws, i, w)
		ck_assert_msg(json_integer_value(json_object_get(w, "accepts")) >
				      0,
			      "worker %zu accepted nothing", i);
	json_decref(st);

	/* A reload keeps the counts: .2 still holds 3. */
	json_decref(api_json("POST", "/reload", 200));
	ck_assert_int_eq(try_conn("127.0.0.2", "127.0.0.1", port, NULL, 0,
				  NULL),
			 RESET);
	assert_refused("web", "source_limit", 11);
	/* Closing one frees a place for that source only. */
	for (int k = 0; k < 12; k++)
		if (a[k] >= 0) {
			close(a[k]);
			a[k] = -1;
			break;
		}
	lwait("web", "active", 5, 5000);
	ck_assert_int_eq(try_conn("127.0.0.2", "127.0.0.1", port, NULL, 0,
				  &a[0]),
			 SERVED);
	ck_assert_int_eq(try_conn("127.0.0.2", "127.0.0.1", port, NULL, 0,
				  NULL),
			 RESET);
	assert_refused("web", "source_limit", 12);
	close_all(a, 12);
	close_all(c, 4);
	lwait("web", "active", 0, 5000);
}
END_TEST

/* Per-source rate: a burst, then about rate per second; others unaffected. */
START_TEST(test_source_rate)
{
	struct h_backend b = { 0 };
	json_t *cfg, *l;
	int port = h_free_port(), served = 0, reset = 0;
	uint64_t t0, ms;

	h_backend_up(&b, H_NAME, "b1");
	cfg = access_cfg();
	l = listener(cfg, "web", "127.0.0.1", port, &b);
	hc_set(l, "per_source", hc_json("{ \"rate\": 1, \"burst\": 3 }"));
	l = listener(cfg, "v6", "[::1]", port, &b);
	hc_set(l, "per_source", hc_json("{ \"rate\": 1, \"burst\": 2, "
					"\"ipv6_prefix\": 128 }"));
	lb_up(cfg, port);

	t0 = h_now_ms();
	for (int k = 0; k < 10; k++) {
		enum outcome o = try_conn("127.0.0.2", "127.0.0.1", port, NULL,
					  0, NULL);

		served += o == SERVED;
		reset += o == RESET;
	}
	ms = h_now_ms() - t0;
	ck_assert_int_eq(served + reset, 10);
	ck_assert_msg(served >= 3 && served <= 3 + 1 + (int)(ms / 1000),
		      "%d of 10 served in %llu ms at 1/s with a burst of 3",
		      served, (unsigned long long)ms);
	ck_assert_int_ge(reset, 1);
	assert_refused("web", "source_rate", reset);
	/* Another source has its own bucket. */
	ck_assert_int_eq(try_conn("127.0.0.5", "127.0.0.1", port, NULL, 0,
				  NULL),
			 SERVED);
	/* IPv6 (::1). */
	served = reset = 0;
	t0 = h_now_ms();
	for (int k = 0; k < 6; k++) {
		enum outcome o = try_conn(NULL, "::1", port, NULL, 0, NULL);

		served += o == SERVED;
		reset += o == RESET;
	}
	ms = h_now_ms() - t0;
	ck_assert_msg(served >= 2 && served <= 2 + 1 + (int)(ms / 1000),
		      "::1: %d of 6 served in %llu ms", served,
		      (unsigned long long)ms);
	assert_refused("v6", "source_rate", reset);
}
END_TEST

/*
 * Backend max_connections: a full backend is skipped (round-robin and
 * least-connections); with all full the client is closed as backend_full.
 */
/* GET /listeners/L/backends/B shows its limit and how many it has. */
static void
assert_backend_max(const char *l, const char *b, long long max,
		   long long active)
{
	char path[128];
	json_t *j;

	snprintf(path, sizeof(path), "/listeners/%s/backends/%s", l, b);
	j = api_json("GET", path, 200);
	ck_assert_msg(json_integer_value(json_object_get(j, "max_connections"))
				      == max &&
			      json_integer_value(json_object_get(j, "active"))
				      == active,
		      "%s: want max_connections %lld, active %lld", path, max,
		      active);
	json_decref(j);
}

START_TEST(test_backend_max)
{
	static const char *const algs[] = { "round-robin",
					    "least-connections" };
	struct h_backend b1 = { 0 }, b2 = { 0 };
	json_t *cfg;
	int port[2] = { h_free_port(), h_free_port() };
	char name[64], lname[8];

	h_backend_up(&b1, H_NAME, "b1");
	h_backend_up(&b2, H_NAME, "b2");
	cfg = access_cfg();
	for (int l = 0; l < 2; l++) {
		json_t *lj;

		snprintf(lname, sizeof(lname), "l%d", l);
		lj = listener(cfg, lname, "127.0.0.1", port[l], NULL);
		hc_set(lj, "algorithm", json_string(algs[l]));
		hc_set(hc_backend(lj, &b1, 0), "max_connections",
		       json_integer(1));
		hc_set(hc_backend(lj, &b2, 0), "max_connections",
		       json_integer(2));
	}
	lb_up(cfg, port[0]);

	for (int l = 0; l < 2; l++) {
		int fds[3], n1 = 0, n2 = 0, b1k = -1;

		snprintf(lname, sizeof(lname), "l%d", l);
		for (int k = 0; k < 3; k++) {
			ck_assert_int_eq(try_conn(NULL, "127.0.0.1", port[l],
						  name, sizeof(name),
						  &fds[k]),
					 SERVED);
			if (strcmp(name, "b1") == 0) {
				n1++;
				b1k = k;
			} else {
				n2++;
			}
		}
		ck_assert_msg(n1 == 1 && n2 == 2, "%s: b1 %d, b2 %d", algs[l],
			      n1, n2);
		/* All full: closed at once, not queued. */
		ck_assert_int_eq(try_conn(NULL, "127.0.0.1", port[l], NULL, 0,
					  NULL),
				 CLOSED);
		ck_assert_int_eq(try_conn(NULL, "127.0.0.1", port[l], NULL, 0,
					  NULL),
				 CLOSED);
		assert_refused(lname, "backend_full", 2);
		assert_refused(lname, "no_backend", 0);
		assert_backend_max(lname, "b1", 1, 1);
		assert_backend_max(lname, "b2", 2, 2);
		ck_assert_int_ge(h_lb_log_count(&lb, "end=backend-full"), 2);
		/* b1 has room again: the next client goes there. */
		ck_assert_int_ge(b1k, 0);
		close(fds[b1k]);
		lwait(lname, "active", 2, 5000);
		ck_assert_int_eq(try_conn(NULL, "127.0.0.1", port[l], name,
					  sizeof(name), &fds[b1k]),
				 SERVED);
		ck_assert_str_eq(name, "b1");
		close_all(fds, 3);
	}
}
END_TEST

static void
proc_field(pid_t pid, const char *key, char *out, size_t cap)
{
	char path[64], line[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	out[0] = '\0';
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, strlen(key)) == 0 &&
		    line[strlen(key)] == ':') {
			char *v = line + strlen(key) + 1;

			v += strspn(v, " \t");
			v[strcspn(v, "\n")] = '\0';
			for (size_t n = strlen(v); n > 0 && v[n - 1] == ' ';)
				v[--n] = '\0';
			snprintf(out, cap, "%s", v);
			break;
		}
	fclose(f);
}

/*
 * User nobody; listener "web" on port with backends b1 (and b2 unless
 * NULL) and fast health checks; with extra_port, listener "low" on
 * 127.0.0.77:extra_port.
 */
static json_t *
priv_cfg(int port, const struct h_backend *b1, const struct h_backend *b2,
	 int extra_port)
{
	json_t *cfg = access_cfg(), *l;

	hc_set(cfg, "user", json_string("nobody"));
	l = listener(cfg, "web", "127.0.0.1", port, b1);
	hc_set(l, "health_check",
	       hc_json("{ \"interval_ms\": 100, \"timeout_ms\": 100, "
		       "\"rise\": 1, \"fall\": 1 }"));
	if (b2 != NULL)
		hc_backend(l, b2, 0);
	if (extra_port) {
		l = hc_listener(cfg, "low", extra_port);
		hc_listen(l, "127.0.0.77", extra_port);
		hc_backend(l, b1, 0);
	}
	return cfg;
}

/* Write cfg as lb's config, readable by nobody; json_decref() it. */
static void
write_cfg(json_t *cfg)
{
	ck_assert_int_eq(h_lb_write_cfg(&lb, cfg), 0);
	ck_assert_int_eq(chmod(lb.cfg_path, 0644), 0);
	json_decref(cfg);
}

/* net.ipv4.ip_unprivileged_port_start (1024 unless lowered). */
static int
unprivileged_port_start(void)
{
	FILE *f = fopen("/proc/sys/net/ipv4/ip_unprivileged_port_start", "r");
	int n = 1024;

	if (f) {
		if (fscanf(f, "%d", &n) != 1)
			n = 1024;
		fclose(f);
	}
	return n;
}

static long long
generation(void)
{
	json_t *j = api_json("GET", "/status", 200);
	long long g = json_integer_value(json_object_get(j, "generation"));

	json_decref(j);
	return g;
}

/*
 * Started as root with user nobody: every id is nobody's, no capability
 * is left, it still serves, health checks and reloads (API and SIGHUP)
 * still work, the admin socket stays root's and not world-writable, and a
 * reload that needs a privileged port fails cleanly.
 */
START_TEST(test_privdrop)
{
	struct h_backend b1 = { 0 }, b2 = { 0 };
	int port = h_free_port(), fd, rc;
	char v[128], name[64];
	struct stat sb;
	json_t *jr;
	uint64_t deadline;

	if (geteuid() != 0)
		h_skip("needs root");
	h_backend_up(&b1, H_NAME, "b1");
	h_backend_up(&b2, H_NAME, "b2");
	h_label(tcase_name());
	ck_assert_int_eq(h_lb_mkdir(&lb), 0);
	/* nobody must read the config to reload it. */
	ck_assert_int_eq(chmod(lb.dir, 0755), 0);
	write_cfg(priv_cfg(port, &b1, NULL, 0));
	rc = h_lb_launch(&lb, port, NULL);
	ck_assert_msg(rc == 0, "ringlb did not start: %s", strerror(-rc));
	snprintf(sock, sizeof(sock), "%s/admin.sock", lb.dir);

	proc_field(lb.pid, "Uid", v, sizeof(v));
	ck_assert_str_eq(v, "65534\t65534\t65534\t65534");
	proc_field(lb.pid, "Gid", v, sizeof(v));
	ck_assert_str_eq(v, "65534\t65534\t65534\t65534");
	proc_field(lb.pid, "Groups", v, sizeof(v));
	ck_assert_str_eq(v, "65534");
	proc_field(lb.pid, "CapEff", v, sizeof(v));
	ck_assert_str_eq(v, "0000000000000000");
	proc_field(lb.pid, "CapPrm", v, sizeof(v));
	ck_assert_str_eq(v, "0000000000000000");
	proc_field(lb.pid, "CapBnd", v, sizeof(v));
	ck_assert_str_eq(v, "0000000000000000");
	proc_field(lb.pid, "CapAmb", v, sizeof(v));
	ck_assert_str_eq(v, "0000000000000000");
	proc_field(lb.pid, "NoNewPrivs", v, sizeof(v));
	ck_assert_str_eq(v, "1");
	ck_assert_int_eq(h_lb_log_count(&lb, "running as user nobody"), 1);
	ck_assert_int_eq(h_lb_log_count(&lb, "running as root"), 0);

	/* The admin socket: root's, mode 0600, usable by root. */
	ck_assert_int_eq(stat(sock, &sb), 0);
	ck_assert_uint_eq(sb.st_uid, 0);
	ck_assert_uint_eq(sb.st_mode & 0777, 0600);
	ck_assert_int_eq(generation(), 1);

	/* Serves. */
	ck_assert_int_eq(try_conn(NULL, "127.0.0.1", port, name, sizeof(name),
				  &fd),
			 SERVED);
	ck_assert_str_eq(name, "b1");
	close(fd);

	/* Reload through the API adds b2. */
	write_cfg(priv_cfg(port, &b1, &b2, 0));
	json_decref(api_json("POST", "/reload", 200));
	ck_assert_int_eq(generation(), 2);
	jr = api_json("GET", "/listeners/web/backends/b2", 200);
	json_decref(jr);

	/* Health checks run unprivileged: b2 dies, is marked down, and every
	 * client then goes to b1. */
	h_backend_kill(&b2);
	deadline = h_now_ms() + 5000;
	for (;;) {
		const char *st;

		jr = api_json("GET", "/listeners/web/backends/b2", 200);
		st = json_string_value(json_object_get(jr, "state"));
		if (st && strcmp(st, "down") == 0) {
			json_decref(jr);
			break;
		}
		json_decref(jr);
		ck_assert_msg(h_now_ms() < deadline, "b2 never marked down");
		h_sleep_ms(50);
	}
	for (int k = 0; k < 4; k++) {
		ck_assert_int_eq(try_conn(NULL, "127.0.0.1", port, name,
					  sizeof(name), &fd),
				 SERVED);
		ck_assert_str_eq(name, "b1");
		close(fd);
	}

	/* SIGHUP reload. */
	write_cfg(priv_cfg(port, &b1, NULL, 0));
	h_lb_signal(&lb, SIGHUP);
	deadline = h_now_ms() + 5000;
	while (generation() != 3) {
		ck_assert_msg(h_now_ms() < deadline, "SIGHUP did not reload");
		h_sleep_ms(50);
	}

	/* A new privileged port: refused with a clear error, nothing
	 * changes, still serving. */
	if (unprivileged_port_start() > 81) {
		write_cfg(priv_cfg(port, &b1, NULL, 81));
		jr = api_json("POST", "/reload", 400);
		ck_assert_msg(strstr(json_string_value(json_object_get(jr,
								       "error")),
				     "runs as user nobody") != NULL,
			      "reload error: %s",
			      json_string_value(json_object_get(jr, "error")));
		json_decref(jr);
		ck_assert_int_eq(generation(), 3);
		ck_assert_int_eq(h_lb_log_count(&lb, "reload failed",
						"Permission denied"),
				 1);
	} else {
		h_skip_part("a reload onto a privileged port: "
			    "ip_unprivileged_port_start is %d",
			    unprivileged_port_start());
	}
	ck_assert_int_eq(try_conn(NULL, "127.0.0.1", port, name, sizeof(name),
				  &fd),
			 SERVED);
	close(fd);
	ck_assert(h_lb_running(&lb));

	h_lb_signal(&lb, SIGTERM);
	ck_assert_int_eq(h_lb_wait_exit(&lb, 10000), 0);
	ck_assert(WIFEXITED(lb.status) && WEXITSTATUS(lb.status) == 0);
}
END_TEST

static Suite *
access_suite(void)
{
	Suite *s = suite_create("access");
	TCase *tc;

	tc = h_tcase(s, "unit", 60, h_teardown);
	tcase_add_test(tc, test_acl_match);
	tcase_add_test(tc, test_srctab_limit);
	tcase_add_test(tc, test_srctab_rate);
	tcase_add_test(tc, test_srctab_full);
	tcase_add_test(tc, test_srctab_threads);

	tc = h_tcase(s, "limits", 90, h_teardown);
	tcase_add_test(tc, test_acl);
	tcase_add_test(tc, test_listener_max);
	tcase_add_test(tc, test_source_limit);
	tcase_add_test(tc, test_source_rate);
	tcase_add_test(tc, test_backend_max);

	tc = h_tcase(s, "privileges", 90, h_teardown);
	tcase_add_test(tc, test_privdrop);
	return s;
}

int
main(void)
{
	return h_run_suite("check_access", access_suite());
}

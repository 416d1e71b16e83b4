/*
 * check_maglev.c: Maglev consistent hashing.
 *
 * Unit tests on pools built by hand: slot shares follow weights; the
 * table depends on backend names, not their order; an unavailable backend
 * moves only its own keys, and they come back with it; removing one of N
 * moves at most 1/N + 2 points of keys; bounded load caps a hot key.
 * Then the real binary: two processes, backends listed in different
 * orders, agree on where 1,000 client addresses go; /pools/P shows the
 * table.
 */
#include <arpa/inet.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "balancer.h"
#include "harness.h"
#include "runtime.h"

#define MAXB 16
#define NKEYS 20000

struct mpool {
	struct cfg_pool cp;
	struct cfg_listener lsn;
	struct cfg_backend cb[MAXB];
	struct config cfg;
	struct runtime rt;
};

/* A maglev pool of backends named names[0..n), weights w (NULL: 1). */
static struct mpool *
mpool_make(const char *const *names, const unsigned *w, size_t n,
	   unsigned balance_factor)
{
	struct mpool *m = calloc(1, sizeof(*m));

	ck_assert_ptr_nonnull(m);
	ck_assert_uint_le(n, MAXB);
	for (size_t i = 0; i < n; i++) {
		snprintf(m->cb[i].name, sizeof(m->cb[i].name), "%s", names[i]);
		m->cb[i].weight = w ? w[i] : 1;
	}
	snprintf(m->cp.name, sizeof(m->cp.name), "m");
	m->cp.algorithm = ALG_MAGLEV;
	m->cp.hash.key = HASH_SOURCE_IP;
	m->cp.hash.table_size = 65537;
	m->cp.hash.balance_factor = balance_factor;
	m->cp.backends = m->cb;
	m->cp.nbackends = n;
	m->cp.connect_attempts = 3;
	m->cp.health.rise = 1;
	m->cp.health.fall = 1;
	m->cfg.pools = &m->cp;
	m->cfg.npools = 1;
	m->cfg.listeners = &m->lsn;
	m->cfg.nlisteners = 1;
	ck_assert_int_eq(runtime_init(&m->rt, &m->cfg, 1, NULL), 0);
	return m;
}

static void
mpool_drop(struct mpool *m)
{
	m->rt.cfg = NULL;
	runtime_fini(&m->rt);
	free(m);
}

/* Client address number k: 10.x.y.z. */
static void
key_addr(unsigned k, struct sockaddr_in6 *sa)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)(void *)sa;

	memset(sa, 0, sizeof(*sa));
	s4->sin_family = AF_INET;
	s4->sin_addr.s_addr = htonl(0x0a000000u + k * 2654435761u % 0xffffffu);
	s4->sin_port = htons((uint16_t)(1024 + k));
}

/* The name of the backend key k goes to (picked and released). */
static const char *
where(struct mpool *m, unsigned k)
{
	struct sockaddr_in6 sa;
	struct pick_ctx ctx = { .client = &sa };
	struct backend *b;

	key_addr(k, &sa);
	b = pool_pick(&m->rt.pools[0], &ctx);
	ck_assert_ptr_nonnull(b);
	pool_release(b);
	return b->cfg->name;
}

START_TEST(shares_follow_weights)
{
	static const char *const names[] = { "a", "b", "c", "d" };
	static const unsigned w[] = { 1, 2, 1, 4 };
	struct mpool *m = mpool_make(names, w, 4, 0);
	struct balancer_info bi = { 0 };
	const struct pool *p = &m->rt.pools[0];
	unsigned total = 0;

	p->ops->info(p, &bi);
	ck_assert_uint_eq(bi.table_size, 65537);
	for (size_t i = 0; i < 4; i++)
		total += bi.slots[i];
	ck_assert_uint_eq(total, 65537);
	/* Weight w of 8 in all: w/8 of the slots, within 1%. */
	for (size_t i = 0; i < 4; i++) {
		double share = bi.slots[i] / 65537.0, want = w[i] / 8.0;

		ck_assert_msg(share > want - 0.01 && share < want + 0.01,
			      "%s: %.4f of the slots, want %.4f", names[i],
			      share, want);
	}
	mpool_drop(m);
}
END_TEST

START_TEST(order_does_not_matter)
{
	static const char *const n1[] = { "cache-a", "cache-b", "cache-c",
					  "cache-d", "cache-e" };
	static const char *const n2[] = { "cache-d", "cache-b", "cache-e",
					  "cache-a", "cache-c" };
	struct mpool *m1 = mpool_make(n1, NULL, 5, 0);
	struct mpool *m2 = mpool_make(n2, NULL, 5, 0);
	unsigned seen[5] = { 0 };

	for (unsigned k = 0; k < NKEYS; k++) {
		const char *a = where(m1, k);

		ck_assert_str_eq(a, where(m2, k));
		seen[a[6] - 'a']++;
	}
	/* ... and the keys spread: each backend about a fifth. */
	for (int i = 0; i < 5; i++)
		ck_assert_msg(seen[i] > NKEYS / 5 * 8 / 10 &&
				      seen[i] < NKEYS / 5 * 12 / 10,
			      "backend %d got %u of %d keys", i, seen[i], NKEYS);
	mpool_drop(m1);
	mpool_drop(m2);
}
END_TEST

START_TEST(unavailable_moves_only_its_keys)
{
	static const char *const names[] = { "s0", "s1", "s2", "s3", "s4",
					     "s5", "s6", "s7", "s8", "s9" };
	static char before[NKEYS][4];
	struct mpool *m = mpool_make(names, NULL, 10, 0), *m9;
	struct backend *b3 = m->rt.pools[0].backends[3];
	unsigned moved = 0, on3 = 0;

	for (unsigned k = 0; k < NKEYS; k++)
		snprintf(before[k], sizeof(before[k]), "%s", where(m, k));
	/* Down (or draining, full, ejected): only its keys move. */
	atomic_store(&b3->up, false);
	for (unsigned k = 0; k < NKEYS; k++) {
		const char *now = where(m, k);

		if (strcmp(before[k], "s3") == 0) {
			on3++;
			ck_assert_str_ne(now, "s3");
		} else {
			ck_assert_str_eq(now, before[k]);
		}
	}
	ck_assert_uint_gt(on3, NKEYS / 20);
	/* Back: every key where it was. */
	atomic_store(&b3->up, true);
	for (unsigned k = 0; k < NKEYS; k++)
		ck_assert_str_eq(where(m, k), before[k]);
	/* Removed from the pool (a reload): at most 1/N + 2 points move. */
	{
		static const char *const nine[] = { "s0", "s1", "s2", "s4",
						    "s5", "s6", "s7", "s8",
						    "s9" };

		m9 = mpool_make(nine, NULL, 9, 0);
	}
	for (unsigned k = 0; k < NKEYS; k++)
		moved += strcmp(where(m9, k), before[k]) != 0;
	ck_assert_msg(moved <= NKEYS * 12 / 100,
		      "removing 1 of 10 moved %u of %d keys (%.1f%%)", moved,
		      NKEYS, 100.0 * moved / NKEYS);
	ck_assert_uint_ge(moved, on3);
	fprintf(stderr, "maglev: removing 1 of 10 backends moved %.2f%% of "
		"keys (its own: %.2f%%)\n", 100.0 * moved / NKEYS,
		100.0 * on3 / NKEYS);
	mpool_drop(m);
	mpool_drop(m9);
}
END_TEST

/* One hot key, 40 connections held: F=125 caps each backend at 13. */
START_TEST(bounded_load)
{
	static const char *const names[] = { "h0", "h1", "h2", "h3" };
	struct mpool *m = mpool_make(names, NULL, 4, 125), *off;
	struct backend *held[40];
	struct sockaddr_in6 sa;
	struct pick_ctx ctx = { .client = &sa };
	unsigned max = 0;

	key_addr(7, &sa);
	for (int i = 0; i < 40; i++) {
		held[i] = pool_pick(&m->rt.pools[0], &ctx);
		ck_assert_ptr_nonnull(held[i]);
	}
	for (int i = 0; i < 4; i++) {
		unsigned a = atomic_load(&m->rt.pools[0].backends[i]->active);

		if (a > max)
			max = a;
	}
	ck_assert_msg(max <= 13, "a backend holds %u of 40 (cap 13)", max);
	ck_assert_uint_ge(max, 10);
	for (int i = 0; i < 40; i++)
		pool_release(held[i]);
	/* Without the factor the key stays on its one backend. */
	off = mpool_make(names, NULL, 4, 0);
	for (int i = 0; i < 40; i++)
		held[i] = pool_pick(&off->rt.pools[0], &ctx);
	for (int i = 1; i < 40; i++)
		ck_assert_ptr_eq(held[i], held[0]);
	for (int i = 0; i < 40; i++)
		pool_release(held[i]);
	mpool_drop(m);
	mpool_drop(off);
}
END_TEST

/* source-ip-port spreads one address; sni hashes the name. */
START_TEST(hash_keys)
{
	static const char *const names[] = { "k0", "k1", "k2", "k3" };
	struct mpool *m = mpool_make(names, NULL, 4, 0);
	struct pool *p = &m->rt.pools[0];
	struct sockaddr_in6 sa;
	struct pick_ctx ctx = { .client = &sa };
	const char *first = NULL;
	bool spread = false;

	m->cp.hash.key = HASH_SOURCE_IP_PORT;
	for (unsigned port = 1000; port < 1100; port++) {
		struct backend *b;

		key_addr(1, &sa);
		((struct sockaddr_in *)(void *)&sa)->sin_port = htons((uint16_t)port);
		b = pool_pick(p, &ctx);
		pool_release(b);
		if (!first)
			first = b->cfg->name;
		spread |= strcmp(first, b->cfg->name) != 0;
	}
	ck_assert(spread);
	m->cp.hash.key = HASH_SNI;
	ctx.sni = "api.example.com";
	{
		struct backend *b1 = pool_pick(p, &ctx), *b2;

		pool_release(b1);
		key_addr(2, &sa);	/* another client, the same name */
		b2 = pool_pick(p, &ctx);
		pool_release(b2);
		ck_assert_ptr_eq(b1, b2);
	}
	mpool_drop(m);
}
END_TEST

/* ---- the real binary ---- */

static json_t *
mg_cfg(struct h_backend *const *b, const size_t *order, size_t n)
{
	json_t *cfg = hc_new(), *p = hc_pool(cfg, "c"), *l;

	hc_set(p, "algorithm", json_string("maglev"));
	hc_set(p, "hash", hc_json("{ \"key\": \"source-ip\", "
				  "\"table_size\": 4093 }"));
	hc_set(p, "health_check", hc_json("{ \"enabled\": false }"));
	for (size_t i = 0; i < n; i++)
		hc_backend(p, b[order[i]], 1);
	l = hc_listener(cfg, "l", 0);
	hc_set(l, "pool", json_string("c"));
	/* At warn, nothing else reads the client's address: maglev must. */
	hc_set(cfg, "log_level", json_string("warn"));
	return cfg;
}

/* Start at log_level warn (no "started" line to wait for): the port. */
static void
start_warn(struct h_lb *lb, const json_t *cfg, int port)
{
	ck_assert_int_eq(h_lb_start_cfg(lb, cfg, 0, NULL), 0);
	for (int i = 0; i < 250 && !h_port_listening(port); i++)
		h_sleep_ms(20);
	ck_assert_msg(h_port_listening(port), "ringlb not listening on %d",
		      port);
}

/* Where client 127.x.y.z (key k) lands through port. */
static void
land(int port, unsigned k, char *name, size_t cap)
{
	char src[32];
	int fd, rc;

	snprintf(src, sizeof(src), "127.%u.%u.%u", 1 + k / 62500 % 200,
		 k / 250 % 250, 1 + k % 250);
	fd = h_connect_from(src, "127.0.0.1", port, 3000);
	ck_assert_msg(fd >= 0, "connect from %s: %d", src, fd);
	rc = h_read_line(fd, name, cap, 3000);
	ck_assert_msg(rc >= 0, "reply to %s: %d", src, rc);
	close(fd);
}

START_TEST(two_processes_agree)
{
	struct h_backend b[4];
	struct h_backend *bp[] = { &b[0], &b[1], &b[2], &b[3] };
	static const size_t o1[] = { 0, 1, 2, 3 }, o2[] = { 3, 1, 0, 2 };
	static char first[1000][8];
	json_t *c1, *c2, *j;
	struct h_lb lb1, lb2;
	int p1, p2, agree = 0, seen[4] = { 0 };
	char name[16];

	for (int i = 0; i < 4; i++) {
		char n[8];

		snprintf(n, sizeof(n), "m%d", i);
		h_backend_up(&b[i], H_NAME, n);
	}
	c1 = mg_cfg(bp, o1, 4);
	c2 = mg_cfg(bp, o2, 4);
	p1 = hc_port(json_array_get(json_object_get(c1, "listeners"), 0));
	p2 = hc_port(json_array_get(json_object_get(c2, "listeners"), 0));
	start_warn(&lb1, c1, p1);
	start_warn(&lb2, c2, p2);
	for (unsigned k = 0; k < 1000; k++) {
		land(p1, k, first[k], sizeof(first[k]));
		seen[first[k][1] - '0']++;
	}
	for (unsigned k = 0; k < 1000; k++) {
		land(p2, k, name, sizeof(name));
		agree += strcmp(name, first[k]) == 0;
	}
	ck_assert_msg(agree >= 990, "the two processes agree on %d of 1000",
		      agree);
	for (int i = 0; i < 4; i++)
		ck_assert_msg(seen[i] > 150, "m%d got %d of 1000 keys", i,
			      seen[i]);
	/* A restart maps them the same way. */
	h_lb_signal(&lb2, SIGTERM);
	ck_assert_int_eq(h_lb_wait_exit(&lb2, 5000), 0);
	for (int i = 0; i < 250 && h_port_listening(p2); i++)
		h_sleep_ms(20);
	start_warn(&lb2, c2, p2);
	for (unsigned k = 0; k < 200; k++) {
		land(p2, k, name, sizeof(name));
		ck_assert_str_eq(name, first[k]);
	}
	/* A drained backend: only its keys move; ready: they come back. */
	j = h_api(&lb1, "POST", "/pools/c/backends/m1/drain", NULL, 200);
	json_decref(j);
	for (unsigned k = 0; k < 300; k++) {
		land(p1, k, name, sizeof(name));
		if (strcmp(first[k], "m1") == 0)
			ck_assert_str_ne(name, "m1");
		else
			ck_assert_str_eq(name, first[k]);
	}
	j = h_api(&lb1, "POST", "/pools/c/backends/m1/ready", NULL, 200);
	json_decref(j);
	for (unsigned k = 0; k < 300; k++) {
		land(p1, k, name, sizeof(name));
		ck_assert_str_eq(name, first[k]);
	}
	/* The table, in the admin API. */
	j = h_api(&lb1, "GET", "/pools/c", NULL, 200);
	ck_assert_int_eq(h_jint(j, "table.size"), 4093);
	ck_assert_int_ge(h_jint(j, "table.build_us"), 0);
	{
		long long total = 0;

		for (int i = 0; i < 4; i++) {
			char path[32];

			snprintf(path, sizeof(path), "backends.%d.slots", i);
			total += h_jint(j, path);
			ck_assert_int_gt(h_jint(j, path), 4093 / 4 - 30);
		}
		ck_assert_int_eq(total, 4093);
	}
	json_decref(j);
	json_decref(c1);
	json_decref(c2);
}
END_TEST

/*
 * One client address, 40 connections held: with balance_factor 125 no
 * backend holds more than ceil(1.25 x 40 / 4) = 13 of them; without it,
 * all 40 go to the key's one backend.
 */
START_TEST(bounded_load_binary)
{
	struct h_backend b[4];
	struct h_backend *bp[] = { &b[0], &b[1], &b[2], &b[3] };
	static const size_t o[] = { 0, 1, 2, 3 };
	int fds[40], count[4] = { 0 }, port;
	json_t *cfg;
	struct h_lb lb;
	char name[16];

	for (int i = 0; i < 4; i++) {
		char n[8];

		snprintf(n, sizeof(n), "m%d", i);
		h_backend_up(&b[i], H_HOLD, n);
	}
	cfg = mg_cfg(bp, o, 4);
	hc_set(cfg, "pools.0.hash.balance_factor", json_integer(125));
	port = hc_port(json_array_get(json_object_get(cfg, "listeners"), 0));
	start_warn(&lb, cfg, port);
	for (int i = 0; i < 40; i++) {
		fds[i] = h_connect_from("127.0.0.5", "127.0.0.1", port, 3000);
		ck_assert_int_ge(fds[i], 0);
		ck_assert_int_ge(h_read_line(fds[i], name, sizeof(name), 3000),
				 0);
		count[name[1] - '0']++;
	}
	for (int i = 0; i < 4; i++)
		ck_assert_msg(count[i] <= 13, "m%d holds %d of 40 (cap 13)", i,
			      count[i]);
	for (int i = 0; i < 40; i++)
		close(fds[i]);
	json_decref(cfg);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("maglev");
	TCase *tc = tcase_create("table");
	TCase *it = h_tcase(s, "binary", 90, h_teardown);

	tcase_add_test(tc, shares_follow_weights);
	tcase_add_test(tc, order_does_not_matter);
	tcase_add_test(tc, unavailable_moves_only_its_keys);
	tcase_add_test(tc, bounded_load);
	tcase_add_test(tc, hash_keys);
	suite_add_tcase(s, tc);
	tcase_add_test(it, two_processes_agree);
	tcase_add_test(it, bounded_load_binary);
	return h_run_suite("check_maglev", s);
}

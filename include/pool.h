/*
 * pool.h: the live objects built from a config.  A pool is a listener's set
 * of backends plus its balancer.  Backend state and counters are atomics
 * shared by every worker and the health checker; no lock is taken on the
 * connection path.
 */
#ifndef RINGLB_POOL_H
#define RINGLB_POOL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "health.h"

struct balancer_ops;

struct backend {
	const struct cfg_backend *cfg;
	struct pool *pool;
	size_t index;			/* in pool->backends */
	atomic_bool up;			/* in rotation; written by health */
	atomic_uint active;		/* open connections, all workers */
	atomic_uint_fast64_t total;	/* connections established */
	atomic_uint_fast64_t connect_failures;
	atomic_uint_fast64_t bytes_in;	/* client -> backend */
	atomic_uint_fast64_t bytes_out;	/* backend -> client */

	/* Owned by the health thread. */
	struct health_sm hsm;
	enum health_result last_result;
	unsigned last_latency_ms;
};

struct pool {
	const struct cfg_listener *cfg;
	struct backend *backends;
	size_t nbackends;
	const struct balancer_ops *ops;
	void *balancer;			/* ops-private state */
};

struct runtime {
	struct config *cfg;
	struct pool *pools;		/* one per cfg->listeners[i] */
	size_t npools;
	void *health;			/* health thread state */
};

/* Build pools for every listener of cfg; backends start up. 0 or -errno. */
int runtime_init(struct runtime *rt, struct config *cfg);
void runtime_fini(struct runtime *rt);

/*
 * Choose a backend for a new connection, skipping the `ntried` backends
 * already tried for it.  Takes an active reference on success (release with
 * pool_release()); NULL when no healthy untried backend is left.
 */
struct backend *pool_pick(struct pool *p, struct backend *const *tried,
			  size_t ntried);
void pool_release(struct backend *b);

static inline bool
backend_is_up(const struct backend *b)
{
	return atomic_load_explicit(&b->up, memory_order_acquire);
}

#endif

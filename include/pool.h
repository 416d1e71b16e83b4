/*
 * pool.h: a set of backends and the algorithm that picks among them.
 *
 * A pool belongs to one runtime (generation) and may be fed by several
 * listeners.  pool_pick() is called by every worker at once and takes no
 * lock; the balancer behind it is an ops table (balancer.h).
 */
#ifndef RINGLB_POOL_H
#define RINGLB_POOL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#include <linux/time_types.h>

#include "backend.h"
#include "config.h"

struct balancer_ops;

/*
 * What is known about a connection when a backend is picked for it, so an
 * algorithm that hashes on any of it needs no new plumbing.
 */
struct pick_ctx {
	/* The client: after a PROXY header, the address it advertised. */
	const struct sockaddr_in6 *client;	/* AF_UNSPEC: not read */
	/* The address the client connected to, if known; else NULL. */
	const struct sockaddr_in6 *local;
	const char *sni;			/* NULL: none */
	/* Backends already tried for this client: never picked again. */
	struct backend *const *tried;
	size_t ntried;
	/* Passive marks are looked at as of now_ms (0: not at all). */
	uint64_t now_ms;
	/* The worker's clock, for slow start (0: no ramps). */
	uint64_t clock_ms;
	/* Set by pool_pick(): this pass takes this tier only (0: primaries). */
	unsigned tier;
};

/* What runtime_init changed in a carried backend, for runtime_abort. */
struct backend_undo {
	struct backend *b;
	struct pool *pool;
	size_t index;
	unsigned weight;
	unsigned conf_weight;
	unsigned max_conns;
	bool weight_override;
};

struct pool {
	const struct cfg_pool *cfg;
	struct backend **backends;
	size_t nbackends;
	const struct balancer_ops *ops;
	void *balancer;			/* ops-private state */
	struct __kernel_timespec connect_ts; /* cfg->connect_ms */
	struct backend_undo *undo;	/* one per backend; b NULL if new */
	unsigned max_tier;		/* 0: no backups; else the last tier */
	atomic_bool on_backups;		/* the last pick needed a backup */
};

struct backend *pool_backend(const struct pool *p, const char *name);

/*
 * Choose a backend for a new connection, never one in ctx->tried.
 * Backends passively marked at ctx->now_ms are taken only when no other is
 * left; backups only when no primary is eligible.  Takes an active reference on success (release with
 * pool_release()); NULL when no eligible untried backend is left.
 */
struct backend *pool_pick(struct pool *p, const struct pick_ctx *ctx);
void pool_release(struct backend *b);
/*
 * Backend b of p failed a client at now_ms (cause): after
 * ejection.consecutive_failures in a row it is ejected for fail_ms x its
 * ejections in a row (at most ejection.max_ms), unless max_percent of the
 * pool is ejected already (one always may be).
 */
void pool_backend_failed(struct pool *p, struct backend *b,
			 enum eject_cause cause, uint64_t now_ms);
/*
 * After pool_pick() found nothing for a new client: true if a backend was
 * up and ready but at its max_connections (backend_full, not no_backend).
 */
bool pool_full(const struct pool *p);

#endif

/*
 * pool.h: the live objects built from a config.
 *
 * A runtime is one immutable generation: the config plus a pool per
 * listener.  Reloads and weight changes build a new runtime and publish it;
 * the old one is freed once every worker has moved on and no connection
 * accepted under it is left (runtime_retire / runtime_reclaim).
 *
 * Backends and listener counters are separate objects that outlive a
 * generation: a reload that keeps a backend (same listener, name and
 * address) hands the same struct backend to the new runtime, with its health,
 * operator state and counters.  Their fields are atomics shared by every
 * worker, the health checker and the admin API; no lock is taken on the
 * connection path.
 */
#ifndef RINGLB_POOL_H
#define RINGLB_POOL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/time_types.h>

#include "access.h"
#include "config.h"
#include "health.h"

struct balancer_ops;
struct srctab;

enum backend_admin {
	ADMIN_READY,		/* health decides */
	ADMIN_DRAIN,		/* no new connections, open ones go on */
	ADMIN_MAINT,		/* no new connections; health never revives */
};

struct backend {
	const struct cfg_backend *cfg;	/* points at conf */
	struct cfg_backend conf;
	char listener[CFG_NAME_MAX];
	struct pool *pool;		/* pool of the runtime that made it */
	size_t index;
	atomic_bool up;			/* health; written by the checker */
	atomic_int admin;		/* enum backend_admin */
	atomic_uint weight;		/* effective weight */
	atomic_uint active;		/* open connections, all workers */
	atomic_uint max_conns;		/* max_connections, 0: no limit */
	atomic_uint_fast64_t total;	/* connections established */
	atomic_uint_fast64_t connect_failures;
	atomic_uint_fast64_t bytes_in;	/* client -> backend */
	atomic_uint_fast64_t bytes_out;	/* backend -> client */
	atomic_uint kill_gen;		/* bump: workers close its conns */
	atomic_uint_fast64_t since_ms;	/* last state change, monotonic */
	/*
	 * Passive mark: a connect to it failed, so it takes no new client
	 * until this time (monotonic ms) unless no other is left; 0: none.
	 * Set by workers, cleared by a good connect or health probe.
	 */
	atomic_uint_fast64_t fail_until_ms;

	/* Written by the health thread, read by the admin API. */
	struct health_sm hsm;
	atomic_int last_result;		/* enum health_result */
	atomic_uint last_latency_ms;
	atomic_bool checked;		/* at least one probe done */

	/* Control thread only. */
	bool weight_override;		/* set at runtime, not from the file */
	size_t hprobe;			/* health_reload's scratch */
	unsigned refs;			/* runtimes holding it */
};

/* Per listener name; outlives generations like backends do. */
struct lstats {
	char name[CFG_NAME_MAX];
	atomic_uint_fast64_t accepts;
	atomic_uint active;
	atomic_uint_fast64_t bytes_in;
	atomic_uint_fast64_t bytes_out;
	atomic_uint_fast64_t no_backend;	/* refused: none eligible */
	atomic_uint_fast64_t connect_failed;	/* every attempt failed */
	atomic_uint_fast64_t refused[REFUSE_MAX]; /* enum refuse_reason */
	atomic_uint_fast64_t refuse_log_ms;	/* last "refused" log line */
	atomic_uint refuse_quiet;		/* refusals not logged since */
	unsigned refs;
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
	const struct cfg_listener *cfg;
	struct backend **backends;
	size_t nbackends;
	const struct balancer_ops *ops;
	void *balancer;			/* ops-private state */
	struct lstats *stats;
	struct srctab *src;		/* per_source state; NULL: off */
	uint64_t lid;			/* same listener across reloads */
	struct __kernel_timespec connect_ts; /* cfg->connect_ms */
	int *fds;			/* per worker; -1: keep the old socket */
	struct backend_undo *undo;	/* one per backend; b NULL if new */
};

/* Connections accepted under a runtime, per worker (one writer each). */
struct wcount {
	atomic_uint n;
	char pad[60];
};

struct runtime {
	uint64_t gen;
	struct config *cfg;
	struct pool *pools;		/* one per cfg->listeners[i] */
	size_t npools;
	unsigned nworkers;
	struct wcount *conns;
	void *health;			/* health thread state */
	struct runtime *retired_next;
};

/*
 * Build a runtime for cfg with nworkers workers.  Backends and listener
 * stats are taken over from `prev` (may be NULL) where they match, else
 * made new (up, ready).  Listening sockets are not opened here.  0, and rt
 * owns cfg; or -errno, and cfg is still the caller's.
 */
int runtime_init(struct runtime *rt, struct config *cfg, unsigned nworkers,
		 const struct runtime *prev);
/* Free what runtime_init built, cfg included; drops backend references. */
void runtime_fini(struct runtime *rt);
/*
 * A runtime that will never be published: give carried backends back what
 * runtime_init changed in them (weights, pool), then runtime_fini().
 */
void runtime_abort(struct runtime *rt);

/* Live connections accepted under rt, all workers. */
unsigned runtime_conns(const struct runtime *rt);

struct pool *runtime_pool(const struct runtime *rt, const char *listener);
struct backend *pool_backend(const struct pool *p, const char *name);

/*
 * Choose a backend for a new connection, skipping the `ntried` backends
 * already tried for it.  Backends passively marked at now_ms are taken only
 * when no other is left (now_ms 0: marks are not looked at).  Takes an
 * active reference on success (release with pool_release()); NULL when no
 * eligible untried backend is left.
 */
struct backend *pool_pick(struct pool *p, struct backend *const *tried,
			  size_t ntried, uint64_t now_ms);
void pool_release(struct backend *b);
/* A connect to b failed at now_ms: mark it for its listener's fail_ms. */
void backend_mark_failed(struct backend *b, const struct cfg_listener *l,
			 uint64_t now_ms);
/* A connect or a health probe to b succeeded: lift its mark. */
static inline void
backend_mark_clear(struct backend *b)
{
	/* Read first: the common case writes nothing to a shared line. */
	if (atomic_load_explicit(&b->fail_until_ms, memory_order_relaxed))
		atomic_store_explicit(&b->fail_until_ms, 0,
				      memory_order_relaxed);
}
/*
 * After pool_pick() found nothing for a new client: true if a backend was
 * up and ready but at its max_connections (backend_full, not no_backend).
 */
bool pool_full(const struct pool *p);

static inline bool
backend_is_up(const struct backend *b)
{
	return atomic_load_explicit(&b->up, memory_order_acquire);
}

/* Below its max_connections (or has none). */
static inline bool
backend_has_room(const struct backend *b)
{
	unsigned max = atomic_load_explicit(&b->max_conns,
					    memory_order_relaxed);

	return max == 0 ||
	       atomic_load_explicit(&b->active, memory_order_relaxed) < max;
}

/* Up, the operator lets it take new connections, and it has room. */
static inline bool
backend_eligible(const struct backend *b)
{
	return backend_is_up(b) &&
	       atomic_load_explicit(&b->admin, memory_order_relaxed) ==
		       ADMIN_READY &&
	       backend_has_room(b);
}

/* Passively marked at now_ms (a recent connect to it failed)? */
static inline bool
backend_marked(const struct backend *b, uint64_t now_ms)
{
	return atomic_load_explicit(&b->fail_until_ms, memory_order_relaxed) >
	       now_ms;
}

static inline unsigned
backend_weight(const struct backend *b)
{
	return atomic_load_explicit(&b->weight, memory_order_relaxed);
}

/* "up", "down", "draining" or "maintenance". */
const char *backend_state_name(const struct backend *b);
const char *backend_admin_name(int admin);

#endif

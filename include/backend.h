/*
 * backend.h: one backend as the whole program shares it.
 *
 * A backend outlives generations: a reload that keeps it (same pool, name
 * and address) hands the same object to the new runtime, with its health,
 * operator state and counters.  Every field is written by one owner,
 * grouped below; the connection path takes no lock to read them.
 */
#ifndef RINGLB_BACKEND_H
#define RINGLB_BACKEND_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "health.h"

struct pool;

enum backend_admin {
	ADMIN_READY,		/* health decides */
	ADMIN_DRAIN,		/* no new connections, open ones go on */
	ADMIN_MAINT,		/* no new connections; health never revives */
};

struct backend {
	/* The control thread, when it builds or carries it into a runtime. */
	const struct cfg_backend *cfg;	/* points at conf */
	struct cfg_backend conf;
	char pool_name[CFG_NAME_MAX];
	struct pool *pool;		/* pool of the newest runtime */
	size_t index;			/* in pool->backends */
	bool weight_override;		/* weight set at runtime, not in the file */
	size_t hprobe;			/* health_reload's scratch */
	unsigned refs;			/* runtimes holding it */

	/* The control thread, for the operator (admin API, reloads). */
	atomic_int admin;		/* enum backend_admin */
	atomic_uint weight;		/* effective weight */
	atomic_uint max_conns;		/* max_connections, 0: no limit */
	atomic_uint kill_gen;		/* bump: workers close its conns */
	atomic_uint tier;		/* cfg tier: 0 primary, 1.. backups */
	/*
	 * Slow start: when it became eligible again (up after down, ready
	 * after drain or maint, added by a reload), control_now_ms(); 0:
	 * never since start.  Written by the health and control threads.
	 */
	atomic_uint_fast64_t ramp_from_ms;
	atomic_uint_fast64_t since_ms;	/* last state change (also health) */

	/* Workers, on the connection path. */
	atomic_uint active;		/* open connections, all workers */
	atomic_uint_fast64_t total;	/* connections established */
	atomic_uint_fast64_t connect_failures;
	atomic_uint_fast64_t bytes_in;	/* client -> backend */
	atomic_uint_fast64_t bytes_out;	/* backend -> client */
	/*
	 * Passive mark: a connect to it failed, so it takes no new client
	 * until this time (monotonic ms) unless no other is left; 0: none.
	 * Set by workers, cleared by a good connect or health probe.
	 */
	atomic_uint_fast64_t fail_until_ms;
	atomic_uint fail_run;		/* connect failures in a row */
	atomic_uint eject_run;		/* ejections in a row */
	atomic_uint_fast64_t ejections[2]; /* by enum eject_cause */

	/* The health thread; the admin API reads them. */
	atomic_bool up;
	struct health_sm hsm;
	atomic_int last_result;		/* enum health_result */
	atomic_uint last_latency_ms;
	atomic_bool checked;		/* at least one probe done */
};

/* A new backend for cb in pool p: up, ready, no counts. */
struct backend *backend_new(const struct cfg_backend *cb,
			    const struct cfg_pool *p);
/* Drop a runtime's reference; the last one frees it. */
void backend_put(struct backend *b);

/* Why a backend was ejected; indexes backend.ejections[]. */
enum eject_cause {
	EJECT_CONNECT,		/* a connect refused or timed out */
	EJECT_EARLY_CLOSE,	/* closed or reset before a byte, < 1 s */
};

/* A connect to b failed at now_ms: mark it for fail_ms (0: no marks). */
void backend_mark_failed(struct backend *b, unsigned fail_ms, uint64_t now_ms);
/* A health probe to b succeeded: lift its mark (its run stands). */
static inline void
backend_mark_clear(struct backend *b)
{
	/* Read first: the common case writes nothing to a shared line. */
	if (atomic_load_explicit(&b->fail_until_ms, memory_order_relaxed))
		atomic_store_explicit(&b->fail_until_ms, 0,
				      memory_order_relaxed);
}

/* A connect to b succeeded: lift its mark and end its runs. */
static inline void
backend_success(struct backend *b)
{
	backend_mark_clear(b);
	if (atomic_load_explicit(&b->fail_run, memory_order_relaxed))
		atomic_store_explicit(&b->fail_run, 0, memory_order_relaxed);
	if (atomic_load_explicit(&b->eject_run, memory_order_relaxed))
		atomic_store_explicit(&b->eject_run, 0, memory_order_relaxed);
}

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

/*
 * Slow start: the share of its weight b gets at now_ms, in thousandths,
 * rising linearly from 100 to 1000 over slow_ms after it became eligible
 * again.  1000 when slow_ms or now_ms is 0.
 */
static inline unsigned
backend_ramp(const struct backend *b, unsigned slow_ms, uint64_t now_ms)
{
	uint64_t from;

	if (!slow_ms || !now_ms)
		return 1000;
	from = atomic_load_explicit(&b->ramp_from_ms, memory_order_relaxed);
	if (!from || now_ms >= from + slow_ms)
		return 1000;
	if (now_ms <= from)
		return 100;
	return 100 + (unsigned)(900 * (now_ms - from) / slow_ms);
}

/* b became eligible again at now_ms: slow start begins (if configured). */
static inline void
backend_ramp_begin(struct backend *b, uint64_t now_ms)
{
	atomic_store_explicit(&b->ramp_from_ms, now_ms ? now_ms : 1,
			      memory_order_relaxed);
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

/*
 * runtime.h: one immutable generation of the live objects built from a
 * config: its pools and its listeners.
 *
 * Reloads and weight changes build a new runtime and publish it; the old
 * one is freed once every worker has moved on and no connection accepted
 * under it is left (control.c).  Backends (backend.h) and listener
 * counters (struct lstats) outlive generations and are carried over.
 */
#ifndef RINGLB_RUNTIME_H
#define RINGLB_RUNTIME_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "access.h"
#include "config.h"
#include "pool.h"
#include "split.h"

struct srctab;

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

/* Where a listener, or one of its routes, sends a client. */
struct target {
	struct pool *pool;		/* one pool; or NULL, and */
	struct split *split;		/* ... a split; neither: refused */
};

/* A listener of one generation: where its clients go, and its counters. */
struct listener {
	struct runtime *rt;		/* the generation it belongs to */
	const struct cfg_listener *cfg;
	struct target to;		/* clients no route takes */
	struct target *routes;		/* one per cfg->routes[i] */
	struct lstats *stats;
	struct srctab *src;		/* per_source state; NULL: off */
	uint64_t lid;			/* same socket across reloads */
	int *fds;			/* per worker; -1: keep the old socket */
	/*
	 * Per worker: the fd number of its socket for this listener, owned
	 * by the worker once taken (not closed through this); -1 if none.
	 * An upgrade hands dups of them on.
	 */
	int *wfd;
};

/* Connections accepted under a runtime, per worker (one writer each). */
struct wcount {
	atomic_uint n;
	char pad[60];
};

struct runtime {
	uint64_t gen;
	struct config *cfg;
	struct pool *pools;		/* one per cfg->pools[i] */
	size_t npools;
	struct listener *listeners;	/* one per cfg->listeners[i] */
	size_t nlisteners;
	struct split *splits;		/* one per cfg->splits[i] */
	size_t nsplits;
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

struct pool *runtime_pool(const struct runtime *rt, const char *name);
struct listener *runtime_listener(const struct runtime *rt, const char *name);
/* Listener l's own split (route ""), or the split of its route that has
 * server name `route`; NULL if none. */
struct split *runtime_split(const struct runtime *rt, const char *l,
			    const char *route);

#endif

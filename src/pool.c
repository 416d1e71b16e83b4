/*
 * pool.c: build runtimes (generations) from a config, carry backends and
 * listener counters over from the previous one, and pick / release backends.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <stdio.h>

#include "balancer.h"
#include "control.h"
#include "pool.h"
#include "srctab.h"

static bool
addr_same(const struct cfg_addr *a, const struct cfg_addr *b)
{
	return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

static struct backend *
backend_new(const struct cfg_backend *cb, const struct cfg_listener *l)
{
	struct backend *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->conf = *cb;
	b->cfg = &b->conf;
	memcpy(b->listener, l->name, sizeof(b->listener));
	atomic_init(&b->up, true);
	atomic_init(&b->admin, ADMIN_READY);
	atomic_init(&b->weight, cb->weight);
	atomic_init(&b->active, 0);
	atomic_init(&b->max_conns, cb->max_connections);
	atomic_init(&b->total, 0);
	atomic_init(&b->connect_failures, 0);
	atomic_init(&b->bytes_in, 0);
	atomic_init(&b->bytes_out, 0);
	atomic_init(&b->kill_gen, 0);
	atomic_init(&b->since_ms, control_now_ms());
	atomic_init(&b->last_result, HC_OK);
	atomic_init(&b->last_latency_ms, 0);
	atomic_init(&b->checked, false);
	health_sm_init(&b->hsm, l->health.rise, l->health.fall, true);
	return b;
}

/*
 * The backend of prev that cb in listener l continues, if any.  What this
 * changes in it is saved in *u first, for runtime_abort().
 */
static struct backend *
backend_carry(const struct runtime *prev, const struct cfg_listener *l,
	      const struct cfg_backend *cb, struct backend_undo *u)
{
	struct pool *p;
	struct backend *b;

	if (!prev || !(p = runtime_pool(prev, l->name)))
		return NULL;
	b = pool_backend(p, cb->name);
	if (!b || !addr_same(&b->cfg->addr, &cb->addr))
		return NULL;
	u->b = b;
	u->pool = b->pool;
	u->index = b->index;
	u->weight = atomic_load(&b->weight);
	u->conf_weight = b->conf.weight;
	u->weight_override = b->weight_override;
	u->max_conns = atomic_load(&b->max_conns);
	atomic_store(&b->max_conns, cb->max_connections);
	/* A weight set at runtime stands until the file changes it. */
	if (cb->weight != b->conf.weight || !b->weight_override) {
		atomic_store(&b->weight, cb->weight);
		b->weight_override = false;
	}
	b->conf.weight = cb->weight;
	/* A mark made under another fail_ms would run on its old length. */
	if (l->fail_ms != p->cfg->fail_ms)
		atomic_store(&b->fail_until_ms, 0);
	return b;
}

static void
backend_put(struct backend *b)
{
	if (b && --b->refs == 0)
		free(b);
}

static struct lstats *
lstats_get(const struct runtime *prev, const char *name)
{
	struct lstats *s;
	struct pool *p;

	if (prev && (p = runtime_pool(prev, name)))
		return p->stats;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	snprintf(s->name, sizeof(s->name), "%s", name);
	return s;
}

static int
pool_init(struct pool *p, const struct cfg_listener *l, unsigned nworkers,
	  const struct runtime *prev)
{
	struct pool *old = prev ? runtime_pool(prev, l->name) : NULL;
	bool oom;

	p->cfg = l;
	p->connect_ts.tv_sec = l->connect_ms / 1000;
	p->connect_ts.tv_nsec = (long long)(l->connect_ms % 1000) * 1000000;
	p->ops = balancer_find(l->algorithm);
	p->fds = malloc(nworkers * sizeof(*p->fds));
	/* First: runtime_fini() closes every fd >= 0, even after an ENOMEM. */
	for (unsigned w = 0; p->fds && w < nworkers; w++)
		p->fds[w] = -1;
	p->backends = calloc(l->nbackends, sizeof(*p->backends));
	p->undo = calloc(l->nbackends, sizeof(*p->undo));
	p->stats = lstats_get(prev, l->name);
	if (!p->fds || !p->backends || !p->undo || !p->stats)
		return -ENOMEM;
	p->stats->refs++;
	/* Same listener: per-source counts go on across the reload. */
	p->src = srctab_carry(old ? old->src : NULL, &l->per_source, &oom);
	if (oom)
		return -ENOMEM;
	/* Same name and address: the same listener, keeping its sockets. */
	if (old && addr_same(&old->cfg->addr, &l->addr))
		p->lid = old->lid;
	for (size_t j = 0; j < l->nbackends; j++) {
		struct backend *b = backend_carry(prev, l, &l->backends[j],
						  &p->undo[j]);

		if (!b)
			b = backend_new(&l->backends[j], l);
		if (!b)
			return -ENOMEM;
		b->refs++;
		b->pool = p;
		b->index = j;
		p->backends[j] = b;
		p->nbackends = j + 1;
	}
	return p->ops->init(p);
}

int
runtime_init(struct runtime *rt, struct config *cfg, unsigned nworkers,
	     const struct runtime *prev)
{
	static atomic_uint_fast64_t next_lid = 1;
	int rc;

	memset(rt, 0, sizeof(*rt));
	rt->cfg = cfg;
	rt->nworkers = nworkers;
	rt->gen = prev ? prev->gen + 1 : 1;
	rt->conns = aligned_alloc(64, nworkers * sizeof(*rt->conns));
	rt->pools = calloc(cfg->nlisteners, sizeof(*rt->pools));
	if (!rt->conns || !rt->pools) {
		free(rt->conns);
		free(rt->pools);
		rt->conns = NULL;
		rt->pools = NULL;
		return -ENOMEM;
	}
	for (unsigned w = 0; w < nworkers; w++)
		atomic_init(&rt->conns[w].n, 0);
	for (size_t i = 0; i < cfg->nlisteners; i++) {
		rt->npools = i + 1;
		rc = pool_init(&rt->pools[i], &cfg->listeners[i], nworkers,
			       prev);
		if (rc < 0) {
			rt->pools[i].ops = NULL;
			rt->cfg = NULL;	/* still the caller's */
			runtime_abort(rt);
			return rc;
		}
		if (!rt->pools[i].lid)
			rt->pools[i].lid = atomic_fetch_add(&next_lid, 1);
	}
	return 0;
}

void
runtime_fini(struct runtime *rt)
{
	for (size_t i = 0; i < rt->npools; i++) {
		struct pool *p = &rt->pools[i];

		if (p->ops && p->balancer)
			p->ops->fini(p);
		for (size_t j = 0; j < p->nbackends; j++)
			backend_put(p->backends[j]);
		if (p->stats && --p->stats->refs == 0)
			free(p->stats);
		srctab_put(p->src);
		if (p->fds)
			for (unsigned w = 0; w < rt->nworkers; w++)
				if (p->fds[w] >= 0)
					close(p->fds[w]);
		free(p->fds);
		free(p->backends);
		free(p->undo);
	}
	free(rt->pools);
	free(rt->conns);
	cfg_free(rt->cfg);
	rt->pools = NULL;
	rt->conns = NULL;
	rt->cfg = NULL;
	rt->npools = 0;
}

void
runtime_abort(struct runtime *rt)
{
	/* Backwards, so a backend listed twice ends with its first state. */
	for (size_t i = rt->npools; i-- > 0;) {
		struct pool *p = &rt->pools[i];

		for (size_t j = p->nbackends; p->undo && j-- > 0;) {
			const struct backend_undo *u = &p->undo[j];

			if (!u->b)
				continue;
			atomic_store(&u->b->weight, u->weight);
			atomic_store(&u->b->max_conns, u->max_conns);
			u->b->conf.weight = u->conf_weight;
			u->b->weight_override = u->weight_override;
			u->b->pool = u->pool;
			u->b->index = u->index;
		}
	}
	runtime_fini(rt);
}

unsigned
runtime_conns(const struct runtime *rt)
{
	unsigned n = 0;

	for (unsigned w = 0; w < rt->nworkers; w++)
		n += atomic_load_explicit(&rt->conns[w].n,
					  memory_order_acquire);
	return n;
}

struct pool *
runtime_pool(const struct runtime *rt, const char *listener)
{
	for (size_t i = 0; i < rt->npools; i++)
		if (strcmp(rt->pools[i].cfg->name, listener) == 0)
			return &rt->pools[i];
	return NULL;
}

struct backend *
pool_backend(const struct pool *p, const char *name)
{
	for (size_t i = 0; i < p->nbackends; i++)
		if (strcmp(p->backends[i]->cfg->name, name) == 0)
			return p->backends[i];
	return NULL;
}

/*
 * Take an active reference on b unless that would pass its max_connections;
 * the check and the increment are one step, so workers racing for the last
 * place cannot both get it.
 */
static bool
backend_reserve(struct backend *b)
{
	unsigned max = atomic_load_explicit(&b->max_conns,
					    memory_order_relaxed);
	unsigned n;

	if (max == 0) {
		atomic_fetch_add_explicit(&b->active, 1, memory_order_relaxed);
		return true;
	}
	n = atomic_load_explicit(&b->active, memory_order_relaxed);
	do {
		if (n >= max)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(
		&b->active, &n, n + 1, memory_order_relaxed,
		memory_order_relaxed));
	return true;
}

/* Backends that filled up between pick and reserve; then we give up. */
#define PICK_RACES 8

static struct backend *
pick_reserve(struct pool *p, struct backend *const *tried, size_t ntried,
	     uint64_t now_ms)
{
	struct backend *skip[CFG_ATTEMPTS_MAX + PICK_RACES];
	size_t nskip = ntried;

	if (ntried)
		memcpy(skip, tried, ntried * sizeof(*skip));
	for (unsigned i = 0; i <= PICK_RACES; i++) {
		struct backend *b = p->ops->pick(p, skip, nskip, now_ms);

		if (!b || backend_reserve(b))
			return b;
		if (nskip < sizeof(skip) / sizeof(skip[0]))
			skip[nskip++] = b;
	}
	return NULL;
}

struct backend *
pool_pick(struct pool *p, struct backend *const *tried, size_t ntried,
	  uint64_t now_ms)
{
	struct backend *b;

	if (ntried > CFG_ATTEMPTS_MAX)
		return NULL;
	b = pick_reserve(p, tried, ntried, now_ms);
	if (b || !now_ms)
		return b;
	/* Better a backend that failed a moment ago than none at all. */
	for (size_t i = 0; i < p->nbackends; i++) {
		struct backend *m = p->backends[i];

		if (backend_marked(m, now_ms) &&
		    balancer_eligible(m, tried, ntried, 0))
			return pick_reserve(p, tried, ntried, 0);
	}
	return NULL;
}

void
backend_mark_failed(struct backend *b, const struct cfg_listener *l,
		    uint64_t now_ms)
{
	if (l->fail_ms)
		atomic_store_explicit(&b->fail_until_ms, now_ms + l->fail_ms,
				      memory_order_relaxed);
}

bool
pool_full(const struct pool *p)
{
	for (size_t i = 0; i < p->nbackends; i++) {
		const struct backend *b = p->backends[i];

		if (backend_is_up(b) &&
		    atomic_load_explicit(&b->admin, memory_order_relaxed) ==
			    ADMIN_READY &&
		    !backend_has_room(b))
			return true;
	}
	return false;
}

void
pool_release(struct backend *b)
{
	atomic_fetch_sub_explicit(&b->active, 1, memory_order_relaxed);
}

const char *
backend_admin_name(int admin)
{
	switch (admin) {
	case ADMIN_READY:
		return "ready";
	case ADMIN_DRAIN:
		return "drain";
	case ADMIN_MAINT:
		return "maint";
	}
	return "?";
}

const char *
backend_state_name(const struct backend *b)
{
	switch (atomic_load(&b->admin)) {
	case ADMIN_DRAIN:
		return "draining";
	case ADMIN_MAINT:
		return "maintenance";
	}
	return backend_is_up(b) ? "up" : "down";
}

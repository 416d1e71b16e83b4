/*
 * runtime.c: build runtimes (generations) from a config, carrying
 * backends, listener counters and per-source state over from the previous
 * one.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "balancer.h"
#include "control.h"
#include "runtime.h"
#include "srctab.h"

/*
 * The backend of prev that cb in pool cp continues, if any: same pool
 * name, backend name and address.  What this changes in it is saved in *u
 * first, for runtime_abort().
 */
static struct backend *
backend_carry(const struct runtime *prev, const struct cfg_pool *cp,
	      const struct cfg_backend *cb, struct backend_undo *u)
{
	struct pool *p;
	struct backend *b;

	if (!prev || !(p = runtime_pool(prev, cp->name)))
		return NULL;
	b = pool_backend(p, cb->name);
	if (!b || !cfg_addr_same(&b->cfg->addr, &cb->addr))
		return NULL;
	u->b = b;
	u->pool = b->pool;
	u->index = b->index;
	u->weight = atomic_load(&b->weight);
	u->conf_weight = b->conf.weight;
	u->weight_override = b->weight_override;
	u->max_conns = atomic_load(&b->max_conns);
	atomic_store(&b->max_conns, cb->max_connections);
	atomic_store(&b->tier, cb->tier);
	b->conf.backup = cb->backup;
	b->conf.tier = cb->tier;
	/* A weight set at runtime stands until the file changes it. */
	if (cb->weight != b->conf.weight || !b->weight_override) {
		atomic_store(&b->weight, cb->weight);
		b->weight_override = false;
	}
	b->conf.weight = cb->weight;
	/* A mark made under another fail_ms would run on its old length. */
	if (cp->fail_ms != p->cfg->fail_ms)
		atomic_store(&b->fail_until_ms, 0);
	return b;
}

static int
pool_init(struct pool *p, const struct cfg_pool *cp,
	  const struct runtime *prev)
{
	p->cfg = cp;
	p->connect_ts.tv_sec = cp->connect_ms / 1000;
	p->connect_ts.tv_nsec = (long long)(cp->connect_ms % 1000) * 1000000;
	p->ops = balancer_find(cp->algorithm);
	p->backends = calloc(cp->nbackends, sizeof(*p->backends));
	p->undo = calloc(cp->nbackends, sizeof(*p->undo));
	if (!p->backends || !p->undo)
		return -ENOMEM;
	atomic_init(&p->on_backups, false);
	for (size_t j = 0; j < cp->nbackends; j++)
		if (p->max_tier < cp->backends[j].tier)
			p->max_tier = cp->backends[j].tier;
	for (size_t j = 0; j < cp->nbackends; j++) {
		struct backend *b = backend_carry(prev, cp, &cp->backends[j],
						  &p->undo[j]);

		if (!b) {
			b = backend_new(&cp->backends[j], cp);
			/* Added by a reload: slow start; at start, not. */
			if (b && prev)
				backend_ramp_begin(b, control_now_ms());
		}
		if (!b)
			return -ENOMEM;
		b->refs++;
		b->pool = p;
		b->index = j;
		p->backends[j] = b;
		p->nbackends = j + 1;
	}
	/* No backend yet (a pool DNS has not answered for): no balancer. */
	return p->nbackends ? p->ops->init(p) : 0;
}

static void
pool_fini(struct pool *p)
{
	if (p->ops && p->balancer)
		p->ops->fini(p);
	for (size_t j = 0; j < p->nbackends; j++)
		backend_put(p->backends[j]);
	free(p->backends);
	free(p->undo);
}

static struct lstats *
lstats_get(const struct runtime *prev, const char *name)
{
	struct listener *l;
	struct lstats *s;

	if (prev && (l = runtime_listener(prev, name)))
		return l->stats;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	snprintf(s->name, sizeof(s->name), "%s", name);
	return s;
}

static struct target
target_of(struct runtime *rt, size_t pool, size_t split)
{
	struct target t = { NULL, NULL };

	if (split != CFG_NO_SPLIT)
		t.split = &rt->splits[split];
	else if (pool != CFG_NO_POOL)
		t.pool = &rt->pools[pool];
	return t;
}

static int
listener_init(struct runtime *rt, struct listener *l,
	      const struct cfg_listener *cl, const struct runtime *prev)
{
	struct listener *old = prev ? runtime_listener(prev, cl->name) : NULL;
	bool oom;

	l->rt = rt;
	l->cfg = cl;
	l->to = target_of(rt, cl->pool, cl->split);
	l->routes = calloc(cl->nroutes ? cl->nroutes : 1, sizeof(*l->routes));
	if (!l->routes)
		return -ENOMEM;
	for (size_t i = 0; i < cl->nroutes; i++)
		l->routes[i] = target_of(rt, cl->routes[i].pool,
					 cl->routes[i].split);
	l->fds = malloc(rt->nworkers * sizeof(*l->fds));
	l->wfd = malloc(rt->nworkers * sizeof(*l->wfd));
	/* First: runtime_fini() closes every fd >= 0, even after an ENOMEM. */
	for (unsigned w = 0; l->fds && w < rt->nworkers; w++)
		l->fds[w] = -1;
	for (unsigned w = 0; l->wfd && w < rt->nworkers; w++)
		l->wfd[w] = -1;
	l->stats = lstats_get(prev, cl->name);
	if (!l->fds || !l->wfd || !l->stats)
		return -ENOMEM;
	l->stats->refs++;
	/* Same listener: per-source counts go on across the reload. */
	l->src = srctab_carry(old ? old->src : NULL, &cl->per_source, &oom);
	if (oom)
		return -ENOMEM;
	/* Same name and address: the same listener, keeping its sockets. */
	if (old && cfg_addr_same(&old->cfg->addr, &cl->addr)) {
		l->lid = old->lid;
		memcpy(l->wfd, old->wfd, rt->nworkers * sizeof(*l->wfd));
	}
	return 0;
}

static void
listener_fini(struct listener *l, unsigned nworkers)
{
	if (l->stats && --l->stats->refs == 0)
		free(l->stats);
	srctab_put(l->src);
	if (l->fds)
		for (unsigned w = 0; w < nworkers; w++)
			if (l->fds[w] >= 0)
				close(l->fds[w]);
	free(l->fds);
	free(l->wfd);
	free(l->routes);
}

int
runtime_init(struct runtime *rt, struct config *cfg, unsigned nworkers,
	     const struct runtime *prev)
{
	static atomic_uint_fast64_t next_lid = 1;
	int rc = -ENOMEM;

	memset(rt, 0, sizeof(*rt));
	rt->cfg = cfg;
	rt->nworkers = nworkers;
	rt->gen = prev ? prev->gen + 1 : 1;
	rt->conns = aligned_alloc(64, nworkers * sizeof(*rt->conns));
	rt->pools = calloc(cfg->npools, sizeof(*rt->pools));
	rt->listeners = calloc(cfg->nlisteners, sizeof(*rt->listeners));
	rt->splits = calloc(cfg->nsplits ? cfg->nsplits : 1,
			    sizeof(*rt->splits));
	if (!rt->conns || !rt->pools || !rt->listeners || !rt->splits)
		goto out_abort;
	for (unsigned w = 0; w < nworkers; w++)
		atomic_init(&rt->conns[w].n, 0);
	for (size_t i = 0; i < cfg->npools; i++) {
		rt->npools = i + 1;
		rc = pool_init(&rt->pools[i], &cfg->pools[i], prev);
		if (rc < 0) {
			rt->pools[i].ops = NULL;
			goto out_abort;
		}
	}
	for (size_t i = 0; i < cfg->nsplits; i++) {
		const struct cfg_split *cs = &cfg->splits[i];

		rc = split_init(&rt->splits[i], cs, cfg, rt->pools,
				prev ? runtime_split(prev,
						     cfg->listeners[cs->listener].name,
						     cs->route) :
				       NULL);
		if (rc < 0)
			goto out_abort;
		rt->nsplits = i + 1;
	}
	for (size_t i = 0; i < cfg->nlisteners; i++) {
		struct listener *l = &rt->listeners[i];

		rt->nlisteners = i + 1;
		rc = listener_init(rt, l, &cfg->listeners[i], prev);
		if (rc < 0)
			goto out_abort;
		if (!l->lid)
			l->lid = atomic_fetch_add(&next_lid, 1);
	}
	return 0;

out_abort:
	rt->cfg = NULL;	/* still the caller's */
	runtime_abort(rt);
	return rc;
}

void
runtime_fini(struct runtime *rt)
{
	for (size_t i = 0; rt->listeners && i < rt->nlisteners; i++)
		listener_fini(&rt->listeners[i], rt->nworkers);
	for (size_t i = 0; rt->splits && i < rt->nsplits; i++)
		split_fini(&rt->splits[i]);
	for (size_t i = 0; rt->pools && i < rt->npools; i++)
		pool_fini(&rt->pools[i]);
	free(rt->listeners);
	free(rt->splits);
	free(rt->pools);
	free(rt->conns);
	cfg_free(rt->cfg);
	rt->listeners = NULL;
	rt->splits = NULL;
	rt->nsplits = 0;
	rt->pools = NULL;
	rt->conns = NULL;
	rt->cfg = NULL;
	rt->nlisteners = 0;
	rt->npools = 0;
}

void
runtime_abort(struct runtime *rt)
{
	for (size_t i = rt->splits ? rt->nsplits : 0; i-- > 0;)
		split_abort(&rt->splits[i]);
	rt->nsplits = 0;	/* split_abort freed them */
	/* Backwards, so a backend listed twice ends with its first state. */
	for (size_t i = rt->pools ? rt->npools : 0; i-- > 0;) {
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
runtime_pool(const struct runtime *rt, const char *name)
{
	for (size_t i = 0; i < rt->npools; i++)
		if (strcmp(rt->pools[i].cfg->name, name) == 0)
			return &rt->pools[i];
	return NULL;
}

struct listener *
runtime_listener(const struct runtime *rt, const char *name)
{
	for (size_t i = 0; i < rt->nlisteners; i++)
		if (strcmp(rt->listeners[i].cfg->name, name) == 0)
			return &rt->listeners[i];
	return NULL;
}

struct split *
runtime_split(const struct runtime *rt, const char *l, const char *route)
{
	const struct listener *ls = runtime_listener(rt, l);

	if (!ls)
		return NULL;
	if (!route || !route[0])
		return ls->to.split;
	for (size_t i = 0; i < ls->cfg->nroutes; i++)
		if (strcmp(ls->cfg->routes[i].sni, route) == 0)
			return ls->routes[i].split;
	return NULL;
}

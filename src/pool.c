/*
 * pool.c: build the live pools from a config, and pick / release backends.
 */
#include <errno.h>
#include <stdlib.h>

#include "balancer.h"
#include "pool.h"

int
runtime_init(struct runtime *rt, struct config *cfg)
{
	int rc;

	rt->cfg = cfg;
	rt->health = NULL;
	rt->npools = 0;
	rt->pools = calloc(cfg->nlisteners, sizeof(*rt->pools));
	if (!rt->pools)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->nlisteners; i++) {
		const struct cfg_listener *l = &cfg->listeners[i];
		struct pool *p = &rt->pools[i];

		p->cfg = l;
		p->ops = balancer_find(l->algorithm);
		p->backends = calloc(l->nbackends, sizeof(*p->backends));
		if (!p->backends) {
			rc = -ENOMEM;
			goto out_fini;
		}
		p->nbackends = l->nbackends;
		for (size_t j = 0; j < l->nbackends; j++) {
			struct backend *b = &p->backends[j];

			b->cfg = &l->backends[j];
			b->pool = p;
			b->index = j;
			atomic_init(&b->up, true);
			atomic_init(&b->active, 0);
			atomic_init(&b->total, 0);
			atomic_init(&b->connect_failures, 0);
			atomic_init(&b->bytes_in, 0);
			atomic_init(&b->bytes_out, 0);
			health_sm_init(&b->hsm, l->health.rise, l->health.fall,
				       true);
		}
		rt->npools = i + 1;
		rc = p->ops->init(p);
		if (rc < 0) {
			p->ops = NULL;
			goto out_fini;
		}
	}
	return 0;

out_fini:
	rt->npools = cfg->nlisteners;
	runtime_fini(rt);
	return rc;
}

void
runtime_fini(struct runtime *rt)
{
	for (size_t i = 0; i < rt->npools; i++) {
		struct pool *p = &rt->pools[i];

		if (p->ops && p->backends)
			p->ops->fini(p);
		free(p->backends);
	}
	free(rt->pools);
	rt->pools = NULL;
	rt->npools = 0;
}

struct backend *
pool_pick(struct pool *p, struct backend *const *tried, size_t ntried)
{
	struct backend *b = p->ops->pick(p, tried, ntried);

	if (b)
		atomic_fetch_add_explicit(&b->active, 1, memory_order_relaxed);
	return b;
}

void
pool_release(struct backend *b)
{
	atomic_fetch_sub_explicit(&b->active, 1, memory_order_relaxed);
}

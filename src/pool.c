/*
 * pool.c: picking and releasing backends.
 */
#include <string.h>

#include "balancer.h"
#include "log.h"
#include "pool.h"

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
pick_reserve(struct pool *p, const struct pick_ctx *ctx, uint64_t now_ms)
{
	struct backend *skip[CFG_ATTEMPTS_MAX + PICK_RACES];
	struct pick_ctx c = *ctx;

	if (ctx->ntried)
		memcpy(skip, ctx->tried, ctx->ntried * sizeof(*skip));
	c.tried = skip;
	c.now_ms = now_ms;
	for (unsigned i = 0; i <= PICK_RACES; i++) {
		struct backend *b = p->ops->pick(p, &c);

		/* b is one of the pool's backends, never a part of c. */
		if (!b || backend_reserve(b))
			return b; /* cppcheck-suppress returnDanglingLifetime */
		if (c.ntried < sizeof(skip) / sizeof(skip[0]))
			skip[c.ntried++] = b;
	}
	return NULL;
}

/* One tier (primaries or backups): the unmarked first, else a marked one. */
static struct backend *
pick_tier(struct pool *p, const struct pick_ctx *ctx)
{
	struct backend *b = pick_reserve(p, ctx, ctx->now_ms);

	if (b || !ctx->now_ms)
		return b;
	/* Better a backend that failed a moment ago than none at all. */
	for (size_t i = 0; i < p->nbackends; i++) {
		struct backend *m = p->backends[i];

		struct pick_ctx any = *ctx;

		any.now_ms = 0;
		if (backend_marked(m, ctx->now_ms) &&
		    balancer_eligible(m, &any))
			return pick_reserve(p, ctx, 0);
	}
	return NULL;
}

/* Say so when a pool starts and stops running on its backups. */
static void
backups_note(struct pool *p, bool on)
{
	if (atomic_load_explicit(&p->on_backups, memory_order_relaxed) == on ||
	    atomic_exchange(&p->on_backups, on) == on)
		return;
	if (on)
		log_warn("pool=%s: no primary backend is eligible: running on "
			 "backups", p->cfg->name);
	else
		log_info("pool=%s: a primary backend is eligible again: new "
			 "connections go to the primaries", p->cfg->name);
}

struct backend *
pool_pick(struct pool *p, const struct pick_ctx *ctx)
{
	struct pick_ctx c = *ctx;
	struct backend *b;

	if (ctx->ntried > CFG_ATTEMPTS_MAX || p->nbackends == 0)
		return NULL;
	c.tier = 0;
	b = pick_tier(p, &c);
	if (!p->max_tier)
		return b;
	/* Each backup tier only while none before it has a backend. */
	while (!b && c.tier < p->max_tier) {
		c.tier++;
		b = pick_tier(p, &c);
	}
	if (b)
		backups_note(p, c.tier > 0);
	return b;
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
pool_backend_failed(struct pool *p, struct backend *b, enum eject_cause cause,
		    uint64_t now_ms)
{
	const struct cfg_pool *c = p->cfg;
	unsigned ejected = 0, allowed, run;
	uint64_t ms;

	if (!c->fail_ms ||
	    atomic_fetch_add(&b->fail_run, 1) + 1 <
		    c->ejection.consecutive_failures)
		return;
	for (size_t i = 0; i < p->nbackends; i++)
		ejected += p->backends[i] != b &&
			   backend_marked(p->backends[i], now_ms);
	allowed = (unsigned)(p->nbackends * c->ejection.max_percent / 100);
	if (ejected >= (allowed ? allowed : 1))
		return;
	run = atomic_fetch_add(&b->eject_run, 1) + 1;
	ms = (uint64_t)c->fail_ms * run;
	if (ms > c->ejection.max_ms)
		ms = c->ejection.max_ms;
	atomic_store(&b->fail_run, 0);
	backend_mark_failed(b, (unsigned)ms, now_ms);
	atomic_fetch_add_explicit(&b->ejections[cause], 1,
				  memory_order_relaxed);
}

void
pool_release(struct backend *b)
{
	atomic_fetch_sub_explicit(&b->active, 1, memory_order_relaxed);
}

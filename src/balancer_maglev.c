/*
 * balancer_maglev.c: weighted Maglev consistent hashing (Eisenbud et al.,
 * "Maglev: A Fast and Reliable Software Network Load Balancer", NSDI
 * 2016), with bounded loads (Mirrokni, Thorup, Zadimoghaddam).
 *
 * The table (table_size slots, a prime) is filled from each backend's
 * permutation of the slots, offset + i * skip, with offset and skip
 * hashed from the backend's NAME: never from its place in the file or its
 * address, so two ringlb processes with the same pool, or one restarted,
 * map every key to the same backend.  Backends take turns in order of
 * their names, a backend of weight w claiming a slot in w of every
 * max-weight turns, so slot shares follow weights.
 *
 * The hashes are fixed and documented (README): FNV-1a 64 over the bytes,
 * then the MurmurHash3 64-bit finalizer; offset uses FNV's standard basis,
 * skip the basis with its halves swapped.  A key is the client's address
 * (4 bytes for IPv4 and IPv4-mapped IPv6, else 16), optionally with its
 * port (2 bytes, network order), or the SNI.
 *
 * The table is built where the pool is built (the control thread, at
 * start and reload) and again when a weight changes, then published with
 * one pointer store; the old table is freed once no worker can read it.
 * A pick is one lookup; when that backend is unavailable the key walks on
 * along the table from its slot, so only that backend's keys move, and
 * they come back with it.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "access.h"
#include "balancer.h"
#include "control.h"
#include "hash.h"
#include "pool.h"

#define FNV_BASIS	HASH_FNV_BASIS
#define FNV_BASIS_SKIP	0x84222325cbf29ce4ULL	/* its halves swapped */

/* One allocation, so a replaced table is one free() (control_defer_free). */
struct mg_table {
	uint32_t size;
	uint64_t build_us;
	uint64_t built_ms;
	uint32_t *count;	/* slots per backend (pool order), after slot[] */
	uint32_t slot[];	/* size entries: index in pool->backends */
};

struct mg {
	_Atomic(struct mg_table *) cur;
};

uint64_t
maglev_hash(uint64_t basis, const void *data, size_t n)
{
	return hash_fmix64(hash_fnv1a(basis, data, n));
}

struct mg_build {
	size_t index;		/* in pool->backends */
	const char *name;
	uint64_t offset, skip, next;
	uint64_t weight, target;
};

static int
by_name(const void *a, const void *b)
{
	const struct mg_build *x = a, *y = b;

	return strcmp(x->name, y->name);
}

static uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static struct mg_table *
mg_build(struct pool *p)
{
	uint64_t t0 = now_us(), m = p->cfg->hash.table_size, max_w = 1;
	size_t n = p->nbackends, filled = 0;
	struct mg_build *e = calloc(n, sizeof(*e));
	struct mg_table *t = calloc(1, sizeof(*t) + (m + n) * sizeof(uint32_t));

	if (!e || !t) {
		free(e);
		free(t);
		return NULL;
	}
	t->size = (uint32_t)m;
	t->count = t->slot + m;
	for (size_t i = 0; i < n; i++) {
		const char *name = p->backends[i]->cfg->name;
		size_t len = strlen(name);

		e[i].index = i;
		e[i].name = name;
		e[i].offset = maglev_hash(FNV_BASIS, name, len) % m;
		e[i].skip = maglev_hash(FNV_BASIS_SKIP, name, len) % (m - 1) + 1;
		e[i].weight = backend_weight(p->backends[i]);
		if (e[i].weight > max_w)
			max_w = e[i].weight;
	}
	for (size_t i = 0; i < n; i++)
		e[i].target = max_w;
	/* The file's order must not matter: take turns by name. */
	qsort(e, n, sizeof(*e), by_name);
	memset(t->slot, 0xff, m * sizeof(*t->slot));
	for (uint64_t round = 1; filled < m; round++) {
		for (size_t i = 0; i < n && filled < m; i++) {
			uint64_t c;

			/* Weight w: a slot in w of every max_w rounds. */
			if (round * e[i].weight < e[i].target)
				continue;
			e[i].target += max_w;
			do {
				c = (e[i].offset + e[i].next * e[i].skip) % m;
				e[i].next++;
			} while (t->slot[c] != UINT32_MAX);
			t->slot[c] = (uint32_t)e[i].index;
			t->count[e[i].index]++;
			filled++;
		}
	}
	free(e);
	t->build_us = now_us() - t0;
	t->built_ms = control_now_ms();
	return t;
}

static int
mg_init(struct pool *p)
{
	struct mg *mg = calloc(1, sizeof(*mg));
	struct mg_table *t = mg ? mg_build(p) : NULL;

	if (!t) {
		free(mg);
		return -ENOMEM;
	}
	atomic_init(&mg->cur, t);
	p->balancer = mg;
	return 0;
}

static void
mg_fini(struct pool *p)
{
	struct mg *mg = p->balancer;

	if (!mg)
		return;
	free(atomic_load(&mg->cur));
	free(mg);
	p->balancer = NULL;
}

static void *
mg_reweight(struct pool *p)
{
	struct mg *mg = p->balancer;
	struct mg_table *t = mg_build(p), *old;

	if (!t)
		return NULL;	/* keep the old table rather than none */
	old = atomic_exchange_explicit(&mg->cur, t, memory_order_acq_rel);
	return old;	/* freed by the caller once no worker reads it */
}

/* The key of a connection, hashed.  false: no key (no address known). */
static bool
mg_key(const struct pool *p, const struct pick_ctx *ctx, uint64_t *h)
{
	uint8_t buf[16 + 2];
	size_t n;
	int family;

	if (p->cfg->hash.key == HASH_SNI && ctx->sni) {
		*h = maglev_hash(FNV_BASIS, ctx->sni, strlen(ctx->sni));
		return true;
	}
	if (!ctx->client || ctx->client->sin6_family == AF_UNSPEC)
		return false;
	family = access_source((const struct sockaddr *)ctx->client, buf);
	if (!family)
		return false;
	n = family == AF_INET ? 4 : 16;
	if (p->cfg->hash.key == HASH_SOURCE_IP_PORT) {
		/* sin_port and sin6_port sit at the same offset. */
		memcpy(buf + n, &ctx->client->sin6_port, 2);
		n += 2;
	}
	*h = maglev_hash(FNV_BASIS, buf, n);
	return true;
}

/*
 * Bounded load: with balance_factor F, a backend whose active count is at
 * ceil(F% of the eligible backends' average, the new one counted) takes no
 * new connection.  0 when off.
 */
static unsigned
mg_cap(const struct pool *p, const struct pick_ctx *ctx)
{
	unsigned f = p->cfg->hash.balance_factor;
	uint64_t total = 1, n = 0;

	if (!f)
		return 0;
	for (size_t i = 0; i < p->nbackends; i++) {
		const struct backend *b = p->backends[i];

		if (!balancer_eligible(b, ctx))
			continue;
		total += atomic_load_explicit(&b->active, memory_order_relaxed);
		n++;
	}
	if (!n)
		return 0;
	return (unsigned)((total * f + n * 100 - 1) / (n * 100));
}

static struct backend *
mg_pick(struct pool *p, const struct pick_ctx *ctx)
{
	struct mg *mg = p->balancer;
	struct mg_table *t = atomic_load_explicit(&mg->cur,
						  memory_order_acquire);
	unsigned cap = mg_cap(p, ctx);
	uint64_t h, walk = 8 * (uint64_t)p->nbackends + 64;
	size_t s;

	if (!mg_key(p, ctx, &h))
		h = 0;	/* no key: every such client shares one slot */
	s = h % t->size;
	if (walk > t->size)
		walk = t->size;
	/* The key's own preference order: the table from its slot on. */
	for (uint64_t i = 0; i < walk; i++) {
		struct backend *b = p->backends[t->slot[s]];

		if (balancer_eligible(b, ctx) &&
		    (!cap || atomic_load_explicit(&b->active,
						  memory_order_relaxed) < cap))
			return b;
		if (++s == t->size)
			s = 0;
	}
	/* Most backends are out: the first eligible one, by the key. */
	for (size_t i = 0; i < p->nbackends; i++) {
		struct backend *b = p->backends[(h + i) % p->nbackends];

		if (balancer_eligible(b, ctx))
			return b;
	}
	return NULL;
}

static void
mg_info(const struct pool *p, struct balancer_info *out)
{
	struct mg *mg = p->balancer;
	const struct mg_table *t = atomic_load_explicit(&mg->cur,
							memory_order_acquire);

	out->table_size = t->size;
	out->build_us = t->build_us;
	out->built_ms = t->built_ms;
	out->slots = t->count;
}

const struct balancer_ops balancer_maglev_ops = {
	.name = "maglev",
	.needs_client = true,
	.init = mg_init,
	.fini = mg_fini,
	.pick = mg_pick,
	.reweight = mg_reweight,
	.info = mg_info,
};

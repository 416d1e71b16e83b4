/*
 * split.c: traffic split between pools (see split.h).
 *
 * A pick maps a 32-bit point onto the sides, each side owning a stretch
 * of [0, 2^32) as long as its share of the total weight.  For a sticky
 * split the point is the top half of the client address's maglev hash, so
 * a weight change moves only the clients whose stretch moved; otherwise it
 * is a shared counter stepped by 2^32 / golden ratio, whose points fill
 * the range evenly: 95/5 is 95/5 after a few dozen clients, not only on
 * average.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

#include "access.h"
#include "balancer.h"
#include "hash.h"
#include "split.h"

#define GOLDEN_STEP 0x9e3779b9u	/* 2^32 / phi */

static bool
same_sides(const struct split_state *st, const struct cfg_split *cs,
	   const struct config *cfg)
{
	if (st->nsides != cs->nsides)
		return false;
	for (size_t i = 0; i < cs->nsides; i++)
		if (strcmp(st->pool[i], cfg->pools[cs->side[i].pool].name) != 0)
			return false;
	return true;
}

static struct split_state *
state_new(const struct cfg_split *cs, const struct config *cfg)
{
	struct split_state *st = calloc(1, sizeof(*st));

	if (!st)
		return NULL;
	snprintf(st->listener, sizeof(st->listener), "%s",
		 cfg->listeners[cs->listener].name);
	snprintf(st->route, sizeof(st->route), "%s", cs->route);
	st->nsides = cs->nsides;
	for (size_t i = 0; i < cs->nsides; i++) {
		snprintf(st->pool[i], sizeof(st->pool[i]), "%s",
			 cfg->pools[cs->side[i].pool].name);
		st->conf[i] = cs->side[i].weight;
		atomic_init(&st->n[i].weight, cs->side[i].weight);
	}
	return st;
}

int
split_init(struct split *s, const struct cfg_split *cs,
	   const struct config *cfg, struct pool *pools,
	   const struct split *prev)
{
	struct split_state *st = NULL;

	memset(s, 0, sizeof(*s));
	s->cfg = cs;
	if (prev && same_sides(prev->st, cs, cfg)) {
		bool same_file = true;

		st = prev->st;
		for (size_t i = 0; i < cs->nsides; i++)
			same_file &= st->conf[i] == cs->side[i].weight;
		/* A weight set at runtime stands until the file changes. */
		if (!same_file) {
			s->undo.saved = true;
			s->undo.override = st->override;
			for (size_t i = 0; i < cs->nsides; i++) {
				s->undo.weight[i] =
					atomic_load(&st->n[i].weight);
				s->undo.conf[i] = st->conf[i];
				st->conf[i] = cs->side[i].weight;
				atomic_store(&st->n[i].weight,
					     cs->side[i].weight);
			}
			st->override = false;
		}
	} else {
		st = state_new(cs, cfg);
		if (!st)
			return -ENOMEM;
	}
	st->refs++;
	s->st = st;
	s->nsides = cs->nsides;
	for (size_t i = 0; i < cs->nsides; i++) {
		s->side[i].pool = &pools[cs->side[i].pool];
		s->side[i].n = &st->n[i];
		s->side[i].split = s;
		s->side[i].index = (unsigned)i;
	}
	return 0;
}

void
split_abort(struct split *s)
{
	if (s->st && s->undo.saved) {
		s->st->override = s->undo.override;
		for (size_t i = 0; i < s->nsides; i++) {
			s->st->conf[i] = s->undo.conf[i];
			atomic_store(&s->st->n[i].weight, s->undo.weight[i]);
		}
		s->undo.saved = false;
	}
	split_fini(s);
}

void
split_fini(struct split *s)
{
	if (s->st && --s->st->refs == 0)
		free(s->st);
	s->st = NULL;
}

/* The top half of the client address's maglev hash; 0 for no address. */
static uint32_t
client_point(const struct sockaddr_in6 *client)
{
	uint8_t buf[16];
	int family;

	if (!client || client->sin6_family == AF_UNSPEC)
		return 0;
	family = access_source((const struct sockaddr *)client, buf);
	if (!family)
		return 0;
	return (uint32_t)(maglev_hash(HASH_FNV_BASIS, buf,
				      family == AF_INET ? 4 : 16) >> 32);
}

const struct split_side *
split_pick(const struct split *s, const struct sockaddr_in6 *client,
	   unsigned skip)
{
	unsigned w[CFG_SPLIT_MAX];
	uint64_t total = 0, x;
	uint32_t point;

	/* Weights are read one by one: a pick during a change may see a
	 * mix of old and new, which is a share in between. */
	for (size_t i = 0; i < s->nsides; i++) {
		w[i] = (skip & (1u << i)) ? 0 :
			atomic_load_explicit(&s->side[i].n->weight,
					     memory_order_relaxed);
		total += w[i];
	}
	if (!total)
		return NULL;
	if (s->cfg->sticky)
		point = client_point(client);
	else
		point = atomic_fetch_add_explicit(&s->st->seq, GOLDEN_STEP,
						  memory_order_relaxed);
	x = ((uint64_t)point * total) >> 32;
	for (size_t i = 0; i < s->nsides; i++) {
		if (x < w[i])
			return &s->side[i];
		x -= w[i];
	}
	return NULL;	/* not reached: x < total */
}

int
split_set(struct split *s, const char *const *pools, const unsigned *weights,
	  size_t n, uint64_t now_ms, char *err, size_t errlen)
{
	struct split_state *st = s->st;
	unsigned w[CFG_SPLIT_MAX], total = 0;

	for (size_t i = 0; i < st->nsides; i++)
		w[i] = atomic_load(&st->n[i].weight);
	for (size_t k = 0; k < n; k++) {
		size_t i;

		for (i = 0; i < st->nsides; i++)
			if (strcmp(st->pool[i], pools[k]) == 0)
				break;
		if (i == st->nsides) {
			char have[CFG_SPLIT_MAX * (CFG_NAME_MAX + 2)];
			size_t o = 0;

			for (size_t j = 0; j < st->nsides; j++)
				o += (size_t)snprintf(have + o,
						      sizeof(have) - o, "%s%s",
						      j ? ", " : "",
						      st->pool[j]);
			snprintf(err, errlen,
				 "pool \"%s\" is not in this split (it has %s)",
				 pools[k], have);
			return -EINVAL;
		}
		if (weights[k] > CFG_SPLIT_WEIGHT_MAX) {
			snprintf(err, errlen,
				 "weight of \"%s\" must be from 0 to %d",
				 pools[k], CFG_SPLIT_WEIGHT_MAX);
			return -EINVAL;
		}
		w[i] = weights[k];
	}
	for (size_t i = 0; i < st->nsides; i++)
		total += w[i];
	if (!total) {
		snprintf(err, errlen,
			 "every weight would be 0: at least one pool must "
			 "take clients");
		return -EINVAL;
	}
	for (size_t i = 0; i < st->nsides; i++)
		atomic_store(&st->n[i].weight, w[i]);
	st->override = true;
	st->changed_ms = now_ms;
	return 0;
}

void
split_reset(struct split *s, uint64_t now_ms)
{
	for (size_t i = 0; i < s->st->nsides; i++)
		atomic_store(&s->st->n[i].weight, s->st->conf[i]);
	s->st->override = false;
	s->st->changed_ms = now_ms;
}

/*
 * split.h: a traffic split between pools (A/B tests, canaries).  A
 * listener or a route with a "split" sends each new client to one of its
 * pools, in proportion to the weights; with "sticky": "source-ip" a client
 * address always lands on the same side while the weights stand, and
 * every ringlb with the same split agrees on it (the client's address is
 * hashed as maglev hashes it, hash.h).
 *
 * A split_state outlives generations, as backends do: the weights in
 * force (an operator may change them at runtime), the file's weights they
 * came from, and per-side counts.  A struct split is one generation's view
 * of it, with that generation's pools.
 */
#ifndef RINGLB_SPLIT_H
#define RINGLB_SPLIT_H

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct pool;

/* Per side; written by workers (counts) and the control thread (weight). */
struct split_count {
	atomic_uint weight;		/* in force */
	atomic_uint_fast64_t conns;	/* clients sent to this side */
	atomic_uint active;		/* ... of which still open */
};

struct split_state {
	char listener[CFG_NAME_MAX];
	char route[CFG_SNI_MAX];	/* "": the listener's own split */
	size_t nsides;
	char pool[CFG_SPLIT_MAX][CFG_NAME_MAX];
	unsigned conf[CFG_SPLIT_MAX];	/* the file's weights */
	bool override;			/* weights set at runtime */
	uint64_t changed_ms;		/* when, if so */
	atomic_uint seq;		/* spreads clients that are not sticky */
	struct split_count n[CFG_SPLIT_MAX];
	unsigned refs;			/* generations holding it */
};

struct split;

/* A side in one generation: its pool, and the counts it feeds. */
struct split_side {
	struct pool *pool;
	struct split_count *n;
	const struct split *split;
	unsigned index;
};

struct split {
	const struct cfg_split *cfg;
	struct split_state *st;
	struct split_side side[CFG_SPLIT_MAX];
	size_t nsides;
	/* What split_init changed in a carried state, for split_abort. */
	struct split_undo {
		bool saved;
		bool override;
		unsigned weight[CFG_SPLIT_MAX];
		unsigned conf[CFG_SPLIT_MAX];
	} undo;
};

/*
 * Build s from cs over the generation's pools, carrying the state of
 * `prev` (the same listener and route in the previous generation, or
 * NULL) when it has the same pools in the same order.  Weights set at
 * runtime stand unless the file changed this split's weights.  0 or
 * -ENOMEM.
 */
int split_init(struct split *s, const struct cfg_split *cs,
	       const struct config *cfg, struct pool *pools,
	       const struct split *prev);
/* Give a carried state back what split_init changed (a failed reload). */
void split_abort(struct split *s);
void split_fini(struct split *s);

/*
 * The side for a new client: by its address if the split is sticky (an
 * AF_UNSPEC one hashes as no address), else in turn.  Sides whose bit is
 * set in `skip`, or whose weight is 0, are passed over; NULL if no side
 * is left.  Lock-free, for every worker at once.
 */
const struct split_side *split_pick(const struct split *s,
				    const struct sockaddr_in6 *client,
				    unsigned skip);

/*
 * Operator changes, on the control thread under control_lock().  Set the
 * weights of the named pools (the others keep theirs); 0, or -EINVAL (a
 * pool not in the split, a weight out of range, all 0) with the reason
 * in err, and nothing changed.
 */
int split_set(struct split *s, const char *const *pools,
	      const unsigned *weights, size_t n, uint64_t now_ms, char *err,
	      size_t errlen);
/* Back to the file's weights. */
void split_reset(struct split *s, uint64_t now_ms);

#endif

/*
 * srctab.h: per-source state for a listener's per_source limits: open
 * connections and a token bucket for new connections, keyed by the client
 * address (IPv6 grouped by ipv6_prefix).
 *
 * Bounded: a fixed table of 8-way groups, with the table_size given in the
 * config.  A source new to the table takes an empty slot of its group, or
 * the least recently seen one that has no open connection (forgetting that
 * source's bucket, which can only make it more lenient).  When all 8 slots
 * of its group hold sources with open connections, the new source is
 * admitted without per-source limits and `untracked` is counted.
 *
 * Shared by every worker (each has its own SO_REUSEPORT socket, so one
 * source lands on any of them): a group is read and changed under one of
 * SRCTAB_LOCKS striped mutexes, held for a few dozen instructions; a
 * connection gives its slot back with one atomic decrement, no lock.
 */
#ifndef RINGLB_SRCTAB_H
#define RINGLB_SRCTAB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct cfg_per_source;
struct srctab;

enum src_verdict {
	SRC_OK,			/* admitted; holds a slot */
	SRC_UNTRACKED,		/* admitted; group full, no slot held */
	SRC_LIMIT,		/* at max_connections */
	SRC_RATE,		/* bucket empty */
};

/*
 * The table for per_source settings ps: `prev` (may be NULL) again if its
 * size and ipv6_prefix are the same (its counts go on), else a new one.
 * NULL if ps is off or out of memory (*oom set).  Control thread only.
 */
struct srctab *srctab_carry(struct srctab *prev,
			    const struct cfg_per_source *ps, bool *oom);
/* Drop a reference from srctab_carry(). */
void srctab_put(struct srctab *t);

/*
 * Admit a new connection from (family, addr) as built by access_source():
 * on SRC_OK *slot holds it until srctab_release(); otherwise *slot is 0.
 */
enum src_verdict srctab_admit(struct srctab *t, int family,
			      const uint8_t addr[16],
			      const struct cfg_per_source *ps, uint64_t now_ms,
			      uint32_t *slot);
void srctab_release(struct srctab *t, uint32_t slot);
/*
 * A connection already admitted elsewhere (handed over by an upgrade):
 * counted in its source's slot whatever the limits say.  *slot as for
 * srctab_admit (0 if the group is full).
 */
void srctab_adopt(struct srctab *t, int family, const uint8_t addr[16],
		  const struct cfg_per_source *ps, uint64_t now_ms,
		  uint32_t *slot);

/*
 * Every source's token bucket, for an upgrade to hand on: fn(arg, family,
 * key bytes (the address cut to ipv6_prefix), milli-tokens, the
 * CLOCK_MONOTONIC ms of its last use).  Takes each group's lock in turn.
 */
void srctab_export(struct srctab *t,
		   void (*fn)(void *arg, int family, const uint8_t key[16],
			      uint32_t tokens, uint64_t last_ms),
		   void *arg);
/*
 * In the new process: a source's bucket as the old one had it (the same
 * clock: CLOCK_MONOTONIC is the machine's).  Its open connections stay
 * with the old process; a full group drops it.
 */
void srctab_import(struct srctab *t, int family, const uint8_t key[16],
		   uint32_t tokens, uint64_t last_ms);

/* Open connections held by a source (for tests and debugging). */
unsigned srctab_conns(struct srctab *t, int family, const uint8_t addr[16]);
/* Admissions without a slot because the group was full. */
uint64_t srctab_untracked(const struct srctab *t);

#endif

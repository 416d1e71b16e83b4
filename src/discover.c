/*
 * discover.c: backends from DNS (see discover.h).
 *
 * Each discovering pool has a struct disc, kept across generations while
 * the pool keeps its name and its "discover" object, with its own c-ares
 * channel (its own resolvers).  A round asks A and AAAA (type "a") or SRV
 * (type "srv", then A and AAAA of each target the answer's additional
 * section does not cover), and is over when every query of it is; only
 * then does it count as an answer or a failure.  Answers are parsed here
 * (ares_expand_name() for the names), for the TTLs c-ares 1.18's own
 * parsers do not give for SRV.
 *
 * Locks: `lock` guards the list and each disc's answer state.  The thread
 * takes control_lock() (control_discovered()) never while holding `lock`;
 * the control thread takes `lock` under control_lock() (discover_inject,
 * discover_json): one order.
 */
#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "control.h"
#include "discover.h"
#include "log.h"
#include "runtime.h"

#define QUERY_TIMEOUT_MS	1000	/* per try; c-ares tries twice */
#define BACKOFF_MIN_MS		500
#define EDNS_SIZE		1232
#define TARGETS_MAX		CFG_BACKENDS_MAX

/* How a round ended, as counted in ringlb_discovery_queries_total. */
enum dq {
	DQ_OK,
	DQ_EMPTY,	/* NOERROR, no records */
	DQ_NXDOMAIN,
	DQ_SERVFAIL,
	DQ_REFUSED,
	DQ_TIMEOUT,
	DQ_MALFORMED,
	DQ_OTHER,
	DQ_MAX,
};

static const char *const dq_names[DQ_MAX] = {
	"ok", "empty", "nxdomain", "servfail", "refused", "timeout",
	"malformed", "other",
};

/* One record of an answer: an address (A/AAAA) or an SRV target. */
struct rec {
	char target[CFG_DNS_NAME_MAX];	/* SRV target, lowercase; "" */
	struct sockaddr_storage ss;	/* family 0: not known yet */
	unsigned prio, weight, port;
	unsigned ttl;
};

struct recs {
	struct rec *r;
	size_t n, cap;
};

struct disc {
	struct disc *next;
	char pool[CFG_NAME_MAX];
	struct cfg_discover cfg;
	ares_channel ch;
	/* The round in flight. */
	unsigned pending;	/* queries not yet answered */
	enum dq worst;		/* the round's failure, DQ_OK if none */
	struct recs round;	/* A/AAAA records, or SRV targets */
	struct recs extra;	/* additional-section addresses (SRV) */
	unsigned round_ttl;
	/* Between rounds. */
	uint64_t next_ms;	/* when the next round starts */
	unsigned backoff_ms;
	/* Under `lock`: what the admin API shows and a reload injects. */
	struct cfg_backend *set;	/* the discovered backends in force */
	size_t nset;
	json_t *records;	/* the last good answer, as shown */
	uint64_t answer_ms;	/* when it came; 0: never */
	unsigned ttl;		/* its TTL, s */
	uint64_t fail_ms;	/* failing since (0: not failing) */
	char error[320];	/* the last failure */
	uint64_t queries[DQ_MAX];
	uint64_t shown_next_ms;	/* next_ms, for the admin API */
	bool applied;		/* set is what the runtime has */
	bool held_out;		/* hold_ms passed: the set was dropped */
	bool alive;		/* still a pool of the current generation */
	bool any_records;	/* the round's */
	bool targets_asked;	/* SRV: the targets' addresses asked */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct disc *discs;
static pthread_t thread;
static atomic_bool running;
static atomic_bool stopping;
/* discover_start() called, discover_stop() not yet (control thread). */
static atomic_bool armed;
static int wake_fd = -1;
/* Pools the thread should follow (discover_follow): name + cfg. */
static struct want {
	char pool[CFG_NAME_MAX];
	struct cfg_discover cfg;
} *wants;
static size_t nwants;
static bool wants_new;

static bool
cfg_same(const struct cfg_discover *a, const struct cfg_discover *b)
{
	return a->srv == b->srv && a->port == b->port &&
	       strcmp(a->name, b->name) == 0 &&
	       strcmp(a->resolvers, b->resolvers) == 0;
}

static void
wake(void)
{
	uint64_t one = 1;

	if (wake_fd >= 0 && write(wake_fd, &one, sizeof(one)) < 0)
		log_error("discovery: wake: %s", strerror(errno));
}

/* ---- answers ---- */

static int
recs_add(struct recs *l, const struct rec *r)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct rec *nr = realloc(l->r, cap * sizeof(*nr));

		if (!nr)
			return -ENOMEM;
		l->r = nr;
		l->cap = cap;
	}
	l->r[l->n++] = *r;
	return 0;
}

static void
lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s + 32);
}

static uint16_t
get16(const unsigned char *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/*
 * The records of type `want` owned by any name in the answer section
 * into out (SRV: their targets; owners are not checked against the
 * question, c-ares matched the question), and with `extra` the A/AAAA
 * records of the additional section, by owner name.  The smallest TTL in
 * *ttl.  0, or DQ_MALFORMED.
 */
static int
parse_answer(const unsigned char *a, int alen, int want, struct recs *out,
	     struct recs *extra, unsigned *ttl)
{
	const unsigned char *p = a + 12, *end = a + alen;
	unsigned qd, an, ns, ar;

	if (alen < 12)
		return DQ_MALFORMED;
	qd = get16(a + 4);
	an = get16(a + 6);
	ns = get16(a + 8);
	ar = get16(a + 10);
	for (unsigned i = 0; i < qd; i++) {
		char *name;
		long len;

		if (ares_expand_name(p, a, alen, &name, &len) != ARES_SUCCESS)
			return DQ_MALFORMED;
		ares_free_string(name);
		p += len + 4;
		if (p > end)
			return DQ_MALFORMED;
	}
	for (unsigned i = 0; i < an + ns + ar; i++) {
		bool answer = i < an, additional = i >= an + ns;
		struct rec r = { .ttl = 0 };
		unsigned type, rdlen;
		char *name;
		long len;

		if (ares_expand_name(p, a, alen, &name, &len) != ARES_SUCCESS)
			return DQ_MALFORMED;
		p += len;
		if (p + 10 > end) {
			ares_free_string(name);
			return DQ_MALFORMED;
		}
		type = get16(p);
		r.ttl = (unsigned)p[4] << 24 | (unsigned)p[5] << 16 |
			(unsigned)p[6] << 8 | p[7];
		if (r.ttl > 0x7fffffff)
			r.ttl = 0;	/* RFC 2181: treat as 0 */
		rdlen = get16(p + 8);
		p += 10;
		if (p + rdlen > end) {
			ares_free_string(name);
			return DQ_MALFORMED;
		}
		snprintf(r.target, sizeof(r.target), "%s", name);
		lower(r.target);
		ares_free_string(name);
		if (!answer && !(additional && extra)) {
			p += rdlen;
			continue;
		}
		if (type == T_A && rdlen == 4) {
			struct sockaddr_in *s = (void *)&r.ss;

			s->sin_family = AF_INET;
			memcpy(&s->sin_addr, p, 4);
		} else if (type == T_AAAA && rdlen == 16) {
			struct sockaddr_in6 *s = (void *)&r.ss;

			s->sin6_family = AF_INET6;
			memcpy(&s->sin6_addr, p, 16);
		} else if (type == T_SRV && answer && rdlen > 6) {
			char *t = NULL;

			r.prio = get16(p);
			r.weight = get16(p + 2);
			r.port = get16(p + 4);
			if (ares_expand_name(p + 6, a, alen, &t, &len) !=
				    ARES_SUCCESS ||
			    p + 6 + len > p + rdlen) {
				if (t)
					ares_free_string(t);
				return DQ_MALFORMED;
			}
			snprintf(r.target, sizeof(r.target), "%s", t);
			lower(r.target);
			ares_free_string(t);
		} else if ((type == T_A || type == T_AAAA || type == T_SRV) &&
			   (int)type == want) {
			return DQ_MALFORMED;	/* the wrong rdata length */
		} else {
			p += rdlen;
			continue;	/* a CNAME on the way, say */
		}
		p += rdlen;
		if (answer && (int)type == want) {
			if (want != T_SRV)
				r.target[0] = '\0';
			if (recs_add(out, &r) < 0)
				return DQ_OTHER;
			if (*ttl > r.ttl)
				*ttl = r.ttl;
		} else if (additional && extra && type != T_SRV &&
			   recs_add(extra, &r) < 0) {
			return DQ_OTHER;
		}
	}
	return DQ_OK;
}

static enum dq
dq_of(int status)
{
	switch (status) {
	case ARES_SUCCESS:
		return DQ_OK;
	case ARES_ENODATA:
		return DQ_EMPTY;
	case ARES_ENOTFOUND:
		return DQ_NXDOMAIN;
	case ARES_ESERVFAIL:
	/* What c-ares 1.18 says once every server failed or refused. */
	case ARES_ECONNREFUSED:
		return DQ_SERVFAIL;
	case ARES_EREFUSED:
		return DQ_REFUSED;
	case ARES_ETIMEOUT:
		return DQ_TIMEOUT;
	case ARES_EBADRESP:
	case ARES_EFORMERR:
		return DQ_MALFORMED;
	}
	return DQ_OTHER;
}

/* A failure outranks an answer; of failures, the first one found. */
static void
round_note(struct disc *d, enum dq q, const char *what, int status)
{
	if (q == DQ_OK || q == DQ_EMPTY || q == DQ_NXDOMAIN)
		return;
	if (d->worst == DQ_OK) {
		d->worst = q;
		pthread_mutex_lock(&lock);
		snprintf(d->error, sizeof(d->error), "%s: %s", what,
			 status ? ares_strerror(status) : dq_names[q]);
		pthread_mutex_unlock(&lock);
	}
}

static void round_end(struct disc *d);

struct query {
	struct disc *d;
	int type;
	bool target;	/* an SRV target's address */
	char name[CFG_DNS_NAME_MAX];
};

static void
ask(struct disc *d, const char *name, int type, bool target);

static void
on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct query *q = arg;
	struct disc *d = q->d;
	enum dq r = dq_of(status);
	char what[CFG_DNS_NAME_MAX + 16];

	(void)timeouts;
	if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED) {
		free(q);
		return;	/* the disc is going away */
	}
	snprintf(what, sizeof(what), "%s %s", q->name,
		 q->type == T_SRV ? "SRV" : q->type == T_A ? "A" : "AAAA");
	if (r == DQ_OK) {
		struct recs *into = &d->round, tmp = { 0 };
		unsigned ttl = d->round_ttl;

		if (q->target)
			into = &tmp;
		r = parse_answer(abuf, alen, q->type, into,
				 q->type == T_SRV ? &d->extra : NULL, &ttl);
		if (r == DQ_OK) {
			d->round_ttl = ttl;
			d->any_records |= into->n > 0;
		}
		/* A target's addresses go to each SRV record naming it. */
		for (size_t i = 0; q->target && r == DQ_OK && i < tmp.n; i++) {
			snprintf(tmp.r[i].target, sizeof(tmp.r[i].target),
				 "%s", q->name);
			if (recs_add(&d->extra, &tmp.r[i]) < 0)
				r = DQ_OTHER;
		}
		free(tmp.r);
	}
	round_note(d, r, what, r == DQ_MALFORMED ? 0 : status);
	free(q);
	if (--d->pending == 0)
		round_end(d);
}

static void
ask(struct disc *d, const char *name, int type, bool target)
{
	struct query *q = calloc(1, sizeof(*q));

	if (!q) {
		round_note(d, DQ_OTHER, name, ARES_ENOMEM);
		return;
	}
	q->d = d;
	q->type = type;
	q->target = target;
	snprintf(q->name, sizeof(q->name), "%s", name);
	d->pending++;
	ares_query(d->ch, name, C_IN, type, on_answer, q);
}

static void
round_start(struct disc *d, uint64_t now)
{
	d->worst = DQ_OK;
	d->any_records = false;
	d->round.n = 0;
	d->extra.n = 0;
	d->round_ttl = UINT32_MAX;
	d->next_ms = UINT64_MAX;	/* until this round ends */
	d->pending++;	/* held while the queries go out */
	if (d->cfg.srv) {
		ask(d, d->cfg.name, T_SRV, false);
	} else {
		ask(d, d->cfg.name, T_A, false);
		ask(d, d->cfg.name, T_AAAA, false);
	}
	(void)now;
	if (--d->pending == 0)
		round_end(d);
}

/* ---- from records to backends ---- */

static int
rec_cmp(const void *x, const void *y)
{
	const struct rec *a = x, *b = y;
	int c;

	if (a->prio != b->prio)
		return a->prio < b->prio ? -1 : 1;
	c = strcmp(a->target, b->target);
	if (c)
		return c;
	if (a->port != b->port)
		return a->port < b->port ? -1 : 1;
	if (a->ss.ss_family != b->ss.ss_family)
		return a->ss.ss_family < b->ss.ss_family ? -1 : 1;
	return memcmp(&a->ss, &b->ss, sizeof(a->ss));
}

/*
 * The first address of target among the sorted address records (all of
 * priority and port 0, so sorted by target, then IPv4 first, then the
 * lowest address); NULL if it has none.  A binary search: an SRV answer
 * may bring 1,000 targets.
 */
static const struct rec *
target_addr(const struct recs *ex, const char *target)
{
	size_t lo = 0, hi = ex->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(ex->r[mid].target, target) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < ex->n && strcmp(ex->r[lo].target, target) == 0 ?
		       &ex->r[lo] : NULL;
}

static socklen_t
ss_len(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET ? sizeof(struct sockaddr_in) :
					  sizeof(struct sockaddr_in6);
}

static void
set_port(struct sockaddr_storage *ss, unsigned port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)(void *)ss)->sin_port =
			htons((uint16_t)port);
	else
		((struct sockaddr_in6 *)(void *)ss)->sin6_port =
			htons((uint16_t)port);
}

/* "target:port", shortened with a hash of the whole if it is too long. */
static void
srv_name(char *out, size_t size, const char *target, unsigned port)
{
	char full[CFG_DNS_NAME_MAX + 8];
	uint32_t h = 2166136261u;

	snprintf(full, sizeof(full), "%s:%u", target, port);
	if (strlen(full) < size) {
		snprintf(out, size, "%s", full);
		return;
	}
	for (const char *p = full; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	snprintf(out, size, "%.*s~%08x:%u", (int)(size - 18), target, h,
		 port);
}

/*
 * The backends of a good answer, in a stable order, at most max: for
 * "a" one per address; for "srv" one per target and port, at the
 * target's first address, the lowest priority primary and the others
 * backups, the weights scaled to 1..CFG_WEIGHT_MAX.
 */
static size_t
build_set(struct disc *d, struct cfg_backend **out)
{
	struct recs *rs = &d->round;
	struct cfg_backend *set;
	unsigned maxw = 0, tier = 0;
	size_t n = 0;

	qsort(rs->r, rs->n, sizeof(*rs->r), rec_cmp);
	if (d->cfg.srv) {
		qsort(d->extra.r, d->extra.n, sizeof(*d->extra.r), rec_cmp);
		for (size_t i = 0; i < rs->n; i++)
			if (maxw < rs->r[i].weight)
				maxw = rs->r[i].weight;
	}
	set = calloc(rs->n ? rs->n : 1, sizeof(*set));
	if (!set) {
		*out = NULL;
		return 0;
	}
	for (size_t i = 0; i < rs->n && n < d->cfg.max_backends; i++) {
		struct rec *r = &rs->r[i];
		struct cfg_backend *b = &set[n];

		if (i && rec_cmp(r, &rs->r[i - 1]) == 0)
			continue;	/* the same record twice */
		/* Sorted by priority: each new one is the next tier. */
		if (i && r->prio != rs->r[i - 1].prio && tier < 255)
			tier++;
		b->weight = 1;
		b->send_proxy = SEND_PROXY_POOL;
		if (d->cfg.srv) {
			const struct rec *a = target_addr(&d->extra, r->target);

			if (!a)
				continue;	/* no address: not a backend */
			if (i && strcmp(r->target, rs->r[i - 1].target) == 0 &&
			    r->port == rs->r[i - 1].port)
				continue;
			r->ss = a->ss;
			srv_name(b->name, sizeof(b->name), r->target, r->port);
			if (maxw)
				b->weight = (r->weight * CFG_WEIGHT_MAX +
					     maxw / 2) / maxw;
			if (b->weight < 1)
				b->weight = 1;
			b->tier = (uint8_t)tier;
			b->backup = tier > 0;
			set_port(&r->ss, r->port);
		} else {
			set_port(&r->ss, d->cfg.port);
		}
		memcpy(&b->addr.ss, &r->ss, ss_len(&r->ss));
		b->addr.len = ss_len(&r->ss);
		log_addr((const struct sockaddr *)&r->ss, b->addr.text,
			 sizeof(b->addr.text));
		if (!d->cfg.srv)
			snprintf(b->name, sizeof(b->name), "%.63s",
				 b->addr.text);
		n++;
	}
	if (n == d->cfg.max_backends && rs->n > n)
		log_warn("discovery: pool=%s: %s has %zu records, more than "
			 "max_backends %u: taking the first %u",
			 d->pool, d->cfg.name, rs->n, d->cfg.max_backends,
			 d->cfg.max_backends);
	*out = set;
	return n;
}

static json_t *
records_json(const struct disc *d, const struct cfg_backend *set, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < d->round.n; i++) {
		const struct rec *r = &d->round.r[i];
		char text[80] = "";

		if (r->ss.ss_family)
			log_addr((const struct sockaddr *)&r->ss, text,
				 sizeof(text));
		if (d->cfg.srv)
			json_array_append_new(
				a, json_pack("{s:s,s:i,s:i,s:i,s:s,s:i}",
					     "target", r->target, "priority",
					     (int)r->prio, "weight",
					     (int)r->weight, "port",
					     (int)r->port, "address", text,
					     "ttl", (int)r->ttl));
		else
			json_array_append_new(
				a, json_pack("{s:s,s:i}", "address", text,
					     "ttl", (int)r->ttl));
	}
	(void)set;
	(void)n;
	return a;
}

static bool
set_equal(const struct cfg_backend *a, size_t na, const struct cfg_backend *b,
	  size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (strcmp(a[i].name, b[i].name) != 0 ||
		    !cfg_addr_same(&a[i].addr, &b[i].addr) ||
		    a[i].weight != b[i].weight || a[i].tier != b[i].tier)
			return false;
	return true;
}

/* Make set the pool's discovered backends (taking it), in the runtime. */
static void
apply(struct disc *d, struct cfg_backend *set, size_t n)
{
	bool same;
	int rc;

	pthread_mutex_lock(&lock);
	same = d->applied && set_equal(d->set, d->nset, set, n);
	if (!same) {
		free(d->set);
		d->set = set;
		d->nset = n;
		d->applied = false;
	}
	pthread_mutex_unlock(&lock);
	if (same) {
		free(set);
		return;
	}
	rc = control_discovered(d->pool, &d->cfg, set, n);
	pthread_mutex_lock(&lock);
	d->applied = rc == 0 && d->set == set;
	pthread_mutex_unlock(&lock);
}

static void
round_end(struct disc *d)
{
	uint64_t now = control_now_ms();
	struct cfg_backend *set;
	size_t n;

	if (d->cfg.srv && d->worst == DQ_OK && d->pending == 0 &&
	    d->any_records && !d->targets_asked) {
		/* Targets the additional section left without an address. */
		d->targets_asked = true;
		d->pending++;
		qsort(d->round.r, d->round.n, sizeof(*d->round.r), rec_cmp);
		qsort(d->extra.r, d->extra.n, sizeof(*d->extra.r), rec_cmp);
		for (size_t i = 0; i < d->round.n; i++) {
			if (i && strcmp(d->round.r[i].target,
					d->round.r[i - 1].target) == 0)
				continue;
			if (!target_addr(&d->extra, d->round.r[i].target)) {
				ask(d, d->round.r[i].target, T_A, true);
				ask(d, d->round.r[i].target, T_AAAA, true);
			}
		}
		if (--d->pending)
			return;
	}
	d->targets_asked = false;
	if (d->worst != DQ_OK) {
		/* Keep the last good set for hold_ms; ask again, later. */
		pthread_mutex_lock(&lock);
		d->queries[d->worst]++;
		if (!d->fail_ms) {
			d->fail_ms = now;
			log_warn("discovery: pool=%s: %s; keeping the last "
				 "answer for up to %u ms",
				 d->pool, d->error, d->cfg.hold_ms);
		}
		pthread_mutex_unlock(&lock);
		d->backoff_ms = d->backoff_ms ? d->backoff_ms * 2 :
						BACKOFF_MIN_MS;
		if (d->backoff_ms > d->cfg.max_ttl_ms)
			d->backoff_ms = d->cfg.max_ttl_ms;
		d->next_ms = now + d->backoff_ms;
		pthread_mutex_lock(&lock);
		d->shown_next_ms = d->next_ms;
		pthread_mutex_unlock(&lock);
		if (now - d->fail_ms >= d->cfg.hold_ms && !d->held_out) {
			d->held_out = true;
			log_error("discovery: pool=%s: no good answer for %u "
				  "ms: its discovered backends are removed",
				  d->pool, d->cfg.hold_ms);
			set = calloc(1, sizeof(*set));
			if (set)
				apply(d, set, 0);
		}
		return;
	}
	/* An answer, records or none (NXDOMAIN, empty: a real answer). */
	if (d->round_ttl == UINT32_MAX)
		d->round_ttl = d->cfg.min_ttl_ms / 1000;
	n = build_set(d, &set);
	pthread_mutex_lock(&lock);
	d->queries[d->any_records ? DQ_OK : DQ_EMPTY]++;
	if (d->fail_ms)
		log_info("discovery: pool=%s: %s answers again", d->pool,
			 d->cfg.name);
	d->fail_ms = 0;
	d->held_out = false;
	d->answer_ms = now;
	d->ttl = d->round_ttl;
	json_decref(d->records);
	d->records = records_json(d, set, n);
	pthread_mutex_unlock(&lock);
	if (n == 0 && !d->any_records)
		log_warn("discovery: pool=%s: %s has no records: the pool has "
			 "no discovered backends", d->pool, d->cfg.name);
	d->backoff_ms = 0;
	{
		uint64_t ms = (uint64_t)d->round_ttl * 1000;

		if (ms < d->cfg.min_ttl_ms)
			ms = d->cfg.min_ttl_ms;
		if (ms > d->cfg.max_ttl_ms)
			ms = d->cfg.max_ttl_ms;
		d->next_ms = now + ms;
	}
	pthread_mutex_lock(&lock);
	d->shown_next_ms = d->next_ms;
	pthread_mutex_unlock(&lock);
	if (set)
		apply(d, set, n);
}

/* ---- the thread ---- */

static struct disc *
disc_new(const char *pool, const struct cfg_discover *cfg)
{
	struct disc *d = calloc(1, sizeof(*d));
	struct ares_options o;
	int rc;

	if (!d)
		return NULL;
	snprintf(d->pool, sizeof(d->pool), "%s", pool);
	d->cfg = *cfg;
	memset(&o, 0, sizeof(o));
	o.timeout = QUERY_TIMEOUT_MS;
	o.tries = 2;
	o.flags = ARES_FLAG_EDNS;
	o.ednspsz = EDNS_SIZE;
	rc = ares_init_options(&d->ch, &o,
			       ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
				       ARES_OPT_FLAGS | ARES_OPT_EDNSPSZ);
	if (rc == ARES_SUCCESS && cfg->resolvers[0])
		rc = ares_set_servers_ports_csv(d->ch, cfg->resolvers);
	if (rc != ARES_SUCCESS) {
		log_error("discovery: pool=%s: cannot set up the resolver: %s",
			  pool, ares_strerror(rc));
		if (d->ch)
			ares_destroy(d->ch);
		free(d);
		return NULL;
	}
	d->alive = true;
	return d;
}

static void
disc_free(struct disc *d)
{
	ares_destroy(d->ch);	/* callbacks run now, with EDESTRUCTION */
	free(d->round.r);
	free(d->extra.r);
	free(d->set);
	json_decref(d->records);
	free(d);
}

/* Take up what discover_follow() asked: new pools start at once. */
static void
follow_wants(void)
{
	struct disc **pp, *gone = NULL;

	pthread_mutex_lock(&lock);
	if (!wants_new) {
		pthread_mutex_unlock(&lock);
		return;
	}
	wants_new = false;
	for (struct disc *d = discs; d; d = d->next)
		d->alive = false;
	for (size_t i = 0; i < nwants; i++) {
		struct disc *d;

		for (d = discs; d; d = d->next)
			if (strcmp(d->pool, wants[i].pool) == 0 &&
			    cfg_same(&d->cfg, &wants[i].cfg))
				break;
		if (d) {
			d->alive = true;
			d->cfg = wants[i].cfg;	/* TTL bounds, hold may change */
			continue;
		}
		d = disc_new(wants[i].pool, &wants[i].cfg);
		if (d) {
			d->next = discs;
			discs = d;
		}
	}
	for (pp = &discs; *pp;) {
		struct disc *d = *pp;

		if (d->alive) {
			pp = &d->next;
			continue;
		}
		*pp = d->next;
		d->next = gone;
		gone = d;
	}
	pthread_mutex_unlock(&lock);
	while (gone) {
		struct disc *next = gone->next;

		disc_free(gone);
		gone = next;
	}
}

static void *
run(void *arg)
{
	struct pollfd *pfd = NULL;
	struct disc **owner = NULL;
	size_t cap = 0;

	(void)arg;
	pthread_setname_np(pthread_self(), "ringlb-dns");
	while (!atomic_load(&stopping)) {
		uint64_t now = control_now_ms(), until = UINT64_MAX;
		size_t n = 1, want = 1;
		int timeout;

		follow_wants();
		/* Room for every socket of every channel, and the wake fd. */
		for (struct disc *d = discs; d; d = d->next)
			want += ARES_GETSOCK_MAXNUM;
		if (want > cap) {
			struct pollfd *np = realloc(pfd, want * sizeof(*pfd));
			struct disc **no = np ? realloc(owner, want *
							 sizeof(*owner)) :
					       NULL;

			if (np)
				pfd = np;
			if (no) {
				owner = no;
				cap = want;
			} else {
				log_error("discovery: out of memory");
				sleep(1);
				continue;
			}
		}
		pfd[0].fd = wake_fd;
		pfd[0].events = POLLIN;
		/* Only this thread changes the list: no lock to read it. */
		for (struct disc *d = discs; d; d = d->next) {
			ares_socket_t socks[ARES_GETSOCK_MAXNUM];
			struct timeval tv, *tp;
			int bits;

			if (d->pending == 0 && d->next_ms <= now)
				round_start(d, now);
			if (d->pending == 0) {
				if (until > d->next_ms)
					until = d->next_ms;
				continue;
			}
			bits = ares_getsock(d->ch, socks, ARES_GETSOCK_MAXNUM);
			for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
				short ev = 0;

				/* Not c-ares' macros: 1 << 31 on an int. */
				if ((unsigned)bits & 1u << i)
					ev |= POLLIN;
				if ((unsigned)bits &
				    1u << (i + ARES_GETSOCK_MAXNUM))
					ev |= POLLOUT;
				if (!ev)
					continue;
				pfd[n].fd = socks[i];
				pfd[n].events = ev;
				owner[n++] = d;
			}
			tp = ares_timeout(d->ch, NULL, &tv);
			if (tp) {
				uint64_t t = now + (uint64_t)tp->tv_sec * 1000 +
					     (uint64_t)tp->tv_usec / 1000;

				if (until > t)
					until = t;
			}
		}
		/* Nothing due and nothing in flight: wait for a wake-up. */
		timeout = until == UINT64_MAX ? -1 :
			  until > now ? (int)(until - now) : 0;
		if (poll(pfd, n, timeout) < 0 && errno != EINTR)
			log_error("discovery: poll: %s", strerror(errno));
		if (pfd[0].revents & POLLIN) {
			uint64_t v;

			if (read(wake_fd, &v, sizeof(v)) < 0)
				v = 0;
		}
		for (size_t i = 1; i < n; i++) {
			if (!pfd[i].revents)
				continue;
			bool rd = (pfd[i].revents & (POLLIN | POLLERR |
						     POLLHUP)) != 0;
			bool wr = (pfd[i].revents & POLLOUT) != 0;

			ares_process_fd(owner[i]->ch,
					rd ? pfd[i].fd : ARES_SOCKET_BAD,
					wr ? pfd[i].fd : ARES_SOCKET_BAD);
		}
		/* Timeouts: every channel with a query in flight. */
		for (struct disc *d = discs; d; d = d->next)
			if (d->pending)
				ares_process_fd(d->ch, ARES_SOCKET_BAD,
						ARES_SOCKET_BAD);
	}
	free(pfd);
	free(owner);
	return NULL;
}

/* The discovering pools of rt, for the thread to follow. */
static void
set_wants(const struct runtime *rt)
{
	struct want *w = calloc(rt->npools ? rt->npools : 1, sizeof(*w));
	size_t n = 0;

	if (!w) {
		log_error("discovery: out of memory");
		return;
	}
	for (size_t i = 0; i < rt->npools; i++) {
		const struct cfg_pool *p = rt->pools[i].cfg;

		if (!p->discover.enabled)
			continue;
		snprintf(w[n].pool, sizeof(w[n].pool), "%s", p->name);
		w[n++].cfg = p->discover;
	}
	pthread_mutex_lock(&lock);
	free(wants);
	wants = w;
	nwants = n;
	wants_new = true;
	pthread_mutex_unlock(&lock);
}

static bool
any_discovers(const struct runtime *rt)
{
	for (size_t i = 0; i < rt->npools; i++)
		if (rt->pools[i].cfg->discover.enabled)
			return true;
	return false;
}

/* The thread and its wake-up fd, on rt's pools.  0 or -errno. */
static int
thread_start(const struct runtime *rt)
{
	int rc = ares_library_init(ARES_LIB_INIT_ALL);

	if (rc != ARES_SUCCESS) {
		log_error("discovery: c-ares: %s", ares_strerror(rc));
		return -EIO;
	}
	wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (wake_fd < 0) {
		rc = -errno;
		ares_library_cleanup();
		return rc;
	}
	set_wants(rt);
	atomic_store(&stopping, false);
	/* Before the thread: its first answer may call discover_follow(). */
	atomic_store(&running, true);
	rc = pthread_create(&thread, NULL, run, NULL);
	if (rc) {
		atomic_store(&running, false);
		close(wake_fd);
		wake_fd = -1;
		ares_library_cleanup();
		return -rc;
	}
	return 0;
}

/*
 * A config without a discovering pool costs no thread and no fd: the
 * thread starts with the first generation that has one (a reload may
 * bring it), and then follows every later one.
 */
int
discover_start(const struct runtime *rt)
{
	atomic_store(&armed, true);
	return any_discovers(rt) ? thread_start(rt) : 0;
}

void
discover_follow(const struct runtime *rt)
{
	if (!atomic_load(&running)) {
		/* Only the control thread gets here (the DNS thread calls
		 * this only while it runs), so no race with thread_start. */
		if (atomic_load(&armed) && any_discovers(rt) && thread_start(rt) < 0)
			log_error("discovery: cannot start the DNS thread: "
				  "no backends from DNS until the next reload");
		return;
	}
	set_wants(rt);
	wake();
}

void
discover_stop(void)
{
	atomic_store(&armed, false);
	if (!atomic_load(&running))
		return;
	atomic_store(&stopping, true);
	wake();
	pthread_join(thread, NULL);
	atomic_store(&running, false);
	while (discs) {
		struct disc *d = discs;

		discs = d->next;
		disc_free(d);
	}
	free(wants);
	wants = NULL;
	nwants = 0;
	close(wake_fd);
	wake_fd = -1;
	ares_library_cleanup();
}

void
discover_inject(struct config *cfg)
{
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < cfg->npools; i++) {
		struct cfg_pool *p = &cfg->pools[i];

		if (!p->discover.enabled)
			continue;
		for (struct disc *d = discs; d; d = d->next)
			if (strcmp(d->pool, p->name) == 0 &&
			    cfg_same(&d->cfg, &p->discover) && d->nset &&
			    cfg_set_discovered(p, d->set, d->nset) < 0)
				log_error("discovery: pool=%s: out of memory "
					  "keeping its backends over the "
					  "reload",
					  p->name);
	}
	pthread_mutex_unlock(&lock);
}

json_t *
discover_json(const char *pool)
{
	uint64_t now = control_now_ms();
	json_t *j = NULL, *q;

	pthread_mutex_lock(&lock);
	for (struct disc *d = discs; d && !j; d = d->next) {
		if (strcmp(d->pool, pool) != 0)
			continue;
		q = json_object();
		for (int i = 0; i < DQ_MAX; i++)
			json_object_set_new(q, dq_names[i],
					    json_integer((json_int_t)
								 d->queries[i]));
		j = json_pack("{s:s,s:s,s:i,s:s,s:o,s:I,s:i,s:s,s:I,s:b,s:i,"
			      "s:o}",
			      "name", d->cfg.name, "type",
			      d->cfg.srv ? "srv" : "a", "port",
			      (int)d->cfg.port, "resolvers",
			      d->cfg.resolvers[0] ? d->cfg.resolvers :
						    "/etc/resolv.conf",
			      /* A copy: jansson's objects are not for two
			       * threads at once, even read. */
			      "records",
			      d->records ? json_deep_copy(d->records) :
					   json_array(),
			      "answer_age_ms",
			      d->answer_ms ? (json_int_t)(now - d->answer_ms) :
					     (json_int_t)-1,
			      "ttl_s", (int)d->ttl, "last_error", d->error,
			      "next_query_ms",
			      (json_int_t)(d->shown_next_ms > now ?
						   d->shown_next_ms - now :
						   0),
			      "holding", d->fail_ms && !d->held_out,
			      "backends", (int)d->nset, "queries", q);
	}
	pthread_mutex_unlock(&lock);
	return j;
}

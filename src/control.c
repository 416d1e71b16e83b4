/*
 * control.c: start-up, reload, operator changes and reclamation (see
 * control.h).
 *
 * Generations: a reload builds a new runtime next to the running one,
 * publishes it with one release store and wakes the workers.  The old
 * runtime is freed by control_reclaim() once every worker reports a newer
 * generation and no connection accepted under the old one is left: workers
 * never take a lock, and no connection ever sees its pool or config freed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "balancer.h"
#include "config.h"
#include "control.h"
#include "discover.h"
#include "health.h"
#include "log.h"
#include "listen.h"
#include "runtime.h"
#include "priv.h"
#include "systemd.h"
#include "upgrade.h"
#include "worker.h"

struct deferred {
	void *ptr;
	uint64_t *qs;		/* each worker's counter when deferred */
	struct deferred *next;
};

#define WORKERS_LIMIT 256	/* config.c's cap on "workers" */

static pthread_mutex_t ctl_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(struct runtime *) current;
static struct worker **workers;
static unsigned nworkers;
static struct runtime *retired;
static struct deferred *deferred;
static char *config_path;
static bool log_verbose;
static struct cfg_admin admin_cfg;
static uint64_t start_ms;
static uint64_t reloads;
static uint64_t reload_failures;

uint64_t
control_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct runtime *
runtime_current(void)
{
	return atomic_load_explicit(&current, memory_order_acquire);
}

void
control_lock(void)
{
	pthread_mutex_lock(&ctl_lock);
}

void
control_unlock(void)
{
	pthread_mutex_unlock(&ctl_lock);
}

/* rt's listener that keeps socket lid, or NULL. */
static const struct listener *
lid_find(const struct runtime *rt, uint64_t lid)
{
	for (size_t i = 0; rt && i < rt->nlisteners; i++)
		if (rt->listeners[i].lid == lid)
			return &rt->listeners[i];
	return NULL;
}

static bool
lid_in(const struct runtime *rt, uint64_t lid)
{
	return lid_find(rt, lid) != NULL;
}

static bool
addr_in(const struct runtime *rt, const struct cfg_addr *a)
{
	for (size_t i = 0; rt && i < rt->nlisteners; i++) {
		if (cfg_addr_same(a, &rt->listeners[i].cfg->addr))
			return true;
	}
	return false;
}

/*
 * How long a start waits for a busy listen address. A ringlb that was
 * killed leaves its listening sockets open for a few milliseconds after it
 * has been reaped, until the kernel tears its rings down (6-9 ms measured
 * here after SIGKILL, longer on a loaded machine): a restart right after it
 * must not fail on them. A reload does not wait; it fails at once.
 */
#define START_BUSY_WAIT_MS 2000

static int
listen_wait_free(const struct cfg_listener *l, bool starting, char *err,
		 size_t errlen)
{
	struct timespec pause = { 0, 20 * 1000 * 1000 };
	int waited = 0;

	for (;;) {
		int rc = listen_probe(l, err, errlen);

		if (rc == 0 || !starting || waited >= START_BUSY_WAIT_MS)
			return rc;
		if (waited == 0)
			log_info("listener %s: %s is in use; waiting up to "
				 "%d ms for it to be released", l->name,
				 l->addr.text, START_BUSY_WAIT_MS);
		nanosleep(&pause, NULL);
		waited += 20;
	}
}

/* Open one socket per worker for every listener that prev does not have. */
static int
open_sockets(struct runtime *rt, const struct runtime *prev, char *err,
	     size_t errlen)
{
	for (size_t i = 0; i < rt->nlisteners; i++) {
		struct listener *p = &rt->listeners[i];

		if (lid_in(prev, p->lid))
			continue;
		/* Unless one of ours holds the address (a renamed listener),
		 * or the process we upgrade from hands its sockets on. */
		if (!addr_in(prev, &p->cfg->addr) &&
		    !upgrade_has_listener(p->cfg) &&
		    listen_wait_free(p->cfg, prev == NULL, err, errlen) < 0)
			return -EADDRINUSE;
		for (unsigned w = 0; w < rt->nworkers; w++) {
			int rc = 0;

			p->fds[w] = upgrade_listen_fd(p->cfg, w);
			if (p->fds[w] < 0)
				rc = listen_open(p->cfg, &p->fds[w], err,
						 errlen);
			p->wfd[w] = p->fds[w];

			if (rc == -EACCES && priv_user()) {
				size_t n = strlen(err);

				snprintf(err + n, errlen - n,
					 " (ringlb runs as user %s since "
					 "start-up and cannot bind privileged "
					 "ports: restart it to listen there)",
					 priv_user());
			}
			if (rc < 0)
				return rc;
		}
	}
	/*
	 * Kept sockets too: a reload may turn client_speaks_first on or off
	 * and change tcp_congestion.
	 */
	for (size_t i = 0; i < rt->nlisteners; i++) {
		struct listener *p = &rt->listeners[i];
		const struct listener *was = lid_find(prev, p->lid);

		for (unsigned w = 0; w < rt->nworkers; w++) {
			if (p->wfd[w] < 0)
				continue;
			if (listen_set_defer(p->wfd[w], p->cfg->client_first) < 0)
				log_warn("listener %s: TCP_DEFER_ACCEPT: %s",
					 p->cfg->name, strerror(errno));
			/*
			 * Only when set, or just unset: a socket left alone
			 * follows the system's default as it changes.
			 */
			if ((p->cfg->tcp_cc[0] || (was && was->cfg->tcp_cc[0])) &&
			    listen_set_congestion(p->wfd[w], p->cfg->tcp_cc) < 0)
				log_warn("listener %s: tcp_congestion %s: %s",
					 p->cfg->name,
					 p->cfg->tcp_cc[0] ? p->cfg->tcp_cc :
							     "(default)",
					 strerror(errno));
		}
	}
	return 0;
}

static struct runtime *
runtime_build(struct config *cfg, const struct runtime *prev, char *err,
	      size_t errlen)
{
	struct runtime *rt = malloc(sizeof(*rt));
	int rc;

	if (!rt) {
		snprintf(err, errlen, "out of memory");
		cfg_free(cfg);
		return NULL;
	}
	rc = runtime_init(rt, cfg, nworkers, prev);
	if (rc < 0) {
		snprintf(err, errlen, "cannot build the runtime: %s",
			 strerror(-rc));
		free(rt);
		cfg_free(cfg);
		return NULL;
	}
	if (open_sockets(rt, prev, err, errlen) < 0) {
		runtime_abort(rt);
		free(rt);
		return NULL;
	}
	return rt;
}

static bool workers_past_gen(uint64_t gen);

int
control_start(struct config *cfg, const char *path, bool verbose, char *err,
	      size_t errlen)
{
	struct runtime *rt;
	int rc;

	start_ms = control_now_ms();
	log_verbose = verbose;
	admin_cfg = cfg->admin;
	config_path = strdup(path);
	/* Upgraded: the old process's sockets, one per worker it had. */
	if (upgrade_workers() && cfg->workers != upgrade_workers()) {
		log_warn("upgrade: keeping the running process's %u workers "
			 "(the file says %u; that takes a restart)",
			 upgrade_workers(), cfg->workers);
		cfg->workers = upgrade_workers();
	}
	nworkers = cfg->workers;
	workers = calloc(nworkers, sizeof(*workers));
	if (!config_path || !workers) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	upgrade_discovered(cfg);
	rt = runtime_build(cfg, NULL, err, errlen);
	if (!rt)
		return -EINVAL;
	/* Before the health checker starts from it. */
	upgrade_apply_state(rt);
	atomic_store_explicit(&current, rt, memory_order_release);
	/* Every port and the admin socket are bound; no thread runs yet. */
	rc = priv_drop(rt->cfg, err, errlen);
	if (rc < 0)
		return rc;
	for (unsigned i = 0; i < nworkers; i++) {
		rc = worker_create(i, rt->cfg->shutdown_grace_ms,
				   rt->cfg->recv_buffers, &workers[i], err,
				   errlen);
		if (rc < 0)
			return rc;
	}
	rc = health_start(rt);
	if (rc < 0) {
		snprintf(err, errlen, "cannot start the health checker: %s",
			 strerror(-rc));
		return rc;
	}
	for (unsigned i = 0; i < nworkers; i++) {
		rc = worker_start(workers[i]);
		if (rc < 0) {
			snprintf(err, errlen,
				 "worker %u: cannot set up io_uring: %s", i,
				 strerror(-rc));
			return rc;
		}
	}
	/*
	 * Discovery publishes generations; the first one's sockets go to the
	 * workers only as they switch to it, so they do that first.
	 */
	for (int i = 0; i < 5000 && !workers_past_gen(rt->gen - 1); i++) {
		struct timespec ms = { .tv_sec = 0, .tv_nsec = 1000000 };

		nanosleep(&ms, NULL);
	}
	rc = discover_start(rt);
	if (rc < 0) {
		snprintf(err, errlen, "cannot start DNS discovery: %s",
			 strerror(-rc));
		return rc;
	}
	return 0;
}

static bool
workers_past_gen(uint64_t gen)
{
	for (unsigned i = 0; i < nworkers; i++)
		if (workers[i] && !worker_done(workers[i]) &&
		    worker_seen_gen(workers[i]) <= gen)
			return false;
	return true;
}

void
control_defer_free(void *p)
{
	struct deferred *d = malloc(sizeof(*d));

	if (d)
		d->qs = calloc(nworkers, sizeof(*d->qs));
	if (!d || !d->qs) {
		/* Cannot track it safely: leaking beats a use after free. */
		log_error("out of memory deferring a free");
		free(d);
		return;
	}
	d->ptr = p;
	for (unsigned i = 0; i < nworkers; i++)
		d->qs[i] = workers[i] ? worker_qs(workers[i]) : 0;
	d->next = deferred;
	deferred = d;
}

static void
reclaim_locked(bool all)
{
	struct runtime **rp = &retired;
	struct deferred **dp = &deferred;

	while (*rp) {
		struct runtime *r = *rp;

		if (all || (workers_past_gen(r->gen) && runtime_conns(r) == 0)) {
			*rp = r->retired_next;
			log_debug("generation %llu freed",
				  (unsigned long long)r->gen);
			runtime_fini(r);
			free(r);
		} else {
			rp = &r->retired_next;
		}
	}
	while (*dp) {
		struct deferred *d = *dp;
		bool quiet = true;

		for (unsigned i = 0; i < nworkers && !all && quiet; i++)
			quiet = !workers[i] || worker_done(workers[i]) ||
				worker_qs(workers[i]) != d->qs[i];
		if (quiet) {
			*dp = d->next;
			free(d->ptr);
			free(d->qs);
			free(d);
		} else {
			dp = &d->next;
		}
	}
}

void
control_reclaim(void)
{
	control_lock();
	reclaim_locked(false);
	control_unlock();
}

static bool
admin_same(const struct cfg_admin *a, const struct cfg_admin *b)
{
	return a->enabled == b->enabled && a->mode == b->mode &&
	       strcmp(a->socket, b->socket) == 0 &&
	       a->has_listen == b->has_listen &&
	       (!a->has_listen || strcmp(a->listen.text, b->listen.text) == 0) &&
	       strcmp(a->token, b->token) == 0 &&
	       a->nallowed_hosts == b->nallowed_hosts &&
	       memcmp(a->allowed_hosts, b->allowed_hosts,
		      sizeof(a->allowed_hosts)) == 0;
}

/*
 * "generation 3: 2 listeners, 4 pools, 11 of 12 backends up, 153 open
 * connections", for systemd's STATUS=.  With the lock held.
 */
static void
status_line_locked(char *out, size_t size)
{
	const struct runtime *rt = runtime_current();
	size_t nb = 0, up = 0;
	unsigned open = 0;

	if (!rt) {
		snprintf(out, size, "starting");
		return;
	}
	for (size_t i = 0; i < rt->npools; i++)
		for (size_t j = 0; j < rt->pools[i].nbackends; j++) {
			nb++;
			up += backend_is_up(rt->pools[i].backends[j]);
		}
	for (size_t i = 0; i < rt->nlisteners; i++)
		open += atomic_load(&rt->listeners[i].stats->active);
	snprintf(out, size,
		 "generation %llu: %zu listeners, %zu pools, %zu of %zu "
		 "backends up, %u open connections%s",
		 (unsigned long long)rt->gen, rt->nlisteners, rt->npools, up,
		 nb, open,
		 control_withdrawn_ms() ? "; withdrawn (GET /ready: 503)" : "");
}

/* rt, built from cur, becomes the current generation. */
static void
publish_locked(struct runtime *cur, struct runtime *rt)
{
	/* The checker goes on with what it knew of every carried backend. */
	int rc = health_reload(cur, rt);

	if (rc < 0)
		log_error("cannot restart the health checker: %s",
			  strerror(-rc));
	atomic_store_explicit(&current, rt, memory_order_release);
	for (unsigned i = 0; i < nworkers; i++) {
		worker_set_grace(workers[i], rt->cfg->shutdown_grace_ms);
		worker_wake(workers[i]);
	}
	cur->retired_next = retired;
	retired = cur;
	discover_follow(rt);
}

int
control_discovered(const char *pool, const struct cfg_discover *spec,
		   const struct cfg_backend *set, size_t n)
{
	struct runtime *cur, *rt;
	struct config *cfg;
	struct cfg_pool *p = NULL;
	char err[256];
	size_t before;

	control_lock();
	cur = runtime_current();
	for (size_t i = 0; i < cur->cfg->npools && !p; i++)
		if (strcmp(cur->cfg->pools[i].name, pool) == 0)
			p = &cur->cfg->pools[i];
	/* Reloaded meanwhile into something else: that one asks anew. */
	if (!p || !p->discover.enabled || p->discover.srv != spec->srv ||
	    p->discover.port != spec->port ||
	    strcmp(p->discover.name, spec->name) != 0 ||
	    strcmp(p->discover.resolvers, spec->resolvers) != 0) {
		control_unlock();
		return -ESTALE;
	}
	before = p->nbackends - p->nstatic;
	cfg = cfg_clone(cur->cfg);
	p = cfg ? &cfg->pools[p - cur->cfg->pools] : NULL;
	if (!cfg || cfg_set_discovered(p, set, n) < 0) {
		cfg_free(cfg);
		control_unlock();
		log_error("discovery: pool=%s: out of memory for %zu backends",
			  pool, n);
		return -ENOMEM;
	}
	rt = runtime_build(cfg, cur, err, sizeof(err));
	if (!rt) {
		control_unlock();
		log_error("discovery: pool=%s: %s", pool, err);
		return -ENOMEM;
	}
	publish_locked(cur, rt);
	log_info("discovery: pool=%s: %zu discovered backends (%zu before), "
		 "generation %llu",
		 pool, p->nbackends - p->nstatic, before,
		 (unsigned long long)rt->gen);
	control_unlock();
	return 0;
}

int
control_reload(char *err, size_t errlen)
{
	struct runtime *cur, *rt;
	struct config *cfg;
	char status[256];
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	systemd_notify("RELOADING=1\nMONOTONIC_USEC=%llu",
		       (unsigned long long)ts.tv_sec * 1000000ULL +
			       (unsigned long long)ts.tv_nsec / 1000);
	control_lock();
	cur = runtime_current();
	if (cfg_load(config_path, &cfg, err, errlen) < 0)
		goto fail;
	if (cfg->workers != nworkers) {
		log_warn("reload: workers %u -> %u takes effect at restart",
			 nworkers, cfg->workers);
		cfg->workers = nworkers;
	}
	if (cfg->recv_buffers != cur->cfg->recv_buffers) {
		log_warn("reload: recv_buffers %u -> %u takes effect at restart",
			 cur->cfg->recv_buffers, cfg->recv_buffers);
		cfg->recv_buffers = cur->cfg->recv_buffers;
	}
	if (!admin_same(&cfg->admin, &admin_cfg))
		log_warn("reload: admin settings change at restart");
	priv_reload_check(cfg);
	/* Backends DNS brought stay, until the next answer says otherwise. */
	discover_inject(cfg);
	rt = runtime_build(cfg, cur, err, errlen);
	if (!rt)
		goto fail;

	if (!log_verbose)
		log_set_level(rt->cfg->log_level);
	log_set_format(rt->cfg->log_format);
	publish_locked(cur, rt);
	reloads++;
	log_info("reloaded %s: generation %llu, %zu listeners, %zu pools",
		 config_path, (unsigned long long)rt->gen, rt->nlisteners,
		 rt->npools);
	status_line_locked(status, sizeof(status));
	control_unlock();
	systemd_notify("READY=1\nSTATUS=%s", status);
	return 0;

fail:
	reload_failures++;
	log_error("reload failed, keeping the running configuration: %s", err);
	status_line_locked(status, sizeof(status));
	control_unlock();
	systemd_notify("READY=1\nSTATUS=reload failed, running as before: %s",
		       status);
	return -1;
}

void
control_adopt(struct handover *h)
{
	static unsigned next;
	struct worker *w = nworkers ? workers[next++ % nworkers] : NULL;

	if (!w) {
		close(h->fd[0]);
		close(h->fd[1]);
		free(h);
		return;
	}
	worker_adopt(w, h);
}

bool
control_accept_off(unsigned wait_ms)
{
	uint64_t until = control_now_ms() + wait_ms;
	bool listening;

	for (unsigned i = 0; i < nworkers; i++)
		if (workers[i])
			worker_accept_off(workers[i]);
	for (;;) {
		struct timespec ms = { .tv_sec = 0, .tv_nsec = 1000000 };

		listening = false;
		for (unsigned i = 0; i < nworkers && !listening; i++)
			listening = workers[i] && !worker_done(workers[i]) &&
				    worker_listening(workers[i]);
		if (!listening || control_now_ms() >= until)
			return !listening;
		nanosleep(&ms, NULL);
	}
}

void
control_kick_accept(void)
{
	for (unsigned i = 0; i < nworkers; i++)
		if (workers[i])
			worker_kick(workers[i]);
}

void
control_handover(uint64_t until_ms)
{
	for (unsigned i = 0; i < nworkers; i++)
		if (workers[i])
			worker_handover(workers[i], until_ms);
}

unsigned
control_open_conns(void)
{
	unsigned n;

	control_lock();
	n = runtime_current() ? runtime_conns(runtime_current()) : 0;
	for (struct runtime *r = retired; r; r = r->retired_next)
		n += runtime_conns(r);
	control_unlock();
	return n;
}

void
control_status_line(char *out, size_t size)
{
	control_lock();
	status_line_locked(out, size);
	control_unlock();
}

bool
control_workers_progress(uint64_t now_ms, uint64_t max_age_ms)
{
	static uint64_t last_qs[WORKERS_LIMIT], changed_ms[WORKERS_LIMIT];
	bool ok = true;

	for (unsigned i = 0; i < nworkers && i < WORKERS_LIMIT; i++) {
		uint64_t qs;

		if (!workers[i] || worker_done(workers[i]))
			continue;
		qs = worker_qs(workers[i]);
		if (qs != last_qs[i] || !changed_ms[i]) {
			last_qs[i] = qs;
			changed_ms[i] = now_ms;
		} else if (now_ms - changed_ms[i] > max_age_ms) {
			ok = false;
		}
	}
	return ok;
}

static int
find_backend(const char *l, const char *b, struct pool **pp,
	     struct backend **bp, char *err, size_t errlen)
{
	struct pool *p = runtime_pool(runtime_current(), l);

	if (!p) {
		snprintf(err, errlen, "unknown pool \"%s\"", l);
		return -ENOENT;
	}
	*bp = pool_backend(p, b);
	if (!*bp) {
		snprintf(err, errlen, "unknown backend \"%s\" in pool \"%s\"",
			 b, l);
		return -ENOENT;
	}
	*pp = p;
	return 0;
}

int
control_set_admin(const char *l, const char *b, int admin, bool close_conns,
		  unsigned *closing, char *err, size_t errlen)
{
	struct backend *be;
	struct pool *p;
	int old, rc;

	if (admin < ADMIN_READY || admin > ADMIN_MAINT) {
		snprintf(err, errlen, "bad state");
		return -EINVAL;
	}
	control_lock();
	rc = find_backend(l, b, &p, &be, err, errlen);
	if (rc < 0)
		goto out;
	old = atomic_exchange(&be->admin, admin);
	if (old != admin)
		atomic_store(&be->since_ms, control_now_ms());
	/* Back from drain or maint: slow start (if the pool has it). */
	if (old != ADMIN_READY && admin == ADMIN_READY)
		backend_ramp_begin(be, control_now_ms());
	if (closing)
		*closing = 0;
	if (close_conns) {
		if (closing)
			*closing = atomic_load(&be->active);
		atomic_fetch_add(&be->kill_gen, 1);
	}
	log_info("admin: pool=%s backend=%s %s -> %s%s", l, b,
		 backend_admin_name(old), backend_admin_name(admin),
		 close_conns ? ", closing its connections" : "");
out:
	control_unlock();
	return rc;
}

int
control_set_weight(const char *l, const char *b, unsigned weight, char *err,
		   size_t errlen)
{
	struct backend *be;
	struct pool *p;
	unsigned old;
	int rc;

	if (weight < 1 || weight > CFG_WEIGHT_MAX) {
		snprintf(err, errlen, "weight must be from 1 to %d",
			 CFG_WEIGHT_MAX);
		return -EINVAL;
	}
	control_lock();
	rc = find_backend(l, b, &p, &be, err, errlen);
	if (rc < 0)
		goto out;
	old = atomic_exchange(&be->weight, weight);
	be->weight_override = true;
	if (p->ops->reweight) {
		void *garbage = p->ops->reweight(p);

		if (garbage)
			control_defer_free(garbage);
	}
	log_info("admin: pool=%s backend=%s weight %u -> %u", l, b, old,
		 weight);
out:
	control_unlock();
	return rc;
}

struct split *
control_split(const char *l, const char *route, char *err, size_t errlen)
{
	struct runtime *rt = runtime_current();
	const struct listener *ls = runtime_listener(rt, l);
	struct split *s;

	if (!ls) {
		snprintf(err, errlen, "unknown listener \"%s\"", l);
		return NULL;
	}
	s = runtime_split(rt, l, route);
	if (s)
		return s;
	if (!route || !route[0])
		snprintf(err, errlen,
			 "listener \"%s\" has no split of its own", l);
	else if (ls->cfg->nroutes == 0)
		snprintf(err, errlen, "listener \"%s\" has no routes", l);
	else
		snprintf(err, errlen,
			 "listener \"%s\" has no route with a split for "
			 "server name \"%s\" (use the name as written in "
			 "the file, e.g. \"*.example.org\")",
			 l, route);
	return NULL;
}

int
control_set_split(const char *l, const char *route,
		  const char *const *pools, const unsigned *weights, size_t n,
		  bool reset, char *err, size_t errlen)
{
	unsigned before[CFG_SPLIT_MAX] = { 0 };
	char change[512];
	struct split *s;
	size_t o = 0;
	int rc = 0;

	control_lock();
	s = control_split(l, route, err, errlen);
	if (!s) {
		rc = -ENOENT;
		goto out;
	}
	for (size_t i = 0; i < s->nsides; i++)
		before[i] = atomic_load(&s->st->n[i].weight);
	if (reset)
		split_reset(s, control_now_ms());
	else
		rc = split_set(s, pools, weights, n, control_now_ms(), err,
			       errlen);
	if (rc < 0)
		goto out;
	change[0] = '\0';
	for (size_t i = 0; i < s->nsides && o < sizeof(change); i++)
		o += (size_t)snprintf(change + o, sizeof(change) - o,
				      "%s%s %u -> %u", i ? ", " : "",
				      s->st->pool[i], before[i],
				      atomic_load(&s->st->n[i].weight));
	log_info("admin: listener=%s%s%s split %s%s", l,
		 route && route[0] ? " route=" : "", route ? route : "",
		 change, reset ? " (the file's weights)" : "");
out:
	control_unlock();
	return rc;
}

void
control_get_stats(struct control_stats *st)
{
	st->start_ms = start_ms;
	st->reloads = reloads;
	st->reload_failures = reload_failures;
	st->nworkers = nworkers;
}

uint64_t
control_worker_accepts(unsigned i)
{
	return i < nworkers && workers[i] ? worker_accepts(workers[i]) : 0;
}

bool
control_workers_done(void)
{
	for (unsigned i = 0; i < nworkers; i++)
		if (workers[i] && !worker_done(workers[i]))
			return false;
	return true;
}

/* ---- readiness (GET /ready) ---- */

static atomic_bool serving, stopping;
/* When an operator withdrew this instance (control_now_ms()), or 0. */
static _Atomic uint64_t withdrawn_ms;

enum readiness
control_readiness(void)
{
	if (atomic_load(&stopping))
		return READY_STOPPING;
	if (!atomic_load(&serving))
		return READY_STARTING;
	return atomic_load(&withdrawn_ms) ? READY_WITHDRAWN : READY_SERVING;
}

const char *
control_readiness_name(enum readiness r)
{
	static const char *const names[] = {
		[READY_STARTING] = "starting",
		[READY_SERVING] = "serving",
		[READY_WITHDRAWN] = "withdrawn",
		[READY_STOPPING] = "stopping",
	};

	return names[r];
}

void
control_set_serving(void)
{
	atomic_store(&serving, true);
}

bool
control_withdraw(bool on)
{
	uint64_t now = control_now_ms(), was = 0;

	if (on) {
		/* 0 means "not withdrawn"; the first withdraw's time stays. */
		if (!atomic_compare_exchange_strong(&withdrawn_ms, &was,
						    now ? now : 1))
			return false;
		log_warn("withdrawn: GET /ready answers 503 until a rejoin; "
			 "connections are served and accepted as before");
		return true;
	}
	was = atomic_exchange(&withdrawn_ms, 0);
	if (!was)
		return false;
	log_info("rejoined: GET /ready answers 200 again (withdrawn for "
		 "%llu ms)",
		 (unsigned long long)(now - was));
	return true;
}

uint64_t
control_withdrawn_ms(void)
{
	return atomic_load(&withdrawn_ms);
}

void
control_stop_begin(unsigned grace_ms)
{
	atomic_store(&stopping, true);
	for (unsigned i = 0; i < nworkers; i++)
		if (workers[i])
			worker_stop(workers[i], grace_ms);
}

void
control_stop_now(void)
{
	control_stop_begin(0);
}

void
control_finish(void)
{
	struct runtime *rt;

	/* First: its answers publish generations, which need the workers. */
	discover_stop();
	for (unsigned i = 0; i < nworkers; i++)
		worker_destroy(workers[i]);
	control_lock();
	rt = runtime_current();
	if (rt) {
		health_stop(rt);
		atomic_store(&current, NULL);
		rt->retired_next = retired;
		retired = rt;
	}
	reclaim_locked(true);
	free(workers);
	workers = NULL;
	nworkers = 0;
	free(config_path);
	config_path = NULL;
	control_unlock();
}

/*
 * health.c: active health checks.
 *
 * One thread owns every probe.  Idle backends wait in a min-heap ordered by
 * the time their next probe is due; at most HEALTH_MAX_INFLIGHT probes are
 * open at once, and all of them are multiplexed with ppoll() together with an
 * eventfd that health_stop() writes to.  A probe is a non-blocking connect,
 * an optional send and an optional read of the expected reply prefix, all
 * under one deadline.  Results go through the backend's rise/fall state
 * machine and only its transitions are published to backend->up, with a
 * release store: workers read it with acquire and never take a lock.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "health.h"
#include "log.h"
#include "proxy_proto.h"
#include "runtime.h"

/* Bounds the fds the checker holds, whatever the size of the pools. */
#define HEALTH_MAX_INFLIGHT	256
#define HEALTH_PENDING		(-1)	/* probe step: not finished yet */
#define NSEC_PER_MSEC		1000000ULL
#define NSEC_PER_SEC		1000000000ULL

enum health_phase {
	HP_IDLE,
	HP_CONNECTING,
	HP_SENDING,
	HP_READING,
};

/* One per checked backend; lives for the whole run of the thread. */
struct health_probe {
	struct pool *pool;
	struct backend *b;
	const struct cfg_health *cfg;
	uint64_t due;		/* next start, CLOCK_MONOTONIC ns */
	uint64_t start;		/* start of the probe in flight */
	uint64_t deadline;
	int fd;			/* -1 unless in flight */
	enum health_phase phase;
	size_t done;		/* bytes sent or matched in this phase */
	int err;		/* errno behind the last failure, 0 if none */
	bool error_logged;	/* HC_ERROR warned once per episode */
	/*
	 * The backend wants a PROXY header (send_proxy 1 or 2, 0: none):
	 * probes begin with a v1 UNKNOWN or v2 LOCAL one, so it does not log
	 * every probe as a bad client.
	 */
	int proxy;
};

struct health_checker {
	pthread_t thread;
	int wake_fd;
	uint64_t rng;
	struct health_probe *probes;
	size_t nprobes;
	struct health_probe **heap;	/* idle probes, min-heap on due */
	size_t nheap;
	struct health_probe *flight[HEALTH_MAX_INFLIGHT];
	size_t nflight;
	/* pfd[0] is wake_fd, pfd[i + 1] is flight[i]. */
	struct pollfd pfd[HEALTH_MAX_INFLIGHT + 1];
};

void
health_sm_init(struct health_sm *sm, unsigned rise, unsigned fall, bool up)
{
	sm->rise = rise;
	sm->fall = fall;
	sm->ok_run = 0;
	sm->fail_run = 0;
	sm->up = up;
}

/* A threshold of 0 acts as 1: one result is always enough to flip. */
bool
health_sm_feed(struct health_sm *sm, bool ok)
{
	if (sm->up) {
		if (ok) {
			sm->fail_run = 0;
			return false;
		}
		if (++sm->fail_run < sm->fall)
			return false;
		sm->up = false;
	} else {
		if (!ok) {
			sm->ok_run = 0;
			return false;
		}
		if (++sm->ok_run < sm->rise)
			return false;
		sm->up = true;
	}
	sm->ok_run = 0;
	sm->fail_run = 0;
	return true;
}

const char *
health_result_name(enum health_result r)
{
	switch (r) {
	case HC_OK:
		return "ok";
	case HC_REFUSED:
		return "refused";
	case HC_TIMEOUT:
		return "timeout";
	case HC_UNEXPECTED:
		return "unexpected-reply";
	case HC_CLOSED:
		return "closed";
	case HC_ERROR:
		return "error";
	}
	return "?";
}

static uint64_t
health_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: private to the thread, so no lock and no rand(). */
static uint64_t
health_random(struct health_checker *hc, uint64_t n)
{
	uint64_t x = hc->rng;

	if (n == 0)
		return 0;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	hc->rng = x;
	return (x * 0x2545f4914f6cdd1dULL) % n;
}

static uint64_t
health_interval_ns(const struct health_probe *p)
{
	/* A zero interval would probe in a busy loop. */
	return (p->cfg->interval_ms ? p->cfg->interval_ms : 1) * NSEC_PER_MSEC;
}

static void
health_heap_push(struct health_checker *hc, struct health_probe *p)
{
	size_t i = hc->nheap++;

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (hc->heap[parent]->due <= p->due)
			break;
		hc->heap[i] = hc->heap[parent];
		i = parent;
	}
	hc->heap[i] = p;
}

static struct health_probe *
health_heap_pop(struct health_checker *hc)
{
	struct health_probe *top = hc->heap[0];
	struct health_probe *last = hc->heap[--hc->nheap];
	size_t i = 0;

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= hc->nheap)
			break;
		if (c + 1 < hc->nheap && hc->heap[c + 1]->due < hc->heap[c]->due)
			c++;
		if (last->due <= hc->heap[c]->due)
			break;
		hc->heap[i] = hc->heap[c];
		i = c;
	}
	if (hc->nheap > 0)
		hc->heap[i] = last;
	return top;
}

/*
 * Classify a socket error.  The peer's refusals are the backend's fault;
 * anything that says this host is short of something is HC_ERROR, which is
 * logged because it is ours to fix.
 */
static int
health_errno_result(struct health_probe *p, int err)
{
	p->err = err;
	switch (err) {
	case ECONNREFUSED:
	case ECONNRESET:
	case ECONNABORTED:
	case EHOSTUNREACH:
	case ENETUNREACH:
	case EHOSTDOWN:
	case ENETDOWN:
	case EACCES:
	case EPERM:
		return HC_REFUSED;
	case ETIMEDOUT:
		return HC_TIMEOUT;
	case EPIPE:
		return HC_CLOSED;
	default:
		return HC_ERROR;
	}
}

/*
 * Move a probe as far as the socket allows without blocking.  Returns
 * HEALTH_PENDING or the final enum health_result.
 */
static int
health_probe_step(struct health_probe *p, short revents)
{
	const struct cfg_health *h = p->cfg;
	size_t expect_len = h->expect ? h->expect_len : 0;
	char buf[512], hdr[PP_V1_MAX + 1];
	ssize_t hlen = p->proxy ? pp_build(p->proxy, hdr, sizeof(hdr), NULL,
					   NULL, NULL, NULL, 0) :
				  0;
	size_t send_len = (hlen > 0 ? (size_t)hlen : 0) +
			  (h->send ? h->send_len : 0);
	socklen_t len;
	ssize_t n;
	int err;

	if (p->phase == HP_CONNECTING) {
		len = sizeof(err);
		if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			return health_errno_result(p, errno);
		if (err != 0)
			return health_errno_result(p, err);
		if (!(revents & POLLOUT))
			return (revents & (POLLERR | POLLHUP)) ? HC_CLOSED :
				HEALTH_PENDING;
		p->phase = HP_SENDING;
		p->done = 0;
	}
	if (p->phase == HP_SENDING) {
		while (p->done < send_len) {
			/* The header first, then the configured bytes. */
			bool in_hdr = p->done < (size_t)hlen;
			const char *from = in_hdr ? hdr + p->done :
						    h->send + (p->done - (size_t)hlen);

			n = send(p->fd, from,
				 in_hdr ? (size_t)hlen - p->done :
					  send_len - p->done,
				 MSG_NOSIGNAL);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN || errno == EWOULDBLOCK)
					return HEALTH_PENDING;
				return health_errno_result(p, errno);
			}
			p->done += (size_t)n;
		}
		p->phase = HP_READING;
		p->done = 0;
	}
	/*
	 * Read no more than the expected prefix and compare as it arrives, so
	 * a wrong first byte fails at once instead of at the deadline.
	 */
	while (p->done < expect_len) {
		size_t want = expect_len - p->done;

		n = recv(p->fd, buf, want < sizeof(buf) ? want : sizeof(buf), 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return HEALTH_PENDING;
			return health_errno_result(p, errno);
		}
		if (n == 0)
			return HC_CLOSED;
		if (memcmp(buf, h->expect + p->done, (size_t)n) != 0)
			return HC_UNEXPECTED;
		p->done += (size_t)n;
	}
	return HC_OK;
}

static int
health_probe_open(struct health_probe *p)
{
	const struct cfg_addr *a = &p->b->cfg->addr;

	p->err = 0;
	p->fd = socket(a->ss.ss_family,
		       SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p->fd < 0)
		return health_errno_result(p, errno);
	if (connect(p->fd, (const struct sockaddr *)&a->ss, a->len) < 0) {
		if (errno != EINPROGRESS)
			return health_errno_result(p, errno);
		p->phase = HP_CONNECTING;
		return HEALTH_PENDING;
	}
	/* Connected at once (possible on loopback): carry on sending. */
	p->phase = HP_SENDING;
	p->done = 0;
	return health_probe_step(p, POLLOUT);
}

static void
health_log_result(const struct health_probe *p, enum health_result r)
{
	const struct backend *b = p->b;

	if (r == HC_ERROR && !p->error_logged)
		log_warn("health pool=%s backend=%s addr=%s probe failed "
			 "locally: %s", p->pool->cfg->name, b->cfg->name,
			 b->cfg->addr.text, strerror(p->err));
	if (!log_enabled(LOG_DEBUG))
		return;
	log_debug("health pool=%s backend=%s addr=%s result=%s "
		  "latency_ms=%u%s%s", p->pool->cfg->name, b->cfg->name,
		  b->cfg->addr.text, health_result_name(r), atomic_load(&b->last_latency_ms),
		  p->err ? " errno=" : "", p->err ? strerror(p->err) : "");
}

/*
 * Record a result, publish a state change, and queue the next probe at
 * start + interval minus up to 10% jitter: never later, so the rise and
 * fall bounds hold whatever the jitter.
 */
static void
health_probe_finish(struct health_checker *hc, struct health_probe *p,
		    enum health_result r)
{
	struct backend *b = p->b;
	struct health_sm *sm = &b->hsm;
	uint64_t interval = health_interval_ns(p);
	uint64_t now = health_now();
	unsigned run;

	if (p->fd >= 0) {
		close(p->fd);
		p->fd = -1;
	}
	p->phase = HP_IDLE;
	atomic_store(&b->last_result, r);
	atomic_store(&b->last_latency_ms,
		     (unsigned)((now - p->start) / NSEC_PER_MSEC));
	atomic_store(&b->checked, true);
	if (r == HC_OK)
		backend_mark_clear(b);
	health_log_result(p, r);
	p->error_logged = r == HC_ERROR;

	run = (sm->up ? sm->fail_run : sm->ok_run) + 1;
	if (health_sm_feed(sm, r == HC_OK)) {
		atomic_store(&b->since_ms, now / NSEC_PER_MSEC);
		if (sm->up)
			backend_ramp_begin(b, control_now_ms());
		atomic_store_explicit(&b->up, sm->up, memory_order_release);
		if (sm->up)
			log_info("health pool=%s backend=%s addr=%s "
				 "state=up reason=ok after=%u consecutive "
				 "successes", p->pool->cfg->name, b->cfg->name,
				 b->cfg->addr.text, run);
		else
			log_warn("health pool=%s backend=%s addr=%s "
				 "state=down reason=%s after=%u consecutive "
				 "failures", p->pool->cfg->name, b->cfg->name,
				 b->cfg->addr.text, health_result_name(r), run);
	}

	p->due = p->start + interval - health_random(hc, interval / 10 + 1);
	health_heap_push(hc, p);
}

/* Start every probe that is due, as long as a slot is free. */
static void
health_launch(struct health_checker *hc)
{
	uint64_t now = health_now();

	while (hc->nflight < HEALTH_MAX_INFLIGHT && hc->nheap > 0 &&
	       hc->heap[0]->due <= now) {
		struct health_probe *p = health_heap_pop(hc);
		int r;

		p->start = now;
		p->deadline = now + p->cfg->timeout_ms * NSEC_PER_MSEC;
		r = health_probe_open(p);
		if (r == HEALTH_PENDING)
			hc->flight[hc->nflight++] = p;
		else
			health_probe_finish(hc, p, (enum health_result)r);
		now = health_now();
	}
}

/* The earliest deadline or due time the thread must wake up for. */
static uint64_t
health_next_wakeup(const struct health_checker *hc)
{
	uint64_t next = UINT64_MAX;

	if (hc->nflight < HEALTH_MAX_INFLIGHT && hc->nheap > 0)
		next = hc->heap[0]->due;
	for (size_t i = 0; i < hc->nflight; i++)
		if (hc->flight[i]->deadline < next)
			next = hc->flight[i]->deadline;
	return next;
}

static short
health_events(const struct health_probe *p)
{
	return p->phase == HP_READING ? POLLIN : POLLOUT;
}

static void *
health_thread(void *arg)
{
	struct health_checker *hc = arg;

	pthread_setname_np(pthread_self(), "ringlb-health");
	for (;;) {
		struct timespec ts, *tsp = NULL;
		uint64_t next, now;
		int n;

		health_launch(hc);
		next = health_next_wakeup(hc);
		if (next != UINT64_MAX) {
			now = health_now();
			next = next > now ? next - now : 0;
			ts.tv_sec = (time_t)(next / NSEC_PER_SEC);
			ts.tv_nsec = (long)(next % NSEC_PER_SEC);
			tsp = &ts;
		}
		for (size_t i = 0; i < hc->nflight; i++) {
			hc->pfd[i + 1].fd = hc->flight[i]->fd;
			hc->pfd[i + 1].events = health_events(hc->flight[i]);
			hc->pfd[i + 1].revents = 0;
		}
		hc->pfd[0].revents = 0;
		n = ppoll(hc->pfd, hc->nflight + 1, tsp, NULL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* Only ENOMEM is possible here; back off and retry. */
			log_error("health: ppoll: %s", strerror(errno));
			nanosleep(&(struct timespec){ .tv_nsec = 10000000 },
				  NULL);
			continue;
		}
		if (hc->pfd[0].revents)
			break;

		now = health_now();
		/*
		 * Backwards, so removing flight[i] by moving the last entry
		 * into its place only moves one already handled.
		 */
		for (size_t i = hc->nflight; i-- > 0;) {
			struct health_probe *p = hc->flight[i];
			short rev = hc->pfd[i + 1].revents;
			int r = HEALTH_PENDING;

			if (rev)
				r = health_probe_step(p, rev);
			if (r == HEALTH_PENDING && now >= p->deadline)
				r = HC_TIMEOUT;
			if (r == HEALTH_PENDING)
				continue;
			hc->flight[i] = hc->flight[--hc->nflight];
			health_probe_finish(hc, p, (enum health_result)r);
		}
	}
	log_debug("health: checker thread exiting");
	return NULL;
}

static void
health_free(struct health_checker *hc)
{
	for (size_t i = 0; i < hc->nprobes; i++)
		if (hc->probes[i].fd >= 0)
			close(hc->probes[i].fd);
	if (hc->wake_fd >= 0)
		close(hc->wake_fd);
	free(hc->heap);
	free(hc->probes);
	free(hc);
}

/* Wakes the thread at once, even mid-probe, and waits for it to end. */
static void
health_join(struct health_checker *hc)
{
	uint64_t one = 1;

	/* Only a counter overflow can fail, and then the fd is readable. */
	if (write(hc->wake_fd, &one, sizeof(one)) < 0)
		log_error("health: waking thread: %s", strerror(errno));
	pthread_join(hc->thread, NULL);
	/* Drain it, so a thread started again does not stop at once. */
	if (read(hc->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_error("health: draining wake fd: %s", strerror(errno));
}

static int
health_spawn(struct health_checker *hc)
{
	sigset_t all, old;
	int rc;

	/* Signals stay with the threads that handle them, never this one. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = -pthread_create(&hc->thread, NULL, health_thread, hc);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc < 0)
		log_error("health: starting thread: %s", strerror(-rc));
	return rc;
}

/* Would a probe started under a send, expect or time out differently? */
static bool
health_probe_same(const struct cfg_health *a, const struct cfg_health *b)
{
	return a->timeout_ms == b->timeout_ms &&
	       a->send_len == b->send_len && a->expect_len == b->expect_len &&
	       (a->send_len == 0 || memcmp(a->send, b->send, a->send_len) == 0) &&
	       (a->expect_len == 0 ||
		memcmp(a->expect, b->expect, a->expect_len) == 0);
}

/*
 * Carry old's state for backend b (same struct, carried by the reload) into
 * the new probe p, which already has its pool, backend and config.  A probe
 * in flight goes on if it would run the same; its result counts.
 */
static void
health_carry(struct health_checker *hc, struct health_probe *p,
	     struct health_probe *old, uint64_t now)
{
	const struct cfg_health *h = p->cfg;
	struct health_sm *sm = &p->b->hsm;
	uint64_t interval = health_interval_ns(p);

	if (old->phase != HP_IDLE &&
	    (!health_probe_same(old->cfg, h) || old->proxy != p->proxy)) {
		close(old->fd);
		old->fd = -1;
		old->phase = HP_IDLE;
		old->due = now;
	}
	p->due = old->due;
	p->start = old->start;
	p->deadline = old->deadline;
	p->fd = old->fd;
	p->phase = old->phase;
	p->done = old->done;
	p->err = old->err;
	p->error_logged = old->error_logged;
	old->fd = -1;
	old->b = NULL;
	/* New thresholds count afresh; the state itself stands. */
	if (sm->rise != h->rise || sm->fall != h->fall)
		health_sm_init(sm, h->rise, h->fall, sm->up);
	/* A shorter interval takes effect now, not after the old one. */
	if (p->phase == HP_IDLE && p->due > now + interval)
		p->due = now + health_random(hc, interval);
}

/* Backends of rt that are to be checked. */
static size_t
health_count(const struct runtime *rt)
{
	size_t n = 0;

	for (size_t i = 0; i < rt->npools; i++)
		if (rt->pools[i].cfg->health.enabled)
			n += rt->pools[i].nbackends;
	return n;
}

/*
 * Add a probe for every backend of pool.  One that old[0..nold) probed
 * (a reload carried it) goes on as it was (health_carry).  Any other
 * starts from its current b->up (true after runtime_init), its first probe
 * at a random point of one interval so a big pool does not stampede its
 * backends.
 */
static void
health_add_pool(struct health_checker *hc, struct pool *pool, uint64_t now,
		struct health_probe *old, size_t nold)
{
	const struct cfg_health *h = &pool->cfg->health;

	for (size_t i = 0; i < pool->nbackends; i++) {
		struct backend *b = pool->backends[i];
		struct health_probe *p = &hc->probes[hc->nprobes++];
		size_t k = b->hprobe;

		p->pool = pool;
		p->b = b;
		p->cfg = h;
		p->fd = -1;
		p->phase = HP_IDLE;
		switch (cfg_backend_send_proxy(pool->cfg, b->cfg)) {
		case SEND_PROXY_V1:
			p->proxy = 1;
			break;
		case SEND_PROXY_V2:
			p->proxy = 2;
			break;
		case SEND_PROXY_POOL:
		case SEND_PROXY_OFF:
			p->proxy = 0;
			break;
		}
		if (old != NULL && k < nold && old[k].b == b) {
			health_carry(hc, p, &old[k], now);
		} else {
			health_sm_init(&b->hsm, h->rise, h->fall,
				       atomic_load_explicit(
					       &b->up, memory_order_acquire));
			p->due = now + health_random(hc,
						     health_interval_ns(p));
		}
		if (p->phase == HP_IDLE)
			health_heap_push(hc, p);
		else if (hc->nflight < HEALTH_MAX_INFLIGHT)
			hc->flight[hc->nflight++] = p;
		else {
			/* Cannot happen: at most that many were. */
			close(p->fd);
			p->fd = -1;
			p->phase = HP_IDLE;
			p->due = now;
			health_heap_push(hc, p);
		}
	}
}

int
health_start(struct runtime *rt)
{
	struct health_checker *hc;
	size_t n;
	uint64_t now;
	int rc;

	if (rt->health)
		return -EBUSY;
	n = health_count(rt);
	if (n == 0) {
		/* Nothing to probe: no thread, and health_stop() is a no-op. */
		log_debug("health: no pool has health checks enabled");
		return 0;
	}

	hc = calloc(1, sizeof(*hc));
	if (!hc)
		return -ENOMEM;
	hc->wake_fd = -1;
	hc->probes = calloc(n, sizeof(*hc->probes));
	hc->heap = calloc(n, sizeof(struct health_probe *));
	if (!hc->probes || !hc->heap) {
		rc = -ENOMEM;
		goto out_free;
	}
	hc->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (hc->wake_fd < 0) {
		rc = -errno;
		log_error("health: eventfd: %s", strerror(errno));
		goto out_free;
	}
	hc->pfd[0].fd = hc->wake_fd;
	hc->pfd[0].events = POLLIN;

	now = health_now();
	hc->rng = now ^ ((uint64_t)(uintptr_t)hc << 17);
	if (hc->rng == 0)
		hc->rng = 0x9e3779b97f4a7c15ULL;
	for (size_t i = 0; i < rt->npools; i++)
		if (rt->pools[i].cfg->health.enabled)
			health_add_pool(hc, &rt->pools[i], now, NULL, 0);

	rc = health_spawn(hc);
	if (rc < 0)
		goto out_free;
	rt->health = hc;
	log_info("health: checking %zu backends", n);
	return 0;

out_free:
	health_free(hc);
	return rc;
}

/* In-flight probes are dropped. */
void
health_stop(struct runtime *rt)
{
	struct health_checker *hc = rt->health;

	if (!hc)
		return;
	health_join(hc);
	health_free(hc);
	rt->health = NULL;
}

/*
 * A pool whose checks are off counts every backend as up; one a reload
 * carried over while down would otherwise stay down for good.  Call with
 * no checker thread running.
 */
static void
health_unchecked_up(struct runtime *rt)
{
	uint64_t now_ms = health_now() / NSEC_PER_MSEC;

	for (size_t i = 0; i < rt->npools; i++) {
		struct pool *pool = &rt->pools[i];

		if (pool->cfg->health.enabled)
			continue;
		for (size_t j = 0; j < pool->nbackends; j++) {
			struct backend *b = pool->backends[j];

			if (atomic_load_explicit(&b->up, memory_order_acquire))
				continue;
			health_sm_init(&b->hsm, b->hsm.rise, b->hsm.fall, true);
			atomic_store(&b->since_ms, now_ms);
			atomic_store_explicit(&b->up, true,
					      memory_order_release);
			log_info("health pool=%s backend=%s addr=%s "
				 "state=up reason=checks-off",
				 pool->cfg->name, b->cfg->name,
				 b->cfg->addr.text);
		}
	}
}

/*
 * Hand the checker of cur over to rt.  Backends rt carried from cur keep
 * their probe as it was: the next one due at the same time, a probe in
 * flight going on, the rise/fall run so far.  Frequent reloads therefore
 * do not delay marking a backend up or down.  New backends start as in
 * health_start().  The thread is stopped for the handover and started
 * again; if that fails, rt runs without health checks, as it logs.
 */
int
health_reload(struct runtime *cur, struct runtime *rt)
{
	struct health_checker *hc = cur->health;
	struct health_probe *probes, **heap, *oldp;
	size_t n, oldn;
	uint64_t now;
	int rc;

	if (!hc) {
		health_unchecked_up(rt);
		return health_start(rt);
	}
	n = health_count(rt);
	if (n == 0) {
		health_stop(cur);
		health_unchecked_up(rt);
		return health_start(rt);
	}
	probes = calloc(n, sizeof(*probes));
	heap = calloc(n, sizeof(*heap));
	if (!probes || !heap) {
		free(probes);
		free(heap);
		health_stop(cur);
		return -ENOMEM;
	}
	health_join(hc);
	cur->health = NULL;
	health_unchecked_up(rt);

	/* Each backend's slot in the old array, checked by its b. */
	oldp = hc->probes;
	oldn = hc->nprobes;
	for (size_t i = 0; i < oldn; i++)
		oldp[i].b->hprobe = i;
	hc->probes = probes;
	hc->nprobes = 0;
	free(hc->heap);
	hc->heap = heap;
	hc->nheap = 0;
	hc->nflight = 0;
	now = health_now();
	for (size_t i = 0; i < rt->npools; i++)
		if (rt->pools[i].cfg->health.enabled)
			health_add_pool(hc, &rt->pools[i], now, oldp, oldn);
	/* Probes of backends that are gone. */
	for (size_t i = 0; i < oldn; i++)
		if (oldp[i].b && oldp[i].fd >= 0)
			close(oldp[i].fd);
	free(oldp);

	rc = health_spawn(hc);
	if (rc < 0) {
		health_free(hc);
		return rc;
	}
	rt->health = hc;
	log_debug("health: checking %zu backends", n);
	return 0;
}

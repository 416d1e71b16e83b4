/*
 * worker.c: one thread, one io_uring.  Accepts on the worker's own
 * SO_REUSEPORT sockets, dispatches completions to conn.c, and runs a periodic
 * tick for idle timeouts, the shutdown deadline and pipe-pool trimming.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "engine.h"
#include "log.h"
#include "runtime.h"
#include "upgrade.h"
#include "worker.h"

#define RING_ENTRIES	1024
#define CQ_ENTRIES	16384
#define TICK_MS		100
#define ACCEPT_RETRY_MS	100
#define HANDOVER_TICK_MS 5
#define COPY_BUF_SIZE	(64 * 1024)
#define PIPE_SIZE	(1024 * 1024)
#define PIPES_PER_WORKER 256
#define PIPE_IDLE_MS	2000
/*
 * Provided RECV buffers: a read that fills one marks the direction as bulk
 * (it moves to splice), so they only carry small messages.  A blocked
 * direction copies its leftover out and gives the buffer back at once, so
 * slow peers never pin them; when they run out anyway, reads fall back to
 * poll + recv(2) into the scratch buffer.
 */
#define RECV_BUF_SIZE	(16 * 1024)

/*
 * One warning per fd-exhaustion episode, however many workers hit it and
 * however often; the episode ends after FD_CALM_MS without a failure.
 */
#define FD_CALM_MS	2000
static atomic_bool fd_exhausted;
static atomic_uint_fast64_t fd_exhausted_ms;
static atomic_uint fd_refusals;

int
worker_probe(char *err, size_t errlen)
{
	static const struct {
		int op;
		const char *name;
	} need[] = {
		{ IORING_OP_ACCEPT, "ACCEPT" },
		{ IORING_OP_CONNECT, "CONNECT" },
		{ IORING_OP_LINK_TIMEOUT, "LINK_TIMEOUT" },
		{ IORING_OP_POLL_ADD, "POLL_ADD" },
		{ IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL" },
		{ IORING_OP_TIMEOUT, "TIMEOUT" },
		{ IORING_OP_READ, "READ" },
		{ IORING_OP_SEND, "SEND" },
		{ IORING_OP_CLOSE, "CLOSE" },
	};
	struct io_uring_probe *probe = io_uring_get_probe();

	if (!probe) {
		snprintf(err, errlen, "io_uring is not available (%s)",
			 strerror(errno));
		return -ENOSYS;
	}
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		if (!io_uring_opcode_supported(probe, need[i].op)) {
			snprintf(err, errlen,
				 "the kernel's io_uring lacks IORING_OP_%s",
				 need[i].name);
			io_uring_free_probe(probe);
			return -ENOSYS;
		}
	}
	io_uring_free_probe(probe);
	return 0;
}

int
worker_create(unsigned id, unsigned grace_ms, unsigned recv_bufs,
	      struct worker **out, char *err, size_t errlen)
{
	struct worker *w;
	int rc;

	w = aligned_alloc(OP_ALIGN, sizeof(*w));
	if (!w)
		return -ENOMEM;
	memset(w, 0, sizeof(*w));
	w->id = id;
	/* conn= ids: after an upgrade, above every id of the old process. */
	w->next_seq = upgrade_id_base() / 256;
	w->efd = -1;
	pthread_mutex_init(&w->inbox_lock, NULL);
	w->br_n = recv_bufs;
	atomic_init(&w->grace_ms, grace_ms);
	atomic_init(&w->stop_req, 0);
	atomic_init(&w->done, false);
	atomic_init(&w->seen_gen, 0);
	atomic_init(&w->qs, 0);
	atomic_init(&w->accepts_total, 0);
	w->buf = malloc(COPY_BUF_SIZE);
	if (!w->buf) {
		rc = -ENOMEM;
		goto out_free;
	}
	w->bufsz = COPY_BUF_SIZE;
	w->efd = eventfd(0, EFD_CLOEXEC);
	if (w->efd < 0) {
		rc = -errno;
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		goto out_free;
	}
	if (sem_init(&w->ready, 0, 0) < 0) {
		rc = -errno;
		goto out_free;
	}
	pipe_pool_init(&w->pipes, PIPES_PER_WORKER, PIPE_SIZE);
	*out = w;
	return 0;

out_free:
	if (w->efd >= 0)
		close(w->efd);
	free(w->buf);
	free(w);
	return rc;
}

struct io_uring_sqe *
worker_sqe(struct worker *w)
{
	struct io_uring_sqe *sqe;

	while (!(sqe = io_uring_get_sqe(&w->ring)))
		io_uring_submit(&w->ring);
	return sqe;
}

void
worker_sqe_reserve(struct worker *w, unsigned n)
{
	if (io_uring_sq_space_left(&w->ring) < n)
		io_uring_submit(&w->ring);
}

bool
worker_fds_short(void)
{
	return atomic_load_explicit(&fd_exhausted, memory_order_relaxed);
}

void
worker_fd_exhausted(struct worker *w, const char *what)
{
	atomic_store(&fd_exhausted_ms, w->now_ms);
	atomic_fetch_add(&fd_refusals, 1);
	if (!atomic_exchange(&fd_exhausted, true))
		log_warn("out of file descriptors (%s): new connections are "
			 "paused %d ms at a time or refused until fds are "
			 "free; open connections are not touched",
			 what, ACCEPT_RETRY_MS);
}

static void
fd_exhaustion_check(struct worker *w)
{
	if (!atomic_load_explicit(&fd_exhausted, memory_order_relaxed) ||
	    w->now_ms - atomic_load(&fd_exhausted_ms) < FD_CALM_MS)
		return;
	if (atomic_exchange(&fd_exhausted, false))
		log_info("file descriptors available again (%u accepts "
			 "paused or connections refused meanwhile)",
			 atomic_exchange(&fd_refusals, 0));
}

/* Adopt what an old process handed over since the last wake. */
static void
adopt_inbox(struct worker *w)
{
	struct handover *h;

	pthread_mutex_lock(&w->inbox_lock);
	h = w->inbox;
	w->inbox = NULL;
	pthread_mutex_unlock(&w->inbox_lock);
	while (h) {
		struct handover *next = h->next;

		conn_adopt(w, h);
		free(h);
		h = next;
	}
}

void
worker_adopt(struct worker *w, struct handover *h)
{
	pthread_mutex_lock(&w->inbox_lock);
	h->next = w->inbox;
	w->inbox = h;
	pthread_mutex_unlock(&w->inbox_lock);
	worker_wake(w);
}

/*
 * worker_handover(): every connection that holds no bytes now goes, and
 * the others as they get there, checked every HANDOVER_TICK_MS.
 */
static void
handover_follow(struct worker *w)
{
	uint64_t until = atomic_load(&w->handover_req);

	if (until != w->handover_until) {
		w->handover_until = until;
		if (until)
			conn_handover_scan(w);
	} else if (until && w->now_ms < until) {
		conn_handover_scan(w);
	}
}

/* What worker_accept_off() and worker_kick() asked for. */
static void
worker_requests(struct worker *w)
{
	unsigned kick = atomic_load(&w->kick_req);

	if (atomic_load(&w->accept_off_req) && !w->accept_off) {
		w->accept_off = true;
		listen_close_all(w);
	}
	if (kick != w->kick_seen) {
		w->kick_seen = kick;
		listen_kick(w);
	}
	handover_follow(w);
}

/* Move to the newest runtime. */
static void
worker_switch(struct worker *w)
{
	struct runtime *rt = runtime_current();

	if (rt == w->rt || w->stopping)
		return;
	listen_follow(w, rt);
	w->rt = rt;
	atomic_store_explicit(&w->seen_gen, rt->gen, memory_order_release);
}

static void
arm_wake(struct worker *w)
{
	struct io_uring_sqe *sqe = worker_sqe(w);

	io_uring_prep_read(sqe, w->efd, &w->efd_val, sizeof(w->efd_val), 0);
	io_uring_sqe_set_data64(sqe, op_data(w, OP_WAKE));
}

static void
arm_tick(struct worker *w)
{
	struct io_uring_sqe *sqe = worker_sqe(w);
	bool handing = w->handover_until && w->now_ms < w->handover_until;

	io_uring_prep_timeout(sqe, handing ? &w->handover_ts : &w->tick_ts, 0,
			      0);
	io_uring_sqe_set_data64(sqe, op_data(w, OP_TICK));
}

static void
begin_stop(struct worker *w)
{
	int req = atomic_load(&w->stop_req);

	if (req == w->stop_seen)
		return;
	w->stop_seen = req;
	if (w->stopping) {
		/* Asked again: do not wait out the grace period. */
		w->deadline_ms = w->now_ms;
		conn_sweep(w, true);
		return;
	}
	w->stopping = true;
	w->deadline_ms = w->now_ms + atomic_load(&w->grace_ms);
	listen_close_all(w);
	if (atomic_load(&w->grace_ms) == 0)
		conn_sweep(w, true);
}

static void
handle_tick(struct worker *w)
{
	bool expired = w->stopping && w->now_ms >= w->deadline_ms;

	worker_switch(w);
	handover_follow(w);
	conn_sweep(w, expired);
	pipe_pool_trim(&w->pipes, w->now_ms, PIPE_IDLE_MS);
	fd_exhaustion_check(w);
	arm_tick(w);
}

static void
dispatch(struct worker *w, struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	enum op op = (enum op)(ud & OP_MASK);
	void *obj = (void *)(uintptr_t)(ud & ~OP_MASK);

	switch (op) {
	case OP_ACCEPT:
		listen_handle_accept(obj, cqe->res, cqe->flags);
		break;
	case OP_ACCEPT_RETRY:
		listen_handle_retry(obj);
		break;
	case OP_WAKE:
		if (cqe->res < 0 && cqe->res != -EINTR && cqe->res != -EAGAIN)
			log_error("worker %u: eventfd read: %s", w->id,
				  strerror(-cqe->res));
		begin_stop(w);
		worker_requests(w);
		worker_switch(w);
		adopt_inbox(w);
		arm_wake(w);
		break;
	case OP_TICK:
		handle_tick(w);
		break;
	case OP_CONNECT:
	case OP_CONNECT_TIMEOUT:
	case OP_POLL_IN:
	case OP_POLL_IN1:
	case OP_POLL_OUT:
	case OP_POLL_OUT1:
	case OP_CANCEL:
	case OP_RECV:
	case OP_RECV1:
	case OP_SEND:
	case OP_SEND1:
		conn_handle(obj, op, cqe->res, cqe->flags);
		break;
	}
}

static int
ring_init(struct worker *w)
{
	struct io_uring_params p;
	int rc;

	/*
	 * COOP_TASKRUN + SINGLE_ISSUER: completion work runs when this thread
	 * enters the kernel, with no IPIs.  Not DEFER_TASKRUN: side by side
	 * (64 B ping-pong at 2,000/s, 5 rounds, quiet machine) it gave p50
	 * 198 us against 159 without it, and a 1-s-window p99 of 855 against
	 * 502, at the same CPU per keep-alive request (11.7 vs 11.5 us).
	 * Older kernels reject the flags; fall back to a plain ring.
	 */
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL |
		  IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SINGLE_ISSUER;
	p.cq_entries = CQ_ENTRIES;
	rc = io_uring_queue_init_params(RING_ENTRIES, &w->ring, &p);
	if (rc == -EINVAL) {
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_CQSIZE;
		p.cq_entries = CQ_ENTRIES;
		rc = io_uring_queue_init_params(RING_ENTRIES, &w->ring, &p);
	}
	return rc;
}

/*
 * The provided-buffer ring for RECV.  Without it (an old kernel,
 * or no memory) the engine reads with poll + recv(2) only.  liburing 2.3 has
 * no io_uring_setup_buf_ring(); this is what it does.
 */
static void
bufring_init(struct worker *w)
{
	struct io_uring_buf_reg reg;
	struct io_uring_probe *probe;
	unsigned n = w->br_n;
	size_t len = n * sizeof(struct io_uring_buf);
	bool recv_ok;
	void *mem;

	w->br_n = 0;
	if (n == 0)
		return;

	probe = io_uring_get_probe_ring(&w->ring);
	recv_ok = probe && io_uring_opcode_supported(probe, IORING_OP_RECV);
	if (probe)
		io_uring_free_probe(probe);
	if (!recv_ok)
		return;
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (mem == MAP_FAILED)
		return;
	w->br_mem = malloc((size_t)n * RECV_BUF_SIZE);
	if (!w->br_mem) {
		munmap(mem, len);
		return;
	}
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (unsigned long)mem;
	reg.ring_entries = n;
	reg.bgid = 0;
	if (io_uring_register_buf_ring(&w->ring, &reg, 0) < 0) {
		log_info("worker %u: no provided-buffer ring; reads use poll "
			 "+ recv", w->id);
		munmap(mem, len);
		free(w->br_mem);
		w->br_mem = NULL;
		return;
	}
	w->br = mem;
	w->br_n = n;
	w->br_size = RECV_BUF_SIZE;
	io_uring_buf_ring_init(w->br);
	for (unsigned i = 0; i < n; i++)
		io_uring_buf_ring_add(w->br, worker_buf(w, i), RECV_BUF_SIZE,
				      (unsigned short)i,
				      io_uring_buf_ring_mask(n), (int)i);
	io_uring_buf_ring_advance(w->br, (int)n);
}

static void
bufring_fini(struct worker *w)
{
	if (!w->br)
		return;
	/* The ring is gone (io_uring_queue_exit): nothing uses them now. */
	munmap(w->br, w->br_n * sizeof(struct io_uring_buf));
	free(w->br_mem);
	w->br = NULL;
	w->br_mem = NULL;
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	char name[16];
	int rc;

	/* "ringlb-w0" in top -H, ps -L and /proc/PID/task/TID/comm. */
	snprintf(name, sizeof(name), "ringlb-w%u", w->id);
	pthread_setname_np(pthread_self(), name);
	rc = ring_init(w);
	w->start_rc = rc;
	sem_post(&w->ready);
	if (rc < 0)
		return NULL;
	bufring_init(w);
	/* Fire-and-forget ops (close, shutdown) then post no completion. */
	if (w->ring.features & IORING_FEAT_CQE_SKIP)
		w->skip_ok = IOSQE_CQE_SKIP_SUCCESS;

	w->now_ms = control_now_ms();
	w->tick_ts.tv_sec = 0;
	w->tick_ts.tv_nsec = TICK_MS * 1000000LL;
	w->retry_ts.tv_sec = 0;
	w->retry_ts.tv_nsec = ACCEPT_RETRY_MS * 1000000LL;
	w->handover_ts.tv_sec = 0;
	w->handover_ts.tv_nsec = HANDOVER_TICK_MS * 1000000LL;
	worker_switch(w);
	arm_wake(w);
	arm_tick(w);

	for (;;) {
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;

		if (w->stopping && w->nconns == 0 && w->nls_open == 0)
			break;
		atomic_store_explicit(&w->qs,
				      atomic_load_explicit(&w->qs,
							   memory_order_relaxed) + 1,
				      memory_order_release);
		rc = io_uring_submit_and_wait(&w->ring, 1);
		if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY &&
		    rc != -ETIME) {
			log_error("worker %u: io_uring_submit_and_wait: %s",
				  w->id, strerror(-rc));
			break;
		}
		w->now_ms = control_now_ms();
		io_uring_for_each_cqe(&w->ring, head, cqe) {
			dispatch(w, cqe);
			n++;
		}
		io_uring_cq_advance(&w->ring, n);
	}
	if (w->nconns)
		log_error("worker %u: leaving with %u connections", w->id,
			  w->nconns);
	atomic_store(&w->done, true);
	return NULL;
}

int
worker_start(struct worker *w)
{
	int rc;

	rc = pthread_create(&w->thread, NULL, worker_main, w);
	if (rc)
		return -rc;
	w->started = true;
	while (sem_wait(&w->ready) < 0 && errno == EINTR)
		;
	return w->start_rc;
}

void
worker_wake(struct worker *w)
{
	uint64_t one = 1;

	if (write(w->efd, &one, sizeof(one)) < 0)
		log_error("worker %u: wake: %s", w->id, strerror(errno));
}

void
worker_set_grace(struct worker *w, unsigned grace_ms)
{
	atomic_store(&w->grace_ms, grace_ms);
}

void
worker_accept_off(struct worker *w)
{
	atomic_store(&w->accept_off_req, true);
	worker_wake(w);
}

void
worker_handover(struct worker *w, uint64_t until_ms)
{
	atomic_store(&w->handover_req, until_ms);
	worker_wake(w);
}

bool
worker_listening(struct worker *w)
{
	return atomic_load(&w->nls_open) > 0;
}

void
worker_kick(struct worker *w)
{
	atomic_fetch_add(&w->kick_req, 1);
	worker_wake(w);
}

void
worker_stop(struct worker *w, unsigned grace_ms)
{
	atomic_store(&w->grace_ms, grace_ms);
	atomic_fetch_add(&w->stop_req, 1);
	worker_wake(w);
}

uint64_t
worker_seen_gen(struct worker *w)
{
	return atomic_load_explicit(&w->seen_gen, memory_order_acquire);
}

uint64_t
worker_qs(struct worker *w)
{
	return atomic_load_explicit(&w->qs, memory_order_acquire);
}

uint64_t
worker_accepts(struct worker *w)
{
	return atomic_load_explicit(&w->accepts_total, memory_order_relaxed);
}

int
worker_done(struct worker *w)
{
	return !w->started || atomic_load(&w->done);
}

void
worker_destroy(struct worker *w)
{
	if (!w)
		return;
	if (w->started) {
		pthread_join(w->thread, NULL);
		if (w->start_rc == 0)
			io_uring_queue_exit(&w->ring);
		bufring_fini(w);
		sem_destroy(&w->ready);
	}
	listen_free_all(w);
	/* Handed over and never adopted (a stop came first): close them. */
	while (w->inbox) {
		struct handover *h = w->inbox;

		w->inbox = h->next;
		close(h->fd[0]);
		close(h->fd[1]);
		free(h);
	}
	pthread_mutex_destroy(&w->inbox_lock);
	if (w->efd >= 0)
		close(w->efd);
	pipe_pool_fini(&w->pipes);
	free(w->buf);
	free(w);
}

/*
 * engine.h: what worker.c (the ring and its loop), listen.c (its listening
 * sockets) and conn.c (one proxied connection) share.  Not for the rest of
 * the program.
 */
#ifndef RINGLB_ENGINE_H
#define RINGLB_ENGINE_H

#include <liburing.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"
#include "pipepool.h"

/*
 * user_data is a pointer to a 16-byte aligned object with the operation kind
 * in its low 4 bits.  Accepted fds are reused at once, so a bare fd in
 * user_data could be mistaken for the next connection's.
 */
enum op {
	OP_ACCEPT = 1,		/* struct wlistener */
	OP_ACCEPT_RETRY,	/* struct wlistener: pause after EMFILE over */
	OP_WAKE,		/* struct worker: eventfd read */
	OP_TICK,		/* struct worker: periodic sweep */
	OP_CONNECT,		/* struct conn */
	OP_CONNECT_TIMEOUT,	/* struct conn: the linked timeout */
	OP_POLL_IN,		/* struct conn, side 0 */
	OP_POLL_IN1,		/* side 1 */
	OP_POLL_OUT,		/* side 0 */
	OP_POLL_OUT1,		/* side 1 */
	OP_CANCEL,		/* struct conn */
	OP_RECV,		/* struct conn: RECV into a provided buffer, side 0 */
	OP_RECV1,		/* side 1 */
	OP_SEND,		/* struct conn: direction 0 (client to backend) */
	OP_SEND1,		/* direction 1 */
};
#define OP_MASK 15ULL
#define OP_ALIGN 16
_Static_assert(OP_SEND1 <= OP_MASK, "op kinds must fit in user_data's low bits");

struct listener;
struct runtime;
struct worker;

/*
 * A worker's socket for one listener.  It lives across reloads while the
 * listener keeps its name and address (same lid); `lsn` then moves to the
 * new generation's listener.  Freed once closed with nothing in flight.
 */
struct wlistener {
	struct worker *w;
	struct listener *lsn;
	struct wlistener *next;
	uint64_t lid;
	char name[CFG_NAME_MAX];
	int fd;
	bool armed;		/* accept in flight */
	bool paused;		/* after EMFILE: retry timer pending */
	bool closed;
} __attribute__((aligned(OP_ALIGN)));

struct conn;

struct worker {
	struct io_uring ring;
	struct runtime *rt;		/* generation new connections use */
	atomic_uint_fast64_t seen_gen;	/* rt->gen, for the control thread */
	atomic_uint_fast64_t qs;	/* loop passes: quiescent points */
	atomic_uint_fast64_t accepts_total;
	struct wlistener *ls;		/* every wlistener not yet freed */
	atomic_uint nls_open;		/* read by worker_listening() */
	uint64_t efd_val;
	struct __kernel_timespec tick_ts;
	struct __kernel_timespec retry_ts;
	pthread_t thread;
	sem_t ready;
	unsigned id;
	int efd;
	int start_rc;
	atomic_int stop_req;	/* incremented by worker_stop() */
	int stop_seen;
	atomic_uint grace_ms;
	atomic_bool done;
	bool started;
	bool stopping;
	/*
	 * Upgrade requests (worker_accept_off, worker_kick): stop accepting
	 * for good; accept what waits in the queues now.
	 */
	atomic_bool accept_off_req;
	bool accept_off;
	atomic_uint kick_req;
	unsigned kick_seen;
	/* worker_handover(): hand connections over until then; 0: not. */
	atomic_uint_fast64_t handover_req;
	uint64_t handover_until;
	struct __kernel_timespec handover_ts;	/* the tick meanwhile */
	uint8_t skip_ok;	/* IOSQE_CQE_SKIP_SUCCESS if the kernel has it */

	uint64_t now_ms;
	uint64_t deadline_ms;
	struct conn *conns;	/* every live conn, doubly linked */
	uint64_t next_seq;
	unsigned nconns;
	/*
	 * Provided buffers for RECV (NULL when the kernel has none): br_n
	 * buffers of br_size bytes at br_mem, group 0.
	 */
	unsigned br_n;
	unsigned br_size;
	struct io_uring_buf_ring *br;
	char *br_mem;
	struct pipe_pool pipes;
	char *buf;		/* scratch for the copy path */
	size_t bufsz;
	/* Connections handed over by an old process (upgrade.h), to adopt
	 * at the next wake; pushed by the upgrade thread. */
	pthread_mutex_t inbox_lock;
	struct handover *inbox;
} __attribute__((aligned(OP_ALIGN)));

/* An SQE, submitting first if the SQ is full.  Never NULL. */
struct io_uring_sqe *worker_sqe(struct worker *w);
/* Make room for n SQEs in a row (for linked ops). */
void worker_sqe_reserve(struct worker *w, unsigned n);

/* Provided buffer `bid` and giving it back to the kernel. */
static inline char *
worker_buf(struct worker *w, unsigned bid)
{
	return w->br_mem + (size_t)bid * w->br_size;
}

static inline void
worker_buf_put(struct worker *w, unsigned bid)
{
	io_uring_buf_ring_add(w->br, worker_buf(w, bid), w->br_size,
			      (unsigned short)bid,
			      io_uring_buf_ring_mask(w->br_n), 0);
	io_uring_buf_ring_advance(w->br, 1);
}

/* True during an fd-exhaustion episode (see worker_fd_exhausted()). */
bool worker_fds_short(void);

/* Note an EMFILE/ENFILE; logs once per episode across all workers. */
void worker_fd_exhausted(struct worker *w, const char *what);

static inline uint64_t
op_data(void *obj, enum op op)
{
	return (uint64_t)(uintptr_t)obj | (uint64_t)op;
}

/* listen.c */
void listen_handle_accept(struct wlistener *l, int res, unsigned flags);
void listen_handle_retry(struct wlistener *l);
/* Move the worker's sockets to runtime rt (see listen.c). */
void listen_follow(struct worker *w, struct runtime *rt);
/* Stop accepting on every socket (shutdown, upgrade). */
void listen_close_all(struct worker *w);
/* Accept, without waiting, whatever the worker's accept queues hold. */
void listen_kick(struct worker *w);
/* Free every socket left, once the ring is gone. */
void listen_free_all(struct worker *w);

/* conn.c */
/* A new client on l; the connection belongs to generation w->rt. */
void conn_accept(struct wlistener *l, int fd);
struct handover;
/* A connection the old process handed over (upgrade.h): ours now. */
void conn_adopt(struct worker *w, struct handover *h);
void conn_handle(struct conn *c, enum op op, int res, unsigned flags);
/* Upgrade: begin handing over each connection that holds no bytes. */
void conn_handover_scan(struct worker *w);
/* Close connections idle too long; with `all`, close every connection. */
void conn_sweep(struct worker *w, bool all);

#endif

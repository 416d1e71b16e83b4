/*
 * conn.c: one client connection joined to one backend.
 *
 * Each direction starts in copy mode: a RECV reads into one of the
 * worker's provided buffers, and a SEND sends it on straight from there;
 * when the SEND is done the buffer goes back and the next RECV is armed.  A
 * small message costs no syscall of its own (the ring ops ride along with
 * the next io_uring_enter) and one buffer at most per direction.  A partial
 * SEND (the peer's window is full) copies the rest out, so a slow peer
 * never pins a provided buffer, and no RECV is armed until it has gone,
 * which pushes back on the sender.
 *
 * A RECV that fills a whole buffer marks the direction as bulk: once its
 * SEND is done, the direction moves to ring-signalled readiness (oneshot
 * POLL_ADD) and splice(2) through a pipe borrowed from the worker's pool,
 * which moves bytes without copying them through user space.  A short
 * splice read switches it back.  When the provided buffers run out
 * (-ENOBUFS) a direction reads with poll + recv(2) into the scratch buffer
 * until its socket is drained.  DESIGN.md and the README's benchmark
 * section have the measurements behind this.
 *
 * Memory per direction is bounded: one provided buffer or the copied rest
 * of one (copy mode, RECV path), the scratch buffer's worth (poll path), or
 * one pipe (splice mode).
 *
 * Lifetime: every submitted operation counts in c->inflight until its
 * completion.  conn_finish() cancels what is in flight; the connection is
 * freed by conn_handle() once the count is zero, never by the handler that
 * is running for it.  Its sockets are then closed through the ring.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "access.h"
#include "balancer.h"
#include "engine.h"
#include "log.h"
#include "proxy_proto.h"
#include "runtime.h"
#include "sni.h"
#include "upgrade.h"

#define MAX_READS_PER_EVENT	16
#define SPLICE_SMALL		(16 * 1024)

/*
 * A connection's phases, in the order it goes through them; the optional
 * ones are skipped by a listener that does not use them, at no cost.
 * phases[] below says, per phase, which completions it acts on and what
 * bounds its time; conn_handle() and conn_sweep() consult it rather than
 * checking the phase in every handler.
 */
enum conn_phase {
	PH_PROXY_HDR,	/* accept_proxy: read the PROXY header */
	PH_PREREAD,	/* routes: read the TLS ClientHello for its SNI */
	PH_CONNECT,	/* pick a backend and connect to it */
	PH_PROXY,	/* bytes both ways (a PROXY header to send first) */
	/* Last two, so that one compare finds both (conn_handle). */
	PH_HANDOVER,	/* upgrade: reads cancelled, then to the new process */
	PH_CLOSING,	/* waiting for what is in flight, then freed */
};

/* How long a phase may last. */
enum phase_limit {
	LIMIT_NONE,	/* bounded elsewhere (the connect's linked timeout) */
	LIMIT_START,	/* limit_ms since the phase began (c->last_ms) */
	LIMIT_IDLE,	/* limit_ms since the last byte moved (c->last_ms) */
};

#define OPBIT(op) (1u << (op))
/* The ms a limit reads, as a field of the listener's config. */
#define LIMIT_MS(field) offsetof(struct cfg_listener, field)

struct conn;

struct phase {
	unsigned accepts;	/* OPBIT()s of the completions it acts on */
	enum phase_limit limit;
	size_t limit_ms;	/* LIMIT_MS(): where the bound is configured */
	const char *expired;	/* end= when its limit passes */
	enum refuse_reason refuse; /* ... counted as; REFUSE_MAX: not one */
	/*
	 * A phase that reads the client's first bytes: they are queued in
	 * the client's direction (so they reach the backend later), at most
	 * read_max of them, and then this decides.
	 */
	void (*on_bytes)(struct conn *c);
	size_t read_max;
	/* Its limit passed: instead of ending with `expired`/`refuse`. */
	void (*on_expired)(struct conn *c);
};

static void proxy_hdr_bytes(struct conn *c);
static void preread_bytes(struct conn *c);
static void preread_expired(struct conn *c);

static const struct phase phases[] = {
	[PH_PROXY_HDR] = {
		.accepts = OPBIT(OP_POLL_IN),
		.limit = LIMIT_START,
		.limit_ms = LIMIT_MS(accept_proxy.timeout_ms),
		.expired = "proxy-timeout",
		.refuse = REFUSE_PROXY_TIMEOUT,
		.on_bytes = proxy_hdr_bytes,
		.read_max = PP_HDR_MAX,
	},
	[PH_PREREAD] = {
		.accepts = OPBIT(OP_POLL_IN),
		.limit = LIMIT_START,
		.limit_ms = LIMIT_MS(preread_ms),
		.refuse = REFUSE_MAX,
		.on_bytes = preread_bytes,
		.read_max = SNI_READ_MAX,
		.on_expired = preread_expired,
	},
	[PH_CONNECT] = {
		.accepts = OPBIT(OP_CONNECT),
		.limit = LIMIT_NONE,
		.refuse = REFUSE_MAX,
	},
	[PH_PROXY] = {
		.accepts = OPBIT(OP_POLL_IN) | OPBIT(OP_POLL_IN1) |
			   OPBIT(OP_POLL_OUT) | OPBIT(OP_POLL_OUT1) |
			   OPBIT(OP_RECV) | OPBIT(OP_RECV1) | OPBIT(OP_SEND) |
			   OPBIT(OP_SEND1),
		.limit = LIMIT_IDLE,
		.limit_ms = LIMIT_MS(idle_ms),
		.expired = "idle-timeout",
		.refuse = REFUSE_MAX,
	},
	[PH_HANDOVER] = {
		/* conn_retire() keeps what a cancelled RECV brought. */
		.accepts = 0,
		.limit = LIMIT_NONE,
		.refuse = REFUSE_MAX,
	},
	[PH_CLOSING] = {
		.accepts = 0,
		.limit = LIMIT_NONE,
		.refuse = REFUSE_MAX,
	},
};

/*
 * What the optional phases learnt about a connection; NULL for a listener
 * that has none of them.
 */
struct conn_meta {
	struct sockaddr_in6 via;	/* the socket's peer, if a PROXY header */
	struct sockaddr_in6 local;	/* advertised destination, if any */
	bool proxied;			/* a PROXY header gave the client */
	uint8_t *tlv;			/* its v2 TLVs, to pass on */
	size_t tlv_len;
	char *sni;			/* from the ClientHello, lowercase */
};

enum { CLIENT = 0, BACKEND = 1 };

struct side {
	int fd;
	bool poll_in : 1;	/* POLL_ADD POLLIN in flight */
	bool poll_out : 1;	/* POLL_ADD POLLOUT in flight */
	bool recv : 1;		/* RECV in flight */
	bool reset : 1;		/* close with SO_LINGER {1,0}: send RST */
};

/* Bytes flowing from side[i] to side[!i]. */
struct dir {
	char *buf;		/* copy mode: bytes queued behind the SEND */
	uint32_t len;
	uint32_t tx_len;	/* SEND in flight: tx_len bytes at tx, */
	const char *tx;		/* in provided buffer tx_bid, or in tx_mem */
	char *tx_mem;		/* (malloc'd; NULL for a provided buffer) */
	unsigned tx_bid;
	struct pipe *pipe;	/* splice mode: unsent bytes in the pipe */
	uint32_t in_pipe;
	bool splice;		/* bulk: read with splice */
	bool no_bufs;		/* provided buffers ran out: read with poll */
	bool sending;		/* SEND in flight */
	bool eof;		/* source reached EOF */
	bool shut;		/* destination shut down for writing */
	uint64_t bytes;		/* moved so far */
	uint64_t published;	/* ... of which counted in the stats */
};

struct conn {
	struct conn *prev;
	struct conn *next;
	struct worker *w;
	/* The listener it came in on, of the generation it was accepted
	 * under (lsn->rt), which it keeps to the end. */
	struct listener *lsn;
	struct pool *pool;	/* that generation's pool it is balanced over */
	struct backend *b;	/* holds an active reference when set */
	unsigned kill_gen;	/* b->kill_gen when b was picked */
	uint16_t tried[CFG_ATTEMPTS_MAX]; /* indexes in pool->backends */
	uint8_t ntried;
	uint16_t sides_tried;	/* split sides passed over, by index */
	uint32_t src;		/* per-source slot held (access.h), 0: none */
	struct side s[2];
	struct dir d[2];
	unsigned inflight;
	bool connecting;
	bool admitted;		/* holds the listener's active count */
	uint8_t phase;		/* enum conn_phase */
	bool resume;		/* PH_HANDOVER: bytes came, it stays here */
	struct conn_meta *meta;
	uint64_t id;
	uint64_t start_ms;
	/*
	 * Proxying: when the last byte moved; before: when the phase began
	 * (the reading phases are bounded from their start, not by idleness).
	 */
	uint64_t last_ms;
	struct sockaddr_in6 peer;	/* holds an IPv4 one too */
	/* ms from start_ms to the backend's connect, plus 1; 0: not
	 * connected (or adopted: not known).  Fills a hole: no bigger. */
	uint32_t connect_ms1;
	/* The split side it was sent to (holds its active count); or NULL. */
	const struct split_side *side;
} __attribute__((aligned(OP_ALIGN)));

static void conn_connect_next(struct conn *c);
static void conn_pump(struct conn *c, int from);
static void conn_read_error(struct conn *c, int from, int err);
static int dir_queue(struct dir *d, const char *data, size_t n);
static void conn_log_end(const struct conn *c, const char *why);
static void conn_write_error(struct conn *c, int from, int err);
static void conn_backend_ended(struct conn *c);

static const char *
conn_phase_name(enum conn_phase ph)
{
	switch (ph) {
	case PH_PROXY_HDR:
		return "proxy-header";
	case PH_PREREAD:
		return "preread";
	case PH_CONNECT:
		return "connect";
	case PH_PROXY:
		return "proxy";
	case PH_HANDOVER:
		return "handover";
	case PH_CLOSING:
		return "closing";
	}
	return "?";
}

static void
conn_set_phase(struct conn *c, enum conn_phase ph)
{
	if (log_enabled(LOG_DEBUG))
		log_debug("conn=%llu %s -> %s", (unsigned long long)c->id,
			  conn_phase_name(c->phase), conn_phase_name(ph));
	c->phase = (uint8_t)ph;
	c->last_ms = c->w->now_ms;
}

static void
conn_submit_poll(struct conn *c, int side, bool out)
{
	struct io_uring_sqe *sqe = worker_sqe(c->w);
	enum op op;

	if (out) {
		op = side ? OP_POLL_OUT1 : OP_POLL_OUT;
		c->s[side].poll_out = true;
		io_uring_prep_poll_add(sqe, c->s[side].fd, POLLOUT);
	} else {
		op = side ? OP_POLL_IN1 : OP_POLL_IN;
		c->s[side].poll_in = true;
		io_uring_prep_poll_add(sqe, c->s[side].fd, POLLIN | POLLRDHUP);
	}
	io_uring_sqe_set_data64(sqe, op_data(c, op));
	c->inflight++;
}

static void
want_out(struct conn *c, int side)
{
	if (!c->s[side].poll_out)
		conn_submit_poll(c, side, true);
}

static void
conn_cancel(struct conn *c, enum op op)
{
	struct io_uring_sqe *sqe = worker_sqe(c->w);

	io_uring_prep_cancel64(sqe, op_data(c, op), 0);
	io_uring_sqe_set_data64(sqe, op_data(c, OP_CANCEL));
	c->inflight++;
}

/*
 * RECV into one of the worker's provided buffers.  POLL_FIRST: in a
 * request/response exchange the next bytes are rarely there yet, so the
 * kernel arms its poll without trying a read first.
 */
static void
recv_arm(struct conn *c, int side)
{
	struct io_uring_sqe *sqe = worker_sqe(c->w);

	io_uring_prep_recv(sqe, c->s[side].fd, NULL, c->w->br_size, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = 0;
	sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
	io_uring_sqe_set_data64(sqe, op_data(c, side ? OP_RECV1 : OP_RECV));
	c->s[side].recv = true;
	c->inflight++;
}

/* Wait for bytes to read from `side`, in the direction's current mode. */
static void
want_read(struct conn *c, int side)
{
	struct side *s = &c->s[side];
	struct dir *d = &c->d[side];

	if (s->recv || s->poll_in)
		return;
	if (c->w->br && !d->splice && !d->no_bufs && !d->sending && !d->len)
		recv_arm(c, side);
	else
		conn_submit_poll(c, side, false);
}

/*
 * The one way a connection ends.  Cancels what is in flight; conn_handle()
 * frees it when the last completion has come back.
 */
static void
conn_finish(struct conn *c, const char *why)
{
	if (c->phase == PH_CLOSING)
		return;
	conn_set_phase(c, PH_CLOSING);
	/*
	 * Cancel each op by its exact user_data: cancel-by-fd scans every
	 * armed poll of the ring, which made tearing down many connections
	 * quadratic (9,000 resets: 3.0 s of CPU, 0.17 s this way).
	 */
	if (c->s[CLIENT].poll_in)
		conn_cancel(c, OP_POLL_IN);
	if (c->s[CLIENT].poll_out)
		conn_cancel(c, OP_POLL_OUT);
	if (c->s[BACKEND].poll_in)
		conn_cancel(c, OP_POLL_IN1);
	if (c->s[BACKEND].poll_out)
		conn_cancel(c, OP_POLL_OUT1);
	if (c->s[CLIENT].recv)
		conn_cancel(c, OP_RECV);
	if (c->s[BACKEND].recv)
		conn_cancel(c, OP_RECV1);
	if (c->d[CLIENT].sending)
		conn_cancel(c, OP_SEND);
	if (c->d[BACKEND].sending)
		conn_cancel(c, OP_SEND1);
	if (c->connecting)
		conn_cancel(c, OP_CONNECT);	/* its linked timeout goes too */
	conn_log_end(c, why);
}

/*
 * The one line a connection leaves in the log when it ends (HAProxy's
 * tcplog has the same facts): who, through what, to which backend and
 * address, how long the connect took and how many attempts failed first,
 * the bytes each way, how long, and why it ended.
 */
static void
conn_log_end(const struct conn *c, const char *why)
{
	char client[80], via[86], cms[24], addr[80] = "-";

	if (!log_enabled(LOG_INFO))
		return;
	log_addr((const struct sockaddr *)&c->peer, client, sizeof(client));
	if (c->b)
		log_addr((const struct sockaddr *)&c->b->cfg->addr.ss, addr,
			 sizeof(addr));
	via[0] = '\0';
	if (c->meta && c->meta->proxied) {
		memcpy(via, " via=", 5);
		log_addr((const struct sockaddr *)&c->meta->via, via + 5,
			 sizeof(via) - 5);
	}
	if (c->connect_ms1)
		snprintf(cms, sizeof(cms), "%u", c->connect_ms1 - 1);
	else
		snprintf(cms, sizeof(cms), "-");
	log_event(LOG_INFO, "connection",
		  "conn=%llu client=%s%s listener=%s%s%s pool=%s backend=%s "
		  "addr=%s connect_ms=%s retries=%u up=%llu down=%llu ms=%llu "
		  "end=%s",
		  (unsigned long long)c->id, client, via, c->lsn->cfg->name,
		  c->meta && c->meta->sni ? " sni=" : "",
		  c->meta && c->meta->sni ? c->meta->sni : "",
		  c->pool ? c->pool->cfg->name : "-",
		  c->b ? c->b->cfg->name : "-",
		  addr, cms, (unsigned)c->ntried,
		  (unsigned long long)c->d[CLIENT].bytes,
		  (unsigned long long)c->d[BACKEND].bytes,
		  (unsigned long long)(c->w->now_ms - c->start_ms), why);
}

/*
 * Close through the ring: the close rides along with the next
 * io_uring_enter instead of costing a syscall.  Nothing of the connection
 * is in flight any more, and nobody waits for the completion (user_data 0).
 */
static void
side_close(struct worker *w, struct side *s)
{
	struct io_uring_sqe *sqe;

	if (s->fd < 0)
		return;
	if (s->reset) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	if (worker_fds_short()) {
		/* Out of fds: the next accept or socket() needs this one now. */
		close(s->fd);
		s->fd = -1;
		return;
	}
	sqe = worker_sqe(w);
	io_uring_prep_close(sqe, s->fd);
	io_uring_sqe_set_data64(sqe, 0);
	sqe->flags |= w->skip_ok;
	s->fd = -1;
}

/*
 * Add the bytes moved since the last call to the backend's and the
 * listener's counters.  The sweep calls it every tick, so long-lived
 * connections show up in the stats while they run, not only at the end.
 */
static void
conn_publish_bytes(struct conn *c)
{
	uint64_t in = c->d[CLIENT].bytes - c->d[CLIENT].published;
	uint64_t out = c->d[BACKEND].bytes - c->d[BACKEND].published;

	if (!in && !out)
		return;
	c->d[CLIENT].published = c->d[CLIENT].bytes;
	c->d[BACKEND].published = c->d[BACKEND].bytes;
	if (c->b) {
		atomic_fetch_add_explicit(&c->b->bytes_in, in,
					  memory_order_relaxed);
		atomic_fetch_add_explicit(&c->b->bytes_out, out,
					  memory_order_relaxed);
	}
	atomic_fetch_add_explicit(&c->lsn->stats->bytes_in, in,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&c->lsn->stats->bytes_out, out,
				  memory_order_relaxed);
}

static void
conn_free(struct conn *c)
{
	struct worker *w = c->w;

	for (int i = 0; i < 2; i++) {
		struct dir *d = &c->d[i];

		side_close(w, &c->s[i]);
		if (d->pipe) {
			if (d->in_pipe)
				pipe_pool_discard(&w->pipes, d->pipe);
			else
				pipe_pool_put(&w->pipes, d->pipe, w->now_ms);
		}
		free(d->buf);
		free(d->tx_mem);
	}
	conn_publish_bytes(c);
	if (c->b)
		pool_release(c->b);
	/* The listener's active count and the source's slot. */
	if (c->admitted)
		access_release(c->lsn, c->src);
	if (c->side)
		atomic_fetch_sub_explicit(&c->side->n->active, 1,
					  memory_order_relaxed);
	if (c->meta) {
		free(c->meta->tlv);
		free(c->meta->sni);
		free(c->meta);
	}
	/* Last: once the count is zero the runtime may be freed. */
	atomic_fetch_sub_explicit(&c->lsn->rt->conns[w->id].n, 1,
				  memory_order_release);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	w->nconns--;
	free(c);
}

/*
 * Refuse a connection that is already open (its first bytes were read):
 * counted and logged by reason, and the client gets a reset.
 */
static void
conn_refuse(struct conn *c, enum refuse_reason r, const char *end,
	    const char *detail)
{
	access_refused(c->lsn, r, &c->peer, c->w->now_ms, detail);
	c->s[CLIENT].reset = true;
	conn_finish(c, end);
}

/* Wait for the client's first bytes (a reading phase). */
static void
conn_read_client(struct conn *c)
{
	if (!c->s[CLIENT].poll_in)
		conn_submit_poll(c, CLIENT, false);
}

/* The client's address, read if nothing has needed it yet. */
static void
conn_peer(struct conn *c)
{
	socklen_t len = sizeof(c->peer);

	if (c->peer.sin6_family != AF_UNSPEC)
		return;
	if (getpeername(c->s[CLIENT].fd, (struct sockaddr *)&c->peer,
			&len) < 0)
		c->peer.sin6_family = AF_UNSPEC;
}

/* Send c to split side sd: its pool, and its counts (moved from before). */
static void
conn_set_side(struct conn *c, const struct split_side *sd)
{
	if (c->side) {
		atomic_fetch_sub_explicit(&c->side->n->conns, 1,
					  memory_order_relaxed);
		atomic_fetch_sub_explicit(&c->side->n->active, 1,
					  memory_order_relaxed);
	}
	atomic_fetch_add_explicit(&sd->n->conns, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&sd->n->active, 1, memory_order_relaxed);
	c->side = sd;
	c->pool = sd->pool;
}

/*
 * The pool of c's split side had no eligible backend for it: the next
 * side the split gives, passing over the ones tried.  false if none.
 */
static bool
conn_next_side(struct conn *c)
{
	const struct split_side *sd;

	if (!c->side)
		return false;
	c->sides_tried |= (uint16_t)(1u << c->side->index);
	sd = split_pick(c->side->split, &c->peer, c->sides_tried);
	if (!sd)
		return false;
	conn_set_side(c, sd);
	return true;
}

/* Pick and connect, in t's pool or a side of its split. */
static void
conn_start(struct conn *c, const struct target *t)
{
	/* Bytes read ahead count once they are the client's to forward. */
	c->d[CLIENT].bytes += c->d[CLIENT].len;
	conn_set_phase(c, PH_CONNECT);
	if (t->split) {
		if (t->split->cfg->sticky)
			conn_peer(c);
		/* Weights total more than 0 (config, split_set): a side. */
		conn_set_side(c, split_pick(t->split, &c->peer, 0));
	} else {
		c->pool = t->pool;
	}
	conn_connect_next(c);
}

/*
 * Who the client is, is known (from the socket or a PROXY header): route
 * by SNI if the listener does, else go on to connect.
 */
static void
conn_identified(struct conn *c)
{
	if (!c->lsn->cfg->nroutes) {
		conn_start(c, &c->lsn->to);
		return;
	}
	conn_set_phase(c, PH_PREREAD);
	/* Bytes behind a PROXY header may hold the ClientHello already. */
	if (c->d[CLIENT].len)
		preread_bytes(c);
	if (c->phase == PH_PREREAD)
		conn_read_client(c);
}

/*
 * No route for the client (why: no SNI, no match, not TLS, too long, the
 * preread timeout): the listener's own pool, or a refusal.
 */
static void
preread_default(struct conn *c, enum refuse_reason r, const char *end)
{
	if (c->lsn->to.pool || c->lsn->to.split) {
		conn_start(c, &c->lsn->to);
		return;
	}
	conn_refuse(c, r, end, NULL);
}

/* PH_PREREAD: route once the ClientHello is whole, unchanged in the queue. */
static void
preread_bytes(struct conn *c)
{
	const struct cfg_listener *l = c->lsn->cfg;
	struct dir *d = &c->d[CLIENT];
	char name[SNI_NAME_MAX];
	const struct cfg_route *best = NULL;

	switch (sni_parse((const uint8_t *)d->buf, d->len, name)) {
	case SNI_MORE:
		if (d->eof || d->len >= SNI_READ_MAX)
			preread_default(c, REFUSE_NO_ROUTE, "no-route");
		return;
	case SNI_NONE:
	case SNI_NOT_TLS:
		preread_default(c, REFUSE_NO_ROUTE, "no-route");
		return;
	case SNI_FOUND:
		break;
	}
	if (!c->meta && !(c->meta = calloc(1, sizeof(*c->meta)))) {
		conn_finish(c, "error");
		return;
	}
	c->meta->sni = strdup(name);
	if (!c->meta->sni) {
		conn_finish(c, "error");
		return;
	}
	/* Exact names win; "*.x" matches one label, so one wildcard can. */
	for (size_t i = 0; i < l->nroutes; i++) {
		if (!sni_match(l->routes[i].sni, name))
			continue;
		best = &l->routes[i];
		if (best->sni[0] != '*')
			break;
	}
	if (!best) {
		preread_default(c, REFUSE_NO_ROUTE, "no-route");
		return;
	}
	conn_start(c, &c->lsn->routes[best - l->routes]);
}

static void
preread_expired(struct conn *c)
{
	preread_default(c, REFUSE_PREREAD_TIMEOUT, "preread-timeout");
}

void
conn_accept(struct wlistener *l, int fd)
{
	struct worker *w = l->w;
	struct listener *ls = l->lsn;
	struct sockaddr_in6 peer = { .sin6_family = AF_UNSPEC };
	struct conn *c;
	uint32_t src = 0;
	int hdr = 0;

	/* accept_proxy: a peer in "from" is admitted by its header. */
	if (ls->cfg->accept_proxy.enabled &&
	    (hdr = access_proxy_gate(ls, fd, w->now_ms, &peer)) < 0)
		return;
	/* Refused (ACL, limits): closed and counted there, nothing to free. */
	if (!hdr && access_admit(ls, fd, w->now_ms, &peer, &src) < 0)
		return;
	c = aligned_alloc(OP_ALIGN, sizeof(*c));
	if (!c)
		goto out_nomem;
	memset(c, 0, sizeof(*c));
	if (hdr && !(c->meta = calloc(1, sizeof(*c->meta))))
		goto out_nomem;
	c->admitted = !hdr;
	c->src = src;
	c->peer = peer;
	c->w = w;
	c->lsn = ls;
	c->s[CLIENT].fd = fd;
	c->s[BACKEND].fd = -1;
	c->id = w->next_seq++ * 256 + w->id;
	c->start_ms = w->now_ms;
	c->last_ms = w->now_ms;
	c->phase = PH_CONNECT;
	/* Only the info-level close line needs the client's address. */
	if (log_enabled(LOG_INFO))
		conn_peer(c);

	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	w->nconns++;
	atomic_fetch_add_explicit(&c->lsn->rt->conns[w->id].n, 1,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&c->lsn->stats->accepts, 1,
				  memory_order_relaxed);
	if (hdr) {
		conn_set_phase(c, PH_PROXY_HDR);
		conn_read_client(c);
	} else {
		conn_identified(c);
	}
	/* No backend at all: nothing went in flight, so it ends here. */
	if (c->phase == PH_CLOSING && c->inflight == 0)
		conn_free(c);
	return;

out_nomem:
	log_error("listener %s: out of memory for a connection",
		  ls->cfg->name);
	free(c);
	if (!hdr)
		access_release(ls, src);
	close(fd);
}

/*
 * PH_PROXY_HDR: the bytes so far hold a PROXY header, part of one, or
 * something else.  A whole one makes the client it names the client
 * everywhere (checks, pick, the header sent on, the log); what follows it
 * stays queued for the backend.
 */
static void
proxy_hdr_bytes(struct conn *c)
{
	struct dir *d = &c->d[CLIENT];
	struct conn_meta *m = c->meta;
	struct pp_info pi;
	const char *why;
	size_t n;

	switch (pp_parse((const uint8_t *)d->buf, d->len, &pi, &n, &why)) {
	case PP_MORE:
		if (d->eof)
			conn_refuse(c, REFUSE_PROXY_BAD, "proxy-bad",
				    "closed before a whole PROXY header");
		else if (d->len >= PP_HDR_MAX)
			conn_refuse(c, REFUSE_PROXY_BAD, "proxy-bad",
				    "PROXY header too long");
		return;
	case PP_BAD:
		conn_refuse(c, REFUSE_PROXY_BAD, "proxy-bad", why);
		return;
	case PP_OK:
		break;
	}
	m->via = c->peer;
	if (!pi.local) {
		m->proxied = true;
		m->local = pi.dst;
		c->peer = pi.src;
		if (pi.tlv_len) {
			m->tlv = malloc(pi.tlv_len);
			if (!m->tlv) {
				conn_finish(c, "error");
				return;
			}
			memcpy(m->tlv, d->buf + pi.tlv_off, pi.tlv_len);
			m->tlv_len = pi.tlv_len;
		}
	}
	memmove(d->buf, d->buf + n, d->len - n);
	d->len -= (uint32_t)n;
	if (access_admit_addr(c->lsn, &c->peer, c->w->now_ms, &c->src) < 0) {
		c->s[CLIENT].reset = true;
		conn_finish(c, "refused");
		return;
	}
	c->admitted = true;
	conn_identified(c);
}

/*
 * A reading phase's client is readable: queue what it sent (up to the
 * phase's read_max) and let the phase decide.
 */
static void
conn_read_phase(struct conn *c, int res)
{
	const struct phase *ph = &phases[c->phase];
	struct dir *d = &c->d[CLIENT];
	enum conn_phase was = c->phase;

	c->s[CLIENT].poll_in = false;
	if (res < 0 && res != -ECANCELED) {
		conn_finish(c, "error");
		return;
	}
	while (!d->eof && d->len < ph->read_max) {
		size_t want = ph->read_max - d->len;
		ssize_t n = recv(c->s[CLIENT].fd, c->w->buf,
				 want < c->w->bufsz ? want : c->w->bufsz,
				 MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0) {
			conn_read_error(c, CLIENT, -errno);
			return;
		}
		if (n == 0) {
			d->eof = true;
			break;
		}
		if (dir_queue(d, c->w->buf, (size_t)n) < 0) {
			conn_finish(c, "error");
			return;
		}
	}
	ph->on_bytes(c);
	if (c->phase == was)
		conn_read_client(c);
}

/* The next eligible backend of c->pool that c has not tried; or NULL. */
static struct backend *
conn_pick(struct conn *c)
{
	const struct cfg_pool *pc = c->pool->cfg;
	struct backend *tried[CFG_ATTEMPTS_MAX];
	struct pick_ctx ctx = {
		.client = &c->peer,
		.local = c->meta && c->meta->proxied ? &c->meta->local : NULL,
		.sni = c->meta ? c->meta->sni : NULL,
		.tried = tried,
		.ntried = c->ntried,
		/* fail_ms 0: marks from before a reload count for nothing. */
		.now_ms = pc->fail_ms ? c->w->now_ms : 0,
		.clock_ms = c->w->now_ms,
	};

	if (c->ntried >= pc->connect_attempts)
		return NULL;
	/* A hash of the client needs its address, even at warn. */
	if (c->pool->ops->needs_client)
		conn_peer(c);
	for (unsigned i = 0; i < c->ntried; i++)
		tried[i] = c->pool->backends[c->tried[i]];
	return pool_pick(c->pool, &ctx);
}

/*
 * The one retry path: pick the next eligible backend that this client has
 * not tried yet and connect to it, with the listener's connect timeout.
 */
static void
conn_connect_next(struct conn *c)
{
	const struct cfg_pool *pc;
	struct io_uring_sqe *sqe;
	struct backend *b;
	bool full = false;
	int one = 1;
	int fd;

	b = conn_pick(c);
	/* A split side with nothing eligible for a new client: the next. */
	while (!b && !c->ntried) {
		full |= pool_full(c->pool);
		if (!conn_next_side(c))
			break;
		b = conn_pick(c);
	}
	pc = c->pool->cfg;
	if (!b && full) {
		/* Backends are up but all at max_connections. */
		access_refused(c->lsn, REFUSE_BACKEND_FULL, &c->peer,
			       c->w->now_ms, NULL);
		conn_finish(c, "backend-full");
		return;
	}
	if (!b) {
		atomic_fetch_add_explicit(c->ntried ?
						  &c->lsn->stats->connect_failed :
						  &c->lsn->stats->no_backend,
					  1, memory_order_relaxed);
		conn_finish(c, c->ntried ? "connect-failed" : "no-backend");
		return;
	}
	fd = socket(b->cfg->addr.ss.ss_family,
		    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 && (errno == EMFILE || errno == ENFILE) &&
	    io_uring_sq_ready(&c->w->ring)) {
		/* Closes queued on the ring free fds once submitted. */
		io_uring_submit(&c->w->ring);
		fd = socket(b->cfg->addr.ss.ss_family,
			    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	}
	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE)
			worker_fd_exhausted(c->w, "backend socket");
		else
			log_warn("conn=%llu pool=%s backend=%s: socket: %s",
				 (unsigned long long)c->id, pc->name,
				 b->cfg->name, strerror(errno));
		pool_release(b);
		conn_finish(c, "error");
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/*
	 * The client has spoken (client_speaks_first): our handshake's last
	 * ACK can wait for its bytes and go with them, a packet fewer per
	 * connection (HAProxy's tcp-smart-connect).  Never otherwise: a
	 * server that speaks first would wait for that ACK up to 40 ms.
	 */
	if (c->lsn->cfg->client_first) {
		int zero = 0;

		setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &zero, sizeof(zero));
	}
	/* Checked with the config: only a name this process may set. */
	if (pc->tcp_cc[0])
		setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, pc->tcp_cc,
			   (socklen_t)strlen(pc->tcp_cc));
	c->b = b;
	c->kill_gen = atomic_load_explicit(&b->kill_gen, memory_order_relaxed);
	c->s[BACKEND].fd = fd;
	c->connecting = true;

	worker_sqe_reserve(c->w, 2);
	sqe = worker_sqe(c->w);
	io_uring_prep_connect(sqe, fd,
			      (const struct sockaddr *)&b->cfg->addr.ss,
			      b->cfg->addr.len);
	io_uring_sqe_set_data64(sqe, op_data(c, OP_CONNECT));
	sqe->flags |= IOSQE_IO_LINK;
	sqe = worker_sqe(c->w);
	/* The kernel copies the timeout at submission: one per pool will do. */
	io_uring_prep_link_timeout(sqe, &c->pool->connect_ts, 0);
	io_uring_sqe_set_data64(sqe, op_data(c, OP_CONNECT_TIMEOUT));
	c->inflight += 2;
}

/*
 * Did the backend (or the way to it) fail the connect, rather than this
 * host (no local port, no memory)?  Only the former marks it.
 */
static bool
connect_err_remote(int res)
{
	switch (-res) {
	case ECANCELED:		/* our connect timeout */
	case ECONNREFUSED:
	case ECONNRESET:
	case ETIMEDOUT:
	case EHOSTUNREACH:
	case ENETUNREACH:
		return true;
	}
	return false;
}

/* A listener bound to one address: its clients' local address is it. */
static bool
addr_is_wildcard(const struct cfg_addr *a)
{
	const struct sockaddr_in *s4 = (const void *)&a->ss;
	const struct sockaddr_in6 *s6 = (const void *)&a->ss;

	if (a->ss.ss_family == AF_INET)
		return s4->sin_addr.s_addr == htonl(INADDR_ANY);
	return IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr);
}

/*
 * Put the PROXY header for this connection's backend in front of what is
 * queued for it, so it goes out before any client byte, in one write.
 * The client is the one a header in front advertised, if any; so is the
 * address it connected to, else the listener's (a syscall only for a
 * wildcard listener).  Bytes the client has sent by now are read and go
 * in the same write: a request right behind the header, in one segment,
 * costs the backend one wake-up instead of two (measured: a PROXY v2
 * header cost 6% more CPU per new connection sent alone, 2-3% this way).
 * 0 or -errno.
 */
static int
conn_proxy_header(struct conn *c)
{
	const struct cfg_listener *lc = c->lsn->cfg;
	struct dir *d = &c->d[CLIENT];
	struct sockaddr_in6 local;
	const struct sockaddr *dst = (const struct sockaddr *)&local;
	socklen_t len = sizeof(local);
	char hdr[PP_OUT_MAX], *nb;
	int version = cfg_backend_send_proxy(c->pool->cfg, c->b->cfg) ==
				      SEND_PROXY_V1 ?
			      1 :
			      2;
	ssize_t n, got = 0;

	if (c->peer.sin6_family == AF_UNSPEC) {
		socklen_t plen = sizeof(c->peer);

		if (getpeername(c->s[CLIENT].fd, (struct sockaddr *)&c->peer,
				&plen) < 0)
			return -errno;
	}
	if (c->meta && c->meta->proxied)
		dst = (const struct sockaddr *)&c->meta->local;
	else if (!addr_is_wildcard(&lc->addr))
		dst = (const struct sockaddr *)&lc->addr.ss;
	else if (getsockname(c->s[CLIENT].fd, (struct sockaddr *)&local,
			     &len) < 0)
		return -errno;
	n = pp_build(version, hdr, sizeof(hdr),
		     (const struct sockaddr *)&c->peer, dst,
		     c->meta ? c->meta->sni : NULL,
		     c->meta ? c->meta->tlv : NULL,
		     c->meta ? c->meta->tlv_len : 0);
	if (n < 0)
		return (int)n;
	if (!d->len && !d->eof) {
		got = recv(c->s[CLIENT].fd, c->w->buf, c->w->bufsz,
			   MSG_DONTWAIT);
		if (got == 0)
			d->eof = true;
		if (got < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		if (got < 0)
			got = 0;
	}
	nb = malloc(d->len + (size_t)n + (size_t)got);
	if (!nb)
		return -ENOMEM;
	memcpy(nb, hdr, (size_t)n);
	if (d->len)
		memcpy(nb + n, d->buf, d->len);
	if (got)
		memcpy(nb + n, c->w->buf, (size_t)got);
	free(d->buf);
	d->buf = nb;
	d->len += (uint32_t)(n + got);
	d->bytes += (uint64_t)got;
	return 0;
}

static void
handle_connect(struct conn *c, int res)
{
	struct backend *b = c->b;

	c->connecting = false;
	if (res < 0) {
		const char *why = res == -ECANCELED ? "timed out"
						    : strerror(-res);

		atomic_fetch_add_explicit(&b->connect_failures, 1,
					  memory_order_relaxed);
		if (connect_err_remote(res))
			pool_backend_failed(c->pool, b, EJECT_CONNECT,
					    c->w->now_ms);
		log_warn("conn=%llu pool=%s backend=%s addr=%s: connect "
			 "%s (attempt %u of %u)",
			 (unsigned long long)c->id, c->pool->cfg->name,
			 b->cfg->name, b->cfg->addr.text, why, c->ntried + 1,
			 c->pool->cfg->connect_attempts);
		close(c->s[BACKEND].fd);
		c->s[BACKEND].fd = -1;
		/* b->index belongs to the newest generation: look it up here. */
		for (size_t i = 0; i < c->pool->nbackends; i++)
			if (c->pool->backends[i] == b)
				c->tried[c->ntried++] = (uint16_t)i;
		c->b = NULL;
		pool_release(b);
		conn_connect_next(c);
		return;
	}
	atomic_fetch_add_explicit(&b->total, 1, memory_order_relaxed);
	backend_success(b);
	{
		uint64_t took = c->w->now_ms - c->start_ms;

		c->connect_ms1 = took < UINT32_MAX - 1 ? (uint32_t)took + 1 :
							 UINT32_MAX;
	}
	c->last_ms = c->w->now_ms;
	conn_set_phase(c, PH_PROXY);
	if (cfg_backend_send_proxy(c->pool->cfg, b->cfg) != SEND_PROXY_OFF) {
		int rc = conn_proxy_header(c);

		if (rc == -ENOMEM || rc == -ENOSPC) {
			conn_finish(c, "error");
			return;
		}
		if (rc < 0) {
			conn_read_error(c, CLIENT, rc);
			return;
		}
	}
	/* What the reading phases took in, and any PROXY header, first. */
	if (c->d[CLIENT].len)
		conn_pump(c, CLIENT);
	else
		want_read(c, CLIENT);
	want_read(c, BACKEND);
}

/* The split side of an adopted connection: its route's split (or the
 * listener's), the side with its pool; NULL if this config has none. */
static const struct split_side *
adopt_side(const struct listener *ls, const struct handover *h)
{
	const struct split *sp = ls->to.split;

	if (!h->split)
		return NULL;
	if (h->route[0]) {
		sp = NULL;
		for (size_t i = 0; i < ls->cfg->nroutes && !sp; i++)
			if (strcmp(ls->cfg->routes[i].sni, h->route) == 0)
				sp = ls->routes[i].split;
	}
	for (size_t i = 0; sp && i < sp->nsides; i++)
		if (strcmp(sp->side[i].pool->cfg->name, h->pool) == 0)
			return &sp->side[i];
	return NULL;
}

/* What the optional phases had learnt, for the log and the stats. */
static int
adopt_meta(struct conn *c, const struct handover *h)
{
	if (!h->sni[0] && !h->proxied)
		return 0;
	c->meta = calloc(1, sizeof(*c->meta));
	if (!c->meta || (h->sni[0] && !(c->meta->sni = strdup(h->sni))))
		return -ENOMEM;
	c->meta->proxied = h->proxied;
	c->meta->via = h->via;
	c->meta->local = h->local;
	return 0;
}

void
conn_adopt(struct worker *w, struct handover *h)
{
	struct runtime *rt = w->rt;
	struct listener *ls = runtime_listener(rt, h->listener);
	struct pool *p = runtime_pool(rt, h->pool);
	struct backend *b = p ? pool_backend(p, h->backend) : NULL;
	struct conn *c = NULL;

	/* Balanced by names this config no longer has: it cannot go on. */
	if (!ls || !b || strcmp(b->cfg->addr.text, h->address) != 0 ||
	    !(c = aligned_alloc(OP_ALIGN, sizeof(*c)))) {
		log_warn("upgrade: conn=%llu of listener %s to %s/%s from "
			 "the old process is closed: %s",
			 (unsigned long long)h->id, h->listener, h->pool,
			 h->backend,
			 !ls || !b ? "this config has no such listener or "
				     "backend" :
			 c	   ? "the backend's address changed" :
				     "out of memory");
		free(c);
		close(h->fd[0]);
		close(h->fd[1]);
		return;
	}
	memset(c, 0, sizeof(*c));
	c->w = w;
	c->lsn = ls;
	c->pool = p;
	c->b = b;
	/* Counted as a pick and an admission are (released in conn_free). */
	atomic_fetch_add_explicit(&b->active, 1, memory_order_relaxed);
	access_adopt(ls, &h->peer, w->now_ms, &c->src);
	c->admitted = true;
	c->side = adopt_side(ls, h);
	if (c->side)
		atomic_fetch_add_explicit(&c->side->n->active, 1,
					  memory_order_relaxed);
	c->kill_gen = atomic_load_explicit(&b->kill_gen, memory_order_relaxed);
	c->peer = h->peer;
	c->s[CLIENT].fd = h->fd[0];
	c->s[BACKEND].fd = h->fd[1];
	for (int i = 0; i < 2; i++) {
		c->d[i].bytes = h->bytes[i];
		c->d[i].published = h->bytes[i];	/* counted there */
		/* That way is done: its EOF was read and passed on. */
		c->d[i].eof = h->closed[i];
		c->d[i].shut = h->closed[i];
	}
	c->id = h->id;
	c->start_ms = w->now_ms > h->age_ms ? w->now_ms - h->age_ms : 0;
	c->last_ms = w->now_ms > h->idle_ms ? w->now_ms - h->idle_ms : 0;
	c->phase = PH_PROXY;
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	w->nconns++;
	atomic_fetch_add_explicit(&rt->conns[w->id].n, 1,
				  memory_order_relaxed);
	log_debug("conn=%llu adopted from the old process: listener=%s "
		  "backend=%s", (unsigned long long)c->id, h->listener,
		  h->backend);
	if (adopt_meta(c, h) < 0) {
		conn_finish(c, "no-memory");
		if (c->inflight == 0)
			conn_free(c);
		return;
	}
	for (int i = 0; i < 2; i++)
		if (!c->d[i].eof)
			want_read(c, i);
}

/*
 * Half-close.  A plain syscall on purpose: the kernel runs IORING_OP_SHUTDOWN
 * on an io-wq thread that looks the fd up late, after the CLOSE queued
 * behind it (which runs at once), so it could shut down whatever socket
 * took the number next.  Measured: 200 of 200 times with a socketpair.
 */
static void
conn_shutdown(struct conn *c, int side)
{
	shutdown(c->s[side].fd, SHUT_WR);
}

/*
 * ejection.early_close: the backend ended (closed or reset) before sending
 * a byte, within 1 s of the client's arrival: a failure of that backend.
 */
static void
conn_backend_ended(struct conn *c)
{
	if (c->b && c->pool->cfg->ejection.early_close &&
	    c->d[BACKEND].bytes == 0 && c->w->now_ms - c->start_ms < 1000)
		pool_backend_failed(c->pool, c->b, EJECT_EARLY_CLOSE,
				    c->w->now_ms);
}

/* The read side of `from` failed: pass the reset on to its peer. */
static void
conn_read_error(struct conn *c, int from, int err)
{
	if (from == BACKEND)
		conn_backend_ended(c);
	if (err == -ECONNRESET || err == -EPIPE || err == -ETIMEDOUT ||
	    err == -EHOSTUNREACH) {
		c->s[!from].reset = true;
		conn_finish(c, from == CLIENT ? "client-reset" : "backend-reset");
		return;
	}
	log_warn("conn=%llu: read from %s: %s", (unsigned long long)c->id,
		 from == CLIENT ? "client" : "backend", strerror(-err));
	c->s[!from].reset = true;
	conn_finish(c, "error");
}

/* Writing to the peer of `from` failed: it is gone, so reset `from` too. */
static void
conn_write_error(struct conn *c, int from, int err)
{
	c->s[from].reset = true;
	if (err == -ECONNRESET || err == -EPIPE) {
		conn_finish(c, from == CLIENT ? "backend-reset" : "client-reset");
		return;
	}
	log_warn("conn=%llu: write to %s: %s", (unsigned long long)c->id,
		 from == CLIENT ? "backend" : "client", strerror(-err));
	conn_finish(c, "error");
}

/*
 * SEND the direction's pending bytes (tx) through the ring.  A small
 * message costs no syscall of its own: it goes in with the next
 * io_uring_enter, which also reaps what came back meanwhile.
 */
static void
send_submit(struct conn *c, int from)
{
	struct dir *d = &c->d[from];
	struct io_uring_sqe *sqe = worker_sqe(c->w);

	io_uring_prep_send(sqe, c->s[!from].fd, d->tx, d->tx_len,
			   MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, op_data(c, from ? OP_SEND1 : OP_SEND));
	d->sending = true;
	c->inflight++;
}

/* Queue n bytes behind the SEND in flight.  0 or -ENOMEM. */
static int
dir_queue(struct dir *d, const char *data, size_t n)
{
	char *nb = realloc(d->buf, d->len + n);

	if (!nb)
		return -ENOMEM;
	memcpy(nb + d->len, data, n);
	d->buf = nb;
	d->len += (uint32_t)n;
	return 0;
}

/*
 * Send what direction `from` holds: the pipe (splice(2), at once) or the
 * queue (a ring SEND).  0 when nothing is left, -EINPROGRESS while a SEND
 * is in flight (its completion pumps again), -EAGAIN when the pipe waits
 * for POLLOUT, or -errno.
 */
static int
dir_flush(struct conn *c, int from)
{
	struct dir *d = &c->d[from];
	ssize_t n;

	if (d->sending)
		return -EINPROGRESS;
	while (d->in_pipe) {
		n = splice(d->pipe->rfd, NULL, c->s[!from].fd, NULL, d->in_pipe,
			   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		d->in_pipe -= (uint32_t)n;
	}
	if (d->pipe) {
		pipe_pool_put(&c->w->pipes, d->pipe, c->w->now_ms);
		d->pipe = NULL;
	}
	if (d->len) {
		d->tx_mem = d->buf;
		d->tx = d->buf;
		d->tx_len = d->len;
		d->buf = NULL;
		d->len = 0;
		send_submit(c, from);
		return -EINPROGRESS;
	}
	return 0;
}

/*
 * Copy read: recv into the scratch buffer and send it on at once; keep what
 * the destination did not take.  Returns bytes read, 0 at EOF, or -errno
 * (-EAGAIN: nothing to read).  *blocked is set when bytes are left unsent.
 */
static ssize_t
dir_copy(struct conn *c, int from, bool *blocked, int *werr)
{
	struct worker *w = c->w;
	struct dir *d = &c->d[from];
	ssize_t n, m;

	n = recv(c->s[from].fd, w->buf, w->bufsz, MSG_DONTWAIT);
	if (n <= 0)
		return n < 0 ? -errno : 0;
	m = send(c->s[!from].fd, w->buf, (size_t)n,
		 MSG_DONTWAIT | MSG_NOSIGNAL);
	if (m < 0) {
		if (errno != EAGAIN) {
			*werr = -errno;
			return n;
		}
		m = 0;
	}
	if (m < n) {
		if (dir_queue(d, w->buf + m, (size_t)(n - m)) < 0) {
			*werr = -ENOMEM;
			return n;
		}
		*blocked = true;
	}
	return n;
}

/* Splice read into the direction's pipe.  Same returns as dir_copy(). */
static ssize_t
dir_splice(struct conn *c, int from)
{
	struct dir *d = &c->d[from];
	ssize_t n;

	n = splice(c->s[from].fd, NULL, d->pipe->wfd, NULL,
		   (size_t)c->w->pipes.size, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	if (n < 0)
		return -errno;
	d->in_pipe = (uint32_t)n;
	return n;
}

/*
 * The pump, for both directions: move bytes from side `from` to its peer
 * until the source has nothing more, the destination is full, or this
 * event's budget is spent; then ask the ring for the readiness it waits on.
 */
static void
conn_pump(struct conn *c, int from)
{
	struct dir *d = &c->d[from];
	int to = !from;
	int reads = 0;
	bool drained = false;

	for (;;) {
		bool blocked = false;
		int werr = 0;
		ssize_t n;
		int rc;

		rc = dir_flush(c, from);
		if (rc == -EINPROGRESS)
			return;
		if (rc == -EAGAIN) {
			want_out(c, to);
			return;
		}
		if (rc < 0) {
			conn_write_error(c, from, rc);
			return;
		}
		if (c->s[from].recv) {
			/* A RECV is in flight: its completion pumps again. */
			return;
		}
		if (drained) {
			/* A short read emptied the socket: wait, don't recv. */
			d->no_bufs = false;
			want_read(c, from);
			return;
		}
		if (d->eof) {
			if (c->d[to].shut) {
				/* Both ways done: close() sends this FIN. */
				d->shut = true;
				conn_finish(c, "closed");
				return;
			}
			if (!d->shut) {
				d->shut = true;
				conn_shutdown(c, to);
			}
			return;
		}
		if (reads++ == MAX_READS_PER_EVENT) {
			want_read(c, from);
			return;
		}
		if (d->splice && !d->pipe)
			d->pipe = pipe_pool_get(&c->w->pipes);
		if (!d->splice && c->w->br && !d->no_bufs) {
			want_read(c, from);
			return;
		}
		if (d->splice && d->pipe) {
			n = dir_splice(c, from);
			if (n > 0 && n < SPLICE_SMALL)
				d->splice = false;
			drained = n > 0 && n < c->w->pipes.size;
		} else {
			n = dir_copy(c, from, &blocked, &werr);
			if (n == (ssize_t)c->w->bufsz)
				d->splice = true;
			drained = n > 0 && n < (ssize_t)c->w->bufsz;
		}
		if (n == -EAGAIN || n == -EINTR) {
			if (d->pipe && !d->in_pipe) {
				pipe_pool_put(&c->w->pipes, d->pipe,
					      c->w->now_ms);
				d->pipe = NULL;
			}
			d->no_bufs = false;
			want_read(c, from);
			return;
		}
		if (n < 0) {
			conn_read_error(c, from, (int)n);
			return;
		}
		if (n == 0) {
			d->eof = true;
			if (from == BACKEND)
				conn_backend_ended(c);
			continue;
		}
		d->bytes += (uint64_t)n;
		c->last_ms = c->w->now_ms;
		if (werr) {
			conn_write_error(c, from, werr);
			return;
		}
		if (blocked)
			continue;	/* the flush SENDs the rest */
	}
}

static void
handle_recv(struct conn *c, int from, int res, unsigned flags)
{
	struct worker *w = c->w;
	struct dir *d = &c->d[from];

	c->s[from].recv = false;
	if (res > 0) {
		unsigned bid = flags >> IORING_CQE_BUFFER_SHIFT;

		d->bytes += (uint64_t)res;
		c->last_ms = w->now_ms;
		/* A full buffer: the stream is bulk, splice it from now on. */
		if ((unsigned)res == w->br_size)
			d->splice = true;
		if (!d->sending && !d->len) {
			/* Always, as RECV is armed only then: send in place. */
			d->tx = worker_buf(w, bid);
			d->tx_len = (uint32_t)res;
			d->tx_mem = NULL;
			d->tx_bid = bid;
			send_submit(c, from);
			return;	/* its completion pumps */
		}
		if (dir_queue(d, worker_buf(w, bid), (size_t)res) < 0) {
			worker_buf_put(w, bid);
			conn_write_error(c, from, -ENOMEM);
			return;
		}
		worker_buf_put(w, bid);
		conn_pump(c, from);
		return;
	}
	if (res == 0) {
		d->eof = true;
		if (from == BACKEND)
			conn_backend_ended(c);
	} else if (res == -ENOBUFS) {
		/* Every buffer is in use: read this one with poll for now. */
		d->no_bufs = true;
	} else if (res != -ECANCELED) {
		conn_read_error(c, from, res);
		return;
	}
	conn_pump(c, from);
}

/* Release what a finished SEND held. */
static void
send_release(struct conn *c, struct dir *d)
{
	if (d->tx_mem)
		free(d->tx_mem);
	else
		worker_buf_put(c->w, d->tx_bid);
	d->tx_mem = NULL;
	d->tx = NULL;
	d->tx_len = 0;
}

static void
handle_send(struct conn *c, int from, int res)
{
	struct dir *d = &c->d[from];

	d->sending = false;
	if (res < 0) {
		send_release(c, d);
		conn_write_error(c, from, res);
		return;
	}
	if ((uint32_t)res < d->tx_len) {
		/*
		 * The peer's window is full.  Copy the rest out of a provided
		 * buffer so a slow peer never pins one, and send it when the
		 * peer makes room (the ring waits for that).
		 */
		if (!d->tx_mem) {
			char *m = malloc(d->tx_len - (uint32_t)res);

			if (!m) {
				send_release(c, d);
				conn_write_error(c, from, -ENOMEM);
				return;
			}
			memcpy(m, d->tx + res, d->tx_len - (uint32_t)res);
			worker_buf_put(c->w, d->tx_bid);
			d->tx_mem = m;
			d->tx = m;
		} else {
			d->tx += res;
		}
		d->tx_len -= (uint32_t)res;
		send_submit(c, from);
		return;
	}
	send_release(c, d);
	conn_pump(c, from);
}

static void
handle_poll(struct conn *c, int side, bool out, int res)
{
	if (out)
		c->s[side].poll_out = false;
	else
		c->s[side].poll_in = false;
	if (res < 0 && res != -ECANCELED) {
		log_warn("conn=%llu: poll: %s", (unsigned long long)c->id,
			 strerror(-res));
		conn_finish(c, "error");
		return;
	}
	if (res < 0)
		return;
	/* Readable: pump out of this side.  Writable: pump into it. */
	conn_pump(c, out ? !side : side);
}

/* ---- upgrade: handing a connection over to the new process ---- */

/*
 * Does c hold none of its bytes: nothing queued, in a SEND, in a pipe,
 * no write waiting for room, no EOF not yet passed on?  And is it joined,
 * one way at least still open?
 */
static bool
conn_quiet(const struct conn *c)
{
	if (c->phase != PH_PROXY || !c->b || c->s[CLIENT].fd < 0 ||
	    c->s[BACKEND].fd < 0 || (c->d[CLIENT].eof && c->d[BACKEND].eof))
		return false;
	for (int i = 0; i < 2; i++) {
		const struct dir *d = &c->d[i];

		if (d->len || d->tx_len || d->sending || d->in_pipe ||
		    c->s[i].poll_out || d->eof != d->shut)
			return false;
	}
	return true;
}

/* A RECV the hand-over cancelled came back with bytes, an EOF or an error:
 * c stays, and goes on once nothing is in flight (handover_end). */
static void
handover_read(struct conn *c, int from, int res, unsigned flags)
{
	struct dir *d = &c->d[from];

	c->resume = true;
	if (res > 0) {
		unsigned bid = flags >> IORING_CQE_BUFFER_SHIFT;
		int rc = dir_queue(d, worker_buf(c->w, bid), (size_t)res);

		worker_buf_put(c->w, bid);
		if (rc < 0) {
			conn_write_error(c, from, -ENOMEM);
			return;
		}
		d->bytes += (uint64_t)res;
		c->last_ms = c->w->now_ms;
	} else if (res == 0) {
		d->eof = true;
		if (from == BACKEND)
			conn_backend_ended(c);
	} else if (res == -ENOBUFS) {
		d->no_bufs = true;
	} else {
		conn_read_error(c, from, res);
	}
}

/* Where c's split side is: "" for the listener's own split, else the
 * server name of its route. */
static const char *
conn_route(const struct conn *c)
{
	const struct listener *ls = c->lsn;

	for (size_t i = 0; c->side && i < ls->cfg->nroutes; i++)
		if (ls->routes[i].split == c->side->split)
			return ls->cfg->routes[i].sni;
	return "";
}

static struct handover *
handover_make(struct conn *c)
{
	struct handover *h = calloc(1, sizeof(*h));
	uint64_t now = c->w->now_ms;

	if (!h)
		return NULL;
	conn_peer(c);
	snprintf(h->listener, sizeof(h->listener), "%s", c->lsn->cfg->name);
	snprintf(h->route, sizeof(h->route), "%s", conn_route(c));
	snprintf(h->pool, sizeof(h->pool), "%s", c->pool->cfg->name);
	snprintf(h->backend, sizeof(h->backend), "%s", c->b->cfg->name);
	snprintf(h->address, sizeof(h->address), "%s", c->b->cfg->addr.text);
	h->peer = c->peer;
	h->via.sin6_family = AF_UNSPEC;
	h->local.sin6_family = AF_UNSPEC;
	if (c->meta) {
		if (c->meta->sni)
			snprintf(h->sni, sizeof(h->sni), "%s", c->meta->sni);
		h->proxied = c->meta->proxied;
		if (h->proxied) {
			h->via = c->meta->via;
			h->local = c->meta->local;
		}
	}
	h->split = c->side != NULL;
	for (int i = 0; i < 2; i++) {
		h->closed[i] = c->d[i].eof;
		h->bytes[i] = c->d[i].bytes;
		h->fd[i] = c->s[i].fd;
	}
	h->age_ms = now - c->start_ms;
	h->idle_ms = now - c->last_ms;
	h->id = c->id;
	return h;
}

/*
 * Nothing of c is in flight any more.  Hand it over if it still holds
 * none of its bytes and the upgrade takes it: its sockets are the new
 * process's then, and c goes without closing them.  Else it goes on here.
 */
static void
handover_end(struct conn *c)
{
	struct handover *h = NULL;

	if (!c->resume && c->w->handover_until &&
	    (h = handover_make(c)) && upgrade_offer(h)) {
		c->s[CLIENT].fd = -1;
		c->s[BACKEND].fd = -1;
		conn_log_end(c, "handed-over");
		c->phase = PH_CLOSING;
		return;
	}
	free(h);
	c->resume = false;
	c->phase = PH_PROXY;
	conn_pump(c, CLIENT);
	if (c->phase == PH_PROXY)
		conn_pump(c, BACKEND);
}

/* Begin handing over every connection that holds none of its bytes. */
void
conn_handover_scan(struct worker *w)
{
	struct conn *c, *next;

	for (c = w->conns; c; c = next) {
		next = c->next;
		if (!conn_quiet(c))
			continue;
		/* Not conn_set_phase(): last_ms stays the last byte's time. */
		c->phase = PH_HANDOVER;
		if (c->s[CLIENT].recv)
			conn_cancel(c, OP_RECV);
		if (c->s[CLIENT].poll_in)
			conn_cancel(c, OP_POLL_IN);
		if (c->s[BACKEND].recv)
			conn_cancel(c, OP_RECV1);
		if (c->s[BACKEND].poll_in)
			conn_cancel(c, OP_POLL_IN1);
		if (c->inflight == 0) {
			handover_end(c);
			if (c->phase == PH_CLOSING && c->inflight == 0)
				conn_free(c);
		}
	}
}

/*
 * An operation completed in a phase that does not act on it (most often:
 * the connection is closing).  Only undo what it holds.
 */
static void
conn_retire(struct conn *c, enum op op, int res, unsigned flags)
{
	switch (op) {
	case OP_CONNECT:
		c->connecting = false;
		break;
	case OP_POLL_IN:
	case OP_POLL_IN1:
		c->s[op == OP_POLL_IN1].poll_in = false;
		break;
	case OP_POLL_OUT:
	case OP_POLL_OUT1:
		c->s[op == OP_POLL_OUT1].poll_out = false;
		break;
	case OP_RECV:
	case OP_RECV1:
		c->s[op == OP_RECV1].recv = false;
		if (c->phase == PH_HANDOVER && res != -ECANCELED)
			handover_read(c, op == OP_RECV1, res, flags);
		else if (res > 0)
			worker_buf_put(c->w, flags >> IORING_CQE_BUFFER_SHIFT);
		break;
	case OP_SEND:
	case OP_SEND1:
		c->d[op == OP_SEND1].sending = false;
		send_release(c, &c->d[op == OP_SEND1]);
		break;
	case OP_CONNECT_TIMEOUT:
	case OP_CANCEL:
	case OP_ACCEPT:
	case OP_ACCEPT_RETRY:
	case OP_WAKE:
	case OP_TICK:
		break;
	}
}

void
conn_handle(struct conn *c, enum op op, int res, unsigned flags)
{
	c->inflight--;
	if (!(phases[c->phase].accepts & OPBIT(op))) {
		conn_retire(c, op, res, flags);
		goto out;
	}
	switch (op) {
	case OP_CONNECT:
		handle_connect(c, res);
		break;
	case OP_POLL_IN:
		if (phases[c->phase].on_bytes)
			conn_read_phase(c, res);
		else
			handle_poll(c, CLIENT, false, res);
		break;
	case OP_POLL_IN1:
		handle_poll(c, BACKEND, false, res);
		break;
	case OP_POLL_OUT:
	case OP_POLL_OUT1:
		handle_poll(c, op == OP_POLL_OUT1, true, res);
		break;
	case OP_RECV:
	case OP_RECV1:
		handle_recv(c, op == OP_RECV1, res, flags);
		break;
	case OP_SEND:
	case OP_SEND1:
		handle_send(c, op == OP_SEND1, res);
		break;
	case OP_CONNECT_TIMEOUT:
	case OP_CANCEL:
	case OP_ACCEPT:
	case OP_ACCEPT_RETRY:
	case OP_WAKE:
	case OP_TICK:
		break;
	}
out:
	if (c->inflight == 0 && c->phase >= PH_HANDOVER) {
		if (c->phase == PH_HANDOVER)
			handover_end(c);
		if (c->phase == PH_CLOSING && c->inflight == 0)
			conn_free(c);
	}
}

/* Has c been in its phase longer than the phase allows? */
static bool
phase_expired(const struct conn *c, uint64_t now_ms)
{
	const struct phase *ph = &phases[c->phase];
	unsigned ms;

	if (ph->limit == LIMIT_NONE)
		return false;
	memcpy(&ms, (const char *)c->lsn->cfg + ph->limit_ms, sizeof(ms));
	if (ms == 0)
		return false;	/* 0: never */
	return now_ms - c->last_ms >= ms;
}

void
conn_sweep(struct worker *w, bool all)
{
	struct conn *c, *next;

	for (c = w->conns; c; c = next) {
		next = c->next;
		if (c->phase == PH_CLOSING)
			continue;
		conn_publish_bytes(c);
		if (all) {
			conn_finish(c, "shutdown");
		} else if (c->b && c->kill_gen !=
					   atomic_load_explicit(&c->b->kill_gen,
								memory_order_relaxed)) {
			/* The operator asked to close this backend's conns. */
			conn_finish(c, "admin-closed");
		} else if (phase_expired(c, w->now_ms)) {
			const struct phase *ph = &phases[c->phase];

			if (ph->on_expired)
				ph->on_expired(c);
			else if (ph->refuse != REFUSE_MAX)
				conn_refuse(c, ph->refuse, ph->expired, NULL);
			else
				conn_finish(c, ph->expired);
		} else {
			continue;
		}
		if (c->inflight == 0)
			conn_free(c);
	}
}

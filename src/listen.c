/*
 * listen.c: listening sockets.  Each worker has its own SO_REUSEPORT socket
 * per listener, with a multishot ACCEPT on its ring; a socket lives across
 * reloads while its listener keeps its name and address, and pauses on
 * fd exhaustion instead of spinning.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine.h"
#include "listen.h"
#include "log.h"
#include "runtime.h"
#include "systemd.h"

/*
 * SO_REUSEPORT would let us share a port that another process (a second
 * ringlb, say) listens on with SO_REUSEPORT too, and silently take half of
 * its clients.  A plain bind first finds out: it fails on any listener.
 */
int
listen_probe(const struct cfg_listener *l, char *err, size_t errlen)
{
	int one = 1;
	int fd, rc = 0;

	if (cfg_addr_systemd(&l->addr))
		return 0;	/* bound by systemd, ours alone */
	fd = socket(l->addr.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;	/* the real open will say what is wrong */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (l->addr.ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&l->addr.ss, l->addr.len) < 0 &&
	    errno == EADDRINUSE) {
		rc = -EADDRINUSE;
		snprintf(err, errlen, "listener %s: cannot listen on %s: the "
			 "address is in use (by another process, such as a "
			 "second ringlb, or by an overlapping listener)",
			 l->name, l->addr.text);
	}
	close(fd);
	return rc;
}

/*
 * client_speaks_first: the kernel keeps a connection from the accept queue
 * until its first bytes are in, up to LISTEN_DEFER_S (then it is handed on
 * as usual).  Set on every generation's sockets, so a reload turns it on
 * or off for a listener that keeps its socket.
 */
#define LISTEN_DEFER_S	5

int
listen_set_defer(int fd, bool on)
{
	int s = on ? LISTEN_DEFER_S : 0;

	return setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &s, sizeof(s));
}

int
listen_cc_sysctl(const char *name, char *buf, size_t len)
{
	char path[96];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/sys/net/ipv4/tcp_%s", name);
	f = fopen(path, "re");
	if (!f)
		return -1;
	if (!fgets(buf, (int)len, f))
		buf[0] = '\0';
	(void)fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

/*
 * tcp_congestion: set on the listening socket, which its accepted sockets
 * take over.  "" puts back the system's default of now (a reload that
 * drops the key).
 */
int
listen_set_congestion(int fd, const char *name)
{
	char def[CFG_CC_NAME_MAX] = "";

	if (!name[0]) {
		if (listen_cc_sysctl("congestion_control", def, sizeof(def)) < 0)
			return -1;
		name = def;
	}
	return setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, name,
			  (socklen_t)strlen(name));
}

int
listen_open(const struct cfg_listener *l, int *out, char *err,
		   size_t errlen)
{
	const char *sd = cfg_addr_systemd(&l->addr);
	char why[768];
	int one = 1;
	int fd;

	/* Socket activation: each worker a dup of the one passed socket. */
	if (sd) {
		fd = systemd_listen_fd(sd, why, sizeof(why));
		if (fd < 0) {
			snprintf(err, errlen, "listener %s: %s", l->name, why);
			return -ENOENT;
		}
		*out = fd;
		return 0;
	}
	fd = socket(l->addr.ss.ss_family,
		    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	/*
	 * Accepted sockets inherit TCP_NODELAY from the listener, which saves
	 * a setsockopt per connection: we forward whatever arrives at once,
	 * and Nagle would only add delay.
	 */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		goto fail_close;
	if (l->addr.ss.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
		goto fail_close;
	if (bind(fd, (const struct sockaddr *)&l->addr.ss, l->addr.len) < 0)
		goto fail_close;
	if (listen(fd, l->backlog) < 0)
		goto fail_close;
	*out = fd;
	return 0;

fail_close:
	close(fd);
fail:
	snprintf(err, errlen, "listener %s: cannot listen on %s: %s", l->name,
		 l->addr.text, strerror(errno));
	return -errno;
}

static void
listener_arm(struct wlistener *l)
{
	struct io_uring_sqe *sqe = worker_sqe(l->w);

	io_uring_prep_multishot_accept(sqe, l->fd, NULL, NULL,
				       SOCK_NONBLOCK | SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, op_data(l, OP_ACCEPT));
	l->armed = true;
}

/* Free l if it is closed and nothing of it is in flight. */
static void
listener_reap(struct wlistener *l)
{
	struct worker *w = l->w;
	struct wlistener **pp;

	if (!l->closed || l->armed || l->paused)
		return;
	if (l->fd >= 0) {
		close(l->fd);
		l->fd = -1;
		w->nls_open--;
	}
	for (pp = &w->ls; *pp; pp = &(*pp)->next) {
		if (*pp == l) {
			*pp = l->next;
			break;
		}
	}
	free(l);
}

static void
listener_close(struct wlistener *l)
{
	if (l->closed)
		return;
	l->closed = true;
	if (l->armed) {
		/* Freed when the accept's last completion comes. */
		struct io_uring_sqe *sqe = worker_sqe(l->w);

		io_uring_prep_cancel64(sqe, op_data(l, OP_ACCEPT), 0);
		io_uring_sqe_set_data64(sqe, 0);
		return;
	}
	/* Not armed: close now, so the port refuses at once. */
	close(l->fd);
	l->fd = -1;
	l->w->nls_open--;
	listener_reap(l);
}

static struct wlistener *
listener_add(struct worker *w, struct listener *ls, int fd)
{
	struct wlistener *l = aligned_alloc(OP_ALIGN, sizeof(*l));

	if (!l) {
		log_error("worker %u: out of memory for listener %s", w->id,
			  ls->cfg->name);
		close(fd);
		return NULL;
	}
	memset(l, 0, sizeof(*l));
	l->w = w;
	l->lsn = ls;
	l->lid = ls->lid;
	snprintf(l->name, sizeof(l->name), "%s", ls->cfg->name);
	l->fd = fd;
	l->next = w->ls;
	w->ls = l;
	w->nls_open++;
	return l;
}

static void
listener_pause(struct wlistener *l)
{
	struct io_uring_sqe *sqe;

	worker_fd_exhausted(l->w, "accept");
	l->paused = true;
	sqe = worker_sqe(l->w);
	io_uring_prep_timeout(sqe, &l->w->retry_ts, 0, 0);
	io_uring_sqe_set_data64(sqe, op_data(l, OP_ACCEPT_RETRY));
}

/* A new client: counted (only this thread writes the count), then served. */
static void
accepted(struct wlistener *l, int fd)
{
	struct worker *w = l->w;

	atomic_store_explicit(&w->accepts_total,
			      atomic_load_explicit(&w->accepts_total,
						   memory_order_relaxed) + 1,
			      memory_order_relaxed);
	conn_accept(l, fd);
}

void
listen_handle_accept(struct wlistener *l, int res, unsigned flags)
{
	struct worker *w = l->w;
	bool more = flags & IORING_CQE_F_MORE;

	if (!more)
		l->armed = false;
	if (res >= 0) {
		/*
		 * Even after the cancel (a reload removed it, a stop, an
		 * upgrade): the kernel has handed this client over, and
		 * closing it would fail a connect that the accept queue (now
		 * another process's, after an upgrade) would have served.
		 */
		accepted(l, res);
	} else if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS ||
		   res == -ENOMEM) {
		if (!l->closed && !l->paused) {
			if (more) {
				/* Still armed: stop it, or it spins on EMFILE. */
				struct io_uring_sqe *sqe = worker_sqe(w);

				io_uring_prep_cancel64(sqe,
						       op_data(l, OP_ACCEPT), 0);
				io_uring_sqe_set_data64(sqe, 0);
			}
			listener_pause(l);
			return;
		}
	} else if (res != -ECANCELED && res != -EINTR && res != -EAGAIN &&
		   res != -ECONNABORTED) {
		log_error("listener %s: accept: %s", l->name,
			  strerror(-res));
	}
	if (l->armed)
		return;
	if (l->closed)
		listener_reap(l);
	else if (!l->paused)
		listener_arm(l);
}

void
listen_handle_retry(struct wlistener *l)
{
	l->paused = false;
	if (l->closed)
		listener_reap(l);
	else if (!l->armed)
		listener_arm(l);
}

/*
 * Follow runtime rt: sockets whose listener kept its name and address stay
 * open and take the new generation's listener; removed ones stop accepting
 * (their open connections go on under the old runtime); new ones take the
 * socket the control thread opened for this worker.
 */
void
listen_follow(struct worker *w, struct runtime *rt)
{
	struct wlistener *l, *next;

	for (l = w->ls; l; l = next) {
		struct listener *ls = NULL;

		next = l->next;
		if (l->closed)
			continue;
		for (size_t i = 0; i < rt->nlisteners && !ls; i++)
			if (rt->listeners[i].lid == l->lid)
				ls = &rt->listeners[i];
		if (ls)
			l->lsn = ls;
		else
			listener_close(l);
	}
	for (size_t i = 0; i < rt->nlisteners; i++) {
		struct listener *ls = &rt->listeners[i];
		bool have = false;
		int fd;

		for (l = w->ls; l && !have; l = l->next)
			have = !l->closed && l->lid == ls->lid;
		fd = ls->fds[w->id];
		if (have || fd < 0 || w->accept_off)
			continue;
		ls->fds[w->id] = -1;
		l = listener_add(w, ls, fd);
		if (l)
			listener_arm(l);
	}
}

/* Stop accepting everywhere (shutdown). */
void
listen_close_all(struct worker *w)
{
	for (struct wlistener *l = w->ls, *next; l; l = next) {
		next = l->next;
		listener_close(l);
	}
}

/*
 * Accept what waits in the queues, without the ring.  After an upgrade's
 * old process has stopped accepting on the sockets it shared with us: the
 * ring's accept waits on a socket as an exclusive waiter, so the kernel
 * wakes one waiter per new client, and a client whose wake-up went to the
 * old process just before it cancelled its accept would wait in the queue
 * until the next client came (measured: about one upgrade in six under a
 * connect loop left one client waiting for good).
 */
void
listen_kick(struct worker *w)
{
	for (struct wlistener *l = w->ls; l; l = l->next) {
		/* Bounded: the ring's accept takes over after that. */
		for (int i = 0; i < 1024 && !l->closed && !l->paused; i++) {
			int fd = accept4(l->fd, NULL, NULL,
					 SOCK_NONBLOCK | SOCK_CLOEXEC);

			if (fd < 0)
				break;
			accepted(l, fd);
		}
	}
}

/* After the ring is gone: free every socket left. */
void
listen_free_all(struct worker *w)
{
	while (w->ls) {
		struct wlistener *l = w->ls;

		w->ls = l->next;
		if (l->fd >= 0)
			close(l->fd);
		free(l);
	}
}

/*
 * pipepool.c: bounded per-worker pipe pool (see pipepool.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"
#include "pipepool.h"

void
pipe_pool_init(struct pipe_pool *pp, unsigned max, int want_size)
{
	pp->free = NULL;
	pp->nfree = 0;
	pp->nused = 0;
	pp->max = max;
	pp->size = want_size;
}

static struct pipe *
pipe_new(struct pipe_pool *pp)
{
	struct pipe *p;
	int fds[2];
	int sz;

	p = malloc(sizeof(*p));
	if (!p)
		return NULL;
	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0)
		goto out_free;
	/*
	 * Bigger pipes mean fewer splice calls per byte.  The kernel may grant
	 * less (pipe-max-size, per-user pipe quota); remember the smallest
	 * size granted so callers never ask a pipe for more than it holds.
	 */
	sz = fcntl(fds[1], F_SETPIPE_SZ, pp->size);
	if (sz < 0)
		sz = fcntl(fds[1], F_GETPIPE_SZ);
	if (sz > 0 && sz < pp->size)
		pp->size = sz;
	p->rfd = fds[0];
	p->wfd = fds[1];
	p->next = NULL;
	p->idle_since_ms = 0;
	return p;

out_free:
	free(p);
	return NULL;
}

static void
pipe_close(struct pipe *p)
{
	close(p->rfd);
	close(p->wfd);
	free(p);
}

struct pipe *
pipe_pool_get(struct pipe_pool *pp)
{
	struct pipe *p = pp->free;

	if (p) {
		pp->free = p->next;
		pp->nfree--;
	} else {
		if (pp->nused >= pp->max)
			return NULL;
		p = pipe_new(pp);
		if (!p)
			return NULL;
	}
	pp->nused++;
	return p;
}

void
pipe_pool_put(struct pipe_pool *pp, struct pipe *p, uint64_t now_ms)
{
	pp->nused--;
	p->idle_since_ms = now_ms;
	p->next = pp->free;
	pp->free = p;
	pp->nfree++;
}

void
pipe_pool_discard(struct pipe_pool *pp, struct pipe *p)
{
	pp->nused--;
	pipe_close(p);
}

void
pipe_pool_trim(struct pipe_pool *pp, uint64_t now_ms, uint64_t idle_ms)
{
	struct pipe **pp_next = &pp->free;
	struct pipe *p;

	while ((p = *pp_next)) {
		if (now_ms - p->idle_since_ms >= idle_ms) {
			*pp_next = p->next;
			pp->nfree--;
			pipe_close(p);
		} else {
			pp_next = &p->next;
		}
	}
}

void
pipe_pool_fini(struct pipe_pool *pp)
{
	struct pipe *p;

	while ((p = pp->free)) {
		pp->free = p->next;
		pipe_close(p);
	}
	pp->nfree = 0;
}

/*
 * pipepool.h: a worker's pipes for zero-copy splice.  Connections borrow a
 * pipe only while bytes sit in it and give it back as soon as it is empty, so
 * idle connections hold none.  The pool is bounded, and pipes left unused
 * for a while are closed, so fd use falls back to idle after a burst.
 */
#ifndef RINGLB_PIPEPOOL_H
#define RINGLB_PIPEPOOL_H

#include <stdint.h>

struct pipe {
	int rfd;
	int wfd;
	struct pipe *next;	/* free list */
	uint64_t idle_since_ms;
};

struct pipe_pool {
	struct pipe *free;
	unsigned nfree;
	unsigned nused;
	unsigned max;		/* pipes in use + free, at most */
	int size;		/* F_SETPIPE_SZ result, bytes */
};

void pipe_pool_init(struct pipe_pool *pp, unsigned max, int want_size);
/* A pipe, or NULL when the pool is at its bound or pipes cannot be made. */
struct pipe *pipe_pool_get(struct pipe_pool *pp);
/* Give back an EMPTY pipe. */
void pipe_pool_put(struct pipe_pool *pp, struct pipe *p, uint64_t now_ms);
/* Close a pipe that may still hold bytes instead of giving it back. */
void pipe_pool_discard(struct pipe_pool *pp, struct pipe *p);
/* Close free pipes unused for at least idle_ms. */
void pipe_pool_trim(struct pipe_pool *pp, uint64_t now_ms, uint64_t idle_ms);
/* Close every free pipe; pipes still in use are the borrowers' to return. */
void pipe_pool_fini(struct pipe_pool *pp);

#endif

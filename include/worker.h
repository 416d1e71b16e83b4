/*
 * worker.h: the data path.  One worker thread per configured worker, each
 * with its own io_uring and its own SO_REUSEPORT socket per listener.
 */
#ifndef RINGLB_WORKER_H
#define RINGLB_WORKER_H

struct runtime;
struct worker;

/* Probe the kernel for every io_uring feature the engine needs. 0 or -errno,
 * with the missing piece named in `err`. */
int worker_probe(char *err, size_t errlen);

/*
 * Open worker `id`'s listening sockets (so bind errors show before anything
 * starts).  Returns 0 and *out, or -errno with a message in err.
 */
int worker_create(struct runtime *rt, unsigned id, struct worker **out,
		  char *err, size_t errlen);
/* Start the thread; returns once its ring is up.  0 or -errno. */
int worker_start(struct worker *w);
/*
 * Ask the worker to stop accepting and finish its connections within
 * `grace_ms`; a second call closes what is left at once.
 */
void worker_stop(struct worker *w, unsigned grace_ms);
/* True once the thread has left its loop. */
int worker_done(struct worker *w);
/* Join the thread (if started) and free everything. */
void worker_destroy(struct worker *w);

#endif

/*
 * worker.h: the data path.  One worker thread per configured worker, each
 * with its own io_uring and its own SO_REUSEPORT socket per listener.
 * Workers follow runtime_current(): they switch generations when woken
 * (worker_wake) and at every tick.
 */
#ifndef RINGLB_WORKER_H
#define RINGLB_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct worker;

/* Probe the kernel for every io_uring feature the engine needs. 0 or -errno,
 * with the missing piece named in `err`. */
int worker_probe(char *err, size_t errlen);

/* recv_bufs: provided buffers for RECV (0: poll + recv(2) only). */
int worker_create(unsigned id, unsigned grace_ms, unsigned recv_bufs,
		  struct worker **out, char *err, size_t errlen);
/* Start the thread; returns once its ring is up.  0 or -errno. */
int worker_start(struct worker *w);
/* Make the worker look at runtime_current() now. */
void worker_wake(struct worker *w);
struct handover;
/* Give the worker a connection from an old process to adopt; it owns h. */
void worker_adopt(struct worker *w, struct handover *h);
/*
 * Ask the worker to stop accepting and finish its connections within
 * `grace_ms`; a second call closes what is left at once.
 */
void worker_stop(struct worker *w, unsigned grace_ms);
/*
 * Upgrade: stop accepting for good, connections go on (worker_listening()
 * is false once no accept is in flight any more); and accept at once
 * what waits in the accept queues (see listen_kick()).
 */
void worker_accept_off(struct worker *w);
bool worker_listening(struct worker *w);
void worker_kick(struct worker *w);
/*
 * Upgrade: offer each connection to upgrade_offer() once it holds none of
 * its bytes, until until_ms (control_now_ms()); 0: stop offering.
 */
void worker_handover(struct worker *w, uint64_t until_ms);
/* Grace period for a later worker_stop() from a signal. */
void worker_set_grace(struct worker *w, unsigned grace_ms);
/* True once the thread has left its loop. */
int worker_done(struct worker *w);
/* Generation the worker runs, and its quiescent-point counter. */
uint64_t worker_seen_gen(struct worker *w);
uint64_t worker_qs(struct worker *w);
uint64_t worker_accepts(struct worker *w);
/* Join the thread (if started) and free everything. */
void worker_destroy(struct worker *w);

#endif

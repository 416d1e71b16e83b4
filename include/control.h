/*
 * control.h: the control path.  Owns the current runtime (the one global
 * accessor, runtime_current()), the workers and the health checker, and is
 * the only place that changes running state: start, reload, operator states,
 * weights, shutdown.  Serialised by one mutex that the connection path never
 * takes.
 */
#ifndef RINGLB_CONTROL_H
#define RINGLB_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct runtime;
struct backend;
struct split;

/* The generation new connections use.  Lock-free (acquire load). */
struct runtime *runtime_current(void);

/*
 * Build generation 1 from cfg (taking ownership), open every listening
 * socket, start the workers and the health checker.  `path` is re-read on
 * reload.  0, or -errno with one line in err.
 */
int control_start(struct config *cfg, const char *path, bool verbose,
		  char *err, size_t errlen);
/* Stop accepting; connections get grace_ms to finish. */
void control_stop_begin(unsigned grace_ms);
/* Close every connection now (a second signal). */
void control_stop_now(void);
/* True once every worker has finished. */
bool control_workers_done(void);
/* Join the workers, stop health checks, free every generation.  Also
 * cleans up after a failed control_start(). */
void control_finish(void);

/* Re-read the config file and switch to it.  0, or -1 with err. */
int control_reload(char *err, size_t errlen);
/* Free generations and garbage nobody can reach any more. */
void control_reclaim(void);
/* free(p) once every worker has passed a quiescent point. */
void control_defer_free(void *p);

/*
 * Operator changes on backend B of pool P.  0, -ENOENT (unknown P or B,
 * err says which) or -EINVAL.  With close_conns, *closing gets the number
 * of open connections being closed.
 */
int control_set_admin(const char *l, const char *b, int admin,
		      bool close_conns, unsigned *closing, char *err,
		      size_t errlen);
int control_set_weight(const char *l, const char *b, unsigned weight,
		       char *err, size_t errlen);

/*
 * Operator change of a traffic split: listener l's own (route NULL or
 * ""), or that of its route with server name `route`.  The named pools
 * get the new weights (the others keep theirs); with reset, every pool
 * gets the file's weight back.  0, -ENOENT (no such listener or split) or
 * -EINVAL (a pool not in the split, a bad weight), with a reason in err.
 */
int control_set_split(const char *l, const char *route,
		      const char *const *pools, const unsigned *weights,
		      size_t n, bool reset, char *err, size_t errlen);
/* The same split, for a reader holding control_lock(); NULL and why. */
struct split *control_split(const char *l, const char *route, char *err,
			    size_t errlen);

/*
 * Discovery (discover.c): set[0..n) are now pool's discovered backends,
 * if its "discover" is still spec.  A new generation the way a reload
 * makes one, from the running config.  0, or -errno (logged).
 */
struct cfg_backend;
struct cfg_discover;
int control_discovered(const char *pool, const struct cfg_discover *spec,
		       const struct cfg_backend *set, size_t n);

struct handover;
/* A connection an old process handed over: to a worker, in turn. */
void control_adopt(struct handover *h);
/*
 * Upgrade, the old process: stop accepting on every worker, and wait (at
 * most wait_ms) until no accept of ours is in flight; false if one still
 * is.  The new process, once the old one has: accept what the queues hold.
 */
bool control_accept_off(unsigned wait_ms);
void control_kick_accept(void);
/* Upgrade, the old process: workers hand connections over until until_ms
 * (control_now_ms()); 0: no more. */
void control_handover(uint64_t until_ms);
/* Open client connections, every generation (takes the lock). */
unsigned control_open_conns(void);
/* A one-line summary for systemd's STATUS= (takes the lock). */
void control_status_line(char *out, size_t size);
/*
 * Has every running worker passed its loop within max_age_ms?  Called by
 * the main thread only (it remembers what it saw), for the watchdog.
 */
bool control_workers_progress(uint64_t now_ms, uint64_t max_age_ms);

/*
 * Readiness, for routing daemons (GET /ready): "starting" until main says
 * ringlb serves, then "serving"; "withdrawn" while an operator has said
 * so (it serves and accepts on, only /ready says 503); "stopping" once
 * ringlb stops.  Lock-free.
 */
enum readiness { READY_STARTING, READY_SERVING, READY_WITHDRAWN,
		 READY_STOPPING };
enum readiness control_readiness(void);
const char *control_readiness_name(enum readiness r);
void control_set_serving(void);
/*
 * Withdraw (on) or rejoin (off); true if that changed anything.  Logs the
 * change; since_ms: when the instance was withdrawn, 0 if it is not.
 */
bool control_withdraw(bool on);
uint64_t control_withdrawn_ms(void);

/* For readers (the admin API): hold the lock while walking the runtime. */
void control_lock(void);
void control_unlock(void);

struct control_stats {
	uint64_t start_ms;	/* CLOCK_MONOTONIC */
	uint64_t reloads;
	uint64_t reload_failures;
	unsigned nworkers;
};
void control_get_stats(struct control_stats *st);
uint64_t control_worker_accepts(unsigned i);
uint64_t control_now_ms(void);

#endif

/*
 * discover.h: backends from DNS (pools[].discover).
 *
 * One thread, "ringlb-dns", asks DNS for each discovering pool with
 * c-ares (A and AAAA, or SRV and the targets' addresses), on its own
 * channel and timers: no worker, admin request or reload ever waits for
 * DNS.  An answer that changes a pool's set of backends is applied the
 * way a reload is (control_discovered()): backends are carried by name,
 * so health, operator state, counters and open connections survive, and
 * one that is gone gets no new connections while its open ones finish.
 *
 * Failures (SERVFAIL, a timeout, REFUSED, a malformed answer) keep the
 * last good set for hold_ms and retry with backoff; NXDOMAIN and an empty
 * answer are answers, and empty the set.
 */
#ifndef RINGLB_DISCOVER_H
#define RINGLB_DISCOVER_H

#include <jansson.h>
#include <stddef.h>

#include "config.h"

struct runtime;

/* Start the thread on rt's pools (control_start).  0 or -errno. */
int discover_start(const struct runtime *rt);
/* Follow a new generation's pools (control, after a publish). */
void discover_follow(const struct runtime *rt);
/* Stop the thread, cancelling what is in flight (control_finish). */
void discover_stop(void);

/*
 * A new config from the file (a reload): give its discovering pools the
 * backends their last answers brought, so a reload drops none of them.
 * Under control_lock().
 */
void discover_inject(struct config *cfg);

/*
 * The pool's discovery for the admin API and the metrics (its last
 * answer, records, error, next query, counts by result); NULL if the
 * pool does not discover.
 */
json_t *discover_json(const char *pool);

#endif

/*
 * health.h: active health checks.  One thread probes every backend of every
 * pool and publishes up/down through backend->up (release store).
 */
#ifndef RINGLB_HEALTH_H
#define RINGLB_HEALTH_H

#include <stdbool.h>

struct runtime;

/* rise/fall counting, kept apart from the I/O so it can be tested alone. */
struct health_sm {
	unsigned rise;
	unsigned fall;
	unsigned ok_run;	/* consecutive successes while down */
	unsigned fail_run;	/* consecutive failures while up */
	bool up;
};

void health_sm_init(struct health_sm *sm, unsigned rise, unsigned fall,
		    bool up);
/* Feed one probe result; returns true when sm->up changed. */
bool health_sm_feed(struct health_sm *sm, bool ok);

enum health_result {
	HC_OK,
	HC_REFUSED,	/* connect refused or reset */
	HC_TIMEOUT,	/* no connect or no full reply within timeout_ms */
	HC_UNEXPECTED,	/* reply did not start with `expect` */
	HC_CLOSED,	/* peer closed before the full reply */
	HC_ERROR,	/* local error (socket, fds) */
};

const char *health_result_name(enum health_result r);

/* Start / stop the checker thread for every pool of rt. 0 or -errno. */
int health_start(struct runtime *rt);
void health_stop(struct runtime *rt);
/*
 * Move cur's checker to rt at a reload, keeping each carried backend's
 * probe schedule, probe in flight and rise/fall run.  0 or -errno (then rt
 * has no checker).
 */
int health_reload(struct runtime *cur, struct runtime *rt);

#endif

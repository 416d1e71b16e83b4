/*
 * backend.c: making, sharing and naming backends.
 */
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "control.h"

struct backend *
backend_new(const struct cfg_backend *cb, const struct cfg_pool *p)
{
	struct backend *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->conf = *cb;
	b->cfg = &b->conf;
	memcpy(b->pool_name, p->name, sizeof(b->pool_name));
	atomic_init(&b->up, true);
	atomic_init(&b->admin, ADMIN_READY);
	atomic_init(&b->weight, cb->weight);
	atomic_init(&b->active, 0);
	atomic_init(&b->max_conns, cb->max_connections);
	atomic_init(&b->total, 0);
	atomic_init(&b->connect_failures, 0);
	atomic_init(&b->bytes_in, 0);
	atomic_init(&b->bytes_out, 0);
	atomic_init(&b->kill_gen, 0);
	atomic_init(&b->tier, cb->tier);
	atomic_init(&b->ramp_from_ms, 0);
	atomic_init(&b->since_ms, control_now_ms());
	atomic_init(&b->fail_until_ms, 0);
	atomic_init(&b->fail_run, 0);
	atomic_init(&b->eject_run, 0);
	atomic_init(&b->ejections[EJECT_CONNECT], 0);
	atomic_init(&b->ejections[EJECT_EARLY_CLOSE], 0);
	atomic_init(&b->last_result, HC_OK);
	atomic_init(&b->last_latency_ms, 0);
	atomic_init(&b->checked, false);
	health_sm_init(&b->hsm, p->health.rise, p->health.fall, true);
	return b;
}

void
backend_put(struct backend *b)
{
	if (b && --b->refs == 0)
		free(b);
}

void
backend_mark_failed(struct backend *b, unsigned fail_ms, uint64_t now_ms)
{
	if (fail_ms)
		atomic_store_explicit(&b->fail_until_ms, now_ms + fail_ms,
				      memory_order_relaxed);
}

const char *
backend_admin_name(int admin)
{
	switch (admin) {
	case ADMIN_READY:
		return "ready";
	case ADMIN_DRAIN:
		return "drain";
	case ADMIN_MAINT:
		return "maint";
	}
	return "?";
}

const char *
backend_state_name(const struct backend *b)
{
	switch (atomic_load(&b->admin)) {
	case ADMIN_DRAIN:
		return "draining";
	case ADMIN_MAINT:
		return "maintenance";
	}
	return backend_is_up(b) ? "up" : "down";
}

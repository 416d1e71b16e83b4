/*
 * h_time.c: clocks and sleeps.
 * See h_time.h.
 */
#include <errno.h>
#include <time.h>

#include "harness.h"
#include "h_private.h"

uint64_t
h_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void
h_sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Milliseconds left before deadline, at least 0. */
int
h_left_ms(uint64_t deadline)
{
	uint64_t now = h_now_ms();

	return now >= deadline ? 0 : (int)(deadline - now);
}

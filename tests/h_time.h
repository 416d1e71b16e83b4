/* h_time.h: clocks and sleeps.  Part of harness.h. */
#ifndef RINGLB_TEST_H_TIME_H
#define RINGLB_TEST_H_TIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Time. */
uint64_t h_now_ms(void);
void h_sleep_ms(unsigned ms);

#endif

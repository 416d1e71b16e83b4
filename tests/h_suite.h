/* h_suite.h: suites, test labels, tracked children and fds, the watchdog that removes temp dirs and prints the logs of a failed test.  Part of harness.h. */
#ifndef RINGLB_TEST_H_SUITE_H
#define RINGLB_TEST_H_SUITE_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Suites. */
/*
 * A test case of s whose every test runs `teardown` after it; h_teardown
 * (below) is the usual one.
 */
TCase *h_tcase(Suite *s, const char *name, double timeout,
	       void (*teardown)(void));
/*
 * main() of a suite that runs the real binary: RINGLB_BIN made absolute
 * (children inherit it, whatever their cwd), SIGPIPE ignored, ASan's
 * quarantine of a sanitized ringlb kept small (freed memory it holds counts
 * in the RSS that tests bound).  Runs s; the exit status for main().
 */
int h_run_suite(const char *prog, Suite *s);

/* Kill and reap every tracked child, close tracked fds.  Runs at exit. */
void h_cleanup(void);
/*
 * Temp dirs are removed, and on failure the ringlb logs' tails printed, by
 * a watchdog process once the test process is gone, however it ended.
 * h_label() names the test in that report; h_passed() says not to print.
 */
void h_label(const char *name);
void h_passed(void);
/* The usual teardown: the test passed (else it would not get here), clean. */
void h_teardown(void);

#endif

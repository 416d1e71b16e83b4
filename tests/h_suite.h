/*
 * h_suite.h: suites, test labels, tracked children and fds, the watchdog
 * that removes temp dirs and prints the logs of a failed test.  Part of
 * harness.h.
 */
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
/*
 * The usual teardown: the test passed (else it would not get here), clean;
 * "SKIP" it if h_skip_part() was called.
 */
void h_teardown(void);

/*
 * Skips.  A test that cannot run here (no root, no redis-server, a
 * sanitizer that makes it meaningless) says so with a line "SKIP <test>:
 * <why>" on stderr, which tools/run-tests.sh counts as skipped rather than
 * passed.  h_skip() ends the test at once: it cleans up like h_teardown()
 * and leaves the test's process with status 0, so it needs Check's fork
 * mode (the default; with CK_FORK=no the test fails instead).
 * h_skip_part() is for a part of a test that cannot run: the test goes on,
 * and is reported skipped, not passed, if the rest passes.
 */
void h_skip(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));
void h_skip_part(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif

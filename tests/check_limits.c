/*
 * check_limits.c: ringlb running out of file descriptors.  The test lowers
 * the running process's RLIMIT_NOFILE with prlimit(2), floods it with held
 * connections, and checks that it refuses or delays instead of crashing or
 * spinning, logs one warning for the episode, and serves normally after.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define FLOOD 80

/* utime + stime of pid, in clock ticks. */
static long
cpu_ticks(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut, st;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	p = fgets(buf, sizeof(buf), f);
	fclose(f);
	if (!p || !(p = strrchr(buf, ')')))
		return -1;
	/* Fields after the name: state is 3, utime 14, stime 15. */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
		   &ut, &st) != 2)
		return -1;
	return (long)(ut + st);
}

START_TEST(test_fd_exhaustion)
{
	struct h_backend hold;
	struct h_lb lb;
	struct rlimit rl;
	char line[128];
	json_t *cfg, *l;
	int fds[FLOOD], port, idle, served = 0, fd, rc;
	long t0, t1, hz = sysconf(_SC_CLK_TCK);

	h_label("fd_exhaustion");
	ck_assert_int_eq(h_backend_start(&hold, H_HOLD, "hold"), 0);
	port = h_free_port();
	cfg = hc_new();
	/* No grace of its own: ringlb's default, as it always had. */
	hc_del(cfg, "shutdown_grace_ms");
	l = hc_listener(cfg, "web", port);
	hc_backend(l, &hold, 0);
	hc_set(l, "health_check", hc_json("{ \"enabled\": false }"));
	ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, port, NULL), 0);
	json_decref(cfg);
	h_sleep_ms(200);
	idle = h_lb_fd_count(&lb);
	ck_assert_int_gt(idle, 0);

	/* Room for about 15 proxied connections, not for FLOOD. */
	rl.rlim_cur = rl.rlim_max = (rlim_t)idle + 30;
	ck_assert_msg(prlimit(lb.pid, RLIMIT_NOFILE, &rl, NULL) == 0,
		      "prlimit: %s", strerror(errno));

	for (int i = 0; i < FLOOD; i++) {
		fds[i] = h_connect("127.0.0.1", port, 2000);
		ck_assert_msg(fds[i] >= 0, "connect %d: %s", i,
			      strerror(-fds[i]));
	}
	for (int i = 0; i < FLOOD; i++)
		if (h_read_line(fds[i], line, sizeof(line), 1500) > 0 &&
		    strcmp(line, "hold") == 0)
			served++;
	ck_assert_msg(served >= 5 && served < FLOOD,
		      "%d of %d held connections served with ~15 fds free",
		      served, FLOOD);
	ck_assert_msg(h_lb_running(&lb), "ringlb died when out of fds");

	/* Still exhausted: retrying must not spin (well under 30% of a core). */
	t0 = cpu_ticks(lb.pid);
	h_sleep_ms(1000);
	t1 = cpu_ticks(lb.pid);
	ck_assert_msg(t0 >= 0 && t1 >= 0 && (t1 - t0) * 1000 / hz < 300,
		      "ringlb used %ld ms of CPU in 1 s while out of fds",
		      (t1 - t0) * 1000 / hz);
	ck_assert_int_eq(h_lb_log_count(&lb, "out of file descriptors"), 1);

	for (int i = 0; i < FLOOD; i++)
		close(fds[i]);
	rc = h_lb_fd_wait(&lb, idle, 10000);
	ck_assert_msg(rc == idle, "fd count %d after the flood, idle %d", rc,
		      idle);
	ck_assert_msg(h_lb_log_wait(&lb, 1, 5000, "file descriptors available "
				    "again"),
		      "no recovery line in the log");
	ck_assert_int_eq(h_lb_log_count(&lb, "out of file descriptors"), 1);

	/* Serves normally again. */
	for (int i = 0; i < 20; i++) {
		fd = h_connect("127.0.0.1", port, 2000);
		ck_assert_int_ge(fd, 0);
		rc = h_read_line(fd, line, sizeof(line), 2000);
		ck_assert_msg(rc > 0 && strcmp(line, "hold") == 0,
			      "connection %d after the flood: rc %d", i, rc);
		close(fd);
	}
	h_lb_signal(&lb, SIGTERM);
	ck_assert_int_eq(h_lb_wait_exit(&lb, 5000), 0);
	ck_assert_msg(WIFEXITED(lb.status) && WEXITSTATUS(lb.status) == 0,
		      "exit status %d", lb.status);
	h_passed();
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("limits");
	TCase *tc = tcase_create("fds");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_fd_exhaustion);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

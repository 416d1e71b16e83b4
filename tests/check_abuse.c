/*
 * check_abuse.c: the admin API under abuse, against the real binary.
 *
 * 1,000 connections held open on the admin Unix socket and 1,000 on its
 * TCP listener, half of them silent and half with half a request sent:
 * ringlbctl status still answers within a second (three under the
 * sanitizers), so does GET /ready on TCP, clients keep being proxied,
 * and ringlb closes every held connection itself within its 3 s timeout
 * (plus slack), back to its idle fd count.
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "h_private.h"

#define HELD 1000

START_TEST(held_connections)
{
	static int fds[2 * HELD];
	struct h_backend e;
	struct h_lb lb;
	char sock[200], name[16];
	const char *san = getenv("RINGLB_SANITIZE");
	uint64_t bound = san && *san ? 3000 : 1000, t0, took;
	int aport, idle_fds, closed = 0, port;
	json_t *cfg, *l;

	h_backend_up(&e, H_NAME, "e");
	cfg = hc_new();
	aport = h_free_port();
	{
		char listen[32];

		snprintf(listen, sizeof(listen), "127.0.0.1:%d", aport);
		hc_set(cfg, "admin.listen", json_string(listen));
	}
	l = hc_listener(cfg, "l", 0);
	hc_set(l, "health_check", hc_json("{ \"enabled\": false }"));
	hc_backend(l, &e, 0);
	port = hc_port(l);
	ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, port, NULL), 0);
	snprintf(sock, sizeof(sock), "%s/admin.sock", lb.dir);
	h_sleep_ms(200);
	idle_fds = h_lb_fd_count(&lb);

	for (int i = 0; i < 2 * HELD; i++) {
		static const char half[] = "GET /status HTTP/1.1\r\nHo";

		fds[i] = i < HELD ? h_unix_connect(sock, 3000) :
				    h_connect("127.0.0.1", aport, 3000);
		ck_assert_msg(fds[i] >= 0, "admin connection %d: %s", i,
			      strerror(-fds[i]));
		if (i % 2)
			ck_assert_int_eq(h_write_all(fds[i], half,
						     sizeof(half) - 1, 3000),
					 0);
	}
	t0 = h_now_ms();
	{
		struct h_run *r = h_ctl(&lb, "status");

		took = h_now_ms() - t0;
		ck_assert_msg(WIFEXITED(r->status) &&
				      WEXITSTATUS(r->status) == 0,
			      "ringlbctl status: %s", r->err);
		free(r);
	}
	fprintf(stderr, "held: ringlbctl status answered in %llu ms with "
		"%d admin connections held\n",
		(unsigned long long)took, 2 * HELD);
	ck_assert_msg(took < bound, "ringlbctl status took %llu ms",
		      (unsigned long long)took);
	{
		struct h_http r;

		ck_assert_int_eq(h_http(NULL, "127.0.0.1", aport, "GET",
					"/ready", NULL, (int)bound, &r),
				 0);
		ck_assert_int_eq(r.status, 200);
		h_http_free(&r);
	}
	/* The data path does not notice. */
	for (int i = 0; i < 10; i++) {
		ck_assert_int_eq(h_get_name("127.0.0.1", port, name,
					    sizeof(name), NULL),
				 0);
		ck_assert_str_eq(name, "e");
	}

	/* ringlb closes each of them itself: 3 s of silence. */
	t0 = h_now_ms();
	while (closed < 2 * HELD && h_now_ms() - t0 < 8000) {
		for (int i = 0; i < 2 * HELD; i++) {
			struct pollfd p = { .fd = fds[i], .events = POLLIN };
			char b;

			if (fds[i] < 0 || poll(&p, 1, 0) != 1)
				continue;
			/* EOF (or a 408 reply, then EOF): gone. */
			while (recv(fds[i], &b, 1, MSG_DONTWAIT) > 0)
				;
			if (recv(fds[i], &b, 1, MSG_DONTWAIT) == 0 ||
			    errno != EAGAIN) {
				close(fds[i]);
				fds[i] = -1;
				closed++;
			}
		}
		h_sleep_ms(50);
	}
	fprintf(stderr, "held: ringlb closed %d of %d in %llu ms\n", closed,
		2 * HELD, (unsigned long long)(h_now_ms() - t0));
	ck_assert_int_eq(closed, 2 * HELD);
	{
		int n = h_lb_fd_wait(&lb, idle_fds, 5000);

		ck_assert_msg(n == idle_fds, "ringlb holds %d fds, %d when idle",
			      n, idle_fds);
	}
	json_decref(cfg);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("abuse");
	TCase *tc = h_tcase(s, "abuse", 60, h_teardown);

	tcase_add_test(tc, held_connections);
	return h_run_suite("check_abuse", s);
}

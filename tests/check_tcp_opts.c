/*
 * check_tcp_opts.c: per-listener TCP options, against the real binary.
 *
 * client_speaks_first: a client that connects and says nothing is not
 * accepted (the listener counts no accept and the backend sees nothing);
 * once it sends, it is proxied; a reload that turns the option off
 * applies to the same listening socket at once, and on again too.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "h_private.h"

static long long
accepts(const struct h_lb *lb)
{
	json_t *j = h_api(lb, "GET", "/listeners/l", NULL, 200);
	long long n = h_jint(j, "accepts");

	json_decref(j);
	return n;
}

/* A client that connects and waits: is it accepted within 500 ms? */
static bool
silent_accepted(const struct h_lb *lb, int port, int *fd)
{
	long long before = accepts(lb);
	uint64_t t0 = h_now_ms();

	*fd = h_connect("127.0.0.1", port, 3000);
	ck_assert_int_ge(*fd, 0);
	while (h_now_ms() - t0 < 500) {
		if (accepts(lb) > before)
			return true;
		h_sleep_ms(20);
	}
	return false;
}

START_TEST(client_speaks_first)
{
	struct h_backend e;
	struct h_lb lb;
	char buf[8];
	json_t *cfg, *l;
	int port, fd, fd2;

	h_backend_up(&e, H_ECHO, "e");
	cfg = hc_new();
	l = hc_listener(cfg, "l", 0);
	hc_set(l, "health_check", hc_json("{ \"enabled\": false }"));
	hc_set(l, "client_speaks_first", json_true());
	hc_backend(l, &e, 1);
	port = hc_port(l);
	ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, port, NULL), 0);

	/* Silent: the kernel keeps it; ringlb never hears of it. */
	ck_assert_msg(!silent_accepted(&lb, port, &fd),
		      "a silent client was accepted");
	/* Its first bytes: accepted, proxied, echoed. */
	ck_assert_int_eq(h_write_all(fd, "hi\n", 3, 3000), 0);
	ck_assert_int_gt(h_read_line(fd, buf, sizeof(buf), 3000), 0);
	ck_assert_str_eq(buf, "hi");
	ck_assert_int_eq(accepts(&lb), 1);
	close(fd);

	/* Off by reload, on the same socket: a silent client is accepted. */
	hc_set(l, "client_speaks_first", json_false());
	ck_assert_int_eq(h_lb_write_cfg(&lb, cfg), 0);
	json_decref(h_api(&lb, "POST", "/reload", NULL, 200));
	ck_assert_msg(silent_accepted(&lb, port, &fd2),
		      "client_speaks_first off, the client was not accepted");
	close(fd2);
	/* And on again. */
	hc_set(l, "client_speaks_first", json_true());
	ck_assert_int_eq(h_lb_write_cfg(&lb, cfg), 0);
	json_decref(h_api(&lb, "POST", "/reload", NULL, 200));
	ck_assert_msg(!silent_accepted(&lb, port, &fd),
		      "client_speaks_first on again, a silent client was "
		      "accepted");
	close(fd);
	json_decref(cfg);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("tcp_opts");
	TCase *tc = h_tcase(s, "tcp_opts", 60, h_teardown);

	tcase_add_test(tc, client_speaks_first);
	return h_run_suite("check_tcp_opts", s);
}

/*
 * check_tcp_opts.c: per-listener TCP options, against the real binary.
 *
 * client_speaks_first: a client that connects and says nothing is not
 * accepted (the listener counts no accept and the backend sees nothing);
 * once it sends, it is proxied; a reload that turns the option off
 * applies to the same listening socket at once, and on again too.
 *
 * tcp_congestion (when reno is not the system's default): on a listener,
 * its accepted sockets use it and the backend ones do not; on a pool,
 * the other way round, after a reload that moves it (as ss -ti shows).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
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

/* ss -ti's line for the established sockets matching filter. */
static char *
ss_info(const char *filter)
{
	const char *argv[] = { "ss", "-tinH", "state", "established", filter,
			       NULL };
	struct h_run *r = calloc(1, sizeof(*r));
	char *out;

	ck_assert_ptr_nonnull(r);
	if (h_run(argv, 10000, r) != 0 || !WIFEXITED(r->status) ||
	    WEXITSTATUS(r->status) != 0)
		h_skip("no ss here: %.200s", r->err);
	out = strdup(r->out);
	free(r);
	ck_assert_ptr_nonnull(out);
	return out;
}

/* One echoed line through port, held open; the client fd. */
static int
echo_once(int port)
{
	char buf[8];
	int fd = h_connect("127.0.0.1", port, 3000);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(h_write_all(fd, "hi\n", 3, 3000), 0);
	ck_assert_int_gt(h_read_line(fd, buf, sizeof(buf), 3000), 0);
	return fd;
}

START_TEST(tcp_congestion)
{
	char *def = h_read_file("/proc/sys/net/ipv4/tcp_congestion_control");
	char lf[64], bf[64], *out;
	struct h_backend e;
	struct h_lb lb;
	json_t *cfg, *l, *p;
	int port, fd;

	ck_assert_ptr_nonnull(def);
	if (strncmp(def, "reno", 4) == 0)
		h_skip("reno is the system's default here");
	free(def);
	h_backend_up(&e, H_ECHO, "e");
	cfg = hc_new();
	p = hc_pool(cfg, "p");
	hc_set(p, "health_check", hc_json("{ \"enabled\": false }"));
	hc_backend(p, &e, 1);
	l = hc_listener(cfg, "l", 0);
	hc_set(l, "pool", json_string("p"));
	hc_set(l, "tcp_congestion", json_string("reno"));
	port = hc_port(l);
	ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, port, NULL), 0);
	/* ringlb's side of each connection: from its port, to the backend. */
	snprintf(lf, sizeof(lf), "( sport = :%d )", port);
	snprintf(bf, sizeof(bf), "( dport = :%d )", e.port);

	fd = echo_once(port);
	out = ss_info(lf);
	ck_assert_msg(strstr(out, "reno"), "client side: %s", out);
	free(out);
	out = ss_info(bf);
	ck_assert_msg(strstr(out, "127.0.0.1") && !strstr(out, "reno"),
		      "backend side: %s", out);
	free(out);
	close(fd);

	/* Moved to the pool by a reload. */
	hc_del(l, "tcp_congestion");
	hc_set(p, "tcp_congestion", json_string("reno"));
	ck_assert_int_eq(h_lb_write_cfg(&lb, cfg), 0);
	json_decref(h_api(&lb, "POST", "/reload", NULL, 200));
	h_sleep_ms(100);
	fd = echo_once(port);
	out = ss_info(lf);
	ck_assert_msg(strstr(out, "127.0.0.1") && !strstr(out, "reno"),
		      "client side after the reload: %s", out);
	free(out);
	out = ss_info(bf);
	ck_assert_msg(strstr(out, "reno"), "backend side after the reload: %s",
		      out);
	free(out);
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
	tcase_add_test(tc, tcp_congestion);
	return h_run_suite("check_tcp_opts", s);
}

/*
 * check_split.c: traffic split between pools, against the real binary.
 *
 * A 95/5 split sends 95/5 of 4,000 clients (within 2 points) and counts
 * them per side in /status and /metrics; a sticky split keeps each client
 * address on its side, two processes agree on the sides, and a weight
 * change moves only the clients whose share moved; a weight set through
 * the API or ringlbctl applies to the next client, survives a reload of
 * the same file and yields to a file that changes the split; a side with
 * no eligible backend passes its clients to the others.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

/*
 * Pools v1 and v2 of one name-sending backend each (health checks off),
 * and listener "l" splitting w1/w2 over them; sticky if asked.
 */
static json_t *
split_cfg(struct h_backend *b, unsigned w1, unsigned w2, bool sticky)
{
	json_t *cfg = hc_new(), *l, *sp = json_array();
	const char *const names[] = { "v1", "v2" };
	const unsigned w[] = { w1, w2 };

	for (int i = 0; i < 2; i++) {
		json_t *p = hc_pool(cfg, names[i]);

		hc_set(p, "health_check", hc_json("{ \"enabled\": false }"));
		hc_backend(p, &b[i], 1);
		json_array_append_new(sp, json_pack("{s:s,s:i}", "pool",
						    names[i], "weight",
						    (int)w[i]));
	}
	l = hc_listener(cfg, "l", 0);
	hc_set(l, "split", sp);
	if (sticky)
		hc_set(l, "sticky", json_string("source-ip"));
	/* At warn nothing but the sticky split reads client addresses. */
	hc_set(cfg, "log_level", json_string("warn"));
	return cfg;
}

static int
start(struct h_lb *lb, const json_t *cfg)
{
	int port = hc_port(json_array_get(json_object_get(cfg, "listeners"),
					  0));

	ck_assert_int_eq(h_lb_start_cfg(lb, cfg, 0, NULL), 0);
	for (int i = 0; i < 250 && !h_port_listening(port); i++)
		h_sleep_ms(20);
	ck_assert_msg(h_port_listening(port), "ringlb not listening on %d",
		      port);
	return port;
}

/* Which side (0: v1, 1: v2) a new client from src lands on. */
static int
side_of(const char *src, int port)
{
	char name[16];
	int fd = src ? h_connect_from(src, "127.0.0.1", port, 3000) :
		       h_connect("127.0.0.1", port, 3000);

	ck_assert_msg(fd >= 0, "connect from %s: %d", src ? src : "-", fd);
	ck_assert_msg(h_read_line(fd, name, sizeof(name), 3000) >= 0,
		      "no reply (from %s)", src ? src : "-");
	close(fd);
	ck_assert_msg(strcmp(name, "v1") == 0 || strcmp(name, "v2") == 0,
		      "reply \"%s\"", name);
	return name[1] - '1';
}

/* Client address number k: 127.x.y.z, never 127.0.0.1. */
static const char *
client(unsigned k, char *buf, size_t cap)
{
	snprintf(buf, cap, "127.%u.%u.%u", 1 + k / 62500 % 200,
		 k / 250 % 250, 1 + k % 250);
	return buf;
}

static void
backends_up(struct h_backend *b)
{
	h_backend_up(&b[0], H_NAME, "v1");
	h_backend_up(&b[1], H_NAME, "v2");
}

/* Wait until the split's side i shows `active` open clients. */
static json_t *
wait_side_active(const struct h_lb *lb, int i, long long active)
{
	char path[64];
	json_t *j = NULL;

	snprintf(path, sizeof(path), "split.sides.%d.active", i);
	for (int t = 0; t < 200; t++) {
		json_decref(j);
		j = h_api(lb, "GET", "/listeners/l", NULL, 200);
		if (h_jint(j, path) == active)
			break;
		h_sleep_ms(10);
	}
	ck_assert_int_eq(h_jint(j, path), active);
	return j;
}

START_TEST(split_95_5)
{
	struct h_backend b[2];
	struct h_lb lb;
	json_t *cfg, *j;
	int port, n[2] = { 0 }, fds[3];
	char want[160], *m;

	backends_up(b);
	cfg = split_cfg(b, 95, 5, false);
	port = start(&lb, cfg);
	for (int i = 0; i < 4000; i++)
		n[side_of(NULL, port)]++;
	ck_assert_msg(n[1] >= 4000 * 3 / 100 && n[1] <= 4000 * 7 / 100,
		      "v2 took %d of 4000 (%.2f%%), want 5 +- 2", n[1],
		      100.0 * n[1] / 4000);
	/* Per side counts: all 4,000, each where it went; none open. */
	j = wait_side_active(&lb, 0, 0);
	ck_assert_int_eq(h_jint(j, "split.sides.0.connections"), n[0]);
	ck_assert_int_eq(h_jint(j, "split.sides.1.connections"), n[1]);
	ck_assert_int_eq(h_jint(j, "split.sides.0.weight"), 95);
	ck_assert_str_eq(h_jstr(j, "split.sides.1.pool"), "v2");
	ck_assert_str_eq(h_jstr(j, "split.sticky"), "none");
	ck_assert(json_is_null(hc_get(j, "pool")));
	json_decref(j);
	/* Both pools say the listener feeds them. */
	j = h_api(&lb, "GET", "/pools/v2", NULL, 200);
	ck_assert_str_eq(h_jstr(j, "listeners.0"), "l");
	json_decref(j);
	/* Held clients count as active on their side. */
	for (int i = 0; i < 3; i++) {
		fds[i] = h_connect("127.0.0.1", port, 3000);
		ck_assert_int_ge(fds[i], 0);
		ck_assert_int_ge(h_read_line(fds[i], want, sizeof(want), 3000),
				 0);
	}
	j = h_api(&lb, "GET", "/status", NULL, 200);
	{
		json_t *l = h_jnamed(json_object_get(j, "listeners"), "l");

		ck_assert_int_eq(h_jint(l, "split.sides.0.active") +
					 h_jint(l, "split.sides.1.active"),
				 3);
	}
	json_decref(j);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	/* ... and in /metrics. */
	{
		struct h_run *r;

		j = wait_side_active(&lb, 0, 0);
		json_decref(j);
		j = wait_side_active(&lb, 1, 0);
		r = h_ctl(&lb, "status");
		ck_assert_msg(strstr(r->out, "split: v1 95 (95.0%)"),
			      "ringlbctl status: %s", r->out);
		free(r);
		m = h_metrics(&lb);
		snprintf(want, sizeof(want),
			 "ringlb_split_connections_total{listener=\"l\","
			 "route=\"\",pool=\"v2\"} %lld\n",
			 h_jint(j, "split.sides.1.connections"));
		ck_assert_msg(strstr(m, want), "no \"%s\" in /metrics", want);
		ck_assert(strstr(m, "ringlb_split_weight{listener=\"l\","
				    "route=\"\",pool=\"v1\"} 95\n"));
		ck_assert(strstr(m, "ringlb_split_active_connections{"
				    "listener=\"l\",route=\"\",pool=\"v1\"} "
				    "0\n"));
		free(m);
		json_decref(j);
	}
	json_decref(cfg);
}
END_TEST

/*
 * Sticky by source address: each of 300 addresses lands on one side every
 * time, a second process agrees, and 50/50 -> 70/30 moves clients from v2
 * to v1 only.
 */
START_TEST(sticky_per_client)
{
	struct h_backend b[2];
	struct h_lb lb1, lb2;
	static int first[300];
	json_t *cfg, *j;
	int p1, p2, n[2] = { 0 }, moved = 0;
	char src[32];

	backends_up(b);
	cfg = split_cfg(b, 50, 50, true);
	p1 = start(&lb1, cfg);
	for (unsigned k = 0; k < 300; k++) {
		first[k] = side_of(client(k, src, sizeof(src)), p1);
		n[first[k]]++;
	}
	ck_assert_msg(n[0] > 100 && n[1] > 100, "sides got %d and %d of 300",
		      n[0], n[1]);
	for (unsigned k = 0; k < 300; k++)
		ck_assert_int_eq(side_of(client(k, src, sizeof(src)), p1),
				 first[k]);
	/* Another instance with the same split: the same sides. */
	{
		json_t *c2 = split_cfg(b, 50, 50, true);

		p2 = start(&lb2, c2);
		for (unsigned k = 0; k < 300; k++)
			ck_assert_msg(side_of(client(k, src, sizeof(src)), p2) ==
					      first[k],
				      "the two processes disagree on %s", src);
		json_decref(c2);
	}
	/* 70/30: the stretch of v1 grows, so only v2's clients move. */
	j = h_api(&lb1, "PUT", "/listeners/l/split",
		  "{\"weights\": {\"v1\": 70, \"v2\": 30}}", 200);
	ck_assert(json_is_true(json_object_get(j, "override")));
	json_decref(j);
	for (unsigned k = 0; k < 300; k++) {
		int now = side_of(client(k, src, sizeof(src)), p1);

		if (first[k] == 0)
			ck_assert_msg(now == 0, "%s moved from v1 to v2", src);
		moved += now != first[k];
	}
	/* About a fifth of all clients (0.5 -> 0.3 of the range). */
	ck_assert_msg(moved > 300 / 10 && moved < 300 * 3 / 10,
		      "%d of 300 clients moved", moved);
	json_decref(cfg);
}
END_TEST

/* How many of 500 new clients land on v2. */
static int
count_v2(int port)
{
	int n = 0;

	for (int i = 0; i < 500; i++)
		n += side_of(NULL, port);
	return n;
}

START_TEST(runtime_weights)
{
	struct h_backend b[2];
	struct h_lb lb;
	struct h_run *r;
	json_t *cfg, *j;
	int port, n;

	backends_up(b);
	cfg = split_cfg(b, 95, 5, false);
	hc_set(cfg, "log_level", json_string("info"));	/* the admin line */
	port = start(&lb, cfg);
	/* All to v2, from the next client on. */
	j = h_api(&lb, "PUT", "/listeners/l/split",
		  "{\"weights\": {\"v1\": 0}}", 200);
	ck_assert_int_eq(h_jint(j, "sides.0.weight"), 0);
	ck_assert_int_eq(h_jint(j, "sides.0.file_weight"), 95);
	ck_assert_int_eq(h_jint(j, "sides.1.weight"), 5);
	json_decref(j);
	for (int i = 0; i < 50; i++)
		ck_assert_int_eq(side_of(NULL, port), 1);
	/* ringlbctl, as an operator shifts a canary. */
	r = h_ctl(&lb, "split", "l", "v1=90", "v2=10");
	ck_assert_msg(WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0,
		      "ringlbctl split: %s", r->err);
	ck_assert_msg(strstr(r->out, "v1 90 (90.0%, file 95)"), "%s", r->out);
	free(r);
	n = count_v2(port);
	ck_assert_msg(n >= 40 && n <= 60, "v2 took %d of 500 at 90/10", n);
	ck_assert_int_eq(h_lb_log_count(&lb, "admin: listener=l split v1 0 "
					"-> 90, v2 5 -> 10"),
			 1);
	/* A reload of the same file keeps the operator's weights. */
	j = h_api(&lb, "POST", "/reload", NULL, 200);
	json_decref(j);
	j = h_api(&lb, "GET", "/listeners/l/split", NULL, 200);
	ck_assert_int_eq(h_jint(j, "sides.0.weight"), 90);
	ck_assert(json_is_true(json_object_get(j, "override")));
	json_decref(j);
	/* A file that changes the split wins. */
	hc_set(cfg, "listeners.0.split.0.weight", json_integer(50));
	hc_set(cfg, "listeners.0.split.1.weight", json_integer(50));
	ck_assert_int_eq(h_lb_write_cfg(&lb, cfg), 0);
	j = h_api(&lb, "POST", "/reload", NULL, 200);
	json_decref(j);
	j = h_api(&lb, "GET", "/listeners/l/split", NULL, 200);
	ck_assert_int_eq(h_jint(j, "sides.0.weight"), 50);
	ck_assert_int_eq(h_jint(j, "sides.1.weight"), 50);
	ck_assert(json_is_false(json_object_get(j, "override")));
	json_decref(j);
	n = count_v2(port);
	ck_assert_msg(n >= 240 && n <= 260, "v2 took %d of 500 at 50/50", n);
	/* Set again, then back to the file's with DELETE (--reset). */
	j = h_api(&lb, "PUT", "/listeners/l/split",
		  "{\"weights\": {\"v2\": 0}}", 200);
	json_decref(j);
	r = h_ctl(&lb, "split", "l", "--reset");
	ck_assert_msg(WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0,
		      "ringlbctl split --reset: %s", r->err);
	free(r);
	j = h_api(&lb, "GET", "/listeners/l/split", NULL, 200);
	ck_assert_int_eq(h_jint(j, "sides.1.weight"), 50);
	ck_assert(json_is_false(json_object_get(j, "override")));
	json_decref(j);
	/* Bad requests change nothing. */
	j = h_api(&lb, "PUT", "/listeners/l/split",
		  "{\"weights\": {\"v3\": 1}}", 400);
	ck_assert_str_eq(h_jstr(j, "error"),
			 "pool \"v3\" is not in this split (it has v1, v2)");
	json_decref(j);
	j = h_api(&lb, "PUT", "/listeners/l/split",
		  "{\"weights\": {\"v1\": 0, \"v2\": 0}}", 400);
	ck_assert_str_eq(h_jstr(j, "error"),
			 "every weight would be 0: at least one pool must "
			 "take clients");
	json_decref(j);
	j = h_api(&lb, "PUT", "/listeners/l/split",
		  "{\"weights\": {\"v1\": 10001}}", 400);
	json_decref(j);
	j = h_api(&lb, "PUT", "/listeners/l/split", "{\"v1\": 5}", 400);
	json_decref(j);
	j = h_api(&lb, "PUT", "/listeners/l/split", "", 400);
	json_decref(j);
	j = h_api(&lb, "PUT", "/listeners/nope/split",
		  "{\"weights\": {\"v1\": 1}}", 404);
	ck_assert_str_eq(h_jstr(j, "error"), "unknown listener \"nope\"");
	json_decref(j);
	j = h_api(&lb, "GET", "/listeners/l/routes/a.example/split", NULL,
		  404);
	ck_assert_str_eq(h_jstr(j, "error"), "listener \"l\" has no routes");
	json_decref(j);
	j = h_api(&lb, "POST", "/listeners/l/split", NULL, 405);
	json_decref(j);
	j = h_api(&lb, "GET", "/listeners/l/split", NULL, 200);
	ck_assert_int_eq(h_jint(j, "sides.0.weight"), 50);
	ck_assert_int_eq(h_jint(j, "sides.1.weight"), 50);
	json_decref(j);
	r = h_ctl(&lb, "split", "l", "v1=x");
	ck_assert(WIFEXITED(r->status) && WEXITSTATUS(r->status) == 1);
	ck_assert_msg(strstr(r->err, "weight of v1 must be an integer from 0 "
				     "to 10000"),
		      "%s", r->err);
	free(r);
	r = h_ctl(&lb, "split", "l", "v9=1");
	ck_assert(WIFEXITED(r->status) && WEXITSTATUS(r->status) == 1);
	ck_assert_msg(strstr(r->err, "pool \"v9\" is not in this split"), "%s",
		      r->err);
	free(r);
	json_decref(cfg);
}
END_TEST

/* v2 in maintenance: its clients go to v1, none is refused. */
START_TEST(side_without_backend)
{
	struct h_backend b[2];
	struct h_lb lb;
	json_t *cfg, *j;
	int port, n;

	backends_up(b);
	cfg = split_cfg(b, 50, 50, false);
	port = start(&lb, cfg);
	j = h_api(&lb, "POST", "/pools/v2/backends/v2/maint", NULL, 200);
	json_decref(j);
	n = count_v2(port);
	ck_assert_int_eq(n, 0);
	j = wait_side_active(&lb, 0, 0);
	ck_assert_int_eq(h_jint(j, "split.sides.0.connections"), 500);
	ck_assert_int_eq(h_jint(j, "split.sides.1.connections"), 0);
	ck_assert_int_eq(h_jint(j, "no_backend"), 0);
	json_decref(j);
	j = h_api(&lb, "POST", "/pools/v2/backends/v2/ready", NULL, 200);
	json_decref(j);
	n = count_v2(port);
	ck_assert_msg(n >= 240 && n <= 260, "v2 took %d of 500, back", n);
	json_decref(cfg);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("split");
	TCase *it = h_tcase(s, "binary", 120, h_teardown);

	tcase_add_test(it, split_95_5);
	tcase_add_test(it, sticky_per_client);
	tcase_add_test(it, runtime_weights);
	tcase_add_test(it, side_without_backend);
	return h_run_suite("check_split", s);
}

/*
 * check_ready.c: readiness for routing daemons, against the real binary.
 *
 * GET /ready says 200 while ringlb serves.  `ringlbctl withdraw` makes it
 * 503 while every connection, open or new, is served as before; `rejoin`
 * undoes it; a reload keeps it; /status, /metrics, ringlbctl status and
 * is-ready all say so.  A stopping ringlb says 503 ("stopping") while it
 * finishes its connections; a stopped (SIGSTOP) one makes is-ready fail
 * within its timeout.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "h_private.h"

/* Listener "l" over name-sending a, "e" over echo backend e. */
static json_t *
two_cfg(const struct h_backend *a, const struct h_backend *e)
{
	json_t *cfg = hc_new(), *l;

	l = hc_listener(cfg, "l", 0);
	hc_set(l, "health_check", hc_json("{ \"enabled\": false }"));
	hc_backend(l, a, 1);
	l = hc_listener(cfg, "e", 0);
	hc_set(l, "health_check", hc_json("{ \"enabled\": false }"));
	hc_backend(l, e, 1);
	return cfg;
}

static int
port_of(const json_t *cfg, int i)
{
	return hc_port(json_array_get(json_object_get(cfg, "listeners"),
				      (size_t)i));
}

/* GET /ready: its status and "state" (into state). */
static int
ready(const struct h_lb *lb, char *state, size_t size)
{
	char sock[160];
	struct h_http r;
	json_t *j;
	int code;

	snprintf(sock, sizeof(sock), "%s/admin.sock", lb->dir);
	ck_assert_int_eq(h_http(sock, NULL, 0, "GET", "/ready", NULL, 5000,
				&r),
			 0);
	code = r.status;
	j = json_loads(r.body, 0, NULL);
	ck_assert_msg(j != NULL, "GET /ready: not JSON: %s", r.body);
	snprintf(state, size, "%s", h_jstr(j, "state"));
	ck_assert(json_is_boolean(json_object_get(j, "ready")));
	ck_assert_int_eq(json_is_true(json_object_get(j, "ready")),
			 code == 200);
	json_decref(j);
	h_http_free(&r);
	return code;
}

/* ringlbctl ARGS: its exit code, its stdout into out. */
static int
ctl(const struct h_lb *lb, char *out, size_t size, const char *a,
    const char *b)
{
	struct h_run *r = b ? h_ctl(lb, a, b) : h_ctl(lb, a);
	int code;

	ck_assert_msg(WIFEXITED(r->status), "ringlbctl %s: killed", a);
	code = WEXITSTATUS(r->status);
	snprintf(out, size, "%.*s", (int)(size - 1), r->out);
	free(r);
	return code;
}

static void
echo(int fd, const char *what)
{
	char line[128];

	ck_assert_int_eq(h_write_all(fd, what, strlen(what), 3000), 0);
	ck_assert_int_eq(h_write_all(fd, "\n", 1, 3000), 0);
	ck_assert_int_ge(h_read_line(fd, line, sizeof(line), 3000), 0);
	ck_assert_str_eq(line, what);
}

START_TEST(withdraw_and_rejoin)
{
	struct h_backend a, e;
	struct h_lb lb;
	char state[32], out[4096], name[16];
	json_t *cfg, *j;
	int fd, port;

	h_backend_up(&a, H_NAME, "a");
	h_backend_up(&e, H_ECHO, "e");
	cfg = two_cfg(&a, &e);
	port = port_of(cfg, 0);
	ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, port, NULL), 0);
	ck_assert_int_eq(ready(&lb, state, sizeof(state)), 200);
	ck_assert_str_eq(state, "serving");
	ck_assert_int_eq(ctl(&lb, out, sizeof(out), "is-ready", NULL), 0);
	ck_assert_str_eq(out, "serving\n");

	/* A stream open across the withdraw and the rejoin. */
	fd = h_connect("127.0.0.1", port_of(cfg, 1), 3000);
	ck_assert_int_ge(fd, 0);
	echo(fd, "before");

	ck_assert_int_eq(ctl(&lb, out, sizeof(out), "withdraw", NULL), 0);
	ck_assert_msg(strncmp(out, "withdrawn: GET /ready says 503; 1 open",
			      38) == 0,
		      "%s", out);
	ck_assert_int_eq(ready(&lb, state, sizeof(state)), 503);
	ck_assert_str_eq(state, "withdrawn");
	ck_assert_int_eq(h_lb_log_count(&lb, "withdrawn: GET /ready answers "
					"503"),
			 1);
	/* Still serving: the open stream, and new clients. */
	echo(fd, "withdrawn");
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(h_get_name("127.0.0.1", port, name,
					    sizeof(name), NULL),
				 0);
		ck_assert_str_eq(name, "a");
	}
	ck_assert_int_eq(ctl(&lb, out, sizeof(out), "is-ready", NULL), 1);
	ck_assert_str_eq(out, "withdrawn\n");
	/* Twice is once: the first time is kept. */
	ck_assert_int_eq(ctl(&lb, out, sizeof(out), "withdraw", NULL), 0);
	ck_assert_msg(strncmp(out, "already withdrawn", 17) == 0, "%s", out);
	ck_assert_int_eq(h_lb_log_count(&lb, "withdrawn: GET /ready answers "
					"503"),
			 1);

	/* Everyone who looks sees it. */
	j = h_api(&lb, "GET", "/status", NULL, 200);
	ck_assert(json_is_false(json_object_get(j, "ready")));
	ck_assert_str_eq(h_jstr(j, "readiness"), "withdrawn");
	ck_assert_int_ge(h_jint(j, "withdrawn_ms"), 0);
	json_decref(j);
	{
		char *m = h_metrics(&lb);

		ck_assert_msg(strstr(m, "\nringlb_ready 0\n") &&
				      strstr(m, "\nringlb_withdrawn 1\n"),
			      "%s", m);
		free(m);
	}
	ck_assert_int_eq(ctl(&lb, out, sizeof(out), "status", NULL), 0);
	ck_assert_msg(strstr(out, "\nwithdrawn for ") &&
			      strstr(out, "GET /ready says 503"),
		      "%s", out);

	/* A reload is not a rejoin. */
	json_decref(h_api(&lb, "POST", "/reload", NULL, 200));
	ck_assert_int_eq(ready(&lb, state, sizeof(state)), 503);
	ck_assert_str_eq(state, "withdrawn");

	ck_assert_int_eq(ctl(&lb, out, sizeof(out), "rejoin", NULL), 0);
	ck_assert_str_eq(out, "rejoined: GET /ready says 200\n");
	ck_assert_int_eq(ready(&lb, state, sizeof(state)), 200);
	ck_assert_str_eq(state, "serving");
	ck_assert_int_eq(ctl(&lb, out, sizeof(out), "rejoin", NULL), 0);
	ck_assert_str_eq(out, "not withdrawn: GET /ready says 200\n");
	ck_assert_int_eq(h_lb_log_count(&lb, "rejoined: GET /ready answers "
					"200 again"),
			 1);
	{
		char *m = h_metrics(&lb);

		ck_assert_msg(strstr(m, "\nringlb_ready 1\n") &&
				      strstr(m, "\nringlb_withdrawn 0\n"),
			      "%s", m);
		free(m);
	}
	ck_assert_int_eq(ctl(&lb, out, sizeof(out), "status", NULL), 0);
	ck_assert_msg(strstr(out, "\nserving: GET /ready says 200\n"), "%s",
		      out);
	echo(fd, "rejoined");
	close(fd);

	/* Bad input: a body, the wrong method. */
	json_decref(h_api(&lb, "POST", "/withdraw", "{}", 400));
	json_decref(h_api(&lb, "GET", "/withdraw", NULL, 405));
	json_decref(h_api(&lb, "POST", "/ready", NULL, 405));
	ck_assert_int_eq(ready(&lb, state, sizeof(state)), 200);
	json_decref(cfg);
}
END_TEST

/*
 * Stopping: 503 "stopping" while the open connections finish.  Stopped
 * (SIGSTOP): is-ready gives up within its --timeout, exit 1.
 */
START_TEST(stopping_and_hung)
{
	struct h_backend a, e;
	struct h_lb lb;
	char state[32], out[4096];
	uint64_t t0;
	json_t *cfg;
	int fd, code;

	h_backend_up(&a, H_NAME, "a");
	h_backend_up(&e, H_ECHO, "e");
	cfg = two_cfg(&a, &e);
	hc_set(cfg, "shutdown_grace_ms", json_integer(20000));
	ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, port_of(cfg, 0), NULL), 0);

	kill(lb.pid, SIGSTOP);
	t0 = h_now_ms();
	{
		struct h_run *r = h_ctl(&lb, "is-ready", "--timeout", "0.5");

		code = WIFEXITED(r->status) ? WEXITSTATUS(r->status) : -1;
		snprintf(out, sizeof(out), "%.4000s", r->err);
		free(r);
	}
	kill(lb.pid, SIGCONT);
	ck_assert_msg(code == 1, "is-ready on a stopped ringlb: %d (%s)", code,
		      out);
	ck_assert_msg(h_now_ms() - t0 < 5000, "is-ready took %llu ms",
		      (unsigned long long)(h_now_ms() - t0));
	ck_assert_msg(strstr(out, "ringlbctl: ") != NULL, "%s", out);
	ck_assert_int_eq(ready(&lb, state, sizeof(state)), 200);

	fd = h_connect("127.0.0.1", port_of(cfg, 1), 3000);
	ck_assert_int_ge(fd, 0);
	echo(fd, "open");
	h_lb_signal(&lb, SIGTERM);
	ck_assert(h_lb_log_wait(&lb, 1, 5000, "TERM: stopping"));
	ck_assert_int_eq(ready(&lb, state, sizeof(state)), 503);
	ck_assert_str_eq(state, "stopping");
	ck_assert_int_eq(ctl(&lb, out, sizeof(out), "is-ready", NULL), 1);
	ck_assert_str_eq(out, "stopping\n");
	echo(fd, "still open");
	close(fd);
	ck_assert_int_eq(h_lb_wait_exit(&lb, 10000), 0);
	ck_assert(WIFEXITED(lb.status) && WEXITSTATUS(lb.status) == 0);
	json_decref(cfg);
}
END_TEST

/* A file's text (at most size - 1 bytes; "" if there is none), into out. */
static void
slurp(const char *path, char *out, size_t size)
{
	char *text = h_read_file(path);

	snprintf(out, size, "%s", text ? text : "");
	free(text);
}

/* Wait until file path holds text want, ms it took. */
static uint64_t
wait_text(const char *path, const char *want, int timeout_ms)
{
	uint64_t t0 = h_now_ms();
	char got[4096];

	for (;;) {
		slurp(path, got, sizeof(got));
		if (strcmp(got, want) == 0)
			return h_now_ms() - t0;
		ck_assert_msg(h_now_ms() - t0 < (uint64_t)timeout_ms,
			      "%s: \"%s\", want \"%s\"", path, got, want);
		h_sleep_ms(10);
	}
}

/*
 * watch-ready, the health hook: down first, up after three 200s, down at
 * the first 503 (a withdraw) and up again after a rejoin, down when
 * ringlb dies, and down on SIGTERM; each command runs again every second.
 */
START_TEST(watch_ready_hook)
{
	struct h_backend a, e;
	struct h_lb lb;
	char sock[200], up[300], down[300], file[200], log[200], out[4096];
	const char *argv[] = { h_ctl_bin(), "-s", sock, "watch-ready", "--up",
			       up, "--down", down, NULL };
	json_t *cfg;
	pid_t pid;
	uint64_t took;
	int st;

	h_backend_up(&a, H_NAME, "a");
	h_backend_up(&e, H_ECHO, "e");
	cfg = two_cfg(&a, &e);
	ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, port_of(cfg, 0), NULL), 0);
	snprintf(sock, sizeof(sock), "%s/admin.sock", lb.dir);
	snprintf(file, sizeof(file), "%s/said", lb.dir);
	snprintf(log, sizeof(log), "%s/watch.log", lb.dir);
	/* Each command leaves what it says in the file, alone. */
	snprintf(up, sizeof(up), "echo up > %s", file);
	snprintf(down, sizeof(down), "echo down > %s", file);
	pid = h_spawn(argv, log);
	ck_assert_int_gt(pid, 0);
	took = wait_text(file, "up\n", 3000);
	fprintf(stderr, "watch-ready: up %llu ms after it started\n",
		(unsigned long long)took);

	ck_assert_int_eq(ctl(&lb, out, sizeof(out), "withdraw", NULL), 0);
	took = wait_text(file, "down\n", 2000);
	fprintf(stderr, "watch-ready: down %llu ms after the withdraw\n",
		(unsigned long long)took);
	ck_assert_int_lt(took, 1000);
	/* Said again every second: a command that lost its effect. */
	ck_assert_int_eq(unlink(file), 0);
	wait_text(file, "down\n", 2500);
	ck_assert_int_eq(ctl(&lb, out, sizeof(out), "rejoin", NULL), 0);
	wait_text(file, "up\n", 2000);

	/* ringlb dies: down, within a second. */
	kill(lb.pid, SIGKILL);
	took = wait_text(file, "down\n", 2000);
	fprintf(stderr, "watch-ready: down %llu ms after ringlb died\n",
		(unsigned long long)took);
	ck_assert_int_lt(took, 1000);

	/* SIGTERM: down (it is already), and exit 0. */
	ck_assert_int_eq(h_write_file(file, "up\n"), 0);
	kill(pid, SIGTERM);
	ck_assert_int_eq(h_wait_pid(pid, 3000, &st), 0);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
	slurp(file, out, sizeof(out));
	ck_assert_str_eq(out, "down\n");
	slurp(log, out, sizeof(out));
	ck_assert_msg(strstr(out, "up: ready (serving)") &&
			      strstr(out, "down: not ready (withdrawn)") &&
			      strstr(out, "down: not ready (unreachable)") &&
			      strstr(out, "down: stopped"),
		      "%s", out);

	/* Usage: both commands are needed. */
	{
		struct h_run *r = h_ctl(&lb, "watch-ready", "--up", "true");

		ck_assert(WIFEXITED(r->status) && WEXITSTATUS(r->status) == 2);
		free(r);
	}
	json_decref(cfg);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("ready");
	TCase *tc = h_tcase(s, "ready", 60, h_teardown);

	tcase_add_test(tc, withdraw_and_rejoin);
	tcase_add_test(tc, stopping_and_hung);
	tcase_add_test(tc, watch_ready_hook);
	return h_run_suite("check_ready", s);
}

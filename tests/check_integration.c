/*
 * check_integration.c: black-box tests of the ringlb binary.  Each test
 * writes a config, starts $RINGLB_BIN (default build/ringlb) with real
 * backends on 127.0.0.1 forked from the test, and checks what clients and
 * backends see: bytes, checksums, which backend answered, when connections
 * end, and the log lines the spec promises.
 *
 * Every wait has a deadline, so a broken ringlb fails a test instead of
 * hanging it.  Timing bounds are generous: the suite runs on a loaded
 * 2-core machine.  Run one case with CK_RUN_CASE=<name>; set RINGLB_KEEP=1
 * to keep the temp dirs (config and log) of every test.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define MIB		(1024 * 1024)
#define NAME_MAX_LEN	64

/*
 * The data tests run once per read path of the engine: multishot recv into
 * provided buffers (the default), poll + recv(2) only (recv_buffers 0), and
 * a single provided buffer, so reads run out of buffers all the time and
 * keep falling back to poll (recv_buffers 1).
 */
enum engine { ENGINE_DEFAULT, ENGINE_POLL, ENGINE_STARVED, ENGINE_MODES };
static const int engine_recv_buffers[] = {
	[ENGINE_DEFAULT] = -1,	/* not written */
	[ENGINE_POLL] = 0,
	[ENGINE_STARVED] = 1,
};

/* What one test's config says; spec_cfg() turns it into the config. */
struct spec {
	unsigned workers;		/* 0: 2 */
	unsigned grace_ms;		/* 0: 5000 */
	const char *listen_host;	/* NULL: 127.0.0.1 */
	int port;			/* set by lb_up() */
	const char *algorithm;		/* NULL: round-robin */
	unsigned attempts;		/* 0: not written (default 3) */
	const char *health;		/* JSON object; NULL: disabled */
	unsigned engine;		/* enum engine: how reads are done */
	const char *timeouts;		/* JSON object; NULL: not written */
	struct h_backend *b[8];
	unsigned weight[8];		/* 0: 1 */
	size_t nb;
};

/*
 * The config of s: listener "web" on s->port (chosen now if 0) and the
 * backends of s.  json_decref() it.
 */
static json_t *
spec_cfg(struct spec *s)
{
	json_t *cfg = hc_new(), *l;

	hc_set(cfg, "workers", json_integer(s->workers ? s->workers : 2));
	hc_set(cfg, "shutdown_grace_ms",
	       json_integer(s->grace_ms ? s->grace_ms : 5000));
	if (engine_recv_buffers[s->engine] >= 0)
		hc_set(cfg, "recv_buffers",
		       json_integer(engine_recv_buffers[s->engine]));
	l = hc_listener(cfg, "web", s->port);
	s->port = hc_port(l);
	if (s->listen_host != NULL)
		hc_listen(l, s->listen_host, s->port);
	hc_set(l, "algorithm",
	       json_string(s->algorithm ? s->algorithm : "round-robin"));
	if (s->attempts)
		hc_set(l, "connect_attempts", json_integer(s->attempts));
	for (size_t i = 0; i < s->nb; i++)
		hc_backend(l, s->b[i], s->weight[i] ? s->weight[i] : 1);
	hc_set(l, "health_check",
	       hc_json(s->health ? s->health : "{ \"enabled\": false }"));
	if (s->timeouts)
		hc_set(l, "timeouts", hc_json(s->timeouts));
	return cfg;
}

/* Pick a port, write the config, start ringlb and wait until it listens. */
static void
lb_up(struct h_lb *lb, struct spec *s)
{
	json_t *cfg;
	int rc;

	h_label(tcase_name());
	s->port = 0;
	cfg = spec_cfg(s);
	rc = h_lb_start_cfg(lb, cfg, s->port, NULL);
	json_decref(cfg);
	ck_assert_msg(rc == 0, "%s did not start listening on port %d: %s",
		      h_lb_bin(), s->port,
		      rc == -ECHILD ? "it exited" : strerror(-rc));
}

static const char *
errstr(int rc)
{
	if (rc == -EPIPE)
		return "closed (EOF)";
	return strerror(-rc);
}

/* Index of name in b[0..n), or -1. */
static int
which(struct h_backend *const *b, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(b[i]->name, name) == 0)
			return (int)i;
	return -1;
}

/* Send a short line and expect it echoed back.  0 or -errno. */
static int
echo_once(int fd, const char *msg)
{
	char buf[256];
	int rc;

	rc = h_write_all(fd, msg, strlen(msg), 2000);
	if (rc < 0)
		return rc;
	rc = h_read_line(fd, buf, sizeof(buf), 3000);
	if (rc < 0)
		return rc;
	if (strncmp(buf, msg, strlen(msg) - 1) != 0 ||
	    strlen(buf) != strlen(msg) - 1)
		return -EBADMSG;
	return 0;
}

/* Is the connection ended by the peer without data within timeout? */
static void
assert_closed_without_data(int fd, int timeout_ms, const char *what)
{
	long data = 0;
	int rc = h_wait_close(fd, timeout_ms, &data);

	ck_assert_msg(rc == 0 || rc == -ECONNRESET,
		      "%s: connection not closed within %d ms (%s)", what,
		      timeout_ms, strerror(-rc));
	ck_assert_msg(data == 0, "%s: got %ld bytes before the close", what,
		      data);
}

static struct h_run *
run_cmd(const char *const argv[], int timeout_ms)
{
	static struct h_run r;
	int rc = h_run(argv, timeout_ms, &r);

	ck_assert_msg(rc == 0, "cannot run %s: %s", argv[0], strerror(-rc));
	ck_assert_msg(!r.timed_out, "%s did not finish within %d ms",
		      argv[0], timeout_ms);
	return &r;
}

static int
count_lines(const char *s)
{
	int n = 0;

	for (; *s != '\0'; s++)
		if (*s == '\n')
			n++;
	return n;
}

/* ---- 1. configuration ---- */

static const char good_json[] =
	"{ \"workers\": 2, \"log_level\": \"info\",\n"
	"  \"shutdown_grace_ms\": 30000,\n"
	"  \"admin\": { \"socket\": \"@DIR@/admin.sock\" },\n"
	"  \"listeners\": [\n"
	"    { \"name\": \"web\", \"listen\": \"127.0.0.1:@PORT@\",\n"
	"      \"algorithm\": \"round-robin\", \"connect_attempts\": 3,\n"
	"      \"backends\": [\n"
	"        { \"name\": \"app1\", \"address\": \"127.0.0.1:9001\",\n"
	"          \"weight\": 1 },\n"
	"        { \"name\": \"app2\", \"address\": \"127.0.0.1:9002\",\n"
	"          \"weight\": 3 } ],\n"
	"      \"health_check\": { \"enabled\": true, \"interval_ms\": 2000,\n"
	"        \"timeout_ms\": 1000, \"rise\": 2, \"fall\": 3,\n"
	"        \"send\": \"PING\\r\\n\", \"expect\": \"+PONG\" },\n"
	"      \"timeouts\": { \"connect_ms\": 3000,\n"
	"        \"idle_ms\": 600000 } },\n"
	"    { \"name\": \"db\", \"listen\": \"127.0.0.1:@PORT2@\",\n"
	"      \"algorithm\": \"least-connections\",\n"
	"      \"backends\": [\n"
	"        { \"name\": \"db1\",\n"
	"          \"address\": \"127.0.0.1:9101\" } ] } ] }\n";

struct bad_case {
	const char *file;
	const char *json;
	const char *needle[3];	/* besides the file name */
};

/*
 * tmpl with every "@PORT@" replaced by port and "@PORT2@" by port + 1, and
 * every "@DIR@" by dir unless dir is NULL (h_lb_start_in() does it then).
 * free() it.
 */
static char *
put_port(const char *tmpl, int port, const char *dir)
{
	char num[16], *a, *b;

	snprintf(num, sizeof(num), "%d", port);
	a = h_subst(tmpl, "@PORT@", num);
	snprintf(num, sizeof(num), "%d", port + 1);
	b = h_subst(a, "@PORT2@", num);
	free(a);
	if (dir == NULL)
		return b;
	a = h_subst(b, "@DIR@", dir);
	free(b);
	return a;
}

static const struct bad_case bad_cases[] = {
	{ "syntax.json",
	  "{ \"workers\": 2, \"admin\": { \"socket\": \"@DIR@/admin.sock\" }, "
	  "\"listeners\": [ { \"name\": \"web\", ",
	  { NULL } },
	{ "badport.json",
	  "{ \"workers\": 1, \"admin\": { \"socket\": \"@DIR@/admin.sock\" }, "
	  "\"listeners\": [ { \"name\": \"web\", "
	  "\"listen\": \"127.0.0.1:@PORT@\", \"backends\": [ "
	  "{ \"name\": \"a\", \"address\": \"127.0.0.1:9001\" }, "
	  "{ \"name\": \"b\", \"address\": \"127.0.0.1:9002\" }, "
	  "{ \"name\": \"c\", \"address\": \"127.0.0.1:99999\" } ] } ] }",
	  { "listeners[0].backends[2].address", "99999" } },
	{ "unknownkey.json",
	  "{ \"workers\": 1, \"admin\": { \"socket\": \"@DIR@/admin.sock\" }, "
	  "\"listeners\": [ { \"name\": \"web\", "
	  "\"listen\": \"127.0.0.1:@PORT@\", \"backends\": [ "
	  "{ \"name\": \"a\", \"address\": \"127.0.0.1:9001\" } ], "
	  "\"timeouts\": { \"connect_ms\": 100, \"idel_ms\": 5 } } ] }",
	  { "listeners[0].timeouts", "idel_ms" } },
	{ "unknowntop.json",
	  "{ \"workers\": 1, \"admin\": { \"socket\": \"@DIR@/admin.sock\" }, "
	  "\"wrokers\": 3, \"listeners\": [ { \"name\": "
	  "\"web\", \"listen\": \"127.0.0.1:@PORT@\", \"backends\": [ "
	  "{ \"name\": \"a\", \"address\": \"127.0.0.1:9001\" } ] } ] }",
	  { "wrokers" } },
	{ "badtype.json",
	  "{ \"workers\": \"two\", "
	  "\"admin\": { \"socket\": \"@DIR@/admin.sock\" }, "
	  "\"listeners\": [ { \"name\": \"web\", "
	  "\"listen\": \"127.0.0.1:@PORT@\", \"backends\": [ "
	  "{ \"name\": \"a\", \"address\": \"127.0.0.1:9001\" } ] } ] }",
	  { "workers" } },
	{ "badalg.json",
	  "{ \"workers\": 1, \"admin\": { \"socket\": \"@DIR@/admin.sock\" }, "
	  "\"listeners\": [ { \"name\": \"web\", "
	  "\"listen\": \"127.0.0.1:@PORT@\", \"algorithm\": \"random\", "
	  "\"backends\": [ { \"name\": \"a\", \"address\": "
	  "\"127.0.0.1:9001\" } ] } ] }",
	  { "listeners[0].algorithm", "random" } },
	{ "badlisten.json",
	  "{ \"workers\": 1, \"admin\": { \"socket\": \"@DIR@/admin.sock\" }, "
	  "\"listeners\": [ { \"name\": \"web\", "
	  "\"listen\": \"127.0.0.1:@PORT@\", \"backends\": [ "
	  "{ \"name\": \"a\", \"address\": \"127.0.0.1:9001\" }, "
	  "{ \"name\": \"b\", \"address\": \"127.0.0.1\" } ] } ] }",
	  { "listeners[0].backends[1].address" } },
};

START_TEST(test_config_check)
{
	char dir[128], path[256];
	const char *argv[5];
	struct h_run *r;
	char *text;
	int port = h_free_port();

	h_label(tcase_name());
	ck_assert_int_eq(h_tempdir(dir, sizeof(dir)), 0);

	/* A full, valid file: exit 0 and some verdict. */
	snprintf(path, sizeof(path), "%s/good.json", dir);
	text = put_port(good_json, port, dir);
	ck_assert_int_eq(h_write_file(path, text), 0);
	free(text);
	argv[0] = h_lb_bin();
	argv[1] = "-t";
	argv[2] = "-c";
	argv[3] = path;
	argv[4] = NULL;
	r = run_cmd(argv, 10000);
	ck_assert_msg(WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0,
		      "-t on a valid file: status 0x%x, stderr: %s", r->status,
		      r->err);
	ck_assert_msg(strstr(r->out, "configuration is valid") != NULL,
		      "-t on a valid file: no verdict on stdout: '%s'",
		      r->out);
	ck_assert_msg(!h_port_listening(port), "-t left port %d listening",
		      port);

	/* Each broken file: exit 1, one stderr line naming file and path. */
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *bc = &bad_cases[i];

		snprintf(path, sizeof(path), "%s/%s", dir, bc->file);
		text = put_port(bc->json, port, dir);
		ck_assert_int_eq(h_write_file(path, text), 0);
		free(text);
		r = run_cmd(argv, 10000);
		ck_assert_msg(WIFEXITED(r->status) &&
				      WEXITSTATUS(r->status) == 1,
			      "%s: want exit 1, status 0x%x, stderr: %s",
			      bc->file, r->status, r->err);
		ck_assert_msg(strstr(r->err, bc->file) != NULL,
			      "%s: file name missing from stderr: %s",
			      bc->file, r->err);
		for (int k = 0; k < 3 && bc->needle[k] != NULL; k++)
			ck_assert_msg(strstr(r->err, bc->needle[k]) != NULL,
				      "%s: '%s' missing from stderr: %s",
				      bc->file, bc->needle[k], r->err);
	}

	/* A file that is not there. */
	snprintf(path, sizeof(path), "%s/missing.json", dir);
	r = run_cmd(argv, 10000);
	ck_assert_msg(WIFEXITED(r->status) && WEXITSTATUS(r->status) == 1,
		      "missing file: want exit 1, status 0x%x", r->status);
	ck_assert_msg(strstr(r->err, "missing.json") != NULL,
		      "missing file: name not on stderr: %s", r->err);
}
END_TEST

/*
 * An invalid file gives one error line; with -t it is followed by the
 * verdict, "FILE: configuration is invalid" (README, "Command line").
 */
START_TEST(test_config_error_lines)
{
	char dir[128], path[256], verdict[300];
	const char *argv[] = { h_lb_bin(), "-t", "-c", path, NULL };
	struct h_run *r;
	char *text;

	h_label(tcase_name());
	ck_assert_int_eq(h_tempdir(dir, sizeof(dir)), 0);
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *bc = &bad_cases[i];
		const char *second;

		snprintf(path, sizeof(path), "%s/%s", dir, bc->file);
		snprintf(verdict, sizeof(verdict),
			 "\n%s: configuration is invalid\n", path);
		text = put_port(bc->json, h_free_port(), dir);
		ck_assert_int_eq(h_write_file(path, text), 0);
		free(text);
		r = run_cmd(argv, 10000);
		second = strchr(r->err, '\n');
		ck_assert_msg(count_lines(r->err) == 2 && second != NULL &&
				      strcmp(second, verdict) == 0,
			      "%s: want the error line and '%s: configuration "
			      "is invalid' on stderr, got: %s",
			      bc->file, path, r->err);
		ck_assert_msg(r->out[0] == '\0', "%s: stdout: %s", bc->file,
			      r->out);
	}
}
END_TEST

START_TEST(test_config_bad_start)
{
	struct h_lb lb;
	char *text;
	int port = h_free_port(), rc;
	uint64_t t0, deadline;
	bool listened = false;
	char *line;

	/* The listener itself is fine; a key further down is not. */
	h_label(tcase_name());
	text = put_port(bad_cases[2].json, port, NULL);
	t0 = h_now_ms();
	rc = h_lb_start_in(&lb, text, 0, NULL);
	free(text);
	ck_assert_msg(rc == 0, "cannot start %s: %s", h_lb_bin(),
		      strerror(-rc));
	deadline = t0 + 3000;
	while (h_lb_running(&lb) && h_now_ms() < deadline) {
		if (h_port_listening(port))
			listened = true;
		h_sleep_ms(5);
	}
	ck_assert_msg(!h_lb_running(&lb),
		      "ringlb still running 3 s after start with a bad config");
	ck_assert_msg(WIFEXITED(lb.status) && WEXITSTATUS(lb.status) != 0,
		      "bad config: want a non-zero exit, status 0x%x",
		      lb.status);
	ck_assert_msg(!listened && !h_port_listening(port),
		      "port %d was listening with a bad config", port);
	line = h_lb_log_line(&lb, "listeners[0].timeouts", "idel_ms");
	ck_assert_msg(line != NULL, "no error naming the bad key was logged");
	free(line);
	line = h_lb_log(&lb);
	ck_assert_msg(count_lines(line) == 1, "want one line on stderr, got: "
		      "%s", line);
	free(line);
}
END_TEST

/* -v turns on debug lines; without it an info config logs none. */
START_TEST(test_verbose_flag)
{
	struct h_backend a;
	struct spec s = { .b = { &a }, .nb = 1 };
	struct h_lb quiet, loud;
	char name[NAME_MAX_LEN];
	json_t *cfg;
	int rc;

	h_backend_up(&a, H_NAME, "app1");
	lb_up(&quiet, &s);
	rc = h_get_name("127.0.0.1", s.port, name, sizeof(name), NULL);
	ck_assert_msg(rc == 0, "connect: %s", errstr(rc));
	ck_assert(h_lb_log_wait(&quiet, 1, 5000, "conn="));
	ck_assert_msg(h_lb_log_count(&quiet, "Z debug ") == 0,
		      "debug lines logged at log_level info without -v");

	s.port = 0;
	cfg = spec_cfg(&s);
	rc = h_lb_start_cfg(&loud, cfg, s.port, "-v");
	json_decref(cfg);
	ck_assert_msg(rc == 0, "ringlb -v did not start: %s", strerror(-rc));
	rc = h_get_name("127.0.0.1", s.port, name, sizeof(name), NULL);
	ck_assert_msg(rc == 0, "connect: %s", errstr(rc));
	ck_assert(h_lb_log_wait(&loud, 1, 5000, "conn="));
	ck_assert_msg(h_lb_log_count(&loud, "Z debug ") > 0,
		      "no debug lines with -v");
}
END_TEST

/* ---- 2. round-robin ---- */

START_TEST(test_rr_equal)
{
	struct h_backend a, b, c;
	struct spec s = { .b = { &a, &b, &c }, .nb = 3 };
	struct h_lb lb;
	char name[NAME_MAX_LEN], seq[64];
	int count[3] = { 0 }, prev = -1;

	h_backend_up(&a, H_NAME, "rr-a");
	h_backend_up(&b, H_NAME, "rr-b");
	h_backend_up(&c, H_NAME, "rr-c");
	lb_up(&lb, &s);
	for (int i = 0; i < 30; i++) {
		int rc = h_get_name("127.0.0.1", s.port, name, sizeof(name),
				  NULL);
		int k;

		ck_assert_msg(rc == 0, "connection %d: %s", i, errstr(rc));
		k = which(s.b, s.nb, name);
		ck_assert_msg(k >= 0, "connection %d: unknown reply '%s'", i,
			      name);
		seq[i] = (char)('a' + k);
		seq[i + 1] = '\0';
		ck_assert_msg(k != prev,
			      "connection %d went to %s again (picks: %s)", i,
			      name, seq);
		prev = k;
		count[k]++;
	}
	ck_assert_msg(count[0] == 10 && count[1] == 10 && count[2] == 10,
		      "30 connections over 3 backends: %d/%d/%d (picks: %s)",
		      count[0], count[1], count[2], seq);
}
END_TEST

START_TEST(test_rr_weighted)
{
	struct h_backend heavy, light;
	struct spec s = { .b = { &heavy, &light }, .weight = { 3, 1 },
			  .nb = 2 };
	struct h_lb lb;
	char name[NAME_MAX_LEN], seq[64];
	int count[2] = { 0 }, run = 0, maxrun = 0, lrun = 0, maxlrun = 0;

	h_backend_up(&heavy, H_NAME, "heavy");
	h_backend_up(&light, H_NAME, "light");
	lb_up(&lb, &s);
	for (int i = 0; i < 40; i++) {
		int rc = h_get_name("127.0.0.1", s.port, name, sizeof(name),
				  NULL);
		int k;

		ck_assert_msg(rc == 0, "connection %d: %s", i, errstr(rc));
		k = which(s.b, s.nb, name);
		ck_assert_msg(k >= 0, "connection %d: unknown reply '%s'", i,
			      name);
		seq[i] = k == 0 ? 'H' : 'l';
		seq[i + 1] = '\0';
		count[k]++;
		run = k == 0 ? run + 1 : 0;
		lrun = k == 1 ? lrun + 1 : 0;
		if (run > maxrun)
			maxrun = run;
		if (lrun > maxlrun)
			maxlrun = lrun;
	}
	ck_assert_msg(count[0] == 30 && count[1] == 10,
		      "weights 3:1 over 40 connections: %d/%d (picks: %s)",
		      count[0], count[1], seq);
	ck_assert_msg(maxrun <= 3,
		      "weight-3 backend picked %d times in a row (picks: %s)",
		      maxrun, seq);
	ck_assert_msg(maxlrun <= 1,
		      "weight-1 backend picked %d times in a row (picks: %s)",
		      maxlrun, seq);
}
END_TEST

/* ---- 3. least-connections ---- */

/* Wait until ringlb has logged the end of n connections to backend name. */
static void
wait_ended(const struct h_lb *lb, const char *name, int n)
{
	char needle[NAME_MAX_LEN + 16];

	snprintf(needle, sizeof(needle), "backend=%s ", name);
	/* The log line is only a hint; the picks below are what is tested. */
	if (!h_lb_log_wait(lb, n, 3000, "conn=", needle))
		h_sleep_ms(500);
	h_sleep_ms(100);
}

START_TEST(test_lc_hold)
{
	struct h_backend a, b, c;
	struct spec s = { .algorithm = "least-connections",
			  .b = { &a, &b, &c }, .nb = 3 };
	struct h_lb lb;
	char name[NAME_MAX_LEN];
	int fd[10], on[10], count[3] = { 0 }, x, y, z, closed_x = 0;

	h_backend_up(&a, H_HOLD, "lc-a");
	h_backend_up(&b, H_HOLD, "lc-b");
	h_backend_up(&c, H_HOLD, "lc-c");
	lb_up(&lb, &s);

	/* Six held connections opened one by one spread 2/2/2. */
	for (int i = 0; i < 6; i++) {
		int rc = h_get_name("127.0.0.1", s.port, name, sizeof(name),
				  &fd[i]);

		ck_assert_msg(rc == 0, "connection %d: %s", i, errstr(rc));
		on[i] = which(s.b, s.nb, name);
		ck_assert_msg(on[i] >= 0, "unknown reply '%s'", name);
		count[on[i]]++;
	}
	ck_assert_msg(count[0] == 2 && count[1] == 2 && count[2] == 2,
		      "6 held connections spread %d/%d/%d, want 2/2/2",
		      count[0], count[1], count[2]);

	/* Close both on x: the next two must both go to x. */
	x = on[0];
	y = (x + 1) % 3;
	z = (x + 2) % 3;
	for (int i = 0; i < 6; i++) {
		if (on[i] == x) {
			close(fd[i]);
			fd[i] = -1;
			closed_x++;
		}
	}
	wait_ended(&lb, s.b[x]->name, closed_x);
	for (int i = 6; i < 8; i++) {
		int rc = h_get_name("127.0.0.1", s.port, name, sizeof(name),
				  &fd[i]);

		ck_assert_msg(rc == 0, "connection %d: %s", i, errstr(rc));
		on[i] = which(s.b, s.nb, name);
		ck_assert_msg(on[i] == x,
			      "connection %d went to %s; %s had 0 then 1 "
			      "connections, the others 2",
			      i, name, s.b[x]->name);
	}

	/* Close one on y and one on z: the next two take one each. */
	for (int want = 0; want < 2; want++) {
		int k = want == 0 ? y : z;

		for (int i = 0; i < 8; i++) {
			if (fd[i] >= 0 && on[i] == k) {
				close(fd[i]);
				fd[i] = -1;
				break;
			}
		}
	}
	wait_ended(&lb, s.b[y]->name, 1);
	wait_ended(&lb, s.b[z]->name, 1);
	memset(count, 0, sizeof(count));
	for (int i = 8; i < 10; i++) {
		int rc = h_get_name("127.0.0.1", s.port, name, sizeof(name),
				  &fd[i]);

		ck_assert_msg(rc == 0, "connection %d: %s", i, errstr(rc));
		on[i] = which(s.b, s.nb, name);
		ck_assert_msg(on[i] >= 0, "unknown reply '%s'", name);
		count[on[i]]++;
	}
	ck_assert_msg(count[y] == 1 && count[z] == 1,
		      "after freeing one slot on %s and on %s the next two "
		      "went %d/%d/%d (a/b/c)",
		      s.b[y]->name, s.b[z]->name, count[0], count[1],
		      count[2]);
	for (int i = 0; i < 10; i++)
		if (fd[i] >= 0)
			close(fd[i]);
}
END_TEST

START_TEST(test_lc_weighted)
{
	struct h_backend a, b;
	struct spec s = { .algorithm = "least-connections", .b = { &a, &b },
			  .weight = { 2, 1 }, .nb = 2 };
	struct h_lb lb;
	char name[NAME_MAX_LEN];
	int fd[6], count[2] = { 0 };

	h_backend_up(&a, H_HOLD, "lcw-a");
	h_backend_up(&b, H_HOLD, "lcw-b");
	lb_up(&lb, &s);
	/* Fewest active/weight first: any tie order ends at 4/2. */
	for (int i = 0; i < 6; i++) {
		int rc = h_get_name("127.0.0.1", s.port, name, sizeof(name),
				  &fd[i]);
		int k;

		ck_assert_msg(rc == 0, "connection %d: %s", i, errstr(rc));
		k = which(s.b, s.nb, name);
		ck_assert_msg(k >= 0, "unknown reply '%s'", name);
		count[k]++;
	}
	ck_assert_msg(count[0] == 4 && count[1] == 2,
		      "weights 2:1, 6 held connections: %d/%d, want 4/2",
		      count[0], count[1]);
	for (int i = 0; i < 6; i++)
		close(fd[i]);
}
END_TEST

/* ---- 4. bulk data ---- */

static int
connect_lb(const struct spec *s)
{
	int fd = h_connect(s->listen_host && strchr(s->listen_host, ':')
				   ? "::1" : "127.0.0.1",
			   s->port, 3000);

	ck_assert_msg(fd >= 0, "connect to ringlb port %d: %s", s->port,
		      strerror(-fd));
	return fd;
}

START_TEST(test_bulk_echo_64m)
{
	struct h_backend e;
	struct spec s = { .b = { &e }, .nb = 1, .engine = (unsigned)_i };
	struct h_xfer x = { .tx_seed = 42, .tx_len = 64 * MIB,
			    .tx_shut = true, .rx_seed = 42,
			    .rx_len = 64 * MIB, .rx_eof = true,
			    .timeout_ms = 90000 };
	struct h_lb lb;
	uint64_t t0;
	int fd;

	h_backend_up(&e, H_ECHO, "echo");
	lb_up(&lb, &s);
	fd = connect_lb(&s);
	t0 = h_now_ms();
	ck_assert_msg(h_xfer(fd, &x) == 0, "64 MiB echo: %s", x.err);
	fprintf(stderr, "64 MiB each way in %llu ms\n",
		(unsigned long long)(h_now_ms() - t0));
	close(fd);
	ck_assert_msg(h_lb_log_wait(&lb, 1, 5000, "conn=",
				    "up=67108864 down=67108864", "end=closed"),
		      "no log line with up=67108864 down=67108864 "
		      "end=closed");
}
END_TEST

START_TEST(test_bulk_upload_64m)
{
	struct h_backend k;
	struct spec s = { .b = { &k }, .nb = 1, .engine = (unsigned)_i };
	char reply[128];
	struct h_xfer x = { .tx_seed = 7, .tx_len = 64 * MIB, .tx_shut = true,
			    .rx_buf = reply, .rx_cap = sizeof(reply),
			    .rx_eof = true, .timeout_ms = 90000 };
	unsigned long long hash, len;
	struct h_lb lb;
	int fd;

	h_backend_up(&k, H_SINK, "sink");
	lb_up(&lb, &s);
	fd = connect_lb(&s);
	ck_assert_msg(h_xfer(fd, &x) == 0, "64 MiB upload: %s", x.err);
	close(fd);
	ck_assert_msg(sscanf(reply, "%llx %llu", &hash, &len) == 2,
		      "sink reply '%s'", reply);
	ck_assert_msg(len == 64ULL * MIB, "backend received %llu bytes of %d",
		      len, 64 * MIB);
	ck_assert_msg(hash == h_pattern_fnv(7, 64 * MIB),
		      "backend received different bytes (fnv %016llx)", hash);
}
END_TEST

START_TEST(test_bulk_download_64m)
{
	struct h_backend src = { .source_seed = 9, .source_len = 64 * MIB };
	struct spec s = { .b = { &src }, .nb = 1, .engine = (unsigned)_i };
	struct h_xfer x = { .rx_seed = 9, .rx_len = 64 * MIB, .rx_eof = true,
			    .timeout_ms = 90000 };
	struct h_lb lb;
	int fd;

	h_backend_up(&src, H_SOURCE, "source");
	lb_up(&lb, &s);
	fd = connect_lb(&s);
	ck_assert_msg(h_xfer(fd, &x) == 0, "64 MiB download: %s", x.err);
	close(fd);
}
END_TEST

/* ---- 5. concurrency ---- */

START_TEST(test_concurrent_200)
{
	struct h_backend a, b;
	struct spec s = { .b = { &a, &b }, .nb = 2, .engine = (unsigned)_i };
	struct h_multi m = { .host = "127.0.0.1", .total = 200,
			     .concurrency = 200, .len = 64 * 1024,
			     .hold = true, .timeout_ms = 60000 };
	struct h_lb lb;

	h_backend_up(&a, H_ECHO, "echo-a");
	h_backend_up(&b, H_ECHO, "echo-b");
	lb_up(&lb, &s);
	m.port = s.port;
	ck_assert_msg(h_multi_echo(&m) == 0, "200 concurrent echoes: %s "
		      "(%u done)", m.err, m.done);
	ck_assert_uint_eq(m.done, 200);
	ck_assert_uint_eq(m.max_open, 200);
	ck_assert_msg(h_lb_log_wait(&lb, 200, 10000, "conn=", "end=closed"),
		      "want 200 'end=closed' log lines, have %d",
		      h_lb_log_count(&lb, "conn=", "end=closed"));
}
END_TEST

/* ---- 6. half-close ---- */

START_TEST(test_half_close_echo)
{
	struct h_backend e;
	struct spec s = { .b = { &e }, .nb = 1, .engine = (unsigned)_i };
	struct h_xfer x = { .tx_seed = 3, .tx_len = MIB, .tx_shut = true,
			    .rx_seed = 3, .rx_len = MIB, .rx_eof = true,
			    .timeout_ms = 20000 };
	struct h_lb lb;
	int fd;

	h_backend_up(&e, H_ECHO, "echo");
	lb_up(&lb, &s);
	fd = connect_lb(&s);
	/* The echo backend shuts down only after it saw our FIN. */
	ck_assert_msg(h_xfer(fd, &x) == 0, "echo after SHUT_WR: %s", x.err);
	ck_assert(x.eof);
	close(fd);
}
END_TEST

START_TEST(test_half_close_sink)
{
	struct h_backend k;
	struct spec s = { .b = { &k }, .nb = 1, .engine = (unsigned)_i };
	unsigned long long hash, len;
	char reply[128];
	struct h_lb lb;
	long got;
	int fd, rc;

	h_backend_up(&k, H_SINK, "sink");
	lb_up(&lb, &s);
	fd = connect_lb(&s);
	{
		char *buf = malloc(100000);

		h_pattern_fill(5, 0, buf, 100000);
		ck_assert_int_eq(h_write_all(fd, buf, 100000, 5000), 0);
		free(buf);
	}
	ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
	/* The reply only exists after the backend saw EOF; take our time. */
	h_sleep_ms(300);
	rc = (int)h_read_all(fd, reply, sizeof(reply) - 1, 5000, &got);
	ck_assert_msg(rc >= 0, "reading the reply after SHUT_WR: %s (%ld "
		      "bytes)", errstr(rc), got);
	reply[got] = '\0';
	close(fd);
	ck_assert_msg(sscanf(reply, "%llx %llu", &hash, &len) == 2,
		      "sink reply '%s'", reply);
	ck_assert_msg(len == 100000, "backend got %llu bytes, want 100000",
		      len);
	ck_assert_msg(hash == h_pattern_fnv(5, 100000),
		      "backend got different bytes");
}
END_TEST

/* The one log line per connection, field by field. */
START_TEST(test_log_line)
{
	struct h_backend a;
	struct spec s = { .b = { &a }, .nb = 1 };
	char name[NAME_MAX_LEN], pat[512], *line;
	struct h_lb lb;
	regex_t re;
	int fd, rc, cport;

	h_backend_up(&a, H_NAME, "app1");
	lb_up(&lb, &s);
	rc = h_get_name("127.0.0.1", s.port, name, sizeof(name), &fd);
	ck_assert_msg(rc == 0, "connect: %s", errstr(rc));
	ck_assert_str_eq(name, "app1");
	cport = h_local_port(fd);
	ck_assert_int_eq(echo_once(fd, "hell\n"), 0);
	close(fd);
	ck_assert_msg(h_lb_log_wait(&lb, 1, 5000, "conn="),
		      "no conn= log line");
	line = h_lb_log_line(&lb, "conn=");
	/* up: "hell\n" = 5; down: "app1\n" + "hell\n" = 10. */
	snprintf(pat, sizeof(pat),
		 "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
		 "\\.[0-9]{3}Z info conn=[0-9]+ client=127\\.0\\.0\\.1:%d "
		 "listener=web pool=web backend=app1 addr=127\\.0\\.0\\.1:%d "
		 "connect_ms=[0-9]+ retries=0 up=5 down=10 ms=[0-9]+ "
		 "end=closed$",
		 cport, a.port);
	ck_assert_int_eq(regcomp(&re, pat, REG_EXTENDED | REG_NOSUB), 0);
	ck_assert_msg(regexec(&re, line, 0, NULL, 0) == 0,
		      "log line '%s' does not match '%s'", line, pat);
	regfree(&re);
	free(line);
	line = h_lb_log_line(&lb, "ringlb started");
	ck_assert_msg(line != NULL && strstr(line, "Z info ringlb started"),
		      "start line '%s'", line ? line : "(none)");
	free(line);
}
END_TEST

/* ---- 7. health checks ---- */

START_TEST(test_health_down_up)
{
	struct h_backend a, b, c;
	struct spec s = {
		.attempts = 1,
		.health = "{ \"enabled\": true, \"interval_ms\": 200, "
			  "\"timeout_ms\": 100, \"rise\": 2, \"fall\": 2 }",
		.b = { &a, &b, &c }, .nb = 3 };
	const int bound = 200 * 2 + 100 + 2000;
	char name[NAME_MAX_LEN], *line;
	int seen[3] = { 0 };
	uint64_t t0, dt;
	struct h_lb lb;

	h_backend_up(&a, H_NAME, "hc-a");
	h_backend_up(&b, H_NAME, "hc-b");
	h_backend_up(&c, H_NAME, "hc-c");
	lb_up(&lb, &s);
	h_sleep_ms(500);
	for (int i = 0; i < 3; i++) {
		int rc = h_get_name("127.0.0.1", s.port, name, sizeof(name),
				  NULL);

		ck_assert_msg(rc == 0, "before the kill, connection %d: %s",
			      i, errstr(rc));
	}

	h_backend_kill(&b);
	t0 = h_now_ms();
	ck_assert_msg(h_lb_log_wait(&lb, 1, bound, "health ", "backend=hc-b ",
				    "state=down"),
		      "no state=down line for hc-b within %d ms of the kill",
		      bound);
	dt = h_now_ms() - t0;
	line = h_lb_log_line(&lb, "backend=hc-b ", "state=down");
	ck_assert_msg(strstr(line, "pool=web") &&
			      strstr(line, "reason=refused") &&
			      strstr(line, "after=2 consecutive failures"),
		      "down line: '%s'", line);
	free(line);
	fprintf(stderr, "hc-b marked down %llu ms after the kill\n",
		(unsigned long long)dt);

	/* connect_attempts 1: a pick of hc-b would fail the client. */
	for (int i = 0; i < 9; i++) {
		int rc = h_get_name("127.0.0.1", s.port, name, sizeof(name),
				  NULL);
		int k;

		ck_assert_msg(rc == 0,
			      "connection %d after hc-b went down: %s (a pick "
			      "of the dead backend?)",
			      i, errstr(rc));
		k = which(s.b, s.nb, name);
		ck_assert_msg(k == 0 || k == 2, "reply '%s'", name);
		seen[k]++;
	}
	ck_assert_msg(seen[0] > 0 && seen[2] > 0,
		      "9 connections over 2 healthy backends: %d/%d",
		      seen[0], seen[2]);

	ck_assert_int_eq(h_backend_restart(&b), 0);
	t0 = h_now_ms();
	ck_assert_msg(h_lb_log_wait(&lb, 1, bound, "health ", "backend=hc-b ",
				    "state=up"),
		      "no state=up line for hc-b within %d ms of the restart",
		      bound);
	line = h_lb_log_line(&lb, "backend=hc-b ", "state=up");
	ck_assert_msg(strstr(line, "reason=ok") &&
			      strstr(line, "after=2 consecutive successes"),
		      "up line: '%s'", line);
	free(line);
	fprintf(stderr, "hc-b back up %llu ms after the restart\n",
		(unsigned long long)(h_now_ms() - t0));
	memset(seen, 0, sizeof(seen));
	for (int i = 0; i < 6; i++) {
		int rc = h_get_name("127.0.0.1", s.port, name, sizeof(name),
				  NULL);
		int k;

		ck_assert_msg(rc == 0, "connection %d after hc-b came back: "
			      "%s", i, errstr(rc));
		k = which(s.b, s.nb, name);
		ck_assert_msg(k >= 0, "reply '%s'", name);
		seen[k]++;
	}
	ck_assert_msg(seen[1] > 0,
		      "hc-b is up but got none of 6 connections (%d/%d/%d)",
		      seen[0], seen[1], seen[2]);
}
END_TEST

/* ---- 8. retries ---- */

START_TEST(test_retry_refused)
{
	struct h_backend dead, live;
	struct spec s = { .b = { &dead, &live }, .nb = 2 };
	char name[NAME_MAX_LEN];
	struct h_lb lb;

	h_backend_dead(&dead, H_NAME, "dead");
	ck_assert_int_gt(dead.port, 0);
	h_backend_up(&live, H_NAME, "live");
	lb_up(&lb, &s);
	for (int i = 0; i < 20; i++) {
		int rc = h_get_name("127.0.0.1", s.port, name, sizeof(name),
				  NULL);

		ck_assert_msg(rc == 0, "connection %d: %s", i, errstr(rc));
		ck_assert_msg(strcmp(name, "live") == 0,
			      "connection %d answered by '%s'", i, name);
	}
	ck_assert_msg(h_lb_log_wait(&lb, 20, 5000, "conn=", "backend=live "),
		      "want 20 log lines with backend=live, have %d",
		      h_lb_log_count(&lb, "conn=", "backend=live "));
	ck_assert_int_eq(h_lb_log_count(&lb, "conn=", "end=connect-failed"),
			 0);
}
END_TEST

START_TEST(test_retry_timeout)
{
	struct h_backend hole = { 0 }, live;
	struct spec s = { .b = { &hole, &live }, .nb = 2,
			  .timeouts = "{ \"connect_ms\": 300, "
				      "\"idle_ms\": 0 }" };
	char name[NAME_MAX_LEN];
	struct h_lb lb;
	int slow = 0;

	snprintf(hole.name, sizeof(hole.name), "hole");
	hole.port = h_blackhole();
	ck_assert_msg(hole.port > 0, "cannot make a black-hole port: %s",
		      strerror(-hole.port));
	h_backend_up(&live, H_NAME, "live");
	lb_up(&lb, &s);
	for (int i = 0; i < 6; i++) {
		uint64_t t0 = h_now_ms(), dt;
		int rc = h_get_name("127.0.0.1", s.port, name, sizeof(name),
				  NULL);

		dt = h_now_ms() - t0;
		ck_assert_msg(rc == 0, "connection %d: %s", i, errstr(rc));
		ck_assert_msg(strcmp(name, "live") == 0,
			      "connection %d answered by '%s'", i, name);
		ck_assert_msg(dt < 300 + 2000,
			      "connection %d took %llu ms (connect_ms 300)", i,
			      (unsigned long long)dt);
		if (dt >= 250)
			slow++;
	}
	/* Round-robin sends about half to the black hole first. */
	ck_assert_msg(slow > 0,
		      "no connection waited for the connect timeout: was the "
		      "black-hole backend ever tried?");
}
END_TEST

START_TEST(test_connect_timeout_only)
{
	struct h_backend hole = { 0 };
	struct spec s = { .b = { &hole }, .nb = 1,
			  .timeouts = "{ \"connect_ms\": 300, "
				      "\"idle_ms\": 0 }" };
	struct h_lb lb;
	uint64_t t0, dt;
	int fd;

	snprintf(hole.name, sizeof(hole.name), "hole");
	hole.port = h_blackhole();
	ck_assert_msg(hole.port > 0, "cannot make a black-hole port: %s",
		      strerror(-hole.port));
	lb_up(&lb, &s);
	fd = connect_lb(&s);
	t0 = h_now_ms();
	assert_closed_without_data(fd, 300 + 2500, "only backend times out");
	dt = h_now_ms() - t0;
	close(fd);
	ck_assert_msg(dt >= 250, "client closed after %llu ms, before the "
		      "300 ms connect timeout", (unsigned long long)dt);
	ck_assert_msg(h_lb_log_wait(&lb, 1, 3000, "conn=", "backend=",
				    "end=connect-failed"),
		      "no end=connect-failed log line");
	ck_assert(h_lb_running(&lb));
}
END_TEST

/* Clients that leave while ringlb is still connecting leak nothing. */
START_TEST(test_client_abort_during_connect)
{
	struct h_backend hole = { 0 };
	struct spec s = { .b = { &hole }, .nb = 1,
			  .timeouts = "{ \"connect_ms\": 1500, "
				      "\"idle_ms\": 0 }" };
	struct h_lb lb;
	int idle, n;

	snprintf(hole.name, sizeof(hole.name), "hole");
	hole.port = h_blackhole();
	ck_assert_msg(hole.port > 0, "cannot make a black-hole port: %s",
		      strerror(-hole.port));
	lb_up(&lb, &s);
	h_sleep_ms(300);
	idle = h_lb_fd_count(&lb);
	ck_assert_int_gt(idle, 0);
	for (int i = 0; i < 20; i++) {
		int fd = connect_lb(&s);

		h_sleep_ms(20);
		if (i % 2)
			h_close_reset(fd);
		else
			close(fd);
	}
	n = h_lb_fd_wait(&lb, idle, 1500 + 6000);
	ck_assert_msg(n == idle, "ringlb holds %d fds after 20 clients left "
		      "during the backend connect, %d when idle", n, idle);
	ck_assert_msg(h_lb_log_wait(&lb, 20, 3000, "conn="),
		      "want 20 conn= log lines, have %d",
		      h_lb_log_count(&lb, "conn="));
	ck_assert(h_lb_running(&lb));
}
END_TEST

/* ---- 9. no backend ---- */

START_TEST(test_all_down_no_health)
{
	struct h_backend d1, d2;
	struct spec s = { .b = { &d1, &d2 }, .nb = 2 };
	char name[NAME_MAX_LEN];
	struct h_lb lb;
	int rc;

	h_backend_dead(&d1, H_NAME, "gone-1");
	h_backend_dead(&d2, H_NAME, "gone-2");
	ck_assert(d1.port > 0 && d2.port > 0 && d1.port != d2.port);
	lb_up(&lb, &s);
	for (int i = 0; i < 3; i++) {
		int fd = connect_lb(&s);

		assert_closed_without_data(fd, 2000, "all backends refuse");
		close(fd);
	}
	ck_assert_msg(h_lb_running(&lb), "ringlb exited, status 0x%x",
		      lb.status);
	ck_assert_msg(h_lb_log_wait(&lb, 1, 3000, "conn=",
				    "end=connect-failed"),
		      "no end=connect-failed log line");

	/* A backend appears: served again. */
	ck_assert_int_eq(h_backend_restart(&d1), 0);
	rc = h_get_name("127.0.0.1", s.port, name, sizeof(name), NULL);
	ck_assert_msg(rc == 0, "after a backend came up: %s", errstr(rc));
	ck_assert_str_eq(name, "gone-1");
}
END_TEST

START_TEST(test_all_down_health)
{
	struct h_backend d1, d2;
	struct spec s = {
		.health = "{ \"enabled\": true, \"interval_ms\": 200, "
			  "\"timeout_ms\": 100, \"rise\": 1, \"fall\": 1 }",
		.b = { &d1, &d2 }, .nb = 2 };
	char name[NAME_MAX_LEN];
	struct h_lb lb;
	uint64_t t0;
	int rc, fd;

	h_backend_dead(&d1, H_NAME, "gone-1");
	h_backend_dead(&d2, H_NAME, "gone-2");
	lb_up(&lb, &s);
	ck_assert_msg(h_lb_log_wait(&lb, 1, 3000, "backend=gone-1 ",
				    "state=down") &&
			      h_lb_log_wait(&lb, 1, 3000, "backend=gone-2 ",
					    "state=down"),
		      "both backends should be marked down within 3 s");
	fd = connect_lb(&s);
	t0 = h_now_ms();
	assert_closed_without_data(fd, 1500, "no healthy backend");
	close(fd);
	fprintf(stderr, "closed %llu ms after connect with no backend\n",
		(unsigned long long)(h_now_ms() - t0));
	ck_assert_msg(h_lb_log_wait(&lb, 1, 3000, "conn=", "end=no-backend"),
		      "no end=no-backend log line");

	ck_assert_int_eq(h_backend_restart(&d2), 0);
	ck_assert_msg(h_lb_log_wait(&lb, 1, 3000, "backend=gone-2 ",
				    "state=up"),
		      "gone-2 not marked up within 3 s of starting");
	rc = h_get_name("127.0.0.1", s.port, name, sizeof(name), NULL);
	ck_assert_msg(rc == 0, "after a backend came up: %s", errstr(rc));
	ck_assert_str_eq(name, "gone-2");
	ck_assert(h_lb_running(&lb));
}
END_TEST

/* ---- resets ---- */

/*
 * Wait for a log line with both needles while reloading (SIGHUP) every
 * 120 ms; the time it took in ms, or -1 after bound_ms.
 */
static long
wait_reloading(struct h_lb *lb, const char *a, const char *b, int bound_ms,
	       int *reloads)
{
	uint64_t t0 = h_now_ms();

	for (;;) {
		if (h_lb_log_count(lb, a, b) > 0)
			return (long)(h_now_ms() - t0);
		if (h_now_ms() - t0 > (uint64_t)bound_ms)
			return -1;
		h_lb_signal(lb, SIGHUP);
		(*reloads)++;
		h_sleep_ms(120);
	}
}

/*
 * Reloads more often than rise or fall can complete, and more often than
 * a probe times out: the checker must go on counting across them.  A
 * checker that starts afresh at every reload never marks these down.
 */
START_TEST(test_health_across_reloads)
{
	struct h_backend a, b, hole = { 0 };
	struct spec s = {
		.attempts = 1,
		.health = "{ \"enabled\": true, \"interval_ms\": 200, "
			  "\"timeout_ms\": 200, \"rise\": 3, \"fall\": 3 }",
		.b = { &a, &b, &hole }, .nb = 3 };
	struct h_lb lb;
	int reloads = 0;
	long dt;

	h_backend_up(&a, H_NAME, "hr-a");
	h_backend_up(&b, H_NAME, "hr-b");
	snprintf(hole.name, sizeof(hole.name), "hr-hole");
	hole.port = h_blackhole();
	ck_assert_msg(hole.port > 0, "cannot make a black-hole port: %s",
		      strerror(-hole.port));
	lb_up(&lb, &s);

	/* 3 timeouts of 200 ms, back to back. */
	dt = wait_reloading(&lb, "backend=hr-hole ", "state=down", 3000,
			    &reloads);
	ck_assert_msg(dt >= 0, "the black hole was not marked down in 3 s "
		      "with a reload every 120 ms");
	fprintf(stderr, "black hole down after %ld ms, %d reloads\n", dt,
		reloads);

	h_backend_kill(&b);
	reloads = 0;
	dt = wait_reloading(&lb, "backend=hr-b ", "state=down", 2500,
			    &reloads);
	ck_assert_msg(dt >= 0, "hr-b was not marked down within 2.5 s of the "
		      "kill with a reload every 120 ms");
	fprintf(stderr, "hr-b down %ld ms after the kill, %d reloads\n", dt,
		reloads);

	ck_assert_int_eq(h_backend_restart(&b), 0);
	reloads = 0;
	dt = wait_reloading(&lb, "backend=hr-b ", "state=up", 2500, &reloads);
	ck_assert_msg(dt >= 0, "hr-b was not marked up within 2.5 s of the "
		      "restart with a reload every 120 ms");
	fprintf(stderr, "hr-b up %ld ms after the restart, %d reloads\n", dt,
		reloads);
	ck_assert_msg(h_lb_log_wait(&lb, 10, 2000, "reloaded "),
		      "fewer than 10 reloads took place");
	ck_assert_int_eq(h_lb_log_count(&lb, " error "), 0);
	ck_assert(h_lb_running(&lb));
}
END_TEST

START_TEST(test_resets)
{
	struct h_backend hold, rst;
	struct spec s1 = { .b = { &hold }, .nb = 1 };
	struct spec s2 = { .b = { &rst }, .nb = 1 };
	char name[NAME_MAX_LEN];
	struct h_lb lb1, lb2;
	int fd, rc;

	h_backend_up(&hold, H_HOLD, "holder");
	h_backend_up(&rst, H_RESET, "resetter");
	lb_up(&lb1, &s1);
	lb_up(&lb2, &s2);

	/* Client resets: logged as client-reset, ringlb keeps going. */
	rc = h_get_name("127.0.0.1", s1.port, name, sizeof(name), &fd);
	ck_assert_msg(rc == 0, "connect: %s", errstr(rc));
	h_close_reset(fd);
	ck_assert_msg(h_lb_log_wait(&lb1, 1, 3000, "conn=",
				    "end=client-reset"),
		      "no end=client-reset log line after a client RST");

	/* Backend resets: the client's connection ends too. */
	rc = h_get_name("127.0.0.1", s2.port, name, sizeof(name), &fd);
	ck_assert_msg(rc == 0, "connect: %s", errstr(rc));
	ck_assert_int_eq(h_write_all(fd, "x", 1, 1000), 0);
	{
		long data = 0;

		/* README "Resets": passed on as a reset. */
		rc = h_wait_close(fd, 3000, &data);
		ck_assert_msg(rc == -ECONNRESET && data == 0,
			      "after the backend's RST the client saw %s (%ld "
			      "bytes), want a reset",
			      rc == 0 ? "EOF" : strerror(-rc), data);
	}
	close(fd);
	ck_assert_msg(h_lb_log_wait(&lb2, 1, 3000, "conn=",
				    "end=backend-reset"),
		      "no end=backend-reset log line after a backend RST");
	ck_assert(h_lb_running(&lb1) && h_lb_running(&lb2));
	rc = h_get_name("127.0.0.1", s1.port, name, sizeof(name), NULL);
	ck_assert_msg(rc == 0, "after the reset: %s", errstr(rc));
}
END_TEST

/* ---- 10. idle timeout ---- */

START_TEST(test_idle_timeout)
{
	struct h_backend e;
	struct spec s = { .b = { &e }, .nb = 1,
			  .timeouts = "{ \"connect_ms\": 1000, "
				      "\"idle_ms\": 500 }" };
	struct h_lb lb;
	uint64_t t0, dt;
	int fd, idle, n, rc;
	long data;

	h_backend_up(&e, H_ECHO, "echo");
	lb_up(&lb, &s);
	h_sleep_ms(300);
	idle = h_lb_fd_count(&lb);
	ck_assert_int_gt(idle, 0);

	/* Silent: closed after idle_ms, on both sides. */
	fd = connect_lb(&s);
	ck_assert_int_eq(echo_once(fd, "hi\n"), 0);
	t0 = h_now_ms();
	rc = h_wait_close(fd, 5000, &data);
	dt = h_now_ms() - t0;
	close(fd);
	ck_assert_msg(rc == 0, "idle connection: want EOF, got %s after "
		      "%llu ms", strerror(-rc), (unsigned long long)dt);
	ck_assert_msg(data == 0, "idle connection got %ld bytes", data);
	ck_assert_msg(dt >= 400 && dt <= 3000,
		      "idle_ms 500 connection closed after %llu ms",
		      (unsigned long long)dt);
	ck_assert_msg(h_lb_log_wait(&lb, 1, 3000, "conn=", "end=idle-timeout"),
		      "no end=idle-timeout log line");
	n = h_lb_fd_wait(&lb, idle, 6000);
	ck_assert_msg(n == idle, "ringlb holds %d fds after the idle close, "
		      "%d before the connection", n, idle);

	/* Traffic every 200 ms for 1.5 s keeps it open. */
	fd = connect_lb(&s);
	t0 = h_now_ms();
	for (int i = 0; h_now_ms() - t0 < 1500; i++) {
		rc = echo_once(fd, "tick\n");
		ck_assert_msg(rc == 0, "active connection, echo %d after %llu "
			      "ms: %s", i,
			      (unsigned long long)(h_now_ms() - t0),
			      errstr(rc));
		h_sleep_ms(200);
	}
	rc = echo_once(fd, "last\n");
	ck_assert_msg(rc == 0, "active connection closed: %s", errstr(rc));
	close(fd);
}
END_TEST

/* ---- 11. signals ---- */

/*
 * One attempt at a new connection: 1 when refused or closed without an
 * echo, 0 when served, -1 when it hangs open unserved.
 */
static int
probe_refused(int port)
{
	char buf[64];
	int fd, rc;

	fd = h_connect("127.0.0.1", port, 500);
	if (fd < 0)
		return 1;
	rc = h_write_all(fd, "probe\n", 6, 500);
	if (rc == 0)
		rc = h_read_line(fd, buf, sizeof(buf), 700);
	close(fd);
	if (rc >= 0)
		return 0;
	if (rc == -ETIMEDOUT)
		return -1;
	return 1;
}

START_TEST(test_sigterm_drain)
{
	struct h_backend e;
	struct spec s = { .grace_ms = 10000, .b = { &e }, .nb = 1 };
	struct h_lb lb;
	uint64_t t0;
	int fd, r = 0, rc;

	h_backend_up(&e, H_ECHO, "echo");
	lb_up(&lb, &s);
	fd = connect_lb(&s);
	ck_assert_int_eq(echo_once(fd, "before\n"), 0);

	h_lb_signal(&lb, SIGTERM);
	t0 = h_now_ms();
	while (h_now_ms() - t0 < 2000) {
		r = probe_refused(s.port);
		if (r == 1)
			break;
		h_sleep_ms(50);
	}
	ck_assert_msg(r == 1, "new connections still %s 2 s after SIGTERM",
		      r == 0 ? "served" : "accepted but left hanging");
	fprintf(stderr, "new connections refused %llu ms after SIGTERM\n",
		(unsigned long long)(h_now_ms() - t0));
	ck_assert_msg(h_lb_running(&lb), "ringlb exited with a connection "
		      "open (status 0x%x)", lb.status);
	rc = echo_once(fd, "after\n");
	ck_assert_msg(rc == 0, "open connection after SIGTERM: %s",
		      errstr(rc));
	close(fd);
	t0 = h_now_ms();
	ck_assert_msg(h_lb_wait_exit(&lb, 5000) == 0,
		      "ringlb still running 5 s after its last connection "
		      "closed");
	ck_assert_msg(WIFEXITED(lb.status) && WEXITSTATUS(lb.status) == 0,
		      "exit status 0x%x after SIGTERM", lb.status);
	fprintf(stderr, "exited %llu ms after the last connection closed\n",
		(unsigned long long)(h_now_ms() - t0));
}
END_TEST

START_TEST(test_sigterm_grace)
{
	struct h_backend e;
	struct spec s = { .grace_ms = 500, .b = { &e }, .nb = 1 };
	struct h_lb lb;
	uint64_t t0, dt;
	long data;
	int fd, rc;

	h_backend_up(&e, H_ECHO, "echo");
	lb_up(&lb, &s);
	fd = connect_lb(&s);
	ck_assert_int_eq(echo_once(fd, "hello\n"), 0);
	t0 = h_now_ms();
	h_lb_signal(&lb, SIGTERM);
	ck_assert_msg(h_lb_wait_exit(&lb, 500 + 3000) == 0,
		      "ringlb still running 3.5 s after SIGTERM with "
		      "shutdown_grace_ms 500");
	dt = h_now_ms() - t0;
	ck_assert_msg(WIFEXITED(lb.status) && WEXITSTATUS(lb.status) == 0,
		      "exit status 0x%x", lb.status);
	ck_assert_msg(dt >= 400, "exited %llu ms after SIGTERM, before the "
		      "500 ms grace, with a connection open",
		      (unsigned long long)dt);
	rc = h_wait_close(fd, 1000, &data);
	ck_assert_msg(rc == 0 && data == 0,
		      "client after the grace exit: %s, %ld bytes",
		      rc == 0 ? "EOF" : strerror(-rc), data);
	close(fd);
	ck_assert_msg(h_lb_log_count(&lb, "conn=", "end=shutdown") == 1,
		      "want one end=shutdown log line");
}
END_TEST

START_TEST(test_sigint_idle)
{
	struct h_backend e;
	struct spec s = { .b = { &e }, .nb = 1 };
	struct h_lb lb;

	h_backend_up(&e, H_ECHO, "echo");
	lb_up(&lb, &s);
	h_lb_signal(&lb, SIGINT);
	ck_assert_msg(h_lb_wait_exit(&lb, 3000) == 0,
		      "idle ringlb still running 3 s after SIGINT");
	ck_assert_msg(WIFEXITED(lb.status) && WEXITSTATUS(lb.status) == 0,
		      "exit status 0x%x after SIGINT", lb.status);
	ck_assert(!h_port_listening(s.port));
}
END_TEST

/* A second SIGTERM cuts the grace short (README, "Signals"). */
START_TEST(test_second_sigterm)
{
	struct h_backend e;
	struct spec s = { .grace_ms = 20000, .b = { &e }, .nb = 1 };
	struct h_lb lb;
	uint64_t t0;
	long data;
	int fd, rc;

	h_backend_up(&e, H_ECHO, "echo");
	lb_up(&lb, &s);
	fd = connect_lb(&s);
	ck_assert_int_eq(echo_once(fd, "one\n"), 0);
	h_lb_signal(&lb, SIGTERM);
	h_sleep_ms(300);
	rc = echo_once(fd, "two\n");
	ck_assert_msg(rc == 0, "draining connection: %s", errstr(rc));
	t0 = h_now_ms();
	h_lb_signal(&lb, SIGTERM);
	ck_assert_msg(h_lb_wait_exit(&lb, 3000) == 0,
		      "ringlb still running 3 s after a second SIGTERM "
		      "(grace 20 s)");
	ck_assert_msg(WIFEXITED(lb.status) && WEXITSTATUS(lb.status) == 0,
		      "exit status 0x%x", lb.status);
	fprintf(stderr, "second SIGTERM: exited after %llu ms\n",
		(unsigned long long)(h_now_ms() - t0));
	rc = h_wait_close(fd, 1000, &data);
	ck_assert_msg((rc == 0 || rc == -ECONNRESET) && data == 0,
		      "client after the second SIGTERM: %s, %ld bytes",
		      rc == 0 ? "EOF" : strerror(-rc), data);
	close(fd);
	ck_assert_int_eq(h_lb_log_count(&lb, "conn=", "end=shutdown"), 1);
}
END_TEST

/* A listen port already taken: start-up fails with exit status 1. */
START_TEST(test_port_in_use)
{
	struct h_backend e;
	struct spec s = { .b = { &e }, .nb = 1 };
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct h_lb lb;
	json_t *cfg;
	int lfd, rc;

	h_backend_up(&e, H_ECHO, "echo");
	s.port = h_free_port();
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(lfd, 0);
	sin.sin_port = htons((uint16_t)s.port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(lfd, 16), 0);
	cfg = spec_cfg(&s);
	rc = h_lb_start_cfg(&lb, cfg, 0, NULL);
	json_decref(cfg);
	ck_assert_int_eq(rc, 0);
	ck_assert_msg(h_lb_wait_exit(&lb, 5000) == 0,
		      "ringlb still running 5 s after start on a taken port");
	ck_assert_msg(WIFEXITED(lb.status) && WEXITSTATUS(lb.status) == 1,
		      "taken port: want exit status 1, got 0x%x", lb.status);
	ck_assert_msg(h_lb_log_count(&lb, " error ") > 0,
		      "no error line logged for the taken port");
	close(lfd);
}
END_TEST

/*
 * A backend that never reads: ringlb must stop reading from the client
 * (bounded buffering, README "Proxying"), so the client's writes stall and
 * ringlb's memory stays flat.
 */
START_TEST(test_backpressure)
{
	struct h_backend st;
	struct spec s = { .b = { &st }, .nb = 1, .engine = (unsigned)_i };
	uint64_t total = 0, last = 0, t0;
	const uint64_t cap = 256ULL * MIB;
	char *buf = malloc(65536);
	struct h_lb lb;
	long rss0, rss1;
	int fd;

	h_backend_up(&st, H_STALL, "stall");
	lb_up(&lb, &s);
	h_sleep_ms(300);
	rss0 = h_lb_rss_kb(&lb);
	ck_assert_int_gt(rss0, 0);
	fd = connect_lb(&s);
	t0 = h_now_ms();
	last = t0;
	/* Write until nothing moves for 2 s, at most cap bytes or 60 s. */
	while (total < cap && h_now_ms() - last < 2000 &&
	       h_now_ms() - t0 < 60000) {
		ssize_t n;

		h_pattern_fill(11, total, buf, 65536);
		n = send(fd, buf, 65536, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			total += (uint64_t)n;
			last = h_now_ms();
			continue;
		}
		ck_assert_msg(n < 0 && errno == EAGAIN,
			      "send after %llu bytes: %s",
			      (unsigned long long)total, strerror(errno));
		h_sleep_ms(20);
	}
	rss1 = h_lb_rss_kb(&lb);
	fprintf(stderr, "stalled after %llu MiB; ringlb RSS %ld -> %ld KiB\n",
		(unsigned long long)(total / MIB), rss0, rss1);
	ck_assert_msg(total < 128ULL * MIB,
		      "wrote %llu MiB to a backend that reads nothing",
		      (unsigned long long)(total / MIB));
	ck_assert_msg(rss1 - rss0 < 32 * 1024,
		      "ringlb RSS grew by %ld KiB holding a stalled stream",
		      rss1 - rss0);
	ck_assert(h_lb_running(&lb));
	close(fd);
	free(buf);
}
END_TEST

/*
 * A second ringlb on the same port would share it through SO_REUSEPORT and
 * take half the clients; it must refuse to start instead.
 */
START_TEST(test_second_instance)
{
	struct h_backend e;
	struct spec s = { .b = { &e }, .nb = 1 };
	struct h_lb lb, lb2;
	json_t *cfg;
	int rc;

	h_backend_up(&e, H_NAME, "first");
	lb_up(&lb, &s);
	cfg = spec_cfg(&s);
	rc = h_lb_start_cfg(&lb2, cfg, 0, NULL);
	json_decref(cfg);
	ck_assert_int_eq(rc, 0);
	ck_assert_msg(h_lb_wait_exit(&lb2, 5000) == 0,
		      "a second ringlb on port %d still runs after 5 s",
		      s.port);
	ck_assert_msg(WIFEXITED(lb2.status) && WEXITSTATUS(lb2.status) == 1,
		      "second instance: want exit status 1, got 0x%x",
		      lb2.status);
	ck_assert_msg(h_lb_log_count(&lb2, " error ", "the address is in use")
			      == 1,
		      "no 'address is in use' error from the second ringlb");
	/* It waited for a dying predecessor to let go first. */
	ck_assert_int_eq(h_lb_log_count(&lb2, " info ", "waiting up to"), 1);
	/* The first one goes on serving every client. */
	for (int i = 0; i < 4; i++) {
		char name[NAME_MAX_LEN];
		int fd;

		rc = h_get_name("127.0.0.1", s.port, name, sizeof(name), &fd);
		ck_assert_msg(rc == 0, "connection %d: %s", i, errstr(rc));
		ck_assert_str_eq(name, "first");
		close(fd);
	}
	ck_assert(h_lb_running(&lb));
}
END_TEST

/*
 * A killed ringlb's listening sockets outlive it by some milliseconds, until
 * the kernel tears its rings down. A restart at once (a supervisor's) must
 * wait them out rather than fail on "address in use".
 */
START_TEST(test_restart_after_kill)
{
	struct h_backend e;
	struct spec s = { .b = { &e }, .nb = 1 };
	struct h_lb lb;

	h_backend_up(&e, H_NAME, "first");
	lb_up(&lb, &s);
	for (int i = 0; i < 3; i++) {
		char name[NAME_MAX_LEN];
		int rc, fd;

		h_lb_signal(&lb, SIGKILL);
		ck_assert_int_eq(h_lb_wait_exit(&lb, 5000), 0);
		rc = h_lb_launch(&lb, s.port, NULL);
		ck_assert_msg(rc == 0, "restart %d: %s", i, errstr(rc));
		/* The log is appended to: one start line per run. */
		ck_assert_msg(h_lb_log_wait(&lb, i + 2, 5000, "ringlb started"),
			      "restart %d right after SIGKILL did not start",
			      i);
		ck_assert_msg(h_lb_running(&lb), "restart %d exited", i);
		rc = h_get_name("127.0.0.1", s.port, name, sizeof(name), &fd);
		ck_assert_msg(rc == 0, "restart %d: %s", i, errstr(rc));
		ck_assert_str_eq(name, "first");
		close(fd);
	}
	ck_assert_int_eq(h_lb_log_count(&lb, " error "), 0);

	/*
	 * How long the kernel keeps them varies; hold the port ourselves for
	 * 300 ms to stand for a slow teardown: ringlb waits, then starts.
	 */
	{
		struct sockaddr_in a = { .sin_family = AF_INET,
					 .sin_port = htons((uint16_t)s.port) };
		char name[NAME_MAX_LEN];
		int one = 1, ls, rc, fd;

		h_lb_signal(&lb, SIGKILL);
		ck_assert_int_eq(h_lb_wait_exit(&lb, 5000), 0);
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		ck_assert_int_ge(ls, 0);
		setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		for (int i = 0; i < 100 && bind(ls, (struct sockaddr *)&a,
						sizeof(a)) < 0; i++)
			h_sleep_ms(20);
		ck_assert_int_eq(listen(ls, 8), 0);
		ck_assert_int_eq(h_lb_launch(&lb, 0, NULL), 0);
		ck_assert_msg(h_lb_log_wait(&lb, 1, 5000, " info ",
					    "waiting up to"),
			      "no word that ringlb waits for a busy port");
		h_sleep_ms(300);
		ck_assert_msg(h_lb_running(&lb), "ringlb gave up on a port "
			      "busy for 300 ms");
		close(ls);
		ck_assert_msg(h_lb_log_wait(&lb, 5, 5000, "ringlb started"),
			      "ringlb did not start once the port was free");
		rc = h_get_name("127.0.0.1", s.port, name, sizeof(name), &fd);
		ck_assert_msg(rc == 0, "after the wait: %s", errstr(rc));
		ck_assert_str_eq(name, "first");
		close(fd);
	}
}
END_TEST

/* ---- 12. no fd leak ---- */

START_TEST(test_fd_leak_20k)
{
	struct h_backend e[4];
	struct spec s = { .b = { &e[0], &e[1], &e[2], &e[3] }, .nb = 4 };
	struct h_multi m = { .host = "127.0.0.1", .total = 20000,
			     .concurrency = 50, .len = 64, .nsrc = 8,
			     .timeout_ms = 120000 };
	struct h_lb lb;
	uint64_t t0;
	int idle, n;

	for (int i = 0; i < 4; i++) {
		char name[32];

		snprintf(name, sizeof(name), "echo-%d", i);
		h_backend_up(&e[i], H_ECHO, name);
	}
	lb_up(&lb, &s);
	h_sleep_ms(500);
	idle = h_lb_fd_count(&lb);
	h_sleep_ms(200);
	n = h_lb_fd_count(&lb);
	ck_assert_msg(idle > 0 && n == idle, "idle fd count unstable: %d, %d",
		      idle, n);
	m.port = s.port;
	t0 = h_now_ms();
	ck_assert_msg(h_multi_echo(&m) == 0, "20000 connections: %s", m.err);
	fprintf(stderr, "20000 connections in %llu ms\n",
		(unsigned long long)(h_now_ms() - t0));
	n = h_lb_fd_wait(&lb, idle, 10000);
	ck_assert_msg(n == idle, "ringlb holds %d fds 10 s after 20000 "
		      "connections, %d when idle", n, idle);
	ck_assert(h_lb_running(&lb));
	n = h_lb_log_count(&lb, "conn=", "end=closed");
	ck_assert_msg(n == 20000, "%d 'end=closed' log lines, want 20000", n);
}
END_TEST

/* ---- 13. redis ---- */

static const char *
find_in_path(const char *prog)
{
	static char buf[PATH_MAX];
	const char *path = getenv("PATH");
	char *dup, *dir, *save = NULL;
	const char *found = NULL;

	dup = strdup(path ? path : "/usr/local/bin:/usr/bin:/bin");
	for (dir = strtok_r(dup, ":", &save); dir != NULL;
	     dir = strtok_r(NULL, ":", &save)) {
		snprintf(buf, sizeof(buf), "%s/%s", dir, prog);
		if (access(buf, X_OK) == 0) {
			found = buf;
			break;
		}
	}
	free(dup);
	return found;
}

/* Start redis-server on a free port; its port.  Waits for +PONG. */
static int
redis_up(void)
{
	char dir[128], log[256], portstr[16], reply[64];
	const char *argv[16];
	uint64_t deadline;
	int port = h_free_port(), n = 0;
	pid_t pid;

	ck_assert_int_eq(h_tempdir(dir, sizeof(dir)), 0);
	snprintf(log, sizeof(log), "%s/redis.log", dir);
	snprintf(portstr, sizeof(portstr), "%d", port);
	argv[n++] = "redis-server";
	argv[n++] = "--port";
	argv[n++] = portstr;
	argv[n++] = "--save";
	argv[n++] = "";
	argv[n++] = "--appendonly";
	argv[n++] = "no";
	argv[n++] = "--bind";
	argv[n++] = "127.0.0.1";
	argv[n++] = "--dir";
	argv[n++] = dir;
	argv[n] = NULL;
	pid = h_spawn(argv, log);
	ck_assert_msg(pid > 0, "cannot start redis-server");
	deadline = h_now_ms() + 5000;
	for (;;) {
		int fd = h_connect("127.0.0.1", port, 500);

		if (fd >= 0) {
			int rc = h_write_all(fd, "PING\r\n", 6, 500);

			if (rc == 0)
				rc = h_read_line(fd, reply, sizeof(reply),
						 1000);
			close(fd);
			if (rc > 0 && strncmp(reply, "+PONG", 5) == 0)
				return port;
		}
		ck_assert_msg(h_now_ms() < deadline,
			      "redis-server on port %d not answering PING",
			      port);
		h_sleep_ms(50);
	}
}

START_TEST(test_redis)
{
	struct h_backend r = { 0 };
	struct spec s = {
		.health = "{ \"enabled\": true, \"interval_ms\": 200, "
			  "\"timeout_ms\": 200, \"rise\": 1, \"fall\": 2, "
			  "\"send\": \"PING\\r\\n\", \"expect\": \"+PONG\" }",
		.b = { &r }, .nb = 1 };
	char lbport[16], rport[16];
	struct h_run *out;
	struct h_lb lb;

	if (find_in_path("redis-server") == NULL)
		h_skip("redis-server not installed");
	snprintf(r.name, sizeof(r.name), "redis");
	r.port = redis_up();
	lb_up(&lb, &s);
	snprintf(lbport, sizeof(lbport), "%d", s.port);
	snprintf(rport, sizeof(rport), "%d", r.port);
	h_sleep_ms(600);	/* a few health probes */

	{
		const char *set[] = { "redis-cli", "-h", "127.0.0.1", "-p",
				      lbport, "SET", "ringlb-k", "v42", NULL };
		const char *get[] = { "redis-cli", "-h", "127.0.0.1", "-p",
				      lbport, "GET", "ringlb-k", NULL };
		const char *direct[] = { "redis-cli", "-h", "127.0.0.1", "-p",
					 rport, "GET", "ringlb-k", NULL };

		out = run_cmd(set, 10000);
		ck_assert_msg(WIFEXITED(out->status) &&
				      WEXITSTATUS(out->status) == 0 &&
				      strcmp(out->out, "OK\n") == 0,
			      "SET through ringlb: status 0x%x, '%s' '%s'",
			      out->status, out->out, out->err);
		out = run_cmd(get, 10000);
		ck_assert_msg(strcmp(out->out, "v42\n") == 0,
			      "GET through ringlb: '%s' '%s'", out->out,
			      out->err);
		out = run_cmd(direct, 10000);
		ck_assert_msg(strcmp(out->out, "v42\n") == 0,
			      "GET from redis itself: '%s'", out->out);
	}
	{
		const char *bench[] = { "redis-benchmark", "-h", "127.0.0.1",
					"-p", lbport, "-t", "set,get", "-n",
					"2000", "-c", "20", "-q", NULL };

		out = run_cmd(bench, 60000);
		ck_assert_msg(WIFEXITED(out->status) &&
				      WEXITSTATUS(out->status) == 0,
			      "redis-benchmark: status 0x%x, %s %s",
			      out->status, out->out, out->err);
		ck_assert_msg(strstr(out->out, "SET: ") != NULL &&
				      strstr(out->out, "GET: ") != NULL &&
				      strstr(out->out, "requests per second"),
			      "redis-benchmark output: %s %s", out->out,
			      out->err);
		ck_assert_msg(strcasestr(out->out, "error") == NULL &&
				      strcasestr(out->err, "error") == NULL,
			      "redis-benchmark reported errors: %s %s",
			      out->out, out->err);
	}
	ck_assert_msg(h_lb_log_count(&lb, "health ", "state=down") == 0,
		      "redis marked down though it answers +PONG");
	ck_assert(h_lb_running(&lb));
}
END_TEST

START_TEST(test_redis_bad_expect)
{
	struct h_backend r = { 0 };
	struct spec s = {
		.health = "{ \"enabled\": true, \"interval_ms\": 200, "
			  "\"timeout_ms\": 200, \"rise\": 1, \"fall\": 2, "
			  "\"send\": \"PING\\r\\n\", \"expect\": \"+NOPE\" }",
		.b = { &r }, .nb = 1 };
	const int bound = 200 * 2 + 200 + 2000;
	struct h_lb lb;
	char *line;
	int fd;

	if (find_in_path("redis-server") == NULL)
		h_skip("redis-server not installed");
	snprintf(r.name, sizeof(r.name), "redis");
	r.port = redis_up();
	lb_up(&lb, &s);
	ck_assert_msg(h_lb_log_wait(&lb, 1, bound, "health ",
				    "backend=redis ", "state=down"),
		      "redis with expect +NOPE not marked down within %d ms",
		      bound);
	line = h_lb_log_line(&lb, "backend=redis ", "state=down");
	ck_assert_msg(strstr(line, "reason=unexpected-reply") != NULL,
		      "down line: '%s'", line);
	free(line);
	fd = connect_lb(&s);
	ck_assert_int_eq(h_write_all(fd, "PING\r\n", 6, 1000), 0);
	assert_closed_without_data(fd, 2000, "only backend is down");
	close(fd);
}
END_TEST

/* ---- 14. IPv6 ---- */

START_TEST(test_ipv6)
{
	struct h_backend a;
	struct spec s = { .listen_host = "[::1]", .b = { &a }, .nb = 1 };
	char name[NAME_MAX_LEN];
	struct h_lb lb;
	int probe, rc = -1, fd;

	probe = socket(AF_INET6, SOCK_STREAM, 0);
	if (probe >= 0) {
		struct sockaddr_in6 sin6 = {
			.sin6_family = AF_INET6,
			.sin6_addr = IN6ADDR_LOOPBACK_INIT,
		};

		rc = bind(probe, (struct sockaddr *)&sin6, sizeof(sin6));
		close(probe);
	}
	if (probe < 0 || rc < 0)
		h_skip("no ::1 on this machine");
	h_backend_up(&a, H_NAME, "v4-backend");
	lb_up(&lb, &s);
	rc = h_get_name("::1", s.port, name, sizeof(name), &fd);
	ck_assert_msg(rc == 0, "connect to [::1]:%d: %s", s.port, errstr(rc));
	ck_assert_str_eq(name, "v4-backend");
	ck_assert_int_eq(echo_once(fd, "over v6\n"), 0);
	close(fd);
}
END_TEST

static Suite *
integration_suite(void)
{
	Suite *s = suite_create("integration");
	TCase *tc;

	tc = h_tcase(s, "config", 60, h_teardown);
	tcase_add_test(tc, test_config_check);
	tcase_add_test(tc, test_config_error_lines);
	tcase_add_test(tc, test_config_bad_start);
	tcase_add_test(tc, test_verbose_flag);

	tc = h_tcase(s, "balance", 60, h_teardown);
	tcase_add_test(tc, test_rr_equal);
	tcase_add_test(tc, test_rr_weighted);
	tcase_add_test(tc, test_lc_hold);
	tcase_add_test(tc, test_lc_weighted);

	tc = h_tcase(s, "data", 150, h_teardown);
	tcase_add_loop_test(tc, test_bulk_echo_64m, 0, ENGINE_MODES);
	tcase_add_loop_test(tc, test_bulk_upload_64m, 0, ENGINE_MODES);
	tcase_add_loop_test(tc, test_bulk_download_64m, 0, ENGINE_MODES);
	tcase_add_loop_test(tc, test_concurrent_200, 0, ENGINE_MODES);
	tcase_add_loop_test(tc, test_backpressure, 0, ENGINE_MODES);
	tcase_add_loop_test(tc, test_half_close_echo, 0, ENGINE_MODES);
	tcase_add_loop_test(tc, test_half_close_sink, 0, ENGINE_MODES);
	tcase_add_test(tc, test_log_line);

	tc = h_tcase(s, "failure", 60, h_teardown);
	tcase_add_test(tc, test_health_down_up);
	tcase_add_test(tc, test_retry_refused);
	tcase_add_test(tc, test_retry_timeout);
	tcase_add_test(tc, test_connect_timeout_only);
	tcase_add_test(tc, test_client_abort_during_connect);
	tcase_add_test(tc, test_all_down_no_health);
	tcase_add_test(tc, test_all_down_health);
	tcase_add_test(tc, test_resets);
	tcase_add_test(tc, test_health_across_reloads);

	tc = h_tcase(s, "lifecycle", 60, h_teardown);
	tcase_add_test(tc, test_idle_timeout);
	tcase_add_test(tc, test_sigterm_drain);
	tcase_add_test(tc, test_sigterm_grace);
	tcase_add_test(tc, test_sigint_idle);
	tcase_add_test(tc, test_second_sigterm);
	tcase_add_test(tc, test_port_in_use);
	tcase_add_test(tc, test_second_instance);
	tcase_add_test(tc, test_restart_after_kill);

	tc = h_tcase(s, "stress", 240, h_teardown);
	tcase_add_test(tc, test_fd_leak_20k);

	tc = h_tcase(s, "redis", 120, h_teardown);
	tcase_add_test(tc, test_redis);
	tcase_add_test(tc, test_redis_bad_expect);

	tc = h_tcase(s, "ipv6", 60, h_teardown);
	tcase_add_test(tc, test_ipv6);
	return s;
}

int
main(void)
{
	return h_run_suite("check_integration", integration_suite());
}

/*
 * check_admin.c: black-box tests of ringlb's operations features: backend
 * states (drain, maintenance) against live traffic and health checks, the
 * admin HTTP API on a Unix socket (and TCP), ringlbctl, /metrics, and
 * reload (POST /reload, ringlbctl reload, SIGHUP).
 *
 * Like check_integration.c, each test writes a config, starts $RINGLB_BIN
 * (default build/ringlb) with backends forked from the test on 127.0.0.1,
 * and checks what clients, the API and ringlbctl ($RINGLBCTL_BIN, default
 * ringlbctl next to $RINGLB_BIN) see.  The admin socket lives in the test's
 * own temp dir.  Every wait has a deadline; bounds are generous because the
 * machine is a loaded 2-core one.  Run one case with CK_RUN_CASE=<name>;
 * RINGLB_KEEP=1 keeps every temp dir (config, log, socket).
 */
#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define KIB		1024
#define MIB		(1024 * 1024)

/* Health checks fast enough that a test sees changes in well under 1 s. */
#define FAST_HEALTH \
	"{ \"interval_ms\": 100, \"timeout_ms\": 100, \"rise\": 1, " \
	"\"fall\": 1 }"

/* ---- configs ---- */

/*
 * Listener name on a free port: round-robin, health checks off, backends
 * b[0..nb) of weight 1.
 */
static json_t *
listener(json_t *c, const char *name, struct h_backend *const *b, size_t nb)
{
	json_t *l = hc_listener(c, name, 0);

	hc_set(l, "algorithm", json_string("round-robin"));
	hc_set(l, "health_check", hc_json("{ \"enabled\": false }"));
	for (size_t i = 0; i < nb; i++)
		hc_backend(l, b[i], 1);
	return l;
}

/* The usual config: listener "web" with backends b[0..nb). */
static json_t *
web(struct h_backend *const *b, size_t nb)
{
	json_t *c = hc_new();

	listener(c, "web", b, nb);
	return c;
}

/* Port of listener i of c. */
static int
lport(const json_t *c, size_t i)
{
	return hc_port(json_array_get(json_object_get(c, "listeners"), i));
}

/* Set what listener li's backend bi of c stands for: b, same weight. */
static void
backend_is(json_t *c, size_t li, size_t bi, const struct h_backend *b)
{
	char path[64], addr[64];

	snprintf(path, sizeof(path), "listeners.%zu.backends.%zu.name", li, bi);
	hc_set(c, path, json_string(b->name));
	snprintf(path, sizeof(path), "listeners.%zu.backends.%zu.address", li,
		 bi);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", b->port);
	hc_set(c, path, json_string(addr));
}

/* Set the file weight of listener li's backend bi. */
static void
file_weight(json_t *c, size_t li, size_t bi, unsigned w)
{
	char path[64];

	snprintf(path, sizeof(path), "listeners.%zu.backends.%zu.weight", li,
		 bi);
	hc_set(c, path, json_integer(w));
}

/* The admin socket of the ringlb started last by lb_up(). */
static char sock[160];

static void
cfg_write(struct h_lb *lb, const json_t *c)
{
	ck_assert_int_eq(h_lb_write_cfg(lb, c), 0);
}

/* 0 once GET /status on path answers 200 within timeout_ms, or -errno. */
static int
admin_wait(const char *path, int timeout_ms)
{
	uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;
	struct h_http r;
	int rc;

	for (;;) {
		rc = h_http(path, NULL, 0, "GET", "/status", NULL, 2000, &r);
		if (rc == 0 && r.status != 200)
			rc = -EPROTO;
		h_http_free(&r);
		if (rc == 0 || h_now_ms() >= deadline)
			return rc;
		h_sleep_ms(20);
	}
}

/*
 * Make lb's dir, write c there and start ringlb; wait until it listens on
 * the first listener's port and its admin socket answers.
 */
static void
lb_up(struct h_lb *lb, const json_t *c)
{
	char *path;
	int rc;

	h_label(tcase_name());
	ck_assert_int_eq(h_lb_mkdir(lb), 0);
	cfg_write(lb, c);
	rc = h_lb_launch(lb, lport(c, 0), NULL);
	ck_assert_msg(rc == 0, "%s did not start listening on port %d: %s",
		      h_lb_bin(), lport(c, 0),
		      rc == -ECHILD ? "it exited" : strerror(-rc));
	path = h_subst(json_string_value(hc_get(c, "admin.socket")), "@DIR@",
		       lb->dir);
	snprintf(sock, sizeof(sock), "%s", path);
	free(path);
	rc = admin_wait(sock, 5000);
	ck_assert_msg(rc == 0, "admin socket %s does not answer GET /status: "
		      "%s", sock, strerror(-rc));
}

/* ---- the admin API ---- */

static char last_body[8192];	/* body of the last api() reply */

/*
 * One request to the admin socket at path (NULL: `sock`).  The reply must
 * come within 5 s.  Returns the status; *out (if not NULL) gets the body
 * parsed as JSON, or NULL when it is not JSON.
 */
static int
api_at(const char *path_sock, const char *method, const char *path,
       const char *body, json_t **out, struct h_http *keep)
{
	struct h_http r;
	json_error_t e;
	int rc, status;

	rc = h_http(path_sock != NULL ? path_sock : sock, NULL, 0, method,
		    path, body, 5000, &r);
	ck_assert_msg(rc == 0, "%s %s: no HTTP reply from the admin socket: "
		      "%s", method, path, strerror(-rc));
	snprintf(last_body, sizeof(last_body), "%s", r.body);
	if (out != NULL)
		*out = json_loadb(r.body, r.body_len, 0, &e);
	status = r.status;
	if (keep != NULL)
		*keep = r;
	else
		h_http_free(&r);
	return status;
}

static int
api(const char *method, const char *path, const char *body, json_t **out)
{
	return api_at(NULL, method, path, body, out, NULL);
}

/* The request must answer 200 with a JSON object; json_decref() it. */
static json_t *
api_ok(const char *method, const char *path, const char *body)
{
	json_t *j = NULL;
	int status = api(method, path, body, &j);

	ck_assert_msg(status == 200, "%s %s: want 200, got %d: %s", method,
		      path, status, last_body);
	ck_assert_msg(json_is_object(j), "%s %s: reply is not a JSON object: "
		      "%s", method, path, last_body);
	return j;
}

/* Compact JSON text of j for failure messages (static buffer). */
static const char *
dump(const json_t *j)
{
	static char buf[4096];
	char *s = json_dumps(j, JSON_COMPACT);

	snprintf(buf, sizeof(buf), "%s", s != NULL ? s : "(null)");
	free(s);
	return buf;
}

static const char *
jstr(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	ck_assert_msg(json_is_string(v), "\"%s\" is not a string in %s", key,
		      dump(o));
	return json_string_value(v);
}

static long long
jint(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	ck_assert_msg(json_is_integer(v), "\"%s\" is not an integer in %s",
		      key, dump(o));
	return (long long)json_integer_value(v);
}

static json_t *
jarr(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	ck_assert_msg(json_is_array(v), "\"%s\" is not an array in %s", key,
		      dump(o));
	return v;
}

/* Element of array arr whose "name" is name, or NULL. */
static json_t *
by_name(const json_t *arr, const char *name)
{
	size_t i;
	json_t *v;

	json_array_foreach(arr, i, v)
		if (json_is_object(v) &&
		    json_is_string(json_object_get(v, "name")) &&
		    strcmp(json_string_value(json_object_get(v, "name")),
			   name) == 0)
			return v;
	return NULL;
}

static json_t *
backend_get(const char *l, const char *b)
{
	char path[256];

	snprintf(path, sizeof(path), "/listeners/%s/backends/%s", l, b);
	return api_ok("GET", path, NULL);
}

/* POST/PUT /listeners/l/backends/b/verb; must answer 200. */
static json_t *
backend_do(const char *method, const char *l, const char *b,
	   const char *verb, const char *body)
{
	char path[256];

	snprintf(path, sizeof(path), "/listeners/%s/backends/%s/%s", l, b,
		 verb);
	return api_ok(method, path, body);
}

static void
backend_set(const char *b, const char *verb, const char *want_state)
{
	json_t *j = backend_do("POST", "web", b, verb, NULL);

	ck_assert_msg(strcmp(jstr(j, "state"), want_state) == 0,
		      "POST %s on %s: want state %s in the reply, got %s", verb,
		      b, want_state, dump(j));
	json_decref(j);
}

static void
weight_set(const char *b, unsigned w)
{
	char body[64];
	json_t *j;

	snprintf(body, sizeof(body), "{\"weight\": %u}", w);
	j = backend_do("PUT", "web", b, "weight", body);
	ck_assert_msg(jint(j, "weight") == w, "PUT weight %u on %s: reply %s",
		      w, b, dump(j));
	json_decref(j);
}

/* String field of backend b of "web" (static copy). */
static const char *
bstr(const char *b, const char *key)
{
	static char buf[128];
	json_t *j = backend_get("web", b);

	snprintf(buf, sizeof(buf), "%s", jstr(j, key));
	json_decref(j);
	return buf;
}

static long long
bint(const char *b, const char *key)
{
	json_t *j = backend_get("web", b);
	long long v = jint(j, key);

	json_decref(j);
	return v;
}

/* Wait until string field key of backend b of "web" is want. */
static bool
bwait_str(const char *b, const char *key, const char *want, int timeout_ms)
{
	uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		if (strcmp(bstr(b, key), want) == 0)
			return true;
		if (h_now_ms() >= deadline)
			return false;
		h_sleep_ms(25);
	}
}

static bool
bwait_int(const char *b, const char *key, long long want, int timeout_ms)
{
	uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		if (bint(b, key) == want)
			return true;
		if (h_now_ms() >= deadline)
			return false;
		h_sleep_ms(25);
	}
}

static void
assert_state(const char *b, const char *state)
{
	const char *got = bstr(b, "state");

	ck_assert_msg(strcmp(got, state) == 0, "%s: want state %s, got %s",
		      b, state, got);
}

static long long
status_int(const char *key)
{
	json_t *j = api_ok("GET", "/status", NULL);
	long long v = jint(j, key);

	json_decref(j);
	return v;
}

/* Listener l from GET /status, or NULL; json_decref(*root) after. */
static json_t *
status_listener(const char *l, json_t **root)
{
	*root = api_ok("GET", "/status", NULL);
	return by_name(jarr(*root, "listeners"), l);
}

static long long
listener_int(const char *l, const char *key)
{
	json_t *root, *lj = status_listener(l, &root);
	long long v;

	ck_assert_msg(lj != NULL, "listener %s missing from %s", l,
		      dump(root));
	v = jint(lj, key);
	json_decref(root);
	return v;
}

static bool
lwait_int(const char *l, const char *key, long long want, int timeout_ms)
{
	uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		if (listener_int(l, key) == want)
			return true;
		if (h_now_ms() >= deadline)
			return false;
		h_sleep_ms(25);
	}
}

/* Wait until GET /status says generation >= want. */
static bool
wait_generation(long long want, int timeout_ms)
{
	uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		if (status_int("generation") >= want)
			return true;
		if (h_now_ms() >= deadline)
			return false;
		h_sleep_ms(20);
	}
}

/* ---- ringlbctl ---- */

static const char *
ctl_bin(void)
{
	return getenv("RINGLBCTL_BIN");
}

/*
 * Run ringlbctl [-s sock_path] args... (NULL-terminated) with a 10 s
 * deadline.  The result is static: the next call overwrites it.
 */
static struct h_run *
ctl_at(const char *sock_path, ...)
{
	static struct h_run r;
	const char *argv[16];
	const char *a;
	va_list ap;
	int n = 0, rc;

	argv[n++] = ctl_bin();
	if (sock_path != NULL) {
		argv[n++] = "-s";
		argv[n++] = sock_path;
	}
	va_start(ap, sock_path);
	while ((a = va_arg(ap, const char *)) != NULL && n < 15)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	rc = h_run(argv, 10000, &r);
	ck_assert_msg(rc == 0, "cannot run %s: %s", argv[0], strerror(-rc));
	ck_assert_msg(!r.timed_out, "ringlbctl %s did not finish in 10 s",
		      n > 3 ? argv[3] : "");
	return &r;
}

#define ctl(...) ctl_at(sock, __VA_ARGS__, H_END)
#define ctl_s(path, ...) ctl_at((path), __VA_ARGS__, H_END)

/* Exit status, or 128 + signal. */
static int
xstatus(const struct h_run *r)
{
	if (WIFEXITED(r->status))
		return WEXITSTATUS(r->status);
	return 128 + (WIFSIGNALED(r->status) ? WTERMSIG(r->status) : 0);
}

/* Non-empty lines in s. */
static int
nlines(const char *s)
{
	int n = 0;

	while (*s != '\0') {
		const char *e = strchr(s, '\n');
		size_t len = e != NULL ? (size_t)(e - s) : strlen(s);

		if (len > 0)
			n++;
		s += len + (e != NULL);
	}
	return n;
}

static void
assert_ctl_ok(const struct h_run *r, const char *what)
{
	ck_assert_msg(xstatus(r) == 0, "ringlbctl %s: want exit 0, got %d; "
		      "stderr: %s stdout: %s", what, xstatus(r), r->err,
		      r->out);
}

/* Exit status `code` and exactly one line on stderr. */
static void
assert_ctl_err(const struct h_run *r, int code, const char *what)
{
	ck_assert_msg(xstatus(r) == code && nlines(r->err) == 1,
		      "ringlbctl %s: want exit %d and one line on stderr, got "
		      "exit %d, stderr '%s', stdout '%s'", what, code,
		      xstatus(r), r->err, r->out);
}

/* Does a line of text containing `word` hold the whole number n? */
static bool
line_has_number(const char *text, const char *word, long n)
{
	const char *line = text;

	while (line != NULL && *line != '\0') {
		const char *end = strchr(line, '\n');
		size_t len = end != NULL ? (size_t)(end - line) : strlen(line);
		char buf[1024];

		snprintf(buf, sizeof(buf), "%.*s", (int)len, line);
		if (strcasestr(buf, word) != NULL) {
			for (const char *p = buf; *p != '\0'; p++) {
				char *q;
				long v;

				if (*p < '0' || *p > '9' ||
				    (p > buf && (p[-1] == '.' ||
						 (p[-1] >= '0' && p[-1] <= '9'))))
					continue;
				v = strtol(p, &q, 10);
				if (v == n && *q != '.')
					return true;
			}
		}
		line = end != NULL ? end + 1 : NULL;
	}
	return false;
}

/* ---- client connections ---- */

static const char *
errstr(int rc)
{
	if (rc == -EPIPE)
		return "closed (EOF)";
	return strerror(-rc);
}

/*
 * n short connections to port; counts[i] gets how many named b[i]->name.
 * Every connection must be served by one of them.
 */
static void
spread(int port, int n, struct h_backend *const *b, size_t nb, int *counts)
{
	char name[64];

	for (size_t i = 0; i < nb; i++)
		counts[i] = 0;
	for (int k = 0; k < n; k++) {
		int rc = h_get_name("127.0.0.1", port, name, sizeof(name), NULL);
		size_t i;

		ck_assert_msg(rc == 0, "connection %d of %d to port %d: %s", k,
			      n, port, errstr(rc));
		for (i = 0; i < nb; i++)
			if (strcmp(name, b[i]->name) == 0)
				break;
		ck_assert_msg(i < nb, "connection %d: unexpected backend '%s'",
			      k, name);
		counts[i]++;
	}
}

/* Send a line and expect it echoed.  0 or -errno (-EBADMSG: differs). */
static int
echo_once(int fd, const char *msg)
{
	char buf[256];
	int rc;

	rc = h_write_all(fd, msg, strlen(msg), 3000);
	if (rc < 0)
		return rc;
	rc = h_read_line(fd, buf, sizeof(buf), 3000);
	if (rc < 0)
		return rc;
	if (strlen(buf) != strlen(msg) - 1 ||
	    strncmp(buf, msg, strlen(msg) - 1) != 0)
		return -EBADMSG;
	return 0;
}

/* len bytes each way through an echoing connection, checked. */
static void
xfer_echo(int fd, uint64_t seed, uint64_t len, const char *what)
{
	struct h_xfer x = {
		.tx_seed = seed, .tx_len = len, .rx_seed = seed, .rx_len = len,
		.timeout_ms = 20000,
	};

	ck_assert_msg(h_xfer(fd, &x) == 0, "%s: %s", what, x.err);
}

static void
assert_closed_by_peer(int fd, int timeout_ms, const char *what)
{
	long data = 0;
	int rc = h_wait_close(fd, timeout_ms, &data);

	ck_assert_msg(rc == 0 || rc == -ECONNRESET,
		      "%s: connection not closed within %d ms (%s)", what,
		      timeout_ms, strerror(-rc));
}

static void
assert_still_open(int fd, const char *what)
{
	long data = 0;
	int rc = h_wait_close(fd, 200, &data);

	ck_assert_msg(rc == -ETIMEDOUT, "%s: connection ended (%s)", what,
		      rc == 0 ? "EOF" : strerror(-rc));
}

static int
cmp_ulong(const void *a, const void *b)
{
	unsigned long x = *(const unsigned long *)a;
	unsigned long y = *(const unsigned long *)b;

	return x < y ? -1 : x > y;
}

/*
 * The inodes of the sockets in LISTEN state on IPv4 port `port`, sorted,
 * as one string ("123 456"): the same string before and after a reload
 * means the listener kept its sockets.
 */
static void
listen_inodes(int port, char *out, size_t cap)
{
	unsigned long ino[64];
	char line[512];
	size_t len = 0;
	int n = 0;
	FILE *f = fopen("/proc/net/tcp", "r");

	ck_assert_msg(f != NULL, "/proc/net/tcp: %s", strerror(errno));
	while (fgets(line, sizeof(line), f) != NULL && n < 64) {
		unsigned lport, st;
		unsigned long inode;

		if (sscanf(line, " %*u: %*x:%x %*x:%*x %x %*x:%*x %*x:%*x %*x "
			   "%*u %*u %lu", &lport, &st, &inode) == 3 &&
		    (int)lport == port && st == 0x0A)
			ino[n++] = inode;
	}
	fclose(f);
	qsort(ino, (size_t)n, sizeof(ino[0]), cmp_ulong);
	out[0] = '\0';
	for (int i = 0; i < n && len < cap; i++)
		len += (size_t)snprintf(out + len, cap - len, "%s%lu",
					i ? " " : "", ino[i]);
	ck_assert_msg(n > 0, "nothing listening on port %d", port);
}

/* ---- 1. API basics ---- */

static void
check_backend_fields(const json_t *b, const char *name, int port,
		     bool health_enabled)
{
	char addr[64];
	const json_t *chk;

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	ck_assert_msg(strcmp(jstr(b, "name"), name) == 0, "name: %s",
		      dump(b));
	ck_assert_msg(strcmp(jstr(b, "address"), addr) == 0,
		      "address: want %s: %s", addr, dump(b));
	ck_assert_msg(strcmp(jstr(b, "state"), "up") == 0 &&
			      strcmp(jstr(b, "health"), "up") == 0 &&
			      strcmp(jstr(b, "admin"), "ready") == 0,
		      "want state up, health up, admin ready: %s", dump(b));
	ck_assert_msg(jint(b, "weight") == 1 && jint(b, "config_weight") == 1,
		      "weights: %s", dump(b));
	ck_assert_msg(jint(b, "active") == 0 && jint(b, "total") == 1 &&
			      jint(b, "bytes_in") == 0 &&
			      jint(b, "bytes_out") == 5 &&
			      jint(b, "connect_failures") == 0,
		      "after one connection that got 5 bytes: %s", dump(b));
	ck_assert_msg(jint(b, "in_state_ms") >= 0 &&
			      jint(b, "in_state_ms") < 60000,
		      "in_state_ms: %s", dump(b));
	chk = json_object_get(b, "check");
	ck_assert_msg(json_is_object(chk) &&
			      json_is_boolean(json_object_get(chk, "enabled")) &&
			      json_boolean_value(json_object_get(
				      chk, "enabled")) == health_enabled,
		      "check.enabled must be %s: %s",
		      health_enabled ? "true" : "false", dump(b));
}

static void
assert_error_reply(const char *method, const char *path, const char *body,
		   int want, const char *allow)
{
	struct h_http r;
	json_t *j = NULL;
	char hdr[256];
	int status = api_at(NULL, method, path, body, &j, &r);

	ck_assert_msg(status == want, "%s %s%s%s: want %d, got %d: %s", method,
		      path, body ? " " : "", body ? body : "", want, status,
		      last_body);
	ck_assert_msg(json_is_object(j) &&
			      json_is_string(json_object_get(j, "error")) &&
			      json_string_length(json_object_get(j, "error")) >
				      0,
		      "%s %s: want {\"error\": \"...\"}, got: %s", method, path,
		      last_body);
	if (allow != NULL) {
		ck_assert_msg(h_http_header(&r, "Allow", hdr, sizeof(hdr)),
			      "%s %s: 405 without an Allow header:\n%s", method,
			      path, r.head);
		ck_assert_msg(strstr(hdr, allow) != NULL,
			      "%s %s: Allow: %s does not list %s", method, path,
			      hdr, allow);
	}
	h_http_free(&r);
	json_decref(j);
}

START_TEST(test_api_basics)
{
	struct h_backend a, b, *bs[] = { &a, &b };
	json_t *c;
	struct h_lb lb;
	json_t *st, *l, *arr, *v;
	char name[64], listen[64];
	long long wsum = 0;
	int counts[2];
	size_t i;
	static const char *const bad_weights[] = {
		"{\"weight\": 0}", "{\"weight\": 257}", "{\"weight\": \"x\"}",
		"{\"weight\": 1.5}", "{\"weight\": -3}", "{}", "[3]", "{",
		"weight=3",
	};

	h_backend_up(&a, H_NAME, "app1");
	h_backend_up(&b, H_NAME, "app2");
	c = web(bs, 2);
	lb_up(&lb, c);
	spread(lport(c, 0), 2, bs, 2, counts);
	ck_assert_msg(counts[0] == 1 && counts[1] == 1,
		      "round-robin over 2: %d/%d", counts[0], counts[1]);
	ck_assert_msg(lwait_int("web", "bytes_out", 10, 3000) &&
			      lwait_int("web", "active", 0, 3000),
		      "listener counters after 2 connections of 5 bytes: "
		      "bytes_out %lld, active %lld",
		      listener_int("web", "bytes_out"),
		      listener_int("web", "active"));

	/* GET /status */
	st = api_ok("GET", "/status", NULL);
	ck_assert_msg(strlen(jstr(st, "version")) > 0, "version: %s",
		      dump(st));
	ck_assert_msg(strcmp(jstr(st, "config"), lb.cfg_path) == 0,
		      "config: want %s: %s", lb.cfg_path, dump(st));
	ck_assert_msg(jint(st, "generation") == 1 &&
			      jint(st, "uptime_ms") >= 0 &&
			      jint(st, "uptime_ms") < 60000 &&
			      jint(st, "reloads") == 0 &&
			      jint(st, "reload_failures") == 0,
		      "generation/uptime/reloads: %s", dump(st));
	arr = jarr(st, "workers");
	ck_assert_msg(json_array_size(arr) == 2, "want 2 workers: %s",
		      dump(arr));
	json_array_foreach(arr, i, v) {
		ck_assert_msg(jint(v, "id") == (long long)i, "worker ids: %s",
			      dump(arr));
		ck_assert_msg(jint(v, "accepts") >= 0, "%s", dump(arr));
		wsum += jint(v, "accepts");
	}
	arr = jarr(st, "listeners");
	ck_assert_msg(json_array_size(arr) == 1, "want 1 listener: %s",
		      dump(arr));
	l = json_array_get(arr, 0);
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", lport(c, 0));
	ck_assert_msg(strcmp(jstr(l, "name"), "web") == 0 &&
			      strcmp(jstr(l, "listen"), listen) == 0 &&
			      strcmp(jstr(l, "algorithm"), "round-robin") == 0,
		      "listener: %s", dump(l));
	ck_assert_msg(jint(l, "accepts") == 2 && jint(l, "active") == 0 &&
			      jint(l, "bytes_in") == 0 &&
			      jint(l, "bytes_out") == 10 &&
			      jint(l, "no_backend") == 0 &&
			      jint(l, "connect_failed") == 0,
		      "listener counters after 2 connections: %s", dump(l));
	ck_assert_msg(wsum == 2, "worker accepts sum to %lld, listener "
		      "accepted 2", wsum);
	arr = jarr(l, "backends");
	ck_assert_msg(json_array_size(arr) == 2, "want 2 backends: %s",
		      dump(arr));
	check_backend_fields(json_array_get(arr, 0), "app1", a.port, false);
	check_backend_fields(json_array_get(arr, 1), "app2", b.port, false);
	json_decref(st);

	/* One listener, one backend. */
	st = api_ok("GET", "/listeners/web", NULL);
	ck_assert_msg(strcmp(jstr(st, "name"), "web") == 0 &&
			      json_array_size(jarr(st, "backends")) == 2 &&
			      by_name(jarr(st, "backends"), "app2") != NULL,
		      "GET /listeners/web: %s", dump(st));
	json_decref(st);
	st = backend_get("web", "app2");
	check_backend_fields(st, "app2", b.port, false);
	json_decref(st);

	/* 404 */
	assert_error_reply("GET", "/nope", NULL, 404, NULL);
	assert_error_reply("GET", "/listeners/nope", NULL, 404, NULL);
	assert_error_reply("GET", "/listeners/web/backends/nope", NULL, 404,
			   NULL);
	assert_error_reply("GET", "/listeners/nope/backends/app1", NULL, 404,
			   NULL);
	assert_error_reply("POST", "/listeners/nope/backends/app1/drain", NULL,
			   404, NULL);
	assert_error_reply("POST", "/listeners/web/backends/nope/maint", NULL,
			   404, NULL);
	assert_error_reply("PUT", "/listeners/web/backends/nope/weight",
			   "{\"weight\": 2}", 404, NULL);
	assert_error_reply("POST", "/listeners/web/backends/app1/explode",
			   NULL, 404, NULL);
	/*
	 * Found by tests/fuzz/fuzz_admin: a path that is not UTF-8 once
	 * URL-decoded made the error reply fail, and the client got none.
	 */
	assert_error_reply("GET", "/listeners/%E1", NULL, 404, NULL);
	assert_error_reply("GET", "/st%E1t%FF", NULL, 404, NULL);
	assert_error_reply("POST", "/listeners/web/backends/%C3/drain", NULL,
			   404, NULL);

	/* 405 with Allow */
	assert_error_reply("GET", "/listeners/web/backends/app1/drain", NULL,
			   405, "POST");
	assert_error_reply("DELETE", "/status", NULL, 405, "GET");
	assert_error_reply("POST", "/metrics", NULL, 405, "GET");
	assert_error_reply("GET", "/reload", NULL, 405, "POST");
	assert_error_reply("POST", "/listeners/web/backends/app1/weight",
			   "{\"weight\": 2}", 405, "PUT");

	/* 400: bad bodies change nothing. */
	for (i = 0; i < sizeof(bad_weights) / sizeof(bad_weights[0]); i++)
		assert_error_reply("PUT", "/listeners/web/backends/app1/weight",
				   bad_weights[i], 400, NULL);
	ck_assert_msg(bint("app1", "weight") == 1,
		      "weight changed by rejected PUTs: %lld",
		      bint("app1", "weight"));
	assert_error_reply("POST", "/listeners/web/backends/app1/maint",
			   "nope{", 400, NULL);
	assert_state("app1", "up");

	/* Changes reply 200 with the backend after the change. */
	weight_set("app1", 256);
	ck_assert_int_eq(bint("app1", "config_weight"), 1);
	weight_set("app1", 1);
	st = backend_do("POST", "web", "app1", "drain", NULL);
	ck_assert_msg(strcmp(jstr(st, "name"), "app1") == 0 &&
			      strcmp(jstr(st, "state"), "draining") == 0 &&
			      strcmp(jstr(st, "admin"), "drain") == 0,
		      "POST drain reply: %s", dump(st));
	json_decref(st);
	st = backend_do("POST", "web", "app1", "maint", NULL);
	ck_assert_msg(strcmp(jstr(st, "state"), "maintenance") == 0 &&
			      strcmp(jstr(st, "admin"), "maint") == 0,
		      "POST maint reply: %s", dump(st));
	json_decref(st);
	st = backend_do("POST", "web", "app1", "ready", NULL);
	ck_assert_msg(strcmp(jstr(st, "state"), "up") == 0 &&
			      strcmp(jstr(st, "admin"), "ready") == 0,
		      "POST ready reply: %s", dump(st));
	json_decref(st);
	assert_state("app2", "up");
	ck_assert_int_eq(h_get_name("127.0.0.1", lport(c, 0), name, sizeof(name), NULL), 0);

	/* curl, as the spec shows it. */
	if (access("/usr/bin/curl", X_OK) == 0) {
		const char *argv[] = { "curl", "-sS", "--max-time", "5",
				       "--unix-socket", sock,
				       "http://localhost/listeners/web/"
				       "backends/app1",
				       NULL };
		struct h_run *r = calloc(1, sizeof(*r));
		json_error_t e;

		ck_assert_ptr_nonnull(r);
		ck_assert_int_eq(h_run(argv, 10000, r), 0);
		ck_assert_msg(xstatus(r) == 0, "curl --unix-socket: exit %d: "
			      "%s", xstatus(r), r->err);
		st = json_loads(r->out, 0, &e);
		ck_assert_msg(json_is_object(st) &&
				      strcmp(jstr(st, "name"), "app1") == 0,
			      "curl got: %s", r->out);
		json_decref(st);
		free(r);
	} else {
		h_skip_part("the curl example: no /usr/bin/curl");
	}
	ck_assert(h_lb_running(&lb));
	json_decref(c);
}
END_TEST

/* ---- 2. ringlbctl ---- */

/*
 * Run "ringlbctl -s path status" as user nobody; false when no tool can
 * switch users.
 */
static bool
ctl_status_as_nobody(const char *path, struct h_run *r)
{
	const char *argv[16];
	int n;

	/* setpriv first, runuser second. */
	for (int tool = 0; tool < 2; tool++) {
		n = 0;
		if (tool == 0) {
			if (access("/usr/bin/setpriv", X_OK) != 0)
				continue;
			argv[n++] = "/usr/bin/setpriv";
			argv[n++] = "--reuid=nobody";
			argv[n++] = "--regid=nogroup";
			argv[n++] = "--clear-groups";
		} else {
			if (access("/usr/sbin/runuser", X_OK) != 0 &&
			    access("/sbin/runuser", X_OK) != 0)
				continue;
			argv[n++] = "runuser";
			argv[n++] = "-u";
			argv[n++] = "nobody";
			argv[n++] = "--";
		}
		argv[n++] = ctl_bin();
		argv[n++] = "-s";
		argv[n++] = path;
		argv[n++] = "status";
		argv[n] = NULL;
		if (h_run(argv, 10000, r) != 0 || r->timed_out)
			continue;
		/* The tool itself failed (not ringlbctl): try the next. */
		if (strstr(r->err, "setpriv:") != NULL ||
		    strstr(r->err, "runuser:") != NULL || xstatus(r) == 127)
			continue;
		return true;
	}
	return false;
}

/* A Unix socket file at path, listening or (stale) not.  The fd. */
static int
sock_file(const char *path, bool do_listen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	size_t n = strlen(path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_msg(fd >= 0 && n < sizeof(sun.sun_path), "socket %s", path);
	memcpy(sun.sun_path, path, n + 1);
	ck_assert_msg(bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0,
		      "bind %s: %s", path, strerror(errno));
	if (do_listen)
		ck_assert_int_eq(listen(fd, 4), 0);
	return fd;
}

START_TEST(test_ctl_verbs)
{
	struct h_backend a, b, *bs[] = { &a, &b };
	json_t *c;
	struct h_lb lb;
	struct h_run *r;
	json_t *cj, *aj, *l1, *l2;
	json_error_t e;
	char path[256], *line;
	long long gen;
	size_t i;
	int fd;

	h_backend_up(&a, H_NAME, "app1");
	h_backend_up(&b, H_NAME, "app2");
	c = web(bs, 2);
	lb_up(&lb, c);

	/* status, then drain: the table shows names and states. */
	r = ctl("drain", "web", "app1");
	assert_ctl_ok(r, "drain web app1");
	assert_state("app1", "draining");
	r = ctl("status");
	assert_ctl_ok(r, "status");
	ck_assert_msg(strstr(r->out, "web") && strstr(r->out, "app2"),
		      "status table lacks listener or backend names:\n%s",
		      r->out);
	line = strstr(r->out, "app1");
	ck_assert_msg(line != NULL, "status table lacks app1:\n%s", r->out);
	*strchrnul(line, '\n') = '\0';
	ck_assert_msg(strstr(line, "draining") != NULL,
		      "app1's line does not say draining: '%s'", line);
	r = ctl("status");
	line = strstr(r->out, "app2");
	ck_assert_msg(line != NULL, "status table lacks app2:\n%s", r->out);
	*strchrnul(line, '\n') = '\0';
	ck_assert_msg(strstr(line, "up") != NULL,
		      "app2's line does not say up: '%s'", line);

	/* status --json: the same data as GET /status. */
	r = ctl("status", "--json");
	assert_ctl_ok(r, "status --json");
	cj = json_loads(r->out, 0, &e);
	ck_assert_msg(json_is_object(cj), "status --json is not a JSON object "
		      "(%s): %s", e.text, r->out);
	aj = api_ok("GET", "/status", NULL);
	ck_assert_msg(jint(cj, "generation") == jint(aj, "generation") &&
			      strcmp(jstr(cj, "config"), jstr(aj, "config")) ==
				      0,
		      "status --json %s vs GET /status %s", dump(cj),
		      last_body);
	l1 = by_name(jarr(cj, "listeners"), "web");
	l2 = by_name(jarr(aj, "listeners"), "web");
	ck_assert_msg(l1 != NULL && l2 != NULL, "no listener web");
	for (i = 0; i < 2; i++) {
		json_t *x = by_name(jarr(l1, "backends"), bs[i]->name);
		json_t *y = by_name(jarr(l2, "backends"), bs[i]->name);

		ck_assert_msg(x != NULL && y != NULL &&
				      strcmp(jstr(x, "state"),
					     jstr(y, "state")) == 0 &&
				      jint(x, "weight") == jint(y, "weight"),
			      "backend %s differs: ctl %s", bs[i]->name,
			      dump(x));
	}
	json_decref(cj);
	json_decref(aj);

	/* maint, ready, weight, reload. */
	assert_ctl_ok(ctl("maint", "web", "app1"), "maint web app1");
	assert_state("app1", "maintenance");
	assert_ctl_ok(ctl("ready", "web", "app1"), "ready web app1");
	assert_state("app1", "up");
	assert_ctl_ok(ctl("weight", "web", "app2", "7"), "weight web app2 7");
	ck_assert_int_eq(bint("app2", "weight"), 7);
	gen = status_int("generation");
	assert_ctl_ok(ctl("reload"), "reload");
	ck_assert_msg(status_int("reloads") == 1 &&
			      status_int("generation") == gen + 1,
		      "after ringlbctl reload: reloads %lld, generation %lld "
		      "(was %lld)", status_int("reloads"),
		      status_int("generation"), gen);
	ck_assert_msg(bint("app2", "weight") == 7,
		      "runtime weight lost by a reload of the same file");

	/* $RINGLB_SOCKET stands for -s. */
	setenv("RINGLB_SOCKET", sock, 1);
	r = ctl_at(NULL, "status", H_END);
	unsetenv("RINGLB_SOCKET");
	assert_ctl_ok(r, "status with $RINGLB_SOCKET");
	ck_assert_msg(strstr(r->out, "app1") != NULL, "%s", r->out);

	/* Errors: exit 1, one line on stderr. */
	assert_ctl_err(ctl_s("/nonexistent-ringlb/admin.sock", "status"), 1,
		       "status on a missing socket");
	assert_ctl_err(ctl_s("/nonexistent-ringlb/admin.sock", "drain", "web",
			     "app1"),
		       1, "drain on a missing socket");
	/* A socket file nobody listens on: ringlb not running. */
	snprintf(path, sizeof(path), "%s/stale.sock", lb.dir);
	close(sock_file(path, false));
	assert_ctl_err(ctl_s(path, "status"), 1,
		       "status on a stale socket file");
	assert_ctl_err(ctl_s(path, "reload"), 1,
		       "reload on a stale socket file");
	assert_ctl_err(ctl("drain", "nope", "app1"), 1,
		       "drain on an unknown listener");
	assert_ctl_err(ctl("maint", "web", "nope"), 1,
		       "maint on an unknown backend");
	assert_ctl_err(ctl("ready", "web", "nope"), 1,
		       "ready on an unknown backend");
	assert_ctl_err(ctl("weight", "nope", "app1", "3"), 1,
		       "weight on an unknown listener");
	r = ctl("weight", "web", "app1", "0");
	ck_assert_msg((xstatus(r) == 1 || xstatus(r) == 2) &&
			      nlines(r->err) == 1,
		      "weight 0: want exit 1 or 2 and one line, got %d: %s",
		      xstatus(r), r->err);
	ck_assert_int_eq(bint("app1", "weight"), 1);

	/* Permission denied. */
	if (geteuid() != 0) {
		int sfd;

		snprintf(path, sizeof(path), "%s/closed.sock", lb.dir);
		sfd = sock_file(path, true);
		ck_assert_int_eq(chmod(path, 0), 0);
		r = ctl_s(path, "status");
		close(sfd);
		assert_ctl_err(r, 1, "status on a mode 0000 socket");
		ck_assert_msg(strcasestr(r->err, "permission") != NULL,
			      "no 'permission denied': %s", r->err);
	} else {
		/* Root ignores socket file modes; nobody does not. */
		struct h_run *nr = calloc(1, sizeof(*nr));

		ck_assert_ptr_nonnull(nr);
		ck_assert_int_eq(chmod(lb.dir, 0711), 0);
		if (ctl_status_as_nobody(sock, nr)) {
			assert_ctl_err(nr, 1, "status as nobody on a 0600 "
				       "root socket");
			ck_assert_msg(strcasestr(nr->err, "permission") != NULL,
				      "as nobody: no 'permission denied': %s",
				      nr->err);
		} else {
			h_skip_part("the permission-denied message: cannot "
				    "run as nobody (no setpriv/runuser)");
		}
		free(nr);
	}

	/* Usage errors: exit 2. */
	{
		static const char *const usage[][7] = {
			{ NULL },
			{ "bogus", NULL },
			{ "drain", "web", NULL },
			{ "maint", NULL },
			{ "weight", "web", "app1", NULL },
			{ "status", "--bogus", NULL },
			{ "drain", "web", "app1", "--timeout", NULL },
			{ "ready", "web", "app1", "extra", NULL },
			/* Found by tests/fuzz/fuzz_ctl: UB in the ms cast. */
			{ "drain", "web", "app1", "--wait", "--timeout",
			  "1e300", NULL },
			{ "drain", "web", "app1", "--wait", "--timeout", "inf",
			  NULL },
			{ "drain", "web", "app1", "--wait", "--timeout", "nan",
			  NULL },
		};

		for (i = 0; i < sizeof(usage) / sizeof(usage[0]); i++) {
			const char *argv[10];
			int n = 0;

			argv[n++] = ctl_bin();
			argv[n++] = "-s";
			argv[n++] = sock;
			for (int k = 0; usage[i][k] != NULL; k++)
				argv[n++] = usage[i][k];
			argv[n] = NULL;
			r = calloc(1, sizeof(*r));
			ck_assert_ptr_nonnull(r);
			ck_assert_int_eq(h_run(argv, 10000, r), 0);
			ck_assert_msg(xstatus(r) == 2 && r->err[0] != '\0',
				      "usage error #%zu (%s ...): want exit 2 "
				      "and a message on stderr, got %d: %s",
				      i, usage[i][0] ? usage[i][0] : "no args",
				      xstatus(r), r->err);
			free(r);
		}
		r = ctl_at(NULL, "-s", H_END);
		ck_assert_msg(xstatus(r) == 2, "-s without a value: exit %d",
			      xstatus(r));
	}
	/* Nothing above disturbed traffic. */
	fd = -1;
	ck_assert_int_eq(h_get_name("127.0.0.1", lport(c, 0), path, sizeof(path), &fd), 0);
	ck_assert_int_eq(echo_once(fd, "still\n"), 0);
	close(fd);
	json_decref(c);
}
END_TEST

/* ---- 3. drain with connections open ---- */

START_TEST(test_drain_open)
{
	struct h_backend a, b, *bs[] = { &a, &b };
	json_t *c;
	struct h_lb lb;
	int fa[3], fb[3], na = 0, nb = 0, counts[2], fd;
	char name[64], what[64];

	h_backend_up(&a, H_NAME, "app1");
	h_backend_up(&b, H_NAME, "app2");
	c = web(bs, 2);
	lb_up(&lb, c);
	for (int i = 0; i < 6; i++) {
		int rc = h_get_name("127.0.0.1", lport(c, 0), name, sizeof(name), &fd);

		ck_assert_msg(rc == 0, "connection %d: %s", i, errstr(rc));
		if (strcmp(name, "app1") == 0 && na < 3)
			fa[na++] = fd;
		else if (strcmp(name, "app2") == 0 && nb < 3)
			fb[nb++] = fd;
		else
			ck_abort_msg("round-robin: connection %d went to %s "
				     "(%d app1, %d app2 so far)", i, name, na,
				     nb);
	}
	backend_set("app1", "drain", "draining");

	/* (a) open connections to app1 carry on, byte for byte. */
	for (int i = 0; i < na; i++) {
		snprintf(what, sizeof(what), "draining app1, connection %d",
			 i);
		xfer_echo(fa[i], 0xd7a1 + (uint64_t)i, MIB, what);
	}
	/* (b) new connections all go to app2. */
	spread(lport(c, 0), 20, bs, 2, counts);
	ck_assert_msg(counts[0] == 0 && counts[1] == 20,
		      "while app1 drains: %d new connections to app1, %d to "
		      "app2", counts[0], counts[1]);
	/* (c) state and counts. */
	ck_assert_msg(strcmp(bstr("app1", "admin"), "drain") == 0 &&
			      strcmp(bstr("app1", "health"), "up") == 0,
		      "app1: admin %s health %s", bstr("app1", "admin"),
		      bstr("app1", "health"));
	assert_state("app1", "draining");
	assert_state("app2", "up");
	ck_assert_msg(bwait_int("app1", "active", 3, 2000),
		      "app1 active %lld, 3 open", bint("app1", "active"));
	ck_assert_msg(bwait_int("app2", "active", 3, 3000),
		      "app2 active %lld, 3 open", bint("app2", "active"));
	ck_assert_msg(lwait_int("web", "active", 6, 2000),
		      "listener active %lld, 6 open",
		      listener_int("web", "active"));
	for (int i = 0; i < nb; i++)
		ck_assert_int_eq(echo_once(fb[i], "b side\n"), 0);

	/* ready: back in rotation. */
	backend_set("app1", "ready", "up");
	spread(lport(c, 0), 10, bs, 2, counts);
	ck_assert_msg(counts[0] >= 4 && counts[0] <= 6,
		      "after ready: app1 got %d of 10", counts[0]);
	for (int i = 0; i < na; i++) {
		ck_assert_int_eq(echo_once(fa[i], "end\n"), 0);
		close(fa[i]);
	}
	ck_assert_msg(bwait_int("app1", "active", 0, 3000),
		      "app1 active %lld after its connections closed",
		      bint("app1", "active"));
	for (int i = 0; i < nb; i++)
		close(fb[i]);
	json_decref(c);
}
END_TEST

/* ---- 4. drain --wait ---- */

/* A small file's text (at most 64 KiB), NUL-terminated; free() it. */
static char *
slurp(const char *path)
{
	char *buf = calloc(1, 65536);
	FILE *f = fopen(path, "r");

	ck_assert_ptr_nonnull(buf);
	if (f != NULL) {
		size_t n = fread(buf, 1, 65535, f);

		buf[n] = '\0';
		fclose(f);
	}
	return buf;
}

static bool
has_digit(const char *s)
{
	return strpbrk(s, "0123456789") != NULL;
}

START_TEST(test_drain_wait)
{
	struct h_backend a, b, *bs[] = { &a, &b };
	json_t *c;
	struct h_lb lb;
	struct h_run *r;
	char name[64], out[160], *text;
	const char *argv[9];
	int fa[2], na = 0, fd, st = 0, rc;
	uint64_t t0, t1, t2;
	pid_t pid;

	h_backend_up(&a, H_NAME, "app1");
	h_backend_up(&b, H_NAME, "app2");
	c = web(bs, 2);
	lb_up(&lb, c);
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(h_get_name("127.0.0.1", lport(c, 0), name, sizeof(name), &fd),
				 0);
		if (strcmp(name, "app1") == 0 && na < 2)
			fa[na++] = fd;
		else
			close(fd);
	}
	ck_assert_int_eq(na, 2);

	snprintf(out, sizeof(out), "%s/drain-wait.out", lb.dir);
	argv[0] = ctl_bin();
	argv[1] = "-s";
	argv[2] = sock;
	argv[3] = "drain";
	argv[4] = "web";
	argv[5] = "app1";
	argv[6] = "--wait";
	argv[7] = NULL;
	t0 = h_now_ms();
	pid = h_spawn(argv, out);
	ck_assert_int_gt(pid, 0);
	h_sleep_ms(1000);
	rc = h_wait_pid(pid, 0, &st);
	text = slurp(out);
	ck_assert_msg(rc == -ETIMEDOUT, "drain --wait returned (status 0x%x) "
		      "with 2 connections open: %s", st, text);
	free(text);
	assert_state("app1", "draining");
	ck_assert_int_eq(echo_once(fa[0], "during\n"), 0);

	t1 = h_now_ms();
	close(fa[0]);
	close(fa[1]);
	rc = h_wait_pid(pid, 5000, &st);
	t2 = h_now_ms();
	text = slurp(out);
	ck_assert_msg(rc == 0, "drain --wait still running %llu ms after the "
		      "last connection closed: %s",
		      (unsigned long long)(t2 - t1), text);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "drain --wait: status 0x%x: %s", st, text);
	ck_assert_msg(t2 - t0 >= 1000 && t2 - t1 < 3000,
		      "drain --wait took %llu ms, connections closed at %llu",
		      (unsigned long long)(t2 - t0),
		      (unsigned long long)(t1 - t0));
	ck_assert_msg(has_digit(text), "drain --wait printed no duration: "
		      "'%s'", text);
	free(text);
	assert_state("app1", "draining");
	ck_assert_int_eq(bint("app1", "active"), 0);

	/* With nothing open it returns at once. */
	backend_set("app1", "ready", "up");
	t0 = h_now_ms();
	r = ctl("drain", "web", "app1", "--wait");
	t1 = h_now_ms();
	assert_ctl_ok(r, "drain --wait, nothing open");
	ck_assert_msg(t1 - t0 < 1500, "drain --wait with no connection took "
		      "%llu ms", (unsigned long long)(t1 - t0));
	assert_state("app1", "draining");
	json_decref(c);
}
END_TEST

/* ---- 5. drain --wait --timeout, and maint {"close": true} ---- */

START_TEST(test_drain_timeout)
{
	struct h_backend a, b, *bs[] = { &a, &b };
	json_t *c;
	struct h_lb lb;
	struct h_run *r;
	char name[64];
	int fa[2], fb[2], na = 0, nb = 0, fd;
	uint64_t t0, el;
	json_t *j;

	h_backend_up(&a, H_HOLD, "app1");
	h_backend_up(&b, H_HOLD, "app2");
	c = web(bs, 2);
	lb_up(&lb, c);
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(h_get_name("127.0.0.1", lport(c, 0), name, sizeof(name), &fd),
				 0);
		if (strcmp(name, "app1") == 0 && na < 2)
			fa[na++] = fd;
		else if (strcmp(name, "app2") == 0 && nb < 2)
			fb[nb++] = fd;
		else
			ck_abort_msg("round-robin broken: %s", name);
	}
	ck_assert_msg(bwait_int("app1", "active", 2, 2000), "app1 active %lld",
		      bint("app1", "active"));

	t0 = h_now_ms();
	r = ctl("drain", "web", "app1", "--wait", "--timeout", "1");
	el = h_now_ms() - t0;
	assert_ctl_ok(r, "drain --wait --timeout 1");
	ck_assert_msg(el >= 900 && el <= 4000, "drain --timeout 1 took %llu ms",
		      (unsigned long long)el);
	ck_assert_msg(line_has_number(r->out, "clos", 2),
		      "drain --timeout did not print that it closed 2 "
		      "connections: '%s'", r->out);
	for (int i = 0; i < 2; i++) {
		assert_closed_by_peer(fa[i], 2000, "held connection to app1 "
				      "after the drain timeout");
		close(fa[i]);
		assert_still_open(fb[i], "connection to app2 after app1's "
				  "drain timeout");
	}
	assert_state("app1", "maintenance");
	ck_assert_msg(strcmp(bstr("app1", "admin"), "maint") == 0, "admin %s",
		      bstr("app1", "admin"));
	ck_assert_msg(bwait_int("app1", "active", 0, 2000),
		      "app1 active %lld after its connections were closed",
		      bint("app1", "active"));
	ck_assert_int_eq(bint("app2", "active"), 2);

	/* maint {"close": true}: closes them now and says how many. */
	backend_set("app1", "ready", "up");
	na = 0;
	for (int i = 0; i < 4 && na < 2; i++) {
		ck_assert_int_eq(h_get_name("127.0.0.1", lport(c, 0), name, sizeof(name), &fd),
				 0);
		if (strcmp(name, "app1") == 0)
			fa[na++] = fd;
		else
			close(fd);
	}
	ck_assert_int_eq(na, 2);
	ck_assert(bwait_int("app1", "active", 2, 2000));
	j = backend_do("POST", "web", "app1", "maint", "{\"close\": true}");
	ck_assert_msg(jint(j, "closing") == 2 &&
			      strcmp(jstr(j, "state"), "maintenance") == 0,
		      "maint {close: true} with 2 open: %s", dump(j));
	json_decref(j);
	for (int i = 0; i < 2; i++) {
		assert_closed_by_peer(fa[i], 2000, "app1 connection after "
				      "maint {close: true}");
		close(fa[i]);
		assert_still_open(fb[i], "app2 connection after app1's maint "
				  "close");
		close(fb[i]);
	}
	ck_assert_msg(h_lb_log_wait(&lb, 4, 3000, "backend=app1",
				    "end=admin-closed"),
		      "want 4 end=admin-closed lines for app1, got %d",
		      h_lb_log_count(&lb, "backend=app1", "end=admin-closed"));
	ck_assert_int_eq(h_lb_log_count(&lb, "backend=app1",
					"end=admin-closed"), 4);
	ck_assert_int_eq(h_lb_log_count(&lb, "backend=app2",
					"end=admin-closed"), 0);
	json_decref(c);
}
END_TEST

/* ---- 6. maintenance vs health ---- */

START_TEST(test_maint_health)
{
	struct h_backend a, b, *bs[] = { &a, &b };
	json_t *c;
	struct h_lb lb;
	int counts[2];
	json_t *j, *chk;

	h_backend_up(&a, H_NAME, "app1");
	h_backend_up(&b, H_NAME, "app2");
	c = web(bs, 2);
	hc_set(c, "listeners.0.health_check", hc_json(FAST_HEALTH));
	lb_up(&lb, c);
	j = backend_get("web", "app1");
	chk = json_object_get(j, "check");
	ck_assert_msg(json_is_object(chk) &&
			      json_is_true(json_object_get(chk, "enabled")),
		      "check.enabled with health checks on: %s", dump(j));
	json_decref(j);
	/* A probe has run and succeeded. */
	{
		uint64_t deadline = h_now_ms() + 3000;
		bool ok = false;

		while (!ok && h_now_ms() < deadline) {
			j = backend_get("web", "app1");
			chk = json_object_get(j, "check");
			ok = json_is_string(json_object_get(chk, "result")) &&
			     strcmp(json_string_value(json_object_get(
					    chk, "result")),
				    "ok") == 0 &&
			     json_is_integer(json_object_get(chk,
							     "latency_ms"));
			json_decref(j);
			if (!ok)
				h_sleep_ms(50);
		}
		ck_assert_msg(ok, "check.result never 'ok' with latency_ms: %s",
			      last_body);
	}

	backend_set("app1", "maint", "maintenance");
	spread(lport(c, 0), 10, bs, 2, counts);
	ck_assert_msg(counts[0] == 0, "healthy app1 in maintenance got %d of "
		      "10 new connections", counts[0]);

	/* Health goes down and up; the state stays maintenance. */
	h_backend_kill(&a);
	ck_assert_msg(bwait_str("app1", "health", "down", 3000),
		      "app1's server is gone, health still %s",
		      bstr("app1", "health"));
	assert_state("app1", "maintenance");
	ck_assert_int_eq(h_backend_restart(&a), 0);
	ck_assert_msg(bwait_str("app1", "health", "up", 3000),
		      "app1's server is back, health still %s",
		      bstr("app1", "health"));
	assert_state("app1", "maintenance");
	h_sleep_ms(500);
	assert_state("app1", "maintenance");
	spread(lport(c, 0), 10, bs, 2, counts);
	ck_assert_msg(counts[0] == 0, "health brought app1 back from "
		      "maintenance: %d of 10 connections", counts[0]);

	backend_set("app1", "ready", "up");
	spread(lport(c, 0), 10, bs, 2, counts);
	ck_assert_msg(counts[0] >= 4 && counts[0] <= 6,
		      "after ready: app1 got %d of 10", counts[0]);

	/* Draining: health changes, the state shown does not. */
	backend_set("app1", "drain", "draining");
	h_backend_kill(&a);
	ck_assert(bwait_str("app1", "health", "down", 3000));
	assert_state("app1", "draining");
	ck_assert_int_eq(h_backend_restart(&a), 0);
	ck_assert(bwait_str("app1", "health", "up", 3000));
	h_sleep_ms(300);
	assert_state("app1", "draining");

	/* Ready follows health: down, then up. */
	backend_set("app1", "ready", "up");
	h_backend_kill(&a);
	ck_assert_msg(bwait_str("app1", "state", "down", 3000),
		      "ready app1 with its server gone: state %s",
		      bstr("app1", "state"));
	ck_assert_int_eq(h_backend_restart(&a), 0);
	ck_assert_msg(bwait_str("app1", "state", "up", 3000),
		      "ready app1 with its server back: state %s",
		      bstr("app1", "state"));

	/* Every backend in maintenance: no backend for a new client. */
	backend_set("app1", "maint", "maintenance");
	backend_set("app2", "maint", "maintenance");
	{
		long data = 0;
		int fd = h_connect("127.0.0.1", lport(c, 0), 3000), rc;

		ck_assert_int_ge(fd, 0);
		rc = h_wait_close(fd, 3000, &data);
		close(fd);
		ck_assert_msg((rc == 0 || rc == -ECONNRESET) && data == 0,
			      "client with every backend in maintenance: %s, "
			      "%ld bytes", rc == -ETIMEDOUT ? "still open"
							    : "closed",
			      data);
	}
	ck_assert_msg(lwait_int("web", "no_backend", 1, 2000),
		      "no_backend %lld with every backend in maintenance",
		      listener_int("web", "no_backend"));
	ck_assert(h_lb_log_wait(&lb, 1, 2000, "end=no-backend"));
	json_decref(c);
}
END_TEST

/* ---- 7. weights ---- */

START_TEST(test_weight)
{
	struct h_backend a, b, b2, *bs[] = { &a, &b };
	json_t *c;
	struct h_lb lb;
	int counts[2];
	json_t *j;

	h_backend_up(&a, H_NAME, "app1");
	h_backend_up(&b, H_NAME, "app2");
	c = web(bs, 2);
	lb_up(&lb, c);
	weight_set("app1", 3);
	weight_set("app2", 1);
	ck_assert_int_eq(bint("app1", "config_weight"), 1);
	/* Smooth WRR may carry one pick of state over from 1:1. */
	spread(lport(c, 0), 40, bs, 2, counts);
	ck_assert_msg(counts[0] >= 29 && counts[0] <= 31,
		      "weights 3:1 over 40 connections: %d/%d", counts[0],
		      counts[1]);

	/* Same file: the runtime weight survives. */
	j = api_ok("POST", "/reload", NULL);
	json_decref(j);
	ck_assert_msg(bint("app1", "weight") == 3 &&
			      bint("app1", "config_weight") == 1,
		      "after reloading the same file: %s", last_body);
	/* The file changes app2's weight only: app1 keeps its own. */
	file_weight(c, 0, 1, 2);
	cfg_write(&lb, c);
	j = api_ok("POST", "/reload", NULL);
	json_decref(j);
	ck_assert_msg(bint("app1", "weight") == 3,
		      "app1's runtime weight lost in a reload that did not "
		      "change its file weight: %s", last_body);
	ck_assert_msg(bint("app2", "weight") == 2 &&
			      bint("app2", "config_weight") == 2,
		      "app2 after its file weight changed 1 -> 2: %s",
		      last_body);
	spread(lport(c, 0), 50, bs, 2, counts);
	ck_assert_msg(counts[0] >= 29 && counts[0] <= 31,
		      "weights 3:2 over 50 connections: %d/%d", counts[0],
		      counts[1]);
	/* The file changes app1's weight: the file wins. */
	file_weight(c, 0, 0, 4);
	cfg_write(&lb, c);
	j = api_ok("POST", "/reload", NULL);
	json_decref(j);
	ck_assert_msg(bint("app1", "weight") == 4 &&
			      bint("app1", "config_weight") == 4,
		      "app1 after its file weight changed 1 -> 4: %s",
		      last_body);

	/* Same name, new address: a new backend, nothing carried over. */
	backend_set("app2", "maint", "maintenance");
	weight_set("app2", 9);
	h_backend_up(&b2, H_NAME, "app2");
	backend_is(c, 0, 1, &b2);
	cfg_write(&lb, c);
	j = api_ok("POST", "/reload", NULL);
	json_decref(j);
	j = backend_get("web", "app2");
	ck_assert_msg(strcmp(jstr(j, "admin"), "ready") == 0 &&
			      strcmp(jstr(j, "state"), "up") == 0 &&
			      jint(j, "weight") == 2,
		      "app2 at a new address kept its operator state or "
		      "runtime weight: %s", dump(j));
	json_decref(j);
	json_decref(c);
}
END_TEST

/* ---- 8. reload with a valid file ---- */

START_TEST(test_reload_valid)
{
	struct h_backend a, b, c3, *bs[] = { &a, &b, &c3 };
	json_t *c;
	struct h_lb lb;
	json_t *root, *lj, *j;
	char name[64];
	int fd_b = -1, fd_x = -1, counts[3], port, xport;
	char socks[256], now[256];
	long long gen;

	h_backend_up(&a, H_NAME, "app1");
	h_backend_up(&b, H_NAME, "app2");
	h_backend_up(&c3, H_NAME, "app3");
	c = web(bs, 2);
	lb_up(&lb, c);
	port = lport(c, 0);
	for (int i = 0; i < 2 && fd_b < 0; i++) {
		int fd;

		ck_assert_int_eq(h_get_name("127.0.0.1", port, name, sizeof(name), &fd), 0);
		if (strcmp(name, "app2") == 0)
			fd_b = fd;
		else
			close(fd);
	}
	ck_assert_msg(fd_b >= 0, "no connection reached app2");
	backend_set("app1", "drain", "draining");
	gen = status_int("generation");
	listen_inodes(port, socks, sizeof(socks));

	/* Via the API: app3 in, app2 out, least-connections, new listener. */
	backend_is(c, 0, 1, &c3);
	hc_set(c, "listeners.0.algorithm", json_string("least-connections"));
	listener(c, "extra", &bs[2], 1);
	cfg_write(&lb, c);
	xport = lport(c, 1);
	j = api_ok("POST", "/reload", NULL);
	json_decref(j);
	lj = status_listener("web", &root);
	ck_assert_msg(jint(root, "generation") == gen + 1 &&
			      jint(root, "reloads") == 1,
		      "after POST /reload: %s", dump(root));
	ck_assert_msg(lj != NULL && strcmp(jstr(lj, "algorithm"),
					   "least-connections") == 0,
		      "web after reload: %s", dump(root));
	ck_assert_msg(json_array_size(jarr(lj, "backends")) == 2 &&
			      by_name(jarr(lj, "backends"), "app2") == NULL &&
			      by_name(jarr(lj, "backends"), "app3") != NULL,
		      "web's backends after reload: %s",
		      dump(jarr(lj, "backends")));
	ck_assert_msg(by_name(jarr(root, "listeners"), "extra") != NULL,
		      "new listener missing: %s", dump(root));
	json_decref(root);
	assert_state("app1", "draining");

	spread(port, 12, bs, 3, counts);
	ck_assert_msg(counts[2] == 12, "after reload (app1 draining, app2 "
		      "removed): app1 %d, app2 %d, app3 %d of 12", counts[0],
		      counts[1], counts[2]);
	xfer_echo(fd_b, 0xb0b, 256 * KIB, "open connection to removed app2");
	ck_assert_int_eq(h_get_name("127.0.0.1", xport, name, sizeof(name), &fd_x), 0);
	ck_assert_msg(strcmp(name, "app3") == 0, "new listener served by %s",
		      name);
	ck_assert_int_eq(echo_once(fd_b, "still b\n"), 0);
	close(fd_b);

	/* Via SIGHUP: the new listener goes away with a connection open. */
	json_array_remove(hc_get(c, "listeners"), 1);
	cfg_write(&lb, c);
	h_lb_signal(&lb, SIGHUP);
	ck_assert_msg(wait_generation(gen + 2, 3000),
		      "SIGHUP did not reload: generation %lld, want %lld",
		      status_int("generation"), gen + 2);
	ck_assert_msg(status_int("reloads") == 2, "reloads %lld",
		      status_int("reloads"));
	{
		uint64_t deadline = h_now_ms() + 3000;

		while (h_port_listening(xport) && h_now_ms() < deadline)
			h_sleep_ms(20);
	}
	ck_assert_msg(!h_port_listening(xport), "removed listener still "
		      "listening on %d", xport);
	{
		int fd = h_connect("127.0.0.1", xport, 2000);

		ck_assert_msg(fd < 0, "removed listener accepted a "
			      "connection");
	}
	ck_assert_msg(echo_once(fd_x, "listener gone\n") == 0,
		      "open connection of the removed listener broke");
	close(fd_x);
	lj = status_listener("extra", &root);
	ck_assert_msg(lj == NULL, "removed listener still in status: %s",
		      dump(root));
	json_decref(root);
	assert_state("app1", "draining");
	spread(port, 4, bs, 3, counts);
	ck_assert_int_eq(counts[2], 4);
	/* web kept its name and address: it kept its sockets. */
	listen_inodes(port, now, sizeof(now));
	ck_assert_msg(strcmp(socks, now) == 0, "web's listening sockets "
		      "changed over two reloads: inodes %s, then %s", socks,
		      now);
	json_decref(c);
}
END_TEST

/*
 * A reload that turns checks off brings a backend they had marked down
 * back up (with checks off every backend counts as up).  Then passive
 * marks: the dead backend costs one failed connect, not one per other
 * client, shows its mark in the API, and a good connect lifts it.
 */
START_TEST(test_checks_off_and_marks)
{
	struct h_backend a, b, *bs[] = { &a, &b };
	json_t *c;
	struct h_lb lb;
	int counts[2], fd;
	char name[64];

	h_backend_up(&a, H_NAME, "app1");
	h_backend_up(&b, H_NAME, "app2");
	c = web(bs, 2);
	hc_set(c, "listeners.0.health_check", hc_json(FAST_HEALTH));
	lb_up(&lb, c);
	h_backend_kill(&b);
	ck_assert_msg(bwait_str("app2", "state", "down", 3000),
		      "app2 not marked down by checks: %s", bstr("app2",
								"state"));

	hc_set(c, "listeners.0.health_check",
	       hc_json("{ \"enabled\": false }"));
	cfg_write(&lb, c);
	json_decref(api_ok("POST", "/reload", NULL));
	assert_state("app2", "up");
	ck_assert_int_eq(h_lb_log_count(&lb, "backend=app2 ", "state=up",
					"reason=checks-off"),
			 1);

	/* app2 is dead: the first client to try it marks it. */
	spread(lport(c, 0), 8, bs, 2, counts);
	ck_assert_msg(counts[0] == 8, "app1 served %d of 8", counts[0]);
	ck_assert_msg(bint("app2", "connect_failures") == 1,
		      "app2 was tried %lld times by 8 clients, want once",
		      bint("app2", "connect_failures"));
	ck_assert_msg(bint("app2", "fail_mark_ms") > 5000,
		      "app2's fail_mark_ms is %lld, want most of 10000",
		      bint("app2", "fail_mark_ms"));
	{
		struct h_run *r = ctl("status");
		char *line = strstr(r->out, "app2");

		ck_assert_msg(line != NULL && strstr(line, " up/marked "),
			      "ringlbctl status does not show app2 as "
			      "up/marked:\n%s", r->out);
	}

	/* Back, but still marked: only a client with no choice tries it. */
	ck_assert_int_eq(h_backend_restart(&b), 0);
	spread(lport(c, 0), 4, bs, 2, counts);
	ck_assert_int_eq(counts[0], 4);
	backend_set("app1", "maint", "maintenance");
	ck_assert_int_eq(h_get_name("127.0.0.1", lport(c, 0), name,
				    sizeof(name), &fd), 0);
	close(fd);
	ck_assert_str_eq(name, "app2");
	ck_assert_int_eq(bint("app2", "fail_mark_ms"), 0);
	backend_set("app1", "ready", "up");
	spread(lport(c, 0), 8, bs, 2, counts);
	ck_assert_msg(counts[0] == 4 && counts[1] == 4,
		      "unmarked: app1 %d, app2 %d of 8", counts[0], counts[1]);
	json_decref(c);
}
END_TEST

/* ---- 9. reload with an invalid file ---- */

START_TEST(test_reload_invalid)
{
	struct h_backend a, b, *bs[] = { &a, &b };
	json_t *c;
	struct h_lb lb;
	struct h_run *r;
	json_t *j = NULL;
	const char *err;
	char name[64];
	int fd, counts[2], status;
	long long gen;

	h_backend_up(&a, H_NAME, "app1");
	h_backend_up(&b, H_NAME, "app2");
	c = web(bs, 2);
	lb_up(&lb, c);
	ck_assert_int_eq(h_get_name("127.0.0.1", lport(c, 0), name, sizeof(name), &fd), 0);
	gen = status_int("generation");

	file_weight(c, 0, 1, 1000);
	cfg_write(&lb, c);
	status = api("POST", "/reload", NULL, &j);
	ck_assert_msg(status == 400, "reload of an invalid file: want 400, got "
		      "%d: %s", status, last_body);
	ck_assert_msg(json_is_object(j) &&
			      json_is_string(json_object_get(j, "error")),
		      "reload error body: %s", last_body);
	err = json_string_value(json_object_get(j, "error"));
	ck_assert_msg(strstr(err, "config.json") != NULL &&
			      strstr(err, "listeners[0].backends[1].weight") !=
				      NULL,
		      "reload error must name the file and JSON path: %s", err);
	json_decref(j);

	r = ctl("reload");
	assert_ctl_err(r, 1, "reload of an invalid file");
	ck_assert_msg(strstr(r->err, "listeners[0].backends[1].weight") != NULL,
		      "ringlbctl reload: error not printed: %s", r->err);
	ck_assert_msg(h_lb_log_wait(&lb, 1, 2000,
				    "listeners[0].backends[1].weight"),
		      "the reload error is not in the log");

	ck_assert_msg(status_int("generation") == gen &&
			      status_int("reload_failures") == 2 &&
			      status_int("reloads") == 0,
		      "after 2 failed reloads: %s", last_body);
	ck_assert_int_eq(bint("app2", "weight"), 1);
	ck_assert_msg(echo_once(fd, "old config\n") == 0,
		      "open connection broke after a failed reload");
	spread(lport(c, 0), 4, bs, 2, counts);
	ck_assert_msg(counts[0] == 2 && counts[1] == 2, "old config: %d/%d",
		      counts[0], counts[1]);

	/* The same by SIGHUP: logged, counted, nothing changes. */
	h_lb_signal(&lb, SIGHUP);
	{
		uint64_t deadline = h_now_ms() + 3000;

		while (status_int("reload_failures") < 3 &&
		       h_now_ms() < deadline)
			h_sleep_ms(20);
	}
	ck_assert_msg(status_int("reload_failures") == 3 &&
			      status_int("generation") == gen,
		      "SIGHUP with an invalid file: %s", last_body);
	ck_assert_msg(h_lb_log_wait(&lb, 3, 2000,
				    "listeners[0].backends[1].weight"),
		      "the SIGHUP reload error is not in the log");
	ck_assert_int_eq(echo_once(fd, "after sighup\n"), 0);

	/* A syntax error too. */
	ck_assert_int_eq(h_write_file(lb.cfg_path, "{ \"workers\": "), 0);
	status = api("POST", "/reload", NULL, &j);
	ck_assert_msg(status == 400 && json_is_object(j) &&
			      json_is_string(json_object_get(j, "error")) &&
			      strstr(json_string_value(json_object_get(
					     j, "error")),
				     "config.json") != NULL,
		      "reload of a broken file: %d %s", status, last_body);
	json_decref(j);
	ck_assert_int_eq(status_int("reload_failures"), 4);

	/* Fixed: it reloads. */
	file_weight(c, 0, 1, 2);
	cfg_write(&lb, c);
	j = api_ok("POST", "/reload", NULL);
	json_decref(j);
	ck_assert_msg(status_int("generation") == gen + 1 &&
			      bint("app2", "weight") == 2,
		      "valid reload after failures: %s", last_body);
	ck_assert_int_eq(echo_once(fd, "new config\n"), 0);

	/*
	 * A valid file whose new listener cannot bind (the test holds the
	 * port): the reload fails as a whole and nothing changes, not even
	 * the weight the file also changes.
	 */
	{
		struct sockaddr_in sin = { .sin_family = AF_INET };
		int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		ck_assert_int_ge(lfd, 0);
		file_weight(c, 0, 1, 3);
		listener(c, "taken", bs, 1);
		sin.sin_port = htons((uint16_t)lport(c, 1));
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sin,
				      sizeof(sin)), 0);
		ck_assert_int_eq(listen(lfd, 4), 0);
		cfg_write(&lb, c);
		status = api("POST", "/reload", NULL, &j);
		ck_assert_msg(status >= 400 && json_is_object(j) &&
				      json_is_string(json_object_get(j,
								     "error")),
			      "reload with a listen port in use: %d %s",
			      status, last_body);
		json_decref(j);
		close(lfd);
		ck_assert_int_eq(echo_once(fd, "port taken\n"), 0);
		spread(lport(c, 0), 2, bs, 2, counts);
		ck_assert_msg(status_int("generation") == gen + 1 &&
				      status_int("reload_failures") == 5,
			      "a reload that could not bind: generation %lld "
			      "(want %lld), reload_failures %lld (want 5)",
			      status_int("generation"), gen + 1,
			      status_int("reload_failures"));
		ck_assert_msg(bint("app2", "weight") == 2 &&
				      bint("app2", "config_weight") == 2,
			      "a reload that failed (%d: could not bind) still "
			      "changed app2's weight/config_weight to "
			      "%lld/%lld (want 2/2, the file said 3)", status,
			      bint("app2", "weight"),
			      bint("app2", "config_weight"));
	}
	close(fd);
	json_decref(c);
}
END_TEST

/* ---- 10. reloads under load ---- */

struct load {
	int port;
	atomic_bool *stop;
	unsigned done;
	char err[320];
};

static void *
load_main(void *arg)
{
	struct load *ld = arg;

	while (!atomic_load(ld->stop)) {
		struct h_multi m = {
			.host = "127.0.0.1", .port = ld->port, .total = 20,
			.concurrency = 4, .len = 3000, .timeout_ms = 15000,
		};

		if (h_multi_echo(&m) < 0) {
			snprintf(ld->err, sizeof(ld->err), "after %u: %s",
				 ld->done + m.done, m.err);
			break;
		}
		ld->done += m.done;
		h_sleep_ms(10);
	}
	return NULL;
}

struct stream {
	int fd;
	unsigned id;
	atomic_bool *stop;
	uint64_t bytes;
	char err[300];
};

/* 64 KiB echoed and checked at a time until told to stop. */
static void *
stream_main(void *arg)
{
	struct stream *s = arg;

	for (unsigned k = 0; !atomic_load(s->stop); k++) {
		struct h_xfer x = {
			.tx_seed = ((uint64_t)s->id << 32) | k,
			.tx_len = 64 * KIB,
			.rx_seed = ((uint64_t)s->id << 32) | k,
			.rx_len = 64 * KIB, .timeout_ms = 10000,
		};

		if (h_xfer(s->fd, &x) < 0) {
			snprintf(s->err, sizeof(s->err), "chunk %u: %s", k,
				 x.err);
			break;
		}
		s->bytes += x.rcvd;
		h_sleep_ms(20);
	}
	return NULL;
}

START_TEST(test_reload_under_load)
{
	struct h_backend a, b, *bs[] = { &a, &b };
	json_t *cx, *cy;
	struct h_lb lb;
	struct load ld;
	struct stream ss[3];
	pthread_t lt, stt[3];
	atomic_bool stop = false;
	json_t *root, *lj;
	char socks[256], now[256];
	long long gen;

	h_backend_up(&a, H_ECHO, "e1");
	h_backend_up(&b, H_ECHO, "e2");
	cx = web(bs, 2);
	lb_up(&lb, cx);
	cy = json_deep_copy(cx);
	hc_set(cy, "listeners.0.algorithm", json_string("least-connections"));
	file_weight(cy, 0, 0, 2);
	gen = status_int("generation");
	listen_inodes(lport(cx, 0), socks, sizeof(socks));

	for (unsigned i = 0; i < 3; i++) {
		memset(&ss[i], 0, sizeof(ss[i]));
		ss[i].id = i + 1;
		ss[i].stop = &stop;
		ss[i].fd = h_connect("127.0.0.1", lport(cx, 0), 3000);
		ck_assert_int_ge(ss[i].fd, 0);
		ck_assert_int_eq(pthread_create(&stt[i], NULL, stream_main,
						&ss[i]), 0);
	}
	memset(&ld, 0, sizeof(ld));
	ld.port = lport(cx, 0);
	ld.stop = &stop;
	ck_assert_int_eq(pthread_create(&lt, NULL, load_main, &ld), 0);
	h_sleep_ms(300);

	for (int i = 0; i < 20; i++) {
		cfg_write(&lb, i % 2 == 0 ? cy : cx);
		if (i % 2 == 0) {
			json_t *j = api_ok("POST", "/reload", NULL);

			json_decref(j);
		} else {
			h_lb_signal(&lb, SIGHUP);
		}
		ck_assert_msg(wait_generation(gen + i + 1, 3000),
			      "reload %d (%s) did not happen: generation "
			      "%lld, want %lld", i + 1,
			      i % 2 == 0 ? "API" : "SIGHUP",
			      status_int("generation"), gen + i + 1);
		h_sleep_ms(120);
	}
	h_sleep_ms(300);
	atomic_store(&stop, true);
	pthread_join(lt, NULL);
	for (int i = 0; i < 3; i++)
		pthread_join(stt[i], NULL);

	ck_assert_msg(ld.err[0] == '\0', "short connections during reloads: "
		      "%s", ld.err);
	ck_assert_msg(ld.done >= 60, "only %u short connections completed",
		      ld.done);
	for (int i = 0; i < 3; i++) {
		long data = 0;

		ck_assert_msg(ss[i].err[0] == '\0', "long-lived connection %d "
			      "during reloads: %s", i, ss[i].err);
		ck_assert_msg(ss[i].bytes >= 10 * 64 * KIB,
			      "long-lived connection %d moved only %llu bytes",
			      i, (unsigned long long)ss[i].bytes);
		/* Intact to the end: half-close, the echo side closes. */
		shutdown(ss[i].fd, SHUT_WR);
		ck_assert_msg(h_wait_close(ss[i].fd, 3000, &data) == 0 &&
				      data == 0,
			      "long-lived connection %d did not end cleanly",
			      i);
		close(ss[i].fd);
	}
	lj = status_listener("web", &root);
	ck_assert_msg(jint(root, "reloads") == 20 &&
			      jint(root, "reload_failures") == 0,
		      "reload counters: %s", dump(root));
	ck_assert_msg(lj != NULL && jint(lj, "no_backend") == 0 &&
			      jint(lj, "connect_failed") == 0,
		      "failed connections: %s", dump(lj));
	json_decref(root);
	/* Counters are counters: reloads do not reset them. */
	ck_assert_msg(listener_int("web", "accepts") == ld.done + 3,
		      "listener accepts %lld after %u + 3 connections and 20 "
		      "reloads", listener_int("web", "accepts"), ld.done);
	ck_assert_msg(lwait_int("web", "active", 0, 3000), "active %lld at "
		      "the end", listener_int("web", "active"));
	ck_assert_msg(h_lb_log_count(&lb, "end=", "reset") == 0 &&
			      h_lb_log_count(&lb, "end=error") == 0 &&
			      h_lb_log_count(&lb, "end=connect-failed") == 0 &&
			      h_lb_log_count(&lb, "end=no-backend") == 0 &&
			      h_lb_log_count(&lb, "end=shutdown") == 0,
		      "connections ended badly during reloads (see log)");
	ck_assert_msg(h_lb_log_count(&lb, " error ") == 0,
		      "error lines in the log during reloads");
	listen_inodes(lport(cx, 0), now, sizeof(now));
	ck_assert_msg(strcmp(socks, now) == 0, "the listening sockets changed "
		      "over 20 reloads of an unchanged listener: inodes %s, "
		      "then %s", socks, now);
	json_decref(cx);
	json_decref(cy);
}
END_TEST

/* ---- 11. /metrics ---- */

struct sample {
	char name[128];
	char labels[8][2][64];	/* key, value (unescaped) */
	int nlabels;
	double value;
};

/* Parse one sample line; false when it is not valid text format. */
static bool
parse_sample(const char *line, struct sample *s)
{
	const char *p = line;
	char *end;
	size_t n = 0;

	memset(s, 0, sizeof(*s));
	while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
	       *p == '_' || *p == ':' || (n > 0 && *p >= '0' && *p <= '9')) {
		if (n + 1 >= sizeof(s->name))
			return false;
		s->name[n++] = *p++;
	}
	if (n == 0)
		return false;
	if (*p == '{') {
		p++;
		while (*p != '}') {
			char *k, *v;
			size_t kn = 0, vn = 0;

			if (s->nlabels == 8)
				return false;
			k = s->labels[s->nlabels][0];
			v = s->labels[s->nlabels][1];
			while ((*p >= 'a' && *p <= 'z') ||
			       (*p >= 'A' && *p <= 'Z') || *p == '_' ||
			       (kn > 0 && *p >= '0' && *p <= '9')) {
				if (kn + 1 >= 64)
					return false;
				k[kn++] = *p++;
			}
			if (kn == 0 || *p++ != '=' || *p++ != '"')
				return false;
			while (*p != '"') {
				char ch = *p++;

				if (ch == '\0')
					return false;
				if (ch == '\\') {
					ch = *p++;
					if (ch == 'n')
						ch = '\n';
					else if (ch != '\\' && ch != '"')
						return false;
				}
				if (vn + 1 >= 64)
					return false;
				v[vn++] = ch;
			}
			p++;
			s->nlabels++;
			if (*p == ',')
				p++;
			else if (*p != '}')
				return false;
		}
		p++;
	}
	if (*p != ' ')
		return false;
	s->value = strtod(p + 1, &end);
	if (end == p + 1)
		return false;
	/* An optional timestamp. */
	if (*end == ' ')
		strtoll(end + 1, &end, 10);
	return *end == '\0';
}

/* Does s carry exactly the labels "k1", "v1", "k2", "v2", ..., NULL? */
static bool
labels_are(const struct sample *s, const char *const *kv)
{
	int n = 0;

	for (; kv[2 * n] != NULL; n++) {
		int i;

		for (i = 0; i < s->nlabels; i++)
			if (strcmp(s->labels[i][0], kv[2 * n]) == 0)
				break;
		if (i == s->nlabels || strcmp(s->labels[i][1], kv[2 * n + 1]))
			return false;
	}
	return n == s->nlabels;
}

struct metrics {
	struct sample *s;
	int n;
	char *text;
};

static const char *const families[] = {
	"ringlb_listener_accepts_total",
	"ringlb_listener_active_connections",
	"ringlb_listener_bytes_in_total",
	"ringlb_listener_bytes_out_total",
	"ringlb_listener_no_backend_total",
	"ringlb_listener_connect_failed_total",
	"ringlb_backend_up",
	"ringlb_backend_state",
	"ringlb_backend_weight",
	"ringlb_backend_active_connections",
	"ringlb_backend_connections_total",
	"ringlb_backend_bytes_in_total",
	"ringlb_backend_bytes_out_total",
	"ringlb_backend_connect_errors_total",
	"ringlb_backend_check_duration_seconds",
	"ringlb_worker_accepts_total",
	"ringlb_config_generation",
	"ringlb_reloads_total",
};

/*
 * GET /metrics and check the exposition: every line a comment or a valid
 * sample; every sample's family has one HELP and one TYPE line before it;
 * every family of the spec is there.
 */
static void
metrics_get(struct metrics *m)
{
	char help[64][128], type[64][128], hdr[256];
	int nhelp = 0, ntype = 0, cap = 256;
	struct h_http r;
	char *line, *save = NULL;
	int status = api_at(NULL, "GET", "/metrics", NULL, NULL, &r);

	ck_assert_msg(status == 200, "GET /metrics: %d", status);
	ck_assert_msg(h_http_header(&r, "Content-Type", hdr, sizeof(hdr)) &&
			      strncmp(hdr, "text/plain", 10) == 0,
		      "GET /metrics: Content-Type '%s'", hdr);
	m->text = strdup(r.body);
	m->s = calloc((size_t)cap, sizeof(*m->s));
	m->n = 0;
	ck_assert(m->text != NULL && m->s != NULL);
	for (line = strtok_r(r.body, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		char fam[128];
		int k;

		if (strncmp(line, "# HELP ", 7) == 0 ||
		    strncmp(line, "# TYPE ", 7) == 0) {
			bool is_help = line[2] == 'H';
			char (*list)[128] = is_help ? help : type;
			int *nl = is_help ? &nhelp : &ntype;
			char what[32] = "";

			ck_assert_msg(sscanf(line + 7, "%127s %31s", fam,
					     what) >= 1 &&
					      (is_help || what[0] != '\0'),
				      "bad comment line: %s", line);
			if (!is_help)
				ck_assert_msg(strcmp(what, "counter") == 0 ||
						      strcmp(what, "gauge") ==
							      0 ||
						      strcmp(what,
							     "histogram") ==
							      0 ||
						      strcmp(what, "summary") ==
							      0 ||
						      strcmp(what, "untyped") ==
							      0,
					      "bad TYPE: %s", line);
			if (!is_help && strlen(fam) > 6 &&
			    strcmp(fam + strlen(fam) - 6, "_total") == 0)
				ck_assert_msg(strcmp(what, "counter") == 0,
					      "a _total family that is not a "
					      "counter: %s", line);
			for (k = 0; k < *nl; k++)
				ck_assert_msg(strcmp(list[k], fam) != 0,
					      "second %s line for %s",
					      is_help ? "HELP" : "TYPE", fam);
			ck_assert(*nl < 64);
			snprintf(list[(*nl)++], 128, "%s", fam);
			continue;
		}
		if (line[0] == '#')
			continue;
		if (m->n == cap) {
			cap *= 2;
			m->s = realloc(m->s, (size_t)cap * sizeof(*m->s));
			ck_assert(m->s != NULL);
		}
		ck_assert_msg(parse_sample(line, &m->s[m->n]),
			      "not a valid sample line: '%s'", line);
		/* Its family: the name, or without a histogram suffix. */
		snprintf(fam, sizeof(fam), "%s", m->s[m->n].name);
		for (k = 0; k < ntype && strcmp(type[k], fam) != 0; k++)
			;
		if (k == ntype) {
			static const char *const sfx[] = { "_bucket", "_sum",
							   "_count" };

			for (size_t x = 0; x < 3; x++) {
				size_t fl = strlen(fam), sl = strlen(sfx[x]);

				if (fl > sl &&
				    strcmp(fam + fl - sl, sfx[x]) == 0) {
					fam[fl - sl] = '\0';
					break;
				}
			}
			for (k = 0; k < ntype && strcmp(type[k], fam) != 0;
			     k++)
				;
		}
		ck_assert_msg(k < ntype, "sample before (or without) a TYPE "
			      "line: %s", line);
		for (k = 0; k < nhelp && strcmp(help[k], fam) != 0; k++)
			;
		ck_assert_msg(k < nhelp, "sample without a HELP line: %s",
			      line);
		m->n++;
	}
	for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++) {
		int k;

		for (k = 0; k < ntype && strcmp(type[k], families[f]) != 0;
		     k++)
			;
		ck_assert_msg(k < ntype, "no TYPE line for %s in:\n%s",
			      families[f], m->text);
	}
	h_http_free(&r);
}

/* The value of sample name{labels}; fails if absent or duplicated. */
static double
mval_v(const struct metrics *m, const char *name, const char *const *kv)
{
	double v = NAN;
	int found = 0;

	for (int i = 0; i < m->n; i++)
		if (strcmp(m->s[i].name, name) == 0 &&
		    labels_are(&m->s[i], kv)) {
			v = m->s[i].value;
			found++;
		}
	ck_assert_msg(found == 1, "%d samples of %s{%s=\"%s\"%s%s...} in:\n%s",
		      found, name, kv[0] ? kv[0] : "", kv[0] ? kv[1] : "",
		      kv[0] && kv[2] ? "," : "", kv[0] && kv[2] ? kv[2] : "",
		      m->text);
	return v;
}

#define mval(m, name, ...) \
	mval_v((m), (name), (const char *const[]){ __VA_ARGS__, NULL })

/* Sample name{labels} must have the value want. */
static void
mexpect_v(const struct metrics *m, double want, const char *name,
	  const char *const *kv)
{
	double v = mval_v(m, name, kv);
	char labels[256] = "";
	size_t n = 0;

	for (int i = 0; kv[2 * i] != NULL && n < sizeof(labels); i++)
		n += (size_t)snprintf(labels + n, sizeof(labels) - n,
				      "%s%s=\"%s\"", i ? "," : "", kv[2 * i],
				      kv[2 * i + 1]);
	ck_assert_msg(v == want, "%s{%s} is %g, want %g", name, labels, v,
		      want);
}

#define mexpect(m, want, name, ...) \
	mexpect_v((m), (want), (name), (const char *const[]){ __VA_ARGS__, \
							       NULL })

static void
metrics_free(struct metrics *m)
{
	free(m->s);
	free(m->text);
}

#define LWEB "listener", "web"
/* A listener's own pool: listener, pool and backend labels. */
#define BE(name) "pool", "web", "backend", (name)

START_TEST(test_metrics)
{
	struct h_backend e1, e2, e3 = { .name = "e3" };
	struct h_backend *bs[] = { &e1, &e2, &e3 };
	static const char *const states[] = { "up", "down", "draining",
					      "maintenance" };
	json_t *c;
	struct h_lb lb;
	struct metrics m;
	double wsum = 0, d;
	int nworkers = 0;
	json_t *st;

	h_backend_up(&e1, H_ECHO, "e1");
	h_backend_dead(&e2, H_ECHO, "e2");
	/* Its checks all run into their timeout: a duration to measure. */
	e3.port = h_blackhole();
	ck_assert_msg(e3.port > 0, "cannot make a black-hole port: %s",
		      strerror(-e3.port));
	c = web(bs, 3);
	hc_set(c, "listeners.0.health_check",
	       hc_json("{ \"interval_ms\": 200, \"timeout_ms\": 100, "
		       "\"rise\": 1, \"fall\": 1 }"));
	lb_up(&lb, c);
	ck_assert_msg(bwait_str("e2", "state", "down", 3000),
		      "e2 (nothing listening) state %s", bstr("e2", "state"));
	ck_assert_msg(bwait_str("e3", "state", "down", 3000),
		      "e3 (a black hole) state %s", bstr("e3", "state"));

	for (int i = 0; i < 5; i++) {
		struct h_xfer x = {
			.tx_seed = 500 + (uint64_t)i, .tx_len = 1000,
			.tx_shut = true, .rx_seed = 500 + (uint64_t)i,
			.rx_len = 1000, .rx_eof = true, .timeout_ms = 5000,
		};
		int fd = h_connect("127.0.0.1", lport(c, 0), 3000);

		ck_assert_int_ge(fd, 0);
		ck_assert_msg(h_xfer(fd, &x) == 0, "connection %d: %s", i,
			      x.err);
		close(fd);
	}
	ck_assert_msg(lwait_int("web", "active", 0, 2000) &&
			      lwait_int("web", "bytes_out", 5000, 2000),
		      "after 5 echo connections of 1000 bytes: %s", last_body);

	metrics_get(&m);
	mexpect(&m, 5, "ringlb_listener_accepts_total", LWEB);
	mexpect(&m, 0, "ringlb_listener_active_connections", LWEB);
	mexpect(&m, 5000, "ringlb_listener_bytes_in_total", LWEB);
	mexpect(&m, 5000, "ringlb_listener_bytes_out_total", LWEB);
	mexpect(&m, 0, "ringlb_listener_no_backend_total", LWEB);
	mexpect(&m, 0, "ringlb_listener_connect_failed_total", LWEB);
	mexpect(&m, 5, "ringlb_backend_connections_total", LWEB, BE("e1"));
	mexpect(&m, 0, "ringlb_backend_connections_total", LWEB, BE("e2"));
	mexpect(&m, 5000, "ringlb_backend_bytes_in_total", LWEB, BE("e1"));
	mexpect(&m, 5000, "ringlb_backend_bytes_out_total", LWEB, BE("e1"));
	mexpect(&m, 0, "ringlb_backend_active_connections", LWEB, BE("e1"));
	mexpect(&m, 0, "ringlb_backend_connect_errors_total", LWEB, BE("e1"));
	mexpect(&m, 1, "ringlb_backend_up", LWEB, BE("e1"));
	mexpect(&m, 0, "ringlb_backend_up", LWEB, BE("e2"));
	mexpect(&m, 1, "ringlb_backend_weight", LWEB, BE("e1"));
	/*
	 * Check durations, in seconds: a check ends by its 100 ms timeout,
	 * so none is above it but for scheduling (1 s allows for a loaded
	 * machine; a value in ms or us would be far above), and the black
	 * hole's last check took the whole timeout (ringlb keeps whole ms).
	 */
	for (int i = 0; i < 3; i++) {
		d = mval(&m, "ringlb_backend_check_duration_seconds", LWEB,
			 BE(bs[i]->name));
		ck_assert_msg(d >= 0 && d <= 1.0, "%s: check duration %g s, "
			      "timeout 0.1 s", bs[i]->name, d);
	}
	d = mval(&m, "ringlb_backend_check_duration_seconds", LWEB, BE("e3"));
	ck_assert_msg(d >= 0.090, "e3 (a black hole): last check took %g s, "
		      "its timeout is 0.1 s", d);
	for (size_t i = 0; i < 4; i++) {
		mexpect(&m, i == 0, "ringlb_backend_state", LWEB, BE("e1"),
			"state", states[i]);
		mexpect(&m, i == 1, "ringlb_backend_state", LWEB, BE("e2"),
			"state", states[i]);
	}
	for (int i = 0; i < m.n; i++)
		if (strcmp(m.s[i].name, "ringlb_worker_accepts_total") == 0) {
			wsum += m.s[i].value;
			nworkers++;
		}
	ck_assert_msg(nworkers == 2 && wsum == 5,
		      "%d worker samples summing to %g, listener accepted 5",
		      nworkers, wsum);
	st = api_ok("GET", "/status", NULL);
	mexpect(&m, (double)jint(st, "generation"), "ringlb_config_generation",
		NULL);
	json_decref(st);
	mexpect(&m, 0, "ringlb_reloads_total", "result", "ok");
	mexpect(&m, 0, "ringlb_reloads_total", "result", "error");
	metrics_free(&m);

	/* State lines follow the operator. */
	backend_set("e1", "drain", "draining");
	weight_set("e1", 5);
	metrics_get(&m);
	for (size_t i = 0; i < 4; i++)
		mexpect(&m, i == 2, "ringlb_backend_state", LWEB, BE("e1"),
			"state", states[i]);
	mexpect(&m, 5, "ringlb_backend_weight", LWEB, BE("e1"));
	metrics_free(&m);

	/*
	 * An open connection's bytes are counted while it is open (every
	 * tick), not only when it ends.  e1 is draining: make it ready.
	 */
	backend_set("e1", "ready", "up");
	{
		struct h_xfer x = { .tx_seed = 77, .tx_len = 1234,
				    .rx_seed = 77, .rx_len = 1234,
				    .timeout_ms = 5000 };
		int fd = h_connect("127.0.0.1", lport(c, 0), 3000);

		ck_assert_int_ge(fd, 0);
		ck_assert_msg(h_xfer(fd, &x) == 0, "open echo: %s", x.err);
		ck_assert_msg(lwait_int("web", "bytes_in", 5000 + 1234, 2000) &&
				      lwait_int("web", "bytes_out", 5000 + 1234,
						2000),
			      "bytes of an open connection not counted: %s",
			      last_body);
		ck_assert_int_eq(listener_int("web", "active"), 1);
		close(fd);
	}
	/* Its close adds nothing twice. */
	ck_assert_msg(lwait_int("web", "active", 0, 2000), "%s", last_body);
	ck_assert_int_eq(listener_int("web", "bytes_in"), 5000 + 1234);
	ck_assert_int_eq(listener_int("web", "bytes_out"), 5000 + 1234);
	json_decref(c);
}
END_TEST

/* ---- 12. the admin socket file ---- */

static unsigned
sock_mode(const char *path)
{
	struct stat sb;

	ck_assert_msg(stat(path, &sb) == 0, "stat %s: %s", path,
		      strerror(errno));
	ck_assert_msg(S_ISSOCK(sb.st_mode), "%s is not a socket", path);
	return sb.st_mode & 07777;
}

/* GET /status on path must answer and name cfg_path as its config. */
static void
assert_answers(const char *path, const char *cfg_path, const char *what)
{
	json_t *j = NULL;
	int status = api_at(path, "GET", "/status", NULL, &j, NULL);

	ck_assert_msg(status == 200 && json_is_object(j) &&
			      strcmp(jstr(j, "config"), cfg_path) == 0,
		      "%s: GET /status %d: %s", what, status, last_body);
	json_decref(j);
}

START_TEST(test_socket_file)
{
	struct h_backend a, *bs[] = { &a };
	json_t *c, *c2;
	struct h_lb lb, lb2, lb3, lb4;
	char path[160];
	unsigned mode;
	int rc;

	h_backend_up(&a, H_NAME, "app1");
	c = web(bs, 1);
	lb_up(&lb, c);
	snprintf(path, sizeof(path), "%s", sock);
	mode = sock_mode(path);
	ck_assert_msg(mode == 0600, "default socket mode %04o, want 0600",
		      mode);

	/* A second ringlb on the same socket must not steal it. */
	c2 = web(bs, 1);
	hc_set(c2, "admin.socket", json_string(path));
	ck_assert_int_eq(h_lb_mkdir(&lb2), 0);
	cfg_write(&lb2, c2);
	ck_assert_int_eq(h_lb_launch(&lb2, 0, NULL), 0);
	rc = h_lb_wait_exit(&lb2, 5000);
	assert_answers(path, lb.cfg_path, "first ringlb after a second one "
		       "started on its socket");
	ck_assert_msg(rc == 0, "a second ringlb configured with the socket of "
		      "a running one is still running after 5 s");
	ck_assert_msg(WIFEXITED(lb2.status) && WEXITSTATUS(lb2.status) == 1,
		      "second ringlb on a busy socket: status 0x%x, want exit "
		      "1", lb2.status);
	ck_assert_msg(h_lb_log_count(&lb2, "admin.sock") > 0,
		      "the second ringlb's error does not name the socket");
	ck_assert_msg(!h_port_listening(lport(c2, 0)),
		      "the failed second ringlb left port %d listening",
		      lport(c2, 0));
	ck_assert_int_eq(sock_mode(path), 0600);

	/* A stale socket file from a killed ringlb does not stop a start. */
	h_lb_signal(&lb, SIGKILL);
	ck_assert_int_eq(h_lb_wait_exit(&lb, 5000), 0);
	ck_assert_msg(access(path, F_OK) == 0, "SIGKILL removed the socket?");
	rc = h_lb_launch(&lb, lport(c, 0), NULL);
	ck_assert_msg(rc == 0, "restart over a stale socket: %s",
		      rc == -ECHILD ? "it exited" : strerror(-rc));
	ck_assert_msg(admin_wait(path, 5000) == 0,
		      "restarted ringlb does not answer on %s", path);
	assert_answers(path, lb.cfg_path, "ringlb restarted over a stale "
		       "socket");
	ck_assert_int_eq(sock_mode(path), 0600);

	/* admin is read at start only: a reload warns and keeps it. */
	hc_set(c, "admin.mode", json_string("0666"));
	cfg_write(&lb, c);
	{
		json_t *j = NULL;
		int status = api_at(path, "POST", "/reload", NULL, &j, NULL);

		ck_assert_msg(status == 200, "reload changing admin.mode: %d "
			      "%s", status, last_body);
		json_decref(j);
	}
	ck_assert_msg(sock_mode(path) == 0600, "a reload changed the socket "
		      "mode to %04o", sock_mode(path));
	ck_assert_msg(h_lb_log_wait(&lb, 1, 2000, " warn ", "admin"),
		      "no warning that admin changes need a restart");

	/* "mode" is honoured. */
	json_decref(c2);
	c2 = web(bs, 1);
	hc_set(c2, "admin.mode", json_string("0660"));
	lb_up(&lb3, c2);
	mode = sock_mode(sock);
	ck_assert_msg(mode == 0660, "socket mode %04o with \"mode\": \"0660\"",
		      mode);
	assert_answers(sock, lb3.cfg_path, "ringlb with mode 0660");

	/* "enabled": false: no socket at all. */
	json_decref(c2);
	c2 = web(bs, 1);
	hc_set(c2, "admin.enabled", json_false());
	ck_assert_int_eq(h_lb_mkdir(&lb4), 0);
	cfg_write(&lb4, c2);
	rc = h_lb_launch(&lb4, lport(c2, 0), NULL);
	ck_assert_msg(rc == 0, "ringlb with the admin API off: %s",
		      rc == -ECHILD ? "it exited" : strerror(-rc));
	snprintf(path, sizeof(path), "%s/admin.sock", lb4.dir);
	h_sleep_ms(200);
	ck_assert_msg(access(path, F_OK) < 0, "admin.enabled false, yet %s "
		      "exists", path);
	json_decref(c);
	json_decref(c2);
}
END_TEST

/* ---- 13. a slow admin client ---- */

START_TEST(test_slow_admin_client)
{
	struct h_backend a, b, *bs[] = { &a, &b };
	json_t *c;
	struct h_lb lb;
	int slow[3], counts[2];
	uint64_t t0;
	json_t *j;

	h_backend_up(&a, H_NAME, "app1");
	h_backend_up(&b, H_NAME, "app2");
	c = web(bs, 2);
	lb_up(&lb, c);
	/* Half a request, a request line only, and nothing at all. */
	for (int i = 0; i < 3; i++) {
		static const char *const part[] = {
			"GET /status HTTP/1.1\r\nHo", "GET /metr", "" };

		slow[i] = h_unix_connect(sock, 2000);
		ck_assert_int_ge(slow[i], 0);
		if (part[i][0] != '\0')
			ck_assert_int_eq(h_write_all(slow[i], part[i],
						     strlen(part[i]), 2000),
					 0);
	}
	h_sleep_ms(200);
	t0 = h_now_ms();
	spread(lport(c, 0), 10, bs, 2, counts);
	ck_assert_msg(counts[0] == 5, "traffic with slow admin clients: %d/%d",
		      counts[0], counts[1]);
	j = api_ok("GET", "/status", NULL);
	json_decref(j);
	backend_set("app1", "drain", "draining");
	backend_set("app1", "ready", "up");
	ck_assert_msg(h_now_ms() - t0 < 3000, "with slow admin clients open, "
		      "10 connections and 3 admin requests took %llu ms",
		      (unsigned long long)(h_now_ms() - t0));
	for (int i = 0; i < 3; i++)
		close(slow[i]);
	ck_assert(h_lb_running(&lb));
	json_decref(c);
}
END_TEST

/* ---- 14. the optional TCP admin listener ---- */

START_TEST(test_admin_tcp)
{
	struct h_backend a, *bs[] = { &a };
	json_t *c;
	struct h_lb lb;
	struct h_http r;
	char extra[96];
	json_t *j;
	json_error_t e;
	int port = h_free_port(), rc;

	h_backend_up(&a, H_NAME, "app1");
	c = web(bs, 1);
	snprintf(extra, sizeof(extra), "127.0.0.1:%d", port);
	hc_set(c, "admin.listen", json_string(extra));
	lb_up(&lb, c);
	rc = h_http(NULL, "127.0.0.1", port, "GET", "/status", NULL, 5000, &r);
	ck_assert_msg(rc == 0, "GET /status over TCP 127.0.0.1:%d: %s", port,
		      strerror(-rc));
	ck_assert_msg(r.status == 200, "GET /status over TCP: %d: %s",
		      r.status, r.body);
	j = json_loads(r.body, 0, &e);
	ck_assert_msg(json_is_object(j) &&
			      strcmp(jstr(j, "config"), lb.cfg_path) == 0 &&
			      by_name(jarr(j, "listeners"), "web") != NULL,
		      "GET /status over TCP: %s", r.body);
	json_decref(j);
	h_http_free(&r);
	j = api_ok("GET", "/status", NULL);
	json_decref(j);
	json_decref(c);
}
END_TEST

static Suite *
admin_suite(void)
{
	Suite *s = suite_create("admin");
	TCase *tc;

	tc = h_tcase(s, "api", 60, h_teardown);
	tcase_add_test(tc, test_api_basics);
	tcase_add_test(tc, test_ctl_verbs);
	tcase_add_test(tc, test_metrics);

	tc = h_tcase(s, "states", 60, h_teardown);
	tcase_add_test(tc, test_drain_open);
	tcase_add_test(tc, test_drain_wait);
	tcase_add_test(tc, test_drain_timeout);
	tcase_add_test(tc, test_maint_health);
	tcase_add_test(tc, test_weight);

	tc = h_tcase(s, "reload", 90, h_teardown);
	tcase_add_test(tc, test_reload_valid);
	tcase_add_test(tc, test_checks_off_and_marks);
	tcase_add_test(tc, test_reload_invalid);
	tcase_add_test(tc, test_reload_under_load);

	tc = h_tcase(s, "socket", 60, h_teardown);
	tcase_add_test(tc, test_socket_file);
	tcase_add_test(tc, test_slow_admin_client);
	tcase_add_test(tc, test_admin_tcp);
	return s;
}

int
main(void)
{
	const char *ctl = h_ctl_bin();

	if (ctl == NULL || access(ctl, X_OK) != 0) {
		fprintf(stderr, "check_admin: no ringlbctl executable next to "
			"%s (set RINGLBCTL_BIN): %s\n", h_lb_bin(),
			strerror(errno));
		return 1;
	}
	/* Absolute, for children that run elsewhere. */
	setenv("RINGLBCTL_BIN", ctl, 1);
	return h_run_suite("check_admin", admin_suite());
}

/*
 * check_upgrade.c: handing over to a new binary, against the real one.
 *
 * Under a steady load of new connections (a thread connecting in a loop)
 * and with 50 long-lived echo streams open, `ringlbctl upgrade` starts a
 * new process that takes over the listening and admin sockets and the
 * established connections: no connect fails, drain states and runtime
 * weights are the same after it, every stream stays byte-exact (ten of
 * them busy while it happens) and still echoes once the old process has
 * exited 0.  A stream the old process holds bytes of stays there; a
 * half-closed one, a split's and the conn= ids go over.  Ten upgrades in
 * a row under load; SIGUSR2; and the failures (a binary that exits at
 * once, one that hangs, a config the new process rejects), after each of
 * which the old process serves on as before.
 *
 * The test process is a child subreaper: a new ringlb, started by the
 * old one, becomes its child once the old one exits.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "h_private.h"
#include "upgrade.h"
#include "version.h"

/* ---- a steady load of new connections ---- */

struct load {
	pthread_t t;
	int port;
	atomic_bool stop;
	atomic_uint ok;
	atomic_uint failed;
	uint64_t t0;
	char first_error[160];
};

static void *
load_run(void *arg)
{
	struct load *l = arg;

	while (!atomic_load(&l->stop)) {
		char name[16];
		uint64_t t0 = h_now_ms();
		/*
		 * A failed connect is refused, reset, or never served; a slow
		 * one on a loaded machine (sanitizers, 2 cores) is none of
		 * those: 10 s before calling it failed.
		 */
		int fd = h_connect("127.0.0.1", l->port, 10000), rc = fd;
		int cport = fd >= 0 ? h_local_port(fd) : 0;

		if (fd >= 0) {
			rc = h_read_line(fd, name, sizeof(name), 10000);
			close(fd);
		}
		if (rc >= 0) {
			atomic_fetch_add(&l->ok, 1);
		} else if (atomic_fetch_add(&l->failed, 1) == 0) {
			snprintf(l->first_error, sizeof(l->first_error),
				 "%s %s, client port %d, %llu ms after the "
				 "load began",
				 fd < 0 ? "connect" : "reading the name:",
				 strerror(-rc), cport,
				 (unsigned long long)(t0 - l->t0));
		}
	}
	return NULL;
}

static void
load_start(struct load *l, int port)
{
	memset(l, 0, sizeof(*l));
	l->port = port;
	l->t0 = h_now_ms();
	ck_assert_int_eq(pthread_create(&l->t, NULL, load_run, l), 0);
	/* Running before anything happens. */
	while (atomic_load(&l->ok) < 20 && atomic_load(&l->failed) == 0)
		h_sleep_ms(5);
}

static void
load_stop(struct load *l)
{
	atomic_store(&l->stop, true);
	pthread_join(l->t, NULL);
	ck_assert_msg(atomic_load(&l->failed) == 0,
		      "%u of %u connects failed (first: %s)",
		      atomic_load(&l->failed),
		      atomic_load(&l->ok) + atomic_load(&l->failed),
		      l->first_error);
	ck_assert_uint_gt(atomic_load(&l->ok), 100);
}

/* ---- helpers ---- */

/* Listener "l" over name-sending a and b, "e" over echo backend e. */
static json_t *
up_cfg(struct h_backend *a, struct h_backend *b, struct h_backend *e)
{
	json_t *cfg = hc_new(), *l;

	hc_set(cfg, "shutdown_grace_ms", json_integer(60000));
	l = hc_listener(cfg, "l", 0);
	hc_set(l, "health_check", hc_json("{ \"enabled\": false }"));
	hc_backend(l, a, 1);
	hc_backend(l, b, 1);
	if (e) {
		l = hc_listener(cfg, "e", 0);
		hc_set(l, "health_check", hc_json("{ \"enabled\": false }"));
		hc_backend(l, e, 1);
	}
	return cfg;
}

/*
 * A new ringlb outlives the old one: make it our child then.  Per test
 * (the attribute does not pass to a forked child).
 */
static void
subreaper(void)
{
	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
}

static int
port_of(const json_t *cfg, int i)
{
	return hc_port(json_array_get(json_object_get(cfg, "listeners"),
				      (size_t)i));
}

/* POST /upgrade (binary may be NULL): the new pid, tracked for cleanup. */
static pid_t
upgrade(const struct h_lb *lb)
{
	json_t *j = h_api(lb, "POST", "/upgrade", NULL, 200);
	pid_t pid = (pid_t)h_jint(j, "pid");

	json_decref(j);
	ck_assert_int_gt(pid, 0);
	ck_assert_int_ne(pid, lb->pid);
	h_track_pid(pid);
	return pid;
}

/*
 * ringlbctl upgrade, which must succeed: the new pid (tracked) and how
 * many connections it says were handed over and left.
 */
static pid_t
ctl_upgrade(const struct h_lb *lb, int *handed, int *left, char *out,
	    size_t size)
{
	struct h_run *r = h_ctl(lb, "upgrade");
	size_t n;
	int pid;

	ck_assert_msg(WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0,
		      "ringlbctl upgrade: %s", r->err);
	ck_assert_int_eq(sscanf(r->out, "upgraded: pid %d serves; %d "
				"connections handed over, %d left",
				&pid, handed, left),
			 3);
	n = strnlen(r->out, size - 1);
	memcpy(out, r->out, n);
	out[n] = '\0';
	free(r);
	h_track_pid(pid);
	return pid;
}

/* lb now stands for the new process (same dir, socket and log). */
static void
follow(struct h_lb *lb, pid_t pid)
{
	ck_assert_int_eq(h_lb_wait_exit(lb, 10000), 0);
	ck_assert_msg(WIFEXITED(lb->status) && WEXITSTATUS(lb->status) == 0,
		      "the old process: status %d", lb->status);
	lb->pid = pid;
	lb->status = 0;
}

static void
echo_round(int fd, int i, int round)
{
	char out[64], in[64];
	int n = snprintf(out, sizeof(out), "stream %d round %d\n", i, round);

	ck_assert_int_eq(h_write_all(fd, out, (size_t)n, 3000), 0);
	ck_assert_int_ge(h_read_line(fd, in, sizeof(in), 3000), 0);
	ck_assert_msg(strncmp(in, out, (size_t)n - 1) == 0 &&
			      strlen(in) == (size_t)n - 1,
		      "stream %d: sent \"%.*s\", got \"%s\"", i, n - 1, out,
		      in);
}

/* Echo rounds on some streams, in a thread, while an upgrade runs. */
struct pinger {
	pthread_t t;
	int *fds;
	int n;
	atomic_bool stop;
	unsigned rounds;
	char err[200];
};

static void *
pinger_run(void *arg)
{
	struct pinger *p = arg;

	for (unsigned r = 100; !atomic_load(&p->stop) && !p->err[0]; r++) {
		for (int i = 0; i < p->n && !p->err[0]; i++) {
			char out[64], in[64];
			int n = snprintf(out, sizeof(out), "stream %d busy %u\n",
					 i, r);

			if (h_write_all(p->fds[i], out, (size_t)n, 5000) < 0 ||
			    h_read_line(p->fds[i], in, sizeof(in), 5000) < 0)
				snprintf(p->err, sizeof(p->err),
					 "stream %d, round %u: no echo", i, r);
			else if (strlen(in) != (size_t)n - 1 ||
				 strncmp(in, out, (size_t)n - 1) != 0)
				snprintf(p->err, sizeof(p->err),
					 "stream %d: sent \"%.*s\", got \"%s\"",
					 i, n - 1, out, in);
		}
		p->rounds++;
	}
	return NULL;
}

START_TEST(upgrade_under_load)
{
	struct h_backend a, b, e;
	struct pinger busy = { 0 };
	struct load load;
	struct h_lb lb;
	char said[256];
	int fds[50], port, handed, left;
	json_t *cfg, *j;
	pid_t oldpid, pid;
	char want[64];

	subreaper();
	h_backend_up(&a, H_NAME, "a");
	h_backend_up(&b, H_NAME, "b");
	h_backend_up(&e, H_ECHO, "e");
	cfg = up_cfg(&a, &b, &e);
	port = port_of(cfg, 0);
	ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, port, NULL), 0);
	oldpid = lb.pid;
	j = h_api(&lb, "POST", "/pools/l/backends/a/drain", NULL, 200);
	json_decref(j);
	j = h_api(&lb, "PUT", "/pools/l/backends/b/weight",
		  "{\"weight\": 7}", 200);
	json_decref(j);
	for (int i = 0; i < 50; i++) {
		fds[i] = h_connect("127.0.0.1", port_of(cfg, 1), 3000);
		ck_assert_int_ge(fds[i], 0);
		echo_round(fds[i], i, 0);
	}
	load_start(&load, port);
	/* Ten streams keep echoing through the upgrade. */
	busy.fds = fds;
	busy.n = 10;
	ck_assert_int_eq(pthread_create(&busy.t, NULL, pinger_run, &busy), 0);
	while (busy.rounds < 3 && !busy.err[0])
		h_sleep_ms(5);
	pid = ctl_upgrade(&lb, &handed, &left, said, sizeof(said));
	ck_assert_int_ne(pid, oldpid);
	/*
	 * The 50 streams went over, busy or not; load clients the old one
	 * had just taken may go either way (they end at once).
	 */
	ck_assert_msg(handed >= 50 && handed + left <= 60, "%s", said);
	h_sleep_ms(300);
	atomic_store(&busy.stop, true);
	pthread_join(busy.t, NULL);
	ck_assert_msg(!busy.err[0], "%s", busy.err);
	load_stop(&load);
	/* The new process answers the admin socket, with the same states. */
	j = h_api(&lb, "GET", "/pools/l", NULL, 200);
	ck_assert_str_eq(h_jstr(j, "backends.0.admin"), "drain");
	ck_assert_int_eq(h_jint(j, "backends.1.weight"), 7);
	json_decref(j);
	snprintf(want, sizeof(want), "upgrade: pid %d serves", (int)pid);
	ck_assert_int_eq(h_lb_log_count(&lb, want), 1);
	ck_assert_int_ge(h_lb_log_count(&lb, "end=handed-over"), 50);
	/* The old process has nothing left: it exits 0 by itself. */
	follow(&lb, pid);
	/* Only the new process is left: the streams go on through it. */
	ck_assert_int_eq(kill(oldpid, 0), -1);
	for (int i = 0; i < 50; i++)
		echo_round(fds[i], i, 1);
	j = h_api(&lb, "GET", "/listeners/e", NULL, 200);
	ck_assert_int_eq(h_jint(j, "active"), 50);
	json_decref(j);
	for (int i = 0; i < 50; i++)
		close(fds[i]);
	/* The new one serves, and is the one that stops. */
	{
		char name[16];

		ck_assert_int_eq(h_get_name("127.0.0.1", port, name,
					    sizeof(name), NULL),
				 0);
		ck_assert_str_eq(name, "b");
	}
	h_lb_signal(&lb, SIGTERM);
	ck_assert_int_eq(h_lb_wait_exit(&lb, 10000), 0);
	json_decref(cfg);
}
END_TEST

START_TEST(ten_upgrades)
{
	struct h_backend a, b;
	struct load load;
	struct h_lb lb;
	json_t *cfg, *j;
	int port;

	subreaper();
	h_backend_up(&a, H_NAME, "a");
	h_backend_up(&b, H_NAME, "b");
	cfg = up_cfg(&a, &b, NULL);
	port = port_of(cfg, 0);
	ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, port, NULL), 0);
	j = h_api(&lb, "PUT", "/pools/l/backends/a/weight", "{\"weight\": 3}",
		  200);
	json_decref(j);
	load_start(&load, port);
	for (int i = 0; i < 10; i++) {
		pid_t pid = upgrade(&lb);

		follow(&lb, pid);
	}
	load_stop(&load);
	j = h_api(&lb, "GET", "/pools/l/backends/a", NULL, 200);
	ck_assert_int_eq(h_jint(j, "weight"), 3);
	json_decref(j);
	ck_assert_int_eq(h_lb_log_count(&lb, "ringlb started"), 11);
	json_decref(cfg);
}
END_TEST

START_TEST(upgrade_by_signal)
{
	struct h_backend a, b;
	struct h_lb lb;
	json_t *cfg;
	char *line;
	int port, pid = 0;

	subreaper();
	h_backend_up(&a, H_NAME, "a");
	h_backend_up(&b, H_NAME, "b");
	cfg = up_cfg(&a, &b, NULL);
	port = port_of(cfg, 0);
	ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, port, NULL), 0);
	h_lb_signal(&lb, SIGUSR2);
	ck_assert(h_lb_log_wait(&lb, 1, 10000, "upgrade: pid ", " serves"));
	line = h_lb_log_line(&lb, "upgrade: pid ", " serves");
	ck_assert_ptr_nonnull(line);
	ck_assert_int_eq(sscanf(strstr(line, "upgrade: pid "),
				"upgrade: pid %d", &pid),
			 1);
	free(line);
	h_track_pid(pid);
	follow(&lb, pid);
	{
		char name[16];

		ck_assert_int_eq(h_get_name("127.0.0.1", port, name,
					    sizeof(name), NULL),
				 0);
	}
	json_decref(cfg);
}
END_TEST

/* GET /ready in a loop, as a routing daemon's health hook would. */
struct prober {
	pthread_t t;
	char sock[160];
	atomic_bool stop;
	atomic_uint ok, not_ok, failed;
	char first[200];
};

static void *
prober_run(void *arg)
{
	struct prober *p = arg;

	while (!atomic_load(&p->stop)) {
		struct h_http r;
		int rc = h_http(p->sock, NULL, 0, "GET", "/ready", NULL, 5000,
				&r);

		if (rc == 0 && r.status == 200) {
			atomic_fetch_add(&p->ok, 1);
		} else if (atomic_fetch_add(rc == 0 ? &p->not_ok : &p->failed,
					    1) == 0 &&
			   !p->first[0]) {
			snprintf(p->first, sizeof(p->first), "%d %s", rc,
				 rc == 0 ? r.body : strerror(-rc));
		}
		if (rc == 0)
			h_http_free(&r);
		h_sleep_ms(2);
	}
	return NULL;
}

/*
 * GET /ready on a kept (keep-alive) connection: the status, and whether
 * the reply says Connection: close; the reply into out.  -1 if the
 * connection was closed (the old process went away).
 */
static int
ready_kept(int fd, bool *closes, char *out, size_t size)
{
	static const char req[] = "GET /ready HTTP/1.1\r\nHost: x\r\n\r\n";
	size_t n = 0;
	char *body;
	int status = 0, len = -1;

	if (h_write_all(fd, req, sizeof(req) - 1, 3000) != 0)
		return -1;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;

		ck_assert_msg(poll(&p, 1, 3000) == 1, "no reply on the kept "
			      "connection");
		r = read(fd, out + n, size - 1 - n);
		if (r <= 0)
			return -1;
		n += (size_t)r;
		out[n] = '\0';
		body = strstr(out, "\r\n\r\n");
		if (body && len < 0) {
			const char *cl = strcasestr(out, "Content-Length:");

			ck_assert_ptr_nonnull(cl);
			len = atoi(cl + 15);
		}
		if (body && strlen(body + 4) >= (size_t)len)
			break;
	}
	ck_assert_int_eq(sscanf(out, "HTTP/1.1 %d", &status), 1);
	*closes = strcasestr(out, "Connection: close") != NULL;
	return status;
}

/*
 * An upgrade is no reason for a routing daemon to withdraw: GET /ready
 * says 200 all through it.  A withdrawn instance stays withdrawn in the
 * new process.
 */
START_TEST(ready_across_upgrade)
{
	struct h_backend a, b;
	struct prober pr = { 0 };
	struct h_lb lb;
	int port, handed, left;
	char said[256];
	json_t *cfg, *j;

	subreaper();
	h_backend_up(&a, H_NAME, "a");
	h_backend_up(&b, H_NAME, "b");
	cfg = up_cfg(&a, &b, NULL);
	port = port_of(cfg, 0);
	ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, port, NULL), 0);
	snprintf(pr.sock, sizeof(pr.sock), "%s/admin.sock", lb.dir);
	ck_assert_int_eq(pthread_create(&pr.t, NULL, prober_run, &pr), 0);
	while (atomic_load(&pr.ok) < 10 && !pr.first[0])
		h_sleep_ms(5);
	{
		/* A hook that keeps its connection (ringlbctl watch-ready):
		 * the old process answers on it once more, 200, and closes. */
		char sock[200], reply[2048];
		bool closes;
		int kept;

		snprintf(sock, sizeof(sock), "%s/admin.sock", lb.dir);
		kept = h_unix_connect(sock, 3000);
		ck_assert_int_ge(kept, 0);
		ck_assert_int_eq(ready_kept(kept, &closes, reply,
					    sizeof(reply)),
				 200);
		ck_assert_msg(!closes, "%s", reply);
		pid_t pid = ctl_upgrade(&lb, &handed, &left, said,
					sizeof(said));
		int st = ready_kept(kept, &closes, reply, sizeof(reply));

		/* Either the old process answers, or it is gone already. */
		ck_assert_msg(st == -1 || (st == 200 && closes &&
					   strstr(reply, "handed-over")),
			      "GET /ready on a kept connection after the "
			      "upgrade: %d: %s", st, reply);
		fprintf(stderr, "ready_across_upgrade: the kept connection: "
			"%s\n", st == 200 ? "200 handed-over, closed" :
					    "closed");
		close(kept);
		follow(&lb, pid);
	}
	h_sleep_ms(200);
	atomic_store(&pr.stop, true);
	pthread_join(pr.t, NULL);
	ck_assert_msg(atomic_load(&pr.not_ok) == 0 &&
			      atomic_load(&pr.failed) == 0,
		      "GET /ready during an upgrade: %u x 200, %u other, %u "
		      "failed (first: %s)",
		      atomic_load(&pr.ok), atomic_load(&pr.not_ok),
		      atomic_load(&pr.failed), pr.first);
	ck_assert_uint_gt(atomic_load(&pr.ok), 20);

	json_decref(h_api(&lb, "POST", "/withdraw", NULL, 200));
	follow(&lb, ctl_upgrade(&lb, &handed, &left, said, sizeof(said)));
	j = h_api(&lb, "GET", "/ready", NULL, 503);
	ck_assert_str_eq(h_jstr(j, "state"), "withdrawn");
	json_decref(j);
	{
		char name[16];

		ck_assert_int_eq(h_get_name("127.0.0.1", port, name,
					    sizeof(name), NULL),
				 0);
	}
	json_decref(h_api(&lb, "POST", "/rejoin", NULL, 200));
	json_decref(h_api(&lb, "GET", "/ready", NULL, 200));
	json_decref(cfg);
}
END_TEST

/* A listening socket on 127.0.0.1 for a backend the test plays itself. */
static int
test_backend(struct h_backend *b, const char *name)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(l, 0);
	ck_assert_int_eq(bind(l, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(l, 8), 0);
	ck_assert_int_eq(getsockname(l, (struct sockaddr *)&sin, &len), 0);
	memset(b, 0, sizeof(*b));
	snprintf(b->name, sizeof(b->name), "%s", name);
	b->port = ntohs(sin.sin_port);
	return l;
}

/* Fill what the way from fd holds: write until a write would block. */
static void
fill(int fd)
{
	static char junk[65536];
	long total = 0;

	for (int i = 0; i < 100000; i++) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		ssize_t n;

		if (poll(&p, 1, 500) != 1)
			break;	/* half a second without room: full */
		n = send(fd, junk, sizeof(junk), MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno != EAGAIN)
			break;
		total += n > 0 ? n : 0;
	}
	ck_assert_int_gt(total, 65536);
}

/*
 * A health hook (ringlbctl watch-ready) through an upgrade whose hand-over
 * window stays open (a stalled stream the old process holds bytes of):
 * the old process is busy with POST /upgrade all that time, so the hook's
 * kept connection gets no answer; asked again on a new connection, the
 * new process answers, and the hook never runs --down.
 */
START_TEST(hook_through_long_handover)
{
	struct h_backend a, b, st;
	struct h_lb lb;
	char sock[200], up[300], down[300], file[200], log[200], said[256];
	char *text;
	bool up_seen = false;
	const char *argv[] = { h_ctl_bin(), "-s", sock, "watch-ready", "--up",
			       up, "--down", down, NULL };
	json_t *cfg, *l;
	int stall, handed, left, st_;
	pid_t hook, pid;

	subreaper();
	h_backend_up(&a, H_NAME, "a");
	h_backend_up(&b, H_NAME, "b");
	h_backend_up(&st, H_STALL, "st");
	cfg = up_cfg(&a, &b, NULL);
	hc_set(cfg, "upgrade", hc_json("{ \"handover_ms\": 1500 }"));
	hc_set(cfg, "shutdown_grace_ms", json_integer(1000));
	l = hc_listener(cfg, "stall", 0);
	hc_set(l, "health_check", hc_json("{ \"enabled\": false }"));
	hc_backend(l, &st, 1);
	ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, port_of(cfg, 0), NULL), 0);
	snprintf(sock, sizeof(sock), "%s/admin.sock", lb.dir);
	snprintf(file, sizeof(file), "%s/said", lb.dir);
	snprintf(log, sizeof(log), "%s/watch.log", lb.dir);
	snprintf(up, sizeof(up), "echo up >> %s", file);
	snprintf(down, sizeof(down), "echo down >> %s", file);
	hook = h_spawn(argv, log);
	ck_assert_int_gt(hook, 0);
	while (!h_lb_log_count(&lb, "ringlb started"))
		h_sleep_ms(10);
	for (int i = 0; i < 300; i++) {
		text = h_read_file(log);
		up_seen = text && strstr(text, "up: ready");
		free(text);
		if (up_seen)
			break;
		h_sleep_ms(10);
	}
	ck_assert_msg(up_seen, "watch-ready never said up");

	stall = h_connect("127.0.0.1", port_of(cfg, 1), 3000);
	ck_assert_int_ge(stall, 0);
	fill(stall);
	pid = ctl_upgrade(&lb, &handed, &left, said, sizeof(said));
	ck_assert_msg(left == 1, "%s", said);
	h_sleep_ms(500);
	kill(hook, SIGTERM);
	ck_assert_int_eq(h_wait_pid(hook, 3000, &st_), 0);
	text = h_read_file(log);
	ck_assert_ptr_nonnull(text);
	ck_assert_msg(strstr(text, "down: not ready") == NULL,
		      "the hook withdrew during the upgrade:\n%s", text);
	free(text);
	close(stall);
	follow(&lb, pid);
	json_decref(cfg);
}
END_TEST

/*
 * What goes over and what stays: a stream whose bytes the old process
 * holds (its backend never reads) stays and ends there, within
 * shutdown_grace_ms; a half-closed one goes over and finishes in the new
 * process; a split's keeps its side's count, and its conn= id.
 */
START_TEST(handover_what_goes)
{
	struct h_backend v1, v2, t, st;
	struct h_lb lb;
	char said[256];
	char buf[64], id[40], *line;
	int tl, bk, half, stall, split, port, handed, left;
	json_t *cfg, *l, *p, *j;
	pid_t oldpid, pid;

	subreaper();
	h_backend_up(&v1, H_ECHO, "v1");
	h_backend_up(&v2, H_ECHO, "v2");
	h_backend_up(&st, H_STALL, "st");
	tl = test_backend(&t, "t");
	cfg = hc_new();
	hc_set(cfg, "upgrade", hc_json("{ \"handover_ms\": 500 }"));
	hc_set(cfg, "shutdown_grace_ms", json_integer(1500));
	/* "s": a split, all of it to v2 (weight 0 for v1). */
	p = hc_pool(cfg, "v1");
	hc_set(p, "health_check", hc_json("{ \"enabled\": false }"));
	hc_backend(p, &v1, 1);
	p = hc_pool(cfg, "v2");
	hc_set(p, "health_check", hc_json("{ \"enabled\": false }"));
	hc_backend(p, &v2, 1);
	l = hc_listener(cfg, "s", 0);
	hc_set(l, "split", hc_json("[{ \"pool\": \"v1\", \"weight\": 0 }, "
				   "{ \"pool\": \"v2\", \"weight\": 1 }]"));
	l = hc_listener(cfg, "half", 0);
	hc_set(l, "health_check", hc_json("{ \"enabled\": false }"));
	hc_backend(l, &t, 1);
	l = hc_listener(cfg, "stall", 0);
	hc_set(l, "health_check", hc_json("{ \"enabled\": false }"));
	hc_backend(l, &st, 1);
	port = port_of(cfg, 0);
	ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, port, NULL), 0);
	oldpid = lb.pid;

	split = h_connect("127.0.0.1", port, 3000);
	ck_assert_int_ge(split, 0);
	ck_assert_int_eq(h_write_all(split, "one\n", 4, 3000), 0);
	ck_assert_int_ge(h_read_line(split, buf, sizeof(buf), 3000), 0);
	ck_assert_str_eq(buf, "one");
	/* Half-closed: the client is done sending, the backend is not. */
	half = h_connect("127.0.0.1", port_of(cfg, 1), 3000);
	ck_assert_int_ge(half, 0);
	bk = accept(tl, NULL, NULL);
	ck_assert_int_ge(bk, 0);
	ck_assert_int_eq(h_write_all(half, "bye\n", 4, 3000), 0);
	ck_assert_int_eq(shutdown(half, SHUT_WR), 0);
	{
		long got = 0;

		/* Its bytes and its EOF reached the backend. */
		ck_assert_int_eq(h_read_all(bk, buf, sizeof(buf), 3000, &got),
				 4);
	}
	/* Stalled: the old process holds bytes it cannot pass on. */
	stall = h_connect("127.0.0.1", port_of(cfg, 2), 3000);
	ck_assert_int_ge(stall, 0);
	fill(stall);
	h_sleep_ms(100);

	pid = ctl_upgrade(&lb, &handed, &left, said, sizeof(said));
	ck_assert_msg(handed == 2 && left == 1, "%s", said);
	/* The split's connection counts on its side in the new process. */
	j = h_api(&lb, "GET", "/listeners/s/split", NULL, 200);
	ck_assert_int_eq(h_jint(j, "sides.1.active"), 1);
	ck_assert_int_eq(h_jint(j, "sides.0.active"), 0);
	json_decref(j);
	/* The stalled one keeps the old process up, until the grace ends. */
	ck_assert_int_eq(kill(oldpid, 0), 0);
	follow(&lb, pid);
	ck_assert_int_eq(h_lb_log_count(&lb, "listener=stall", "end=shutdown"),
			 1);
	close(stall);
	/* After the old process: the half-closed one, backend to client. */
	ck_assert_int_eq(h_write_all(bk, "late\n", 5, 3000), 0);
	ck_assert_int_ge(h_read_line(half, buf, sizeof(buf), 3000), 0);
	ck_assert_str_eq(buf, "late");
	close(bk);
	{
		long got = 0;

		ck_assert_int_eq(h_read_all(half, buf, sizeof(buf), 3000, &got),
				 0);
	}
	close(half);
	/* The split's stream echoes, and ends under the id it began with. */
	ck_assert_int_eq(h_write_all(split, "two\n", 4, 3000), 0);
	ck_assert_int_ge(h_read_line(split, buf, sizeof(buf), 3000), 0);
	ck_assert_str_eq(buf, "two");
	close(split);
	line = h_lb_log_line(&lb, "listener=s ", "end=handed-over");
	ck_assert_ptr_nonnull(line);
	ck_assert_int_eq(sscanf(strstr(line, "conn="), "conn=%20s", id), 1);
	free(line);
	strcat(id, " ");
	ck_assert(h_lb_log_wait(&lb, 1, 3000, id, "listener=s ",
				"end=closed"));
	ck_assert(h_lb_log_wait(&lb, 1, 3000, "listener=half ",
				"end=closed"));
	close(tl);
	json_decref(cfg);
}
END_TEST

/* An upgrade to binary fails with want; the old process serves on. */
static void
fails_with(struct h_lb *lb, int port, const char *binary, const char *want)
{
	struct h_run *r;
	char name[16];

	if (binary)
		r = h_ctl(lb, "upgrade", "--binary", binary);
	else
		r = h_ctl(lb, "upgrade");
	ck_assert_msg(WIFEXITED(r->status) && WEXITSTATUS(r->status) == 1,
		      "ringlbctl upgrade: status %d, %s", r->status, r->out);
	ck_assert_msg(strstr(r->err, want), "ringlbctl upgrade said: %s",
		      r->err);
	free(r);
	ck_assert(h_lb_running(lb));
	ck_assert_int_eq(h_get_name("127.0.0.1", port, name, sizeof(name),
				    NULL),
			 0);
}

START_TEST(upgrade_failures)
{
	struct h_backend a, b;
	struct h_lb lb;
	char dir[64], hang[128];
	json_t *cfg, *j;
	int port;

	subreaper();
	h_backend_up(&a, H_NAME, "a");
	h_backend_up(&b, H_NAME, "b");
	cfg = up_cfg(&a, &b, NULL);
	port = port_of(cfg, 0);
	ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, port, NULL), 0);
	/* Exits at once. */
	fails_with(&lb, port, "/bin/false", "false (pid ");
	fails_with(&lb, port, "/bin/false",
		   "exited with status 1 before it was ready; this process "
		   "goes on serving");
	/* Never answers: killed after 10 s. */
	ck_assert_int_eq(h_tempdir(dir, sizeof(dir)), 0);
	snprintf(hang, sizeof(hang), "%s/hang", dir);
	ck_assert_int_eq(h_write_file(hang, "#!/bin/sh\nexec sleep 60\n"), 0);
	ck_assert_int_eq(chmod(hang, 0755), 0);
	fails_with(&lb, port, hang,
		   "was not ready within 10000 ms; it was killed, and this "
		   "process goes on serving");
	/* The new process rejects the config: its own error line. */
	ck_assert_int_eq(h_write_file(lb.cfg_path, "{ \"listeners\": [] }"),
			 0);
	fails_with(&lb, port, NULL,
		   "upgrade: the new process failed: ");
	fails_with(&lb, port, NULL, "listeners: ");
	/* Not a file at all. */
	{
		struct h_run *r = h_ctl(&lb, "upgrade", "--binary",
					"/nonexistent/ringlb");

		ck_assert(WIFEXITED(r->status) && WEXITSTATUS(r->status) == 1);
		free(r);
	}
	j = h_api(&lb, "POST", "/upgrade", "{\"binary\": \"ringlb\"}", 400);
	ck_assert_str_eq(h_jstr(j, "error"),
			 "\"binary\" must be an absolute path");
	json_decref(j);
	j = h_api(&lb, "POST", "/upgrade", "{\"bin\": 1}", 400);
	json_decref(j);
	/* Still the one process, still serving; no process left behind. */
	ck_assert(h_lb_running(&lb));
	ck_assert_int_eq(h_lb_log_count(&lb, "ringlb started"), 1);
	json_decref(cfg);
}
END_TEST

/* Did a client from src get a backend's name through port? */
static bool
served_from(const char *src, int port)
{
	char name[16];
	int fd = h_connect_from(src, "127.0.0.1", port, 3000), rc;

	/* A refusal may reset the handshake's last step already. */
	if (fd < 0)
		return false;
	rc = h_read_line(fd, name, sizeof(name), 3000);
	close(fd);
	return rc > 0;
}

/* A source's rate bucket goes on across an upgrade: no fresh burst. */
START_TEST(rate_bucket_carried)
{
	struct h_backend a, b;
	struct h_lb lb;
	json_t *cfg;
	pid_t pid;
	int port;

	subreaper();
	h_backend_up(&a, H_NAME, "a");
	h_backend_up(&b, H_NAME, "b");
	cfg = up_cfg(&a, &b, NULL);
	hc_set(cfg, "listeners.0.per_source",
	       hc_json("{ \"rate\": 1, \"burst\": 5 }"));
	hc_set(cfg, "shutdown_grace_ms", json_integer(2000));
	port = port_of(cfg, 0);
	ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, port, NULL), 0);
	for (int i = 0; i < 5; i++)
		ck_assert(served_from("127.0.0.9", port));
	pid = upgrade(&lb);
	follow(&lb, pid);
	/* The bucket is (nearly) empty in the new process too. */
	ck_assert(!served_from("127.0.0.9", port));
	ck_assert_int_eq(h_refused(&lb, "l", "source_rate"), 1);
	ck_assert(served_from("127.0.0.10", port));
	json_decref(cfg);
}
END_TEST

/*
 * Start lb as a new process whose old process the test plays: the
 * messages of msgs (NULL-terminated) come first on the channel.  The
 * test's end of it; with msgs NULL, that end is closed before the start
 * (and -1 returned).
 */
static int
start_with_channel(struct h_lb *lb, const json_t *cfg, int wait_port,
		   const char *const *msgs)
{
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
				    sv),
			 0);
	for (size_t i = 0; msgs && msgs[i]; i++)
		ck_assert_int_eq(send(sv[0], msgs[i], strlen(msgs[i]), 0),
				 (ssize_t)strlen(msgs[i]));
	if (!msgs) {
		close(sv[0]);
		sv[0] = -1;
	}
	setenv("RINGLB_UPGRADE_FD", "3", 1);
	h_spawn_pass_fds(&sv[1], 1);
	ck_assert_int_eq(h_lb_start_cfg(lb, cfg, wait_port, NULL), 0);
	h_spawn_pass_fds(NULL, 0);
	unsetenv("RINGLB_UPGRADE_FD");
	close(sv[1]);
	return sv[0];
}

/*
 * The test plays an old process that speaks another protocol: the new
 * one must refuse it, say why on the channel and exit 1, binding nothing.
 */
START_TEST(protocol_mismatch)
{
	struct h_backend a, b;
	struct h_lb lb;
	char buf[1024], want[256];
	int ch, port;
	json_t *cfg;
	ssize_t n;
	const char hello[] = "H{\"protocol\": 99, \"version\": \"9.9\", "
			     "\"pid\": 1, \"workers\": 2}";

	h_backend_up(&a, H_NAME, "a");
	h_backend_up(&b, H_NAME, "b");
	cfg = up_cfg(&a, &b, NULL);
	port = port_of(cfg, 0);
	ch = start_with_channel(&lb, cfg, 0, (const char *const[]){ hello, NULL });
	n = recv(ch, buf, sizeof(buf) - 1, 0);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	snprintf(want, sizeof(want),
		 "Xupgrade: the running ringlb 9.9 speaks hand-over protocol "
		 "99 and this one (%s) speaks %d: restart it instead",
		 RINGLB_VERSION, UPGRADE_PROTOCOL);
	ck_assert_msg(strcmp(buf, want) == 0, "the new process said: %s", buf);
	ck_assert_int_eq(h_lb_wait_exit(&lb, 5000), 0);
	ck_assert(WIFEXITED(lb.status) && WEXITSTATUS(lb.status) == 1);
	ck_assert(!h_port_listening(port));
	close(ch);
	/* A channel closed before anything came: the same, its own words. */
	start_with_channel(&lb, cfg, 0, NULL);
	ck_assert_int_eq(h_lb_wait_exit(&lb, 5000), 0);
	ck_assert(WIFEXITED(lb.status) && WEXITSTATUS(lb.status) == 1);
	ck_assert_int_eq(h_lb_log_count(&lb, "upgrade: reading from the old "
					"process: it closed the channel"),
			 1);
	json_decref(cfg);
}
END_TEST

/* Send one message of the hand-over protocol, with fds. */
static void
chan_send(int ch, const char *msg, const int *fds, int nfds)
{
	char cbuf[CMSG_SPACE(2 * sizeof(int))] = { 0 };
	struct iovec iov = { (void *)(uintptr_t)msg, strlen(msg) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (nfds) {
		struct cmsghdr *c;

		m.msg_control = cbuf;
		m.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
	}
	ck_assert_int_eq(sendmsg(ch, &m, 0), (ssize_t)strlen(msg));
}

/* A connected pair on 127.0.0.1: *mine for the test, *theirs to hand on. */
static void
tcp_pair(int *mine, int *theirs)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int l = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(l, 0);
	ck_assert_int_eq(bind(l, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(l, 1), 0);
	ck_assert_int_eq(getsockname(l, (struct sockaddr *)&sin, &len), 0);
	*mine = h_connect("127.0.0.1", ntohs(sin.sin_port), 3000);
	ck_assert_int_ge(*mine, 0);
	*theirs = accept(l, NULL, NULL);
	ck_assert_int_ge(*theirs, 0);
	close(l);
}

/*
 * The test plays the old process and hands over an established
 * connection: the new ringlb pumps it as its own, counts it, and lets it
 * go when it ends; one it has no backend for is closed.
 */
START_TEST(adopts_connections)
{
	struct h_backend e;
	struct h_lb lb;
	char buf[256], msg[512];
	int ch, cli, theirs[2], port;
	json_t *cfg, *l, *j;

	h_backend_up(&e, H_ECHO, "e");
	cfg = hc_new();
	l = hc_listener(cfg, "l", 0);
	hc_set(l, "health_check", hc_json("{ \"enabled\": false }"));
	/* One connection per source: the adopted one holds 127.0.0.5's. */
	hc_set(l, "per_source", hc_json("{ \"max_connections\": 1 }"));
	hc_backend(l, &e, 1);
	port = hc_port(l);
	ch = start_with_channel(&lb, cfg, port,
				(const char *const[]){
					"H{\"protocol\": 1, \"version\": \"x\", "
					"\"pid\": 1, \"workers\": 2}",
					"E", NULL });
	{
		struct pollfd p = { .fd = ch, .events = POLLIN };
		ssize_t n;

		ck_assert_int_eq(poll(&p, 1, 5000), 1);
		n = recv(ch, buf, sizeof(buf) - 1, 0);
		ck_assert_int_gt(n, 0);
		ck_assert_int_eq(buf[0], 'R');
	}
	chan_send(ch, "G", NULL, 0);
	/* An established client and its backend connection, handed on. */
	tcp_pair(&cli, &theirs[0]);
	theirs[1] = h_connect("127.0.0.1", e.port, 3000);
	ck_assert_int_ge(theirs[1], 0);
	snprintf(msg, sizeof(msg),
		 "C{\"conns\": [{\"listener\": \"l\", \"pool\": \"l\", "
		 "\"backend\": \"e\", \"address\": \"127.0.0.1:%d\", "
		 "\"peer\": \"127.0.0.5:5\", \"sni\": \"db.example.org\", "
		 "\"bytes\": [10, 20], \"age_ms\": 5000, \"id\": 4242}]}",
		 e.port);
	chan_send(ch, msg, theirs, 2);
	close(theirs[0]);
	close(theirs[1]);
	ck_assert_int_eq(h_write_all(cli, "ping\n", 5, 3000), 0);
	ck_assert_int_ge(h_read_line(cli, buf, sizeof(buf), 3000), 0);
	ck_assert_str_eq(buf, "ping");
	j = h_api(&lb, "GET", "/listeners/l", NULL, 200);
	ck_assert_int_eq(h_jint(j, "active"), 1);
	ck_assert_int_eq(h_jint(j, "backends.0.active"), 1);
	json_decref(j);
	/* Its source's one slot is taken: a second client from it is not. */
	{
		int fd = h_connect_from("127.0.0.5", "127.0.0.1", port, 3000);
		long got = 0;

		/* The refusal's reset may beat the handshake's last step. */
		if (fd != -ECONNRESET) {
			ck_assert_int_ge(fd, 0);
			ck_assert_int_lt(h_read_all(fd, buf, sizeof(buf), 3000,
						    &got),
					 0);
			close(fd);
		}
		ck_assert_int_eq(h_refused(&lb, "l", "source_limit"), 1);
	}
	/* One for a backend this config does not have: closed. */
	{
		int cli2, t2[2];
		long got = 0;

		tcp_pair(&cli2, &t2[0]);
		t2[1] = h_connect("127.0.0.1", e.port, 3000);
		ck_assert_int_ge(t2[1], 0);
		chan_send(ch,
			  "C{\"conns\": [{\"listener\": \"l\", \"pool\": "
			  "\"l\", \"backend\": \"gone\", \"address\": "
			  "\"127.0.0.1:1\"}]}",
			  t2, 2);
		close(t2[0]);
		close(t2[1]);
		ck_assert_int_eq(h_read_all(cli2, buf, sizeof(buf), 3000, &got),
				 0);
		close(cli2);
		/* Sockets with no description (not JSON): closed too. */
		tcp_pair(&cli2, &t2[0]);
		t2[1] = h_connect("127.0.0.1", e.port, 3000);
		ck_assert_int_ge(t2[1], 0);
		chan_send(ch, "C{\"conns\": [", t2, 2);
		close(t2[0]);
		close(t2[1]);
		ck_assert_int_eq(h_read_all(cli2, buf, sizeof(buf), 3000, &got),
				 0);
		close(cli2);
	}
	chan_send(ch, "D", NULL, 0);
	ck_assert(h_lb_log_wait(&lb, 1, 3000, "upgrade: adopted 2 connections "
				"from the old process"));
	ck_assert_int_eq(h_lb_log_count(&lb, "of listener l to l/gone from the "
				"old process is closed: this config has no "
				"such listener or backend"),
			 1);
	ck_assert(h_lb_log_wait(&lb, 1, 3000, "upgrade: closed 1 connections "
				"from the old process that came without a "
				"readable description"));
	/* The adopted one ends like any other: the counts go back to 0. */
	close(cli);
	ck_assert(h_lb_log_wait(&lb, 1, 3000, "conn=4242 ",
				"sni=db.example.org", "end=closed"));
	for (int i = 0; i < 100; i++) {
		j = h_api(&lb, "GET", "/listeners/l", NULL, 200);
		if (h_jint(j, "active") == 0 &&
		    h_jint(j, "backends.0.active") == 0) {
			json_decref(j);
			break;
		}
		json_decref(j);
		ck_assert_int_lt(i, 99);
		h_sleep_ms(20);
	}
	close(ch);
	json_decref(cfg);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("upgrade");
	TCase *tc = h_tcase(s, "upgrade", 120, h_teardown);

	tcase_add_test(tc, upgrade_under_load);
	tcase_add_test(tc, ten_upgrades);
	tcase_add_test(tc, handover_what_goes);
	tcase_add_test(tc, upgrade_by_signal);
	tcase_add_test(tc, ready_across_upgrade);
	tcase_add_test(tc, hook_through_long_handover);
	tcase_add_test(tc, upgrade_failures);
	tcase_add_test(tc, protocol_mismatch);
	tcase_add_test(tc, rate_bucket_carried);
	tcase_add_test(tc, adopts_connections);
	return h_run_suite("check_upgrade", s);
}

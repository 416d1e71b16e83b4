/*
 * check_systemd.c: systemd's notify protocol and socket activation,
 * against the real binary and without systemd as PID 1.
 *
 * A Unix datagram socket of the test's stands in for NOTIFY_SOCKET: the
 * messages and their order at start (READY=1, STATUS=), at a reload
 * (RELOADING=1 with MONOTONIC_USEC=, then READY=1, a failed one too) and
 * at stop (STOPPING=1); the abstract namespace; WATCHDOG=1 every half
 * WATCHDOG_USEC, and none while one worker thread is frozen (ptrace stops
 * that thread alone), then again.  Socket activation through a launcher
 * of the test's own (this binary, re-executed, passes the fds the way
 * systemd does) and through Debian's systemd-socket-activate: listeners
 * on "systemd:NAME" serve, across reloads, and every wrong socket is a
 * clear start-up error.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/* ---- the notify socket ---- */

struct nsock {
	int fd;
	char path[108];
};

/* Bind a datagram socket in dir (abstract if dir is NULL); set the env. */
static void
nsock_open(struct nsock *n, const char *dir)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t len;

	n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(n->fd, 0);
	if (dir) {
		snprintf(n->path, sizeof(n->path), "%s/notify.sock", dir);
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", n->path);
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
				  strlen(n->path) + 1);
	} else {
		snprintf(n->path, sizeof(n->path), "@ringlb-test-%d",
			 (int)getpid());
		memcpy(sa.sun_path, n->path, strlen(n->path));
		sa.sun_path[0] = '\0';
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
				  strlen(n->path));
	}
	ck_assert_msg(bind(n->fd, (struct sockaddr *)&sa, len) == 0,
		      "bind %s: %s", n->path, strerror(errno));
	setenv("NOTIFY_SOCKET", n->path, 1);
}

/* The next message within timeout_ms into buf, or false. */
static bool
nsock_recv(struct nsock *n, char *buf, size_t cap, int timeout_ms)
{
	struct pollfd p = { .fd = n->fd, .events = POLLIN };
	ssize_t r;

	if (poll(&p, 1, timeout_ms) <= 0)
		return false;
	r = recv(n->fd, buf, cap - 1, 0);
	ck_assert_int_gt(r, 0);
	buf[r] = '\0';
	return true;
}

/*
 * The next message that is not a lone WATCHDOG=1 or STATUS=..., within
 * timeout_ms; the test fails if none comes.
 */
static void
nsock_next(struct nsock *n, char *buf, size_t cap, int timeout_ms)
{
	uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		int left = (int)(deadline - h_now_ms());

		ck_assert_msg(left > 0 && nsock_recv(n, buf, cap, left),
			      "no notify message within %d ms", timeout_ms);
		if (strcmp(buf, "WATCHDOG=1") != 0 &&
		    strncmp(buf, "STATUS=", 7) != 0)
			return;
	}
}

static uint64_t
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* One name-sending backend in pool p, listener "l" on listen. */
static json_t *
one_cfg(struct h_backend *b, const char *listen)
{
	json_t *cfg = hc_new(), *l;

	l = hc_listener(cfg, "l", 0);
	if (listen)
		hc_set(l, "listen", json_string(listen));
	hc_set(l, "health_check", hc_json("{ \"enabled\": false }"));
	hc_backend(l, b, 1);
	return cfg;
}

/*
 * Start ringlb over one name-sending backend b ("a"), with n standing in
 * for NOTIFY_SOCKET (under dir, or abstract with dir NULL) and the
 * variables of env (name, value, ..., NULL) set for it alone.
 */
static void
start_notified(struct h_lb *lb, struct h_backend *b, struct nsock *n,
	       const char *dir, const char *const *env)
{
	json_t *cfg;

	nsock_open(n, dir);
	for (size_t i = 0; env && env[i]; i += 2)
		setenv(env[i], env[i + 1], 1);
	h_backend_up(b, H_NAME, "a");
	cfg = one_cfg(b, NULL);
	ck_assert_int_eq(h_lb_start_cfg(lb, cfg,
					hc_port(json_array_get(
						json_object_get(cfg,
								"listeners"),
						0)),
					NULL),
			 0);
	unsetenv("NOTIFY_SOCKET");
	for (size_t i = 0; env && env[i]; i += 2)
		unsetenv(env[i]);
	json_decref(cfg);
}

START_TEST(notify_sequence)
{
	struct h_backend b;
	struct nsock n;
	struct h_lb lb;
	char dir[64], msg[1024];
	json_t *j;
	uint64_t t0, t1, us;

	ck_assert_int_eq(h_tempdir(dir, sizeof(dir)), 0);
	start_notified(&lb, &b, &n, dir, NULL);
	/* READY=1 once it serves, with a summary. */
	nsock_next(&n, msg, sizeof(msg), 3000);
	ck_assert_msg(strncmp(msg, "READY=1\nSTATUS=generation 1: 1 "
				   "listeners, 1 pools, 1 of 1 backends up",
			      strlen("READY=1\nSTATUS=generation 1: 1 listeners, "
				     "1 pools, 1 of 1 backends up")) == 0,
		      "first message: %s", msg);
	/* A reload: RELOADING=1 with the time it began, then READY=1. */
	t0 = mono_us();
	h_lb_signal(&lb, SIGHUP);
	nsock_next(&n, msg, sizeof(msg), 3000);
	t1 = mono_us();
	ck_assert_msg(sscanf(msg, "RELOADING=1\nMONOTONIC_USEC=%llu",
			     (unsigned long long *)&us) == 1,
		      "after SIGHUP: %s", msg);
	ck_assert_msg(us >= t0 && us <= t1, "MONOTONIC_USEC %llu not in "
		      "[%llu, %llu]", (unsigned long long)us,
		      (unsigned long long)t0, (unsigned long long)t1);
	nsock_next(&n, msg, sizeof(msg), 3000);
	ck_assert_msg(strncmp(msg, "READY=1\nSTATUS=generation 2:", 28) == 0,
		      "after the reload: %s", msg);
	/* A failed reload says so, and is READY=1 again on the old config. */
	ck_assert_int_eq(h_write_file(lb.cfg_path, "{ \"listeners\": 5 }"),
			 0);
	j = h_api(&lb, "POST", "/reload", NULL, 400);
	json_decref(j);
	nsock_next(&n, msg, sizeof(msg), 3000);
	ck_assert_msg(strncmp(msg, "RELOADING=1\nMONOTONIC_USEC=", 27) == 0,
		      "failed reload, first: %s", msg);
	nsock_next(&n, msg, sizeof(msg), 3000);
	ck_assert_msg(strncmp(msg, "READY=1\nSTATUS=reload failed, running as "
				   "before: generation 2:",
			      strlen("READY=1\nSTATUS=reload failed, running "
				     "as before: generation 2:")) == 0,
		      "failed reload, then: %s", msg);
	/* Stopping. */
	h_lb_signal(&lb, SIGTERM);
	nsock_next(&n, msg, sizeof(msg), 3000);
	ck_assert_msg(strncmp(msg, "STOPPING=1\nSTATUS=stopping", 26) == 0,
		      "at SIGTERM: %s", msg);
	ck_assert_int_eq(h_lb_wait_exit(&lb, 5000), 0);
	close(n.fd);
}
END_TEST

START_TEST(notify_abstract)
{
	struct h_backend b;
	struct nsock n;
	struct h_lb lb;
	char msg[1024];

	start_notified(&lb, &b, &n, NULL, NULL);
	nsock_next(&n, msg, sizeof(msg), 3000);
	ck_assert_msg(strncmp(msg, "READY=1\n", 8) == 0, "%s", msg);
	close(n.fd);
}
END_TEST

/* Watchdog pings in [now, now + ms): how many, and the longest gap. */
static int
pings(struct nsock *n, int ms, int *max_gap)
{
	uint64_t end = h_now_ms() + (uint64_t)ms, last = h_now_ms();
	char msg[256];
	int count = 0;

	*max_gap = 0;
	for (;;) {
		int left = (int)(end - h_now_ms());

		if (left <= 0 || !nsock_recv(n, msg, sizeof(msg), left))
			break;
		if (strcmp(msg, "WATCHDOG=1") != 0)
			continue;
		if ((int)(h_now_ms() - last) > *max_gap)
			*max_gap = (int)(h_now_ms() - last);
		last = h_now_ms();
		count++;
	}
	if ((int)(end - last) > *max_gap)
		*max_gap = (int)(end - last);
	return count;
}

START_TEST(watchdog_follows_workers)
{
	struct h_backend b;
	struct nsock n;
	struct h_lb lb;
	char dir[64], msg[1024];
	int count, gap, st;
	pid_t tid;

	ck_assert_int_eq(h_tempdir(dir, sizeof(dir)), 0);
	start_notified(&lb, &b, &n, dir,
		       (const char *const[]){ "WATCHDOG_USEC", "400000",
					      NULL });
	nsock_next(&n, msg, sizeof(msg), 3000);
	/* Every 200 ms (half of 400), give or take a loaded machine. */
	count = pings(&n, 2000, &gap);
	ck_assert_msg(count >= 5 && gap < 1000,
		      "%d pings in 2 s, longest gap %d ms", count, gap);
	/* Freeze worker 1 alone: ptrace stops only the thread it seizes. */
	tid = h_lb_thread(&lb, "ringlb-w1");
	ck_assert_int_gt(tid, 0);
	if (ptrace(PTRACE_SEIZE, tid, NULL, NULL) < 0)
		h_skip("ptrace: %s", strerror(errno));
	ck_assert_int_eq(ptrace(PTRACE_INTERRUPT, tid, NULL, NULL), 0);
	ck_assert_int_eq(waitpid(tid, &st, __WALL), tid);
	/* Pings may go on for 500 ms (the stall bound) plus one interval. */
	(void)pings(&n, 1000, &gap);
	count = pings(&n, 1500, &gap);
	ck_assert_msg(count == 0, "%d pings while worker 1 was stopped", count);
	ck_assert_int_eq(ptrace(PTRACE_DETACH, tid, NULL, NULL), 0);
	count = pings(&n, 1500, &gap);
	ck_assert_msg(count >= 3, "%d pings in 1.5 s after the thaw", count);
	close(n.fd);
}
END_TEST

/* WATCHDOG_PID names another process: this one must not ping. */
START_TEST(watchdog_other_pid)
{
	struct h_backend b;
	struct nsock n;
	struct h_lb lb;
	char dir[64], msg[1024];
	int gap;

	ck_assert_int_eq(h_tempdir(dir, sizeof(dir)), 0);
	start_notified(&lb, &b, &n, dir,
		       (const char *const[]){ "WATCHDOG_USEC", "200000",
					      "WATCHDOG_PID", "1", NULL });
	nsock_next(&n, msg, sizeof(msg), 3000);
	ck_assert_int_eq(pings(&n, 1000, &gap), 0);
	close(n.fd);
}
END_TEST

/* ---- socket activation ---- */

/*
 * The launcher: this binary, run as RINGLB_BIN with H_SD_NAMES set (its
 * fds 3, 4, ... passed by h_spawn_pass_fds), execs ringlb (H_SD_REAL)
 * with LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID as systemd sets them.
 */
static int
launcher(char **argv)
{
	const char *names = getenv("H_SD_NAMES");
	char num[16];
	int n = 1;

	for (const char *c = names; *c; c++)
		n += *c == ':';
	snprintf(num, sizeof(num), "%d", n);
	setenv("LISTEN_FDS", num, 1);
	setenv("LISTEN_FDNAMES", names, 1);
	snprintf(num, sizeof(num), "%d", (int)getpid());
	setenv("LISTEN_PID", num, 1);
	unsetenv("H_SD_NAMES");
	argv[0] = getenv("H_SD_REAL");
	execv(argv[0], argv);
	perror("execv");
	return 127;
}

static char self_path[PATH_MAX];

/* Start ringlb on cfg through the launcher, passing fds named "a:b:...". */
static int
start_activated(struct h_lb *lb, const json_t *cfg, const int *fds, int n,
		const char *names, int wait_port)
{
	char real[PATH_MAX];
	int rc;

	ck_assert_ptr_nonnull(realpath(h_lb_bin(), real));
	setenv("H_SD_REAL", real, 1);
	setenv("H_SD_NAMES", names, 1);
	setenv("RINGLB_BIN", self_path, 1);
	h_spawn_pass_fds(fds, n);
	rc = h_lb_start_cfg(lb, cfg, wait_port, NULL);
	h_spawn_pass_fds(NULL, 0);
	setenv("RINGLB_BIN", real, 1);
	unsetenv("H_SD_NAMES");
	unsetenv("H_SD_REAL");
	return rc;
}

/* A socket of type on 127.0.0.1 (any port), listening if asked; no CLOEXEC. */
static int
sock_on(int type, bool listening, int *port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, type, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	if (listening)
		ck_assert_int_eq(listen(fd, 64), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	if (port)
		*port = ntohs(sin.sin_port);
	return fd;
}

START_TEST(activation_serves)
{
	struct h_backend a, b;
	struct h_lb lb;
	json_t *cfg, *l, *j;
	int fds[2], pa, pb;
	char name[16];

	h_backend_up(&a, H_NAME, "a");
	h_backend_up(&b, H_NAME, "b");
	fds[0] = sock_on(SOCK_STREAM, true, &pa);
	fds[1] = sock_on(SOCK_STREAM, true, &pb);
	cfg = one_cfg(&a, "systemd:web");
	ck_assert_int_eq(start_activated(&lb, cfg, fds, 2, "web:extra", pa), 0);
	close(fds[0]);
	close(fds[1]);
	/* Both workers accept on the one passed socket. */
	for (int i = 0; i < 20; i++) {
		ck_assert_int_eq(h_get_name("127.0.0.1", pa, name,
					    sizeof(name), NULL),
				 0);
		ck_assert_str_eq(name, "a");
	}
	j = h_api(&lb, "GET", "/listeners/l", NULL, 200);
	ck_assert_str_eq(h_jstr(j, "listen"), "systemd:web");
	json_decref(j);
	ck_assert_int_eq(h_lb_log_count(&lb, "listener l on systemd:web"), 1);
	/* A reload keeps it, and may take up the other passed socket. */
	l = hc_listener(cfg, "m", 0);
	hc_set(l, "listen", json_string("systemd:extra"));
	hc_set(l, "health_check", hc_json("{ \"enabled\": false }"));
	hc_backend(l, &b, 1);
	ck_assert_int_eq(h_lb_write_cfg(&lb, cfg), 0);
	j = h_api(&lb, "POST", "/reload", NULL, 200);
	json_decref(j);
	ck_assert_int_eq(h_get_name("127.0.0.1", pa, name, sizeof(name), NULL),
			 0);
	ck_assert_str_eq(name, "a");
	ck_assert_int_eq(h_get_name("127.0.0.1", pb, name, sizeof(name), NULL),
			 0);
	ck_assert_str_eq(name, "b");
	/* Two listeners may not take one socket. */
	hc_set(l, "listen", json_string("systemd:web"));
	ck_assert_int_eq(h_lb_write_cfg(&lb, cfg), 0);
	j = h_api(&lb, "POST", "/reload", NULL, 400);
	ck_assert_msg(strstr(h_jstr(j, "error"), "systemd:web"), "%s",
		      h_jstr(j, "error"));
	json_decref(j);
	json_decref(cfg);
}
END_TEST

/* Start with fd (-1: not activated); it must exit 1 with want logged. */
static void
start_fails(const char *listen, int fd, const char *want)
{
	struct h_backend a;
	struct h_lb lb;
	json_t *cfg;

	h_backend_up(&a, H_NAME, "a");
	cfg = one_cfg(&a, listen);
	if (fd >= 0)
		ck_assert_int_eq(start_activated(&lb, cfg, &fd, 1, "web", 0), 0);
	else
		ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, 0, NULL), 0);
	ck_assert_int_eq(h_lb_wait_exit(&lb, 5000), 0);
	ck_assert_msg(WIFEXITED(lb.status) && WEXITSTATUS(lb.status) == 1,
		      "status %d", lb.status);
	ck_assert_msg(h_lb_log_count(&lb, want) == 1, "no \"%s\" in the log",
		      want);
	json_decref(cfg);
}

START_TEST(activation_errors)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	fd = sock_on(SOCK_STREAM, true, NULL);
	start_fails("systemd:nope", fd,
		    "listener l: no socket named \"nope\" was passed by "
		    "systemd (passed: web; see FileDescriptorName= in the "
		    ".socket unit)");
	close(fd);
	start_fails("systemd:web", -1,
		    "listener l: no socket named \"web\" was passed: this "
		    "process was not started by socket activation");
	fd = sock_on(SOCK_DGRAM, false, NULL);
	start_fails("systemd:web", fd,
		    "listener l: systemd socket \"web\" is not a TCP socket "
		    "(a datagram socket)");
	close(fd);
	fd = sock_on(SOCK_STREAM, false, NULL);
	start_fails("systemd:web", fd,
		    "listener l: systemd socket \"web\" is not listening");
	close(fd);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(h_tempdir(sa.sun_path, sizeof(sa.sun_path) - 8), 0);
	strcat(sa.sun_path, "/s");
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fd, 8), 0);
	start_fails("systemd:web", fd,
		    "listener l: systemd socket \"web\" is not a TCP socket "
		    "(a Unix socket)");
	close(fd);
}
END_TEST

/* Debian's systemd-socket-activate: it execs ringlb at the first client. */
START_TEST(activation_tool)
{
	struct h_backend a;
	struct h_lb lb;
	char real[PATH_MAX], wrapper[PATH_MAX + 64], dir[64], name[16];
	char *script;
	json_t *cfg;
	int port = h_free_port();

	if (access("/usr/bin/systemd-socket-activate", X_OK) != 0)
		h_skip("no systemd-socket-activate");
	h_backend_up(&a, H_NAME, "a");
	cfg = one_cfg(&a, "systemd:web");
	ck_assert_ptr_nonnull(realpath(h_lb_bin(), real));
	ck_assert_int_eq(h_tempdir(dir, sizeof(dir)), 0);
	snprintf(wrapper, sizeof(wrapper), "%s/activate.sh", dir);
	ck_assert_int_ne(asprintf(&script,
				  "#!/bin/sh\nexec systemd-socket-activate "
				  "-l 127.0.0.1:%d --fdname=web %s \"$@\"\n",
				  port, real),
			 -1);
	ck_assert_int_eq(h_write_file(wrapper, script), 0);
	free(script);
	ck_assert_int_eq(chmod(wrapper, 0755), 0);
	setenv("RINGLB_BIN", wrapper, 1);
	ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, 0, NULL), 0);
	setenv("RINGLB_BIN", real, 1);
	for (int i = 0; i < 250 && !h_port_listening(port); i++)
		h_sleep_ms(20);
	/* The first client starts ringlb, waits in the queue, is served. */
	ck_assert_int_eq(h_get_name("127.0.0.1", port, name, sizeof(name),
				    NULL),
			 0);
	ck_assert_str_eq(name, "a");
	ck_assert(h_lb_log_wait(&lb, 1, 5000, "ringlb started"));
	ck_assert_int_eq(h_get_name("127.0.0.1", port, name, sizeof(name),
				    NULL),
			 0);
	json_decref(cfg);
}
END_TEST

int
main(int argc, char **argv)
{
	Suite *s;
	TCase *tc;

	(void)argc;
	if (getenv("H_SD_NAMES"))
		return launcher(argv);
	if (!realpath("/proc/self/exe", self_path))
		return 1;
	s = suite_create("systemd");
	tc = h_tcase(s, "systemd", 60, h_teardown);
	tcase_add_test(tc, notify_sequence);
	tcase_add_test(tc, notify_abstract);
	tcase_add_test(tc, watchdog_follows_workers);
	tcase_add_test(tc, watchdog_other_pid);
	tcase_add_test(tc, activation_serves);
	tcase_add_test(tc, activation_errors);
	tcase_add_test(tc, activation_tool);
	return h_run_suite("check_systemd", s);
}

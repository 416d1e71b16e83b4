/*
 * check_health.c: the rise/fall state machine alone, then real probes
 * against test servers on 127.0.0.1 run as threads of this process.
 *
 * The runtime is built by hand so these tests depend on neither config.c nor
 * pool.c.  Timings use short intervals and generous bounds; the measured
 * times are printed so a slow machine shows up as numbers, not as flakes.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "health.h"
#include "log.h"
#include "runtime.h"

#define MAX_BACKENDS	300
#define MAX_HELD	256
/* HEALTH_MAX_INFLIGHT in src/health.c; the cap test checks this bound. */
#define INFLIGHT_CAP	256

static char ping[] = "PING\r\n";
static char pong[] = "+PONG\r\n";
static char loading[] = "-LOADING\r\n";

static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Open fds of this process, the directory's own fd included. */
static int
count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* --- test servers ------------------------------------------------------ */

enum srv_mode {
	SRV_CLOSE,	/* accept and close */
	SRV_PONG,	/* "+PONG\r\n" to "PING\r\n" */
	SRV_LOADING,	/* "-LOADING\r\n" to anything */
	SRV_SILENT,	/* accept and hold the connection, never reply */
	SRV_EOF,	/* read the request, close without a reply */
	SRV_RESET,	/* read the request, reset the connection */
};

struct srv {
	int lfd;
	int stop[2];
	uint16_t port;
	enum srv_mode mode;
	atomic_uint accepts;
	pthread_t thread;
	int held[MAX_HELD];
	size_t nheld;
};

/* A listening socket on 127.0.0.1:port (0 picks one); sets *port. */
static int
srv_listen(uint16_t *port, int backlog)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd, one = 1;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(*port);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
				    sizeof(one)), 0);
	ck_assert_msg(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0,
		      "bind port %u: %s", *port, strerror(errno));
	ck_assert_int_eq(listen(fd, backlog), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

/* A port with nothing listening: connects to it are refused. */
static uint16_t
closed_port(void)
{
	uint16_t port = 0;

	close(srv_listen(&port, 1));
	return port;
}

/* Read up to n bytes, giving up after one second of silence. */
static void
srv_read_request(int fd, size_t n)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char buf[64];
	size_t got = 0;

	while (got < n && poll(&pfd, 1, 1000) > 0) {
		ssize_t r = read(fd, buf, sizeof(buf));

		if (r <= 0)
			return;
		got += (size_t)r;
	}
}

/* The prober may have given up already: no SIGPIPE, and no one to tell. */
static void
srv_reply(int fd, const char *reply)
{
	ssize_t n = send(fd, reply, strlen(reply), MSG_NOSIGNAL);

	(void)n;
}

static void
srv_handle(struct srv *s, int fd)
{
	switch (s->mode) {
	case SRV_CLOSE:
		break;
	case SRV_PONG:
		srv_read_request(fd, sizeof(ping) - 1);
		srv_reply(fd, pong);
		break;
	case SRV_LOADING:
		srv_read_request(fd, sizeof(ping) - 1);
		srv_reply(fd, loading);
		break;
	case SRV_SILENT:
		if (s->nheld < MAX_HELD) {
			s->held[s->nheld++] = fd;
			return;
		}
		break;
	case SRV_EOF:
		srv_read_request(fd, sizeof(ping) - 1);
		break;
	case SRV_RESET: {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		srv_read_request(fd, sizeof(ping) - 1);
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		break;
	}
	}
	close(fd);
}

static void *
srv_thread(void *arg)
{
	struct srv *s = arg;
	struct pollfd pfd[2] = {
		{ .fd = s->lfd, .events = POLLIN },
		{ .fd = s->stop[0], .events = POLLIN },
	};

	while (poll(pfd, 2, -1) >= 0 && !pfd[1].revents) {
		int fd;

		if (!pfd[0].revents)
			continue;
		fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		atomic_fetch_add(&s->accepts, 1);
		srv_handle(s, fd);
	}
	return NULL;
}

static void
srv_start(struct srv *s, enum srv_mode mode, uint16_t port)
{
	memset(s, 0, sizeof(*s));
	atomic_init(&s->accepts, 0);
	s->mode = mode;
	s->port = port;
	s->lfd = srv_listen(&s->port, 128);
	ck_assert_int_eq(pipe2(s->stop, O_CLOEXEC), 0);
	ck_assert_int_eq(pthread_create(&s->thread, NULL, srv_thread, s), 0);
}

static void
srv_stop(struct srv *s)
{
	ck_assert_int_eq(write(s->stop[1], "x", 1), 1);
	pthread_join(s->thread, NULL);
	for (size_t i = 0; i < s->nheld; i++)
		close(s->held[i]);
	close(s->lfd);
	close(s->stop[0]);
	close(s->stop[1]);
}

/* --- a runtime built by hand ------------------------------------------- */

struct fixture {
	struct cfg_pool lcfg;
	struct cfg_backend bcfg[MAX_BACKENDS];
	struct backend b[MAX_BACKENDS];
	struct backend *bp[MAX_BACKENDS];
	struct pool pool;
	struct runtime rt;
};

static struct fixture *
fx_new(size_t nb, unsigned interval, unsigned timeout, unsigned rise,
       unsigned fall)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	struct cfg_health *h;

	ck_assert_ptr_nonnull(fx);
	ck_assert_uint_le(nb, MAX_BACKENDS);
	snprintf(fx->lcfg.name, sizeof(fx->lcfg.name), "l1");
	fx->lcfg.backends = fx->bcfg;
	fx->lcfg.nbackends = nb;
	h = &fx->lcfg.health;
	h->enabled = true;
	h->interval_ms = interval;
	h->timeout_ms = timeout;
	h->rise = rise;
	h->fall = fall;
	for (size_t i = 0; i < nb; i++) {
		struct backend *b = &fx->b[i];

		snprintf(fx->bcfg[i].name, sizeof(fx->bcfg[i].name), "b%zu",
			 i + 1);
		fx->bcfg[i].weight = 1;
		b->cfg = &fx->bcfg[i];
		fx->bp[i] = b;
		b->pool = &fx->pool;
		b->index = i;
		atomic_init(&b->up, true);
		atomic_init(&b->active, 0);
		atomic_init(&b->total, 0);
		atomic_init(&b->connect_failures, 0);
		atomic_init(&b->bytes_in, 0);
		atomic_init(&b->bytes_out, 0);
	}
	fx->pool.cfg = &fx->lcfg;
	fx->pool.backends = fx->bp;
	fx->pool.nbackends = nb;
	fx->rt.pools = &fx->pool;
	fx->rt.npools = 1;
	return fx;
}

static void
fx_port(struct fixture *fx, size_t i, uint16_t port)
{
	struct cfg_addr *a = &fx->bcfg[i].addr;
	struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;

	memset(a, 0, sizeof(*a));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin->sin_port = htons(port);
	a->len = sizeof(*sin);
	snprintf(a->text, sizeof(a->text), "127.0.0.1:%u", port);
}

/* Milliseconds until backend_is_up(b) == want, or -1 after limit_ms. */
static long
wait_state(const struct backend *b, bool want, long limit_ms)
{
	long t0 = now_ms();

	for (;;) {
		long t = now_ms() - t0;

		if (backend_is_up(b) == want)
			return t;
		if (t > limit_ms)
			return -1;
		sleep_ms(2);
	}
}

/* --- capturing the log ------------------------------------------------- */

static int saved_stderr = -1;
static FILE *captured;

static void
capture_begin(void)
{
	captured = tmpfile();
	ck_assert_ptr_nonnull(captured);
	saved_stderr = dup(STDERR_FILENO);
	ck_assert_int_ge(saved_stderr, 0);
	ck_assert_int_ge(dup2(fileno(captured), STDERR_FILENO), 0);
}

/* Restores stderr; returns the log text (free it). */
static char *
capture_end(void)
{
	long len;
	char *text;

	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	fseek(captured, 0, SEEK_END);
	len = ftell(captured);
	rewind(captured);
	text = calloc(1, (size_t)len + 1);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(fread(text, 1, (size_t)len, captured), (size_t)len);
	fclose(captured);
	return text;
}

/* --- the state machine ------------------------------------------------- */

START_TEST(sm_fall_and_rise)
{
	struct health_sm sm;

	health_sm_init(&sm, 2, 3, true);
	ck_assert(sm.up);
	ck_assert(!health_sm_feed(&sm, false));
	ck_assert(!health_sm_feed(&sm, false));
	ck_assert_uint_eq(sm.fail_run, 2);
	ck_assert(health_sm_feed(&sm, false));
	ck_assert(!sm.up);
	ck_assert_uint_eq(sm.fail_run, 0);
	ck_assert_uint_eq(sm.ok_run, 0);

	/* Failures while down change nothing. */
	ck_assert(!health_sm_feed(&sm, false));
	ck_assert(!health_sm_feed(&sm, true));
	ck_assert(!sm.up);
	ck_assert(health_sm_feed(&sm, true));
	ck_assert(sm.up);
	ck_assert_uint_eq(sm.ok_run, 0);
	ck_assert_uint_eq(sm.fail_run, 0);
}
END_TEST

START_TEST(sm_interruption_resets)
{
	struct health_sm sm;

	health_sm_init(&sm, 3, 3, true);
	ck_assert(!health_sm_feed(&sm, false));
	ck_assert(!health_sm_feed(&sm, false));
	ck_assert(!health_sm_feed(&sm, true));
	ck_assert_uint_eq(sm.fail_run, 0);
	ck_assert(!health_sm_feed(&sm, false));
	ck_assert(!health_sm_feed(&sm, false));
	ck_assert(sm.up);
	ck_assert(health_sm_feed(&sm, false));
	ck_assert(!sm.up);

	ck_assert(!health_sm_feed(&sm, true));
	ck_assert(!health_sm_feed(&sm, true));
	ck_assert(!health_sm_feed(&sm, false));
	ck_assert_uint_eq(sm.ok_run, 0);
	ck_assert(!health_sm_feed(&sm, true));
	ck_assert(!health_sm_feed(&sm, true));
	ck_assert(!sm.up);
	ck_assert(health_sm_feed(&sm, true));
	ck_assert(sm.up);
}
END_TEST

START_TEST(sm_start_down_and_up)
{
	struct health_sm sm;

	health_sm_init(&sm, 2, 2, false);
	ck_assert(!sm.up);
	ck_assert(!health_sm_feed(&sm, false));
	ck_assert(!health_sm_feed(&sm, true));
	ck_assert(health_sm_feed(&sm, true));
	ck_assert(sm.up);

	health_sm_init(&sm, 2, 2, true);
	for (int i = 0; i < 10; i++)
		ck_assert(!health_sm_feed(&sm, true));
	ck_assert(sm.up);
	ck_assert_uint_eq(sm.ok_run, 0);
}
END_TEST

START_TEST(sm_one_result_flips)
{
	struct health_sm sm;

	health_sm_init(&sm, 1, 1, true);
	ck_assert(health_sm_feed(&sm, false));
	ck_assert(!sm.up);
	ck_assert(!health_sm_feed(&sm, false));
	ck_assert(health_sm_feed(&sm, true));
	ck_assert(sm.up);
	ck_assert(!health_sm_feed(&sm, true));
	ck_assert(health_sm_feed(&sm, false));
	ck_assert(!sm.up);

	/* A threshold of 0 behaves like 1 rather than never flipping. */
	health_sm_init(&sm, 0, 0, true);
	ck_assert(health_sm_feed(&sm, false));
	ck_assert(health_sm_feed(&sm, true));
}
END_TEST

START_TEST(result_names)
{
	ck_assert_str_eq(health_result_name(HC_OK), "ok");
	ck_assert_str_eq(health_result_name(HC_REFUSED), "refused");
	ck_assert_str_eq(health_result_name(HC_TIMEOUT), "timeout");
	ck_assert_str_eq(health_result_name(HC_UNEXPECTED), "unexpected-reply");
	ck_assert_str_eq(health_result_name(HC_CLOSED), "closed");
	ck_assert_str_eq(health_result_name(HC_ERROR), "error");
}
END_TEST

/* --- real probes ------------------------------------------------------- */

/*
 * A backend that stops listening goes down within interval * fall (a
 * refusal is immediate, so the timeout does not add), and comes back within
 * interval * rise; both transitions are logged in the documented format.
 */
START_TEST(probe_refused_then_back)
{
	struct fixture *fx = fx_new(1, 100, 500, 2, 2);
	struct backend *b = &fx->b[0];
	char want[256];
	struct srv s;
	uint16_t port;
	long down, up;
	char *log;

	srv_start(&s, SRV_CLOSE, 0);
	port = s.port;
	fx_port(fx, 0, port);

	capture_begin();
	log_set_level(LOG_DEBUG);
	ck_assert_int_eq(health_start(&fx->rt), 0);
	/* Up, and stays up while the server answers. */
	sleep_ms(350);
	ck_assert(backend_is_up(b));
	ck_assert_uint_ge(atomic_load(&s.accepts), 2);

	srv_stop(&s);
	down = wait_state(b, false, 2000);
	srv_start(&s, SRV_CLOSE, port);
	up = wait_state(b, true, 2000);
	health_stop(&fx->rt);
	srv_stop(&s);
	log_set_level(LOG_ERROR);
	log = capture_end();

	printf("refused: down after %ld ms (bound interval*fall = 200), "
	       "up after %ld ms (bound interval*rise = 200)\n", down, up);
	ck_assert_msg(down >= 0, "still up 2 s after the server stopped");
	ck_assert_msg(up >= 0, "still down 2 s after the server came back");
	ck_assert_int_eq(b->last_result, HC_OK);

	snprintf(want, sizeof(want), " warn health pool=l1 backend=b1 "
		 "addr=127.0.0.1:%u state=down reason=refused after=2 "
		 "consecutive failures\n", port);
	ck_assert_msg(strstr(log, want), "no line '%s' in:\n%s", want, log);
	snprintf(want, sizeof(want), " info health pool=l1 backend=b1 "
		 "addr=127.0.0.1:%u state=up reason=ok after=2 "
		 "consecutive successes\n", port);
	ck_assert_msg(strstr(log, want), "no line '%s' in:\n%s", want, log);
	ck_assert_msg(strstr(log, "result=refused"), "no debug line:\n%s",
		      log);
	free(log);
	free(fx);
}
END_TEST

/* A backend that answers the probe correctly is never taken out. */
START_TEST(probe_pong_stays_up)
{
	struct fixture *fx = fx_new(2, 50, 500, 1, 1);
	struct cfg_health *h = &fx->lcfg.health;
	struct srv s;
	long t0;

	srv_start(&s, SRV_PONG, 0);
	fx_port(fx, 0, s.port);
	fx_port(fx, 1, s.port);
	h->send = ping;
	h->send_len = sizeof(ping) - 1;
	h->expect = pong;
	h->expect_len = sizeof(pong) - 1;

	ck_assert_int_eq(health_start(&fx->rt), 0);
	t0 = now_ms();
	while (now_ms() - t0 < 600) {
		ck_assert(backend_is_up(&fx->b[0]));
		ck_assert(backend_is_up(&fx->b[1]));
		sleep_ms(3);
	}
	health_stop(&fx->rt);
	srv_stop(&s);
	printf("pong: %u probes in 600 ms for 2 backends at 50 ms\n",
	       atomic_load(&s.accepts));
	/* 24 expected; allow for a slow start. */
	ck_assert_uint_ge(atomic_load(&s.accepts), 16);
	ck_assert_int_eq(fx->b[0].last_result, HC_OK);
	ck_assert_int_eq(fx->b[1].last_result, HC_OK);
	ck_assert_uint_lt(fx->b[0].last_latency_ms, 500);
	free(fx);
}
END_TEST

/* Only a prefix of the reply is required; `send` alone is also enough. */
START_TEST(probe_prefix_and_send_only)
{
	static char plus[] = "+";
	struct fixture *fx = fx_new(1, 50, 500, 1, 1);
	struct cfg_health *h = &fx->lcfg.health;
	struct srv s;

	srv_start(&s, SRV_PONG, 0);
	fx_port(fx, 0, s.port);
	h->send = ping;
	h->send_len = sizeof(ping) - 1;
	h->expect = plus;
	h->expect_len = 1;
	ck_assert_int_eq(health_start(&fx->rt), 0);
	sleep_ms(300);
	ck_assert(backend_is_up(&fx->b[0]));
	health_stop(&fx->rt);
	ck_assert_int_eq(fx->b[0].last_result, HC_OK);

	h->expect = NULL;
	h->expect_len = 0;
	ck_assert_int_eq(health_start(&fx->rt), 0);
	sleep_ms(300);
	ck_assert(backend_is_up(&fx->b[0]));
	health_stop(&fx->rt);
	srv_stop(&s);
	ck_assert_int_eq(fx->b[0].last_result, HC_OK);
	free(fx);
}
END_TEST

START_TEST(probe_unexpected_reply)
{
	struct fixture *fx = fx_new(1, 100, 500, 2, 2);
	struct cfg_health *h = &fx->lcfg.health;
	struct backend *b = &fx->b[0];
	char want[256];
	struct srv s;
	long down;
	char *log;

	srv_start(&s, SRV_LOADING, 0);
	fx_port(fx, 0, s.port);
	h->send = ping;
	h->send_len = sizeof(ping) - 1;
	h->expect = pong;
	h->expect_len = sizeof(pong) - 1;

	capture_begin();
	log_set_level(LOG_WARN);
	ck_assert_int_eq(health_start(&fx->rt), 0);
	down = wait_state(b, false, 2000);
	health_stop(&fx->rt);
	srv_stop(&s);
	log_set_level(LOG_ERROR);
	log = capture_end();

	printf("unexpected-reply: down after %ld ms (bound interval*fall = "
	       "200)\n", down);
	ck_assert_msg(down >= 0, "a -LOADING backend stayed up");
	ck_assert_int_eq(b->last_result, HC_UNEXPECTED);
	snprintf(want, sizeof(want), "state=down reason=unexpected-reply "
		 "after=2 consecutive failures\n");
	ck_assert_msg(strstr(log, want), "no '%s' in:\n%s", want, log);
	free(log);
	free(fx);
}
END_TEST

/*
 * Accepted but never answered: down within interval * fall + timeout.  The
 * bound needs timeout <= interval, as a backend has one probe at a time.
 */
START_TEST(probe_timeout)
{
	struct fixture *fx = fx_new(1, 200, 150, 2, 2);
	struct cfg_health *h = &fx->lcfg.health;
	struct backend *b = &fx->b[0];
	struct srv s;
	long down;

	srv_start(&s, SRV_SILENT, 0);
	fx_port(fx, 0, s.port);
	h->send = ping;
	h->send_len = sizeof(ping) - 1;
	h->expect = pong;
	h->expect_len = sizeof(pong) - 1;

	ck_assert_int_eq(health_start(&fx->rt), 0);
	down = wait_state(b, false, 2000);
	health_stop(&fx->rt);
	srv_stop(&s);

	printf("timeout: down after %ld ms (bound interval*fall+timeout = "
	       "550), probe latency %u ms (timeout 150)\n", down,
	       b->last_latency_ms);
	ck_assert_msg(down >= 0, "a silent backend stayed up");
	ck_assert_int_eq(b->last_result, HC_TIMEOUT);
	ck_assert_uint_ge(b->last_latency_ms, 149);
	ck_assert_uint_lt(b->last_latency_ms, 1000);
	free(fx);
}
END_TEST

START_TEST(probe_closed_early)
{
	struct fixture *fx = fx_new(1, 50, 500, 1, 1);
	struct cfg_health *h = &fx->lcfg.health;
	struct backend *b = &fx->b[0];
	struct srv s;

	srv_start(&s, SRV_EOF, 0);
	fx_port(fx, 0, s.port);
	h->send = ping;
	h->send_len = sizeof(ping) - 1;
	h->expect = pong;
	h->expect_len = sizeof(pong) - 1;

	ck_assert_int_eq(health_start(&fx->rt), 0);
	ck_assert_int_ge(wait_state(b, false, 2000), 0);
	health_stop(&fx->rt);
	srv_stop(&s);
	ck_assert_int_eq(b->last_result, HC_CLOSED);
	free(fx);
}
END_TEST

/* A reset while waiting for the reply counts as refused. */
START_TEST(probe_reset)
{
	struct fixture *fx = fx_new(1, 50, 500, 1, 1);
	struct cfg_health *h = &fx->lcfg.health;
	struct backend *b = &fx->b[0];
	struct srv s;

	srv_start(&s, SRV_RESET, 0);
	fx_port(fx, 0, s.port);
	h->send = ping;
	h->send_len = sizeof(ping) - 1;
	h->expect = pong;
	h->expect_len = sizeof(pong) - 1;

	ck_assert_int_eq(health_start(&fx->rt), 0);
	ck_assert_int_ge(wait_state(b, false, 2000), 0);
	health_stop(&fx->rt);
	srv_stop(&s);
	ck_assert_int_eq(b->last_result, HC_REFUSED);
	free(fx);
}
END_TEST

START_TEST(probe_disabled_never_probes)
{
	struct fixture *fx = fx_new(2, 20, 100, 1, 1);
	struct srv s;
	int fds;

	srv_start(&s, SRV_CLOSE, 0);
	fx_port(fx, 0, s.port);
	fx_port(fx, 1, closed_port());
	fx->lcfg.health.enabled = false;

	fds = count_fds();
	ck_assert_int_eq(health_start(&fx->rt), 0);
	sleep_ms(300);
	ck_assert(backend_is_up(&fx->b[0]));
	ck_assert(backend_is_up(&fx->b[1]));
	health_stop(&fx->rt);
	health_stop(&fx->rt);
	ck_assert_int_eq(count_fds(), fds);
	srv_stop(&s);
	ck_assert_uint_eq(atomic_load(&s.accepts), 0);

	/* No pools at all is just as fine. */
	fx->rt.npools = 0;
	ck_assert_int_eq(health_start(&fx->rt), 0);
	health_stop(&fx->rt);
	free(fx);
}
END_TEST

/*
 * Start and stop repeatedly while probes are in flight (a listener that
 * never accepts and a reply that never comes): stop is immediate however
 * long the interval and timeout, and no fd survives it.
 */
START_TEST(start_stop_no_leak)
{
	static char x[] = "x";
	struct fixture *fx = fx_new(3, 10000, 5000, 2, 2);
	struct fixture *fx2 = fx_new(1, 40, 5000, 2, 2);
	uint16_t port = 0;
	long worst = 0;
	int lfd, fds;

	lfd = srv_listen(&port, 128);
	fx_port(fx, 0, port);
	fx_port(fx, 1, closed_port());
	fx_port(fx, 2, port);
	fx_port(fx2, 0, port);
	fx2->lcfg.health.expect = x;
	fx2->lcfg.health.expect_len = 1;
	/* A second pool whose probe is always in flight when stopped. */
	fx->rt.pools = calloc(2, sizeof(struct pool));
	ck_assert_ptr_nonnull(fx->rt.pools);
	fx->rt.pools[0] = fx->pool;
	fx->rt.pools[1] = fx2->pool;
	fx->rt.npools = 2;

	fds = count_fds();
	for (int i = 0; i < 10; i++) {
		long t;

		ck_assert_int_eq(health_start(&fx->rt), 0);
		ck_assert_int_eq(health_start(&fx->rt), -EBUSY);
		sleep_ms(60);
		t = now_ms();
		health_stop(&fx->rt);
		t = now_ms() - t;
		if (t > worst)
			worst = t;
		ck_assert_ptr_null(fx->rt.health);
		ck_assert_int_eq(count_fds(), fds);
	}
	printf("start/stop: slowest health_stop %ld ms\n", worst);
	ck_assert_int_lt(worst, 500);
	close(lfd);
	free(fx->rt.pools);
	free(fx2);
	free(fx);
}
END_TEST

/* The fd count once it is want, or as it is after a second. */
static int
fds_settle(int want)
{
	int n = count_fds();

	for (int i = 0; i < 200 && n != want; i++) {
		sleep_ms(5);
		n = count_fds();
	}
	return n;
}

/*
 * A reload hands the checker over: a probe in flight to a carried backend
 * goes on (no new connection), the probe of a dropped backend is closed,
 * and one whose expect changed starts again.  The fd count proves
 * ownership at each step.
 */
START_TEST(reload_carries_probes)
{
	static char x[] = "x", y[] = "y";
	struct fixture *fx = fx_new(2, 40, 10000, 2, 2);
	struct fixture *fx2 = fx_new(1, 40, 10000, 2, 2);
	struct runtime rt2 = { 0 }, rt3 = { 0 };
	struct pool pool2, pool3;
	struct cfg_pool l3;
	struct backend *only_b1[1];
	struct srv silent;
	int fds, n;

	srv_start(&silent, SRV_SILENT, 0);
	fx_port(fx, 0, silent.port);
	fx_port(fx, 1, silent.port);
	fx->lcfg.health.expect = x;
	fx->lcfg.health.expect_len = 1;
	fds = count_fds();

	ck_assert_int_eq(health_start(&fx->rt), 0);
	/* Both probes connect and wait for a reply that never comes. */
	for (int i = 0; i < 200 && atomic_load(&silent.accepts) < 2; i++)
		sleep_ms(5);
	ck_assert_int_eq(atomic_load(&silent.accepts), 2);
	/* The server is in this process and holds its end of each one. */
	ck_assert_int_eq(fds_settle(fds + 1 + 2 + 2), fds + 1 + 2 + 2);

	/* Same config, b2 dropped: b1's probe goes on, b2's is closed. */
	only_b1[0] = fx->bp[0];
	pool2 = fx->pool;
	pool2.backends = only_b1;
	pool2.nbackends = 1;
	rt2.pools = &pool2;
	rt2.npools = 1;
	ck_assert_int_eq(health_reload(&fx->rt, &rt2), 0);
	ck_assert_ptr_null(fx->rt.health);
	ck_assert_ptr_nonnull(rt2.health);
	sleep_ms(200);
	ck_assert_int_eq(atomic_load(&silent.accepts), 2);
	ck_assert_int_eq(fds_settle(fds + 1 + 1 + 2), fds + 1 + 1 + 2);

	/* A new expect: the probe in flight ran the old one; start again. */
	l3 = fx->lcfg;
	l3.health.expect = y;
	pool3 = pool2;
	pool3.cfg = &l3;
	rt3.pools = &pool3;
	rt3.npools = 1;
	ck_assert_int_eq(health_reload(&rt2, &rt3), 0);
	ck_assert_ptr_null(rt2.health);
	for (int i = 0; i < 200 && atomic_load(&silent.accepts) < 3; i++)
		sleep_ms(5);
	n = atomic_load(&silent.accepts);
	ck_assert_int_eq(n, 3);
	ck_assert_int_eq(fds_settle(fds + 1 + 1 + 3), fds + 1 + 1 + 3);

	/* To a runtime with nothing to check: no thread, nothing open. */
	fx2->lcfg.health.enabled = false;
	ck_assert_int_eq(health_reload(&rt3, &fx2->rt), 0);
	ck_assert_ptr_null(rt3.health);
	ck_assert_ptr_null(fx2->rt.health);
	ck_assert_int_eq(fds_settle(fds + 3), fds + 3);
	ck_assert(backend_is_up(fx->bp[0]));

	srv_stop(&silent);
	free(fx2);
	free(fx);
}
END_TEST

/*
 * The rise/fall run goes on across a reload: two failures before it and
 * one after mark a fall-3 backend down at the third probe.
 */
START_TEST(reload_keeps_fall_run)
{
	struct fixture *fx = fx_new(1, 200, 50, 3, 3);
	struct runtime rt2 = { 0 };
	struct pool pool2;
	long t;

	fx_port(fx, 0, closed_port());
	ck_assert_int_eq(health_start(&fx->rt), 0);
	/* Wait for two failures, then reload before the third. */
	for (int i = 0; i < 800 && fx->b[0].hsm.fail_run < 2; i++)
		sleep_ms(1);
	ck_assert_uint_eq(fx->b[0].hsm.fail_run, 2);
	pool2 = fx->pool;
	rt2.pools = &pool2;
	rt2.npools = 1;
	ck_assert_int_eq(health_reload(&fx->rt, &rt2), 0);
	t = wait_state(&fx->b[0], false, 1000);
	/* Afresh, it would take 3 probes: at least 360 ms. */
	ck_assert_msg(t >= 0 && t <= 330, "down %ld ms after a reload that "
		      "came after 2 of 3 failures (interval 200 ms)", t);
	health_stop(&rt2);
	free(fx);
}
END_TEST

/*
 * 300 backends that all time out, due at once: no more than the in-flight
 * cap of sockets is ever open, and every backend is still probed.
 */
START_TEST(probe_concurrency_cap)
{
	static char x[] = "x";
	struct fixture *fx = fx_new(MAX_BACKENDS, 100, 700, 1, 1);
	uint16_t port = 0;
	int lfd, base, most = 0;
	size_t ndown = 0;
	long t0, t;

	lfd = srv_listen(&port, 1024);
	for (size_t i = 0; i < MAX_BACKENDS; i++)
		fx_port(fx, i, port);
	fx->lcfg.health.expect = x;
	fx->lcfg.health.expect_len = 1;

	base = count_fds();
	t0 = now_ms();
	ck_assert_int_eq(health_start(&fx->rt), 0);
	while (now_ms() - t0 < 5000) {
		int n = count_fds() - base;

		if (n > most)
			most = n;
		ndown = 0;
		for (size_t i = 0; i < MAX_BACKENDS; i++)
			ndown += !backend_is_up(&fx->b[i]);
		if (ndown == MAX_BACKENDS)
			break;
		sleep_ms(5);
	}
	t = now_ms() - t0;
	health_stop(&fx->rt);
	close(lfd);

	printf("cap: %zu/%d down after %ld ms, at most %d fds open "
	       "(cap %d + eventfd)\n", ndown, MAX_BACKENDS, t, most,
	       INFLIGHT_CAP);
	ck_assert_uint_eq(ndown, MAX_BACKENDS);
	ck_assert_int_le(most, INFLIGHT_CAP + 1);
	/* The probes really ran side by side. */
	ck_assert_int_ge(most, INFLIGHT_CAP / 2);
	for (size_t i = 0; i < MAX_BACKENDS; i++)
		ck_assert_int_eq(fx->b[i].last_result, HC_TIMEOUT);
	free(fx);
}
END_TEST

/*
 * A full fd table makes every probe HC_ERROR: counted as a failure, warned
 * about, and recovered from once fds are free again.
 */
START_TEST(probe_emfile)
{
	struct fixture *fx = fx_new(1, 50, 500, 1, 2);
	struct backend *b = &fx->b[0];
	int *fill, nfill = 0, maxfd = 0;
	struct rlimit old, low;
	uint16_t port = 0;
	struct fixture *fx2 = fx_new(1, 50, 500, 1, 2);
	long t0, down, up;
	struct dirent *e;
	int rc;
	char *log;
	DIR *d;
	int lfd;

	lfd = srv_listen(&port, 128);
	fx_port(fx, 0, port);
	fx_port(fx2, 0, port);
	capture_begin();
	log_set_level(LOG_WARN);
	ck_assert_int_eq(health_start(&fx->rt), 0);
	sleep_ms(150);
	ck_assert(backend_is_up(b));

	d = opendir("/proc/self/fd");
	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) != NULL)
		if (atoi(e->d_name) > maxfd)
			maxfd = atoi(e->d_name);
	closedir(d);
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
	ck_assert_int_lt(maxfd + 32, 1000);
	low = old;
	low.rlim_cur = (rlim_t)maxfd + 1 + 32;
	fill = calloc(low.rlim_cur, sizeof(*fill));
	ck_assert_ptr_nonnull(fill);
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
	/*
	 * Keep taking every fd that frees up: a probe in flight while the
	 * table filled would otherwise hand its slot to the next probe.
	 */
	t0 = now_ms();
	down = -1;
	while (now_ms() - t0 < 2000) {
		while ((rlim_t)nfill < low.rlim_cur &&
		       (fill[nfill] = dup(lfd)) >= 0)
			nfill++;
		if (!backend_is_up(b)) {
			down = now_ms() - t0;
			break;
		}
		sleep_ms(1);
	}
	/* Starting a checker with no fd left fails cleanly. */
	while ((rlim_t)nfill < low.rlim_cur && (fill[nfill] = dup(lfd)) >= 0)
		nfill++;
	rc = health_start(&fx2->rt);
	while (nfill > 0)
		close(fill[--nfill]);
	free(fill);
	setrlimit(RLIMIT_NOFILE, &old);
	up = wait_state(b, true, 2000);
	health_stop(&fx->rt);
	close(lfd);
	log_set_level(LOG_ERROR);
	log = capture_end();

	printf("emfile: down after %ld ms, up %ld ms after fds freed\n", down,
	       up);
	ck_assert_msg(down >= 0, "still up with a full fd table");
	ck_assert_msg(up >= 0, "still down with free fds");
	ck_assert_int_eq(rc, -EMFILE);
	ck_assert_ptr_null(fx2->rt.health);
	ck_assert_msg(strstr(log, "probe failed locally: Too many open files"),
		      "no warning in:\n%s", log);
	ck_assert_msg(strstr(log, "state=down reason=error after=2 "
			     "consecutive failures"), "no down line:\n%s", log);
	free(log);
	free(fx2);
	free(fx);
}
END_TEST

static Suite *
health_suite(void)
{
	Suite *s = suite_create("health");
	TCase *tc;

	tc = tcase_create("state machine");
	tcase_add_test(tc, sm_fall_and_rise);
	tcase_add_test(tc, sm_interruption_resets);
	tcase_add_test(tc, sm_start_down_and_up);
	tcase_add_test(tc, sm_one_result_flips);
	tcase_add_test(tc, result_names);
	suite_add_tcase(s, tc);

	tc = tcase_create("probes");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, probe_refused_then_back);
	tcase_add_test(tc, probe_pong_stays_up);
	tcase_add_test(tc, probe_prefix_and_send_only);
	tcase_add_test(tc, probe_unexpected_reply);
	tcase_add_test(tc, probe_timeout);
	tcase_add_test(tc, probe_closed_early);
	tcase_add_test(tc, probe_reset);
	tcase_add_test(tc, probe_disabled_never_probes);
	tcase_add_test(tc, probe_concurrency_cap);
	tcase_add_test(tc, probe_emfile);
	suite_add_tcase(s, tc);

	tc = tcase_create("lifecycle");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, start_stop_no_leak);
	tcase_add_test(tc, reload_carries_probes);
	tcase_add_test(tc, reload_keeps_fall_run);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(health_suite());
	struct rlimit rl;
	int failed;

	/* Probe timings are printed; keep them in order with Check's output. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* Tests that check log lines raise the level while they capture. */
	log_set_level(LOG_ERROR);
	/* The in-flight cap test needs a few hundred fds. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 1024 &&
	    rl.rlim_max > rl.rlim_cur) {
		rl.rlim_cur = rl.rlim_max < 1024 ? rl.rlim_max : 1024;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

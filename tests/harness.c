/*
 * harness.c: processes, sockets and byte streams for the integration tests.
 * See harness.h.  No main() and nothing from src/: the Makefile links this
 * file into every test binary.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

TCase *
h_tcase(Suite *s, const char *name, double timeout, void (*teardown)(void))
{
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, timeout);
	suite_add_tcase(s, tc);
	return tc;
}

void
h_teardown(void)
{
	h_passed();
	h_cleanup();
}

void
h_backend_up(struct h_backend *b, enum h_mode mode, const char *name)
{
	int rc;

	h_label(tcase_name());
	rc = h_backend_start(b, mode, name);
	ck_assert_msg(rc == 0, "backend %s did not start: %s", name,
		      strerror(-rc));
}

int
h_run_suite(const char *prog, Suite *s)
{
	const char *old = getenv("ASAN_OPTIONS");
	char abs[PATH_MAX], opts[512];
	SRunner *sr;
	int failed;

	if (realpath(h_lb_bin(), abs) == NULL || access(abs, X_OK) != 0) {
		fprintf(stderr, "%s: %s is not an executable (set RINGLB_BIN)\n",
			prog, h_lb_bin());
		return 1;
	}
	setenv("RINGLB_BIN", abs, 1);
	snprintf(opts, sizeof(opts), "%s%squarantine_size_mb=16",
		 old ? old : "", old && *old ? ":" : "");
	setenv("ASAN_OPTIONS", opts, 1);
	signal(SIGPIPE, SIG_IGN);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}

#define H_MAX_TRACKED	64
#define H_MAX_NEEDLES	8
#define H_CHUNK		65536

/*
 * Children and fds the test process must kill or close when it ends.
 * Check runs each test in a forked process that leaves with _exit() on the
 * first failed assertion (and is SIGKILLed on timeout), so neither teardown
 * code nor exit handlers are sure to run: children also get
 * PR_SET_PDEATHSIG, and temp dirs and failure reports belong to a watchdog
 * process (below) that outlives the test.
 */
static pid_t tracked_pids[H_MAX_TRACKED];
static int tracked_fds[H_MAX_TRACKED];
static bool registered;
static int watchdog_fd = -1;	/* write end; EOF tells the watchdog */

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	remove(path);
	return 0;
}

static void
dump_file_tail(const char *label, const char *path, int lines)
{
	FILE *f = fopen(path, "r");
	char *buf, *p;
	long size;
	int n = 0;

	if (f == NULL)
		return;
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	if (size > 1 << 20)
		fseek(f, size - (1 << 20), SEEK_SET);
	else
		fseek(f, 0, SEEK_SET);
	buf = calloc(1, (1 << 20) + 1);
	if (buf == NULL) {
		fclose(f);
		return;
	}
	size = (long)fread(buf, 1, 1 << 20, f);
	fclose(f);
	p = buf + size;
	while (p > buf && n <= lines) {
		p--;
		if (*p == '\n' && p[1] != '\0')
			n++;
	}
	if (*p == '\n')
		p++;
	fprintf(stderr, "---- %s failed; last %d lines of %s ----\n%s"
		"---- end of %s ----\n", label, lines, path, p, path);
	free(buf);
}

/*
 * The watchdog reads "N name", "D dir", "L log" and "P" lines until the
 * test process is gone (EOF), then prints the logs' tails if no "P" (passed)
 * came and removes the dirs.  It leaves the process group so the killpg()
 * Check does after each test does not take it along.
 */
static void __attribute__((noreturn))
watchdog_main(int rfd)
{
	char *buf = NULL, *line, label[128] = "test";
	size_t len = 0, cap = 0;
	bool passed = false, keep = getenv("RINGLB_KEEP") != NULL;

	setsid();
	if (rfd != 3) {
		dup2(rfd, 3);
		rfd = 3;
	}
	close_range(4, ~0U, 0);
	for (;;) {
		ssize_t n;

		if (cap - len < 4096) {
			cap = cap * 2 + 8192;
			buf = realloc(buf, cap);
			if (buf == NULL)
				_exit(1);
		}
		n = read(rfd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	if (buf == NULL)
		_exit(0);
	buf[len] = '\0';
	passed = strstr(buf, "\nP\n") != NULL || strncmp(buf, "P\n", 2) == 0;
	/* Two passes: a log lives in a dir that is removed. */
	for (int pass = 0; pass < 2; pass++) {
		for (line = buf; line < buf + len; line += strlen(line) + 1) {
			char *nl = strchr(line, '\n');

			if (nl != NULL)
				*nl = '\0';
			if (line[0] == 'N' && line[1] == ' ')
				snprintf(label, sizeof(label), "%s", line + 2);
			else if (pass == 0 && line[0] == 'L' && !passed)
				dump_file_tail(label, line + 2, 40);
			else if (pass == 1 && line[0] == 'D' && !keep)
				nftw(line + 2, rm_entry, 8,
				     FTW_DEPTH | FTW_PHYS);
			else if (pass == 1 && line[0] == 'D')
				fprintf(stderr, "kept %s\n", line + 2);
		}
	}
	_exit(0);
}

static void
h_register(void)
{
	int p[2];
	pid_t pid;

	if (registered)
		return;
	registered = true;
	for (int i = 0; i < H_MAX_TRACKED; i++)
		tracked_fds[i] = -1;
	atexit(h_cleanup);
	if (pipe2(p, O_CLOEXEC) < 0)
		return;
	pid = fork();
	if (pid == 0) {
		close(p[1]);
		watchdog_main(p[0]);
	}
	close(p[0]);
	if (pid < 0)
		close(p[1]);
	else
		watchdog_fd = p[1];
}

/* One line to the watchdog. */
static void
tell_watchdog(char kind, const char *s)
{
	char line[512];
	int n;

	h_register();
	if (watchdog_fd < 0)
		return;
	n = snprintf(line, sizeof(line), "%c %s\n", kind, s);
	if (n > 0 && n < (int)sizeof(line) &&
	    write(watchdog_fd, line, (size_t)n) != n)
		return;
}

static void
track_pid(pid_t pid)
{
	h_register();
	for (int i = 0; i < H_MAX_TRACKED; i++) {
		if (tracked_pids[i] == 0) {
			tracked_pids[i] = pid;
			return;
		}
	}
}

static void
untrack_pid(pid_t pid)
{
	for (int i = 0; i < H_MAX_TRACKED; i++)
		if (tracked_pids[i] == pid)
			tracked_pids[i] = 0;
}

static void
track_fd(int fd)
{
	h_register();
	for (int i = 0; i < H_MAX_TRACKED; i++) {
		if (tracked_fds[i] < 0) {
			tracked_fds[i] = fd;
			return;
		}
	}
}

void
h_label(const char *name)
{
	tell_watchdog('N', name);
}

void
h_passed(void)
{
	h_register();
	if (watchdog_fd >= 0 && write(watchdog_fd, "P\n", 2) != 2)
		return;
}

void
h_cleanup(void)
{
	for (int i = 0; i < H_MAX_TRACKED; i++) {
		if (tracked_pids[i] > 0) {
			kill(tracked_pids[i], SIGKILL);
			waitpid(tracked_pids[i], NULL, 0);
			tracked_pids[i] = 0;
		}
	}
	for (int i = 0; i < H_MAX_TRACKED; i++) {
		if (tracked_fds[i] >= 0)
			close(tracked_fds[i]);
		tracked_fds[i] = -1;
	}
}

uint64_t
h_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void
h_sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Milliseconds left before deadline, at least 0. */
static int
left_ms(uint64_t deadline)
{
	uint64_t now = h_now_ms();

	return now >= deadline ? 0 : (int)(deadline - now);
}

/* splitmix64 finalizer. */
static uint64_t
mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

void
h_pattern_fill(uint64_t seed, uint64_t off, void *buf, size_t n)
{
	uint64_t key = mix64(seed);
	unsigned char *p = buf;

	while (n > 0) {
		uint64_t v = mix64(key + (off >> 3));
		unsigned i = (unsigned)(off & 7);
		size_t k = 8 - i;

		if (k > n)
			k = n;
		for (size_t j = 0; j < k; j++)
			p[j] = (unsigned char)(v >> ((i + j) * 8));
		p += k;
		off += k;
		n -= k;
	}
}

long
h_pattern_check(uint64_t seed, uint64_t off, const void *buf, size_t n)
{
	unsigned char want[4096];
	const unsigned char *p = buf;
	size_t done = 0;

	while (done < n) {
		size_t k = n - done < sizeof(want) ? n - done : sizeof(want);

		h_pattern_fill(seed, off + done, want, k);
		if (memcmp(want, p + done, k) != 0) {
			for (size_t j = 0; j < k; j++)
				if (want[j] != p[done + j])
					return (long)(done + j);
		}
		done += k;
	}
	return -1;
}

uint64_t
h_fnv1a(uint64_t h, const void *buf, size_t n)
{
	const unsigned char *p = buf;

	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

uint64_t
h_pattern_fnv(uint64_t seed, uint64_t len)
{
	unsigned char buf[4096];
	uint64_t h = H_FNV_INIT, off = 0;

	while (off < len) {
		size_t k = len - off < sizeof(buf) ? (size_t)(len - off)
						   : sizeof(buf);

		h_pattern_fill(seed, off, buf, k);
		h = h_fnv1a(h, buf, k);
		off += k;
	}
	return h;
}

/* Can we bind host:port without SO_REUSEADDR (no socket, no TIME_WAIT)? */
static bool
port_bindable(int family, int port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, rc, one = 1;

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		sin6->sin6_addr = in6addr_loopback;
		len = sizeof(*sin6);
	}
	fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return family == AF_INET6;	/* no IPv6: v4 decides */
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	rc = bind(fd, (struct sockaddr *)&ss, len);
	close(fd);
	return rc == 0 || (family == AF_INET6 && errno == EADDRNOTAVAIL);
}

int
h_free_port(void)
{
	static unsigned state;

	if (state == 0)
		state = (unsigned)getpid() * 2654435761u ^ (unsigned)h_now_ms();
	for (int tries = 0; tries < 500; tries++) {
		int port;

		state = state * 1103515245u + 12345u;
		port = 20000 + (int)((state >> 8) % 12000);
		if (port_bindable(AF_INET, port) &&
		    port_bindable(AF_INET6, port) && !h_port_listening(port))
			return port;
	}
	return -1;
}

static bool
listening_in(const char *path, int port)
{
	char line[512];
	FILE *f = fopen(path, "r");
	bool found = false;

	if (f == NULL)
		return false;
	while (fgets(line, sizeof(line), f) != NULL) {
		char addr[64];
		unsigned lport, st;

		if (sscanf(line, " %*u: %63[0-9A-Fa-f]:%x %*s %x", addr, &lport,
			   &st) != 3)
			continue;
		if ((int)lport == port && st == 0x0A) {
			found = true;
			break;
		}
	}
	fclose(f);
	return found;
}

bool
h_port_listening(int port)
{
	return listening_in("/proc/net/tcp", port) ||
	       listening_in("/proc/net/tcp6", port);
}

/* ---- backends ---- */

static int
write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

struct bconn {
	int fd;
	const struct h_backend *b;
};

/* Echo until EOF (0) or error (-1). */
static int
echo_loop(int fd, char *buf)
{
	for (;;) {
		ssize_t n = read(fd, buf, H_CHUNK);

		if (n == 0)
			return 0;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (write_full(fd, buf, (size_t)n) < 0)
			return -1;
	}
}

static void
send_name(int fd, const struct h_backend *b)
{
	char line[80];
	int n = snprintf(line, sizeof(line), "%s\n", b->name);

	write_full(fd, line, (size_t)n);
}

static void
serve_sink(int fd, char *buf)
{
	uint64_t h = H_FNV_INIT, len = 0;
	char line[64];
	int n;

	for (;;) {
		ssize_t r = read(fd, buf, H_CHUNK);

		if (r == 0)
			break;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		h = h_fnv1a(h, buf, (size_t)r);
		len += (uint64_t)r;
	}
	n = snprintf(line, sizeof(line), "%016llx %llu\n",
		     (unsigned long long)h, (unsigned long long)len);
	write_full(fd, line, (size_t)n);
}

static void
serve_source(int fd, const struct h_backend *b, char *buf)
{
	uint64_t off = 0;

	while (off < b->source_len) {
		size_t k = b->source_len - off < H_CHUNK
				   ? (size_t)(b->source_len - off)
				   : H_CHUNK;

		h_pattern_fill(b->source_seed, off, buf, k);
		if (write_full(fd, buf, k) < 0)
			return;
		off += k;
	}
}

/* H_CMD: the client's first line says how many bytes to echo before a
 * reset (0: echo until EOF). */
static void
serve_cmd(int fd, const struct h_backend *b, char *buf)
{
	struct linger lg = { 1, 0 };
	uint64_t limit, done = 0;
	char line[32];
	size_t n = 0;

	send_name(fd, b);
	/* A byte at a time: nothing past the newline is consumed. */
	for (;;) {
		ssize_t r = read(fd, line + n, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r != 1)
			return;
		if (line[n] == '\n' || ++n + 1 >= sizeof(line))
			break;
	}
	line[n] = '\0';
	limit = strtoull(line, NULL, 10);
	if (limit == 0) {
		if (echo_loop(fd, buf) == 0)
			shutdown(fd, SHUT_WR);
		return;
	}
	while (done < limit) {
		size_t k = limit - done < H_CHUNK ? (size_t)(limit - done)
						  : H_CHUNK;
		ssize_t r = read(fd, buf, k);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || write_full(fd, buf, (size_t)r) < 0)
			return;
		done += (uint64_t)r;
	}
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

static void *
backend_conn(void *arg)
{
	struct bconn *c = arg;
	const struct h_backend *b = c->b;
	int fd = c->fd;
	char *buf = malloc(H_CHUNK);
	struct linger lg = { 1, 0 };
	char ch;

	free(c);
	if (buf == NULL)
		goto out;
	switch (b->mode) {
	case H_NAME:
		send_name(fd, b);
		echo_loop(fd, buf);
		break;
	case H_ECHO:
		if (echo_loop(fd, buf) == 0)
			shutdown(fd, SHUT_WR);
		break;
	case H_HOLD:
		send_name(fd, b);
		while (read(fd, buf, H_CHUNK) > 0)
			;
		break;
	case H_SINK:
		serve_sink(fd, buf);
		break;
	case H_SOURCE:
		serve_source(fd, b, buf);
		break;
	case H_RESET:
		send_name(fd, b);
		if (read(fd, &ch, 1) == 1)
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		break;
	case H_STALL:
		/* Until the backend is killed: ringlb must push back. */
		for (;;)
			pause();
	case H_CMD:
		serve_cmd(fd, b, buf);
		break;
	}
out:
	free(buf);
	close(fd);
	return NULL;
}

static void __attribute__((noreturn))
backend_main(const struct h_backend *b, int rfd, pid_t parent)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	pthread_attr_t attr;
	int lfd, one = 1, port;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(0);
	signal(SIGPIPE, SIG_IGN);
	/* Inherited client sockets would keep the test's connections open. */
	if (rfd > 3)
		close_range(3, (unsigned)rfd - 1, 0);
	close_range((unsigned)rfd + 1, ~0U, 0);

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		goto fail;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)b->port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(lfd, 1024) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sin, &len) < 0)
		goto fail;
	port = ntohs(sin.sin_port);
	if (write(rfd, &port, sizeof(port)) != sizeof(port))
		_exit(1);
	close(rfd);

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (;;) {
		struct bconn *c;
		pthread_t t;
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EINTR)
				h_sleep_ms(5);
			continue;
		}
		c = malloc(sizeof(*c));
		if (c == NULL) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->b = b;
		if (pthread_create(&t, &attr, backend_conn, c) != 0) {
			free(c);
			close(fd);
		}
	}

fail:
	port = -errno;
	if (write(rfd, &port, sizeof(port)) != sizeof(port))
		_exit(1);
	_exit(1);
}

static int
backend_spawn(struct h_backend *b)
{
	struct pollfd pfd;
	int p[2], port = 0, rc;
	pid_t parent = getpid(), pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		rc = -errno;
		close(p[0]);
		close(p[1]);
		return rc;
	}
	if (pid == 0) {
		close(p[0]);
		backend_main(b, p[1], parent);
	}
	track_pid(pid);
	close(p[1]);
	pfd.fd = p[0];
	pfd.events = POLLIN;
	rc = poll(&pfd, 1, 5000);
	if (rc <= 0 || read(p[0], &port, sizeof(port)) != sizeof(port))
		port = -ETIMEDOUT;
	close(p[0]);
	if (port <= 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		untrack_pid(pid);
		return port < 0 ? port : -EIO;
	}
	b->port = port;
	b->pid = pid;
	return 0;
}

int
h_backend_start(struct h_backend *b, enum h_mode mode, const char *name)
{
	b->mode = mode;
	snprintf(b->name, sizeof(b->name), "%s", name);
	b->pid = 0;
	b->port = 0;
	return backend_spawn(b);
}

void
h_backend_kill(struct h_backend *b)
{
	if (b->pid <= 0)
		return;
	kill(b->pid, SIGKILL);
	waitpid(b->pid, NULL, 0);
	untrack_pid(b->pid);
	b->pid = 0;
}

int
h_backend_restart(struct h_backend *b)
{
	h_backend_kill(b);
	return backend_spawn(b);
}

void
h_backend_dead(struct h_backend *b, enum h_mode mode, const char *name)
{
	memset(b, 0, sizeof(*b));
	b->mode = mode;
	snprintf(b->name, sizeof(b->name), "%s", name);
	b->port = h_free_port();
}

/* ---- processes ---- */

int
h_tempdir(char *buf, size_t len)
{
	char tmpl[] = "/tmp/ringlb-it.XXXXXX";

	if (mkdtemp(tmpl) == NULL)
		return -errno;
	snprintf(buf, len, "%s", tmpl);
	tell_watchdog('D', tmpl);
	return 0;
}

int
h_write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	int rc = 0;

	if (f == NULL)
		return -errno;
	if (fputs(text, f) == EOF)
		rc = -EIO;
	if (fclose(f) != 0)
		rc = -EIO;
	return rc;
}

/* In a fresh child: die with the parent, plain signal state, no stray fds. */
static void
child_setup(pid_t parent)
{
	sigset_t none;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	close_range(3, ~0U, 0);
}

pid_t
h_spawn(const char *const argv[], const char *log_path)
{
	pid_t parent = getpid(), pid;

	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int in = open("/dev/null", O_RDONLY);
		int out = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);

		if (in < 0 || out < 0)
			_exit(127);
		dup2(in, 0);
		dup2(out, 1);
		dup2(out, 2);
		child_setup(parent);
		execvp(argv[0], (char *const *)(uintptr_t)argv);
		_exit(127);
	}
	track_pid(pid);
	return pid;
}

void
h_kill(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	untrack_pid(pid);
}

int
h_run(const char *const argv[], int timeout_ms, struct h_run *r)
{
	uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;
	size_t used[2] = { 0, 0 };
	char *dst[2] = { r->out, r->err };
	int op[2], ep[2], fds[2];
	pid_t parent = getpid(), pid;

	memset(r, 0, sizeof(*r));
	if (pipe2(op, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(ep, O_CLOEXEC) < 0) {
		close(op[0]);
		close(op[1]);
		return -errno;
	}
	pid = fork();
	if (pid < 0) {
		int rc = -errno;

		close(op[0]);
		close(op[1]);
		close(ep[0]);
		close(ep[1]);
		return rc;
	}
	if (pid == 0) {
		int in = open("/dev/null", O_RDONLY);

		dup2(in, 0);
		dup2(op[1], 1);
		dup2(ep[1], 2);
		child_setup(parent);
		execvp(argv[0], (char *const *)(uintptr_t)argv);
		_exit(127);
	}
	track_pid(pid);
	close(op[1]);
	close(ep[1]);
	fds[0] = op[0];
	fds[1] = ep[0];
	while (fds[0] >= 0 || fds[1] >= 0) {
		struct pollfd pfd[2];
		int n = 0, idx[2];

		for (int i = 0; i < 2; i++) {
			if (fds[i] < 0)
				continue;
			pfd[n].fd = fds[i];
			pfd[n].events = POLLIN;
			idx[n++] = i;
		}
		if (left_ms(deadline) == 0)
			break;
		if (poll(pfd, (nfds_t)n, left_ms(deadline)) <= 0)
			continue;
		for (int j = 0; j < n; j++) {
			int i = idx[j];
			char tmp[4096];
			ssize_t k;

			if (pfd[j].revents == 0)
				continue;
			k = read(fds[i], tmp, sizeof(tmp));
			if (k <= 0) {
				close(fds[i]);
				fds[i] = -1;
				continue;
			}
			if (used[i] + (size_t)k > sizeof(r->out) - 1)
				k = (ssize_t)(sizeof(r->out) - 1 - used[i]);
			memcpy(dst[i] + used[i], tmp, (size_t)k);
			used[i] += (size_t)k;
		}
	}
	for (int i = 0; i < 2; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	for (;;) {
		if (waitpid(pid, &r->status, WNOHANG) == pid)
			break;
		if (left_ms(deadline) == 0) {
			r->timed_out = true;
			kill(pid, SIGKILL);
			waitpid(pid, &r->status, 0);
			break;
		}
		h_sleep_ms(5);
	}
	untrack_pid(pid);
	return 0;
}

/* ---- ringlb ---- */

const char *
h_lb_bin(void)
{
	const char *bin = getenv("RINGLB_BIN");

	return bin != NULL && bin[0] != '\0' ? bin : "build/ringlb";
}

const char *
h_ctl_bin(void)
{
	static char path[PATH_MAX];
	const char *env = getenv("RINGLBCTL_BIN");
	char *slash;

	if (env != NULL && env[0] != '\0')
		return realpath(env, path);
	if (realpath(h_lb_bin(), path) == NULL)
		return NULL;
	slash = strrchr(path, '/');
	if ((size_t)(slash + 1 - path) + sizeof("ringlbctl") > sizeof(path)) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	strcpy(slash + 1, "ringlbctl");
	return path;
}

int
h_lb_mkdir(struct h_lb *lb)
{
	int rc;

	memset(lb, 0, sizeof(*lb));
	rc = h_tempdir(lb->dir, sizeof(lb->dir));
	if (rc < 0)
		return rc;
	snprintf(lb->cfg_path, sizeof(lb->cfg_path), "%s/config.json",
		 lb->dir);
	snprintf(lb->log_path, sizeof(lb->log_path), "%s/ringlb.log", lb->dir);
	return 0;
}

int
h_lb_prepare(struct h_lb *lb, const char *json)
{
	int rc = h_lb_mkdir(lb);

	if (rc < 0)
		return rc;
	return h_write_file(lb->cfg_path, json);
}

int
h_lb_start(struct h_lb *lb, const char *json, int wait_port,
	   const char *extra_arg)
{
	int rc = h_lb_prepare(lb, json);

	if (rc < 0)
		return rc;
	return h_lb_launch(lb, wait_port, extra_arg);
}

char *
h_subst(const char *text, const char *key, const char *val)
{
	struct h_str b = { 0 };
	const char *p;
	size_t klen = strlen(key);

	while (klen > 0 && (p = strstr(text, key)) != NULL) {
		h_str_printf(&b, "%.*s%s", (int)(p - text), text, val);
		text = p + klen;
	}
	h_str_printf(&b, "%s", text);
	return b.s;
}

int
h_lb_start_in(struct h_lb *lb, const char *json, int wait_port,
	      const char *extra_arg)
{
	char *text;
	int rc = h_lb_mkdir(lb);

	if (rc < 0)
		return rc;
	text = h_subst(json, "@DIR@", lb->dir);
	rc = h_write_file(lb->cfg_path, text);
	free(text);
	if (rc < 0)
		return rc;
	return h_lb_launch(lb, wait_port, extra_arg);
}

int
h_lb_launch(struct h_lb *lb, int wait_port, const char *extra_arg)
{
	const char *argv[6];
	char bin[4096];
	uint64_t deadline;
	int n = 0;

	/* execvp would search PATH for a bare name; keep it a path. */
	if (strchr(h_lb_bin(), '/') == NULL)
		snprintf(bin, sizeof(bin), "./%s", h_lb_bin());
	else
		snprintf(bin, sizeof(bin), "%s", h_lb_bin());
	argv[n++] = bin;
	argv[n++] = "-c";
	argv[n++] = lb->cfg_path;
	if (extra_arg != NULL)
		argv[n++] = extra_arg;
	argv[n] = NULL;
	lb->pid = h_spawn(argv, lb->log_path);
	if (lb->pid < 0) {
		int rc = lb->pid;

		lb->pid = 0;
		return rc;
	}
	tell_watchdog('L', lb->log_path);
	if (wait_port <= 0)
		return 0;
	deadline = h_now_ms() + 5000;
	for (;;) {
		if (!h_lb_running(lb))
			return -ECHILD;
		if (h_port_listening(wait_port) &&
		    h_lb_log_count(lb, "ringlb started") > 0)
			return 0;
		if (left_ms(deadline) == 0)
			return -ETIMEDOUT;
		h_sleep_ms(20);
	}
}

bool
h_lb_running(struct h_lb *lb)
{
	if (lb->pid <= 0)
		return false;
	if (waitpid(lb->pid, &lb->status, WNOHANG) == lb->pid) {
		untrack_pid(lb->pid);
		lb->pid = 0;
		return false;
	}
	return true;
}

int
h_lb_wait_exit(struct h_lb *lb, int timeout_ms)
{
	uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		if (!h_lb_running(lb))
			return 0;
		if (left_ms(deadline) == 0)
			return -ETIMEDOUT;
		h_sleep_ms(1);
	}
}

void
h_lb_signal(struct h_lb *lb, int sig)
{
	if (lb->pid > 0)
		kill(lb->pid, sig);
}

long
h_lb_rss_kb(const struct h_lb *lb)
{
	char path[64], line[256];
	long kb = -ENOENT;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)lb->pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -errno;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

int
h_lb_fd_count(const struct h_lb *lb)
{
	char path[64];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)lb->pid);
	d = opendir(path);
	if (d == NULL)
		return -errno;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

int
h_lb_fd_wait(const struct h_lb *lb, int want, int timeout_ms)
{
	uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;
	int n;

	for (;;) {
		n = h_lb_fd_count(lb);
		if (n == want || left_ms(deadline) == 0)
			return n;
		h_sleep_ms(50);
	}
}

char *
h_lb_log(const struct h_lb *lb)
{
	FILE *f = fopen(lb->log_path, "r");
	char *buf;
	long size;

	if (f == NULL)
		return strdup("");
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fseek(f, 0, SEEK_SET);
	if (size < 0)
		size = 0;
	buf = malloc((size_t)size + 1);
	if (buf == NULL) {
		fclose(f);
		return strdup("");
	}
	size = (long)fread(buf, 1, (size_t)size, f);
	buf[size] = '\0';
	fclose(f);
	return buf;
}

static int
collect_needles(const char **needles, va_list ap)
{
	int n = 0;
	const char *s;

	while ((s = va_arg(ap, const char *)) != NULL && n < H_MAX_NEEDLES)
		needles[n++] = s;
	return n;
}

/*
 * Lines of text holding every needle.  With first, stop at the first one
 * and return a copy of it there.
 */
static int
scan_log(const struct h_lb *lb, const char **needles, int nn, char **first)
{
	char *log = h_lb_log(lb), *line = log;
	int count = 0;

	while (line != NULL && *line != '\0') {
		char *end = strchr(line, '\n');
		bool all = true;

		if (end != NULL)
			*end = '\0';
		for (int i = 0; i < nn && all; i++)
			all = strstr(line, needles[i]) != NULL;
		if (all) {
			count++;
			if (first != NULL) {
				*first = strdup(line);
				break;
			}
		}
		line = end != NULL ? end + 1 : NULL;
	}
	free(log);
	return count;
}

int
h_lb_log_countv(const struct h_lb *lb, ...)
{
	const char *needles[H_MAX_NEEDLES];
	va_list ap;
	int nn;

	va_start(ap, lb);
	nn = collect_needles(needles, ap);
	va_end(ap);
	return scan_log(lb, needles, nn, NULL);
}

bool
h_lb_log_waitv(const struct h_lb *lb, int min, int timeout_ms, ...)
{
	uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;
	const char *needles[H_MAX_NEEDLES];
	va_list ap;
	int nn;

	va_start(ap, timeout_ms);
	nn = collect_needles(needles, ap);
	va_end(ap);
	for (;;) {
		if (scan_log(lb, needles, nn, NULL) >= min)
			return true;
		if (left_ms(deadline) == 0)
			return false;
		h_sleep_ms(20);
	}
}

char *
h_lb_log_linev(const struct h_lb *lb, ...)
{
	const char *needles[H_MAX_NEEDLES];
	char *line = NULL;
	va_list ap;
	int nn;

	va_start(ap, lb);
	nn = collect_needles(needles, ap);
	va_end(ap);
	scan_log(lb, needles, nn, &line);
	return line;
}

void
h_lb_dump_log(const struct h_lb *lb, int lines)
{
	dump_file_tail("dump", lb->log_path, lines);
}

/* ---- client side ---- */

static int
parse_addr(const char *host, int port, struct sockaddr_storage *ss,
	   socklen_t *len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		*len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*sin6);
		return 0;
	}
	return -EINVAL;
}

/* Start a non-blocking connect; fd, or -errno.  *done if already open. */
static int
connect_start(const char *src, const char *host, int port, bool *done)
{
	struct sockaddr_storage ss, sss;
	socklen_t len, slen;
	int fd, rc, one = 1;

	rc = parse_addr(host, port, &ss, &len);
	if (rc < 0)
		return rc;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0)
		return -errno;
	if (src != NULL) {
		rc = parse_addr(src, 0, &sss, &slen);
		if (rc < 0)
			goto fail;
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
			   sizeof(one));
		if (bind(fd, (struct sockaddr *)&sss, slen) < 0) {
			rc = -errno;
			goto fail;
		}
	}
	*done = false;
	if (connect(fd, (struct sockaddr *)&ss, len) == 0) {
		*done = true;
		return fd;
	}
	if (errno == EINPROGRESS)
		return fd;
	rc = -errno;
fail:
	close(fd);
	return rc;
}

/* Result of a finished non-blocking connect: 0 or -errno. */
static int
connect_result(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return -errno;
	return -err;
}

int
h_connect_from(const char *src, const char *host, int port, int timeout_ms)
{
	struct pollfd pfd;
	bool done;
	int fd, rc;

	fd = connect_start(src, host, port, &done);
	if (fd < 0 || done)
		return fd;
	pfd.fd = fd;
	pfd.events = POLLOUT;
	rc = poll(&pfd, 1, timeout_ms);
	if (rc == 0)
		rc = -ETIMEDOUT;
	else if (rc < 0)
		rc = -errno;
	else
		rc = connect_result(fd);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return fd;
}

int
h_connect(const char *host, int port, int timeout_ms)
{
	return h_connect_from(NULL, host, port, timeout_ms);
}

/* Wait for events on fd until deadline: revents, 0 on timeout, -errno. */
static int
wait_fd(int fd, short events, uint64_t deadline)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	int rc;

	for (;;) {
		rc = poll(&pfd, 1, left_ms(deadline));
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0)
			return -errno;
		return rc == 0 ? 0 : pfd.revents;
	}
}

int
h_write_all(int fd, const void *buf, size_t len, int timeout_ms)
{
	uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;
	const char *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		int rc;

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		rc = wait_fd(fd, POLLOUT, deadline);
		if (rc == 0)
			return -ETIMEDOUT;
		if (rc < 0)
			return rc;
	}
	return 0;
}

int
h_read_line(int fd, char *buf, size_t cap, int timeout_ms)
{
	uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;
	size_t n = 0;

	/* Byte at a time: nothing past the newline is consumed. */
	while (n + 1 < cap) {
		ssize_t k = recv(fd, buf + n, 1, MSG_DONTWAIT);
		int rc;

		if (k == 1) {
			if (buf[n] == '\n') {
				buf[n] = '\0';
				return (int)n;
			}
			n++;
			continue;
		}
		if (k == 0) {
			buf[n] = '\0';
			return -EPIPE;
		}
		if (errno != EAGAIN && errno != EINTR) {
			rc = -errno;
			buf[n] = '\0';
			return rc;
		}
		rc = wait_fd(fd, POLLIN, deadline);
		if (rc == 0) {
			buf[n] = '\0';
			return -ETIMEDOUT;
		}
		if (rc < 0)
			return rc;
	}
	buf[n] = '\0';
	return -ENOBUFS;
}

long
h_read_all(int fd, void *buf, size_t cap, int timeout_ms, long *got)
{
	uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;
	char *p = buf;
	size_t n = 0;
	long rc;

	for (;;) {
		ssize_t k;

		if (n == cap) {
			rc = -ENOBUFS;
			break;
		}
		k = recv(fd, p + n, cap - n, MSG_DONTWAIT);
		if (k > 0) {
			n += (size_t)k;
			continue;
		}
		if (k == 0) {
			rc = (long)n;
			break;
		}
		if (errno != EAGAIN && errno != EINTR) {
			rc = -errno;
			break;
		}
		rc = wait_fd(fd, POLLIN, deadline);
		if (rc == 0) {
			rc = -ETIMEDOUT;
			break;
		}
		if (rc < 0)
			break;
	}
	if (got != NULL)
		*got = (long)n;
	return rc;
}

int
h_wait_close(int fd, int timeout_ms, long *data)
{
	uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;
	char buf[4096];
	long total = 0;
	int rc;

	for (;;) {
		ssize_t k = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (k > 0) {
			total += k;
			continue;
		}
		if (k == 0) {
			rc = 0;
			break;
		}
		if (errno != EAGAIN && errno != EINTR) {
			rc = -errno;
			break;
		}
		rc = wait_fd(fd, POLLIN, deadline);
		if (rc == 0) {
			rc = -ETIMEDOUT;
			break;
		}
		if (rc < 0)
			break;
	}
	if (data != NULL)
		*data = total;
	return rc;
}

int
h_local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

void
h_close_reset(int fd)
{
	struct linger lg = { 1, 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

int
h_xfer(int fd, struct h_xfer *x)
{
	uint64_t deadline = h_now_ms() + (uint64_t)x->timeout_ms;
	char *txb = malloc(H_CHUNK), *rxb = malloc(H_CHUNK);
	bool shut = false;
	int rc = -1;

	x->sent = x->rcvd = 0;
	x->eof = false;
	x->err[0] = '\0';
	if (x->rx_buf != NULL && x->rx_cap > 0)
		x->rx_buf[0] = '\0';
	if (txb == NULL || rxb == NULL) {
		snprintf(x->err, sizeof(x->err), "out of memory");
		goto out;
	}
	for (;;) {
		bool tx_more = x->sent < x->tx_len, rx_more;
		short ev = 0;
		int r;

		if (!tx_more && x->tx_shut && !shut) {
			shutdown(fd, SHUT_WR);
			shut = true;
		}
		if (x->rx_buf != NULL)
			rx_more = !x->eof;
		else
			rx_more = x->rx_eof ? !x->eof : x->rcvd < x->rx_len;
		if (!tx_more && !rx_more)
			break;
		if (tx_more)
			ev |= POLLOUT;
		if (rx_more)
			ev |= POLLIN;
		r = wait_fd(fd, ev, deadline);
		if (r == 0) {
			snprintf(x->err, sizeof(x->err),
				 "timeout: sent %llu of %llu, received %llu",
				 (unsigned long long)x->sent,
				 (unsigned long long)x->tx_len,
				 (unsigned long long)x->rcvd);
			goto out;
		}
		if (r < 0) {
			snprintf(x->err, sizeof(x->err), "poll: %s",
				 strerror(-r));
			goto out;
		}
		if (tx_more && (r & (POLLOUT | POLLERR | POLLHUP))) {
			uint64_t left = x->tx_len - x->sent;
			size_t k = left < H_CHUNK ? (size_t)left : H_CHUNK;
			ssize_t n;

			h_pattern_fill(x->tx_seed, x->sent, txb, k);
			n = send(fd, txb, k, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n > 0) {
				x->sent += (uint64_t)n;
			} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
				snprintf(x->err, sizeof(x->err),
					 "send after %llu bytes: %s",
					 (unsigned long long)x->sent,
					 strerror(errno));
				goto out;
			}
		}
		if (rx_more && (r & (POLLIN | POLLERR | POLLHUP))) {
			ssize_t n = recv(fd, rxb, H_CHUNK, MSG_DONTWAIT);
			long bad;

			if (n == 0) {
				x->eof = true;
				if (x->rx_buf == NULL && x->rcvd < x->rx_len) {
					snprintf(x->err, sizeof(x->err),
						 "EOF after %llu of %llu bytes",
						 (unsigned long long)x->rcvd,
						 (unsigned long long)x->rx_len);
					goto out;
				}
				continue;
			}
			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR)
					continue;
				snprintf(x->err, sizeof(x->err),
					 "recv after %llu bytes: %s",
					 (unsigned long long)x->rcvd,
					 strerror(errno));
				goto out;
			}
			if (x->rx_buf != NULL) {
				if (x->rcvd + (uint64_t)n >= x->rx_cap) {
					snprintf(x->err, sizeof(x->err),
						 "reply longer than %zu bytes",
						 x->rx_cap);
					goto out;
				}
				memcpy(x->rx_buf + x->rcvd, rxb, (size_t)n);
				x->rcvd += (uint64_t)n;
				x->rx_buf[x->rcvd] = '\0';
				continue;
			}
			if (x->rcvd + (uint64_t)n > x->rx_len) {
				snprintf(x->err, sizeof(x->err),
					 "%llu bytes more than the %llu "
					 "expected",
					 (unsigned long long)(x->rcvd +
							      (uint64_t)n -
							      x->rx_len),
					 (unsigned long long)x->rx_len);
				goto out;
			}
			bad = h_pattern_check(x->rx_seed, x->rcvd, rxb,
					      (size_t)n);
			if (bad >= 0) {
				snprintf(x->err, sizeof(x->err),
					 "received byte %llu differs",
					 (unsigned long long)(x->rcvd +
							      (uint64_t)bad));
				goto out;
			}
			x->rcvd += (uint64_t)n;
		}
	}
	rc = 0;
out:
	free(txb);
	free(rxb);
	return rc;
}

/* ---- many connections ---- */

enum mstate {
	M_FREE,
	M_CONNECTING,
	M_OPEN,
	M_HELD,		/* done, kept open (hold) */
};

struct mconn {
	int fd;
	unsigned id;
	enum mstate st;
	size_t sent, rcvd;
};

static uint64_t
multi_seed(unsigned id)
{
	return 0x5eed0000ULL + id;
}

static int
multi_start(struct h_multi *m, struct mconn *c, unsigned id)
{
	char src[32];
	bool done;
	int fd;

	if (m->nsrc > 0)
		snprintf(src, sizeof(src), "127.0.0.%u", 2 + id % m->nsrc);
	fd = connect_start(m->nsrc > 0 ? src : NULL, m->host, m->port, &done);
	if (fd < 0) {
		snprintf(m->err, sizeof(m->err), "conn %u: connect: %s", id,
			 strerror(-fd));
		return -1;
	}
	c->fd = fd;
	c->id = id;
	c->st = done ? M_OPEN : M_CONNECTING;
	c->sent = c->rcvd = 0;
	return 0;
}

/* One poll event for c; 1 when its exchange completed, 0, or -1. */
static int
multi_event(struct h_multi *m, struct mconn *c, short rev, char *buf)
{
	ssize_t n;
	long bad;
	int rc;

	if (c->st == M_CONNECTING) {
		if (!(rev & (POLLOUT | POLLERR | POLLHUP)))
			return 0;
		rc = connect_result(c->fd);
		if (rc < 0) {
			snprintf(m->err, sizeof(m->err),
				 "conn %u: connect: %s", c->id,
				 strerror(-rc));
			return -1;
		}
		c->st = M_OPEN;
	}
	if ((rev & (POLLOUT | POLLERR | POLLHUP)) && c->sent < m->len) {
		size_t k = m->len - c->sent < H_CHUNK ? m->len - c->sent
						      : H_CHUNK;

		h_pattern_fill(multi_seed(c->id), c->sent, buf, k);
		n = send(c->fd, buf, k, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			c->sent += (size_t)n;
		} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
			snprintf(m->err, sizeof(m->err),
				 "conn %u: send after %zu bytes: %s", c->id,
				 c->sent, strerror(errno));
			return -1;
		}
	}
	if (!(rev & (POLLIN | POLLERR | POLLHUP)))
		return 0;
	n = recv(c->fd, buf, H_CHUNK, MSG_DONTWAIT);
	if (n == 0) {
		snprintf(m->err, sizeof(m->err),
			 "conn %u: EOF after %zu of %zu bytes echoed", c->id,
			 c->rcvd, m->len);
		return -1;
	}
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		snprintf(m->err, sizeof(m->err),
			 "conn %u: recv after %zu of %zu bytes: %s", c->id,
			 c->rcvd, m->len, strerror(errno));
		return -1;
	}
	if (c->rcvd + (size_t)n > m->len) {
		snprintf(m->err, sizeof(m->err),
			 "conn %u: %zu bytes echoed, sent %zu", c->id,
			 c->rcvd + (size_t)n, m->len);
		return -1;
	}
	bad = h_pattern_check(multi_seed(c->id), c->rcvd, buf, (size_t)n);
	if (bad >= 0) {
		snprintf(m->err, sizeof(m->err),
			 "conn %u: echoed byte %zu differs", c->id,
			 c->rcvd + (size_t)bad);
		return -1;
	}
	c->rcvd += (size_t)n;
	return c->rcvd == m->len && c->sent == m->len;
}

int
h_multi_echo(struct h_multi *m)
{
	uint64_t deadline = h_now_ms() + (uint64_t)m->timeout_ms;
	struct mconn *c = calloc(m->concurrency, sizeof(*c));
	struct pollfd *pfd = calloc(m->concurrency, sizeof(*pfd));
	unsigned *map = calloc(m->concurrency, sizeof(*map));
	char *buf = malloc(H_CHUNK);
	unsigned started = 0, open = 0;
	int rc = -1;

	m->done = 0;
	m->max_open = 0;
	m->err[0] = '\0';
	if (c == NULL || pfd == NULL || map == NULL || buf == NULL) {
		snprintf(m->err, sizeof(m->err), "out of memory");
		goto out;
	}
	if (m->hold && m->concurrency < m->total) {
		snprintf(m->err, sizeof(m->err),
			 "hold needs concurrency >= total");
		goto out;
	}
	while (m->done < m->total) {
		nfds_t n = 0;
		int r;

		for (unsigned i = 0; i < m->concurrency && started < m->total;
		     i++) {
			if (c[i].st != M_FREE)
				continue;
			if (multi_start(m, &c[i], started) < 0)
				goto out;
			started++;
			open++;
		}
		if (open > m->max_open)
			m->max_open = open;
		for (unsigned i = 0; i < m->concurrency; i++) {
			if (c[i].st != M_CONNECTING && c[i].st != M_OPEN)
				continue;
			pfd[n].fd = c[i].fd;
			pfd[n].events = POLLIN;
			if (c[i].st == M_CONNECTING || c[i].sent < m->len)
				pfd[n].events |= POLLOUT;
			pfd[n].revents = 0;
			map[n++] = i;
		}
		if (left_ms(deadline) == 0) {
			snprintf(m->err, sizeof(m->err),
				 "timeout: %u of %u connections done, %u open",
				 m->done, m->total, open);
			goto out;
		}
		r = poll(pfd, n, left_ms(deadline) < 200 ? left_ms(deadline)
							  : 200);
		if (r < 0 && errno != EINTR) {
			snprintf(m->err, sizeof(m->err), "poll: %s",
				 strerror(errno));
			goto out;
		}
		for (nfds_t j = 0; r > 0 && j < n; j++) {
			struct mconn *cc = &c[map[j]];
			int e;

			if (pfd[j].revents == 0)
				continue;
			e = multi_event(m, cc, pfd[j].revents, buf);
			if (e < 0)
				goto out;
			if (e == 0)
				continue;
			m->done++;
			if (m->hold) {
				cc->st = M_HELD;
			} else {
				close(cc->fd);
				cc->st = M_FREE;
				open--;
			}
		}
	}
	rc = 0;
out:
	for (unsigned i = 0; c != NULL && i < m->concurrency; i++)
		if (c[i].st != M_FREE)
			close(c[i].fd);
	free(c);
	free(pfd);
	free(map);
	free(buf);
	return rc;
}

/* ---- misc ---- */

void
h_str_printf(struct h_str *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->s != NULL ? b->s + b->len : NULL, room, fmt,
			      ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		b->cap = (b->cap + (size_t)n + 1) * 2;
		b->s = realloc(b->s, b->cap);
		if (b->s == NULL)
			abort();
	}
}

void
h_str_free(struct h_str *b)
{
	free(b->s);
	b->s = NULL;
	b->len = b->cap = 0;
}

int
h_blackhole(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int lfd, port;

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		return -errno;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(lfd, 0) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sin, &len) < 0) {
		close(lfd);
		return -errno;
	}
	track_fd(lfd);
	port = ntohs(sin.sin_port);
	/* Fill the accept queue until a connect no longer completes. */
	for (int i = 0; i < 16; i++) {
		int fd = h_connect("127.0.0.1", port, 300);

		if (fd == -ETIMEDOUT)
			return port;
		if (fd < 0)
			return fd;
		track_fd(fd);
	}
	return -EAGAIN;
}

/* ---- processes, continued ---- */

int
h_wait_pid(pid_t pid, int timeout_ms, int *status)
{
	uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);

		if (r == pid) {
			untrack_pid(pid);
			return 0;
		}
		if (r < 0 && errno != EINTR) {
			int rc = -errno;

			untrack_pid(pid);
			return rc;
		}
		if (left_ms(deadline) == 0)
			return -ETIMEDOUT;
		h_sleep_ms(5);
	}
}

/* ---- HTTP client for the admin API ---- */

int
h_unix_connect(const char *path, int timeout_ms)
{
	uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd, rc;

	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A full backlog says EAGAIN instead of blocking: retry until the
	 * deadline. */
	for (;;) {
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
			return fd;
		rc = -errno;
		if (rc != -EAGAIN && rc != -EINTR)
			break;
		if (left_ms(deadline) == 0) {
			rc = -ETIMEDOUT;
			break;
		}
		h_sleep_ms(10);
	}
	close(fd);
	return rc;
}

/* Parse status line and headers once the blank line is in buf. */
static bool
http_head_done(struct h_http *r, char *buf, size_t len, long *clen)
{
	char *end = memmem(buf, len, "\r\n\r\n", 4), *p;

	if (end == NULL)
		return false;
	r->head = strndup(buf, (size_t)(end - buf) + 2);
	if (r->head == NULL)
		return false;
	if (sscanf(r->head, "HTTP/1.%*1[01] %d", &r->status) != 1)
		r->status = -1;
	*clen = -1;
	for (p = strstr(r->head, "\r\n"); p != NULL && p[2] != '\0';
	     p = strstr(p + 2, "\r\n"))
		if (strncasecmp(p + 2, "content-length:", 15) == 0)
			*clen = strtol(p + 17, NULL, 10);
	r->head_len = (size_t)(end - buf) + 4;
	return true;
}

int
h_http_fd(int fd, const char *method, const char *path, const char *body,
	  int timeout_ms, struct h_http *r)
{
	uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;
	size_t blen = body != NULL ? strlen(body) : 0, len = 0, cap = 8192;
	struct h_str req = { 0 };
	char *buf = malloc(cap);
	long clen = -1;
	int rc;

	memset(r, 0, sizeof(*r));
	if (buf == NULL)
		return -ENOMEM;
	h_str_printf(&req,
		     "%s %s HTTP/1.1\r\nHost: localhost\r\n"
		     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
		     method, path, blen, body != NULL ? body : "");
	rc = h_write_all(fd, req.s, req.len, left_ms(deadline));
	h_str_free(&req);
	if (rc < 0)
		goto out;
	/* Until EOF, or until the body Content-Length announced is in. */
	for (;;) {
		ssize_t k;

		if (r->head == NULL && http_head_done(r, buf, len, &clen) &&
		    clen < 0)
			clen = -2;	/* no length: read to EOF */
		if (r->head != NULL && clen >= 0 &&
		    len >= r->head_len + (size_t)clen)
			break;
		if (cap - len < 4096) {
			char *nb = realloc(buf, cap * 2);

			if (nb == NULL) {
				rc = -ENOMEM;
				goto out;
			}
			buf = nb;
			cap *= 2;
		}
		k = recv(fd, buf + len, cap - len - 1, MSG_DONTWAIT);
		if (k > 0) {
			len += (size_t)k;
			continue;
		}
		if (k == 0)
			break;
		if (errno != EAGAIN && errno != EINTR) {
			rc = -errno;
			goto out;
		}
		rc = wait_fd(fd, POLLIN, deadline);
		if (rc == 0) {
			rc = -ETIMEDOUT;
			goto out;
		}
		if (rc < 0)
			goto out;
	}
	if (r->head == NULL && !http_head_done(r, buf, len, &clen)) {
		rc = -EBADMSG;
		goto out;
	}
	r->body_len = len - r->head_len;
	if (clen >= 0 && r->body_len > (size_t)clen)
		r->body_len = (size_t)clen;
	r->body = malloc(r->body_len + 1);
	if (r->body == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	memcpy(r->body, buf + r->head_len, r->body_len);
	r->body[r->body_len] = '\0';
	rc = r->status > 0 ? 0 : -EBADMSG;
out:
	free(buf);
	return rc;
}

int
h_http(const char *unix_path, const char *host, int port, const char *method,
       const char *path, const char *body, int timeout_ms, struct h_http *r)
{
	int fd, rc;

	memset(r, 0, sizeof(*r));
	if (unix_path != NULL)
		fd = h_unix_connect(unix_path, timeout_ms);
	else
		fd = h_connect(host, port, timeout_ms);
	if (fd < 0)
		return fd;
	rc = h_http_fd(fd, method, path, body, timeout_ms, r);
	close(fd);
	return rc;
}

bool
h_http_header(const struct h_http *r, const char *name, char *buf,
	      size_t cap)
{
	size_t n = strlen(name);

	for (const char *p = r->head != NULL ? strstr(r->head, "\r\n") : NULL;
	     p != NULL && p[2] != '\0'; p = strstr(p + 2, "\r\n")) {
		const char *v, *e;

		if (strncasecmp(p + 2, name, n) != 0 || p[2 + n] != ':')
			continue;
		v = p + 3 + n;
		while (*v == ' ' || *v == '\t')
			v++;
		e = strstr(v, "\r\n");
		snprintf(buf, cap, "%.*s", (int)(e - v), v);
		return true;
	}
	return false;
}

void
h_http_free(struct h_http *r)
{
	free(r->head);
	free(r->body);
	r->head = r->body = NULL;
}

int
h_get_name(const char *host, int port, char *name, size_t cap, int *fdp)
{
	int fd, rc;

	name[0] = '\0';
	fd = h_connect(host, port, 3000);
	if (fd < 0)
		return fd;
	rc = h_read_line(fd, name, cap, 3000);
	if (rc < 0 || fdp == NULL)
		close(fd);
	else
		*fdp = fd;
	return rc < 0 ? rc : 0;
}

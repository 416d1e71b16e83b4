/*
 * harness.h: helpers for the integration tests.  They start the real ringlb
 * binary with a written config, real backends as forked children on
 * 127.0.0.1, and talk to both through sockets that always have a deadline:
 * a test that would hang fails instead.
 *
 * Nothing here depends on src/.  Every child started here (backends, ringlb,
 * redis) dies with the test process (PR_SET_PDEATHSIG) and is also killed
 * and reaped by h_cleanup().
 */
#ifndef RINGLB_TEST_HARNESS_H
#define RINGLB_TEST_HARNESS_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Suites. */
/*
 * A test case of s whose every test runs `teardown` after it; h_teardown
 * (below) is the usual one.
 */
TCase *h_tcase(Suite *s, const char *name, double timeout,
	       void (*teardown)(void));
/*
 * main() of a suite that runs the real binary: RINGLB_BIN made absolute
 * (children inherit it, whatever their cwd), SIGPIPE ignored, ASan's
 * quarantine of a sanitized ringlb kept small (freed memory it holds counts
 * in the RSS that tests bound).  Runs s; the exit status for main().
 */
int h_run_suite(const char *prog, Suite *s);

/* Time. */
uint64_t h_now_ms(void);
void h_sleep_ms(unsigned ms);

/*
 * Deterministic byte streams.  Byte `off` of stream `seed` is a pure
 * function of both, so any chunk can be generated or checked on its own.
 */
void h_pattern_fill(uint64_t seed, uint64_t off, void *buf, size_t n);
/* Offset in buf of the first byte that differs from the stream, or -1. */
long h_pattern_check(uint64_t seed, uint64_t off, const void *buf, size_t n);
/* FNV-1a 64; start with H_FNV_INIT. */
#define H_FNV_INIT 0xcbf29ce484222325ULL
uint64_t h_fnv1a(uint64_t h, const void *buf, size_t n);
/* FNV-1a 64 of the first len bytes of stream seed. */
uint64_t h_pattern_fnv(uint64_t seed, uint64_t len);

/* A TCP port on 127.0.0.1 (and ::1) nobody is bound to, outside the
 * ephemeral range so no outgoing connection takes it meanwhile. */
int h_free_port(void);

/* Is `port` in LISTEN state on any address (/proc/net/tcp, tcp6)? */
bool h_port_listening(int port);

/* Backends: forked children serving 127.0.0.1:port, a thread per connection. */
enum h_mode {
	H_NAME,		/* send "<name>\n", echo until EOF, close */
	H_ECHO,		/* echo; on EOF shutdown(SHUT_WR) then close */
	H_HOLD,		/* send "<name>\n", discard input until EOF, close */
	H_SINK,		/* read to EOF, reply "<fnv1a64 hex> <len>\n", close */
	H_SOURCE,	/* send source_len bytes of stream source_seed, close */
	H_RESET,	/* send "<name>\n", on first input byte reset (RST) */
	H_STALL,	/* accept, then never read or write */
	/*
	 * send "<name>\n", read one line "<n>\n" from the client (not
	 * echoed), then echo: n == 0 until EOF, then shutdown(SHUT_WR) and
	 * close, like H_ECHO; n > 0 echo n bytes, then reset (RST), so one
	 * backend can reset one connection mid-stream and serve the others.
	 */
	H_CMD,
};

struct h_backend {
	char name[64];
	enum h_mode mode;
	int port;
	pid_t pid;		/* 0 when not running */
	uint64_t source_seed;	/* H_SOURCE */
	uint64_t source_len;
};

/*
 * Start b as a child serving `mode` on 127.0.0.1, any free port (stored in
 * b->port); b->source_* are kept.  Returns 0 once it listens, or -errno.
 */
int h_backend_start(struct h_backend *b, enum h_mode mode, const char *name);
/* h_backend_start() under the running test's label, asserting it works. */
void h_backend_up(struct h_backend *b, enum h_mode mode, const char *name);
/* SIGKILL and reap; its connections die with it.  Idempotent. */
void h_backend_kill(struct h_backend *b);
/* Serve again on the same port (kill first if running). 0 or -errno. */
int h_backend_restart(struct h_backend *b);
/* Reserve a name and a port with nothing listening on it (no process). */
void h_backend_dead(struct h_backend *b, enum h_mode mode, const char *name);

/* ringlb. */
struct h_lb {
	pid_t pid;		/* 0 once reaped */
	int status;		/* wait status once reaped */
	char dir[64];		/* temp dir holding config and log */
	char cfg_path[128];
	char log_path[128];
};

/* Path of the binary under test: $RINGLB_BIN or build/ringlb. */
const char *h_lb_bin(void);
/*
 * Absolute path of ringlbctl: $RINGLBCTL_BIN, else the one next to
 * h_lb_bin().  NULL (errno set) if it cannot be resolved.
 */
const char *h_ctl_bin(void);
/* Make a temp dir and write `json` as its config.json.  0 or -errno. */
int h_lb_prepare(struct h_lb *lb, const char *json);
/*
 * Start ringlb -c config.json [extra args], stderr and stdout to the log.
 * With wait_port > 0, wait up to 5 s for "ringlb started" in the log and the
 * port in LISTEN state; -ETIMEDOUT or -ECHILD (it exited) otherwise.
 */
int h_lb_start(struct h_lb *lb, const char *json, int wait_port,
	       const char *extra_arg);
bool h_lb_running(struct h_lb *lb);
/* Wait up to timeout_ms for exit; 0 and lb->status set, or -ETIMEDOUT. */
int h_lb_wait_exit(struct h_lb *lb, int timeout_ms);
/* kill(pid, sig) if running. */
void h_lb_signal(struct h_lb *lb, int sig);
/* VmRSS of the process in KiB, or -errno. */
long h_lb_rss_kb(const struct h_lb *lb);
/* Number of entries in /proc/PID/fd, or -errno. */
int h_lb_fd_count(const struct h_lb *lb);
/* Wait until the fd count equals want (up to timeout_ms); the last count. */
int h_lb_fd_wait(const struct h_lb *lb, int want, int timeout_ms);
/* The whole log, NUL-terminated; free() it.  "" if unreadable. */
char *h_lb_log(const struct h_lb *lb);
/*
 * Log searches by substrings a line must all contain.  The macros end the
 * list; call h_lb_log_count(lb, "conn=", "end=closed").
 */
#define H_END ((const char *)NULL)
/* Lines of the log containing every needle. */
int h_lb_log_countv(const struct h_lb *lb, ...) __attribute__((sentinel));
#define h_lb_log_count(lb, ...) h_lb_log_countv((lb), __VA_ARGS__, H_END)
/* Wait until h_lb_log_count(needles) >= min; true on success. */
bool h_lb_log_waitv(const struct h_lb *lb, int min, int timeout_ms, ...)
	__attribute__((sentinel));
#define h_lb_log_wait(lb, min, timeout_ms, ...) \
	h_lb_log_waitv((lb), (min), (timeout_ms), __VA_ARGS__, H_END)
/* Copy of the first log line containing every needle, or NULL; free() it. */
char *h_lb_log_linev(const struct h_lb *lb, ...) __attribute__((sentinel));
#define h_lb_log_line(lb, ...) h_lb_log_linev((lb), __VA_ARGS__, H_END)
/* Print the last `lines` log lines to stderr, for failure reports. */
void h_lb_dump_log(const struct h_lb *lb, int lines);

/* Processes. */
struct h_run {
	int status;		/* wait status */
	bool timed_out;
	char out[65536];	/* stdout, NUL-terminated, truncated */
	char err[65536];	/* stderr */
};
/* Run argv[0] (PATH search) with a deadline; 0, or -errno if not started. */
int h_run(const char *const argv[], int timeout_ms, struct h_run *r);
/* Start argv as a tracked child, output to log_path.  pid or -errno. */
pid_t h_spawn(const char *const argv[], const char *log_path);
/* SIGKILL and reap a child from h_spawn. */
void h_kill(pid_t pid);
/* Make a temp dir under /tmp (tracked, removed at cleanup). 0 or -errno. */
int h_tempdir(char *buf, size_t len);
/* Write a file.  0 or -errno. */
int h_write_file(const char *path, const char *text);

/* Kill and reap every tracked child, close tracked fds.  Runs at exit. */
void h_cleanup(void);
/*
 * Temp dirs are removed, and on failure the ringlb logs' tails printed, by
 * a watchdog process once the test process is gone, however it ended.
 * h_label() names the test in that report; h_passed() says not to print.
 */
void h_label(const char *name);
void h_passed(void);
/* The usual teardown: the test passed (else it would not get here), clean. */
void h_teardown(void);

/* Client side.  Sockets are non-blocking and close-on-exec. */
/* Connect to host ("127.0.0.1", "::1") with a deadline: fd or -errno. */
int h_connect(const char *host, int port, int timeout_ms);
/* The same from a given source address (port chosen at connect). */
int h_connect_from(const char *src, const char *host, int port,
		   int timeout_ms);
/* Write all of buf.  0 or -errno (-ETIMEDOUT). */
int h_write_all(int fd, const void *buf, size_t len, int timeout_ms);
/*
 * Read up to and including '\n' (NUL-terminated, newline stripped).
 * Length, or -errno: -ETIMEDOUT, -ECONNRESET, -EPIPE for EOF first.
 */
int h_read_line(int fd, char *buf, size_t cap, int timeout_ms);
/* Read until EOF.  Bytes read, or -errno (data so far in *got if set). */
long h_read_all(int fd, void *buf, size_t cap, int timeout_ms, long *got);
/*
 * Wait for the peer to end the connection.  Returns 0 on EOF, -ECONNRESET on
 * reset, -ETIMEDOUT if still open; *data gets the bytes that came first.
 */
int h_wait_close(int fd, int timeout_ms, long *data);
/*
 * Connect to host:port and read the first line (a name-sending backend
 * answers with its name).  0, or -errno.  With fdp the connection stays
 * open in *fdp; otherwise it is closed.
 */
int h_get_name(const char *host, int port, char *name, size_t cap, int *fdp);
/* Local port of a socket, or -1. */
int h_local_port(int fd);
/* Close with SO_LINGER 0: the peer gets a RST. */
void h_close_reset(int fd);

/*
 * One connection, both directions at once: send tx_len bytes of stream
 * tx_seed (then shutdown(SHUT_WR) if tx_shut) while reading.  The reply
 * must be rx_len bytes of stream rx_seed or, with rx_buf, is stored there
 * (up to rx_cap).  With rx_eof, EOF must follow.  0, or -1 and err.
 */
struct h_xfer {
	uint64_t tx_seed, tx_len;
	bool tx_shut;
	uint64_t rx_seed, rx_len;
	char *rx_buf;
	size_t rx_cap;
	bool rx_eof;
	int timeout_ms;
	/* results */
	uint64_t sent, rcvd;
	bool eof;
	char err[256];
};
int h_xfer(int fd, struct h_xfer *x);

/*
 * Many echo connections through one poll loop: `total` connections, at
 * most `concurrency` open; each sends `len` bytes of its own stream and must
 * get them back exactly.  With hold, nothing closes before every connection
 * got its bytes (all `total` are open together).  With nsrc > 0, connection
 * i binds source address 127.0.0.(2 + i % nsrc).  0, or -1 and err.
 */
struct h_multi {
	const char *host;
	int port;
	unsigned total;
	unsigned concurrency;
	size_t len;
	bool hold;
	unsigned nsrc;
	int timeout_ms;
	/* results */
	unsigned done;
	unsigned max_open;
	char err[256];
};
int h_multi_echo(struct h_multi *m);

/* A string builder for configs. */
struct h_str {
	char *s;
	size_t len, cap;
};
void h_str_printf(struct h_str *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void h_str_free(struct h_str *b);

/*
 * A listening socket on 127.0.0.1 whose accept queue is full: connects to it
 * neither complete nor fail (SYNs are dropped).  Port, or -errno; the fds
 * are tracked and closed at cleanup.
 */
int h_blackhole(void);

/*
 * Configs that name files in ringlb's own temp dir (the admin socket).
 * h_lb_mkdir() makes lb->dir and sets the paths, writing nothing;
 * h_lb_launch() starts ringlb on the lb->cfg_path already written, with the
 * same waiting as h_lb_start() (which is h_lb_prepare() + h_lb_launch()).
 * h_lb_start_in() is h_lb_start() with every "@DIR@" in json replaced by
 * lb->dir, e.g. "admin": { "socket": "@DIR@/admin.sock" }.
 */
int h_lb_mkdir(struct h_lb *lb);
int h_lb_launch(struct h_lb *lb, int wait_port, const char *extra_arg);
int h_lb_start_in(struct h_lb *lb, const char *json, int wait_port,
		  const char *extra_arg);
/* Copy of text with every key replaced by val; free() it. */
char *h_subst(const char *text, const char *key, const char *val);
/* Wait up to timeout_ms for a child from h_spawn to exit, and untrack it:
 * 0 and *status set, -ETIMEDOUT (still running), or -errno. */
int h_wait_pid(pid_t pid, int timeout_ms, int *status);

/*
 * A blocking HTTP/1.1 client with a deadline, for the admin API: one
 * request with "Connection: close", the reply read to EOF or to its
 * Content-Length.  0 and *r filled (free with h_http_free), or -errno
 * (-EBADMSG: not an HTTP reply).
 */
struct h_http {
	int status;		/* e.g. 200 */
	char *head;		/* status line and headers, CRLF-separated */
	size_t head_len;	/* bytes of head plus the blank line */
	char *body;		/* NUL-terminated */
	size_t body_len;
};
/* Connect to a Unix socket with a deadline: fd or -errno. */
int h_unix_connect(const char *path, int timeout_ms);
/* Over unix_path, or TCP host:port when unix_path is NULL. */
int h_http(const char *unix_path, const char *host, int port,
	   const char *method, const char *path, const char *body,
	   int timeout_ms, struct h_http *r);
/* The same on a connected socket (left open). */
int h_http_fd(int fd, const char *method, const char *path, const char *body,
	      int timeout_ms, struct h_http *r);
/* Value of header `name` (case-insensitive) into buf; false if absent. */
bool h_http_header(const struct h_http *r, const char *name, char *buf,
		   size_t cap);
void h_http_free(struct h_http *r);

#endif

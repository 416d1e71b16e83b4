/*
 * h_net.h: client sockets with deadlines, transfers, many echo connections,
 * the black hole.  Part of harness.h.
 */
#ifndef RINGLB_TEST_H_NET_H
#define RINGLB_TEST_H_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

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
/*
 * One client on 127.0.0.1:port: send tx[0..n) in writes of `step` bytes
 * `pause_ms` apart, shut down the write side, read until EOF into
 * out[0..cap).  Bytes read, or -errno (a reset: -ECONNRESET).  *cport (if
 * not NULL) gets the client's port.
 */
long h_exchange(int port, const void *tx, size_t n, size_t step,
		unsigned pause_ms, void *out, size_t cap, int *cport);
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

/*
 * A listening socket on 127.0.0.1 whose accept queue is full: connects to it
 * neither complete nor fail (SYNs are dropped).  Port, or -errno; the fds
 * are tracked and closed at cleanup.
 */
int h_blackhole(void);

#endif

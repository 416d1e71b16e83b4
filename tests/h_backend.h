/*
 * h_backend.h: backends as forked children, one mode each.  Part of
 * harness.h.
 */
#ifndef RINGLB_TEST_H_BACKEND_H
#define RINGLB_TEST_H_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

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
	/* send "<name> <peer address>\n", echo until EOF, close: the peer is
	 * the balancer that carried the client (tests/check_cluster.c) */
	H_PEER,
};

struct h_backend {
	char name[64];
	enum h_mode mode;
	char host[16];		/* 127/8 or "::1"; "": 127.0.0.1 */
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
/*
 * h_backend_up() on host (127.0.0.0/8, or "::1") and port (0: any free
 * one); for backends that DNS gives as addresses of one port.
 */
void h_backend_up_at(struct h_backend *b, enum h_mode mode, const char *name,
		     const char *host, int port);
/* SIGKILL and reap; its connections die with it.  Idempotent. */
void h_backend_kill(struct h_backend *b);
/* Serve again on the same port (kill first if running). 0 or -errno. */
int h_backend_restart(struct h_backend *b);
/* Reserve a name and a port with nothing listening on it (no process). */
void h_backend_dead(struct h_backend *b, enum h_mode mode, const char *name);

#endif

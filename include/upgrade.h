/*
 * upgrade.h: replacing the running binary without refusing a client.
 *
 * The running ringlb (the old process) starts the new binary with its own
 * arguments and a Unix SOCK_SEQPACKET channel on fd 3 (RINGLB_UPGRADE_FD).
 * Over it the old one sends a hello (protocol version, its pid and worker
 * count), its listening sockets, admin sockets and systemd sockets
 * (SCM_RIGHTS, at most UPGRADE_FDS_MAX per message), and its state as
 * JSON (operator states, runtime weights, health and ejection state).
 * The new process loads the config, starts its workers on the inherited
 * sockets (binding none of them again) and answers ready; only then does
 * the old one stop accepting, so the kernel's accept queues always have an
 * owner.  The old one then hands over each established connection once it
 * holds none of its bytes ('C', batched), for upgrade.handover_ms at most,
 * finishes the ones left and exits 0.  If the new process fails, exits or
 * is not ready within UPGRADE_READY_MS, it is killed and the old one goes
 * on as if nothing had happened.
 */
#ifndef RINGLB_UPGRADE_H
#define RINGLB_UPGRADE_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"

#define UPGRADE_PROTOCOL	1
#define UPGRADE_READY_MS	10000
#define UPGRADE_FDS_MAX		250	/* SCM_RIGHTS carries at most 253 */
#define UPGRADE_NAME_MAX	256	/* a server name, NUL included */
/* Connection ids: each process after an upgrade counts from here on. */
#define UPGRADE_ID_STEP		(1ULL << 40)

struct cfg_listener;
struct config;
struct runtime;

/*
 * One established connection handed from the old process to the new one
 * ('C'): the names it was balanced by, who the client is, what it moved,
 * and its two sockets.  Only one with none of its bytes held: nothing
 * queued, in a pipe or in a SEND.
 */
struct handover {
	char listener[CFG_NAME_MAX];
	char route[UPGRADE_NAME_MAX];	/* a server name of its route; "" */
	char pool[CFG_NAME_MAX];
	char backend[CFG_NAME_MAX];
	char address[96];		/* the backend's, as in the file */
	char sni[UPGRADE_NAME_MAX];	/* from the ClientHello; "" */
	struct sockaddr_in6 peer;	/* the client (AF_UNSPEC: not known) */
	struct sockaddr_in6 via;	/* the PROXY header's sender, if any */
	struct sockaddr_in6 local;	/* the destination that header gave */
	bool proxied;			/* a PROXY header gave peer and local */
	bool split;			/* sent to a side (pool) of a split */
	bool closed[2];			/* that way is done (EOF, passed on) */
	uint64_t bytes[2];		/* client->backend, backend->client */
	uint64_t age_ms;		/* since it was accepted */
	uint64_t idle_ms;		/* since its last byte */
	uint64_t id;			/* conn= in the log, kept */
	int fd[2];			/* client, backend */
	struct handover *next;		/* a worker's inbox */
};

/* ---- the old process ---- */

/* Remember how this process was started, for the new one (main). */
void upgrade_set_argv(int argc, char **argv);

struct upgrade_result {
	pid_t pid;		/* the new process */
	unsigned handed;	/* connections handed over */
	unsigned left;		/* connections left to finish here */
};

/*
 * Start `binary` (NULL: the one this process was started from) and hand
 * over to it.  Takes as long as the new process needs to be ready (at
 * most UPGRADE_READY_MS), then up to upgrade.handover_ms handing over
 * connections (res->handed).  0: the new process serves, this one has
 * stopped accepting and is finishing (control_stop_begin) and
 * upgrade_done() is true.  -errno with one line in err: nothing changed.
 */
int upgrade_run(const char *binary, struct upgrade_result *res, char *err,
		size_t errlen);
/* True once this process handed over to a new one. */
bool upgrade_done(void);
/*
 * A worker offers a quiescent connection (see upgrade_run()).  true: h,
 * its sockets included, is the upgrade's now; false: no hand-over is
 * open (any more), h is still the caller's.
 */
bool upgrade_offer(struct handover *h);

/* ---- the new process ---- */

/*
 * At start, before the config is loaded: if RINGLB_UPGRADE_FD is set,
 * read what the old process sends.  1: upgrading; 0: a plain start;
 * -1 with err (the old process is told).
 */
int upgrade_child_init(char *err, size_t errlen);
bool upgrade_child(void);
/* Where this process's connection ids begin (0 unless upgraded). */
uint64_t upgrade_id_base(void);
/* The old process's worker count (the new one keeps it); 0 if none. */
unsigned upgrade_workers(void);
/*
 * The inherited listening socket of listener l for worker w (its name
 * and listen address must match), now owned by the caller; or -1.
 */
int upgrade_listen_fd(const struct cfg_listener *l, unsigned w);
/* Was a socket of listener l inherited (so it must not be probed)? */
bool upgrade_has_listener(const struct cfg_listener *l);
/* The inherited admin socket on a Unix path (NULL: TCP), or -1. */
int upgrade_admin_fd(const char *unix_path);
/*
 * Before the first generation is built: give cfg's discovering pools the
 * backends DNS gave the old process, so none is missing (or loses its
 * state) until this process's first answer.
 */
void upgrade_discovered(struct config *cfg);
/* Apply the old process's state to rt's backends and splits. */
void upgrade_apply_state(struct runtime *rt);
/*
 * Tell the old process this one is ready and wait for it to stop
 * accepting.  Then close whatever was inherited and not taken.
 */
int upgrade_child_ready(char *err, size_t errlen);
/* Tell the old process why this one gives up (it will exit 1). */
void upgrade_child_failed(const char *why);

#endif

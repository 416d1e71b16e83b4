/*
 * config.h: the JSON configuration, parsed and validated into plain data.
 *
 * A struct config is immutable once cfg_load() returns it; the runtime
 * (pool.h) builds its live objects from it.
 */
#ifndef RINGLB_CONFIG_H
#define RINGLB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define CFG_NAME_MAX	64	/* listener and backend names, incl. NUL */
#define CFG_WEIGHT_MAX	256
#define CFG_PROBE_MAX	1024	/* health_check send/expect bytes */
#define CFG_ATTEMPTS_MAX 10
#define CFG_DEFAULT_PATH "config/ringlb.json"

enum cfg_algorithm {
	ALG_ROUND_ROBIN,
	ALG_LEAST_CONN,
};

struct cfg_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	char text[96];		/* as written in the file */
};

struct cfg_health {
	bool enabled;
	unsigned interval_ms;
	unsigned timeout_ms;
	unsigned rise;
	unsigned fall;
	char *send;		/* NULL when absent; may hold NUL bytes */
	size_t send_len;
	char *expect;		/* NULL when absent */
	size_t expect_len;
};

struct cfg_backend {
	char name[CFG_NAME_MAX];
	struct cfg_addr addr;
	unsigned weight;	/* 1..CFG_WEIGHT_MAX */
};

struct cfg_listener {
	char name[CFG_NAME_MAX];
	struct cfg_addr addr;
	enum cfg_algorithm algorithm;
	struct cfg_backend *backends;
	size_t nbackends;
	struct cfg_health health;
	unsigned connect_ms;	/* timeouts.connect_ms */
	unsigned idle_ms;	/* timeouts.idle_ms, 0 = never */
	unsigned connect_attempts; /* backends tried per client, 1..10 */
	int backlog;
};

#define CFG_ADMIN_SOCKET_DEFAULT "/run/ringlb/admin.sock"
#define CFG_SOCKET_PATH_MAX 108	/* sun_path, incl. NUL */

struct cfg_admin {
	bool enabled;
	char socket[CFG_SOCKET_PATH_MAX];
	unsigned mode;		/* permission bits of the socket file */
	bool has_listen;	/* optional TCP listener */
	struct cfg_addr listen;
};

struct config {
	char *path;
	struct cfg_admin admin;
	unsigned workers;
	int log_level;		/* enum log_level */
	unsigned shutdown_grace_ms;
	struct cfg_listener *listeners;
	size_t nlisteners;
};

/*
 * Read and validate the file at `path`.  Returns 0 and sets *out, or -1 with
 * one line in `err` naming the file, the JSON path and what is wrong.
 */
int cfg_load(const char *path, struct config **out, char *err, size_t errlen);

/* The same for text in memory; `name` stands for the file in messages. */
int cfg_parse(const char *text, size_t len, const char *name,
	      struct config **out, char *err, size_t errlen);

void cfg_free(struct config *cfg);

/*
 * Parse "host:port", "[v6]:port" or "v4:port"; host names are resolved.
 * Returns 0, or -1 with the reason (no file or path prefix) in `err`.
 */
int cfg_parse_addr(const char *s, struct cfg_addr *a, char *err, size_t errlen);

const char *cfg_algorithm_name(enum cfg_algorithm alg);

#endif

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
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#define CFG_NAME_MAX	64	/* listener and backend names, incl. NUL */
#define CFG_WEIGHT_MAX	256
#define CFG_PROBE_MAX	1024	/* health_check send/expect bytes */
#define CFG_ATTEMPTS_MAX 10
#define CFG_DEFAULT_PATH "config/ringlb.json"
#define CFG_ACL_MAX	1024	/* entries in one allow or deny list */
#define CFG_LIMIT_MAX	10000000 /* max_connections, rate, burst */

enum cfg_algorithm {
	ALG_ROUND_ROBIN,
	ALG_LEAST_CONN,
	ALG_RANDOM_TWO,
	ALG_MAGLEV,
};

/* What a hashing algorithm (maglev) hashes. */
enum cfg_hash_key {
	HASH_SOURCE_IP,		/* the client's address */
	HASH_SOURCE_IP_PORT,	/* ... and its port */
	HASH_SNI,		/* the TLS server name; source-ip without one */
};

/* pools[].hash; only with "algorithm": "maglev". */
struct cfg_hash {
	enum cfg_hash_key key;
	unsigned table_size;	/* a prime, 251..1000003 */
	unsigned balance_factor; /* bounded load, percent; 0: off */
};

/*
 * An address to bind or connect to.  A listener's "systemd:NAME" takes
 * the socket systemd passed under that name: family AF_UNSPEC, len 0,
 * and the name in text.
 */
struct cfg_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	char text[96];		/* as written in the file */
};

#define CFG_SYSTEMD_PREFIX "systemd:"

/* The socket-activation name of a "systemd:NAME" address, else NULL. */
static inline const char *
cfg_addr_systemd(const struct cfg_addr *a)
{
	return a->ss.ss_family == AF_UNSPEC ?
		       a->text + sizeof(CFG_SYSTEMD_PREFIX) - 1 :
		       NULL;
}

/* The same socket address, or the same systemd socket name. */
static inline bool
cfg_addr_same(const struct cfg_addr *a, const struct cfg_addr *b)
{
	if (a->ss.ss_family == AF_UNSPEC || b->ss.ss_family == AF_UNSPEC)
		return a->ss.ss_family == b->ss.ss_family &&
		       strcmp(a->text, b->text) == 0;
	return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

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

/* PROXY protocol header sent to a backend (send_proxy). */
enum cfg_send_proxy {
	SEND_PROXY_POOL,	/* a backend's default: as its pool says */
	SEND_PROXY_OFF,
	SEND_PROXY_V1,
	SEND_PROXY_V2,
};

struct cfg_backend {
	char name[CFG_NAME_MAX];
	struct cfg_addr addr;
	unsigned weight;	/* 1..CFG_WEIGHT_MAX */
	unsigned max_connections; /* 0: no limit */
	enum cfg_send_proxy send_proxy;	/* SEND_PROXY_POOL unless set */
	bool backup;		/* only while no primary is eligible */
	bool discovered;	/* from the pool's "discover", not the file */
	/*
	 * 0: a primary; a backup's tier, 1 and up, each tried only while
	 * none before it has an eligible backend ("backup": tier 1; SRV
	 * priorities: one tier each).
	 */
	uint8_t tier;
};

#define CFG_DNS_NAME_MAX	254	/* a DNS name, incl. NUL */
#define CFG_RESOLVERS_MAX	8

/* pools[].discover: backends from DNS (discover.h); off when absent. */
struct cfg_discover {
	bool enabled;
	bool srv;		/* "type": "srv"; else "a" (A and AAAA) */
	char name[CFG_DNS_NAME_MAX];	/* lowercase, no trailing dot */
	unsigned port;		/* "a": the backends' port */
	/* c-ares servers, "ip:port,..."; "": those of /etc/resolv.conf */
	char resolvers[CFG_RESOLVERS_MAX * 56];
	unsigned min_ttl_ms;	/* bounds of the TTL: when to ask again */
	unsigned max_ttl_ms;
	unsigned hold_ms;	/* the last good answer, while asking fails */
	unsigned max_backends;
};

/* One allow/deny entry.  An IPv4 range is AF_INET with the address in
 * addr[0..3]; an IPv4-mapped IPv6 range (::ffff:0:0/96 and longer) is
 * stored as IPv4, so it matches exactly the IPv4 sources. */
struct cfg_cidr {
	uint8_t addr[16];
	uint8_t family;		/* AF_INET or AF_INET6 */
	uint8_t prefix;		/* 0..32 or 0..128 */
};

/* listeners[].per_source; off when the object is absent. */
struct cfg_per_source {
	bool enabled;
	unsigned max_connections; /* open connections per source, 0: none */
	unsigned rate;		/* new connections per second, 0: none */
	unsigned burst;		/* token bucket size */
	unsigned ipv6_prefix;	/* IPv6 sources grouped by this prefix */
	unsigned table_size;	/* sources tracked at most (power of 2) */
};

/*
 * A set of backends and how to reach them.  Named in "pools", or made from
 * a listener's own "backends" (then named after the listener: inline).
 */
#define CFG_CC_NAME_MAX	16	/* TCP_CA_NAME_MAX, incl. NUL */

struct cfg_pool {
	char name[CFG_NAME_MAX];
	enum cfg_algorithm algorithm;
	struct cfg_backend *backends;	/* the file's, then discovered ones */
	size_t nbackends;
	size_t nstatic;			/* backends[0..nstatic): the file's */
	struct cfg_discover discover;
	struct cfg_health health;
	unsigned connect_ms;	/* timeouts.connect_ms */
	unsigned fail_ms;	/* timeouts.fail_ms, 0 = no passive marks */
	unsigned connect_attempts; /* backends tried per client, 1..10 */
	enum cfg_send_proxy send_proxy;	/* OFF, V1 or V2 */
	struct cfg_hash hash;
	unsigned slow_start_ms;	/* ramp of a backend back in; 0: off */
	struct cfg_ejection {
		unsigned consecutive_failures;	/* before an ejection */
		unsigned max_ms;		/* cap of fail_ms x run */
		unsigned max_percent;		/* of the pool ejected at once */
		bool early_close;	/* closed or reset, no byte, < 1 s */
	} ejection;		/* its base_ms is fail_ms */
	bool is_inline;		/* a listener's own backends */
	/* tcp_congestion of its backend sockets; "": the system's */
	char tcp_cc[CFG_CC_NAME_MAX];
	unsigned nusers;	/* listeners that name it */
};

/* listeners[].accept_proxy; off when the object is absent. */
struct cfg_accept_proxy {
	bool enabled;
	struct cfg_cidr *from;	/* peers that must send a header */
	size_t nfrom;
	unsigned timeout_ms;	/* for the whole header */
	bool allow_direct;	/* others are served without one */
};

#define CFG_NO_POOL	((size_t)-1)
#define CFG_NO_SPLIT	((size_t)-1)
#define CFG_SPLIT_MAX	16	/* pools in one split */
#define CFG_SPLIT_WEIGHT_MAX 10000
#define CFG_SNI_MAX	256	/* a server name pattern, incl. NUL */

/*
 * A "split" of a listener or a route: new clients spread over top-level
 * pools in proportion to the weights (an A/B test, a canary).
 */
struct cfg_split {
	struct cfg_split_side {
		size_t pool;		/* index in config.pools */
		unsigned weight;	/* 0..CFG_SPLIT_WEIGHT_MAX */
	} side[CFG_SPLIT_MAX];
	size_t nsides;			/* 2..CFG_SPLIT_MAX */
	bool sticky;			/* "sticky": "source-ip" */
	size_t listener;		/* index in config.listeners */
	/* The route's first server name; "": the listener's own split. */
	char route[CFG_SNI_MAX];
};

/* One server name of a listener's "routes", and where it goes. */
struct cfg_route {
	char sni[CFG_SNI_MAX];	/* lowercase; "*.example.org" or exact */
	size_t pool;		/* index in config.pools; or CFG_NO_POOL, */
	size_t split;		/* ... and an index in config.splits */
};

struct cfg_listener {
	char name[CFG_NAME_MAX];
	struct cfg_addr addr;
	size_t pool;		/* index in config.pools; CFG_NO_POOL: none */
	size_t split;		/* index in config.splits; CFG_NO_SPLIT: none */
	struct cfg_route *routes; /* by SNI, before the pool; NULL: none */
	size_t nroutes;
	unsigned idle_ms;	/* timeouts.idle_ms, 0 = never */
	unsigned preread_ms;	/* timeouts.preread_ms (with routes) */
	int backlog;
	/*
	 * client_speaks_first: accept once the first bytes are in
	 * (TCP_DEFER_ACCEPT), and let the backend handshake's last ACK ride
	 * on them (TCP_QUICKACK off before connect).
	 */
	bool client_first;
	/* tcp_congestion of its socket (and so its clients'); "": the system's */
	char tcp_cc[CFG_CC_NAME_MAX];
	unsigned max_connections; /* open client connections, 0: no limit */
	struct cfg_cidr *allow;	/* NULL: everyone not denied */
	size_t nallow;
	struct cfg_cidr *deny;
	size_t ndeny;
	struct cfg_per_source per_source;
	struct cfg_accept_proxy accept_proxy;
};

#define CFG_ADMIN_SOCKET_DEFAULT "/run/ringlb/admin.sock"
#define CFG_SOCKET_PATH_MAX 108	/* sun_path, incl. NUL */
#define CFG_ADMIN_HOSTS_MAX	16
#define CFG_HOST_NAME_MAX	254	/* incl. NUL */
#define CFG_TOKEN_PATH_MAX	256
#define CFG_TOKEN_MIN		16
#define CFG_TOKEN_MAX		256

struct cfg_admin {
	bool enabled;
	char socket[CFG_SOCKET_PATH_MAX];
	unsigned mode;		/* permission bits of the socket file */
	bool has_listen;	/* optional TCP listener */
	struct cfg_addr listen;
	/*
	 * Host names (beyond IP literals and localhost) a browser may use to
	 * reach the admin API and act from the status page: DNS rebinding.
	 */
	char allowed_hosts[CFG_ADMIN_HOSTS_MAX][CFG_HOST_NAME_MAX];
	size_t nallowed_hosts;
	/* token_file: the TCP listener wants "Authorization: Bearer token" */
	char token_file[CFG_TOKEN_PATH_MAX];
	char token[CFG_TOKEN_MAX + 1];
};

struct config {
	char *path;
	struct cfg_admin admin;
	unsigned workers;
	int log_level;		/* enum log_level */
	int log_format;		/* enum log_format */
	unsigned shutdown_grace_ms;
	/* upgrade.handover_ms: how long an upgrade hands connections over */
	unsigned upgrade_handover_ms;
	unsigned recv_buffers;	/* per worker; 0: poll + recv(2) only */
	struct cfg_pool *pools;	/* "pools", then the listeners' inline ones */
	size_t npools;
	struct cfg_listener *listeners;
	size_t nlisteners;
	struct cfg_split *splits;	/* of listeners and routes */
	size_t nsplits;
	bool has_user;		/* "user" given: drop to uid/gid at start */
	char user[CFG_NAME_MAX];
	char group[CFG_NAME_MAX];
	uid_t uid;
	gid_t gid;
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
/* A deep copy of cfg (to change a pool's discovered backends); or NULL. */
struct config *cfg_clone(const struct config *cfg);
/*
 * Make found[0..n) pool p's discovered backends, after the file's (a
 * name or address the file has is left out).  0 or -ENOMEM (p as it was).
 */
int cfg_set_discovered(struct cfg_pool *p, const struct cfg_backend *found,
		       size_t n);

/*
 * Parse "host:port", "[v6]:port" or "v4:port"; host names are resolved.
 * Returns 0, or -1 with the reason (no file or path prefix) in `err`.
 */
int cfg_parse_addr(const char *s, struct cfg_addr *a, char *err, size_t errlen);

const char *cfg_algorithm_name(enum cfg_algorithm alg);

/* What backend b of pool p sends: SEND_PROXY_OFF, _V1 or _V2. */
static inline enum cfg_send_proxy
cfg_backend_send_proxy(const struct cfg_pool *p, const struct cfg_backend *b)
{
	return b->send_proxy == SEND_PROXY_POOL ? p->send_proxy : b->send_proxy;
}

/* The pool that listener l sends its clients to (by default); or NULL. */
static inline const struct cfg_pool *
cfg_listener_pool(const struct config *cfg, const struct cfg_listener *l)
{
	return l->pool == CFG_NO_POOL ? NULL : &cfg->pools[l->pool];
}

#endif

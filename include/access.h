/*
 * access.h: who may open a connection on a listener, checked once per
 * accepted client before anything is allocated for it: the allow/deny
 * lists, the listener's max_connections and the per-source limits
 * (srctab.h).  A refused client is closed at once with a RST, counted by
 * reason in the listener's stats, and logged at most once a second per
 * listener.
 */
#ifndef RINGLB_ACCESS_H
#define RINGLB_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

struct cfg_cidr;
struct cfg_listener;
struct listener;

/* Why a client was turned away; indexes lstats.refused[]. */
enum refuse_reason {
	REFUSE_ACL_DENIED,	/* deny list, or not in a non-empty allow */
	REFUSE_LISTENER_FULL,	/* listener at max_connections */
	REFUSE_SOURCE_LIMIT,	/* source at per_source.max_connections */
	REFUSE_SOURCE_RATE,	/* source over per_source.rate */
	REFUSE_BACKEND_FULL,	/* every eligible backend at its limit */
	REFUSE_PROXY_UNTRUSTED,	/* not in accept_proxy.from, no allow_direct */
	REFUSE_PROXY_BAD,	/* a PROXY header that is not valid */
	REFUSE_PROXY_TIMEOUT,	/* no whole header within its timeout */
	REFUSE_NO_ROUTE,	/* no route for its SNI, and no default pool */
	REFUSE_PREREAD_TIMEOUT,	/* no whole ClientHello in time, no default */
	REFUSE_MAX,
};

/* "acl_denied", "listener_full", ... as in stats and metrics. */
const char *refuse_reason_name(enum refuse_reason r);

/*
 * Parse "10.0.0.0/8", "2001:db8::/32" or a bare address (a host range).
 * Host bits set beyond the prefix are an error.  0, or -1 with the reason.
 */
int access_parse_cidr(const char *s, struct cfg_cidr *out, char *err,
		      size_t errlen);

/*
 * The source of a client as the checks see it: AF_INET with the address in
 * out[0..3] for IPv4 and IPv4-mapped IPv6, else AF_INET6; 0 if neither.
 */
int access_source(const struct sockaddr *sa, uint8_t out[16]);

/* Does the listener's allow/deny let `sa` in?  Deny wins; a non-empty
 * allow admits only what it lists. */
bool access_acl_ok(const struct cfg_listener *l, const struct sockaddr *sa);

/*
 * A new client fd on listener l.  On admission returns 0 and holds the
 * listener's active count (and, with per_source, a source slot in *slot,
 * 0 when none) until access_release().  Otherwise counts the refusal,
 * logs it (rate-limited), closes fd with a RST and returns -1.  *peer is
 * the client's address if known (else sin6_family AF_UNSPEC); it is read
 * here if a check needs it.
 */
int access_admit(struct listener *l, int fd, uint64_t now_ms,
		 struct sockaddr_in6 *peer, uint32_t *slot);
/*
 * The same checks for a client known by the address it advertised in a
 * PROXY header.  0, or -1 with the refusal counted and logged (the caller
 * closes the connection).
 */
int access_admit_addr(struct listener *l, const struct sockaddr_in6 *peer,
		      uint64_t now_ms, uint32_t *slot);
/*
 * A listener with accept_proxy: reads the socket's peer into *peer.  1:
 * it is in accept_proxy.from and must send a header; 0: it is not, and
 * allow_direct lets it in as it is; -1: refused (proxy_untrusted), or gone,
 * and fd closed.
 */
int access_proxy_gate(struct listener *l, int fd, uint64_t now_ms,
		      struct sockaddr_in6 *peer);
/* Give back what access_admit() took. */
void access_release(struct listener *l, uint32_t slot);
/*
 * A client admitted by the process we upgraded from: counted as open on
 * the listener and in its source's slot (*slot, for access_release),
 * whatever the limits say now.
 */
void access_adopt(struct listener *l, const struct sockaddr_in6 *peer,
		  uint64_t now_ms, uint32_t *slot);
/*
 * Count and log (rate-limited) a refusal made later, e.g. backend_full;
 * detail (or NULL) says more in the log line.
 */
void access_refused(struct listener *l, enum refuse_reason r,
		    const struct sockaddr_in6 *peer, uint64_t now_ms,
		    const char *detail);

#endif

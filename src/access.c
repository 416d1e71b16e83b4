/*
 * access.c: admission of new clients (see access.h): allow/deny lists,
 * the listener's max_connections and the per-source limits, in that order,
 * so that a client refused early costs nothing later.  A source's token is
 * taken only when it is admitted.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "access.h"
#include "config.h"
#include "log.h"
#include "runtime.h"
#include "srctab.h"

/* At most one "refused" line per listener per this many ms. */
#define REFUSE_LOG_MS	1000

static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
				      0xff, 0xff };

const char *
refuse_reason_name(enum refuse_reason r)
{
	switch (r) {
	case REFUSE_ACL_DENIED:
		return "acl_denied";
	case REFUSE_LISTENER_FULL:
		return "listener_full";
	case REFUSE_SOURCE_LIMIT:
		return "source_limit";
	case REFUSE_SOURCE_RATE:
		return "source_rate";
	case REFUSE_BACKEND_FULL:
		return "backend_full";
	case REFUSE_PROXY_UNTRUSTED:
		return "proxy_untrusted";
	case REFUSE_PROXY_BAD:
		return "proxy_bad";
	case REFUSE_PROXY_TIMEOUT:
		return "proxy_timeout";
	case REFUSE_NO_ROUTE:
		return "no_route";
	case REFUSE_PREREAD_TIMEOUT:
		return "preread_timeout";
	case REFUSE_MAX:
		break;
	}
	return "?";
}

static bool
prefix_match(const uint8_t *a, const uint8_t *net, unsigned prefix)
{
	unsigned full = prefix / 8, rem = prefix % 8;
	uint8_t m;

	if (memcmp(a, net, full) != 0)
		return false;
	if (!rem)
		return true;
	m = (uint8_t)(0xff << (8 - rem));
	return (a[full] & m) == (net[full] & m);
}

int
access_parse_cidr(const char *s, struct cfg_cidr *out, char *err,
		  size_t errlen)
{
	const char *slash = strchr(s, '/');
	size_t hl = slash ? (size_t)(slash - s) : strlen(s);
	char host[INET6_ADDRSTRLEN + 1], net[INET6_ADDRSTRLEN];
	unsigned max, prefix;
	uint8_t masked[16] = { 0 };

	memset(out, 0, sizeof(*out));
	if (hl == 0 || hl >= sizeof(host))
		goto bad_addr;
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (inet_pton(AF_INET, host, out->addr) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, host, out->addr) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else {
		goto bad_addr;
	}
	prefix = max;
	if (slash) {
		const char *p = slash + 1;
		size_t n = strspn(p, "0123456789");
		/* Three digits at most, so strtoul cannot overflow. */
		unsigned long v = n > 0 && n <= 3 ? strtoul(p, NULL, 10) : 0;

		if (n == 0 || n > 3 || p[n] != '\0' || v > max) {
			snprintf(err, errlen,
				 "prefix length must be a number from 0 to %u",
				 max);
			return -1;
		}
		prefix = (unsigned)v;
	}
	out->prefix = (uint8_t)prefix;
	memcpy(masked, out->addr, prefix / 8);
	if (prefix % 8)
		masked[prefix / 8] =
			(uint8_t)(out->addr[prefix / 8] &
				  (0xff << (8 - prefix % 8)));
	if (memcmp(masked, out->addr, max / 8) != 0) {
		inet_ntop(out->family, masked, net, sizeof(net));
		snprintf(err, errlen,
			 "host bits set after the prefix (the range is %s/%u)",
			 net, prefix);
		return -1;
	}
	/* ::ffff:a.b.c.d/96+n is the IPv4 range a.b.c.d/n. */
	if (out->family == AF_INET6 && prefix >= 96 &&
	    memcmp(out->addr, v4mapped, 12) == 0) {
		memmove(out->addr, out->addr + 12, 4);
		memset(out->addr + 4, 0, 12);
		out->family = AF_INET;
		out->prefix = (uint8_t)(prefix - 96);
	}
	return 0;

bad_addr:
	snprintf(err, errlen,
		 "not an IPv4 or IPv6 address or range (like 10.0.0.0/8 or "
		 "2001:db8::/32)");
	return -1;
}

int
access_source(const struct sockaddr *sa, uint8_t out[16])
{
	memset(out, 0, 16);
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;

		memcpy(out, &sin->sin_addr, 4);
		return AF_INET;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;
		const uint8_t *a = sin6->sin6_addr.s6_addr;

		if (memcmp(a, v4mapped, 12) == 0) {
			memcpy(out, a + 12, 4);
			return AF_INET;
		}
		memcpy(out, a, 16);
		return AF_INET6;
	}
	return 0;
}

static bool
list_match(const struct cfg_cidr *list, size_t n, int family,
	   const uint8_t *addr)
{
	for (size_t i = 0; i < n; i++)
		if (list[i].family == family &&
		    prefix_match(addr, list[i].addr, list[i].prefix))
			return true;
	return false;
}

static bool
acl_ok(const struct cfg_listener *l, int family, const uint8_t *addr)
{
	if (list_match(l->deny, l->ndeny, family, addr))
		return false;
	return l->nallow == 0 || list_match(l->allow, l->nallow, family, addr);
}

bool
access_acl_ok(const struct cfg_listener *l, const struct sockaddr *sa)
{
	uint8_t addr[16];

	return acl_ok(l, access_source(sa, addr), addr);
}

void
access_refused(struct listener *l, enum refuse_reason r,
	       const struct sockaddr_in6 *peer, uint64_t now_ms,
	       const char *detail)
{
	struct lstats *st = l->stats;
	uint_fast64_t last;
	unsigned quiet;
	char client[80], more[96] = "";

	atomic_fetch_add_explicit(&st->refused[r], 1, memory_order_relaxed);
	/* A flood must not become a flood of log lines: one a second. */
	last = atomic_load_explicit(&st->refuse_log_ms, memory_order_relaxed);
	if ((last && now_ms - last < REFUSE_LOG_MS) ||
	    !atomic_compare_exchange_strong(&st->refuse_log_ms, &last,
					    now_ms ? now_ms : 1)) {
		atomic_fetch_add_explicit(&st->refuse_quiet, 1,
					  memory_order_relaxed);
		return;
	}
	quiet = atomic_exchange(&st->refuse_quiet, 0);
	log_addr((const struct sockaddr *)peer, client, sizeof(client));
	if (quiet)
		snprintf(more, sizeof(more),
			 " (and %u more refused since the last such line)",
			 quiet);
	log_warn("refused client=%s listener=%s reason=%s%s%s%s", client,
		 l->cfg->name, refuse_reason_name(r), detail ? ": " : "",
		 detail ? detail : "", more);
}

/* Refuse with a RST: the client learns at once, and no TIME_WAIT is left. */
static void
close_reset(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

/* Log the 1st, 2nd, 4th, 8th... source admitted untracked: a full table
 * shows up in the log without flooding it. */
static void
untracked_warn(const struct listener *l)
{
	uint64_t n = srctab_untracked(l->src);

	if (n & (n - 1))
		return;
	log_warn("listener=%s per_source table full: %llu new sources "
		 "admitted without per-source limits so far (raise "
		 "per_source.table_size)",
		 l->cfg->name, (unsigned long long)n);
}

static bool
peer_read(int fd, struct sockaddr_in6 *peer)
{
	socklen_t len = sizeof(*peer);

	if (getpeername(fd, (struct sockaddr *)peer, &len) == 0)
		return true;
	peer->sin6_family = AF_UNSPEC;
	return false;
}

/*
 * The checks, for a client whose address is known if the listener needs
 * it.  0, or the reason + 1 for a refusal (nothing held then).
 */
static int
admit(struct listener *ls, const struct sockaddr_in6 *peer, uint64_t now_ms,
      uint32_t *slot)
{
	const struct cfg_listener *l = ls->cfg;
	struct lstats *st = ls->stats;
	enum refuse_reason r;
	uint8_t addr[16] = { 0 };
	int family = 0;
	unsigned n;

	*slot = 0;
	if (l->nallow || l->ndeny || ls->src) {
		family = access_source((const struct sockaddr *)peer, addr);
		if (!acl_ok(l, family, addr))
			return REFUSE_ACL_DENIED + 1;
	}
	n = atomic_fetch_add_explicit(&st->active, 1, memory_order_relaxed);
	if (l->max_connections && n >= l->max_connections) {
		r = REFUSE_LISTENER_FULL;
		goto undo_active;
	}
	if (ls->src) {
		switch (srctab_admit(ls->src, family, addr, &l->per_source,
				     now_ms, slot)) {
		case SRC_OK:
			break;
		case SRC_UNTRACKED:
			untracked_warn(ls);
			break;
		case SRC_LIMIT:
			r = REFUSE_SOURCE_LIMIT;
			goto undo_active;
		case SRC_RATE:
			r = REFUSE_SOURCE_RATE;
			goto undo_active;
		}
	}
	return 0;

undo_active:
	atomic_fetch_sub_explicit(&st->active, 1, memory_order_relaxed);
	return (int)r + 1;
}

int
access_admit(struct listener *ls, int fd, uint64_t now_ms,
	     struct sockaddr_in6 *peer, uint32_t *slot)
{
	const struct cfg_listener *l = ls->cfg;
	int r;

	*slot = 0;
	/* Gone before we looked (ENOTCONN): nothing to admit. */
	if (peer->sin6_family == AF_UNSPEC &&
	    (l->nallow || l->ndeny || ls->src) && !peer_read(fd, peer)) {
		close(fd);
		return -1;
	}
	r = admit(ls, peer, now_ms, slot);
	if (r == 0)
		return 0;
	if (peer->sin6_family == AF_UNSPEC)
		peer_read(fd, peer);
	access_refused(ls, (enum refuse_reason)(r - 1), peer, now_ms, NULL);
	close_reset(fd);
	return -1;
}

void
access_adopt(struct listener *ls, const struct sockaddr_in6 *peer,
	      uint64_t now_ms, uint32_t *slot)
{
	uint8_t addr[16] = { 0 };
	int family;

	*slot = 0;
	atomic_fetch_add_explicit(&ls->stats->active, 1, memory_order_relaxed);
	if (!ls->src || peer->sin6_family == AF_UNSPEC)
		return;
	family = access_source((const struct sockaddr *)peer, addr);
	if (family)
		srctab_adopt(ls->src, family, addr, &ls->cfg->per_source,
			     now_ms, slot);
}

int
access_admit_addr(struct listener *l, const struct sockaddr_in6 *peer,
		  uint64_t now_ms, uint32_t *slot)
{
	int r = admit(l, peer, now_ms, slot);

	if (r == 0)
		return 0;
	access_refused(l, (enum refuse_reason)(r - 1), peer, now_ms, NULL);
	return -1;
}

int
access_proxy_gate(struct listener *l, int fd, uint64_t now_ms,
		  struct sockaddr_in6 *peer)
{
	const struct cfg_accept_proxy *ap = &l->cfg->accept_proxy;
	uint8_t addr[16];
	int family;

	if (!peer_read(fd, peer)) {
		close(fd);
		return -1;
	}
	family = access_source((const struct sockaddr *)peer, addr);
	if (list_match(ap->from, ap->nfrom, family, addr))
		return 1;
	if (ap->allow_direct)
		return 0;
	access_refused(l, REFUSE_PROXY_UNTRUSTED, peer, now_ms, NULL);
	close_reset(fd);
	return -1;
}

void
access_release(struct listener *l, uint32_t slot)
{
	if (slot)
		srctab_release(l->src, slot);
	atomic_fetch_sub_explicit(&l->stats->active, 1, memory_order_relaxed);
}

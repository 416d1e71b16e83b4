/*
 * fuzz_common.c: linked into every fuzz target (see fuzz.h).
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "config.h"
#include "fuzz.h"

/*
 * getaddrinfo() without DNS.  The config resolves host names at load time;
 * a fuzzer that made up "a.b" would wait on the network for each input.
 * Here only numeric addresses and "localhost" resolve, at once; anything
 * else is EAI_NONAME, the answer an unknown name gets.  The definitions in
 * the executable win over libc's (and the sanitizers' weak interceptors).
 */
struct fake_ai {
	struct addrinfo ai;
	struct sockaddr_storage ss;
};

int
getaddrinfo(const char *node, const char *service,
	    const struct addrinfo *hints, struct addrinfo **res)
{
	int family = hints != NULL ? hints->ai_family : AF_UNSPEC;
	bool numeric = hints != NULL && (hints->ai_flags & AI_NUMERICHOST);
	struct sockaddr_in *sin;
	struct sockaddr_in6 *sin6;
	struct fake_ai *f;

	if (node == NULL)
		return EAI_NONAME;
	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return EAI_MEMORY;
	sin = (struct sockaddr_in *)&f->ss;
	sin6 = (struct sockaddr_in6 *)&f->ss;
	if (family != AF_INET6 &&
	    (inet_pton(AF_INET, node, &sin->sin_addr) == 1 ||
	     (!numeric && strcmp(node, "localhost") == 0 &&
	      inet_pton(AF_INET, "127.0.0.1", &sin->sin_addr) == 1))) {
		sin->sin_family = AF_INET;
		f->ai.ai_addrlen = sizeof(*sin);
	} else if (family != AF_INET &&
		   (inet_pton(AF_INET6, node, &sin6->sin6_addr) == 1 ||
		    (!numeric && strcmp(node, "localhost") == 0 &&
		     inet_pton(AF_INET6, "::1", &sin6->sin6_addr) == 1))) {
		sin6->sin6_family = AF_INET6;
		f->ai.ai_addrlen = sizeof(*sin6);
	} else {
		free(f);
		return EAI_NONAME;
	}
	f->ai.ai_family = f->ss.ss_family;
	f->ai.ai_socktype = hints != NULL ? hints->ai_socktype : 0;
	f->ai.ai_addr = (struct sockaddr *)&f->ss;
	*res = &f->ai;
	return 0;
}

void
freeaddrinfo(struct addrinfo *res)
{
	/* ai is the first member: the pointer is the allocation. */
	free(res);
}

void
fuzz_check_cfg_error(const char *err)
{
	size_t n = strlen(FUZZ_CFG_NAME);

	/* One line, naming the file first (config.h). */
	if (strncmp(err, FUZZ_CFG_NAME, n) != 0 || err[n] != ':')
		FUZZ_FAIL("error does not start with the file name: %s", err);
	for (const char *p = err; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			FUZZ_FAIL("control byte 0x%02x in error: %s",
				  (unsigned char)*p, err);
}

static void
check_name(const char *what, const char *name)
{
	size_t n = strnlen(name, CFG_NAME_MAX);

	if (n == 0 || n >= CFG_NAME_MAX ||
	    strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		   "0123456789_.-") != n)
		FUZZ_FAIL("accepted bad %s name \"%.*s\"", what,
			  (int)CFG_NAME_MAX, name);
}

static void
check_addr(const char *what, const struct cfg_addr *a)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->ss;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->ss;

	if (a->ss.ss_family == AF_INET) {
		if (a->len != sizeof(*sin) || sin->sin_port == 0)
			FUZZ_FAIL("%s: bad IPv4 address %s", what, a->text);
	} else if (a->ss.ss_family == AF_INET6) {
		if (a->len != sizeof(*sin6) || sin6->sin6_port == 0)
			FUZZ_FAIL("%s: bad IPv6 address %s", what, a->text);
	} else if (a->ss.ss_family == AF_UNSPEC) {
		/* "systemd:NAME", a listener's only. */
		if (strcmp(what, "listen") != 0 || a->len != 0 ||
		    !cfg_addr_systemd(a) || !cfg_addr_systemd(a)[0])
			FUZZ_FAIL("%s: systemd address %s", what, a->text);
	} else {
		FUZZ_FAIL("%s: family %d for %s", what, a->ss.ss_family,
			  a->text);
	}
	if (a->text[0] == '\0' || memchr(a->text, '\0', sizeof(a->text)) == NULL)
		FUZZ_FAIL("%s: address text not a string", what);
}

void
fuzz_check_cfg(const struct config *cfg)
{
	if (cfg->workers < 1 || cfg->workers > 256)
		FUZZ_FAIL("workers %u", cfg->workers);
	if (cfg->nlisteners < 1)
		FUZZ_FAIL("no listener");
	if (cfg->admin.mode > 0777)
		FUZZ_FAIL("admin.mode %o", cfg->admin.mode);
	if (memchr(cfg->admin.socket, '\0', sizeof(cfg->admin.socket)) == NULL)
		FUZZ_FAIL("admin.socket not a string");
	if (cfg->admin.has_listen)
		check_addr("admin.listen", &cfg->admin.listen);
	for (size_t i = 0; i < cfg->nlisteners; i++) {
		const struct cfg_listener *l = &cfg->listeners[i];

		check_name("listener", l->name);
		check_addr("listen", &l->addr);
		/* One pool, or a split, or routes only. */
		if (l->pool != CFG_NO_POOL && l->pool >= cfg->npools)
			FUZZ_FAIL("listener %s: pool %zu of %zu", l->name,
				  l->pool, cfg->npools);
		if (l->split != CFG_NO_SPLIT &&
		    (l->split >= cfg->nsplits || l->pool != CFG_NO_POOL))
			FUZZ_FAIL("listener %s: split %zu of %zu, pool %zu",
				  l->name, l->split, cfg->nsplits, l->pool);
		if (l->pool == CFG_NO_POOL && l->split == CFG_NO_SPLIT &&
		    l->nroutes == 0)
			FUZZ_FAIL("listener %s: nowhere to send clients",
				  l->name);
		for (size_t j = 0; j < l->nroutes; j++) {
			const struct cfg_route *r = &l->routes[j];

			if ((r->pool == CFG_NO_POOL) == (r->split == CFG_NO_SPLIT) ||
			    (r->pool != CFG_NO_POOL && r->pool >= cfg->npools) ||
			    (r->split != CFG_NO_SPLIT && r->split >= cfg->nsplits))
				FUZZ_FAIL("listener %s route %s: pool %zu, split %zu",
					  l->name, r->sni, r->pool, r->split);
		}
		if (l->backlog < 1 || l->backlog > 65535)
			FUZZ_FAIL("backlog %d", l->backlog);
		for (size_t j = 0; j < i; j++)
			if (strcmp(cfg->listeners[j].name, l->name) == 0)
				FUZZ_FAIL("duplicate listener %s", l->name);
	}
	for (size_t i = 0; i < cfg->nsplits; i++) {
		const struct cfg_split *sp = &cfg->splits[i];
		unsigned total = 0;

		if (sp->nsides < 2 || sp->nsides > CFG_SPLIT_MAX ||
		    sp->listener >= cfg->nlisteners)
			FUZZ_FAIL("split %zu: %zu sides, listener %zu", i,
				  sp->nsides, sp->listener);
		for (size_t k = 0; k < sp->nsides; k++) {
			if (sp->side[k].pool >= cfg->npools ||
			    cfg->pools[sp->side[k].pool].is_inline ||
			    sp->side[k].weight > CFG_SPLIT_WEIGHT_MAX)
				FUZZ_FAIL("split %zu side %zu: pool %zu, weight %u",
					  i, k, sp->side[k].pool,
					  sp->side[k].weight);
			for (size_t m = 0; m < k; m++)
				if (sp->side[m].pool == sp->side[k].pool)
					FUZZ_FAIL("split %zu: a pool twice", i);
			total += sp->side[k].weight;
		}
		if (total == 0)
			FUZZ_FAIL("split %zu: every weight 0", i);
	}
	for (size_t i = 0; i < cfg->npools; i++) {
		const struct cfg_pool *l = &cfg->pools[i];
		const struct cfg_health *h = &l->health;

		check_name("pool", l->name);
		if (l->nbackends < 1)
			FUZZ_FAIL("pool %s: no backend", l->name);
		if (l->connect_attempts < 1 ||
		    l->connect_attempts > CFG_ATTEMPTS_MAX)
			FUZZ_FAIL("connect_attempts %u", l->connect_attempts);
		if (h->send_len > CFG_PROBE_MAX || h->expect_len > CFG_PROBE_MAX)
			FUZZ_FAIL("probe longer than %d", CFG_PROBE_MAX);
		if ((h->send == NULL && h->send_len != 0) ||
		    (h->expect == NULL && h->expect_len != 0))
			FUZZ_FAIL("probe length without bytes");
		for (size_t j = 0; j < i; j++)
			if (strcmp(cfg->pools[j].name, l->name) == 0)
				FUZZ_FAIL("duplicate pool %s", l->name);
		if (l->hash.table_size < 251 || l->hash.table_size > 1000003)
			FUZZ_FAIL("table_size %u", l->hash.table_size);
		for (unsigned d = 2; d <= l->hash.table_size / d; d++)
			if (l->hash.table_size % d == 0)
				FUZZ_FAIL("table_size %u not prime",
					  l->hash.table_size);
		if (l->ejection.max_ms < l->fail_ms ||
		    l->ejection.max_percent < 1 ||
		    l->ejection.max_percent > 100 ||
		    l->ejection.consecutive_failures < 1)
			FUZZ_FAIL("ejection out of range");
		for (size_t j = 0; j < l->nbackends; j++) {
			const struct cfg_backend *b = &l->backends[j];

			check_name("backend", b->name);
			check_addr("backend", &b->addr);
			if (b->weight < 1 || b->weight > CFG_WEIGHT_MAX)
				FUZZ_FAIL("weight %u", b->weight);
			for (size_t k = 0; k < j; k++)
				if (strcmp(l->backends[k].name, b->name) == 0)
					FUZZ_FAIL("duplicate backend %s",
						  b->name);
		}
	}
}

/*
 * fuzz_cidr.c: allow/deny ranges, access_parse_cidr() ("10.0.0.0/8",
 * "2001:db8::/32", a bare address).  Checks what access.h and config.h
 * promise: on success the family and prefix are in range, no host bit is
 * set past the prefix, an IPv4-mapped range comes back as IPv4, and a
 * listener that allows only this range admits its first address and
 * denies it when the range is in its deny list; on failure, one line.
 */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "access.h"
#include "config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_range(const char *s, const struct cfg_cidr *c)
{
	static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
					      0xff, 0xff };
	struct cfg_listener l = { .name = "fuzz" };
	struct sockaddr_storage ss = { 0 };
	unsigned max = c->family == AF_INET ? 32 : 128;

	if (c->family != AF_INET && c->family != AF_INET6)
		FUZZ_FAIL("\"%s\": family %d", s, c->family);
	if (c->prefix > max)
		FUZZ_FAIL("\"%s\": prefix %u", s, c->prefix);
	for (unsigned bit = c->prefix; bit < 128; bit++)
		if (c->addr[bit / 8] & (0x80 >> (bit % 8)))
			FUZZ_FAIL("\"%s\": bit %u set past /%u", s, bit,
				  c->prefix);
	if (c->family == AF_INET6 && c->prefix >= 96 &&
	    memcmp(c->addr, v4mapped, sizeof(v4mapped)) == 0)
		FUZZ_FAIL("\"%s\": IPv4-mapped range kept as IPv6", s);

	/* The network address itself, as a client would come from it. */
	if (c->family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, c->addr, 4);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, c->addr, 16);
	}
	l.allow = (struct cfg_cidr *)(uintptr_t)c;
	l.nallow = 1;
	if (!access_acl_ok(&l, (struct sockaddr *)&ss))
		FUZZ_FAIL("\"%s\": allow list does not admit its own network",
			  s);
	l.deny = l.allow;
	l.ndeny = 1;
	if (access_acl_ok(&l, (struct sockaddr *)&ss))
		FUZZ_FAIL("\"%s\": deny does not win over allow", s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfg_cidr c;
	char *s, err[256];

	/* Config strings hold no NUL. */
	if (memchr(data, '\0', size) != NULL)
		return 0;
	s = malloc(size + 1);
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	err[0] = '\0';
	if (access_parse_cidr(s, &c, err, sizeof(err)) == 0)
		check_range(s, &c);
	else if (err[0] == '\0' || strchr(err, '\n') != NULL)
		FUZZ_FAIL("\"%s\": bad reason \"%s\"", s, err);
	free(s);
	return 0;
}

/*
 * fuzz_proxy.c: the PROXY protocol parser, pp_parse().  Checks what
 * proxy_proto.h promises: a header is never longer than its version
 * allows or than the input; every shorter prefix of an input reads as
 * "more" or as the same verdict (a decision never depends on bytes not
 * yet read); bytes after a header change nothing; and a header ringlb
 * builds from what was parsed parses back to the same addresses.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "fuzz.h"
#include "proxy_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The pair as a header carries it (pp_build's own rule, pp_pair). */
static void
norm_pair(struct sockaddr_in6 *src, struct sockaddr_in6 *dst)
{
	struct sockaddr_in6 s = *src, d = *dst;

	pp_pair((const struct sockaddr *)&s, (const struct sockaddr *)&d, src,
		dst);
}

static void
check_roundtrip(const struct pp_info *pi, const uint8_t *tlv)
{
	struct sockaddr_in6 ws, wd;
	char out[PP_OUT_MAX];
	struct pp_info back;
	const char *why;
	size_t n;
	ssize_t len;

	len = pp_build(pi->version, out, sizeof(out),
		       (const struct sockaddr *)&pi->src,
		       (const struct sockaddr *)&pi->dst, NULL, tlv,
		       pi->tlv_len);
	if (len < 0)
		return;	/* TLVs that no longer fit: allowed */
	if (pp_parse((const uint8_t *)out, (size_t)len, &back, &n, &why) !=
		    PP_OK ||
	    n != (size_t)len)
		FUZZ_FAIL("built header does not parse back: %s",
			  why ? why : "incomplete");
	/* The same addresses, up to how a header writes mapped ones. */
	ws = pi->src;
	wd = pi->dst;
	norm_pair(&ws, &wd);
	norm_pair(&back.src, &back.dst);
	if (back.local || memcmp(&back.src, &ws, sizeof(ws)) != 0 ||
	    memcmp(&back.dst, &wd, sizeof(wd)) != 0)
		FUZZ_FAIL("addresses changed in a round trip");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pp_info pi, p2;
	enum pp_status st, s2;
	const char *why;
	size_t n, n2;
	uint8_t *more;

	st = pp_parse(data, size, &pi, &n, &why);
	if (st == PP_BAD && (why == NULL || strchr(why, '\n')))
		FUZZ_FAIL("PP_BAD without a one-line reason");
	if (st == PP_OK) {
		if (n == 0 || n > size)
			FUZZ_FAIL("header length %zu of %zu", n, size);
		if ((pi.version == 1 && n > PP_V1_MAX) ||
		    (pi.version == 2 && n > PP_V2_MAX) ||
		    (pi.version != 1 && pi.version != 2))
			FUZZ_FAIL("v%d header of %zu bytes", pi.version, n);
		if (pi.tlv_len && pi.tlv_off + pi.tlv_len != n)
			FUZZ_FAIL("TLVs do not end the header");
		if (!pi.local && pi.src.sin6_family != AF_INET &&
		    pi.src.sin6_family != AF_INET6)
			FUZZ_FAIL("family %d", pi.src.sin6_family);
		if (!pi.local)
			check_roundtrip(&pi, data + pi.tlv_off);
	}
	/* Prefixes: "more", or the same verdict. */
	for (size_t k = 0; k < size; k += 1 + k / 8) {
		s2 = pp_parse(data, k, &p2, &n2, &why);
		if (s2 != PP_MORE && s2 != st)
			FUZZ_FAIL("prefix of %zu bytes: %d, whole: %d", k, s2,
				  st);
		if (s2 == PP_OK && n2 != n)
			FUZZ_FAIL("prefix header length %zu, whole %zu", n2, n);
	}
	/* Bytes after a header are the client's, not the header's. */
	if (st == PP_OK && (more = malloc(n + 16))) {
		memcpy(more, data, n);
		memset(more + n, 'x', 16);
		if (pp_parse(more, n + 16, &p2, &n2, &why) != PP_OK || n2 != n)
			FUZZ_FAIL("trailing bytes changed the header");
		free(more);
	}
	return 0;
}

/*
 * proxy_proto.c: PROXY protocol headers (see proxy_proto.h).
 *
 * The parser is strict where the spec is: v1 is "PROXY" SP proto SP src SP
 * dst SP sport SP dport CRLF with single spaces, addresses of the family
 * the protocol names and ports without leading zeros; v2 is the 12-byte
 * signature, version 2, a known command, family and transport, a length
 * that covers the address block, and TLVs that add up to it exactly.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "proxy_proto.h"

static const uint8_t v2_sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
				    0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };
static const char v1_sig[] = "PROXY ";

static enum pp_status
bad(const char **why, const char *msg)
{
	*why = msg;
	return PP_BAD;
}

/* A decimal port, 0-65535, no sign and no leading zero. */
static bool
parse_port(const char *s, size_t n, uint16_t *out)
{
	unsigned v = 0;

	if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > 65535)
		return false;
	*out = (uint16_t)v;
	return true;
}

static bool
parse_ip(int family, const char *s, size_t n, struct sockaddr_in6 *sa)
{
	char tmp[INET6_ADDRSTRLEN];

	if (n == 0 || n >= sizeof(tmp))
		return false;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	memset(sa, 0, sizeof(*sa));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)(void *)sa;

		sin->sin_family = AF_INET;
		return inet_pton(AF_INET, tmp, &sin->sin_addr) == 1;
	}
	sa->sin6_family = AF_INET6;
	return inet_pton(AF_INET6, tmp, &sa->sin6_addr) == 1;
}

static void
set_port(struct sockaddr_in6 *sa, uint16_t port)
{
	if (sa->sin6_family == AF_INET)
		((struct sockaddr_in *)(void *)sa)->sin_port = htons(port);
	else
		sa->sin6_port = htons(port);
}

/* The v1 line buf[0..n), CRLF excluded. */
static enum pp_status
parse_v1_line(const char *buf, size_t n, struct pp_info *out,
	      const char **why)
{
	const char *f[5];
	size_t flen[5], k = 0, start = 6;	/* after "PROXY " */
	int family;
	uint16_t sport, dport;

	if (n >= 13 && memcmp(buf + 6, "UNKNOWN", 7) == 0 &&
	    (n == 13 || buf[13] == ' ')) {
		/* "UNKNOWN": whatever follows is to be ignored. */
		out->local = true;
		return PP_OK;
	}
	for (size_t i = start; i <= n; i++) {
		if (i < n && buf[i] != ' ')
			continue;
		if (k == 5)
			return bad(why, "PROXY v1: too many fields");
		f[k] = buf + start;
		flen[k] = i - start;
		if (flen[k] == 0)
			return bad(why, "PROXY v1: empty field (two spaces?)");
		k++;
		start = i + 1;
	}
	if (k != 5)
		return bad(why, "PROXY v1: too few fields");
	if (flen[0] == 4 && memcmp(f[0], "TCP4", 4) == 0)
		family = AF_INET;
	else if (flen[0] == 4 && memcmp(f[0], "TCP6", 4) == 0)
		family = AF_INET6;
	else
		return bad(why, "PROXY v1: unknown protocol (TCP4, TCP6 or "
			   "UNKNOWN)");
	if (!parse_ip(family, f[1], flen[1], &out->src) ||
	    !parse_ip(family, f[2], flen[2], &out->dst))
		return bad(why, "PROXY v1: bad address for the protocol");
	if (!parse_port(f[3], flen[3], &sport) ||
	    !parse_port(f[4], flen[4], &dport))
		return bad(why, "PROXY v1: bad port");
	set_port(&out->src, sport);
	set_port(&out->dst, dport);
	return PP_OK;
}

static enum pp_status
parse_v1(const uint8_t *buf, size_t len, struct pp_info *out,
	 size_t *hdr_len, const char **why)
{
	const char *s = (const char *)buf;

	/* The CR of a 107-byte line is its 106th byte (index 105). */
	for (size_t i = 0; i < len && i < PP_V1_MAX - 1; i++) {
		if (s[i] == '\n')
			return bad(why, "PROXY v1: LF without CR");
		if (s[i] != '\r')
			continue;
		if (i + 1 == len)
			return PP_MORE;
		if (s[i + 1] != '\n')
			return bad(why, "PROXY v1: CR without LF");
		*hdr_len = i + 2;
		out->version = 1;
		/* The line without its CRLF. */
		return parse_v1_line(s, i, out, why);
	}
	if (len >= PP_V1_MAX - 1)
		return bad(why, "PROXY v1: no CRLF within 107 bytes");
	return PP_MORE;
}

/* TLVs must add up to the space they are given, exactly. */
static bool
tlvs_ok(const uint8_t *p, size_t n)
{
	while (n) {
		size_t l;

		if (n < 3)
			return false;
		l = (size_t)p[1] << 8 | p[2];
		if (l > n - 3)
			return false;
		p += 3 + l;
		n -= 3 + l;
	}
	return true;
}

static enum pp_status
parse_v2(const uint8_t *buf, size_t len, struct pp_info *out,
	 size_t *hdr_len, const char **why)
{
	unsigned cmd, fam, proto;
	size_t body, need, alen;

	if (len < 16)
		return PP_MORE;
	if ((buf[12] >> 4) != 2)
		return bad(why, "PROXY v2: unknown version");
	cmd = buf[12] & 15;
	fam = buf[13] >> 4;
	proto = buf[13] & 15;
	body = (size_t)buf[14] << 8 | buf[15];
	if (cmd > 1)
		return bad(why, "PROXY v2: unknown command");
	if (fam > 3)
		return bad(why, "PROXY v2: unknown address family");
	if (proto > 2)
		return bad(why, "PROXY v2: unknown transport");
	if (16 + body > PP_V2_MAX)
		return bad(why, "PROXY v2: header longer than ringlb's limit "
			   "of 4096 bytes");
	alen = fam == 1 ? 12 : fam == 2 ? 36 : fam == 3 ? 216 : 0;
	if (cmd == 1 && body < alen)
		return bad(why, "PROXY v2: length shorter than its addresses");
	if (cmd == 1 && proto == 2)
		return bad(why, "PROXY v2: datagram transport on a stream");
	need = 16 + body;
	if (len < need)
		return PP_MORE;
	*hdr_len = need;
	out->version = 2;
	/* LOCAL, or addresses we cannot use: the socket's own. */
	if (cmd == 0 || fam == 0 || fam == 3 || proto == 0) {
		out->local = true;
		return PP_OK;
	}
	if (!tlvs_ok(buf + 16 + alen, body - alen))
		return bad(why, "PROXY v2: malformed TLVs");
	out->tlv_off = 16 + alen;
	out->tlv_len = body - alen;
	memset(&out->src, 0, sizeof(out->src));
	memset(&out->dst, 0, sizeof(out->dst));
	if (fam == 1) {
		struct sockaddr_in *s4 = (void *)&out->src;
		struct sockaddr_in *d4 = (void *)&out->dst;

		s4->sin_family = AF_INET;
		d4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, buf + 16, 4);
		memcpy(&d4->sin_addr, buf + 20, 4);
		memcpy(&s4->sin_port, buf + 24, 2);
		memcpy(&d4->sin_port, buf + 26, 2);
	} else {
		out->src.sin6_family = AF_INET6;
		out->dst.sin6_family = AF_INET6;
		memcpy(&out->src.sin6_addr, buf + 16, 16);
		memcpy(&out->dst.sin6_addr, buf + 32, 16);
		memcpy(&out->src.sin6_port, buf + 48, 2);
		memcpy(&out->dst.sin6_port, buf + 50, 2);
	}
	return PP_OK;
}

enum pp_status
pp_parse(const uint8_t *buf, size_t len, struct pp_info *out,
	 size_t *hdr_len, const char **why)
{
	size_t n;

	memset(out, 0, sizeof(*out));
	*hdr_len = 0;
	*why = NULL;
	if (len == 0)
		return PP_MORE;
	if (buf[0] == v2_sig[0]) {
		n = len < sizeof(v2_sig) ? len : sizeof(v2_sig);
		if (memcmp(buf, v2_sig, n) != 0)
			return bad(why, "not a PROXY header (bad v2 signature)");
		if (len < sizeof(v2_sig))
			return PP_MORE;
		return parse_v2(buf, len, out, hdr_len, why);
	}
	n = len < sizeof(v1_sig) - 1 ? len : sizeof(v1_sig) - 1;
	if (memcmp(buf, v1_sig, n) != 0)
		return bad(why, "not a PROXY header");
	if (len < sizeof(v1_sig) - 1)
		return PP_MORE;
	return parse_v1(buf, len, out, hdr_len, why);
}

/* An IPv4-mapped IPv6 address as IPv4; anything else as it is. */
static void
unmap(const struct sockaddr *sa, struct sockaddr_in6 *out)
{
	const struct sockaddr_in6 *s6 = (const void *)sa;

	memset(out, 0, sizeof(*out));
	if (sa->sa_family == AF_INET) {
		memcpy(out, sa, sizeof(struct sockaddr_in));
	} else if (sa->sa_family == AF_INET6 &&
		   IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
		struct sockaddr_in *s4 = (void *)out;

		s4->sin_family = AF_INET;
		s4->sin_port = s6->sin6_port;
		memcpy(&s4->sin_addr, &s6->sin6_addr.s6_addr[12], 4);
	} else if (sa->sa_family == AF_INET6) {
		*out = *s6;
	}
}

/* An IPv4 address as IPv4-mapped IPv6. */
static void
map6(struct sockaddr_in6 *a)
{
	struct sockaddr_in s4;

	if (a->sin6_family != AF_INET)
		return;
	memcpy(&s4, a, sizeof(s4));
	memset(a, 0, sizeof(*a));
	a->sin6_family = AF_INET6;
	a->sin6_port = s4.sin_port;
	a->sin6_addr.s6_addr[10] = 0xff;
	a->sin6_addr.s6_addr[11] = 0xff;
	memcpy(&a->sin6_addr.s6_addr[12], &s4.sin_addr, 4);
}

static ssize_t
build_v1(char *out, size_t cap, const struct sockaddr_in6 *s,
	 const struct sockaddr_in6 *d)
{
	char sa[INET6_ADDRSTRLEN], da[INET6_ADDRSTRLEN];
	const struct sockaddr_in *s4 = (const void *)s, *d4 = (const void *)d;
	int n;

	if (!s) {
		n = snprintf(out, cap, "PROXY UNKNOWN\r\n");
	} else if (s->sin6_family == AF_INET) {
		inet_ntop(AF_INET, &s4->sin_addr, sa, sizeof(sa));
		inet_ntop(AF_INET, &d4->sin_addr, da, sizeof(da));
		n = snprintf(out, cap, "PROXY TCP4 %s %s %u %u\r\n", sa, da,
			     ntohs(s4->sin_port), ntohs(d4->sin_port));
	} else {
		inet_ntop(AF_INET6, &s->sin6_addr, sa, sizeof(sa));
		inet_ntop(AF_INET6, &d->sin6_addr, da, sizeof(da));
		n = snprintf(out, cap, "PROXY TCP6 %s %s %u %u\r\n", sa, da,
			     ntohs(s->sin6_port), ntohs(d->sin6_port));
	}
	return n < 0 || (size_t)n >= cap ? -ENOSPC : n;
}

static ssize_t
build_v2(char *out, size_t cap, const struct sockaddr_in6 *s,
	 const struct sockaddr_in6 *d, const char *authority,
	 const uint8_t *tlvs, size_t tlv_len)
{
	size_t o = 16, alen = strlen(authority ? authority : "");
	const struct sockaddr_in *s4 = (const void *)s, *d4 = (const void *)d;

	if (cap < (s ? 16 + 36 : 16))
		return -ENOSPC;
	memcpy(out, v2_sig, sizeof(v2_sig));
	if (!s) {
		out[12] = 0x20;		/* v2, LOCAL */
		out[13] = 0x00;		/* UNSPEC */
	} else if (s->sin6_family == AF_INET) {
		out[12] = 0x21;		/* v2, PROXY */
		out[13] = 0x11;		/* INET, STREAM */
		memcpy(out + o, &s4->sin_addr, 4);
		memcpy(out + o + 4, &d4->sin_addr, 4);
		memcpy(out + o + 8, &s4->sin_port, 2);
		memcpy(out + o + 10, &d4->sin_port, 2);
		o += 12;
	} else {
		out[12] = 0x21;
		out[13] = 0x21;		/* INET6, STREAM */
		memcpy(out + o, &s->sin6_addr, 16);
		memcpy(out + o + 16, &d->sin6_addr, 16);
		memcpy(out + o + 32, &s->sin6_port, 2);
		memcpy(out + o + 34, &d->sin6_port, 2);
		o += 36;
	}
	if (s && alen) {
		if (alen > 255 || o + 3 + alen > cap)
			return -ENOSPC;
		out[o] = PP2_TYPE_AUTHORITY;
		out[o + 1] = 0;
		out[o + 2] = (char)alen;
		memcpy(out + o + 3, authority, alen);
		o += 3 + alen;
	}
	while (s && tlv_len >= 3) {
		size_t l = (size_t)tlvs[1] << 8 | tlvs[2];

		if (l > tlv_len - 3)
			break;
		if (!((tlvs[0] == PP2_TYPE_AUTHORITY && alen) ||
		      tlvs[0] == PP2_TYPE_CRC32C || tlvs[0] == PP2_TYPE_NOOP)) {
			if (o + 3 + l > cap || o + 3 + l > PP_V2_MAX)
				return -ENOSPC;
			memcpy(out + o, tlvs, 3 + l);
			o += 3 + l;
		}
		tlvs += 3 + l;
		tlv_len -= 3 + l;
	}
	out[14] = (char)((o - 16) >> 8);
	out[15] = (char)((o - 16) & 0xff);
	return (ssize_t)o;
}

void
pp_pair(const struct sockaddr *src, const struct sockaddr *dst,
	struct sockaddr_in6 *s, struct sockaddr_in6 *d)
{
	unmap(src, s);
	unmap(dst, d);
	if (s->sin6_family != d->sin6_family) {
		map6(s);
		map6(d);
	}
}

ssize_t
pp_build(int version, char *out, size_t cap, const struct sockaddr *src,
	 const struct sockaddr *dst, const char *authority,
	 const uint8_t *tlvs, size_t tlv_len)
{
	struct sockaddr_in6 s, d;
	bool known = src && dst &&
		     (src->sa_family == AF_INET || src->sa_family == AF_INET6) &&
		     (dst->sa_family == AF_INET || dst->sa_family == AF_INET6);

	if (known)
		pp_pair(src, dst, &s, &d);
	if (version == 1)
		return build_v1(out, cap, known ? &s : NULL, &d);
	return build_v2(out, cap, known ? &s : NULL, &d, authority, tlvs,
			tlv_len);
}

/*
 * proxy_proto.h: the PROXY protocol, versions 1 and 2 (HAProxy's
 * doc/proxy-protocol.txt): parsing the header a load balancer in front
 * sends, and building the one ringlb sends to a backend.  No I/O here.
 */
#ifndef RINGLB_PROXY_PROTO_H
#define RINGLB_PROXY_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/types.h>

#define PP_V1_MAX	107	/* a v1 line, "PROXY" to CRLF, at most */
/*
 * ringlb's limit for a whole v2 header.  The format allows 16 + 65535
 * bytes; addresses and the TLVs a load balancer adds (SNI, IDs, SSL
 * details) fit in far less, and every byte is held per connection.
 */
#define PP_V2_MAX	4096
#define PP_HDR_MAX	PP_V2_MAX
/* What pp_build() may write at most, TLVs passed on included. */
#define PP_OUT_MAX	(PP_V2_MAX + 4 + 255)

#define PP2_TYPE_AUTHORITY	0x02
#define PP2_TYPE_CRC32C		0x03
#define PP2_TYPE_NOOP		0x04

enum pp_status {
	PP_MORE,	/* a valid start: read more */
	PP_OK,		/* a whole header */
	PP_BAD,		/* not a valid header, whatever follows */
};

struct pp_info {
	int version;			/* 1 or 2 */
	/* LOCAL (v2) or UNKNOWN (v1): use the socket's own addresses. */
	bool local;
	/* The advertised client and the address it connected to. */
	struct sockaddr_in6 src;	/* AF_INET or AF_INET6 */
	struct sockaddr_in6 dst;
	/* v2: the TLVs, at buf + tlv_off (checked to be well formed). */
	size_t tlv_off;
	size_t tlv_len;
};

/*
 * Look for a PROXY header at the start of buf[0..len).  PP_OK: it is
 * *hdr_len bytes long and *out says what it carries.  PP_BAD: *why says
 * what is wrong.  PP_MORE: everything so far fits a header.
 */
enum pp_status pp_parse(const uint8_t *buf, size_t len, struct pp_info *out,
			size_t *hdr_len, const char **why);

/*
 * The address pair (IPv4 or IPv6 each) as a header carries it: an
 * IPv4-mapped address as IPv4 when both can be IPv4, else both as IPv6.
 */
void pp_pair(const struct sockaddr *src, const struct sockaddr *dst,
	     struct sockaddr_in6 *s, struct sockaddr_in6 *d);
/*
 * Write a version 1 or 2 header for a connection from src to dst into
 * out[0..cap).  src NULL: a v1 UNKNOWN or v2 LOCAL header (health probes).
 * An IPv4-mapped IPv6 address goes out as IPv4; when the two ends are of
 * different families both go out as IPv6.  v2 only: `authority` (or NULL)
 * as a PP2_TYPE_AUTHORITY TLV, and tlvs[0..tlv_len) (received from a load
 * balancer in front) passed on, less the AUTHORITY one when there is a new
 * one, and less CRC32C and NOOP, which no longer fit the header.  Returns
 * the length, or -ENOSPC.
 */
ssize_t pp_build(int version, char *out, size_t cap,
		 const struct sockaddr *src, const struct sockaddr *dst,
		 const char *authority, const uint8_t *tlvs, size_t tlv_len);

#endif

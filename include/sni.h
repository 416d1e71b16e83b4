/*
 * sni.h: the server name a TLS client asks for, read from its ClientHello
 * without terminating TLS (RFC 8446 4.1.2, RFC 6066 3).  No I/O here.
 */
#ifndef RINGLB_SNI_H
#define RINGLB_SNI_H

#include <stddef.h>
#include <stdint.h>

/* What preread reads at most before it gives up on a ClientHello. */
#define SNI_READ_MAX	(16 * 1024)
#define SNI_NAME_MAX	256	/* a host name, NUL included */

enum sni_status {
	SNI_MORE,	/* the start of a ClientHello: read more */
	SNI_FOUND,	/* a ClientHello with a server name */
	SNI_NONE,	/* a whole ClientHello without a usable name */
	SNI_NOT_TLS,	/* not a TLS ClientHello */
};

/*
 * Look at the client's first bytes buf[0..len): TLS records holding a
 * ClientHello, which may span records.  SNI_FOUND puts the host name,
 * lowercased, in name[0..SNI_NAME_MAX).  A name with bytes no host name
 * has reads as SNI_NONE.
 */
enum sni_status sni_parse(const uint8_t *buf, size_t len,
			  char name[SNI_NAME_MAX]);

/*
 * Does host (lowercase) match pattern: "api.example.com" exactly, or
 * "*.example.org" for exactly one label in front of example.org?
 */
int sni_match(const char *pattern, const char *host);

#endif

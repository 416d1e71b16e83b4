/*
 * sni.c: find the server name in a TLS ClientHello (see sni.h).
 *
 * The handshake message is read through a cursor that steps over record
 * headers, so a ClientHello split over several records (and the records
 * over several reads) needs no copy.  Every length is checked against its
 * container; anything that does not add up is SNI_NOT_TLS.
 */
#include <stdbool.h>
#include <string.h>

#include "sni.h"

#define TLS_HANDSHAKE		22
#define TLS_CLIENT_HELLO	1
#define TLS_RECORD_MAX		(16384 + 2048)
#define EXT_SERVER_NAME		0

/* Reads handshake bytes across records.  err: MORE or NOT_TLS. */
struct hs_cursor {
	const uint8_t *buf;
	size_t len;
	size_t pos;		/* next byte of buf */
	size_t rec_left;	/* handshake bytes left in this record */
	size_t taken;		/* handshake bytes read so far */
	enum sni_status err;	/* SNI_FOUND while nothing went wrong */
};

static bool
hs_next_record(struct hs_cursor *c)
{
	const uint8_t *h = c->buf + c->pos;
	size_t n;

	if (c->pos + 5 > c->len) {
		/* The header so far must look like a handshake record. */
		if ((c->pos < c->len && h[0] != TLS_HANDSHAKE) ||
		    (c->pos + 1 < c->len && h[1] != 3))
			c->err = SNI_NOT_TLS;
		else
			c->err = SNI_MORE;
		return false;
	}
	n = (size_t)h[3] << 8 | h[4];
	if (h[0] != TLS_HANDSHAKE || h[1] != 3 || n == 0 ||
	    n > TLS_RECORD_MAX) {
		c->err = SNI_NOT_TLS;
		return false;
	}
	c->pos += 5;
	c->rec_left = n;
	return true;
}

/* Skip n handshake bytes, copying them to out if it is not NULL. */
static bool
hs_read(struct hs_cursor *c, size_t n, uint8_t *out)
{
	while (n) {
		size_t k;

		if (c->err != SNI_FOUND)
			return false;
		if (c->rec_left == 0 && !hs_next_record(c))
			return false;
		k = n < c->rec_left ? n : c->rec_left;
		if (c->pos + k > c->len)
			k = c->len - c->pos;
		if (k == 0) {
			c->err = SNI_MORE;
			return false;
		}
		if (out) {
			memcpy(out, c->buf + c->pos, k);
			out += k;
		}
		c->pos += k;
		c->rec_left -= k;
		c->taken += k;
		n -= k;
	}
	return true;
}

static bool
hs_uint(struct hs_cursor *c, size_t bytes, size_t *v)
{
	uint8_t b[3];

	if (!hs_read(c, bytes, b))
		return false;
	*v = 0;
	for (size_t i = 0; i < bytes; i++)
		*v = *v << 8 | b[i];
	return true;
}

static bool
host_char(uint8_t ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '-' || ch == '.' || ch == '_';
}

/*
 * The server_name extension's body (RFC 6066): a list of names of which
 * the first host_name counts.  true with name set, or false with *st set.
 */
static bool
server_name(struct hs_cursor *c, size_t ext_len, char *name,
	    enum sni_status *st)
{
	size_t list, type, n;
	uint8_t host[SNI_NAME_MAX];

	if (ext_len < 2 || !hs_uint(c, 2, &list) || list + 2 != ext_len ||
	    list < 3)
		goto bad;
	if (!hs_uint(c, 1, &type) || !hs_uint(c, 2, &n) || n + 3 > list)
		goto bad;
	if (type != 0 || n == 0 || n >= SNI_NAME_MAX) {
		/* Not a host name we can route on; skip the rest. */
		if (!hs_read(c, list - 3, NULL))
			goto bad;
		*st = SNI_NONE;
		return false;
	}
	if (!hs_read(c, n, host) || !hs_read(c, list - 3 - n, NULL))
		goto bad;
	for (size_t i = 0; i < n; i++) {
		uint8_t ch = host[i];

		if (ch >= 'A' && ch <= 'Z')
			ch = (uint8_t)(ch - 'A' + 'a');
		if (!host_char(ch)) {
			*st = SNI_NONE;
			return false;
		}
		name[i] = (char)ch;
	}
	name[n] = '\0';
	return true;
bad:
	*st = c->err != SNI_FOUND ? c->err : SNI_NOT_TLS;
	return false;
}

/*
 * The ClientHello: its server name, or why there is none.  *body gets the
 * handshake message's length once it is known.
 */
static enum sni_status
client_hello(struct hs_cursor *c, char name[SNI_NAME_MAX], size_t *body_out)
{
	size_t type, body, n, left, ext_type, ext_len;
	enum sni_status st = SNI_NONE;

	name[0] = '\0';
	if (!hs_uint(c, 1, &type) || !hs_uint(c, 3, &body))
		return c->err;
	if (type != TLS_CLIENT_HELLO || body < 38)
		return SNI_NOT_TLS;
	*body_out = body;
	left = body;
	/* legacy_version and random */
	if (!hs_read(c, 34, NULL))
		return c->err;
	left -= 34;
	/* session id, cipher suites, compression methods */
	if (!hs_uint(c, 1, &n) || n > 32 || n + 1 > left ||
	    !hs_read(c, n, NULL))
		return c->err != SNI_FOUND ? c->err : SNI_NOT_TLS;
	left -= 1 + n;
	if (left < 2 || !hs_uint(c, 2, &n) || n + 2 > left || n % 2 ||
	    !hs_read(c, n, NULL))
		return c->err != SNI_FOUND ? c->err : SNI_NOT_TLS;
	left -= 2 + n;
	if (left < 1 || !hs_uint(c, 1, &n) || n + 1 > left ||
	    !hs_read(c, n, NULL))
		return c->err != SNI_FOUND ? c->err : SNI_NOT_TLS;
	left -= 1 + n;
	if (left == 0)
		return SNI_NONE;	/* no extensions at all */
	if (left < 2 || !hs_uint(c, 2, &n) || n + 2 != left)
		return c->err != SNI_FOUND ? c->err : SNI_NOT_TLS;
	left = n;
	while (left) {
		if (left < 4 || !hs_uint(c, 2, &ext_type) ||
		    !hs_uint(c, 2, &ext_len) || ext_len + 4 > left)
			return c->err != SNI_FOUND ? c->err : SNI_NOT_TLS;
		left -= 4 + ext_len;
		if (ext_type == EXT_SERVER_NAME) {
			if (server_name(c, ext_len, name, &st))
				return SNI_FOUND;
			if (st != SNI_NONE)
				return st;
			/* Unusable: go on, so a bad length still shows. */
		} else if (!hs_read(c, ext_len, NULL)) {
			return c->err;
		}
	}
	name[0] = '\0';
	return SNI_NONE;
}

enum sni_status
sni_parse(const uint8_t *buf, size_t len, char name[SNI_NAME_MAX])
{
	struct hs_cursor c = { .buf = buf, .len = len, .err = SNI_FOUND };
	size_t body = 0;
	enum sni_status st = client_hello(&c, name, &body);

	/* A verdict only on the whole message: the rest must be there too. */
	if ((st == SNI_FOUND || st == SNI_NONE) && 4 + body > c.taken &&
	    !hs_read(&c, 4 + body - c.taken, NULL))
		st = c.err;

	if (st != SNI_FOUND)
		name[0] = '\0';
	return st;
}

int
sni_match(const char *pattern, const char *host)
{
	const char *dot;

	if (pattern[0] != '*')
		return strcmp(pattern, host) == 0;
	/* "*.example.org": one non-empty label, then ".example.org". */
	dot = strchr(host, '.');
	return dot && dot != host && strcmp(dot, pattern + 1) == 0;
}

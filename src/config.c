/*
 * config.c: read the JSON configuration and check every value before the
 * runtime sees it.
 *
 * Validation stops at the first mistake and describes it in one line,
 * "FILE: JSON.PATH: what is wrong", so an operator can go straight to the
 * offending key.  Unknown keys are mistakes too: a misspelt optional key would
 * otherwise fall back to its default without a word.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "access.h"
#include "config.h"
#include "listen.h"
#include "log.h"

#define CFG_PATH_MAX	128	/* "listeners[N].backends[M].address" */
#define CFG_QUOTE_MAX	80	/* a file's value, quoted in a message */
#define CFG_REASON_MAX	256
#define CFG_FILE_MAX	(16u << 20)
#define CFG_WORKERS_MAX	256
#define CFG_BACKENDS_MAX 10000
#define CFG_POOLS_MAX	1024
#define CFG_ROUTES_MAX	4096	/* server names per listener */
#define CFG_RATE_MAX	1000000	/* per_source.rate and burst */
#define CFG_TABLE_MAX	(16u << 20)

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

/* Where messages go and which file they name; one per cfg_parse() call. */
struct cfg_ctx {
	const char *file;
	char *err;
	size_t errlen;
};

static const char *const alg_names[] = {
	[ALG_ROUND_ROBIN] = "round-robin",
	[ALG_LEAST_CONN] = "least-connections",
	[ALG_RANDOM_TWO] = "random-two",
	[ALG_MAGLEV] = "maglev",
};

static const char *const root_keys[] = {
	"workers", "log_level", "log_format", "shutdown_grace_ms", "listeners",
	"pools",
	"admin", "user", "group", "recv_buffers", "upgrade", NULL,
};

static const char *const admin_keys[] = {
	"enabled", "socket", "mode", "listen", "allowed_hosts", "token_file",
	NULL,
};

static const char *const upgrade_keys[] = {
	"handover_ms", NULL,
};

static const char *const listener_keys[] = {
	"name", "listen", "algorithm", "connect_attempts", "backlog",
	"backends", "health_check", "timeouts", "max_connections", "allow",
	"deny", "per_source", "pool", "accept_proxy", "send_proxy", "routes",
	"hash", "slow_start_ms", "ejection", "split", "sticky", "discover",
	"client_speaks_first", "tcp_congestion", NULL,
};

static const char *const route_keys[] = {
	"sni", "pool", "split", "sticky", NULL,
};

static const char *const split_keys[] = {
	"pool", "weight", NULL,
};

static const char *const accept_proxy_keys[] = {
	"from", "timeout_ms", "allow_direct", NULL,
};

static const char *const pool_keys[] = {
	"name", "algorithm", "backends", "health_check", "connect_attempts",
	"timeouts", "fail_ms", "send_proxy", "hash", "slow_start_ms",
	"ejection", "discover", "tcp_congestion", NULL,
};

static const char *const discover_keys[] = {
	"name", "type", "port", "resolvers", "min_ttl_ms", "max_ttl_ms",
	"hold_ms", "max_backends", NULL,
};

static const char *const ejection_keys[] = {
	"consecutive_failures", "base_ms", "max_ms", "max_percent",
	"early_close", NULL,
};

static const char *const hash_keys[] = {
	"key", "table_size", "balance_factor", NULL,
};

/* What a listener that names a pool may not set: the pool has it. */
static const char *const pool_only_keys[] = {
	"algorithm", "backends", "health_check", "connect_attempts",
	"send_proxy", "hash", "slow_start_ms", "ejection", "discover", NULL,
};

static const char *const backend_keys[] = {
	"name", "address", "weight", "max_connections", "send_proxy",
	"backup", NULL,
};

static const char *const per_source_keys[] = {
	"max_connections", "rate", "burst", "ipv6_prefix", "table_size", NULL,
};

static const char *const health_keys[] = {
	"enabled", "interval_ms", "timeout_ms", "rise", "fall", "send",
	"expect", NULL,
};

/* A listener with its own backends sets them all in one "timeouts". */
static const char *const timeout_keys[] = {
	"connect_ms", "idle_ms", "fail_ms", "preread_ms", NULL,
};
static const char *const pool_timeout_keys[] = {
	"connect_ms", "fail_ms", NULL,
};
static const char *const listener_timeout_keys[] = {
	"idle_ms", "preread_ms", NULL,
};

/*
 * The caller promised one line: a file name or a jansson message may carry a
 * newline or another control byte, so none survives.
 */
static void
one_line(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

static void __attribute__((format(printf, 3, 4)))
msg_report(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	one_line(err);
}

/* "FILE: PATH: what", or "FILE: what" for the top-level object itself. */
static void __attribute__((format(printf, 3, 4)))
cfg_report(const struct cfg_ctx *x, const char *path, const char *fmt, ...)
{
	va_list ap;
	size_t n;
	int rc;

	if (x->err == NULL || x->errlen == 0)
		return;
	if (path[0] != '\0')
		rc = snprintf(x->err, x->errlen, "%s: %s: ", x->file, path);
	else
		rc = snprintf(x->err, x->errlen, "%s: ", x->file);
	n = rc < 0 ? 0 : (size_t)rc;
	if (n < x->errlen) {
		va_start(ap, fmt);
		vsnprintf(x->err + n, x->errlen - n, fmt, ap);
		va_end(ap);
	}
	one_line(x->err);
}

/*
 * Report and evaluate to -1, so a check reads `return cfg_error(...)`.  The
 * -1 is spelt out here rather than returned by the variadic function, which
 * static analyzers do not look into.
 */
#define msg_error(err, errlen, ...) \
	(msg_report((err), (errlen), __VA_ARGS__), -1)
#define cfg_error(x, path, ...) (cfg_report((x), (path), __VA_ARGS__), -1)

/*
 * Render a value from the file as a double-quoted ASCII string for a message.
 * Quotes, control and non-ASCII bytes are escaped so they cannot break the
 * line, and a long value is cut ("abc"...) so it cannot crowd out the rest.
 */
static const char *
quote(char *buf, size_t size, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	buf[o++] = '"';
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char e[4];
		size_t n = 0;

		if (c == '"' || c == '\\') {
			e[n++] = '\\';
			e[n++] = (char)c;
		} else if (c == '\n' || c == '\r' || c == '\t') {
			e[n++] = '\\';
			e[n++] = (char)(c == '\n' ? 'n' : c == '\r' ? 'r' : 't');
		} else if (c < 0x20 || c >= 0x7f) {
			e[n++] = '\\';
			e[n++] = 'x';
			e[n++] = hex[c >> 4];
			e[n++] = hex[c & 15];
		} else {
			e[n++] = (char)c;
		}
		/* Keep room for the closing quote, "..." and the NUL. */
		if (o + n + 5 > size) {
			memcpy(buf + o, "\"...", 5);
			return buf;
		}
		memcpy(buf + o, e, n);
		o += n;
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

/* Append s to the string in buf, cut at size - 1 bytes like strlcat(). */
static void
str_append(char *buf, size_t size, const char *s)
{
	size_t n = strlen(buf), m = strlen(s);

	if (n + m >= size)
		m = size - 1 - n;
	memcpy(buf + n, s, m);
	buf[n + m] = '\0';
}

/* parent.key, or key at the top level; buf must not alias parent. */
static void
path_key(char *buf, size_t size, const char *parent, const char *key)
{
	buf[0] = '\0';
	str_append(buf, size, parent);
	if (parent[0] != '\0')
		str_append(buf, size, ".");
	str_append(buf, size, key);
}

static void
path_index(char *buf, size_t size, const char *parent, size_t i)
{
	char idx[32];

	snprintf(idx, sizeof(idx), "[%zu]", i);
	buf[0] = '\0';
	str_append(buf, size, parent);
	str_append(buf, size, idx);
}

static const char *
type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "object";
	case JSON_ARRAY:
		return "array";
	case JSON_STRING:
		return "string";
	case JSON_INTEGER:
		return "integer";
	case JSON_REAL:
		return "real number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "boolean";
	case JSON_NULL:
		return "null";
	}
	return "unknown type";
}

/* Reject any key of obj not in the NULL-terminated list `known`. */
static int
check_keys(const struct cfg_ctx *x, const char *path, json_t *obj,
	   const char *const *known)
{
	char q[CFG_QUOTE_MAX];
	const char *key;
	size_t keylen;
	json_t *v;

	/*
	 * jansson 2.14 refuses \u0000 in keys; comparing lengths keeps a
	 * key like "weight\u0000x" unknown even where a build accepts it.
	 */
	json_object_keylen_foreach(obj, key, keylen, v) {
		const char *const *k;

		for (k = known; *k != NULL; k++)
			if (strlen(*k) == keylen &&
			    memcmp(*k, key, keylen) == 0)
				break;
		if (*k == NULL)
			return cfg_error(x, path, "unknown key %s",
					 quote(q, sizeof(q), key, keylen));
	}
	return 0;
}

/*
 * Fetch obj[key] as an object or array.  *out is NULL when the key is absent
 * and not required; obj itself may be NULL (an absent parent), which reads
 * as an empty object.
 */
static int
get_container(const struct cfg_ctx *x, const char *parent, const json_t *obj,
	      const char *key, json_type type, bool required, json_t **out)
{
	char path[CFG_PATH_MAX];
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	path_key(path, sizeof(path), parent, key);
	if (v == NULL) {
		if (required)
			return cfg_error(x, path, "required key missing");
		return 0;
	}
	if (json_typeof(v) != type)
		return cfg_error(x, path, "must be %s, got %s",
				 type == JSON_OBJECT ? "an object" : "an array",
				 type_name(v));
	*out = v;
	return 0;
}

/*
 * Fetch an optional integer in [lo, hi]; dflt stands in when it is absent.
 * Only JSON integers count: 1.0, true and "1" are mistakes, not conversions.
 */
static int
get_int(const struct cfg_ctx *x, const char *parent, const json_t *obj,
	const char *key, json_int_t lo, json_int_t hi, json_int_t dflt,
	json_int_t *out)
{
	char path[CFG_PATH_MAX];
	json_t *v = json_object_get(obj, key);
	json_int_t n;

	if (v == NULL) {
		*out = dflt;
		return 0;
	}
	path_key(path, sizeof(path), parent, key);
	if (json_is_real(v))
		return cfg_error(x, path, "must be an integer, got real number %.15g",
				 json_real_value(v));
	if (!json_is_integer(v))
		return cfg_error(x, path, "must be an integer, got %s",
				 type_name(v));
	n = json_integer_value(v);
	if (n < lo || n > hi)
		return cfg_error(x, path,
				 "must be an integer from %" JSON_INTEGER_FORMAT
				 " to %" JSON_INTEGER_FORMAT
				 ", got %" JSON_INTEGER_FORMAT,
				 lo, hi, n);
	*out = n;
	return 0;
}

static int
get_uint(const struct cfg_ctx *x, const char *parent, const json_t *obj,
	 const char *key, unsigned lo, unsigned hi, unsigned dflt,
	 unsigned *out)
{
	json_int_t n;

	if (get_int(x, parent, obj, key, lo, hi, dflt, &n) < 0)
		return -1;
	*out = (unsigned)n;
	return 0;
}

static int
get_bool(const struct cfg_ctx *x, const char *parent, const json_t *obj,
	 const char *key, bool dflt, bool *out)
{
	char path[CFG_PATH_MAX];
	json_t *v = json_object_get(obj, key);

	if (v == NULL) {
		*out = dflt;
		return 0;
	}
	if (!json_is_boolean(v)) {
		path_key(path, sizeof(path), parent, key);
		return cfg_error(x, path, "must be true or false, got %s",
				 type_name(v));
	}
	*out = json_is_true(v);
	return 0;
}

/*
 * Fetch a non-empty string.  *s is NULL when the key is absent and not
 * required.  Only probe payloads (`binary`) may hold NUL bytes: the rest of
 * the program reads every other string as a C string.
 */
static int
get_string(const struct cfg_ctx *x, const char *parent, const json_t *obj,
	   const char *key, bool required, bool binary, const char **s,
	   size_t *len)
{
	char path[CFG_PATH_MAX];
	json_t *v = json_object_get(obj, key);

	*s = NULL;
	*len = 0;
	path_key(path, sizeof(path), parent, key);
	if (v == NULL) {
		if (required)
			return cfg_error(x, path, "required key missing");
		return 0;
	}
	if (!json_is_string(v))
		return cfg_error(x, path, "must be a string, got %s",
				 type_name(v));
	if (json_string_length(v) == 0)
		return cfg_error(x, path, "must not be empty");
	if (!binary && memchr(json_string_value(v), '\0',
			      json_string_length(v)) != NULL)
		return cfg_error(x, path, "must not contain a NUL byte (\\u0000)");
	*s = json_string_value(v);
	*len = json_string_length(v);
	return 0;
}

static bool
name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

/* Names end up in log lines and stats keys, hence the small charset. */
static int
get_name(const struct cfg_ctx *x, const char *parent, const json_t *obj,
	 char name[CFG_NAME_MAX])
{
	char path[CFG_PATH_MAX], q1[16], q2[CFG_QUOTE_MAX];
	const char *s;
	size_t len;

	if (get_string(x, parent, obj, "name", true, false, &s, &len) < 0)
		return -1;
	path_key(path, sizeof(path), parent, "name");
	if (len >= CFG_NAME_MAX)
		return cfg_error(x, path, "too long (%zu bytes, max %d)", len,
				 CFG_NAME_MAX - 1);
	for (size_t i = 0; i < len; i++)
		if (!name_char(s[i]))
			return cfg_error(x, path,
					 "invalid character %s in %s (allowed: A-Z a-z 0-9 _ . -)",
					 quote(q1, sizeof(q1), s + i, 1),
					 quote(q2, sizeof(q2), s, len));
	memcpy(name, s, len + 1);
	return 0;
}

/* `listen` may use "*" for any address; a backend must name a real host. */
static int
get_addr(const struct cfg_ctx *x, const char *parent, const json_t *obj,
	 const char *key, bool listen, struct cfg_addr *a)
{
	char path[CFG_PATH_MAX], reason[CFG_REASON_MAX];
	const char *s;
	size_t len;

	if (get_string(x, parent, obj, key, true, false, &s, &len) < 0)
		return -1;
	path_key(path, sizeof(path), parent, key);
	if (!listen && s[0] == '*' && s[1] == ':')
		return cfg_error(x, path,
				 "\"*\" (any address) is only valid in listen; a backend needs a host to connect to");
	if (strncmp(s, CFG_SYSTEMD_PREFIX, strlen(CFG_SYSTEMD_PREFIX)) == 0) {
		const char *name = s + strlen(CFG_SYSTEMD_PREFIX);
		size_t n = strlen(name);

		if (!listen)
			return cfg_error(x, path,
					 "\"systemd:\" names a socket passed by systemd, for a listener; a backend needs a host to connect to");
		if (n == 0 || n >= sizeof(a->text) - strlen(CFG_SYSTEMD_PREFIX) ||
		    strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.@-") != n)
			return cfg_error(x, path,
					 "\"systemd:NAME\" needs a NAME of 1..%zu chars of A-Z a-z 0-9 _ . @ - (the FileDescriptorName= of the socket unit)",
					 sizeof(a->text) - strlen(CFG_SYSTEMD_PREFIX) - 1);
		memset(a, 0, sizeof(*a));
		a->ss.ss_family = AF_UNSPEC;
		snprintf(a->text, sizeof(a->text), "%s", s);
		return 0;
	}
	if (cfg_parse_addr(s, a, reason, sizeof(reason)) < 0)
		return cfg_error(x, path, "%s", reason);
	return 0;
}

static bool
addr_equal(const struct cfg_addr *a, const struct cfg_addr *b)
{
	const struct sockaddr_in *a4, *b4;
	const struct sockaddr_in6 *a6, *b6;

	if (a->ss.ss_family != b->ss.ss_family)
		return false;
	switch (a->ss.ss_family) {
	case AF_UNSPEC:		/* "systemd:NAME": the same name */
		return strcmp(a->text, b->text) == 0;
	case AF_INET:
		a4 = (const struct sockaddr_in *)&a->ss;
		b4 = (const struct sockaddr_in *)&b->ss;
		return a4->sin_port == b4->sin_port &&
		       a4->sin_addr.s_addr == b4->sin_addr.s_addr;
	case AF_INET6:
		a6 = (const struct sockaddr_in6 *)&a->ss;
		b6 = (const struct sockaddr_in6 *)&b->ss;
		return a6->sin6_port == b6->sin6_port &&
		       a6->sin6_scope_id == b6->sin6_scope_id &&
		       memcmp(&a6->sin6_addr, &b6->sin6_addr,
			      sizeof(a6->sin6_addr)) == 0;
	default:
		return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
	}
}

static int
get_algorithm(const struct cfg_ctx *x, const char *parent, const json_t *obj,
	      enum cfg_algorithm *alg)
{
	char path[CFG_PATH_MAX], q[CFG_QUOTE_MAX], list[128];
	const char *s;
	size_t len;

	*alg = ALG_ROUND_ROBIN;
	if (get_string(x, parent, obj, "algorithm", false, false, &s, &len) < 0)
		return -1;
	if (s == NULL)
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(alg_names); i++) {
		if (strcmp(s, alg_names[i]) == 0) {
			*alg = (enum cfg_algorithm)i;
			return 0;
		}
	}
	/* Spell out the choices from the table, so they never go stale. */
	list[0] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(alg_names); i++) {
		if (i > 0)
			str_append(list, sizeof(list),
				   i + 1 == ARRAY_SIZE(alg_names) ? " or " : ", ");
		str_append(list, sizeof(list), alg_names[i]);
	}
	path_key(path, sizeof(path), parent, "algorithm");
	return cfg_error(x, path, "unknown algorithm %s (expected %s)",
			 quote(q, sizeof(q), s, len), list);
}

/* A probe payload is kept NUL-terminated too, though it may hold NULs. */
static int
get_probe(const struct cfg_ctx *x, const char *parent, const json_t *obj,
	  const char *key, char **out, size_t *outlen)
{
	char path[CFG_PATH_MAX];
	const char *s;
	size_t len;

	if (get_string(x, parent, obj, key, false, true, &s, &len) < 0)
		return -1;
	if (s == NULL)
		return 0;
	path_key(path, sizeof(path), parent, key);
	if (len > CFG_PROBE_MAX)
		return cfg_error(x, path, "too long (%zu bytes, max %d)", len,
				 CFG_PROBE_MAX);
	*out = malloc(len + 1);
	if (*out == NULL)
		return cfg_error(x, path, "out of memory");
	memcpy(*out, s, len + 1);
	*outlen = len;
	return 0;
}

/*
 * health_check is optional; when it is absent every default applies, so the
 * same code runs with a NULL object (json_object_get(NULL, k) is NULL).
 */
static int
parse_health(const struct cfg_ctx *x, const char *parent, const json_t *lst,
	     struct cfg_health *h)
{
	char path[CFG_PATH_MAX], tpath[CFG_PATH_MAX];
	json_t *v;

	if (get_container(x, parent, lst, "health_check", JSON_OBJECT, false,
			  &v) < 0)
		return -1;
	path_key(path, sizeof(path), parent, "health_check");
	if (v != NULL && check_keys(x, path, v, health_keys) < 0)
		return -1;
	if (get_bool(x, path, v, "enabled", true, &h->enabled) < 0 ||
	    get_uint(x, path, v, "interval_ms", 50, 3600000, 2000,
		     &h->interval_ms) < 0 ||
	    get_uint(x, path, v, "timeout_ms", 10, 600000, 1000,
		     &h->timeout_ms) < 0 ||
	    get_uint(x, path, v, "rise", 1, 100, 2, &h->rise) < 0 ||
	    get_uint(x, path, v, "fall", 1, 100, 3, &h->fall) < 0)
		return -1;
	if (h->timeout_ms > h->interval_ms) {
		path_key(tpath, sizeof(tpath), path, "timeout_ms");
		if (json_object_get(v, "timeout_ms") == NULL)
			return cfg_error(x, tpath,
					 "the default %u exceeds interval_ms (%u); set timeout_ms <= interval_ms",
					 h->timeout_ms, h->interval_ms);
		return cfg_error(x, tpath,
				 "must not exceed interval_ms (%u), got %u",
				 h->interval_ms, h->timeout_ms);
	}
	if (get_probe(x, path, v, "send", &h->send, &h->send_len) < 0 ||
	    get_probe(x, path, v, "expect", &h->expect, &h->expect_len) < 0)
		return -1;
	return 0;
}

/*
 * The pool's timeouts (connect_ms, fail_ms) from obj.timeouts; a pool may
 * also give fail_ms at its top level, as long as it gives it only once.
 */
static int
parse_pool_timeouts(const struct cfg_ctx *x, const char *parent,
		    const json_t *obj, struct cfg_pool *p)
{
	char path[CFG_PATH_MAX], fpath[CFG_PATH_MAX];
	json_t *v;

	if (get_container(x, parent, obj, "timeouts", JSON_OBJECT, false,
			  &v) < 0)
		return -1;
	path_key(path, sizeof(path), parent, "timeouts");
	if (get_uint(x, path, v, "connect_ms", 1, 600000, 3000,
		     &p->connect_ms) < 0 ||
	    get_uint(x, path, v, "fail_ms", 0, 3600000, 10000,
		     &p->fail_ms) < 0)
		return -1;
	if (json_object_get(obj, "fail_ms") == NULL)
		return 0;
	if (json_object_get(v, "fail_ms") != NULL) {
		path_key(fpath, sizeof(fpath), parent, "fail_ms");
		return cfg_error(x, fpath,
				 "given twice (also %s.fail_ms); keep one",
				 path);
	}
	return get_uint(x, parent, obj, "fail_ms", 0, 3600000, 10000,
			&p->fail_ms);
}

/* "v1", "v2" or "off"; absent leaves *out as it is. */
static int
get_send_proxy(const struct cfg_ctx *x, const char *parent, const json_t *obj,
	       enum cfg_send_proxy *out)
{
	char path[CFG_PATH_MAX], q[CFG_QUOTE_MAX];
	const char *s;
	size_t len;

	if (get_string(x, parent, obj, "send_proxy", false, false, &s, &len) < 0)
		return -1;
	if (s == NULL)
		return 0;
	if (strcmp(s, "v1") == 0)
		*out = SEND_PROXY_V1;
	else if (strcmp(s, "v2") == 0)
		*out = SEND_PROXY_V2;
	else if (strcmp(s, "off") == 0)
		*out = SEND_PROXY_OFF;
	else {
		path_key(path, sizeof(path), parent, "send_proxy");
		return cfg_error(x, path,
				 "unknown value %s (expected \"v1\", \"v2\" or \"off\")",
				 quote(q, sizeof(q), s, len));
	}
	return 0;
}

static int
parse_backend(const struct cfg_ctx *x, const char *path, json_t *v,
	      struct cfg_backend *b)
{
	if (!json_is_object(v))
		return cfg_error(x, path, "must be an object, got %s",
				 type_name(v));
	if (check_keys(x, path, v, backend_keys) < 0 ||
	    get_name(x, path, v, b->name) < 0 ||
	    get_addr(x, path, v, "address", false, &b->addr) < 0 ||
	    get_uint(x, path, v, "weight", 1, CFG_WEIGHT_MAX, 1,
		     &b->weight) < 0 ||
	    get_uint(x, path, v, "max_connections", 0, CFG_LIMIT_MAX, 0,
		     &b->max_connections) < 0 ||
	    get_bool(x, path, v, "backup", false, &b->backup) < 0)
		return -1;
	b->tier = b->backup ? 1 : 0;
	b->send_proxy = SEND_PROXY_POOL;
	return get_send_proxy(x, path, v, &b->send_proxy);
}

static int
parse_backends(const struct cfg_ctx *x, const char *parent, const json_t *lst,
	       struct cfg_pool *l)
{
	char path[CFG_PATH_MAX], bpath[CFG_PATH_MAX], npath[CFG_PATH_MAX];
	char other[CFG_PATH_MAX];
	json_t *arr;
	size_t n;

	/* With "discover", DNS brings the backends; the file's are extra. */
	if (get_container(x, parent, lst, "backends", JSON_ARRAY,
			  !l->discover.enabled, &arr) < 0)
		return -1;
	path_key(path, sizeof(path), parent, "backends");
	n = json_array_size(arr);
	if (n == 0 && !l->discover.enabled)
		return cfg_error(x, path, "must contain at least one backend");
	if (n > CFG_BACKENDS_MAX)
		return cfg_error(x, path, "too many backends (%zu, max %d)", n,
				 CFG_BACKENDS_MAX);
	l->backends = calloc(n ? n : 1, sizeof(*l->backends));
	if (l->backends == NULL)
		return cfg_error(x, path, "out of memory");
	l->nbackends = n;
	l->nstatic = n;
	for (size_t i = 0; i < n; i++) {
		struct cfg_backend *b = &l->backends[i];

		path_index(bpath, sizeof(bpath), path, i);
		if (parse_backend(x, bpath, json_array_get(arr, i), b) < 0)
			return -1;
		for (size_t j = 0; j < i; j++) {
			if (strcmp(l->backends[j].name, b->name) != 0)
				continue;
			path_index(other, sizeof(other), path, j);
			path_key(npath, sizeof(npath), bpath, "name");
			return cfg_error(x, npath,
					 "duplicate backend name \"%s\" (also %s)",
					 b->name, other);
		}
	}
	return 0;
}

/* allow / deny: optional, but never empty (which would read both ways). */
static int
parse_acl(const struct cfg_ctx *x, const char *parent, const json_t *lst,
	  const char *key, struct cfg_cidr **out, size_t *nout)
{
	char path[CFG_PATH_MAX], ipath[CFG_PATH_MAX], q[CFG_QUOTE_MAX];
	char reason[CFG_REASON_MAX];
	json_t *arr;
	size_t n;

	if (get_container(x, parent, lst, key, JSON_ARRAY, false, &arr) < 0)
		return -1;
	if (arr == NULL)
		return 0;
	path_key(path, sizeof(path), parent, key);
	n = json_array_size(arr);
	if (n == 0)
		return cfg_error(x, path,
				 "must contain at least one address range (leave %s out instead)",
				 key);
	if (n > CFG_ACL_MAX)
		return cfg_error(x, path, "too many entries (%zu, max %d)", n,
				 CFG_ACL_MAX);
	*out = calloc(n, sizeof(**out));
	if (*out == NULL)
		return cfg_error(x, path, "out of memory");
	*nout = n;
	for (size_t i = 0; i < n; i++) {
		json_t *v = json_array_get(arr, i);
		const char *s;
		size_t len;

		path_index(ipath, sizeof(ipath), path, i);
		if (!json_is_string(v))
			return cfg_error(x, ipath, "must be a string, got %s",
					 type_name(v));
		s = json_string_value(v);
		len = json_string_length(v);
		if (access_parse_cidr(s, &(*out)[i], reason,
				      sizeof(reason)) < 0 ||
		    strlen(s) != len)
			return cfg_error(x, ipath, "bad address range %s: %s",
					 quote(q, sizeof(q), s, len),
					 strlen(s) != len ? "contains a NUL byte"
							  : reason);
	}
	return 0;
}

static int
parse_per_source(const struct cfg_ctx *x, const char *parent,
		 const json_t *lst, struct cfg_per_source *ps)
{
	char path[CFG_PATH_MAX], bpath[CFG_PATH_MAX];
	json_t *v;

	if (get_container(x, parent, lst, "per_source", JSON_OBJECT, false,
			  &v) < 0)
		return -1;
	if (v == NULL)
		return 0;
	path_key(path, sizeof(path), parent, "per_source");
	if (check_keys(x, path, v, per_source_keys) < 0 ||
	    get_uint(x, path, v, "max_connections", 0, CFG_LIMIT_MAX, 0,
		     &ps->max_connections) < 0 ||
	    get_uint(x, path, v, "rate", 0, CFG_RATE_MAX, 0, &ps->rate) < 0 ||
	    get_uint(x, path, v, "burst", 1, CFG_RATE_MAX,
		     ps->rate ? ps->rate : 1, &ps->burst) < 0 ||
	    get_uint(x, path, v, "ipv6_prefix", 1, 128, 64,
		     &ps->ipv6_prefix) < 0 ||
	    get_uint(x, path, v, "table_size", 64, CFG_TABLE_MAX, 16384,
		     &ps->table_size) < 0)
		return -1;
	if (json_object_get(v, "burst") != NULL && ps->rate == 0) {
		path_key(bpath, sizeof(bpath), path, "burst");
		return cfg_error(x, bpath, "needs rate");
	}
	if (ps->max_connections == 0 && ps->rate == 0)
		return cfg_error(x, path,
				 "sets no limit: give max_connections or rate, or leave per_source out");
	ps->enabled = true;
	return 0;
}

static bool
is_prime(unsigned n)
{
	if (n < 2)
		return false;
	for (unsigned d = 2; d <= n / d; d++)
		if (n % d == 0)
			return false;
	return true;
}

/*
 * hash: what maglev hashes, its table's size (a prime, so every skip is
 * coprime with it) and the bounded-load factor.  Only with maglev.
 */
static int
parse_hash(const struct cfg_ctx *x, const char *parent, const json_t *obj,
	   struct cfg_pool *p)
{
	char path[CFG_PATH_MAX], kpath[CFG_PATH_MAX], q[CFG_QUOTE_MAX];
	const char *s;
	size_t len;
	json_t *v;

	p->hash.key = HASH_SOURCE_IP;
	p->hash.table_size = 65537;
	p->hash.balance_factor = 0;
	if (get_container(x, parent, obj, "hash", JSON_OBJECT, false, &v) < 0)
		return -1;
	if (v == NULL)
		return 0;
	path_key(path, sizeof(path), parent, "hash");
	if (p->algorithm != ALG_MAGLEV)
		return cfg_error(x, path,
				 "only with \"algorithm\": \"maglev\"");
	if (check_keys(x, path, v, hash_keys) < 0 ||
	    get_string(x, path, v, "key", false, false, &s, &len) < 0 ||
	    get_uint(x, path, v, "table_size", 251, 1000003, 65537,
		     &p->hash.table_size) < 0 ||
	    get_uint(x, path, v, "balance_factor", 0, 10000, 0,
		     &p->hash.balance_factor) < 0)
		return -1;
	if (s != NULL) {
		path_key(kpath, sizeof(kpath), path, "key");
		if (strcmp(s, "source-ip") == 0)
			p->hash.key = HASH_SOURCE_IP;
		else if (strcmp(s, "source-ip-port") == 0)
			p->hash.key = HASH_SOURCE_IP_PORT;
		else if (strcmp(s, "sni") == 0)
			p->hash.key = HASH_SNI;
		else
			return cfg_error(x, kpath,
					 "unknown key %s (expected \"source-ip\", \"source-ip-port\" or \"sni\")",
					 quote(q, sizeof(q), s, len));
	}
	if (!is_prime(p->hash.table_size)) {
		path_key(kpath, sizeof(kpath), path, "table_size");
		return cfg_error(x, kpath,
				 "must be a prime (like 251, 4093, 65537, 1000003), got %u",
				 p->hash.table_size);
	}
	if (p->hash.balance_factor && p->hash.balance_factor < 100) {
		path_key(kpath, sizeof(kpath), path, "balance_factor");
		return cfg_error(x, kpath,
				 "must be 0 (off) or a percentage of the average from 100 up, got %u",
				 p->hash.balance_factor);
	}
	return 0;
}

/*
 * ejection: passive health grown up.  base_ms is the pool's fail_ms (the
 * old spelling), so it may be given in one place only.
 */
static int
parse_ejection(const struct cfg_ctx *x, const char *parent,
	       const json_t *obj, struct cfg_pool *p)
{
	char path[CFG_PATH_MAX], kpath[CFG_PATH_MAX];
	struct cfg_ejection *e = &p->ejection;
	json_t *v, *t;

	if (get_container(x, parent, obj, "ejection", JSON_OBJECT, false,
			  &v) < 0)
		return -1;
	path_key(path, sizeof(path), parent, "ejection");
	if (v != NULL && check_keys(x, path, v, ejection_keys) < 0)
		return -1;
	t = json_object_get(obj, "timeouts");
	if (json_object_get(v, "base_ms") != NULL &&
	    (json_object_get(obj, "fail_ms") != NULL ||
	     json_object_get(t, "fail_ms") != NULL)) {
		path_key(kpath, sizeof(kpath), path, "base_ms");
		return cfg_error(x, kpath,
				 "the same as fail_ms, which is given too; keep one");
	}
	if (get_uint(x, path, v, "base_ms", 0, 3600000, p->fail_ms,
		     &p->fail_ms) < 0 ||
	    get_uint(x, path, v, "consecutive_failures", 1, 100, 1,
		     &e->consecutive_failures) < 0 ||
	    get_uint(x, path, v, "max_ms", 0, 86400000,
		     p->fail_ms > 300000 ? p->fail_ms : 300000, &e->max_ms) < 0 ||
	    get_uint(x, path, v, "max_percent", 1, 100, 50,
		     &e->max_percent) < 0 ||
	    get_bool(x, path, v, "early_close", false, &e->early_close) < 0)
		return -1;
	if (e->max_ms < p->fail_ms) {
		path_key(kpath, sizeof(kpath), path, "max_ms");
		return cfg_error(x, kpath,
				 "must be at least base_ms (%u), got %u",
				 p->fail_ms, e->max_ms);
	}
	return 0;
}

/* A DNS name: dot-separated labels of letters, digits, '-' and '_'. */
static bool
dns_name_ok(const char *s, size_t len)
{
	size_t label = 0;

	if (len == 0 || len >= CFG_DNS_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (name_char(c) && ++label <= 63) {
			continue;
		} else {
			return false;
		}
	}
	return true;
}

/*
 * pools[].discover (see discover.h): what to ask DNS and how often.  A
 * resolver is "ip" (port 53) or "ip:port" / "[v6]:port", numeric only:
 * resolving the resolver would need a resolver.
 */
static int
parse_discover(const struct cfg_ctx *x, const char *parent, const json_t *obj,
	       struct cfg_discover *d)
{
	char path[CFG_PATH_MAX], kpath[CFG_PATH_MAX], q[CFG_QUOTE_MAX];
	char why[CFG_REASON_MAX];
	const char *s;
	json_t *v, *arr;
	size_t len;

	if (get_container(x, parent, obj, "discover", JSON_OBJECT, false,
			  &v) < 0)
		return -1;
	if (v == NULL)
		return 0;
	path_key(path, sizeof(path), parent, "discover");
	if (check_keys(x, path, v, discover_keys) < 0 ||
	    get_string(x, path, v, "name", true, false, &s, &len) < 0)
		return -1;
	if (len > 1 && s[len - 1] == '.')
		len--;	/* absolute or not: the same name to c-ares */
	if (!dns_name_ok(s, len)) {
		path_key(kpath, sizeof(kpath), path, "name");
		return cfg_error(x, kpath,
				 "must be a DNS name (labels of letters, digits, '-' and '_', up to 253 bytes), got %s",
				 quote(q, sizeof(q), s, len));
	}
	for (size_t i = 0; i < len; i++)
		d->name[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 :
								   s[i]);
	d->name[len] = '\0';
	if (get_string(x, path, v, "type", true, false, &s, &len) < 0)
		return -1;
	path_key(kpath, sizeof(kpath), path, "type");
	if (strcmp(s, "srv") == 0)
		d->srv = true;
	else if (strcmp(s, "a") != 0)
		return cfg_error(x, kpath,
				 "unknown type %s (expected \"a\" for A and AAAA records, or \"srv\")",
				 quote(q, sizeof(q), s, len));
	path_key(kpath, sizeof(kpath), path, "port");
	if (d->srv && json_object_get(v, "port") != NULL)
		return cfg_error(x, kpath,
				 "not with \"type\": \"srv\": SRV records carry the port");
	if (!d->srv && json_object_get(v, "port") == NULL)
		return cfg_error(x, kpath,
				 "required with \"type\": \"a\": A and AAAA records carry no port");
	if (get_uint(x, path, v, "port", 1, 65535, 0, &d->port) < 0 ||
	    get_uint(x, path, v, "min_ttl_ms", 10, 3600000, 1000,
		     &d->min_ttl_ms) < 0 ||
	    get_uint(x, path, v, "max_ttl_ms", 100, 86400000, 30000,
		     &d->max_ttl_ms) < 0 ||
	    get_uint(x, path, v, "hold_ms", 0, 86400000, 30000,
		     &d->hold_ms) < 0 ||
	    get_uint(x, path, v, "max_backends", 1, CFG_BACKENDS_MAX, 1000,
		     &d->max_backends) < 0)
		return -1;
	if (d->max_ttl_ms < d->min_ttl_ms) {
		path_key(kpath, sizeof(kpath), path, "max_ttl_ms");
		return cfg_error(x, kpath,
				 "must be at least min_ttl_ms (%u), got %u",
				 d->min_ttl_ms, d->max_ttl_ms);
	}
	if (get_container(x, path, v, "resolvers", JSON_ARRAY, false, &arr) < 0)
		return -1;
	path_key(kpath, sizeof(kpath), path, "resolvers");
	if (arr && (json_array_size(arr) == 0 ||
		    json_array_size(arr) > CFG_RESOLVERS_MAX))
		return cfg_error(x, kpath,
				 "must list 1 to %d resolvers, got %zu (leave it out for /etc/resolv.conf)",
				 CFG_RESOLVERS_MAX, json_array_size(arr));
	for (size_t i = 0; arr && i < json_array_size(arr); i++) {
		const json_t *e = json_array_get(arr, i);
		char rpath[CFG_PATH_MAX], buf[80], text[64];
		struct cfg_addr a;
		const char *t = json_string_value(e);

		path_index(rpath, sizeof(rpath), kpath, i);
		if (!t)
			return cfg_error(x, rpath, "must be a string, got %s",
					 type_name(e));
		/* A bare address means port 53. */
		if (strchr(t, '.') && !strchr(t, ':'))
			snprintf(buf, sizeof(buf), "%s:53", t);
		else if (t[0] != '[' && strchr(t, ':') != strrchr(t, ':'))
			snprintf(buf, sizeof(buf), "[%s]:53", t);
		else
			snprintf(buf, sizeof(buf), "%s", t);
		if ((buf[0] != '[' &&
		     strspn(buf, "0123456789.:") != strlen(buf)) ||
		    cfg_parse_addr(buf, &a, why, sizeof(why)) < 0)
			return cfg_error(x, rpath,
					 "must be a numeric address, \"ip\" or \"ip:port\" (\"[v6]:port\"), got %s",
					 quote(q, sizeof(q), t, strlen(t)));
		log_addr((const struct sockaddr *)&a.ss, text, sizeof(text));
		str_append(d->resolvers, sizeof(d->resolvers), i ? "," : "");
		str_append(d->resolvers, sizeof(d->resolvers), text);
	}
	d->enabled = true;
	return 0;
}

/*
 * tcp_congestion: a name this kernel lets this process set (a scratch
 * socket tries it), so a bad one is a config error, not a failed
 * connection later.
 */
static int
get_congestion(const struct cfg_ctx *x, const char *path, const json_t *obj,
	       char *out)
{
	char kpath[CFG_PATH_MAX], q[CFG_QUOTE_MAX], allowed[256] = "";
	const char *s;
	size_t len;
	int fd, rc, e;

	if (get_string(x, path, obj, "tcp_congestion", false, false, &s,
		       &len) < 0)
		return -1;
	out[0] = '\0';
	if (s == NULL)
		return 0;
	path_key(kpath, sizeof(kpath), path, "tcp_congestion");
	if (len >= CFG_CC_NAME_MAX ||
	    strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") != len)
		return cfg_error(x, kpath,
				 "must be a congestion control's name (like "
				 "\"cubic\"), got %s",
				 quote(q, sizeof(q), s, len));
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return cfg_error(x, kpath, "cannot check it: %s",
				 strerror(errno));
	rc = setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, s, (socklen_t)len);
	e = errno;
	close(fd);
	if (rc < 0) {
		if (listen_cc_sysctl("allowed_congestion_control", allowed,
				     sizeof(allowed)) < 0)
			allowed[0] = '\0';
		return cfg_error(x, kpath,
				 "%s: %s (this kernel allows: %s)",
				 quote(q, sizeof(q), s, len), strerror(e),
				 allowed[0] ? allowed : "?");
	}
	memcpy(out, s, len + 1);
	return 0;
}

/*
 * What a pool is made of, from obj: a "pools" entry, or a listener with its
 * own backends (whose other keys the caller checks).
 */
static int
parse_pool_body(const struct cfg_ctx *x, const char *path, const json_t *obj,
		struct cfg_pool *p)
{
	if (get_algorithm(x, path, obj, &p->algorithm) < 0 ||
	    get_uint(x, path, obj, "connect_attempts", 1, CFG_ATTEMPTS_MAX, 3,
		     &p->connect_attempts) < 0 ||
	    parse_health(x, path, obj, &p->health) < 0 ||
	    parse_pool_timeouts(x, path, obj, p) < 0 ||
	    parse_discover(x, path, obj, &p->discover) < 0 ||
	    parse_backends(x, path, obj, p) < 0 ||
	    parse_hash(x, path, obj, p) < 0 ||
	    get_uint(x, path, obj, "slow_start_ms", 0, 3600000, 0,
		     &p->slow_start_ms) < 0 ||
	    parse_ejection(x, path, obj, p) < 0 ||
	    get_congestion(x, path, obj, p->tcp_cc) < 0)
		return -1;
	p->send_proxy = SEND_PROXY_OFF;
	return get_send_proxy(x, path, obj, &p->send_proxy);
}

static int
parse_pool(const struct cfg_ctx *x, const char *path, json_t *v,
	   struct cfg_pool *p)
{
	char tpath[CFG_PATH_MAX];
	json_t *t;

	if (!json_is_object(v))
		return cfg_error(x, path, "must be an object, got %s",
				 type_name(v));
	if (check_keys(x, path, v, pool_keys) < 0 ||
	    get_name(x, path, v, p->name) < 0)
		return -1;
	path_key(tpath, sizeof(tpath), path, "timeouts");
	if (get_container(x, path, v, "timeouts", JSON_OBJECT, false, &t) < 0 ||
	    (t != NULL && check_keys(x, tpath, t, pool_timeout_keys) < 0))
		return -1;
	return parse_pool_body(x, path, v, p);
}

static int
find_pool(const struct config *cfg, const char *name, size_t *out)
{
	for (size_t i = 0; i < cfg->npools; i++) {
		if (strcmp(cfg->pools[i].name, name) == 0) {
			*out = i;
			return 0;
		}
	}
	return -1;
}

/* A top-level pool named at path (by a route or a split); -1 if none. */
static int
top_pool(const struct cfg_ctx *x, const char *path, struct config *cfg,
	 const char *name, size_t len, size_t *out)
{
	char q[CFG_QUOTE_MAX];

	if (find_pool(cfg, name, out) < 0 || cfg->pools[*out].is_inline)
		return cfg_error(x, path,
				 "unknown pool %s (pools are defined in the top-level \"pools\" array)",
				 quote(q, sizeof(q), name, len));
	return 0;
}

/*
 * "split": [{"pool": P, "weight": W}, ...] and "sticky" of object v (a
 * listener, or a route whose first server name is `route`): a new entry
 * of cfg->splits, its index in *out; CFG_NO_SPLIT when v has no split.
 */
static int
parse_split(const struct cfg_ctx *x, const char *parent, const json_t *v,
	    struct config *cfg, size_t listener, const char *route,
	    size_t *out)
{
	char path[CFG_PATH_MAX], epath[CFG_PATH_MAX], kpath[CFG_PATH_MAX];
	struct cfg_split *sp, *grown;
	const char *sticky, *name;
	size_t slen, len, n, k, pool;
	unsigned total = 0;
	json_t *arr, *e;

	*out = CFG_NO_SPLIT;
	if (get_container(x, parent, v, "split", JSON_ARRAY, false, &arr) < 0 ||
	    get_string(x, parent, v, "sticky", false, false, &sticky, &slen) < 0)
		return -1;
	path_key(path, sizeof(path), parent, "split");
	path_key(kpath, sizeof(kpath), parent, "sticky");
	if (arr == NULL) {
		if (sticky != NULL)
			return cfg_error(x, kpath, "only with \"split\"");
		return 0;
	}
	if (sticky != NULL && strcmp(sticky, "source-ip") != 0 &&
	    strcmp(sticky, "none") != 0)
		return cfg_error(x, kpath,
				 "must be \"source-ip\" or \"none\"");
	n = json_array_size(arr);
	if (n < 2 || n > CFG_SPLIT_MAX)
		return cfg_error(x, path,
				 "must name from 2 to %d pools, got %zu%s",
				 CFG_SPLIT_MAX, n,
				 n == 1 ? " (for one, use \"pool\")" : "");
	grown = realloc(cfg->splits, (cfg->nsplits + 1) * sizeof(*grown));
	if (grown == NULL)
		return cfg_error(x, path, "out of memory");
	cfg->splits = grown;
	sp = &cfg->splits[cfg->nsplits];
	memset(sp, 0, sizeof(*sp));
	sp->listener = listener;
	snprintf(sp->route, sizeof(sp->route), "%s", route);
	sp->sticky = sticky != NULL && strcmp(sticky, "source-ip") == 0;
	json_array_foreach(arr, k, e) {
		path_index(epath, sizeof(epath), path, k);
		if (!json_is_object(e))
			return cfg_error(x, epath, "must be an object, got %s",
					 type_name(e));
		if (check_keys(x, epath, e, split_keys) < 0 ||
		    get_string(x, epath, e, "pool", true, false, &name,
			       &len) < 0 ||
		    get_uint(x, epath, e, "weight", 0, CFG_SPLIT_WEIGHT_MAX, 1,
			     &sp->side[k].weight) < 0)
			return -1;
		path_key(kpath, sizeof(kpath), epath, "pool");
		if (top_pool(x, kpath, cfg, name, len, &pool) < 0)
			return -1;
		for (size_t j = 0; j < k; j++)
			if (sp->side[j].pool == pool)
				return cfg_error(x, kpath,
						 "pool \"%s\" is in this split twice",
						 cfg->pools[pool].name);
		sp->side[k].pool = pool;
		total += sp->side[k].weight;
	}
	if (total == 0)
		return cfg_error(x, path,
				 "every weight is 0: at least one pool must take clients");
	for (k = 0; k < n; k++)
		cfg->pools[sp->side[k].pool].nusers++;
	sp->nsides = n;
	*out = cfg->nsplits++;
	return 0;
}

/*
 * The listener's pool: the one it names with "pool", or a new inline one
 * made from its own "backends" and named after it.  cfg->pools has room.
 */
static int
listener_pool(const struct cfg_ctx *x, const char *path, json_t *v,
	      struct config *cfg, struct cfg_listener *l)
{
	char kpath[CFG_PATH_MAX], tpath[CFG_PATH_MAX], q[CFG_QUOTE_MAX];
	const char *name;
	struct cfg_pool *p;
	json_t *t;
	size_t len, i;
	bool split;

	if (get_string(x, path, v, "pool", false, false, &name, &len) < 0 ||
	    get_container(x, path, v, "timeouts", JSON_OBJECT, false, &t) < 0)
		return -1;
	path_key(tpath, sizeof(tpath), path, "timeouts");
	split = json_object_get(v, "split") != NULL;
	if (name != NULL && split) {
		path_key(kpath, sizeof(kpath), path, "split");
		return cfg_error(x, kpath,
				 "not with \"pool\": a listener sends its clients to one pool, or splits them over several");
	}
	if (!split && json_object_get(v, "sticky") != NULL) {
		path_key(kpath, sizeof(kpath), path, "sticky");
		return cfg_error(x, kpath, "only with \"split\"");
	}
	if (name != NULL || split) {
		if (split)
			snprintf(q, sizeof(q), "s of the split");
		else
			quote(q, sizeof(q), name, len);
		for (const char *const *k = pool_only_keys; *k != NULL; k++) {
			if (json_object_get(v, *k) == NULL)
				continue;
			path_key(kpath, sizeof(kpath), path, *k);
			return cfg_error(x, kpath,
					 "not allowed with \"%s\": set it in the pool%s%s%s",
					 split ? "split" : "pool", split ? "" : " ",
					 q,
					 strcmp(*k, "backends") == 0 ?
						 (split ? " (or drop \"split\" to "
							  "give this listener its "
							  "own backends)" :
							  " (or drop \"pool\" to give "
							  "this listener its own backends)") :
						 "");
		}
		if (t != NULL) {
			for (const char *const *k = pool_timeout_keys;
			     *k != NULL; k++) {
				if (json_object_get(t, *k) == NULL)
					continue;
				path_key(kpath, sizeof(kpath), tpath, *k);
				return cfg_error(x, kpath,
						 "belongs to the pool: set it in the pool%s%s",
						 split ? "" : " ", q);
			}
			if (check_keys(x, tpath, t, listener_timeout_keys) < 0)
				return -1;
		}
		if (split) {
			l->pool = CFG_NO_POOL;
			return parse_split(x, path, v, cfg,
					   (size_t)(l - cfg->listeners), "",
					   &l->split);
		}
		path_key(kpath, sizeof(kpath), path, "pool");
		if (find_pool(cfg, name, &i) < 0 || cfg->pools[i].is_inline)
			return cfg_error(x, kpath,
					 "unknown pool %s (pools are defined in the top-level \"pools\" array)",
					 quote(q, sizeof(q), name, len));
		l->pool = i;
		cfg->pools[i].nusers++;
		return 0;
	}
	if (json_object_get(v, "backends") == NULL &&
	    json_object_get(v, "discover") == NULL &&
	    json_object_get(v, "routes") != NULL) {
		/* Routes only: a client no route takes is refused. */
		for (const char *const *k = pool_only_keys; *k != NULL; k++) {
			if (json_object_get(v, *k) == NULL)
				continue;
			path_key(kpath, sizeof(kpath), path, *k);
			return cfg_error(x, kpath,
					 "belongs to a pool, and this listener has none of its own (it routes by SNI)");
		}
		if (t != NULL && check_keys(x, tpath, t, listener_timeout_keys) < 0)
			return -1;
		l->pool = CFG_NO_POOL;
		return 0;
	}
	if (json_object_get(v, "backends") == NULL &&
	    json_object_get(v, "discover") == NULL) {
		path_key(kpath, sizeof(kpath), path, "backends");
		return cfg_error(x, kpath,
				 "required key missing (or name a pool with \"pool\", or several with \"split\")");
	}
	if (t != NULL && check_keys(x, tpath, t, timeout_keys) < 0)
		return -1;
	/* A clash with another listener's own pool: check_listener_dups. */
	if (find_pool(cfg, l->name, &i) == 0 && !cfg->pools[i].is_inline) {
		path_key(kpath, sizeof(kpath), path, "name");
		return cfg_error(x, kpath,
				 "\"%s\" is also the name of pools[%zu]; a listener with its own backends defines a pool of its own name, so rename one of them",
				 l->name, i);
	}
	p = &cfg->pools[cfg->npools];
	memcpy(p->name, l->name, sizeof(p->name));
	p->is_inline = true;
	p->nusers = 1;
	l->pool = cfg->npools++;
	return parse_pool_body(x, path, v, p);
}

/*
 * A server name pattern of a route: a host name, or "*." and one, any
 * case (stored lowercase).  0, or -1 with the reason in err.
 */
static int
sni_pattern(const char *s, size_t len, char *out, size_t cap,
	    const char **why)
{
	size_t i = 0;

	if (len >= cap) {
		*why = "too long for a host name";
		return -1;
	}
	if (len >= 2 && s[0] == '*' && s[1] == '.') {
		out[0] = '*';
		out[1] = '.';
		i = 2;
	}
	if (i == len) {
		*why = "no host name";
		return -1;
	}
	for (; i < len; i++) {
		char c = s[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.' || c == '_')) {
			*why = c == '*' ? "\"*\" only as a whole first label (\"*.example.org\")" :
					  "a host name has only letters, digits, '-', '_' and '.'";
			return -1;
		}
		if (c == '.' && (i == 0 || s[i - 1] == '.' || i + 1 == len)) {
			*why = "an empty label";
			return -1;
		}
		out[i] = c;
	}
	if (out[0] == '.') {
		*why = "an empty label";
		return -1;
	}
	out[len] = '\0';
	return 0;
}

/*
 * routes: [{ "sni": [names], "pool": "P" }, ...].  Every name once per
 * listener; the pools are top-level ones.
 */
static int
parse_routes(const struct cfg_ctx *x, const char *parent, const json_t *lst,
	     struct config *cfg, struct cfg_listener *l)
{
	char path[CFG_PATH_MAX], rpath[CFG_PATH_MAX], spath[CFG_PATH_MAX];
	char ipath[CFG_PATH_MAX], q[CFG_QUOTE_MAX];
	json_t *arr, *r, *names;
	size_t n, total = 0, pool, k, split_ix;

	if (get_container(x, parent, lst, "routes", JSON_ARRAY, false, &arr) < 0)
		return -1;
	if (arr == NULL)
		return 0;
	path_key(path, sizeof(path), parent, "routes");
	n = json_array_size(arr);
	if (n == 0)
		return cfg_error(x, path,
				 "must contain at least one route (leave routes out instead)");
	json_array_foreach(arr, k, r)
		total += json_array_size(json_object_get(r, "sni"));
	if (total > CFG_ROUTES_MAX)
		return cfg_error(x, path, "too many server names (%zu, max %d)",
				 total, CFG_ROUTES_MAX);
	l->routes = calloc(total ? total : 1, sizeof(*l->routes));
	if (l->routes == NULL)
		return cfg_error(x, path, "out of memory");
	json_array_foreach(arr, k, r) {
		const char *pname;
		size_t plen, j;

		path_index(rpath, sizeof(rpath), path, k);
		if (!json_is_object(r))
			return cfg_error(x, rpath, "must be an object, got %s",
					 type_name(r));
		bool split = json_object_get(r, "split") != NULL;
		size_t first = l->nroutes;

		if (check_keys(x, rpath, r, route_keys) < 0 ||
		    get_string(x, rpath, r, "pool", !split, false, &pname,
			       &plen) < 0 ||
		    get_container(x, rpath, r, "sni", JSON_ARRAY, true,
				  &names) < 0)
			return -1;
		path_key(spath, sizeof(spath), rpath, "split");
		if (pname != NULL && split)
			return cfg_error(x, spath,
					 "not with \"pool\": a route goes to one pool, or splits its clients over several");
		path_key(spath, sizeof(spath), rpath, "pool");
		pool = CFG_NO_POOL;
		if (pname != NULL &&
		    top_pool(x, spath, cfg, pname, plen, &pool) < 0)
			return -1;
		path_key(spath, sizeof(spath), rpath, "sni");
		if (json_array_size(names) == 0)
			return cfg_error(x, spath,
					 "must contain at least one server name");
		if (pool != CFG_NO_POOL)
			cfg->pools[pool].nusers++;
		for (size_t i = 0; i < json_array_size(names); i++) {
			json_t *nv = json_array_get(names, i);
			struct cfg_route *rt = &l->routes[l->nroutes];
			const char *why;

			path_index(ipath, sizeof(ipath), spath, i);
			if (!json_is_string(nv))
				return cfg_error(x, ipath,
						 "must be a string, got %s",
						 type_name(nv));
			if (sni_pattern(json_string_value(nv),
					json_string_length(nv), rt->sni,
					sizeof(rt->sni), &why) < 0)
				return cfg_error(x, ipath, "bad server name %s: %s",
						 quote(q, sizeof(q),
						       json_string_value(nv),
						       json_string_length(nv)),
						 why);
			for (j = 0; j < l->nroutes; j++)
				if (strcmp(l->routes[j].sni, rt->sni) == 0)
					return cfg_error(x, ipath,
							 "server name \"%s\" is in two routes",
							 rt->sni);
			rt->pool = pool;
			rt->split = CFG_NO_SPLIT;
			l->nroutes++;
		}
		/* Routes only take the split where the names are good. */
		if (parse_split(x, rpath, r, cfg,
				(size_t)(l - cfg->listeners),
				l->routes[first].sni, &split_ix) < 0)
			return -1;
		for (size_t i = first; i < l->nroutes; i++)
			l->routes[i].split = split_ix;
	}
	return 0;
}

/*
 * accept_proxy: who must send a PROXY header ("from", required), how long
 * it may take, and whether anybody else may connect without one.
 */
static int
parse_accept_proxy(const struct cfg_ctx *x, const char *parent,
		   const json_t *lst, struct cfg_accept_proxy *ap)
{
	char path[CFG_PATH_MAX], fpath[CFG_PATH_MAX];
	json_t *v;

	if (get_container(x, parent, lst, "accept_proxy", JSON_OBJECT, false,
			  &v) < 0)
		return -1;
	if (v == NULL)
		return 0;
	path_key(path, sizeof(path), parent, "accept_proxy");
	if (check_keys(x, path, v, accept_proxy_keys) < 0)
		return -1;
	if (json_object_get(v, "from") == NULL) {
		path_key(fpath, sizeof(fpath), path, "from");
		return cfg_error(x, fpath,
				 "required key missing (the addresses of the load balancers that send PROXY headers)");
	}
	if (parse_acl(x, path, v, "from", &ap->from, &ap->nfrom) < 0 ||
	    get_uint(x, path, v, "timeout_ms", 1, 600000, 3000,
		     &ap->timeout_ms) < 0 ||
	    get_bool(x, path, v, "allow_direct", false, &ap->allow_direct) < 0)
		return -1;
	ap->enabled = true;
	return 0;
}

static int
parse_listener(const struct cfg_ctx *x, const char *path, json_t *v,
	       struct config *cfg, struct cfg_listener *l)
{
	json_int_t backlog;
	json_t *t;
	char tpath[CFG_PATH_MAX];

	if (!json_is_object(v))
		return cfg_error(x, path, "must be an object, got %s",
				 type_name(v));
	path_key(tpath, sizeof(tpath), path, "timeouts");
	l->split = CFG_NO_SPLIT;
	if (check_keys(x, path, v, listener_keys) < 0 ||
	    get_name(x, path, v, l->name) < 0 ||
	    get_addr(x, path, v, "listen", true, &l->addr) < 0 ||
	    listener_pool(x, path, v, cfg, l) < 0 ||
	    get_int(x, path, v, "backlog", 1, 65535, 511, &backlog) < 0 ||
	    get_bool(x, path, v, "client_speaks_first", false,
		     &l->client_first) < 0 ||
	    get_congestion(x, path, v, l->tcp_cc) < 0 ||
	    get_container(x, path, v, "timeouts", JSON_OBJECT, false, &t) < 0 ||
	    get_uint(x, tpath, t, "idle_ms", 0, 86400000, 600000,
		     &l->idle_ms) < 0 ||
	    get_uint(x, tpath, t, "preread_ms", 1, 600000, 5000,
		     &l->preread_ms) < 0 ||
	    parse_routes(x, path, v, cfg, l) < 0 ||
	    get_uint(x, path, v, "max_connections", 0, CFG_LIMIT_MAX, 0,
		     &l->max_connections) < 0 ||
	    parse_acl(x, path, v, "allow", &l->allow, &l->nallow) < 0 ||
	    parse_acl(x, path, v, "deny", &l->deny, &l->ndeny) < 0 ||
	    parse_per_source(x, path, v, &l->per_source) < 0 ||
	    parse_accept_proxy(x, path, v, &l->accept_proxy) < 0)
		return -1;
	if (cfg_addr_systemd(&l->addr) && json_object_get(v, "backlog")) {
		char bpath[CFG_PATH_MAX];

		path_key(bpath, sizeof(bpath), path, "backlog");
		return cfg_error(x, bpath,
				 "not with a socket from systemd, which listens already: set Backlog= in the .socket unit");
	}
	if (json_object_get(t, "preread_ms") != NULL && l->nroutes == 0) {
		char ppath[CFG_PATH_MAX];

		path_key(ppath, sizeof(ppath), tpath, "preread_ms");
		return cfg_error(x, ppath,
				 "only for a listener with routes (it bounds reading the TLS ClientHello)");
	}
	l->backlog = (int)backlog;
	return 0;
}

/*
 * The top-level "pools": optional; names unique.  Room is left behind them
 * for one inline pool per listener.
 */
static int
parse_pools(const struct cfg_ctx *x, const json_t *root, struct config *cfg,
	    size_t nlisteners)
{
	char path[CFG_PATH_MAX], npath[CFG_PATH_MAX];
	json_t *arr;
	size_t n, j;

	if (get_container(x, "", root, "pools", JSON_ARRAY, false, &arr) < 0)
		return -1;
	n = json_array_size(arr);
	if (arr != NULL && n == 0)
		return cfg_error(x, "pools",
				 "must contain at least one pool (leave pools out instead)");
	if (n > CFG_POOLS_MAX)
		return cfg_error(x, "pools", "too many pools (%zu, max %d)", n,
				 CFG_POOLS_MAX);
	cfg->pools = calloc(n + nlisteners, sizeof(*cfg->pools));
	if (cfg->pools == NULL)
		return cfg_error(x, "pools", "out of memory");
	for (size_t i = 0; i < n; i++) {
		struct cfg_pool *p = &cfg->pools[i];

		path_index(path, sizeof(path), "pools", i);
		cfg->npools = i + 1;
		if (parse_pool(x, path, json_array_get(arr, i), p) < 0)
			return -1;
		if (find_pool(cfg, p->name, &j) == 0 && j < i) {
			path_key(npath, sizeof(npath), path, "name");
			return cfg_error(x, npath,
					 "duplicate pool name \"%s\" (also pools[%zu])",
					 p->name, j);
		}
	}
	return 0;
}

/* A pool nobody sends clients to is likely a mistake, but not an error. */
static void
warn_unused_pools(const struct cfg_ctx *x, const struct config *cfg)
{
	for (size_t i = 0; i < cfg->npools; i++)
		if (!cfg->pools[i].is_inline && cfg->pools[i].nusers == 0)
			log_warn("%s: pools[%zu]: no listener uses pool \"%s\"",
				 x->file, i, cfg->pools[i].name);
}

/* Two listeners may not share a name or bind the same address. */
static int
check_listener_dups(const struct cfg_ctx *x, const struct config *cfg,
		    size_t i)
{
	const struct cfg_listener *l = &cfg->listeners[i];
	char path[CFG_PATH_MAX], q[CFG_QUOTE_MAX];

	for (size_t j = 0; j < i; j++) {
		const struct cfg_listener *o = &cfg->listeners[j];

		if (strcmp(o->name, l->name) == 0) {
			snprintf(path, sizeof(path), "listeners[%zu].name", i);
			return cfg_error(x, path,
					 "duplicate listener name \"%s\" (also listeners[%zu])",
					 l->name, j);
		}
		if (addr_equal(&o->addr, &l->addr)) {
			snprintf(path, sizeof(path), "listeners[%zu].listen",
				 i);
			return cfg_error(x, path,
					 "duplicate listen address %s (also listeners[%zu])",
					 quote(q, sizeof(q), l->addr.text,
					       strlen(l->addr.text)),
					 j);
		}
	}
	return 0;
}

/* admin.allowed_hosts: DNS names, compared without case or a final dot. */
static int
parse_allowed_hosts(const struct cfg_ctx *x, const json_t *v,
		    struct cfg_admin *a)
{
	char path[CFG_PATH_MAX], hpath[CFG_PATH_MAX], q[CFG_QUOTE_MAX];
	json_t *arr;

	if (get_container(x, "admin", v, "allowed_hosts", JSON_ARRAY, false,
			  &arr) < 0)
		return -1;
	path_key(path, sizeof(path), "admin", "allowed_hosts");
	if (arr && json_array_size(arr) > CFG_ADMIN_HOSTS_MAX)
		return cfg_error(x, path, "at most %d names, got %zu",
				 CFG_ADMIN_HOSTS_MAX, json_array_size(arr));
	for (size_t i = 0; arr && i < json_array_size(arr); i++) {
		const json_t *e = json_array_get(arr, i);
		const char *t = json_string_value(e);
		size_t len = t ? json_string_length(e) : 0;

		path_index(hpath, sizeof(hpath), path, i);
		if (!t)
			return cfg_error(x, hpath, "must be a string, got %s",
					 type_name(e));
		if (len && t[len - 1] == '.')
			len--;
		if (len == 0 || len >= CFG_HOST_NAME_MAX ||
		    strspn(t, "abcdefghijklmnopqrstuvwxyz"
			      "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") < len ||
		    t[0] == '.' || t[0] == '-')
			return cfg_error(x, hpath,
					 "must be a DNS name (letters, digits, "
					 "'.' and '-', at most %d), got %s",
					 CFG_HOST_NAME_MAX - 1,
					 quote(q, sizeof(q), t,
					       json_string_length(e)));
		snprintf(a->allowed_hosts[i], CFG_HOST_NAME_MAX, "%.*s",
			 (int)len, t);
	}
	a->nallowed_hosts = arr ? json_array_size(arr) : 0;
	return 0;
}

/*
 * admin.token_file: one line, the bearer token the TCP listener asks for.
 * Read here, so -t checks it and a reload rereads it (it then takes effect
 * at restart, as the rest of admin); the user ringlb runs as must be able
 * to read it.
 */
static int
parse_token_file(const struct cfg_ctx *x, const json_t *v,
		 struct cfg_admin *a)
{
	char buf[CFG_TOKEN_MAX + 2];
	const char *s;
	size_t len, n;
	struct stat st;
	ssize_t r;
	int fd;

	if (get_string(x, "admin", v, "token_file", false, false, &s,
		       &len) < 0)
		return -1;
	if (s == NULL)
		return 0;
	if (len >= CFG_TOKEN_PATH_MAX)
		return cfg_error(x, "admin.token_file",
				 "longer than %d bytes", CFG_TOKEN_PATH_MAX - 1);
	snprintf(a->token_file, sizeof(a->token_file), "%s", s);
	/* Non-blocking and then checked: a FIFO must not hang a reload. */
	fd = open(s, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return cfg_error(x, "admin.token_file", "%s: %s", s,
				 strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return cfg_error(x, "admin.token_file",
				 "%s: not a regular file", s);
	}
	if (st.st_mode & 0004)
		log_warn("%s: admin.token_file %s can be read by every user",
			 x->file, s);
	r = read(fd, buf, sizeof(buf) - 1);
	if (r < 0) {
		int e = errno;

		close(fd);
		return cfg_error(x, "admin.token_file", "%s: %s", s,
				 strerror(e));
	}
	close(fd);
	n = (size_t)r;
	buf[n] = '\0';
	/* One line: a final newline (or CR LF) is not part of it. */
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (buf[i] <= ' ' || buf[i] > '~')
			return cfg_error(x, "admin.token_file",
					 "%s: the token must be one line of "
					 "printable characters with no space",
					 s);
	if (n > CFG_TOKEN_MAX)
		return cfg_error(x, "admin.token_file",
				 "%s: the token is longer than %d characters",
				 s, CFG_TOKEN_MAX);
	if (n < CFG_TOKEN_MIN)
		return cfg_error(x, "admin.token_file",
				 "%s: the token must be %d to %d characters, "
				 "got %zu", s, CFG_TOKEN_MIN, CFG_TOKEN_MAX, n);
	memcpy(a->token, buf, n + 1);
	return 0;
}

/*
 * admin is optional: absent means the default socket with mode 0600.  mode
 * is an octal string ("0660"), since JSON has no octal numbers.  listen
 * takes "host:port", or a bare port meaning 127.0.0.1.
 */
static int
parse_admin(const struct cfg_ctx *x, const json_t *root, struct cfg_admin *a)
{
	char path[CFG_PATH_MAX], q[CFG_QUOTE_MAX], reason[CFG_REASON_MAX];
	char buf[64];
	const char *s;
	size_t len;
	json_t *v;

	if (get_container(x, "", root, "admin", JSON_OBJECT, false, &v) < 0)
		return -1;
	if (v != NULL && check_keys(x, "admin", v, admin_keys) < 0)
		return -1;
	if (get_bool(x, "admin", v, "enabled", true, &a->enabled) < 0 ||
	    get_string(x, "admin", v, "socket", false, false, &s, &len) < 0)
		return -1;
	if (s == NULL)
		s = CFG_ADMIN_SOCKET_DEFAULT;
	else if (len >= CFG_SOCKET_PATH_MAX)
		return cfg_error(x, "admin.socket",
				 "too long (%zu bytes, max %d for a Unix socket)",
				 len, CFG_SOCKET_PATH_MAX - 1);
	snprintf(a->socket, sizeof(a->socket), "%s", s);

	a->mode = 0600;
	if (get_string(x, "admin", v, "mode", false, false, &s, &len) < 0)
		return -1;
	if (s != NULL) {
		char *end;
		unsigned long m;

		errno = 0;
		m = strtoul(s, &end, 8);
		if (errno || *end != '\0' || len > 4 || m > 0777 ||
		    s[0] == '-' || s[0] == '+' || s[0] == ' ')
			return cfg_error(x, "admin.mode",
					 "must be octal permission bits like \"0600\", got %s",
					 quote(q, sizeof(q), s, len));
		a->mode = (unsigned)m;
	}

	if (get_string(x, "admin", v, "listen", false, false, &s, &len) < 0)
		return -1;
	if (s != NULL) {
		path_key(path, sizeof(path), "admin", "listen");
		if (len < sizeof(buf) && strspn(s, "0123456789") == len) {
			snprintf(buf, sizeof(buf), "127.0.0.1:%s", s);
			s = buf;
		}
		if (cfg_parse_addr(s, &a->listen, reason, sizeof(reason)) < 0)
			return cfg_error(x, path, "%s", reason);
		a->has_listen = true;
	}
	if (parse_allowed_hosts(x, v, a) < 0)
		return -1;
	return parse_token_file(x, v, a);
}

/*
 * user and group: whom to run as after binding.  Looked up at load time, so
 * an unknown name is a config error and -t reports it.  group defaults to
 * the user's primary group.
 */
static int
parse_user(const struct cfg_ctx *x, const json_t *root, struct config *cfg)
{
	char q[CFG_QUOTE_MAX], buf[16384];
	struct passwd pw, *pwp = NULL;
	struct group gr, *grp = NULL;
	const char *u, *g;
	size_t ulen, glen;
	int rc;

	if (get_string(x, "", root, "user", false, false, &u, &ulen) < 0 ||
	    get_string(x, "", root, "group", false, false, &g, &glen) < 0)
		return -1;
	if (u == NULL) {
		if (g != NULL)
			return cfg_error(x, "group",
					 "needs user (the user to run as)");
		return 0;
	}
	if (ulen >= CFG_NAME_MAX)
		return cfg_error(x, "user", "too long (%zu bytes, max %d)",
				 ulen, CFG_NAME_MAX - 1);
	rc = getpwnam_r(u, &pw, buf, sizeof(buf), &pwp);
	if (pwp == NULL)
		return cfg_error(x, "user", "unknown user %s%s%s",
				 quote(q, sizeof(q), u, ulen),
				 rc ? ": " : "", rc ? strerror(rc) : "");
	cfg->uid = pw.pw_uid;
	cfg->gid = pw.pw_gid;
	snprintf(cfg->user, sizeof(cfg->user), "%s", u);
	if (g == NULL) {
		if (getgrgid_r(cfg->gid, &gr, buf, sizeof(buf), &grp) == 0 &&
		    grp != NULL)
			snprintf(cfg->group, sizeof(cfg->group), "%s",
				 gr.gr_name);
		else
			snprintf(cfg->group, sizeof(cfg->group), "%u",
				 (unsigned)cfg->gid);
	} else {
		if (glen >= CFG_NAME_MAX)
			return cfg_error(x, "group",
					 "too long (%zu bytes, max %d)", glen,
					 CFG_NAME_MAX - 1);
		rc = getgrnam_r(g, &gr, buf, sizeof(buf), &grp);
		if (grp == NULL)
			return cfg_error(x, "group", "unknown group %s%s%s",
					 quote(q, sizeof(q), g, glen),
					 rc ? ": " : "", rc ? strerror(rc) : "");
		cfg->gid = gr.gr_gid;
		snprintf(cfg->group, sizeof(cfg->group), "%s", g);
	}
	cfg->has_user = true;
	return 0;
}

static unsigned
default_workers(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		return 1;
	if (n > CFG_WORKERS_MAX)
		return CFG_WORKERS_MAX;
	return (unsigned)n;
}

static int
parse_root(const struct cfg_ctx *x, json_t *root, struct config *cfg)
{
	char path[CFG_PATH_MAX], q[CFG_QUOTE_MAX];
	const char *s;
	json_t *arr, *v;
	size_t len, n;

	if (!json_is_object(root))
		return cfg_error(x, "", "top level must be an object, got %s",
				 type_name(root));
	if (check_keys(x, "", root, root_keys) < 0 ||
	    get_uint(x, "", root, "workers", 1, CFG_WORKERS_MAX,
		     default_workers(), &cfg->workers) < 0 ||
	    get_string(x, "", root, "log_level", false, false, &s, &len) < 0)
		return -1;
	cfg->log_level = LOG_INFO;
	if (s != NULL) {
		cfg->log_level = log_level_parse(s);
		if (cfg->log_level < 0)
			return cfg_error(x, "log_level",
					 "unknown level %s (expected error, warn, info or debug)",
					 quote(q, sizeof(q), s, len));
	}
	if (get_string(x, "", root, "log_format", false, false, &s, &len) < 0)
		return -1;
	cfg->log_format = LOG_FORMAT_TEXT;
	if (s != NULL) {
		cfg->log_format = log_format_parse(s);
		if (cfg->log_format < 0)
			return cfg_error(x, "log_format",
					 "unknown format %s (expected text or json)",
					 quote(q, sizeof(q), s, len));
	}
	if (parse_admin(x, root, &cfg->admin) < 0 ||
	    parse_user(x, root, cfg) < 0)
		return -1;
	if (get_uint(x, "", root, "recv_buffers", 0, 32768, 256,
		     &cfg->recv_buffers) < 0)
		return -1;
	if (cfg->recv_buffers & (cfg->recv_buffers - 1))
		return cfg_error(x, "recv_buffers",
				 "must be 0 or a power of two, got %u",
				 cfg->recv_buffers);
	if (get_container(x, "", root, "upgrade", JSON_OBJECT, false, &v) < 0 ||
	    (v && check_keys(x, "upgrade", v, upgrade_keys) < 0) ||
	    get_uint(x, "upgrade", v, "handover_ms", 0, 60000, 2000,
		     &cfg->upgrade_handover_ms) < 0)
		return -1;
	if (get_uint(x, "", root, "shutdown_grace_ms", 0, 3600000, 30000,
		     &cfg->shutdown_grace_ms) < 0 ||
	    get_container(x, "", root, "listeners", JSON_ARRAY, true,
			  &arr) < 0)
		return -1;
	n = json_array_size(arr);
	if (n == 0)
		return cfg_error(x, "listeners",
				 "must contain at least one listener");
	if (parse_pools(x, root, cfg, n) < 0)
		return -1;
	cfg->listeners = calloc(n, sizeof(*cfg->listeners));
	if (cfg->listeners == NULL)
		return cfg_error(x, "listeners", "out of memory");
	cfg->nlisteners = n;
	for (size_t i = 0; i < n; i++) {
		path_index(path, sizeof(path), "listeners", i);
		if (parse_listener(x, path, json_array_get(arr, i), cfg,
				   &cfg->listeners[i]) < 0 ||
		    check_listener_dups(x, cfg, i) < 0)
			return -1;
	}
	warn_unused_pools(x, cfg);
	return 0;
}

static bool
all_digits_dots(const char *s)
{
	for (; *s != '\0'; s++)
		if (!(*s >= '0' && *s <= '9') && *s != '.')
			return false;
	return true;
}

/*
 * Resolve one host (no port) into a->ss.  Numeric forms never reach DNS:
 * brackets mean IPv6 and a dotted quad is IPv4; only a name is looked up,
 * and the first getaddrinfo() result wins.
 */
static int
addr_resolve(const char *host, bool v6, struct cfg_addr *a, char *err,
	     size_t errlen)
{
	struct addrinfo hints, *res;
	struct sockaddr_in *sin;
	char q[CFG_QUOTE_MAX];
	int rc;

	quote(q, sizeof(q), host, strlen(host));
	if (!v6 && strcmp(host, "*") == 0) {
		sin = (struct sockaddr_in *)&a->ss;
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
		a->len = sizeof(*sin);
		return 0;
	}
	if (!v6 && all_digits_dots(host)) {
		sin = (struct sockaddr_in *)&a->ss;
		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			return msg_error(err, errlen,
					 "%s is not a valid IPv4 address", q);
		sin->sin_family = AF_INET;
		a->len = sizeof(*sin);
		return 0;
	}
	if (!v6) {
		/*
		 * Host names use the same charset as our names ('_' shows
		 * up in internal names); anything else is a typo, and saying
		 * so beats a resolver error.
		 */
		for (const char *p = host; *p != '\0'; p++) {
			char qc[16];

			if (name_char(*p))
				continue;
			return msg_error(err, errlen,
					 "invalid character %s in host name %s",
					 quote(qc, sizeof(qc), p, 1), q);
		}
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = v6 ? AF_INET6 : AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = v6 ? AI_NUMERICHOST : 0;
	rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc != 0) {
		if (v6)
			return msg_error(err, errlen,
					 "%s is not an IPv6 address", q);
		return msg_error(err, errlen, "cannot resolve %s: %s", q,
				 rc == EAI_SYSTEM ? strerror(errno) :
				 gai_strerror(rc));
	}
	if (res->ai_addrlen > sizeof(a->ss)) {
		freeaddrinfo(res);
		return msg_error(err, errlen, "cannot resolve %s: address too long",
				 q);
	}
	memcpy(&a->ss, res->ai_addr, res->ai_addrlen);
	a->len = (socklen_t)res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

int
cfg_parse_addr(const char *s, struct cfg_addr *a, char *err, size_t errlen)
{
	char host[sizeof(a->text)], q[CFG_QUOTE_MAX];
	const char *end, *port;
	unsigned long num = 0;
	size_t len, hlen;
	bool v6 = false;

	memset(a, 0, sizeof(*a));
	len = strlen(s);
	if (len == 0)
		return msg_error(err, errlen, "empty address");
	quote(q, sizeof(q), s, len);
	if (len >= sizeof(a->text))
		return msg_error(err, errlen, "too long (%zu bytes, max %zu)",
				 len, sizeof(a->text) - 1);
	if (s[0] == '[') {
		end = strchr(s, ']');
		if (end == NULL)
			return msg_error(err, errlen,
					 "missing ']' after IPv6 address in %s", q);
		hlen = (size_t)(end - s - 1);
		if (hlen == 0)
			return msg_error(err, errlen, "empty IPv6 address in %s",
					 q);
		if (end[1] == '\0')
			return msg_error(err, errlen,
					 "missing port in %s (expected \"[ipv6]:port\")",
					 q);
		if (end[1] != ':')
			return msg_error(err, errlen,
					 "expected ':' and a port after ']' in %s",
					 q);
		memcpy(host, s + 1, hlen);
		port = end + 2;
		v6 = true;
	} else {
		end = strrchr(s, ':');
		if (end == NULL)
			return msg_error(err, errlen,
					 "missing port in %s (expected \"host:port\")",
					 q);
		hlen = (size_t)(end - s);
		if (memchr(s, ':', hlen) != NULL)
			return msg_error(err, errlen,
					 "IPv6 address must be in brackets, as in \"[::1]:8080\", got %s",
					 q);
		if (hlen == 0)
			return msg_error(err, errlen,
					 "missing host before ':' in %s", q);
		memcpy(host, s, hlen);
		port = end + 1;
	}
	host[hlen] = '\0';

	if (*port == '\0')
		return msg_error(err, errlen, "missing port after ':' in %s", q);
	for (const char *p = port; *p != '\0'; p++) {
		if (*p < '0' || *p > '9') {
			char qp[CFG_QUOTE_MAX];

			return msg_error(err, errlen, "port %s is not a number",
					 quote(qp, sizeof(qp), port,
					       strlen(port)));
		}
		/* Saturate: anything past 65535 is out of range anyway. */
		if (num <= 65535)
			num = num * 10 + (unsigned long)(*p - '0');
	}
	if (num < 1 || num > 65535)
		return msg_error(err, errlen, "port %s out of range (1-65535)",
				 port);

	if (addr_resolve(host, v6, a, err, errlen) < 0) {
		memset(a, 0, sizeof(*a));
		return -1;
	}
	if (a->ss.ss_family == AF_INET)
		((struct sockaddr_in *)&a->ss)->sin_port = htons((uint16_t)num);
	else
		((struct sockaddr_in6 *)&a->ss)->sin6_port =
			htons((uint16_t)num);
	memcpy(a->text, s, len + 1);
	return 0;
}

static void
syntax_error(const struct cfg_ctx *x, const json_error_t *je)
{
	if (x->err == NULL || x->errlen == 0)
		return;
	/* jansson leaves the text empty when its lexer cannot allocate. */
	if (json_error_code(je) == json_error_out_of_memory ||
	    je->text[0] == '\0')
		snprintf(x->err, x->errlen, "%s: out of memory while parsing JSON",
			 x->file);
	else if (je->line < 1)
		snprintf(x->err, x->errlen, "%s: JSON syntax error: %s",
			 x->file, je->text);
	else
		snprintf(x->err, x->errlen, "%s:%d:%d: JSON syntax error: %s",
			 x->file, je->line, je->column, je->text);
	one_line(x->err);
}

int
cfg_parse(const char *text, size_t len, const char *name,
	  struct config **out, char *err, size_t errlen)
{
	struct cfg_ctx x = { .file = name, .err = err, .errlen = errlen };
	struct config *cfg;
	json_error_t je;
	json_t *root;

	*out = NULL;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	cfg = calloc(1, sizeof(*cfg));
	if (cfg == NULL)
		return cfg_error(&x, "", "out of memory");
	cfg->path = strdup(name);
	if (cfg->path == NULL) {
		cfg_report(&x, "", "out of memory");
		goto out_free_cfg;
	}
	/*
	 * Duplicate keys are rejected by the parser, so "a later key wins"
	 * can never hide a mistake; \u0000 is allowed for probe payloads.
	 */
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
			  &je);
	if (root == NULL) {
		syntax_error(&x, &je);
		goto out_free_cfg;
	}
	if (parse_root(&x, root, cfg) < 0)
		goto out_decref;
	json_decref(root);
	*out = cfg;
	return 0;

out_decref:
	json_decref(root);
out_free_cfg:
	cfg_free(cfg);
	return -1;
}

/* Slurp a whole file; 0 or -errno.  The cap keeps /dev/zero from eating RAM. */
static int
read_file(const char *path, char **out, size_t *outlen)
{
	size_t len = 0, cap = 4096;
	char *buf, *nbuf;
	ssize_t n;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	buf = malloc(cap);
	if (buf == NULL) {
		rc = -ENOMEM;
		goto out_close;
	}
	for (;;) {
		if (len == cap) {
			if (cap > CFG_FILE_MAX) {
				rc = -EFBIG;
				goto out_free;
			}
			cap *= 2;
			if (cap > CFG_FILE_MAX)
				cap = CFG_FILE_MAX + 1;
			nbuf = realloc(buf, cap);
			if (nbuf == NULL) {
				rc = -ENOMEM;
				goto out_free;
			}
			buf = nbuf;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			goto out_free;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	*out = buf;
	*outlen = len;
	return 0;

out_free:
	free(buf);
out_close:
	close(fd);
	return rc;
}

int
cfg_load(const char *path, struct config **out, char *err, size_t errlen)
{
	size_t len = 0;
	char *buf = NULL;
	int rc;

	*out = NULL;
	rc = read_file(path, &buf, &len);
	if (rc < 0)
		return msg_error(err, errlen, "%s: cannot read: %s", path,
				 strerror(-rc));
	rc = cfg_parse(buf, len, path, out, err, errlen);
	free(buf);
	return rc;
}

void
cfg_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < cfg->npools; i++) {
		struct cfg_pool *p = &cfg->pools[i];

		free(p->backends);
		free(p->health.send);
		free(p->health.expect);
	}
	for (size_t i = 0; i < cfg->nlisteners; i++) {
		free(cfg->listeners[i].allow);
		free(cfg->listeners[i].deny);
		free(cfg->listeners[i].accept_proxy.from);
		free(cfg->listeners[i].routes);
	}
	free(cfg->splits);
	free(cfg->pools);
	free(cfg->listeners);
	free(cfg->path);
	free(cfg);
}

/* A copy of n elements of size sz at p (NULL stays NULL); false: no memory. */
static bool
dup_array(void *dst, const void *p, size_t n, size_t sz)
{
	void *c;

	*(void **)dst = NULL;
	if (p == NULL)
		return true;
	c = malloc(n ? n * sz : 1);
	if (c == NULL)
		return false;
	memcpy(c, p, n * sz);
	*(void **)dst = c;
	return true;
}

struct config *
cfg_clone(const struct config *cfg)
{
	struct config *c = calloc(1, sizeof(*c));
	bool ok;

	if (c == NULL)
		return NULL;
	*c = *cfg;
	c->pools = NULL;
	c->listeners = NULL;
	c->splits = NULL;
	c->npools = c->nlisteners = 0;
	c->path = cfg->path ? strdup(cfg->path) : NULL;
	ok = (!cfg->path || c->path) &&
	     dup_array(&c->splits, cfg->splits, cfg->nsplits,
		       sizeof(*c->splits)) &&
	     dup_array(&c->pools, cfg->pools, cfg->npools,
		       sizeof(*c->pools)) &&
	     dup_array(&c->listeners, cfg->listeners, cfg->nlisteners,
		       sizeof(*c->listeners));
	/* Each copied array so far; what is not copied yet is NULL. */
	for (size_t i = 0; c->pools && i < cfg->npools; i++) {
		struct cfg_pool *p = &c->pools[i];
		const struct cfg_pool *o = &cfg->pools[i];

		c->npools = i + 1;
		p->backends = NULL;
		p->health.send = p->health.expect = NULL;
		ok = ok &&
		     dup_array(&p->backends, o->backends, o->nbackends,
			       sizeof(*p->backends)) &&
		     dup_array(&p->health.send, o->health.send,
			       o->health.send_len, 1) &&
		     dup_array(&p->health.expect, o->health.expect,
			       o->health.expect_len, 1);
	}
	for (size_t i = 0; c->listeners && i < cfg->nlisteners; i++) {
		struct cfg_listener *l = &c->listeners[i];
		const struct cfg_listener *o = &cfg->listeners[i];

		c->nlisteners = i + 1;
		l->allow = l->deny = l->accept_proxy.from = NULL;
		l->routes = NULL;
		ok = ok &&
		     dup_array(&l->allow, o->allow, o->nallow,
			       sizeof(*l->allow)) &&
		     dup_array(&l->deny, o->deny, o->ndeny, sizeof(*l->deny)) &&
		     dup_array(&l->accept_proxy.from, o->accept_proxy.from,
			       o->accept_proxy.nfrom,
			       sizeof(*l->accept_proxy.from)) &&
		     dup_array(&l->routes, o->routes, o->nroutes,
			       sizeof(*l->routes));
	}
	if (!ok) {
		cfg_free(c);
		return NULL;
	}
	return c;
}

int
cfg_set_discovered(struct cfg_pool *p, const struct cfg_backend *found,
		   size_t n)
{
	struct cfg_backend *nb;
	size_t k = p->nstatic;

	nb = realloc(p->backends,
		     (p->nstatic + n > 0 ? p->nstatic + n : 1) * sizeof(*nb));
	if (nb == NULL)
		return -ENOMEM;
	p->backends = nb;
	for (size_t i = 0; i < n; i++) {
		bool dup = false;

		/* A name or address the file has already: the file's wins. */
		for (size_t j = 0; j < k && !dup; j++)
			dup = strcmp(nb[j].name, found[i].name) == 0 ||
			      addr_equal(&nb[j].addr, &found[i].addr);
		if (dup)
			continue;
		nb[k] = found[i];
		nb[k++].discovered = true;
	}
	p->nbackends = k;
	return 0;
}

const char *
cfg_algorithm_name(enum cfg_algorithm alg)
{
	if ((size_t)alg >= ARRAY_SIZE(alg_names) || alg_names[alg] == NULL)
		return "?";
	return alg_names[alg];
}

/*
 * log.c: levelled logging to stderr, as text or JSON.  Each line is formatted
 * in full first and written with one write(2), so lines from different
 * threads never interleave.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static atomic_int log_level = LOG_INFO;
static atomic_int log_format = LOG_FORMAT_TEXT;

static const char *const level_names[] = {
	[LOG_ERROR] = "error",
	[LOG_WARN] = "warn",
	[LOG_INFO] = "info",
	[LOG_DEBUG] = "debug",
};

void
log_set_level(int level)
{
	atomic_store(&log_level, level);
}

int
log_get_level(void)
{
	return atomic_load_explicit(&log_level, memory_order_relaxed);
}

int
log_level_parse(const char *name)
{
	for (int i = LOG_ERROR; i <= LOG_DEBUG; i++)
		if (strcmp(name, level_names[i]) == 0)
			return i;
	return -1;
}

const char *
log_level_name(int level)
{
	if (level < LOG_ERROR || level > LOG_DEBUG)
		return "?";
	return level_names[level];
}

void
log_set_format(int format)
{
	atomic_store(&log_format, format);
}

int
log_format_parse(const char *name)
{
	if (strcmp(name, "text") == 0)
		return LOG_FORMAT_TEXT;
	if (strcmp(name, "json") == 0)
		return LOG_FORMAT_JSON;
	return -1;
}

/* Appends to a line buffer, never past its end (one byte kept for \n). */
struct out {
	char *p;
	size_t n, cap;
};

static void
put(struct out *o, const char *s, size_t len)
{
	if (len > o->cap - 1 - o->n)
		len = o->cap - 1 - o->n;
	memcpy(o->p + o->n, s, len);
	o->n += len;
}

/* How many bytes byte ch takes in a JSON string. */
static size_t
esc_len(unsigned char ch)
{
	if (ch == '"' || ch == '\\')
		return 2;
	return ch < 0x20 || ch >= 0x7f ? 6 : 1;
}

/*
 * s[0..len) as a JSON string, quotes included.  Bytes that are not
 * printable ASCII are escaped, so a line is valid JSON whatever it holds.
 * Room is kept for `reserve` bytes after it: a string too long for the
 * line is cut short, but always closed.
 */
static void
put_json_str(struct out *o, const char *s, size_t len, size_t reserve)
{
	put(o, "\"", 1);
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		char esc[8];

		if (o->n + esc_len(ch) + 1 + reserve > o->cap - 1)
			break;
		if (ch == '"' || ch == '\\') {
			esc[0] = '\\';
			esc[1] = (char)ch;
			put(o, esc, 2);
		} else if (ch < 0x20 || ch >= 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", ch);
			put(o, esc, 6);
		} else {
			put(o, (const char *)&ch, 1);
		}
	}
	put(o, "\"", 1);
}

/* The length of s[0..len) as a JSON string, quotes included. */
static size_t
json_str_len(const char *s, size_t len)
{
	size_t n = 2;

	for (size_t i = 0; i < len; i++)
		n += esc_len((unsigned char)s[i]);
	return n;
}

static bool
is_key(const char *s, size_t len)
{
	if (len == 0 || len > 32 || s[0] < 'a' || s[0] > 'z')
		return false;
	for (size_t i = 1; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
		      s[i] == '_'))
			return false;
	/* The line's own keys stay its own. */
	return !(len == 2 && memcmp(s, "ts", 2) == 0) &&
	       !(len == 5 && memcmp(s, "level", 5) == 0) &&
	       !(len == 3 && memcmp(s, "msg", 3) == 0);
}

/*
 * The key=value words of text as JSON fields (",\"k\":v" each), the first
 * of each key only.  A value loses one trailing ':' ',' or ';' (the end of
 * a clause, "addr=1.2.3.4:80: connect ..."); digits are a number, "-" is
 * null, anything else a string.
 */
static void
put_fields(struct out *o, const char *text, size_t len)
{
	const char *seen[32];
	size_t seen_len[32], nseen = 0;

	for (size_t i = 0; i < len;) {
		size_t j = i, eq = 0, klen, vlen;
		const char *v;
		bool dup = false, num = true;

		while (j < len && text[j] != ' ') {
			if (!eq && text[j] == '=')
				eq = j;
			j++;
		}
		if (!eq || !is_key(text + i, eq - i) || eq + 1 == j)
			goto next;
		klen = eq - i;
		v = text + eq + 1;
		vlen = j - eq - 1;
		if (vlen > 1 && (v[vlen - 1] == ':' || v[vlen - 1] == ',' ||
				 v[vlen - 1] == ';'))
			vlen--;
		for (size_t k = 0; k < nseen && !dup; k++)
			dup = seen_len[k] == klen &&
			      memcmp(seen[k], text + i, klen) == 0;
		if (dup || nseen == 32)
			goto next;
		for (size_t k = 0; k < vlen && num; k++)
			num = v[k] >= '0' && v[k] <= '9';
		/* No leading zeros in a JSON number; 20 digits may not fit. */
		num = num && vlen <= 19 && (vlen == 1 || v[0] != '0');
		/* A field goes in whole, or not at all (room for the "}"). */
		if (o->n + 2 + json_str_len(text + i, klen) +
			    (num ? vlen : json_str_len(v, vlen)) + 1 >
		    o->cap - 1)
			break;
		seen[nseen] = text + i;
		seen_len[nseen++] = klen;
		put(o, ",", 1);
		put_json_str(o, text + i, klen, 0);
		put(o, ":", 1);
		if (num)
			put(o, v, vlen);
		else if (vlen == 1 && v[0] == '-')
			put(o, "null", 4);
		else
			put_json_str(o, v, vlen, 0);
next:
		i = j + 1;
	}
}

static void __attribute__((format(printf, 3, 0)))
log_line(int level, const char *msg, const char *fmt, va_list ap)
{
	char line[4096], text[2048], ts[40];
	struct out o = { line, 0, sizeof(line) };
	struct timespec ts_now;
	struct tm tm;
	size_t n;
	int rc;

	clock_gettime(CLOCK_REALTIME, &ts_now);
	gmtime_r(&ts_now.tv_sec, &tm);
	n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", ts_now.tv_nsec / 1000000);
	rc = vsnprintf(text, sizeof(text), fmt, ap);
	n = rc < 0 ? 0 : (size_t)rc < sizeof(text) ? (size_t)rc :
						       sizeof(text) - 1;
	if (atomic_load_explicit(&log_format, memory_order_relaxed) ==
	    LOG_FORMAT_JSON) {
		put(&o, "{\"ts\":", 6);
		put_json_str(&o, ts, strlen(ts), 1);
		put(&o, ",\"level\":", 9);
		put_json_str(&o, log_level_name(level),
			     strlen(log_level_name(level)), 1);
		put(&o, ",\"msg\":", 7);
		/* The message may be cut short; the fields then go in as
		 * room allows.  Either way the object is closed. */
		put_json_str(&o, msg ? msg : text, msg ? strlen(msg) : n, 1);
		put_fields(&o, text, n);
		put(&o, "}", 1);
	} else {
		put(&o, ts, strlen(ts));
		put(&o, " ", 1);
		put(&o, log_level_name(level), strlen(log_level_name(level)));
		put(&o, " ", 1);
		put(&o, text, n);
	}
	line[o.n++] = '\n';
	/* A failed log write has nowhere to be reported. */
	if (write(STDERR_FILENO, line, o.n) < 0)
		return;
}

void
log_msg(int level, const char *fmt, ...)
{
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	log_line(level, NULL, fmt, ap);
	va_end(ap);
}

void
log_event(int level, const char *msg, const char *fmt, ...)
{
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	log_line(level, msg, fmt, ap);
	va_end(ap);
}

void
log_addr(const struct sockaddr *sa, char *out, size_t len)
{
	char host[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;

		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		snprintf(out, len, "%s:%u", host, ntohs(sin->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;

		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		snprintf(out, len, "[%s]:%u", host, ntohs(sin6->sin6_port));
	} else {
		snprintf(out, len, "-");
	}
}

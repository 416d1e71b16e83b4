/*
 * log.c: levelled logging to stderr.  Each line is formatted in full first and
 * written with one write(2), so lines from different threads never interleave.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static atomic_int log_level = LOG_INFO;

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
log_msg(int level, const char *fmt, ...)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	size_t n;
	int rc;

	if (!log_enabled(level))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ %s ",
			      ts.tv_nsec / 1000000, log_level_name(level));
	va_start(ap, fmt);
	rc = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (rc < 0)
		rc = 0;
	n += (size_t)rc;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* A failed log write has nowhere to be reported. */
	if (write(STDERR_FILENO, line, n) < 0)
		return;
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

/*
 * systemd.c: the notify socket and socket activation (see systemd.h).
 *
 * NOTIFY_SOCKET names a Unix datagram socket (a path, or "@" for the
 * abstract namespace); each message is one datagram of "KEY=VALUE" lines.
 * Socket activation passes fds 3 .. 3 + LISTEN_FDS - 1 to the process
 * whose pid is LISTEN_PID, named by LISTEN_FDNAMES (colon-separated;
 * "unknown" when absent, as systemd has it).
 *
 * NOTIFY_SOCKET and WATCHDOG_USEC stay in the environment: a binary that
 * an upgrade starts must reach the same service manager.  The LISTEN_*
 * variables go, as sd_listen_fds(1) does it: they name this pid only.
 * The passed fds are kept open for the life of the process (a reload may
 * take one up again); listeners use dups of them.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "systemd.h"

#define LISTEN_FDS_START 3
#define PASSED_MAX 256
#define FDNAME_MAX 256

struct passed {
	int fd;
	char name[FDNAME_MAX];
};

static int notify_fd = -1;
static struct sockaddr_un notify_addr;
static socklen_t notify_len;
static uint64_t watchdog_usec;
static struct passed passed[PASSED_MAX];
static size_t npassed;

/* A decimal environment variable; false if absent or not a number. */
static bool
env_u64(const char *name, uint64_t *out)
{
	const char *s = getenv(name);
	char *end;

	if (!s || !*s)
		return false;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno == 0 && *end == '\0';
}

static void
init_notify(void)
{
	const char *s = getenv("NOTIFY_SOCKET");
	size_t len = s ? strlen(s) : 0;
	uint64_t pid;

	if (len >= 2 && len < sizeof(notify_addr.sun_path) &&
	    (s[0] == '/' || s[0] == '@')) {
		notify_addr.sun_family = AF_UNIX;
		memcpy(notify_addr.sun_path, s, len);
		if (s[0] == '@')
			notify_addr.sun_path[0] = '\0';
		notify_len = (socklen_t)(offsetof(struct sockaddr_un,
						  sun_path) + len);
		notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	}
	/* WATCHDOG_PID, when set, says which process is to ping. */
	if (env_u64("WATCHDOG_USEC", &watchdog_usec) &&
	    env_u64("WATCHDOG_PID", &pid) && pid != (uint64_t)getpid())
		watchdog_usec = 0;
}

static void
init_listen(void)
{
	const char *names = getenv("LISTEN_FDNAMES");
	uint64_t pid, n;

	if (!env_u64("LISTEN_PID", &pid) || pid != (uint64_t)getpid() ||
	    !env_u64("LISTEN_FDS", &n))
		goto out;
	if (n > PASSED_MAX)
		n = PASSED_MAX;
	for (size_t i = 0; i < n; i++) {
		struct passed *p = &passed[i];
		size_t len = 0;

		/* Not open after all (a launcher's mistake): never use it, as
		 * ringlb's own fds will take that number. */
		p->fd = LISTEN_FDS_START + (int)i;
		if (fcntl(p->fd, F_SETFD, FD_CLOEXEC) < 0)
			p->fd = -1;
		if (names && *names) {
			len = strcspn(names, ":");
			if (len >= sizeof(p->name))
				len = sizeof(p->name) - 1;
			memcpy(p->name, names, len);
			names += strcspn(names, ":");
			if (*names == ':')
				names++;
		}
		if (len == 0)
			snprintf(p->name, sizeof(p->name), "unknown");
		npassed = i + 1;
	}
out:
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
}

void
systemd_init(void)
{
	init_notify();
	init_listen();
}

bool
systemd_notifying(void)
{
	return notify_fd >= 0;
}

int
systemd_notify(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int n;

	if (notify_fd < 0)
		return 0;
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= sizeof(msg))
		n = sizeof(msg) - 1;
	if (sendto(notify_fd, msg, (size_t)n, MSG_NOSIGNAL,
		   (const struct sockaddr *)&notify_addr, notify_len) < 0)
		return -errno;
	return 0;
}

uint64_t
systemd_watchdog_usec(void)
{
	return watchdog_usec;
}

int
systemd_passed(size_t i, const char **name)
{
	if (i >= npassed)
		return -2;
	*name = passed[i].name;
	return passed[i].fd;
}

void
systemd_adopt(int fd, const char *name)
{
	if (npassed == PASSED_MAX) {
		close(fd);
		return;
	}
	passed[npassed].fd = fd;
	snprintf(passed[npassed].name, sizeof(passed[npassed].name), "%s",
		 name);
	npassed++;
}

/* "a, b, c": the names passed, for an error message. */
static void
passed_names(char *out, size_t size)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < npassed && o + 1 < size; i++) {
		int n = snprintf(out + o, size - o, "%s%s", i ? ", " : "",
				 passed[i].name);

		if (n < 0)
			break;
		o += (size_t)n;
	}
}

int
systemd_listen_fd(const char *name, char *err, size_t errlen)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len = sizeof(ss);
	int type = 0, acc = 0, one = 1, fd;
	socklen_t tl = sizeof(type), al = sizeof(acc);
	char have[512];
	size_t i;

	for (i = 0; i < npassed; i++)
		if (strcmp(passed[i].name, name) == 0)
			break;
	if (i == npassed) {
		passed_names(have, sizeof(have));
		if (npassed)
			snprintf(err, errlen,
				 "no socket named \"%s\" was passed by systemd "
				 "(passed: %s; see FileDescriptorName= in the "
				 ".socket unit)",
				 name, have);
		else
			snprintf(err, errlen,
				 "no socket named \"%s\" was passed: this "
				 "process was not started by socket activation "
				 "(LISTEN_FDS/LISTEN_PID are not set for it)",
				 name);
		return -1;
	}
	fd = passed[i].fd;
	if (fd < 0) {
		snprintf(err, errlen,
			 "systemd socket \"%s\" (fd %zu) is not open in this "
			 "process",
			 name, LISTEN_FDS_START + i);
		return -1;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
		snprintf(err, errlen, "systemd socket \"%s\" (fd %d): %s",
			 name, fd, strerror(errno));
		return -1;
	}
	if (type != SOCK_STREAM ||
	    (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)) {
		snprintf(err, errlen,
			 "systemd socket \"%s\" is not a TCP socket (%s); a "
			 "listener needs ListenStream= on an IP address",
			 name,
			 ss.ss_family == AF_UNIX ? "a Unix socket" :
			 type == SOCK_DGRAM	 ? "a datagram socket" :
						   "another kind");
		return -1;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) < 0 ||
	    !acc) {
		snprintf(err, errlen,
			 "systemd socket \"%s\" is not listening (Accept=no "
			 "and ListenStream= make a listening socket)",
			 name);
		return -1;
	}
	/* Accepted sockets inherit TCP_NODELAY, as with our own. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0 || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
		snprintf(err, errlen, "systemd socket \"%s\": %s", name,
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

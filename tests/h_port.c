/*
 * h_port.c: free and listening TCP ports.
 * See h_port.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "h_private.h"

/* Can we bind host:port without SO_REUSEADDR (no socket, no TIME_WAIT)? */
static bool
port_bindable(int family, int port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, rc, one = 1;

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		sin6->sin6_addr = in6addr_loopback;
		len = sizeof(*sin6);
	}
	fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return family == AF_INET6;	/* no IPv6: v4 decides */
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	rc = bind(fd, (struct sockaddr *)&ss, len);
	close(fd);
	return rc == 0 || (family == AF_INET6 && errno == EADDRNOTAVAIL);
}

int
h_free_port(void)
{
	static unsigned state;

	if (state == 0)
		state = (unsigned)getpid() * 2654435761u ^ (unsigned)h_now_ms();
	for (int tries = 0; tries < 500; tries++) {
		int port;

		state = state * 1103515245u + 12345u;
		port = 20000 + (int)((state >> 8) % 12000);
		if (port_bindable(AF_INET, port) &&
		    port_bindable(AF_INET6, port) && !h_port_listening(port))
			return port;
	}
	return -1;
}

static bool
listening_in(const char *path, int port)
{
	char line[512];
	FILE *f = fopen(path, "r");
	bool found = false;

	if (f == NULL)
		return false;
	while (fgets(line, sizeof(line), f) != NULL) {
		char addr[64];
		unsigned lport, st;

		if (sscanf(line, " %*u: %63[0-9A-Fa-f]:%x %*s %x", addr, &lport,
			   &st) != 3)
			continue;
		if ((int)lport == port && st == 0x0A) {
			found = true;
			break;
		}
	}
	fclose(f);
	return found;
}

bool
h_port_listening(int port)
{
	return listening_in("/proc/net/tcp", port) ||
	       listening_in("/proc/net/tcp6", port);
}

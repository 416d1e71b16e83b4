/*
 * listen.h: opening listening sockets (the control thread does it, once
 * per worker and listener, before a generation is published).
 */
#ifndef RINGLB_LISTEN_H
#define RINGLB_LISTEN_H

#include <stdbool.h>
#include <stddef.h>

struct cfg_listener;

/* Open one SO_REUSEPORT listening socket for l.  0 or -errno with err. */
int listen_open(const struct cfg_listener *l, int *out, char *err,
		size_t errlen);
/* TCP_DEFER_ACCEPT on (client_speaks_first) or off; setsockopt's result. */
int listen_set_defer(int fd, bool on);
/*
 * /proc/sys/net/ipv4/tcp_NAME's line, without its newline ("" if empty):
 * 0, or -1 with errno if it cannot be opened.
 */
int listen_cc_sysctl(const char *name, char *buf, size_t len);
/* TCP_CONGESTION name, "" for the system's default; setsockopt's result. */
int listen_set_congestion(int fd, const char *name);
/* -EADDRINUSE with err if some socket is already bound to l's address. */
int listen_probe(const struct cfg_listener *l, char *err, size_t errlen);

#endif

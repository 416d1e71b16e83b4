/*
 * priv.h: dropping privileges once the listening sockets and the admin
 * socket are open: setgroups/setgid/setuid to the configured user and group,
 * then no capabilities at all (libcap-ng), before any thread starts, so
 * every thread runs unprivileged.
 */
#ifndef RINGLB_PRIV_H
#define RINGLB_PRIV_H

#include <stdbool.h>
#include <stddef.h>

struct config;

/*
 * Become cfg->user / cfg->group with no capabilities, or warn when running
 * as root without them.  Call once, before any thread starts.  0, or -errno
 * with one line in err.
 */
int priv_drop(const struct config *cfg, char *err, size_t errlen);
/* The user ringlb switched to, or NULL if it did not. */
const char *priv_user(void);
/* On reload: warn that a changed user/group takes effect at restart. */
void priv_reload_check(const struct config *cfg);

#endif

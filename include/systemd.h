/*
 * systemd.h: what ringlb speaks of systemd's protocols, written here
 * rather than linked from libsystemd: the notify socket (sd_notify(3):
 * READY, RELOADING, STOPPING, STATUS, MAINPID, WATCHDOG) and socket
 * activation (sd_listen_fds(3): LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES).
 * Both are a few environment variables and one datagram format, stable
 * for a decade; outside systemd every call here does nothing.
 */
#ifndef RINGLB_SYSTEMD_H
#define RINGLB_SYSTEMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Read the environment once, at start, before any thread: the notify
 * socket, the watchdog interval, the sockets passed to this process.  The
 * LISTEN_* variables are then removed (they name this pid only).
 */
void systemd_init(void);

/* Send one notify message ("READY=1\nSTATUS=..."); 0, or -errno. */
int systemd_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
bool systemd_notifying(void);

/* WATCHDOG_USEC for this process in µs; 0 when there is no watchdog. */
uint64_t systemd_watchdog_usec(void);

/*
 * A new socket for a listener whose listen is "systemd:NAME": a dup of
 * the passed stream socket of that name (so every worker may have its
 * own fd).  -1 with the reason in err: not passed, not a listening TCP
 * socket.
 */
int systemd_listen_fd(const char *name, char *err, size_t errlen);

/*
 * The i-th passed socket and its name, for an upgrade to hand on: the fd
 * (-1 if it is not open), or -2 past the last one.
 */
int systemd_passed(size_t i, const char **name);
/* In an upgraded process: a passed socket the old process handed on. */
void systemd_adopt(int fd, const char *name);

#endif

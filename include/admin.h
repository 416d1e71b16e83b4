/*
 * admin.h: the admin API, HTTP/1.1 + JSON on a Unix socket (and optionally
 * TCP), served by libmicrohttpd in its own thread, so a slow admin client
 * never touches the data path.  README.md documents the endpoints.
 */
#ifndef RINGLB_ADMIN_H
#define RINGLB_ADMIN_H

#include <stddef.h>

struct cfg_admin;

/*
 * Create and bind the sockets (so a clash shows before anything starts);
 * nothing is served yet.  0, or -errno with one line in err.
 */
int admin_start(const struct cfg_admin *a, char *err, size_t errlen);
/* Start serving; control_start() must have succeeded. */
int admin_run(char *err, size_t errlen);
/* Stop serving, close the sockets, remove the socket file. */
void admin_stop(void);
/*
 * The admin socket on the Unix path (its path copied to path) or, with
 * path NULL, on TCP: the fd, or -1.  For an upgrade to hand on.
 */
int admin_listen_fd(char *path, size_t size);
/* The new process has them: stop accepting, keep the socket file. */
void admin_handover(void);

#endif

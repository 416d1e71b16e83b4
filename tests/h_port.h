/* h_port.h: free and listening TCP ports.  Part of harness.h. */
#ifndef RINGLB_TEST_H_PORT_H
#define RINGLB_TEST_H_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A TCP port on 127.0.0.1 (and ::1) nobody is bound to, outside the
 * ephemeral range so no outgoing connection takes it meanwhile. */
int h_free_port(void);

/* Is `port` in LISTEN state on any address (/proc/net/tcp, tcp6)? */
bool h_port_listening(int port);

#endif

/*
 * harness.h: helpers for the integration tests.  They start the real ringlb
 * binary with a written config, real backends as forked children on
 * 127.0.0.1, and talk to both through sockets that always have a deadline:
 * a test that would hang fails instead.
 *
 * Nothing here depends on src/.  Every child started here (backends, ringlb,
 * redis) dies with the test process (PR_SET_PDEATHSIG) and is also killed
 * and reaped by h_cleanup().
 *
 * One header per concern; a suite includes this one.
 */
#ifndef RINGLB_TEST_HARNESS_H
#define RINGLB_TEST_HARNESS_H

#include "h_suite.h"	/* suites, labels, cleanup, the watchdog */
#include "h_time.h"	/* clocks and sleeps */
#include "h_pattern.h"	/* deterministic byte streams, FNV-1a */
#include "h_port.h"	/* free and listening ports */
#include "h_proc.h"	/* child processes, temp dirs and files */
#include "h_backend.h"	/* backends as forked children */
#include "h_lb.h"	/* the ringlb process and its log */
#include "h_net.h"	/* client sockets, xfer, multi-echo, black hole */
#include "h_http.h"	/* HTTP client for the admin API */
#include "h_config.h"	/* configs built with jansson */
#include "h_api.h"	/* the admin API and ringlbctl */

#endif

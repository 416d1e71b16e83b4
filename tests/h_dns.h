/*
 * h_dns.h: an authoritative DNS server for the tests of DNS service
 * discovery.  It runs as a thread of the test process on 127.0.0.1, UDP
 * and TCP on one port, answers A, AAAA and SRV from a zone the test
 * changes while ringlb runs, and misbehaves on request (h_dns_mode()).
 * Every function is safe to call while the server thread runs.
 *
 * TCP: up to H_DNS_CONNS connections at once (one more is accepted and
 * closed), several queries each, answered in order; one idle for
 * H_DNS_IDLE_MS is closed.
 */
#ifndef RINGLB_TEST_H_DNS_H
#define RINGLB_TEST_H_DNS_H

#include <stdbool.h>
#include <stddef.h>

#define H_DNS_CONNS	16
#define H_DNS_IDLE_MS	2000

struct h_dns;

enum h_dns_type { H_DNS_A = 1, H_DNS_AAAA = 28, H_DNS_SRV = 33 };

enum h_dns_mode {
	H_DNS_NORMAL,	/* answer from the zone */
	H_DNS_SERVFAIL,	/* every query: RCODE 2, no records */
	H_DNS_REFUSED,	/* every query: RCODE 5 */
	H_DNS_SILENT,	/* read queries, never answer (UDP and TCP) */
	/*
	 * An answer that is not valid DNS: right ID, QR set, the question,
	 * ANCOUNT 1, then an answer RR cut off in its fixed part.
	 */
	H_DNS_MALFORMED,
	H_DNS_NXDOMAIN,	/* every query: RCODE 3 */
};

/* Start on 127.0.0.1, UDP and TCP on the same free port; ck_assert on
 * failure. */
struct h_dns *h_dns_start(void);
int h_dns_port(const struct h_dns *d);
/*
 * Replace the records of (name, type) with n records (n 0: the name exists
 * with no record of that type, i.e. NOERROR/NODATA).  rdata as text:
 * A "10.0.0.1", AAAA "::1", SRV "PRIO WEIGHT PORT TARGET" e.g.
 * "10 60 5432 pg1.example." (TARGET "." is the root).  Names are
 * case-insensitive, with or without the trailing dot.  ttl in seconds.
 * ck_assert on a bad name or rdata.
 */
void h_dns_set(struct h_dns *d, const char *name, enum h_dns_type type,
	       const char *const *rdata, size_t n, unsigned ttl);
/* Remove the name entirely (queries for it then get NXDOMAIN). */
void h_dns_remove(struct h_dns *d, const char *name);
void h_dns_mode(struct h_dns *d, enum h_dns_mode m);
/* Put A/AAAA records of SRV targets in the additional section (default
 * true). */
void h_dns_additional(struct h_dns *d, bool on);
/*
 * Queries received so far for (name, type), any transport, any mode, the
 * unanswered (H_DNS_SILENT) too; type 0: any type.
 */
unsigned h_dns_queries(struct h_dns *d, const char *name,
		       enum h_dns_type type);
/* Queries that came over TCP, any name. */
unsigned h_dns_tcp_queries(struct h_dns *d);
/* Join the thread, close everything, free. */
void h_dns_stop(struct h_dns *d);

#endif

/*
 * fuzz_addr.c: address parsing, cfg_parse_addr() ("host:port",
 * "[v6]:port", "*:port"), as used for listen, backend and admin.listen
 * values.  Host names go to the fake resolver in fuzz_common.c.  Checks:
 * a success fills a usable sockaddr with a non-zero port and keeps the
 * text; a failure leaves a one-line reason.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfg_addr a;
	char *s, err[256];

	/* The config hands it NUL-terminated strings without a NUL inside. */
	if (memchr(data, '\0', size) != NULL)
		return 0;
	s = malloc(size + 1);
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	err[0] = '\0';
	if (cfg_parse_addr(s, &a, err, sizeof(err)) == 0) {
		const struct sockaddr_in *sin = (const void *)&a.ss;
		const struct sockaddr_in6 *sin6 = (const void *)&a.ss;

		if (strcmp(a.text, s) != 0)
			FUZZ_FAIL("text \"%s\" for \"%s\"", a.text, s);
		if (!(a.ss.ss_family == AF_INET && a.len == sizeof(*sin) &&
		      sin->sin_port != 0) &&
		    !(a.ss.ss_family == AF_INET6 && a.len == sizeof(*sin6) &&
		      sin6->sin6_port != 0))
			FUZZ_FAIL("bad sockaddr for \"%s\"", s);
	} else if (err[0] == '\0' || strchr(err, '\n') != NULL) {
		FUZZ_FAIL("bad reason \"%s\" for \"%s\"", err, s);
	}
	free(s);
	return 0;
}

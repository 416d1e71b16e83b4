/*
 * fuzz_health.c: the health check's reply matching, health_probe_step()
 * reading a backend's bytes against health_check.expect.  The bytes come
 * through a real socket pair, in chunks of a size the input picks, then
 * EOF, as a backend would send them.
 *
 * Input: [expect length E][chunk size][E bytes of expect][the reply].
 * Oracle: the probe ends HC_OK exactly when the reply starts with expect,
 * HC_UNEXPECTED when it differs within what was sent, HC_CLOSED when the
 * reply is a shorter prefix of expect; it never reads past expect.
 */
#include <fcntl.h>
#include <stdint.h>
#include <sys/socket.h>

#include "../../src/health.c"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
expected(const uint8_t *expect, size_t elen, const uint8_t *reply,
	 size_t rlen)
{
	size_t n = elen < rlen ? elen : rlen;

	if (memcmp(expect, reply, n) != 0)
		return HC_UNEXPECTED;
	return rlen >= elen ? HC_OK : HC_CLOSED;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfg_health h = { .enabled = true };
	struct health_probe p = { .cfg = &h, .phase = HP_READING };
	const uint8_t *reply;
	size_t elen, chunk, rlen, sent = 0;
	int sv[2], rc = HEALTH_PENDING, want;
	char rest[1];

	if (size < 2)
		return 0;
	elen = data[0];
	chunk = data[1] ? data[1] : 1;
	data += 2;
	size -= 2;
	if (elen > size)
		elen = size;
	h.expect = elen ? (char *)(uintptr_t)data : NULL;
	h.expect_len = elen;
	reply = data + elen;
	rlen = size - elen;
	want = expected(data, elen, reply, rlen);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
		       sv) < 0)
		FUZZ_FAIL("socketpair: %s", strerror(errno));
	p.fd = sv[0];
	while (rc == HEALTH_PENDING) {
		size_t n = rlen - sent < chunk ? rlen - sent : chunk;

		if (n == 0) {
			shutdown(sv[1], SHUT_WR);	/* the backend closes */
		} else if (write(sv[1], reply + sent, n) != (ssize_t)n) {
			FUZZ_FAIL("write: %s", strerror(errno));
		}
		sent += n;
		rc = health_probe_step(&p, POLLIN);
		if (rc == HEALTH_PENDING && n == 0)
			FUZZ_FAIL("still pending after EOF");
	}
	if (rc != want)
		FUZZ_FAIL("result %s, want %s (expect %zu bytes, reply %zu)",
			  health_result_name(rc), health_result_name(want),
			  elen, rlen);
	/* What was sent beyond expect must still be unread. */
	if (rc == HC_OK && rlen > elen && sent > elen &&
	    recv(sv[0], rest, 1, MSG_DONTWAIT) != 1)
		FUZZ_FAIL("read past the expected prefix");
	close(sv[0]);
	close(sv[1]);
	return 0;
}

/*
 * h_pattern.c: deterministic byte streams and their checksums.
 * See h_pattern.h.
 */

#include <string.h>

#include "harness.h"
#include "h_private.h"

/* splitmix64 finalizer. */
static uint64_t
mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

void
h_pattern_fill(uint64_t seed, uint64_t off, void *buf, size_t n)
{
	uint64_t key = mix64(seed);
	unsigned char *p = buf;

	while (n > 0) {
		uint64_t v = mix64(key + (off >> 3));
		unsigned i = (unsigned)(off & 7);
		size_t k = 8 - i;

		if (k > n)
			k = n;
		for (size_t j = 0; j < k; j++)
			p[j] = (unsigned char)(v >> ((i + j) * 8));
		p += k;
		off += k;
		n -= k;
	}
}

long
h_pattern_check(uint64_t seed, uint64_t off, const void *buf, size_t n)
{
	unsigned char want[4096];
	const unsigned char *p = buf;
	size_t done = 0;

	while (done < n) {
		size_t k = n - done < sizeof(want) ? n - done : sizeof(want);

		h_pattern_fill(seed, off + done, want, k);
		if (memcmp(want, p + done, k) != 0) {
			for (size_t j = 0; j < k; j++)
				if (want[j] != p[done + j])
					return (long)(done + j);
		}
		done += k;
	}
	return -1;
}

uint64_t
h_fnv1a(uint64_t h, const void *buf, size_t n)
{
	const unsigned char *p = buf;

	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

uint64_t
h_pattern_fnv(uint64_t seed, uint64_t len)
{
	unsigned char buf[4096];
	uint64_t h = H_FNV_INIT, off = 0;

	while (off < len) {
		size_t k = len - off < sizeof(buf) ? (size_t)(len - off)
						   : sizeof(buf);

		h_pattern_fill(seed, off, buf, k);
		h = h_fnv1a(h, buf, k);
		off += k;
	}
	return h;
}

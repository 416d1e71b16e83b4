/*
 * hash.h: the small hash functions modules share.  Fixed forever: maglev
 * tables computed by different ringlb builds must agree (README, `hash`).
 */
#ifndef RINGLB_HASH_H
#define RINGLB_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_FNV_BASIS	0xcbf29ce484222325ULL
#define HASH_FNV_PRIME	0x100000001b3ULL

/* FNV-1a 64 of data[0..n), from h (HASH_FNV_BASIS to start). */
static inline uint64_t
hash_fnv1a(uint64_t h, const void *data, size_t n)
{
	const uint8_t *p = data;

	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= HASH_FNV_PRIME;
	}
	return h;
}

/* MurmurHash3's 64-bit finalizer: every input bit reaches every output. */
static inline uint64_t
hash_fmix64(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ULL;
	k ^= k >> 33;
	return k;
}

#endif

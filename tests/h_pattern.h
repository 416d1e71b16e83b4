/*
 * h_pattern.h: deterministic byte streams and their checksums.  Part of
 * harness.h.
 */
#ifndef RINGLB_TEST_H_PATTERN_H
#define RINGLB_TEST_H_PATTERN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Deterministic byte streams.  Byte `off` of stream `seed` is a pure
 * function of both, so any chunk can be generated or checked on its own.
 */
void h_pattern_fill(uint64_t seed, uint64_t off, void *buf, size_t n);
/* Offset in buf of the first byte that differs from the stream, or -1. */
long h_pattern_check(uint64_t seed, uint64_t off, const void *buf, size_t n);
/* FNV-1a 64; start with H_FNV_INIT. */
#define H_FNV_INIT 0xcbf29ce484222325ULL
uint64_t h_fnv1a(uint64_t h, const void *buf, size_t n);
/* FNV-1a 64 of the first len bytes of stream seed. */
uint64_t h_pattern_fnv(uint64_t seed, uint64_t len);

#endif

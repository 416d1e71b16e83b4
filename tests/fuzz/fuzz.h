/*
 * fuzz.h: what every libFuzzer target in tests/fuzz/ shares (fuzz_common.c
 * is linked into each).  `make fuzz` builds and runs them; see README.md.
 */
#ifndef RINGLB_FUZZ_H
#define RINGLB_FUZZ_H

#include <stdio.h>
#include <stdlib.h>

struct config;

/* A broken promise is a crash, so libFuzzer keeps the input. */
#define FUZZ_FAIL(...) do {						\
		fprintf(stderr, "fuzz: " __VA_ARGS__);			\
		fputc('\n', stderr);					\
		abort();						\
	} while (0)

/* The file name cfg_parse() is given; every error must start with it. */
#define FUZZ_CFG_NAME "fuzz.json"

/* cfg_parse() failed: err must be one line naming the file. */
void fuzz_check_cfg_error(const char *err);
/* cfg_parse() succeeded: every value within its documented range. */
void fuzz_check_cfg(const struct config *cfg);

#endif

/*
 * fuzz_config.c: the JSON text of a config file, through cfg_parse() (what
 * cfg_load() does after reading the file).  Beyond "no crash, no leak, no
 * UB", it checks the contract config.h and README.md promise: a rejected
 * file gives one line that names the file; an accepted one holds values
 * inside their documented ranges.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *cfg = NULL;
	char err[1024];

	if (cfg_parse((const char *)data, size, FUZZ_CFG_NAME, &cfg, err,
		      sizeof(err)) < 0) {
		fuzz_check_cfg_error(err);
		return 0;
	}
	fuzz_check_cfg(cfg);
	cfg_free(cfg);
	return 0;
}

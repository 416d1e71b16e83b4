/* h_str.h: a printf string builder.  Part of harness.h. */
#ifndef RINGLB_TEST_H_STR_H
#define RINGLB_TEST_H_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A string builder for configs. */
struct h_str {
	char *s;
	size_t len, cap;
};
void h_str_printf(struct h_str *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void h_str_free(struct h_str *b);

#endif

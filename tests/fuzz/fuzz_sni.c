/*
 * fuzz_sni.c: the ClientHello reader, sni_parse().  Checks what sni.h
 * promises: a name found is a lowercase host name; a verdict on a prefix
 * of the input is "more" or the verdict on the whole (nothing is decided
 * on bytes not read yet); and sni_match() of a found name against itself
 * and against "*." plus its parent behaves as documented.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "sni.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char name[SNI_NAME_MAX], n2[SNI_NAME_MAX], pat[SNI_NAME_MAX + 2];
	enum sni_status st, s2;
	const char *dot;

	st = sni_parse(data, size, name);
	if (st == SNI_FOUND) {
		size_t len = strlen(name);

		if (len == 0 || len >= SNI_NAME_MAX)
			FUZZ_FAIL("name of %zu bytes", len);
		for (size_t i = 0; i < len; i++)
			if (!((name[i] >= 'a' && name[i] <= 'z') ||
			      (name[i] >= '0' && name[i] <= '9') ||
			      strchr("-._", name[i])))
				FUZZ_FAIL("byte 0x%02x in a name",
					  (unsigned char)name[i]);
		if (!sni_match(name, name))
			FUZZ_FAIL("\"%s\" does not match itself", name);
		dot = strchr(name, '.');
		if (dot && dot != name) {
			pat[0] = '*';
			memcpy(pat + 1, dot, strlen(dot) + 1);
			if (!sni_match(pat, name))
				FUZZ_FAIL("\"%s\" does not match \"%s\"", name,
					  pat);
		}
	} else if (name[0] != '\0') {
		FUZZ_FAIL("a name without SNI_FOUND");
	}
	for (size_t k = 0; k < size; k += 1 + k / 8) {
		s2 = sni_parse(data, k, n2);
		if (s2 != SNI_MORE && s2 != st)
			FUZZ_FAIL("prefix of %zu bytes: %d, whole: %d", k, s2,
				  st);
		if (s2 == SNI_FOUND && strcmp(n2, name) != 0)
			FUZZ_FAIL("prefix found \"%s\", whole \"%s\"", n2, name);
	}
	return 0;
}

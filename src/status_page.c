/*
 * status_page.c: src/status.html, built in with the assembler's .incbin,
 * so the file is edited as HTML and the binary needs nothing at run time.
 * make runs the compiler from the top of the tree, where the path holds;
 * the Makefile rebuilds this object when the page changes.
 */
#include "status_page.h"

extern const char status_html[] __attribute__((visibility("hidden")));
extern const unsigned long status_html_size
	__attribute__((visibility("hidden")));

/* The bytes, and their count as the assembler measured it. */
__asm__(".pushsection .rodata,\"a\",@progbits\n"
	".globl status_html\n"
	".hidden status_html\n"
	".globl status_html_size\n"
	".hidden status_html_size\n"
	"status_html:\n"
	".incbin \"src/status.html\"\n"
	"1:\n"
	".balign 8\n"
	"status_html_size:\n"
	".quad 1b - status_html\n"
	".popsection\n");

const char *
status_page(size_t *len)
{
	*len = status_html_size;
	return status_html;
}

/*
 * fuzz_ctl.c: ringlbctl, whole: its command line and every reply it reads
 * from the admin API (src/ctl/ringlbctl.c, included with main() renamed).
 * libcurl is replaced below by a stub that answers each request with the
 * next reply from the input, or fails to connect when none is left, so a
 * `drain --wait` loop ends (and `watch-ready`, whose commands never run).  exit() becomes a longjmp back here, and the
 * tool's stderr goes to /dev/null (the fuzzer's own output stays).
 *
 * Input: one line of arguments separated by spaces, then replies, each
 * [status selector byte][body up to the next NUL byte].
 * Checks: no crash, leak or UB; exit status 0, 1 or 2.
 */
#define CURL_DISABLE_TYPECHECK 1
#include <setjmp.h>
#include <signal.h>	/* before the macros below */
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static jmp_buf exit_jmp;
static FILE *devnull;

static void __attribute__((noreturn))
fuzz_exit(int code)
{
	if (code < 0 || code > 2)
		FUZZ_FAIL("exit status %d", code);
	longjmp(exit_jmp, code + 1);
}

#define exit(code) fuzz_exit(code)
#define main ringlbctl_main
#undef stderr
#define stderr devnull
#define nanosleep(req, rem) ((void)(req), (void)(rem), 0)
/* watch-ready runs no command here, and takes no signal of the fuzzer's;
 * it ends when the replies do (curl_easy_perform below). */
#define posix_spawn(pid, path, fa, attr, argv, env) \
	((void)(pid), (void)(path), (void)(argv), (void)(env), ENOSYS)
#define sigaction(sig, act, old) ((void)(sig), (void)(act), 0)
int ringlbctl_main(int argc, char **argv);
#include "../../src/ctl/ringlbctl.c"
#undef exit
#undef main
#undef stderr
#define stderr stderr	/* as stdio.h has it */
#undef nanosleep
#undef posix_spawn
#undef sigaction

/* ---- libcurl, answered from the input ---- */

static const uint8_t *replies;
static size_t replies_len;
static long reply_code;
static curl_write_callback write_cb;
static void *write_data;
static int handle;	/* what curl_easy_init() hands out */

CURL *
curl_easy_init(void)
{
	write_cb = NULL;
	write_data = NULL;
	return &handle;
}

CURLcode
curl_easy_setopt(CURL *c, CURLoption opt, ...)
{
	va_list ap;

	va_start(ap, opt);
	if (opt == CURLOPT_WRITEFUNCTION)
		write_cb = va_arg(ap, curl_write_callback);
	else if (opt == CURLOPT_WRITEDATA)
		write_data = va_arg(ap, void *);
	va_end(ap);
	return CURLE_OK;
}

CURLcode
curl_easy_perform(CURL *c)
{
	static const long codes[] = { 200, 200, 200, 400, 404, 405, 413, 500 };
	const uint8_t *end;
	size_t len, half;

	if (replies_len == 0) {
		watch_stop = 1;	/* watch-ready: nothing more to read */
		return CURLE_COULDNT_CONNECT;
	}
	reply_code = codes[replies[0] % 8];
	replies++;
	replies_len--;
	end = memchr(replies, '\0', replies_len);
	len = end ? (size_t)(end - replies) : replies_len;
	/* Two writes, as curl may split a body anywhere. */
	half = len / 2;
	if (write_cb == NULL ||
	    write_cb((char *)(uintptr_t)replies, 1, half, write_data) != half ||
	    write_cb((char *)(uintptr_t)replies + half, 1, len - half,
		     write_data) != len - half)
		return CURLE_WRITE_ERROR;
	replies += len;
	replies_len -= len;
	if (replies_len > 0) {	/* the NUL */
		replies++;
		replies_len--;
	}
	return CURLE_OK;
}

CURLcode
curl_easy_getinfo(CURL *c, CURLINFO info, ...)
{
	va_list ap;
	long *p;

	va_start(ap, info);
	p = va_arg(ap, long *);
	va_end(ap);
	if (info == CURLINFO_OS_ERRNO)
		*p = ECONNREFUSED;
	else if (info == CURLINFO_RESPONSE_CODE)
		*p = reply_code;
	return CURLE_OK;
}

struct curl_slist *
curl_slist_append(struct curl_slist *l, const char *s)
{
	static struct curl_slist one;

	return &one;
}

void
curl_slist_free_all(struct curl_slist *l)
{
}

void
curl_easy_cleanup(CURL *c)
{
}

CURLcode
curl_global_init(long flags)
{
	return CURLE_OK;
}

void
curl_global_cleanup(void)
{
}

const char *
curl_easy_strerror(CURLcode rc)
{
	return "stub error";
}

/* ---- the target ---- */

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	devnull = fopen("/dev/null", "w");
	if (devnull == NULL)
		FUZZ_FAIL("/dev/null: %s", strerror(errno));
	unsetenv("RINGLB_SOCKET");
	opterr = 0;	/* getopt's own complaints: noise in the log */
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	static char argv0[] = "ringlbctl";
	char *line, *args[16], *save = NULL;
	int argc = 0;
	volatile int rc;

	if (nl == NULL)
		return 0;
	line = malloc((size_t)(nl - data) + 1);
	if (line == NULL)
		return 0;
	memcpy(line, data, (size_t)(nl - data));
	line[nl - data] = '\0';
	args[argc++] = argv0;
	for (char *t = strtok_r(line, " ", &save); t && argc < 15;
	     t = strtok_r(NULL, " ", &save))
		args[argc++] = t;
	args[argc] = NULL;
	replies = nl + 1;
	replies_len = size - (size_t)(nl + 1 - data);
	optind = 0;	/* getopt_long starts over */
	rc = setjmp(exit_jmp);
	if (rc == 0)
		rc = ringlbctl_main(argc, args) + 1;
	if (rc < 1 || rc > 3)
		FUZZ_FAIL("return status %d", rc - 1);
	free(line);
	return 0;
}

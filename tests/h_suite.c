/*
 * h_suite.c: suites, test labels, tracked children and fds, the watchdog that
 * removes temp dirs and prints the logs of a failed test.
 * See h_suite.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "h_private.h"

#define H_MAX_TRACKED	64

TCase *
h_tcase(Suite *s, const char *name, double timeout, void (*teardown)(void))
{
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, timeout);
	suite_add_tcase(s, tc);
	return tc;
}

/* Why part of the running test was skipped ("" if none). */
static char skip_why[256];

static void
print_skip(const char *why)
{
	/* One write: lines of tests running in parallel stay whole. */
	char line[512];
	int n = snprintf(line, sizeof(line), "SKIP %s: %s\n", tcase_name(),
			 why);

	if (n > 0 && write(2, line, strnlen(line, sizeof(line))) < 0)
		return;
}

void
h_teardown(void)
{
	if (skip_why[0] != '\0')
		print_skip(skip_why);
	skip_why[0] = '\0';
	h_passed();
	h_cleanup();
}

void
h_skip(const char *fmt, ...)
{
	const char *fork_env = getenv("CK_FORK");
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	/* Without a process of its own the test cannot end early and pass. */
	if (fork_env != NULL && strcmp(fork_env, "no") == 0)
		ck_abort_msg("cannot skip with CK_FORK=no: %s", why);
	print_skip(why);
	skip_why[0] = '\0';
	h_passed();
	h_cleanup();
	/* Check counts a test whose process exits 0 as passed. */
	exit(0);
}

void
h_skip_part(const char *fmt, ...)
{
	va_list ap;

	if (skip_why[0] != '\0')
		return;		/* the first reason is enough */
	va_start(ap, fmt);
	vsnprintf(skip_why, sizeof(skip_why), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: not tested: %s\n", tcase_name(), skip_why);
}

int
h_run_suite(const char *prog, Suite *s)
{
	const char *old = getenv("ASAN_OPTIONS");
	char abs[PATH_MAX], opts[512];
	SRunner *sr;
	int failed;

	if (realpath(h_lb_bin(), abs) == NULL || access(abs, X_OK) != 0) {
		fprintf(stderr, "%s: %s is not an executable (set RINGLB_BIN)\n",
			prog, h_lb_bin());
		return 1;
	}
	setenv("RINGLB_BIN", abs, 1);
	snprintf(opts, sizeof(opts), "%s%squarantine_size_mb=16",
		 old ? old : "", old && *old ? ":" : "");
	setenv("ASAN_OPTIONS", opts, 1);
	signal(SIGPIPE, SIG_IGN);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}

/*
 * Children and fds the test process must kill or close when it ends.
 * Check runs each test in a forked process that leaves with _exit() on the
 * first failed assertion (and is SIGKILLed on timeout), so neither teardown
 * code nor exit handlers are sure to run: children also get
 * PR_SET_PDEATHSIG, and temp dirs and failure reports belong to a watchdog
 * process (below) that outlives the test.
 */
static pid_t tracked_pids[H_MAX_TRACKED];
static int tracked_fds[H_MAX_TRACKED];
static bool registered;
static int watchdog_fd = -1;	/* write end; EOF tells the watchdog */

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	remove(path);
	return 0;
}

void
h_dump_file_tail(const char *label, const char *path, int lines)
{
	FILE *f = fopen(path, "r");
	char *buf, *p;
	long size;
	int n = 0;

	if (f == NULL)
		return;
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	if (size > 1 << 20)
		fseek(f, size - (1 << 20), SEEK_SET);
	else
		fseek(f, 0, SEEK_SET);
	buf = calloc(1, (1 << 20) + 1);
	if (buf == NULL) {
		fclose(f);
		return;
	}
	size = (long)fread(buf, 1, 1 << 20, f);
	fclose(f);
	p = buf + size;
	while (p > buf && n <= lines) {
		p--;
		if (*p == '\n' && p[1] != '\0')
			n++;
	}
	if (*p == '\n')
		p++;
	fprintf(stderr, "---- %s failed; last %d lines of %s ----\n%s"
		"---- end of %s ----\n", label, lines, path, p, path);
	free(buf);
}

/*
 * The watchdog reads "N name", "D dir", "L log" and "P" lines until the
 * test process is gone (EOF), then prints the logs' tails if no "P" (passed)
 * came and removes the dirs.  It leaves the process group so the killpg()
 * Check does after each test does not take it along.
 */
static void __attribute__((noreturn))
watchdog_main(int rfd)
{
	char *buf = NULL, *line, label[128] = "test";
	size_t len = 0, cap = 0;
	bool passed = false, keep = getenv("RINGLB_KEEP") != NULL;

	setsid();
	if (rfd != 3) {
		dup2(rfd, 3);
		rfd = 3;
	}
	close_range(4, ~0U, 0);
	for (;;) {
		ssize_t n;

		if (cap - len < 4096) {
			cap = cap * 2 + 8192;
			buf = realloc(buf, cap);
			if (buf == NULL)
				_exit(1);
		}
		n = read(rfd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	if (buf == NULL)
		_exit(0);
	buf[len] = '\0';
	passed = strstr(buf, "\nP\n") != NULL || strncmp(buf, "P\n", 2) == 0;
	/* Two passes: a log lives in a dir that is removed. */
	for (int pass = 0; pass < 2; pass++) {
		for (line = buf; line < buf + len; line += strlen(line) + 1) {
			char *nl = strchr(line, '\n');

			if (nl != NULL)
				*nl = '\0';
			if (line[0] == 'N' && line[1] == ' ')
				snprintf(label, sizeof(label), "%s", line + 2);
			else if (pass == 0 && line[0] == 'L' && !passed)
				h_dump_file_tail(label, line + 2, 40);
			else if (pass == 1 && line[0] == 'D' && !keep)
				nftw(line + 2, rm_entry, 8,
				     FTW_DEPTH | FTW_PHYS);
			else if (pass == 1 && line[0] == 'D')
				fprintf(stderr, "kept %s\n", line + 2);
		}
	}
	_exit(0);
}

static void
h_register(void)
{
	int p[2];
	pid_t pid;

	if (registered)
		return;
	registered = true;
	for (int i = 0; i < H_MAX_TRACKED; i++)
		tracked_fds[i] = -1;
	atexit(h_cleanup);
	if (pipe2(p, O_CLOEXEC) < 0)
		return;
	pid = fork();
	if (pid == 0) {
		close(p[1]);
		watchdog_main(p[0]);
	}
	close(p[0]);
	if (pid < 0)
		close(p[1]);
	else
		watchdog_fd = p[1];
}

/* One line to the watchdog. */
void
h_tell_watchdog(char kind, const char *s)
{
	char line[512];
	int n;

	h_register();
	if (watchdog_fd < 0)
		return;
	n = snprintf(line, sizeof(line), "%c %s\n", kind, s);
	if (n > 0 && n < (int)sizeof(line) &&
	    write(watchdog_fd, line, (size_t)n) != n)
		return;
}

void
h_track_pid(pid_t pid)
{
	h_register();
	for (int i = 0; i < H_MAX_TRACKED; i++) {
		if (tracked_pids[i] == 0) {
			tracked_pids[i] = pid;
			return;
		}
	}
}

void
h_untrack_pid(pid_t pid)
{
	for (int i = 0; i < H_MAX_TRACKED; i++)
		if (tracked_pids[i] == pid)
			tracked_pids[i] = 0;
}

void
h_track_fd(int fd)
{
	h_register();
	for (int i = 0; i < H_MAX_TRACKED; i++) {
		if (tracked_fds[i] < 0) {
			tracked_fds[i] = fd;
			return;
		}
	}
}

void
h_label(const char *name)
{
	h_tell_watchdog('N', name);
}

void
h_passed(void)
{
	h_register();
	if (watchdog_fd >= 0 && write(watchdog_fd, "P\n", 2) != 2)
		return;
}

void
h_cleanup(void)
{
	for (int i = 0; i < H_MAX_TRACKED; i++) {
		if (tracked_pids[i] > 0) {
			kill(tracked_pids[i], SIGKILL);
			waitpid(tracked_pids[i], NULL, 0);
			tracked_pids[i] = 0;
		}
	}
	for (int i = 0; i < H_MAX_TRACKED; i++) {
		if (tracked_fds[i] >= 0)
			close(tracked_fds[i]);
		tracked_fds[i] = -1;
	}
}

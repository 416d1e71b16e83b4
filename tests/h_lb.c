/*
 * h_lb.c: the ringlb process under test and searches of its log.
 * See h_lb.h.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"
#include "h_private.h"

#define H_MAX_NEEDLES	8

const char *
h_lb_bin(void)
{
	const char *bin = getenv("RINGLB_BIN");

	return bin != NULL && bin[0] != '\0' ? bin : "build/ringlb";
}

const char *
h_ctl_bin(void)
{
	static char path[PATH_MAX];
	const char *env = getenv("RINGLBCTL_BIN");
	char *slash;

	if (env != NULL && env[0] != '\0')
		return realpath(env, path);
	if (realpath(h_lb_bin(), path) == NULL)
		return NULL;
	slash = strrchr(path, '/');
	if ((size_t)(slash + 1 - path) + sizeof("ringlbctl") > sizeof(path)) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	strcpy(slash + 1, "ringlbctl");
	return path;
}

int
h_lb_mkdir(struct h_lb *lb)
{
	int rc;

	memset(lb, 0, sizeof(*lb));
	rc = h_tempdir(lb->dir, sizeof(lb->dir));
	if (rc < 0)
		return rc;
	snprintf(lb->cfg_path, sizeof(lb->cfg_path), "%s/config.json",
		 lb->dir);
	snprintf(lb->log_path, sizeof(lb->log_path), "%s/ringlb.log", lb->dir);
	return 0;
}

int
h_lb_prepare(struct h_lb *lb, const char *json)
{
	int rc = h_lb_mkdir(lb);

	if (rc < 0)
		return rc;
	return h_write_file(lb->cfg_path, json);
}

int
h_lb_start(struct h_lb *lb, const char *json, int wait_port,
	   const char *extra_arg)
{
	int rc = h_lb_prepare(lb, json);

	if (rc < 0)
		return rc;
	return h_lb_launch(lb, wait_port, extra_arg);
}

char *
h_subst(const char *text, const char *key, const char *val)
{
	size_t klen = strlen(key), vlen = strlen(val), n = 0, len;
	const char *p;
	char *out, *o;

	for (p = text; klen > 0 && (p = strstr(p, key)) != NULL; p += klen)
		n++;
	len = strlen(text) + n * vlen - n * klen;
	out = malloc(len + 1);
	if (out == NULL)
		abort();
	o = out;
	while (klen > 0 && (p = strstr(text, key)) != NULL) {
		memcpy(o, text, (size_t)(p - text));
		o += p - text;
		memcpy(o, val, vlen);
		o += vlen;
		text = p + klen;
	}
	strcpy(o, text);
	return out;
}

int
h_lb_start_in(struct h_lb *lb, const char *json, int wait_port,
	      const char *extra_arg)
{
	char *text;
	int rc = h_lb_mkdir(lb);

	if (rc < 0)
		return rc;
	text = h_subst(json, "@DIR@", lb->dir);
	rc = h_write_file(lb->cfg_path, text);
	free(text);
	if (rc < 0)
		return rc;
	return h_lb_launch(lb, wait_port, extra_arg);
}

int
h_lb_launch(struct h_lb *lb, int wait_port, const char *extra_arg)
{
	const char *argv[6];
	char bin[4096];
	uint64_t deadline;
	int n = 0;

	/* execvp would search PATH for a bare name; keep it a path. */
	if (strchr(h_lb_bin(), '/') == NULL)
		snprintf(bin, sizeof(bin), "./%s", h_lb_bin());
	else
		snprintf(bin, sizeof(bin), "%s", h_lb_bin());
	argv[n++] = bin;
	argv[n++] = "-c";
	argv[n++] = lb->cfg_path;
	if (extra_arg != NULL)
		argv[n++] = extra_arg;
	argv[n] = NULL;
	lb->pid = h_spawn(argv, lb->log_path);
	if (lb->pid < 0) {
		int rc = lb->pid;

		lb->pid = 0;
		return rc;
	}
	h_tell_watchdog('L', lb->log_path);
	if (wait_port <= 0)
		return 0;
	deadline = h_now_ms() + 5000;
	for (;;) {
		if (!h_lb_running(lb))
			return -ECHILD;
		if (h_port_listening(wait_port) &&
		    h_lb_log_count(lb, "ringlb started") > 0)
			return 0;
		if (h_left_ms(deadline) == 0)
			return -ETIMEDOUT;
		h_sleep_ms(20);
	}
}

bool
h_lb_running(struct h_lb *lb)
{
	if (lb->pid <= 0)
		return false;
	if (waitpid(lb->pid, &lb->status, WNOHANG) == lb->pid) {
		h_untrack_pid(lb->pid);
		lb->pid = 0;
		return false;
	}
	return true;
}

int
h_lb_wait_exit(struct h_lb *lb, int timeout_ms)
{
	uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		if (!h_lb_running(lb))
			return 0;
		if (h_left_ms(deadline) == 0)
			return -ETIMEDOUT;
		h_sleep_ms(1);
	}
}

void
h_lb_signal(struct h_lb *lb, int sig)
{
	if (lb->pid > 0)
		kill(lb->pid, sig);
}

long
h_lb_rss_kb(const struct h_lb *lb)
{
	char path[64], line[256];
	long kb = -ENOENT;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)lb->pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -errno;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

int
h_lb_fd_count(const struct h_lb *lb)
{
	char path[64];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)lb->pid);
	d = opendir(path);
	if (d == NULL)
		return -errno;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

int
h_lb_fd_wait(const struct h_lb *lb, int want, int timeout_ms)
{
	uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;
	int n;

	for (;;) {
		n = h_lb_fd_count(lb);
		if (n == want || h_left_ms(deadline) == 0)
			return n;
		h_sleep_ms(50);
	}
}

pid_t
h_lb_thread(const struct h_lb *lb, const char *name)
{
	char path[300], comm[32];
	struct dirent *e;
	pid_t tid = -1;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)lb->pid);
	d = opendir(path);
	ck_assert_ptr_nonnull(d);
	while (tid < 0 && (e = readdir(d))) {
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/comm",
			 (int)lb->pid, e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f)) {
			comm[strcspn(comm, "\n")] = '\0';
			if (strcmp(comm, name) == 0)
				tid = atoi(e->d_name);
		}
		fclose(f);
	}
	closedir(d);
	return tid;
}

char *
h_lb_log(const struct h_lb *lb)
{
	char *text = h_read_file(lb->log_path);

	return text ? text : strdup("");
}

static int
collect_needles(const char **needles, va_list ap)
{
	int n = 0;
	const char *s;

	while ((s = va_arg(ap, const char *)) != NULL && n < H_MAX_NEEDLES)
		needles[n++] = s;
	return n;
}

/*
 * Lines of text holding every needle.  With first, stop at the first one
 * and return a copy of it there.
 */
static int
scan_log(const struct h_lb *lb, const char **needles, int nn, char **first)
{
	char *log = h_lb_log(lb), *line = log;
	int count = 0;

	while (line != NULL && *line != '\0') {
		char *end = strchr(line, '\n');
		bool all = true;

		if (end != NULL)
			*end = '\0';
		for (int i = 0; i < nn && all; i++)
			all = strstr(line, needles[i]) != NULL;
		if (all) {
			count++;
			if (first != NULL) {
				*first = strdup(line);
				break;
			}
		}
		line = end != NULL ? end + 1 : NULL;
	}
	free(log);
	return count;
}

int
h_lb_log_countv(const struct h_lb *lb, ...)
{
	const char *needles[H_MAX_NEEDLES];
	va_list ap;
	int nn;

	va_start(ap, lb);
	nn = collect_needles(needles, ap);
	va_end(ap);
	return scan_log(lb, needles, nn, NULL);
}

bool
h_lb_log_waitv(const struct h_lb *lb, int min, int timeout_ms, ...)
{
	uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;
	const char *needles[H_MAX_NEEDLES];
	va_list ap;
	int nn;

	va_start(ap, timeout_ms);
	nn = collect_needles(needles, ap);
	va_end(ap);
	for (;;) {
		if (scan_log(lb, needles, nn, NULL) >= min)
			return true;
		if (h_left_ms(deadline) == 0)
			return false;
		h_sleep_ms(20);
	}
}

char *
h_lb_log_linev(const struct h_lb *lb, ...)
{
	const char *needles[H_MAX_NEEDLES];
	char *line = NULL;
	va_list ap;
	int nn;

	va_start(ap, lb);
	nn = collect_needles(needles, ap);
	va_end(ap);
	scan_log(lb, needles, nn, &line);
	return line;
}

void
h_lb_dump_log(const struct h_lb *lb, int lines)
{
	h_dump_file_tail("dump", lb->log_path, lines);
}

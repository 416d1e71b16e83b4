/*
 * h_proc.c: child processes and temp files.
 * See h_proc.h.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "h_private.h"

int
h_tempdir(char *buf, size_t len)
{
	char tmpl[] = "/tmp/ringlb-it.XXXXXX";

	if (mkdtemp(tmpl) == NULL)
		return -errno;
	snprintf(buf, len, "%s", tmpl);
	h_tell_watchdog('D', tmpl);
	return 0;
}

int
h_write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	int rc = 0;

	if (f == NULL)
		return -errno;
	if (fputs(text, f) == EOF)
		rc = -EIO;
	if (fclose(f) != 0)
		rc = -EIO;
	return rc;
}

void
h_need(const char *program, const char *pkg)
{
	const char *deps[] = { "tools/deps.sh", pkg, NULL };
	struct h_run *r;

	if (access(program, X_OK) == 0)
		return;
	r = calloc(1, sizeof(*r));
	ck_assert_ptr_nonnull(r);
	if (h_run(deps, 600000, r) != 0 || r->timed_out ||
	    !WIFEXITED(r->status) || WEXITSTATUS(r->status) != 0)
		h_skip("%s is missing and could not be installed: %.200s",
		       pkg, r->err);
	free(r);
}

char *
h_read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long size;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fseek(f, 0, SEEK_SET);
	if (size < 0)
		size = 0;
	buf = malloc((size_t)size + 1);
	if (buf == NULL) {
		fclose(f);
		errno = ENOMEM;
		return NULL;
	}
	size = (long)fread(buf, 1, (size_t)size, f);
	buf[size] = '\0';
	fclose(f);
	return buf;
}

#define PASS_MAX 16

static int pass_fds[PASS_MAX];
static int npass;

void
h_spawn_pass_fds(const int *fds, int n)
{
	npass = n < PASS_MAX ? n : PASS_MAX;
	for (int i = 0; i < npass; i++)
		pass_fds[i] = fds[i];
}

/*
 * In a fresh child: die with the parent, plain signal state, no stray fds
 * but those h_spawn_pass_fds() names, moved to 3, 4, ...
 */
static void
child_setup(pid_t parent)
{
	int tmp[PASS_MAX];
	sigset_t none;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* Out of the way first, so that no move overwrites another. */
	for (int i = 0; i < npass; i++)
		tmp[i] = fcntl(pass_fds[i], F_DUPFD, 1000);
	for (int i = 0; i < npass; i++)
		dup2(tmp[i], 3 + i);	/* without FD_CLOEXEC */
	close_range(3 + (unsigned)npass, ~0U, 0);
}

pid_t
h_spawn(const char *const argv[], const char *log_path)
{
	pid_t parent = getpid(), pid;

	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int in = open("/dev/null", O_RDONLY);
		int out = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);

		if (in < 0 || out < 0)
			_exit(127);
		dup2(in, 0);
		dup2(out, 1);
		dup2(out, 2);
		child_setup(parent);
		execvp(argv[0], (char *const *)(uintptr_t)argv);
		_exit(127);
	}
	h_track_pid(pid);
	return pid;
}

void
h_kill(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	h_untrack_pid(pid);
}

int
h_run(const char *const argv[], int timeout_ms, struct h_run *r)
{
	uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;
	size_t used[2] = { 0, 0 };
	char *dst[2] = { r->out, r->err };
	int op[2], ep[2], fds[2];
	pid_t parent = getpid(), pid;

	memset(r, 0, sizeof(*r));
	if (pipe2(op, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(ep, O_CLOEXEC) < 0) {
		close(op[0]);
		close(op[1]);
		return -errno;
	}
	pid = fork();
	if (pid < 0) {
		int rc = -errno;

		close(op[0]);
		close(op[1]);
		close(ep[0]);
		close(ep[1]);
		return rc;
	}
	if (pid == 0) {
		int in = open("/dev/null", O_RDONLY);

		dup2(in, 0);
		dup2(op[1], 1);
		dup2(ep[1], 2);
		child_setup(parent);
		execvp(argv[0], (char *const *)(uintptr_t)argv);
		_exit(127);
	}
	h_track_pid(pid);
	close(op[1]);
	close(ep[1]);
	fds[0] = op[0];
	fds[1] = ep[0];
	while (fds[0] >= 0 || fds[1] >= 0) {
		struct pollfd pfd[2];
		int n = 0, idx[2];

		for (int i = 0; i < 2; i++) {
			if (fds[i] < 0)
				continue;
			pfd[n].fd = fds[i];
			pfd[n].events = POLLIN;
			idx[n++] = i;
		}
		if (h_left_ms(deadline) == 0)
			break;
		if (poll(pfd, (nfds_t)n, h_left_ms(deadline)) <= 0)
			continue;
		for (int j = 0; j < n; j++) {
			int i = idx[j];
			char tmp[4096];
			ssize_t k;

			if (pfd[j].revents == 0)
				continue;
			k = read(fds[i], tmp, sizeof(tmp));
			if (k <= 0) {
				close(fds[i]);
				fds[i] = -1;
				continue;
			}
			if (used[i] + (size_t)k > sizeof(r->out) - 1)
				k = (ssize_t)(sizeof(r->out) - 1 - used[i]);
			memcpy(dst[i] + used[i], tmp, (size_t)k);
			used[i] += (size_t)k;
		}
	}
	for (int i = 0; i < 2; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	for (;;) {
		if (waitpid(pid, &r->status, WNOHANG) == pid)
			break;
		if (h_left_ms(deadline) == 0) {
			r->timed_out = true;
			kill(pid, SIGKILL);
			waitpid(pid, &r->status, 0);
			break;
		}
		h_sleep_ms(5);
	}
	h_untrack_pid(pid);
	return 0;
}

int
h_wait_pid(pid_t pid, int timeout_ms, int *status)
{
	uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);

		if (r == pid) {
			h_untrack_pid(pid);
			return 0;
		}
		if (r < 0 && errno != EINTR) {
			int rc = -errno;

			h_untrack_pid(pid);
			return rc;
		}
		if (h_left_ms(deadline) == 0)
			return -ETIMEDOUT;
		h_sleep_ms(5);
	}
}

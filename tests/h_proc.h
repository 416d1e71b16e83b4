/* h_proc.h: child processes and temp files.  Part of harness.h. */
#ifndef RINGLB_TEST_H_PROC_H
#define RINGLB_TEST_H_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Processes. */
struct h_run {
	int status;		/* wait status */
	bool timed_out;
	char out[65536];	/* stdout, NUL-terminated, truncated */
	char err[65536];	/* stderr */
};
/* Run argv[0] (PATH search) with a deadline; 0, or -errno if not started. */
int h_run(const char *const argv[], int timeout_ms, struct h_run *r);
/* Start argv as a tracked child, output to log_path.  pid or -errno. */
pid_t h_spawn(const char *const argv[], const char *log_path);
/*
 * The next children h_spawn starts get fds[0..n) as their fds 3, 4, ...
 * (socket activation); n 0 goes back to none.  Every other fd from 3 on
 * is closed in them, as always.
 */
void h_spawn_pass_fds(const int *fds, int n);
/* SIGKILL and reap a child from h_spawn. */
void h_kill(pid_t pid);
/* Make a temp dir under /tmp (tracked, removed at cleanup). 0 or -errno. */
int h_tempdir(char *buf, size_t len);
/* Write a file.  0 or -errno. */
int h_write_file(const char *path, const char *text);
/* A whole file, NUL-terminated (free() it); NULL (errno set) if unreadable. */
char *h_read_file(const char *path);
/*
 * Install Debian package pkg (tools/deps.sh) if program is missing; skip
 * the test if that fails.
 */
void h_need(const char *program, const char *pkg);

/* Wait up to timeout_ms for a child from h_spawn to exit, and untrack it:
 * 0 and *status set, -ETIMEDOUT (still running), or -errno. */
int h_wait_pid(pid_t pid, int timeout_ms, int *status);

#endif

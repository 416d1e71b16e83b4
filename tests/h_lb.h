/*
 * h_lb.h: the ringlb process under test and searches of its log.  Part of
 * harness.h.
 */
#ifndef RINGLB_TEST_H_LB_H
#define RINGLB_TEST_H_LB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ringlb. */
struct h_lb {
	pid_t pid;		/* 0 once reaped */
	int status;		/* wait status once reaped */
	char dir[64];		/* temp dir holding config and log */
	char cfg_path[128];
	char log_path[128];
};

/* Path of the binary under test: $RINGLB_BIN or build/ringlb. */
const char *h_lb_bin(void);
/*
 * Absolute path of ringlbctl: $RINGLBCTL_BIN, else the one next to
 * h_lb_bin().  NULL (errno set) if it cannot be resolved.
 */
const char *h_ctl_bin(void);
/* Make a temp dir and write `json` as its config.json.  0 or -errno. */
int h_lb_prepare(struct h_lb *lb, const char *json);
/*
 * Start ringlb -c config.json [extra args], stderr and stdout to the log.
 * With wait_port > 0, wait up to 5 s for "ringlb started" in the log and the
 * port in LISTEN state; -ETIMEDOUT or -ECHILD (it exited) otherwise.
 */
int h_lb_start(struct h_lb *lb, const char *json, int wait_port,
	       const char *extra_arg);
bool h_lb_running(struct h_lb *lb);
/* Wait up to timeout_ms for exit; 0 and lb->status set, or -ETIMEDOUT. */
int h_lb_wait_exit(struct h_lb *lb, int timeout_ms);
/* kill(pid, sig) if running. */
void h_lb_signal(struct h_lb *lb, int sig);
/* VmRSS of the process in KiB, or -errno. */
long h_lb_rss_kb(const struct h_lb *lb);
/* Number of entries in /proc/PID/fd, or -errno. */
int h_lb_fd_count(const struct h_lb *lb);
/* Wait until the fd count equals want (up to timeout_ms); the last count. */
int h_lb_fd_wait(const struct h_lb *lb, int want, int timeout_ms);
/* The tid of lb's thread named name (its comm), or -1. */
pid_t h_lb_thread(const struct h_lb *lb, const char *name);
/* The whole log, NUL-terminated; free() it.  "" if unreadable. */
char *h_lb_log(const struct h_lb *lb);
/*
 * Log searches by substrings a line must all contain.  The macros end the
 * list; call h_lb_log_count(lb, "conn=", "end=closed").
 */
#define H_END ((const char *)NULL)
/* Lines of the log containing every needle. */
int h_lb_log_countv(const struct h_lb *lb, ...) __attribute__((sentinel));
#define h_lb_log_count(lb, ...) h_lb_log_countv((lb), __VA_ARGS__, H_END)
/* Wait until h_lb_log_count(needles) >= min; true on success. */
bool h_lb_log_waitv(const struct h_lb *lb, int min, int timeout_ms, ...)
	__attribute__((sentinel));
#define h_lb_log_wait(lb, min, timeout_ms, ...) \
	h_lb_log_waitv((lb), (min), (timeout_ms), __VA_ARGS__, H_END)
/* Copy of the first log line containing every needle, or NULL; free() it. */
char *h_lb_log_linev(const struct h_lb *lb, ...) __attribute__((sentinel));
#define h_lb_log_line(lb, ...) h_lb_log_linev((lb), __VA_ARGS__, H_END)
/* Print the last `lines` log lines to stderr, for failure reports. */
void h_lb_dump_log(const struct h_lb *lb, int lines);

/*
 * Configs that name files in ringlb's own temp dir (the admin socket).
 * h_lb_mkdir() makes lb->dir and sets the paths, writing nothing;
 * h_lb_launch() starts ringlb on the lb->cfg_path already written, with the
 * same waiting as h_lb_start() (which is h_lb_prepare() + h_lb_launch()).
 * h_lb_start_in() is h_lb_start() with every "@DIR@" in json replaced by
 * lb->dir, e.g. "admin": { "socket": "@DIR@/admin.sock" }.
 */
int h_lb_mkdir(struct h_lb *lb);
int h_lb_launch(struct h_lb *lb, int wait_port, const char *extra_arg);
int h_lb_start_in(struct h_lb *lb, const char *json, int wait_port,
		  const char *extra_arg);
/* Copy of text with every key replaced by val; free() it. */
char *h_subst(const char *text, const char *key, const char *val);

#endif

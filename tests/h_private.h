/*
 * h_private.h: what the harness's own files share and the suites do not
 * call.  Not included by harness.h.
 */
#ifndef RINGLB_TEST_H_PRIVATE_H
#define RINGLB_TEST_H_PRIVATE_H

#include <stdint.h>
#include <sys/types.h>

/* Read and write size of backends and client loops. */
#define H_CHUNK		65536

/* h_suite.c: kill/close at cleanup; report to the watchdog. */
void h_track_pid(pid_t pid);
void h_untrack_pid(pid_t pid);
void h_track_fd(int fd);
void h_tell_watchdog(char kind, const char *s);
void h_dump_file_tail(const char *label, const char *path, int lines);

/* h_time.c */
int h_left_ms(uint64_t deadline);

/* h_net.c: wait for events on fd until deadline: revents, 0 on timeout,
 * -errno. */
int h_wait_fd(int fd, short events, uint64_t deadline);

#endif

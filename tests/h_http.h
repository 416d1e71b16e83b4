/* h_http.h: a small HTTP/1.1 client for the admin API.  Part of harness.h. */
#ifndef RINGLB_TEST_H_HTTP_H
#define RINGLB_TEST_H_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * A blocking HTTP/1.1 client with a deadline, for the admin API: one
 * request with "Connection: close", the reply read to EOF or to its
 * Content-Length.  0 and *r filled (free with h_http_free), or -errno
 * (-EBADMSG: not an HTTP reply).
 */
struct h_http {
	int status;		/* e.g. 200 */
	char *head;		/* status line and headers, CRLF-separated */
	size_t head_len;	/* bytes of head plus the blank line */
	char *body;		/* NUL-terminated */
	size_t body_len;
};
/* Connect to a Unix socket with a deadline: fd or -errno. */
int h_unix_connect(const char *path, int timeout_ms);
/* Over unix_path, or TCP host:port when unix_path is NULL. */
int h_http(const char *unix_path, const char *host, int port,
	   const char *method, const char *path, const char *body,
	   int timeout_ms, struct h_http *r);
/* The same on a connected socket (left open). */
int h_http_fd(int fd, const char *method, const char *path, const char *body,
	      int timeout_ms, struct h_http *r);
/*
 * The same with more request headers: "Name: value\r\n" lines, which
 * may give their own Host (else "Host: localhost").
 */
int h_http_hdr(const char *unix_path, const char *host, int port,
	       const char *method, const char *path, const char *headers,
	       const char *body, int timeout_ms, struct h_http *r);
int h_http_fd_hdr(int fd, const char *method, const char *path,
		  const char *headers, const char *body, int timeout_ms,
		  struct h_http *r);
/* Value of header `name` (case-insensitive) into buf; false if absent. */
bool h_http_header(const struct h_http *r, const char *name, char *buf,
		   size_t cap);
void h_http_free(struct h_http *r);

#endif

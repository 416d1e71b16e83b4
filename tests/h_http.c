/*
 * h_http.c: a small HTTP/1.1 client for the admin API.
 * See h_http.h.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "harness.h"
#include "h_private.h"

int
h_unix_connect(const char *path, int timeout_ms)
{
	uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd, rc;

	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A full backlog says EAGAIN instead of blocking: retry until the
	 * deadline. */
	for (;;) {
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
			return fd;
		rc = -errno;
		if (rc != -EAGAIN && rc != -EINTR)
			break;
		if (h_left_ms(deadline) == 0) {
			rc = -ETIMEDOUT;
			break;
		}
		h_sleep_ms(10);
	}
	close(fd);
	return rc;
}

/* Parse status line and headers once the blank line is in buf. */
static bool
http_head_done(struct h_http *r, char *buf, size_t len, long *clen)
{
	char *end = memmem(buf, len, "\r\n\r\n", 4), *p;

	if (end == NULL)
		return false;
	r->head = strndup(buf, (size_t)(end - buf) + 2);
	if (r->head == NULL)
		return false;
	if (sscanf(r->head, "HTTP/1.%*1[01] %d", &r->status) != 1)
		r->status = -1;
	*clen = -1;
	for (p = strstr(r->head, "\r\n"); p != NULL && p[2] != '\0';
	     p = strstr(p + 2, "\r\n"))
		if (strncasecmp(p + 2, "content-length:", 15) == 0)
			*clen = strtol(p + 17, NULL, 10);
	r->head_len = (size_t)(end - buf) + 4;
	return true;
}

int
h_http_fd(int fd, const char *method, const char *path, const char *body,
	  int timeout_ms, struct h_http *r)
{
	return h_http_fd_hdr(fd, method, path, NULL, body, timeout_ms, r);
}

int
h_http_fd_hdr(int fd, const char *method, const char *path,
	      const char *headers, const char *body, int timeout_ms,
	      struct h_http *r)
{
	uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;
	size_t blen = body != NULL ? strlen(body) : 0, len = 0, cap = 8192;
	char *buf = malloc(cap), *req;
	long clen = -1;
	int rc, n;

	memset(r, 0, sizeof(*r));
	if (buf == NULL)
		return -ENOMEM;
	if (headers == NULL)
		headers = "";
	/* Host: localhost, unless the caller's headers name one. */
	n = asprintf(&req,
		     "%s %s HTTP/1.1\r\n%s%s"
		     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
		     method, path,
		     strncasecmp(headers, "Host:", 5) == 0 ||
				     strcasestr(headers, "\r\nHost:") ?
			     "" :
			     "Host: localhost\r\n",
		     headers, blen, body != NULL ? body : "");
	if (n < 0) {
		free(buf);
		return -ENOMEM;
	}
	rc = h_write_all(fd, req, (size_t)n, h_left_ms(deadline));
	free(req);
	if (rc < 0)
		goto out;
	/* Until EOF, or until the body Content-Length announced is in. */
	for (;;) {
		ssize_t k;

		if (r->head == NULL && http_head_done(r, buf, len, &clen) &&
		    clen < 0)
			clen = -2;	/* no length: read to EOF */
		if (r->head != NULL && clen >= 0 &&
		    len >= r->head_len + (size_t)clen)
			break;
		if (cap - len < 4096) {
			char *nb = realloc(buf, cap * 2);

			if (nb == NULL) {
				rc = -ENOMEM;
				goto out;
			}
			buf = nb;
			cap *= 2;
		}
		k = recv(fd, buf + len, cap - len - 1, MSG_DONTWAIT);
		if (k > 0) {
			len += (size_t)k;
			continue;
		}
		if (k == 0)
			break;
		if (errno != EAGAIN && errno != EINTR) {
			rc = -errno;
			goto out;
		}
		rc = h_wait_fd(fd, POLLIN, deadline);
		if (rc == 0) {
			rc = -ETIMEDOUT;
			goto out;
		}
		if (rc < 0)
			goto out;
	}
	if (r->head == NULL && !http_head_done(r, buf, len, &clen)) {
		rc = -EBADMSG;
		goto out;
	}
	r->body_len = len - r->head_len;
	if (clen >= 0 && r->body_len > (size_t)clen)
		r->body_len = (size_t)clen;
	r->body = malloc(r->body_len + 1);
	if (r->body == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	memcpy(r->body, buf + r->head_len, r->body_len);
	r->body[r->body_len] = '\0';
	rc = r->status > 0 ? 0 : -EBADMSG;
out:
	free(buf);
	return rc;
}

int
h_http(const char *unix_path, const char *host, int port, const char *method,
       const char *path, const char *body, int timeout_ms, struct h_http *r)
{
	return h_http_hdr(unix_path, host, port, method, path, NULL, body,
			  timeout_ms, r);
}

int
h_http_hdr(const char *unix_path, const char *host, int port,
	   const char *method, const char *path, const char *headers,
	   const char *body, int timeout_ms, struct h_http *r)
{
	int fd, rc;

	memset(r, 0, sizeof(*r));
	if (unix_path != NULL)
		fd = h_unix_connect(unix_path, timeout_ms);
	else
		fd = h_connect(host, port, timeout_ms);
	if (fd < 0)
		return fd;
	rc = h_http_fd_hdr(fd, method, path, headers, body, timeout_ms, r);
	close(fd);
	return rc;
}

bool
h_http_header(const struct h_http *r, const char *name, char *buf,
	      size_t cap)
{
	size_t n = strlen(name);

	for (const char *p = r->head != NULL ? strstr(r->head, "\r\n") : NULL;
	     p != NULL && p[2] != '\0'; p = strstr(p + 2, "\r\n")) {
		const char *v, *e;

		if (strncasecmp(p + 2, name, n) != 0 || p[2 + n] != ':')
			continue;
		v = p + 3 + n;
		while (*v == ' ' || *v == '\t')
			v++;
		e = strstr(v, "\r\n");
		snprintf(buf, cap, "%.*s", (int)(e - v), v);
		return true;
	}
	return false;
}

void
h_http_free(struct h_http *r)
{
	free(r->head);
	free(r->body);
	r->head = r->body = NULL;
}

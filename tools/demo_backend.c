/*
 * demo_backend.c: a tiny TCP server for the quick start, so a newcomer can
 * see ringlb take turns between backends.
 *
 *   demo-backend NAME HOST:PORT
 *
 * Each connection gets one reply naming the backend: an HTTP response when
 * the client speaks HTTP (curl), a plain line otherwise (nc).  A thread per
 * connection: this is a demo, not a benchmark target.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *name;

static void *
serve(void *arg)
{
	int fd = (int)(intptr_t)arg;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char req[4096], body[256], resp[512];
	ssize_t n = 0;
	int len;

	/* Give the client a moment to speak first (curl does, nc may not). */
	if (poll(&pfd, 1, 300) > 0)
		n = recv(fd, req, sizeof(req) - 1, 0);
	snprintf(body, sizeof(body), "hello from %s\n", name);
	if (n > 0 && (strncmp(req, "GET ", 4) == 0 ||
		      strncmp(req, "HEAD ", 5) == 0 ||
		      strncmp(req, "POST ", 5) == 0))
		len = snprintf(resp, sizeof(resp),
			       "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
			       "Content-Length: %zu\r\nConnection: close\r\n"
			       "\r\n%s",
			       strlen(body), body);
	else
		len = snprintf(resp, sizeof(resp), "%s", body);
	if (send(fd, resp, (size_t)len, MSG_NOSIGNAL) < 0)
		perror("demo-backend: send");
	shutdown(fd, SHUT_WR);
	/* Read what is left so close() does not turn into a reset. */
	while (poll(&pfd, 1, 1000) > 0 && recv(fd, req, sizeof(req), 0) > 0)
		;
	close(fd);
	return NULL;
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	char host[64];
	const char *colon;
	int one = 1;
	int lfd;

	if (argc != 3 || !(colon = strrchr(argv[2], ':')) ||
	    (size_t)(colon - argv[2]) >= sizeof(host)) {
		fprintf(stderr, "usage: demo-backend NAME HOST:PORT\n");
		return 2;
	}
	name = argv[1];
	memcpy(host, argv[2], (size_t)(colon - argv[2]));
	host[colon - argv[2]] = '\0';
	sin.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
		fprintf(stderr, "demo-backend: bad IPv4 address '%s'\n", host);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 ||
	    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(lfd, 128) < 0) {
		fprintf(stderr, "demo-backend %s: cannot listen on %s: %s\n",
			name, argv[2], strerror(errno));
		return 1;
	}
	for (;;) {
		pthread_t t;
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			perror("demo-backend: accept");
			sleep(1);
			continue;
		}
		if (pthread_create(&t, NULL, serve, (void *)(intptr_t)fd)) {
			close(fd);
			continue;
		}
		pthread_detach(t);
	}
}

/*
 * upgrade.c: hand-over to a new binary (see upgrade.h).
 *
 * The channel is a SOCK_SEQPACKET socketpair, so every message keeps its
 * bounds and its fds.  A message is one type byte and a payload:
 *
 *   old -> new   'H' hello    {"protocol", "version", "pid", "workers",
 *                             "id_base"}
 *                'F' fds      {"fds": [{"kind", ...}, ...]} + SCM_RIGHTS
 *                'S' state    a piece of one JSON document
 *                'E' end      of what the old process sends before ready
 *                'G' go       the old process has stopped accepting
 *                'C' conns    {"conns": [{"listener", "route", "pool",
 *                             "backend", "address", "peer", ...}, ...]}
 *                             + client and backend socket of each, in turn
 *                'D' done     {"handed"}: no more connections come
 *   new -> old   'R' ready    {"pid"}
 *                'X' error    one line: why the new process gives up
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "backend.h"
#include "config.h"
#include "control.h"
#include "log.h"
#include "runtime.h"
#include "split.h"
#include "srctab.h"
#include "systemd.h"
#include "upgrade.h"
#include "version.h"


#define CHILD_FD	3
#define MSG_MAX		(32 * 1024)
#define STATE_MAX	(64 * 1024 * 1024)
#define INIT_WAIT_MS	5000	/* between two messages of the old one */

extern char **environ;

/* ---- messages ---- */

/* Send type + payload, with fds attached; 0 or -errno. */
static int
msg_send(int ch, char type, const void *data, size_t len, const int *fds,
	 size_t nfds)
{
	char cbuf[CMSG_SPACE(UPGRADE_FDS_MAX * sizeof(int))] = { 0 };
	struct iovec iov[2] = { { &type, 1 }, { (void *)(uintptr_t)data, len } };
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = len ? 2 : 1 };

	if (nfds) {
		struct cmsghdr *c;

		m.msg_control = cbuf;
		m.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	}
	for (;;) {
		if (sendmsg(ch, &m, MSG_NOSIGNAL) >= 0)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

/* A string member into dst (at most size - 1 bytes); "" if absent. */
static void
json_str_copy(char *dst, size_t size, const json_t *obj, const char *key)
{
	const char *v = json_string_value(json_object_get(obj, key));

	snprintf(dst, size, "%s", v ? v : "");
}

static int
msg_send_json(int ch, char type, json_t *j, const int *fds, size_t nfds)
{
	char *s = json_dumps(j, JSON_COMPACT);
	int rc;

	json_decref(j);
	if (!s)
		return -ENOMEM;
	rc = msg_send(ch, type, s, strlen(s), fds, nfds);
	free(s);
	return rc;
}

/*
 * Receive one message within timeout_ms into buf (NUL-terminated after
 * the payload), its fds into fds[] (at most UPGRADE_FDS_MAX).  The type,
 * or -ETIMEDOUT, -EPIPE (the other side closed), -errno.
 */
static int
msg_recv(int ch, char *buf, size_t cap, size_t *len, int *fds,
	 size_t *nfds, int timeout_ms)
{
	char cbuf[CMSG_SPACE(UPGRADE_FDS_MAX * sizeof(int))];
	struct iovec iov = { buf, cap - 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf) };
	struct pollfd p = { .fd = ch, .events = POLLIN };
	ssize_t n;
	int type;

	*nfds = 0;
	n = poll(&p, 1, timeout_ms);
	if (n == 0)
		return -ETIMEDOUT;
	if (n < 0)
		return -errno;
	n = recvmsg(ch, &m, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			if (fds && k <= UPGRADE_FDS_MAX) {
				memcpy(fds, CMSG_DATA(c), k * sizeof(int));
				*nfds = k;
			} else {
				int tmp[UPGRADE_FDS_MAX];

				memcpy(tmp, CMSG_DATA(c),
				       (k < UPGRADE_FDS_MAX ? k :
							      UPGRADE_FDS_MAX) *
					       sizeof(int));
				for (size_t i = 0; i < k && i < UPGRADE_FDS_MAX;
				     i++)
					close(tmp[i]);
			}
		}
	if (n == 0)
		return -EPIPE;
	if (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
		return -EMSGSIZE;
	type = (unsigned char)buf[0];
	memmove(buf, buf + 1, (size_t)n - 1);	/* drop the type byte */
	buf[n - 1] = '\0';
	*len = (size_t)n - 1;
	return type;
}

/* ---- the old process ---- */

static char **saved_argv;
static char self_exe[PATH_MAX];
static uint64_t id_base;	/* set once, before any worker runs */
static atomic_bool busy;
static atomic_bool done;

void
upgrade_set_argv(int argc, char **argv)
{
	ssize_t n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);

	(void)argc;
	saved_argv = argv;
	self_exe[n > 0 ? n : 0] = '\0';
}

bool
upgrade_done(void)
{
	return atomic_load(&done);
}

/* Listening, admin and systemd sockets; dups the caller closes. */
struct fdlist {
	json_t *desc;		/* array, one object per fd */
	int *fds;
	size_t n, cap;
};

static int
fdlist_add(struct fdlist *l, int fd, json_t *desc)
{
	int d;

	if (!desc)
		return -ENOMEM;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		int *nf = realloc(l->fds, cap * sizeof(*nf));

		if (!nf) {
			json_decref(desc);
			return -ENOMEM;
		}
		l->fds = nf;
		l->cap = cap;
	}
	d = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (d < 0) {
		json_decref(desc);
		return -errno;
	}
	l->fds[l->n++] = d;
	json_array_append_new(l->desc, desc);
	return 0;
}

static void
fdlist_free(struct fdlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		close(l->fds[i]);
	free(l->fds);
	json_decref(l->desc);
}

/* Every socket the new process takes over; under the control lock. */
static int
collect_fds(const struct runtime *rt, struct fdlist *l)
{
	char path[CFG_SOCKET_PATH_MAX];
	int rc = 0, fd;

	l->desc = json_array();
	for (size_t i = 0; rc == 0 && i < rt->nlisteners; i++) {
		const struct listener *ls = &rt->listeners[i];

		for (unsigned w = 0; rc == 0 && w < rt->nworkers; w++)
			if (ls->wfd[w] >= 0)
				rc = fdlist_add(
					l, ls->wfd[w],
					json_pack("{s:s,s:s,s:s,s:i}", "kind",
						  "listener", "name",
						  ls->cfg->name, "listen",
						  ls->cfg->addr.text, "worker",
						  (int)w));
	}
	if (rc == 0 && (fd = admin_listen_fd(path, sizeof(path))) >= 0)
		rc = fdlist_add(l, fd, json_pack("{s:s,s:s}", "kind", "admin",
						 "path", path));
	if (rc == 0 && (fd = admin_listen_fd(NULL, 0)) >= 0)
		rc = fdlist_add(l, fd, json_pack("{s:s}", "kind", "admin-tcp"));
	for (size_t i = 0; rc == 0; i++) {
		const char *name;

		fd = systemd_passed(i, &name);
		if (fd == -2)
			break;
		if (fd >= 0)
			rc = fdlist_add(l, fd, json_pack("{s:s,s:s}", "kind",
							 "systemd", "name",
							 name));
	}
	return rc;
}

struct src_export {
	json_t *arr;
	const char *listener;
};

static void
src_one(void *arg, int family, const uint8_t key[16], uint32_t tokens,
	uint64_t last_ms)
{
	struct src_export *x = arg;
	char hex[33];

	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", key[i]);
	json_array_append_new(x->arr,
			      json_pack("{s:s,s:i,s:s,s:I,s:I}", "listener",
					x->listener, "family", family, "key",
					hex, "tokens", (json_int_t)tokens,
					"last_ms", (json_int_t)last_ms));
}

/* What the new process should know of each backend and split. */
static json_t *
state_json(const struct runtime *rt)
{
	uint64_t now = control_now_ms();
	json_t *bs = json_array(), *ss = json_array();

	for (size_t i = 0; i < rt->npools; i++) {
		const struct pool *p = &rt->pools[i];

		for (size_t j = 0; j < p->nbackends; j++) {
			const struct backend *b = p->backends[j];
			uint64_t until = atomic_load(&b->fail_until_ms);

			json_array_append_new(
				bs,
				json_pack("{s:s,s:s,s:s,s:b,s:b,s:i,s:i,s:b,s:i,s:i,s:b,s:i,s:i,s:b,s:i,s:i,s:I}",
					  "pool", p->cfg->name, "name",
					  b->cfg->name, "address",
					  b->cfg->addr.text, "discovered",
					  b->cfg->discovered, "backup",
					  b->cfg->backup, "tier",
					  (int)b->cfg->tier, "admin",
					  atomic_load(&b->admin),
					  "weight_override", b->weight_override,
					  "weight", (int)atomic_load(&b->weight),
					  "conf_weight", (int)b->conf.weight,
					  "up", backend_is_up(b), "ok_run",
					  (int)b->hsm.ok_run, "fail_run",
					  (int)b->hsm.fail_run, "checked",
					  atomic_load(&b->checked), "conn_fail_run",
					  (int)atomic_load(&b->fail_run),
					  "eject_run",
					  (int)atomic_load(&b->eject_run),
					  "marked_ms",
					  (json_int_t)(until > now ? until - now :
								     0)));
		}
	}
	for (size_t i = 0; i < rt->nsplits; i++) {
		const struct split_state *st = rt->splits[i].st;
		json_t *w = json_array(), *c = json_array();

		for (size_t k = 0; k < st->nsides; k++) {
			json_array_append_new(
				w, json_integer(atomic_load(&st->n[k].weight)));
			json_array_append_new(c, json_integer(st->conf[k]));
		}
		json_array_append_new(ss, json_pack("{s:s,s:s,s:b,s:o,s:o}",
						    "listener", st->listener,
						    "route", st->route,
						    "override", st->override,
						    "weights", w, "conf", c));
	}
	/* per_source rate buckets: a restart of the process must not be a
	 * way around a rate limit. */
	{
		struct src_export x = { json_array(), NULL };

		for (size_t i = 0; i < rt->nlisteners; i++) {
			if (!rt->listeners[i].src)
				continue;
			x.listener = rt->listeners[i].cfg->name;
			srctab_export(rt->listeners[i].src, src_one, &x);
		}
		/* A withdrawn instance stays withdrawn across an upgrade. */
		return json_pack("{s:o,s:o,s:o,s:b}", "backends", bs, "splits",
				 ss, "sources", x.arr, "withdrawn",
				 control_withdrawn_ms() != 0);
	}
}

/* Everything up to 'E', in order.  Under the control lock. */
static int
send_handover(int ch, const struct runtime *rt, char *err, size_t errlen)
{
	struct fdlist l = { 0 };
	char *state = NULL;
	size_t len;
	int rc;

	rc = msg_send_json(ch, 'H',
			   json_pack("{s:i,s:s,s:i,s:i,s:I}", "protocol",
				     UPGRADE_PROTOCOL, "version",
				     RINGLB_VERSION, "pid", (int)getpid(),
				     "workers", (int)rt->nworkers, "id_base",
				     (json_int_t)(id_base + UPGRADE_ID_STEP)),
			   NULL, 0);
	if (rc == 0)
		rc = collect_fds(rt, &l);
	for (size_t off = 0; rc == 0 && off < l.n; off += UPGRADE_FDS_MAX) {
		size_t n = l.n - off < UPGRADE_FDS_MAX ? l.n - off :
							  UPGRADE_FDS_MAX;
		json_t *part = json_array();

		for (size_t i = off; i < off + n; i++)
			json_array_append(part, json_array_get(l.desc, i));
		rc = msg_send_json(ch, 'F', json_pack("{s:o}", "fds", part),
				   l.fds + off, n);
	}
	fdlist_free(&l);
	if (rc == 0) {
		json_t *j = state_json(rt);

		state = json_dumps(j, JSON_COMPACT);
		json_decref(j);
	}
	if (rc == 0 && !state)
		rc = -ENOMEM;
	len = state ? strlen(state) : 0;
	for (size_t off = 0; rc == 0 && off < len; off += MSG_MAX - 1)
		rc = msg_send(ch, 'S', state + off,
			      len - off < MSG_MAX - 1 ? len - off : MSG_MAX - 1,
			      NULL, 0);
	free(state);
	if (rc == 0)
		rc = msg_send(ch, 'E', NULL, 0, NULL, 0);
	if (rc < 0)
		snprintf(err, errlen, "upgrade: cannot hand over: %s",
			 strerror(-rc));
	return rc;
}

/* Start binary with our argv and the channel on CHILD_FD. */
static char upgrade_env[] = "RINGLB_UPGRADE_FD=3";

static pid_t
spawn_new(const char *binary, int child_end, char *err, size_t errlen)
{
	posix_spawn_file_actions_t fa;
	size_t n = 0, k = 0;
	char **envp, **argv;
	pid_t pid;
	int rc;

	while (environ[n])
		n++;
	envp = calloc(n + 2, sizeof(*envp));
	for (k = 0; saved_argv[k]; k++)
		;
	argv = calloc(k + 1, sizeof(*argv));
	if (!envp || !argv) {
		free(envp);
		free(argv);
		snprintf(err, errlen, "upgrade: out of memory");
		return -1;
	}
	k = 0;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "RINGLB_UPGRADE_FD=", 18) != 0)
			envp[k++] = environ[i];
	envp[k++] = upgrade_env;
	argv[0] = (char *)(uintptr_t)binary;
	for (k = 1; saved_argv[k]; k++)
		argv[k] = saved_argv[k];
	posix_spawn_file_actions_init(&fa);
	/*
	 * dup2 onto fd 3 clears FD_CLOEXEC there.  Nothing else passes, not
	 * even an fd some parent left us without CLOEXEC.
	 */
	posix_spawn_file_actions_adddup2(&fa, child_end, CHILD_FD);
	posix_spawn_file_actions_addclosefrom_np(&fa, CHILD_FD + 1);
	rc = posix_spawn(&pid, binary, &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	free(envp);
	free(argv);
	if (rc != 0) {
		snprintf(err, errlen, "upgrade: cannot start %s: %s", binary,
			 strerror(rc));
		return -1;
	}
	return pid;
}

/* "exited with status 1", "was killed by signal 9", for err. */
static const char *
exit_text(int st, char *buf, size_t cap)
{
	if (WIFEXITED(st))
		snprintf(buf, cap, "exited with status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, cap, "was killed by signal %d", WTERMSIG(st));
	else
		snprintf(buf, cap, "stopped");
	return buf;
}

/*
 * Wait for 'R' from pid.  0; or -1 with why in err (it exited, said why,
 * or took too long).
 */
static int
wait_ready(int ch, pid_t pid, const char *binary, char *err, size_t errlen)
{
	uint64_t deadline = control_now_ms() + UPGRADE_READY_MS;
	char buf[2048], how[64];
	size_t len, nfds;
	int st = 0, type;

	for (;;) {
		uint64_t now = control_now_ms();
		bool gone;

		if (now >= deadline) {
			snprintf(err, errlen,
				 "upgrade: %s (pid %d) was not ready within "
				 "%d ms; it was killed, and this process goes "
				 "on serving",
				 binary, (int)pid, UPGRADE_READY_MS);
			return -1;
		}
		type = msg_recv(ch, buf, sizeof(buf), &len, NULL, &nfds,
				deadline - now < 100 ? (int)(deadline - now) :
						       100);
		if (type == 'R')
			return 0;
		if (type == 'X') {
			snprintf(err, errlen, "upgrade: the new process "
				 "failed: %s", buf);
			return -1;
		}
		if (type >= 0)
			continue;	/* nothing else is expected: ignore */
		if (type == -ECONNRESET)
			type = -EPIPE;	/* it closed with our bytes unread */
		if (type != -ETIMEDOUT && type != -EPIPE) {
			snprintf(err, errlen, "upgrade: channel: %s",
				 strerror(-type));
			return -1;
		}
		/* A closed channel means it is on its way out: a moment. */
		gone = waitpid(pid, &st, WNOHANG) == pid;
		for (int i = 0; !gone && type == -EPIPE && i < 50; i++) {
			nanosleep(&(struct timespec){ 0, 20 * 1000 * 1000 }, NULL);
			gone = waitpid(pid, &st, WNOHANG) == pid;
		}
		if (gone) {
			snprintf(err, errlen,
				 "upgrade: %s (pid %d) %s before it was ready; "
				 "this process goes on serving",
				 binary, (int)pid, exit_text(st, how, sizeof(how)));
			return -1;
		}
		if (type == -EPIPE) {
			snprintf(err, errlen, "upgrade: %s (pid %d) closed the "
				 "hand-over channel; it was killed, and this "
				 "process goes on serving",
				 binary, (int)pid);
			return -1;
		}
	}
}

uint64_t
upgrade_id_base(void)
{
	return id_base;
}

/* ---- connection hand-over, the old process ---- */

/* What the workers offer (upgrade_offer), in order, for hand_over(). */
static pthread_mutex_t offer_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t offer_cond = PTHREAD_COND_INITIALIZER;
static bool offer_open;
static struct handover *offered, **offered_tail = &offered;

bool
upgrade_offer(struct handover *h)
{
	bool ok;

	pthread_mutex_lock(&offer_lock);
	ok = offer_open;
	if (ok) {
		h->next = NULL;
		*offered_tail = h;
		offered_tail = &h->next;
		pthread_cond_signal(&offer_cond);
	}
	pthread_mutex_unlock(&offer_lock);
	return ok;
}

static json_t *
addr_json(const struct sockaddr_in6 *sa)
{
	char text[80];

	if (sa->sin6_family == AF_UNSPEC)
		return json_null();
	log_addr((const struct sockaddr *)sa, text, sizeof(text));
	return json_string(text);
}

static json_t *
handover_json(const struct handover *h)
{
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:o,s:o,s:b,s:b,"
			 "s:[b,b],s:[I,I],s:I,s:I,s:I}",
			 "listener", h->listener, "route", h->route, "pool",
			 h->pool, "backend", h->backend, "address", h->address,
			 "sni", h->sni, "peer", addr_json(&h->peer), "via",
			 addr_json(&h->via), "local", addr_json(&h->local),
			 "proxied", h->proxied, "split", h->split, "closed",
			 h->closed[0], h->closed[1], "bytes",
			 (json_int_t)h->bytes[0], (json_int_t)h->bytes[1],
			 "age_ms", (json_int_t)h->age_ms, "idle_ms",
			 (json_int_t)h->idle_ms, "id", (json_int_t)h->id);
}

/* Connections for one 'C': at most UPGRADE_FDS_MAX fds and MSG_MAX bytes. */
struct batch {
	char buf[MSG_MAX];
	size_t len;
	int fds[UPGRADE_FDS_MAX];
	size_t nfds;
	unsigned n;
	unsigned sent, lost;
	bool failed;		/* the channel failed: offer no more */
};

/* Send what the batch holds; its sockets are the new process's then. */
static void
batch_flush(int ch, struct batch *b)
{
	if (!b->n)
		return;
	b->buf[b->len++] = ']';
	b->buf[b->len++] = '}';
	if (!b->failed &&
	    msg_send(ch, 'C', b->buf, b->len, b->fds, b->nfds) == 0) {
		b->sent += b->n;
	} else {
		b->lost += b->n;
		b->failed = true;
	}
	for (size_t i = 0; i < b->nfds; i++)
		close(b->fds[i]);
	b->len = 0;
	b->nfds = 0;
	b->n = 0;
}

/* Add h (freed here, its sockets in the batch until sent). */
static void
batch_add(int ch, struct batch *b, struct handover *h)
{
	json_t *j = handover_json(h);
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	size_t n = s ? strlen(s) : 0;

	json_decref(j);
	if (b->n && (b->nfds + 2 > UPGRADE_FDS_MAX ||
		     b->len + n + 3 > sizeof(b->buf)))
		batch_flush(ch, b);
	if (!s || n + 16 > sizeof(b->buf)) {
		/* Cannot be described (out of memory): it ends here. */
		close(h->fd[0]);
		close(h->fd[1]);
		b->lost++;
	} else {
		b->len += (size_t)snprintf(b->buf + b->len,
					   sizeof(b->buf) - b->len, "%s%s",
					   b->n ? "," : "{\"conns\":[", s);
		b->fds[b->nfds++] = h->fd[0];
		b->fds[b->nfds++] = h->fd[1];
		b->n++;
	}
	free(s);
	free(h);
}

/*
 * After 'G': for up to ms, the workers offer each connection once it holds
 * none of its bytes, and they go over the channel in batches; done early
 * once none is left here.  Then 'D'.  How many went.
 */
static unsigned
hand_over(int ch, unsigned ms)
{
	static struct batch b;
	uint64_t until = control_now_ms() + ms;
	bool open = ms > 0;

	b.len = b.nfds = 0;
	b.n = b.sent = b.lost = 0;
	b.failed = false;
	pthread_mutex_lock(&offer_lock);
	offer_open = open;
	pthread_mutex_unlock(&offer_lock);
	if (open)
		control_handover(until);
	while (open) {
		struct timespec ts;
		struct handover *list;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 5 * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_mutex_lock(&offer_lock);
		if (!offered && control_open_conns() > 0)
			pthread_cond_timedwait(&offer_cond, &offer_lock, &ts);
		if (b.failed || (!offered && (control_now_ms() >= until ||
					      control_open_conns() == 0))) {
			/* From now on workers keep what they would offer. */
			offer_open = false;
			open = false;
		}
		list = offered;
		offered = NULL;
		offered_tail = &offered;
		pthread_mutex_unlock(&offer_lock);
		while (list) {
			struct handover *next = list->next;

			batch_add(ch, &b, list);
			list = next;
		}
		batch_flush(ch, &b);
	}
	control_handover(0);
	msg_send_json(ch, 'D', json_pack("{s:i}", "handed", (int)b.sent),
		      NULL, 0);
	/* Gone with the channel (the new process died): the rest stay. */
	if (b.lost)
		log_error("upgrade: the hand-over channel failed: %u "
			  "connections sent to it were closed; the others "
			  "finish here",
			  b.lost);
	return b.sent;
}

int
upgrade_run(const char *binary, struct upgrade_result *res, char *err,
	    size_t errlen)
{
	unsigned handover_ms;
	int sv[2], rc, st;
	pid_t pid;

	memset(res, 0, sizeof(*res));
	if (!binary || !*binary)
		binary = self_exe;
	if (atomic_load(&done)) {
		snprintf(err, errlen, "upgrade: this process has handed over "
			 "already");
		return -EALREADY;
	}
	if (atomic_exchange(&busy, true)) {
		snprintf(err, errlen, "upgrade: one is in progress");
		return -EBUSY;
	}
	if (!saved_argv || !binary[0] ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(err, errlen, "upgrade: cannot set up: %s",
			 strerror(errno ? errno : EINVAL));
		atomic_store(&busy, false);
		return -EIO;
	}
	log_info("upgrade: starting %s", binary);
	pid = spawn_new(binary, sv[1], err, errlen);
	close(sv[1]);
	if (pid < 0) {
		close(sv[0]);
		atomic_store(&busy, false);
		return -ENOEXEC;
	}
	control_lock();
	handover_ms = runtime_current()->cfg->upgrade_handover_ms;
	rc = send_handover(sv[0], runtime_current(), err, errlen);
	control_unlock();
	/* Gone before it read it all: say how it ended, not "EPIPE". */
	if (rc == 0 || rc == -EPIPE || rc == -ECONNRESET)
		rc = wait_ready(sv[0], pid, binary, err, errlen);
	if (rc < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);	/* reaped already: ECHILD, harmless */
		close(sv[0]);
		log_error("%s", err);
		atomic_store(&busy, false);
		return -EIO;
	}
	/* From here the new one serves: it is systemd's main process now. */
	systemd_notify("MAINPID=%d\nSTATUS=upgraded: pid %d serves, pid %d "
		       "finishes its connections",
		       (int)pid, (int)pid, (int)getpid());
	admin_handover();
	/*
	 * Stop accepting, and only then say go: the new process then accepts
	 * whatever waits in the queues (see listen_kick()).
	 */
	if (!control_accept_off(1000))
		log_warn("upgrade: an accept of this process is still in "
			 "flight after 1 s");
	msg_send(sv[0], 'G', NULL, 0, NULL, 0);
	res->pid = pid;
	res->handed = hand_over(sv[0], handover_ms);
	close(sv[0]);
	res->left = control_open_conns();
	atomic_store(&done, true);
	log_info("upgrade: pid %d serves; %u connections handed over to it, "
		 "this process stops accepting and finishes the %u left",
		 (int)pid, res->handed, res->left);
	return 0;
}

/* ---- the new process ---- */

struct inherited {
	char kind[16];		/* listener, admin, admin-tcp, systemd */
	char name[CFG_NAME_MAX + 64];
	char listen[96];	/* listener: its listen text */
	char path[CFG_SOCKET_PATH_MAX];	/* admin: its Unix path */
	unsigned worker;
	int fd;			/* -1 once taken */
};

static int chan = -1;
static struct inherited *inh;
static size_t ninh;
static unsigned old_workers;
static json_t *old_state;

bool
upgrade_child(void)
{
	return chan >= 0;
}

unsigned
upgrade_workers(void)
{
	return old_workers;
}

void
upgrade_child_failed(const char *why)
{
	if (chan < 0)
		return;
	msg_send(chan, 'X', why, strlen(why), NULL, 0);
	close(chan);
	chan = -1;
}

/* Record the fds of one 'F' message; false if it does not make sense. */
static bool
take_fds(const char *text, const int *fds, size_t nfds)
{
	json_t *j = json_loads(text, 0, NULL), *a = json_object_get(j, "fds");
	struct inherited *grown;
	size_t i;
	json_t *e;

	if (!json_is_array(a) || json_array_size(a) != nfds) {
		json_decref(j);
		return false;
	}
	grown = realloc(inh, (ninh + nfds) * sizeof(*inh));
	if (!grown) {
		json_decref(j);
		return false;
	}
	inh = grown;
	json_array_foreach(a, i, e) {
		struct inherited *h = &inh[ninh++];

		memset(h, 0, sizeof(*h));
		h->fd = fds[i];
		json_str_copy(h->kind, sizeof(h->kind), e, "kind");
		json_str_copy(h->name, sizeof(h->name), e, "name");
		json_str_copy(h->listen, sizeof(h->listen), e, "listen");
		json_str_copy(h->path, sizeof(h->path), e, "path");
		h->worker = (unsigned)json_integer_value(
			json_object_get(e, "worker"));
		/* Passed on, so that a reload may take them up here too. */
		if (strcmp(h->kind, "systemd") == 0) {
			systemd_adopt(h->fd, h->name);
			h->fd = -1;
		}
	}
	json_decref(j);
	return true;
}

int
upgrade_child_init(char *err, size_t errlen)
{
	const char *env = getenv("RINGLB_UPGRADE_FD");
	static char buf[MSG_MAX + 1];
	char *state = NULL;
	size_t slen = 0;
	int fds[UPGRADE_FDS_MAX];

	if (!env)
		return 0;
	{
		char *end;
		long v = strtol(env, &end, 10);

		chan = *end || v < 3 || v > INT_MAX ? -1 : (int)v;
	}
	unsetenv("RINGLB_UPGRADE_FD");
	if (chan < 3 || fcntl(chan, F_SETFD, FD_CLOEXEC) < 0) {
		snprintf(err, errlen, "upgrade: RINGLB_UPGRADE_FD=%s is not "
			 "an open fd", env);
		chan = -1;
		return -1;
	}
	for (;;) {
		size_t len, nfds;
		int type = msg_recv(chan, buf, sizeof(buf), &len, fds, &nfds,
				    INIT_WAIT_MS);
		json_t *j;

		if (type < 0) {
			snprintf(err, errlen, "upgrade: reading from the old "
				 "process: %s",
				 type == -ETIMEDOUT ? "it sent nothing for 5 s" :
				 type == -EPIPE	    ? "it closed the channel" :
						      strerror(-type));
			free(state);
			return -1;
		}
		switch (type) {
		case 'H':
			j = json_loads(buf, 0, NULL);
			if (json_integer_value(json_object_get(j, "protocol")) !=
			    UPGRADE_PROTOCOL) {
				snprintf(err, errlen,
					 "upgrade: the running ringlb %s speaks "
					 "hand-over protocol %lld and this one "
					 "(%s) speaks %d: restart it instead",
					 json_string_value(json_object_get(
						 j, "version")) ?: "?",
					 (long long)json_integer_value(
						 json_object_get(j, "protocol")),
					 RINGLB_VERSION, UPGRADE_PROTOCOL);
				json_decref(j);
				free(state);
				for (size_t i = 0; i < nfds; i++)
					close(fds[i]);
				return -1;
			}
			old_workers = (unsigned)json_integer_value(
				json_object_get(j, "workers"));
			id_base = (uint64_t)json_integer_value(
				json_object_get(j, "id_base"));
			json_decref(j);
			break;
		case 'F':
			if (!take_fds(buf, fds, nfds)) {
				for (size_t i = 0; i < nfds; i++)
					close(fds[i]);
				snprintf(err, errlen, "upgrade: a bad list of "
					 "sockets from the old process");
				free(state);
				return -1;
			}
			break;
		case 'S': {
			char *grown;

			if (slen + len > STATE_MAX ||
			    !(grown = realloc(state, slen + len + 1))) {
				snprintf(err, errlen, "upgrade: the old "
					 "process's state is too large");
				free(state);
				return -1;
			}
			state = grown;
			memcpy(state + slen, buf, len);
			slen += len;
			state[slen] = '\0';
			break;
		}
		case 'E':
			old_state = state ? json_loads(state, 0, NULL) : NULL;
			free(state);
			log_info("upgrade: took over %zu sockets from the "
				 "running process",
				 ninh);
			return 1;
		default:
			for (size_t i = 0; i < nfds; i++)
				close(fds[i]);
			break;
		}
	}
}

int
upgrade_listen_fd(const struct cfg_listener *l, unsigned w)
{
	for (size_t i = 0; i < ninh; i++) {
		struct inherited *h = &inh[i];
		int fd = h->fd;

		if (fd >= 0 && strcmp(h->kind, "listener") == 0 &&
		    h->worker == w && strcmp(h->name, l->name) == 0 &&
		    strcmp(h->listen, l->addr.text) == 0) {
			h->fd = -1;
			return fd;
		}
	}
	return -1;
}

bool
upgrade_has_listener(const struct cfg_listener *l)
{
	for (size_t i = 0; i < ninh; i++)
		if (strcmp(inh[i].kind, "listener") == 0 &&
		    strcmp(inh[i].name, l->name) == 0 &&
		    strcmp(inh[i].listen, l->addr.text) == 0)
			return true;
	return false;
}

int
upgrade_admin_fd(const char *unix_path)
{
	for (size_t i = 0; i < ninh; i++) {
		struct inherited *h = &inh[i];
		int fd = h->fd;

		if (fd < 0)
			continue;
		if (unix_path ? strcmp(h->kind, "admin") == 0 &&
					strcmp(h->path, unix_path) == 0 :
				strcmp(h->kind, "admin-tcp") == 0) {
			h->fd = -1;
			return fd;
		}
	}
	return -1;
}

static struct backend *
find_backend(struct runtime *rt, const char *pool, const char *name,
	     const char *addr)
{
	struct pool *p = runtime_pool(rt, pool);
	struct backend *b = p ? pool_backend(p, name) : NULL;

	return b && strcmp(b->cfg->addr.text, addr) == 0 ? b : NULL;
}

void
upgrade_discovered(struct config *cfg)
{
	for (size_t k = 0; old_state && k < cfg->npools; k++) {
		struct cfg_pool *p = &cfg->pools[k];
		json_t *all = json_object_get(old_state, "backends"), *e;
		struct cfg_backend *set;
		size_t i, n = 0;

		if (!p->discover.enabled)
			continue;
		set = calloc(json_array_size(all) + 1, sizeof(*set));
		if (!set)
			return;
		json_array_foreach(all, i, e) {
			struct cfg_backend *b = &set[n];
			const char *pool = json_string_value(
				json_object_get(e, "pool"));
			char why[128];

			if (!json_is_true(json_object_get(e, "discovered")) ||
			    !pool || strcmp(pool, p->name) != 0)
				continue;
			json_str_copy(b->name, sizeof(b->name), e, "name");
			if (cfg_parse_addr(json_string_value(json_object_get(
						   e, "address")) ?: "",
					   &b->addr, why, sizeof(why)) < 0)
				continue;
			b->weight = (unsigned)json_integer_value(
				json_object_get(e, "conf_weight"));
			if (b->weight < 1 || b->weight > CFG_WEIGHT_MAX)
				b->weight = 1;
			b->backup = json_is_true(json_object_get(e, "backup"));
			b->tier = (uint8_t)json_integer_value(
				json_object_get(e, "tier"));
			if (b->backup && !b->tier)
				b->tier = 1;
			b->send_proxy = SEND_PROXY_POOL;
			n++;
		}
		if (n && cfg_set_discovered(p, set, n) == 0)
			log_info("upgrade: pool %s starts with the %zu "
				 "backends DNS gave the old process",
				 p->name, n);
		free(set);
	}
}

void
upgrade_apply_state(struct runtime *rt)
{
	uint64_t now = control_now_ms();
	size_t i, n = 0;
	json_t *e;

	if (!old_state)
		return;
	/*
	 * The old process serves on until it hands over: to a routing
	 * daemon's GET /ready this instance is serving (or withdrawn) all
	 * along, never "starting".
	 */
	if (json_is_true(json_object_get(old_state, "withdrawn")))
		control_withdraw(true);
	control_set_serving();
	json_array_foreach(json_object_get(old_state, "backends"), i, e) {
		struct backend *b = find_backend(
			rt, json_string_value(json_object_get(e, "pool")) ?: "",
			json_string_value(json_object_get(e, "name")) ?: "",
			json_string_value(json_object_get(e, "address")) ?: "");
		json_int_t marked;

		if (!b)
			continue;
		n++;
		atomic_store(&b->admin,
			     (int)json_integer_value(json_object_get(e, "admin")));
		/* A weight set at runtime stands while the file agrees. */
		if (json_is_true(json_object_get(e, "weight_override")) &&
		    json_integer_value(json_object_get(e, "conf_weight")) ==
			    (json_int_t)b->conf.weight) {
			atomic_store(&b->weight,
				     (unsigned)json_integer_value(
					     json_object_get(e, "weight")));
			b->weight_override = true;
		}
		atomic_store(&b->up,
			     json_is_true(json_object_get(e, "up")));
		atomic_store(&b->checked,
			     json_is_true(json_object_get(e, "checked")));
		b->hsm.up = json_is_true(json_object_get(e, "up"));
		b->hsm.ok_run = (unsigned)json_integer_value(
			json_object_get(e, "ok_run"));
		b->hsm.fail_run = (unsigned)json_integer_value(
			json_object_get(e, "fail_run"));
		atomic_store(&b->fail_run,
			     (unsigned)json_integer_value(
				     json_object_get(e, "conn_fail_run")));
		atomic_store(&b->eject_run,
			     (unsigned)json_integer_value(
				     json_object_get(e, "eject_run")));
		marked = json_integer_value(json_object_get(e, "marked_ms"));
		if (marked > 0)
			atomic_store(&b->fail_until_ms, now + (uint64_t)marked);
	}
	json_array_foreach(json_object_get(old_state, "splits"), i, e) {
		struct split *s = runtime_split(
			rt, json_string_value(json_object_get(e, "listener")) ?: "",
			json_string_value(json_object_get(e, "route")) ?: "");
		json_t *w = json_object_get(e, "weights"),
		       *c = json_object_get(e, "conf");
		bool same = s && json_array_size(w) == s->nsides &&
			    json_array_size(c) == s->nsides;

		for (size_t k = 0; same && k < s->nsides; k++)
			same = json_integer_value(json_array_get(c, k)) ==
			       (json_int_t)s->st->conf[k];
		if (!same || !json_is_true(json_object_get(e, "override")))
			continue;
		for (size_t k = 0; k < s->nsides; k++)
			atomic_store(&s->st->n[k].weight,
				     (unsigned)json_integer_value(
					     json_array_get(w, k)));
		s->st->override = true;
	}
	json_array_foreach(json_object_get(old_state, "sources"), i, e) {
		struct listener *l = runtime_listener(
			rt,
			json_string_value(json_object_get(e, "listener")) ?: "");
		const char *hex = json_string_value(json_object_get(e, "key"));
		uint8_t key[16];
		bool ok = l && l->src && hex && strlen(hex) == 32;

		for (int k = 0; ok && k < 16; k++) {
			char two[3] = { hex[2 * k], hex[2 * k + 1], '\0' }, *end;

			key[k] = (uint8_t)strtoul(two, &end, 16);
			ok = *end == '\0';
		}
		if (ok)
			srctab_import(
				l->src,
				(int)json_integer_value(
					json_object_get(e, "family")),
				key,
				(uint32_t)json_integer_value(
					json_object_get(e, "tokens")),
				(uint64_t)json_integer_value(
					json_object_get(e, "last_ms")));
	}
	log_info("upgrade: took over the state of %zu backends", n);
	json_decref(old_state);
	old_state = NULL;
}

/* The peer's address as "a.b.c.d:p" / "[v6]:p" into sa, if it parses. */
static void
peer_parse(const char *s, struct sockaddr_in6 *sa)
{
	struct cfg_addr a;
	char why[128];

	memset(sa, 0, sizeof(*sa));
	sa->sin6_family = AF_UNSPEC;
	if (s && cfg_parse_addr(s, &a, why, sizeof(why)) == 0 &&
	    a.len <= sizeof(*sa))
		memcpy(sa, &a.ss, a.len);
}

/* One connection of a 'C' into h (its sockets not yet). */
static void
handover_parse(const json_t *j, struct handover *h)
{
	const json_t *bytes = json_object_get(j, "bytes");
	const json_t *closed = json_object_get(j, "closed");

	json_str_copy(h->listener, sizeof(h->listener), j, "listener");
	json_str_copy(h->route, sizeof(h->route), j, "route");
	json_str_copy(h->pool, sizeof(h->pool), j, "pool");
	json_str_copy(h->backend, sizeof(h->backend), j, "backend");
	json_str_copy(h->address, sizeof(h->address), j, "address");
	json_str_copy(h->sni, sizeof(h->sni), j, "sni");
	peer_parse(json_string_value(json_object_get(j, "peer")), &h->peer);
	peer_parse(json_string_value(json_object_get(j, "via")), &h->via);
	peer_parse(json_string_value(json_object_get(j, "local")),
		   &h->local);
	h->proxied = json_is_true(json_object_get(j, "proxied"));
	h->split = json_is_true(json_object_get(j, "split"));
	for (size_t i = 0; i < 2; i++) {
		h->closed[i] = json_is_true(json_array_get(closed, i));
		h->bytes[i] = (uint64_t)json_integer_value(
			json_array_get(bytes, i));
	}
	h->age_ms = (uint64_t)json_integer_value(json_object_get(j, "age_ms"));
	h->idle_ms = (uint64_t)json_integer_value(
		json_object_get(j, "idle_ms"));
	h->id = (uint64_t)json_integer_value(json_object_get(j, "id"));
}

/* After 'G': adopt the connections the old process sends, until 'D'. */
static void *
receiver(void *arg)
{
	static char buf[MSG_MAX + 1];
	int ch = (int)(intptr_t)arg, fds[UPGRADE_FDS_MAX];
	unsigned n = 0, bad = 0;

	for (;;) {
		size_t len, nfds, k = 0;
		int type = msg_recv(ch, buf, sizeof(buf), &len, fds, &nfds, -1);
		json_t *j = NULL, *conns;

		if (type == 'C' && (j = json_loads(buf, 0, NULL))) {
			conns = json_object_get(j, "conns");
			for (; k < json_array_size(conns) && 2 * k + 1 < nfds;
			     k++) {
				struct handover *h = calloc(1, sizeof(*h));

				if (!h)
					break;
				handover_parse(json_array_get(conns, k), h);
				h->fd[0] = fds[2 * k];
				h->fd[1] = fds[2 * k + 1];
				control_adopt(h);
				n++;
			}
			json_decref(j);
		}
		/* Sockets no description came with: nobody can serve them. */
		for (size_t i = 2 * k; i < nfds; i++)
			close(fds[i]);
		bad += (unsigned)(nfds - 2 * k) / 2;
		if (type != 'C')
			break;	/* 'D', or the old process is gone */
	}
	close(ch);
	log_info("upgrade: adopted %u connections from the old process", n);
	if (bad)
		log_error("upgrade: closed %u connections from the old "
			  "process that came without a readable description",
			  bad);
	return NULL;
}

int
upgrade_child_ready(char *err, size_t errlen)
{
	char buf[64];
	size_t len, nfds;
	int type, rc = 0;

	if (chan < 0)
		return 0;
	msg_send_json(chan, 'R', json_pack("{s:i}", "pid", (int)getpid()),
		      NULL, 0);
	type = msg_recv(chan, buf, sizeof(buf), &len, NULL, &nfds,
			UPGRADE_READY_MS);
	if (type != 'G') {
		snprintf(err, errlen, "upgrade: the old process did not let "
			 "go (%s)",
			 type == -ETIMEDOUT ? "no word in 10 s" :
			 type == -EPIPE	    ? "it closed the channel" :
					      "unexpected message");
		rc = -1;
	}
	/* The old process may hand its connections over now. */
	if (rc == 0) {
		control_kick_accept();
		pthread_attr_t a;
		pthread_t t;

		pthread_attr_init(&a);
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&t, &a, receiver,
				   (void *)(intptr_t)chan) != 0)
			close(chan);
		pthread_attr_destroy(&a);
	} else {
		close(chan);
	}
	chan = -1;
	/* Sockets of listeners this config no longer has. */
	for (size_t i = 0; i < ninh; i++)
		if (inh[i].fd >= 0)
			close(inh[i].fd);
	free(inh);
	inh = NULL;
	ninh = 0;
	return rc;
}

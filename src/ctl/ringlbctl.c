/*
 * ringlbctl: the command line for ringlb's admin API.
 *
 *   ringlbctl [-s SOCKET] status [--json]
 *   ringlbctl [-s SOCKET] drain POOL BACKEND [--wait] [--timeout SECONDS]
 *   ringlbctl [-s SOCKET] maint POOL BACKEND
 *   ringlbctl [-s SOCKET] ready POOL BACKEND
 *   ringlbctl [-s SOCKET] weight POOL BACKEND N
 *   ringlbctl [-s SOCKET] split LISTENER [--route NAME] [POOL=W ...|--reset]
 *   ringlbctl [-s SOCKET] reload
 *   ringlbctl [-s SOCKET] upgrade [--binary PATH]
 *   ringlbctl [-s SOCKET] withdraw | rejoin
 *   ringlbctl [-s SOCKET] is-ready [--timeout SECONDS]
 *   ringlbctl [-s SOCKET] watch-ready --up CMD --down CMD [--timeout S]
 *
 * A listener with its own backends has a pool of its own name, so
 * "drain LISTENER BACKEND" works for it as it did before pools existed.
 *
 * libcurl speaks HTTP over the Unix socket; jansson reads the replies.
 * Exit 0 on success, 1 on an error (one line on stderr), 2 on bad usage;
 * is-ready exits 1 when ringlb is not ready or cannot be reached in time.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#define DEFAULT_SOCKET "/run/ringlb/admin.sock"
#define POLL_MS 100
#define TIMEOUT_MAX_S (366 * 24 * 3600)	/* drain --timeout: a year */

static const char *sock_path;
static long timeout_ms = 30000;	/* per request */

struct reply {
	char *body;
	size_t len;
};

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list ap;

	fputs("ringlbctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void __attribute__((noreturn))
usage(int code)
{
	fprintf(code ? stderr : stdout,
		"usage: ringlbctl [-s SOCKET] COMMAND\n"
		"  status [--json]                     pools, backends, listeners\n"
		"  drain POOL BACKEND [--wait] [--timeout SECONDS]\n"
		"  maint POOL BACKEND                  maintenance\n"
		"  ready POOL BACKEND                  back in rotation\n"
		"  weight POOL BACKEND N               set the weight (1-256)\n"
		"  split LISTENER [--route NAME] [POOL=W ...|--reset]\n"
		"                                      show or set a traffic split\n"
		"                                      (W 0-10000; --reset: the file's)\n"
		"  reload                              re-read the config file\n"
		"  upgrade [--binary PATH]             hand over to a new binary\n"
		"  withdraw                            GET /ready says 503: routers\n"
		"                                      stop sending new flows; all\n"
		"                                      connections are still served\n"
		"  rejoin                              GET /ready says 200 again\n"
		"  is-ready [--timeout SECONDS]        exit 0 if GET /ready says 200\n"
		"                                      (default timeout 1 s)\n"
		"  watch-ready --up CMD --down CMD [--timeout SECONDS]\n"
		"                                      a health hook: ask every 100 ms,\n"
		"                                      run CMD on a change (down at the\n"
		"                                      first miss, up after 3 in a row)\n"
		"                                      and again every second\n"
		"POOL: a pool's name; a listener with its own backends has a pool\n"
		"of its own name.\n"
		"SOCKET: -s, else $RINGLB_SOCKET, else %s\n",
		DEFAULT_SOCKET);
	exit(code);
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static size_t
on_data(char *p, size_t size, size_t n, void *arg)
{
	struct reply *r = arg;
	char *b = realloc(r->body, r->len + size * n + 1);

	if (!b)
		return 0;
	memcpy(b + r->len, p, size * n);
	r->body = b;
	r->len += size * n;
	r->body[r->len] = '\0';
	return size * n;
}

/* Why a connect to the socket failed, in an operator's words. */
static const char *
connect_reason(long os_errno)
{
	switch (os_errno) {
	case ENOENT:
		return "no such socket (is ringlb running? is -s right?)";
	case EACCES:
	case EPERM:
		return "permission denied (run as the user ringlb runs as, "
		       "or see admin.mode)";
	case ECONNREFUSED:
		return "connection refused (ringlb is not running; the socket "
		       "file is stale)";
	default:
		return os_errno ? strerror((int)os_errno) : "cannot connect";
	}
}

/* One request; dies on transport errors.  Returns the parsed JSON reply. */
static json_t *
request(const char *method, const char *path, const char *body, long *code)
{
	struct reply r = { 0 };
	char url[1024];
	struct curl_slist *hdr = NULL;
	json_error_t je;
	long os_errno = 0;
	CURLcode rc;
	json_t *j;
	CURL *c;

	c = curl_easy_init();
	if (!c)
		die("cannot initialise libcurl");
	snprintf(url, sizeof(url), "http://localhost%s", path);
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock_path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (body) {
		hdr = curl_slist_append(hdr, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	}
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &os_errno);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, code);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(c);
	if (rc != CURLE_OK) {
		free(r.body);
		curl_global_cleanup();
		if (rc == CURLE_COULDNT_CONNECT)
			die("cannot reach ringlb at %s: %s", sock_path,
			    connect_reason(os_errno));
		die("%s %s on %s: %s", method, path, sock_path,
		    curl_easy_strerror(rc));
	}
	if (strcmp(path, "/metrics") == 0) {
		j = json_stringn(r.body ? r.body : "", r.len);
		free(r.body);
		return j;
	}
	j = json_loadb(r.body ? r.body : "", r.len, 0, &je);
	free(r.body);
	if (!j) {
		curl_global_cleanup();
		die("unexpected reply from ringlb (HTTP %ld): %s", *code,
		    je.text);
	}
	return j;
}

/* A request that must succeed: on an error reply, print it and exit 1. */
static json_t *
call(const char *method, const char *path, const char *body)
{
	long code = 0;
	json_t *j = request(method, path, body, &code);

	if (code != 200) {
		const char *e = json_string_value(json_object_get(j, "error"));
		char msg[2048];

		/* Free everything first: die() exits, and leak checkers look. */
		snprintf(msg, sizeof(msg), "%s", e ? e : "request failed");
		json_decref(j);
		curl_global_cleanup();
		die("%s", msg);
	}
	return j;
}

static long long
num(json_t *o, const char *key)
{
	return (long long)json_integer_value(json_object_get(o, key));
}

static const char *
str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "-";
}

static const char *
human_bytes(long long n, char *buf, size_t len)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%lld B", n);
	else
		snprintf(buf, len, "%.1f %s", v, unit[u]);
	return buf;
}

/*
 * "web: 121 accepted, 3 active; refused: acl_denied 3, source_rate 9", the
 * reasons in the order the API gives them, only those that happened.
 */
static void
print_listener_totals(json_t *l)
{
	json_t *refused = json_object_get(l, "refused");
	int shown = 0;

	printf("%s: %lld accepted, %lld active; refused:", str(l, "name"),
	       num(l, "accepts"), num(l, "active"));
	for (void *it = json_object_iter(refused); it;
	     it = json_object_iter_next(refused, it)) {
		json_int_t n = json_integer_value(json_object_iter_value(it));

		if (n <= 0)
			continue;
		printf("%s %s %lld", shown ? "," : "", json_object_iter_key(it),
		       (long long)n);
		shown++;
	}
	puts(shown ? "" : " none");
}

/* "  split v1 90 (90.0%, file 95): 3801 connections, 2 active; ..." */
static void
print_split(const char *indent, json_t *sp)
{
	json_t *side;
	size_t i;

	printf("%ssplit%s%s:", indent,
	       strcmp(str(sp, "sticky"), "none") ? ", sticky by " : "",
	       strcmp(str(sp, "sticky"), "none") ? str(sp, "sticky") : "");
	json_array_foreach(json_object_get(sp, "sides"), i, side) {
		double share = json_number_value(json_object_get(side,
								 "share"));

		printf("%s %s %lld (%.1f%%", i ? ";" : "", str(side, "pool"),
		       num(side, "weight"), share * 100);
		if (num(side, "weight") != num(side, "file_weight"))
			printf(", file %lld", num(side, "file_weight"));
		printf("): %lld connections, %lld active",
		       num(side, "connections"), num(side, "active"));
	}
	putchar('\n');
}

static int
cmd_status(bool as_json)
{
	json_t *st = call("GET", "/status", NULL), *l, *b, *p;
	size_t i, j;

	if (as_json) {
		char *s = json_dumps(st, JSON_INDENT(2));

		puts(s ? s : "{}");
		free(s);
		json_decref(st);
		return 0;
	}
	printf("ringlb %s, config %s, generation %lld, up %lld s, %zu "
	       "workers\n",
	       str(st, "version"), str(st, "config"), num(st, "generation"),
	       num(st, "uptime_ms") / 1000,
	       json_array_size(json_object_get(st, "workers")));
	/* What a routing daemon's health hook sees on GET /ready. */
	if (strcmp(str(st, "readiness"), "withdrawn") == 0)
		printf("withdrawn for %lld s: GET /ready says 503 (ringlbctl "
		       "rejoin to undo)\n",
		       num(st, "withdrawn_ms") / 1000);
	else
		printf("%s: GET /ready says %s\n", str(st, "readiness"),
		       json_is_true(json_object_get(st, "ready")) ? "200" :
								    "503");
	putchar('\n');
	printf("%-12s %-12s %-22s %-12s %6s %7s %9s %10s %10s %s\n",
	       "POOL", "BACKEND", "ADDRESS", "STATE", "WEIGHT", "ACTIVE",
	       "TOTAL", "IN", "OUT", "LAST CHECK");
	json_array_foreach(json_object_get(st, "pools"), i, p) {
		json_array_foreach(json_object_get(p, "backends"), j, b) {
			json_t *c = json_object_get(b, "check");
			char in[32], out[32], check[64], state[32];

			if (json_is_true(json_object_get(c, "enabled")))
				snprintf(check, sizeof(check), "%s %lld ms",
					 str(c, "result"),
					 num(c, "latency_ms"));
			else
				snprintf(check, sizeof(check), "disabled");
			/* A passive mark: new clients skip it for now. */
			snprintf(state, sizeof(state), "%s%s%s",
				 str(b, "state"),
				 num(b, "fail_mark_ms") > 0 ? "/marked" : "",
				 /* From DNS (pools[].discover). */
				 json_is_true(json_object_get(b, "discovered")) ?
					 "/dns" :
					 "");
			printf("%-12s %-12s %-22s %-12s %6lld %7lld %9lld "
			       "%10s %10s %s\n",
			       str(p, "name"), str(b, "name"),
			       str(b, "address"), state,
			       num(b, "weight"), num(b, "active"),
			       num(b, "total"),
			       human_bytes(num(b, "bytes_in"), in, sizeof(in)),
			       human_bytes(num(b, "bytes_out"), out,
					   sizeof(out)),
			       check);
		}
	}
	putchar('\n');
	json_array_foreach(json_object_get(st, "pools"), i, p) {
		json_t *ls = json_object_get(p, "listeners");

		printf("pool %s (%s): fed by", str(p, "name"),
		       str(p, "algorithm"));
		json_array_foreach(ls, j, l) {
			printf("%s %s", j ? "," : "", json_string_value(l));
		}
		puts(json_array_size(ls) ? "" : " no listener");
	}
	putchar('\n');
	json_array_foreach(json_object_get(st, "listeners"), i, l) {
		json_t *r;

		print_listener_totals(l);
		if (json_is_object(json_object_get(l, "split")))
			print_split("  ", json_object_get(l, "split"));
		json_array_foreach(json_object_get(l, "routes"), j, r) {
			if (!json_is_object(json_object_get(r, "split")))
				continue;
			printf("  route %s: ", str(r, "sni"));
			print_split("", json_object_get(r, "split"));
		}
	}
	json_decref(st);
	return 0;
}

static void
backend_path(char *buf, size_t len, const char *l, const char *b,
	     const char *action)
{
	snprintf(buf, len, "/pools/%s/backends/%s%s%s", l, b,
		 action ? "/" : "", action ? action : "");
}

static void
check_name(const char *what, const char *s)
{
	/* Names are [A-Za-z0-9_.-]: anything else cannot exist. */
	if (!*s || strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			     "0123456789_.-") != strlen(s))
		die("unknown %s \"%s\" (names are A-Z a-z 0-9 _ . -)", what,
		    s);
}

static void
sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* Poll until B has no active connection or `until` (0: forever). */
static long long
wait_idle(const char *path, uint64_t until)
{
	for (;;) {
		json_t *b = call("GET", path, NULL);
		long long active = num(b, "active");

		json_decref(b);
		if (active == 0 || (until && now_ms() >= until))
			return active;
		sleep_ms(POLL_MS);
	}
}

static int
cmd_drain(const char *l, const char *b, bool wait, double timeout_s)
{
	char path[512], apath[512];
	uint64_t t0 = now_ms(), until = 0;
	long long left;
	json_t *r;

	check_name("pool", l);
	check_name("backend", b);
	backend_path(apath, sizeof(apath), l, b, "drain");
	backend_path(path, sizeof(path), l, b, NULL);
	r = call("POST", apath, NULL);
	if (!wait) {
		printf("%s/%s: %s, %lld active connections\n", l, b,
		       str(r, "state"), num(r, "active"));
		json_decref(r);
		return 0;
	}
	json_decref(r);
	if (timeout_s > 0)
		until = t0 + (uint64_t)(timeout_s * 1000);
	left = wait_idle(path, until);
	if (left == 0) {
		printf("%s/%s: drained in %.2f s\n", l, b,
		       (double)(now_ms() - t0) / 1000.0);
		return 0;
	}
	/* Deadline: close what is left and park the backend in maintenance. */
	backend_path(apath, sizeof(apath), l, b, "maint");
	r = call("POST", apath, "{\"close\": true}");
	left = num(r, "closing");
	json_decref(r);
	wait_idle(path, now_ms() + 10000);
	printf("%s/%s: timeout after %.2f s: closed %lld connections; now in "
	       "maintenance\n",
	       l, b, (double)(now_ms() - t0) / 1000.0, left);
	return 0;
}

static int
cmd_simple(const char *action, const char *l, const char *b)
{
	char path[512];
	json_t *r;

	check_name("pool", l);
	check_name("backend", b);
	backend_path(path, sizeof(path), l, b, action);
	r = call("POST", path, NULL);
	printf("%s/%s: %s\n", l, b, str(r, "state"));
	json_decref(r);
	return 0;
}

static int
cmd_weight(const char *l, const char *b, const char *n)
{
	char path[512], body[64], *end;
	long w;
	json_t *r;

	check_name("pool", l);
	check_name("backend", b);
	errno = 0;
	w = strtol(n, &end, 10);
	if (errno || *end || end == n || w < 1 || w > 256)
		die("weight must be an integer from 1 to 256, got \"%s\"", n);
	backend_path(path, sizeof(path), l, b, "weight");
	snprintf(body, sizeof(body), "{\"weight\": %ld}", w);
	r = call("PUT", path, body);
	printf("%s/%s: weight %lld\n", l, b, num(r, "weight"));
	json_decref(r);
	return 0;
}

/*
 * split L [--route NAME]: show; with POOL=W arguments, set those weights;
 * with --reset, go back to the file's.
 */
static int
cmd_split(const char *l, const char *route, bool reset, char **args,
	  int n)
{
	char path[1024], body[2048], *end;
	size_t o;
	json_t *r;

	check_name("listener", l);
	if (route && (!*route || strchr(route, '/') || strchr(route, '?') ||
		      strchr(route, '%') || strchr(route, '#')))
		die("bad route server name \"%s\"", route);
	if (route)
		snprintf(path, sizeof(path), "/listeners/%s/routes/%s/split",
			 l, route);
	else
		snprintf(path, sizeof(path), "/listeners/%s/split", l);
	if (reset && n) {
		fprintf(stderr, "ringlbctl: split: --reset takes no POOL=W\n");
		usage(2);
	}
	if (reset) {
		r = call("DELETE", path, NULL);
	} else if (n == 0) {
		r = call("GET", path, NULL);
	} else {
		o = (size_t)snprintf(body, sizeof(body), "{\"weights\": {");
		for (int i = 0; i < n; i++) {
			char *eq = strchr(args[i], '=');
			long w;

			if (!eq || eq == args[i])
				die("split: \"%s\" is not POOL=WEIGHT", args[i]);
			*eq = '\0';
			check_name("pool", args[i]);
			errno = 0;
			w = strtol(eq + 1, &end, 10);
			if (errno || *end || end == eq + 1 || w < 0 ||
			    w > 10000)
				die("split: weight of %s must be an integer "
				    "from 0 to 10000, got \"%s\"",
				    args[i], eq + 1);
			if (o + strlen(args[i]) + 32 >= sizeof(body))
				die("split: too many pools");
			o += (size_t)snprintf(body + o, sizeof(body) - o,
					      "%s\"%s\": %ld", i ? ", " : "",
					      args[i], w);
		}
		snprintf(body + o, sizeof(body) - o, "}}");
		r = call("PUT", path, body);
	}
	printf("%s%s%s: ", l, route ? " route " : "", route ? route : "");
	print_split("", r);
	json_decref(r);
	return 0;
}

static int
cmd_upgrade(const char *binary)
{
	char body[4200], path[4096];
	json_t *r, *b;

	if (binary) {
		if (!realpath(binary, path))
			die("upgrade: %s: %s", binary, strerror(errno));
		b = json_pack("{s:s}", "binary", path);
		if (!b || json_dumpb(b, body, sizeof(body) - 1, 0) >=
				  sizeof(body) - 1)
			die("upgrade: path too long");
		body[json_dumpb(b, body, sizeof(body) - 1, 0)] = '\0';
		json_decref(b);
	}
	r = call("POST", "/upgrade", binary ? body : NULL);
	printf("upgraded: pid %lld serves; %lld connections handed over, "
	       "%lld left to finish in the old process\n",
	       num(r, "pid"), num(r, "handed_over"), num(r, "left"));
	json_decref(r);
	return 0;
}

/* withdraw or rejoin. */
static int
cmd_withdraw(const char *what)
{
	char path[32];
	json_t *r;

	snprintf(path, sizeof(path), "/%s", what);
	r = call("POST", path, NULL);
	if (strcmp(what, "withdraw") == 0)
		printf("%s: GET /ready says 503; %lld open connections are "
		       "served, and new ones accepted, as before\n",
		       json_is_true(json_object_get(r, "changed")) ?
			       "withdrawn" :
			       "already withdrawn",
		       num(r, "active"));
	else
		printf("%s: GET /ready says %s\n",
		       json_is_true(json_object_get(r, "changed")) ?
			       "rejoined" :
			       "not withdrawn",
		       strcmp(str(r, "state"), "serving") == 0 ?
			       "200" :
			       str(r, "state"));
	json_decref(r);
	return 0;
}

/* Exit 0 if GET /ready says 200; prints the state either way. */
static int
cmd_is_ready(void)
{
	long code = 0;
	json_t *r = request("GET", "/ready", NULL, &code);

	puts(str(r, "state"));
	json_decref(r);
	return code == 200 ? 0 : 1;
}

/* ---- watch-ready: a health hook for a routing daemon ---- */

#define WATCH_POLL_MS 100
#define WATCH_RISE 3		/* 200s in a row before "up" */
#define WATCH_REPEAT_MS 1000	/* say it again this often */
#define WATCH_CMD_MS 5000	/* a command that takes longer is killed */

static volatile sig_atomic_t watch_stop;

static void
on_stop(int sig)
{
	(void)sig;
	watch_stop = 1;
}

/* Run cmd with /bin/sh; its exit status, or -1 (could not, or killed). */
static int
run_cmd(const char *cmd)
{
	extern char **environ;
	char sh[] = "sh", dash_c[] = "-c", *line = strdup(cmd);
	char *argv[] = { sh, dash_c, line, NULL };
	uint64_t until = now_ms() + WATCH_CMD_MS;
	pid_t pid;
	int st, rc;

	if (!line)
		return -1;
	rc = posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ);
	free(line);
	if (rc != 0)
		return -1;
	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		if (r < 0 && errno != EINTR)
			return -1;
		if (now_ms() >= until) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			fprintf(stderr, "ringlbctl: watch-ready: \"%s\" took "
				"over %d ms: killed\n", cmd, WATCH_CMD_MS);
			return -1;
		}
		sleep_ms(10);
	}
}

/* GET /ready on a handle kept between calls (one connection). */
static bool
ready_once(CURL *c, char *state, size_t size)
{
	struct reply r = { 0 };
	long code = 0;
	CURLcode rc;
	json_t *j;

	curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
	curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, 0L);
	rc = curl_easy_perform(c);
	if (rc == CURLE_OPERATION_TIMEDOUT) {
		/*
		 * The kept connection may be with a process busy with one long
		 * request (an upgrade it is handing over), or gone: ask once
		 * more on a new one, which whoever serves the socket answers.
		 */
		free(r.body);
		memset(&r, 0, sizeof(r));
		curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, 1L);
		rc = curl_easy_perform(c);
	}
	if (rc != CURLE_OK) {
		free(r.body);
		snprintf(state, size, "unreachable");
		return false;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	j = json_loadb(r.body ? r.body : "", r.len, 0, NULL);
	free(r.body);
	snprintf(state, size, "%s", str(j, "state"));
	json_decref(j);
	return code == 200;
}

static void
stamp(const char *what, const char *state)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	printf("%02d:%02d:%02d.%03ld %s (%s)\n", tm.tm_hour, tm.tm_min,
	       tm.tm_sec, ts.tv_nsec / 1000000, what, state);
	(void)fflush(stdout);	/* a reader gone: nothing to do */
}

/*
 * Every 100 ms, GET /ready (one kept connection, each answer within the
 * timeout).  The first answer that is not 200 runs `down`; WATCH_RISE 200s
 * in a row run `up`; the current one runs again every second (a routing
 * daemon restarted meanwhile hears it).  `down` first, and on SIGTERM or
 * SIGINT before exiting 0.
 */
static int
cmd_watch_ready(const char *up, const char *down)
{
	struct sigaction sa = { .sa_handler = on_stop };
	char url[64], state[32] = "?";
	bool is_up = false;
	uint64_t said = now_ms();
	unsigned ok = 0;
	CURL *c;

	if (!up || !down || !*up || !*down) {
		fprintf(stderr, "ringlbctl: watch-ready needs --up CMD and "
			"--down CMD\n");
		usage(2);
	}
	watch_stop = 0;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	c = curl_easy_init();
	if (!c)
		die("cannot initialise libcurl");
	snprintf(url, sizeof(url), "http://localhost/ready");
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock_path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	run_cmd(down);
	stamp("down: not announced until ready", "start");
	while (!watch_stop) {
		uint64_t t0 = now_ms(), spent;

		if (ready_once(c, state, sizeof(state)))
			ok++;
		else
			ok = 0;
		if (!is_up && ok >= WATCH_RISE) {
			is_up = true;
			run_cmd(up);
			said = now_ms();
			stamp("up: ready", state);
		} else if (is_up && ok == 0) {
			is_up = false;
			run_cmd(down);
			said = now_ms();
			stamp("down: not ready", state);
		} else if (now_ms() - said >= WATCH_REPEAT_MS) {
			run_cmd(is_up ? up : down);
			said = now_ms();
		}
		spent = now_ms() - t0;
		if (spent < WATCH_POLL_MS && !watch_stop)
			sleep_ms((unsigned)(WATCH_POLL_MS - spent));
	}
	curl_easy_cleanup(c);
	run_cmd(down);
	stamp("down: stopped", state);
	return 0;
}

static int
cmd_reload(void)
{
	json_t *r = call("POST", "/reload", NULL);

	printf("reloaded: generation %lld\n", num(r, "generation"));
	json_decref(r);
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "wait", no_argument, NULL, 'w' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "route", required_argument, NULL, 'r' },
		{ "reset", no_argument, NULL, 'R' },
		{ "binary", required_argument, NULL, 'b' },
		{ "up", required_argument, NULL, 'u' },
		{ "down", required_argument, NULL, 'd' },
		{ "socket", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool as_json = false, wait = false, reset = false;
	const char *route = NULL, *binary = NULL, *up = NULL, *down = NULL;
	double timeout_s = 0;
	const char *cmd;
	char *end;
	int opt, n, rc;

	sock_path = getenv("RINGLB_SOCKET");
	if (!sock_path || !*sock_path)
		sock_path = DEFAULT_SOCKET;
	/* Options may come before or after the command (GNU getopt). */
	while ((opt = getopt_long(argc, argv, "s:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			sock_path = optarg;
			break;
		case 'j':
			as_json = true;
			break;
		case 'w':
			wait = true;
			break;
		case 'r':
			route = optarg;
			break;
		case 'R':
			reset = true;
			break;
		case 'b':
			binary = optarg;
			break;
		case 'u':
			up = optarg;
			break;
		case 'd':
			down = optarg;
			break;
		case 'T':
			errno = 0;
			timeout_s = strtod(optarg, &end);
			/* Bounded: it becomes a uint64_t of ms; no NaN. */
			if (errno || *end || !(timeout_s > 0) ||
			    timeout_s > TIMEOUT_MAX_S) {
				fprintf(stderr, "ringlbctl: --timeout takes "
					"a number of seconds > 0 and at most "
					"%d\n", TIMEOUT_MAX_S);
				usage(2);
			}
			break;
		case 'h':
			usage(0);
		default:
			usage(2);
		}
	}
	if (optind >= argc)
		usage(2);
	cmd = argv[optind];
	n = argc - optind - 1;
	argv += optind + 1;
	if ((as_json && strcmp(cmd, "status") != 0) ||
	    (wait && strcmp(cmd, "drain") != 0) ||
	    (timeout_s > 0 && strcmp(cmd, "drain") != 0 &&
	     strcmp(cmd, "is-ready") != 0 &&
	     strcmp(cmd, "watch-ready") != 0) ||
	    ((route || reset) && strcmp(cmd, "split") != 0) ||
	    (binary && strcmp(cmd, "upgrade") != 0) ||
	    ((up || down) && strcmp(cmd, "watch-ready") != 0)) {
		fprintf(stderr, "ringlbctl: option not valid for %s\n", cmd);
		usage(2);
	}
	if (strcmp(cmd, "is-ready") == 0 || strcmp(cmd, "watch-ready") == 0) {
		/* A hung ringlb is not ready: answer within the timeout. */
		timeout_ms = timeout_s > 0 ? (long)(timeout_s * 1000) :
		     strcmp(cmd, "is-ready") == 0 ? 1000 : 300;
		if (timeout_ms < 1)
			timeout_ms = 1;
	} else if (timeout_s > 0 && !wait) {
		fprintf(stderr, "ringlbctl: --timeout needs --wait\n");
		usage(2);
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (strcmp(cmd, "status") == 0 && n == 0)
		rc = cmd_status(as_json);
	else if (strcmp(cmd, "drain") == 0 && n == 2)
		rc = cmd_drain(argv[0], argv[1], wait, timeout_s);
	else if ((strcmp(cmd, "maint") == 0 || strcmp(cmd, "ready") == 0) &&
		 n == 2)
		rc = cmd_simple(cmd, argv[0], argv[1]);
	else if (strcmp(cmd, "weight") == 0 && n == 3)
		rc = cmd_weight(argv[0], argv[1], argv[2]);
	else if (strcmp(cmd, "split") == 0 && n >= 1)
		rc = cmd_split(argv[0], route, reset, argv + 1, n - 1);
	else if (strcmp(cmd, "upgrade") == 0 && n == 0)
		rc = cmd_upgrade(binary);
	else if (strcmp(cmd, "reload") == 0 && n == 0)
		rc = cmd_reload();
	else if ((strcmp(cmd, "withdraw") == 0 ||
		  strcmp(cmd, "rejoin") == 0) && n == 0)
		rc = cmd_withdraw(cmd);
	else if (strcmp(cmd, "is-ready") == 0 && n == 0)
		rc = cmd_is_ready();
	else if (strcmp(cmd, "watch-ready") == 0 && n == 0)
		rc = cmd_watch_ready(up, down);
	else
		usage(2);
	curl_global_cleanup();
	return rc;
}

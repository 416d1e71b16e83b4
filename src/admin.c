/*
 * admin.c: the admin API (see admin.h and README.md).
 *
 * libmicrohttpd serves sockets we create ourselves: the Unix socket (mode
 * set before anyone can connect) and an optional TCP one.  One internal
 * polling thread per socket; every request is answered from the control
 * module under its lock, never by touching a worker.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#include "admin.h"
#include "balancer.h"
#include "config.h"
#include "control.h"
#include "discover.h"
#include "health.h"
#include "log.h"
#include "runtime.h"
#include "status_page.h"
#include "systemd.h"
#include "upgrade.h"
#include "version.h"


#define BODY_MAX	(64 * 1024)
/*
 * Under abuse (clients that connect and send nothing, or half a request):
 * room for 2,048 connections on each admin listener, so an operator's
 * ringlbctl still gets in past 1,000 held ones (MHD polls them all with
 * epoll, one thread), and a connection silent for 3 s is closed, so held
 * ones do not stay.  64 and 10 s let 200 half-sent requests hold
 * ringlbctl status for 9 s.  At most 4,096 fds of the process's limit.
 */
#define ADMIN_CONN_MAX	2048
#define ADMIN_TIMEOUT_S	3

struct admin_srv {
	int fd;
	struct MHD_Daemon *d;
};

static struct admin_srv srv_unix = { -1, NULL };
static struct admin_srv srv_tcp = { -1, NULL };
static char sock_path[CFG_SOCKET_PATH_MAX];
static atomic_bool handed_over;	/* a new process owns the sockets now */

/*
 * What keeps a foreign web page from acting here (README.md, "Status page"
 * and "Who may use the admin API").  A browser marks each request it makes
 * with Origin (every POST, PUT and DELETE), Sec-Fetch-Site or Referer.  A
 * change from a browser must carry X-Ringlb-Token, a random value of this
 * process that GET /token gives: a foreign page can neither read it (no
 * CORS) nor send the header (that takes a preflight we never allow).  GET
 * /token answers only a Host that is an IP address, localhost or one of
 * admin.allowed_hosts, so a DNS-rebinding page cannot read it either.
 */
static char page_token[33];
static struct cfg_admin guard_cfg;	/* allowed_hosts and token, at start */

/*
 * A request's body, and what its headers say about where it comes from
 * (request_guard()).  Every flag is a refusal reason, so a request made
 * whole in a test (no headers at all) is allowed, as ringlbctl's is.
 */
struct request {
	char *body;
	size_t len;
	bool too_big;
	bool from_page;		/* Origin, Referer or Sec-Fetch-Site: a browser */
	bool token_bad;		/* no X-Ringlb-Token, or not ours */
	bool cross_site;	/* Sec-Fetch-Site says another site sent it */
	bool host_bad;		/* Host is a name we were not told of */
	bool auth_bad;		/* TCP with token_file: no right bearer token */
};

/* A growable text buffer for /metrics. */
struct buf {
	char *s;
	size_t len;
	size_t cap;
	bool oom;
};

static void __attribute__((format(printf, 2, 3)))
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->s ? b->s + b->len : NULL,
			      b->s ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if (b->s && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap * 2 : 4096;

		while (cap <= b->len + (size_t)n)
			cap *= 2;
		char *s = realloc(b->s, cap);

		if (!s) {
			b->oom = true;
			return;
		}
		b->s = s;
		b->cap = cap;
	}
}

/* Prometheus label values: escape backslash, quote and newline. */
static const char *
label(const char *in, char *out, size_t size)
{
	size_t o = 0;

	for (; *in && o + 3 < size; in++) {
		if (*in == '\\' || *in == '"') {
			out[o++] = '\\';
			out[o++] = *in;
		} else if (*in == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else {
			out[o++] = *in;
		}
	}
	out[o] = '\0';
	return out;
}

static enum MHD_Result
reply_text(struct MHD_Connection *conn, unsigned code, char *text,
	   size_t len, const char *type, const char *allow)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", type);
	if (allow)
		MHD_add_response_header(r, "Allow", allow);
	/* The page may run only its own inline script and style. */
	if (strncmp(type, "text/html", 9) == 0)
		MHD_add_response_header(r, "Content-Security-Policy",
					"default-src 'none'; script-src 'unsafe-inline'; "
					"style-src 'unsafe-inline'; connect-src 'self'; "
					"img-src data:; base-uri 'none'; "
					"form-action 'none'; frame-ancestors 'none'");
	/* Live state: never from a cache; never framed; never sniffed. */
	MHD_add_response_header(r, "Cache-Control", "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "X-Frame-Options", "DENY");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	if (code == 401)
		MHD_add_response_header(r, "WWW-Authenticate",
					"Bearer realm=\"ringlb\"");
	/* Handed over: the next request should reach the new process. */
	if (atomic_load(&handed_over))
		MHD_add_response_header(r, "Connection", "close");
	ret = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return ret;
}

/* Reply with j (stolen). */
static enum MHD_Result
reply_json(struct MHD_Connection *conn, unsigned code, json_t *j,
	   const char *allow)
{
	char *text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
	size_t len;

	json_decref(j);
	if (!text)
		return MHD_NO;
	len = strlen(text);
	/* json_dumps leaves no trailing newline; curl users like one. */
	char *t = realloc(text, len + 2);

	if (!t) {
		free(text);
		return MHD_NO;
	}
	t[len++] = '\n';
	t[len] = '\0';
	return reply_text(conn, code, t, len, "application/json", allow);
}

static enum MHD_Result __attribute__((format(printf, 4, 5)))
reply_error(struct MHD_Connection *conn, unsigned code, const char *allow,
	    const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/*
	 * The message may quote the request's path (URL-decoded, so any
	 * bytes) and may be cut mid-character; jansson refuses a string that
	 * is not UTF-8, and the client would get no reply at all.  Names are
	 * ASCII, so nothing of value is lost.
	 */
	for (char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '?';
	return reply_json(conn, code, json_pack("{s:s}", "error", msg), allow);
}

static json_t *
backend_json(const struct backend *b, const struct pool *p, uint64_t now)
{
	const struct cfg_health *h = &p->cfg->health;
	json_t *check;
	bool checked = atomic_load(&b->checked);
	uint64_t until = atomic_load(&b->fail_until_ms);

	check = json_pack("{s:b,s:s,s:I}", "enabled", h->enabled, "result",
			  checked ? health_result_name(atomic_load(
					    &b->last_result)) :
				    "none",
			  "latency_ms",
			  (json_int_t)atomic_load(&b->last_latency_ms));
	return json_pack("{s:s,s:s,s:b,s:i,s:b,s:s,s:s,s:s,s:s,s:I,s:I,s:I,"
			 "s:I,s:I,s:I,s:I,s:I,s:I,s:o,s:I,s:o}",
			 "name", b->cfg->name, "pool", p->cfg->name, "backup",
			 atomic_load(&b->tier) > 0, "tier",
			 (int)atomic_load(&b->tier), "discovered",
			 b->cfg->discovered, "address",
			 b->cfg->addr.text, "state", backend_state_name(b),
			 "health", backend_is_up(b) ? "up" : "down", "admin",
			 backend_admin_name(atomic_load(&b->admin)), "weight",
			 (json_int_t)backend_weight(b), "config_weight",
			 (json_int_t)b->cfg->weight, "active",
			 (json_int_t)atomic_load(&b->active),
			 "max_connections",
			 (json_int_t)atomic_load(&b->max_conns), "total",
			 (json_int_t)atomic_load(&b->total), "bytes_in",
			 (json_int_t)atomic_load(&b->bytes_in), "bytes_out",
			 (json_int_t)atomic_load(&b->bytes_out),
			 "connect_failures",
			 (json_int_t)atomic_load(&b->connect_failures),
			 "fail_mark_ms",
			 (json_int_t)(until > now ? until - now : 0),
			 "ejections",
			 json_pack("{s:I,s:I,s:I}", "connect",
				   (json_int_t)atomic_load(
					   &b->ejections[EJECT_CONNECT]),
				   "early_close",
				   (json_int_t)atomic_load(
					   &b->ejections[EJECT_EARLY_CLOSE]),
				   "in_a_row",
				   (json_int_t)atomic_load(&b->eject_run)),
			 "in_state_ms",
			 (json_int_t)(now - atomic_load(&b->since_ms)),
			 "check", check);
}

static json_t *
backends_json(const struct pool *p, uint64_t now)
{
	json_t *bs = json_array();

	for (size_t i = 0; i < p->nbackends; i++)
		json_array_append_new(bs, backend_json(p->backends[i], p, now));
	return bs;
}

/* Refusals by reason (access.h), with no_backend among them. */
static json_t *
refused_json(const struct lstats *st)
{
	json_t *o = json_object();

	for (int r = 0; r < REFUSE_MAX; r++)
		json_object_set_new(o, refuse_reason_name(r),
				    json_integer((json_int_t)atomic_load(
					    &st->refused[r])));
	json_object_set_new(o, "no_backend",
			    json_integer((json_int_t)atomic_load(
				    &st->no_backend)));
	return o;
}

/*
 * A split: {"sticky", "override", "changed_ms_ago", "sides": [{"pool",
 * "weight", "file_weight", "share", "connections", "active"}, ...]}.
 */
static json_t *
split_json(const struct split *s, uint64_t now)
{
	const struct split_state *st = s->st;
	json_t *sides = json_array();
	unsigned total = 0;

	for (size_t i = 0; i < s->nsides; i++)
		total += atomic_load(&st->n[i].weight);
	for (size_t i = 0; i < s->nsides; i++) {
		unsigned w = atomic_load(&st->n[i].weight);

		json_array_append_new(
			sides,
			json_pack("{s:s,s:I,s:I,s:f,s:I,s:I}", "pool",
				  st->pool[i], "weight", (json_int_t)w,
				  "file_weight", (json_int_t)st->conf[i],
				  "share", total ? (double)w / total : 0.0,
				  "connections",
				  (json_int_t)atomic_load(&st->n[i].conns),
				  "active",
				  (json_int_t)atomic_load(&st->n[i].active)));
	}
	return json_pack("{s:s,s:b,s:o,s:o}", "sticky",
			 s->cfg->sticky ? "source-ip" : "none", "override",
			 st->override, "changed_ms_ago",
			 st->changed_ms ? json_integer((json_int_t)(
						  now - st->changed_ms)) :
					  json_null(),
			 "sides", sides);
}

/* What a target is, for a listener's or a route's JSON: pool and split. */
static void
target_json(json_t *j, const struct target *t, uint64_t now)
{
	json_object_set_new(j, "pool",
			    t->pool ? json_string(t->pool->cfg->name) :
				      json_null());
	json_object_set_new(j, "split",
			    t->split ? split_json(t->split, now) : json_null());
}

/* A listener's routes: [{"sni": name, "pool": P, "split": S}, ...]. */
static json_t *
routes_json(const struct listener *l, uint64_t now)
{
	json_t *a = json_array();

	for (size_t i = 0; i < l->cfg->nroutes; i++) {
		json_t *r = json_pack("{s:s}", "sni", l->cfg->routes[i].sni);

		target_json(r, &l->routes[i], now);
		json_array_append_new(a, r);
	}
	return a;
}

/*
 * A listener, with its pool's name and (as before pools existed) the
 * pool's algorithm and backends; a listener that only routes by SNI, or
 * splits its clients, has none of them ("pool": null).
 */
static json_t *
listener_json(const struct listener *l, uint64_t now)
{
	const struct lstats *st = l->stats;
	const struct pool *p = l->to.pool;
	json_t *j;

	j = json_pack("{s:s,s:s,s:s,s:o,s:I,s:I,s:I,s:I,s:I,s:I,s:I,"
			 "s:o,s:o}",
			 "name", l->cfg->name, "listen", l->cfg->addr.text,
			 "algorithm",
			 p ? cfg_algorithm_name(p->cfg->algorithm) : "none",
			 "routes", routes_json(l, now),
			 "accepts", (json_int_t)atomic_load(&st->accepts),
			 "active", (json_int_t)atomic_load(&st->active),
			 "max_connections",
			 (json_int_t)l->cfg->max_connections,
			 "bytes_in", (json_int_t)atomic_load(&st->bytes_in),
			 "bytes_out", (json_int_t)atomic_load(&st->bytes_out),
			 "no_backend", (json_int_t)atomic_load(&st->no_backend),
			 "connect_failed",
			 (json_int_t)atomic_load(&st->connect_failed),
			 "refused", refused_json(st), "backends",
			 p ? backends_json(p, now) : json_array());
	if (j)
		target_json(j, &l->to, now);
	return j;
}

/* Does target t send clients to pool p? */
static bool
target_feeds(const struct target *t, const struct pool *p)
{
	if (t->pool == p)
		return true;
	for (size_t i = 0; t->split && i < t->split->nsides; i++)
		if (t->split->side[i].pool == p)
			return true;
	return false;
}

/* Does listener l send clients to pool p, by default or by a route? */
static bool
listener_feeds(const struct listener *l, const struct pool *p)
{
	if (target_feeds(&l->to, p))
		return true;
	for (size_t i = 0; i < l->cfg->nroutes; i++)
		if (target_feeds(&l->routes[i], p))
			return true;
	return false;
}

/* A pool, the listeners that feed it, and its backends. */
static json_t *
pool_json(const struct runtime *rt, const struct pool *p, uint64_t now)
{
	json_t *ls = json_array(), *j, *bs;
	uint64_t active = 0;

	for (size_t i = 0; i < rt->nlisteners; i++)
		if (listener_feeds(&rt->listeners[i], p))
			json_array_append_new(
				ls, json_string(rt->listeners[i].cfg->name));
	for (size_t i = 0; i < p->nbackends; i++)
		active += atomic_load(&p->backends[i]->active);
	j = json_pack("{s:s,s:s,s:b,s:b,s:I,s:I,s:I,s:o,s:o}", "name",
		      p->cfg->name, "algorithm",
		      cfg_algorithm_name(p->cfg->algorithm), "inline",
		      p->cfg->is_inline, "on_backups",
		      atomic_load(&p->on_backups), "connect_attempts",
		      (json_int_t)p->cfg->connect_attempts, "connect_ms",
		      (json_int_t)p->cfg->connect_ms, "active",
		      (json_int_t)active, "listeners", ls, "backends",
		      bs = backends_json(p, now));
	if (j && p->cfg->discover.enabled) {
		json_t *d = discover_json(p->cfg->name);

		if (d)
			json_object_set_new(j, "discovery", d);
	}
	if (j && p->nbackends && p->ops->info) {
		/* A hashing algorithm's table, and each backend's slots. */
		struct balancer_info bi = { 0 };

		p->ops->info(p, &bi);
		json_object_set_new(
			j, "table",
			json_pack("{s:I,s:I,s:I}", "size",
				  (json_int_t)bi.table_size, "build_us",
				  (json_int_t)bi.build_us, "built_ms_ago",
				  (json_int_t)(now - bi.built_ms)));
		for (size_t i = 0; bi.slots && i < p->nbackends; i++)
			json_object_set_new(json_array_get(bs, i), "slots",
					    json_integer(bi.slots[i]));
	}
	return j;
}

/* How long this instance has been withdrawn, in ms; -1: it is not. */
static json_int_t
withdrawn_for(uint64_t now)
{
	uint64_t since = control_withdrawn_ms();

	return since ? (json_int_t)(now - since) : -1;
}

static json_t *
status_json(void)
{
	const struct runtime *rt = runtime_current();
	struct control_stats st;
	uint64_t now = control_now_ms();
	json_t *ls = json_array(), *ws = json_array(), *ps = json_array();

	control_get_stats(&st);
	for (unsigned i = 0; i < st.nworkers; i++)
		json_array_append_new(ws, json_pack("{s:i,s:I}", "id", (int)i,
						    "accepts",
						    (json_int_t)control_worker_accepts(i)));
	for (size_t i = 0; i < rt->nlisteners; i++)
		json_array_append_new(ls, listener_json(&rt->listeners[i], now));
	for (size_t i = 0; i < rt->npools; i++)
		json_array_append_new(ps, pool_json(rt, &rt->pools[i], now));
	return json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:b,s:s,s:I,s:o,s:o,s:o}",
			 "version", RINGLB_VERSION, "config", rt->cfg->path,
			 "generation", (json_int_t)rt->gen, "uptime_ms",
			 (json_int_t)(now - st.start_ms), "reloads",
			 (json_int_t)st.reloads, "reload_failures",
			 (json_int_t)st.reload_failures, "ready",
			 control_readiness() == READY_SERVING, "readiness",
			 control_readiness_name(control_readiness()),
			 "withdrawn_ms", withdrawn_for(now), "workers", ws,
			 "listeners", ls, "pools", ps);
}

static void
metric_head(struct buf *b, const char *name, const char *type,
	    const char *help)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/*
 * A backend's labels: pool and backend; a listener's own (inline) pool
 * also keeps the listener label it had before pools existed.
 */
static const char *
backend_labels(const struct pool *p, const struct backend *be, char *out,
	       size_t size)
{
	char l1[256], l2[256];

	label(p->cfg->name, l1, sizeof(l1));
	label(be->cfg->name, l2, sizeof(l2));
	if (p->cfg->is_inline)
		snprintf(out, size, "listener=\"%s\",pool=\"%s\",backend=\"%s\"",
			 l1, l1, l2);
	else
		snprintf(out, size, "pool=\"%s\",backend=\"%s\"", l1, l2);
	return out;
}

static char *
metrics_text(size_t *len)
{
	static const char *const states[] = { "up", "down", "draining",
					      "maintenance" };
	const struct runtime *rt = runtime_current();
	struct control_stats st;
	struct buf b = { 0 };
	char l1[256], bl[800];

	control_get_stats(&st);

#define PER_LISTENER(metric, type, help, expr)                                  \
	do {                                                                  \
		metric_head(&b, metric, type, help);                            \
		for (size_t i = 0; i < rt->nlisteners; i++) {                 \
			const struct listener *l = &rt->listeners[i];         \
			buf_printf(&b, "%s{listener=\"%s\"} %llu\n", metric,   \
				   label(l->cfg->name, l1, sizeof(l1)),       \
				   (unsigned long long)(expr));               \
		}                                                             \
	} while (0)
/* Every backend of every pool, as p and be, for the body that follows. */
#define FOR_EACH_BACKEND                                                        \
	for (size_t i_ = 0; i_ < rt->npools; i_++)                            \
		for (const struct pool *p = &rt->pools[i_]; p; p = NULL)      \
			for (size_t j_ = 0; j_ < p->nbackends; j_++)          \
				for (const struct backend *be =               \
					     p->backends[j_];                 \
				     be; be = NULL)
/* Every side of every split (listener, route "" or its first name). */
#define PER_SPLIT_SIDE(metric, type, help, expr)                                \
	do {                                                                  \
		metric_head(&b, metric, type, help);                            \
		for (size_t i = 0; i < rt->nsplits; i++) {                    \
			const struct split *sp = &rt->splits[i];              \
			char l2[CFG_SNI_MAX * 2], l3[256];                    \
                                                                              \
			label(sp->st->listener, l1, sizeof(l1));             \
			label(sp->st->route, l2, sizeof(l2));                \
			for (size_t k = 0; k < sp->nsides; k++)               \
				buf_printf(&b,                                \
					   "%s{listener=\"%s\",route=\"%s\","  \
					   "pool=\"%s\"} %llu\n",             \
					   metric, l1, l2,                   \
					   label(sp->st->pool[k], l3,        \
						 sizeof(l3)),                \
					   (unsigned long long)(expr));      \
		}                                                             \
	} while (0)
#define PER_BACKEND(metric, type, help, fmt, expr)                              \
	do {                                                                  \
		metric_head(&b, metric, type, help);                            \
		FOR_EACH_BACKEND                                              \
		buf_printf(&b, "%s{%s} " fmt "\n", metric,                     \
			   backend_labels(p, be, bl, sizeof(bl)), (expr));     \
	} while (0)

	PER_LISTENER("ringlb_listener_accepts_total", "counter",
		     "Client connections accepted.",
		     atomic_load(&l->stats->accepts));
	PER_LISTENER("ringlb_listener_active_connections", "gauge",
		     "Client connections open now.",
		     atomic_load(&l->stats->active));
	PER_LISTENER("ringlb_listener_bytes_in_total", "counter",
		     "Bytes from clients to backends, counted at close.",
		     atomic_load(&l->stats->bytes_in));
	PER_LISTENER("ringlb_listener_bytes_out_total", "counter",
		     "Bytes from backends to clients, counted at close.",
		     atomic_load(&l->stats->bytes_out));
	PER_LISTENER("ringlb_listener_no_backend_total", "counter",
		     "Clients closed because no backend was eligible.",
		     atomic_load(&l->stats->no_backend));
	PER_LISTENER("ringlb_listener_connect_failed_total", "counter",
		     "Clients closed after every connect attempt failed.",
		     atomic_load(&l->stats->connect_failed));
	metric_head(&b, "ringlb_listener_refused_total", "counter",
		    "Clients refused, by reason (no_backend repeats "
		    "ringlb_listener_no_backend_total).");
	for (size_t i = 0; i < rt->nlisteners; i++) {
		const struct listener *l = &rt->listeners[i];

		for (int r = 0; r <= REFUSE_MAX; r++)
			buf_printf(&b,
				   "ringlb_listener_refused_total{listener=\"%s\","
				   "reason=\"%s\"} %llu\n",
				   label(l->cfg->name, l1, sizeof(l1)),
				   r < REFUSE_MAX ? refuse_reason_name(r)
						  : "no_backend",
				   (unsigned long long)atomic_load(
					   r < REFUSE_MAX ? &l->stats->refused[r]
							  : &l->stats->no_backend));
	}
	PER_SPLIT_SIDE("ringlb_split_weight", "gauge",
		       "Weight in force of a pool in a traffic split.",
		       atomic_load(&sp->st->n[k].weight));
	PER_SPLIT_SIDE("ringlb_split_connections_total", "counter",
		       "Clients a traffic split sent to the pool.",
		       atomic_load(&sp->st->n[k].conns));
	PER_SPLIT_SIDE("ringlb_split_active_connections", "gauge",
		       "Clients a traffic split sent to the pool, open now.",
		       atomic_load(&sp->st->n[k].active));
	metric_head(&b, "ringlb_discovery_queries_total", "counter",
		    "DNS rounds of a discovering pool, by how they ended.");
	for (size_t i = 0; i < rt->npools; i++) {
		json_t *d = rt->pools[i].cfg->discover.enabled ?
				    discover_json(rt->pools[i].cfg->name) :
				    NULL;
		json_t *q = json_object_get(d, "queries");

		label(rt->pools[i].cfg->name, l1, sizeof(l1));
		for (void *it = json_object_iter(q); it;
		     it = json_object_iter_next(q, it))
			buf_printf(&b,
				   "ringlb_discovery_queries_total{pool=\"%s\","
				   "result=\"%s\"} %lld\n",
				   l1, json_object_iter_key(it),
				   (long long)json_integer_value(
					   json_object_iter_value(it)));
		json_decref(d);
	}
	metric_head(&b, "ringlb_discovery_backends", "gauge",
		    "Backends a discovering pool has from DNS now.");
	for (size_t i = 0; i < rt->npools; i++) {
		const struct cfg_pool *cp = rt->pools[i].cfg;

		if (cp->discover.enabled)
			buf_printf(&b,
				   "ringlb_discovery_backends{pool=\"%s\"} %zu\n",
				   label(cp->name, l1, sizeof(l1)),
				   cp->nbackends - cp->nstatic);
	}
	PER_BACKEND("ringlb_backend_up", "gauge",
		    "1 if health checks say the backend is up.", "%d",
		    backend_is_up(be) ? 1 : 0);
	metric_head(&b, "ringlb_backend_state", "gauge",
		    "1 for the backend's current state.");
	FOR_EACH_BACKEND {
		const char *cur = backend_state_name(be);

		backend_labels(p, be, bl, sizeof(bl));
		for (size_t k = 0; k < 4; k++)
			buf_printf(&b,
				   "ringlb_backend_state{%s,state=\"%s\"} %d\n",
				   bl, states[k], strcmp(cur, states[k]) == 0);
	}
	PER_BACKEND("ringlb_backend_weight", "gauge", "Effective weight.",
		    "%u", backend_weight(be));
	PER_BACKEND("ringlb_backend_active_connections", "gauge",
		    "Connections open to the backend now.", "%u",
		    atomic_load(&be->active));
	PER_BACKEND("ringlb_backend_connections_total", "counter",
		    "Connections established to the backend.", "%llu",
		    (unsigned long long)atomic_load(&be->total));
	PER_BACKEND("ringlb_backend_bytes_in_total", "counter",
		    "Bytes from clients to the backend, counted at close.",
		    "%llu", (unsigned long long)atomic_load(&be->bytes_in));
	PER_BACKEND("ringlb_backend_bytes_out_total", "counter",
		    "Bytes from the backend to clients, counted at close.",
		    "%llu", (unsigned long long)atomic_load(&be->bytes_out));
	PER_BACKEND("ringlb_backend_connect_errors_total", "counter",
		    "Failed connect attempts (refused, timed out, ...).",
		    "%llu",
		    (unsigned long long)atomic_load(&be->connect_failures));
	metric_head(&b, "ringlb_backend_ejections_total", "counter",
		    "Ejections (passive health), by cause.");
	FOR_EACH_BACKEND {
		backend_labels(p, be, bl, sizeof(bl));
		buf_printf(&b,
			   "ringlb_backend_ejections_total{%s,cause=\"connect\"} "
			   "%llu\n",
			   bl, (unsigned long long)atomic_load(
				       &be->ejections[EJECT_CONNECT]));
		buf_printf(&b,
			   "ringlb_backend_ejections_total{%s,cause=\"early_close\"} "
			   "%llu\n",
			   bl, (unsigned long long)atomic_load(
				       &be->ejections[EJECT_EARLY_CLOSE]));
	}
	PER_BACKEND("ringlb_backend_check_duration_seconds", "gauge",
		    "Duration of the last health check.", "%.3f",
		    atomic_load(&be->last_latency_ms) / 1000.0);
	metric_head(&b, "ringlb_worker_accepts_total", "counter",
		    "Connections accepted by each worker thread.");
	for (unsigned i = 0; i < st.nworkers; i++)
		buf_printf(&b, "ringlb_worker_accepts_total{worker=\"%u\"} %llu\n",
			   i, (unsigned long long)control_worker_accepts(i));
	metric_head(&b, "ringlb_config_generation", "gauge",
		    "Configuration generation (1 at start, +1 per reload).");
	buf_printf(&b, "ringlb_config_generation %llu\n",
		   (unsigned long long)rt->gen);
	metric_head(&b, "ringlb_reloads_total", "counter",
		    "Reloads, by result.");
	buf_printf(&b, "ringlb_reloads_total{result=\"ok\"} %llu\n",
		   (unsigned long long)st.reloads);
	buf_printf(&b, "ringlb_reloads_total{result=\"error\"} %llu\n",
		   (unsigned long long)st.reload_failures);
	metric_head(&b, "ringlb_ready", "gauge",
		    "1 while GET /ready answers 200 (serving, not withdrawn).");
	buf_printf(&b, "ringlb_ready %d\n",
		   control_readiness() == READY_SERVING);
	metric_head(&b, "ringlb_withdrawn", "gauge",
		    "1 while an operator has withdrawn this instance.");
	buf_printf(&b, "ringlb_withdrawn %d\n", control_withdrawn_ms() != 0);
#undef PER_LISTENER
#undef PER_SPLIT_SIDE
#undef PER_BACKEND
#undef FOR_EACH_BACKEND
	if (b.oom) {
		free(b.s);
		return NULL;
	}
	*len = b.len;
	return b.s;
}

/* Split "/a/b/c" into at most n segments; returns the count, -1 if more. */
static int
split_path(char *url, char **seg, int n)
{
	int k = 0;
	char *save = NULL;

	for (char *t = strtok_r(url, "/", &save); t;
	     t = strtok_r(NULL, "/", &save)) {
		if (k == n)
			return -1;
		seg[k++] = t;
	}
	return k;
}

/* The pool of listener l, copied out under the lock; -ENOENT if none. */
static int
listener_pool_name(const char *l, char *out, size_t size)
{
	const struct listener *ls;
	int rc = -ENOENT;

	control_lock();
	ls = runtime_listener(runtime_current(), l);
	if (ls && ls->to.pool) {
		snprintf(out, size, "%s", ls->to.pool->cfg->name);
		rc = 0;
	} else if (ls) {
		rc = -ENODATA;
	}
	control_unlock();
	return rc;
}

/* Arguments of a request: the path's ':' segments, in order. */
#define ROUTE_ARGS 4

struct route;
typedef enum MHD_Result route_fn(struct MHD_Connection *conn,
				 const struct route *r, char **arg,
				 const struct request *rq);

/* One endpoint: method, path pattern, handler (routes[] below). */
struct route {
	const char *method;
	const char *pattern;
	route_fn *fn;
	const char *action;	/* for backend_action() */
};

/*
 * A change to backend b of pool p: drain, maint or ready (POST, optional
 * body {"close": true}) or weight (PUT {"weight": N}).  The body is checked
 * before the names, so a bad body is a 400 whatever it names.
 */
static enum MHD_Result
backend_action(struct MHD_Connection *conn, const char *p, const char *b,
	       const char *action, const struct request *rq)
{
	char err[256];
	unsigned closing = 0;
	bool close_conns = false;
	json_t *body = NULL, *out;
	json_error_t je;
	int admin, rc;

	if (rq->len) {
		body = json_loadb(rq->body, rq->len, 0, &je);
		if (!body || !json_is_object(body)) {
			json_decref(body);
			return reply_error(conn, 400, NULL,
					   "bad JSON body: %s",
					   body ? "not an object" : je.text);
		}
	}
	if (strcmp(action, "weight") == 0) {
		json_t *w = json_object_get(body, "weight");

		if (!json_is_integer(w) || json_integer_value(w) < 1 ||
		    json_integer_value(w) > CFG_WEIGHT_MAX) {
			json_decref(body);
			return reply_error(conn, 400, NULL,
					   "body must be {\"weight\": N} with "
					   "N an integer from 1 to %d",
					   CFG_WEIGHT_MAX);
		}
		rc = control_set_weight(p, b, (unsigned)json_integer_value(w),
					err, sizeof(err));
	} else {
		json_t *c = json_object_get(body, "close");

		if (strcmp(action, "drain") == 0)
			admin = ADMIN_DRAIN;
		else if (strcmp(action, "maint") == 0)
			admin = ADMIN_MAINT;
		else
			admin = ADMIN_READY;
		if (c && !json_is_boolean(c)) {
			json_decref(body);
			return reply_error(conn, 400, NULL,
					   "\"close\" must be true or false");
		}
		close_conns = json_is_true(c);
		rc = control_set_admin(p, b, admin, close_conns, &closing, err,
				       sizeof(err));
	}
	json_decref(body);
	if (rc == -ENOENT)
		return reply_error(conn, 404, NULL, "%s", err);
	if (rc < 0)
		return reply_error(conn, 400, NULL, "%s", err);
	control_lock();
	{
		struct pool *pl = runtime_pool(runtime_current(), p);
		struct backend *be = pl ? pool_backend(pl, b) : NULL;

		out = be ? backend_json(be, pl, control_now_ms()) :
			   json_object();
	}
	control_unlock();
	if (close_conns)
		json_object_set_new(out, "closing", json_integer(closing));
	return reply_json(conn, 200, out, NULL);
}

static enum MHD_Result
pool_backend_action(struct MHD_Connection *conn, const struct route *r,
	   char **arg, const struct request *rq)
{
	return backend_action(conn, arg[0], arg[1], r->action, rq);
}

/* /listeners/L/backends/B/...: the same on the pool listener L feeds. */
static enum MHD_Result
listener_backend_action(struct MHD_Connection *conn, const struct route *r,
	   char **arg, const struct request *rq)
{
	char pool[CFG_NAME_MAX];

	int rc = listener_pool_name(arg[0], pool, sizeof(pool));

	if (rc == -ENODATA)
		return reply_error(conn, 404, NULL,
				   "listener \"%s\" has no pool of its own "
				   "(it routes by SNI, or splits its clients "
				   "over pools): use /pools/P/backends/B",
				   arg[0]);
	if (rc < 0)
		return reply_error(conn, 404, NULL, "unknown listener \"%s\"",
				   arg[0]);
	return backend_action(conn, pool, arg[1], r->action, rq);
}

/*
 * The split of listener arg[0], or of its route with server name arg[1]:
 * GET shows it, PUT {"weights": {"POOL": N, ...}} sets weights, DELETE
 * goes back to the file's weights.  The body is checked before the names.
 */
static enum MHD_Result
split_action(struct MHD_Connection *conn, const struct route *r,
	     char **arg, const struct request *rq)
{
	const char *pools[CFG_SPLIT_MAX] = { NULL };
	unsigned weights[CFG_SPLIT_MAX] = { 0 };
	const char *usage = "body must be {\"weights\": {\"POOL\": N, ...}} "
			    "with N an integer from 0 to 10000";
	char err[1280];
	json_t *body = NULL, *ws, *v, *out = NULL;
	json_error_t je;
	const char *name;
	size_t n = 0;
	int rc = 0;

	if (strcmp(r->method, "PUT") == 0) {
		if (!rq->len)
			return reply_error(conn, 400, NULL, "%s", usage);
		body = json_loadb(rq->body, rq->len, 0, &je);
		if (!body || !json_is_object(body)) {
			rc = reply_error(conn, 400, NULL, "bad JSON body: %s",
					 body ? "not an object" : je.text);
			json_decref(body);
			return rc;
		}
		ws = json_object_get(body, "weights");
		if (!json_is_object(ws) || json_object_size(ws) == 0 ||
		    json_object_size(ws) > CFG_SPLIT_MAX ||
		    json_object_size(body) != 1) {
			json_decref(body);
			return reply_error(conn, 400, NULL, "%s", usage);
		}
		json_object_foreach(ws, name, v) {
			if (!json_is_integer(v) || json_integer_value(v) < 0 ||
			    json_integer_value(v) > CFG_SPLIT_WEIGHT_MAX) {
				json_decref(body);
				return reply_error(conn, 400, NULL, "%s",
						   usage);
			}
			pools[n] = name;
			weights[n++] = (unsigned)json_integer_value(v);
		}
	}
	if (strcmp(r->method, "GET") != 0)
		rc = control_set_split(arg[0], arg[1], pools, weights, n,
				       body == NULL, err, sizeof(err));
	json_decref(body);
	if (rc == -ENOENT)
		return reply_error(conn, 404, NULL, "%s", err);
	if (rc < 0)
		return reply_error(conn, 400, NULL, "%s", err);
	control_lock();
	{
		const struct split *sp = control_split(arg[0], arg[1], err,
						       sizeof(err));

		if (sp)
			out = split_json(sp, control_now_ms());
	}
	control_unlock();
	if (!out)
		return reply_error(conn, 404, NULL, "%s", err);
	return reply_json(conn, 200, out, NULL);
}

/*
 * POST /upgrade, body optional {"binary": PATH}: start the new binary and
 * hand over to it; the reply comes once it serves (or failed).
 */
static enum MHD_Result
post_upgrade(struct MHD_Connection *conn, const struct route *r,
	     char **arg, const struct request *rq)
{
	struct upgrade_result res;
	char err[1024], binary[4096] = "";
	json_t *body = NULL, *b;
	json_error_t je;
	int rc;

	if (rq->len) {
		body = json_loadb(rq->body, rq->len, 0, &je);
		if (!json_is_object(body)) {
			json_decref(body);
			return reply_error(conn, 400, NULL, "bad JSON body: %s",
					   body ? "not an object" : je.text);
		}
		b = json_object_get(body, "binary");
		if ((b && !json_is_string(b)) || json_object_size(body) > 1 ||
		    (json_object_size(body) == 1 && !b)) {
			json_decref(body);
			return reply_error(conn, 400, NULL,
					   "body must be {} or {\"binary\": "
					   "\"/path/to/ringlb\"}");
		}
		if (b)
			snprintf(binary, sizeof(binary), "%s",
				 json_string_value(b));
		json_decref(body);
		if (b && binary[0] != '/')
			return reply_error(conn, 400, NULL,
					   "\"binary\" must be an absolute "
					   "path");
	}
	rc = upgrade_run(binary[0] ? binary : NULL, &res, err, sizeof(err));
	if (rc == -EBUSY || rc == -EALREADY)
		return reply_error(conn, 409, NULL, "%s", err);
	if (rc < 0)
		return reply_error(conn, 500, NULL, "%s", err);
	return reply_json(conn, 200,
			  json_pack("{s:i,s:i,s:i}", "pid", (int)res.pid,
				    "handed_over", (int)res.handed, "left",
				    (int)res.left),
			  NULL);
}

/*
 * GET /ready: 200 while ringlb serves; 503 while it is starting, withdrawn
 * or stopping.  For routing daemons' health hooks (BGP, VRRP): no lock,
 * no allocation beyond the reply.
 */
static enum MHD_Result
get_ready(struct MHD_Connection *conn, const struct route *r, char **arg,
	  const struct request *rq)
{
	enum readiness st = control_readiness();

	/*
	 * A request on a connection kept from before an upgrade: the new
	 * process serves this instance now (the upgrade went through), so
	 * the answer is 200; the connection closes after it, and the next
	 * question reaches the new process.  (Withdrawn: so is the new one.)
	 */
	if (atomic_load(&handed_over) && !control_withdrawn_ms())
		return reply_json(conn, 200,
				  json_pack("{s:b,s:s,s:I}", "ready", 1,
					    "state", "handed-over",
					    "withdrawn_ms", (json_int_t)-1),
				  NULL);
	if (atomic_load(&handed_over))
		st = READY_WITHDRAWN;
	return reply_json(conn, st == READY_SERVING ? 200 : 503,
			  json_pack("{s:b,s:s,s:I}", "ready",
				    st == READY_SERVING, "state",
				    control_readiness_name(st),
				    "withdrawn_ms",
				    withdrawn_for(control_now_ms())),
			  NULL);
}

/*
 * POST /withdraw and /rejoin: say 503 (or 200 again) on GET /ready, so the
 * routing daemon takes this instance out of (or back into) the VIP's
 * paths; connections are served and accepted as before either way.
 */
static enum MHD_Result
post_withdraw(struct MHD_Connection *conn, const struct route *r,
	      char **arg, const struct request *rq)
{
	bool on = strcmp(r->action, "withdraw") == 0, changed;
	char line[256];

	if (rq->len)
		return reply_error(conn, 400, NULL, "POST /%s takes no body",
				   r->action);
	changed = control_withdraw(on);
	control_status_line(line, sizeof(line));
	systemd_notify("STATUS=%s", line);
	return reply_json(conn, 200,
			  json_pack("{s:s,s:b,s:I}", "state",
				    control_readiness_name(control_readiness()),
				    "changed", changed, "active",
				    (json_int_t)control_open_conns()),
			  NULL);
}

static enum MHD_Result
get_status(struct MHD_Connection *conn, const struct route *r,
	   char **arg, const struct request *rq)
{
	json_t *j;

	control_lock();
	j = status_json();
	control_unlock();
	return reply_json(conn, 200, j, NULL);
}

static enum MHD_Result
get_metrics(struct MHD_Connection *conn, const struct route *r,
	   char **arg, const struct request *rq)
{
	size_t len = 0;
	char *text;

	control_lock();
	text = metrics_text(&len);
	control_unlock();
	if (!text)
		return reply_error(conn, 500, NULL, "out of memory");
	return reply_text(conn, 200, text, len, "text/plain; version=0.0.4",
			  NULL);
}

static enum MHD_Result
post_reload(struct MHD_Connection *conn, const struct route *r,
	   char **arg, const struct request *rq)
{
	char err[1024];
	json_t *j;

	if (control_reload(err, sizeof(err)) < 0)
		return reply_error(conn, 400, NULL, "%s", err);
	control_lock();
	j = json_pack("{s:b,s:I}", "ok", 1, "generation",
		      (json_int_t)runtime_current()->gen);
	control_unlock();
	return reply_json(conn, 200, j, NULL);
}

/*
 * GET of a listener or pool, or one of its backends: arg[0] names it,
 * arg[1] (if given) the backend.  Rendered under the lock.
 */
static enum MHD_Result
get_object(struct MHD_Connection *conn, char **arg, bool pool)
{
	const struct runtime *rt;
	const struct listener *l = NULL;
	const struct pool *p = NULL;
	const struct backend *be = NULL;
	const char *what = pool ? "pool" : "listener";
	uint64_t now = control_now_ms();
	json_t *j = NULL;

	control_lock();
	rt = runtime_current();
	if (pool) {
		p = runtime_pool(rt, arg[0]);
	} else {
		l = runtime_listener(rt, arg[0]);
		p = l ? l->to.pool : NULL;
	}
	if (p && arg[1])
		be = pool_backend(p, arg[1]);
	if (be)
		j = backend_json(be, p, now);
	else if (!arg[1] && (pool ? p != NULL : l != NULL))
		j = pool ? pool_json(rt, p, now) : listener_json(l, now);
	control_unlock();
	if (pool ? !p : !l)
		return reply_error(conn, 404, NULL, "unknown %s \"%s\"", what,
				   arg[0]);
	if (arg[1] && !be)
		return reply_error(conn, 404, NULL,
				   "unknown backend \"%s\" in %s \"%s\"",
				   arg[1], what, arg[0]);
	if (!j)
		return reply_error(conn, 500, NULL, "out of memory");
	return reply_json(conn, 200, j, NULL);
}

static enum MHD_Result
get_listener(struct MHD_Connection *conn, const struct route *r,
	   char **arg, const struct request *rq)
{
	return get_object(conn, arg, false);
}

static enum MHD_Result
get_pool(struct MHD_Connection *conn, const struct route *r,
	   char **arg, const struct request *rq)
{
	return get_object(conn, arg, true);
}

/* GET /listeners or /pools: every one of them. */
static enum MHD_Result
get_all(struct MHD_Connection *conn, bool pools)
{
	const struct runtime *rt;
	uint64_t now = control_now_ms();
	json_t *a = json_array();

	control_lock();
	rt = runtime_current();
	if (pools)
		for (size_t i = 0; i < rt->npools; i++)
			json_array_append_new(a, pool_json(rt, &rt->pools[i],
							   now));
	else
		for (size_t i = 0; i < rt->nlisteners; i++)
			json_array_append_new(
				a, listener_json(&rt->listeners[i], now));
	control_unlock();
	return reply_json(conn, 200,
			  json_pack("{s:o}", pools ? "pools" : "listeners", a),
			  NULL);
}

static enum MHD_Result
get_listeners(struct MHD_Connection *conn, const struct route *r,
	   char **arg, const struct request *rq)
{
	return get_all(conn, false);
}

static enum MHD_Result
get_pools(struct MHD_Connection *conn, const struct route *r,
	   char **arg, const struct request *rq)
{
	return get_all(conn, true);
}

/*
 * GET /: the status page (src/status.html).  It loads nothing from
 * anywhere, and the policy reply_text() sends with HTML says so: it may
 * only run its own inline script and style and ask this origin.
 */
static enum MHD_Result
get_page(struct MHD_Connection *conn, const struct route *r, char **arg,
	 const struct request *rq)
{
	size_t len;
	const char *page = status_page(&len);
	char *copy = malloc(len);

	if (!copy)
		return MHD_NO;
	memcpy(copy, page, len);
	return reply_text(conn, 200, copy, len, "text/html; charset=utf-8",
			  NULL);
}

/* GET /token: what a page sends as X-Ringlb-Token (see page_token). */
static enum MHD_Result
get_token(struct MHD_Connection *conn, const struct route *r, char **arg,
	  const struct request *rq)
{
	if (rq->host_bad)
		return reply_error(conn, 403, NULL,
				   "Host is not an IP address, localhost or "
				   "one of admin.allowed_hosts");
	if (rq->cross_site)
		return reply_error(conn, 403, NULL,
				   "cross-site request refused");
	return reply_json(conn, 200,
			  json_pack("{s:s,s:s}", "header", "X-Ringlb-Token",
				    "token", page_token),
			  NULL);
}

/*
 * Every endpoint.  A ':' segment matches any one segment and is passed to
 * the handler; its name only shows in the help text of a 404.
 */
static const struct route routes[] = {
	{ "GET", "/", get_page, NULL },
	{ "GET", "/token", get_token, NULL },
	{ "GET", "/status", get_status, NULL },
	{ "GET", "/ready", get_ready, NULL },
	{ "POST", "/withdraw", post_withdraw, "withdraw" },
	{ "POST", "/rejoin", post_withdraw, "rejoin" },
	{ "GET", "/metrics", get_metrics, NULL },
	{ "POST", "/reload", post_reload, NULL },
	{ "POST", "/upgrade", post_upgrade, NULL },
	{ "GET", "/pools", get_pools, NULL },
	{ "GET", "/pools/:P", get_pool, NULL },
	{ "GET", "/pools/:P/backends/:B", get_pool, NULL },
	{ "POST", "/pools/:P/backends/:B/drain", pool_backend_action,
	  "drain" },
	{ "POST", "/pools/:P/backends/:B/maint", pool_backend_action,
	  "maint" },
	{ "POST", "/pools/:P/backends/:B/ready", pool_backend_action,
	  "ready" },
	{ "PUT", "/pools/:P/backends/:B/weight", pool_backend_action,
	  "weight" },
	{ "GET", "/listeners", get_listeners, NULL },
	{ "GET", "/listeners/:L", get_listener, NULL },
	{ "GET", "/listeners/:L/backends/:B", get_listener, NULL },
	{ "POST", "/listeners/:L/backends/:B/drain",
	  listener_backend_action, "drain" },
	{ "POST", "/listeners/:L/backends/:B/maint",
	  listener_backend_action, "maint" },
	{ "POST", "/listeners/:L/backends/:B/ready",
	  listener_backend_action, "ready" },
	{ "PUT", "/listeners/:L/backends/:B/weight",
	  listener_backend_action, "weight" },
	{ "GET", "/listeners/:L/split", split_action, NULL },
	{ "PUT", "/listeners/:L/split", split_action, NULL },
	{ "DELETE", "/listeners/:L/split", split_action, NULL },
	{ "GET", "/listeners/:L/routes/:S/split", split_action, NULL },
	{ "PUT", "/listeners/:L/routes/:S/split", split_action, NULL },
	{ "DELETE", "/listeners/:L/routes/:S/split", split_action, NULL },
};

#define NROUTES (sizeof(routes) / sizeof(routes[0]))
#define SEG_MAX 8

/*
 * Does the path seg[0..n) match pattern?  Fills arg[] with the segments
 * that stand for ':' ones, and NULLs after them.
 */
static bool
route_match(const char *pattern, char **seg, int n, char **arg)
{
	char pat[128], *pseg[SEG_MAX];
	int m, k = 0;

	snprintf(pat, sizeof(pat), "%s", pattern);
	m = split_path(pat, pseg, SEG_MAX);
	if (m != n)
		return false;
	for (int i = 0; i < n; i++)
		if (pseg[i][0] != ':' && strcmp(pseg[i], seg[i]) != 0)
			return false;
	for (int i = 0; i < ROUTE_ARGS; i++)
		arg[i] = NULL;
	for (int i = 0; i < n && k < ROUTE_ARGS - 1; i++)
		if (pseg[i][0] == ':')
			arg[k++] = seg[i];
	return true;
}

/* "GET /status, GET /metrics, ..." with ':X' shown as 'X'. */
static void
route_help(char *out, size_t size)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < NROUTES && o < size; i++) {
		int n = snprintf(out + o, size - o, "%s%s ", i ? ", " : "",
				 routes[i].method);

		if (n < 0)
			return;
		o += (size_t)n;
		for (const char *c = routes[i].pattern; *c && o + 1 < size;
		     c++)
			if (*c != ':')
				out[o++] = *c;
		out[o < size ? o : size - 1] = '\0';
	}
}

static enum MHD_Result
route(struct MHD_Connection *conn, const char *url, const char *method,
      const struct request *rq)
{
	char path[512], *seg[SEG_MAX], *arg[ROUTE_ARGS], allow[64];
	char help[2048];
	int n;

	if (rq->too_big)
		return reply_error(conn, 413, NULL, "body larger than %d bytes",
				   BODY_MAX);
	snprintf(path, sizeof(path), "%s", url);
	n = split_path(path, seg, SEG_MAX);
	/* The page itself and the routing daemon's probe need no token. */
	if (rq->auth_bad && !(strcmp(method, "GET") == 0 &&
			      (n == 0 || (n == 1 && strcmp(seg[0], "ready") == 0))))
		return reply_error(conn, 401, NULL,
				   "this listener wants \"Authorization: "
				   "Bearer TOKEN\" (admin.token_file)");
	if (((rq->from_page && rq->token_bad) || rq->cross_site) &&
	    strcmp(method, "GET") != 0)
		return reply_error(conn, 403, NULL,
				   "a change from a web page must carry "
				   "X-Ringlb-Token (GET /token); cross-site "
				   "requests are refused");
	allow[0] = '\0';
	for (size_t i = 0; n >= 0 && i < NROUTES; i++) {
		if (!route_match(routes[i].pattern, seg, n, arg))
			continue;
		if (strcmp(routes[i].method, method) == 0)
			return routes[i].fn(conn, &routes[i], arg, rq);
		if (!strstr(allow, routes[i].method))
			snprintf(allow + strlen(allow),
				 sizeof(allow) - strlen(allow), "%s%s",
				 allow[0] ? ", " : "", routes[i].method);
	}
	if (allow[0])
		return reply_error(conn, 405, allow, "use %s", allow);
	route_help(help, sizeof(help));
	return reply_error(conn, 404, NULL, "no such endpoint: %s %s (try: %s)",
			   method, url, help);
}

/* Equal, in time that does not depend on where they differ. */
static bool
secret_eq(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char d = la != lb;

	for (size_t i = 0; i < la && i < lb; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

/*
 * Host: an IPv4 or [IPv6] literal, localhost (or a name under it), or an
 * admin.allowed_hosts name, with an optional port.
 */
static bool
host_allowed(const char *host)
{
	char name[CFG_HOST_NAME_MAX];
	unsigned char addr[16];
	const char *colon;
	size_t len;

	if (host[0] == '[') {
		const char *end = strchr(host, ']');

		len = end ? (size_t)(end - host - 1) : 0;
		if (!end || len >= sizeof(name) ||
		    (end[1] && (end[1] != ':' || !end[2] ||
				strspn(end + 2, "0123456789") !=
					strlen(end + 2))))
			return false;
		snprintf(name, sizeof(name), "%.*s", (int)len, host + 1);
		return inet_pton(AF_INET6, name, addr) == 1;
	}
	colon = strchr(host, ':');
	len = colon ? (size_t)(colon - host) : strlen(host);
	if (colon && (!colon[1] || strspn(colon + 1, "0123456789") !=
					   strlen(colon + 1)))
		return false;
	if (len && host[len - 1] == '.')
		len--;
	if (len == 0 || len >= sizeof(name))
		return false;
	snprintf(name, sizeof(name), "%.*s", (int)len, host);
	if (inet_pton(AF_INET, name, addr) == 1 ||
	    strcasecmp(name, "localhost") == 0 ||
	    (len > 10 && strcasecmp(name + len - 10, ".localhost") == 0))
		return true;
	for (size_t i = 0; i < guard_cfg.nallowed_hosts; i++)
		if (strcasecmp(name, guard_cfg.allowed_hosts[i]) == 0)
			return true;
	return false;
}

/* Read once, with the first call for a request: its headers are in. */
static void
request_guard(const struct admin_srv *s, struct MHD_Connection *conn,
	      struct request *rq)
{
	const char *v;

#define HDR(name) MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name)
	v = HDR("Sec-Fetch-Site");
	rq->from_page = v || HDR("Origin") || HDR("Referer");
	/* "none": typed by the user; "same-site": a sibling port or name. */
	rq->cross_site = v && strcmp(v, "same-origin") != 0 &&
			 strcmp(v, "none") != 0;
	v = HDR("X-Ringlb-Token");
	rq->token_bad = !v || !secret_eq(v, page_token);
	v = HDR("Host");
	rq->host_bad = v && !host_allowed(v);
	if (s == &srv_tcp && guard_cfg.token[0]) {
		v = HDR("Authorization");
		rq->auth_bad = !v || strncasecmp(v, "Bearer ", 7) != 0 ||
			       !secret_eq(v + 7 + strspn(v + 7, " "),
					  guard_cfg.token);
	}
#undef HDR
}

static enum MHD_Result
handler(void *cls, struct MHD_Connection *conn, const char *url,
	const char *method, const char *version, const char *upload_data,
	size_t *upload_data_size, void **con_cls)
{
	struct request *rq = *con_cls;

	if (!rq) {
		rq = calloc(1, sizeof(*rq));
		if (!rq)
			return MHD_NO;
		request_guard(cls, conn, rq);
		*con_cls = rq;
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (!rq->too_big && rq->len + *upload_data_size <= BODY_MAX) {
			char *nb = realloc(rq->body,
					   rq->len + *upload_data_size + 1);

			if (!nb)
				return MHD_NO;
			memcpy(nb + rq->len, upload_data, *upload_data_size);
			rq->body = nb;
			rq->len += *upload_data_size;
			rq->body[rq->len] = '\0';
		} else {
			rq->too_big = true;
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	return route(conn, url, method, rq);
}

static void
completed(void *cls, struct MHD_Connection *conn, void **con_cls,
	  enum MHD_RequestTerminationCode toe)
{
	struct request *rq = *con_cls;

	if (rq) {
		free(rq->body);
		free(rq);
		*con_cls = NULL;
	}
}

static int
unix_open(const struct cfg_admin *a, char *err, size_t errlen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char dir[CFG_SOCKET_PATH_MAX];
	mode_t old;
	int fd, rc;

	/* An upgrade: the running process's socket, file and all. */
	fd = upgrade_admin_fd(a->socket);
	if (fd >= 0) {
		snprintf(sock_path, sizeof(sock_path), "%s", a->socket);
		srv_unix.fd = fd;
		return 0;
	}
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", a->socket);
	snprintf(dir, sizeof(dir), "%s", a->socket);
	/* /run/ringlb may not exist yet on a fresh machine. */
	if (mkdir(dirname(dir), 0755) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "admin socket %s: cannot create its "
			 "directory: %s", a->socket, strerror(errno));
		return -errno;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	/* A live ringlb answers on it: never steal its socket. */
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		close(fd);
		snprintf(err, errlen, "admin socket %s is in use by a running "
			 "process (another ringlb?)", a->socket);
		return -EADDRINUSE;
	}
	close(fd);
	if (unlink(a->socket) < 0 && errno != ENOENT)
		goto fail;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	/* Create it with no access, then open it up to exactly `mode`. */
	old = umask(0777);
	rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (rc < 0 || chmod(a->socket, a->mode) < 0 || listen(fd, 64) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		goto fail;
	}
	snprintf(sock_path, sizeof(sock_path), "%s", a->socket);
	srv_unix.fd = fd;
	return 0;
fail:
	snprintf(err, errlen, "admin socket %s: %s", a->socket,
		 strerror(errno));
	return -errno;
}

static int
tcp_open(const struct cfg_admin *a, char *err, size_t errlen)
{
	int one = 1;
	int fd = upgrade_admin_fd(NULL);

	if (fd >= 0) {
		srv_tcp.fd = fd;
		return 0;
	}
	fd = socket(a->listen.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (const struct sockaddr *)&a->listen.ss, a->listen.len) < 0 ||
	    listen(fd, 64) < 0) {
		int e = errno;

		if (fd >= 0)
			close(fd);
		snprintf(err, errlen, "admin listen %s: %s", a->listen.text,
			 strerror(e));
		return -e;
	}
	srv_tcp.fd = fd;
	return 0;
}

static int
page_token_make(char *err, size_t errlen)
{
	unsigned char r[16];

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
		snprintf(err, errlen, "admin: no random bytes for the page "
			 "token: %s", strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < sizeof(r); i++)
		snprintf(page_token + 2 * i, 3, "%02x", r[i]);
	return 0;
}

int
admin_start(const struct cfg_admin *a, char *err, size_t errlen)
{
	int rc;

	if (!a->enabled)
		return 0;
	guard_cfg = *a;
	if (page_token_make(err, errlen) < 0)
		return -EIO;
	rc = unix_open(a, err, errlen);
	if (rc < 0)
		return rc;
	if (a->has_listen) {
		rc = tcp_open(a, err, errlen);
		if (rc < 0) {
			admin_stop();
			return rc;
		}
	}
	return 0;
}

static int
srv_run(struct admin_srv *s, const char *what, char *err, size_t errlen)
{
	if (s->fd < 0)
		return 0;
	/* ITC: so that an upgrade can stop it accepting (quiesce). */
	s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
					MHD_USE_AUTO | MHD_USE_ITC,
				0, NULL, NULL, handler, s,
				MHD_OPTION_LISTEN_SOCKET, s->fd,
				MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
				MHD_OPTION_CONNECTION_LIMIT, ADMIN_CONN_MAX,
				MHD_OPTION_CONNECTION_TIMEOUT,
				(unsigned)ADMIN_TIMEOUT_S, MHD_OPTION_END);
	if (!s->d) {
		snprintf(err, errlen, "admin %s: cannot start the HTTP server",
			 what);
		return -EIO;
	}
	return 0;
}

int
admin_run(char *err, size_t errlen)
{
	if (srv_run(&srv_unix, sock_path, err, errlen) < 0 ||
	    srv_run(&srv_tcp, "listen", err, errlen) < 0)
		return -EIO;
	if (srv_unix.d)
		log_info("admin API on %s", sock_path);
	if (srv_tcp.d)
		log_info("admin API on TCP as well");
	return 0;
}

static void
srv_stop(struct admin_srv *s)
{
	if (s->d) {
		/* MHD closes the listen socket it was given. */
		MHD_stop_daemon(s->d);
		s->d = NULL;
		s->fd = -1;
	}
	if (s->fd >= 0) {
		close(s->fd);
		s->fd = -1;
	}
}

int
admin_listen_fd(char *path, size_t size)
{
	if (path) {
		snprintf(path, size, "%s", sock_path);
		return srv_unix.fd;
	}
	return srv_tcp.fd;
}

/*
 * The new process accepts on our admin sockets now: stop accepting (the
 * requests open here, such as the upgrade's own, still get replies) and
 * leave the socket file to it.
 */
static void
srv_quiesce(struct admin_srv *s)
{
	if (s->d) {
		MHD_socket fd = MHD_quiesce_daemon(s->d);

		if (fd != MHD_INVALID_SOCKET)
			close(fd);
		s->fd = -1;
	}
}

void
admin_handover(void)
{
	srv_quiesce(&srv_unix);
	srv_quiesce(&srv_tcp);
	atomic_store(&handed_over, true);
}

void
admin_stop(void)
{
	srv_stop(&srv_unix);
	srv_stop(&srv_tcp);
	if (sock_path[0] && !atomic_load(&handed_over)) {
		unlink(sock_path);
		sock_path[0] = '\0';
	}
}

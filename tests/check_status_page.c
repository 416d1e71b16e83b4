/*
 * check_status_page.c: the status page (GET /) and what guards the admin
 * API's changes, against the real binary.
 *
 * Without a browser: the page is served on the Unix socket and on TCP,
 * byte for byte src/status.html, with a policy that forbids framing and
 * foreign assets; a change that a browser marks (Origin, Referer,
 * Sec-Fetch-Site) needs the process's X-Ringlb-Token, which GET /token
 * gives only to a Host that is an address, localhost or an allowed name;
 * with admin.token_file the TCP listener wants the bearer token (but for
 * GET / and GET /ready) and the Unix socket does not.
 *
 * In a real browser (Debian's chromium, driven headless through
 * chromium-driver's WebDriver; installed when missing, else skipped): the
 * page shows every backend with its state as the API gives it (up, down,
 * maintenance, up/marked, backup), a click on "drain" drains the backend
 * (checked through the API) and the page shows it, a weight typed in and
 * set is applied; a screenshot is kept; and a page from another origin
 * can neither read the token nor change anything with a form post or a
 * no-cors fetch.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "h_private.h"

/* A request with extra headers to the TCP admin at port; status code. */
static int
tcp_req(int port, const char *method, const char *path, const char *hdrs,
	const char *body, struct h_http *r)
{
	ck_assert_int_eq(h_http_hdr(NULL, "127.0.0.1", port, method, path,
				    hdrs, body, 10000, r),
			 0);
	return r->status;
}

static int
tcp_code(int port, const char *method, const char *path, const char *hdrs,
	 const char *body)
{
	struct h_http r;
	int code = tcp_req(port, method, path, hdrs, body, &r);

	h_http_free(&r);
	return code;
}

/* The admin state ("ready", "drain", "maint") of pool/backend. */
static const char *
admin_of(const struct h_lb *lb, const char *pool, const char *be,
	 char *buf, size_t size)
{
	char path[128];
	json_t *j;

	snprintf(path, sizeof(path), "/pools/%s/backends/%s", pool, be);
	j = h_api(lb, "GET", path, NULL, 200);
	snprintf(buf, size, "%s", h_jstr(j, "admin"));
	json_decref(j);
	return buf;
}

/* Pool "app" of a (name-sending) and b; TCP admin on *aport. */
static json_t *
app_cfg(const struct h_backend *a, const struct h_backend *b, int *aport)
{
	json_t *cfg = hc_new(), *p, *l;
	char listen[32];

	*aport = h_free_port();
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", *aport);
	hc_set(cfg, "admin.listen", json_string(listen));
	p = hc_pool(cfg, "app");
	hc_set(p, "health_check", hc_json("{ \"enabled\": false }"));
	hc_backend(p, a, 1);
	hc_backend(p, b, 1);
	l = hc_listener(cfg, "web", 0);
	hc_set(l, "pool", json_string("app"));
	return cfg;
}

START_TEST(page_served)
{
	struct h_backend a, b;
	struct h_lb lb;
	struct h_http r;
	char sock[200], v[512];
	char *want = h_read_file("src/status.html");
	int aport;
	json_t *cfg;

	ck_assert_msg(want != NULL, "src/status.html: %s", strerror(errno));
	h_backend_up(&a, H_NAME, "a");
	h_backend_up(&b, H_NAME, "b");
	cfg = app_cfg(&a, &b, &aport);
	ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, hc_port(hc_get(cfg,
		"listeners.0")), NULL), 0);
	snprintf(sock, sizeof(sock), "%s/admin.sock", lb.dir);
	for (int tcp = 0; tcp < 2; tcp++) {
		ck_assert_int_eq(h_http(tcp ? NULL : sock, "127.0.0.1", aport,
					"GET", "/", NULL, 10000, &r),
				 0);
		ck_assert_int_eq(r.status, 200);
		ck_assert_msg(r.body_len == strlen(want) &&
				      memcmp(r.body, want, r.body_len) == 0,
			      "GET / (%s) is not src/status.html (%zu bytes, "
			      "want %zu)", tcp ? "TCP" : "Unix", r.body_len,
			      strlen(want));
		ck_assert(h_http_header(&r, "Content-Type", v, sizeof(v)));
		ck_assert_str_eq(v, "text/html; charset=utf-8");
		ck_assert(h_http_header(&r, "Content-Security-Policy", v,
					sizeof(v)));
		ck_assert_msg(strstr(v, "default-src 'none'") &&
				      strstr(v, "frame-ancestors 'none'") &&
				      strstr(v, "connect-src 'self'"),
			      "policy: %s", v);
		ck_assert(h_http_header(&r, "X-Frame-Options", v, sizeof(v)));
		ck_assert_str_eq(v, "DENY");
		h_http_free(&r);
	}
	/* Nothing in it is fetched from elsewhere. */
	ck_assert_ptr_null(strstr(want, "src=\"http"));
	ck_assert_ptr_null(strstr(want, "href=\"http"));
	ck_assert_ptr_null(strstr(want, "@import"));
	free(want);
	json_decref(cfg);
}
END_TEST

START_TEST(changes_need_the_token)
{
	struct h_backend a, b;
	struct h_lb lb;
	struct h_http r;
	char hdr[512], st[32];
	const char *tok;
	json_t *cfg, *j;
	int aport;

	h_backend_up(&a, H_NAME, "a");
	h_backend_up(&b, H_NAME, "b");
	cfg = app_cfg(&a, &b, &aport);
	hc_set(cfg, "admin.allowed_hosts", hc_json("[\"lb1.example.\"]"));
	ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, hc_port(hc_get(cfg,
		"listeners.0")), NULL), 0);

	/* What a foreign page's form sends: refused, nothing changes. */
	ck_assert_int_eq(tcp_req(aport, "POST", "/pools/app/backends/a/drain",
				 "Origin: http://evil.example\r\n"
				 "Content-Type: application/x-www-form-"
				 "urlencoded\r\n",
				 "", &r),
			 403);
	ck_assert_msg(strstr(r.body, "X-Ringlb-Token"), "%s", r.body);
	h_http_free(&r);
	ck_assert_int_eq(tcp_code(aport, "PUT", "/pools/app/backends/a/weight",
				  "Referer: http://evil.example/x\r\n"
				  "Content-Type: text/plain\r\n",
				  "{\"weight\": 7}"),
			 403);
	ck_assert_int_eq(tcp_code(aport, "POST", "/pools/app/backends/a/maint",
				  "Sec-Fetch-Site: same-origin\r\n", NULL),
			 403);
	ck_assert_int_eq(tcp_code(aport, "POST", "/reload",
				  "Origin: null\r\n", NULL),
			 403);
	ck_assert_str_eq(admin_of(&lb, "app", "a", st, sizeof(st)), "ready");
	j = h_api(&lb, "GET", "/pools/app/backends/a", NULL, 200);
	ck_assert_int_eq(h_jint(j, "weight"), 1);
	json_decref(j);

	/* GET /token: for an address, localhost or an allowed name. */
	ck_assert_int_eq(tcp_code(aport, "GET", "/token",
				  "Host: evil.example\r\n", NULL),
			 403);
	ck_assert_int_eq(tcp_code(aport, "GET", "/token",
				  "Host: 127.0.0.1.evil.example:80\r\n", NULL),
			 403);
	ck_assert_int_eq(tcp_code(aport, "GET", "/token",
				  "Host: localhost:1\r\nSec-Fetch-Site: "
				  "cross-site\r\n", NULL),
			 403);
	ck_assert_int_eq(tcp_code(aport, "GET", "/token",
				  "Host: LB1.example\r\n", NULL),
			 200);
	ck_assert_int_eq(tcp_code(aport, "GET", "/token",
				  "Host: [::1]:9\r\n", NULL),
			 200);
	ck_assert_int_eq(tcp_req(aport, "GET", "/token",
				 "Host: 127.0.0.1\r\n", NULL, &r),
			 200);
	j = json_loads(r.body, 0, NULL);
	h_http_free(&r);
	tok = h_jstr(j, "token");
	ck_assert_uint_eq(strlen(tok), 32);

	/* The page's own change: Origin and the token. */
	snprintf(hdr, sizeof(hdr),
		 "Origin: http://127.0.0.1:%d\r\nSec-Fetch-Site: same-origin\r\n"
		 "X-Ringlb-Token: %s\r\nContent-Type: application/json\r\n",
		 aport, tok);
	ck_assert_int_eq(tcp_code(aport, "POST", "/pools/app/backends/a/drain",
				  hdr, ""),
			 200);
	ck_assert_str_eq(admin_of(&lb, "app", "a", st, sizeof(st)), "drain");
	ck_assert_int_eq(tcp_code(aport, "PUT", "/pools/app/backends/a/weight",
				  hdr, "{\"weight\": 5}"),
			 200);
	/* A wrong token, or the right one sent cross-site: refused. */
	snprintf(hdr, sizeof(hdr),
		 "Origin: http://127.0.0.1:%d\r\nX-Ringlb-Token: %.31sx\r\n",
		 aport, tok);
	ck_assert_int_eq(tcp_code(aport, "POST", "/pools/app/backends/a/ready",
				  hdr, NULL),
			 403);
	snprintf(hdr, sizeof(hdr),
		 "Sec-Fetch-Site: cross-site\r\nX-Ringlb-Token: %s\r\n", tok);
	ck_assert_int_eq(tcp_code(aport, "POST", "/pools/app/backends/a/ready",
				  hdr, NULL),
			 403);
	ck_assert_str_eq(admin_of(&lb, "app", "a", st, sizeof(st)), "drain");
	json_decref(j);

	/* ringlbctl and curl send no browser marks: as before. */
	ck_assert_int_eq(tcp_code(aport, "POST", "/pools/app/backends/a/ready",
				  NULL, NULL),
			 200);
	ck_assert_str_eq(admin_of(&lb, "app", "a", st, sizeof(st)), "ready");
	{
		struct h_run *run = h_ctl(&lb, "drain", "app", "b");

		ck_assert_msg(WIFEXITED(run->status) &&
				      WEXITSTATUS(run->status) == 0,
			      "ringlbctl drain: %s", run->err);
		free(run);
	}
	ck_assert_str_eq(admin_of(&lb, "app", "b", st, sizeof(st)), "drain");
	json_decref(cfg);
}
END_TEST

START_TEST(bearer_token_on_tcp)
{
	static const char secret[] = "s3cret-0123456789abcdef";
	struct h_backend a, b;
	struct h_lb lb;
	struct h_http r;
	char dir[128], file[192], sock[200], hdr[256], v[128];
	json_t *cfg;
	int aport;

	h_backend_up(&a, H_NAME, "a");
	h_backend_up(&b, H_NAME, "b");
	ck_assert_int_eq(h_tempdir(dir, sizeof(dir)), 0);
	snprintf(file, sizeof(file), "%s/admin.token", dir);
	snprintf(hdr, sizeof(hdr), "%s\n", secret);
	ck_assert_int_eq(h_write_file(file, hdr), 0);
	ck_assert_int_eq(chmod(file, 0600), 0);
	cfg = app_cfg(&a, &b, &aport);
	hc_set(cfg, "admin.token_file", json_string(file));
	ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, hc_port(hc_get(cfg,
		"listeners.0")), NULL), 0);
	snprintf(sock, sizeof(sock), "%s/admin.sock", lb.dir);

	ck_assert_int_eq(tcp_req(aport, "GET", "/status", NULL, NULL, &r),
			 401);
	ck_assert(h_http_header(&r, "WWW-Authenticate", v, sizeof(v)));
	ck_assert_msg(strncmp(v, "Bearer", 6) == 0, "%s", v);
	h_http_free(&r);
	ck_assert_int_eq(tcp_code(aport, "GET", "/metrics",
				  "Authorization: Bearer s3cret\r\n", NULL),
			 401);
	ck_assert_int_eq(tcp_code(aport, "POST", "/pools/app/backends/a/drain",
				  "Authorization: Basic czNjcmV0\r\n", NULL),
			 401);
	ck_assert_int_eq(tcp_code(aport, "GET", "/token", NULL, NULL), 401);
	/* The page and the routing daemon's probe stay open. */
	ck_assert_int_eq(tcp_code(aport, "GET", "/", NULL, NULL), 200);
	ck_assert_int_eq(tcp_code(aport, "GET", "/ready", NULL, NULL), 200);
	snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", secret);
	ck_assert_int_eq(tcp_code(aport, "GET", "/status", hdr, NULL), 200);
	ck_assert_int_eq(tcp_code(aport, "POST", "/pools/app/backends/a/drain",
				  hdr, NULL),
			 200);
	/* The Unix socket is guarded by its file mode, not the token. */
	ck_assert_int_eq(h_http(sock, NULL, 0, "GET", "/status", NULL, 10000,
				&r),
			 0);
	ck_assert_int_eq(r.status, 200);
	h_http_free(&r);
	{
		char st[32];

		ck_assert_str_eq(admin_of(&lb, "app", "a", st, sizeof(st)),
				 "drain");
	}
	json_decref(cfg);
}
END_TEST

/*
 * The browser.  chromedriver on a free port, one session of headless
 * chromium with its own profile in a temp dir; every host name resolves to
 * nothing, so it can reach only the addresses the test gives it.
 */
static char wd_dir[128];
static int wd_port;
static pid_t wd_pid;
static char wd_sid[128];

/* Kill the browser too, however the test ends (Check exits on failure). */
static void
browser_down(void)
{
	if (wd_pid > 0) {
		char pat[200];
		const char *argv[] = { "pkill", "-KILL", "-f", pat, NULL };
		struct h_run *r = calloc(1, sizeof(*r));

		snprintf(pat, sizeof(pat), "user-data-dir=%s", wd_dir);
		h_kill(wd_pid);
		wd_pid = 0;
		if (r)
			h_run(argv, 5000, r);
		free(r);
	}
}

/* One WebDriver command; its "value" (json_decref it), or the test fails. */
static json_t *
wd(const char *method, const char *path, json_t *body)
{
	char url[256], *text = NULL;
	struct h_http r;
	json_t *j, *v;
	int rc;

	snprintf(url, sizeof(url), "/session%s%s%s", wd_sid[0] ? "/" : "",
		 wd_sid, path);
	if (body)
		text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	rc = h_http_hdr(NULL, "127.0.0.1", wd_port, method, url,
			"Content-Type: application/json\r\n",
			text ? text : (strcmp(method, "POST") ? NULL : "{}"),
			60000, &r);
	free(text);
	ck_assert_msg(rc == 0, "WebDriver %s %s: %s", method, url,
		      strerror(-rc));
	j = json_loads(r.body, 0, NULL);
	ck_assert_msg(j != NULL && r.status == 200, "WebDriver %s %s: %d %s",
		      method, url, r.status, r.body);
	h_http_free(&r);
	v = json_incref(json_object_get(j, "value"));
	json_decref(j);
	return v;
}

static void
browser_up(void)
{
	const char *argv[] = { "/usr/bin/chromedriver", NULL, NULL };
	char arg[32], log[192], prof[200];
	uint64_t t0;
	json_t *caps, *v;

	h_need("/usr/bin/chromium", "chromium");
	h_need("/usr/bin/chromedriver", "chromium-driver");
	ck_assert_int_eq(h_tempdir(wd_dir, sizeof(wd_dir)), 0);
	wd_port = h_free_port();
	snprintf(arg, sizeof(arg), "--port=%d", wd_port);
	argv[1] = arg;
	snprintf(log, sizeof(log), "%s/chromedriver.log", wd_dir);
	wd_pid = h_spawn(argv, log);
	ck_assert_int_gt(wd_pid, 0);
	atexit(browser_down);
	/* Ready when its port answers. */
	for (t0 = h_now_ms();; h_sleep_ms(50)) {
		int fd = h_connect("127.0.0.1", wd_port, 1000);

		if (fd >= 0) {
			close(fd);
			break;
		}
		ck_assert_msg(h_now_ms() - t0 < 20000,
			      "chromedriver did not listen in 20 s");
	}
	snprintf(prof, sizeof(prof), "--user-data-dir=%s/profile", wd_dir);
	caps = json_pack(
		"{s:{s:{s:s,s:{s:s,s:[s,s,s,s,s,s,s,s,s,s,s,s]}}}}",
		"capabilities", "alwaysMatch", "browserName", "chrome",
		"goog:chromeOptions", "binary", "/usr/bin/chromium", "args",
		"--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
		"--no-proxy-server", prof, "--disable-background-networking",
		"--disable-component-update", "--no-first-run",
		"--disable-sync", "--disable-gpu", "--window-size=1300,1000",
		"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, "
		"EXCLUDE 127.0.0.2");
	wd_sid[0] = '\0';
	v = wd("POST", "", caps);
	snprintf(wd_sid, sizeof(wd_sid), "%s", h_jstr(v, "sessionId"));
	json_decref(v);
}

static void
wd_go(const char *url)
{
	json_decref(wd("POST", "/url", json_pack("{s:s}", "url", url)));
}

/* Run script in the page; its result. */
static json_t *
wd_js(const char *script)
{
	return wd("POST", "/execute/sync",
		  json_pack("{s:s,s:[]}", "script", script, "args"));
}

static void
wd_click(const char *css)
{
	json_t *e = wd("POST", "/element",
		       json_pack("{s:s,s:s}", "using", "css selector",
				 "value", css));
	const char *id = json_string_value(
		json_object_get(e, "element-6066-11e4-a52e-4f735466cecf"));
	char path[256];

	ck_assert_msg(id != NULL, "no element %s: %s", css,
		      json_dumps(e, JSON_COMPACT));
	snprintf(path, sizeof(path), "/element/%s/click", id);
	json_decref(wd("POST", path, json_object()));
	json_decref(e);
}

static void
wd_type(const char *css, const char *text)
{
	json_t *e = wd("POST", "/element",
		       json_pack("{s:s,s:s}", "using", "css selector",
				 "value", css));
	const char *id = json_string_value(
		json_object_get(e, "element-6066-11e4-a52e-4f735466cecf"));
	char path[256];

	ck_assert_msg(id != NULL, "no element %s", css);
	snprintf(path, sizeof(path), "/element/%s/clear", id);
	json_decref(wd("POST", path, json_object()));
	snprintf(path, sizeof(path), "/element/%s/value", id);
	json_decref(wd("POST", path, json_pack("{s:s}", "text", text)));
	json_decref(e);
}

/* The page's state of every backend: "pool/backend" -> "state". */
static json_t *
page_states(void)
{
	json_t *rows = wd_js(
		"const o = {};"
		"for (const r of document.querySelectorAll('tr[data-backend]'))"
		"  o[r.dataset.pool + '/' + r.dataset.backend] = r.dataset.state;"
		"return o;");

	ck_assert(json_is_object(rows));
	return rows;
}

/* The API's state of every backend, as the page should show it. */
static json_t *
api_states(const struct h_lb *lb)
{
	json_t *st = h_api(lb, "GET", "/status", NULL, 200), *p, *b;
	json_t *o = json_object();
	size_t i, k;

	json_array_foreach(json_object_get(st, "pools"), i, p) {
		json_array_foreach(json_object_get(p, "backends"), k, b) {
			char key[128], val[64];

			snprintf(key, sizeof(key), "%s/%s", h_jstr(p, "name"),
				 h_jstr(b, "name"));
			snprintf(val, sizeof(val), "%s%s", h_jstr(b, "state"),
				 h_jint(b, "fail_mark_ms") > 0 ? "/marked" : "");
			json_object_set_new(o, key, json_string(val));
		}
	}
	json_decref(st);
	return o;
}

/* Wait (10 s) until the page shows what the API says; the last states. */
static bool
page_agrees(const struct h_lb *lb, char *why, size_t size)
{
	uint64_t t0 = h_now_ms();

	for (;;) {
		json_t *pg = page_states(), *api = api_states(lb);
		bool same = json_equal(pg, api);
		char *a = json_dumps(api, JSON_COMPACT | JSON_SORT_KEYS);
		char *b = json_dumps(pg, JSON_COMPACT | JSON_SORT_KEYS);

		snprintf(why, size, "API %s, page %s", a, b);
		free(a);
		free(b);
		json_decref(pg);
		json_decref(api);
		if (same)
			return true;
		if (h_now_ms() - t0 > 10000)
			return false;
		h_sleep_ms(200);
	}
}

/* The foreign site: an HTTP server on 127.0.0.2 serving two pages. */
struct evil {
	int fd;
	int port;
	int admin_port;
	atomic_bool stop;
	pthread_t t;
};

static void *
evil_serve(void *arg)
{
	struct evil *e = arg;

	while (!atomic_load(&e->stop)) {
		struct pollfd p = { .fd = e->fd, .events = POLLIN };
		char req[2048], page[2048], *resp;
		ssize_t n;
		int c, len;

		if (poll(&p, 1, 100) != 1)
			continue;
		c = accept(e->fd, NULL, NULL);
		if (c < 0)
			continue;
		n = recv(c, req, sizeof(req) - 1, 0);
		req[n > 0 ? n : 0] = '\0';
		if (strncmp(req, "GET /read ", 10) == 0)
			/* Read the token: CORS says no. */
			snprintf(page, sizeof(page),
				 "<!DOCTYPE html><title>waiting</title><script>"
				 "fetch('http://127.0.0.1:%d/token')"
				 ".then(r => r.text())"
				 ".then(t => { document.title = 'GOT ' + t; })"
				 ".catch(() => { document.title = 'blocked'; });"
				 "</script>",
				 e->admin_port);
		else if (strncmp(req, "GET /post ", 10) == 0)
			/* A no-cors fetch, then a form post (text/plain). */
			snprintf(page, sizeof(page),
				 "<!DOCTYPE html><title>post</title>"
				 "<form id=f method=POST enctype=text/plain "
				 "action='http://127.0.0.1:%d/pools/app/backends/"
				 "up2/ready'><input name='{\"close\":true,\"x\":\"' "
				 "value='\"}'></form><script>"
				 "fetch('http://127.0.0.1:%d/pools/db/backends/"
				 "e/drain', {method: 'POST', mode: 'no-cors'})"
				 ".finally(() => document.getElementById('f')"
				 ".submit());</script>",
				 e->admin_port, e->admin_port);
		else
			snprintf(page, sizeof(page), "no");
		len = asprintf(&resp,
			       "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
			       "Content-Length: %zu\r\nConnection: close\r\n"
			       "\r\n%s",
			       strlen(page), page);
		if (len > 0) {
			ssize_t w = send(c, resp, (size_t)len, MSG_NOSIGNAL);

			(void)w;
			free(resp);
		}
		close(c);
	}
	return NULL;
}

static void
evil_up(struct evil *e, int admin_port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);

	memset(e, 0, sizeof(*e));
	e->admin_port = admin_port;
	inet_pton(AF_INET, "127.0.0.2", &sin.sin_addr);
	e->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(e->fd, 0);
	ck_assert_int_eq(bind(e->fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(e->fd, 16), 0);
	ck_assert_int_eq(getsockname(e->fd, (struct sockaddr *)&sin, &len), 0);
	e->port = ntohs(sin.sin_port);
	ck_assert_int_eq(pthread_create(&e->t, NULL, evil_serve, e), 0);
}

static void
evil_down(struct evil *e)
{
	atomic_store(&e->stop, true);
	pthread_join(e->t, NULL);
	close(e->fd);
}

/* Where the screenshot goes: $RINGLB_ARTIFACTS, else next to ringlb. */
static void
artifact_path(char *buf, size_t size, const char *name)
{
	const char *dir = getenv("RINGLB_ARTIFACTS");
	char bin[512];

	if (dir && *dir) {
		snprintf(buf, size, "%s/%s", dir, name);
	} else {
		snprintf(bin, sizeof(bin), "%s", h_lb_bin());
		*strrchr(bin, '/') = '\0';
		snprintf(buf, size, "%s/artifacts", bin);
		mkdir(buf, 0755);
		snprintf(buf + strlen(buf), size - strlen(buf), "/%s", name);
	}
}

/* base64 of the screenshot into a PNG file; its size. */
static size_t
save_png(const char *b64, const char *path)
{
	static const char al[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(b64), o = 0;
	unsigned char *out = malloc(n);
	unsigned acc = 0;
	int bits = 0;
	FILE *f;

	ck_assert_ptr_nonnull(out);
	for (size_t i = 0; i < n && b64[i] != '='; i++) {
		const char *c = strchr(al, b64[i]);

		ck_assert_msg(c != NULL && b64[i], "screenshot: not base64");
		acc = (acc << 6) | (unsigned)(c - al);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	ck_assert_msg(o > 8 && memcmp(out, "\x89PNG\r\n\x1a\n", 8) == 0,
		      "screenshot is not a PNG");
	f = fopen(path, "w");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	ck_assert_uint_eq(fwrite(out, 1, o, f), o);
	fclose(f);
	free(out);
	return o;
}

/* The row of backend b of pool app (ids hold '/', awkward in CSS). */
#define APP(b) "tr[data-pool=app][data-backend=" b "]"

START_TEST(in_a_browser)
{
	struct h_backend up1, up2, bk, dead, e, f;
	struct h_lb lb;
	struct evil ev;
	char url[128], why[4096], st[32], shot[600];
	json_t *cfg, *p, *l, *j, *v;
	int aport;
	uint64_t t0;

	h_backend_up(&up1, H_NAME, "up1");
	h_backend_up(&up2, H_NAME, "up2");
	h_backend_up(&bk, H_NAME, "bk");
	h_backend_up(&e, H_NAME, "e");
	/* Ports nothing listens on: a down backend, a marked one. */
	memset(&dead, 0, sizeof(dead));
	snprintf(dead.name, sizeof(dead.name), "dead");
	dead.port = h_free_port();
	memset(&f, 0, sizeof(f));
	snprintf(f.name, sizeof(f.name), "f");
	f.port = h_free_port();

	cfg = hc_new();
	aport = h_free_port();
	snprintf(url, sizeof(url), "127.0.0.1:%d", aport);
	hc_set(cfg, "admin.listen", json_string(url));
	p = hc_pool(cfg, "app");
	hc_set(p, "health_check",
	       hc_json("{ \"interval_ms\": 200, \"timeout_ms\": 200, "
		       "\"rise\": 1, \"fall\": 1 }"));
	hc_backend(p, &up1, 1);
	hc_backend(p, &up2, 2);
	hc_backend(p, &dead, 1);
	hc_set(hc_backend(p, &bk, 1), "backup", json_true());
	/* No health checks: a failed connect marks f (ejects it). */
	p = hc_pool(cfg, "db");
	hc_set(p, "health_check", hc_json("{ \"enabled\": false }"));
	hc_set(p, "algorithm", json_string("round-robin"));
	hc_set(p, "ejection", hc_json("{ \"base_ms\": 300000 }"));
	hc_backend(p, &e, 1);
	hc_backend(p, &f, 1);
	l = hc_listener(cfg, "web", 0);
	hc_set(l, "pool", json_string("app"));
	l = hc_listener(cfg, "db", 0);
	hc_set(l, "pool", json_string("db"));
	ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, hc_port(l), NULL), 0);
	/* up2 in maintenance; two clients through db: one tries f. */
	json_decref(h_api(&lb, "POST", "/pools/app/backends/up2/maint", NULL,
			  200));
	for (int i = 0; i < 2; i++) {
		char name[16];

		ck_assert_int_eq(h_get_name("127.0.0.1", hc_port(l), name,
					    sizeof(name), NULL),
				 0);
		ck_assert_str_eq(name, "e");
	}
	/* The health checker has seen dead fail. */
	for (t0 = h_now_ms(); strcmp(json_string_value(json_object_get(
		     v = api_states(&lb), "app/dead")), "down") != 0;
	     json_decref(v)) {
		ck_assert_msg(h_now_ms() - t0 < 10000, "dead is not down");
		h_sleep_ms(100);
	}
	json_decref(v);

	browser_up();
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", aport);
	wd_go(url);
	/* Every backend, with its state. */
	ck_assert_msg(page_agrees(&lb, why, sizeof(why)), "%s", why);
	v = page_states();
	ck_assert_str_eq(json_string_value(json_object_get(v, "app/up1")), "up");
	ck_assert_str_eq(json_string_value(json_object_get(v, "app/up2")),
			 "maintenance");
	ck_assert_str_eq(json_string_value(json_object_get(v, "app/dead")),
			 "down");
	ck_assert_str_eq(json_string_value(json_object_get(v, "app/bk")), "up");
	ck_assert_str_eq(json_string_value(json_object_get(v, "db/e")), "up");
	ck_assert_str_eq(json_string_value(json_object_get(v, "db/f")),
			 "up/marked");
	json_decref(v);
	/* The badges and figures: backup, ejected, db's traffic, refusals. */
	v = wd_js("const t = (s) => document.querySelector(s).textContent;"
		  "const ROW_APP = 'tr[data-pool=app][data-backend=';"
		  "const ROW_DB = 'tr[data-pool=db][data-backend=';"
		  "return [t(ROW_APP + 'bk] .state'), t(ROW_DB + 'f] .state'),"
		  " t(ROW_DB + 'e] td:nth-child(6)'), t('#l-db td:nth-child(4)'),"
		  " document.querySelectorAll('#r-web td[data-reason]').length,"
		  " t('#reloads'), t('#readiness')];");
	ck_assert_msg(strstr(json_string_value(json_array_get(v, 0)), "backup"),
		      "bk: %s", json_string_value(json_array_get(v, 0)));
	ck_assert_msg(strstr(json_string_value(json_array_get(v, 1)),
			     "ejected"),
		      "f: %s", json_string_value(json_array_get(v, 1)));
	ck_assert_str_eq(json_string_value(json_array_get(v, 2)), "2");
	ck_assert_str_eq(json_string_value(json_array_get(v, 3)), "2");
	ck_assert_int_ge(json_integer_value(json_array_get(v, 4)), 8);
	ck_assert_str_eq(json_string_value(json_array_get(v, 5)), "0");
	ck_assert_str_eq(json_string_value(json_array_get(v, 6)), "serving");
	json_decref(v);

	/* Drain up1 with its button: the API says so, then the page. */
	wd_click(APP("up1") " button[data-act=drain]");
	for (t0 = h_now_ms();
	     strcmp(admin_of(&lb, "app", "up1", st, sizeof(st)), "drain") != 0;
	     h_sleep_ms(50))
		ck_assert_msg(h_now_ms() - t0 < 10000, "up1 is %s, not drain",
			      st);
	ck_assert_msg(page_agrees(&lb, why, sizeof(why)), "%s", why);
	v = page_states();
	ck_assert_str_eq(json_string_value(json_object_get(v, "app/up1")),
			 "draining");
	json_decref(v);
	/* A weight typed and set. */
	wd_type(APP("bk") " input.w", "9");
	wd_click(APP("bk") " button[data-act=weight]");
	for (t0 = h_now_ms();; h_sleep_ms(50)) {
		j = h_api(&lb, "GET", "/pools/app/backends/bk", NULL, 200);
		long long w = h_jint(j, "weight");

		json_decref(j);
		if (w == 9)
			break;
		ck_assert_msg(h_now_ms() - t0 < 10000, "bk weight %lld", w);
	}
	/* And ready again. */
	wd_click(APP("up1") " button[data-act=ready]");
	for (t0 = h_now_ms();
	     strcmp(admin_of(&lb, "app", "up1", st, sizeof(st)), "ready") != 0;
	     h_sleep_ms(50))
		ck_assert_msg(h_now_ms() - t0 < 10000, "up1 is %s", st);
	ck_assert_msg(page_agrees(&lb, why, sizeof(why)), "%s", why);
	wd_click(APP("up1") " button[data-act=drain]");
	ck_assert_msg(page_agrees(&lb, why, sizeof(why)) &&
			      strcmp(admin_of(&lb, "app", "up1", st,
					      sizeof(st)),
				     "drain") == 0,
		      "%s", why);
	v = wd("GET", "/screenshot", NULL);
	artifact_path(shot, sizeof(shot), "status-page.png");
	{
		size_t n = save_png(json_string_value(v), shot);

		fprintf(stderr, "status page: screenshot %s (%zu bytes)\n",
			shot, n);
		ck_assert_uint_gt(n, 10000);
	}
	json_decref(v);

	/* Another origin can neither read the token nor change a thing. */
	evil_up(&ev, aport);
	snprintf(url, sizeof(url), "http://127.0.0.2:%d/read", ev.port);
	wd_go(url);
	for (t0 = h_now_ms();; h_sleep_ms(100)) {
		v = wd("GET", "/title", NULL);
		snprintf(why, sizeof(why), "%s", json_string_value(v));
		json_decref(v);
		if (strcmp(why, "waiting") != 0)
			break;
		ck_assert_msg(h_now_ms() - t0 < 10000, "the read never ended");
	}
	ck_assert_str_eq(why, "blocked");
	snprintf(url, sizeof(url), "http://127.0.0.2:%d/post", ev.port);
	wd_go(url);
	/* The form's answer replaces the page: our 403. */
	for (t0 = h_now_ms();; h_sleep_ms(100)) {
		v = wd_js("return document.location.pathname + ' ' +"
			  " document.body.textContent;");
		snprintf(why, sizeof(why), "%s", json_string_value(v));
		json_decref(v);
		if (strstr(why, "/ready "))
			break;
		ck_assert_msg(h_now_ms() - t0 < 10000, "the post never ended: %s",
			      why);
	}
	ck_assert_msg(strstr(why, "cross-site requests are refused"), "%s",
		      why);
	evil_down(&ev);
	ck_assert_str_eq(admin_of(&lb, "app", "up2", st, sizeof(st)), "maint");
	ck_assert_str_eq(admin_of(&lb, "db", "e", st, sizeof(st)), "ready");
	/* Nor did anything else happen. */
	j = h_api(&lb, "GET", "/status", NULL, 200);
	ck_assert_int_eq(h_jint(j, "reloads"), 0);
	json_decref(j);
	json_decref(wd("DELETE", "", NULL));
	wd_sid[0] = '\0';
	browser_down();
	json_decref(cfg);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("status_page");
	TCase *tc = h_tcase(s, "guard", 60, h_teardown);
	/* Room for installing chromium (tools/deps.sh, up to 600 s). */
	TCase *br = h_tcase(s, "browser", 900, h_teardown);

	tcase_add_test(tc, page_served);
	tcase_add_test(tc, changes_need_the_token);
	tcase_add_test(tc, bearer_token_on_tcp);
	tcase_add_test(br, in_a_browser);
	return h_run_suite("check_status_page", s);
}

/*
 * check_logs.c: logs that machines can read, against the real binary.
 *
 * With "log_format": "json" every line of a run (start, connections,
 * connect failures, a reload, the stop) parses as one JSON object with
 * ts, level and msg; a connection's line has its fields, typed: conn,
 * client, via (after a PROXY header), listener, pool, backend, addr,
 * connect_ms, retries (1 after a dead backend was tried first), up,
 * down, ms, end.  A reload to "text" switches the next lines to text.
 */
#include <check.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "h_private.h"
#include "log.h"

static const char *const levels[] = { "error", "warn", "info", "debug" };

/* Is line one JSON object with ts, level and msg?  The object, or NULL
 * (and the test fails). */
static json_t *
json_line(const char *line, size_t n)
{
	json_error_t e;
	json_t *j = json_loadb(line, n, 0, &e);
	const char *lv;
	bool known = false;
	regex_t re;

	ck_assert_msg(json_is_object(j), "not a JSON object: %.*s (%s)",
		      (int)n, line, e.text);
	ck_assert_int_eq(regcomp(&re,
				 "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:"
				 "[0-9]{2}\\.[0-9]{3}Z$",
				 REG_EXTENDED | REG_NOSUB),
			 0);
	ck_assert_msg(json_is_string(json_object_get(j, "ts")) &&
			      regexec(&re, json_string_value(json_object_get(
						   j, "ts")),
				      0, NULL, 0) == 0,
		      "ts: %.*s", (int)n, line);
	regfree(&re);
	lv = json_string_value(json_object_get(j, "level"));
	for (size_t i = 0; lv && i < 4; i++)
		known = known || strcmp(lv, levels[i]) == 0;
	ck_assert_msg(known, "level: %.*s", (int)n, line);
	ck_assert_msg(json_is_string(json_object_get(j, "msg")) &&
			      json_string_length(json_object_get(j, "msg")) > 0,
		      "msg: %.*s", (int)n, line);
	return j;
}

static void
has_int(const json_t *j, const char *key)
{
	ck_assert_msg(json_is_integer(json_object_get(j, key)),
		      "%s is not an integer: %s", key,
		      json_dumps(j, JSON_COMPACT));
}

static void
has_str(const json_t *j, const char *key, const char *want)
{
	const char *v = json_string_value(json_object_get(j, key));

	ck_assert_msg(v != NULL, "no string %s", key);
	if (want)
		ck_assert_str_eq(v, want);
}

START_TEST(json_lines)
{
	struct h_backend dead, a;
	struct h_lb lb;
	char name[16], addr[64];
	json_t *cfg, *l;
	int port, pport, fd, conns = 0, retried = 0, proxied = 0, warns = 0;
	char *log, *p;

	h_backend_dead(&dead, H_NAME, "dead");
	h_backend_up(&a, H_NAME, "a");
	cfg = hc_new();
	hc_set(cfg, "log_format", json_string("json"));
	hc_set(cfg, "workers", json_integer(1));
	l = hc_listener(cfg, "web", 0);
	hc_set(l, "health_check", hc_json("{ \"enabled\": false }"));
	hc_backend(l, &dead, 0);
	hc_backend(l, &a, 0);
	port = hc_port(l);
	l = hc_listener(cfg, "px", 0);
	hc_set(l, "health_check", hc_json("{ \"enabled\": false }"));
	hc_set(l, "accept_proxy", hc_json("{ \"from\": [\"127.0.0.0/8\"] }"));
	hc_backend(l, &a, 0);
	pport = hc_port(l);
	ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, port, NULL), 0);

	/* Round-robin: every other client tries the dead backend first. */
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(h_get_name("127.0.0.1", port, name,
					    sizeof(name), NULL),
				 0);
		ck_assert_str_eq(name, "a");
	}
	fd = h_connect("127.0.0.1", pport, 3000);
	ck_assert_int_ge(fd, 0);
	{
		static const char hdr[] =
			"PROXY TCP4 9.9.9.9 127.0.0.1 4242 80\r\n";

		ck_assert_int_eq(h_write_all(fd, hdr, sizeof(hdr) - 1, 3000),
				 0);
		ck_assert_int_ge(h_read_line(fd, name, sizeof(name), 3000), 0);
		ck_assert_str_eq(name, "a");
		close(fd);
	}
	ck_assert(h_lb_log_wait(&lb, 5, 5000, "\"msg\":\"connection\""));
	json_decref(h_api(&lb, "POST", "/reload", NULL, 200));
	h_lb_signal(&lb, SIGTERM);
	ck_assert_int_eq(h_lb_wait_exit(&lb, 10000), 0);

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", a.port);
	log = h_lb_log(&lb);
	ck_assert_ptr_nonnull(log);
	for (char *line = log; *line; line = p + 1) {
		json_t *j;
		const char *msg;

		p = strchr(line, '\n');
		ck_assert_msg(p != NULL, "a line without its newline: %s",
			      line);
		j = json_line(line, (size_t)(p - line));
		msg = json_string_value(json_object_get(j, "msg"));
		warns += strcmp(json_string_value(json_object_get(j, "level")),
				"warn") == 0;
		if (strcmp(msg, "connection") == 0) {
			conns++;
			has_int(j, "conn");
			has_str(j, "client", NULL);
			has_str(j, "pool", NULL);
			has_str(j, "backend", "a");
			has_str(j, "addr", addr);
			has_int(j, "connect_ms");
			has_int(j, "retries");
			has_int(j, "up");
			has_int(j, "down");
			has_int(j, "ms");
			has_str(j, "end", "closed");
			ck_assert_int_ge(json_integer_value(json_object_get(
						 j, "connect_ms")),
					 0);
			retried += json_integer_value(
					   json_object_get(j, "retries")) == 1;
			if (json_object_get(j, "via")) {
				proxied++;
				has_str(j, "client", "9.9.9.9:4242");
				has_str(j, "listener", "px");
			} else {
				has_str(j, "listener", "web");
			}
		}
		json_decref(j);
	}
	free(log);
	fprintf(stderr, "json_lines: %d connection lines (%d retried, %d "
		"proxied), %d warnings, every line JSON\n",
		conns, retried, proxied, warns);
	ck_assert_int_eq(conns, 5);
	ck_assert_int_eq(proxied, 1);
	ck_assert_int_ge(retried, 1);
	ck_assert_int_ge(warns, retried);	/* each failed attempt */
	json_decref(cfg);
}
END_TEST

/* A reload to "text" switches the format; and back. */
START_TEST(format_reload)
{
	struct h_backend a;
	struct h_lb lb;
	json_t *cfg, *l;
	char name[16], *line;
	int port;

	h_backend_up(&a, H_NAME, "a");
	cfg = hc_new();
	hc_set(cfg, "log_format", json_string("json"));
	l = hc_listener(cfg, "web", 0);
	hc_set(l, "health_check", hc_json("{ \"enabled\": false }"));
	hc_backend(l, &a, 0);
	port = hc_port(l);
	ck_assert_int_eq(h_lb_start_cfg(&lb, cfg, port, NULL), 0);
	hc_set(cfg, "log_format", json_string("text"));
	ck_assert_int_eq(h_lb_write_cfg(&lb, cfg), 0);
	json_decref(h_api(&lb, "POST", "/reload", NULL, 200));
	ck_assert_int_eq(h_get_name("127.0.0.1", port, name, sizeof(name),
				    NULL),
			 0);
	ck_assert(h_lb_log_wait(&lb, 1, 5000, " info conn=", " end=closed"));
	line = h_lb_log_line(&lb, " info conn=");
	ck_assert_ptr_nonnull(line);
	ck_assert_msg(strstr(line, " addr=127.0.0.1:") &&
			      strstr(line, " connect_ms=") &&
			      strstr(line, " retries=0 "),
		      "%s", line);
	free(line);
	ck_assert_int_ge(h_lb_log_count(&lb, "{\"ts\":\""), 1);
	json_decref(cfg);
}
END_TEST

/*
 * The JSON writer itself (log.c, in this process): whatever bytes a line
 * holds, and however long it is, it is one valid JSON object; key=value
 * words are fields, typed; the line's own keys stay its own.
 */
START_TEST(json_writer)
{
	char path[] = "/tmp/ringlb-logs-XXXXXX", text[300], *buf, *p;
	int fd = mkstemp(path), saved = dup(STDERR_FILENO), n = 0;
	json_t *j;
	FILE *f;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_ge(saved, 0);
	for (int i = 1; i < 256; i++)
		text[i - 1] = (char)i;
	text[255] = '\0';
	log_set_format(LOG_FORMAT_JSON);
	dup2(fd, STDERR_FILENO);
	log_msg(LOG_WARN, "every byte: %s", text);
	log_msg(LOG_INFO, "conn=7 addr=[::1]:80: connect refused, "
		"ms=012 big=123456789012345678901 none=- level=x q=\"a\\b\"");
	{
		static char huge[8000];

		memset(huge, 'x', sizeof(huge) - 1);
		log_msg(LOG_ERROR, "long=%s end=1", huge);
	}
	log_event(LOG_INFO, "connection", "conn=9 client=1.2.3.4:5 end=closed");
	dup2(saved, STDERR_FILENO);
	close(saved);
	log_set_format(LOG_FORMAT_TEXT);
	f = fdopen(fd, "r");
	ck_assert_ptr_nonnull(f);
	rewind(f);
	buf = calloc(1, 1 << 16);
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_gt(fread(buf, 1, (1 << 16) - 1, f), 0);
	fclose(f);
	unlink(path);
	for (char *line = buf; *line; line = p + 1) {
		p = strchr(line, '\n');
		ck_assert_ptr_nonnull(p);
		j = json_line(line, (size_t)(p - line));
		switch (n++) {
		case 0:
			/* All 255 bytes came back, none lost: 1..127 as
			 * themselves, 128..255 as U+0080..U+00FF (two bytes
			 * of UTF-8 each). */
			ck_assert_uint_eq(json_string_length(json_object_get(
						  j, "msg")),
					  strlen("every byte: ") + 127 + 2 * 128);
			break;
		case 1:
			ck_assert_int_eq(json_integer_value(json_object_get(
						 j, "conn")),
					 7);
			has_str(j, "addr", "[::1]:80");
			has_str(j, "ms", "012");	/* not a JSON number */
			has_str(j, "big", "123456789012345678901");
			ck_assert(json_is_null(json_object_get(j, "none")));
			has_str(j, "level", "info");	/* not "x" */
			has_str(j, "q", "\"a\\b\"");
			break;
		case 2:
			has_str(j, "level", "error");
			ck_assert_uint_lt((size_t)(p - line), 4096);
			break;
		case 3:
			has_str(j, "msg", "connection");
			has_int(j, "conn");
			has_str(j, "client", "1.2.3.4:5");
			has_str(j, "end", "closed");
			break;
		}
		json_decref(j);
	}
	ck_assert_int_eq(n, 4);
	free(buf);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("logs");
	TCase *tc = h_tcase(s, "logs", 60, h_teardown);

	tcase_add_test(tc, json_lines);
	tcase_add_test(tc, format_reload);
	tcase_add_test(tc, json_writer);
	return h_run_suite("check_logs", s);
}

/*
 * check_config.c: unit tests for config.c.
 *
 * Most tests hand cfg_parse() inline JSON written with ' for " (dq() swaps
 * them) and compare the whole error line, so a changed path, file name or
 * wording fails here before an operator sees it.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"
#include "log.h"

#define ERRLEN 512

/* A valid backend and the shells that embed one mistake in a valid file. */
#define BE "{'name':'b','address':'127.0.0.1:9001'}"
/* extra: more listener keys, starting with ','. */
#define LST(extra)                                                          \
	"{'listeners':[{'name':'web','listen':'127.0.0.1:8080',"            \
	"'backends':[" BE "]" extra "}]}"
/* backends: the whole backends array body. */
#define BKS(backends)                                                       \
	"{'listeners':[{'name':'web','listen':'127.0.0.1:8080',"            \
	"'backends':[" backends "]}]}"
/* extra: more top-level keys, ending with ','. */
#define TOP(extra)                                                          \
	"{" extra "'listeners':[{'name':'web','listen':'127.0.0.1:8080',"   \
	"'backends':[" BE "]}]}"
/* extra: keys of health_check. */
#define HC(extra) LST(",'health_check':{" extra "}")

/* JSON with ' in place of " stays readable in C; swap them back. */
static char *
dq(const char *s)
{
	char *t = strdup(s);

	ck_assert_ptr_nonnull(t);
	for (char *p = t; *p != '\0'; p++)
		if (*p == '\'')
			*p = '"';
	return t;
}

static struct config *
parse_ok(const char *text)
{
	struct config *cfg = NULL;
	char err[ERRLEN] = "";
	char *t = dq(text);
	int rc;

	rc = cfg_parse(t, strlen(t), "good.json", &cfg, err, sizeof(err));
	free(t);
	ck_assert_msg(rc == 0, "cfg_parse failed: %s", err);
	ck_assert_ptr_nonnull(cfg);
	return cfg;
}

/* Parse text that must be rejected; the one-line message lands in err. */
static void
parse_bad(const char *text, char *err, size_t errlen)
{
	struct config *cfg = (struct config *)&errlen;
	char *t = dq(text);
	int rc;

	rc = cfg_parse(t, strlen(t), "bad.json", &cfg, err, errlen);
	free(t);
	ck_assert_int_eq(rc, -1);
	ck_assert_ptr_null(cfg);
	ck_assert_ptr_null(strchr(err, '\n'));
}

#define ck_assert_bad(text, want)                                           \
	do {                                                                \
		char e_[ERRLEN];                                            \
		parse_bad(text, e_, sizeof(e_));                            \
		ck_assert_str_eq(e_, want);                                 \
	} while (0)

/* For messages with a part we do not own (jansson's, the resolver's). */
#define ck_assert_bad_prefix(text, want)                                    \
	do {                                                                \
		char e_[ERRLEN];                                            \
		parse_bad(text, e_, sizeof(e_));                            \
		ck_assert_msg(strncmp(e_, want, strlen(want)) == 0,         \
			      "got \"%s\", want prefix \"%s\"", e_, want);  \
	} while (0)

static void
assert_v4(const struct cfg_addr *a, const char *ip, unsigned port)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->ss;
	char buf[INET_ADDRSTRLEN];

	ck_assert_int_eq(a->ss.ss_family, AF_INET);
	ck_assert_uint_eq(a->len, sizeof(*sin));
	ck_assert_ptr_nonnull(inet_ntop(AF_INET, &sin->sin_addr, buf,
					sizeof(buf)));
	ck_assert_str_eq(buf, ip);
	ck_assert_uint_eq(ntohs(sin->sin_port), port);
}

static void
assert_v6(const struct cfg_addr *a, const char *ip, unsigned port)
{
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->ss;
	char buf[INET6_ADDRSTRLEN];

	ck_assert_int_eq(a->ss.ss_family, AF_INET6);
	ck_assert_uint_eq(a->len, sizeof(*sin6));
	ck_assert_ptr_nonnull(inet_ntop(AF_INET6, &sin6->sin6_addr, buf,
					sizeof(buf)));
	ck_assert_str_eq(buf, ip);
	ck_assert_uint_eq(ntohs(sin6->sin6_port), port);
}

static unsigned
online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > 256 ? 256 : (unsigned)n;
}

static const char full_config[] =
	"{ 'workers': 4, 'log_level': 'debug', 'shutdown_grace_ms': 0,\n"
	"  'listeners': [\n"
	"    { 'name': 'web', 'listen': '127.0.0.1:8080',\n"
	"      'algorithm': 'least-connections', 'connect_attempts': 5,\n"
	"      'backlog': 128,\n"
	"      'backends': [\n"
	"        { 'name': 'app1', 'address': '127.0.0.1:9001', 'weight': 3 },\n"
	"        { 'name': 'app-2.v6_x', 'address': '[::1]:9002' },\n"
	"        { 'name': 'app3', 'address': 'localhost:9000', 'weight': 256 } ],\n"
	"      'health_check': { 'enabled': false, 'interval_ms': 500,\n"
	"          'timeout_ms': 500, 'rise': 4, 'fall': 5,\n"
	"          'send': 'A\\u0000B\\r\\n', 'expect': '+PONG\\r\\n' },\n"
	"      'timeouts': { 'connect_ms': 1500, 'idle_ms': 0, 'fail_ms': 0 } },\n"
	"    { 'name': 'v6', 'listen': '[::1]:8080',\n"
	"      'backends': [ { 'name': 'app1', 'address': '10.0.0.1:1' } ] },\n"
	"    { 'name': 'any', 'listen': '*:65535',\n"
	"      'health_check': { 'expect': '220 ' },\n"
	"      'backends': [ { 'name': 'smtp', 'address': '192.0.2.7:25' } ] }\n"
	"  ] }\n";

START_TEST(test_full_valid)
{
	struct config *cfg = parse_ok(full_config);
	const struct cfg_listener *l;
	const struct cfg_backend *b;

	ck_assert_str_eq(cfg->path, "good.json");
	ck_assert_uint_eq(cfg->workers, 4);
	ck_assert_int_eq(cfg->log_level, LOG_DEBUG);
	ck_assert_uint_eq(cfg->shutdown_grace_ms, 0);
	ck_assert_uint_eq(cfg->nlisteners, 3);

	l = &cfg->listeners[0];
	ck_assert_str_eq(l->name, "web");
	ck_assert_str_eq(l->addr.text, "127.0.0.1:8080");
	assert_v4(&l->addr, "127.0.0.1", 8080);
	ck_assert_int_eq(cfg_listener_pool(cfg, l)->algorithm, ALG_LEAST_CONN);
	ck_assert_uint_eq(cfg_listener_pool(cfg, l)->connect_attempts, 5);
	ck_assert_int_eq(l->backlog, 128);
	ck_assert_uint_eq(cfg_listener_pool(cfg, l)->connect_ms, 1500);
	ck_assert_uint_eq(l->idle_ms, 0);
	ck_assert_uint_eq(cfg_listener_pool(cfg, l)->fail_ms, 0);
	ck_assert(!cfg_listener_pool(cfg, l)->health.enabled);
	ck_assert_uint_eq(cfg_listener_pool(cfg, l)->health.interval_ms, 500);
	ck_assert_uint_eq(cfg_listener_pool(cfg, l)->health.timeout_ms, 500);
	ck_assert_uint_eq(cfg_listener_pool(cfg, l)->health.rise, 4);
	ck_assert_uint_eq(cfg_listener_pool(cfg, l)->health.fall, 5);
	ck_assert_uint_eq(cfg_listener_pool(cfg, l)->health.send_len, 5);
	ck_assert_mem_eq(cfg_listener_pool(cfg, l)->health.send, "A\0B\r\n", 5);
	ck_assert_uint_eq(cfg_listener_pool(cfg, l)->health.expect_len, 7);
	ck_assert_str_eq(cfg_listener_pool(cfg, l)->health.expect, "+PONG\r\n");
	ck_assert_uint_eq(cfg_listener_pool(cfg, l)->nbackends, 3);

	b = &cfg_listener_pool(cfg, l)->backends[0];
	ck_assert_str_eq(b->name, "app1");
	ck_assert_str_eq(b->addr.text, "127.0.0.1:9001");
	assert_v4(&b->addr, "127.0.0.1", 9001);
	ck_assert_uint_eq(b->weight, 3);

	b = &cfg_listener_pool(cfg, l)->backends[1];
	ck_assert_str_eq(b->name, "app-2.v6_x");
	ck_assert_str_eq(b->addr.text, "[::1]:9002");
	assert_v6(&b->addr, "::1", 9002);
	ck_assert_uint_eq(b->weight, 1);

	/* The first getaddrinfo() result may be either loopback. */
	b = &cfg_listener_pool(cfg, l)->backends[2];
	ck_assert_str_eq(b->addr.text, "localhost:9000");
	if (b->addr.ss.ss_family == AF_INET6)
		assert_v6(&b->addr, "::1", 9000);
	else
		assert_v4(&b->addr, "127.0.0.1", 9000);
	ck_assert_uint_eq(b->weight, 256);

	/* Every optional listener key absent: the documented defaults. */
	l = &cfg->listeners[1];
	ck_assert_str_eq(l->name, "v6");
	ck_assert_str_eq(l->addr.text, "[::1]:8080");
	assert_v6(&l->addr, "::1", 8080);
	ck_assert_int_eq(cfg_listener_pool(cfg, l)->algorithm, ALG_ROUND_ROBIN);
	ck_assert_uint_eq(cfg_listener_pool(cfg, l)->connect_attempts, 3);
	ck_assert_int_eq(l->backlog, 511);
	ck_assert_uint_eq(cfg_listener_pool(cfg, l)->connect_ms, 3000);
	ck_assert_uint_eq(l->idle_ms, 600000);
	ck_assert_uint_eq(cfg_listener_pool(cfg, l)->fail_ms, 10000);
	ck_assert(cfg_listener_pool(cfg, l)->health.enabled);
	ck_assert_uint_eq(cfg_listener_pool(cfg, l)->health.interval_ms, 2000);
	ck_assert_uint_eq(cfg_listener_pool(cfg, l)->health.timeout_ms, 1000);
	ck_assert_uint_eq(cfg_listener_pool(cfg, l)->health.rise, 2);
	ck_assert_uint_eq(cfg_listener_pool(cfg, l)->health.fall, 3);
	ck_assert_ptr_null(cfg_listener_pool(cfg, l)->health.send);
	ck_assert_uint_eq(cfg_listener_pool(cfg, l)->health.send_len, 0);
	ck_assert_ptr_null(cfg_listener_pool(cfg, l)->health.expect);
	ck_assert_uint_eq(cfg_listener_pool(cfg, l)->health.expect_len, 0);
	ck_assert_uint_eq(cfg_listener_pool(cfg, l)->nbackends, 1);
	/* Backend names are unique per listener, not globally. */
	ck_assert_str_eq(cfg_listener_pool(cfg, l)->backends[0].name, "app1");
	assert_v4(&cfg_listener_pool(cfg, l)->backends[0].addr, "10.0.0.1", 1);

	/* "*" is any address; expect without send is a banner check. */
	l = &cfg->listeners[2];
	ck_assert_str_eq(l->addr.text, "*:65535");
	assert_v4(&l->addr, "0.0.0.0", 65535);
	ck_assert(cfg_listener_pool(cfg, l)->health.enabled);
	ck_assert_ptr_null(cfg_listener_pool(cfg, l)->health.send);
	ck_assert_uint_eq(cfg_listener_pool(cfg, l)->health.expect_len, 4);
	ck_assert_str_eq(cfg_listener_pool(cfg, l)->health.expect, "220 ");
	assert_v4(&cfg_listener_pool(cfg, l)->backends[0].addr, "192.0.2.7", 25);

	cfg_free(cfg);
}
END_TEST

START_TEST(test_top_defaults)
{
	struct config *cfg = parse_ok(TOP(""));

	ck_assert_uint_eq(cfg->workers, online_cpus());
	ck_assert_int_eq(cfg->log_level, LOG_INFO);
	ck_assert_uint_eq(cfg->shutdown_grace_ms, 30000);
	ck_assert_uint_eq(cfg->recv_buffers, 256);
	ck_assert_uint_eq(cfg->upgrade_handover_ms, 2000);
	ck_assert_uint_eq(cfg->nlisteners, 1);
	cfg_free(cfg);

	cfg = parse_ok(LST(",'discover':{'name':'PG.Service.Consul.',"
			   "'type':'srv','resolvers':['127.0.0.1:8600','::1'],"
			   "'hold_ms':0}"));
	{
		const struct cfg_pool *p = cfg_listener_pool(cfg,
							     &cfg->listeners[0]);

		ck_assert(p->discover.enabled && p->discover.srv);
		ck_assert_str_eq(p->discover.name, "pg.service.consul");
		ck_assert_str_eq(p->discover.resolvers,
				 "127.0.0.1:8600,[::1]:53");
		ck_assert_uint_eq(p->discover.min_ttl_ms, 1000);
		ck_assert_uint_eq(p->discover.max_ttl_ms, 30000);
		ck_assert_uint_eq(p->discover.hold_ms, 0);
		ck_assert_uint_eq(p->discover.max_backends, 1000);
		ck_assert_uint_eq(p->nstatic, p->nbackends);
	}
	cfg_free(cfg);
	/* No backends of its own: DNS brings them all. */
	cfg = parse_ok("{'listeners':[{'name':'web','listen':'127.0.0.1:8080',"
		       "'discover':{'name':'web.test','type':'a','port':80}}]}");
	ck_assert_uint_eq(cfg_listener_pool(cfg, &cfg->listeners[0])->nbackends,
			  0);
	cfg_free(cfg);

	cfg = parse_ok(TOP("'upgrade':{'handover_ms':0},"));
	ck_assert_uint_eq(cfg->upgrade_handover_ms, 0);
	cfg_free(cfg);
	cfg = parse_ok(TOP("'upgrade':{},"));
	ck_assert_uint_eq(cfg->upgrade_handover_ms, 2000);
	cfg_free(cfg);

	cfg = parse_ok(TOP("'recv_buffers':0,"));
	ck_assert_uint_eq(cfg->recv_buffers, 0);
	cfg_free(cfg);
	cfg = parse_ok(TOP("'recv_buffers':32768,"));
	ck_assert_uint_eq(cfg->recv_buffers, 32768);
	cfg_free(cfg);

	cfg = parse_ok(TOP("'log_level':'error','workers':256,"
			   "'shutdown_grace_ms':3600000,"));
	ck_assert_int_eq(cfg->log_level, LOG_ERROR);
	ck_assert_uint_eq(cfg->workers, 256);
	ck_assert_uint_eq(cfg->shutdown_grace_ms, 3600000);
	cfg_free(cfg);

	cfg_free(NULL);
}
END_TEST

START_TEST(test_range_edges_ok)
{
	struct config *cfg;
	const struct cfg_listener *l;

	cfg = parse_ok(LST(",'connect_attempts':10,'backlog':65535,"
			   "'timeouts':{'connect_ms':600000,'idle_ms':86400000,"
			   "'fail_ms':3600000},"
			   "'health_check':{'interval_ms':3600000,"
			   "'timeout_ms':600000,'rise':100,'fall':1}"));
	l = &cfg->listeners[0];
	ck_assert_uint_eq(cfg_listener_pool(cfg, l)->connect_attempts, 10);
	ck_assert_int_eq(l->backlog, 65535);
	ck_assert_uint_eq(cfg_listener_pool(cfg, l)->connect_ms, 600000);
	ck_assert_uint_eq(l->idle_ms, 86400000);
	ck_assert_uint_eq(cfg_listener_pool(cfg, l)->fail_ms, 3600000);
	ck_assert_uint_eq(cfg_listener_pool(cfg, l)->health.interval_ms, 3600000);
	ck_assert_uint_eq(cfg_listener_pool(cfg, l)->health.timeout_ms, 600000);
	ck_assert_uint_eq(cfg_listener_pool(cfg, l)->health.rise, 100);
	ck_assert_uint_eq(cfg_listener_pool(cfg, l)->health.fall, 1);
	cfg_free(cfg);

	cfg = parse_ok(HC("'interval_ms':50,'timeout_ms':10"));
	ck_assert_uint_eq(cfg->pools[0].health.interval_ms, 50);
	ck_assert_uint_eq(cfg->pools[0].health.timeout_ms, 10);
	cfg_free(cfg);
}
END_TEST

START_TEST(test_probe_sizes)
{
	/* Exactly CFG_PROBE_MAX bytes is fine, one more is not. */
	size_t n = CFG_PROBE_MAX;
	char *big = malloc(n + 200), *text;
	struct config *cfg;
	char err[ERRLEN];

	ck_assert_ptr_nonnull(big);
	memset(big, 'x', n + 1);
	big[n] = '\0';
	ck_assert_int_ne(asprintf(&text, HC("'send':'%s'"), big), -1);
	cfg = parse_ok(text);
	ck_assert_uint_eq(cfg->pools[0].health.send_len, CFG_PROBE_MAX);
	cfg_free(cfg);
	free(text);

	big[n] = 'x';
	big[n + 1] = '\0';
	ck_assert_int_ne(asprintf(&text, HC("'expect':'%s'"), big), -1);
	parse_bad(text, err, sizeof(err));
	ck_assert_str_eq(err, "bad.json: listeners[0].health_check.expect: "
			      "too long (1025 bytes, max 1024)");
	free(text);
	free(big);

	ck_assert_bad(HC("'send':''"),
		      "bad.json: listeners[0].health_check.send: must not be empty");
	ck_assert_bad(HC("'expect':''"),
		      "bad.json: listeners[0].health_check.expect: must not be empty");
	ck_assert_bad(HC("'send':7"),
		      "bad.json: listeners[0].health_check.send: must be a string, got integer");
}
END_TEST

START_TEST(test_syntax_error)
{
	char err[ERRLEN];

	/* A missing ']' found at line 4, column 1. */
	parse_bad("{\n  'workers': 2,\n  'listeners': [\n}\n", err,
		  sizeof(err));
	ck_assert_msg(strncmp(err, "bad.json:4:1: JSON syntax error: ", 33) == 0,
		      "got \"%s\"", err);

	parse_bad("{'workers': 2,}", err, sizeof(err));
	ck_assert_msg(strncmp(err, "bad.json:1:15: JSON syntax error: ", 34) == 0,
		      "got \"%s\"", err);

	parse_bad("", err, sizeof(err));
	ck_assert_msg(strncmp(err, "bad.json:1:0: JSON syntax error: ", 33) == 0,
		      "got \"%s\"", err);

	/* Trailing garbage after the object. */
	parse_bad(TOP("") " x", err, sizeof(err));
	ck_assert_msg(strstr(err, ": JSON syntax error: ") != NULL &&
		      strncmp(err, "bad.json:1:", 11) == 0, "got \"%s\"", err);
}
END_TEST

START_TEST(test_duplicate_json_key)
{
	char err[ERRLEN];

	parse_bad("{'workers': 1,\n 'workers': 2, 'listeners': []}", err,
		  sizeof(err));
	ck_assert_msg(strncmp(err, "bad.json:2:10: JSON syntax error: ", 34) == 0,
		      "got \"%s\"", err);
	ck_assert_ptr_nonnull(strstr(err, "duplicate"));
	ck_assert_ptr_nonnull(strstr(err, "workers"));

	parse_bad(BKS("{'name':'a','name':'b','address':'127.0.0.1:1'}"), err,
		  sizeof(err));
	ck_assert_ptr_nonnull(strstr(err, ": JSON syntax error: duplicate"));
}
END_TEST

START_TEST(test_unknown_keys)
{
	ck_assert_bad(TOP("'wrkers':2,"), "bad.json: unknown key \"wrkers\"");
	ck_assert_bad(LST(",'algo':'round-robin'"),
		      "bad.json: listeners[0]: unknown key \"algo\"");
	ck_assert_bad(BKS(BE ",{'name':'c','address':'127.0.0.1:2','wieght':2}"),
		      "bad.json: listeners[0].backends[1]: unknown key \"wieght\"");
	ck_assert_bad(HC("'interval':100"),
		      "bad.json: listeners[0].health_check: unknown key \"interval\"");
	ck_assert_bad(LST(",'timeouts':{'idle':5}"),
		      "bad.json: listeners[0].timeouts: unknown key \"idle\"");
	/* jansson refuses a NUL in a key; a control byte is never raw. */
	ck_assert_bad_prefix(TOP("'workers\\u0000x':2,"),
			     "bad.json:1:17: JSON syntax error: ");
	ck_assert_bad(TOP("'a\\nb':2,"), "bad.json: unknown key \"a\\nb\"");
}
END_TEST

START_TEST(test_missing_keys)
{
	ck_assert_bad("{'workers':2}", "bad.json: listeners: required key missing");
	ck_assert_bad("{}", "bad.json: listeners: required key missing");
	ck_assert_bad("{'listeners':[{'listen':'127.0.0.1:1','backends':[" BE "]}]}",
		      "bad.json: listeners[0].name: required key missing");
	ck_assert_bad("{'listeners':[{'name':'a','backends':[" BE "]}]}",
		      "bad.json: listeners[0].listen: required key missing");
	ck_assert_bad("{'listeners':[{'name':'a','listen':'127.0.0.1:1'}]}",
		      "bad.json: listeners[0].backends: required key missing (or name a pool with \"pool\", or several with \"split\")");
	ck_assert_bad(BKS(BE ",{'address':'127.0.0.1:1'}"),
		      "bad.json: listeners[0].backends[1].name: required key missing");
	ck_assert_bad(BKS("{'name':'x'}"),
		      "bad.json: listeners[0].backends[0].address: required key missing");
}
END_TEST

START_TEST(test_wrong_types)
{
	ck_assert_bad(TOP("'workers':'2',"),
		      "bad.json: workers: must be an integer, got string");
	ck_assert_bad(TOP("'workers':true,"),
		      "bad.json: workers: must be an integer, got boolean");
	ck_assert_bad(TOP("'workers':null,"),
		      "bad.json: workers: must be an integer, got null");
	ck_assert_bad(TOP("'workers':2.0,"),
		      "bad.json: workers: must be an integer, got real number 2");
	ck_assert_bad(TOP("'log_level':1,"),
		      "bad.json: log_level: must be a string, got integer");
	ck_assert_bad("[1]", "bad.json: top level must be an object, got array");
	ck_assert_bad("{'listeners':{}}",
		      "bad.json: listeners: must be an array, got object");
	ck_assert_bad("{'listeners':['web']}",
		      "bad.json: listeners[0]: must be an object, got string");
	ck_assert_bad(BKS(BE ",[]"),
		      "bad.json: listeners[0].backends[1]: must be an object, got array");
	ck_assert_bad("{'listeners':[{'name':'a','listen':'127.0.0.1:1','backends':{}}]}",
		      "bad.json: listeners[0].backends: must be an array, got object");
	ck_assert_bad("{'listeners':[{'name':7,'listen':'127.0.0.1:1','backends':[" BE "]}]}",
		      "bad.json: listeners[0].name: must be a string, got integer");
	ck_assert_bad(BKS("{'name':'b','address':['127.0.0.1:1']}"),
		      "bad.json: listeners[0].backends[0].address: must be a string, got array");
	ck_assert_bad(LST(",'health_check':true"),
		      "bad.json: listeners[0].health_check: must be an object, got boolean");
	ck_assert_bad(LST(",'timeouts':5"),
		      "bad.json: listeners[0].timeouts: must be an object, got integer");
	ck_assert_bad(HC("'enabled':'yes'"),
		      "bad.json: listeners[0].health_check.enabled: must be true or false, got string");
	ck_assert_bad(HC("'enabled':1"),
		      "bad.json: listeners[0].health_check.enabled: must be true or false, got integer");
	ck_assert_bad(LST(",'timeouts':{'idle_ms':1e3}"),
		      "bad.json: listeners[0].timeouts.idle_ms: must be an integer, got real number 1000");
	ck_assert_bad(LST(",'algorithm':null"),
		      "bad.json: listeners[0].algorithm: must be a string, got null");
}
END_TEST

START_TEST(test_empty_values)
{
	ck_assert_bad("{'listeners':[]}",
		      "bad.json: listeners: must contain at least one listener");
	ck_assert_bad(BKS(""),
		      "bad.json: listeners[0].backends: must contain at least one backend");
	ck_assert_bad("{'listeners':[{'name':'','listen':'127.0.0.1:1','backends':[" BE "]}]}",
		      "bad.json: listeners[0].name: must not be empty");
	ck_assert_bad(BKS("{'name':'b','address':''}"),
		      "bad.json: listeners[0].backends[0].address: must not be empty");
	ck_assert_bad(TOP("'log_level':'',"), "bad.json: log_level: must not be empty");
	ck_assert_bad(LST(",'algorithm':''"),
		      "bad.json: listeners[0].algorithm: must not be empty");
}
END_TEST

START_TEST(test_names)
{
	char name[70], *text;

	memset(name, 'n', 64);
	name[64] = '\0';
	ck_assert_int_ne(asprintf(&text, BKS("{'name':'%s','address':'127.0.0.1:1'}"),
				  name), -1);
	{
		char err[ERRLEN];

		parse_bad(text, err, sizeof(err));
		ck_assert_str_eq(err, "bad.json: listeners[0].backends[0].name: "
				      "too long (64 bytes, max 63)");
	}
	free(text);

	/* 63 characters is the longest name. */
	name[63] = '\0';
	ck_assert_int_ne(asprintf(&text, BKS("{'name':'%s','address':'127.0.0.1:1'}"),
				  name), -1);
	{
		struct config *cfg = parse_ok(text);

		ck_assert_str_eq(cfg->pools[0].backends[0].name, name);
		cfg_free(cfg);
	}
	free(text);

	ck_assert_bad(BKS("{'name':'my app','address':'127.0.0.1:1'}"),
		      "bad.json: listeners[0].backends[0].name: invalid character \" \" "
		      "in \"my app\" (allowed: A-Z a-z 0-9 _ . -)");
	ck_assert_bad(BKS("{'name':'caf\\u00e9','address':'127.0.0.1:1'}"),
		      "bad.json: listeners[0].backends[0].name: invalid character \"\\xc3\" "
		      "in \"caf\\xc3\\xa9\" (allowed: A-Z a-z 0-9 _ . -)");
	ck_assert_bad(BKS("{'name':'a\\u0000b','address':'127.0.0.1:1'}"),
		      "bad.json: listeners[0].backends[0].name: must not contain a NUL byte (\\u0000)");
}
END_TEST

START_TEST(test_duplicates)
{
	ck_assert_bad("{'listeners':["
		      "{'name':'web','listen':'127.0.0.1:1','backends':[" BE "]},"
		      "{'name':'web','listen':'127.0.0.1:2','backends':[" BE "]}]}",
		      "bad.json: listeners[1].name: duplicate listener name \"web\" "
		      "(also listeners[0])");
	ck_assert_bad(BKS("{'name':'app1','address':'127.0.0.1:1'},"
			  "{'name':'app2','address':'127.0.0.1:2'},"
			  "{'name':'app1','address':'127.0.0.1:3'}"),
		      "bad.json: listeners[0].backends[2].name: duplicate backend name "
		      "\"app1\" (also listeners[0].backends[0])");
	ck_assert_bad("{'listeners':["
		      "{'name':'a','listen':'127.0.0.1:80','backends':[" BE "]},"
		      "{'name':'b','listen':'127.0.0.1:80','backends':[" BE "]}]}",
		      "bad.json: listeners[1].listen: duplicate listen address "
		      "\"127.0.0.1:80\" (also listeners[0])");
	/* The same address written two ways is still the same address. */
	ck_assert_bad("{'listeners':["
		      "{'name':'a','listen':'0.0.0.0:80','backends':[" BE "]},"
		      "{'name':'b','listen':'[::1]:80','backends':[" BE "]},"
		      "{'name':'c','listen':'*:80','backends':[" BE "]}]}",
		      "bad.json: listeners[2].listen: duplicate listen address "
		      "\"*:80\" (also listeners[0])");
	ck_assert_bad("{'listeners':["
		      "{'name':'a','listen':'[::1]:80','backends':[" BE "]},"
		      "{'name':'b','listen':'[0:0::1]:80','backends':[" BE "]}]}",
		      "bad.json: listeners[1].listen: duplicate listen address "
		      "\"[0:0::1]:80\" (also listeners[0])");

	/* Same address on different ports, and a shared backend, are fine. */
	struct config *cfg = parse_ok("{'listeners':["
		"{'name':'a','listen':'127.0.0.1:80','backends':[" BE "]},"
		"{'name':'b','listen':'127.0.0.1:81','backends':[" BE "]},"
		"{'name':'c','listen':'[::1]:80','backends':[" BE "]},"
		"{'name':'d','listen':'[::1]:81','backends':[" BE "]}]}");
	ck_assert_uint_eq(cfg->nlisteners, 4);
	cfg_free(cfg);
}
END_TEST

START_TEST(test_bad_ports)
{
#define ADDR(a) BKS(BE ",{'name':'c','address':'" a "'}")
#define P "bad.json: listeners[0].backends[1].address: "
	ck_assert_bad(ADDR("127.0.0.1:0"), P "port 0 out of range (1-65535)");
	ck_assert_bad(ADDR("127.0.0.1:70000"), P "port 70000 out of range (1-65535)");
	ck_assert_bad(ADDR("127.0.0.1:99999999999999999999999"),
		      P "port 99999999999999999999999 out of range (1-65535)");
	ck_assert_bad(ADDR("127.0.0.1:abc"), P "port \"abc\" is not a number");
	ck_assert_bad(ADDR("127.0.0.1:-1"), P "port \"-1\" is not a number");
	ck_assert_bad(ADDR("127.0.0.1"),
		      P "missing port in \"127.0.0.1\" (expected \"host:port\")");
	ck_assert_bad(ADDR("127.0.0.1:"), P "missing port after ':' in \"127.0.0.1:\"");
	ck_assert_bad(ADDR("[::1]"),
		      P "missing port in \"[::1]\" (expected \"[ipv6]:port\")");
	ck_assert_bad(ADDR(":80"), P "missing host before ':' in \":80\"");
	ck_assert_bad(ADDR("::1:8080"),
		      P "IPv6 address must be in brackets, as in \"[::1]:8080\", got \"::1:8080\"");
	ck_assert_bad(ADDR("[::1:8080"),
		      P "missing ']' after IPv6 address in \"[::1:8080\"");
	ck_assert_bad(ADDR("[]:80"), P "empty IPv6 address in \"[]:80\"");
	ck_assert_bad(ADDR("[::1]8080"),
		      P "expected ':' and a port after ']' in \"[::1]8080\"");
	ck_assert_bad(ADDR("[127.0.0.1]:80"), P "\"127.0.0.1\" is not an IPv6 address");
	ck_assert_bad(ADDR("256.1.1.1:80"), P "\"256.1.1.1\" is not a valid IPv4 address");
	ck_assert_bad(ADDR("127.1:80"), P "\"127.1\" is not a valid IPv4 address");
	ck_assert_bad(ADDR("my host:80"),
		      P "invalid character \" \" in host name \"my host\"");
	ck_assert_bad(ADDR("*:80"),
		      P "\"*\" (any address) is only valid in listen; a backend needs a host to connect to");
	ck_assert_bad("{'listeners':[{'name':'a','listen':'*:0','backends':[" BE "]}]}",
		      "bad.json: listeners[0].listen: port 0 out of range (1-65535)");
	ck_assert_bad("{'listeners':[{'name':'a','listen':'8080','backends':[" BE "]}]}",
		      "bad.json: listeners[0].listen: missing port in \"8080\" (expected \"host:port\")");
#undef ADDR
#undef P
}
END_TEST

START_TEST(test_unresolvable)
{
	ck_assert_bad_prefix(BKS(BE ",{'name':'c','address':'nohost.invalid:80'}"),
			     "bad.json: listeners[0].backends[1].address: "
			     "cannot resolve \"nohost.invalid\": ");
	ck_assert_bad_prefix("{'listeners':[{'name':'a','listen':'nohost.invalid:80',"
			     "'backends':[" BE "]}]}",
			     "bad.json: listeners[0].listen: cannot resolve \"nohost.invalid\": ");
}
END_TEST

START_TEST(test_weight)
{
#define W(w) BKS("{'name':'b','address':'127.0.0.1:1','weight':" w "}")
#define P "bad.json: listeners[0].backends[0].weight: "
	ck_assert_bad(W("0"), P "must be an integer from 1 to 256, got 0");
	ck_assert_bad(W("257"), P "must be an integer from 1 to 256, got 257");
	ck_assert_bad(W("-3"), P "must be an integer from 1 to 256, got -3");
	ck_assert_bad(W("1.5"), P "must be an integer, got real number 1.5");
	ck_assert_bad(W("'2'"), P "must be an integer, got string");
	ck_assert_bad(W("true"), P "must be an integer, got boolean");
#undef W
#undef P
}
END_TEST

START_TEST(test_ranges)
{
	ck_assert_bad(TOP("'workers':0,"),
		      "bad.json: workers: must be an integer from 1 to 256, got 0");
	ck_assert_bad(TOP("'recv_buffers':3,"),
		      "bad.json: recv_buffers: must be 0 or a power of two, got 3");
	ck_assert_bad(TOP("'recv_buffers':65536,"),
		      "bad.json: recv_buffers: must be an integer from 0 to 32768, got 65536");
	ck_assert_bad(TOP("'workers':257,"),
		      "bad.json: workers: must be an integer from 1 to 256, got 257");
	ck_assert_bad(TOP("'shutdown_grace_ms':-1,"),
		      "bad.json: shutdown_grace_ms: must be an integer from 0 to 3600000, got -1");
	ck_assert_bad(TOP("'shutdown_grace_ms':3600001,"),
		      "bad.json: shutdown_grace_ms: must be an integer from 0 to 3600000, got 3600001");
	ck_assert_bad(TOP("'upgrade':{'handover_ms':60001},"),
		      "bad.json: upgrade.handover_ms: must be an integer from 0 to 60000, got 60001");
	ck_assert_bad(TOP("'upgrade':{'handover':5},"),
		      "bad.json: upgrade: unknown key \"handover\"");
	ck_assert_bad(TOP("'upgrade':2000,"),
		      "bad.json: upgrade: must be an object, got integer");
	ck_assert_bad(LST(",'discover':{'name':'a..b','type':'a','port':1}"),
		      "bad.json: listeners[0].discover.name: must be a DNS name (labels of letters, digits, '-' and '_', up to 253 bytes), got \"a..b\"");
	ck_assert_bad(LST(",'discover':{'name':'x.test','type':'mx'}"),
		      "bad.json: listeners[0].discover.type: unknown type \"mx\" (expected \"a\" for A and AAAA records, or \"srv\")");
	ck_assert_bad(LST(",'discover':{'name':'x.test','type':'a'}"),
		      "bad.json: listeners[0].discover.port: required with \"type\": \"a\": A and AAAA records carry no port");
	ck_assert_bad(LST(",'discover':{'name':'x.test','type':'srv','port':5}"),
		      "bad.json: listeners[0].discover.port: not with \"type\": \"srv\": SRV records carry the port");
	ck_assert_bad(LST(",'discover':{'name':'x.test','type':'srv','resolvers':['dns.example:53']}"),
		      "bad.json: listeners[0].discover.resolvers[0]: must be a numeric address, \"ip\" or \"ip:port\" (\"[v6]:port\"), got \"dns.example:53\"");
	ck_assert_bad(LST(",'discover':{'name':'x.test','type':'srv','min_ttl_ms':5000,'max_ttl_ms':1000}"),
		      "bad.json: listeners[0].discover.max_ttl_ms: must be at least min_ttl_ms (5000), got 1000");
	ck_assert_bad(LST(",'discover':{'name':'x.test','type':'srv','ttl':5}"),
		      "bad.json: listeners[0].discover: unknown key \"ttl\"");
	ck_assert_bad(LST(",'connect_attempts':0"),
		      "bad.json: listeners[0].connect_attempts: must be an integer from 1 to 10, got 0");
	ck_assert_bad(LST(",'connect_attempts':11"),
		      "bad.json: listeners[0].connect_attempts: must be an integer from 1 to 10, got 11");
	ck_assert_bad(LST(",'tcp_congestion':'Cubic!'"),
		      "bad.json: listeners[0].tcp_congestion: must be a "
		      "congestion control's name (like \"cubic\"), got "
		      "\"Cubic!\"");
	ck_assert_bad(LST(",'tcp_congestion':'sixteen_chars_cc'"),
		      "bad.json: listeners[0].tcp_congestion: must be a "
		      "congestion control's name (like \"cubic\"), got "
		      "\"sixteen_chars_cc\"");
	ck_assert_bad_prefix(LST(",'tcp_congestion':'nosuchcc'"),
			     "bad.json: listeners[0].tcp_congestion: "
			     "\"nosuchcc\": No such file or directory (this "
			     "kernel allows: ");
	ck_assert_bad(LST(",'tcp_congestion':3"),
		      "bad.json: listeners[0].tcp_congestion: must be a "
		      "string, got integer");
	{
		struct config *cfg = parse_ok(LST(",'tcp_congestion':'reno'"));

		/* A listener with its own backends: both sides. */
		ck_assert_str_eq(cfg->listeners[0].tcp_cc, "reno");
		ck_assert_str_eq(cfg->pools[0].tcp_cc, "reno");
		cfg_free(cfg);
	}
	ck_assert_bad(LST(",'client_speaks_first':1"),
		      "bad.json: listeners[0].client_speaks_first: must be "
		      "true or false, got integer");
	{
		struct config *cfg = parse_ok(LST(",'client_speaks_first':true"));

		ck_assert(cfg->listeners[0].client_first);
		cfg_free(cfg);
		cfg = parse_ok(LST(""));
		ck_assert(!cfg->listeners[0].client_first);
		cfg_free(cfg);
	}
	ck_assert_bad(LST(",'backlog':0"),
		      "bad.json: listeners[0].backlog: must be an integer from 1 to 65535, got 0");
	ck_assert_bad(LST(",'backlog':65536"),
		      "bad.json: listeners[0].backlog: must be an integer from 1 to 65535, got 65536");
	ck_assert_bad(LST(",'timeouts':{'connect_ms':0}"),
		      "bad.json: listeners[0].timeouts.connect_ms: must be an integer from 1 to 600000, got 0");
	ck_assert_bad(LST(",'timeouts':{'idle_ms':86400001}"),
		      "bad.json: listeners[0].timeouts.idle_ms: must be an integer from 0 to 86400000, got 86400001");
	ck_assert_bad(LST(",'timeouts':{'fail_ms':3600001}"),
		      "bad.json: listeners[0].timeouts.fail_ms: must be an integer from 0 to 3600000, got 3600001");
	ck_assert_bad(LST(",'timeouts':{'fail_ms':-1}"),
		      "bad.json: listeners[0].timeouts.fail_ms: must be an integer from 0 to 3600000, got -1");
	ck_assert_bad(HC("'interval_ms':49"),
		      "bad.json: listeners[0].health_check.interval_ms: must be an integer from 50 to 3600000, got 49");
	ck_assert_bad(HC("'timeout_ms':9"),
		      "bad.json: listeners[0].health_check.timeout_ms: must be an integer from 10 to 600000, got 9");
	ck_assert_bad(HC("'rise':0"),
		      "bad.json: listeners[0].health_check.rise: must be an integer from 1 to 100, got 0");
	ck_assert_bad(HC("'fall':101"),
		      "bad.json: listeners[0].health_check.fall: must be an integer from 1 to 100, got 101");
	ck_assert_bad(HC("'interval_ms':1000,'timeout_ms':1001"),
		      "bad.json: listeners[0].health_check.timeout_ms: must not exceed "
		      "interval_ms (1000), got 1001");
	/* The default timeout (1000) cannot outlast a shorter interval. */
	ck_assert_bad(HC("'interval_ms':500"),
		      "bad.json: listeners[0].health_check.timeout_ms: the default 1000 "
		      "exceeds interval_ms (500); set timeout_ms <= interval_ms");
}
END_TEST

START_TEST(test_admin)
{
	struct config *cfg;

	cfg = parse_ok(TOP(""));
	ck_assert(cfg->admin.enabled);
	ck_assert_str_eq(cfg->admin.socket, CFG_ADMIN_SOCKET_DEFAULT);
	ck_assert_uint_eq(cfg->admin.mode, 0600);
	ck_assert(!cfg->admin.has_listen);
	cfg_free(cfg);

	cfg = parse_ok(TOP("'admin':{'socket':'/tmp/x.sock','mode':'0660',"
			   "'listen':'9900'},"));
	ck_assert_str_eq(cfg->admin.socket, "/tmp/x.sock");
	ck_assert_uint_eq(cfg->admin.mode, 0660);
	ck_assert(cfg->admin.has_listen);
	assert_v4(&cfg->admin.listen, "127.0.0.1", 9900);
	cfg_free(cfg);

	cfg = parse_ok(TOP("'admin':{'enabled':false,'listen':'[::1]:9901'},"));
	ck_assert(!cfg->admin.enabled);
	assert_v6(&cfg->admin.listen, "::1", 9901);
	cfg_free(cfg);

	ck_assert_bad(TOP("'admin':{'sock':'/x'},"),
		      "bad.json: admin: unknown key \"sock\"");
	ck_assert_bad(TOP("'admin':{'mode':'0999'},"),
		      "bad.json: admin.mode: must be octal permission bits "
		      "like \"0600\", got \"0999\"");
	ck_assert_bad(TOP("'admin':{'mode':'-600'},"),
		      "bad.json: admin.mode: must be octal permission bits "
		      "like \"0600\", got \"-600\"");
	ck_assert_bad(TOP("'admin':{'mode':600},"),
		      "bad.json: admin.mode: must be a string, got integer");
	ck_assert_bad(TOP("'admin':{'listen':'70000'},"),
		      "bad.json: admin.listen: port 70000 out of range (1-65535)");
	ck_assert_bad(TOP("'admin':'on',"),
		      "bad.json: admin: must be an object, got string");
	ck_assert_bad_prefix(TOP("'admin':{'socket':'/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'},"),
			     "bad.json: admin.socket: too long (");
}
END_TEST

/* admin.allowed_hosts and admin.token_file (the status page's guards). */
START_TEST(test_admin_guards)
{
	char dir[] = "/tmp/ringlb-cfg-token.XXXXXX", path[64], cfgs[512];
	char want[256];
	struct config *cfg;
	FILE *f;

	cfg = parse_ok(TOP("'admin':{'allowed_hosts':['lb1.example.',"
			   "'LB-2.corp']},"));
	ck_assert_uint_eq(cfg->admin.nallowed_hosts, 2);
	ck_assert_str_eq(cfg->admin.allowed_hosts[0], "lb1.example");
	ck_assert_str_eq(cfg->admin.allowed_hosts[1], "LB-2.corp");
	ck_assert_str_eq(cfg->admin.token, "");
	cfg_free(cfg);
	ck_assert_bad(TOP("'admin':{'allowed_hosts':'lb1'},"),
		      "bad.json: admin.allowed_hosts: must be an array, got "
		      "string");
	ck_assert_bad(TOP("'admin':{'allowed_hosts':[1]},"),
		      "bad.json: admin.allowed_hosts[0]: must be a string, got "
		      "integer");
	ck_assert_bad(TOP("'admin':{'allowed_hosts':['a b']},"),
		      "bad.json: admin.allowed_hosts[0]: must be a DNS name "
		      "(letters, digits, '.' and '-', at most 253), got \"a b\"");
	ck_assert_bad(TOP("'admin':{'allowed_hosts':['ok','lb:80']},"),
		      "bad.json: admin.allowed_hosts[1]: must be a DNS name "
		      "(letters, digits, '.' and '-', at most 253), got "
		      "\"lb:80\"");
	ck_assert_bad(TOP("'admin':{'allowed_hosts':['.']},"),
		      "bad.json: admin.allowed_hosts[0]: must be a DNS name "
		      "(letters, digits, '.' and '-', at most 253), got \".\"");
	ck_assert_bad(TOP("'admin':{'allowed_hosts':['a','a','a','a','a','a',"
			  "'a','a','a','a','a','a','a','a','a','a','a']},"),
		      "bad.json: admin.allowed_hosts: at most 16 names, got 17");

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/t", dir);
	snprintf(cfgs, sizeof(cfgs),
		 "{'admin':{'token_file':'%s'},'listeners':[{'name':'web',"
		 "'listen':'127.0.0.1:8080','backends':[" BE "]}]}", path);
	snprintf(want, sizeof(want),
		 "bad.json: admin.token_file: %s: No such file or "
		 "directory", path);
	ck_assert_bad(cfgs, want);
	f = fopen(path, "w");
	fputs("0123456789abcdef-token\r\n", f);
	fclose(f);
	ck_assert_int_eq(chmod(path, 0600), 0);
	cfg = parse_ok(cfgs);
	ck_assert_str_eq(cfg->admin.token, "0123456789abcdef-token");
	ck_assert_str_eq(cfg->admin.token_file, path);
	cfg_free(cfg);
	f = fopen(path, "w");
	fputs("short\n", f);
	fclose(f);
	snprintf(want, sizeof(want),
		 "bad.json: admin.token_file: %s: the token must be 16 to "
		 "256 characters, got 5", path);
	ck_assert_bad(cfgs, want);
	f = fopen(path, "w");
	fputs("0123456789abcdef token\n", f);
	fclose(f);
	snprintf(want, sizeof(want),
		 "bad.json: admin.token_file: %s: the token must be one "
		 "line of printable characters with no space", path);
	ck_assert_bad(cfgs, want);
	f = fopen(path, "w");
	for (int i = 0; i < 300; i++)
		fputc('x', f);
	fclose(f);
	snprintf(want, sizeof(want),
		 "bad.json: admin.token_file: %s: the token is longer "
		 "than 256 characters", path);
	ck_assert_bad(cfgs, want);
	unlink(path);
	/* A FIFO (or a device) would block the read: refused at once. */
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	snprintf(want, sizeof(want),
		 "bad.json: admin.token_file: %s: not a regular file", path);
	ck_assert_bad(cfgs, want);
	unlink(path);
	rmdir(dir);
	ck_assert_bad(TOP("'admin':{'token_file':''},"),
		      "bad.json: admin.token_file: must not be empty");
	memset(path, 'a', sizeof(path));
	snprintf(cfgs, sizeof(cfgs),
		 "{'admin':{'token_file':'/%.*s%.*s%.*s%.*s%.*s'},'listeners':"
		 "[{'name':'web','listen':'127.0.0.1:8080','backends':[" BE
		 "]}]}", 60, path, 60, path, 60, path, 60, path, 60, path);
	ck_assert_bad(cfgs, "bad.json: admin.token_file: longer than 255 "
			    "bytes");
}
END_TEST

START_TEST(test_enums)
{
	struct config *cfg;

	ck_assert_bad(LST(",'algorithm':'random'"),
		      "bad.json: listeners[0].algorithm: unknown algorithm \"random\" "
		      "(expected round-robin, least-connections, random-two or maglev)");
	ck_assert_bad(LST(",'algorithm':'Round-Robin'"),
		      "bad.json: listeners[0].algorithm: unknown algorithm \"Round-Robin\" "
		      "(expected round-robin, least-connections, random-two or maglev)");
	ck_assert_bad(TOP("'log_level':'verbose',"),
		      "bad.json: log_level: unknown level \"verbose\" "
		      "(expected error, warn, info or debug)");
	ck_assert_bad(TOP("'log_level':'info\\u0000',"),
		      "bad.json: log_level: must not contain a NUL byte (\\u0000)");

	cfg = parse_ok(LST(",'algorithm':'round-robin'"));
	ck_assert_int_eq(cfg->pools[0].algorithm, ALG_ROUND_ROBIN);
	cfg_free(cfg);
	cfg = parse_ok(LST(",'algorithm':'random-two'"));
	ck_assert_int_eq(cfg->pools[0].algorithm, ALG_RANDOM_TWO);
	cfg_free(cfg);
	/* Only the whole name: the prefix is no algorithm of its own. */
	ck_assert_bad(LST(",'algorithm':'random-'"),
		      "bad.json: listeners[0].algorithm: unknown algorithm \"random-\" "
		      "(expected round-robin, least-connections, random-two or maglev)");
	cfg = parse_ok(TOP("'log_level':'warn',"));
	ck_assert_int_eq(cfg->log_level, LOG_WARN);
	ck_assert_int_eq(cfg->log_format, LOG_FORMAT_TEXT);
	cfg_free(cfg);
	cfg = parse_ok(TOP("'log_format':'json',"));
	ck_assert_int_eq(cfg->log_format, LOG_FORMAT_JSON);
	cfg_free(cfg);
	cfg = parse_ok(TOP("'log_format':'text',"));
	ck_assert_int_eq(cfg->log_format, LOG_FORMAT_TEXT);
	cfg_free(cfg);
	ck_assert_bad(TOP("'log_format':'JSON',"),
		      "bad.json: log_format: unknown format \"JSON\" "
		      "(expected text or json)");
	ck_assert_bad(TOP("'log_format':'logfmt',"),
		      "bad.json: log_format: unknown format \"logfmt\" "
		      "(expected text or json)");
	ck_assert_bad(TOP("'log_format':true,"),
		      "bad.json: log_format: must be a string, got boolean");
	ck_assert_bad(TOP("'log_format':'',"),
		      "bad.json: log_format: must not be empty");

	ck_assert_str_eq(cfg_algorithm_name(ALG_ROUND_ROBIN), "round-robin");
	ck_assert_str_eq(cfg_algorithm_name(ALG_LEAST_CONN), "least-connections");
	ck_assert_str_eq(cfg_algorithm_name(ALG_RANDOM_TWO), "random-two");
	ck_assert_str_eq(cfg_algorithm_name((enum cfg_algorithm)99), "?");
}
END_TEST

START_TEST(test_too_many_backends)
{
	size_t cap = 10001 * 64 + 256, n = 0;
	char *text = malloc(cap), err[ERRLEN];

	ck_assert_ptr_nonnull(text);
	n += (size_t)snprintf(text + n, cap - n,
			      "{'listeners':[{'name':'a','listen':'127.0.0.1:1','backends':[");
	for (int i = 0; i < 10001; i++)
		n += (size_t)snprintf(text + n, cap - n,
				      "%s{'name':'b%d','address':'127.0.0.1:%d'}",
				      i ? "," : "", i, i % 60000 + 1);
	snprintf(text + n, cap - n, "]}]}");
	parse_bad(text, err, sizeof(err));
	ck_assert_str_eq(err, "bad.json: listeners[0].backends: too many backends "
			      "(10001, max 10000)");

	/* 10000 is allowed: cut the last backend off. */
	*strrchr(text, '{') = '\0';
	memcpy(text + strlen(text) - 1, "]}]}", 5);
	struct config *cfg = parse_ok(text);
	ck_assert_uint_eq(cfg->pools[0].nbackends, 10000);
	ck_assert_str_eq(cfg->pools[0].backends[9999].name, "b9999");
	cfg_free(cfg);
	free(text);
}
END_TEST

START_TEST(test_parse_addr)
{
	struct cfg_addr a;
	char err[256];

	ck_assert_int_eq(cfg_parse_addr("10.1.2.3:443", &a, err, sizeof(err)), 0);
	assert_v4(&a, "10.1.2.3", 443);
	ck_assert_str_eq(a.text, "10.1.2.3:443");

	ck_assert_int_eq(cfg_parse_addr("[2001:db8::5]:1", &a, err, sizeof(err)), 0);
	assert_v6(&a, "2001:db8::5", 1);
	ck_assert_str_eq(a.text, "[2001:db8::5]:1");

	ck_assert_int_eq(cfg_parse_addr("*:8080", &a, err, sizeof(err)), 0);
	assert_v4(&a, "0.0.0.0", 8080);

	ck_assert_int_eq(cfg_parse_addr("localhost:00080", &a, err, sizeof(err)), 0);
	ck_assert_uint_eq(ntohs(((struct sockaddr_in *)&a.ss)->sin_port), 80);

	/* No file or path prefix: the caller adds it. */
	ck_assert_int_eq(cfg_parse_addr("1.2.3.4:0", &a, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "port 0 out of range (1-65535)");
	ck_assert_int_eq(a.ss.ss_family, 0);
	ck_assert_int_eq(cfg_parse_addr("1.2.3.4:65536", &a, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "port 65536 out of range (1-65535)");
	ck_assert_int_eq(cfg_parse_addr("", &a, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "empty address");
	ck_assert_int_eq(cfg_parse_addr("fe80::1", &a, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "IPv6 address must be in brackets, as in "
			      "\"[::1]:8080\", got \"fe80::1\"");
	ck_assert_int_eq(cfg_parse_addr("host:8\n0", &a, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "port \"8\\n0\" is not a number");
	ck_assert_int_eq(cfg_parse_addr("nohost.invalid:1", &a, err, sizeof(err)), -1);
	ck_assert_msg(strncmp(err, "cannot resolve \"nohost.invalid\": ", 33) == 0,
		      "got \"%s\"", err);

	{
		char longs[200];

		memset(longs, 'a', sizeof(longs));
		memcpy(longs + 190, ".test:80", 9);
		ck_assert_int_eq(cfg_parse_addr(longs, &a, err, sizeof(err)),
				 -1);
		ck_assert_str_eq(err, "too long (198 bytes, max 95)");
	}

	/* A short buffer truncates the message and never overflows. */
	ck_assert_int_eq(cfg_parse_addr("1.2.3.4:0", &a, err, 5), -1);
	ck_assert_str_eq(err, "port");
	ck_assert_int_eq(cfg_parse_addr("1.2.3.4:0", &a, NULL, 0), -1);
}
END_TEST

START_TEST(test_small_err_buffer)
{
	struct config *cfg;
	char err[16];
	char *t = dq(TOP("'workers':0,"));

	memset(err, 'Z', sizeof(err));
	ck_assert_int_eq(cfg_parse(t, strlen(t), "bad.json", &cfg, err,
				   sizeof(err)), -1);
	ck_assert_str_eq(err, "bad.json: worke");
	ck_assert_int_eq(cfg_parse(t, strlen(t), "bad.json", &cfg, NULL, 0), -1);
	ck_assert_ptr_null(cfg);
	free(t);
}
END_TEST

START_TEST(test_message_safety)
{
	char key[201], want[ERRLEN], err[ERRLEN], *text;
	struct config *cfg;
	char *t;

	/* A long value from the file is cut so the message stays short. */
	memset(key, 'k', 200);
	key[200] = '\0';
	ck_assert_int_ne(asprintf(&text, TOP("'%s':1,"), key), -1);
	parse_bad(text, err, sizeof(err));
	snprintf(want, sizeof(want), "bad.json: unknown key \"%.74s\"...", key);
	ck_assert_str_eq(err, want);
	free(text);

	/* Even a file name cannot split the line. */
	t = dq(TOP("'workers':0,"));
	ck_assert_int_eq(cfg_parse(t, strlen(t), "a\nb.json", &cfg, err,
				   sizeof(err)), -1);
	ck_assert_str_eq(err, "a?b.json: workers: must be an integer from 1 "
			      "to 256, got 0");
	free(t);
}
END_TEST

/* Write text to a fresh temporary file and return its name. */
static char *
write_temp(const char *text)
{
	char *path = strdup("/tmp/check_config.XXXXXX");
	char *t = dq(text);
	size_t len = strlen(t);
	int fd;

	ck_assert_ptr_nonnull(path);
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, t, len), (ssize_t)len);
	close(fd);
	free(t);
	return path;
}

START_TEST(test_load_file)
{
	struct config *cfg = NULL;
	char err[ERRLEN] = "";
	char *path = write_temp(full_config);

	ck_assert_msg(cfg_load(path, &cfg, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(cfg->path, path);
	ck_assert_uint_eq(cfg->nlisteners, 3);
	ck_assert_uint_eq(cfg->pools[0].health.send_len, 5);
	cfg_free(cfg);
	unlink(path);
	free(path);
}
END_TEST

START_TEST(test_load_errors)
{
	struct config *cfg = (struct config *)&cfg;
	char err[ERRLEN], want[ERRLEN];
	char *path;

	ck_assert_int_eq(cfg_load("/nonexistent/ringlb.json", &cfg, err,
				  sizeof(err)), -1);
	ck_assert_ptr_null(cfg);
	ck_assert_str_eq(err, "/nonexistent/ringlb.json: cannot read: "
			      "No such file or directory");

	ck_assert_int_eq(cfg_load("/tmp", &cfg, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "/tmp: cannot read: Is a directory");

	/* An endless file stops at the size cap instead of eating memory. */
	ck_assert_int_eq(cfg_load("/dev/zero", &cfg, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "/dev/zero: cannot read: File too large");

	/* The file's own name leads both kinds of message. */
	path = write_temp("{\n 'workers': 1\n 'listeners': []\n}\n");
	ck_assert_int_eq(cfg_load(path, &cfg, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:3:12: JSON syntax error: ", path);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "got \"%s\"", err);
	unlink(path);
	free(path);

	path = write_temp(BKS("{'name':'b','address':'127.0.0.1:1','weight':0}"));
	ck_assert_int_eq(cfg_load(path, &cfg, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: listeners[0].backends[0].weight: "
		 "must be an integer from 1 to 256, got 0", path);
	ck_assert_str_eq(err, want);
	unlink(path);
	free(path);
}
END_TEST

/*
 * Fail jansson's nth allocation from here on: every loader failure must give
 * a clean message and, under LeakSanitizer, leave nothing behind.
 */
static int fail_left;

static void *
fail_malloc(size_t n)
{
	if (fail_left-- == 0)
		return NULL;
	return malloc(n);
}

START_TEST(test_jansson_oom)
{
	char *t = dq(full_config);
	struct config *cfg;
	char err[ERRLEN];
	int n;

	for (n = 0; n < 100000; n++) {
		fail_left = n;
		json_set_alloc_funcs(fail_malloc, free);
		if (cfg_parse(t, strlen(t), "oom.json", &cfg, err,
			      sizeof(err)) == 0)
			break;
		ck_assert_ptr_null(cfg);
		ck_assert_msg(strncmp(err, "oom.json", 8) == 0, "got \"%s\"",
			      err);
		/* Never an empty reason after "JSON syntax error: ". */
		ck_assert_msg(err[strlen(err) - 1] != ' ', "got \"%s\"", err);
	}
	json_set_alloc_funcs(malloc, free);
	ck_assert_int_gt(n, 0);
	ck_assert_ptr_nonnull(cfg);
	cfg_free(cfg);
	free(t);
}
END_TEST

/* allow, deny, max_connections and per_source as parsed. */
START_TEST(test_access_valid)
{
	struct config *cfg;
	const struct cfg_listener *l;
	static const uint8_t mapped_net[4] = { 10, 1, 0, 0 };

	cfg = parse_ok(LST(""));
	l = &cfg->listeners[0];
	ck_assert_uint_eq(l->max_connections, 0);
	ck_assert_uint_eq(l->nallow, 0);
	ck_assert_uint_eq(l->ndeny, 0);
	ck_assert(!l->per_source.enabled);
	ck_assert_uint_eq(cfg_listener_pool(cfg, l)->backends[0].max_connections, 0);
	ck_assert(!cfg->has_user);
	cfg_free(cfg);

	cfg = parse_ok("{'listeners':[{'name':'web','listen':'127.0.0.1:8080',"
		       "'max_connections':100,"
		       "'allow':['10.0.0.0/8','2001:db8::/32','192.0.2.7',"
		       "'::ffff:10.1.0.0/112','0.0.0.0/0'],"
		       "'deny':['10.9.0.0/16','::1'],"
		       "'per_source':{'max_connections':3,'rate':5},"
		       "'backends':[{'name':'b','address':'127.0.0.1:1',"
		       "'max_connections':7}]}]}");
	l = &cfg->listeners[0];
	ck_assert_uint_eq(l->max_connections, 100);
	ck_assert_uint_eq(cfg_listener_pool(cfg, l)->backends[0].max_connections, 7);
	ck_assert_uint_eq(l->nallow, 5);
	ck_assert_uint_eq(l->allow[0].family, AF_INET);
	ck_assert_uint_eq(l->allow[0].prefix, 8);
	ck_assert_uint_eq(l->allow[0].addr[0], 10);
	ck_assert_uint_eq(l->allow[1].family, AF_INET6);
	ck_assert_uint_eq(l->allow[1].prefix, 32);
	ck_assert_uint_eq(l->allow[2].prefix, 32);
	/* An IPv4-mapped range is the IPv4 range. */
	ck_assert_uint_eq(l->allow[3].family, AF_INET);
	ck_assert_uint_eq(l->allow[3].prefix, 16);
	ck_assert_mem_eq(l->allow[3].addr, mapped_net, 4);
	ck_assert_uint_eq(l->allow[4].prefix, 0);
	ck_assert_uint_eq(l->ndeny, 2);
	ck_assert_uint_eq(l->deny[1].family, AF_INET6);
	ck_assert_uint_eq(l->deny[1].prefix, 128);
	ck_assert(l->per_source.enabled);
	ck_assert_uint_eq(l->per_source.max_connections, 3);
	ck_assert_uint_eq(l->per_source.rate, 5);
	ck_assert_uint_eq(l->per_source.burst, 5);	/* defaults to rate */
	ck_assert_uint_eq(l->per_source.ipv6_prefix, 64);
	ck_assert_uint_eq(l->per_source.table_size, 16384);
	cfg_free(cfg);

	cfg = parse_ok(LST(",'per_source':{'rate':1,'burst':9,'ipv6_prefix':128,"
			   "'table_size':64}"));
	l = &cfg->listeners[0];
	ck_assert_uint_eq(l->per_source.max_connections, 0);
	ck_assert_uint_eq(l->per_source.burst, 9);
	ck_assert_uint_eq(l->per_source.ipv6_prefix, 128);
	ck_assert_uint_eq(l->per_source.table_size, 64);
	cfg_free(cfg);
}
END_TEST

START_TEST(test_access_errors)
{
#define P "bad.json: listeners[0]."
	ck_assert_bad(LST(",'allow':['10.0.0.0/33']"),
		      P "allow[0]: bad address range \"10.0.0.0/33\": prefix "
		      "length must be a number from 0 to 32");
	ck_assert_bad(LST(",'deny':['::1','2001:db8::/129']"),
		      P "deny[1]: bad address range \"2001:db8::/129\": prefix "
		      "length must be a number from 0 to 128");
	ck_assert_bad(LST(",'allow':['10.0.0.1/8']"),
		      P "allow[0]: bad address range \"10.0.0.1/8\": host bits "
		      "set after the prefix (the range is 10.0.0.0/8)");
	ck_assert_bad(LST(",'deny':['2001:db8::1/32']"),
		      P "deny[0]: bad address range \"2001:db8::1/32\": host "
		      "bits set after the prefix (the range is 2001:db8::/32)");
	ck_assert_bad(LST(",'allow':['10.0.0.256']"),
		      P "allow[0]: bad address range \"10.0.0.256\": not an IPv4 "
		      "or IPv6 address or range (like 10.0.0.0/8 or 2001:db8::/32)");
	ck_assert_bad(LST(",'allow':['example.com/8']"),
		      P "allow[0]: bad address range \"example.com/8\": not an "
		      "IPv4 or IPv6 address or range (like 10.0.0.0/8 or "
		      "2001:db8::/32)");
	ck_assert_bad(LST(",'allow':['10.0.0.0/']"),
		      P "allow[0]: bad address range \"10.0.0.0/\": prefix "
		      "length must be a number from 0 to 32");
	ck_assert_bad(LST(",'allow':['10.0.0.0/-1']"),
		      P "allow[0]: bad address range \"10.0.0.0/-1\": prefix "
		      "length must be a number from 0 to 32");
	ck_assert_bad(LST(",'allow':['[::1]/128']"),
		      P "allow[0]: bad address range \"[::1]/128\": not an IPv4 "
		      "or IPv6 address or range (like 10.0.0.0/8 or 2001:db8::/32)");
	ck_assert_bad(LST(",'allow':['']"),
		      P "allow[0]: bad address range \"\": not an IPv4 or IPv6 "
		      "address or range (like 10.0.0.0/8 or 2001:db8::/32)");
	ck_assert_bad(LST(",'allow':['10.0.0.0/8\\u0000']"),
		      P "allow[0]: bad address range \"10.0.0.0/8\\x00\": "
		      "contains a NUL byte");
	ck_assert_bad(LST(",'allow':[8]"),
		      P "allow[0]: must be a string, got integer");
	ck_assert_bad(LST(",'allow':'10.0.0.0/8'"),
		      P "allow: must be an array, got string");
	ck_assert_bad(LST(",'deny':[]"),
		      P "deny: must contain at least one address range (leave "
		      "deny out instead)");
	ck_assert_bad(LST(",'max_connections':-1"),
		      P "max_connections: must be an integer from 0 to 10000000, "
		      "got -1");
	ck_assert_bad(BKS("{'name':'b','address':'127.0.0.1:1',"
			  "'max_connections':10000001}"),
		      P "backends[0].max_connections: must be an integer from 0 "
		      "to 10000000, got 10000001");
	ck_assert_bad(LST(",'per_source':{'max_conns':1}"),
		      P "per_source: unknown key \"max_conns\"");
	ck_assert_bad(LST(",'per_source':{}"),
		      P "per_source: sets no limit: give max_connections or "
		      "rate, or leave per_source out");
	ck_assert_bad(LST(",'per_source':{'max_connections':1,'burst':5}"),
		      P "per_source.burst: needs rate");
	ck_assert_bad(LST(",'per_source':{'rate':1000001}"),
		      P "per_source.rate: must be an integer from 0 to 1000000, "
		      "got 1000001");
	ck_assert_bad(LST(",'per_source':{'rate':1,'burst':0}"),
		      P "per_source.burst: must be an integer from 1 to 1000000, "
		      "got 0");
	ck_assert_bad(LST(",'per_source':{'rate':1,'ipv6_prefix':0}"),
		      P "per_source.ipv6_prefix: must be an integer from 1 to "
		      "128, got 0");
	ck_assert_bad(LST(",'per_source':{'rate':1,'ipv6_prefix':129}"),
		      P "per_source.ipv6_prefix: must be an integer from 1 to "
		      "128, got 129");
	ck_assert_bad(LST(",'per_source':{'rate':1,'table_size':63}"),
		      P "per_source.table_size: must be an integer from 64 to "
		      "16777216, got 63");
	ck_assert_bad(LST(",'per_source':[1]"),
		      P "per_source: must be an object, got array");
#undef P
}
END_TEST

START_TEST(test_user_group)
{
	struct config *cfg;

	cfg = parse_ok(TOP("'user':'nobody',"));
	ck_assert(cfg->has_user);
	ck_assert_str_eq(cfg->user, "nobody");
	ck_assert_uint_eq(cfg->uid, 65534);
	ck_assert_uint_eq(cfg->gid, 65534);	/* nobody's primary group */
	cfg_free(cfg);

	cfg = parse_ok(TOP("'user':'nobody','group':'root',"));
	ck_assert_str_eq(cfg->group, "root");
	ck_assert_uint_eq(cfg->gid, 0);
	cfg_free(cfg);

	ck_assert_bad(TOP("'user':'no-such-user-x',"),
		      "bad.json: user: unknown user \"no-such-user-x\"");
	ck_assert_bad(TOP("'user':'nobody','group':'no-such-group-x',"),
		      "bad.json: group: unknown group \"no-such-group-x\"");
	ck_assert_bad(TOP("'group':'nogroup',"),
		      "bad.json: group: needs user (the user to run as)");
	ck_assert_bad(TOP("'user':65534,"),
		      "bad.json: user: must be a string, got integer");
	ck_assert_bad(TOP("'user':'',"), "bad.json: user: must not be empty");
}
END_TEST


/* A top-level pool "pg" and listener(s) naming it; extra: more keys. */
#define PG "{'name':'pg','backends':[" BE "]}"
#define POOLS(pools, listeners) "{'pools':[" pools "],'listeners':[" listeners "]}"
#define USES(extra) "{'name':'v4','listen':'127.0.0.1:5432','pool':'pg'" extra "}"

START_TEST(test_pools_valid)
{
	struct config *cfg = parse_ok(POOLS(
		"{'name':'pg','algorithm':'least-connections',"
		"'connect_attempts':2,'send_proxy':'v2','fail_ms':500,"
		"'timeouts':{'connect_ms':700},'health_check':{'enabled':false},"
		"'backends':[" BE ",{'name':'c','address':'127.0.0.1:9002',"
		"'send_proxy':'off'},{'name':'d','address':'127.0.0.1:9003',"
		"'send_proxy':'v1'}]},"
		"{'name':'api','backends':[" BE "]}",
		USES(",'timeouts':{'idle_ms':9000}") ","
		"{'name':'v6','listen':'[::1]:5432','pool':'pg'},"
		"{'name':'own','listen':'127.0.0.1:1','backends':[" BE "]},"
		"{'name':'tls','listen':'127.0.0.1:443','pool':'api',"
		"'routes':[{'sni':['API.example.com','*.example.org'],'pool':'pg'}],"
		"'timeouts':{'preread_ms':700},"
		"'accept_proxy':{'from':['10.0.0.0/8','::1'],'timeout_ms':100,"
		"'allow_direct':true}},"
		"{'name':'sni','listen':'127.0.0.1:444',"
		"'routes':[{'sni':['a.b'],'pool':'api'}]}"));
	const struct cfg_pool *pg, *own;
	const struct cfg_listener *tls;

	/* The named pools first, then one per listener with backends. */
	ck_assert_uint_eq(cfg->npools, 3);
	pg = &cfg->pools[0];
	ck_assert_str_eq(pg->name, "pg");
	ck_assert(!pg->is_inline);
	ck_assert_int_eq(pg->algorithm, ALG_LEAST_CONN);
	ck_assert_uint_eq(pg->connect_attempts, 2);
	ck_assert_uint_eq(pg->connect_ms, 700);
	ck_assert_uint_eq(pg->fail_ms, 500);
	ck_assert_int_eq(pg->send_proxy, SEND_PROXY_V2);
	ck_assert_int_eq(cfg_backend_send_proxy(pg, &pg->backends[0]),
			 SEND_PROXY_V2);
	ck_assert_int_eq(cfg_backend_send_proxy(pg, &pg->backends[1]),
			 SEND_PROXY_OFF);
	ck_assert_int_eq(cfg_backend_send_proxy(pg, &pg->backends[2]),
			 SEND_PROXY_V1);
	ck_assert_uint_eq(pg->nusers, 3);	/* v4, v6, tls's route */
	own = &cfg->pools[2];
	ck_assert_str_eq(own->name, "own");
	ck_assert(own->is_inline);
	ck_assert_int_eq(own->send_proxy, SEND_PROXY_OFF);
	ck_assert_uint_eq(own->connect_ms, 3000);
	ck_assert_uint_eq(cfg->listeners[0].pool, 0);
	ck_assert_uint_eq(cfg->listeners[0].idle_ms, 9000);
	ck_assert_uint_eq(cfg->listeners[1].pool, 0);
	ck_assert_uint_eq(cfg->listeners[2].pool, 2);
	tls = &cfg->listeners[3];
	ck_assert_uint_eq(tls->pool, 1);
	ck_assert_uint_eq(tls->nroutes, 2);
	ck_assert_str_eq(tls->routes[0].sni, "api.example.com");
	ck_assert_str_eq(tls->routes[1].sni, "*.example.org");
	ck_assert_uint_eq(tls->routes[1].pool, 0);
	ck_assert_uint_eq(tls->preread_ms, 700);
	ck_assert(tls->accept_proxy.enabled);
	ck_assert_uint_eq(tls->accept_proxy.nfrom, 2);
	ck_assert_uint_eq(tls->accept_proxy.timeout_ms, 100);
	ck_assert(tls->accept_proxy.allow_direct);
	ck_assert_uint_eq(cfg->listeners[4].pool, CFG_NO_POOL);
	ck_assert_ptr_null(cfg_listener_pool(cfg, &cfg->listeners[4]));
	ck_assert_uint_eq(cfg->listeners[4].preread_ms, 5000);
	ck_assert(!cfg->listeners[0].accept_proxy.enabled);
	cfg_free(cfg);

	/* accept_proxy defaults. */
	cfg = parse_ok(LST(",'accept_proxy':{'from':['127.0.0.1']}"));
	ck_assert_uint_eq(cfg->listeners[0].accept_proxy.timeout_ms, 3000);
	ck_assert(!cfg->listeners[0].accept_proxy.allow_direct);
	cfg_free(cfg);
}
END_TEST

START_TEST(test_pools_errors)
{
	ck_assert_bad(POOLS(PG, USES("") ",{'name':'x','listen':'127.0.0.1:1','pool':'nope'}"),
		      "bad.json: listeners[1].pool: unknown pool \"nope\" (pools are defined in the top-level \"pools\" array)");
	ck_assert_bad(POOLS(PG "," PG, USES("")),
		      "bad.json: pools[1].name: duplicate pool name \"pg\" (also pools[0])");
	ck_assert_bad(POOLS(PG, USES(",'backends':[" BE "]")),
		      "bad.json: listeners[0].backends: not allowed with \"pool\": set it in the pool \"pg\" (or drop \"pool\" to give this listener its own backends)");
	ck_assert_bad(POOLS(PG, USES(",'algorithm':'round-robin'")),
		      "bad.json: listeners[0].algorithm: not allowed with \"pool\": set it in the pool \"pg\"");
	ck_assert_bad(POOLS(PG, USES(",'send_proxy':'v1'")),
		      "bad.json: listeners[0].send_proxy: not allowed with \"pool\": set it in the pool \"pg\"");
	ck_assert_bad(POOLS(PG, USES(",'timeouts':{'connect_ms':5}")),
		      "bad.json: listeners[0].timeouts.connect_ms: belongs to the pool: set it in the pool \"pg\"");
	ck_assert_bad(POOLS(PG, "{'name':'pg','listen':'127.0.0.1:1','backends':[" BE "]}"),
		      "bad.json: listeners[0].name: \"pg\" is also the name of pools[0]; a listener with its own backends defines a pool of its own name, so rename one of them");
	/* A listener's own pool is not one to name. */
	ck_assert_bad(POOLS(PG, "{'name':'own','listen':'127.0.0.1:1','backends':[" BE "]},"
			  "{'name':'x','listen':'127.0.0.1:2','pool':'own'}"),
		      "bad.json: listeners[1].pool: unknown pool \"own\" (pools are defined in the top-level \"pools\" array)");
	ck_assert_bad("{'pools':[],'listeners':[" USES("") "]}",
		      "bad.json: pools: must contain at least one pool (leave pools out instead)");
	ck_assert_bad(POOLS("{'name':'pg'}", USES("")),
		      "bad.json: pools[0].backends: required key missing");
	ck_assert_bad(POOLS("{'name':'pg','backends':[" BE "],'listen':'x'}", USES("")),
		      "bad.json: pools[0]: unknown key \"listen\"");
	ck_assert_bad(POOLS("{'name':'pg','backends':[" BE "],'timeouts':{'idle_ms':1}}", USES("")),
		      "bad.json: pools[0].timeouts: unknown key \"idle_ms\"");
	ck_assert_bad(POOLS("{'name':'pg','backends':[" BE "],'fail_ms':1,'timeouts':{'fail_ms':2}}", USES("")),
		      "bad.json: pools[0].fail_ms: given twice (also pools[0].timeouts.fail_ms); keep one");
	ck_assert_bad(POOLS("{'name':'pg','backends':[" BE "],'send_proxy':'v3'}", USES("")),
		      "bad.json: pools[0].send_proxy: unknown value \"v3\" (expected \"v1\", \"v2\" or \"off\")");
	ck_assert_bad(BKS("{'name':'b','address':'127.0.0.1:1','backup':'yes'}"),
		      "bad.json: listeners[0].backends[0].backup: must be true or false, got string");
	{
		struct config *cfg = parse_ok(BKS(BE ",{'name':'s','address':'127.0.0.1:2','backup':true}"));

		ck_assert(!cfg->pools[0].backends[0].backup);
		ck_assert(cfg->pools[0].backends[1].backup);
		cfg_free(cfg);
	}
	ck_assert_bad(BKS("{'name':'b','address':'127.0.0.1:1','send_proxy':true}"),
		      "bad.json: listeners[0].backends[0].send_proxy: must be a string, got boolean");
	ck_assert_bad(POOLS("{'name':'p g','backends':[" BE "]}", USES("")),
		      "bad.json: pools[0].name: invalid character \" \" in \"p g\" (allowed: A-Z a-z 0-9 _ . -)");
}
END_TEST

START_TEST(test_accept_proxy_errors)
{
	ck_assert_bad(LST(",'accept_proxy':{}"),
		      "bad.json: listeners[0].accept_proxy.from: required key missing (the addresses of the load balancers that send PROXY headers)");
	ck_assert_bad(LST(",'accept_proxy':{'from':[]}"),
		      "bad.json: listeners[0].accept_proxy.from: must contain at least one address range (leave from out instead)");
	ck_assert_bad(LST(",'accept_proxy':{'from':['10.0.0.1/8']}"),
		      "bad.json: listeners[0].accept_proxy.from[0]: bad address range \"10.0.0.1/8\": host bits set after the prefix (the range is 10.0.0.0/8)");
	ck_assert_bad(LST(",'accept_proxy':{'from':['::1'],'timeout_ms':0}"),
		      "bad.json: listeners[0].accept_proxy.timeout_ms: must be an integer from 1 to 600000, got 0");
	ck_assert_bad(LST(",'accept_proxy':{'from':['::1'],'allow_direct':1}"),
		      "bad.json: listeners[0].accept_proxy.allow_direct: must be true or false, got integer");
	ck_assert_bad(LST(",'accept_proxy':{'from':['::1'],'trust':1}"),
		      "bad.json: listeners[0].accept_proxy: unknown key \"trust\"");
	ck_assert_bad(LST(",'accept_proxy':['::1']"),
		      "bad.json: listeners[0].accept_proxy: must be an object, got array");
}
END_TEST

#define RT(routes) POOLS(PG, "{'name':'tls','listen':'127.0.0.1:1','routes':[" routes "]}")

START_TEST(test_routes_errors)
{
	ck_assert_bad(RT(""),
		      "bad.json: listeners[0].routes: must contain at least one route (leave routes out instead)");
	ck_assert_bad(RT("{'sni':['a.b']}"),
		      "bad.json: listeners[0].routes[0].pool: required key missing");
	ck_assert_bad(RT("{'sni':['a.b'],'pool':'nope'}"),
		      "bad.json: listeners[0].routes[0].pool: unknown pool \"nope\" (pools are defined in the top-level \"pools\" array)");
	ck_assert_bad(RT("{'sni':[],'pool':'pg'}"),
		      "bad.json: listeners[0].routes[0].sni: must contain at least one server name");
	ck_assert_bad(RT("{'pool':'pg'}"),
		      "bad.json: listeners[0].routes[0].sni: required key missing");
	ck_assert_bad(RT("{'sni':['a.b'],'pool':'pg','x':1}"),
		      "bad.json: listeners[0].routes[0]: unknown key \"x\"");
	ck_assert_bad(RT("{'sni':['a.*.b'],'pool':'pg'}"),
		      "bad.json: listeners[0].routes[0].sni[0]: bad server name \"a.*.b\": \"*\" only as a whole first label (\"*.example.org\")");
	ck_assert_bad(RT("{'sni':['*.'],'pool':'pg'}"),
		      "bad.json: listeners[0].routes[0].sni[0]: bad server name \"*.\": no host name");
	ck_assert_bad(RT("{'sni':['a..b'],'pool':'pg'}"),
		      "bad.json: listeners[0].routes[0].sni[0]: bad server name \"a..b\": an empty label");
	ck_assert_bad(RT("{'sni':['.a.b'],'pool':'pg'}"),
		      "bad.json: listeners[0].routes[0].sni[0]: bad server name \".a.b\": an empty label");
	ck_assert_bad(RT("{'sni':['*..a'],'pool':'pg'}"),
		      "bad.json: listeners[0].routes[0].sni[0]: bad server name \"*..a\": an empty label");
	ck_assert_bad(RT("{'sni':['a b'],'pool':'pg'}"),
		      "bad.json: listeners[0].routes[0].sni[0]: bad server name \"a b\": a host name has only letters, digits, '-', '_' and '.'");
	ck_assert_bad(RT("{'sni':[1],'pool':'pg'}"),
		      "bad.json: listeners[0].routes[0].sni[0]: must be a string, got integer");
	ck_assert_bad(RT("{'sni':['A.b'],'pool':'pg'},{'sni':['a.B'],'pool':'pg'}"),
		      "bad.json: listeners[0].routes[1].sni[0]: server name \"a.b\" is in two routes");
	ck_assert_bad(POOLS(PG, "{'name':'tls','listen':'127.0.0.1:1','algorithm':'round-robin','routes':[{'sni':['a'],'pool':'pg'}]}"),
		      "bad.json: listeners[0].algorithm: belongs to a pool, and this listener has none of its own (it routes by SNI)");
	ck_assert_bad(LST(",'timeouts':{'preread_ms':100}"),
		      "bad.json: listeners[0].timeouts.preread_ms: only for a listener with routes (it bounds reading the TLS ClientHello)");
	ck_assert_bad(POOLS(PG, "{'name':'l','listen':'127.0.0.1:1'}"),
		      "bad.json: listeners[0].backends: required key missing (or name a pool with \"pool\", or several with \"split\")");
}
END_TEST

#define PQ PG ",{'name':'pq','backends':[" BE "]}"
#define SPL(extra) POOLS(PQ, "{'name':'l','listen':'127.0.0.1:1'" extra "}")
#define TWO "[{'pool':'pg','weight':95},{'pool':'pq','weight':5}]"

START_TEST(test_systemd_listen)
{
	struct config *cfg = parse_ok(
		"{'listeners':[{'name':'a','listen':'systemd:web',"
		"'backends':[" BE "]},{'name':'b','listen':'systemd:ringlb-admin.socket',"
		"'backends':[" BE "]}]}");

	ck_assert_int_eq(cfg->listeners[0].addr.ss.ss_family, AF_UNSPEC);
	ck_assert_str_eq(cfg_addr_systemd(&cfg->listeners[0].addr), "web");
	ck_assert_str_eq(cfg_addr_systemd(&cfg->listeners[1].addr),
			 "ringlb-admin.socket");
	ck_assert_ptr_null(cfg_addr_systemd(&cfg->pools[0].backends[0].addr));
	cfg_free(cfg);
	ck_assert_bad("{'listeners':[{'name':'a','listen':'systemd:','backends':[" BE "]}]}",
		      "bad.json: listeners[0].listen: \"systemd:NAME\" needs a NAME of 1..87 chars of A-Z a-z 0-9 _ . @ - (the FileDescriptorName= of the socket unit)");
	ck_assert_bad("{'listeners':[{'name':'a','listen':'systemd:a b','backends':[" BE "]}]}",
		      "bad.json: listeners[0].listen: \"systemd:NAME\" needs a NAME of 1..87 chars of A-Z a-z 0-9 _ . @ - (the FileDescriptorName= of the socket unit)");
	ck_assert_bad("{'listeners':[{'name':'a','listen':'127.0.0.1:1','backends':[{'name':'b','address':'systemd:web'}]}]}",
		      "bad.json: listeners[0].backends[0].address: \"systemd:\" names a socket passed by systemd, for a listener; a backend needs a host to connect to");
	ck_assert_bad("{'listeners':[{'name':'a','listen':'systemd:web','backends':[" BE "]},"
		      "{'name':'b','listen':'systemd:web','backends':[" BE "]}]}",
		      "bad.json: listeners[1].listen: duplicate listen address \"systemd:web\" (also listeners[0])");
	ck_assert_bad("{'listeners':[{'name':'a','listen':'systemd:web','backlog':5,'backends':[" BE "]}]}",
		      "bad.json: listeners[0].backlog: not with a socket from systemd, which listens already: set Backlog= in the .socket unit");
}
END_TEST

START_TEST(test_split_valid)
{
	struct config *cfg = parse_ok(POOLS(PQ,
		"{'name':'l','listen':'127.0.0.1:1','split':" TWO ","
		"'sticky':'source-ip','routes':[{'sni':['a.b','*.c.d'],"
		"'split':[{'pool':'pq'},{'pool':'pg','weight':0}],"
		"'sticky':'none'},{'sni':['e.f'],'pool':'pg'}]}"));
	const struct cfg_listener *l = &cfg->listeners[0];
	const struct cfg_split *sp;

	ck_assert_uint_eq(cfg->nsplits, 2);
	ck_assert_uint_eq(l->pool, CFG_NO_POOL);
	ck_assert_uint_eq(l->split, 0);
	sp = &cfg->splits[0];
	ck_assert_uint_eq(sp->nsides, 2);
	ck_assert_uint_eq(sp->side[0].pool, 0);
	ck_assert_uint_eq(sp->side[0].weight, 95);
	ck_assert_uint_eq(sp->side[1].pool, 1);
	ck_assert_uint_eq(sp->side[1].weight, 5);
	ck_assert(sp->sticky);
	ck_assert_str_eq(sp->route, "");
	/* Both names of a route share its split; weight defaults to 1. */
	ck_assert_uint_eq(l->routes[0].split, 1);
	ck_assert_uint_eq(l->routes[1].split, 1);
	ck_assert_uint_eq(l->routes[0].pool, CFG_NO_POOL);
	ck_assert_uint_eq(l->routes[2].split, CFG_NO_SPLIT);
	ck_assert_uint_eq(l->routes[2].pool, 0);
	sp = &cfg->splits[1];
	ck_assert_str_eq(sp->route, "a.b");
	ck_assert(!sp->sticky);
	ck_assert_uint_eq(sp->side[0].pool, 1);
	ck_assert_uint_eq(sp->side[0].weight, 1);
	ck_assert_uint_eq(sp->side[1].weight, 0);
	ck_assert_uint_eq(cfg->pools[0].nusers, 3);
	cfg_free(cfg);
}
END_TEST

START_TEST(test_split_errors)
{
	ck_assert_bad(SPL(",'split':[{'pool':'pg'}]"),
		      "bad.json: listeners[0].split: must name from 2 to 16 pools, got 1 (for one, use \"pool\")");
	ck_assert_bad(SPL(",'split':[]"),
		      "bad.json: listeners[0].split: must name from 2 to 16 pools, got 0");
	ck_assert_bad(SPL(",'split':{}"),
		      "bad.json: listeners[0].split: must be an array, got object");
	ck_assert_bad(SPL(",'split':[{'pool':'pg'},'pq']"),
		      "bad.json: listeners[0].split[1]: must be an object, got string");
	ck_assert_bad(SPL(",'split':[{'pool':'pg'},{'weight':1}]"),
		      "bad.json: listeners[0].split[1].pool: required key missing");
	ck_assert_bad(SPL(",'split':[{'pool':'pg'},{'pool':'nope'}]"),
		      "bad.json: listeners[0].split[1].pool: unknown pool \"nope\" (pools are defined in the top-level \"pools\" array)");
	ck_assert_bad(SPL(",'split':[{'pool':'pg'},{'pool':'pg'}]"),
		      "bad.json: listeners[0].split[1].pool: pool \"pg\" is in this split twice");
	ck_assert_bad(SPL(",'split':[{'pool':'pg','weight':0},{'pool':'pq','weight':0}]"),
		      "bad.json: listeners[0].split: every weight is 0: at least one pool must take clients");
	ck_assert_bad(SPL(",'split':[{'pool':'pg','weight':10001},{'pool':'pq'}]"),
		      "bad.json: listeners[0].split[0].weight: must be an integer from 0 to 10000, got 10001");
	ck_assert_bad(SPL(",'split':[{'pool':'pg','share':1},{'pool':'pq'}]"),
		      "bad.json: listeners[0].split[0]: unknown key \"share\"");
	ck_assert_bad(SPL(",'split':" TWO ",'pool':'pg'"),
		      "bad.json: listeners[0].split: not with \"pool\": a listener sends its clients to one pool, or splits them over several");
	ck_assert_bad(SPL(",'split':" TWO ",'backends':[" BE "]"),
		      "bad.json: listeners[0].backends: not allowed with \"split\": set it in the pools of the split (or drop \"split\" to give this listener its own backends)");
	ck_assert_bad(SPL(",'split':" TWO ",'algorithm':'maglev'"),
		      "bad.json: listeners[0].algorithm: not allowed with \"split\": set it in the pools of the split");
	ck_assert_bad(SPL(",'split':" TWO ",'timeouts':{'connect_ms':5}"),
		      "bad.json: listeners[0].timeouts.connect_ms: belongs to the pool: set it in the pools of the split");
	ck_assert_bad(SPL(",'split':" TWO ",'sticky':'source-ip-port'"),
		      "bad.json: listeners[0].sticky: must be \"source-ip\" or \"none\"");
	ck_assert_bad(SPL(",'pool':'pg','sticky':'source-ip'"),
		      "bad.json: listeners[0].sticky: only with \"split\"");
	ck_assert_bad(RT("{'sni':['a.b'],'pool':'pg','split':[{'pool':'pg'},{'pool':'pg'}]}"),
		      "bad.json: listeners[0].routes[0].split: not with \"pool\": a route goes to one pool, or splits its clients over several");
	ck_assert_bad(RT("{'sni':['a.b'],'pool':'pg','sticky':'source-ip'}"),
		      "bad.json: listeners[0].routes[0].sticky: only with \"split\"");
	ck_assert_bad(RT("{'sni':['a.b'],'split':[{'pool':'pg'}]}"),
		      "bad.json: listeners[0].routes[0].split: must name from 2 to 16 pools, got 1 (for one, use \"pool\")");
}
END_TEST

START_TEST(test_hash)
{
	struct config *cfg = parse_ok(POOLS(
		"{'name':'pg','algorithm':'maglev','hash':{'key':'source-ip-port',"
		"'table_size':251,'balance_factor':125},'backends':[" BE "]},"
		"{'name':'d','algorithm':'maglev','backends':[" BE "]}",
		USES("") ",{'name':'x','listen':'127.0.0.1:2','pool':'d'}"));

	ck_assert_int_eq(cfg->pools[0].algorithm, ALG_MAGLEV);
	ck_assert_int_eq(cfg->pools[0].hash.key, HASH_SOURCE_IP_PORT);
	ck_assert_uint_eq(cfg->pools[0].hash.table_size, 251);
	ck_assert_uint_eq(cfg->pools[0].hash.balance_factor, 125);
	/* The defaults. */
	ck_assert_int_eq(cfg->pools[1].hash.key, HASH_SOURCE_IP);
	ck_assert_uint_eq(cfg->pools[1].hash.table_size, 65537);
	ck_assert_uint_eq(cfg->pools[1].hash.balance_factor, 0);
	cfg_free(cfg);
	cfg = parse_ok(LST(",'algorithm':'maglev','hash':{'key':'sni'}"));
	ck_assert_int_eq(cfg->pools[0].hash.key, HASH_SNI);
	cfg_free(cfg);

	ck_assert_bad(POOLS("{'name':'pg','hash':{},'backends':[" BE "]}", USES("")),
		      "bad.json: pools[0].hash: only with \"algorithm\": \"maglev\"");
	ck_assert_bad(POOLS("{'name':'pg','algorithm':'maglev','hash':{'table_size':1000},'backends':[" BE "]}", USES("")),
		      "bad.json: pools[0].hash.table_size: must be a prime (like 251, 4093, 65537, 1000003), got 1000");
	ck_assert_bad(POOLS("{'name':'pg','algorithm':'maglev','hash':{'table_size':250},'backends':[" BE "]}", USES("")),
		      "bad.json: pools[0].hash.table_size: must be an integer from 251 to 1000003, got 250");
	ck_assert_bad(POOLS("{'name':'pg','algorithm':'maglev','hash':{'table_size':1000033},'backends':[" BE "]}", USES("")),
		      "bad.json: pools[0].hash.table_size: must be an integer from 251 to 1000003, got 1000033");
	ck_assert_bad(POOLS("{'name':'pg','algorithm':'maglev','hash':{'key':'dst'},'backends':[" BE "]}", USES("")),
		      "bad.json: pools[0].hash.key: unknown key \"dst\" (expected \"source-ip\", \"source-ip-port\" or \"sni\")");
	ck_assert_bad(POOLS("{'name':'pg','algorithm':'maglev','hash':{'balance_factor':50},'backends':[" BE "]}", USES("")),
		      "bad.json: pools[0].hash.balance_factor: must be 0 (off) or a percentage of the average from 100 up, got 50");
	ck_assert_bad(POOLS("{'name':'pg','algorithm':'maglev','hash':{'seed':1},'backends':[" BE "]}", USES("")),
		      "bad.json: pools[0].hash: unknown key \"seed\"");
	cfg = parse_ok(POOLS("{'name':'pg','slow_start_ms':30000,'backends':[" BE "]}", USES("")));
	ck_assert_uint_eq(cfg->pools[0].slow_start_ms, 30000);
	cfg_free(cfg);
	cfg = parse_ok(LST(""));
	ck_assert_uint_eq(cfg->pools[0].slow_start_ms, 0);
	cfg_free(cfg);
	ck_assert_bad(POOLS("{'name':'pg','slow_start_ms':3600001,'backends':[" BE "]}", USES("")),
		      "bad.json: pools[0].slow_start_ms: must be an integer from 0 to 3600000, got 3600001");
	ck_assert_bad(POOLS(PG, USES(",'slow_start_ms':5")),
		      "bad.json: listeners[0].slow_start_ms: not allowed with \"pool\": set it in the pool \"pg\"");
	cfg = parse_ok(POOLS("{'name':'pg','ejection':{'consecutive_failures':3,'base_ms':500,'max_ms':4000,'max_percent':30,'early_close':true},'backends':[" BE "]}", USES("")));
	ck_assert_uint_eq(cfg->pools[0].fail_ms, 500);
	ck_assert_uint_eq(cfg->pools[0].ejection.consecutive_failures, 3);
	ck_assert_uint_eq(cfg->pools[0].ejection.max_ms, 4000);
	ck_assert_uint_eq(cfg->pools[0].ejection.max_percent, 30);
	ck_assert(cfg->pools[0].ejection.early_close);
	cfg_free(cfg);
	cfg = parse_ok(LST(""));	/* today's passive marks */
	ck_assert_uint_eq(cfg->pools[0].fail_ms, 10000);
	ck_assert_uint_eq(cfg->pools[0].ejection.consecutive_failures, 1);
	ck_assert_uint_eq(cfg->pools[0].ejection.max_ms, 300000);
	ck_assert_uint_eq(cfg->pools[0].ejection.max_percent, 50);
	ck_assert(!cfg->pools[0].ejection.early_close);
	cfg_free(cfg);
	ck_assert_bad(POOLS("{'name':'pg','fail_ms':5,'ejection':{'base_ms':5},'backends':[" BE "]}", USES("")),
		      "bad.json: pools[0].ejection.base_ms: the same as fail_ms, which is given too; keep one");
	ck_assert_bad(POOLS("{'name':'pg','ejection':{'base_ms':5000,'max_ms':100},'backends':[" BE "]}", USES("")),
		      "bad.json: pools[0].ejection.max_ms: must be at least base_ms (5000), got 100");
	ck_assert_bad(POOLS("{'name':'pg','ejection':{'max_percent':0},'backends':[" BE "]}", USES("")),
		      "bad.json: pools[0].ejection.max_percent: must be an integer from 1 to 100, got 0");
	ck_assert_bad(POOLS("{'name':'pg','ejection':{'after':1},'backends':[" BE "]}", USES("")),
		      "bad.json: pools[0].ejection: unknown key \"after\"");
	ck_assert_bad(POOLS(PG, USES(",'hash':{}")),
		      "bad.json: listeners[0].hash: not allowed with \"pool\": set it in the pool \"pg\"");
}
END_TEST

static Suite *
config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc;

	tc = tcase_create("valid");
	tcase_add_test(tc, test_full_valid);
	tcase_add_test(tc, test_top_defaults);
	tcase_add_test(tc, test_range_edges_ok);
	tcase_add_test(tc, test_probe_sizes);
	suite_add_tcase(s, tc);

	tc = tcase_create("syntax");
	tcase_add_test(tc, test_syntax_error);
	tcase_add_test(tc, test_duplicate_json_key);
	suite_add_tcase(s, tc);

	tc = tcase_create("schema");
	tcase_add_test(tc, test_unknown_keys);
	tcase_add_test(tc, test_missing_keys);
	tcase_add_test(tc, test_wrong_types);
	tcase_add_test(tc, test_empty_values);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_duplicates);
	tcase_add_test(tc, test_weight);
	tcase_add_test(tc, test_ranges);
	tcase_add_test(tc, test_enums);
	tcase_add_test(tc, test_admin);
	tcase_add_test(tc, test_admin_guards);
	tcase_add_test(tc, test_too_many_backends);
	tcase_add_test(tc, test_small_err_buffer);
	tcase_add_test(tc, test_message_safety);
	suite_add_tcase(s, tc);

	tc = tcase_create("pools");
	tcase_add_test(tc, test_pools_valid);
	tcase_add_test(tc, test_pools_errors);
	tcase_add_test(tc, test_accept_proxy_errors);
	tcase_add_test(tc, test_routes_errors);
	tcase_add_test(tc, test_split_valid);
	tcase_add_test(tc, test_systemd_listen);
	tcase_add_test(tc, test_split_errors);
	tcase_add_test(tc, test_hash);
	suite_add_tcase(s, tc);

	tc = tcase_create("access");
	tcase_add_test(tc, test_access_valid);
	tcase_add_test(tc, test_access_errors);
	tcase_add_test(tc, test_user_group);
	suite_add_tcase(s, tc);

	tc = tcase_create("addr");
	tcase_add_test(tc, test_parse_addr);
	tcase_add_test(tc, test_bad_ports);
	tcase_add_test(tc, test_unresolvable);
	suite_add_tcase(s, tc);

	tc = tcase_create("load");
	tcase_add_test(tc, test_load_file);
	tcase_add_test(tc, test_load_errors);
	tcase_add_test(tc, test_jansson_oom);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

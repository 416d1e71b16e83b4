/*
 * h_config.c: ringlb configs as jansson trees.  See h_config.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

json_t *
hc_new(void)
{
	json_t *cfg = json_pack("{s:i, s:s, s:i, s:{s:s}, s:[]}", "workers",
				2, "log_level", "info", "shutdown_grace_ms",
				2000, "admin", "socket", "@DIR@/admin.sock",
				"listeners");

	ck_assert_msg(cfg != NULL, "hc_new: out of memory");
	return cfg;
}

/* owner[key], an array created on first use. */
static json_t *
array_of(json_t *owner, const char *key)
{
	json_t *a = json_object_get(owner, key);

	if (a == NULL) {
		a = json_array();
		ck_assert_msg(a != NULL &&
				      json_object_set_new(owner, key, a) == 0,
			      "cannot add \"%s\"", key);
	}
	ck_assert_msg(json_is_array(a), "\"%s\" is not an array", key);
	return a;
}

/* Append obj (stolen) to owner[key]; obj borrowed. */
static json_t *
append(json_t *owner, const char *key, json_t *obj)
{
	json_t *a = array_of(owner, key);

	ck_assert_msg(obj != NULL && json_array_append_new(a, obj) == 0,
		      "cannot append to \"%s\"", key);
	return obj;
}

/* Is port taken by a listener of cfg already? */
static bool
port_used(const json_t *cfg, int port)
{
	const json_t *l;
	size_t i;

	json_array_foreach(json_object_get(cfg, "listeners"), i, l)
		if (hc_port(l) == port)
			return true;
	return false;
}

json_t *
hc_listener(json_t *cfg, const char *name, int port)
{
	char listen[64];

	/* h_free_port() only probes; two calls may return the same port. */
	while (port <= 0) {
		port = h_free_port();
		ck_assert_msg(port > 0, "no free port");
		if (port_used(cfg, port))
			port = 0;
	}
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	return append(cfg, "listeners",
		      json_pack("{s:s, s:s}", "name", name, "listen", listen));
}

void
hc_listen(json_t *listener, const char *host, int port)
{
	char listen[128];

	snprintf(listen, sizeof(listen), "%s:%d", host, port);
	hc_set(listener, "listen", json_string(listen));
}

json_t *
hc_pool(json_t *cfg, const char *name)
{
	return append(cfg, "pools",
		      json_pack("{s:s, s:[]}", "name", name, "backends"));
}

json_t *
hc_backend(json_t *owner, const struct h_backend *b, unsigned weight)
{
	char addr[64];
	json_t *o;

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", b->port);
	o = append(owner, "backends",
		   json_pack("{s:s, s:s}", "name", b->name, "address", addr));
	if (weight > 0)
		hc_set(o, "weight", json_integer(weight));
	return o;
}

/*
 * Walk path: the parent of its last component in *parent (created as
 * objects on the way when create), the last component in key.  false
 * when the path does not lead anywhere.
 */
static bool
walk(json_t *obj, const char *path, bool create, json_t **parent,
     char *key, size_t cap)
{
	const char *p = path, *dot;

	for (;;) {
		size_t n;
		json_t *next;

		dot = strchr(p, '.');
		n = dot != NULL ? (size_t)(dot - p) : strlen(p);
		ck_assert_msg(n > 0 && n < cap, "bad config path \"%s\"", path);
		memcpy(key, p, n);
		key[n] = '\0';
		if (dot == NULL) {
			*parent = obj;
			return true;
		}
		if (json_is_array(obj)) {
			char *end;
			unsigned long i = strtoul(key, &end, 10);

			ck_assert_msg(*end == '\0', "\"%s\" in \"%s\" is not an "
				      "index", key, path);
			next = json_array_get(obj, i);
		} else {
			ck_assert_msg(json_is_object(obj), "\"%s\": a step "
				      "before \"%s\" is not an object", path,
				      key);
			next = json_object_get(obj, key);
			if (next == NULL && create) {
				next = json_object();
				ck_assert(next != NULL &&
					  json_object_set_new(obj, key, next) ==
						  0);
			}
		}
		if (next == NULL)
			return false;
		obj = next;
		p = dot + 1;
	}
}

void
hc_set(json_t *obj, const char *path, json_t *val)
{
	char key[128];
	json_t *parent;
	bool ok;

	ck_assert_msg(val != NULL, "hc_set \"%s\": no value", path);
	ok = walk(obj, path, true, &parent, key, sizeof(key));
	ck_assert_msg(ok, "hc_set: \"%s\" leads nowhere", path);
	if (json_is_array(parent)) {
		char *end;
		unsigned long i = strtoul(key, &end, 10);

		ck_assert_msg(*end == '\0' && i < json_array_size(parent),
			      "hc_set \"%s\": no element %s", path, key);
		ok = json_array_set_new(parent, i, val) == 0;
	} else {
		ck_assert_msg(json_is_object(parent), "hc_set \"%s\": the "
			      "parent is not an object", path);
		ok = json_object_set_new(parent, key, val) == 0;
	}
	ck_assert_msg(ok, "hc_set \"%s\" failed", path);
}

json_t *
hc_get(const json_t *obj, const char *path)
{
	char key[128];
	json_t *parent;

	/* walk() does not change obj unless it creates. */
	if (!walk((json_t *)(uintptr_t)obj, path, false, &parent, key,
		  sizeof(key)))
		return NULL;
	if (json_is_array(parent))
		return json_array_get(parent, strtoul(key, NULL, 10));
	return json_object_get(parent, key);
}

void
hc_del(json_t *obj, const char *path)
{
	char key[128];
	json_t *parent;

	if (walk(obj, path, false, &parent, key, sizeof(key)) &&
	    json_is_object(parent))
		json_object_del(parent, key);
}

json_t *
hc_json(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, JSON_DECODE_ANY, &e);

	ck_assert_msg(j != NULL, "hc_json: %s at %d:%d in: %s", e.text,
		      e.line, e.column, text);
	return j;
}

int
hc_port(const json_t *listener)
{
	const char *listen, *colon;

	listen = json_string_value(json_object_get(listener, "listen"));
	if (listen == NULL || (colon = strrchr(listen, ':')) == NULL)
		return -1;
	return atoi(colon + 1);
}

char *
hc_dump(const json_t *cfg)
{
	char *text = json_dumps(cfg, JSON_INDENT(2));

	ck_assert_msg(text != NULL, "hc_dump: cannot serialize the config");
	return text;
}

int
h_lb_start_cfg(struct h_lb *lb, const json_t *cfg, int wait_port,
	       const char *extra_arg)
{
	char *text = hc_dump(cfg);
	int rc = h_lb_start_in(lb, text, wait_port, extra_arg);

	free(text);
	return rc;
}

int
h_lb_write_cfg(const struct h_lb *lb, const json_t *cfg)
{
	char *text = hc_dump(cfg), *sub;
	int rc;

	sub = h_subst(text, "@DIR@", lb->dir);
	free(text);
	if (sub == NULL)
		return -ENOMEM;
	rc = h_write_file(lb->cfg_path, sub);
	free(sub);
	return rc;
}

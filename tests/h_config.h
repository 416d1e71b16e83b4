/*
 * h_config.h: ringlb configs built as jansson trees, for every suite.  A
 * test starts from hc_new(), adds listeners, pools and backends, sets any
 * key by its dotted path, and starts ringlb on the result.  Part of
 * harness.h.
 *
 * Builders return borrowed references into cfg (valid while cfg lives) so
 * a test can keep changing what it added.  A builder that cannot do its
 * work fails the running test: none returns an error.  "@DIR@" in any
 * string stands for the ringlb's own temp dir (h_lb.h) and is replaced
 * when the file is written.
 */
#ifndef RINGLB_TEST_H_CONFIG_H
#define RINGLB_TEST_H_CONFIG_H

#include <jansson.h>

struct h_backend;
struct h_lb;

/*
 * {"workers": 2, "log_level": "info", "shutdown_grace_ms": 2000,
 *  "admin": {"socket": "@DIR@/admin.sock"}, "listeners": []}.
 * json_decref() it.
 */
json_t *hc_new(void);
/*
 * Append {"name", "listen": "127.0.0.1:PORT"} to "listeners".  With
 * port <= 0 a free port is chosen, different from every other listener's
 * in cfg; hc_port() reads it back.  A given port is used as it is (a v4
 * and a v6 listener may share one).
 */
json_t *hc_listener(json_t *cfg, const char *name, int port);
/* Set a listener's "listen" to "HOST:PORT" (host "[::1]", "127.0.0.2"). */
void hc_listen(json_t *listener, const char *host, int port);
/* Append {"name", "backends": []} to the top-level "pools" array. */
json_t *hc_pool(json_t *cfg, const char *name);
/*
 * Append {"name", "address": "127.0.0.1:PORT", "weight"} for b to owner's
 * "backends" (a listener or a pool); weight 0 writes none (ringlb's
 * default).
 */
json_t *hc_backend(json_t *owner, const struct h_backend *b,
		   unsigned weight);
/*
 * Set the value at a dotted path, stealing val: "timeouts.idle_ms",
 * "listeners.0.backends.1.weight".  A number indexes an array (which must
 * have that element); missing objects on the way are created.
 */
void hc_set(json_t *obj, const char *path, json_t *val);
/* The value at a dotted path (borrowed), or NULL. */
json_t *hc_get(const json_t *obj, const char *path);
/* Remove the key at a dotted path, if it is there. */
void hc_del(json_t *obj, const char *path);
/* Parse a literal fragment ("{ \"rise\": 1 }"); bad JSON fails the test. */
json_t *hc_json(const char *text);
/* Port of a listener's "listen" ("127.0.0.1:PORT", "[::1]:PORT"), or -1. */
int hc_port(const json_t *listener);
/* The file's text, indented; free() it. */
char *hc_dump(const json_t *cfg);

/*
 * h_lb_start_in() (h_lb.h) on hc_dump(cfg): a new temp dir, "@DIR@"
 * replaced by it, ringlb started.  0 or -errno.
 */
int h_lb_start_cfg(struct h_lb *lb, const json_t *cfg, int wait_port,
		   const char *extra_arg);
/*
 * Write cfg as lb's config.json again ("@DIR@" replaced), for a reload.
 * 0 or -errno.
 */
int h_lb_write_cfg(const struct h_lb *lb, const json_t *cfg);

#endif

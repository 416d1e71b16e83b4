/*
 * h_api.h: the admin API and ringlbctl of a ringlb started by the harness
 * with the usual admin socket ("@DIR@/admin.sock", as hc_new() writes it).
 * Part of harness.h.
 */
#ifndef RINGLB_TEST_H_API_H
#define RINGLB_TEST_H_API_H

#include <jansson.h>

struct h_lb;
struct h_run;

/*
 * One request to lb's admin socket; the reply must have status `want`
 * and be JSON, else the test fails.  The parsed body; json_decref() it.
 */
json_t *h_api(const struct h_lb *lb, const char *method, const char *path,
	      const char *body, int want);
/* Clients listener turned away for reason (its refused.REASON). */
long long h_refused(const struct h_lb *lb, const char *listener,
		    const char *reason);
/* The integer at a dotted path of j (hc_get), failing the test if none. */
long long h_jint(const json_t *j, const char *path);
/* The string at a dotted path of j, failing the test if none. */
const char *h_jstr(const json_t *j, const char *path);
/* lb's /metrics text, status 200 or the test fails; free() it. */
char *h_metrics(const struct h_lb *lb);
/* The element of array a whose "name" is name, or NULL. */
json_t *h_jnamed(const json_t *a, const char *name);
/*
 * ringlbctl -s <lb's socket> ARGS... (NULL-terminated); calloc'd result
 * (free() it).  The test fails if it cannot be run at all; it is killed
 * after 20 s (an upgrade may take 10).
 */
struct h_run *h_ctlv(const struct h_lb *lb, const char *arg, ...)
	__attribute__((sentinel));
#define h_ctl(lb, ...) h_ctlv((lb), __VA_ARGS__, (const char *)NULL)

#endif

/*
 * h_api.c: the admin API and ringlbctl from tests (see h_api.h).
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

json_t *
h_api(const struct h_lb *lb, const char *method, const char *path,
      const char *body, int want)
{
	char sock[160];
	struct h_http r;
	json_error_t e;
	json_t *j;
	int rc;

	snprintf(sock, sizeof(sock), "%s/admin.sock", lb->dir);
	rc = h_http(sock, NULL, 0, method, path, body, 5000, &r);
	ck_assert_msg(rc == 0, "%s %s: no reply (%d)", method, path, rc);
	ck_assert_msg(r.status == want, "%s %s: status %d, want %d: %s",
		      method, path, r.status, want, r.body);
	j = json_loads(r.body, 0, &e);
	ck_assert_msg(j != NULL, "%s %s: not JSON: %s", method, path, r.body);
	h_http_free(&r);
	return j;
}

long long
h_refused(const struct h_lb *lb, const char *listener, const char *reason)
{
	char path[128];
	json_t *j;
	long long n;

	snprintf(path, sizeof(path), "/listeners/%s", listener);
	j = h_api(lb, "GET", path, NULL, 200);
	snprintf(path, sizeof(path), "refused.%s", reason);
	n = h_jint(j, path);
	json_decref(j);
	return n;
}

long long
h_jint(const json_t *j, const char *path)
{
	json_t *v = hc_get(j, path);

	ck_assert_msg(json_is_integer(v), "no integer at %s", path);
	return json_integer_value(v);
}

const char *
h_jstr(const json_t *j, const char *path)
{
	json_t *v = hc_get(j, path);

	ck_assert_msg(json_is_string(v), "no string at %s", path);
	return json_string_value(v);
}

json_t *
h_jnamed(const json_t *a, const char *name)
{
	size_t i;
	json_t *v;

	json_array_foreach(a, i, v) {
		const char *n = json_string_value(json_object_get(v, "name"));

		if (n && strcmp(n, name) == 0)
			return v;
	}
	return NULL;
}

struct h_run *
h_ctlv(const struct h_lb *lb, const char *arg, ...)
{
	const char *argv[16];
	char sock[160];
	struct h_run *r = calloc(1, sizeof(*r));
	const char *ctl = h_ctl_bin();
	va_list ap;
	int n = 0;

	ck_assert_ptr_nonnull(r);
	ck_assert_msg(ctl != NULL, "no ringlbctl");
	snprintf(sock, sizeof(sock), "%s/admin.sock", lb->dir);
	argv[n++] = ctl;
	argv[n++] = "-s";
	argv[n++] = sock;
	va_start(ap, arg);
	for (const char *a = arg; a && n < 15; a = va_arg(ap, const char *))
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	ck_assert_int_eq(h_run(argv, 20000, r), 0);
	return r;
}

char *
h_metrics(const struct h_lb *lb)
{
	struct h_http r;
	char sock[128];
	char *m;

	snprintf(sock, sizeof(sock), "%s/admin.sock", lb->dir);
	ck_assert_int_eq(h_http(sock, NULL, 0, "GET", "/metrics", NULL, 5000,
				&r),
			 0);
	ck_assert_int_eq(r.status, 200);
	m = strdup(r.body);
	h_http_free(&r);
	ck_assert_ptr_nonnull(m);
	return m;
}

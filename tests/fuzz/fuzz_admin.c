/*
 * fuzz_admin.c: admin API requests (method, path, JSON body) through
 * route() in src/admin.c, against a real ringlb control plane: one worker,
 * a listener with its own backends and one that splits (by default and
 * by SNI) over two pools, on 127.0.0.1, health checks off, started once.
 * Drain, maint, ready, weight, split changes and reload really happen.
 *
 * libmicrohttpd's HTTP parsing is not ours to fuzz; the four response
 * functions route() calls are replaced below, which lets the target check
 * every reply: a known status, a JSON object body, an "error" string on
 * every error.
 *
 * Input: "METHOD PATH\n" then the body (as many bytes as follow).
 */
#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

#include "../../src/admin.c"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

struct MHD_Response {
	char *body;
	size_t len;
};

static unsigned last_code;

struct MHD_Response *
MHD_create_response_from_buffer(size_t size, void *buffer,
				enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r = calloc(1, sizeof(*r));

	if (mode != MHD_RESPMEM_MUST_FREE)
		FUZZ_FAIL("response memory mode %d", (int)mode);
	if (r == NULL)
		return NULL;
	r->body = buffer;
	r->len = size;
	return r;
}

enum MHD_Result
MHD_add_response_header(struct MHD_Response *r, const char *header,
			const char *content)
{
	if (strchr(content, '\n') != NULL || strchr(content, '\r') != NULL)
		FUZZ_FAIL("header %s carries a line break", header);
	return MHD_YES;
}

void
MHD_destroy_response(struct MHD_Response *r)
{
	free(r->body);
	free(r);
}

enum MHD_Result
MHD_queue_response(struct MHD_Connection *conn, unsigned int code,
		   struct MHD_Response *r)
{
	json_t *j, *e;
	json_error_t je;

	last_code = code;
	if (code != 200 && code != 400 && code != 404 && code != 405 &&
	    code != 409 && code != 413 && code != 500)
		FUZZ_FAIL("status %u", code);
	/* /metrics is text; everything else is a JSON object. */
	if (code == 200 && r->len > 0 && r->body[0] != '{')
		return MHD_YES;
	j = json_loadb(r->body, r->len, 0, &je);
	if (!json_is_object(j))
		FUZZ_FAIL("status %u, body not a JSON object: %s", code,
			  je.text);
	e = json_object_get(j, "error");
	if (code != 200 && !json_is_string(e))
		FUZZ_FAIL("status %u without an \"error\" string", code);
	json_decref(j);
	return MHD_YES;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static char dir[] = "/tmp/ringlb-fuzz-admin.XXXXXX";
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	struct config *cfg;
	char path[64], err[1024];
	int fd[2], port[2];
	FILE *f;

	/* Free ports for the listeners: bind 0, read them, let them go. */
	for (int i = 0; i < 2; i++) {
		sin.sin_port = 0;
		len = sizeof(sin);
		fd[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (fd[i] < 0 ||
		    bind(fd[i], (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
		    getsockname(fd[i], (struct sockaddr *)&sin, &len) < 0)
			FUZZ_FAIL("free port: %s", strerror(errno));
		port[i] = ntohs(sin.sin_port);
	}
	close(fd[0]);
	close(fd[1]);
	if (mkdtemp(dir) == NULL)
		FUZZ_FAIL("mkdtemp: %s", strerror(errno));
	snprintf(path, sizeof(path), "%s/ringlb.json", dir);
	f = fopen(path, "w");
	if (f == NULL)
		FUZZ_FAIL("%s: %s", path, strerror(errno));
	fprintf(f, "{\"workers\": 1, \"log_level\": \"error\","
		" \"admin\": {\"enabled\": false},"
		" \"pools\": [{\"name\": \"v1\","
		"   \"health_check\": {\"enabled\": false},"
		"   \"backends\": [{\"name\": \"c\", \"address\": \"127.0.0.1:3\"}]},"
		"  {\"name\": \"v2\", \"health_check\": {\"enabled\": false},"
		"   \"backends\": [{\"name\": \"d\", \"address\": \"127.0.0.1:4\"}]}],"
		" \"listeners\": [{\"name\": \"web\","
		"  \"listen\": \"127.0.0.1:%d\","
		"  \"health_check\": {\"enabled\": false},"
		"  \"backends\": [{\"name\": \"a\", \"address\": \"127.0.0.1:1\"},"
		"   {\"name\": \"b\", \"address\": \"127.0.0.1:2\","
		"    \"weight\": 2}]},"
		"  {\"name\": \"ab\", \"listen\": \"127.0.0.1:%d\","
		"   \"split\": [{\"pool\": \"v1\", \"weight\": 95},"
		"    {\"pool\": \"v2\", \"weight\": 5}], \"sticky\": \"source-ip\","
		"   \"routes\": [{\"sni\": [\"a.example\", \"*.b.example\"],"
		"    \"split\": [{\"pool\": \"v2\"}, {\"pool\": \"v1\"}]}]}]}\n",
		port[0], port[1]);
	fclose(f);
	if (cfg_load(path, &cfg, err, sizeof(err)) < 0)
		FUZZ_FAIL("%s", err);
	log_set_level(LOG_ERROR);
	if (control_start(cfg, path, false, err, sizeof(err)) < 0)
		FUZZ_FAIL("control_start: %s", err);
	/* The workers and the config file stay until the process exits. */
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	char method[16], url[512];
	struct request rq = { 0 };
	const uint8_t *sp;

	if (nl == NULL)
		return 0;
	sp = memchr(data, ' ', (size_t)(nl - data));
	if (sp == NULL || sp - data >= (ptrdiff_t)sizeof(method) ||
	    nl - sp - 1 >= (ptrdiff_t)sizeof(url) ||
	    memchr(data, '\0', (size_t)(nl - data)) != NULL)
		return 0;
	memcpy(method, data, (size_t)(sp - data));
	method[sp - data] = '\0';
	memcpy(url, sp + 1, (size_t)(nl - sp - 1));
	url[nl - sp - 1] = '\0';
	/* As handler() stores it: NUL-terminated, at most BODY_MAX. */
	rq.len = size - (size_t)(nl + 1 - data);
	if (rq.len > 0) {
		rq.body = malloc(rq.len + 1);
		if (rq.body == NULL)
			return 0;
		memcpy(rq.body, nl + 1, rq.len);
		rq.body[rq.len] = '\0';
	}
	last_code = 0;
	if (route((struct MHD_Connection *)&rq, url, method, &rq) != MHD_YES)
		FUZZ_FAIL("%s %s: no reply queued", method, url);
	if (last_code == 0)
		FUZZ_FAIL("%s %s: MHD_YES without a reply", method, url);
	free(rq.body);
	control_reclaim();
	return 0;
}

/*
 * fuzz_config_fields.c: structured config fuzzing.  Raw JSON text
 * (fuzz_config.c) spends most inputs on syntax errors; here every input is
 * a valid config with a few values replaced, so the fuzzer reaches each
 * key's own checks (ranges, names, addresses, probes, duplicates) at once.
 *
 * Input: records of [slot][kind][len][len bytes], as many as fit.  slot
 * picks a key from `slots` (or, past the table, sets a key whose name is
 * the bytes, to try unknown keys); kind picks the JSON type the bytes
 * become: a string, an integer, a real, true/false, null, or the bytes
 * parsed as any JSON value.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char base[] =
	"{\"workers\": 2, \"log_level\": \"info\", \"shutdown_grace_ms\": 100,"
	" \"upgrade\": {\"handover_ms\": 2000},"
	" \"admin\": {\"enabled\": true, \"socket\": \"/tmp/x.sock\","
	"  \"mode\": \"0600\", \"listen\": \"9900\"},"
	" \"listeners\": ["
	"  {\"name\": \"web\", \"listen\": \"127.0.0.1:8080\","
	"   \"algorithm\": \"round-robin\", \"connect_attempts\": 2,"
	"   \"backlog\": 128,"
	"   \"health_check\": {\"enabled\": true, \"interval_ms\": 1000,"
	"    \"timeout_ms\": 500, \"rise\": 2, \"fall\": 3,"
	"    \"send\": \"PING\\r\\n\", \"expect\": \"+PONG\"},"
	"   \"timeouts\": {\"connect_ms\": 1000, \"idle_ms\": 0},"
	"   \"backends\": ["
	"    {\"name\": \"a\", \"address\": \"127.0.0.1:9001\", \"weight\": 1},"
	"    {\"name\": \"b\", \"address\": \"[::1]:9002\", \"weight\": 3}]},"
	"  {\"name\": \"db\", \"listen\": \"[::1]:5432\","
	"   \"backends\": [{\"name\": \"a\", \"address\": \"localhost:5433\"}]}"
	" ]}";

/* Object path (a dotted list; a number indexes an array), then the key. */
static const char *const slots[][2] = {
	{ "", "workers" }, { "", "log_level" }, { "", "log_format" },
	{ "", "shutdown_grace_ms" },
	{ "", "listeners" }, { "", "admin" },
	{ "admin", "enabled" }, { "admin", "socket" }, { "admin", "mode" },
	{ "admin", "listen" }, { "admin", "allowed_hosts" },
	{ "admin", "token_file" }, { "listeners.0", "client_speaks_first" },
	{ "listeners.0", "name" }, { "listeners.0", "listen" },
	{ "listeners.0", "algorithm" }, { "listeners.0", "connect_attempts" },
	{ "listeners.0", "backlog" }, { "listeners.0", "backends" },
	{ "listeners.0", "health_check" }, { "listeners.0", "timeouts" },
	{ "listeners.1", "name" }, { "listeners.1", "listen" },
	{ "listeners.0.health_check", "enabled" },
	{ "listeners.0.health_check", "interval_ms" },
	{ "listeners.0.health_check", "timeout_ms" },
	{ "listeners.0.health_check", "rise" },
	{ "listeners.0.health_check", "fall" },
	{ "listeners.0.health_check", "send" },
	{ "listeners.0.health_check", "expect" },
	{ "listeners.0.timeouts", "connect_ms" },
	{ "listeners.0.timeouts", "idle_ms" },
	{ "listeners.0.backends.0", "name" },
	{ "listeners.0.backends.0", "address" },
	{ "listeners.0.backends.0", "weight" },
	{ "listeners.0.backends.1", "name" },
	{ "listeners.0.backends.1", "address" },
	{ "listeners.1.backends.0", "address" },
	{ "", "user" }, { "", "group" },
	{ "listeners.0", "max_connections" }, { "listeners.0", "allow" },
	{ "listeners.0", "deny" }, { "listeners.0", "per_source" },
	{ "listeners.0.backends.0", "max_connections" },
	{ "", "upgrade" }, { "upgrade", "handover_ms" },
};
#define NSLOTS (sizeof(slots) / sizeof(slots[0]))

/* Objects an unknown key may land in, by path. */
static const char *const objects[] = {
	"", "admin", "upgrade", "listeners.0", "listeners.0.health_check",
	"listeners.0.timeouts", "listeners.0.backends.0",
};
#define NOBJECTS (sizeof(objects) / sizeof(objects[0]))

static json_t *
walk(json_t *root, const char *path)
{
	char buf[64], *save = NULL;
	json_t *v = root;

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *t = strtok_r(buf, ".", &save); t && v;
	     t = strtok_r(NULL, ".", &save)) {
		if (t[0] >= '0' && t[0] <= '9')
			v = json_array_get(v, (size_t)atoi(t));
		else
			v = json_object_get(v, t);
	}
	return v;
}

static json_t *
make_value(uint8_t kind, const char *s, size_t len)
{
	char num[32];

	switch (kind % 6) {
	case 0:
		return json_stringn(s, len);	/* NULL unless UTF-8 */
	case 1:
		snprintf(num, sizeof(num), "%.*s", (int)len, s);
		return json_integer(strtoll(num, NULL, 0));
	case 2:
		snprintf(num, sizeof(num), "%.*s", (int)len, s);
		return json_real(strtod(num, NULL));
	case 3:
		return json_boolean(len & 1);
	case 4:
		return json_null();
	default:
		return json_loadb(s, len, JSON_DECODE_ANY | JSON_ALLOW_NUL,
				  NULL);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *cfg = NULL;
	json_t *root = json_loads(base, 0, NULL);
	char err[1024], *text;

	if (root == NULL)
		FUZZ_FAIL("base config does not parse");
	while (size >= 3) {
		uint8_t slot = data[0], kind = data[1];
		size_t len = data[2] < size - 3 ? data[2] : size - 3;
		const char *s = (const char *)data + 3;
		json_t *obj, *v;

		data += 3 + len;
		size -= 3 + len;
		if (slot < NSLOTS) {
			obj = walk(root, slots[slot][0]);
			v = make_value(kind, s, len);
			if (obj != NULL && v != NULL)
				json_object_set_new(obj, slots[slot][1], v);
			else
				json_decref(v);
		} else if (len > 0 && memchr(s, '\0', len) == NULL) {
			/* An extra (unknown, or repeated) key. */
			char key[256];

			snprintf(key, sizeof(key), "%.*s", (int)len, s);
			obj = walk(root, objects[slot % NOBJECTS]);
			if (obj != NULL)
				json_object_set_new(obj, key,
						    json_integer(kind));
		}
	}
	text = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (text == NULL)
		return 0;
	if (cfg_parse(text, strlen(text), FUZZ_CFG_NAME, &cfg, err,
		      sizeof(err)) < 0)
		fuzz_check_cfg_error(err);
	else {
		fuzz_check_cfg(cfg);
		cfg_free(cfg);
	}
	free(text);
	return 0;
}

/* log.h: one line per event on stderr, safe from any thread. */
#ifndef RINGLB_LOG_H
#define RINGLB_LOG_H

enum log_level {
	LOG_ERROR,
	LOG_WARN,
	LOG_INFO,
	LOG_DEBUG,
};

void log_set_level(int level);
int log_get_level(void);
/* Returns the level for "error".."debug", or -1. */
int log_level_parse(const char *name);
const char *log_level_name(int level);

void log_msg(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_enabled(level) ((level) <= log_get_level())

struct sockaddr;
/* "1.2.3.4:80", "[::1]:80", or "-" for other families. */
void log_addr(const struct sockaddr *sa, char *out, size_t len);

#endif

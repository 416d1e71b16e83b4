/*
 * log.h: one line per event on stderr, safe from any thread.
 *
 * Text: "TIME LEVEL message".  JSON (log_format "json"): one object per
 * line, {"ts", "level", "msg", and the event's fields}: every key=value
 * word of the message becomes a field (a number if it is one, null for
 * "-"), so "conn=5 backend=b1" gives "conn": 5, "backend": "b1".
 */
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

enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_JSON };
void log_set_format(int format);
/* Returns the format for "text" or "json", or -1. */
int log_format_parse(const char *name);

void log_msg(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/*
 * An event whose text is all key=value words (the connection line): in
 * text the words alone, as log_msg(); in JSON "msg" is msg and the words
 * are its fields.
 */
void log_event(int level, const char *msg, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_enabled(level) ((level) <= log_get_level())

struct sockaddr;
/* "1.2.3.4:80", "[::1]:80", or "-" for other families. */
void log_addr(const struct sockaddr *sa, char *out, size_t len);

#endif

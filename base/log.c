/*
 * log: formatting and output of log lines. Touches nothing but stderr.
 */
#include "config.h"
#include "base/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Written once by log_init() before any event loop runs; read-only afterwards. */
static struct {
	const char *prog;
	enum log_level level;
} log_cfg = { "shoal", LOG_LVL_INFO };

void
log_init(const char *progname, enum log_level level)
{
	log_cfg.prog = progname;
	log_cfg.level = level;
}

enum log_level
log_get_level(void)
{
	return log_cfg.level;
}

static void log_emit(const char *level, int with_errno, int saved_errno, const char *fmt,
    va_list ap) __attribute__((format(printf, 4, 0)));

static void
log_emit(const char *level, int with_errno, int saved_errno, const char *fmt, va_list ap)
{
	char msg[1024];
	struct timespec ts;
	struct tm tm;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	if (with_errno)
		fprintf(stderr, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ prog=%s level=%s %s error=\"%s\"\n",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		    ts.tv_nsec / 1000000, log_cfg.prog, level, msg, strerror(saved_errno));
	else
		fprintf(stderr, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ prog=%s level=%s %s\n",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		    ts.tv_nsec / 1000000, log_cfg.prog, level, msg);
}

#define LOG_BODY(lvl_enum, name, with_errno)                  \
	do {                                                  \
		int saved = errno;                            \
		va_list ap;                                   \
		if (log_cfg.level < (lvl_enum))               \
			return;                               \
		va_start(ap, fmt);                            \
		log_emit((name), (with_errno), saved, fmt, ap); \
		va_end(ap);                                   \
		errno = saved;                                \
	} while (0)

void log_warn(const char *fmt, ...) { LOG_BODY(LOG_LVL_WARN, "warn", 1); }
void log_warnx(const char *fmt, ...) { LOG_BODY(LOG_LVL_WARN, "warn", 0); }
void log_info(const char *fmt, ...) { LOG_BODY(LOG_LVL_INFO, "info", 0); }
void log_debug(const char *fmt, ...) { LOG_BODY(LOG_LVL_DEBUG, "debug", 0); }

void
fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_emit("fatal", 1, saved, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit("fatal", 0, 0, fmt, ap);
	va_end(ap);
	exit(1);
}

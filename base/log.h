/*
 * log: one-line key=value logging, OpenBSD style.
 * log_warn appends strerror(errno); log_warnx does not. fatal/fatalx are for broken invariants
 * only, never for peer input. Messages are written to stderr as
 *   ts=... prog=shoald level=info <message>
 * where <message> is itself key=value pairs written by the caller.
 * Owns: the process-wide log settings, set once by log_init() before the loop starts.
 */
#ifndef SHOAL_LOG_H
#define SHOAL_LOG_H

#include <stdarg.h>

enum log_level { LOG_LVL_WARN = 0, LOG_LVL_INFO = 1, LOG_LVL_DEBUG = 2 };

void log_init(const char *progname, enum log_level level);
enum log_level log_get_level(void);

void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif

/*
 * errmsg: the error text parsers hand back to their caller (err, errlen). Messages quote what
 * the user or a client typed, so they are kept to one printable line whatever that was.
 */
#ifndef SHOAL_ERRMSG_H
#define SHOAL_ERRMSG_H

#include <stddef.h>

/* Formats into err (control characters become '?'); always returns -1, for `return fail(...)`. */
int errmsg_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif

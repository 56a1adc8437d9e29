/*
 * errmsg: see errmsg.h.
 */
#include "config.h"
#include "base/errmsg.h"

#include <stdarg.h>
#include <stdio.h>

int
errmsg_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	for (; *err; err++)
		if ((unsigned char)*err < 0x20 || *err == 0x7f)
			*err = '?';
	return -1;
}

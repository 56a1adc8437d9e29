/*
 * fuzz_conffile: shoald.conf as shoald reads it (daemon/conffile.c). Never crashes; an error
 * is one line naming the file and a line number; what parses is a handful of options, each
 * "--key=value" of a known key or one of the two switches, NUL-terminated within its slot.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/conffile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct conf_args a;
	char err[1200];
	int i;

	err[0] = '\0';
	if (conffile_parse((const char *)data, size, "f.conf", &a, err, sizeof(err)) != 0) {
		if (strncmp(err, "f.conf:", 7) != 0 || strchr(err, '\n'))
			abort();
		return 0;
	}
	if (a.n < 0 || a.n > CONF_MAX_ARGS)
		abort();
	for (i = 0; i < a.n; i++) {
		if (memchr(a.v[i], '\0', CONF_ARG_MAX) == NULL || strncmp(a.v[i], "--", 2) != 0)
			abort();
		if (strchr(a.v[i], '=') == NULL && strcmp(a.v[i], "--allow-other-users") != 0 &&
		    strcmp(a.v[i], "--no-portmap") != 0)
			abort();
	}
	return 0;
}

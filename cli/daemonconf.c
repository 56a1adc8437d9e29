/*
 * daemonconf: see daemonconf.h.
 */
#include "config.h"
#include "cli/daemonconf.h"

#include <stdio.h>
#include <string.h>

#include "base/fsloc.h"
#include "daemon/conffile.h"

int
daemonconf_get(const char *key, char *out, size_t cap)
{
	static struct conf_args conf;
	char path[4096], err[1200];
	size_t klen = strlen(key);
	int i;

	if (fsloc_default_config(path, sizeof(path)) != 0 ||
	    conffile_load(path, 0, &conf, err, sizeof(err)) != 0)
		return -1;
	/* conffile gives "--key=value" */
	for (i = 0; i < conf.n; i++) {
		const char *v = conf.v[i];

		if (strncmp(v, "--", 2) == 0 && strncmp(v + 2, key, klen) == 0 &&
		    v[2 + klen] == '=')
			return (size_t)snprintf(out, cap, "%s", v + 3 + klen) < cap ? 0 : -1;
	}
	return -1;
}

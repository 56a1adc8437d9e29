/*
 * fsloc: default locations of per-user runtime files. Reads the environment, touches nothing
 * but the directory it is asked to create.
 */
#include "config.h"
#include "base/fsloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int
fsloc_default_control(char *out, size_t cap)
{
	const char *env = getenv("SHOAL_CONTROL");
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	int n;

	if (env && *env)
		n = snprintf(out, cap, "%s", env);
	else if (xdg && *xdg)
		n = snprintf(out, cap, "%s/shoal/shoald.sock", xdg);
	else
		n = snprintf(out, cap, "/tmp/shoal-%u/shoald.sock", (unsigned)getuid());
	return (n < 0 || (size_t)n >= cap) ? -1 : 0;
}

int
fsloc_make_parent(const char *path)
{
	char dir[4096];
	char *slash;

	if (strlen(path) >= sizeof(dir)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(dir, path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	if (mkdir(dir, 0700) == -1 && errno != EEXIST)
		return -1;
	return 0;
}

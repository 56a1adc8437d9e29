/*
 * statefile: see statefile.h.
 */
#include "config.h"
#include "daemon/statefile.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/atomicfile.h"
#include "base/log.h"

static int
state_path(const char *state_dir, const char *name, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s/%s", state_dir, name);

	return (n < 0 || (size_t)n >= cap) ? -1 : 0;
}

int
statefile_write(const char *state_dir, const char *name, const char *text)
{
	char path[4200];

	if (state_path(state_dir, name, path, sizeof(path)) != 0 ||
	    atomicfile_write(path, text, strlen(text), 0600) != 0) {
		log_warn("event=state_save_failed path=%s/%s", state_dir, name);
		return -1;
	}
	return 0;
}

int
statefile_read(const char *state_dir, const char *name, char *buf, size_t cap)
{
	char path[4200];
	ssize_t n;
	int fd;

	if (cap == 0 || state_path(state_dir, name, path, sizeof(path)) != 0 ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	n = read(fd, buf, cap - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return 0;
}

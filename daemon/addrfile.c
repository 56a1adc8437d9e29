/*
 * addrfile: STATE_DIR/address, "A.B.C.D/P\n", our last virtual address, so that a restart
 * while the mediator is unreachable keeps the address peers know us by. Written atomically
 * (temporary file, fsync, rename).
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/ip4.h"
#include "base/log.h"
#include "daemon/daemon.h"

static int
addrfile_path(const char *state_dir, char *out, size_t cap, const char *suffix)
{
	int n = snprintf(out, cap, "%s/address%s", state_dir, suffix);

	return (n < 0 || (size_t)n >= cap) ? -1 : 0;
}

void
addrfile_save(const char *state_dir, uint32_t vaddr, uint8_t prefix_len)
{
	char path[4200], tmp[4200], line[32], ip[IP4_STR_LEN];
	int fd, n;

	if (addrfile_path(state_dir, path, sizeof(path), "") != 0 ||
	    addrfile_path(state_dir, tmp, sizeof(tmp), ".tmp") != 0)
		return;
	n = snprintf(line, sizeof(line), "%s/%u\n", ip4_str(vaddr, ip), (unsigned)prefix_len);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1 || write(fd, line, (size_t)n) != n || fsync(fd) != 0 || close(fd) != 0 ||
	    rename(tmp, path) != 0) {
		log_warn("event=address_save_failed path=%s", path);
		if (fd != -1)
			close(fd);
		unlink(tmp);
	}
}

int
addrfile_load(const char *state_dir, uint32_t *vaddr, uint8_t *prefix_len)
{
	char path[4200], line[32], *slash, *end;
	unsigned long p;
	uint32_t a;
	ssize_t n;
	int fd;

	if (addrfile_path(state_dir, path, sizeof(path), "") != 0 ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	n = read(fd, line, sizeof(line) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	line[n] = '\0';
	if ((slash = strchr(line, '/')) != NULL)
		*slash++ = '\0';
	p = slash ? strtoul(slash, &end, 10) : 0;
	if (slash == NULL || ip4_parse(line, &a) != 0 || a == 0 || end == slash ||
	    (*end != '\0' && *end != '\n') || p == 0 || p > 30) {
		log_warnx("event=address_file_ignored path=%s", path);
		return -1;
	}
	*vaddr = a;
	*prefix_len = (uint8_t)p;
	return 0;
}

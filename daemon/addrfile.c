/*
 * addrfile: STATE_DIR/address, "A.B.C.D/P\n", our last virtual address, so that a restart
 * while the mediator is unreachable keeps the address peers know us by (statefile.c).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/ip4.h"
#include "base/log.h"
#include "daemon/daemon.h"
#include "daemon/statefile.h"

void
addrfile_save(const char *state_dir, uint32_t vaddr, uint8_t prefix_len)
{
	char line[32], ip[IP4_STR_LEN];

	snprintf(line, sizeof(line), "%s/%u\n", ip4_str(vaddr, ip), (unsigned)prefix_len);
	(void)statefile_write(state_dir, "address", line);
}

int
addrfile_load(const char *state_dir, uint32_t *vaddr, uint8_t *prefix_len)
{
	char line[32], *slash, *end;
	unsigned long p;
	uint32_t a;

	if (statefile_read(state_dir, "address", line, sizeof(line)) != 0)
		return -1;
	if ((slash = strchr(line, '/')) != NULL)
		*slash++ = '\0';
	p = slash ? strtoul(slash, &end, 10) : 0;
	if (slash == NULL || ip4_parse(line, &a) != 0 || a == 0 || end == slash ||
	    (*end != '\0' && *end != '\n') || p == 0 || p > 30) {
		log_warnx("event=address_file_ignored path=%s/address", state_dir);
		return -1;
	}
	*vaddr = a;
	*prefix_len = (uint8_t)p;
	return 0;
}

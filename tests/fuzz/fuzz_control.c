/*
 * fuzz_control: arbitrary bytes as one control request line. The parser must never crash,
 * must always fill err on failure, and a success must be a request the daemon can run.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control/control_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctl_request rq;
	char err[256];

	err[0] = '\0';
	if (ctl_request_parse((const char *)data, size, &rq, err, sizeof(err)) == -1) {
		if (err[0] == '\0' || memchr(err, '\n', strlen(err)))
			abort();
		return 0;
	}
	if (!ctl_cmd_name(rq.cmd) || rq.count < 1 || rq.count > CTL_PING_MAX)
		abort();
	if (strlen(rq.network) > NAME_MAX_LEN || strlen(rq.peer) > CTL_PEER_MAX)
		abort();
	if ((rq.cmd == CTL_SET_ACCESS) != (ctl_access_name(rq.access) != NULL))
		abort();
	return 0;
}

/*
 * fuzz_cluster_pair: the NOTIFY payloads of a pair split over two mediator instances
 * (server/clusterev.c, "S ..." and "F ..."), which any session of the shared database can
 * send. What decodes must encode again and decode to the same side or plan.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/clusterev.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char s[4096], again[CLUSTERPAIR_MAX];
	struct cluster_side a, a2;
	static struct cluster_fwd f, f2;

	if (size >= sizeof(s))
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (cluster_side_decode(s, &a) == 0) {
		if (cluster_side_encode(&a, again, sizeof(again)) < 0 ||
		    cluster_side_decode(again, &a2) != 0 || memcmp(&a, &a2, sizeof(a)) != 0)
			abort();
	}
	if (cluster_fwd_decode(s, &f) == 0) {
		if (cluster_fwd_encode(&f, again, sizeof(again)) < 0 ||
		    cluster_fwd_decode(again, &f2) != 0 || memcmp(&f, &f2, sizeof(f)) != 0)
			abort();
	}
	return 0;
}

/*
 * fuzz_shim_proto: shim_decode on arbitrary bytes (what a hostile or buggy process may send to
 * shoald's shim socket). Whatever decodes must re-encode to exactly the input (the encoding is
 * canonical) and decode again to the same fields. Seeds: tests/fuzz/corpus/fuzz_shim_proto/.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lanproxy/shim_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[SHIM_MSG_MAX];
	struct shim_msg m, m2;
	int n;

	if (shim_decode(&m, data, size) != 0)
		return 0;
	n = shim_encode(&m, out, sizeof(out));
	if (n < 0 || (size_t)n != size || memcmp(out, data, size) != 0)
		abort();
	if (shim_decode(&m2, out, (size_t)n) != 0)
		abort();
	if (m.data_len != m2.data_len || (m.data_len && memcmp(m.data, m2.data, m.data_len) != 0))
		abort();
	if (m.name_len != m2.name_len || (m.name_len && memcmp(m.name, m2.name, m.name_len) != 0))
		abort();
	m.data = m2.data = NULL;
	m.name = m2.name = NULL;
	if (memcmp(&m, &m2, sizeof(m)) != 0)
		abort();
	return 0;
}

/*
 * fuzz_socks5: drives the three SOCKS5 decoders in socks/socks5_parse and the SOCKS4/4a one
 * (socks/socks4_parse) with arbitrary bytes.
 * Byte 0 picks the decoder; the rest is the input. Besides "no crash", it checks the
 * decoders' promises: NEED_MORE asks for more than it has, COMPLETE consumes no more than it
 * has, and a complete request or UDP header re-encodes to the same bytes (RSV aside).
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "socks/socks4_parse.h"
#include "socks/socks5_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct s5_greeting g;
	struct s5_request req;
	struct s5_udp_header h;
	struct s5_err err;
	uint8_t out[S5_REQUEST_MAX];
	size_t n = 0, m;
	enum s5_result res;

	if (size < 1)
		return 0;
	switch (data[0] % 4) {
	case 3: {
		struct s4_request r4;
		uint8_t o4[S4_REQUEST_MAX];

		res = s4_parse_request(data + 1, size - 1, &r4, &n, &err);
		if (res == S5_NEED_MORE && n <= size - 1)
			abort();
		if (res == S5_COMPLETE && n > size - 1)
			abort();
		/* a complete request re-encodes to its bytes but for the user id */
		if (res == S5_COMPLETE && (m = s4_encode_request(o4, sizeof(o4), r4.cmd, &r4.dst)) != 0 &&
		    memcmp(o4, data + 1, 8) != 0 && r4.dst.atyp == S5_ATYP_IPV4)
			abort();
		break;
	}
	case 0:
		res = s5_parse_greeting(data + 1, size - 1, &g, &n, &err);
		if (res == S5_NEED_MORE && n <= size - 1)
			abort();
		if (res == S5_COMPLETE) {
			if (n > size - 1)
				abort();
			m = s5_encode_greeting(out, sizeof(out), g.methods, g.nmethods);
			if (m != n || memcmp(out, data + 1, n) != 0)
				abort();
		}
		break;
	case 1:
		res = s5_parse_request(data + 1, size - 1, &req, &n, &err);
		if (res == S5_NEED_MORE && n <= size - 1)
			abort();
		if (res == S5_COMPLETE) {
			if (n > size - 1)
				abort();
			m = s5_encode_request(out, sizeof(out), req.cmd, &req.dst);
			if (m != n || out[0] != data[1] || out[1] != data[2] ||
			    memcmp(out + 3, data + 4, n - 3) != 0)
				abort();
		}
		break;
	default:
		res = s5_parse_udp(data + 1, size - 1, &h, &err);
		if (res == S5_NEED_MORE)
			abort();
		if (res == S5_COMPLETE) {
			if (h.data + h.data_len != data + size)
				abort();
			m = s5_encode_udp_header(out, sizeof(out), &h.dst);
			n = (size_t)(h.data - (data + 1));
			if (m != n || memcmp(out + 3, data + 4, n - 3) != 0)
				abort();
		}
		break;
	}
	if (res == S5_INVALID && err.why == NULL)
		abort();
	return 0;
}

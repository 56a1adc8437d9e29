/*
 * fuzz_msg: msg_decode and the UDP probe / NAT datagram decoders on arbitrary bytes. Whatever decodes must
 * re-encode to exactly the input (the encoding is canonical) and decode again to the same
 * struct. Seeds: tests/fuzz/corpus/fuzz_msg/ (the golden encodings).
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mproto/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t out[CTRL_FRAME_MAX], token[UDP_TOKEN_LEN];
	struct msg m, m2;
	struct endpoint ep;
	struct nat_probe np;
	struct nat_test nt;
	uint64_t nonce;
	int n;

	if (msg_decode(&m, data, size) == 0) {
		n = msg_encode(&m, out, sizeof(out));
		if (n < 0 || (size_t)n != size || memcmp(out, data, size) != 0)
			abort();
		if (msg_decode(&m2, out, (size_t)n) != 0 || memcmp(&m, &m2, sizeof(m)) != 0)
			abort();
		(void)msg_type_name(m.type);
		if (m.type == MSG_REQUEST)
			(void)req_op_name(m.u.request.op);
		if (m.type == MSG_RESULT)
			(void)result_status_text(m.u.result.status);
		if (m.type == MSG_NAT_INFO) {
			(void)nat_udp_name(m.u.nat_info.udp);
			(void)nat_mapping_name(m.u.nat_info.mapping);
			(void)nat_filtering_name(m.u.nat_info.filtering);
			(void)nat_ports_name(m.u.nat_info.ports);
			(void)nat_hairpin_name(m.u.nat_info.hairpin);
		}
		if (m.type == MSG_PUNCH)
			(void)punch_strategy_name(m.u.punch.strategy);
		if (m.type == MSG_RELAY_GRANT)
			(void)relay_reason_name(m.u.relay_grant.reason);
	}
	if (probe_decode(data, size, token) == 0) {
		n = probe_encode(token, out, sizeof(out));
		if (n < 0 || (size_t)n != size || memcmp(out, data, size) != 0)
			abort();
	}
	if (probe_reply_decode(data, size, &ep) == 0) {
		n = probe_reply_encode(&ep, out, sizeof(out));
		if (n < 0 || (size_t)n != size || memcmp(out, data, size) != 0)
			abort();
	}
	if (nat_probe_decode(data, size, &np) == 0) {
		n = nat_probe_encode(&np, out, sizeof(out));
		if (n < 0 || (size_t)n != size || memcmp(out, data, size) != 0)
			abort();
	}
	if (nat_test_decode(data, size, &nt) == 0) {
		n = nat_test_encode(&nt, out, sizeof(out));
		if (n < 0 || (size_t)n != size || memcmp(out, data, size) != 0)
			abort();
	}
	if (hairpin_decode(data, size, &nonce) == 0) {
		n = hairpin_encode(nonce, out, sizeof(out));
		if (n < 0 || (size_t)n != size || memcmp(out, data, size) != 0)
			abort();
	}
	return 0;
}

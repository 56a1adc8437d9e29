/*
 * natclass: the classification rules of docs/PROTOCOL.md 3.1 (RFC 4787 terms), as a pure
 * function of the observations. Keep it in step with the spec; test_natclass pins each rule.
 * Must not: log, allocate, read the clock, or know how the observations were gathered.
 */
#include "config.h"
#include "server/natclass.h"

#include <string.h>

/* Successive new mappings this far apart (mod 65536) still count as sequential allocation:
 * other flows through the same NAT only make some deltas larger. */
enum { SEQ_DELTA_MAX = 1024 };

uint16_t
natclass_gap_s(unsigned seq)
{
	static const uint16_t gaps[NAT_LIFETIME_STEPS] = { 3, 6, 12, 24, 48 };

	return seq < NAT_LIFETIME_STEPS ? gaps[seq] : 0;
}

static uint8_t
count_addrs(const struct natclass_in *in)
{
	uint8_t i, j, n = 0;

	for (i = 0; i < in->n_targets && i < NAT_MAX_TARGETS; i++) {
		for (j = 0; j < i; j++)
			if (in->targets[j].addr == in->targets[i].addr)
				break;
		if (j == i)
			n++;
	}
	/* NAT_INFO carries 1 or 2; a plan never has more than two listen addresses. */
	return n == 0 ? 1 : n > 2 ? 2 : n;
}

static uint8_t
classify_mapping(const struct natclass_in *in)
{
	int n_obs = 0, all_equal = 1, same_addr_pairs = 0, same_addr_equal = 1;
	uint8_t i, j, n = in->n_targets > NAT_MAX_TARGETS ? NAT_MAX_TARGETS : in->n_targets;

	for (i = 0; i < n; i++) {
		if (!(in->observed & (1u << i)))
			continue;
		n_obs++;
		for (j = 0; j < i; j++) {
			int eq;

			if (!(in->observed & (1u << j)))
				continue;
			eq = ep_same_addr(&in->obs[i], &in->obs[j]);
			all_equal &= eq;
			if (in->targets[i].addr == in->targets[j].addr) {
				same_addr_pairs++;
				same_addr_equal &= eq;
			}
		}
	}
	if (n_obs < 2)
		return NAT_MAP_UNKNOWN;
	if (all_equal)
		return NAT_MAP_EIM;
	if (same_addr_equal)
		return same_addr_pairs > 0 ? NAT_MAP_ADM : NAT_MAP_UNKNOWN;
	return NAT_MAP_APDM;
}

/* adm / apdm: the deltas between successive new mappings in sending order (target order). */
static void
classify_alloc(const struct natclass_in *in, struct msg_nat_info *out)
{
	struct endpoint seen[NAT_MAX_TARGETS];
	uint8_t i, j, n_seen = 0, n = in->n_targets > NAT_MAX_TARGETS ? NAT_MAX_TARGETS :
	    in->n_targets;
	unsigned step = 0;

	for (i = 0; i < n; i++) {
		if (!(in->observed & (1u << i)))
			continue;
		for (j = 0; j < n_seen; j++)
			if (ep_same_addr(&seen[j], &in->obs[i]))
				break;
		if (j < n_seen)
			continue;               /* an existing mapping reused (adm): no new port */
		if (n_seen > 0) {
			unsigned d = (unsigned)(uint16_t)(in->obs[i].port - seen[n_seen - 1].port);

			if (d < 1 || d > SEQ_DELTA_MAX) {
				out->ports = NAT_PORTS_RANDOM;
				out->step = 0;
				return;
			}
			if (step == 0 || d < step)
				step = d;
		}
		seen[n_seen++] = in->obs[i];
	}
	if (step == 0) {
		out->ports = NAT_PORTS_UNKNOWN;
		return;
	}
	out->ports = NAT_PORTS_SEQUENTIAL;
	out->step = (uint16_t)step;
}

static uint8_t
classify_filtering(const struct natclass_in *in)
{
	uint8_t seen;

	if (!in->have_report)
		return NAT_FILT_UNKNOWN;
	/* Only what we sent counts: the nonce makes anything else a forgery or a bug. */
	seen = in->report.tests & in->tests_sent;
	if (seen & (1u << (NAT_TEST_OTHER_ADDR - 1)))
		return NAT_FILT_EIF;
	if (seen & (1u << (NAT_TEST_OTHER_PORT - 1)))
		return NAT_FILT_ADF;
	if (in->tests_sent & (1u << (NAT_TEST_OTHER_PORT - 1)))
		return NAT_FILT_APDF;
	return NAT_FILT_UNKNOWN;
}

static void
classify_lifetime(const struct natclass_in *in, struct msg_nat_info *out)
{
	int s, hi = -1;

	if (!in->have_report)
		return;
	for (s = 0; s < NAT_LIFETIME_STEPS; s++)
		if (in->report.lifetime_seen & (1u << s))
			hi = s;
	if (hi >= 0)
		out->lifetime_s = natclass_gap_s((unsigned)hi);
	/* The first gap above the largest one bridged that is overdue and never arrived: a lone
	 * lost test below the largest bridged gap says nothing about the binding. */
	for (s = hi + 1; s < NAT_LIFETIME_STEPS; s++)
		if ((in->lifetime_due & (1u << s)) && !(in->report.lifetime_seen & (1u << s))) {
			out->lifetime_max_s = natclass_gap_s((unsigned)s);
			break;
		}
}

void
natclass_classify(const struct natclass_in *in, struct msg_nat_info *out)
{
	uint8_t n = in->n_targets > NAT_MAX_TARGETS ? NAT_MAX_TARGETS : in->n_targets;

	memset(out, 0, sizeof(*out));
	out->addrs = count_addrs(in);
	if ((in->observed & ((1u << n) - 1)) == 0) {
		out->udp = NAT_UDP_BLOCKED;
		return;
	}
	out->udp = NAT_UDP_OK;
	if (in->observed & 1u)
		out->public_ep = in->obs[0];
	out->mapping = classify_mapping(in);
	if (out->mapping == NAT_MAP_EIM) {
		uint8_t i;

		for (i = 0; !(in->observed & (1u << i)); i++)
			;
		out->ports = in->obs[i].port == in->local_port ? NAT_PORTS_PRESERVED :
		    NAT_PORTS_FIXED;
	} else if (out->mapping != NAT_MAP_UNKNOWN) {
		classify_alloc(in, out);
	}
	out->filtering = classify_filtering(in);
	if (in->have_report)
		out->hairpin = in->report.hairpin == NAT_HP_BACK ? NAT_HAIRPIN_YES :
		    in->report.hairpin == NAT_HP_LOST ? NAT_HAIRPIN_NO : NAT_HAIRPIN_UNKNOWN;
	classify_lifetime(in, out);
}

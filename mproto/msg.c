/*
 * msg: encoders and decoders for the mediator control messages and the UDP probe packets,
 * one pair per message type, field by field with base/wire.h cursors. Layouts are documented
 * byte by byte in docs/PROTOCOL.md sections 3 and 4; keep the two in step.
 *
 * Owns nothing. Must not: do I/O, allocate, log (callers decide how to count and report bad
 * input), or know anything about the channel the bytes travel on.
 *
 * Every encoder enforces the same limits as the matching decoder, so a struct that decodes
 * always re-encodes to the very same bytes (the fuzzer checks this): the encoding is canonical.
 */
#include "config.h"
#include "mproto/msg.h"

#include <string.h>

#include "base/wire.h"

/*
 * Writes a str8 from a fixed char array of size cap; fails when the array holds no NUL within
 * cap - 1 bytes (the decoder could not read it back).
 */
static void
put_str(struct wire_w *w, const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);

	if (n >= cap || n > 255) {
		w->err = 1;
		return;
	}
	wire_put_u8(w, (uint8_t)n);
	wire_put_bytes(w, s, n);
}

/* One `endpoint` (PROTOCOL.md 4.2): the single place its layout is written and read. */
static void
put_endpoint(struct wire_w *w, const struct endpoint *ep)
{
	ep_put(w, ep);
}

static void
get_endpoint(struct wire_r *r, struct endpoint *ep)
{
	ep_get(r, ep);
}

/*
 * The IPv4-only endpoint fields (NAT_PLAN targets, NAT_INFO's public endpoint, the probe
 * reply): the mediator's UDP sockets are IPv4, so these stay u32 address + u16 port.
 */
static void
put_ep4(struct wire_w *w, const struct endpoint *ep)
{
	if (ep_is_v6(ep))
		w->err = 1;
	wire_put_u32(w, ep->addr);
	wire_put_u16(w, ep->port);
}

static void
get_ep4(struct wire_r *r, struct endpoint *ep)
{
	memset(ep, 0, sizeof(*ep));
	ep->addr = wire_get_u32(r);
	ep->port = wire_get_u16(r);
}

static void
put_endpoints(struct wire_w *w, uint8_t n, const struct endpoint *eps)
{
	size_t i;

	/* Counts beyond MAX_ENDPOINTS would overrun the decoder's array. */
	if (n > MAX_ENDPOINTS) {
		w->err = 1;
		return;
	}
	wire_put_u8(w, n);
	for (i = 0; i < n; i++)
		put_endpoint(w, &eps[i]);
}

static uint8_t
get_endpoints(struct wire_r *r, struct endpoint *eps)
{
	uint8_t n = wire_get_u8(r);
	size_t i;

	if (n > MAX_ENDPOINTS) {
		r->err = 1;
		return 0;
	}
	for (i = 0; i < n; i++)
		get_endpoint(r, &eps[i]);
	return n;
}

/* ---- HELLO: version, nick, udp_port, local endpoints ---- */

static void
hello_put(struct wire_w *w, const struct msg_hello *h)
{
	wire_put_u16(w, h->version);
	put_str(w, h->nick, sizeof(h->nick));
	wire_put_u16(w, h->udp_port);
	put_endpoints(w, h->n_local, h->local);
}

static void
hello_get(struct wire_r *r, struct msg_hello *h)
{
	/* Any version decodes: the server answers a mismatch with a RESULT, not a dropped link. */
	h->version = wire_get_u16(r);
	wire_get_str8(r, h->nick, sizeof(h->nick));
	h->udp_port = wire_get_u16(r);
	h->n_local = get_endpoints(r, h->local);
}

/* ---- WELCOME: address, prefix_len, udp token, nick ---- */

static void
welcome_put(struct wire_w *w, const struct msg_welcome *m)
{
	if (m->prefix_len > 32)
		w->err = 1;
	wire_put_u32(w, m->address);
	wire_put_u8(w, m->prefix_len);
	wire_put_bytes(w, m->udp_token, UDP_TOKEN_LEN);
	put_str(w, m->nick, sizeof(m->nick));
}

static void
welcome_get(struct wire_r *r, struct msg_welcome *m)
{
	m->address = wire_get_u32(r);
	m->prefix_len = wire_get_u8(r);
	if (m->prefix_len > 32)
		r->err = 1;
	wire_get_bytes(r, m->udp_token, UDP_TOKEN_LEN);
	wire_get_str8(r, m->nick, sizeof(m->nick));
}

/* ---- REQUEST: every field is always present; unused ones are empty / zero ---- */

/*
 * Op 0 is never valid. Ops we do not know still decode: the proto.h version rule lets a newer
 * client add ops without a version bump, and the server answers them with RES_ERR_BAD_REQUEST
 * instead of dropping the whole connection.
 */
static int
req_op_valid(uint8_t op)
{
	return op != 0;
}

static void
request_put(struct wire_w *w, const struct msg_request *q)
{
	if (!req_op_valid(q->op))
		w->err = 1;
	wire_put_u32(w, q->req_id);
	wire_put_u8(w, q->op);
	put_str(w, q->network, sizeof(q->network));
	put_str(w, q->password, sizeof(q->password));
	put_str(w, q->arg, sizeof(q->arg));
	wire_put_bytes(w, q->target, KEY_LEN);
	wire_put_u8(w, q->flags);
}

static void
request_get(struct wire_r *r, struct msg_request *q)
{
	q->req_id = wire_get_u32(r);
	q->op = wire_get_u8(r);
	if (!req_op_valid(q->op))
		r->err = 1;
	wire_get_str8(r, q->network, sizeof(q->network));
	wire_get_str8(r, q->password, sizeof(q->password));
	wire_get_str8(r, q->arg, sizeof(q->arg));
	wire_get_bytes(r, q->target, KEY_LEN);
	q->flags = wire_get_u8(r);
}

/* ---- RESULT: req_id, status, text ---- */

static void
result_put(struct wire_w *w, const struct msg_result *m)
{
	wire_put_u32(w, m->req_id);
	wire_put_u8(w, m->status);
	put_str(w, m->text, sizeof(m->text));
}

static void
result_get(struct wire_r *r, struct msg_result *m)
{
	/* status is not range-checked: a newer server may add codes (result_status_text copes). */
	m->req_id = wire_get_u32(r);
	m->status = wire_get_u8(r);
	wire_get_str8(r, m->text, sizeof(m->text));
}

/* ---- NETWORK: name, flags, owner, my_flags ---- */

static void
network_put(struct wire_w *w, const struct msg_network *m)
{
	put_str(w, m->name, sizeof(m->name));
	wire_put_u8(w, m->flags);
	wire_put_bytes(w, m->owner, KEY_LEN);
	wire_put_u8(w, m->my_flags);
}

static void
network_get(struct wire_r *r, struct msg_network *m)
{
	wire_get_str8(r, m->name, sizeof(m->name));
	m->flags = wire_get_u8(r);
	wire_get_bytes(r, m->owner, KEY_LEN);
	m->my_flags = wire_get_u8(r);
}

/* ---- MEMBER: network, key, address, nick, flags, endpoints ---- */

static void
member_put(struct wire_w *w, const struct msg_member *m)
{
	put_str(w, m->network, sizeof(m->network));
	wire_put_bytes(w, m->key, KEY_LEN);
	wire_put_u32(w, m->address);
	put_str(w, m->nick, sizeof(m->nick));
	wire_put_u8(w, m->flags);
	put_endpoints(w, m->n_endpoints, m->endpoints);
}

static void
member_get(struct wire_r *r, struct msg_member *m)
{
	wire_get_str8(r, m->network, sizeof(m->network));
	wire_get_bytes(r, m->key, KEY_LEN);
	m->address = wire_get_u32(r);
	wire_get_str8(r, m->nick, sizeof(m->nick));
	m->flags = wire_get_u8(r);
	m->n_endpoints = get_endpoints(r, m->endpoints);
}

/* ---- MEMBER_GONE: network, key ---- */

static void
member_gone_put(struct wire_w *w, const struct msg_member_gone *m)
{
	put_str(w, m->network, sizeof(m->network));
	wire_put_bytes(w, m->key, KEY_LEN);
}

static void
member_gone_get(struct wire_r *r, struct msg_member_gone *m)
{
	wire_get_str8(r, m->network, sizeof(m->network));
	wire_get_bytes(r, m->key, KEY_LEN);
}

/* ---- NETWORK_GONE: name, reason ---- */

static void
network_gone_put(struct wire_w *w, const struct msg_network_gone *m)
{
	if (m->reason > GONE_REJECTED)
		w->err = 1;
	put_str(w, m->name, sizeof(m->name));
	wire_put_u8(w, m->reason);
}

static void
network_gone_get(struct wire_r *r, struct msg_network_gone *m)
{
	wire_get_str8(r, m->name, sizeof(m->name));
	m->reason = wire_get_u8(r);
	if (m->reason > GONE_REJECTED)
		r->err = 1;
}

/* ---- PING / PONG: nonce ---- */

static void
ping_put(struct wire_w *w, const struct msg_ping *m)
{
	wire_put_u64(w, m->nonce);
}

static void
ping_get(struct wire_r *r, struct msg_ping *m)
{
	m->nonce = wire_get_u64(r);
}

/* ---- NAT_PLAN / NAT_REPORT / NAT_INFO (PROTOCOL.md 3.1, 4.2) ---- */

enum { NAT_PHASE2_MS_MAX = 10000, NAT_STEP_MAX = 1024 };

static int
nat_plan_valid(const struct msg_nat_plan *m)
{
	/* An empty plan has no target 0 to probe; more than NAT_MAX_TARGETS overruns the array. */
	return m->phase2_ms <= NAT_PHASE2_MS_MAX && m->n_targets >= 1 &&
	    m->n_targets <= NAT_MAX_TARGETS;
}

static void
nat_plan_put(struct wire_w *w, const struct msg_nat_plan *m)
{
	uint8_t i;

	if (!nat_plan_valid(m)) {
		w->err = 1;
		return;
	}
	wire_put_u16(w, m->test_id);
	wire_put_u32(w, m->nonce);
	wire_put_u16(w, m->phase2_ms);
	wire_put_u8(w, m->n_targets);
	for (i = 0; i < m->n_targets; i++)
		put_ep4(w, &m->targets[i]);
}

static void
nat_plan_get(struct wire_r *r, struct msg_nat_plan *m)
{
	uint8_t i;

	m->test_id = wire_get_u16(r);
	m->nonce = wire_get_u32(r);
	m->phase2_ms = wire_get_u16(r);
	m->n_targets = wire_get_u8(r);
	if (r->err || !nat_plan_valid(m)) {
		r->err = 1;
		return;
	}
	for (i = 0; i < m->n_targets; i++)
		get_ep4(r, &m->targets[i]);
}

/* Bits a report may set: one per target, kinds 1 and 2, lifetime seqs 0..4. */
static int
nat_report_valid(const struct msg_nat_report *m)
{
	return (m->replies & ~((1u << NAT_MAX_TARGETS) - 1)) == 0 && (m->tests & ~3u) == 0 &&
	    (m->lifetime_seen & ~((1u << NAT_LIFETIME_STEPS) - 1)) == 0 &&
	    m->hairpin <= NAT_HP_LOST;
}

static void
nat_report_put(struct wire_w *w, const struct msg_nat_report *m)
{
	if (!nat_report_valid(m))
		w->err = 1;
	wire_put_u16(w, m->test_id);
	wire_put_u16(w, m->local_port);
	wire_put_u8(w, m->replies);
	wire_put_u8(w, m->tests);
	wire_put_u8(w, m->lifetime_seen);
	wire_put_u8(w, m->hairpin);
}

static void
nat_report_get(struct wire_r *r, struct msg_nat_report *m)
{
	m->test_id = wire_get_u16(r);
	m->local_port = wire_get_u16(r);
	m->replies = wire_get_u8(r);
	m->tests = wire_get_u8(r);
	m->lifetime_seen = wire_get_u8(r);
	m->hairpin = wire_get_u8(r);
	if (!nat_report_valid(m))
		r->err = 1;
}

static int
nat_info_valid(const struct msg_nat_info *m)
{
	/* step is meaningful only for sequential allocation; elsewhere it must be 0 so that the
	 * encoding stays canonical. */
	int step_ok = m->ports == NAT_PORTS_SEQUENTIAL ?
	    (m->step >= 1 && m->step <= NAT_STEP_MAX) : m->step == 0;

	return m->udp <= NAT_UDP_BLOCKED && m->mapping <= NAT_MAP_APDM &&
	    m->filtering <= NAT_FILT_APDF && m->ports <= NAT_PORTS_RANDOM && step_ok &&
	    m->hairpin <= NAT_HAIRPIN_NO && m->addrs >= 1 && m->addrs <= 2;
}

static void
nat_info_put(struct wire_w *w, const struct msg_nat_info *m)
{
	if (!nat_info_valid(m))
		w->err = 1;
	wire_put_u8(w, m->udp);
	wire_put_u8(w, m->mapping);
	wire_put_u8(w, m->filtering);
	wire_put_u8(w, m->ports);
	wire_put_u16(w, m->step);
	wire_put_u8(w, m->hairpin);
	wire_put_u16(w, m->lifetime_s);
	wire_put_u16(w, m->lifetime_max_s);
	put_ep4(w, &m->public_ep);
	wire_put_u8(w, m->addrs);
}

static void
nat_info_get(struct wire_r *r, struct msg_nat_info *m)
{
	m->udp = wire_get_u8(r);
	m->mapping = wire_get_u8(r);
	m->filtering = wire_get_u8(r);
	m->ports = wire_get_u8(r);
	m->step = wire_get_u16(r);
	m->hairpin = wire_get_u8(r);
	m->lifetime_s = wire_get_u16(r);
	m->lifetime_max_s = wire_get_u16(r);
	get_ep4(r, &m->public_ep);
	m->addrs = wire_get_u8(r);
	if (!nat_info_valid(m))
		r->err = 1;
}

/* ---- PUNCH (PROTOCOL.md 3.2, 4.2) ---- */

enum { PUNCH_START_MS_MAX = 5000, PUNCH_INTERVAL_MS_MAX = 2000, PUNCH_ROUNDS_MAX = 10 };

/*
 * The birthday fields: all 0 outside PUNCH_BIRTHDAY (and then not on the wire); probes need a
 * rate and a port range above the well-known ports, and no probes means no rate or range.
 */
static int
punch_birthday_valid(const struct msg_punch *m)
{
	if (m->strategy != PUNCH_BIRTHDAY)
		return m->sockets == 0 && m->probes == 0 && m->rate == 0 && m->port_lo == 0 &&
		    m->port_hi == 0;
	if (m->sockets > BIRTHDAY_SOCKETS_MAX || m->probes > BIRTHDAY_PROBES_MAX ||
	    m->rate > BIRTHDAY_RATE_MAX)
		return 0;
	if (m->probes == 0)
		return m->rate == 0 && m->port_lo == 0 && m->port_hi == 0;
	return m->rate >= 1 && m->port_lo >= BIRTHDAY_PORT_MIN && m->port_lo <= m->port_hi;
}

/*
 * One encoding per plan: every enum within its listed range (a nibble carries at most 15, the
 * ranges are narrower), and `none` carries no targets (there is nothing to send to).
 */
static int
punch_valid(const struct msg_punch *m)
{
	return punch_birthday_valid(m) && m->strategy <= PUNCH_TCP &&
	    m->my_mapping <= NAT_MAP_APDM &&
	    m->my_ports <= NAT_PORTS_RANDOM && m->peer_mapping <= NAT_MAP_APDM &&
	    m->peer_ports <= NAT_PORTS_RANDOM && m->peer_filtering <= NAT_FILT_APDF &&
	    m->start_ms <= PUNCH_START_MS_MAX && m->interval_ms <= PUNCH_INTERVAL_MS_MAX &&
	    m->rounds <= PUNCH_ROUNDS_MAX && m->n_targets <= PUNCH_MAX_TARGETS &&
	    (m->strategy != PUNCH_NONE || m->n_targets == 0);
}

static void
punch_put(struct wire_w *w, const struct msg_punch *m)
{
	uint8_t i;

	/* Checked first: n_targets past PUNCH_MAX_TARGETS would read past the array. */
	if (!punch_valid(m)) {
		w->err = 1;
		return;
	}
	wire_put_bytes(w, m->peer, KEY_LEN);
	wire_put_u8(w, m->strategy);
	wire_put_u8(w, (uint8_t)(m->my_mapping | m->my_ports << 4));
	wire_put_u8(w, (uint8_t)(m->peer_mapping | m->peer_ports << 4));
	wire_put_u8(w, m->peer_filtering);
	wire_put_u16(w, m->start_ms);
	wire_put_u16(w, m->interval_ms);
	wire_put_u8(w, m->rounds);
	wire_put_u8(w, m->n_targets);
	for (i = 0; i < m->n_targets; i++)
		put_endpoint(w, &m->targets[i]);
	/* Only birthday plans carry them: every other PUNCH encodes as it always did. */
	if (m->strategy == PUNCH_BIRTHDAY) {
		wire_put_u16(w, m->sockets);
		wire_put_u16(w, m->probes);
		wire_put_u16(w, m->rate);
		wire_put_u16(w, m->port_lo);
		wire_put_u16(w, m->port_hi);
	}
}

static void
punch_get(struct wire_r *r, struct msg_punch *m)
{
	uint8_t i, b;

	wire_get_bytes(r, m->peer, KEY_LEN);
	m->strategy = wire_get_u8(r);
	b = wire_get_u8(r);
	m->my_mapping = b & 0x0f;
	m->my_ports = b >> 4;
	b = wire_get_u8(r);
	m->peer_mapping = b & 0x0f;
	m->peer_ports = b >> 4;
	m->peer_filtering = wire_get_u8(r);
	m->start_ms = wire_get_u16(r);
	m->interval_ms = wire_get_u16(r);
	m->rounds = wire_get_u8(r);
	m->n_targets = wire_get_u8(r);
	m->sockets = m->probes = m->rate = m->port_lo = m->port_hi = 0;
	/* Validated before the loop: the count bounds the writes into targets[]. */
	if (r->err || !punch_valid(m)) {
		r->err = 1;
		return;
	}
	for (i = 0; i < m->n_targets; i++)
		get_endpoint(r, &m->targets[i]);
	if (m->strategy == PUNCH_BIRTHDAY) {
		m->sockets = wire_get_u16(r);
		m->probes = wire_get_u16(r);
		m->rate = wire_get_u16(r);
		m->port_lo = wire_get_u16(r);
		m->port_hi = wire_get_u16(r);
		if (!r->err && !punch_valid(m))
			r->err = 1;
	}
}

/* ---- PUNCH_REQUEST (PROTOCOL.md 3.2, 4.2): one key, nothing else ---- */

static void
punch_request_put(struct wire_w *w, const struct msg_punch_request *m)
{
	wire_put_bytes(w, m->peer, KEY_LEN);
}

static void
punch_request_get(struct wire_r *r, struct msg_punch_request *m)
{
	wire_get_bytes(r, m->peer, KEY_LEN);
}

/* ---- CANDIDATES: mapped endpoints (at most CAND_MAX_MAPPED, none zero) ---- */

static int
candidates_valid(const struct msg_candidates *m)
{
	size_t i;

	if (m->n_mapped > CAND_MAX_MAPPED)
		return 0;
	/* A zero address or port reaches nobody: one encoding for "no mapping" (n = 0). */
	for (i = 0; i < m->n_mapped; i++)
		if (!ep_is_set(&m->mapped[i]))
			return 0;
	return 1;
}

static void
candidates_put(struct wire_w *w, const struct msg_candidates *m)
{
	if (!candidates_valid(m)) {
		w->err = 1;
		return;
	}
	put_endpoints(w, m->n_mapped, m->mapped);
}

static void
candidates_get(struct wire_r *r, struct msg_candidates *m)
{
	struct endpoint eps[MAX_ENDPOINTS];

	m->n_mapped = get_endpoints(r, eps);
	if (m->n_mapped > CAND_MAX_MAPPED) {
		r->err = 1;
		return;
	}
	memcpy(m->mapped, eps, m->n_mapped * sizeof(eps[0]));
	if (!candidates_valid(m))
		r->err = 1;
}

/* A zero endpoint reaches nobody: as in CANDIDATES, it is refused. */
static int
locals_valid(const struct msg_locals *m)
{
	size_t i;

	if (m->n_local > MAX_ENDPOINTS)
		return 0;
	for (i = 0; i < m->n_local; i++)
		if (!ep_is_set(&m->local[i]))
			return 0;
	return 1;
}

static void
locals_put(struct wire_w *w, const struct msg_locals *m)
{
	if (!locals_valid(m)) {
		w->err = 1;
		return;
	}
	put_endpoints(w, m->n_local, m->local);
}

static void
locals_get(struct wire_r *r, struct msg_locals *m)
{
	m->n_local = get_endpoints(r, m->local);
	if (!locals_valid(m))
		r->err = 1;
}

/* ---- Relays (PROTOCOL.md 4.2, 8) ---- */

/*
 * A relay's name: 1..RELAY_NAME_MAX_LEN bytes of printable ASCII without spaces, so that it can
 * stand in a key=value log line and in `shoal status` as it is.
 */
int
relay_name_valid(const char *s)
{
	size_t i, n = strnlen(s, RELAY_NAME_MAX_LEN + 1);

	if (n == 0 || n > RELAY_NAME_MAX_LEN)
		return 0;
	for (i = 0; i < n; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f)
			return 0;
	return 1;
}

static void
relay_hello_put(struct wire_w *w, const struct msg_relay_hello *m)
{
	/* A relay with no UDP port cannot be used; its address may be 0 (use the source). */
	if (!relay_name_valid(m->name) || m->udp.port == 0)
		w->err = 1;
	wire_put_u16(w, m->version);
	put_str(w, m->name, sizeof(m->name));
	put_endpoint(w, &m->udp);
	wire_put_u16(w, m->tcp_port);
}

static void
relay_hello_get(struct wire_r *r, struct msg_relay_hello *m)
{
	/* Any version decodes, as in HELLO: the mediator answers a mismatch with a refusal. */
	m->version = wire_get_u16(r);
	wire_get_str8(r, m->name, sizeof(m->name));
	get_endpoint(r, &m->udp);
	m->tcp_port = wire_get_u16(r);
	if (!r->err && (!relay_name_valid(m->name) || m->udp.port == 0))
		r->err = 1;
}

static void
relay_welcome_put(struct wire_w *w, const struct msg_relay_welcome *m)
{
	if (m->relay_id == 0)
		w->err = 1;
	wire_put_u16(w, m->relay_id);
	wire_put_bytes(w, m->relay_key, sizeof(m->relay_key));
}

static void
relay_welcome_get(struct wire_r *r, struct msg_relay_welcome *m)
{
	m->relay_id = wire_get_u16(r);
	wire_get_bytes(r, m->relay_key, sizeof(m->relay_key));
	if (m->relay_id == 0)
		r->err = 1;
}

static void
relay_stats_put(struct wire_w *w, const struct msg_relay_stats *m)
{
	wire_put_u32(w, m->pairs);
	wire_put_u64(w, m->packets);
	wire_put_u64(w, m->bytes);
	wire_put_u64(w, m->drops);
}

static void
relay_stats_get(struct wire_r *r, struct msg_relay_stats *m)
{
	m->pairs = wire_get_u32(r);
	m->packets = wire_get_u64(r);
	m->bytes = wire_get_u64(r);
	m->drops = wire_get_u64(r);
}

/*
 * The pool is a set: ids strictly ascending (no duplicates, one encoding per pool), each one
 * non-zero, with a usable UDP endpoint (a node cannot send to address or port 0).
 */
static int
relays_valid(const struct msg_relays *m)
{
	uint8_t i;

	if (m->n > RELAY_POOL_MAX)
		return 0;
	for (i = 0; i < m->n; i++) {
		const struct msg_relay_info *ri = &m->relays[i];

		if (ri->id == 0 || (i > 0 && ri->id <= m->relays[i - 1].id) ||
		    !relay_name_valid(ri->name) || ri->udp.addr == 0 || ri->udp.port == 0)
			return 0;
	}
	return 1;
}

static void
relays_put(struct wire_w *w, const struct msg_relays *m)
{
	uint8_t i;

	/* Checked first: n past RELAY_POOL_MAX would read past the array. */
	if (!relays_valid(m)) {
		w->err = 1;
		return;
	}
	wire_put_u8(w, m->n);
	for (i = 0; i < m->n; i++) {
		wire_put_u16(w, m->relays[i].id);
		put_str(w, m->relays[i].name, sizeof(m->relays[i].name));
		put_endpoint(w, &m->relays[i].udp);
		wire_put_u16(w, m->relays[i].tcp_port);
	}
}

static void
relays_get(struct wire_r *r, struct msg_relays *m)
{
	uint8_t i;

	m->n = wire_get_u8(r);
	/* Bounded before the loop: the count limits the writes into relays[]. */
	if (m->n > RELAY_POOL_MAX) {
		r->err = 1;
		return;
	}
	for (i = 0; i < m->n && !r->err; i++) {
		m->relays[i].id = wire_get_u16(r);
		wire_get_str8(r, m->relays[i].name, sizeof(m->relays[i].name));
		get_endpoint(r, &m->relays[i].udp);
		m->relays[i].tcp_port = wire_get_u16(r);
	}
	if (!r->err && !relays_valid(m))
		r->err = 1;
}

/* Ids strictly ascending and non-zero: one report per relay, one encoding per report. */
static int
relay_rtt_valid(const struct msg_relay_rtt *m)
{
	uint8_t i;

	if (m->n > RELAY_POOL_MAX)
		return 0;
	for (i = 0; i < m->n; i++)
		if (m->rtt[i].id == 0 || (i > 0 && m->rtt[i].id <= m->rtt[i - 1].id))
			return 0;
	return 1;
}

static void
relay_rtt_put(struct wire_w *w, const struct msg_relay_rtt *m)
{
	uint8_t i;

	if (!relay_rtt_valid(m)) {
		w->err = 1;
		return;
	}
	wire_put_u8(w, m->n);
	for (i = 0; i < m->n; i++) {
		wire_put_u16(w, m->rtt[i].id);
		wire_put_u16(w, m->rtt[i].rtt_ms);
	}
}

static void
relay_rtt_get(struct wire_r *r, struct msg_relay_rtt *m)
{
	uint8_t i;

	m->n = wire_get_u8(r);
	if (m->n > RELAY_POOL_MAX) {
		r->err = 1;
		return;
	}
	for (i = 0; i < m->n; i++) {
		m->rtt[i].id = wire_get_u16(r);
		m->rtt[i].rtt_ms = wire_get_u16(r);
	}
	if (!r->err && !relay_rtt_valid(m))
		r->err = 1;
}

/*
 * A grant names a usable relay endpoint, a non-zero pair id and expiry, side 0/1 and a listed
 * reason. A revoke (relay_id 0) is the peer key and the 0 alone on the wire; its other fields
 * are all zero in the struct, so each struct has one encoding.
 */
static int
relay_grant_is_zero_tail(const struct msg_relay_grant *m)
{
	static const uint8_t zero[sizeof(m->secret)];

	return m->udp.addr == 0 && m->udp.port == 0 && m->tcp_port == 0 && m->pair == 0 &&
	    m->side == 0 && m->expiry == 0 && m->reason == 0 &&
	    memcmp(m->secret, zero, sizeof(zero)) == 0;
}

static int
relay_grant_valid(const struct msg_relay_grant *m)
{
	if (m->relay_id == 0)
		return relay_grant_is_zero_tail(m);
	return m->udp.addr != 0 && m->udp.port != 0 && m->pair != 0 && m->side <= 1 &&
	    m->expiry != 0 && m->reason <= RELAY_WHY_DIRECT_LOST;
}

static void
relay_grant_put(struct wire_w *w, const struct msg_relay_grant *m)
{
	if (!relay_grant_valid(m)) {
		w->err = 1;
		return;
	}
	wire_put_bytes(w, m->peer, KEY_LEN);
	wire_put_u16(w, m->relay_id);
	if (m->relay_id == 0)
		return;
	put_endpoint(w, &m->udp);
	wire_put_u16(w, m->tcp_port);
	wire_put_u64(w, m->pair);
	wire_put_u8(w, m->side);
	wire_put_u32(w, m->expiry);
	wire_put_bytes(w, m->secret, sizeof(m->secret));
	wire_put_u8(w, m->reason);
}

static void
relay_grant_get(struct wire_r *r, struct msg_relay_grant *m)
{
	wire_get_bytes(r, m->peer, KEY_LEN);
	m->relay_id = wire_get_u16(r);
	/* A revoke stops here; msg_decode zeroed the rest. */
	if (r->err || m->relay_id == 0)
		return;
	get_endpoint(r, &m->udp);
	m->tcp_port = wire_get_u16(r);
	m->pair = wire_get_u64(r);
	m->side = wire_get_u8(r);
	m->expiry = wire_get_u32(r);
	wire_get_bytes(r, m->secret, sizeof(m->secret));
	m->reason = wire_get_u8(r);
	if (!r->err && !relay_grant_valid(m))
		r->err = 1;
}

int
msg_encode(const struct msg *m, uint8_t *out, size_t cap)
{
	struct wire_w w;

	wire_w_init(&w, out, cap);
	wire_put_u8(&w, m->type);
	switch (m->type) {
	case MSG_HELLO:
		hello_put(&w, &m->u.hello);
		break;
	case MSG_WELCOME:
		welcome_put(&w, &m->u.welcome);
		break;
	case MSG_REQUEST:
		request_put(&w, &m->u.request);
		break;
	case MSG_RESULT:
		result_put(&w, &m->u.result);
		break;
	case MSG_NETWORK:
		network_put(&w, &m->u.network);
		break;
	case MSG_MEMBER:
		member_put(&w, &m->u.member);
		break;
	case MSG_MEMBER_GONE:
		member_gone_put(&w, &m->u.member_gone);
		break;
	case MSG_NETWORK_GONE:
		network_gone_put(&w, &m->u.network_gone);
		break;
	case MSG_PING:
	case MSG_PONG:
		ping_put(&w, &m->u.ping);
		break;
	case MSG_NAT_PLAN:
		nat_plan_put(&w, &m->u.nat_plan);
		break;
	case MSG_NAT_REPORT:
		nat_report_put(&w, &m->u.nat_report);
		break;
	case MSG_NAT_INFO:
		nat_info_put(&w, &m->u.nat_info);
		break;
	case MSG_PUNCH:
		punch_put(&w, &m->u.punch);
		break;
	case MSG_PUNCH_REQUEST:
		punch_request_put(&w, &m->u.punch_request);
		break;
	case MSG_CANDIDATES:
		candidates_put(&w, &m->u.candidates);
		break;
	case MSG_LOCALS:
		locals_put(&w, &m->u.locals);
		break;
	case MSG_RELAY_HELLO:
		relay_hello_put(&w, &m->u.relay_hello);
		break;
	case MSG_RELAY_WELCOME:
		relay_welcome_put(&w, &m->u.relay_welcome);
		break;
	case MSG_RELAY_STATS:
		relay_stats_put(&w, &m->u.relay_stats);
		break;
	case MSG_RELAYS:
		relays_put(&w, &m->u.relays);
		break;
	case MSG_RELAY_RTT:
		relay_rtt_put(&w, &m->u.relay_rtt);
		break;
	case MSG_RELAY_GRANT:
		relay_grant_put(&w, &m->u.relay_grant);
		break;
	default:
		if (chatmsg_put(&w, m) < 0)
			return -1;
	}
	if (w.err)
		return -1;
	return (int)wire_w_len(&w);
}

int
msg_decode(struct msg *m, const uint8_t *in, size_t len)
{
	struct wire_r r;

	/* Zeroed so that unused array tails are deterministic for callers comparing structs. */
	memset(m, 0, sizeof(*m));
	wire_r_init(&r, in, len);
	m->type = wire_get_u8(&r);
	switch (m->type) {
	case MSG_HELLO:
		hello_get(&r, &m->u.hello);
		break;
	case MSG_WELCOME:
		welcome_get(&r, &m->u.welcome);
		break;
	case MSG_REQUEST:
		request_get(&r, &m->u.request);
		break;
	case MSG_RESULT:
		result_get(&r, &m->u.result);
		break;
	case MSG_NETWORK:
		network_get(&r, &m->u.network);
		break;
	case MSG_MEMBER:
		member_get(&r, &m->u.member);
		break;
	case MSG_MEMBER_GONE:
		member_gone_get(&r, &m->u.member_gone);
		break;
	case MSG_NETWORK_GONE:
		network_gone_get(&r, &m->u.network_gone);
		break;
	case MSG_PING:
	case MSG_PONG:
		ping_get(&r, &m->u.ping);
		break;
	case MSG_NAT_PLAN:
		nat_plan_get(&r, &m->u.nat_plan);
		break;
	case MSG_NAT_REPORT:
		nat_report_get(&r, &m->u.nat_report);
		break;
	case MSG_NAT_INFO:
		nat_info_get(&r, &m->u.nat_info);
		break;
	case MSG_PUNCH:
		punch_get(&r, &m->u.punch);
		break;
	case MSG_PUNCH_REQUEST:
		punch_request_get(&r, &m->u.punch_request);
		break;
	case MSG_CANDIDATES:
		candidates_get(&r, &m->u.candidates);
		break;
	case MSG_LOCALS:
		locals_get(&r, &m->u.locals);
		break;
	case MSG_RELAY_HELLO:
		relay_hello_get(&r, &m->u.relay_hello);
		break;
	case MSG_RELAY_WELCOME:
		relay_welcome_get(&r, &m->u.relay_welcome);
		break;
	case MSG_RELAY_STATS:
		relay_stats_get(&r, &m->u.relay_stats);
		break;
	case MSG_RELAYS:
		relays_get(&r, &m->u.relays);
		break;
	case MSG_RELAY_RTT:
		relay_rtt_get(&r, &m->u.relay_rtt);
		break;
	case MSG_RELAY_GRANT:
		relay_grant_get(&r, &m->u.relay_grant);
		break;
	default:
		if (chatmsg_get(&r, m) < 0)
			return -1;
	}
	return wire_r_done(&r);
}

const char *
msg_type_name(uint8_t type)
{
	switch (type) {
	case MSG_HELLO: return "HELLO";
	case MSG_WELCOME: return "WELCOME";
	case MSG_REQUEST: return "REQUEST";
	case MSG_RESULT: return "RESULT";
	case MSG_NETWORK: return "NETWORK";
	case MSG_MEMBER: return "MEMBER";
	case MSG_MEMBER_GONE: return "MEMBER_GONE";
	case MSG_NETWORK_GONE: return "NETWORK_GONE";
	case MSG_PING: return "PING";
	case MSG_PONG: return "PONG";
	case MSG_NAT_PLAN: return "NAT_PLAN";
	case MSG_NAT_REPORT: return "NAT_REPORT";
	case MSG_NAT_INFO: return "NAT_INFO";
	case MSG_PUNCH: return "PUNCH";
	case MSG_PUNCH_REQUEST: return "PUNCH_REQUEST";
	case MSG_CANDIDATES: return "CANDIDATES";
	case MSG_LOCALS: return "LOCALS";
	case MSG_CHAT_SEND: return "CHAT_SEND";
	case MSG_CHAT: return "CHAT";
	case MSG_CHAT_ACK: return "CHAT_ACK";
	case MSG_CHAT_HISTORY: return "CHAT_HISTORY";
	case MSG_CHAT_REFUSED: return "CHAT_REFUSED";
	case MSG_RELAY_HELLO: return "RELAY_HELLO";
	case MSG_RELAY_WELCOME: return "RELAY_WELCOME";
	case MSG_RELAY_STATS: return "RELAY_STATS";
	case MSG_RELAYS: return "RELAYS";
	case MSG_RELAY_RTT: return "RELAY_RTT";
	case MSG_RELAY_GRANT: return "RELAY_GRANT";
	}
	return "UNKNOWN";
}

const char *
req_op_name(uint8_t op)
{
	switch (op) {
	case OP_CREATE: return "CREATE";
	case OP_JOIN: return "JOIN";
	case OP_LEAVE: return "LEAVE";
	case OP_GO_ONLINE: return "GO_ONLINE";
	case OP_GO_OFFLINE: return "GO_OFFLINE";
	case OP_DELETE: return "DELETE";
	case OP_SET_PASS: return "SET_PASS";
	case OP_SET_ACCESS: return "SET_ACCESS";
	case OP_APPROVE: return "APPROVE";
	case OP_REJECT: return "REJECT";
	case OP_EVICT: return "EVICT";
	case OP_SET_NICK: return "SET_NICK";
	}
	return "UNKNOWN";
}

const char *
result_status_text(uint8_t status)
{
	switch (status) {
	case RES_OK: return "ok";
	case RES_ERR_BAD_REQUEST: return "bad request";
	case RES_ERR_NO_SUCH_NETWORK: return "no such network";
	case RES_ERR_EXISTS: return "already exists";
	case RES_ERR_BAD_PASSWORD: return "wrong password";
	case RES_ERR_LOCKED: return "network is locked";
	case RES_ERR_NOT_OWNER: return "only the network owner may do that";
	case RES_ERR_NO_SUCH_MEMBER: return "no such member";
	case RES_ERR_RATE_LIMITED: return "rate limited, try again later";
	case RES_ERR_PENDING: return "waiting for the owner's approval";
	case RES_ERR_INTERNAL: return "internal error";
	case RES_ERR_NOT_MEMBER: return "not a member of that network";
	}
	return "unknown error";
}

/* ---- UDP probes (PROTOCOL.md section 3) ---- */

/* Byte 0 type, bytes 1..3 zero: the same 4-byte header shape as every other UDP packet. */
static void
udp_header_put(struct wire_w *w, uint8_t type)
{
	wire_put_u8(w, type);
	wire_put_u8(w, 0);
	wire_put_u16(w, 0);
}

static void
udp_header_get(struct wire_r *r, uint8_t type)
{
	/* Non-zero padding is reserved for later versions: reject rather than ignore. */
	if (wire_get_u8(r) != type || wire_get_u8(r) != 0 || wire_get_u16(r) != 0)
		r->err = 1;
}

int
probe_encode(const uint8_t token[UDP_TOKEN_LEN], uint8_t *out, size_t cap)
{
	struct wire_w w;

	wire_w_init(&w, out, cap);
	udp_header_put(&w, UDP_PROBE);
	wire_put_bytes(&w, token, UDP_TOKEN_LEN);
	return w.err ? -1 : (int)wire_w_len(&w);
}

int
probe_decode(const uint8_t *in, size_t len, uint8_t token[UDP_TOKEN_LEN])
{
	struct wire_r r;

	wire_r_init(&r, in, len);
	udp_header_get(&r, UDP_PROBE);
	wire_get_bytes(&r, token, UDP_TOKEN_LEN);
	return wire_r_done(&r);
}

int
probe_reply_encode(const struct endpoint *ep, uint8_t *out, size_t cap)
{
	struct wire_w w;

	wire_w_init(&w, out, cap);
	udp_header_put(&w, UDP_PROBE_REPLY);
	put_ep4(&w, ep);
	return w.err ? -1 : (int)wire_w_len(&w);
}

int
probe_reply_decode(const uint8_t *in, size_t len, struct endpoint *ep)
{
	struct wire_r r;

	wire_r_init(&r, in, len);
	udp_header_get(&r, UDP_PROBE_REPLY);
	get_ep4(&r, ep);
	return wire_r_done(&r);
}

/* ---- NAT classification datagrams (PROTOCOL.md 3.1) ---- */

int
nat_probe_encode(const struct nat_probe *p, uint8_t *out, size_t cap)
{
	struct wire_w w;

	/* Target indexes past the largest plan can never be valid: refuse to send them. */
	if (p->target >= NAT_MAX_TARGETS)
		return -1;
	wire_w_init(&w, out, cap);
	udp_header_put(&w, UDP_NAT_PROBE);
	wire_put_bytes(&w, p->token, UDP_TOKEN_LEN);
	wire_put_u16(&w, p->test_id);
	wire_put_u8(&w, p->target);
	wire_put_u8(&w, 0);
	return w.err ? -1 : (int)wire_w_len(&w);
}

int
nat_probe_decode(const uint8_t *in, size_t len, struct nat_probe *p)
{
	struct wire_r r;

	wire_r_init(&r, in, len);
	udp_header_get(&r, UDP_NAT_PROBE);
	wire_get_bytes(&r, p->token, UDP_TOKEN_LEN);
	p->test_id = wire_get_u16(&r);
	p->target = wire_get_u8(&r);
	if (wire_get_u8(&r) != 0 || p->target >= NAT_MAX_TARGETS)
		r.err = 1;
	return wire_r_done(&r);
}

/* Kind 1 and 2 carry seq 0; kind 3 a gap index 0..NAT_LIFETIME_STEPS-1. */
static int
nat_test_valid(const struct nat_test *t)
{
	if (t->kind == NAT_TEST_OTHER_PORT || t->kind == NAT_TEST_OTHER_ADDR)
		return t->seq == 0;
	return t->kind == NAT_TEST_LIFETIME && t->seq < NAT_LIFETIME_STEPS;
}

int
nat_test_encode(const struct nat_test *t, uint8_t *out, size_t cap)
{
	struct wire_w w;

	if (!nat_test_valid(t))
		return -1;
	wire_w_init(&w, out, cap);
	udp_header_put(&w, UDP_NAT_TEST);
	wire_put_u16(&w, t->test_id);
	wire_put_u8(&w, t->kind);
	wire_put_u8(&w, t->seq);
	wire_put_u32(&w, t->nonce);
	return w.err ? -1 : (int)wire_w_len(&w);
}

int
nat_test_decode(const uint8_t *in, size_t len, struct nat_test *t)
{
	struct wire_r r;

	wire_r_init(&r, in, len);
	udp_header_get(&r, UDP_NAT_TEST);
	t->test_id = wire_get_u16(&r);
	t->kind = wire_get_u8(&r);
	t->seq = wire_get_u8(&r);
	t->nonce = wire_get_u32(&r);
	if (!nat_test_valid(t))
		r.err = 1;
	return wire_r_done(&r);
}

int
hairpin_encode(uint64_t nonce, uint8_t *out, size_t cap)
{
	struct wire_w w;

	wire_w_init(&w, out, cap);
	udp_header_put(&w, UDP_HAIRPIN);
	wire_put_u64(&w, nonce);
	return w.err ? -1 : (int)wire_w_len(&w);
}

int
hairpin_decode(const uint8_t *in, size_t len, uint64_t *nonce)
{
	struct wire_r r;

	wire_r_init(&r, in, len);
	udp_header_get(&r, UDP_HAIRPIN);
	*nonce = wire_get_u64(&r);
	return wire_r_done(&r);
}

/* ---- names for logs and JSON ---- */

static const char *
name_of(uint8_t v, const char *const *names, size_t n)
{
	return v < n ? names[v] : "unknown";
}

const char *
nat_udp_name(uint8_t v)
{
	static const char *const n[] = { "unknown", "ok", "blocked" };

	return name_of(v, n, sizeof(n) / sizeof(n[0]));
}

const char *
nat_mapping_name(uint8_t v)
{
	static const char *const n[] = { "unknown", "eim", "adm", "apdm" };

	return name_of(v, n, sizeof(n) / sizeof(n[0]));
}

const char *
nat_filtering_name(uint8_t v)
{
	static const char *const n[] = { "unknown", "eif", "adf", "apdf" };

	return name_of(v, n, sizeof(n) / sizeof(n[0]));
}

const char *
nat_ports_name(uint8_t v)
{
	static const char *const n[] = { "unknown", "preserved", "fixed", "sequential", "random" };

	return name_of(v, n, sizeof(n) / sizeof(n[0]));
}

const char *
nat_hairpin_name(uint8_t v)
{
	static const char *const n[] = { "unknown", "yes", "no" };

	return name_of(v, n, sizeof(n) / sizeof(n[0]));
}

const char *
punch_strategy_name(uint8_t v)
{
	static const char *const n[] = { "none", "lan", "simultaneous", "predict", "birthday",
		"tcp" };

	return name_of(v, n, sizeof(n) / sizeof(n[0]));
}

const char *
relay_reason_name(uint8_t v)
{
	static const char *const n[] = { "starting", "no-direct", "udp-blocked", "punch-failed",
		"direct-lost" };

	return name_of(v, n, sizeof(n) / sizeof(n[0]));
}

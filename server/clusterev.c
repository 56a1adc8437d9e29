/*
 * clusterev: encode and decode the instances' NOTIFY payloads (clusterev.h). The decoder takes
 * nothing on trust: the payload comes from any session of the database.
 */
#include "config.h"
#include "server/clusterev.h"

#include <stdio.h>
#include <string.h>

#include "base/endpoint.h"
#include "base/wire.h"
#include "mproto/msg.h"

static const char kinds[] = "nmgxwcd";  /* MEDPEER_*, CLUSTER_DOWN */

static int
is_lower_hex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

static int
hex_nibble(char c)
{
	return c <= '9' ? c - '0' : c - 'a' + 10;
}

static void
hex_put(char *out, const uint8_t *in, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

/* Exactly 2n lowercase hex digits at in into out. */
static int
hex_get(const char *in, size_t n, uint8_t *out)
{
	size_t i;

	if (!is_lower_hex(in, 2 * n))
		return -1;
	for (i = 0; i < n; i++)
		out[i] = (uint8_t)(hex_nibble(in[2 * i]) << 4 | hex_nibble(in[2 * i + 1]));
	return 0;
}

static int
instance_ok(const char *s)
{
	return strlen(s) == CLUSTER_ID_LEN && is_lower_hex(s, CLUSTER_ID_LEN);
}

/* A network name as the mediator accepts one: printable ASCII, no space at either end. */
static int
name_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > NAME_MAX_LEN || s[0] == ' ' || s[n - 1] == ' ')
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return 0;
	return 1;
}

/* An instance's nodes: nothing but the instance. */
static int
down_ok(const struct cluster_event *e)
{
	return e->val == 0 && !e->has_key && !e->has_network && e->eps_len == 0;
}

int
cluster_event_encode(const struct cluster_event *e, char *out, size_t cap)
{
	char key[2 * KEY_LEN + 1] = "-", eps[2 * CLUSTEREV_EPS_MAX + 1];
	int n;

	if (e->kind == '\0' || strchr(kinds, e->kind) == NULL ||
	    !instance_ok(e->instance) ||
	    (e->has_network && !name_ok(e->network, strlen(e->network))) ||
	    (e->eps_len > 0 && (e->kind != 'n' || e->has_network ||
	    e->eps_len > CLUSTEREV_EPS_MAX)) || (e->kind == CLUSTER_DOWN && !down_ok(e)))
		return -1;
	if (e->has_key)
		hex_put(key, e->key, KEY_LEN);
	if (e->eps_len > 0)
		hex_put(eps, e->eps, e->eps_len);
	n = snprintf(out, cap, "%c %s %u %s %s%s", e->kind, e->instance, e->val, key,
	    e->has_network ? "=" : e->eps_len > 0 ? "+" : "-",
	    e->has_network ? e->network : e->eps_len > 0 ? eps : "");
	return n < 0 || (size_t)n >= cap ? -1 : n;
}

int
cluster_event_decode(const char *in, struct cluster_event *e)
{
	const char *p = in;
	unsigned val = 0;
	size_t n;

	memset(e, 0, sizeof(*e));
	if (p[0] == '\0' || strchr(kinds, p[0]) == NULL || p[1] != ' ')
		return -1;
	e->kind = p[0];
	p += 2;
	if (strlen(p) < CLUSTER_ID_LEN + 1 || !is_lower_hex(p, CLUSTER_ID_LEN) ||
	    p[CLUSTER_ID_LEN] != ' ')
		return -1;
	memcpy(e->instance, p, CLUSTER_ID_LEN);
	p += CLUSTER_ID_LEN + 1;
	for (n = 0; p[n] >= '0' && p[n] <= '9' && n < 3; n++)
		val = val * 10 + (unsigned)(p[n] - '0');
	if (n == 0 || p[n] != ' ' || val > 255 || (n > 1 && p[0] == '0'))
		return -1;
	e->val = (uint8_t)val;
	p += n + 1;
	if (p[0] == '-' && p[1] == ' ') {
		p += 2;
	} else {
		if (strlen(p) < 2 * KEY_LEN + 1 || hex_get(p, KEY_LEN, e->key) != 0 ||
		    p[2 * KEY_LEN] != ' ')
			return -1;
		e->has_key = 1;
		p += 2 * KEY_LEN + 1;
	}
	if (p[0] == '-' && p[1] == '\0')
		return e->kind != CLUSTER_DOWN || down_ok(e) ? 0 : -1;
	if (e->kind == CLUSTER_DOWN)
		return -1;
	if (p[0] == '+' && e->kind == 'n') {
		n = strlen(p + 1);
		if (n == 0 || n % 2 || n / 2 > CLUSTEREV_EPS_MAX || hex_get(p + 1, n / 2, e->eps) != 0)
			return -1;
		e->eps_len = n / 2;
		return 0;
	}
	if (p[0] != '=' || !name_ok(p + 1, strlen(p + 1)))
		return -1;
	memcpy(e->network, p + 1, strlen(p + 1) + 1);
	e->has_network = 1;
	return 0;
}

/* ---- the pair payloads: "S ..." and "F ..." ---- */

/* "K INSTANCE ": the letter and the sender; the rest of the line, or NULL. */
static const char *
head_get(const char *in, char kind, char instance[CLUSTER_ID_LEN + 1])
{
	if (in[0] != kind || in[1] != ' ' || strlen(in + 2) < CLUSTER_ID_LEN + 1 ||
	    !is_lower_hex(in + 2, CLUSTER_ID_LEN) || in[2 + CLUSTER_ID_LEN] != ' ')
		return NULL;
	memcpy(instance, in + 2, CLUSTER_ID_LEN);
	instance[CLUSTER_ID_LEN] = '\0';
	return in + 2 + CLUSTER_ID_LEN + 1;
}

/* "HEX" to the end of the line into buf: its length, or -1 (odd, uppercase, too long). */
static int
blob_get(const char *in, uint8_t *buf, size_t cap)
{
	size_t n = strlen(in);

	if (n == 0 || n % 2 || n / 2 > cap || hex_get(in, n / 2, buf) != 0)
		return -1;
	return (int)(n / 2);
}

/* The side, binary: key, u8 has_info, [blob16 MSG_NAT_INFO], observed, cand[], mapped[],
 * u16 max_port, u16 delay_ms, tcp. Endpoints as everywhere (ep_put); an absent one (addr 0,
 * IPv4) is written as 0.0.0.0:0 like any other. */
static size_t
side_put(const struct punch_side *s, uint8_t *out, size_t cap)
{
	struct msg info = { .type = MSG_NAT_INFO };
	uint8_t ib[128];
	struct wire_w w;
	int n = 0;
	size_t i;

	if (s->n_cand > MAX_ENDPOINTS || s->n_mapped > CAND_MAX_MAPPED ||
	    s->delay_ms > PUNCH_START_MAX_MS)
		return 0;
	if (s->has_info) {
		info.u.nat_info = s->info;
		if ((n = msg_encode(&info, ib, sizeof(ib))) < 0)
			return 0;
	}
	wire_w_init(&w, out, cap);
	wire_put_bytes(&w, s->key, KEY_LEN);
	wire_put_u8(&w, s->has_info ? 1 : 0);
	if (s->has_info)
		wire_put_blob16(&w, ib, (size_t)n);
	ep_put(&w, &s->observed);
	wire_put_u8(&w, s->n_cand);
	for (i = 0; i < s->n_cand; i++)
		ep_put(&w, &s->cand[i]);
	wire_put_u8(&w, s->n_mapped);
	for (i = 0; i < s->n_mapped; i++)
		ep_put(&w, &s->mapped[i]);
	wire_put_u16(&w, s->max_port);
	wire_put_u16(&w, s->delay_ms);
	ep_put(&w, &s->tcp);
	return wire_w_len(&w);
}

static int
side_get(const uint8_t *in, size_t len, struct punch_side *s)
{
	struct msg info;
	struct wire_r r;
	const uint8_t *ib;
	size_t i, n;
	uint8_t flag;

	memset(s, 0, sizeof(*s));
	memset(&info, 0, sizeof(info));         /* its padding is copied into s */
	wire_r_init(&r, in, len);
	wire_get_bytes(&r, s->key, KEY_LEN);
	flag = wire_get_u8(&r);
	if (flag > 1)
		return -1;
	if (flag) {
		if ((ib = wire_get_blob16(&r, &n)) == NULL || msg_decode(&info, ib, n) != 0 ||
		    info.type != MSG_NAT_INFO)
			return -1;
		s->has_info = 1;
		s->info = info.u.nat_info;
	}
	ep_get(&r, &s->observed);
	s->n_cand = wire_get_u8(&r);
	if (s->n_cand > MAX_ENDPOINTS)
		return -1;
	for (i = 0; i < s->n_cand; i++)
		ep_get(&r, &s->cand[i]);
	s->n_mapped = wire_get_u8(&r);
	if (s->n_mapped > CAND_MAX_MAPPED)
		return -1;
	for (i = 0; i < s->n_mapped; i++)
		ep_get(&r, &s->mapped[i]);
	s->max_port = wire_get_u16(&r);
	s->delay_ms = wire_get_u16(&r);
	ep_get(&r, &s->tcp);
	if (wire_r_done(&r) != 0 || s->delay_ms > PUNCH_START_MAX_MS)
		return -1;
	return 0;
}

int
cluster_side_encode(const struct cluster_side *s, char *out, size_t cap)
{
	uint8_t bin[CLUSTERPAIR_MAX / 2];
	char to[2 * KEY_LEN + 1], hex[CLUSTERPAIR_MAX];
	size_t n;
	int len;

	if (!instance_ok(s->instance) || (n = side_put(&s->side, bin, sizeof(bin))) == 0 ||
	    2 * n >= sizeof(hex))
		return -1;
	hex_put(to, s->to, KEY_LEN);
	hex_put(hex, bin, n);
	len = snprintf(out, cap, "%c %s %llu %s %s", CLUSTER_SIDE, s->instance,
	    (unsigned long long)s->sent_ms, to, hex);
	return len < 0 || (size_t)len >= cap ? -1 : len;
}

int
cluster_side_decode(const char *in, struct cluster_side *s)
{
	uint8_t bin[CLUSTERPAIR_MAX / 2];
	const char *p;
	size_t i;
	int n;

	memset(s, 0, sizeof(*s));
	if ((p = head_get(in, CLUSTER_SIDE, s->instance)) == NULL)
		return -1;
	/* decimal, no leading zero, at most 15 digits (wall-clock milliseconds until year 33658) */
	for (i = 0; p[i] >= '0' && p[i] <= '9' && i < 15; i++)
		s->sent_ms = s->sent_ms * 10 + (uint64_t)(p[i] - '0');
	if (i == 0 || p[i] != ' ' || (i > 1 && p[0] == '0'))
		return -1;
	p += i + 1;
	if (strlen(p) < 2 * KEY_LEN + 1 || hex_get(p, KEY_LEN, s->to) != 0 || p[2 * KEY_LEN] != ' ')
		return -1;
	p += 2 * KEY_LEN + 1;
	if ((n = blob_get(p, bin, sizeof(bin))) < 0 || side_get(bin, (size_t)n, &s->side) != 0)
		return -1;
	return 0;
}

/* What an instance may forward to another's node: the halves of plans and relay grants. */
static int
fwd_type_ok(uint8_t type)
{
	return type == MSG_PUNCH || type == MSG_RELAY_GRANT;
}

int
cluster_fwd_encode(const struct cluster_fwd *f, char *out, size_t cap)
{
	uint8_t bin[CLUSTERPAIR_MAX / 2];
	char to[2 * KEY_LEN + 1], hex[CLUSTERPAIR_MAX];
	int n, len;

	if (!instance_ok(f->instance) || !fwd_type_ok(f->msg.type) ||
	    (n = msg_encode(&f->msg, bin, sizeof(bin))) <= 0 || 2 * (size_t)n >= sizeof(hex))
		return -1;
	hex_put(to, f->to, KEY_LEN);
	hex_put(hex, bin, (size_t)n);
	len = snprintf(out, cap, "%c %s %s %s", CLUSTER_FWD, f->instance, to, hex);
	return len < 0 || (size_t)len >= cap ? -1 : len;
}

int
cluster_fwd_decode(const char *in, struct cluster_fwd *f)
{
	uint8_t bin[CLUSTERPAIR_MAX / 2];
	const char *s;
	int n;

	memset(f, 0, sizeof(*f));
	if ((s = head_get(in, CLUSTER_FWD, f->instance)) == NULL)
		return -1;
	if (strlen(s) < 2 * KEY_LEN + 1 || hex_get(s, KEY_LEN, f->to) != 0 || s[2 * KEY_LEN] != ' ')
		return -1;
	s += 2 * KEY_LEN + 1;
	if ((n = blob_get(s, bin, sizeof(bin))) < 0 || msg_decode(&f->msg, bin, (size_t)n) != 0 ||
	    !fwd_type_ok(f->msg.type))
		return -1;
	return 0;
}

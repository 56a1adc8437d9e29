/*
 * shim_proto: encode/decode of the shim <-> shoald messages (docs/PROTOCOL.md section 7).
 * Pure functions over caller buffers: no allocation, no I/O, no globals, libc only, because the
 * same object is compiled into libshoal-preload.so (inside other people's programs) and into
 * shoald (libshoal_shimproto.a).
 *
 * The layout follows base/wire.h's rules (big-endian, exact length, no trailing bytes), but the
 * cursor is a private copy: the shim must not drag core/ objects (and their exported symbols)
 * into foreign processes.
 * Owns: nothing. Must not: call anything but memset/memcpy/memchr.
 */
#include "config.h"
#include "lanproxy/shim_proto.h"

#include <string.h>

/* Bounds-checked cursor with a sticky error, as base/wire.h. */
struct cur {
	uint8_t *w;                     /* encoding: output buffer (NULL while decoding) */
	const uint8_t *r;               /* decoding: input */
	size_t len;                     /* capacity (encode) or input length (decode) */
	size_t off;
	int err;
};

static uint8_t *
w_reserve(struct cur *c, size_t n)
{
	uint8_t *p;

	if (c->err || n > c->len - c->off) {
		c->err = 1;
		return NULL;
	}
	p = c->w + c->off;
	c->off += n;
	return p;
}

static void
put_u8(struct cur *c, uint8_t v)
{
	uint8_t *p = w_reserve(c, 1);

	if (p)
		p[0] = v;
}

static void
put_u16(struct cur *c, uint16_t v)
{
	uint8_t *p = w_reserve(c, 2);

	if (p) {
		p[0] = (uint8_t)(v >> 8);
		p[1] = (uint8_t)v;
	}
}

static void
put_u32(struct cur *c, uint32_t v)
{
	uint8_t *p = w_reserve(c, 4);

	if (p) {
		p[0] = (uint8_t)(v >> 24);
		p[1] = (uint8_t)(v >> 16);
		p[2] = (uint8_t)(v >> 8);
		p[3] = (uint8_t)v;
	}
}

static const uint8_t *
r_take(struct cur *c, size_t n)
{
	const uint8_t *p;

	if (c->err || n > c->len - c->off) {
		c->err = 1;
		return NULL;
	}
	p = c->r + c->off;
	c->off += n;
	return p;
}

static uint8_t
get_u8(struct cur *c)
{
	const uint8_t *p = r_take(c, 1);

	return p ? p[0] : 0;
}

static uint16_t
get_u16(struct cur *c)
{
	const uint8_t *p = r_take(c, 2);

	return p ? (uint16_t)(p[0] << 8 | p[1]) : 0;
}

static uint32_t
get_u32(struct cur *c)
{
	const uint8_t *p = r_take(c, 4);

	return p ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3] : 0;
}

/*
 * Field checks shared by both directions, so that whatever decodes re-encodes to the same bytes
 * and the encoder never produces what the decoder would reject.
 */
static int
fields_ok(const struct shim_msg *m)
{
	switch (m->type) {
	case SHIM_TCP_RESULT:
	case SHIM_MCAST:
		return m->flag <= 1;
	case SHIM_CLOSE:
		return m->flag == SHIM_UDP || m->flag == SHIM_TCP;
	case SHIM_DGRAM_OUT:
		return m->data_len <= SHIM_DGRAM_MAX;
	case SHIM_RESOLVE:
		/* a C string on the daemon's side: empty names and embedded NULs are no names */
		return m->name_len >= 1 && m->name != NULL &&
		    memchr(m->name, '\0', m->name_len) == NULL;
	case SHIM_REPLY:
		/* A negative errno is a bug on the sending side, not something to pass on. */
		return m->err >= 0 && m->r_prefix <= 32 &&
		    (m->name_len == 0 || (m->name != NULL &&
		    memchr(m->name, '\0', m->name_len) == NULL));
	default:
		return 1;
	}
}

int
shim_encode(const struct shim_msg *m, uint8_t *out, size_t cap)
{
	struct cur c = { out, NULL, cap, 0, 0 };
	uint8_t *p;

	if (!fields_ok(m))
		return -1;
	put_u8(&c, m->type);
	put_u32(&c, m->id);
	switch (m->type) {
	case SHIM_HELLO:
		put_u16(&c, m->version);
		put_u32(&c, m->pid);
		break;
	case SHIM_ALIAS:
	case SHIM_NAME_OF:
		put_u32(&c, m->addr);
		break;
	case SHIM_UDP_BIND:
	case SHIM_TCP_LISTEN:
		put_u16(&c, m->port);
		break;
	case SHIM_UNALIAS:
	case SHIM_UDP_ALIAS:
		put_u32(&c, m->addr);
		put_u16(&c, m->port);
		break;
	case SHIM_TCP_CONNECT:
		put_u16(&c, m->lport);
		put_u32(&c, m->addr);
		put_u16(&c, m->port);
		break;
	case SHIM_TCP_RESULT:
		put_u16(&c, m->lport);
		put_u8(&c, m->flag);
		break;
	case SHIM_MCAST:
		put_u32(&c, m->addr);
		put_u16(&c, m->port);
		put_u8(&c, m->flag);
		break;
	case SHIM_DGRAM_OUT:
		put_u32(&c, m->addr);
		put_u16(&c, m->port);
		put_u16(&c, m->lport);
		put_u16(&c, m->data_len);
		if (m->data_len > 0 && m->data == NULL)
			return -1;
		p = w_reserve(&c, m->data_len);
		if (p && m->data_len)
			memcpy(p, m->data, m->data_len);
		break;
	case SHIM_CLOSE:
		put_u8(&c, m->flag);
		put_u16(&c, m->port);
		break;
	case SHIM_RESOLVE:
		put_u8(&c, m->name_len);
		p = w_reserve(&c, m->name_len);
		if (p)
			memcpy(p, m->name, m->name_len);
		break;
	case SHIM_REPLY:
		put_u32(&c, (uint32_t)m->err);
		put_u32(&c, m->r_addr);
		put_u8(&c, m->r_prefix);
		put_u16(&c, m->r_mtu);
		put_u16(&c, m->r_port);
		put_u8(&c, m->name_len);
		p = w_reserve(&c, m->name_len);
		if (p && m->name_len)
			memcpy(p, m->name, m->name_len);
		break;
	default:
		return -1;
	}
	if (c.err)
		return -1;
	return (int)c.off;
}

int
shim_decode(struct shim_msg *m, const uint8_t *in, size_t len)
{
	struct cur c = { NULL, in, len, 0, 0 };

	memset(m, 0, sizeof(*m));
	m->type = get_u8(&c);
	m->id = get_u32(&c);
	switch (m->type) {
	case SHIM_HELLO:
		m->version = get_u16(&c);
		m->pid = get_u32(&c);
		break;
	case SHIM_ALIAS:
	case SHIM_NAME_OF:
		m->addr = get_u32(&c);
		break;
	case SHIM_UDP_BIND:
	case SHIM_TCP_LISTEN:
		m->port = get_u16(&c);
		break;
	case SHIM_UNALIAS:
	case SHIM_UDP_ALIAS:
		m->addr = get_u32(&c);
		m->port = get_u16(&c);
		break;
	case SHIM_TCP_CONNECT:
		m->lport = get_u16(&c);
		m->addr = get_u32(&c);
		m->port = get_u16(&c);
		break;
	case SHIM_TCP_RESULT:
		m->lport = get_u16(&c);
		m->flag = get_u8(&c);
		break;
	case SHIM_MCAST:
		m->addr = get_u32(&c);
		m->port = get_u16(&c);
		m->flag = get_u8(&c);
		break;
	case SHIM_DGRAM_OUT:
		m->addr = get_u32(&c);
		m->port = get_u16(&c);
		m->lport = get_u16(&c);
		m->data_len = get_u16(&c);
		m->data = r_take(&c, m->data_len);
		break;
	case SHIM_CLOSE:
		m->flag = get_u8(&c);
		m->port = get_u16(&c);
		break;
	case SHIM_RESOLVE:
		m->name_len = get_u8(&c);
		m->name = (const char *)r_take(&c, m->name_len);
		break;
	case SHIM_REPLY:
		m->err = (int32_t)get_u32(&c);
		m->r_addr = get_u32(&c);
		m->r_prefix = get_u8(&c);
		m->r_mtu = get_u16(&c);
		m->r_port = get_u16(&c);
		m->name_len = get_u8(&c);
		m->name = (const char *)r_take(&c, m->name_len);
		break;
	default:
		goto bad;
	}
	if (c.err || c.off != len || !fields_ok(m))
		goto bad;
	if (m->data_len == 0)
		m->data = NULL;
	if (m->name_len == 0)
		m->name = NULL;
	return 0;
bad:
	/* Never leave a half-filled message behind for a caller that ignores the result. */
	memset(m, 0, sizeof(*m));
	return -1;
}

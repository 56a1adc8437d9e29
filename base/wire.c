/*
 * wire: cursor implementation. Pure functions over caller buffers; no allocation, no I/O.
 */
#include "config.h"
#include "base/wire.h"

#include <string.h>

void
wire_w_init(struct wire_w *w, uint8_t *buf, size_t cap)
{
	w->buf = buf;
	w->cap = cap;
	w->off = 0;
	w->err = 0;
}

uint8_t *
wire_put_reserve(struct wire_w *w, size_t n)
{
	uint8_t *p;

	if (w->err || n > w->cap - w->off) {
		w->err = 1;
		return NULL;
	}
	p = w->buf + w->off;
	w->off += n;
	return p;
}

void
wire_put_u8(struct wire_w *w, uint8_t v)
{
	uint8_t *p = wire_put_reserve(w, 1);

	if (p)
		p[0] = v;
}

void
wire_put_u16(struct wire_w *w, uint16_t v)
{
	uint8_t *p = wire_put_reserve(w, 2);

	if (p) {
		p[0] = (uint8_t)(v >> 8);
		p[1] = (uint8_t)v;
	}
}

void
wire_put_u32(struct wire_w *w, uint32_t v)
{
	uint8_t *p = wire_put_reserve(w, 4);

	if (p) {
		p[0] = (uint8_t)(v >> 24);
		p[1] = (uint8_t)(v >> 16);
		p[2] = (uint8_t)(v >> 8);
		p[3] = (uint8_t)v;
	}
}

void
wire_put_u64(struct wire_w *w, uint64_t v)
{
	wire_put_u32(w, (uint32_t)(v >> 32));
	wire_put_u32(w, (uint32_t)v);
}

void
wire_put_bytes(struct wire_w *w, const void *src, size_t n)
{
	uint8_t *p = wire_put_reserve(w, n);

	if (p && n)
		memcpy(p, src, n);
}

void
wire_put_str8(struct wire_w *w, const char *s)
{
	size_t n = strlen(s);

	if (n > 255) {
		w->err = 1;
		return;
	}
	wire_put_u8(w, (uint8_t)n);
	wire_put_bytes(w, s, n);
}

void
wire_put_blob16(struct wire_w *w, const void *p, size_t n)
{
	if (n > 0xffff) {
		w->err = 1;
		return;
	}
	wire_put_u16(w, (uint16_t)n);
	wire_put_bytes(w, p, n);
}

size_t
wire_w_len(const struct wire_w *w)
{
	return w->err ? 0 : w->off;
}

void
wire_r_init(struct wire_r *r, const void *buf, size_t len)
{
	r->buf = buf;
	r->len = len;
	r->off = 0;
	r->err = 0;
}

const uint8_t *
wire_get_ptr(struct wire_r *r, size_t n)
{
	const uint8_t *p;

	if (r->err || n > r->len - r->off) {
		r->err = 1;
		return NULL;
	}
	p = r->buf + r->off;
	r->off += n;
	return p;
}

uint8_t
wire_get_u8(struct wire_r *r)
{
	const uint8_t *p = wire_get_ptr(r, 1);

	return p ? p[0] : 0;
}

uint16_t
wire_get_u16(struct wire_r *r)
{
	const uint8_t *p = wire_get_ptr(r, 2);

	return p ? (uint16_t)((p[0] << 8) | p[1]) : 0;
}

uint32_t
wire_get_u32(struct wire_r *r)
{
	const uint8_t *p = wire_get_ptr(r, 4);

	return p ? ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3] : 0;
}

uint64_t
wire_get_u64(struct wire_r *r)
{
	uint64_t hi = wire_get_u32(r);

	return (hi << 32) | wire_get_u32(r);
}

void
wire_get_bytes(struct wire_r *r, void *out, size_t n)
{
	const uint8_t *p = wire_get_ptr(r, n);

	if (p && n)
		memcpy(out, p, n);
	else if (!p && n)
		memset(out, 0, n);
}

void
wire_get_str8(struct wire_r *r, char *out, size_t cap)
{
	size_t n = wire_get_u8(r);
	const uint8_t *p = wire_get_ptr(r, n);

	if (cap)
		out[0] = '\0';
	if (!p)
		return;
	if (n >= cap || memchr(p, '\0', n)) {
		r->err = 1;
		return;
	}
	memcpy(out, p, n);
	out[n] = '\0';
}

const uint8_t *
wire_get_blob16(struct wire_r *r, size_t *len)
{
	size_t n = wire_get_u16(r);
	const uint8_t *p = wire_get_ptr(r, n);

	*len = p ? n : 0;
	return p;
}

size_t
wire_r_left(const struct wire_r *r)
{
	return r->err ? 0 : r->len - r->off;
}

int
wire_r_done(const struct wire_r *r)
{
	return (!r->err && r->off == r->len) ? 0 : -1;
}

/*
 * wire: bounds-checked read and write cursors for every wire format in shoal.
 * All integers are big-endian (network order). Errors are sticky: after the first overrun or
 * malformed field every further call is a no-op, so an encoder/decoder checks ->err once at
 * the end. Decoders must finish with wire_r_done(), which also rejects trailing bytes.
 * Owns nothing: the caller owns the buffers.
 */
#ifndef SHOAL_WIRE_H
#define SHOAL_WIRE_H

#include <stddef.h>
#include <stdint.h>

struct wire_w {
	uint8_t *buf;
	size_t cap;
	size_t off;
	int err;
};

struct wire_r {
	const uint8_t *buf;
	size_t len;
	size_t off;
	int err;
};

void wire_w_init(struct wire_w *w, uint8_t *buf, size_t cap);
void wire_put_u8(struct wire_w *w, uint8_t v);
void wire_put_u16(struct wire_w *w, uint16_t v);
void wire_put_u32(struct wire_w *w, uint32_t v);
void wire_put_u64(struct wire_w *w, uint64_t v);
void wire_put_bytes(struct wire_w *w, const void *p, size_t n);
/* A string of at most 255 bytes, prefixed by its length as u8; longer strings set err. */
void wire_put_str8(struct wire_w *w, const char *s);
/* Opaque bytes prefixed by a u16 length. */
void wire_put_blob16(struct wire_w *w, const void *p, size_t n);
/* Reserve n bytes to fill in later (e.g. a length); returns NULL on error. */
uint8_t *wire_put_reserve(struct wire_w *w, size_t n);
/* Bytes written so far, or 0 when err is set. */
size_t wire_w_len(const struct wire_w *w);

void wire_r_init(struct wire_r *r, const void *buf, size_t len);
uint8_t wire_get_u8(struct wire_r *r);
uint16_t wire_get_u16(struct wire_r *r);
uint32_t wire_get_u32(struct wire_r *r);
uint64_t wire_get_u64(struct wire_r *r);
void wire_get_bytes(struct wire_r *r, void *out, size_t n);
/* Points into the buffer; NULL (and err set) when fewer than n bytes remain. */
const uint8_t *wire_get_ptr(struct wire_r *r, size_t n);
/*
 * Reads a str8 into out (NUL-terminated). Fails (err set) if it does not fit in cap-1 bytes or
 * contains a NUL byte: a peer cannot smuggle a truncated name past us.
 */
void wire_get_str8(struct wire_r *r, char *out, size_t cap);
/* Reads a blob16; *len gets its length; returns a pointer into the buffer or NULL. */
const uint8_t *wire_get_blob16(struct wire_r *r, size_t *len);
size_t wire_r_left(const struct wire_r *r);
/* 0 when every byte was consumed without error, -1 otherwise. */
int wire_r_done(const struct wire_r *r);

#endif

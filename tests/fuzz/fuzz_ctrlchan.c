/*
 * fuzz_ctrlchan: arbitrary bytes into a responder-side ctrlchan over a socketpair, in a real
 * libev loop. Input byte 0 selects the mode:
 *   bit 0 clear: the fuzzer completes a genuine Noise handshake as the initiator, then the rest
 *                is a sequence of [u16 length][plaintext] records, each sent as one encrypted
 *                frame (so msg_decode and the frame layer see fuzzed plaintexts); bytes left
 *                over that do not form a record are sent raw (garbage after a valid stream);
 *   bit 0 set:   the rest is written raw, before any handshake (frame parser, Noise msg 1).
 *   bit 1 set:   the channel frees itself inside the first on_msg (deferred free path).
 * Then the fuzzer half-closes its end and runs the loop until the channel reports on_close.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>
#include <sodium.h>

#include "mproto/ctrlchan.h"
#include "crypto/noise.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Fuzzer-process state: set up once, reused by every input. */
static struct {
	struct ev_loop *loop;
	struct noise_keypair cli, srv;
	int init;
} fz;

struct run {
	struct ctrlchan *c;
	int ready, closed, nmsg, free_in_msg;
};

static void
f_ready(void *arg, const uint8_t rs[KEY_LEN])
{
	((struct run *)arg)->ready = 1;
}

static void
f_msg(void *arg, const struct msg *m)
{
	struct run *r = arg;
	uint8_t out[CTRL_FRAME_MAX];

	/* A delivered message always re-encodes. */
	if (msg_encode(m, out, sizeof(out)) < 0)
		abort();
	r->nmsg++;
	if (r->free_in_msg && r->c) {
		ctrlchan_free(r->c);
		r->c = NULL;
	}
}

static void
f_close(void *arg, const char *why)
{
	((struct run *)arg)->closed = 1;
}

static const struct ctrlchan_cbs f_cbs = { f_ready, f_msg, f_close };

static int
write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static int
send_frame(int fd, const uint8_t *p, size_t n)
{
	uint8_t hdr[2] = { (uint8_t)(n >> 8), (uint8_t)n };

	return write_all(fd, hdr, 2) < 0 ? -1 : write_all(fd, p, n);
}

static int
done(const struct run *r)
{
	return r->closed || r->c == NULL;
}

/* Initiator side of the handshake; tx gets the send cipher state. */
static int
handshake(int fd, struct run *r, struct noise_cs *tx)
{
	static const uint8_t prologue[] = { 's', 'h', 'o', 'a', 'l', '-', 'c', 't', 'r', 'l', 0,
	    SHOAL_PROTO_VERSION };
	struct noise_hs hs;
	struct noise_cs rx;
	uint8_t m1[128], m2[64];
	size_t got = 0;
	int n, spins = 0;

	noise_hs_init(&hs, 1, &fz.cli, fz.srv.pub, prologue, sizeof(prologue));
	n = noise_hs_write(&hs, NULL, 0, m1, sizeof(m1));
	if (n < 0 || send_frame(fd, m1, (size_t)n) < 0)
		return -1;
	while (got < 50 && !done(r) && spins++ < 1000) {
		ssize_t k;

		ev_run(fz.loop, EVRUN_NOWAIT);
		k = recv(fd, m2 + got, 50 - got, MSG_DONTWAIT);
		if (k > 0)
			got += (size_t)k;
	}
	if (got < 50 || noise_hs_read(&hs, m2 + 2, 48, NULL, 0) < 0 ||
	    noise_hs_split(&hs, tx, &rx) < 0)
		abort();        /* a genuine handshake must succeed */
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run r;
	struct noise_cs tx;
	uint8_t ct[CTRL_FRAME_MAX + AEAD_TAG_LEN];
	int sv[2], spins = 0;
	size_t off = 1;

	if (size < 1 || size > 64 * 1024)
		return 0;
	if (!fz.init) {
		if (sodium_init() < 0)
			abort();
		fz.loop = ev_loop_new(EVFLAG_AUTO);
		noise_keypair_generate(&fz.cli);
		noise_keypair_generate(&fz.srv);
		fz.init = 1;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return 0;
	/* Room for the whole input without the fuzzer's blocking writes stalling. */
	{
		int sz = 1 << 20;

		setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
		setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	}
	memset(&r, 0, sizeof(r));
	r.free_in_msg = (data[0] & 2) != 0;
	r.c = ctrlchan_new(fz.loop, sv[1], 0, &fz.srv, NULL, &f_cbs, &r);
	if (!r.c) {
		close(sv[0]);
		close(sv[1]);
		return 0;
	}

	if (data[0] & 1) {
		write_all(sv[0], data + 1, size - 1);
	} else if (handshake(sv[0], &r, &tx) == 0) {
		while (off + 2 <= size && !done(&r)) {
			size_t n = ((size_t)data[off] << 8 | data[off + 1]) % (CTRL_FRAME_MAX -
			    AEAD_TAG_LEN + 1);
			int len;

			if (off + 2 + n > size)
				break;
			len = noise_cs_encrypt(&tx, data + off + 2, n, ct);
			if (len < 0 || send_frame(sv[0], ct, (size_t)len) < 0)
				break;
			off += 2 + n;
			ev_run(fz.loop, EVRUN_NOWAIT);
		}
		if (off < size && !done(&r))
			write_all(sv[0], data + off, size - off);
	}
	shutdown(sv[0], SHUT_WR);
	while (!done(&r) && spins++ < 100000)
		ev_run(fz.loop, EVRUN_ONCE);
	if (!done(&r))
		abort();        /* EOF must always end the channel */
	if (r.c)
		ctrlchan_free(r.c);
	close(sv[0]);
	return 0;
}

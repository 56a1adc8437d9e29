/*
 * test_portmap: portmap/ with the real libnatpmp against a NAT-PMP gateway on loopback (an RFC
 * 6886 responder on its own thread, at a random 127.x.y.z so parallel runs do not meet):
 *   - the mapping arrives through ops->changed on the loop; status says nat-pmp, the public
 *     endpoint, the lease;
 *   - portmap_free removes it (a request with lifetime 0) and joins the worker;
 *   - a gateway where nothing listens ends in "failed" with the reason, no callback.
 * No sleeps: the loop runs until the callback (or a state change seen by an ev_check).
 */
#include "config.h"

#include <arpa/inet.h>
#include <ev.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "portmap/portmap.h"
#include "tests/unit/unit.h"

#define PUB_ADDR 0xcb007107u    /* 203.0.113.7 */
#define OUR_PORT 40000

struct gw {                     /* the responder thread's; read by the test after join */
	int fd;
	uint32_t addr;
	pthread_t th;
	int maps, unmaps, pubs;
	uint16_t last_internal;
	uint32_t last_lifetime;
};

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void
put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)get16(p) << 16 | get16(p + 2);
}

/* RFC 6886 3.2 and 3.3: op 0 answers the public address, op 1/2 a mapping of the suggested
 * port. A datagram "quit" ends the thread. */
static void *
gw_main(void *arg)
{
	struct gw *g = arg;
	uint8_t in[64], out[16];
	struct sockaddr_in from;
	socklen_t fl;
	ssize_t n;

	for (;;) {
		fl = sizeof(from);
		n = recvfrom(g->fd, in, sizeof(in), 0, (struct sockaddr *)&from, &fl);
		if (n == 4 && memcmp(in, "quit", 4) == 0)
			break;
		if (n < 2 || in[0] != 0)
			continue;
		memset(out, 0, sizeof(out));
		out[1] = (uint8_t)(128 + in[1]);
		put32(out + 4, 1234);           /* seconds since epoch of the gateway */
		if (in[1] == 0 && n == 2) {
			g->pubs++;
			put32(out + 8, PUB_ADDR);
			sendto(g->fd, out, 12, 0, (struct sockaddr *)&from, fl);
		} else if ((in[1] == 1 || in[1] == 2) && n == 12) {
			g->last_internal = get16(in + 4);
			g->last_lifetime = get32(in + 8);
			if (g->last_lifetime)
				g->maps++;
			else
				g->unmaps++;
			memcpy(out + 8, in + 4, 2);                     /* internal port */
			put16(out + 10, g->last_lifetime ? get16(in + 6) : 0);
			put32(out + 12, g->last_lifetime);
			sendto(g->fd, out, 16, 0, (struct sockaddr *)&from, fl);
		}
	}
	return NULL;
}

static uint32_t
random_loopback(void)
{
	/* 127.a.b.c with a, b, c in 1..254: not 127.0.0.1, which other tests use. */
	return 0x7f000000u | (1 + randombytes_uniform(254)) << 16 |
	    (1 + randombytes_uniform(254)) << 8 | (1 + randombytes_uniform(254));
}

static int
gw_start(struct gw *g)
{
	struct sockaddr_in sin;

	memset(g, 0, sizeof(*g));
	g->addr = random_loopback();
	if ((g->fd = socket(AF_INET, SOCK_DGRAM, 0)) < 0)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(g->addr);
	sin.sin_port = htons(5351);
	if (bind(g->fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		return -1;
	return pthread_create(&g->th, NULL, gw_main, g) == 0 ? 0 : -1;
}

static void
gw_stop(struct gw *g)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(g->addr);
	sin.sin_port = htons(5351);
	sendto(fd, "quit", 4, 0, (struct sockaddr *)&sin, sizeof(sin));
	close(fd);
	pthread_join(g->th, NULL);
	close(g->fd);
}

struct rec {
	struct ev_loop *loop;
	int calls;
	struct endpoint ext;
	int had_ext;
};

static void
on_changed(void *arg, const struct endpoint *ext)
{
	struct rec *r = arg;

	r->calls++;
	r->had_ext = ext != NULL;
	if (ext)
		r->ext = *ext;
	ev_break(r->loop, EVBREAK_ONE);
}

static const struct portmap_ops ops = { on_changed };

static void
test_natpmp_map_and_remove(void)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct rec r = { loop, 0, { .addr = 0, .port = 0 }, 0 };
	struct portmap_info pi;
	struct portmap *pm;
	struct gw g;

	CHECK_EQ(gw_start(&g), 0);
	pm = portmap_new(loop, OUR_PORT, &ops, &r);
	CHECK(pm != NULL);
	portmap_set_gateway(pm, g.addr);
	portmap_info(pm, &pi);
	CHECK_EQ(pi.state, PORTMAP_OFF);
	portmap_start(pm);
	portmap_info(pm, &pi);
	CHECK_EQ(pi.state, PORTMAP_TRYING);
	ev_run(loop, 0);

	CHECK_EQ(r.calls, 1);
	CHECK(r.had_ext);
	CHECK_EQ(r.ext.addr, PUB_ADDR);
	CHECK_EQ(r.ext.port, OUR_PORT);
	portmap_info(pm, &pi);
	CHECK_EQ(pi.state, PORTMAP_MAPPED);
	CHECK_EQ(pi.proto, PORTMAP_PROTO_NATPMP);
	CHECK_EQ(pi.ext.addr, PUB_ADDR);
	CHECK(pi.lease_left > PORTMAP_LEASE_S - 60 && pi.lease_left <= PORTMAP_LEASE_S);
	CHECK(strcmp(portmap_proto_name(pi.proto), "nat-pmp") == 0);
	CHECK(strcmp(portmap_state_name(pi.state), "mapped") == 0);

	portmap_free(pm);
	gw_stop(&g);                    /* joined: its counters are ours now */
	CHECK_EQ(g.maps, 1);
	CHECK_EQ(g.unmaps, 1);
	CHECK_EQ(g.last_internal, OUR_PORT);
	CHECK_EQ(g.last_lifetime, 0);
	CHECK(g.pubs >= 2);
	CHECK_EQ(r.calls, 1);           /* free calls nobody back */
	ev_loop_destroy(loop);
}

struct wait_fail {
	struct portmap *pm;
};

static void
check_cb(struct ev_loop *loop, ev_check *w, int revents)
{
	struct wait_fail *wf = w->data;
	struct portmap_info pi;

	portmap_info(wf->pm, &pi);
	if (pi.state == PORTMAP_FAILED)
		ev_break(loop, EVBREAK_ONE);
}

static void
test_no_gateway(void)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct rec r = { loop, 0, { .addr = 0, .port = 0 }, 0 };
	struct portmap_info pi;
	struct wait_fail wf;
	ev_check chk;

	wf.pm = portmap_new(loop, OUR_PORT, &ops, &r);
	CHECK(wf.pm != NULL);
	/* Nothing listens there: the kernel answers port unreachable at once. */
	portmap_set_gateway(wf.pm, random_loopback());
	ev_check_init(&chk, check_cb);
	chk.data = &wf;
	ev_check_start(loop, &chk);
	portmap_start(wf.pm);
	ev_run(loop, 0);
	ev_check_stop(loop, &chk);

	portmap_info(wf.pm, &pi);
	CHECK_EQ(pi.state, PORTMAP_FAILED);
	CHECK(strcmp(pi.error, "no NAT-PMP gateway") == 0);
	CHECK_EQ(r.calls, 0);
	portmap_free(wf.pm);
	ev_loop_destroy(loop);
}

static void
test_free_null_and_unstarted(void)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct portmap_info pi;
	struct portmap *pm;

	portmap_free(NULL);
	portmap_info(NULL, &pi);
	CHECK_EQ(pi.state, PORTMAP_OFF);
	pm = portmap_new(loop, OUR_PORT, &ops, NULL);
	CHECK(pm != NULL);
	portmap_free(pm);
	ev_loop_destroy(loop);
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	RUN(test_natpmp_map_and_remove);
	RUN(test_no_gateway);
	RUN(test_free_null_and_unstarted);
	return unit_finish();
}

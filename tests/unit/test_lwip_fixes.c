/*
 * test_lwip_fixes: one test per lwIP 2.1.3 TCP bug we patch (netstack/patches/), driving lwIP
 * directly: a netif whose output is captured, and hand-built IPv4/TCP segments from a
 * pretend peer.
 *
 * Built twice: test_lwip_fixes links the patched liblwip.a and requires correct behaviour;
 * test_lwip_fixes_unpatched compiles the same file against an unpatched copy of lwIP with
 * LWIP_FIXES_EXPECT_BUGS and requires each bug to show - proof that every test really
 * reproduces its bug. tcp_split_unsent_seg's double free (bug 3) is already fixed in the
 * 2.1.3 tree; its test is a regression test and must pass in both builds.
 */
#include "config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lwip/init.h"
#include "lwip/ip4.h"
#include "lwip/sys.h"
#include "lwip/memp.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"

#include "tests/unit/lwip_peer.h"
#include "tests/unit/unit.h"

#ifdef LWIP_FIXES_EXPECT_BUGS
#define FIXED 0
#else
#define FIXED 1
#endif

/* lwIP's clock: these tests never run timers. */
u32_t
sys_now(void)
{
	return 0;
}

/* Feeds lwIP one segment from the peer; data byte i is the low byte of seq + i. */
static u8_t
seq_pattern(void *arg, size_t i)
{
	return (u8_t)(*(const u32_t *)arg + i);
}

static void
peer_send(u8_t flags, u32_t seq, u32_t ack, u16_t wnd, size_t len)
{
	peer_segment(flags, seq, ack, wnd, NULL, 0, seq_pattern, &seq, len);
}

/* --- one accepted connection --- */

struct conn {
	struct tcp_pcb *pcb;
	u32_t peer_seq;         /* next seq the peer sends */
	u32_t our_seq;          /* our first data seq */
	size_t received;        /* bytes delivered to the application */
};

static struct conn cn;

static err_t
conn_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	(void)arg;
	(void)pcb;
	(void)err;
	if (p != NULL) {
		/* Deliberately no tcp_recved(): the application is slow, the window shrinks. */
		cn.received += p->tot_len;
		pbuf_free(p);
	}
	return ERR_OK;
}

static err_t
conn_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
	(void)arg;
	(void)err;
	cn.pcb = pcb;
	tcp_recv(pcb, conn_recv);
	tcp_nagle_disable(pcb);
	return ERR_OK;
}

static struct tcp_pcb *listener;

/* Three-way handshake with a peer that offers no options (no window scaling). */
static bool
open_conn(void)
{
	u32_t iss = 1000000;

	memset(&cn, 0, sizeof(cn));
	if (listener == NULL) {
		struct tcp_pcb *pcb = tcp_new();

		tcp_bind(pcb, IP4_ADDR_ANY, LOCAL_PORT);
		listener = tcp_listen(pcb);
		tcp_accept(listener, conn_accept);
	}
	nsent = 0;
	peer_send(TCP_SYN, iss, 0, 65535, 0);
	if (nsent != 1 || sent[0].flags != (TCP_SYN | TCP_ACK))
		return false;
	cn.our_seq = sent[0].seq + 1;
	cn.peer_seq = iss + 1;
	peer_send(TCP_ACK, cn.peer_seq, cn.our_seq, 65535, 0);
	return cn.pcb != NULL && cn.pcb->state == ESTABLISHED;
}

static void
close_conn(void)
{
	if (cn.pcb != NULL)
		tcp_abort(cn.pcb);
	cn.pcb = NULL;
}

/*
 * Bug 1: with unacknowledged data in flight, the peer sends a duplicate ACK, then a data
 * segment (same ackno), then two more duplicate ACKs. That is three duplicate ACKs, so fast
 * retransmit must fire; unpatched lwIP resets the count at the data segment.
 */
static void
test_dupacks_survive_data_segments(void)
{
	static u8_t data[4 * 1360];
	int i;
	bool rexmit = false;

	CHECK(open_conn());
	if (cn.pcb == NULL)
		return;
	CHECK_EQ(tcp_write(cn.pcb, data, sizeof(data), TCP_WRITE_FLAG_COPY), ERR_OK);
	nsent = 0;
	CHECK_EQ(tcp_output(cn.pcb), ERR_OK);
	CHECK(nsent >= 2);      /* initial cwnd lets several segments out */
	nsent = 0;
	peer_send(TCP_ACK, cn.peer_seq, cn.our_seq, 65535, 0);          /* dupack 1 */
	peer_send(TCP_ACK | TCP_PSH, cn.peer_seq, cn.our_seq, 65535, 100);   /* data */
	cn.peer_seq += 100;
	peer_send(TCP_ACK, cn.peer_seq, cn.our_seq, 65535, 0);          /* dupack 2 */
	peer_send(TCP_ACK, cn.peer_seq, cn.our_seq, 65535, 0);          /* dupack 3 */
	for (i = 0; i < nsent; i++)
		if (sent[i].seq == cn.our_seq && sent[i].len > 0)
			rexmit = true;
	if (FIXED) {
		CHECK_EQ(cn.pcb->dupacks, 3);
		CHECK(cn.pcb->flags & TF_INFR);
		CHECK(rexmit);
	} else {
		CHECK(cn.pcb->dupacks < 3);
		CHECK(!(cn.pcb->flags & TF_INFR));
		CHECK(!rexmit);
	}
	close_conn();
}

/*
 * Bug 2: the application stops reading, so the receive window is down to W bytes. The peer
 * sends out of order: B inside the window, A crossing the right edge (queued trimmed to the
 * edge), then A again, same seqno but longer: it replaces the trimmed A whole. Filling the
 * hole then delivers more than the window allowed.
 */
static void
test_ooseq_replacement_within_window(void)
{
	const u32_t W = 4000;
	unsigned long asserts_before = netstack_lwip_assert_count();
	size_t fill, before;
	u32_t n;

	CHECK(open_conn());
	if (cn.pcb == NULL)
		return;
	/* Shrink the window to W: in-order data the application never acknowledges. */
	fill = cn.pcb->rcv_wnd - W;
	while (fill > 0) {
		u16_t chunk = fill > 1360 ? 1360 : (u16_t)fill;

		peer_send(TCP_ACK, cn.peer_seq, cn.our_seq, 65535, chunk);
		cn.peer_seq += chunk;
		fill -= chunk;
	}
	CHECK_EQ(cn.pcb->rcv_wnd, W);
	n = cn.peer_seq;
	before = cn.received;
	peer_send(TCP_ACK, n + 1000, cn.our_seq, 65535, 500);   /* B: inside */
	peer_send(TCP_ACK, n + 3000, cn.our_seq, 65535, 2000);  /* A: crosses n + W */
	peer_send(TCP_ACK, n + 3000, cn.our_seq, 65535, 3000);  /* A again, longer */
	peer_send(TCP_ACK, n, cn.our_seq, 65535, 1000);         /* fill up to B */
	peer_send(TCP_ACK, n + 1000, cn.our_seq, 65535, 2000);  /* fill up to A */
	if (FIXED) {
		CHECK_EQ(cn.received - before, W);
		CHECK_EQ(cn.pcb->rcv_wnd, 0);
		CHECK_EQ(netstack_lwip_assert_count(), asserts_before);
	} else {
		/* More than the window was delivered and rcv_wnd wrapped around. */
		CHECK(cn.received - before > W);
		CHECK(cn.pcb->rcv_wnd > TCP_WND);
		CHECK(netstack_lwip_assert_count() > asserts_before);
	}
	close_conn();
}

/*
 * Bug 3 (regression): tcp_split_unsent_seg when no tcp_seg can be allocated. lwIP releases
 * the remainder pbuf inside tcp_create_segment; freeing it again in the error path was a
 * double free (fixed upstream before 2.1.3, kept as a regression test). Runs in a child so
 * that a crash (glibc or ASan double-free report) is a test failure, not the end of the run.
 */
static void
test_split_unsent_seg_without_memory(void)
{
	pid_t pid;
	int status = 0;

	CHECK(open_conn());
	if (cn.pcb == NULL)
		return;
	fflush(NULL);
	if ((pid = fork()) == 0) {
		static u8_t data[1000];
		static void *segs[MEMP_NUM_TCP_SEG];
		unsigned long asserts_before = netstack_lwip_assert_count();
		int n = 0;
		u16_t len0;
		err_t e;

		/* The peer's window is closed: the segment stays on ->unsent. */
		peer_send(TCP_ACK, cn.peer_seq, cn.our_seq, 0, 0);
		if (tcp_write(cn.pcb, data, sizeof(data), TCP_WRITE_FLAG_COPY) != ERR_OK ||
		    cn.pcb->unsent == NULL)
			_exit(3);
		len0 = cn.pcb->unsent->len;
		while (n < MEMP_NUM_TCP_SEG && (segs[n] = memp_malloc(MEMP_TCP_SEG)) != NULL)
			n++;
		e = tcp_split_unsent_seg(cn.pcb, 100);
		while (n > 0)
			memp_free(MEMP_TCP_SEG, segs[--n]);
		if (e != ERR_MEM || cn.pcb->unsent->len != len0)
			_exit(4);
		/* The queue still works: split for real, then drop everything. */
		if (tcp_split_unsent_seg(cn.pcb, 100) != ERR_OK || cn.pcb->unsent->len != 100)
			_exit(5);
		tcp_abort(cn.pcb);
		_exit(netstack_lwip_assert_count() == asserts_before ? 0 : 6);
	}
	CHECK(pid > 0);
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status));
	CHECK_EQ(WIFEXITED(status) ? WEXITSTATUS(status) : -1, 0);
	close_conn();
}

/*
 * Pools keep their bounds when their elements are handed out lazily (patch 0005): every one of
 * a pool's elements can be taken, all distinct; one more is refused; a freed one is reused and
 * then the pool is full again. Both builds must pass: it guards the bound a peer's traffic
 * runs into.
 */
static void
test_memp_pool_bound(void)
{
	void *p[MEMP_NUM_REASSDATA + 1];
	int i, j, ok = 1;

	for (i = 0; i < MEMP_NUM_REASSDATA; i++) {
		p[i] = memp_malloc(MEMP_REASSDATA);
		ok &= p[i] != NULL;
		for (j = 0; j < i; j++)
			ok &= p[i] != p[j];
	}
	CHECK(ok);
	CHECK(memp_malloc(MEMP_REASSDATA) == NULL);
	memp_free(MEMP_REASSDATA, p[5]);
	p[MEMP_NUM_REASSDATA] = memp_malloc(MEMP_REASSDATA);
	CHECK(p[MEMP_NUM_REASSDATA] == p[5]);
	CHECK(memp_malloc(MEMP_REASSDATA) == NULL);
	for (i = 0; i <= MEMP_NUM_REASSDATA; i++)
		if (i != 5 && p[i] != NULL)
			memp_free(MEMP_REASSDATA, p[i]);
}

int
main(void)
{
	setup();
	RUN(test_dupacks_survive_data_segments);
	RUN(test_ooseq_replacement_within_window);
	RUN(test_split_unsent_seg_without_memory);
	RUN(test_memp_pool_bound);
	return unit_finish();
}

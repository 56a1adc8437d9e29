/*
 * splice: one TCP connection over the virtual network joined to one kernel stream socket,
 * both ways, with backpressure and half-close.
 *
 *   fd -> lwIP: fd is read only while lwIP's send buffer has room; reads are large (up to
 *     64 KiB, what tcp_sndbuf allows) and queued with TCP_WRITE_FLAG_MORE, then one
 *     tcp_output per batch. EOF on fd becomes tcp_shutdown(tx), i.e. our FIN.
 *   lwIP -> fd: received pbufs are kept in order until written; tcp_recved is called only
 *     for bytes the fd accepted, so when fd is slow lwIP's window closes and the sender
 *     stops. The peer's FIN becomes shutdown(fd, SHUT_WR) once everything before it is
 *     written.
 *   Both directions done: the pcb is closed gracefully (lwIP finishes the FIN exchange on
 *   its own) and fd is closed. A reset or an error on either side resets the other.
 *
 * Connecting: our own timer caps lwIP's SYN retries (ETIMEDOUT); a RST answering the SYN is
 * ECONNREFUSED. Accepted connections (listen.c) may have an fd that is still connecting: it
 * is neither read nor written until it reports writable without error.
 *
 * Lifetime: a splice is freed only when no call of ours is on the stack for it (busy count),
 * so lwIP callbacks, ev callbacks and the connect callback may all end it.
 * Owns: struct ns_splice, its pcb (until closed or aborted) and its fd. Must not touch other
 * splices, the netif or listeners.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"

#include "base/log.h"
#include "netstack/netstack_priv.h"

enum sp_state {
	SP_SYN_SENT,            /* ns_splice_connect: waiting for lwIP's connect */
	SP_FD_CONNECTING,       /* accepted: waiting for fd's own connect */
	SP_OPEN,                /* data flows */
	SP_DONE,                /* closed; freed when no longer busy */
};

enum {
	SP_IOV_MAX = 64,
	SP_POLL_INTERVAL = 5,   /* lwIP slow-timer ticks (2 * TCP_TMR_INTERVAL each): 1 s */
	SP_READS_PER_WAKEUP = 8,
	SP_RESUME_ROOM = 65535, /* resume reading fd once this much send buffer is free */
};

/* Owned by the netstack (created by ns_splice_connect or a listener, freed by itself). */
struct ns_splice {
	ev_io rio;                      /* fd readable -> lwIP */
	ev_io wio;                      /* fd writable: pending lwIP data, or fd's connect */
	ev_timer ctimer;                /* connect timeout (SP_SYN_SENT only) */
	struct netstack *ns;
	struct tcp_pcb *pcb;            /* NULL once lwIP freed it or we let go of it */
	int fd;
	enum sp_state state;
	ns_connect_cb cb;
	void *cbarg;

	/* lwIP -> fd: received, not yet written. A chain we link ourselves (tail pointer) so
	 * appending stays O(1); tot_len is not maintained, only ->len and ->next are used. */
	struct pbuf *pending, *pending_tail;
	size_t pending_off;             /* bytes of pending's first pbuf already written */
	struct ns_splice *out_next;     /* on ns->out_dirty (holds a busy count while there) */
	bool out_queued;

	/* fd -> lwIP: bytes read but refused by tcp_write (ERR_MEM: segment pool dry). Rare,
	 * so allocated on demand; retried from sent/poll callbacks. */
	uint8_t *stash;
	size_t stash_len, stash_off;

	uint32_t lip, rip;              /* endpoints, host order */
	uint16_t lport, rport;

	bool fd_eof;                    /* fd returned EOF */
	bool want_fin;                  /* fd EOF seen, FIN not yet queued */
	bool tx_shut;                   /* our FIN is queued in lwIP */
	bool got_fin;                   /* peer's FIN received */
	bool fd_wr_shut;                /* shutdown(fd, SHUT_WR) done */
	bool read_paused;               /* rio stopped for lack of send buffer */
	bool pcb_aborted;               /* we called tcp_abort: lwIP callbacks return ERR_ABRT */
	int busy;
};

static void sp_read_cb(struct ev_loop *, ev_io *, int);
static void sp_write_cb(struct ev_loop *, ev_io *, int);
static void sp_ctimer_cb(struct ev_loop *, ev_timer *, int);
static err_t sp_recv(void *, struct tcp_pcb *, struct pbuf *, err_t);
static err_t sp_sent(void *, struct tcp_pcb *, u16_t);
static err_t sp_poll(void *, struct tcp_pcb *);
static void sp_err(void *, err_t);

static void
sp_hold(struct ns_splice *sp)
{
	sp->busy++;
}

static void
sp_release(struct ns_splice *sp)
{
	if (--sp->busy > 0 || sp->state != SP_DONE)
		return;
	free(sp);
}

static void
sp_free_pending(struct ns_splice *sp)
{
	struct pbuf *q, *next;

	for (q = sp->pending; q != NULL; q = next) {
		next = q->next;
		q->next = NULL;
		pbuf_free(q);
	}
	sp->pending = sp->pending_tail = NULL;
	sp->pending_off = 0;
}

/* A bulk sender's loss recovery and congestion control counters (tcp_sack.c, tcp_cc.c), for
 * the lossy-path bench and for diagnosing a slow transfer. */
static void
sp_log_sender(const struct tcp_pcb *pcb)
{
	if (pcb->x.xmit_order < 1000)
		return;
	log_info("event=tcp_sender_stats sent_segs=%u rexmits=%u loss_episodes=%u tlp=%u "
	    "lost_bytes=%u lossy_rounds=%u probes=%u rounds=%u min_rtt_ms=%u cwnd=%u "
	    "inflight_hi=%u inflight_lo=%u", pcb->x.xmit_order, pcb->x.rexmits,
	    pcb->x.lost_episodes, pcb->x.tlp_probes, pcb->x.lost, pcb->x.lossy_rounds,
	    pcb->x.probes, pcb->x.round, pcb->x.min_rtt_ms, pcb->x.cwnd, pcb->x.inflight_hi,
	    pcb->x.inflight_lo);
}

static void
sp_detach_pcb(struct ns_splice *sp)
{
	struct tcp_pcb *pcb = sp->pcb;

	if (pcb == NULL)
		return;
	sp_log_sender(pcb);
	tcp_arg(pcb, NULL);
	tcp_recv(pcb, NULL);
	tcp_sent(pcb, NULL);
	tcp_err(pcb, NULL);
	tcp_poll(pcb, NULL, 0);
	sp->pcb = NULL;
}

/*
 * Ends the splice. abortive: RST on the virtual connection and on fd (SO_LINGER 0), data
 * still queued either way is dropped. Otherwise the pcb is closed gracefully and fd closed.
 * Returns whether a pcb was aborted (lwIP callbacks must then return ERR_ABRT).
 */
static bool
sp_end(struct ns_splice *sp, bool abortive)
{
	struct tcp_pcb *pcb = sp->pcb;
	bool aborted = false;

	if (sp->state == SP_DONE)
		return false;
	sp_detach_pcb(sp);
	if (pcb != NULL) {
		if (abortive || tcp_close(pcb) != ERR_OK) {
			tcp_abort(pcb);
			aborted = true;
			sp->pcb_aborted = true;
		}
	}
	ev_io_stop(sp->ns->loop, &sp->rio);
	ev_io_stop(sp->ns->loop, &sp->wio);
	ev_timer_stop(sp->ns->loop, &sp->ctimer);
	if (sp->fd >= 0) {
		if (abortive) {
			struct linger lg = { .l_onoff = 1, .l_linger = 0 };

			(void)setsockopt(sp->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		}
		close(sp->fd);
		sp->fd = -1;
	}
	sp_free_pending(sp);
	free(sp->stash);
	sp->stash = NULL;
	sp->state = SP_DONE;
	sp->ns->st.tcp_active--;
	return aborted;
}

/* Both directions finished and nothing left to write: close gracefully. */
static void
sp_maybe_finish(struct ns_splice *sp)
{
	if (sp->state != SP_OPEN)
		return;
	if (!(sp->tx_shut || sp->pcb == NULL) || !sp->fd_wr_shut)
		return;
	if (sp->pending != NULL || sp->stash != NULL)
		return;
	sp_end(sp, false);
}

static void
sp_attach_pcb(struct ns_splice *sp, struct tcp_pcb *pcb)
{
	sp->pcb = pcb;
	tcp_arg(pcb, sp);
	tcp_recv(pcb, sp_recv);
	tcp_sent(pcb, sp_sent);
	tcp_err(pcb, sp_err);
	tcp_poll(pcb, sp_poll, SP_POLL_INTERVAL);
	/* The fd side already coalesces (we read up to 64 KiB at a time); Nagle would only add
	 * a round trip to interactive traffic. */
	tcp_nagle_disable(pcb);
}

static struct ns_splice *
sp_new(struct netstack *ns, int fd)
{
	struct ns_splice *sp;
	int fl;

	if ((fl = fcntl(fd, F_GETFL)) != -1 && !(fl & O_NONBLOCK))
		(void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	if ((sp = calloc(1, sizeof(*sp))) == NULL)
		return NULL;
	sp->ns = ns;
	sp->fd = fd;
	ev_io_init(&sp->rio, sp_read_cb, fd, EV_READ);
	ev_io_init(&sp->wio, sp_write_cb, fd, EV_WRITE);
	ev_init(&sp->ctimer, sp_ctimer_cb);
	sp->rio.data = sp->wio.data = sp->ctimer.data = sp;
	ns->st.tcp_active++;
	return sp;
}

static void
sp_note_endpoints(struct ns_splice *sp)
{
	sp->lip = ns_ip4_to_host(ip_2_ip4(&sp->pcb->local_ip));
	sp->lport = sp->pcb->local_port;
	sp->rip = ns_ip4_to_host(ip_2_ip4(&sp->pcb->remote_ip));
	sp->rport = sp->pcb->remote_port;
}

/* --- lwIP -> fd --- */

/* Writes as much pending data as fd takes; returns false if the splice ended. */
static bool
sp_pump_out(struct ns_splice *sp)
{
	struct iovec iov[SP_IOV_MAX];
	size_t written = 0;

	while (sp->pending != NULL) {
		struct msghdr msg;
		struct pbuf *q;
		size_t off = sp->pending_off;
		int cnt = 0;
		ssize_t n;

		for (q = sp->pending; q != NULL && cnt < SP_IOV_MAX; q = q->next) {
			if (q->len > off) {
				iov[cnt].iov_base = (uint8_t *)q->payload + off;
				iov[cnt].iov_len = q->len - off;
				cnt++;
			}
			off = 0;
		}
		n = 0;
		if (cnt > 0) {
			memset(&msg, 0, sizeof(msg));
			msg.msg_iov = iov;
			msg.msg_iovlen = (size_t)cnt;
			/* MSG_NOSIGNAL: a closed reader must be EPIPE, not SIGPIPE for the daemon. */
			n = sendmsg(sp->fd, &msg, MSG_NOSIGNAL);
			if (n < 0 && errno == ENOTSOCK)
				n = writev(sp->fd, iov, cnt);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN || errno == EWOULDBLOCK) {
					ev_io_start(sp->ns->loop, &sp->wio);
					break;
				}
				sp_end(sp, true);
				return false;
			}
		}
		written += (size_t)n;
		/* Free what was written, including empty pbufs at the head. */
		while (sp->pending != NULL) {
			q = sp->pending;
			size_t left = q->len - sp->pending_off;

			if ((size_t)n < left) {
				sp->pending_off += (size_t)n;
				break;
			}
			n -= (ssize_t)left;
			sp->pending = q->next;
			if (sp->pending == NULL)
				sp->pending_tail = NULL;
			sp->pending_off = 0;
			q->next = NULL;
			pbuf_free(q);
		}
	}
	/* Open the window only by what the fd actually took. */
	while (written > 0 && sp->pcb != NULL) {
		u16_t chunk = written > 0xffff ? 0xffff : (u16_t)written;

		tcp_recved(sp->pcb, chunk);
		written -= chunk;
	}
	if (sp->pending == NULL) {
		ev_io_stop(sp->ns->loop, &sp->wio);
		if (sp->got_fin && !sp->fd_wr_shut) {
			(void)shutdown(sp->fd, SHUT_WR);
			sp->fd_wr_shut = true;
		}
		sp_maybe_finish(sp);
	}
	return sp->state != SP_DONE;
}

static err_t
sp_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	struct ns_splice *sp = arg;
	err_t ret;

	if (sp == NULL) {
		/* Detached but lwIP still delivers: we no longer want anything. */
		if (p != NULL)
			pbuf_free(p);
		tcp_abort(pcb);
		return ERR_ABRT;
	}
	if (p != NULL && err != ERR_OK) {
		pbuf_free(p);
		return ERR_OK;
	}
	sp_hold(sp);
	if (p == NULL) {
		sp->got_fin = true;
	} else {
		struct pbuf *tail = p;

		while (tail->next != NULL)
			tail = tail->next;
		if (sp->pending_tail != NULL)
			sp->pending_tail->next = p;
		else
			sp->pending = p;
		sp->pending_tail = tail;
	}
	/* Written from the netstack's prepare watcher, once per loop iteration: a receive
	 * batch (up to 256 datagrams) then costs one sendmsg instead of one per segment. */
	if (sp->state == SP_OPEN && !ev_is_active(&sp->wio) && !sp->out_queued) {
		sp->out_queued = true;
		sp_hold(sp);
		sp->out_next = sp->ns->out_dirty;
		sp->ns->out_dirty = sp;
	}
	ret = sp->pcb_aborted ? ERR_ABRT : ERR_OK;
	sp_release(sp);
	return ret;
}

static void
sp_out_flush_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct netstack *ns = w->data;
	struct ns_splice *sp;

	(void)loop;
	(void)revents;
	if (ns->out_dirty == NULL)
		return;
	while ((sp = ns->out_dirty) != NULL) {
		ns->out_dirty = sp->out_next;
		sp->out_next = NULL;
		sp->out_queued = false;
		if (sp->state == SP_OPEN && !ev_is_active(&sp->wio))
			sp_pump_out(sp);
		sp_release(sp);
	}
	ns_tick_arm(ns);
}

void
ns_splice_flush_init(struct netstack *ns)
{
	ev_prepare_init(&ns->out_flush, sp_out_flush_cb);
	ns->out_flush.data = ns;
	/* Before the transport's prepare watcher (priority 0), which sends what we queue. */
	ev_set_priority(&ns->out_flush, EV_MAXPRI);
	ev_prepare_start(ns->loop, &ns->out_flush);
	/* Like the tick timer, this watcher alone must not keep ev_run() alive. */
	ev_unref(ns->loop);
}

void
ns_splice_flush_stop(struct netstack *ns)
{
	struct ns_splice *sp;

	/* Splices still listed are ended or about to be; they only wait for this release. */
	while ((sp = ns->out_dirty) != NULL) {
		ns->out_dirty = sp->out_next;
		sp->out_queued = false;
		sp_release(sp);
	}
	ev_ref(ns->loop);
	ev_prepare_stop(ns->loop, &ns->out_flush);
}

/* --- fd -> lwIP --- */

/* Queues stashed bytes; returns false if some are still refused. */
static bool
sp_flush_stash(struct ns_splice *sp)
{
	while (sp->stash != NULL) {
		size_t left = sp->stash_len - sp->stash_off;
		u16_t room = tcp_sndbuf(sp->pcb);
		u16_t n = left < room ? (u16_t)left : room;

		if (n == 0 || tcp_write(sp->pcb, sp->stash + sp->stash_off, n,
		    TCP_WRITE_FLAG_COPY) != ERR_OK)
			return false;
		sp->stash_off += n;
		if (sp->stash_off == sp->stash_len) {
			free(sp->stash);
			sp->stash = NULL;
		}
	}
	return true;
}

static bool
sp_send_room(const struct ns_splice *sp, size_t *room)
{
	size_t r = tcp_sndbuf(sp->pcb);

	/* Each MSS of data may take a segment; leave the queue-length check in tcp_write no
	 * reason to refuse. */
	if (tcp_sndqueuelen(sp->pcb) + r / TCP_MSS + 2 > TCP_SND_QUEUELEN)
		return false;
	if (r > NS_IO_CHUNK)
		r = NS_IO_CHUNK;
	*room = r;
	return r >= TCP_MSS;
}

static void
sp_pause_read(struct ns_splice *sp)
{
	sp->read_paused = true;
	ev_io_stop(sp->ns->loop, &sp->rio);
}

/* Queue our FIN after everything read; retried from sent/poll if lwIP has no memory. */
static void
sp_try_fin(struct ns_splice *sp)
{
	if (!sp->want_fin || sp->stash != NULL || sp->pcb == NULL)
		return;
	if (tcp_shutdown(sp->pcb, 0, 1) == ERR_OK) {
		sp->want_fin = false;
		sp->tx_shut = true;
		sp_maybe_finish(sp);
	}
}

/* Moves fd data into lwIP while there is room; returns false if the splice ended. */
static bool
sp_pump_in(struct ns_splice *sp)
{
	bool queued = false;
	int i;

	if (sp->state != SP_OPEN || sp->pcb == NULL || sp->fd_eof)
		return sp->state != SP_DONE;
	if (sp->stash != NULL && !sp_flush_stash(sp)) {
		sp_pause_read(sp);
		return true;
	}
	for (i = 0; i < SP_READS_PER_WAKEUP; i++) {
		size_t room;
		ssize_t n;
		err_t e;

		if (!sp_send_room(sp, &room)) {
			sp_pause_read(sp);
			break;
		}
		n = read(sp->fd, sp->ns->rbuf, room);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			/* fd reset or broken: reset the virtual connection too. */
			sp_end(sp, true);
			return false;
		}
		if (n == 0) {
			sp->fd_eof = true;
			sp->want_fin = true;
			ev_io_stop(sp->ns->loop, &sp->rio);
			break;
		}
		/* A full read means more is likely queued in fd: hold PSH for the last one. */
		e = tcp_write(sp->pcb, sp->ns->rbuf, (u16_t)n, TCP_WRITE_FLAG_COPY |
		    ((size_t)n == room ? TCP_WRITE_FLAG_MORE : 0));
		if (e == ERR_MEM) {
			if ((sp->stash = malloc((size_t)n)) == NULL) {
				sp_end(sp, true);
				return false;
			}
			memcpy(sp->stash, sp->ns->rbuf, (size_t)n);
			sp->stash_len = (size_t)n;
			sp->stash_off = 0;
			sp_pause_read(sp);
			break;
		} else if (e != ERR_OK) {
			sp_end(sp, true);
			return false;
		}
		queued = true;
		if ((size_t)n < room)
			break;          /* fd drained for now */
	}
	if (queued || sp->want_fin) {
		sp_try_fin(sp);
		if (sp->state == SP_OPEN && sp->pcb != NULL)
			tcp_output(sp->pcb);
	}
	return sp->state != SP_DONE;
}

/* Send buffer space came back (ACKs) or the poll timer ran: resume what was waiting. */
static void
sp_resume(struct ns_splice *sp)
{
	if (sp->state != SP_OPEN || sp->pcb == NULL)
		return;
	if (sp->stash != NULL && !sp_flush_stash(sp))
		return;
	sp_try_fin(sp);
	if (sp->state != SP_OPEN)
		return;
	if (sp->read_paused && !sp->fd_eof && sp->pcb->snd_buf >= SP_RESUME_ROOM &&
	    tcp_sndqueuelen(sp->pcb) + SP_RESUME_ROOM / TCP_MSS + 2 <= TCP_SND_QUEUELEN) {
		sp->read_paused = false;
		ev_io_start(sp->ns->loop, &sp->rio);
	}
}

static err_t
sp_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
	struct ns_splice *sp = arg;
	err_t ret;

	(void)pcb;
	(void)len;
	if (sp == NULL)
		return ERR_OK;
	sp_hold(sp);
	sp_resume(sp);
	ret = sp->pcb_aborted ? ERR_ABRT : ERR_OK;
	sp_release(sp);
	return ret;
}

static err_t
sp_poll(void *arg, struct tcp_pcb *pcb)
{
	struct ns_splice *sp = arg;
	err_t ret;

	(void)pcb;
	if (sp == NULL)
		return ERR_OK;
	sp_hold(sp);
	sp_resume(sp);
	if (sp->state == SP_OPEN && sp->pcb != NULL)
		tcp_output(sp->pcb);
	ret = sp->pcb_aborted ? ERR_ABRT : ERR_OK;
	sp_release(sp);
	return ret;
}

/* --- errors, connect --- */

static int
connect_errno(err_t err)
{
	switch (err) {
	case ERR_RST:
		return ECONNREFUSED;
	case ERR_ABRT:
	case ERR_TIMEOUT:
		return ETIMEDOUT;
	case ERR_RTE:
		return EHOSTUNREACH;
	default:
		return ECONNRESET;
	}
}

/* Reports a failed connect; the fd is closed right after cb returns. */
static void
sp_connect_failed(struct ns_splice *sp, int err)
{
	sp_hold(sp);
	ev_timer_stop(sp->ns->loop, &sp->ctimer);
	if (sp->cb != NULL)
		sp->cb(sp->cbarg, err, sp);
	sp_end(sp, true);
	sp_release(sp);
}

/* lwIP freed the pcb: RST from the peer, lwIP gave up retransmitting, or (ERR_CLSD) the
 * last ACK of a close we started arrived. */
static void
sp_err(void *arg, err_t err)
{
	struct ns_splice *sp = arg;

	if (sp == NULL)
		return;
	/* ERR_CLSD (a normal close) and ERR_RST: lwIP frees the pcb only after this call. */
	if ((err == ERR_CLSD || err == ERR_RST) && sp->pcb != NULL)
		sp_log_sender(sp->pcb);
	sp->pcb = NULL;
	if (sp->state == SP_SYN_SENT) {
		sp_connect_failed(sp, connect_errno(err));
		return;
	}
	sp_hold(sp);
	if (err == ERR_CLSD && sp->state == SP_OPEN) {
		/* Normal end of both directions on the lwIP side; finish writing to fd. */
		sp->got_fin = true;
		sp_pump_out(sp);
	} else {
		sp_end(sp, true);
	}
	sp_release(sp);
}

static err_t
sp_connected(void *arg, struct tcp_pcb *pcb, err_t err)
{
	struct ns_splice *sp = arg;
	err_t ret = ERR_OK;

	(void)pcb;
	if (sp == NULL)
		return ERR_OK;
	if (err != ERR_OK) {
		sp_detach_pcb(sp);
		tcp_abort(pcb);
		sp_connect_failed(sp, connect_errno(err));
		return ERR_ABRT;
	}
	sp_hold(sp);
	ev_timer_stop(sp->ns->loop, &sp->ctimer);
	sp->state = SP_OPEN;
	sp_note_endpoints(sp);
	if (sp->cb != NULL)
		sp->cb(sp->cbarg, 0, sp);
	if (sp->state == SP_OPEN) {
		ev_io_start(sp->ns->loop, &sp->rio);
		if (sp->pending != NULL || sp->got_fin)
			sp_pump_out(sp);
	}
	if (sp->pcb_aborted)
		ret = ERR_ABRT; /* by cb (ns_splice_abort) or by an fd error */
	sp_release(sp);
	return ret;
}

static void
sp_ctimer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ns_splice *sp = w->data;
	struct netstack *ns = sp->ns;
	struct tcp_pcb *pcb = sp->pcb;

	(void)loop;
	(void)revents;
	if (sp->state != SP_SYN_SENT)
		return;
	sp_detach_pcb(sp);
	if (pcb != NULL)
		tcp_abort(pcb);
	sp_connect_failed(sp, ETIMEDOUT);
	ns_tick_arm(ns);
}

/* --- fd events --- */

static void
sp_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ns_splice *sp = w->data;
	struct netstack *ns = sp->ns;

	(void)loop;
	(void)revents;
	sp_hold(sp);
	sp_pump_in(sp);
	sp_release(sp);
	ns_tick_arm(ns);
}

static void
sp_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ns_splice *sp = w->data;
	struct netstack *ns = sp->ns;

	(void)loop;
	(void)revents;
	sp_hold(sp);
	if (sp->state == SP_FD_CONNECTING) {
		int soerr = 0;
		socklen_t sl = sizeof(soerr);

		ev_io_stop(ns->loop, &sp->wio);
		if (getsockopt(sp->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
			log_debug("event=splice_fd_connect_failed port=%u err=%d", sp->lport, soerr);
			sp_end(sp, true);
		} else {
			sp->state = SP_OPEN;
			ev_io_start(ns->loop, &sp->rio);
			sp_pump_out(sp);
		}
	} else if (sp->state == SP_OPEN) {
		sp_pump_out(sp);
	}
	sp_release(sp);
	ns_tick_arm(ns);
}

/* --- API --- */

struct ns_splice *
ns_splice_connect(struct netstack *ns, int fd, uint32_t ip, uint16_t port, ns_connect_cb cb,
    void *arg)
{
	struct ns_splice *sp;
	struct tcp_pcb *pcb;
	ip_addr_t dst;
	err_t e;
	int saved;

	/* No route: the unspecified address, multicast and broadcast are not hosts. */
	if (ip == 0 || (ip >> 28) >= 0xe) {
		close(fd);
		errno = EHOSTUNREACH;
		return NULL;
	}
	/* The netstack exists before our first address; until then there is no network. */
	if (!ns_has_addr(ns)) {
		close(fd);
		errno = ENETUNREACH;
		return NULL;
	}
	if ((sp = sp_new(ns, fd)) == NULL) {
		saved = errno;
		close(fd);
		errno = saved;
		return NULL;
	}
	if ((pcb = tcp_new_ip_type(IPADDR_TYPE_V4)) == NULL) {
		sp_end(sp, true);
		free(sp);
		errno = ENOMEM;
		return NULL;
	}
	sp->cb = cb;
	sp->cbarg = arg;
	sp->state = SP_SYN_SENT;
	sp_attach_pcb(sp, pcb);
	ip_addr_set_zero_ip4(&dst);
	ns_ip4_from_host(ip_2_ip4(&dst), ip);
	e = tcp_connect(pcb, &dst, port, sp_connected);
	if (e != ERR_OK) {
		saved = connect_errno(e);
		if (e == ERR_MEM)
			saved = ENOMEM;
		sp_end(sp, true);
		free(sp);
		ns_tick_arm(ns);
		errno = saved;
		return NULL;
	}
	sp_note_endpoints(sp);
	ev_timer_set(&sp->ctimer, ns->connect_timeout, 0.);
	ev_timer_start(ns->loop, &sp->ctimer);
	ns_tick_arm(ns);
	return sp;
}

struct ns_splice *
ns_splice_accepted(struct netstack *ns, struct tcp_pcb *pcb, int fd)
{
	struct ns_splice *sp;

	if ((sp = sp_new(ns, fd)) == NULL)
		return NULL;
	sp->state = SP_FD_CONNECTING;
	sp_attach_pcb(sp, pcb);
	sp_note_endpoints(sp);
	/* Until fd is connected, data from lwIP only queues up (its window closes). */
	ev_io_start(ns->loop, &sp->wio);
	return sp;
}

void
ns_splice_endpoints(const struct ns_splice *sp, uint32_t *lip, uint16_t *lport, uint32_t *rip,
    uint16_t *rport)
{
	if (lip != NULL)
		*lip = sp->lip;
	if (lport != NULL)
		*lport = sp->lport;
	if (rip != NULL)
		*rip = sp->rip;
	if (rport != NULL)
		*rport = sp->rport;
}

void
ns_splice_abort(struct ns_splice *sp)
{
	struct netstack *ns = sp->ns;

	sp_hold(sp);
	sp_end(sp, true);
	sp_release(sp);
	ns_tick_arm(ns);
}

/*
 * A peer was evicted or went offline: every connection with it ends now, both the virtual side
 * (so no data is queued for a path that is gone) and the kernel side (so the local program sees
 * the reset at once instead of a silent hang). Every active pcb with a peer is one of ours.
 */
static void
unreach_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct netstack *ns = w->data;
	uint32_t ip[sizeof(ns->unreach) / sizeof(ns->unreach[0])];
	unsigned i, n = ns->n_unreach;

	(void)loop;
	(void)revents;
	memcpy(ip, ns->unreach, n * sizeof(ip[0]));
	ns->n_unreach = 0;
	for (i = 0; i < n; i++)
		netstack_abort_peer(ns, ip[i]);
}

void
netstack_unreachable(struct netstack *ns, uint32_t ip)
{
	unsigned i;

	for (i = 0; i < ns->n_unreach; i++)
		if (ns->unreach[i] == ip)
			return;
	/* Full: the rest wait for their connect timeout, as before. */
	if (ns->n_unreach >= sizeof(ns->unreach) / sizeof(ns->unreach[0]))
		return;
	ns->unreach[ns->n_unreach++] = ip;
	if (!ev_is_active(&ns->unreach_w)) {
		ev_timer_init(&ns->unreach_w, unreach_cb, 0., 0.);
		ns->unreach_w.data = ns;
		ev_timer_start(ns->loop, &ns->unreach_w);
	}
}

void
netstack_abort_peer(struct netstack *ns, uint32_t ip)
{
	struct tcp_pcb *pcb;
	struct ns_splice *sp;
	unsigned n = 0;

again:
	for (pcb = tcp_active_pcbs; pcb != NULL; pcb = pcb->next) {
		if (ns_ip4_to_host(ip_2_ip4(&pcb->remote_ip)) != ip)
			continue;
		/* Aborting unlinks pcb from tcp_active_pcbs: start over. A splice still connecting
		 * owes its caller an answer (a SOCKS client waits for its reply). */
		sp = pcb->callback_arg;
		if (sp != NULL && sp->state == SP_SYN_SENT) {
			sp_detach_pcb(sp);
			tcp_abort(pcb);
			sp_connect_failed(sp, EHOSTUNREACH);
		} else if (sp != NULL) {
			ns_splice_abort(sp);
		} else {
			tcp_abort(pcb);
		}
		n++;
		goto again;
	}
	if (n)
		log_info("event=netstack_peer_aborted connections=%u", n);
	ns_tick_arm(ns);
}

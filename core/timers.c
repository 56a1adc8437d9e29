/*
 * timers: ALL timer policy of the peer layer. Other files report what happened through the
 * timers_* hooks (named after the event); what to do and when is decided here only.
 *
 * Per peer (ev_timer on the loop given to peers_new):
 *   t_retransmit     armed when an initiation is sent; after REKEY_TIMEOUT + 0..333 ms of
 *                    jitter with no response, send a fresh initiation; give up (and drop the
 *                    queued packets) REKEY_ATTEMPT_TIME (90 s) after the first attempt. A
 *                    peer with no session, no relay and no punch running also makes the
 *                    owner ask the mediator for a punch (ops.path_lost, every
 *                    PATH_LOST_REASK at most).
 *   t_keepalive      data received and nothing sent back for KEEPALIVE_TIMEOUT: send an
 *                    empty (keepalive) packet so the sender knows we are alive.
 *   t_new_handshake  data sent and nothing at all received for KEEPALIVE_TIMEOUT +
 *                    REKEY_TIMEOUT: the session or path is broken, handshake again (to every
 *                    candidate endpoint, see path.c).
 *   t_zero_keys      ZERO_KEYS_AFTER (3 x REJECT_AFTER_TIME) after the last new session: wipe
 *                    every key of the peer.
 *   t_ping           every ps->refresh (PING_INTERVAL or shorter) while a session is usable:
 *                    INNER_PING, for the RTT and as the path's liveness probe. After each
 *                    ping it fires once more PATH_PROBE_WAIT later (the answer deadline): if
 *                    nothing authenticated came back, another ping goes at once; after
 *                    PATH_LOST_MISSES such misses in a row the path is lost (path.c). Only
 *                    pings we sent can be missed, so a quiet peer is never declared dead, and
 *                    a healthy pair sends nothing more than before.
 *   t_punch          a PUNCH from the mediator (peers_punch): first round after start_s, then
 *                    every interval_s until path_punch_round says the punch is over (rounds
 *                    spent, or a usable session); stopped at once when our initiation is
 *                    answered, and with the peer.
 *   t_spray          birthday probes (the side facing a random-port NAT): bursts every
 *                    tick from the punch's start until path_spray_tick says they are spent
 *                    or a session is usable; stopped with the punch and the peer.
 *   t_bday           the random-port side's socket set: BDAY_LINGER after the last round an
 *                    attempt without a winner ends; a kept socket is checked every
 *                    BDAY_CHECK and closed once the path has left it for BDAY_AWAY_MAX.
 *   t_relay          while a relay is granted (peers_set_relay): every RELAY_TICK,
 *                    path_relay_tick pings the direct endpoint when it is due (packets on
 *                    direct unanswered for DIRECT_PROBE_WAIT; on the relay every
 *                    DIRECT_RETRY, later DIRECT_RETRY_SLOW), so direct loss is seen within
 *                    DIRECT_SILENT_MAX and a direct path that comes back is used again.
 * Per `shoal ping` (struct pending_ping):
 *   timeout          PING_TIMEOUT without the pong: the callback gets -1.
 * Not timers but time policy, checked on the data path:
 *   rekey on send    initiator's session older than REKEY_AFTER_TIME (or too many messages).
 *   rekey on receive initiator's session older than REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT -
 *                    REKEY_TIMEOUT, so a mostly receiving initiator renews before expiry.
 *
 * Timers that would be touched on every packet (keepalive, new handshake) are lazy: the
 * packet path only writes a timestamp; the timer, when it fires, re-arms itself for the
 * remaining time if something happened meanwhile. No ev_timer call per packet.
 * Owns: the peers' ev_timers. Must not: build packets itself (it calls send.c/handshake.c).
 */
#include "config.h"

#include <sodium.h>
#include <stdlib.h>

#include "base/log.h"
#include "core/peer_impl.h"

static struct ev_loop *
peer_loop(const struct peer *p)
{
	return p->ps->loop;
}

static void
retransmit_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct peer *p = w->data;

	if (!p->hs_active)
		return;
	if (ev_now(loop) - p->hs_started >= REKEY_ATTEMPT_TIME) {
		log_info("event=handshake_gave_up peer=%s queued_dropped=%zu", p->id, p->q_len);
		handshake_clear(p);
		peer_staged_drop_all(p);
		return;
	}
	handshake_initiate(p, 1);
	/* No session, no relay, no punch running, and our initiations unanswered: the pair's
	 * punch failed, or the mediator's grant table was full when it met the pair. Ask it for
	 * a new punch, which also introduces the pair to the relays again (PROTOCOL.md 2.4);
	 * once per PATH_LOST_REASK, like a lost path. Last: the owner's code runs. */
	if (peer_usable_keypair(p) == NULL && !p->path.has_relay &&
	    ev_now(loop) >= p->path.punch_until &&
	    ev_now(loop) - p->path.lost_asked >= PATH_LOST_REASK)
		path_ask_punch(p);
}

static void
keepalive_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct peer *p = w->data;
	double left;

	if (p->rx_unanswered_since == 0)
		return;
	left = p->rx_unanswered_since + KEEPALIVE_TIMEOUT - ev_now(loop);
	if (left > 0.001) {
		ev_timer_set(w, left, 0);
		ev_timer_start(loop, w);
		return;
	}
	send_keepalive(p);
}

static void
new_handshake_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct peer *p = w->data;
	double left;

	if (p->tx_unanswered_since == 0)
		return;
	left = p->tx_unanswered_since + KEEPALIVE_TIMEOUT + REKEY_TIMEOUT - ev_now(loop);
	if (left > 0.001) {
		ev_timer_set(w, left, 0);
		ev_timer_start(loop, w);
		return;
	}
	p->tx_unanswered_since = 0;
	log_debug("event=peer_silent peer=%s", p->id);
	handshake_initiate(p, 0);
}

static void
zero_keys_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct peer *p = w->data;

	log_debug("event=keys_zeroed peer=%s", p->id);
	peer_zero_keys(p);
	ev_timer_stop(loop, &p->t_ping);
	p->ping_wait = 0;
}

/* How long a ping's answer may take: PATH_PROBE_WAIT, or 3 RTTs on a slow path (an answer
 * still in flight is no miss), never more than the refresh interval. */
static double
ping_answer_wait(const struct peer *p)
{
	double wait = PATH_PROBE_WAIT;

	if (p->srtt_ms > 0 && p->srtt_ms * 3 / 1000.0 > wait)
		wait = p->srtt_ms * 3 / 1000.0;
	return wait < p->ps->refresh ? wait : p->ps->refresh;
}

static void
ping_arm(struct peer *p, double after)
{
	p->t_ping.repeat = after > 0.001 ? after : 0.001;
	ev_timer_again(peer_loop(p), &p->t_ping);
}

static void
ping_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct peer *p = w->data;
	double now = ev_now(loop);
	int ask = 0;

	if (peer_usable_keypair(p) == NULL) {
		ev_timer_stop(loop, w);
		p->ping_wait = 0;
		p->ping_misses = 0;
		return;
	}
	if (p->ping_wait) {
		/* The answer deadline of the last ping. */
		p->ping_wait = 0;
		if (p->heard_since_ping) {
			p->ping_misses = 0;
			ping_arm(p, p->ping_sent_at + p->ps->refresh - now);
			return;
		}
		p->ping_misses++;
		if (!p->path.lost && p->ping_misses >= PATH_LOST_MISSES) {
			path_mark_lost(p);
			ask = 1;
		} else if (p->path.lost && now - p->path.lost_since >= PATH_LOST_FAST) {
			/* Long lost: back to the refresh interval, the peer may be gone for good. */
			ping_arm(p, p->ping_sent_at + p->ps->refresh - now);
			goto out;
		}
	}
	p->ping_periodic_id = ++p->ping_next_id;
	send_ping(p, p->ping_periodic_id);
	p->ping_sent_at = now;
	p->heard_since_ping = 0;
	p->ping_wait = 1;
	ping_arm(p, ping_answer_wait(p));
out:
	if (p->path.lost && !ask && now - p->path.lost_asked >= PATH_LOST_REASK)
		ask = 1;
	/* Last: the owner's code runs, once per call (p may be gone after it). Lost this long
	 * with handshakes unanswered: its connections are reset; asking waits a pass. */
	if (p->path.lost && !p->path.conns_reset && now - p->path.lost_since >= PATH_LOST_FAST)
		path_reset_conns(p);
	else if (ask)
		path_ask_punch(p);
}

static void
punch_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct peer *p = w->data;

	if (!path_punch_round(p))
		ev_timer_stop(loop, w);
}

static void
spray_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct peer *p = w->data;

	if (!path_spray_tick(p))
		ev_timer_stop(loop, w);
}

static void
bday_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct peer *p = w->data;

	if (path_bday_check(p)) {
		ev_timer_set(w, BDAY_CHECK, 0);
		ev_timer_start(loop, w);
	}
}

static void
relay_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	path_relay_tick(w->data);
}

void
timers_relay_changed(struct peer *p)
{
	if (p->path.has_relay && !ev_is_active(&p->t_relay)) {
		ev_timer_set(&p->t_relay, RELAY_TICK, RELAY_TICK);
		ev_timer_start(peer_loop(p), &p->t_relay);
	} else if (!p->path.has_relay) {
		ev_timer_stop(peer_loop(p), &p->t_relay);
	}
}

static void
ping_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct pending_ping *pp = (struct pending_ping *)w;     /* timeout is the first member */
	struct peer *p = pp->peer;
	struct pending_ping **it;

	for (it = &p->pings; *it && *it != pp; it = &(*it)->next)
		;
	if (*it)
		*it = pp->next;
	p->n_pings--;
	pp->cb(pp->arg, -1);
	free(pp);
}

void
timers_refresh_changed(struct peer *p)
{
	double left;

	/* An answer deadline keeps running; the next ping after it takes the new interval. A
	 * shorter interval applies to the ping already scheduled (a NAT that drops bindings
	 * sooner must not wait out the old one); a longer one from the next. */
	if (!ev_is_active(&p->t_ping) || p->ping_wait)
		return;
	left = ev_timer_remaining(peer_loop(p), &p->t_ping);
	ping_arm(p, left < p->ps->refresh ? left : p->ps->refresh);
}

void
timers_init(struct peer *p)
{
	ev_timer_init(&p->t_retransmit, retransmit_cb, REKEY_TIMEOUT, 0);
	ev_timer_init(&p->t_keepalive, keepalive_cb, KEEPALIVE_TIMEOUT, 0);
	ev_timer_init(&p->t_new_handshake, new_handshake_cb, KEEPALIVE_TIMEOUT + REKEY_TIMEOUT, 0);
	ev_timer_init(&p->t_zero_keys, zero_keys_cb, ZERO_KEYS_AFTER, 0);
	ev_timer_init(&p->t_ping, ping_cb, p->ps->refresh, p->ps->refresh);
	ev_timer_init(&p->t_punch, punch_cb, 0, 0);
	ev_timer_init(&p->t_spray, spray_cb, 0, 0);
	ev_timer_init(&p->t_bday, bday_cb, 0, 0);
	ev_timer_init(&p->t_relay, relay_cb, RELAY_TICK, RELAY_TICK);
	p->t_relay.data = p;
	p->t_retransmit.data = p->t_keepalive.data = p->t_new_handshake.data = p;
	p->t_zero_keys.data = p->t_ping.data = p->t_punch.data = p;
	p->t_spray.data = p->t_bday.data = p;
}

void
timers_stop(struct peer *p)
{
	struct ev_loop *loop = peer_loop(p);

	ev_timer_stop(loop, &p->t_retransmit);
	ev_timer_stop(loop, &p->t_keepalive);
	ev_timer_stop(loop, &p->t_new_handshake);
	ev_timer_stop(loop, &p->t_zero_keys);
	ev_timer_stop(loop, &p->t_ping);
	ev_timer_stop(loop, &p->t_punch);
	ev_timer_stop(loop, &p->t_spray);
	ev_timer_stop(loop, &p->t_bday);
	ev_timer_stop(loop, &p->t_relay);
}

void
timers_punch_start(struct peer *p, double start_s, double interval_s)
{
	ev_timer_stop(peer_loop(p), &p->t_punch);
	ev_timer_set(&p->t_punch, start_s, interval_s);
	ev_timer_start(peer_loop(p), &p->t_punch);
}

void
timers_punch_stop(struct peer *p)
{
	ev_timer_stop(peer_loop(p), &p->t_punch);
	p->path.punch_rounds_left = 0;
}

void
timers_spray_start(struct peer *p, double start_s, double tick_s)
{
	ev_timer_stop(peer_loop(p), &p->t_spray);
	ev_timer_set(&p->t_spray, start_s, tick_s);
	ev_timer_start(peer_loop(p), &p->t_spray);
}

void
timers_spray_stop(struct peer *p)
{
	ev_timer_stop(peer_loop(p), &p->t_spray);
}

void
timers_bday_arm(struct peer *p, double after_s)
{
	ev_timer_stop(peer_loop(p), &p->t_bday);
	ev_timer_set(&p->t_bday, after_s, 0);
	ev_timer_start(peer_loop(p), &p->t_bday);
}

void
timers_handshake_initiated(struct peer *p)
{
	/* Jitter, so two ends retrying at once drift apart. */
	double jitter = (double)randombytes_uniform(334) / 1000.0;

	ev_timer_stop(peer_loop(p), &p->t_retransmit);
	ev_timer_set(&p->t_retransmit, REKEY_TIMEOUT + jitter, 0);
	ev_timer_start(peer_loop(p), &p->t_retransmit);
}

void
timers_handshake_complete(struct peer *p)
{
	ev_timer_stop(peer_loop(p), &p->t_retransmit);
	/* The session is up: further punch rounds would only be dropped as replays. Not when it
	 * came through the relay: the punch is still looking for the direct path. */
	if (ev_is_active(&p->t_punch) && path_direct_usable(p)) {
		log_debug("event=punch_done peer=%s rounds_sent=%u session=1", p->id,
		    p->path.punch_rounds_sent);
		timers_punch_stop(p);
	}
	if (!ev_is_active(&p->t_ping)) {
		p->ping_wait = 0;
		ping_arm(p, p->ps->refresh);
	}
}

void
timers_session_derived(struct peer *p)
{
	ev_timer_stop(peer_loop(p), &p->t_zero_keys);
	ev_timer_set(&p->t_zero_keys, ZERO_KEYS_AFTER, 0);
	ev_timer_start(peer_loop(p), &p->t_zero_keys);
}

void
timers_any_authenticated_packet_sent(struct peer *p)
{
	p->last_tx = ev_now(peer_loop(p));
	p->rx_unanswered_since = 0;
}

void
timers_any_authenticated_packet_received(struct peer *p)
{
	p->last_rx = ev_now(peer_loop(p));
	p->tx_unanswered_since = 0;
	p->heard_since_ping = 1;
}

void
timers_data_sent(struct peer *p)
{
	if (p->tx_unanswered_since != 0)
		return;
	p->tx_unanswered_since = ev_now(peer_loop(p));
	if (!ev_is_active(&p->t_new_handshake)) {
		ev_timer_set(&p->t_new_handshake, KEEPALIVE_TIMEOUT + REKEY_TIMEOUT, 0);
		ev_timer_start(peer_loop(p), &p->t_new_handshake);
	}
}

void
timers_data_received(struct peer *p)
{
	if (p->rx_unanswered_since != 0)
		return;
	p->rx_unanswered_since = ev_now(peer_loop(p));
	if (!ev_is_active(&p->t_keepalive)) {
		ev_timer_set(&p->t_keepalive, KEEPALIVE_TIMEOUT, 0);
		ev_timer_start(peer_loop(p), &p->t_keepalive);
	}
}

void
timers_check_rekey_on_send(struct peer *p, const struct keypair *kp)
{
	if (session_needs_rekey(&kp->s, ev_now(peer_loop(p))))
		handshake_initiate(p, 0);
}

void
timers_check_rekey_on_receive(struct peer *p, const struct keypair *kp)
{
	double age = ev_now(peer_loop(p)) - kp->s.created;

	if (kp == p->current && kp->s.initiator &&
	    age >= REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT)
		handshake_initiate(p, 0);
}

void
timers_ping_started(struct pending_ping *pp)
{
	ev_timer_init(&pp->timeout, ping_timeout_cb, PING_TIMEOUT, 0);
	ev_timer_start(peer_loop(pp->peer), &pp->timeout);
}

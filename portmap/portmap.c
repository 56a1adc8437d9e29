/*
 * portmap: the engine (portmap.h): one exchange with the gateway at a time on a worker
 * thread, its result applied on the loop, the lease renewed at half its life.
 *
 * Handover: the loop fills pm->job and starts the thread; from then until the thread is
 * joined only the thread touches pm->job (and the UPnP description it carries). The thread
 * ends with ev_async_send; done_cb joins it first, then reads the result. So the two never
 * share memory at the same time and need no lock.
 *
 * Timers: `lease` (one-shot): renew at half the lease, retry after a failure.
 */
#include "config.h"

#include <ev.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/ip4.h"
#include "base/log.h"
#include "portmap/portmap_int.h"

#define RENEW_MIN_S 30.0        /* never renew more often, whatever lease a gateway gives */
#define RENEW_RETRY_S 60.0      /* a renewal failed while the lease still runs */

struct pm_job {                 /* owned by the worker thread while it runs */
	uint32_t gw;            /* NAT-PMP gateway; 0: the default route's. Set: no UPnP */
	uint16_t port;
	uint16_t want_ext;      /* the public port we hold (renewal), else 0 ... */
	enum portmap_proto first;       /* ... and the protocol to ask first */
	struct pm_upnp *igd;    /* travels with the job: the thread may discover it */
	struct pm_result res;
	struct ev_loop *loop;
	ev_async *done;
};

struct portmap {
	struct ev_loop *loop;
	uint16_t port;
	uint32_t gw;            /* portmap_set_gateway; 0: none */
	const struct portmap_ops *ops;
	void *arg;
	ev_async done;
	ev_timer lease;
	pthread_t thread;
	int running;            /* a worker exists and has not been joined */
	struct pm_job job;
	struct pm_upnp *igd;    /* between jobs */
	enum portmap_state state;
	enum portmap_proto proto;
	struct endpoint ext;
	double expires;         /* ev_now when the lease ends; 0: permanent */
	char error[PORTMAP_ERR_LEN];
};

/* ---- the worker ---- */

/* A gateway behind another NAT (carrier-grade, a second router) reports a private external
 * address: a mapping there reaches nobody on the Internet. */
static int
private_addr(uint32_t a)
{
	return (a >> 24) == 0 || (a >> 24) == 10 || (a >> 24) == 127 ||
	    (a & 0xffc00000u) == 0x64400000u ||             /* 100.64/10, RFC 6598 */
	    (a & 0xffff0000u) == 0xa9fe0000u ||             /* 169.254/16 */
	    (a & 0xfff00000u) == 0xac100000u ||             /* 172.16/12 */
	    (a & 0xffff0000u) == 0xc0a80000u;               /* 192.168/16 */
}

/* A mapping that cannot help is given back at once and reported as the failure it is. */
static void
reject_private(struct pm_job *j)
{
	struct pm_result r = j->res, tmp;
	char ip[IP4_STR_LEN];

	if (!r.ok || !private_addr(r.ext.addr))
		return;
	if (r.proto == PORTMAP_PROTO_NATPMP)
		(void)pm_natpmp_map(j->gw, j->port, 0, 0, &tmp);
	else
		pm_upnp_unmap(j->igd, r.ext.port);
	j->res.ok = 0;
	snprintf(j->res.error, sizeof(j->res.error), "gateway's external address %s is private "
	    "(double NAT)", ip4_str(r.ext.addr, ip));
}

static int
try_natpmp(struct pm_job *j, struct pm_result *r)
{
	uint16_t want = j->first == PORTMAP_PROTO_NATPMP ? j->want_ext : j->port;

	return pm_natpmp_map(j->gw, j->port, want, PORTMAP_LEASE_S, r);
}

static int
try_upnp(struct pm_job *j, struct pm_result *r)
{
	return pm_upnp_map(&j->igd, j->port, j->first == PORTMAP_PROTO_UPNP ? j->want_ext :
	    j->port, PORTMAP_LEASE_S, r);
}

static void *
job_main(void *arg)
{
	struct pm_job *j = arg;
	struct pm_result pmp, up;

	if (j->gw != 0) {
		(void)try_natpmp(j, &j->res);
		goto out;
	}
	if (j->first == PORTMAP_PROTO_UPNP) {
		if (try_upnp(j, &j->res) == 0 || try_natpmp(j, &pmp) < 0)
			goto out;
		j->res = pmp;
		goto out;
	}
	if (try_natpmp(j, &pmp) == 0) {
		j->res = pmp;
		goto out;
	}
	if (try_upnp(j, &up) == 0) {
		j->res = up;
		goto out;
	}
	/* Both failed: the more telling of the two errors. "No answer" from both is the UPnP
	 * one ("no gateway ..."); anything a NAT-PMP gateway said beats UPnP's silence. */
	j->res = strncmp(up.error, "no gateway", 10) == 0 &&
	    strcmp(pmp.error, "no NAT-PMP gateway") != 0 ? pmp : up;
out:
	reject_private(j);
	ev_async_send(j->loop, j->done);
	return NULL;
}

/* ---- the loop's side ---- */

static void
arm(struct portmap *pm, double after)
{
	ev_timer_stop(pm->loop, &pm->lease);
	ev_timer_set(&pm->lease, after, 0.);
	ev_timer_start(pm->loop, &pm->lease);
}

static void
fail_now(struct portmap *pm, const char *why)
{
	snprintf(pm->error, sizeof(pm->error), "%s", why);
	pm->state = PORTMAP_FAILED;
	log_warnx("event=portmap_failed error=\"%s\" retry_s=%d", why, PORTMAP_RETRY_S);
	arm(pm, PORTMAP_RETRY_S);
}

static void
job_start(struct portmap *pm)
{
	sigset_t all, old;
	int rc;

	if (pm->running)
		return;
	memset(&pm->job, 0, sizeof(pm->job));
	pm->job.port = pm->port;
	pm->job.gw = pm->gw;
	pm->job.loop = pm->loop;
	pm->job.done = &pm->done;
	if (pm->state == PORTMAP_MAPPED) {
		pm->job.first = pm->proto;
		pm->job.want_ext = pm->ext.port;
	}
	pm->job.igd = pm->igd;
	pm->igd = NULL;
	/* The worker takes no signals: they are the loop's (libev's signal watchers). */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&pm->thread, NULL, job_main, &pm->job);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		pm->igd = pm->job.igd;
		fail_now(pm, "cannot start the worker thread");
		return;
	}
	pm->running = 1;
}

static void
lease_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	job_start(w->data);
}

static void
notify(struct portmap *pm, const struct endpoint *ext)
{
	if (pm->ops && pm->ops->changed)
		pm->ops->changed(pm->arg, ext);
}

static void
applied_ok(struct portmap *pm, const struct pm_result *r)
{
	int changed = pm->state != PORTMAP_MAPPED || pm->ext.addr != r->ext.addr ||
	    pm->ext.port != r->ext.port;
	double now = ev_now(pm->loop), renew;
	char ep[EP_STR_LEN];

	pm->state = PORTMAP_MAPPED;
	pm->proto = r->proto;
	pm->ext = r->ext;
	pm->error[0] = '\0';
	pm->expires = r->lifetime ? now + r->lifetime : 0;
	renew = (r->lifetime ? r->lifetime : PORTMAP_LEASE_S) / 2.0;
	arm(pm, renew < RENEW_MIN_S ? RENEW_MIN_S : renew);
	if (changed) {
		log_info("event=portmap_mapped proto=%s ext=%s port=%u lease_s=%u",
		    portmap_proto_name(r->proto), ep_str(&r->ext, ep),
		    (unsigned)pm->port, (unsigned)r->lifetime);
		notify(pm, &pm->ext);
	} else {
		log_debug("event=portmap_renewed proto=%s lease_s=%u", portmap_proto_name(r->proto),
		    (unsigned)r->lifetime);
	}
}

static void
applied_fail(struct portmap *pm, const struct pm_result *r)
{
	double now = ev_now(pm->loop);

	/* A renewal that failed while the lease still runs: keep it, try again soon. */
	if (pm->state == PORTMAP_MAPPED && (pm->expires == 0 || now + RENEW_RETRY_S <
	    pm->expires)) {
		log_warnx("event=portmap_renew_failed error=\"%s\" retry_s=%.0f", r->error,
		    RENEW_RETRY_S);
		arm(pm, RENEW_RETRY_S);
		return;
	}
	if (pm->state == PORTMAP_MAPPED) {
		pm->state = PORTMAP_FAILED;
		memset(&pm->ext, 0, sizeof(pm->ext));
		pm->proto = PORTMAP_PROTO_NONE;
		notify(pm, NULL);
	}
	fail_now(pm, r->error[0] ? r->error : "failed");
}

static void
done_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct portmap *pm = w->data;

	if (!pm->running)
		return;
	pthread_join(pm->thread, NULL);
	pm->running = 0;
	pm->igd = pm->job.igd;
	pm->job.igd = NULL;
	if (pm->job.res.ok)
		applied_ok(pm, &pm->job.res);
	else
		applied_fail(pm, &pm->job.res);
}

/* ---- public ---- */

struct portmap *
portmap_new(struct ev_loop *loop, uint16_t port, const struct portmap_ops *ops, void *arg)
{
	struct portmap *pm = calloc(1, sizeof(*pm));

	if (pm == NULL)
		return NULL;
	pm->loop = loop;
	pm->port = port;
	pm->ops = ops;
	pm->arg = arg;
	ev_async_init(&pm->done, done_cb);
	pm->done.data = pm;
	ev_async_start(loop, &pm->done);
	ev_timer_init(&pm->lease, lease_cb, 0., 0.);
	pm->lease.data = pm;
	return pm;
}

void
portmap_set_gateway(struct portmap *pm, uint32_t gw)
{
	pm->gw = gw;
}

void
portmap_start(struct portmap *pm)
{
	if (pm->state != PORTMAP_OFF)
		return;
	pm->state = PORTMAP_TRYING;
	job_start(pm);
}

void
portmap_free(struct portmap *pm)
{
	struct pm_result r;

	if (pm == NULL)
		return;
	ev_timer_stop(pm->loop, &pm->lease);
	if (pm->running) {
		/* The exchange runs to its end (bounded); what it mapped is removed below. */
		pthread_join(pm->thread, NULL);
		pm->running = 0;
		pm->igd = pm->job.igd;
		if (pm->job.res.ok && pm->state != PORTMAP_MAPPED) {
			pm->state = PORTMAP_MAPPED;
			pm->proto = pm->job.res.proto;
			pm->ext = pm->job.res.ext;
		}
	}
	ev_async_stop(pm->loop, &pm->done);
	if (pm->state == PORTMAP_MAPPED) {
		if (pm->proto == PORTMAP_PROTO_NATPMP)
			(void)pm_natpmp_map(pm->gw, pm->port, 0, 0, &r);
		else
			pm_upnp_unmap(pm->igd, pm->ext.port);
		log_info("event=portmap_removed proto=%s port=%u", portmap_proto_name(pm->proto),
		    (unsigned)pm->ext.port);
	}
	pm_upnp_free(pm->igd);
	free(pm);
}

void
portmap_info(const struct portmap *pm, struct portmap_info *out)
{
	double left;

	memset(out, 0, sizeof(*out));
	if (pm == NULL)
		return;
	out->state = pm->state;
	if (pm->state == PORTMAP_MAPPED) {
		out->proto = pm->proto;
		out->ext = pm->ext;
		left = pm->expires == 0 ? 0 : pm->expires - ev_now(pm->loop);
		out->lease_left = left < 0 ? 0 : left;
	}
	if (pm->state == PORTMAP_FAILED)
		snprintf(out->error, sizeof(out->error), "%s", pm->error);
}

const char *
portmap_proto_name(enum portmap_proto p)
{
	switch (p) {
	case PORTMAP_PROTO_NATPMP: return "nat-pmp";
	case PORTMAP_PROTO_UPNP: return "upnp";
	default: return "none";
	}
}

const char *
portmap_state_name(enum portmap_state s)
{
	switch (s) {
	case PORTMAP_TRYING: return "trying";
	case PORTMAP_MAPPED: return "mapped";
	case PORTMAP_FAILED: return "failed";
	default: return "off";
	}
}

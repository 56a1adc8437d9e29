/*
 * control_cmd: what each control command does, on what struct control_env names: status and
 * list read the membership view, the peer table and the expose/forward tables; network
 * commands become mediator requests; ping drives peers_ping. A peer as typed by the user
 * goes through the peerdir, the resolver every front end shares. Every answer goes through
 * ctl_reply_*.
 * Must not touch: sockets (control.c), request syntax (control_proto.c), or any module's
 * state except through its header.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sodium.h>

#include "crypto/identity.h"
#include "base/ip4.h"
#include "base/log.h"
#include "base/peerdir.h"
#include "medclient/medclient.h"
#include "portmap/portmap.h"
#include "mproto/msg.h"
#include "core/peer.h"
#include "core/relayclient.h"
#include "control/control_int.h"
#include "ports/expose.h"
#include "ports/forward.h"
#include "lanproxy/server/lanproxy.h"

enum {
	LIST_MAX = 256,                 /* exposes/forwards shown by status */
	PING_GAP_MS = 1000,             /* between a reply and the next ping, as ping(8) */
};

static json_t *
jaddr(uint32_t a)
{
	char s[IP4_STR_LEN];

	if (a == 0)
		return json_null();
	return json_string(ip4_str(a, s));
}

/* A string that came from the network (nicks, server text): kept if it is UTF-8, else made
 * printable ASCII, so the response is always valid JSON. */
json_t *
ctl_jtext(const char *s)
{
	char buf[512];
	json_t *j;
	size_t i;

	if ((j = json_string(s)))
		return j;
	for (i = 0; s[i] && i + 1 < sizeof(buf); i++)
		buf[i] = ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f) ? '?' : s[i];
	buf[i] = '\0';
	return json_string(buf);
}

json_t *
ctl_jhex(const uint8_t key[KEY_LEN])
{
	char hex[2 * KEY_LEN + 1];

	hex_encode(key, KEY_LEN, hex);
	return json_string(hex);
}

static const struct med_network *
find_network(const struct control_env *env, const char *name)
{
	const struct med_network *n;

	if (!env->med)
		return NULL;
	for (n = medclient_networks(env->med); n; n = n->hh.next)
		if (strcmp(n->name, name) == 0)
			return n;
	return NULL;
}

/* The nick of whoever has this address in any of our networks, or NULL. */
static const char *
nick_of(const struct control_env *env, uint32_t addr)
{
	const struct med_network *n;
	const struct med_member *m;

	if (!env->med)
		return NULL;
	for (n = medclient_networks(env->med); n; n = n->hh.next)
		for (m = n->members; m; m = m->hh.next)
			if (m->address == addr && m->nick[0])
				return m->nick;
	return NULL;
}

/* The key of whoever has this address in any of our networks: 0, or -1 if nobody. */
static int
key_of(const struct control_env *env, uint32_t addr, uint8_t key[KEY_LEN])
{
	const struct med_network *n;
	const struct med_member *m;

	if (!env->med || addr == 0)
		return -1;
	for (n = medclient_networks(env->med); n; n = n->hh.next)
		for (m = n->members; m; m = m->hh.next)
			if (m->address == addr) {
				memcpy(key, m->key, KEY_LEN);
				return 0;
			}
	return -1;
}

/* ---- why there is no direct path (PROTOCOL.md 3.2, 5.5) ---- */

static int
nat_random(uint8_t mapping, uint8_t ports)
{
	return (mapping == NAT_MAP_ADM || mapping == NAT_MAP_APDM) && ports == NAT_PORTS_RANDOM;
}

/*
 * One fixed sentence per case, so scripts can match it. The mediator's strategy table (3.2)
 * decides; this only names the row that left us without a path. my_filt is our own filtering
 * (from NAT_INFO; PUNCH carries only the peer's), 0 if unknown.
 */
static const char *
punch_why(const struct msg_punch *p, uint8_t my_filt)
{
	int my_rand = nat_random(p->my_mapping, p->my_ports);
	int peer_rand = nat_random(p->peer_mapping, p->peer_ports);

	switch (p->strategy) {
	case PUNCH_NONE:
		break;
	case PUNCH_BIRTHDAY:
		return "birthday punch sent, no session yet: no probe met a mapping of the "
		    "random-port NAT (the mediator retries it twice)";
	default:
		return "punch sent, no session yet: the packets did not get through";
	}
	if (p->my_mapping == NAT_MAP_UNKNOWN || p->peer_mapping == NAT_MAP_UNKNOWN)
		return "NAT type unknown on one side (not classified yet, or UDP blocked)";
	if (my_rand && peer_rand)
		return "random-port NATs on both sides: no port to aim at";
	if ((my_rand && p->peer_ports == NAT_PORTS_SEQUENTIAL) ||
	    (peer_rand && p->my_ports == NAT_PORTS_SEQUENTIAL))
		return "random-port NAT facing a sequential-port one: no port to aim at";
	if (my_rand && p->peer_filtering == NAT_FILT_APDF)
		return "random-port NAT facing a port-restricted one: the mediator offered no "
		    "birthday punch";
	if (peer_rand && my_filt == NAT_FILT_APDF)
		return "port-restricted NAT facing a random-port one: the mediator offered no "
		    "birthday punch";
	return "the mediator found no punching strategy for this pair";
}

static json_t *
jnat(uint8_t mapping, uint8_t ports)
{
	char b[48];

	snprintf(b, sizeof(b), "%s/%s", nat_mapping_name(mapping), nat_ports_name(ports));
	return json_string(b);
}

/* "strategy" of a member: the last PUNCH's, or null. */
static json_t *
strategy_json(const struct control_env *env, const uint8_t key[KEY_LEN])
{
	struct msg_punch pu;

	if (!env->med || medclient_punch_info(env->med, key, &pu) < 0)
		return json_null();
	return json_string(punch_strategy_name(pu.strategy));
}

/* "nat" of a member: both sides' NAT classes as the mediator's last PUNCH plan for the pair
 * gave them ({"mine", "peer", "peer_filtering"}), direct or not; null before any plan. The
 * mediator sends each member of a pair the other's class there (PROTOCOL.md 3.2). */
static json_t *
pair_nat_json(const struct control_env *env, const uint8_t key[KEY_LEN])
{
	struct msg_punch pu;
	json_t *o;

	if (!env->med || medclient_punch_info(env->med, key, &pu) < 0)
		return json_null();
	o = json_object();
	json_object_set_new(o, "mine", jnat(pu.my_mapping, pu.my_ports));
	json_object_set_new(o, "peer", jnat(pu.peer_mapping, pu.peer_ports));
	json_object_set_new(o, "peer_filtering", json_string(nat_filtering_name(pu.peer_filtering)));
	return o;
}

#define PATH_LOST_WHY "path lost: pings got no answer; asked the mediator to punch again"

/* "reason": {"strategy", "my_nat", "peer_nat", "peer_filtering", "why"} for a peer without a
 * direct path; is_peer: it is in the peer table (else nobody punches for it). */
static json_t *
reason_json(const struct control_env *env, const uint8_t key[KEY_LEN], int is_peer)
{
	struct msg_punch pu;
	struct msg_nat_info ni;
	struct peer_status st;
	int have_ni = env->med && medclient_nat_info(env->med, &ni) == 0, lost;
	json_t *o = json_object();

	/* A path that worked and went silent: whatever the last plan said, that is the news. */
	lost = is_peer && env->peers && peers_status(env->peers, key, &st) == 0 &&
	    (st.lost || st.direct_lost);

	if (is_peer && env->med && medclient_punch_info(env->med, key, &pu) == 0) {
		json_object_set_new(o, "strategy", json_string(punch_strategy_name(pu.strategy)));
		json_object_set_new(o, "my_nat", jnat(pu.my_mapping, pu.my_ports));
		json_object_set_new(o, "peer_nat", jnat(pu.peer_mapping, pu.peer_ports));
		json_object_set_new(o, "peer_filtering",
		    json_string(nat_filtering_name(pu.peer_filtering)));
		json_object_set_new(o, "why", json_string(lost ? PATH_LOST_WHY : punch_why(&pu,
		    have_ni ? ni.filtering : NAT_FILT_UNKNOWN)));
		return o;
	}
	json_object_set_new(o, "strategy", json_null());
	json_object_set_new(o, "my_nat", have_ni ? jnat(ni.mapping, ni.ports) : json_null());
	json_object_set_new(o, "peer_nat", json_null());
	json_object_set_new(o, "peer_filtering", json_null());
	json_object_set_new(o, "why", json_string(lost ? PATH_LOST_WHY : is_peer ?
	    "no punch plan from the mediator yet" :
	    "not a peer now (offline, pending or switched off)"));
	return o;
}

/*
 * PEER as typed by a user to a virtual address, resolved as SOCKS and `shoal run` resolve it;
 * a dotted address need not be a known member (forwarding to it is the user's call).
 */
static int
resolve_addr(const struct control_env *env, const char *name, uint32_t *addr)
{
	uint8_t key[KEY_LEN];
	char norm[CTL_PEER_MAX + 1];

	if (env->dir && peerdir_resolve(env->dir, name, key, addr) == 0)
		return 0;
	if (medclient_name_normalize(name, norm, sizeof(norm)) <= 0)
		return -1;
	return ip4_parse(norm, addr);
}

/* The mediator's NAT classification (PROTOCOL.md 3.1), or null before its first NAT_INFO. */
static json_t *
nat_json(const struct control_env *env)
{
	struct msg_nat_info ni;
	char ep[EP_STR_LEN];
	json_t *o;

	if (!env->med || medclient_nat_info(env->med, &ni) < 0)
		return json_null();
	o = json_object();
	json_object_set_new(o, "udp", json_string(nat_udp_name(ni.udp)));
	json_object_set_new(o, "mapping", json_string(nat_mapping_name(ni.mapping)));
	json_object_set_new(o, "filtering", json_string(nat_filtering_name(ni.filtering)));
	json_object_set_new(o, "ports", json_string(nat_ports_name(ni.ports)));
	json_object_set_new(o, "step", json_integer(ni.step));
	json_object_set_new(o, "hairpin", json_string(nat_hairpin_name(ni.hairpin)));
	json_object_set_new(o, "lifetime_s", json_integer(ni.lifetime_s));
	json_object_set_new(o, "lifetime_max_s", json_integer(ni.lifetime_max_s));
	json_object_set_new(o, "public", ni.public_ep.addr && ni.public_ep.port ?
	    json_string(ep_str(&ni.public_ep, ep)) : json_null());
	return o;
}

/* The gateway's port mapping (PROTOCOL.md 3.4): {"state", "protocol", "external", "lease_s",
 * "error"}; state "off" when turned off. */
/* Virtual listens of `shoal run` programs that failed (the program listens locally only). */
static json_t *
listen_failures_json(const struct control_env *env)
{
	struct lp_listen_fail f[LP_LISTEN_FAIL_MAX];
	json_t *arr = json_array();
	size_t i, n = env->shim ? shim_server_listen_failures(env->shim, f, LP_LISTEN_FAIL_MAX) : 0;

	for (i = 0; i < n; i++)
		json_array_append_new(arr, json_pack("{s:i, s:s, s:i}", "port", (int)f[i].port,
		    "error", strerror(f[i].err), "pid", (int)f[i].pid));
	return arr;
}

static json_t *
portmap_json(const struct control_env *env)
{
	struct portmap_info pi;
	char ep[EP_STR_LEN];
	json_t *o;
	int mapped;

	portmap_info(env->portmap, &pi);
	mapped = pi.state == PORTMAP_MAPPED;
	o = json_object();
	json_object_set_new(o, "state", json_string(portmap_state_name(pi.state)));
	json_object_set_new(o, "protocol", mapped ?
	    json_string(portmap_proto_name(pi.proto)) : json_null());
	json_object_set_new(o, "external", mapped ?
	    json_string(ep_str(&pi.ext, ep)) : json_null());
	json_object_set_new(o, "lease_s", mapped ? json_integer((json_int_t)pi.lease_left) :
	    json_null());
	json_object_set_new(o, "error", pi.state == PORTMAP_FAILED ? ctl_jtext(pi.error) :
	    json_null());
	return o;
}

/* The relay pool as the mediator sent it, with our RTTs: [{id, name, udp, tcp_port, rtt_ms,
 * reachable}]. */
static json_t *
relays_json(const struct control_env *env)
{
	struct relayclient_relay r[RELAY_POOL_MAX];
	char ep[IP4_EP_STR_LEN];
	json_t *arr = json_array(), *e;
	size_t i, n;

	n = env->relays ? relayclient_relays(env->relays, r, RELAY_POOL_MAX) : 0;
	for (i = 0; i < n; i++) {
		e = json_object();
		json_object_set_new(e, "id", json_integer(r[i].id));
		json_object_set_new(e, "name", ctl_jtext(r[i].name));
		json_object_set_new(e, "udp", json_string(ip4_ep_str(r[i].udp.addr, r[i].udp.port,
		    ep)));
		json_object_set_new(e, "tcp_port", r[i].tcp_port ? json_integer(r[i].tcp_port) :
		    json_null());
		json_object_set_new(e, "rtt_ms", r[i].rtt_ms >= 0 ? json_integer(r[i].rtt_ms) :
		    json_null());
		json_object_set_new(e, "reachable", json_boolean(r[i].reachable));
		json_array_append_new(arr, e);
	}
	return arr;
}

json_t *
ctl_status_json(const struct control_env *env)
{
	struct expose_info ex[LIST_MAX];
	struct forward_info fw[LIST_MAX];
	struct endpoint ep;
	json_t *o, *arr, *e;
	char a[EP_STR_LEN];
	const char *nick;
	size_t i, n;

	nick = env->med ? medclient_nick(env->med) : NULL;
	o = json_object();
	json_object_set_new(o, "address", jaddr(env->vnet->addr));
	json_object_set_new(o, "nick", ctl_jtext(nick ? nick : ""));
	json_object_set_new(o, "node_id", ctl_jhex(env->node_pub));
	json_object_set_new(o, "server",
	    json_string(env->med && medclient_connected(env->med) ? "connected" : "disconnected"));
	json_object_set_new(o, "server_url", env->server ? ctl_jtext(env->server) : json_null());
	{
		/* Which instance of the mediator (the connection string may list several). */
		char med[300];

		json_object_set_new(o, "mediator", env->med && medclient_server(env->med, med,
		    sizeof(med)) == 0 ? ctl_jtext(med) : json_null());
	}
	/* the contract's return value is loose ("0 if unknown"): trust a filled endpoint */
	memset(&ep, 0, sizeof(ep));
	if (env->med && medclient_public_endpoint(env->med, &ep) >= 0 && ep.addr && ep.port) {
		json_object_set_new(o, "public_endpoint",
		    json_string(ep_str(&ep, a)));
	} else {
		json_object_set_new(o, "public_endpoint", json_null());
	}
	json_object_set_new(o, "nat", nat_json(env));
	json_object_set_new(o, "portmap", portmap_json(env));

	arr = json_array();
	n = env->expose ? expose_list(env->expose, ex, LIST_MAX) : 0;
	for (i = 0; i < n; i++)
		json_array_append_new(arr, json_pack("{s:i, s:s}", "port", (int)ex[i].port,
		    "proto", ex[i].udp ? "udp" : "tcp"));
	json_object_set_new(o, "exposes", arr);

	arr = json_array();
	n = env->fwd ? forward_list(env->fwd, fw, LIST_MAX) : 0;
	for (i = 0; i < n; i++) {
		e = json_object();
		json_object_set_new(e, "local_port", json_integer(fw[i].local_port));
		json_object_set_new(e, "address", jaddr(fw[i].ip));
		json_object_set_new(e, "port", json_integer(fw[i].port));
		nick = nick_of(env, fw[i].ip);
		json_object_set_new(e, "peer", nick ? ctl_jtext(nick) : json_null());
		json_array_append_new(arr, e);
	}
	json_object_set_new(o, "forwards", arr);

	json_object_set_new(o, "socks", env->socks ? ctl_jtext(env->socks) : json_null());
	json_object_set_new(o, "relays", relays_json(env));
	/* `shoal run` finds the shim socket here; null if it could not be created. */
	json_object_set_new(o, "shim_socket", env->shim_path ? ctl_jtext(env->shim_path) :
	    json_null());
	json_object_set_new(o, "listen_failures", listen_failures_json(env));
	json_object_set_new(o, "ui", env->ui_url ? json_pack("{s:s, s:s}", "url", env->ui_url,
	    "token_file", env->ui_token_file ? env->ui_token_file : "") : json_null());
	return o;
}

static int
cmp_network(const void *a, const void *b)
{
	const struct med_network *x = *(const struct med_network *const *)a;
	const struct med_network *y = *(const struct med_network *const *)b;

	return strcmp(x->name, y->name);
}

static int
cmp_member(const void *a, const void *b)
{
	const struct med_member *x = *(const struct med_member *const *)a;
	const struct med_member *y = *(const struct med_member *const *)b;

	if (x->address != y->address)
		return x->address < y->address ? -1 : 1;
	return memcmp(x->key, y->key, KEY_LEN);
}

/* What carries a path: a relay link's kind names the relay's transport ("relay-tcp": "tcp"). */
static json_t *
transport_json(const struct peer_status *st)
{
	if (st->path == PATH_NONE || st->transport == NULL)
		return json_null();
	if (strncmp(st->transport, "relay-", 6) == 0)
		return json_string(st->transport + 6);
	return json_string(st->transport);
}

/* On a relay path: "relay" (its name, or "#id" when the pool does not name it) and
 * "relay_reason" (the mediator's why, PROTOCOL.md 8). */
static void
relay_json(const struct control_env *env, const uint8_t key[KEY_LEN],
    const struct peer_status *st, json_t *o)
{
	struct relayclient_peer rp;
	char name[RELAY_NAME_MAX_LEN + 8];

	if (st->path != PATH_RELAY || env->relays == NULL ||
	    relayclient_peer_info(env->relays, key, &rp) != 0)
		return;
	if (rp.name[0])
		snprintf(name, sizeof(name), "%s", rp.name);
	else
		snprintf(name, sizeof(name), "#%u", (unsigned)rp.relay_id);
	json_object_set_new(o, "relay", ctl_jtext(name));
	/* Our own news is fresher than the grant's reason: the direct path just died, or the
	 * punch the mediator sent while the pair was "starting" is over without one. */
	json_object_set_new(o, "relay_reason", json_string(relay_reason_name(st->direct_lost ?
	    RELAY_WHY_DIRECT_LOST : rp.reason == RELAY_WHY_STARTING && st->punch_failed ?
	    RELAY_WHY_PUNCH_FAILED : rp.reason)));
}

static json_t *
member_json(const struct control_env *env, const struct med_member *m)
{
	struct peer_status st;
	int self = memcmp(m->key, env->node_pub, KEY_LEN) == 0;
	json_t *o = json_object(), *eps = json_array();
	char epbuf[EP_STR_LEN];
	uint8_t i;

	json_object_set_new(o, "nick", ctl_jtext(m->nick));
	json_object_set_new(o, "address", jaddr(m->address));
	json_object_set_new(o, "node_id", ctl_jhex(m->key));
	json_object_set_new(o, "online", json_boolean(m->flags & MEMF_ONLINE));
	json_object_set_new(o, "pending", json_boolean(m->flags & MEMF_PENDING));
	json_object_set_new(o, "owner", json_boolean(m->flags & MEMF_OWNER));
	json_object_set_new(o, "self", json_boolean(self));
	/* Where the mediator says it can be reached (observed, mapped, local, IPv6). */
	for (i = 0; i < m->n_endpoints && i < MAX_ENDPOINTS; i++)
		json_array_append_new(eps, json_string(ep_str(&m->endpoints[i], epbuf)));
	json_object_set_new(o, "endpoints", eps);
	if (!self && env->peers && peers_status(env->peers, m->key, &st) == 0) {
		json_object_set_new(o, "path", json_string(path_kind_name(st.path)));
		json_object_set_new(o, "transport", transport_json(&st));
		relay_json(env, m->key, &st, o);
		json_object_set_new(o, "rtt_ms",
		    st.path != PATH_NONE && st.rtt_ms >= 0 ? json_real(st.rtt_ms) : json_null());
		json_object_set_new(o, "endpoint", st.path != PATH_NONE ?
		    json_string(ep_str(&st.endpoint, epbuf)) : json_null());
		json_object_set_new(o, "strategy", strategy_json(env, m->key));
		json_object_set_new(o, "nat", pair_nat_json(env, m->key));
		if (st.path != PATH_DIRECT)
			json_object_set_new(o, "reason", reason_json(env, m->key, 1));
	} else {
		json_object_set_new(o, "path", json_string("none"));
		json_object_set_new(o, "transport", json_null());
		json_object_set_new(o, "rtt_ms", json_null());
		json_object_set_new(o, "endpoint", json_null());
		json_object_set_new(o, "strategy", self ? json_null() : strategy_json(env, m->key));
		json_object_set_new(o, "nat", self ? json_null() : pair_nat_json(env, m->key));
		if (!self)
			json_object_set_new(o, "reason", reason_json(env, m->key, 0));
	}
	return o;
}

static json_t *
network_json(const struct control_env *env, const struct med_network *n)
{
	const struct med_member *m, **ms;
	json_t *o = json_object(), *arr = json_array();
	size_t i, count = HASH_COUNT(n->members);

	json_object_set_new(o, "name", ctl_jtext(n->name));
	json_object_set_new(o, "online", json_boolean(n->my_flags & MEMF_ONLINE));
	json_object_set_new(o, "owner", json_boolean(memcmp(n->owner, env->node_pub, KEY_LEN) == 0));
	json_object_set_new(o, "locked", json_boolean(n->flags & NETF_LOCKED));
	json_object_set_new(o, "approval",
	    json_string(n->flags & NETF_MANUAL_APPROVAL ? "manual" : "auto"));
	json_object_set_new(o, "pending", json_boolean(n->my_flags & MEMF_PENDING));
	if ((ms = calloc(count + 1, sizeof(*ms)))) {
		i = 0;
		for (m = n->members; m && i < count; m = m->hh.next)
			ms[i++] = m;
		qsort(ms, i, sizeof(*ms), cmp_member);
		count = i;
		for (i = 0; i < count; i++)
			json_array_append_new(arr, member_json(env, ms[i]));
		free(ms);
	}
	json_object_set_new(o, "members", arr);
	return o;
}

json_t *
ctl_list_json(const struct control_env *env)
{
	const struct med_network *head = env->med ? medclient_networks(env->med) : NULL, *n, **ns;
	json_t *arr = json_array();
	size_t i = 0, count = head ? HASH_COUNT(head) : 0;

	if (!(ns = calloc(count + 1, sizeof(*ns)))) {
		json_decref(arr);
		return NULL;
	}
	for (n = head; n && i < count; n = n->hh.next)
		ns[i++] = n;
	qsort(ns, i, sizeof(*ns), cmp_network);
	count = i;
	for (i = 0; i < count; i++)
		json_array_append_new(arr, network_json(env, ns[i]));
	free(ns);
	return json_pack("{s:o}", "networks", arr);
}

/* The message sent back when the server's RESULT carries no text of its own. */
static void
default_message(const struct ctl_request *rq, char *out, size_t cap)
{
	switch (rq->cmd) {
	case CTL_SET_NICK: snprintf(out, cap, "nick set to %s", rq->nick); break;
	case CTL_CREATE: snprintf(out, cap, "created network %s", rq->network); break;
	case CTL_JOIN: snprintf(out, cap, "joined network %s", rq->network); break;
	case CTL_LEAVE: snprintf(out, cap, "left network %s", rq->network); break;
	case CTL_GO_ONLINE: snprintf(out, cap, "online in %s", rq->network); break;
	case CTL_GO_OFFLINE: snprintf(out, cap, "offline in %s", rq->network); break;
	case CTL_DELETE: snprintf(out, cap, "deleted network %s", rq->network); break;
	case CTL_SET_PASS:
		snprintf(out, cap, rq->password[0] ? "password of %s changed" :
		    "password of %s removed", rq->network);
		break;
	case CTL_SET_ACCESS:
		snprintf(out, cap, "%s: %s", rq->network, ctl_access_name(rq->access));
		break;
	case CTL_APPROVE: snprintf(out, cap, "approved %s in %s", rq->peer, rq->network); break;
	case CTL_REJECT: snprintf(out, cap, "rejected %s in %s", rq->peer, rq->network); break;
	case CTL_EVICT: snprintf(out, cap, "evicted %s from %s", rq->peer, rq->network); break;
	default: snprintf(out, cap, "done"); break;
	}
}

static void
mediator_done(void *arg, const struct msg_result *res)
{
	struct ctl_pending *p = arg;
	char msg[512];
	json_t *o;
	/* a join that now waits for the owner did what it could: success, marked pending */
	int pending = p->rq.cmd == CTL_JOIN && res->status == RES_ERR_PENDING;

	p->outstanding = 0;
	if (p->client) {
		if (res->status == RES_OK || pending) {
			if (res->text[0])
				snprintf(msg, sizeof(msg), "%s", res->text);
			else if (pending)
				snprintf(msg, sizeof(msg), "waiting for the owner's approval");
			else
				default_message(&p->rq, msg, sizeof(msg));
			o = json_pack("{s:o}", "message", ctl_jtext(msg));
			if (p->rq.cmd == CTL_JOIN)
				json_object_set_new(o, "pending", json_boolean(pending));
			ctl_reply_ok(p->client, p->id, o);
		} else if (res->text[0] && strncasecmp(res->text, result_status_text(res->status),
		    strlen(result_status_text(res->status))) != 0) {
			ctl_reply_error(p->client, 1, p->id, "%s: %s",
			    result_status_text(res->status), res->text);
		} else {
			/* the server's text already says it (or there is none) */
			ctl_reply_error(p->client, 1, p->id, "%s",
			    res->text[0] ? res->text : result_status_text(res->status));
		}
	}
	ctl_pending_free(p);
}

static const uint8_t cmd_ops[] = {
	[CTL_SET_NICK] = OP_SET_NICK, [CTL_CREATE] = OP_CREATE, [CTL_JOIN] = OP_JOIN,
	[CTL_LEAVE] = OP_LEAVE, [CTL_GO_ONLINE] = OP_GO_ONLINE, [CTL_GO_OFFLINE] = OP_GO_OFFLINE,
	[CTL_DELETE] = OP_DELETE, [CTL_SET_PASS] = OP_SET_PASS, [CTL_SET_ACCESS] = OP_SET_ACCESS,
	[CTL_APPROVE] = OP_APPROVE, [CTL_REJECT] = OP_REJECT, [CTL_EVICT] = OP_EVICT,
};

static void
cmd_mediator(const struct control_env *env, struct ctl_client *cl, const struct ctl_request *rq)
{
	const struct med_network *n = NULL;
	struct msg_request req;
	struct ctl_pending *p;
	uint32_t addr;
	int found;

	if (!env->med) {
		ctl_reply_error(cl, 1, rq->id, "mediator not configured");
		return;
	}
	memset(&req, 0, sizeof(req));
	req.op = cmd_ops[rq->cmd];
	snprintf(req.network, sizeof(req.network), "%s", rq->network);
	snprintf(req.password, sizeof(req.password), "%s", rq->password);
	if (rq->cmd == CTL_SET_NICK)
		snprintf(req.arg, sizeof(req.arg), "%s", rq->nick);

	if (rq->cmd == CTL_SET_ACCESS || rq->cmd == CTL_APPROVE || rq->cmd == CTL_REJECT ||
	    rq->cmd == CTL_EVICT) {
		if (!(n = find_network(env, rq->network))) {
			ctl_reply_error(cl, 1, rq->id, "not in network %s", rq->network);
			return;
		}
	}
	if (rq->cmd == CTL_SET_ACCESS) {
		/* the server takes the whole flag set: change one bit of what we last heard */
		req.flags = n->flags;
		switch (rq->access) {
		case CTL_ACCESS_LOCK: req.flags |= NETF_LOCKED; break;
		case CTL_ACCESS_UNLOCK: req.flags &= (uint8_t)~NETF_LOCKED; break;
		case CTL_ACCESS_MANUAL: req.flags |= NETF_MANUAL_APPROVAL; break;
		case CTL_ACCESS_AUTO: req.flags &= (uint8_t)~NETF_MANUAL_APPROVAL; break;
		}
	}
	if (n && rq->cmd != CTL_SET_ACCESS) {
		found = medclient_resolve_in(n, rq->peer, req.target);
		if (found == -1) {
			ctl_reply_error(cl, 1, rq->id,
			    "%s matches several members of %s; use the address or node id",
			    rq->peer, rq->network);
			return;
		}
		if (found == 0 && (!env->dir ||
		    peerdir_resolve(env->dir, rq->peer, req.target, &addr) == -1)) {
			/* only owners are shown pending members: say what the server would */
			if (memcmp(n->owner, env->node_pub, KEY_LEN) != 0)
				ctl_reply_error(cl, 1, rq->id, "%s: only the owner of %s can %s members",
				    result_status_text(RES_ERR_NOT_OWNER), rq->network,
				    ctl_cmd_name(rq->cmd));
			else
				ctl_reply_error(cl, 1, rq->id, "no member %s in network %s", rq->peer,
				    rq->network);
			return;
		}
	}

	if (!(p = ctl_pending_new(cl, rq))) {
		sodium_memzero(req.password, sizeof(req.password));
		return;
	}
	/* the pending copy only needs to know whether there was a password */
	if (p->rq.password[0]) {
		sodium_memzero(p->rq.password, sizeof(p->rq.password));
		p->rq.password[0] = '*';
	}
	p->outstanding = 1;
	/* the callback may run before this returns; p is not touched after a 0 */
	if (medclient_request(env->med, &req, mediator_done, p) == -1) {
		p->outstanding = 0;
		ctl_reply_error(cl, 1, rq->id, "mediator not connected");
		ctl_pending_free(p);
	}
	sodium_memzero(req.password, sizeof(req.password));
}

static void
ports_changed(const struct control_env *env)
{
	if (env->ports_changed)
		env->ports_changed(env->ports_arg);
}

static void
cmd_expose(const struct control_env *env, struct ctl_client *cl, const struct ctl_request *rq)
{
	const char *proto = rq->udp ? "udp" : "tcp";
	char err[256] = "", msg[128];
	int rc;

	if (!env->expose) {
		ctl_reply_error(cl, 1, rq->id, "expose is not available in this daemon");
		return;
	}
	if (rq->remove)
		rc = expose_remove(env->expose, rq->port, rq->udp, err, sizeof(err));
	else
		rc = expose_add(env->expose, rq->port, rq->udp, err, sizeof(err));
	if (rc == -1) {
		ctl_reply_error(cl, 1, rq->id, "%s", err[0] ? err : "failed");
		return;
	}
	ports_changed(env);
	if (rq->remove)
		snprintf(msg, sizeof(msg), "no longer exposing %u/%s", rq->port, proto);
	else
		snprintf(msg, sizeof(msg), "exposing %u/%s", rq->port, proto);
	ctl_reply_ok(cl, rq->id, json_pack("{s:s, s:i, s:s, s:b}", "message", msg,
	    "port", (int)rq->port, "proto", proto, "removed", rq->remove));
}

/*
 * A forward reaches another node of the virtual network, nothing else: not us, not the
 * network's own or broadcast address, not loopback or the Internet (the netstack would send
 * such a connect nowhere and the user would wait for a timeout). Before we have an address the
 * prefix is unknown: then only what can never be a node is refused.
 */
static int
forward_target_ok(const struct vnet *vn, uint32_t addr, char *err, size_t errlen)
{
	char a[IP4_STR_LEN], net[IP4_STR_LEN];
	uint32_t first = addr >> 24;

	ip4_str(addr, a);
	if (vn && vnet_ready(vn)) {
		if (vnet_is_other_host(vn, addr))
			return 1;
		ip4_str(vn->prefix_len ? vn->addr & (0xffffffffu << (32 - vn->prefix_len)) : 0,
		    net);
		if (addr == vn->addr)
			snprintf(err, errlen, "%s is this node: forward reaches other members", a);
		else if (vnet_contains(vn, addr))
			snprintf(err, errlen, "%s is the network or broadcast address of %s/%u, not "
			    "a member", a, net, (unsigned)vn->prefix_len);
		else
			snprintf(err, errlen, "%s is outside the virtual network %s/%u: forward "
			    "reaches members only", a, net, (unsigned)vn->prefix_len);
		return 0;
	}
	if (first == 0 || first == 127 || first >= 224) {
		snprintf(err, errlen, "%s cannot be a member's address: forward reaches members "
		    "only", a);
		return 0;
	}
	return 1;
}

static void
cmd_forward(const struct control_env *env, struct ctl_client *cl, const struct ctl_request *rq)
{
	char err[256] = "", msg[256], a[IP4_STR_LEN];
	const char *nick;
	uint32_t addr;
	json_t *o;

	if (!env->fwd) {
		ctl_reply_error(cl, 1, rq->id, "forward is not available in this daemon");
		return;
	}
	if (rq->remove) {
		if (forward_remove(env->fwd, rq->local_port, err, sizeof(err)) == -1) {
			ctl_reply_error(cl, 1, rq->id, "%s", err[0] ? err : "failed");
			return;
		}
		ports_changed(env);
		snprintf(msg, sizeof(msg), "no longer forwarding 127.0.0.1:%u", rq->local_port);
		ctl_reply_ok(cl, rq->id, json_pack("{s:s, s:i, s:b}", "message", msg,
		    "local_port", (int)rq->local_port, "removed", 1));
		return;
	}
	if (resolve_addr(env, rq->peer, &addr) == -1) {
		ctl_reply_error(cl, 1, rq->id, "unknown peer %s (not a nick, address or node id "
		    "of a member)", rq->peer);
		return;
	}
	if (!forward_target_ok(env->vnet, addr, err, sizeof(err))) {
		ctl_reply_error(cl, 1, rq->id, "%s", err);
		return;
	}
	if (forward_add(env->fwd, rq->local_port, addr, rq->port, err, sizeof(err)) == -1) {
		ctl_reply_error(cl, 1, rq->id, "%s", err[0] ? err : "failed");
		return;
	}
	ports_changed(env);
	ip4_str(addr, a);
	snprintf(msg, sizeof(msg), "forwarding 127.0.0.1:%u to %s:%u", rq->local_port, a,
	    rq->port);
	o = json_pack("{s:s, s:i, s:s, s:i, s:b}", "message", msg, "local_port",
	    (int)rq->local_port, "address", a, "port", (int)rq->port, "removed", 0);
	nick = nick_of(env, addr);
	json_object_set_new(o, "peer", nick ? ctl_jtext(nick) : json_null());
	ctl_reply_ok(cl, rq->id, o);
}

static void ping_next(struct ctl_pending *p);

/* Path facts for a ping answer: "path", "strategy" and, when not direct, "reason". */
static void
ping_path_json(const struct control_env *env, uint32_t addr, json_t *o)
{
	struct peer_status st;
	uint8_t key[KEY_LEN];
	int known = key_of(env, addr, key) == 0;
	int is_peer = known && env->peers && peers_status(env->peers, key, &st) == 0;
	enum path_kind path = is_peer ? st.path : PATH_NONE;

	json_object_set_new(o, "path", json_string(path_kind_name(path)));
	if (is_peer) {
		json_object_set_new(o, "transport", transport_json(&st));
		relay_json(env, key, &st, o);
	}
	json_object_set_new(o, "strategy", known ? strategy_json(env, key) : json_null());
	if (path != PATH_DIRECT)
		json_object_set_new(o, "reason", known ? reason_json(env, key, is_peer) :
		    json_null());
}

/* The error text's tail when no ping got through: the reason's "why", if there is one. */
static void
ping_why(const struct control_env *env, uint32_t addr, char *out, size_t cap)
{
	json_t *o = json_object(), *r;
	const char *why, *strat;

	out[0] = '\0';
	ping_path_json(env, addr, o);
	r = json_object_get(o, "reason");
	why = json_string_value(json_object_get(r, "why"));
	strat = json_string_value(json_object_get(o, "strategy"));
	if (why && strat)
		snprintf(out, cap, "; no direct path: %s (strategy %s)", why, strat);
	else if (why)
		snprintf(out, cap, "; no direct path: %s", why);
	json_decref(o);
}

static void
ping_finish(struct ctl_pending *p)
{
	json_t *o, *arr;
	char a[IP4_STR_LEN], why[256];
	int i, received = 0;

	ip4_str(p->addr, a);
	arr = json_array();
	for (i = 0; i < p->seq; i++) {
		json_array_append_new(arr, p->rtt[i] >= 0 ? json_real(p->rtt[i]) : json_null());
		received += p->rtt[i] >= 0;
	}
	if (received == 0) {
		json_decref(arr);
		ping_why(p->env, p->addr, why, sizeof(why));
		ctl_reply_error(p->client, 1, p->id, "no reply from %s%s%s%s after %d ping%s%s", a,
		    p->nick[0] ? " (" : "", p->nick, p->nick[0] ? ")" : "", p->seq,
		    p->seq == 1 ? "" : "s", why);
	} else {
		o = json_object();
		json_object_set_new(o, "address", json_string(a));
		json_object_set_new(o, "nick", p->nick[0] ? ctl_jtext(p->nick) : json_null());
		json_object_set_new(o, "sent", json_integer(p->seq));
		json_object_set_new(o, "received", json_integer(received));
		json_object_set_new(o, "rtt_ms", arr);
		ping_path_json(p->env, p->addr, o);
		ctl_reply_ok(p->client, p->id, o);
	}
	ctl_pending_free(p);
}

static void
ping_done(void *arg, double rtt_ms)
{
	struct ctl_pending *p = arg;

	p->outstanding = 0;
	if (!p->client) {
		ctl_pending_free(p);
		return;
	}
	p->rtt[p->seq++] = rtt_ms;
	if (p->seq >= p->rq.count) {
		ping_finish(p);
		return;
	}
	/* a timed-out ping already waited long enough */
	ev_timer_set(&p->gap, rtt_ms < 0 ? 0. : PING_GAP_MS / 1000., 0.);
	ev_timer_start(p->env->loop, &p->gap);
}

static void
ping_gap_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ctl_pending *p = (struct ctl_pending *)((char *)w -
	    offsetof(struct ctl_pending, gap));

	ping_next(p);
}

static void
ping_next(struct ctl_pending *p)
{
	char a[IP4_STR_LEN];

	p->outstanding = 1;
	if (peers_ping(p->env->peers, p->addr, ping_done, p) == -1) {
		int busy = errno == EBUSY || errno == ENOMEM;

		p->outstanding = 0;
		if (busy) {
			ip4_str(p->addr, a);
			ctl_reply_error(p->client, 1, p->id, "busy: too many pings to %s in flight; "
			    "try again in a few seconds", a);
			ctl_pending_free(p);
			return;
		}
		if (p->seq > 0) {
			/* the peer went away between pings: report what we have */
			while (p->seq < p->rq.count)
				p->rtt[p->seq++] = -1;
			ping_finish(p);
			return;
		}
		ip4_str(p->addr, a);
		ctl_reply_error(p->client, 1, p->id, "%s is not a connected peer (no shared "
		    "online network)", a);
		ctl_pending_free(p);
	}
}

static void
cmd_ping(const struct control_env *env, struct ctl_client *cl, const struct ctl_request *rq)
{
	struct ctl_pending *p;
	const char *nick;
	uint32_t addr;

	if (!env->peers) {
		ctl_reply_error(cl, 1, rq->id, "ping is not available in this daemon");
		return;
	}
	if (resolve_addr(env, rq->peer, &addr) == -1) {
		ctl_reply_error(cl, 1, rq->id, "unknown peer %s (not a nick, address or node id "
		    "of a member)", rq->peer);
		return;
	}
	if (addr == env->vnet->addr) {
		ctl_reply_error(cl, 1, rq->id, "%s is this node", rq->peer);
		return;
	}
	if (!(p = ctl_pending_new(cl, rq)))
		return;
	p->addr = addr;
	if ((nick = nick_of(env, addr)))
		snprintf(p->nick, sizeof(p->nick), "%s", nick);
	ev_timer_init(&p->gap, ping_gap_cb, 0., 0.);
	ping_next(p);
}

void
ctl_cmd_cancel(struct ctl_pending *p)
{
	/* a ping, a chat-follow and a watch wait on a timer rather than a callback */
	if (p->rq.cmd == CTL_PING)
		ev_timer_stop(p->env->loop, &p->gap);
	if (p->rq.cmd == CTL_CHAT_FOLLOW)
		ctl_chat_cancel(p);
	if (p->rq.cmd == CTL_WATCH)
		ctl_watch_cancel(p);
}

void
ctl_cmd_run(const struct control_env *env, struct ctl_client *cl, const struct ctl_request *rq)
{
	json_t *o;

	log_debug("event=control_request cmd=%s id=%lld", ctl_cmd_name(rq->cmd),
	    (long long)rq->id);
	switch (rq->cmd) {
	case CTL_STATUS:
		ctl_reply_ok(cl, rq->id, ctl_status_json(env));
		break;
	case CTL_LIST:
		if ((o = ctl_list_json(env)) == NULL)
			ctl_reply_error(cl, 1, rq->id, "out of memory");
		else
			ctl_reply_ok(cl, rq->id, o);
		break;
	case CTL_WATCH:
		ctl_watch_run(env, cl, rq);
		break;
	case CTL_EXPOSE:
		cmd_expose(env, cl, rq);
		break;
	case CTL_FORWARD:
		cmd_forward(env, cl, rq);
		break;
	case CTL_PING:
		cmd_ping(env, cl, rq);
		break;
	case CTL_CHAT:
	case CTL_CHAT_FOLLOW:
	case CTL_CHAT_HISTORY:
		ctl_chat_run(env, cl, rq);
		break;
	default:
		cmd_mediator(env, cl, rq);
		break;
	}
}

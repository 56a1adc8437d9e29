/*
 * output: human-readable forms of status, list and ping responses. The JSON field names used
 * here are the ones docs/PROTOCOL.md section 5 lists. Must not touch: the socket, argv.
 */
#include "config.h"
#include "cli/output.h"

#include <string.h>
#include <time.h>

static const char *
str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s && s[0] ? s : "-";
}

static int
flag(json_t *o, const char *key)
{
	return json_is_true(json_object_get(o, key));
}

void
output_message(FILE *f, json_t *r)
{
	const char *s = json_string_value(json_object_get(r, "message"));

	if (s && s[0])
		fprintf(f, "%s\n", s);
}

/* One line about our NAT: "nat: eim, apdf filtering, preserved ports, hairpin yes, binding >=
 * 24 s", or "nat: unknown" before the mediator classified it. Not padded like the lines above:
 * it is long, and scripts may look for "nat: " followed by the mapping. */
static void
nat_line(FILE *f, json_t *nat)
{
	long long life = json_integer_value(json_object_get(nat, "lifetime_s"));
	long long life_max = json_integer_value(json_object_get(nat, "lifetime_max_s"));
	long long step = json_integer_value(json_object_get(nat, "step"));

	fprintf(f, "nat: ");
	if (!json_is_object(nat)) {
		fprintf(f, "unknown\n");
		return;
	}
	/* Without UDP through the NAT the rest was never measured. */
	if (strcmp(str(nat, "udp"), "blocked") == 0) {
		fprintf(f, "udp blocked\n");
		return;
	}
	fprintf(f, "%s, %s filtering, %s ports", str(nat, "mapping"), str(nat, "filtering"),
	    str(nat, "ports"));
	if (step > 0)
		fprintf(f, " (step %lld)", step);
	fprintf(f, ", hairpin %s", str(nat, "hairpin"));
	if (life > 0)
		fprintf(f, ", binding >= %lld s", life);
	else if (life_max > 0)
		fprintf(f, ", binding < %lld s", life_max);
	fprintf(f, "\n");
}

/* "port map: 203.0.113.7:40000 (nat-pmp, lease 3599 s)", "port map: failed (no gateway)",
 * "port map: off" (PROTOCOL.md 3.4). */
static void
portmap_line(FILE *f, json_t *pm)
{
	const char *state = str(pm, "state");

	fprintf(f, "%-16s ", "port map:");
	if (strcmp(state, "mapped") == 0)
		fprintf(f, "%s (%s, lease %lld s)\n", str(pm, "external"), str(pm, "protocol"),
		    (long long)json_integer_value(json_object_get(pm, "lease_s")));
	else if (strcmp(state, "failed") == 0)
		fprintf(f, "failed (%s)\n", str(pm, "error"));
	else
		fprintf(f, "%s\n", state);
}

/* "relays:  fra-1 12 ms, ams-2 unreachable" (our RTTs to the mediator's pool). */
static void
relays_line(FILE *f, json_t *relays)
{
	json_t *e, *rtt;
	size_t i;

	if (!json_is_array(relays) || json_array_size(relays) == 0) {
		fprintf(f, "%-16s none\n", "relays:");
		return;
	}
	fprintf(f, "%-16s", "relays:");
	json_array_foreach(relays, i, e) {
		rtt = json_object_get(e, "rtt_ms");
		if (json_is_integer(rtt))
			fprintf(f, "%s %s %lld ms", i ? "," : "", str(e, "name"),
			    (long long)json_integer_value(rtt));
		else
			fprintf(f, "%s %s %s", i ? "," : "", str(e, "name"),
			    flag(e, "reachable") ? "(measuring)" : "unreachable");
	}
	fprintf(f, "\n");
}

void
output_status(FILE *f, json_t *r)
{
	json_t *arr, *e;
	size_t i;
	const char *conn = str(r, "server");

	fprintf(f, "%-16s %s\n", "address:", str(r, "address"));
	fprintf(f, "%-16s %s\n", "nick:", str(r, "nick"));
	fprintf(f, "%-16s %s\n", "node id:", str(r, "node_id"));
	if (json_is_string(json_object_get(r, "mediator")))
		fprintf(f, "%-16s %s (%s)\n", "server:", conn, str(r, "mediator"));
	else
		fprintf(f, "%-16s %s\n", "server:", conn);
	fprintf(f, "%-16s %s\n", "server url:", str(r, "server_url"));
	fprintf(f, "%-16s %s\n", "public endpoint:", str(r, "public_endpoint"));
	nat_line(f, json_object_get(r, "nat"));
	portmap_line(f, json_object_get(r, "portmap"));
	relays_line(f, json_object_get(r, "relays"));
	fprintf(f, "%-16s %s\n", "socks:", str(r, "socks"));

	arr = json_object_get(r, "exposes");
	fprintf(f, "%-16s", "exposes:");
	if (!json_array_size(arr))
		fprintf(f, " none");
	json_array_foreach(arr, i, e)
		fprintf(f, "%s %lld/%s", i ? "," : "",
		    (long long)json_integer_value(json_object_get(e, "port")), str(e, "proto"));
	fprintf(f, "\n");

	arr = json_object_get(r, "forwards");
	if (!json_array_size(arr))
		fprintf(f, "%-16s none\n", "forwards:");
	json_array_foreach(arr, i, e) {
		fprintf(f, "%-16s 127.0.0.1:%lld -> %s:%lld", i ? "" : "forwards:",
		    (long long)json_integer_value(json_object_get(e, "local_port")),
		    str(e, "address"), (long long)json_integer_value(json_object_get(e, "port")));
		if (json_is_string(json_object_get(e, "peer")))
			fprintf(f, " (%s)", str(e, "peer"));
		fprintf(f, "\n");
	}
	/* Only when something failed: a program listening where peers cannot reach it. */
	arr = json_object_get(r, "listen_failures");
	json_array_foreach(arr, i, e)
		fprintf(f, "%-16s port %lld of pid %lld: %s\n", i ? "" : "not on the LAN:",
		    (long long)json_integer_value(json_object_get(e, "port")),
		    (long long)json_integer_value(json_object_get(e, "pid")), str(e, "error"));
}

/* What a member line says after the nick; the mediator's punch strategy, when it sent one,
 * in brackets after the path ("direct  0.3 ms  [simultaneous]"). */
static void
member_state(json_t *m, char *out, size_t cap)
{
	json_t *rtt = json_object_get(m, "rtt_ms");
	const char *path = str(m, "path");
	const char *strat = json_string_value(json_object_get(m, "strategy"));
	char tail[40] = "";

	if (strat && strat[0])
		snprintf(tail, sizeof(tail), "  [%s]", strat);
	if (flag(m, "self"))
		snprintf(out, cap, "(you)");
	else if (flag(m, "pending"))
		snprintf(out, cap, "waiting for approval");
	else if (!flag(m, "online"))
		snprintf(out, cap, "offline");
	else if (strcmp(path, "none") == 0 || strcmp(path, "-") == 0)
		snprintf(out, cap, "connecting%s", tail);
	else if (strcmp(path, "relay") == 0 && json_is_number(rtt))
		snprintf(out, cap, "relay   %.1f ms  via %s (%s)%s", json_number_value(rtt),
		    str(m, "relay"), str(m, "relay_reason"), tail);
	else if (json_is_number(rtt) && json_is_string(json_object_get(m, "endpoint")))
		snprintf(out, cap, "%-7s %.1f ms%s  %s", path, json_number_value(rtt), tail,
		    str(m, "endpoint"));
	else if (json_is_number(rtt))
		snprintf(out, cap, "%-7s %.1f ms%s", path, json_number_value(rtt), tail);
	else
		snprintf(out, cap, "%s%s", path, tail);
}

/* A NAT as people call it, from the reason's "mapping/ports" and a filtering name: the
 * property that decides punching (random ports, or the filtering of a one-mapping NAT). */
static const char *
nat_kind(const char *nat, const char *filtering)
{
	const char *ports = nat ? strchr(nat, '/') : NULL;

	if (!nat || !ports)
		return "unknown NAT";
	ports++;
	if (strncmp(nat, "eim/", 4) == 0) {
		if (filtering && strcmp(filtering, "apdf") == 0)
			return "port-restricted NAT";
		if (filtering && strcmp(filtering, "adf") == 0)
			return "address-restricted NAT";
		if (filtering && strcmp(filtering, "eif") == 0)
			return "full-cone NAT";
		return "endpoint-independent NAT";
	}
	if (strcmp(ports, "random") == 0)
		return "random-port NAT";
	if (strcmp(ports, "sequential") == 0)
		return "sequential-port NAT";
	if (strncmp(nat, "unknown/", 8) == 0)
		return "unknown NAT";
	return "symmetric NAT";
}

/* "bob: no direct path (random-port NAT vs port-restricted NAT; strategy none)", or with the
 * reason's sentence when the mediator sent no plan. Nothing when the path is direct. */
static void
no_path_line(FILE *f, json_t *r, const char *who)
{
	json_t *reason = json_object_get(r, "reason");
	const char *strat, *my_nat, *peer_nat, *why;

	if (strcmp(str(r, "path"), "relay") == 0) {
		fprintf(f, "%s: via relay %s over %s (%s)\n", who, str(r, "relay"),
		    str(r, "transport"), str(r, "relay_reason"));
		return;
	}
	if (strcmp(str(r, "path"), "direct") == 0 || !json_is_object(reason))
		return;
	strat = json_string_value(json_object_get(reason, "strategy"));
	my_nat = json_string_value(json_object_get(reason, "my_nat"));
	peer_nat = json_string_value(json_object_get(reason, "peer_nat"));
	why = json_string_value(json_object_get(reason, "why"));
	if (strat && peer_nat)
		fprintf(f, "%s: no direct path (%s vs %s; strategy %s)\n", who,
		    nat_kind(my_nat, NULL), nat_kind(peer_nat, json_string_value(
		    json_object_get(reason, "peer_filtering"))), strat);
	else
		fprintf(f, "%s: no direct path (%s)\n", who, why ? why : "unknown");
}

void
output_list(FILE *f, json_t *r)
{
	json_t *nets = json_object_get(r, "networks"), *n, *members, *m;
	size_t i, j;
	int width;
	char state[64];

	if (!json_array_size(nets)) {
		fprintf(f, "no networks (shoal create NAME, or shoal join NAME)\n");
		return;
	}
	json_array_foreach(nets, i, n) {
		/* '*' online, '-' offline, '?' still waiting for the owner */
		fprintf(f, "%s%c %s  [%s", i ? "\n" : "",
		    flag(n, "pending") ? '?' : flag(n, "online") ? '*' : '-',
		    str(n, "name"), flag(n, "online") ? "online" : "offline");
		if (flag(n, "pending"))
			fprintf(f, ", waiting for approval");
		if (flag(n, "owner"))
			fprintf(f, ", owner");
		if (flag(n, "locked"))
			fprintf(f, ", locked");
		if (strcmp(str(n, "approval"), "manual") == 0)
			fprintf(f, ", manual approval");
		fprintf(f, "]\n");

		members = json_object_get(n, "members");
		width = 8;
		json_array_foreach(members, j, m)
			if ((int)strlen(str(m, "nick")) > width)
				width = (int)strlen(str(m, "nick"));
		json_array_foreach(members, j, m) {
			member_state(m, state, sizeof(state));
			fprintf(f, "    %-15s %-*s  %s%s\n", str(m, "address"), width, str(m, "nick"),
			    state, flag(m, "owner") ? "  (owner)" : "");
		}
	}
}

void
output_ping(FILE *f, json_t *r)
{
	json_t *rtts = json_object_get(r, "rtt_ms"), *v;
	const char *addr = str(r, "address");
	const char *nick = json_string_value(json_object_get(r, "nick"));
	char who[128];
	size_t i;

	if (nick && nick[0])
		snprintf(who, sizeof(who), "%s (%s)", addr, nick);
	else
		snprintf(who, sizeof(who), "%s", addr);
	json_array_foreach(rtts, i, v) {
		if (json_is_number(v))
			fprintf(f, "reply from %s: time=%.2f ms\n", who, json_number_value(v));
		else
			fprintf(f, "no reply from %s: timed out\n", who);
	}
	fprintf(f, "%lld sent, %lld received\n",
	    (long long)json_integer_value(json_object_get(r, "sent")),
	    (long long)json_integer_value(json_object_get(r, "received")));
	no_path_line(f, r, nick && nick[0] ? nick : addr);
}

void
output_chat(FILE *f, json_t *messages)
{
	json_t *m;
	size_t i;

	json_array_foreach(messages, i, m) {
		time_t t = (time_t)(json_integer_value(json_object_get(m, "ts_ms")) / 1000);
		const char *where = strcmp(str(m, "kind"), "network") == 0 ? str(m, "network") :
		    json_is_string(json_object_get(m, "peer_nick")) ? str(m, "peer_nick") :
		    str(m, "peer");
		struct tm tm;
		char when[16];

		strftime(when, sizeof(when), "%H:%M:%S", localtime_r(&t, &tm));
		fprintf(f, "%s [%s] %s: %s\n", when, where, str(m, "from"),
		    flag(m, "sealed") ? "(a private message this node cannot open)" : str(m, "text"));
	}
}

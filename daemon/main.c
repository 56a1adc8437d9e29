/*
 * main: shoald's start-up order and orderly shutdown (reverse order, goto unwinding).
 * The command line is in args.c, the saved address in addrfile.c, the callback structs that
 * connect the engines in wiring.c.
 *
 * Start order: loop, identity, transport, netstack (with the saved address, or none yet),
 * peers, mediator client, shim socket (lanproxy), SOCKS5, expose/forward, control (last: it
 * commands the others, and the CLI finding its socket means we are up). Every engine exists
 * before the loop runs, so no callback ever finds one missing.
 * Runs as an ordinary user: nothing here needs privileges.
 * Owns: struct daemon and its lifetime. Must not: contain protocol logic of any module.
 */
#include "config.h"

#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "base/acceptor.h"
#include "base/addrwatch.h"
#include "base/fsloc.h"
#include "base/log.h"
#include "control/control.h"
#include "ui/ui.h"
#include "core/peer.h"
#include "core/relayclient.h"
#include "core/tcppunch.h"
#include "core/transport.h"
#include "crypto/identity.h"
#include "daemon/daemon.h"
#include "daemon/statefile.h"
#include "daemon/portsfile.h"
#include "lanproxy/server/lanproxy.h"
#include "medclient/medclient.h"
#include "netstack/netstack.h"
#include "ports/expose.h"
#include "ports/forward.h"
#include "portmap/portmap.h"
#include "socks/socks5.h"

static void
signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	log_info("event=shutdown signal=%d", w->signum);
	ev_break(loop, EVBREAK_ALL);
}

int
main(int argc, char **argv)
{
	struct daemon d;
	ev_signal sigint, sigterm;
	char err[256], node_id[2 * KEY_LEN + 1], socks_desc[300], shim_path[4200];
	char server_url[1024], ui_token[4200] = "";
	struct control_env ctl_env;
	int verbose = 0, rc;

	memset(&d, 0, sizeof(d));
	if ((rc = daemon_parse_args(argc, argv, &d.cfg, &verbose)) != 0)
		return rc < 0 ? 0 : rc;
	log_init("shoald", verbose ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	log_debug("event=fd_limit soft=%ld", acceptor_raise_fd_limit());
	if (sodium_init() < 0) {
		log_warnx("event=sodium_init_failed");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	rc = 1;

	if ((d.loop = ev_default_loop(EVFLAG_AUTO)) == NULL) {
		log_warnx("event=loop_failed");
		return 1;
	}
	if (identity_load_or_create(d.cfg.state_dir, "node.key", &d.key, err, sizeof(err)) != 0) {
		log_warnx("event=identity_failed state=%s reason=\"%s\"", d.cfg.state_dir, err);
		goto out_loop;
	}
	/* The next start without --server uses it (`shoal up` with nothing more). */
	if (d.cfg.server_given) {
		char line[sizeof(d.cfg.server) + 2];

		snprintf(line, sizeof(line), "%s\n", d.cfg.server);
		(void)statefile_write(d.cfg.state_dir, "server", line);
	}
	if ((d.tp = transport_new(d.loop, d.cfg.udp_port, daemon_udp_dispatch, &d)) == NULL)
		goto out_key;
	/*
	 * The netstack exists from start-up, so exposes and listeners made before the mediator
	 * answers work once it does. A known address lets the overlay work even if the mediator
	 * is down right now; without one, nothing leaves until WELCOME.
	 */
	if (addrfile_load(d.cfg.state_dir, &d.vnet.addr, &d.vnet.prefix_len) != 0)
		memset(&d.vnet, 0, sizeof(d.vnet));
	if ((d.ns = netstack_new(d.loop, d.vnet.addr, d.vnet.prefix_len, OVERLAY_MTU,
	    &daemon_netstack_ops, &d)) == NULL) {
		log_warnx("event=netstack_failed");
		goto out_transport;
	}
	if ((d.peers = peers_new(d.loop, &d.key, d.tp, &d.vnet, &daemon_peers_ops, &d)) == NULL) {
		log_warnx("event=peers_failed");
		goto out_netstack;
	}
	if ((d.tcp = tcppunch_new(d.loop, d.tp, &daemon_tcppunch_ops, &d)) == NULL) {
		log_warnx("event=tcppunch_failed");
		goto out_peers;
	}
	if ((d.relays = relayclient_new(d.loop, d.tp, &daemon_relayclient_ops, &d)) == NULL) {
		log_warnx("event=relayclient_failed");
		goto out_peers;
	}
	daemon_peerdir_init(&d);
	if ((d.med = daemon_medclient_new(&d)) == NULL) {
		log_warnx("event=mediator_failed");
		goto out_peers;
	}
	medclient_start(d.med);
	/* Without it a new address reaches the mediator at the next reconnect only. */
	if ((d.aw = addrwatch_new(d.loop, daemon_addrs_changed, &d)) == NULL)
		log_warn("event=addrwatch_failed");
	/* Without a mapping peers still punch; a failure here only loses a candidate. */
	if (d.cfg.portmap && (d.pm = portmap_new(d.loop, transport_port(d.tp),
	    &daemon_portmap_ops, &d)) != NULL)
		portmap_start(d.pm);
	if (fsloc_make_parent(d.cfg.control_path, err, sizeof(err)) != 0) {
		log_warnx("event=control_dir_failed path=%s reason=\"%s\"", d.cfg.control_path,
		    err);
		fprintf(stderr, "shoald: %s\n", err);
		goto out_mediator;
	}
	/* Without it only `shoal run` is unavailable (status says so): not worth failing for. */
	if (shim_socket_path(d.cfg.control_path, shim_path, sizeof(shim_path)) == 0)
		d.shim = shim_server_new(d.loop, d.ns, &d.vnet, &d.dir, shim_path,
		    d.cfg.control_path);
	if (d.shim)
		shim_server_allow_others(d.shim, d.cfg.allow_others);
	if (d.cfg.socks_port != 0) {
		if ((d.socks = socks_server_new(d.loop, d.ns, &d.vnet, &d.dir, d.cfg.socks_host,
		    d.cfg.socks_port)) == NULL)
			goto out_shim;
		socks_server_allow_others(d.socks, d.cfg.allow_others);
		snprintf(socks_desc, sizeof(socks_desc), "%s:%u", d.cfg.socks_host,
		    (unsigned)d.cfg.socks_port);
	} else {
		snprintf(socks_desc, sizeof(socks_desc), "off");
	}
	if ((d.expose = expose_table_new(d.loop, d.ns)) == NULL ||
	    (d.fwd = forward_table_new(d.loop, d.ns)) == NULL) {
		log_warnx("event=expose_tables_failed");
		goto out_expose;
	}
	forward_table_allow_others(d.fwd, d.cfg.allow_others);
	portsfile_restore(d.cfg.state_dir, d.expose, d.fwd);
	if (d.cfg.allow_others)
		log_warnx("event=allow_other_users hint=\"every user of this machine can use the "
		    "SOCKS5 port, forwards and shoal run aliases as this node\"");
	/* Last: it commands everything above, and the CLI finding its socket means we are up. */
	if (conn_string_format_list(&d.cfg.server_cs, server_url, sizeof(server_url)) != 0)
		server_url[0] = '\0';
	/* The window relays to the control socket, which exists before the loop runs. */
	if (d.cfg.ui_host[0] && (d.ui = ui_new(d.loop, d.cfg.ui_host, d.cfg.ui_port,
	    d.cfg.control_path, d.cfg.state_dir)) != NULL)
		snprintf(ui_token, sizeof(ui_token), "%s/ui.token", d.cfg.state_dir);
	ctl_env = (struct control_env){
		.loop = d.loop,
		.node_pub = d.key.pub,
		.vnet = &d.vnet,
		.server = server_url[0] ? server_url : NULL,
		.socks = d.socks ? socks_desc : NULL,
		.shim_path = d.shim ? shim_server_path(d.shim) : NULL,
		.shim = d.shim,
		.med = d.med,
		.portmap = d.pm,
		.peers = d.peers,
		.relays = d.relays,
		.expose = d.expose,
		.fwd = d.fwd,
		.dir = &d.dir,
		.ports_changed = daemon_ports_changed,
		.ports_arg = &d,
		.ui_url = d.ui ? ui_url(d.ui) : NULL,
		.ui_token_file = d.ui ? ui_token : NULL,
	};
	if ((d.ctl = control_new(&ctl_env, d.cfg.control_path)) == NULL)
		goto out_expose;

	ev_signal_init(&sigint, signal_cb, SIGINT);
	ev_signal_init(&sigterm, signal_cb, SIGTERM);
	ev_signal_start(d.loop, &sigint);
	ev_signal_start(d.loop, &sigterm);

	hex_encode(d.key.pub, KEY_LEN, node_id);
	log_info("event=started node_id=%s udp_port=%u control=%s socks=%s", node_id,
	    (unsigned)transport_port(d.tp), d.cfg.control_path, socks_desc);
	ev_run(d.loop, 0);
	rc = 0;

	ev_signal_stop(d.loop, &sigterm);
	ev_signal_stop(d.loop, &sigint);
	control_free(d.ctl);
out_expose:
	ui_free(d.ui);
	if (d.fwd)
		forward_table_free(d.fwd);
	if (d.expose)
		expose_table_free(d.expose);
	if (d.socks)
		socks_server_free(d.socks);
out_shim:
	shim_server_free(d.shim);
out_mediator:
	/* Before the mediator client: the removal may take a moment and changes nothing else. */
	portmap_free(d.pm);
	addrwatch_free(d.aw);
	medclient_free(d.med);
out_peers:
	relayclient_free(d.relays);
	tcppunch_free(d.tcp);
	peers_free(d.peers);
out_netstack:
	netstack_free(d.ns);
out_transport:
	transport_free(d.tp);
out_key:
	sodium_memzero(&d.key, sizeof(d.key));
out_loop:
	ev_loop_destroy(d.loop);
	log_info("event=stopped rc=%d", rc);
	return rc;
}

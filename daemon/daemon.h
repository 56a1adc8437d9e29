/*
 * daemon: shoald's one context, private to daemon/ (main.c, args.c, addrfile.c). No engine
 * sees it: main.c creates each engine with the few things it needs and wires the engines'
 * callback structs to each other. The config is read-only once the loop runs.
 */
#ifndef SHOAL_DAEMON_H
#define SHOAL_DAEMON_H

#include <ev.h>
#include <stdint.h>

#include "base/ip4.h"
#include "base/peerdir.h"
#include "mproto/msg.h"
#include "crypto/identity.h"
#include "crypto/noise.h"

struct addrwatch;
struct transport;
struct peers;
struct tcppunch;
struct relayclient;
struct medclient;
struct netstack;
struct socks_server;
struct control;
struct expose_table;
struct forward_table;
struct shim_server;
struct portmap;

struct daemon_config {
	char server[1024];              /* the connection string: --server, else remembered */
	int server_given;               /* on the command line or in the config file: remember it */
	struct conn_string server_cs;   /* parsed: the mediator's addresses and key */
	char state_dir[4096];
	char socks_host[256];           /* default 127.0.0.1 */
	uint16_t socks_port;            /* default 1080; 0 disables */
	char control_path[4096];        /* default $XDG_RUNTIME_DIR/shoal/shoald.sock */
	uint16_t udp_port;              /* 0: ephemeral */
	char nick[NICK_MAX_LEN + 1];    /* --nick, may be empty */
	int allow_others;               /* --allow-other-users: loopback listeners serve all */
	int portmap;                    /* ask the gateway for a port mapping (default on;
					 * --no-portmap or SHOAL_PORTMAP=off turn it off) */
	char ui_host[64];               /* the window's listener (default 127.0.0.1); "": off */
	uint16_t ui_port;               /* default 0: any free port */
};

struct daemon {
	struct ev_loop *loop;
	struct daemon_config cfg;
	struct noise_keypair key;       /* our long-term identity; engines borrow it */
	struct vnet vnet;               /* our address (0 until known), read by the engines */
	struct peerdir dir;             /* peer names and authorization, for the front ends */

	struct transport *tp;           /* core/transport.c: the peer UDP socket */
	struct peers *peers;            /* core/peer.c: sessions with co-members */
	struct tcppunch *tcp;           /* core/tcppunch.c: TCP hole punching and its links */
	struct relayclient *relays;     /* core/relayclient.c: relay pool RTTs, grants' links */
	struct netstack *ns;            /* netstack/: lwIP, from start-up */
	struct medclient *med;          /* medclient/ */
	struct portmap *pm;             /* portmap/: the gateway's port mapping; NULL when off */
	struct addrwatch *aw;           /* base/addrwatch: interface address changes; may be NULL */
	struct shim_server *shim;       /* lanproxy/server/: `shoal run`'s socket; may be NULL */
	struct socks_server *socks;     /* socks/; NULL with --socks off */
	struct expose_table *expose;    /* ports/expose.c */
	struct forward_table *fwd;      /* ports/forward.c */
	struct control *ctl;            /* control/: the CLI's Unix socket */
	struct ui *ui;                  /* ui/: the window; NULL with --ui off */
};

/* args.c: 0: run; -1: exit 0 (--help printed); >0: the exit code (message printed). */
int daemon_parse_args(int argc, char **argv, struct daemon_config *cfg, int *verbose);

/* wiring.c: addrwatch's callback: the machine's addresses changed -> medclient (LOCALS). */
void daemon_addrs_changed(void *arg);

/* wiring.c: control_env.ports_changed: saves the exposes and forwards (daemon/portsfile.h). */
void daemon_ports_changed(void *arg);

/* addrfile.c: our last address in STATE_DIR/address. load: 0, or -1 if absent or bad. */
void addrfile_save(const char *state_dir, uint32_t vaddr, uint8_t prefix_len);
int addrfile_load(const char *state_dir, uint32_t *vaddr, uint8_t *prefix_len);

/*
 * wiring.c: the engines' callback structs, each pointing at the engine that answers, with
 * the struct daemon as their argument.
 */
extern const struct netstack_ops daemon_netstack_ops;  /* output -> peers_send_ip */
extern const struct tcppunch_ops daemon_tcppunch_ops; /* up -> peers_punch through it */
extern const struct relayclient_ops daemon_relayclient_ops; /* report -> medclient,
							     * path -> peers_set_relay */
extern const struct peers_ops daemon_peers_ops;        /* deliver, peer_gone -> netstack */
/* transport receive: byte 0 decides (probe replies -> medclient, the rest -> peers). */
void daemon_udp_dispatch(void *arg, const struct endpoint *from, uint8_t *pkt, size_t len);
/* d->dir: resolve -> medclient_resolve, is_peer -> peers_is_peer. */
void daemon_peerdir_init(struct daemon *d);
/* portmap ops: changed -> medclient_set_mapped (the mediator tells the peers). */
extern const struct portmap_ops daemon_portmap_ops;
/* The mediator client, given its part of the config; ops: address -> daemon_set_address,
 * authorize / revoke -> the peer table. */
struct medclient *daemon_medclient_new(struct daemon *d);
/* Our address changed (WELCOME, or the saved one at start-up): d->vnet, the netstack, the
 * address file. */
void daemon_set_address(struct daemon *d, uint32_t vaddr, uint8_t prefix_len);

#endif

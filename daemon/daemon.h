/*
 * daemon: the one context of shoald. main() owns it; every module gets a pointer to it and
 * hangs its state off it. No module keeps global mutable state of its own.
 * The config is read-only once the loop runs.
 */
#ifndef SHOAL_DAEMON_H
#define SHOAL_DAEMON_H

#include <ev.h>
#include <stdint.h>

#include "mproto/msg.h"
#include "crypto/noise.h"

struct transport;
struct peers;
struct medclient;
struct netstack;
struct socks_server;
struct control;
struct expose_table;
struct forward_table;
struct shim_server;

struct daemon_config {
	char server_host[256];          /* from the connection string */
	uint16_t server_port;
	uint8_t server_pub[KEY_LEN];
	char state_dir[4096];
	char socks_host[256];           /* default 127.0.0.1 */
	uint16_t socks_port;            /* default 1080; 0 disables */
	char control_path[4096];        /* default $XDG_RUNTIME_DIR/shoal/shoald.sock */
	uint16_t udp_port;              /* 0: ephemeral */
	char nick[NICK_MAX_LEN + 1];    /* --nick, may be empty */
};

struct daemon {
	struct ev_loop *loop;
	struct daemon_config cfg;
	struct noise_keypair key;       /* our long-term identity */
	uint32_t vaddr;                 /* our virtual address; 0 until the first WELCOME */
	uint8_t prefix_len;
	char nick[NICK_MAX_LEN + 1];    /* as the mediator last confirmed it */

	struct transport *tp;           /* core/transport.c: the peer UDP socket */
	struct peers *peers;            /* core/peer.c: sessions with co-members */
	struct medclient *med;           /* medclient/medclient.c */
	struct netstack *ns;            /* netstack/: lwIP */
	struct socks_server *socks;     /* socks/ */
	struct control *ctl;            /* control/control.c: the CLI's Unix socket */
	struct expose_table *expose;    /* ports/expose.c */
	struct forward_table *fwd;      /* ports/forward.c */
	struct shim_server *shim;       /* lanproxy/server/shim_server.c: `shoal run`'s socket; may be NULL */
};

/*
 * Called by the mediator client when WELCOME gives us our address: sets d->vaddr and tells
 * the netstack. Lives in daemon/main.c.
 */
void daemon_set_address(struct daemon *d, uint32_t vaddr, uint8_t prefix_len);

#endif

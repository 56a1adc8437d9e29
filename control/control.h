/*
 * control: the daemon's Unix control socket for the `shoal` CLI (and later the UI).
 * Protocol: newline-delimited JSON, one request object per line, one response per request
 * (docs/PROTOCOL.md, "Control socket"). The socket file is created mode 0600 in a directory
 * only its user can enter.
 *
 * Control commands exactly what struct control_env names and knows nothing else of the
 * daemon: whoever wires it (daemon/main.c) fills the env once.
 * Owns: the listening socket and each client connection. Borrows everything in the env.
 */
#ifndef SHOAL_CONTROL_H
#define SHOAL_CONTROL_H

#include <stdint.h>

struct ev_loop;
struct vnet;
struct medclient;
struct portmap;
struct peers;
struct relayclient;
struct expose_table;
struct forward_table;
struct peerdir;
struct shim_server;
struct control;

/*
 * What the control socket reads and drives. control_new copies the struct; what its pointers
 * point to must outlive the control (and may change under it: vnet is read on every use).
 * A NULL engine (med, peers, expose, fwd) makes its commands answer "not available".
 */
struct control_env {
	struct ev_loop *loop;
	const uint8_t *node_pub;        /* our public key, KEY_LEN bytes */
	const struct vnet *vnet;        /* our address (base/ip4.h); addr 0: none yet */
	const char *server;             /* the mediator connection string; NULL: unknown */
	const char *socks;              /* the SOCKS5 listener, "HOST:PORT"; NULL: off */
	const char *shim_path;          /* `shoal run`'s socket; NULL: `shoal run` unavailable */
	const struct shim_server *shim; /* its failed virtual listens; NULL with shim_path */
	struct medclient *med;          /* membership view, requests, our nick */
	struct portmap *portmap;        /* the gateway's port mapping; NULL: turned off */
	struct peers *peers;            /* path status, ping */
	struct relayclient *relays;     /* relay pool and grants (names, reasons); may be NULL */
	struct expose_table *expose;
	struct forward_table *fwd;
	const struct peerdir *dir;      /* name -> peer: the resolver every front end shares */
	/* After an expose or forward was added or removed (the owner saves them); may be NULL. */
	void (*ports_changed)(void *arg);
	void *ports_arg;
	const char *ui_url;             /* the window, "http://127.0.0.1:PORT/"; NULL: off */
	const char *ui_token_file;      /* where its token is (`shoal ui` reads it) */
};

/* Listens on path; NULL on failure (logged). */
struct control *control_new(const struct control_env *env, const char *path);
void control_free(struct control *c);

#endif

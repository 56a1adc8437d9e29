/*
 * store_backend: the contract between the store's front (store.c, chatstore.c: the public
 * functions of store.h and chatstore.h) and its backends (store_sqlite.c + chatstore_sqlite.c,
 * store_pg.c + chatstore_pg.c). Each backend embeds struct store first in its own handle and
 * fills both ops tables; the front only forwards, so callers never know which database runs.
 * Semantics are those documented in store.h / chatstore.h, identical for every backend.
 */
#ifndef SHOAL_SERVER_STORE_BACKEND_H
#define SHOAL_SERVER_STORE_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "server/chatstore.h"
#include "server/store.h"

/* One node's key (nodes_each). */
typedef int (*store_key_cb)(void *arg, const uint8_t key[KEY_LEN]);

struct store_ops {
	void (*close)(struct store *st);
	int (*clear)(struct store *st);
	int (*node_get_or_create)(struct store *st, const uint8_t key[KEY_LEN], uint32_t range,
	    uint8_t prefix_len, struct store_node *out, int *created);
	int (*node_get)(struct store *st, const uint8_t key[KEY_LEN], struct store_node *out);
	int (*node_set_nick)(struct store *st, const uint8_t key[KEY_LEN], const char *nick);
	int (*node_touch)(struct store *st, const uint8_t key[KEY_LEN], int64_t when);
	int (*nodes_reclaim)(struct store *st, int64_t before, unsigned *removed);
	int (*network_create)(struct store *st, const char *name, const uint8_t owner[KEY_LEN],
	    const char *pwhash, uint8_t flags, struct store_network *out);
	int (*network_get)(struct store *st, const char *name, struct store_network *out);
	int (*network_delete)(struct store *st, int64_t id);
	int (*network_set_pwhash)(struct store *st, int64_t id, const char *pwhash);
	int (*network_set_flags)(struct store *st, int64_t id, uint8_t flags);
	int (*member_add)(struct store *st, int64_t net, const uint8_t key[KEY_LEN], int pending,
	    int online);
	int (*member_get)(struct store *st, int64_t net, const uint8_t key[KEY_LEN],
	    struct store_member *out);
	/* field: 0 remove, 1 set pending, 2 set online (val) */
	int (*member_change)(struct store *st, int64_t net, const uint8_t key[KEY_LEN], int field,
	    int val);
	int (*members_each)(struct store *st, int64_t net, store_member_cb cb, void *arg);
	/* key NULL: every node's memberships, in join order (store_warm) */
	int (*node_networks_each)(struct store *st, const uint8_t key[KEY_LEN],
	    store_network_cb cb, void *arg);
	/* every node's key, in no order (store_warm: those in no network); stops at cb's
	 * nonzero, which it returns */
	int (*nodes_each)(struct store *st, store_key_cb cb, void *arg);
};

struct chatstore_ops {
	int (*resend)(struct store *st, const uint8_t sender[KEY_LEN], uint32_t client_id);
	int (*add)(struct store *st, const char *conv, const struct chat_row *r,
	    const uint8_t (*to)[KEY_LEN], size_t n, unsigned keep, unsigned box_max);
	int (*pending)(struct store *st, const uint8_t node[KEY_LEN], uint64_t after,
	    unsigned max, chat_row_cb cb, void *arg);
	int (*ack)(struct store *st, const uint8_t node[KEY_LEN], uint64_t seq);
	int (*history)(struct store *st, const char *conv, unsigned limit, chat_row_cb cb,
	    void *arg);
};

enum { MEMBER_REMOVE = 0, MEMBER_PENDING = 1, MEMBER_ONLINE = 2 };

struct store {                           /* first member of each backend's handle */
	const struct store_ops *ops;
	const struct chatstore_ops *chat;
	const char *kind;               /* "sqlite" or "postgresql", for logs */
	struct membercache *mc;         /* the front's (store.c), not the backend's */
	struct nodecache *nc;           /* likewise */
	struct netcache *netc;          /* likewise */
};

struct store *store_sqlite_open(const char *path, char *err, size_t errlen);
struct store *store_pg_open(const char *url, char *err, size_t errlen);
extern const struct chatstore_ops chatstore_sqlite_ops;
extern const struct chatstore_ops chatstore_pg_ops;

/* Each backend's own handle, for its chatstore half over the same connection. */
struct sqlite3 *store_sqlite_db(struct store *st);
struct pgq_conn *store_pg_conn(struct store *st);
/* The PostgreSQL backend's connection for writes nobody waits for (pgasync.h), started once
 * the server has its loop (cluster_new); until then, and in tests and tools, NULL: those
 * writes are synchronous. */
struct ev_loop;
struct pgasync;
int store_pg_async_start(struct store *st, struct ev_loop *loop, char *err, size_t errlen);
struct pgasync *store_pg_async(struct store *st);

#endif

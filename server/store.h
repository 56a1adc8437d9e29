/*
 * store: the mediator's persistent state: nodes with their stable virtual addresses and nicks,
 * networks with their settings and password hashes, and memberships with their pending and
 * online flags. Two backends with the same semantics (store_backend.h): SQLite (DIR/mediator.db;
 * WAL mode, foreign keys on, synchronous=NORMAL: a machine crash may lose the last changes,
 * never consistency), the default for one box, and PostgreSQL (store_open("postgresql://...")),
 * which several mediator instances share. Every change is one transaction, so state survives
 * kill -9 at any point.
 * Pure persistence: no policy (who may do what lives in mediator.c), no I/O besides the DB.
 * Owns: the database connection.
 */
#ifndef SHOAL_SERVER_STORE_H
#define SHOAL_SERVER_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "base/proto.h"

/* Result codes beyond 0 (done) and -1 (database error, already logged). */
enum { STORE_NOT_FOUND = 1, STORE_EXISTS = 2, STORE_FULL = 3 };

/* crypto_pwhash_STRBYTES is 128; kept literal so this header does not need sodium.h. */
#define STORE_PWHASH_MAX 128

struct store;

struct store_node {                      /* a copy; owned by the caller */
	uint8_t key[KEY_LEN];
	uint32_t address;               /* host byte order */
	char nick[NICK_MAX_LEN + 1];
	int64_t last_seen;              /* Unix seconds, as read; 0: not read */
	int mail_empty;                 /* 1: its chat mailbox held nothing when read (node_get) */
};

struct store_network {                   /* a copy; owned by the caller */
	int64_t id;
	char name[NAME_MAX_LEN + 1];
	uint8_t owner[KEY_LEN];
	uint8_t flags;                  /* NETF_* */
	char pwhash[STORE_PWHASH_MAX];  /* crypto_pwhash_str output; "" = no password */
};

struct store_member {                    /* a copy; owned by the caller */
	uint8_t key[KEY_LEN];
	uint32_t address;
	char nick[NICK_MAX_LEN + 1];
	int pending;
	int online;                     /* the member's own per-network online switch */
};

/* path: an SQLite file, ":memory:" (fuzzing), or a libpq URL starting with postgresql:// or
 * postgres://. Returns NULL with a reason in err. */
struct store *store_open(const char *path, char *err, size_t errlen);
void store_close(struct store *st);
/* 1 when path names a PostgreSQL database (store_open would use libpq). */
int store_is_pg_url(const char *path);
/* "sqlite" or "postgresql". */
const char *store_kind(const struct store *st);
/* Empties every table: a fuzz target reuses one in-memory store instead of building the
 * schema for each input (which cost 1 ms of its ~1.3). 0 or -1. */
int store_clear(struct store *st);

/*
 * Finds the node, or creates it with the next free address of range/prefix_len (network and
 * broadcast addresses skipped; past the top, the lowest address a reclaimed node left) and
 * nick "node-<6 hex digits of key>".
 * Returns 0, STORE_FULL (range exhausted) or -1. *created says whether it was new.
 */
int store_node_get_or_create(struct store *st, const uint8_t key[KEY_LEN], uint32_t range,
    uint8_t prefix_len, struct store_node *out, int *created);
int store_node_get(struct store *st, const uint8_t key[KEY_LEN], struct store_node *out);
int store_node_set_nick(struct store *st, const uint8_t key[KEY_LEN], const char *nick);
/* The node was seen at `when` (Unix seconds; 0: now). 0 or -1. */
int store_node_touch(struct store *st, const uint8_t key[KEY_LEN], int64_t when);
/*
 * n (a row as read) connected now: its last_seen is written, unless the row says it was seen
 * within STORE_SEEN_EVERY_S. Every node comes back within seconds of a mediator restart, and
 * one write each was a quarter of PostgreSQL's statements in such a storm; reclaiming counts
 * in days (--reclaim-days >= 1) and touches connected nodes first, so an hour is no loss.
 */
enum { STORE_SEEN_EVERY_S = 3600 };
int store_node_seen(struct store *st, const struct store_node *n);
/*
 * Deletes nodes last seen before `before` (Unix seconds) that belong to no network and own
 * none: registrations nobody uses. Their addresses are free for reuse once the range's top is
 * reached (store_node_get_or_create). 0 with *removed set, or -1.
 */
int store_nodes_reclaim(struct store *st, int64_t before, unsigned *removed);

/* Creates the network and its owner's membership (online) in one transaction. */
int store_network_create(struct store *st, const char *name, const uint8_t owner[KEY_LEN],
    const char *pwhash, uint8_t flags, struct store_network *out);
int store_network_get(struct store *st, const char *name, struct store_network *out);
int store_network_delete(struct store *st, int64_t id);
int store_network_set_pwhash(struct store *st, int64_t id, const char *pwhash);
int store_network_set_flags(struct store *st, int64_t id, uint8_t flags);

int store_member_add(struct store *st, int64_t net, const uint8_t key[KEY_LEN], int pending,
    int online);
int store_member_get(struct store *st, int64_t net, const uint8_t key[KEY_LEN],
    struct store_member *out);
int store_member_remove(struct store *st, int64_t net, const uint8_t key[KEY_LEN]);
int store_member_set_pending(struct store *st, int64_t net, const uint8_t key[KEY_LEN],
    int pending);
int store_member_set_online(struct store *st, int64_t net, const uint8_t key[KEY_LEN],
    int online);

/*
 * Iteration. The callback gets a copy and may call other store functions (each call prepares
 * its own statement). A non-zero return from cb stops the walk and is returned.
 */
typedef int (*store_member_cb)(void *arg, const struct store_member *m);
typedef int (*store_network_cb)(void *arg, const struct store_network *n,
    const struct store_member *me);
/* Every member of net, pending ones included, in join order. */
int store_members_each(struct store *st, int64_t net, store_member_cb cb, void *arg);
/* Every network key belongs to (pending included), with key's own membership row. */
int store_node_networks_each(struct store *st, const uint8_t key[KEY_LEN], store_network_cb cb,
    void *arg);

/*
 * Member lists and a node's networks are read from copies kept in memory
 * (server/membercache.h, server/nodecache.h) that follow every write made through this store.
 * Writes made elsewhere (another mediator instance on the same PostgreSQL) must be told, or
 * the copies lag by up to a minute:
 * - key's membership in net changed (joined, approved, switched, left, evicted);
 * - key's nick changed;
 * - a network's settings changed, or a network was deleted;
 * - changes may have been missed (events lost): every copy is read again.
 */
void store_member_changed(struct store *st, int64_t net, const uint8_t key[KEY_LEN]);
/* Only key's online switch in net changed, to online: the copies take it without a read
 * when they hold the row (else as store_member_changed). */
void store_member_switched(struct store *st, int64_t net, const uint8_t key[KEY_LEN],
    int online);
void store_node_changed(struct store *st, const uint8_t key[KEY_LEN]);
void store_networks_changed(struct store *st);
void store_changes_missed(struct store *st);
/* Fills the copies with every membership in one read, so that a mediator starting under a
 * crowd of reconnecting nodes does not read each node's networks (on every instance, for
 * every node) one query at a time. Nothing when there are more rows than the copies keep
 * (they are read on demand then). 0, or -1 when the database failed (nothing is lost:
 * the copies are read on demand). */
int store_warm(struct store *st);

#endif

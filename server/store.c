/*
 * store: the front of the store (store.h): picks the backend from the path and forwards each
 * call to it (store_backend.h). Must not touch: any database API.
 */
#include "config.h"
#include "server/store.h"

#include <string.h>

#include "server/store_backend.h"

int
store_is_pg_url(const char *path)
{
	return strncmp(path, "postgresql://", 13) == 0 || strncmp(path, "postgres://", 11) == 0;
}

struct store *
store_open(const char *path, char *err, size_t errlen)
{
	return store_is_pg_url(path) ? store_pg_open(path, err, errlen) :
	    store_sqlite_open(path, err, errlen);
}

const char *
store_kind(const struct store *st)
{
	return st->kind;
}

void
store_close(struct store *st)
{
	if (st != NULL)
		st->ops->close(st);
}

int
store_clear(struct store *st)
{
	return st->ops->clear(st);
}

int
store_node_get_or_create(struct store *st, const uint8_t key[KEY_LEN], uint32_t range,
    uint8_t prefix_len, struct store_node *out, int *created)
{
	return st->ops->node_get_or_create(st, key, range, prefix_len, out, created);
}

int
store_node_get(struct store *st, const uint8_t key[KEY_LEN], struct store_node *out)
{
	return st->ops->node_get(st, key, out);
}

int
store_node_set_nick(struct store *st, const uint8_t key[KEY_LEN], const char *nick)
{
	return st->ops->node_set_nick(st, key, nick);
}

int
store_node_touch(struct store *st, const uint8_t key[KEY_LEN], int64_t when)
{
	return st->ops->node_touch(st, key, when);
}

int
store_nodes_reclaim(struct store *st, int64_t before, unsigned *removed)
{
	return st->ops->nodes_reclaim(st, before, removed);
}

int
store_network_create(struct store *st, const char *name, const uint8_t owner[KEY_LEN],
    const char *pwhash, uint8_t flags, struct store_network *out)
{
	return st->ops->network_create(st, name, owner, pwhash, flags, out);
}

int
store_network_get(struct store *st, const char *name, struct store_network *out)
{
	return st->ops->network_get(st, name, out);
}

int
store_network_delete(struct store *st, int64_t id)
{
	return st->ops->network_delete(st, id);
}

int
store_network_set_pwhash(struct store *st, int64_t id, const char *pwhash)
{
	return st->ops->network_set_pwhash(st, id, pwhash);
}

int
store_network_set_flags(struct store *st, int64_t id, uint8_t flags)
{
	return st->ops->network_set_flags(st, id, flags);
}

int
store_member_add(struct store *st, int64_t net, const uint8_t key[KEY_LEN], int pending,
    int online)
{
	return st->ops->member_add(st, net, key, pending, online);
}

int
store_member_get(struct store *st, int64_t net, const uint8_t key[KEY_LEN],
    struct store_member *out)
{
	return st->ops->member_get(st, net, key, out);
}

int
store_member_remove(struct store *st, int64_t net, const uint8_t key[KEY_LEN])
{
	return st->ops->member_change(st, net, key, MEMBER_REMOVE, 0);
}

int
store_member_set_pending(struct store *st, int64_t net, const uint8_t key[KEY_LEN], int pending)
{
	return st->ops->member_change(st, net, key, MEMBER_PENDING, pending ? 1 : 0);
}

int
store_member_set_online(struct store *st, int64_t net, const uint8_t key[KEY_LEN], int online)
{
	return st->ops->member_change(st, net, key, MEMBER_ONLINE, online ? 1 : 0);
}

int
store_members_each(struct store *st, int64_t net, store_member_cb cb, void *arg)
{
	return st->ops->members_each(st, net, cb, arg);
}

int
store_node_networks_each(struct store *st, const uint8_t key[KEY_LEN], store_network_cb cb,
    void *arg)
{
	return st->ops->node_networks_each(st, key, cb, arg);
}

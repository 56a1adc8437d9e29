/*
 * relaypool: see relaypool.h. A fixed array: the pool is small (RELAYPOOL_MAX) and every walk
 * over it is bounded by that.
 */
#include "config.h"
#include "server/relaypool.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct relaypool {
	struct relaypool_entry e[RELAYPOOL_MAX];
	size_t n;
	uint32_t next_id;               /* ids are never reused; past 65535 none are left */
};

struct relaypool *
relaypool_new(void)
{
	struct relaypool *p = calloc(1, sizeof(*p));

	if (p)
		p->next_id = 1;
	return p;
}

void
relaypool_free(struct relaypool *p)
{
	if (p == NULL)
		return;
	sodium_memzero(p, sizeof(*p));
	free(p);
}

static struct relaypool_entry *
find_key(struct relaypool *p, const uint8_t *static_key)
{
	size_t i;

	for (i = 0; i < p->n; i++) {
		if (static_key == NULL ? p->e[i].embedded :
		    !p->e[i].embedded && memcmp(p->e[i].static_key, static_key, KEY_LEN) == 0)
			return &p->e[i];
	}
	return NULL;
}

/* A free slot: a new one, or the dead relay silent the longest. */
static struct relaypool_entry *
slot(struct relaypool *p)
{
	struct relaypool_entry *old = NULL;
	size_t i, alive = 0;

	for (i = 0; i < p->n; i++)
		alive += p->e[i].alive != 0;
	/* MSG_RELAYS carries at most RELAY_POOL_MAX: a relay past that could never be used. */
	if (alive >= RELAY_POOL_MAX)
		return NULL;
	if (p->n < RELAYPOOL_MAX)
		return &p->e[p->n++];
	for (i = 0; i < p->n; i++)
		if (!p->e[i].alive && (old == NULL || p->e[i].last_seen < old->last_seen))
			old = &p->e[i];
	return old;
}

struct relaypool_entry *
relaypool_register(struct relaypool *p, const uint8_t *static_key, const char *name,
    const struct endpoint *udp, uint16_t tcp_port, void *conn, double now)
{
	struct relaypool_entry *e = find_key(p, static_key);

	if (e == NULL) {
		if (p->next_id > 0xffff || (e = slot(p)) == NULL)
			return NULL;
		memset(e, 0, sizeof(*e));
		e->id = (uint16_t)p->next_id++;
		e->embedded = static_key == NULL;
		if (static_key)
			memcpy(e->static_key, static_key, KEY_LEN);
		randombytes_buf(e->relay_key, sizeof(e->relay_key));
	} else if (!e->alive) {
		size_t i, alive = 0;

		for (i = 0; i < p->n; i++)
			alive += p->e[i].alive != 0;
		if (alive >= RELAY_POOL_MAX)
			return NULL;
	}
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->udp = *udp;
	e->udp.via = 0;
	e->tcp_port = tcp_port;
	e->conn = conn;
	e->alive = 1;
	e->last_seen = now;
	return e;
}

int
relaypool_stats(struct relaypool *p, struct relaypool_entry *e,
    const struct msg_relay_stats *st, double now)
{
	(void)p;
	e->stats = *st;
	e->last_seen = now;
	if (e->logged_at != 0 && now - e->logged_at < RELAYPOOL_LOG_EVERY)
		return 0;
	e->logged_at = now;
	return 1;
}

int
relaypool_down(struct relaypool *p, struct relaypool_entry *e)
{
	int was = e->alive;

	(void)p;
	e->alive = 0;
	e->conn = NULL;
	e->stats.pairs = 0;
	return was;
}

int
relaypool_expire(struct relaypool *p, double now)
{
	size_t i;
	int n = 0;

	/* The embedded relay reports through the same call, from the server's own timer. */
	for (i = 0; i < p->n; i++)
		if (p->e[i].alive && now - p->e[i].last_seen > RELAYPOOL_DEAD_AFTER)
			n += relaypool_down(p, &p->e[i]);
	return n;
}

struct relaypool_entry *
relaypool_find(struct relaypool *p, uint16_t id)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		if (p->e[i].id == id && id != 0)
			return &p->e[i];
	return NULL;
}

struct relaypool_entry *
relaypool_find_conn(struct relaypool *p, const void *conn)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		if (conn != NULL && p->e[i].conn == conn)
			return &p->e[i];
	return NULL;
}

static int
by_id(const void *a, const void *b)
{
	const struct relaypool_entry *x = *(struct relaypool_entry *const *)a;
	const struct relaypool_entry *y = *(struct relaypool_entry *const *)b;

	return (int)x->id - (int)y->id;
}

size_t
relaypool_alive(struct relaypool *p, struct relaypool_entry **out, size_t max)
{
	size_t i, k = 0;

	for (i = 0; i < p->n && k < max; i++)
		if (p->e[i].alive)
			out[k++] = &p->e[i];
	qsort(out, k, sizeof(out[0]), by_id);
	return k;
}

void
relaypool_msg(struct relaypool *p, uint32_t local_addr, struct msg_relays *out)
{
	struct relaypool_entry *live[RELAY_POOL_MAX];
	size_t i, n = relaypool_alive(p, live, RELAY_POOL_MAX);

	memset(out, 0, sizeof(*out));
	for (i = 0; i < n; i++) {
		struct msg_relay_info *ri = &out->relays[out->n];

		ri->udp = live[i]->udp;
		if (ri->udp.addr == 0)
			ri->udp.addr = local_addr;
		if (ri->udp.addr == 0)
			continue;
		ri->id = live[i]->id;
		snprintf(ri->name, sizeof(ri->name), "%s", live[i]->name);
		ri->tcp_port = live[i]->tcp_port;
		out->n++;
	}
}

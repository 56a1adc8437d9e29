/*
 * authz: the authorization policy, the one place that decides who is an authorized peer.
 * Rule: a member is our peer when some network has both us and it as full (non-pending)
 * members, both switched on there (MEMF_ACTIVE, whether or not connected to the mediator).
 * Never ourselves. The decision goes to the owner through ops->authorize / ops->revoke.
 *
 * Owns: the set of keys authorized so far and what the owner was told about each (struct
 * auth), so unchanged members cause no calls. Must not: change the view.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "base/ip4.h"
#include "base/log.h"
#include "medclient/medclient_int.h"

/* See MEMF_ACTIVE in proto.h: a member switched on in a network we are switched on in stays
 * our peer while its mediator connection comes and goes. */
static int
full_active(uint8_t flags)
{
	return (flags & MEMF_ACTIVE) && !(flags & MEMF_PENDING);
}

static int
eps_equal(const struct endpoint *a, size_t na, const struct endpoint *b, size_t nb)
{
	size_t i;

	if (na != nb)
		return 0;
	for (i = 0; i < na; i++)
		if (!ep_same_addr(&a[i], &b[i]))
			return 0;
	return 1;
}

/* The member record that authorizes key, or NULL when no network makes it our peer. */
static const struct med_member *
auth_source(const struct medclient *m, const uint8_t key[KEY_LEN])
{
	const struct med_network *n;
	const struct med_member *mem;

	for (n = m->nets; n; n = n->hh.next) {
		if (!full_active(n->my_flags))
			continue;
		HASH_FIND(hh, n->members, key, KEY_LEN, mem);
		if (mem && full_active(mem->flags))
			return mem;
	}
	return NULL;
}

void
med_authz_update(struct medclient *m, const uint8_t key[KEY_LEN])
{
	const struct med_member *src;
	struct auth *a;
	char id[KEY_SHORT_LEN], ip[IP4_STR_LEN];

	if (med_is_self(m, key))
		return;
	src = auth_source(m, key);
	HASH_FIND(hh, m->auth, key, KEY_LEN, a);
	key_short(key, id);
	if (src) {
		/* A member that lost its mediator connection is reported without endpoints: its
		 * endpoints are unknown, not gone, so keep using the ones we had. */
		if (a && a->address == src->address && src->n_endpoints == 0)
			return;
		if (a && a->address == src->address &&
		    eps_equal(a->endpoints, a->n_endpoints, src->endpoints, src->n_endpoints))
			return;
		if (!a) {
			if (!(a = calloc(1, sizeof(*a)))) {
				log_warn("event=mediator_alloc_failed");
				return;
			}
			memcpy(a->key, key, KEY_LEN);
			HASH_ADD(hh, m->auth, key, KEY_LEN, a);
		}
		a->address = src->address;
		a->n_endpoints = src->n_endpoints;
		memcpy(a->endpoints, src->endpoints, src->n_endpoints * sizeof(struct endpoint));
		log_info("event=peer_authorized peer=%s addr=%s endpoints=%u", id,
		    ip4_str(src->address, ip), src->n_endpoints);
		if (m->ops->authorize)
			m->ops->authorize(m->ops_arg, key, src->address, src->endpoints,
			    src->n_endpoints);
	} else if (a) {
		HASH_DEL(m->auth, a);
		free(a);
		log_info("event=peer_revoked peer=%s", id);
		if (m->ops->revoke)
			m->ops->revoke(m->ops_arg, key);
	}
}

void
med_authz_update_network(struct medclient *m, const struct med_network *n)
{
	const struct med_member *mem;

	for (mem = n->members; mem; mem = mem->hh.next)
		med_authz_update(m, mem->key);
}

/* Entries were removed: only keys we authorized can lose their authorization. */
void
med_authz_update_authorized(struct medclient *m)
{
	struct auth *a, *tmp;
	uint8_t key[KEY_LEN];

	HASH_ITER(hh, m->auth, a, tmp) {
		memcpy(key, a->key, KEY_LEN);
		med_authz_update(m, key);       /* may free a; tmp stays valid */
	}
}

void
med_authz_free(struct medclient *m)
{
	struct auth *a, *tmp;

	HASH_ITER(hh, m->auth, a, tmp) {
		HASH_DEL(m->auth, a);
		free(a);
	}
}

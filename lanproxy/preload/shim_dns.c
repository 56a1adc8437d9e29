/*
 * shim_dns: peer names for programs under `shoal run`. getaddrinfo, gethostbyname,
 * gethostbyname2, gethostbyname_r and gethostbyname2_r answer a peer's nick or node id
 * ("bob", "bob.shoal", "3f2a9c01") with its 5.x address, asked of shoald (SHIM_RESOLVE);
 * getnameinfo, gethostbyaddr and gethostbyaddr_r answer a 5.x address of our network with
 * the member's "NICK.shoal" (SHIM_NAME_OF), so servers log and check peers by name.
 *
 * Only names that look like ours are asked: a single label or a name ending in ".shoal"
 * (shim_name_is_peerish), and not our own host name (programs resolve it to find themselves;
 * a peer with the same nick must not take it over). Everything else, and every name shoald
 * does not know, goes to libc unchanged, so ordinary DNS names are never delayed: the only
 * cost for them is a string scan.
 *
 * Lists are built the way glibc's freeaddrinfo frees them (one malloc per addrinfo holding
 * its sockaddr, ai_canonname a separate malloc on the first node), so freeaddrinfo stays
 * libc's and lists from both sources mix safely. gethostbyname's result lives in
 * thread-local storage (glibc's is static; per thread is strictly safer).
 * Must not touch: sockets, the fd table, the daemon connection's internals.
 */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "lanproxy/preload/shim_int.h"

/* Is name this machine's own host name (or its first label)? */
static int
is_own_hostname(const char *name)
{
	char host[256];
	size_t len = strlen(name), hl;
	const char *dot;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (gethostname(host, sizeof(host)) != 0)
		return 0;
	host[sizeof(host) - 1] = '\0';
	hl = strlen(host);
	if (hl == len && strncasecmp(host, name, len) == 0)
		return 1;
	dot = strchr(host, '.');
	return dot && (size_t)(dot - host) == len && strncasecmp(host, name, len) == 0;
}

/* The peer's vaddr if name is one shoald knows, else 0 (then libc answers). */
static uint32_t
peer_lookup(const char *name)
{
	uint32_t v;

	if (!name || !shim_enabled() || !shim_name_is_peerish(name) || is_own_hostname(name))
		return 0;
	if (shim_resolve(name, &v) == -1)
		return 0;
	return v;
}

/* ---- getaddrinfo ---- */

/* One node as glibc lays it out: freeaddrinfo frees it with one free(). */
struct ai_node {
	struct addrinfo ai;
	union {
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} sa;
};

struct ai_kind {
	int socktype, protocol;
	const char *proto_name;         /* for getservbyname; NULL: takes no service name */
};

static const struct ai_kind ai_kinds[] = {
	{ SOCK_STREAM, IPPROTO_TCP, "tcp" },
	{ SOCK_DGRAM, IPPROTO_UDP, "udp" },
	{ SOCK_RAW, 0, NULL },
};

/* A service as a port number, or -1 if it is not all digits (or out of range). */
static int
numeric_port(const char *s)
{
	unsigned long v = 0;
	const char *p;

	if (!*s)
		return -1;
	for (p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (unsigned long)(*p - '0');
		if (v > 65535)
			return -1;
	}
	return (int)v;
}

/* The port for service under kind k: 0.., -1 not available for this kind. */
static int
service_port(const char *service, const struct ai_kind *k, int numeric)
{
	struct servent se, *r = NULL;
	char buf[1024];

	if (!service)
		return 0;
	if (numeric >= 0)
		return numeric;
	if (!k->proto_name)
		return -1;
	if (getservbyname_r(service, k->proto_name, &se, buf, sizeof(buf), &r) != 0 || !r)
		return -1;
	return ntohs((uint16_t)r->s_port);
}

static void
ai_free_list(struct addrinfo *ai)
{
	struct addrinfo *next;

	for (; ai; ai = next) {
		next = ai->ai_next;
		free(ai->ai_canonname);
		free(ai);
	}
}

/* 0 and *res, or an EAI_* code; 1 if the hints are unusual enough to leave to libc. */
static int
build_ai(const char *name, uint32_t vaddr, const char *service, const struct addrinfo *hints,
    struct addrinfo **res)
{
	int flags = hints ? hints->ai_flags : 0;
	int family = hints ? hints->ai_family : AF_UNSPEC;
	int socktype = hints ? hints->ai_socktype : 0;
	int protocol = hints ? hints->ai_protocol : 0;
	int numeric = service ? numeric_port(service) : -1, port, matched = 0;
	struct addrinfo *head = NULL, **tail = &head;
	struct ai_node *n;
	size_t i, len;

	if (socktype != 0 && socktype != SOCK_STREAM && socktype != SOCK_DGRAM &&
	    socktype != SOCK_RAW)
		return 1;
	if (service && numeric < 0 && (flags & AI_NUMERICSERV))
		return EAI_NONAME;
	for (i = 0; i < sizeof(ai_kinds) / sizeof(ai_kinds[0]); i++) {
		const struct ai_kind *k = &ai_kinds[i];

		if (socktype != 0 && socktype != k->socktype)
			continue;
		/* As glibc: SOCK_RAW is listed when asked for by type (then without a service), or
		 * with no hints at all unless the service is a name. */
		if (k->socktype == SOCK_RAW && socktype == 0 &&
		    (protocol != 0 || (service && numeric < 0)))
			continue;
		if (k->socktype != SOCK_RAW && protocol != 0 && protocol != k->protocol)
			continue;
		matched = 1;
		if (k->socktype == SOCK_RAW && socktype == SOCK_RAW && service)
			continue;       /* EAI_SERVICE, as glibc */
		if ((port = service_port(service, k, numeric)) < 0)
			continue;
		if (!(n = calloc(1, sizeof(*n)))) {
			ai_free_list(head);
			return EAI_MEMORY;
		}
		n->ai.ai_flags = flags;
		n->ai.ai_socktype = k->socktype;
		n->ai.ai_protocol = k->socktype == SOCK_RAW ? protocol : k->protocol;
		n->ai.ai_addr = (struct sockaddr *)&n->sa;
		if (family == AF_INET6) {
			struct sockaddr_storage ss;

			/* shim_ep_write clears a whole sockaddr_storage: never on the node itself */
			shim_ep_write(&ss, vaddr, (uint16_t)port, 1);
			memcpy(&n->sa.in6, &ss, sizeof(n->sa.in6));
			n->ai.ai_family = AF_INET6;
			n->ai.ai_addrlen = sizeof(n->sa.in6);
		} else {
			n->ai.ai_family = AF_INET;
			n->sa.in.sin_family = AF_INET;
			n->sa.in.sin_port = htons((uint16_t)port);
			n->sa.in.sin_addr.s_addr = htonl(vaddr);
			n->ai.ai_addrlen = sizeof(n->sa.in);
		}
		*tail = &n->ai;
		tail = &n->ai.ai_next;
	}
	if (!matched)
		return 1;
	if (!head)
		return EAI_SERVICE;
	if (flags & AI_CANONNAME) {
		len = strlen(name);
		if (len > 0 && name[len - 1] == '.')
			len--;
		if (!(head->ai_canonname = malloc(len + 1))) {
			ai_free_list(head);
			return EAI_MEMORY;
		}
		memcpy(head->ai_canonname, name, len);
		head->ai_canonname[len] = '\0';
	}
	*res = head;
	return 0;
}

SHIM_EXPORT int
getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
    struct addrinfo **res)
{
	int (*f)(const char *, const char *, const struct addrinfo *, struct addrinfo **) =
	    REAL(getaddrinfo);
	int flags = hints ? hints->ai_flags : 0, family = hints ? hints->ai_family : AF_UNSPEC;
	int rc, e = errno;
	uint32_t v;

	if (!f) {
		errno = ENOSYS;
		return EAI_SYSTEM;
	}
	/* Peers have IPv4 addresses only. An AF_INET6 question gets the v4-mapped address, with
	 * or without AI_V4MAPPED: an IPv6-only program can reach a peer through it (the shim
	 * maps ::ffff:5.x on every socket call), and DNS would only fail slowly. */
	if (!node || !res || (flags & AI_NUMERICHOST) ||
	    !(family == AF_UNSPEC || family == AF_INET || family == AF_INET6))
		return f(node, service, hints, res);
	if (!(v = peer_lookup(node)))
		return f(node, service, hints, res);
	rc = build_ai(node, v, service, hints, res);
	if (rc == 1)
		return f(node, service, hints, res);
	errno = e;
	return rc;
}

/* ---- reverse lookups: getnameinfo, gethostbyaddr* ---- */

/* The member's name when addr (host order) is a 5.x address of our network, else -1 (then
 * libc answers, and DNS says what it says of 5.x). */
static int
peer_name(uint32_t addr, char *out, size_t cap)
{
	struct shim_net n;
	enum shim_dst d;

	if (!shim_enabled() || shim_net_get(&n) != 0)
		return -1;
	d = shim_classify(&n, addr);
	if (d != DST_SELF && d != DST_PEER)
		return -1;
	return shim_name_of(addr, out, cap);
}

SHIM_EXPORT int
getnameinfo(const struct sockaddr *sa, socklen_t salen, char *host, socklen_t hostlen,
    char *serv, socklen_t servlen, int flags)
{
	int (*f)(const struct sockaddr *, socklen_t, char *, socklen_t, char *, socklen_t, int) =
	    REAL(getnameinfo);
	char name[SHIM_NAME_MAX + 1];
	struct shim_ep ep;
	size_t len;
	int rc, e = errno;

	if (!f)
		return EAI_SYSTEM;
	if (!host || hostlen == 0 || (flags & NI_NUMERICHOST) || !sa ||
	    shim_ep_read(sa, salen, &ep) != 0 || peer_name(ep.addr, name, sizeof(name)) != 0) {
		errno = e;
		return f(sa, salen, host, hostlen, serv, servlen, flags);
	}
	len = strlen(name);
	if (flags & NI_NOFQDN)
		len -= sizeof(".shoal") - 1;    /* the name in our "local domain": the nick */
	if (len + 1 > hostlen)
		return EAI_OVERFLOW;
	/* the service part is libc's business, as without us */
	if (serv && servlen && (rc = f(sa, salen, NULL, 0, serv, servlen, flags)) != 0)
		return rc;
	memcpy(host, name, len);
	host[len] = '\0';
	errno = e;
	return 0;
}

/* gethostbyaddr's address argument as a host-order IPv4 address: AF_INET or v4-mapped. */
static int
addr_arg(const void *addr, socklen_t len, int type, uint32_t *out)
{
	const uint8_t *p = addr;
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	if (!p)
		return -1;
	if (type == AF_INET && len == 4) {
		*out = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
		return 0;
	}
	if (type == AF_INET6 && len == 16 && memcmp(p, mapped, 12) == 0)
		return addr_arg(p + 12, 4, AF_INET, out);
	return -1;
}

/* ---- gethostbyname* ---- */

/* What a hostent points to, laid out in the caller's buffer. */
struct host_data {
	char *aliases[1];
	char *addrs[2];
	struct in_addr addr;
	char name[SHIM_NAME_MAX + 1];
};

/* Fills h from buf (ERANGE if it is too small). */
static int
fill_hostent(const char *name, uint32_t vaddr, struct hostent *h, char *buf, size_t buflen)
{
	const uintptr_t align = sizeof(void *) - 1;
	uintptr_t p = (uintptr_t)buf, a = (p + align) & ~align;
	struct host_data *d;
	size_t len = strlen(name);

	if (!buf || a - p > buflen || buflen - (a - p) < sizeof(*d))
		return ERANGE;
	d = (struct host_data *)a;
	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len > SHIM_NAME_MAX)
		len = SHIM_NAME_MAX;
	memcpy(d->name, name, len);
	d->name[len] = '\0';
	d->addr.s_addr = htonl(vaddr);
	d->aliases[0] = NULL;
	d->addrs[0] = (char *)&d->addr;
	d->addrs[1] = NULL;
	h->h_name = d->name;
	h->h_aliases = d->aliases;
	h->h_addrtype = AF_INET;
	h->h_length = sizeof(struct in_addr);
	h->h_addr_list = d->addrs;
	return 0;
}

/* gethostbyname's result, per thread (no lock, no allocation). */
static _Thread_local struct {
	struct hostent h;
	char buf[sizeof(struct host_data) + sizeof(void *)];
} host_tls;

SHIM_EXPORT struct hostent *
gethostbyname(const char *name)
{
	struct hostent *(*f)(const char *) = REAL(gethostbyname);
	uint32_t v;

	if ((v = peer_lookup(name)) &&
	    fill_hostent(name, v, &host_tls.h, host_tls.buf, sizeof(host_tls.buf)) == 0)
		return &host_tls.h;
	if (!f) {
		h_errno = NO_RECOVERY;
		return NULL;
	}
	return f(name);
}

SHIM_EXPORT struct hostent *
gethostbyname2(const char *name, int af)
{
	struct hostent *(*f)(const char *, int) = REAL(gethostbyname2);
	uint32_t v;

	if (af == AF_INET && (v = peer_lookup(name)) &&
	    fill_hostent(name, v, &host_tls.h, host_tls.buf, sizeof(host_tls.buf)) == 0)
		return &host_tls.h;
	if (!f) {
		h_errno = NO_RECOVERY;
		return NULL;
	}
	return f(name, af);
}

/* The reentrant forms: 0, or ERANGE with *result NULL, as glibc. */
static int
host_r(const char *name, uint32_t v, struct hostent *ret, char *buf, size_t buflen,
    struct hostent **result, int *h_errnop)
{
	if (fill_hostent(name, v, ret, buf, buflen) != 0) {
		*result = NULL;
		if (h_errnop)
			*h_errnop = NETDB_INTERNAL;
		errno = ERANGE;
		return ERANGE;
	}
	*result = ret;
	return 0;
}

SHIM_EXPORT int
gethostbyname_r(const char *name, struct hostent *ret, char *buf, size_t buflen,
    struct hostent **result, int *h_errnop)
{
	int (*f)(const char *, struct hostent *, char *, size_t, struct hostent **, int *) =
	    REAL(gethostbyname_r);
	uint32_t v;

	if (ret && result && (v = peer_lookup(name)))
		return host_r(name, v, ret, buf, buflen, result, h_errnop);
	if (!f)
		return ENOSYS;
	return f(name, ret, buf, buflen, result, h_errnop);
}

SHIM_EXPORT int
gethostbyname2_r(const char *name, int af, struct hostent *ret, char *buf, size_t buflen,
    struct hostent **result, int *h_errnop)
{
	int (*f)(const char *, int, struct hostent *, char *, size_t, struct hostent **, int *) =
	    REAL(gethostbyname2_r);
	uint32_t v;

	if (af == AF_INET && ret && result && (v = peer_lookup(name)))
		return host_r(name, v, ret, buf, buflen, result, h_errnop);
	if (!f)
		return ENOSYS;
	return f(name, af, ret, buf, buflen, result, h_errnop);
}

SHIM_EXPORT struct hostent *
gethostbyaddr(const void *addr, socklen_t len, int type)
{
	struct hostent *(*f)(const void *, socklen_t, int) = REAL(gethostbyaddr);
	char name[SHIM_NAME_MAX + 1];
	uint32_t v;

	if (addr_arg(addr, len, type, &v) == 0 && peer_name(v, name, sizeof(name)) == 0 &&
	    fill_hostent(name, v, &host_tls.h, host_tls.buf, sizeof(host_tls.buf)) == 0)
		return &host_tls.h;
	if (!f) {
		h_errno = NO_RECOVERY;
		return NULL;
	}
	return f(addr, len, type);
}

SHIM_EXPORT int
gethostbyaddr_r(const void *addr, socklen_t len, int type, struct hostent *ret, char *buf,
    size_t buflen, struct hostent **result, int *h_errnop)
{
	int (*f)(const void *, socklen_t, int, struct hostent *, char *, size_t,
	    struct hostent **, int *) = REAL(gethostbyaddr_r);
	char name[SHIM_NAME_MAX + 1];
	uint32_t v;

	if (ret && result && addr_arg(addr, len, type, &v) == 0 &&
	    peer_name(v, name, sizeof(name)) == 0)
		return host_r(name, v, ret, buf, buflen, result, h_errnop);
	if (!f)
		return ENOSYS;
	return f(addr, len, type, ret, buf, buflen, result, h_errnop);
}

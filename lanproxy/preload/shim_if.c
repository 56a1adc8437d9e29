/*
 * shim_if: the shoal0 interface as the program sees it: getifaddrs()/freeifaddrs(),
 * if_nameindex(), if_nametoindex(), if_indextoname() and the SIOCGIF* ioctls. shoal0 carries
 * our 5.x address, netmask and broadcast address from SHIM_HELLO, flags
 * UP|BROADCAST|MULTICAST|RUNNING, the overlay MTU and an index above the real ones. It is
 * shown only while shoald answers. Lists we return stay freeable by libc's own free functions
 * or by ours (freeifaddrs recognises our node by its self-pointers).
 * Must not touch: sockets other than the ioctl's, the daemon protocol.
 */
#include "config.h"

#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <arpa/inet.h>

#include "lanproxy/preload/shim_int.h"

#define SHOAL_IFA_MAGIC 0x73686f616c306966ull   /* "shoal0if" */

/* One getifaddrs() node of ours, prepended to libc's list: owned by the caller until
 * freeifaddrs(). */
struct shoal_ifa {
	struct ifaddrs ifa;
	char name[IF_NAMESIZE];
	struct sockaddr_in addr, mask, bcast;
	uint64_t magic;
};

static _Atomic unsigned ifindex_cache;

unsigned
shim_ifindex(void)
{
	struct if_nameindex *(*ni)(void) = REAL(if_nameindex);
	void (*fr)(struct if_nameindex *) = REAL(if_freenameindex);
	struct if_nameindex *l, *p;
	unsigned idx = atomic_load(&ifindex_cache), max = 0;
	int e = errno;

	if (idx)
		return idx;
	if (ni && fr && (l = ni())) {
		for (p = l; p->if_index || p->if_name; p++)
			if (p->if_index > max)
				max = p->if_index;
		fr(l);
	}
	/* fixed for the life of the process: programs keep indexes they were given */
	idx = max + 1;
	if (!atomic_compare_exchange_strong(&ifindex_cache, &(unsigned){ 0 }, idx))
		idx = atomic_load(&ifindex_cache);
	errno = e;
	return idx;
}

static void
sin_set(struct sockaddr_in *s, uint32_t a)
{
	memset(s, 0, sizeof(*s));
	s->sin_family = AF_INET;
	s->sin_addr.s_addr = htonl(a);
}

static int
shoal0_up(struct shim_net *n)
{
	return shim_enabled() && shim_net_get(n) == 0;
}

static int
is_shoal0_name(const char *name)
{
	return strncmp(name, SHIM_IFNAME, IF_NAMESIZE) == 0;
}

SHIM_EXPORT int
getifaddrs(struct ifaddrs **ifap)
{
	int (*f)(struct ifaddrs **) = REAL(getifaddrs);
	struct shoal_ifa *s;
	struct shim_net n;
	int rc, e;

	if (!f) {
		errno = ENOSYS;
		return -1;
	}
	if ((rc = f(ifap)) == -1 || !ifap)
		return rc;
	e = errno;
	if (!shoal0_up(&n) || !(s = calloc(1, sizeof(*s)))) {
		errno = e;
		return rc;
	}
	memcpy(s->name, SHIM_IFNAME, sizeof(SHIM_IFNAME));
	sin_set(&s->addr, n.vaddr);
	sin_set(&s->mask, n.mask);
	sin_set(&s->bcast, n.vaddr | ~n.mask);
	s->magic = SHOAL_IFA_MAGIC;
	s->ifa.ifa_name = s->name;
	s->ifa.ifa_flags = IFF_UP | IFF_BROADCAST | IFF_MULTICAST | IFF_RUNNING;
	s->ifa.ifa_addr = (struct sockaddr *)&s->addr;
	s->ifa.ifa_netmask = (struct sockaddr *)&s->mask;
	s->ifa.ifa_broadaddr = (struct sockaddr *)&s->bcast;
	s->ifa.ifa_next = *ifap;
	*ifap = &s->ifa;
	errno = e;
	return rc;
}

SHIM_EXPORT void
freeifaddrs(struct ifaddrs *ifa)
{
	void (*f)(struct ifaddrs *) = REAL(freeifaddrs);
	struct shoal_ifa *s = (struct shoal_ifa *)ifa;
	struct ifaddrs *next;

	/* libc's nodes never point into themselves right after the struct: that is ours */
	if (ifa && ifa->ifa_name == s->name && ifa->ifa_addr == (struct sockaddr *)&s->addr &&
	    s->magic == SHOAL_IFA_MAGIC) {
		next = ifa->ifa_next;
		s->magic = 0;
		free(s);
		ifa = next;
	}
	if (ifa && f)
		f(ifa);
}

SHIM_EXPORT struct if_nameindex *
if_nameindex(void)
{
	struct if_nameindex *(*f)(void) = REAL(if_nameindex);
	void (*fr)(struct if_nameindex *) = REAL(if_freenameindex);
	struct if_nameindex *l, *out;
	struct shim_net n;
	size_t i, count = 0;
	int e;

	if (!f)
		return NULL;
	if (!(l = f()) || !fr)
		return l;
	e = errno;
	if (!shoal0_up(&n))
		return l;
	while (l[count].if_index || l[count].if_name)
		count++;
	/* same shape as libc's (array and names from malloc): libc's if_freenameindex frees it */
	if (!(out = calloc(count + 2, sizeof(*out))))
		goto keep;
	for (i = 0; i < count; i++) {
		out[i].if_index = l[i].if_index;
		if (!(out[i].if_name = strdup(l[i].if_name ? l[i].if_name : "")))
			goto undo;
	}
	out[count].if_index = shim_ifindex();
	if (!(out[count].if_name = strdup(SHIM_IFNAME)))
		goto undo;
	fr(l);
	errno = e;
	return out;
undo:
	for (i = 0; i <= count; i++)
		free(out[i].if_name);
	free(out);
keep:
	errno = e;
	return l;
}

SHIM_EXPORT unsigned int
if_nametoindex(const char *name)
{
	unsigned int (*f)(const char *) = REAL(if_nametoindex);
	struct shim_net n;

	if (name && is_shoal0_name(name) && shoal0_up(&n))
		return shim_ifindex();
	return f ? f(name) : 0;
}

SHIM_EXPORT char *
if_indextoname(unsigned int idx, char buf[IF_NAMESIZE])
{
	char *(*f)(unsigned int, char *) = REAL(if_indextoname);
	struct shim_net n;

	if (buf && idx && shoal0_up(&n) && idx == shim_ifindex()) {
		memcpy(buf, SHIM_IFNAME, sizeof(SHIM_IFNAME));
		return buf;
	}
	if (!f) {
		errno = ENXIO;
		return NULL;
	}
	return f(idx, buf);
}

/* SIOCGIF* for ifr naming shoal0. 1 answered, 0 not ours. */
static int
ifreq_answer(unsigned long req, struct ifreq *ifr, const struct shim_net *n)
{
	switch (req) {
	case SIOCGIFADDR:
		sin_set((struct sockaddr_in *)&ifr->ifr_addr, n->vaddr);
		return 1;
	case SIOCGIFBRDADDR:
		sin_set((struct sockaddr_in *)&ifr->ifr_broadaddr, n->vaddr | ~n->mask);
		return 1;
	case SIOCGIFNETMASK:
		sin_set((struct sockaddr_in *)&ifr->ifr_netmask, n->mask);
		return 1;
	case SIOCGIFDSTADDR:
		sin_set((struct sockaddr_in *)&ifr->ifr_dstaddr, n->vaddr);
		return 1;
	case SIOCGIFFLAGS:
		ifr->ifr_flags = IFF_UP | IFF_BROADCAST | IFF_MULTICAST | IFF_RUNNING;
		return 1;
	case SIOCGIFINDEX:
		ifr->ifr_ifindex = (int)shim_ifindex();
		return 1;
	case SIOCGIFMTU:
		ifr->ifr_mtu = n->mtu ? n->mtu : 1400;
		return 1;
	case SIOCGIFHWADDR:
		memset(&ifr->ifr_hwaddr, 0, sizeof(ifr->ifr_hwaddr));
		ifr->ifr_hwaddr.sa_family = ARPHRD_NONE;
		return 1;
	default:
		return 0;
	}
}

static int
ifconf_append(int rc, int cap, struct ifconf *ifc, const struct shim_net *n)
{
	struct ifreq r;

	if (!ifc->ifc_buf) {
		ifc->ifc_len += (int)sizeof(struct ifreq);     /* the size question */
		return rc;
	}
	if (cap - ifc->ifc_len < (int)sizeof(struct ifreq))
		return rc;      /* no room: as if the buffer had been just big enough for the rest */
	memset(&r, 0, sizeof(r));
	memcpy(r.ifr_name, SHIM_IFNAME, sizeof(SHIM_IFNAME));
	sin_set((struct sockaddr_in *)&r.ifr_addr, n->vaddr);
	memcpy(ifc->ifc_buf + ifc->ifc_len, &r, sizeof(r));
	ifc->ifc_len += (int)sizeof(r);
	return rc;
}

SHIM_EXPORT int
ioctl(int fd, unsigned long req, ...)
{
	int (*f)(int, unsigned long, ...) = REAL(ioctl);
	struct ifreq *ifr;
	struct ifconf *ifc;
	struct shim_net n;
	va_list ap;
	void *arg;
	int rc, cap;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (!f) {
		errno = ENOSYS;
		return -1;
	}
	switch (req) {
	case SIOCGIFCONF:
		if (!arg || !shim_enabled())
			break;
		ifc = arg;
		cap = ifc->ifc_len;
		if ((rc = f(fd, req, arg)) == -1 || !shoal0_up(&n))
			return rc;
		return ifconf_append(rc, cap, ifc, &n);
	case SIOCGIFADDR: case SIOCGIFBRDADDR: case SIOCGIFNETMASK: case SIOCGIFDSTADDR:
	case SIOCGIFFLAGS: case SIOCGIFINDEX: case SIOCGIFMTU: case SIOCGIFHWADDR:
		ifr = arg;
		if (ifr && shim_enabled() && is_shoal0_name(ifr->ifr_name) && shoal0_up(&n) &&
		    ifreq_answer(req, ifr, &n))
			return 0;
		break;
	case SIOCGIFNAME:
		ifr = arg;
		if (ifr && shim_enabled() && ifr->ifr_ifindex > 0 &&
		    shoal0_up(&n) && (unsigned)ifr->ifr_ifindex == shim_ifindex()) {
			memset(ifr->ifr_name, 0, sizeof(ifr->ifr_name));
			memcpy(ifr->ifr_name, SHIM_IFNAME, sizeof(SHIM_IFNAME));
			return 0;
		}
		break;
	default:
		break;
	}
	return f(fd, req, arg);
}

/*
 * shim_dlsym: lookups that bypass the interposer get it anyway. Some programs reach libc
 * through a handle of their own — Python's ctypes (`CDLL("libc.so.6").getifaddrs`, which the
 * common `ifaddr` module and the mDNS libraries built on it use), plugin loaders — and
 * dlsym(handle, name) then returns libc's definition, not ours, so shoal0 and the virtual LAN
 * are invisible to them. dlsym is interposed: when a lookup in a handle yields libc's own
 * definition of a function the shim interposes, ours is returned instead.
 *
 * dlsym(RTLD_NEXT, ...) depends on who calls it (the next object after the caller's). Going
 * through this function would make every caller look like the shim, and another interposer
 * loaded after us asking RTLD_NEXT for its own symbol would find itself and recurse; so
 * RTLD_NEXT is resolved here for the real caller, walking the link map after the caller's
 * object to the first one that itself defines the name.
 * Must not touch: anything but the dynamic linker's API.
 */
#include "config.h"

#include <dlfcn.h>
#include <link.h>
#include <stddef.h>

#include "lanproxy/preload/shim_int.h"

typedef void *(*dlsym_fn)(void *, const char *);

static dlsym_fn
real_dlsym(void)
{
	/* dlvsym is not interposed; dlsym's version differs between architectures and glibcs */
	static const char *const versions[] = {
		"GLIBC_2.34", "GLIBC_2.2.5", "GLIBC_2.17", "GLIBC_2.0", "GLIBC_2.2", "GLIBC_2.27",
	};
	static _Atomic(dlsym_fn) f;
	dlsym_fn g = atomic_load_explicit(&f, memory_order_relaxed);
	size_t i;

	for (i = 0; !g && i < sizeof(versions) / sizeof(versions[0]); i++)
		g = (dlsym_fn)dlvsym(RTLD_NEXT, "dlsym", versions[i]);
	atomic_store_explicit(&f, g, memory_order_relaxed);
	return g;
}

/* The object a code or data address belongs to, or NULL. */
static struct link_map *
owner_of(const void *addr)
{
	struct link_map *lm = NULL;
	Dl_info di;

	if (!addr || dladdr1(addr, &di, (void **)&lm, RTLD_DL_LINKMAP) == 0)
		return NULL;
	return lm;
}

/* name as defined by the object lm itself, or NULL. A link map is not a handle dlsym may be
 * given (objects the loader mapped itself lack a lookup scope): a handle is taken with
 * RTLD_NOLOAD, which never loads anything (the vDSO has none: skipped). A handle's lookup
 * also searches the object's dependencies: those answers are not the object's. */
static void *
defined_by(dlsym_fn f, struct link_map *lm, const char *name)
{
	void *h = dlopen(lm->l_name && lm->l_name[0] ? lm->l_name : NULL, RTLD_LAZY | RTLD_NOLOAD);
	void *p;

	if (h == NULL)
		return NULL;
	p = f(h, name);
	dlclose(h);
	return p && owner_of(p) == lm ? p : NULL;
}

/* RTLD_NEXT for caller: the first object after the caller's, in load order, that defines
 * name itself. */
static void *
next_after(dlsym_fn f, const void *caller, const char *name)
{
	struct link_map *lm = owner_of(caller);
	void *p;

	if (lm == NULL)
		return f(RTLD_NEXT, name);      /* unknown caller: next after us, the best left */
	for (lm = lm->l_next; lm != NULL; lm = lm->l_next)
		if ((p = defined_by(f, lm, name)) != NULL)
			return p;
	return NULL;
}

SHIM_EXPORT void *
dlsym(void *handle, const char *name)
{
	dlsym_fn f = real_dlsym();
	void *p, *ours;

	if (!f)
		return NULL;
	if (handle == RTLD_NEXT)
		return next_after(f, __builtin_return_address(0), name);
	p = f(handle, name);
	/* RTLD_DEFAULT already finds ours first (we are preloaded) */
	if (p && handle != RTLD_DEFAULT && p == shim_sym_by_name(name) &&
	    (ours = f(RTLD_DEFAULT, name)) != NULL && owner_of(ours) == owner_of((void *)dlsym))
		return ours;
	return p;
}

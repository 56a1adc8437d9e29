/*
 * shim_dlsym: lookups that bypass the interposer get it anyway. Some programs reach libc
 * through a handle of their own — Python's ctypes (`CDLL("libc.so.6").getifaddrs`, which the
 * common `ifaddr` module and the mDNS libraries built on it use), plugin loaders — and
 * dlsym(handle, name) then returns libc's definition, not ours, so shoal0 and the virtual LAN
 * are invisible to them. dlsym is interposed: when a lookup in a handle yields libc's own
 * definition of a function the shim interposes, ours is returned instead.
 *
 * dlsym(RTLD_NEXT, ...) depends on who calls it (the next object after the caller's), so it
 * is passed on as a tail call (see dlsym below).
 * Must not touch: anything but the dynamic linker's API.
 */
#include "config.h"

#include <dlfcn.h>
#include <link.h>
#include <stddef.h>

#include "lanproxy/preload/shim_int.h"

typedef void *(*dlsym_fn)(void *, const char *);
typedef int (*dladdr1_fn)(const void *, Dl_info *, void **, int);

/*
 * libc's own dlsym, dlopen, dlclose and dladdr1, taken with dlvsym (which nothing interposes):
 * a sanitized program's runtime interposes dlopen and calls dlsym from its constructor before
 * its interceptors are ready, so the plain names would lead into it. Versions differ between
 * architectures and glibcs.
 */
static void *
libc_fn(const char *name, _Atomic(void *) *cache)
{
	static const char *const versions[] = {
		"GLIBC_2.34", "GLIBC_2.2.5", "GLIBC_2.3.3", "GLIBC_2.17", "GLIBC_2.0", "GLIBC_2.2",
		"GLIBC_2.27",
	};
	void *f = atomic_load_explicit(cache, memory_order_relaxed);
	size_t i;

	for (i = 0; !f && i < sizeof(versions) / sizeof(versions[0]); i++)
		f = dlvsym(RTLD_NEXT, name, versions[i]);
	atomic_store_explicit(cache, f, memory_order_relaxed);
	return f;
}

static _Atomic(void *) c_dlsym, c_dladdr1;

static dlsym_fn
real_dlsym(void)
{
	return (dlsym_fn)libc_fn("dlsym", &c_dlsym);
}

/* The object a code or data address belongs to, or NULL. */
static struct link_map *
owner_of(const void *addr)
{
	dladdr1_fn f = (dladdr1_fn)libc_fn("dladdr1", &c_dladdr1);
	struct link_map *lm = NULL;
	Dl_info di;

	if (!addr || !f || f(addr, &di, (void **)&lm, RTLD_DL_LINKMAP) == 0)
		return NULL;
	return lm;
}

/*
 * RTLD_NEXT and RTLD_DEFAULT go on to libc's dlsym as a tail call, so that glibc, which looks
 * at its return address, sees the program's caller, not us: another interposer preloaded
 * after ours asking RTLD_NEXT for its own symbol still finds the next definition.
 */
#if defined(__clang__)
#define TAIL __attribute__((musttail))
#define SIBCALLS
#else
#define TAIL
#define SIBCALLS __attribute__((optimize("optimize-sibling-calls")))
#endif

static void *
dlsym_handle(dlsym_fn f, void *handle, const char *name)
{
	void *p = f(handle, name), *ours;

	/* RTLD_DEFAULT already finds ours first (we are preloaded) */
	if (p && p == shim_sym_by_name(name) && (ours = f(RTLD_DEFAULT, name)) != NULL &&
	    owner_of(ours) == owner_of((void *)dlsym))
		return ours;
	return p;
}

SHIM_EXPORT SIBCALLS void *
dlsym(void *handle, const char *name)
{
	dlsym_fn f = real_dlsym();

	if (f == NULL)
		return NULL;
	if (handle == RTLD_NEXT || handle == RTLD_DEFAULT)
		TAIL return f(handle, name);
	return dlsym_handle(f, handle, name);
}

/*
 * shim_exec: the shim follows the whole process tree. Programs that start children with a
 * cleaned environment (sshd's sessions, `env -i`, launchers building their own envp) would
 * otherwise drop LD_PRELOAD and SHOAL_SHIM_SOCK and leave the virtual LAN. Every exec entry
 * point of libc (execve, execv, execvp, execvpe, execl, execle, execlp, fexecve, execveat,
 * posix_spawn, posix_spawnp) is interposed and passes on an environment with our variables
 * put back: our library added to LD_PRELOAD when missing, SHOAL_SHIM_SOCK (and
 * SHOAL_SHIM_QUIET) when absent; everything else as the program wrote it. glibc's exec*
 * functions call execve internally without going through the symbol table, so each is
 * interposed on its own.
 *
 * The values are taken once, in the constructor, before the program can change its own
 * environment. The new envp is built on the stack (no malloc: exec runs in vfork children).
 * Statically linked and setuid programs ignore LD_PRELOAD whatever we do, as documented.
 * Must not touch: sockets, the daemon connection.
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lanproxy/preload/shim_int.h"

extern char **environ;

enum { ENV_STR_MAX = 4096 };

/* What the children must get back; empty strings until shim_exec_init found them. */
static char lib_path[ENV_STR_MAX];              /* this library's file, as the loader has it */
static char env_sock[ENV_STR_MAX];              /* "SHOAL_SHIM_SOCK=..." */
static char env_quiet[64];                      /* "SHOAL_SHIM_QUIET=..." or "" */

static const char preload_key[] = "LD_PRELOAD=";

static int
has_key(const char *entry, const char *key_eq)
{
	return strncmp(entry, key_eq, strlen(key_eq)) == 0;
}

/* Copies "KEY=" + value into out if it fits; else leaves out empty. */
static void
keep(char *out, size_t cap, const char *key_eq, const char *value)
{
	size_t k = strlen(key_eq), v = strlen(value);

	out[0] = '\0';
	if (k + v + 1 > cap)
		return;
	memcpy(out, key_eq, k);
	memcpy(out + k, value, v + 1);
}

void
shim_exec_init(void)
{
	const char *sock = getenv("SHOAL_SHIM_SOCK"), *quiet = getenv("SHOAL_SHIM_QUIET");
	Dl_info di;

	/* Only a shimmed program hands the shim on (SHOAL_SHIM_SOCK is what enables it). */
	if (!sock || !sock[0] || dladdr((void *)shim_exec_init, &di) == 0 || !di.dli_fname ||
	    di.dli_fname[0] != '/' || strlen(di.dli_fname) >= sizeof(lib_path))
		return;
	keep(env_sock, sizeof(env_sock), "SHOAL_SHIM_SOCK=", sock);
	if (!env_sock[0])
		return;
	memcpy(lib_path, di.dli_fname, strlen(di.dli_fname) + 1);
	if (quiet)
		keep(env_quiet, sizeof(env_quiet), "SHOAL_SHIM_QUIET=", quiet);
}

/* Does the LD_PRELOAD value list our library (elements separated by ':' or spaces)? */
static int
lists_us(const char *v)
{
	size_t n = strlen(lib_path);
	const char *p = v;

	while ((p = strstr(p, lib_path)) != NULL) {
		if ((p == v || p[-1] == ':' || p[-1] == ' ') &&
		    (p[n] == '\0' || p[n] == ':' || p[n] == ' '))
			return 1;
		p += n;
	}
	return 0;
}

static size_t
env_count(char *const envp[])
{
	size_t n = 0;

	while (envp && envp[n])
		n++;
	return n;
}

/*
 * envp with our variables put back, in out (room for env_count(envp) + 4 pointers); pre
 * holds a rewritten LD_PRELOAD. Returns envp itself when nothing is to be done.
 */
static char *const *
fix_env(char *const envp[], char **out, char *pre, size_t pre_cap)
{
	size_t i, k = 0, n = env_count(envp);
	int sock = 0, quiet = 0, preload = 0;

	if (!lib_path[0])
		return envp;
	for (i = 0; i < n; i++) {
		const char *e = envp[i];

		if (has_key(e, preload_key)) {
			const char *v = e + sizeof(preload_key) - 1;
			size_t need = sizeof(preload_key) - 1 + strlen(lib_path) + 1 + strlen(v) + 1;

			preload = 1;
			if (lists_us(v) || need > pre_cap) {
				out[k++] = (char *)e;
				continue;
			}
			/* ours first, as `shoal run` sets it */
			strcpy(pre, preload_key);
			strcat(pre, lib_path);
			if (*v) {
				strcat(pre, ":");
				strcat(pre, v);
			}
			out[k++] = pre;
			continue;
		}
		sock |= has_key(e, "SHOAL_SHIM_SOCK=");
		quiet |= has_key(e, "SHOAL_SHIM_QUIET=");
		out[k++] = (char *)e;
	}
	if (!preload) {
		if (sizeof(preload_key) + strlen(lib_path) > pre_cap)
			return envp;
		strcpy(pre, preload_key);
		strcat(pre, lib_path);
		out[k++] = pre;
	}
	if (!sock)
		out[k++] = env_sock;
	if (!quiet && env_quiet[0])
		out[k++] = env_quiet;
	out[k] = NULL;
	return out;
}

/* The fixed environment of one call, on the caller's stack. */
#define FIXED_ENV(name, envp)                                                          \
	char *name##_v[env_count(envp) + 4];                                           \
	char name##_pre[ENV_STR_MAX * 2];                                              \
	char *const *name = fix_env((envp), name##_v, name##_pre, sizeof(name##_pre))

SHIM_EXPORT int
execve(const char *path, char *const argv[], char *const envp[])
{
	int (*f)(const char *, char *const[], char *const[]) = REAL(execve);
	FIXED_ENV(env, envp);

	if (!f) {
		errno = ENOSYS;
		return -1;
	}
	return f(path, argv, env);
}

SHIM_EXPORT int
execvpe(const char *file, char *const argv[], char *const envp[])
{
	int (*f)(const char *, char *const[], char *const[]) = REAL(execvpe);
	FIXED_ENV(env, envp);

	if (!f) {
		errno = ENOSYS;
		return -1;
	}
	return f(file, argv, env);
}

SHIM_EXPORT int
execv(const char *path, char *const argv[])
{
	return execve(path, argv, environ);
}

SHIM_EXPORT int
execvp(const char *file, char *const argv[])
{
	return execvpe(file, argv, environ);
}

SHIM_EXPORT int
fexecve(int fd, char *const argv[], char *const envp[])
{
	int (*f)(int, char *const[], char *const[]) = REAL(fexecve);
	FIXED_ENV(env, envp);

	if (!f) {
		errno = ENOSYS;
		return -1;
	}
	return f(fd, argv, env);
}

SHIM_EXPORT int
execveat(int dirfd, const char *path, char *const argv[], char *const envp[], int flags)
{
	int (*f)(int, const char *, char *const[], char *const[], int) = REAL(execveat);
	FIXED_ENV(env, envp);

	if (!f) {
		errno = ENOSYS;
		return -1;
	}
	return f(dirfd, path, argv, env, flags);
}

SHIM_EXPORT int
posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
    const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	int (*f)(pid_t *, const char *, const posix_spawn_file_actions_t *,
	    const posix_spawnattr_t *, char *const[], char *const[]) = REAL(posix_spawn);
	FIXED_ENV(env, envp);

	if (!f)
		return ENOSYS;
	return f(pid, path, fa, attr, argv, env);
}

SHIM_EXPORT int
posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
    const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	int (*f)(pid_t *, const char *, const posix_spawn_file_actions_t *,
	    const posix_spawnattr_t *, char *const[], char *const[]) = REAL(posix_spawnp);
	FIXED_ENV(env, envp);

	if (!f)
		return ENOSYS;
	return f(pid, file, fa, attr, argv, env);
}

/*
 * The list forms: argv gathered on the stack. execle's envp follows the NULL ending the
 * arguments; execl and execlp use environ.
 */
#define GATHER_ARGS(argv, arg0, last)                                                  \
	size_t argc_ = 1;                                                              \
	va_list ap_;                                                                   \
	va_start(ap_, arg0);                                                           \
	while (va_arg(ap_, const char *) != NULL)                                      \
		argc_++;                                                               \
	va_end(ap_);                                                                   \
	const char *argv[argc_ + 1];                                                   \
	argv[0] = arg0;                                                                \
	va_start(ap_, arg0);                                                           \
	for (size_t i_ = 1; i_ <= argc_; i_++)                                         \
		argv[i_] = va_arg(ap_, const char *);                                  \
	last;                                                                          \
	va_end(ap_)

SHIM_EXPORT int
execl(const char *path, const char *arg0, ...)
{
	GATHER_ARGS(argv, arg0, (void)0);
	return execve(path, (char *const *)argv, environ);
}

SHIM_EXPORT int
execlp(const char *file, const char *arg0, ...)
{
	GATHER_ARGS(argv, arg0, (void)0);
	return execvpe(file, (char *const *)argv, environ);
}

SHIM_EXPORT int
execle(const char *path, const char *arg0, ...)
{
	char *const *envp;

	GATHER_ARGS(argv, arg0, envp = va_arg(ap_, char *const *));
	return execve(path, (char *const *)argv, envp);
}

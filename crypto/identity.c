/*
 * identity: long-term X25519 key files, hex helpers and the mediator connection string.
 *
 * A key file is the private key as 64 lowercase hex digits and a newline, mode 0600, in a
 * directory created 0700. It is written to a temporary file in the same directory, fsynced,
 * then linked into place, so a crash never leaves a half-written key and two processes
 * creating the same identity at once end up sharing the one that got there first. A key file
 * that exists but does not parse is an error for the user to look at: replacing it would
 * silently change this node's identity.
 *
 * Owns: nothing beyond the call; the key pair goes to the caller. Must not: log secrets.
 */
#include "config.h"
#include "crypto/identity.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "base/fsloc.h"
#include "base/log.h"

#define KEY_HEX_LEN (2 * KEY_LEN)
#define SCHEME "shoal://"
#define HOST_MAX_LEN 253        /* longest DNS name */

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---- hex ---- */

void
hex_encode(const uint8_t *in, size_t len, char *hex)
{
	sodium_bin2hex(hex, 2 * len + 1, in, len);
}

int
hex_decode(const char *hex, uint8_t *out, size_t len)
{
	size_t hex_len = strlen(hex), bin_len = 0;
	const char *end = NULL;

	if (hex_len != 2 * len)
		return -1;
	/* libsodium's decoder is constant-time: these are sometimes private keys. */
	if (sodium_hex2bin(out, len, hex, hex_len, NULL, &bin_len, &end) != 0 ||
	    bin_len != len || end != hex + hex_len)
		return -1;
	return 0;
}

/* ---- key files ---- */


/*
 * 0 loaded, 1 no such file, 2 loaded from a file without its public half (written before
 * both halves were kept: the caller rewrites it), -1 error (err set).
 */
static int
key_load(const char *path, struct noise_keypair *kp, char *err, size_t errlen)
{
	char buf[2 * KEY_HEX_LEN + 8], *line2 = NULL;
	uint8_t priv[KEY_LEN], pub[KEY_LEN];
	struct stat st;
	ssize_t n;
	size_t len;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 1;
		seterr(err, errlen, "cannot open key file %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		seterr(err, errlen, "key file %s is not a regular file", path);
		return -1;
	}
	if (st.st_mode & 077)
		log_warnx("event=key_file_mode path=%s mode=%03o want=600", path,
		    (unsigned)(st.st_mode & 0777));
	len = 0;
	do {
		n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n > 0)
			len += (size_t)n;
	} while ((n > 0 || (n < 0 && errno == EINTR)) && len < sizeof(buf) - 1);
	close(fd);
	if (n < 0) {
		seterr(err, errlen, "cannot read key file %s: %s", path, strerror(errno));
		return -1;
	}
	buf[len] = '\0';
	/* Newlines are what we write; tolerate a missing last one or CRLFs from an editor. */
	if (len > 0 && buf[len - 1] == '\n')
		buf[--len] = '\0';
	if (len > 0 && buf[len - 1] == '\r')
		buf[--len] = '\0';
	if (len > KEY_HEX_LEN && buf[KEY_HEX_LEN] == '\r')
		memmove(buf + KEY_HEX_LEN, buf + KEY_HEX_LEN + 1, len-- - KEY_HEX_LEN);
	if (len == 2 * KEY_HEX_LEN + 1 && buf[KEY_HEX_LEN] == '\n') {
		buf[KEY_HEX_LEN] = '\0';
		line2 = buf + KEY_HEX_LEN + 1;
	} else if (len != KEY_HEX_LEN) {
		line2 = buf;    /* neither layout: reported as corrupt below */
	}
	if (line2 == buf || hex_decode(buf, priv, KEY_LEN) != 0 ||
	    (line2 != NULL && hex_decode(line2, pub, KEY_LEN) != 0)) {
		seterr(err, errlen, "corrupt key file %s: expected the private key and the public "
		    "key as %d hex digits each, one per line (fix or move it away; it is never "
		    "replaced automatically)", path, KEY_HEX_LEN);
		r = -1;
		goto out;
	}
	noise_keypair_from_private(kp, priv);
	if (line2 == NULL) {
		r = 2;
	} else if (sodium_memcmp(pub, kp->pub, KEY_LEN) != 0) {
		/* A damaged private half would silently be another identity: refuse. */
		sodium_memzero(kp, sizeof(*kp));
		seterr(err, errlen, "damaged key file %s: its private key does not match the "
		    "public key stored with it (a changed bit?); restore it from a backup or move "
		    "it away to start as a new node", path);
		r = -1;
	}
out:
	sodium_memzero(buf, sizeof(buf));
	sodium_memzero(priv, sizeof(priv));
	return r;
}

static int
write_all(int fd, const char *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void
fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

/*
 * 0 created, 1 someone else created it first, -1 error (err set). With replace, an existing
 * file is replaced atomically (the upgrade of a key file that lacks its public half).
 */
static int
key_create(const char *dir, const char *path, const struct noise_keypair *kp, int replace,
    char *err, size_t errlen)
{
	char tmp[PATH_MAX], hex[2 * KEY_HEX_LEN + 3];
	int fd, r = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= sizeof(tmp)) {
		seterr(err, errlen, "key file path too long: %s", path);
		return -1;
	}
	/* mkstemp creates the file 0600. */
	if ((fd = mkstemp(tmp)) < 0) {
		seterr(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
		return -1;
	}
	hex_encode(kp->priv, KEY_LEN, hex);
	hex[KEY_HEX_LEN] = '\n';
	hex_encode(kp->pub, KEY_LEN, hex + KEY_HEX_LEN + 1);
	hex[2 * KEY_HEX_LEN + 1] = '\n';
	hex[2 * KEY_HEX_LEN + 2] = '\0';
	if (fchmod(fd, 0600) != 0 || write_all(fd, hex, 2 * KEY_HEX_LEN + 2) != 0 ||
	    fsync(fd) != 0) {
		seterr(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
		r = -1;
	}
	sodium_memzero(hex, sizeof(hex));
	if (close(fd) != 0 && r == 0) {
		seterr(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
		r = -1;
	}
	if (r == 0 && replace) {
		if (rename(tmp, path) != 0) {
			seterr(err, errlen, "cannot replace %s: %s", path, strerror(errno));
			r = -1;
		}
	} else if (r == 0) {
		/* link, unlike rename, never replaces a key another process just created. */
		if (link(tmp, path) != 0) {
			if (errno == EEXIST) {
				r = 1;
			} else if (errno == EPERM || errno == ENOTSUP || errno == EOPNOTSUPP ||
			    errno == EXDEV || errno == EMLINK) {
				/* No hard links here: fall back to rename (still atomic). */
				if (rename(tmp, path) != 0) {
					seterr(err, errlen, "cannot create %s: %s", path,
					    strerror(errno));
					r = -1;
				}
			} else {
				seterr(err, errlen, "cannot create %s: %s", path, strerror(errno));
				r = -1;
			}
		}
	}
	(void)unlink(tmp);
	if (r == 0)
		fsync_dir(dir);
	return r;
}

int
identity_load_or_create(const char *dir, const char *name, struct noise_keypair *kp,
    char *err, size_t errlen)
{
	char path[PATH_MAX];
	int r;

	if (name[0] == '\0' || strchr(name, '/') != NULL) {
		seterr(err, errlen, "bad key file name '%s'", name);
		return -1;
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path)) {
		seterr(err, errlen, "key file path too long");
		return -1;
	}
	if (fsloc_mkdirs(dir, err, errlen) != 0)
		return -1;
	if ((r = key_load(path, kp, err, errlen)) <= 0)
		return r;
	if (r == 2) {
		/* Written before both halves were kept: add the public half, so a damaged
		 * private half is caught from now on. The key itself does not change. */
		if (key_create(dir, path, kp, 1, err, errlen) == 0)
			log_info("event=key_file_upgraded path=%s", path);
		else
			log_warnx("event=key_file_upgrade_failed path=%s reason=\"%s\"", path, err);
		return 0;
	}

	noise_keypair_generate(kp);
	r = key_create(dir, path, kp, 0, err, errlen);
	if (r == 0)
		return 0;
	sodium_memzero(kp, sizeof(*kp));
	if (r < 0)
		return -1;
	/* Lost a creation race: the winner's key is the identity. */
	return key_load(path, kp, err, errlen) >= 0 ? 0 : -1;
}

/* ---- connection strings ---- */

static int
host_char_ok(int c)
{
	return isalnum(c) || c == '.' || c == '-' || c == '_';
}

static int
host_valid(const char *host)
{
	size_t i;

	if (host[0] == '\0' || strlen(host) > HOST_MAX_LEN)
		return 0;
	for (i = 0; host[i]; i++)
		if (!host_char_ok((unsigned char)host[i]))
			return 0;
	return 1;
}

int
conn_string_format(const char *host, uint16_t port, const uint8_t pub[KEY_LEN], char *out,
    size_t cap)
{
	struct conn_string cs;

	memset(&cs, 0, sizeof(cs));
	if (strlen(host) >= sizeof(cs.addr[0].host))
		return -1;
	snprintf(cs.addr[0].host, sizeof(cs.addr[0].host), "%s", host);
	cs.addr[0].port = port;
	cs.n_addr = 1;
	memcpy(cs.pub, pub, KEY_LEN);
	return conn_string_format_list(&cs, out, cap);
}

int
conn_string_format_list(const struct conn_string *cs, char *out, size_t cap)
{
	char hex[KEY_HEX_LEN + 1];
	size_t used;
	unsigned i;
	int n;

	if (cs->n_addr == 0 || cs->n_addr > CONN_MAX_ADDRS)
		return -1;
	n = snprintf(out, cap, SCHEME);
	if (n < 0 || (size_t)n >= cap)
		return -1;
	used = (size_t)n;
	for (i = 0; i < cs->n_addr; i++) {
		if (!host_valid(cs->addr[i].host) || cs->addr[i].port == 0)
			return -1;
		n = snprintf(out + used, cap - used, "%s%s:%u", i ? "," : "", cs->addr[i].host,
		    (unsigned)cs->addr[i].port);
		if (n < 0 || (size_t)n >= cap - used)
			return -1;
		used += (size_t)n;
	}
	hex_encode(cs->pub, KEY_LEN, hex);
	n = snprintf(out + used, cap - used, "/%s", hex);
	if (n < 0 || (size_t)n >= cap - used)
		return -1;
	return 0;
}

/* One "HOST:PORT" of the address list, [p, end) without the separators. */
static int
addr_parse(const char *p, const char *end, struct conn_addr *a, char *err, size_t errlen)
{
	const char *colon;
	size_t host_len, i;
	unsigned long v;

	if (p < end && *p == '[') {
		seterr(err, errlen, "IPv6 address literals are not supported: use an IPv4 address "
		    "or a host name");
		return -1;
	}
	if (p == end) {
		seterr(err, errlen, "empty address in the list: expected "
		    "shoal://HOST:PORT[,HOST:PORT...]/KEY");
		return -1;
	}
	colon = memchr(p, ':', (size_t)(end - p));
	if (colon == NULL) {
		seterr(err, errlen, "missing port: expected shoal://HOST:PORT/KEY");
		return -1;
	}
	if (memchr(colon + 1, ':', (size_t)(end - colon - 1)) != NULL) {
		seterr(err, errlen, "IPv6 addresses are not supported: use an IPv4 address or a "
		    "host name");
		return -1;
	}

	host_len = (size_t)(colon - p);
	if (host_len == 0) {
		seterr(err, errlen, "missing host: expected shoal://HOST:PORT/KEY");
		return -1;
	}
	if (host_len > HOST_MAX_LEN) {
		seterr(err, errlen, "host name too long (%zu bytes)", host_len);
		return -1;
	}
	for (i = 0; i < host_len; i++) {
		if (!host_char_ok((unsigned char)p[i])) {
			seterr(err, errlen, "invalid character '%c' in host: use an IPv4 address "
			    "or a host name", isprint((unsigned char)p[i]) ? p[i] : '?');
			return -1;
		}
	}

	/* Port: 1 to 65535, decimal digits only. */
	v = 0;
	for (i = 1; colon + i < end; i++) {
		if (!isdigit((unsigned char)colon[i]) || v > 65535) {
			v = 0;
			break;
		}
		v = v * 10 + (unsigned long)(colon[i] - '0');
	}
	if (i == 1 || v == 0 || v > 65535) {
		seterr(err, errlen, "bad port '%.*s': expected a number from 1 to 65535",
		    (int)(end - colon - 1 > 16 ? 16 : end - colon - 1), colon + 1);
		return -1;
	}
	memcpy(a->host, p, host_len);
	a->host[host_len] = '\0';
	a->port = (uint16_t)v;
	return 0;
}

int
conn_string_parse_list(const char *s, struct conn_string *cs, char *err, size_t errlen)
{
	const char *p, *end, *slash, *key, *comma;
	size_t key_len;
	unsigned i;

	memset(cs, 0, sizeof(*cs));
	/* Tolerate the whitespace a copy-and-paste brings along. */
	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		end--;

	if ((size_t)(end - s) < strlen(SCHEME) || strncasecmp(s, SCHEME, strlen(SCHEME)) != 0) {
		seterr(err, errlen, "missing scheme: expected shoal://HOST:PORT/KEY");
		return -1;
	}
	p = s + strlen(SCHEME);
	slash = memchr(p, '/', (size_t)(end - p));
	if (slash == NULL) {
		if (p < end && *p == '[') {
			seterr(err, errlen, "IPv6 address literals are not supported: use an IPv4 "
			    "address or a host name");
			return -1;
		}
		seterr(err, errlen, "missing server key: expected shoal://HOST:PORT/KEY");
		return -1;
	}

	/* The address list: instances of one mediator (one key), tried in turn. */
	while (p <= slash) {
		struct conn_addr a;

		memset(&a, 0, sizeof(a));
		comma = memchr(p, ',', (size_t)(slash - p));
		if (comma == NULL)
			comma = slash;
		if (cs->n_addr == CONN_MAX_ADDRS) {
			seterr(err, errlen, "too many mediator addresses: at most %d",
			    CONN_MAX_ADDRS);
			return -1;
		}
		if (addr_parse(p, comma, &a, err, errlen) < 0)
			return -1;
		for (i = 0; i < cs->n_addr; i++) {
			if (cs->addr[i].port == a.port && strcasecmp(cs->addr[i].host, a.host) == 0) {
				seterr(err, errlen, "mediator address %s:%u is listed twice", a.host,
				    (unsigned)a.port);
				return -1;
			}
		}
		cs->addr[cs->n_addr++] = a;
		p = comma + 1;
	}

	key = slash + 1;
	key_len = (size_t)(end - key);
	if (key_len != KEY_HEX_LEN) {
		seterr(err, errlen, "server key must be %d hex digits, got %zu", KEY_HEX_LEN,
		    key_len);
		return -1;
	}
	{
		char hex[KEY_HEX_LEN + 1];

		memcpy(hex, key, KEY_HEX_LEN);
		hex[KEY_HEX_LEN] = '\0';
		if (hex_decode(hex, cs->pub, KEY_LEN) != 0) {
			seterr(err, errlen, "server key is not hex: expected %d digits 0-9, a-f",
			    KEY_HEX_LEN);
			return -1;
		}
	}
	return 0;
}

int
conn_string_parse(const char *s, char *host, size_t host_cap, uint16_t *port,
    uint8_t pub[KEY_LEN], char *err, size_t errlen)
{
	struct conn_string cs;
	size_t host_len;

	if (conn_string_parse_list(s, &cs, err, errlen) < 0)
		return -1;
	if (cs.n_addr != 1) {
		seterr(err, errlen, "this takes one mediator address, got %u", cs.n_addr);
		return -1;
	}
	host_len = strlen(cs.addr[0].host);
	if (host_len >= host_cap) {
		seterr(err, errlen, "host name too long (%zu bytes)", host_len);
		return -1;
	}
	memcpy(host, cs.addr[0].host, host_len + 1);
	*port = cs.addr[0].port;
	memcpy(pub, cs.pub, KEY_LEN);
	return 0;
}

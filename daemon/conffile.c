/*
 * conffile: see conffile.h. Line by line over a bounded buffer; values keep inner spaces
 * (a nick may have them) and lose the spaces around them.
 */
#include "config.h"
#include "daemon/conffile.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

enum { CONF_FILE_MAX = 64 * 1024, LINE_MAX_LEN = 1024 };

/* Keys that take a value, as the long option of the same name. */
static const char *const value_keys[] = {
	"server", "state", "socks", "control", "udp-port", "nick", "ui",
};

static int
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

static int
bad(char *err, size_t errlen, const char *name, unsigned line, const char *why,
    const char *what)
{
	snprintf(err, errlen, "%s:%u: %s%s%s", name, line, why, what ? ": " : "", what ? what : "");
	return -1;
}

/* One line (no newline), trimmed; 0 or -1. */
static int
one_line(char *s, const char *name, unsigned line, struct conf_args *out, char *seen,
    char *err, size_t errlen)
{
	char *eq, *key, *val, *end;
	size_t i;
	int idx = -1, yes;

	while (is_space(*s))
		s++;
	if (*s == '\0' || *s == '#')
		return 0;
	if ((eq = strchr(s, '=')) == NULL)
		return bad(err, errlen, name, line, "expected key = value", s);
	key = s;
	for (end = eq; end > key && is_space(end[-1]); end--)
		;
	*end = '\0';
	val = eq + 1;
	while (is_space(*val))
		val++;
	for (end = val + strlen(val); end > val && is_space(end[-1]); end--)
		;
	*end = '\0';
	for (i = 0; i < sizeof(value_keys) / sizeof(value_keys[0]); i++)
		if (strcmp(key, value_keys[i]) == 0)
			idx = (int)i;
	if (idx < 0 && strcmp(key, "allow-other-users") != 0 && strcmp(key, "portmap") != 0)
		return bad(err, errlen, name, line, "unknown key", key);
	/* seen[]: one slot per value key, then the two switches */
	i = idx >= 0 ? (size_t)idx : strcmp(key, "portmap") == 0 ? 7 : 8;
	if (seen[i])
		return bad(err, errlen, name, line, "given twice", key);
	seen[i] = 1;
	if (*val == '\0')
		return bad(err, errlen, name, line, "empty value for", key);
	if (out->n >= CONF_MAX_ARGS)
		return bad(err, errlen, name, line, "too many settings", NULL);
	if (idx >= 0) {
		if ((size_t)snprintf(out->v[out->n], CONF_ARG_MAX, "--%s=%s", key, val) >=
		    CONF_ARG_MAX)
			return bad(err, errlen, name, line, "value too long for", key);
		out->n++;
		return 0;
	}
	if (strcmp(val, "yes") == 0 || strcmp(val, "on") == 0 || strcmp(val, "true") == 0)
		yes = 1;
	else if (strcmp(val, "no") == 0 || strcmp(val, "off") == 0 || strcmp(val, "false") == 0)
		yes = 0;
	else
		return bad(err, errlen, name, line, "want yes or no for", key);
	/* Only the non-default setting becomes an option. */
	if (strcmp(key, "allow-other-users") == 0 && yes)
		snprintf(out->v[out->n++], CONF_ARG_MAX, "--allow-other-users");
	else if (strcmp(key, "portmap") == 0 && !yes)
		snprintf(out->v[out->n++], CONF_ARG_MAX, "--no-portmap");
	return 0;
}

int
conffile_parse(const char *text, size_t len, const char *name, struct conf_args *out,
    char *err, size_t errlen)
{
	char line[LINE_MAX_LEN + 1], seen[9] = { 0 };
	unsigned lineno = 0;
	size_t i = 0, n;

	memset(out, 0, sizeof(*out));
	while (i < len) {
		lineno++;
		for (n = 0; i + n < len && text[i + n] != '\n'; n++)
			;
		if (n > LINE_MAX_LEN)
			return bad(err, errlen, name, lineno, "line too long", NULL);
		if (memchr(text + i, '\0', n) != NULL)
			return bad(err, errlen, name, lineno, "NUL byte", NULL);
		memcpy(line, text + i, n);
		line[n] = '\0';
		if (one_line(line, name, lineno, out, seen, err, errlen) != 0)
			return -1;
		i += n + 1;
	}
	return 0;
}

int
conffile_load(const char *path, int required, struct conf_args *out, char *err,
    size_t errlen)
{
	static char buf[CONF_FILE_MAX + 1];
	size_t len;
	FILE *f;

	memset(out, 0, sizeof(*out));
	if ((f = fopen(path, "re")) == NULL) {
		if (!required && (errno == ENOENT || errno == EACCES || errno == ENOTDIR))
			return 0;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	len = fread(buf, 1, sizeof(buf), f);
	if (ferror(f) || len > CONF_FILE_MAX) {
		snprintf(err, errlen, "%s: %s", path, ferror(f) ? "cannot read" : "larger than 64 KiB");
		fclose(f);
		return -1;
	}
	fclose(f);
	return conffile_parse(buf, len, path, out, err, errlen);
}

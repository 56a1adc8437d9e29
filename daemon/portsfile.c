/*
 * portsfile: see portsfile.h. Parsing is strict (unknown keys are ignored for later versions,
 * wrong types and out-of-range values are errors) so that a damaged file is noticed, not half
 * applied.
 */
#include "config.h"
#include "daemon/portsfile.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/ip4.h"
#include "base/log.h"
#include "daemon/statefile.h"

enum { PORTS_VERSION = 1, PORTS_FILE_MAX = 256 * 1024 };

static int
fail(char *err, size_t errlen, const char *what, size_t i)
{
	snprintf(err, errlen, "%s (entry %zu)", what, i);
	return -1;
}

/* A JSON integer in 1..65535, or -1. */
static int
port_of(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	json_int_t n;

	if (!json_is_integer(v))
		return -1;
	n = json_integer_value(v);
	return n >= 1 && n <= 65535 ? (int)n : -1;
}

int
portsfile_parse(const char *text, size_t len, struct ports_saved *out, char *err,
    size_t errlen)
{
	json_error_t je;
	json_t *root, *arr, *e, *v;
	uint32_t ip;
	size_t i;
	int p, q, rc = -1;

	memset(out, 0, sizeof(*out));
	if ((root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je)) == NULL) {
		snprintf(err, errlen, "not JSON: %s (line %d)", je.text, je.line);
		return -1;
	}
	if (!json_is_object(root)) {
		snprintf(err, errlen, "not a JSON object");
		goto out;
	}
	v = json_object_get(root, "version");
	if (!json_is_integer(v) || json_integer_value(v) != PORTS_VERSION) {
		snprintf(err, errlen, "unknown version (want %d)", PORTS_VERSION);
		goto out;
	}
	arr = json_object_get(root, "exposes");
	if (arr != NULL && (!json_is_array(arr) || json_array_size(arr) > PORTS_SAVED_MAX)) {
		snprintf(err, errlen, "exposes: not an array of at most %d", PORTS_SAVED_MAX);
		goto out;
	}
	json_array_foreach(arr, i, e) {
		v = json_object_get(e, "udp");
		if (!json_is_object(e) || (p = port_of(e, "port")) < 0 ||
		    (v != NULL && !json_is_boolean(v))) {
			rc = fail(err, errlen, "exposes: want {\"port\": 1..65535, \"udp\": bool}", i);
			goto out;
		}
		out->expose[out->n_expose].port = (uint16_t)p;
		out->expose[out->n_expose++].udp = json_is_true(v);
	}
	arr = json_object_get(root, "forwards");
	if (arr != NULL && (!json_is_array(arr) || json_array_size(arr) > PORTS_SAVED_MAX)) {
		snprintf(err, errlen, "forwards: not an array of at most %d", PORTS_SAVED_MAX);
		goto out;
	}
	json_array_foreach(arr, i, e) {
		v = json_object_get(e, "address");
		if (!json_is_object(e) || (p = port_of(e, "local_port")) < 0 ||
		    (q = port_of(e, "port")) < 0 || !json_is_string(v) ||
		    ip4_parse(json_string_value(v), &ip) != 0) {
			rc = fail(err, errlen, "forwards: want {\"local_port\": 1..65535, "
			    "\"address\": \"A.B.C.D\", \"port\": 1..65535}", i);
			goto out;
		}
		out->forward[out->n_forward].local_port = (uint16_t)p;
		out->forward[out->n_forward].ip = ip;
		out->forward[out->n_forward++].port = (uint16_t)q;
	}
	rc = 0;
out:
	json_decref(root);
	return rc;
}

char *
portsfile_format(const struct ports_saved *ps)
{
	json_t *root, *ex, *fw;
	char ip[IP4_STR_LEN], *text;
	size_t i;

	root = json_object();
	ex = json_array();
	fw = json_array();
	if (root == NULL || ex == NULL || fw == NULL) {
		json_decref(root);
		json_decref(ex);
		json_decref(fw);
		return NULL;
	}
	for (i = 0; i < ps->n_expose; i++)
		json_array_append_new(ex, json_pack("{s:i, s:b}", "port", (int)ps->expose[i].port,
		    "udp", ps->expose[i].udp));
	for (i = 0; i < ps->n_forward; i++)
		json_array_append_new(fw, json_pack("{s:i, s:s, s:i}", "local_port",
		    (int)ps->forward[i].local_port, "address", ip4_str(ps->forward[i].ip, ip),
		    "port", (int)ps->forward[i].port));
	json_object_set_new(root, "version", json_integer(PORTS_VERSION));
	json_object_set_new(root, "exposes", ex);
	json_object_set_new(root, "forwards", fw);
	text = json_dumps(root, JSON_INDENT(1) | JSON_SORT_KEYS);
	json_decref(root);
	return text;
}

static int
ports_path(const char *state_dir, const char *suffix, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s/ports%s", state_dir, suffix);

	return (n < 0 || (size_t)n >= cap) ? -1 : 0;
}

void
portsfile_save(const char *state_dir, const struct expose_table *ex,
    const struct forward_table *fw)
{
	static struct ports_saved ps;   /* 4 KiB: off the stack; the loop is single-threaded */
	char *text;

	ps.n_expose = ex ? expose_list(ex, ps.expose, PORTS_SAVED_MAX) : 0;
	ps.n_forward = fw ? forward_list(fw, ps.forward, PORTS_SAVED_MAX) : 0;
	if ((text = portsfile_format(&ps)) == NULL) {
		log_warnx("event=ports_save_failed path=%s/ports reason=out_of_memory", state_dir);
		return;
	}
	if (statefile_write(state_dir, "ports", text) == 0)
		log_debug("event=ports_saved exposes=%zu forwards=%zu", ps.n_expose, ps.n_forward);
	free(text);
}

/* The file's bytes (malloc'd) or NULL: absent (errno ENOENT), unreadable or too big. */
static char *
read_small(const char *path, size_t *len)
{
	struct stat st;
	char *buf;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return NULL;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > PORTS_FILE_MAX ||
	    (buf = malloc((size_t)st.st_size + 1)) == NULL) {
		close(fd);
		errno = EFBIG;
		return NULL;
	}
	n = read(fd, buf, (size_t)st.st_size);
	close(fd);
	if (n != st.st_size) {
		free(buf);
		errno = EIO;
		return NULL;
	}
	*len = (size_t)n;
	return buf;
}

void
portsfile_restore(const char *state_dir, struct expose_table *ex, struct forward_table *fw)
{
	static struct ports_saved ps;
	char path[4200], bad[4200], err[256], ip[IP4_STR_LEN], *text;
	size_t len = 0, i, made = 0;

	if (ports_path(state_dir, "", path, sizeof(path)) != 0 ||
	    ports_path(state_dir, ".bad", bad, sizeof(bad)) != 0)
		return;
	if ((text = read_small(path, &len)) == NULL) {
		if (errno != ENOENT)
			log_warn("event=ports_restore_failed path=%s", path);
		return;
	}
	if (portsfile_parse(text, len, &ps, err, sizeof(err)) != 0) {
		/* Kept for the user to look at; the next save starts afresh. */
		log_warnx("event=ports_file_bad path=%s reason=\"%s\" moved_to=%s", path, err, bad);
		if (rename(path, bad) != 0)
			log_warn("event=ports_file_move_failed path=%s", path);
		free(text);
		return;
	}
	free(text);
	for (i = 0; i < ps.n_expose; i++) {
		if (ex && expose_add(ex, ps.expose[i].port, ps.expose[i].udp, err, sizeof(err)) == 0)
			made++;
		else
			log_warnx("event=expose_restore_failed port=%u udp=%d reason=\"%s\"",
			    ps.expose[i].port, ps.expose[i].udp, ex ? err : "no expose table");
	}
	for (i = 0; i < ps.n_forward; i++) {
		if (fw && forward_add(fw, ps.forward[i].local_port, ps.forward[i].ip,
		    ps.forward[i].port, err, sizeof(err)) == 0)
			made++;
		else
			log_warnx("event=forward_restore_failed local_port=%u dst=%s:%u "
			    "reason=\"%s\"", ps.forward[i].local_port, ip4_str(ps.forward[i].ip, ip),
			    ps.forward[i].port, fw ? err : "no forward table");
	}
	log_info("event=ports_restored exposes=%zu forwards=%zu made=%zu", ps.n_expose,
	    ps.n_forward, made);
}

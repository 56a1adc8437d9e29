/*
 * control_proto: request validation for the control socket. Pure: JSON text in, struct out.
 * Strict on purpose: unknown commands, unknown or misplaced fields, wrong types and values out
 * of range are all refused with a one-line reason, so a typo in a script fails loudly instead
 * of doing something else. Must not touch: sockets, the daemon, the mediator.
 */
#include "config.h"
#include "control/control_proto.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "base/errmsg.h"

enum field_bit {
	F_NETWORK = 1 << 0, F_PASSWORD = 1 << 1, F_NICK = 1 << 2, F_PEER = 1 << 3,
	F_PORT = 1 << 4, F_LOCAL_PORT = 1 << 5, F_UDP = 1 << 6, F_REMOVE = 1 << 7,
	F_ACCESS = 1 << 8, F_COUNT = 1 << 9, F_TEXT = 1 << 10, F_AFTER = 1 << 11,
	F_LIMIT = 1 << 12,
};

static const struct field_def {
	const char *key;
	unsigned bit;
} fields[] = {
	{ "network", F_NETWORK }, { "password", F_PASSWORD }, { "nick", F_NICK },
	{ "peer", F_PEER }, { "port", F_PORT }, { "local_port", F_LOCAL_PORT },
	{ "udp", F_UDP }, { "remove", F_REMOVE }, { "access", F_ACCESS }, { "count", F_COUNT },
	{ "text", F_TEXT }, { "after", F_AFTER }, { "limit", F_LIMIT },
};

/* required: must be present; allowed: may be present (a superset of required). */
static const struct cmd_def {
	const char *name;
	enum ctl_cmd cmd;
	unsigned required, allowed;
} cmds[] = {
	{ "status", CTL_STATUS, 0, 0 },
	{ "list", CTL_LIST, 0, 0 },
	{ "set-nick", CTL_SET_NICK, F_NICK, F_NICK },
	{ "create", CTL_CREATE, F_NETWORK, F_NETWORK | F_PASSWORD },
	{ "join", CTL_JOIN, F_NETWORK, F_NETWORK | F_PASSWORD },
	{ "leave", CTL_LEAVE, F_NETWORK, F_NETWORK },
	{ "go-online", CTL_GO_ONLINE, F_NETWORK, F_NETWORK },
	{ "go-offline", CTL_GO_OFFLINE, F_NETWORK, F_NETWORK },
	{ "delete", CTL_DELETE, F_NETWORK, F_NETWORK },
	{ "set-pass", CTL_SET_PASS, F_NETWORK | F_PASSWORD, F_NETWORK | F_PASSWORD },
	{ "set-access", CTL_SET_ACCESS, F_NETWORK | F_ACCESS, F_NETWORK | F_ACCESS },
	{ "approve", CTL_APPROVE, F_NETWORK | F_PEER, F_NETWORK | F_PEER },
	{ "reject", CTL_REJECT, F_NETWORK | F_PEER, F_NETWORK | F_PEER },
	{ "evict", CTL_EVICT, F_NETWORK | F_PEER, F_NETWORK | F_PEER },
	{ "expose", CTL_EXPOSE, F_PORT, F_PORT | F_UDP | F_REMOVE },
	/* forward: peer and port are required unless remove is true (checked after the loop) */
	{ "forward", CTL_FORWARD, F_LOCAL_PORT, F_LOCAL_PORT | F_PEER | F_PORT | F_REMOVE },
	{ "ping", CTL_PING, F_PEER, F_PEER | F_COUNT },
	/* chat, chat-history: exactly one of network and peer (checked after the loop) */
	{ "chat", CTL_CHAT, F_TEXT, F_TEXT | F_NETWORK | F_PEER },
	{ "chat-follow", CTL_CHAT_FOLLOW, 0, F_AFTER },
	{ "chat-history", CTL_CHAT_HISTORY, 0, F_NETWORK | F_PEER | F_LIMIT },
	{ "watch", CTL_WATCH, 0, F_AFTER },
};

static const char *const access_names[] = {
	[CTL_ACCESS_LOCK] = "lock", [CTL_ACCESS_UNLOCK] = "unlock",
	[CTL_ACCESS_MANUAL] = "manual", [CTL_ACCESS_AUTO] = "auto",
};

const char *
ctl_cmd_name(enum ctl_cmd cmd)
{
	size_t i;

	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (cmds[i].cmd == cmd)
			return cmds[i].name;
	return NULL;
}

const char *
ctl_access_name(enum ctl_access a)
{
	if ((int)a < CTL_ACCESS_LOCK || (int)a > CTL_ACCESS_AUTO)
		return NULL;
	return access_names[a];
}

/* A field name quoted back in an error: short and printable, whatever the client sent. */
static void
printable(const char *in, char *out, size_t cap)
{
	size_t i;

	for (i = 0; in[i] && i + 1 < cap; i++)
		out[i] = (in[i] >= 0x20 && in[i] < 0x7f) ? in[i] : '?';
	out[i] = '\0';
	if (in[i] && cap > 4)
		memcpy(out + cap - 4, "...", 4);
}

static int
has_control_chars(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 1;
	return 0;
}

/* A string field of minlen..maxlen bytes without control characters, copied into out. */
static int
get_string(json_t *v, const char *key, size_t minlen, size_t maxlen, char *out, char *err,
    size_t errlen)
{
	const char *s;
	size_t len;

	if (!json_is_string(v))
		return errmsg_fail(err, errlen, "field \"%s\" must be a string", key);
	s = json_string_value(v);
	len = json_string_length(v);
	if (len < minlen)
		return errmsg_fail(err, errlen, "field \"%s\" must not be empty", key);
	if (len > maxlen)
		return errmsg_fail(err, errlen, "field \"%s\" is too long (at most %zu bytes)", key,
		    maxlen);
	if (strlen(s) != len || has_control_chars(s, len))
		return errmsg_fail(err, errlen, "field \"%s\" contains control characters", key);
	memcpy(out, s, len);
	out[len] = '\0';
	return 0;
}

static int
get_int(json_t *v, const char *key, long long lo, long long hi, long long *out, char *err,
    size_t errlen)
{
	long long n;

	if (!json_is_integer(v))
		return errmsg_fail(err, errlen, "field \"%s\" must be an integer", key);
	n = (long long)json_integer_value(v);
	if (n < lo || n > hi)
		return errmsg_fail(err, errlen, "field \"%s\" must be between %lld and %lld", key,
		    lo, hi);
	*out = n;
	return 0;
}

static int
get_bool(json_t *v, const char *key, int *out, char *err, size_t errlen)
{
	if (!json_is_boolean(v))
		return errmsg_fail(err, errlen, "field \"%s\" must be true or false", key);
	*out = json_is_true(v);
	return 0;
}

static int
get_field(struct ctl_request *rq, unsigned bit, const char *key, json_t *v, char *err,
    size_t errlen)
{
	long long n;
	size_t i;

	switch (bit) {
	case F_NETWORK:
		return get_string(v, key, 1, NAME_MAX_LEN, rq->network, err, errlen);
	case F_PASSWORD:
		return get_string(v, key, 0, PASSWORD_MAX_LEN, rq->password, err, errlen);
	case F_NICK:
		return get_string(v, key, 1, NICK_MAX_LEN, rq->nick, err, errlen);
	case F_PEER:
		return get_string(v, key, 1, CTL_PEER_MAX, rq->peer, err, errlen);
	case F_PORT:
	case F_LOCAL_PORT:
		if (get_int(v, key, 1, 65535, &n, err, errlen) == -1)
			return -1;
		if (bit == F_PORT)
			rq->port = (uint16_t)n;
		else
			rq->local_port = (uint16_t)n;
		return 0;
	case F_UDP:
		return get_bool(v, key, &rq->udp, err, errlen);
	case F_REMOVE:
		return get_bool(v, key, &rq->remove, err, errlen);
	case F_COUNT:
		if (get_int(v, key, 1, CTL_PING_MAX, &n, err, errlen) == -1)
			return -1;
		rq->count = (int)n;
		return 0;
	case F_TEXT:
		return get_string(v, key, 1, CTL_CHAT_TEXT_MAX, rq->text, err, errlen);
	case F_AFTER:
		/* JSON integers are doubles to many clients: 2^53 is plenty of messages */
		if (get_int(v, key, 0, 1LL << 53, &n, err, errlen) == -1)
			return -1;
		rq->after = (uint64_t)n;
		return 0;
	case F_LIMIT:
		if (get_int(v, key, 1, CTL_CHAT_LIMIT_MAX, &n, err, errlen) == -1)
			return -1;
		rq->limit = (int)n;
		return 0;
	case F_ACCESS:
		if (json_is_string(v))
			for (i = CTL_ACCESS_LOCK; i <= CTL_ACCESS_AUTO; i++)
				if (strcmp(json_string_value(v), access_names[i]) == 0) {
					rq->access = (enum ctl_access)i;
					return 0;
				}
		return errmsg_fail(err, errlen,
		    "field \"%s\" must be \"lock\", \"unlock\", \"manual\" or \"auto\"", key);
	}
	return errmsg_fail(err, errlen, "internal error: field %s", key);
}

static int
parse_object(json_t *root, struct ctl_request *rq, char *err, size_t errlen)
{
	const struct cmd_def *def = NULL;
	const char *key, *cmd;
	char shown[40];
	unsigned seen = 0, missing;
	json_t *v;
	size_t i;

	if (!json_is_object(root))
		return errmsg_fail(err, errlen, "request must be a JSON object");
	v = json_object_get(root, "id");
	if (!v)
		return errmsg_fail(err, errlen, "missing field \"id\"");
	if (!json_is_integer(v))
		return errmsg_fail(err, errlen, "field \"id\" must be an integer");
	rq->has_id = 1;
	rq->id = (int64_t)json_integer_value(v);

	v = json_object_get(root, "cmd");
	if (!v)
		return errmsg_fail(err, errlen, "missing field \"cmd\"");
	if (!json_is_string(v))
		return errmsg_fail(err, errlen, "field \"cmd\" must be a string");
	cmd = json_string_value(v);
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(cmd, cmds[i].name) == 0)
			def = &cmds[i];
	if (!def) {
		printable(cmd, shown, sizeof(shown));
		return errmsg_fail(err, errlen, "unknown command \"%s\"", shown);
	}
	rq->cmd = def->cmd;

	json_object_foreach(root, key, v) {
		unsigned bit = 0;

		if (strcmp(key, "id") == 0 || strcmp(key, "cmd") == 0)
			continue;
		for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
			if (strcmp(key, fields[i].key) == 0)
				bit = fields[i].bit;
		if (!(bit & def->allowed)) {
			printable(key, shown, sizeof(shown));
			return errmsg_fail(err, errlen,
			    "unexpected field \"%s\" for command \"%s\"",
			    shown, def->name);
		}
		if (get_field(rq, bit, key, v, err, errlen) == -1)
			return -1;
		seen |= bit;
	}

	missing = def->required & ~seen;
	if (def->cmd == CTL_FORWARD && !rq->remove)
		missing |= (F_PEER | F_PORT) & ~seen;
	if ((def->cmd == CTL_CHAT || def->cmd == CTL_CHAT_HISTORY) &&
	    !(seen & F_NETWORK) == !(seen & F_PEER))
		return errmsg_fail(err, errlen,
		    "command \"%s\" wants exactly one of \"network\" and "
		    "\"peer\"", def->name);
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (missing & fields[i].bit)
			return errmsg_fail(err, errlen, "missing field \"%s\" for command \"%s\"",
			    fields[i].key, def->name);
	return 0;
}

int
ctl_request_parse(const char *line, size_t len, struct ctl_request *rq, char *err,
    size_t errlen)
{
	json_error_t jerr;
	json_t *root;
	char shown[120];
	int rc;

	memset(rq, 0, sizeof(*rq));
	rq->count = CTL_PING_DEFAULT;
	rq->limit = CTL_CHAT_LIMIT_DEFAULT;
	if (len > CTL_LINE_MAX)
		return errmsg_fail(err, errlen, "request longer than %d bytes", CTL_LINE_MAX);
	/* Duplicate keys are refused: which one wins would otherwise be up to the parser. */
	root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		/* jansson quotes the offending input, which may be any bytes */
		printable(jerr.text, shown, sizeof(shown));
		return errmsg_fail(err, errlen, "bad JSON at column %d: %s", jerr.column, shown);
	}
	rc = parse_object(root, rq, err, errlen);
	json_decref(root);
	return rc;
}

/*
 * control_proto: the pure half of the control socket protocol: one request line (JSON) in,
 * a validated struct ctl_request or a one-line error out. No I/O, no daemon state, so the
 * unit test and the fuzzer drive it directly. docs/PROTOCOL.md section 5 lists every command
 * and field; keep the table in control_proto.c and that section in step.
 * Owns: nothing beyond the caller's struct.
 */
#ifndef SHOAL_CONTROL_PROTO_H
#define SHOAL_CONTROL_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "base/proto.h"

enum {
	CTL_LINE_MAX = 64 * 1024,       /* longest request line, excluding the newline */
	CTL_PEER_MAX = 128,             /* a peer as typed: nick, dotted address or id prefix */
	CTL_PING_MAX = 100,             /* most pings one request may ask for */
	CTL_PING_DEFAULT = 3,
	CTL_CHAT_TEXT_MAX = 2000,       /* CHAT_TEXT_MAX (mproto/chatmsg.h) */
	CTL_CHAT_LIMIT_MAX = 500,       /* CHAT_HISTORY_MAX */
	CTL_CHAT_LIMIT_DEFAULT = 50,
};

enum ctl_cmd {
	CTL_STATUS = 1, CTL_LIST, CTL_SET_NICK, CTL_CREATE, CTL_JOIN, CTL_LEAVE, CTL_GO_ONLINE,
	CTL_GO_OFFLINE, CTL_DELETE, CTL_SET_PASS, CTL_SET_ACCESS, CTL_APPROVE, CTL_REJECT,
	CTL_EVICT, CTL_EXPOSE, CTL_FORWARD, CTL_PING, CTL_CHAT, CTL_CHAT_FOLLOW, CTL_CHAT_HISTORY,
	CTL_WATCH,
};

enum ctl_access { CTL_ACCESS_LOCK = 1, CTL_ACCESS_UNLOCK, CTL_ACCESS_MANUAL, CTL_ACCESS_AUTO };

/* One validated request. Owned by the caller; plain data, no pointers. */
struct ctl_request {
	int has_id;                     /* set even when parsing fails later, to echo the id */
	int64_t id;
	enum ctl_cmd cmd;
	char network[NAME_MAX_LEN + 1];
	char password[PASSWORD_MAX_LEN + 1]; /* "" when absent */
	char nick[NICK_MAX_LEN + 1];
	char peer[CTL_PEER_MAX + 1];
	enum ctl_access access;
	uint16_t port;                  /* expose: the port; forward: the peer's port */
	uint16_t local_port;            /* forward */
	int udp;                        /* expose */
	int remove;                     /* expose, forward */
	int count;                      /* ping */
	char text[CTL_CHAT_TEXT_MAX + 1];       /* chat */
	uint64_t after;                 /* chat-follow: entries after this id; watch: a generation */
	int limit;                      /* chat-history */
};

/*
 * Parses and validates one request line (without its newline; need not be NUL-terminated).
 * Returns 0, or -1 with a one-line reason in err; rq->has_id/id are filled whenever the id
 * could be read, so the error response can carry it.
 */
int ctl_request_parse(const char *line, size_t len, struct ctl_request *rq, char *err,
    size_t errlen);

/* The wire name of a command ("set-nick"), or NULL. */
const char *ctl_cmd_name(enum ctl_cmd cmd);
/* The wire name of an access change ("lock"), or NULL. */
const char *ctl_access_name(enum ctl_access a);

#endif

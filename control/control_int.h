/*
 * control_int: what control.c (socket, clients, framing) and control_cmd.c (what each command
 * does) share. Not for other modules: they use control/control.h.
 *
 * Lifetime rule for asynchronous answers: a command that waits (mediator round trip, ping)
 * holds a struct ctl_pending. The pending record, not the client, is what the callback gets;
 * when the client goes away first, its records are detached (client = NULL) and the callback
 * frees the record without answering. Callbacks of medclient_request and peers_ping fire exactly
 * once, so every record is freed exactly once.
 */
#ifndef SHOAL_CONTROL_INT_H
#define SHOAL_CONTROL_INT_H

#include <ev.h>
#include <jansson.h>
#include <stdint.h>

#include "mproto/msg.h"
#include "control/control.h"
#include "control/control_proto.h"

struct ctl_client;

/* One request waiting for an answer. Owned by control_cmd.c; listed on its client. */
struct ctl_pending {
	struct ctl_pending *next, *prev;   /* the client's list */
	struct ctl_client *client;         /* NULL once the client has gone */
	const struct control_env *env;     /* the control's; use only while client is set (a
	                                    * detached record may outlive the control) */
	int64_t id;
	int outstanding;                   /* a mediator/peers callback will still fire */
	struct ctl_request rq;             /* the request being answered */
	/* ping */
	ev_timer gap;                      /* between one reply and the next ping */
	uint32_t addr;
	char nick[NICK_MAX_LEN + 1];
	int seq;
	double rtt[CTL_PING_MAX];
	/* chat-follow: the wait for new messages (medclient_chat_wait), its deadline in gap */
	void *chat_wait;
	/* watch: its place among the waiting watches (control_watch.c), its deadline in gap */
	struct ctl_pending *wnext, *wprev;
	struct ctl_watch *watch;
};

/* control.c */
/* Sends {"id":id, "ok":true, ...obj}. Takes the reference to obj. */
void ctl_reply_ok(struct ctl_client *cl, int64_t id, json_t *obj);
/* Sends {"id":id|null, "ok":false, "error":"..."}. */
void ctl_reply_error(struct ctl_client *cl, int has_id, int64_t id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Attaches a new pending record to cl, or NULL (out of memory, too many in flight: then an
 * error has been sent). */
struct ctl_pending *ctl_pending_new(struct ctl_client *cl, const struct ctl_request *rq);
/* Detaches (if still attached) and frees p. */
void ctl_pending_free(struct ctl_pending *p);

/* control_cmd.c: runs one validated request; answers now or through a pending record. */
void ctl_cmd_run(const struct control_env *env, struct ctl_client *cl,
    const struct ctl_request *rq);
/* A client went away while p waited for its timer (not for a callback): stop it. */
void ctl_cmd_cancel(struct ctl_pending *p);
/* Strings for responses: network text kept if UTF-8 (else made printable), keys in hex. */
json_t *ctl_jtext(const char *s);
json_t *ctl_jhex(const uint8_t key[KEY_LEN]);

/* control.c: the control's one watch state (control_watch.c), shared by its clients. */
struct ctl_watch *ctl_client_watch(struct ctl_client *cl);

/* control_cmd.c: what `status` and `list` answer (5.5), also what a watch digests. list:
 * NULL when out of memory. */
json_t *ctl_status_json(const struct control_env *env);
json_t *ctl_list_json(const struct control_env *env);

/* control_watch.c: the watch command (a generation that grows whenever status, list or the
 * chat ring would answer differently). */
struct ctl_watch *ctl_watch_new(const struct control_env *env);
void ctl_watch_free(struct ctl_watch *w);
void ctl_watch_run(const struct control_env *env, struct ctl_client *cl,
    const struct ctl_request *rq);
void ctl_watch_cancel(struct ctl_pending *p);

/* control_chat.c: chat, chat-follow, chat-history. */
void ctl_chat_run(const struct control_env *env, struct ctl_client *cl,
    const struct ctl_request *rq);
void ctl_chat_cancel(struct ctl_pending *p);

#endif

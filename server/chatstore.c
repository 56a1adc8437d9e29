/*
 * chatstore: the front of the chat's persistence (chatstore.h), forwarding to the backend the
 * store was opened with (store_backend.h). Must not touch: any database API.
 */
#include "config.h"
#include "server/chatstore.h"

#include "server/store_backend.h"

int
chatstore_resend(struct store *st, const uint8_t sender[KEY_LEN], uint32_t client_id)
{
	return st->chat->resend(st, sender, client_id);
}

int
chatstore_add(struct store *st, const char *conv, const struct chat_row *r,
    const uint8_t (*to)[KEY_LEN], size_t n, unsigned keep, unsigned box_max)
{
	return st->chat->add(st, conv, r, to, n, keep, box_max);
}

int
chatstore_pending(struct store *st, const uint8_t node[KEY_LEN], uint64_t after, unsigned max,
    chat_row_cb cb, void *arg)
{
	return st->chat->pending(st, node, after, max, cb, arg);
}

int
chatstore_ack(struct store *st, const uint8_t node[KEY_LEN], uint64_t seq)
{
	return st->chat->ack(st, node, seq);
}

int
chatstore_history(struct store *st, const char *conv, unsigned limit, chat_row_cb cb, void *arg)
{
	return st->chat->history(st, conv, limit, cb, arg);
}

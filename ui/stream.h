/*
 * stream: the window's live stream, GET /events (docs/PROTOCOL.md 5.8): server-sent events
 * fed by the control socket's `watch` command. Private to ui/ (ui.c authenticates the request
 * and queues the response).
 *
 * Each stream holds one control connection with one watch outstanding. When the generation
 * grows the page gets "event: change" with data {"gen":G,"chat":C} (the newest chat id: the
 * page asks chat-follow only when it grew, so it holds no long poll); when the watch comes back
 * unchanged (every 15 s) a comment line, which also finds a page that went away. After an
 * event the next watch waits UI_STREAM_GAP_S, so a burst of changes is at most ten events a
 * second. The connection is suspended while there is nothing to send.
 */
#ifndef SHOAL_UI_STREAM_H
#define SHOAL_UI_STREAM_H

struct ev_loop;
struct MHD_Connection;
struct MHD_Response;
struct ui_stream;

#define UI_STREAM_GAP_S 0.1

/*
 * A stream for connection c, on the list *head (the owner's, for ui_stream_end_all), watching
 * through the control socket at ctl_path. kick(arg) must make MHD run soon, not from inside
 * the call (a resumed connection has bytes to send). The returned response is the caller's
 * to queue and destroy; MHD frees the stream with it. NULL on failure (nothing left behind).
 */
struct MHD_Response *ui_stream_new(struct ev_loop *loop, struct ui_stream **head,
    const char *ctl_path, struct MHD_Connection *c, void (*kick)(void *arg), void *arg);
/* Shutdown: every stream on the list ends (the page sees the end of the stream) and its
 * connection is resumed, so MHD can finish it. */
void ui_stream_end_all(struct ui_stream *head);

#endif

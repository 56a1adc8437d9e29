/*
 * ui: the IM-style window (issue 11), served by shoald on 127.0.0.1 with libmicrohttpd run on
 * the daemon's libev loop (no thread). The page and its script are compiled in (ui/web/,
 * embedded at build time: no CDN, works offline). Its one API is POST /api: the body is a
 * control request (docs/PROTOCOL.md 5.3), relayed as it is to the daemon's own control socket,
 * so the window can do exactly what the CLI can, through the same validation and code.
 *
 * Only the user who runs shoald may use it: every API call must carry the secret token of
 * STATE_DIR/ui.token (made at first start, mode 0600) in an X-Shoal-Token header; anything
 * else gets 403. The token never travels in a URL the server sees: `shoal ui` opens
 * http://127.0.0.1:PORT/#TOKEN and the page reads it from the fragment. The Host header must
 * name the loopback listener (no DNS rebinding), and a cross-site page cannot set the header.
 * EventSource cannot set headers: the page trades its token (POST /ticket, with the header)
 * for a one-time ticket that opens one stream (GET /events?ticket=T) within 30 s. Not a
 * cookie: cookies of 127.0.0.1 go to every port of it, so any local user's server would get it.
 */
#ifndef SHOAL_UI_H
#define SHOAL_UI_H

#include <stdint.h>

struct ev_loop;
struct ui;

/*
 * Listens on host:port (port 0: the kernel picks one) and relays API calls to the control
 * socket at control_path. The token is read from (or first written to) state_dir/ui.token.
 * NULL on failure (logged).
 */
struct ui *ui_new(struct ev_loop *loop, const char *host, uint16_t port, const char *control_path,
    const char *state_dir);
/* "http://127.0.0.1:PORT/" (without the token; the CLI reads the token file itself). */
const char *ui_url(const struct ui *u);
void ui_free(struct ui *u);

#endif

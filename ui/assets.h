/*
 * assets: the window's files (ui/web/), compiled into shoald by ui/embed.sh so the page works
 * offline and never loads anything from elsewhere.
 */
#ifndef SHOAL_UI_ASSETS_H
#define SHOAL_UI_ASSETS_H

#include <stddef.h>

struct ui_asset {
	const char *path;               /* "/index.html" */
	const char *type;               /* Content-Type */
	const unsigned char *data;
	size_t len;
};

/* The asset at path, or NULL. */
const struct ui_asset *ui_asset_find(const char *path);

#endif

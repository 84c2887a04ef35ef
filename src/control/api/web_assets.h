/*
 * web_assets.h — the web console's files, compiled into the binary (tools/embed_web.py
 * writes $(B)/gen/web_assets.c from web/). The table is sorted by path and ends with an
 * entry whose path is NULL.
 */
#ifndef KP_WEB_ASSETS_H
#define KP_WEB_ASSETS_H

#include <stddef.h>

typedef struct kp_web_asset {
    const char *path;         /* "/index.html" */
    const char *content_type; /* "text/html; charset=utf-8" */
    const char *etag;         /* strong ETag, quoted */
    const unsigned char *data;
    size_t len;
} kp_web_asset_t;

extern const kp_web_asset_t kp_web_assets[];
extern const unsigned kp_web_assets_count;

#endif

/*
 * console.h — the web console's static files (web/, compiled into the binary: web_assets.h),
 * served by the control plane API at "/" without authentication: the files hold no data,
 * only the app that signs in and then calls the API with the team's token (docs/console.md).
 *
 * Only the embedded files can be named: a URL is looked up in the table, never on disk, so
 * no path can reach the file system. "/" is index.html. GET and HEAD only. Every answer has
 * an ETag (If-None-Match -> 304), "Cache-Control: no-cache" (revalidate: file names carry no
 * hash, so an upgraded binary must not be hidden behind a cached app) and a
 * Content-Security-Policy that allows only the console's own origin.
 */
#ifndef KP_CONSOLE_H
#define KP_CONSOLE_H

#include <microhttpd.h>

/* Whether url names a console file ("/" or an embedded path). */
int kp_console_route(const char *url);

/* Answers a request for which kp_console_route(url) held. Runs on an API thread. */
enum MHD_Result kp_console_serve(struct MHD_Connection *conn, const char *url, const char *method);

#endif

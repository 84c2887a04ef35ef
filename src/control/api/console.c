/* console.c — serving the web console's embedded files (see console.h). */
#include "control/api/console.h"

#include "control/api/web_assets.h"

#include <string.h>

/* The app loads only its own files and talks only to this origin (the API); no inline
 * script or style, so an injected string cannot run. */
#define CONSOLE_CSP                                                                                \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

static const kp_web_asset_t *lookup(const char *url)
{
    if (!strcmp(url, "/")) url = "/index.html";
    /* the table is small (a handful of files): a scan is simpler than a hash */
    for (unsigned i = 0; i < kp_web_assets_count; i++)
        if (!strcmp(kp_web_assets[i].path, url)) return &kp_web_assets[i];
    return NULL;
}

int kp_console_route(const char *url)
{
    return url && lookup(url) != NULL;
}

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned code, struct MHD_Response *r,
                              const kp_web_asset_t *a)
{
    if (a) {
        MHD_add_response_header(r, "Content-Type", a->content_type);
        MHD_add_response_header(r, "ETag", a->etag);
    }
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Content-Security-Policy", CONSOLE_CSP);
    enum MHD_Result rc = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return rc;
}

enum MHD_Result kp_console_serve(struct MHD_Connection *conn, const char *url, const char *method)
{
    const kp_web_asset_t *a = lookup(url);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        static const char msg[] = "method not allowed\n";
        struct MHD_Response *r =
            MHD_create_response_from_buffer(sizeof(msg) - 1, (void *)msg, MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(r, "Allow", "GET, HEAD");
        return answer(conn, MHD_HTTP_METHOD_NOT_ALLOWED, r, NULL);
    }
    const char *inm = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "If-None-Match");
    if (inm && strstr(inm, a->etag)) {
        struct MHD_Response *r =
            MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        return answer(conn, MHD_HTTP_NOT_MODIFIED, r, a);
    }
    /* the bytes live in the binary for its whole life: no copy */
    struct MHD_Response *r =
        MHD_create_response_from_buffer(a->len, (void *)a->data, MHD_RESPMEM_PERSISTENT);
    return answer(conn, MHD_HTTP_OK, r, a);
}

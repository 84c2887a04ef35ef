/*
 * client.c — the control plane API client: configuration file, one libcurl request, Warning
 * headers, and Kubernetes Status errors as one line.
 *
 * Divided into: text helpers (sanitising what the server sends before it reaches a terminal)
 * · configuration · Warning and error formatting (pure, unit-tested) · the request itself.
 */
#include "cli/client.h"

#include "core/yamljson.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define KPOOL_USER_AGENT "kpool-cli/0.1.0"

struct kp_client {
    kp_client_config_t cfg;
    long timeout_ms;
    CURL *curl;
};

/* ---- text helpers ---- */

/* Appends s[0..n) to out with control characters replaced by spaces, so text chosen by a
 * server (messages, names) cannot move the cursor or recolour the terminal. */
static void append_clean(kp_buf_t *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        char c = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
        kp_buf_append(out, &c, 1);
    }
}

/* Copies buf into out (NUL-terminated, truncated to outlen). */
static void buf_copy_out(kp_buf_t *b, char *out, size_t outlen)
{
    if (!outlen) return;
    size_t n = b->len < outlen - 1 ? b->len : outlen - 1;
    if (n) memcpy(out, b->data, n);
    out[n] = '\0';
}

/* ---- configuration ---- */

void kp_client_config_path(char *out, size_t outlen)
{
    const char *env = getenv("KPOOL_CONFIG");
    if (env && *env) {
        snprintf(out, outlen, "%s", env);
        return;
    }
    const char *home = getenv("HOME");
    snprintf(out, outlen, "%s/.config/kpool/config.yaml", home && *home ? home : ".");
}

void kp_client_config_free(kp_client_config_t *cfg)
{
    if (cfg->token) explicit_bzero(cfg->token, strlen(cfg->token));
    free(cfg->server);
    free(cfg->token);
    free(cfg->ca);
    free(cfg->namespace);
    free(cfg->path);
    memset(cfg, 0, sizeof(*cfg));
}

/* Reads a whole file of at most max bytes into b. 0, -ENOENT, or -1 with err set. */
static int read_small_file(const char *path, size_t max, kp_buf_t *b, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT) return -ENOENT;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (b->len + n > max) {
            snprintf(err, errlen, "%s: larger than %zu bytes", path, max);
            fclose(f);
            return -1;
        }
        kp_buf_append(b, chunk, n);
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        snprintf(err, errlen, "%s: read error", path);
        return -1;
    }
    return 0;
}

/* Takes the string field key of the config object into *dst. -1 when it is not a string. */
static int config_take(json_t *doc, const char *key, char **dst, const char *path, char *err,
                       size_t errlen)
{
    json_t *v = json_object_get(doc, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v)) {
        snprintf(err, errlen, "%s: '%s' must be a string", path, key);
        return -1;
    }
    free(*dst);
    *dst = kp_xstrdup(json_string_value(v));
    return 0;
}

/* Makes a relative ca path relative to the config file's directory. */
static void config_resolve_ca(kp_client_config_t *cfg)
{
    if (!cfg->ca || cfg->ca[0] == '/' || !cfg->ca[0]) return;
    const char *slash = strrchr(cfg->path, '/');
    if (!slash) return;
    kp_buf_t b;
    kp_buf_init(&b);
    kp_buf_appendf(&b, "%.*s/%s", (int)(slash - cfg->path), cfg->path, cfg->ca);
    kp_buf_append(&b, "", 1);
    free(cfg->ca);
    cfg->ca = (char *)b.data;
}

int kp_client_config_load(kp_client_config_t *cfg, const char *path, char *err, size_t errlen)
{
    char def[4096];
    memset(cfg, 0, sizeof(*cfg));
    if (!path) {
        kp_client_config_path(def, sizeof(def));
        path = def;
    }
    cfg->path = kp_xstrdup(path);
    kp_buf_t b;
    kp_buf_init(&b);
    int rc = read_small_file(path, KP_CLIENT_CONFIG_BYTES_MAX, &b, err, errlen);
    if (rc == -ENOENT) {
        kp_buf_free(&b);
        cfg->server = kp_xstrdup(KP_CLIENT_SERVER_DEFAULT);
        return 0;
    }
    if (rc < 0) goto fail;
    cfg->file_found = 1;
    char yerr[256] = "";
    json_t *doc = kp_yaml_parse_one(b.len ? (const char *)b.data : "", b.len, yerr, sizeof(yerr));
    explicit_bzero(b.data, b.len); /* the file holds the token */
    if (!doc) {
        snprintf(err, errlen, "%s: invalid YAML: %s", path, yerr);
        goto fail;
    }
    if (!json_is_object(doc) && !json_is_null(doc)) {
        snprintf(err, errlen, "%s: expected a mapping with server, token, ca, namespace", path);
        json_decref(doc);
        goto fail;
    }
    if (json_is_object(doc) &&
        (config_take(doc, "server", &cfg->server, path, err, errlen) ||
         config_take(doc, "token", &cfg->token, path, err, errlen) ||
         config_take(doc, "ca", &cfg->ca, path, err, errlen) ||
         config_take(doc, "namespace", &cfg->namespace, path, err, errlen))) {
        json_decref(doc);
        goto fail;
    }
    json_decref(doc);
    kp_buf_free(&b);
    if (!cfg->server || !cfg->server[0]) {
        free(cfg->server);
        cfg->server = kp_xstrdup(KP_CLIENT_SERVER_DEFAULT);
    }
    config_resolve_ca(cfg);
    return 0;
fail:
    kp_buf_free(&b);
    kp_client_config_free(cfg);
    return -1;
}

/* ---- Warning headers and errors ---- */

void kp_client_warning_decode(const char *value, size_t len, char *out, size_t outlen)
{
    kp_buf_t b;
    kp_buf_init(&b);
    const char *p = value, *end = value + len;
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
        end--;
    /* RFC 7234: warn-code SP warn-agent SP quoted-string [SP warn-date] */
    const char *q = p;
    int digits = 0;
    while (q < end && *q >= '0' && *q <= '9') q++, digits++;
    const char *agent_end = NULL;
    if (digits == 3 && q < end && *q == ' ') {
        agent_end = memchr(q + 1, ' ', (size_t)(end - q - 1));
    }
    if (agent_end && agent_end + 1 < end && agent_end[1] == '"') {
        for (q = agent_end + 2; q < end && *q != '"'; q++) {
            if (*q == '\\' && q + 1 < end) q++;
            append_clean(&b, q, 1);
        }
    } else {
        append_clean(&b, p, (size_t)(end - p));
    }
    buf_copy_out(&b, out, outlen);
    kp_buf_free(&b);
}

static const char *reason_for_status(long status)
{
    switch (status) {
    case 400:
        return "BadRequest";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "NotFound";
    case 405:
        return "MethodNotAllowed";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 413:
        return "RequestEntityTooLarge";
    case 415:
        return "UnsupportedMediaType";
    case 422:
        return "Invalid";
    case 429:
        return "TooManyRequests";
    case 500:
        return "InternalError";
    case 503:
        return "ServiceUnavailable";
    case 504:
        return "Timeout";
    default:
        return status >= 500 ? "InternalError" : "Unknown";
    }
}

/* "field: message; field: message" from a Status's details.causes[]. */
static void append_causes(kp_buf_t *b, const json_t *details)
{
    json_t *causes = json_object_get(details, "causes");
    size_t i;
    json_t *c;
    json_array_foreach(causes, i, c)
    {
        const char *field = json_string_value(json_object_get(c, "field"));
        const char *msg = json_string_value(json_object_get(c, "message"));
        if (!msg) continue;
        if (i) kp_buf_append(b, "; ", 2);
        if (field) {
            append_clean(b, field, strlen(field));
            kp_buf_append(b, ": ", 2);
        }
        append_clean(b, msg, strlen(msg));
    }
}

void kp_client_error_format(long status, const json_t *json, const kp_buf_t *body, char *out,
                            size_t outlen)
{
    kp_buf_t b;
    kp_buf_init(&b);
    const char *kind = json_string_value(json_object_get(json, "kind"));
    if (kind && !strcmp(kind, "Status")) {
        const char *reason = json_string_value(json_object_get(json, "reason"));
        const char *msg = json_string_value(json_object_get(json, "message"));
        json_t *code = json_object_get(json, "code");
        long c = json_is_integer(code) ? (long)json_integer_value(code) : status;
        kp_buf_appendf(
            &b, "Error from server (%s): ", reason && *reason ? reason : reason_for_status(c));
        if (msg && *msg)
            append_clean(&b, msg, strlen(msg));
        else if (json_array_size(json_object_get(json_object_get(json, "details"), "causes")))
            append_causes(&b, json_object_get(json, "details"));
        else
            kp_buf_appendf(&b, "HTTP %ld", status);
    } else if (status == 404) {
        kp_buf_appendf(&b, "Error from server (NotFound): the server could not find the "
                           "requested resource (is the server a kpool control plane?)");
    } else {
        kp_buf_appendf(&b, "Error from server (%s): HTTP %ld", reason_for_status(status), status);
        /* the first line of a non-Status body, shortened: enough to recognise a proxy page */
        size_t n = 0;
        while (body && n < body->len && n < 200 && body->data[n] != '\n') n++;
        if (n) {
            kp_buf_append(&b, ": ", 2);
            append_clean(&b, (const char *)body->data, n);
        }
    }
    buf_copy_out(&b, out, outlen);
    kp_buf_free(&b);
}

/* ---- the client ---- */

static int curl_users;

static int is_loopback_url(const char *url)
{
    const char *h = strstr(url, "://");
    if (!h) return 0;
    h += 3;
    static const char *loop[] = {"127.", "localhost:", "localhost/", "[::1]"};
    for (size_t i = 0; i < sizeof(loop) / sizeof(*loop); i++)
        if (!strncmp(h, loop[i], strlen(loop[i]))) return 1;
    return !strcmp(h, "localhost");
}

static int client_check(kp_client_t *c, char *err, size_t errlen)
{
    kp_client_config_t *cfg = &c->cfg;
    size_t n = strlen(cfg->server);
    while (n > 0 && cfg->server[n - 1] == '/') cfg->server[--n] = '\0';
    int https = !strncasecmp(cfg->server, "https://", 8);
    if (!https && strncasecmp(cfg->server, "http://", 7)) {
        snprintf(err, errlen, "server '%s' is not an http:// or https:// URL", cfg->server);
        return -1;
    }
    for (const char *p = cfg->server; *p; p++) {
        if ((unsigned char)*p <= 0x20) {
            snprintf(err, errlen, "server URL contains spaces or control characters");
            return -1;
        }
    }
    if (cfg->token) {
        for (const char *p = cfg->token; *p; p++) {
            if ((unsigned char)*p < 0x20 || *p == 0x7f) {
                snprintf(err, errlen, "the token (from %s) contains control characters", cfg->path);
                return -1;
            }
        }
    }
    if (https && cfg->ca && access(cfg->ca, R_OK) != 0) {
        snprintf(err, errlen, "ca '%s' (from %s): %s", cfg->ca, cfg->path, strerror(errno));
        return -1;
    }
    return 0;
}

kp_client_t *kp_client_new(const kp_client_opts_t *opts, char *err, size_t errlen)
{
    kp_client_t *c = kp_xcalloc(1, sizeof(*c));
    if (kp_client_config_load(&c->cfg, NULL, err, errlen) < 0) {
        free(c);
        return NULL;
    }
    if (opts && opts->server) {
        free(c->cfg.server);
        c->cfg.server = kp_xstrdup(opts->server);
    }
    if (opts && opts->token) {
        if (c->cfg.token) explicit_bzero(c->cfg.token, strlen(c->cfg.token));
        free(c->cfg.token);
        c->cfg.token = kp_xstrdup(opts->token);
    }
    c->timeout_ms = opts && opts->timeout_ms > 0 ? opts->timeout_ms : KP_CLIENT_TIMEOUT_MS_DEFAULT;
    if (client_check(c, err, errlen) < 0) goto fail;
    if (curl_users++ == 0 && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        curl_users--;
        snprintf(err, errlen, "cannot initialise libcurl");
        goto fail;
    }
    c->curl = curl_easy_init();
    if (!c->curl) {
        snprintf(err, errlen, "cannot initialise libcurl");
        if (--curl_users == 0) curl_global_cleanup();
        goto fail;
    }
    return c;
fail:
    kp_client_config_free(&c->cfg);
    free(c);
    return NULL;
}

void kp_client_free(kp_client_t *c)
{
    if (!c) return;
    if (c->curl) {
        curl_easy_cleanup(c->curl);
        if (--curl_users == 0) curl_global_cleanup();
    }
    kp_client_config_free(&c->cfg);
    free(c);
}

const kp_client_config_t *kp_client_config(const kp_client_t *c)
{
    return &c->cfg;
}

const char *kp_client_namespace(const kp_client_t *c)
{
    return c->cfg.namespace && *c->cfg.namespace ? c->cfg.namespace : KP_CLIENT_NAMESPACE_DEFAULT;
}

void kp_client_resp_free(kp_client_resp_t *r)
{
    json_decref(r->json);
    kp_buf_free(&r->body);
    kp_buf_free(&r->warns);
    memset(r, 0, sizeof(*r));
}

typedef struct xfer {
    kp_client_resp_t *resp;
    int too_large;
} xfer_t;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
    xfer_t *x = arg;
    size_t n = size * nmemb;
    if (x->resp->body.len + n > KP_CLIENT_BODY_BYTES_MAX) {
        x->too_large = 1;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    kp_buf_append(&x->resp->body, ptr, n);
    return n;
}

static size_t on_header(char *ptr, size_t size, size_t nitems, void *arg)
{
    xfer_t *x = arg;
    size_t n = size * nitems;
    if (n >= 5 && !strncmp(ptr, "HTTP/", 5)) {
        kp_buf_reset(&x->resp->warns); /* a new response (after 100 Continue) */
    } else if (n > 8 && !strncasecmp(ptr, "warning:", 8) &&
               x->resp->warns.len < KP_CLIENT_WARNINGS_BYTES_MAX) {
        char text[1024];
        kp_client_warning_decode(ptr + 8, n - 8, text, sizeof(text));
        if (text[0]) kp_buf_appendf(&x->resp->warns, "%s\n", text);
    }
    return n;
}

/* One line for a transfer that got no response. */
static void transfer_error(const kp_client_t *c, CURLcode rc, const char *detail, int too_large,
                           char *err, size_t errlen)
{
    const char *srv = c->cfg.server;
    const char *why = detail && *detail ? detail : curl_easy_strerror(rc);
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
        snprintf(err, errlen, "cannot reach the control plane at %s: %s (is 'kpool up' running?)",
                 srv, why);
        break;
    case CURLE_OPERATION_TIMEDOUT:
        snprintf(err, errlen, "the control plane at %s did not answer within %ld ms", srv,
                 c->timeout_ms);
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CONNECT_ERROR:
        snprintf(err, errlen,
                 "TLS with %s failed: %s (the 'ca' in %s must be the CA that signed the "
                 "server's certificate)",
                 srv, why, c->cfg.path);
        break;
    default:
        if (too_large)
            snprintf(err, errlen, "the response from %s is larger than %d MiB", srv,
                     KP_CLIENT_BODY_BYTES_MAX >> 20);
        else
            snprintf(err, errlen, "request to %s failed: %s", srv, why);
    }
}

/* Sets every option of one request on the (reset) handle. */
static void request_setup(kp_client_t *c, const char *method, const char *url, const char *data,
                          struct curl_slist *hdrs, xfer_t *x, char *errbuf)
{
    CURL *h = c->curl;
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)KP_CLIENT_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(h, CURLOPT_USERAGENT, KPOOL_USER_AGENT);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (c->cfg.ca) curl_easy_setopt(h, CURLOPT_CAINFO, c->cfg.ca);
    /* an http_proxy meant for the internet must not capture the local control plane */
    if (is_loopback_url(url)) curl_easy_setopt(h, CURLOPT_PROXY, "");
    if (!strcmp(method, "GET")) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
        if (data) {
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, data);
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(data));
        }
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
}

int kp_client_request(kp_client_t *c, const char *method, const char *path, const json_t *body,
                      kp_client_resp_t *resp, char *err, size_t errlen)
{
    memset(resp, 0, sizeof(*resp));
    kp_buf_init(&resp->body);
    kp_buf_init(&resp->warns);
    kp_buf_t url, auth;
    kp_buf_init(&url);
    kp_buf_init(&auth);
    kp_buf_appendf(&url, "%s%s", c->cfg.server, path);
    kp_buf_append(&url, "", 1);
    char *data = body ? json_dumps(body, JSON_COMPACT) : NULL;
    struct curl_slist *hdrs = curl_slist_append(NULL, "Accept: application/json");
    hdrs = curl_slist_append(hdrs, "Expect:");
    if (data) hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    if (c->cfg.token && *c->cfg.token) {
        kp_buf_appendf(&auth, "Authorization: Bearer %s", c->cfg.token);
        kp_buf_append(&auth, "", 1);
        hdrs = curl_slist_append(hdrs, (const char *)auth.data);
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    xfer_t x = {.resp = resp};
    request_setup(c, method, (const char *)url.data, data, hdrs, &x, errbuf);
    CURLcode rc = curl_easy_perform(c->curl);
    /* the slist holds a copy of the Authorization line: wipe both */
    for (struct curl_slist *s = hdrs; s; s = s->next)
        if (!strncmp(s->data, "Authorization:", 14)) explicit_bzero(s->data, strlen(s->data));
    if (auth.data) explicit_bzero(auth.data, auth.len);
    curl_slist_free_all(hdrs);
    kp_buf_free(&auth);
    free(data);
    for (size_t i = 0; i < resp->warns.len;) { /* one "Warning:" line per header */
        const char *line = (const char *)resp->warns.data + i;
        size_t n = strcspn(line, "\n");
        fprintf(stderr, "Warning: %.*s\n", (int)n, line);
        i += n + 1;
    }
    if (rc != CURLE_OK) {
        char where[4096];
        transfer_error(c, rc, errbuf, x.too_large, where, sizeof(where));
        snprintf(err, errlen, "%s", where);
        kp_buf_free(&url);
        kp_client_resp_free(resp);
        return -1;
    }
    kp_buf_free(&url);
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &resp->status);
    if (resp->body.len)
        resp->json = json_loadb((const char *)resp->body.data, resp->body.len, 0, NULL);
    return 0;
}

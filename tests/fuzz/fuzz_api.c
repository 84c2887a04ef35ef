/*
 * fuzz_api.c — libFuzzer target for the control plane API's request handling (control/api/api.c
 * kp_api_answer, api_teams.c) and reply building (control/api/api_reply.c), over an in-memory store
 * with an admin token and two team tokens.
 *
 * Input: byte 0 picks the caller (bits 0-1: none, admin, team-a, team-b) and whether line 2
 * is a labelSelector (bit 2); line 1 is "METHOD PATH" (the path as the HTTP layer hands it
 * over: percent-decoded, so any bytes); bit 3: a line with the Content-Type (PATCH formats,
 * protobuf); bit 4: a line of Kubernetes parameters "fieldSelector|limit|continue|
 * fieldManager|force|fieldValidation|Accept" ('|'-separated, kubectl's); the rest is the
 * body. Seeds in
 * tests/fuzz/corpus/fuzz_api (non-UTF-8 names, deep nesting, reserved secrets).
 *
 * Checked: no crash, leak or sanitizer report for any request; every reply has a body and a
 * status code 200-599; its text (what goes on the wire) is valid UTF-8 JSON; an error reply
 * is a Kubernetes Status with the same code; Warning header values are printable ASCII.
 */
#include "control/store.h"
#include "core/logging.h"
#include "core/utf8.h"
#include "control/api/api.h"
#include "control/api/api_reply.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Requests per store: the store is made anew after these, so it does not grow without end. */
#define REQUESTS_PER_STORE 2000

static kp_store_t *store;
static kp_api_t *api;
static kp_pki_master_key_t master_key;
static char tokens[3][80]; /* "Bearer <admin>", team-a, team-b */
static int requests;

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_api: %s\n", what);
        abort();
    }
}

static void setup(void)
{
    if (store && requests < REQUESTS_PER_STORE) return;
    kp_api_stop(api);
    kp_store_close(store);
    requests = 0;
    char err[256], tok[65];
    store = kp_store_open(":memory:", err, sizeof(err));
    check(store != NULL, err);
    const char *ns[3] = {NULL, "team-a", "team-b"};
    for (int i = 0; i < 3; i++) {
        check(kp_store_token_create(store, ns[i], "fuzz", tok) == 0, "token");
        snprintf(tokens[i], sizeof(tokens[i]), "Bearer %s", tok);
    }
    memset(master_key.bytes, 7, sizeof(master_key.bytes));
    api = kp_api_new_unlistened(store, &master_key);
}

/* The next line of [*p, end) as a NUL-terminated copy (without the newline). */
static char *line(const uint8_t **p, const uint8_t *end)
{
    const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
    size_t n = nl ? (size_t)(nl - *p) : (size_t)(end - *p);
    char *s = malloc(n + 1);
    memcpy(s, *p, n);
    s[n] = 0;
    *p += nl ? n + 1 : n;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    kp_logging_set_level(KP_LOG_ERROR);
    setup();
    requests++;
    const uint8_t *p = data + 1, *end = data + size;
    char *first = line(&p, end);
    char *selector = data[0] & 4 ? line(&p, end) : NULL;
    char *ctype = data[0] & 8 ? line(&p, end) : NULL;
    char *params_line = data[0] & 16 ? line(&p, end) : NULL, *params = params_line;
    const char *kv[7] = {0};
    for (int i = 0; params && i < 7; i++) { /* fields in order, '|'-separated */
        kv[i] = params;
        char *bar = strchr(params, '|');
        if (bar) *bar = 0;
        params = bar ? bar + 1 : NULL;
    }
    char *sp = strchr(first, ' ');
    const char *method = "GET", *url = first;
    if (sp) {
        *sp = 0;
        method = first;
        url = sp + 1;
    }
    int who = data[0] & 3;
    kp_api_request_t req = {
        .method = method,
        .url = url,
        .authorization = who ? tokens[who - 1] : NULL,
        .label_selector = selector,
        .content_type = ctype,
        .user_agent = "fuzz/1",
        .field_selector = kv[0],
        .limit = kv[1],
        .continue_token = kv[2],
        .field_manager = kv[3],
        .force = kv[4],
        .field_validation = kv[5],
        .accept = kv[6],
        .body = p,
        .len = (size_t)(end - p),
    };
    kp_api_reply_t out;
    kp_api_answer(api, &req, &out);
    check(out.body != NULL, "a reply without a body");
    check(out.code >= 200 && out.code <= 599, "a status code out of range");
    unsigned code = out.code;
    size_t len;
    char *text = kp_api_reply_text(out.body, &code, &len);
    check(code == out.code, "a reply body that cannot be serialized");
    check(kp_utf8_valid(text, len), "a reply that is not UTF-8");
    json_error_t je;
    json_t *back = json_loadb(text, len, 0, &je);
    check(back != NULL, "a reply that is not JSON");
    if (out.code >= 400) {
        check(!strcmp(json_string_value(json_object_get(back, "kind")) ?: "", "Status"),
              "an error reply that is not a Status");
        check(json_integer_value(json_object_get(back, "code")) == out.code,
              "a Status whose code is not the reply's");
    }
    size_t i;
    json_t *w;
    json_array_foreach(out.warnings, i, w)
    {
        char hdr[1200];
        kp_api_warning_value(json_string_value(w), hdr, sizeof(hdr));
        for (const char *c = hdr; *c; c++)
            check(*c >= 0x20 && *c < 0x7F, "a Warning header that is not printable ASCII");
    }
    json_decref(back);
    free(text);
    kp_api_reply_free(&out);
    free(first);
    free(selector);
    free(ctype);
    free(params_line);
    return 0;
}

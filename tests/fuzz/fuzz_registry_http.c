/*
 * fuzz_registry_http.c — libFuzzer target for the schema registry's REST API from request
 * to reply: routing, path decoding, subject validation, the handlers, the team check, and
 * the building of every reply (kp_registry_http_serve on an offline registry, whose writes
 * are applied at once).
 *
 * Input: byte 0 picks the method (bits 0-1: GET, POST, PUT, DELETE) and the caller (bits
 * 2-3: the admin, a service user of team "alpha", of team "beta", of no team); the rest is
 * "URL \0 query \0 body" (missing parts are empty). Each input gets a fresh registry that
 * holds alpha.orders-value (two versions, level FULL) and beta.x-key.
 *
 * Checked: no crash or sanitizer report; every reply has a body and a status; every error
 * reply (status >= 400) is JSON {"error_code": int, "message": string}; the admin is never
 * refused with 403; a successful write by a team's user left no other team's subject
 * changed (the seeded subjects of the other team keep their versions).
 */
#include "core/buf.h"
#include "core/logging.h"
#include "registry/registry_int.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_registry_http: %s\n", what);
        abort();
    }
}

static unsigned serve(kp_registry_t *r, const kp_reg_caller_t *who, const char *method,
                      const char *url, const char *query, const char *body, size_t body_len)
{
    kp_reg_reply_t out;
    kp_registry_http_serve(r, who, method, url, query, body, body_len, &out);
    check(out.body != NULL && out.type != NULL, "a reply without a body");
    check(out.status >= 200 && out.status <= 599, "a reply without a status");
    if (out.status >= 400) {
        json_error_t je;
        json_t *j = json_loads(out.body, 0, &je);
        check(j != NULL, "an error reply that is not JSON");
        check(json_is_integer(json_object_get(j, "error_code")), "an error without error_code");
        check(json_is_string(json_object_get(j, "message")), "an error without message");
        json_decref(j);
    }
    free(out.body);
    return out.status;
}

static size_t versions(kp_registry_t *r, const char *subject)
{
    const kp_reg_subject_t *s = kp_reg_subject(&r->state, subject);
    return s ? (size_t)s->nversions : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 64 * 1024) return 0;
    kp_logging_set_level(KP_LOG_ERROR); /* a line per registration would slow the fuzzer */
    static const char *const methods[] = {"GET", "POST", "PUT", "DELETE"};
    static const char *const teams[] = {"", "alpha", "beta", ""};
    kp_reg_caller_t admin = {.admin = 1, .user = "kpool-admin"}, who = {0};
    who.admin = (data[0] >> 2 & 3) == 0;
    snprintf(who.user, sizeof(who.user), "%s", who.admin ? "kpool-admin" : "user");
    snprintf(who.team, sizeof(who.team), "%s", teams[data[0] >> 2 & 3]);

    /* URL \0 query \0 body */
    const char *p = (const char *)data + 1, *end = (const char *)data + size;
    char *parts[2];
    for (int i = 0; i < 2; i++) {
        const char *nul = memchr(p, 0, (size_t)(end - p));
        size_t len = nul ? (size_t)(nul - p) : (size_t)(end - p);
        parts[i] = kp_xstrndup(p, len);
        p = nul ? nul + 1 : end;
    }
    const char *url = parts[0], *query = parts[1], *body = p;
    size_t bl = (size_t)(end - p);

    kp_registry_t *r = kp_registry_new_offline();
    static const char s1[] = "{\"schema\":\"{\\\"type\\\":\\\"record\\\",\\\"name\\\":\\\"R\\\","
                             "\\\"fields\\\":[]}\"}";
    static const char s2[] = "{\"schema\":\"{\\\"type\\\":\\\"record\\\",\\\"name\\\":\\\"R\\\","
                             "\\\"fields\\\":[{\\\"name\\\":\\\"a\\\",\\\"type\\\":\\\"int\\\","
                             "\\\"default\\\":1}]}\"}";
    check(serve(r, &admin, "POST", "/subjects/alpha.orders-value/versions", NULL, s1, strlen(s1)) ==
              200,
          "seed 1");
    check(serve(r, &admin, "POST", "/subjects/alpha.orders-value/versions", NULL, s2, strlen(s2)) ==
              200,
          "seed 2");
    check(serve(r, &admin, "PUT", "/config/alpha.orders-value", NULL,
                "{\"compatibility\":\"FULL\"}", 24) == 200,
          "seed 3");
    check(serve(r, &admin, "POST", "/subjects/beta.x-key/versions", NULL, s1, strlen(s1)) == 200,
          "seed 4");

    unsigned st = serve(r, &who, methods[data[0] & 3], url, query, body, bl);
    if (who.admin) check(st != 403, "the admin was refused");
    if (!who.admin && strcmp(who.team, "alpha"))
        check(versions(r, "alpha.orders-value") == 2 &&
                  kp_reg_subject(&r->state, "alpha.orders-value")->compat == KP_COMPAT_FULL,
              "another team changed alpha's subject");
    if (!who.admin && strcmp(who.team, "beta"))
        check(versions(r, "beta.x-key") == 1, "another team changed beta's subject");
    kp_registry_stop(r);
    free(parts[0]);
    free(parts[1]);
    return 0;
}

/*
 * fuzz_k8s.c — libFuzzer target for what the Kubernetes API surface parses from outside
 * (src/control/api/k8s_*.c): label and field selectors, continue tokens, JSON merge / JSON /
 * strategic merge patches, server-side apply configurations and the protobuf bodies of
 * kubectl's typed client (access reviews; Secrets when byte 0 has bit 7 set); with bit 7,
 * field selectors go through the Events' answer too.
 *
 * Input: byte 0 picks the parser, the rest is its input (for patches: "target\npatch",
 * both JSON). Checked: no crash, leak or sanitizer report; a patch that succeeds yields
 * an object or array that serializes; a merge patch applied twice gives the same result
 * (RFC 7386 patches are idempotent); apply either succeeds or names its conflicts.
 */
#include "control/api/k8s.h"

#include "control/events.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_k8s: %s\n", what);
        abort();
    }
}

static const char OBJ[] = "{\"kind\":\"Topic\",\"metadata\":{\"name\":\"t\",\"namespace\":\"a\","
                          "\"labels\":{\"tier\":\"web\",\"env\":\"prod\"},\"managedFields\":"
                          "[{\"manager\":\"m\",\"operation\":\"Update\",\"fieldsV1\":{\"f:spec\":"
                          "{\"f:pool\":{}}}}]},\"spec\":{\"pool\":\"dev\",\"l\":[1,2]}}";

static void patches(int which, const char *text, size_t len)
{
    const char *nl = memchr(text, '\n', len);
    json_error_t e;
    json_t *target =
        nl ? json_loadb(text, (size_t)(nl - text), JSON_DECODE_ANY, &e) : json_loads(OBJ, 0, &e);
    const char *p = nl ? nl + 1 : text;
    json_t *patch = json_loadb(p, len - (size_t)(p - text), JSON_DECODE_ANY, &e);
    if (!target || !patch) goto out;
    char err[512];
    json_t *r = NULL;
    if (which == 0) {
        r = kp_k8s_merge_patch(target, patch);
        json_t *again = kp_k8s_merge_patch(r, patch);
        check(json_equal(r, again), "a merge patch applied twice differs");
        json_decref(again);
    } else if (which == 1) {
        r = kp_k8s_json_patch(target, patch, err, sizeof(err));
        check(r || err[0], "a failed JSON patch without a message");
    } else if (which == 2) {
        err[0] = 0;
        r = kp_k8s_strategic_patch(target, patch, err, sizeof(err));
        check(r || err[0], "a failed strategic patch without a message");
    } else if (json_is_object(patch)) {
        json_t *conflicts = NULL;
        r = kp_k8s_apply(json_is_object(target) ? target : NULL, patch, "fuzz", which == 4, "v1",
                         &conflicts);
        check((r != NULL) != (conflicts != NULL), "apply: neither a result nor conflicts");
        check(which != 4 || r, "a forced apply with conflicts");
        json_decref(conflicts);
        if (r) {
            json_t *copy = json_deep_copy(r);
            kp_k8s_fields_update(copy, r, "other", "v1");
            json_decref(copy);
        }
    }
    if (r) {
        char *s = json_dumps(r, JSON_ENCODE_ANY);
        check(s != NULL, "a patched document that does not serialize");
        free(s);
        json_decref(r);
    }
out:
    json_decref(target);
    json_decref(patch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 1 << 16) return 0;
    int which = data[0] % 9;
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = 0; /* selectors and tokens are C strings (query values) */
    char err[512];
    json_t *obj = json_loads(OBJ, 0, NULL);
    switch (which) {
    case 0:
    case 1:
    case 2:
    case 3:
    case 4:
        patches(which, (const char *)data + 1, size - 1);
        break;
    case 5:
        kp_k8s_label_match(obj, text, err, sizeof(err));
        break;
    case 6:
        kp_k8s_field_match(obj, text, err, sizeof(err));
        if (data[0] & 128) { /* the Events' selectors (k8s_events.c), over one event */
            static int recorded;
            if (!recorded++) kp_event_record(obj, "Normal", "Fuzz", "an event");
            unsigned code;
            kp_k8s_events_req_t q = {.field_selector = text, .label_selector = text};
            json_decref(kp_k8s_events_answer(&q, &code));
        }
        break;
    case 7: {
        json_t *items = json_pack("[O, O]", obj, obj);
        char *next = NULL;
        long remaining;
        kp_k8s_page(items, (long)(data[0] / 9), text, &next, &remaining);
        free(next);
        json_decref(items);
        break;
    }
    default: {
        json_t *r = data[0] & 128 ? kp_k8s_secret_from_protobuf(data + 1, size - 1)
                                  : kp_k8s_access_review_from_protobuf(data + 1, size - 1);
        if (r) {
            char *s = json_dumps(r, 0);
            check(s != NULL, "an access review that does not serialize");
            free(s);
        }
        json_decref(r);
    }
    }
    json_decref(obj);
    free(text);
    return 0;
}

/*
 * k8s_events.c — Events over the Kubernetes API (see k8s.h): /api/v1/events and
 * /api/v1/namespaces/NS/events[/NAME], read-only, from the recorder (control/events.h).
 * `kubectl describe` lists them with fieldSelector=involvedObject.name=...,
 * involvedObject.namespace=...,involvedObject.kind=...,involvedObject.uid=...;
 * `kubectl get events` asks for a Table with the columns Kubernetes prints.
 */
#include "control/api/k8s.h"

#include "control/events.h"
#include "core/buf.h"
#include "core/utf8.h"
#include "control/api/api_reply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The field selectors Kubernetes takes for Events, and where they point. */
static const char *const event_fields[] = {
    "involvedObject.kind",
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "involvedObject.fieldPath",
    "reason",
    "reason",
    "reportingComponent",
    "reportingComponent",
    "source",
    "source.component",
    "type",
    "type",
    NULL,
};

int kp_k8s_events_route(const char *url, char *ns, size_t nslen, char *name, size_t namelen)
{
    char buf[1024];
    char *seg[8];
    int n = 0;
    snprintf(buf, sizeof(buf), "%s", url);
    for (char *save = NULL, *t = strtok_r(buf, "/", &save); t && n < 8;
         t = strtok_r(NULL, "/", &save))
        seg[n++] = t;
    ns[0] = name[0] = 0;
    if (n < 3 || strcmp(seg[0], "api") || strcmp(seg[1], "v1")) return 0;
    int i = 2;
    if (n >= 5 && !strcmp(seg[2], "namespaces")) {
        if (strlen(seg[3]) >= nslen) return 0;
        strcpy(ns, seg[3]);
        i = 4;
    }
    if (strcmp(seg[i], "events") != 0) return 0;
    if (i + 1 < n) {
        if (!ns[0] || i + 2 != n || strlen(seg[i + 1]) >= namelen) return 0;
        strcpy(name, seg[i + 1]);
    } else if (i + 1 != n) {
        return 0;
    }
    return 1;
}

/* "LAST SEEN" and "FIRST SEEN": the age of a timestamp field. */
static void age_cell(const json_t *e, const char *key, time_t now, char *out, size_t n)
{
    time_t t;
    if (kp_time_parse(json_string_value(json_object_get(e, key)), &t) < 0)
        snprintf(out, n, "<unknown>");
    else
        kp_age_format((long long)(now - t), out, n);
}

const kp_kind_t kp_k8s_event_kind = {
    .kind = "Event",
    .group = "",
    .version = "v1",
    .plural = "events",
    .singular = "event",
    .short_name = "ev",
    .namespaced = 1,
    .schema = "{}",
    .description = "What the control plane did to an object (read-only).",
};

int kp_k8s_event_match(const json_t *event, const char *labels, const char *fields, char *err,
                       size_t errlen)
{
    int lm = kp_k8s_label_match(event, labels, err, errlen);
    int fm = lm < 0 ? -1 : kp_k8s_field_match_in(event, fields, event_fields, err, errlen);
    return lm < 0 || fm < 0 ? -1 : lm && fm;
}

json_t *kp_k8s_events_table(const json_t *items, const char *rv, const char *include)
{
    static const struct {
        const char *name, *type;
        int priority;
    } cols[] = {{"Last Seen", "string", 0},  {"Type", "string", 0},    {"Reason", "string", 0},
                {"Object", "string", 0},     {"Message", "string", 0}, {"Source", "string", 1},
                {"First Seen", "string", 1}, {"Count", "integer", 1},  {"Name", "string", 1}};
    json_t *defs = json_array();
    for (size_t i = 0; i < sizeof(cols) / sizeof(*cols); i++)
        json_array_append_new(defs, json_pack("{s:s, s:s, s:s, s:s, s:i}", "name", cols[i].name,
                                              "type", cols[i].type, "format",
                                              !strcmp(cols[i].name, "Name") ? "name" : "",
                                              "description", "", "priority", cols[i].priority));
    json_t *rows = json_array(), *e;
    time_t now = time(NULL);
    size_t i;
    json_array_foreach(items, i, e)
    {
        char last[32], first[32], object[512];
        age_cell(e, "lastTimestamp", now, last, sizeof(last));
        age_cell(e, "firstTimestamp", now, first, sizeof(first));
        const json_t *io = json_object_get(e, "involvedObject");
        const char *kind = json_string_value(json_object_get(io, "kind")) ?: "";
        size_t k = 0;
        for (; kind[k] && k < 200; k++) /* kubectl's "topic/mytopic" */
            object[k] = (char)(kind[k] >= 'A' && kind[k] <= 'Z' ? kind[k] + 32 : kind[k]);
        snprintf(object + k, sizeof(object) - k, "/%s",
                 json_string_value(json_object_get(io, "name")) ?: "");
        json_t *cells = json_pack(
            "[s, O, O, o, O, O, s, O, O]", last, json_object_get(e, "type"),
            json_object_get(e, "reason"), json_string(object) ?: json_string("?"),
            json_object_get(e, "message"),
            json_object_get(json_object_get(e, "source"), "component"), first,
            json_object_get(e, "count"), json_object_get(json_object_get(e, "metadata"), "name"));
        if (!cells) continue; /* a field missing: never, the recorder sets them all */
        json_t *row = json_pack("{s:o}", "cells", cells);
        if (!include || strcmp(include, "None") != 0) {
            json_t *md = json_deep_copy(json_object_get(e, "metadata"));
            json_object_set_new(row, "object",
                                include && !strcmp(include, "Object")
                                    ? json_deep_copy(e)
                                    : json_pack("{s:s, s:s, s:o}", "kind", "PartialObjectMetadata",
                                                "apiVersion", "meta.k8s.io/v1", "metadata", md));
            if (include && !strcmp(include, "Object")) json_decref(md);
        }
        json_array_append_new(rows, row);
    }
    return json_pack("{s:s, s:s, s:{s:s}, s:o, s:o}", "kind", "Table", "apiVersion",
                     "meta.k8s.io/v1", "metadata", "resourceVersion", rv, "columnDefinitions", defs,
                     "rows", rows);
}

json_t *kp_k8s_events_answer(const kp_k8s_events_req_t *q, unsigned *code)
{
    int64_t rv;
    json_t *all = kp_events_list(q->ns && *q->ns ? q->ns : NULL, &rv), *e;
    char rvs[32], err[512];
    snprintf(rvs, sizeof(rvs), "%lld", (long long)rv);
    size_t i;
    *code = 200;
    if (q->name && *q->name) {
        json_t *found = NULL;
        json_array_foreach(all, i, e) if (!strcmp(json_string_value(json_object_get(
                                                      json_object_get(e, "metadata"), "name"))
                                                      ?: "",
                                                  q->name)) found = json_incref(e);
        json_decref(all);
        if (!found) {
            *code = 404;
            json_t *st = kp_api_statusf(404, "NotFound", "events \"%s\" not found", q->name);
            json_t *d = json_pack("{s:s}", "kind", "events");
            json_object_set_new(d, "name", kp_json_text(q->name)); /* any bytes */
            json_object_set_new(st, "details", d);
            return st;
        }
        if (!q->table) return found;
        json_t *one = json_pack("[o]", found);
        json_t *t = kp_k8s_events_table(one, rvs, q->include_object);
        json_decref(one);
        return t;
    }
    json_t *kept = json_array();
    json_array_foreach(all, i, e)
    {
        int lm = kp_k8s_label_match(e, q->label_selector, err, sizeof(err));
        int fm = lm < 0
                     ? 0
                     : kp_k8s_field_match_in(e, q->field_selector, event_fields, err, sizeof(err));
        if (lm < 0 || fm < 0) {
            json_decref(all);
            json_decref(kept);
            *code = 400;
            return kp_api_status(400, "BadRequest", err);
        }
        if (lm && fm) json_array_append(kept, e);
    }
    json_decref(all);
    long limit = 0;
    if (q->limit && *q->limit) {
        char *end;
        limit = strtol(q->limit, &end, 10);
        if (*end || limit < 0) {
            json_decref(kept);
            *code = 400;
            return kp_api_status(400, "BadRequest", "limit: must be a non-negative integer");
        }
    }
    char *next = NULL;
    long remaining = 0;
    if (kp_k8s_page(kept, limit, q->continue_token, &next, &remaining) < 0) {
        json_decref(kept);
        *code = 400;
        return kp_api_status(400, "BadRequest", "invalid continue token: list again without it");
    }
    json_t *body;
    if (q->table) {
        body = kp_k8s_events_table(kept, rvs, q->include_object);
        json_decref(kept);
    } else {
        body = json_pack("{s:s, s:s, s:{s:s}, s:o}", "apiVersion", "v1", "kind", "EventList",
                         "metadata", "resourceVersion", rvs, "items", kept);
    }
    if (next) {
        json_t *md = json_object_get(body, "metadata");
        json_object_set_new(md, "continue", json_string(next));
        json_object_set_new(md, "remainingItemCount", json_integer(remaining));
        free(next);
    }
    return body;
}

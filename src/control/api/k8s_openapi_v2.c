/*
 * k8s_openapi_v2.c — the OpenAPI v2 document (Swagger 2.0, built by k8s_discovery.c) as the
 * protobuf kubectl asks for (Accept: application/com.github.proto-openapi.spec.v2@v1.0+
 * protobuf): gnostic's openapi_v2.Document (github.com/google/gnostic-models,
 * openapiv2/OpenAPIv2.proto; field numbers below). Only what a Swagger document built from
 * the kinds table holds is encoded: swagger, info, paths (operations with their parameters
 * and responses), definitions (schemas), and x- vendor extensions (an Any whose yaml is the
 * value as JSON, which is YAML).
 */
#include "control/api/k8s.h"

#include "core/buf.h"

#include <stdlib.h>
#include <string.h>

static void varint(kp_buf_t *b, uint64_t v)
{
    uint8_t t[10];
    size_t n = 0;
    do {
        t[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v) t[n] |= 0x80;
        n++;
    } while (v);
    kp_buf_append(b, t, n);
}

static void bytes_field(kp_buf_t *b, unsigned field, const void *p, size_t n)
{
    varint(b, (uint64_t)field << 3 | 2);
    varint(b, n);
    kp_buf_append(b, p, n);
}

static void str_field(kp_buf_t *b, unsigned field, const char *s)
{
    if (s && *s) bytes_field(b, field, s, strlen(s));
}

static void bool_field(kp_buf_t *b, unsigned field, const json_t *v)
{
    if (!json_is_true(v)) return;
    varint(b, (uint64_t)field << 3);
    varint(b, 1);
}

/* Appends inner as message field of b and frees it. */
static void msg_field(kp_buf_t *b, unsigned field, kp_buf_t *inner)
{
    bytes_field(b, field, inner->data, inner->len);
    kp_buf_free(inner);
}

static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* repeated string: a string or an array of them. */
static void strings_field(kp_buf_t *b, unsigned field, const json_t *v)
{
    if (json_is_string(v)) str_field(b, field, json_string_value(v));
    size_t i;
    json_t *s;
    json_array_foreach(v, i, s) str_field(b, field, json_string_value(s));
}

/* Any {yaml = 2}: the value as JSON (YAML reads it). */
static void any_field(kp_buf_t *b, unsigned field, const json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
    kp_buf_t any;
    kp_buf_init(&any);
    str_field(&any, 2, text ? text : "null");
    free(text);
    msg_field(b, field, &any);
}

/* repeated NamedAny {name = 1, value = 2}: the x- keys of o. */
static void vendor_field(kp_buf_t *b, unsigned field, const json_t *o)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v)
    {
        if (strncmp(k, "x-", 2) != 0) continue;
        kp_buf_t named;
        kp_buf_init(&named);
        str_field(&named, 1, k);
        any_field(&named, 2, v);
        msg_field(b, field, &named);
    }
}

static void schema(kp_buf_t *b, const json_t *s, int depth);

static void schema_field(kp_buf_t *b, unsigned field, const json_t *s, int depth)
{
    kp_buf_t inner;
    kp_buf_init(&inner);
    schema(&inner, s, depth + 1);
    msg_field(b, field, &inner);
}

/* Schema: _ref 1, format 2, title 3, description 4, default 5, required 19, enum 20,
 * additional_properties 21, type 22, items 23, all_of 24, properties 25, read_only 27,
 * vendor_extension 31. */
static void schema(kp_buf_t *b, const json_t *s, int depth)
{
    if (!json_is_object(s) || depth > 64) return; /* the kinds table nests a few levels */
    str_field(b, 1, jstr(s, "$ref"));
    str_field(b, 2, jstr(s, "format"));
    str_field(b, 3, jstr(s, "title"));
    str_field(b, 4, jstr(s, "description"));
    if (json_object_get(s, "default")) any_field(b, 5, json_object_get(s, "default"));
    strings_field(b, 19, json_object_get(s, "required"));
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(s, "enum"), i, v) any_field(b, 20, v);
    const json_t *ap = json_object_get(s, "additionalProperties");
    if (ap) { /* AdditionalPropertiesItem {schema = 1 | boolean = 2} */
        kp_buf_t item;
        kp_buf_init(&item);
        if (json_is_object(ap)) {
            schema_field(&item, 1, ap, depth);
        } else {
            varint(&item, 2 << 3);
            varint(&item, json_is_true(ap));
        }
        msg_field(b, 21, &item);
    }
    const json_t *type = json_object_get(s, "type");
    if (type) { /* TypeItem {repeated value = 1} */
        kp_buf_t item;
        kp_buf_init(&item);
        strings_field(&item, 1, type);
        msg_field(b, 22, &item);
    }
    const json_t *items = json_object_get(s, "items");
    if (items) { /* ItemsItem {repeated schema = 1} */
        kp_buf_t item;
        kp_buf_init(&item);
        if (json_is_array(items))
            json_array_foreach(items, i, v) schema_field(&item, 1, v, depth);
        else
            schema_field(&item, 1, items, depth);
        msg_field(b, 23, &item);
    }
    json_array_foreach(json_object_get(s, "allOf"), i, v) schema_field(b, 24, v, depth);
    const json_t *props = json_object_get(s, "properties");
    if (json_is_object(props)) { /* Properties {repeated NamedSchema = 1} */
        kp_buf_t item;
        kp_buf_init(&item);
        const char *k;
        json_object_foreach((json_t *)props, k, v)
        {
            kp_buf_t named;
            kp_buf_init(&named);
            str_field(&named, 1, k);
            schema_field(&named, 2, v, depth);
            msg_field(&item, 1, &named);
        }
        msg_field(b, 25, &item);
    }
    bool_field(b, 27, json_object_get(s, "readOnly"));
    vendor_field(b, 31, s);
}

/* ParametersItem {parameter = 1 {body_parameter = 1 | non_body_parameter = 2}}. */
static void parameter(kp_buf_t *b, const json_t *p)
{
    kp_buf_t param, item;
    kp_buf_init(&param);
    kp_buf_init(&item);
    const char *in = jstr(p, "in") ?: "";
    if (!strcmp(in, "body")) { /* BodyParameter: description 1, name 2, in 3, required 4,
                                  schema 5 */
        kp_buf_t body;
        kp_buf_init(&body);
        str_field(&body, 1, jstr(p, "description"));
        str_field(&body, 2, jstr(p, "name"));
        str_field(&body, 3, in);
        bool_field(&body, 4, json_object_get(p, "required"));
        if (json_object_get(p, "schema")) schema_field(&body, 5, json_object_get(p, "schema"), 0);
        msg_field(&param, 1, &body);
    } else { /* NonBodyParameter: header 1, form data 2, query 3, path 4 */
        unsigned which = !strcmp(in, "query") ? 3 : !strcmp(in, "path") ? 4 : 1;
        /* required 1, in 2, description 3, name 4; type is 6 for query (after
         * allow_empty_value 5), 5 for header and path */
        kp_buf_t sub, nb;
        kp_buf_init(&sub);
        kp_buf_init(&nb);
        bool_field(&sub, 1, json_object_get(p, "required"));
        str_field(&sub, 2, in);
        str_field(&sub, 3, jstr(p, "description"));
        str_field(&sub, 4, jstr(p, "name"));
        str_field(&sub, which == 3 ? 6 : 5, jstr(p, "type"));
        bool_field(&sub, which == 3 ? 20 : 19, json_object_get(p, "uniqueItems"));
        msg_field(&nb, which, &sub);
        msg_field(&param, 2, &nb);
    }
    msg_field(&item, 1, &param);
    msg_field(b, 8, &item);
}

/* Operation: tags 1, summary 2, description 3, operation_id 5, produces 6, consumes 7,
 * parameters 8, responses 9, vendor_extension 13. */
static void operation(kp_buf_t *b, unsigned field, const json_t *op)
{
    if (!json_is_object(op)) return;
    kp_buf_t o;
    kp_buf_init(&o);
    strings_field(&o, 1, json_object_get(op, "tags"));
    str_field(&o, 2, jstr(op, "summary"));
    str_field(&o, 3, jstr(op, "description"));
    str_field(&o, 5, jstr(op, "operationId"));
    strings_field(&o, 6, json_object_get(op, "produces"));
    strings_field(&o, 7, json_object_get(op, "consumes"));
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(op, "parameters"), i, v) parameter(&o, v);
    /* Responses {repeated NamedResponseValue response_code = 1}; ResponseValue {response =
     * 1}; Response {description 1, schema 2: SchemaItem {schema = 1}} */
    const json_t *resps = json_object_get(op, "responses");
    if (json_is_object(resps)) {
        kp_buf_t rs;
        kp_buf_init(&rs);
        const char *code;
        json_object_foreach((json_t *)resps, code, v)
        {
            kp_buf_t named, value, resp;
            kp_buf_init(&named);
            kp_buf_init(&value);
            kp_buf_init(&resp);
            str_field(&resp, 1, jstr(v, "description"));
            if (json_object_get(v, "schema")) {
                kp_buf_t si;
                kp_buf_init(&si);
                schema_field(&si, 1, json_object_get(v, "schema"), 0);
                msg_field(&resp, 2, &si);
            }
            msg_field(&value, 1, &resp);
            str_field(&named, 1, code);
            msg_field(&named, 2, &value);
            msg_field(&rs, 1, &named);
        }
        msg_field(&o, 9, &rs);
    }
    vendor_field(&o, 13, op);
    msg_field(b, field, &o);
}

uint8_t *kp_k8s_openapi_v2_protobuf(const json_t *doc, size_t *len)
{
    kp_buf_t b;
    kp_buf_init(&b);
    /* Document: swagger 1, info 2 {title 1, version 2, description 3}, host 3, base_path 4,
     * schemes 5, consumes 6, produces 7, paths 8, definitions 9, vendor_extension 16 */
    str_field(&b, 1, jstr(doc, "swagger"));
    const json_t *info = json_object_get(doc, "info");
    if (info) {
        kp_buf_t i;
        kp_buf_init(&i);
        str_field(&i, 1, jstr(info, "title"));
        str_field(&i, 2, jstr(info, "version"));
        str_field(&i, 3, jstr(info, "description"));
        msg_field(&b, 2, &i);
    }
    str_field(&b, 3, jstr(doc, "host"));
    str_field(&b, 4, jstr(doc, "basePath"));
    strings_field(&b, 5, json_object_get(doc, "schemes"));
    strings_field(&b, 6, json_object_get(doc, "consumes"));
    strings_field(&b, 7, json_object_get(doc, "produces"));
    const char *k;
    json_t *v;
    /* Paths {repeated NamedPathItem path = 2}; PathItem: get 2, put 3, post 4, delete 5,
     * options 6, head 7, patch 8 */
    kp_buf_t paths;
    kp_buf_init(&paths);
    json_object_foreach(json_object_get(doc, "paths"), k, v)
    {
        static const char *methods[] = {"get", "put", "post", "delete", "options", "head", "patch"};
        kp_buf_t named, item;
        kp_buf_init(&named);
        kp_buf_init(&item);
        for (unsigned m = 0; m < 7; m++) operation(&item, 2 + m, json_object_get(v, methods[m]));
        str_field(&named, 1, k);
        msg_field(&named, 2, &item);
        msg_field(&paths, 2, &named);
    }
    msg_field(&b, 8, &paths);
    /* Definitions {repeated NamedSchema additional_properties = 1} */
    kp_buf_t defs;
    kp_buf_init(&defs);
    json_object_foreach(json_object_get(doc, "definitions"), k, v)
    {
        kp_buf_t named;
        kp_buf_init(&named);
        str_field(&named, 1, k);
        schema_field(&named, 2, v, 0);
        msg_field(&defs, 1, &named);
    }
    msg_field(&b, 9, &defs);
    vendor_field(&b, 16, doc);
    *len = b.len;
    return b.data ? b.data : calloc(1, 1);
}

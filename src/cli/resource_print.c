/*
 * resource_print.c — tables (`kpool get`) and summaries (`kpool describe`) of API objects.
 *
 * Columns are data: each kind's entry in the kinds table (control/kinds_columns.c) lists
 * {header, JSON path, default, wide-only}, the same columns the API's Table output gives
 * kubectl. Every string taken from an object passes through clean_append (control
 * characters replaced), and a Secret's data values are never read beyond their length.
 */
#include "cli/resources.h"

#include "core/yamljson.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- values ---- */

static void clean_append(kp_buf_t *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        char c = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
        kp_buf_append(out, &c, 1);
    }
}

static void clean_appends(kp_buf_t *out, const char *s)
{
    clean_append(out, s, strlen(s));
}

static const char *meta_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(json_object_get(obj, "metadata"), key));
}

/* ---- tables ---- */

typedef kp_kind_column_t col_t;

/* Display width of UTF-8 text: code points (continuation bytes do not count). */
static size_t text_width(const char *s, size_t n)
{
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80) w++;
    return w;
}

/* Column gap, as kubectl's tabwriter padding. */
#define TABLE_GAP      3
#define TABLE_COLS_MAX 16

typedef struct table {
    const col_t *cols[TABLE_COLS_MAX];
    int ncols;
    int with_ns;
    size_t width[TABLE_COLS_MAX + 1];
    kp_buf_t cells; /* every cell NUL-terminated, row by row */
} table_t;

static void table_add(table_t *t, int col, const char *s, size_t n)
{
    size_t w = text_width(s, n);
    if (w > t->width[col]) t->width[col] = w;
    kp_buf_append(&t->cells, s, n);
    kp_buf_append(&t->cells, "", 1);
}

static void table_emit(table_t *t, size_t nrows, kp_buf_t *out)
{
    int total = t->ncols + t->with_ns;
    const char *p = (const char *)t->cells.data;
    for (size_t r = 0; r < nrows; r++) {
        for (int c = 0; c < total; c++) {
            size_t n = strlen(p);
            kp_buf_append(out, p, n);
            if (c + 1 < total) {
                size_t pad = t->width[c] - text_width(p, n) + TABLE_GAP;
                for (size_t i = 0; i < pad; i++) kp_buf_append(out, " ", 1);
            }
            p += n + 1;
        }
        kp_buf_append(out, "\n", 1);
    }
}

static void table_render(const col_t *cols, const json_t *items, int wide, int with_ns, time_t now,
                         kp_buf_t *out)
{
    table_t t;
    memset(&t, 0, sizeof(t));
    kp_buf_init(&t.cells);
    t.with_ns = with_ns;
    for (const col_t *c = cols; c->header && t.ncols < TABLE_COLS_MAX; c++)
        if (wide || !c->wide) t.cols[t.ncols++] = c;
    if (t.with_ns) table_add(&t, 0, "NAMESPACE", 9);
    for (int c = 0; c < t.ncols; c++)
        table_add(&t, c + t.with_ns, t.cols[c]->header, strlen(t.cols[c]->header));
    size_t i;
    json_t *obj;
    kp_buf_t cell;
    kp_buf_init(&cell);
    json_array_foreach(items, i, obj)
    {
        if (t.with_ns) {
            const char *ns = meta_str(obj, "namespace");
            kp_buf_reset(&cell);
            if (ns) clean_appends(&cell, ns);
            table_add(&t, 0, cell.len ? (const char *)cell.data : "<none>",
                      cell.len ? cell.len : 6);
        }
        for (int c = 0; c < t.ncols; c++) {
            kp_buf_reset(&cell);
            kp_kind_cell(t.cols[c], obj, now, &cell);
            table_add(&t, c + t.with_ns, cell.len ? (const char *)cell.data : "", cell.len);
        }
    }
    table_emit(&t, json_array_size(items) + 1, out);
    kp_buf_free(&cell);
    kp_buf_free(&t.cells);
}

void kp_table_render(const kp_kind_t *k, const json_t *items, int wide, int with_ns, time_t now,
                     kp_buf_t *out)
{
    table_render(KP_KIND_COLUMNS(k), items, wide, with_ns && k->namespaced, now, out);
}

void kp_teams_table_render(const json_t *items, int wide, time_t now, kp_buf_t *out)
{
    table_render(kp_team_columns, items, wide, 0, now, out);
}

/* ---- describe ---- */

/* "Label:" padded to width, then value; continuation lines of a multi-line value are
 * indented under the first. */
static void field(kp_buf_t *out, int indent, int width, const char *label, const char *value)
{
    kp_buf_appendf(out, "%*s%-*s", indent, "", width, label);
    const char *v = value ? value : "<none>";
    while (1) {
        size_t n = strcspn(v, "\n");
        clean_append(out, v, n);
        kp_buf_append(out, "\n", 1);
        if (!v[n] || !v[n + 1]) break;
        v += n + 1;
        kp_buf_appendf(out, "%*s", indent + width, "");
    }
}

/* field() for any JSON scalar (absent: nothing is written unless always). */
static void field_json(kp_buf_t *out, int indent, int width, const char *label, const json_t *v,
                       int always)
{
    if (json_is_string(v)) {
        field(out, indent, width, label, json_string_value(v));
        return;
    }
    kp_buf_t b;
    kp_buf_init(&b);
    if (!kp_kind_value_append(&b, v)) {
        kp_buf_free(&b);
        if (always) field(out, indent, width, label, "<none>");
        return;
    }
    kp_buf_append(&b, "", 1);
    field(out, indent, width, label, (const char *)b.data);
    kp_buf_free(&b);
}

/* v as block YAML, every line indented by indent. */
static void yaml_indented(kp_buf_t *out, const json_t *v, int indent)
{
    kp_buf_t y;
    kp_buf_init(&y);
    kp_yaml_emit(v, &y);
    kp_buf_append(&y, "", 1);
    for (const char *p = (const char *)y.data; *p;) {
        size_t n = strcspn(p, "\n");
        kp_buf_appendf(out, "%*s", indent, "");
        clean_append(out, p, n);
        kp_buf_append(out, "\n", 1);
        p += n + (p[n] == '\n');
    }
    kp_buf_free(&y);
}

/* Labels or Annotations: "k=v" per line, "<none>" when empty. */
static void field_map(kp_buf_t *out, int width, const char *label, const json_t *map)
{
    if (!json_is_object(map) || !json_object_size(map)) {
        field(out, 0, width, label, "<none>");
        return;
    }
    const char *k;
    json_t *v;
    int first = 1;
    json_object_foreach((json_t *)map, k, v)
    {
        kp_buf_t line;
        kp_buf_init(&line);
        kp_buf_appendf(&line, "%s=", k);
        kp_kind_value_append(&line, v);
        kp_buf_append(&line, "", 1);
        kp_buf_appendf(out, "%-*s", width, first ? label : "");
        clean_appends(out, (const char *)line.data);
        kp_buf_append(out, "\n", 1);
        kp_buf_free(&line);
        first = 0;
    }
}

#define TOP_WIDTH 19

static void describe_metadata(const kp_kind_t *k, const json_t *obj, time_t now, kp_buf_t *out)
{
    const json_t *meta = json_object_get(obj, "metadata");
    char api[128], age[32];
    kp_kind_api_version(k, api, sizeof(api));
    field(out, 0, TOP_WIDTH, "Name:", meta_str(obj, "name"));
    if (k->namespaced) field(out, 0, TOP_WIDTH, "Namespace:", meta_str(obj, "namespace"));
    kp_buf_appendf(out, "%-*s%s (%s)\n", TOP_WIDTH, "Kind:", k->kind, api);
    field_map(out, TOP_WIDTH, "Labels:", json_object_get(meta, "labels"));
    field_map(out, TOP_WIDTH, "Annotations:", json_object_get(meta, "annotations"));
    const char *created = meta_str(obj, "creationTimestamp");
    if (created) {
        kp_age_of(obj, now, age, sizeof(age));
        kp_buf_appendf(out, "%-*s", TOP_WIDTH, "Created:");
        clean_appends(out, created);
        kp_buf_appendf(out, " (%s ago)\n", age);
    }
    field_json(out, 0, TOP_WIDTH, "Generation:", json_object_get(meta, "generation"), 0);
    field_json(out, 0, TOP_WIDTH, "Resource Version:", json_object_get(meta, "resourceVersion"), 0);
    field_json(out, 0, TOP_WIDTH, "UID:", json_object_get(meta, "uid"), 0);
    const char *deleting = meta_str(obj, "deletionTimestamp");
    if (deleting) {
        kp_buf_appendf(out, "%-*s", TOP_WIDTH, "Deleting:");
        clean_appends(out, deleting);
        kp_buf_appendf(out, " (deletion requested: the control plane is cleaning up)\n");
    }
}

/* Secret data: key names and decoded sizes, never values (kubectl does the same). */
static void describe_secret_data(const json_t *obj, kp_buf_t *out)
{
    kp_buf_t type;
    kp_buf_init(&type);
    col_t c = {"TYPE", "type|metadata.labels.type", "Opaque", 0, "string"};
    kp_kind_cell(&c, obj, 0, &type);
    kp_buf_append(&type, "", 1);
    field(out, 0, TOP_WIDTH, "Type:", (const char *)type.data);
    kp_buf_free(&type);
    json_t *data = json_object_get(obj, "data");
    if (!json_is_object(data) || !json_object_size(data)) {
        field(out, 0, TOP_WIDTH, "Data:", "<none>");
        return;
    }
    kp_buf_appendf(out, "Data:\n");
    size_t width = 0;
    const char *key;
    json_t *v;
    json_object_foreach(data, key, v) if (strlen(key) + 1 > width) width = strlen(key) + 1;
    json_object_foreach(data, key, v)
    {
        size_t n = json_string_length(v), pad = 0;
        const char *s = json_string_value(v);
        while (s && n && pad < 2 && s[n - 1 - pad] == '=') pad++;
        size_t bytes = s ? n / 4 * 3 - pad + (n % 4 ? (n % 4) - 1 : 0) : 0;
        kp_buf_appendf(out, "  ");
        clean_appends(out, key);
        kp_buf_appendf(out, ":%*s%zu bytes\n", (int)(width - strlen(key) + 1), "", bytes);
    }
}

#define STATUS_WIDTH 24

static void describe_conditions(const json_t *conds, kp_buf_t *out)
{
    static const struct {
        const char *key, *label;
    } cf[] = {{"type", "Type:"},
              {"status", "Status:"},
              {"reason", "Reason:"},
              {"message", "Message:"},
              {"lastUpdateTime", "Last Update Time:"},
              {"lastTransitionTime", "Last Transition:"}};
    kp_buf_appendf(out, "  Conditions:\n");
    size_t i;
    json_t *c;
    json_array_foreach(conds, i, c)
    {
        for (size_t f = 0; f < sizeof(cf) / sizeof(*cf); f++) {
            json_t *v = json_object_get(c, cf[f].key);
            if (!v && f > 1) continue;
            size_t at = out->len;
            field_json(out, 6, 19, cf[f].label, v, 1);
            if (f == 0) out->data[at + 4] = '-'; /* "    - Type:" opens the item */
        }
    }
}

static void describe_status(const json_t *obj, kp_buf_t *out)
{
    json_t *st = json_object_get(obj, "status");
    if (!json_is_object(st) || !json_object_size(st)) {
        field(out, 0, TOP_WIDTH,
              "Status:", "<none> (the control plane has not reconciled this object yet)");
        return;
    }
    static const struct {
        const char *key, *label;
    } known[] = {{"synchronizationState", "Synchronization State:"},
                 {"fullyQualifiedName", "Fully Qualified Name:"},
                 {"fullyQualifiedTopicPrefix", "Topic Prefix:"},
                 {"synchronizationSecretName", "Secret:"},
                 {"synchronizationTime", "Synchronization Time:"},
                 {"observedGeneration", "Observed Generation:"},
                 {"state", "State:"},
                 {"message", "Message:"},
                 {"latestSyncFailure", "Latest Sync Failure:"},
                 {"topics", "Topics:"},
                 {"unmanagedTopicCount", "Unmanaged Topics:"},
                 {"lastUpdateTime", "Last Update Time:"}};
    kp_buf_appendf(out, "Status:\n");
    json_t *rest = json_deep_copy(st);
    for (size_t i = 0; i < sizeof(known) / sizeof(*known); i++) {
        field_json(out, 2, STATUS_WIDTH, known[i].label, json_object_get(st, known[i].key), 0);
        json_object_del(rest, known[i].key);
    }
    json_t *gen = json_object_get(json_object_get(obj, "metadata"), "generation");
    json_t *obs = json_object_get(st, "observedGeneration");
    if (json_is_integer(gen) && json_is_integer(obs) &&
        json_integer_value(obs) < json_integer_value(gen))
        kp_buf_appendf(out, "  (generation %" JSON_INTEGER_FORMAT " is not reconciled yet)\n",
                       json_integer_value(gen));
    json_t *errors = json_object_get(st, "errors");
    if (json_array_size(errors)) {
        kp_buf_appendf(out, "  Errors:\n");
        size_t i;
        json_t *e;
        json_array_foreach(errors, i, e)
        {
            size_t at = out->len;
            field_json(out, 6, 0, "", e, 1);
            out->data[at + 4] = '-';
        }
    }
    json_object_del(rest, "errors");
    json_t *unmanaged = json_object_get(st, "unmanagedTopics");
    if (json_array_size(unmanaged)) {
        /* a Pool's topics no resource owns (kept after a Topic was deleted, or made directly) */
        kp_buf_appendf(out, "  Not Owned By A Resource:\n");
        size_t i;
        json_t *e;
        json_array_foreach(unmanaged, i, e)
        {
            size_t at = out->len;
            field_json(out, 6, 0, "", e, 1);
            out->data[at + 4] = '-';
        }
    }
    json_object_del(rest, "unmanagedTopics");
    json_t *conds = json_object_get(st, "conditions");
    if (json_array_size(conds)) describe_conditions(conds, out);
    json_object_del(rest, "conditions");
    if (json_object_size(rest)) yaml_indented(out, rest, 2);
    json_decref(rest);
}

void kp_describe_render(const kp_kind_t *k, const json_t *obj, time_t now, kp_buf_t *out)
{
    describe_metadata(k, obj, now, out);
    if (!strcmp(k->kind, "Secret")) {
        describe_secret_data(obj, out);
        return;
    }
    json_t *spec = json_object_get(obj, "spec");
    if (json_is_object(spec) && json_object_size(spec)) {
        kp_buf_appendf(out, "Spec:\n");
        yaml_indented(out, spec, 2);
    } else {
        field(out, 0, TOP_WIDTH, "Spec:", "<none>");
    }
    describe_status(obj, out);
}

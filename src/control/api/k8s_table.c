/*
 * k8s_table.c — server-side printing (see k8s.h): a meta.k8s.io/v1 Table whose columns are
 * the kind's printer columns (kinds_columns.c), the same ones `kpool get` prints, so
 * `kubectl get topics` and `kpool get topics` show one table.
 */
#include "control/api/k8s.h"

#include "core/buf.h"

#include <string.h>
#include <time.h>

int kp_k8s_wants_table(const char *accept)
{
    /* "application/json;as=Table;v=v1;g=meta.k8s.io,application/json": the first choice
     * decides, parameters in any order */
    if (!accept) return 0;
    size_t n = strcspn(accept, ",");
    char first[256];
    if (n >= sizeof(first)) n = sizeof(first) - 1;
    memcpy(first, accept, n);
    first[n] = 0;
    return strstr(first, "as=Table") && strstr(first, "g=meta.k8s.io");
}

static json_t *row_object(const json_t *obj, const char *include)
{
    if (include && !strcmp(include, "None")) return NULL;
    if (include && !strcmp(include, "Object")) return json_deep_copy(obj);
    json_t *md = json_deep_copy(json_object_get(obj, "metadata"));
    if (!md) md = json_object();
    json_object_del(md, "managedFields");
    return json_pack("{s:s, s:s, s:o}", "kind", "PartialObjectMetadata", "apiVersion",
                     "meta.k8s.io/v1", "metadata", md);
}

json_t *kp_k8s_table(const kp_kind_t *k, const json_t *items, const char *resource_version,
                     const char *include_object)
{
    json_t *defs = json_array();
    for (const kp_kind_column_t *c = KP_KIND_COLUMNS(k); c->header; c++) {
        json_t *d = json_pack("{s:s, s:s, s:s, s:s, s:i}", "name", c->header, "type",
                              !strcmp(c->type, "date") ? "string" : c->type, "format",
                              !strcmp(c->path, "@name") ? "name" : "", "description", c->path,
                              "priority", c->wide ? 1 : 0);
        json_array_append_new(defs, d);
    }
    json_t *rows = json_array();
    time_t now = time(NULL);
    kp_buf_t cell;
    kp_buf_init(&cell);
    size_t i;
    json_t *obj;
    json_array_foreach(items, i, obj)
    {
        json_t *cells = json_array();
        for (const kp_kind_column_t *c = KP_KIND_COLUMNS(k); c->header; c++) {
            kp_buf_reset(&cell);
            kp_kind_cell(c, obj, now, &cell);
            kp_buf_append(&cell, "", 1);
            json_array_append_new(cells, json_string((const char *)cell.data)
                                             ?: json_string("?")); /* cells are UTF-8 */
        }
        json_t *row = json_pack("{s:o}", "cells", cells);
        json_t *ro = row_object(obj, include_object);
        if (ro) json_object_set_new(row, "object", ro);
        json_array_append_new(rows, row);
    }
    kp_buf_free(&cell);
    return json_pack("{s:s, s:s, s:{s:s}, s:o, s:o}", "kind", "Table", "apiVersion",
                     "meta.k8s.io/v1", "metadata", "resourceVersion",
                     resource_version ? resource_version : "", "columnDefinitions", defs, "rows",
                     rows);
}

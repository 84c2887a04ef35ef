/* pool_registry.c — the registry's state read from `_schemas`, for the console (see
 * pool_registry.h). */
#include "control/pool_registry.h"

#include "control/backup_format.h"
#include "control/backup_kafka.h"
#include "core/buf.h"
#include "registry/avro_decode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int kp_pool_registry_load(const kp_pool_conn_t *c, kp_reg_state_t *st, char *err, size_t errlen)
{
    json_t *records;
    int partitions;
    if (kp_backup_topic_read(c, KP_BACKUP_SCHEMAS_TOPIC, &records, &partitions, err, errlen) < 0)
        return -1;
    size_t i;
    json_t *r;
    json_array_foreach(records, i, r)
    {
        uint8_t *k = NULL, *v = NULL;
        size_t kn = 0, vn = 0;
        char why[256];
        /* a malformed record is skipped, as the registry itself does */
        if (kp_backup_bytes_get(r, "key", &k, &kn) == 0 &&
            kp_backup_bytes_get(r, "value", &v, &vn) == 0 && k)
            kp_reg_apply(st, (const char *)k, kn, (const char *)v, vn, why, sizeof(why));
        free(k);
        free(v);
    }
    json_decref(records);
    return 0;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp((*(kp_reg_subject_t *const *)a)->name, (*(kp_reg_subject_t *const *)b)->name);
}

static json_t *version_json(const kp_reg_state_t *st, const kp_reg_version_t *v)
{
    const kp_reg_schema_t *sc = kp_reg_schema_by_id(st, v->id);
    return json_pack("{s:i, s:i, s:s, s:s, s:o}", "version", v->version, "id", v->id, "schemaType",
                     sc ? sc->type : "", "schema", sc ? sc->text : "", "references",
                     sc && sc->references ? json_incref(sc->references) : json_array());
}

json_t *kp_pool_registry_subjects(const kp_reg_state_t *st, const char *prefix)
{
    size_t n = kp_hmap_count(&st->subjects), k = 0, it = 0;
    kp_reg_subject_t **subs = kp_xcalloc(n + 1, sizeof(*subs));
    const char *key;
    size_t kl;
    void *val;
    while (kp_hmap_next(&st->subjects, &it, &key, &kl, &val)) {
        kp_reg_subject_t *s = val;
        if (kp_reg_subject_live(s) && !strncmp(s->name, prefix, strlen(prefix))) subs[k++] = s;
    }
    qsort(subs, k, sizeof(*subs), cmp_name);
    json_t *out = json_array();
    for (size_t i = 0; i < k; i++) {
        json_t *versions = json_array();
        int live = 0;
        for (int j = subs[i]->nversions - 1; j >= 0 && live < KP_POOL_REGISTRY_VERSIONS_SHOWN; j--)
            if (!subs[i]->versions[j].deleted) {
                json_array_insert_new(versions, 0, version_json(st, &subs[i]->versions[j]));
                live++;
            }
        json_array_append_new(
            out, json_pack("{s:s, s:s, s:o}", "subject", subs[i]->name, "compatibilityLevel",
                           kp_compat_name(kp_reg_level(st, subs[i])), "versions", versions));
    }
    free(subs);
    return out;
}

void kp_pool_registry_decode(const kp_reg_state_t *st, const uint8_t *data, size_t len, json_t *obj,
                             const char *field)
{
    if (!data || len < 5 || data[0] != 0) return;
    int id =
        (int)((uint32_t)data[1] << 24 | (uint32_t)data[2] << 16 | (uint32_t)data[3] << 8 | data[4]);
    char name[64], err[256];
    const kp_reg_schema_t *sc = kp_reg_schema_by_id(st, id);
    if (!sc) {
        snprintf(name, sizeof(name), "%sSchemaError", field);
        snprintf(err, sizeof(err), "schema id %d is not in the registry", id);
        json_object_set_new(obj, name, json_string(err));
        return;
    }
    snprintf(name, sizeof(name), "%sSchema", field);
    json_object_set_new(obj, name, json_pack("{s:i, s:s}", "id", id, "type", sc->type));
    json_t *decoded = NULL;
    err[0] = 0;
    if (!strcmp(sc->type, "AVRO") && sc->avro) {
        decoded = kp_avro_decode(sc->avro->root, data + 5, len - 5, err, sizeof(err));
    } else if (!strcmp(sc->type, "JSON")) {
        json_error_t je;
        decoded = json_loadb((const char *)data + 5, len - 5, JSON_DECODE_ANY, &je);
        if (!decoded) snprintf(err, sizeof(err), "not JSON: %s", je.text);
    } else {
        snprintf(err, sizeof(err), "%s schemas are not decoded here", sc->type);
    }
    if (decoded) {
        snprintf(name, sizeof(name), "%sDecoded", field);
        json_object_set_new(obj, name, decoded);
    } else {
        snprintf(name, sizeof(name), "%sSchemaError", field);
        json_object_set_new(obj, name, json_string(err[0] ? err : "cannot decode"));
    }
}

/* kinds.c — the kinds table, name rules and the unknown-field walk (see kinds.h). */
#include "control/kinds.h"

#include "control/reconcile.h"

#include "core/utf8.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* Types are OpenAPI's ("string", "integer", ...); "*" is any value. */
#define META_SCHEMA                                                                                \
    "\"metadata\": {\"name\": \"string\", \"namespace\": \"string\", \"labels\": {},"              \
    " \"annotations\": {}, \"uid\": \"string\", \"generation\": \"integer\","                      \
    " \"resourceVersion\": \"string\", \"creationTimestamp\": \"string\","                         \
    " \"deletionTimestamp\": \"string\", \"ownerReferences\": \"*\", \"finalizers\": \"*\","       \
    " \"managedFields\": \"*\", \"generateName\": \"string\"},"                                    \
    " \"apiVersion\": \"string\", \"kind\": \"string\", \"status\": \"*\""

/* kinds_columns.c */
extern const kp_kind_column_t kp_topic_columns[], kp_stream_columns[], kp_aivenapp_columns[],
    kp_app_columns[], kp_secret_columns[], kp_pool_columns[];

const kp_kind_t kp_kinds[] = {
    {"Topic", "kafka.nais.io", "v1", "topics", "topic", NULL, 1,
     "{" META_SCHEMA ", \"spec\": {\"pool\": \"string\", \"acl\": [{\"team\": \"string\","
     " \"application\": \"string\", \"access\": \"string\"}], \"config\": {"
     " \"cleanupPolicy\": \"string\", \"partitions\": \"integer\", \"replication\": \"integer\","
     " \"minimumInSyncReplicas\": \"integer\", \"retentionBytes\": \"integer\","
     " \"retentionHours\": \"integer\", \"segmentHours\": \"integer\","
     " \"maxMessageBytes\": \"integer\", \"deleteRetentionHours\": \"integer\","
     " \"minCompactionLagMs\": \"integer\", \"maxCompactionLagMs\": \"integer\","
     " \"minCleanableDirtyRatioPercent\": \"integer\", \"localRetentionBytes\": \"integer\","
     " \"localRetentionHours\": \"integer\"}}}",
     kp_topic_columns, "A Kafka topic in a pool, with the access of teams' applications (NAIS).",
     kp_topic_reconcile, 1, NULL},
    {"Stream", "kafka.nais.io", "v1", "streams", "stream", NULL, 1,
     "{" META_SCHEMA
     ", \"spec\": {\"pool\": \"string\", \"additionalUsers\": [{\"username\": \"string\"}]}}",
     kp_stream_columns, "The topics of a Kafka Streams application: every topic with its prefix.",
     kp_stream_reconcile, 2, NULL},
    {"AivenApplication", "aiven.nais.io", "v1", "aivenapplications", "aivenapplication", "aivenapp",
     1,
     "{" META_SCHEMA ", \"spec\": {\"kafka\": {\"pool\": \"string\", \"secretName\": \"string\"},"
     " \"secretName\": \"string\", \"protected\": \"boolean\", \"expiresAt\": \"string\"}}",
     kp_aivenapp_columns, "Kafka credentials of an application: a service user and a Secret.",
     kp_aivenapp_reconcile, 4, "Application"},
    /* Application models a NAIS deploy: only spec.kafka is acted upon, the rest is kept */
    {"Application", "nais.io", "v1alpha1", "applications", "application", "app", 1,
     "{" META_SCHEMA ", \"spec\": {}}", kp_app_columns,
     "A NAIS application; spec.kafka.pool gives it Kafka credentials.", kp_application_reconcile, 3,
     NULL},
    {"Secret", "", "v1", "secrets", "secret", NULL, 1,
     "{" META_SCHEMA ", \"type\": \"string\", \"data\": {}, \"stringData\": {},"
     " \"immutable\": \"boolean\"}",
     kp_secret_columns, "Secret data (base64 in data, plain text in stringData).",
     /* reconciled only to finish deletions */
     kp_secret_reconcile, 5, NULL},
    {"Pool", "kpool.dev", "v1", "pools", "pool", NULL, 0,
     "{" META_SCHEMA ", \"spec\": {\"bootstrapServers\": \"string\", \"embedded\": \"boolean\","
     " \"replication\": {\"min\": \"integer\", \"max\": \"integer\", \"default\": \"integer\"},"
     " \"schemaRegistry\": \"string\", \"tls\": {\"caLocation\": \"string\","
     " \"certificateLocation\": \"string\", \"keyLocation\": \"string\","
     " \"caKeyLocation\": \"string\"}, \"principalMappingRules\": \"*\","
     " \"consumerGroupPrefix\": \"string\", \"metricsUrl\": \"string\","
     " \"metricsUrls\": [\"string\"]}}",
     kp_pool_columns, "A Kafka cluster (kpool's own or Apache Kafka) that topics live in.",
     kp_pool_reconcile, 0, NULL},
};
const size_t kp_kinds_count = sizeof(kp_kinds) / sizeof(kp_kinds[0]);

const kp_kind_t *kp_kind_named(const char *kind)
{
    for (size_t i = 0; i < kp_kinds_count; i++)
        if (!strcmp(kp_kinds[i].kind, kind)) return &kp_kinds[i];
    return NULL;
}

const kp_kind_t *kp_kind_by_plural(const char *group, const char *version, const char *plural)
{
    for (size_t i = 0; i < kp_kinds_count; i++) {
        const kp_kind_t *k = &kp_kinds[i];
        if (!strcmp(k->group, group) && !strcmp(k->version, version) && !strcmp(k->plural, plural))
            return k;
    }
    return NULL;
}

void kp_kind_api_version(const kp_kind_t *k, char *out, size_t n)
{
    if (k->group[0])
        snprintf(out, n, "%s/%s", k->group, k->version);
    else
        snprintf(out, n, "%s", k->version);
}

static void walk(const json_t *schema, const json_t *v, char *path, size_t plen, json_t *out)
{
    if (json_is_string(schema)) return; /* "*": anything goes */
    if (json_is_object(schema)) {
        if (!json_is_object(v)) return;
        if (json_object_size(schema) == 0) return; /* {}: any keys */
        const char *k;
        json_t *c;
        json_object_foreach((json_t *)v, k, c)
        {
            size_t n = strlen(path);
            snprintf(path + n, plen - n, "%s%s", n ? "." : "", k);
            const json_t *sub = json_object_get(schema, k);
            if (!sub)
                json_array_append_new(out, kp_json_text(path));
            else
                walk(sub, c, path, plen, out);
            path[n] = 0;
        }
    } else if (json_is_array(schema)) {
        if (!json_is_array(v) || json_array_size(schema) == 0) return;
        size_t i;
        json_t *c;
        json_array_foreach(v, i, c)
        {
            size_t n = strlen(path);
            snprintf(path + n, plen - n, "[%zu]", i);
            walk(json_array_get(schema, 0), c, path, plen, out);
            path[n] = 0;
        }
    }
}

void kp_kind_unknown_fields(const kp_kind_t *k, const json_t *obj, json_t *paths)
{
    json_t *schema = json_loads(k->schema, 0, NULL);
    if (!schema) return; /* a typo in the table above: no warnings rather than a crash */
    char path[1024] = "";
    walk(schema, obj, path, sizeof(path), paths);
    json_decref(schema);
}

int kp_name_check(const char *name, int label, char *err, size_t errlen)
{
    size_t n = name ? strlen(name) : 0, max = label ? 63 : 253;
    if (n == 0 || n > max) {
        snprintf(err, errlen, "must be 1 to %zu characters", max);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        int ok =
            (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || (!label && c == '.');
        if (!ok) {
            /* the whole character, never one byte of it: the message goes into JSON */
            size_t len = kp_utf8_char_len((const unsigned char *)name + i, n - i);
            char found[16];
            if ((unsigned char)c >= 0x20 && (unsigned char)c < 0x7F)
                snprintf(found, sizeof(found), "'%c'", c);
            else if (len > 1)
                snprintf(found, sizeof(found), "'%.*s'", (int)len, name + i);
            else
                snprintf(found, sizeof(found), "byte 0x%02x", (unsigned char)c);
            snprintf(err, errlen,
                     "must consist of lower case alphanumeric characters, '-'%s "
                     "(found %s)",
                     label ? "" : " or '.'", found);
            return -1;
        }
    }
    if (!isalnum((unsigned char)name[0]) || !isalnum((unsigned char)name[n - 1])) {
        snprintf(err, errlen, "must start and end with an alphanumeric character");
        return -1;
    }
    return 0;
}

const char *kp_aivenapp_secret_name(const json_t *spec)
{
    const char *name =
        json_string_value(json_object_get(json_object_get(spec, "kafka"), "secretName"));
    return name ? name : json_string_value(json_object_get(spec, "secretName"));
}

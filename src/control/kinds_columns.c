/*
 * kinds_columns.c — the printer columns of every kind (what `kpool get` prints and what the
 * API's Table output carries, see kinds.h) and the rendering of one cell, with the times
 * and ages they show.
 */
#include "control/kinds.h"

#include "core/buf.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* one column per line reads as the table it describes */
/* clang-format off */
const kp_kind_column_t kp_topic_columns[] = {
    {"NAME", "@name", "", 0, "string"},
    {"POOL", "spec.pool", "<none>", 0, "string"},
    {"STATE", "status.synchronizationState", "<none>", 0, "string"},
    {"FULLY QUALIFIED NAME", "status.fullyQualifiedName", "<none>", 0, "string"},
    {"AGE", "@age", "", 0, "date"},
    {"PARTITIONS", "spec.config.partitions", "1", 1, "integer"},
    {"REPLICATION", "spec.config.replication", "<default>", 1, "string"},
    {"MESSAGE", "status.message", "<none>", 1, "string"},
    {NULL, NULL, NULL, 0, NULL},
};
const kp_kind_column_t kp_aivenapp_columns[] = {
    {"NAME", "@name", "", 0, "string"},
    {"POOL", "spec.kafka.pool", "<none>", 0, "string"},
    {"SECRET", "spec.kafka.secretName|spec.secretName|status.synchronizationSecretName", "<none>",
     0, "string"},
    {"STATE", "status.synchronizationState", "<none>", 0, "string"},
    {"AGE", "@age", "", 0, "date"},
    {"PROTECTED", "spec.protected", "false", 1, "string"},
    {"EXPIRES", "spec.expiresAt", "<none>", 1, "string"},
    {NULL, NULL, NULL, 0, NULL},
};
const kp_kind_column_t kp_app_columns[] = {
    {"NAME", "@name", "", 0, "string"},
    {"POOL", "spec.kafka.pool", "<none>", 0, "string"},
    {"AGE", "@age", "", 0, "date"},
    {"STREAMS", "spec.kafka.streams", "false", 1, "string"},
    {NULL, NULL, NULL, 0, NULL},
};
const kp_kind_column_t kp_stream_columns[] = {
    {"NAME", "@name", "", 0, "string"},
    {"POOL", "spec.pool", "<none>", 0, "string"},
    {"STATE", "status.synchronizationState", "<none>", 0, "string"},
    {"AGE", "@age", "", 0, "date"},
    {"TOPIC PREFIX", "status.fullyQualifiedTopicPrefix", "<none>", 1, "string"},
    {NULL, NULL, NULL, 0, NULL},
};
const kp_kind_column_t kp_pool_columns[] = {
    {"NAME", "@name", "", 0, "string"},
    {"BOOTSTRAP", "spec.bootstrapServers", "<none>", 0, "string"},
    {"EMBEDDED", "spec.embedded", "false", 0, "string"},
    {"AGE", "@age", "", 0, "date"},
    {"REPLICATION", "@replication", "<none>", 1, "string"},
    {"SCHEMA REGISTRY", "spec.schemaRegistry", "<none>", 1, "string"},
    {NULL, NULL, NULL, 0, NULL},
};
const kp_kind_column_t kp_secret_columns[] = {
    {"NAME", "@name", "", 0, "string"},
    {"TYPE", "type|metadata.labels.type", "Opaque", 0, "string"},
    {"DATA", "@datacount", "0", 0, "integer"}, /* the number of keys: values never reach a table */
    {"AGE", "@age", "", 0, "date"},
    {NULL, NULL, NULL, 0, NULL},
};
/* a kind whose table entry names no columns */
const kp_kind_column_t kp_generic_columns[] = {
    {"NAME", "@name", "", 0, "string"},
    {"AGE", "@age", "", 0, "date"},
    {NULL, NULL, NULL, 0, NULL},
};
const kp_kind_column_t kp_team_columns[] = {
    {"NAME", "@name", "", 0, "string"},
    {"TOKENS", "status.tokens", "0", 0, "integer"},     /* valid ones */
    {"CREATED", "@age", "", 0, "date"},
    {"RESOURCES", "status.resources", "0", 0, "integer"},
    {"TOKEN AGE", "@tokenage", "<none>", 1, "string"}, /* the newest valid token's */
    {"REVOKED", "status.revokedTokens", "0", 1, "integer"},
    {NULL, NULL, NULL, 0, NULL},
};
/* clang-format on */

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

/* The value at a dot path ("spec.config.partitions"), NULL when absent. */
static const json_t *path_get(const json_t *obj, const char *path, size_t len)
{
    const json_t *v = obj;
    while (len && v) {
        const char *dot = memchr(path, '.', len);
        size_t n = dot ? (size_t)(dot - path) : len;
        char key[128];
        if (n >= sizeof(key)) return NULL;
        memcpy(key, path, n);
        key[n] = '\0';
        v = json_object_get(v, key);
        path += dot ? n + 1 : n;
        len -= dot ? n + 1 : n;
    }
    return v;
}

/* Appends a scalar (or an array of scalars, comma-separated) as text. 0 when v is absent,
 * null or an empty string. */
int kp_kind_value_append(kp_buf_t *out, const json_t *v)
{
    switch (v ? json_typeof(v) : JSON_NULL) {
    case JSON_STRING:
        if (!json_string_length(v)) return 0;
        clean_append(out, json_string_value(v), json_string_length(v));
        return 1;
    case JSON_INTEGER:
        kp_buf_appendf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return 1;
    case JSON_REAL:
        kp_buf_appendf(out, "%g", json_real_value(v));
        return 1;
    case JSON_TRUE:
        kp_buf_append(out, "true", 4);
        return 1;
    case JSON_FALSE:
        kp_buf_append(out, "false", 5);
        return 1;
    case JSON_ARRAY: {
        size_t i, before = out->len;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            if (out->len > before) kp_buf_append(out, ",", 1);
            kp_kind_value_append(out, e);
        }
        return out->len > before;
    }
    case JSON_OBJECT: {
        char *s = json_dumps(v, JSON_COMPACT);
        clean_appends(out, s);
        free(s);
        return 1;
    }
    default:
        return 0;
    }
}

/* ---- cells ---- */

static const char *meta_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(json_object_get(obj, "metadata"), key));
}

/* Computed cells ("@..."). 0 when there is nothing to show. */
static int cell_computed(const kp_kind_column_t *c, const json_t *obj, time_t now, kp_buf_t *out)
{
    if (!strcmp(c->path, "@name")) {
        const char *s = meta_str(obj, "name");
        if (!s || !*s) return 0;
        clean_appends(out, s);
        return 1;
    }
    if (!strcmp(c->path, "@age")) {
        char age[32];
        kp_age_of(obj, now, age, sizeof(age));
        kp_buf_appendf(out, "%s", age);
        return 1;
    }
    if (!strcmp(c->path, "@tokenage")) {
        const json_t *v = path_get(obj, "status.tokenCreationTimestamp", 29);
        time_t t;
        if (!json_is_string(v) || kp_time_parse(json_string_value(v), &t) < 0) return 0;
        char age[32];
        kp_age_format((long long)(now - t), age, sizeof(age));
        kp_buf_appendf(out, "%s", age);
        return 1;
    }
    if (!strcmp(c->path, "@datacount")) {
        /* the number of keys only: values never reach a table */
        json_t *data = json_object_get(obj, "data");
        kp_buf_appendf(out, "%zu", json_is_object(data) ? json_object_size(data) : 0);
        return 1;
    }
    if (!strcmp(c->path, "@replication")) {
        const json_t *r = path_get(obj, "spec.replication", 16);
        if (!json_is_object(r)) return 0;
        kp_buf_append(out, "min=", 4);
        if (!kp_kind_value_append(out, json_object_get(r, "min"))) kp_buf_append(out, "?", 1);
        kp_buf_append(out, ",default=", 9);
        if (!kp_kind_value_append(out, json_object_get(r, "default"))) kp_buf_append(out, "?", 1);
        kp_buf_append(out, ",max=", 5);
        if (!kp_kind_value_append(out, json_object_get(r, "max"))) kp_buf_append(out, "?", 1);
        return 1;
    }
    return 0;
}

void kp_kind_cell(const kp_kind_column_t *c, const json_t *obj, time_t now, kp_buf_t *out)
{
    size_t before = out->len;
    if (c->path[0] == '@') {
        if (!cell_computed(c, obj, now, out)) kp_buf_appendf(out, "%s", c->dflt);
        return;
    }
    for (const char *alt = c->path; *alt;) {
        size_t n = strcspn(alt, "|");
        if (kp_kind_value_append(out, path_get(obj, alt, n))) return;
        out->len = before;
        alt += n + (alt[n] == '|');
    }
    kp_buf_appendf(out, "%s", c->dflt);
}

/* ---- times ---- */

int kp_time_parse(const char *s, time_t *out)
{
    int y, mo, d, h, mi, sec, n = 0;
    if (!s || sscanf(s, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 ||
        n == 0)
        return -1;
    const char *p = s + n;
    if (*p == '.')
        for (p++; isdigit((unsigned char)*p); p++) {
        }
    long offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om, m = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &m) != 2 || m != 5) return -1;
        offset = (oh * 3600L + om * 60L) * (*p == '-' ? -1 : 1);
        p += 1 + m;
    } else {
        return -1;
    }
    if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return -1;
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = sec};
    *out = timegm(&tm) - offset;
    return 0;
}

/* Mirrors k8s.io/apimachinery duration.HumanDuration, so ages read as in kubectl. */
void kp_age_format(long long seconds, char *out, size_t outlen)
{
    long long m = seconds / 60, h = seconds / 3600, dd = h / 24;
    if (seconds < -1) {
        snprintf(out, outlen, "<invalid>");
    } else if (seconds < 0) {
        snprintf(out, outlen, "0s");
    } else if (seconds < 120) {
        snprintf(out, outlen, "%llds", seconds);
    } else if (m < 10) {
        if (seconds % 60)
            snprintf(out, outlen, "%lldm%llds", m, seconds % 60);
        else
            snprintf(out, outlen, "%lldm", m);
    } else if (m < 180) {
        snprintf(out, outlen, "%lldm", m);
    } else if (h < 8) {
        if (m % 60)
            snprintf(out, outlen, "%lldh%lldm", h, m % 60);
        else
            snprintf(out, outlen, "%lldh", h);
    } else if (h < 48) {
        snprintf(out, outlen, "%lldh", h);
    } else if (h < 24 * 8) {
        if (h % 24)
            snprintf(out, outlen, "%lldd%lldh", dd, h % 24);
        else
            snprintf(out, outlen, "%lldd", dd);
    } else if (h < 24 * 365 * 2) {
        snprintf(out, outlen, "%lldd", dd);
    } else if (h < 24 * 365 * 8) {
        if (dd % 365)
            snprintf(out, outlen, "%lldy%lldd", dd / 365, dd % 365);
        else
            snprintf(out, outlen, "%lldy", dd / 365);
    } else {
        snprintf(out, outlen, "%lldy", dd / 365);
    }
}

void kp_age_of(const json_t *obj, time_t now, char *out, size_t outlen)
{
    const char *ts =
        json_string_value(json_object_get(json_object_get(obj, "metadata"), "creationTimestamp"));
    time_t t;
    if (kp_time_parse(ts, &t) < 0) {
        snprintf(out, outlen, "<unknown>");
        return;
    }
    kp_age_format((long long)now - (long long)t, out, outlen);
}

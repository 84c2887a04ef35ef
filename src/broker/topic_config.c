/* topic_config.c — the topic config table and its validation (see topic_config.h). */
#include "broker/topic_config.h"

#include "core/buf.h"
#include "storage/compress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const cleanup_values[] = {"delete", "compact", NULL};
static const char *const compression_values[] = {"uncompressed", "zstd",     "lz4", "snappy",
                                                 "gzip",         "producer", NULL};
static const char *const timestamp_values[] = {"CreateTime", "LogAppendTime", NULL};
static const char *const flush_values[] = {"durable", "pagecache", NULL};
static const char *const bool_values[] = {"true", "false", NULL};

#define LMAX INT64_MAX
#define IMAX INT32_MAX

const kp_config_def_t kp_topic_config_defs[] = {
    {"cleanup.policy", "log.cleanup.policy", KP_CT_LIST, "delete", 0, 0, cleanup_values},
    {"compression.type", "compression.type", KP_CT_STRING, "producer", 0, 0, compression_values},
    {"delete.retention.ms", "log.cleaner.delete.retention.ms", KP_CT_LONG, "86400000", 0, LMAX,
     NULL},
    {"file.delete.delay.ms", "log.segment.delete.delay.ms", KP_CT_LONG, "60000", 0, LMAX, NULL},
    {"flush.messages", "log.flush.interval.messages", KP_CT_LONG, "9223372036854775807", 1, LMAX,
     NULL},
    {"flush.ms", "log.flush.interval.ms", KP_CT_LONG, "9223372036854775807", 0, LMAX, NULL},
    {"flush.policy", "log.flush.policy", KP_CT_STRING, "durable", 0, 0, flush_values},
    {"index.interval.bytes", "log.index.interval.bytes", KP_CT_INT, "4096", 0, IMAX, NULL},
    {"local.retention.bytes", "log.local.retention.bytes", KP_CT_LONG, "-2", -2, LMAX, NULL},
    {"local.retention.ms", "log.local.retention.ms", KP_CT_LONG, "-2", -2, LMAX, NULL},
    {"max.compaction.lag.ms", "log.cleaner.max.compaction.lag.ms", KP_CT_LONG,
     "9223372036854775807", 1, LMAX, NULL},
    {"max.message.bytes", "message.max.bytes", KP_CT_INT, "1048588", 0, IMAX, NULL},
    {"message.downconversion.enable", "log.message.downconversion.enable", KP_CT_STRING, "true", 0,
     0, bool_values},
    /* deprecated in Kafka 3.0 and inert with record batch v2, the only format here */
    {"message.format.version", "log.message.format.version", KP_CT_STRING, "3.0-IV1", 0, 0, NULL},
    {"message.timestamp.after.max.ms", "log.message.timestamp.after.max.ms", KP_CT_LONG,
     "9223372036854775807", 0, LMAX, NULL},
    {"message.timestamp.before.max.ms", "log.message.timestamp.before.max.ms", KP_CT_LONG,
     "9223372036854775807", 0, LMAX, NULL},
    {"message.timestamp.difference.max.ms", "log.message.timestamp.difference.max.ms", KP_CT_LONG,
     "9223372036854775807", 0, LMAX, NULL},
    {"message.timestamp.type", "log.message.timestamp.type", KP_CT_STRING, "CreateTime", 0, 0,
     timestamp_values},
    {"min.cleanable.dirty.ratio", "log.cleaner.min.cleanable.ratio", KP_CT_DOUBLE, "0.5", 0, 1,
     NULL},
    {"min.compaction.lag.ms", "log.cleaner.min.compaction.lag.ms", KP_CT_LONG, "0", 0, LMAX, NULL},
    {"min.insync.replicas", "min.insync.replicas", KP_CT_INT, "1", 1, IMAX, NULL},
    {"preallocate", "log.preallocate", KP_CT_STRING, "false", 0, 0, bool_values},
    {"remote.storage.enable", NULL, KP_CT_STRING, "false", 0, 0, bool_values},
    {"retention.bytes", "log.retention.bytes", KP_CT_LONG, "-1", -1, LMAX, NULL},
    {"retention.ms", "log.retention.ms", KP_CT_LONG, "604800000", -1, LMAX, NULL},
    {"segment.bytes", "log.segment.bytes", KP_CT_INT, "1073741824", 14, IMAX, NULL},
    {"segment.index.bytes", "log.index.size.max.bytes", KP_CT_INT, "10485760", 4, IMAX, NULL},
    {"segment.jitter.ms", "log.roll.jitter.ms", KP_CT_LONG, "0", 0, LMAX, NULL},
    {"segment.ms", "log.roll.ms", KP_CT_LONG, "604800000", 1, LMAX, NULL},
    {"unclean.leader.election.enable", "unclean.leader.election.enable", KP_CT_STRING, "false", 0,
     0, bool_values},
};
const size_t kp_topic_config_defs_count =
    sizeof(kp_topic_config_defs) / sizeof(kp_topic_config_defs[0]);

const kp_config_def_t *kp_topic_config_find(const char *name)
{
    for (size_t i = 0; i < kp_topic_config_defs_count; i++)
        if (strcmp(kp_topic_config_defs[i].name, name) == 0) return &kp_topic_config_defs[i];
    return NULL;
}

/* Kafka's validators compare enumerated values case-sensitively (ValidString/ValidList) and
 * only booleans ignore case; the data path compares with the exact spelling, so accepting
 * "COMPACT" would store a policy that nothing honours. */
static int in_list(const char *const *allowed, const char *s, size_t n)
{
    int (*cmp)(const char *, const char *, size_t) = allowed == bool_values ? strncasecmp : strncmp;
    for (int i = 0; allowed[i]; i++)
        if (strlen(allowed[i]) == n && cmp(allowed[i], s, n) == 0) return 1;
    return 0;
}

static void allowed_str(const char *const *allowed, char *out, size_t n)
{
    out[0] = 0;
    for (int i = 0; allowed[i]; i++) {
        strncat(out, i ? ", " : "", n - strlen(out) - 1);
        strncat(out, allowed[i], n - strlen(out) - 1);
    }
}

static int validate_def(const kp_config_def_t *d, const char *value, char *err, size_t errlen)
{
    char allowed[256];
    switch (d->type) {
    case KP_CT_LONG:
    case KP_CT_INT: {
        int64_t v;
        if (kp_parse_i64(value, &v) < 0) {
            snprintf(err, errlen, "Invalid value '%s' for configuration %s: not a number", value,
                     d->name);
            return -1;
        }
        int64_t max = d->type == KP_CT_INT && d->max > INT32_MAX ? INT32_MAX : d->max;
        if (v < d->min || v > max) {
            snprintf(err, errlen, "Invalid value %s for configuration %s: must be in %lld..%lld",
                     value, d->name, (long long)d->min, (long long)max);
            return -1;
        }
        return 0;
    }
    case KP_CT_DOUBLE: {
        char *end;
        double v = strtod(value, &end);
        if (!*value || *end || v != v /* NaN */ || v < (double)d->min || v > (double)d->max) {
            snprintf(err, errlen,
                     "Invalid value '%s' for configuration %s: must be a number in "
                     "%lld..%lld",
                     value, d->name, (long long)d->min, (long long)d->max);
            return -1;
        }
        return 0;
    }
    case KP_CT_BOOL:
    case KP_CT_STRING:
        if (d->allowed && !in_list(d->allowed, value, strlen(value))) {
            allowed_str(d->allowed, allowed, sizeof(allowed));
            snprintf(err, errlen, "Invalid value '%s' for configuration %s: must be one of %s",
                     value, d->name, allowed);
            return -1;
        }
        return 0;
    case KP_CT_LIST: {
        const char *s = value;
        int n = 0;
        while (*s) {
            while (*s == ' ') s++;
            const char *e = s;
            while (*e && *e != ',') e++;
            const char *t = e;
            while (t > s && t[-1] == ' ') t--;
            if (t == s || !in_list(d->allowed, s, (size_t)(t - s))) {
                allowed_str(d->allowed, allowed, sizeof(allowed));
                snprintf(err, errlen,
                         "Invalid value '%s' for configuration %s: each item must "
                         "be one of %s",
                         value, d->name, allowed);
                return -1;
            }
            n++;
            s = *e ? e + 1 : e;
        }
        if (n == 0) {
            snprintf(err, errlen, "Invalid value '' for configuration %s: empty list", d->name);
            return -1;
        }
        return 0;
    }
    }
    return 0;
}

/* A Kafka version as message.format.version takes it: "0.10.2", "2.8", "3.0-IV1" (Kafka's
 * MetadataVersionValidator accepts release and inter-broker-protocol names). */
static int version_valid(const char *v)
{
    int parts = 0;
    const char *s = v;
    for (;;) {
        if (*s < '0' || *s > '9') return 0;
        while (*s >= '0' && *s <= '9') s++;
        parts++;
        if (*s != '.') break;
        s++;
    }
    if (parts < 2 || parts > 3) return 0;
    if (!strncmp(s, "-IV", 3)) {
        s += 3;
        if (*s < '0' || *s > '9') return 0;
        while (*s >= '0' && *s <= '9') s++;
    }
    return *s == 0;
}

int kp_topic_config_validate(const char *name, const char *value, char *err, size_t errlen)
{
    const kp_config_def_t *d = kp_topic_config_find(name);
    if (!d) {
        snprintf(err, errlen, "Unknown topic config name: %s", name);
        return -1;
    }
    if (!value) {
        snprintf(err, errlen, "Null value for configuration %s", name);
        return -1;
    }
    if (validate_def(d, value, err, errlen) < 0) return -1;
    if (!strcmp(name, "message.format.version") && !version_valid(value)) {
        snprintf(err, errlen,
                 "Invalid value '%s' for configuration message.format.version: not a Kafka "
                 "version such as 2.8 or 3.0-IV1",
                 value);
        return -1;
    }
    if (!strcmp(name, "remote.storage.enable") && !strcasecmp(value, "true")) {
        /* Kafka's answer when the broker has no tiered storage (its default): refuse rather
         * than accept a promise nothing keeps */
        snprintf(err, errlen,
                 "Invalid value true for configuration remote.storage.enable: tiered storage "
                 "is not available in this broker; topics cannot be configured with remote "
                 "log storage");
        return -1;
    }
    return 0;
}

const char *kp_topic_config_value(const kp_config_def_t *def, const kp_props_t *overrides,
                                  const kp_props_t *broker, int *source)
{
    const char *v = overrides ? kp_props_get(overrides, def->name) : NULL;
    if (v) {
        if (source) *source = KP_CONFIG_SOURCE_TOPIC;
        return v;
    }
    v = def->broker_name && broker ? kp_props_get(broker, def->broker_name) : NULL;
    if (v) {
        if (source) *source = KP_CONFIG_SOURCE_STATIC_BROKER;
        return v;
    }
    if (source) *source = KP_CONFIG_SOURCE_DEFAULT;
    return def->default_value;
}

int64_t kp_topic_config_i64(const char *name, const kp_props_t *overrides, const kp_props_t *broker)
{
    const kp_config_def_t *d = kp_topic_config_find(name);
    int64_t v = 0;
    if (!d) return 0;
    if (kp_parse_i64(kp_topic_config_value(d, overrides, broker, NULL), &v) < 0)
        kp_parse_i64(d->default_value, &v);
    return v;
}

int kp_topic_config_codec(const char *value)
{
    static const struct {
        const char *name;
        int codec;
    } map[] = {{"uncompressed", KP_CODEC_NONE},
               {"gzip", KP_CODEC_GZIP},
               {"snappy", KP_CODEC_SNAPPY},
               {"lz4", KP_CODEC_LZ4},
               {"zstd", KP_CODEC_ZSTD}};
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (!strcmp(value, map[i].name)) return map[i].codec;
    return -1;
}

void kp_topic_timestamp_bounds(const kp_props_t *overrides, const kp_props_t *broker,
                               int64_t *before_ms, int64_t *after_ms)
{
    int64_t diff = kp_topic_config_i64("message.timestamp.difference.max.ms", overrides, broker);
    *before_ms = kp_topic_config_i64("message.timestamp.before.max.ms", overrides, broker);
    *after_ms = kp_topic_config_i64("message.timestamp.after.max.ms", overrides, broker);
    if (*before_ms == INT64_MAX) *before_ms = diff;
    if (*after_ms == INT64_MAX) *after_ms = diff;
}

void kp_topic_log_config(kp_partition_config_t *out, const kp_props_t *overrides,
                         const kp_props_t *broker)
{
    kp_partition_config_defaults(out);
    out->segment_bytes = kp_topic_config_i64("segment.bytes", overrides, broker);
    out->segment_ms = kp_topic_config_i64("segment.ms", overrides, broker);
    /* as Kafka (LogConfig.maxSegmentMs): on a compacted topic the active segment, which the
     * cleaner never touches, rolls by max.compaction.lag.ms so that lag can be kept */
    const char *cp =
        kp_topic_config_value(kp_topic_config_find("cleanup.policy"), overrides, broker, NULL);
    int64_t lag = kp_topic_config_i64("max.compaction.lag.ms", overrides, broker);
    if (strstr(cp, "compact") && lag > 0 && lag < out->segment_ms) out->segment_ms = lag;
    out->segment_jitter_ms = kp_topic_config_i64("segment.jitter.ms", overrides, broker);
    out->segment_index_bytes = kp_topic_config_i64("segment.index.bytes", overrides, broker);
    out->flush_messages = kp_topic_config_i64("flush.messages", overrides, broker);
    out->flush_ms = kp_topic_config_i64("flush.ms", overrides, broker);
    out->index_interval_bytes =
        (int32_t)kp_topic_config_i64("index.interval.bytes", overrides, broker);
    const kp_config_def_t *d = kp_topic_config_find("flush.policy");
    out->durable = strcasecmp(kp_topic_config_value(d, overrides, broker, NULL), "pagecache") != 0;
}

int kp_config_op_apply(kp_props_t *props, const char *key, int is_list, int8_t op,
                       const char *value, const char *base, char *err, size_t errlen)
{
    const char *cur = kp_props_get(props, key);
    switch (op) {
    case 0: /* SET */
        kp_props_set(props, key, value);
        return 0;
    case 1: /* DELETE: back to the next layer's value */
        kp_props_del(props, key);
        return 0;
    case 2:   /* APPEND */
    case 3: { /* SUBTRACT */
        if (!is_list) {
            snprintf(err, errlen,
                     "Config %s is not a list: APPEND and SUBTRACT need a list "
                     "config such as cleanup.policy",
                     key);
            return -1;
        }
        kp_buf_t out;
        kp_buf_init(&out);
        char *items = kp_xstrdup(cur ? cur : base), *save = NULL;
        for (char *it = strtok_r(items, ",", &save); it; it = strtok_r(NULL, ",", &save)) {
            while (*it == ' ') it++;
            if (!*it) continue;
            int drop = 0;
            if (op == 3) { /* remove every item listed in value */
                char *vcopy = kp_xstrdup(value), *vs = NULL;
                for (char *v = strtok_r(vcopy, ",", &vs); v && !drop; v = strtok_r(NULL, ",", &vs))
                    drop = !strcmp(v, it);
                free(vcopy);
            }
            if (!drop) kp_buf_appendf(&out, "%s%s", out.len ? "," : "", it);
        }
        free(items);
        if (op == 2) {
            char *vcopy = kp_xstrdup(value), *vs = NULL;
            for (char *v = strtok_r(vcopy, ",", &vs); v; v = strtok_r(NULL, ",", &vs)) {
                /* skip values already present */
                char probe[512];
                snprintf(probe, sizeof(probe), ",%.*s,", (int)out.len,
                         out.len ? (char *)out.data : "");
                char needle[256];
                snprintf(needle, sizeof(needle), ",%s,", v);
                if (!strstr(probe, needle)) kp_buf_appendf(&out, "%s%s", out.len ? "," : "", v);
            }
            free(vcopy);
        }
        kp_buf_append(&out, "", 1);
        if (out.len <= 1) {
            kp_props_del(props, key);
        } else {
            kp_props_set(props, key, (const char *)out.data);
        }
        kp_buf_free(&out);
        return 0;
    }
    default:
        snprintf(err, errlen, "Unknown config operation %d (0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT)",
                 op);
        return -1;
    }
}

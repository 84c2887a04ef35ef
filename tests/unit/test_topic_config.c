/*
 * test_topic_config.c — broker/topic_config: how effective topic configs become storage and
 * produce settings.
 *
 *   - compression.type: every Kafka value is accepted (case-sensitively), and maps to its
 *     codec; producer maps to "store as produced";
 *   - message.timestamp.before/after.max.ms fall back to the deprecated difference.max.ms
 *     only while unset, each on its own, from a topic override or a broker property;
 *   - kp_topic_log_config: flush.messages, flush.ms, segment.index.bytes, segment.jitter.ms
 *     reach the log config (topic over broker over default); a compacted topic's segments
 *     roll by max.compaction.lag.ms when it is below segment.ms;
 *   - remote.storage.enable=true is refused (no tiered storage), false accepted;
 *   - message.format.version takes Kafka version names only;
 *   - kp_config_op_apply (IncrementalAlterConfigs, topic and broker): SET, DELETE, APPEND
 *     and SUBTRACT on a list starting from the layer below, refusals for non-lists.
 */
#include "unit.h"

#include "broker/topic_config.h"
#include "storage/compress.h"

static void test_compression_type(void **state)
{
    char err[256];
    static const char *const ok[] = {"producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        assert_int_equal(kp_topic_config_validate("compression.type", ok[i], err, sizeof(err)), 0);
    assert_int_equal(kp_topic_config_validate("compression.type", "ZSTD", err, sizeof(err)), -1);
    assert_int_equal(kp_topic_config_validate("compression.type", "none", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "compression.type"));
    assert_int_equal(kp_topic_config_codec("producer"), -1);
    assert_int_equal(kp_topic_config_codec("uncompressed"), KP_CODEC_NONE);
    assert_int_equal(kp_topic_config_codec("gzip"), KP_CODEC_GZIP);
    assert_int_equal(kp_topic_config_codec("snappy"), KP_CODEC_SNAPPY);
    assert_int_equal(kp_topic_config_codec("lz4"), KP_CODEC_LZ4);
    assert_int_equal(kp_topic_config_codec("zstd"), KP_CODEC_ZSTD);
}

static void test_timestamp_bounds(void **state)
{
    kp_props_t *topic = kp_props_new(), *broker = kp_props_new();
    int64_t before, after;
    kp_topic_timestamp_bounds(topic, broker, &before, &after);
    assert_int_equal(before, INT64_MAX);
    assert_int_equal(after, INT64_MAX);
    /* the deprecated one bounds both directions... */
    kp_props_set(broker, "log.message.timestamp.difference.max.ms", "5000");
    kp_topic_timestamp_bounds(topic, broker, &before, &after);
    assert_int_equal(before, 5000);
    assert_int_equal(after, 5000);
    /* ...until the new one is set, each on its own */
    kp_props_set(topic, "message.timestamp.before.max.ms", "3600000");
    kp_topic_timestamp_bounds(topic, broker, &before, &after);
    assert_int_equal(before, 3600000);
    assert_int_equal(after, 5000);
    kp_props_set(broker, "log.message.timestamp.after.max.ms", "10");
    kp_topic_timestamp_bounds(topic, broker, &before, &after);
    assert_int_equal(before, 3600000);
    assert_int_equal(after, 10);
    kp_props_free(topic);
    kp_props_free(broker);
}

static void test_log_config(void **state)
{
    kp_props_t *topic = kp_props_new(), *broker = kp_props_new();
    kp_log_config_t lc;
    kp_topic_log_config(&lc, topic, broker);
    assert_int_equal(lc.flush_messages, INT64_MAX);
    assert_int_equal(lc.flush_ms, INT64_MAX);
    assert_int_equal(lc.segment_index_bytes, 10485760);
    assert_int_equal(lc.segment_jitter_ms, 0);
    assert_int_equal(lc.segment_ms, 604800000);
    kp_props_set(broker, "log.flush.interval.messages", "100");
    kp_props_set(broker, "log.flush.interval.ms", "2000");
    kp_props_set(broker, "log.index.size.max.bytes", "4096");
    kp_props_set(broker, "log.roll.jitter.ms", "300");
    kp_props_set(topic, "flush.ms", "50");
    kp_topic_log_config(&lc, topic, broker);
    assert_int_equal(lc.flush_messages, 100);
    assert_int_equal(lc.flush_ms, 50);
    assert_int_equal(lc.segment_index_bytes, 4096);
    assert_int_equal(lc.segment_jitter_ms, 300);
    /* max.compaction.lag.ms shortens segment.ms on compacted topics only */
    kp_props_set(topic, "max.compaction.lag.ms", "60000");
    kp_topic_log_config(&lc, topic, broker);
    assert_int_equal(lc.segment_ms, 604800000);
    kp_props_set(topic, "cleanup.policy", "compact,delete");
    kp_topic_log_config(&lc, topic, broker);
    assert_int_equal(lc.segment_ms, 60000);
    kp_props_set(topic, "segment.ms", "1000");
    kp_topic_log_config(&lc, topic, broker);
    assert_int_equal(lc.segment_ms, 1000);
    kp_props_free(topic);
    kp_props_free(broker);
}

static void test_remote_storage_refused(void **state)
{
    char err[256];
    assert_int_equal(kp_topic_config_validate("remote.storage.enable", "true", err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "remote.storage.enable"));
    assert_int_equal(kp_topic_config_validate("remote.storage.enable", "TRUE", err, sizeof(err)),
                     -1);
    assert_int_equal(kp_topic_config_validate("remote.storage.enable", "false", err, sizeof(err)),
                     0);
}

static void test_message_format_version(void **state)
{
    char err[256];
    static const char *const ok[] = {"0.8.2", "0.10.2", "0.10.0-IV1", "2.8", "3.0-IV1", "3.6"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        assert_int_equal(
            kp_topic_config_validate("message.format.version", ok[i], err, sizeof(err)), 0);
    static const char *const bad[] = {"", "3", "latest", "3.0-IV", "3.0-", "1.2.3.4", ".1", "3.x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(
            kp_topic_config_validate("message.format.version", bad[i], err, sizeof(err)), -1);
        assert_non_null(strstr(err, "message.format.version"));
    }
}

static void test_config_op_apply(void **state)
{
    char err[256];
    kp_props_t *p = kp_props_new();
    assert_int_equal(
        kp_config_op_apply(p, "log.cleanup.policy", 1, 2, "compact", "delete", err, sizeof(err)),
        0);
    assert_string_equal(kp_props_get(p, "log.cleanup.policy"), "delete,compact");
    assert_int_equal(
        kp_config_op_apply(p, "log.cleanup.policy", 1, 2, "compact", "delete", err, sizeof(err)),
        0); /* already there */
    assert_string_equal(kp_props_get(p, "log.cleanup.policy"), "delete,compact");
    assert_int_equal(
        kp_config_op_apply(p, "log.cleanup.policy", 1, 3, "delete", "x", err, sizeof(err)), 0);
    assert_string_equal(kp_props_get(p, "log.cleanup.policy"), "compact");
    assert_int_equal(
        kp_config_op_apply(p, "log.cleanup.policy", 1, 3, "compact", "x", err, sizeof(err)), 0);
    assert_null(kp_props_get(p, "log.cleanup.policy")); /* empty list: back to the default */
    assert_int_equal(kp_config_op_apply(p, "log.retention.ms", 0, 0, "5", NULL, err, sizeof(err)),
                     0);
    assert_string_equal(kp_props_get(p, "log.retention.ms"), "5");
    assert_int_equal(kp_config_op_apply(p, "log.retention.ms", 0, 2, "5", "1", err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "not a list"));
    assert_int_equal(kp_config_op_apply(p, "log.retention.ms", 0, 9, "5", "1", err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "Unknown config operation 9"));
    assert_int_equal(kp_config_op_apply(p, "log.retention.ms", 0, 1, NULL, NULL, err, sizeof(err)),
                     0);
    assert_null(kp_props_get(p, "log.retention.ms"));
    kp_props_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compression_type),
        cmocka_unit_test(test_timestamp_bounds),
        cmocka_unit_test(test_log_config),
        cmocka_unit_test(test_remote_storage_refused),
        cmocka_unit_test(test_message_format_version),
        cmocka_unit_test(test_config_op_apply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * fuzz_pool_raw.c — libFuzzer target for the control plane's parsing of a pool's
 * DescribeConfigs v1 answer (control/pool_acl_raw.h, kp_pool_raw_parse_topic_configs): the
 * drift check reads it from the pool, which may be any Kafka; and of the same bytes as a
 * Metadata v1 answer (kp_pool_raw_parse_controller_racks: the Pool status's controller and
 * racks).
 *
 * Checked: no crash, leak or overread for any input; an error leaves nothing behind; every
 * topic answered has a name, NULL-terminated key and value lists of nconfigs entries, and no
 * overrides when it carries an error.
 */
#include "control/pool_acl_raw.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_pool_raw: %s\n", what);
        abort();
    }
}

static int configs(const uint8_t *data, size_t size)
{
    kp_pool_raw_topic_cfg_t *t;
    int n;
    char err[256];
    if (kp_pool_raw_parse_topic_configs(data, size, &t, &n, err, sizeof(err)) < 0) {
        check(t == NULL && n == 0 && err[0], "an error left topics behind or said nothing");
        return 0;
    }
    check(t != NULL && n >= 0, "no topic array");
    for (int i = 0; i < n; i++) {
        check(t[i].name != NULL, "a topic without a name");
        check(t[i].nconfigs >= 0, "negative config count");
        check(!t[i].error || t[i].nconfigs == 0, "an errored topic with overrides");
        for (int k = 0; k < t[i].nconfigs; k++)
            check(t[i].keys[k] && t[i].values[k], "a missing key or value");
        check(t[i].keys[t[i].nconfigs] == NULL && t[i].values[t[i].nconfigs] == NULL,
              "lists not NULL-terminated");
    }
    kp_pool_raw_topic_cfgs_free(t, n);
    return 0;
}

/* The same bytes as a Metadata v1 answer (the Pool status's controller and racks). */
static void metadata(const uint8_t *data, size_t size)
{
    int32_t controller, *ids;
    char **racks;
    int n;
    char err[256];
    if (kp_pool_raw_parse_controller_racks(data, size, &controller, &ids, &racks, &n, err,
                                           sizeof(err)) < 0) {
        check(!ids && !racks && n == 0 && controller == -1 && err[0],
              "a metadata error left brokers behind or said nothing");
        return;
    }
    check(ids && racks && n >= 0 && controller >= -1, "no broker arrays");
    for (int i = 0; i < n; i++) check(!racks[i] || racks[i][0], "an empty rack");
    kp_pool_raw_racks_free(ids, racks, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    configs(data, size);
    metadata(data, size);
    return 0;
}

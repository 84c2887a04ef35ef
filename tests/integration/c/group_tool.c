/*
 * group_tool.c — drives librdkafka's consumer group admin API for the group tests
 * (test_groups_api.py, test_groups_owner.py). The tests compile it into a temporary
 * directory:
 *
 *     gcc -O1 -o group_tool group_tool.c -lrdkafka
 *
 * Usage:
 *     group_tool [-X key=value]... <bootstrap> list [STATE]...         ListConsumerGroups
 *     group_tool [-X key=value]... <bootstrap> offsets GROUP [TOPIC:PARTITION]...
 *                                                                     ListConsumerGroupOffsets
 *                                                                     (none given: all)
 *     group_tool [-X key=value]... <bootstrap> alter GROUP TOPIC:PARTITION:OFFSET...
 *                                                                     AlterConsumerGroupOffsets
 *     group_tool [-X key=value]... <bootstrap> delete GROUP...         DeleteGroups
 *
 * Output, one line each, fields separated by tabs:
 *     list:    "group <id> <state> <simple 0|1>" per group, "error <code> <name>" per error
 *     offsets, alter: "group <id> <error name>", then "partition <topic> <partition>
 *              <offset> <error name>" per partition
 *     delete:  "group <id> <error name>" per group
 *     a request-level failure: "error <code> <name> <message>"
 * Exit status: 0 when the request was answered (per-item errors are in the output), 2 when
 * the request itself failed, 1 on a usage or local error.
 */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TIMEOUT_MS 20000

static rd_kafka_topic_partition_list_t *parse_partitions(char **args, int n, int with_offset)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n > 0 ? n : 1);
    for (int i = 0; i < n; i++) {
        char *topic = strdup(args[i]);
        char *p = strchr(topic, ':');
        if (!p) {
            fprintf(stderr, "group_tool: expected TOPIC:PARTITION, got '%s'\n", args[i]);
            exit(1);
        }
        *p++ = 0;
        char *o = strchr(p, ':');
        if (o) *o++ = 0;
        rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_add(l, topic, atoi(p));
        if (with_offset) tp->offset = o ? strtoll(o, NULL, 10) : 0;
        free(topic);
    }
    return l;
}

static void print_group_result(const rd_kafka_group_result_t *gr)
{
    const rd_kafka_error_t *e = rd_kafka_group_result_error(gr);
    printf("group\t%s\t%s\n", rd_kafka_group_result_name(gr),
           e ? rd_kafka_err2name(rd_kafka_error_code(e)) : "NO_ERROR");
    const rd_kafka_topic_partition_list_t *l = rd_kafka_group_result_partitions(gr);
    for (int i = 0; l && i < l->cnt; i++)
        printf("partition\t%s\t%d\t%lld\t%s\n", l->elems[i].topic, (int)l->elems[i].partition,
               (long long)l->elems[i].offset, rd_kafka_err2name(l->elems[i].err));
}

int main(int argc, char **argv)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int i = 1;
    for (; i + 1 < argc && !strcmp(argv[i], "-X"); i += 2) {
        char *kv = strdup(argv[i + 1]), *eq = strchr(kv, '=');
        if (!eq) return 1;
        *eq = 0;
        if (rd_kafka_conf_set(conf, kv, eq + 1, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
            fprintf(stderr, "group_tool: %s\n", errstr);
            return 1;
        }
        free(kv);
    }
    if (argc - i < 2) {
        fprintf(stderr, "usage: group_tool [-X k=v]... BOOTSTRAP list|offsets|alter|delete ...\n");
        return 1;
    }
    rd_kafka_conf_set(conf, "bootstrap.servers", argv[i], errstr, sizeof(errstr));
    const char *cmd = argv[i + 1];
    char **args = argv + i + 2;
    int nargs = argc - i - 2;
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "group_tool: %s\n", errstr);
        return 1;
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_ANY);
    rd_kafka_AdminOptions_set_request_timeout(opts, TIMEOUT_MS, errstr, sizeof(errstr));
    rd_kafka_event_type_t want;
    if (!strcmp(cmd, "list")) {
        rd_kafka_consumer_group_state_t states[8];
        int n = 0;
        for (int k = 0; k < nargs && n < 8; k++)
            for (int s = 0; s < RD_KAFKA_CONSUMER_GROUP_STATE__CNT; s++)
                if (!strcmp(args[k], rd_kafka_consumer_group_state_name(s)))
                    states[n++] = (rd_kafka_consumer_group_state_t)s;
        if (n) {
            rd_kafka_error_t *e =
                rd_kafka_AdminOptions_set_match_consumer_group_states(opts, states, n);
            if (e) {
                fprintf(stderr, "group_tool: %s\n", rd_kafka_error_string(e));
                return 1;
            }
        }
        rd_kafka_ListConsumerGroups(rk, opts, q);
        want = RD_KAFKA_EVENT_LISTCONSUMERGROUPS_RESULT;
    } else if (!strcmp(cmd, "offsets") && nargs >= 1) {
        rd_kafka_topic_partition_list_t *l =
            nargs > 1 ? parse_partitions(args + 1, nargs - 1, 0) : NULL;
        rd_kafka_ListConsumerGroupOffsets_t *r = rd_kafka_ListConsumerGroupOffsets_new(args[0], l);
        rd_kafka_ListConsumerGroupOffsets(rk, &r, 1, opts, q);
        rd_kafka_ListConsumerGroupOffsets_destroy(r);
        if (l) rd_kafka_topic_partition_list_destroy(l);
        want = RD_KAFKA_EVENT_LISTCONSUMERGROUPOFFSETS_RESULT;
    } else if (!strcmp(cmd, "alter") && nargs >= 2) {
        rd_kafka_topic_partition_list_t *l = parse_partitions(args + 1, nargs - 1, 1);
        rd_kafka_AlterConsumerGroupOffsets_t *a =
            rd_kafka_AlterConsumerGroupOffsets_new(args[0], l);
        rd_kafka_AlterConsumerGroupOffsets(rk, &a, 1, opts, q);
        rd_kafka_AlterConsumerGroupOffsets_destroy(a);
        rd_kafka_topic_partition_list_destroy(l);
        want = RD_KAFKA_EVENT_ALTERCONSUMERGROUPOFFSETS_RESULT;
    } else if (!strcmp(cmd, "delete") && nargs >= 1) {
        rd_kafka_DeleteGroup_t **d = calloc((size_t)nargs, sizeof(*d));
        for (int k = 0; k < nargs; k++) d[k] = rd_kafka_DeleteGroup_new(args[k]);
        rd_kafka_DeleteGroups(rk, d, (size_t)nargs, opts, q);
        rd_kafka_DeleteGroup_destroy_array(d, (size_t)nargs);
        free(d);
        want = RD_KAFKA_EVENT_DELETEGROUPS_RESULT;
    } else {
        fprintf(stderr, "group_tool: unknown command or missing arguments: %s\n", cmd);
        return 1;
    }
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, TIMEOUT_MS + 5000);
    int rc = 0;
    if (!ev || rd_kafka_event_type(ev) != want) {
        printf("error\t-1\tTIMED_OUT\tno result\n");
        rc = 2;
    } else if (rd_kafka_event_error(ev)) {
        printf("error\t%d\t%s\t%s\n", rd_kafka_event_error(ev),
               rd_kafka_err2name(rd_kafka_event_error(ev)), rd_kafka_event_error_string(ev));
        rc = 2;
    } else if (want == RD_KAFKA_EVENT_LISTCONSUMERGROUPS_RESULT) {
        const rd_kafka_ListConsumerGroups_result_t *r =
            rd_kafka_event_ListConsumerGroups_result(ev);
        size_t n;
        const rd_kafka_ConsumerGroupListing_t **gl =
            rd_kafka_ListConsumerGroups_result_valid(r, &n);
        for (size_t k = 0; k < n; k++)
            printf("group\t%s\t%s\t%d\n", rd_kafka_ConsumerGroupListing_group_id(gl[k]),
                   rd_kafka_consumer_group_state_name(rd_kafka_ConsumerGroupListing_state(gl[k])),
                   rd_kafka_ConsumerGroupListing_is_simple_consumer_group(gl[k]));
        const rd_kafka_error_t **errs = rd_kafka_ListConsumerGroups_result_errors(r, &n);
        for (size_t k = 0; k < n; k++)
            printf("error\t%d\t%s\n", rd_kafka_error_code(errs[k]),
                   rd_kafka_err2name(rd_kafka_error_code(errs[k])));
    } else {
        const rd_kafka_group_result_t **grs;
        size_t n;
        if (want == RD_KAFKA_EVENT_LISTCONSUMERGROUPOFFSETS_RESULT)
            grs = rd_kafka_ListConsumerGroupOffsets_result_groups(
                rd_kafka_event_ListConsumerGroupOffsets_result(ev), &n);
        else if (want == RD_KAFKA_EVENT_ALTERCONSUMERGROUPOFFSETS_RESULT)
            grs = rd_kafka_AlterConsumerGroupOffsets_result_groups(
                rd_kafka_event_AlterConsumerGroupOffsets_result(ev), &n);
        else
            grs = rd_kafka_DeleteGroups_result_groups(rd_kafka_event_DeleteGroups_result(ev), &n);
        for (size_t k = 0; k < n; k++) print_group_result(grs[k]);
    }
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return rc;
}

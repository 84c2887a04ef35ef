/*
 * nats_js.c — the NATS JetStream side of bench/peers.sh (Debian ships nats-server and the C
 * client libnats, but no benchmark tool). Built by peers.sh: cc -O2 nats_js.c -lnats.
 *
 *   nats_js --port P --size BYTES --count N --streams S [--max-pending M]
 *
 * Produce: N messages round-robin over S file-storage streams (one subject each, the
 * analogue of partitions) with js_PublishAsync, at most M unacknowledged (the analogue of
 * librdkafka's in-flight window). Latency is publish -> PubAck, from a preallocated array of
 * send times indexed by the message number carried in the payload's first 8 bytes.
 * Consume: a pull consumer per stream (deliver all, no acks) fetches batches of 1000 until
 * it has the stream's messages.
 *
 * Prints one JSON object shaped like `kpool bench --json`. Exit 0 ok, 1 failure.
 */
#include <nats/nats.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Most streams (partitions) accepted: names are built in fixed buffers. */
#define STREAMS_MAX 64
#define FETCH_BATCH 1000

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

typedef struct bench {
    int64_t *sent_us; /* send time per message number */
    int64_t *lat_us;  /* latency per acknowledged message, in ack order */
    int64_t acked, failed, last_ack_us;
} bench_t;

static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    bench_t *b = closure;
    int64_t now = now_us(), idx;
    memcpy(&idx, natsMsg_GetData(msg), sizeof(idx));
    if (pa)
        b->lat_us[b->acked++] = now - b->sent_us[idx];
    else
        b->failed++;
    b->last_ack_us = now;
    natsMsg_Destroy(msg);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int64_t pct(const int64_t *v, int64_t n, double p)
{
    if (n == 0) return 0;
    int64_t rank = (int64_t)(p / 100.0 * (double)n + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return v[rank - 1];
}

static void print_side(const char *name, int64_t msgs, int64_t bytes, int64_t errors,
                       int64_t elapsed_us, const int64_t *lat, int64_t nlat)
{
    double s = (double)elapsed_us / 1e6;
    printf(",\"%s\":{\"msgs\":%lld,\"bytes\":%lld,\"errors\":%lld,\"seconds\":%.6f,"
           "\"msg_per_s\":%.1f,\"mb_per_s\":%.3f",
           name, (long long)msgs, (long long)bytes, (long long)errors, s,
           s > 0 ? (double)msgs / s : 0, s > 0 ? (double)bytes / s / 1048576.0 : 0);
    if (nlat)
        printf(",\"latency_us\":{\"p50\":%lld,\"p99\":%lld,\"p999\":%lld,\"max\":%lld}",
               (long long)pct(lat, nlat, 50), (long long)pct(lat, nlat, 99),
               (long long)pct(lat, nlat, 99.9), (long long)lat[nlat - 1]);
    printf("}");
}

static int fail(const char *what, natsStatus s, jsErrCode jerr)
{
    fprintf(stderr, "nats_js: %s: %s (jetstream error %d)\n", what, natsStatus_GetText(s),
            (int)jerr);
    printf("{\"tool\":\"nats_js\",\"ok\":false}\n");
    return 1;
}

int main(int argc, char **argv)
{
    int port = 4222, size = 1024, streams = 1;
    int64_t count = 100000, max_pending = 4000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--port"))
            port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--size"))
            size = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--count"))
            count = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--streams"))
            streams = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--max-pending"))
            max_pending = atoll(argv[i + 1]);
        else {
            fprintf(stderr, "nats_js: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (size < 8 || count < 1 || streams < 1 || streams > STREAMS_MAX) {
        fprintf(stderr, "nats_js: need --size >= 8, --count >= 1, --streams 1..%d\n", STREAMS_MAX);
        return 2;
    }
    char url[64], names[STREAMS_MAX][32], subjects[STREAMS_MAX][32];
    snprintf(url, sizeof(url), "nats://127.0.0.1:%d", port);
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    natsStatus s = natsConnection_ConnectTo(&nc, url);
    if (s != NATS_OK) return fail("connect", s, 0);

    bench_t b = {.sent_us = calloc((size_t)count, 8), .lat_us = calloc((size_t)count, 8)};
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = max_pending;
    jo.PublishAsync.AckHandler = on_ack;
    jo.PublishAsync.AckHandlerClosure = &b;
    jo.Wait = 30000;
    if ((s = natsConnection_JetStream(&js, nc, &jo)) != NATS_OK) return fail("jetstream", s, 0);
    for (int i = 0; i < streams; i++) {
        snprintf(names[i], sizeof(names[i]), "BENCH%d", i);
        snprintf(subjects[i], sizeof(subjects[i]), "bench.%d", i);
        const char *subj = subjects[i];
        jsStreamConfig sc;
        jsStreamConfig_Init(&sc);
        sc.Name = names[i];
        sc.Subjects = &subj;
        sc.SubjectsLen = 1;
        sc.Storage = js_FileStorage;
        js_DeleteStream(js, names[i], NULL, NULL); /* a fresh stream per run */
        if ((s = js_AddStream(NULL, js, &sc, NULL, &jerr)) != NATS_OK)
            return fail("add stream", s, jerr);
    }

    char *payload = calloc(1, (size_t)size);
    memset(payload, 'x', (size_t)size);
    int64_t start = now_us();
    b.last_ack_us = start;
    for (int64_t i = 0; i < count; i++) {
        memcpy(payload, &i, sizeof(i));
        b.sent_us[i] = now_us();
        s = js_PublishAsync(js, subjects[i % streams], payload, size, NULL);
        if (s != NATS_OK) return fail("publish", s, 0);
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 60000;
    if ((s = js_PublishAsyncComplete(js, &po)) != NATS_OK) return fail("publish complete", s, 0);
    int64_t produce_us = b.last_ack_us - start;
    int64_t nlat = b.acked;
    qsort(b.lat_us, (size_t)nlat, 8, cmp_i64);

    /* read back: one pull consumer per stream, from the first message, no acks */
    int64_t got = 0, got_bytes = 0, cstart = 0, clast = 0;
    for (int i = 0; i < streams; i++) {
        jsSubOptions so;
        jsSubOptions_Init(&so);
        so.Stream = names[i];
        so.Config.AckPolicy = js_AckNone;
        so.Config.DeliverPolicy = js_DeliverAll;
        natsSubscription *sub = NULL;
        char durable[32];
        snprintf(durable, sizeof(durable), "reader%d", i);
        if ((s = js_PullSubscribe(&sub, js, subjects[i], durable, NULL, &so, &jerr)) != NATS_OK)
            return fail("pull subscribe", s, jerr);
        int64_t want = count / streams + (i < count % streams ? 1 : 0), have = 0;
        while (have < want) {
            natsMsgList list = {0};
            s = natsSubscription_Fetch(&list, sub, FETCH_BATCH, 5000, &jerr);
            if (s != NATS_OK) return fail("fetch", s, jerr);
            if (cstart == 0) cstart = now_us();
            for (int k = 0; k < list.Count; k++) got_bytes += natsMsg_GetDataLength(list.Msgs[k]);
            have += list.Count;
            natsMsgList_Destroy(&list);
        }
        clast = now_us();
        got += have;
        natsSubscription_Unsubscribe(sub);
        natsSubscription_Destroy(sub);
    }

    printf("{\"tool\":\"nats_js\",\"ok\":%s,\"message_size\":%d,\"partitions\":%d",
           b.failed == 0 && got == count ? "true" : "false", size, streams);
    print_side("produce", b.acked, b.acked * size, b.failed, produce_us, b.lat_us, nlat);
    print_side("consume", got, got_bytes, 0, clast - cstart, NULL, 0);
    printf("}\n");
    for (int i = 0; i < streams; i++) js_DeleteStream(js, names[i], NULL, NULL);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    free(payload);
    free(b.sent_us);
    free(b.lat_us);
    return b.failed == 0 && got == count ? 0 : 1;
}

/*
 * fuzz_etcd.c — libFuzzer target for what src/cluster reads from etcd: range, txn and
 * watch replies of the JSON gateway, the watch stream split at arbitrary chunk boundaries,
 * base64, and the metadata records (topic, partition state, broker, ACL) other brokers or an
 * operator with etcdctl may have written.
 *
 * The first byte picks the parser; for the stream, the second byte seeds the chunk sizes.
 * Checked: no crash or leak for any input; a parsed range has count kvs, each with a
 * non-empty key within KP_ETCD_KEY_BYTES_MAX; splitting the stream whole or in chunks yields
 * the same messages; an accepted base64 string re-encodes to itself; an accepted record
 * re-encodes and decodes to the same record.
 */
#include "cluster/etcd.h"
#include "cluster/meta_store.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_etcd: %s\n", what);
        abort();
    }
}

typedef struct msgs {
    uint64_t hash;
    int n;
} msgs_t;

static int on_msg(void *arg, const char *msg, size_t len)
{
    msgs_t *m = arg;
    for (size_t i = 0; i < len; i++) m->hash = (m->hash ^ (uint8_t)msg[i]) * 1099511628211ULL;
    m->hash = (m->hash ^ 0xff) * 1099511628211ULL;
    m->n++;
    char err[256];
    kp_etcd_watch_msg_t w;
    if (kp_etcd_parse_watch_msg(msg, len, &w, err, sizeof(err)) == 0) {
        for (int i = 0; i < w.nevents; i++)
            check(w.events[i].kv.key_len > 0 && w.events[i].kv.key_len <= KP_ETCD_KEY_BYTES_MAX,
                  "watch event key length");
        kp_etcd_watch_msg_free(&w);
    }
    return 0;
}

static int split(const char *data, size_t len, uint8_t seed, msgs_t *out)
{
    kp_etcd_splitter_t s;
    kp_etcd_splitter_init(&s);
    s.max = 4096;
    int rc = 0;
    size_t off = 0;
    uint32_t x = seed | 1;
    while (off < len && rc == 0) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        size_t n = seed ? 1 + x % 64 : len;
        if (n > len - off) n = len - off;
        rc = kp_etcd_splitter_feed(&s, data + off, n, on_msg, out);
        off += n;
    }
    kp_etcd_splitter_free(&s);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    uint8_t which = data[0], seed = data[1];
    const char *p = (const char *)data + 2;
    size_t len = size - 2;
    char err[256];
    switch (which % 8) {
    case 0: {
        kp_etcd_range_t r;
        if (kp_etcd_parse_range(p, len, &r, err, sizeof(err)) == 0) {
            for (int i = 0; i < r.count; i++)
                check(r.kvs[i].key_len > 0 && r.kvs[i].key_len <= KP_ETCD_KEY_BYTES_MAX &&
                          r.kvs[i].key[r.kvs[i].key_len] == 0 &&
                          r.kvs[i].value[r.kvs[i].value_len] == 0,
                      "range kv");
            kp_etcd_range_free(&r);
        } else {
            check(r.count == 0 && r.kvs == NULL, "failed range left results");
        }
        break;
    }
    case 1: {
        kp_etcd_txn_result_t t;
        if (kp_etcd_parse_txn(p, len, &t, err, sizeof(err)) == 0) kp_etcd_txn_result_free(&t);
        break;
    }
    case 2: {
        msgs_t whole = {0}, chunked = {0};
        int a = split(p, len, 0, &whole), b = split(p, len, seed ? seed : 1, &chunked);
        check(a == b, "chunking changed the outcome");
        check(whole.n == chunked.n && whole.hash == chunked.hash, "chunking changed the messages");
        break;
    }
    case 3: {
        char *out;
        size_t n;
        if (kp_etcd_b64_decode(p, len, &out, &n) == 0) {
            char *again = kp_etcd_b64_encode(out, n);
            check(strlen(again) == len && memcmp(again, p, len) == 0, "base64 not canonical");
            free(again);
            free(out);
        }
        break;
    }
    case 4: {
        kp_meta_topic_t t;
        if (kp_meta_topic_decode("t", p, len, &t, err, sizeof(err)) == 0) {
            char *enc = kp_meta_topic_encode(&t);
            kp_meta_topic_t t2;
            check(kp_meta_topic_decode("t", enc, strlen(enc), &t2, err, sizeof(err)) == 0,
                  "topic re-decode");
            check(t2.partitions == t.partitions && t2.nconfigs == t.nconfigs &&
                      memcmp(t2.replicas, t.replicas,
                             (size_t)t.partitions * t.replication_factor * sizeof(int32_t)) == 0,
                  "topic round trip");
            check(t2.nreassigning == t.nreassigning &&
                      (t.nreassigning == 0 ||
                       memcmp(t2.reassigning, t.reassigning,
                              (size_t)t.nreassigning * sizeof(*t.reassigning)) == 0),
                  "topic moves round trip");
            kp_meta_topic_free(&t2);
            free(enc);
            kp_meta_topic_free(&t);
        }
        break;
    }
    case 5: {
        kp_partition_state_t st, st2;
        if (kp_meta_pstate_decode(p, len, &st, err, sizeof(err)) == 0) {
            char *enc = kp_meta_pstate_encode(&st);
            check(kp_meta_pstate_decode(enc, strlen(enc), &st2, err, sizeof(err)) == 0 &&
                      memcmp(&st, &st2, sizeof(st)) == 0,
                  "partition state round trip");
            free(enc);
        }
        break;
    }
    case 6: {
        kp_meta_broker_t b;
        if (kp_meta_broker_decode(p, len, &b, err, sizeof(err)) == 0) {
            char *enc = kp_meta_broker_encode(&b);
            kp_meta_broker_t b2;
            check(kp_meta_broker_decode(enc, strlen(enc), &b2, err, sizeof(err)) == 0 &&
                      b2.id == b.id && b2.nendpoints == b.nendpoints &&
                      !b2.offline_dir == !b.offline_dir &&
                      (!b.offline_dir || !strcmp(b2.offline_dir, b.offline_dir)),
                  "broker round trip");
            kp_meta_broker_free(&b2);
            free(enc);
            kp_meta_broker_free(&b);
        }
        break;
    }
    case 7: {
        kp_acl_t a;
        if (kp_meta_acl_decode(p, len, &a, err, sizeof(err)) == 0) {
            char *enc = kp_meta_acl_encode(&a);
            kp_acl_t a2;
            check(kp_meta_acl_decode(enc, strlen(enc), &a2, err, sizeof(err)) == 0 &&
                      a2.operation == a.operation && strcmp(a2.principal, a.principal) == 0,
                  "ACL round trip");
            free(a2.resource_name), free(a2.principal), free(a2.host);
            free(a.resource_name), free(a.principal), free(a.host);
            free(enc);
        }
        break;
    }
    }
    return 0;
}

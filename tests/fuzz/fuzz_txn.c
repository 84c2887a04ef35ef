/*
 * fuzz_txn.c — libFuzzer target for the transaction record parsers, which read what storage
 * and the transaction coordinator find on disk: __transaction_state keys and values
 * (txn/txn_record), control batches (COMMIT/ABORT markers) and .txnindex files
 * (storage/txn_index). The first byte picks the parser, the rest is its input.
 *
 * Checked: no crash or overread for any input; a decoded value re-encodes (as v0) to bytes
 * that decode to the same fields; a parsed .txnindex re-encodes to the same bytes; a parsed
 * marker has a known type; borrowed strings lie inside the input.
 */
#include "storage/batch.h"
#include "storage/txn_index.h"
#include "txn/txn_record.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_txn: %s\n", what);
        abort();
    }
}

static void inside(kp_str_t s, const uint8_t *data, size_t size)
{
    if (s.len <= 0) return;
    const uint8_t *p = (const uint8_t *)s.ptr;
    check(p >= data && p + s.len <= data + size, "string outside the input");
}

static void value(const uint8_t *data, size_t size)
{
    kp_arena_t arena;
    kp_arena_init(&arena, 1u << 24);
    kp_txn_record_t a;
    if (kp_txn_record_decode(data, size, &arena, &a) == 0) {
        for (int32_t i = 0; i < a.ntopics; i++) inside(a.topics[i].topic, data, size);
        kp_buf_t b;
        kp_buf_init(&b);
        kp_txn_record_encode(&b, &a);
        kp_txn_record_t r;
        check(kp_txn_record_decode(b.data, b.len, &arena, &r) == 0, "re-encoded value refused");
        check(r.producer_id == a.producer_id && r.producer_epoch == a.producer_epoch &&
                  r.timeout_ms == a.timeout_ms && r.status == a.status &&
                  r.ntopics == (a.ntopics < 0 ? -1 : a.ntopics) &&
                  r.last_update_ms == a.last_update_ms && r.start_ms == a.start_ms,
              "value round trip differs");
        for (int32_t i = 0; i < a.ntopics; i++) {
            check(r.topics[i].npartitions == a.topics[i].npartitions, "partitions differ");
            check(r.topics[i].topic.len == a.topics[i].topic.len, "topic differs");
        }
        kp_buf_free(&b);
    }
    kp_arena_free(&arena);
}

static void txnindex(const uint8_t *data, size_t size)
{
    kp_aborted_txn_t *a;
    size_t n;
    if (kp_txnindex_parse(data, size, &a, &n) < 0) {
        check(a == NULL && n == 0, "error left entries behind");
        return;
    }
    kp_buf_t b;
    kp_buf_init(&b);
    for (size_t i = 0; i < n; i++) kp_txnindex_encode(&b, &a[i]);
    check(b.len == size && (size == 0 || memcmp(b.data, data, size) == 0),
          "txnindex round trip differs");
    kp_buf_free(&b);
    free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    uint8_t which = data[0] % 4;
    data++;
    size--;
    /* a private copy: ASan catches any read past its end */
    uint8_t *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    switch (which) {
    case 0: {
        kp_str_t id;
        if (kp_txn_record_key_decode(copy, size, &id) == 0) inside(id, copy, size);
        break;
    }
    case 1:
        value(copy, size);
        break;
    case 2: {
        int16_t type;
        int32_t cepoch;
        if (kp_control_batch_parse(copy, size, &type, &cepoch) == 0)
            check(type == KP_CONTROL_ABORT || type == KP_CONTROL_COMMIT, "unknown marker type");
        break;
    }
    default:
        txnindex(copy, size);
        break;
    }
    free(copy);
    return 0;
}

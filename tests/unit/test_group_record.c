/*
 * test_group_record.c — group/group_record: the group metadata value of __consumer_offsets.
 *
 * Checked: the encoding is Kafka's GroupMetadataValue version 3 byte for byte (a hand-built
 * expected value); a round trip keeps every field of every member (static and dynamic,
 * binary subscription and assignment, empty assignment); an Empty group writes null protocol
 * and leader; older versions 0..2 decode with their defaults; every truncation of a valid
 * value, a forged member count, a null where the schema has none and unknown versions are
 * rejected without reading past the end or allocating what the bytes do not justify.
 */
#include "unit.h"

#include "group/group_record.h"

/* ---- a tiny big-endian builder for expected bytes ---- */

static void b16(kp_buf_t *b, int16_t v)
{
    uint8_t t[2] = {(uint8_t)((uint16_t)v >> 8), (uint8_t)v};
    kp_buf_append(b, t, 2);
}
static void b32(kp_buf_t *b, int32_t v)
{
    uint8_t t[4];
    ut_st32(t, (uint32_t)v);
    kp_buf_append(b, t, 4);
}
static void b64(kp_buf_t *b, int64_t v)
{
    uint8_t t[8];
    ut_st64(t, (uint64_t)v);
    kp_buf_append(b, t, 8);
}
static void bstr(kp_buf_t *b, const char *s)
{
    if (!s) {
        b16(b, -1);
        return;
    }
    b16(b, (int16_t)strlen(s));
    kp_buf_append(b, s, strlen(s));
}
static void bbytes(kp_buf_t *b, const void *p, int32_t n)
{
    b32(b, n);
    if (n > 0) kp_buf_append(b, p, (size_t)n);
}

static kp_str_t blob(const void *p, int32_t n)
{
    return (kp_str_t){(const char *)p, n};
}

static void assert_str(kp_str_t got, kp_str_t want)
{
    assert_int_equal(got.len, want.len);
    if (want.len > 0) assert_memory_equal(got.ptr, want.ptr, (size_t)want.len);
}

static const uint8_t SUB1[] = {0, 1, 0, 0, 0, 1, 0, 2, 't', '1', 0xff, 0xff, 0xff, 0xff};
static const uint8_t ASG1[] = {0, 1, 0, 0, 0, 1, 0, 2, 't', '1', 0, 0, 0,
                               2, 0, 0, 0, 0, 0, 0, 0, 3,   0,   0, 0, 0};
static const uint8_t SUB2[] = {0, 0, 0, 0, 0, 0};

/* three members: a dynamic one, a static one, one the leader gave nothing */
static kp_group_record_member_t MEMBERS[] = {
    {KP_STR_LIT("c1-0a1b"),
     KP_STR_NULL,
     KP_STR_LIT("c1"),
     KP_STR_LIT("127.0.0.1"),
     300000,
     45000,
     {(const char *)SUB1, sizeof(SUB1)},
     {(const char *)ASG1, sizeof(ASG1)}},
    {KP_STR_LIT("inst-2-ffee"),
     KP_STR_LIT("inst-2"),
     KP_STR_LIT("c2"),
     KP_STR_LIT("10.1.2.3"),
     60000,
     10000,
     {(const char *)SUB2, sizeof(SUB2)},
     {"", 0}},
    {KP_STR_LIT("c3-99"),
     KP_STR_NULL,
     KP_STR_LIT(""),
     KP_STR_LIT("::1"),
     6000,
     6000,
     {"", 0},
     {"", 0}},
};

static kp_group_record_t sample(void)
{
    kp_group_record_t r;
    memset(&r, 0, sizeof(r));
    r.protocol_type = KP_STR_LIT("consumer");
    r.generation = 7;
    r.protocol = KP_STR_LIT("range");
    r.leader = KP_STR_LIT("c1-0a1b");
    r.current_state_timestamp_ms = 1764236400123;
    r.members = MEMBERS;
    r.nmembers = 3;
    return r;
}

static void test_encoding_is_kafkas_v3(void **state)
{
    kp_group_record_t r = sample();
    r.nmembers = 2;
    kp_buf_t got, want;
    kp_buf_init(&got);
    kp_buf_init(&want);
    kp_group_record_encode(&got, &r);
    /* GroupMetadataValue v3, field by field */
    b16(&want, 3);
    bstr(&want, "consumer");
    b32(&want, 7);
    bstr(&want, "range");
    bstr(&want, "c1-0a1b");
    b64(&want, 1764236400123);
    b32(&want, 2);
    bstr(&want, "c1-0a1b"); /* memberId */
    bstr(&want, NULL);      /* groupInstanceId */
    bstr(&want, "c1");      /* clientId */
    bstr(&want, "127.0.0.1");
    b32(&want, 300000); /* rebalanceTimeout */
    b32(&want, 45000);  /* sessionTimeout */
    bbytes(&want, SUB1, sizeof(SUB1));
    bbytes(&want, ASG1, sizeof(ASG1));
    bstr(&want, "inst-2-ffee");
    bstr(&want, "inst-2");
    bstr(&want, "c2");
    bstr(&want, "10.1.2.3");
    b32(&want, 60000);
    b32(&want, 10000);
    bbytes(&want, SUB2, sizeof(SUB2));
    bbytes(&want, "", 0);
    assert_int_equal(got.len, want.len);
    assert_memory_equal(got.data, want.data, want.len);
    /* the key: version 2, the group id */
    kp_buf_reset(&got);
    kp_buf_reset(&want);
    kp_group_record_key_encode(&got, "my-group");
    b16(&want, 2);
    bstr(&want, "my-group");
    assert_int_equal(got.len, want.len);
    assert_memory_equal(got.data, want.data, want.len);
    kp_buf_free(&got);
    kp_buf_free(&want);
}

static void test_round_trip_with_members(void **state)
{
    kp_group_record_t r = sample();
    kp_buf_t b;
    kp_buf_init(&b);
    kp_group_record_encode(&b, &r);
    kp_group_record_t d;
    assert_int_equal(kp_group_record_decode(b.data, b.len, &d), KP_GROUP_RECORD_OK);
    assert_int_equal(d.version, 3);
    assert_str(d.protocol_type, r.protocol_type);
    assert_int_equal(d.generation, 7);
    assert_str(d.protocol, r.protocol);
    assert_str(d.leader, r.leader);
    assert_int_equal(d.current_state_timestamp_ms, r.current_state_timestamp_ms);
    assert_int_equal(d.nmembers, 3);
    for (int i = 0; i < 3; i++) {
        const kp_group_record_member_t *w = &MEMBERS[i], *g = &d.members[i];
        assert_str(g->member_id, w->member_id);
        assert_str(g->group_instance_id, w->group_instance_id);
        assert_str(g->client_id, w->client_id);
        assert_str(g->client_host, w->client_host);
        assert_int_equal(g->rebalance_timeout_ms, w->rebalance_timeout_ms);
        assert_int_equal(g->session_timeout_ms, w->session_timeout_ms);
        assert_str(g->subscription, w->subscription);
        assert_str(g->assignment, w->assignment);
    }
    /* the strings borrow from the buffer: no copies */
    assert_true((const uint8_t *)d.members[0].member_id.ptr > b.data &&
                (const uint8_t *)d.members[0].member_id.ptr < b.data + b.len);
    kp_group_record_free(&d);
    assert_null(d.members);
    kp_buf_free(&b);
}

static void test_empty_group(void **state)
{
    kp_group_record_t r;
    memset(&r, 0, sizeof(r));
    r.protocol_type = KP_STR_LIT("consumer");
    r.generation = 12;
    r.protocol = KP_STR_NULL;
    r.leader = KP_STR_NULL;
    r.current_state_timestamp_ms = 5;
    kp_buf_t b;
    kp_buf_init(&b);
    kp_group_record_encode(&b, &r);
    /* 2 version + 10 type + 4 generation + 2 + 2 nulls + 8 timestamp + 4 count */
    assert_int_equal(b.len, 32);
    kp_group_record_t d;
    assert_int_equal(kp_group_record_decode(b.data, b.len, &d), KP_GROUP_RECORD_OK);
    assert_int_equal(d.generation, 12);
    assert_int_equal(d.protocol.len, -1);
    assert_int_equal(d.leader.len, -1);
    assert_int_equal(d.nmembers, 0);
    assert_null(d.members);
    kp_group_record_free(&d);
    kp_buf_free(&b);
}

/* Versions 0..2 as older Kafka wrote them: defaults for the fields they lack. */
static void test_older_versions(void **state)
{
    for (int16_t v = 0; v <= 2; v++) {
        kp_buf_t b;
        kp_buf_init(&b);
        b16(&b, v);
        bstr(&b, "consumer");
        b32(&b, 3);
        bstr(&b, "roundrobin");
        bstr(&b, "m1");
        if (v >= 2) b64(&b, 99);
        b32(&b, 1);
        bstr(&b, "m1");
        bstr(&b, "client");
        bstr(&b, "/10.0.0.1");
        if (v >= 1) b32(&b, 40000);
        b32(&b, 30000);
        bbytes(&b, SUB2, sizeof(SUB2));
        bbytes(&b, "x", 1);
        kp_group_record_t d;
        assert_int_equal(kp_group_record_decode(b.data, b.len, &d), KP_GROUP_RECORD_OK);
        assert_int_equal(d.version, v);
        assert_int_equal(d.current_state_timestamp_ms, v >= 2 ? 99 : -1);
        assert_int_equal(d.nmembers, 1);
        assert_int_equal(d.members[0].group_instance_id.len, -1);
        assert_int_equal(d.members[0].session_timeout_ms, 30000);
        assert_int_equal(d.members[0].rebalance_timeout_ms, v >= 1 ? 40000 : 30000);
        assert_str(d.members[0].assignment, blob("x", 1));
        kp_group_record_free(&d);
        kp_buf_free(&b);
    }
}

/* A torn value (any prefix of a valid one) is rejected, and nothing is read past its end:
 * each prefix is copied into a buffer of exactly its size, so ASan sees any overread. */
static void test_every_truncation_rejected(void **state)
{
    kp_group_record_t r = sample();
    kp_buf_t b;
    kp_buf_init(&b);
    kp_group_record_encode(&b, &r);
    for (size_t n = 0; n < b.len; n++) {
        uint8_t *p = malloc(n ? n : 1);
        memcpy(p, b.data, n);
        kp_group_record_t d;
        assert_int_equal(kp_group_record_decode(p, n, &d), KP_GROUP_RECORD_TRUNCATED);
        assert_null(d.members);
        assert_int_equal(d.nmembers, 0);
        free(p);
    }
    /* trailing bytes after the last member are ignored (Kafka's readers do the same) */
    kp_buf_append(&b, "\0\0\0", 3);
    kp_group_record_t d;
    assert_int_equal(kp_group_record_decode(b.data, b.len, &d), KP_GROUP_RECORD_OK);
    assert_int_equal(d.nmembers, 3);
    kp_group_record_free(&d);
    kp_buf_free(&b);
}

static void test_malformed_rejected(void **state)
{
    kp_group_record_t d;
    /* unknown versions: newer (flexible v4) and negative */
    int16_t versions[] = {4, 5, 100, -1, INT16_MIN};
    for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
        kp_buf_t b;
        kp_buf_init(&b);
        b16(&b, versions[i]);
        bstr(&b, "consumer");
        b32(&b, 1);
        assert_int_equal(kp_group_record_decode(b.data, b.len, &d),
                         KP_GROUP_RECORD_UNKNOWN_VERSION);
        assert_null(d.members);
        kp_buf_free(&b);
    }
    /* a member count the bytes cannot hold: refused before allocating */
    kp_buf_t b;
    kp_buf_init(&b);
    b16(&b, 3);
    bstr(&b, "consumer");
    b32(&b, 1);
    bstr(&b, "range");
    bstr(&b, "m");
    b64(&b, 0);
    b32(&b, 0x7fffffff);
    kp_buf_append(&b, "0123456789012345678901234567890123456789", 40);
    assert_int_equal(kp_group_record_decode(b.data, b.len, &d), KP_GROUP_RECORD_TRUNCATED);
    assert_null(d.members);
    /* a negative member count */
    kp_buf_reset(&b);
    b16(&b, 3);
    bstr(&b, "consumer");
    b32(&b, 1);
    bstr(&b, NULL);
    bstr(&b, NULL);
    b64(&b, 0);
    b32(&b, -1);
    assert_int_equal(kp_group_record_decode(b.data, b.len, &d), KP_GROUP_RECORD_TRUNCATED);
    /* null protocol type, which the schema does not allow */
    kp_buf_reset(&b);
    b16(&b, 3);
    bstr(&b, NULL);
    b32(&b, 1);
    bstr(&b, NULL);
    bstr(&b, NULL);
    b64(&b, 0);
    b32(&b, 0);
    assert_int_equal(kp_group_record_decode(b.data, b.len, &d), KP_GROUP_RECORD_TRUNCATED);
    /* a null member id, null subscription bytes */
    for (int which = 0; which < 2; which++) {
        kp_buf_reset(&b);
        b16(&b, 3);
        bstr(&b, "consumer");
        b32(&b, 1);
        bstr(&b, "range");
        bstr(&b, "m");
        b64(&b, 0);
        b32(&b, 1);
        bstr(&b, which == 0 ? NULL : "m");
        bstr(&b, NULL);
        bstr(&b, "c");
        bstr(&b, "h");
        b32(&b, 1);
        b32(&b, 1);
        if (which == 1)
            b32(&b, -1);
        else
            bbytes(&b, "", 0);
        bbytes(&b, "", 0);
        assert_int_equal(kp_group_record_decode(b.data, b.len, &d), KP_GROUP_RECORD_TRUNCATED);
        assert_null(d.members);
    }
    kp_buf_free(&b);
}

/* Random bytes after a valid header: never a crash, never an overread (ASan). */
static void test_random_values(void **state)
{
    ut_rand_t rnd;
    ut_rand_seed(&rnd, 0x6a09e667f3bcc908ull);
    kp_group_record_t r = sample();
    kp_buf_t good;
    kp_buf_init(&good);
    kp_group_record_encode(&good, &r);
    for (int i = 0; i < 5000; i++) {
        size_t n = (size_t)ut_rand_below(&rnd, good.len + 8) + 1;
        uint8_t *p = malloc(n);
        memcpy(p, good.data, n < good.len ? n : good.len);
        if (n > good.len) ut_rand_fill(&rnd, p + good.len, n - good.len);
        /* flip a few bytes */
        for (int k = 0; k < 3; k++) p[ut_rand_below(&rnd, n)] = (uint8_t)ut_rand_u64(&rnd);
        kp_group_record_t d;
        kp_group_record_status_t st = kp_group_record_decode(p, n, &d);
        if (st == KP_GROUP_RECORD_OK) {
            for (int32_t m = 0; m < d.nmembers; m++) {
                const kp_group_record_member_t *x = &d.members[m];
                assert_true(x->member_id.len >= 0 && x->assignment.len >= 0);
                assert_true((const uint8_t *)x->assignment.ptr + x->assignment.len <= p + n);
            }
        }
        kp_group_record_free(&d);
        free(p);
    }
    kp_buf_free(&good);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encoding_is_kafkas_v3),
        cmocka_unit_test(test_round_trip_with_members),
        cmocka_unit_test(test_empty_group),
        cmocka_unit_test(test_older_versions),
        cmocka_unit_test(test_every_truncation_rejected),
        cmocka_unit_test(test_malformed_rejected),
        cmocka_unit_test(test_random_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

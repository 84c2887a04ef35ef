/*
 * group_record.c — encode and decode the group metadata record (layout in group_record.h).
 *
 * Encoding writes version 3, the last non-flexible version, which every Kafka since 2.3
 * reads. Decoding accepts versions 0..3 with checked reads: a torn or foreign value is
 * reported, never read past its end.
 */
#include "group/group_record.h"

#include <stdlib.h>
#include <string.h>

/* Smallest encoded member per value version: with the remaining length this bounds the
 * members array a forged count can make decode allocate. */
static size_t member_min_bytes(int16_t version)
{
    /* member_id, client_id, client_host (int16 lengths), session timeout, two int32 byte
     * lengths; plus rebalance timeout (v1+) and group_instance_id (v3+) */
    size_t n = 2 + 2 + 2 + 4 + 4 + 4;
    if (version >= 1) n += 4;
    if (version >= 3) n += 2;
    return n;
}

/* Every string written here arrived in an int16-length wire field, so it fits; the clamp
 * only keeps a broken caller from writing a length that disagrees with the bytes. */
static void put_string(kp_buf_t *b, kp_str_t s, int nullable)
{
    if (s.len < 0) {
        kp_buf_put_i16(b, nullable ? -1 : 0);
        return;
    }
    int32_t n = s.len > INT16_MAX ? INT16_MAX : s.len;
    kp_buf_put_i16(b, (int16_t)n);
    if (n) kp_buf_append(b, s.ptr, (size_t)n);
}

static void put_bytes(kp_buf_t *b, kp_str_t s)
{
    int32_t n = s.len > 0 && s.ptr ? s.len : 0;
    kp_buf_put_i32(b, n);
    if (n) kp_buf_append(b, s.ptr, (size_t)n);
}

void kp_group_record_key_encode(kp_buf_t *b, const char *group_id)
{
    kp_buf_put_i16(b, KP_GROUP_RECORD_KEY_VERSION);
    put_string(b, kp_str_c(group_id), 0);
}

void kp_group_record_encode(kp_buf_t *b, const kp_group_record_t *rec)
{
    kp_buf_put_i16(b, KP_GROUP_RECORD_VALUE_VERSION);
    put_string(b, rec->protocol_type, 0);
    kp_buf_put_i32(b, rec->generation);
    put_string(b, rec->protocol, 1);
    put_string(b, rec->leader, 1);
    kp_buf_put_i64(b, rec->current_state_timestamp_ms);
    kp_buf_put_i32(b, rec->nmembers > 0 ? rec->nmembers : 0);
    for (int32_t i = 0; i < rec->nmembers; i++) {
        const kp_group_record_member_t *m = &rec->members[i];
        put_string(b, m->member_id, 0);
        put_string(b, m->group_instance_id, 1);
        put_string(b, m->client_id, 0);
        put_string(b, m->client_host, 0);
        kp_buf_put_i32(b, m->rebalance_timeout_ms);
        kp_buf_put_i32(b, m->session_timeout_ms);
        put_bytes(b, m->subscription);
        put_bytes(b, m->assignment);
    }
}

static void decode_member(kp_rd_t *r, int16_t version, kp_group_record_member_t *m)
{
    m->member_id = kp_rd_string(r, 0, 0);
    m->group_instance_id = version >= 3 ? kp_rd_string(r, 0, 1) : KP_STR_NULL;
    m->client_id = kp_rd_string(r, 0, 0);
    m->client_host = kp_rd_string(r, 0, 0);
    m->rebalance_timeout_ms = version >= 1 ? kp_rd_i32(r) : -1;
    m->session_timeout_ms = kp_rd_i32(r);
    if (version < 1) m->rebalance_timeout_ms = m->session_timeout_ms;
    m->subscription = kp_rd_bytes(r, 0, 0);
    m->assignment = kp_rd_bytes(r, 0, 0);
}

kp_group_record_status_t kp_group_record_decode(const uint8_t *p, size_t len,
                                                kp_group_record_t *rec)
{
    memset(rec, 0, sizeof(*rec));
    kp_rd_t r;
    kp_rd_init(&r, p, len);
    int16_t version = kp_rd_i16(&r);
    if (r.err) return KP_GROUP_RECORD_TRUNCATED;
    if (version < 0 || version > KP_GROUP_RECORD_VALUE_VERSION)
        return KP_GROUP_RECORD_UNKNOWN_VERSION;
    rec->version = version;
    rec->protocol_type = kp_rd_string(&r, 0, 0);
    rec->generation = kp_rd_i32(&r);
    rec->protocol = kp_rd_string(&r, 0, 1);
    rec->leader = kp_rd_string(&r, 0, 1);
    rec->current_state_timestamp_ms = version >= 2 ? kp_rd_i64(&r) : -1;
    int32_t n = kp_rd_array_len(&r, 0, 0, member_min_bytes(version));
    if (r.err) goto err_parse;
    rec->members = n > 0 ? kp_xcalloc((size_t)n, sizeof(*rec->members)) : NULL;
    for (int32_t i = 0; i < n && !r.err; i++) decode_member(&r, version, &rec->members[i]);
    if (r.err) goto err_parse;
    rec->nmembers = n;
    return KP_GROUP_RECORD_OK;
err_parse:
    free(rec->members);
    memset(rec, 0, sizeof(*rec));
    return KP_GROUP_RECORD_TRUNCATED;
}

void kp_group_record_free(kp_group_record_t *rec)
{
    free(rec->members);
    rec->members = NULL;
    rec->nmembers = 0;
}

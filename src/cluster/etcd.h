/*
 * etcd.h — a small etcd v3 client over etcd's JSON gateway (libcurl + jansson), for the
 * cluster metadata of replicated pools (docs/replication.md).
 *
 * What it speaks (etcd 3.4, checked against Debian's etcd-server): /v3/kv/range, put,
 * deleterange, txn (compare-and-swap); /v3/lease/grant, keepalive, revoke; /v3/election/
 * campaign, leader, resign, proclaim; /v3/watch as a streamed response of JSON objects.
 * Keys and values travel base64-encoded; 64-bit numbers travel as JSON strings (proto3).
 *
 * Endpoints and failover: `endpoints` is a comma-separated list of http:// URLs. A call
 * starts at the endpoint that answered last and moves to the next one only when the request
 * certainly did not reach etcd (connection refused/reset before a reply, DNS, or etcd's
 * "unavailable" answer from a member without a leader). A call that timed out after being
 * sent returns KP_ETCD_ETIMEDOUT: its outcome is unknown (a put may or may not have been
 * applied), so it is never silently repeated elsewhere; the next call starts at the next
 * endpoint.
 *
 * Errors: every call returns 0 or a negative KP_ETCD_E* and writes one line into err (never
 * the value bytes; etcd's own message is quoted, cut to printable ASCII). A malformed,
 * oversized or hostile reply is KP_ETCD_EPROTO, never a crash (tests/fuzz/fuzz_etcd.c).
 *
 * Thread safety: a kp_etcd_t may be used by any number of threads at once; each call takes
 * its own curl handle from a small pool. Blocking calls (campaign, a call to an endpoint that
 * does not answer) block only their caller, for at most their timeout. Results (kvs, ranges)
 * are owned by the caller and freed with the matching *_free.
 *
 * Watches run on a thread of their own (kp_etcd_watch_start) and call back on that thread;
 * see the watch section below for the resume and compaction rules.
 */
#ifndef KP_ETCD_H
#define KP_ETCD_H

#include <stddef.h>
#include <stdint.h>

/* Endpoints in one client: more is a configuration mistake, not a cluster. */
#define KP_ETCD_ENDPOINTS_MAX 16
/* Largest reply body accepted (a range over all topics of a big pool fits easily): a
 * misbehaving server cannot make a broker allocate without bound. */
#define KP_ETCD_REPLY_BYTES_MAX (64u << 20)
/* Largest single message of a watch stream; a larger one is a protocol error (the stream is
 * dropped and the watch re-reads). */
#define KP_ETCD_WATCH_MSG_BYTES_MAX (16u << 20)
/* Key length we send or accept (etcd's own request limit is 1.5 MiB; our keys are short
 * paths, so a longer one is a bug or a hostile reply). */
#define KP_ETCD_KEY_BYTES_MAX 4096
/* Default per-call timeout and connect timeout. */
#define KP_ETCD_TIMEOUT_MS_DEFAULT 5000
#define KP_ETCD_CONNECT_TIMEOUT_MS 2000
/* Watch reconnect backoff: doubles from MIN to MAX while etcd stays away. */
#define KP_ETCD_WATCH_BACKOFF_MIN_MS 100
#define KP_ETCD_WATCH_BACKOFF_MAX_MS 2000
/* Watch liveness: a watch stream is mostly silent, and a network partition from etcd does
 * not close it. TCP keepalive probes it after IDLE_S without traffic, every INTVL_S, and
 * gives up after CNT unanswered probes: a cut stream is dropped (and reconnected) about
 * IDLE_S + CNT * INTVL_S after its last traffic, instead of 23 s with the kernel's probe count
 * (and the calls' keepalive settings). */
#define KP_ETCD_WATCH_KEEPIDLE_S  1
#define KP_ETCD_WATCH_KEEPINTVL_S 1
#define KP_ETCD_WATCH_KEEPCNT     3

enum {
    KP_ETCD_OK = 0,
    KP_ETCD_EUNAVAILABLE = -1, /* no endpoint could be reached */
    KP_ETCD_EPROTO = -2,       /* the reply was not what the API promises */
    KP_ETCD_ESERVER = -3,      /* etcd refused the request (its message in err) */
    KP_ETCD_ECONFLICT = -4,    /* a compare of a txn / CAS failed */
    KP_ETCD_ENOTFOUND = -5,    /* no such key, lease (expired) or election leader */
    KP_ETCD_ECOMPACTED = -6,   /* the revision asked for was compacted away */
    KP_ETCD_ETIMEDOUT = -7,    /* no answer in time: the outcome is unknown */
    KP_ETCD_EINVAL = -8,       /* bad arguments (no request was sent) */
};

/* A short name for an error code ("unavailable", "conflict", ...). */
const char *kp_etcd_strerror(int rc);

typedef struct kp_etcd kp_etcd_t;

/* One key-value. key and value are owned, NUL-terminated (the lengths exclude the NUL, and
 * a value may hold NULs of its own). */
typedef struct kp_etcd_kv {
    char *key;
    size_t key_len;
    char *value;
    size_t value_len;
    int64_t create_revision;
    int64_t mod_revision;
    int64_t version;
    int64_t lease;
} kp_etcd_kv_t;

void kp_etcd_kv_free(kp_etcd_kv_t *kv);

/* The kvs of a range (or of the range operations of a txn), and the store's revision the
 * read was made at. */
typedef struct kp_etcd_range {
    kp_etcd_kv_t *kvs;
    int count;
    int more;         /* a limit cut the result */
    int64_t revision; /* header.revision */
} kp_etcd_range_t;

void kp_etcd_range_free(kp_etcd_range_t *r);

/* Opens a client for endpoints ("http://127.0.0.1:2379,http://10.0.0.2:2379"). No request
 * is made. timeout_ms <= 0 means KP_ETCD_TIMEOUT_MS_DEFAULT. NULL with err on a bad list
 * (empty, not http://, too many). */
kp_etcd_t *kp_etcd_open(const char *endpoints, int timeout_ms, char *err, size_t errlen);
/* Every watch on the client must have been stopped. */
void kp_etcd_close(kp_etcd_t *e);
/* The endpoint calls start at now (for messages). */
const char *kp_etcd_endpoint(kp_etcd_t *e);

/* ---- kv ---- */

/* Reads key (range_end NULL), a range [key, range_end), or — with prefix set — every key
 * starting with key. limit 0: no limit. An absent key is count 0, not an error. */
int kp_etcd_range(kp_etcd_t *e, const char *key, const char *range_end, int prefix, int64_t limit,
                  kp_etcd_range_t *out, char *err, size_t errlen);
/* One key into out; KP_ETCD_ENOTFOUND when absent. */
int kp_etcd_get(kp_etcd_t *e, const char *key, kp_etcd_kv_t *out, char *err, size_t errlen);
/* Puts key = value (lease 0: none). *revision (may be NULL) gets the new store revision. */
int kp_etcd_put(kp_etcd_t *e, const char *key, const void *value, size_t value_len, int64_t lease,
                int64_t *revision, char *err, size_t errlen);
/* Deletes key (or every key under it with prefix set); *deleted (may be NULL) the count. */
int kp_etcd_delete(kp_etcd_t *e, const char *key, int prefix, int64_t *deleted, char *err,
                   size_t errlen);

/* ---- transactions ---- */

enum { KP_ETCD_CMP_VERSION, KP_ETCD_CMP_CREATE, KP_ETCD_CMP_MOD, KP_ETCD_CMP_VALUE };
enum { KP_ETCD_CMP_EQUAL, KP_ETCD_CMP_GREATER, KP_ETCD_CMP_LESS, KP_ETCD_CMP_NOT_EQUAL };

/* One compare: target (version / create_revision / mod_revision, against number; or value,
 * against value). A key that does not exist has version, create and mod revision 0. */
typedef struct kp_etcd_cmp {
    const char *key;
    int target;
    int result;
    int64_t number;
    const void *value;
    size_t value_len;
} kp_etcd_cmp_t;

enum { KP_ETCD_OP_RANGE, KP_ETCD_OP_PUT, KP_ETCD_OP_DELETE };

typedef struct kp_etcd_op {
    int type;
    const char *key;
    int prefix; /* RANGE / DELETE: every key under key */
    const void *value;
    size_t value_len;
    int64_t lease;
} kp_etcd_op_t;

typedef struct kp_etcd_txn_result {
    int succeeded;
    int64_t revision;
    kp_etcd_range_t range; /* the kvs of every RANGE op of the branch taken, in order */
} kp_etcd_txn_result_t;

void kp_etcd_txn_result_free(kp_etcd_txn_result_t *r);

/* If every compare holds, runs the success ops, else the failure ops — atomically. Returns
 * 0 either way (see res->succeeded); an error only when the txn could not be run. */
int kp_etcd_txn(kp_etcd_t *e, const kp_etcd_cmp_t *cmp, int ncmp, const kp_etcd_op_t *success,
                int nsuccess, const kp_etcd_op_t *failure, int nfailure, kp_etcd_txn_result_t *res,
                char *err, size_t errlen);

/* Compare-and-swap: puts key = value only if the key's mod_revision is expected_mod (0: the
 * key must not exist). 0 with *new_rev (may be NULL) set, or KP_ETCD_ECONFLICT with the
 * key's present state in *current (may be NULL; key NULL in it when the key is absent). */
int kp_etcd_cas(kp_etcd_t *e, const char *key, const void *value, size_t value_len,
                int64_t expected_mod, int64_t lease, int64_t *new_rev, kp_etcd_kv_t *current,
                char *err, size_t errlen);
/* Deletes key only if its mod_revision is expected_mod; KP_ETCD_ECONFLICT otherwise. */
int kp_etcd_cas_delete(kp_etcd_t *e, const char *key, int64_t expected_mod, char *err,
                       size_t errlen);

/* ---- leases ---- */

/* Grants a lease of ttl_s seconds; *id the lease, *granted (may be NULL) etcd's TTL. */
int kp_etcd_lease_grant(kp_etcd_t *e, int64_t ttl_s, int64_t *id, int64_t *granted, char *err,
                        size_t errlen);
/* Renews a lease once; *ttl (may be NULL) the TTL it now has. KP_ETCD_ENOTFOUND when the
 * lease has expired or was revoked (its keys are gone: register again). */
int kp_etcd_lease_keepalive(kp_etcd_t *e, int64_t id, int64_t *ttl, char *err, size_t errlen);
/* Revokes a lease: its keys are deleted at once. KP_ETCD_ENOTFOUND if already gone. */
int kp_etcd_lease_revoke(kp_etcd_t *e, int64_t id, char *err, size_t errlen);

/* ---- election (etcd's v3election service) ---- */

/* Who holds an election, as campaign returns it; needed to resign or proclaim. Owned. */
typedef struct kp_etcd_leader_key {
    char *name;
    size_t name_len;
    char *key;
    size_t key_len;
    int64_t rev;
    int64_t lease;
} kp_etcd_leader_key_t;

void kp_etcd_leader_key_free(kp_etcd_leader_key_t *lk);

/* Campaigns in election `name` with a key under `lease` holding value. Blocks until this
 * campaigner leads (0, *out filled) or timeout_ms passes (KP_ETCD_ETIMEDOUT: etcd then
 * withdraws the candidacy, and the caller may simply campaign again; timeout_ms <= 0: the
 * client's timeout). The lease is what
 * ends a leadership: when it expires or is revoked, the next campaigner wins. */
int kp_etcd_campaign(kp_etcd_t *e, const char *name, int64_t lease, const void *value,
                     size_t value_len, int timeout_ms, kp_etcd_leader_key_t *out, char *err,
                     size_t errlen);
/* The current leader's key and value; KP_ETCD_ENOTFOUND when nobody leads. */
int kp_etcd_election_leader(kp_etcd_t *e, const char *name, kp_etcd_kv_t *out, char *err,
                            size_t errlen);
int kp_etcd_resign(kp_etcd_t *e, const kp_etcd_leader_key_t *lk, char *err, size_t errlen);
/* Changes the leader's value without an election (only the leader can). */
int kp_etcd_proclaim(kp_etcd_t *e, const kp_etcd_leader_key_t *lk, const void *value,
                     size_t value_len, char *err, size_t errlen);

/* ---- watch ----
 *
 * A watch follows every key under a prefix on a thread of its own and calls fn on that
 * thread (fn must not call kp_etcd_watch_stop on its own watch; it may call the client).
 *
 *   - start_revision 0: it first reads the prefix and delivers KP_ETCD_WATCH_RESET with
 *     every key as a PUT, then follows changes after that read (list-then-watch);
 *     start_revision N > 0: changes from revision N on;
 *   - when the stream breaks (etcd restarted, endpoint down) it reconnects with backoff,
 *     trying every endpoint, and resumes at the revision after the last one delivered, so
 *     nothing is missed or delivered twice;
 *   - when that revision was compacted away (etcd answers with compact_revision), it reads
 *     the prefix again and delivers KP_ETCD_WATCH_RESET: the consumer replaces its whole
 *     view with the events given (keys it knew but not in the reset were deleted);
 *   - a stream cut silently (a network partition) is noticed by TCP keepalive within about
 *     4 s (KP_ETCD_WATCH_KEEP*), and a member that lost its cluster's leader cancels the
 *     watch (the Grpc-Metadata-hasleader header): either way the watch reconnects.
 */
enum { KP_ETCD_EV_PUT, KP_ETCD_EV_DELETE };
enum { KP_ETCD_WATCH_EVENTS, KP_ETCD_WATCH_RESET };

typedef struct kp_etcd_event {
    int type;
    kp_etcd_kv_t kv; /* on DELETE only key and mod_revision are set */
} kp_etcd_event_t;

/* kind: KP_ETCD_WATCH_EVENTS or _RESET; revision: the store revision the events bring the
 * consumer to. The events are valid only during the call. */
typedef void (*kp_etcd_watch_fn)(void *arg, int kind, const kp_etcd_event_t *events, int n,
                                 int64_t revision);

typedef struct kp_etcd_watch kp_etcd_watch_t;

kp_etcd_watch_t *kp_etcd_watch_start(kp_etcd_t *e, const char *prefix, int64_t start_revision,
                                     kp_etcd_watch_fn fn, void *arg, char *err, size_t errlen);
/* Stops the watch and joins its thread: within about a second, or the client's timeout when
 * a re-read of the prefix is under way. */
void kp_etcd_watch_stop(kp_etcd_watch_t *w);

typedef struct kp_etcd_watch_stats {
    int64_t reconnects; /* streams opened (or attempted) after the first */
    int64_t resets;     /* KP_ETCD_WATCH_RESET deliveries (the first read included) */
    int64_t events;     /* events delivered */
    int64_t next_revision;
} kp_etcd_watch_stats_t;

void kp_etcd_watch_stats(kp_etcd_watch_t *w, kp_etcd_watch_stats_t *out);

/* ---- reply parsing (exposed for the unit tests and tests/fuzz/fuzz_etcd.c) ---- */

/* Splits a watch stream into whole JSON objects: bytes go in as they arrive, in any chunks;
 * each complete top-level object is handed to fn. Whitespace between objects is skipped;
 * anything else, or an object beyond KP_ETCD_WATCH_MSG_BYTES_MAX, is an error (the stream
 * must be dropped). */
typedef struct kp_etcd_splitter {
    char *buf;
    size_t len, cap;
    int depth, in_string, escape;
    size_t max; /* 0: KP_ETCD_WATCH_MSG_BYTES_MAX */
} kp_etcd_splitter_t;

void kp_etcd_splitter_init(kp_etcd_splitter_t *s);
void kp_etcd_splitter_free(kp_etcd_splitter_t *s);
/* 0, or the first nonzero value fn returned, or KP_ETCD_EPROTO on bad framing. */
int kp_etcd_splitter_feed(kp_etcd_splitter_t *s, const char *data, size_t len,
                          int (*fn)(void *arg, const char *msg, size_t len), void *arg);

/* One decoded watch message. */
typedef struct kp_etcd_watch_msg {
    int created;
    int canceled;
    int64_t compact_revision;
    int64_t revision; /* header.revision */
    kp_etcd_event_t *events;
    int nevents;
} kp_etcd_watch_msg_t;

void kp_etcd_watch_msg_free(kp_etcd_watch_msg_t *m);
/* Parses one watch stream object ({"result":{...}} or {"error":...}). 0, KP_ETCD_EPROTO, or
 * the mapped error of an {"error":...} object. */
int kp_etcd_parse_watch_msg(const char *msg, size_t len, kp_etcd_watch_msg_t *out, char *err,
                            size_t errlen);
/* Parses a /v3/kv/range reply body. */
int kp_etcd_parse_range(const char *body, size_t len, kp_etcd_range_t *out, char *err,
                        size_t errlen);
/* Parses a /v3/kv/txn reply body. */
int kp_etcd_parse_txn(const char *body, size_t len, kp_etcd_txn_result_t *out, char *err,
                      size_t errlen);

/* Strict base64 (RFC 4648, padded). decode: malloc'd, NUL-terminated; -1 when invalid. */
char *kp_etcd_b64_encode(const void *data, size_t len);
int kp_etcd_b64_decode(const char *in, size_t len, char **out, size_t *outlen);

#endif

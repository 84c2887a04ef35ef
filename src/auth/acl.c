/*
 * acl.c — the ACL store and authorizer (see acl.h).
 *
 * Index: for each resource type, a map literal-name → list and a map prefix → list, plus a
 * count per prefix length so a lookup probes only lengths that exist.
 *
 * Journal (meta/acls.journal): records of
 *     u32 length | u32 crc32c(payload) | payload = u8 op (1 add, 2 remove) | u8 type |
 *     u8 pattern | u8 operation | u8 permission | str name | str principal | str host
 * (str = u16 length + bytes). Replayed on open up to the first torn or corrupt record, which
 * is cut off. When the journal holds more than 4x the live records it is rewritten as a
 * snapshot (temp file, fsync, rename).
 */
#include "auth/acl.h"

#include "core/buf.h"
#include "core/crc32c.h"
#include "core/hmap.h"
#include "core/logging.h"
#include "core/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JOURNAL_RECORD_MAX (3 * 65536 + 64)
#define PREFIX_LEN_MAX     65535

typedef struct acl_list {
    kp_acl_t **items;
    int n, cap;
} acl_list_t;

typedef struct prefix_len {
    uint32_t len;
    uint32_t count;
} prefix_len_t;

struct kp_authorizer {
    pthread_rwlock_t lock;
    int enabled;
    int allow_if_no_acl;
    char **super_users;
    int nsuper;
    kp_hmap_t literal[KP_RES_TYPES];
    kp_hmap_t prefixed[KP_RES_TYPES];
    prefix_len_t *plens[KP_RES_TYPES];
    int nplens[KP_RES_TYPES];
    size_t count;
    size_t count_by_type[KP_RES_TYPES];
    char *journal_path;
    int journal_fd;
    int64_t journal_size;
    size_t journal_records;
};

/* ---- bindings ---- */

static kp_acl_t *acl_dup(const kp_acl_t *src)
{
    kp_acl_t *a = kp_xmalloc(sizeof(*a));
    *a = *src;
    a->resource_name = kp_xstrdup(src->resource_name);
    a->principal = kp_xstrdup(src->principal);
    a->host = kp_xstrdup(src->host);
    return a;
}

static void acl_free(kp_acl_t *a)
{
    if (!a) return;
    free(a->resource_name);
    free(a->principal);
    free(a->host);
    free(a);
}

static int acl_equal(const kp_acl_t *x, const kp_acl_t *y)
{
    return x->resource_type == y->resource_type && x->pattern_type == y->pattern_type &&
           x->operation == y->operation && x->permission == y->permission &&
           !strcmp(x->resource_name, y->resource_name) && !strcmp(x->principal, y->principal) &&
           !strcmp(x->host, y->host);
}

int kp_acl_validate(const kp_acl_t *acl, char *err, size_t errlen)
{
    if (acl->resource_type <= KP_RES_ANY || acl->resource_type >= KP_RES_TYPES) {
        snprintf(err, errlen, "Invalid resource type %d", acl->resource_type);
        return -1;
    }
    if (acl->pattern_type != KP_PAT_LITERAL && acl->pattern_type != KP_PAT_PREFIXED) {
        snprintf(err, errlen, "Invalid resource pattern type %d: must be LITERAL or PREFIXED",
                 acl->pattern_type);
        return -1;
    }
    if (acl->operation <= KP_OP_ANY || acl->operation > KP_OP_DESCRIBE_TOKENS) {
        snprintf(err, errlen, "Invalid operation %d", acl->operation);
        return -1;
    }
    if (acl->permission != KP_PERM_ALLOW && acl->permission != KP_PERM_DENY) {
        snprintf(err, errlen, "Invalid permission type %d: must be ALLOW or DENY", acl->permission);
        return -1;
    }
    if (!acl->resource_name || !*acl->resource_name) {
        snprintf(err, errlen, "Resource name must not be empty");
        return -1;
    }
    if (strlen(acl->resource_name) > PREFIX_LEN_MAX || !acl->principal || !acl->host ||
        strlen(acl->principal) > 4096 || strlen(acl->host) > 1024) {
        snprintf(err, errlen, "Resource name, principal or host too long");
        return -1;
    }
    const char *colon = strchr(acl->principal, ':');
    if (!colon || colon == acl->principal || !colon[1]) {
        snprintf(err, errlen, "Invalid principal '%s': expected <type>:<name>, e.g. User:alice",
                 acl->principal);
        return -1;
    }
    if (!*acl->host) {
        snprintf(err, errlen, "Host must not be empty (use * for any host)");
        return -1;
    }
    if (acl->resource_type == KP_RES_CLUSTER &&
        (acl->pattern_type != KP_PAT_LITERAL || strcmp(acl->resource_name, KP_CLUSTER_RESOURCE))) {
        snprintf(err, errlen, "The only valid name for the CLUSTER resource is %s",
                 KP_CLUSTER_RESOURCE);
        return -1;
    }
    return 0;
}

/* ---- index ---- */

static kp_hmap_t *map_for(kp_authorizer_t *a, const kp_acl_t *acl)
{
    return acl->pattern_type == KP_PAT_PREFIXED ? &a->prefixed[acl->resource_type]
                                                : &a->literal[acl->resource_type];
}

static void plen_adjust(kp_authorizer_t *a, int type, uint32_t len, int delta)
{
    for (int i = 0; i < a->nplens[type]; i++) {
        prefix_len_t *p = &a->plens[type][i];
        if (p->len != len) continue;
        p->count = (uint32_t)((int64_t)p->count + delta);
        if (p->count == 0) a->plens[type][i] = a->plens[type][--a->nplens[type]];
        return;
    }
    if (delta <= 0) return;
    a->plens[type] =
        kp_xrealloc(a->plens[type], (size_t)(a->nplens[type] + 1) * sizeof(prefix_len_t));
    a->plens[type][a->nplens[type]++] = (prefix_len_t){len, (uint32_t)delta};
}

/* 1 when inserted, 0 when an equal binding exists. @locks: write lock. */
static int index_add(kp_authorizer_t *a, const kp_acl_t *acl)
{
    kp_hmap_t *m = map_for(a, acl);
    size_t nl = strlen(acl->resource_name);
    acl_list_t *l = kp_hmap_get(m, acl->resource_name, nl);
    if (!l) {
        l = kp_xcalloc(1, sizeof(*l));
        kp_hmap_put(m, acl->resource_name, nl, l);
    }
    for (int i = 0; i < l->n; i++)
        if (acl_equal(l->items[i], acl)) return 0;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 4;
        l->items = kp_xrealloc(l->items, (size_t)l->cap * sizeof(*l->items));
    }
    l->items[l->n++] = acl_dup(acl);
    if (acl->pattern_type == KP_PAT_PREFIXED) plen_adjust(a, acl->resource_type, (uint32_t)nl, 1);
    a->count++;
    a->count_by_type[acl->resource_type]++;
    return 1;
}

/* Removes one binding equal to acl; 1 when found. @locks: write lock. */
static int index_remove(kp_authorizer_t *a, const kp_acl_t *acl)
{
    kp_hmap_t *m = map_for(a, acl);
    size_t nl = strlen(acl->resource_name);
    acl_list_t *l = kp_hmap_get(m, acl->resource_name, nl);
    if (!l) return 0;
    for (int i = 0; i < l->n; i++) {
        if (!acl_equal(l->items[i], acl)) continue;
        acl_free(l->items[i]);
        l->items[i] = l->items[--l->n];
        if (acl->pattern_type == KP_PAT_PREFIXED)
            plen_adjust(a, acl->resource_type, (uint32_t)nl, -1);
        a->count--;
        a->count_by_type[acl->resource_type]--;
        if (l->n == 0) {
            kp_hmap_del(m, acl->resource_name, nl);
            free(l->items);
            free(l);
        }
        return 1;
    }
    return 0;
}

/* ---- journal ---- */

static void put_u32(kp_buf_t *b, uint32_t v)
{
    uint8_t t[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    kp_buf_append(b, t, 4);
}

static void put_str(kp_buf_t *b, const char *s)
{
    size_t n = strlen(s);
    uint8_t t[2] = {(uint8_t)(n >> 8), (uint8_t)n};
    kp_buf_append(b, t, 2);
    kp_buf_append(b, s, n);
}

static void encode_record(kp_buf_t *b, int op, const kp_acl_t *acl)
{
    size_t start = b->len;
    put_u32(b, 0);
    put_u32(b, 0);
    uint8_t head[5] = {(uint8_t)op, (uint8_t)acl->resource_type, (uint8_t)acl->pattern_type,
                       (uint8_t)acl->operation, (uint8_t)acl->permission};
    kp_buf_append(b, head, 5);
    put_str(b, acl->resource_name);
    put_str(b, acl->principal);
    put_str(b, acl->host);
    size_t plen = b->len - start - 8;
    uint8_t *p = b->data + start;
    uint32_t crc = kp_crc32c(0, p + 8, plen);
    uint32_t l = (uint32_t)plen;
    p[0] = (uint8_t)(l >> 24);
    p[1] = (uint8_t)(l >> 16);
    p[2] = (uint8_t)(l >> 8);
    p[3] = (uint8_t)l;
    p[4] = (uint8_t)(crc >> 24);
    p[5] = (uint8_t)(crc >> 16);
    p[6] = (uint8_t)(crc >> 8);
    p[7] = (uint8_t)crc;
}

static uint32_t ld32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static char *get_str(const uint8_t **p, const uint8_t *end)
{
    if (end - *p < 2) return NULL;
    size_t n = ((size_t)(*p)[0] << 8) | (*p)[1];
    *p += 2;
    if ((size_t)(end - *p) < n) return NULL;
    char *s = kp_xstrndup((const char *)*p, n);
    *p += n;
    return s;
}

/* Replays the journal; returns the valid length (the rest is cut off by the caller). */
static int64_t journal_replay(kp_authorizer_t *a, const uint8_t *data, size_t len)
{
    size_t at = 0;
    while (len - at >= 8) {
        uint32_t plen = ld32(data + at), crc = ld32(data + at + 4);
        if (plen < 11 || plen > JOURNAL_RECORD_MAX || plen > len - at - 8) break;
        const uint8_t *p = data + at + 8, *end = p + plen;
        if (kp_crc32c(0, p, plen) != crc) break;
        kp_acl_t acl = {.resource_type = (int8_t)p[1],
                        .pattern_type = (int8_t)p[2],
                        .operation = (int8_t)p[3],
                        .permission = (int8_t)p[4]};
        int op = p[0];
        p += 5;
        acl.resource_name = get_str(&p, end);
        acl.principal = get_str(&p, end);
        acl.host = get_str(&p, end);
        char err[256];
        int ok = acl.resource_name && acl.principal && acl.host && p == end &&
                 kp_acl_validate(&acl, err, sizeof(err)) == 0 && (op == 1 || op == 2);
        if (ok) {
            if (op == 1)
                index_add(a, &acl);
            else
                index_remove(a, &acl);
        }
        free(acl.resource_name);
        free(acl.principal);
        free(acl.host);
        if (!ok) break;
        at += 8 + plen;
        a->journal_records++;
    }
    return (int64_t)at;
}

static int journal_append(kp_authorizer_t *a, const kp_buf_t *records, size_t nrecords)
{
    if (a->journal_fd < 0) return 0; /* in memory only */
    if (kp_fs_pwrite_all(a->journal_fd, records->data, records->len, a->journal_size) < 0 ||
        kp_fs->fdatasync(a->journal_fd) < 0) {
        kp_error("acl", "cannot write %s: %s", a->journal_path, strerror(errno));
        kp_fs->ftruncate(a->journal_fd, a->journal_size);
        return -1;
    }
    a->journal_size += (int64_t)records->len;
    a->journal_records += nrecords;
    return 0;
}

static void each_acl(kp_authorizer_t *a, void (*fn)(const kp_acl_t *, void *), void *arg)
{
    for (int t = 0; t < KP_RES_TYPES; t++) {
        kp_hmap_t *maps[2] = {&a->literal[t], &a->prefixed[t]};
        for (int k = 0; k < 2; k++) {
            size_t it = 0;
            void *v;
            while (kp_hmap_next(maps[k], &it, NULL, NULL, &v)) {
                acl_list_t *l = v;
                for (int i = 0; i < l->n; i++) fn(l->items[i], arg);
            }
        }
    }
}

static void snap_one(const kp_acl_t *acl, void *arg)
{
    encode_record(arg, 1, acl);
}

/* Rewrites the journal as one add per live binding. @locks: write lock. */
static void journal_compact(kp_authorizer_t *a)
{
    kp_buf_t b;
    kp_buf_init(&b);
    each_acl(a, snap_one, &b);
    if (kp_fs_write_atomic(a->journal_path, b.data ? (const void *)b.data : "", b.len) == 0) {
        int fd = kp_fs->open(a->journal_path, O_RDWR, 0);
        if (fd >= 0) {
            kp_fs->close(a->journal_fd);
            a->journal_fd = fd;
            a->journal_size = (int64_t)b.len;
            a->journal_records = a->count;
        }
    } else {
        kp_warn("acl", "could not compact %s: %s", a->journal_path, strerror(errno));
    }
    kp_buf_free(&b);
}

/* ---- open / free ---- */

static void parse_super_users(kp_authorizer_t *a, const char *s)
{
    if (!s) return;
    char *copy = kp_xstrdup(s), *save = NULL;
    for (char *tok = strtok_r(copy, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
        while (*tok == ' ') tok++;
        size_t n = strlen(tok);
        while (n && tok[n - 1] == ' ') tok[--n] = 0;
        if (!n) continue;
        a->super_users = kp_xrealloc(a->super_users, (size_t)(a->nsuper + 1) * sizeof(char *));
        a->super_users[a->nsuper++] = kp_xstrdup(tok);
    }
    free(copy);
}

kp_authorizer_t *kp_authorizer_open(const kp_props_t *props, int enabled_default,
                                    const char *meta_dir, char *err, size_t errlen)
{
    kp_authorizer_t *a = kp_xcalloc(1, sizeof(*a));
    pthread_rwlock_init(&a->lock, NULL);
    a->journal_fd = -1;
    for (int t = 0; t < KP_RES_TYPES; t++) {
        kp_hmap_init(&a->literal[t]);
        kp_hmap_init(&a->prefixed[t]);
    }
    if (kp_props_get_bool(props, "authorizer.enabled", enabled_default, &a->enabled, err, errlen) <
            0 ||
        kp_props_get_bool(props, "allow.everyone.if.no.acl.found", 0, &a->allow_if_no_acl, err,
                          errlen) < 0) {
        kp_authorizer_free(a);
        return NULL;
    }
    parse_super_users(a, kp_props_get(props, "super.users"));
    if (!meta_dir) return a;
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/acls.journal", meta_dir);
    a->journal_path = kp_xstrdup(path);
    a->journal_fd = kp_fs->open(path, O_RDWR | O_CREAT, 0600);
    if (a->journal_fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        kp_authorizer_free(a);
        return NULL;
    }
    uint8_t *data = NULL;
    size_t len = 0;
    if (kp_fs_read_all(path, 1u << 30, &data, &len) < 0) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        kp_authorizer_free(a);
        return NULL;
    }
    int64_t valid = journal_replay(a, data, len);
    free(data);
    if ((size_t)valid < len) {
        kp_warn("acl", "%s: cut %zu bytes of a torn or corrupt tail", path, len - (size_t)valid);
        if (kp_fs->ftruncate(a->journal_fd, valid) < 0 || kp_fs->fsync(a->journal_fd) < 0) {
            snprintf(err, errlen, "cannot repair %s: %s", path, strerror(errno));
            kp_authorizer_free(a);
            return NULL;
        }
    }
    a->journal_size = valid;
    kp_info("acl", "authorizer %s: %zu ACLs, %d super users, allow.everyone.if.no.acl.found=%s",
            a->enabled ? "enabled" : "disabled", a->count, a->nsuper,
            a->allow_if_no_acl ? "true" : "false");
    return a;
}

static void free_lists(kp_hmap_t *m)
{
    size_t it = 0;
    void *v;
    while (kp_hmap_next(m, &it, NULL, NULL, &v)) {
        acl_list_t *l = v;
        for (int i = 0; i < l->n; i++) acl_free(l->items[i]);
        free(l->items);
        free(l);
    }
    kp_hmap_free(m);
}

void kp_authorizer_free(kp_authorizer_t *a)
{
    if (!a) return;
    for (int t = 0; t < KP_RES_TYPES; t++) {
        free_lists(&a->literal[t]);
        free_lists(&a->prefixed[t]);
        free(a->plens[t]);
    }
    for (int i = 0; i < a->nsuper; i++) free(a->super_users[i]);
    free(a->super_users);
    if (a->journal_fd >= 0) kp_fs->close(a->journal_fd);
    free(a->journal_path);
    pthread_rwlock_destroy(&a->lock);
    free(a);
}

int kp_authorizer_enabled(const kp_authorizer_t *a)
{
    return a && a->enabled;
}

size_t kp_acl_count(kp_authorizer_t *a)
{
    pthread_rwlock_rdlock(&a->lock);
    size_t n = a->count;
    pthread_rwlock_unlock(&a->lock);
    return n;
}

/* ---- decisions ---- */

static int principal_matches(const kp_acl_t *acl, const char *principal)
{
    return !strcmp(acl->principal, principal) || !strcmp(acl->principal, "User:*");
}

static int host_matches(const kp_acl_t *acl, const char *host)
{
    return !strcmp(acl->host, "*") || !strcmp(acl->host, host);
}

static int op_implied(int acl_op, int op)
{
    if (acl_op == KP_OP_ALL || acl_op == op) return 1;
    if (op == KP_OP_DESCRIBE)
        return acl_op == KP_OP_READ || acl_op == KP_OP_WRITE || acl_op == KP_OP_DELETE ||
               acl_op == KP_OP_ALTER;
    if (op == KP_OP_DESCRIBE_CONFIGS) return acl_op == KP_OP_ALTER_CONFIGS;
    return 0;
}

static int is_super(const kp_authorizer_t *a, const char *principal)
{
    for (int i = 0; i < a->nsuper; i++)
        if (!strcmp(a->super_users[i], principal)) return 1;
    return 0;
}

typedef struct verdict {
    int any; /* some ACL applies to the resource */
    int deny;
    int allow;
} verdict_t;

static void judge(const acl_list_t *l, const char *principal, const char *host, int op,
                  verdict_t *v)
{
    if (!l) return;
    for (int i = 0; i < l->n; i++) {
        const kp_acl_t *acl = l->items[i];
        v->any = 1;
        if (!principal_matches(acl, principal) || !host_matches(acl, host)) continue;
        if (acl->permission == KP_PERM_DENY) {
            if (acl->operation == op || acl->operation == KP_OP_ALL) v->deny = 1;
        } else if (op_implied(acl->operation, op)) {
            v->allow = 1;
        }
    }
}

int kp_authorize(kp_authorizer_t *a, const char *principal, const char *host, int op, int type,
                 const char *name, size_t namelen)
{
    if (!a || !a->enabled) return 1;
    if (is_super(a, principal)) return 1;
    if (type <= KP_RES_ANY || type >= KP_RES_TYPES) return 0;
    if (type == KP_RES_CLUSTER) {
        name = KP_CLUSTER_RESOURCE;
        namelen = strlen(name);
    }
    verdict_t v = {0, 0, 0};
    pthread_rwlock_rdlock(&a->lock);
    judge(kp_hmap_get(&a->literal[type], name, namelen), principal, host, op, &v);
    judge(kp_hmap_get(&a->literal[type], "*", 1), principal, host, op, &v);
    for (int i = 0; i < a->nplens[type]; i++) {
        uint32_t pl = a->plens[type][i].len;
        if (pl <= namelen)
            judge(kp_hmap_get(&a->prefixed[type], name, pl), principal, host, op, &v);
    }
    pthread_rwlock_unlock(&a->lock);
    if (v.deny) return 0;
    if (v.allow) return 1;
    return !v.any && a->allow_if_no_acl;
}

/* An ALLOW or DENY (perm) of exactly op or ALL for the principal and host: the matching of
 * Kafka's authorizeByResourceType (no implied operations). */
static int list_has(const acl_list_t *l, const char *principal, const char *host, int op, int perm)
{
    if (!l) return 0;
    for (int i = 0; i < l->n; i++) {
        const kp_acl_t *acl = l->items[i];
        if (acl->permission == perm && (acl->operation == op || acl->operation == KP_OP_ALL) &&
            principal_matches(acl, principal) && host_matches(acl, host))
            return 1;
    }
    return 0;
}

/* 1 when a DENY on a prefix of name (the whole name included) applies. @locks: read lock. */
static int denied_by_prefix(kp_authorizer_t *a, int type, const char *name, size_t len,
                            const char *principal, const char *host, int op)
{
    for (int i = 0; i < a->nplens[type]; i++) {
        uint32_t pl = a->plens[type][i].len;
        if (pl <= len &&
            list_has(kp_hmap_get(&a->prefixed[type], name, pl), principal, host, op, KP_PERM_DENY))
            return 1;
    }
    return 0;
}

int kp_authorize_any(kp_authorizer_t *a, const char *principal, const char *host, int op, int type)
{
    if (!a || !a->enabled) return 1;
    if (type <= KP_RES_ANY || type >= KP_RES_TYPES) return 0;
    /* As Kafka, first the decision for an arbitrary name: super users, and
     * allow.everyone.if.no.acl.found when no ACL applies to such a name. */
    if (kp_authorize(a, principal, host, op, type, "hardcode", 8)) return 1;
    int allowed = 0;
    pthread_rwlock_rdlock(&a->lock);
    /* a DENY on every resource of the type (literal "*") rules it out, an ALLOW grants it */
    const acl_list_t *wild = kp_hmap_get(&a->literal[type], "*", 1);
    if (list_has(wild, principal, host, op, KP_PERM_DENY)) goto done;
    if (list_has(wild, principal, host, op, KP_PERM_ALLOW)) {
        allowed = 1;
        goto done;
    }
    /* an allowed literal counts unless that literal or a prefix of it is denied; an allowed
     * prefix unless a prefix of it (itself included) is denied */
    kp_hmap_t *maps[2] = {&a->literal[type], &a->prefixed[type]};
    for (int k = 0; k < 2 && !allowed; k++) {
        size_t it = 0, klen;
        const char *key;
        void *vl;
        while (!allowed && kp_hmap_next(maps[k], &it, &key, &klen, &vl)) {
            if (!list_has(vl, principal, host, op, KP_PERM_ALLOW)) continue;
            if (k == 0 && list_has(vl, principal, host, op, KP_PERM_DENY)) continue;
            allowed = !denied_by_prefix(a, type, key, klen, principal, host, op);
        }
    }
done:
    pthread_rwlock_unlock(&a->lock);
    return allowed;
}

/* ---- filters and changes ---- */

int kp_acl_filter_matches(const kp_acl_filter_t *f, const kp_acl_t *acl)
{
    if (f->resource_type != KP_RES_ANY && f->resource_type != acl->resource_type) return 0;
    if (f->operation != KP_OP_ANY && f->operation != acl->operation) return 0;
    if (f->permission != KP_PERM_ANY && f->permission != acl->permission) return 0;
    if (f->principal && strcmp(f->principal, acl->principal) != 0) return 0;
    if (f->host && strcmp(f->host, acl->host) != 0) return 0;
    const char *n = f->resource_name;
    switch (f->pattern_type) {
    case KP_PAT_ANY:
        return !n || !strcmp(n, acl->resource_name);
    case KP_PAT_MATCH:
        if (!n) return 1;
        if (acl->pattern_type == KP_PAT_LITERAL)
            return !strcmp(n, acl->resource_name) || !strcmp(acl->resource_name, "*");
        return !strncmp(n, acl->resource_name, strlen(acl->resource_name));
    case KP_PAT_LITERAL:
    case KP_PAT_PREFIXED:
        return f->pattern_type == acl->pattern_type && (!n || !strcmp(n, acl->resource_name));
    default:
        return 0;
    }
}

int kp_acl_add(kp_authorizer_t *a, const kp_acl_t *acls, int n)
{
    kp_buf_t b;
    kp_buf_init(&b);
    pthread_rwlock_wrlock(&a->lock);
    for (int i = 0; i < n; i++) encode_record(&b, 1, &acls[i]);
    int rc = journal_append(a, &b, (size_t)n);
    if (rc == 0)
        for (int i = 0; i < n; i++) index_add(a, &acls[i]);
    if (rc == 0 && a->journal_records > 4 * a->count + 1024) journal_compact(a);
    pthread_rwlock_unlock(&a->lock);
    kp_buf_free(&b);
    return rc;
}

typedef struct collect {
    const kp_acl_filter_t *f;
    kp_acl_t **items;
    int n, cap;
} collect_t;

static void collect_one(const kp_acl_t *acl, void *arg)
{
    collect_t *c = arg;
    if (!kp_acl_filter_matches(c->f, acl)) return;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->items = kp_xrealloc(c->items, (size_t)c->cap * sizeof(*c->items));
    }
    c->items[c->n++] = (kp_acl_t *)acl;
}

int kp_acl_remove(kp_authorizer_t *a, const kp_acl_filter_t *f,
                  void (*cb)(const kp_acl_t *acl, void *arg), void *arg)
{
    collect_t c = {f, NULL, 0, 0};
    pthread_rwlock_wrlock(&a->lock);
    each_acl(a, collect_one, &c);
    kp_buf_t b;
    kp_buf_init(&b);
    for (int i = 0; i < c.n; i++) encode_record(&b, 2, c.items[i]);
    int rc = c.n ? journal_append(a, &b, (size_t)c.n) : 0;
    if (rc == 0) {
        for (int i = 0; i < c.n; i++) {
            kp_acl_t *copy = acl_dup(c.items[i]);
            if (cb) cb(copy, arg);
            index_remove(a, copy);
            acl_free(copy);
        }
        if (a->journal_records > 4 * a->count + 1024) journal_compact(a);
    }
    pthread_rwlock_unlock(&a->lock);
    kp_buf_free(&b);
    free(c.items);
    return rc < 0 ? -1 : c.n;
}

typedef struct list_ctx {
    const kp_acl_filter_t *f;
    void (*cb)(const kp_acl_t *, void *);
    void *arg;
} list_ctx_t;

static void list_one(const kp_acl_t *acl, void *arg)
{
    list_ctx_t *l = arg;
    if (kp_acl_filter_matches(l->f, acl)) l->cb(acl, l->arg);
}

void kp_acl_list(kp_authorizer_t *a, const kp_acl_filter_t *f,
                 void (*cb)(const kp_acl_t *acl, void *arg), void *arg)
{
    list_ctx_t l = {f, cb, arg};
    pthread_rwlock_rdlock(&a->lock);
    each_acl(a, list_one, &l);
    pthread_rwlock_unlock(&a->lock);
}

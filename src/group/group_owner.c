/*
 * group_owner.c — which team owns each consumer group, and the access check every group
 * handler makes (group_access).
 *
 * Ownership (docs/groups.md "Ownership"): group ids are chosen freely, so the first team that
 * uses a group (JoinGroup or OffsetCommit) owns it; every other team's request about it is
 * refused with GROUP_AUTHORIZATION_FAILED, on top of the ACLs. A principal's team is its name
 * (after "User:") passed through group.ownership.team.rules (the syntax of
 * ssl.principal.mapping.rules); the default rule reads the namespace part of kpool's service
 * user names; a principal no rule matches is a team of its own. A principal allowed ALTER on
 * the cluster (the pool's admin) is never refused and never claims. group.ownership=shared
 * turns all of this off (every team may use every group its ACLs allow).
 *
 * The owners are kept apart from the group state, in <log.dir>/meta/group_owners.journal,
 * because ownership outlives the group: a group whose offsets expired is still its team's
 * (only a DeleteGroups releases it). Journal records:
 *     u32 length | u32 crc32c(payload) | payload = u8 op (1 claim, 2 release) |
 *     str group | str team           (str = u16 length + bytes; release: empty team)
 * replayed on start up to the first torn or corrupt record, which is cut off; rewritten as a
 * snapshot (temp file, fsync, rename) when it holds 4x more records than owners. A claim is
 * fsynced before the request that made it is answered.
 *
 * @locality: coordinator thread (open: the starting thread, before the coordinator runs).
 */
#include "group/group_int.h"

#include "auth/acl.h"
#include "auth/principal.h"
#include "core/crc32c.h"
#include "core/logging.h"
#include "core/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A group id is a Kafka string (int16 length); a team at most a principal. The bound keeps a
 * corrupt length from making replay read far. */
#define OWNER_RECORD_MAX (1 + 2 + 32767 + 2 + KP_PRINCIPAL_LEN_MAX)
#define OWNER_CLAIM      1
#define OWNER_RELEASE    2

/* ---- journal ---- */

static void put_u32(kp_buf_t *b, uint32_t v)
{
    uint8_t t[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    kp_buf_append(b, t, 4);
}

static uint32_t ld32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void put_str(kp_buf_t *b, const char *s, size_t n)
{
    uint8_t t[2] = {(uint8_t)(n >> 8), (uint8_t)n};
    kp_buf_append(b, t, 2);
    kp_buf_append(b, s, n);
}

static void encode_record(kp_buf_t *b, int op, const char *group, size_t glen, const char *team)
{
    size_t start = b->len;
    put_u32(b, 0);
    put_u32(b, 0);
    uint8_t o = (uint8_t)op;
    kp_buf_append(b, &o, 1);
    put_str(b, group, glen);
    put_str(b, team ? team : "", team ? strlen(team) : 0);
    size_t plen = b->len - start - 8;
    uint8_t *p = b->data + start;
    uint32_t crc = kp_crc32c(0, p + 8, plen);
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)((uint32_t)plen >> (24 - 8 * i));
        p[4 + i] = (uint8_t)(crc >> (24 - 8 * i));
    }
}

/* Reads a str; -1 when it runs past end. */
static int get_str(const uint8_t **p, const uint8_t *end, const char **s, size_t *n)
{
    if (end - *p < 2) return -1;
    *n = ((size_t)(*p)[0] << 8) | (*p)[1];
    *p += 2;
    if ((size_t)(end - *p) < *n) return -1;
    *s = (const char *)*p;
    *p += *n;
    return 0;
}

static void owners_apply(kp_coordinator_t *c, int op, const char *group, size_t glen,
                         const char *team, size_t tlen)
{
    if (op == OWNER_CLAIM)
        free(kp_hmap_put(&c->owners, group, glen, kp_xstrndup(team, tlen)));
    else
        free(kp_hmap_del(&c->owners, group, glen));
}

/* Replays data; returns the valid length (the rest is cut off by the caller). */
static size_t journal_replay(kp_coordinator_t *c, const uint8_t *data, size_t len)
{
    size_t at = 0;
    while (len - at >= 8) {
        uint32_t plen = ld32(data + at), crc = ld32(data + at + 4);
        if (plen < 5 || plen > OWNER_RECORD_MAX || plen > len - at - 8) break;
        const uint8_t *p = data + at + 8, *end = p + plen;
        if (kp_crc32c(0, p, plen) != crc) break;
        int op = *p++;
        const char *group, *team;
        size_t glen, tlen;
        if ((op != OWNER_CLAIM && op != OWNER_RELEASE) || get_str(&p, end, &group, &glen) < 0 ||
            get_str(&p, end, &team, &tlen) < 0 || p != end || glen == 0 ||
            (op == OWNER_CLAIM && tlen == 0))
            break;
        owners_apply(c, op, group, glen, team, tlen);
        at += 8 + plen;
        c->owners_records++;
    }
    return at;
}

/* Rewrites the journal as one claim per owner. */
static void journal_compact(kp_coordinator_t *c)
{
    kp_buf_t b;
    kp_buf_init(&b);
    size_t it = 0;
    const char *k;
    size_t kl;
    void *v;
    while (kp_hmap_next(&c->owners, &it, &k, &kl, &v)) encode_record(&b, OWNER_CLAIM, k, kl, v);
    if (kp_fs_write_atomic(c->owners_path, b.data ? (const void *)b.data : "", b.len) == 0) {
        int fd = kp_fs->open(c->owners_path, O_RDWR, 0);
        if (fd >= 0) {
            kp_fs->close(c->owners_fd);
            c->owners_fd = fd;
            c->owners_size = (int64_t)b.len;
            c->owners_records = kp_hmap_count(&c->owners);
        }
    } else {
        kp_warn("group", "could not compact %s: %s", c->owners_path, strerror(errno));
    }
    kp_buf_free(&b);
}

/* Records a claim (team) or a release (team NULL) durably, then applies it. 0 or -1 (the
 * write failed: nothing changed). */
static int owners_write(kp_coordinator_t *c, kp_str_t group, const char *team)
{
    int op = team ? OWNER_CLAIM : OWNER_RELEASE;
    if (c->owners_fd >= 0) {
        kp_buf_t b;
        kp_buf_init(&b);
        encode_record(&b, op, group.ptr, (size_t)group.len, team);
        int rc = kp_fs_pwrite_all(c->owners_fd, b.data, b.len, c->owners_size);
        if (rc == 0) rc = kp_fs->fdatasync(c->owners_fd);
        if (rc < 0) {
            kp_error("group", "cannot write %s: %s", c->owners_path, strerror(errno));
            kp_fs->ftruncate(c->owners_fd, c->owners_size); /* else cut on the next open */
            kp_buf_free(&b);
            return -1;
        }
        c->owners_size += (int64_t)b.len;
        c->owners_records++;
        kp_buf_free(&b);
    }
    owners_apply(c, op, group.ptr, (size_t)group.len, team, team ? strlen(team) : 0);
    if (c->owners_fd >= 0 && c->owners_records > 4 * kp_hmap_count(&c->owners) + 1024)
        journal_compact(c);
    return 0;
}

int group_owners_open(kp_coordinator_t *c, const char *meta_dir, char *err, size_t errlen)
{
    kp_hmap_init(&c->owners);
    c->owners_fd = -1;
    c->team_rules = kp_principal_rules_parse(c->cfg.team_rules, err, errlen);
    if (!c->team_rules) return -1;
    if (!meta_dir) return 0;
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/group_owners.journal", meta_dir);
    c->owners_path = kp_xstrdup(path);
    c->owners_fd = kp_fs->open(path, O_RDWR | O_CREAT, 0600);
    if (c->owners_fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    uint8_t *data = NULL;
    size_t len = 0;
    if (kp_fs_read_all(path, 1u << 30, &data, &len) < 0) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    size_t valid = journal_replay(c, data, len);
    free(data);
    if (valid < len) {
        kp_warn("group", "%s: cut %zu bytes of a torn or corrupt tail", path, len - valid);
        if (kp_fs->ftruncate(c->owners_fd, (off_t)valid) < 0 || kp_fs->fsync(c->owners_fd) < 0) {
            snprintf(err, errlen, "cannot repair %s: %s", path, strerror(errno));
            return -1;
        }
    }
    c->owners_size = (int64_t)valid;
    return 0;
}

void group_owners_close(kp_coordinator_t *c)
{
    size_t it = 0;
    void *v;
    while (kp_hmap_next(&c->owners, &it, NULL, NULL, &v)) free(v);
    kp_hmap_free(&c->owners);
    if (c->owners_fd >= 0) kp_fs->close(c->owners_fd);
    c->owners_fd = -1;
    free(c->owners_path);
    c->owners_path = NULL;
    kp_principal_rules_free(c->team_rules);
    c->team_rules = NULL;
}

/* ---- teams ---- */

/* The team of a principal ("User:<name>"): the rules' result for <name>, or the principal
 * itself when no rule matches. */
static void team_of(const kp_coordinator_t *c, const char *principal, char *out, size_t n)
{
    const char *name = !strncmp(principal, "User:", 5) ? principal + 5 : principal;
    if (kp_principal_rules_apply(c->team_rules, name, out, n) == 0 && out[0]) return;
    snprintf(out, n, "%s", principal);
}

/* 1 when ownership is checked for this call: group.ownership=team, ACLs in force, and the
 * caller does not administer the cluster (the handler's decision: with no authorizer it
 * allows everything, so ALTER on the cluster too). */
static int ownership_applies(kp_coordinator_t *c, kp_group_call_t *req)
{
    if (c->cfg.ownership_shared) return 0;
    return !req->may(req, KP_OP_ALTER, KP_RES_CLUSTER, KP_STR_LIT(KP_CLUSTER_RESOURCE));
}

int16_t group_access(kp_coordinator_t *c, kp_group_call_t *req, kp_str_t group_id, int op,
                     int claim)
{
    if (!req->may(req, op, KP_RES_GROUP, group_id)) return KERR_GROUP_AUTHORIZATION_FAILED;
    /* a pool: the group is this coordinator's only while this broker leads its partition */
    if (group_id.len > 0 &&
        !coord_serves(c, offsets_partition_for(c, group_id.ptr, (size_t)group_id.len)))
        return KERR_NOT_COORDINATOR;
    if (group_id.len <= 0 || !ownership_applies(c, req)) return 0;
    char team[KP_PRINCIPAL_LEN_MAX];
    team_of(c, req->principal, team, sizeof(team));
    const char *owner = kp_hmap_get(&c->owners, group_id.ptr, (size_t)group_id.len);
    if (owner) return strcmp(owner, team) ? KERR_GROUP_AUTHORIZATION_FAILED : 0;
    if (!claim) return 0;
    if (owners_write(c, group_id, team) < 0) return KERR_COORDINATOR_NOT_AVAILABLE;
    kp_info("group", "group %.*s is now owned by team %s (its first user)", group_id.len,
            group_id.ptr, team);
    return 0;
}

int group_visible(kp_coordinator_t *c, kp_group_call_t *req, const char *group_id)
{
    if (!ownership_applies(c, req)) return 1;
    const char *owner = kp_hmap_get(&c->owners, group_id, strlen(group_id));
    if (!owner) return 1;
    char team[KP_PRINCIPAL_LEN_MAX];
    team_of(c, req->principal, team, sizeof(team));
    return !strcmp(owner, team);
}

int group_owner_release(kp_coordinator_t *c, kp_str_t group_id)
{
    if (group_id.len <= 0 || !kp_hmap_get(&c->owners, group_id.ptr, (size_t)group_id.len)) return 0;
    if (owners_write(c, group_id, NULL) < 0) return -1;
    kp_info("group", "group %.*s released: no team owns it now", group_id.len, group_id.ptr);
    return 1;
}

/*
 * acl.h — Kafka's ACL authorizer: bindings, authorization decisions and filters.
 *
 * Semantics (Kafka's AclAuthorizer / StandardAuthorizer):
 *   - an ACL binds (resource type, pattern type LITERAL|PREFIXED, name) to
 *     (principal, host, operation, ALLOW|DENY); "User:*" and host "*" are wildcards, and a
 *     LITERAL name "*" matches every resource of its type;
 *   - super.users are always allowed; with no ACL at all on a resource,
 *     allow.everyone.if.no.acl.found decides (default false);
 *   - DENY wins over ALLOW; ALLOW of READ, WRITE, DELETE or ALTER implies DESCRIBE, and
 *     ALTER_CONFIGS implies DESCRIBE_CONFIGS; ALL matches every operation.
 * Lookups go through per-type hash maps of literal names and of prefixes (probing only the
 * prefix lengths that exist), never a scan of all ACLs, so 100k ACLs cost what 10 do.
 *
 * Durability: every change is appended to <log.dir>/meta/acls.journal and fsynced before
 * the call returns; the journal is compacted into a snapshot when mostly dead.
 * Thread-safe (rwlock): a change is visible to the very next authorization on any thread.
 */
#ifndef KP_ACL_H
#define KP_ACL_H

#include "core/props.h"

#include <stddef.h>
#include <stdint.h>

enum { /* ResourceType */
       KP_RES_UNKNOWN = 0,
       KP_RES_ANY = 1,
       KP_RES_TOPIC = 2,
       KP_RES_GROUP = 3,
       KP_RES_CLUSTER = 4,
       KP_RES_TRANSACTIONAL_ID = 5,
       KP_RES_DELEGATION_TOKEN = 6,
       KP_RES_USER = 7,
       KP_RES_TYPES = 8,
};

enum { /* PatternType */
       KP_PAT_UNKNOWN = 0,
       KP_PAT_ANY = 1,
       KP_PAT_MATCH = 2,
       KP_PAT_LITERAL = 3,
       KP_PAT_PREFIXED = 4,
};

enum { /* AclOperation */
       KP_OP_UNKNOWN = 0,
       KP_OP_ANY = 1,
       KP_OP_ALL = 2,
       KP_OP_READ = 3,
       KP_OP_WRITE = 4,
       KP_OP_CREATE = 5,
       KP_OP_DELETE = 6,
       KP_OP_ALTER = 7,
       KP_OP_DESCRIBE = 8,
       KP_OP_CLUSTER_ACTION = 9,
       KP_OP_DESCRIBE_CONFIGS = 10,
       KP_OP_ALTER_CONFIGS = 11,
       KP_OP_IDEMPOTENT_WRITE = 12,
       KP_OP_CREATE_TOKENS = 13,
       KP_OP_DESCRIBE_TOKENS = 14,
};

enum { /* AclPermissionType */
       KP_PERM_UNKNOWN = 0,
       KP_PERM_ANY = 1,
       KP_PERM_DENY = 2,
       KP_PERM_ALLOW = 3,
};

#define KP_CLUSTER_RESOURCE "kafka-cluster"

typedef struct kp_acl {
    int8_t resource_type;
    int8_t pattern_type;
    int8_t operation;
    int8_t permission;
    char *resource_name;
    char *principal;
    char *host;
} kp_acl_t;

/* A filter; NULL strings match anything (Kafka's AclBindingFilter). */
typedef struct kp_acl_filter {
    int8_t resource_type;
    int8_t pattern_type;
    int8_t operation;
    int8_t permission;
    const char *resource_name;
    const char *principal;
    const char *host;
} kp_acl_filter_t;

typedef struct kp_authorizer kp_authorizer_t;

/* Reads authorizer.enabled, super.users, allow.everyone.if.no.acl.found and loads the
 * journal under meta_dir (NULL: in memory only, for tests). */
kp_authorizer_t *kp_authorizer_open(const kp_props_t *props, int enabled_default,
                                    const char *meta_dir, char *err, size_t errlen);
void kp_authorizer_free(kp_authorizer_t *a);
int kp_authorizer_enabled(const kp_authorizer_t *a);

/* 1 allowed, 0 denied. name may be NULL for CLUSTER. */
int kp_authorize(kp_authorizer_t *a, const char *principal, const char *host, int op,
                 int resource_type, const char *name, size_t namelen);
/* 1 when the principal may do op on at least one resource of the type (Kafka's
 * authorizeByResourceType, used for InitProducerId: WRITE on any topic). */
int kp_authorize_any(kp_authorizer_t *a, const char *principal, const char *host, int op,
                     int resource_type);

/* Validates a binding for CreateAcls; -1 with a message. */
int kp_acl_validate(const kp_acl_t *acl, char *err, size_t errlen);
/* Adds bindings (already validated) durably. Existing ones are left as they are. 0 or -1
 * (journal write failed: nothing changed). */
int kp_acl_add(kp_authorizer_t *a, const kp_acl_t *acls, int n);
/* Removes every binding matching filter; cb (may be NULL) sees each removed one before it
 * is freed. Returns the number removed, or -1 on a journal failure. */
int kp_acl_remove(kp_authorizer_t *a, const kp_acl_filter_t *filter,
                  void (*cb)(const kp_acl_t *acl, void *arg), void *arg);
/* Calls cb for each binding matching filter (under the read lock: cb must not call back). */
void kp_acl_list(kp_authorizer_t *a, const kp_acl_filter_t *filter,
                 void (*cb)(const kp_acl_t *acl, void *arg), void *arg);
int kp_acl_filter_matches(const kp_acl_filter_t *f, const kp_acl_t *acl);
size_t kp_acl_count(kp_authorizer_t *a);

#endif

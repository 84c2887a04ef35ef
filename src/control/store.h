/*
 * store.h — the control plane's durable state in SQLite (WAL, synchronous=FULL): resources
 * with Kubernetes-style metadata, the change counter (resourceVersion), API tokens (stored
 * as SHA-256 hashes, never in clear) and service users.
 *
 * Objects go in and out as jansson values; the store assigns uid, generation,
 * resourceVersion, creationTimestamp and deletionTimestamp. Thread-safe: one connection
 * behind a mutex (the control plane's write rate is low; SQLite serializes writes anyway).
 */
#ifndef KP_STORE_H
#define KP_STORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kp_store kp_store_t;

kp_store_t *kp_store_open(const char *path, char *err, size_t errlen);
void kp_store_close(kp_store_t *s);

/* Called (on the writing thread, after commit) for every change: the reconciler wakes. */
typedef void (*kp_store_change_fn)(const char *kind, const char *ns, const char *name, void *arg);
void kp_store_on_change(kp_store_t *s, kp_store_change_fn fn, void *arg);

/* Listeners told of every move of the store's resourceVersion made through this store (any
 * object: specs, statuses, removals, restores), on the writing thread, with the store's lock
 * held: fn must be quick and must not call the store (a watch hub sets a flag and signals
 * its thread). Writes by another process on the same file are not told: see
 * kp_store_data_version. kp_store_listen: 0, or -1 past KP_NOTIFY_MAX listeners.
 * kp_store_unlisten waits for a call in progress. */
int kp_store_listen(kp_store_t *s, void (*fn)(void *arg), void *arg);
void kp_store_unlisten(kp_store_t *s, void (*fn)(void *arg), void *arg);

/* The store's resourceVersion now (the last one handed out; 0 before any write), or -1. */
int64_t kp_store_rv(kp_store_t *s);

/* SQLite's PRAGMA data_version of the store's connection: it moves when another connection
 * (another process: `kpool registry`, sqlite3 on the file) commits to the file, never for
 * this store's own writes. One read of the WAL index, no table read: cheap enough to ask
 * every second. -1 on error. */
int64_t kp_store_data_version(kp_store_t *s);

enum {
    KP_STORE_OK = 0,
    KP_STORE_CREATED,
    KP_STORE_UPDATED,
    KP_STORE_UNCHANGED,
    KP_STORE_NOT_FOUND,
    KP_STORE_CONFLICT, /* stale resourceVersion */
    KP_STORE_EXISTS,   /* create-only and present */
    KP_STORE_ERROR,
};

/* 1 while writes fail because the disk under the store is full: from the first such failure
 * until a transaction commits again. The API answers 507 then. The condition is logged once,
 * then once a minute with the number of failures, and when it clears. */
int kp_store_disk_full(kp_store_t *s);

/* *out: a new reference (NULL when not found). ns "" for cluster-scoped kinds. */
int kp_store_get(kp_store_t *s, const char *kind, const char *ns, const char *name, json_t **out);
/* Every object of kind (in ns, or all when ns is NULL), sorted by namespace then name. */
int kp_store_list(kp_store_t *s, const char *kind, const char *ns, json_t **items, int64_t *rv);
/* Reads one object only when its resourceVersion is not known_rv: KP_STORE_UNCHANGED (and
 * *out NULL) when it is, so a caller that kept the object parsed skips reading and parsing
 * its body; else as kp_store_get. *rv: the stored resourceVersion (0 when not found). */
int kp_store_get_if_changed(kp_store_t *s, const char *kind, const char *ns, const char *name,
                            int64_t known_rv, json_t **out, int64_t *rv);

/* One object of a kind as kp_store_keys lists it: no body is read. */
typedef struct kp_store_key {
    char *ns; /* "" for cluster-scoped kinds */
    char *name;
    int64_t rv; /* resourceVersion */
} kp_store_key_t;

/* The keys of every object of kind, sorted by namespace then name, without reading bodies.
 * 0 or -1. Free with kp_store_keys_free. */
int kp_store_keys(kp_store_t *s, const char *kind, kp_store_key_t **out, size_t *n);
void kp_store_keys_free(kp_store_key_t *k, size_t n);

/* One string field (a JSON path such as "$.spec.pool", read by SQLite without building the
 * object) of every object of kind, with its key, sorted by namespace then name; value NULL
 * when the object has no such string. 0 or -1. Free with kp_store_fields_free. */
typedef struct kp_store_field {
    kp_store_key_t key;
    char *value;
} kp_store_field_t;
int kp_store_fields(kp_store_t *s, const char *kind, const char *path, kp_store_field_t **out,
                    size_t *n);
void kp_store_fields_free(kp_store_field_t *f, size_t n);

/* Create or replace (PUT). obj must have kind and metadata.name/namespace. expected_rv < 0:
 * unconditional. create_only: POST semantics. The stored object (with server metadata and
 * the existing status preserved) is returned in *out. */
int kp_store_put(kp_store_t *s, json_t *obj, int64_t expected_rv, int create_only, json_t **out);
/* Writes an object taken from a backup: like kp_store_put, but keeps metadata.uid,
 * generation and creationTimestamp as given (names derived from them, such as service users
 * and secret names, come out as before) and drops status, resourceVersion and
 * deletionTimestamp. replace 0: an existing object is left as it is (KP_STORE_EXISTS).
 * KP_STORE_CREATED / KP_STORE_UPDATED / KP_STORE_CONFLICT (being deleted) / KP_STORE_ERROR.
 * Watchers are told, so the reconciler takes the object up. */
int kp_store_restore(kp_store_t *s, const json_t *obj, int replace);
/* Replaces status only (control plane). No-op (KP_STORE_UNCHANGED) when equal. */
int kp_store_put_status(kp_store_t *s, const char *kind, const char *ns, const char *name,
                        json_t *status, json_t **out);
/* Sets deletionTimestamp (the reconciler finishes the deletion). */
int kp_store_mark_deleted(kp_store_t *s, const char *kind, const char *ns, const char *name,
                          json_t **out);
/* Removes the row for good. */
int kp_store_remove(kp_store_t *s, const char *kind, const char *ns, const char *name);

/* Tokens. A token is 32 random bytes, hex; only its SHA-256 is stored. ns NULL = admin.
 * Adds a token unconditionally: teams get theirs through kp_store_team_token_create. */
int kp_store_token_create(kp_store_t *s, const char *ns, const char *description,
                          char token_out[65]);
/* 0 with *is_admin / ns (malloc'd, NULL for admin) filled, -1 when unknown or revoked. Reads
 * the store every time, so a revocation holds from the next lookup on. */
int kp_store_token_lookup(kp_store_t *s, const char *token, int *is_admin, char **ns);

/* Team tokens. A team is a namespace; it "has a token" while one of its tokens is not
 * revoked. Revoked tokens keep their row (hash and times) so an admin can see when they went;
 * they never authenticate again. Each call below is one transaction. */

/* Issues the team's first (or, after a revocation, next) token. KP_STORE_CREATED with the
 * token in token_out; KP_STORE_EXISTS when the team already has a valid token (nothing is
 * written: use rotate); KP_STORE_ERROR. */
int kp_store_team_token_create(kp_store_t *s, const char *team, char token_out[65]);
/* Revokes every valid token of the team and issues a new one, atomically: no moment with
 * both or neither. KP_STORE_UPDATED with the token and *revoked_n; KP_STORE_NOT_FOUND when
 * the team has no valid token (nothing is written); KP_STORE_ERROR (nothing changed). */
int kp_store_team_token_rotate(kp_store_t *s, const char *team, char token_out[65], int *revoked_n);
/* Revokes every valid token of the team; its resources are not touched. KP_STORE_UPDATED
 * with *revoked_n, KP_STORE_NOT_FOUND when it had none, KP_STORE_ERROR. */
int kp_store_team_tokens_revoke(kp_store_t *s, const char *team, int *revoked_n);

typedef struct kp_store_team {
    char *name;
    int tokens;          /* valid */
    int tokens_revoked;  /* revoked, kept for the record */
    int resources;       /* stored objects in the namespace (any kind) */
    char *created;       /* RFC 3339: its first token or resource, whichever came first */
    char *token_created; /* RFC 3339: its newest valid token, "" when none */
    char *last_revoked;  /* RFC 3339: its latest revocation, "" when none */
} kp_store_team_t;

/* Teams known by a token (valid or revoked) or by resources in their namespace, sorted by
 * name; only the one named when team is not NULL (*n is then 0 or 1). 0 or -1. Free with
 * kp_store_teams_free. */
int kp_store_teams_list(kp_store_t *s, const char *team, kp_store_team_t **out, int *n);
void kp_store_teams_free(kp_store_team_t *t, int n);

/* Small key/value settings (e.g. the admin token's existence). */
int kp_store_meta_get(kp_store_t *s, const char *key, char **value);
int kp_store_meta_set(kp_store_t *s, const char *key, const char *value);

/* Service users (one per AivenApplication generation; SPEC 3). */
typedef struct kp_service_user {
    char *name; /* <team>_<app>_<crc>_<gen> */
    char *team; /* namespace */
    char *app;  /* application name */
    char *pool;
    char *principal; /* as the pool sees it, e.g. "User:CN=<name>" */
    char *secret;    /* secret name holding its credentials */
    int64_t generation;
    int64_t created_ms;
    int64_t revoked_ms; /* 0 while active */
} kp_service_user_t;

/* Records a new service user; an existing one (same name) is left as it is, revoked or
 * not. 1 when created (watchers are told), 0 when it existed, -1 on error. */
int kp_store_user_put(kp_store_t *s, const kp_service_user_t *u);
/* The registry credentials' verifier (kp_pki_password_hash) of a user. 0 or -1. */
int kp_store_user_set_registry_hash(kp_store_t *s, const char *name, const char *hash);
/* An active user's verifier and team (malloc'd) for basic auth; -1 when unknown/revoked. */
int kp_store_user_registry_auth(kp_store_t *s, const char *name, char **hash, char **team,
                                char **pool);
/* Active users of a pool (revoked_ms == 0). Free with kp_store_users_free. */
int kp_store_users_list(kp_store_t *s, const char *pool, kp_service_user_t **out, int *n);
int kp_store_user_revoke(kp_store_t *s, const char *name, int64_t now_ms);
int kp_store_user_delete(kp_store_t *s, const char *name);
void kp_store_users_free(kp_service_user_t *u, int n);

#endif

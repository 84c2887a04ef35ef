/*
 * k8s.h — the Kubernetes API surface of the control plane, so that unmodified kubectl
 * manages kpool's kinds (SPEC 13, docs/kubectl.md). api.c routes and authorizes; the pieces
 * here are pure functions of their inputs (JSON in, JSON out), each in its own file:
 *
 *   k8s_discovery.c  /version, /api, /apis[/<group>[/<version>]], namespaces as teams,
 *                    SelfSubjectAccessReview, and the OpenAPI v2 and v3 documents
 *   k8s_openapi_v2.c the OpenAPI v2 document as protobuf
 *   k8s_table.c      server-side printing: meta.k8s.io/v1 Table from the kinds' columns
 *   k8s_select.c     label and field selectors, list paging (limit/continue)
 *   k8s_patch.c      JSON merge patch (RFC 7386), JSON patch (RFC 6902), strategic merge
 *                    patch (the directives kubectl sends for built-in kinds)
 *   k8s_fields.c     managedFields and server-side apply (field managers, conflicts)
 *   k8s_watch.c      watch streams: a change feed of the store (k8s_watch.h)
 *   k8s_events.c     Events (core/v1, read-only) from the recorder (control/events.h)
 *   k8s_proto.c      the protobuf bodies of kubectl's typed client (auth can-i, create
 *                    secret)
 *
 * Every function takes any input: errors come back as messages, never as crashes.
 */
#ifndef KP_K8S_H
#define KP_K8S_H

#include "control/kinds.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* The Kubernetes version /version reports (kubectl warns beyond one minor of skew). */
#define KP_K8S_MAJOR "1"
#define KP_K8S_MINOR "32"

/* ---- discovery (k8s_discovery.c) ---- */

/* Answers the discovery and OpenAPI paths (GET only): /version, /api, /api/v1, /apis,
 * /apis/<group>, /apis/<group>/<version>, /openapi/v2, /openapi/v3[/<api|apis>/...]. 1 when path is
 * one of them (*body and *code set), 0 otherwise. */
int kp_k8s_discovery(const char *path, json_t **body, unsigned *code);
/* The v1 Namespace object of a team (name, creationTimestamp may be NULL). */
json_t *kp_k8s_namespace(const char *name, const char *created);

/* The OpenAPI v2 document (kp_k8s_discovery("/openapi/v2")) as gnostic's protobuf
 * (k8s_openapi_v2.c), which kubectl asks for with Accept:
 * application/com.github.proto-openapi.spec.v2@v1.0+protobuf; the answer's Content-Type is
 * KP_K8S_OPENAPI_V2_PROTOBUF, as Kubernetes sends it ('@' is not valid in a media type: Go's
 * parser refuses it). malloc'd, *len bytes. */
#define KP_K8S_OPENAPI_V2_PROTOBUF "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
uint8_t *kp_k8s_openapi_v2_protobuf(const json_t *doc, size_t *len);

/* A SelfSubjectAccessReview sent as Kubernetes protobuf (kubectl auth can-i), as the JSON
 * object {"spec": {"resourceAttributes": {...}}}; NULL when body is not one
 * (k8s_proto.c). */
json_t *kp_k8s_access_review_from_protobuf(const uint8_t *body, size_t len);
/* A Secret sent as Kubernetes protobuf (kubectl create secret) as its JSON form (data in
 * base64), NULL when body is not one. Only what a Secret's writer sets is read: name,
 * generateName, namespace, labels, annotations, data, stringData, type. */
json_t *kp_k8s_secret_from_protobuf(const uint8_t *body, size_t len);

/* ---- Table output (k8s_table.c) ---- */

/* 1 when an Accept header asks for a meta.k8s.io Table (as=Table), 0 otherwise. */
int kp_k8s_wants_table(const char *accept);
/* A Table of items (array, borrowed) of kind k. include_object: "None", "Object" or
 * anything else for PartialObjectMetadata (Kubernetes' default). */
json_t *kp_k8s_table(const kp_kind_t *k, const json_t *items, const char *resource_version,
                     const char *include_object);

/* ---- selectors and paging (k8s_select.c) ---- */

/* Kubernetes label selector syntax: k=v, k==v, k!=v, k, !k, k in (a,b), k notin (a,b),
 * comma-separated (all must hold). 1 match, 0 no match, -1 invalid with err. NULL or ""
 * matches everything. */
int kp_k8s_label_match(const json_t *obj, const char *selector, char *err, size_t errlen);
/* Field selectors: metadata.name and metadata.namespace with =, == or !=. Same returns. */
int kp_k8s_field_match(const json_t *obj, const char *selector, char *err, size_t errlen);
/* The same with more fields: pairs of {field label, dotted path of obj}, NULL-terminated
 * ({"source", "source.component", NULL}). An absent field equals "". */
int kp_k8s_field_match_in(const json_t *obj, const char *selector, const char *const *fields,
                          char *err, size_t errlen);
/* Paging: keeps at most limit items of list (sorted by namespace, name) after the continue
 * token; *next is the token for the rest (malloc'd, NULL when none) and *remaining how many
 * items follow. limit 0 = no limit. -1 for a malformed token. */
int kp_k8s_page(json_t *items, long limit, const char *cont, char **next, long *remaining);

/* ---- patches (k8s_patch.c) ---- */

/* RFC 7386: returns the patched copy of target (target borrowed). */
json_t *kp_k8s_merge_patch(const json_t *target, const json_t *patch);
/* RFC 6902: the patched copy, or NULL with err ("op 2 (remove /spec/x): no such path"). */
json_t *kp_k8s_json_patch(const json_t *target, const json_t *ops, char *err, size_t errlen);
/* A strategic merge patch as kubectl sends it for built-in kinds (Secret): a merge patch
 * with the $patch (replace, delete), $retainKeys, $setElementOrder/ and
 * $deleteFromPrimitiveList/ directives honoured for maps and lists of scalars (kpool's
 * kinds have no lists with merge keys, so lists are replaced). NULL with err when a
 * directive is malformed. */
json_t *kp_k8s_strategic_patch(const json_t *target, const json_t *patch, char *err, size_t errlen);

/* ---- Events (k8s_events.c) ---- */

/* /api/v1/events or /api/v1/namespaces/NS/events[/NAME]: 1 (ns and name set, "" when
 * absent), else 0. */
int kp_k8s_events_route(const char *url, char *ns, size_t nslen, char *name, size_t namelen);

typedef struct kp_k8s_events_req {
    const char *ns; /* NULL or "": every namespace (the caller has checked the token may) */
    const char *name;
    const char *label_selector, *field_selector, *limit, *continue_token;
    int table; /* Accept asked for a Table */
    const char *include_object;
} kp_k8s_events_req_t;

/* Events as a kind (core/v1, namespaced, read-only), for watch streams (k8s_watch.c). */
extern const kp_kind_t kp_k8s_event_kind;
/* Whether event matches the label and field selectors (Events' field labels): 1, 0, or -1
 * with err when a selector is invalid. */
int kp_k8s_event_match(const json_t *event, const char *labels, const char *fields, char *err,
                       size_t errlen);
/* A Table of events (array, borrowed) with Kubernetes' columns for Events. */
json_t *kp_k8s_events_table(const json_t *items, const char *resource_version,
                            const char *include_object);

/* The answer to a GET of events (control/events.h): one, an EventList (field selectors on
 * involvedObject.*, reason, type, source, reportingComponent; paging), or a Table with
 * Kubernetes' columns. Never NULL; *code is the HTTP status. */
json_t *kp_k8s_events_answer(const kp_k8s_events_req_t *q, unsigned *code);

/* ---- managedFields and server-side apply (k8s_fields.c) ---- */

/* Records an update by manager (operation Update) in nu's metadata.managedFields: the
 * fields that differ from old (NULL on create) become manager's, fields gone are dropped
 * from every manager. old's managedFields are the starting point. */
void kp_k8s_fields_update(json_t *nu, const json_t *old, const char *manager,
                          const char *api_version);
/* Server-side apply of config by manager onto live (NULL: create). On success returns the
 * new object (with managedFields); on conflict returns NULL with *conflicts (array of
 * {"field": ".spec.x", "manager": "m"}); force takes the fields over instead. */
json_t *kp_k8s_apply(const json_t *live, const json_t *config, const char *manager, int force,
                     const char *api_version, json_t **conflicts);

#endif

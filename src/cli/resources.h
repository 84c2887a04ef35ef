/*
 * resources.h — the pure parts of the resource commands (kpool apply/get/describe/delete):
 * the kinds table of docs/api.md, REST paths, RFC 3339 times and kubectl-style ages, loading
 * manifests (multi-document YAML or JSON, List kinds) and namespace defaulting, and rendering
 * tables and `describe` summaries from API objects.
 *
 * Nothing here does I/O or reads the clock: callers pass `now`, so every function is
 * deterministic and unit-tested (tests/unit/test_cli.c). resources.c holds kinds, paths,
 * times and manifests; resource_print.c holds tables and describe.
 *
 * Text that comes from a server or a manifest is printed with control characters replaced,
 * and Secret values are never rendered (tables show the number of keys, describe their sizes).
 */
#ifndef KP_CLI_RESOURCES_H
#define KP_CLI_RESOURCES_H

#include "control/kinds.h"
#include "core/buf.h"

#include <jansson.h>
#include <stddef.h>
#include <time.h>

/* A manifest file (or stdin) larger than this is refused: manifests are hand-written or
 * generated YAML of a few KiB; the bound keeps `-f /dev/zero` from exhausting memory. */
#define KP_MANIFEST_BYTES_MAX (32 * 1024 * 1024)
/* Documents accepted by one command (every one is a request to the server). */
#define KP_MANIFEST_DOCS_MAX 10000

/* The kinds table is control/kinds.c's, shared with the API server. */

/* The kind a user typed: plural, singular, short name or Kind, any case, optionally
 * qualified with its group ("topics.kafka.nais.io"). NULL when unknown. */
const kp_kind_t *kp_kind_find(const char *name);
/* The kind of a manifest from its apiVersion and kind. NULL with one line in err otherwise
 * (unknown kind, or a known kind under another group/version). */
const kp_kind_t *kp_kind_for(const char *api_version, const char *kind, char *err, size_t errlen);
/* "topic, stream, aivenapplication (aivenapp), ..." for usage errors. */
void kp_kind_names(kp_buf_t *out);

/* kubectl's resource reference: "topic.kafka.nais.io/orders", "secret/x"; with name NULL the
 * "topic.kafka.nais.io" part alone. */
void kp_kind_ref(const kp_kind_t *k, const char *name, kp_buf_t *out);

/* The REST path of a collection (name NULL) or of one object. ns NULL for a namespaced kind
 * means every namespace; ns is ignored for cluster-scoped kinds. label_selector ("a=b,c=d",
 * may be NULL) is added as ?labelSelector= to collections. Names and namespaces are
 * percent-encoded. -1 with err for a name or namespace that can never be valid (empty, ".",
 * ".."): such a path would address something else. */
int kp_resource_path(const kp_kind_t *k, const char *ns, const char *name,
                     const char *label_selector, kp_buf_t *out, char *err, size_t errlen);

/* Appends every document of a manifest (YAML, multi-document, or JSON) to docs. A `List` or
 * `<Kind>List` document contributes its items. Each document must be a mapping with string
 * apiVersion, kind and metadata.name. source names the file in errors ("orders.yaml:
 * document 2: missing metadata.name"). 0, or -1 with err (docs may hold earlier ones). */
int kp_manifest_load(const char *text, size_t len, const char *source, json_t *docs, char *err,
                     size_t errlen);

/* Prepares one manifest document to be sent: resolves its kind, sets metadata.namespace of a
 * namespaced kind (the document's, else flag_ns (-n), else default_ns), drops it for a
 * cluster-scoped kind and drops metadata.resourceVersion (apply replaces unconditionally,
 * docs/api.md). A document namespace that differs from -n is an error, as in kubectl.
 * Returns the kind, or NULL with one line in err. */
const kp_kind_t *kp_manifest_prepare(json_t *doc, const char *flag_ns, const char *default_ns,
                                     char *err, size_t errlen);

/* Appends a table of items (a JSON array of objects of kind k), kubectl-style: columns
 * separated by at least three spaces, a NAMESPACE column first when with_ns, the extra
 * columns of -o wide when wide. */
void kp_table_render(const kp_kind_t *k, const json_t *items, int wide, int with_ns, time_t now,
                     kp_buf_t *out);

/* Appends the table of `kpool team list` (items: Team objects, docs/api.md): NAME, TOKENS
 * (valid), CREATED (age), RESOURCES; -o wide adds TOKEN AGE (the newest valid token's) and
 * REVOKED (how many tokens were revoked). */
void kp_teams_table_render(const json_t *items, int wide, time_t now, kp_buf_t *out);

/* Appends the `kpool describe` summary of obj: metadata, spec (YAML), and a status that
 * explains itself (synchronizationState, message, errors[], conditions[]). A Secret's data
 * is shown as key names and sizes, never values. */
void kp_describe_render(const kp_kind_t *k, const json_t *obj, time_t now, kp_buf_t *out);

#endif

/*
 * json_compat.h — JSON Schema compatibility as a yes/no question: can a reader with schema R
 * accept every document that is valid under a writer schema W? The registry's levels are
 * built from it exactly as for Avro (registry_state.c): BACKWARD asks whether the new schema
 * reads the old one's documents, FORWARD the other way round, FULL both.
 *
 * The answer is conservative: "compatible" is only given when the rules below prove it;
 * anything not understood is incompatible, with a message naming the keyword and the place.
 * Rules, reader R against writer W (a keyword absent from W constrains nothing):
 *   - W false: compatible (no documents); R true or without constraints: compatible;
 *   - type: every type W allows is allowed by R (integer is read by number, not the reverse);
 *     W's type is also narrowed by its enum/const values;
 *   - enum/const in R: W has enum/const and each of W's values is among R's;
 *   - strings: R's minLength/maxLength/pattern no stricter than W's (pattern: the same text);
 *   - numbers: R's minimum/maximum/exclusive* bounds no tighter than W's; R's multipleOf
 *     divides W's (or W is integer-only and R's multipleOf divides 1);
 *   - arrays: items compared position by position (items as a schema, tuples in items or
 *     prefixItems, additionalItems), minItems/maxItems, uniqueItems;
 *   - objects: each property name is compared with the schema the other side gives it:
 *     its own entry in properties, else additionalProperties (true when absent). So a
 *     property added to an open writer model must accept anything, a property removed from
 *     a closed reader model is refused, and one added to a closed writer model is free.
 *     required: R may not require what W does not (unless R gives the property a default,
 *     as Confluent allows); minProperties/maxProperties; dependencies, dependentRequired,
 *     dependentSchemas; propertyNames; patternProperties, with property names matched
 *     against the patterns (a subset of ECMA-262 read as POSIX regexes; outside it, the
 *     answer is "cannot tell", never "compatible");
 *   - W's anyOf/oneOf: every branch is read by R (or R reads W without them); R's
 *     anyOf/oneOf: some branch reads W (oneOf is treated as anyOf, as Confluent does);
 *     R's allOf: every branch reads W; W's allOf: R reads some branch (or W without it);
 *   - not: W's is ignored (W without it allows more); R's is accepted only against W's,
 *     with the roles swapped (R.not must read W.not);
 *   - $ref: local JSON pointers ("#", "#/definitions/X", "#/$defs/X", ...). A pair of
 *     references being compared is assumed compatible inside itself (recursive schemas).
 *     Other references (other documents, anchors, $dynamicRef) are refused;
 *   - contains, min/maxContains, if/then/else and draft-3 keywords in R: only when W has
 *     exactly the same value; unevaluatedProperties/Items in R: refused. Annotations
 *     (title, description, default, format, ...) and unknown keywords are ignored, as
 *     validators ignore them.
 */
#ifndef KP_JSON_COMPAT_H
#define KP_JSON_COMPAT_H

#include <jansson.h>

/* Messages kept per check: the first ones tell the user what to fix. */
#define KP_JSON_COMPAT_MESSAGES_MAX 32
/* Nested subschemas (and $ref hops) followed: bounds the recursion on hostile schemas. */
#define KP_JSON_COMPAT_DEPTH_MAX 128
/* Subschema pairs compared in one check: combinators multiply the work (anyOf against anyOf
 * at every level), so a budget keeps a hostile pair from taking minutes. */
#define KP_JSON_COMPAT_STEPS_MAX 200000
/* enum, required and dependency values compared (each side): the comparisons are
 * quadratic. */
#define KP_JSON_COMPAT_ENUM_MAX 2000
/* JSON values (nodes) compared for equality at once: bounds enum and verbatim keywords. */
#define KP_JSON_COMPAT_VALUE_NODES_MAX 20000

/*
 * 1 when every document valid under writer is valid under reader (as far as the rules
 * above can tell), else 0. reader and writer are JSON Schema documents (an object or a
 * boolean; anything else is refused). When msgs (a JSON array) is given, one string per
 * incompatibility is appended:
 *   {errorType:'PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL', description:'...', path:'#/...'}
 * The path is where in the schemas (followed from the root, through $ref) it was found.
 */
int kp_json_can_read(json_t *reader, json_t *writer, json_t *msgs);

#endif

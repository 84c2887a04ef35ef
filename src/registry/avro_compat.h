/*
 * avro_compat.h — Avro schema resolution as a yes/no question: can data written with one
 * schema be read with another (Avro specification, "Schema Resolution")? The registry's
 * compatibility levels are built from it (registry_state.c): BACKWARD asks whether the new
 * schema can read the old one's data, FORWARD the other way round, FULL both.
 *
 * Rules, reader R against writer W:
 *   - a writer union: R must read every branch of W;
 *   - a reader union (W not a union): some branch of R must read W;
 *   - the same primitive; or a promotion int -> long, float, double; long -> float,
 *     double; float -> double; string <-> bytes;
 *   - records with the same unqualified name (or R's alias naming W): every field of R is
 *     either in W (by name or one of R's field aliases), with readable types, or has a
 *     default; W's extra fields are skipped;
 *   - enums with the same name: every symbol of W is in R, unless R has a default symbol;
 *   - fixed with the same name and size; arrays by items; maps by values.
 * Recursive types are checked coinductively (a pair of named types being checked is
 * assumed compatible inside itself), and each pair of named types is checked once.
 * Logical types are ignored, as Avro's resolution ignores them.
 */
#ifndef KP_AVRO_COMPAT_H
#define KP_AVRO_COMPAT_H

#include "registry/avro_schema.h"

#include <jansson.h>

/* Messages kept per check: the first ones tell the user what to fix. */
#define KP_AVRO_COMPAT_MESSAGES_MAX 32

/*
 * 1 when data written with writer can be read with reader, else 0. When msgs (a JSON array)
 * is given, one string per incompatibility is appended, in Confluent's verbose style:
 * {errorType:'READER_FIELD_MISSING_DEFAULT_VALUE', description:'...', additionalInfo:'...'}
 * where errorType is one of NAME_MISMATCH, FIXED_SIZE_MISMATCH, MISSING_ENUM_SYMBOLS,
 * READER_FIELD_MISSING_DEFAULT_VALUE, TYPE_MISMATCH, MISSING_UNION_BRANCH.
 */
int kp_avro_can_read(const kp_avro_schema_t *reader, const kp_avro_schema_t *writer, json_t *msgs);

#endif

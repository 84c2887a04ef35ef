/*
 * registry_state.c — the registry's state machine over `_schemas` records (see
 * registry_state.h for the record format and the threading contract).
 *
 * Divided into: levels and errors · schemas by id and by text (shared by versions, freed
 * when the last version naming them is removed) · apply (the only way state changes) ·
 * reads · candidates (submitted schemas) and compatibility · write plans.
 */
#include "registry/registry_state.h"

#include "core/buf.h"
#include "registry/avro_compat.h"
#include "registry/json_compat.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const level_names[] = {
    "NONE", "BACKWARD",       "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE",
    "FULL", "FULL_TRANSITIVE"};

const char *kp_compat_name(kp_compat_t c)
{
    if (c == KP_COMPAT_UNSET) return "BACKWARD";
    return (unsigned)c < 7 ? level_names[c] : "?";
}

int kp_compat_parse(const char *name, kp_compat_t *out)
{
    for (int i = 0; name && i < 7; i++)
        if (!strcmp(name, level_names[i])) {
            *out = (kp_compat_t)i;
            return 0;
        }
    return -1;
}

void kp_reg_error_set(kp_reg_error_t *e, int http, int code, const char *fmt, ...)
{
    e->http = http;
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
}

void kp_reg_state_init(kp_reg_state_t *st)
{
    memset(st, 0, sizeof(*st));
    kp_hmap_init(&st->subjects);
    kp_hmap_init(&st->ids);
    kp_hmap_init(&st->by_text);
    st->global = KP_COMPAT_UNSET;
}

static void schema_free(kp_reg_schema_t *s)
{
    free(s->type);
    free(s->text);
    json_decref(s->references);
    kp_avro_schema_free(s->avro);
    free(s);
}

static void subject_free(kp_reg_subject_t *s)
{
    free(s->name);
    free(s->versions);
    free(s);
}

void kp_reg_state_free(kp_reg_state_t *st)
{
    size_t it = 0;
    const char *k;
    size_t kl;
    void *v;
    while (kp_hmap_next(&st->subjects, &it, &k, &kl, &v)) subject_free(v);
    it = 0;
    while (kp_hmap_next(&st->ids, &it, &k, &kl, &v)) schema_free(v);
    kp_hmap_free(&st->subjects);
    kp_hmap_free(&st->ids);
    kp_hmap_free(&st->by_text);
}

/* ---- schemas by id and by text ---- */

/* The dedupe key: type, references and text (a NUL between parts). */
static char *text_key(const char *type, const json_t *refs, const char *text, size_t *len)
{
    char *r = json_array_size(refs) ? json_dumps(refs, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    kp_buf_t b;
    kp_buf_init(&b);
    kp_buf_append(&b, type, strlen(type) + 1);
    if (r) kp_buf_append(&b, r, strlen(r));
    kp_buf_append(&b, "", 1);
    kp_buf_append(&b, text, strlen(text));
    free(r);
    *len = b.len;
    return (char *)b.data;
}

kp_reg_schema_t *kp_reg_schema_by_id(const kp_reg_state_t *st, int id)
{
    return kp_hmap_get(&st->ids, &id, sizeof(id));
}

static void schema_release(kp_reg_state_t *st, int id)
{
    kp_reg_schema_t *s = kp_reg_schema_by_id(st, id);
    if (!s || --s->uses > 0) return;
    size_t len;
    char *key = text_key(s->type, s->references, s->text, &len);
    if (kp_hmap_get(&st->by_text, key, len) == s) kp_hmap_del(&st->by_text, key, len);
    free(key);
    kp_hmap_del(&st->ids, &id, sizeof(id));
    schema_free(s);
}

/* The texts of a schema's references, resolved in the state. 0, or -1 with e set. */
static int resolve_refs(const kp_reg_state_t *st, const json_t *refs, int include_deleted,
                        const char ***texts, size_t **lens, kp_reg_error_t *e)
{
    size_t n = json_array_size(refs);
    *texts = NULL;
    *lens = NULL;
    if (!n) return 0;
    if (n > KP_REG_REFERENCES_MAX) {
        kp_reg_error_set(e, 422, 42201, "Invalid schema: more than %d references",
                         KP_REG_REFERENCES_MAX);
        return -1;
    }
    *texts = kp_xcalloc(n, sizeof(char *));
    *lens = kp_xcalloc(n, sizeof(size_t));
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_array_get(refs, i);
        const char *name = json_string_value(json_object_get(r, "name"));
        const char *subject = json_string_value(json_object_get(r, "subject"));
        json_t *jv = json_object_get(r, "version");
        if (!name || !subject || !json_is_integer(jv)) {
            kp_reg_error_set(e, 422, 42201,
                             "Invalid schema: references[%zu] needs name, subject and version", i);
            goto fail;
        }
        kp_reg_subject_t *s = kp_reg_subject(st, subject);
        if (!s) {
            kp_reg_error_set(e, 404, 40401, "Subject '%s' not found (references[%zu])", subject, i);
            goto fail;
        }
        kp_reg_version_t *v = kp_reg_version_find(s, (int)json_integer_value(jv), include_deleted);
        kp_reg_schema_t *sc = v ? kp_reg_schema_by_id(st, v->id) : NULL;
        if (!sc) {
            kp_reg_error_set(e, 404, 40402,
                             "Version %lld of subject '%s' not found (references[%zu])",
                             (long long)json_integer_value(jv), subject, i);
            goto fail;
        }
        (*texts)[i] = sc->text;
        (*lens)[i] = strlen(sc->text);
    }
    return 0;
fail:
    free(*texts);
    free(*lens);
    *texts = NULL;
    *lens = NULL;
    return -1;
}

/* The schema with this id, created from a record when new. NULL if the id is taken by a
 * different schema (a corrupt topic: the first one wins). */
static kp_reg_schema_t *schema_take(kp_reg_state_t *st, int id, const char *type, const char *text,
                                    const json_t *refs)
{
    kp_reg_schema_t *s = kp_reg_schema_by_id(st, id);
    if (s) {
        s->uses++;
        return s;
    }
    s = kp_xcalloc(1, sizeof(*s));
    s->id = id;
    s->type = kp_xstrdup(type);
    s->references = refs ? json_deep_copy(refs) : json_array();
    if (!strcmp(type, "AVRO")) {
        const char **texts;
        size_t *lens;
        kp_reg_error_t e;
        char err[256];
        if (resolve_refs(st, s->references, 1, &texts, &lens, &e) == 0) {
            s->avro = kp_avro_parse(text, strlen(text), texts, lens,
                                    (int)json_array_size(s->references), err, sizeof(err));
            free(texts);
            free(lens);
        }
    }
    /* our own records are canonical already; others' become so, for dedupe */
    s->text = kp_xstrdup(s->avro ? s->avro->canonical : text);
    s->uses = 1;
    kp_hmap_put(&st->ids, &id, sizeof(id), s);
    size_t len;
    char *key = text_key(s->type, s->references, s->text, &len);
    if (!kp_hmap_get(&st->by_text, key, len)) kp_hmap_put(&st->by_text, key, len, s);
    free(key);
    if (id > st->max_id) st->max_id = id;
    return s;
}

/* ---- apply ---- */

kp_reg_subject_t *kp_reg_subject(const kp_reg_state_t *st, const char *name)
{
    return kp_hmap_get(&st->subjects, name, strlen(name));
}

static kp_reg_subject_t *subject_get_or_add(kp_reg_state_t *st, const char *name)
{
    kp_reg_subject_t *s = kp_reg_subject(st, name);
    if (s) return s;
    s = kp_xcalloc(1, sizeof(*s));
    s->name = kp_xstrdup(name);
    s->compat = KP_COMPAT_UNSET;
    kp_hmap_put(&st->subjects, name, strlen(name), s);
    return s;
}

static void subject_drop_if_empty(kp_reg_state_t *st, kp_reg_subject_t *s)
{
    if (s->nversions || s->compat != KP_COMPAT_UNSET) return;
    kp_hmap_del(&st->subjects, s->name, strlen(s->name));
    subject_free(s);
}

static int version_index(const kp_reg_subject_t *s, int version)
{
    int lo = 0, hi = s->nversions - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (s->versions[mid].version == version) return mid;
        if (s->versions[mid].version < version)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -(lo + 1);
}

static int apply_schema(kp_reg_state_t *st, json_t *key, json_t *val, char *err, size_t errlen)
{
    const char *subject = json_string_value(json_object_get(key, "subject"));
    json_int_t version = json_integer_value(json_object_get(key, "version"));
    if (!subject || version < 1 || version > INT32_MAX) {
        snprintf(err, errlen, "SCHEMA key without subject or version");
        return -1;
    }
    kp_reg_subject_t *s = kp_reg_subject(st, subject);
    int idx = s ? version_index(s, (int)version) : -1;
    if (!val) { /* permanent delete */
        if (!s || idx < 0) return 0;
        int id = s->versions[idx].id;
        memmove(&s->versions[idx], &s->versions[idx + 1],
                (size_t)(s->nversions - idx - 1) * sizeof(*s->versions));
        s->nversions--;
        schema_release(st, id);
        subject_drop_if_empty(st, s);
        return 0;
    }
    json_int_t id = json_integer_value(json_object_get(val, "id"));
    const char *text = json_string_value(json_object_get(val, "schema"));
    const char *type = json_string_value(json_object_get(val, "schemaType"));
    json_t *refs = json_object_get(val, "references");
    if (id < 1 || id > INT32_MAX || !text ||
        (refs && !json_is_array(refs) && !json_is_null(refs))) {
        snprintf(err, errlen, "SCHEMA value of %s version %lld lacks id or schema", subject,
                 (long long)version);
        return -1;
    }
    if (!s) s = subject_get_or_add(st, subject);
    if (idx < 0 && s->nversions >= KP_REG_VERSIONS_MAX) {
        snprintf(err, errlen, "subject %s has %d versions already", subject, KP_REG_VERSIONS_MAX);
        return -1;
    }
    kp_reg_schema_t *sc =
        schema_take(st, (int)id, type ? type : "AVRO", text, json_is_array(refs) ? refs : NULL);
    if (idx >= 0) {
        kp_reg_version_t *v = &s->versions[idx];
        int old = v->id;
        v->id = sc->id;
        v->deleted = json_is_true(json_object_get(val, "deleted"));
        schema_release(st, old);
        return 0;
    }
    idx = -idx - 1;
    if (s->nversions == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 4;
        s->versions = kp_xrealloc(s->versions, (size_t)s->cap * sizeof(*s->versions));
    }
    memmove(&s->versions[idx + 1], &s->versions[idx],
            (size_t)(s->nversions - idx) * sizeof(*s->versions));
    s->versions[idx] = (kp_reg_version_t){.version = (int)version,
                                          .id = sc->id,
                                          .deleted = json_is_true(json_object_get(val, "deleted"))};
    s->nversions++;
    return 0;
}

static int apply_config(kp_reg_state_t *st, json_t *key, json_t *val, char *err, size_t errlen)
{
    json_t *jsub = json_object_get(key, "subject");
    kp_compat_t level = KP_COMPAT_UNSET;
    if (val && kp_compat_parse(json_string_value(json_object_get(val, "compatibilityLevel")),
                               &level) < 0) {
        snprintf(err, errlen, "CONFIG value with an unknown compatibilityLevel");
        return -1;
    }
    if (!json_is_string(jsub)) {
        st->global = level;
        return 0;
    }
    kp_reg_subject_t *s = subject_get_or_add(st, json_string_value(jsub));
    s->compat = level;
    subject_drop_if_empty(st, s);
    return 0;
}

static int apply_delete_subject(kp_reg_state_t *st, json_t *key, json_t *val)
{
    if (!val) return 0;
    kp_reg_subject_t *s =
        kp_reg_subject(st, json_string_value(json_object_get(key, "subject")) ?: "");
    json_int_t upto = json_integer_value(json_object_get(val, "version"));
    for (int i = 0; s && i < s->nversions; i++)
        if (s->versions[i].version <= upto) s->versions[i].deleted = 1;
    return 0;
}

int kp_reg_apply(kp_reg_state_t *st, const char *key, size_t keylen, const char *value,
                 size_t valuelen, char *err, size_t errlen)
{
    json_t *k = json_loadb(key, keylen, 0, NULL);
    json_t *v = value ? json_loadb(value, valuelen, 0, NULL) : NULL;
    int rc = 0;
    const char *kt = json_string_value(json_object_get(k, "keytype"));
    if (!kt) {
        snprintf(err, errlen, "record key is not a registry key");
        rc = -1;
    } else if (value && !json_is_object(v)) {
        snprintf(err, errlen, "%s record value is not a JSON object", kt);
        rc = -1;
    } else if (!strcmp(kt, "SCHEMA")) {
        rc = apply_schema(st, k, v, err, errlen);
    } else if (!strcmp(kt, "CONFIG")) {
        rc = apply_config(st, k, v, err, errlen);
    } else if (!strcmp(kt, "DELETE_SUBJECT")) {
        rc = apply_delete_subject(st, k, v);
    } else if (!strcmp(kt, "NOOP")) {
        /* our id watermark (see id_watermark); Confluent's NOOPs have no value */
        json_int_t max = json_integer_value(json_object_get(v, "maxId"));
        if (max > st->max_id && max <= INT32_MAX) st->max_id = (int)max;
    } /* MODE, ...: nothing to do */
    json_decref(k);
    json_decref(v);
    if (rc == 0)
        st->records_applied++;
    else
        st->records_ignored++;
    return rc;
}

/* ---- reads ---- */

kp_reg_version_t *kp_reg_version_find(const kp_reg_subject_t *s, int v, int include_deleted)
{
    if (!s) return NULL;
    if (v == -1) {
        for (int i = s->nversions - 1; i >= 0; i--)
            if (include_deleted || !s->versions[i].deleted) return &s->versions[i];
        return NULL;
    }
    int idx = version_index(s, v);
    if (idx < 0 || (!include_deleted && s->versions[idx].deleted)) return NULL;
    return &s->versions[idx];
}

int kp_reg_subject_live(const kp_reg_subject_t *s)
{
    return kp_reg_version_find(s, -1, 0) != NULL;
}

kp_compat_t kp_reg_level(const kp_reg_state_t *st, const kp_reg_subject_t *s)
{
    if (s && s->compat != KP_COMPAT_UNSET) return s->compat;
    return st->global != KP_COMPAT_UNSET ? st->global : KP_COMPAT_BACKWARD;
}

/* ---- candidates and compatibility ---- */

void kp_reg_candidate_free(kp_reg_candidate_t *c)
{
    free(c->type);
    free(c->text);
    json_decref(c->references);
    kp_avro_schema_free(c->avro);
    memset(c, 0, sizeof(*c));
}

static int blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') return 0;
    return 1;
}

int kp_reg_candidate_parse(const kp_reg_state_t *st, const char *type, const char *text, size_t len,
                           const json_t *references, kp_reg_candidate_t *c, kp_reg_error_t *e)
{
    memset(c, 0, sizeof(*c));
    if (!type) type = "AVRO";
    if (strcmp(type, "AVRO") && strcmp(type, "JSON") && strcmp(type, "PROTOBUF")) {
        kp_reg_error_set(e, 422, 42201, "Invalid schema type %s: expected AVRO, JSON or PROTOBUF",
                         type);
        return -1;
    }
    if (references && !json_is_array(references) && !json_is_null(references)) {
        kp_reg_error_set(e, 422, 42201, "Invalid schema: references must be an array");
        return -1;
    }
    c->type = kp_xstrdup(type);
    c->references = json_is_array(references) ? json_deep_copy(references) : json_array();
    const char **texts;
    size_t *lens;
    if (resolve_refs(st, c->references, 0, &texts, &lens, e) < 0) goto fail;
    if (!strcmp(type, "AVRO")) {
        char err[600];
        c->avro = kp_avro_parse(text, len, texts, lens, (int)json_array_size(c->references), err,
                                sizeof(err));
        if (!c->avro)
            kp_reg_error_set(e, 422, 42201, "Invalid schema: %s", err);
        else
            c->text = kp_xstrdup(c->avro->canonical);
    } else if (!strcmp(type, "JSON")) {
        json_error_t je;
        json_t *j = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
        if (!j || (!json_is_object(j) && !json_is_boolean(j)))
            kp_reg_error_set(e, 422, 42201,
                             "Invalid schema: a JSON schema must be a JSON object or boolean%s%s",
                             j ? "" : ": ", j ? "" : je.text);
        else
            c->text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
        json_decref(j);
    } else {
        if (blank(text, len) || memchr(text, 0, len))
            kp_reg_error_set(e, 422, 42201, "Invalid schema: an empty PROTOBUF schema");
        else
            c->text = kp_xstrndup(text, len);
    }
    free(texts);
    free(lens);
    if (c->text) return 0;
fail:
    kp_reg_candidate_free(c);
    return -1;
}

int kp_reg_candidate_known_id(const kp_reg_state_t *st, const kp_reg_candidate_t *c)
{
    size_t len;
    char *key = text_key(c->type, c->references, c->text, &len);
    kp_reg_schema_t *s = kp_hmap_get(&st->by_text, key, len);
    free(key);
    return s ? s->id : 0;
}

kp_reg_version_t *kp_reg_candidate_in_subject(const kp_reg_state_t *st, const kp_reg_subject_t *s,
                                              const kp_reg_candidate_t *c, int include_deleted)
{
    int id = kp_reg_candidate_known_id(st, c);
    if (!id || !s) return NULL;
    for (int i = s->nversions - 1; i >= 0; i--)
        if (s->versions[i].id == id && (include_deleted || !s->versions[i].deleted))
            return &s->versions[i];
    return NULL;
}

/* JSON Schema: the stored texts are parsed for each check (they were valid JSON when
 * registered; a text that no longer parses is incompatible). */
static int json_pair(const char *old_text, const char *new_text, int version, int backward,
                     int forward, json_t *msgs)
{
    json_t *old = json_loads(old_text, JSON_DECODE_ANY, NULL);
    json_t *cand = json_loads(new_text, JSON_DECODE_ANY, NULL);
    int ok;
    if (!old || !cand) {
        char line[120];
        snprintf(line, sizeof(line), "{description:'version %d cannot be parsed as JSON'}",
                 version);
        if (msgs) json_array_append_new(msgs, json_string(line));
        ok = 0;
    } else {
        ok = (!backward || kp_json_can_read(cand, old, msgs)) &&
             (!forward || kp_json_can_read(old, cand, msgs));
    }
    json_decref(old);
    json_decref(cand);
    return ok;
}

static int one_pair(const kp_reg_schema_t *old, int version, const kp_reg_candidate_t *c,
                    kp_compat_t level, json_t *msgs)
{
    int backward = level != KP_COMPAT_FORWARD && level != KP_COMPAT_FORWARD_TRANSITIVE;
    int forward = level != KP_COMPAT_BACKWARD && level != KP_COMPAT_BACKWARD_TRANSITIVE;
    char line[200];
    if (strcmp(old->type, c->type)) {
        snprintf(line, sizeof(line),
                 "{errorType:'TYPE_MISMATCH', description:'The schema type %s "
                 "differs from the type %s of version %d'}",
                 c->type, old->type, version);
        if (msgs) json_array_append_new(msgs, json_string(line));
        return 0;
    }
    int ok;
    if (!strcmp(c->type, "AVRO")) {
        if (!old->avro) {
            snprintf(line, sizeof(line),
                     "{description:'version %d cannot be parsed as Avro any more'}", version);
            if (msgs) json_array_append_new(msgs, json_string(line));
            return 0;
        }
        ok = (!backward || kp_avro_can_read(c->avro, old->avro, msgs)) &&
             (!forward || kp_avro_can_read(old->avro, c->avro, msgs));
    } else if (!strcmp(c->type, "JSON")) {
        ok = json_pair(old->text, c->text, version, backward, forward, msgs);
    } else {
        ok = !strcmp(old->text, c->text);
        if (!ok && msgs) {
            snprintf(line, sizeof(line),
                     "{description:'compatibility of %s schemas is not checked: "
                     "set the subject's level to NONE to change them'}",
                     c->type);
            json_array_append_new(msgs, json_string(line));
        }
    }
    if (!ok && msgs) {
        snprintf(line, sizeof(line), "{oldSchemaVersion: %d}", version);
        json_array_append_new(msgs, json_string(line));
        snprintf(line, sizeof(line), "{compatibility: '%s'}", kp_compat_name(level));
        json_array_append_new(msgs, json_string(line));
    }
    return ok;
}

int kp_reg_compatible(const kp_reg_state_t *st, const kp_reg_subject_t *s, kp_compat_t level,
                      const kp_reg_candidate_t *c, int against_version, json_t *msgs)
{
    if (level == KP_COMPAT_NONE || !s) return 1;
    int transitive = level == KP_COMPAT_BACKWARD_TRANSITIVE ||
                     level == KP_COMPAT_FORWARD_TRANSITIVE || level == KP_COMPAT_FULL_TRANSITIVE;
    int ok = 1;
    for (int i = s->nversions - 1; i >= 0; i--) {
        const kp_reg_version_t *v = &s->versions[i];
        if (v->deleted || (against_version > 0 && v->version != against_version)) continue;
        const kp_reg_schema_t *old = kp_reg_schema_by_id(st, v->id);
        if (old && !one_pair(old, v->version, c, level, msgs)) ok = 0;
        if (!ok || (!transitive && against_version <= 0) || against_version > 0) break;
    }
    return ok;
}

/* ---- plans ---- */

void kp_reg_batch_free(kp_reg_batch_t *b)
{
    for (int i = 0; i < b->n; i++) {
        free(b->records[i].key);
        free(b->records[i].value);
    }
    free(b->records);
    memset(b, 0, sizeof(*b));
}

static void batch_add(kp_reg_batch_t *b, char *key, char *value)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 4;
        b->records = kp_xrealloc(b->records, (size_t)b->cap * sizeof(*b->records));
    }
    b->records[b->n++] = (kp_reg_record_t){.key = key, .value = value};
}

static char *dump_free(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    return s;
}

char *kp_reg_key_schema(const char *subject, int version)
{
    return dump_free(json_pack("{s:s, s:s, s:i, s:i}", "keytype", "SCHEMA", "subject", subject,
                               "version", version, "magic", 1));
}

char *kp_reg_value_schema(const char *subject, int version, int id, const char *type,
                          const char *text, const json_t *references, int deleted)
{
    json_t *v = json_pack("{s:s, s:i, s:i, s:s}", "subject", subject, "version", version, "id", id,
                          "schema", text);
    if (strcmp(type, "AVRO")) json_object_set_new(v, "schemaType", json_string(type));
    if (json_array_size(references))
        json_object_set_new(v, "references", json_deep_copy(references));
    json_object_set_new(v, "deleted", json_boolean(deleted));
    return dump_free(v);
}

static char *key_simple(const char *keytype, const char *subject)
{
    return dump_free(json_pack("{s:s, s:o, s:i}", "keytype", keytype, "subject",
                               subject ? json_string(subject) : json_null(), "magic", 0));
}

int kp_reg_plan_register(const kp_reg_state_t *st, const char *subject, const kp_reg_candidate_t *c,
                         kp_reg_batch_t *out, int *id, int *version, kp_reg_error_t *e)
{
    const kp_reg_subject_t *s = kp_reg_subject(st, subject);
    const kp_reg_version_t *same = kp_reg_candidate_in_subject(st, s, c, 0);
    *version = 0;
    if (same) {
        *id = same->id;
        return 0;
    }
    json_t *msgs = json_array();
    if (!kp_reg_compatible(st, s, kp_reg_level(st, s), c, 0, msgs)) {
        char *details = json_dumps(msgs, JSON_COMPACT);
        kp_reg_error_set(e, 409, 409,
                         "Schema being registered is incompatible with an earlier schema "
                         "for subject \"%s\", details: %s",
                         subject, details ? details : "[]");
        free(details);
        json_decref(msgs);
        return -1;
    }
    json_decref(msgs);
    if (s && s->nversions >= KP_REG_VERSIONS_MAX) {
        kp_reg_error_set(e, 422, 42201, "Subject '%s' has %d versions: delete some first", subject,
                         KP_REG_VERSIONS_MAX);
        return -1;
    }
    int known = kp_reg_candidate_known_id(st, c);
    *id = known ? known : st->max_id + 1;
    *version = (s && s->nversions ? s->versions[s->nversions - 1].version : 0) + 1;
    batch_add(out, kp_reg_key_schema(subject, *version),
              kp_reg_value_schema(subject, *version, *id, c->type, c->text, c->references, 0));
    return 0;
}

/* Before a permanent delete: compaction will drop the tombstoned records, and with them
 * maybe the highest id; this record keeps it, so ids are never reused after a restart. */
static void id_watermark(const kp_reg_state_t *st, kp_reg_batch_t *out)
{
    batch_add(out, dump_free(json_pack("{s:s, s:i}", "keytype", "NOOP", "magic", 0)),
              dump_free(json_pack("{s:i}", "maxId", st->max_id)));
}

int kp_reg_plan_delete_subject(const kp_reg_state_t *st, const char *subject, int permanent,
                               kp_reg_batch_t *out, json_t **deleted, kp_reg_error_t *e)
{
    const kp_reg_subject_t *s = kp_reg_subject(st, subject);
    *deleted = NULL;
    if (!s || !s->nversions) {
        kp_reg_error_set(e, 404, 40401, "Subject '%s' not found.", subject);
        return -1;
    }
    int live = kp_reg_subject_live(s);
    if (!permanent && !live) {
        kp_reg_error_set(e, 404, 40404,
                         "Subject '%s' was soft deleted.Set permanent=true to delete permanently",
                         subject);
        return -1;
    }
    if (permanent && live) {
        kp_reg_error_set(e, 404, 40405,
                         "Subject '%s' was not deleted first before being permanently deleted",
                         subject);
        return -1;
    }
    *deleted = json_array();
    if (permanent) id_watermark(st, out);
    for (int i = 0; i < s->nversions; i++) {
        const kp_reg_version_t *v = &s->versions[i];
        if (!permanent && v->deleted) continue;
        const kp_reg_schema_t *sc = kp_reg_schema_by_id(st, v->id);
        char *value = permanent || !sc ? NULL
                                       : kp_reg_value_schema(subject, v->version, v->id, sc->type,
                                                             sc->text, sc->references, 1);
        batch_add(out, kp_reg_key_schema(subject, v->version), value);
        json_array_append_new(*deleted, json_integer(v->version));
    }
    /* Confluent's marker record, so its tools see the subject deleted too */
    batch_add(out, key_simple("DELETE_SUBJECT", subject),
              permanent ? NULL
                        : dump_free(json_pack("{s:s, s:i}", "subject", subject, "version",
                                              s->versions[s->nversions - 1].version)));
    return 0;
}

int kp_reg_plan_delete_version(const kp_reg_state_t *st, const char *subject, int version,
                               int permanent, kp_reg_batch_t *out, int *deleted_version,
                               kp_reg_error_t *e)
{
    const kp_reg_subject_t *s = kp_reg_subject(st, subject);
    if (!s || !s->nversions) {
        kp_reg_error_set(e, 404, 40401, "Subject '%s' not found.", subject);
        return -1;
    }
    const kp_reg_version_t *v = kp_reg_version_find(s, version, version != -1 || permanent);
    if (!v) {
        kp_reg_error_set(e, 404, 40402, "Version %d not found.", version);
        return -1;
    }
    if (!permanent && v->deleted) {
        kp_reg_error_set(e, 404, 40406,
                         "Subject '%s' Version %d was soft deleted.Set permanent=true to "
                         "delete permanently",
                         subject, v->version);
        return -1;
    }
    if (permanent && !v->deleted) {
        kp_reg_error_set(e, 404, 40407,
                         "Subject '%s' Version %d was not deleted first before being "
                         "permanently deleted",
                         subject, v->version);
        return -1;
    }
    if (permanent) id_watermark(st, out);
    const kp_reg_schema_t *sc = kp_reg_schema_by_id(st, v->id);
    char *value = permanent || !sc ? NULL
                                   : kp_reg_value_schema(subject, v->version, v->id, sc->type,
                                                         sc->text, sc->references, 1);
    batch_add(out, kp_reg_key_schema(subject, v->version), value);
    *deleted_version = v->version;
    return 0;
}

void kp_reg_plan_config(const char *subject, kp_compat_t level, kp_reg_batch_t *out)
{
    batch_add(out, key_simple("CONFIG", subject),
              level == KP_COMPAT_UNSET
                  ? NULL
                  : dump_free(json_pack("{s:s}", "compatibilityLevel", kp_compat_name(level))));
}

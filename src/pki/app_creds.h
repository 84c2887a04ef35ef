/*
 * app_creds.h — the pure parts of the application-facing commands (kpool secret, run, probe,
 * doctor, produce, consume): decoding a credentials Secret (SPEC §4), shell quoting and the
 * environment an application gets, the credentials such an environment holds (probe
 * --from-env), the files a secret materializes as, Topic ACL matching with NAIS wildcards,
 * fully-qualified topic names, the YAML a missing ACL entry needs and AivenApplication
 * conditions as text.
 *
 * Nothing here does I/O (files are read through a callback the caller passes): every
 * function is deterministic and unit-tested
 * (tests/unit/test_cli_app.c). The API and file side is cli/app_session.c, the Kafka side
 * pki/app_kafka.c (which the console's doctor uses too), the commands cli/cmd_secret.c,
 * cmd_run.c, cmd_probe.c, cmd_doctor.c, cmd_produce.c and cmd_consume.c.
 *
 * Secret values are key material. They are held in kp_app_secret_t, whose free wipes them,
 * and are only ever written where a command exists to show or hand them over (secret get,
 * secret env, secret files, run).
 */
#ifndef KP_CLI_APP_CREDS_H
#define KP_CLI_APP_CREDS_H

#include "core/buf.h"
#include "pki/pki.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Keys of one Secret: §4 defines a dozen; the bound keeps a hostile answer from making the
 * CLI write thousands of files or variables. */
#define KP_APP_SECRET_KEYS_MAX 256
/* Decoded size of one value (a PKCS#12 store is a few KiB; a CA bundle rarely 100 KiB). */
#define KP_APP_VALUE_BYTES_MAX (1024 * 1024)

/* ---- secrets ---- */

typedef struct kp_app_entry {
    char *key;      /* the data key, as the server sent it */
    uint8_t *value; /* decoded bytes, NUL-terminated (len excludes the NUL) */
    size_t len;
    int binary; /* a *.p12 / *.jks key, or a value that is not text (kp_app_value_is_text) */
} kp_app_entry_t;

typedef struct kp_app_secret {
    kp_app_entry_t *entries; /* sorted by key (byte order) */
    size_t n;
} kp_app_secret_t;

/* Decodes standard base64 (RFC 4648, '=' padding, no line breaks) into out, replacing its
 * contents. Spaces and line breaks are tolerated (some encoders wrap). -1 for any other
 * character, a bad length or bad padding. */
int kp_app_base64_decode(const char *in, size_t len, kp_buf_t *out);

/* 1 for the keys that hold binary stores (names ending in .p12 or .jks). */
int kp_app_key_is_binary(const char *key);
/* 1 when v is text that can be printed and put in an environment variable: no NUL, no
 * control characters other than tab, CR and LF, valid UTF-8 not required (Latin-1 passes). */
int kp_app_value_is_text(const uint8_t *v, size_t len);
/* 1 for a name a POSIX shell accepts as a variable: [A-Za-z_][A-Za-z0-9_]*. */
int kp_app_env_name_valid(const char *name);

/* Decodes secret.data of a Secret object (base64 values). An object without data is an
 * empty secret. -1 with one line in err for a value that is not a string, not base64, or
 * too large, or too many keys; out is then empty. Free with kp_app_secret_free. */
int kp_app_secret_decode(const json_t *secret, kp_app_secret_t *out, char *err, size_t errlen);
/* Wipes every value and frees everything; out is empty afterwards. */
void kp_app_secret_free(kp_app_secret_t *s);
const kp_app_entry_t *kp_app_secret_get(const kp_app_secret_t *s, const char *key);
/* The value of key when it is present and text (not binary), else NULL. */
const char *kp_app_secret_text(const kp_app_secret_t *s, const char *key);

/* ---- shell and environment ---- */

/* Appends s[0..len) as one POSIX shell word in single quotes: every ' becomes '\'' (close,
 * escaped quote, reopen). Line breaks are kept as they are, so a PEM survives `eval`. */
void kp_app_shell_quote(const char *s, size_t len, kp_buf_t *out);

/* A file a secret materializes as (SPEC §4) and the variable that names its path. */
typedef struct kp_app_file {
    const char *key;      /* KAFKA_CERTIFICATE */
    const char *file;     /* kafka.crt */
    const char *path_var; /* KAFKA_CERTIFICATE_PATH */
} kp_app_file_t;

#define KP_APP_FILES_COUNT 5
extern const kp_app_file_t kp_app_files[KP_APP_FILES_COUNT];

/* The environment an application gets: name/value pairs (owned strings). */
typedef struct kp_app_env {
    char **names;
    char **values;
    size_t n;
    kp_buf_t skipped; /* "client.keystore.p12, ..." keys left out, for a note (no NUL) */
} kp_app_env_t;

/* Only keys with this prefix become variables. Every key of SPEC §4 has it; the rule keeps a
 * secret (which a team may write) from setting PATH, LD_PRELOAD, BASH_ENV and the like in
 * the environment of whoever runs `kpool run` or evals `kpool secret env` (an admin
 * debugging a team's app). */
#define KP_APP_ENV_PREFIX "KAFKA_"

/* Every text key of s that is a valid variable name starting with KP_APP_ENV_PREFIX, in key
 * order; then, when dir is not NULL, the *_PATH variable of each file of kp_app_files whose
 * key s holds ("<dir>/<file>"). Keys left out (binary, or not a KAFKA_ variable name) are
 * listed in skipped. Free with kp_app_env_free (which wipes the values). */
void kp_app_env_build(const kp_app_secret_t *s, const char *dir, kp_app_env_t *env);
void kp_app_env_free(kp_app_env_t *env);
/* Appends one `export NAME='value'` line per variable. */
void kp_app_env_render(const kp_app_env_t *env, kp_buf_t *out);

/* ---- credentials from the environment (probe --from-env) ---- */

/* Reads the file at path into out (replacing its contents), at most max bytes. 0, or -1
 * with the reason alone in err ("No such file or directory", "larger than N bytes"): the
 * caller names the variable. The real one is kp_app_file_read (app_session.c); the unit
 * tests pass a fake. */
typedef int (*kp_app_file_read_fn)(void *ctx, const char *path, size_t max, kp_buf_t *out,
                                   char *err, size_t errlen);

/* The credentials an application's environment holds (what the platform or `kpool run`
 * injects, SPEC §4), checked. */
typedef struct kp_app_env_creds {
    /* KAFKA_BROKERS, KAFKA_CERTIFICATE, KAFKA_PRIVATE_KEY, KAFKA_CA as PEM text, and
     * KAFKA_STREAMS_APPLICATION_ID when set: what kp_app_kafka_conf needs */
    kp_app_secret_t data;
    /* the variable each PEM was taken from ("KAFKA_CERTIFICATE_PATH", ...; static) */
    const char *cert_from, *key_from, *ca_from;
    /* the client certificate's subject (RFC 2253): the principal the pool sees */
    char subject[KP_PKI_SUBJECT_LEN_MAX];
} kp_app_env_creds_t;

/* Takes the credentials from envp ("NAME=VALUE" strings, NULL-terminated: environ). Each
 * PEM comes from the first of these that is set and not empty:
 *   client certificate  KAFKA_CERTIFICATE, the file KAFKA_CERTIFICATE_PATH, the keystore
 *   private key         KAFKA_PRIVATE_KEY, the file KAFKA_PRIVATE_KEY_PATH, the keystore
 *   CA                  KAFKA_CA, the file KAFKA_CA_PATH, the truststore
 * where the stores are the PKCS#12 files KAFKA_KEYSTORE_PATH / KAFKA_TRUSTSTORE_PATH, opened
 * with KAFKA_CREDSTORE_PASSWORD. KAFKA_BROKERS is required. The certificates must parse and
 * the key must belong to the client certificate, so that a wrong file is named here rather
 * than reported later as a TLS failure. Files are read with read_file (ctx passed along).
 * 0, or -1 with one line in err naming the variable (and file) at fault — never a value;
 * out is then empty. Free with kp_app_env_creds_free (which wipes the key). */
int kp_app_env_creds_parse(char *const *envp, kp_app_file_read_fn read_file, void *ctx,
                           kp_app_env_creds_t *out, char *err, size_t errlen);
void kp_app_env_creds_free(kp_app_env_creds_t *c);

/* ---- ACLs and topics ---- */

/* Access bits of a Topic ACL entry: read, write, readwrite = both. */
#define KP_APP_ACCESS_READ  1
#define KP_APP_ACCESS_WRITE 2
#define KP_APP_ACCESS_RW    (KP_APP_ACCESS_READ | KP_APP_ACCESS_WRITE)

/* NAIS wildcard match: '*' matches any run of characters (whole, "rapid-*", "*-api",
 * "a*b*"); everything else matches itself. Iterative with one backtrack point, so at worst
 * O(len(pattern) x len(s)): a hostile pattern cannot make it exponential. */
int kp_app_glob_match(const char *pattern, const char *s);
/* "read" / "write" / "readwrite" to access bits; 0 when unknown. */
int kp_app_access_parse(const char *s);
/* access bits to "read" / "write" / "readwrite" ("none" for 0). */
const char *kp_app_access_name(int access);
/* The access spec.acl (an array of {team, application, access}) grants team/app: the union
 * of every matching entry's access, 0 when none matches. */
int kp_app_acl_access(const json_t *acl, const char *team, const char *app);

/* The Kafka name of a Topic object: status.fullyQualifiedName, else "<namespace>.<name>".
 * Written into buf; returns buf, or NULL when the object has no name. */
const char *kp_app_topic_fqn(const json_t *topic, char *buf, size_t buflen);

/* How a topic name a user typed relates to the Topic resources they can see. */
typedef enum kp_app_topic_match {
    KP_APP_TOPIC_FQN = 0,         /* it is the fully qualified name of a Topic */
    KP_APP_TOPIC_SHORT,           /* it is the resource name of a Topic in the namespace */
    KP_APP_TOPIC_SHORT_ELSEWHERE, /* the resource name of a Topic in another namespace */
    KP_APP_TOPIC_FQN_MISSING,     /* it looks qualified (has a '.') but no Topic has it */
    KP_APP_TOPIC_UNKNOWN,         /* no Topic by that name anywhere visible */
} kp_app_topic_match_t;

/* Resolves name against topics (an array of Topic objects) for namespace ns. *found is the
 * matching Topic (borrowed from topics) for the first three results, NULL otherwise. A
 * Topic being deleted (metadata.deletionTimestamp) still counts: it still exists. */
kp_app_topic_match_t kp_app_topic_resolve(const json_t *topics, const char *ns, const char *name,
                                          const json_t **found);

/* The Topics of topics (an array) that grant team/app some access, skipping those being
 * deleted and, when pool is not NULL, those of another pool. A new array of
 * {"fqn": s, "access": n, "topic": <the object>}, in the order of topics. */
json_t *kp_app_topics_granted(const json_t *topics, const char *team, const char *app,
                              const char *pool);

/* Appends the spec.acl entry granting team/app access, as YAML lines each starting with
 * indent ("- team: a\n  application: b\n  access: read\n"). Values YAML would read as
 * something else than a string (true, null, 123, ...) are double-quoted. */
void kp_app_acl_suggest(const char *team, const char *app, int access, const char *indent,
                        kp_buf_t *out);

/* Appends a minimal Topic manifest declaring ns/name in pool (NULL: "dev") with one
 * spec.acl entry granting team/app access: what to apply when a topic does not exist. */
void kp_app_topic_suggest(const char *ns, const char *name, const char *pool, const char *team,
                          const char *app, int access, kp_buf_t *out);

/* ---- consume -f ---- */

/* One consumed message, as the format sees it. key/value NULL for a null key/value. */
typedef struct kp_app_record {
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms; /* -1: none */
    const void *key;
    size_t key_len;
    const void *value;
    size_t value_len;
} kp_app_record_t;

/* The format of `consume -f`, kcat's subset: %s value, %k key, %t topic, %p partition,
 * %o offset, %T timestamp (ms), %S value size, %K key size (-1 when null), %% a percent;
 * \n, \t, \r and \\ escapes. Bytes are written as they are. 0, or -1 with err naming
 * the unknown directive or escape. */
int kp_app_format_check(const char *fmt, char *err, size_t errlen);
/* Appends r rendered with fmt (checked), plus a newline unless fmt ends with one. */
void kp_app_format_render(const char *fmt, const kp_app_record_t *r, kp_buf_t *out);

/* ---- text from the server ---- */

/* Appends s with control characters replaced by spaces (a server cannot drive the
 * terminal). NULL appends "<none>". */
void kp_app_text_clean(const char *s, kp_buf_t *out);

/* Appends one line per status.conditions[] entry of obj: "<indent>type=T status=S
 * reason=R: message (lastUpdateTime)", cleaned; "<indent>(no conditions)" when none. */
void kp_app_conditions_render(const json_t *obj, const char *indent, kp_buf_t *out);

/* Appends the one condition that explains a failure, as "Type/Reason: message": the first
 * AivenFailure / LocalFailure whose status is "True", else a Succeeded whose status is not
 * "True", else any other condition with a message (a Succeeded "True" explains nothing).
 * Returns 0 when there is no such condition (nothing appended). */
int kp_app_condition_reason(const json_t *obj, kp_buf_t *out);

#endif

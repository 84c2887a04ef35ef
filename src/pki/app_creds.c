/*
 * app_creds.c — the pure parts of the application-facing commands (see app_creds.h):
 * base64 and secrets · shell quoting and the environment · credentials from the
 * environment · ACLs and topic names · consume -f · text from the server.
 */
#include "pki/app_creds.h"

#include "pki/pki.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- base64 and secrets ---- */

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

int kp_app_base64_decode(const char *in, size_t len, kp_buf_t *out)
{
    kp_buf_reset(out);
    uint32_t acc = 0;
    int nbits = 0, pad = 0;
    size_t nchars = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
        nchars++;
        if (c == '=') {
            pad++;
            continue;
        }
        int v = b64_value(c);
        if (v < 0 || pad) return -1; /* a character after padding */
        acc = (acc << 6) | (uint32_t)v;
        nbits += 6;
        if (nbits >= 8) {
            nbits -= 8;
            uint8_t byte = (uint8_t)(acc >> nbits);
            kp_buf_append(out, &byte, 1);
        }
    }
    if (nchars % 4 || pad > 2) return -1;
    /* the leftover bits of the last group must be zero (canonical encoding) */
    if (nbits && (acc & ((1u << nbits) - 1))) return -1;
    return 0;
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

int kp_app_key_is_binary(const char *key)
{
    return has_suffix(key, ".p12") || has_suffix(key, ".jks");
}

int kp_app_value_is_text(const uint8_t *v, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        uint8_t c = v[i];
        if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) return 0;
    }
    return 1;
}

int kp_app_env_name_valid(const char *name)
{
    if (!name || !*name || (*name >= '0' && *name <= '9')) return 0;
    for (const char *p = name; *p; p++) {
        char c = *p;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return 0;
    }
    return 1;
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const kp_app_entry_t *)a)->key, ((const kp_app_entry_t *)b)->key);
}

int kp_app_secret_decode(const json_t *secret, kp_app_secret_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    json_t *data = json_object_get(secret, "data");
    if (!data || json_is_null(data)) return 0;
    if (!json_is_object(data)) {
        snprintf(err, errlen, "the secret's data is not an object");
        return -1;
    }
    if (json_object_size(data) > KP_APP_SECRET_KEYS_MAX) {
        snprintf(err, errlen, "the secret has %zu keys (at most %d are accepted)",
                 json_object_size(data), KP_APP_SECRET_KEYS_MAX);
        return -1;
    }
    out->entries = kp_xcalloc(json_object_size(data) + 1, sizeof(*out->entries));
    const char *key;
    json_t *v;
    kp_buf_t b;
    kp_buf_init(&b);
    json_object_foreach(data, key, v)
    {
        const char *s = json_string_value(v);
        /* names are printed in this message: keep them short and clean */
        if (!s) {
            snprintf(err, errlen, "the secret's key %.64s is not a string", key);
            goto fail;
        }
        if (json_string_length(v) / 4 * 3 > KP_APP_VALUE_BYTES_MAX) {
            snprintf(err, errlen, "the secret's key %.64s is larger than %d bytes", key,
                     KP_APP_VALUE_BYTES_MAX);
            goto fail;
        }
        if (kp_app_base64_decode(s, json_string_length(v), &b) < 0) {
            snprintf(err, errlen, "the secret's key %.64s is not valid base64", key);
            goto fail;
        }
        kp_app_entry_t *e = &out->entries[out->n++];
        e->key = kp_xstrdup(key);
        e->len = b.len;
        e->value = kp_xmalloc(b.len + 1);
        if (b.len) memcpy(e->value, b.data, b.len);
        e->value[b.len] = '\0';
        e->binary = kp_app_key_is_binary(key) || !kp_app_value_is_text(e->value, e->len);
    }
    if (b.data) memset(b.data, 0, b.cap);
    kp_buf_free(&b);
    if (out->n) qsort(out->entries, out->n, sizeof(*out->entries), entry_cmp);
    return 0;
fail:
    if (b.data) memset(b.data, 0, b.cap);
    kp_buf_free(&b);
    for (char *p = err; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = ' ';
    kp_app_secret_free(out);
    return -1;
}

void kp_app_secret_free(kp_app_secret_t *s)
{
    for (size_t i = 0; i < s->n; i++) {
        memset(s->entries[i].value, 0, s->entries[i].len);
        free(s->entries[i].value);
        free(s->entries[i].key);
    }
    free(s->entries);
    memset(s, 0, sizeof(*s));
}

const kp_app_entry_t *kp_app_secret_get(const kp_app_secret_t *s, const char *key)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->entries[i].key, key)) return &s->entries[i];
    return NULL;
}

const char *kp_app_secret_text(const kp_app_secret_t *s, const char *key)
{
    const kp_app_entry_t *e = kp_app_secret_get(s, key);
    return e && !e->binary ? (const char *)e->value : NULL;
}

/* ---- shell and environment ---- */

void kp_app_shell_quote(const char *s, size_t len, kp_buf_t *out)
{
    kp_buf_append(out, "'", 1);
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\'')
            kp_buf_append(out, "'\\''", 4);
        else
            kp_buf_append(out, &s[i], 1);
    }
    kp_buf_append(out, "'", 1);
}

const kp_app_file_t kp_app_files[KP_APP_FILES_COUNT] = {
    {"KAFKA_CERTIFICATE", "kafka.crt", "KAFKA_CERTIFICATE_PATH"},
    {"KAFKA_PRIVATE_KEY", "kafka.key", "KAFKA_PRIVATE_KEY_PATH"},
    {"KAFKA_CA", "ca.crt", "KAFKA_CA_PATH"},
    {"client.keystore.p12", "client.keystore.p12", "KAFKA_KEYSTORE_PATH"},
    {"client.truststore.jks", "client.truststore.jks", "KAFKA_TRUSTSTORE_PATH"},
};

static void env_add(kp_app_env_t *env, const char *name, const char *value)
{
    env->names = kp_xrealloc(env->names, (env->n + 1) * sizeof(char *));
    env->values = kp_xrealloc(env->values, (env->n + 1) * sizeof(char *));
    env->names[env->n] = kp_xstrdup(name);
    env->values[env->n] = kp_xstrdup(value);
    env->n++;
}

void kp_app_env_build(const kp_app_secret_t *s, const char *dir, kp_app_env_t *env)
{
    memset(env, 0, sizeof(*env));
    kp_buf_init(&env->skipped);
    for (size_t i = 0; i < s->n; i++) {
        const kp_app_entry_t *e = &s->entries[i];
        if (e->binary || !kp_app_env_name_valid(e->key) ||
            strncmp(e->key, KP_APP_ENV_PREFIX, strlen(KP_APP_ENV_PREFIX))) {
            if (env->skipped.len) kp_buf_append(&env->skipped, ", ", 2);
            kp_app_text_clean(e->key, &env->skipped);
            continue;
        }
        env_add(env, e->key, (const char *)e->value);
    }
    if (!dir) return;
    for (size_t i = 0; i < KP_APP_FILES_COUNT; i++) {
        if (!kp_app_secret_get(s, kp_app_files[i].key)) continue;
        kp_buf_t p;
        kp_buf_init(&p);
        kp_buf_appendf(&p, "%s/%s", dir, kp_app_files[i].file);
        kp_buf_append(&p, "", 1);
        env_add(env, kp_app_files[i].path_var, (const char *)p.data);
        kp_buf_free(&p);
    }
}

void kp_app_env_free(kp_app_env_t *env)
{
    for (size_t i = 0; i < env->n; i++) {
        memset(env->values[i], 0, strlen(env->values[i]));
        free(env->values[i]);
        free(env->names[i]);
    }
    free(env->names);
    free(env->values);
    kp_buf_free(&env->skipped);
    memset(env, 0, sizeof(*env));
}

void kp_app_env_render(const kp_app_env_t *env, kp_buf_t *out)
{
    for (size_t i = 0; i < env->n; i++) {
        kp_buf_appendf(out, "export %s=", env->names[i]);
        kp_app_shell_quote(env->values[i], strlen(env->values[i]), out);
        kp_buf_append(out, "\n", 1);
    }
}

/* ---- credentials from the environment ---- */

/* The value of name in envp; NULL when it is unset or empty (the same thing to a probe). */
static const char *env_lookup(char *const *envp, const char *name)
{
    size_t n = strlen(name);
    for (char *const *e = envp; e && *e; e++)
        if (!strncmp(*e, name, n) && (*e)[n] == '=') return (*e)[n + 1] ? *e + n + 1 : NULL;
    return NULL;
}

/* Where one PEM of the credentials may come from, in the order tried. */
typedef struct env_pem {
    const char *key;       /* the variable holding the PEM itself (and the secret's key) */
    const char *path_var;  /* the variable naming a PEM file */
    const char *store_var; /* the variable naming a PKCS#12 store */
    const char *what;      /* for messages */
} env_pem_t;

enum { ENV_CERT, ENV_KEY, ENV_CA, ENV_PEMS };

static const env_pem_t env_pems[ENV_PEMS] = {
    {"KAFKA_CERTIFICATE", "KAFKA_CERTIFICATE_PATH", "KAFKA_KEYSTORE_PATH", "client certificate"},
    {"KAFKA_PRIVATE_KEY", "KAFKA_PRIVATE_KEY_PATH", "KAFKA_KEYSTORE_PATH", "private key"},
    {"KAFKA_CA", "KAFKA_CA_PATH", "KAFKA_TRUSTSTORE_PATH", "CA certificate"},
};

/* A parse in progress. */
typedef struct env_parse {
    char *const *envp;
    kp_app_file_read_fn read_file;
    void *ctx;
    kp_pki_p12_contents_t stores[2]; /* [0] the keystore, [1] the truststore, once opened */
    int opened[2];
    char *pem[ENV_PEMS]; /* owned; wiped when freed */
    const char *from[ENV_PEMS];
} env_parse_t;

/* Characters of a path shown in a message: enough for any real one, and a hostile value
 * cannot push the rest of the line out. */
#define ENV_PATH_SHOWN_MAX 256

/* "VAR", or "VAR (<path>)" for a *_PATH variable (the path cleaned and cut), into buf. */
static const char *env_source(const env_parse_t *p, const char *var, char *buf, size_t buflen)
{
    const char *v = env_lookup(p->envp, var);
    if (!v || !strstr(var, "_PATH")) {
        snprintf(buf, buflen, "%s", var);
        return buf;
    }
    kp_buf_t b;
    kp_buf_init(&b);
    kp_app_text_clean(v, &b);
    int cut = b.len > ENV_PATH_SHOWN_MAX;
    snprintf(buf, buflen, "%s (%.*s%s)", var, cut ? ENV_PATH_SHOWN_MAX : (int)b.len,
             (const char *)b.data, cut ? "..." : "");
    kp_buf_free(&b);
    return buf;
}

/* The file named by var into out. -1 with err. */
static int env_file_read(env_parse_t *p, const char *var, kp_buf_t *out, char *err, size_t errlen)
{
    char why[256], src[512];
    if (p->read_file(p->ctx, env_lookup(p->envp, var), KP_APP_VALUE_BYTES_MAX, out, why,
                     sizeof(why)) < 0) {
        snprintf(err, errlen, "cannot read %s: %s", env_source(p, var, src, sizeof(src)), why);
        return -1;
    }
    return 0;
}

/* The store var names (which: 0 keystore, 1 truststore), opened once. NULL with err. */
static const kp_pki_p12_contents_t *env_store(env_parse_t *p, int which, const char *var, char *err,
                                              size_t errlen)
{
    if (p->opened[which]) return &p->stores[which];
    char src[512], why[512];
    env_source(p, var, src, sizeof(src));
    const char *password = env_lookup(p->envp, "KAFKA_CREDSTORE_PASSWORD");
    if (!password) {
        snprintf(err, errlen, "%s is set but KAFKA_CREDSTORE_PASSWORD, its password, is not", src);
        return NULL;
    }
    kp_buf_t der;
    kp_buf_init(&der);
    int rc = env_file_read(p, var, &der, err, errlen);
    if (rc == 0 && (rc = kp_pki_pkcs12_open(der.data, der.len, password, &p->stores[which], why,
                                            sizeof(why))) < 0)
        snprintf(err, errlen, "%s with KAFKA_CREDSTORE_PASSWORD: %s", src, why);
    kp_pki_buf_wipe(&der);
    if (rc < 0) return NULL;
    p->opened[which] = 1;
    return &p->stores[which];
}

/* PEM i from the first of its sources that is set. -1 with err. */
static int env_pem_take(env_parse_t *p, int i, char *err, size_t errlen)
{
    const env_pem_t *d = &env_pems[i];
    const char *v = env_lookup(p->envp, d->key);
    char src[512];
    if (v) {
        if (strlen(v) > KP_APP_VALUE_BYTES_MAX) {
            snprintf(err, errlen, "%s is larger than %d bytes", d->key, KP_APP_VALUE_BYTES_MAX);
            return -1;
        }
        p->pem[i] = kp_xstrdup(v);
        p->from[i] = d->key;
        return 0;
    }
    if (env_lookup(p->envp, d->path_var)) {
        kp_buf_t b;
        kp_buf_init(&b);
        int rc = env_file_read(p, d->path_var, &b, err, errlen);
        if (rc == 0 && !kp_app_value_is_text(b.data, b.len)) {
            snprintf(err, errlen, "%s: not a PEM file (it holds binary data)",
                     env_source(p, d->path_var, src, sizeof(src)));
            rc = -1;
        }
        if (rc == 0) {
            p->pem[i] = kp_xstrndup((const char *)b.data, b.len);
            p->from[i] = d->path_var;
        }
        kp_pki_buf_wipe(&b);
        return rc;
    }
    if (env_lookup(p->envp, d->store_var)) {
        const kp_pki_p12_contents_t *st = env_store(p, i == ENV_CA, d->store_var, err, errlen);
        if (!st) return -1;
        const char *pem = i == ENV_CERT  ? st->cert_pem
                          : i == ENV_KEY ? st->key_pem
                                         : st->others_pem;
        if (!pem) {
            snprintf(err, errlen, "%s holds no %s", env_source(p, d->store_var, src, sizeof(src)),
                     d->what);
            return -1;
        }
        p->pem[i] = kp_xstrdup(pem);
        p->from[i] = d->store_var;
        return 0;
    }
    snprintf(err, errlen, "no %s in the environment: none of %s, %s and %s is set", d->what, d->key,
             d->path_var, d->store_var);
    return -1;
}

/* The certificates parse and the key is the client certificate's; subject filled. */
static int env_pems_check(env_parse_t *p, char *subject, size_t subject_len, char *err,
                          size_t errlen)
{
    kp_pki_cert_info_t info[2];
    char why[512], src[512];
    static const int certs[2] = {ENV_CERT, ENV_CA};
    for (int j = 0; j < 2; j++) {
        if (kp_pki_cert_info(p->pem[certs[j]], &info[j], why, sizeof(why)) < 0) {
            snprintf(err, errlen, "%s: %s", env_source(p, p->from[certs[j]], src, sizeof(src)),
                     why);
            return -1;
        }
    }
    snprintf(subject, subject_len, "%s", info[0].subject);
    if (kp_pki_key_matches(p->pem[ENV_CERT], p->pem[ENV_KEY], why, sizeof(why)) < 0) {
        env_source(p, p->from[ENV_KEY], src, sizeof(src));
        if (strstr(why, "does not belong")) /* (OpenSSL's reason adds nothing here) */
            snprintf(err, errlen, "%s: the private key does not belong to the certificate (%s)",
                     src, p->from[ENV_CERT]);
        else
            snprintf(err, errlen, "%s: %s", src, why);
        return -1;
    }
    return 0;
}

static void env_put(kp_app_secret_t *s, const char *key, const char *value)
{
    kp_app_entry_t *e = &s->entries[s->n++];
    e->key = kp_xstrdup(key);
    e->len = strlen(value);
    e->value = (uint8_t *)kp_xstrdup(value);
}

int kp_app_env_creds_parse(char *const *envp, kp_app_file_read_fn read_file, void *ctx,
                           kp_app_env_creds_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    env_parse_t p = {.envp = envp, .read_file = read_file, .ctx = ctx};
    int rc = -1;
    const char *brokers = env_lookup(envp, "KAFKA_BROKERS");
    if (!brokers) {
        snprintf(err, errlen,
                 "KAFKA_BROKERS is not set: this environment holds no Kafka "
                 "credentials (the platform sets them in the application's pod, "
                 "'kpool run' for its command)");
        goto done;
    }
    size_t brokers_len = strlen(brokers);
    if (brokers_len > KP_APP_VALUE_BYTES_MAX ||
        !kp_app_value_is_text((const uint8_t *)brokers, brokers_len) ||
        strpbrk(brokers, "\t\r\n")) {
        snprintf(err, errlen, "KAFKA_BROKERS is not a list of host:port");
        goto done;
    }
    for (int i = 0; i < ENV_PEMS; i++)
        if (env_pem_take(&p, i, err, errlen) < 0) goto done;
    if (env_pems_check(&p, out->subject, sizeof(out->subject), err, errlen) < 0) goto done;
    const char *streams = env_lookup(envp, "KAFKA_STREAMS_APPLICATION_ID");
    out->data.entries = kp_xcalloc(ENV_PEMS + 2, sizeof(*out->data.entries));
    env_put(&out->data, "KAFKA_BROKERS", brokers);
    for (int i = 0; i < ENV_PEMS; i++) env_put(&out->data, env_pems[i].key, p.pem[i]);
    if (streams) env_put(&out->data, "KAFKA_STREAMS_APPLICATION_ID", streams);
    qsort(out->data.entries, out->data.n, sizeof(*out->data.entries), entry_cmp);
    out->cert_from = p.from[ENV_CERT];
    out->key_from = p.from[ENV_KEY];
    out->ca_from = p.from[ENV_CA];
    rc = 0;
done:
    for (int i = 0; i < ENV_PEMS; i++) kp_pki_secret_free(p.pem[i]);
    for (int i = 0; i < 2; i++) kp_pki_p12_contents_free(&p.stores[i]);
    if (rc < 0) {
        kp_app_env_creds_free(out);
        for (char *c = err; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = ' ';
    }
    return rc;
}

void kp_app_env_creds_free(kp_app_env_creds_t *c)
{
    kp_app_secret_free(&c->data);
    memset(c, 0, sizeof(*c));
}

/* ---- ACLs and topics ---- */

int kp_app_glob_match(const char *p, const char *s)
{
    const char *star = NULL, *resume = NULL;
    while (*s) {
        if (*p == '*') {
            star = p++;
            resume = s;
        } else if (*p == *s) {
            p++;
            s++;
        } else if (star) {
            /* let the last '*' swallow one more character and retry from there */
            p = star + 1;
            s = ++resume;
        } else {
            return 0;
        }
    }
    while (*p == '*') p++;
    return !*p;
}

int kp_app_access_parse(const char *s)
{
    if (!s) return 0;
    if (!strcmp(s, "read")) return KP_APP_ACCESS_READ;
    if (!strcmp(s, "write")) return KP_APP_ACCESS_WRITE;
    if (!strcmp(s, "readwrite")) return KP_APP_ACCESS_RW;
    return 0;
}

const char *kp_app_access_name(int access)
{
    switch (access & KP_APP_ACCESS_RW) {
    case KP_APP_ACCESS_READ:
        return "read";
    case KP_APP_ACCESS_WRITE:
        return "write";
    case KP_APP_ACCESS_RW:
        return "readwrite";
    default:
        return "none";
    }
}

int kp_app_acl_access(const json_t *acl, const char *team, const char *app)
{
    int access = 0;
    size_t i;
    json_t *a;
    json_array_foreach(acl, i, a)
    {
        const char *t = json_string_value(json_object_get(a, "team"));
        const char *ap = json_string_value(json_object_get(a, "application"));
        if (!t || !ap || !kp_app_glob_match(t, team) || !kp_app_glob_match(ap, app)) continue;
        access |= kp_app_access_parse(json_string_value(json_object_get(a, "access")));
    }
    return access;
}

static const char *meta_str(const json_t *obj, const char *field)
{
    return json_string_value(json_object_get(json_object_get(obj, "metadata"), field));
}

const char *kp_app_topic_fqn(const json_t *topic, char *buf, size_t buflen)
{
    const char *fqn =
        json_string_value(json_object_get(json_object_get(topic, "status"), "fullyQualifiedName"));
    const char *ns = meta_str(topic, "namespace"), *name = meta_str(topic, "name");
    if (fqn && *fqn)
        snprintf(buf, buflen, "%s", fqn);
    else if (ns && name)
        snprintf(buf, buflen, "%s.%s", ns, name);
    else
        return NULL;
    return buf;
}

kp_app_topic_match_t kp_app_topic_resolve(const json_t *topics, const char *ns, const char *name,
                                          const json_t **found)
{
    char fqn[512];
    size_t i;
    json_t *t;
    *found = NULL;
    json_array_foreach(topics, i, t)
    {
        const char *f = kp_app_topic_fqn(t, fqn, sizeof(fqn));
        if (f && !strcmp(f, name)) {
            *found = t;
            return KP_APP_TOPIC_FQN;
        }
    }
    json_array_foreach(topics, i, t)
    {
        const char *tns = meta_str(t, "namespace"), *tname = meta_str(t, "name");
        if (tns && tname && !strcmp(tns, ns) && !strcmp(tname, name)) {
            *found = t;
            return KP_APP_TOPIC_SHORT;
        }
    }
    json_array_foreach(topics, i, t)
    {
        const char *tname = meta_str(t, "name");
        if (tname && !strcmp(tname, name)) {
            *found = t;
            return KP_APP_TOPIC_SHORT_ELSEWHERE;
        }
    }
    return strchr(name, '.') ? KP_APP_TOPIC_FQN_MISSING : KP_APP_TOPIC_UNKNOWN;
}

json_t *kp_app_topics_granted(const json_t *topics, const char *team, const char *app,
                              const char *pool)
{
    json_t *out = json_array();
    char fqn[512];
    size_t i;
    json_t *t;
    json_array_foreach(topics, i, t)
    {
        if (meta_str(t, "deletionTimestamp")) continue;
        json_t *spec = json_object_get(t, "spec");
        const char *tpool = json_string_value(json_object_get(spec, "pool"));
        if (pool && tpool && strcmp(pool, tpool)) continue;
        int access = kp_app_acl_access(json_object_get(spec, "acl"), team, app);
        if (!access || !kp_app_topic_fqn(t, fqn, sizeof(fqn))) continue;
        json_array_append_new(
            out, json_pack("{s:s, s:i, s:O}", "fqn", fqn, "access", access, "topic", t));
    }
    return out;
}

/* A YAML 1.2 plain scalar that would not read back as this string. */
static int yaml_needs_quotes(const char *s)
{
    static const char *const words[] = {"true", "false", "null", "yes", "no", "on", "off", "~"};
    if (!*s) return 1;
    for (size_t i = 0; i < sizeof(words) / sizeof(*words); i++)
        if (!strcasecmp(s, words[i])) return 1;
    for (const char *p = s; *p; p++)
        if (strchr(":#{}[],&*!|>'\"%@`\\", *p) || (unsigned char)*p < 0x20) return 1;
    /* numbers (123, 0x1f, -1, .5, .inf) and indicators at the start */
    if ((*s >= '0' && *s <= '9') || *s == '.' || *s == '-' || *s == '+' || *s == '?') return 1;
    return s[strlen(s) - 1] == ' ' || *s == ' ';
}

static void yaml_scalar(const char *s, kp_buf_t *out)
{
    if (!yaml_needs_quotes(s)) {
        kp_buf_append(out, s, strlen(s));
        return;
    }
    kp_buf_append(out, "\"", 1);
    for (const char *p = s; *p; p++) {
        if (*p == '"' || *p == '\\') kp_buf_append(out, "\\", 1);
        if ((unsigned char)*p < 0x20)
            kp_buf_appendf(out, "\\x%02x", (unsigned char)*p);
        else
            kp_buf_append(out, p, 1);
    }
    kp_buf_append(out, "\"", 1);
}

void kp_app_acl_suggest(const char *team, const char *app, int access, const char *indent,
                        kp_buf_t *out)
{
    kp_buf_appendf(out, "%s- team: ", indent);
    yaml_scalar(team, out);
    kp_buf_appendf(out, "\n%s  application: ", indent);
    yaml_scalar(app, out);
    kp_buf_appendf(out, "\n%s  access: %s\n", indent,
                   kp_app_access_name(access ? access : KP_APP_ACCESS_RW));
}

void kp_app_topic_suggest(const char *ns, const char *name, const char *pool, const char *team,
                          const char *app, int access, kp_buf_t *out)
{
    kp_buf_appendf(out, "apiVersion: kafka.nais.io/v1\nkind: Topic\nmetadata:\n  name: ");
    yaml_scalar(name, out);
    kp_buf_appendf(out, "\n  namespace: ");
    yaml_scalar(ns, out);
    kp_buf_appendf(out, "\nspec:\n  pool: ");
    yaml_scalar(pool ? pool : "dev", out);
    kp_buf_appendf(out, "\n  acl:\n");
    kp_app_acl_suggest(team, app, access, "    ", out);
}

/* ---- consume -f ---- */

int kp_app_format_check(const char *fmt, char *err, size_t errlen)
{
    for (const char *p = fmt; *p; p++) {
        if (*p != '%' && *p != '\\') continue;
        const char *set = *p == '%' ? "skptoTSK%" : "ntr\\";
        if (!p[1] || !strchr(set, p[1])) {
            snprintf(err, errlen, "unknown %s '%c%.1s' in the format (%s)",
                     *p == '%' ? "directive" : "escape", *p, p + 1,
                     *p == '%' ? "%s %k %t %p %o %T %S %K %%" : "\\n \\t \\r \\\\");
            return -1;
        }
        p++;
    }
    return 0;
}

void kp_app_format_render(const char *fmt, const kp_app_record_t *r, kp_buf_t *out)
{
    int last_newline = 0;
    for (const char *p = fmt; *p; p++) {
        last_newline = 0;
        if (*p == '\\' && p[1]) {
            p++;
            char c = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p == 'r' ? '\r' : '\\';
            kp_buf_append(out, &c, 1);
            last_newline = c == '\n';
            continue;
        }
        if (*p != '%' || !p[1]) {
            kp_buf_append(out, p, 1);
            last_newline = *p == '\n';
            continue;
        }
        switch (*++p) {
        case 's':
            if (r->value) kp_buf_append(out, r->value, r->value_len);
            break;
        case 'k':
            if (r->key) kp_buf_append(out, r->key, r->key_len);
            break;
        case 't':
            kp_buf_appendf(out, "%s", r->topic);
            break;
        case 'p':
            kp_buf_appendf(out, "%d", (int)r->partition);
            break;
        case 'o':
            kp_buf_appendf(out, "%lld", (long long)r->offset);
            break;
        case 'T':
            kp_buf_appendf(out, "%lld", (long long)r->timestamp_ms);
            break;
        case 'S':
            kp_buf_appendf(out, "%lld", r->value ? (long long)r->value_len : -1LL);
            break;
        case 'K':
            kp_buf_appendf(out, "%lld", r->key ? (long long)r->key_len : -1LL);
            break;
        default: /* %% (and anything kp_app_format_check would have refused) */
            kp_buf_append(out, p, 1);
        }
    }
    if (!last_newline) kp_buf_append(out, "\n", 1);
}

/* ---- text from the server ---- */

void kp_app_text_clean(const char *s, kp_buf_t *out)
{
    if (!s) s = "<none>";
    for (const char *p = s; *p; p++) {
        char c = ((unsigned char)*p < 0x20 || *p == 0x7f) ? ' ' : *p;
        kp_buf_append(out, &c, 1);
    }
}

static const char *cond_str(const json_t *c, const char *field)
{
    return json_string_value(json_object_get(c, field));
}

void kp_app_conditions_render(const json_t *obj, const char *indent, kp_buf_t *out)
{
    json_t *conds = json_object_get(json_object_get(obj, "status"), "conditions");
    if (!json_array_size(conds)) {
        kp_buf_appendf(out, "%s(no conditions)\n", indent);
        return;
    }
    size_t i;
    json_t *c;
    json_array_foreach(conds, i, c)
    {
        kp_buf_appendf(out, "%stype=", indent);
        kp_app_text_clean(cond_str(c, "type"), out);
        kp_buf_append(out, " status=", 8);
        kp_app_text_clean(cond_str(c, "status"), out);
        kp_buf_append(out, " reason=", 8);
        kp_app_text_clean(cond_str(c, "reason"), out);
        if (cond_str(c, "message")) {
            kp_buf_append(out, ": ", 2);
            kp_app_text_clean(cond_str(c, "message"), out);
        }
        if (cond_str(c, "lastUpdateTime")) {
            kp_buf_append(out, " (", 2);
            kp_app_text_clean(cond_str(c, "lastUpdateTime"), out);
            kp_buf_append(out, ")", 1);
        }
        kp_buf_append(out, "\n", 1);
    }
}

int kp_app_condition_reason(const json_t *obj, kp_buf_t *out)
{
    json_t *conds = json_object_get(json_object_get(obj, "status"), "conditions");
    const json_t *pick = NULL;
    for (int pass = 0; pass < 3 && !pick; pass++) {
        size_t i;
        json_t *c;
        json_array_foreach(conds, i, c)
        {
            const char *type = cond_str(c, "type"), *status = cond_str(c, "status");
            const char *msg = cond_str(c, "message");
            int is_true = status && !strcmp(status, "True");
            int succeeded = type && !strcmp(type, "Succeeded");
            if ((pass == 0 && type && is_true &&
                 (!strcmp(type, "AivenFailure") || !strcmp(type, "LocalFailure"))) ||
                (pass == 1 && succeeded && !is_true) ||
                (pass == 2 && msg && *msg && !(succeeded && is_true))) {
                pick = c;
                break;
            }
        }
    }
    if (!pick) return 0;
    kp_app_text_clean(cond_str(pick, "type"), out);
    kp_buf_append(out, "/", 1);
    kp_app_text_clean(cond_str(pick, "reason"), out);
    if (cond_str(pick, "message") && *cond_str(pick, "message")) {
        kp_buf_append(out, ": ", 2);
        kp_app_text_clean(cond_str(pick, "message"), out);
    }
    return 1;
}

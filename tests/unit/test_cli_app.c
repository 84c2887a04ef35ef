/*
 * test_cli_app.c — the pure parts of the application-facing commands (src/pki/app_creds.c):
 * base64 and secret decoding, shell quoting (round-tripped through a POSIX single-quote
 * reader), the environment `kpool run` / `secret env` build, the credentials `probe
 * --from-env` takes from such an environment (values, files and PKCS#12 stores, through a
 * fake file reader; every error names the variable and never a value), NAIS ACL wildcards, fully
 * qualified topic names and their resolution, the YAML `kpool doctor` suggests (parsed back
 * with the project's YAML reader), AivenApplication conditions and the consume format.
 * The commands themselves run against a fake API and a real TLS broker in
 * tests/integration/test_cli_app.py.
 */
#include "unit.h"

#include "pki/app_creds.h"
#include "core/yamljson.h"
#include "pki/pki.h"

#include <jansson.h>

static json_t *fixture(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    if (!v) fprintf(stderr, "fixture: %s (line %d)\n", e.text, e.line);
    assert_non_null(v);
    return v;
}

/* The buffer as a NUL-terminated string (appends the NUL). */
static const char *str_of(kp_buf_t *b)
{
    kp_buf_append(b, "", 1);
    b->len--;
    return (const char *)b->data;
}

/* ---- base64 ---- */

static void test_base64(void **state)
{
    static const struct {
        const char *in, *out;
    } ok[] = {
        {"", ""},
        {"Zg==", "f"},
        {"Zm8=", "fo"},
        {"Zm9v", "foo"},
        {"Zm9vYg==", "foob"},
        {"Zm9vYmE=", "fooba"},
        {"Zm9vYmFy", "foobar"},
        {"Zm9v\nYmFy\n", "foobar"},
        {" Zm9v YmFy\r\n", "foobar"},
    };
    kp_buf_t b;
    kp_buf_init(&b);
    for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++) {
        assert_int_equal(kp_app_base64_decode(ok[i].in, strlen(ok[i].in), &b), 0);
        assert_int_equal(b.len, strlen(ok[i].out));
        if (b.len) assert_memory_equal(b.data, ok[i].out, b.len);
    }
    /* every byte value survives */
    uint8_t all[256];
    for (int i = 0; i < 256; i++) all[i] = (uint8_t)i;
    static const char *const all_b64 =
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+P0BB"
        "QkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn+AgYKD"
        "hIWGh4iJiouMjY6PkJGSk5SVlpeYmZqbnJ2en6ChoqOkpaanqKmqq6ytrq+wsbKztLW2t7i5uru8vb6/wMHCw8TF"
        "xsfIycrLzM3Oz9DR0tPU1dbX2Nna29zd3t/g4eLj5OXm5+jp6uvs7e7v8PHy8/T19vf4+fr7/P3+/w==";
    assert_int_equal(kp_app_base64_decode(all_b64, strlen(all_b64), &b), 0);
    assert_int_equal(b.len, 256);
    assert_memory_equal(b.data, all, 256);
    static const char *const bad[] = {
        "Zg",       /* length not a multiple of 4 */
        "Zg=",      /* idem */
        "Z===",     /* three padding characters */
        "Zg=a",     /* data after padding */
        "Zh==",     /* non-canonical: leftover bits set */
        "Zm9v!mFy", /* not in the alphabet */
        "Zm9v-_==", /* base64url is not base64 */
        "=Zm9",     /* padding first */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        assert_int_equal(kp_app_base64_decode(bad[i], strlen(bad[i]), &b), -1);
    kp_buf_free(&b);
}

/* ---- secrets ---- */

/* A Secret as the API serves it (docs/api.md): values base64. */
#define SECRET_JSON                                                                                \
    "{\"kind\": \"Secret\", \"metadata\": {\"name\": \"s\", \"namespace\": \"team-a\"},"           \
    " \"data\": {"                                                                                 \
    "\"KAFKA_CA\": "                                                                               \
    "\"LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCkNBCi0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K\","            \
    "\"KAFKA_BROKERS\": \"MTI3LjAuMC4xOjkwOTM=\","                                                 \
    "\"client.keystore.p12\": \"MIIK\","                                                           \
    "\"client.truststore.jks\": \"dGV4dCBidXQgamtz\","                                             \
    "\"KAFKA_CREDSTORE_PASSWORD\": \"aXQncyBzZWNyZXQ=\","                                          \
    "\"BINARY_VALUE\": \"AAEC\","                                                                  \
    "\"my-key\": \"dmFsdWU=\"}}"

static void test_secret_decode(void **state)
{
    json_t *obj = fixture(SECRET_JSON);
    kp_app_secret_t s;
    char err[256];
    assert_int_equal(kp_app_secret_decode(obj, &s, err, sizeof(err)), 0);
    assert_int_equal(s.n, 7);
    /* sorted in byte order: upper case before lower case */
    static const char *const order[] = {
        "BINARY_VALUE",        "KAFKA_BROKERS",         "KAFKA_CA", "KAFKA_CREDSTORE_PASSWORD",
        "client.keystore.p12", "client.truststore.jks", "my-key"};
    for (size_t i = 0; i < 7; i++) assert_string_equal(s.entries[i].key, order[i]);
    assert_string_equal(kp_app_secret_text(&s, "KAFKA_BROKERS"), "127.0.0.1:9093");
    assert_string_equal(kp_app_secret_text(&s, "KAFKA_CREDSTORE_PASSWORD"), "it's secret");
    assert_string_equal(kp_app_secret_text(&s, "KAFKA_CA"),
                        "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n");
    /* binary: by name (.p12, .jks, even when the bytes are text), and by content */
    assert_true(kp_app_secret_get(&s, "client.keystore.p12")->binary);
    assert_true(kp_app_secret_get(&s, "client.truststore.jks")->binary);
    assert_true(kp_app_secret_get(&s, "BINARY_VALUE")->binary);
    assert_int_equal(kp_app_secret_get(&s, "BINARY_VALUE")->len, 3);
    assert_null(kp_app_secret_text(&s, "client.truststore.jks"));
    assert_null(kp_app_secret_text(&s, "BINARY_VALUE"));
    assert_null(kp_app_secret_get(&s, "KAFKA_PRIVATE_KEY"));
    kp_app_secret_free(&s);
    assert_int_equal(s.n, 0);
    assert_null(s.entries);
    json_decref(obj);

    /* no data: an empty secret */
    obj = fixture("{\"kind\": \"Secret\"}");
    assert_int_equal(kp_app_secret_decode(obj, &s, err, sizeof(err)), 0);
    assert_int_equal(s.n, 0);
    kp_app_secret_free(&s);
    json_decref(obj);

    static const struct {
        const char *json, *msg;
    } bad[] = {
        {"{\"data\": {\"A\": 1}}", "key A is not a string"},
        {"{\"data\": {\"A\": \"Zg\"}}", "key A is not valid base64"},
        {"{\"data\": [1]}", "data is not an object"},
        {"{\"data\": {\"A\\u0001\\u0002\": \"!!!!\"}}", "key A   is not valid base64"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        obj = fixture(bad[i].json);
        assert_int_equal(kp_app_secret_decode(obj, &s, err, sizeof(err)), -1);
        assert_non_null(strstr(err, bad[i].msg));
        assert_int_equal(s.n, 0);
        json_decref(obj);
    }
}

static void test_value_is_text(void **state)
{
    assert_true(kp_app_value_is_text((const uint8_t *)"a\tb\r\nc", 6));
    assert_true(kp_app_value_is_text((const uint8_t *)"\xc3\xa6\xc3\xb8", 4)); /* UTF-8 */
    assert_true(kp_app_value_is_text((const uint8_t *)"", 0));
    assert_false(kp_app_value_is_text((const uint8_t *)"a\0b", 3));
    assert_false(kp_app_value_is_text((const uint8_t *)"\x1b[2J", 4)); /* escape */
    assert_false(kp_app_value_is_text((const uint8_t *)"\x7f", 1));
    assert_true(kp_app_key_is_binary("client.keystore.p12"));
    assert_true(kp_app_key_is_binary("x.jks"));
    assert_false(kp_app_key_is_binary("p12"));
    assert_false(kp_app_key_is_binary("KAFKA_CA"));
}

/* ---- shell quoting ---- */

/* Reads one POSIX shell word made only of single-quoted parts and \' (what
 * kp_app_shell_quote writes), as sh would. -1 for anything else. */
static int sh_unquote(const char *s, kp_buf_t *out)
{
    kp_buf_reset(out);
    while (*s) {
        if (s[0] == '\\' && s[1] == '\'') {
            kp_buf_append(out, "'", 1);
            s += 2;
        } else if (*s == '\'') {
            const char *end = strchr(s + 1, '\'');
            if (!end) return -1;
            kp_buf_append(out, s + 1, (size_t)(end - s - 1));
            s = end + 1;
        } else {
            return -1; /* an unquoted character the shell would interpret */
        }
    }
    return 0;
}

static void test_shell_quote(void **state)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"", "''"},
        {"abc", "'abc'"},
        {"it's", "'it'\\''s'"},
        {"'", "''\\'''"},
        {"$HOME `id` $(id) \"x\" \\ ; & | * ?", "'$HOME `id` $(id) \"x\" \\ ; & | * ?'"},
        {"-----BEGIN\nA\n-----END\n", "'-----BEGIN\nA\n-----END\n'"},
    };
    kp_buf_t b, back;
    kp_buf_init(&b);
    kp_buf_init(&back);
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        kp_buf_reset(&b);
        kp_app_shell_quote(cases[i].in, strlen(cases[i].in), &b);
        assert_string_equal(str_of(&b), cases[i].out);
    }
    /* random strings of every byte but NUL round-trip */
    ut_rand_t r;
    ut_rand_seed(&r, 42);
    for (int round = 0; round < 2000; round++) {
        char s[64];
        size_t n = (size_t)ut_rand_below(&r, sizeof(s));
        for (size_t i = 0; i < n; i++) {
            s[i] = (char)(1 + ut_rand_below(&r, 255));
            if (ut_rand_below(&r, 4) == 0) s[i] = '\'';
        }
        kp_buf_reset(&b);
        kp_app_shell_quote(s, n, &b);
        assert_int_equal(sh_unquote(str_of(&b), &back), 0);
        assert_int_equal(back.len, n);
        if (n) assert_memory_equal(back.data, s, n);
    }
    kp_buf_free(&b);
    kp_buf_free(&back);
}

/* ---- the environment ---- */

static void test_env_name_valid(void **state)
{
    assert_true(kp_app_env_name_valid("KAFKA_CA"));
    assert_true(kp_app_env_name_valid("_x1"));
    assert_false(kp_app_env_name_valid(""));
    assert_false(kp_app_env_name_valid("1A"));
    assert_false(kp_app_env_name_valid("my-key"));
    assert_false(kp_app_env_name_valid("client.keystore.p12"));
    assert_false(kp_app_env_name_valid("A=B"));
    assert_false(kp_app_env_name_valid(NULL));
}

static void test_env_build(void **state)
{
    json_t *obj = fixture(SECRET_JSON);
    kp_app_secret_t s;
    char err[256];
    assert_int_equal(kp_app_secret_decode(obj, &s, err, sizeof(err)), 0);

    /* secret env: text keys with valid names only, in key order, no paths */
    kp_app_env_t env;
    kp_app_env_build(&s, NULL, &env);
    assert_int_equal(env.n, 3);
    assert_string_equal(env.names[0], "KAFKA_BROKERS");
    assert_string_equal(env.names[1], "KAFKA_CA");
    assert_string_equal(env.names[2], "KAFKA_CREDSTORE_PASSWORD");
    assert_string_equal(str_of(&env.skipped),
                        "BINARY_VALUE, client.keystore.p12, client.truststore.jks, my-key");
    kp_buf_t out;
    kp_buf_init(&out);
    kp_app_env_render(&env, &out);
    assert_string_equal(str_of(&out), "export KAFKA_BROKERS='127.0.0.1:9093'\n"
                                      "export KAFKA_CA='-----BEGIN CERTIFICATE-----\nCA\n"
                                      "-----END CERTIFICATE-----\n'\n"
                                      "export KAFKA_CREDSTORE_PASSWORD='it'\\''s secret'\n");
    kp_app_env_free(&env);

    /* run / secret files: plus the *_PATH of each file whose key the secret holds (this
     * one has no KAFKA_CERTIFICATE / KAFKA_PRIVATE_KEY: no path for them) */
    kp_app_env_build(&s, "/run/user/1/kpool-x", &env);
    assert_int_equal(env.n, 6);
    assert_string_equal(env.names[3], "KAFKA_CA_PATH");
    assert_string_equal(env.values[3], "/run/user/1/kpool-x/ca.crt");
    assert_string_equal(env.names[4], "KAFKA_KEYSTORE_PATH");
    assert_string_equal(env.values[4], "/run/user/1/kpool-x/client.keystore.p12");
    assert_string_equal(env.names[5], "KAFKA_TRUSTSTORE_PATH");
    assert_string_equal(env.values[5], "/run/user/1/kpool-x/client.truststore.jks");
    kp_app_env_free(&env);
    kp_buf_free(&out);
    kp_app_secret_free(&s);
    json_decref(obj);

    /* a complete secret gives the five paths, in the order of SPEC §4 */
    obj = fixture("{\"data\": {\"KAFKA_CERTIFICATE\": \"Yw==\", \"KAFKA_PRIVATE_KEY\": \"aw==\","
                  " \"KAFKA_CA\": \"YQ==\", \"client.keystore.p12\": \"AA==\","
                  " \"client.truststore.jks\": \"AA==\"}}");
    assert_int_equal(kp_app_secret_decode(obj, &s, err, sizeof(err)), 0);
    kp_app_env_build(&s, "/d", &env);
    static const char *const want[][2] = {
        {"KAFKA_CA", "a"},
        {"KAFKA_CERTIFICATE", "c"},
        {"KAFKA_PRIVATE_KEY", "k"},
        {"KAFKA_CERTIFICATE_PATH", "/d/kafka.crt"},
        {"KAFKA_PRIVATE_KEY_PATH", "/d/kafka.key"},
        {"KAFKA_CA_PATH", "/d/ca.crt"},
        {"KAFKA_KEYSTORE_PATH", "/d/client.keystore.p12"},
        {"KAFKA_TRUSTSTORE_PATH", "/d/client.truststore.jks"},
    };
    assert_int_equal(env.n, 8);
    for (size_t i = 0; i < 8; i++) {
        assert_string_equal(env.names[i], want[i][0]);
        assert_string_equal(env.values[i], want[i][1]);
    }
    kp_app_env_free(&env);
    kp_app_secret_free(&s);
    json_decref(obj);

    /* only KAFKA_* keys: a secret cannot set what loads or interprets the program */
    obj = fixture(
        "{\"data\": {\"PATH\": \"L2V2aWw=\", \"LD_PRELOAD\": \"L2V2aWwuc28=\","
        " \"BASH_ENV\": \"L2V2aWw=\", \"KAFKA_STREAMS_APPLICATION_ID\": \"YS5iX3N0cmVhbV8=\","
        " \"KAFKAX\": \"eA==\"}}");
    assert_int_equal(kp_app_secret_decode(obj, &s, err, sizeof(err)), 0);
    kp_app_env_build(&s, NULL, &env);
    assert_int_equal(env.n, 1);
    assert_string_equal(env.names[0], "KAFKA_STREAMS_APPLICATION_ID");
    assert_string_equal(env.values[0], "a.b_stream_");
    assert_string_equal(str_of(&env.skipped), "BASH_ENV, KAFKAX, LD_PRELOAD, PATH");
    kp_app_env_free(&env);
    kp_app_secret_free(&s);
    json_decref(obj);
    /* the files table is SPEC §4's */
    assert_string_equal(kp_app_files[0].file, "kafka.crt");
    assert_string_equal(kp_app_files[1].file, "kafka.key");
    assert_string_equal(kp_app_files[2].file, "ca.crt");
}

/* ---- credentials from the environment ---- */

/* A fake file system for kp_app_env_creds_parse: path -> bytes, and which paths were read. */
typedef struct fake_file {
    const char *path;
    const void *data; /* NULL: the file does not exist */
    size_t len;
} fake_file_t;

typedef struct fake_fs {
    fake_file_t files[8];
    size_t n;
    char reads[512]; /* "path;path;" in the order read */
} fake_fs_t;

static void fake_fs_add(fake_fs_t *fs, const char *path, const void *data, size_t len)
{
    assert_true(fs->n < sizeof(fs->files) / sizeof(*fs->files));
    fs->files[fs->n++] = (fake_file_t){path, data, len};
}

static int fake_read(void *ctx, const char *path, size_t max, kp_buf_t *out, char *err,
                     size_t errlen)
{
    fake_fs_t *fs = ctx;
    size_t used = strlen(fs->reads);
    snprintf(fs->reads + used, sizeof(fs->reads) - used, "%s;", path);
    kp_buf_reset(out);
    for (size_t i = 0; i < fs->n; i++) {
        if (strcmp(fs->files[i].path, path) || !fs->files[i].data) continue;
        if (fs->files[i].len > max) {
            snprintf(err, errlen, "larger than %zu bytes", max);
            return -1;
        }
        kp_buf_append(out, fs->files[i].data, fs->files[i].len);
        return 0;
    }
    snprintf(err, errlen, "No such file or directory");
    return -1;
}

/* An environment being built: "NAME=VALUE" strings, NULL-terminated. */
typedef struct fake_env {
    char *vars[16];
    size_t n;
} fake_env_t;

static void fake_env_set(fake_env_t *e, const char *name, const char *value)
{
    assert_true(e->n + 1 < sizeof(e->vars) / sizeof(*e->vars));
    size_t len = strlen(name) + strlen(value) + 2;
    e->vars[e->n] = kp_xmalloc(len);
    snprintf(e->vars[e->n++], len, "%s=%s", name, value);
    e->vars[e->n] = NULL;
}

static void fake_env_free(fake_env_t *e)
{
    for (size_t i = 0; i < e->n; i++) free(e->vars[i]);
    memset(e, 0, sizeof(*e));
}

/* Credentials made with the project's CA code, as the control plane makes them. */
typedef struct env_world {
    kp_pki_ca_t *ca;
    char *ca_pem;
    kp_pki_issued_t app, other;
    const char *password;
    kp_buf_t keystore, truststore;
} env_world_t;

static void env_world_make(env_world_t *w)
{
    char err[512];
    memset(w, 0, sizeof(*w));
    w->ca = kp_pki_ca_create("kpool test CA", 30, KP_PKI_KEY_EC_P256, err, sizeof(err));
    assert_non_null(w->ca);
    w->ca_pem = kp_pki_ca_cert_pem(w->ca);
    kp_pki_issue_req_t r = {.subject = "CN=team_orders-api_0123abcd_1", .validity_days = 30};
    assert_int_equal(kp_pki_issue(w->ca, &r, &w->app, err, sizeof(err)), 0);
    r.subject = "CN=team_other_0123abcd_1";
    assert_int_equal(kp_pki_issue(w->ca, &r, &w->other, err, sizeof(err)), 0);
    w->password = "pa'ss $word\"`x`";
    kp_buf_init(&w->keystore);
    kp_buf_init(&w->truststore);
    assert_int_equal(kp_pki_pkcs12_keystore(w->app.cert_pem, w->app.key_pem, w->app.chain_pem,
                                            w->password, &w->keystore, err, sizeof(err)),
                     0);
    assert_int_equal(
        kp_pki_pkcs12_truststore(w->ca_pem, w->password, &w->truststore, err, sizeof(err)), 0);
}

static void env_world_free(env_world_t *w)
{
    kp_buf_free(&w->keystore);
    kp_buf_free(&w->truststore);
    kp_pki_issued_free(&w->app);
    kp_pki_issued_free(&w->other);
    free(w->ca_pem);
    kp_pki_ca_free(w->ca);
}

/* The files of a `kpool run` directory at /creds, plus a few wrong ones. */
static void env_world_files(const env_world_t *w, fake_fs_t *fs)
{
    memset(fs, 0, sizeof(*fs));
    fake_fs_add(fs, "/creds/kafka.crt", w->app.cert_pem, strlen(w->app.cert_pem));
    fake_fs_add(fs, "/creds/kafka.key", w->app.key_pem, strlen(w->app.key_pem));
    fake_fs_add(fs, "/creds/ca.crt", w->ca_pem, strlen(w->ca_pem));
    fake_fs_add(fs, "/creds/client.keystore.p12", w->keystore.data, w->keystore.len);
    fake_fs_add(fs, "/creds/client.truststore.jks", w->truststore.data, w->truststore.len);
    fake_fs_add(fs, "/creds/other.key", w->other.key_pem, strlen(w->other.key_pem));
}

/* Parses e, expects success, and checks the PEMs are w's app and CA. */
static void env_parse_ok(const env_world_t *w, fake_env_t *e, fake_fs_t *fs, kp_app_env_creds_t *c)
{
    char err[1024] = "";
    if (kp_app_env_creds_parse(e->vars, fake_read, fs, c, err, sizeof(err)) < 0)
        fail_msg("parse: %s", err);
    assert_string_equal(kp_app_secret_text(&c->data, "KAFKA_BROKERS"), "127.0.0.1:9093");
    assert_string_equal(kp_app_secret_text(&c->data, "KAFKA_CERTIFICATE"), w->app.cert_pem);
    assert_string_equal(kp_app_secret_text(&c->data, "KAFKA_CA"), w->ca_pem);
    const char *key = kp_app_secret_text(&c->data, "KAFKA_PRIVATE_KEY");
    assert_non_null(key);
    assert_int_equal(kp_pki_key_matches(w->app.cert_pem, key, err, sizeof(err)), 0);
    assert_string_equal(c->subject, "CN=team_orders-api_0123abcd_1");
    /* in key order, as a decoded secret */
    for (size_t i = 1; i < c->data.n; i++)
        assert_true(strcmp(c->data.entries[i - 1].key, c->data.entries[i].key) < 0);
}

static void test_env_creds_sources(void **state)
{
    env_world_t w;
    env_world_make(&w);
    fake_fs_t fs;
    fake_env_t e = {0};
    kp_app_env_creds_t c;

    /* the PEM values alone (what `kpool secret env` exports): no file is read */
    env_world_files(&w, &fs);
    fake_env_set(&e, "HOME", "/home/app");
    fake_env_set(&e, "KAFKA_BROKERS", "127.0.0.1:9093");
    fake_env_set(&e, "KAFKA_CERTIFICATE", w.app.cert_pem);
    fake_env_set(&e, "KAFKA_PRIVATE_KEY", w.app.key_pem);
    fake_env_set(&e, "KAFKA_CA", w.ca_pem);
    /* a *_PATH naming a file that does not exist is not looked at: the value comes first */
    fake_env_set(&e, "KAFKA_CA_PATH", "/nonexistent/ca.crt");
    env_parse_ok(&w, &e, &fs, &c);
    assert_int_equal(c.data.n, 4);
    assert_string_equal(c.cert_from, "KAFKA_CERTIFICATE");
    assert_string_equal(c.key_from, "KAFKA_PRIVATE_KEY");
    assert_string_equal(c.ca_from, "KAFKA_CA");
    assert_string_equal(fs.reads, "");
    kp_app_env_creds_free(&c);
    assert_int_equal(c.data.n, 0);
    fake_env_free(&e);

    /* the *_PATH files alone; an empty variable counts as unset */
    env_world_files(&w, &fs);
    fake_env_set(&e, "KAFKA_BROKERS", "127.0.0.1:9093");
    fake_env_set(&e, "KAFKA_CERTIFICATE", "");
    fake_env_set(&e, "KAFKA_CERTIFICATE_PATH", "/creds/kafka.crt");
    fake_env_set(&e, "KAFKA_PRIVATE_KEY_PATH", "/creds/kafka.key");
    fake_env_set(&e, "KAFKA_CA_PATH", "/creds/ca.crt");
    fake_env_set(&e, "KAFKA_STREAMS_APPLICATION_ID", "team_counter_");
    env_parse_ok(&w, &e, &fs, &c);
    assert_string_equal(c.cert_from, "KAFKA_CERTIFICATE_PATH");
    assert_string_equal(c.key_from, "KAFKA_PRIVATE_KEY_PATH");
    assert_string_equal(c.ca_from, "KAFKA_CA_PATH");
    assert_string_equal(fs.reads, "/creds/kafka.crt;/creds/kafka.key;/creds/ca.crt;");
    assert_int_equal(c.data.n, 5);
    assert_string_equal(kp_app_secret_text(&c.data, "KAFKA_STREAMS_APPLICATION_ID"),
                        "team_counter_");
    kp_app_env_creds_free(&c);
    fake_env_free(&e);

    /* the PKCS#12 stores alone (a Java application's variables): the keystore is read once
     * for the certificate and the key */
    env_world_files(&w, &fs);
    fake_env_set(&e, "KAFKA_BROKERS", "127.0.0.1:9093");
    fake_env_set(&e, "KAFKA_KEYSTORE_PATH", "/creds/client.keystore.p12");
    fake_env_set(&e, "KAFKA_TRUSTSTORE_PATH", "/creds/client.truststore.jks");
    fake_env_set(&e, "KAFKA_CREDSTORE_PASSWORD", w.password);
    env_parse_ok(&w, &e, &fs, &c);
    assert_string_equal(c.cert_from, "KAFKA_KEYSTORE_PATH");
    assert_string_equal(c.key_from, "KAFKA_KEYSTORE_PATH");
    assert_string_equal(c.ca_from, "KAFKA_TRUSTSTORE_PATH");
    assert_string_equal(fs.reads, "/creds/client.keystore.p12;/creds/client.truststore.jks;");
    kp_app_env_creds_free(&c);
    fake_env_free(&e);

    /* all of `kpool run`'s variables: the values win, nothing is read */
    env_world_files(&w, &fs);
    fake_env_set(&e, "KAFKA_BROKERS", "127.0.0.1:9093");
    fake_env_set(&e, "KAFKA_CERTIFICATE", w.app.cert_pem);
    fake_env_set(&e, "KAFKA_PRIVATE_KEY", w.app.key_pem);
    fake_env_set(&e, "KAFKA_CA", w.ca_pem);
    fake_env_set(&e, "KAFKA_CERTIFICATE_PATH", "/creds/kafka.crt");
    fake_env_set(&e, "KAFKA_PRIVATE_KEY_PATH", "/creds/other.key");
    fake_env_set(&e, "KAFKA_CA_PATH", "/creds/ca.crt");
    fake_env_set(&e, "KAFKA_KEYSTORE_PATH", "/creds/client.keystore.p12");
    fake_env_set(&e, "KAFKA_CREDSTORE_PASSWORD", "wrong");
    env_parse_ok(&w, &e, &fs, &c);
    assert_string_equal(fs.reads, "");
    kp_app_env_creds_free(&c);
    fake_env_free(&e);

    /* mixed: the value of one, the file of another, the store of the third */
    env_world_files(&w, &fs);
    fake_env_set(&e, "KAFKA_BROKERS", "127.0.0.1:9093");
    fake_env_set(&e, "KAFKA_CERTIFICATE", w.app.cert_pem);
    fake_env_set(&e, "KAFKA_PRIVATE_KEY_PATH", "/creds/kafka.key");
    fake_env_set(&e, "KAFKA_TRUSTSTORE_PATH", "/creds/client.truststore.jks");
    fake_env_set(&e, "KAFKA_CREDSTORE_PASSWORD", w.password);
    env_parse_ok(&w, &e, &fs, &c);
    assert_string_equal(c.cert_from, "KAFKA_CERTIFICATE");
    assert_string_equal(c.key_from, "KAFKA_PRIVATE_KEY_PATH");
    assert_string_equal(c.ca_from, "KAFKA_TRUSTSTORE_PATH");
    kp_app_env_creds_free(&c);
    fake_env_free(&e);
    env_world_free(&w);
}

static void test_env_creds_errors(void **state)
{
    env_world_t w;
    env_world_make(&w);
    fake_fs_t fs;
    env_world_files(&w, &fs);
    static const uint8_t binary[] = {0x30, 0x82, 0x00, 0x10, 0x01};
    fake_fs_add(&fs, "/creds/binary.crt", binary, sizeof(binary));
    fake_fs_add(&fs, "/creds/big.crt", w.ca_pem, KP_APP_VALUE_BYTES_MAX + 1); /* never read */
    /* Each case: the variables set on top of a complete PEM environment ("-NAME" unsets
     * NAME), and what the one line must say. */
    struct {
        const char *set[6][2];
        const char *want;
    } cases[] = {
        {{{"-KAFKA_BROKERS", ""}},
         "KAFKA_BROKERS is not set: this environment holds no Kafka "
         "credentials"},
        {{{"KAFKA_BROKERS", ""}}, "KAFKA_BROKERS is not set"},
        {{{"KAFKA_BROKERS", "a:1\nb:2"}}, "KAFKA_BROKERS is not a list of host:port"},
        {{{"-KAFKA_CERTIFICATE", ""}},
         "no client certificate in the environment: none of KAFKA_CERTIFICATE, "
         "KAFKA_CERTIFICATE_PATH and KAFKA_KEYSTORE_PATH is set"},
        {{{"-KAFKA_PRIVATE_KEY", ""}},
         "no private key in the environment: none of KAFKA_PRIVATE_KEY, KAFKA_PRIVATE_KEY_PATH "
         "and KAFKA_KEYSTORE_PATH is set"},
        {{{"-KAFKA_CA", ""}},
         "no CA certificate in the environment: none of KAFKA_CA, "
         "KAFKA_CA_PATH and KAFKA_TRUSTSTORE_PATH is set"},
        {{{"-KAFKA_CA", ""}, {"KAFKA_CA_PATH", "/creds/missing.crt"}},
         "cannot read KAFKA_CA_PATH (/creds/missing.crt): No such file or directory"},
        {{{"-KAFKA_CA", ""}, {"KAFKA_CA_PATH", "/creds/big.crt"}},
         "cannot read KAFKA_CA_PATH (/creds/big.crt): larger than 1048576 bytes"},
        {{{"-KAFKA_CA", ""}, {"KAFKA_CA_PATH", "/creds/\x1b[31mca\n.crt"}},
         "cannot read KAFKA_CA_PATH (/creds/ [31mca .crt): No such file or directory"},
        {{{"-KAFKA_CERTIFICATE", ""}, {"KAFKA_CERTIFICATE_PATH", "/creds/binary.crt"}},
         "KAFKA_CERTIFICATE_PATH (/creds/binary.crt): not a PEM file (it holds binary data)"},
        {{{"KAFKA_CERTIFICATE", "hello"}}, "KAFKA_CERTIFICATE: certificate: not a PEM certificate"},
        {{{"KAFKA_CA", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}},
         "KAFKA_CA: certificate: not a PEM certificate"},
        /* a key where the certificate belongs: named, never shown */
        {{{"-KAFKA_CERTIFICATE", ""}, {"KAFKA_CERTIFICATE_PATH", "/creds/kafka.key"}},
         "KAFKA_CERTIFICATE_PATH (/creds/kafka.key): certificate: not a PEM certificate"},
        {{{"-KAFKA_PRIVATE_KEY", ""}, {"KAFKA_PRIVATE_KEY_PATH", "/creds/other.key"}},
         "KAFKA_PRIVATE_KEY_PATH (/creds/other.key): the private key does not belong to the "
         "certificate (KAFKA_CERTIFICATE)"},
        {{{"KAFKA_PRIVATE_KEY", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}},
         "KAFKA_PRIVATE_KEY: private key: not an unencrypted PEM private key"},
        {{{"-KAFKA_CERTIFICATE", ""}, {"KAFKA_KEYSTORE_PATH", "/creds/client.keystore.p12"}},
         "KAFKA_KEYSTORE_PATH (/creds/client.keystore.p12) is set but KAFKA_CREDSTORE_PASSWORD, "
         "its password, is not"},
        {{{"-KAFKA_CERTIFICATE", ""},
          {"KAFKA_KEYSTORE_PATH", "/creds/client.keystore.p12"},
          {"KAFKA_CREDSTORE_PASSWORD", "wrong"}},
         "KAFKA_KEYSTORE_PATH (/creds/client.keystore.p12) with KAFKA_CREDSTORE_PASSWORD: "
         "PKCS#12: the password does not open the store"},
        {{{"-KAFKA_CERTIFICATE", ""},
          {"KAFKA_KEYSTORE_PATH", "/creds/client.truststore.jks"},
          {"KAFKA_CREDSTORE_PASSWORD", w.password}},
         "KAFKA_KEYSTORE_PATH (/creds/client.truststore.jks) holds no client certificate"},
        {{{"-KAFKA_CA", ""},
          {"KAFKA_TRUSTSTORE_PATH", "/creds/ca.crt"},
          {"KAFKA_CREDSTORE_PASSWORD", w.password}},
         "KAFKA_TRUSTSTORE_PATH (/creds/ca.crt) with KAFKA_CREDSTORE_PASSWORD: not a PKCS#12 "
         "store"},
    };
    static const char *const names[] = {"KAFKA_BROKERS", "KAFKA_CERTIFICATE", "KAFKA_PRIVATE_KEY",
                                        "KAFKA_CA"};
    const char *values[] = {"127.0.0.1:9093", w.app.cert_pem, w.app.key_pem, w.ca_pem};
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        fake_env_t e = {0};
        for (size_t v = 0; v < 4; v++) {
            int unset = 0, replaced = 0;
            for (size_t j = 0; j < 6 && cases[i].set[j][0]; j++) {
                unset |= cases[i].set[j][0][0] == '-' && !strcmp(cases[i].set[j][0] + 1, names[v]);
                replaced |= !strcmp(cases[i].set[j][0], names[v]);
            }
            if (!unset && !replaced) fake_env_set(&e, names[v], values[v]);
        }
        for (size_t j = 0; j < 6 && cases[i].set[j][0]; j++)
            if (cases[i].set[j][0][0] != '-')
                fake_env_set(&e, cases[i].set[j][0], cases[i].set[j][1]);
        kp_app_env_creds_t c;
        char err[1024] = "";
        memset(&c, 0xff, sizeof(c));
        assert_int_equal(kp_app_env_creds_parse(e.vars, fake_read, &fs, &c, err, sizeof(err)), -1);
        if (strncmp(err, cases[i].want, strlen(cases[i].want)))
            fail_msg("case %zu: '%s'\n  want '%s...'", i, err, cases[i].want);
        /* one line, no key material, nothing left in out */
        assert_null(strchr(err, '\n'));
        assert_null(strstr(err, "-----"));
        assert_null(strstr(err, w.password));
        assert_int_equal(c.data.n, 0);
        assert_null(c.data.entries);
        fake_env_free(&e);
    }
    /* a path is shown cut at 256 characters */
    char path[400], want[400];
    memset(path, 'a', sizeof(path) - 1);
    path[0] = '/';
    path[sizeof(path) - 1] = 0;
    snprintf(want, sizeof(want), "cannot read KAFKA_CA_PATH (%.256s...): No such file or directory",
             path);
    fake_env_t e = {0};
    fake_env_set(&e, "KAFKA_BROKERS", "127.0.0.1:9093");
    fake_env_set(&e, "KAFKA_CERTIFICATE", w.app.cert_pem);
    fake_env_set(&e, "KAFKA_PRIVATE_KEY", w.app.key_pem);
    fake_env_set(&e, "KAFKA_CA_PATH", path);
    kp_app_env_creds_t c;
    char err[1024];
    assert_int_equal(kp_app_env_creds_parse(e.vars, fake_read, &fs, &c, err, sizeof(err)), -1);
    assert_string_equal(err, want);
    fake_env_free(&e);
    env_world_free(&w);
}

/* ---- ACLs ---- */

static void test_glob(void **state)
{
    static const struct {
        const char *p, *s;
        int match;
    } cases[] = {
        {"*", "anything", 1},
        {"*", "", 1},
        {"team-a", "team-a", 1},
        {"team-a", "team-ab", 0},
        {"team-a", "team-", 0},
        {"rapid-*", "rapid-x", 1},
        {"rapid-*", "rapid-", 1},
        {"rapid-*", "rapid", 0},
        {"rapid-*", "xrapid-x", 0},
        {"*-api", "orders-api", 1},
        {"*-api", "orders-api2", 0},
        {"a*b*c", "abc", 1},
        {"a*b*c", "axxbyyc", 1},
        {"a*b*c", "axxbyy", 0},
        {"a*b", "abxb", 1},
        {"a*b", "abxbx", 0},
        {"**", "x", 1},
        {"", "", 1},
        {"", "x", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        if (kp_app_glob_match(cases[i].p, cases[i].s) != cases[i].match)
            fail_msg("glob %s vs %s: expected %d", cases[i].p, cases[i].s, cases[i].match);
    }
    /* a pattern that is exponential for a naive backtracker returns at once */
    char s[4001];
    memset(s, 'a', 4000);
    s[4000] = '\0';
    assert_false(kp_app_glob_match("a*a*a*a*a*a*a*a*a*a*a*a*b", s));
    assert_true(kp_app_glob_match("a*a*a*a*a*a*a*a*a*a*a*a*", s));
}

static void test_acl_access(void **state)
{
    json_t *acl =
        fixture("[{\"team\": \"team-a\", \"application\": \"shop\", \"access\": \"read\"},"
                " {\"team\": \"team-*\", \"application\": \"shop\", \"access\": \"write\"},"
                " {\"team\": \"team-b\", \"application\": \"*\", \"access\": \"readwrite\"},"
                " {\"team\": \"*\", \"application\": \"rapid-*\", \"access\": \"read\"},"
                " {\"team\": \"team-c\", \"access\": \"readwrite\"},"
                " {\"team\": \"team-c\", \"application\": \"x\", \"access\": \"all\"},"
                " 42]");
    assert_int_equal(kp_app_acl_access(acl, "team-a", "shop"), KP_APP_ACCESS_RW); /* union */
    assert_int_equal(kp_app_acl_access(acl, "team-z", "shop"), KP_APP_ACCESS_WRITE);
    assert_int_equal(kp_app_acl_access(acl, "team-b", "anything"), KP_APP_ACCESS_RW);
    assert_int_equal(kp_app_acl_access(acl, "ops", "rapid-1"), KP_APP_ACCESS_READ);
    assert_int_equal(kp_app_acl_access(acl, "ops", "rapid"), 0);
    assert_int_equal(kp_app_acl_access(acl, "team-a", "cart"), 0);
    /* entries without an application or with an unknown access grant nothing */
    assert_int_equal(kp_app_acl_access(acl, "team-c", "x"), 0);
    assert_int_equal(kp_app_acl_access(NULL, "team-a", "shop"), 0);
    json_decref(acl);
    assert_int_equal(kp_app_access_parse("read"), KP_APP_ACCESS_READ);
    assert_int_equal(kp_app_access_parse("write"), KP_APP_ACCESS_WRITE);
    assert_int_equal(kp_app_access_parse("readwrite"), KP_APP_ACCESS_RW);
    assert_int_equal(kp_app_access_parse("Read"), 0);
    assert_int_equal(kp_app_access_parse(NULL), 0);
    assert_string_equal(kp_app_access_name(KP_APP_ACCESS_RW), "readwrite");
    assert_string_equal(kp_app_access_name(0), "none");
}

/* ---- topic names ---- */

#define TOPICS_JSON                                                                                \
    "[{\"metadata\": {\"name\": \"orders\", \"namespace\": \"team-a\"},"                           \
    "  \"spec\": {\"pool\": \"dev\", \"acl\": [{\"team\": \"team-a\", \"application\": \"shop\","  \
    "   \"access\": \"readwrite\"}]},"                                                             \
    "  \"status\": {\"fullyQualifiedName\": \"team-a.orders\"}},"                                  \
    " {\"metadata\": {\"name\": \"orders\", \"namespace\": \"team-b\"},"                           \
    "  \"spec\": {\"pool\": \"dev\", \"acl\": [{\"team\": \"*\", \"application\": \"shop\","       \
    "   \"access\": \"read\"}]}},"                                                                 \
    " {\"metadata\": {\"name\": \"payments\", \"namespace\": \"team-b\"},"                         \
    "  \"spec\": {\"pool\": \"other\", \"acl\": [{\"team\": \"team-a\", \"application\": \"*\","   \
    "   \"access\": \"write\"}]},"                                                                 \
    "  \"status\": {\"fullyQualifiedName\": \"team-b.payments\"}},"                                \
    " {\"metadata\": {\"name\": \"old\", \"namespace\": \"team-a\","                               \
    "   \"deletionTimestamp\": \"2026-11-27T07:00:00Z\"},"                                         \
    "  \"spec\": {\"pool\": \"dev\", \"acl\": [{\"team\": \"team-a\", \"application\": \"shop\","  \
    "   \"access\": \"read\"}]}},"                                                                 \
    " {\"metadata\": {\"name\": \"team-a.orders\", \"namespace\": \"weird\"}}]"

static void test_topic_fqn(void **state)
{
    char buf[128];
    json_t *t = fixture("{\"metadata\": {\"name\": \"orders\", \"namespace\": \"team-a\"},"
                        " \"status\": {\"fullyQualifiedName\": \"custom.name\"}}");
    assert_string_equal(kp_app_topic_fqn(t, buf, sizeof(buf)), "custom.name");
    json_decref(t);
    /* before the control plane wrote a status: <namespace>.<name> */
    t = fixture(
        "{\"metadata\": {\"name\": \"orders\", \"namespace\": \"team-a\"}, \"status\": {}}");
    assert_string_equal(kp_app_topic_fqn(t, buf, sizeof(buf)), "team-a.orders");
    json_decref(t);
    t = fixture("{\"metadata\": {\"namespace\": \"team-a\"}}");
    assert_null(kp_app_topic_fqn(t, buf, sizeof(buf)));
    json_decref(t);
}

static const char *meta_ns(const json_t *t)
{
    return json_string_value(json_object_get(json_object_get(t, "metadata"), "namespace"));
}

static void test_topic_resolve(void **state)
{
    json_t *topics = fixture(TOPICS_JSON);
    const json_t *t;
    /* a fully qualified name: wins even over a resource literally named like it */
    assert_int_equal(kp_app_topic_resolve(topics, "weird", "team-a.orders", &t), KP_APP_TOPIC_FQN);
    assert_string_equal(meta_ns(t), "team-a");
    /* without a status the FQN is <ns>.<name> */
    assert_int_equal(kp_app_topic_resolve(topics, "team-a", "team-b.orders", &t), KP_APP_TOPIC_FQN);
    assert_string_equal(meta_ns(t), "team-b");
    /* the short name of a Topic of the namespace, preferred over other namespaces' */
    assert_int_equal(kp_app_topic_resolve(topics, "team-b", "orders", &t), KP_APP_TOPIC_SHORT);
    assert_string_equal(meta_ns(t), "team-b");
    assert_int_equal(kp_app_topic_resolve(topics, "team-a", "orders", &t), KP_APP_TOPIC_SHORT);
    assert_string_equal(meta_ns(t), "team-a");
    /* the short name of another team's Topic */
    assert_int_equal(kp_app_topic_resolve(topics, "team-a", "payments", &t),
                     KP_APP_TOPIC_SHORT_ELSEWHERE);
    assert_string_equal(meta_ns(t), "team-b");
    /* a qualified-looking name nobody declares, and a plain unknown name */
    assert_int_equal(kp_app_topic_resolve(topics, "team-a", "team-a.order", &t),
                     KP_APP_TOPIC_FQN_MISSING);
    assert_null(t);
    assert_int_equal(kp_app_topic_resolve(topics, "team-a", "nope", &t), KP_APP_TOPIC_UNKNOWN);
    assert_null(t);
    json_t *empty = json_array();
    assert_int_equal(kp_app_topic_resolve(empty, "team-a", "orders", &t), KP_APP_TOPIC_UNKNOWN);
    json_decref(empty);
    json_decref(topics);
}

static void test_topics_granted(void **state)
{
    json_t *topics = fixture(TOPICS_JSON);
    /* any pool: team-a.orders (rw), team-b.orders (read, wildcard team), team-b.payments
     * (write, wildcard app); the Topic being deleted is left out */
    json_t *g = kp_app_topics_granted(topics, "team-a", "shop", NULL);
    assert_int_equal(json_array_size(g), 3);
    static const char *const fqns[] = {"team-a.orders", "team-b.orders", "team-b.payments"};
    static const int access[] = {KP_APP_ACCESS_RW, KP_APP_ACCESS_READ, KP_APP_ACCESS_WRITE};
    for (size_t i = 0; i < 3; i++) {
        json_t *e = json_array_get(g, i);
        assert_string_equal(json_string_value(json_object_get(e, "fqn")), fqns[i]);
        assert_int_equal(json_integer_value(json_object_get(e, "access")), access[i]);
        assert_true(json_is_object(json_object_get(e, "topic")));
    }
    json_decref(g);
    /* the app's pool only */
    g = kp_app_topics_granted(topics, "team-a", "shop", "dev");
    assert_int_equal(json_array_size(g), 2);
    json_decref(g);
    g = kp_app_topics_granted(topics, "team-c", "cart", "dev");
    assert_int_equal(json_array_size(g), 0);
    json_decref(g);
    json_decref(topics);
}

/* ---- doctor's YAML ---- */

static void test_acl_suggest(void **state)
{
    kp_buf_t b;
    kp_buf_init(&b);
    kp_app_acl_suggest("team-a", "shop", KP_APP_ACCESS_RW, "  ", &b);
    assert_string_equal(str_of(&b), "  - team: team-a\n"
                                    "    application: shop\n"
                                    "    access: readwrite\n");
    kp_buf_reset(&b);
    kp_app_acl_suggest("team-a", "shop", KP_APP_ACCESS_READ, "", &b);
    assert_string_equal(str_of(&b), "- team: team-a\n  application: shop\n  access: read\n");
    kp_buf_reset(&b);
    /* 0 suggests readwrite */
    kp_app_acl_suggest("t", "a", 0, "", &b);
    assert_non_null(strstr(str_of(&b), "access: readwrite"));

    /* pasted under "spec:\n  acl:\n" the lines parse back to the entry, also for names
     * YAML would otherwise read as a boolean, null or a number */
    static const char *const names[][2] = {
        {"team-a", "shop"}, {"true", "null"}, {"123", "1e3"}, {"no", "on"}, {"-x", ".5"}};
    for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++) {
        kp_buf_reset(&b);
        kp_buf_appendf(&b, "spec:\n  acl:\n");
        kp_app_acl_suggest(names[i][0], names[i][1], KP_APP_ACCESS_WRITE, "    ", &b);
        char err[256];
        json_t *doc = kp_yaml_parse_one((const char *)b.data, b.len, err, sizeof(err));
        assert_non_null(doc);
        json_t *e = json_array_get(json_object_get(json_object_get(doc, "spec"), "acl"), 0);
        assert_string_equal(json_string_value(json_object_get(e, "team")), names[i][0]);
        assert_string_equal(json_string_value(json_object_get(e, "application")), names[i][1]);
        assert_string_equal(json_string_value(json_object_get(e, "access")), "write");
        assert_int_equal(kp_app_acl_access(json_object_get(json_object_get(doc, "spec"), "acl"),
                                           names[i][0], names[i][1]),
                         KP_APP_ACCESS_WRITE);
        json_decref(doc);
    }
    kp_buf_free(&b);
}

static void test_topic_suggest(void **state)
{
    kp_buf_t b;
    kp_buf_init(&b);
    kp_app_topic_suggest("team-b", "payments", NULL, "team-a", "shop", KP_APP_ACCESS_READ, &b);
    assert_string_equal(str_of(&b), "apiVersion: kafka.nais.io/v1\n"
                                    "kind: Topic\n"
                                    "metadata:\n"
                                    "  name: payments\n"
                                    "  namespace: team-b\n"
                                    "spec:\n"
                                    "  pool: dev\n"
                                    "  acl:\n"
                                    "    - team: team-a\n"
                                    "      application: shop\n"
                                    "      access: read\n");
    char err[256];
    json_t *doc = kp_yaml_parse_one((const char *)b.data, b.len, err, sizeof(err));
    assert_non_null(doc);
    json_t *topics = json_pack("[O]", doc);
    json_t *g = kp_app_topics_granted(topics, "team-a", "shop", "dev");
    assert_int_equal(json_array_size(g), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(g, 0), "fqn")),
                        "team-b.payments");
    json_decref(g);
    json_decref(topics);
    json_decref(doc);
    kp_buf_free(&b);
}

/* ---- conditions ---- */

static void test_conditions(void **state)
{
    json_t *app =
        fixture("{\"status\": {\"synchronizationState\": \"RolloutFailed\", \"conditions\": ["
                "{\"type\": \"Succeeded\", \"status\": \"False\", \"reason\": \"ValidatePool\","
                " \"message\": \"rollout failed\"},"
                "{\"type\": \"AivenFailure\", \"status\": \"True\", \"reason\": \"ValidatePool\","
                " \"message\": \"pool \\\"nope\\\" does not exist\\u001b[2J (pools: dev)\","
                " \"lastUpdateTime\": \"2026-11-27T07:00:00Z\"}]}}");
    kp_buf_t b;
    kp_buf_init(&b);
    kp_app_conditions_render(app, "  ", &b);
    assert_string_equal(str_of(&b),
                        "  type=Succeeded status=False reason=ValidatePool: rollout failed\n"
                        "  type=AivenFailure status=True reason=ValidatePool: pool \"nope\" does "
                        "not exist [2J (pools: dev) (2026-11-27T07:00:00Z)\n");
    kp_buf_reset(&b);
    /* the failure condition explains, not the Succeeded=False summary */
    assert_int_equal(kp_app_condition_reason(app, &b), 1);
    assert_string_equal(str_of(&b),
                        "AivenFailure/ValidatePool: pool \"nope\" does not exist [2J (pools: dev)");
    json_decref(app);

    app = fixture("{\"status\": {\"conditions\": [{\"type\": \"Succeeded\", \"status\": "
                  "\"False\", \"reason\": \"CreateSecret\", \"message\": \"disk full\"}]}}");
    kp_buf_reset(&b);
    assert_int_equal(kp_app_condition_reason(app, &b), 1);
    assert_string_equal(str_of(&b), "Succeeded/CreateSecret: disk full");
    json_decref(app);

    app = fixture("{\"status\": {\"conditions\": [{\"type\": \"Succeeded\", \"status\": "
                  "\"True\", \"reason\": \"Synchronized\", \"message\": \"all done\"}]}}");
    kp_buf_reset(&b);
    assert_int_equal(kp_app_condition_reason(app, &b), 0);
    assert_int_equal(b.len, 0);
    json_decref(app);

    app = fixture("{}");
    kp_buf_reset(&b);
    kp_app_conditions_render(app, "", &b);
    assert_string_equal(str_of(&b), "(no conditions)\n");
    json_decref(app);
    kp_buf_free(&b);
}

/* ---- consume -f ---- */

static void test_format(void **state)
{
    kp_app_record_t r = {.topic = "team-a.orders",
                         .partition = 2,
                         .offset = 41,
                         .timestamp_ms = 1795762800000,
                         .key = "k1",
                         .key_len = 2,
                         .value = "v\0x",
                         .value_len = 3};
    static const struct {
        const char *fmt, *out;
        size_t len;
    } cases[] = {
        {"%s", "v\0x\n", 4},
        {"%k %s", "k1 v\0x\n", 7},
        {"%t[%p]@%o %T\\n", "team-a.orders[2]@41 1795762800000\n", 34},
        {"%K/%S %%s\\t|\\\\", "2/3 %s\t|\\\n", 10},
        {"%k\n", "k1\n", 3},
    };
    kp_buf_t b;
    kp_buf_init(&b);
    char err[256];
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        assert_int_equal(kp_app_format_check(cases[i].fmt, err, sizeof(err)), 0);
        kp_buf_reset(&b);
        kp_app_format_render(cases[i].fmt, &r, &b);
        assert_int_equal(b.len, cases[i].len);
        assert_memory_equal(b.data, cases[i].out, cases[i].len);
    }
    /* a null key and value print nothing; their sizes are -1 */
    r.key = NULL;
    r.value = NULL;
    kp_buf_reset(&b);
    kp_app_format_render("[%k][%s] %K %S", &r, &b);
    assert_string_equal(str_of(&b), "[][] -1 -1\n");
    static const char *const bad[] = {"%x", "%", "abc\\", "\\q"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        assert_int_equal(kp_app_format_check(bad[i], err, sizeof(err)), -1);
    kp_buf_free(&b);
}

/* ---- text ---- */

static void test_text_clean(void **state)
{
    kp_buf_t b;
    kp_buf_init(&b);
    kp_app_text_clean("a\nb\x1b[31mc\x7f", &b);
    assert_string_equal(str_of(&b), "a b [31mc ");
    kp_buf_reset(&b);
    kp_app_text_clean(NULL, &b);
    assert_string_equal(str_of(&b), "<none>");
    kp_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_secret_decode),
        cmocka_unit_test(test_value_is_text),
        cmocka_unit_test(test_shell_quote),
        cmocka_unit_test(test_env_name_valid),
        cmocka_unit_test(test_env_build),
        cmocka_unit_test(test_glob),
        cmocka_unit_test(test_acl_access),
        cmocka_unit_test(test_topic_fqn),
        cmocka_unit_test(test_topic_resolve),
        cmocka_unit_test(test_topics_granted),
        cmocka_unit_test(test_acl_suggest),
        cmocka_unit_test(test_topic_suggest),
        cmocka_unit_test(test_conditions),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_text_clean),
        cmocka_unit_test(test_env_creds_sources),
        cmocka_unit_test(test_env_creds_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

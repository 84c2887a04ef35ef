/*
 * test_pool_raw.c — the control plane's raw DescribeConfigs (control/pool_acl_raw.h), against
 * a fake pool on 127.0.0.1 that answers one canned response per request (issue 12 item 12).
 *
 *   - the request is DescribeConfigs v1 (header v1) of every asked topic, every config (null
 *     key list), without synonyms: a drift check no longer has the pool compute and send
 *     ~30 entries' synonyms per topic, nor librdkafka parse them;
 *   - only each topic's own overrides (ConfigSource DYNAMIC_TOPIC_CONFIG) are kept, a null
 *     (sensitive) value as "", defaults and broker-level values dropped;
 *   - a topic's error comes back with its code and message; a malformed answer or a closed
 *     connection is an error of the call, never a crash;
 *   - over TLS the pool's certificate must name the address dialled (an iPAddress SAN for
 *     127.0.0.1), not only chain to the CA: a certificate for another name is refused, as
 *     librdkafka refuses it for the pool client's other calls;
 *   - the controller and the brokers' racks (the Pool's status.controller and brokers[].rack)
 *     come from a Metadata v1 for no topic (an empty list, not null: every topic), through
 *     the first bootstrap address that answers (before, only the first was tried).
 */
#include "unit.h"

#include "control/pool_acl_raw.h"
#include "core/arena.h"
#include "kp_msgs.h"
#include "pki/pki.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <sys/socket.h>

typedef struct fake_pool {
    int lfd;
    int port;
    int mode; /* 0: the canned answer, 1: garbage, 2: close without answering */
    /* what the request said */
    int16_t key, version;
    int8_t synonyms;
    int32_t nresources;
    int32_t nkeys0;
    char name0[64], name1[64];
    int8_t type0;
    int32_t ntopics; /* Metadata: the topics asked for (-1: null, every topic) */
    SSL_CTX *tls;    /* not NULL: TLS with this server context */
    SSL *ssl;
} fake_pool_t;

static int read_full(fake_pool_t *f, int fd, void *p, size_t n)
{
    uint8_t *b = p;
    while (n > 0) {
        ssize_t r = f->ssl ? SSL_read(f->ssl, b, (int)n) : recv(fd, b, n, 0);
        if (r <= 0) return -1;
        b += r;
        n -= (size_t)r;
    }
    return 0;
}

static void canned_answer(kp_wr_t *w)
{
    DescribeConfigsResponse_DescribeConfigsResourceResult cfg[4];
    for (int i = 0; i < 4; i++) DescribeConfigsResponse_DescribeConfigsResourceResult_init(&cfg[i]);
    cfg[0].Name = kp_str_c("retention.ms");
    cfg[0].Value = kp_str_c("1000");
    cfg[0].ConfigSource = 1; /* DYNAMIC_TOPIC_CONFIG */
    cfg[1].Name = kp_str_c("cleanup.policy");
    cfg[1].Value = kp_str_c("delete");
    cfg[1].ConfigSource = 5; /* DEFAULT_CONFIG */
    cfg[2].Name = kp_str_c("segment.bytes");
    cfg[2].Value = kp_str_c("1048576");
    cfg[2].ConfigSource = 4; /* STATIC_BROKER_CONFIG */
    cfg[3].Name = kp_str_c("secret.thing");
    cfg[3].Value = KP_STR_NULL; /* sensitive */
    cfg[3].ConfigSource = 1;
    cfg[3].IsSensitive = 1;
    DescribeConfigsResponse_DescribeConfigsResult res[2];
    DescribeConfigsResponse_DescribeConfigsResult_init(&res[0]);
    DescribeConfigsResponse_DescribeConfigsResult_init(&res[1]);
    res[0].ResourceType = 2;
    res[0].ResourceName = kp_str_c("a");
    res[0].Configs.items = cfg;
    res[0].Configs.count = 4;
    res[1].ErrorCode = 3;
    res[1].ErrorMessage = kp_str_c("This server does not host this topic-partition.");
    res[1].ResourceType = 2;
    res[1].ResourceName = kp_str_c("b");
    DescribeConfigsResponse out;
    DescribeConfigsResponse_init(&out);
    out.Results.items = res;
    out.Results.count = 2;
    DescribeConfigsResponse_encode(w, 1, &out);
}

/* Metadata v1: two brokers (one in a rack), controller 7. */
static void canned_metadata(kp_wr_t *w)
{
    MetadataResponse_MetadataResponseBroker b[2];
    MetadataResponse_MetadataResponseBroker_init(&b[0]);
    MetadataResponse_MetadataResponseBroker_init(&b[1]);
    b[0].NodeId = 7;
    b[0].Host = kp_str_c("127.0.0.1");
    b[0].Port = 9093;
    b[0].Rack = kp_str_c("rack-a");
    b[1].NodeId = 8;
    b[1].Host = kp_str_c("127.0.0.1");
    b[1].Port = 9094;
    b[1].Rack = KP_STR_NULL;
    MetadataResponse out;
    MetadataResponse_init(&out);
    out.Brokers.items = b;
    out.Brokers.count = 2;
    out.ControllerId = 7;
    MetadataResponse_encode(w, 1, &out);
}

/* Serves one connection: one request, one answer per the mode. */
static void *serve(void *arg)
{
    fake_pool_t *f = arg;
    int fd = accept(f->lfd, NULL, NULL);
    if (fd < 0) return NULL;
    if (f->tls) {
        f->ssl = SSL_new(f->tls);
        SSL_set_fd(f->ssl, fd);
        if (SSL_accept(f->ssl) != 1) { /* the client refused the certificate */
            SSL_free(f->ssl);
            f->ssl = NULL;
            close(fd);
            return NULL;
        }
    }
    uint8_t head[4];
    if (read_full(f, fd, head, 4) == 0) {
        uint32_t size =
            (uint32_t)head[0] << 24 | (uint32_t)head[1] << 16 | (uint32_t)head[2] << 8 | head[3];
        uint8_t *req = malloc(size);
        if (size < 1 << 20 && read_full(f, fd, req, size) == 0) {
            kp_rd_t rd;
            kp_rd_init(&rd, req, size);
            f->key = kp_rd_i16(&rd);
            f->version = kp_rd_i16(&rd);
            int32_t corr = kp_rd_i32(&rd);
            (void)kp_rd_string(&rd, 0, 1); /* client id */
            kp_arena_t arena;
            kp_arena_init(&arena, 1 << 20);
            DescribeConfigsRequest in;
            MetadataRequest md;
            if (f->key == KP_API_METADATA) {
                if (MetadataRequest_decode(&rd, f->version, &arena, &md) == 0)
                    f->ntopics = md.Topics.count; /* -1: null */
            } else if (DescribeConfigsRequest_decode(&rd, f->version, &arena, &in) == 0) {
                f->synonyms = in.IncludeSynonyms;
                f->nresources = in.Resources.count;
                if (in.Resources.count >= 2) {
                    f->type0 = in.Resources.items[0].ResourceType;
                    f->nkeys0 = in.Resources.items[0].ConfigurationKeys.count;
                    snprintf(f->name0, sizeof(f->name0), "%.*s",
                             in.Resources.items[0].ResourceName.len,
                             in.Resources.items[0].ResourceName.ptr);
                    snprintf(f->name1, sizeof(f->name1), "%.*s",
                             in.Resources.items[1].ResourceName.len,
                             in.Resources.items[1].ResourceName.ptr);
                }
            }
            kp_arena_free(&arena);
            if (f->mode != 2) {
                kp_wr_t w;
                kp_wr_init(&w);
                kp_wr_i32(&w, 0);
                kp_wr_i32(&w, corr);
                if (f->mode == 0 && f->key == KP_API_METADATA)
                    canned_metadata(&w);
                else if (f->mode == 0)
                    canned_answer(&w);
                else
                    kp_wr_i32(&w, 0x7fffffff); /* a throttle time, then a cut array */
                kp_wr_patch_i32(&w, 0, (int32_t)(w.buf.len - 4));
                ssize_t sent = f->ssl ? SSL_write(f->ssl, w.buf.data, (int)w.buf.len)
                                      : send(fd, w.buf.data, w.buf.len, MSG_NOSIGNAL);
                (void)sent;
                kp_wr_free(&w);
            }
        }
        free(req);
    }
    if (f->ssl) {
        SSL_shutdown(f->ssl);
        SSL_free(f->ssl);
        f->ssl = NULL;
    }
    close(fd);
    return NULL;
}

/* A TCP socket bound to a free loopback port (*port), listening when asked. */
static int loopback_socket(int listening, int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    if (listening) assert_int_equal(listen(fd, 4), 0);
    socklen_t al = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static void fake_start(fake_pool_t *f, int mode, pthread_t *th)
{
    SSL_CTX *tls = f->tls;
    memset(f, 0, sizeof(*f));
    f->tls = tls;
    f->mode = mode;
    f->lfd = loopback_socket(1, &f->port);
    assert_int_equal(pthread_create(th, NULL, serve, f), 0);
}

static int describe_as(fake_pool_t *f, int mode, const char *ca_path, kp_pool_raw_topic_cfg_t **t,
                       int *n, char *err, size_t errlen)
{
    pthread_t th;
    fake_start(f, mode, &th);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", f->port);
    kp_pool_conn_t conf = {.bootstrap = addr, .ca_path = ca_path, .timeout_ms = 30000};
    kp_pool_raw_t *raw = kp_pool_raw_new(&conf);
    const char *names[] = {"a", "b"};
    int rc = kp_pool_raw_describe_topic_configs(raw, names, 2, t, n, err, errlen);
    kp_pool_raw_free(raw);
    pthread_join(th, NULL);
    close(f->lfd);
    return rc;
}

static int describe(fake_pool_t *f, int mode, kp_pool_raw_topic_cfg_t **t, int *n, char *err,
                    size_t errlen)
{
    f->tls = NULL;
    return describe_as(f, mode, NULL, t, n, err, errlen);
}

static void test_describe_topic_configs(void **state)
{
    (void)state;
    fake_pool_t f;
    kp_pool_raw_topic_cfg_t *t;
    int n;
    char err[256];
    assert_int_equal(describe(&f, 0, &t, &n, err, sizeof(err)), 0);
    /* the request: DescribeConfigs v1 of both topics, every config, no synonyms */
    assert_int_equal(f.key, KP_API_DESCRIBE_CONFIGS);
    assert_int_equal(f.version, 1);
    assert_int_equal(f.synonyms, 0);
    assert_int_equal(f.nresources, 2);
    assert_int_equal(f.type0, 2);
    assert_int_equal(f.nkeys0, -1);
    assert_string_equal(f.name0, "a");
    assert_string_equal(f.name1, "b");
    /* the answer: a's overrides only, b's error */
    assert_int_equal(n, 2);
    assert_string_equal(t[0].name, "a");
    assert_int_equal(t[0].error, 0);
    assert_int_equal(t[0].nconfigs, 2);
    assert_string_equal(t[0].keys[0], "retention.ms");
    assert_string_equal(t[0].values[0], "1000");
    assert_string_equal(t[0].keys[1], "secret.thing");
    assert_string_equal(t[0].values[1], "");
    assert_null(t[0].keys[2]);
    assert_string_equal(t[1].name, "b");
    assert_int_equal(t[1].error, 3);
    assert_string_equal(t[1].message, "This server does not host this topic-partition.");
    assert_int_equal(t[1].nconfigs, 0);
    kp_pool_raw_topic_cfgs_free(t, n);
}

static void test_describe_topic_configs_bad_answers(void **state)
{
    (void)state;
    fake_pool_t f;
    kp_pool_raw_topic_cfg_t *t = (void *)1;
    int n = 7;
    char err[256] = "";
    assert_int_equal(describe(&f, 1, &t, &n, err, sizeof(err)), -1);
    assert_null(t);
    assert_int_equal(n, 0);
    assert_non_null(strstr(err, "malformed"));
    err[0] = 0;
    assert_int_equal(describe(&f, 2, &t, &n, err, sizeof(err)), -1);
    assert_null(t);
    assert_non_null(strstr(err, "no answer"));
}

static void write_file(const char *dir, const char *name, const char *text, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", dir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
}

/* A server context for a broker certificate with the given SANs, issued by ca. */
static SSL_CTX *server_ctx(const kp_pki_ca_t *ca, const char *dir, const char *const *sans,
                           size_t nsans)
{
    kp_pki_issue_req_t req = {.subject = "CN=broker",
                              .validity_days = 1,
                              .usage = KP_PKI_USAGE_SERVER,
                              .sans = sans,
                              .nsans = nsans};
    kp_pki_issued_t is;
    char err[256], cert[512], key[512];
    if (kp_pki_issue(ca, &req, &is, err, sizeof(err)) < 0) fail_msg("issue: %s", err);
    write_file(dir, "broker.pem", is.chain_pem, cert, sizeof(cert));
    write_file(dir, "broker.key", is.key_pem, key, sizeof(key));
    kp_pki_issued_free(&is);
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_use_certificate_chain_file(ctx, cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM), 1);
    return ctx;
}

static void test_tls_verifies_the_brokers_address(void **state)
{
    (void)state;
    char dir[256], ca_path[512], err[256];
    ut_tmpdir_make(dir, sizeof(dir));
    kp_pki_ca_t *ca = kp_pki_ca_create("pool CA", 1, KP_PKI_KEY_EC_P256, err, sizeof(err));
    if (!ca) fail_msg("ca: %s", err);
    char *ca_pem = kp_pki_ca_cert_pem(ca);
    write_file(dir, "ca.pem", ca_pem, ca_path, sizeof(ca_path));
    free(ca_pem);
    fake_pool_t f;
    kp_pool_raw_topic_cfg_t *t;
    int n;

    /* signed by the pool's CA, but for other names: refused before a byte is sent */
    const char *other[] = {"DNS:broker.elsewhere.example", "IP:127.0.0.2"};
    f.tls = server_ctx(ca, dir, other, 2);
    err[0] = 0;
    assert_int_equal(describe_as(&f, 0, ca_path, &t, &n, err, sizeof(err)), -1);
    assert_null(t);
    if (!strstr(err, "IP address mismatch")) fail_msg("error: %s", err);
    assert_int_equal(f.nresources, 0); /* the server never saw a request */
    SSL_CTX_free(f.tls);

    /* naming 127.0.0.1: the request goes through */
    const char *mine[] = {"DNS:broker.elsewhere.example", "IP:127.0.0.1"};
    f.tls = server_ctx(ca, dir, mine, 2);
    if (describe_as(&f, 0, ca_path, &t, &n, err, sizeof(err)) < 0) fail_msg("describe: %s", err);
    assert_int_equal(n, 2);
    assert_string_equal(t[0].keys[0], "retention.ms");
    kp_pool_raw_topic_cfgs_free(t, n);
    SSL_CTX_free(f.tls);

    kp_pki_ca_free(ca);
    ut_tmpdir_remove(dir);
}

static void test_controller_and_racks(void **state)
{
    (void)state;
    /* a port nothing listens on (bound, then closed): refused at once */
    int dead_port;
    close(loopback_socket(0, &dead_port));

    fake_pool_t f = {0};
    pthread_t th;
    fake_start(&f, 0, &th);
    char addr[128], err[256] = "";
    snprintf(addr, sizeof(addr), "127.0.0.1:%d,127.0.0.1:%d", dead_port, f.port);
    kp_pool_conn_t conf = {.bootstrap = addr, .timeout_ms = 30000};
    kp_pool_raw_t *raw = kp_pool_raw_new(&conf);
    int32_t controller, *ids;
    char **racks;
    int n;
    assert_int_equal(
        kp_pool_raw_controller_racks(raw, &controller, &ids, &racks, &n, err, sizeof(err)), 0);
    kp_pool_raw_free(raw);
    pthread_join(th, NULL);
    close(f.lfd);
    assert_int_equal(f.key, KP_API_METADATA);
    assert_int_equal(f.version, 1);
    assert_int_equal(f.ntopics, 0); /* no topic, not every topic */
    assert_int_equal(controller, 7);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 7);
    assert_string_equal(racks[0], "rack-a");
    assert_int_equal(ids[1], 8);
    assert_null(racks[1]);
    kp_pool_raw_racks_free(ids, racks, n);

    /* a malformed answer, and no pool at all: errors, nothing returned */
    fake_start(&f, 1, &th);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", f.port);
    raw = kp_pool_raw_new(&conf);
    assert_int_equal(
        kp_pool_raw_controller_racks(raw, &controller, &ids, &racks, &n, err, sizeof(err)), -1);
    assert_int_equal(controller, -1);
    assert_int_equal(n, 0);
    assert_null(ids);
    kp_pool_raw_free(raw);
    pthread_join(th, NULL);
    close(f.lfd);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", dead_port);
    raw = kp_pool_raw_new(&conf);
    assert_int_equal(
        kp_pool_raw_controller_racks(raw, &controller, &ids, &racks, &n, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "cannot connect to 127.0.0.1:"));
    kp_pool_raw_free(raw);
}

/* A broker that accepted the connection and then said nothing (SIGSTOPped, its loop stuck):
 * the TLS handshake gives up at the timeout with an error instead of blocking the
 * reconciler's thread for good. The call runs in a thread so that the old behaviour fails
 * the test rather than hanging it. */
typedef struct {
    kp_pool_conn_t conf;
    int rc;
    char err[256];
    int done;
} silent_call_t;

static void *silent_call(void *arg)
{
    silent_call_t *c = arg;
    kp_pool_raw_t *raw = kp_pool_raw_new(&c->conf);
    int32_t controller, *ids;
    char **racks;
    int n;
    c->rc =
        kp_pool_raw_controller_racks(raw, &controller, &ids, &racks, &n, c->err, sizeof(c->err));
    kp_pool_raw_free(raw);
    __atomic_store_n(&c->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void test_silent_broker_times_out(void **state)
{
    (void)state;
    int port;
    int lfd = loopback_socket(1, &port); /* the kernel accepts; nobody ever answers */
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    /* over TLS: plaintext requests were bounded already (poll), the handshake was not */
    static char dir[256], ca_path[512]; /* static: outlive the test if the call never returns */
    char err[256];
    ut_tmpdir_make(dir, sizeof(dir));
    kp_pki_ca_t *ca = kp_pki_ca_create("pool CA", 1, KP_PKI_KEY_EC_P256, err, sizeof(err));
    if (!ca) fail_msg("ca: %s", err);
    char *ca_pem = kp_pki_ca_cert_pem(ca);
    write_file(dir, "ca.pem", ca_pem, ca_path, sizeof(ca_path));
    free(ca_pem);
    kp_pki_ca_free(ca);
    static silent_call_t c;
    memset(&c, 0, sizeof(c));
    c.conf = (kp_pool_conn_t){.bootstrap = addr, .ca_path = ca_path, .timeout_ms = 500};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, silent_call, &c), 0);
    for (int i = 0; i < 200 && !__atomic_load_n(&c.done, __ATOMIC_ACQUIRE); i++) usleep(50 * 1000);
    if (!__atomic_load_n(&c.done, __ATOMIC_ACQUIRE))
        fail_msg("the call to a silent broker had not returned after 10 s (timeout 500 ms)");
    pthread_join(th, NULL);
    close(lfd);
    ut_tmpdir_remove(dir);
    assert_int_equal(c.rc, -1);
    if (!strstr(c.err, "TLS to the pool at 127.0.0.1:")) fail_msg("error: %s", c.err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_describe_topic_configs),
        cmocka_unit_test(test_describe_topic_configs_bad_answers),
        cmocka_unit_test(test_tls_verifies_the_brokers_address),
        cmocka_unit_test(test_controller_and_racks),
        cmocka_unit_test(test_silent_broker_times_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

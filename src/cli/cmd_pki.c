/*
 * cmd_pki.c — `kpool pki-selftest --out DIR [--key-type ec|rsa]`: a hidden helper (not in
 * `kpool --help`) for tests and for checking an installation's OpenSSL. It runs the PKI the
 * way `kpool up` and the control plane will and writes everything it made into DIR, so
 * tests can check the files with `openssl`, `keytool` and real Kafka clients:
 *
 *   ca.pem, ca.key                    the CA (self-signed) and its key
 *   server.pem, server.key,           broker certificate for IP:127.0.0.1 and DNS:localhost,
 *   server-chain.pem                  its key, and certificate + CA
 *   client.pem, client.key            client certificate CN=selftest_app_0123abcd_1
 *   client-expired.pem, .key          the same CA and subject, expired nine days ago
 *   client.keystore.p12               client key + chain, PKCS#12, password in `password`
 *   client.truststore.jks             the CA as a trusted certificate, PKCS#12 content
 *   password                          the store password (random)
 *   master.key, client.key.sealed     a master key and the client key sealed with it (the
 *                                     seal is opened again and compared before exiting)
 *
 * Keys and the password are written with mode 0600 and DIR is created 0700. Nothing secret
 * is printed.
 */
#include "cli/cli.h"
#include "core/buf.h"
#include "pki/pki.h"
#include "core/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define SELFTEST_DAYS           30
#define SELFTEST_PASSWORD_LEN   32
#define SELFTEST_CLIENT_SUBJECT "CN=selftest_app_0123abcd_1"
#define SELFTEST_SEAL_AAD       "pki-selftest/client.key"

typedef struct selftest_opts {
    const char *out;
    const char *key_type;
} selftest_opts_t;

static const kp_option_t selftest_options[] = {
    KP_OPT_STRING(0, "out", selftest_opts_t, out, "DIR", "where the files go (required)"),
    KP_OPT_STRING(0, "key-type", selftest_opts_t, key_type, "ec|rsa", "the keys' type [ec]"),
    KP_OPT_END(),
};

const kp_opts_cmd_t kp_pki_selftest_cmd = {
    .name = "pki-selftest",
    .usage = "pki-selftest --out DIR [--key-type ec|rsa]",
    .description =
        "Creates a CA, a server certificate for 127.0.0.1/localhost, client certificates,\n"
        "a PKCS#12 keystore and truststore, and writes them into DIR (a test helper).\n",
    .options = selftest_options,
    .flags = KP_OPTS_NO_ARGS,
};

/* Writes data to dir/name with the given mode (also when the file existed). 0 or -1. */
static int selftest_write(const char *dir, const char *name, const void *data, size_t len, int mode)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path)) {
        fprintf(stderr, "kpool: %s/%s: path too long\n", dir, name);
        return -1;
    }
    int fd = kp_fs->open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    int rc = fd < 0 ? -1 : 0;
    if (rc == 0 && (fchmod(fd, (mode_t)mode) < 0 || kp_fs_pwrite_all(fd, data, len, 0) < 0))
        rc = -1;
    if (rc < 0) fprintf(stderr, "kpool: %s: %s\n", path, strerror(errno));
    if (fd >= 0) kp_fs->close(fd);
    return rc;
}

static int selftest_write_str(const char *dir, const char *name, const char *s, int mode)
{
    return selftest_write(dir, name, s, strlen(s), mode);
}

/* Issues one certificate and writes <base>.pem, <base>.key and, when chain_name is set, the
 * chain. out is filled for the caller (kp_pki_issued_free). 0 or -1. */
static int selftest_issue(const kp_pki_ca_t *ca, const kp_pki_issue_req_t *req, const char *dir,
                          const char *base, const char *chain_name, kp_pki_issued_t *out)
{
    char err[512], name[64];
    if (kp_pki_issue(ca, req, out, err, sizeof(err)) < 0) {
        fprintf(stderr, "kpool: issuing %s: %s\n", base, err);
        return -1;
    }
    snprintf(name, sizeof(name), "%s.pem", base);
    if (selftest_write_str(dir, name, out->cert_pem, 0644) < 0) return -1;
    snprintf(name, sizeof(name), "%s.key", base);
    if (selftest_write_str(dir, name, out->key_pem, 0600) < 0) return -1;
    if (chain_name && selftest_write_str(dir, chain_name, out->chain_pem, 0644) < 0) return -1;
    return 0;
}

/* The stores and the password. 0 or -1. */
static int selftest_stores(const char *dir, const kp_pki_issued_t *client, const char *ca_pem)
{
    char err[512];
    kp_buf_t ks, ts;
    kp_buf_init(&ks);
    kp_buf_init(&ts);
    char *password = kp_pki_random_password(SELFTEST_PASSWORD_LEN);
    int rc = -1;
    if (!password) {
        fprintf(stderr, "kpool: cannot make a random password\n");
    } else if (kp_pki_pkcs12_keystore(client->cert_pem, client->key_pem, client->chain_pem,
                                      password, &ks, err, sizeof(err)) < 0 ||
               kp_pki_pkcs12_truststore(ca_pem, password, &ts, err, sizeof(err)) < 0) {
        fprintf(stderr, "kpool: PKCS#12: %s\n", err);
    } else if (selftest_write(dir, "client.keystore.p12", ks.data, ks.len, 0600) == 0 &&
               selftest_write(dir, "client.truststore.jks", ts.data, ts.len, 0644) == 0 &&
               selftest_write_str(dir, "password", password, 0600) == 0) {
        rc = 0;
    }
    kp_pki_secret_free(password);
    kp_buf_free(&ks);
    kp_buf_free(&ts);
    return rc;
}

/* Seals the client key under a fresh master key, writes it, opens it again and compares. */
static int selftest_seal(const char *dir, const char *key_pem)
{
    char err[512], path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/master.key", dir);
    kp_pki_master_key_t mk;
    if (kp_pki_master_key_load_or_create(path, &mk, err, sizeof(err)) < 0) {
        fprintf(stderr, "kpool: %s\n", err);
        return -1;
    }
    kp_buf_t sealed, opened;
    kp_buf_init(&sealed);
    kp_buf_init(&opened);
    const char *aad = SELFTEST_SEAL_AAD;
    int rc = -1;
    if (kp_pki_seal(&mk, key_pem, strlen(key_pem), aad, strlen(aad), &sealed, err, sizeof(err)) <
            0 ||
        kp_pki_open(&mk, sealed.data, sealed.len, aad, strlen(aad), &opened, err, sizeof(err)) <
            0) {
        fprintf(stderr, "kpool: seal: %s\n", err);
    } else if (opened.len != strlen(key_pem) || memcmp(opened.data, key_pem, opened.len) != 0) {
        fprintf(stderr, "kpool: seal: the opened value differs from the sealed one\n");
    } else {
        rc = selftest_write(dir, "client.key.sealed", sealed.data, sealed.len, 0600);
    }
    kp_pki_master_key_wipe(&mk);
    kp_pki_buf_wipe(&opened);
    kp_buf_free(&sealed);
    return rc;
}

static int selftest_run(const char *dir, kp_pki_key_type_t key_type)
{
    char err[512];
    if (kp_fs_mkdirs(dir, 0700) < 0) {
        fprintf(stderr, "kpool: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    kp_pki_ca_t *ca =
        kp_pki_ca_create("kpool selftest CA", SELFTEST_DAYS, key_type, err, sizeof(err));
    if (!ca) {
        fprintf(stderr, "kpool: creating the CA: %s\n", err);
        return 1;
    }
    char *ca_pem = kp_pki_ca_cert_pem(ca), *ca_key = kp_pki_ca_key_pem(ca);
    kp_pki_issued_t server = {0}, client = {0}, expired = {0};
    static const char *const server_sans[] = {"IP:127.0.0.1", "DNS:localhost"};
    kp_pki_issue_req_t sreq = {.subject = "CN=localhost,O=kpool",
                               .validity_days = SELFTEST_DAYS,
                               .key_type = key_type,
                               .usage = KP_PKI_USAGE_SERVER,
                               .sans = server_sans,
                               .nsans = 2};
    kp_pki_issue_req_t creq = {.subject = SELFTEST_CLIENT_SUBJECT,
                               .validity_days = SELFTEST_DAYS,
                               .key_type = key_type,
                               .usage = KP_PKI_USAGE_CLIENT};
    kp_pki_issue_req_t ereq = creq;
    ereq.validity_days = 1;
    ereq.issued_at_s = (int64_t)time(NULL) - 10 * 86400;
    int rc = 1;
    if (!ca_pem || !ca_key || selftest_write_str(dir, "ca.pem", ca_pem, 0644) < 0 ||
        selftest_write_str(dir, "ca.key", ca_key, 0600) < 0 ||
        selftest_issue(ca, &sreq, dir, "server", "server-chain.pem", &server) < 0 ||
        selftest_issue(ca, &creq, dir, "client", "client-chain.pem", &client) < 0 ||
        selftest_issue(ca, &ereq, dir, "client-expired", NULL, &expired) < 0 ||
        selftest_stores(dir, &client, ca_pem) < 0 || selftest_seal(dir, client.key_pem) < 0)
        goto done;
    printf("pki-selftest: wrote CA, server and client certificates (%s), keystore and "
           "truststore to %s\n",
           kp_pki_key_type_name(key_type), dir);
    rc = 0;
done:
    kp_pki_issued_free(&server);
    kp_pki_issued_free(&client);
    kp_pki_issued_free(&expired);
    free(ca_pem);
    kp_pki_secret_free(ca_key);
    kp_pki_ca_free(ca);
    return rc;
}

int kp_cmd_pki_selftest(int argc, char **argv)
{
    selftest_opts_t o = {0};
    kp_pki_key_type_t key_type = KP_PKI_KEY_EC_P256;
    int rc = kp_opts_parse(&kp_pki_selftest_cmd, &o, argc, argv, NULL, NULL);
    if (rc) return rc == KP_OPTS_HELP ? 0 : rc;
    if (o.key_type && kp_pki_key_type_parse(o.key_type, &key_type) < 0) {
        fprintf(stderr, "kpool: --key-type: '%s' is not ec or rsa\n", o.key_type);
        return 2;
    }
    if (!o.out) return kp_opts_error("pki-selftest", "--out DIR is required");
    return selftest_run(o.out, key_type);
}

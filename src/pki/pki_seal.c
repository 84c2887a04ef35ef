/*
 * pki_seal.c — encryption at rest for secrets the control plane stores (private keys, store
 * passwords), the master key file that protects them, and random passwords.
 *
 * Sealed value, version 1 (KP_PKI_SEAL_*):
 *
 *     "KPS" 0x01 | nonce (12 random bytes) | AES-256-GCM ciphertext | tag (16)
 *
 * The 4-byte header and the caller's aad are GCM additional data, so the version cannot be
 * changed and a value cannot be replayed under another record's aad. Random 96-bit nonces
 * are safe for far more seals than a control plane makes with one key (NIST SP 800-38D
 * bounds random-nonce use at 2^32 messages per key). A later version byte can introduce key
 * ids for master-key rotation; version 1 values keep opening.
 *
 * The master key file is exactly KP_PKI_MASTER_KEY_BYTES raw bytes, mode 0600, owned by the
 * user kpool runs as. It is created once and never rewritten: losing it loses every sealed
 * secret (they can be re-issued), so creation must never replace an existing file.
 */
#include "pki/pki_int.h"

#include "core/logging.h"
#include "core/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>

static const uint8_t pki_seal_header_v1[KP_PKI_SEAL_HEADER_BYTES] = {'K', 'P', 'S', 0x01};

/* ------------------------------------------------------------------ wiping, passwords */

void kp_pki_buf_wipe(kp_buf_t *b)
{
    if (b->data) OPENSSL_cleanse(b->data, b->cap);
    kp_buf_free(b);
}

void kp_pki_master_key_wipe(kp_pki_master_key_t *key)
{
    OPENSSL_cleanse(key->bytes, sizeof(key->bytes));
}

char *kp_pki_random_password(size_t length)
{
    /* 64 symbols: a random byte's low 6 bits pick one uniformly */
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                   "0123456789-_";
    _Static_assert(sizeof(alphabet) - 1 == 64, "the alphabet must have 64 symbols");
    if (length < KP_PKI_PASSWORD_LEN_MIN || length > KP_PKI_PASSWORD_LEN_MAX) return NULL;
    unsigned char rnd[KP_PKI_PASSWORD_LEN_MAX];
    if (RAND_bytes(rnd, (int)length) != 1) {
        ERR_clear_error();
        return NULL;
    }
    char *s = kp_xmalloc(length + 1);
    for (size_t i = 0; i < length; i++) s[i] = alphabet[rnd[i] & 63];
    s[length] = 0;
    OPENSSL_cleanse(rnd, sizeof(rnd));
    return s;
}

static void pki_hex(const unsigned char *p, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[p[i] >> 4];
        out[2 * i + 1] = hx[p[i] & 15];
    }
    out[2 * n] = 0;
}

static int pki_salted_digest(const char *password, const char *salt_hex, unsigned char md[32])
{
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(ctx, salt_hex, strlen(salt_hex)) == 1 &&
             EVP_DigestUpdate(ctx, "$", 1) == 1 &&
             EVP_DigestUpdate(ctx, password, strlen(password)) == 1 &&
             EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 32;
    EVP_MD_CTX_free(ctx);
    if (!ok) ERR_clear_error();
    return ok ? 0 : -1;
}

int kp_pki_password_hash(const char *password, char out[KP_PKI_PASSWORD_HASH_LEN])
{
    unsigned char salt[16], md[32];
    char salt_hex[33], md_hex[65];
    if (RAND_bytes(salt, sizeof(salt)) != 1) {
        ERR_clear_error();
        return -1;
    }
    pki_hex(salt, sizeof(salt), salt_hex);
    if (pki_salted_digest(password, salt_hex, md) < 0) return -1;
    pki_hex(md, sizeof(md), md_hex);
    snprintf(out, KP_PKI_PASSWORD_HASH_LEN, "sha256$%s$%s", salt_hex, md_hex);
    OPENSSL_cleanse(md, sizeof(md));
    return 0;
}

int kp_pki_password_verify(const char *password, const char *verifier)
{
    if (!password || !verifier || strncmp(verifier, "sha256$", 7) != 0) return 0;
    const char *salt = verifier + 7, *dollar = strchr(salt, '$');
    if (!dollar || dollar - salt != 32 || strlen(dollar + 1) != 64) return 0;
    char salt_hex[33], md_hex[65];
    memcpy(salt_hex, salt, 32);
    salt_hex[32] = 0;
    unsigned char md[32];
    if (pki_salted_digest(password, salt_hex, md) < 0) return 0;
    pki_hex(md, sizeof(md), md_hex);
    int same = CRYPTO_memcmp(md_hex, dollar + 1, 64) == 0;
    OPENSSL_cleanse(md, sizeof(md));
    return same;
}

/* ------------------------------------------------------------------ seal and open */

/* Sets up ctx for AES-256-GCM (encrypt or decrypt) with key and nonce and feeds the header
 * and the caller's aad as additional data. 0 or -1. */
static int pki_gcm_begin(EVP_CIPHER_CTX *ctx, int enc, const kp_pki_master_key_t *key,
                         const uint8_t *nonce, const void *aad, size_t aadlen)
{
    int outl;
    if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, KP_PKI_SEAL_NONCE_BYTES, NULL) != 1 ||
        EVP_CipherInit_ex(ctx, NULL, NULL, key->bytes, nonce, enc) != 1 ||
        EVP_CipherUpdate(ctx, NULL, &outl, pki_seal_header_v1, KP_PKI_SEAL_HEADER_BYTES) != 1)
        return -1;
    if (aadlen && EVP_CipherUpdate(ctx, NULL, &outl, aad, (int)aadlen) != 1) return -1;
    return 0;
}

static int pki_aad_check(const void *aad, size_t aadlen, char *err, size_t errlen)
{
    if (aadlen && !aad) return kp_pki_fail(err, errlen, "seal: aad is NULL");
    if (aadlen > KP_PKI_SEAL_BYTES_MAX)
        return kp_pki_fail(err, errlen, "seal: aad longer than %d bytes", KP_PKI_SEAL_BYTES_MAX);
    return 0;
}

int kp_pki_seal(const kp_pki_master_key_t *key, const void *plain, size_t len, const void *aad,
                size_t aadlen, kp_buf_t *out, char *err, size_t errlen)
{
    if (len > KP_PKI_SEAL_BYTES_MAX)
        return kp_pki_fail(err, errlen, "seal: %zu bytes, at most %d", len, KP_PKI_SEAL_BYTES_MAX);
    if (pki_aad_check(aad, aadlen, err, errlen) < 0) return -1;
    kp_buf_reset(out);
    uint8_t *p = kp_buf_extend(out, len + KP_PKI_SEAL_OVERHEAD);
    uint8_t *nonce = p + KP_PKI_SEAL_HEADER_BYTES;
    uint8_t *ct = nonce + KP_PKI_SEAL_NONCE_BYTES;
    memcpy(p, pki_seal_header_v1, KP_PKI_SEAL_HEADER_BYTES);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int outl = 0, finl = 0,
        ok = ctx && RAND_bytes(nonce, KP_PKI_SEAL_NONCE_BYTES) == 1 &&
             pki_gcm_begin(ctx, 1, key, nonce, aad, aadlen) == 0;
    if (ok && len) ok = EVP_EncryptUpdate(ctx, ct, &outl, plain, (int)len) == 1;
    ok = ok && EVP_EncryptFinal_ex(ctx, ct + outl, &finl) == 1 && (size_t)(outl + finl) == len &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, KP_PKI_SEAL_TAG_BYTES, ct + len) == 1;
    EVP_CIPHER_CTX_free(ctx);
    if (!ok) {
        kp_buf_reset(out);
        return kp_pki_fail(err, errlen, "seal: encryption failed");
    }
    return 0;
}

int kp_pki_open(const kp_pki_master_key_t *key, const void *sealed, size_t len, const void *aad,
                size_t aadlen, kp_buf_t *out, char *err, size_t errlen)
{
    const uint8_t *p = sealed;
    kp_buf_reset(out);
    if (pki_aad_check(aad, aadlen, err, errlen) < 0) return -1;
    if (len < KP_PKI_SEAL_HEADER_BYTES || memcmp(p, pki_seal_header_v1, 3) != 0)
        return kp_pki_fail(err, errlen, "open: not a sealed value");
    if (p[3] != pki_seal_header_v1[3])
        return kp_pki_fail(err, errlen,
                           "open: sealed-value version %u is not supported (this "
                           "kpool reads version 1)",
                           p[3]);
    if (len < KP_PKI_SEAL_OVERHEAD || len - KP_PKI_SEAL_OVERHEAD > KP_PKI_SEAL_BYTES_MAX)
        return kp_pki_fail(err, errlen, "open: sealed value has an impossible length (%zu)", len);
    size_t clen = len - KP_PKI_SEAL_OVERHEAD;
    const uint8_t *nonce = p + KP_PKI_SEAL_HEADER_BYTES;
    const uint8_t *ct = nonce + KP_PKI_SEAL_NONCE_BYTES;
    uint8_t *pt = kp_buf_extend(out, clen);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int outl = 0, finl = 0, ok = ctx && pki_gcm_begin(ctx, 0, key, nonce, aad, aadlen) == 0;
    if (ok && clen) ok = EVP_DecryptUpdate(ctx, pt, &outl, ct, (int)clen) == 1;
    ok = ok &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, KP_PKI_SEAL_TAG_BYTES,
                             (void *)(ct + clen)) == 1 &&
         EVP_DecryptFinal_ex(ctx, pt + outl, &finl) == 1 && (size_t)(outl + finl) == clen;
    EVP_CIPHER_CTX_free(ctx);
    if (!ok) {
        /* the unauthenticated plaintext must not outlive the failure */
        if (out->data) OPENSSL_cleanse(out->data, out->cap);
        kp_buf_reset(out);
        ERR_clear_error();
        return kp_pki_fail(err, errlen,
                           "open: authentication failed (wrong master key, wrong "
                           "context, or the value was modified)");
    }
    return 0;
}

/* ------------------------------------------------------------------ the master key file */

/* Reads the key file. 0 on success, 1 when it does not exist, -1 with err filled. */
static int pki_master_key_read(const char *path, kp_pki_master_key_t *out, char *err, size_t errlen)
{
    int fd = kp_fs->open(path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0 && errno == ENOENT) return 1;
    if (fd < 0) return kp_pki_fail(err, errlen, "master key %s: %s", path, strerror(errno));
    struct stat st;
    int rc = -1;
    /* checked on the open descriptor, so the file cannot be swapped between check and read */
    if (fstat(fd, &st) < 0)
        kp_pki_fail(err, errlen, "master key %s: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        kp_pki_fail(err, errlen, "master key %s: not a regular file", path);
    else if (st.st_mode & (S_IRWXG | S_IRWXO))
        kp_pki_fail(err, errlen,
                    "master key %s: mode %04o lets group or others read it; refusing to use it "
                    "(chmod 600 %s, and consider the key exposed)",
                    path, (unsigned)(st.st_mode & 07777), path);
    else if (st.st_uid != geteuid())
        kp_pki_fail(err, errlen, "master key %s: owned by uid %u, not by this user (uid %u)", path,
                    (unsigned)st.st_uid, (unsigned)geteuid());
    else if (st.st_size != KP_PKI_MASTER_KEY_BYTES)
        kp_pki_fail(err, errlen, "master key %s: %lld bytes, expected exactly %d", path,
                    (long long)st.st_size, KP_PKI_MASTER_KEY_BYTES);
    else if (kp_fs_pread_all(fd, out->bytes, KP_PKI_MASTER_KEY_BYTES, 0) < 0)
        kp_pki_fail(err, errlen, "master key %s: read: %s", path, strerror(errno));
    else
        rc = 0;
    kp_fs->close(fd);
    if (rc < 0) kp_pki_master_key_wipe(out);
    return rc;
}

/* Writes fresh random bytes to a 0600 temporary file and publishes it at path with link(2),
 * which fails instead of replacing a key another process published first. 1 when ours was
 * published, 0 when another process's was first, -1 with err filled. */
static int pki_master_key_create(const char *path, char *err, size_t errlen)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp))
        return kp_pki_fail(err, errlen, "master key %s: path too long", path);
    uint8_t key[KP_PKI_MASTER_KEY_BYTES];
    if (RAND_bytes(key, sizeof(key)) != 1)
        return kp_pki_fail(err, errlen, "master key: random generator failed");
    kp_fs->unlink(tmp); /* a leftover of a crashed attempt by a process with our pid */
    int fd = kp_fs->open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int rc = -1, published = 0;
    if (fd < 0) {
        kp_pki_fail(err, errlen, "master key %s: create: %s", tmp, strerror(errno));
    } else if (kp_fs_pwrite_all(fd, key, sizeof(key), 0) < 0 || kp_fs->fsync(fd) < 0) {
        kp_pki_fail(err, errlen, "master key %s: write: %s", tmp, strerror(errno));
    } else if (link(tmp, path) == 0) {
        rc = 0;
        published = 1;
    } else if (errno == EEXIST) {
        rc = 0;
    } else {
        kp_pki_fail(err, errlen, "master key %s: %s", path, strerror(errno));
    }
    OPENSSL_cleanse(key, sizeof(key));
    if (fd >= 0) kp_fs->close(fd);
    if (fd >= 0) kp_fs->unlink(tmp);
    if (rc < 0) return -1;
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *(slash == dir ? slash + 1 : slash) = 0;
    if (kp_fs_fsync_dir(slash ? dir : ".") < 0)
        return kp_pki_fail(err, errlen, "master key %s: fsync of its directory: %s", path,
                           strerror(errno));
    return published;
}

int kp_pki_master_key_load_or_create(const char *path, kp_pki_master_key_t *out, char *err,
                                     size_t errlen)
{
    /* read, else create and read back: the key in use is always the one on disk, and a
     * process that lost a creation race uses the winner's key */
    for (int attempt = 0; attempt < 2; attempt++) {
        int rc = pki_master_key_read(path, out, err, errlen);
        if (rc <= 0) return rc;
        if (attempt == 0) {
            int created = pki_master_key_create(path, err, errlen);
            if (created < 0) return -1;
            if (created) kp_info("pki", "created master key file %s", path);
        }
    }
    return kp_pki_fail(err, errlen, "master key %s: vanished right after it was created", path);
}

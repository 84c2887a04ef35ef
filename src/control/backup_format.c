/*
 * backup_format.c — the backup file format (see backup_format.h).
 *
 * Divided into: checksum and verification · encoding (JSON, gzip) and bounded decoding ·
 * record bytes as JSON · file names and atomic writes · retention · Kafka enum names.
 */
#include "control/backup_format.h"

#include "core/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

/* ---- checksum ---- */

int kp_backup_checksum(const json_t *doc, char out[80])
{
    if (!json_is_object(doc)) return -1;
    json_t *body = json_copy((json_t *)doc); /* shallow: members are shared, not changed */
    json_object_del(body, "checksum");
    char *text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(body);
    if (!text) return -1;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int ok = EVP_Digest(text, strlen(text), md, &mdlen, EVP_sha256(), NULL) == 1 && mdlen == 32;
    free(text);
    if (!ok) return -1;
    memcpy(out, "sha256:", 7);
    for (unsigned i = 0; i < mdlen; i++) snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
    return 0;
}

int kp_backup_seal(json_t *doc)
{
    char sum[80];
    if (kp_backup_checksum(doc, sum) < 0) return -1;
    return json_object_set_new(doc, "checksum", json_string(sum));
}

int kp_backup_verify(const json_t *doc, char *err, size_t errlen)
{
    const char *format = json_string_value(json_object_get(doc, "format"));
    if (!json_is_object(doc) || !format || strcmp(format, KP_BACKUP_FORMAT) != 0) {
        snprintf(err, errlen, "not a kpool backup (no \"format\": \"%s\")", KP_BACKUP_FORMAT);
        return -1;
    }
    json_t *version = json_object_get(doc, "formatVersion");
    if (!json_is_integer(version) || json_integer_value(version) < 1) {
        snprintf(err, errlen, "formatVersion is missing or invalid");
        return -1;
    }
    if (json_integer_value(version) > KP_BACKUP_FORMAT_VERSION) {
        snprintf(err, errlen,
                 "format version %lld is newer than this kpool reads (%d): use a newer kpool",
                 (long long)json_integer_value(version), KP_BACKUP_FORMAT_VERSION);
        return -1;
    }
    const char *recorded = json_string_value(json_object_get(doc, "checksum"));
    if (!recorded) {
        snprintf(err, errlen, "the checksum is missing: the file is incomplete or was edited");
        return -1;
    }
    char computed[80];
    if (kp_backup_checksum(doc, computed) < 0) {
        snprintf(err, errlen, "cannot compute the checksum");
        return -1;
    }
    if (strcmp(recorded, computed) != 0) {
        snprintf(err, errlen,
                 "checksum mismatch: the file is damaged or was edited (recorded %.80s, "
                 "computed %s)",
                 recorded, computed);
        return -1;
    }
    if (!json_string_value(json_object_get(doc, "pool"))) {
        snprintf(err, errlen, "the backup names no pool");
        return -1;
    }
    return 0;
}

/* ---- encoding ---- */

static void gzip_into(const char *text, size_t len, kp_buf_t *out)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    /* windowBits 15 + 16: a gzip wrapper (so `zcat` reads the file) */
    if (deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) abort();
    size_t bound = deflateBound(&zs, len);
    uint8_t *dst = kp_buf_extend(out, bound);
    zs.next_in = (Bytef *)text;
    zs.avail_in = (uInt)len;
    zs.next_out = dst;
    zs.avail_out = (uInt)bound;
    int rc = deflate(&zs, Z_FINISH);
    if (rc != Z_STREAM_END) abort(); /* deflateBound guarantees room */
    out->len -= zs.avail_out;
    deflateEnd(&zs);
}

void kp_backup_encode(const json_t *doc, int gzip, kp_buf_t *out)
{
    char *text = json_dumps(doc, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    if (!text) abort(); /* only on out of memory */
    size_t len = strlen(text);
    if (gzip)
        gzip_into(text, len, out);
    else {
        kp_buf_append(out, text, len);
        kp_buf_append(out, "\n", 1);
    }
    free(text);
}

/* Inflates a gzip stream into out, at most KP_BACKUP_BYTES_MAX bytes. */
static int gunzip_into(const uint8_t *data, size_t len, kp_buf_t *out, char *err, size_t errlen)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (inflateInit2(&zs, 15 + 16) != Z_OK) {
        snprintf(err, errlen, "cannot initialise zlib");
        return -1;
    }
    zs.next_in = (Bytef *)data;
    zs.avail_in = (uInt)len;
    int rc = Z_OK;
    while (rc != Z_STREAM_END) {
        if (out->len >= KP_BACKUP_BYTES_MAX) {
            snprintf(err, errlen, "decompressed, the file is larger than %u MiB",
                     KP_BACKUP_BYTES_MAX >> 20);
            inflateEnd(&zs);
            return -1;
        }
        size_t room = 256 * 1024;
        zs.next_out = kp_buf_extend(out, room);
        zs.avail_out = (uInt)room;
        rc = inflate(&zs, Z_NO_FLUSH);
        out->len -= zs.avail_out;
        if (rc != Z_OK && rc != Z_STREAM_END) {
            snprintf(err, errlen, "damaged gzip data (%s)",
                     rc == Z_BUF_ERROR ? "truncated"
                     : zs.msg          ? zs.msg
                                       : "inflate failed");
            inflateEnd(&zs);
            return -1;
        }
    }
    inflateEnd(&zs);
    if (zs.avail_in != 0) {
        snprintf(err, errlen, "damaged gzip data (bytes after the end of the stream)");
        return -1;
    }
    return 0;
}

json_t *kp_backup_decode(const uint8_t *data, size_t len, char *err, size_t errlen)
{
    if (len > KP_BACKUP_BYTES_MAX) {
        snprintf(err, errlen, "larger than %u MiB", KP_BACKUP_BYTES_MAX >> 20);
        return NULL;
    }
    kp_buf_t plain;
    kp_buf_init(&plain);
    const uint8_t *text = data;
    size_t text_len = len;
    if (len >= 2 && data[0] == 0x1f && data[1] == 0x8b) {
        if (gunzip_into(data, len, &plain, err, errlen) < 0) {
            kp_buf_free(&plain);
            return NULL;
        }
        text = plain.data;
        text_len = plain.len;
    }
    json_error_t je;
    json_t *doc =
        text_len ? json_loadb((const char *)text, text_len, JSON_REJECT_DUPLICATES, &je) : NULL;
    if (!doc) {
        if (text_len)
            snprintf(err, errlen, "not valid JSON (line %d, column %d: %s): the file is damaged",
                     je.line, je.column, je.text);
        else
            snprintf(err, errlen, "the file is empty");
    } else if (!json_is_object(doc)) {
        snprintf(err, errlen, "not a kpool backup (the document is not a JSON object)");
        json_decref(doc);
        doc = NULL;
    }
    kp_buf_free(&plain);
    return doc;
}

/* ---- record bytes ---- */

void kp_backup_bytes_put(json_t *obj, const char *field, const void *p, size_t n, int is_null)
{
    if (is_null) {
        json_object_set_new(obj, field, json_null());
        return;
    }
    /* json_stringn refuses invalid UTF-8: those bytes go in base64 */
    json_t *s = json_stringn(n ? (const char *)p : "", n);
    if (s) {
        json_object_set_new(obj, field, s);
        return;
    }
    char *b64 = kp_xmalloc(4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)b64, p, (int)n);
    char key[64];
    snprintf(key, sizeof(key), "%sBase64", field);
    json_object_set_new(obj, key, json_string(b64));
    free(b64);
}

int kp_backup_bytes_get(const json_t *obj, const char *field, uint8_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    json_t *v = json_object_get(obj, field);
    if (json_is_null(v)) return 0;
    if (json_is_string(v)) {
        *n = json_string_length(v);
        *out = kp_xmalloc(*n + 1);
        memcpy(*out, json_string_value(v), *n);
        return 0;
    }
    if (v) return -1;
    char key[64];
    snprintf(key, sizeof(key), "%sBase64", field);
    const char *b64 = json_string_value(json_object_get(obj, key));
    if (!b64) return -1;
    size_t len = strlen(b64);
    if (len % 4 != 0 || len > INT_MAX) return -1;
    uint8_t *buf = kp_xmalloc(len / 4 * 3 + 1);
    int got = EVP_DecodeBlock(buf, (const unsigned char *)b64, (int)len);
    if (got < 0) {
        free(buf);
        return -1;
    }
    size_t pad = len && b64[len - 1] == '=' ? (len > 1 && b64[len - 2] == '=' ? 2 : 1) : 0;
    *out = buf;
    *n = (size_t)got - pad;
    return 0;
}

/* ---- files ---- */

void kp_backup_time_format(int64_t time_ms, char out[32])
{
    time_t s = (time_t)(time_ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char base[24];
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 32, "%s.%03dZ", base, (int)(time_ms % 1000));
}

void kp_backup_file_name(const char *pool, int64_t time_ms, int gzip, char *out, size_t outlen)
{
    time_t s = (time_t)(time_ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char ts[24];
    strftime(ts, sizeof(ts), "%Y%m%dT%H%M%S", &tm);
    snprintf(out, outlen, "%s-%s.%03dZ.json%s", pool, ts, (int)(time_ms % 1000), gzip ? ".gz" : "");
}

static int all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

int kp_backup_file_parse(const char *name, char *pool, size_t poollen, int64_t *time_ms)
{
    size_t n = strlen(name);
    if (n > 8 && !strcmp(name + n - 8, ".json.gz"))
        n -= 8;
    else if (n > 5 && !strcmp(name + n - 5, ".json"))
        n -= 5;
    else
        return -1;
    /* <pool>-YYYYMMDDTHHMMSS.mmmZ : the time part is 20 characters after the '-' */
    if (n < 22 || name[n - 21] != '-') return -1;
    const char *ts = name + n - 20;
    if (!all_digits(ts, 8) || ts[8] != 'T' || !all_digits(ts + 9, 6) || ts[15] != '.' ||
        !all_digits(ts + 16, 3) || ts[19] != 'Z')
        return -1;
    size_t plen = n - 21;
    if (plen == 0 || plen > KP_BACKUP_POOL_NAME_MAX || plen >= poollen) return -1;
    memcpy(pool, name, plen);
    pool[plen] = 0;
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    char buf[16];
    memcpy(buf, ts, 15);
    buf[15] = 0;
    const char *end = strptime(buf, "%Y%m%dT%H%M%S", &tm);
    if (!end || *end) return -1;
    *time_ms = (int64_t)timegm(&tm) * 1000 + atoi(ts + 16);
    return 0;
}

int kp_backup_file_write(const char *dir, const char *name, const void *data, size_t len, char *err,
                         size_t errlen)
{
    char path[PATH_MAX], tmp[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path) ||
        snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name) >= (int)sizeof(tmp)) {
        snprintf(err, errlen, "%s/%s: path too long", dir, name);
        return -1;
    }
    const char *step = "create";
    int saved;
    int fd = kp_fs->open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) goto fail;
    step = "write";
    if (kp_fs_pwrite_all(fd, data, len, 0) < 0) goto fail_fd;
    step = "fsync";
    if (kp_fs->fsync(fd) < 0) goto fail_fd;
    kp_fs->close(fd);
    step = "rename";
    if (kp_fs->rename(tmp, path) < 0) goto fail;
    if (kp_fs_fsync_dir(dir) < 0) {
        /* the rename may not be durable: report failure and leave no file that a crash
         * could take back */
        snprintf(err, errlen, "fsync of directory %s: %s", dir, strerror(errno));
        kp_fs->unlink(path);
        return -1;
    }
    return 0;
fail_fd:
    saved = errno;
    kp_fs->close(fd);
    errno = saved;
fail:
    saved = errno;
    snprintf(err, errlen, "%s %s: %s", step, tmp, strerror(saved));
    kp_fs->unlink(tmp);
    return -1;
}

json_t *kp_backup_file_read(const char *path, size_t *file_size, char *err, size_t errlen)
{
    uint8_t *data;
    size_t len;
    if (kp_fs_read_all(path, KP_BACKUP_BYTES_MAX, &data, &len) < 0) {
        if (errno == EFBIG)
            snprintf(err, errlen, "%s: larger than %u MiB", path, KP_BACKUP_BYTES_MAX >> 20);
        else
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    if (file_size) *file_size = len;
    char why[512];
    json_t *doc = kp_backup_decode(data, len, why, sizeof(why));
    free(data);
    if (!doc) snprintf(err, errlen, "%s: %s", path, why);
    return doc;
}

/* ---- retention ---- */

int kp_backup_retention_select(const int64_t *times_ms, const int *ok, size_t n, int64_t now_ms,
                               int64_t count_max, int64_t days_max, int *del)
{
    size_t keep = n; /* the newest good backup */
    for (size_t i = 0; i < n && keep == n; i++)
        if (ok[i]) keep = i;
    int ndel = 0;
    for (size_t i = 0; i < n; i++) {
        del[i] = 0;
        if (i == keep) continue;
        if (count_max > 0 && (int64_t)i >= count_max) del[i] = 1;
        if (days_max > 0 && now_ms - times_ms[i] > days_max * 86400000) del[i] = 1;
        ndel += del[i];
    }
    return ndel;
}

/* ---- Kafka names ---- */

static const char *const resource_names[] = {
    "UNKNOWN", "ANY", "TOPIC", "GROUP", "CLUSTER", "TRANSACTIONAL_ID", "DELEGATION_TOKEN", "USER"};
static const char *const pattern_names[] = {"UNKNOWN", "ANY", "MATCH", "LITERAL", "PREFIXED"};
static const char *const operation_names[] = {"UNKNOWN",
                                              "ANY",
                                              "ALL",
                                              "READ",
                                              "WRITE",
                                              "CREATE",
                                              "DELETE",
                                              "ALTER",
                                              "DESCRIBE",
                                              "CLUSTER_ACTION",
                                              "DESCRIBE_CONFIGS",
                                              "ALTER_CONFIGS",
                                              "IDEMPOTENT_WRITE",
                                              "CREATE_TOKENS",
                                              "DESCRIBE_TOKENS"};
static const char *const permission_names[] = {"UNKNOWN", "ANY", "DENY", "ALLOW"};

#define COUNT(a) ((int)(sizeof(a) / sizeof(*(a))))

static const char *name_of(const char *const *names, int count, int v)
{
    return v >= 0 && v < count ? names[v] : NULL;
}

static int value_of(const char *const *names, int count, const char *s)
{
    for (int i = 0; s && i < count; i++)
        if (!strcmp(names[i], s)) return i;
    return -1;
}

const char *kp_backup_acl_resource_name(int v)
{
    return name_of(resource_names, COUNT(resource_names), v);
}
const char *kp_backup_acl_pattern_name(int v)
{
    return name_of(pattern_names, COUNT(pattern_names), v);
}
const char *kp_backup_acl_operation_name(int v)
{
    return name_of(operation_names, COUNT(operation_names), v);
}
const char *kp_backup_acl_permission_name(int v)
{
    return name_of(permission_names, COUNT(permission_names), v);
}
int kp_backup_acl_resource_value(const char *s)
{
    return value_of(resource_names, COUNT(resource_names), s);
}
int kp_backup_acl_pattern_value(const char *s)
{
    return value_of(pattern_names, COUNT(pattern_names), s);
}
int kp_backup_acl_operation_value(const char *s)
{
    return value_of(operation_names, COUNT(operation_names), s);
}
int kp_backup_acl_permission_value(const char *s)
{
    return value_of(permission_names, COUNT(permission_names), s);
}

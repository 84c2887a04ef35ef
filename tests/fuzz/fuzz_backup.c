/*
 * fuzz_backup.c — libFuzzer target for backup files (control/backup_format.c and the
 * restore's document checks), the parser a restore runs on a file from anywhere.
 *
 * The input is a backup file (JSON or gzip). Checked: no crash or out-of-bounds read for any
 * input; a document that decodes is verified, then sealed (so mutations get past the
 * checksum) and must verify; the restore's validation runs on it; a valid document survives
 * encoding (plain and gzip) and decoding unchanged.
 */
#include "control/backup_format.h"
#include "control/backup_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_backup: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[1024];
    json_t *doc = kp_backup_decode(data, size, err, sizeof(err));
    if (!doc) return 0;
    kp_backup_verify(doc, err, sizeof(err));
    /* sealing fixes the checksum: whatever still fails is about something else */
    if (kp_backup_seal(doc) == 0 && kp_backup_verify(doc, err, sizeof(err)) < 0)
        check(!strstr(err, "checksum"), "a sealed document fails its checksum");
    if (kp_backup_validate(doc, err, sizeof(err)) == 0) {
        for (int gz = 0; gz < 2; gz++) {
            kp_buf_t b;
            kp_buf_init(&b);
            kp_backup_encode(doc, gz, &b);
            json_t *back = kp_backup_decode(b.data, b.len, err, sizeof(err));
            check(back && json_equal(back, doc), "encode/decode changed the document");
            json_decref(back);
            kp_buf_free(&b);
        }
    }
    json_decref(doc);
    return 0;
}

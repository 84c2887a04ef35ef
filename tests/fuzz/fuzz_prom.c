/*
 * fuzz_prom.c — libFuzzer target for the Prometheus text parser the control plane runs on a
 * broker's /metrics page (control/pool_metrics.c: kp_prom_parse, kp_prom_label), and what
 * the console's sampler takes from it (kp_pool_metrics_digest: latency buckets, partition
 * figures, per-topic traffic, broker info, added up over brokers).
 *
 * Checked: no crash or over-read for any page; every sample reported has a non-empty name
 * within the input and labels within the input; a label found fits its buffer and is
 * NUL-terminated; the number of samples is at most the number of lines.
 */
#include "control/pool_metrics.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *base;
    size_t len;
    int n;
} ctx_t;

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_prom: %s\n", what);
        abort();
    }
}

static void on_sample(const char *name, size_t nl, const char *labels, size_t ll, double v,
                      void *arg)
{
    ctx_t *c = arg;
    (void)v;
    c->n++;
    check(nl > 0 && name >= c->base && name + nl <= c->base + c->len, "name inside the page");
    check(labels >= c->base && labels + ll <= c->base + c->len, "labels inside the page");
    static const char *const keys[] = {"le", "topic", "partition", "api", ""};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        char out[32];
        memset(out, 'x', sizeof(out));
        if (kp_prom_label(labels, ll, keys[i], out, sizeof(out)) == 0)
            check(memchr(out, 0, sizeof(out)) != NULL, "label NUL-terminated");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a copy without a terminator: the parser must respect len */
    char *page = malloc(size ? size : 1);
    memcpy(page, data, size);
    ctx_t c = {page, size, 0};
    int n = kp_prom_parse(page, size, on_sample, &c);
    size_t lines = 1;
    for (size_t i = 0; i < size; i++) lines += page[i] == '\n';
    check(n == c.n && (size_t)n <= lines, "count of samples");
    check(kp_pool_metrics_digest(page, size) == n, "the sampler reads the same samples");
    free(page);
    return 0;
}

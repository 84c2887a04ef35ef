/*
 * test_prom.c — the Prometheus text parser the control plane runs on brokers' /metrics
 * (control/pool_metrics.c): samples with and without labels, quoted '}' and escapes in label
 * values, timestamps, +Inf / NaN, comments and malformed lines skipped, CRLF-free input
 * without a final newline; label lookup (absent, escaped, too long).
 */
#include "unit.h"

#include "control/pool_metrics.h"

#include <math.h>

typedef struct {
    int n;
    char names[8][64], labels[8][128];
    double values[8];
} got_t;

static void on(const char *name, size_t nl, const char *labels, size_t ll, double v, void *arg)
{
    got_t *g = arg;
    if (g->n < 8) {
        snprintf(g->names[g->n], sizeof(g->names[0]), "%.*s", (int)nl, name);
        snprintf(g->labels[g->n], sizeof(g->labels[0]), "%.*s", (int)ll, labels);
        g->values[g->n] = v;
    }
    g->n++;
}

static void test_parse(void **state)
{
    (void)state;
    const char *page = "# HELP kpool_requests_total Requests.\n"
                       "# TYPE kpool_requests_total counter\n"
                       "kpool_requests_total{api=\"Produce\"} 12\n"
                       "\n"
                       "kpool_log_dir_free_bytes 1.5e9 1700000000000\n"
                       "h_bucket{le=\"+Inf\",x=\"a}b\\\"c\"} +Inf\n"
                       "bad{ 1\n"
                       "9starts_with_digit 1\n"
                       "novalue\n"
                       "nan_one NaN\n"
                       "last{a=\"1\"} 7";
    got_t g = {0};
    assert_int_equal(kp_prom_parse(page, strlen(page), on, &g), 5);
    assert_int_equal(g.n, 5);
    assert_string_equal(g.names[0], "kpool_requests_total");
    assert_string_equal(g.labels[0], "api=\"Produce\"");
    assert_true(g.values[0] == 12);
    assert_string_equal(g.names[1], "kpool_log_dir_free_bytes");
    assert_string_equal(g.labels[1], "");
    assert_true(g.values[1] == 1.5e9);
    assert_string_equal(g.names[2], "h_bucket");
    assert_true(isinf(g.values[2]));
    assert_string_equal(g.names[3], "nan_one");
    assert_true(isnan(g.values[3]));
    assert_string_equal(g.names[4], "last");
    assert_true(g.values[4] == 7);
    /* the length is respected: the page cut inside the last line drops it */
    got_t g2 = {0};
    assert_int_equal(kp_prom_parse(page, strlen(page) - 4, on, &g2), 4);
}

static void test_label(void **state)
{
    (void)state;
    const char *l = "le=\"+Inf\",x=\"a}b\\\"c\\\\\\n\", topic=\"t.x\"";
    char out[32];
    assert_int_equal(kp_prom_label(l, strlen(l), "le", out, sizeof(out)), 0);
    assert_string_equal(out, "+Inf");
    assert_int_equal(kp_prom_label(l, strlen(l), "x", out, sizeof(out)), 0);
    assert_string_equal(out, "a}b\"c\\\n");
    assert_int_equal(kp_prom_label(l, strlen(l), "topic", out, sizeof(out)), 0);
    assert_string_equal(out, "t.x");
    assert_int_equal(kp_prom_label(l, strlen(l), "partition", out, sizeof(out)), -1);
    assert_int_equal(kp_prom_label(l, strlen(l), "t", out, sizeof(out)), -1); /* not a prefix */
    char tiny[3];
    assert_int_equal(kp_prom_label(l, strlen(l), "le", tiny, sizeof(tiny)), -1); /* too long */
    assert_int_equal(kp_prom_label("a=\"unterminated", 15, "a", out, sizeof(out)), -1);
    assert_int_equal(kp_prom_label("", 0, "a", out, sizeof(out)), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_label),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_logging.c — core/logging: the rate-limited conditions (kp_log_limit_t).
 *
 *   - the first occurrence is logged, the next ones within the interval only counted; after
 *     the interval one line carries the counts; clearing logs once with the totals, and the
 *     next occurrence starts a new episode that is logged at once;
 *   - an hour of one failure per millisecond writes 61 lines (one a minute), not 3.6 million;
 *   - several threads hitting at once: one line, every occurrence counted;
 *   - a level below the threshold writes nothing; logfmt escaping still applies.
 * Lines are captured by pointing stderr at a temporary file.
 */
#include "unit.h"

#include "core/logging.h"

#include <fcntl.h>
#include <pthread.h>

static int saved_stderr = -1;
static int capture_fd = -1;

static void capture_start(void)
{
    char path[] = "/tmp/kpool-test-logging-XXXXXX";
    capture_fd = mkstemp(path);
    assert_true(capture_fd >= 0);
    unlink(path);
    saved_stderr = dup(STDERR_FILENO);
    assert_true(dup2(capture_fd, STDERR_FILENO) >= 0);
}

/* Stops capturing; the captured text (malloc'd). */
static char *capture_end(void)
{
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    off_t n = lseek(capture_fd, 0, SEEK_END);
    char *text = calloc(1, (size_t)n + 1);
    assert_int_equal(pread(capture_fd, text, (size_t)n, 0), n);
    close(capture_fd);
    return text;
}

static int lines(const char *text)
{
    int n = 0;
    for (const char *p = text; *p; p++) n += *p == '\n';
    return n;
}

static void test_once_then_interval_then_clear(void **state)
{
    (void)state;
    kp_log_limit_t l;
    kp_log_limit_init(&l, 60000);
    capture_start();
    assert_int_equal(kp_log_limit_clear(&l, 500, KP_LOG_INFO, "t", "never active"), 0);
    assert_int_equal(kp_log_limit_hit(&l, 1000, KP_LOG_ERROR, "t", "disk full: %s", "COMMIT"), 1);
    assert_true(kp_log_limit_active(&l));
    for (int i = 0; i < 3; i++)
        assert_int_equal(kp_log_limit_hit(&l, 2000 + i, KP_LOG_ERROR, "t", "disk full: x"), 0);
    assert_int_equal(kp_log_limit_hit(&l, 60999, KP_LOG_ERROR, "t", "disk full: x"), 0);
    assert_int_equal(kp_log_limit_hit(&l, 61000, KP_LOG_ERROR, "t", "disk full: %s", "y"), 1);
    assert_int_equal(kp_log_limit_hit(&l, 61001, KP_LOG_ERROR, "t", "disk full: z"), 0);
    assert_int_equal(kp_log_limit_clear(&l, 73500, KP_LOG_INFO, "t", "space is back"), 1);
    assert_false(kp_log_limit_active(&l));
    assert_int_equal(kp_log_limit_clear(&l, 73600, KP_LOG_INFO, "t", "space is back"), 0);
    /* a new episode: logged at once, counted from zero */
    assert_int_equal(kp_log_limit_hit(&l, 74000, KP_LOG_ERROR, "t", "disk full again"), 1);
    assert_int_equal(kp_log_limit_clear(&l, 74100, KP_LOG_INFO, "t", "back again"), 1);
    char *text = capture_end();
    assert_int_equal(lines(text), 5);
    assert_non_null(strstr(text, "level=error comp=t msg=\"disk full: COMMIT\"\n"));
    assert_non_null(strstr(
        text, "msg=\"disk full: y (4 more since the last report, 6 in all over 60.0 s)\"\n"));
    assert_non_null(strstr(
        text, "level=info comp=t msg=\"space is back (after 7 occurrences over 72.5 s, 5 not "
              "logged)\"\n"));
    assert_non_null(strstr(text, "msg=\"disk full again\"\n"));
    assert_non_null(
        strstr(text, "msg=\"back again (after 1 occurrences over 0.1 s, 0 not logged)\"\n"));
    assert_null(strstr(text, "never active"));
    free(text);
    kp_log_limit_destroy(&l);
}

static void test_an_hour_of_failures_is_61_lines(void **state)
{
    (void)state;
    static kp_log_limit_t l = KP_LOG_LIMIT_INIT(KP_LOG_LIMIT_INTERVAL_MS_DEFAULT);
    capture_start();
    int written = 0;
    for (int64_t ms = 0; ms <= 3600 * 1000; ms++)
        written += kp_log_limit_hit(&l, 1000000 + ms, KP_LOG_ERROR, "store", "disk full");
    char *text = capture_end();
    assert_int_equal(written, 61);
    assert_int_equal(lines(text), 61);
    assert_non_null(strstr(text, "(59999 more since the last report, 3600001 in all over "
                                 "3600.0 s)\"\n"));
    free(text);
}

#define THREADS     4
#define HITS_THREAD 20000

static kp_log_limit_t shared = KP_LOG_LIMIT_INIT(60000);
static atomic_int written_total;

static void *hitter(void *arg)
{
    (void)arg;
    for (int i = 0; i < HITS_THREAD; i++)
        atomic_fetch_add(&written_total,
                         kp_log_limit_hit(&shared, 5000, KP_LOG_ERROR, "t", "full"));
    return NULL;
}

static void test_threads_one_line_every_hit_counted(void **state)
{
    (void)state;
    capture_start();
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, hitter, NULL);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    assert_int_equal(kp_log_limit_clear(&shared, 6000, KP_LOG_INFO, "t", "ok"), 1);
    char *text = capture_end();
    assert_int_equal(atomic_load(&written_total), 1);
    assert_int_equal(lines(text), 2);
    char want[128];
    snprintf(want, sizeof(want), "ok (after %d occurrences over 1.0 s, %d not logged)",
             THREADS * HITS_THREAD, THREADS * HITS_THREAD - 1);
    assert_non_null(strstr(text, want));
    free(text);
}

static void test_level_and_escaping(void **state)
{
    (void)state;
    kp_log_limit_t l;
    kp_log_limit_init(&l, 1000);
    capture_start();
    kp_logging_set_level(KP_LOG_WARN);
    /* counted and reported as due, but an info line is below the threshold */
    assert_int_equal(kp_log_limit_hit(&l, 0, KP_LOG_INFO, "t", "quiet"), 1);
    assert_int_equal(kp_log_limit_hit(&l, 10, KP_LOG_INFO, "t", "quiet"), 0);
    kp_logging_set_level(KP_LOG_INFO);
    assert_int_equal(kp_log_limit_hit(&l, 2000, KP_LOG_WARN, "t", "a \"quoted\"\nname"), 1);
    char *text = capture_end();
    assert_null(strstr(text, "quiet"));
    assert_int_equal(lines(text), 1);
    assert_non_null(strstr(text, "msg=\"a \\\"quoted\\\"\\x0aname (1 more since the last report, "
                                 "3 in all over 2.0 s)\"\n"));
    free(text);
    kp_log_limit_destroy(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_once_then_interval_then_clear),
        cmocka_unit_test(test_an_hour_of_failures_is_61_lines),
        cmocka_unit_test(test_threads_one_line_every_hit_counted),
        cmocka_unit_test(test_level_and_escaping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

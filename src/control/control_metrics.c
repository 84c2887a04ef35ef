/*
 * control_metrics.c — the control plane's figures in /metrics (the process's admin.listener,
 * which `kpool up` shares with broker 1): reconciles per kind (count, failures, duration)
 * and credential issues (latency, failures). docs/metrics.md lists them.
 *
 * Counters are relaxed atomics in static storage (one control plane per process); the label
 * values are the fixed list of reconciled kinds, so the cardinality is bounded by it.
 */
#include "control/control_int.h"
#include "core/metrics.h"

#include <string.h>

static const char *const kinds[] = {"Pool",  "Topic", "Stream", "Application", "AivenApplication",
                                    "Secret"};
#define NKINDS (sizeof(kinds) / sizeof(*kinds))

static struct {
    atomic_llong total[NKINDS];
    atomic_llong failures[NKINDS];
    kp_hist_t seconds[NKINDS];
    kp_hist_t issue_seconds;
    atomic_llong issue_failures;
} m;

void kp_control_metrics_reconciled(const char *kind, int failed, int64_t us)
{
    for (size_t k = 0; k < NKINDS; k++) {
        if (strcmp(kind, kinds[k])) continue;
        kp_metric_add(&m.total[k], 1);
        if (failed) kp_metric_add(&m.failures[k], 1);
        kp_hist_observe_us(&m.seconds[k], us);
        return;
    }
}

void kp_control_metrics_credential(int ok, int64_t us)
{
    if (ok)
        kp_hist_observe_us(&m.issue_seconds, us);
    else
        kp_metric_add(&m.issue_failures, 1);
}

void kp_control_metrics_render(kp_buf_t *out, void *arg)
{
    (void)arg;
    kp_buf_appendf(out, "# HELP kpool_reconcile_total Reconciles the control plane ran, by "
                        "kind.\n# TYPE kpool_reconcile_total counter\n");
    for (size_t k = 0; k < NKINDS; k++)
        kp_buf_appendf(out, "kpool_reconcile_total{kind=\"%s\"} %lld\n", kinds[k],
                       (long long)atomic_load(&m.total[k]));
    kp_buf_appendf(out, "# HELP kpool_reconcile_failures_total Reconciles that ended in a "
                        "failed state (FailedPrepare, FailedSynchronization, RolloutFailed, "
                        "Unreachable), by kind.\n"
                        "# TYPE kpool_reconcile_failures_total counter\n");
    for (size_t k = 0; k < NKINDS; k++)
        kp_buf_appendf(out, "kpool_reconcile_failures_total{kind=\"%s\"} %lld\n", kinds[k],
                       (long long)atomic_load(&m.failures[k]));
    kp_buf_appendf(out, "# HELP kpool_reconcile_seconds Time one reconcile took, by kind.\n"
                        "# TYPE kpool_reconcile_seconds histogram\n");
    for (size_t k = 0; k < NKINDS; k++) {
        char labels[64];
        snprintf(labels, sizeof(labels), "kind=\"%s\"", kinds[k]);
        kp_metrics_render_hist(out, "kpool_reconcile_seconds", labels, &m.seconds[k]);
    }
    kp_buf_appendf(out, "# HELP kpool_credential_issue_seconds Time to issue an application's "
                        "credentials: key pair, certificate, secret written.\n"
                        "# TYPE kpool_credential_issue_seconds histogram\n");
    kp_metrics_render_hist(out, "kpool_credential_issue_seconds", "", &m.issue_seconds);
    kp_buf_appendf(out,
                   "# HELP kpool_credential_issue_failures_total Credential issues that failed "
                   "(no usable CA, certificate or secret not written).\n"
                   "# TYPE kpool_credential_issue_failures_total counter\n"
                   "kpool_credential_issue_failures_total %lld\n",
                   (long long)atomic_load(&m.issue_failures));
}

/* notify.c — wake-up callbacks of a producer of changes (see notify.h). */
#include "core/notify.h"

void kp_notify_init(kp_notify_t *nf)
{
    pthread_mutex_init(&nf->lock, NULL);
    nf->n = 0;
}

void kp_notify_destroy(kp_notify_t *nf)
{
    pthread_mutex_destroy(&nf->lock);
}

int kp_notify_add(kp_notify_t *nf, kp_notify_fn fn, void *arg)
{
    pthread_mutex_lock(&nf->lock);
    int rc = -1;
    if (nf->n < KP_NOTIFY_MAX) {
        nf->l[nf->n].fn = fn;
        nf->l[nf->n].arg = arg;
        nf->n++;
        rc = 0;
    }
    pthread_mutex_unlock(&nf->lock);
    return rc;
}

void kp_notify_remove(kp_notify_t *nf, kp_notify_fn fn, void *arg)
{
    pthread_mutex_lock(&nf->lock);
    for (int i = 0; i < nf->n; i++)
        if (nf->l[i].fn == fn && nf->l[i].arg == arg) {
            nf->l[i] = nf->l[--nf->n];
            break;
        }
    pthread_mutex_unlock(&nf->lock);
}

void kp_notify_fire(kp_notify_t *nf)
{
    pthread_mutex_lock(&nf->lock);
    for (int i = 0; i < nf->n; i++) nf->l[i].fn(nf->l[i].arg);
    pthread_mutex_unlock(&nf->lock);
}

/*
 * device_metrics.c - the epoch's sums on the device (see device_metrics.h).
 */
#include "train/device_metrics.h"

#include <stdint.h>

#include "common/error.h"

int device_metrics_start(struct device_metrics *m, const struct train_progress *p,
                         tc_device device)
{
    m->loss_sum = tc_own(tc_scalar_tensor(p->partial_loss_sum, TC_FLOAT64, device));
    m->correct = tc_own(tc_scalar_tensor(p->partial_correct, TC_INT64, device));
    m->pending = 0;
    m->every = device.type == TC_CUDA ? 50 : 1; /* on the CPU a read-back costs nothing */
    return m->loss_sum && m->correct ? 0 : err_set("metrics on the device: %s", tc_last_error());
}

int device_metrics_add(struct device_metrics *m, const tc_tensor *loss, const tc_tensor *logits,
                       const tc_tensor *y, int n)
{
    tc_scope *s = tc_scope_begin();
    tc_tensor *l = tc_mul_scalar(tc_to_dtype(tc_detach(loss), TC_FLOAT64), n);
    tc_tensor *c = tc_sum(tc_eq(tc_argmax(logits, 1), y));
    int rc = l && c && tc_add_(m->loss_sum, l) && tc_add_(m->correct, c) ? 0 : -1;
    tc_scope_end(s);
    m->pending++;
    return rc;
}

int device_metrics_flush(struct device_metrics *m, struct train_progress *p)
{
    int64_t correct = 0;
    if (m->pending == 0)
        return 0;
    if (tc_item_double(m->loss_sum, &p->partial_loss_sum) < 0 ||
        tc_item_int64(m->correct, &correct) < 0)
        return -1;
    p->partial_correct = (double)correct;
    m->pending = 0;
    return 0;
}

void device_metrics_free(struct device_metrics *m)
{
    tc_free(m->loss_sum);
    tc_free(m->correct);
}


/*
 * fuzz_up_ctl.c — libFuzzer target for the request parser of `kpool up`'s control socket
 * (daemon/up_ctl.h), which reads what `kpool pool restart` (or anything that connects) sends.
 *
 * Checked: no crash for any input; a parsed request is one of the known kinds and names a
 * broker within 1..KP_UP_CTL_BROKER_MAX when it names one; an error always says why.
 */
#include "daemon/up_ctl.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kp_up_req_t req;
    char err[128] = "";
    if (kp_up_ctl_parse((const char *)data, size, &req, err, sizeof(err)) < 0) {
        if (!err[0]) abort();
        return 0;
    }
    if (req.kind == KP_UP_REQ_BROKERS) return 0;
    if (req.kind != KP_UP_REQ_RESTART && req.kind != KP_UP_REQ_READY) abort();
    if (req.broker < 1 || req.broker > KP_UP_CTL_BROKER_MAX) abort();
    return 0;
}

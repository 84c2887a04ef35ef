/*
 * api_doctor.h — `kpool doctor`'s findings for one application, from the control plane's
 * store (api_doctor.c): what the console shows on an application's row.
 */
#ifndef KP_API_DOCTOR_H
#define KP_API_DOCTOR_H

#include "control/store.h"

#include <jansson.h>

/* {"kind": "DoctorReport", "metadata": {name, namespace}, "problems": n, "findings":
 * [{"level": "ok"|"problem"|"fix"|"note", "message"}]} for application app of namespace ns
 * (a new reference). The caller has authorized the request. Topics of every namespace are
 * looked at when all_ns (an admin's token), else only ns's — what the token may read, as
 * the CLI does with it. */
json_t *kp_api_doctor(kp_store_t *store, const char *ns, const char *app, int all_ns);

#endif

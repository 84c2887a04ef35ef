/*
 * api_doctor.h — `kpool doctor`'s findings for one application, from the control plane's
 * store (api_doctor.c): what the console shows on an application's row.
 */
#ifndef KP_API_DOCTOR_H
#define KP_API_DOCTOR_H

#include "control/store.h"
#include "pki/pki.h"

#include <jansson.h>

/* {"kind": "DoctorReport", "metadata": {name, namespace}, "problems": n, "findings":
 * [{"level": "ok"|"problem"|"fix"|"note", "message"}]} for application app of namespace ns
 * (a new reference). The caller has authorized the request. Topics of every namespace are
 * looked at when all_ns (an admin's token), else only ns's — what the token may read, as
 * the CLI does with it. */
json_t *kp_api_doctor(kp_store_t *store, const char *ns, const char *app, int all_ns);
/* The same, plus what the pool says with the application's own credentials (`kpool doctor`
 * without --no-connect): its Secret is opened with mk and a Kafka client connects with it
 * (up to KP_APP_PROBE_TIMEOUT_MS_DEFAULT), so call it off the API's threads. Those findings
 * carry "section": "pool"; "connected" is true when the check ran (the app has a secret). */
json_t *kp_api_doctor_connect(kp_store_t *store, const kp_pki_master_key_t *mk, const char *ns,
                              const char *app, int all_ns);

#endif

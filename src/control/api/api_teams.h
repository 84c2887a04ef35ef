/*
 * api_teams.h — the teams endpoints of the control plane API (docs/api.md, "Teams"): a team's
 * API token issued, rotated, revoked, and the teams listed. Admin tokens only (403 for a team
 * token; api.c answers 401 before anything gets here). api.c authenticates, routes and sends;
 * this file decides what to answer, without HTTP, so it is unit-tested directly:
 *
 *   GET    /apis/kpool.dev/v1/teams               TeamList
 *   POST   /apis/kpool.dev/v1/teams               {"name": T} -> 201 Team with "token";
 *                                                 409 AlreadyExists when T has a valid token
 *   GET    /apis/kpool.dev/v1/teams/T             Team, 404 when unknown
 *   POST   /apis/kpool.dev/v1/teams/T/rotate      200 Team with the new "token" and
 *                                                 "revoked" (how many); 404 without a token
 *   DELETE /apis/kpool.dev/v1/teams/T             revokes every token of T: 200 Team with
 *                                                 "revoked"; 404 without a token
 *
 * A Team is {apiVersion kpool.dev/v1, kind Team, metadata{name, creationTimestamp},
 * status{tokens, revokedTokens, resources, tokenCreationTimestamp, lastRevocationTimestamp}}.
 * Tokens appear only in the answer that issued them and are never logged.
 */
#ifndef KP_API_TEAMS_H
#define KP_API_TEAMS_H

#include "control/store.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kp_api_teams_req {
    const char *method;
    const char *name; /* the T of .../teams/T, NULL for the collection */
    int rotate;       /* .../teams/T/rotate */
    int admin;        /* the caller's token is an admin token */
    const uint8_t *body;
    size_t len;
} kp_api_teams_req_t;

/* The answer (a new reference: a Team, a TeamList or a Kubernetes Status; never NULL) with
 * its HTTP status in *code. Runs on an API thread; the store serializes writers. */
json_t *kp_api_teams_answer(kp_store_t *store, const kp_api_teams_req_t *req, unsigned *code);

#endif

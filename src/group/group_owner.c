/*
 * group_owner.c — who may use a group: the ACL check shared by the coordinator's handlers.
 * (Team ownership of groups comes next.)
 */
#include "group/group_int.h"

#include "auth/acl.h"

int16_t group_access(kp_coordinator_t *c, kp_req_t *req, kp_str_t group_id, int op, int claim)
{
    (void)c;
    (void)claim;
    return kp_req_authorize(req, op, KP_RES_GROUP, group_id) ? 0 : KERR_GROUP_AUTHORIZATION_FAILED;
}

/*
 * handle_acls.c — DescribeAcls, CreateAcls, DeleteAcls v0–v1 (v0 has no pattern type:
 * LITERAL). Describe needs DESCRIBE on the cluster, create/delete need ALTER, as Kafka. With
 * the authorizer disabled they answer SECURITY_DISABLED.
 */
#include "auth/acl.h"
#include "broker/replicated_pool.h"
#include "broker/request.h"
#include "kp_msgs.h"

#include <stdio.h>
#include <string.h>

static char *dup_str(kp_req_t *req, kp_str_t s)
{
    if (s.len < 0) return NULL;
    return kp_arena_strndup(&req->arena, s.ptr ? s.ptr : "", (size_t)s.len);
}

static kp_str_t arena_msg(kp_req_t *req, const char *msg)
{
    char *m = kp_arena_strndup(&req->arena, msg, strlen(msg));
    return m ? kp_str_c(m) : KP_STR_NULL;
}

static int16_t gate(kp_req_t *req, int op)
{
    kp_authorizer_t *a = req->sess->broker->authorizer;
    if (!kp_authorizer_enabled(a)) return KERR_SECURITY_DISABLED;
    if (!kp_req_authorize(req, op, KP_RES_CLUSTER, KP_STR_LIT(KP_CLUSTER_RESOURCE)))
        return KERR_CLUSTER_AUTHORIZATION_FAILED;
    return 0;
}

static const char *gate_message(int16_t err)
{
    return err == KERR_SECURITY_DISABLED ? "No Authorizer is configured on the broker"
                                         : "Cluster authorization failed";
}

/* ---- DescribeAcls ---- */

typedef struct describe_ctx {
    kp_req_t *req;
    DescribeAclsResponse *out;
    int cap;
    int failed;
} describe_ctx_t;

static void describe_one(const kp_acl_t *acl, void *arg)
{
    describe_ctx_t *d = arg;
    DescribeAclsResponse *out = d->out;
    if (d->failed) return;
    DescribeAclsResponse_DescribeAclsResource *r = NULL;
    for (int32_t i = 0; i < out->Resources.count && !r; i++) {
        DescribeAclsResponse_DescribeAclsResource *x = &out->Resources.items[i];
        if (x->ResourceType == acl->resource_type && x->PatternType == acl->pattern_type &&
            kp_str_eq_c(x->ResourceName, acl->resource_name))
            r = x;
    }
    if (!r) {
        if (out->Resources.count == d->cap) {
            int cap = d->cap ? d->cap * 2 : 16;
            void *n = kp_arena_alloc(&d->req->arena, (size_t)cap * sizeof(*r));
            if (!n) {
                d->failed = 1;
                return;
            }
            if (d->cap) memcpy(n, out->Resources.items, (size_t)d->cap * sizeof(*r));
            out->Resources.items = n;
            d->cap = cap;
        }
        r = &out->Resources.items[out->Resources.count++];
        DescribeAclsResponse_DescribeAclsResource_init(r);
        r->ResourceType = acl->resource_type;
        r->PatternType = acl->pattern_type;
        r->ResourceName = arena_msg(d->req, acl->resource_name);
        r->Acls.items = NULL;
        r->Acls.count = 0;
    }
    /* grow one by one: per-resource lists are short */
    void *n = kp_arena_alloc(&d->req->arena, (size_t)(r->Acls.count + 1) * sizeof(*r->Acls.items));
    if (!n) {
        d->failed = 1;
        return;
    }
    if (r->Acls.count) memcpy(n, r->Acls.items, (size_t)r->Acls.count * sizeof(*r->Acls.items));
    r->Acls.items = n;
    DescribeAclsResponse_AclDescription *a = &r->Acls.items[r->Acls.count++];
    a->Principal = arena_msg(d->req, acl->principal);
    a->Host = arena_msg(d->req, acl->host);
    a->Operation = acl->operation;
    a->PermissionType = acl->permission;
}

int kp_handle_describe_acls(kp_req_t *req)
{
    DescribeAclsRequest in;
    if (DescribeAclsRequest_decode(&req->body, req->api_version, &req->arena, &in) < 0) return -1;
    DescribeAclsResponse out;
    DescribeAclsResponse_init(&out);
    out.ErrorCode = gate(req, KP_OP_DESCRIBE);
    if (out.ErrorCode) {
        out.ErrorMessage = kp_str_c(gate_message(out.ErrorCode));
    } else if (in.ResourceTypeFilter == KP_RES_UNKNOWN || in.PatternTypeFilter == KP_PAT_UNKNOWN ||
               in.Operation == KP_OP_UNKNOWN || in.PermissionType == KP_PERM_UNKNOWN) {
        out.ErrorCode = KERR_INVALID_REQUEST;
        out.ErrorMessage = KP_STR_LIT("The filter contains an UNKNOWN element");
    } else {
        kp_acl_filter_t f = {in.ResourceTypeFilter,
                             in.PatternTypeFilter,
                             in.Operation,
                             in.PermissionType,
                             dup_str(req, in.ResourceNameFilter),
                             dup_str(req, in.PrincipalFilter),
                             dup_str(req, in.HostFilter)};
        describe_ctx_t d = {req, &out, 0, 0};
        kp_acl_list(req->sess->broker->authorizer, &f, describe_one, &d);
        if (d.failed) return -1;
    }
    kp_req_begin_response(req);
    DescribeAclsResponse_encode(&req->resp, req->api_version, &out);
    kp_req_finish(req);
    return 0;
}

/* ---- CreateAcls ---- */

int kp_handle_create_acls(kp_req_t *req)
{
    CreateAclsRequest in;
    if (CreateAclsRequest_decode(&req->body, req->api_version, &req->arena, &in) < 0) return -1;
    CreateAclsResponse out;
    CreateAclsResponse_init(&out);
    int32_t n = in.Creations.count > 0 ? in.Creations.count : 0;
    out.Results.items = kp_arena_calloc(&req->arena, (size_t)n + 1, sizeof(*out.Results.items));
    kp_acl_t *acls = kp_arena_calloc(&req->arena, (size_t)n + 1, sizeof(*acls));
    int *slot = kp_arena_calloc(&req->arena, (size_t)n + 1, sizeof(int));
    if (!out.Results.items || !acls || !slot) return -1;
    out.Results.count = n;
    int16_t err = gate(req, KP_OP_ALTER);
    int nacls = 0;
    for (int32_t i = 0; i < n; i++) {
        CreateAclsResponse_AclCreationResult *r = &out.Results.items[i];
        CreateAclsResponse_AclCreationResult_init(r);
        if (err) {
            r->ErrorCode = err;
            r->ErrorMessage = kp_str_c(gate_message(err));
            continue;
        }
        const CreateAclsRequest_AclCreation *c = &in.Creations.items[i];
        kp_acl_t acl = {
            c->ResourceType,      c->ResourcePatternType,        c->Operation,
            c->PermissionType,    dup_str(req, c->ResourceName), dup_str(req, c->Principal),
            dup_str(req, c->Host)};
        char msg[256];
        if (!acl.resource_name || !acl.principal || !acl.host ||
            kp_acl_validate(&acl, msg, sizeof(msg)) < 0) {
            r->ErrorCode = KERR_INVALID_REQUEST;
            r->ErrorMessage = arena_msg(req, acl.resource_name && acl.principal && acl.host
                                                 ? msg
                                                 : "Null resource name, principal or host");
            continue;
        }
        slot[nacls] = i;
        acls[nacls++] = acl;
    }
    char perr[512];
    if (nacls && kp_acl_add(req->sess->broker->authorizer, acls, nacls) < 0) {
        for (int k = 0; k < nacls; k++) {
            out.Results.items[slot[k]].ErrorCode = KERR_KAFKA_STORAGE_ERROR;
            out.Results.items[slot[k]].ErrorMessage = KP_STR_LIT("Could not store the ACLs");
        }
    } else if (nacls && req->sess->broker->pool && /* a pool: every broker takes them */
               kp_rpool_acls_added(req->sess->broker->pool, acls, nacls, perr, sizeof(perr)) < 0) {
        for (int k = 0; k < nacls; k++) {
            out.Results.items[slot[k]].ErrorCode = KERR_REQUEST_TIMED_OUT;
            out.Results.items[slot[k]].ErrorMessage = arena_msg(req, perr);
        }
    }
    kp_req_begin_response(req);
    CreateAclsResponse_encode(&req->resp, req->api_version, &out);
    kp_req_finish(req);
    return 0;
}

/* ---- DeleteAcls ---- */

typedef struct delete_ctx {
    kp_req_t *req;
    DeleteAclsResponse_DeleteAclsFilterResult *fr;
    int cap;
    int failed;
} delete_ctx_t;

static void deleted_one(const kp_acl_t *acl, void *arg)
{
    delete_ctx_t *d = arg;
    if (d->failed) return;
    if (d->fr->MatchingAcls.count == d->cap) {
        int cap = d->cap ? d->cap * 2 : 16;
        void *n = kp_arena_alloc(&d->req->arena, (size_t)cap * sizeof(*d->fr->MatchingAcls.items));
        if (!n) {
            d->failed = 1;
            return;
        }
        if (d->cap)
            memcpy(n, d->fr->MatchingAcls.items,
                   (size_t)d->cap * sizeof(*d->fr->MatchingAcls.items));
        d->fr->MatchingAcls.items = n;
        d->cap = cap;
    }
    DeleteAclsResponse_DeleteAclsMatchingAcl *m =
        &d->fr->MatchingAcls.items[d->fr->MatchingAcls.count++];
    DeleteAclsResponse_DeleteAclsMatchingAcl_init(m);
    m->ResourceType = acl->resource_type;
    m->ResourceName = arena_msg(d->req, acl->resource_name);
    m->PatternType = acl->pattern_type;
    m->Principal = arena_msg(d->req, acl->principal);
    m->Host = arena_msg(d->req, acl->host);
    m->Operation = acl->operation;
    m->PermissionType = acl->permission;
}

int kp_handle_delete_acls(kp_req_t *req)
{
    DeleteAclsRequest in;
    if (DeleteAclsRequest_decode(&req->body, req->api_version, &req->arena, &in) < 0) return -1;
    DeleteAclsResponse out;
    DeleteAclsResponse_init(&out);
    int32_t n = in.Filters.count > 0 ? in.Filters.count : 0;
    out.FilterResults.items =
        kp_arena_calloc(&req->arena, (size_t)n + 1, sizeof(*out.FilterResults.items));
    if (!out.FilterResults.items) return -1;
    out.FilterResults.count = n;
    int16_t err = gate(req, KP_OP_ALTER);
    for (int32_t i = 0; i < n; i++) {
        DeleteAclsResponse_DeleteAclsFilterResult *fr = &out.FilterResults.items[i];
        DeleteAclsResponse_DeleteAclsFilterResult_init(fr);
        const DeleteAclsRequest_DeleteAclsFilter *f = &in.Filters.items[i];
        if (err) {
            fr->ErrorCode = err;
            fr->ErrorMessage = kp_str_c(gate_message(err));
            continue;
        }
        if (f->ResourceTypeFilter == KP_RES_UNKNOWN || f->PatternTypeFilter == KP_PAT_UNKNOWN ||
            f->Operation == KP_OP_UNKNOWN || f->PermissionType == KP_PERM_UNKNOWN) {
            fr->ErrorCode = KERR_INVALID_REQUEST;
            fr->ErrorMessage = KP_STR_LIT("The filter contains an UNKNOWN element");
            continue;
        }
        kp_acl_filter_t filt = {f->ResourceTypeFilter,
                                f->PatternTypeFilter,
                                f->Operation,
                                f->PermissionType,
                                dup_str(req, f->ResourceNameFilter),
                                dup_str(req, f->PrincipalFilter),
                                dup_str(req, f->HostFilter)};
        delete_ctx_t d = {req, fr, 0, 0};
        if (kp_acl_remove(req->sess->broker->authorizer, &filt, deleted_one, &d) < 0) {
            fr->ErrorCode = KERR_KAFKA_STORAGE_ERROR;
            fr->ErrorMessage = KP_STR_LIT("Could not store the ACL change");
        }
        if (d.failed) return -1;
        for (int32_t k = 0; req->sess->broker->pool && !fr->ErrorCode && k < fr->MatchingAcls.count;
             k++) { /* a pool: gone from every broker */
            const DeleteAclsResponse_DeleteAclsMatchingAcl *m = &fr->MatchingAcls.items[k];
            kp_acl_t gone = {m->ResourceType,
                             m->PatternType,
                             m->Operation,
                             m->PermissionType,
                             dup_str(req, m->ResourceName),
                             dup_str(req, m->Principal),
                             dup_str(req, m->Host)};
            char perr[512];
            if (gone.resource_name && gone.principal && gone.host &&
                kp_rpool_acl_removed(req->sess->broker->pool, &gone, perr, sizeof(perr)) < 0) {
                fr->ErrorCode = KERR_REQUEST_TIMED_OUT;
                fr->ErrorMessage = arena_msg(req, perr);
            }
        }
    }
    kp_req_begin_response(req);
    DeleteAclsResponse_encode(&req->resp, req->api_version, &out);
    kp_req_finish(req);
    return 0;
}

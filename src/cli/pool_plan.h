/*
 * pool_plan.h — `kpool pool`'s plans as pure functions over a snapshot of the pool
 * (pool_client.h): which partitions move where to empty a broker (decommission) or to even
 * out replicas and preferred leaders across brokers (rebalance). No I/O: unit-tested in
 * tests/unit/test_pool_plan.c, printed and executed by cmd_pool.c.
 *
 * The rules:
 *   - only live brokers (the snapshot's) receive replicas; a partition that is moving already,
 *     or has a replica on a broker that is not live, is left alone;
 *   - when every broker has a rack, a replica only goes to a broker whose rack the partition
 *     does not hold yet (or the rack of the replica it replaces), as placement does;
 *   - decommission replaces the broker in each row where it appears (the new replica takes
 *     its place, so a preferred leader's successor is the new replica), choosing the live
 *     broker with the fewest replicas (ties: lowest id);
 *   - add-broker is rebalance restricted to moves onto one broker (see below);
 *   - rebalance first moves one replica at a time from the broker with the most replicas to
 *     the one with the fewest (cheapest partition first) until they differ by at most one,
 *     then reorders rows so that each broker is the preferred (first) replica of an even
 *     share of partitions — along chains of swaps, so the spread of preferred leaders ends
 *     at most one whenever the rows allow it.
 */
#ifndef KP_CLI_POOL_PLAN_H
#define KP_CLI_POOL_PLAN_H

#include "cli/pool_client.h"

typedef struct kp_plan {
    kp_poolc_move_t *moves; /* topics point into the snapshot */
    int n;
    int64_t bytes;         /* copied by the moves: partition size × replicas added */
    int64_t unknown_bytes; /* moves whose size is unknown */
} kp_plan_t;

/* The moves that take every replica off broker. 0, or -1 with err (broker not live, moves in
 * progress, no broker left for some partition). */
int kp_plan_decommission(const kp_poolc_snapshot_t *s, int32_t broker, kp_plan_t *out, char *err,
                         size_t errlen);
/* The moves that even out replicas and preferred leaders. 0 (out->n may be 0: balanced). */
int kp_plan_rebalance(const kp_poolc_snapshot_t *s, kp_plan_t *out, char *err, size_t errlen);
/* The moves that put a broker that joined (live, holding little) to work: replicas onto it
 * only — one at a time from the fullest broker that holds two more, cheapest partition
 * first, rack rules as above — then rows holding it put it first while the broker they
 * prefer has two more preferred leaderships than it. No other broker gains anything. 0, or
 * -1 with err (broker not live, moves in progress). */
int kp_plan_add_broker(const kp_poolc_snapshot_t *s, int32_t broker, kp_plan_t *out, char *err,
                       size_t errlen);
void kp_plan_free(kp_plan_t *p);

#endif

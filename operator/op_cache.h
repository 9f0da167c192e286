/*
 * op_cache.h - the operator's memory of the cluster, fed by exactly two
 * watches: pods with label kccl.io/group (one label-selected watch, all
 * namespaces or --namespace) and CommGroups. It keeps op_model records, not
 * API objects, indexed two ways: pods by namespace/name, and groups by
 * namespace/group with their member pods, their CommGroup, the members
 * deleted since the last reconcile (tombstones) and the failures this process
 * acted on but the CommGroup does not show yet.
 *
 * Every change returns the group keys it touched through a callback (the work
 * queue's add), so a pod event costs O(1) and never a scan of the group.
 * Reconcilers read a snapshot (a copy) of one group. Thread-safe: one mutex.
 */
#ifndef KCCL_OPERATOR_OP_CACHE_H
#define KCCL_OPERATOR_OP_CACHE_H

#include <stddef.h>

#include "kccl/kube.h"
#include "op_model.h"
#include "op_queue.h"
#include "op_reconcile.h"

typedef struct op_cache *op_cache_t;

/* Receives a group key ("ns/group") that needs a reconcile. */
typedef void (*op_cache_touch_fn)(void *arg, const char *key);

kccl_status_t op_cache_create(op_cache_t *out);
void op_cache_destroy(op_cache_t c);

/* A pod watch event (ADDED, MODIFIED, DELETED; others are ignored). */
void op_cache_pod_event(op_cache_t c, kccl_kube_event_type_t type, const cJSON *pod,
                        op_cache_touch_fn touch, void *arg);
/* A CommGroup watch event, or a CommGroup the operator just wrote (ADDED/MODIFIED). */
void op_cache_group_event(op_cache_t c, kccl_kube_event_type_t type, const cJSON *cg,
                          op_cache_touch_fn touch, void *arg);

/* Makes the pods (or CommGroups) equal to a LIST's items: upserts each, removes the rest (pods
 * removed this way leave tombstones like a DELETED event). */
void op_cache_pods_replace(op_cache_t c, const cJSON *items, op_cache_touch_fn touch, void *arg);
void op_cache_groups_replace(op_cache_t c, const cJSON *items, op_cache_touch_fn touch, void *arg);

/* A copy of one group's state, the reconciler's input. */
typedef struct {
    char ns[OP_NS_MAX];
    char name[OP_GROUP_MAX];
    int has_group;
    op_group_t group;
    op_pod_t *pods;
    size_t npods;
    op_tomb_t *tombs;
    size_t ntombs;
    char extra[OP_HANDLED_MAX][OP_FKEY_MAX];
    size_t nextra;
} op_snapshot_t;

/* KCCL_ERR_NOT_FOUND when the cache has nothing about key. */
kccl_status_t op_cache_snapshot(op_cache_t c, const char *key, op_snapshot_t *out);
void op_snapshot_free(op_snapshot_t *s);

/* After a successful pass: drops the first n tombstones, remembers failures acted on (in a
 * bounded list, and on each pod whose key it is: the snapshot's op_pod_t.acted, which holds
 * until the pod's key changes, so a group with more failed pods than the list holds never
 * sees an old failure again). */
void op_cache_consumed(op_cache_t c, const char *key, size_t ntombs,
                       const char (*handled)[OP_FKEY_MAX], size_t nhandled);

/* Calls touch for every group key (a resync when this process starts leading). */
void op_cache_each_group(op_cache_t c, op_cache_touch_fn touch, void *arg);

typedef struct {
    size_t pods, groups, commgroups;
    uint64_t pod_events, group_events;
} op_cache_stats_t;
void op_cache_stats(op_cache_t c, op_cache_stats_t *out);

#endif

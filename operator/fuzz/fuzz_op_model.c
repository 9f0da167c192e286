/*
 * fuzz_op_model.c - libFuzzer target: the bytes are a JSON object as the apiserver might send
 * it in a watch event (a pod or a CommGroup). It goes through both parsers, the cache, and the
 * reconciler with itself as the group and as a member. Properties: no crash or undefined
 * behaviour; a parsed status survives JSON and back unchanged; a plan never asks for a status
 * write when the status it plans equals the one it read.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "op_cache.h"
#include "op_model.h"
#include "op_reconcile.h"

static void touch(void *arg, const char *key)
{
    (void)key;
    ++*(int *)arg;
}

static void status_roundtrip(const op_group_t *g)
{
    cJSON *wrap = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(wrap, "metadata");
    cJSON_AddStringToObject(meta, "name", "g");
    cJSON_AddStringToObject(meta, "namespace", "ns");
    cJSON_AddItemToObject(wrap, "status", op_model_status_to_json(&g->status));
    op_group_t back;
    if (op_model_group_from_json(wrap, &back) != KCCL_OK ||
        !op_model_status_equal(&back.status, &g->status))
        abort(); /* the status must survive JSON and back */
    cJSON_Delete(wrap);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *obj = cJSON_ParseWithLength((const char *)data, size);
    if (obj == NULL)
        return 0;
    op_pod_t pod;
    op_group_t group;
    int is_pod = op_model_pod_from_json(obj, &pod) == KCCL_OK;
    int is_group = op_model_group_from_json(obj, &group) == KCCL_OK;
    if (is_group)
        status_roundtrip(&group);
    op_cache_t c;
    int touched = 0;
    if (op_cache_create(&c) == KCCL_OK) {
        op_cache_pod_event(c, KCCL_KUBE_EVENT_ADDED, obj, touch, &touched);
        op_cache_group_event(c, KCCL_KUBE_EVENT_MODIFIED, obj, touch, &touched);
        op_cache_pod_event(c, KCCL_KUBE_EVENT_DELETED, obj, touch, &touched);
        op_cache_destroy(c);
    }
    op_plan_t *plan = malloc(sizeof(*plan));
    if (plan != NULL) {
        op_rec_input_t in = {.ns = "ns",
                             .name = "g",
                             .group = is_group ? &group : NULL,
                             .pods = is_pod ? &pod : NULL,
                             .npods = is_pod ? 1 : 0,
                             .now = "2026-01-01T00:00:00Z"};
        op_rec_plan(&in, plan);
        if (is_group && plan->write_status && op_model_status_equal(&plan->status, &group.status))
            abort();
        free(plan);
    }
    cJSON_Delete(obj);
    return 0;
}

/*
 * wh_validate.h - the admission checks of a pod's kccl.io annotations.
 *
 * A pod is refused (allowed: false) when an annotation the sidecar or the operator will read is
 * malformed; the message names the annotation, what is wrong and the remedy, so `kubectl apply`
 * shows the user what to fix instead of a sidecar that never becomes ready.
 */
#ifndef KCCL_WH_VALIDATE_H
#define KCCL_WH_VALIDATE_H

#include <cjson/cJSON.h>

#include "wh_rank.h"

#define WH_ANN_GROUP         "kccl.io/group"
#define WH_ANN_WORLD         "kccl.io/world-size"
#define WH_ANN_RANKS_PER_POD "kccl.io/ranks-per-pod"
#define WH_ANN_PORT          "kccl.io/port"
#define WH_ANN_EPOCH         "kccl.io/epoch"
#define WH_ANN_ROOT_POD      "kccl.io/root-pod"
#define WH_LABEL_GROUP       "kccl.io/group"
#define WH_LABEL_RANK        "kccl.io/rank"
#define WH_WORLD_MAX         (1L << 24)
#define WH_EPOCH_MAX         (1L << 40)
#define WH_GROUP_MAX         63

/* What the checks established; input to the injection. */
typedef struct {
    char group[WH_GROUP_MAX + 1];
    long world;
    wh_rank_t rank; /* rank.rank >= 0: known */
} wh_spec_t;

typedef struct {
    char message[640];
} wh_problem_t;

/* Checks pod's kccl.io annotations and labels. 0 with *spec set, or -1 with pb->message. */
int wh_validate(const cJSON *pod, wh_spec_t *spec, wh_problem_t *pb);

/* 1 when s can be a group name: a label value that is also a DNS-1123 subdomain (<= 63). */
int wh_valid_group(const char *s);

/* 1 when s is a DNS-1123 subdomain (object names such as a pod's). */
int wh_valid_subdomain(const char *s);

#endif

/*
 * wh_rank.h - where a pod's rank comes from at admission.
 *
 * First found wins, as in the sidecar (sidecar/README.md): annotation kccl.io/rank; the Indexed
 * Job completion index (annotation, then label batch.kubernetes.io/job-completion-index); label
 * apps.kubernetes.io/pod-index (StatefulSet, Kubernetes >= 1.28); and, for a pod whose
 * controlling owner is a StatefulSet S and whose name is S-<n>, the ordinal n (older clusters).
 */
#ifndef KCCL_WH_RANK_H
#define KCCL_WH_RANK_H

#include <cjson/cJSON.h>

#define WH_ANN_RANK  "kccl.io/rank"
#define WH_JOB_INDEX "batch.kubernetes.io/job-completion-index"
#define WH_POD_INDEX "apps.kubernetes.io/pod-index"
#define WH_RANK_MAX  ((1L << 24) - 1)

typedef enum {
    WH_RANK_NONE = 0,  /* no source: the pod must be annotated */
    WH_RANK_FOUND = 1, /* rank holds the value */
    WH_RANK_BAD = -1,  /* a source exists but is not a whole number in [0, WH_RANK_MAX] */
} wh_rank_result_t;

typedef struct {
    long rank;           /* -1 unless WH_RANK_FOUND */
    int from_annotation; /* 1: the user's kccl.io/rank annotation (nothing to add) */
    char source[200];    /* "annotation kccl.io/rank", "StatefulSet web's ordinal", ... */
    char text[48];       /* the value as found (cut), for messages */
} wh_rank_t;

/* Finds the rank of pod (an object with metadata). Never fails on any JSON shape. */
wh_rank_result_t wh_rank_find(const cJSON *pod, wh_rank_t *out);

/* Parses a whole number (digits only, no sign, no spaces) in [lo, hi]. 0 on success, else -1. */
int wh_parse_long(const char *text, long lo, long hi, long *out);

#endif

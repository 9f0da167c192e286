/*
 * wh_rank.c - the rank of a pod at admission, from the sources wh_rank.h lists. The webhook
 * writes it as label kccl.io/rank (so the operator and rank 0's watch find pods by selector) and,
 * when it was derived, as annotation kccl.io/rank too (so the sidecar of a StatefulSet pod on a
 * cluster without the pod-index label still finds it).
 */
#include "wh_rank.h"

#include <stdio.h>
#include <string.h>

#include "wh_json.h"

int wh_parse_long(const char *text, long lo, long hi, long *out)
{
    if (text == NULL || *text == '\0' || strlen(text) > 18)
        return -1;
    long v = 0;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
    }
    if (v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static wh_rank_result_t take(wh_rank_t *out, const char *text, const char *fmt_kind,
                             const char *key)
{
    snprintf(out->source, sizeof(out->source), "%s %s", fmt_kind, key);
    snprintf(out->text, sizeof(out->text), "%.40s", text);
    if (wh_parse_long(text, 0, WH_RANK_MAX, &out->rank) != 0) {
        out->rank = -1;
        return WH_RANK_BAD;
    }
    return WH_RANK_FOUND;
}

/* The ordinal of a pod named <sts>-<n> whose controlling owner is StatefulSet <sts>. */
static wh_rank_result_t statefulset_ordinal(const cJSON *meta, wh_rank_t *out)
{
    const char *name = wh_json_str(meta, "name");
    const cJSON *owners = wh_json_get(meta, "ownerReferences");
    const cJSON *o;
    if (name == NULL || !cJSON_IsArray(owners))
        return WH_RANK_NONE;
    cJSON_ArrayForEach(o, owners)
    {
        const char *kind = wh_json_str(o, "kind"), *sts = wh_json_str(o, "name");
        if (kind == NULL || sts == NULL || strcmp(kind, "StatefulSet") != 0 ||
            !cJSON_IsTrue(wh_json_get(o, "controller")))
            continue;
        size_t n = strlen(sts);
        if (strncmp(name, sts, n) != 0 || name[n] != '-')
            return WH_RANK_NONE;
        snprintf(out->source, sizeof(out->source), "StatefulSet %.64s's ordinal of pod %.80s", sts,
                 name);
        snprintf(out->text, sizeof(out->text), "%.40s", name + n + 1);
        if (wh_parse_long(name + n + 1, 0, WH_RANK_MAX, &out->rank) != 0) {
            out->rank = -1;
            return WH_RANK_NONE; /* a name that merely looks alike: not a source */
        }
        return WH_RANK_FOUND;
    }
    return WH_RANK_NONE;
}

wh_rank_result_t wh_rank_find(const cJSON *pod, wh_rank_t *out)
{
    memset(out, 0, sizeof(*out));
    out->rank = -1;
    const cJSON *meta = wh_json_get(pod, "metadata");
    const cJSON *ann = wh_json_get(meta, "annotations");
    const cJSON *labels = wh_json_get(meta, "labels");
    const char *v;
    if ((v = wh_json_str(ann, WH_ANN_RANK)) != NULL) {
        out->from_annotation = 1;
        return take(out, v, "annotation", WH_ANN_RANK);
    }
    if ((v = wh_json_str(ann, WH_JOB_INDEX)) != NULL)
        return take(out, v, "annotation", WH_JOB_INDEX);
    if ((v = wh_json_str(labels, WH_JOB_INDEX)) != NULL)
        return take(out, v, "label", WH_JOB_INDEX);
    if ((v = wh_json_str(labels, WH_POD_INDEX)) != NULL)
        return take(out, v, "label", WH_POD_INDEX);
    return statefulset_ordinal(meta, out);
}

/*
 * sc_group.c - what the annotations say: this pod's group, rank, world size,
 * port and epoch, and what a rank-0 pod publishes. Every refusal carries a
 * Kubernetes Event reason (CamelCase) and a message that names the problem
 * and the remedy; the sidecar posts it on the pod and writes no handoff.
 *
 * Rank sources, first found wins: annotation kccl.io/rank; the Indexed Job
 * completion index (annotation, then label, batch.kubernetes.io/job-completion-
 * index); the StatefulSet ordinal (label apps.kubernetes.io/pod-index).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "sc.h"

int sc_parse_long(const char *text, long lo, long hi, long *out)
{
    if (text == NULL || *text == '\0' || strlen(text) > 19)
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

int sc_endpoint_format(const char *ip, int port, char *buf, size_t len)
{
    int n = strchr(ip, ':') ? snprintf(buf, len, "[%s]:%d", ip, port)
                            : snprintf(buf, len, "%s:%d", ip, port);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

static const char *str_item(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static kccl_status_t problem(sc_problem_t *pb, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static kccl_status_t problem(sc_problem_t *pb, const char *reason, const char *fmt, ...)
{
    va_list ap;
    snprintf(pb->reason, sizeof(pb->reason), "%s", reason);
    va_start(ap, fmt);
    vsnprintf(pb->message, sizeof(pb->message), fmt, ap);
    va_end(ap);
    return KCCL_ERR_CONFIG;
}

/* The rank and where it came from; KCCL_ERR_NOT_FOUND when no source is set. */
static kccl_status_t find_rank(const cJSON *ann, const cJSON *labels, sc_spec_t *spec,
                               sc_problem_t *pb)
{
    static const struct {
        const char *key;
        int label; /* 0: annotation, 1: label */
    } sources[] = {{SC_ANN_RANK, 0}, {SC_JOB_INDEX, 0}, {SC_JOB_INDEX, 1}, {SC_POD_INDEX, 1}};
    for (size_t i = 0; i < sizeof(sources) / sizeof(sources[0]); i++) {
        const char *v = str_item(sources[i].label ? labels : ann, sources[i].key);
        if (v == NULL)
            continue;
        snprintf(spec->rank_source, sizeof(spec->rank_source), "%s %s",
                 sources[i].label ? "label" : "annotation", sources[i].key);
        if (sc_parse_long(v, 0, SC_WORLD_MAX - 1, &spec->rank) != 0)
            return problem(pb, "InvalidRank",
                           "%s is \"%.40s\", not a rank (a whole number from 0): set it to this "
                           "pod's rank, e.g. kubectl annotate pod POD %s=0 --overwrite",
                           spec->rank_source, v, SC_ANN_RANK);
        return KCCL_OK;
    }
    return problem(pb, "InvalidRank",
                   "the pod has no rank: annotate it %s=N (0 <= N < world size), or run it as an "
                   "Indexed Job (%s) or a StatefulSet (%s)",
                   SC_ANN_RANK, SC_JOB_INDEX, SC_POD_INDEX);
}

static kccl_status_t find_port_epoch(const cJSON *ann, sc_spec_t *spec, sc_problem_t *pb)
{
    const char *v = str_item(ann, SC_ANN_PORT);
    long x = SC_PORT_DEFAULT;
    if (v != NULL && sc_parse_long(v, 1, 65535, &x) != 0)
        return problem(pb, "InvalidPort",
                       "annotation %s is \"%.40s\", not a TCP port (1-65535); fix it or remove it "
                       "(default %d)",
                       SC_ANN_PORT, v, SC_PORT_DEFAULT);
    spec->port = (int)x;
    v = str_item(ann, SC_ANN_EPOCH);
    spec->epoch = 0;
    if (v != NULL && sc_parse_long(v, 0, SC_EPOCH_MAX, &spec->epoch) != 0)
        return problem(pb, "InvalidEpoch",
                       "annotation %s is \"%.40s\", not a whole number from 0; it is set by the "
                       "kccl operator: remove it or set a number",
                       SC_ANN_EPOCH, v);
    v = str_item(ann, SC_ANN_ROOT_POD);
    if (v != NULL && !sc_valid_subdomain(v))
        return problem(pb, "InvalidRootPod",
                       "annotation %s is \"%.64s\", not a pod name; name rank 0's pod or remove "
                       "the annotation",
                       SC_ANN_ROOT_POD, v);
    snprintf(spec->root_pod, sizeof(spec->root_pod), "%s", v ? v : "");
    return KCCL_OK;
}

kccl_status_t sc_spec_from_meta(const cJSON *ann, const cJSON *labels, sc_spec_t *spec,
                                sc_problem_t *pb)
{
    memset(spec, 0, sizeof(*spec));
    const char *g = str_item(ann, SC_ANN_GROUP);
    if (g == NULL)
        return problem(pb, "MissingGroup",
                       "the pod has the kccl sidecar but no %s annotation: annotate it with the "
                       "group's name",
                       SC_ANN_GROUP);
    if (!sc_valid_label_value(g))
        return problem(pb, "InvalidGroup",
                       "annotation %s is \"%.64s\": a group name must be a valid label value (at "
                       "most 63 letters, digits, '-', '_' or '.', alphanumeric at both ends)",
                       SC_ANN_GROUP, g);
    snprintf(spec->group, sizeof(spec->group), "%s", g);
    const char *w = str_item(ann, SC_ANN_WORLD);
    if (w == NULL || sc_parse_long(w, 1, SC_WORLD_MAX, &spec->world) != 0)
        return problem(pb, "InvalidWorldSize",
                       w ? "annotation %s is \"%.40s\", not a world size (a whole number from 1): "
                           "set it to the number of ranks of group %s"
                         : "annotation %s is missing%.0s: set it to the number of ranks of "
                           "group %s",
                       SC_ANN_WORLD, w ? w : "", spec->group);
    const char *rpp = str_item(ann, SC_ANN_RANKS_PER_POD);
    if (rpp != NULL && strcmp(rpp, "1") != 0)
        return problem(pb, "UnsupportedRanksPerPod",
                       "annotation %s is \"%.40s\": this sidecar hands off one rank per pod; "
                       "remove the annotation or set it to 1",
                       SC_ANN_RANKS_PER_POD, rpp);
    KCCL_CHECK(find_rank(ann, labels, spec, pb));
    if (spec->rank >= spec->world)
        return problem(pb, "RankOutOfRange",
                       "rank %ld (from %s) is not below the world size %ld of group %s: ranks "
                       "run from 0 to %ld; fix %s or %s",
                       spec->rank, spec->rank_source, spec->world, spec->group, spec->world - 1,
                       SC_ANN_RANK, SC_ANN_WORLD);
    return find_port_epoch(ann, spec, pb);
}

void sc_root_from_pod(const cJSON *pod, sc_root_t *out)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(pod, "metadata");
    const cJSON *ann = cJSON_GetObjectItemCaseSensitive(meta, "annotations");
    const char *v;
    memset(out, 0, sizeof(*out));
    if ((v = str_item(meta, "name")) != NULL)
        snprintf(out->name, sizeof(out->name), "%s", v);
    out->deleting = cJSON_GetObjectItemCaseSensitive(meta, "deletionTimestamp") != NULL;
    v = str_item(ann, SC_ANN_WORLD);
    out->world_ok = v && sc_parse_long(v, 1, SC_WORLD_MAX, &out->world) == 0;
    v = str_item(ann, SC_ANN_EPOCH);
    out->epoch_ok = v == NULL || sc_parse_long(v, 0, SC_EPOCH_MAX, &out->epoch) == 0;
    const char *id = str_item(ann, SC_ANN_UNIQUE_ID);
    const char *ide = str_item(ann, SC_ANN_ID_EPOCH);
    if (id && ide && sc_parse_long(ide, 0, SC_EPOCH_MAX, &out->id_epoch) == 0) {
        out->has_id = 1;
        out->id_text_ok = strlen(id) == KCCL_UNIQUE_ID_STRLEN;
        if (out->id_text_ok)
            memcpy(out->id, id, KCCL_UNIQUE_ID_STRLEN + 1);
    }
}

/*
 * wh_validate.c - the admission checks of kccl.io annotations (wh_validate.h).
 *
 * The group name is checked more strictly than the sidecar does (a label value): it also names
 * the CommGroup and the Secret kccl-group-<group>, so it must be a lower-case DNS-1123 name, or
 * the pod would be admitted and then wait forever for a Secret that cannot exist. Values quoted
 * in messages are cut to 40 characters and non-printable bytes are shown as '?'.
 */
#include "wh_validate.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "wh_json.h"

static int problem(wh_problem_t *pb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int problem(wh_problem_t *pb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pb->message, sizeof(pb->message), fmt, ap);
    va_end(ap);
    return -1;
}

/* A printable, cut copy of user text for a message. */
static const char *clip(const char *s, char *buf, size_t cap)
{
    size_t n = 0;
    for (; s[n] && n + 1 < cap && n < 40; n++)
        buf[n] = (s[n] >= 0x20 && s[n] < 0x7f && s[n] != '"') ? s[n] : '?';
    buf[n] = '\0';
    if (s[n] && n >= 3 && n < cap)
        memcpy(buf + n - 3, "...", 3);
    return buf;
}

static int is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

int wh_valid_subdomain(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (is_lower_alnum(c))
            continue;
        if (c != '-' && c != '.')
            return 0;
        /* every dot-separated part starts and ends alphanumeric */
        if (i == 0 || i == n - 1 || (c == '.' && !is_lower_alnum(s[i - 1])) ||
            (c == '.' && !is_lower_alnum(s[i + 1])))
            return 0;
    }
    return 1;
}

int wh_valid_group(const char *s)
{
    return strlen(s) <= WH_GROUP_MAX && wh_valid_subdomain(s);
}

/* Every kccl.io/ annotation must be a string (the API guarantees it; hostile input may not). */
static int check_strings(const cJSON *ann, wh_problem_t *pb)
{
    const cJSON *a;
    cJSON_ArrayForEach(a, ann)
    {
        if (a->string && strncmp(a->string, "kccl.io/", 8) == 0 && !cJSON_IsString(a)) {
            char b[48];
            return problem(pb,
                           "annotation %s is not a string: annotation values are strings; "
                           "quote the value in the manifest",
                           clip(a->string, b, sizeof(b)));
        }
    }
    return 0;
}

static int check_optional(const cJSON *ann, wh_problem_t *pb)
{
    char b[48];
    long x;
    const char *v = wh_json_str(ann, WH_ANN_RANKS_PER_POD);
    if (v != NULL && strcmp(v, "1") != 0)
        return problem(pb,
                       "annotation %s is \"%s\": only 1 rank per pod is supported (the sidecar "
                       "hands off one rank); remove the annotation or set it to \"1\" and run one "
                       "pod per rank",
                       WH_ANN_RANKS_PER_POD, clip(v, b, sizeof(b)));
    v = wh_json_str(ann, WH_ANN_PORT);
    if (v != NULL && wh_parse_long(v, 1, 65535, &x) != 0)
        return problem(pb,
                       "annotation %s is \"%s\", not a TCP port: set a whole number from 1 to "
                       "65535, or remove it for the default 29500",
                       WH_ANN_PORT, clip(v, b, sizeof(b)));
    v = wh_json_str(ann, WH_ANN_EPOCH);
    if (v != NULL && wh_parse_long(v, 0, WH_EPOCH_MAX, &x) != 0)
        return problem(pb,
                       "annotation %s is \"%s\", not an epoch: it is kept by the kccl operator; "
                       "remove it (or set a whole number from 0)",
                       WH_ANN_EPOCH, clip(v, b, sizeof(b)));
    v = wh_json_str(ann, WH_ANN_ROOT_POD);
    if (v != NULL && !wh_valid_subdomain(v))
        return problem(pb,
                       "annotation %s is \"%s\", not a pod name: name rank 0's pod (lower-case "
                       "letters, digits, '-' and '.') or remove the annotation",
                       WH_ANN_ROOT_POD, clip(v, b, sizeof(b)));
    return 0;
}

static int check_rank(wh_rank_result_t found, wh_spec_t *spec, wh_problem_t *pb)
{
    const wh_rank_t *r = &spec->rank;
    if (found == WH_RANK_BAD)
        return problem(pb,
                       "%s is \"%s\", not a rank: a rank is a whole number from 0 to world size - "
                       "1; fix it, or set annotation %s to this pod's rank",
                       r->source, r->text, WH_ANN_RANK);
    if (found == WH_RANK_NONE)
        return problem(pb,
                       "the pod of group %s has no rank: set annotation %s (0 to %ld), or create "
                       "the pods from an Indexed Job (completion index) or a StatefulSet (ordinal)",
                       spec->group, WH_ANN_RANK, spec->world - 1);
    if (r->rank >= spec->world)
        return problem(pb,
                       "rank %ld (from %s) is out of range for %s \"%ld\": ranks run from 0 to "
                       "%ld; fix %s or %s (an Indexed Job needs completions = world size)",
                       r->rank, r->source, WH_ANN_WORLD, spec->world, spec->world - 1, WH_ANN_RANK,
                       WH_ANN_WORLD);
    return 0;
}

/* Labels the user set must agree with what the webhook would set. */
static int check_labels(const cJSON *labels, const wh_spec_t *spec, wh_problem_t *pb)
{
    char b[48], rank[32];
    const char *v = wh_json_str(labels, WH_LABEL_GROUP);
    if (v != NULL && strcmp(v, spec->group) != 0)
        return problem(pb,
                       "label %s is \"%s\" but annotation %s is \"%s\": remove the label (the "
                       "webhook sets it) or make the two equal",
                       WH_LABEL_GROUP, clip(v, b, sizeof(b)), WH_ANN_GROUP, spec->group);
    snprintf(rank, sizeof(rank), "%ld", spec->rank.rank);
    v = wh_json_str(labels, WH_LABEL_RANK);
    if (v != NULL && strcmp(v, rank) != 0)
        return problem(pb,
                       "label %s is \"%s\" but the pod's rank is %s (from %s): remove the label "
                       "(the webhook sets it) or make the two equal",
                       WH_LABEL_RANK, clip(v, b, sizeof(b)), rank, spec->rank.source);
    return 0;
}

int wh_validate(const cJSON *pod, wh_spec_t *spec, wh_problem_t *pb)
{
    char b[48];
    memset(spec, 0, sizeof(*spec));
    pb->message[0] = '\0';
    const cJSON *meta = wh_json_get(pod, "metadata");
    const cJSON *ann = wh_json_get(meta, "annotations");
    if (check_strings(ann, pb) != 0)
        return -1;
    const char *g = wh_json_str(ann, WH_ANN_GROUP);
    if (g == NULL)
        return problem(pb, "annotation %s is missing: name the pod's group", WH_ANN_GROUP);
    if (!wh_valid_group(g))
        return problem(pb,
                       "annotation %s is \"%s\": a group name must be a valid label value and "
                       "object name (1 to 63 lower-case letters, digits, '-' or '.', alphanumeric "
                       "at both ends) because it names the CommGroup and the Secret "
                       "kccl-group-<group>; rename the group, e.g. \"my-job\"",
                       WH_ANN_GROUP, clip(g, b, sizeof(b)));
    snprintf(spec->group, sizeof(spec->group), "%s", g);
    const char *w = wh_json_str(ann, WH_ANN_WORLD);
    if (w == NULL)
        return problem(pb,
                       "annotation %s is missing: set it to the number of ranks in group %s "
                       "(a whole number from 1), e.g. %s: \"8\"",
                       WH_ANN_WORLD, spec->group, WH_ANN_WORLD);
    if (wh_parse_long(w, 1, WH_WORLD_MAX, &spec->world) != 0)
        return problem(pb,
                       "annotation %s is \"%s\", not a world size: set it to the number of ranks "
                       "in group %s (a whole number from 1 to %ld)",
                       WH_ANN_WORLD, clip(w, b, sizeof(b)), spec->group, WH_WORLD_MAX);
    if (check_optional(ann, pb) != 0)
        return -1;
    if (check_rank(wh_rank_find(pod, &spec->rank), spec, pb) != 0)
        return -1;
    return check_labels(wh_json_get(meta, "labels"), spec, pb);
}

/*
 * agent_status.c - the pod status a kubelet reports: phase, conditions
 * (PodReadyToStartContainers, Initialized, ContainersReady, Ready; others such
 * as PodScheduled are carried over), hostIP(s), podIP(s), startTime, and a
 * status per container (state waiting/running/terminated with exit codes,
 * lastState, ready, started, restartCount). It is sent as a merge patch of
 * pods/<name>/status carrying metadata.uid as a precondition, only when it
 * differs from what was last sent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"

const char *ag_json_str(const cJSON *o, const char *key)
{
    const cJSON *x = o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    return cJSON_IsString(x) ? x->valuestring : "";
}

int ag_atoi(const char *s, int dflt)
{
    char *end = NULL;
    long v = s ? strtol(s, &end, 10) : 0;
    return s && end != s ? (int)v : dflt;
}

int ag_json_int(const cJSON *o, const char *key, int dflt)
{
    const cJSON *x = o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    return cJSON_IsNumber(x) ? x->valueint : dflt;
}

static void add_cond(cJSON *list, const char *type, int ok, const char *at, const char *reason)
{
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "type", type);
    cJSON_AddStringToObject(c, "status", ok ? "True" : "False");
    cJSON_AddStringToObject(c, "lastTransitionTime", at);
    cJSON_AddNullToObject(c, "lastProbeTime");
    if (!ok && reason)
        cJSON_AddStringToObject(c, "reason", reason);
    cJSON_AddItemToArray(list, c);
}

static cJSON *ctr_status(const ag_t *a, const ag_pod_t *p, const ag_ctr_t *c)
{
    char id[256];
    const ag_image_t *img = ag_image_find(a, c->image);
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "name", c->name);
    cJSON_AddStringToObject(s, "image", c->image);
    snprintf(id, sizeof(id), "kccl-node-agent://%s", img ? img->path : "");
    cJSON_AddStringToObject(s, "imageID", img ? id : "");
    snprintf(id, sizeof(id), "kccl://%s/%s/%d", p->uid, c->name, c->restarts);
    if (c->ever_started)
        cJSON_AddStringToObject(s, "containerID", id);
    cJSON_AddBoolToObject(s, "ready", c->ready);
    cJSON_AddBoolToObject(s, "started", c->running && c->started);
    cJSON_AddNumberToObject(s, "restartCount", c->restarts);
    cJSON *st = cJSON_AddObjectToObject(s, "state");
    if (c->running) {
        cJSON_AddStringToObject(cJSON_AddObjectToObject(st, "running"), "startedAt", c->started_at);
    } else if (c->terminated && !c->waiting[0]) {
        cJSON *t = cJSON_AddObjectToObject(st, "terminated");
        cJSON_AddNumberToObject(t, "exitCode", c->exit_code);
        cJSON_AddStringToObject(t, "reason", c->reason);
        cJSON_AddStringToObject(t, "startedAt", c->started_at);
        cJSON_AddStringToObject(t, "finishedAt", c->finished_at);
        cJSON_AddStringToObject(t, "containerID", id);
    } else {
        cJSON *w = cJSON_AddObjectToObject(st, "waiting");
        cJSON_AddStringToObject(w, "reason", c->waiting[0] ? c->waiting : "ContainerCreating");
        if (c->message[0])
            cJSON_AddStringToObject(w, "message", c->message);
    }
    cJSON *ls = cJSON_AddObjectToObject(s, "lastState");
    const char *last_exit_started = c->terminated && c->waiting[0] ? c->started_at : NULL;
    if (c->has_last || last_exit_started) { /* waiting to restart: the exit is the last state */
        cJSON *t = cJSON_AddObjectToObject(ls, "terminated");
        int w = last_exit_started != NULL;
        cJSON_AddNumberToObject(t, "exitCode", w ? c->exit_code : c->last_exit);
        cJSON_AddStringToObject(t, "reason", w ? c->reason : c->last_reason);
        cJSON_AddStringToObject(t, "startedAt", w ? c->started_at : c->last_started);
        cJSON_AddStringToObject(t, "finishedAt", w ? c->finished_at : c->last_finished);
    }
    return s;
}

static cJSON *build(ag_t *a, ag_pod_t *p)
{
    char now[32];
    ag_now_rfc3339(now, sizeof(now));
    int all_ready = p->nctrs > 0;
    for (int i = 0; i < p->nctrs; i++)
        if ((!p->ctrs[i].init || p->ctrs[i].sidecar) && !p->ctrs[i].ready)
            all_ready = 0;
    if (strcmp(p->phase, "Running") != 0)
        all_ready = 0;
    if (all_ready != p->was_ready || !p->ready_at[0]) {
        p->was_ready = all_ready;
        snprintf(p->ready_at, sizeof(p->ready_at), "%s", now);
    }
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(cJSON_AddObjectToObject(body, "metadata"), "uid", p->uid);
    cJSON *st = cJSON_AddObjectToObject(body, "status");
    cJSON_AddStringToObject(st, "phase", p->phase);
    if (p->reason[0]) {
        cJSON_AddStringToObject(st, "reason", p->reason);
        cJSON_AddStringToObject(st, "message", p->message);
    }
    cJSON *conds = cJSON_AddArrayToObject(st, "conditions");
    const cJSON *old;
    cJSON_ArrayForEach(old, cJSON_GetObjectItemCaseSensitive(
                                cJSON_GetObjectItemCaseSensitive(p->obj, "status"), "conditions"))
    {
        const char *t = ag_json_str(old, "type");
        if (strcmp(t, "PodReadyToStartContainers") != 0 && strcmp(t, "Initialized") != 0 &&
            strcmp(t, "Ready") != 0 && strcmp(t, "ContainersReady") != 0)
            cJSON_AddItemToArray(conds, cJSON_Duplicate(old, 1));
    }
    const char *done = !strcmp(p->phase, "Succeeded") || !strcmp(p->phase, "Failed")
                           ? "PodCompleted"
                           : "ContainersNotReady";
    add_cond(conds, "PodReadyToStartContainers", p->sandbox_at[0] && !p->released,
             p->sandbox_at[0] ? p->sandbox_at : p->start_time, NULL);
    add_cond(conds, "Initialized", p->init_done,
             p->initialized_at[0] ? p->initialized_at : p->start_time, "ContainersNotInitialized");
    add_cond(conds, "Ready", all_ready, p->ready_at, done);
    add_cond(conds, "ContainersReady", all_ready, p->ready_at, done);
    cJSON_AddStringToObject(st, "hostIP", a->bridge_ip);
    cJSON *hip = cJSON_CreateObject();
    cJSON_AddStringToObject(hip, "ip", a->bridge_ip);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(st, "hostIPs"), hip);
    if (p->ip[0]) {
        cJSON_AddStringToObject(st, "podIP", p->ip);
        cJSON *ips = cJSON_AddArrayToObject(st, "podIPs");
        cJSON *ip = cJSON_CreateObject();
        cJSON_AddStringToObject(ip, "ip", p->ip);
        cJSON_AddItemToArray(ips, ip);
    }
    cJSON_AddStringToObject(st, "startTime", p->start_time);
    cJSON *init = cJSON_AddArrayToObject(st, "initContainerStatuses");
    cJSON *main = cJSON_AddArrayToObject(st, "containerStatuses");
    for (int i = 0; i < p->nctrs; i++)
        cJSON_AddItemToArray(p->ctrs[i].init ? init : main, ctr_status(a, p, &p->ctrs[i]));
    return body;
}

void ag_status_report(ag_t *a, ag_pod_t *p, int64_t now, int force)
{
    if ((!force && !p->status_dirty) || p->deleted)
        return;
    if (!force && now < p->next_status_ms)
        return;
    cJSON *body = build(a, p);
    char *text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    if (text == NULL)
        return;
    if (p->last_status && strcmp(p->last_status, text) == 0) {
        free(text);
        p->status_dirty = 0;
        return;
    }
    char path[600];
    kccl_kube_result_t res;
    kccl_kube_opts_t o = {.timeout_ms = 10000};
    kccl_kube_path(path, sizeof(path), "v1", p->ns, "pods", p->name, "status");
    if (kccl_kube_patch(a->api, path, KCCL_KUBE_PATCH_MERGE, text, &o, NULL, &res) != KCCL_OK) {
        if (res.http_status == 404 || kccl_kube_is_conflict(&res)) {
            ag_info("pod %s/%s is gone from the API (%s)", p->ns, p->name, res.reason);
            p->deleted = 1;
        } else {
            ag_warn("PATCH %s: HTTP %d: %s", path, res.http_status, res.message);
            p->next_status_ms = now + 500;
        }
        free(text);
        return;
    }
    free(p->last_status);
    p->last_status = text;
    p->status_dirty = 0;
}

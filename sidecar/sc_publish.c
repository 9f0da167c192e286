/*
 * sc_publish.c - what the sidecar writes to the API: the one patch of its own
 * pod (labels kccl.io/group and kccl.io/rank, annotation kccl.io/endpoint;
 * rank 0 also kccl.io/unique-id and kccl.io/unique-id-epoch), rank 0's
 * republish for a new epoch, and the Events the decisions queued.
 *
 * Rank 0 keeps its id across sidecar restarts: when its pod already carries
 * an id for the current epoch that names this pod's endpoint, the id is
 * reused (no new nonce, nothing for the members to redo). A new pod (a new
 * IP) or a new epoch gets a new id. The id never holds the group secret
 * (kccl_unique_id_for_address never embeds it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "sc_state.h"

static const char *str_item(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int new_id(sc_t *s, char *out)
{
    kccl_unique_id_t id;
    if (kccl_unique_id_for_address(s->endpoint, &id) != KCCL_OK ||
        kccl_unique_id_to_string(&id, out, KCCL_UNIQUE_ID_STRLEN + 1) != KCCL_OK) {
        kccl_log_error(TOOL, "cannot make a unique id for %s: %s", s->endpoint, kccl_last_error());
        return -1;
    }
    return 0;
}

/* The id already on the own pod, if it is for this endpoint and epoch. */
static int reusable_id(const sc_t *s, char *out)
{
    const char *text = str_item(s->self.annotations, SC_ANN_UNIQUE_ID);
    const char *ep = str_item(s->self.annotations, SC_ANN_ID_EPOCH);
    kccl_unique_id_t id;
    char addr[80];
    long e;
    if (!s->own_meta_known || text == NULL || ep == NULL ||
        sc_parse_long(ep, 0, SC_EPOCH_MAX, &e) != 0 || e != s->spec.epoch ||
        kccl_unique_id_from_string(text, &id) != KCCL_OK ||
        kccl_unique_id_address(&id, addr, sizeof(addr)) != KCCL_OK ||
        strcmp(addr, s->endpoint) != 0)
        return 0;
    memcpy(out, text, KCCL_UNIQUE_ID_STRLEN + 1);
    return 1;
}

/* 1 when every key of want already has that value in have. */
static int subset(const cJSON *want, const cJSON *have)
{
    const cJSON *w;
    cJSON_ArrayForEach(w, want)
    {
        const char *v = str_item(have, w->string);
        if (v == NULL || strcmp(v, w->valuestring) != 0)
            return 0;
    }
    return 1;
}

static int patch_failed(sc_t *s, const char *what, const kccl_kube_result_t *res)
{
    if (atomic_load(s->o->stop))
        return -1;
    if (kccl_kube_is_forbidden(res))
        kccl_log_error(TOOL,
                       "%s was refused (403: %s): bind the kccl-sidecar Role to the pod's "
                       "ServiceAccount (kubectl apply -n %s -f deploy/rbac/)",
                       what, res->message, s->self.ns);
    else if (kccl_kube_is_conflict(res) || kccl_kube_is_invalid(res))
        kccl_log_error(TOOL, "%s was refused (%d %s: %s): was pod %s replaced by a new one?", what,
                       res->code, res->reason, res->message, s->pod_ref);
    else
        kccl_log_error(TOOL, "%s failed: %s", what, kccl_last_error());
    return -1;
}

int sc_publish(sc_t *s)
{
    char rank[24], epoch[24], id[KCCL_UNIQUE_ID_STRLEN + 1];
    kccl_kube_result_t res;
    int reused = 0;
    snprintf(rank, sizeof(rank), "%ld", s->spec.rank);
    snprintf(epoch, sizeof(epoch), "%ld", s->spec.epoch);
    cJSON *labels = cJSON_CreateObject(), *ann = cJSON_CreateObject();
    int ok = labels && ann && cJSON_AddStringToObject(labels, SC_LABEL_GROUP, s->spec.group) &&
             cJSON_AddStringToObject(labels, SC_LABEL_RANK, rank) &&
             cJSON_AddStringToObject(ann, SC_ANN_ENDPOINT, s->endpoint);
    if (ok && s->spec.rank == 0) {
        reused = reusable_id(s, id);
        ok = (reused || new_id(s, id) == 0) && cJSON_AddStringToObject(ann, SC_ANN_UNIQUE_ID, id) &&
             cJSON_AddStringToObject(ann, SC_ANN_ID_EPOCH, epoch);
    }
    int rc = ok ? 0 : -1;
    if (ok && s->own_meta_known && subset(labels, s->self.labels) &&
        subset(ann, s->self.annotations)) {
        kccl_log_info(TOOL, "pod %s already carries its endpoint%s", s->pod_ref,
                      s->spec.rank == 0 ? " and the unique id" : "");
    } else if (ok && sc_api_patch_self(&s->api, labels, ann, &res) != KCCL_OK) {
        rc = patch_failed(s, "publishing the endpoint", &res);
    } else if (ok) {
        kccl_log_info(
            TOOL, "published %s=%s%s", SC_ANN_ENDPOINT, s->endpoint,
            s->spec.rank == 0 ? (reused ? " and the same unique id" : " and a new unique id") : "");
    }
    cJSON_Delete(labels);
    cJSON_Delete(ann);
    if (rc == 0 && s->spec.rank == 0) {
        memcpy(s->my_id, id, sizeof(id));
        s->my_id_epoch = s->spec.epoch;
        s->republish = 0;
        (void)sc_write_handoff(s, s->my_id, s->my_id_epoch); /* a failure is queued as an Event */
    }
    return rc;
}

/* Rank 0, epoch changed: a fresh id for the new epoch, then the handoff (next evaluation). */
static int republish(sc_t *s)
{
    char id[KCCL_UNIQUE_ID_STRLEN + 1], epoch[24];
    kccl_kube_result_t res;
    s->republish = 0;
    if (new_id(s, id) != 0)
        return -1;
    snprintf(epoch, sizeof(epoch), "%ld", s->republish_epoch);
    cJSON *ann = cJSON_CreateObject();
    if (ann == NULL || !cJSON_AddStringToObject(ann, SC_ANN_UNIQUE_ID, id) ||
        !cJSON_AddStringToObject(ann, SC_ANN_ID_EPOCH, epoch)) {
        cJSON_Delete(ann);
        return -1;
    }
    kccl_status_t st = sc_api_patch_self(&s->api, NULL, ann, &res);
    cJSON_Delete(ann);
    if (st != KCCL_OK)
        return patch_failed(s, "publishing the unique id of the new epoch", &res);
    memcpy(s->my_id, id, sizeof(id));
    s->my_id_epoch = s->republish_epoch;
    kccl_log_info(TOOL, "published a new unique id for epoch %ld", s->my_id_epoch);
    return sc_eval_group(s) >= 0 ? 0 : -1; /* writes the handoff of the new epoch */
}

int sc_do_actions(sc_t *s)
{
    s->action_pending = 0;
    if (s->event_pending) {
        s->event_pending = 0;
        if (s->api.events_posted < SC_EVENTS_MAX)
            (void)sc_api_event(&s->api, "Warning", s->pending.reason, s->pending.message);
    }
    if (s->republish && republish(s) != 0)
        return -1;
    if (s->event_pending) { /* the republish's evaluation queued one */
        s->event_pending = 0;
        s->action_pending = 0;
        if (s->api.events_posted < SC_EVENTS_MAX)
            (void)sc_api_event(&s->api, "Warning", s->pending.reason, s->pending.message);
    }
    return 0;
}

int64_t sc_rendezvous_left_ms(const sc_t *s)
{
    if (s->handoff_ok || s->timeout_reported)
        return 0;
    int64_t left = s->started_ms + s->o->rendezvous_timeout_ms - sc_now_ms();
    return left > 0 ? left : 1;
}

void sc_rendezvous_timed_out(sc_t *s)
{
    if (s->handoff_ok || s->timeout_reported ||
        sc_now_ms() < s->started_ms + s->o->rendezvous_timeout_ms)
        return; /* another deadline (a LIST's) ended the watch, not the rendezvous's */
    s->timeout_reported = 1;
    if (s->posted.reason[0])
        return; /* a problem is already posted; it says more */
    snprintf(s->pending.reason, sizeof(s->pending.reason), "RendezvousTimeout");
    snprintf(s->pending.message, sizeof(s->pending.message),
             "no handoff after %.0f s; still waiting: %s",
             (double)s->o->rendezvous_timeout_ms / 1e3,
             s->wait_msg[0] ? s->wait_msg : "for the group");
    kccl_log_warn(TOOL, "%s: %s", s->pending.reason, s->pending.message);
    s->event_pending = 1;
    s->action_pending = 1;
}

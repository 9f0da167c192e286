/*
 * sc_eval.c - the sidecar's decisions. Given this pod's spec and what the
 * watch shows of the pods claiming rank 0, it writes, keeps or removes the
 * handoff and queues Events and republishes.
 *
 * Member (rank > 0): exactly one live rank-0 pod, the same world size, a valid
 * epoch, and a unique id published for that epoch (kccl.io/unique-id-epoch ==
 * kccl.io/epoch) give a handoff. No rank-0 pod yet, or one that has not
 * published: wait (the handoff, if any, stays). Two rank-0 pods or a world
 * size that differs from rank 0's: no handoff (the rank-0 pods, resp. this
 * pod, get the Event).
 *
 * Rank 0: its own pod must be the only rank-0 pod (else DuplicateRank on each
 * of them), keep its world size (WorldSizeChanged) and a valid epoch. When
 * kccl.io/epoch moves, it publishes a fresh id for the new epoch (a new
 * nonce, so a rank of the old epoch cannot join the new group) and rewrites
 * its handoff; members follow when they see the id of the new epoch.
 *
 * Duplicates of ranks other than 0 are not visible from one watched object;
 * the bootstrap root refuses the second check-in (KCCL_REFUSE_DUPLICATE).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "sc_state.h"

/* ------------------------------------------------------------------ outcomes */

static void set_wait(sc_t *s, const char *msg)
{
    if (strcmp(s->wait_msg, msg) == 0)
        return;
    snprintf(s->wait_msg, sizeof(s->wait_msg), "%s", msg);
    kccl_log_info(TOOL, "waiting: %s", msg);
}

/* No handoff; the problem is posted as an Event once (again only after it cleared). */
static void set_problem(sc_t *s, const sc_problem_t *pb)
{
    if (s->handoff_ok || access(s->o->handoff_path, F_OK) == 0) {
        if (sc_handoff_remove(s->o->handoff_path) == KCCL_OK && s->handoff_ok)
            kccl_log_warn(TOOL, "removed the handoff %s: %s", s->o->handoff_path, pb->reason);
        s->handoff_ok = 0;
    }
    set_wait(s, pb->message);
    if (strcmp(s->posted.reason, pb->reason) == 0 && strcmp(s->posted.message, pb->message) == 0)
        return;
    kccl_log_warn(TOOL, "%s: %s", pb->reason, pb->message);
    s->posted = *pb;
    s->pending = *pb;
    s->event_pending = 1;
    s->action_pending = 1;
}

static void problemf(sc_t *s, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void problemf(sc_t *s, const char *reason, const char *fmt, ...)
{
    sc_problem_t pb = {{0}, {0}};
    va_list ap;
    snprintf(pb.reason, sizeof(pb.reason), "%s", reason);
    va_start(ap, fmt);
    vsnprintf(pb.message, sizeof(pb.message), fmt, ap);
    va_end(ap);
    set_problem(s, &pb);
}

int sc_write_handoff(sc_t *s, const char *id, long epoch)
{
    char text[SC_HANDOFF_MAX];
    int written = 0;
    sc_handoff_t h = {.unique_id = id,
                      .rank = s->spec.rank,
                      .world = s->spec.world,
                      .epoch = epoch,
                      .host_id = s->self.node,
                      .secret_file = s->o->secret_file,
                      .pod = s->pod_ref};
    if (sc_handoff_render(&h, text, sizeof(text)) != KCCL_OK ||
        sc_handoff_write(s->o->handoff_path, text, &written) != KCCL_OK) {
        problemf(s, "HandoffWriteFailed", "cannot write the handoff file: %s", kccl_last_error());
        return -1;
    }
    s->handoff_ok = 1;
    memset(&s->posted, 0, sizeof(s->posted)); /* healthy: a later problem is news again */
    s->wait_msg[0] = '\0';
    if (written)
        kccl_log_info(TOOL, "handoff %s written: rank %ld of %ld, epoch %ld", s->o->handoff_path,
                      s->spec.rank, s->spec.world, epoch);
    return 0;
}

/* ------------------------------------------------------------------ the spec */

int sc_eval_spec(sc_t *s)
{
    sc_problem_t pb = {{0}, {0}};
    if (sc_spec_from_meta(s->self.annotations, s->self.labels, &s->spec, &pb) != KCCL_OK) {
        s->have_spec = 0;
        set_problem(s, &pb);
        return -1;
    }
    if (sc_endpoint_format(s->self.ip, s->spec.port, s->endpoint, sizeof(s->endpoint)) != 0) {
        problemf(s, "InvalidEndpoint", "cannot form an endpoint from IP %s", s->self.ip);
        return -1;
    }
    s->have_spec = 1;
    memset(&s->posted, 0, sizeof(s->posted));
    return 0;
}

/* ------------------------------------------------------------------ rank-0 candidates */

static int find_root(const sc_t *s, const char *name)
{
    for (int i = 0; i < s->nroots; i++)
        if (strcmp(s->roots[i].name, name) == 0)
            return i;
    return -1;
}

void sc_roots_remove(sc_t *s, const cJSON *pod)
{
    sc_root_t r;
    sc_root_from_pod(pod, &r);
    int i = find_root(s, r.name);
    if (i >= 0) {
        s->roots[i] = s->roots[s->nroots - 1];
        s->nroots--;
    } else if (s->roots_overflow > 0) {
        s->roots_overflow--;
    }
}

void sc_roots_upsert(sc_t *s, const cJSON *pod)
{
    sc_root_t r;
    sc_root_from_pod(pod, &r);
    if (r.deleting) { /* a terminating pod is no root; its replacement will be */
        sc_roots_remove(s, pod);
        return;
    }
    r.gen = s->list_gen;
    int i = find_root(s, r.name);
    if (i >= 0)
        s->roots[i] = r;
    else if (s->nroots < SC_ROOTS_MAX)
        s->roots[s->nroots++] = r;
    else
        s->roots_overflow++;
}

void sc_roots_purge_stale(sc_t *s)
{
    for (int i = 0; i < s->nroots;) {
        if (s->roots[i].gen != s->list_gen)
            s->roots[i] = s->roots[--s->nroots];
        else
            i++;
    }
}

/* "a, b and 3 more" */
static void root_names(const sc_t *s, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < s->nroots && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? ", " : "", s->roots[i].name);
    if (s->roots_overflow && n < len)
        snprintf(buf + n, len - n, " and %d more", s->roots_overflow);
}

/* ------------------------------------------------------------------ decisions */

static int eval_member(sc_t *s)
{
    char msg[400], names[300];
    if (s->nroots == 0) {
        snprintf(msg, sizeof(msg), "no pod of group %s with rank 0 yet", s->spec.group);
        set_wait(s, msg);
        return 0;
    }
    if (s->nroots + s->roots_overflow > 1) {
        root_names(s, names, sizeof(names));
        if (s->handoff_ok)
            sc_handoff_remove(s->o->handoff_path);
        s->handoff_ok = 0;
        snprintf(msg, sizeof(msg), "pods %s all claim rank 0 of group %s", names, s->spec.group);
        set_wait(s, msg);
        return 0;
    }
    const sc_root_t *r = &s->roots[0];
    if (!r->world_ok) {
        snprintf(msg, sizeof(msg), "rank 0 (pod %s) has no valid %s", r->name, SC_ANN_WORLD);
        set_wait(s, msg);
        return 0;
    }
    if (r->world != s->spec.world) {
        problemf(s, s->world_agreed ? "WorldSizeChanged" : "WorldSizeMismatch",
                 "this pod says %s=%ld but rank 0 (pod %s) of group %s says %ld; every pod of a "
                 "group carries the same world size, fixed for the group's life: recreate the "
                 "group's pods with one size",
                 SC_ANN_WORLD, s->spec.world, r->name, s->spec.group, r->world);
        return s->action_pending;
    }
    s->world_agreed = 1;
    if (!r->epoch_ok || !r->has_id || r->id_epoch != r->epoch) {
        snprintf(msg, sizeof(msg), "rank 0 (pod %s) has not published the unique id of epoch %ld",
                 r->name, r->epoch);
        set_wait(s, msg);
        return 0;
    }
    kccl_unique_id_t id;
    if (!r->id_text_ok || kccl_unique_id_from_string(r->id, &id) != KCCL_OK) {
        problemf(s, "InvalidUniqueId",
                 "rank 0 (pod %s) publishes a %s that does not parse; delete rank 0's pod so its "
                 "sidecar publishes a fresh one",
                 r->name, SC_ANN_UNIQUE_ID);
        return s->action_pending;
    }
    sc_write_handoff(s, r->id, r->epoch);
    return s->action_pending;
}

static int eval_root(sc_t *s)
{
    char names[300];
    int me = find_root(s, s->self.name);
    if (s->nroots + s->roots_overflow > 1) {
        root_names(s, names, sizeof(names));
        problemf(s, "DuplicateRank",
                 "pods %s all claim rank 0 of group %s; give each pod of the group a distinct "
                 "%s (0 to %ld) and recreate the extra pods",
                 names, s->spec.group, SC_ANN_RANK, s->spec.world - 1);
        return s->action_pending;
    }
    if (me < 0)
        return 0; /* not seen yet (the watch starts with it) */
    const sc_root_t *r = &s->roots[me];
    if (!r->world_ok || r->world != s->spec.world) {
        problemf(s, "WorldSizeChanged",
                 "%s of group %s changed from %ld while the group exists; a group's size is "
                 "fixed: restore %s=%ld, or recreate the group's pods with the new size",
                 SC_ANN_WORLD, s->spec.group, s->spec.world, SC_ANN_WORLD, s->spec.world);
        return s->action_pending;
    }
    if (!r->epoch_ok) {
        problemf(s, "InvalidEpoch", "annotation %s is not a whole number from 0", SC_ANN_EPOCH);
        return s->action_pending;
    }
    if (r->epoch != s->my_id_epoch) {
        kccl_log_info(TOOL, "epoch %ld -> %ld: publishing a new unique id", s->my_id_epoch,
                      r->epoch);
        s->republish = 1;
        s->republish_epoch = r->epoch;
        s->action_pending = 1;
        return 1;
    }
    sc_write_handoff(s, s->my_id, s->my_id_epoch);
    return s->action_pending;
}

int sc_eval_group(sc_t *s)
{
    return s->spec.rank == 0 ? eval_root(s) : eval_member(s);
}

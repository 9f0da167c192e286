/*
 * agent_pod.c - one pod's life on the node, the kubelet's pod worker:
 *
 *   NEW -> SETUP     network namespace and volumes (retried until --mount-timeout);
 *   SETUP -> RUN     init containers one at a time, in order; a native sidecar
 *                    (init container with restartPolicy Always) is started and the
 *                    next one starts once it has started (its startup probe passed,
 *                    or it runs: Kubernetes' rule); then every container at once;
 *   RUN -> DONE      every container terminated for good (restartPolicy Never, or
 *                    OnFailure and exit 0): sidecars get SIGTERM, the phase becomes
 *                    Succeeded or Failed, the network namespace is released;
 *   any -> TERMINATE metadata.deletionTimestamp: SIGTERM to the containers, then the
 *                    sidecars, SIGKILL at the end of the grace period, then DELETE
 *                    with gracePeriodSeconds=0 (the kubelet's final delete);
 *   -> GONE          clean: processes reaped, netns and volumes removed.
 *
 * Restarts follow the pod's restartPolicy (sidecars: always) with the kubelet's
 * back-off (doubling from --backoff-initial up to --backoff-max, CrashLoopBackOff
 * while waiting). Probes: exec, httpGet and tcpSocket, with initialDelaySeconds,
 * periodSeconds, timeoutSeconds, successThreshold and failureThreshold; a failed
 * liveness probe restarts the container.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"

enum { AG_POD_GONE = 10 };

static const char *probe_keys[AG_NPROBES] = {"startupProbe", "readinessProbe", "livenessProbe"};

static void ctr_init(ag_ctr_t *c, const cJSON *spec, int init)
{
    memset(c, 0, sizeof(*c));
    c->spec = spec;
    c->init = init;
    c->sidecar = init && !strcmp(ag_json_str(spec, "restartPolicy"), "Always");
    snprintf(c->name, sizeof(c->name), "%s", ag_json_str(spec, "name"));
    snprintf(c->image, sizeof(c->image), "%s", ag_json_str(spec, "image"));
    snprintf(c->waiting, sizeof(c->waiting), "%s", init ? "PodInitializing" : "ContainerCreating");
    for (int i = 0; i < AG_NPROBES; i++)
        c->probes[i].result = -1;
}

ag_pod_t *ag_pod_new(ag_t *a, const cJSON *obj)
{
    ag_pod_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    snprintf(p->ns, sizeof(p->ns), "%s", ag_json_str(meta, "namespace"));
    snprintf(p->name, sizeof(p->name), "%s", ag_json_str(meta, "name"));
    snprintf(p->uid, sizeof(p->uid), "%s", ag_json_str(meta, "uid"));
    p->obj = cJSON_Duplicate(obj, 1);
    p->spec = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(obj, "spec"), 1);
    p->slot = -1;
    p->host_network = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p->spec, "hostNetwork"));
    snprintf(p->dir, sizeof(p->dir), "%s/pods/%s", a->state_dir, p->uid);
    snprintf(p->phase, sizeof(p->phase), "Pending");
    ag_now_rfc3339(p->start_time, sizeof(p->start_time));
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(p->spec, "initContainers"))
    {
        if (p->nctrs < AG_MAX_CTRS)
            ctr_init(&p->ctrs[p->nctrs++], c, 1);
    }
    p->ninit = p->nctrs;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(p->spec, "containers"))
    {
        if (p->nctrs < AG_MAX_CTRS)
            ctr_init(&p->ctrs[p->nctrs++], c, 0);
    }
    p->status_dirty = 1;
    ag_info("pod %s/%s (%s) bound to this node: %d init, %d containers", p->ns, p->name, p->uid,
            p->ninit, p->nctrs - p->ninit);
    return p;
}

static int grace_seconds(const ag_pod_t *p)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(p->obj, "metadata");
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(meta, "deletionGracePeriodSeconds");
    if (cJSON_IsNumber(g))
        return g->valueint;
    return ag_json_int(p->spec, "terminationGracePeriodSeconds", 30);
}

static void ctr_signal(ag_ctr_t *c, int sig)
{
    if (c->pid > 0 && c->running)
        kill(-c->pid, sig); /* the container's process group */
}

/* SIGTERM once, SIGKILL when the grace period is over. */
static void stop_ctr(ag_ctr_t *c, int64_t now, int grace_s)
{
    if (!c->running)
        return;
    if (!c->stopping) {
        c->stopping = 1;
        c->kill_at_ms = now + (int64_t)grace_s * 1000;
        ctr_signal(c, SIGTERM);
    } else if (now >= c->kill_at_ms) {
        ctr_signal(c, SIGKILL);
    }
}

static void probes_kill(ag_ctr_t *c)
{
    for (int i = 0; i < AG_NPROBES; i++)
        if (c->probes[i].pid > 0)
            kill(-c->probes[i].pid, SIGKILL);
}

void ag_pod_kill_all(ag_t *a, ag_pod_t *p, int sig)
{
    (void)a;
    for (int i = 0; i < p->nctrs; i++) {
        ctr_signal(&p->ctrs[i], sig);
        if (sig == SIGKILL)
            probes_kill(&p->ctrs[i]);
    }
}

static int procs_alive(const ag_pod_t *p, int sidecars_only, int mains_only)
{
    int n = !sidecars_only && !mains_only && p->net_pid > 0; /* the network helper */
    for (int i = 0; i < p->nctrs; i++) {
        const ag_ctr_t *c = &p->ctrs[i];
        if ((sidecars_only && !c->sidecar) || (mains_only && c->init))
            continue;
        n += c->running;
        for (int k = 0; k < AG_NPROBES && !sidecars_only && !mains_only; k++)
            n += c->probes[k].pid > 0;
    }
    return n;
}

static void begin_terminate(ag_t *a, ag_pod_t *p, int64_t now)
{
    int grace = grace_seconds(p);
    p->state = AG_POD_TERMINATE;
    p->grace_end_ms = now + (int64_t)grace * 1000;
    int n = 0;
    for (int i = 0; i < p->nctrs; i++)
        if (!p->ctrs[i].init && p->ctrs[i].running) {
            ctr_signal(&p->ctrs[i], SIGTERM);
            n++;
        }
    if (n)
        ag_event(a, p, "Normal", "Killing", "Stopping %d container(s) (grace period %d s)", n,
                 grace);
    ag_info("pod %s/%s: deleting (grace %d s)", p->ns, p->name, grace);
}

void ag_pod_update(ag_t *a, ag_pod_t *p, const cJSON *obj)
{
    cJSON_Delete(p->obj);
    p->obj = cJSON_Duplicate(obj, 1);
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    if (cJSON_GetObjectItemCaseSensitive(meta, "deletionTimestamp") &&
        p->state != AG_POD_TERMINATE && p->state != AG_POD_GONE)
        begin_terminate(a, p, ag_now_ms());
}

/* ------------------------------------------------------------------ exits */

static void on_ctr_exit(ag_t *a, ag_pod_t *p, ag_ctr_t *c, int status)
{
    c->running = 0;
    c->terminated = 1;
    c->ready = 0;
    c->started = 0;
    c->pid = 0;
    c->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    snprintf(c->reason, sizeof(c->reason), "%s", c->exit_code == 0 ? "Completed" : "Error");
    ag_now_rfc3339(c->finished_at, sizeof(c->finished_at));
    probes_kill(c);
    for (int i = 0; i < AG_NPROBES; i++) {
        c->probes[i].result = -1;
        c->probes[i].successes = c->probes[i].failures = 0;
    }
    p->status_dirty = 1;
    ag_info("pod %s/%s: container %s exited with %d", p->ns, p->name, c->name, c->exit_code);
    char what[32];
    snprintf(what, sizeof(what), "exit-%d", c->exit_code);
    ag_timeline(a, p, what, c->name);
}

static void on_probe_exit(ag_t *a, ag_pod_t *p, ag_ctr_t *c, int k, int status)
{
    ag_probe_t *pr = &c->probes[k];
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(c->spec, probe_keys[k]);
    int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    pr->pid = 0;
    if (ok) {
        pr->failures = 0;
        if (++pr->successes >= ag_json_int(spec, "successThreshold", 1) && pr->result != 1) {
            pr->result = 1;
            p->status_dirty = 1;
        }
    } else {
        pr->successes = 0;
        if (++pr->failures >= ag_json_int(spec, "failureThreshold", 3) && pr->result != 0) {
            pr->result = 0;
            p->status_dirty = 1;
            ag_event(a, p, "Warning", "Unhealthy", "%s probe failed for container %s",
                     k == AG_PROBE_LIVENESS  ? "Liveness"
                     : k == AG_PROBE_STARTUP ? "Startup"
                                             : "Readiness",
                     c->name);
        }
    }
}

int ag_pod_on_exit(ag_t *a, pid_t pid, int status)
{
    for (int i = 0; i < a->npods; i++) {
        ag_pod_t *p = a->pods[i];
        if (p->net_pid == pid) {
            ag_net_up_done(a, p, status);
            return 1;
        }
        for (int j = 0; j < p->nctrs; j++) {
            ag_ctr_t *c = &p->ctrs[j];
            if (c->pid == pid && c->running) {
                on_ctr_exit(a, p, c, status);
                return 1;
            }
            for (int k = 0; k < AG_NPROBES; k++)
                if (c->probes[k].pid == pid) {
                    on_probe_exit(a, p, c, k, status);
                    return 1;
                }
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ starting */

static void start_ctr(ag_t *a, ag_pod_t *p, ag_ctr_t *c, int64_t now)
{
    if (now < c->next_start_ms)
        return;
    if (c->terminated) { /* a restart: keep the last termination */
        c->has_last = 1;
        c->last_exit = c->exit_code;
        snprintf(c->last_reason, sizeof(c->last_reason), "%s", c->reason);
        snprintf(c->last_started, sizeof(c->last_started), "%s", c->started_at);
        snprintf(c->last_finished, sizeof(c->last_finished), "%s", c->finished_at);
        c->restarts++;
    }
    pid_t pid = ag_ctr_spawn(a, p, c);
    p->status_dirty = 1;
    if (pid < 0) {
        snprintf(c->waiting, sizeof(c->waiting), "%s",
                 ag_image_find(a, c->image) ? "CreateContainerError" : "ErrImagePull");
        ag_event(a, p, "Warning", "Failed", "container %s: %s", c->name, c->message);
        c->next_start_ms = now + 10000;
        return;
    }
    c->pid = pid;
    c->running = 1;
    c->stopping = 0;
    c->terminated = 0;
    c->ever_started = 1;
    c->waiting[0] = '\0';
    c->message[0] = '\0';
    c->started = cJSON_GetObjectItemCaseSensitive(c->spec, "startupProbe") == NULL;
    ag_now_rfc3339(c->started_at, sizeof(c->started_at));
    for (int k = 0; k < AG_NPROBES; k++) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(c->spec, probe_keys[k]);
        c->probes[k].next_ms = now + (int64_t)ag_json_int(s, "initialDelaySeconds", 0) * 1000;
    }
    ag_debug("pod %s/%s: started %s (pid %d)", p->ns, p->name, c->name, (int)pid);
    ag_timeline(a, p, "running", c->name);
}

/* After an exit: restart after the back-off, or not at all (returns 0). */
static int plan_restart(ag_t *a, ag_pod_t *p, ag_ctr_t *c, int64_t now)
{
    const char *pol = ag_json_str(p->spec, "restartPolicy");
    int restart = c->sidecar || !strcmp(pol, "Always") || !*pol ||
                  (!strcmp(pol, "OnFailure") && c->exit_code != 0);
    if (!restart || c->next_start_ms > now)
        return restart;
    if (c->waiting[0] == '\0') { /* just exited: schedule */
        c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : a->backoff_initial_ms;
        if (c->backoff_ms > a->backoff_max_ms)
            c->backoff_ms = a->backoff_max_ms;
        c->next_start_ms = now + c->backoff_ms;
        snprintf(c->waiting, sizeof(c->waiting), "CrashLoopBackOff");
        snprintf(c->message, sizeof(c->message), "back-off %ds restarting failed container=%s",
                 (int)(c->backoff_ms / 1000), c->name);
        if (c->exit_code != 0)
            ag_event(a, p, "Warning", "BackOff", "Back-off restarting failed container %s",
                     c->name);
        p->status_dirty = 1;
        return 1;
    }
    start_ctr(a, p, c, now);
    return 1;
}

/* ------------------------------------------------------------------ probes */

static void probe_step(ag_t *a, ag_pod_t *p, ag_ctr_t *c, int64_t now)
{
    for (int k = 0; k < AG_NPROBES; k++) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(c->spec, probe_keys[k]);
        ag_probe_t *pr = &c->probes[k];
        if (s == NULL || !c->running || (k != AG_PROBE_STARTUP && !c->started) ||
            (k == AG_PROBE_STARTUP && c->started))
            continue;
        if (pr->pid > 0) {
            if (now >= pr->deadline_ms)
                kill(-pr->pid, SIGKILL); /* reaped as a failure */
            continue;
        }
        if (now < pr->next_ms)
            continue;
        pr->next_ms = now + (int64_t)ag_json_int(s, "periodSeconds", 10) * 1000;
        pr->deadline_ms = now + (int64_t)ag_json_int(s, "timeoutSeconds", 1) * 1000;
        pr->pid = ag_probe_spawn(a, p, c, s);
        if (pr->pid < 0)
            pr->pid = 0;
    }
    if (!c->started && c->probes[AG_PROBE_STARTUP].result == 1) {
        c->started = 1;
        p->status_dirty = 1;
    }
    int ready = c->running && c->started &&
                (cJSON_GetObjectItemCaseSensitive(c->spec, "readinessProbe") == NULL ||
                 c->probes[AG_PROBE_READINESS].result == 1);
    if (ready != c->ready) {
        c->ready = ready;
        p->status_dirty = 1;
        ag_timeline(a, p, ready ? "ready" : "unready", c->name);
    }
    if (c->running && !c->stopping &&
        (c->probes[AG_PROBE_LIVENESS].result == 0 || c->probes[AG_PROBE_STARTUP].result == 0)) {
        ag_info("pod %s/%s: container %s failed its liveness probe; restarting", p->ns, p->name,
                c->name);
        ctr_signal(c, SIGKILL);
        c->probes[AG_PROBE_LIVENESS].result = c->probes[AG_PROBE_STARTUP].result = -1;
    }
}

/* ------------------------------------------------------------------ the worker */

static void fail_pod(ag_t *a, ag_pod_t *p, const char *reason)
{
    snprintf(p->phase, sizeof(p->phase), "Failed");
    snprintf(p->reason, sizeof(p->reason), "%s", reason);
    ag_event(a, p, "Warning", reason, "%s", p->message);
    ag_error("pod %s/%s failed: %s: %s", p->ns, p->name, reason, p->message);
    ag_pod_kill_all(a, p, SIGKILL);
    p->state = AG_POD_DONE;
    p->status_dirty = 1;
}

static void setup_step(ag_t *a, ag_pod_t *p, int64_t now)
{
    if (now < p->next_setup_ms)
        return;
    if (p->ip[0] == '\0' && ag_net_up(a, p) != 0) {
        fail_pod(a, p, "FailedCreatePodSandBox");
        return;
    }
    if (p->net_done < 0) {
        fail_pod(a, p, "FailedCreatePodSandBox");
        return;
    }
    int rc = p->volumes_ok ? 0 : ag_vol_setup(a, p); /* while the network helper runs */
    if (rc < 0 || (rc > 0 && now >= p->setup_deadline_ms)) {
        fail_pod(a, p, "FailedMount");
        return;
    }
    if (rc > 0) {
        if (p->next_setup_ms == 0 || (now / 1000) % 10 == 0)
            ag_event(a, p, "Warning", "FailedMount", "MountVolume.SetUp failed: %s", p->message);
        p->next_setup_ms = now + 1000;
        return;
    }
    p->volumes_ok = 1;
    if (!p->net_done)
        return; /* ag_pod_on_exit() records the helper's exit */
    p->message[0] = '\0';
    ag_now_rfc3339(p->sandbox_at, sizeof(p->sandbox_at));
    p->state = AG_POD_RUN;
    p->status_dirty = 1;
}

/* Init containers in order; 1 when all are done (sidecars started). */
static int init_step(ag_t *a, ag_pod_t *p, int64_t now)
{
    for (int i = 0; i < p->ninit; i++) {
        ag_ctr_t *c = &p->ctrs[i];
        if (!c->ever_started) {
            start_ctr(a, p, c, now);
            return 0;
        }
        if (c->sidecar) {
            if (!c->running)
                plan_restart(a, p, c, now);
            if (!c->started)
                return 0;
            continue;
        }
        if (c->running)
            return 0;
        if (c->exit_code == 0 && c->terminated)
            continue;
        if (!plan_restart(a, p, c, now)) {
            snprintf(p->message, sizeof(p->message), "init container %s exited with %d", c->name,
                     c->exit_code);
            fail_pod(a, p, "InitContainerFailed");
        }
        return 0;
    }
    ag_now_rfc3339(p->initialized_at, sizeof(p->initialized_at));
    p->init_done = 1;
    p->status_dirty = 1;
    return 1;
}

static void run_step(ag_t *a, ag_pod_t *p, int64_t now)
{
    if (p->token_refresh_ms && now >= p->token_refresh_ms)
        ag_vol_refresh_tokens(a, p);
    for (int i = 0; i < p->nctrs; i++)
        probe_step(a, p, &p->ctrs[i], now);
    if (!p->init_done && !init_step(a, p, now))
        return;
    int live = 0, failed = 0;
    for (int i = 0; i < p->nctrs; i++) {
        ag_ctr_t *c = &p->ctrs[i];
        if (c->init && !c->sidecar)
            continue;
        if (!c->ever_started) {
            start_ctr(a, p, c, now);
            live += !c->init;
            continue;
        }
        if (c->running) {
            live += !c->init;
            continue;
        }
        if (c->sidecar) {
            if (procs_alive(p, 0, 1))
                plan_restart(a, p, c, now);
            continue;
        }
        if (plan_restart(a, p, c, now))
            live++;
        else
            failed += c->exit_code != 0;
    }
    if (live == 0 && procs_alive(p, 1, 0) > 0) {
        for (int i = 0; i < p->ninit; i++) /* main containers done: stop the sidecars */
            stop_ctr(&p->ctrs[i], now, grace_seconds(p));
        return;
    }
    if (live == 0 && procs_alive(p, 1, 0) == 0) {
        snprintf(p->phase, sizeof(p->phase), "%s", failed ? "Failed" : "Succeeded");
        p->state = AG_POD_DONE;
        p->status_dirty = 1;
        ag_info("pod %s/%s: %s", p->ns, p->name, p->phase);
        ag_timeline(a, p, p->phase, NULL);
        return;
    }
    if (live > 0 && strcmp(p->phase, "Running") != 0) {
        snprintf(p->phase, sizeof(p->phase), "Running");
        p->status_dirty = 1;
        ag_timeline(a, p, "Running", NULL);
    }
}

static void final_delete(ag_t *a, ag_pod_t *p)
{
    char path[600];
    kccl_kube_result_t res;
    kccl_kube_opts_t o = {.timeout_ms = 10000};
    snprintf(path, sizeof(path), "/api/v1/namespaces/%s/pods/%s?gracePeriodSeconds=0", p->ns,
             p->name);
    if (kccl_kube_delete(a->api, path, &o, NULL, &res) != KCCL_OK && res.http_status != 404)
        ag_warn("DELETE %s: %s", path, res.message);
}

static void terminate_step(ag_t *a, ag_pod_t *p, int64_t now)
{
    if (procs_alive(p, 0, 1) == 0 && procs_alive(p, 1, 0) > 0) {
        for (int i = p->ninit - 1; i >= 0; i--) /* sidecars after the containers, in reverse */
            stop_ctr(&p->ctrs[i], now, (int)((p->grace_end_ms - now) / 1000) + 1);
    }
    if (now >= p->grace_end_ms || p->deleted)
        ag_pod_kill_all(a, p, SIGKILL);
    if (procs_alive(p, 0, 0) > 0)
        return;
    ag_status_report(a, p, now, 1);
    ag_net_down(a, p);
    ag_sh("rm -rf '%s/volumes'", p->dir);
    if (!p->deleted)
        final_delete(a, p);
    p->state = AG_POD_GONE;
    ag_info("pod %s/%s: gone", p->ns, p->name);
}

void ag_pod_step(ag_t *a, ag_pod_t *p, int64_t now)
{
    switch (p->state) {
    case AG_POD_NEW: {
        char logs[800];
        snprintf(logs, sizeof(logs), "%s/logs", p->dir);
        if (ag_mkdirs(logs, 0755) != 0) {
            snprintf(p->message, sizeof(p->message), "mkdir %s: %s", logs, strerror(errno));
            fail_pod(a, p, "FailedCreatePodSandBox");
            break;
        }
        p->setup_deadline_ms = now + (int64_t)a->mount_timeout_s * 1000;
        p->state = AG_POD_SETUP;
        setup_step(a, p, now);
        break;
    }
    case AG_POD_SETUP: setup_step(a, p, now); break;
    case AG_POD_RUN: run_step(a, p, now); break;
    case AG_POD_DONE:
        if (!p->released && procs_alive(p, 0, 0) == 0 && !p->status_dirty && p->last_status) {
            ag_net_down(a, p); /* the sandbox goes once the final phase is reported */
            p->released = 1;
        }
        break;
    case AG_POD_TERMINATE: terminate_step(a, p, now); break;
    default: break;
    }
    if (p->deleted && p->state != AG_POD_GONE && p->state != AG_POD_TERMINATE)
        begin_terminate(a, p, now);
}

int ag_pod_finished(const ag_pod_t *p)
{
    return p->state == AG_POD_GONE;
}

void ag_pod_free(ag_t *a, ag_pod_t *p)
{
    (void)a;
    for (int i = 0; i < p->nctrs; i++)
        ag_env_free(p->ctrs[i].envp);
    cJSON_Delete(p->obj);
    cJSON_Delete(p->spec);
    free(p->last_status);
    free(p);
}

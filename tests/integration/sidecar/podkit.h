/*
 * podkit.h - "pods" for kccl-sidecar tests and benchmarks on the REAL local
 * control plane (e2e/controlplane/cp.sh), with no kubelet. podkit plays the
 * kubelet's part and nothing else:
 *
 *   - the Pod object is created through the API (admin credentials), as a user
 *     or a controller would; it stays Pending (no node), and podkit PATCHes
 *     pods/status (podIP, phase Running) the way a kubelet reports them;
 *   - the pod's network is a netns <prefix>sc<octet>-<i> with a veth (eth0
 *     inside) into the control plane's bridge and an address in its /16;
 *   - the pod's files live under <tmp>/<pod>/: sa/ (a TokenRequest token bound
 *     to the pod for ServiceAccount kccl-sidecar, ca.crt, namespace), kccl/
 *     (the emptyDir for the handoff), secret/ (the group Secret's key, read
 *     from the API and written as a kubelet writes a secret volume), podinfo/
 *     (a downward-API volume, when a test asks for one);
 *   - processes (kccl-sidecar, kccl-demo) run inside the pod's netns with the
 *     environment the downward API and the in-cluster config would give.
 *
 * Everything else - RBAC (deploy/rbac/ applied exactly as shipped), watches,
 * admission, TokenRequest, Events, the audit log - is the real apiserver.
 *
 * Addresses: each podkit user locks one or more /24s of the bridge's /16
 * (octets 100..219, a lock file per octet under /tmp/kccl-sidecar-net), so
 * concurrent test programs never collide; stale netns and veths of a locked
 * octet are removed first. podkit never sends a packet unless `cp.sh status`
 * says the control plane (and so its bridge) is up.
 *
 * Errors: functions return 0 or -1 after printing "podkit: ..." to stderr.
 */
#ifndef KCCL_PODKIT_H
#define KCCL_PODKIT_H

#include <cjson/cJSON.h>
#include <stdint.h>
#include <sys/types.h>

#include "comm/comm.h"
#include "kccl/kube.h"

#define PK_SKIP     77
#define PK_MAX_PODS 1024

typedef struct {
    int index;
    char name[64];
    char uid[64];
    char ip[32];
    char netns[64];
    char veth[24]; /* at most 15 used: kcs<octet>-<index> */
    char node[64];
    char dir[600];         /* <tmp>/<name>.<index> */
    char handoff[700];     /* dir/kccl/bootstrap */
    char secret_file[740]; /* dir/secret/secret ("" until mounted) */
    int net_up;
    pid_t sidecar;
    pid_t demo;
} pk_pod_t;

typedef struct {
    /* the control plane (cp.sh env) */
    char cp_sh[512];
    char kubeconfig[512];
    char apiserver[256];
    char ca[512];
    char bin[512];
    char bridge[32];
    char bridge_ip[64];
    char port[16];
    char netns_prefix[32];
    char audit_log[512];
    kccl_kube_client_t admin;
    /* this program */
    char ns[64];
    char tmp[512];
    char sidecar_bin[512];
    char demo_bin[512];
    char rbac[512]; /* deploy/rbac/kccl-sidecar.yaml */
    int octet;      /* first locked third octet */
    int noctets;
    int lock_fds[8];
    pk_pod_t *pods;
    int npods;
} pk_t;

/*
 * Reads `cp.sh env`, locks addresses for max_pods, makes the admin client, a
 * namespace kccl-sc-<prog>-<pid> with deploy/rbac applied, and a temporary
 * directory. Returns PK_SKIP when the control plane is not up, 0, or -1.
 * source_dir: the repository; sidecar_bin, demo_bin: the binaries.
 */
int pk_init(pk_t *k, const char *prog, const char *source_dir, const char *sidecar_bin,
            const char *demo_bin, int max_pods);
/* Stops every process, deletes every netns, the namespace and the directory (kept when
 * KCCL_PODKIT_KEEP is set; KCCL_PODKIT_LOG_LEVEL sets the sidecars' log level). Idempotent. */
void pk_fini(pk_t *k);

/* Runs a shell command with the control plane's PATH and KUBECONFIG; output in out. */
int pk_sh(const pk_t *k, char *out, size_t outlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A group Secret (32 random bytes under key "secret"). */
int pk_secret_create(pk_t *k, const char *name);

/*
 * Creates the Pod object: annotations and labels as JSON object text (may be
 * NULL), ServiceAccount kccl-sidecar, a native sidecar container, an app
 * container, an emptyDir and (secret != NULL) a Secret volume. node: the node
 * name the downward API will report (spec.nodeName stays empty: no kubelet).
 */
pk_pod_t *pk_pod_create(pk_t *k, const char *name, const char *annotations_json,
                        const char *labels_json, const char *secret, const char *node);
/* The kubelet's part, step by step (pk_pod_start does all four). */
int pk_pod_net(pk_t *k, pk_pod_t *p);
int pk_pod_token(pk_t *k, pk_pod_t *p);
int pk_pod_mount_secret(pk_t *k, pk_pod_t *p, const char *secret);
int pk_pod_running(pk_t *k, pk_pod_t *p);
/* Writes the downward-API volume (name, namespace, uid, annotations, labels) from the API. */
int pk_pod_podinfo(pk_t *k, pk_pod_t *p);
int pk_pod_ready_files(pk_t *k, pk_pod_t *p, const char *secret);

/* Starts kccl-sidecar in the pod (extra: NULL-terminated KEY=value list, may be NULL). */
pid_t pk_sidecar_start(pk_t *k, pk_pod_t *p, const char *const *extra);
/* Starts kccl-demo in the pod, reading the handoff. */
pid_t pk_demo_start(pk_t *k, pk_pod_t *p, const char *const *extra);
/* Sends sig and waits up to timeout_ms: the exit status (128+n for a signal), -1 on timeout. */
int pk_stop(pid_t pid, int sig, int timeout_ms);
/* Waits for pid up to timeout_ms: its exit status, or -1 (still running). */
int pk_wait(pid_t pid, int timeout_ms);
/* pk_stop on the pod's sidecar, then forgets its pid. */
int pk_sidecar_stop(pk_pod_t *p, int sig, int timeout_ms);

/* Waits for the pod's handoff file to parse; 0 and *out, or -1. */
int pk_handoff_wait(const pk_pod_t *p, int timeout_ms, kccl_handoff_t *out);
/* 1 if the pod has a handoff file now. */
int pk_handoff_exists(const pk_pod_t *p);

/* Events on the pod with that reason (NULL: any); message of the last in msg (may be NULL). */
int pk_events(pk_t *k, const pk_pod_t *p, const char *reason, char *msg, size_t msglen);
/* Waits until such an Event exists; 0 or -1. */
int pk_event_wait(pk_t *k, const pk_pod_t *p, const char *reason, int timeout_ms, char *msg,
                  size_t msglen);

/* Annotates (merge patch of metadata.annotations, JSON object text) as an admin. */
int pk_annotate(pk_t *k, const pk_pod_t *p, const char *annotations_json);
/* GETs the pod as an admin (caller frees). */
cJSON *pk_pod_get(pk_t *k, const pk_pod_t *p);
int pk_pod_delete(pk_t *k, pk_pod_t *p);

/* SubjectAccessReview for ServiceAccount kccl-sidecar of k->ns: 1 allowed, 0 denied, -1 error.
 * ns NULL: a cluster-scoped request. */
int pk_sa_can(pk_t *k, const char *verb, const char *group, const char *resource,
              const char *subresource, const char *ns);

/* Requests the pod's ServiceAccount token made, from the audit log: non-watch, watch. */
typedef struct {
    int requests; /* distinct auditIDs that are not watches */
    int watches;
    int lists, gets, patches, creates;
} pk_audit_t;
int pk_audit_count(pk_t *k, const pk_pod_t *p, pk_audit_t *out);
/* The same for every pod at once (one pass over the log): out[i] for k->pods[i]. */
int pk_audit_count_all(pk_t *k, pk_audit_t *out);
/* The audit log's size now, and counts of what was logged after such a mark. */
long pk_audit_mark(const pk_t *k);
int pk_audit_count_from(pk_t *k, long offset, pk_audit_t *out);

/* VmRSS of pid in KiB, or -1. */
long pk_rss_kib(pid_t pid);
int64_t pk_now_ms(void);
double pk_wall_s(void); /* CLOCK_REALTIME seconds, for file times */
void pk_sleep_ms(int ms);

#endif

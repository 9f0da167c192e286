/*
 * agent.h - kccl-node-agent, the stand-in for kubelet + container runtime on
 * the local control plane (e2e/controlplane/cp.sh). The apiserver, scheduler,
 * controllers, admission webhooks, RBAC and garbage collection are the real
 * ones; this program only does what a kubelet does on its node:
 *
 *   ag_node    registers the Node, renews its Lease, reports node status;
 *   ag_net     one network namespace per pod, a veth into the control plane's
 *              bridge and an address from the bridge's /16;
 *   ag_vol     the pod's volumes as directories (emptyDir, secret, configMap,
 *              downwardAPI, projected service-account tokens, hostPath);
 *   ag_proc    containers as processes: image -> local binary (images.map),
 *              env with $(VAR) expansion and valueFrom, a private mount
 *              namespace per container that bind-mounts each volume at its
 *              exact mountPath, exec/httpGet/tcpSocket probes;
 *   ag_pod     the pod life cycle: init containers in order, native sidecars,
 *              restart policies with back-off, probes, graceful deletion;
 *   ag_status  the pod status the kubelet would report.
 *
 * One thread (the main loop) owns every pod; a second thread runs the pod
 * watch and hands events over through a locked queue (agent_main.c).
 */
#ifndef KCCL_E2E_AGENT_H
#define KCCL_E2E_AGENT_H

#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "kccl/kube.h"

#define AG_MAX_CTRS   16
#define AG_MAX_PODS   1000
#define AG_MAX_IMAGES 32

/* ------------------------------------------------------------------ logging */
extern int ag_verbose;
void ag_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define ag_info(...)  ag_log("info", __VA_ARGS__)
#define ag_warn(...)  ag_log("warn", __VA_ARGS__)
#define ag_error(...) ag_log("error", __VA_ARGS__)
#define ag_debug(...)                                                                              \
    do {                                                                                           \
        if (ag_verbose)                                                                            \
            ag_log("debug", __VA_ARGS__);                                                          \
    } while (0)

/* ------------------------------------------------------------------ the agent */
typedef struct {
    char image[256]; /* without tag or digest */
    char path[512];  /* a binary (the entrypoint) or a directory (ends in '/') */
} ag_image_t;

typedef struct ag_pod ag_pod_t;

typedef struct {
    /* settings */
    char node[64];
    char kubeconfig[512];
    char state_dir[512];
    char build_dir[512];
    char images_file[512];
    char bridge[32];
    char bridge_ip[64];
    int bridge_prefix;
    char api_host[64];
    char api_port[16];
    char ca_file[512];
    char netns_prefix[32];
    char cpu[16], memory[32], max_pods[16];
    int octet_base;         /* pods get <a>.<b>.<octet_base + slot/250>.<1 + slot%250> */
    int backoff_initial_ms; /* container restart back-off: doubles up to backoff_max_ms */
    int backoff_max_ms;
    int mount_timeout_s;     /* secrets/configMaps that do not appear: the pod fails */
    int delete_node_on_exit; /* the Node (and through GC its Lease) go at exit */
    FILE *timeline;          /* <state>/timeline.log: ms-stamped container/pod transitions */
    /* state */
    kccl_kube_client_t api;
    ag_image_t images[AG_MAX_IMAGES];
    int nimages;
    ag_pod_t *pods[AG_MAX_PODS];
    int npods;
    unsigned char slots[AG_MAX_PODS]; /* address slots in use */
    char node_uid[64];
    int64_t next_lease_ms, next_node_status_ms;
    atomic_int stop;
} ag_t;

/* ------------------------------------------------------------------ containers and pods */
typedef struct {
    int kind; /* AG_PROBE_* */
    pid_t pid;
    int64_t deadline_ms, next_ms;
    int successes, failures;
    int result; /* 1 success, 0 failure, -1 none yet */
} ag_probe_t;

enum { AG_PROBE_STARTUP = 0, AG_PROBE_READINESS, AG_PROBE_LIVENESS, AG_NPROBES };

typedef struct {
    char name[64];
    char image[256];
    const cJSON *spec; /* borrowed from the pod's spec copy */
    int init;          /* an init container */
    int sidecar;       /* an init container with restartPolicy Always */
    pid_t pid;
    int running, terminated, ever_started;
    int exit_code;
    char reason[32];
    char started_at[32], finished_at[32];
    int restarts;
    int64_t next_start_ms, backoff_ms;
    int started; /* startup probe passed (or none) */
    int ready;
    ag_probe_t probes[AG_NPROBES];
    int stopping;
    int64_t kill_at_ms;
    char waiting[64];  /* waiting reason: ContainerCreating, CrashLoopBackOff, ErrImagePull */
    char message[256]; /* for waiting/terminated */
    /* the last termination (lastState) */
    int has_last;
    int last_exit;
    char last_reason[32], last_started[32], last_finished[32];
    char **envp; /* the environment it was started with (probes reuse it) */
    char bin_dir[512];
} ag_ctr_t;

enum {
    AG_POD_NEW = 0,   /* seen, nothing done */
    AG_POD_SETUP,     /* network and volumes */
    AG_POD_RUN,       /* init containers, then containers */
    AG_POD_DONE,      /* Succeeded or Failed: processes gone, sandbox released */
    AG_POD_TERMINATE, /* deletion: SIGTERM sent, waiting for the grace period */
};

struct ag_pod {
    char ns[64], name[256], uid[64];
    cJSON *obj;  /* the latest object from the watch */
    cJSON *spec; /* a copy of spec at first sight (containers point into it) */
    int state;
    char phase[16];
    char reason[64], message[256]; /* pod-level (Failed) */
    int slot;                      /* address slot, -1 none */
    char ip[32], netns[64], veth[24];
    int host_network;
    char dir[700]; /* <state>/pods/<uid> */
    char start_time[32];
    int64_t setup_deadline_ms, next_setup_ms;
    int64_t token_refresh_ms;
    int volumes_ok;
    ag_ctr_t ctrs[AG_MAX_CTRS];
    int nctrs, ninit;
    int init_done; /* all (non-sidecar) init containers succeeded */
    int64_t grace_end_ms;
    int deleted; /* gone from the API: only local clean-up left */
    char *last_status;
    int64_t next_status_ms;
    int status_dirty;
    char initialized_at[32], ready_at[32], containers_ready_at[32], sandbox_at[32];
    int was_ready;
    int released;  /* the sandbox (netns, address) is given back */
    pid_t net_pid; /* the network helper while it runs */
    int net_done;  /* 1 up, -1 failed, 0 not yet */
};

/* agent_node.c */
int ag_node_register(ag_t *a);
void ag_node_tick(ag_t *a, int64_t now);
void ag_node_delete(ag_t *a);
void ag_event(ag_t *a, const ag_pod_t *p, const char *type, const char *reason, const char *fmt,
              ...) __attribute__((format(printf, 5, 6)));
void ag_now_rfc3339(char *buf, size_t len);
/* "<unix ms> <ns>/<pod> <uid> <what> <container or ->" to the timeline (scenario timings). */
void ag_timeline(ag_t *a, const ag_pod_t *p, const char *what, const char *ctr);
int64_t ag_now_ms(void);

/* agent_net.c */
void ag_net_cleanup_stale(ag_t *a);
int ag_net_up(ag_t *a, ag_pod_t *p);
int ag_net_up_done(ag_t *a, ag_pod_t *p, int status);
void ag_net_down(ag_t *a, ag_pod_t *p);
int ag_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* agent_vol.c: 0 done, 1 not yet (retry later), -1 failed for good (reason in p->message) */
int ag_vol_setup(ag_t *a, ag_pod_t *p);
int ag_vol_refresh_tokens(ag_t *a, ag_pod_t *p);
const char *ag_vol_path(const ag_pod_t *p, const char *volume, char *buf, size_t len);
int ag_write_file_atomic(const char *path, const void *data, size_t len, int mode);
int ag_mkdirs(const char *path, int mode);

/* agent_proc.c */
int ag_images_load(ag_t *a);
const ag_image_t *ag_image_find(const ag_t *a, const char *image);
pid_t ag_ctr_spawn(ag_t *a, ag_pod_t *p, ag_ctr_t *c);
pid_t ag_probe_spawn(ag_t *a, ag_pod_t *p, ag_ctr_t *c, const cJSON *probe);
void ag_env_free(char **envp);
const char *ag_field_value(const ag_pod_t *p, const char *field, char *buf, size_t len);

/* agent_pod.c */
ag_pod_t *ag_pod_new(ag_t *a, const cJSON *obj);
void ag_pod_update(ag_t *a, ag_pod_t *p, const cJSON *obj);
void ag_pod_step(ag_t *a, ag_pod_t *p, int64_t now);
int ag_pod_on_exit(ag_t *a, pid_t pid, int status);
void ag_pod_kill_all(ag_t *a, ag_pod_t *p, int sig);
void ag_pod_free(ag_t *a, ag_pod_t *p);
int ag_pod_finished(const ag_pod_t *p); /* deleted and cleaned up: may be freed */

/* agent_status.c */
void ag_status_report(ag_t *a, ag_pod_t *p, int64_t now, int force);
const char *ag_json_str(const cJSON *o, const char *key);
/* A decimal integer at the start of s (strtol), or dflt when there is none. */
int ag_atoi(const char *s, int dflt);
int ag_json_int(const cJSON *o, const char *key, int dflt);

#endif

/*
 * sc.h - kccl-sidecar's internal interfaces. The sidecar is one process, one
 * thread: it learns who its pod is (downward API), reads the group from the
 * pod's annotations, publishes its endpoint (rank 0 also the unique id) on its
 * own pod, watches ONE object for the rest, and writes the handoff file that
 * kccl_comm_init_from_env() reads. See README.md for the whole story.
 *
 * Modules (one prefix each):
 *   sc_config.c   the sidecar's settings table (environment, defaults, help)
 *   sc_podinfo.c  identity from env or a downward-API volume; the annotations
 *                 file parser (`key="value"` lines, Go-quoted values)
 *   sc_group.c    group, rank, world size, epoch from annotations/labels, with
 *                 a Kubernetes-style reason and a remedy for every error;
 *                 what a root object (rank 0's pod) says
 *   sc_handoff.c  render, atomic write, removal, and the probe
 *   sc_kube.c     the few API calls: get self, patch self, post an Event
 *   sc_run.c      the state machine around one watch
 *   main.c        command line, signals
 */
#ifndef KCCL_SIDECAR_SC_H
#define KCCL_SIDECAR_SC_H

#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "kccl/kccl_bootstrap.h"
#include "kccl/kccl_status.h"
#include "kccl/kube.h"

#define SC_NAME "kccl-sidecar"

/* ------------------------------------------------------------------ annotations and labels */

#define SC_ANN_GROUP         "kccl.io/group"
#define SC_ANN_RANK          "kccl.io/rank"
#define SC_ANN_WORLD         "kccl.io/world-size"
#define SC_ANN_RANKS_PER_POD "kccl.io/ranks-per-pod"
#define SC_ANN_PORT          "kccl.io/port"
#define SC_ANN_EPOCH         "kccl.io/epoch"
#define SC_ANN_ROOT_POD      "kccl.io/root-pod"
/* written by the sidecar */
#define SC_ANN_ENDPOINT  "kccl.io/endpoint"
#define SC_ANN_UNIQUE_ID "kccl.io/unique-id"
#define SC_ANN_ID_EPOCH  "kccl.io/unique-id-epoch"
#define SC_LABEL_GROUP   "kccl.io/group"
#define SC_LABEL_RANK    "kccl.io/rank"
/* rank sources other than kccl.io/rank (annotation or label) */
#define SC_JOB_INDEX "batch.kubernetes.io/job-completion-index"
#define SC_POD_INDEX "apps.kubernetes.io/pod-index"

#define SC_PORT_DEFAULT 29500
#define SC_WORLD_MAX    (1L << 24)
#define SC_EPOCH_MAX    (1L << 40)

/* ------------------------------------------------------------------ settings (sc_config.c) */

/* X(id, environment variable, default, help) */
#define SC_CONFIG_MAP(X)                                                                           \
    X(HANDOFF, "KCCL_BOOTSTRAP_FILE", "/var/run/kccl/bootstrap",                                   \
      "the handoff file to write (the application reads the same variable)")                       \
    X(SECRET_FILE, "KCCL_GROUP_SECRET_FILE", "",                                                   \
      "path of the group secret as mounted in the application container; named in the handoff, "   \
      "never read by the sidecar")                                                                 \
    X(PODINFO_DIR, "KCCL_PODINFO_DIR", "",                                                         \
      "downward-API volume: files name, namespace, uid, annotations, labels")                      \
    X(POD_NAME, "POD_NAME", "", "downward API metadata.name")                                      \
    X(POD_NAMESPACE, "POD_NAMESPACE", "", "downward API metadata.namespace")                       \
    X(POD_UID, "POD_UID", "", "downward API metadata.uid (optional; Events name it)")              \
    X(POD_IP, "POD_IP", "", "downward API status.podIP (else read from the pod)")                  \
    X(NODE_NAME, "NODE_NAME", "", "downward API spec.nodeName: the handoff's KCCL_HOST_ID")        \
    X(API_TIMEOUT, "KCCL_SIDECAR_API_TIMEOUT", "30", "deadline of each API call, seconds")         \
    X(RENDEZVOUS_TIMEOUT, "KCCL_SIDECAR_RENDEZVOUS_TIMEOUT", "300",                                \
      "seconds without a handoff before a RendezvousTimeout Event (waiting goes on)")

typedef enum {
#define SC_CFG_ENUM_(id, env, def, help) SC_CFG_##id,
    SC_CONFIG_MAP(SC_CFG_ENUM_)
#undef SC_CFG_ENUM_
        SC_CFG_COUNT
} sc_cfg_id_t;

/* The value: the environment's if set and non-empty, else the default. */
const char *sc_config_str(sc_cfg_id_t id);
int sc_config_is_set(sc_cfg_id_t id);
/* Decimal seconds (e.g. 30 or 0.5) in milliseconds; KCCL_ERR_CONFIG names the variable. */
kccl_status_t sc_config_millis(sc_cfg_id_t id, int64_t *out);
/* Prints every setting with its default and help (for --help). */
void sc_config_print(void *file);

/* Monotonic milliseconds. */
int64_t sc_now_ms(void);
/* Sleeps ms in slices of at most 50 ms; returns 1 early when *stop is set. */
int sc_sleep_ms(int64_t ms, const atomic_int *stop);

/* ------------------------------------------------------------------ identity (sc_podinfo.c) */

#define SC_NAME_MAX 254 /* DNS subdomain (253) + NUL */
#define SC_IP_MAX   64

typedef struct {
    char name[SC_NAME_MAX];
    char ns[64];
    char uid[64];
    char ip[SC_IP_MAX];
    char node[SC_NAME_MAX];
    cJSON *annotations; /* object of strings, or NULL: not known yet (GET the pod) */
    cJSON *labels;      /* likewise */
} sc_identity_t;

/*
 * Fills id from the environment and, when KCCL_PODINFO_DIR is set, from the
 * files there (name, namespace, uid, annotations, labels; a value given in
 * both places must agree). Fails with KCCL_ERR_CONFIG and a message naming
 * what is missing or malformed.
 */
kccl_status_t sc_identity_load(sc_identity_t *id);
void sc_identity_free(sc_identity_t *id);

/*
 * Parses a downward-API annotations/labels file: one `key="value"` per line,
 * the value quoted as Go's %q does (\a \b \f \n \r \t \v \\ \" \xHH \NNN
 * \uHHHH \UHHHHHHHH; raw UTF-8 otherwise). Keys unique. Returns a cJSON object
 * of strings in *out, or KCCL_ERR_PROTOCOL with the line in why.
 */
kccl_status_t sc_podinfo_parse(const char *text, size_t len, cJSON **out, char *why, size_t whylen);

/* Checks: DNS-1123 subdomain (pod and node names), label (namespaces), IP literal. */
int sc_valid_subdomain(const char *s);
int sc_valid_dns_label(const char *s);
int sc_valid_ip(const char *s);
/* A label value (<= 63, alphanumerics at the ends, -_. inside); not empty. */
int sc_valid_label_value(const char *s);

/* ------------------------------------------------------------------ group (sc_group.c) */

/* Why the sidecar will not write a handoff: an Event reason and a message with the remedy. */
typedef struct {
    char reason[48];
    char message[640];
} sc_problem_t;

/* This pod's place in its group, from its own annotations and labels. */
typedef struct {
    char group[64];
    long rank;
    long world;
    int port;
    long epoch;
    char root_pod[SC_NAME_MAX]; /* kccl.io/root-pod, or "" */
    char rank_source[64];       /* the annotation or label the rank came from */
} sc_spec_t;

/* KCCL_OK, or KCCL_ERR_CONFIG with pb set (the first problem found). */
kccl_status_t sc_spec_from_meta(const cJSON *annotations, const cJSON *labels, sc_spec_t *spec,
                                sc_problem_t *pb);

/* Strict decimal: digits only, no sign or space, lo..hi. 0 or -1. */
int sc_parse_long(const char *text, long lo, long hi, long *out);

/* "IP:port" or "[IPv6]:port". */
int sc_endpoint_format(const char *ip, int port, char *buf, size_t len);

/* What one rank-0 candidate (a pod of the group with rank 0) says. */
typedef struct {
    char name[SC_NAME_MAX];
    int deleting; /* metadata.deletionTimestamp set: not a root any more */
    int world_ok;
    long world;
    int epoch_ok; /* kccl.io/epoch absent (0) or valid */
    long epoch;
    int has_id; /* kccl.io/unique-id and kccl.io/unique-id-epoch, both present */
    char id[KCCL_UNIQUE_ID_STRLEN + 1];
    int id_text_ok; /* unique-id has the id's length (full check: kccl_unique_id_from_string) */
    long id_epoch;
    unsigned gen; /* the sidecar's list generation that last delivered it */
} sc_root_t;

/* Reads a pod object (from a GET or a watch event). */
void sc_root_from_pod(const cJSON *pod, sc_root_t *out);

/* ------------------------------------------------------------------ handoff (sc_handoff.c) */

#define SC_HANDOFF_MAX 4096

typedef struct {
    const char *unique_id;
    long rank, world, epoch;
    const char *host_id;     /* "" or NULL: omitted */
    const char *secret_file; /* "" or NULL: omitted */
    const char *pod;         /* ns/name, for the comment line */
} sc_handoff_t;

/* Renders the KEY=value text; KCCL_ERR_INVALID_ARG if a value would break a line. */
kccl_status_t sc_handoff_render(const sc_handoff_t *h, char *buf, size_t len);

/*
 * Writes text to path atomically: a temporary file in the same directory,
 * fsync, rename, fsync of the directory; mode 0644. Unchanged content is not
 * rewritten (returns KCCL_OK, *written = 0).
 */
kccl_status_t sc_handoff_write(const char *path, const char *text, int *written);
/* Removes the handoff (readiness false); absent is fine. */
kccl_status_t sc_handoff_remove(const char *path);
/* `kccl-sidecar probe`: 0 when path exists and parses as the runtime parses it. */
int sc_handoff_probe(const char *path, char *why, size_t whylen);

/* ------------------------------------------------------------------ API calls (sc_kube.c) */

typedef struct {
    kccl_kube_client_t kc;
    const atomic_int *stop;
    int64_t timeout_ms;
    const sc_identity_t *self;
    char pods_path[320]; /* /api/v1/namespaces/NS/pods */
    uint64_t requests;   /* API requests made (watches counted apart) */
    uint64_t watches;
    unsigned events_posted;
} sc_api_t;

kccl_status_t sc_api_init(sc_api_t *api, kccl_kube_client_t kc, const sc_identity_t *self,
                          const atomic_int *stop, int64_t timeout_ms);
/* GET the own pod. */
kccl_status_t sc_api_get_self(sc_api_t *api, cJSON **pod, kccl_kube_result_t *res);
/* Merge-patches the own pod's metadata (labels and annotations objects, either may be NULL). */
kccl_status_t sc_api_patch_self(sc_api_t *api, const cJSON *labels, const cJSON *annotations,
                                kccl_kube_result_t *res);
/* POSTs a core/v1 Event on the own pod: type "Warning" or "Normal". */
kccl_status_t sc_api_event(sc_api_t *api, const char *type, const char *reason,
                           const char *message);

/* ------------------------------------------------------------------ the sidecar (sc_run.c) */

typedef struct {
    const char *handoff_path;
    const char *secret_file;
    int64_t api_timeout_ms;
    int64_t rendezvous_timeout_ms;
    const atomic_int *stop;
} sc_options_t;

/* Runs until *stop: 0 after a clean stop, nonzero (exit status) on a fatal error. */
int sc_run(const sc_options_t *opts);

#endif

/*
 * config.h - every KCCL_* environment variable, declared once.
 *
 * KCCL_CONFIG_MAP is the single table: name, type, default, help. Code reads
 * values through kccl_config_*(KCCL_CFG_<NAME>); kccl-info prints the table.
 * Values are read from the environment on each call (cheap: getenv), so tests
 * and launchers can change them; parse errors name the variable and the
 * accepted form. Secret-bearing variables are flagged and never printed.
 */
#ifndef KCCL_CORE_CONFIG_H
#define KCCL_CORE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "kccl/kccl_status.h"

typedef enum {
    KCCL_CFG_TYPE_STR,
    KCCL_CFG_TYPE_INT,
    KCCL_CFG_TYPE_BOOL,
    KCCL_CFG_TYPE_SECONDS, /* decimal seconds, e.g. 30 or 0.25 */
} kccl_cfg_type_t;

#define KCCL_CFG_SECRET 1

/* X(NAME, type, default, flags, help) -> environment variable KCCL_<NAME> */
#define KCCL_CONFIG_MAP(X)                                                                         \
    X(LOG_LEVEL, STR, "warn", 0, "log level: none, error, warn, info, debug, trace")               \
    X(LOG_SUBSYS, STR, "ALL", 0,                                                                   \
      "subsystems to log: comma list of INIT,BOOT,NET,IPC,IB,PROXY,COLL,KUBE,TOOL; ^ negates")     \
    X(LOG_FILE, STR, "", 0, "log file instead of stderr; %h host, %p pid, %r rank")                \
    X(RANK, INT, "-1", 0, "this process's rank (set by kccl-run or the sidecar handoff)")          \
    X(WORLD_SIZE, INT, "0", 0, "number of ranks in the group")                                     \
    X(UNIQUE_ID, STR, "", 0, "the group's unique id, base64url text form")                         \
    X(EPOCH, INT, "0", 0, "the group's epoch (bumped by the operator when the group re-forms)")    \
    X(GROUP_SECRET_FILE, STR, "", 0,                                                               \
      "file holding the 32-byte group secret (raw bytes or 64 hex digits)")                        \
    X(GROUP_SECRET, STR, "", KCCL_CFG_SECRET,                                                      \
      "the group secret as 64 hex digits (prefer KCCL_GROUP_SECRET_FILE)")                         \
    X(BOOTSTRAP_INSECURE, BOOL, "0", 0,                                                            \
      "run the bootstrap with no group secret (anyone who reaches the port may join)")             \
    X(BOOTSTRAP_TIMEOUT, SECONDS, "30", 0, "deadline of every blocking bootstrap step, seconds")   \
    X(BOOTSTRAP_ALGO, STR, "auto", 0, "bootstrap all-gather: auto, ring or bruck")                 \
    X(BOOTSTRAP_RING_MAX, INT, "4", 0, "auto picks the ring up to this many ranks, Bruck above")   \
    X(BOOTSTRAP_ROOT_FD, INT, "-1", 0,                                                             \
      "inherited listening socket for the root (set by kccl-run for rank 0)")                      \
    X(BOOTSTRAP_FILE, STR, "", 0,                                                                  \
      "handoff file written by kccl-sidecar (KEY=value lines); read before the environment")       \
    X(SOCKET_IFNAME, STR, "", 0,                                                                   \
      "interfaces for bootstrap sockets: prefix list, ^ excludes, = exact (e.g. eth0, "            \
      "^docker,lo)")                                                                               \
    X(SOCKET_FAMILY, STR, "", 0, "address family for bootstrap sockets: AF_INET or AF_INET6")      \
    X(HOST_ID, STR, "", 0, "node identity for co-location (overrides KCCL_NODE_NAME)")             \
    X(NODE_NAME, STR, "", 0, "Kubernetes node name (downward API spec.nodeName)")                  \
    X(KUBE_SA_DIR, STR, "/var/run/secrets/kubernetes.io/serviceaccount", 0,                        \
      "service-account directory for in-cluster API access (token, ca.crt, namespace)")            \
    X(KUBE_CONTEXT, STR, "", 0, "kubeconfig context to use instead of current-context")            \
    /* transports, registered memory, the proxy */                                                 \
                                                                                                   \
    X(TRANSPORT, STR, "auto", 0,                                                                   \
      "links between ranks: auto (cuda_ipc on one node, ib across nodes, else tcp), tcp, "         \
      "cuda_ipc or ib (forced: fails where it cannot work)")                                       \
    X(LINKS, STR, "auto", 0,                                                                       \
      "when links connect: auto (same-node peers at init if the node has at most "                 \
      "KCCL_LINKS_EAGER_MAX ranks, every other link on first use), eager (every pair at init), "   \
      "lazy (every link on first use)")                                                            \
    X(LINKS_EAGER_MAX, INT, "16", 0, "auto: most ranks on a node whose links connect at init")     \
    X(IPC_SOCKET_DIR, STR, "", 0,                                                                  \
      "directory shared by the pods of a node for the CUDA IPC fd-passing socket; empty = "        \
      "abstract Unix socket (pods must share the network namespace)")                              \
    X(IB_HCA, STR, "", 0, "InfiniBand device to use, e.g. mlx5_0 (empty = the first active one)")  \
    X(IB_PORT, INT, "0", 0, "InfiniBand port (0 = the first active port)")                         \
    X(IB_GID_INDEX, INT, "-1", 0, "GID index (-1 = pick: RoCE v2 IPv4-mapped first)")              \
    X(IB_SIGNAL, STR, "atomic", 0,                                                                 \
      "how IB signals land: atomic (fetch-add) or imm (write with immediate)")                     \
    X(IB_GDR, STR, "auto", 0,                                                                      \
      "GPUDirect RDMA registration: auto (dma-buf, then peermem), dmabuf, peermem, off")           \
    X(TCP_CHUNK, INT, "1048576", 0, "TCP staging chunk for device memory, bytes")                  \
    X(PROXY_FIFO_SLOTS, INT, "512", 0, "proxy FIFO size in triggers (power of two)")               \
    X(PROXY_CPU, STR, "auto", 0,                                                                   \
      "proxy thread placement: auto (the GPU's NUMA node), none, or a CPU list")                   \
    X(COLL_ALGO, STR, "auto", 0,                                                                   \
      "device-buffer collectives: auto (size table), ll, ll2 (all-reduce), zc or ce (copy "        \
      "engine)")                                                                                   \
    X(COLL_LL_MAX, INT, "-1", 0, "auto: largest size (bytes) for LL; -1 = built-in table")         \
    X(COLL_LL2_MAX, INT, "-1", 0, "auto: largest all-reduce size for LL2; -1 = built-in table")    \
    X(COLL_CE_MIN, INT, "-1", 0,                                                                   \
      "auto: smallest all-reduce/all-gather size for the copy engine; -1 = built-in table")        \
    X(COLL_CEP_MIN, INT, "-1", 0,                                                                  \
      "auto: smallest all-reduce size for copy-engine pulls (cep); -1 = built-in table")           \
    X(COLL_ZC_BLOCKS, INT, "-1", 0,                                                                \
      "zero-copy kernels: most blocks per launch; -1 = one per SM with 2 ranks, half the SMs "     \
      "with more")

typedef enum {
#define KCCL_CFG_ENUM_(name, type, def, flags, help) KCCL_CFG_##name,
    KCCL_CONFIG_MAP(KCCL_CFG_ENUM_)
#undef KCCL_CFG_ENUM_
        KCCL_CFG_COUNT
} kccl_cfg_id_t;

typedef struct {
    const char *env; /* "KCCL_LOG_LEVEL" */
    kccl_cfg_type_t type;
    const char *def;
    int flags;
    const char *help;
} kccl_cfg_entry_t;

const kccl_cfg_entry_t *kccl_config_entry(kccl_cfg_id_t id);

/* The raw text: the environment's value if set and non-empty, else the default. */
const char *kccl_config_str(kccl_cfg_id_t id);
/* 1 when the variable is set (non-empty) in the environment. */
int kccl_config_is_set(kccl_cfg_id_t id);

kccl_status_t kccl_config_int(kccl_cfg_id_t id, long *out);
kccl_status_t kccl_config_bool(kccl_cfg_id_t id, int *out);
kccl_status_t kccl_config_millis(kccl_cfg_id_t id, int64_t *out);
/* Integer value; the default when malformed (and a warning naming the variable). */
long kccl_config_int_or_default(kccl_cfg_id_t id);

/* Pure parsers (exposed for tests and fuzzing). Return 0 or -1. */
int kccl_parse_int(const char *text, long *out);
int kccl_parse_bool(const char *text, int *out);
int kccl_parse_seconds_ms(const char *text, int64_t *out);

#endif

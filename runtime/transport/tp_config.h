/*
 * tp_config.h - the KCCL_* variables of transports, memory and the proxy.
 *
 * Same X-macro shape as KCCL_CONFIG_MAP (core/config.h): X(NAME, type,
 * default, flags, help). It is kept here until core/config.h folds it in
 * (one line there: KCCL_TP_CONFIG_MAP(X) at the end of KCCL_CONFIG_MAP);
 * until then kccl_tp_config_str() reads it and kccl-info does not list it.
 */
#ifndef KCCL_TRANSPORT_TP_CONFIG_H
#define KCCL_TRANSPORT_TP_CONFIG_H

#include <stdint.h>

#define KCCL_TP_CONFIG_MAP(X)                                                                      \
    X(TRANSPORT, STR, "auto", 0,                                                                   \
      "links between ranks: auto (cuda_ipc on one node, ib across nodes, else tcp), tcp, "         \
      "cuda_ipc or ib (forced: fails where it cannot work)")                                       \
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
      "proxy thread placement: auto (the GPU's NUMA node), none, or a CPU list")

typedef enum {
#define KCCL_TPCFG_ENUM_(name, type, def, flags, help) KCCL_TPCFG_##name,
    KCCL_TP_CONFIG_MAP(KCCL_TPCFG_ENUM_)
#undef KCCL_TPCFG_ENUM_
        KCCL_TPCFG_COUNT
} kccl_tpcfg_id_t;

/* The environment's value if set and non-empty, else the default. */
const char *kccl_tp_config_str(kccl_tpcfg_id_t id);
/* Integer value; the default when unset or malformed (malformed values log a warning). */
long kccl_tp_config_int(kccl_tpcfg_id_t id);

#endif

/*
 * hostid.h - which node a rank runs on. Pods on one node have different
 * hostnames, so the identity is, in order: KCCL_HOST_ID, the Kubernetes node
 * name (KCCL_NODE_NAME, from the downward API), else hostname + boot id.
 */
#ifndef KCCL_BOOTSTRAP_HOSTID_H
#define KCCL_BOOTSTRAP_HOSTID_H

#include <stddef.h>
#include <stdint.h>

#include "kccl/kccl_status.h"

/* Resolves this process's host id into buf (NUL-terminated). */
kccl_status_t kccl_host_id_resolve(char *buf, size_t len);

/* First 8 bytes of SHA-256(host_id): the hash ranks compare for co-location. */
uint64_t kccl_host_hash(const char *host_id);

#endif

/*
 * coll_cpu.h - internal knobs of the CPU collectives (coll_cpu.c), for tests
 * and tools in this repository.
 *
 * The CPU path moves data in chunks of at most kccl_coll_cpu_chunk_bytes()
 * (default KCCL_COLL_CPU_CHUNK_DEFAULT), so a collective of any size needs
 * O(chunk x ranks) bytes of staging per rank, whatever its count.
 */
#ifndef KCCL_COLL_CPU_H
#define KCCL_COLL_CPU_H

#include <stddef.h>
#include <stdint.h>

#define KCCL_COLL_CPU_CHUNK_DEFAULT ((size_t)1 << 20)
/* The CPU collectives' data travels on kccl's reserved bootstrap tags
 * (KCCL_TAG_OP_COLL, bootstrap_int.h): applications keep every tag below 2^31. */
/* Broadcast: chunks a parent may send ahead of a child's acknowledgement. */
#define KCCL_COLL_CPU_BCAST_WINDOW 4

/* Process-wide chunk size in bytes (0 restores the default; values are
 * clamped to [64, 256 MiB]). Every rank must use the same value. */
void kccl_coll_cpu_set_chunk_bytes(size_t bytes);
size_t kccl_coll_cpu_chunk_bytes(void);

#endif

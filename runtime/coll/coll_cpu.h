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
/* Bootstrap tags 0x7F000000..0x7FFFFFFF carry the CPU collectives' data:
 * programs that use kccl_bootstrap_send/recv on a communicator's bootstrap
 * must stay below KCCL_COLL_CPU_TAG_BASE. */
#define KCCL_COLL_CPU_TAG_BASE 0x7F000000u
/* Broadcast: chunks a parent may send ahead of a child's acknowledgement. */
#define KCCL_COLL_CPU_BCAST_WINDOW 4

/* Process-wide chunk size in bytes (0 restores the default; values are
 * clamped to [64, 256 MiB]). Every rank must use the same value. */
void kccl_coll_cpu_set_chunk_bytes(size_t bytes);
size_t kccl_coll_cpu_chunk_bytes(void);

#endif

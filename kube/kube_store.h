/*
 * kube_store.h - the watch's memory of the objects it has delivered, keyed by
 * namespace/name, so that a relist after 410 Gone can tell the caller what
 * changed while it was not watching: ADDED for new objects, MODIFIED where the
 * resourceVersion moved, DELETED (with the last object seen) for the ones gone.
 * Objects whose resourceVersion did not change produce no event.
 * Not thread-safe: owned by one watch.
 */
#ifndef KCCL_KUBE_STORE_H
#define KCCL_KUBE_STORE_H

#include <stddef.h>

#include "kccl/kube.h"

typedef struct kccl_kube_store_entry kccl_kube_store_entry_t;

typedef struct {
    kccl_kube_store_entry_t **buckets;
    size_t nbuckets;
    size_t count;
    unsigned long gen; /* replace() generation, marks the entries a relist saw */
} kccl_kube_store_t;

/* Receives one synthetic event; nonzero stops the replace and is returned. */
typedef int (*kccl_kube_store_emit_fn)(void *arg, kccl_kube_event_type_t type, const cJSON *obj);

int kccl_kube_store_init(kccl_kube_store_t *s); /* 0 or -1 */
void kccl_kube_store_fini(kccl_kube_store_t *s);

/* "namespace/name" (or "name" when cluster-scoped); -1 if the object has no name or it
 * does not fit. */
int kccl_kube_object_key(const cJSON *obj, char *buf, size_t len);

/* Applies a watch event: ADDED/MODIFIED keep a copy of obj, DELETED drops it. 0 or -1. */
int kccl_kube_store_apply(kccl_kube_store_t *s, kccl_kube_event_type_t type, const cJSON *obj);

/* The stored object for key, or NULL. */
const cJSON *kccl_kube_store_get(const kccl_kube_store_t *s, const char *key);

/*
 * Makes the store equal to items (a cJSON array, consumed), calling emit for
 * each difference: ADDED/MODIFIED in list order, then DELETED. Returns 0,
 * emit's nonzero value, or KCCL_ERR_NO_MEMORY.
 */
int kccl_kube_store_replace(kccl_kube_store_t *s, cJSON *items, kccl_kube_store_emit_fn emit,
                            void *arg);

#endif

/*
 * kube_store.c - the watch's object memory (see kube_store.h): a chained hash
 * table of namespace/name -> last object seen, which doubles its buckets when
 * it gets dense.
 */
#include "kube_store.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct kccl_kube_store_entry {
    char *key;
    cJSON *obj;
    unsigned long gen;
    struct kccl_kube_store_entry *next;
};

int kccl_kube_store_init(kccl_kube_store_t *s)
{
    memset(s, 0, sizeof(*s));
    s->nbuckets = 64;
    s->buckets = calloc(s->nbuckets, sizeof(*s->buckets));
    return s->buckets ? 0 : -1;
}

void kccl_kube_store_fini(kccl_kube_store_t *s)
{
    for (size_t i = 0; i < s->nbuckets; i++) {
        kccl_kube_store_entry_t *e = s->buckets[i];
        while (e) {
            kccl_kube_store_entry_t *next = e->next;
            free(e->key);
            cJSON_Delete(e->obj);
            free(e);
            e = next;
        }
    }
    free(s->buckets);
    memset(s, 0, sizeof(*s));
}

static const char *meta_str(const cJSON *obj, const char *key)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

int kccl_kube_object_key(const cJSON *obj, char *buf, size_t len)
{
    const char *name = meta_str(obj, "name");
    const char *ns = meta_str(obj, "namespace");
    if (name == NULL || name[0] == '\0')
        return -1;
    int n = (ns && ns[0]) ? snprintf(buf, len, "%s/%s", ns, name) : snprintf(buf, len, "%s", name);
    return (n < 0 || (size_t)n >= len) ? -1 : 0;
}

static size_t hash(const char *key)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return (size_t)h;
}

static kccl_kube_store_entry_t **find(const kccl_kube_store_t *s, const char *key)
{
    kccl_kube_store_entry_t **pp = &s->buckets[hash(key) & (s->nbuckets - 1)];
    while (*pp && strcmp((*pp)->key, key) != 0)
        pp = &(*pp)->next;
    return pp;
}

static void grow(kccl_kube_store_t *s)
{
    size_t n = s->nbuckets * 2;
    kccl_kube_store_entry_t **b = calloc(n, sizeof(*b));
    if (b == NULL)
        return; /* stay dense; still correct */
    for (size_t i = 0; i < s->nbuckets; i++) {
        kccl_kube_store_entry_t *e = s->buckets[i];
        while (e) {
            kccl_kube_store_entry_t *next = e->next;
            size_t h = hash(e->key) & (n - 1);
            e->next = b[h];
            b[h] = e;
            e = next;
        }
    }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = n;
}

/* Stores obj (taking ownership) under key. 0 or -1; obj is freed on failure. */
static int put(kccl_kube_store_t *s, const char *key, cJSON *obj)
{
    kccl_kube_store_entry_t **pp = find(s, key);
    if (*pp) {
        cJSON_Delete((*pp)->obj);
        (*pp)->obj = obj;
        (*pp)->gen = s->gen;
        return 0;
    }
    kccl_kube_store_entry_t *e = calloc(1, sizeof(*e));
    if (e == NULL || (e->key = strdup(key)) == NULL) {
        free(e);
        cJSON_Delete(obj);
        return -1;
    }
    e->obj = obj;
    e->gen = s->gen;
    *pp = e;
    if (++s->count > s->nbuckets * 2)
        grow(s);
    return 0;
}

static void drop(kccl_kube_store_t *s, kccl_kube_store_entry_t **pp)
{
    kccl_kube_store_entry_t *e = *pp;
    *pp = e->next;
    free(e->key);
    cJSON_Delete(e->obj);
    free(e);
    s->count--;
}

int kccl_kube_store_apply(kccl_kube_store_t *s, kccl_kube_event_type_t type, const cJSON *obj)
{
    char key[512];
    if (kccl_kube_object_key(obj, key, sizeof(key)) != 0)
        return 0; /* nothing to remember it by */
    if (type == KCCL_KUBE_EVENT_DELETED) {
        kccl_kube_store_entry_t **pp = find(s, key);
        if (*pp)
            drop(s, pp);
        return 0;
    }
    if (type != KCCL_KUBE_EVENT_ADDED && type != KCCL_KUBE_EVENT_MODIFIED)
        return 0;
    cJSON *copy = cJSON_Duplicate(obj, 1);
    return copy ? put(s, key, copy) : -1;
}

const cJSON *kccl_kube_store_get(const kccl_kube_store_t *s, const char *key)
{
    kccl_kube_store_entry_t **pp = find(s, key);
    return *pp ? (*pp)->obj : NULL;
}

static int same_rv(const cJSON *a, const cJSON *b)
{
    const char *ra = meta_str(a, "resourceVersion"), *rb = meta_str(b, "resourceVersion");
    return ra && rb && strcmp(ra, rb) == 0;
}

int kccl_kube_store_replace(kccl_kube_store_t *s, cJSON *items, kccl_kube_store_emit_fn emit,
                            void *arg)
{
    char key[512];
    int rc = 0;
    s->gen++;
    while (cJSON_IsArray(items) && items->child != NULL) {
        cJSON *obj = cJSON_DetachItemViaPointer(items, items->child);
        if (kccl_kube_object_key(obj, key, sizeof(key)) != 0) {
            cJSON_Delete(obj);
            continue;
        }
        kccl_kube_store_entry_t **pp = find(s, key);
        kccl_kube_event_type_t type = KCCL_KUBE_EVENT_ADDED;
        if (*pp) {
            (*pp)->gen = s->gen;
            if (same_rv((*pp)->obj, obj)) {
                cJSON_Delete(obj);
                continue;
            }
            type = KCCL_KUBE_EVENT_MODIFIED;
        }
        if (put(s, key, obj) != 0) {
            rc = KCCL_ERR_NO_MEMORY;
            goto out;
        }
        if ((rc = emit(arg, type, obj)) != 0)
            goto out;
    }
    for (size_t i = 0; i < s->nbuckets; i++) {
        kccl_kube_store_entry_t **pp = &s->buckets[i];
        while (*pp) {
            if ((*pp)->gen == s->gen) {
                pp = &(*pp)->next;
                continue;
            }
            rc = emit(arg, KCCL_KUBE_EVENT_DELETED, (*pp)->obj);
            drop(s, pp);
            if (rc != 0)
                goto out;
        }
    }
out:
    cJSON_Delete(items);
    return rc;
}

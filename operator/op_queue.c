/*
 * op_queue.c - the work queue (see op_queue.h). Entries live in a small
 * chained hash table keyed by the group key; an entry is "queued" (has a due
 * time), "in progress", or both (dirty: added again while in progress).
 * Taking the earliest due entry is a scan of the queued entries: the queue
 * holds groups, not pods, so it stays short (tens to hundreds of keys) and a
 * heap would buy nothing measurable.
 */
#include "op_queue.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NBUCKETS 256

typedef struct entry {
    struct entry *next;
    char key[OP_QUEUE_KEY_MAX];
    int queued;
    int in_progress;
    int dirty;
    int failures;
    int64_t due;
} entry_t;

struct op_queue {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    entry_t *buckets[NBUCKETS];
    size_t queued;
    int64_t base_ms, max_ms;
};

int64_t op_queue_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static unsigned hash(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % NBUCKETS;
}

static entry_t *find(op_queue_t q, const char *key, int create)
{
    unsigned b = hash(key);
    for (entry_t *e = q->buckets[b]; e; e = e->next)
        if (!strcmp(e->key, key))
            return e;
    if (!create)
        return NULL;
    entry_t *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    memcpy(e->key, key, strlen(key) + 1);
    e->next = q->buckets[b];
    q->buckets[b] = e;
    return e;
}

/* Frees an entry that is neither queued, in progress nor remembering failures. */
static void maybe_drop(op_queue_t q, entry_t *e)
{
    if (e->queued || e->in_progress || e->failures)
        return;
    entry_t **pp = &q->buckets[hash(e->key)];
    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    free(e);
}

kccl_status_t op_queue_create(const op_queue_opts_t *opts, op_queue_t *out)
{
    op_queue_t q = calloc(1, sizeof(*q));
    if (q == NULL)
        return KCCL_ERR_NO_MEMORY;
    pthread_mutex_init(&q->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cv, &ca);
    pthread_condattr_destroy(&ca);
    q->base_ms = opts && opts->retry_base_ms > 0 ? opts->retry_base_ms : 500;
    q->max_ms = opts && opts->retry_max_ms > 0 ? opts->retry_max_ms : 60000;
    *out = q;
    return KCCL_OK;
}

void op_queue_destroy(op_queue_t q)
{
    if (q == NULL)
        return;
    for (int b = 0; b < NBUCKETS; b++)
        for (entry_t *e = q->buckets[b], *n; e; e = n) {
            n = e->next;
            free(e);
        }
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
    free(q);
}

static void enqueue(op_queue_t q, entry_t *e, int64_t due)
{
    if (!e->queued) {
        e->queued = 1;
        e->due = due;
        q->queued++;
    } else if (due < e->due) {
        e->due = due;
    }
    pthread_cond_broadcast(&q->cv);
}

kccl_status_t op_queue_add(op_queue_t q, const char *key, int64_t now, int64_t delay_ms)
{
    if (key == NULL || strlen(key) >= OP_QUEUE_KEY_MAX)
        return KCCL_ERR_INVALID_ARG;
    pthread_mutex_lock(&q->mu);
    entry_t *e = find(q, key, 1);
    if (e == NULL) {
        pthread_mutex_unlock(&q->mu);
        return KCCL_ERR_NO_MEMORY;
    }
    if (e->in_progress)
        e->dirty = 1;
    else
        enqueue(q, e, now + delay_ms);
    pthread_mutex_unlock(&q->mu);
    return KCCL_OK;
}

static int take_locked(op_queue_t q, int64_t now, char key_out[OP_QUEUE_KEY_MAX], int64_t *next_due)
{
    entry_t *best = NULL;
    for (int b = 0; b < NBUCKETS && q->queued; b++)
        for (entry_t *e = q->buckets[b]; e; e = e->next)
            if (e->queued && (best == NULL || e->due < best->due))
                best = e;
    if (best == NULL || best->due > now) {
        if (next_due)
            *next_due = best ? best->due : INT64_MAX;
        return 0;
    }
    best->queued = 0;
    best->in_progress = 1;
    q->queued--;
    memcpy(key_out, best->key, strlen(best->key) + 1);
    return 1;
}

int op_queue_take(op_queue_t q, int64_t now, char key_out[OP_QUEUE_KEY_MAX], int64_t *next_due)
{
    pthread_mutex_lock(&q->mu);
    int rc = take_locked(q, now, key_out, next_due);
    pthread_mutex_unlock(&q->mu);
    return rc;
}

int64_t op_queue_done(op_queue_t q, const char *key, int ok, int64_t now, int64_t delay_ms)
{
    int64_t delay = -1;
    pthread_mutex_lock(&q->mu);
    entry_t *e = find(q, key, 0);
    if (e != NULL) {
        e->in_progress = 0;
        if (ok) {
            e->failures = 0;
        } else {
            int shift = e->failures < 20 ? e->failures : 20;
            delay = q->base_ms << shift;
            delay = delay > q->max_ms ? q->max_ms : delay;
            e->failures++;
        }
        if (e->dirty && (delay < 0 || delay_ms < delay))
            delay = delay_ms;
        e->dirty = 0;
        if (delay >= 0)
            enqueue(q, e, now + delay);
        maybe_drop(q, e);
    }
    pthread_mutex_unlock(&q->mu);
    return delay;
}

int op_queue_failures(op_queue_t q, const char *key)
{
    pthread_mutex_lock(&q->mu);
    entry_t *e = find(q, key, 0);
    int n = e ? e->failures : 0;
    pthread_mutex_unlock(&q->mu);
    return n;
}

size_t op_queue_len(op_queue_t q)
{
    pthread_mutex_lock(&q->mu);
    size_t n = q->queued;
    pthread_mutex_unlock(&q->mu);
    return n;
}

int op_queue_wait(op_queue_t q, const atomic_int *stop, int64_t timeout_ms,
                  char key_out[OP_QUEUE_KEY_MAX])
{
    int64_t deadline = op_queue_now_ms() + timeout_ms;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        int64_t now = op_queue_now_ms(), next = INT64_MAX;
        if (stop && atomic_load(stop))
            break;
        if (take_locked(q, now, key_out, &next)) {
            pthread_mutex_unlock(&q->mu);
            return 1;
        }
        if (now >= deadline)
            break;
        /* wake at the next due time, the deadline, or within 100 ms to see the stop flag */
        int64_t until = next < deadline ? next : deadline;
        until = until - now > 100 ? now + 100 : until;
        struct timespec ts = {.tv_sec = until / 1000, .tv_nsec = (long)(until % 1000) * 1000000};
        pthread_cond_timedwait(&q->cv, &q->mu, &ts);
    }
    pthread_mutex_unlock(&q->mu);
    return 0;
}

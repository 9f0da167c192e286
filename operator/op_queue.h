/*
 * op_queue.h - the work queue of group keys ("namespace/name"). Watch
 * threads add keys; workers take them. Properties a controller needs:
 *
 *   - dedup: a key is queued at most once; adding it again only moves its due
 *     time earlier. A burst of pod events for one group is one reconcile;
 *   - coalescing: a key is due `delay_ms` after it was first added, so the
 *     events of a burst land in one pass (and one status write);
 *   - exclusivity: a key being processed is never handed to a second worker;
 *     adds meanwhile mark it dirty and it is queued again when done;
 *   - rate-limited retries: a failed pass is retried after base * 2^failures
 *     (capped), and a success forgets the failures.
 *
 * The core functions take `now` (milliseconds, any monotonic origin) so the
 * tests run on a fake clock; op_queue_wait() is the blocking form for
 * workers. Thread-safe.
 */
#ifndef KCCL_OPERATOR_OP_QUEUE_H
#define KCCL_OPERATOR_OP_QUEUE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "kccl/kccl_status.h"

#define OP_QUEUE_KEY_MAX 136 /* namespace (63) / name (253 for pods; groups are <= 63) */

typedef struct op_queue *op_queue_t;

typedef struct {
    int64_t retry_base_ms; /* first retry delay; 0: 500 */
    int64_t retry_max_ms;  /* cap; 0: 60000 */
} op_queue_opts_t;

kccl_status_t op_queue_create(const op_queue_opts_t *opts, op_queue_t *out);
void op_queue_destroy(op_queue_t q);

/* Queues key to be due at now + delay_ms (or earlier if already queued sooner). */
kccl_status_t op_queue_add(op_queue_t q, const char *key, int64_t now, int64_t delay_ms);

/* Takes the earliest due key (<= now) into key_out and marks it in progress: 1. Else 0, and
 * *next_due (may be NULL) gets the earliest due time (INT64_MAX when empty). */
int op_queue_take(op_queue_t q, int64_t now, char key_out[OP_QUEUE_KEY_MAX], int64_t *next_due);

/* Ends a pass over key. ok: forget its failures; else requeue after the backoff. A key that
 * was added while in progress is requeued (due after delay_ms) either way. Returns the delay
 * of a requeue, or -1 when the key left the queue. */
int64_t op_queue_done(op_queue_t q, const char *key, int ok, int64_t now, int64_t delay_ms);

/* Failures recorded for key (0 when none). */
int op_queue_failures(op_queue_t q, const char *key);
/* Keys queued (in progress not included). */
size_t op_queue_len(op_queue_t q);

/* Blocking take: waits until a key is due, *stop is set (returns 0) or timeout_ms passes. */
int op_queue_wait(op_queue_t q, const atomic_int *stop, int64_t timeout_ms,
                  char key_out[OP_QUEUE_KEY_MAX]);

/* Monotonic milliseconds (the clock op_queue_wait uses). */
int64_t op_queue_now_ms(void);

#endif

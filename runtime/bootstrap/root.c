/*
 * root.c - the root of the bootstrap, served inside the root rank's
 * kccl_bootstrap_create() by the same engine loop (no thread).
 *
 * It accepts one authenticated check-in per rank, validates it (rank range,
 * world size and group nonce were checked in the hello; duplicates here),
 * and once all ranks are in, sends every rank the whole address table in one
 * frame: one round trip instead of MSCCL++'s N-1 ring steps, so large groups
 * start in O(1) steps; each rank's ring neighbour is its next row. Strangers
 * and bad check-ins are refused and logged; the root keeps serving the
 * legitimate ranks. If a rank never checks in, the root gives up a little
 * before the ranks' own deadline and tells every waiting rank which ranks are
 * missing; if a checked-in rank goes away, it tells them who.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bootstrap/bootstrap_int.h"
#include "bootstrap/engine.h"
#include "core/error.h"

typedef struct kccl_root {
    int fd;
    int checked;
    int finished;
    kccl_conn_t **conn; /* [nranks]; rank 0 (the root itself) has none */
    uint8_t *have;
    uint8_t *table; /* nranks * KCCL_WIRE_PEER_BYTES */
    int queued;
    int64_t budget_ms;
} kccl_root_t;

void kccl_root_on_accept(kccl_bs_t *bs, kccl_conn_t *unused)
{
    (void)unused;
    if (bs->root)
        kccl_engine_accept_root(bs, bs->root->fd);
}

int kccl_root_on_hello(kccl_bs_t *bs, kccl_conn_t *c, const kccl_wire_hello_t *h, uint32_t *refuse,
                       uint32_t *detail)
{
    (void)c;
    (void)detail;
    if (bs->root == NULL || bs->root->finished)
        *refuse = KCCL_REFUSE_BAD_KIND;
    else if (bs->root->have[h->rank])
        *refuse = KCCL_REFUSE_DUPLICATE;
    return *refuse == 0;
}

int kccl_root_on_checkin(kccl_bs_t *bs, kccl_conn_t *c, const uint8_t *payload, uint64_t len)
{
    kccl_root_t *root = bs->root;
    kccl_wire_checkin_t ci;
    const char *why = NULL;
    if (root == NULL || root->finished) {
        kccl_engine_refuse(bs, c, KCCL_REFUSE_BAD_KIND, 0);
        return 1;
    }
    if (kccl_wire_get_checkin(payload, len, &ci, &why) != KCCL_OK) {
        kccl_log_warn(BOOT, "root: dropped check-in of rank %d from %s: %s", c->peer,
                      c->remote_text, why);
        return 0;
    }
    if (root->have[c->peer]) {
        kccl_engine_refuse(bs, c, KCCL_REFUSE_DUPLICATE, 0);
        return 1;
    }
    root->have[c->peer] = 1;
    root->conn[c->peer] = c;
    root->checked++;
    c->pinned = 1;
    c->ci = ci;
    kccl_wire_peer_t row = {.addr = ci.addr, .host_hash = ci.host_hash};
    kccl_wire_put_peer(root->table + (size_t)c->peer * KCCL_WIRE_PEER_BYTES, &row);
    kccl_log_debug(BOOT, "root: rank %d checked in from %s (pid %u), %d/%d", c->peer,
                   c->remote_text, ci.pid, root->checked, bs->nranks);
    return 1;
}

void kccl_root_on_conn_dead(kccl_bs_t *bs, kccl_conn_t *c)
{
    kccl_root_t *root = bs->root;
    if (root == NULL || root->finished || c->peer < 0 || c->peer >= bs->nranks ||
        root->conn[c->peer] != c)
        return;
    /* A rank resets its check-in connection once it has read its table;
     * that is success, not loss, once the whole table was written. */
    if (root->queued && c->done_seq == c->queued_seq)
        return;
    kccl_engine_fail(bs, KCCL_ERR_REMOTE, c->peer, KCCL_STEP_ROOT,
                     "root: lost rank %d (pid %u at %s) after it checked in: %s", c->peer,
                     c->ci.pid, c->remote_text, c->why[0] ? c->why : "connection closed");
}

static void root_list_missing(kccl_bs_t *bs, char *buf, size_t len, int *first);

static int root_done(kccl_bs_t *bs, void *arg)
{
    kccl_root_t *root = arg;
    if (root->checked < bs->nranks && bs->in_timeout) {
        char list[160];
        int first;
        root_list_missing(bs, list, sizeof(list), &first);
        return kccl_engine_fail(bs, KCCL_ERR_TIMED_OUT, first, KCCL_STEP_ROOT,
                                "root: %d of %d ranks checked in within %.1f s; missing rank(s) %s",
                                root->checked, bs->nranks, (double)root->budget_ms / 1000, list);
    }
    if (root->checked < bs->nranks)
        return 0;
    if (!root->queued) {
        root->queued = 1;
        for (int r = 1; r < bs->nranks; r++)
            kccl_engine_queue(bs, root->conn[r], KCCL_MSG_TABLE, 0, root->table,
                              (uint64_t)bs->nranks * KCCL_WIRE_PEER_BYTES, 0);
    }
    for (int r = 1; r < bs->nranks; r++) {
        kccl_conn_t *c = root->conn[r];
        if (c->state != KCCL_CONN_READY || c->out_head)
            return 0; /* a dead conn has already failed the bootstrap */
    }
    return 1;
}

static void root_list_missing(kccl_bs_t *bs, char *buf, size_t len, int *first)
{
    size_t o = 0;
    int shown = 0, missing = 0;
    *first = -1;
    buf[0] = '\0';
    for (int r = 0; r < bs->nranks; r++) {
        if (bs->root->have[r])
            continue;
        if (*first < 0)
            *first = r;
        missing++;
        if (shown < 16 && o + 16 < len) {
            o += (size_t)snprintf(buf + o, len - o, "%s%d", shown ? ", " : "", r);
            shown++;
        }
    }
    if (missing > shown && o + 24 < len)
        snprintf(buf + o, len - o, " and %d more", missing - shown);
}

static void root_free(kccl_bs_t *bs)
{
    kccl_root_t *root = bs->root;
    if (root == NULL)
        return;
    root->finished = 1;
    for (int r = 0; root->conn && r < bs->nranks; r++) {
        kccl_conn_t *c = root->conn[r];
        if (c) {
            c->pinned = 0;
            kccl_engine_close(bs, c, "check-in done");
        }
    }
    if (root->fd >= 0)
        close(root->fd);
    free(root->conn);
    free(root->have);
    free(root->table);
    free(root);
    bs->root = NULL;
}

kccl_status_t kccl_root_run(kccl_bs_t *bs, int listen_fd, const kccl_wire_peer_t *self)
{
    kccl_status_t st;
    kccl_root_t *root = calloc(1, sizeof(*root));
    if (root == NULL) {
        close(listen_fd);
        KCCL_FAIL(BOOT, KCCL_ERR_NO_MEMORY, "out of memory for the root");
    }
    root->fd = listen_fd;
    root->conn = calloc((size_t)bs->nranks, sizeof(*root->conn));
    root->have = calloc((size_t)bs->nranks, 1);
    root->table = calloc((size_t)bs->nranks, KCCL_WIRE_PEER_BYTES);
    bs->root = root;
    if (!root->conn || !root->have || !root->table) {
        root_free(bs);
        KCCL_FAIL(BOOT, KCCL_ERR_NO_MEMORY, "out of memory for a %d-rank root", bs->nranks);
    }
    root->have[0] = 1;
    root->checked = 1;
    kccl_wire_put_peer(root->table, self);
    KCCL_CHECK_GOTO(kccl_engine_add_listener(bs, listen_fd, &kccl_root_listener_tag), st, out);
    /* Give up 10% before the ranks do, so they hear who is missing. */
    root->budget_ms = bs->timeout_ms - bs->timeout_ms / 10;
    st = kccl_engine_wait(bs, kccl_now_ms() + root->budget_ms, root_done, root, KCCL_STEP_ROOT, -1);
    if (st == KCCL_OK) {
        for (int r = 0; r < bs->nranks; r++) {
            const char *why;
            kccl_wire_get_peer(root->table + (size_t)r * KCCL_WIRE_PEER_BYTES, KCCL_WIRE_PEER_BYTES,
                               &bs->peers[r], &why);
        }
        bs->have_table = 1;
    }
out:
    if (st != KCCL_OK) {
        /* Let the ABORT notices reach the ranks before the connections close. */
        kccl_engine_flush(bs, 200);
    }
    root_free(bs);
    return st;
}

/*
 * handshake.c - what each frame means, by connection state: the
 * authenticated handshake (wire.h has the transcript), refusals of
 * strangers, and frames from authenticated peers (data, table, abort, bye).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bootstrap/auth.h"
#include "bootstrap/conn.h"
#include "core/error.h"

void kccl_hs_client_start(kccl_bs_t *bs, kccl_conn_t *c)
{
    kccl_wire_hello_t h = {.version = KCCL_WIRE_VERSION,
                           .kind = c->kind,
                           .rank = (uint32_t)bs->rank,
                           .nranks = (uint32_t)bs->nranks};
    memcpy(h.group_nonce, bs->uid.nonce, KCCL_NONCE_BYTES);
    kccl_random_bytes(h.client_nonce, KCCL_NONCE_BYTES);
    kccl_wire_put_hello(c->hello, &h);
    c->state = KCCL_CONN_WAIT_CHALLENGE;
    c->hs_len = c->hs_done = 0;
    kccl_conn_hs_send(bs, c, KCCL_MSG_HELLO, c->hello, KCCL_WIRE_HELLO_BYTES);
}

static void refuse(kccl_bs_t *bs, kccl_conn_t *c, uint32_t reason, uint32_t detail,
                   int claimed_rank)
{
    uint8_t p[8];
    kccl_be32_put(p, reason);
    kccl_be32_put(p + 4, detail);
    kccl_log_warn(BOOT, "refused %s connection from %s claiming rank %d: %s",
                  c->kind == KCCL_CONN_KIND_CHECKIN ? "check-in" : "peer", c->remote_text,
                  claimed_rank, kccl_refuse_str(reason));
    kccl_conn_hs_send(bs, c, KCCL_MSG_REFUSE, p, sizeof(p));
    kccl_conn_kill(bs, c, kccl_refuse_str(reason));
}

void kccl_engine_refuse(kccl_bs_t *bs, kccl_conn_t *c, uint32_t reason, uint32_t detail)
{
    refuse(bs, c, reason, detail, c->peer);
}

static void on_hello(kccl_bs_t *bs, kccl_conn_t *c, const kccl_wire_hdr_t *hdr,
                     const uint8_t *payload)
{
    kccl_wire_hello_t h;
    const char *why = NULL;
    uint32_t reason = 0, detail = 0;
    if (hdr->type != KCCL_MSG_HELLO || kccl_wire_get_hello(payload, hdr->len, &h, &why)) {
        kccl_log_warn(BOOT, "dropped connection from %s: %s", c->remote_text,
                      why ? why : "expected a hello");
        kccl_conn_kill(bs, c, "bad hello");
        return;
    }
    if (h.version != KCCL_WIRE_VERSION)
        reason = KCCL_REFUSE_BAD_VERSION, detail = KCCL_WIRE_VERSION;
    else if (memcmp(h.group_nonce, bs->uid.nonce, KCCL_NONCE_BYTES) != 0)
        reason = KCCL_REFUSE_WRONG_GROUP;
    else if (h.nranks != (uint32_t)bs->nranks)
        reason = KCCL_REFUSE_WORLD_SIZE, detail = (uint32_t)bs->nranks;
    else if (h.rank >= h.nranks)
        reason = KCCL_REFUSE_RANK_RANGE, detail = (uint32_t)bs->nranks;
    else if (h.kind != c->kind)
        reason = KCCL_REFUSE_BAD_KIND;
    else if (c->kind == KCCL_CONN_KIND_CHECKIN)
        kccl_root_on_hello(bs, c, &h, &reason, &detail);
    else if (bs->recv_conn[h.rank] && bs->recv_conn[h.rank]->state != KCCL_CONN_DEAD)
        reason = KCCL_REFUSE_DUPLICATE;
    if (reason) {
        refuse(bs, c, reason, detail, (int)h.rank);
        return;
    }
    uint8_t ch[KCCL_WIRE_CHALLENGE_BYTES];
    memcpy(c->hello, payload, KCCL_WIRE_HELLO_BYTES);
    c->peer = (int)h.rank;
    kccl_random_bytes(c->server_nonce, KCCL_NONCE_BYTES);
    memcpy(ch, c->server_nonce, KCCL_NONCE_BYTES);
    kccl_hmac(&bs->hkey, "kccl-a", c->hello, KCCL_WIRE_HELLO_BYTES, c->server_nonce,
              KCCL_NONCE_BYTES, NULL, 0, ch + KCCL_NONCE_BYTES);
    c->state = KCCL_CONN_WAIT_PROOF;
    kccl_conn_hs_send(bs, c, KCCL_MSG_CHALLENGE, ch, sizeof(ch));
}

static void on_proof(kccl_bs_t *bs, kccl_conn_t *c, const kccl_wire_hdr_t *hdr,
                     const uint8_t *payload)
{
    uint8_t mac[KCCL_MAC_BYTES];
    if (hdr->type != KCCL_MSG_PROOF || hdr->len < KCCL_MAC_BYTES) {
        kccl_log_warn(BOOT, "dropped connection from %s: expected a proof", c->remote_text);
        kccl_conn_kill(bs, c, "bad proof");
        return;
    }
    const uint8_t *rest = payload + KCCL_MAC_BYTES;
    uint64_t restlen = hdr->len - KCCL_MAC_BYTES;
    kccl_hmac(&bs->hkey, "kccl-c", c->hello, KCCL_WIRE_HELLO_BYTES, c->server_nonce,
              KCCL_NONCE_BYTES, rest, restlen, mac);
    if (!kccl_auth_equal(mac, payload, KCCL_MAC_BYTES)) {
        refuse(bs, c, KCCL_REFUSE_AUTH, 0, c->peer);
        return;
    }
    if (c->kind == KCCL_CONN_KIND_CHECKIN) {
        c->state = KCCL_CONN_READY;
        c->hs_deadline = 0;
        if (!kccl_root_on_checkin(bs, c, rest, restlen))
            kccl_conn_kill(bs, c, "bad check-in");
        return;
    }
    if (restlen != 0 ||
        (bs->recv_conn[c->peer] && bs->recv_conn[c->peer]->state != KCCL_CONN_DEAD)) {
        refuse(bs, c, KCCL_REFUSE_DUPLICATE, 0, c->peer);
        return;
    }
    if (bs->recv_conn[c->peer])
        bs->recv_conn[c->peer]->pinned = 0; /* the dead one: reaped */
    bs->recv_conn[c->peer] = c;
    c->pinned = 1;
    c->state = KCCL_CONN_READY;
    c->hs_deadline = 0;
    kccl_conn_update_events(bs, c);
}

static void on_challenge(kccl_bs_t *bs, kccl_conn_t *c, const kccl_wire_hdr_t *hdr,
                         const uint8_t *payload)
{
    uint8_t mac[KCCL_MAC_BYTES], proof[KCCL_MAC_BYTES + KCCL_WIRE_CHECKIN_BYTES];
    size_t extra = c->kind == KCCL_CONN_KIND_CHECKIN ? KCCL_WIRE_CHECKIN_BYTES : 0;
    if (hdr->type != KCCL_MSG_CHALLENGE || hdr->len != KCCL_WIRE_CHALLENGE_BYTES) {
        c->err = KCCL_ERR_PROTOCOL;
        kccl_conn_kill(bs, c, "the peer answered the hello with something other than a challenge");
        return;
    }
    kccl_hmac(&bs->hkey, "kccl-a", c->hello, KCCL_WIRE_HELLO_BYTES, payload, KCCL_NONCE_BYTES, NULL,
              0, mac);
    if (!kccl_auth_equal(mac, payload + KCCL_NONCE_BYTES, KCCL_MAC_BYTES)) {
        c->err = KCCL_ERR_AUTH;
        kccl_conn_kill(bs, c,
                       "the peer failed authentication: it does not hold this group's secret "
                       "(check KCCL_GROUP_SECRET_FILE on both sides)");
        return;
    }
    memcpy(proof + KCCL_MAC_BYTES, c->checkin, extra);
    kccl_hmac(&bs->hkey, "kccl-c", c->hello, KCCL_WIRE_HELLO_BYTES, payload, KCCL_NONCE_BYTES,
              proof + KCCL_MAC_BYTES, extra, proof);
    c->state = KCCL_CONN_READY;
    kccl_conn_hs_send(bs, c, KCCL_MSG_PROOF, proof, KCCL_MAC_BYTES + extra);
}

static void on_refuse(kccl_bs_t *bs, kccl_conn_t *c, const kccl_wire_hdr_t *hdr,
                      const uint8_t *payload)
{
    uint32_t reason = hdr->len >= 8 ? kccl_be32_get(payload) : 0;
    uint32_t detail = hdr->len >= 8 ? kccl_be32_get(payload + 4) : 0;
    char why[160];
    if (reason == KCCL_REFUSE_WORLD_SIZE || reason == KCCL_REFUSE_RANK_RANGE)
        snprintf(why, sizeof(why), "%s refused us: %s (it has world size %u)", c->remote_text,
                 kccl_refuse_str(reason), detail);
    else
        snprintf(why, sizeof(why), "%s refused us: %s", c->remote_text, kccl_refuse_str(reason));
    c->err = reason == KCCL_REFUSE_AUTH ? KCCL_ERR_AUTH : KCCL_ERR_PROTOCOL;
    kccl_conn_kill(bs, c, why);
}

static void queue_frame(kccl_bs_t *bs, int peer, const kccl_wire_hdr_t *hdr, uint8_t *data)
{
    kccl_frame_t *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        free(data);
        kccl_engine_fail(bs, KCCL_ERR_NO_MEMORY, -1, KCCL_STEP_RECV,
                         "out of memory queueing a frame from rank %d", peer);
        return;
    }
    f->hdr = *hdr;
    bs->data_rcvd[peer]++;
    f->data = data;
    if (bs->q_tail[peer])
        bs->q_tail[peer]->next = f;
    else
        bs->q_head[peer] = f;
    bs->q_tail[peer] = f;
}

static void on_abort_notice(kccl_bs_t *bs, kccl_conn_t *c, const kccl_wire_hdr_t *hdr,
                            const uint8_t *payload)
{
    kccl_wire_abort_t a;
    const char *why = NULL;
    if (kccl_wire_get_abort(payload, hdr->len, &a, &why) != KCCL_OK) {
        a.lost_rank = UINT32_MAX;
        a.step = 0;
    }
    if (bs->failed || bs->closing)
        return;
    int from = c->peer;
    if (c->kind == KCCL_CONN_KIND_CHECKIN && c->outbound)
        from = 0;
    if (a.lost_rank == UINT32_MAX)
        kccl_engine_fail(bs, KCCL_ERR_REMOTE, -1, (kccl_step_t)a.step, "rank %d gave up during %s",
                         from, kccl_step_str(a.step));
    else if (a.step == KCCL_STEP_ROOT)
        kccl_engine_fail(bs, KCCL_ERR_REMOTE, (int)a.lost_rank, KCCL_STEP_ROOT,
                         "lost rank %u: the root reports it %s", a.lost_rank,
                         a.status == KCCL_ERR_TIMED_OUT ? "never checked in"
                                                        : "went away after checking in");
    else
        kccl_engine_fail(bs, KCCL_ERR_REMOTE, (int)a.lost_rank, (kccl_step_t)a.step,
                         "lost rank %u (reported by rank %d during %s)", a.lost_rank, from,
                         kccl_step_str(a.step));
}

/* Handles one whole frame; takes ownership of payload. */
void kccl_hs_on_frame(kccl_bs_t *bs, kccl_conn_t *c, const kccl_wire_hdr_t *hdr, uint8_t *payload)
{
    switch (c->state) {
    case KCCL_CONN_WAIT_HELLO: on_hello(bs, c, hdr, payload); break;
    case KCCL_CONN_WAIT_PROOF: on_proof(bs, c, hdr, payload); break;
    case KCCL_CONN_WAIT_CHALLENGE:
        if (hdr->type == KCCL_MSG_REFUSE)
            on_refuse(bs, c, hdr, payload);
        else
            on_challenge(bs, c, hdr, payload);
        break;
    case KCCL_CONN_READY:
        if (hdr->type == KCCL_MSG_DATA && c->kind == KCCL_CONN_KIND_P2P &&
            hdr->src_rank == (uint32_t)c->peer) {
            queue_frame(bs, c->peer, hdr, payload);
            return;
        }
        if (hdr->type == KCCL_MSG_TABLE && c->outbound && c->kind == KCCL_CONN_KIND_CHECKIN &&
            bs->table_bytes == NULL) {
            bs->table_bytes = payload;
            bs->table_len = hdr->len;
            return;
        }
        if (hdr->type == KCCL_MSG_BYE)
            c->bye_rcvd = 1;
        if (hdr->len == 8 && c->kind == KCCL_CONN_KIND_P2P)
            bs->bye_count[c->peer] = (int64_t)(kccl_be64_get(payload) & INT64_MAX);
        else if (hdr->type == KCCL_MSG_ABORT)
            on_abort_notice(bs, c, hdr, payload);
        else if (hdr->type == KCCL_MSG_REFUSE && c->outbound)
            on_refuse(bs, c, hdr, payload);
        else {
            c->err = KCCL_ERR_PROTOCOL;
            kccl_conn_kill(bs, c, "unexpected frame from an authenticated peer");
        }
        break;
    default: break;
    }
    free(payload);
}

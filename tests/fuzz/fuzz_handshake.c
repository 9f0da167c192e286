/*
 * fuzz_handshake.c - hostile bytes against the bootstrap engine's inbound path.
 *
 * A real engine (kccl_bs_t, epoll loop) adopts one end of a socketpair as an
 * accepted connection; the fuzzer's bytes arrive on the other end.
 *   input[0] even: the bytes come from a stranger (frame parsing, hello
 *                  validation, proof checking, refusals, size limits).
 *   input[0] odd:  the harness first completes an honest handshake as rank 2
 *                  (it knows the key), then sends the bytes as an
 *                  authenticated peer (DATA, ABORT, TABLE, junk after auth).
 * Properties: no crash or leak, the loop ends by itself, and a stranger never
 * becomes a registered peer.
 */
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bootstrap/auth.h"
#include "bootstrap/engine.h"
#include "fuzz_common.h"

#define NRANKS    4
#define MY_RANK   1
#define PEER_RANK 2

static int conn_gone(kccl_bs_t *bs, void *arg)
{
    kccl_conn_t *c = arg;
    return c->state == KCCL_CONN_DEAD || bs->failed;
}

static int got_challenge(kccl_bs_t *bs, void *arg)
{
    (void)bs;
    return ((kccl_conn_t *)arg)->state == KCCL_CONN_WAIT_PROOF;
}

static void write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

/* Plays an honest rank PEER_RANK through the handshake; returns 0 when READY. */
static int honest_handshake(kccl_bs_t *bs, kccl_conn_t *c, int fd)
{
    kccl_wire_hello_t h = {.version = KCCL_WIRE_VERSION,
                           .kind = KCCL_CONN_KIND_P2P,
                           .rank = PEER_RANK,
                           .nranks = NRANKS};
    uint8_t frame[KCCL_WIRE_HDR_BYTES + 64], hello[KCCL_WIRE_HELLO_BYTES];
    memcpy(h.group_nonce, bs->uid.nonce, KCCL_NONCE_BYTES);
    kccl_wire_put_hello(hello, &h);
    kccl_wire_hdr_t hdr = {
        .type = KCCL_MSG_HELLO, .src_rank = PEER_RANK, .len = KCCL_WIRE_HELLO_BYTES};
    kccl_wire_put_hdr(frame, &hdr);
    memcpy(frame + KCCL_WIRE_HDR_BYTES, hello, sizeof(hello));
    write_all(fd, frame, KCCL_WIRE_HDR_BYTES + sizeof(hello));
    if (kccl_engine_wait(bs, kccl_now_ms() + 1000, got_challenge, c, KCCL_STEP_RECV, -1))
        return -1;
    uint8_t ch[KCCL_WIRE_HDR_BYTES + KCCL_WIRE_CHALLENGE_BYTES];
    if (read(fd, ch, sizeof(ch)) != (ssize_t)sizeof(ch))
        return -1;
    uint8_t proof[KCCL_MAC_BYTES];
    kccl_auth_mac(bs->key, "kccl-c", hello, sizeof(hello), ch + KCCL_WIRE_HDR_BYTES,
                  KCCL_NONCE_BYTES, NULL, 0, proof);
    hdr.type = KCCL_MSG_PROOF;
    hdr.len = KCCL_MAC_BYTES;
    kccl_wire_put_hdr(frame, &hdr);
    memcpy(frame + KCCL_WIRE_HDR_BYTES, proof, sizeof(proof));
    write_all(fd, frame, KCCL_WIRE_HDR_BYTES + sizeof(proof));
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int sv[2];
    if (size < 1 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv))
        return 0;
    int authenticated = data[0] & 1;
    kccl_bs_t *bs = calloc(1, sizeof(*bs));
    bs->rank = MY_RANK;
    bs->nranks = NRANKS;
    bs->timeout_ms = 1000;
    memset(bs->uid.nonce, 0xA5, KCCL_NONCE_BYTES);
    memset(bs->key, 0x42, KCCL_GROUP_SECRET_BYTES);
    FUZZ_CHECK(kccl_hmac_key_init(&bs->hkey, bs->key) == KCCL_OK);
    FUZZ_CHECK(kccl_engine_init(bs) == KCCL_OK);
    kccl_conn_t *c = kccl_engine_adopt(bs, sv[0], KCCL_CONN_KIND_P2P, NULL);
    FUZZ_CHECK(c != NULL);
    c->pinned = 1;  /* the harness watches it; freed by kccl_engine_fini */
    int fd = sv[1]; /* inputs (<= a few KiB) fit the socket buffer */
    if (authenticated && honest_handshake(bs, c, fd) != 0) {
        close(fd);
        goto out;
    }
    write_all(fd, data + 1, size - 1);
    shutdown(fd, SHUT_WR);
    kccl_engine_wait(bs, kccl_now_ms() + 1000, conn_gone, c, KCCL_STEP_RECV, -1);
    if (!authenticated)
        for (int r = 0; r < NRANKS; r++)
            FUZZ_CHECK(bs->recv_conn[r] == NULL); /* without the key, never a peer */
    close(fd);
out:
    kccl_engine_fini(bs, 0);
    kccl_hmac_key_fini(&bs->hkey);
    free(bs);
    return 0;
}

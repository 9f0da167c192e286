/*
 * kccl_e2e_intruder.c - kccl-e2e-intruder, scenario c of e2e/local/run.sh: a
 * process outside the group (run in its own network namespace) that knows what
 * anyone who can read rank 0's pod knows - the published unique id - but not
 * the group secret, and tries to join the group as a rank through the root's
 * bootstrap port. It plays the handshake (HELLO, then a PROOF keyed by a random
 * secret) with the wire encoders of runtime/bootstrap and reports the answer.
 *
 *   kccl-e2e-intruder UNIQUE_ID NRANKS RANK [TIMEOUT_MS]
 *
 * Exit status: 0 refused (the REFUSE reason is printed), 1 accepted (a defect:
 * the group let in a process without its secret), 2 usage or connection error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "attacker.h"
#include "bootstrap/auth.h"
#include "bootstrap/wire.h"

static int dial(const att_target_t *t, int timeout_ms)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (kccl_wire_addr_to_sockaddr(&t->addr, &ss, &len) != KCCL_OK)
        return -1;
    for (int waited = 0; waited <= timeout_ms; waited += 100) {
        int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&ss, len) == 0)
            return fd;
        fprintf(stderr, "kccl-e2e-intruder: connect %s: %s (retrying)\n", t->text, strerror(errno));
        if (fd >= 0)
            close(fd);
        usleep(100 * 1000);
    }
    return -1;
}

static int refused(const kccl_wire_hdr_t *h, const uint8_t *p, const char *step)
{
    uint32_t reason = kccl_be32_get(p);
    printf("kccl-e2e-intruder: refused at %s: %s (reason %u, detail %u)\n", step,
           kccl_refuse_str(reason), reason, kccl_be32_get(p + 4));
    (void)h;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: kccl-e2e-intruder UNIQUE_ID NRANKS RANK [TIMEOUT_MS]\n");
        return 2;
    }
    kccl_unique_id_t id;
    uint8_t key[KCCL_GROUP_SECRET_BYTES];
    if (kccl_unique_id_from_string(argv[1], &id) != KCCL_OK ||
        kccl_random_bytes(key, sizeof(key)) != KCCL_OK) {
        fprintf(stderr, "kccl-e2e-intruder: bad unique id: %s\n", kccl_last_error());
        return 2;
    }
    att_target_t t;
    att_target_root(&t, &id, (uint32_t)atoi(argv[2]), (uint32_t)atoi(argv[3]), key);
    int fd = dial(&t, argc > 4 ? atoi(argv[4]) : 5000);
    if (fd < 0) {
        fprintf(stderr, "kccl-e2e-intruder: cannot reach the root at %s\n", t.text);
        return 2;
    }
    printf("kccl-e2e-intruder: connected to the root at %s as rank %s of %s\n", t.text, argv[3],
           argv[2]);
    kccl_wire_hello_t h;
    uint8_t raw[KCCL_WIRE_HELLO_BYTES], p[256];
    uint8_t proof[KCCL_MAC_BYTES + KCCL_WIRE_CHECKIN_BYTES];
    kccl_wire_hdr_t fh;
    att_hello(&t, &h);
    kccl_wire_put_hello(raw, &h);
    if (att_send_frame(fd, KCCL_MSG_HELLO, h.rank, sizeof(raw), raw, sizeof(raw)) != 0 ||
        att_read_frame(fd, &fh, p, sizeof(p), 5000) != 1) {
        printf("kccl-e2e-intruder: the root closed the connection after HELLO (refused)\n");
        return 0;
    }
    if (fh.type == KCCL_MSG_REFUSE && fh.len == 8)
        return refused(&fh, p, "HELLO");
    if (fh.type != KCCL_MSG_CHALLENGE || fh.len != KCCL_WIRE_CHALLENGE_BYTES) {
        fprintf(stderr, "kccl-e2e-intruder: unexpected frame type %u after HELLO\n", fh.type);
        return 2;
    }
    kccl_wire_checkin_t ci = {.addr = t.addr, .host_hash = 42, .pid = 1};
    ci.addr.port = 9; /* "discard": nobody would ever reach the intruder here */
    kccl_wire_put_checkin(proof + KCCL_MAC_BYTES, &ci);
    kccl_auth_mac(key, "kccl-c", raw, sizeof(raw), p, KCCL_NONCE_BYTES, proof + KCCL_MAC_BYTES,
                  KCCL_WIRE_CHECKIN_BYTES, proof);
    if (att_send_frame(fd, KCCL_MSG_PROOF, h.rank, sizeof(proof), proof, sizeof(proof)) != 0) {
        printf("kccl-e2e-intruder: the root closed the connection before PROOF (refused)\n");
        return 0;
    }
    int r = att_read_frame(fd, &fh, p, sizeof(p), 2000);
    if (r == 1 && fh.type == KCCL_MSG_REFUSE && fh.len == 8)
        return refused(&fh, p, "PROOF");
    if (r == 0) {
        printf("kccl-e2e-intruder: the root closed the connection after PROOF (refused)\n");
        return 0;
    }
    printf("kccl-e2e-intruder: NOT refused: the root kept the connection open after a PROOF "
           "made without the group secret\n");
    close(fd);
    return 1;
}

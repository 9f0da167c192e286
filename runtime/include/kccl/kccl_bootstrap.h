/*
 * kccl_bootstrap.h - the TCP bootstrap: how N processes find each other.
 *
 * One process (normally rank 0's) creates a unique id; the id reaches every
 * rank by some channel (an environment variable, a Kubernetes annotation, the
 * program's own broadcast); each rank then calls kccl_bootstrap_create() with
 * the id, its rank and the world size. The root (served inside rank 0's
 * kccl_bootstrap_create) collects one authenticated check-in per rank and
 * hands every rank the table of all ranks' addresses. From then on ranks talk
 * point to point over persistent, authenticated per-peer TCP connections:
 * tagged send/recv, all-gather (ring or Bruck, chosen by size), barrier and
 * broadcast.
 *
 * Every blocking call has a deadline (opts.timeout_ms, default
 * KCCL_BOOTSTRAP_TIMEOUT) and can be cut short from another thread with
 * kccl_bootstrap_abort(). Failures name the rank, the peer and the step, via
 * kccl_last_error() and the log.
 *
 * Thread-safety: a bootstrap handle is used by one thread at a time, except
 * kccl_bootstrap_abort(), which any thread may call at any time.
 */
#ifndef KCCL_BOOTSTRAP_H
#define KCCL_BOOTSTRAP_H

#include <stddef.h>
#include <stdint.h>

#include "kccl_status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KCCL_UNIQUE_ID_BYTES 128
/* Length of the text form (base64url, no padding), without the NUL. */
#define KCCL_UNIQUE_ID_STRLEN   171
#define KCCL_GROUP_SECRET_BYTES 32

/*
 * The unique id: 128 opaque bytes. Layout (all multi-byte fields big-endian),
 * documented in runtime/bootstrap/README.md:
 *   0 magic "KCID"  4 version  6 flags  8 family  9 reserved  10 port
 *   12 address[16]  28 nonce[16]  44 secret[32] (only if flags & EMBEDDED_SECRET)
 *   76 reserved[48] (zero)  124 CRC-32C of bytes 0..123
 */
typedef struct kccl_unique_id {
    unsigned char internal[KCCL_UNIQUE_ID_BYTES];
} kccl_unique_id_t;

typedef struct kccl_bootstrap *kccl_bootstrap_t;

typedef enum {
    KCCL_BOOTSTRAP_ALGO_AUTO = 0,
    KCCL_BOOTSTRAP_ALGO_RING = 1,
    KCCL_BOOTSTRAP_ALGO_BRUCK = 2,
} kccl_bootstrap_algo_t;

/*
 * Options for ids and bootstraps. Zero-initialise, then call
 * kccl_bootstrap_opts_from_env() to fill every field from the KCCL_*
 * environment (what a NULL opts pointer means), and override what you need.
 */
typedef struct kccl_bootstrap_opts {
    int64_t timeout_ms; /* per blocking call; > 0 */
    int has_secret;     /* secret[] holds the group secret */
    unsigned char secret[KCCL_GROUP_SECRET_BYTES];
    int insecure;               /* explicit opt-in to run with no secret */
    int embed_secret;           /* ids created with these opts carry the secret */
    char ifname[64];            /* KCCL_SOCKET_IFNAME syntax; "" = automatic */
    int family;                 /* 0 = any, 4 or 6 */
    char host_id[256];          /* co-location identity; "" = automatic */
    kccl_bootstrap_algo_t algo; /* all-gather algorithm */
    int ring_max;               /* AUTO uses the ring up to this many ranks */
    int root_fd;                /* an inherited, bound+listening root socket, or -1 */
} kccl_bootstrap_opts_t;

/* Fills opts from KCCL_* variables (secret from KCCL_GROUP_SECRET_FILE or KCCL_GROUP_SECRET). */
kccl_status_t kccl_bootstrap_opts_from_env(kccl_bootstrap_opts_t *opts);

/*
 * Creates a fresh unique id and binds the root's listening socket now, in
 * this process, before the id is handed out (no close-and-rebind race). The
 * listener is held until a kccl_bootstrap_create() in this process, as the
 * root's rank, takes it over, or kccl_unique_id_release() drops it.
 * Call this in the process that will be rank 0.
 */
kccl_status_t kccl_unique_id_create(const kccl_bootstrap_opts_t *opts, kccl_unique_id_t *id);

/*
 * Like kccl_unique_id_create() but does not keep the listener: the socket is
 * bound and listening and its descriptor is returned in *listen_fd (the
 * caller passes it to rank 0, e.g. through KCCL_BOOTSTRAP_ROOT_FD). Used by
 * launchers.
 */
kccl_status_t kccl_unique_id_create_detached(const kccl_bootstrap_opts_t *opts,
                                             kccl_unique_id_t *id, int *listen_fd);

/*
 * Makes an id for a root that will listen at `address` ("IP:port" or
 * "[IPv6]:port") without binding anything: for agents that publish the id
 * before the root's process exists (kccl-sidecar). Rank 0 binds the port in
 * its kccl_bootstrap_create(); the other ranks' connects retry until then.
 */
kccl_status_t kccl_unique_id_for_address(const char *address, kccl_unique_id_t *id);

/* Closes a listener still held for id (an id that will not be used). */
void kccl_unique_id_release(const kccl_unique_id_t *id);

/* Text form (base64url): buf must hold KCCL_UNIQUE_ID_STRLEN + 1 bytes. */
kccl_status_t kccl_unique_id_to_string(const kccl_unique_id_t *id, char *buf, size_t buflen);

/* Strict parser: exact length, alphabet, magic, version, CRC, reserved bytes zero. */
kccl_status_t kccl_unique_id_from_string(const char *text, kccl_unique_id_t *id);

/* Human-readable root address of an id, "IP:port" or "[IPv6]:port". */
kccl_status_t kccl_unique_id_address(const kccl_unique_id_t *id, char *buf, size_t buflen);

/*
 * Joins the group: check in with the root (rank 0 serves it), receive every
 * rank's address, return a ready bootstrap. Collective over all nranks ranks.
 * opts may be NULL (environment).
 */
kccl_status_t kccl_bootstrap_create(const kccl_unique_id_t *id, int rank, int nranks,
                                    const kccl_bootstrap_opts_t *opts, kccl_bootstrap_t *out);

int kccl_bootstrap_rank(kccl_bootstrap_t bs);
int kccl_bootstrap_size(kccl_bootstrap_t bs);

/* 64-bit hash of rank's host id: equal hashes mean the ranks share a node. */
uint64_t kccl_bootstrap_host_hash(kccl_bootstrap_t bs, int rank);

/* Rank's bootstrap address as "IP:port". */
kccl_status_t kccl_bootstrap_peer_address(kccl_bootstrap_t bs, int rank, char *buf, size_t buflen);

/* Tagged point-to-point. send returns once the bytes are with the kernel; recv
 * needs a frame of exactly len bytes with that tag from peer. Tags >= 2^31 are
 * reserved for kccl. */
kccl_status_t kccl_bootstrap_send(kccl_bootstrap_t bs, int peer, uint32_t tag, const void *buf,
                                  size_t len);
kccl_status_t kccl_bootstrap_recv(kccl_bootstrap_t bs, int peer, uint32_t tag, void *buf,
                                  size_t len);

/* In place: buf holds nranks slots of `bytes` each; this rank's slot is filled. */
kccl_status_t kccl_bootstrap_all_gather(kccl_bootstrap_t bs, void *buf, size_t bytes);

kccl_status_t kccl_bootstrap_barrier(kccl_bootstrap_t bs);

kccl_status_t kccl_bootstrap_broadcast(kccl_bootstrap_t bs, void *buf, size_t bytes, int root);

/* Makes every blocking call on bs (current and future) fail with
 * KCCL_ERR_ABORTED. Async-signal-safe and thread-safe. */
void kccl_bootstrap_abort(kccl_bootstrap_t bs);

/* Flushes what is queued (bounded by the deadline), closes, frees. NULL is fine. */
void kccl_bootstrap_destroy(kccl_bootstrap_t bs);

#ifdef __cplusplus
}
#endif
#endif /* KCCL_BOOTSTRAP_H */

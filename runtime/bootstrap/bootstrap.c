/*
 * bootstrap.c - kccl_bootstrap_create/destroy and options.
 *
 * create: resolve options and the secret, bind this rank's peer listener,
 * then either serve the root (the root rank) or check in with it, receive
 * the address table, and open (without waiting) the connections the
 * all-gather and barrier will use: rank+1, rank+2, rank+4, ... so their
 * handshakes overlap with whatever the caller does next.
 */
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bootstrap/auth.h"
#include "bootstrap/bootstrap_int.h"
#include "bootstrap/hostid.h"
#include "bootstrap/netif.h"
#include "core/config.h"
#include "core/error.h"

#define PEER_BACKLOG 4096
#define MAX_RANKS    (1 << 24)
/* How long destroy waits for peers' BYE before it closes with a FIN instead. */
#define DESTROY_LINGER_MS 1000
/* After a failure: long enough to deliver the ABORT notices. */
#define DESTROY_FAILED_LINGER_MS 200

kccl_status_t kccl_bootstrap_opts_from_env(kccl_bootstrap_opts_t *o)
{
    long v;
    if (o == NULL)
        return KCCL_ERR_INVALID_ARG;
    memset(o, 0, sizeof(*o));
    o->root_fd = -1;
    KCCL_CHECK(kccl_config_millis(KCCL_CFG_BOOTSTRAP_TIMEOUT, &o->timeout_ms));
    KCCL_CHECK(kccl_config_bool(KCCL_CFG_BOOTSTRAP_INSECURE, &o->insecure));
    KCCL_CHECK(kccl_config_int(KCCL_CFG_BOOTSTRAP_RING_MAX, &v));
    o->ring_max = (int)v;
    KCCL_CHECK(kccl_config_int(KCCL_CFG_BOOTSTRAP_ROOT_FD, &v));
    o->root_fd = (int)v;
    const char *algo = kccl_config_str(KCCL_CFG_BOOTSTRAP_ALGO);
    if (strcasecmp(algo, "auto") == 0)
        o->algo = KCCL_BOOTSTRAP_ALGO_AUTO;
    else if (strcasecmp(algo, "ring") == 0)
        o->algo = KCCL_BOOTSTRAP_ALGO_RING;
    else if (strcasecmp(algo, "bruck") == 0)
        o->algo = KCCL_BOOTSTRAP_ALGO_BRUCK;
    else
        KCCL_FAIL(INIT, KCCL_ERR_CONFIG, "KCCL_BOOTSTRAP_ALGO='%s': use auto, ring or bruck", algo);
    snprintf(o->ifname, sizeof(o->ifname), "%s", kccl_config_str(KCCL_CFG_SOCKET_IFNAME));
    const char *fam = kccl_config_str(KCCL_CFG_SOCKET_FAMILY);
    if (*fam == '\0')
        o->family = 0;
    else if (strcasecmp(fam, "AF_INET") == 0 || strcmp(fam, "4") == 0)
        o->family = 4;
    else if (strcasecmp(fam, "AF_INET6") == 0 || strcmp(fam, "6") == 0)
        o->family = 6;
    else
        KCCL_FAIL(INIT, KCCL_ERR_CONFIG, "KCCL_SOCKET_FAMILY='%s': use AF_INET or AF_INET6", fam);
    if (kccl_config_is_set(KCCL_CFG_HOST_ID) || kccl_config_is_set(KCCL_CFG_NODE_NAME))
        KCCL_CHECK(kccl_host_id_resolve(o->host_id, sizeof(o->host_id)));
    if (kccl_config_is_set(KCCL_CFG_GROUP_SECRET_FILE)) {
        KCCL_CHECK(kccl_secret_load_file(kccl_config_str(KCCL_CFG_GROUP_SECRET_FILE), o->secret));
        o->has_secret = 1;
    } else if (kccl_config_is_set(KCCL_CFG_GROUP_SECRET)) {
        const char *s = kccl_config_str(KCCL_CFG_GROUP_SECRET);
        if (strlen(s) != 2 * KCCL_GROUP_SECRET_BYTES ||
            kccl_secret_parse((const uint8_t *)s, strlen(s), o->secret) != 0)
            KCCL_FAIL(INIT, KCCL_ERR_CONFIG,
                      "KCCL_GROUP_SECRET must be 64 hex digits (32 bytes); the value is not shown");
        o->has_secret = 1;
    }
    return KCCL_OK;
}

static kccl_status_t resolve_key(kccl_bs_t *bs, const kccl_bootstrap_opts_t *o)
{
    int embedded = (bs->uid.flags & KCCL_UID_FLAG_SECRET) != 0;
    if (o->has_secret) {
        if (embedded && CRYPTO_memcmp(o->secret, bs->uid.secret, KCCL_GROUP_SECRET_BYTES) != 0)
            KCCL_FAIL(BOOT, KCCL_ERR_AUTH,
                      "rank %d: the unique id carries a group secret that differs from "
                      "KCCL_GROUP_SECRET_FILE/KCCL_GROUP_SECRET; use one source",
                      bs->rank);
        memcpy(bs->key, o->secret, KCCL_GROUP_SECRET_BYTES);
    } else if (embedded) {
        memcpy(bs->key, bs->uid.secret, KCCL_GROUP_SECRET_BYTES);
    } else if (o->insecure) {
        static int warned;
        if (!__atomic_exchange_n(&warned, 1, __ATOMIC_RELAXED))
            kccl_log_warn(BOOT, "bootstrap runs WITHOUT a group secret "
                                "(KCCL_BOOTSTRAP_INSECURE): anyone who can reach the port can "
                                "join or disturb the group");
        memset(bs->key, 0, KCCL_GROUP_SECRET_BYTES);
    } else {
        KCCL_FAIL(BOOT, KCCL_ERR_AUTH,
                  "rank %d: no group secret: set KCCL_GROUP_SECRET_FILE (kccl-run and the "
                  "sidecar do this), or KCCL_BOOTSTRAP_INSECURE=1 to run unauthenticated",
                  bs->rank);
    }
    return KCCL_OK;
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* The root rank's listener: held from kccl_unique_id_create, inherited, or bound now. */
static kccl_status_t root_listener(kccl_bs_t *bs, const kccl_bootstrap_opts_t *o, int *fd)
{
    char text[64];
    kccl_wire_addr_format(&bs->uid.root, text, sizeof(text));
    *fd = kccl_uid_take_listener(bs->uid.nonce);
    if (*fd >= 0)
        return KCCL_OK;
    if (o->root_fd >= 0) {
        kccl_wire_addr_t got;
        KCCL_CHECK(kccl_sock_bound_addr(o->root_fd, &got));
        if (got.port != bs->uid.root.port)
            KCCL_FAIL(BOOT, KCCL_ERR_INVALID_ARG,
                      "KCCL_BOOTSTRAP_ROOT_FD=%d listens on port %u but the unique id names %s; "
                      "the launcher passed a descriptor of another group",
                      o->root_fd, got.port, text);
        *fd = o->root_fd;
        return KCCL_OK;
    }
    kccl_wire_addr_t bound;
    kccl_status_t st = kccl_sock_listen(&bs->uid.root, 65535, fd, &bound);
    if (st == KCCL_ERR_ADDR_IN_USE)
        KCCL_FAIL(BOOT, st,
                  "rank 0: cannot serve the root at %s: the port is already in use; stop the "
                  "process holding it or choose another port (CommGroup spec.port)",
                  text);
    if (st != KCCL_OK) {
        char cause[256];
        snprintf(cause, sizeof(cause), "%s", kccl_last_error());
        KCCL_FAIL(BOOT, st,
                  "rank 0: cannot serve the root at %s: %s; is this the host the id "
                  "names?",
                  text, cause);
    }
    return KCCL_OK;
}

static int table_ready(kccl_bs_t *bs, void *arg)
{
    (void)arg;
    kccl_conn_t *c = bs->root_conn;
    if (bs->table_bytes) {
        if (bs->table_len != (uint64_t)bs->nranks * KCCL_WIRE_PEER_BYTES)
            return kccl_engine_fail(bs, KCCL_ERR_PROTOCOL, -1, KCCL_STEP_TABLE,
                                    "the root sent a table of %llu bytes for %d ranks",
                                    (unsigned long long)bs->table_len, bs->nranks);
        for (int r = 0; r < bs->nranks; r++) {
            const char *why;
            if (kccl_wire_get_peer(bs->table_bytes + (size_t)r * KCCL_WIRE_PEER_BYTES,
                                   KCCL_WIRE_PEER_BYTES, &bs->peers[r], &why) != KCCL_OK)
                return kccl_engine_fail(bs, KCCL_ERR_PROTOCOL, -1, KCCL_STEP_TABLE,
                                        "the root's table row %d is invalid: %s", r, why);
        }
        bs->have_table = 1;
        return 1;
    }
    if (c->state == KCCL_CONN_DEAD)
        return kccl_engine_fail(bs, c->err ? c->err : KCCL_ERR_REMOTE, 0, KCCL_STEP_CHECKIN,
                                "check-in with the root at %s failed: %s", c->remote_text, c->why);
    if (bs->in_timeout) {
        if (c->state == KCCL_CONN_CONNECTING)
            return kccl_engine_fail(bs, KCCL_ERR_TIMED_OUT, 0, KCCL_STEP_CHECKIN,
                                    "could not reach the root at %s within %.1f s (%s, %d tries); "
                                    "is rank 0 running, and is the unique id current?",
                                    c->remote_text, (double)bs->timeout_ms / 1000,
                                    c->last_errno ? strerror(c->last_errno) : "no answer",
                                    c->tries);
        return kccl_engine_fail(bs, KCCL_ERR_TIMED_OUT, -1, KCCL_STEP_TABLE,
                                "checked in with the root at %s but got no table within %.1f s; "
                                "some rank never checked in",
                                c->remote_text, (double)bs->timeout_ms / 1000);
    }
    return 0;
}

static kccl_status_t check_in(kccl_bs_t *bs, const kccl_wire_peer_t *self)
{
    kccl_wire_checkin_t ci = {
        .addr = self->addr, .host_hash = self->host_hash, .pid = (uint32_t)getpid()};
    kccl_conn_t *c = kccl_engine_connect(bs, &bs->uid.root, KCCL_CONN_KIND_CHECKIN, 0);
    if (c == NULL)
        KCCL_FAIL(BOOT, KCCL_ERR_NO_MEMORY, "out of memory connecting to the root");
    c->pinned = 1;
    kccl_wire_put_checkin(c->checkin, &ci);
    bs->root_conn = c;
    kccl_status_t st = kccl_engine_wait(bs, kccl_now_ms() + bs->timeout_ms, table_ready, NULL,
                                        KCCL_STEP_CHECKIN, 0);
    c->pinned = 0;
    /* The root needs nothing more from us and we have read its table: a
     * reset leaves no TIME_WAIT socket on either side. */
    if (st == KCCL_OK)
        kccl_engine_close_reset(bs, c);
    else
        kccl_engine_close(bs, c, "check-in failed");
    bs->root_conn = NULL;
    return st;
}

static kccl_status_t validate_args(const kccl_unique_id_t *id, int rank, int nranks,
                                   kccl_bootstrap_t *out)
{
    if (id == NULL || out == NULL)
        KCCL_FAIL(BOOT, KCCL_ERR_INVALID_ARG, "kccl_bootstrap_create: NULL id or output");
    if (nranks < 1 || nranks > MAX_RANKS)
        KCCL_FAIL(BOOT, KCCL_ERR_INVALID_ARG, "world size %d is out of range 1..%d", nranks,
                  MAX_RANKS);
    if (rank < 0 || rank >= nranks)
        KCCL_FAIL(BOOT, KCCL_ERR_INVALID_ARG, "rank %d is out of range for world size %d (0..%d)",
                  rank, nranks, nranks - 1);
    return KCCL_OK;
}

static kccl_status_t bs_setup(kccl_bs_t *bs, const kccl_unique_id_t *id,
                              const kccl_bootstrap_opts_t *o, kccl_wire_peer_t *self)
{
    const char *why = NULL;
    char host_id[256];
    kccl_status_t st = kccl_uid_decode(id, &bs->uid, &why);
    if (st != KCCL_OK)
        KCCL_FAIL(BOOT, st, "rank %d: malformed unique id: %s", bs->rank, why);
    KCCL_CHECK(resolve_key(bs, o));
    if (o->timeout_ms <= 0)
        KCCL_FAIL(BOOT, KCCL_ERR_INVALID_ARG, "bootstrap timeout must be positive");
    KCCL_CHECK(kccl_hmac_key_init(&bs->hkey, bs->key));
    bs->timeout_ms = o->timeout_ms;
    bs->algo = o->algo;
    bs->ring_max = o->ring_max;
    if (o->host_id[0])
        snprintf(host_id, sizeof(host_id), "%s", o->host_id);
    else
        KCCL_CHECK(kccl_host_id_resolve(host_id, sizeof(host_id)));
    bs->host_hash = kccl_host_hash(host_id);
    KCCL_CHECK(kccl_engine_init(bs));
    /* Listen for peers on the interface the options pick, in the root's
     * family unless one is forced, so every rank can reach every other. */
    kccl_wire_addr_t local;
    int family = o->family ? o->family : bs->uid.root.family;
    KCCL_CHECK(kccl_netif_pick(o->ifname, family, &local, NULL, 0));
    KCCL_CHECK(kccl_sock_listen(&local, PEER_BACKLOG, &bs->listen_fd, &bs->listen_addr));
    KCCL_CHECK(kccl_engine_add_listener(bs, bs->listen_fd, NULL));
    self->addr = bs->listen_addr;
    self->host_hash = bs->host_hash;
    return KCCL_OK;
}

static _Thread_local const kccl_bootstrap_observer_t *observer;

void kccl_bootstrap_observe(const kccl_bootstrap_observer_t *obs)
{
    observer = obs;
}

static void observe_gone(kccl_bs_t *bs)
{
    if (observer != NULL && observer->gone != NULL)
        observer->gone(observer->arg, bs);
}

kccl_status_t kccl_bootstrap_create(const kccl_unique_id_t *id, int rank, int nranks,
                                    const kccl_bootstrap_opts_t *opts, kccl_bootstrap_t *out)
{
    kccl_bootstrap_opts_t envopts;
    kccl_wire_peer_t self;
    kccl_status_t st;
    KCCL_CHECK(validate_args(id, rank, nranks, out));
    if (opts == NULL) {
        KCCL_CHECK(kccl_bootstrap_opts_from_env(&envopts));
        opts = &envopts;
    }
    kccl_bs_t *bs = calloc(1, sizeof(*bs));
    if (bs == NULL)
        KCCL_FAIL(BOOT, KCCL_ERR_NO_MEMORY, "out of memory for a bootstrap");
    bs->rank = rank;
    bs->nranks = nranks;
    bs->epfd = bs->abort_fd = bs->listen_fd = -1;
    kccl_log_set_rank(rank);
    if (nranks > 256)
        raise_nofile();
    KCCL_CHECK_GOTO(bs_setup(bs, id, opts, &self), st, err);
    if (observer != NULL && observer->created != NULL)
        observer->created(observer->arg, bs);
    if (rank == 0) {
        int fd;
        KCCL_CHECK_GOTO(root_listener(bs, opts, &fd), st, err);
        if (nranks == 1) {
            close(fd);
            bs->peers[0] = self;
            bs->have_table = 1;
        } else {
            KCCL_CHECK_GOTO(kccl_root_run(bs, fd, &self), st, err);
        }
    } else {
        KCCL_CHECK_GOTO(check_in(bs, &self), st, err);
    }
    for (int d = 1; d < nranks; d <<= 1)
        kccl_engine_send_conn(bs, (rank + d) % nranks);
    kccl_log_debug(BOOT, "bootstrap ready: rank %d of %d", rank, nranks);
    *out = bs;
    return KCCL_OK;
err:
    observe_gone(bs);
    kccl_engine_fini(bs, DESTROY_FAILED_LINGER_MS);
    kccl_hmac_key_fini(&bs->hkey);
    OPENSSL_cleanse(bs->key, sizeof(bs->key));
    free(bs);
    return st;
}

int kccl_bootstrap_rank(kccl_bootstrap_t bs)
{
    return bs ? bs->rank : -1;
}

int kccl_bootstrap_size(kccl_bootstrap_t bs)
{
    return bs ? bs->nranks : 0;
}

uint64_t kccl_bootstrap_host_hash(kccl_bootstrap_t bs, int rank)
{
    if (bs == NULL || rank < 0 || rank >= bs->nranks || !bs->have_table)
        return 0;
    return bs->peers[rank].host_hash;
}

kccl_status_t kccl_bootstrap_peer_address(kccl_bootstrap_t bs, int rank, char *buf, size_t buflen)
{
    if (bs == NULL || buf == NULL || rank < 0 || rank >= bs->nranks || !bs->have_table)
        KCCL_FAIL(BOOT, KCCL_ERR_INVALID_ARG, "kccl_bootstrap_peer_address: bad rank %d", rank);
    kccl_wire_addr_format(&bs->peers[rank].addr, buf, buflen);
    return KCCL_OK;
}

void kccl_bootstrap_abort(kccl_bootstrap_t bs)
{
    if (bs == NULL)
        return;
    uint64_t one = 1;
    __atomic_store_n(&bs->aborted, 1, __ATOMIC_RELEASE);
    ssize_t r = write(bs->abort_fd, &one, sizeof(one));
    (void)r;
}

void kccl_bootstrap_destroy(kccl_bootstrap_t bs)
{
    if (bs == NULL)
        return;
    observe_gone(bs);
    kccl_engine_fini(bs, bs->failed ? DESTROY_FAILED_LINGER_MS : DESTROY_LINGER_MS);
    kccl_hmac_key_fini(&bs->hkey);
    OPENSSL_cleanse(bs->key, sizeof(bs->key));
    free(bs);
}

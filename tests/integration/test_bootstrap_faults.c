/*
 * test_bootstrap_faults.c - strangers and bad input against a live group.
 *
 * Every attack runs twice per test: first against the root's port while the
 * root is still collecting check-ins (the last rank is held back until the
 * attack is over), then against rank 1's peer listener while the formed
 * group loops collectives. Each time the attacker must see the refusal (or
 * the close) it expects, the listener must still answer a stranger at once
 * afterwards, the attacked process must log what it refused, and the real
 * ranks must bootstrap and finish their collectives. Attackers are raw
 * sockets (attacker.h) with frames built by runtime/bootstrap/wire.h.
 *
 * Bad input that never reaches the network is here too: malformed unique
 * ids, ranks out of range, a root port already taken, no group secret.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "attacker.h"
#include "bootstrap/uniqueid.h"
#include "faults.h"
#include "kccl_test.h"

#define N 4
/* Bootstrap timeout: the root collects check-ins for 90 % of it, attacks included. */
#define T_MS 4000

typedef struct {
    mp_t *mp;
    fault_group_t *g;
    att_target_t t;
    int phase; /* 0: the root, 1: rank 1's peer listener */
} attack_ctx_t;

typedef void (*attack_fn)(attack_ctx_t *ax);

static int attack_proc(mp_t *mp, int p, void *arg)
{
    fault_group_t *g = arg;
    kccl_bootstrap_t bs;
    int r = fault_rank(mp, g, p);
    MP_CHECK(r >= 0, "not released");
    int64_t t0 = mp_now_ms();
    kccl_status_t st = kccl_bootstrap_create(&g->id, r, g->nranks, &g->opts, &bs);
    fault_record(st, t0);
    MP_CHECK(st == KCCL_OK, "create: %s: %s", kccl_status_name(st), kccl_last_error());
    return fault_serve_until_done(mp, bs);
}

/* After an attack the listener must still answer a new stranger promptly. */
static void probe_serving(const att_target_t *t)
{
    kccl_wire_hello_t h;
    uint32_t reason = 0, detail = 0;
    int fd = att_connect(t);
    att_hello(t, &h);
    h.version = 99;
    if (!att_expect_refuse(fd, &h, &reason, &detail))
        fail_msg("%s no longer answers strangers after the attack", t->text);
    assert_int_equal(reason, KCCL_REFUSE_BAD_VERSION);
    close(fd);
}

/* The root phase holds the last rank back; some attacks must let it go early. */
static void release_held(attack_ctx_t *ax)
{
    if (ax->phase == 0)
        mp_flag_set(ax->mp, FLAG_GO, 1);
}

static void run_attack(const char *name, attack_fn fn, int64_t timeout_ms, const char *logged)
{
    fault_group_t g;
    fault_group_init(&g, N, timeout_ms);
    g.held_proc = N - 1;
    mp_t *mp = fault_start(&g, name, N, attack_proc, NULL);
    attack_ctx_t ax = {.mp = mp, .g = &g, .phase = 0};
    /* Phase 0: the root, claiming the held rank where a rank is claimed. */
    att_target_root(&ax.t, &g.id, N, N - 1, mp_test_secret);
    fn(&ax);
    if (mp_flag_get(mp, FLAG_GO) == 0) /* once the group formed, the root's port is closed */
        probe_serving(&ax.t);
    mp_flag_set(mp, FLAG_GO, 1);
    /* Phase 1: rank 1's peer port, claiming rank 2 (which never connects to rank 1). */
    fault_await_progress(mp, 1, 1, timeout_ms + 10000);
    ax.phase = 1;
    att_target_peer(&ax.t, mp_slot(mp, 1)->text, &g.id, N, 2, mp_test_secret);
    fn(&ax);
    probe_serving(&ax.t);
    mp_flag_set(mp, FLAG_DONE, 1);
    mp_wait_all(mp);
    mp_assert_all_ok(mp);
    if (logged) {
        fault_assert_logged(mp, 0, logged);
        fault_assert_logged(mp, 1, logged);
    }
    mp_free(mp);
}

static void expect_closed(int fd, const char *what)
{
    if (att_wait_closed(fd, 3000) < 0)
        fail_msg("%s: the connection was not closed within 3 s", what);
    close(fd);
}

static void expect_refused(attack_ctx_t *ax, const kccl_wire_hello_t *h, uint32_t reason,
                           uint32_t detail)
{
    uint32_t got = 0, got_detail = 0;
    int fd = att_connect(&ax->t);
    if (!att_expect_refuse(fd, h, &got, &got_detail))
        fail_msg("%s: no REFUSE for the hello (expected %s)", ax->t.text, kccl_refuse_str(reason));
    assert_int_equal(got, reason);
    assert_int_equal(got_detail, detail);
    expect_closed(fd, "after REFUSE");
}

/* ------------------------------------------------------------ attacks */

static void attack_bad_magic(attack_ctx_t *ax)
{
    uint8_t frame[KCCL_WIRE_HDR_BYTES + KCCL_WIRE_HELLO_BYTES];
    kccl_wire_hdr_t h = {.type = KCCL_MSG_HELLO, .len = KCCL_WIRE_HELLO_BYTES};
    kccl_wire_hello_t hello;
    att_hello(&ax->t, &hello);
    kccl_wire_put_hdr(frame, &h);
    kccl_wire_put_hello(frame + KCCL_WIRE_HDR_BYTES, &hello);
    memcpy(frame, "KCFX", 4);
    int fd = att_connect(&ax->t);
    att_send(fd, frame, sizeof(frame));
    expect_closed(fd, "bad magic");
    static const char http[] = "GET / HTTP/1.1\r\nHost: kccl\r\n\r\n";
    fd = att_connect(&ax->t);
    att_send(fd, http, sizeof(http) - 1);
    expect_closed(fd, "HTTP request");
}

static void test_attack_bad_magic(void **state)
{
    (void)state;
    run_attack("bad_magic", attack_bad_magic, T_MS, "bad frame magic");
}

static void attack_bad_version(attack_ctx_t *ax)
{
    static const uint16_t versions[] = {0, KCCL_WIRE_VERSION + 1, 0xFFFF};
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(versions); i++) {
        kccl_wire_hello_t h;
        att_hello(&ax->t, &h);
        h.version = versions[i];
        expect_refused(ax, &h, KCCL_REFUSE_BAD_VERSION, KCCL_WIRE_VERSION);
    }
}

static void test_attack_bad_version(void **state)
{
    (void)state;
    run_attack("bad_version", attack_bad_version, T_MS, "protocol version mismatch");
}

static void attack_wrong_group(attack_ctx_t *ax)
{
    kccl_wire_hello_t h;
    /* A hello made for another, real id (same secret, same host)... */
    kccl_unique_id_t other;
    kccl_uid_fields_t f;
    const char *why;
    mp_make_id(&ax->g->opts, &other);
    assert_int_equal(kccl_uid_decode(&other, &f, &why), KCCL_OK);
    kccl_unique_id_release(&other);
    att_hello(&ax->t, &h);
    memcpy(h.group_nonce, f.nonce, KCCL_NONCE_BYTES);
    expect_refused(ax, &h, KCCL_REFUSE_WRONG_GROUP, 0);
    /* ...and one with a nonce off by one bit. */
    att_hello(&ax->t, &h);
    h.group_nonce[KCCL_NONCE_BYTES - 1] ^= 1;
    expect_refused(ax, &h, KCCL_REFUSE_WRONG_GROUP, 0);
}

static void test_attack_wrong_group_nonce(void **state)
{
    (void)state;
    run_attack("wrong_group", attack_wrong_group, T_MS, "names another group");
}

static void attack_wrong_kind(attack_ctx_t *ax)
{
    kccl_wire_hello_t h;
    att_hello(&ax->t, &h);
    h.kind = ax->t.kind == KCCL_CONN_KIND_CHECKIN ? KCCL_CONN_KIND_P2P : KCCL_CONN_KIND_CHECKIN;
    expect_refused(ax, &h, KCCL_REFUSE_BAD_KIND, 0);
    /* An unknown kind is not worth an answer. */
    att_hello(&ax->t, &h);
    h.kind = 9;
    int fd = att_connect(&ax->t);
    uint32_t reason, detail;
    assert_false(att_expect_refuse(fd, &h, &reason, &detail));
    close(fd);
}

static void test_attack_wrong_kind(void **state)
{
    (void)state;
    run_attack("wrong_kind", attack_wrong_kind, T_MS, "connection kind not served");
}

static void attack_wrong_secret(attack_ctx_t *ax)
{
    kccl_wire_hello_t h;
    att_hello(&ax->t, &h);
    int fd = att_connect(&ax->t);
    int r = att_handshake(&ax->t, fd, &h, mp_other_secret);
    if (r != KCCL_REFUSE_AUTH)
        fail_msg("%s: a proof made with the wrong key got %d, expected REFUSE AUTH (%d)",
                 ax->t.text, r, KCCL_REFUSE_AUTH);
    expect_closed(fd, "after REFUSE AUTH");
}

static void test_attack_wrong_secret(void **state)
{
    (void)state;
    run_attack("wrong_secret", attack_wrong_secret, T_MS,
               "authentication failed (wrong group secret)");
}

static void attack_truncated_close(attack_ctx_t *ax)
{
    uint8_t frame[KCCL_WIRE_HDR_BYTES + KCCL_WIRE_HELLO_BYTES];
    kccl_wire_hdr_t h = {.type = KCCL_MSG_HELLO, .len = KCCL_WIRE_HELLO_BYTES};
    kccl_wire_hello_t hello;
    att_hello(&ax->t, &hello);
    kccl_wire_put_hdr(frame, &h);
    kccl_wire_put_hello(frame + KCCL_WIRE_HDR_BYTES, &hello);
    /* Half a header, then close; then a whole header and half a hello, then close. */
    const size_t cuts[] = {KCCL_WIRE_HDR_BYTES / 2, KCCL_WIRE_HDR_BYTES + 20, 1};
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(cuts); i++) {
        int fd = att_connect(&ax->t);
        att_send(fd, frame, cuts[i]);
        close(fd);
    }
}

static void test_attack_truncated_then_close(void **state)
{
    (void)state;
    run_attack("truncated_close", attack_truncated_close, T_MS, NULL);
}

#define SILENT_T_MS 2000

static void attack_truncated_silent(attack_ctx_t *ax)
{
    uint8_t hdr[KCCL_WIRE_HDR_BYTES];
    kccl_wire_hdr_t h = {.type = KCCL_MSG_HELLO, .len = KCCL_WIRE_HELLO_BYTES};
    kccl_wire_put_hdr(hdr, &h);
    int64_t t0 = mp_now_ms();
    int fd = att_connect(&ax->t);
    att_send(fd, hdr, sizeof(hdr) / 2);
    /* The group must form and work while this connection hangs. */
    release_held(ax);
    int64_t waited = att_wait_closed(fd, SILENT_T_MS + 5000);
    close(fd);
    if (waited < 0)
        fail_msg("%s kept a silent half-header connection open", ax->t.text);
    int64_t held = mp_now_ms() - t0;
    print_message("%s dropped the silent connection after %lld ms (handshake deadline %d ms)\n",
                  ax->t.text, (long long)held, SILENT_T_MS);
    assert_true(held >= SILENT_T_MS - 100);
}

static void test_attack_truncated_then_silent(void **state)
{
    (void)state;
    run_attack("truncated_silent", attack_truncated_silent, SILENT_T_MS,
               "no handshake within the deadline");
}

static void send_len(attack_ctx_t *ax, uint64_t len)
{
    uint8_t junk[64];
    memset(junk, 'x', sizeof(junk));
    int fd = att_connect(&ax->t);
    att_send_frame(fd, KCCL_MSG_HELLO, 0, len, junk, sizeof(junk));
    expect_closed(fd, "length field");
}

static void attack_oversized(attack_ctx_t *ax)
{
    send_len(ax, 257);
    send_len(ax, 1 << 20);
    send_len(ax, ((uint64_t)1 << 30) - 1);
}

static void test_attack_length_over_handshake_limit(void **state)
{
    (void)state;
    run_attack("oversized", attack_oversized, T_MS, "oversized handshake frame");
}

static void attack_absurd(attack_ctx_t *ax)
{
    send_len(ax, (uint64_t)1 << 30);
    send_len(ax, UINT64_MAX);
}

static void test_attack_absurd_length(void **state)
{
    (void)state;
    run_attack("absurd", attack_absurd, T_MS, "frame length is absurd");
}

static void attack_random(attack_ctx_t *ax)
{
    uint8_t buf[2048];
    for (uint64_t seed = 1; seed <= 8; seed++) {
        att_random(seed + 100 * (uint64_t)ax->phase, buf, sizeof(buf));
        if (seed > 4)
            memcpy(buf, "KCFR", 4); /* past the magic check, into the header */
        int fd = att_connect(&ax->t);
        att_send(fd, buf, sizeof(buf));
        expect_closed(fd, "random bytes");
    }
}

static void test_attack_random_bytes(void **state)
{
    (void)state;
    run_attack("random", attack_random, T_MS, NULL);
}

static void attack_port_scan(attack_ctx_t *ax)
{
    for (int i = 0; i < 300; i++)
        close(att_connect(&ax->t));
}

static void test_attack_port_scan(void **state)
{
    (void)state;
    run_attack("port_scan", attack_port_scan, T_MS, NULL);
}

static void attack_duplicate(attack_ctx_t *ax)
{
    /* Rank 0 is the root itself; at rank 1, rank 0 is connected already. */
    kccl_wire_hello_t h;
    att_hello(&ax->t, &h);
    h.rank = 0;
    expect_refused(ax, &h, KCCL_REFUSE_DUPLICATE, 0);
}

static void test_attack_duplicate_rank_hello(void **state)
{
    (void)state;
    run_attack("dup_hello", attack_duplicate, T_MS, "already checked in with this rank");
}

static void attack_world_size(attack_ctx_t *ax)
{
    static const uint32_t sizes[] = {N + 1, 1, 1u << 24};
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(sizes); i++) {
        kccl_wire_hello_t h;
        att_hello(&ax->t, &h);
        h.nranks = sizes[i];
        h.rank = 0;
        expect_refused(ax, &h, KCCL_REFUSE_WORLD_SIZE, N);
    }
}

static void test_attack_world_size_hello(void **state)
{
    (void)state;
    run_attack("world_size_hello", attack_world_size, T_MS, "world size differs");
}

static void attack_rank_range(attack_ctx_t *ax)
{
    static const uint32_t ranks[] = {N, N + 1, UINT32_MAX};
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(ranks); i++) {
        kccl_wire_hello_t h;
        att_hello(&ax->t, &h);
        h.rank = ranks[i];
        expect_refused(ax, &h, KCCL_REFUSE_RANK_RANGE, N);
    }
}

/* Out-of-range ranks: refused by the API before any I/O, and on the wire. */
static void test_rank_out_of_range(void **state)
{
    (void)state;
    kccl_bootstrap_opts_t o;
    kccl_unique_id_t id;
    kccl_bootstrap_t bs = NULL;
    mp_test_opts(&o, T_MS);
    mp_make_id(&o, &id);
    static const struct {
        int rank, nranks;
        const char *says;
    } bad[] = {{3, 3, "rank 3 is out of range for world size 3"},
               {-1, 3, "rank -1 is out of range"},
               {0, 0, "world size 0 is out of range"},
               {0, -5, "world size -5 is out of range"}};
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(bad); i++) {
        assert_int_equal(kccl_bootstrap_create(&id, bad[i].rank, bad[i].nranks, &o, &bs),
                         KCCL_ERR_INVALID_ARG);
        assert_null(bs);
        if (strstr(kccl_last_error(), bad[i].says) == NULL)
            fail_msg("'%s' does not say '%s'", kccl_last_error(), bad[i].says);
    }
    assert_int_equal(kccl_bootstrap_create(NULL, 0, 2, &o, &bs), KCCL_ERR_INVALID_ARG);
    assert_int_equal(kccl_bootstrap_create(&id, 0, 2, &o, NULL), KCCL_ERR_INVALID_ARG);
    kccl_unique_id_release(&id);
    run_attack("rank_range", attack_rank_range, T_MS, "rank out of range");
}

/* ------------------------------------------------------ no network */

static void expect_bad_id_text(const char *text, kccl_status_t status, const char *says)
{
    kccl_unique_id_t id;
    memset(&id, 0x5A, sizeof(id));
    kccl_status_t st = kccl_unique_id_from_string(text, &id);
    if (st != status || strstr(kccl_last_error(), says) == NULL)
        fail_msg("id text '%.40s...' (%zu chars): %s '%s', expected %s saying '%s'",
                 text ? text : "(null)", text ? strlen(text) : 0, kccl_status_name(st),
                 kccl_last_error(), kccl_status_name(status), says);
    assert_int_equal(id.internal[0], 0x5A); /* output untouched */
}

static void test_malformed_unique_id_strings(void **state)
{
    (void)state;
    kccl_bootstrap_opts_t o;
    kccl_unique_id_t id, back;
    char good[KCCL_UNIQUE_ID_STRLEN + 1], text[512];
    mp_test_opts(&o, T_MS);
    mp_make_id(&o, &id);
    kccl_unique_id_release(&id);
    assert_int_equal(kccl_unique_id_to_string(&id, good, sizeof(good)), KCCL_OK);
    assert_int_equal(kccl_unique_id_from_string(good, &back), KCCL_OK);
    assert_memory_equal(&id, &back, sizeof(id));

    expect_bad_id_text("", KCCL_ERR_INVALID_ARG, "0 characters, expected 171");
    expect_bad_id_text(NULL, KCCL_ERR_INVALID_ARG, "missing");
    snprintf(text, sizeof(text), "%.170s", good);
    expect_bad_id_text(text, KCCL_ERR_INVALID_ARG, "170 characters, expected 171");
    snprintf(text, sizeof(text), "%sA", good);
    expect_bad_id_text(text, KCCL_ERR_INVALID_ARG, "172+ characters, expected 171");
    snprintf(text, sizeof(text), "%s%s", good, good);
    expect_bad_id_text(text, KCCL_ERR_INVALID_ARG, "characters, expected 171");
    snprintf(text, sizeof(text), "%s\n", good); /* pasted with its newline */
    expect_bad_id_text(text, KCCL_ERR_INVALID_ARG, "expected 171");
    static const char bad_chars[] = {'!', '+', '/', '=', ' ', '\x80'};
    for (size_t i = 0; i < sizeof(bad_chars); i++) {
        snprintf(text, sizeof(text), "%s", good);
        text[40] = bad_chars[i];
        expect_bad_id_text(text, KCCL_ERR_INVALID_ARG, "outside the base64url alphabet");
    }
    /* One flipped character anywhere in the body: the checksum catches it. */
    for (int pos = 0; pos < KCCL_UNIQUE_ID_STRLEN - 1; pos += 17) {
        snprintf(text, sizeof(text), "%s", good);
        text[pos] = text[pos] == 'A' ? 'B' : 'A';
        expect_bad_id_text(text, KCCL_ERR_INVALID_ARG,
                           pos < 6 ? "malformed unique id" : "checksum mismatch");
    }
    /* A damaged binary id given straight to kccl_bootstrap_create. */
    kccl_bootstrap_t bs = NULL;
    back = id;
    back.internal[30] ^= 0x10;
    assert_int_equal(kccl_bootstrap_create(&back, 0, 2, &o, &bs), KCCL_ERR_INVALID_ARG);
    assert_null(bs);
    assert_non_null(strstr(kccl_last_error(), "checksum mismatch"));
    char addr[64];
    assert_int_equal(kccl_unique_id_address(&back, addr, sizeof(addr)), KCCL_ERR_INVALID_ARG);
}

/* The root's port is taken: rank 0 says so at once, not at the timeout. */
static void test_root_port_in_use(void **state)
{
    (void)state;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    assert_true(lfd >= 0);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(lfd, 4), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);
    unsigned port = ntohs(sin.sin_port);

    kccl_uid_fields_t f;
    kccl_unique_id_t id;
    memset(&f, 0, sizeof(f));
    f.version = KCCL_UID_VERSION;
    f.root.family = 4;
    f.root.port = (uint16_t)port;
    memcpy(f.root.addr, &sin.sin_addr, 4);
    att_random((uint64_t)getpid(), f.nonce, sizeof(f.nonce));
    kccl_uid_encode(&f, &id);

    kccl_bootstrap_opts_t o;
    kccl_bootstrap_t bs = NULL;
    mp_test_opts(&o, 5000);
    int64_t t0 = mp_now_ms();
    kccl_status_t st = kccl_bootstrap_create(&id, 0, 2, &o, &bs);
    int64_t dt = mp_now_ms() - t0;
    print_message("create as root on a taken port: %s after %lld ms: %s\n", kccl_status_name(st),
                  (long long)dt, kccl_last_error());
    assert_int_equal(st, KCCL_ERR_ADDR_IN_USE);
    assert_null(bs);
    assert_true(dt < 1000);
    char want[32];
    snprintf(want, sizeof(want), "127.0.0.1:%u", port);
    assert_non_null(strstr(kccl_last_error(), want));
    assert_non_null(strstr(kccl_last_error(), "port is already in use"));
    close(lfd);
}

/* No secret and no opt-in: refused with the remedy, before any I/O. */
static void test_no_secret(void **state)
{
    (void)state;
    kccl_bootstrap_opts_t o;
    kccl_unique_id_t id;
    kccl_bootstrap_t bs = NULL;
    mp_test_opts(&o, T_MS);
    o.has_secret = 0;
    memset(o.secret, 0, sizeof(o.secret));
    mp_make_id(&o, &id);
    for (int r = 0; r < 2; r++) {
        int64_t t0 = mp_now_ms();
        assert_int_equal(kccl_bootstrap_create(&id, r, 2, &o, &bs), KCCL_ERR_AUTH);
        assert_null(bs);
        assert_true(mp_now_ms() - t0 < 1000);
        const char *e = kccl_last_error();
        if (!strstr(e, "no group secret") || !strstr(e, "KCCL_GROUP_SECRET_FILE") ||
            !strstr(e, "KCCL_BOOTSTRAP_INSECURE=1"))
            fail_msg("rank %d: the error does not give the remedy: %s", r, e);
    }
    kccl_unique_id_release(&id);
}

/* With the explicit opt-in (option or environment) a group runs without a secret. */
static int insecure_proc(mp_t *mp, int p, void *arg)
{
    fault_group_t *g = arg;
    kccl_bootstrap_opts_t o = g->opts;
    kccl_bootstrap_t bs;
    if (p % 2) { /* from the environment */
        unsetenv("KCCL_GROUP_SECRET");
        unsetenv("KCCL_GROUP_SECRET_FILE");
        setenv("KCCL_BOOTSTRAP_INSECURE", "1", 1);
        MP_CHECK_OK(kccl_bootstrap_opts_from_env(&o));
        MP_CHECK(o.insecure == 1 && o.has_secret == 0, "opts from the environment");
        o.timeout_ms = g->opts.timeout_ms;
        snprintf(o.ifname, sizeof(o.ifname), "lo");
    }
    MP_CHECK_OK(kccl_bootstrap_create(&g->id, p, g->nranks, &o, &bs));
    __atomic_store_n(&mp_self()->progress, 1, __ATOMIC_RELEASE);
    mp_flag_set(mp, FLAG_DONE, 1);
    return fault_serve_until_done(mp, bs);
}

static void test_insecure_opt_in(void **state)
{
    (void)state;
    fault_group_t g;
    memset(&g, 0, sizeof(g));
    g.nranks = 3;
    g.held_proc = -1;
    mp_test_opts(&g.opts, T_MS);
    g.opts.has_secret = 0;
    g.opts.insecure = 1;
    mp_make_id(&g.opts, &g.id);
    mp_t *mp = fault_start(&g, "insecure", 3, insecure_proc, NULL);
    mp_wait_all(mp);
    mp_assert_all_ok(mp);
    fault_assert_logged(mp, 0, "WITHOUT a group secret");
    mp_free(mp);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_attack_bad_magic, mp_cleanup_all),
        cmocka_unit_test_teardown(test_attack_bad_version, mp_cleanup_all),
        cmocka_unit_test_teardown(test_attack_wrong_group_nonce, mp_cleanup_all),
        cmocka_unit_test_teardown(test_attack_wrong_kind, mp_cleanup_all),
        cmocka_unit_test_teardown(test_attack_wrong_secret, mp_cleanup_all),
        cmocka_unit_test_teardown(test_attack_truncated_then_close, mp_cleanup_all),
        cmocka_unit_test_teardown(test_attack_truncated_then_silent, mp_cleanup_all),
        cmocka_unit_test_teardown(test_attack_length_over_handshake_limit, mp_cleanup_all),
        cmocka_unit_test_teardown(test_attack_absurd_length, mp_cleanup_all),
        cmocka_unit_test_teardown(test_attack_random_bytes, mp_cleanup_all),
        cmocka_unit_test_teardown(test_attack_port_scan, mp_cleanup_all),
        cmocka_unit_test_teardown(test_attack_duplicate_rank_hello, mp_cleanup_all),
        cmocka_unit_test_teardown(test_attack_world_size_hello, mp_cleanup_all),
        cmocka_unit_test_teardown(test_rank_out_of_range, mp_cleanup_all),
        cmocka_unit_test_teardown(test_malformed_unique_id_strings, mp_cleanup_all),
        cmocka_unit_test_teardown(test_root_port_in_use, mp_cleanup_all),
        cmocka_unit_test_teardown(test_no_secret, mp_cleanup_all),
        cmocka_unit_test_teardown(test_insecure_opt_in, mp_cleanup_all),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests_name("bootstrap_faults", tests, NULL, NULL);
}

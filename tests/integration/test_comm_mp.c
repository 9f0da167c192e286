/*
 * test_comm_mp.c - communicators across real processes on loopback.
 *
 * kccl_comm_init_rank with two fake nodes (KCCL_HOST_ID) and the
 * local_rank/local_size it derives; kccl_comm_init_from_env from the
 * environment (kccl-run's contract) and from a KCCL_BOOTSTRAP_FILE handoff
 * that appears only after the ranks started waiting (kccl-sidecar's
 * contract); malformed handoff files fail with KCCL_ERR_PROTOCOL naming the
 * file and the line; a missing one times out; a malformed KCCL_UNIQUE_ID is
 * refused with KCCL_ERR_INVALID_ARG.
 */
#include <pthread.h>
#include <stdio.h>

#include "kccl/kccl_comm.h"
#include "kccl_test.h"
#include "mp.h"

#define TIMEOUT_MS 5000

typedef struct {
    int nranks;
    kccl_unique_id_t id;
    char id_text[KCCL_UNIQUE_ID_STRLEN + 1];
    kccl_bootstrap_opts_t opts;
    char dir[256];
    char secret_file[300];
} comm_case_t;

/* Nodes: ranks 0, 1 and 3 on node-a, rank 2 alone on node-b. */
static const char *node_of(int rank)
{
    return rank == 2 ? "itest-node-b" : "itest-node-a";
}

static int expected_local(int rank, int nranks, int *local_size)
{
    int lr = 0;
    *local_size = 0;
    for (int p = 0; p < nranks; p++) {
        if (strcmp(node_of(p), node_of(rank)) == 0) {
            lr += p < rank;
            (*local_size)++;
        }
    }
    return lr;
}

/* Checks a communicator's view of the group, then uses its bootstrap. */
static int check_comm(kccl_comm_t comm, int rank, int nranks)
{
    int ls;
    int lr = expected_local(rank, nranks, &ls);
    MP_CHECK(kccl_comm_rank(comm) == rank && kccl_comm_size(comm) == nranks,
             "rank %d size %d, expected %d of %d", kccl_comm_rank(comm), kccl_comm_size(comm), rank,
             nranks);
    MP_CHECK(kccl_comm_local_rank(comm) == lr && kccl_comm_local_size(comm) == ls,
             "local %d of %d, expected %d of %d", kccl_comm_local_rank(comm),
             kccl_comm_local_size(comm), lr, ls);
    for (int p = 0; p < nranks; p++)
        MP_CHECK(strcmp(kccl_comm_host_id(comm, p), node_of(p)) == 0, "host id of %d is '%s'", p,
                 kccl_comm_host_id(comm, p));
    MP_CHECK(strcmp(kccl_comm_host_id(comm, nranks), "") == 0, "host id of a bad rank");
    double s = kccl_comm_bootstrap_seconds(comm);
    MP_CHECK(s > 0 && s < TIMEOUT_MS / 1000.0, "bootstrap took %f s", s);
    kccl_bootstrap_t bs = kccl_comm_bootstrap(comm);
    MP_CHECK(bs != NULL && kccl_bootstrap_rank(bs) == rank, "the comm's bootstrap");
    for (int p = 0; p < nranks; p++)
        MP_CHECK((kccl_bootstrap_host_hash(bs, p) == kccl_bootstrap_host_hash(bs, rank)) ==
                     (strcmp(node_of(p), node_of(rank)) == 0),
                 "host hash of %d", p);
    MP_CHECK_OK(kccl_bootstrap_barrier(bs));
    return 0;
}

static void case_init(comm_case_t *c, int nranks)
{
    memset(c, 0, sizeof(*c));
    c->nranks = nranks;
    mp_test_opts(&c->opts, TIMEOUT_MS);
    c->opts.host_id[0] = '\0';
    mp_make_id(&c->opts, &c->id);
    assert_int_equal(kccl_unique_id_to_string(&c->id, c->id_text, sizeof(c->id_text)), KCCL_OK);
    kccl_test_mkdtemp(c->dir);
    snprintf(c->secret_file, sizeof(c->secret_file), "%s/secret", c->dir);
    char hex[2 * KCCL_GROUP_SECRET_BYTES + 2];
    for (int i = 0; i < KCCL_GROUP_SECRET_BYTES; i++)
        snprintf(hex + 2 * i, 3, "%02x", mp_test_secret[i]);
    strcat(hex, "\n");
    kccl_test_write_file(c->secret_file, hex, strlen(hex), 0600);
}

static void case_fini(comm_case_t *c)
{
    char path[400];
    for (int r = 0; r < c->nranks; r++) {
        snprintf(path, sizeof(path), "%s/handoff-%d", c->dir, r);
        unlink(path);
    }
    unlink(c->secret_file);
    rmdir(c->dir);
}

/* What a proc's environment must not carry in from the runner's. */
static void clear_kccl_env(void)
{
    static const char *const vars[] = {"KCCL_RANK",
                                       "KCCL_WORLD_SIZE",
                                       "KCCL_UNIQUE_ID",
                                       "KCCL_GROUP_SECRET",
                                       "KCCL_GROUP_SECRET_FILE",
                                       "KCCL_BOOTSTRAP_FILE",
                                       "KCCL_BOOTSTRAP_INSECURE",
                                       "KCCL_BOOTSTRAP_ROOT_FD",
                                       "KCCL_NODE_NAME",
                                       "KCCL_HOST_ID",
                                       "KCCL_BOOTSTRAP_ALGO",
                                       "KCCL_BOOTSTRAP_RING_MAX",
                                       "KCCL_SOCKET_FAMILY",
                                       "KCCL_EPOCH"};
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(vars); i++)
        unsetenv(vars[i]);
    setenv("KCCL_SOCKET_IFNAME", "lo", 1);
    setenv("KCCL_BOOTSTRAP_TIMEOUT", "5", 1);
}

static void run_case(comm_case_t *c, const char *name, mp_fn fn, int root_proc)
{
    mp_opts_t mo = {.name = name,
                    .nprocs = c->nranks,
                    .deadline_ms = 20000,
                    .fn = fn,
                    .arg = c,
                    .ids = &c->id,
                    .nids = 1,
                    .root_proc = root_proc};
    mp_t *mp = mp_start(&mo);
    mp_wait_all(mp);
    mp_assert_all_ok(mp);
    mp_free(mp);
}

/* ------------------------------------------------------- init_rank */

static int init_rank_proc(mp_t *mp, int r, void *arg)
{
    comm_case_t *c = arg;
    kccl_comm_t comm;
    (void)mp;
    setenv("KCCL_HOST_ID", node_of(r), 1);
    MP_CHECK_OK(kccl_comm_init_rank(&c->id, r, c->nranks, &c->opts, &comm));
    if (check_comm(comm, r, c->nranks))
        return 1;
    kccl_comm_destroy(comm);
    kccl_comm_destroy(NULL);
    return 0;
}

static void test_comm_init_rank_two_nodes(void **state)
{
    (void)state;
    comm_case_t c;
    case_init(&c, 4);
    run_case(&c, "comm_init_rank", init_rank_proc, 0);
    case_fini(&c);
}

/* -------------------------------------------------------- from env */

static int from_env_proc(mp_t *mp, int r, void *arg)
{
    comm_case_t *c = arg;
    kccl_comm_t comm;
    char v[16];
    (void)mp;
    clear_kccl_env();
    snprintf(v, sizeof(v), "%d", r);
    setenv("KCCL_RANK", v, 1);
    snprintf(v, sizeof(v), "%d", c->nranks);
    setenv("KCCL_WORLD_SIZE", v, 1);
    setenv("KCCL_UNIQUE_ID", c->id_text, 1);
    setenv("KCCL_GROUP_SECRET_FILE", c->secret_file, 1);
    setenv("KCCL_SOCKET_FAMILY", "AF_INET", 1);
    setenv("KCCL_HOST_ID", node_of(r), 1);
    MP_CHECK_OK(kccl_comm_init_from_env(&comm));
    if (check_comm(comm, r, c->nranks))
        return 1;
    kccl_comm_destroy(comm);
    return 0;
}

static void test_comm_init_from_env(void **state)
{
    (void)state;
    comm_case_t c;
    case_init(&c, 3);
    run_case(&c, "comm_from_env", from_env_proc, 0);
    case_fini(&c);
}

/* --------------------------------------------------- handoff file */

#define FLAG_FILES       0
#define HANDOFF_DELAY_MS 300

/* Proc p is given rank (p + 1) % n by its file, whatever KCCL_RANK says. */
static int handoff_rank(int proc, int n)
{
    return (proc + 1) % n;
}

static int handoff_proc(mp_t *mp, int p, void *arg)
{
    comm_case_t *c = arg;
    kccl_comm_t comm;
    char path[400];
    clear_kccl_env();
    snprintf(path, sizeof(path), "%s/handoff-%d", c->dir, p);
    setenv("KCCL_BOOTSTRAP_FILE", path, 1);
    setenv("KCCL_RANK", "99", 1); /* the file wins */
    setenv("KCCL_WORLD_SIZE", "1", 1);
    MP_CHECK(mp_flag_get(mp, FLAG_FILES) == 0, "the handoff was written before the wait began");
    __atomic_store_n(&mp_self()->progress, 1, __ATOMIC_RELEASE);
    int64_t t0 = mp_now_ms();
    MP_CHECK_OK(kccl_comm_init_from_env(&comm));
    mp_self()->elapsed_ms = mp_now_ms() - t0;
    MP_CHECK(mp_flag_get(mp, FLAG_FILES) == 1, "init returned before the handoff was written");
    if (check_comm(comm, handoff_rank(p, c->nranks), c->nranks))
        return 1;
    kccl_comm_destroy(comm);
    return 0;
}

static void write_handoff(const comm_case_t *c, int p)
{
    char path[400], tmp[420], text[1024];
    int r = handoff_rank(p, c->nranks);
    snprintf(path, sizeof(path), "%s/handoff-%d", c->dir, p);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    snprintf(text, sizeof(text),
             "# kccl handoff written by test_comm_mp\n"
             "KCCL_UNIQUE_ID=%s\nKCCL_RANK=%d\nKCCL_WORLD_SIZE=%d\nKCCL_EPOCH=3\n"
             "KCCL_HOST_ID=%s\r\nKCCL_GROUP_SECRET_FILE=%s\n\nKCCL_FROM_A_NEWER_SIDECAR=1\n",
             c->id_text, r, c->nranks, node_of(r), c->secret_file);
    kccl_test_write_file(tmp, text, strlen(text), 0644);
    assert_int_equal(rename(tmp, path), 0);
}

static void test_comm_init_from_handoff_file(void **state)
{
    (void)state;
    comm_case_t c;
    case_init(&c, 3);
    /* The proc whose file says rank 0 holds the root's listener. */
    int root_proc = c.nranks - 1;
    mp_opts_t mo = {.name = "comm_handoff",
                    .nprocs = c.nranks,
                    .deadline_ms = 20000,
                    .fn = handoff_proc,
                    .arg = &c,
                    .ids = &c.id,
                    .nids = 1,
                    .root_proc = root_proc};
    mp_t *mp = mp_start(&mo);
    for (int p = 0; p < c.nranks; p++)
        assert_int_equal(mp_progress_wait(mp, p, 1, 10000), 0);
    mp_sleep_ms(HANDOFF_DELAY_MS);
    mp_flag_set(mp, FLAG_FILES, 1);
    for (int p = 0; p < c.nranks; p++)
        write_handoff(&c, p);
    mp_wait_all(mp);
    mp_assert_all_ok(mp);
    for (int p = 0; p < c.nranks; p++)
        assert_true(mp_slot(mp, p)->elapsed_ms >= HANDOFF_DELAY_MS - 20);
    mp_free(mp);
    case_fini(&c);
}

/* ---------------------------------------- the handoff changes mid-bootstrap */

/*
 * A new epoch while ranks bootstrap: members first get a stale handoff (an id whose root
 * nobody serves any more, epoch 3), the root rank the live one. The sidecar then rewrites
 * the members' files (epoch 4, the live id): they must abort the stale attempt and form the
 * group at once, long before the 20 s bootstrap deadline.
 */
#define FLAG_REWRITTEN  1
#define REFORM_DELAY_MS 500

static void write_handoff_text(const comm_case_t *c, int p, const char *id_text, int epoch)
{
    char path[400], tmp[420], text[1024];
    snprintf(path, sizeof(path), "%s/handoff-%d", c->dir, p);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    snprintf(text, sizeof(text),
             "KCCL_UNIQUE_ID=%s\nKCCL_RANK=%d\nKCCL_WORLD_SIZE=%d\nKCCL_EPOCH=%d\n"
             "KCCL_HOST_ID=%s\nKCCL_GROUP_SECRET_FILE=%s\n",
             id_text, p, c->nranks, epoch, node_of(p), c->secret_file);
    kccl_test_write_file(tmp, text, strlen(text), 0644);
    assert_int_equal(rename(tmp, path), 0);
}

static int reform_proc(mp_t *mp, int p, void *arg)
{
    comm_case_t *c = arg;
    kccl_comm_t comm;
    char path[400];
    clear_kccl_env();
    snprintf(path, sizeof(path), "%s/handoff-%d", c->dir, p);
    setenv("KCCL_BOOTSTRAP_FILE", path, 1);
    setenv("KCCL_BOOTSTRAP_TIMEOUT", "20", 1);
    int64_t t0 = mp_now_ms();
    MP_CHECK_OK(kccl_comm_init_from_env(&comm));
    mp_self()->elapsed_ms = mp_now_ms() - t0;
    MP_CHECK(p == 0 || mp_flag_get(mp, FLAG_REWRITTEN) == 1,
             "rank %d formed a group before its handoff named it", p);
    if (check_comm(comm, p, c->nranks))
        return 1;
    kccl_comm_destroy(comm);
    return 0;
}

static void test_comm_handoff_reform(void **state)
{
    (void)state;
    comm_case_t c;
    case_init(&c, 3);
    /* A stale id: a root address nobody listens on any more. */
    kccl_unique_id_t stale;
    char stale_text[KCCL_UNIQUE_ID_STRLEN + 1];
    assert_int_equal(kccl_unique_id_create(&c.opts, &stale), KCCL_OK);
    kccl_unique_id_release(&stale);
    assert_int_equal(kccl_unique_id_to_string(&stale, stale_text, sizeof(stale_text)), KCCL_OK);
    write_handoff_text(&c, 0, c.id_text, 4);
    for (int p = 1; p < c.nranks; p++)
        write_handoff_text(&c, p, stale_text, 3);
    mp_opts_t mo = {.name = "comm_reform",
                    .nprocs = c.nranks,
                    .deadline_ms = 30000,
                    .fn = reform_proc,
                    .arg = &c,
                    .ids = &c.id,
                    .nids = 1,
                    .root_proc = 0};
    mp_t *mp = mp_start(&mo);
    mp_sleep_ms(REFORM_DELAY_MS);
    mp_flag_set(mp, FLAG_REWRITTEN, 1);
    for (int p = 1; p < c.nranks; p++)
        write_handoff_text(&c, p, c.id_text, 4);
    mp_wait_all(mp);
    mp_assert_all_ok(mp);
    for (int p = 1; p < c.nranks; p++)
        assert_true(mp_slot(mp, p)->elapsed_ms < 8000);
    mp_free(mp);
    case_fini(&c);
}

/* ------------------------------------------ two ranks, one process */

/*
 * One process driving two ranks from two threads (one per GPU, as NCCL
 * programs do), a second process driving the other two: concurrent
 * kccl_comm_init_rank in one address space must work, and under TSan must
 * show no data race in the library's process-wide state (held listeners,
 * logging, host id, secrets).
 */
typedef struct {
    comm_case_t *c;
    int rank;
    int rc;
    char fail[MP_MSG];
} thread_rank_t;

static void *thread_rank_main(void *arg)
{
    thread_rank_t *t = arg;
    kccl_comm_t comm;
    kccl_status_t st = kccl_comm_init_rank(&t->c->id, t->rank, t->c->nranks, &t->c->opts, &comm);
    if (st != KCCL_OK) {
        snprintf(t->fail, sizeof(t->fail), "rank %d: init: %s: %s", t->rank, kccl_status_name(st),
                 kccl_last_error());
        t->rc = 1;
        return NULL;
    }
    kccl_bootstrap_t bs = kccl_comm_bootstrap(comm);
    int all[4] = {0};
    all[t->rank] = 100 + t->rank;
    st = kccl_bootstrap_all_gather(bs, all, sizeof(int));
    for (int p = 0; st == KCCL_OK && p < t->c->nranks; p++)
        if (all[p] != 100 + p)
            st = KCCL_ERR_PROTOCOL;
    if (st == KCCL_OK)
        st = kccl_bootstrap_barrier(bs);
    if (st != KCCL_OK) {
        snprintf(t->fail, sizeof(t->fail), "rank %d: collectives: %s: %s", t->rank,
                 kccl_status_name(st), kccl_last_error());
        t->rc = 1;
    }
    kccl_comm_destroy(comm);
    return NULL;
}

static int two_threads_proc(mp_t *mp, int p, void *arg)
{
    comm_case_t *c = arg;
    thread_rank_t t[2];
    pthread_t th[2];
    (void)mp;
    for (int i = 0; i < 2; i++) {
        memset(&t[i], 0, sizeof(t[i]));
        t[i].c = c;
        t[i].rank = 2 * p + i;
        MP_CHECK(pthread_create(&th[i], NULL, thread_rank_main, &t[i]) == 0, "pthread_create");
    }
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++)
        MP_CHECK(t[i].rc == 0, "%s", t[i].fail);
    return 0;
}

static void test_comm_two_ranks_per_process(void **state)
{
    (void)state;
    comm_case_t c;
    case_init(&c, 4);
    snprintf(c.opts.host_id, sizeof(c.opts.host_id), "itest-host");
    mp_opts_t mo = {.name = "comm_threads",
                    .nprocs = 2,
                    .deadline_ms = 20000,
                    .fn = two_threads_proc,
                    .arg = &c,
                    .ids = &c.id,
                    .nids = 1};
    mp_t *mp = mp_start(&mo);
    mp_wait_all(mp);
    mp_assert_all_ok(mp);
    mp_free(mp);
    case_fini(&c);
}

/* ------------------------------------------------ malformed handoffs */

typedef struct {
    const char *text; /* %s: a valid unique id */
    kccl_status_t status;
    const char *says;
} bad_handoff_t;

static const bad_handoff_t bad_handoffs[] = {
    {"KCCL_UNIQUE_ID=%s\nKCCL_RANK=0\nKCCL_WORLD_SIZE=2\nthis line is bad\n", KCCL_ERR_PROTOCOL,
     "line 4 is not KEY=value"},
    {"# comment\nKCCL_RANK=zero\nKCCL_UNIQUE_ID=%s\nKCCL_WORLD_SIZE=2\n", KCCL_ERR_PROTOCOL,
     "line 2 (KCCL_RANK): bad KCCL_RANK"},
    {"KCCL_UNIQUE_ID=%s\nKCCL_RANK=0\nKCCL_RANK=1\nKCCL_WORLD_SIZE=2\n", KCCL_ERR_PROTOCOL,
     "line 3 (KCCL_RANK): key given twice"},
    {"KCCL_UNIQUE_ID=%s\nPATH=/bin\nKCCL_RANK=0\nKCCL_WORLD_SIZE=2\n", KCCL_ERR_PROTOCOL,
     "line 2 (PATH): unknown key"},
    {"KCCL_UNIQUE_ID=%.100s\nKCCL_RANK=0\nKCCL_WORLD_SIZE=2\n", KCCL_ERR_PROTOCOL,
     "line 1 (KCCL_UNIQUE_ID): KCCL_UNIQUE_ID has the wrong length"},
    {"KCCL_UNIQUE_ID=%s\nKCCL_RANK=0\n", KCCL_ERR_PROTOCOL, "are all required"},
    {"KCCL_UNIQUE_ID=%s\nKCCL_RANK=2\nKCCL_WORLD_SIZE=2\n", KCCL_ERR_PROTOCOL,
     "KCCL_RANK 2 is not below KCCL_WORLD_SIZE 2"},
    {"KCCL_UNIQUE_ID=%s\nKCCL_RANK=0\nKCCL_WORLD_SIZE=2\nKCCL_GROUP_SECRET_FILE=secret\n",
     KCCL_ERR_PROTOCOL,
     "line 4 (KCCL_GROUP_SECRET_FILE): KCCL_GROUP_SECRET_FILE must be an "
     "absolute path"},
    {"KCCL_UNIQUE_ID=%s\nKCCL_RANK=-1\nKCCL_WORLD_SIZE=2\n", KCCL_ERR_PROTOCOL,
     "line 2 (KCCL_RANK): bad KCCL_RANK"},
    {"KCCL_UNIQUE_ID=%s\nKCCL_RANK=0\nKCCL_WORLD_SIZE=0\n", KCCL_ERR_PROTOCOL,
     "line 3 (KCCL_WORLD_SIZE): bad KCCL_WORLD_SIZE"},
};

static int bad_handoff_proc(mp_t *mp, int p, void *arg)
{
    comm_case_t *c = arg;
    char path[600], text[1024];
    kccl_comm_t comm = NULL;
    clear_kccl_env();
    setenv("KCCL_BOOTSTRAP_TIMEOUT", "2", 1);
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(bad_handoffs); i++) {
        const bad_handoff_t *b = &bad_handoffs[i];
        snprintf(path, sizeof(path), "%s/bad-handoff-%zu", mp_dir(mp), i);
        int n = snprintf(text, sizeof(text), b->text, c->id_text);
        kccl_test_write_file(path, text, (size_t)n, 0644);
        setenv("KCCL_BOOTSTRAP_FILE", path, 1);
        int64_t t0 = mp_now_ms();
        kccl_status_t st = kccl_comm_init_from_env(&comm);
        MP_CHECK(st == b->status, "case %zu: %s (%s)", i, kccl_status_name(st), kccl_last_error());
        MP_CHECK(strstr(kccl_last_error(), b->says) && strstr(kccl_last_error(), path),
                 "case %zu: '%s' does not say '%s' and name the file", i, kccl_last_error(),
                 b->says);
        MP_CHECK(mp_now_ms() - t0 < 1000, "case %zu took %lld ms", i,
                 (long long)(mp_now_ms() - t0));
        MP_CHECK(comm == NULL, "case %zu: output set on failure", i);
    }
    /* A NUL byte inside the file. */
    snprintf(path, sizeof(path), "%s/bad-handoff-nul", mp_dir(mp));
    kccl_test_write_file(path, "KCCL_RANK=0\n\0\n", 14, 0644);
    setenv("KCCL_BOOTSTRAP_FILE", path, 1);
    MP_CHECK(kccl_comm_init_from_env(&comm) == KCCL_ERR_PROTOCOL, "NUL byte accepted");
    MP_CHECK(strstr(kccl_last_error(), "NUL") != NULL, "%s", kccl_last_error());
    /* Well-formed lines, but the id inside is not an id. */
    char bad_id[KCCL_UNIQUE_ID_STRLEN + 1];
    memcpy(bad_id, c->id_text, sizeof(bad_id));
    bad_id[10] = '!';
    snprintf(text, sizeof(text), "KCCL_UNIQUE_ID=%s\nKCCL_RANK=0\nKCCL_WORLD_SIZE=2\n", bad_id);
    kccl_test_write_file(path, text, strlen(text), 0644);
    MP_CHECK(kccl_comm_init_from_env(&comm) == KCCL_ERR_INVALID_ARG, "bad id in the handoff");
    MP_CHECK(strstr(kccl_last_error(), "base64url") != NULL, "%s", kccl_last_error());
    /* No file at all: waits out the deadline, then says what to check. */
    snprintf(path, sizeof(path), "%s/never-written", mp_dir(mp));
    setenv("KCCL_BOOTSTRAP_FILE", path, 1);
    setenv("KCCL_BOOTSTRAP_TIMEOUT", "0.3", 1);
    int64_t t0 = mp_now_ms();
    MP_CHECK(kccl_comm_init_from_env(&comm) == KCCL_ERR_TIMED_OUT, "missing file: %s",
             kccl_last_error());
    int64_t dt = mp_now_ms() - t0;
    MP_CHECK(dt >= 280 && dt < 2000, "missing file: gave up after %lld ms", (long long)dt);
    MP_CHECK(strstr(kccl_last_error(), "did not appear") && strstr(kccl_last_error(), path), "%s",
             kccl_last_error());
    /* Environment path: a malformed KCCL_UNIQUE_ID. */
    unsetenv("KCCL_BOOTSTRAP_FILE");
    bad_id[10] = c->id_text[10] == 'A' ? 'B' : 'A'; /* valid alphabet, bad checksum */
    setenv("KCCL_UNIQUE_ID", bad_id, 1);
    setenv("KCCL_RANK", "0", 1);
    setenv("KCCL_WORLD_SIZE", "2", 1);
    MP_CHECK(kccl_comm_init_from_env(&comm) == KCCL_ERR_INVALID_ARG, "bad KCCL_UNIQUE_ID");
    MP_CHECK(strstr(kccl_last_error(), "checksum") != NULL, "%s", kccl_last_error());
    /* And rank outside the world. */
    setenv("KCCL_UNIQUE_ID", c->id_text, 1);
    setenv("KCCL_RANK", "2", 1);
    MP_CHECK(kccl_comm_init_from_env(&comm) == KCCL_ERR_CONFIG, "KCCL_RANK=2 of 2");
    MP_CHECK(strstr(kccl_last_error(), "KCCL_RANK=2") != NULL, "%s", kccl_last_error());
    (void)p;
    return 0;
}

static void test_comm_handoff_malformed(void **state)
{
    (void)state;
    comm_case_t c;
    case_init(&c, 1);
    kccl_unique_id_release(&c.id); /* its text is used, never its listener */
    mp_opts_t mo = {.name = "comm_bad_handoff",
                    .nprocs = 1,
                    .deadline_ms = 20000,
                    .fn = bad_handoff_proc,
                    .arg = &c};
    mp_t *mp = mp_start(&mo);
    mp_wait_all(mp);
    mp_assert_all_ok(mp);
    mp_free(mp);
    case_fini(&c);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_comm_init_rank_two_nodes, mp_cleanup_all),
        cmocka_unit_test_teardown(test_comm_init_from_env, mp_cleanup_all),
        cmocka_unit_test_teardown(test_comm_init_from_handoff_file, mp_cleanup_all),
        cmocka_unit_test_teardown(test_comm_handoff_reform, mp_cleanup_all),
        cmocka_unit_test_teardown(test_comm_two_ranks_per_process, mp_cleanup_all),
        cmocka_unit_test_teardown(test_comm_handoff_malformed, mp_cleanup_all),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests_name("comm_mp", tests, NULL, NULL);
}

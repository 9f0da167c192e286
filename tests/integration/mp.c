/*
 * mp.c - the multi-process harness behind mp.h: fork, watchdogs, shared
 * result slots, reaping, reporting, and the loopback group options.
 */
#include "mp.h"

/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

typedef struct {
    int flags[MP_FLAGS];
    mp_slot_t slot[];
} mp_shared_t;

typedef struct {
    pid_t pid;
    int reaped;
    int wstatus;
    int killed;  /* by mp_kill: not a failure */
    int overdue; /* killed at the group deadline */
} mp_proc_t;

struct mp {
    mp_opts_t o;
    char name[64];
    char dir[512];
    pid_t parent;
    int64_t deadline; /* absolute, mp_now_ms() */
    mp_proc_t *procs;
    mp_shared_t *sh;
    size_t shlen;
    struct mp *next;
};

static mp_t *live_groups;   /* parent: groups not yet freed */
static mp_t *self_group;    /* proc: its group */
static int self_index = -1; /* proc: its number */

const uint8_t mp_test_secret[KCCL_GROUP_SECRET_BYTES] = {
    0x6b, 0x63, 0x63, 0x6c, 0x2d, 0x69, 0x74, 0x65, 0x73, 0x74, 0x2d, 0x73, 0x65, 0x63, 0x72, 0x65,
    0x74, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee};
const uint8_t mp_other_secret[KCCL_GROUP_SECRET_BYTES] = {
    0x6b, 0x63, 0x63, 0x6c, 0x2d, 0x69, 0x74, 0x65, 0x73, 0x74, 0x2d, 0x73, 0x65, 0x63, 0x72, 0x65,
    0x74, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xef};

/* ------------------------------------------------------------------ time */

int64_t mp_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void mp_sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

long mp_env_long(const char *name, long def, long lo, long hi)
{
    const char *v = getenv(name);
    char *end;
    if (v == NULL || *v == '\0')
        return def;
    long x = strtol(v, &end, 10);
    if (*end != '\0')
        return def;
    return x < lo ? lo : x > hi ? hi : x;
}

char *mp_read_file(const char *path)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (buf == NULL)
        return NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    while (fd >= 0) {
        if (cap - len < 2) {
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL)
                break;
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    if (fd >= 0)
        close(fd);
    buf[len] = '\0';
    return buf;
}

/* ----------------------------------------------------------------- procs */

mp_slot_t *mp_self(void)
{
    return self_group ? &self_group->sh->slot[self_index] : NULL;
}

int mp_self_proc(void)
{
    return self_index;
}

void mp_fail_at(const char *file, int line, const char *fmt, ...)
{
    mp_slot_t *s = mp_self();
    char msg[MP_MSG - 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    if (s && s->fail[0] == '\0')
        snprintf(s->fail, sizeof(s->fail), "%s:%d: %s", base, line, msg);
    dprintf(2, "[proc %d] %s:%d: %s\n", self_index, base, line, msg);
}

static void proc_main(mp_t *mp, int i)
{
    /* Die with the runner; and if it already died, do nothing. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != mp->parent)
        _exit(125);
    /* CMocka's crash handlers longjmp into its runner: not in a proc. */
    static const int sigs[] = {SIGFPE, SIGILL, SIGSEGV, SIGBUS, SIGSYS, SIGALRM, SIGABRT};
    for (size_t k = 0; k < sizeof(sigs) / sizeof(sigs[0]); k++)
        signal(sigs[k], SIG_DFL);
    signal(SIGPIPE, SIG_IGN);
    int64_t left = mp->deadline - mp_now_ms();
    alarm((unsigned)((left > 0 ? left : 0) / 1000 + 3));

    self_group = mp;
    self_index = i;
    char path[600];
    snprintf(path, sizeof(path), "%s/p%d.log", mp->dir, i);
    setenv("KCCL_LOG_FILE", path, 1);
    setenv("KCCL_LOG_LEVEL", mp->o.log_level ? mp->o.log_level : "warn", 1);
    kccl_log_reinit();
    for (int k = 0; k < mp->o.nids; k++)
        if (i != mp->o.root_proc)
            kccl_unique_id_release(&mp->o.ids[k]);

    mp_slot_t *s = &mp->sh->slot[i];
    __atomic_store_n(&s->started, 1, __ATOMIC_RELEASE);
    int rc = mp->o.fn(mp, i, mp->o.arg);
    s->rc = rc;
    __atomic_store_n(&s->finished, 1, __ATOMIC_RELEASE);
    exit(rc ? 1 : 0);
}

static void make_dir(mp_t *mp)
{
    const char *base = getenv("TMPDIR");
    if (base == NULL || *base == '\0')
        base = "/tmp";
    snprintf(mp->dir, sizeof(mp->dir), "%s/%s-XXXXXX", base, mp->name);
    if (mkdtemp(mp->dir) == NULL)
        fail_msg("mkdtemp(%s): %s", mp->dir, strerror(errno));
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    char path[1024];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

mp_t *mp_start(const mp_opts_t *o)
{
    if (o->nprocs < 1 || o->nprocs > MP_MAX_PROCS || o->fn == NULL)
        fail_msg("mp_start(%s): bad nprocs %d or no function", o->name, o->nprocs);
    mp_t *mp = calloc(1, sizeof(*mp));
    assert_non_null(mp);
    mp->o = *o;
    snprintf(mp->name, sizeof(mp->name), "%s", o->name ? o->name : "mp");
    mp->o.name = mp->name;
    mp->parent = getpid();
    mp->deadline = mp_now_ms() + o->deadline_ms;
    mp->procs = calloc((size_t)o->nprocs, sizeof(*mp->procs));
    assert_non_null(mp->procs);
    mp->shlen = sizeof(mp_shared_t) + (size_t)o->nprocs * sizeof(mp_slot_t);
    void *sh = mmap(NULL, mp->shlen, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        fail_msg("mmap of %zu shared bytes: %s", mp->shlen, strerror(errno));
    mp->sh = sh;
    make_dir(mp);
    mp->next = live_groups;
    live_groups = mp;

    fflush(NULL); /* or the procs would flush the runner's buffered output again */
    for (int i = 0; i < o->nprocs; i++) {
        pid_t pid = fork();
        if (pid < 0)
            fail_msg("fork of proc %d of %d failed: %s (ulimit -u?)", i, o->nprocs,
                     strerror(errno)); /* teardown kills the ones started */
        if (pid == 0)
            proc_main(mp, i);
        mp->procs[i].pid = pid;
    }
    for (int k = 0; k < o->nids; k++)
        kccl_unique_id_release(&o->ids[k]);
    return mp;
}

int mp_nprocs(const mp_t *mp)
{
    return mp->o.nprocs;
}

pid_t mp_pid(const mp_t *mp, int proc)
{
    return mp->procs[proc].pid;
}

mp_slot_t *mp_slot(mp_t *mp, int proc)
{
    return &mp->sh->slot[proc];
}

const char *mp_dir(const mp_t *mp)
{
    return mp->dir;
}

const char *mp_log_path(const mp_t *mp, int proc, char *buf, size_t len)
{
    snprintf(buf, len, "%s/p%d.log", mp->dir, proc);
    return buf;
}

void mp_flag_set(mp_t *mp, int flag, int value)
{
    __atomic_store_n(&mp->sh->flags[flag], value, __ATOMIC_RELEASE);
}

int mp_flag_get(mp_t *mp, int flag)
{
    return __atomic_load_n(&mp->sh->flags[flag], __ATOMIC_ACQUIRE);
}

int mp_flag_wait(mp_t *mp, int flag, int value, int64_t timeout_ms)
{
    int64_t end = mp_now_ms() + timeout_ms;
    while (mp_flag_get(mp, flag) < value) {
        if (mp_now_ms() >= end)
            return -1;
        mp_sleep_ms(1);
    }
    return 0;
}

int mp_progress_wait(mp_t *mp, int proc, int64_t value, int64_t timeout_ms)
{
    int64_t end = mp_now_ms() + timeout_ms;
    while (__atomic_load_n(&mp->sh->slot[proc].progress, __ATOMIC_ACQUIRE) < value) {
        if (mp_now_ms() >= end || mp->procs[proc].reaped)
            return -1;
        mp_sleep_ms(1);
    }
    return 0;
}

/* --------------------------------------------------------------- reaping */

static int try_reap(mp_t *mp, int i, int block)
{
    mp_proc_t *p = &mp->procs[i];
    if (p->reaped || p->pid <= 0)
        return 1;
    for (;;) {
        pid_t r = waitpid(p->pid, &p->wstatus, block ? 0 : WNOHANG);
        if (r == p->pid) {
            p->reaped = 1;
            return 1;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) { /* not our child any more: treat as gone */
            p->reaped = 1;
            p->wstatus = 0x7f00;
            return 1;
        }
        return 0;
    }
}

void mp_kill(mp_t *mp, int proc)
{
    mp_proc_t *p = &mp->procs[proc];
    if (!p->reaped && p->pid > 0) {
        kill(p->pid, SIGKILL);
        try_reap(mp, proc, 1);
        p->killed = 1;
    }
}

int mp_wait_proc(mp_t *mp, int proc, int64_t timeout_ms)
{
    int64_t end = mp_now_ms() + timeout_ms;
    while (!try_reap(mp, proc, 0)) {
        if (mp_now_ms() >= end)
            return -1;
        mp_sleep_ms(1);
    }
    return 0;
}

int mp_wait_all(mp_t *mp)
{
    int n = mp->o.nprocs;
    for (;;) {
        int left = 0;
        for (int i = 0; i < n; i++)
            left += !try_reap(mp, i, 0);
        if (left == 0)
            break;
        if (mp_now_ms() >= mp->deadline) {
            for (int i = 0; i < n; i++) {
                if (!mp->procs[i].reaped) {
                    kill(mp->procs[i].pid, SIGKILL);
                    mp->procs[i].overdue = 1;
                }
            }
            for (int i = 0; i < n; i++)
                try_reap(mp, i, 1);
            break;
        }
        mp_sleep_ms(2);
    }
    int bad = 0;
    for (int i = 0; i < n; i++)
        bad += !mp->procs[i].killed && !mp_proc_ok(mp, i);
    return bad;
}

int mp_proc_ok(const mp_t *mp, int proc)
{
    const mp_proc_t *p = &mp->procs[proc];
    return p->reaped && !p->overdue && WIFEXITED(p->wstatus) && WEXITSTATUS(p->wstatus) == 0;
}

const char *mp_proc_state(const mp_t *mp, int proc, char *buf, size_t len)
{
    const mp_proc_t *p = &mp->procs[proc];
    if (!p->reaped)
        snprintf(buf, len, "running");
    else if (WIFEXITED(p->wstatus))
        snprintf(buf, len, "exit %d%s", WEXITSTATUS(p->wstatus),
                 WEXITSTATUS(p->wstatus) && mp->sh->slot[proc].finished &&
                         mp->sh->slot[proc].rc == 0
                     ? " after all its checks passed: a sanitizer report (leak, UB, race)?"
                     : "");
    else if (WIFSIGNALED(p->wstatus))
        snprintf(buf, len, "killed by signal %d%s", WTERMSIG(p->wstatus),
                 p->killed                         ? " (by the test)"
                 : p->overdue                      ? " (at the test deadline)"
                 : WTERMSIG(p->wstatus) == SIGALRM ? " (its watchdog)"
                                                   : "");
    else
        snprintf(buf, len, "status 0x%x", p->wstatus);
    return buf;
}

void mp_report_proc(mp_t *mp, int proc)
{
    char state[96], path[600];
    mp_slot_t *s = mp_slot(mp, proc);
    print_message("[%s] proc %d (pid %d): %s; rc %d, status %s, %lld ms\n", mp->name, proc,
                  (int)mp->procs[proc].pid, mp_proc_state(mp, proc, state, sizeof(state)), s->rc,
                  kccl_status_name((kccl_status_t)s->status), (long long)s->elapsed_ms);
    if (s->fail[0])
        print_message("    failed check: %s\n", s->fail);
    if (s->err[0])
        print_message("    last error: %s\n", s->err);
    char *log = mp_read_file(mp_log_path(mp, proc, path, sizeof(path)));
    if (log && *log) {
        size_t len = strlen(log);
        const char *tail = len > 3000 ? log + len - 3000 : log;
        print_message("    log %s (tail):\n%s\n", path, tail);
    }
    free(log);
}

void mp_assert_all_ok(mp_t *mp)
{
    int bad = 0;
    for (int i = 0; i < mp->o.nprocs; i++) {
        if (mp->procs[i].killed || mp_proc_ok(mp, i))
            continue;
        if (bad++ < 8)
            mp_report_proc(mp, i);
    }
    if (bad)
        fail_msg("[%s] %d of %d procs failed (first ones above)", mp->name, bad, mp->o.nprocs);
}

void mp_free(mp_t *mp)
{
    if (mp == NULL)
        return;
    int clean = 1;
    for (int i = 0; i < mp->o.nprocs; i++) {
        if (!mp->procs[i].reaped && mp->procs[i].pid > 0) {
            kill(mp->procs[i].pid, SIGKILL);
            try_reap(mp, i, 1);
            clean = 0;
        }
        clean &= mp->procs[i].killed || mp_proc_ok(mp, i);
    }
    for (mp_t **pp = &live_groups; *pp; pp = &(*pp)->next) {
        if (*pp == mp) {
            *pp = mp->next;
            break;
        }
    }
    if (clean)
        remove_dir(mp->dir); /* a failed group keeps its logs */
    else
        print_message("[%s] logs kept in %s\n", mp->name, mp->dir);
    munmap(mp->sh, mp->shlen);
    free(mp->procs);
    free(mp);
}

int mp_cleanup_all(void **state)
{
    (void)state;
    while (live_groups)
        mp_free(live_groups);
    return 0;
}

/* ------------------------------------------------------------------ kccl */

void mp_test_opts(kccl_bootstrap_opts_t *o, int64_t timeout_ms)
{
    memset(o, 0, sizeof(*o));
    o->timeout_ms = timeout_ms;
    o->has_secret = 1;
    memcpy(o->secret, mp_test_secret, sizeof(o->secret));
    snprintf(o->ifname, sizeof(o->ifname), "lo");
    o->family = 4;
    snprintf(o->host_id, sizeof(o->host_id), "itest-host");
    o->algo = KCCL_BOOTSTRAP_ALGO_AUTO;
    o->ring_max = 4;
    o->root_fd = -1;
}

void mp_make_id(const kccl_bootstrap_opts_t *o, kccl_unique_id_t *id)
{
    kccl_status_t st = kccl_unique_id_create(o, id);
    if (st != KCCL_OK)
        fail_msg("kccl_unique_id_create: %s: %s", kccl_status_name(st), kccl_last_error());
}

/*
 * kccl_run.c - kccl-run, the local launcher: `kccl-run -n N [options] PROG ARGS...`.
 *
 * This file owns the launcher's life cycle: options, the group secret (a
 * fresh 32-byte key in a private temp dir that is removed on every way out:
 * normal exit, failure, and the signals the launcher handles), the unique id
 * (created detached, so the root listener is bound before any rank starts
 * and is handed to rank 0 as an inherited descriptor), the group-wide
 * environment, and the start of every rank. kccl_run_loop.c then supervises
 * the group. See kccl_run.h for the map of the other files.
 *
 * The secret is never printed: only the path of its file travels, in
 * KCCL_GROUP_SECRET_FILE. The unique id never embeds it.
 */
#include "tools/kccl_run.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kccl/kccl.h"

#define KR_DEFAULT_GRACE_MS 5000
#define KR_FDS_PER_RANK     2
#define KR_FDS_SPARE        64

static kr_state_t *g_cleanup; /* what the atexit handler removes */

int64_t kr_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void kr_msg(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    int n = snprintf(buf, sizeof(buf), KR_NAME ": ");
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(buf) - 2)
        len = sizeof(buf) - 2;
    buf[len++] = '\n';
    (void)!write(2, buf, len); /* one write: never torn by the relay's output */
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: " KR_NAME " -n N [options] [--] PROG [ARGS...]\n"
            "\n"
            "Starts N ranks of PROG on this machine as one kccl group, the way the Kubernetes\n"
            "sidecar would: a fresh group secret and unique id, the root listener bound before\n"
            "any rank starts, and the handoff keys in each rank's environment.\n"
            "\n"
            "options:\n"
            "  -n, --np N          number of ranks, 1..%d (required)\n"
            "      --timeout SEC   stop every rank after SEC seconds and exit 124\n"
            "      --grace SEC     after SIGTERM, wait SEC seconds before SIGKILL (default %g)\n"
            "      --ifname IF     bootstrap interface(s), KCCL_SOCKET_IFNAME syntax\n"
            "                      (default: KCCL_SOCKET_IFNAME, or lo when it is unset)\n"
            "      --no-prefix     print the ranks' lines without the \"[rank] \" prefix\n"
            "  -h, --help          this text\n"
            "      --version       the kccl version\n"
            "\n"
            "each rank gets KCCL_RANK, KCCL_WORLD_SIZE, KCCL_UNIQUE_ID, KCCL_GROUP_SECRET_FILE,\n"
            "KCCL_SOCKET_IFNAME, and rank 0 also KCCL_BOOTSTRAP_ROOT_FD. Rank 0 reads stdin.\n"
            "Output is relayed line by line as \"[rank] line\" (stderr to stderr).\n"
            "SIGINT, SIGTERM, SIGHUP and SIGQUIT are forwarded to every rank (SIGKILL follows\n"
            "after the grace period, or at once on a second signal). The first rank to fail\n"
            "stops the others.\n"
            "\n"
            "exit status: 0 when every rank exits 0; else the first failed rank's status\n"
            "(128+N for signal N); 124 on --timeout; 2 on bad usage; 127 if PROG is not found.\n",
            KR_MAX_RANKS, KR_DEFAULT_GRACE_MS / 1000.0);
}

static int bad_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int bad_usage(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    kr_msg("%s (see " KR_NAME " --help)", buf);
    return KR_EXIT_USAGE;
}

/* Decimal seconds into ms. min_zero: 0 is allowed. Returns 0 or -1. */
static int parse_seconds(const char *text, int min_zero, int64_t *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end != '\0' || errno != 0 || !isfinite(v) || v < 0 || v > 1e8 ||
        (v == 0 && !min_zero))
        return -1;
    *out = (int64_t)llround(v * 1000.0);
    if (*out == 0 && v > 0)
        *out = 1;
    return 0;
}

static int parse_np(const char *text, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (end == text || *end != '\0' || errno != 0 || v < 1 || v > KR_MAX_RANKS)
        return -1;
    *out = (int)v;
    return 0;
}

enum { OPT_TIMEOUT = 256, OPT_GRACE, OPT_IFNAME, OPT_NO_PREFIX, OPT_VERSION };

static int parse_one(kr_state_t *s, int opt, const char *arg)
{
    switch (opt) {
    case 'n':
        if (parse_np(arg, &s->nranks) != 0)
            return bad_usage("-n '%s' is not a number of ranks; give a whole number from 1 to %d",
                             arg, KR_MAX_RANKS);
        return -1;
    case OPT_TIMEOUT:
        if (parse_seconds(arg, 0, &s->timeout_ms) != 0)
            return bad_usage("--timeout '%s' is not a positive number of seconds; e.g. 60 or 2.5",
                             arg);
        return -1;
    case OPT_GRACE:
        if (parse_seconds(arg, 1, &s->grace_ms) != 0)
            return bad_usage("--grace '%s' is not a number of seconds >= 0; e.g. 5 or 0.5", arg);
        return -1;
    case OPT_IFNAME:
        if (*arg == '\0' || strlen(arg) >= 64)
            return bad_usage("--ifname '%s' must be 1 to 63 characters, e.g. eth0 or ^docker,lo",
                             arg);
        s->ifname = arg;
        return -1;
    case OPT_NO_PREFIX: s->prefix = 0; return -1;
    default: return bad_usage("internal error: unhandled option %d", opt);
    }
}

/* Returns -1 to go on, or an exit code (0 after --help, 2 on bad usage). */
static int parse_args(kr_state_t *s, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"np", required_argument, NULL, 'n'},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"grace", required_argument, NULL, OPT_GRACE},
        {"ifname", required_argument, NULL, OPT_IFNAME},
        {"no-prefix", no_argument, NULL, OPT_NO_PREFIX},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "+:n:h", longopts, NULL)) != -1) {
        int rc;
        if (opt == 'h') {
            usage(stdout);
            return 0;
        } else if (opt == OPT_VERSION) {
            printf(KR_NAME " (kccl) %d.%d.%d\n", KCCL_VERSION_MAJOR, KCCL_VERSION_MINOR,
                   KCCL_VERSION_PATCH);
            return 0;
        } else if (opt == ':') {
            return bad_usage("option '%s' needs a value", argv[optind - 1]);
        } else if (opt == '?') {
            return bad_usage("unknown option '%s'; put '--' before PROG if it is PROG's",
                             argv[optind - 1]);
        } else if ((rc = parse_one(s, opt, optarg)) >= 0) {
            return rc;
        }
    }
    if (s->nranks == 0)
        return bad_usage("missing -n N, the number of ranks; e.g. " KR_NAME " -n 4 ./app");
    if (optind >= argc)
        return bad_usage("no program to run; e.g. " KR_NAME " -n %d ./app [args]", s->nranks);
    s->argv = argv + optind;
    return -1;
}

/* Finds PROG as execvp would, so a typo fails once, not N times. Returns 0 or an exit code. */
static int check_program(const char *prog)
{
    if (strchr(prog, '/') != NULL) {
        if (access(prog, X_OK) == 0)
            return 0;
        kr_msg("cannot execute '%s': %s", prog, strerror(errno));
        return errno == ENOENT ? KR_EXIT_NOEXEC : 126;
    }
    const char *path = getenv("PATH");
    if (path == NULL)
        path = "/usr/local/bin:/usr/bin:/bin";
    for (const char *p = path;; p++) {
        size_t n = strcspn(p, ":");
        char full[PATH_MAX];
        if (snprintf(full, sizeof(full), "%.*s%s%s", (int)n, n ? p : ".", "/", prog) <
                (int)sizeof(full) &&
            access(full, X_OK) == 0)
            return 0;
        p += n;
        if (*p == '\0')
            break;
    }
    kr_msg("cannot find '%s' in PATH; give its path (e.g. ./%s) or fix PATH", prog, prog);
    return KR_EXIT_NOEXEC;
}

/* Every rank costs two pipe ends here. Returns 0 or -1 (message printed). */
static int raise_nofile(kr_state_t *s)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)s->nranks * KR_FDS_PER_RANK + KR_FDS_SPARE;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0;
    s->orig_nofile = rl;
    if (rl.rlim_cur >= need)
        return 0;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
        kr_msg("-n %d needs about %llu open files but the hard limit is %llu; raise it "
               "(ulimit -Hn, or LimitNOFILE= for a service) or use fewer ranks",
               s->nranks, (unsigned long long)need, (unsigned long long)rl.rlim_max);
        return -1;
    }
    struct rlimit up = {.rlim_cur = rl.rlim_max == RLIM_INFINITY ? need : rl.rlim_max,
                        .rlim_max = rl.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &up) != 0) {
        up.rlim_cur = need;
        if (setrlimit(RLIMIT_NOFILE, &up) != 0) {
            kr_msg("-n %d needs about %llu open files; cannot raise the limit from %llu: %s",
                   s->nranks, (unsigned long long)need, (unsigned long long)rl.rlim_cur,
                   strerror(errno));
            return -1;
        }
    }
    s->nofile_raised = 1;
    return 0;
}

static void cleanup_secret(void)
{
    kr_state_t *s = g_cleanup;
    if (s == NULL)
        return;
    g_cleanup = NULL;
    if (s->secret_path[0])
        unlink(s->secret_path);
    if (s->secret_dir[0])
        rmdir(s->secret_dir);
}

static int write_secret_file(const char *path)
{
    unsigned char key[KCCL_GROUP_SECRET_BYTES];
    size_t got = 0;
    while (got < sizeof(key)) {
        ssize_t r = getrandom(key + got, sizeof(key) - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            kr_msg("cannot generate the group secret: getrandom: %s", strerror(errno));
            return -1;
        }
        got += (size_t)r;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    int ok = fd >= 0 && fchmod(fd, 0600) == 0 && write(fd, key, sizeof(key)) == sizeof(key);
    int saved = errno;
    explicit_bzero(key, sizeof(key));
    if (fd >= 0 && close(fd) != 0)
        ok = 0;
    if (!ok) {
        kr_msg("cannot write the group secret file %s: %s", path, strerror(saved));
        return -1;
    }
    return 0;
}

/* A private dir (0700) holding one 0600 file; removed at exit. Returns 0 or -1. */
static int make_secret(kr_state_t *s)
{
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL || *tmp == '\0')
        tmp = "/tmp";
    if ((size_t)snprintf(s->secret_dir, sizeof(s->secret_dir), "%s/kccl-run.XXXXXX", tmp) >=
        sizeof(s->secret_dir)) {
        kr_msg("TMPDIR is too long; set it to a shorter directory");
        s->secret_dir[0] = '\0';
        return -1;
    }
    if (mkdtemp(s->secret_dir) == NULL) {
        kr_msg("cannot create a private directory in %s: %s; set TMPDIR to a writable directory",
               tmp, strerror(errno));
        s->secret_dir[0] = '\0';
        return -1;
    }
    g_cleanup = s;
    if (chmod(s->secret_dir, 0700) != 0) {
        kr_msg("cannot make %s private: %s", s->secret_dir, strerror(errno));
        return -1;
    }
    snprintf(s->secret_path, sizeof(s->secret_path), "%s/group-secret", s->secret_dir);
    if (write_secret_file(s->secret_path) != 0) {
        unlink(s->secret_path);
        return -1;
    }
    return 0;
}

static int kccl_fail(const char *what, kccl_status_t st)
{
    kr_msg("%s: %s: %s", what, kccl_status_str(st), kccl_last_error());
    return -1;
}

/* The group-wide environment every rank inherits, then the id with its bound listener. */
static int make_group(kr_state_t *s)
{
    char num[32];
    snprintf(num, sizeof(num), "%d", s->nranks);
    const char *ifn = getenv("KCCL_SOCKET_IFNAME");
    if (s->ifname != NULL)
        ifn = s->ifname;
    else if (ifn == NULL || *ifn == '\0')
        ifn = "lo"; /* every rank is on this machine */
    /* Stale keys from an outer launcher or sidecar would override ours. */
    unsetenv("KCCL_GROUP_SECRET");
    unsetenv("KCCL_BOOTSTRAP_FILE");
    unsetenv("KCCL_BOOTSTRAP_ROOT_FD");
    unsetenv("KCCL_UNIQUE_ID");
    if (setenv("KCCL_SOCKET_IFNAME", ifn, 1) != 0 ||
        setenv("KCCL_GROUP_SECRET_FILE", s->secret_path, 1) != 0 ||
        setenv("KCCL_WORLD_SIZE", num, 1) != 0) {
        kr_msg("cannot set the ranks' environment: %s", strerror(errno));
        return -1;
    }
    kccl_bootstrap_opts_t opts;
    kccl_unique_id_t id;
    memset(&opts, 0, sizeof(opts));
    kccl_status_t st = kccl_bootstrap_opts_from_env(&opts);
    if (st != KCCL_OK)
        return kccl_fail("bad bootstrap configuration", st);
    opts.embed_secret = 0; /* the id travels in the environment: keep the key out of it */
    st = kccl_unique_id_create_detached(&opts, &id, &s->root_fd);
    explicit_bzero(opts.secret, sizeof(opts.secret));
    if (st != KCCL_OK)
        return kccl_fail("cannot create the unique id", st);
    st = kccl_unique_id_to_string(&id, s->uid_text, sizeof(s->uid_text));
    if (st != KCCL_OK)
        return kccl_fail("cannot encode the unique id", st);
    if (setenv("KCCL_UNIQUE_ID", s->uid_text, 1) != 0) {
        kr_msg("cannot set KCCL_UNIQUE_ID: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* Blocks the handled signals into a signalfd. Returns the fd or -1. */
static int setup_signals(void)
{
    static const int fwd[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    for (size_t i = 0; i < sizeof(fwd) / sizeof(fwd[0]); i++) {
        struct sigaction old;
        /* A signal our parent chose to ignore (nohup, a background job) stays ignored. */
        if (sigaction(fwd[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
            continue;
        sigaddset(&set, fwd[i]);
    }
    signal(SIGCHLD, SIG_DFL); /* SIG_IGN inherited would auto-reap the ranks */
    signal(SIGPIPE, SIG_IGN); /* a closed stdout must not kill the launcher */
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
        return -1;
    return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* Opens /dev/null on any of fds 0-2 that is closed, so pipes never land there. */
static void ensure_std_fds(void)
{
    for (int fd = 0; fd < 3; fd++) {
        if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
            int n = open("/dev/null", O_RDWR);
            if (n >= 0 && n != fd)
                close(n);
        }
    }
}

static void spawn_all(kr_state_t *s)
{
    for (int r = 0; r < s->nranks; r++) {
        kr_child_t *c = &s->child[r];
        c->rank = r;
        c->out.fd = c->err.fd = -1;
        if (kr_spawn(s, c) != 0) {
            s->spawn_failed = 1;
            break;
        }
        s->started++;
        s->live++;
        if (r == 0 && s->root_fd >= 0) { /* rank 0 holds it now */
            close(s->root_fd);
            s->root_fd = -1;
        }
    }
    if (s->spawn_failed && s->started > 0) {
        kr_msg("stopping the %d rank%s already started", s->started, s->started == 1 ? "" : "s");
        s->stopping = 1;
        s->kill_at_ms = kr_now_ms() + s->grace_ms;
        kr_signal_all(s, SIGTERM);
    }
}

static int launch(kr_state_t *s)
{
    int sigfd = setup_signals();
    if (sigfd < 0) {
        kr_msg("cannot set up signal handling: %s", strerror(errno));
        return 1;
    }
    if (make_secret(s) != 0 || make_group(s) != 0)
        return 1;
    s->child = calloc((size_t)s->nranks, sizeof(*s->child));
    if (s->child == NULL) {
        kr_msg("out of memory for %d ranks", s->nranks);
        return 1;
    }
    kr_io_set_prefix(s->prefix);
    spawn_all(s);
    int rc = kr_supervise(s, sigfd);
    close(sigfd);
    free(s->child);
    return s->spawn_failed ? 1 : rc;
}

int main(int argc, char **argv)
{
    static kr_state_t s;
    s.grace_ms = KR_DEFAULT_GRACE_MS;
    s.prefix = 1;
    s.root_fd = -1;
    s.first_fail_rank = -1;
    s.launcher_pid = getpid();
    ensure_std_fds();
    int rc = parse_args(&s, argc, argv);
    if (rc >= 0)
        return rc;
    if ((rc = check_program(s.argv[0])) != 0)
        return rc;
    if (raise_nofile(&s) != 0)
        return 1;
    atexit(cleanup_secret);
    rc = launch(&s);
    cleanup_secret();
    return rc;
}

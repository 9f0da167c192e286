/*
 * bench_opts.c - kccl-bench's command line: nccl-tests' flags (-b -e -f -i
 * -n -w -c -G -d -o -r -g) plus --op, --eager/--graph, --host, --json and
 * --compare nccl. Sizes take K, M, G suffixes (powers of 1024).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bench.h"

static const char *const kind_names[] = {"all_reduce", "all_gather", "reduce_scatter", "broadcast"};

const char *bench_kind_name(coll_check_kind_t kind)
{
    return (unsigned)kind < 4 ? kind_names[kind] : "?";
}

double bench_busbw_factor(coll_check_kind_t kind, int nranks)
{
    double n = nranks;
    switch (kind) {
    case COLL_CHECK_ALL_REDUCE: return 2.0 * (n - 1) / n;
    case COLL_CHECK_ALL_GATHER:
    case COLL_CHECK_REDUCE_SCATTER: return (n - 1) / n;
    default: return 1.0;
    }
}

static void usage(FILE *f)
{
    fprintf(
        f, "usage: kccl-run -n N kccl-bench [options]\n"
           "  --op OP            all_reduce (default), all_gather, reduce_scatter, broadcast\n"
           "  -b, --minbytes N   smallest size (default 8; K/M/G suffixes)\n"
           "  -e, --maxbytes N   largest size (default 64M)\n"
           "  -f, --stepfactor F size multiplier (default 2)\n"
           "  -i, --stepbytes N  size increment when -f is 1\n"
           "  -n, --iters N      timed iterations per size (default 20)\n"
           "  -w, --warmup N     untimed iterations first (default 5)\n"
           "  -c, --check 0|1    check every size against a float64 reference (default 1)\n"
           "  -G, --cudagraph N  graph mode: N collectives captured per graph, replayed\n"
           "  -d, --datatype T   int32|float32|float16|bfloat16|all (nccl-tests names too:\n"
           "                     int, float, half, bf16; default float32)\n"
           "  -o, --redop OP     sum|max|min|avg|all (default sum)\n"
           "  -r, --root R       broadcast root (default 0)\n"
           "  -g, --gpus N       N ranks, one process per GPU (started by hand: through kccl-run)\n"
           "  --eager | --graph  device launch mode (default eager)\n"
           "  --host             the CPU path: host buffers (no GPU needed)\n"
           "  --compare nccl     time NCCL (libnccl.so.2, or KCCL_NCCL_LIB) on the same buffers\n"
           "  --json FILE        write every row as JSON (rank 0)\n"
           "  --cpu-chunk N      the CPU path's chunk (default: the library's, 1M)\n"
           "  --seed N           input seed (default 1)\n");
}

static int parse_size(const char *s, size_t *out)
{
    char *end;
    double v = strtod(s, &end);
    double mult = 1;
    if (end == s || v < 0)
        return -1;
    switch (*end) {
    case 'k':
    case 'K':
        mult = 1024.0;
        end++;
        break;
    case 'm':
    case 'M':
        mult = 1024.0 * 1024;
        end++;
        break;
    case 'g':
    case 'G':
        mult = 1024.0 * 1024 * 1024;
        end++;
        break;
    default: break;
    }
    if (*end == 'B' || *end == 'b')
        end++;
    if (*end != '\0')
        return -1;
    *out = (size_t)(v * mult);
    return 0;
}

static int parse_list(const char *s, const char *const *names, const char *const *aliases,
                      int nnames, int *vals, int *n)
{
    *n = 0;
    if (strcasecmp(s, "all") == 0) {
        for (int i = 0; i < nnames; i++)
            vals[(*n)++] = i;
        return 0;
    }
    for (int i = 0; i < nnames; i++)
        if (strcasecmp(s, names[i]) == 0 || (aliases && strcasecmp(s, aliases[i]) == 0)) {
            vals[(*n)++] = i;
            return 0;
        }
    return -1;
}

static int parse_int(const char *s, int lo, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || v < lo || v > 1 << 30)
        return -1;
    *out = (int)v;
    return 0;
}

static void defaults(bench_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->min_bytes = 8;
    o->max_bytes = (size_t)64 << 20;
    o->factor = 2;
    o->iters = 20;
    o->warmup = 5;
    o->check = 1;
    o->mode = BENCH_EAGER;
    o->kind = COLL_CHECK_ALL_REDUCE;
    o->dtypes[0] = KCCL_FLOAT32;
    o->ndtypes = 1;
    o->ops[0] = KCCL_SUM;
    o->nops = 1;
    o->seed = 1;
}

/* One option; returns 0, or -1 with a message printed. */
static int apply(bench_opts_t *o, int c, const char *arg)
{
    static const char *const dt_names[] = {"int32", "float32", "float16", "bfloat16"};
    static const char *const dt_alias[] = {"int", "float", "half", "bf16"};
    static const char *const op_names[] = {"sum", "max", "min", "avg"};
    int bad = 0;
    switch (c) {
    case 'b': bad = parse_size(arg, &o->min_bytes); break;
    case 'e': bad = parse_size(arg, &o->max_bytes); break;
    case 'f':
        o->factor = strtod(arg, NULL);
        bad = o->factor < 1;
        break;
    case 'i': bad = parse_size(arg, &o->step); break;
    case 'n': bad = parse_int(arg, 1, &o->iters); break;
    case 'w': bad = parse_int(arg, 0, &o->warmup); break;
    case 'c': bad = parse_int(arg, 0, &o->check); break;
    case 'G':
        bad = parse_int(arg, 0, &o->graph_launches);
        if (!bad && o->graph_launches > 0 && o->mode != BENCH_HOST)
            o->mode = BENCH_GRAPH;
        break;
    case 'd':
        bad = parse_list(arg, dt_names, dt_alias, KCCL_NUM_DTYPES, o->dtypes, &o->ndtypes);
        break;
    case 'o': bad = parse_list(arg, op_names, NULL, KCCL_NUM_REDOPS, o->ops, &o->nops); break;
    case 'r': bad = parse_int(arg, 0, &o->root); break;
    case 'g': bad = parse_int(arg, 1, &o->gpus); break;
    case 'O': {
        int k, n;
        bad = parse_list(arg, kind_names, NULL, 4, &k, &n) || n != 1;
        o->kind = (coll_check_kind_t)k;
        break;
    }
    case 'E':
        o->mode = BENCH_EAGER;
        o->graph_launches = 0;
        break;
    case 'R': o->mode = BENCH_GRAPH; break;
    case 'H': o->mode = BENCH_HOST; break;
    case 'C':
        bad = strcasecmp(arg, "nccl") != 0;
        o->compare_nccl = 1;
        break;
    case 'J': o->json = arg; break;
    case 'S': o->seed = strtoull(arg, NULL, 0); break;
    case 'K': bad = parse_size(arg, &o->cpu_chunk); break;
    default: bad = 1;
    }
    return bad ? -1 : 0;
}

int bench_opts_parse(int argc, char **argv, bench_opts_t *o)
{
    static const struct option longs[] = {{"minbytes", required_argument, 0, 'b'},
                                          {"maxbytes", required_argument, 0, 'e'},
                                          {"stepfactor", required_argument, 0, 'f'},
                                          {"stepbytes", required_argument, 0, 'i'},
                                          {"iters", required_argument, 0, 'n'},
                                          {"warmup", required_argument, 0, 'w'},
                                          {"check", required_argument, 0, 'c'},
                                          {"cudagraph", required_argument, 0, 'G'},
                                          {"datatype", required_argument, 0, 'd'},
                                          {"redop", required_argument, 0, 'o'},
                                          {"root", required_argument, 0, 'r'},
                                          {"gpus", required_argument, 0, 'g'},
                                          {"ranks", required_argument, 0, 'g'},
                                          {"op", required_argument, 0, 'O'},
                                          {"eager", no_argument, 0, 'E'},
                                          {"graph", no_argument, 0, 'R'},
                                          {"host", no_argument, 0, 'H'},
                                          {"compare", required_argument, 0, 'C'},
                                          {"json", required_argument, 0, 'J'},
                                          {"seed", required_argument, 0, 'S'},
                                          {"cpu-chunk", required_argument, 0, 'K'},
                                          {"help", no_argument, 0, 'h'},
                                          {0, 0, 0, 0}};
    defaults(o);
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "b:e:f:i:n:w:c:G:d:o:r:g:h", longs, NULL)) != -1) {
        if (c == 'h') {
            usage(stdout);
            return 1;
        }
        if (c == '?' || apply(o, c, optarg) != 0) {
            if (c != '?')
                fprintf(stderr, "kccl-bench: bad value '%s' for -%c\n", optarg ? optarg : "", c);
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc || o->min_bytes > o->max_bytes || (o->factor == 1 && o->step == 0)) {
        fprintf(stderr, "kccl-bench: bad arguments (sizes, -f 1 needs -i, or a stray '%s')\n",
                optind < argc ? argv[optind] : "");
        usage(stderr);
        return -1;
    }
    if (o->mode == BENCH_GRAPH && o->graph_launches == 0)
        o->graph_launches = 16;
    if (o->mode == BENCH_HOST && o->compare_nccl) {
        fprintf(stderr, "kccl-bench: --compare nccl needs device buffers (not --host)\n");
        return -1;
    }
    return 0;
}

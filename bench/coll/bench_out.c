/*
 * bench_out.c - kccl-bench's output: nccl-tests' columns on stdout (rank 0)
 * and a JSON file with the run's settings and every row (what plot.py and
 * the CTest check read).
 */
#include <inttypes.h>
#include <stdio.h>

#include "bench.h"

static const char *mode_name(bench_mode_t m)
{
    return m == BENCH_HOST ? "host" : m == BENCH_GRAPH ? "graph" : "eager";
}

void bench_out_header(const bench_opts_t *o, int nranks, const char *device)
{
    printf("# kccl-bench %s: %d ranks, %s mode, %s; iters %d, warmup %d, check %s",
           bench_kind_name(o->kind), nranks, mode_name(o->mode), device, o->iters, o->warmup,
           o->check ? "on" : "off");
    if (o->mode == BENCH_GRAPH)
        printf(", %d collectives per graph", o->graph_launches);
    printf("\n#\n");
    printf("# %10s %12s %9s %6s %5s   %-30s   %-30s", "", "", "", "", "", "out-of-place",
           "in-place");
    if (o->compare_nccl)
        printf("   %-30s   %-30s", "nccl out-of-place", "nccl in-place");
    printf("\n# %10s %12s %9s %6s %5s", "size", "count", "type", "redop", "root");
    int groups = o->compare_nccl ? 4 : 2;
    for (int g = 0; g < groups; g++)
        printf("   %8s %6s %6s %6s", "time", "algbw", "busbw", "#wrong");
    printf("\n# %10s %12s %9s %6s %5s", "(B)", "(elements)", "", "", "");
    for (int g = 0; g < groups; g++)
        printf("   %8s %6s %6s %6s", "(us)", "(GB/s)", "(GB/s)", "");
    printf("\n");
}

static void meas_cols(const bench_meas_t *m)
{
    char wrong[24];
    if (m->failed)
        snprintf(wrong, sizeof(wrong), "fail");
    else if (m->wrong == UINT64_MAX)
        snprintf(wrong, sizeof(wrong), "N/A");
    else
        snprintf(wrong, sizeof(wrong), "%" PRIu64, m->wrong);
    printf("   %8.2f %6.2f %6.2f %6s", m->time_us, m->algbw, m->busbw, wrong);
}

void bench_out_row(const bench_opts_t *o, const bench_row_t *r)
{
    printf("  %10zu %12zu %9s %6s %5d", r->c.bytes, r->c.bytes / kccl_dtype_size(r->c.dtype),
           kccl_dtype_name(r->c.dtype),
           o->kind == COLL_CHECK_ALL_REDUCE || o->kind == COLL_CHECK_REDUCE_SCATTER
               ? kccl_redop_name(r->c.op)
               : "none",
           r->c.root);
    meas_cols(&r->m[0][0]);
    meas_cols(&r->m[0][1]);
    if (o->compare_nccl) {
        meas_cols(&r->m[1][0]);
        meas_cols(&r->m[1][1]);
    }
    printf("\n");
    fflush(stdout);
}

static void json_meas(FILE *f, const char *name, const bench_meas_t *m)
{
    fprintf(f, "\"%s\": {\"time_us\": %.3f, \"algbw\": %.4f, \"busbw\": %.4f, \"wrong\": ", name,
            m->time_us, m->algbw, m->busbw);
    if (m->failed || m->wrong == UINT64_MAX)
        fprintf(f, "null, \"failed\": %s}", m->failed ? "true" : "false");
    else
        fprintf(f, "%" PRIu64 ", \"failed\": false}", m->wrong);
}

int bench_out_json(const bench_opts_t *o, int nranks, const char *device, const bench_row_t *rows,
                   size_t nrows)
{
    FILE *f = fopen(o->json, "w");
    if (f == NULL) {
        perror(o->json);
        return -1;
    }
    fprintf(f,
            "{\n  \"tool\": \"kccl-bench\",\n  \"version\": %d,\n  \"op\": \"%s\",\n"
            "  \"nranks\": %d,\n  \"mode\": \"%s\",\n  \"device\": \"%s\",\n  \"iters\": %d,\n"
            "  \"warmup\": %d,\n  \"graph_launches\": %d,\n  \"check\": %s,\n"
            "  \"busbw_factor\": %.6f,\n  \"compare\": %s,\n  \"rows\": [",
            kccl_version(), bench_kind_name(o->kind), nranks, mode_name(o->mode), device, o->iters,
            o->warmup, o->graph_launches, o->check ? "true" : "false",
            bench_busbw_factor(o->kind, nranks), o->compare_nccl ? "\"nccl\"" : "null");
    for (size_t i = 0; i < nrows; i++) {
        const bench_row_t *r = &rows[i];
        fprintf(f,
                "%s\n    {\"size\": %zu, \"count\": %zu, \"type\": \"%s\", \"redop\": \"%s\", "
                "\"root\": %d,\n     ",
                i ? "," : "", r->c.bytes, r->c.bytes / kccl_dtype_size(r->c.dtype),
                kccl_dtype_name(r->c.dtype), kccl_redop_name(r->c.op), r->c.root);
        json_meas(f, "out_of_place", &r->m[0][0]);
        fprintf(f, ",\n     ");
        json_meas(f, "in_place", &r->m[0][1]);
        if (o->compare_nccl) {
            fprintf(f, ",\n     \"nccl\": {");
            json_meas(f, "out_of_place", &r->m[1][0]);
            fprintf(f, ", ");
            json_meas(f, "in_place", &r->m[1][1]);
            fprintf(f, "}");
        }
        fprintf(f, "}");
    }
    fprintf(f, "\n  ]\n}\n");
    return fclose(f) == 0 ? 0 : -1;
}

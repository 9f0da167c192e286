/*
 * op_config.c - the settings table (see op_config.h): defaults, then
 * KCCL_OPERATOR_* variables, then flags.
 */
#include "op_config.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "kccl/kccl.h"
#include "op_model.h"

typedef struct {
    const char *flag, *env, *def, *help;
    int is_bool;
} row_t;

static const row_t rows[OP_CFG_COUNT] = {
#define OP_CFG_ROW_(id, flag, env, def, is_bool, help) {flag, env, def, help, is_bool},
    OP_CONFIG_MAP(OP_CFG_ROW_)
#undef OP_CFG_ROW_
};

void op_config_usage(FILE *f)
{
    fprintf(f, "usage: " OP_NAME " [flags]\n\nThe CommGroup controller of kccl (and, with "
               "--webhook-cert-dir, its sidecar-injecting admission webhook).\n"
               "Each flag is also an environment variable KCCL_OPERATOR_<NAME>.\n\n");
    for (int i = 0; i < OP_CFG_COUNT; i++)
        fprintf(f, "  --%-20s %s%s%s%s\n  %-22s (KCCL_OPERATOR_%s)\n", rows[i].flag, rows[i].help,
                rows[i].def[0] ? " [" : "", rows[i].def, rows[i].def[0] ? "]" : "", "",
                rows[i].env);
    fprintf(f, "\n  -h, --help, --version\n\nExit status: 0 stopped by SIGTERM/SIGINT; 1 a "
               "runtime failure (API refused, port in use); 2 bad flags or configuration; 3 "
               "leadership lost.\n");
}

static kccl_status_t set(op_config_t *cfg, int i, const char *v)
{
    char *copy = strdup(v);
    if (copy == NULL)
        return KCCL_ERR_NO_MEMORY;
    free(cfg->value[i]);
    cfg->value[i] = copy;
    return KCCL_OK;
}

static int find_flag(const char *name, size_t len)
{
    for (int i = 0; i < OP_CFG_COUNT; i++)
        if (strlen(rows[i].flag) == len && !strncmp(rows[i].flag, name, len))
            return i;
    return -1;
}

static kccl_status_t parse_args(op_config_t *cfg, int argc, char **argv)
{
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
            op_config_usage(stdout);
            return KCCL_INPROGRESS;
        }
        if (!strcmp(arg, "--version")) {
            printf(OP_NAME " %d.%d.%d\n", KCCL_VERSION_MAJOR, KCCL_VERSION_MINOR,
                   KCCL_VERSION_PATCH);
            return KCCL_INPROGRESS;
        }
        if (strncmp(arg, "--", 2) != 0)
            KCCL_FAIL(TOOL, KCCL_ERR_CONFIG,
                      "unexpected argument \"%.64s\": flags start with "
                      "-- (see --help)",
                      arg);
        const char *name = arg + 2, *eq = strchr(name, '=');
        int i = find_flag(name, eq ? (size_t)(eq - name) : strlen(name));
        if (i < 0)
            KCCL_FAIL(TOOL, KCCL_ERR_CONFIG, "unknown flag %.64s (see --help)", arg);
        const char *v = eq ? eq + 1 : NULL;
        if (v == NULL && rows[i].is_bool)
            v = "true";
        if (v == NULL && a + 1 < argc)
            v = argv[++a];
        if (v == NULL)
            KCCL_FAIL(TOOL, KCCL_ERR_CONFIG, "flag --%s needs a value", rows[i].flag);
        KCCL_CHECK(set(cfg, i, v));
    }
    return KCCL_OK;
}

kccl_status_t op_config_load(op_config_t *cfg, int argc, char **argv)
{
    memset(cfg, 0, sizeof(*cfg));
    for (int i = 0; i < OP_CFG_COUNT; i++) {
        char env[96];
        snprintf(env, sizeof(env), "KCCL_OPERATOR_%s", rows[i].env);
        const char *v = getenv(env);
        KCCL_CHECK(set(cfg, i, v ? v : rows[i].def));
    }
    kccl_status_t st = parse_args(cfg, argc, argv);
    if (st != KCCL_OK)
        return st;
    for (int i = 0; i < OP_CFG_COUNT; i++) {
        const char *v = cfg->value[i];
        if (rows[i].is_bool && strcmp(v, "true") != 0 && strcmp(v, "false") != 0 &&
            strcmp(v, "1") != 0 && strcmp(v, "0") != 0)
            KCCL_FAIL(TOOL, KCCL_ERR_CONFIG, "--%s=%.32s: use true or false", rows[i].flag, v);
    }
    return KCCL_OK;
}

void op_config_free(op_config_t *cfg)
{
    for (int i = 0; i < OP_CFG_COUNT; i++) {
        free(cfg->value[i]);
        cfg->value[i] = NULL;
    }
}

const char *op_config_str(const op_config_t *cfg, op_cfg_id_t id)
{
    return cfg->value[id] ? cfg->value[id] : rows[id].def;
}

int op_config_bool(const op_config_t *cfg, op_cfg_id_t id)
{
    const char *v = op_config_str(cfg, id);
    return !strcmp(v, "true") || !strcmp(v, "1");
}

kccl_status_t op_config_int(const op_config_t *cfg, op_cfg_id_t id, int64_t min, int64_t max,
                            int64_t *out)
{
    if (op_model_parse_int(op_config_str(cfg, id), min, max, out) != 0)
        KCCL_FAIL(TOOL, KCCL_ERR_CONFIG, "--%s=%.32s: expected an integer in %lld..%lld",
                  rows[id].flag, op_config_str(cfg, id), (long long)min, (long long)max);
    return KCCL_OK;
}

int op_config_split_addr(const char *addr, char *host, size_t hostlen, int *port)
{
    const char *colon = strrchr(addr, ':');
    if (colon == NULL)
        return -1;
    const char *h = addr;
    size_t hl = (size_t)(colon - addr);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') { /* [IPv6] */
        h++;
        hl -= 2;
    }
    int64_t p;
    if (hl >= hostlen || op_model_parse_int(colon + 1, 0, 65535, &p) != 0)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (int)p;
    return 0;
}

/*
 * sc_config.c - kccl-sidecar's settings: one table (SC_CONFIG_MAP in sc.h)
 * gives each variable its default and help text; --help prints it. The
 * runtime's KCCL_LOG_* and the kube client's KUBERNETES_SERVICE_* and
 * KCCL_KUBE_SA_DIR apply too (see README.md).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "sc.h"

typedef struct {
    const char *env;
    const char *def;
    const char *help;
} sc_cfg_entry_t;

static const sc_cfg_entry_t sc_config_table[SC_CFG_COUNT] = {
#define SC_CFG_ROW_(id, env, def, help) {env, def, help},
    SC_CONFIG_MAP(SC_CFG_ROW_)
#undef SC_CFG_ROW_
};

const char *sc_config_str(sc_cfg_id_t id)
{
    const char *v = getenv(sc_config_table[id].env);
    return (v && *v) ? v : sc_config_table[id].def;
}

int sc_config_is_set(sc_cfg_id_t id)
{
    const char *v = getenv(sc_config_table[id].env);
    return v && *v;
}

kccl_status_t sc_config_millis(sc_cfg_id_t id, int64_t *out)
{
    const char *text = sc_config_str(id);
    char *end;
    errno = 0;
    double s = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !isfinite(s) || s <= 0 || s > 1e7)
        KCCL_FAIL(TOOL, KCCL_ERR_CONFIG, "%s=\"%.32s\" is not a positive number of seconds",
                  sc_config_table[id].env, text);
    *out = (int64_t)(s * 1000.0 + 0.5);
    return KCCL_OK;
}

void sc_config_print(void *file)
{
    FILE *f = file;
    for (int i = 0; i < SC_CFG_COUNT; i++)
        fprintf(f, "  %-33s %s%s%s%s\n", sc_config_table[i].env, sc_config_table[i].help,
                sc_config_table[i].def[0] ? " [" : "", sc_config_table[i].def,
                sc_config_table[i].def[0] ? "]" : "");
}

int64_t sc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int sc_sleep_ms(int64_t ms, const atomic_int *stop)
{
    int64_t end = sc_now_ms() + ms;
    for (;;) {
        if (stop && atomic_load(stop))
            return 1;
        int64_t left = end - sc_now_ms();
        if (left <= 0)
            return 0;
        struct timespec ts = {0, (long)(left < 50 ? left : 50) * 1000000L};
        nanosleep(&ts, NULL);
    }
}
